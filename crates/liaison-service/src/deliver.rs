//! Notifications that leave the node: e-mail through the configured SMTP relay and signed
//! webhooks (`[notify]`, docs/queues.md). The notification pass queues them in the outbox
//! (`notify_outbox`), each with its text fixed when queued; [`Node::deliver_pass`] sends what
//! is due, retries transient failures with a doubling delay and gives up on permanent ones
//! (each give-up is in the audit log).
//!
//! What leaves carries a link to the request and at most what a `TLP:GREEN` reader may see:
//! for a request marked CLEAR or GREEN, the notification in words (reference, kind, state,
//! deadline — never a comment's or a summary's text); for AMBER, AMBER+STRICT and RED, only
//! the kind of notification and the link.

use crate::error::{Result, ServiceError};
use crate::node::Node;
use jiff::Timestamp;
use liaison_core::Tlp;
use liaison_core::record::{Notification, User, UserPrefs};
use liaison_store::{NewDelivery, NewNotification};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[notify]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// The node's web address as its users reach it, for links (default: the API's listen
    /// address over http).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The SMTP relay (none: no e-mail).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp: Option<SmtpSection>,
    /// Webhooks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<WebhookSection>,
    /// Seconds before the first retry of a failed delivery; each retry waits twice as long,
    /// at most an hour.
    pub retry_seconds: u64,
    /// Attempts before a delivery is given up.
    pub max_attempts: u32,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            base_url: None,
            smtp: None,
            webhooks: Vec::new(),
            retry_seconds: 60,
            max_attempts: 20,
        }
    }
}

/// `[notify.smtp]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSection {
    pub host: String,
    /// Default: 587 with starttls, 465 with tls, 25 with none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// starttls (default: required, never falls back to plaintext), tls (implicit), or none
    /// (only to 127.0.0.1, ::1 or localhost).
    #[serde(default = "default_tls")]
    pub tls: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// A file holding the password (never the password itself in this file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// The sender, e.g. "Liaison FBI <liaison@fbi.example>".
    pub from: String,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Extra PEM roots to trust besides the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

fn default_tls() -> String {
    "starttls".into()
}

fn default_timeout() -> u64 {
    30
}

/// `[[notify.webhooks]]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSection {
    /// A name for the receiver (in the outbox and the audit log).
    pub name: String,
    /// https://, or http:// to 127.0.0.1, ::1 or localhost only.
    pub url: String,
    /// A file holding the shared secret (at least 16 bytes; 32 random bytes advised).
    pub secret_file: PathBuf,
    /// Only notifications of users of this agency (its code); default: every agency here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agency: Option<String>,
    /// Only these kinds of notification (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<String>>,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

impl NotifyConfig {
    /// Checks the values that need no file (kinds, names, retry settings).
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.max_attempts == 0 {
            return Err("[notify] max_attempts must be at least 1".into());
        }
        if self.retry_seconds == 0 {
            return Err("[notify] retry_seconds must be at least 1".into());
        }
        if let Some(s) = &self.smtp
            && !matches!(s.tls.as_str(), "starttls" | "tls" | "none")
        {
            return Err(format!("[notify.smtp] tls = \"{}\": give starttls, tls or none", s.tls));
        }
        let mut names = std::collections::HashSet::new();
        for w in &self.webhooks {
            if w.name.trim().is_empty() || !names.insert(w.name.clone()) {
                return Err(format!(
                    "[[notify.webhooks]] name = \"{}\": give each webhook its own name",
                    w.name
                ));
            }
            for k in w.kinds.iter().flatten() {
                if !crate::work::NOTIFICATION_KINDS.contains(&k.as_str()) {
                    return Err(format!(
                        "[[notify.webhooks]] {}: kind \"{k}\" is not one of {}",
                        w.name,
                        crate::work::NOTIFICATION_KINDS.join(", ")
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The configured channels, ready to send.
#[derive(Default)]
pub struct NotifyRuntime {
    pub(crate) config: NotifyConfig,
    mailer: Option<liaison_notify::Mailer>,
    webhooks: Vec<(WebhookSection, liaison_notify::Webhook)>,
}

fn read_secret(path: &std::path::Path, what: &str) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path)
        .map_err(|e| ServiceError::invalid(what, format!("cannot read {}: {e}", path.display())))?;
    if meta.len() > 4096 {
        return Err(ServiceError::invalid(
            what,
            format!("{} is over 4 KiB: is it the right file?", path.display()),
        ));
    }
    let bytes =
        std::fs::read(path).map_err(|e| ServiceError::invalid(what, format!("cannot read {}: {e}", path.display())))?;
    // A trailing newline is not part of the secret.
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    Ok(bytes[..end].to_vec())
}

impl NotifyRuntime {
    /// Opens the channels of `config` (reads the password and secret files, checks the
    /// addresses and TLS settings).
    pub fn open(config: NotifyConfig) -> Result<NotifyRuntime> {
        config.validate().map_err(|e| ServiceError::invalid("notify", e))?;
        let mailer = match &config.smtp {
            None => None,
            Some(s) => {
                let tls = match s.tls.as_str() {
                    "tls" => liaison_notify::MailTls::Tls,
                    "none" => liaison_notify::MailTls::None,
                    _ => liaison_notify::MailTls::StartTls,
                };
                let password =
                    match &s.password_file {
                        Some(p) => Some(String::from_utf8(read_secret(p, "notify.smtp.password_file")?).map_err(
                            |_| ServiceError::invalid("notify.smtp.password_file", "the password is not UTF-8"),
                        )?),
                        None => None,
                    };
                let mut c = liaison_notify::MailConfig::new(s.host.clone(), s.from.clone());
                c.port = s.port.unwrap_or(tls.default_port());
                c.tls = tls;
                c.username = s.username.clone();
                c.password = password;
                c.timeout = std::time::Duration::from_secs(s.timeout_seconds.max(1));
                c.ca_file = s.ca_file.clone();
                Some(liaison_notify::Mailer::new(c).map_err(|e| ServiceError::invalid("notify.smtp", e.to_string()))?)
            }
        };
        let mut webhooks = Vec::new();
        for w in &config.webhooks {
            let secret = read_secret(&w.secret_file, "notify.webhooks.secret_file")?;
            let mut c = liaison_notify::WebhookConfig::new(w.url.clone(), secret);
            c.timeout = std::time::Duration::from_secs(w.timeout_seconds.max(1));
            c.ca_file = w.ca_file.clone();
            let hook = liaison_notify::Webhook::new(c)
                .map_err(|e| ServiceError::invalid(&format!("notify.webhooks.{}", w.name), e.to_string()))?;
            webhooks.push((w.clone(), hook));
        }
        Ok(NotifyRuntime {
            config,
            mailer,
            webhooks,
        })
    }
}

/// What one delivery pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
}

/// How far a notification about a request marked `tlp` may be told outside the node.
fn tellable(tlp: Option<Tlp>) -> bool {
    matches!(tlp, Some(Tlp::Clear | Tlp::Green))
}

impl Node {
    /// Sets `[notify]` (e-mail relay, webhooks, retries).
    pub fn with_notify(mut self, config: NotifyConfig) -> Result<Self> {
        self.notify = std::sync::Arc::new(NotifyRuntime::open(config)?);
        Ok(self)
    }

    /// Queues the e-mails and webhook calls the notifications `stored` call for.
    pub(crate) async fn queue_deliveries(
        &self,
        stored: &[(liaison_core::NotificationId, NewNotification)],
        users: &[User],
        prefs: &std::collections::HashMap<liaison_core::UserId, UserPrefs>,
        now: Timestamp,
    ) -> Result<usize> {
        let rt = &self.notify;
        if rt.mailer.is_none() && rt.webhooks.is_empty() {
            return Ok(0);
        }
        let base = rt.config.base_url.clone().unwrap_or_default();
        let mut out = Vec::new();
        for (id, n) in stored {
            let Some(user) = users.iter().find(|u| u.id == n.user) else {
                continue;
            };
            let p = prefs.get(&n.user).cloned().unwrap_or_default();
            let lang = p.language.clone().unwrap_or_else(|| "en".into());
            let tlp = n
                .data
                .get("tlp")
                .and_then(|t| serde_json::from_value::<Tlp>(t.clone()).ok());
            let open = tellable(tlp) || n.request.is_none();
            let link = match n.request {
                Some(r) => format!("{base}/requests/{r}"),
                None => format!("{base}/"),
            };
            let as_notification = Notification {
                id: *id,
                at: n.at,
                kind: n.kind.clone(),
                request: n.request,
                data: n.data.clone(),
                read_at: None,
            };
            let words = if open {
                crate::work::notification_words(&as_notification, now, &lang)
            } else if lang.starts_with("zh") {
                format!(
                    "您关注的请求有新动态（{}）。请登录 Liaison 查看。",
                    n.kind.replace('_', " ")
                )
            } else {
                format!(
                    "A request you follow has news ({}). Sign in to Liaison to read it.",
                    n.kind.replace('_', " ")
                )
            };
            if rt.mailer.is_some()
                && let Some(to) = &p.email
            {
                let wanted = match &p.email_kinds {
                    Some(k) => k.contains(&n.kind),
                    None => crate::work::DEFAULT_EMAIL_KINDS.contains(&n.kind.as_str()),
                };
                if wanted {
                    let text = if lang.starts_with("zh") {
                        format!("{words}\n\n打开：{link}\n\n——Liaison（您可在“偏好设置”中更改通知方式）\n")
                    } else {
                        format!("{words}\n\nOpen: {link}\n\n-- Liaison (change what you receive in your preferences)\n")
                    };
                    out.push(NewDelivery {
                        channel: "email".into(),
                        target: to.clone(),
                        dedupe: id.to_string(),
                        body: serde_json::json!({
                            "subject": format!("[Liaison] {}", words.chars().take(150).collect::<String>()),
                            "text": text,
                            "language": lang,
                            "message_id": format!("<{id}@liaison.invalid>"),
                        }),
                    });
                }
            }
            for (w, _) in &rt.webhooks {
                if let Some(code) = &w.agency {
                    let a = self.store.agency(user.agency).await?;
                    if !a.code.eq_ignore_ascii_case(code) {
                        continue;
                    }
                }
                if w.kinds.as_ref().is_some_and(|k| !k.contains(&n.kind)) {
                    continue;
                }
                // One call per history line and kind for an agency, whoever of it was told.
                let dedupe = format!("{}:{}:{}", n.event, n.kind, user.agency);
                let mut body = serde_json::json!({
                    "delivery": dedupe,
                    "kind": n.kind,
                    "at": n.at,
                    "agency": user.agency,
                    "link": link,
                    "text": words,
                });
                if open && let Some(o) = body.as_object_mut() {
                    for k in ["reference", "state", "deadline", "due_at", "kind"] {
                        if let Some(v) = n.data.get(k) {
                            o.insert(if k == "kind" { "request_kind".into() } else { k.into() }, v.clone());
                        }
                    }
                }
                out.push(NewDelivery {
                    channel: "webhook".into(),
                    target: w.name.clone(),
                    dedupe,
                    body,
                });
            }
        }
        Ok(self.store.enqueue_deliveries(&out, now).await?)
    }

    /// Sends the deliveries due at `now` (at most 50): a transient failure is tried again
    /// later (the delay doubles from `[notify] retry_seconds`, at most an hour), a permanent
    /// one, or the last attempt, is given up.
    pub async fn deliver_pass(&self, now: Timestamp) -> Result<DeliveryReport> {
        let rt = self.notify.clone();
        let mut report = DeliveryReport::default();
        for d in self.store.due_deliveries(now, 50).await? {
            let body = &d.body;
            let s = |k: &str| body.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
            let outcome = match d.channel.as_str() {
                "email" => match &rt.mailer {
                    Some(m) => {
                        let mail = liaison_notify::Mail {
                            to: vec![d.target.clone()],
                            subject: s("subject"),
                            text: s("text"),
                            html: None,
                            message_id: Some(s("message_id")).filter(|x| !x.is_empty()),
                            language: Some(s("language")).filter(|x| !x.is_empty()),
                        };
                        m.send(&mail).await
                    }
                    None => Err(liaison_notify::DeliveryError::Permanent(
                        "no SMTP relay is configured any more ([notify.smtp])".into(),
                    )),
                },
                "webhook" => match rt.webhooks.iter().find(|(w, _)| w.name == d.target) {
                    Some((_, hook)) => {
                        let bytes = serde_json::to_vec(body).map_err(|e| ServiceError::Internal(e.to_string()))?;
                        hook.post(&d.dedupe, &s("kind"), &bytes, Timestamp::now().as_second())
                            .await
                    }
                    None => Err(liaison_notify::DeliveryError::Permanent(format!(
                        "no webhook named {} is configured any more",
                        d.target
                    ))),
                },
                other => Err(liaison_notify::DeliveryError::Permanent(format!(
                    "unknown channel {other}"
                ))),
            };
            let attempts = d.attempts + 1;
            let result = match outcome {
                Ok(()) => {
                    report.sent += 1;
                    Ok(())
                }
                Err(e) if e.is_transient() && attempts < i64::from(rt.config.max_attempts) => {
                    report.retrying += 1;
                    let shift = u32::try_from(attempts - 1).unwrap_or(30).min(30);
                    let delay = rt.config.retry_seconds.saturating_mul(1u64 << shift).min(3600);
                    let at = now + jiff::SignedDuration::from_secs(i64::try_from(delay).unwrap_or(3600));
                    tracing::warn!(channel = d.channel, target = d.target, attempts, error = %e, "delivery failed; will retry");
                    Err((e.to_string(), Some(at)))
                }
                Err(e) => {
                    report.failed += 1;
                    tracing::error!(channel = d.channel, target = d.target, attempts, error = %e, "delivery given up");
                    Err((e.to_string(), None))
                }
            };
            self.store.delivery_attempted(&d.id, result, now).await?;
        }
        Ok(report)
    }

    /// The outbox by channel and state, and the latest errors (administrators).
    pub async fn delivery_status(&self, p: &liaison_core::record::Principal) -> Result<serde_json::Value> {
        crate::node::require(p.role.may_administer(), "reading the notification outbox", p)?;
        let (counts, errors) = self.store.delivery_stats().await?;
        Ok(serde_json::json!({
            "counts": counts.iter().map(|(c, s, n)| serde_json::json!({"channel": c, "state": s, "count": n})).collect::<Vec<_>>(),
            "errors": errors.iter().map(|(c, t, s, e)| serde_json::json!({"channel": c, "target": t, "state": s, "error": e})).collect::<Vec<_>>(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What leaves the node about a request is told in words only for CLEAR and GREEN; AMBER,
    /// AMBER+STRICT, RED, and a marking missing or unreadable in the notification's data give
    /// only "a request you follow has news" and the link (the end-to-end test in
    /// crates/liaison-cli/tests/notify.rs sends GREEN and AMBER through real receivers).
    #[test]
    fn only_clear_and_green_are_told_in_words() {
        let read = |v: serde_json::Value| tellable(serde_json::from_value::<Tlp>(v).ok());
        for (marking, told) in [
            ("TLP:CLEAR", true),
            ("TLP:GREEN", true),
            ("TLP:AMBER", false),
            ("TLP:AMBER+STRICT", false),
            ("TLP:RED", false),
            ("TLP:PURPLE", false),
            ("", false),
        ] {
            assert_eq!(read(serde_json::json!(marking)), told, "{marking}");
        }
        assert!(!read(serde_json::Value::Null));
        assert!(!tellable(None));
        // The markings as the notification pass writes them into a notification's data.
        for t in [Tlp::Amber, Tlp::AmberStrict, Tlp::Red] {
            let data = serde_json::json!({ "tlp": t });
            assert!(!read(data["tlp"].clone()), "{t:?}");
        }
    }
}
