//! # liaison-core
//!
//! The words and rules of cross-border assistance, with no I/O: identifiers, jurisdictions,
//! the directory, assistance requests, their lifecycle, deadlines, and TLP markings.
//!
//! Architecture invariant: this crate knows nothing about storage, HTTP, the network or the
//! clock (callers pass `now`). Every other crate depends on it; it depends on none of them.

pub mod approval;
pub mod case;
pub mod directory;
pub mod ids;
pub mod jurisdiction;
pub mod lifecycle;
pub mod marking;
pub mod money;
pub mod pap;
pub mod record;
pub mod request;
pub mod search;
pub mod sla;
pub mod stats;
pub mod tlp;

pub use ids::{AgencyId, ContactId, EventId, NotificationId, RequestId, UnitId, UserId};
pub use jurisdiction::CountryCode;
pub use lifecycle::{Actor, Role, Side, State};
pub use marking::Marking;
pub use pap::Pap;
pub use request::{DataCategory, Provider, RequestKind, Urgency};
pub use tlp::Tlp;

/// A text cell for a CSV export, safe to open in a spreadsheet: a value starting with `=`, `+`,
/// `-`, `@`, a tab or a carriage return would be read as a formula (CSV injection), so it gets
/// a leading `'`, which spreadsheets show as text. Other values are unchanged.
pub fn spreadsheet_safe(s: &str) -> std::borrow::Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{s}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// A word that is not one of the values a field accepts. Shown as, for example,
/// `unknown state 'answred' (did you mean 'answered'?); expected one of: draft, submitted, …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownValue {
    /// The type's name (`RequestKind`); shown in words (`request kind`).
    pub what: &'static str,
    pub value: String,
    pub expected: &'static [&'static str],
}

impl UnknownValue {
    /// The closest accepted value, if it is close enough to be a typo (at most a third of its
    /// letters differ) or the value differs only in case, hyphens or spaces.
    pub fn suggestion(&self) -> Option<&'static str> {
        let norm = |s: &str| s.to_ascii_lowercase().replace(['-', ' '], "_");
        let v = norm(&self.value);
        if let Some(e) = self.expected.iter().find(|e| norm(e) == v) {
            return Some(e);
        }
        self.expected
            .iter()
            .map(|e| (edit_distance(&v, e), *e))
            .filter(|(d, e)| *d > 0 && *d * 3 <= e.chars().count().max(3))
            .min_by_key(|(d, _)| *d)
            .map(|(_, e)| e)
    }
}

impl std::fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut words = String::new();
        for (i, c) in self.what.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                words.push(' ');
            }
            words.push(c.to_ascii_lowercase());
        }
        write!(f, "unknown {words} '{}'", self.value)?;
        if let Some(s) = self.suggestion() {
            write!(f, " (did you mean '{s}'?)")?;
        }
        write!(f, "; expected one of: {}", self.expected.join(", "))
    }
}

impl std::error::Error for UnknownValue {}

/// Levenshtein distance over characters (short words only: accepted values are a few dozen
/// letters).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb { prev } else { 1 + prev.min(row[j]).min(cur) };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn unknown_values_are_named_in_words_with_a_suggestion() {
        let e = "answred".parse::<State>().unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("unknown state 'answred' (did you mean 'answered'?); expected one of: draft"),
            "{text}"
        );
        let e = "Subscriber-Information".parse::<RequestKind>().unwrap_err();
        assert_eq!(e.suggestion(), Some("subscriber_information"));
        assert!(e.to_string().starts_with("unknown request kind"), "{e}");
        let e = "zzzzzz".parse::<RequestKind>().unwrap_err();
        assert_eq!(e.suggestion(), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn csv_cells_that_would_be_formulas_are_neutralised() {
        for f in ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"] {
            assert_eq!(spreadsheet_safe(f), format!("'{f}"));
        }
        for ok in ["FBI", "CN-MPS", "203.0.113.5", "2026-12-01", ""] {
            assert_eq!(spreadsheet_safe(ok), ok);
        }
    }
}
