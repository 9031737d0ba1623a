//! E-mail against a real SMTP server: aiosmtpd (tests/interop/smtp_server.py), run from a venv by
//! tests/interop/venv.sh, on 127.0.0.1, with STARTTLS and AUTH required.
//!
//! Without python3, its venv module or the package registry these tests print a loud banner and
//! pass without checking, unless LIAISON_REQUIRE_INTEROP=1 (CI), which makes that a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use liaison_notify::{ConfigError, DeliveryError, Mail, MailConfig, MailTls, Mailer};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

use common::{TestCert, free_port, scratch_dir, self_signed};

const USER: &str = "liaison";
const PASSWORD: &str = "correct horse battery";

/// A running server.py; dropping it closes its stdin (it exits) and kills it.
struct SmtpServer {
    _child: Child,
    _stdin: ChildStdin,
    port: u16,
    maildir: PathBuf,
}

enum Mode<'a> {
    /// STARTTLS required, then AUTH (what port 587 serves).
    Submission(&'a TestCert),
    /// TLS from the first byte, then AUTH (what port 465 serves).
    Smtps(&'a TestCert),
    /// No TLS offered, AUTH offered in clear as a trap.
    Plaintext,
}

/// Starts server.py on `port` (0: any). None when the harness is skipped (banner printed).
async fn start_server(port: u16, mode: Mode<'_>, maildir: &Path) -> Option<SmtpServer> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/venv.sh");
    let log = maildir.with_extension("server.log");
    let mut command = Command::new("bash");
    command
        .arg(&venv)
        .arg("smtp_server.py")
        .arg("--maildir")
        .arg(maildir)
        .arg("--port")
        .arg(port.to_string())
        .arg("--user")
        .arg(USER)
        .arg("--password")
        .arg(PASSWORD);
    match mode {
        Mode::Submission(cert) => {
            command
                .arg("--cert")
                .arg(&cert.cert_path)
                .arg("--key")
                .arg(&cert.key_path);
        }
        Mode::Smtps(cert) => {
            command
                .arg("--cert")
                .arg(&cert.cert_path)
                .arg("--key")
                .arg(&cert.key_path)
                .arg("--implicit-tls");
        }
        Mode::Plaintext => {
            command.arg("--no-starttls");
        }
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .kill_on_drop(true)
        .spawn()
        .expect("bash runs tests/interop/venv.sh");
    let stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut said = String::new();
    // The first run installs the venv (pip), hence the long wait.
    let ready = tokio::time::timeout(Duration::from_secs(300), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(port) = line.strip_prefix("READY ") {
                return Some(port.trim().parse::<u16>().unwrap());
            }
            said.push_str(&line);
            said.push('\n');
        }
        None
    })
    .await
    .expect("server.py said READY within 300 s");
    match ready {
        Some(port) => Some(SmtpServer {
            _child: child,
            _stdin: stdin,
            port,
            maildir: maildir.to_path_buf(),
        }),
        None => {
            let status = child.wait().await.unwrap();
            let stderr = std::fs::read_to_string(&log).unwrap_or_default();
            if status.success() && said.contains("SMTP TEST SKIPPED") {
                // Straight to the process's stderr, past the test harness's capture: loud.
                use std::io::Write as _;
                let _ = std::io::stderr().write_all(said.as_bytes());
                None
            } else {
                panic!("server.py did not start ({status}):\n{said}\n{stderr}");
            }
        }
    }
}

impl SmtpServer {
    fn messages(&self) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&self.maildir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        found.sort();
        found
    }

    fn auth_log(&self) -> String {
        std::fs::read_to_string(self.maildir.join("auth.log")).unwrap_or_default()
    }
}

fn config(port: u16, ca: Option<&Path>, password: &str) -> MailConfig {
    MailConfig {
        host: "127.0.0.1".to_owned(),
        port,
        tls: MailTls::StartTls,
        username: Some(USER.to_owned()),
        password: Some(password.to_owned()),
        from: "Liaison 联络节点 <liaison@node.example.org>".to_owned(),
        timeout: Duration::from_secs(10),
        ca_file: ca.map(Path::to_path_buf),
        hello_name: Some("node.example.org".to_owned()),
    }
}

const TEXT: &str = "您好，\n\n跨境请求 2024/17 收到了新的答复。请登录 Liaison 查看：这一行故意写得很长很长很长很长很长很长很长很长很长很长很长很长很长很长，以便测试软换行。\n\n— Liaison 联络节点\n";
const HTML: &str = "<p>您好，</p>\n<p>跨境请求 <b>2024/17</b> 收到了新的答复。</p>\n";
const SUBJECT: &str = "跨境请求：新的答复已到达 (ref. 2024/17) — please log in";

fn chinese_mail() -> Mail {
    Mail {
        to: vec![
            "张三 <zhang.san@example.cn>".to_owned(),
            "officer@agency.example.org".to_owned(),
        ],
        subject: SUBJECT.to_owned(),
        text: TEXT.to_owned(),
        html: Some(HTML.to_owned()),
        message_id: Some("req-2024-17.reply-3@node.example.org".to_owned()),
        language: Some("zh-CN".to_owned()),
    }
}

fn plain_mail() -> Mail {
    Mail {
        to: vec!["officer@agency.example.org".to_owned()],
        subject: "A reply arrived".to_owned(),
        text: "Request 2024/17 has a new reply.\n".to_owned(),
        ..Mail::default()
    }
}

#[tokio::test]
async fn chinese_mail_with_html_arrives_intact() {
    let dir = scratch_dir("smtp-chinese");
    let cert = self_signed(&dir);
    let Some(server) = start_server(0, Mode::Submission(&cert), &dir.join("mail")).await else {
        return;
    };
    let mailer = Mailer::new(config(server.port, Some(&cert.cert_path), PASSWORD)).unwrap();
    mailer.send(&chinese_mail()).await.unwrap();

    let messages = server.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let raw = std::fs::read(&messages[0]).unwrap();
    let envelope = std::fs::read_to_string(messages[0].with_extension("json")).unwrap();
    assert!(envelope.contains("\"tls\": true"), "{envelope}");
    assert!(envelope.contains("zhang.san@example.cn") && envelope.contains("officer@agency.example.org"));
    assert!(
        server.auth_log().contains("liaison ok tls=yes"),
        "{}",
        server.auth_log()
    );

    // The wire form is 7-bit clean: every non-ASCII text is encoded.
    assert!(raw.iter().all(u8::is_ascii), "{}", String::from_utf8_lossy(&raw));
    let message = mime::Part::parse(&raw);
    assert_eq!(message.header("Subject").as_deref(), Some(SUBJECT));
    let from = message.header("From").unwrap();
    assert!(
        from.contains("Liaison 联络节点") && from.ends_with("<liaison@node.example.org>"),
        "{from}"
    );
    let to = message.header("To").unwrap();
    assert!(
        to.contains("张三") && to.contains("<zhang.san@example.cn>") && to.contains("officer@agency.example.org"),
        "{to}"
    );
    assert_eq!(
        message.header("Message-ID").as_deref(),
        Some("<req-2024-17.reply-3@node.example.org>")
    );
    assert_eq!(message.header("Content-Language").as_deref(), Some("zh-CN"));
    assert!(message.header("Date").is_some());
    let content_type = message.header("Content-Type").unwrap();
    assert!(content_type.starts_with("multipart/alternative"), "{content_type}");

    let parts = message.parts();
    assert_eq!(parts.len(), 2);
    let plain_type = parts[0].header("Content-Type").unwrap().to_ascii_lowercase();
    let html_type = parts[1].header("Content-Type").unwrap().to_ascii_lowercase();
    assert!(
        plain_type.starts_with("text/plain") && plain_type.contains("charset=utf-8"),
        "{plain_type}"
    );
    assert!(
        html_type.starts_with("text/html") && html_type.contains("charset=utf-8"),
        "{html_type}"
    );
    assert_eq!(unix_lines(&parts[0].decoded_text()), TEXT);
    assert_eq!(unix_lines(&parts[1].decoded_text()), HTML);
}

#[tokio::test]
async fn implicit_tls_by_host_name_with_quoted_printable_text() {
    let dir = scratch_dir("smtp-implicit");
    let cert = self_signed(&dir);
    let Some(server) = start_server(0, Mode::Smtps(&cert), &dir.join("mail")).await else {
        return;
    };
    let mut cfg = config(server.port, Some(&cert.cert_path), PASSWORD);
    cfg.tls = MailTls::Tls;
    cfg.host = "localhost".to_owned();
    cfg.from = "liaison@node.example.org".to_owned();
    let mailer = Mailer::new(cfg).unwrap();
    // Mostly ASCII: lettre picks quoted-printable rather than base64.
    let text = "Bonjour,\n\nLa demande 2024/17 a reçu une réponse : déjà traitée, à consulter.\n\n-- \nLiaison\n";
    let mail = Mail {
        to: vec!["Agent Müller <mueller@agency.example.org>".to_owned()],
        subject: "Réponse reçue — demande 2024/17".to_owned(),
        text: text.to_owned(),
        language: Some("fr".to_owned()),
        ..Mail::default()
    };
    mailer.send(&mail).await.unwrap();
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert!(
        server.auth_log().contains("liaison ok tls=yes"),
        "{}",
        server.auth_log()
    );
    let raw = std::fs::read(&messages[0]).unwrap();
    let message = mime::Part::parse(&raw);
    assert_eq!(
        message.header("Subject").as_deref(),
        Some("Réponse reçue — demande 2024/17")
    );
    assert_eq!(message.header("Content-Language").as_deref(), Some("fr"));
    assert!(message.header("Message-ID").unwrap().ends_with("@node.example.org>"));
    let content_type = message.header("Content-Type").unwrap().to_ascii_lowercase();
    assert!(
        content_type.starts_with("text/plain") && content_type.contains("charset=utf-8"),
        "{content_type}"
    );
    assert_eq!(
        message.header("Content-Transfer-Encoding").as_deref(),
        Some("quoted-printable")
    );
    assert_eq!(unix_lines(&message.decoded_text()), text);
}

#[tokio::test]
async fn wrong_password_is_permanent_and_nothing_is_delivered() {
    let dir = scratch_dir("smtp-password");
    let cert = self_signed(&dir);
    let Some(server) = start_server(0, Mode::Submission(&cert), &dir.join("mail")).await else {
        return;
    };
    let mailer = Mailer::new(config(server.port, Some(&cert.cert_path), "wrong password")).unwrap();
    let error = mailer.send(&plain_mail()).await.unwrap_err();
    assert!(matches!(error, DeliveryError::Permanent(_)), "{error:?}");
    let text = error.to_string();
    assert!(
        text.starts_with(&format!(
            "the SMTP relay 127.0.0.1:{} refused the sign-in: 535",
            server.port
        )),
        "{text}"
    );
    assert!(!text.contains("wrong password"), "{text}");
    assert!(server.messages().is_empty());
    assert!(
        server.auth_log().contains("liaison refused tls=yes"),
        "{}",
        server.auth_log()
    );
}

#[tokio::test]
async fn starttls_is_required_and_never_falls_back() {
    let dir = scratch_dir("smtp-nostarttls");
    let Some(server) = start_server(0, Mode::Plaintext, &dir.join("mail")).await else {
        return;
    };
    let cert = self_signed(&dir);
    let mailer = Mailer::new(config(server.port, Some(&cert.cert_path), PASSWORD)).unwrap();
    let error = mailer.send(&plain_mail()).await.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains("does not offer STARTTLS") && text.contains("never falls back"),
        "{text}"
    );
    assert!(server.messages().is_empty());
    // Not even the credentials went out in clear.
    assert_eq!(server.auth_log(), "");
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused() {
    let dir = scratch_dir("smtp-untrusted");
    let cert = self_signed(&dir);
    let Some(server) = start_server(0, Mode::Submission(&cert), &dir.join("mail")).await else {
        return;
    };
    // The system roots do not know the self-signed certificate.
    let mailer = Mailer::new(config(server.port, None, PASSWORD)).unwrap();
    let error = mailer.send(&plain_mail()).await.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("TLS handshake") && text.contains("certificate"), "{text}");
    assert!(server.messages().is_empty());
    assert_eq!(server.auth_log(), "");
}

#[tokio::test]
async fn relay_down_is_transient_then_the_retry_succeeds() {
    let dir = scratch_dir("smtp-down");
    let cert = self_signed(&dir);
    let port = free_port();
    let mailer = Mailer::new(config(port, Some(&cert.cert_path), PASSWORD)).unwrap();
    let mail = chinese_mail();
    let error = mailer.send(&mail).await.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    let text = error.to_string();
    assert!(
        text.starts_with(&format!("could not talk to the SMTP relay 127.0.0.1:{port}")),
        "{text}"
    );

    let Some(server) = start_server(port, Mode::Submission(&cert), &dir.join("mail")).await else {
        return;
    };
    assert_eq!(server.port, port);
    mailer.send(&mail).await.unwrap();
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn header_injection_and_bad_addresses_are_refused_before_connecting() {
    // Nothing listens on the port: a connection attempt would be a Transient error.
    let mailer = Mailer::new(config(free_port(), None, PASSWORD)).unwrap();

    let mut mail = plain_mail();
    mail.subject = "Hello\r\nBcc: everyone@example.org".to_owned();
    let error = mailer.send(&mail).await.unwrap_err();
    assert!(matches!(error, DeliveryError::Permanent(_)), "{error:?}");
    assert!(error.to_string().contains("subject contains a line break"), "{error}");

    let mut mail = plain_mail();
    mail.subject = "Hello\nX-Injected: yes".to_owned();
    assert!(!mailer.send(&mail).await.unwrap_err().is_transient());

    let mut mail = plain_mail();
    mail.to = vec![
        "ok@example.org".to_owned(),
        "someone@example.org\r\nBcc: x@example.org".to_owned(),
    ];
    let error = mailer.send(&mail).await.unwrap_err();
    assert!(
        !error.is_transient() && error.to_string().contains("line break"),
        "{error}"
    );

    let mut mail = plain_mail();
    mail.to = vec!["not-an-address".to_owned()];
    let error = mailer.send(&mail).await.unwrap_err();
    assert!(!error.is_transient(), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("\"not-an-address\" is not a valid e-mail address"),
        "{error}"
    );

    let mut mail = plain_mail();
    mail.to.clear();
    assert!(!mailer.send(&mail).await.unwrap_err().is_transient());

    let mut mail = plain_mail();
    mail.message_id = Some("<a@b>\r\nBcc: x@example.org".to_owned());
    assert!(!mailer.send(&mail).await.unwrap_err().is_transient());

    let mut mail = plain_mail();
    mail.language = Some("en\r\nBcc: x@example.org".to_owned());
    assert!(!mailer.send(&mail).await.unwrap_err().is_transient());
}

#[test]
fn plaintext_to_a_remote_host_is_refused() {
    let mut cfg = config(25, None, PASSWORD);
    cfg.host = "smtp.example.org".to_owned();
    cfg.tls = MailTls::None;
    let error = Mailer::new(cfg.clone()).unwrap_err();
    assert!(
        matches!(error, ConfigError::Invalid { field: "mail.tls", .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("\"smtp.example.org\""), "{error}");
    cfg.host = "127.0.0.1".to_owned();
    assert!(Mailer::new(cfg).is_ok());
}

fn unix_lines(text: &str) -> String {
    text.replace("\r\n", "\n")
}

/// A small MIME reader for the tests, written independently of lettre: header unfolding,
/// RFC 2047 encoded words (B and Q), multipart bodies, base64 and quoted-printable.
mod mime {
    pub struct Part {
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    fn split_head(raw: &[u8]) -> (&[u8], &[u8]) {
        for (sep, len) in [(&b"\r\n\r\n"[..], 4), (&b"\n\n"[..], 2)] {
            if let Some(i) = raw.windows(len).position(|w| w == sep) {
                return (&raw[..i], &raw[i + len..]);
            }
        }
        (raw, &[])
    }

    impl Part {
        pub fn parse(raw: &[u8]) -> Part {
            let (head, body) = split_head(raw);
            let head = String::from_utf8(head.to_vec()).unwrap();
            let mut headers: Vec<(String, String)> = Vec::new();
            for line in head.split('\n').map(|l| l.trim_end_matches('\r')) {
                if line.starts_with([' ', '\t']) {
                    let last = headers.last_mut().unwrap();
                    last.1.push_str(line);
                } else if let Some((name, value)) = line.split_once(':') {
                    headers.push((name.to_owned(), value.trim_start().to_owned()));
                }
            }
            Part {
                headers,
                body: body.to_vec(),
            }
        }

        fn raw_header(&self, name: &str) -> Option<&str> {
            let found: Vec<&str> = self
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .collect();
            assert!(found.len() <= 1, "header {name} appears {} times", found.len());
            found.first().copied()
        }

        /// The header's value, unfolded and with its encoded words decoded.
        pub fn header(&self, name: &str) -> Option<String> {
            self.raw_header(name).map(decode_words)
        }

        fn param(&self, header: &str, param: &str) -> Option<String> {
            let value = self.raw_header(header)?;
            value.split(';').skip(1).find_map(|p| {
                let (k, v) = p.trim().split_once('=')?;
                k.eq_ignore_ascii_case(param).then(|| v.trim_matches('"').to_owned())
            })
        }

        pub fn parts(&self) -> Vec<Part> {
            let boundary = self.param("Content-Type", "boundary").unwrap();
            let text = String::from_utf8(self.body.clone()).unwrap();
            let open = format!("--{boundary}");
            let close = format!("--{boundary}--");
            let mut parts = Vec::new();
            let mut current: Option<Vec<&str>> = None;
            for line in text.split('\n').map(|l| l.trim_end_matches('\r')) {
                if line == open || line == close {
                    if let Some(lines) = current.take() {
                        parts.push(Part::parse(lines.join("\r\n").as_bytes()));
                    }
                    if line == close {
                        break;
                    }
                    current = Some(Vec::new());
                } else if let Some(lines) = current.as_mut() {
                    lines.push(line);
                }
            }
            parts
        }

        /// The body, transfer-decoded, as UTF-8.
        pub fn decoded_text(&self) -> String {
            let encoding = self
                .raw_header("Content-Transfer-Encoding")
                .unwrap_or("7bit")
                .trim()
                .to_ascii_lowercase();
            let bytes = match encoding.as_str() {
                "base64" => base64(&String::from_utf8(self.body.clone()).unwrap()),
                "quoted-printable" => quoted_printable(&self.body),
                "7bit" | "8bit" => self.body.clone(),
                other => panic!("unexpected transfer encoding {other}"),
            };
            String::from_utf8(bytes).unwrap()
        }
    }

    fn base64(text: &str) -> Vec<u8> {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = Vec::new();
        let mut acc: u32 = 0;
        let mut bits = 0;
        for c in text.bytes().filter(|c| !c.is_ascii_whitespace()) {
            if c == b'=' {
                break;
            }
            let v = ALPHABET.iter().position(|&a| a == c).unwrap() as u32;
            acc = (acc << 6) | v;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        out
    }

    fn hex_value(c: u8) -> Option<u8> {
        (c as char).to_digit(16).map(|d| d as u8)
    }

    /// Quoted-printable (RFC 2045 6.7); with `underscore_is_space` the Q encoding of RFC 2047.
    fn decode_qp(input: &[u8], underscore_is_space: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < input.len() {
            let c = input[i];
            if c == b'=' {
                let rest = &input[i + 1..];
                if rest.starts_with(b"\r\n") {
                    i += 3;
                    continue;
                }
                if rest.starts_with(b"\n") {
                    i += 2;
                    continue;
                }
                let hi = hex_value(rest[0]).unwrap();
                let lo = hex_value(rest[1]).unwrap();
                out.push(hi * 16 + lo);
                i += 3;
            } else if c == b'_' && underscore_is_space {
                out.push(b' ');
                i += 1;
            } else {
                out.push(c);
                i += 1;
            }
        }
        out
    }

    fn quoted_printable(body: &[u8]) -> Vec<u8> {
        decode_qp(body, false)
    }

    /// Decodes the `=?charset?B|Q?text?=` words of a header value; the white space between two
    /// adjacent encoded words is dropped (RFC 2047 6.2).
    fn decode_words(value: &str) -> String {
        let mut out = String::new();
        let mut rest = value;
        let mut last_was_word = false;
        while !rest.is_empty() {
            let Some(start) = rest.find("=?") else {
                out.push_str(rest);
                break;
            };
            let between = &rest[..start];
            let after = &rest[start + 2..];
            let word = after.split_once('?').and_then(|(charset, tail)| {
                let (encoding, tail) = tail.split_once('?')?;
                let end = tail.find("?=")?;
                Some((charset, encoding, &tail[..end], &tail[end + 2..]))
            });
            let Some((charset, encoding, text, tail)) = word else {
                out.push_str(rest);
                break;
            };
            if !(last_was_word && between.trim().is_empty()) {
                out.push_str(between);
            }
            assert!(charset.eq_ignore_ascii_case("utf-8"), "charset {charset}");
            let bytes = match encoding {
                "B" | "b" => base64(text),
                "Q" | "q" => decode_qp(text.as_bytes(), true),
                other => panic!("unknown encoding {other}"),
            };
            out.push_str(&String::from_utf8(bytes).unwrap());
            last_was_word = true;
            rest = tail;
        }
        out
    }

    #[test]
    fn the_reader_decodes_known_forms() {
        assert_eq!(
            decode_words("=?utf-8?B?5L2g5aW9?= =?UTF-8?Q?_w=C3=B6rld?= !"),
            "你好 wörld !"
        );
        assert_eq!(quoted_printable(b"caf=C3=A9 =\r\nau lait"), "café au lait".as_bytes());
        assert_eq!(base64("aGVsbG8="), b"hello");
    }
}
