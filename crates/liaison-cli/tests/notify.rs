//! Notifications that leave the node, end to end (docs/queues.md): `liaison serve` with an SMTP
//! relay (aiosmtpd, a real server process: STARTTLS and AUTH required) and a webhook receiver
//! (an HTTP server in this test that checks the HMAC signature), both started by the test on
//! 127.0.0.1 — after the node has already tried and failed to reach them, so that the outbox's
//! retries are what delivers. A request marked GREEN is told in words; one marked AMBER only as
//! "a request you follow has news" with its link: no AMBER content reaches either receiver.
//!
//! The SMTP server is tests/interop/smtp_server.py (the interop venv has aiosmtpd); without
//! python3 or the package registry the test prints a loud banner and passes without checking,
//! unless LIAISON_REQUIRE_INTEROP=1 (CI), which makes that a failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{cmd, ok_json, unique_dir};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SMTP_USER: &str = "liaison";
const SMTP_PASSWORD: &str = "correct horse battery";
const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn venv_sh() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/venv.sh")
}

/// The SMTP server process; killed when dropped.
struct Smtp(Child);

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts aiosmtpd on `port`; `None` (after a banner) when the harness is skipped.
fn start_smtp(port: u16, cert: &Path, key: &Path, maildir: &Path) -> Option<Smtp> {
    let child = Command::new("bash")
        .arg(venv_sh())
        .arg("smtp_server.py")
        .args(["--maildir", maildir.to_str().unwrap(), "--port", &port.to_string()])
        .args(["--user", SMTP_USER, "--password", SMTP_PASSWORD])
        .args(["--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // Killed and reaped however this function ends.
    let mut smtp = Smtp(child);
    let mut out = BufReader::new(smtp.0.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            // venv.sh skipped (exit 0, banner printed) or failed (exit 1 under REQUIRE).
            let status = smtp.0.wait().unwrap();
            assert!(
                status.success(),
                "the SMTP server could not start (LIAISON_REQUIRE_INTEROP=1?)"
            );
            return None;
        }
        if line.starts_with("READY") {
            std::thread::spawn(move || {
                let mut sink = String::new();
                while out.read_line(&mut sink).unwrap_or(0) > 0 {
                    sink.clear();
                }
            });
            return Some(smtp);
        }
    }
}

/// One call the receiver got: its headers (names in lower case) and body.
type Call = (Vec<(String, String)>, Vec<u8>);

/// What the webhook receiver got: each call, and how many signatures failed.
#[derive(Default)]
struct Hooks {
    calls: Vec<Call>,
    bad_signatures: usize,
}

/// A small HTTP/1.1 receiver on 127.0.0.1:`port`: verifies each call's signature, answers
/// 200 (or 401 for a bad signature) and keeps it.
fn start_receiver(port: u16, got: Arc<Mutex<Hooks>>) {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                continue;
            }
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                }
            }
            let len: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .map(|(_, v)| v.parse().unwrap())
                .unwrap_or(0);
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let sig = headers
                .iter()
                .find(|(k, _)| k == "liaison-signature")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let now = jiff::Timestamp::now().as_second();
            let ok = liaison_notify::verify(SECRET.as_bytes(), &sig, &body, now, 300).is_ok();
            {
                let mut g = got.lock().unwrap();
                if ok {
                    g.calls.push((headers, body));
                } else {
                    g.bad_signatures += 1;
                }
            }
            let status = if ok { "200 OK" } else { "401 Unauthorized" };
            let _ = write!(s, "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
}

/// The text of an e-mail's parts, with quoted-printable and base64 undone.
fn mail_text(raw: &str) -> String {
    let mut out = String::new();
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .or_else(|| raw.split_once("\n\n"))
        .unwrap_or((raw, ""));
    let head_l = head.to_ascii_lowercase();
    out.push_str(head);
    out.push('\n');
    if head_l.contains("content-transfer-encoding: base64") {
        out.push_str(&String::from_utf8_lossy(&base64(body)));
    } else if head_l.contains("content-transfer-encoding: quoted-printable") {
        out.push_str(&String::from_utf8_lossy(&quoted_printable(body)));
    } else {
        out.push_str(body);
    }
    out
}

fn quoted_printable(s: &str) -> Vec<u8> {
    let s = s.replace("=\r\n", "").replace("=\n", "");
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'=', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn base64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let digits: Vec<u8> = s.bytes().filter_map(val).collect();
    let mut out = Vec::new();
    for chunk in digits.chunks(4) {
        let n = chunk.iter().fold(0u32, |acc, d| (acc << 6) | u32::from(*d)) << (6 * (4 - chunk.len()));
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len().saturating_sub(1)]);
    }
    out
}

/// Waits for `f` (polling every 200 ms); fails naming `what` after `timeout`.
fn wait(what: &str, timeout: Duration, f: impl FnMut() -> bool) {
    assert!(
        common::poll_until(timeout, Duration::from_millis(200), f),
        "timed out waiting for {what}"
    );
}

#[test]
fn email_and_webhooks_are_retried_until_delivered_and_carry_no_amber_content() {
    let base = unique_dir("liaison-notify");
    let dir = base.join("node");
    ok_json(cmd(&dir).arg("init").args(common::FBI_AGENCY));
    common::add_agency(
        &dir,
        "CN-MPS",
        "Ministry of Public Security",
        "CN",
        "Asia/Shanghai",
        &[("desk", "desk")],
    );
    cmd(&dir)
        .args(["user", "add", "officer", "--agency", "FBI", "--role", "officer"])
        .assert()
        .success();
    // The relay's certificate, trusted through ca_file.
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let (cert_pem, key_pem) = (base.join("smtp-cert.pem"), base.join("smtp-key.pem"));
    std::fs::write(&cert_pem, cert.cert.pem()).unwrap();
    std::fs::write(&key_pem, cert.key_pair.serialize_pem()).unwrap();
    std::fs::write(dir.join("smtp.password"), format!("{SMTP_PASSWORD}\n")).unwrap();
    std::fs::write(dir.join("hook.secret"), SECRET).unwrap();
    let smtp_port = common::free_port_from(700);
    let hook_port = common::free_port_from(800);
    let mut toml = std::fs::read_to_string(dir.join("liaison.toml")).unwrap();
    toml.push_str(&format!(
        r#"
[notify]
base_url = "https://liaison.test"
retry_seconds = 1
max_attempts = 100
[notify.smtp]
host = "localhost"
port = {smtp_port}
tls = "starttls"
username = "{SMTP_USER}"
password_file = "smtp.password"
from = "Liaison FBI <liaison@fbi.test>"
timeout_seconds = 10
ca_file = "{}"
[[notify.webhooks]]
name = "duty"
url = "http://127.0.0.1:{hook_port}/hook"
secret_file = "hook.secret"
agency = "CN-MPS"
"#,
        cert_pem.display()
    ));
    std::fs::write(dir.join("liaison.toml"), toml).unwrap();
    cmd(&dir)
        .args(["--as", "desk", "prefs", "set", "--email", "desk@mps.test"])
        .assert()
        .success();

    // The node runs its watcher every second; the relay and the receiver are not up yet.
    let log = base.join("serve.log");
    let mut serve = common::liaison(&dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("LIAISON_TICK_SECONDS", "1")
        .env("LIAISON_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    struct Kill<'a>(&'a mut Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _serve = Kill(&mut serve);
    wait("serve", Duration::from_secs(60), || {
        common::read_log(&log)
            .lines()
            .any(|l| common::served_address(l).is_some())
    });

    // Two requests to CN-MPS: one GREEN, one AMBER, each with words that must not leave.
    let mut refs = Vec::new();
    for (tlp, secret) in [("GREEN", "GREEN-CASE-SECRET"), ("AMBER", "AMBER-CASE-SECRET")] {
        let summary = format!("{secret} summary of facts");
        let mut args = common::create_request_args("officer", secret, &summary);
        args.extend(["--tlp", tlp]);
        let r = ok_json(cmd(&dir).args(args));
        let reference = r["reference"].as_str().unwrap().to_string();
        cmd(&dir)
            .args([
                "--as",
                "officer",
                "request",
                "transition",
                &reference,
                "--to",
                "submitted",
            ])
            .assert()
            .success();
        refs.push((tlp, reference, r["id"].as_str().unwrap().to_string()));
    }

    // The deliveries fail (nothing listens) and wait for their retry.
    wait("failed attempts", Duration::from_secs(60), || {
        let s = ok_json(cmd(&dir).args(["notify", "status"]));
        let errors = s["errors"].as_array().cloned().unwrap_or_default();
        errors.iter().any(|e| e["channel"] == "email") && errors.iter().any(|e| e["channel"] == "webhook")
    });

    // Now the receivers come up on the ports the node was told.
    let maildir = base.join("mail");
    std::fs::create_dir_all(&maildir).unwrap();
    let Some(_smtp) = start_smtp(smtp_port, &cert_pem, &key_pem, &maildir) else {
        return;
    };
    let hooks = Arc::new(Mutex::new(Hooks::default()));
    start_receiver(hook_port, hooks.clone());

    let mails = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&maildir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .map(|p| mail_text(&std::fs::read_to_string(p).unwrap()))
            .collect();
        v.sort();
        v
    };
    wait("two e-mails and two webhook calls", Duration::from_secs(90), || {
        mails().len() >= 2 && hooks.lock().unwrap().calls.len() >= 2
    });
    std::thread::sleep(Duration::from_secs(3));
    let mails = mails();
    let hooks = hooks.lock().unwrap();
    assert_eq!(mails.len(), 2, "one e-mail per incoming request: {mails:#?}");
    assert_eq!(hooks.calls.len(), 2, "one webhook call per incoming request");
    assert_eq!(hooks.bad_signatures, 0);

    let (_, green_ref, green_id) = &refs[0];
    let (_, amber_ref, amber_id) = &refs[1];
    let green_mail = mails
        .iter()
        .find(|m| m.contains(green_id.as_str()))
        .expect("the GREEN mail");
    let amber_mail = mails
        .iter()
        .find(|m| m.contains(amber_id.as_str()))
        .expect("the AMBER mail");
    // GREEN: told in words (its reference), with the link.
    assert!(green_mail.contains(green_ref.as_str()), "{green_mail}");
    assert!(green_mail.contains(&format!("https://liaison.test/requests/{green_id}")));
    assert!(green_mail.to_ascii_lowercase().contains("to: desk@mps.test"));
    // AMBER: the link and nothing else of the request.
    assert!(amber_mail.contains(&format!("https://liaison.test/requests/{amber_id}")));
    assert!(!amber_mail.contains(amber_ref.as_str()), "{amber_mail}");
    assert!(amber_mail.contains("A request you follow has news"));
    let bodies: Vec<String> = hooks
        .calls
        .iter()
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        .collect();
    for seen in mails.iter().chain(bodies.iter()) {
        for secret in ["GREEN-CASE-SECRET", "AMBER-CASE-SECRET", "summary of facts"] {
            assert!(!seen.contains(secret), "{secret} left the node: {seen}");
        }
    }
    let green_hook: serde_json::Value =
        serde_json::from_str(bodies.iter().find(|b| b.contains(green_id.as_str())).unwrap()).unwrap();
    let amber_hook: serde_json::Value =
        serde_json::from_str(bodies.iter().find(|b| b.contains(amber_id.as_str())).unwrap()).unwrap();
    assert_eq!(green_hook["reference"], green_ref.as_str());
    assert_eq!(green_hook["kind"], "incoming");
    assert!(amber_hook.get("reference").is_none(), "{amber_hook}");
    assert!(!amber_hook.to_string().contains(amber_ref.as_str()));
    // Each call names its delivery and event in headers.
    for (h, _) in &hooks.calls {
        assert!(h.iter().any(|(k, v)| k == "liaison-event" && v == "incoming"));
        assert!(h.iter().any(|(k, _)| k == "liaison-delivery"));
    }
    // The outbox: everything sent, after failed attempts.
    let s = ok_json(cmd(&dir).args(["notify", "status"]));
    let counts = s["counts"].as_array().unwrap();
    assert!(counts.iter().all(|c| c["state"] == "sent"), "{s}");
}
