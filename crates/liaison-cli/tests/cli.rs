#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The `liaison` command end to end: real binary, real data directory.

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn tmp() -> PathBuf {
    let d = std::env::temp_dir().join(format!("liaison-cli-test-{}", uuid_like()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

fn liaison(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("liaison").unwrap();
    c.arg("--data-dir")
        .arg(dir)
        .env_remove("LIAISON_USER")
        .env_remove("LIAISON_DATABASE_URL")
        .env("LIAISON_LOG", "error");
    c
}

fn json_out(c: &mut Command) -> Value {
    let out = c.arg("--json").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn init(dir: &Path) {
    liaison(dir)
        .args([
            "init",
            "--agency-code",
            "FBI",
            "--agency-name",
            "Federal Bureau of Investigation",
            "--jurisdiction",
            "US",
            "--time-zone",
            "America/New_York",
        ])
        .assert()
        .success();
}

#[test]
fn init_then_full_case_from_the_command_line() {
    let dir = tmp().join("node");
    init(&dir);
    assert!(dir.join("liaison.toml").exists());
    assert!(
        std::fs::read_to_string(dir.join("liaison.toml"))
            .unwrap()
            .contains("# Service levels")
    );
    // init refuses to run twice.
    liaison(&dir).args(["init"]).assert().code(3);

    // The admin adds the other side's agency, a contact, and users.
    let db = format!("sqlite://{}", dir.join("liaison.db").display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    liaison(&dir)
        .args([
            "directory",
            "add-agency",
            "CN-MPS",
            "--name",
            "Ministry of Public Security",
            "--native-name",
            "中华人民共和国公安部",
            "--jurisdiction",
            "CN",
            "--time-zone",
            "Asia/Shanghai",
        ])
        .assert()
        .success();
    liaison(&dir)
        .args([
            "directory",
            "add-agency",
            "X",
            "--name",
            "X",
            "--jurisdiction",
            "CN",
            "--time-zone",
            "Asia/Atlantis",
        ])
        .assert()
        .code(3);
    liaison(&dir)
        .args([
            "directory",
            "add-contact",
            "CN-MPS",
            "--name",
            "24/7 desk",
            "--phone",
            "+86 10 5550 0110",
            "--email",
            "desk@example.invalid",
            "--languages",
            "zh,en",
            "--time-zone",
            "Asia/Shanghai",
            "--hours",
            "24/7",
        ])
        .assert()
        .success();
    let d = json_out(liaison(&dir).args(["directory"]));
    let mps = d.as_array().unwrap().iter().find(|a| a["code"] == "CN-MPS").unwrap();
    assert_eq!(mps["contacts"][0]["open"], true);
    assert!(mps["contacts"][0]["local_time"].as_str().unwrap().ends_with("CST"));
    for (user, agency, role) in [
        ("alice", "FBI", "officer"),
        ("wang", "CN-MPS", "desk"),
        ("li", "CN-MPS", "legal_reviewer"),
        ("ann", "FBI", "auditor"),
    ] {
        liaison(&dir)
            .args(["user", "add", user, "--agency", agency, "--role", role])
            .assert()
            .success();
    }
    // Bad role: exit 3 with the accepted values.
    let out = liaison(&dir)
        .args(["user", "add", "bob", "--agency", "FBI", "--role", "boss"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("legal_reviewer"));

    let created = json_out(liaison(&dir).args([
        "--as",
        "alice",
        "request",
        "create",
        "--kind",
        "subscriber_information",
        "--to",
        "CN-MPS",
        "--case",
        "FBI-1",
        "--offence",
        "BC-02",
        "--summary",
        "Intrusion",
    ]));
    let id = created["id"].as_str().unwrap().to_string();
    // Unknown offence: exit 3 naming it.
    let out = liaison(&dir)
        .args([
            "--as",
            "alice",
            "request",
            "create",
            "--kind",
            "subscriber_information",
            "--to",
            "CN-MPS",
            "--case",
            "FBI-2",
            "--offence",
            "BC-99",
            "--summary",
            "x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("BC-99"));

    let r = json_out(liaison(&dir).args(["--as", "alice", "request", "transition", &id, "--to", "submitted"]));
    assert_eq!(r["state"], "received");
    assert!(r["assessment"]["dual_criminality"].is_array());
    // Illegal: exit 5, and the message lists what is allowed.
    let out = liaison(&dir)
        .args(["--as", "wang", "request", "transition", &id, "--to", "answered"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("acknowledged, withdrawn"));
    // Wrong side: exit 6.
    liaison(&dir)
        .args(["--as", "alice", "request", "transition", &id, "--to", "acknowledged"])
        .assert()
        .code(6);
    // Stale version: exit 5.
    liaison(&dir)
        .args([
            "--as",
            "wang",
            "request",
            "transition",
            &id,
            "--to",
            "acknowledged",
            "--version",
            "1",
        ])
        .assert()
        .code(5);
    liaison(&dir)
        .args(["--as", "wang", "request", "transition", &id, "--to", "acknowledged"])
        .assert()
        .success();
    liaison(&dir)
        .args(["--as", "li", "request", "transition", &id, "--to", "in_review"])
        .assert()
        .success();
    // Refusal needs a code: exit 3.
    liaison(&dir)
        .args([
            "--as",
            "li",
            "request",
            "transition",
            &id,
            "--to",
            "refused",
            "--reason",
            "no",
        ])
        .assert()
        .code(3);
    liaison(&dir)
        .args([
            "--as",
            "li",
            "request",
            "transition",
            &id,
            "--to",
            "refused",
            "--refusal-reason",
            "dual_criminality",
            "--reason",
            "Not an offence here",
        ])
        .assert()
        .success();
    liaison(&dir)
        .args(["--as", "wang", "request", "comment", &id, "Refusal sent by fax too"])
        .assert()
        .success();

    let shown = json_out(liaison(&dir).args(["--as", "alice", "request", "show", &id]));
    assert_eq!(shown["request"]["state"], "refused");
    assert_eq!(shown["events"].as_array().unwrap().len(), 7);
    let human = liaison(&dir)
        .args(["--as", "alice", "request", "show", &id])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains("Dual criminality"), "{text}");

    let list = json_out(liaison(&dir).args(["--as", "wang", "request", "list", "--state", "refused"]));
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let dirout = liaison(&dir).args(["--as", "alice", "directory"]).output().unwrap();
    assert!(dirout.status.success());

    // Statistics need the analyst/auditor/supervisor/admin role.
    liaison(&dir)
        .args(["--as", "alice", "report", "cooperation"])
        .assert()
        .code(6);
    let csv = liaison(&dir)
        .args([
            "--as",
            "ann",
            "report",
            "cooperation",
            "--format",
            "csv",
            "--by",
            "jurisdiction",
        ])
        .output()
        .unwrap();
    let csv = String::from_utf8_lossy(&csv.stdout);
    assert!(csv.lines().nth(1).unwrap().starts_with("US,CN,1,1,0,1,"), "{csv}");

    // Audit: intact, then tampered → exit 7.
    liaison(&dir)
        .args(["--as", "ann", "audit", "verify"])
        .assert()
        .success();
    // Tamper with entry 3 as someone with write access to the database file would.
    rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&db).await.unwrap();
        let r = sqlx::query("UPDATE audit_log SET detail = '{}' WHERE seq = 3")
            .execute(&mut conn)
            .await
            .unwrap();
        assert_eq!(r.rows_affected(), 1);
        conn.close().await.unwrap();
    });
    let out = liaison(&dir).args(["--as", "ann", "audit", "verify"]).output().unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert!(String::from_utf8_lossy(&out.stderr).contains("entry 3"));
}

#[test]
fn rules_check_reports_file_and_line() {
    let dir = tmp();
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
    for e in std::fs::read_dir(&shipped).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, rules.join(p.file_name().unwrap())).unwrap();
    }
    liaison(&dir)
        .args(["rules", "check", "--dir"])
        .arg(&rules)
        .assert()
        .success();
    // Break one pack: an offence code the taxonomy does not know.
    let us = rules.join("us.toml");
    let text = std::fs::read_to_string(&us).unwrap();
    let broken = text.replacen("\"BC-02\"", "\"BC-42\"", 1);
    assert_ne!(text, broken, "fixture: us.toml should mention BC-02");
    std::fs::write(&us, broken).unwrap();
    let out = liaison(&dir)
        .args(["rules", "check", "--dir"])
        .arg(&rules)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("us.toml:") && stdout.contains("BC-42"), "{stdout}");
}

#[test]
fn assess_what_if_from_flags() {
    let dir = tmp().join("node");
    init(&dir);
    let a = json_out(liaison(&dir).args([
        "assess",
        "--from",
        "CN",
        "--to",
        "US",
        "--offence",
        "OBSCENE-DISSEMINATION",
        "--conduct",
        "for_profit",
    ]));
    assert_eq!(a["dual_criminality"][0]["verdict"], "not_satisfied", "{a}");
    liaison(&dir)
        .args(["assess", "--from", "CN", "--to", "XX", "--offence", "BC-02"])
        .assert()
        .code(3);
}

#[test]
fn demo_builds_the_unanswered_letters_pattern() {
    let dir = tmp();
    let out = liaison(&dir)
        .args(["demo", "--no-serve", "--requests", "120", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["requests"], 120);
    let pairs = v["report"]["pairs"].as_array().unwrap();
    let rate = |a: &str, b: &str| {
        pairs
            .iter()
            .find(|p| p["requesting"] == a && p["requested"] == b)
            .and_then(|p| p["answer_rate"].as_f64())
    };
    let cn_us = rate("CN", "US").expect("CN→US pair present");
    let gb_us = rate("GB", "US").or(rate("US", "GB")).expect("GB/US pair present");
    assert!(cn_us < 40.0 && gb_us > 60.0, "CN→US {cn_us}% vs GB/US {gb_us}%");
}

#[test]
fn serve_refuses_to_start_on_a_broken_rule_pack() {
    let dir = tmp().join("node");
    init(&dir);
    let cn = dir.join("rules").join("cn.toml");
    let text = std::fs::read_to_string(&cn).unwrap();
    // Remove every citation: a rule without its source is invalid.
    let broken: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("citation"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(broken.len(), text.len(), "fixture: cn.toml should have citation lines");
    std::fs::write(&cn, broken).unwrap();
    let out = liaison(&dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("half-loaded law") && err.contains("cn.toml:"), "{err}");
}
