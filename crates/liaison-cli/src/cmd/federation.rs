//! Federation commands: `liaison peer …`, `liaison ledger …`, `liaison federation …`,
//! `liaison demo-federation`, and the identity creation `liaison init` calls.

use super::{Ctx, InputError, IntegrityFailure};
use crate::output::{json, table, when};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use jiff::{SignedDuration, Timestamp};
use liaison_core::directory::{Agency, AgencyKind, time_zone};
use liaison_core::lifecycle::{State, TransitionInput};
use liaison_core::request::{RequestDraft, RequestKind, Urgency};
use liaison_core::{AgencyId, CountryCode, RequestId, Role};
use liaison_service::federation::{IdentityParams, PeerFile, parse_peer_file};
use liaison_service::setup::{NewUser, NodeSetup};
use liaison_service::{Node, Principal};
use liaison_wire::{NodeDescriptor, NodeId, ProofBundle, verify_bundle};
use std::path::{Path, PathBuf};
use std::time::Duration;

// ---------------------------------------------------------------- identity (liaison init)

/// Federation flags of `liaison init`.
#[derive(Args, Debug, Clone, Default)]
pub struct FedInitArgs {
    /// Federation node id (a-z 0-9 . -); default: jurisdiction and agency code, e.g. us-fbi.
    #[arg(long)]
    pub node_id: Option<String>,
    /// Address the federation endpoints (HTTPS) listen on.
    #[arg(long, default_value = "127.0.0.1:8641")]
    pub federation_listen: String,
    /// HTTPS base URL peers reach this node at (default: https://FEDERATION_LISTEN).
    #[arg(long)]
    pub base_url: Option<String>,
}

fn default_node_id(agency: &Agency) -> String {
    let raw = format!("{}-{}", agency.jurisdiction.as_str(), agency.code).to_ascii_lowercase();
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The federation identity `liaison init` creates, from its flags.
pub fn identity_params(dir: &Path, agency: &Agency, a: &FedInitArgs) -> Result<IdentityParams> {
    let node_id = a.node_id.clone().unwrap_or_else(|| default_node_id(agency));
    let node_id = NodeId::parse(&node_id).map_err(|e| InputError(format!("--node-id: {e}")))?;
    let base_url = a
        .base_url
        .clone()
        .unwrap_or_else(|| format!("https://{}", a.federation_listen));
    Ok(IdentityParams {
        node_id,
        listen: a.federation_listen.clone(),
        base_url,
        key_dir: dir.join("federation"),
    })
}

/// Tells the operator about the identity `init` created; on stderr so `--json` stays clean.
pub fn print_identity(dir: &Path, d: &NodeDescriptor) -> Result<()> {
    eprintln!(
        "  federation: node {}, key {} (file mode 0600), TLS certificate {}",
        d.node_id,
        d.keys.first().map(|k| k.key_id.to_string()).unwrap_or_default(),
        d.tls_cert_sha256
    );
    eprintln!("  descriptor fingerprint (compare out of band): {}", d.fingerprint()?);
    eprintln!(
        "  share it with peers: liaison federation descriptor --data-dir {} --out PEER_FILE",
        dir.display()
    );
    Ok(())
}

// ---------------------------------------------------------------- peers

#[derive(Subcommand, Debug)]
pub enum PeerCmd {
    /// Pin a peer from its peer file (or bare descriptor) after checking its fingerprint out of band.
    Add {
        file: PathBuf,
        /// The descriptor fingerprint the peer's operator read to you (hex, colons allowed).
        #[arg(long)]
        fingerprint: String,
        /// Directory code for the peer's agency (default: from the peer file).
        #[arg(long)]
        agency_code: Option<String>,
        /// IANA time zone of the peer's agency (default: from the peer file, else UTC).
        #[arg(long)]
        time_zone: Option<String>,
    },
    /// List pinned peers.
    List,
    /// Unpin a peer: its messages are refused from now on (history and ledger stay).
    Remove { node_id: String },
    /// Revoke a peer's key as compromised on your own authority (its operator called you):
    /// what the key signed since --since is refused from now on, for good.
    RevokeKey {
        node_id: String,
        /// The key id (`liaison peer list` or the peer's descriptor shows it).
        #[arg(long)]
        key_id: String,
        /// Since when the key may be in other hands (RFC 3339 or YYYY-MM-DD; default: now).
        #[arg(long)]
        since: Option<String>,
        /// Why, e.g. "phone call from the peer's duty officer at 14:05".
        #[arg(long)]
        reason: String,
    },
}

fn read_peer_file(path: &Path) -> Result<PeerFile> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_peer_file(&bytes).with_context(|| path.display().to_string())
}

pub async fn peer(ctx: &Ctx, c: PeerCmd) -> Result<()> {
    let (node, config) = ctx.node().await?;
    let me = ctx.principal(&node, &config).await?;
    match c {
        PeerCmd::Add {
            file,
            fingerprint,
            agency_code,
            time_zone: tz,
        } => {
            let mut pf = read_peer_file(&file)?;
            if let Some(code) = agency_code {
                pf.agency.code = code;
            }
            if let Some(tz) = tz {
                time_zone(&tz).map_err(|e| InputError(format!("--time-zone: {e}")))?;
                pf.agency.time_zone = tz;
            }
            let p = node.pin_peer(&me, &pf, &fingerprint, Timestamp::now()).await?;
            if ctx.json {
                return json(
                    &serde_json::json!({"pinned": p.node_id, "agency": pf.agency.code, "base_url": p.base_url}),
                );
            }
            println!(
                "Pinned peer {} ({}, agency {} {}) at {}",
                p.node_id, p.jurisdiction, pf.agency.code, p.agency_name, p.base_url
            );
            println!("  TLS certificate: {}", p.tls_cert_sha256);
            for k in &p.keys {
                println!("  key {} valid from {}", k.key_id, k.valid_from);
            }
            Ok(())
        }
        PeerCmd::List => {
            let peers = node.peers(&me).await?;
            if ctx.json {
                let v: Vec<_> = peers
                    .iter()
                    .map(|p| serde_json::json!({"node_id": p.node_id, "agency_id": p.agency_id, "base_url": p.base_url, "tls_cert_sha256": p.tls_cert_sha256, "serial": p.serial}))
                    .collect();
                return json(&v);
            }
            let mut t = table(&["node", "agency", "base URL", "TLS certificate", "serial", "pinned"]);
            for p in peers {
                t.add_row(vec![
                    p.node_id,
                    p.agency_id,
                    p.base_url,
                    p.tls_cert_sha256,
                    p.serial.to_string(),
                    when(Some(p.added_at)),
                ]);
            }
            println!("{t}");
            Ok(())
        }
        PeerCmd::Remove { node_id } => {
            node.remove_peer(&me, &node_id).await?;
            println!("Unpinned {node_id}; its messages are refused from now on.");
            Ok(())
        }
        PeerCmd::RevokeKey {
            node_id,
            key_id,
            since,
            reason,
        } => {
            let now = Timestamp::now();
            let since = match since {
                Some(s) => super::admin::parse_instant("--since", &s)?,
                None => now,
            };
            node.revoke_peer_key(&me, &node_id, &key_id, since, &reason, now)
                .await?;
            if ctx.json {
                return json(&serde_json::json!({"peer": node_id, "revoked_key": key_id, "since": since}));
            }
            println!(
                "Key {key_id} of {node_id} revoked since {since}: what it signed since then is refused. Pin the peer's new descriptor (liaison peer add FILE --fingerprint …) once you have checked its fingerprint with them."
            );
            Ok(())
        }
    }
}

// ---------------------------------------------------------------- ledger

#[derive(Subcommand, Debug)]
pub enum LedgerCmd {
    /// Recompute the ledger from the stored leaves and check every tree head this node signed.
    Verify,
    /// Write a proof bundle showing that a message was exchanged and logged.
    Prove {
        message_id: String,
        /// Output file (default: proof-MESSAGE_ID.json).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Include the payload (otherwise only its hash is shown).
        #[arg(long)]
        disclose_payload: bool,
    },
    /// Verify a proof bundle offline (no data directory needed).
    VerifyProof { file: PathBuf },
    /// Sign and show the current tree head.
    Sth,
    /// Fetch every peer's tree head now and check it extends the one accepted before.
    CheckPeers,
    /// Tree heads kept as evidence of a peer rewriting its history.
    Evidence,
}

pub async fn ledger(ctx: &Ctx, c: LedgerCmd) -> Result<()> {
    if let LedgerCmd::VerifyProof { file } = &c {
        let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let bundle = ProofBundle::from_slice(&bytes)
            .map_err(|e| IntegrityFailure(format!("{}: not a proof bundle: {e}", file.display())))?;
        let report = verify_bundle(&bundle).map_err(|e| IntegrityFailure(format!("proof does NOT verify: {e}")))?;
        if ctx.json {
            return json(&serde_json::json!({"verified": true, "report": format!("{report:?}"),
                "message_id": report.message_id.to_string(), "kind": format!("{:?}", report.kind).to_lowercase(),
                "log_node": report.log_node.to_string(), "leaf_index": report.leaf_index, "tree_size": report.tree_size,
                "receipt_verified": report.receipt_verified, "payload_disclosed": report.payload_disclosed}));
        }
        println!("Proof verified.");
        println!(
            "  message {} ({:?}) {} -> {}",
            report.message_id, report.kind, report.sender, report.recipient
        );
        if let Some(t) = report.payload_type {
            println!("  payload type {}", t.as_str());
        }
        println!(
            "  envelope hash {}; payload disclosed: {}; receipt verified: {}",
            report.envelope_hash, report.payload_disclosed, report.receipt_verified
        );
        println!(
            "  logged by {} at leaf {} of {} (root {}, signed {})",
            report.log_node, report.leaf_index, report.tree_size, report.root_hash, report.sth_timestamp
        );
        println!("  keys used (compare them with keys you trust):");
        for (n, k, p) in &report.keys_used {
            println!("    {n} {k} {p}");
        }
        return Ok(());
    }
    let (node, config) = ctx.node().await?;
    let me = ctx.principal(&node, &config).await?;
    match c {
        LedgerCmd::VerifyProof { .. } => Ok(()),
        LedgerCmd::Verify => {
            let r = node.verify_ledger(&me).await?;
            let problems = &r.problems;
            if ctx.json {
                json(
                    &serde_json::json!({"leaves": r.leaves, "root": r.root, "tree_heads_checked": r.tree_heads_checked, "problems": problems}),
                )?;
            } else {
                println!(
                    "Ledger of {}: {} leaves, root {}; {} signed tree heads checked",
                    r.node_id, r.leaves, r.root, r.tree_heads_checked
                );
            }
            if !problems.is_empty() {
                bail!(IntegrityFailure(format!(
                    "the ledger does NOT verify:\n  {}",
                    problems.join("\n  ")
                )));
            }
            if !ctx.json {
                println!("OK: every leaf matches its hash and every stored tree head matches the log.");
            }
            Ok(())
        }
        LedgerCmd::Prove {
            message_id,
            out,
            disclose_payload,
        } => {
            let bundle = node.prove_message(&me, &message_id, disclose_payload).await?;
            let out = out.unwrap_or_else(|| PathBuf::from(format!("proof-{message_id}.json")));
            std::fs::write(&out, bundle.to_json_pretty()?)
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!(
                "Wrote {} (leaf {} of {}); check it anywhere with: liaison ledger verify-proof {}",
                out.display(),
                bundle.leaf_index,
                bundle.tree_size,
                out.display()
            );
            Ok(())
        }
        LedgerCmd::Sth => {
            let sth = node.sign_tree_head(&me).await?;
            println!("{}", String::from_utf8(liaison_wire::to_canonical(&sth)?)?);
            Ok(())
        }
        LedgerCmd::CheckPeers => {
            let mut bad = Vec::new();
            for (peer, r) in node.check_peers(&me, liaison_server::federation::transport()).await? {
                match r {
                    Ok(true) => println!("{peer}: consistent"),
                    Ok(false) => {
                        println!("{peer}: INCONSISTENT (history rewritten; evidence stored)");
                        bad.push(peer.to_string());
                    }
                    Err(e) => println!("{peer}: not checked: {e}"),
                }
            }
            if !bad.is_empty() {
                bail!(IntegrityFailure(format!(
                    "peer ledger inconsistent: {}",
                    bad.join(", ")
                )));
            }
            Ok(())
        }
        LedgerCmd::Evidence => {
            let ev = node.ledger_evidence(&me).await?;
            if ctx.json {
                let v: Vec<_> = ev
                    .iter()
                    .map(|e| serde_json::json!({"node_id": e.node_id, "tree_size": e.tree_size, "root_hash": e.root_hash, "note": e.note, "sth": e.sth}))
                    .collect();
                return json(&v);
            }
            for e in ev {
                println!(
                    "{} size {} root {} recorded {}: {}",
                    e.node_id,
                    e.tree_size,
                    e.root_hash,
                    e.recorded_at,
                    e.note.unwrap_or_default()
                );
            }
            Ok(())
        }
    }
}

// ---------------------------------------------------------------- federation

#[derive(Subcommand, Debug)]
pub enum FedCmd {
    /// Print (or write) this node's peer file: signed descriptor + agency entry, and its fingerprint.
    Descriptor {
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Identity, peers, outbox and ledger at a glance.
    Status,
    /// Messages sent and received (outbox and inbox).
    Messages,
    /// EMERGENCY: revoke this node's signing key as compromised. A new key is made; every peer
    /// is told at once and refuses what the old key signed since --since; peers then pin the new
    /// descriptor after checking its fingerprint with you by phone (docs/federation.md §2.4).
    RevokeKey {
        /// Since when the key may be in other hands (RFC 3339 or YYYY-MM-DD; default: now).
        #[arg(long)]
        since: Option<String>,
        /// Why (sent to every peer).
        #[arg(long)]
        reason: String,
    },
    /// Send this node's key revocations to every peer again (for peers that were unreachable).
    AnnounceRevocations,
    /// Replace the signing key; the old key stays valid for --overlap-hours; peers are told.
    RotateKey {
        #[arg(long, default_value_t = 24)]
        overlap_hours: i64,
    },
    /// Benchmark delivery between two in-process nodes (see bench/federation/README.md).
    Bench(BenchArgs),
}

pub async fn federation(ctx: &Ctx, c: FedCmd) -> Result<()> {
    if let FedCmd::Bench(a) = c {
        return bench(a).await;
    }
    let (node, config) = ctx.node().await?;
    match c {
        FedCmd::Bench(_) => Ok(()),
        FedCmd::Descriptor { out } => {
            let pf = node.own_peer_file().await?;
            let fp = pf.descriptor.fingerprint()?;
            let text = serde_json::to_string_pretty(&pf)?;
            match out {
                Some(p) => {
                    std::fs::write(&p, &text).with_context(|| format!("cannot write {}", p.display()))?;
                    println!("Wrote {}", p.display());
                }
                None => println!("{text}"),
            }
            eprintln!("fingerprint: {fp}");
            Ok(())
        }
        FedCmd::Status => {
            let me = ctx.principal(&node, &config).await?;
            let st = node.federation_status(&me).await?;
            if st.inbox_not_applied > 0 && !ctx.json {
                eprintln!(
                    "{} received message(s) were NOT applied (conflicts or refused moves); see liaison federation messages (inbox outcome)",
                    st.inbox_not_applied
                );
            }
            json(&st)
        }
        FedCmd::Messages => {
            let me = ctx.principal(&node, &config).await?;
            let (out, inb) = node.federation_messages(&me).await?;
            let v = serde_json::json!({
                "outbox": out.iter().map(|o| serde_json::json!({
                    "message_id": o.message_id, "recipient": o.recipient, "link_seq": o.link_seq,
                    "payload_type": o.payload_type, "payload": serde_json::from_str::<serde_json::Value>(&o.payload).unwrap_or_default(),
                    "attempts": o.attempts, "delivered_at": o.delivered_at, "last_error": o.last_error})).collect::<Vec<_>>(),
                "inbox": inb.iter().map(|i| serde_json::json!({
                    "message_id": i.message_id, "sender": i.sender, "link_seq": i.link_seq,
                    "envelope_hash": i.envelope_hash, "outcome": i.outcome,
                    "key_id": serde_json::from_str::<serde_json::Value>(&i.header).ok().and_then(|h| h.get("key_id").cloned()),
                    "payload": serde_json::from_str::<serde_json::Value>(&i.payload).unwrap_or_default()})).collect::<Vec<_>>(),
            });
            json(&v)
        }
        FedCmd::RevokeKey { since, reason } => {
            let me = ctx.principal(&node, &config).await?;
            let now = Timestamp::now();
            let since = match since {
                Some(s) => super::admin::parse_instant("--since", &s)?,
                None => now,
            };
            let r = node.revoke_own_key(&me, since, &reason, now).await?;
            let told = node
                .announce_revocations(&me, liaison_server::federation::transport())
                .await?;
            if ctx.json {
                return json(&serde_json::json!({"revocation": r, "announced": told}));
            }
            println!(
                "Key {} REVOKED as compromised since {}.",
                r.revoked_key_id, r.compromised_since
            );
            println!("New key {} (descriptor serial {}).", r.new_key_id, r.descriptor_serial);
            println!("Statement: {}", r.statement.display());
            report_announced(&told);
            println!("Next:");
            println!("  1. Restart the node (liaison serve) so it signs with the new key.");
            println!("  2. Send your new peer file (liaison federation descriptor --out FILE) to every peer.");
            println!(
                "  3. Read this fingerprint to each peer's operator by phone; they run liaison peer add FILE --fingerprint …:"
            );
            println!("     {}", r.fingerprint);
            Ok(())
        }
        FedCmd::AnnounceRevocations => {
            let me = ctx.principal(&node, &config).await?;
            let told = node
                .announce_revocations(&me, liaison_server::federation::transport())
                .await?;
            if ctx.json {
                return json(&told);
            }
            report_announced(&told);
            Ok(())
        }
        FedCmd::RotateKey { overlap_hours } => {
            let me = ctx.principal(&node, &config).await?;
            let now = Timestamp::now();
            let until = now + SignedDuration::from_hours(overlap_hours.max(0));
            let r = node.rotate_key(&me, until, now).await?;
            if ctx.json {
                return json(&r);
            }
            println!(
                "New key {} (descriptor serial {}); old key {} valid until {until}. Rotation queued for {} peers. Restart the node to sign with the new key.",
                r.new_key_id, r.descriptor_serial, r.old_key_id, r.peers_told
            );
            Ok(())
        }
    }
}

fn report_announced(told: &[liaison_service::federation::revoke::Announced]) {
    if told.is_empty() {
        println!("No peer to tell (none pinned, or no revocation issued).");
    }
    for a in told {
        match &a.error {
            None => println!("  {}: told (key {})", a.peer, a.key_id),
            Some(e) => println!(
                "  {}: NOT reached ({e}); run liaison federation announce-revocations again, or call them",
                a.peer
            ),
        }
    }
}

// ---------------------------------------------------------------- demo and bench

/// One in-process node for the demo and the benchmark.
pub struct DemoNode {
    pub node: Node,
    pub agency: Agency,
    pub dir: PathBuf,
    /// The node's administrator (pins peers, reads the outbox).
    pub admin: Principal,
}

struct NodeSpec<'a> {
    node_id: &'a str,
    code: &'a str,
    name: &'a str,
    native: &'a str,
    jurisdiction: &'a str,
    tz: &'a str,
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn setup_node(dir: &Path, s: &NodeSpec<'_>) -> Result<DemoNode> {
    let (dir, config, node, _) = super::init::create_data_dir(dir, None, None).await?;
    let jurisdiction = CountryCode::parse(s.jurisdiction).map_err(|e| anyhow::anyhow!("{e}"))?;
    let agency = Agency {
        id: AgencyId::new(),
        code: s.code.into(),
        name_en: s.name.into(),
        name_native: s.native.into(),
        name_zh: String::new(),
        jurisdiction,
        kind: AgencyKind::Police,
        time_zone: s.tz.into(),
    };
    let port = free_port()?;
    let created = node
        .set_up(
            &NodeSetup {
                agency: agency.clone(),
                users: [
                    (config.node.cli_user.as_str(), Role::Admin),
                    ("officer", Role::Officer),
                    ("desk", Role::Desk),
                    ("legal", Role::LegalReviewer),
                    ("supervisor", Role::Supervisor),
                ]
                .into_iter()
                .map(|(u, role)| NewUser::new(u, u, role))
                .collect(),
                token: None,
                identity: Some(IdentityParams {
                    node_id: NodeId::parse(s.node_id).map_err(|e| anyhow::anyhow!("{e}"))?,
                    listen: format!("127.0.0.1:{port}"),
                    base_url: format!("https://127.0.0.1:{port}"),
                    key_dir: dir.join("federation"),
                }),
                actor: "demo".into(),
            },
            Timestamp::now(),
        )
        .await?;
    super::init::write_config(&dir, &config)?;
    let admin = created
        .principal(&config.node.cli_user)
        .ok_or_else(|| anyhow::anyhow!("the demo admin was not created"))?;
    Ok(DemoNode {
        node,
        agency,
        dir,
        admin,
    })
}

async fn pair(base: &Path) -> Result<(DemoNode, DemoNode)> {
    let a = setup_node(
        &base.join("us-fbi"),
        &NodeSpec {
            node_id: "us-fbi",
            code: "FBI",
            name: "Federal Bureau of Investigation",
            native: "Federal Bureau of Investigation",
            jurisdiction: "US",
            tz: "America/New_York",
        },
    )
    .await?;
    let b = setup_node(
        &base.join("cn-mps"),
        &NodeSpec {
            node_id: "cn-mps",
            code: "CN-MPS",
            name: "Ministry of Public Security",
            native: "中华人民共和国公安部",
            jurisdiction: "CN",
            tz: "Asia/Shanghai",
        },
    )
    .await?;
    let pa = a.node.own_peer_file().await?;
    let pb = b.node.own_peer_file().await?;
    let now = Timestamp::now();
    a.node
        .pin_peer(&a.admin, &pb, &pb.descriptor.fingerprint()?.to_hex(), now)
        .await?;
    b.node
        .pin_peer(&b.admin, &pa, &pa.descriptor.fingerprint()?.to_hex(), now)
        .await?;
    Ok((a, b))
}

async fn start(n: &DemoNode) -> Result<liaison_server::federation::FedHandle> {
    let fed = n.node.federation_with(liaison_server::federation::transport()).await?;
    Ok(liaison_server::federation::run(fed).await?)
}

async fn wait_drained(nodes: &[&DemoNode], timeout: Duration) -> Result<()> {
    let t0 = std::time::Instant::now();
    loop {
        // An index look-up per link (the outbox can hold many delivered rows).
        let mut waiting = Vec::new();
        for n in nodes {
            waiting.extend(n.node.undelivered_recipients(&n.admin).await?);
        }
        if waiting.is_empty() {
            return Ok(());
        }
        if t0.elapsed() > timeout {
            let mut pending = 0;
            for n in nodes {
                pending += n.node.federation_status(&n.admin).await?.outbox_pending;
            }
            bail!("{pending} messages still undelivered after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn draft(from: &Agency, to: &Agency, kind: RequestKind, case: &str) -> RequestDraft {
    RequestDraft {
        kind,
        urgency: Urgency::Urgent,
        requesting_agency: from.id,
        requested_agency: to.id,
        case_reference: case.into(),
        offences: vec!["BC-02".into()],
        summary: "Ransomware affiliate infrastructure; subscriber details of the VPS account used for C2.".into(),
        targets: vec![],
        data_categories: vec![],
        legal_basis: "18 U.S.C. 1030; Budapest Convention Art 29".into(),
        related: vec![],
        attachments: vec![],
        amount: None,
        conduct: vec![],
        marking_set: None,
    }
}

#[derive(Args, Debug)]
pub struct DemoFedArgs {
    /// Where to create the two data directories (default: a new temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

async fn step(node: &Node, user: &str, id: RequestId, to: State, reason: Option<&str>, label: &str) -> Result<()> {
    let p = node.local_principal(user).await?;
    let cur = node.request(&p, id, Timestamp::now()).await?;
    node.transition(
        &p,
        id,
        cur.request.version,
        TransitionInput {
            to: Some(to),
            reason: reason.map(str::to_string),
            ..Default::default()
        },
        Timestamp::now(),
    )
    .await?;
    println!("  {label:<8} {user:<8} -> {to}");
    Ok(())
}

async fn wait_state(node: &Node, id: RequestId, state: State) -> Result<()> {
    let t0 = std::time::Instant::now();
    // Someone of the agency served by this node, who may read its requests.
    let reader = node.local_principal("officer").await?;
    loop {
        if let Ok(r) = node.request(&reader, id, Timestamp::now()).await
            && r.request.state == state
        {
            return Ok(());
        }
        if t0.elapsed() > Duration::from_secs(20) {
            bail!("request {id} did not reach {state} in time");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Two federated nodes (US FBI and China's MPS) in this process on 127.0.0.1, with a request
/// going through its lifecycle between them.
pub async fn federated_demo(base: &Path) -> Result<()> {
    println!("Setting up two nodes under {}", base.display());
    let (a, b) = pair(base).await?;
    let ha = start(&a).await?;
    let hb = start(&b).await?;
    println!("  us-fbi federation on https://{}  (data {})", ha.addr, a.dir.display());
    println!("  cn-mps federation on https://{}  (data {})", hb.addr, b.dir.display());
    println!("Each pinned the other's descriptor fingerprint and TLS certificate.\n");
    let officer = a.node.local_principal("officer").await?;
    let r = a
        .node
        .create_request(
            &officer,
            draft(
                &a.agency,
                &b.agency,
                RequestKind::SubscriberInformation,
                "FBI-CY-2026-0113",
            ),
            Timestamp::now(),
        )
        .await?;
    let id = r.request.id;
    println!("Request {id} (subscriber information), FBI -> MPS:");
    step(&a.node, "officer", id, State::Submitted, None, "us-fbi").await?;
    wait_state(&b.node, id, State::Received).await?;
    println!("  cn-mps   system   -> received (mirrored back to us-fbi)");
    wait_state(&a.node, id, State::Received).await?;
    step(&b.node, "desk", id, State::Acknowledged, None, "cn-mps").await?;
    let desk = b.node.local_principal("desk").await?;
    b.node
        .comment(
            &desk,
            id,
            "Acknowledged; the provider is being contacted.",
            None,
            Timestamp::now(),
        )
        .await?;
    println!("  cn-mps   desk     comments");
    step(&b.node, "legal", id, State::InReview, None, "cn-mps").await?;
    step(&b.node, "legal", id, State::Accepted, None, "cn-mps").await?;
    step(&b.node, "desk", id, State::Executing, None, "cn-mps").await?;
    wait_state(&a.node, id, State::Executing).await?;
    let off = a.node.local_principal("officer").await?;
    a.node
        .comment(
            &off,
            id,
            "Thank you. The account is still active as of today.",
            None,
            Timestamp::now(),
        )
        .await?;
    println!("  us-fbi   officer  comments");
    step(&b.node, "officer", id, State::Answered, None, "cn-mps").await?;
    wait_state(&a.node, id, State::Answered).await?;
    step(&a.node, "officer", id, State::Closed, None, "us-fbi").await?;
    wait_state(&b.node, id, State::Closed).await?;
    wait_drained(&[&a, &b], Duration::from_secs(20)).await?;

    println!("\nWhat crossed the wire (each line: a signed envelope and its signed receipt):");
    let mut t = table(&["sender", "recipient", "seq", "type", "message id", "what"]);
    let mut rows = Vec::new();
    for (n, name) in [(&a, "us-fbi"), (&b, "cn-mps")] {
        for o in n.node.federation_messages(&n.admin).await?.0 {
            let p: serde_json::Value = serde_json::from_str(&o.payload)?;
            let what = match o.payload_type.as_str() {
                "transition" => format!(
                    "{} -> {}",
                    p["from"].as_str().unwrap_or("?"),
                    p["to"].as_str().unwrap_or("?")
                ),
                "comment" => format!("\"{}\"", p["text"].as_str().unwrap_or("")),
                "request_submitted" => format!("case {}", p["request"]["case_reference"].as_str().unwrap_or("")),
                _ => String::new(),
            };
            rows.push((
                o.delivered_at,
                name.to_string(),
                o.recipient,
                o.link_seq,
                o.payload_type,
                o.message_id,
                what,
            ));
        }
    }
    rows.sort_by_key(|r| r.0);
    for r in rows {
        t.add_row(vec![r.1, r.2, r.3.to_string(), r.4, r.5, r.6]);
    }
    println!("{t}");
    let ea = a.node.events(&officer, id, Timestamp::now()).await?;
    let eb = b.node.events(&desk, id, Timestamp::now()).await?;
    let states = |e: &[liaison_service::EventRecord]| -> Vec<String> {
        e.iter()
            .filter(|e| e.event == "transition")
            .map(|e| e.to_state.map(|s| s.to_string()).unwrap_or_default())
            .collect()
    };
    println!("History at us-fbi: {}", states(&ea).join(" > "));
    println!("History at cn-mps: {}", states(&eb).join(" > "));
    println!("\nSigned tree heads (each node's append-only ledger):");
    for h in [&ha, &hb] {
        let sth = h.federation.current_sth().await?;
        println!(
            "  {}: size {} root {} at {}",
            sth.node_id, sth.tree_size, sth.root_hash, sth.timestamp
        );
    }
    for h in [&ha, &hb] {
        for (peer, r) in h.federation.check_peers().await {
            println!(
                "  {} checked {}'s tree head: {}",
                h.federation.node_id(),
                peer,
                match r {
                    Ok(true) => "consistent".to_string(),
                    Ok(false) => "INCONSISTENT".to_string(),
                    Err(e) => format!("not checked ({e})"),
                }
            );
        }
    }
    println!(
        "\nTry: liaison --data-dir {} ledger prove MESSAGE_ID --out proof.json && liaison ledger verify-proof proof.json",
        a.dir.display()
    );
    ha.stop();
    hb.stop();
    Ok(())
}

pub async fn demo_federation(_ctx: &Ctx, a: DemoFedArgs) -> Result<()> {
    let base = match a.dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("liaison-federation-demo-{}", Timestamp::now().as_millisecond())),
    };
    federated_demo(&base).await
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Messages for the throughput and backlog run.
    #[arg(long, default_value_t = 10_000)]
    pub messages: usize,
    /// Messages for the latency run (sent one by one at --rate per second).
    #[arg(long, default_value_t = 1_000)]
    pub latency_messages: usize,
    #[arg(long, default_value_t = 200)]
    pub rate: u64,
    /// Where to create the data directories (default: a new temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn bench(a: BenchArgs) -> Result<()> {
    let base = a.dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("liaison-fed-bench-{}", Timestamp::now().as_millisecond()))
    });
    let (na, nb) = pair(&base).await?;
    // A request FBI -> MPS, delivered and received, carries the benchmark's comments.
    let ha = start(&na).await?;
    let hb = start(&nb).await?;
    let officer = na.node.local_principal("officer").await?;
    let r = na
        .node
        .create_request(
            &officer,
            draft(&na.agency, &nb.agency, RequestKind::SubscriberInformation, "BENCH-1"),
            Timestamp::now(),
        )
        .await?;
    let id = r.request.id;
    step(&na.node, "officer", id, State::Submitted, None, "us-fbi").await?;
    wait_state(&na.node, id, State::Received).await?;
    // Backlog: nodes stopped, N comments queued, then both restart and drain.
    ha.stop();
    hb.stop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    println!("Queueing {} messages while both nodes are down…", a.messages);
    let t0 = std::time::Instant::now();
    for i in 0..a.messages {
        na.node
            .comment(&officer, id, &format!("backlog message {i}"), None, Timestamp::now())
            .await?;
    }
    let queued = t0.elapsed();
    println!(
        "  queued in {:.2}s ({:.0} commits/s, each a comment + its outbox row in one transaction)",
        queued.as_secs_f64(),
        a.messages as f64 / queued.as_secs_f64()
    );
    let t1 = std::time::Instant::now();
    let ha = start(&na).await?;
    let hb = start(&nb).await?;
    wait_drained(&[&na], Duration::from_secs(3600)).await?;
    let drained = t1.elapsed();
    let rate = a.messages as f64 / drained.as_secs_f64();
    println!(
        "Backlog of {} drained after restart in {:.2}s: {:.0} delivered messages/s (signed, verified, applied, receipted, both sides committed)",
        a.messages,
        drained.as_secs_f64(),
        rate
    );
    // Latency: one message at a time at a steady rate.
    let before = std::collections::HashSet::<String>::from_iter(
        na.node
            .federation_messages(&na.admin)
            .await?
            .0
            .into_iter()
            .map(|o| o.message_id),
    );
    let gap = Duration::from_micros(1_000_000 / a.rate.max(1));
    let mut next = tokio::time::Instant::now();
    for i in 0..a.latency_messages {
        na.node
            .comment(&officer, id, &format!("latency message {i}"), None, Timestamp::now())
            .await?;
        next += gap;
        tokio::time::sleep_until(next).await;
    }
    wait_drained(&[&na], Duration::from_secs(600)).await?;
    let mut lat: Vec<i64> = na
        .node
        .federation_messages(&na.admin)
        .await?
        .0
        .into_iter()
        .filter(|o| !before.contains(&o.message_id))
        .filter_map(|o| Some(o.delivered_at?.as_millisecond() - o.created_at.as_millisecond()))
        .collect();
    lat.sort_unstable();
    println!(
        "Latency submit -> receipt stored, {} messages at {}/s: p50 {} ms, p90 {} ms, p99 {} ms, max {} ms",
        lat.len(),
        a.rate,
        percentile(&lat, 0.5),
        percentile(&lat, 0.9),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(0)
    );
    let reader = nb.node.local_principal("desk").await?;
    let applied = nb
        .node
        .events(&reader, id, Timestamp::now())
        .await?
        .iter()
        .filter(|e| e.event == "comment")
        .count();
    println!(
        "Receiver applied {applied} comments (expected {}).",
        a.messages + a.latency_messages
    );
    ha.stop();
    hb.stop();
    if applied != a.messages + a.latency_messages {
        bail!(IntegrityFailure("message count mismatch".into()));
    }
    Ok(())
}
