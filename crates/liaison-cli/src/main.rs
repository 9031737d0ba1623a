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
use liaison_service::ServiceError;
use std::process::ExitCode;

fn exit_code(e: &anyhow::Error) -> u8 {
    if let Some(s) = e.downcast_ref::<ServiceError>() {
        return match s {
            ServiceError::Invalid(_) | ServiceError::Unprocessable(_) | ServiceError::Incomplete(_) => 3,
            ServiceError::NotFound(_) => 4,
            ServiceError::IllegalTransition { .. } | ServiceError::Conflict(_) | ServiceError::Busy { .. } => 5,
            ServiceError::Forbidden(_) | ServiceError::Unauthenticated(_) => 6,
            ServiceError::Integrity(_) => 7,
            ServiceError::Internal(_) => 10,
        };
    }
    if e.downcast_ref::<cmd::IntegrityFailure>().is_some() {
        return 7;
    }
    if e.downcast_ref::<cmd::InputError>().is_some() {
        return 3;
    }
    // A file named on the command line that is not there: not found, like an unknown id.
    if e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
    }) {
        return 4;
    }
    1
}

/// The kind of failure an exit code stands for, in `--json` error documents.
fn kind_of(code: u8) -> &'static str {
    match code {
        3 => "invalid_input",
        4 => "not_found",
        5 => "conflict",
        6 => "not_permitted",
        7 => "integrity_check_failed",
        10 => "internal_error",
        _ => "failure",
    }
}

/// With `--json`, a failure is a JSON document on standard output too:
/// `{"error": {"exit_code", "kind", "message", "errors": [{"field", "message"}]}}`.
fn json_error(e: &anyhow::Error, code: u8) -> serde_json::Value {
    let fields: Vec<serde_json::Value> = match e.downcast_ref::<ServiceError>() {
        Some(ServiceError::Invalid(errs) | ServiceError::Incomplete(errs)) => errs
            .iter()
            .map(|f| serde_json::json!({"field": f.field, "message": f.message}))
            .collect(),
        _ => vec![],
    };
    let mut err = serde_json::json!({
        "exit_code": code,
        "kind": kind_of(code),
        "message": format!("{e:#}"),
    });
    if !fields.is_empty() {
        err["errors"] = serde_json::Value::Array(fields);
    }
    if let Some(ServiceError::IllegalTransition { allowed, .. }) = e.downcast_ref::<ServiceError>() {
        err["allowed"] = serde_json::json!(allowed);
    }
    serde_json::json!({ "error": err })
}

/// Stops quietly, with the status a shell gives a process ended by SIGPIPE (128 + 13), when
/// the reader of standard output went away (`liaison request list | head`): Rust ignores
/// SIGPIPE, so `println!` panics instead, with a backtrace an officer should not see.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let p = info.payload();
        let msg = p
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| p.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let cli = cmd::Cli::parse();
    let json = cli.json;
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
            let code = exit_code(&e);
            eprintln!("error: {e:#}");
            if json {
                println!("{}", json_error(&e, code));
            }
            ExitCode::from(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// The words of every command that runs something (leaves of the command tree, and
    /// commands that run without a subcommand).
    fn commands(c: &clap::Command, prefix: &str, out: &mut Vec<String>) {
        for sub in c.get_subcommands() {
            let words = if prefix.is_empty() {
                sub.get_name().to_string()
            } else {
                format!("{prefix} {}", sub.get_name())
            };
            if sub.get_name() == "help" {
                continue;
            }
            if !sub.is_subcommand_required_set() {
                out.push(words.clone());
            }
            commands(sub, &words, out);
        }
    }

    /// Every command has a marking rule (docs/markings.md), and every rule a command.
    #[test]
    fn every_command_has_a_marking_rule() {
        let mut all = Vec::new();
        commands(&super::cmd::Cli::command(), "", &mut all);
        assert!(all.len() > 30, "{all:?}");
        let missing: Vec<&String> = all
            .iter()
            .filter(|c| liaison_server::marking_rules::cli_rule(c).is_none())
            .collect();
        assert!(
            missing.is_empty(),
            "commands without a marking rule (add them to liaison_server::marking_rules::CLI): {missing:?}"
        );
        let stale: Vec<&str> = liaison_server::marking_rules::CLI
            .iter()
            .map(|(c, _)| *c)
            .filter(|c| !all.iter().any(|a| a == c))
            .collect();
        assert!(stale.is_empty(), "rules for commands that no longer exist: {stale:?}");
    }
}
