//! `liaison init` and `liaison serve`.

use super::{Ctx, InputError, open_node};
use crate::config::{Config, FILE};
use anyhow::{Context, Result, bail};
use clap::Args;
use jiff::Timestamp;
use liaison_core::directory::{Agency, AgencyKind, time_zone};
use liaison_core::{AgencyId, CountryCode, Role};
use liaison_service::Node;
use liaison_service::setup::{NewUser, NodeSetup};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Database URL instead of the embedded SQLite file (e.g. postgres://postgres@127.0.0.1:5432/test).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Address the API will listen on.
    #[arg(long)]
    pub listen: Option<String>,
    /// Short code of the agency this node serves.
    #[arg(long, default_value = "NODE")]
    pub agency_code: String,
    /// The agency's name in English.
    #[arg(long, default_value = "Local agency")]
    pub agency_name: String,
    /// The agency's name in its own language (defaults to the English name).
    #[arg(long)]
    pub agency_native_name: Option<String>,
    /// ISO 3166-1 alpha-2 code of the agency's jurisdiction.
    #[arg(long, default_value = "US")]
    pub jurisdiction: String,
    /// police, prosecutor, central_authority, cert or point_of_contact_24_7.
    #[arg(long, default_value = "police")]
    pub agency_kind: String,
    /// IANA time zone of the agency.
    #[arg(long, default_value = "UTC")]
    pub time_zone: String,
    // [federation]
    #[command(flatten)]
    pub federation: super::federation::FedInitArgs,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (overrides liaison.toml).
    #[arg(long)]
    pub listen: Option<String>,
}

/// A new data directory: its folder, the rule packs, `liaison.toml` and the opened node. Written
/// once for `init`, `demo` and the federation demo; the node's contents come from
/// `Node::set_up`. Returns the configuration, the node and how many rule files were written.
pub async fn create_data_dir(
    dir: &std::path::Path,
    database_url: Option<String>,
    listen: Option<String>,
) -> Result<(PathBuf, Config, Node, usize)> {
    if dir.join(FILE).exists() {
        bail!(InputError(format!(
            "{} already has a {FILE}; this data directory is initialised",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?;
    // The data directory holds the database, the signing keys and the configuration: the
    // node's operator only (mode 0700; the database file 0600 once it exists).
    private(&dir, 0o700)?;
    let mut config = Config::defaults(&dir);
    if let Some(url) = database_url {
        config.node.database_url = url;
    }
    if let Some(l) = listen {
        config.node.listen = l;
    }
    let rules = crate::rules::install(&config.node.rules_dir)?;
    let node = open_node(&config).await?;
    let db = dir.join("liaison.db");
    if db.exists() {
        private(&db, 0o600)?;
    }
    Ok((dir, config, node, rules))
}

/// Restricts `path` to its owner (`mode`); nothing to do where there are no Unix permissions.
fn private(path: &std::path::Path, mode: u32) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot restrict the permissions of {}", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Writes `DIR/liaison.toml` (last, so that a failed set-up can be run again).
pub fn write_config(dir: &std::path::Path, config: &Config) -> Result<()> {
    let path = dir.join(FILE);
    std::fs::write(&path, config.commented()?).with_context(|| format!("cannot write {}", path.display()))
}

pub async fn init(ctx: &Ctx, a: InitArgs) -> Result<()> {
    let jurisdiction = CountryCode::parse(&a.jurisdiction).map_err(|e| InputError(format!("--jurisdiction: {e}")))?;
    let kind: AgencyKind = a
        .agency_kind
        .parse()
        .map_err(|e| InputError(format!("--agency-kind: {e}")))?;
    time_zone(&a.time_zone).map_err(|e| InputError(format!("--time-zone: {e}")))?;
    let (dir, mut config, node, rules) = create_data_dir(&ctx.data_dir, a.database_url, a.listen).await?;
    // [instances] The federation listen address is this instance's setting (liaison.toml).
    config.federation.listen = Some(a.federation.federation_listen.clone());
    let agency = Agency {
        id: AgencyId::new(),
        code: a.agency_code.clone(),
        name_en: a.agency_name.clone(),
        name_native: a.agency_native_name.unwrap_or(a.agency_name),
        name_zh: String::new(),
        jurisdiction,
        kind,
        time_zone: a.time_zone,
    };
    let identity = super::federation::identity_params(&dir, &agency, &a.federation)?;
    let created = node
        .set_up(
            &NodeSetup {
                agency: agency.clone(),
                users: vec![NewUser::new(
                    config.node.cli_user.clone(),
                    "Node administrator",
                    Role::Admin,
                )],
                token: Some((config.node.cli_user.clone(), 90)),
                identity: Some(identity),
                actor: "init".into(),
            },
            Timestamp::now(),
        )
        .await?;
    write_config(&dir, &config)?;
    if let Some(d) = &created.descriptor {
        super::federation::print_identity(&dir, d)?; // [federation]
    }
    let (token, info) = created
        .token
        .ok_or_else(|| anyhow::anyhow!("no admin token was issued"))?;
    if ctx.json {
        return crate::output::json(
            &serde_json::json!({"data_dir": dir, "agency": agency, "admin_token": token, "token_expires_at": info.expires_at, "rule_files": rules}),
        );
    }
    println!("Initialised {}", dir.display());
    println!("  config:     {}", dir.join(FILE).display());
    println!("  database:   {}", super::redact(&config.node.database_url));
    println!(
        "  rule packs: {} ({} files written)",
        config.node.rules_dir.display(),
        rules
    );
    println!(
        "  agency:     {} ({}, {})",
        agency.code, agency.name_en, agency.jurisdiction
    );
    println!("Admin token (shown once, expires {}):\n  {token}", info.expires_at);
    println!("Next: liaison serve --data-dir {}", dir.display());
    println!(
        "For the web pages, give {0} a password: liaison --data-dir {1} user password {0}",
        config.node.cli_user,
        dir.display()
    );
    Ok(())
}

pub async fn serve(ctx: &Ctx, a: ServeArgs) -> Result<()> {
    let (node, config) = ctx.node().await?;
    // [intel] feed uploads are spooled in the data directory, never held in memory.
    let node = node.with_intel_spool(ctx.data_dir.join("spool"));
    // [intel] an ingest killed while writing is rolled back before the node answers.
    if node
        .intel_recover()
        .await
        .context("rolling back an interrupted intel ingest")?
    {
        eprintln!("rolled back an intel ingest that was interrupted while writing");
    }
    // Second-factor secrets written before the node had a sign-in key are sealed now.
    let sealed = node
        .seal_second_factors()
        .await
        .context("sealing second-factor secrets under [sign_in] key_file")?;
    if sealed > 0 {
        eprintln!("sealed {sealed} second-factor secrets stored in the clear under [sign_in] key_file");
    }
    // Evidence retention: the sweep runs hourly (as `retention`); deletion is checked
    // against legal holds in its own transaction, so instances may all run it.
    let sweeper = node.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every.tick().await;
            match sweeper.evidence_sweep(None, jiff::Timestamp::now()).await {
                Ok(r) if !r.deleted.is_empty() || !r.uploads_expired.is_empty() => {
                    tracing::info!(
                        deleted = r.deleted.len(),
                        held = r.held.len(),
                        uploads_expired = r.uploads_expired.len(),
                        "evidence retention sweep"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "evidence retention sweep failed"),
            }
        }
    });
    let listen = a.listen.unwrap_or(config.node.listen.clone());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    eprintln!("Liaison node serving on http://{addr}/api/v1 (API docs: http://{addr}/api/v1/docs/) — Ctrl-C to stop");
    liaison_server::serve_with(
        node,
        listener,
        Duration::from_secs(config.node.tick_seconds),
        config.federation.settings(), // [instances] per-instance federation settings
        config.limits.to_limits(),
        shutdown_signal(),
    )
    .await
    .context("server failed")?;
    eprintln!("stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
