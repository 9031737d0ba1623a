//! What the integration tests of `liaison-cli` share to run real `liaison` processes: the
//! binary, free ports, unique temporary directories, waiting with a timeout, starting
//! `liaison serve` and reading its log, running a command and checking that it succeeded.
//!
//! Each test file is its own crate and includes this module with `mod common;`; an item that a
//! file does not use is dead code there, hence the `allow`s.

pub mod fed;

use serde_json::Value;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `liaison` binary under test.
#[allow(dead_code)]
pub const BIN: &str = env!("CARGO_BIN_EXE_liaison");

/// The `init` arguments of the FBI agency most tests start from (after `init`).
#[allow(dead_code)]
pub const FBI_AGENCY: [&str; 8] = [
    "--agency-code",
    "FBI",
    "--agency-name",
    "Federal Bureau of Investigation",
    "--jurisdiction",
    "US",
    "--time-zone",
    "America/New_York",
];

/// `directory add-agency` of CN-MPS as a partner agency.
#[allow(dead_code)]
pub const ADD_CN_MPS: [&str; 9] = [
    "directory",
    "add-agency",
    "CN-MPS",
    "--name",
    "Ministry of Public Security",
    "--jurisdiction",
    "CN",
    "--time-zone",
    "Asia/Shanghai",
];

/// Adds an agency served by the node at `dir` to its directory, and users of it
/// (`(name, role)`).
#[allow(dead_code)]
pub fn add_agency(dir: &Path, code: &str, name: &str, jurisdiction: &str, tz: &str, users: &[(&str, &str)]) {
    cmd(dir)
        .args([
            "directory",
            "add-agency",
            code,
            "--name",
            name,
            "--jurisdiction",
            jurisdiction,
        ])
        .args(["--kind", "police", "--time-zone", tz])
        .assert()
        .success();
    for (user, role) in users {
        cmd(dir)
            .args(["user", "add", user, "--agency", code, "--role", role])
            .assert()
            .success();
    }
}

/// A free port on 127.0.0.1 for a listener whose address is written down (in a node's
/// configuration and its descriptor) before the node binds it, so it must stay free in between.
/// Ports the kernel hands out for `bind(0)` and for outgoing connections (Linux: 32768–60999)
/// can be taken by anyone in that gap; these come from 20000–31999, distinct within this test
/// process (a counter, starting at `start`), and are checked free before use.
#[allow(dead_code)]
pub fn free_port_from(start: u16) -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (start + n) % 12_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
        assert!(n < 12_000, "no free port below the ephemeral range");
    }
}

/// A start for [`free_port_from`] that spreads concurrent runs (by process id, 30 ports
/// apart); `offset` keeps test files of one run apart.
#[allow(dead_code)]
pub fn port_slot(offset: u16) -> u16 {
    (std::process::id() % 400) as u16 * 30 + offset
}

/// A new directory `{stem}-{process id}-{nanoseconds since the epoch}` in the temporary
/// directory.
#[allow(dead_code)]
pub fn unique_dir(stem: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let d = std::env::temp_dir().join(format!("{stem}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Tests that take this lock run one at a time (ports, CPU); a test that panicked while
/// holding it does not stop the others.
#[allow(dead_code)]
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Calls `f` every `every` until it holds (true) or `timeout` has passed since the first call
/// (false).
#[allow(dead_code)]
pub fn poll_until(timeout: Duration, every: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while !f() {
        if t0.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(every);
    }
    true
}

/// Text without ANSI colour escapes.
#[allow(dead_code)]
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\u{1b}' {
            for d in it.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A log file's text so far (empty if it is not there yet).
#[allow(dead_code)]
pub fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The API address (`127.0.0.1:PORT`) in `liaison serve`'s "serving on http://…" log line.
#[allow(dead_code)]
pub fn served_address(line: &str) -> Option<&str> {
    line.split("serving on http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
}

/// SIGKILL (no shutdown code runs, as in a crash) and reap, if the process is running.
#[allow(dead_code)]
pub fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// `liaison --data-dir DIR` without the caller's user and database settings, logging errors
/// only.
#[allow(dead_code)]
pub fn liaison(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--data-dir")
        .arg(dir)
        .env_remove("LIAISON_USER")
        .env_remove("LIAISON_DATABASE_URL")
        .env("LIAISON_LOG", "error");
    c
}

/// [`liaison`] as an `assert_cmd` command.
#[allow(dead_code)]
pub fn cmd(dir: &Path) -> assert_cmd::Command {
    assert_cmd::Command::from_std(liaison(dir))
}

/// Runs a command with `--json`; it must succeed (else the test fails with its stdout and
/// stderr); its output parsed.
#[allow(dead_code)]
pub fn ok_json(c: &mut assert_cmd::Command) -> Value {
    let out = c.arg("--json").output().unwrap();
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `liaison --data-dir DIR ARGS…`, logging warnings; not yet run.
#[allow(dead_code)]
pub fn data_dir_command(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--data-dir").arg(dir).args(args).env("LIAISON_LOG", "warn");
    c
}

/// The stdout of a command that must have succeeded; else the test fails with
/// "`what` failed: " and the command's stdout and stderr.
#[allow(dead_code)]
pub fn ok_stdout(o: &Output, what: impl Display) -> String {
    assert!(
        o.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Writes the node's peer file (next to its data directory) and returns (path, fingerprint).
#[allow(dead_code)]
pub fn peer_file(dir: &Path) -> (PathBuf, String) {
    let path = dir.with_extension("peer.json");
    let o = data_dir_command(dir, &["federation", "descriptor", "--out", path.to_str().unwrap()])
        .output()
        .unwrap();
    // Says why when it fails (it failed once under load, at the three-node leak test's set-up).
    assert!(
        o.status.success(),
        "federation descriptor in {} failed ({}): {}{}",
        dir.display(),
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    let fp = err
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint: "))
        .unwrap()
        .trim()
        .to_string();
    (path, fp)
}

/// Starts `liaison serve` (API on a port the kernel picks) on `dir` with short federation
/// intervals and `env` on top, its stderr appended to `log`.
#[allow(dead_code)]
pub fn spawn_federated(dir: &Path, log: &Path, env: &[(&str, &str)]) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("LIAISON_LOG", "info")
        .env("NO_COLOR", "1")
        .env("LIAISON_FED_POLL_MS", "20")
        .env("LIAISON_FED_RETRY_BASE_MS", "50")
        .env("LIAISON_FED_RETRY_MAX_MS", "400")
        .env("LIAISON_FED_STH_MS", "300")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Waits (polling every 50 ms, up to 20 s) until 127.0.0.1:`port` accepts connections. The
/// test fails if `child` exits first ("`who` exited on start", with `log()`), or, when time
/// runs out, with "`who` `too_slow`".
#[allow(dead_code)]
pub fn wait_listening(child: &mut Child, port: u16, who: &str, log: impl Fn() -> String, too_slow: &str) {
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{who} exited on start ({status}):\n{}", log());
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "{who} {too_slow}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `request create` of a subscriber-information request to CN-MPS for `case` (offence BC-02),
/// as `user`.
#[allow(dead_code)]
pub fn create_request_args<'a>(user: &'a str, case: &'a str, summary: &'a str) -> Vec<&'a str> {
    vec![
        "--as",
        user,
        "request",
        "create",
        "--kind",
        "subscriber_information",
        "--to",
        "CN-MPS",
        "--case",
        case,
        "--offence",
        "BC-02",
        "--summary",
        summary,
    ]
}

/// [`create_request_args`] as `officer`, asking for the subscriber of a ransomware C2 server.
#[allow(dead_code)]
pub fn officer_request_args(case: &str) -> Vec<&str> {
    create_request_args(
        "officer",
        case,
        "Subscriber details of the VPS account used as ransomware C2.",
    )
}

/// The `init` arguments of a node of its own agency `code` (also its name) with a federation
/// identity `node_id` listening on `listen`.
#[allow(dead_code)]
pub fn node_init_args<'a>(
    code: &'a str,
    jurisdiction: &'a str,
    tz: &'a str,
    node_id: &'a str,
    listen: &'a str,
) -> Vec<&'a str> {
    vec![
        "--agency-code",
        code,
        "--agency-name",
        code,
        "--jurisdiction",
        jurisdiction,
        "--time-zone",
        tz,
        "--node-id",
        node_id,
        "--federation-listen",
        listen,
    ]
}

/// The state of a request from the output of `--json request show` (None if it failed).
#[allow(dead_code)]
pub fn request_state(o: &Output) -> Option<String> {
    o.status.success().then(|| {
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        v["request"]["state"].as_str().unwrap_or_default().to_string()
    })
}

/// The comment texts of `request show`, in order.
#[allow(dead_code)]
pub fn comments(show: &Value) -> Vec<String> {
    show["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "comment")
        .map(|e| e["reason"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// How many messages of `federation messages` are not yet delivered.
#[allow(dead_code)]
pub fn undelivered(messages: &Value) -> usize {
    messages["outbox"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["delivered_at"].is_null())
        .count()
}

/// The distinct indicators an `intel stats --json` answer counts (all its groups).
#[allow(dead_code)] // not every test binary reads statistics
pub fn stats_total(stats: &Value) -> u64 {
    stats["rows"]
        .as_array()
        .map(|rows| rows.iter().filter_map(|r| r["indicators"].as_u64()).sum())
        .unwrap_or(0)
}
