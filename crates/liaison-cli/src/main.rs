//! `liaison`: the command line of a Liaison node.
//!
//! Exit codes (also in `liaison --help`):
//! 0 success · 1 failure · 2 usage error · 3 invalid input · 4 not found ·
//! 5 conflict (stale version, illegal transition, duplicate) · 6 not permitted ·
//! 7 integrity check failed (audit chain, rule packs) · 10 internal error.

mod cmd;
mod config;
mod output;
mod rules;

use clap::Parser;
use liaison_server::service::ServiceError;
use std::process::ExitCode;

fn exit_code(e: &anyhow::Error) -> u8 {
    if let Some(s) = e.downcast_ref::<ServiceError>() {
        return match s {
            ServiceError::Invalid(_) => 3,
            ServiceError::NotFound(_) => 4,
            ServiceError::IllegalTransition { .. } | ServiceError::Conflict(_) => 5,
            ServiceError::Forbidden(_) | ServiceError::Unauthenticated(_) => 6,
            ServiceError::Internal(_) => 10,
        };
    }
    if e.downcast_ref::<cmd::IntegrityFailure>().is_some() {
        return 7;
    }
    if e.downcast_ref::<cmd::InputError>().is_some() {
        return 3;
    }
    1
}

fn main() -> ExitCode {
    let cli = cmd::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("LIAISON_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,liaison=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(10);
        }
    };
    match runtime.block_on(cmd::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}
