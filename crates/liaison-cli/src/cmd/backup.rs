//! [instances] `liaison backup` and `liaison restore` (see `liaison_service::backup` for the
//! archive format).

use super::{Ctx, InputError};
use crate::config::Config;
use anyhow::{Context, Result, bail};
use clap::Args;
use liaison_service::backup::{self, BackupError, DatabaseLocation, RestoreOptions};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// The archive to write (a new file, outside the data directory). It holds the node's
    /// secret keys: it is created with mode 0600; keep it like the keys themselves.
    #[arg(long, short)]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The archive `liaison backup` wrote.
    pub archive: PathBuf,
    /// Replace a data directory that holds a node (stop the node first; the old directory is
    /// kept beside it, renamed `NAME.before-restore-TIME`), or a PostgreSQL database that holds
    /// data (stop every instance first).
    #[arg(long)]
    pub force: bool,
    /// PostgreSQL: the database to restore into (default: the one in the archived liaison.toml).
    #[arg(long)]
    pub database_url: Option<String>,
}

/// The SQLite file a `sqlite://PATH[?…]` URL names.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty()).then(|| PathBuf::from(path))
}

fn refused(e: BackupError) -> anyhow::Error {
    match e {
        BackupError::Refused(m) => InputError(m).into(),
        BackupError::Invalid(m) => super::IntegrityFailure(format!("the archive is not valid: {m}")).into(),
        other => anyhow::Error::new(other),
    }
}

pub async fn backup(ctx: &Ctx, a: BackupArgs) -> Result<()> {
    let (node, config) = ctx.node().await?;
    let db = match sqlite_path(&config.node.database_url) {
        Some(p) => DatabaseLocation::Sqlite(p),
        None => DatabaseLocation::Postgres,
    };
    let rep = backup::backup(&node, &ctx.data_dir, &db, &a.out)
        .await
        .map_err(refused)
        .context("backup failed (nothing was written)")?;
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&rep)?);
    } else {
        println!(
            "Backup written: {} ({} bytes, {} files, {} database{})",
            rep.archive.display(),
            rep.bytes,
            rep.files,
            rep.backend,
            rep.node_id
                .as_deref()
                .map(|n| format!(", node {n}"))
                .unwrap_or_default()
        );
        println!("It holds the node's secret keys (file mode 0600): store it like the keys themselves.");
    }
    Ok(())
}

pub async fn restore(ctx: &Ctx, a: RestoreArgs) -> Result<()> {
    if !a.archive.is_file() {
        bail!(InputError(format!("{} is not a file", a.archive.display())));
    }
    let opts = RestoreOptions {
        force: a.force,
        database_url: a.database_url,
    };
    let url_of = |stage: &std::path::Path| {
        Config::load(stage)
            .map(|c| c.node.database_url)
            .map_err(|e| format!("{e:#}"))
    };
    let rep = backup::restore(&a.archive, &ctx.data_dir, &opts, &url_of)
        .await
        .map_err(refused)
        .context("restore failed (the data directory was left as it was)")?;
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&rep)?);
    } else {
        println!(
            "Restored {} ({} files, {} database, backup of {}) into {}",
            rep.node_id.as_deref().unwrap_or("the node"),
            rep.files,
            rep.backend,
            rep.created_at,
            rep.data_dir.display()
        );
        if let Some(p) = &rep.previous {
            println!(
                "The replaced data directory is kept at {} (delete it when satisfied).",
                p.display()
            );
        }
        println!(
            "At its next start the node recovers its links with every peer before it sends (docs/federation.md §7.2)."
        );
    }
    if let Ok(c) = Config::load(&rep.data_dir)
        && let Some(p) = sqlite_path(&c.node.database_url)
        && p.parent() != Some(rep.data_dir.as_path())
        && p.parent().and_then(|d| d.canonicalize().ok()) != rep.data_dir.canonicalize().ok()
    {
        eprintln!(
            "warning: liaison.toml names the database {}, outside {}; edit database_url (and rules_dir) if the node moved",
            p.display(),
            rep.data_dir.display()
        );
    }
    Ok(())
}
