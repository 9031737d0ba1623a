//! # liaison-notify
//!
//! How a Liaison node tells people that something happened: e-mail through the configured
//! SMTP relay ([`Mailer`]) and signed webhooks ([`Webhook`]). This crate makes one attempt
//! at one delivery and says whether a failure is worth retrying
//! ([`DeliveryError::is_transient`]); the node's outbox keeps the deliveries, retries the
//! transient failures with backoff, and gives up on the permanent ones.
//!
//! Both clients use rustls with the *ring* provider and always verify certificates, against
//! the system's roots plus the PEM roots of an optional `ca_file`. Plaintext (SMTP without
//! TLS, webhooks over `http://`) is allowed only to 127.0.0.1, ::1 or localhost; the
//! constructors refuse it for any other host. Configuration errors ([`ConfigError`]) name the
//! field and the value that is wrong, and never echo a password or the webhook secret.
//!
//! ## E-mail
//!
//! [`MailTls::StartTls`] (port 587) requires STARTTLS: a relay that does not offer it gets
//! nothing, not even the credentials, and there is no fallback to plaintext.
//! [`MailTls::Tls`] is implicit TLS (port 465). Sign-in is AUTH PLAIN or LOGIN, only after
//! TLS. Texts are UTF-8: the subject is RFC 2047 encoded and the bodies quoted-printable or
//! base64 when they are not ASCII; an HTML part makes the mail `multipart/alternative`.
//! A subject, address or header value with CR or LF is refused before connecting (no header
//! injection), as is an invalid address, which the error names. [`MailConfig::timeout`]
//! bounds one whole send (connect, TLS, sign-in, transfer). Each send opens its own connection.
//!
//! ## Webhook signature
//!
//! Each delivery is one `POST` of a JSON body to the configured URL, with the headers
//!
//! ```text
//! Content-Type: application/json
//! Liaison-Delivery: <delivery id, the same on every retry: receivers deduplicate on it>
//! Liaison-Event: <event name>
//! Liaison-Signature: t=<unix seconds>,v1=<64 lowercase hex digits>
//! User-Agent: liaison-notify/<version>
//! ```
//!
//! `v1` is HMAC-SHA256, keyed with the shared secret (at least 16 bytes; 32 random bytes
//! advised), over exactly these bytes: the decimal ASCII of the timestamp, one `.` (0x2E),
//! then the request body as sent, byte for byte:
//!
//! ```text
//! v1 = hex(HMAC-SHA256(secret, "<t>" || "." || body))
//! ```
//!
//! The timestamp is the time of this attempt, so a retry carries a fresh signature. A
//! receiver verifies ([`verify`] does all of it):
//!
//! 1. read the raw body before any JSON parsing (re-serialised JSON will not match);
//! 2. split the header on `,`, take `t=` and every `v1=` (ignore other keys, e.g. a later `v2=`);
//! 3. refuse when `|now - t|` exceeds its tolerance: 5 minutes (300 s) is advised, which
//!    bounds replays while allowing for clock skew; keep the clocks NTP-synchronised;
//! 4. compute the HMAC over `"<t>." || body` and compare with each `v1` in constant time;
//!    one match suffices (several `v1` values allow a secret rotation);
//! 5. deduplicate on `Liaison-Delivery`: a delivery whose answer was lost is sent again.
//!
//! Redirects are not followed and no proxy is used; [`WebhookConfig::timeout`] bounds the whole
//! request; at most 64 KiB of the response body is read (its start is quoted in errors), then
//! dropped; bodies over 1 MiB are refused.
//!
//! ## Retry classification
//!
//! | outcome | class |
//! | --- | --- |
//! | webhook: 2xx | delivered |
//! | webhook: 408, 425, 429, 5xx | [`DeliveryError::Transient`] |
//! | webhook: other 4xx, 3xx (redirects are not followed), 1xx | [`DeliveryError::Permanent`] |
//! | SMTP: 4xx reply (e.g. 421, 450, 451, 452, 454) | Transient |
//! | SMTP: 5xx reply (e.g. 535 sign-in refused, 550 relay or mailbox refused, 552, 554) | Permanent |
//! | SMTP: the relay offers no AUTH PLAIN or LOGIN | Permanent |
//! | connection refused or reset, DNS failure, timeouts (both) | Transient |
//! | TLS handshake failure, untrusted certificate (both), STARTTLS not offered | Transient: the peer's set-up may be fixed; nothing was sent in clear |
//! | invalid mail or request (CR/LF, bad address, body > 1 MiB, bad delivery id) | Permanent, before connecting |

mod error;
mod mail;
mod signature;
mod tls;
mod webhook;

pub use error::{ConfigError, DeliveryError};
pub use mail::{Mail, MailConfig, MailTls, Mailer};
pub use signature::{VerifyError, sign, verify};
pub use webhook::{MAX_BODY_BYTES, MAX_RESPONSE_BYTES, MIN_SECRET_BYTES, Webhook, WebhookConfig};

#[cfg(test)]
mod tests {
    use super::*;

    fn is_send<T: Send>(_: T) {}
    fn is_send_sync<T: Send + Sync>() {}

    /// The clients are shared between tasks, and their futures can be spawned.
    #[test]
    fn clients_and_futures_are_send() {
        is_send_sync::<Mailer>();
        is_send_sync::<Webhook>();
        is_send_sync::<DeliveryError>();
        is_send_sync::<ConfigError>();
        let Ok(mailer) = Mailer::new(MailConfig::new("localhost", "a@example.org")) else {
            panic!("a valid configuration");
        };
        let Ok(webhook) = Webhook::new(WebhookConfig::new("https://example.org/", &[7u8; 32][..])) else {
            panic!("a valid configuration");
        };
        let mail = Mail::default();
        // Built, never polled.
        is_send(mailer.send(&mail));
        is_send(webhook.post("d", "e", b"{}", 0));
    }
}
