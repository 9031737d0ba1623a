#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
//! Evidence files through the real binary (docs/evidence.md, issue #13): `liaison serve` in a
//! subprocess, a resumable upload of a file larger than a chunk whose client (curl) is
//! SIGKILLed mid-upload and resumed, a wrong final hash refused, download headers, content
//! not plaintext on disk and a flipped byte detected, key rotation, a RED file invisible to a
//! non-recipient, custody entries and `liaison audit verify` — on SQLite and PostgreSQL.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::BIN;

const CHUNK: usize = 1 << 20;

struct Node {
    dir: PathBuf,
    base: PathBuf,
    child: Option<Child>,
    api: String,
    tokens: std::collections::HashMap<&'static str, String>,
}

impl Drop for Node {
    fn drop(&mut self) {
        common::kill(&mut self.child);
    }
}

impl Node {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--data-dir")
            .arg(&self.dir)
            .args(args)
            .env_remove("LIAISON_USER")
            .env_remove("LIAISON_DATA_DIR")
            .env_remove("LIAISON_DATABASE_URL")
            .env_remove("LIAISON_LISTEN")
            .env("LIAISON_LOG", "warn")
            .env("NO_COLOR", "1");
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.command(args).output().unwrap();
        common::ok_stdout(&o, format!("liaison {args:?}"))
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    fn init(name: &str, pg: Option<&str>) -> Node {
        let base = common::unique_dir(&format!("liaison-evidence-{name}"));
        let mut n = Node {
            dir: base.join("node"),
            base,
            child: None,
            api: String::new(),
            tokens: Default::default(),
        };
        // A federation listener of its own (the default port may be taken).
        let fed = format!("127.0.0.1:{}", common::free_port_from(common::port_slot(27)));
        let mut args = vec!["init"];
        args.extend(common::FBI_AGENCY);
        args.extend(["--federation-listen", &fed]);
        if let Some(url) = pg {
            args.extend(["--database-url", url]);
        }
        let init = n.json(&args);
        n.tokens
            .insert("admin", init["admin_token"].as_str().unwrap().to_string());
        n.json(&common::ADD_CN_MPS);
        for (user, agency, role) in [
            ("officer", "FBI", "officer"),
            ("desk", "CN-MPS", "desk"),
            ("mps", "CN-MPS", "officer"),
        ] {
            n.ok(&["user", "add", user, "--agency", agency, "--role", role]);
            let t = n.json(&["token", "create", user]);
            n.tokens.insert(user, t["token"].as_str().unwrap().to_string());
        }
        n
    }

    fn start(&mut self) {
        let log = self.base.join("serve.log");
        let child = self
            .command(&["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let t0 = Instant::now();
        loop {
            let text = common::read_log(&log);
            if let Some(addr) = text.lines().find_map(common::served_address) {
                self.api = format!("http://{addr}");
                return;
            }
            assert!(t0.elapsed() < Duration::from_secs(60), "serve did not start:\n{text}");
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api)
    }

    fn token(&self, user: &str) -> &str {
        &self.tokens[user]
    }
}

fn http() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Bytes that do not compress and are not recognisable, with a marker every KiB.
fn content(len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while v.len() < len {
        if v.len() % 1024 == 0 {
            v.extend_from_slice(b"PLAINTEXT-MARK");
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

fn run(pg: Option<&str>, name: &str) {
    let mut n = Node::init(name, pg);
    let req = n.json(&common::officer_request_args("FBI-EV-1"));
    let id = req["id"].as_str().unwrap().to_string();
    n.ok(&["--as", "officer", "request", "transition", &id, "--to", "submitted"]);
    n.start();
    let http = http();
    let officer = n.token("officer").to_string();

    // --- A resumable upload of 3 chunks and a bit; the client is killed mid-upload. ---
    let bytes = content(3 * CHUNK + 777);
    let file = n.base.join("image.bin");
    std::fs::write(&file, &bytes).unwrap();
    let r = http
        .post(n.url(&format!("/api/v1/requests/{id}/evidence/uploads")))
        .bearer_auth(&officer)
        .json(&serde_json::json!({"file_name": "disk image.bin", "media_type": "application/x-raw-disk-image"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let upload: Value = r.json().unwrap();
    let up = upload["id"].as_str().unwrap().to_string();
    let session = format!("/api/v1/requests/{id}/evidence/uploads/{up}");
    let mut curl = Command::new("curl")
        .args(["-s", "-X", "PATCH", "--limit-rate", "1M", "-H"])
        .arg(format!("Authorization: Bearer {officer}"))
        .arg("-H")
        .arg("Content-Type: application/octet-stream")
        .arg("--data-binary")
        .arg(format!("@{}", file.display()))
        .arg(n.url(&format!("{session}?offset=0")))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("curl (the killed client)");
    std::thread::sleep(Duration::from_millis(1500));
    curl.kill().unwrap(); // SIGKILL
    curl.wait().unwrap();
    // The server notices the broken connection and keeps what arrived.
    let mut received = 0u64;
    assert!(common::poll_until(
        Duration::from_secs(20),
        Duration::from_millis(100),
        || {
            let s: Value = http
                .get(n.url(&session))
                .bearer_auth(&officer)
                .send()
                .unwrap()
                .json()
                .unwrap();
            received = s["received"].as_u64().unwrap_or(0);
            s["receiving"] == false && received > 0
        }
    ));
    assert!(
        received < bytes.len() as u64,
        "the client was killed mid-upload ({received} bytes arrived)"
    );
    // A piece at the wrong offset is refused, naming the right one.
    let r = http
        .patch(n.url(&format!("{session}?offset=0")))
        .bearer_auth(&officer)
        .body(b"x".to_vec())
        .send()
        .unwrap();
    assert_eq!(r.status(), 409);
    assert!(r.text().unwrap().contains(&received.to_string()));
    // Resume where it stopped.
    let r = http
        .patch(n.url(&format!("{session}?offset={received}")))
        .bearer_auth(&officer)
        .body(bytes[received as usize..].to_vec())
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text());
    let s: Value = r.json().unwrap();
    assert_eq!(s["received"].as_u64(), Some(bytes.len() as u64));
    let r = http
        .post(n.url(&format!("{session}/finish")))
        .bearer_auth(&officer)
        .json(&serde_json::json!({"sha256": sha(&bytes)}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let stored: Value = r.json().unwrap();
    let fid = stored["id"].as_str().unwrap().to_string();
    assert_eq!(stored["size"].as_u64(), Some(bytes.len() as u64));
    assert_eq!(stored["file_name"], "disk image.bin");

    // --- The content on disk is sealed: no plaintext, mode 0600. ---
    let digest = sha(&bytes);
    let on_disk_path = n.dir.join("evidence").join(&digest[..2]).join(&digest);
    let on_disk = std::fs::read(&on_disk_path).unwrap();
    assert!(!on_disk.windows(14).any(|w| w == b"PLAINTEXT-MARK"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&on_disk_path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(n.dir.join("evidence")).unwrap().permissions().mode() & 0o777,
        0o700
    );

    // --- Download by the other party: headers and content. ---
    let desk = n.token("desk").to_string();
    let r = http
        .get(n.url(&format!("/api/v1/requests/{id}/evidence/{fid}/content")))
        .bearer_auth(&desk)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "application/octet-stream");
    let cd = h["content-disposition"].to_str().unwrap();
    assert!(cd.starts_with("attachment; filename=\"disk_image.bin\""), "{cd}");
    assert!(cd.contains("filename*=UTF-8''disk%20image.bin"), "{cd}");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["content-security-policy"], "sandbox");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["content-length"], bytes.len().to_string().as_str());
    assert!(
        r.bytes().unwrap() == bytes,
        "the downloaded bytes are the uploaded bytes"
    );

    // --- A wrong final hash is refused and nothing is stored. ---
    let r = http
        .post(n.url(&format!(
            "/api/v1/requests/{id}/evidence?file_name=x.txt&sha256={}",
            "0".repeat(64)
        )))
        .bearer_auth(&officer)
        .body("not what the hash says")
        .send()
        .unwrap();
    assert_eq!(r.status(), 422);
    let list: Value = http
        .get(n.url(&format!("/api/v1/requests/{id}/evidence")))
        .bearer_auth(&officer)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");

    // --- A RED file for CN-MPS's desk only, added with the CLI. ---
    let red = n.base.join("informant.txt");
    std::fs::write(&red, b"RED-EVIDENCE-CONTENT").unwrap();
    let added = n.json(&[
        "--as",
        "officer",
        "evidence",
        "add",
        &id,
        red.to_str().unwrap(),
        "--tlp",
        "RED",
        "--recipient",
        "desk",
    ]);
    let red_id = added["id"].as_str().unwrap().to_string();
    let mps = n.token("mps").to_string();
    for path in [
        format!("/api/v1/requests/{id}/evidence/{red_id}"),
        format!("/api/v1/requests/{id}/evidence/{red_id}/content"),
        format!("/api/v1/requests/{id}/evidence/{red_id}/custody"),
    ] {
        let r = http.get(n.url(&path)).bearer_auth(&mps).send().unwrap();
        assert_eq!(r.status(), 404, "{path}");
        assert!(!r.text().unwrap().contains("RED-EVIDENCE"));
    }
    let list = http
        .get(n.url(&format!("/api/v1/requests/{id}/evidence")))
        .bearer_auth(&mps)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(!list.contains(&red_id) && !list.contains("informant"), "{list}");
    let o = n
        .command(&["--as", "mps", "evidence", "get", &red_id, "--out", "-"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "not found for a non-recipient");
    let got = n
        .command(&["--as", "desk", "evidence", "get", &red_id, "--out", "-"])
        .output()
        .unwrap();
    assert_eq!(got.stdout, b"RED-EVIDENCE-CONTENT");

    // --- Key rotation keeps every file readable (the server keeps running). ---
    let key_before = std::fs::read_to_string(n.dir.join("evidence.key")).unwrap();
    let rot = n.json(&["--as", "admin", "evidence", "rotate-key"]);
    assert!(rot["rewrapped"].as_u64().unwrap() >= 2, "{rot}");
    assert_ne!(key_before, std::fs::read_to_string(n.dir.join("evidence.key")).unwrap());
    let again = http
        .get(n.url(&format!("/api/v1/requests/{id}/evidence/{fid}/content")))
        .bearer_auth(&officer)
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert!(again == bytes, "readable after rotation");
    let out = n.base.join("out.bin");
    n.ok(&[
        "--as",
        "officer",
        "evidence",
        "get",
        &fid,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(std::fs::read(&out).unwrap() == bytes);

    // --- A flipped byte on disk is detected on download. ---
    let mut raw = std::fs::read(&on_disk_path).unwrap();
    let at = raw.len() / 2;
    raw[at] ^= 0x40;
    std::fs::write(&on_disk_path, &raw).unwrap();
    let r = http
        .get(n.url(&format!("/api/v1/requests/{id}/evidence/{fid}/content")))
        .bearer_auth(&officer)
        .send()
        .unwrap();
    let body = r.bytes();
    assert!(
        body.as_ref().map(|b| b.len() < bytes.len()).unwrap_or(true),
        "an altered file is never delivered whole"
    );
    let o = n
        .command(&[
            "--as",
            "officer",
            "evidence",
            "get",
            &fid,
            "--out",
            n.base.join("bad.bin").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(7), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not authenticate"));
    assert!(!n.base.join("bad.bin").exists(), "nothing written from altered content");
    raw[at] ^= 0x40;
    std::fs::write(&on_disk_path, &raw).unwrap();

    // --- Custody: uploaded, then each download, by whom; the audit chain verifies. ---
    let custody = n.json(&["--as", "officer", "evidence", "custody", &fid]);
    let steps: Vec<(String, String)> = custody
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["actor"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(steps[0], ("evidence.upload".into(), "officer".into()));
    assert!(
        steps.contains(&("evidence.download".into(), "desk".into())),
        "{steps:?}"
    );
    assert!(
        steps.iter().filter(|s| s.0 == "evidence.download").count() >= 4,
        "{steps:?}"
    );
    let api_custody: Value = http
        .get(n.url(&format!("/api/v1/requests/{id}/evidence/{fid}/custody")))
        .bearer_auth(&desk)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(api_custody[0]["action"], "evidence.upload");
    n.ok(&["--as", "admin", "audit", "verify"]);
    common::kill(&mut n.child);
    let _ = std::fs::remove_dir_all(&n.base);
}

fn no_curl() -> bool {
    Command::new("curl").arg("--version").output().is_err()
}

#[test]
fn evidence_through_the_server_sqlite() {
    if no_curl() {
        eprintln!("SKIPPED: curl is not installed (the test kills it mid-upload)");
        return;
    }
    run(None, "sqlite");
}

#[test]
fn evidence_through_the_server_postgres() {
    if no_curl() {
        eprintln!("SKIPPED: curl is not installed (the test kills it mid-upload)");
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(url) = rt.block_on(liaison_service::fixtures::postgres_url()) else {
        return;
    };
    run(Some(&url), "postgres");
}
