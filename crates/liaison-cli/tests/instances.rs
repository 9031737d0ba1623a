//! Several instances on one database, and backup and restore, with real `liaison` processes
//! on 127.0.0.1 talking HTTPS with pinned certificates.
//!
//! - two `liaison serve` instances of one node on one PostgreSQL schema both start (each with
//!   its own data directory and federation listen address), deliver every message to the peer
//!   exactly once, run the deadline watcher in one of them, and the survivor finishes delivery
//!   when the instance holding the link is killed;
//! - a node backed up, then sending more, then restored from the backup rejoins its peer: new
//!   messages are applied, nothing stalls, no fork alarm, both ledgers verify.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use liaison_wire::{EnvelopeDraft, MessageId, NodeId, NodeKey, PayloadType};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

mod common;

/// A port below the kernel's ephemeral range, distinct within this process, checked free.
fn free_port() -> u16 {
    common::free_port_from(13_000 + (std::process::id() % 300) as u16 * 20)
}

fn base(name: &str) -> PathBuf {
    common::unique_dir(&format!("liaison-inst-{name}"))
}

fn wait(what: &str, timeout: Duration, f: impl FnMut() -> bool) {
    assert!(
        common::poll_until(timeout, Duration::from_millis(100), f),
        "{what}: not within {timeout:?}"
    );
}

/// One `liaison` data directory and, while started, its `serve` process.
struct Inst {
    name: String,
    dir: PathBuf,
    fed_port: u16,
    child: Option<Child>,
    log: PathBuf,
}

impl Inst {
    fn command(&self, args: &[&str]) -> Command {
        common::data_dir_command(&self.dir, args)
    }

    fn cmd(&self, args: &[&str]) -> std::process::Output {
        self.command(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        common::ok_stdout(&self.cmd(args), format_args!("{} {args:?}", self.name))
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    fn init(base: &Path, name: &str, node_id: &str, code: &str, jur: &str, tz: &str, db: Option<&str>) -> Inst {
        let n = Inst {
            name: name.into(),
            dir: base.join(name),
            fed_port: free_port(),
            child: None,
            log: base.join(format!("{name}.log")),
        };
        let listen = format!("127.0.0.1:{}", n.fed_port);
        let mut args = vec!["init"];
        args.extend(common::node_init_args(code, jur, tz, node_id, &listen));
        if let Some(url) = db {
            args.extend(["--database-url", url]);
        }
        n.ok(&args);
        for (u, role) in [("officer", "officer"), ("desk", "desk")] {
            n.ok(&["user", "add", u, "--agency", code, "--role", role]);
        }
        n
    }

    /// A second instance of the same node: a copy of the data directory (configuration, rule
    /// packs, keys) with its own federation listen address and key directory in liaison.toml.
    fn second_instance(&self, base: &Path, name: &str) -> Inst {
        let dir = base.join(name);
        let o = Command::new("cp").arg("-a").arg(&self.dir).arg(&dir).output().unwrap();
        assert!(o.status.success());
        let port = free_port();
        let cfg = dir.join("liaison.toml");
        let text = std::fs::read_to_string(&cfg).unwrap();
        let from = format!("listen = \"127.0.0.1:{}\"", self.fed_port);
        assert!(
            text.contains(&from),
            "the [federation] listen address is in liaison.toml:\n{text}"
        );
        let text = text.replace(&from, &format!("listen = \"127.0.0.1:{port}\""));
        let key_dir = dir.join("federation");
        let text = text.replace(
            "# key_dir = \"/var/lib/liaison/federation\"",
            &format!("key_dir = {:?}", key_dir.display().to_string()),
        );
        std::fs::write(&cfg, text).unwrap();
        Inst {
            name: name.into(),
            dir,
            fed_port: port,
            child: None,
            log: base.join(format!("{name}.log")),
        }
    }

    fn start(&mut self) {
        assert!(self.child.is_none());
        let env = [("LIAISON_TICK_SECONDS", "1")];
        let child = self.child.insert(common::spawn_federated(&self.dir, &self.log, &env));
        let log = || common::read_log(&self.log);
        common::wait_listening(child, self.fed_port, &self.name, log, "did not listen");
    }

    fn kill(&mut self) {
        common::kill(&mut self.child);
    }

    fn log_text(&self) -> String {
        common::read_log(&self.log)
    }

    fn peer_file(&self) -> (PathBuf, String) {
        common::peer_file(&self.dir)
    }

    fn pin(&self, other: &Inst) {
        let (p, fp) = other.peer_file();
        self.ok(&["peer", "add", p.to_str().unwrap(), "--fingerprint", &fp]);
    }

    fn create_submitted(&self, case: &str) -> String {
        let v = self.json(&common::officer_request_args(case));
        let id = v["request"]["id"].as_str().or(v["id"].as_str()).unwrap().to_string();
        self.ok(&["--as", "officer", "request", "transition", &id, "--to", "submitted"]);
        id
    }

    fn state(&self, id: &str) -> Option<String> {
        common::request_state(&self.cmd(&["--json", "--as", "officer", "request", "show", id]))
    }

    fn comments(&self, id: &str) -> Vec<String> {
        common::comments(&self.json(&["--as", "officer", "request", "show", id]))
    }

    fn messages(&self) -> Value {
        self.json(&["federation", "messages"])
    }

    fn pending(&self) -> usize {
        common::undelivered(&self.messages())
    }
}

impl Drop for Inst {
    fn drop(&mut self) {
        self.kill();
    }
}

// The tests run one at a time (ports, CPU).
use common::serial;

fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

#[test]
fn two_instances_on_one_postgresql_deliver_exactly_once_and_take_over() {
    let _serial = serial();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(url) = rt.block_on(liaison_service::fixtures::postgres_url()) else {
        return;
    };
    let b = base("two");
    let mut us1 = Inst::init(&b, "us1", "us-fbi", "FBI", "US", "America/New_York", Some(&url));
    let mut cn = Inst::init(&b, "cn", "cn-mps", "CN-MPS", "CN", "Asia/Shanghai", None);
    us1.pin(&cn);
    cn.pin(&us1);
    let mut us2 = us1.second_instance(&b, "us2");
    // Both instances start on one database (each binds its own federation address).
    us1.start();
    us2.start();
    cn.start();
    const N: usize = 20;
    let id = us1.create_submitted("FBI-2026-0100");
    for i in 0..N {
        // Both instances' CLIs write the shared outbox.
        let writer = if i % 2 == 0 { &us1 } else { &us2 };
        writer.ok(&["--as", "officer", "request", "comment", &id, &format!("message {i}")]);
    }
    wait("the peer has every comment", Duration::from_secs(60), || {
        cn.comments(&id).len() == N
    });
    wait("nothing pending", Duration::from_secs(30), || us1.pending() == 0);
    let expected: Vec<String> = (0..N).map(|i| format!("message {i}")).collect();
    assert_eq!(cn.comments(&id), expected, "each message applied once, in order");
    // Exactly once: every message accepted once, and no copy was sent twice (the receiver
    // logs every duplicate it is sent); one `sent` leaf per message on the sender.
    let inbox = cn.messages()["inbox"].as_array().unwrap().clone();
    let from_us: Vec<&Value> = inbox.iter().filter(|m| m["sender"] == "us-fbi").collect();
    assert_eq!(from_us.len(), N + 1, "submission + {N} comments");
    assert_eq!(
        count(&cn.log_text(), "duplicate envelope not applied again"),
        0,
        "{}",
        cn.log_text()
    );
    let owners: Vec<&Inst> = [&us1, &us2]
        .into_iter()
        .filter(|i| i.log_text().contains("this instance delivers the link") && i.log_text().contains("peer=cn-mps"))
        .collect();
    assert_eq!(owners.len(), 1, "one instance delivers the link");
    // One deadline watcher across the instances.
    wait("a deadline watcher", Duration::from_secs(10), || {
        us1.log_text().contains("this instance runs the deadline watcher")
            || us2.log_text().contains("this instance runs the deadline watcher")
    });
    std::thread::sleep(Duration::from_secs(2));
    let watchers = [&us1, &us2]
        .iter()
        .filter(|i| i.log_text().contains("this instance runs the deadline watcher"))
        .count();
    assert_eq!(watchers, 1, "one deadline watcher across instances");
    // Kill the instance that delivers; the other takes the link over and delivers the rest.
    let owner_is_1 = us1.log_text().contains("this instance delivers the link");
    let (dead, alive) = if owner_is_1 {
        (&mut us1, &mut us2)
    } else {
        (&mut us2, &mut us1)
    };
    dead.kill();
    let killed = Instant::now();
    for i in N..N + 10 {
        alive.ok(&["--as", "officer", "request", "comment", &id, &format!("message {i}")]);
    }
    wait("the survivor delivers", Duration::from_secs(60), || {
        cn.comments(&id).len() == N + 10
    });
    eprintln!(
        "takeover: the 10 messages written after the kill were delivered {:?} after it",
        killed.elapsed()
    );
    assert!(
        alive.log_text().contains("this instance delivers the link"),
        "{}",
        alive.log_text()
    );
    let expected: Vec<String> = (0..N + 10).map(|i| format!("message {i}")).collect();
    assert_eq!(cn.comments(&id), expected);
    assert_eq!(count(&cn.log_text(), "duplicate envelope not applied again"), 0);
    wait(
        "the survivor runs the deadline watcher",
        Duration::from_secs(15),
        || alive.log_text().contains("this instance runs the deadline watcher"),
    );
    alive.ok(&["ledger", "verify"]);
    cn.ok(&["ledger", "verify"]);
    assert_eq!(cn.state(&id).as_deref(), Some("received"));
}

fn reused_seq_envelope(key: &NodeKey, seq: u64, request: &str) -> Value {
    let e = EnvelopeDraft {
        message_id: MessageId::new(),
        sender: NodeId::parse("us-fbi").unwrap(),
        recipient: NodeId::parse("cn-mps").unwrap(),
        link_seq: seq,
        created_at: jiff::Timestamp::now(),
        payload_type: PayloadType::Comment,
        payload: json!({"request_id": request, "at": "2026-11-22T10:00:00.000Z", "actor": "officer", "text": "overwrite?", "data": null}),
    }
    .sign(key)
    .unwrap();
    serde_json::from_slice(&e.to_bytes().unwrap()).unwrap()
}

#[test]
fn a_node_restored_from_backup_rejoins_without_stall_or_fork_alarm() {
    let _serial = serial();
    restored_node_rejoins(None);
}

#[test]
fn a_node_on_postgresql_restored_from_backup_rejoins() {
    let _serial = serial();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(url) = rt.block_on(liaison_service::fixtures::postgres_url()) else {
        return;
    };
    restored_node_rejoins(Some(&url));
}

fn restored_node_rejoins(db: Option<&str>) {
    let b = base("restore");
    let mut us = Inst::init(&b, "us", "us-fbi", "FBI", "US", "America/New_York", db);
    let mut cn = Inst::init(&b, "cn", "cn-mps", "CN-MPS", "CN", "Asia/Shanghai", None);
    us.pin(&cn);
    cn.pin(&us);
    us.start();
    cn.start();
    let id = us.create_submitted("FBI-2026-0200");
    wait("received", Duration::from_secs(30), || {
        us.state(&id).as_deref() == Some("received")
    });
    us.ok(&["--as", "officer", "request", "comment", &id, "c1"]);
    wait("c1 delivered", Duration::from_secs(30), || {
        us.pending() == 0 && cn.pending() == 0
    });
    // Backup while the node runs.
    let archive = b.join("us-backup.liaison");
    us.ok(&["backup", "--out", archive.to_str().unwrap()]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&archive).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the archive holds secret keys");
    }
    // After the backup: us sends two more, cn sends one back; the peer witnesses us's larger log.
    us.ok(&["--as", "officer", "request", "comment", &id, "c2"]);
    us.ok(&["--as", "officer", "request", "comment", &id, "c3"]);
    cn.ok(&["--as", "desk", "request", "comment", &id, "d1"]);
    wait("c2, c3, d1 delivered", Duration::from_secs(30), || {
        cn.comments(&id).len() == 4 && us.comments(&id).len() == 4 && us.pending() == 0 && cn.pending() == 0
    });
    assert!(cn.ok(&["ledger", "check-peers"]).contains("consistent"));
    let witnessed = us.json(&["ledger", "verify"]);
    // A live data directory is not replaced without --force; a tampered archive never.
    us.kill();
    let o = us.cmd(&["restore", archive.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    let mut bytes = std::fs::read(&archive).unwrap();
    let last = bytes.len() - 10;
    bytes[last] ^= 0x01;
    let tampered = b.join("tampered.liaison");
    std::fs::write(&tampered, &bytes).unwrap();
    let o = us.cmd(&["restore", tampered.to_str().unwrap(), "--force"]);
    assert_eq!(o.status.code(), Some(7), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        us.comments(&id).len(),
        4,
        "a failed restore leaves the data directory as it was"
    );
    // Restore.
    let out = us.ok(&["restore", archive.to_str().unwrap(), "--force"]);
    assert!(out.contains("kept at"), "{out}");
    assert_eq!(
        us.comments(&id),
        vec!["c1".to_string()],
        "the node is back at the backup"
    );
    let marker: Value =
        serde_json::from_slice(&std::fs::read(us.dir.join("federation").join("restored-from-backup.json")).unwrap())
            .unwrap();
    // The restore point is the ledger as restored, smaller than what the peer witnessed; what
    // is written or received after the restore (c4 below, d1 sent again) is not part of it.
    let point = marker["ledger_size"].as_u64().unwrap_or(u64::MAX);
    assert!(
        point > 0 && point < witnessed["leaves"].as_u64().unwrap_or(0),
        "{marker} {witnessed}"
    );
    // No tree head is signed before the peers were told of the restore, proofs included.
    let o = us.cmd(&["ledger", "prove", "any-message"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("restored from a backup"), "{e}");
    // New messages after the restore take numbers the peer already applied: c4 written while
    // the node is down (renumbered by the recovery), c5 after it started.
    us.ok(&["--as", "officer", "request", "comment", &id, "c4"]);
    us.start();
    us.ok(&["--as", "officer", "request", "comment", &id, "c5"]);
    wait("c4, c5 applied at the peer", Duration::from_secs(60), || {
        cn.comments(&id).len() == 6
    });
    assert_eq!(cn.comments(&id), ["c1", "c2", "c3", "d1", "c4", "c5"]);
    wait("nothing stalls", Duration::from_secs(30), || {
        us.pending() == 0 && cn.pending() == 0
    });
    // What the peer sent after the backup came back (it was sent again).
    wait("d1 back", Duration::from_secs(30), || {
        us.comments(&id).contains(&"d1".to_string())
    });
    assert!(!us.dir.join("federation").join("restored-from-backup.json").exists());
    let log = us.log_text();
    // c4 (written while the node was stopped) is renumbered; so is c5 when it was written
    // before the recovery ran (a busy machine).
    assert!(
        log.contains("link recovered") && (log.contains("renumbered=1") || log.contains("renumbered=2")),
        "{log}"
    );
    // No fork alarm: the peer accepted the restored log on the signed restore notice.
    // The peer notices at its next tree-head check; on a loaded machine (CI beside fuzzers)
    // that took more than 10 s twice, so the wait allows 60 s (it returns as soon as it is seen).
    wait("the peer checks the restored log", Duration::from_secs(60), || {
        cn.log_text().contains("peer was restored from a backup")
    });
    assert!(!cn.log_text().contains("LEDGER INCONSISTENCY"), "{}", cn.log_text());
    assert!(cn.ok(&["ledger", "check-peers"]).contains("consistent"));
    let ev = cn.json(&["ledger", "evidence"]);
    assert_eq!(ev.as_array().map(|a| a.len()), Some(0), "{ev}");
    us.ok(&["ledger", "verify"]);
    cn.ok(&["ledger", "verify"]);
    // The recovered entries (c2, c3 as the peer holds them) are in the restored node's ledger.
    let after = us.json(&["ledger", "verify"]);
    assert!(
        after["leaves"].as_u64().unwrap_or(0) >= witnessed["leaves"].as_u64().unwrap_or(0),
        "{witnessed} → {after}"
    );
    // A reused number with other content is refused with its own code, never applied.
    let key = NodeKey::load(
        &std::fs::read_dir(us.dir.join("federation"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("node-key-"))
            .unwrap(),
    )
    .unwrap();
    let (pf, _) = cn.peer_file();
    let pf: Value = serde_json::from_slice(&std::fs::read(pf).unwrap()).unwrap();
    let fp = liaison_wire::Hash256::from_hex(pf["descriptor"]["tls_cert_sha256"].as_str().unwrap()).unwrap();
    let client = liaison_server::federation::https::pinned_client(fp).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (status, v) = rt.block_on(async {
        let r = client
            .post(format!("https://127.0.0.1:{}/federation/v1/envelopes", cn.fed_port))
            .body(reused_seq_envelope(&key, 2, &id).to_string())
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json::<Value>().await.unwrap_or(Value::Null))
    });
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["title"], "link_seq_reused", "{v}");
    assert!(!cn.comments(&id).contains(&"overwrite?".to_string()));
    assert!(cn.log_text().contains("LINK SEQUENCE REUSED"));
}
