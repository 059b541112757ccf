//! A chain of stores: each box's closed, k-suppressed figures (`store::outbox`) delivered to the head
//! office's PostgreSQL, and the chain-wide report over them. The only module that knows PostgreSQL.
//!
//! - [`schema`]: the server's schema, migrations, stores and their boxes' roles, the views.
//! - [`sync`]: delivery from a box: batches, idempotent upserts (highest revision wins), backoff.
//! - [`report`]: `iobox chain report`: footfall per store per day, week over week, top zones, queues.
//!
//! Nothing here ever sees a track id or anything per person: only the outbox's figures leave the box.

pub mod report;
pub mod schema;
pub mod sync;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres_rustls::MakeRustlsConnect;

/// A connection to head office, for callers that hold one without knowing PostgreSQL.
pub type Client = postgres::Client;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{field}: {message}")]
    Config { field: String, message: String },
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("head office {target}: {message}")]
    Db { target: String, message: String, source: postgres::Error },
    #[error(
        "head office {target}: this box's login is bound to {bound}, not to store '{store}' (chain.store); a box can only deliver its own store's figures"
    )]
    WrongStore { target: String, store: String, bound: String },
    #[error(
        "head office {target}: schema version {found} is newer than this iobox knows ({supported}); use a newer iobox"
    )]
    TooNew { target: String, found: i32, supported: i32 },
    #[error(
        "head office {target}: not set up (schema version {found}, {supported} needed): run `iobox chain init` there"
    )]
    NotInitialised { target: String, found: i32, supported: i32 },
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A PostgreSQL error with the server's own message (`postgres::Error`'s display says only "db error").
pub(crate) fn db(target: &str) -> impl Fn(postgres::Error) -> Error + '_ {
    move |source| {
        let message = match source.as_db_error() {
            Some(d) => {
                let mut m = format!("{}: {}", d.severity(), d.message());
                if let Some(detail) = d.detail() {
                    m.push_str(&format!(" ({detail})"));
                }
                m
            }
            None => {
                // "error connecting to server: Connection refused (os error 111)": the cause says what to fix.
                let mut m = source.to_string();
                let mut cause = std::error::Error::source(&source);
                while let Some(c) = cause {
                    let text = c.to_string();
                    if !m.contains(&text) {
                        m.push_str(&format!(": {text}"));
                    }
                    cause = c.source();
                }
                m
            }
        };
        Error::Db { target: target.to_string(), message, source }
    }
}

/// A head-office server: where and how to connect.
#[derive(Clone)]
pub struct Target {
    config: postgres::Config,
    tls: MakeRustlsConnect,
    /// `user@host:port/dbname`, for messages (never the password).
    pub label: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label)
    }
}

impl Target {
    /// Parses a connection string (`host=... user=...` or `postgresql://...`), with the password from
    /// `password_file` when given, and TLS roots from `ca_file` (default: the system's). TLS is used
    /// when the server offers it (`sslmode=prefer`, the default) or always (`sslmode=require`), and the
    /// server's certificate is always verified.
    pub fn new(url: &str, field: &str, password_file: Option<&Path>, ca_file: Option<&Path>) -> Result<Target> {
        let mut config: postgres::Config = url.parse().map_err(|e| Error::Config {
            field: field.to_string(),
            message: format!("not a PostgreSQL connection string: {e}"),
        })?;
        if let Some(p) = password_file {
            let text = std::fs::read_to_string(p)
                .map_err(|e| Error::File { path: p.to_path_buf(), message: e.to_string() })?;
            let password = text.trim_end_matches(['\n', '\r']);
            if password.is_empty() {
                return Err(Error::File { path: p.to_path_buf(), message: "the password file is empty".into() });
            }
            config.password(password);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.keepalives_idle(Duration::from_secs(60));
        config.application_name("iobox");
        let tls = MakeRustlsConnect::new(tls_config(ca_file)?);
        let host = config
            .get_hosts()
            .first()
            .map(|h| match h {
                postgres::config::Host::Tcp(s) => s.clone(),
                postgres::config::Host::Unix(p) => p.display().to_string(),
            })
            .unwrap_or_else(|| "localhost".into());
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let label = format!(
            "{}@{host}:{port}/{}",
            config.get_user().unwrap_or("?"),
            config.get_dbname().unwrap_or(config.get_user().unwrap_or("?"))
        );
        Ok(Target { config, tls, label })
    }

    /// Connects, with a statement timeout so that a stuck server is noticed.
    pub fn connect(&self) -> Result<Client> {
        let mut client = self.config.connect(self.tls.clone()).map_err(db(&self.label))?;
        client.batch_execute("SET statement_timeout = '120s'").map_err(db(&self.label))?;
        Ok(client)
    }
}

/// TLS with rustls (ring): the server's certificate checked against `ca_file` or the system's roots.
fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(p) => {
            let file_err = |message: String| Error::File { path: p.to_path_buf(), message };
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(p)
                .map_err(|e| file_err(e.to_string()))?
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| file_err(format!("not PEM certificates: {e}")))?;
            if certs.is_empty() {
                return Err(file_err("no certificate in the file".into()));
            }
            for c in certs {
                roots.add(c).map_err(|e| file_err(format!("unusable certificate: {e}")))?;
            }
        }
        None => {
            for c in rustls_native_certs::load_native_certs().certs {
                // A broken system certificate is skipped, as every TLS client does.
                let _ = roots.add(c);
            }
        }
    }
    // ring builds wherever a C compiler does (aws-lc-rs needs more); PostgreSQL servers do not offer the
    // post-quantum key exchanges ring lacks.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Usage(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}
