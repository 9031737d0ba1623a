//! End-to-end federation tests: separate `liaison` processes on 127.0.0.1 ephemeral ports,
//! talking HTTPS with pinned certificates, on SQLite.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use liaison_wire::{EnvelopeDraft, MessageId, NodeId, NodeKey, PayloadType};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use common::BIN;

use common::fed::FedNode as TestNode;

// The tests run one at a time: a node that is down frees its port, and a node of another test
// running in parallel could take it (seen under load in CI), which would make the peer
// unreachable for reasons that have nothing to do with the code under test.
use common::serial;

fn wait(timeout: Duration, f: impl FnMut() -> bool) {
    assert!(
        common::poll_until(timeout, Duration::from_millis(50), f),
        "condition not met within {timeout:?}"
    );
}

fn base(name: &str) -> PathBuf {
    common::unique_dir(&format!("liaison-fed-test-{name}"))
}

/// Two initialised nodes that pinned each other (not started).
fn pair(name: &str) -> (TestNode, TestNode, PathBuf) {
    pair_on(name, None, None)
}

fn pair_on(name: &str, db_us: Option<&str>, db_cn: Option<&str>) -> (TestNode, TestNode, PathBuf) {
    let b = base(name);
    let us = TestNode::new_with(&b, "us-fbi", "FBI", "US", "America/New_York", db_us);
    let cn = TestNode::new_with(&b, "cn-mps", "CN-MPS", "CN", "Asia/Shanghai", db_cn);
    let (pu, fu) = us.peer_file();
    let (pc, fc) = cn.peer_file();
    // A wrong fingerprint is refused (exit 7) and nothing is pinned.
    let o = us.cmd(&["peer", "add", pc.to_str().unwrap(), "--fingerprint", &"0".repeat(64)]);
    assert_eq!(o.status.code(), Some(7), "{}", String::from_utf8_lossy(&o.stderr));
    us.ok(&["peer", "add", pc.to_str().unwrap(), "--fingerprint", &fc]);
    cn.ok(&["peer", "add", pu.to_str().unwrap(), "--fingerprint", &fu]);
    (us, cn, b)
}

fn create_request(us: &TestNode, case: &str) -> String {
    create_request_with(us, case, &[])
}

fn create_request_with(us: &TestNode, case: &str, extra: &[&str]) -> String {
    let mut args = common::officer_request_args(case);
    args.extend_from_slice(extra);
    let v = us.json(&args);
    v["request"]["id"].as_str().or(v["id"].as_str()).unwrap().to_string()
}

fn transitions(n: &TestNode, id: &str) -> Vec<String> {
    n.request(id)["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "transition")
        .map(|e| e["to_state"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn round_trip_lifecycle_and_offline_proof() {
    let _serial = serial();
    let (mut us, mut cn, base) = pair("roundtrip");
    us.start();
    cn.start();
    // An amount travels exactly (it was an f64 that canonical JSON refused: HTTP 500).
    let id = create_request_with(&us, "FBI-2026-0001", &["--amount", "2500.10", "--currency", "USD"]);
    // The draft stays local until submitted.
    assert!(cn.state(&id).is_none());
    us.transition("officer", &id, "submitted");
    cn.wait_state(&id, "received");
    us.wait_state(&id, "received");
    let amount = &cn.request(&id)["request"]["amount"];
    assert_eq!(amount["value"], "2500.1", "{amount}");
    assert_eq!(amount["currency"], "USD");
    cn.transition("desk", &id, "acknowledged");
    cn.comment("desk", &id, "Acknowledged; contacting the provider.");
    cn.transition("legal", &id, "in_review");
    cn.transition("legal", &id, "accepted");
    cn.transition("desk", &id, "executing");
    us.wait_state(&id, "executing");
    us.comment("officer", &id, "Account still active today.");
    cn.transition("officer", &id, "answered");
    us.wait_state(&id, "answered");
    us.transition("officer", &id, "closed");
    cn.wait_state(&id, "closed");
    wait(Duration::from_secs(20), || us.pending() == 0 && cn.pending() == 0);
    wait(Duration::from_secs(20), || {
        us.comments(&id).len() == 2 && cn.comments(&id).len() == 2
    });
    // Same id, same history on both sides (the receiver starts at `received`).
    let tu = transitions(&us, &id);
    let tc = transitions(&cn, &id);
    assert_eq!(tu[0], "submitted");
    assert_eq!(tu[1..], tc[..], "us {tu:?} cn {tc:?}");
    assert_eq!(us.comments(&id), cn.comments(&id));
    // Both ledgers verify.
    us.ok(&["ledger", "verify"]);
    cn.ok(&["ledger", "verify"]);
    us.ok(&["ledger", "check-peers"]);
    // A proof of the submission, verified offline without any data directory.
    let msgs = us.json(&["federation", "messages"]);
    let first = msgs["outbox"][0]["message_id"].as_str().unwrap().to_string();
    assert_eq!(msgs["outbox"][0]["payload_type"], "request_submitted");
    let proof = base.join("proof.json");
    us.ok(&[
        "ledger",
        "prove",
        &first,
        "--out",
        proof.to_str().unwrap(),
        "--disclose-payload",
    ]);
    let o = Command::new(BIN)
        .args(["--json", "ledger", "verify-proof", proof.to_str().unwrap()])
        .current_dir(&base)
        .env("LIAISON_DATA_DIR", base.join("nonexistent"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rep: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rep["message_id"], first.as_str());
    assert_eq!(rep["receipt_verified"], true);
    // The receiver can prove it received the same message.
    let proof2 = base.join("proof-received.json");
    cn.ok(&["ledger", "prove", &first, "--out", proof2.to_str().unwrap()]);
    let o = Command::new(BIN)
        .args(["ledger", "verify-proof", proof2.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success());
    // A tampered proof fails (exit 7).
    let mut bundle: Value = serde_json::from_str(&std::fs::read_to_string(&proof).unwrap()).unwrap();
    let index = bundle["leaf_index"].as_u64().unwrap();
    bundle["leaf_index"] = (index + 1).into();
    std::fs::write(&proof, serde_json::to_string_pretty(&bundle).unwrap()).unwrap();
    let o = Command::new(BIN)
        .args(["ledger", "verify-proof", proof.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(7));
}

#[test]
fn peer_down_then_up_messages_wait_then_deliver() {
    let _serial = serial();
    let (mut us, mut cn, _base) = pair("downup");
    us.start();
    let id = create_request(&us, "FBI-2026-0002");
    us.transition("officer", &id, "submitted");
    for i in 0..5 {
        us.comment("officer", &id, &format!("while down {i}"));
    }
    // The peer is down: messages wait in the outbox and are retried.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(us.pending(), 6);
    let m = us.json(&["federation", "messages"]);
    assert!(m["outbox"][0]["attempts"].as_i64().unwrap() >= 1, "{m}");
    assert!(cn.state(&id).is_none());
    cn.start();
    cn.wait_state(&id, "received");
    wait(Duration::from_secs(30), || us.pending() == 0);
    let expected: Vec<String> = (0..5).map(|i| format!("while down {i}")).collect();
    assert_eq!(cn.comments(&id), expected);
    us.wait_state(&id, "received");
    assert!(us.log_text().contains("delivery failed; will retry"));
}

#[test]
fn sigkill_sender_and_receiver_no_loss_no_duplicates() {
    let _serial = serial();
    let (mut us, mut cn, _base) = pair("sigkill");
    // A third of the receipts are "lost" after the peer committed, so retries hit the
    // duplicate path (stored receipt + accepted header) as well as the crash windows.
    let lossy = [("LIAISON_FED_FAULT_DROP_RECEIPT_PCT", "30")];
    us.start_with(&lossy);
    cn.start_with(&lossy);
    let id = create_request(&us, "FBI-2026-0003");
    us.transition("officer", &id, "submitted");
    cn.wait_state(&id, "received");
    let mut rng_state = std::process::id() as u64 ^ 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move |n: u64| {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        rng_state % n
    };
    let per_round = 8;
    let rounds = 4;
    for round in 0..rounds {
        for i in 0..per_round {
            us.comment("officer", &id, &format!("us {round}-{i}"));
            cn.comment("desk", &id, &format!("cn {round}-{i}"));
            if i == per_round / 2 {
                // Kill the sender or the receiver (or both) at a random point of delivery.
                std::thread::sleep(Duration::from_millis(rnd(60)));
                match rnd(3) {
                    0 => us.kill(),
                    1 => cn.kill(),
                    _ => {
                        us.kill();
                        cn.kill();
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(rnd(200)));
        if us.child.is_none() {
            us.start_with(&lossy);
        }
        if cn.child.is_none() {
            cn.start_with(&lossy);
        }
    }
    wait(Duration::from_secs(60), || us.pending() == 0 && cn.pending() == 0);
    let exp_us: Vec<String> = (0..rounds)
        .flat_map(|r| (0..per_round).map(move |i| format!("us {r}-{i}")))
        .collect();
    let exp_cn: Vec<String> = (0..rounds)
        .flat_map(|r| (0..per_round).map(move |i| format!("cn {r}-{i}")))
        .collect();
    let at_cn: Vec<String> = cn.comments(&id).into_iter().filter(|c| c.starts_with("us ")).collect();
    let at_us: Vec<String> = us.comments(&id).into_iter().filter(|c| c.starts_with("cn ")).collect();
    assert_eq!(
        at_cn, exp_us,
        "comments from us-fbi as applied at cn-mps (order, no loss, no duplicate)"
    );
    assert_eq!(at_us, exp_cn, "comments from cn-mps as applied at us-fbi");
    us.ok(&["ledger", "verify"]);
    cn.ok(&["ledger", "verify"]);
    // Duplicates did arrive and were answered without being applied again.
    let logs = us.log_text() + &cn.log_text();
    assert!(
        logs.contains("duplicate envelope not applied again"),
        "no duplicate was exercised"
    );
    // Each message is logged exactly once: a `sent` and a `receipt` leaf per delivered
    // message, a `received` leaf per accepted one.
    for n in [&us, &cn] {
        let st = n.json(&["federation", "status"]);
        assert_eq!(
            st["ledger_leaves"].as_i64().unwrap() - st["ledger_audit_anchors"].as_i64().unwrap(),
            2 * st["outbox_delivered"].as_i64().unwrap() + st["inbox"].as_i64().unwrap(),
            "{st}"
        );
    }
}

/// Signs an envelope from us-fbi to cn-mps with `key`.
fn envelope(key: &NodeKey, sender: &str, recipient: &str, seq: u64, payload: Value) -> Value {
    envelope_typed(key, sender, recipient, seq, PayloadType::Comment, payload)
}

fn envelope_typed(
    key: &NodeKey,
    sender: &str,
    recipient: &str,
    seq: u64,
    payload_type: PayloadType,
    payload: Value,
) -> Value {
    let e = EnvelopeDraft {
        message_id: MessageId::new(),
        sender: NodeId::parse(sender).unwrap(),
        recipient: NodeId::parse(recipient).unwrap(),
        link_seq: seq,
        created_at: jiff::Timestamp::now(),
        payload_type,
        payload,
    }
    .sign(key)
    .unwrap();
    serde_json::from_slice(&e.to_bytes().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)] // each test has its own runtime; the lock only orders tests
async fn tampering_replay_and_wrong_key_rejected_with_reason() {
    let _serial = serial();
    let (us, mut cn, _base) = pair("tamper");
    cn.start();
    let key = NodeKey::load(&us.key_file()).unwrap();
    let client = cn.pinned_client();
    let url = format!("https://127.0.0.1:{}/federation/v1/envelopes", cn.port);
    let post = |body: Value| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let r = client.post(&url).body(body.to_string()).send().await.unwrap();
            let status = r.status().as_u16();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            (status, v)
        }
    };
    let payload = json!({"request_id": "01a20000-0000-7000-8000-000000000000", "at": "2026-11-22T10:00:00Z", "actor": "mallory", "text": "hello", "data": null});

    // Tampered payload: the signature covers payload_hash, which no longer matches.
    let mut e = envelope(&key, "us-fbi", "cn-mps", 1, payload.clone());
    e["payload"]["text"] = json!("tampered");
    let (s, v) = post(e).await;
    assert_eq!((s, v["title"].as_str()), (422, Some("payload_hash_mismatch")));
    // Tampered header: the signature does not verify.
    let mut e = envelope(&key, "us-fbi", "cn-mps", 1, payload.clone());
    e["link_seq"] = json!(2);
    let (s, v) = post(e).await;
    assert_eq!((s, v["title"].as_str()), (401, Some("bad_signature")));
    // Wrong key: a key us-fbi never published.
    let mallory = NodeKey::generate().unwrap();
    let (s, v) = post(envelope(&mallory, "us-fbi", "cn-mps", 1, payload.clone())).await;
    assert_eq!((s, v["title"].as_str()), (401, Some("unknown_key")));
    // Right key id, wrong key: bad signature.
    let mut e = envelope(&mallory, "us-fbi", "cn-mps", 1, payload.clone());
    e["key_id"] = json!(key.key_id().to_string());
    let (s, v) = post(e).await;
    assert_eq!((s, v["title"].as_str()), (401, Some("bad_signature")));
    // Unknown sender, wrong recipient.
    let (s, v) = post(envelope(&mallory, "xx-evil", "cn-mps", 1, payload.clone())).await;
    assert_eq!((s, v["title"].as_str()), (401, Some("unknown_sender")));
    let (s, v) = post(envelope(&key, "us-fbi", "de-bka", 1, payload.clone())).await;
    assert_eq!((s, v["title"].as_str()), (421, Some("wrong_recipient")));
    // Outside the freshness window (a clock 30 minutes ahead).
    let stale = EnvelopeDraft {
        message_id: MessageId::new(),
        sender: NodeId::parse("us-fbi").unwrap(),
        recipient: NodeId::parse("cn-mps").unwrap(),
        link_seq: 1,
        created_at: jiff::Timestamp::now() + jiff::SignedDuration::from_mins(30),
        payload_type: PayloadType::Comment,
        payload: payload.clone(),
    }
    .sign(&key)
    .unwrap();
    let (s, v) = post(serde_json::from_slice(&stale.to_bytes().unwrap()).unwrap()).await;
    assert_eq!((s, v["title"].as_str()), (400, Some("stale_or_future")));
    // Nothing was accepted so far.
    assert_eq!(
        cn.json(&["federation", "messages"])["inbox"].as_array().unwrap().len(),
        0
    );
    // A valid envelope is accepted once; replaying it returns the stored receipt and applies nothing.
    let good = envelope(&key, "us-fbi", "cn-mps", 1, payload.clone());
    let (s1, r1) = post(good.clone()).await;
    assert_eq!(s1, 200, "{r1}");
    let (s2, r2) = post(good).await;
    assert_eq!((s2, &r2), (200, &r1));
    let inbox = cn.json(&["federation", "messages"])["inbox"].clone();
    assert_eq!(inbox.as_array().unwrap().len(), 1);
    // The comment names a request cn-mps does not have: received and logged, not applied.
    assert!(inbox[0]["outcome"].as_str().unwrap().starts_with("not applied"));
    let log = cn.log_text();
    for code in [
        "payload_hash_mismatch",
        "bad_signature",
        "unknown_key",
        "unknown_sender",
        "wrong_recipient",
        "stale_or_future",
        "replay",
    ] {
        assert!(
            log.contains(&format!("code=\"{code}\"")) || log.contains(&format!("code={code}")),
            "no {code} in log:\n{log}"
        );
    }
    // Key revocations are checked like envelopes: garbage, a statement for a node that is not
    // pinned, and one forged with another key are refused and change nothing.
    let rev_url = format!("https://127.0.0.1:{}/federation/v1/key-revocations", cn.port);
    let post_rev = |body: String| {
        let client = client.clone();
        let url = rev_url.clone();
        async move {
            let r = client.post(&url).body(body).send().await.unwrap();
            let status = r.status().as_u16();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            (status, v)
        }
    };
    let (s, v) = post_rev("{\"not\": \"a revocation\"}".into()).await;
    assert_eq!((s, v["title"].as_str()), (400, Some("bad_revocation")), "{v}");
    let now = jiff::Timestamp::now();
    let stranger =
        liaison_wire::KeyRevocation::sign(NodeId::parse("xx-node").unwrap(), &mallory, now, now, "x").unwrap();
    let (s, v) = post_rev(serde_json::to_string(&stranger).unwrap()).await;
    assert_eq!((s, v["title"].as_str()), (401, Some("unknown_sender")), "{v}");
    let mut forged =
        liaison_wire::KeyRevocation::sign(NodeId::parse("us-fbi").unwrap(), &mallory, now, now, "forged").unwrap();
    forged.key_id = key.key_id().clone();
    let (s, v) = post_rev(serde_json::to_string(&forged).unwrap()).await;
    assert_eq!((s, v["title"].as_str()), (400, Some("bad_revocation")), "{v}");
    assert!(v["detail"].as_str().unwrap().contains("does not verify"), "{v}");
    // us-fbi's key still works at cn-mps.
    let fresh = json!({"request_id": "01a20000-0000-7000-8000-000000000000", "at": "2026-11-22T10:00:00Z", "actor": "x", "text": "after", "data": null});
    let (s, _) = post(envelope(&key, "us-fbi", "cn-mps", 99, fresh)).await;
    assert_ne!(s, 401, "a forged revocation must not disable the key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)] // each test has its own runtime; the lock only orders tests
async fn rewritten_ledger_detected_by_consistency_check() {
    let _serial = serial();
    let (mut us, mut cn, _base) = pair("rewrite");
    us.start();
    cn.start();
    let id = create_request(&us, "FBI-2026-0005");
    us.transition("officer", &id, "submitted");
    us.comment("officer", &id, "one");
    us.comment("officer", &id, "two");
    us.wait_state(&id, "received");
    wait(Duration::from_secs(20), || us.pending() == 0 && cn.pending() == 0);
    // us-fbi accepts cn-mps's current tree head.
    assert!(us.ok(&["ledger", "check-peers"]).contains("consistent"));
    cn.ok(&["ledger", "verify"]);
    // cn-mps rewrites its history: its first message leaf is replaced (with a matching leaf hash).
    cn.kill();
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}", cn.dir.join("liaison.db").display());
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    // The first message leaf (audit anchors have no link_seq).
    let (idx, leaf): (i64, String) =
        sqlx::query_as("SELECT idx, leaf FROM ledger_leaves WHERE kind <> 'audit_anchor' ORDER BY idx LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    let forged = leaf.replacen("\"link_seq\":1", "\"link_seq\":9", 1);
    assert_ne!(leaf, forged);
    let hash = liaison_wire::merkle::leaf_hash(forged.as_bytes()).to_hex();
    sqlx::query("UPDATE ledger_leaves SET leaf = $1, leaf_hash = $2 WHERE idx = $3")
        .bind(&forged)
        .bind(&hash)
        .bind(idx)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    // Its own check fails against the tree heads it signed before.
    let o = cn.cmd(&["ledger", "verify"]);
    assert_eq!(o.status.code(), Some(7), "{}", String::from_utf8_lossy(&o.stdout));
    cn.start();
    // The peer detects the fork and keeps both tree heads as evidence.
    let o = us.cmd(&["ledger", "check-peers"]);
    assert_eq!(o.status.code(), Some(7), "{}", String::from_utf8_lossy(&o.stdout));
    assert!(String::from_utf8_lossy(&o.stdout).contains("INCONSISTENT"));
    let ev = us.json(&["ledger", "evidence"]);
    assert!(!ev.as_array().unwrap().is_empty());
    assert_eq!(ev[0]["node_id"], "cn-mps");
    // The running node's watcher reports it too.
    wait(Duration::from_secs(10), || {
        us.log_text().contains("LEDGER INCONSISTENCY")
    });
}

#[test]
fn key_rotation_is_announced_and_the_new_key_is_accepted() {
    let _serial = serial();
    let (mut us, mut cn, _base) = pair("rotate");
    us.start();
    cn.start();
    let id = create_request(&us, "FBI-2026-0006");
    us.transition("officer", &id, "submitted");
    cn.wait_state(&id, "received");
    let out = us.ok(&["federation", "rotate-key", "--overlap-hours", "1"]);
    let new_key = out.split_whitespace().nth(2).unwrap().to_string();
    assert!(new_key.starts_with("ed25519:"), "{out}");
    // The statement travels signed by the old key; then the node restarts with the new key.
    wait(Duration::from_secs(20), || us.pending() == 0);
    us.kill();
    us.start();
    us.comment("officer", &id, "signed with the new key");
    wait(Duration::from_secs(20), || {
        cn.comments(&id).contains(&"signed with the new key".to_string())
    });
    let inbox = cn.json(&["federation", "messages"])["inbox"].clone();
    let last = inbox.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["key_id"], new_key.as_str(), "{inbox}");
    let rot = inbox
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["payload"]["new_key"].is_object())
        .unwrap();
    assert_eq!(rot["outcome"], "applied");
}

#[test]
fn round_trip_on_postgresql() {
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
    let (mut us, mut cn, _base) = pair_on("pg", Some(&a), Some(&b));
    us.start();
    cn.start();
    let id = create_request(&us, "FBI-2026-0007");
    us.transition("officer", &id, "submitted");
    cn.wait_state(&id, "received");
    us.wait_state(&id, "received");
    cn.transition("desk", &id, "acknowledged");
    cn.comment("desk", &id, "on PostgreSQL");
    us.wait_state(&id, "acknowledged");
    wait(Duration::from_secs(20), || {
        us.comments(&id) == vec!["on PostgreSQL".to_string()]
    });
    us.ok(&["ledger", "verify"]);
    cn.ok(&["ledger", "verify"]);
    assert!(us.ok(&["ledger", "check-peers"]).contains("consistent"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)] // each test has its own runtime; the lock only orders tests
async fn batch_rejects_per_envelope_skips_the_rest_and_applies_in_order() {
    let _serial = serial();
    let (mut us, mut cn, _base) = pair("batch");
    us.start();
    cn.start();
    let id = create_request(&us, "FBI-2026-0008");
    us.transition("officer", &id, "submitted");
    cn.wait_state(&id, "received");
    wait(Duration::from_secs(20), || us.pending() == 0);
    // From here on this test plays us-fbi: link_seq 1 (the submission) is applied at cn-mps.
    us.kill();
    let key = NodeKey::load(&us.key_file()).unwrap();
    let client = cn.pinned_client();
    let url = format!("https://127.0.0.1:{}/federation/v1/envelope-batches", cn.port);
    let post = |envelopes: Vec<Value>| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let r = client
                .post(&url)
                .body(json!({ "envelopes": envelopes }).to_string())
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            (status, v)
        }
    };
    let comment = |text: &str| json!({"request_id": id, "at": "2026-11-22T10:00:00Z", "actor": "officer", "text": text, "data": null});
    let status = |v: &Value| -> Vec<String> {
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["status"].as_str().unwrap().to_string())
            .collect()
    };

    // A tampered envelope in the middle: the one before it is applied, it is rejected with its
    // reason, the one after it is not looked at.
    let a2 = envelope(&key, "us-fbi", "cn-mps", 2, comment("two"));
    let mut bad3 = envelope(&key, "us-fbi", "cn-mps", 3, comment("three"));
    bad3["payload"]["text"] = json!("tampered");
    let a4 = envelope(&key, "us-fbi", "cn-mps", 4, comment("four"));
    let (s, v) = post(vec![a2.clone(), bad3, a4.clone()]).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(status(&v), ["accepted", "rejected", "skipped"], "{v}");
    assert_eq!(v["results"][1]["code"], "payload_hash_mismatch");
    let r2 = v["results"][0]["receipt"].clone();
    assert_eq!(r2["link_seq"], 2);
    assert_eq!(r2["message_id"], a2["message_id"]);
    assert_eq!(cn.comments(&id), ["two"]);

    // The sender resends from there: the copy already accepted is a duplicate (the stored
    // receipt and the accepted header), the others are applied in order, in one transaction.
    let a3 = envelope(&key, "us-fbi", "cn-mps", 3, comment("three"));
    let a5 = envelope(&key, "us-fbi", "cn-mps", 5, comment("five"));
    let (s, v) = post(vec![a2.clone(), a3.clone(), a4.clone(), a5.clone()]).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(status(&v), ["duplicate", "accepted", "accepted", "accepted"], "{v}");
    assert_eq!(v["results"][0]["receipt"], r2);
    let mut header = a2.clone();
    header.as_object_mut().unwrap().remove("payload");
    assert_eq!(v["results"][0]["accepted_envelope"], header);
    for (i, seq) in [(1, 3), (2, 4), (3, 5)] {
        assert_eq!(v["results"][i]["receipt"]["link_seq"], seq);
        assert_eq!(v["results"][i]["receipt"]["receiver"], "cn-mps");
    }
    assert_eq!(cn.comments(&id), ["two", "three", "four", "five"]);

    // A gap: the receiver names the link_seq it expects and applies nothing.
    let a7 = envelope(&key, "us-fbi", "cn-mps", 7, comment("seven"));
    let (s, v) = post(vec![a7]).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(status(&v), ["out_of_order"]);
    assert_eq!(v["results"][0]["expected_link_seq"], 6);

    // The same message twice in one batch is refused at its second occurrence.
    let a6 = envelope(&key, "us-fbi", "cn-mps", 6, comment("six"));
    let (s, v) = post(vec![a6.clone(), a6.clone()]).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(status(&v), ["accepted", "rejected"], "{v}");
    assert_eq!(v["results"][1]["code"], "malformed");

    // Limits: an empty batch, too many envelopes, unknown members.
    let (s, _) = post(vec![]).await;
    assert_eq!(s, 400);
    let (s, _) = post(vec![a5.clone(); 257]).await;
    assert_eq!(s, 400);
    let r = client
        .post(&url)
        .body(json!({"envelopes": [a5], "extra": 1}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);

    // Exactly once: six comments, each recorded once, the ledger intact.
    assert_eq!(cn.comments(&id), ["two", "three", "four", "five", "six"]);
    let inbox = cn.json(&["federation", "messages"])["inbox"].clone();
    let seqs: Vec<i64> = inbox
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["sender"] == "us-fbi")
        .map(|m| m["link_seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    cn.ok(&["ledger", "verify"]);
}

#[test]
fn backlog_is_delivered_in_batches_in_order() {
    let _serial = serial();
    let (mut us, mut cn, _base) = pair("batched");
    us.start();
    cn.start();
    let id = create_request(&us, "FBI-2026-0009");
    us.transition("officer", &id, "submitted");
    cn.wait_state(&id, "received");
    wait(Duration::from_secs(20), || us.pending() == 0);
    // The peer is down while 40 comments queue up; then they travel in batches of at most 16.
    cn.kill();
    let texts: Vec<String> = (0..40).map(|i| format!("queued {i}")).collect();
    for t in &texts {
        us.comment("officer", &id, t);
    }
    us.kill();
    us.start_with(&[
        ("LIAISON_FED_BATCH", "16"),
        ("LIAISON_LOG", "liaison_service=debug,info"),
    ]);
    cn.start();
    wait(Duration::from_secs(30), || us.pending() == 0);
    assert_eq!(cn.comments(&id), texts);
    let log = us.log_text();
    let batches: Vec<i64> = log
        .lines()
        .filter(|l| l.contains("batch delivered; receipts stored"))
        .filter_map(|l| l.split("delivered=").nth(1)?.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(batches.iter().all(|&n| n <= 16), "{batches:?}");
    assert!(
        batches.iter().any(|&n| n > 1),
        "no batch carried more than one envelope: {batches:?}"
    );
    for n in [&us, &cn] {
        n.ok(&["ledger", "verify"]);
        let st = n.json(&["federation", "status"]);
        assert_eq!(
            st["ledger_leaves"].as_i64().unwrap() - st["ledger_audit_anchors"].as_i64().unwrap(),
            2 * st["outbox_delivered"].as_i64().unwrap() + st["inbox"].as_i64().unwrap(),
            "{st}"
        );
    }
}

/// The node's own descriptor serial, its key ids, and how many key-rotation messages its
/// outbox holds.
fn rotation_state(n: &TestNode) -> (u64, Vec<String>, usize) {
    let pf: Value = serde_json::from_str(&n.ok(&["federation", "descriptor"])).unwrap();
    let serial = pf["descriptor"]["serial"].as_u64().unwrap();
    let keys = pf["descriptor"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key_id"].as_str().unwrap().to_string())
        .collect();
    let m = n.json(&["federation", "messages"]);
    let rotations = m["outbox"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["payload_type"] == "key_rotation")
        .count();
    (serial, keys, rotations)
}

/// A key rotation is one transaction: a crash at any point between its statements (a
/// test-only fail point aborts the process, as a crash would) or a SIGKILL while it is open
/// leaves the old key and no rotation message; the node keeps working with the old key, and a
/// later rotation commits the new key, descriptor and messages together, which the peer
/// accepts.
#[test]
fn key_rotation_survives_crashes_at_every_step() {
    let _serial = serial();
    let (mut us, mut cn, _base) = pair("rotate-crash");
    us.start();
    cn.start();
    let id = create_request(&us, "FBI-2026-0016");
    us.transition("officer", &id, "submitted");
    cn.wait_state(&id, "received");
    let before = rotation_state(&us);
    assert_eq!((before.0, before.1.len(), before.2), (1, 1, 0), "{before:?}");
    for point in [
        "rotate-after-key",
        "rotate-after-descriptor",
        "rotate-after-outbox",
        "rotate-before-commit",
    ] {
        let o = us
            .command(&["federation", "rotate-key", "--overlap-hours", "1"])
            .env("LIAISON_FAIL_POINT", point)
            .output()
            .unwrap();
        assert!(!o.status.success(), "{point}: the rotation did not crash");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(&format!("aborting at {point}")),
            "{point}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(rotation_state(&us), before, "after a crash at {point}");
    }
    // SIGKILL while the rotation's transaction is open (paused just before its commit).
    let mut child = us
        .command(&["federation", "rotate-key", "--overlap-hours", "1"])
        .env("LIAISON_FAIL_POINT", "rotate-before-commit:pause")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("pausing at rotate-before-commit") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the rotation never reached its commit");
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert_eq!(rotation_state(&us), before, "after SIGKILL before the commit");
    // The node still signs with the old key, and the peer accepts it.
    us.comment("officer", &id, "after the crashes");
    wait(Duration::from_secs(20), || {
        cn.comments(&id).contains(&"after the crashes".to_string())
    });
    // Now without a crash: the new key, the descriptor and one message per peer, together.
    let out = us.ok(&["federation", "rotate-key", "--overlap-hours", "1"]);
    let new_key = out.split_whitespace().nth(2).unwrap().to_string();
    let after = rotation_state(&us);
    assert_eq!(after.0, 2, "{after:?}");
    assert_eq!(after.1.len(), 2, "{after:?}");
    assert!(after.1.contains(&new_key), "{after:?}");
    assert_eq!(after.2, 1, "one rotation message for the one peer: {after:?}");
    wait(Duration::from_secs(20), || us.pending() == 0);
    us.kill();
    us.start();
    us.comment("officer", &id, "signed with the new key after the crashes");
    wait(Duration::from_secs(20), || {
        cn.comments(&id)
            .contains(&"signed with the new key after the crashes".to_string())
    });
    let inbox = cn.json(&["federation", "messages"])["inbox"].clone();
    let last = inbox.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["key_id"], new_key.as_str(), "{inbox}");
}

/// Pinning a peer is one transaction: a crash after its jurisdiction or its agency was written
/// leaves neither the agency nor the peer, and pinning again works.
#[test]
fn pinning_a_peer_survives_a_crash_half_way() {
    let _serial = serial();
    let b = base("pin-crash");
    let us = TestNode::new_with(&b, "us-fbi", "FBI", "US", "America/New_York", None);
    let cn = TestNode::new_with(&b, "cn-mps", "CN-MPS", "CN", "Asia/Shanghai", None);
    let (pc, fc) = cn.peer_file();
    let agencies = |n: &TestNode| -> Vec<String> {
        n.json(&["directory"])
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["code"].as_str().unwrap().to_string())
            .collect()
    };
    let before = agencies(&us);
    assert!(!before.contains(&"CN-MPS".to_string()), "{before:?}");
    for point in ["pin-after-jurisdiction", "pin-after-agency"] {
        let o = us
            .command(&["peer", "add", pc.to_str().unwrap(), "--fingerprint", &fc])
            .env("LIAISON_FAIL_POINT", point)
            .output()
            .unwrap();
        assert!(!o.status.success(), "{point}: pinning did not crash");
        assert_eq!(agencies(&us), before, "after a crash at {point}");
        assert_eq!(us.json(&["peer", "list"]), json!([]), "after a crash at {point}");
    }
    us.ok(&["peer", "add", pc.to_str().unwrap(), "--fingerprint", &fc]);
    assert!(agencies(&us).contains(&"CN-MPS".to_string()));
    assert_eq!(us.json(&["peer", "list"])[0]["node_id"], "cn-mps");
}

/// An envelope from us-fbi to cn-mps.
fn envelope_of(key: &NodeKey, seq: u64, payload_type: PayloadType, payload: Value) -> Value {
    envelope_typed(key, "us-fbi", "cn-mps", seq, payload_type, payload)
}

/// A peer's messages are untrusted input (#12 §1-2): a submitted request is validated like a
/// local draft and gets this node's own deadlines; a state change is checked against the
/// request's state HERE, its kind and the sender's side (node-only rules only for the side that
/// owns them). What fails is received, logged and recorded as "not applied", and the link goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)] // each test has its own runtime; the lock only orders tests
async fn peer_messages_are_checked_against_local_state_and_rules() {
    let _serial = serial();
    let (us, mut cn, _base) = pair("untrusted");
    // us-fbi stays down: its submission waits in its outbox, and the test sends forged copies.
    let id = create_request(&us, "FBI-2026-0777");
    us.transition("officer", &id, "submitted");
    let out = us.json(&["federation", "messages"])["outbox"].clone();
    let submitted = out
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["payload_type"] == "request_submitted")
        .unwrap()["payload"]
        .clone();
    cn.start();
    let key = NodeKey::load(&us.key_file()).unwrap();
    let client = cn.pinned_client();
    let url = format!("https://127.0.0.1:{}/federation/v1/envelopes", cn.port);
    let post = |body: Value| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let r = client.post(&url).body(body.to_string()).send().await.unwrap();
            r.status().as_u16()
        }
    };
    let outcome = |n: usize| -> String {
        let inbox = cn.json(&["federation", "messages"])["inbox"].clone();
        inbox[n]["outcome"].as_str().unwrap_or_default().to_string()
    };

    // 1. A 200 KB summary (the local limit is 20 KB): received, not applied, nothing stored.
    let mut big = submitted.clone();
    big["request"]["summary"] = json!("x".repeat(200_000));
    assert_eq!(
        post(envelope_of(&key, 1, PayloadType::RequestSubmitted, big)).await,
        200
    );
    assert!(outcome(0).starts_with("not applied: invalid request"), "{}", outcome(0));
    assert!(cn.try_request(&id).is_none());

    // 2. The real request, with deadlines the sender made up (long past): applied, with
    // cn-mps's own deadlines.
    let mut forged = submitted.clone();
    forged["request"]["ack_due"] = json!("2020-01-01T00:00:00Z");
    forged["request"]["answer_due"] = json!("2020-01-02T00:00:00Z");
    assert_eq!(
        post(envelope_of(&key, 2, PayloadType::RequestSubmitted, forged)).await,
        200
    );
    assert_eq!(outcome(1), "applied");
    cn.wait_state(&id, "received");
    let r = cn.request(&id);
    let req = if r["request"].is_object() {
        r["request"].clone()
    } else {
        r.clone()
    };
    let due: jiff::Timestamp = req["answer_due"].as_str().unwrap().parse().unwrap();
    assert!(due > jiff::Timestamp::now(), "the peer's past deadline was kept: {due}");
    assert!(req["overdue"].is_null(), "{req}");

    // 3. The requesting side closing a request that is `received` here: no such rule for it.
    let transition = |from: &str, to: &str| {
        json!({"request_id": id, "from": from, "to": to, "at": jiff::Timestamp::now().to_string(),
               "actor": "officer", "reason": "forged", "data": null, "acknowledged_at": null,
               "answered_at": null, "preserved_until": null})
    };
    assert_eq!(
        post(envelope_of(
            &key,
            3,
            PayloadType::Transition,
            transition("received", "closed")
        ))
        .await,
        200
    );
    assert!(outcome(2).starts_with("not applied: conflict"), "{}", outcome(2));
    // 4. Claiming another starting state (a `refused` request overwritten to `closed`).
    assert_eq!(
        post(envelope_of(
            &key,
            4,
            PayloadType::Transition,
            transition("refused", "closed")
        ))
        .await,
        200
    );
    assert!(outcome(3).contains("but it is received here"), "{}", outcome(3));
    // 5. A node-only rule of the requested side (expiry), used by the requesting side.
    assert_eq!(
        post(envelope_of(
            &key,
            5,
            PayloadType::Transition,
            transition("needs_information", "expired")
        ))
        .await,
        200
    );
    assert!(outcome(4).starts_with("not applied: conflict"), "{}", outcome(4));
    assert_eq!(cn.state(&id).as_deref(), Some("received"));
    // 6. The link goes on: a legitimate comment is applied.
    let comment = json!({"request_id": id, "at": jiff::Timestamp::now().to_string(), "actor": "officer",
                         "text": "still there", "data": null});
    assert_eq!(post(envelope_of(&key, 6, PayloadType::Comment, comment)).await, 200);
    assert_eq!(outcome(5), "applied");
    assert!(cn.comments(&id).contains(&"still there".to_string()));
}

/// Rejections are logged as escaped fields (a sender's text cannot forge a log line) and at
/// most 20 per 10 s; the rest are counted and reported (#12 §6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)] // each test has its own runtime; the lock only orders tests
async fn rejection_logging_is_bounded_and_escaped() {
    let _serial = serial();
    let (us, mut cn, _base) = pair("reject-log");
    cn.start();
    let client = cn.pinned_client();
    let url = format!("https://127.0.0.1:{}/federation/v1/envelopes", cn.port);
    let key = NodeKey::load(&us.key_file()).unwrap();
    let payload = json!({"request_id": "01a20000-0000-7000-8000-000000000000", "at": "2026-11-22T10:00:00Z", "actor": "x", "text": "x", "data": null});
    // A malformed envelope whose text carries a line break and a forged log line.
    let mut forged = envelope(&key, "us-fbi", "cn-mps", 1, payload.clone());
    forged["payload_type"] = json!("comment\nWARN liaison: FORGED LINE");
    let r = client.post(&url).body(forged.to_string()).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    for _ in 0..59 {
        let mut e = envelope(&key, "us-fbi", "cn-mps", 1, payload.clone());
        e["payload"]["text"] = json!("tampered");
        let r = client.post(&url).body(e.to_string()).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 422);
    }
    std::thread::sleep(Duration::from_millis(10_500));
    let mut e = envelope(&key, "us-fbi", "cn-mps", 1, payload.clone());
    e["payload"]["text"] = json!("tampered");
    client.post(&url).body(e.to_string()).send().await.unwrap();
    let log = cn.log_text();
    // The sender's text is in the log, escaped on the rejection's own line.
    assert!(log.contains("FORGED LINE"), "{log}");
    let logged = log.lines().filter(|l| l.contains("envelope rejected")).count();
    assert_eq!(logged, 21, "20 in the first window, 1 in the next:\n{log}");
    assert!(log.contains("suppressed=40"), "{log}");
    assert!(
        !log.lines().any(|l| l.trim_start().starts_with("WARN liaison: FORGED")),
        "a forged line reached the log:\n{log}"
    );
}

/// The audit log's head is anchored in the ledger (signed, before every tree head a peer
/// fetches), so an insider who rewrites an audit entry and recomputes the whole chain is
/// caught by `liaison audit verify` (#12 §4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)] // each test has its own runtime; the lock only orders tests
async fn audit_anchor_catches_a_rechained_rewrite() {
    let _serial = serial();
    let (mut us, mut cn, _base) = pair("anchor");
    us.start();
    cn.start();
    let id = create_request(&us, "FBI-2026-0077");
    us.transition("officer", &id, "submitted");
    cn.wait_state(&id, "received");
    // cn fetches us's tree head: us anchors its audit log first.
    assert!(cn.ok(&["ledger", "check-peers"]).contains("consistent"));
    let before = us.json(&["audit", "verify"]);
    assert!(before["anchors_checked"].as_u64().unwrap() >= 1, "{before}");
    let anchored = before["last_anchored_seq"].as_i64().unwrap();
    assert!(anchored >= 3, "{before}");
    assert_eq!(before["problems"], 0);
    us.kill();
    // The insider rewrites entry 2 and recomputes every later hash and the head.
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}", us.dir.join("liaison.db").display());
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    sqlx::query("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2")
        .execute(&pool)
        .await
        .unwrap();
    let rows: Vec<(i64, i64, String, String, String, String)> =
        sqlx::query_as("SELECT seq, at, actor, action, subject, detail FROM audit_log WHERE seq >= 2 ORDER BY seq")
            .fetch_all(&pool)
            .await
            .unwrap();
    let mut prev: String = sqlx::query_scalar("SELECT hash FROM audit_log WHERE seq = 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    for (seq, at, actor, action, subject, detail) in rows {
        let text = [
            prev.clone(),
            seq.to_string(),
            at.to_string(),
            actor,
            action,
            subject,
            detail,
        ]
        .join("\u{1f}");
        let hash = liaison_wire::Hash256::digest(text.as_bytes()).to_hex();
        sqlx::query("UPDATE audit_log SET prev_hash = $1, hash = $2 WHERE seq = $3")
            .bind(&prev)
            .bind(&hash)
            .bind(seq)
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("UPDATE audit_head SET hash = $1 WHERE seq = $2")
            .bind(&hash)
            .bind(seq)
            .execute(&pool)
            .await
            .unwrap();
        prev = hash;
    }
    pool.close().await;
    let o = us.cmd(&["audit", "verify"]);
    assert_eq!(o.status.code(), Some(7), "{}", String::from_utf8_lossy(&o.stdout));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("was rewritten") && err.contains("audit anchor"), "{err}");
}

/// Emergency key revocation end to end (#12, docs/federation.md §2.4): us-fbi revokes its key
/// as compromised; cn-mps is told at once and refuses what the old key signs from then on;
/// after us-fbi restarts with its new key, cn-mps refuses that too until its operator pins the
/// new peer file (fingerprint checked by phone); then the held messages go through. An
/// operator can also revoke a peer's key locally, and a revoked key never comes back.
#[test]
fn a_compromised_key_is_revoked_announced_and_refused() {
    let _serial = serial();
    let (mut us, mut cn, _base) = pair("revoke");
    us.start();
    cn.start();
    let id = create_request(&us, "FBI-2026-0099");
    us.transition("officer", &id, "submitted");
    cn.wait_state(&id, "received");
    let old_key = us.json(&["federation", "status"])["node_id"].clone();
    assert_eq!(old_key, "us-fbi");

    // The operator revokes the key (the running node still holds it: an attacker would too).
    let out = us.json(&["federation", "revoke-key", "--reason", "laptop with the key stolen"]);
    let revoked = out["revocation"]["revoked_key_id"].as_str().unwrap().to_string();
    let told = out["announced"].as_array().unwrap();
    assert_eq!(told.len(), 1, "{out}");
    assert_eq!(told[0]["peer"], "cn-mps");
    assert!(told[0]["error"].is_null(), "{out}");
    // Announcing again changes nothing and still succeeds.
    let again = us.json(&["federation", "announce-revocations"]);
    assert!(again[0]["error"].is_null(), "{again}");
    // cn-mps recorded it (audit) and refuses a comment the still-running node signs with the
    // revoked key.
    let audit = cn.json(&["audit", "verify"]);
    assert_eq!(audit["problems"], 0, "{audit}");
    us.comment("officer", &id, "Signed with the revoked key: must not be applied.");
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        cn.comments(&id).is_empty(),
        "a message signed by a revoked key was applied"
    );
    assert!(us.pending() >= 1);

    // Restarted with the new key: refused until cn-mps pins the new descriptor.
    us.kill();
    us.start();
    std::thread::sleep(Duration::from_secs(3));
    assert!(cn.comments(&id).is_empty(), "the new key is not pinned yet");
    let (pf, fp) = us.peer_file();
    let file: Value = serde_json::from_slice(&std::fs::read(&pf).unwrap()).unwrap();
    assert_eq!(
        file["revocations"][0]["key_id"],
        revoked.as_str(),
        "the peer file carries the revocation"
    );
    // A wrong fingerprint is refused; the right one re-pins (keys before stay, closed).
    let o = cn.cmd(&["peer", "add", pf.to_str().unwrap(), "--fingerprint", &"0".repeat(64)]);
    assert_eq!(o.status.code(), Some(7));
    cn.ok(&["peer", "add", pf.to_str().unwrap(), "--fingerprint", &fp]);
    // The held comment was signed by the revoked key at the time: the node re-signs each
    // attempt with its current key, so it now goes through.
    wait(Duration::from_secs(30), || cn.comments(&id).len() == 1);
    us.ok(&["ledger", "verify"]);
    cn.ok(&["ledger", "verify"]);

    // cn-mps's operator revokes the new key too, on their own authority (a phone call).
    let new_key = us.json(&["federation", "status"]);
    assert_eq!(new_key["peers"], json!(["cn-mps"]));
    let pinned: Value = serde_json::from_slice(&std::fs::read(&pf).unwrap()).unwrap();
    let current = pinned["descriptor"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key_id"] != revoked.as_str())
        .unwrap()["key_id"]
        .as_str()
        .unwrap()
        .to_string();
    cn.ok(&[
        "peer",
        "revoke-key",
        "us-fbi",
        "--key-id",
        &current,
        "--reason",
        "call from the FBI duty officer",
    ]);
    // The running node reloads its peers every 2 s.
    std::thread::sleep(Duration::from_secs(3));
    us.comment("officer", &id, "Signed with a key revoked by the receiver.");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(cn.comments(&id).len(), 1, "a key revoked locally must be refused");
    // Re-pinning the same file cannot bring either key back (same serial, and revoked).
    let o = cn.cmd(&["peer", "add", pf.to_str().unwrap(), "--fingerprint", &fp]);
    assert_eq!(o.status.code(), Some(7), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Both sides move one request at once (#12 §1, docs/federation.md §10.5): us-fbi withdraws
/// it while cn-mps, offline, acknowledges it. Both nodes end in the requested side's state;
/// the officer whose move lost sees why in the history; the losing message is kept as
/// evidence, not applied, and counted for the operators.
#[test]
fn crossing_moves_converge_on_the_requested_sides_state() {
    let _serial = serial();
    let (mut us, mut cn, _base) = pair("crossing");
    us.start();
    cn.start();
    let id = create_request(&us, "FBI-2026-0123");
    us.transition("officer", &id, "submitted");
    cn.wait_state(&id, "received");
    us.wait_state(&id, "received");
    // cn-mps goes offline and acknowledges; us-fbi withdraws at the same time.
    cn.kill();
    cn.transition("desk", &id, "acknowledged");
    us.ok(&[
        "--as",
        "officer",
        "request",
        "transition",
        &id,
        "--to",
        "withdrawn",
        "--reason",
        "Suspect identified by other means.",
    ]);
    cn.start();
    us.wait_state(&id, "acknowledged");
    wait(Duration::from_secs(30), || us.pending() == 0 && cn.pending() == 0);
    assert_eq!(cn.state(&id).as_deref(), Some("acknowledged"));
    assert_eq!(us.state(&id).as_deref(), Some("acknowledged"));
    // The officer at us-fbi sees what happened to the withdrawal.
    let events = us.request(&id)["events"].as_array().unwrap().clone();
    let last = events.iter().rev().find(|e| e["event"] == "transition").unwrap();
    assert_eq!(
        (last["from_state"].as_str(), last["to_state"].as_str()),
        (Some("withdrawn"), Some("acknowledged"))
    );
    let reason = last["reason"].as_str().unwrap();
    assert!(
        reason.contains("Conflict") && reason.contains("requested side's move stands"),
        "{reason}"
    );
    assert_eq!(last["data"]["conflict"]["lost"], "withdrawn", "{last}");
    // cn-mps kept the withdrawal as evidence, not applied, and tells its operators.
    let st = cn.json(&["federation", "status"]);
    assert_eq!(st["inbox_not_applied"], 1, "{st}");
    let inbox = cn.json(&["federation", "messages"])["inbox"]
        .as_array()
        .unwrap()
        .clone();
    let refused = inbox
        .iter()
        .find(|m| m["outcome"].as_str().unwrap().starts_with("not applied"))
        .unwrap();
    assert!(
        refused["outcome"]
            .as_str()
            .unwrap()
            .contains("requested side's move stands"),
        "{refused}"
    );
    // The requesting side may act again: the withdrawal now goes through on both sides.
    us.ok(&[
        "--as",
        "officer",
        "request",
        "transition",
        &id,
        "--to",
        "withdrawn",
        "--reason",
        "Still not needed.",
    ]);
    cn.wait_state(&id, "withdrawn");
    us.ok(&["ledger", "verify"]);
    cn.ok(&["ledger", "verify"]);
}

/// Markings travel with a request and its comments; the receiving node enforces them for its
/// own users and refuses a change from anyone but the originator (docs/markings.md, #14).
#[test]
fn markings_travel_and_the_receiver_enforces_them() {
    let _serial = serial();
    let (mut us, mut cn, _base) = pair("markings");
    us.start();
    cn.start();
    let id = create_request_with(&us, "FBI-2026-0900", &["--tlp", "RED", "--recipient", "desk"]);
    us.transition("officer", &id, "submitted");
    let seen_by = |n: &TestNode, user: &str| {
        n.cmd(&["--json", "--as", user, "request", "show", &id])
            .status
            .success()
    };
    wait(Duration::from_secs(30), || seen_by(&cn, "desk"));
    let shown = cn.json(&["--as", "desk", "request", "show", &id]);
    assert_eq!(shown["request"]["marking"]["tlp"], "TLP:RED", "{shown}");
    assert_eq!(shown["request"]["marking"]["recipients"][0], "desk");
    // Another user of the requested agency does not find it, in a listing either.
    assert!(!seen_by(&cn, "officer"));
    let listed = cn.json(&["--as", "officer", "request", "list"]);
    assert!(!listed.to_string().contains(&id), "{listed}");
    // The requested side may not change the marking, on its node…
    let o = cn.cmd(&["--as", "desk", "request", "marking", &id, "--tlp", "CLEAR"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("originating agency"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // …while the originator lowers it and the receiver follows.
    us.ok(&["--as", "officer", "request", "marking", &id, "--tlp", "AMBER"]);
    wait(Duration::from_secs(30), || seen_by(&cn, "officer"));
    assert_eq!(cn.request(&id)["request"]["marking"]["tlp"], "TLP:AMBER");
    // A RED comment of the requested side reaches only the user it names at the requester.
    cn.ok(&[
        "--as",
        "desk",
        "request",
        "comment",
        &id,
        "For the case officer only.",
        "--tlp",
        "RED",
        "--recipient",
        "officer",
    ]);
    cn.comment("desk", &id, "For everyone on the case.");
    wait(Duration::from_secs(30), || us.comments(&id).len() == 2);
    let legal = us.json(&["--as", "legal", "request", "show", &id]);
    let legal_comments = common::comments(&legal);
    assert_eq!(legal_comments, vec!["For everyone on the case.".to_string()], "{legal}");
    // The comment kept its marking at the receiver, and the author's side was recorded there.
    let ev = us.request(&id)["events"].as_array().unwrap().clone();
    let red = ev.iter().find(|e| e["reason"] == "For the case officer only.").unwrap();
    assert_eq!(red["data"]["marking"]["tlp"], "TLP:RED");
    assert_eq!(red["data"]["side"], "requested");
    // Speciality: the requested side's legal reviewer consents to another use; the requester's
    // node records it as the requested side's consent.
    cn.ok(&["--as", "legal", "request", "consent", &id, "--case", "FBI-2026-0901"]);
    wait(Duration::from_secs(30), || {
        us.ok(&["--as", "officer", "request", "show", &id])
            .contains("may be used in (speciality): FBI-2026-0900, FBI-2026-0901")
    });
    wait(Duration::from_secs(20), || us.pending() == 0 && cn.pending() == 0);
    us.ok(&["ledger", "verify"]);
    cn.ok(&["ledger", "verify"]);
}

/// One way to read or pass on a request: what it is called in the rule table and how to call it.
enum Probe {
    Cli(Vec<String>),
    Api(reqwest::Method, String, Option<Value>),
}

/// How each CLI command and API operation that reaches requests or comments is tried against
/// request `id` (`None`: the command creates the caller's own request and reads no one else's).
/// A rule without an entry here fails the test: a new path must be probed.
fn cli_probe(words: &str, id: &str, item: &str) -> Option<Vec<String>> {
    let v = |a: &[&str]| Some(a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    match words {
        "request create" => None,
        "request list" => v(&["request", "list"]),
        "search find" => v(&["search", "find", "SECRET", "--limit", "200"]),
        "search lookup" => v(&["search", "lookup", "192.0.2.1"]),
        // The same use case as `search find`, on a search the caller saved (none here).
        "search run" => None,
        "request overdue" => v(&["request", "overdue"]),
        "request assign" => v(&["request", "assign", id]),
        "request watch" => v(&["request", "watch", id]),
        "request approval" => v(&["request", "approval", id]),
        "request convert" => v(&["request", "convert", id, "--kind", "stored_content"]),
        "home" => v(&["home"]),
        "inbox" => v(&["inbox"]),
        "request show" => v(&["request", "show", id]),
        "request reassess" => v(&["request", "reassess", id]),
        "request transition" => v(&["request", "transition", id, "--to", "acknowledged"]),
        "request comment" => v(&["request", "comment", id, "probe"]),
        "request marking" => v(&["request", "marking", id, "--tlp", "CLEAR"]),
        "request consent" => v(&["request", "consent", id, "--case", "OTHER-CASE"]),
        "request letter" => v(&["request", "letter", id, "--draft", "--out", "/dev/null"]),
        "request translate" => v(&[
            "request",
            "translate",
            id,
            "--lang",
            "en",
            "--field",
            "purpose",
            "--text",
            "probe",
        ]),
        "assess" => v(&["assess", "--request", id]),
        "report cooperation" => v(&["report", "cooperation"]),
        "audit verify" => v(&["audit", "verify"]),
        "intel stats" => v(&["intel", "stats"]),
        "intel remediation" => v(&["intel", "remediation"]),
        // The bundle to stdout, where the probe reads it.
        "intel export" => v(&["intel", "export", "--format", "stix", "--out", "/dev/stdout"]),
        "intel pull" => v(&["intel", "pull", "--list"]),
        "intel ingest" => None,
        "intel notices" => v(&["intel", "notices", "--items", "50"]),
        "intel feedback" => v(&["intel", "feedback", item, "false-positive"]),
        "intel inbox" => v(&["intel", "inbox", "--items", "50"]),
        "intel answer" => v(&["intel", "answer", item, "disputed"]),
        other => panic!("no probe for the CLI command '{other}': add one to cli_probe"),
    }
}

fn api_probe(op: &str, id: &str, item: &str) -> Option<(reqwest::Method, String, Option<Value>)> {
    use reqwest::Method as M;
    let r = |m: M, p: String, b: Option<Value>| Some((m, p, b));
    match op {
        "createRequest" => None,
        "listRequests" => r(M::GET, "/api/v1/requests?view=full".into(), None),
        "listOverdue" => r(M::GET, "/api/v1/requests/overdue".into(), None),
        "searchTexts" => r(M::GET, "/api/v1/search?q=SECRET&limit=200".into(), None),
        "lookupIdentifier" => r(M::GET, "/api/v1/lookup?target=192.0.2.1".into(), None),
        "home" => r(M::GET, "/api/v1/home".into(), None),
        "queueCounts" => r(M::GET, "/api/v1/queues".into(), None),
        "workState" => r(M::GET, format!("/api/v1/requests/{id}/work"), None),
        "assign" => r(M::POST, format!("/api/v1/requests/{id}/assignment"), Some(json!({}))),
        "watch" => r(M::PUT, format!("/api/v1/requests/{id}/watchers/me"), None),
        "unwatch" => r(M::DELETE, format!("/api/v1/requests/{id}/watchers/me"), None),
        "convertPreservation" => r(
            M::POST,
            format!("/api/v1/requests/{id}/conversion"),
            Some(json!({"kind": "stored_content"})),
        ),
        "listNotifications" => r(M::GET, "/api/v1/notifications".into(), None),
        "getRequest" => r(M::GET, format!("/api/v1/requests/{id}"), None),
        "updateDraft" => r(
            M::PUT,
            format!("/api/v1/requests/{id}"),
            Some(json!({"version": 3, "draft": {}})),
        ),
        "listEvents" => r(M::GET, format!("/api/v1/requests/{id}/events"), None),
        "allowedTransitions" => r(M::GET, format!("/api/v1/requests/{id}/transitions"), None),
        "transition" => r(
            M::POST,
            format!("/api/v1/requests/{id}/transitions"),
            Some(json!({"version": 3, "to": "acknowledged"})),
        ),
        "reassess" => r(M::POST, format!("/api/v1/requests/{id}/reassess"), None),
        "setMarking" => r(
            M::POST,
            format!("/api/v1/requests/{id}/marking"),
            Some(json!({"marking": {"tlp": "TLP:CLEAR"}})),
        ),
        "addComment" => r(
            M::POST,
            format!("/api/v1/requests/{id}/comments"),
            Some(json!({"text": "probe"})),
        ),
        "getApproval" => r(M::GET, format!("/api/v1/requests/{id}/approval"), None),
        "approvalStep" => r(
            M::POST,
            format!("/api/v1/requests/{id}/approval"),
            Some(json!({"action": "ask", "version": 3})),
        ),
        "consentToUse" => r(
            M::POST,
            format!("/api/v1/requests/{id}/consents"),
            Some(json!({"for_case": "OTHER-CASE"})),
        ),
        "permittedUses" => r(M::GET, format!("/api/v1/requests/{id}/consents"), None),
        "requestLetter" => r(M::GET, format!("/api/v1/requests/{id}/letter?draft=true"), None),
        "setRequestText" => r(
            M::PUT,
            format!("/api/v1/requests/{id}/texts/purpose/en"),
            Some(json!({"text": "probe"})),
        ),
        "assess" => r(M::POST, "/api/v1/assessments".into(), Some(json!({"request": id}))),
        "cooperationReport" => r(M::GET, "/api/v1/reports/cooperation?format=csv".into(), None),
        "auditVerify" => r(M::GET, "/api/v1/audit/verify".into(), None),
        "intelStats" => r(M::GET, "/api/v1/intel/stats".into(), None),
        "intelRemediation" => r(M::GET, "/api/v1/intel/remediation".into(), None),
        "intelExport" => r(M::GET, "/api/v1/intel/export?format=stix".into(), None),
        "intelMispManifest" => r(M::GET, "/api/v1/intel/misp-feed/manifest.json".into(), None),
        // An event id nobody's feed holds: 404 (the manifest probe reads what a feed lists).
        "intelMispEvent" => r(
            M::GET,
            "/api/v1/intel/misp-feed/00000000-0000-4000-8000-000000000000.json".into(),
            None,
        ),
        "intelIngest" => None,
        "intelIngestJobs" => r(M::GET, "/api/v1/intel/ingests".into(), None),
        "intelIngestJob" => r(M::GET, format!("/api/v1/intel/ingest/{item}"), None),
        "intelNotices" => r(M::GET, "/api/v1/intel/notices".into(), None),
        "intelIssue" => r(M::POST, "/api/v1/intel/notices/issue".into(), None),
        "intelFeedback" => r(
            M::POST,
            "/api/v1/intel/feedback".into(),
            Some(json!({"item": item, "status": "false-positive"})),
        ),
        "intelInbox" => r(M::GET, "/api/v1/intel/inbox".into(), None),
        "intelInboxAnswer" => r(
            M::POST,
            "/api/v1/intel/inbox/answer".into(),
            Some(json!({"item": item, "status": "disputed"})),
        ),
        other => panic!("no probe for the API operation '{other}': add one to api_probe"),
    }
}

/// The probe of a case command on `case`, with request `id` where it names an item (`None`:
/// it reaches nothing another command does not).
fn cli_case_probe(words: &str, case: &str, id: &str) -> Option<Vec<String>> {
    let v = |a: &[&str]| Some(a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    match words {
        "case list" => v(&["case", "list"]),
        "case create" => None,
        "case show" => v(&["case", "show", case]),
        "case stats" => v(&["case", "stats", case]),
        "case invite" => v(&["case", "invite", case, "DE-BKA"]),
        "case accept" => v(&["case", "accept", case]),
        "case decline" => v(&["case", "decline", case]),
        // Changes membership only; what it prints is the case as `case show` prints it.
        "case leave" => None,
        "case link" => v(&["case", "link", case, "--request", id]),
        "case share" => v(&["case", "share", case, "--request", id]),
        "case note" => v(&["case", "note", case, "probe"]),
        "case close" => v(&["case", "close", case]),
        "case reopen" => v(&["case", "reopen", case]),
        "case marking" => v(&["case", "marking", case, "--tlp", "GREEN"]),
        // The case file to stdout, where the probe reads it (entries are stored, not compressed).
        "case export" => v(&["case", "export", case, "--out", "-"]),
        other => panic!("no probe for the CLI command '{other}': add one to cli_case_probe"),
    }
}

fn api_case_probe(op: &str, case: &str, id: &str) -> Option<(reqwest::Method, String, Option<Value>)> {
    use reqwest::Method as M;
    let r = |m: M, p: String, b: Option<Value>| Some((m, p, b));
    let at = |rest: &str| format!("/api/v1/cases/{case}{rest}");
    match op {
        "listCases" => r(M::GET, "/api/v1/cases".into(), None),
        "createCase" => None,
        "getCase" => r(M::GET, at(""), None),
        "caseStats" => r(M::GET, at("/stats"), None),
        "inviteToCase" => r(M::POST, at("/members"), Some(json!({"agency": "DE-BKA"}))),
        "answerCaseInvitation" => r(M::POST, at("/answer"), Some(json!({"accept": true}))),
        "leaveCase" => None,
        "linkToCase" => r(M::POST, at("/links"), Some(json!({"kind": "request", "id": id}))),
        "shareWithCase" => r(M::POST, at("/shares"), Some(json!({"kind": "request", "id": id}))),
        "addCaseNote" => r(M::POST, at("/notes"), Some(json!({"text": "probe"}))),
        "setCaseState" => r(M::POST, at("/state"), Some(json!({"state": "open"}))),
        "setCaseMarking" => r(M::POST, at("/marking"), Some(json!({"marking": {"tlp": "TLP:GREEN"}}))),
        "exportCaseFile" => r(M::GET, at("/export"), None),
        other => panic!("no probe for the API operation '{other}': add one to api_case_probe"),
    }
}

/// #14: three nodes A (FBI) → B (CN-MPS) → C (DE-BKA) in separate processes. A sends B a
/// request at every TLP level, a comment marked RED and a clean-up notice whose items are RED
/// and AMBER+STRICT, and shares a joint case with B (#19), which opens one of its own with C;
/// B's users (named and not) and C's users try every CLI command and API operation that
/// reaches requests, comments, notices, statistics or cases (from the marking rule
/// tables, which every command and operation must be in) to read them or pass them on.
/// Zero leaks: no reader sees a secret its relation does not admit, and no marking moves.
#[test]
fn three_nodes_no_marked_content_leaks_by_any_path() {
    use liaison_server::marking_rules::{API, CLI, Reach};
    let _serial = serial();
    let b = base("leaks");
    let mut a = TestNode::new_with(&b, "us-fbi", "FBI", "US", "America/New_York", None);
    let mut bn = TestNode::new_with(&b, "cn-mps", "CN-MPS", "CN", "Asia/Shanghai", None);
    let mut c = TestNode::new_with(&b, "de-bka", "DE-BKA", "DE", "Europe/Berlin", None);
    for (x, y) in [(&a, &bn), (&bn, &c)] {
        let (px, fx) = x.peer_file();
        let (py, fy) = y.peer_file();
        x.ok(&["peer", "add", py.to_str().unwrap(), "--fingerprint", &fy]);
        y.ok(&["peer", "add", px.to_str().unwrap(), "--fingerprint", &fx]);
    }
    a.start();
    bn.start();
    c.start();

    // A's content, one request per level, each with its own secret words.
    let levels: [(&str, &[&str]); 5] = [
        ("CLEAR", &[]),
        ("GREEN", &[]),
        ("AMBER", &[]),
        ("AMBER+STRICT", &[]),
        ("RED", &["desk"]),
    ];
    let mut ids = Vec::new();
    for (level, named) in levels {
        let secret = format!("SECRET-{}", level.replace('+', "-"));
        let mut extra = vec!["--tlp", level];
        for n in named {
            extra.extend(["--recipient", n]);
        }
        let summary = format!("{secret} summary");
        let mut args = common::create_request_args("officer", &secret, &summary);
        args.extend(extra);
        let v = a.json(&args);
        let id = v["id"].as_str().unwrap().to_string();
        a.transition("officer", &id, "submitted");
        ids.push((level, secret, id));
    }
    // A RED comment on the CLEAR request, for B's legal reviewer only.
    let clear_id = ids[0].2.clone();
    a.ok(&[
        "--as",
        "officer",
        "request",
        "comment",
        &clear_id,
        "SECRET-COMMENT-RED",
        "--tlp",
        "RED",
        "--recipient",
        "legal",
    ]);
    for (_, _, id) in &ids {
        wait(Duration::from_secs(30), || {
            bn.cmd(&["--as", "desk", "request", "show", id]).status.success()
        });
    }
    wait(Duration::from_secs(30), || {
        bn.cmd(&["--json", "--as", "legal", "request", "show", &clear_id])
            .stdout
            .windows(18)
            .any(|w| w == b"SECRET-COMMENT-RED")
    });

    // A clean-up notice from A to CN-MPS, its items marked RED and AMBER+STRICT.
    a.ok(&["user", "add", "analyst", "--agency", "FBI", "--role", "analyst"]);
    let feed = b.join("leak-feed.csv");
    let hosts = [("198.51.100.77", "TLP:RED"), ("198.51.100.78", "TLP:AMBER+STRICT")];
    common::fed::feed(
        &feed,
        &hosts,
        jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1),
    );
    a.as_json(
        "analyst",
        &[
            "intel",
            "ingest",
            feed.to_str().unwrap(),
            "--format",
            "liaison",
            "--route",
            "198.51.100.0/24=CN-MPS",
        ],
    );
    a.as_json("analyst", &["intel", "notices", "--issue"]);
    wait(Duration::from_secs(30), || {
        bn.as_json("officer", &["intel", "inbox"])
            .as_array()
            .is_some_and(|n| !n.is_empty())
    });
    let item = bn.as_json("officer", &["intel", "inbox"])[0]["items"][0]["item_id"]
        .as_str()
        .unwrap()
        .to_string();

    // #19: joint cases. A's case with CN-MPS, A's AMBER+STRICT request linked and shared, a
    // RED note for B's desk. B's own case with DE-BKA (C): B links A's requests to it (a party,
    // not their originator), so C may learn that requests were linked, never which.
    let a_case = a.as_json(
        "officer",
        &[
            "case",
            "create",
            "--name",
            "Lantern",
            "--reference",
            "JTF-LEAK",
            "--invite",
            "CN-MPS",
        ],
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait(Duration::from_secs(30), || {
        bn.cmd(&["--as", "officer", "case", "show", &a_case]).status.success()
    });
    bn.as_json("officer", &["case", "accept", &a_case]);
    wait(Duration::from_secs(30), || {
        a.as_json("officer", &["case", "show", &a_case])["members"][1]["status"] == "active"
    });
    a.as_json("officer", &["case", "link", &a_case, "--request", &ids[3].2, "--share"]);
    a.as_json(
        "officer",
        &[
            "case",
            "note",
            &a_case,
            "SECRET-CASE-RED plan",
            "--tlp",
            "RED",
            "--recipient",
            "CN-MPS:desk",
        ],
    );
    wait(Duration::from_secs(30), || {
        bn.as_json("desk", &["case", "show", &a_case])
            .to_string()
            .contains("SECRET-CASE-RED")
    });
    let b_case = bn.as_json(
        "officer",
        &[
            "case",
            "create",
            "--name",
            "Relay",
            "--reference",
            "MPS-LEAK",
            "--invite",
            "DE-BKA",
        ],
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait(Duration::from_secs(30), || {
        c.cmd(&["--as", "officer", "case", "show", &b_case]).status.success()
    });
    c.as_json("officer", &["case", "accept", &b_case]);
    wait(Duration::from_secs(30), || {
        c.as_json("officer", &["case", "show", &b_case])["status"] == "active"
    });
    for (level, _, id) in &ids[..4] {
        let out = bn.cmd(&["--json", "--as", "officer", "case", "link", &b_case, "--request", id]);
        assert!(out.status.success(), "B links A's {level} request to its case");
        let out = bn.cmd(&["--json", "--as", "officer", "case", "share", &b_case, "--request", id]);
        assert!(!out.status.success(), "B is not the originator of A's {level} request");
    }
    let red = bn.cmd(&[
        "--json",
        "--as",
        "desk",
        "case",
        "link",
        &b_case,
        "--request",
        &ids[4].2,
    ]);
    assert!(!red.status.success(), "a RED request is never linked");
    wait(Duration::from_secs(30), || {
        c.as_json("officer", &["case", "show", &b_case])["links"]
            .as_array()
            .is_some_and(|l| l.len() == 4)
    });

    // Who may see which secret: B's desk is named on the RED request and the RED case note;
    // B's legal reviewer on the RED comment; the notice is CN-MPS's; C is no party to anything.
    let may_see = |node: &str, user: &str, secret: &str| -> bool {
        node == "cn-mps"
            && match secret {
                "SECRET-RED" | "SECRET-CASE-RED" => user == "desk",
                "SECRET-COMMENT-RED" => user == "legal",
                _ => true,
            }
    };
    let secrets: Vec<String> = ids
        .iter()
        .map(|(_, s, _)| s.clone())
        .chain(["SECRET-COMMENT-RED".to_string(), "SECRET-CASE-RED".to_string()])
        .chain(hosts.iter().map(|(h, _)| h.to_string()))
        .collect();

    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::blocking::Client::new();
    let mut tried = 0usize;
    let mut leaks = Vec::new();
    // The control: what each reader may see, it does see by some path (else the probes prove nothing).
    let mut shown = std::collections::HashSet::new();
    for node in [&bn, &c] {
        let base_url = node.api();
        for user in ["officer", "desk", "legal"] {
            let token = node.json(&["--as", "admin", "token", "create", user])["token"]
                .as_str()
                .unwrap()
                .to_string();
            let mut probes: Vec<(String, Probe)> = Vec::new();
            for (_, _, id) in &ids {
                for (words, reach) in CLI {
                    if matches!(
                        reach,
                        Reach::Requests | Reach::Comments | Reach::Statistics | Reach::Intel
                    ) && let Some(args) = cli_probe(words, id, &item)
                    {
                        probes.push((format!("cli: {words}"), Probe::Cli(args)));
                    }
                }
                for (op, reach) in API {
                    if matches!(
                        reach,
                        Reach::Requests | Reach::Comments | Reach::Statistics | Reach::Intel
                    ) && let Some((m, p, body)) = api_probe(op, id, &item)
                    {
                        probes.push((format!("api: {op}"), Probe::Api(m, p, body)));
                    }
                }
            }
            // Case paths, on both cases, with A's AMBER+STRICT and RED requests as items.
            for case in [&a_case, &b_case] {
                for (_, _, id) in &ids[3..] {
                    for (words, reach) in CLI {
                        if *reach == Reach::Cases
                            && let Some(args) = cli_case_probe(words, case, id)
                        {
                            probes.push((format!("cli: {words}"), Probe::Cli(args)));
                        }
                    }
                    for (op, reach) in API {
                        if *reach == Reach::Cases
                            && let Some((m, p, body)) = api_case_probe(op, case, id)
                        {
                            probes.push((format!("api: {op}"), Probe::Api(m, p, body)));
                        }
                    }
                }
            }
            // Paths without an id (listings, statistics) once each.
            let mut once = std::collections::HashSet::new();
            probes.retain(|(path, probe)| {
                let key = match probe {
                    Probe::Cli(a) => format!("{path} {a:?}"),
                    Probe::Api(m, p, _) => format!("{path} {m} {p}"),
                };
                once.insert(key)
            });
            for (path, probe) in probes {
                let seen = match probe {
                    Probe::Cli(args) => {
                        let mut full = vec!["--json".to_string(), "--as".into(), user.into()];
                        full.extend(args);
                        let refs: Vec<&str> = full.iter().map(String::as_str).collect();
                        let o = node.cmd(&refs);
                        format!(
                            "{}{}",
                            String::from_utf8_lossy(&o.stdout),
                            String::from_utf8_lossy(&o.stderr)
                        )
                    }
                    Probe::Api(m, p, body) => {
                        let mut req = http.request(m, format!("{base_url}{p}")).bearer_auth(&token);
                        if let Some(b) = body {
                            req = req.json(&b);
                        }
                        req.send().unwrap().text().unwrap()
                    }
                };
                tried += 1;
                for s in &secrets {
                    if seen.contains(s.as_str()) {
                        if may_see(&node.node_id, user, s) {
                            shown.insert((node.node_id.clone(), user, s.clone()));
                        } else {
                            leaks.push(format!("{}:{user} {path} shows {s}", node.node_id));
                        }
                    }
                }
            }
        }
    }
    assert!(tried > 200, "probes run: {tried}");
    assert!(leaks.is_empty(), "{} leaks:\n{}", leaks.len(), leaks.join("\n"));
    for user in ["officer", "desk", "legal"] {
        for s in &secrets {
            if may_see("cn-mps", user, s) {
                assert!(
                    shown.contains(&("cn-mps".to_string(), user, s.clone())),
                    "control: cn-mps:{user} never saw {s}, which it may see"
                );
            }
        }
    }

    // Nothing moved the markings: at A and at B they are as A set them.
    for (level, _, id) in &ids {
        let want = format!("TLP:{level}");
        assert_eq!(a.request(id)["request"]["marking"]["tlp"], want.as_str());
        let at_b = bn.json(&["--as", "desk", "request", "show", id]);
        assert_eq!(at_b["request"]["marking"]["tlp"], want.as_str(), "{at_b}");
    }
    // C never received anything of A's.
    for (_, _, id) in &ids {
        assert!(!c.cmd(&["--as", "officer", "request", "show", id]).status.success());
    }
    println!("three-node leak test: {tried} probes, 0 leaks");
}
