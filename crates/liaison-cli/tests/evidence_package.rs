#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
//! The evidence package (docs/evidence.md, "Evidence package", issue #13 part 4) through the
//! real binary: two federated nodes in their own processes exchange a request (so the ledger
//! holds envelopes and signed receipts), files are added, `liaison evidence export` writes the
//! package, and `liaison evidence verify --trust FP` checks it offline in a directory with no
//! node; then every kind of tampering is detected and named: any byte changed, an entry
//! added, removed, renamed or reordered, the signature changed, the package re-signed by
//! another key. The custody log records the export with the package's digest, a RED comment
//! stays out of the package of a reader it does not admit, and the CASE document passes
//! `case_validate` (tests/case/validate.sh). On SQLite and PostgreSQL.

use liaison_service::evidence_package::{
    FORMAT, Manifest, ManifestSignature, SIGNING_CONTEXT, central_header, end_records, local_header,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

mod common;

use common::BIN;
use common::fed::FedNode as TestNode;
use common::serial;

fn wait(timeout: Duration, f: impl FnMut() -> bool) {
    assert!(
        common::poll_until(timeout, Duration::from_millis(50), f),
        "condition not met within {timeout:?}"
    );
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Bytes that do not compress, larger than one sealed chunk.
fn content(len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// The public key in a peer file (the node's descriptor), as a fingerprint: obtained without
/// the package, as a receiver would out of band.
fn key_fingerprint(peer_file: &Path) -> String {
    fn find(v: &Value) -> Option<String> {
        match v {
            Value::Object(m) => m
                .get("public_key")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| m.values().find_map(find)),
            Value::Array(a) => a.iter().find_map(find),
            _ => None,
        }
    }
    let v: Value = serde_json::from_str(&std::fs::read_to_string(peer_file).unwrap()).unwrap();
    let pk = find(&v).expect("a public key in the descriptor");
    sha(&hex::decode(pk).unwrap())
}

/// `liaison evidence verify` in a directory without any node: (exit code, JSON report).
fn verify(dir: &Path, package: &Path, trust: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["--json", "evidence", "verify", package.to_str().unwrap()];
    for t in trust {
        args.extend(["--trust", t]);
    }
    let o = Command::new(BIN)
        .args(&args)
        .current_dir(dir)
        .env("LIAISON_DATA_DIR", dir.join("no-node-here"))
        .env_remove("LIAISON_DATABASE_URL")
        .output()
        .unwrap();
    let report = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "verify printed no report ({e}): {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (o.status.code(), report)
}

/// The entries of a canonical package: (name, content).
fn entries(zip: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while zip[i..i + 4] == 0x0403_4b50u32.to_le_bytes() {
        let name_len = u16::from_le_bytes([zip[i + 26], zip[i + 27]]) as usize;
        let name = String::from_utf8(zip[i + 30..i + 30 + name_len].to_vec()).unwrap();
        let extra = i + 30 + name_len;
        let size = u64::from_le_bytes(zip[extra + 4..extra + 12].try_into().unwrap()) as usize;
        let data = extra + 20;
        out.push((name, zip[data..data + size].to_vec()));
        i = data + size;
    }
    out
}

/// A canonical package of these entries (what a careful forger would write).
fn rebuild(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let crc = crc(data);
        central.extend(central_header(name, crc, data.len() as u64, out.len() as u64));
        out.extend(local_header(name, crc, data.len() as u64));
        out.extend_from_slice(data);
    }
    let cd = out.len() as u64;
    out.extend_from_slice(&central);
    out.extend(end_records(entries.len() as u64, cd, central.len() as u64));
    out
}

fn crc(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
        }
    }
    !c
}

fn problems(report: &Value) -> String {
    report["problems"].to_string()
}

/// Writes `bytes` as a package and checks that it fails verification (exit 7) with a
/// problem whose text contains every one of `expect`.
fn assert_detected(dir: &Path, what: &str, bytes: &[u8], trust: &[&str], expect: &[&str]) {
    let path = dir.join(format!("tampered-{}.zip", what.replace(' ', "-")));
    std::fs::write(&path, bytes).unwrap();
    let (code, report) = verify(dir, &path, trust);
    assert_eq!(code, Some(7), "{what}: not detected: {report}");
    assert_eq!(report["valid"], false, "{what}");
    let p = problems(&report);
    for e in expect {
        assert!(p.contains(e), "{what}: the problems do not name '{e}': {p}");
    }
    std::fs::remove_file(&path).unwrap();
}

fn scenario(name: &str, db_us: Option<&str>, db_cn: Option<&str>) {
    let base = common::unique_dir(&format!("liaison-package-test-{name}"));
    let mut us = TestNode::new_with(&base, "us-fbi", "FBI", "US", "America/New_York", db_us);
    let mut cn = TestNode::new_with(&base, "cn-mps", "CN-MPS", "CN", "Asia/Shanghai", db_cn);
    let (pu, fu) = us.peer_file();
    let (pc, fc) = cn.peer_file();
    us.ok(&["peer", "add", pc.to_str().unwrap(), "--fingerprint", &fc]);
    cn.ok(&["peer", "add", pu.to_str().unwrap(), "--fingerprint", &fu]);
    us.agency("US-SS", "US", "America/New_York");
    us.user("third", "US-SS", "officer");
    let fp_us = key_fingerprint(&pu);
    let fp_cn = key_fingerprint(&pc);
    // The page's button is tried with a token sign-in (no second factor on this test node).
    let config = us.dir.join("liaison.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[sign_in]\ntoken_sign_in = true\n");
    std::fs::write(&config, text).unwrap();
    us.start();
    cn.start();

    // A request that travels, a RED comment for CN-MPS's legal reviewer, two files.
    let v = us.json(&common::officer_request_args("FBI-PKG-1"));
    let id = v["request"]["id"].as_str().or(v["id"].as_str()).unwrap().to_string();
    us.transition("officer", &id, "submitted");
    cn.wait_state(&id, "received");
    us.wait_state(&id, "received");
    us.ok(&[
        "--as",
        "officer",
        "request",
        "comment",
        &id,
        "SECRET-RED-COMMENT",
        "--tlp",
        "RED",
        "--recipient",
        "legal",
    ]);
    wait(Duration::from_secs(30), || {
        cn.as_json("legal", &["request", "show", &id])
            .to_string()
            .contains("SECRET-RED-COMMENT")
    });
    let big = content((1 << 20) + 12_345);
    let big_path = base.join("disk image.bin");
    std::fs::write(&big_path, &big).unwrap();
    let notes = base.join("notes.txt");
    std::fs::write(&notes, b"subscriber: example\n").unwrap();
    let f1 = us.as_json("officer", &["evidence", "add", &id, big_path.to_str().unwrap()]);
    us.as_json("officer", &["evidence", "add", &id, notes.to_str().unwrap()]);
    wait(Duration::from_secs(30), || us.pending() == 0 && cn.pending() == 0);

    // --- Export, then verify offline with the fingerprint obtained out of band. ---
    let pkg = base.join("case.zip");
    let out = us.as_json("officer", &["evidence", "export", &id, "--out", pkg.to_str().unwrap()]);
    let bytes = std::fs::read(&pkg).unwrap();
    assert_eq!(out["sha256"], sha(&bytes).as_str());
    assert_eq!(
        out["fingerprint"],
        fp_us.as_str(),
        "the package is signed by the node's key"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&pkg).unwrap().permissions().mode() & 0o777, 0o600);
    let grouped: Vec<String> = fp_us
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into())
        .collect();
    let (code, report) = verify(&base, &pkg, &[&grouped.join(" "), &fp_cn]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["valid"], true);
    assert_eq!(report["files"], 2);
    assert_eq!(report["request_id"], id.as_str());
    assert!(
        report["proofs"].as_u64().unwrap() >= 2,
        "sent + receipt leaves at least: {report}"
    );
    assert!(report["receipts"].as_u64().unwrap() >= 1, "{report}");
    assert!(report["custody_entries"].as_u64().unwrap() >= 2, "{report}");
    assert!(
        report["keys_used"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["node_id"] == "cn-mps" && k["trusted"] == true),
        "the receipts are cn-mps's, checked against its trusted key: {report}"
    );
    // Trusting only the exporting node: the peer's receipt keys are reported, not refused.
    let (code, report) = verify(&base, &pkg, &[&fp_us]);
    assert_eq!(code, Some(0), "{report}");
    assert!(report["warnings"].to_string().contains("cn-mps"), "{report}");
    // The human-readable exit, and the cover page printing the fingerprint.
    let o = Command::new(BIN)
        .args(["evidence", "verify", pkg.to_str().unwrap(), "--trust", &fp_us])
        .current_dir(&base)
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("VALID"));
    let all = entries(&bytes);
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "cover.txt",
            "request.json",
            "history.json",
            "files.json",
            "custody.json",
            "ledger.json",
            "case.jsonld",
            "files/0001-disk_image.bin",
            "files/0002-notes.txt",
            "manifest.json",
            "manifest.sig"
        ]
    );
    assert_eq!(all[7].1, big, "the evidence file as uploaded (decrypted)");
    let cover = String::from_utf8(all[0].1.clone()).unwrap();
    assert!(cover.contains(&grouped.join(" ")), "{cover}");
    // The officer wrote the RED comment: it is in their package.
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("SECRET-RED-COMMENT"));
    // Exporting is a custody step carrying the package's digest.
    // (The file's transfer to the peer node adds its own steps meanwhile: offer, sent, …)
    let custody = us.as_json("officer", &["evidence", "custody", f1["id"].as_str().unwrap()]);
    let exports: Vec<&Value> = custody
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "evidence.export")
        .collect();
    assert_eq!(exports.len(), 1, "{custody}");
    assert!(
        exports[0]["detail"].as_str().unwrap().contains(&sha(&bytes)),
        "{custody}"
    );
    // An existing file is not replaced.
    let e = us.fails_as("officer", &["evidence", "export", &id, "--out", pkg.to_str().unwrap()]);
    assert!(e.contains("exists"), "{e}");

    // --- The API route and the web UI's button: the same package, as an attachment. ---
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let api = us.api();
    let token = us.token("officer");
    let r = http
        .get(format!("{api}/api/v1/requests/{id}/evidence-package"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "application/zip");
    assert!(
        h["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"evidence-package-")
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["x-liaison-key-fingerprint"], fp_us.as_str());
    let body = r.bytes().unwrap().to_vec();
    assert_eq!(h["x-liaison-package-sha256"], sha(&body).as_str());
    assert_eq!(h["content-length"], body.len().to_string().as_str());
    let api_pkg = base.join("api.zip");
    std::fs::write(&api_pkg, &body).unwrap();
    assert_eq!(verify(&base, &api_pkg, &[&fp_us]).0, Some(0));
    let r = http
        .get(format!("{api}/api/v1/requests/{id}/evidence-package"))
        .bearer_auth(us.token("third"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 404, "a user of an agency that is no party to the request");
    // The button on the request page (a form with the CSRF token).
    let r = http
        .post(format!("{api}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .unwrap();
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = http
        .get(format!("{api}/requests/{id}"))
        .header("cookie", &cookie)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(html.contains("id=\"evidence-package\""), "{html}");
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).unwrap() + marker.len();
    let csrf = &html[start..start + html[start..].find('"').unwrap()];
    let r = http
        .post(format!("{api}/requests/{id}/evidence-package"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/zip");
    let ui_pkg = base.join("ui.zip");
    std::fs::write(&ui_pkg, r.bytes().unwrap()).unwrap();
    assert_eq!(verify(&base, &ui_pkg, &[&fp_us]).0, Some(0));
    let r = http
        .post(format!("{api}/requests/{id}/evidence-package"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("csrf=wrong")
        .send()
        .unwrap();
    assert_eq!(r.status(), 403, "the button needs the page's CSRF token");

    // --- Markings: at cn-mps the RED comment is for the legal reviewer only: the desk's
    // package holds neither the comment nor the message that carried it. ---
    let desk_pkg = base.join("desk.zip");
    cn.as_json(
        "desk",
        &["evidence", "export", &id, "--out", desk_pkg.to_str().unwrap()],
    );
    let desk_bytes = std::fs::read(&desk_pkg).unwrap();
    assert!(
        !cn.as_json("desk", &["request", "show", &id])
            .to_string()
            .contains("SECRET-RED-COMMENT")
    );
    assert!(!String::from_utf8_lossy(&desk_bytes).contains("SECRET-RED-COMMENT"));
    let legal_pkg = base.join("legal.zip");
    cn.as_json(
        "legal",
        &["evidence", "export", &id, "--out", legal_pkg.to_str().unwrap()],
    );
    let legal_bytes = std::fs::read(&legal_pkg).unwrap();
    assert!(String::from_utf8_lossy(&legal_bytes).contains("SECRET-RED-COMMENT"));
    let (code, desk_report) = verify(&base, &desk_pkg, &[&fp_cn, &fp_us]);
    assert_eq!(code, Some(0), "{desk_report}");
    let (code, legal_report) = verify(&base, &legal_pkg, &[&fp_cn, &fp_us]);
    assert_eq!(code, Some(0), "{legal_report}");
    assert!(
        legal_report["proofs"].as_u64() > desk_report["proofs"].as_u64(),
        "the comment's envelope is proven to the legal reviewer only: {legal_report} {desk_report}"
    );
    // The package of one node is not trusted on the other's key alone.
    assert_eq!(verify(&base, &desk_pkg, &[&fp_us]).0, Some(7));

    // --- Any byte changed: at every entry's header, name and content, the central
    // directory and the end records, and spread over the whole file. ---
    let mut positions: Vec<usize> = (0..40).map(|k| k * bytes.len() / 40).collect();
    positions.extend([bytes.len() - 1, bytes.len() - 22, bytes.len() - 60]);
    let mut at = 0;
    for (n, data) in &all {
        positions.extend([at, at + 14, at + 30, at + 30 + n.len() + 10, at + 30 + n.len() + 20]);
        if !data.is_empty() {
            positions.push(at + 30 + n.len() + 20 + data.len() - 1);
        }
        at += 30 + n.len() + 20 + data.len();
    }
    positions.extend([at, at + 20, at + 50]);
    positions.sort_unstable();
    positions.dedup();
    for p in positions {
        let mut t = bytes.clone();
        t[p] ^= 0x01;
        assert_detected(&base, &format!("byte {p}"), &t, &[&fp_us], &[]);
    }
    // A byte of an evidence file changed, the archive rebuilt canonically (CRC fixed up): the
    // manifest names the entry and both digests.
    let mut t = all.clone();
    t[7].1[100] ^= 0x80;
    let got = sha(&t[7].1);
    assert_detected(
        &base,
        "file content",
        &rebuild(&t),
        &[&fp_us],
        &["files/0001-disk_image.bin", "sha256", &got],
    );
    // The same for a JSON entry (the custody log).
    let mut t = all.clone();
    let c = String::from_utf8(t[4].1.clone())
        .unwrap()
        .replacen("evidence.upload", "evidence.uploaD", 1);
    t[4].1 = c.into_bytes();
    assert_detected(&base, "custody", &rebuild(&t), &[&fp_us], &["custody.json", "sha256"]);
    // Truncated, and bytes appended.
    assert_detected(
        &base,
        "truncated",
        &bytes[..bytes.len() - 1],
        &[&fp_us],
        &["end of central directory"],
    );
    let mut t = bytes.clone();
    t.extend_from_slice(b"x");
    assert_detected(&base, "appended", &t, &[&fp_us], &["end of input"]);

    // --- Entries added, removed, renamed, reordered. ---
    let mut t = all.clone();
    t.insert(9, ("files/0003-extra.txt".into(), b"planted".to_vec()));
    assert_detected(
        &base,
        "added",
        &rebuild(&t),
        &[&fp_us],
        &["files/0003-extra.txt", "presence"],
    );
    let mut t = all.clone();
    t.remove(8);
    assert_detected(
        &base,
        "removed",
        &rebuild(&t),
        &[&fp_us],
        &["files/0002-notes.txt", "presence"],
    );
    let mut t = all.clone();
    t[8].0 = "files/0002-other.txt".into();
    assert_detected(
        &base,
        "renamed",
        &rebuild(&t),
        &[&fp_us],
        &["files/0002-notes.txt", "files/0002-other.txt"],
    );
    let mut t = all.clone();
    t.swap(7, 8);
    assert_detected(&base, "reordered files", &rebuild(&t), &[&fp_us], &["name"]);
    let mut t = all.clone();
    t.swap(1, 2);
    assert_detected(&base, "reordered head", &rebuild(&t), &[&fp_us], &["request.json"]);
    let mut t = all.clone();
    t[8].0 = "../../etc/passwd".into();
    assert_detected(&base, "traversal", &rebuild(&t), &[&fp_us], &["name"]);

    // --- The signature changed. ---
    let mut sig: ManifestSignature = serde_json::from_slice(&all[10].1).unwrap();
    let mut s = hex::decode(&sig.signature).unwrap();
    s[5] ^= 0x01;
    sig.signature = hex::encode(s);
    let mut t = all.clone();
    t[10].1 = liaison_wire::to_canonical(&sig).unwrap();
    assert_detected(
        &base,
        "signature",
        &rebuild(&t),
        &[&fp_us],
        &["manifest.sig", "signature"],
    );

    // --- Re-signed by another key (a forger's, or another node's): untrusted. ---
    let forger = liaison_wire::NodeKey::generate().unwrap();
    let mut t = all.clone();
    t[7].1[0] ^= 0x01; // what the forger wanted to change
    let mut manifest: Manifest = serde_json::from_slice(&t[9].1).unwrap();
    manifest.entries[7].sha256 = sha(&t[7].1);
    manifest.signing_key.key_id = forger.key_id().to_string();
    manifest.signing_key.public_key = forger.public_key().to_hex();
    manifest.signing_key.fingerprint = sha(&forger.public_key().0);
    let mbytes = liaison_wire::to_canonical(&manifest).unwrap();
    let mut msg = SIGNING_CONTEXT.to_vec();
    msg.extend_from_slice(&mbytes);
    let forged = ManifestSignature {
        format: FORMAT.into(),
        key_id: forger.key_id().to_string(),
        public_key: forger.public_key().to_hex(),
        signature: forger.sign_bytes(&msg).to_hex(),
    };
    t[9].1 = mbytes;
    t[10].1 = liaison_wire::to_canonical(&forged).unwrap();
    let forged_pkg = rebuild(&t);
    assert_detected(
        &base,
        "re-signed",
        &forged_pkg,
        &[&fp_us],
        &["manifest.sig", "signer", &sha(&forger.public_key().0)],
    );
    // Even trusting the forger's key, the ledger's tree head is not theirs: still refused.
    assert_detected(
        &base,
        "re-signed trusted",
        &forged_pkg,
        &[&sha(&forger.public_key().0)],
        &["ledger.json", "us-fbi"],
    );
    // A fingerprint that is not one is refused as input (exit 3).
    let o = Command::new(BIN)
        .args(["evidence", "verify", pkg.to_str().unwrap(), "--trust", "abcd"])
        .current_dir(&base)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));

    // --- The CASE document validates (case-utils' case_validate; skipped loudly offline). ---
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/case/validate.sh");
    let o = Command::new("bash").arg(&script).arg(&pkg).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    if text.contains("SKIPPED") {
        eprintln!("{text}");
    }
    assert!(o.status.success(), "case_validate failed:\n{text}");
    assert!(text.contains("Conforms: True") || text.contains("SKIPPED"), "{text}");
    us.kill();
    cn.kill();
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn evidence_package_exported_verified_offline_and_tampering_named() {
    let _serial = serial();
    scenario("sqlite", None, None);
}

#[test]
fn evidence_package_on_postgresql() {
    let _serial = serial();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (Some(a), Some(b)) = (
        rt.block_on(liaison_service::fixtures::postgres_url()),
        rt.block_on(liaison_service::fixtures::postgres_url()),
    ) else {
        return;
    };
    scenario("postgres", Some(&a), Some(&b));
}
