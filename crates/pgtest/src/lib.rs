//! Throwaway PostgreSQL clusters for tests.
//!
//! The first call to [`database`] in a test process starts one private
//! PostgreSQL cluster (`initdb` + `pg_ctl` on a temporary directory, a free
//! loopback port and a Unix socket in that directory); every call then
//! creates a fresh, uniquely named database in it, so tests never see each
//! other's rows. The cluster is stopped and its directory removed when the
//! test process exits (a small watchdog process waits for it), even if a
//! test panicked.
//!
//! Tests that need Postgres must fail when it cannot start, never skip:
//! [`database`] panics with the reason (missing binaries, `initdb` output,
//! the server log), which fails the calling test.
//!
//! Binaries come from `SEALBASE_PG_BIN` if set, else
//! `/usr/lib/postgresql/15/bin`. PostgreSQL refuses to run as root, so when
//! the test process is root the server runs as the `postgres` system user
//! through `runuser`, in a directory owned by that user.
#![deny(missing_docs)]
// This crate is test support: failing loudly (panicking) is its contract.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::ffi::OsStr;
use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// Default location of the PostgreSQL 15 binaries on Debian.
pub const DEFAULT_PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A running throwaway cluster.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
    run_as: Option<String>,
}

/// A database created for one test.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    name: String,
    port: u16,
    socket_dir: PathBuf,
}

impl TestDatabase {
    /// The database name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `postgres://postgres@127.0.0.1:PORT/NAME` (TCP on loopback).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{}", self.port, self.name)
    }

    /// The same database over the cluster's Unix socket
    /// (`postgres://postgres@localhost:PORT/NAME?host=/socket/dir`).
    pub fn socket_url(&self) -> String {
        format!(
            "postgres://postgres@localhost:{}/{}?host={}",
            self.port,
            self.name,
            self.socket_dir.display()
        )
    }

    /// The TCP port of the cluster.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding the cluster's Unix socket.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The process-wide cluster, started on first use.
///
/// # Panics
/// If the cluster cannot be started; the message says why.
pub fn cluster() -> &'static Cluster {
    match CLUSTER.get_or_init(Cluster::start) {
        Ok(c) => c,
        Err(e) => panic!("sealbase-pgtest: cannot start PostgreSQL: {e}"),
    }
}

/// A fresh empty database for one test. `label` (e.g. the test name) is
/// folded into the database name to make logs readable.
///
/// # Panics
/// If the cluster cannot be started or the database cannot be created.
pub fn database(label: &str) -> TestDatabase {
    let cluster = cluster();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let clean: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(30)
        .collect();
    let name = format!("t{}_{n}_{clean}", std::process::id());
    cluster
        .psql("postgres", &format!("CREATE DATABASE \"{name}\""))
        .unwrap_or_else(|e| panic!("sealbase-pgtest: cannot create database {name}: {e}"));
    TestDatabase {
        name,
        port: cluster.port,
        socket_dir: cluster.dir.clone(),
    }
}

impl Cluster {
    fn start() -> Result<Self, String> {
        let bin = std::env::var_os("SEALBASE_PG_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_PG_BIN));
        for tool in ["initdb", "pg_ctl", "psql"] {
            if !bin.join(tool).exists() {
                return Err(format!(
                    "{} not found (install postgresql-15 or set SEALBASE_PG_BIN)",
                    bin.join(tool).display()
                ));
            }
        }
        let is_root = fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .map_err(|e| format!("cannot read /proc/self: {e}"))?;
        let run_as = is_root.then(|| "postgres".to_string());

        let dir = std::env::temp_dir().join(format!(
            "sealbase-pg-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        if let Some(user) = &run_as {
            let (uid, gid) = lookup_user(user)?;
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| format!("chown {} to {user}: {e}", dir.display()))?;
        }
        let mut cluster = Cluster {
            dir,
            port: 0,
            bin,
            run_as,
        };
        // Make sure the directory goes away even if start-up fails below.
        cluster.spawn_watchdog()?;

        let data = cluster.dir.join("data");
        let out = cluster.run(
            "initdb",
            &[
                OsStr::new("-D"),
                data.as_os_str(),
                OsStr::new("-A"),
                OsStr::new("trust"),
                OsStr::new("-U"),
                OsStr::new("postgres"),
                OsStr::new("-E"),
                OsStr::new("UTF8"),
                OsStr::new("--locale=C"),
                OsStr::new("--no-sync"),
            ],
        )?;
        check(&out, "initdb")?;

        // A port can be taken between probing and binding; retry a few times.
        let mut last_err = String::new();
        for _ in 0..5 {
            cluster.port = free_port()?;
            let opts = format!(
                "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} \
                 -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
                 -c max_connections=300 -c shared_buffers=64MB",
                cluster.port,
                cluster.dir.display()
            );
            let log = cluster.dir.join("server.log");
            let out = cluster.run(
                "pg_ctl",
                &[
                    OsStr::new("-D"),
                    data.as_os_str(),
                    OsStr::new("-l"),
                    log.as_os_str(),
                    OsStr::new("-o"),
                    OsStr::new(&opts),
                    OsStr::new("-w"),
                    OsStr::new("-t"),
                    OsStr::new("60"),
                    OsStr::new("start"),
                ],
            )?;
            if out.status.success() {
                return Ok(cluster);
            }
            last_err = format!(
                "pg_ctl start failed: {}\nserver log:\n{}",
                String::from_utf8_lossy(&out.stderr),
                fs::read_to_string(&log).unwrap_or_default()
            );
        }
        Err(last_err)
    }

    /// The cluster's TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs one SQL command with `psql` against `database`.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, String> {
        let port = self.port.to_string();
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
            ])
            .args(["-p", &port, "-U", "postgres", "-d", database, "-c", sql])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("run psql: {e}"))?;
        check(&out, "psql")?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn run(&self, tool: &str, args: &[&OsStr]) -> Result<Output, String> {
        let path = self.bin.join(tool);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&path);
                c
            }
            None => Command::new(&path),
        };
        cmd.args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("run {tool}: {e}"))
    }

    /// Spawns a detached shell that waits for this process to exit, then
    /// stops the server and removes the directory.
    fn spawn_watchdog(&self) -> Result<(), String> {
        let pg_ctl = self.bin.join("pg_ctl");
        let data = self.dir.join("data");
        let stop = match &self.run_as {
            Some(user) => format!(
                "runuser -u {user} -- '{}' -D '{}' -m immediate stop",
                pg_ctl.display(),
                data.display()
            ),
            None => format!(
                "'{}' -D '{}' -m immediate stop",
                pg_ctl.display(),
                data.display()
            ),
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.2; done; \
             if [ -f '{data}/postmaster.pid' ]; then {stop}; fi; rm -rf '{dir}'",
            pid = std::process::id(),
            data = data.display(),
            dir = self.dir.display(),
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(drop)
            .map_err(|e| format!("spawn cleanup watchdog: {e}"))
    }
}

fn check(out: &Output, what: &str) -> Result<(), String> {
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} exited with {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("probe port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("probe port: {e}"))
}

fn lookup_user(user: &str) -> Result<(u32, u32), String> {
    let passwd = fs::read_to_string("/etc/passwd").map_err(|e| format!("read /etc/passwd: {e}"))?;
    passwd
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let _pw = f.next()?;
            let uid = f.next()?.parse().ok()?;
            let gid = f.next()?.parse().ok()?;
            (name == user).then_some((uid, gid))
        })
        .next()
        .ok_or_else(|| {
            format!("system user {user:?} not found (PostgreSQL refuses to run as root)")
        })
}
