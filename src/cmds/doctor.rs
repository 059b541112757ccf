//! `iobox doctor`: what is wrong with this box, and what to do about it.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use iobox::jobs::doctor::{self, Status};

use crate::cmds::DbArgs;

#[derive(Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// One JSON list of the checks.
    #[arg(long)]
    pub json: bool,
}

pub fn doctor(args: DoctorArgs) -> Result<ExitCode> {
    let config = args.db.load()?;
    let checks = doctor::run(&config);
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&checks)?)?;
    } else {
        for c in &checks {
            let mark = match c.status {
                Status::Ok => "ok  ",
                Status::Warn => "warn",
                Status::Fail => "FAIL",
            };
            writeln!(out, "{mark}  {:<22} {}", c.check, c.detail)?;
            if let Some(fix) = &c.fix {
                writeln!(out, "      {:<22} fix: {fix}", "")?;
            }
        }
    }
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    if !args.json {
        writeln!(
            out,
            "{}",
            if failed == 0 { "this box is ready".to_string() } else { format!("{failed} checks failed") }
        )?;
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
