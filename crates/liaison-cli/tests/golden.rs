#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Golden transcripts: what the current code answers, recorded so that a refactoring must
//! reproduce it byte for byte (after normalisation).
//!
//! One scripted session on a fresh data directory:
//! - `cli.json`: the real `liaison` binary, one process per command (init, directory, users,
//!   tokens, requests through several lifecycles, comments, overdue, reports, audit, assess,
//!   and error cases). Each entry holds the arguments (after `--data-dir`), the exit code,
//!   stdout (parsed JSON under `stdout`, or text lines under `stdout_text`) and stderr lines.
//! - `api.json`: the same data directory served by `liaison serve` on 127.0.0.1, every /api/v1
//!   route (and the intel routes) called over HTTP, including error cases. Each entry holds the
//!   caller (`auth`: a user name, `null` for no header, or `raw:` and the header sent), method,
//!   path, the body sent, the status, the headers that matter (content-type, location,
//!   www-authenticate, etag, allow) and the body (JSON parsed, other text as lines).
//!
//! Before the API part the test appends an `[intel]` section to `liaison.toml` (routes for
//! 203.0.113.0/24 → CN-MPS and 198.51.100.0/24 → FBI) so that ingest and notices have work.
//!
//! The clock and the ids cannot be injected, so both transcripts are NORMALISED before they are
//! compared (each file on its own, walked in document order with object keys sorted):
//! - the test's temporary directory → `<tmp>`; the federation address given to `init`
//!   (`--federation-listen`, a free port) → `127.0.0.1:<federation-port>`, the API address →
//!   `127.0.0.1:<api-port>`;
//! - API tokens (`lia_` + 64 hex digits) → `<token>`;
//! - the year in a request's reference (`FBI-2026-0001` → `FBI-<year>-0001`);
//! - federation key ids (`ed25519:` + hex digits, random per init) → `ed25519:<key-id>`;
//! - every UUID → `<id:N>`, N numbered by first appearance in the transcript, so one id keeps
//!   one placeholder (in arguments, paths, bodies and messages alike; the two files number
//!   their ids independently);
//! - every other run of exactly 64 hex digits (audit chain head, TLS certificate hash,
//!   descriptor fingerprint) → `<hash:N>`, numbered the same way, except the rule-pack version
//!   (the content hash of the shipped rule packs, printed by `rules check`), kept as it is;
//! - every instant `YYYY-MM-DD(T| )HH:MM[:SS[.f+]][Z|±HH:MM]` in a string → `<instant>`
//!   (creation and update times, deadlines, expiries, report periods; fixed instants the test
//!   sends, and the example instants of error messages, are replaced too; bare dates are kept);
//! - integers within five years of the run's clock → `<unix-time>` (the intel routes give
//!   times as Unix seconds: notice intervals, issued_at, first_seen, feedback at);
//! - `local_time` of a directory contact → `<local-time>`, and its `open` flag → `<open-now>`
//!   unless the contact's office hours are `24/7` (both depend on the wall clock);
//! - `days_left` of a retention warning, and the `days` of a plan step's `why.preserve_*`
//!   reason → `<days-left>` (counted from now for stored requests);
//! - `/health`'s `disk_free_bytes` → `<bytes>`, and its `integrity` → `<integrity-ok-or-pending>`
//!   while the first background check may still be running (a `corrupt` answer is kept);
//! - the audit-anchor counts (`anchors_checked`, `last_anchored_seq`, `ledger_audit_anchors`)
//!   → `<anchors>` (anchors are written by a background task);
//! - the timing statistics of the cooperation report (`median_hours_to_acknowledge`,
//!   `p90_hours_to_acknowledge`, `median_days_to_answer`, `p90_days_to_answer`) → `<duration>`
//!   when they are numbers (JSON) or non-empty (the CSV columns of the same names);
//! - elapsed-time figures of an intel ingest (keys ending in `_secs`, `per_sec` or `_write_ms`) → `<duration>`;
//! - ANSI colour escapes are removed from process output.
//!
//! Kept as they are, because they do not depend on the clock during a run: overdue flags and
//! counts (no deadline of the default SLA policy, shortest 2 hours, can pass during the test),
//! version numbers, retention verdicts for targets with fixed dates in the past, and what-if
//! assessments with a fixed `--as-of`. Assessments made "now" (on submission, without
//! `--as-of`) follow the law in force today, so a rule pack entry that takes effect later
//! would change them. Lists keep the code's order (users by name, tokens and requests by
//! their time-ordered UUIDv7 ids, events by time, directory by code); nothing is re-sorted.
//!
//! `LIAISON_BLESS=1 cargo test -p liaison-cli --test golden` rewrites the golden files. Without
//! it the test compares, prints the first differing entries and writes what it got next to the
//! test's temporary files (the path is printed).

use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::strip_ansi;

const GOLDEN_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden");
/// A UUID that no run of the test creates (ids here are UUIDv7 of now).
const UNKNOWN_ID: &str = "00000000-0000-7000-8000-000000000000";

// ----- the command line ----------------------------------------------------------------------

struct Out {
    code: i32,
    stdout: String,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or(Value::Null)
    }
}

/// A string field of a JSON value, or a marker that keeps the script going (and shows in the diff).
fn s(v: &Value, pointer: &str) -> String {
    match v.pointer(pointer) {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => format!("<missing {pointer}>"),
    }
}

const DURATION_KEYS: &[&str] = &[
    "median_hours_to_acknowledge",
    "p90_hours_to_acknowledge",
    "median_days_to_answer",
    "p90_days_to_answer",
];

/// Text as lines; in a cooperation CSV the timing columns are masked.
fn text_lines(text: &str) -> Value {
    let text = strip_ansi(text);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if let Some(header) = lines.first().cloned()
        && header.starts_with("requesting,requested,")
    {
        let cols: Vec<usize> = header
            .split(',')
            .enumerate()
            .filter(|(_, h)| DURATION_KEYS.contains(h))
            .map(|(i, _)| i)
            .collect();
        for line in lines.iter_mut().skip(1) {
            let mut cells: Vec<String> = line.split(',').map(str::to_string).collect();
            for &c in &cols {
                if let Some(cell) = cells.get_mut(c)
                    && !cell.is_empty()
                {
                    *cell = "<duration>".into();
                }
            }
            *line = cells.join(",");
        }
    }
    json!(lines)
}

struct Cli {
    base: PathBuf,
    dir: PathBuf,
    /// `--federation-listen` of init (`serve` binds it; the default port may be taken).
    fed_listen: String,
    entries: Vec<Value>,
}

impl Cli {
    fn run(&mut self, args: &[&str]) -> Out {
        let mut c = assert_cmd::Command::cargo_bin("liaison").unwrap();
        c.arg("--data-dir")
            .arg(&self.dir)
            .args(args)
            .current_dir(&self.base)
            .env_remove("LIAISON_USER")
            .env_remove("LIAISON_DATA_DIR")
            .env_remove("LIAISON_DATABASE_URL")
            .env_remove("LIAISON_LISTEN")
            .env_remove("LIAISON_RULES_DIR")
            .env_remove("LIAISON_TICK_SECONDS")
            .env("LIAISON_LOG", "error")
            .env("NO_COLOR", "1")
            .timeout(Duration::from_secs(60));
        let o = c.output().unwrap();
        let out = Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        };
        let stderr = String::from_utf8_lossy(&o.stderr);
        let mut e = json!({"args": args, "exit": out.code, "stderr": text_lines(&stderr)});
        match serde_json::from_str::<Value>(&out.stdout) {
            Ok(v) if !out.stdout.trim().is_empty() => e["stdout"] = v,
            _ => e["stdout_text"] = text_lines(&out.stdout),
        }
        self.entries.push(e);
        out
    }

    /// Runs with `--json` (placed first, as a global flag).
    fn j(&mut self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        self.run(&a).json()
    }
}

/// The scripted command-line session. Returns what the API part needs.
struct Fixture {
    admin_token: String,
    alice_token: String,
    wang_token: String,
    revoked_token: String,
    /// Issued for a disabled user.
    erin_token: String,
    rule_pack_version: String,
    fbi: String,
    mps: String,
    closed_request: String,
}

fn cli_session(cli: &mut Cli) -> Fixture {
    // init, and init again.
    let fed_listen = cli.fed_listen.clone();
    let mut init_args = vec!["init", "--federation-listen", &fed_listen];
    init_args.extend(common::FBI_AGENCY);
    let init = cli.j(&init_args);
    let admin_token = s(&init, "/admin_token");
    let fbi = s(&init, "/agency/id");
    cli.run(&["init", "--agency-code", "FBI"]);

    // Rule packs: the version printed here is kept verbatim in both transcripts.
    let rules = cli.run(&["rules", "check", "--dir", "node/rules"]);
    let rule_pack_version = rules.stdout.split_whitespace().last().unwrap_or_default().to_string();
    cli.j(&["rules", "check", "--dir", "node/rules"]);
    cli.run(&["rules", "check", "--dir", "no-such-rules"]);

    // Directory (admin).
    cli.run(&[
        "directory",
        "add-jurisdiction",
        "NZ",
        "--en",
        "New Zealand",
        "--zh",
        "新西兰",
    ]);
    cli.run(&[
        "directory",
        "add-jurisdiction",
        "XK",
        "--en",
        "Kosovo",
        "--zh",
        "科索沃",
    ]);
    cli.run(&["directory", "add-jurisdiction", "XKX", "--en", "x", "--zh", "x"]);
    let mps = cli.j(&[
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
    ]);
    let mps = s(&mps, "/id");
    cli.j(&[
        "directory",
        "add-agency",
        "GB-NCA",
        "--name",
        "National Crime Agency",
        "--jurisdiction",
        "GB",
        "--kind",
        "point_of_contact_24_7",
        "--time-zone",
        "Europe/London",
    ]);
    cli.j(&[
        "directory",
        "add-agency",
        "X",
        "--name",
        "X",
        "--jurisdiction",
        "CN",
        "--time-zone",
        "Asia/Atlantis",
    ]);
    cli.j(&[
        "directory",
        "add-agency",
        "Y",
        "--name",
        "Y",
        "--jurisdiction",
        "CN",
        "--kind",
        "army",
        "--time-zone",
        "Asia/Shanghai",
    ]);
    cli.j(&[
        "directory",
        "add-agency",
        "CN-MPS",
        "--name",
        "Duplicate",
        "--jurisdiction",
        "CN",
        "--time-zone",
        "Asia/Shanghai",
    ]);
    cli.j(&[
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
    ]);
    cli.j(&[
        "directory",
        "add-contact",
        "FBI",
        "--name",
        "Cyber division",
        "--phone",
        "+1 202 555 0100",
        "--email",
        "cyber@example.invalid",
        "--time-zone",
        "America/New_York",
        "--hours",
        "Mon-Fri 09:00-17:30",
    ]);
    cli.j(&[
        "directory",
        "add-contact",
        "FBI",
        "--name",
        "Bad hours",
        "--phone",
        "1",
        "--email",
        "x@example.invalid",
        "--time-zone",
        "America/New_York",
        "--hours",
        "weekdays",
    ]);
    cli.j(&[
        "directory",
        "add-contact",
        "NOPE",
        "--name",
        "n",
        "--phone",
        "1",
        "--email",
        "x@example.invalid",
        "--time-zone",
        "UTC",
    ]);

    // Users of every role, on both sides.
    for (user, agency, role) in [
        ("alice", "FBI", "officer"),
        ("sam", "FBI", "supervisor"),
        ("ana", "FBI", "analyst"),
        ("ann", "FBI", "auditor"),
        ("wang", "CN-MPS", "desk"),
        ("li", "CN-MPS", "legal_reviewer"),
        ("chen", "CN-MPS", "officer"),
        ("zhou", "CN-MPS", "supervisor"),
    ] {
        cli.j(&["user", "add", user, "--agency", agency, "--role", role]);
    }
    cli.j(&["user", "add", "bob", "--agency", "FBI", "--role", "boss"]);
    cli.j(&["user", "add", "alice", "--agency", "FBI", "--role", "officer"]);
    cli.j(&["user", "add", "carol", "--agency", "NOPE", "--role", "officer"]);
    cli.j(&["user", "add", "carol smith", "--agency", "FBI", "--role", "officer"]);
    cli.j(&[
        "--as", "alice", "user", "add", "dave", "--agency", "FBI", "--role", "admin",
    ]);
    cli.j(&[
        "user",
        "add",
        "erin",
        "--agency",
        "FBI",
        "--role",
        "analyst",
        "--name",
        "Erin Analyst",
    ]);
    cli.j(&["user", "list"]);
    cli.j(&["--as", "alice", "user", "list"]);
    cli.run(&["user", "disable", "erin"]);
    cli.run(&["--as", "alice", "user", "disable", "ana"]);
    cli.j(&["--as", "erin", "request", "list"]);
    cli.j(&["--as", "nobody", "request", "list"]);
    cli.run(&["user", "enable", "erin"]);
    cli.j(&["user", "role", "erin", "supervisor"]);
    cli.run(&["user", "role", "erin", "chief"]);
    cli.run(&["--as", "alice", "user", "role", "erin", "admin"]);
    cli.run(&["user", "disable", "erin"]);
    cli.j(&[
        "directory",
        "rename-agency",
        "FBI",
        "--name",
        "Federal Bureau of Investigation",
        "--zh-name",
        "美国联邦调查局",
    ]);
    cli.run(&["directory", "rename-agency", "NOPE", "--name", "X"]);

    // Tokens.
    let t = cli.j(&["token", "create", "alice", "--days", "30"]);
    let alice_token = s(&t, "/token");
    let t = cli.j(&["token", "create", "wang", "--label", "desk"]);
    let wang_token = s(&t, "/token");
    let t = cli.j(&["token", "create", "sam", "--days", "1", "--label", "to-revoke"]);
    let revoked_token = s(&t, "/token");
    let revoked_id = s(&t, "/info/id");
    cli.j(&["token", "create", "nobody"]);
    cli.j(&["token", "create", "alice", "--days", "400"]);
    let t = cli.j(&["token", "create", "erin", "--label", "disabled-user"]);
    let erin_token = s(&t, "/token");
    cli.j(&["--as", "alice", "token", "create", "alice"]);
    cli.j(&["token", "list"]);
    cli.run(&["token", "revoke", &revoked_id]);
    cli.run(&["token", "revoke", UNKNOWN_ID]);
    cli.run(&["--as", "alice", "token", "revoke", &revoked_id]);
    cli.j(&["--as", "alice", "token", "list"]);
    cli.j(&["token", "list"]);

    // Request 1: subscriber information, through the whole production lifecycle.
    let r1 = cli.j(&common::create_request_args(
        "alice",
        "FBI-2026-17",
        "Intrusion into a hospital network",
    ));
    let r1 = s(&r1, "/id");
    cli.run(&["--as", "alice", "request", "show", &r1]);
    cli.j(&["--as", "alice", "request", "show", &r1]);
    cli.j(&["--as", "wang", "request", "show", &r1]);
    cli.j(&["--as", "alice", "request", "transition", &r1, "--to", "submitted"]);
    cli.j(&["--as", "wang", "request", "transition", &r1, "--to", "answered"]);
    cli.j(&["--as", "alice", "request", "transition", &r1, "--to", "acknowledged"]);
    cli.j(&[
        "--as",
        "wang",
        "request",
        "transition",
        &r1,
        "--to",
        "acknowledged",
        "--version",
        "1",
    ]);
    cli.j(&["--as", "wang", "request", "transition", &r1, "--to", "bogus"]);
    cli.run(&["--as", "wang", "request", "transition", &r1, "--to", "acknowledged"]);
    cli.j(&["--as", "li", "request", "transition", &r1, "--to", "in_review"]);
    cli.j(&["--as", "li", "request", "transition", &r1, "--to", "needs_information"]);
    cli.j(&[
        "--as",
        "li",
        "request",
        "transition",
        &r1,
        "--to",
        "needs_information",
        "--reason",
        "Which subscriber period?",
    ]);
    cli.j(&[
        "--as",
        "alice",
        "request",
        "transition",
        &r1,
        "--to",
        "in_review",
        "--reason",
        "1 to 31 March",
    ]);
    cli.j(&["--as", "li", "request", "transition", &r1, "--to", "accepted"]);
    cli.j(&["--as", "chen", "request", "transition", &r1, "--to", "executing"]);
    cli.j(&["--as", "chen", "request", "transition", &r1, "--to", "answered_partial"]);
    cli.j(&["--as", "zhou", "request", "transition", &r1, "--to", "answered"]);
    cli.j(&["--as", "chen", "request", "comment", &r1, "Records sent by secure mail"]);
    cli.j(&["--as", "ann", "request", "comment", &r1, "auditors do not comment"]);
    cli.j(&["--as", "alice", "request", "comment", &r1, "   "]);
    cli.j(&["--as", "alice", "request", "transition", &r1, "--to", "closed"]);
    cli.j(&["--as", "alice", "request", "show", &r1]);

    // Request 2: preservation from a JSON file, preserved, extended, released.
    let draft = json!({
        "kind": "expedited_preservation",
        "urgency": "urgent",
        "requesting_agency": fbi,
        "requested_agency": mps,
        "case_reference": "FBI-2026-18",
        "offences": ["BC-02", "FRAUD-TELECOM"],
        "summary": "Preserve the mailbox used for the phishing wave",
        "targets": [{
            "value": {"type": "account", "service": "mail.example.cn", "identifier": "wave@example.cn"},
            "from": "2026-01-01T00:00:00Z",
            "until": "2026-02-01T00:00:00Z"
        }],
        "legal_basis": "18 USC 2703(f); Budapest Art 29"
    });
    std::fs::write(cli.base.join("draft.json"), serde_json::to_vec_pretty(&draft).unwrap()).unwrap();
    std::fs::write(
        cli.base.join("broken.json"),
        "{\"kind\": \"expedited_preservation\",\n  \"urgency\": 7}",
    )
    .unwrap();
    let r2 = cli.j(&["--as", "alice", "request", "create", "--file", "draft.json"]);
    let r2 = s(&r2, "/id");
    cli.j(&["--as", "alice", "request", "create", "--file", "missing.json"]);
    cli.j(&["--as", "alice", "request", "create", "--file", "broken.json"]);
    // Four eyes from the command line: ask, sent back by a supervisor, asked again, taken back.
    cli.run(&["--as", "alice", "request", "approval", &r2]);
    cli.j(&["--as", "alice", "request", "approval", &r2, "--ask"]);
    cli.run(&["--as", "sam", "request", "approval", &r2]);
    cli.run(&[
        "--as",
        "sam",
        "request",
        "approval",
        &r2,
        "--send-back",
        "Name the provider",
    ]);
    cli.run(&["--as", "alice", "request", "approval", &r2, "--ask"]);
    cli.run(&["--as", "wang", "request", "approval", &r2, "--ask"]);
    cli.run(&["--as", "alice", "request", "approval", &r2, "--take-back"]);
    cli.run(&["--as", "alice", "request", "transition", &r2, "--to", "submitted"]);
    cli.j(&["--as", "wang", "request", "transition", &r2, "--to", "acknowledged"]);
    cli.j(&["--as", "wang", "request", "transition", &r2, "--to", "in_review"]);
    cli.j(&["--as", "wang", "request", "transition", &r2, "--to", "accepted"]);
    cli.j(&[
        "--as",
        "wang",
        "request",
        "transition",
        &r2,
        "--to",
        "preserved",
        "--preserved-until",
        "2026-02-01T00:00:00Z",
    ]);
    cli.j(&[
        "--as",
        "wang",
        "request",
        "transition",
        &r2,
        "--to",
        "preserved",
        "--preserved-until",
        "soon",
    ]);
    cli.j(&["--as", "wang", "request", "transition", &r2, "--to", "preserved"]);
    cli.j(&[
        "--as",
        "wang",
        "request",
        "transition",
        &r2,
        "--to",
        "extended",
        "--preserved-until",
        "2099-12-31T00:00:00Z",
    ]);
    cli.j(&["--as", "wang", "request", "transition", &r2, "--to", "released"]);
    cli.j(&[
        "--as",
        "wang",
        "request",
        "transition",
        &r2,
        "--to",
        "released",
        "--reason",
        "Follow-up not received",
    ]);
    cli.j(&["--as", "alice", "request", "show", &r2]);

    // Request 3: refused after review.
    let r3 = cli.j(&[
        "--as",
        "sam",
        "request",
        "create",
        "--kind",
        "stored_content",
        "--urgency",
        "emergency",
        "--to",
        "CN-MPS",
        "--case",
        "FBI-2026-19",
        "--offence",
        "OBSCENE-DISSEMINATION",
        "--summary",
        "Distribution site",
    ]);
    let r3 = s(&r3, "/id");
    cli.j(&["--as", "sam", "request", "transition", &r3, "--to", "submitted"]);
    cli.j(&["--as", "zhou", "request", "transition", &r3, "--to", "acknowledged"]);
    cli.j(&["--as", "zhou", "request", "transition", &r3, "--to", "in_review"]);
    cli.j(&[
        "--as",
        "li",
        "request",
        "transition",
        &r3,
        "--to",
        "refused",
        "--reason",
        "no",
    ]);
    cli.j(&[
        "--as",
        "li",
        "request",
        "transition",
        &r3,
        "--to",
        "refused",
        "--refusal-reason",
        "maybe",
        "--reason",
        "no",
    ]);
    cli.j(&[
        "--as",
        "li",
        "request",
        "transition",
        &r3,
        "--to",
        "refused",
        "--refusal-reason",
        "dual_criminality",
        "--reason",
        "Not an offence here",
    ]);
    cli.j(&["--as", "wang", "request", "comment", &r3, "Refusal sent by fax too"]);

    // Request 4: withdrawn after submission; request 5: a draft withdrawn; request 6 stays a draft.
    let r4 = cli.j(&[
        "--as",
        "alice",
        "request",
        "create",
        "--kind",
        "traffic_data",
        "--to",
        "GB-NCA",
        "--case",
        "FBI-2026-20",
        "--offence",
        "BC-03",
        "--summary",
        "Botnet controller",
    ]);
    let r4 = s(&r4, "/id");
    cli.j(&["--as", "alice", "request", "transition", &r4, "--to", "submitted"]);
    cli.j(&[
        "--as",
        "alice",
        "request",
        "transition",
        &r4,
        "--to",
        "withdrawn",
        "--reason",
        "Suspect arrested",
    ]);
    let r5 = cli.j(&[
        "--as",
        "alice",
        "request",
        "create",
        "--kind",
        "financial_records",
        "--to",
        "CN-MPS",
        "--case",
        "FBI-2026-21",
        "--offence",
        "FRAUD-INVESTMENT",
        "--summary",
        "Investment fraud accounts",
    ]);
    let r5 = s(&r5, "/id");
    cli.j(&[
        "--as",
        "alice",
        "request",
        "transition",
        &r5,
        "--to",
        "withdrawn",
        "--reason",
        "Opened by mistake",
    ]);
    cli.run(&[
        "--as",
        "alice",
        "request",
        "create",
        "--kind",
        "takedown",
        "--to",
        "CN-MPS",
        "--case",
        "FBI-2026-22",
        "--offence",
        "BC-04",
        "--summary",
        "Phishing kit host",
    ]);

    // Creation errors.
    let create = |who: &'static str, kind: &'static str, to: &'static str, offence: &'static str| {
        vec![
            "--json",
            "--as",
            who,
            "request",
            "create",
            "--kind",
            kind,
            "--to",
            to,
            "--case",
            "FBI-X",
            "--offence",
            offence,
            "--summary",
            "x",
        ]
    };
    cli.run(&create("alice", "subscriber_information", "CN-MPS", "BC-99"));
    cli.run(&create("alice", "gossip", "CN-MPS", "BC-02"));
    cli.run(&create("alice", "subscriber_information", "NOPE", "BC-02"));
    cli.run(&create("wang", "subscriber_information", "FBI", "BC-02"));
    cli.run(&create("admin", "subscriber_information", "CN-MPS", "BC-02"));
    cli.j(&["--as", "alice", "request", "create", "--to", "CN-MPS"]);
    cli.j(&[
        "--as",
        "alice",
        "request",
        "create",
        "--kind",
        "takedown",
        "--to",
        "CN-MPS",
        "--offence",
        "BC-02",
    ]);

    // Reading.
    cli.j(&["--as", "alice", "request", "list"]);
    cli.j(&["--as", "wang", "request", "list"]);
    cli.j(&["--as", "wang", "request", "list", "--state", "refused,answered"]);
    cli.j(&[
        "--as", "alice", "request", "list", "--state", "draft", "--kind", "takedown",
    ]);
    cli.j(&["--as", "alice", "request", "list", "--limit", "0"]);
    let page = cli.j(&["--as", "alice", "request", "list", "--limit", "2"]);
    let next = s(&page, "/next");
    cli.j(&["--as", "alice", "request", "list", "--limit", "2", "--cursor", &next]);
    cli.j(&["--as", "alice", "request", "list", "--state", "bogus"]);
    cli.j(&["--as", "alice", "request", "list", "--kind", "bogus"]);
    cli.j(&["--as", "alice", "request", "list", "--cursor", "nope"]);
    cli.j(&["--as", "ana", "request", "list"]);
    cli.j(&["request", "list"]);
    cli.j(&["--as", "alice", "request", "show", UNKNOWN_ID]);
    cli.j(&["--as", "alice", "request", "show", "not-an-id"]);
    cli.j(&["--as", "alice", "request", "overdue"]);
    cli.j(&["--as", "wang", "request", "overdue"]);

    // Search (docs/search.md): words, identifiers, saved searches, listings by words.
    cli.run(&["--as", "alice", "search", "find", "hospital"]);
    cli.j(&["--as", "wang", "search", "find", "hospital", "--limit", "1"]);
    cli.j(&["--as", "alice", "search", "find", "--", "-hospital"]);
    cli.j(&["--as", "alice", "search", "find", "hospital", "--in", "everywhere"]);
    cli.run(&["--as", "alice", "search", "lookup", "203.0.113.7"]);
    cli.j(&["--as", "alice", "search", "lookup", "not an identifier"]);
    cli.run(&["--as", "alice", "search", "save", "drafts", "q=hospital&state=draft"]);
    cli.run(&["--as", "alice", "search", "saved"]);
    cli.j(&["--as", "alice", "search", "run", "drafts"]);
    cli.run(&["--as", "alice", "search", "forget", "drafts"]);
    cli.j(&["--as", "alice", "search", "forget", "drafts"]);
    cli.j(&["--as", "alice", "request", "list", "--text", "hospital", "--limit", "2"]);
    cli.j(&["--as", "alice", "search", "rebuild"]);

    // Joint cases (docs/cases.md): opened by FBI with CN-MPS invited, accepted, a note; a
    // third agency's user does not see it; a reference with a space is refused by name.
    let case = cli.j(&[
        "--as",
        "alice",
        "case",
        "create",
        "--name",
        "Operation Golden",
        "--reference",
        "JTF-G1",
        "--invite",
        "CN-MPS",
    ]);
    let case = s(&case, "/id");
    cli.run(&["--as", "wang", "case", "list"]);
    cli.j(&["--as", "wang", "case", "accept", &case]);
    cli.j(&["--as", "chen", "case", "accept", &case]);
    cli.j(&["--as", "alice", "case", "note", &case, "First meeting on Monday"]);
    cli.run(&["--as", "alice", "case", "show", &case]);
    cli.j(&["--as", "alice", "case", "stats", &case]);
    cli.j(&[
        "--as",
        "alice",
        "case",
        "create",
        "--name",
        "x",
        "--reference",
        "bad ref",
    ]);
    cli.j(&["--as", "wang", "case", "close", &case]);

    // Directory, reports, audit, assessments.
    cli.j(&["directory"]);
    cli.j(&["--as", "wang", "directory", "--jurisdiction", "CN"]);
    cli.j(&["directory", "--jurisdiction", "China"]);
    cli.j(&["--as", "ann", "report", "cooperation"]);
    cli.run(&[
        "--as",
        "ann",
        "report",
        "cooperation",
        "--format",
        "csv",
        "--by",
        "jurisdiction",
    ]);
    cli.run(&["--as", "ana", "report", "cooperation", "--format", "csv"]);
    cli.j(&["report", "cooperation", "--by", "jurisdiction"]);
    cli.j(&["--as", "zhou", "report", "cooperation"]);
    cli.j(&["--as", "alice", "report", "cooperation"]);
    cli.j(&["--as", "ann", "report", "cooperation", "--by", "planet"]);
    cli.j(&["--as", "ann", "report", "cooperation", "--from", "yesterday"]);
    cli.j(&[
        "--as",
        "ann",
        "report",
        "cooperation",
        "--from",
        "2001-01-01",
        "--to",
        "2002-01-01",
    ]);
    cli.run(&["--as", "ann", "report", "cooperation", "--format", "xml"]);
    cli.j(&["--as", "ann", "audit", "verify"]);
    cli.run(&["--as", "ann", "audit", "verify"]);
    cli.j(&["--as", "alice", "audit", "verify"]);
    cli.j(&[
        "assess",
        "--from",
        "CN",
        "--to",
        "US",
        "--offence",
        "OBSCENE-DISSEMINATION",
        "--conduct",
        "for_profit",
    ]);
    cli.j(&[
        "--as",
        "alice",
        "assess",
        "--from",
        "US",
        "--to",
        "CN",
        "--kind",
        "traffic_data",
        "--urgency",
        "urgent",
        "--offence",
        "FRAUD-TELECOM",
        "--amount",
        "2500",
        "--event-at",
        "2025-06-01",
        "--as-of",
        "2026-03-01",
    ]);
    cli.j(&["--as", "alice", "assess", "--request", &r1, "--as-of", "2026-03-01"]);
    cli.j(&["--as", "li", "assess", "--request", &r3, "--as-of", "2026-03-01"]);
    cli.run(&[
        "assess",
        "--from",
        "CN",
        "--to",
        "US",
        "--offence",
        "BC-02",
        "--as-of",
        "2026-03-01",
    ]);
    cli.j(&["assess", "--from", "CN", "--to", "XX", "--offence", "BC-02"]);
    cli.j(&["assess", "--from", "CN"]);
    cli.j(&["assess", "--request", "nope"]);
    cli.j(&[
        "assess",
        "--from",
        "CN",
        "--to",
        "US",
        "--offence",
        "BC-02",
        "--category",
        "dreams",
    ]);
    cli.run(&["--json", "frobnicate"]);
    cli.run(&["--json", "request", "transition", &r1]);

    Fixture {
        admin_token,
        alice_token,
        wang_token,
        revoked_token,
        erin_token,
        rule_pack_version,
        fbi,
        mps,
        closed_request: r1,
    }
}

// ----- the HTTP API --------------------------------------------------------------------------

/// A port below the ephemeral range (`common::free_port_from`): distinct within this process (a
/// counter), spread across concurrent runs (the process id), checked free.
fn free_port() -> u16 {
    common::free_port_from(common::port_slot(17))
}

struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn log_text(&self) -> String {
        strip_ansi(&common::read_log(&self.log))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

enum Auth<'a> {
    None,
    User(&'a str),
    Raw(&'a str),
}

enum Body {
    None,
    Json(Value),
    Raw(&'static str, Vec<u8>),
}

struct Resp {
    body: Value,
}

struct Api {
    base: String,
    http: reqwest::Client,
    tokens: HashMap<String, String>,
    entries: Vec<Value>,
}

impl Api {
    async fn call(&mut self, auth: Auth<'_>, method: &str, path: &str, body: Body) -> Resp {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rq = self.http.request(m, format!("{}{path}", self.base));
        let who = match auth {
            Auth::None => Value::Null,
            Auth::User(u) => {
                let t = self.tokens.get(u).cloned().unwrap_or_default();
                rq = rq.header("authorization", format!("Bearer {t}"));
                json!(u)
            }
            Auth::Raw(h) => {
                rq = rq.header("authorization", h);
                json!(format!("raw: {h}"))
            }
        };
        let sent = match body {
            Body::None => Value::Null,
            Body::Json(v) => {
                rq = rq.json(&v);
                v
            }
            Body::Raw(ct, bytes) => {
                if !ct.is_empty() {
                    rq = rq.header("content-type", ct);
                }
                let shown = if bytes.len() > 512 {
                    json!(format!("<{} bytes>", bytes.len()))
                } else {
                    json!(String::from_utf8_lossy(&bytes))
                };
                rq = rq.body(bytes);
                json!({"content-type": ct, "raw": shown})
            }
        };
        let r = rq.send().await.unwrap();
        let status = r.status().as_u16();
        let mut headers = Map::new();
        for h in ["content-type", "location", "www-authenticate", "etag", "allow"] {
            if let Some(v) = r.headers().get(h) {
                headers.insert(h.into(), json!(v.to_str().unwrap_or("<not text>")));
            }
        }
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = r.text().await.unwrap();
        let body = if ct.contains("json") {
            serde_json::from_str(&text).unwrap_or_else(|_| text_lines(&text))
        } else if text.is_empty() {
            json!("")
        } else {
            text_lines(&text)
        };
        let mut e = json!({"auth": who, "method": method, "path": path, "status": status, "headers": headers});
        if !sent.is_null() {
            e["sent"] = sent;
        }
        e["body"] = if path == "/api/v1/openapi.json" {
            openapi_outline(&body)
        } else {
            body.clone()
        };
        self.entries.push(e);
        Resp { body }
    }

    async fn get(&mut self, who: &str, path: &str) -> Resp {
        self.call(Auth::User(who), "GET", path, Body::None).await
    }

    async fn post(&mut self, who: &str, path: &str, body: Value) -> Resp {
        self.call(Auth::User(who), "POST", path, Body::Json(body)).await
    }
}

/// The API description is large: record its version and each path with its methods.
fn openapi_outline(doc: &Value) -> Value {
    let paths: Map<String, Value> = doc["paths"]
        .as_object()
        .map(|p| {
            p.iter()
                .map(|(k, v)| {
                    let methods: Vec<&String> = v.as_object().map(|o| o.keys().collect()).unwrap_or_default();
                    (k.clone(), json!(methods))
                })
                .collect()
        })
        .unwrap_or_default();
    json!({"openapi": doc["openapi"], "info": doc["info"], "paths": paths})
}

async fn start_server(cli: &Cli) -> (Server, String) {
    let port = free_port();
    let log = cli.base.join("serve.log");
    let child = std::process::Command::new(common::BIN)
        .arg("--data-dir")
        .arg(&cli.dir)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env_remove("LIAISON_USER")
        .env_remove("LIAISON_DATA_DIR")
        .env_remove("LIAISON_DATABASE_URL")
        .env_remove("LIAISON_LISTEN")
        .env_remove("LIAISON_RULES_DIR")
        .env_remove("LIAISON_TICK_SECONDS")
        .env("LIAISON_LOG", "warn")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut server = Server { child, log };
    let base = format!("http://127.0.0.1:{port}");
    let probe = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let t0 = Instant::now();
    loop {
        if let Ok(r) = probe.get(format!("{base}/api/v1/health")).send().await
            && r.status().is_success()
        {
            break;
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("liaison serve exited ({status}):\n{}", server.log_text());
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "liaison serve not healthy within 30 s:\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (server, base)
}

fn draft(fbi: &str, mps: &str, case: &str) -> Value {
    json!({
        "kind": "subscriber_information",
        "urgency": "routine",
        "requesting_agency": fbi,
        "requested_agency": mps,
        "case_reference": case,
        "offences": ["BC-02"],
        "summary": "Account used to control the botnet",
        "targets": [{
            "value": {"type": "email", "address": "c2@example.cn"},
            "from": "2026-01-01T00:00:00Z",
            "until": "2026-01-31T00:00:00Z"
        }],
        "legal_basis": "18 USC 2703(d); Budapest Art 31"
    })
}

async fn api_session(api: &mut Api, f: &Fixture) {
    let (fbi, mps) = (f.fbi.as_str(), f.mps.as_str());
    // Health and the API description need no token.
    api.call(Auth::None, "GET", "/api/v1/health", Body::None).await;
    api.call(Auth::None, "GET", "/api/v1/openapi.json", Body::None).await;

    // Authentication.
    api.call(Auth::None, "GET", "/api/v1/me", Body::None).await;
    api.call(Auth::Raw("Basic YWRtaW46YWRtaW4="), "GET", "/api/v1/me", Body::None)
        .await;
    let fake = format!("Bearer lia_{}", "0".repeat(64));
    api.call(Auth::Raw(&fake), "GET", "/api/v1/me", Body::None).await;
    api.call(Auth::User("revoked"), "GET", "/api/v1/me", Body::None).await;
    api.call(Auth::User("erin"), "GET", "/api/v1/me", Body::None).await;
    api.get("admin", "/api/v1/me").await;
    api.get("alice", "/api/v1/me").await;
    api.get("wang", "/api/v1/me").await;

    // Directory and its administration.
    api.get("alice", "/api/v1/directory").await;
    api.post(
        "admin",
        "/api/v1/jurisdictions",
        json!({"code": "AU", "name_en": "Australia", "name_zh": "澳大利亚"}),
    )
    .await;
    api.post(
        "alice",
        "/api/v1/jurisdictions",
        json!({"code": "AU", "name_en": "Australia", "name_zh": "澳大利亚"}),
    )
    .await;
    api.post(
        "admin",
        "/api/v1/jurisdictions",
        json!({"code": "XK", "name_en": "Kosovo", "name_zh": "科索沃"}),
    )
    .await;
    api.post("admin", "/api/v1/jurisdictions", json!({"code": "AU"})).await;
    let bka = api
        .post(
            "admin",
            "/api/v1/agencies",
            json!({"code": "DE-BKA", "name_en": "Federal Criminal Police Office", "name_native": "Bundeskriminalamt",
                   "jurisdiction": "DE", "kind": "police", "time_zone": "Europe/Berlin"}),
        )
        .await;
    let bka = s(&bka.body, "/id");
    api.post(
        "admin",
        "/api/v1/agencies",
        json!({"code": "DE-BKA", "name_en": "Again", "jurisdiction": "DE", "kind": "police", "time_zone": "Europe/Berlin"}),
    )
    .await;
    api.post(
        "admin",
        "/api/v1/agencies",
        json!({"code": "ZZ", "name_en": "Z", "jurisdiction": "DE", "kind": "police", "time_zone": "Mars/Olympus"}),
    )
    .await;
    api.post(
        "admin",
        "/api/v1/agencies",
        json!({"code": "ZZ", "name_en": "Z", "jurisdiction": "DE", "kind": "navy", "time_zone": "UTC"}),
    )
    .await;
    api.post(
        "admin",
        "/api/v1/agencies",
        json!({"code": "ZZ", "name_en": "Z", "jurisdiction": "DE", "kind": "police", "time_zone": "UTC", "motto": "x"}),
    )
    .await;
    api.post(
        "alice",
        "/api/v1/agencies",
        json!({"code": "ZZ", "name_en": "Z", "jurisdiction": "DE", "kind": "police", "time_zone": "UTC"}),
    )
    .await;
    api.post(
        "admin",
        "/api/v1/contacts",
        json!({"agency": bka, "name": "Cybercrime duty officer", "phone": "+49 611 55 0", "email": "cc@example.invalid",
               "languages": ["de", "en"], "time_zone": "Europe/Berlin", "office_hours": "24/7"}),
    )
    .await;
    api.post(
        "admin",
        "/api/v1/contacts",
        json!({"agency": bka, "name": "Legal desk", "phone": "+49 611 55 1", "email": "legal@example.invalid",
               "time_zone": "Europe/Berlin", "office_hours": "Mon-Thu 08:00-16:00"}),
    )
    .await;
    api.post(
        "admin",
        "/api/v1/contacts",
        json!({"agency": UNKNOWN_ID, "name": "n", "phone": "1", "email": "e@example.invalid",
               "time_zone": "UTC", "office_hours": "24/7"}),
    )
    .await;
    api.post(
        "admin",
        "/api/v1/contacts",
        json!({"agency": bka, "name": "n", "phone": "1", "email": "e@example.invalid",
               "time_zone": "UTC", "office_hours": "sometimes"}),
    )
    .await;
    api.get("wang", "/api/v1/directory").await;

    // Users and tokens.
    api.get("admin", "/api/v1/users").await;
    api.get("alice", "/api/v1/users").await;
    // Joint cases: opened, read by an invitee, a change the invitee may not make.
    let case = api
        .post(
            "alice",
            "/api/v1/cases",
            json!({"name": "Operation Golden API", "reference": "JTF-GA", "invite": ["CN-MPS"]}),
        )
        .await;
    let case = s(&case.body, "/id");
    api.get("wang", &format!("/api/v1/cases/{case}")).await;
    api.post(
        "wang",
        &format!("/api/v1/cases/{case}/state"),
        json!({"state": "closed"}),
    )
    .await;
    api.post("alice", "/api/v1/cases", json!({"name": "x", "reference": "JTF-GA"}))
        .await;
    api.get("alice", "/api/v1/cases").await;
    api.post(
        "admin",
        "/api/v1/users",
        json!({"username": "liu", "display_name": "Liu Yang", "agency": "CN-MPS", "role": "legal_reviewer"}),
    )
    .await;
    api.post(
        "admin",
        "/api/v1/users",
        json!({"username": "liu", "display_name": "Liu Yang", "agency": "CN-MPS", "role": "legal_reviewer"}),
    )
    .await;
    api.post(
        "admin",
        "/api/v1/users",
        json!({"username": "kim", "display_name": "Kim", "agency": "FBI", "role": "boss"}),
    )
    .await;
    api.post(
        "admin",
        "/api/v1/users",
        json!({"username": "kim", "display_name": "Kim", "agency": "NOPE", "role": "officer"}),
    )
    .await;
    api.post(
        "alice",
        "/api/v1/users",
        json!({"username": "kim", "display_name": "Kim", "agency": "FBI", "role": "officer"}),
    )
    .await;
    for who in ["li", "ann", "chen", "sam", "zhou", "ana", "liu"] {
        let t = api
            .post(
                "admin",
                "/api/v1/tokens",
                json!({"username": who, "label": "golden", "days": 7}),
            )
            .await;
        api.tokens.insert(who.into(), s(&t.body, "/token"));
    }
    api.post("admin", "/api/v1/tokens", json!({"username": "nobody"})).await;
    api.post("admin", "/api/v1/tokens", json!({"username": "ann", "days": -1}))
        .await;
    api.post("admin", "/api/v1/tokens", json!({"username": "ann", "days": 0}))
        .await;
    api.post("admin", "/api/v1/tokens", json!({"username": "ann", "days": 100000}))
        .await;
    api.post("alice", "/api/v1/tokens", json!({"username": "alice"})).await;
    api.get("liu", "/api/v1/me").await;

    // A request through the API.
    let created = api
        .post("alice", "/api/v1/requests", draft(fbi, mps, "FBI-2026-30"))
        .await;
    let id = s(&created.body, "/id");
    let rq = format!("/api/v1/requests/{id}");
    api.get("alice", &rq).await;
    api.get("wang", &rq).await;
    api.get("admin", &rq).await;
    api.get("alice", &format!("/api/v1/requests/{UNKNOWN_ID}")).await;
    api.get("alice", "/api/v1/requests/not-an-id").await;
    let mut changed = draft(fbi, mps, "FBI-2026-30");
    changed["summary"] = json!("Account used to control the botnet (amended)");
    changed["urgency"] = json!("urgent");
    api.call(
        Auth::User("alice"),
        "PUT",
        &rq,
        Body::Json(json!({"version": 1, "draft": changed})),
    )
    .await;
    api.call(
        Auth::User("alice"),
        "PUT",
        &rq,
        Body::Json(json!({"version": 1, "draft": changed})),
    )
    .await;
    api.call(Auth::User("alice"), "PUT", &rq, Body::Json(json!({"draft": changed})))
        .await;
    let mut bad = changed.clone();
    bad["offences"] = json!([]);
    bad["case_reference"] = json!("");
    api.call(
        Auth::User("alice"),
        "PUT",
        &rq,
        Body::Json(json!({"version": 2, "draft": bad})),
    )
    .await;
    api.get("alice", &format!("{rq}/transitions")).await;
    api.post("alice", &format!("{rq}/transitions"), json!({"to": "submitted"}))
        .await;
    api.post(
        "alice",
        &format!("{rq}/transitions"),
        json!({"version": 2, "to": "launched"}),
    )
    .await;
    api.post(
        "alice",
        &format!("{rq}/transitions"),
        json!({"version": 2, "to": "submitted", "mood": "hopeful"}),
    )
    .await;
    api.post(
        "alice",
        &format!("{rq}/transitions"),
        json!({"version": 1, "to": "submitted"}),
    )
    .await;
    let sub = api
        .post(
            "alice",
            &format!("{rq}/transitions"),
            json!({"version": 2, "to": "submitted"}),
        )
        .await;
    let mut version = sub.body.pointer("/version").and_then(Value::as_i64).unwrap_or(0);
    api.call(
        Auth::User("alice"),
        "PUT",
        &rq,
        Body::Json(json!({"version": version, "draft": changed})),
    )
    .await;
    api.get("wang", &format!("{rq}/transitions")).await;
    api.post(
        "wang",
        &format!("{rq}/transitions"),
        json!({"version": version, "to": "answered"}),
    )
    .await;
    api.post(
        "alice",
        &format!("{rq}/transitions"),
        json!({"version": version, "to": "acknowledged"}),
    )
    .await;
    for (who, to) in [("wang", "acknowledged"), ("li", "in_review"), ("li", "accepted")] {
        let r = api
            .post(who, &format!("{rq}/transitions"), json!({"version": version, "to": to}))
            .await;
        version = r.body.pointer("/version").and_then(Value::as_i64).unwrap_or(version);
    }
    api.post(
        "chen",
        &format!("{rq}/transitions"),
        json!({"version": version - 1, "to": "executing"}),
    )
    .await;
    api.post(
        "chen",
        &format!("{rq}/comments"),
        json!({"text": "Provider order issued"}),
    )
    .await;
    api.post("chen", &format!("{rq}/comments"), json!({"text": ""})).await;
    api.post("chen", &format!("{rq}/comments"), json!({"text": "x", "urgent": true}))
        .await;
    api.post("ann", &format!("{rq}/comments"), json!({"text": "audit note"}))
        .await;
    api.post(
        "alice",
        &format!("/api/v1/requests/{UNKNOWN_ID}/comments"),
        json!({"text": "hello"}),
    )
    .await;
    api.get("alice", &format!("{rq}/events")).await;
    api.get("ann", &format!("{rq}/events")).await;
    api.get("li", &format!("/api/v1/requests/{}/events", f.closed_request))
        .await;

    // Body errors.
    let requests = "/api/v1/requests";
    api.call(
        Auth::User("alice"),
        "POST",
        requests,
        Body::Raw("application/json", b"{\"kind\": ".to_vec()),
    )
    .await;
    api.call(
        Auth::User("alice"),
        "POST",
        requests,
        Body::Raw("application/json", vec![]),
    )
    .await;
    api.call(Auth::User("alice"), "POST", requests, Body::Raw("", vec![]))
        .await;
    api.call(
        Auth::User("alice"),
        "POST",
        requests,
        Body::Raw("text/plain", b"kind=subscriber_information".to_vec()),
    )
    .await;
    api.call(
        Auth::User("alice"),
        "POST",
        requests,
        Body::Raw("application/json", b"[1, 2, 3]".to_vec()),
    )
    .await;
    let mut extra = draft(fbi, mps, "FBI-2026-31");
    extra["priority"] = json!("high");
    api.post("alice", requests, extra).await;
    let mut wrong_kind = draft(fbi, mps, "FBI-2026-31");
    wrong_kind["kind"] = json!("gossip");
    api.post("alice", requests, wrong_kind).await;
    let mut bad_target = draft(fbi, mps, "FBI-2026-31");
    bad_target["targets"][0]["from"] = json!("last week");
    api.post("alice", requests, bad_target).await;
    let mut invalid = draft(fbi, mps, "");
    invalid["offences"] = json!(["BC-99"]);
    invalid["summary"] = json!("");
    api.post("alice", requests, invalid).await;
    api.post("wang", requests, draft(fbi, mps, "FBI-2026-31")).await;
    api.post("chen", requests, draft(fbi, mps, "FBI-2026-31")).await;
    api.post("admin", requests, draft(fbi, mps, "FBI-2026-31")).await;
    let mut big = b"{\"summary\": \"".to_vec();
    big.resize(1024 * 1024 + 1, b'a');
    api.call(
        Auth::User("alice"),
        "POST",
        requests,
        Body::Raw("application/json", big),
    )
    .await;
    let second = api.post("sam", requests, draft(fbi, mps, "FBI-2026-32")).await;
    let second = s(&second.body, "/id");

    // Listing.
    api.get("alice", "/api/v1/requests").await;
    api.get("alice", "/api/v1/requests?view=full").await;
    api.get("alice", "/api/v1/requests?format=csv").await;
    api.get("alice", "/api/v1/requests?view=compact").await;
    api.get("wang", "/api/v1/requests").await;
    api.get(
        "wang",
        "/api/v1/requests?state=accepted,refused&kind=subscriber_information",
    )
    .await;
    api.get("alice", &format!("/api/v1/requests?requested={mps}&state=draft"))
        .await;
    api.get(
        "alice",
        &format!("/api/v1/requests?requesting={fbi}&kind=stored_content"),
    )
    .await;
    let page = api.get("alice", "/api/v1/requests?limit=2").await;
    let next = s(&page.body, "/next");
    api.get("alice", &format!("/api/v1/requests?limit=2&cursor={next}"))
        .await;
    api.get("alice", "/api/v1/requests?updated_since=2000-01-01T00:00:00Z&limit=1")
        .await;
    api.get("alice", "/api/v1/requests?overdue=true").await;
    api.get("alice", "/api/v1/requests?overdue=maybe").await;
    api.get("alice", "/api/v1/requests?state=bogus").await;
    api.get("alice", "/api/v1/requests?kind=bogus").await;
    api.get("alice", "/api/v1/requests?limit=0").await;
    api.get("alice", "/api/v1/requests?limit=501").await;
    api.get("alice", "/api/v1/requests?cursor=zzz").await;
    api.get("alice", "/api/v1/requests?requested=CN-MPS").await;
    api.get("alice", "/api/v1/requests?updated_since=yesterday").await;
    api.get("ann", "/api/v1/requests?limit=1").await;
    api.get("admin", "/api/v1/requests").await;
    api.get("alice", "/api/v1/requests/overdue").await;
    api.get("wang", "/api/v1/requests/overdue?view=full").await;
    api.get("admin", "/api/v1/requests/overdue").await;

    // Assessments.
    let assessments = "/api/v1/assessments";
    api.post(
        "alice",
        assessments,
        json!({"input": {"requesting": "CN", "requested": "US", "kind": "subscriber_information", "urgency": "routine",
                         "offences": ["OBSCENE-DISSEMINATION"], "conduct": ["for_profit"], "as_of": "2026-03-01T00:00:00Z"}}),
    )
    .await;
    api.post("alice", assessments, json!({"draft": draft(fbi, mps, "FBI-2026-33")}))
        .await;
    api.post("alice", assessments, json!({"request": id})).await;
    api.post("wang", assessments, json!({"request": second})).await;
    api.post("alice", assessments, json!({"request": UNKNOWN_ID})).await;
    api.post("alice", assessments, json!({})).await;
    api.post(
        "alice",
        assessments,
        json!({"input": {"requesting": "CN", "requested": "XX", "kind": "subscriber_information", "urgency": "routine",
                         "offences": ["BC-02"], "as_of": "2026-03-01T00:00:00Z"}}),
    )
    .await;
    api.post(
        "alice",
        assessments,
        json!({"input": {"requesting": "CN", "requested": "US", "kind": "subscriber_information", "urgency": "routine",
                         "offences": ["BC-02"], "as_of": "2026-03-01T00:00:00Z"}, "verbose": true}),
    )
    .await;

    // Reports and the audit log.
    let report = "/api/v1/reports/cooperation";
    api.get("ann", report).await;
    api.get("ann", &format!("{report}?format=csv")).await;
    api.get("admin", &format!("{report}?by=jurisdiction&format=json")).await;
    api.get("zhou", report).await;
    api.get(
        "ann",
        &format!("{report}?from=2001-01-01T00:00:00Z&to=2002-01-01T00:00:00Z"),
    )
    .await;
    api.get(
        "ann",
        &format!("{report}?from=2002-01-01T00:00:00Z&to=2001-01-01T00:00:00Z"),
    )
    .await;
    api.get("ann", &format!("{report}?from=yesterday")).await;
    api.get("ann", &format!("{report}?by=planet")).await;
    api.get("ann", &format!("{report}?format=xml")).await;
    api.get("ann", &format!("{report}?group=agency")).await;
    api.get("alice", report).await;
    api.get("ann", "/api/v1/audit/verify").await;
    api.get("admin", "/api/v1/audit/verify").await;
    api.get("alice", "/api/v1/audit/verify").await;

    // Network clean-up (intel).
    let feed = "# golden feed\n203.0.113.5\n203.0.113.9\n203.0.113.5\n198.51.100.7\n192.0.2.44\nevil.example.net\nhttp://203.0.113.9/panel.php\nnot an indicator at all\n";
    api.call(
        Auth::User("admin"),
        "POST",
        "/api/v1/intel/ingest?format=list&feed=golden&wait=true",
        Body::Raw("text/plain", feed.as_bytes().to_vec()),
    )
    .await;
    api.call(
        Auth::User("admin"),
        "POST",
        "/api/v1/intel/ingest?format=xml",
        Body::Raw("text/plain", b"x".to_vec()),
    )
    .await;
    api.call(
        Auth::User("admin"),
        "POST",
        "/api/v1/intel/ingest",
        Body::Raw("text/plain", b"x".to_vec()),
    )
    .await;
    api.call(
        Auth::User("wang"),
        "POST",
        "/api/v1/intel/ingest?format=list",
        Body::Raw("text/plain", b"203.0.113.77\n".to_vec()),
    )
    .await;
    api.call(Auth::User("wang"), "POST", "/api/v1/intel/notices/issue", Body::None)
        .await;
    api.call(Auth::User("admin"), "POST", "/api/v1/intel/notices/issue", Body::None)
        .await;
    api.call(
        Auth::User("admin"),
        "POST",
        "/api/v1/intel/notices/issue?since=soon",
        Body::None,
    )
    .await;
    api.get("admin", "/api/v1/intel/notices").await;
    api.get("admin", "/api/v1/intel/notices?format=csv").await;
    api.get("admin", "/api/v1/intel/notices?format=xml").await;
    let mine = api.get("wang", "/api/v1/intel/notices").await;
    api.get("wang", "/api/v1/intel/notices?partner=FBI").await;
    api.get("alice", "/api/v1/intel/notices").await;
    let item = s(&mine.body, "/0/items/0/item_id");
    api.post(
        "wang",
        "/api/v1/intel/feedback",
        json!({"partner": "CN-MPS", "item": item, "status": "remediated", "note": "host cleaned"}),
    )
    .await;
    api.post(
        "wang",
        "/api/v1/intel/feedback",
        json!({"partner": "FBI", "item": item, "status": "remediated"}),
    )
    .await;
    api.post(
        "wang",
        "/api/v1/intel/feedback",
        json!({"item": item, "status": "maybe"}),
    )
    .await;
    api.post(
        "admin",
        "/api/v1/intel/feedback",
        json!({"item": item, "status": "disputed"}),
    )
    .await;
    api.post(
        "wang",
        "/api/v1/intel/feedback",
        json!({"item": UNKNOWN_ID, "status": "not-found"}),
    )
    .await;
    api.call(
        Auth::User("wang"),
        "POST",
        "/api/v1/intel/feedback",
        Body::Raw("application/json", b"{\"item\": 5}".to_vec()),
    )
    .await;
    api.get("admin", "/api/v1/intel/stats").await;
    api.get("ana", "/api/v1/intel/stats?by=partner").await;
    api.get("ann", "/api/v1/intel/stats?by=classification&country=CN").await;
    api.get("admin", "/api/v1/intel/stats?by=planet").await;
    api.get("admin", "/api/v1/intel/stats?by=country&victim_country=China")
        .await;
    api.get("admin", "/api/v1/intel/stats?by=country&asn=ASx").await;
    api.get("wang", "/api/v1/intel/stats").await;

    // Routing.
    api.get("alice", "/api/v1/nope").await;
    api.call(Auth::User("alice"), "DELETE", &rq, Body::None).await;
    api.call(Auth::None, "POST", "/api/v1/health", Body::None).await;
}

// ----- normalisation -------------------------------------------------------------------------

struct Normaliser {
    /// Literal replacements (temporary paths, ports), longest first.
    replace: Vec<(String, String)>,
    /// Integers in this range are Unix times in seconds (five years either side of the run).
    unix_secs: std::ops::RangeInclusive<i64>,
    /// Kept verbatim although they look like volatile hashes.
    keep: Vec<String>,
    ids: HashMap<String, usize>,
    hashes: HashMap<String, usize>,
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

fn ends_word(b: &[u8], end: usize) -> bool {
    end >= b.len() || !b[end].is_ascii_alphanumeric()
}

fn uuid_at(b: &[u8], i: usize) -> Option<usize> {
    let w = b.get(i..i + 36)?;
    let ok = w.iter().enumerate().all(|(k, &c)| {
        if [8, 13, 18, 23].contains(&k) {
            c == b'-'
        } else {
            is_hex(c)
        }
    });
    (ok && ends_word(b, i + 36)).then_some(36)
}

fn hex64_at(b: &[u8], i: usize) -> Option<usize> {
    let w = b.get(i..i + 64)?;
    (w.iter().all(|&c| is_hex(c)) && ends_word(b, i + 64) && !b.get(i + 64).is_some_and(|&c| is_hex(c))).then_some(64)
}

fn token_at(b: &[u8], i: usize) -> Option<usize> {
    (b.get(i..i + 4)? == b"lia_" && hex64_at(b, i + 4).is_some()).then_some(68)
}

/// A federation key id: `ed25519:` and hex digits.
fn key_id_at(b: &[u8], i: usize) -> Option<usize> {
    let prefix = b"ed25519:";
    if b.get(i..i + prefix.len())? != prefix {
        return None;
    }
    let n = b[i + prefix.len()..].iter().take_while(|c| is_hex(**c)).count();
    (n >= 8 && ends_word(b, i + prefix.len() + n)).then_some(prefix.len() + n)
}

fn digits(b: &[u8], i: usize, n: usize) -> bool {
    b.get(i..i + n).is_some_and(|w| w.iter().all(u8::is_ascii_digit))
}

/// `YYYY-MM-DD(T| )HH:MM[:SS[.f+]][Z|±HH:MM]`.
fn instant_at(b: &[u8], i: usize) -> Option<usize> {
    let date = digits(b, i, 4)
        && b.get(i + 4) == Some(&b'-')
        && digits(b, i + 5, 2)
        && b.get(i + 7) == Some(&b'-')
        && digits(b, i + 8, 2);
    let sep = matches!(b.get(i + 10), Some(b'T' | b' '));
    if !(date && sep && digits(b, i + 11, 2) && b.get(i + 13) == Some(&b':') && digits(b, i + 14, 2)) {
        return None;
    }
    let mut j = i + 16;
    if b.get(j) == Some(&b':') && digits(b, j + 1, 2) {
        j += 3;
        if b.get(j) == Some(&b'.') && digits(b, j + 1, 1) {
            j += 1;
            while b.get(j).is_some_and(u8::is_ascii_digit) {
                j += 1;
            }
        }
    }
    if b.get(j) == Some(&b'Z') {
        j += 1;
    } else if matches!(b.get(j), Some(b'+' | b'-'))
        && digits(b, j + 1, 2)
        && b.get(j + 3) == Some(&b':')
        && digits(b, j + 4, 2)
    {
        j += 6;
    }
    Some(j - i)
}

impl Normaliser {
    fn new(replace: &[(String, String)], keep: &[String]) -> Self {
        let mut replace = replace.to_vec();
        // A request's reference carries the year of its creation in its agency's zone.
        let year = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).year();
        for code in ["FBI", "CN-MPS"] {
            for y in [year - 1, year, year + 1] {
                // (References below 1000 start with 0; the test's case references do not.)
                replace.push((format!("{code}-{y}-0"), format!("{code}-<year>-0")));
            }
        }
        replace.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let five_years = 5 * 366 * 86_400;
        Normaliser {
            replace,
            unix_secs: now - five_years..=now + five_years,
            keep: keep.to_vec(),
            ids: HashMap::new(),
            hashes: HashMap::new(),
        }
    }

    fn string(&mut self, s: &str) -> String {
        let mut s = s.to_string();
        for (from, to) in &self.replace {
            s = s.replace(from.as_str(), to);
        }
        let b = s.as_bytes();
        let mut out = String::with_capacity(s.len());
        let mut i = 0;
        while i < b.len() {
            if i == 0 || !b[i - 1].is_ascii_alphanumeric() {
                if let Some(n) = token_at(b, i) {
                    out.push_str("<token>");
                    i += n;
                    continue;
                }
                if let Some(n) = key_id_at(b, i) {
                    out.push_str("ed25519:<key-id>");
                    i += n;
                    continue;
                }
                if let Some(n) = uuid_at(b, i) {
                    let next = self.ids.len() + 1;
                    let k = *self.ids.entry(s[i..i + n].to_ascii_lowercase()).or_insert(next);
                    out.push_str(&format!("<id:{k}>"));
                    i += n;
                    continue;
                }
                if let Some(n) = hex64_at(b, i) {
                    let h = &s[i..i + n];
                    if self.keep.iter().any(|k| k == h) {
                        out.push_str(h);
                    } else {
                        let next = self.hashes.len() + 1;
                        let k = *self.hashes.entry(h.to_ascii_lowercase()).or_insert(next);
                        out.push_str(&format!("<hash:{k}>"));
                    }
                    i += n;
                    continue;
                }
                if let Some(n) = instant_at(b, i) {
                    out.push_str("<instant>");
                    i += n;
                    continue;
                }
            }
            let ch = s[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
        out
    }

    fn value(&mut self, v: &Value) -> Value {
        match v {
            Value::String(x) => Value::String(self.string(x)),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.value(x)).collect()),
            Value::Object(m) => {
                let always_open = m.get("office_hours") == Some(&json!("24/7"));
                // A plan step's "why" for preservation counts days from the assessment's
                // instant, which is now for stored requests.
                let counts_days = m
                    .get("code")
                    .and_then(Value::as_str)
                    .is_some_and(|c| c.starts_with("why.preserve_"));
                let mut out = Map::new();
                for (k, x) in m {
                    let nx = match (k.as_str(), x) {
                        ("local_time", Value::String(_)) => json!("<local-time>"),
                        ("days_left", Value::Number(_)) => json!("<days-left>"),
                        ("params", Value::Object(p)) if counts_days && p.contains_key("days") => {
                            let mut p = p.clone();
                            p.insert("days".into(), json!("<days-left>"));
                            Value::Object(p)
                        }
                        ("disk_free_bytes", Value::Number(_)) => json!("<bytes>"),
                        // The first integrity check runs in the background: pending or ok.
                        ("integrity", Value::Object(i))
                            if i.get("state").is_some_and(|s| s == "ok" || s == "pending") =>
                        {
                            json!("<integrity-ok-or-pending>")
                        }
                        // Audit anchors are written by a background task (every 60 s and at
                        // start), so how many exist when a request arrives depends on timing.
                        ("anchors_checked" | "last_anchored_seq" | "ledger_audit_anchors", _) => json!("<anchors>"),
                        ("open", Value::Bool(_)) if m.contains_key("local_time") && !always_open => {
                            json!("<open-now>")
                        }
                        (k, Value::Number(_))
                            if DURATION_KEYS.contains(&k)
                                || k.ends_with("_secs")
                                || k.ends_with("per_sec")
                                || k.ends_with("_write_ms") =>
                        {
                            json!("<duration>")
                        }
                        _ => self.value(x),
                    };
                    let nk = self.string(k);
                    out.insert(nk, nx);
                }
                Value::Object(out)
            }
            Value::Number(n) if n.as_i64().is_some_and(|t| self.unix_secs.contains(&t)) => json!("<unix-time>"),
            other => other.clone(),
        }
    }
}

// ----- comparison ----------------------------------------------------------------------------

fn label(e: &Value) -> String {
    if let Some(args) = e["args"].as_array() {
        let a: Vec<&str> = args.iter().filter_map(Value::as_str).collect();
        format!("liaison {}", a.join(" "))
    } else {
        format!(
            "{} {} (as {})",
            e["method"].as_str().unwrap_or("?"),
            e["path"].as_str().unwrap_or("?"),
            e["auth"]
        )
    }
}

/// The first JSON pointer at which two values differ (a missing key or element included).
fn first_difference(a: &Value, b: &Value, at: String) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys()) {
                let here = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => {
                        if let Some(d) = first_difference(p, q, here) {
                            return Some(d);
                        }
                    }
                    _ => return Some(here),
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) => {
            for n in 0..x.len().max(y.len()) {
                match (x.get(n), y.get(n)) {
                    (Some(p), Some(q)) => {
                        if let Some(d) = first_difference(p, q, format!("{at}/{n}")) {
                            return Some(d);
                        }
                    }
                    _ => return Some(format!("{at}/{n}")),
                }
            }
            None
        }
        _ => (a != b).then_some(at),
    }
}

/// Pretty JSON cut to `max` lines.
fn excerpt(v: &Value, max: usize) -> String {
    let text = serde_json::to_string_pretty(v).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= max {
        text
    } else {
        format!("{}\n  … ({} more lines)", lines[..max].join("\n"), lines.len() - max)
    }
}

/// Writes the golden file (LIAISON_BLESS=1) or compares with it; returns a report on mismatch.
fn check(name: &str, entries: Vec<Value>) -> Option<String> {
    let got = json!({"transcript": name, "entries": entries});
    let text = serde_json::to_string_pretty(&got).unwrap() + "\n";
    let path = Path::new(GOLDEN_DIR).join(format!("{name}.json"));
    if std::env::var("LIAISON_BLESS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(GOLDEN_DIR).unwrap();
        std::fs::write(&path, &text).unwrap();
        eprintln!("blessed {} ({} entries)", path.display(), entries_len(&got));
        return None;
    }
    let expected_text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            return Some(format!(
                "cannot read {} ({e}); run with LIAISON_BLESS=1 to create it\n",
                path.display()
            ));
        }
    };
    if expected_text == text {
        return None;
    }
    let actual = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("golden-{name}.actual.json"));
    std::fs::write(&actual, &text).unwrap();
    let expected: Value = serde_json::from_str(&expected_text).unwrap_or(Value::Null);
    let empty = vec![];
    let exp = expected["entries"].as_array().unwrap_or(&empty);
    let act = got["entries"].as_array().unwrap_or(&empty);
    let mut report = format!(
        "golden transcript {name} differs: expected {} entries, got {}\n  expected: {}\n  got:      {}\n  \
         (diff the two files; LIAISON_BLESS=1 rewrites the golden file if the change is intended)\n",
        exp.len(),
        act.len(),
        path.display(),
        actual.display()
    );
    let mut shown = 0;
    for i in 0..exp.len().max(act.len()) {
        let (e, a) = (exp.get(i).unwrap_or(&Value::Null), act.get(i).unwrap_or(&Value::Null));
        if e == a {
            continue;
        }
        let at = first_difference(e, a, String::new()).unwrap_or_default();
        let missing = json!("<absent>");
        report += &format!(
            "\n--- entry {i}: {}\n    first difference at {at}:\n    expected: {}\n    got:      {}\n\
             expected entry:\n{}\ngot entry:\n{}\n",
            label(if e.is_null() { a } else { e }),
            excerpt(e.pointer(&at).unwrap_or(&missing), 12),
            excerpt(a.pointer(&at).unwrap_or(&missing), 12),
            excerpt(e, 40),
            excerpt(a, 40)
        );
        shown += 1;
        if shown == 3 {
            report += "\n(further differences not shown)\n";
            break;
        }
    }
    if shown == 0 {
        report += "\nthe entries are equal: only the file's formatting differs\n";
    }
    Some(report)
}

fn entries_len(v: &Value) -> usize {
    v["entries"].as_array().map_or(0, Vec::len)
}

#[test]
fn golden_transcripts() {
    let t0 = Instant::now();
    let raw_base = common::unique_dir("liaison-golden");
    let base = raw_base.canonicalize().unwrap();
    let mut cli = Cli {
        dir: base.join("node"),
        base: base.clone(),
        fed_listen: format!("127.0.0.1:{}", free_port()),
        entries: vec![],
    };
    let fixture = cli_session(&mut cli);

    // Routes for the intel ingest of the API part.
    let toml = cli.dir.join("liaison.toml");
    let mut config = std::fs::read_to_string(&toml).unwrap();
    config += "\n[intel]\n[[intel.routes]]\ncidr = \"203.0.113.0/24\"\npartner = \"CN-MPS\"\n\
               [[intel.routes]]\ncidr = \"198.51.100.0/24\"\npartner = \"FBI\"\n";
    std::fs::write(&toml, config).unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // reqwest is built with rustls (through the workspace); it needs a crypto provider even for http.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut replace = vec![
        (base.display().to_string(), "<tmp>".to_string()),
        (raw_base.display().to_string(), "<tmp>".to_string()),
        (cli.fed_listen.clone(), "127.0.0.1:<federation-port>".to_string()),
    ];
    let api_entries = rt.block_on(async {
        let (server, url) = start_server(&cli).await;
        replace.push((
            url.trim_start_matches("http://").to_string(),
            "127.0.0.1:<api-port>".into(),
        ));
        let mut tokens = HashMap::new();
        for (who, t) in [
            ("admin", &fixture.admin_token),
            ("alice", &fixture.alice_token),
            ("wang", &fixture.wang_token),
            ("revoked", &fixture.revoked_token),
            ("erin", &fixture.erin_token),
        ] {
            tokens.insert(who.to_string(), t.clone());
        }
        // Users without a token of their own get one through the API (see the session).
        let mut api = Api {
            base: url,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            tokens,
            entries: vec![],
        };
        api_session(&mut api, &fixture).await;
        drop(server);
        api.entries
    });

    let keep = vec![fixture.rule_pack_version.clone()];
    let cli_entries = {
        let mut n = Normaliser::new(&replace, &keep);
        cli.entries.iter().map(|e| n.value(e)).collect::<Vec<_>>()
    };
    let api_entries = {
        let mut n = Normaliser::new(&replace, &keep);
        api_entries.iter().map(|e| n.value(e)).collect::<Vec<_>>()
    };
    eprintln!(
        "golden: {} CLI entries, {} API entries, {:.1} s",
        cli_entries.len(),
        api_entries.len(),
        t0.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&base);
    let reports: Vec<String> = [check("cli", cli_entries), check("api", api_entries)]
        .into_iter()
        .flatten()
        .collect();
    assert!(reports.is_empty(), "{}", reports.join("\n"));
}
