//! `liaison init` and `liaison serve`.

use super::{Ctx, InputError, open_node};
use crate::config::{Config, FILE};
use anyhow::{Context, Result, bail};
use clap::Args;
use jiff::{SignedDuration, Timestamp};
use liaison_core::directory::{Agency, AgencyKind, time_zone};
use liaison_core::jurisdiction::Jurisdiction;
use liaison_core::{AgencyId, CountryCode, Role};
use liaison_server::service::Node;
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

/// Adds every jurisdiction the rule packs know, with their English and Chinese names.
pub async fn seed_jurisdictions(node: &Node) -> Result<usize> {
    let packs = node.legal.packs();
    let mut n = 0;
    for code in packs.jurisdictions().collect::<Vec<_>>() {
        let (en, zh) = packs.jurisdiction_name(code).unwrap_or((code.as_str(), code.as_str()));
        node.store
            .upsert_jurisdiction(&Jurisdiction {
                code,
                name_en: en.to_string(),
                name_zh: zh.to_string(),
            })
            .await?;
        n += 1;
    }
    Ok(n)
}

pub async fn init(ctx: &Ctx, a: InitArgs) -> Result<()> {
    let dir = &ctx.data_dir;
    if dir.join(FILE).exists() {
        bail!(InputError(format!(
            "{} already has a {FILE}; this data directory is initialised",
            dir.display()
        )));
    }
    let jurisdiction = CountryCode::parse(&a.jurisdiction).map_err(|e| InputError(format!("--jurisdiction: {e}")))?;
    let kind: AgencyKind = a
        .agency_kind
        .parse()
        .map_err(|e| InputError(format!("--agency-kind: {e}")))?;
    time_zone(&a.time_zone).map_err(|e| InputError(format!("--time-zone: {e}")))?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?;
    let mut config = Config::defaults(&dir);
    if let Some(url) = a.database_url {
        config.node.database_url = url;
    }
    if let Some(l) = a.listen {
        config.node.listen = l;
    }
    let rules = crate::rules::install(&config.node.rules_dir)?;
    let node = open_node(&config).await?;
    seed_jurisdictions(&node).await?;
    if !node.store.jurisdictions().await?.iter().any(|j| j.code == jurisdiction) {
        node.store
            .upsert_jurisdiction(&Jurisdiction {
                code: jurisdiction,
                name_en: jurisdiction.to_string(),
                name_zh: jurisdiction.to_string(),
            })
            .await?;
    }
    let now = Timestamp::now();
    let agency = Agency {
        id: AgencyId::new(),
        code: a.agency_code.clone(),
        name_en: a.agency_name.clone(),
        name_native: a.agency_native_name.unwrap_or(a.agency_name),
        jurisdiction,
        kind,
        time_zone: a.time_zone,
    };
    node.store.insert_agency(&agency, None, "init", now).await?;
    let admin = node
        .store
        .create_user("admin", "Node administrator", agency.id, Role::Admin, "init", now)
        .await?;
    let (token, info) = node
        .store
        .create_token(admin.id, "init", now + SignedDuration::from_hours(24 * 90), "init", now)
        .await?;
    std::fs::write(dir.join(FILE), config.commented()?)
        .with_context(|| format!("cannot write {}", dir.join(FILE).display()))?;
    super::federation::create_identity_for_init(&node, &dir, &agency, &a.federation).await?; // [federation]
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
    Ok(())
}

pub async fn serve(ctx: &Ctx, a: ServeArgs) -> Result<()> {
    let (node, config) = ctx.node().await?;
    liaison_server::intel::set_config(config.intel.clone());
    let listen = a.listen.unwrap_or(config.node.listen.clone());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    eprintln!("Liaison node serving on http://{addr}/api/v1 (API docs: http://{addr}/api/v1/docs/) — Ctrl-C to stop");
    liaison_server::serve(
        node,
        listener,
        Duration::from_secs(config.node.tick_seconds),
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
