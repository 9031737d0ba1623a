#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The `liaison` command end to end: real binary, real data directory.

use assert_cmd::Command;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

mod common;

fn tmp() -> PathBuf {
    common::unique_dir("liaison-cli-test")
}

fn liaison(dir: &Path) -> Command {
    Command::from_std(common::liaison(dir))
}

fn json_out(c: &mut Command) -> Value {
    let out = c.arg("--json").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn init(dir: &Path) {
    liaison(dir).arg("init").args(common::FBI_AGENCY).assert().success();
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

    let created = json_out(liaison(&dir).args(common::create_request_args("alice", "FBI-1", "Intrusion")));
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

/// Splits one shell command line as the README writes it: words, "double-quoted" words, and
/// a trailing `# comment` dropped.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut any) = (false, false);
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            '#' if !quoted && cur.is_empty() => break,
            c if c.is_whitespace() && !quoted => {
                if any {
                    words.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(cur);
    }
    words
}

/// The README's "Running a node" commands, run as written on a fresh data directory (the
/// server and the rules check aside): a newcomer's first session works, including creating a
/// request to CN-MPS and submitting it.
#[test]
fn readme_commands_work_on_a_fresh_node() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap();
    let section = readme.split("## Running a node").nth(1).unwrap();
    let block = section.split("```sh").nth(1).unwrap().split("```").next().unwrap();
    let joined = block.replace("\\\n", " ");
    let dir = tmp().join("srv");
    let mut id = String::new();
    let mut ran = 0;
    for line in joined.lines().filter(|l| l.starts_with("liaison ")) {
        let words: Vec<String> = shell_words(line)
            .into_iter()
            .skip(1)
            .map(|w| w.replace("/srv/liaison", dir.to_str().unwrap()).replace("<ID>", &id))
            .collect();
        if words.iter().any(|w| w == "serve") || words.first().is_some_and(|w| w == "rules") {
            continue;
        }
        let mut c = Command::cargo_bin("liaison").unwrap();
        c.env_remove("LIAISON_USER")
            .env_remove("LIAISON_DATABASE_URL")
            .env("LIAISON_LOG", "error");
        let is_create = words.windows(2).any(|w| w[0] == "request" && w[1] == "create");
        if is_create {
            c.arg("--json");
        }
        let out = c.args(&words).output().unwrap();
        assert!(
            out.status.success(),
            "README command failed: {line}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if is_create {
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            id = v["id"].as_str().unwrap().to_string();
        }
        ran += 1;
    }
    assert!(ran >= 10, "only {ran} README commands found");
    assert!(!id.is_empty(), "the README creates a request");
    // CN-MPS is served by this node too, so the submitted request was received at once.
    let v = json_out(liaison(&dir).args(["--as", "alice", "request", "show", &id]));
    let state = v["request"]["state"].as_str().or(v["state"].as_str());
    assert_eq!(state, Some("received"), "{v}");
}

/// The newcomer's paper cuts: a date alone for --preserved-until (the end of that day in the
/// requested agency's zone), `--json` failures as JSON, exit 4 for an unknown user and a
/// missing file, unknown values with a suggestion, and a refused state change named as such.
#[test]
fn newcomer_paper_cuts() {
    let dir = tmp().join("node");
    init(&dir);
    liaison(&dir)
        .args([
            "directory",
            "add-agency",
            "CN-MPS",
            "--name",
            "MPS",
            "--jurisdiction",
            "CN",
            "--time-zone",
            "Asia/Shanghai",
        ])
        .assert()
        .success();
    for (u, a, r) in [
        ("alice", "FBI", "officer"),
        ("wang", "CN-MPS", "desk"),
        ("li", "CN-MPS", "legal_reviewer"),
    ] {
        liaison(&dir)
            .args(["user", "add", u, "--agency", a, "--role", r])
            .assert()
            .success();
    }
    // An unknown agency names the known ones and how to add one.
    let out = liaison(&dir)
        .args([
            "--json",
            "--as",
            "alice",
            "request",
            "create",
            "--kind",
            "expedited_preservation",
            "--to",
            "CN-MSP",
            "--case",
            "C-1",
            "--offence",
            "BC-02",
            "--summary",
            "Logs of the C2 server",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let e: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(e["error"]["kind"], "invalid_input", "{e}");
    assert_eq!(e["error"]["errors"][0]["field"], "--to", "{e}");
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("known: CN-MPS, FBI") && msg.contains("liaison directory add-agency"),
        "{msg}"
    );
    // A preservation, preserved "until DAY" (a date alone, 400 days ahead: the law wants at
    // least 60): through that day in Beijing.
    let day = (jiff::Zoned::now().date() + jiff::ToSpan::days(400))
        .strftime("%Y-%m-%d")
        .to_string();
    let r = json_out(liaison(&dir).args([
        "--as",
        "alice",
        "request",
        "create",
        "--kind",
        "expedited_preservation",
        "--to",
        "CN-MPS",
        "--case",
        "C-1",
        "--offence",
        "BC-02",
        "--summary",
        "Logs of the C2 server",
    ]));
    let id = r["id"].as_str().unwrap().to_string();
    // The next step printed names the data directory and the user.
    let out = liaison(&dir)
        .args([
            "--as",
            "alice",
            "request",
            "create",
            "--kind",
            "expedited_preservation",
            "--to",
            "CN-MPS",
            "--case",
            "C-2",
            "--offence",
            "BC-02",
            "--summary",
            "Logs of the C2 server",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("--data-dir {} --as alice request transition", dir.display())),
        "{text}"
    );
    liaison(&dir)
        .args(["--as", "alice", "request", "transition", &id, "--to", "submitted"])
        .assert()
        .success();
    // Acknowledged by the desk, accepted by whichever of the requested side's users may.
    liaison(&dir)
        .args(["--as", "wang", "request", "transition", &id, "--to", "acknowledged"])
        .assert()
        .success();
    let accepted = ["wang", "li"].iter().any(|who| {
        liaison(&dir)
            .args(["--as", who, "request", "transition", &id, "--to", "accepted"])
            .output()
            .unwrap()
            .status
            .success()
    });
    assert!(accepted, "no requested-side user could accept the preservation");
    let v = json_out(liaison(&dir).args([
        "--as",
        "wang",
        "request",
        "transition",
        &id,
        "--to",
        "preserved",
        "--preserved-until",
        &day,
    ]));
    let until = v["preserved_until"]
        .as_str()
        .or(v["request"]["preserved_until"].as_str())
        .unwrap()
        .to_string();
    assert!(
        until.starts_with(&format!("{day}T16:00:00")),
        "the end of {day} in Asia/Shanghai: {until}"
    );
    // An unknown state: named in words, with the closest one.
    let out = liaison(&dir)
        .args(["--as", "wang", "request", "transition", &id, "--to", "answred"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown state 'answred' (did you mean 'answered'?)"),
        "{err}"
    );
    // The admin (cli_user) may not change a request's state: the refusal says so.
    let out = liaison(&dir)
        .args(["request", "transition", &id, "--to", "closed"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6));
    assert!(String::from_utf8_lossy(&out.stderr).contains("changing the state of requests"));
    // Exit 4 for an unknown user and for a missing file; JSON on stdout with --json.
    let out = liaison(&dir)
        .args(["--json", "--as", "nobody", "request", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let e: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (e["error"]["exit_code"].clone(), e["error"]["kind"].clone()),
        (json!(4), json!("not_found"))
    );
    let out = liaison(&dir)
        .args(["--as", "alice", "request", "create", "--file", "no-such-draft.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    // Table times say their zone.
    let out = liaison(&dir)
        .args(["--as", "alice", "request", "list"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(" UTC"));
}

/// `demo --data-dir` builds the demo there (not in the temporary directory), and its CLI
/// user exists: `request list` works there without --as.
#[test]
fn demo_honours_the_data_dir() {
    let dir = tmp().join("demo");
    let out = liaison(&dir)
        .args(["demo", "--no-serve", "--no-federation", "--requests", "12"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let config = std::fs::read_to_string(dir.join("liaison.toml")).unwrap();
    assert!(config.contains("cli_user = \"fbi.officer\""), "{config}");
    assert!(dir.join("liaison.db").exists());
    let list = json_out(liaison(&dir).args(["request", "list"]));
    assert!(!list["items"].as_array().unwrap().is_empty(), "{list}");
    // A second demo into the same folder is refused, not mixed in.
    let again = liaison(&dir)
        .args(["demo", "--no-serve", "--no-federation", "--requests", "2"])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(3));
}

/// The data directory and its database are the operator's only (0700 and 0600).
#[cfg(unix)]
#[test]
fn data_directory_and_database_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tmp().join("node");
    init(&dir);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("liaison.db")), 0o600);
}

/// A reader that stops early (`liaison rules check … | head -1`) ends the command quietly with
/// the SIGPIPE status (141), not with a panic and a backtrace.
#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    let dir = tmp();
    init(&dir);
    let mut child = common::liaison(&dir)
        .args(["directory"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close our end of its standard output before it writes.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        out.status.code() == Some(141) || out.status.success(),
        "{:?} {stderr}",
        out.status
    );
}
