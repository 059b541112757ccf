//! A real PostgreSQL 15 server of a test's or benchmark's own, on 127.0.0.1 and a free port: `initdb` and
//! `pg_ctl` from Debian's postgresql-15, run as the `postgres` user when the caller is root (initdb refuses
//! root). Shared by tests/it and benches/chain.rs (`#[path]`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
pub const ADMIN_PASSWORD: &str = "head-office-admin-1";

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A PostgreSQL server of its own: data folder, port, superuser `postgres` with a password.
pub struct Postgres {
    dir: tempfile::TempDir,
    pub port: u16,
    /// TLS only on TCP (`hostssl`, with the certificate and key in the data folder); the superuser
    /// then connects over the Unix socket.
    tls: bool,
    /// fsync on (benchmarks: a real server's commit cost); tests run without.
    durable: bool,
}

fn as_postgres(program: &str) -> Command {
    let root = unsafe { libc::geteuid() } == 0;
    let path = format!("{PG_BIN}/{program}");
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &path]);
        c
    } else {
        Command::new(path)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Postgres {
    pub fn start() -> Postgres {
        Self::start_with(None, false)
    }

    /// With fsync on, as a real server: for timings.
    pub fn start_durable() -> Postgres {
        Self::start_with(None, true)
    }

    /// A server that accepts TCP clients only over TLS, with `server.crt` and `server.key` from `certs`.
    pub fn start_tls(certs: &Path) -> Postgres {
        Self::start_with(Some(certs), false)
    }

    fn start_with(certs: Option<&Path>, durable: bool) -> Postgres {
        assert!(
            Path::new(PG_BIN).join("initdb").is_file(),
            "PostgreSQL 15 is not installed ({PG_BIN}/initdb): run scripts/setup.sh test"
        );
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, ADMIN_PASSWORD).unwrap();
        if unsafe { libc::geteuid() } == 0 {
            // The server runs as `postgres`: it needs its folder, and to read the password file.
            let uid: u32 = String::from_utf8(Command::new("id").args(["-u", "postgres"]).output().unwrap().stdout)
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            std::os::unix::fs::chown(dir.path(), Some(uid), None).unwrap();
            std::os::unix::fs::chown(&pwfile, Some(uid), None).unwrap();
        }
        let out = as_postgres("initdb")
            .args(["-D", data.to_str().unwrap(), "-U", "postgres", "--auth-host=scram-sha-256", "--auth-local=trust"])
            .args(["-E", "UTF8", "--no-sync", "--pwfile", pwfile.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {}", text(&out));
        if let Some(certs) = certs {
            for f in ["server.crt", "server.key"] {
                std::fs::copy(certs.join(f), data.join(f)).unwrap();
            }
            std::fs::write(
                data.join("pg_hba.conf"),
                "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\nhostnossl all all 127.0.0.1/32 reject\n",
            )
            .unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(data.join("server.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
            if unsafe { libc::geteuid() } == 0 {
                let owner = std::fs::metadata(&data).unwrap();
                use std::os::unix::fs::MetadataExt;
                for f in ["server.crt", "server.key", "pg_hba.conf"] {
                    std::os::unix::fs::chown(data.join(f), Some(owner.uid()), Some(owner.gid())).unwrap();
                }
            }
        }
        let pg = Postgres { dir, port: free_port(), tls: certs.is_some(), durable };
        pg.resume();
        pg.admin("postgres").batch_execute("CREATE DATABASE chain").unwrap();
        pg
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts (again) on the same port.
    pub fn resume(&self) {
        let mut opts =
            format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.data().display());
        if self.tls {
            opts.push_str(" -c ssl=on");
        }
        let out = as_postgres("pg_ctl")
            .args(["-D", self.data().to_str().unwrap(), "-o", &opts, "-l"])
            .arg(self.dir.path().join("log"))
            .args(["-w", "-t", "60", "start"])
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl start: {}", text(&out));
    }

    /// Kills the server as a crash would (no shutdown checkpoint, clients cut off).
    pub fn kill(&self) {
        let out = as_postgres("pg_ctl")
            .args(["-D", self.data().to_str().unwrap(), "-m", "immediate", "-w", "stop"])
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl stop: {}", text(&out));
    }

    pub fn url(&self, user: &str) -> String {
        format!("host=127.0.0.1 port={} user={user} dbname=chain connect_timeout=5", self.port)
    }

    pub fn admin_url(&self) -> String {
        self.admin_url_for("chain")
    }

    pub fn admin_url_for(&self, db: &str) -> String {
        if self.tls {
            format!("host={} port={} user=postgres dbname={db}", self.data().display(), self.port)
        } else {
            format!("host=127.0.0.1 port={} user=postgres password={ADMIN_PASSWORD} dbname={db}", self.port)
        }
    }

    pub fn admin(&self, db: &str) -> postgres::Client {
        postgres::Client::connect(&self.admin_url_for(db), postgres::NoTls).unwrap()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_postgres("pg_ctl").args(["-D", self.data().to_str().unwrap(), "-m", "immediate", "stop"]).output();
    }
}
