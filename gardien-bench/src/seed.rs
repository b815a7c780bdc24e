//! The server under test and its seed: accounts with known passwords, one
//! live session each, and service and security credentials.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;
use tonic::{metadata::MetadataValue, transport::Channel, Request};

use super::{load, Options};
use gardien::{
    config::{Config, MailTransportKind},
    domain::{credentials, principal::Role, Context},
    proto::accountsecurity::v1::{
        account_security_service_client::AccountSecurityServiceClient as Client, login_response,
        CreateAccountRequest, LoginRequest,
    },
    Application,
};

#[derive(Clone)]
pub struct Account {
    pub id: String,
    pub login: String,
    pub password: String,
    pub session: String,
}

pub struct Bench {
    pub addr: std::net::SocketAddr,
    pub ctx: Context,
    pub channels: Vec<Channel>,
    pub accounts: Arc<Vec<Account>>,
    pub service_token: String,
    pub security_token: String,
    shutdown: CancellationToken,
    dir: std::path::PathBuf,
}

/// Rate limits off: the benchmark measures the service, not the limiter.
pub fn config(options: &Options, dir: &std::path::Path) -> Config {
    let mut config = Config {
        listen_addr: ([127, 0, 0, 1], 0).into(),
        data_dir: dir.to_path_buf(),
        database_url: options.database_url.clone().map(SecretString::from),
        shutdown_grace_secs: 1,
        ..Default::default()
    };
    config.rate_limit.enabled = false;
    // The flood scenarios open hundreds of connections from one address.
    config.max_connections_per_address = config.max_connections;
    config.mail.transport = MailTransportKind::Log;
    config.reset.max_requests_per_hour = u32::MAX;
    config
}

impl Bench {
    pub async fn start(options: &Options) -> anyhow::Result<Self> {
        Self::start_with(options, options.accounts.max(1), |_| {}).await
    }

    /// A server as [`config`] makes it, changed by `adjust`, with `accounts`
    /// seeded accounts.
    pub async fn start_with(
        options: &Options,
        accounts: usize,
        adjust: impl FnOnce(&mut Config),
    ) -> anyhow::Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("gardien-bench-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        let mut config = config(options, &dir);
        if let Some(tls) = &options.tls {
            let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
            std::fs::write(&cert, &tls.cert_pem)?;
            std::fs::write(&key, &tls.key_pem)?;
            config.tls.cert_file = Some(cert);
            config.tls.key_file = Some(key);
        }
        adjust(&mut config);
        let app = Application::build(config).await?;
        let addr = app.local_addr();
        let ctx = app.context().clone();
        let now = ctx.now();
        // Several runs (and the flood-limited scenario's second server) may
        // share one PostgreSQL database.
        let run = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let (_, service) =
            credentials::create(&ctx.db, now, &format!("bench-service-{run}"), Role::Service)
                .await?;
        let (_, security) = credentials::create(
            &ctx.db,
            now,
            &format!("bench-security-{run}"),
            Role::Security,
        )
        .await?;
        let shutdown = CancellationToken::new();
        tokio::spawn(app.run_until(shutdown.clone()));
        let channels = load::channels(addr, options.connections, options.tls.as_ref()).await?;
        let service_token = service.expose_secret().to_string();
        let accounts = seed_accounts(&channels[0], &service_token, accounts).await?;
        Ok(Self {
            addr,
            ctx,
            channels,
            accounts: Arc::new(accounts),
            service_token,
            security_token: security.expose_secret().to_string(),
            shutdown,
            dir,
        })
    }

    pub fn client(&self, worker: usize) -> Client<Channel> {
        Client::new(self.channels[worker % self.channels.len()].clone())
    }

    pub fn stop(&self) {
        self.shutdown.cancel();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `request` with `authorization: Bearer <token>`.
pub fn bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(value) = MetadataValue::try_from(format!("Bearer {token}")) {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// Logs in and returns the session token.
pub async fn login(
    client: &mut Client<Channel>,
    login: &str,
    password: &str,
) -> Result<String, tonic::Code> {
    let response = client
        .login(LoginRequest {
            login: login.into(),
            password: password.into(),
        })
        .await
        .map_err(|s| s.code())?
        .into_inner();
    match response.result {
        Some(login_response::Result::Session(grant)) => Ok(grant.session_token),
        _ => Err(tonic::Code::Unknown),
    }
}

async fn seed_accounts(
    channel: &Channel,
    service: &str,
    count: usize,
) -> anyhow::Result<Vec<Account>> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let mut client = Client::new(channel.clone());
            let service = service.to_string();
            let login = format!("bench{i}x{}", &run[..8]);
            tokio::spawn(async move {
                let password = format!("{}-quartz-{}-lantern", uuid::Uuid::new_v4().simple(), i);
                let created = client
                    .create_account(bearer(
                        CreateAccountRequest {
                            login: login.clone(),
                            email: format!("{login}@bench.example"),
                            password: password.clone(),
                            ..Default::default()
                        },
                        &service,
                    ))
                    .await?
                    .into_inner();
                let id = created.account.map(|a| a.account_id).unwrap_or_default();
                let session = login_once(&mut client, &login, &password).await?;
                anyhow::Ok(Account {
                    id,
                    login,
                    password,
                    session,
                })
            })
        })
        .collect();
    let mut accounts = Vec::with_capacity(count);
    for task in tasks {
        accounts.push(task.await??);
    }
    Ok(accounts)
}

async fn login_once(
    client: &mut Client<Channel>,
    user: &str,
    password: &str,
) -> anyhow::Result<String> {
    login(client, user, password)
        .await
        .map_err(|code| anyhow::anyhow!("seed login failed: {code:?}"))
}
