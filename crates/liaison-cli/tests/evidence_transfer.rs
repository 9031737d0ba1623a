//! Evidence transfer over federation (docs/federation.md §12, issue #13 part 3), end to end:
//! two `liaison serve` processes on 127.0.0.1 talking HTTPS with pinned certificates, on
//! SQLite and on PostgreSQL. A file attached to a mirrored request reaches the peer on the
//! bulk channel: verified chunk by chunk and whole, stored encrypted, listed there with its
//! marking, with custody and ledger entries on both sides; it resumes after either side is
//! SIGKILLed mid-transfer; a tampered chunk is refused and recorded; an urgent message goes
//! through while a large file is in flight.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod common;

use common::fed::FedNode as TestNode;
use common::serial;

const MIB: usize = 1 << 20;

fn wait(what: &str, timeout: Duration, mut f: impl FnMut() -> bool, nodes: &[&TestNode]) {
    let t0 = Instant::now();
    while !f() {
        if t0.elapsed() > timeout {
            let mut logs = String::new();
            for n in nodes {
                let text = n.log_text();
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                logs += &format!(
                    "\n--- {} ---\n{}",
                    n.node_id,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            panic!("{what}: not within {timeout:?}{logs}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Two nodes that pinned each other, with the case users (not started).
fn pair(name: &str, db_us: Option<&str>, db_cn: Option<&str>) -> (TestNode, TestNode, PathBuf) {
    let b = common::unique_dir(&format!("liaison-bulk-{name}"));
    let us = TestNode::init_at(13, &b, "us-fbi", "FBI", "US", "America/New_York", db_us);
    let cn = TestNode::init_at(13, &b, "cn-mps", "CN-MPS", "CN", "Asia/Shanghai", db_cn);
    for n in [&us, &cn] {
        let code = if n.node_id == "us-fbi" { "FBI" } else { "CN-MPS" };
        for (u, role) in [("officer", "officer"), ("desk", "desk"), ("legal", "legal_reviewer")] {
            n.ok(&["user", "add", u, "--agency", code, "--role", role]);
        }
    }
    let (pu, fu) = us.peer_file();
    let (pc, fc) = cn.peer_file();
    us.ok(&["peer", "add", pc.to_str().unwrap(), "--fingerprint", &fc]);
    cn.ok(&["peer", "add", pu.to_str().unwrap(), "--fingerprint", &fu]);
    (us, cn, b)
}

/// Deterministic content of `len` bytes (distinct per `seed`), and its SHA-256.
fn content(path: &Path, len: usize, seed: u64) -> String {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut buf = vec![0u8; len];
    for chunk in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
    std::fs::write(path, &buf).unwrap();
    hex::encode(Sha256::digest(&buf))
}

fn submitted_request(us: &TestNode, cn: &TestNode, case: &str) -> String {
    let v = us.json(&common::officer_request_args(case));
    let id = v["request"]["id"].as_str().or(v["id"].as_str()).unwrap().to_string();
    us.transition("officer", &id, "submitted");
    cn.wait_state(&id, "received");
    id
}

fn add_file(n: &TestNode, id: &str, path: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["--as", "officer", "evidence", "add", id, path.to_str().unwrap()];
    args.extend_from_slice(extra);
    n.json(&args)
}

/// The receiver's view of an incoming transfer (its bulk status endpoint), if it has one.
fn status(rt: &tokio::runtime::Runtime, client: &reqwest::Client, cn: &TestNode, transfer: &str) -> Option<Value> {
    let url = format!(
        "https://127.0.0.1:{}/federation/v1/evidence/{transfer}/status?sender=us-fbi",
        cn.port
    );
    rt.block_on(async {
        let r = client.get(&url).send().await.ok()?;
        if !r.status().is_success() {
            return None;
        }
        r.json::<Value>().await.ok()
    })
}

fn next_chunk(rt: &tokio::runtime::Runtime, client: &reqwest::Client, cn: &TestNode, transfer: &str) -> u64 {
    status(rt, client, cn, transfer)
        .and_then(|s| s["next_chunk"].as_u64())
        .unwrap_or(0)
}

fn stored(rt: &tokio::runtime::Runtime, client: &reqwest::Client, cn: &TestNode, transfer: &str) -> bool {
    status(rt, client, cn, transfer).is_some_and(|s| s["state"] == "stored")
}

fn listed(n: &TestNode, id: &str) -> Vec<Value> {
    n.as_json("officer", &["evidence", "list", id])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn custody(n: &TestNode, file: &str) -> Vec<String> {
    n.as_json("officer", &["evidence", "custody", file])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect()
}

/// The sender's "pushing evidence chunks" lines for `file`: the chunk each push started at.
fn push_starts(n: &TestNode, file: &str) -> Vec<u64> {
    n.log_text()
        .lines()
        .filter(|l| l.contains("pushing evidence chunks") && l.contains(file))
        .filter_map(|l| {
            let at = l.find("from_chunk=")? + "from_chunk=".len();
            l[at..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
        })
        .collect()
}

/// Audit actions about incoming transfers (`transfer:…` subjects) in a node's database.
fn transfer_audit(rt: &tokio::runtime::Runtime, url: &str) -> Vec<String> {
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(url).await.unwrap();
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT action FROM audit_log WHERE subject LIKE 'transfer:%' ORDER BY seq")
                .fetch_all(&pool)
                .await
                .unwrap();
        rows.into_iter().map(|r| r.0).collect()
    })
}

/// The transfer chunk hashes a node recorded for a content (table `evidence_chunks`).
fn recorded_chunks(rt: &tokio::runtime::Runtime, url: &str, sha: &str) -> Option<(i64, String)> {
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(url).await.unwrap();
        sqlx::query_as("SELECT chunk_size, hashes FROM evidence_chunks WHERE sha256 = $1")
            .bind(sha)
            .fetch_optional(&pool)
            .await
            .unwrap()
    })
}

fn forget_chunks(rt: &tokio::runtime::Runtime, url: &str, sha: &str) {
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(url).await.unwrap();
        let done = sqlx::query("DELETE FROM evidence_chunks WHERE sha256 = $1")
            .bind(sha)
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(done.rows_affected(), 1, "the upload recorded the chunk hashes of {sha}");
    })
}

/// The 4 MiB chunk hashes of a file, hex, one after another (as `evidence_chunks` keeps them).
fn chunk_hashes(path: &Path) -> String {
    std::fs::read(path)
        .unwrap()
        .chunks(4 * MIB)
        .map(|c| hex::encode(Sha256::digest(c)))
        .collect()
}

fn db_url(n: &TestNode, given: Option<&str>) -> String {
    given
        .map(str::to_string)
        .unwrap_or_else(|| format!("sqlite://{}", n.dir.join("liaison.db").display()))
}

/// The whole story on one pair of databases.
/// `sent_delay_ms`: the sender's pause before it records `evidence.sent`; a long one makes
/// the peer's result arrive first, and the custody log must read the same either way.
fn suite(name: &str, db_us: Option<&str>, db_cn: Option<&str>, sent_delay_ms: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (mut us, mut cn, base) = pair(name, db_us, db_cn);
    // Chunks are 4 MiB; the throttle makes "mid-transfer" last a few seconds.
    let env = [
        ("LIAISON_BULK_THROTTLE_MS", "250"),
        ("LIAISON_BULK_POLL_MS", "50"),
        ("LIAISON_BULK_RETRY_MS", "200"),
        ("LIAISON_BULK_SENT_DELAY_MS", sent_delay_ms),
    ];
    us.start_with(&env);
    cn.start_with(&env);
    let client = cn.pinned_client();
    let id = submitted_request(&us, &cn, &format!("FBI-2026-{name}"));

    // --- 1. A 48 MiB file (12 chunks), TLP:AMBER, and the sender SIGKILLed mid-transfer;
    // an urgent comment is delivered while the file is in flight. ---
    let a = base.join("records-a.bin");
    let sha_a = content(&a, 48 * MIB, 1);
    let added = add_file(&us, &id, &a, &["--tlp", "AMBER"]);
    let fa = added["id"].as_str().unwrap().to_string();
    wait(
        "transfer A under way",
        Duration::from_secs(60),
        || next_chunk(&rt, &client, &cn, &fa) >= 2,
        &[&us, &cn],
    );
    let t0 = Instant::now();
    us.comment("officer", &id, "URGENT: preserve the account now");
    wait(
        "urgent comment delivered",
        Duration::from_secs(20),
        || cn.comments(&id).iter().any(|c| c.starts_with("URGENT")),
        &[&us, &cn],
    );
    let urgent_ms = t0.elapsed().as_millis();
    assert!(
        !stored(&rt, &client, &cn, &fa),
        "the urgent comment ({urgent_ms} ms) arrived while the file was still in flight"
    );
    let before_kill = next_chunk(&rt, &client, &cn, &fa);
    assert!(before_kill < 12, "still in flight: {before_kill}");
    us.kill();
    std::thread::sleep(Duration::from_millis(300));
    us.start_with(&env);
    wait(
        "transfer A stored",
        Duration::from_secs(90),
        || stored(&rt, &client, &cn, &fa),
        &[&us, &cn],
    );
    let starts = push_starts(&us, &fa);
    assert!(
        starts.iter().skip(1).all(|s| *s > 0),
        "after the sender restarted it resumed, not started again: {starts:?}"
    );
    assert!(starts.len() >= 2, "pushed in two runs: {starts:?}");

    // The chunk hashes were taken at the upload (the offer read nothing) and recorded by the
    // receiver from the manifest it verified the chunks against.
    let want = (4 * MIB as i64, chunk_hashes(&a));
    assert_eq!(recorded_chunks(&rt, &db_url(&us, db_us), &sha_a), Some(want.clone()));
    wait(
        "the receiver recorded the chunk hashes",
        Duration::from_secs(10),
        || recorded_chunks(&rt, &db_url(&cn, db_cn), &sha_a).as_ref() == Some(&want),
        &[&us, &cn],
    );

    // --- 2. A second file, and the receiver SIGKILLed mid-transfer. It is added while the
    // sender's node is down and its recorded chunk hashes are removed (as for a file stored by
    // an older version): the offer reads the file to hash it, and records the hashes. ---
    let b = base.join("records-b.bin");
    let sha_b = content(&b, 40 * MIB, 2);
    us.kill();
    let fb = add_file(&us, &id, &b, &[])["id"].as_str().unwrap().to_string();
    forget_chunks(&rt, &db_url(&us, db_us), &sha_b);
    us.start_with(&env);
    wait(
        "transfer B under way",
        Duration::from_secs(60),
        || next_chunk(&rt, &client, &cn, &fb) >= 3,
        &[&us, &cn],
    );
    cn.kill();
    std::thread::sleep(Duration::from_millis(500));
    cn.start_with(&env);
    wait(
        "transfer B stored",
        Duration::from_secs(90),
        || stored(&rt, &client, &cn, &fb),
        &[&us, &cn],
    );
    let starts = push_starts(&us, &fb);
    assert!(
        starts.iter().skip(1).any(|s| *s >= 3),
        "after the receiver restarted the sender resumed from what it held: {starts:?}"
    );
    assert_eq!(
        recorded_chunks(&rt, &db_url(&us, db_us), &sha_b),
        Some((4 * MIB as i64, chunk_hashes(&b)))
    );

    // --- Both files on the receiver: listed with marking kept, same bytes. ---
    wait(
        "both files listed at cn-mps",
        Duration::from_secs(20),
        || listed(&cn, &id).len() == 2,
        &[&us, &cn],
    );
    let at_cn = listed(&cn, &id);
    let by_sha = |sha: &str| at_cn.iter().find(|f| f["sha256"] == sha).cloned().unwrap();
    let ra = by_sha(&sha_a);
    let rb = by_sha(&sha_b);
    // The marking is kept (never below the request's: AMBER+STRICT here).
    assert_eq!(ra["marking"], added["marking"], "{ra}");
    assert!(ra["marking"]["tlp"].as_str().unwrap().starts_with("TLP:AMBER"), "{ra}");
    assert_eq!(ra["size"], 48 * MIB);
    assert_eq!(ra["file_name"], "records-a.bin");
    assert_eq!(ra["kind"], "supporting");
    assert_eq!(rb["size"], 40 * MIB);
    assert!(ra["uploader"].as_str().unwrap().starts_with("us-fbi:"), "{ra}");
    let out = base.join("got-a.bin");
    cn.ok(&[
        "--as",
        "desk",
        "evidence",
        "get",
        ra["id"].as_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(hex::encode(Sha256::digest(std::fs::read(&out).unwrap())), sha_a);
    std::fs::remove_file(&out).unwrap();

    // --- Custody on both sides; the sender's ends with the peer's signed result. ---
    wait(
        "sender custody complete",
        Duration::from_secs(30),
        || {
            custody(&us, &fa).contains(&"evidence.delivered".to_string())
                && custody(&us, &fb).contains(&"evidence.delivered".to_string())
        },
        &[&us, &cn],
    );
    assert_eq!(
        custody(&us, &fa)[..4],
        [
            "evidence.upload",
            "evidence.offer",
            "evidence.sent",
            "evidence.delivered"
        ],
    );
    let ca = custody(&cn, ra["id"].as_str().unwrap());
    assert_eq!(ca[0], "evidence.received", "{ca:?}");
    assert!(ca.contains(&"evidence.download".to_string()), "{ca:?}");

    // --- Ledger: the manifest and the result are messages with receipts on both sides. ---
    wait(
        "outboxes drained",
        Duration::from_secs(30),
        || us.pending() == 0 && cn.pending() == 0,
        &[&us, &cn],
    );
    let kinds = |n: &TestNode| -> Vec<String> {
        let m = n.json(&["federation", "messages"]);
        m["outbox"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["payload_type"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(kinds(&us).iter().filter(|k| *k == "evidence_manifest").count(), 2);
    assert_eq!(kinds(&cn).iter().filter(|k| *k == "evidence_result").count(), 2);
    for n in [&us, &cn] {
        n.ok(&["ledger", "verify"]);
        n.ok(&["--as", "admin", "audit", "verify"]);
    }

    us.kill();
    cn.kill();

    // --- 3. A sender whose chunk 1 is tampered with: refused and recorded, not stored. ---
    let bad = [
        ("LIAISON_BULK_THROTTLE_MS", "0"),
        ("LIAISON_BULK_POLL_MS", "50"),
        ("LIAISON_BULK_RETRY_MS", "100"),
        ("LIAISON_BULK_FAULT_TAMPER_CHUNK", "1"),
    ];
    us.start_with(&bad);
    cn.start_with(&env);
    let c = base.join("tampered.bin");
    content(&c, 10 * MIB, 3);
    let fc = add_file(&us, &id, &c, &[])["id"].as_str().unwrap().to_string();
    wait(
        "tampered transfer refused",
        Duration::from_secs(60),
        || custody(&us, &fc).contains(&"evidence.refused".to_string()),
        &[&us, &cn],
    );
    assert_eq!(listed(&cn, &id).len(), 2, "nothing stored from the tampered transfer");
    let st = status(&rt, &client, &cn, &fc).unwrap();
    assert_eq!(st["state"], "refused", "{st}");
    assert_eq!(st["detail"]["code"], "chunk_mismatch", "{st}");
    let audit = transfer_audit(&rt, &db_url(&cn, db_cn));
    assert_eq!(
        audit.iter().filter(|a| *a == "evidence.chunk_refused").count(),
        3,
        "{audit:?}"
    );
    assert_eq!(audit.last().map(String::as_str), Some("evidence.transfer_refused"));
    let refused = us.as_json("officer", &["evidence", "custody", &fc]);
    let last = refused.as_array().unwrap().last().unwrap();
    assert_eq!(last["action"], "evidence.refused");
    assert!(last["detail"].to_string().contains("chunk_mismatch"), "{last}");
    for n in [&us, &cn] {
        n.ok(&["ledger", "verify"]);
        n.ok(&["--as", "admin", "audit", "verify"]);
    }
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn evidence_transfer_on_sqlite() {
    let _serial = serial();
    suite("sqlite", None, None, "2000");
}

#[test]
fn evidence_transfer_on_postgresql() {
    let _serial = serial();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (Some(a), Some(b)) = rt.block_on(async {
        (
            liaison_service::fixtures::postgres_url().await,
            liaison_service::fixtures::postgres_url().await,
        )
    }) else {
        return;
    };
    drop(rt);
    suite("pg", Some(&a), Some(&b), "0");
}
