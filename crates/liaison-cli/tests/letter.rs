#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The formal letter end to end (docs/letter.md): the real `liaison` binary on a real node
//! produces the bilingual PDF; `pdftotext` finds both languages, the reference and the node's
//! key fingerprint in it; a request missing particulars or a translation is refused listing
//! them (exit 3; `--draft` prints a watermarked draft); the API route answers the PDF as an
//! attachment, and 422 with the list. The PDF's SHA-256 is in the audit log.
//!
//! Skipped, loudly, when pdftotext (poppler-utils) or the CJK font (fonts-wqy-zenhei) is absent
//! and `LIAISON_REQUIRE_BROWSER` is not set (CI sets it and installs both).

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

mod common;

use common::liaison;

const FONT: &str = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc";

fn tools_present() -> bool {
    let pdftotext = Command::new("pdftotext").arg("-v").output().is_ok();
    let font = Path::new(FONT).is_file();
    if pdftotext && font {
        return true;
    }
    let why = format!(
        "needs pdftotext (apt-get install poppler-utils: {pdftotext}) and {FONT} (apt-get install fonts-wqy-zenhei: {font})"
    );
    assert!(
        std::env::var_os("LIAISON_REQUIRE_BROWSER").is_none(),
        "LIAISON_REQUIRE_BROWSER is set but the letter test {why}"
    );
    eprintln!("SKIPPED: the letter test {why}");
    false
}

fn run(dir: &Path, args: &[&str]) -> Output {
    liaison(dir).args(args).output().unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let o = run(dir, args);
    common::ok_stdout(&o, args.join(" "))
}

fn pdf_text(path: &Path) -> String {
    let o = Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(path)
        .arg("-")
        .output()
        .unwrap();
    assert!(o.status.success(), "pdftotext: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn sha256_file(path: &Path) -> String {
    let o = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(o.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// A node of the FBI with CN-MPS in its directory, an officer, and a submitted request to
/// CN-MPS naming a target and its provider. Returns the request id.
fn node_with_request(dir: &Path) -> String {
    ok(
        dir,
        &["init"]
            .iter()
            .chain(common::FBI_AGENCY.iter())
            .copied()
            .collect::<Vec<_>>(),
    );
    ok(
        dir,
        &common::ADD_CN_MPS
            .iter()
            .copied()
            .chain(["--native-name", "中华人民共和国公安部"])
            .collect::<Vec<_>>(),
    );
    ok(
        dir,
        &[
            "user", "add", "officer", "--agency", "FBI", "--role", "officer", "--name", "Jane Doe",
        ],
    );
    let directory: Value = serde_json::from_str(&ok(dir, &["--json", "directory"])).unwrap();
    let id_of = |code: &str| -> String {
        directory
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.get("agency").unwrap_or(a))
            .find(|a| a["code"] == code)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let draft = json!({
        "kind": "subscriber_information",
        "urgency": "urgent",
        "requesting_agency": id_of("FBI"),
        "requested_agency": id_of("CN-MPS"),
        "case_reference": "FBI-2026-0042",
        "offences": ["BC-02"],
        "summary": "A ransomware group used a rented server in Shanghai as its command server.",
        "legal_basis": "18 U.S.C. 1030; 18 U.S.C. 3512",
        "targets": [{
            "value": {"type": "ip", "address": "203.0.113.7", "port": 443, "observed_at": "2026-11-02T10:00:00Z"},
            "from": "2026-10-01T00:00:00Z",
            "until": "2026-11-30T00:00:00Z",
            "provider": {"name": "Example Cloud Co.", "established_in": "CN"}
        }]
    });
    let file = dir.with_extension("draft.json");
    std::fs::write(&file, draft.to_string()).unwrap();
    let r: Value = serde_json::from_str(&ok(
        dir,
        &[
            "--json",
            "--as",
            "officer",
            "request",
            "create",
            "--file",
            file.to_str().unwrap(),
        ],
    ))
    .unwrap();
    let id = r["id"].as_str().unwrap().to_string();
    ok(
        dir,
        &["--as", "officer", "request", "transition", &id, "--to", "submitted"],
    );
    id
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

fn serve(dir: &Path) -> Served {
    let mut child = liaison(dir)
        .env("LIAISON_LOG", "info")
        .env("NO_COLOR", "1")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
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

#[test]
fn bilingual_letter_through_the_cli_and_the_api() {
    if !tools_present() {
        return;
    }
    let base = common::unique_dir("liaison-letter");
    let dir = base.join("node");
    let id = node_with_request(&dir);
    let out: PathBuf = base.join("letter.pdf");
    let out_s = out.to_str().unwrap();

    // Refused while particulars are missing: each is named, with how to supply it.
    let o = run(
        &dir,
        &[
            "--as", "officer", "request", "letter", &id, "--lang", "en,zh-CN", "--out", out_s,
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    for want in [
        "particulars.summary_of_facts[zh-CN]",
        "particulars.purpose[en]",
        "particulars.purpose[zh-CN]",
        "liaison request translate",
    ] {
        assert!(err.contains(want), "'{want}' not in:\n{err}");
    }
    assert!(!out.exists(), "no letter is written while particulars are missing");
    // The same as JSON: the list in `errors`.
    let o = run(
        &dir,
        &["--json", "--as", "officer", "request", "letter", &id, "--out", out_s],
    );
    assert_eq!(o.status.code(), Some(3));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["error"]["errors"].as_array().unwrap().len(), 3, "{v}");

    // A draft prints anyway, watermarked, listing what is missing.
    let draft = base.join("draft.pdf");
    ok(
        &dir,
        &[
            "--as",
            "officer",
            "request",
            "letter",
            &id,
            "--draft",
            "--out",
            draft.to_str().unwrap(),
        ],
    );
    let text = pdf_text(&draft);
    assert!(text.contains("DRAFT") && text.contains("草稿"), "{text}");
    assert!(text.contains("particulars.purpose[zh-CN]"), "{text}");

    // Translations; then the letter.
    ok(
        &dir,
        &[
            "--as",
            "officer",
            "request",
            "translate",
            &id,
            "--lang",
            "zh-CN",
            "--field",
            "summary",
            "--text",
            "一个勒索软件团伙使用上海的一台租用服务器作为其命令服务器。",
        ],
    );
    let purpose = base.join("purpose.txt");
    std::fs::write(
        &purpose,
        "To identify the person who rented the server, for prosecution.",
    )
    .unwrap();
    ok(
        &dir,
        &[
            "--as",
            "officer",
            "request",
            "translate",
            &id,
            "--lang",
            "en",
            "--field",
            "purpose",
            "--file",
            purpose.to_str().unwrap(),
        ],
    );
    ok(
        &dir,
        &[
            "--as",
            "officer",
            "request",
            "translate",
            &id,
            "--lang",
            "zh-CN",
            "--field",
            "purpose",
            "--text",
            "查明租用该服务器的人员，以便提起诉讼。",
        ],
    );
    let printed: Value = serde_json::from_str(&ok(
        &dir,
        &[
            "--json",
            "--as",
            "officer",
            "request",
            "letter",
            &id,
            "--lang",
            "en,zh-CN",
            "--out",
            out_s,
            "--signer",
            "Jane Doe",
            "--function",
            "Special Agent",
            "--place",
            "Washington, DC",
        ],
    ))
    .unwrap();
    let year = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).year();
    let reference = format!("FBI/{year}/0001");
    assert_eq!(printed["reference"], reference.as_str());
    assert_eq!(printed["sha256"], sha256_file(&out).as_str());

    let text = pdf_text(&out);
    let flat: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    for want in [
        "Request for mutual legal assistance in criminal matters",
        "Ministry of Public Security",
        "Purpose for which it is sought",
        "Jane Doe",
        "TLP:AMBER+STRICT",
        "FBI-2026-0042",
        "203.0.113.7",
    ] {
        assert!(text.contains(want), "English '{want}' not in the letter:\n{text}");
    }
    for want in [
        "刑事司法协助请求书",
        "中华人民共和国公安部",
        "请求目的",
        "查明租用该服务器的人员",
        "签名",
        "非法侵入计算机系统",
    ] {
        assert!(flat.contains(want), "Chinese '{want}' not in the letter:\n{text}");
    }
    assert!(text.contains(&reference), "reference {reference} not in:\n{text}");
    assert!(!text.contains("DRAFT"), "a complete letter is not a draft");

    // The node's key fingerprint, to verify evidence packages out of band.
    let db = dir.join("liaison.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (key_id, audit): (String, Vec<String>) = rt.block_on(async {
        use sqlx::Row;
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let key: String = sqlx::query("SELECT key_id FROM own_keys")
            .fetch_one(&pool)
            .await
            .unwrap()
            .get(0);
        let audit: Vec<String> =
            sqlx::query("SELECT detail FROM audit_log WHERE action = 'letter.produced' ORDER BY seq")
                .fetch_all(&pool)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.get(0))
                .collect();
        (key, audit)
    });
    assert!(text.contains(&key_id), "key {key_id} not in:\n{text}");
    assert!(text.contains("SHA-256"), "{text}");
    // Every produced PDF (the draft too) is in the audit log with its hash.
    assert_eq!(audit.len(), 2, "{audit:?}");
    let last: Value = serde_json::from_str(&audit[1]).unwrap();
    assert_eq!(last["sha256"], sha256_file(&out).as_str());
    assert_eq!(last["reference"], reference.as_str());
    assert_eq!(last["languages"], json!(["en", "zh-CN"]));
    ok(&dir, &["audit", "verify"]);

    // A picture of page 1 for docs/ (pdftoppm), when asked: LIAISON_LETTER_PNG=path.
    if let Some(png) = std::env::var_os("LIAISON_LETTER_PNG") {
        let stem = PathBuf::from(png);
        let o = Command::new("pdftoppm")
            .args(["-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile"])
            .arg(&out)
            .arg(stem.with_extension(""))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }

    // No font: a clear error naming the package, not an empty letter.
    let o = liaison(&dir)
        .env("LIAISON_LETTER_FONT", "/nonexistent/font.ttc")
        .args([
            "--as",
            "officer",
            "request",
            "letter",
            &id,
            "--out",
            base.join("x.pdf").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("fonts-wqy-zenhei") && err.contains("/nonexistent/font.ttc"),
        "{err}"
    );

    // The API: the PDF as an attachment, and 422 with the list for a request that lacks them.
    let token: Value = serde_json::from_str(&ok(&dir, &["--json", "token", "create", "officer"])).unwrap();
    let token = token["token"].as_str().unwrap().to_string();
    let served = serve(&dir);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::blocking::Client::new();
    let r = http
        .get(format!(
            "http://{}/api/v1/requests/{id}/letter?lang=zh-CN,en",
            served.addr
        ))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "application/pdf");
    let disposition = h["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment;") && disposition.contains(&format!("letter-FBI-{year}-0001.pdf")),
        "{disposition}"
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-liaison-letter-reference"].to_str().unwrap(), reference);
    let body = r.bytes().unwrap();
    let api_pdf = base.join("api.pdf");
    std::fs::write(&api_pdf, &body).unwrap();
    assert_eq!(h["x-liaison-letter-sha256"].to_str().unwrap(), sha256_file(&api_pdf));
    let text = pdf_text(&api_pdf);
    let zh = text.find("刑事司法协助请求书").unwrap();
    let en = text.find("Request for mutual legal assistance").unwrap();
    assert!(zh < en, "lang=zh-CN,en prints Chinese first:\n{text}");

    // Another request without translations: 422 listing them.
    let second = node_second_request(&dir);
    let r = http
        .get(format!("http://{}/api/v1/requests/{second}/letter", served.addr))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let v: Value = r.json().unwrap();
    let fields: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"particulars.purpose[en]") && fields.contains(&"particulars.targets"),
        "{v}"
    );
    // A text set through the API counts.
    let r = http
        .put(format!(
            "http://{}/api/v1/requests/{second}/texts/purpose/en",
            served.addr
        ))
        .bearer_auth(&token)
        .json(&json!({"text": "To identify the renter."}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let r = http
        .get(format!(
            "http://{}/api/v1/requests/{second}/letter?lang=en",
            served.addr
        ))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let v: Value = r.json().unwrap();
    let mut fields: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        ["particulars.legal_basis", "particulars.period", "particulars.targets"],
        "{v}"
    );
    // A draft is always available.
    let r = http
        .get(format!(
            "http://{}/api/v1/requests/{second}/letter?lang=en&draft=true",
            served.addr
        ))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap_or_default());
    assert_eq!(
        r.headers()["x-liaison-letter-reference"].to_str().unwrap(),
        format!("FBI/{year}/0002")
    );
    drop(served);
    let _ = std::fs::remove_dir_all(&base);
}

/// A second submitted request (created from flags: no target, so the MLAA's target and period
/// particulars are missing too).
fn node_second_request(dir: &Path) -> String {
    let mut args = vec!["--json"];
    args.extend(common::officer_request_args("FBI-2026-0043"));
    let r: Value = serde_json::from_str(&ok(dir, &args)).unwrap();
    let id = r["id"].as_str().unwrap().to_string();
    ok(
        dir,
        &["--as", "officer", "request", "transition", &id, "--to", "submitted"],
    );
    id
}
