use std::path::PathBuf;

/// A delivery that did not happen, and whether trying again later may help.
///
/// The message says what failed in words an operator understands, naming the relay or the
/// receiver; it never holds a password or the webhook secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth retrying later: the receiver was down, slow, overloaded or said "try later".
    #[error("{0}")]
    Transient(String),
    /// Retrying the same delivery will fail the same way: it was refused, or is invalid.
    #[error("{0}")]
    Permanent(String),
}

impl DeliveryError {
    /// True when the same delivery may succeed later (the outbox retries it).
    pub fn is_transient(&self) -> bool {
        matches!(self, DeliveryError::Transient(_))
    }

    /// The operator-facing message, without the classification.
    pub fn message(&self) -> &str {
        match self {
            DeliveryError::Transient(m) | DeliveryError::Permanent(m) => m,
        }
    }
}

/// A configuration that cannot be used; it names the field and the value that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `field` holds `value`, which is wrong for the reason given.
    #[error("{field} = {value}: {problem}")]
    Invalid {
        field: &'static str,
        /// The offending value as written (quoted), or a description when it is a secret.
        value: String,
        problem: String,
    },
    /// The extra CA file could not be read or holds no usable certificate.
    #[error("{field} = {path:?}: {problem}")]
    CaFile {
        field: &'static str,
        path: PathBuf,
        problem: String,
    },
    /// The TLS client could not be set up (no field is at fault).
    #[error("the TLS client could not be set up: {0}")]
    Tls(String),
}

impl ConfigError {
    pub(crate) fn invalid(field: &'static str, value: impl std::fmt::Debug, problem: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field,
            value: format!("{value:?}"),
            problem: problem.into(),
        }
    }
}

/// `error` and its sources, joined with ": " (the outermost first, repeated text skipped).
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let part = inner.to_string();
        if !part.is_empty() && !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = inner.source();
    }
    text
}

/// The rustls error somewhere in `error`'s sources, looking inside `io::Error`s too (their
/// `source()` skips the error they wrap).
pub(crate) fn tls_cause(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        current = match e.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}
