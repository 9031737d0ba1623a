//! `liaison demo`: a throwaway node with a realistic directory and two years of requests.
//!
//! The agencies are real public bodies; every phone number, e-mail address and person is
//! fictitious (555 numbers, `.invalid` domains). The requests follow each pair's typical
//! behaviour, including the pattern the project exists to fix: letters between some pairs go
//! unanswered for months (of ten requests one agency sent in a year, two were answered).

use super::Ctx;
use anyhow::{Context, Result};
use clap::Args;
use jiff::{SignedDuration, Timestamp};
use liaison_core::Role;
use liaison_service::GroupBy;
use liaison_service::fixtures::demo;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:8640")]
    pub listen: String,
    /// Build the data, print the report and exit instead of serving.
    #[arg(long)]
    pub no_serve: bool,
    /// Random seed (the same seed gives the same cases).
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
    /// Number of requests to generate.
    #[arg(long, default_value_t = 360)]
    pub requests: usize,
    /// Skip the second part: two federated nodes (US FBI and China's MPS) exchanging a request.
    #[arg(long)]
    pub no_federation: bool,
}

pub async fn demo(ctx: &Ctx, a: DemoArgs) -> Result<()> {
    // `--data-dir` (or LIAISON_DATA_DIR) keeps the demo where the user asked; otherwise a fresh
    // folder in the temporary directory, cleared first.
    let dir = match &ctx.data_dir_given {
        true => ctx.data_dir.clone(),
        false => {
            let d = std::env::temp_dir().join(format!("liaison-demo-{}", std::process::id()));
            if d.exists() {
                std::fs::remove_dir_all(&d).with_context(|| format!("cannot clear {}", d.display()))?;
            }
            d
        }
    };
    let (dir, mut config, node, _) = super::init::create_data_dir(&dir, None, Some(a.listen.clone())).await?;
    // The demo's users are CODE.role (fbi.officer, cn-mps.desk, …); the CLI acts as the FBI's
    // case officer unless told otherwise with --as.
    config.node.cli_user = "fbi.officer".into();
    let now = Timestamp::now();
    eprintln!("Building a demonstration node in {} …", dir.display());
    let started = std::time::Instant::now();
    let (cast, transitions) = demo::populate(&node, a.seed, a.requests, now).await?;
    // The demonstration asks for no second factor, so that it can be tried without an
    // authenticator app; the configuration says so, and a node made with `liaison init` asks.
    config.sign_in.require_second_factor = false;
    // Four eyes on one kind, after the history was made: a stored-content draft is sent only
    // once a supervisor who did not ask approves it (docs/lifecycle.md "Four eyes").
    config.approval.kinds = vec![liaison_core::RequestKind::StoredContent];
    let node = node
        .with_sign_in(config.sign_in.clone())
        .with_approval(config.approval.clone());
    super::init::write_config(&dir, &config)?;
    let admin = cast.who("FBI", Role::Admin)?;
    for agency in DEMO_SIGN_IN_AGENCIES {
        for role in Role::ALL {
            if let Ok(u) = cast.who(agency, *role) {
                node.set_password(admin, &u.username, DEMO_PASSWORD, false, now).await?;
            }
        }
    }
    let (token, _) = node.create_token(admin, &admin.username, "demo", 7, now).await?;
    let analyst = cast.who("FBI", Role::Analyst)?;
    let (analyst_token, _) = node.create_token(admin, &analyst.username, "demo", 7, now).await?;
    let total = liaison_service::fixtures::count_requests(&node).await?;
    eprintln!(
        "{total} requests and {transitions} transitions over two years in {:.1} s.",
        started.elapsed().as_secs_f64()
    );
    let from = now - SignedDuration::from_hours(24 * 730);
    let report = node.cooperation(admin, from, now, GroupBy::Jurisdiction, now).await?;
    if ctx.json && a.no_serve {
        return crate::output::json(
            &serde_json::json!({"data_dir": dir, "requests": total, "transitions": transitions, "report": report, "admin_token": token}),
        );
    }
    super::admin::print_cooperation(&report, "table")?;
    let by_agency = node.cooperation(admin, from, now, GroupBy::Agency, now).await?;
    super::admin::print_cooperation(&by_agency, "table")?;
    println!("Look at CN → US and US → CN: most letters are never acknowledged, and answers take months.");
    let intel_summary = super::intel::populate_intel_demo(&node, &dir.join("intel"), now)
        .await
        .context("intel demo")?;
    if !ctx.json {
        println!("\n== Network clean-up: a generated threat feed, enriched, routed and turned into notices ==");
        println!("{intel_summary}");
    }
    let (case_id, case_ref) = demo::joint_case(&node, &cast, now).await.context("joint case demo")?;
    if !ctx.json {
        println!("\n== Joint case: FBI, CN-MPS and DE-BKA work {case_ref} together ==");
        let fbi = cast.who("FBI", Role::Officer)?;
        let stats = node.case_stats(fbi, &case_id, now).await?;
        println!(
            "{} members, {} linked requests; open deadlines: {}. See it with: liaison --data-dir {} case show {case_id}",
            stats.members,
            stats.requests,
            stats.open_deadlines.len(),
            dir.display()
        );
    }
    let audit = node.verify_audit(admin).await?;
    println!("Audit log: {} entries, intact: {}", audit.entries, audit.is_intact());
    if !a.no_federation && !ctx.json {
        println!("\n== Federation: two nodes, cop to cop, with signed receipts and ledgers ==");
        super::federation::federated_demo(&dir.join("federation"))
            .await
            .context("federated demo")?;
    }
    if a.no_serve {
        return Ok(());
    }
    let listener = tokio::net::TcpListener::bind(&a.listen)
        .await
        .with_context(|| format!("cannot listen on {} (choose another with --listen)", a.listen))?;
    let addr = listener.local_addr()?;
    println!();
    println!("Demo node: http://{addr}/  (web UI in English and Chinese)");
    println!("Sign in at http://{addr}/login with a user name below and the password {DEMO_PASSWORD}");
    println!("(this demonstration node asks for no second factor; a node made with `liaison init` does):");
    for role in Role::ALL {
        let names: Vec<&str> = DEMO_SIGN_IN_AGENCIES
            .iter()
            .filter_map(|a| cast.who(a, *role).ok().map(|u| u.username.as_str()))
            .collect();
        if !names.is_empty() {
            println!("  {:<16} {}", role_words(*role), names.join("   "));
        }
    }
    println!(
        "Four eyes: a stored-content draft is sent only once a supervisor approves it (fbi.officer asks, fbi.supervisor sends)."
    );
    println!("API:       http://{addr}/api/v1   (docs: http://{addr}/api/v1/docs/)");
    println!("Admin token (FBI, fbi.admin):     {token}");
    println!("Analyst token (FBI, fbi.analyst): {analyst_token}");
    println!(
        "Try: curl -H 'Authorization: Bearer {analyst_token}' 'http://{addr}/api/v1/reports/cooperation?by=jurisdiction&format=csv'"
    );
    println!(
        "CLI: liaison --data-dir {} request list   (acts as fbi.officer; --as fbi.admin for administration)",
        dir.display()
    );
    println!("Ctrl-C to stop.");
    liaison_server::serve(node, listener, Duration::from_secs(30), super::init::shutdown_signal()).await?;
    Ok(())
}

/// The agencies whose users get [`DEMO_PASSWORD`]: both sides of the demonstration's pair.
const DEMO_SIGN_IN_AGENCIES: [&str; 2] = ["FBI", "CN-MPS"];

/// The password of the demonstration's users (printed; never use it on a real node).
const DEMO_PASSWORD: &str = "lantern-demo-2026";

/// What a role does, as the demo's sign-in list says it.
fn role_words(role: Role) -> &'static str {
    match role {
        Role::Officer => "case officer",
        Role::Desk => "24/7 desk",
        Role::LegalReviewer => "legal reviewer",
        Role::Supervisor => "supervisor",
        Role::Analyst => "analyst",
        Role::Auditor => "auditor",
        Role::Admin => "administrator",
    }
}
