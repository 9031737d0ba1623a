//! E-mail through a configured SMTP relay (lettre, rustls with ring, certificates verified).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sha2::{Digest, Sha256};

use crate::error::{ConfigError, DeliveryError, chain, tls_cause};
use crate::tls::{is_loopback_host, read_ca_file};

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MailTls {
    /// Plain connect, then STARTTLS, which is required: a relay that does not offer it is
    /// refused, never fallen back from (submission port 587).
    #[default]
    StartTls,
    /// TLS from the first byte (implicit TLS, port 465).
    Tls,
    /// No encryption at all: only to 127.0.0.1, ::1 or localhost (a local relay);
    /// [`Mailer::new`] refuses it for any other host.
    None,
}

impl MailTls {
    /// The usual port of this mode: 587, 465, or 25.
    pub fn default_port(self) -> u16 {
        match self {
            MailTls::StartTls => 587,
            MailTls::Tls => 465,
            MailTls::None => 25,
        }
    }
}

/// The SMTP relay and the sender.
#[derive(Clone)]
pub struct MailConfig {
    /// The relay's host name or IP address (what its certificate must name).
    pub host: String,
    pub port: u16,
    pub tls: MailTls,
    /// Sign-in (AUTH PLAIN or LOGIN); both or neither.
    pub username: Option<String>,
    pub password: Option<String>,
    /// The sender, `Name <addr>` or `addr`.
    pub from: String,
    /// The limit on one whole send: connecting, TLS, sign-in and the transfer.
    pub timeout: Duration,
    /// Extra PEM root certificate(s) to trust besides the system's roots.
    pub ca_file: Option<PathBuf>,
    /// The name given in EHLO; `[127.0.0.1]` when not set.
    pub hello_name: Option<String>,
}

impl MailConfig {
    /// STARTTLS on port 587, no sign-in, a 60 s timeout, the system roots, the default EHLO name.
    pub fn new(host: impl Into<String>, from: impl Into<String>) -> MailConfig {
        MailConfig {
            host: host.into(),
            port: MailTls::StartTls.default_port(),
            tls: MailTls::StartTls,
            username: None,
            password: None,
            from: from.into(),
            timeout: Duration::from_secs(60),
            ca_file: None,
            hello_name: None,
        }
    }
}

impl std::fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .field("hello_name", &self.hello_name)
            .finish()
    }
}

/// One e-mail. Texts are UTF-8; they are encoded for the wire (RFC 2047 subject,
/// quoted-printable or base64 bodies) as needed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mail {
    /// Recipients, each `Name <addr>` or `addr`; at least one.
    pub to: Vec<String>,
    pub subject: String,
    /// The plain-text body (always sent).
    pub text: String,
    /// An HTML alternative: the mail is then multipart/alternative (text first).
    pub html: Option<String>,
    /// `<id@domain>` or `id@domain`; the outbox passes the same one on every retry so that
    /// duplicates can be recognised. Generated (`<random@sender's domain>`) when absent.
    pub message_id: Option<String>,
    /// The `Content-Language` header, e.g. `zh-CN` or `en, fr`.
    pub language: Option<String>,
}

/// Sends [`Mail`] through one relay. Each send opens its own connection (no pool): the
/// outbox sends rarely, and a broken connection then never outlives one delivery.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    relay: String,
    timeout: Duration,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("relay", &self.relay)
            .field("from", &self.from.to_string())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn has_line_break(s: &str) -> bool {
    s.contains(['\r', '\n'])
}

fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
}

fn valid_hello_name(name: &str) -> bool {
    let literal = name.strip_prefix('[').and_then(|n| n.strip_suffix(']'));
    match literal {
        Some(address) => {
            let address = address.strip_prefix("IPv6:").unwrap_or(address);
            address.parse::<std::net::IpAddr>().is_ok()
        }
        None => {
            valid_host(name)
                && !name.contains(':')
                && name
                    .split('.')
                    .all(|label| !label.is_empty() && !label.starts_with('-'))
        }
    }
}

impl Mailer {
    /// Checks the configuration and prepares the TLS client. No connection is made here.
    pub fn new(cfg: MailConfig) -> Result<Mailer, ConfigError> {
        let host = cfg.host.trim().trim_start_matches('[').trim_end_matches(']').to_owned();
        if !valid_host(&host) {
            return Err(ConfigError::invalid(
                "mail.host",
                &cfg.host,
                "not a host name or IP address",
            ));
        }
        if cfg.port == 0 {
            return Err(ConfigError::invalid(
                "mail.port",
                cfg.port,
                "port 0 cannot be connected to",
            ));
        }
        if cfg.tls == MailTls::None && !is_loopback_host(&host) {
            return Err(ConfigError::invalid(
                "mail.tls",
                "none",
                format!(
                    "plaintext SMTP is only allowed to 127.0.0.1, ::1 or localhost, not to {host:?}; \
                     use starttls (port 587) or tls (port 465)"
                ),
            ));
        }
        let from = parse_mailbox(&cfg.from).map_err(|problem| ConfigError::invalid("mail.from", &cfg.from, problem))?;
        if cfg.timeout.is_zero() {
            return Err(ConfigError::invalid(
                "mail.timeout",
                cfg.timeout,
                "must be more than zero",
            ));
        }
        let credentials = match (&cfg.username, &cfg.password) {
            (Some(user), Some(password)) => {
                if user.is_empty() || has_line_break(user) {
                    return Err(ConfigError::invalid(
                        "mail.username",
                        user,
                        "must be non-empty and on one line",
                    ));
                }
                if has_line_break(password) {
                    return Err(ConfigError::invalid(
                        "mail.password",
                        "<redacted>",
                        "must be on one line",
                    ));
                }
                Some(Credentials::new(user.clone(), password.clone()))
            }
            (None, None) => None,
            (Some(user), None) => {
                return Err(ConfigError::invalid(
                    "mail.password",
                    "<unset>",
                    format!("a password is required with username {user:?}"),
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::invalid(
                    "mail.username",
                    "<unset>",
                    "a username is required with a password",
                ));
            }
        };
        let hello_name = match &cfg.hello_name {
            Some(name) if valid_hello_name(name) => ClientId::Domain(name.clone()),
            Some(name) => {
                return Err(ConfigError::invalid(
                    "mail.hello_name",
                    name,
                    "not a host name or an address literal like [192.0.2.1]",
                ));
            }
            None => ClientId::default(),
        };
        let tls = match cfg.tls {
            MailTls::None => Tls::None,
            MailTls::StartTls | MailTls::Tls => {
                let mut builder = TlsParameters::builder(host.clone());
                if let Some(path) = &cfg.ca_file {
                    for der in read_ca_file("mail.ca_file", path)? {
                        let cert = Certificate::from_der(der.as_ref().to_vec()).map_err(|e| ConfigError::CaFile {
                            field: "mail.ca_file",
                            path: path.clone(),
                            problem: format!("holds an unusable certificate: {}", chain(&e)),
                        })?;
                        builder = builder.add_root_certificate(cert);
                    }
                }
                let parameters = builder.build_rustls().map_err(|e| ConfigError::Tls(chain(&e)))?;
                if cfg.tls == MailTls::StartTls {
                    Tls::Required(parameters)
                } else {
                    Tls::Wrapper(parameters)
                }
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(cfg.port)
            .tls(tls)
            .timeout(Some(cfg.timeout))
            .hello_name(hello_name);
        if let Some(credentials) = credentials {
            builder = builder
                .credentials(credentials)
                .authentication(vec![Mechanism::Plain, Mechanism::Login]);
        }
        let relay = if host.contains(':') {
            format!("[{host}]:{}", cfg.port)
        } else {
            format!("{host}:{}", cfg.port)
        };
        Ok(Mailer {
            transport: builder.build(),
            from,
            relay,
            timeout: cfg.timeout,
        })
    }

    /// The relay as `host:port`, as the error messages name it.
    pub fn relay(&self) -> &str {
        &self.relay
    }

    /// Sends one mail. An invalid mail is refused (Permanent) before any connection is made.
    pub async fn send(&self, mail: &Mail) -> Result<(), DeliveryError> {
        let message = self.build(mail)?;
        // lettre bounds the TCP connect only; this bounds the whole dialogue (a relay that
        // stops answering mid-way).
        let overall = self.timeout;
        match tokio::time::timeout(overall, self.transport.send(message)).await {
            Ok(Ok(_response)) => Ok(()),
            Ok(Err(e)) => Err(self.classify(&e)),
            Err(_elapsed) => Err(DeliveryError::Transient(format!(
                "the SMTP relay {} did not finish taking the mail within {} s",
                self.relay,
                overall.as_secs_f64()
            ))),
        }
    }

    fn build(&self, mail: &Mail) -> Result<Message, DeliveryError> {
        let refuse = |why: String| DeliveryError::Permanent(format!("the mail was not sent: {why}"));
        if mail.to.is_empty() {
            return Err(refuse("it has no recipient".to_owned()));
        }
        if has_line_break(&mail.subject) {
            return Err(refuse(
                "its subject contains a line break (CR or LF), which could inject headers".to_owned(),
            ));
        }
        let mut builder = Message::builder().from(self.from.clone()).subject(mail.subject.clone());
        for to in &mail.to {
            let mailbox = parse_mailbox(to).map_err(|problem| refuse(format!("the recipient {to:?} {problem}")))?;
            builder = builder.to(mailbox);
        }
        let message_id = match &mail.message_id {
            Some(id) => normalize_message_id(id)
                .ok_or_else(|| refuse(format!("the message id {id:?} is not of the form <local@domain>")))?,
            None => generate_message_id(self.from.email.domain()),
        };
        builder = builder.message_id(Some(message_id));
        if let Some(language) = &mail.language {
            if !valid_language(language) {
                return Err(refuse(format!(
                    "the language {language:?} is not a list of language tags like \"zh-CN\" or \"en, fr\""
                )));
            }
            builder = builder.raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Content-Language"),
                language.clone(),
            ));
        }
        let built = match &mail.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(mail.text.clone(), html.clone())),
            None => builder.header(ContentType::TEXT_PLAIN).body(plain_body(&mail.text)),
        };
        built.map_err(|e| refuse(format!("it could not be composed: {}", chain(&e))))
    }

    fn classify(&self, e: &lettre::transport::smtp::Error) -> DeliveryError {
        let relay = &self.relay;
        let detail = match std::error::Error::source(e) {
            Some(source) => chain(source),
            None => e.to_string(),
        };
        if let Some(code) = e.status() {
            let number: u16 = code.to_string().parse().unwrap_or(0);
            let what = match number {
                454 | 530 | 534 | 535 | 538 => "refused the sign-in",
                421 => "is closing the connection (service not available)",
                450..=452 => "deferred the mail (try again later)",
                552 => "refused the mail as too large or the mailbox as full",
                550 | 551 | 553 => "refused the mail or a recipient",
                554 => "refused the transaction",
                400..=499 => "answered \"try again later\"",
                _ => "refused the mail",
            };
            let message = format!("the SMTP relay {relay} {what}: {number} {detail}");
            return if e.is_permanent() {
                DeliveryError::Permanent(message)
            } else {
                DeliveryError::Transient(message)
            };
        }
        if e.is_timeout() {
            return DeliveryError::Transient(format!(
                "the SMTP relay {relay} did not answer within {} s: {detail}",
                self.timeout.as_secs_f64()
            ));
        }
        if e.is_tls() || tls_cause(e).is_some() {
            let detail = tls_cause(e).unwrap_or(detail);
            return DeliveryError::Transient(format!(
                "the TLS handshake with the SMTP relay {relay} failed (is its certificate issued for this \
                 host name by a root of the system or of mail.ca_file?): {detail}"
            ));
        }
        if e.is_client() {
            if detail.contains("STARTTLS") {
                return DeliveryError::Transient(format!(
                    "the SMTP relay {relay} does not offer STARTTLS, so nothing was sent: mail.tls = starttls \
                     never falls back to plaintext ({detail})"
                ));
            }
            if detail.contains("authentication mechanism") {
                return DeliveryError::Permanent(format!(
                    "the SMTP relay {relay} offers no sign-in this client can use (AUTH PLAIN or LOGIN): {detail}"
                ));
            }
            return DeliveryError::Transient(format!("the exchange with the SMTP relay {relay} failed: {detail}"));
        }
        if e.is_response() {
            return DeliveryError::Transient(format!(
                "the SMTP relay {relay} answered something that is not SMTP: {detail}"
            ));
        }
        // Connection and network errors: refused, unreachable, reset, closed.
        DeliveryError::Transient(format!("could not talk to the SMTP relay {relay}: {detail}"))
    }
}

/// The body of a text-only mail. lettre ends every message with CRLF "." CRLF, whose first CRLF
/// ends the last line: a text ending with a line break would arrive with one more, empty, line
/// (in 7bit or quoted-printable; base64 ignores it). So that line break is left to the end of
/// the data.
fn plain_body(text: &str) -> Body {
    if let Some(trimmed) = text.strip_suffix("\r\n").or_else(|| text.strip_suffix('\n')) {
        let body = Body::new(trimmed.to_owned());
        if body.encoding() != ContentTransferEncoding::Base64 {
            return body;
        }
    }
    Body::new(text.to_owned())
}

/// Parses `Name <addr>` or `addr`; the error completes "the recipient ... ".
fn parse_mailbox(text: &str) -> Result<Mailbox, String> {
    if has_line_break(text) {
        return Err("contains a line break (CR or LF)".to_owned());
    }
    text.trim()
        .parse::<Mailbox>()
        .map_err(|e| format!("is not a valid e-mail address ({e})"))
}

fn normalize_message_id(id: &str) -> Option<String> {
    let inner = id.strip_prefix('<').and_then(|i| i.strip_suffix('>')).unwrap_or(id);
    let (local, domain) = inner.split_once('@')?;
    let allowed = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'@' | b'"' | b'\\' | b'(' | b')' | b','))
    };
    (allowed(local) && allowed(domain) && inner.len() <= 900).then(|| format!("<{inner}>"))
}

fn generate_message_id(domain: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut hash = Sha256::new();
    hash.update(nanos.to_le_bytes());
    hash.update(std::process::id().to_le_bytes());
    hash.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let digest = hash.finalize();
    let unique = hex::encode(&digest[..16]);
    format!("<{unique}@{domain}>")
}

fn valid_language(value: &str) -> bool {
    let tags: Vec<&str> = value.split(',').map(str::trim).collect();
    !value.trim().is_empty()
        && value.len() <= 200
        && tags.iter().all(|tag| {
            !tag.is_empty()
                && tag
                    .split('-')
                    .all(|sub| (1..=8).contains(&sub.len()) && sub.bytes().all(|b| b.is_ascii_alphanumeric()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> MailConfig {
        MailConfig::new("smtp.example.org", "Liaison <liaison@example.org>")
    }

    fn assert_invalid(cfg: MailConfig, field: &str) {
        match Mailer::new(cfg) {
            Err(ConfigError::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected an invalid {field}, got {other:?}"),
        }
    }

    #[test]
    fn plaintext_only_to_loopback() {
        let mut cfg = config();
        cfg.tls = MailTls::None;
        assert_invalid(cfg.clone(), "mail.tls");
        for host in ["127.0.0.1", "::1", "[::1]", "localhost", "LOCALHOST"] {
            cfg.host = host.to_owned();
            assert!(Mailer::new(cfg.clone()).is_ok(), "{host}");
        }
        for host in ["127.0.0.2", "10.0.0.1", "localhost.example.org", "0.0.0.0"] {
            cfg.host = host.to_owned();
            assert_invalid(cfg.clone(), "mail.tls");
        }
    }

    #[test]
    fn the_error_names_field_and_value() {
        let mut cfg = config();
        cfg.tls = MailTls::None;
        let text = Mailer::new(cfg).map(|_| ()).unwrap_err().to_string();
        assert!(text.starts_with("mail.tls = \"none\""), "{text}");
        assert!(text.contains("smtp.example.org"), "{text}");
        let mut cfg = config();
        cfg.from = "not an address".to_owned();
        let text = Mailer::new(cfg).map(|_| ()).unwrap_err().to_string();
        assert!(text.starts_with("mail.from = \"not an address\""), "{text}");
    }

    #[test]
    fn other_fields_are_checked() {
        let mut cfg = config();
        cfg.port = 0;
        assert_invalid(cfg, "mail.port");
        let mut cfg = config();
        cfg.host = "smtp example".to_owned();
        assert_invalid(cfg, "mail.host");
        let mut cfg = config();
        cfg.username = Some("user".to_owned());
        assert_invalid(cfg, "mail.password");
        let mut cfg = config();
        cfg.password = Some("secret".to_owned());
        assert_invalid(cfg, "mail.username");
        let mut cfg = config();
        cfg.timeout = Duration::ZERO;
        assert_invalid(cfg, "mail.timeout");
        let mut cfg = config();
        cfg.hello_name = Some("bad name\r\n".to_owned());
        assert_invalid(cfg, "mail.hello_name");
        let mut cfg = config();
        cfg.hello_name = Some("[192.0.2.1]".to_owned());
        assert!(Mailer::new(cfg).is_ok());
        let mut cfg = config();
        cfg.ca_file = Some(PathBuf::from("/nonexistent/liaison-ca.pem"));
        assert!(matches!(Mailer::new(cfg), Err(ConfigError::CaFile { .. })));
    }

    #[test]
    fn the_password_is_not_shown() {
        let mut cfg = config();
        cfg.username = Some("user".to_owned());
        cfg.password = Some("hunter2-secret".to_owned());
        assert!(!format!("{cfg:?}").contains("hunter2"));
        cfg.password = Some("two\nlines-secret".to_owned());
        let text = Mailer::new(cfg).map(|_| ()).unwrap_err().to_string();
        assert!(!text.contains("lines-secret"), "{text}");
    }

    #[test]
    fn message_ids() {
        assert_eq!(
            normalize_message_id("abc@example.org").as_deref(),
            Some("<abc@example.org>")
        );
        assert_eq!(
            normalize_message_id("<abc@example.org>").as_deref(),
            Some("<abc@example.org>")
        );
        assert_eq!(normalize_message_id("abc"), None);
        assert_eq!(normalize_message_id("a b@example.org"), None);
        assert_eq!(normalize_message_id("<a@b>\r\nBcc: x@y"), None);
        let a = generate_message_id("example.org");
        let b = generate_message_id("example.org");
        assert_ne!(a, b);
        assert!(a.starts_with('<') && a.ends_with("@example.org>"), "{a}");
    }

    #[test]
    fn languages() {
        assert!(valid_language("zh-CN"));
        assert!(valid_language("en, fr"));
        assert!(valid_language("zh-Hans-CN"));
        assert!(!valid_language(""));
        assert!(!valid_language("en\r\nBcc: x@y"));
        assert!(!valid_language("en;q=1"));
    }
}
