//! `passkey-login`: sign-in without password (BeginPasskeyLogin, a software
//! authenticator's assertion, FinishPasskeyLogin) against password logins,
//! in the same run on the same server. No argon2 hash is on the passkey
//! path, so it must serve at least ten passkey logins per password login.

use std::sync::{Arc, Mutex};

use soft_passkey::SoftPasskey;

use super::{
    load::{self, drive, Op},
    seed::{bearer, login as log_in, Bench},
    Options, Outcome,
};
use gardien::proto::accountsecurity::v1::{
    BeginPasskeyLoginRequest, BeginPasskeyRegistrationRequest, FinishPasskeyLoginRequest,
    FinishPasskeyRegistrationRequest,
};

/// The origin the default configuration allows.
const ORIGIN: &str = "http://localhost:8080";

/// Registers a passkey on each of `accounts` (through the API, as a
/// customer would).
async fn register(
    bench: &Bench,
    accounts: &[super::seed::Account],
) -> anyhow::Result<Vec<Mutex<SoftPasskey>>> {
    let mut passkeys = Vec::with_capacity(accounts.len());
    let mut client = bench.client(0);
    for account in accounts {
        let begun = client
            .begin_passkey_registration(bearer(
                BeginPasskeyRegistrationRequest::default(),
                &account.session,
            ))
            .await?
            .into_inner();
        let (passkey, credential_json) =
            SoftPasskey::register(&begun.creation_options_json, ORIGIN)
                .map_err(|e| anyhow::anyhow!(e))?;
        client
            .finish_passkey_registration(bearer(
                FinishPasskeyRegistrationRequest {
                    ceremony_token: begun.ceremony_token,
                    credential_json,
                    name: "bench".into(),
                },
                &account.session,
            ))
            .await?;
        passkeys.push(Mutex::new(passkey));
    }
    Ok(passkeys)
}

fn passkey_login_op(bench: &Bench, passkeys: Arc<Vec<Mutex<SoftPasskey>>>) -> Op {
    let clients: Vec<_> = (0..bench.channels.len()).map(|i| bench.client(i)).collect();
    load::op(move |worker, n| {
        let passkeys = passkeys.clone();
        let index = (worker + n as usize) % passkeys.len();
        let mut client = clients[worker % clients.len()].clone();
        async move {
            let begun = client
                .begin_passkey_login(BeginPasskeyLoginRequest {})
                .await
                .map_err(|s| s.code())?
                .into_inner();
            let assertion = {
                let mut passkey = passkeys[index].lock().map_err(|_| tonic::Code::Internal)?;
                passkey
                    .assert(&begun.request_options_json, ORIGIN)
                    .map_err(|_| tonic::Code::Internal)?
            };
            client
                .finish_passkey_login(FinishPasskeyLoginRequest {
                    ceremony_token: begun.ceremony_token,
                    assertion_json: assertion,
                })
                .await
                .map_err(|s| s.code())?;
            Ok(())
        }
    })
}

fn password_login_op(bench: &Bench, accounts: Arc<Vec<super::seed::Account>>) -> Op {
    let clients: Vec<_> = (0..bench.channels.len()).map(|i| bench.client(i)).collect();
    load::op(move |worker, n| {
        let account = &accounts[(worker + n as usize) % accounts.len()];
        let mut client = clients[worker % clients.len()].clone();
        let (user, password) = (account.login.clone(), account.password.clone());
        async move { log_in(&mut client, &user, &password).await.map(|_| ()) }
    })
}

pub async fn passkey_login(options: &Options) -> anyhow::Result<Outcome> {
    // A server of its own: the accounts with a passkey have a second factor,
    // which the other scenarios' password logins do not expect.
    let per_kind = options.accounts.max(2) / 2;
    let bench = Bench::start_with(options, per_kind * 2, |_| {}).await?;
    let (with_passkey, password_only) = bench.accounts.split_at(per_kind);
    let passkeys = Arc::new(register(&bench, with_passkey).await?);
    let password_only = Arc::new(password_only.to_vec());
    let half = options.duration / 2;
    let passwords = drive(
        half,
        options.concurrency,
        password_login_op(&bench, password_only),
    )
    .await;
    let passkey_logins = drive(
        half,
        options.concurrency,
        passkey_login_op(&bench, passkeys),
    )
    .await;
    bench.stop();
    let ratio = passkey_logins.per_second / passwords.per_second.max(f64::MIN_POSITIVE);
    let unexpected = passkey_logins.unexpected_errors(&[]) + passwords.unexpected_errors(&[]);
    let mut notes = vec![format!(
        "passkey logins {:.1}/s (p99 {:.1} ms), password logins {:.1}/s (p99 {:.1} ms), {} accounts each",
        passkey_logins.per_second,
        passkey_logins.p99_us as f64 / 1000.0,
        passwords.per_second,
        passwords.p99_us as f64 / 1000.0,
        per_kind,
    )];
    if unexpected > 0 {
        notes.push(format!(
            "errors: passkey {:?}, password {:?}",
            passkey_logins.errors, passwords.errors
        ));
    }
    Ok(Outcome {
        scenario: "passkey-login".into(),
        ratio,
        target: ">= 10 x password logins per second".into(),
        met: ratio >= 10.0 && unexpected == 0,
        unexpected_errors: unexpected,
        runs: vec![
            ("passkey-login".into(), passkey_logins),
            ("password-login".into(), passwords),
        ],
        notes,
    })
}
