//! A throw-away PostgreSQL cluster of the test's own (initdb + pg_ctl on a
//! free port), so that stopping it never disturbs the shared one.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// The directory of `initdb` and `pg_ctl` (the newest installed version).
pub fn postgres_binaries() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .collect();
    versions.sort_by_key(|bin| {
        let version = bin.parent().and_then(Path::file_name);
        version.and_then(|v| v.to_str()?.parse::<u32>().ok())
    });
    versions.pop()
}

/// A throw-away PostgreSQL cluster on a free port, stopped on drop.
pub struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Cluster {
    pub fn start(bin: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("pgdata");
        std::fs::create_dir(&data).unwrap();
        if running_as_root() {
            // PostgreSQL refuses to run as root: the cluster belongs to postgres.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            run(Command::new("chown").args(["postgres:postgres"]).arg(&data));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Self {
            bin: bin.to_path_buf(),
            data,
            port,
            _dir: dir,
        };
        let data = cluster.data.to_string_lossy().into_owned();
        run(&mut cluster.as_postgres(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        ));
        cluster.start_server();
        cluster
    }

    /// Starts the server on the cluster's port and waits until it answers.
    pub fn start_server(&self) {
        self.pg_ctl(&[
            "start",
            "-w",
            "-t",
            "60",
            "-l",
            &self.log(),
            "-o",
            &self.options(),
        ]);
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn options(&self) -> String {
        format!("-p {} -k /tmp -c listen_addresses=127.0.0.1", self.port)
    }

    fn log(&self) -> String {
        self.data.join("server.log").to_string_lossy().into_owned()
    }

    pub fn pg_ctl(&self, args: &[&str]) {
        let data = self.data.to_string_lossy().into_owned();
        let mut all = vec!["-D", &data];
        all.extend_from_slice(args);
        run(&mut self.as_postgres("pg_ctl", &all));
    }

    fn as_postgres(&self, program: &str, args: &[&str]) -> Command {
        let program = self.bin.join(program);
        if running_as_root() {
            let mut command = Command::new("runuser");
            command
                .args(["-u", "postgres", "--"])
                .arg(program)
                .args(args);
            command
        } else {
            let mut command = Command::new(program);
            command.args(args);
            command
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data.to_string_lossy().into_owned();
        let stop = ["-D", data.as_str(), "stop", "-m", "immediate"];
        self.as_postgres("pg_ctl", &stop).output().ok();
    }
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn run(command: &mut Command) {
    let output = command.output().expect("the command runs");
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
