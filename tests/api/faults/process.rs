//! The real `gardien` binary as a child process, configured only through
//! `GARDIEN_*` variables: its own data directory (SQLite file, TOTP key,
//! `.eml` files in `mail/`) or a PostgreSQL URL, a free port (`:0`, read
//! back from the "listening" log line), JSON logs kept for the assertions.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use sea_orm::DatabaseConnection;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};
use tonic::transport::Channel;

/// What survives a restart: the data directory, the database and the
/// configuration every process of this deployment starts with.
pub struct Deployment {
    pub data_dir: PathBuf,
    pub mail_dir: PathBuf,
    /// `None`: the SQLite file in `data_dir`.
    pub postgres_url: Option<String>,
    env: Vec<(String, String)>,
    unset: Vec<String>,
}

impl Deployment {
    pub fn new(data_dir: &Path, postgres_url: Option<String>) -> Self {
        Self {
            data_dir: data_dir.to_path_buf(),
            mail_dir: data_dir.join("mail"),
            postgres_url,
            env: Vec::new(),
            unset: Vec::new(),
        }
    }

    /// One more `GARDIEN_*` variable for every process started from now on.
    pub fn set(&mut self, key: &str, value: impl ToString) {
        self.env.retain(|(k, _)| k != key);
        self.unset.retain(|k| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    /// Leaves out a variable the processes would get by default.
    pub fn unset(&mut self, key: &str) {
        self.env.retain(|(k, _)| k != key);
        self.unset.push(key.to_string());
    }

    pub fn database_url(&self) -> String {
        match &self.postgres_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("gardien.db").display()
            ),
        }
    }

    pub fn is_sqlite(&self) -> bool {
        self.postgres_url.is_none()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_gardien"));
        // Only this deployment's configuration reaches the child.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("GARDIEN_") {
                command.env_remove(key);
            }
        }
        command
            .args(args)
            .env("GARDIEN_DATA_DIR", &self.data_dir)
            .env("GARDIEN_LISTEN_ADDR", "127.0.0.1:0")
            .env("GARDIEN_LOG_FORMAT", "json")
            .env("GARDIEN_LOG", "info")
            .env("GARDIEN_MAIL__TRANSPORT", "file")
            .env("GARDIEN_MAIL__POLL_INTERVAL_MS", "50")
            .env("GARDIEN_RATE_LIMIT__ENABLED", "false")
            .env("GARDIEN_PASSWORD__HASHING_WORKERS", "2")
            .env("GARDIEN_PASSWORD__HASHING_QUEUE", "256")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if let Some(url) = &self.postgres_url {
            command.env("GARDIEN_DATABASE_URL", url);
        }
        for (key, value) in &self.env {
            command.env(key, value);
        }
        for key in &self.unset {
            command.env_remove(key);
        }
        command
    }

    /// `gardien credential create`: the secret it prints.
    pub async fn credential(&self, role: &str, name: &str) -> String {
        let output = self
            .command(&["credential", "create", "--role", role, "--name", name])
            .output()
            .await
            .expect("the gardien binary runs");
        assert!(
            output.status.success(),
            "credential create failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let secret = String::from_utf8(output.stdout).unwrap().trim().to_string();
        assert!(!secret.is_empty() && !secret.contains(char::is_whitespace));
        secret
    }

    /// Runs `gardien <args>` to its end (standard input closed).
    pub async fn output(&self, args: &[&str]) -> std::process::Output {
        self.command(args)
            .output()
            .await
            .expect("the gardien binary runs")
    }

    /// `gardien serve`, once it listens.
    pub async fn start(&self) -> Server {
        self.start_with(&["serve"]).await
    }

    /// `gardien <args>` (a `serve` with options), once it listens.
    pub async fn start_with(&self, args: &[&str]) -> Server {
        self.spawn(args).listening(Duration::from_secs(60)).await
    }

    /// `gardien <args>` started, without waiting for it to listen.
    pub fn spawn(&self, args: &[&str]) -> Starting {
        let mut child = self
            .command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the gardien binary starts");
        let pid = child.id().expect("a running child has a pid");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (listening, addr) = tokio::sync::oneshot::channel();
        let stderr = child.stderr.take().unwrap();
        let lines_to = logs.clone();
        tokio::spawn(async move {
            let mut listening = Some(listening);
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("gardien listening") {
                    if let (Some(tx), Some(addr)) = (listening.take(), logged_addr(&line)) {
                        tx.send(addr).ok();
                    }
                }
                lines_to.lock().unwrap().push(line);
            }
        });
        Starting {
            child,
            pid,
            addr,
            logs,
        }
    }

    /// A connection of the test's own to the deployment's database.
    pub async fn connect_db(&self) -> DatabaseConnection {
        sea_orm::Database::connect(self.database_url())
            .await
            .expect("the deployment's database opens")
    }
}

/// The `addr` field of a JSON log line.
pub fn logged_addr(line: &str) -> Option<SocketAddr> {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v["addr"].as_str()?.parse::<SocketAddr>().ok())
}

/// A `gardien serve` process that may not listen yet.
pub struct Starting {
    child: Child,
    pid: u32,
    addr: tokio::sync::oneshot::Receiver<SocketAddr>,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Starting {
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// The first log line containing `needle`, if one comes `within`.
    pub async fn log_line(&self, needle: &str, within: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let found = self
                .logs
                .lock()
                .unwrap()
                .iter()
                .find(|line| line.contains(needle))
                .cloned();
            if found.is_some() || tokio::time::Instant::now() >= deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The server, once it listens (a panic with its log if it does not
    /// within `within`).
    pub async fn listening(self, within: Duration) -> Server {
        let Starting {
            mut child,
            pid,
            addr,
            logs,
        } = self;
        match tokio::time::timeout(within, addr).await {
            Ok(Ok(addr)) => Server {
                child,
                pid,
                addr,
                logs,
            },
            _ => {
                let status = child.try_wait().ok().flatten();
                child.kill().await.ok();
                panic!(
                    "gardien serve did not start (exit: {status:?}):\n{}",
                    logs.lock().unwrap().join("\n")
                );
            }
        }
    }
}

/// One `gardien serve` process.
pub struct Server {
    child: Child,
    pid: u32,
    pub addr: SocketAddr,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// A lazily connected channel: calls made after the process died fail
    /// (UNAVAILABLE) instead of hanging.
    pub fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect_timeout(Duration::from_secs(2))
            .connect_lazy()
    }

    /// SIGKILL: no drain, no cleanup, as a crash or an OOM kill would.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("SIGKILL");
    }

    /// SIGTERM, as an orchestrator stopping the instance would send.
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .expect("kill(1) runs");
        assert!(status.success(), "kill -TERM {} failed", self.pid);
    }

    /// SIGHUP, as an operator asking for the TLS certificate to be reloaded.
    pub fn hangup(&self) {
        let status = std::process::Command::new("kill")
            .args(["-HUP", &self.pid.to_string()])
            .status()
            .expect("kill(1) runs");
        assert!(status.success(), "kill -HUP {} failed", self.pid);
    }

    /// The exit status, if the process ends within `within`.
    pub async fn wait(&mut self, within: Duration) -> Option<ExitStatus> {
        tokio::time::timeout(within, self.child.wait())
            .await
            .ok()
            .and_then(Result::ok)
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }
}
