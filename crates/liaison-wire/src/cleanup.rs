//! Payloads of clean-up notices over federation (docs/federation.md §11): a `cleanup_notice`
//! carries (part of) a notice issued for an agency the recipient node serves; a
//! `cleanup_status` carries that agency's answer about one item back to the issuing node.
//! Both need protocol version 4. The receiver checks every field ([`CleanupNoticePayload::check`],
//! [`CleanupStatusPayload::check`]) before anything is stored.

use jiff::Timestamp;
use liaison_core::{Pap, Tlp};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Most items one `cleanup_notice` envelope carries; a larger notice is split into parts.
pub const MAX_NOTICE_ITEMS: usize = 250;
/// Most bytes of items (their JSON) one `cleanup_notice` envelope carries: a part ends before
/// this, so an envelope stays well under the 1 MiB body limit of `POST /federation/v1/envelopes`.
pub const MAX_PART_ITEM_BYTES: usize = 512 * 1024;
/// Most parts a notice is split into (250,000 items).
pub const MAX_NOTICE_PARTS: u32 = 1000;
/// Longest indicator value (bytes; a feed field is at most 8 KiB).
pub const MAX_VALUE_BYTES: usize = 8192;
/// Longest short text (agency code, malware, AS name, actor; bytes).
pub const MAX_WORD_BYTES: usize = 256;
/// Longest answer note (characters).
pub const MAX_NOTE_CHARS: usize = 2000;

/// Item statuses a notice may carry.
pub const ITEM_STATUSES: [&str; 3] = ["new", "still-active", "reappeared"];
/// Answers a partner may give.
pub const ANSWERS: [&str; 4] = ["remediated", "not-found", "disputed", "false-positive"];

/// One part of a notice issued for `partner` by `issuer` (agency codes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CleanupNoticePayload {
    pub notice_id: Uuid,
    /// The issuing agency (its code), served by the sending node.
    pub issuer: String,
    /// The addressed agency (its code), served by the receiving node.
    pub partner: String,
    pub interval_start: Timestamp,
    pub interval_end: Timestamp,
    pub issued_at: Timestamp,
    /// The notice's marking: at least the strictest of its items.
    pub tlp: Tlp,
    /// What the partner may do about the items (docs/markings.md). Added in protocol
    /// version 5: absent in an envelope of an older version, which a receiver reads as "not
    /// stated".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pap: Option<Pap>,
    /// 1-based part number and number of parts.
    pub part: u32,
    pub parts: u32,
    pub items: Vec<CleanupItem>,
}

/// One indicator on a notice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CleanupItem {
    pub item_id: Uuid,
    pub kind: String,
    pub value: String,
    /// `new`, `still-active` or `reappeared` (seen again after the partner said remediated).
    pub status: String,
    pub classification: String,
    pub malware: Option<String>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub sightings: u64,
    pub port: Option<u16>,
    pub source_country: Option<String>,
    pub source_asn: Option<u32>,
    pub as_org: Option<String>,
    pub victim_count: Option<u32>,
    pub tlp: Tlp,
    /// For a reappearance: the item the partner answered "remediated", and when.
    pub previous_item: Option<Uuid>,
    pub remediated_at: Option<Timestamp>,
}

/// A partner's answer about one item of a notice it received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CleanupStatusPayload {
    pub notice_id: Uuid,
    pub item_id: Uuid,
    /// The answering agency (its code): the notice's partner.
    pub partner: String,
    /// `remediated`, `not-found`, `disputed` or `false-positive`.
    pub status: String,
    pub note: Option<String>,
    pub at: Timestamp,
    /// The answering user (qualified with the node by the receiver).
    pub actor: String,
}

fn word(field: &str, s: &str, max: usize) -> Result<(), String> {
    if s.is_empty() || s.len() > max {
        return Err(format!("{field}: {} bytes (1 to {max} allowed)", s.len()));
    }
    if s.chars().any(char::is_control) {
        return Err(format!("{field}: control characters are not allowed"));
    }
    Ok(())
}

fn opt_word(field: &str, s: Option<&str>, max: usize) -> Result<(), String> {
    s.map_or(Ok(()), |s| word(field, s, max))
}

/// `s` cut to at most `max` bytes (on a character boundary), with control characters as
/// spaces: how a sender fits a descriptive text (malware, AS name) into the bounds.
pub fn fit_word(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    for c in s.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    out
}

impl CleanupItem {
    /// Whether the item's value can travel (length and characters; the receiver checks the rest).
    pub fn value_fits(value: &str) -> bool {
        word("value", value, MAX_VALUE_BYTES).is_ok()
    }
}

impl CleanupNoticePayload {
    /// Checks sizes and closed words (not what the node knows: agencies, indicator kinds).
    pub fn check(&self) -> Result<(), String> {
        word("issuer", &self.issuer, MAX_WORD_BYTES)?;
        word("partner", &self.partner, MAX_WORD_BYTES)?;
        if self.interval_end <= self.interval_start {
            return Err("interval_end: must be after interval_start".into());
        }
        if self.parts == 0 || self.parts > MAX_NOTICE_PARTS || self.part == 0 || self.part > self.parts {
            return Err(format!(
                "part {} of {}: parts run from 1 to at most {MAX_NOTICE_PARTS}",
                self.part, self.parts
            ));
        }
        if self.items.is_empty() || self.items.len() > MAX_NOTICE_ITEMS {
            return Err(format!(
                "items: {} (1 to {MAX_NOTICE_ITEMS} per envelope)",
                self.items.len()
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, it) in self.items.iter().enumerate() {
            let f = |name: &str| format!("items/{i}/{name}");
            if !seen.insert(it.item_id) {
                return Err(format!("{}: {} appears twice", f("item_id"), it.item_id));
            }
            word(&f("kind"), &it.kind, MAX_WORD_BYTES)?;
            word(&f("value"), &it.value, MAX_VALUE_BYTES)?;
            if !ITEM_STATUSES.contains(&it.status.as_str()) {
                return Err(format!(
                    "{}: '{}' (expected {})",
                    f("status"),
                    it.status,
                    ITEM_STATUSES.join(", ")
                ));
            }
            word(&f("classification"), &it.classification, MAX_WORD_BYTES)?;
            opt_word(&f("malware"), it.malware.as_deref(), MAX_WORD_BYTES)?;
            opt_word(&f("source_country"), it.source_country.as_deref(), 2)?;
            opt_word(&f("as_org"), it.as_org.as_deref(), MAX_WORD_BYTES)?;
            if it.last_seen < it.first_seen {
                return Err(format!("{}: before first_seen", f("last_seen")));
            }
            if it.tlp > self.tlp {
                return Err(format!(
                    "{}: {} is stricter than the notice's {}; the notice carries the strictest marking of its items",
                    f("tlp"),
                    it.tlp.as_str(),
                    self.tlp.as_str()
                ));
            }
        }
        Ok(())
    }
}

impl CleanupStatusPayload {
    /// Checks sizes and closed words.
    pub fn check(&self) -> Result<(), String> {
        word("partner", &self.partner, MAX_WORD_BYTES)?;
        word("actor", &self.actor, MAX_WORD_BYTES)?;
        if !ANSWERS.contains(&self.status.as_str()) {
            return Err(format!("status: '{}' (expected {})", self.status, ANSWERS.join(", ")));
        }
        if let Some(n) = &self.note
            && n.chars().count() > MAX_NOTE_CHARS
        {
            return Err(format!(
                "note: {} characters (at most {MAX_NOTE_CHARS})",
                n.chars().count()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    fn item(i: u128, tlp: Tlp) -> CleanupItem {
        CleanupItem {
            item_id: Uuid::from_u128(i),
            kind: "ipv4".into(),
            value: "198.51.100.1".into(),
            status: "new".into(),
            classification: "c2-server".into(),
            malware: Some("qakbot".into()),
            first_seen: t(10),
            last_seen: t(20),
            sightings: 2,
            port: Some(443),
            source_country: Some("CN".into()),
            source_asn: Some(4134),
            as_org: None,
            victim_count: None,
            tlp,
            previous_item: None,
            remediated_at: None,
        }
    }

    fn notice(items: Vec<CleanupItem>) -> CleanupNoticePayload {
        CleanupNoticePayload {
            notice_id: Uuid::from_u128(1),
            issuer: "FBI".into(),
            partner: "CN-MPS".into(),
            interval_start: t(0),
            interval_end: t(86_400),
            issued_at: t(90_000),
            tlp: Tlp::Amber,
            pap: Some(Pap::Amber),
            part: 1,
            parts: 1,
            items,
        }
    }

    #[test]
    fn notice_checks_name_the_field() {
        assert_eq!(notice(vec![item(1, Tlp::Green), item(2, Tlp::Amber)]).check(), Ok(()));
        let bad = |f: &dyn Fn(&mut CleanupNoticePayload), want: &str| {
            let mut n = notice(vec![item(1, Tlp::Green), item(2, Tlp::Amber)]);
            f(&mut n);
            let e = n.check().unwrap_err();
            assert!(e.contains(want), "{e} (wanted {want})");
        };
        bad(&|n| n.items.clear(), "items: 0");
        bad(
            &|n| n.items = (0..251).map(|i| item(i, Tlp::Green)).collect(),
            "items: 251",
        );
        bad(&|n| n.items[1].item_id = n.items[0].item_id, "appears twice");
        bad(&|n| n.items[0].tlp = Tlp::Red, "items/0/tlp");
        bad(&|n| n.items[1].status = "gone".into(), "items/1/status");
        bad(&|n| n.items[0].value = "x".repeat(MAX_VALUE_BYTES + 1), "items/0/value");
        bad(&|n| n.items[0].malware = Some("a\nb".into()), "control characters");
        bad(&|n| n.items[0].last_seen = t(0), "items/0/last_seen");
        bad(&|n| n.part = 2, "part 2 of 1");
        bad(&|n| n.parts = MAX_NOTICE_PARTS + 1, "parts run from 1");
        bad(&|n| n.interval_end = n.interval_start, "interval_end");
        bad(&|n| n.partner = String::new(), "partner");
    }

    #[test]
    fn status_checks_and_fitting_words() {
        let s = CleanupStatusPayload {
            notice_id: Uuid::from_u128(1),
            item_id: Uuid::from_u128(2),
            partner: "CN-MPS".into(),
            status: "remediated".into(),
            note: Some("done".into()),
            at: t(5),
            actor: "officer".into(),
        };
        assert_eq!(s.check(), Ok(()));
        let mut bad = s.clone();
        bad.status = "fixed".into();
        assert!(bad.check().unwrap_err().starts_with("status"));
        let mut bad = s.clone();
        bad.note = Some("n".repeat(MAX_NOTE_CHARS + 1));
        assert!(bad.check().unwrap_err().starts_with("note"));
        let mut bad = s;
        bad.actor = String::new();
        assert!(bad.check().unwrap_err().starts_with("actor"));

        assert_eq!(fit_word("a\tb", 10), "a b");
        assert_eq!(fit_word("日本語", 7), "日本");
        assert!(CleanupItem::value_fits("198.51.100.1"));
        assert!(!CleanupItem::value_fits(&"x".repeat(MAX_VALUE_BYTES + 1)));
    }
}
