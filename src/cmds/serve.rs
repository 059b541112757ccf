//! `iobox serve` and `iobox user`: the dashboard and its logins.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use crate::cmds::DbArgs;
use crate::stop_on_signal;

#[derive(Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    pub(crate) db: DbArgs,
    /// Address and port to listen on (default: [dashboard] listen, 127.0.0.1:8080). Port 0 picks a free one.
    #[arg(long)]
    pub(crate) listen: Option<std::net::SocketAddr>,
}

pub(crate) fn serve(args: ServeArgs) -> Result<ExitCode> {
    let config = args.db.load()?;
    let stop = stop_on_signal();
    let server = iobox::server::Server::start(&config, args.listen.unwrap_or(config.dashboard.listen), None)?;
    eprintln!("dashboard: http://{} (Ctrl-C to stop)", server.addr());
    while !stop.sleep(std::time::Duration::from_secs(3600)) {}
    server.stop();
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub(crate) enum UserCommand {
    /// Add a dashboard user; the password is asked for without echo (or read from stdin).
    Add {
        name: String,
        /// staff: the figures; integrator: also each camera's calibration.
        #[arg(long, value_enum)]
        role: iobox::server::Role,
        /// Read the password from the first line of standard input instead of asking.
        #[arg(long)]
        password_stdin: bool,
        /// Change the password and role of an existing user.
        #[arg(long)]
        replace: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List the users and their roles.
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Remove a user (their sessions end at their next request).
    Remove {
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

pub(crate) fn user(cmd: UserCommand) -> Result<ExitCode> {
    use iobox::server::auth;
    use iobox::store::users;
    match cmd {
        UserCommand::Add { name, role, password_stdin, replace, db } => {
            auth::valid_name(&name)?;
            let config = db.load()?;
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line).context("reading the password from stdin")?;
                line.trim_end_matches(['\r', '\n']).to_string()
            } else {
                let first = rpassword::prompt_password(format!("password for {name}: "))
                    .context("reading the password (use --password-stdin without a terminal)")?;
                let again = rpassword::prompt_password("again: ")?;
                if first != again {
                    bail!("the two passwords differ");
                }
                first
            };
            let hash = auth::hash_password(&password)?;
            let user = users::User {
                name: name.clone(),
                password_hash: hash,
                role: role.as_str().to_string(),
                created_at_ms: iobox::store::writer::now_ms(),
            };
            let existed = users::add(&config.store_path, &user, replace)?;
            eprintln!(
                "{} user '{name}' ({}) in {}",
                if existed { "changed" } else { "added" },
                role.as_str(),
                config.store_path.display()
            );
        }
        UserCommand::List { db } => {
            let config = db.load()?;
            drop(iobox::store::open_rw(&config.store_path)?);
            let pool = iobox::store::ReadPool::open(&config.store_path, 1)?;
            for u in pool.with(users::list)? {
                outln!("{}\t{}", u.name, u.role)?;
            }
        }
        UserCommand::Remove { name, db } => {
            let config = db.load()?;
            if !users::remove(&config.store_path, &name)? {
                bail!("there is no user called '{name}' in {}", config.store_path.display());
            }
            eprintln!("removed user '{name}'");
        }
    }
    Ok(ExitCode::SUCCESS)
}
