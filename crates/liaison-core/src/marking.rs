//! Markings: how far a shared object may travel, and who counts as which audience.
//!
//! docs/markings.md is the human form of this module: its table of marking level ×
//! audience is read by a test and compared with [`Marking::admits`] cell by cell.
//!
//! Every shared object (a request, a comment, an indicator, a notice) has an *originating
//! agency*, usually a *recipient organisation* (the one agency it is addressed to), and a
//! TLP 2.0 level. A reader's [`Relation`] to the object is the narrowest of:
//! originator, named recipient, member of the recipient organisation, one of its declared
//! clients, a member of the community (agencies of this node and of pinned peers), outsider.
//! The object reaches a reader only when the product sends it there (the parties of a
//! request, the partner of a notice) **and** the marking admits the reader's relation.

use crate::tlp::{Audience, Tlp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most users a marking may name.
pub const MAX_RECIPIENTS: usize = 50;
/// Longest user name a marking may name (as user names are limited elsewhere).
pub const MAX_RECIPIENT_LEN: usize = 64;

/// A TLP 2.0 level and, for `TLP:RED`, the users it is meant for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Marking {
    pub tlp: Tlp,
    /// User names at the recipient organisation who are the named recipients. Empty: the
    /// recipient organisation as a whole is the named recipient (it is named by the object:
    /// the requested agency of a request, the partner of a notice).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
}

impl Marking {
    /// A marking with no named users.
    pub fn new(tlp: Tlp) -> Marking {
        Marking {
            tlp,
            recipients: Vec::new(),
        }
    }

    /// What a stored object without a marking is read as (rows written before markings
    /// existed): the strictest level that still reaches the recipient organisation.
    pub fn upgrade_default() -> Marking {
        Marking::new(Tlp::AmberStrict)
    }

    /// Whether a reader in `relation` may receive the object.
    pub fn admits(&self, relation: Relation) -> bool {
        admits(self.tlp, relation)
    }

    /// Checks the marking's own fields: at most [`MAX_RECIPIENTS`] user names, each
    /// non-empty, at most [`MAX_RECIPIENT_LEN`] bytes, without spaces or control characters,
    /// no repeats; named users only on `TLP:RED` (other levels do not name people).
    pub fn validate(&self) -> Result<(), MarkingError> {
        if !self.recipients.is_empty() && self.tlp != Tlp::Red {
            return Err(MarkingError::RecipientsNeedRed(self.tlp));
        }
        if self.recipients.len() > MAX_RECIPIENTS {
            return Err(MarkingError::TooManyRecipients(self.recipients.len()));
        }
        for (i, r) in self.recipients.iter().enumerate() {
            let bad =
                r.is_empty() || r.len() > MAX_RECIPIENT_LEN || r.chars().any(|c| c.is_whitespace() || c.is_control());
            if bad {
                return Err(MarkingError::BadRecipient(r.chars().take(80).collect()));
            }
            if self.recipients[..i].contains(r) {
                return Err(MarkingError::RepeatedRecipient(r.clone()));
            }
        }
        Ok(())
    }

    /// Checks that `by` may change this marking to `to`: only the originating agency may lower,
    /// raise, or recall it; anyone else keeps it as it came.
    pub fn check_change(&self, to: &Marking, by: Relation) -> Result<(), MarkingError> {
        to.validate()?;
        if by != Relation::Originator {
            return Err(MarkingError::NotOriginator);
        }
        Ok(())
    }

    /// The marking an object carries when it is passed on with `other` (a comment on a
    /// request, a notice of several indicators): the stricter level; named users of both.
    pub fn combine(&self, other: &Marking) -> Marking {
        let tlp = self.tlp.stricter(other.tlp);
        let mut recipients = Vec::new();
        if tlp == Tlp::Red {
            // Both name people: only those named by both; one names people: those.
            recipients = match (self.recipients.is_empty(), other.recipients.is_empty()) {
                (true, _) => other.recipients.clone(),
                (_, true) => self.recipients.clone(),
                _ => self
                    .recipients
                    .iter()
                    .filter(|r| other.recipients.contains(r))
                    .cloned()
                    .collect(),
            };
        }
        Marking { tlp, recipients }
    }

    /// The marking an object keeps when it arrives from a peer: what the originator set.
    /// A node never lowers it; `local_floor` (a stricter local rule) may only raise it.
    pub fn received(sent: &Marking, local_floor: Option<Tlp>) -> Marking {
        match local_floor {
            Some(f) if f > sent.tlp => Marking {
                tlp: f,
                recipients: if f == Tlp::Red {
                    sent.recipients.clone()
                } else {
                    Vec::new()
                },
            },
            _ => sent.clone(),
        }
    }
}

impl Default for Marking {
    fn default() -> Self {
        Marking::upgrade_default()
    }
}

/// Whether `tlp` admits a reader in `relation` (docs/markings.md, the table).
pub fn admits(tlp: Tlp, relation: Relation) -> bool {
    match relation.audience() {
        None => true,
        Some(a) => tlp.allows(a),
    }
}

/// A reader's relation to a shared object, from the narrowest to the widest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// A user of the agency that created the object: not bound by its own marking.
    Originator,
    /// A named recipient: a named user, or (when the marking names nobody) any user of the
    /// recipient organisation.
    NamedRecipient,
    /// A user of the recipient organisation the marking does not name.
    Organisation,
    /// A user of an organisation the recipient declared as its client.
    Client,
    /// A user of another agency of this node or of a pinned peer's agency.
    Community,
    /// Anyone else.
    Outsider,
}

impl Relation {
    /// All relations, narrowest first (the columns of docs/markings.md).
    pub const ALL: [Relation; 6] = [
        Relation::Originator,
        Relation::NamedRecipient,
        Relation::Organisation,
        Relation::Client,
        Relation::Community,
        Relation::Outsider,
    ];

    /// The TLP audience the relation belongs to (`None`: the originator, unrestricted).
    pub fn audience(self) -> Option<Audience> {
        match self {
            Relation::Originator => None,
            Relation::NamedRecipient => Some(Audience::NamedRecipients),
            Relation::Organisation => Some(Audience::Organisation),
            Relation::Client => Some(Audience::OrganisationAndClients),
            Relation::Community => Some(Audience::Community),
            Relation::Outsider => Some(Audience::Public),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Originator => "originator",
            Relation::NamedRecipient => "named recipient",
            Relation::Organisation => "recipient organisation",
            Relation::Client => "client",
            Relation::Community => "community",
            Relation::Outsider => "outsider",
        }
    }
}

/// Who an object is about, for computing a reader's [`Relation`]: agency codes and user names.
#[derive(Debug, Clone, Copy)]
pub struct Parties<'a> {
    /// The originating agency's code.
    pub originator: &'a str,
    /// The recipient organisation's code, if the object is addressed to one.
    pub recipient: Option<&'a str>,
    /// The marking's named users (at the recipient organisation).
    pub named: &'a [String],
}

/// The circle around the recipient organisation, from the node's configuration and peers.
pub trait Circle {
    /// Whether `agency` is a declared client of `of`.
    fn is_client(&self, of: &str, agency: &str) -> bool;
    /// Whether `agency` is in the community (an agency of this node or of a pinned peer).
    fn in_community(&self, agency: &str) -> bool;
}

/// The relation of the user `user` of agency `agency` to an object between `parties`.
pub fn relation(agency: &str, user: &str, parties: Parties<'_>, circle: &dyn Circle) -> Relation {
    if agency.eq_ignore_ascii_case(parties.originator) {
        return Relation::Originator;
    }
    if let Some(r) = parties.recipient {
        if agency.eq_ignore_ascii_case(r) {
            return if parties.named.is_empty() || parties.named.iter().any(|n| n == user) {
                Relation::NamedRecipient
            } else {
                Relation::Organisation
            };
        }
        if circle.is_client(r, agency) {
            return Relation::Client;
        }
    }
    if circle.in_community(agency) {
        Relation::Community
    } else {
        Relation::Outsider
    }
}

/// A marking that cannot be set or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarkingError {
    #[error("named recipients are only for TLP:RED (this marking is {0}); choose TLP:RED or name nobody")]
    RecipientsNeedRed(Tlp),
    #[error("a marking may name at most {MAX_RECIPIENTS} users, not {0}")]
    TooManyRecipients(usize),
    #[error("'{0}' is not a user name (1 to {MAX_RECIPIENT_LEN} characters, no spaces or control characters)")]
    BadRecipient(String),
    #[error("user '{0}' is named twice")]
    RepeatedRecipient(String),
    #[error("only the originating agency may change a marking; ask its users to lower or recall it")]
    NotOriginator,
}

/// The marking defaults and client declarations of a node (`[markings]` in liaison.toml).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MarkingConfig {
    /// A new request's marking when its draft names none.
    pub request: Tlp,
    /// A new comment's marking when the author names none (never below its request's).
    pub comment: Tlp,
    /// A notice's marking floor (never below its items').
    pub notice: Tlp,
    /// A notice's PAP when the issuer names none (docs/markings.md).
    pub notice_pap: crate::Pap,
    /// Client organisations an agency declares (agency code → client agency codes), e.g. a
    /// CERT's constituents: they may receive what the agency receives as TLP:AMBER.
    pub clients: BTreeMap<String, Vec<String>>,
}

impl Default for MarkingConfig {
    fn default() -> Self {
        MarkingConfig {
            request: Tlp::AmberStrict,
            comment: Tlp::AmberStrict,
            notice: Tlp::Amber,
            notice_pap: crate::Pap::Green,
            clients: BTreeMap::new(),
        }
    }
}

impl MarkingConfig {
    /// Whether `agency` is a declared client of `of` (agency codes, case-insensitive).
    pub fn is_client(&self, of: &str, agency: &str) -> bool {
        self.clients
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(of))
            .any(|(_, v)| v.iter().any(|c| c.eq_ignore_ascii_case(agency)))
    }

    /// Checks the configuration: no CLEAR defaults for requests and comments (they are never
    /// public by default), no agency its own client.
    pub fn validate(&self) -> Result<(), String> {
        for (what, t) in [("request", self.request), ("comment", self.comment)] {
            if t == Tlp::Clear {
                return Err(format!(
                    "[markings] {what} = \"TLP:CLEAR\" would publish every {what} by default; choose GREEN or stricter"
                ));
            }
        }
        for (k, v) in &self.clients {
            if v.iter().any(|c| c.eq_ignore_ascii_case(k)) {
                return Err(format!("[markings.clients] {k} lists itself as its own client"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct C;
    impl Circle for C {
        fn is_client(&self, of: &str, agency: &str) -> bool {
            of == "CN-CNCERT" && agency == "CN-ISP"
        }
        fn in_community(&self, agency: &str) -> bool {
            agency != "XX-NOBODY"
        }
    }

    #[test]
    fn relations_are_the_narrowest_that_applies() {
        let named = vec!["bob".to_string()];
        let p = Parties {
            originator: "FBI",
            recipient: Some("CN-CNCERT"),
            named: &named,
        };
        assert_eq!(relation("FBI", "x", p, &C), Relation::Originator);
        assert_eq!(relation("cn-cncert", "bob", p, &C), Relation::NamedRecipient);
        assert_eq!(relation("CN-CNCERT", "eve", p, &C), Relation::Organisation);
        assert_eq!(relation("CN-ISP", "x", p, &C), Relation::Client);
        assert_eq!(relation("DE-BKA", "x", p, &C), Relation::Community);
        assert_eq!(relation("XX-NOBODY", "x", p, &C), Relation::Outsider);
        let p = Parties { named: &[], ..p };
        assert_eq!(relation("CN-CNCERT", "eve", p, &C), Relation::NamedRecipient);
    }

    #[test]
    fn only_the_originator_changes_a_marking() {
        let m = Marking::new(Tlp::Red);
        let lower = Marking::new(Tlp::Green);
        assert!(m.check_change(&lower, Relation::Originator).is_ok());
        for r in &Relation::ALL[1..] {
            assert_eq!(m.check_change(&lower, *r), Err(MarkingError::NotOriginator));
        }
    }

    #[test]
    fn validation_names_the_problem() {
        let mut m = Marking::new(Tlp::Amber);
        m.recipients = vec!["bob".into()];
        assert_eq!(m.validate(), Err(MarkingError::RecipientsNeedRed(Tlp::Amber)));
        m.tlp = Tlp::Red;
        assert!(m.validate().is_ok());
        m.recipients.push("bob".into());
        assert_eq!(m.validate(), Err(MarkingError::RepeatedRecipient("bob".into())));
        m.recipients = vec!["a b".into()];
        assert!(matches!(m.validate(), Err(MarkingError::BadRecipient(_))));
        m.recipients = (0..51).map(|i| format!("u{i}")).collect();
        assert_eq!(m.validate(), Err(MarkingError::TooManyRecipients(51)));
    }

    #[test]
    fn combining_and_receiving_never_lower() {
        let a = Marking::new(Tlp::Green);
        let b = Marking {
            tlp: Tlp::Red,
            recipients: vec!["bob".into(), "amy".into()],
        };
        assert_eq!(a.combine(&b), b);
        let c = Marking {
            tlp: Tlp::Red,
            recipients: vec!["amy".into()],
        };
        assert_eq!(b.combine(&c).recipients, vec!["amy".to_string()]);
        assert_eq!(Marking::received(&a, Some(Tlp::Amber)).tlp, Tlp::Amber);
        assert_eq!(Marking::received(&b, Some(Tlp::Green)), b);
    }

    #[test]
    fn config_refuses_public_defaults_and_self_clients() {
        let mut c = MarkingConfig::default();
        assert!(c.validate().is_ok());
        c.request = Tlp::Clear;
        assert!(c.validate().unwrap_err().contains("request"));
        let mut c = MarkingConfig::default();
        c.clients.insert("CN-CNCERT".into(), vec!["cn-cncert".into()]);
        assert!(c.validate().is_err());
        let mut c = MarkingConfig::default();
        c.clients.insert("CN-CNCERT".into(), vec!["CN-ISP".into()]);
        assert!(c.is_client("cn-cncert", "cn-isp"));
        assert!(!c.is_client("CN-ISP", "CN-CNCERT"));
    }
}
