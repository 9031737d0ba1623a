//! Signed webhooks: one JSON `POST` per delivery, HMAC-SHA256 signed (see the crate docs).

use std::path::PathBuf;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderValue, LOCATION};
use reqwest::{StatusCode, Url};

use crate::error::{ConfigError, DeliveryError, chain, tls_cause};
use crate::signature::sign;
use crate::tls::{client_config, is_loopback_host, read_ca_file};

/// The largest body [`Webhook::post`] sends: 1 MiB.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// The most of a response body that is read (then dropped): 64 KiB.
pub const MAX_RESPONSE_BYTES: usize = 64 << 10;
/// The shortest secret [`Webhook::new`] accepts: 16 bytes.
pub const MIN_SECRET_BYTES: usize = 16;

/// The receiver of the webhooks.
#[derive(Clone)]
pub struct WebhookConfig {
    /// `https://…`, or `http://…` only to 127.0.0.1, ::1 or localhost. No credentials in it.
    pub url: String,
    /// The HMAC key shared with the receiver, at least 16 bytes (32 random bytes advised).
    pub secret: Vec<u8>,
    /// The limit on the whole request: connect, TLS, sending, the answer.
    pub timeout: Duration,
    /// Extra PEM root certificate(s) to trust besides the system's roots.
    pub ca_file: Option<PathBuf>,
}

impl WebhookConfig {
    /// A 10 s timeout and the system roots.
    pub fn new(url: impl Into<String>, secret: impl Into<Vec<u8>>) -> WebhookConfig {
        WebhookConfig {
            url: url.into(),
            secret: secret.into(),
            timeout: Duration::from_secs(10),
            ca_file: None,
        }
    }
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("secret", &format_args!("<{} bytes>", self.secret.len()))
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// Posts signed deliveries to one receiver. Redirects are not followed, no proxy is used.
pub struct Webhook {
    client: reqwest::Client,
    url: Url,
    secret: Vec<u8>,
    receiver: String,
    timeout: Duration,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("receiver", &self.receiver)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A header value we send: printable ASCII without spaces, 1 to 200 characters.
fn header_token(value: &str) -> Option<HeaderValue> {
    let ok = !value.is_empty() && value.len() <= 200 && value.bytes().all(|b| b.is_ascii_graphic());
    if ok { HeaderValue::from_str(value).ok() } else { None }
}

/// Printable text of at most `max` characters from a response body, for an error message.
fn snippet(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    out = out.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

impl Webhook {
    /// Checks the configuration and prepares the HTTP client. No connection is made here.
    pub fn new(cfg: WebhookConfig) -> Result<Webhook, ConfigError> {
        let mut url = Url::parse(cfg.url.trim())
            .map_err(|e| ConfigError::invalid("webhook.url", &cfg.url, format!("not a URL: {e}")))?;
        let host = url.host_str().unwrap_or_default().to_owned();
        match url.scheme() {
            "https" => {}
            "http" if is_loopback_host(&host) => {}
            "http" => {
                return Err(ConfigError::invalid(
                    "webhook.url",
                    &cfg.url,
                    "plain http is only allowed to 127.0.0.1, ::1 or localhost; use https",
                ));
            }
            other => {
                return Err(ConfigError::invalid(
                    "webhook.url",
                    &cfg.url,
                    format!("the scheme must be https (not {other})"),
                ));
            }
        }
        if host.is_empty() {
            return Err(ConfigError::invalid("webhook.url", &cfg.url, "has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            // Not echoed: the value holds a credential.
            return Err(ConfigError::invalid(
                "webhook.url",
                "<redacted>",
                "must not hold a user name or password: the signature authenticates the sender",
            ));
        }
        url.set_fragment(None);
        if cfg.secret.len() < MIN_SECRET_BYTES {
            return Err(ConfigError::Invalid {
                field: "webhook.secret",
                value: format!("<{} bytes>", cfg.secret.len()),
                problem: format!("must be at least {MIN_SECRET_BYTES} bytes (32 random bytes advised)"),
            });
        }
        if cfg.timeout.is_zero() {
            return Err(ConfigError::invalid(
                "webhook.timeout",
                cfg.timeout,
                "must be more than zero",
            ));
        }
        let extra = match &cfg.ca_file {
            Some(path) => read_ca_file("webhook.ca_file", path)?,
            None => Vec::new(),
        };
        let tls = client_config("webhook.ca_file", cfg.ca_file.as_deref(), &extra)?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .no_proxy()
            .user_agent(concat!("liaison-notify/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::Tls(chain(&e)))?;
        let port = url.port_or_known_default().unwrap_or(0);
        let receiver = format!("{}://{}:{}{}", url.scheme(), host, port, url.path());
        Ok(Webhook {
            client,
            url,
            secret: cfg.secret,
            receiver,
            timeout: cfg.timeout,
        })
    }

    /// The receiver as error messages name it: scheme, host, port and path (no query).
    pub fn receiver(&self) -> &str {
        &self.receiver
    }

    /// Posts `body` (JSON) signed for `unix_seconds` (the sending time; a retry signs anew).
    ///
    /// Headers: `Content-Type: application/json`, `Liaison-Delivery`, `Liaison-Event`,
    /// `Liaison-Signature` ([`sign`]) and `User-Agent: liaison-notify/<version>`.
    pub async fn post(
        &self,
        delivery_id: &str,
        event: &str,
        body: &[u8],
        unix_seconds: i64,
    ) -> Result<(), DeliveryError> {
        if body.len() > MAX_BODY_BYTES {
            return Err(DeliveryError::Permanent(format!(
                "the webhook was not sent: its body is {} bytes, more than the limit of {MAX_BODY_BYTES} bytes (1 MiB)",
                body.len()
            )));
        }
        let delivery = header_token(delivery_id).ok_or_else(|| {
            DeliveryError::Permanent(format!(
                "the webhook was not sent: the delivery id {delivery_id:?} is not 1 to 200 printable ASCII characters"
            ))
        })?;
        let event_value = header_token(event).ok_or_else(|| {
            DeliveryError::Permanent(format!(
                "the webhook was not sent: the event {event:?} is not 1 to 200 printable ASCII characters"
            ))
        })?;
        let signature = HeaderValue::from_str(&sign(&self.secret, unix_seconds, body))
            .map_err(|e| DeliveryError::Permanent(format!("the webhook was not sent: the signature header: {e}")))?;
        let request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header("Liaison-Delivery", delivery)
            .header("Liaison-Event", event_value)
            .header("Liaison-Signature", signature)
            .body(body.to_vec());
        let mut response = request.send().await.map_err(|e| self.classify(e))?;
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|v| snippet(v.as_bytes(), 200));
        // Read at most MAX_RESPONSE_BYTES, so that the connection ends cleanly, then drop it.
        // A failure while reading changes nothing: the status has been given.
        let mut head = Vec::new();
        let mut read = 0usize;
        while read < MAX_RESPONSE_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    read += chunk.len();
                    if head.len() < 512 {
                        let room = 512 - head.len();
                        head.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
        drop(response);
        if status.is_success() {
            return Ok(());
        }
        let said = snippet(&head, 200);
        let said = if said.is_empty() {
            String::new()
        } else {
            format!(": {said}")
        };
        let receiver = &self.receiver;
        let transient = status == StatusCode::REQUEST_TIMEOUT
            || status.as_u16() == 425
            || status == StatusCode::TOO_MANY_REQUESTS
            || status.is_server_error();
        if transient {
            return Err(DeliveryError::Transient(format!(
                "the webhook receiver {receiver} answered {status} (will be retried){said}"
            )));
        }
        if status.is_redirection() {
            let to = location.map(|l| format!(" to {l}")).unwrap_or_default();
            return Err(DeliveryError::Permanent(format!(
                "the webhook receiver {receiver} answered {status}, a redirect{to}, which is not followed: \
                 configure the final URL{said}"
            )));
        }
        Err(DeliveryError::Permanent(format!(
            "the webhook receiver {receiver} refused the delivery with {status}{said}"
        )))
    }

    fn classify(&self, e: reqwest::Error) -> DeliveryError {
        let receiver = &self.receiver;
        let timeout = e.is_timeout();
        let connect = e.is_connect();
        let builder = e.is_builder();
        // The URL's query may hold a token: it is left out of messages.
        let e = e.without_url();
        // reqwest's and hyper's own framing says nothing to an operator.
        let detail = chain(&e)
            .replace("error sending request: ", "")
            .replace("client error (Connect): ", "")
            .replace("client error (SendRequest): ", "");
        if builder {
            return DeliveryError::Permanent(format!("the webhook request to {receiver} could not be made: {detail}"));
        }
        if timeout {
            return DeliveryError::Transient(format!(
                "the webhook receiver {receiver} did not answer within {} s: {detail}",
                self.timeout.as_secs_f64()
            ));
        }
        if connect {
            if let Some(tls) = tls_cause(&e) {
                return DeliveryError::Transient(format!(
                    "the TLS handshake with the webhook receiver {receiver} failed (is its certificate issued \
                     for this host name by a root of the system or of webhook.ca_file?): {tls}"
                ));
            }
            let hint = if detail.contains("certificate") || detail.contains("Certificate") {
                " (is its certificate issued for this host name by a root of the system or of webhook.ca_file?)"
            } else {
                ""
            };
            return DeliveryError::Transient(format!(
                "could not connect to the webhook receiver {receiver}{hint}: {detail}"
            ));
        }
        DeliveryError::Transient(format!(
            "the request to the webhook receiver {receiver} failed: {detail}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef";

    fn invalid_field(cfg: WebhookConfig) -> String {
        match Webhook::new(cfg) {
            Err(ConfigError::Invalid { field, .. }) => field.to_owned(),
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }

    #[test]
    fn http_only_to_loopback() {
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://[::1]/hook",
            "http://localhost/x",
            "https://example.org/x",
        ] {
            assert!(Webhook::new(WebhookConfig::new(url, SECRET)).is_ok(), "{url}");
        }
        for url in [
            "http://example.org/hook",
            "http://10.1.2.3/hook",
            "http://127.0.0.2/",
            "ftp://example.org/",
        ] {
            assert_eq!(invalid_field(WebhookConfig::new(url, SECRET)), "webhook.url", "{url}");
        }
        let text = Webhook::new(WebhookConfig::new("http://example.org/hook", SECRET))
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(text.starts_with("webhook.url = \"http://example.org/hook\""), "{text}");
    }

    #[test]
    fn short_secret_and_credentials_refused() {
        assert_eq!(
            invalid_field(WebhookConfig::new("https://example.org/", &b"short"[..])),
            "webhook.secret"
        );
        let text = Webhook::new(WebhookConfig::new("https://user:pa55word@example.org/", SECRET))
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(!text.contains("pa55word"), "{text}");
        let mut cfg = WebhookConfig::new("https://example.org/", SECRET);
        cfg.timeout = Duration::ZERO;
        assert_eq!(invalid_field(cfg), "webhook.timeout");
        assert!(!format!("{:?}", WebhookConfig::new("https://x/", SECRET)).contains("0123456789"));
    }

    #[test]
    fn snippets_are_short_and_printable() {
        assert_eq!(snippet(b"bad\r\nsignature", 100), "bad signature");
        assert_eq!(snippet("长长长长".as_bytes(), 2), "长长…");
    }
}
