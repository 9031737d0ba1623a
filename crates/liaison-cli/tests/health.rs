#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `/api/v1/health` tells the truth about the database (#12 §6): a damaged SQLite file and a
//! full disk are reported (503, with what to do), not answered "ok" because `SELECT 1` works.
//! Real binary, real data directory, a real full file system (a small tmpfs in a mount
//! namespace of the test's own).

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{BIN, liaison};

fn tmp(name: &str) -> PathBuf {
    common::unique_dir(&format!("liaison-health-{name}"))
}

/// A running `liaison serve`; killed on drop.
struct Served {
    child: Child,
    addr: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd` (a `liaison serve` on port 0, possibly wrapped) and reads the address it
/// prints.
fn serve(mut cmd: Command) -> Served {
    let mut child = cmd.stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stderr).lines();
        for line in lines.by_ref().map_while(Result::ok) {
            if let Some(addr) = common::served_address(&line) {
                let _ = tx.send(addr.to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the node did not print its address");
    Served { child, addr }
}

fn health(addr: &str) -> (u16, Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let r = reqwest::blocking::get(format!("http://{addr}/api/v1/health")).unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap())
}

/// Polls `/health` until `done` holds (the integrity check runs in the background).
fn health_until(addr: &str, done: impl Fn(u16, &Value) -> bool) -> (u16, Value) {
    let start = Instant::now();
    loop {
        let (s, v) = health(addr);
        if done(s, &v) || start.elapsed() > Duration::from_secs(60) {
            return (s, v);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_damaged_database_is_reported_not_ok() {
    let dir = tmp("corrupt").join("node");
    let out = liaison(&dir)
        .args(["demo", "--no-serve", "--requests", "120"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Healthy first: the check ran and found nothing.
    {
        let mut c = liaison(&dir);
        c.args(["serve", "--listen", "127.0.0.1:0"]);
        let node = serve(c);
        let (s, v) = health_until(&node.addr, |_, v| v["integrity"]["state"] != "pending");
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["database"], "ok");
        assert_eq!(v["integrity"]["state"], "ok", "{v}");
        assert!(v["disk_free_bytes"].as_u64().unwrap() > 0);
    }
    // Damage pages in the middle of the file (the node is stopped): the first byte of a
    // b-tree page is its type, 0xFF is none.
    let db = dir.join("liaison.db");
    let _ = std::fs::remove_file(dir.join("liaison.db-wal"));
    let _ = std::fs::remove_file(dir.join("liaison.db-shm"));
    let mut f = std::fs::OpenOptions::new().read(true).write(true).open(&db).unwrap();
    let mut header = [0u8; 100];
    f.read_exact(&mut header).unwrap();
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65536,
        n => u64::from(n),
    };
    let pages = f.metadata().unwrap().len() / page_size;
    assert!(pages > 20, "fixture: the demo database has {pages} pages");
    for p in (pages / 3)..(2 * pages / 3) {
        f.seek(SeekFrom::Start(p * page_size)).unwrap();
        f.write_all(&[0xFF; 16]).unwrap();
    }
    f.sync_all().unwrap();
    drop(f);
    let mut c = liaison(&dir);
    c.args(["serve", "--listen", "127.0.0.1:0"]);
    let node = serve(c);
    let (s, v) = health_until(&node.addr, |s, _| s != 200);
    assert_eq!(s, 503, "{v}");
    assert_eq!(v["status"], "unavailable");
    assert_eq!(v["database"], "corrupt", "{v}");
    assert_eq!(v["integrity"]["state"], "corrupt");
    let problems = v["problems"].to_string();
    assert!(
        problems.contains("damaged") && problems.contains("restore"),
        "{problems}"
    );
}

fn can_make_mount_namespaces() -> bool {
    Command::new("unshare")
        .args(["-m", "true"])
        .status()
        .is_ok_and(|s| s.success())
        && Command::new("nsenter").arg("--version").output().is_ok()
}

/// Runs `args` inside the mount namespace of `pid` (where the small file system is).
fn inside(pid: u32, args: &[&str]) -> std::process::Output {
    Command::new("nsenter")
        .arg("-t")
        .arg(pid.to_string())
        .arg("-m")
        .args(args)
        .env("LIAISON_LOG", "error")
        .output()
        .unwrap()
}

#[test]
fn a_full_disk_is_reported_and_writes_fail_cleanly() {
    if !can_make_mount_namespaces() {
        eprintln!("### SKIPPED: this test needs `unshare -m` (root) and nsenter to mount a small file system ###");
        assert!(
            std::env::var_os("LIAISON_REQUIRE_NAMESPACES").is_none(),
            "LIAISON_REQUIRE_NAMESPACES is set but mount namespaces are unavailable"
        );
        return;
    }
    let mnt = tmp("full");
    let node_dir = mnt.join("node");
    let d = node_dir.display().to_string();
    // A 40 MiB tmpfs seen only by this namespace; the node is set up and served on it.
    let script = format!(
        "mount -t tmpfs -o size=40m tmpfs '{m}' && \
         '{BIN}' --data-dir '{d}' init --agency-code FBI --agency-name 'Federal Bureau of Investigation' \
            --jurisdiction US --time-zone America/New_York >/dev/null && \
         exec '{BIN}' --data-dir '{d}' serve --listen 127.0.0.1:0",
        m = mnt.display()
    );
    let mut c = Command::new("unshare");
    c.args(["-m", "--propagation", "private", "sh", "-c", &script])
        .env("LIAISON_MIN_FREE_MB", "8")
        .env("LIAISON_LOG", "error")
        .env_remove("LIAISON_DATABASE_URL");
    let node = serve(c);
    let pid = node.child.id();
    let (s, v) = health_until(&node.addr, |_, v| v["integrity"]["state"] != "pending");
    assert_eq!(s, 200, "{v}");
    let add = |code: &str| {
        inside(
            pid,
            &[
                BIN,
                "--data-dir",
                &d,
                "directory",
                "add-agency",
                code,
                "--name",
                "National Police",
                "--jurisdiction",
                "FR",
                "--time-zone",
                "Europe/Paris",
            ],
        )
    };
    let o = add("FR-PN");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // Fill the file system (dd stops at ENOSPC).
    let fill = format!("{}/filler", mnt.display());
    let o = inside(pid, &["dd", "if=/dev/zero", &format!("of={fill}"), "bs=1M"]);
    assert!(!o.status.success(), "dd should have run out of space");
    let (s, v) = health(&node.addr);
    assert_eq!(s, 503, "{v}");
    assert_eq!(v["database"], "disk_full", "{v}");
    assert!(v["problems"].to_string().contains("nearly full"), "{v}");
    // Writes now fail with an error that says why, and nothing is half-stored. A small write
    // may still fit: once the checkpointer has copied the WAL into the database, SQLite reuses
    // the WAL file's blocks from its start. So write until one needs a block the disk cannot
    // give; each write either lands whole or fails, and which is checked below.
    let mut stored = Vec::new();
    let mut refused = None;
    for i in 0..400 {
        let code = format!("FR-X{i}");
        let o = add(&code);
        if o.status.success() {
            stored.push(code);
        } else {
            refused = Some((code, String::from_utf8_lossy(&o.stderr).to_lowercase()));
            break;
        }
    }
    let Some((refused, err)) = refused else {
        panic!("400 writes on a full disk all succeeded");
    };
    assert!(err.contains("full"), "{err}");

    // Space freed: healthy again, writes work, the audit chain is intact.
    let o = inside(pid, &["rm", "-f", &fill]);
    assert!(o.status.success());
    let (s, v) = health(&node.addr);
    assert_eq!(s, 200, "{v}");
    let o = add("FR-GN");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = inside(pid, &[BIN, "--data-dir", &d, "audit", "verify"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = inside(pid, &[BIN, "--data-dir", &d, "--json", "directory"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("FR-PN") && text.contains("FR-GN"), "{text}");
    for code in &stored {
        assert!(text.contains(&format!("\"{code}\"")), "{code} was stored: {text}");
    }
    assert!(
        !text.contains(&format!("\"{refused}\"")),
        "{refused} was refused yet stored: {text}"
    );
}
