//! Joint cases (docs/cases.md): a task force's case, its member agencies, the items linked to
//! it and its timeline, as a log of events.
//!
//! A case lives on its **home node** (the node serving its lead agency), which decides every
//! change: it checks a change against the case as it stands ([`Case::apply`]) and appends it
//! to the log. Member agencies on other nodes receive the events their agencies may see and
//! rebuild the case from them with the same function. Who sees what is decided here too
//! ([`Case::view_of`], [`Case::event_view`]), once, for the node that reads and for the node
//! that sends.
//!
//! The rules, in short:
//! - the lead agency invites; an invited agency accepts or declines; a member leaves; the lead
//!   closes and reopens, changes the marking, and cannot leave;
//! - an invited agency sees the case's header and membership only; a member sees the whole
//!   timeline as markings allow; an agency that left or declined keeps what it saw until then;
//! - an item (a request, a notice, an evidence file) is linked by a member agency that is a
//!   party to it; its content reaches the other members only when its **originator** shares it
//!   with the case (the rule of speciality: the originator's consent, recorded as an event);
//!   before that, they see that an item of that kind was linked, by whom and when;
//! - a `TLP:RED` item is never linked (it stays with its named recipients);
//! - a note's marking is read with its author's agency as originator and every other member as
//!   recipient organisation (a RED note reaches the users it names).
//!
//! Pure: no clock, no I/O.

use crate::marking::{Marking, Relation};
use crate::request::string_enum;
use crate::tlp::Tlp;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Longest case name (characters).
pub const MAX_NAME_CHARS: usize = 200;
/// Longest case reference (bytes).
pub const MAX_REFERENCE_BYTES: usize = 64;
/// Longest note or answer text (characters).
pub const MAX_TEXT_CHARS: usize = 4000;
/// Longest item title (characters): a request's summary, a file's name.
pub const MAX_TITLE_CHARS: usize = 500;
/// Most member agencies of a case, the lead included.
pub const MAX_MEMBERS: usize = 64;
/// Most links, shares and notes a case's log holds (their `seq`).
pub const MAX_EVENTS: u64 = 100_000;
/// Events beyond [`MAX_EVENTS`] kept for membership and the lead's changes.
pub const EVENT_RESERVE: u64 = 10_000;
/// Most links, shares and notes one agency adds to a case.
pub const MAX_MEMBER_CONTENT: u64 = 25_000;
/// Most parties an item names.
pub const MAX_PARTIES: usize = 8;
/// Longest agency code, user name or item id (bytes).
pub const MAX_WORD_BYTES: usize = 128;

string_enum! {
    /// Whether work on a case goes on.
    CaseState {
        Open = "open",
        Closed = "closed",
    }
}

string_enum! {
    /// An agency's place in a case.
    MemberStatus {
        /// Asked by the lead; sees the case's header and members.
        Invited = "invited",
        /// A member (the lead is one from the start).
        Active = "active",
        /// Said no; keeps what it saw.
        Declined = "declined",
        /// Was a member; keeps what it saw until it left, receives nothing after.
        Left = "left",
    }
}

string_enum! {
    /// What can be linked to a case.
    ItemKind {
        /// An assistance request (a spontaneous lead is a request of kind
        /// `spontaneous_information`).
        Request = "request",
        /// A clean-up notice.
        Notice = "notice",
        /// An evidence file.
        Evidence = "evidence",
    }
}

/// What a linked item shows to those who may see it, as the linking agency's node saw it
/// when it was linked or shared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemSnapshot {
    pub kind: ItemKind,
    /// The item's id on the nodes that hold it (a UUID).
    pub id: String,
    /// The agency whose item it is: the requesting agency of a request, the issuer of a
    /// notice, the uploader's agency of a file. Only it may share the item with the case.
    pub originator: String,
    /// The agencies the item was addressed to or between (its originator included): they may
    /// see it in the case without sharing.
    pub parties: Vec<String>,
    /// The item's own marking level (never `TLP:RED`).
    pub tlp: Tlp,
    /// A request's summary, a file's name, a notice's partner and interval.
    pub title: String,
    /// A request's reference, a file's request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// A request's kind (`spontaneous_information` for a lead), a file's kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtype: Option<String>,
    /// A request's state when the snapshot was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// When the item was made (submitted, issued, uploaded).
    pub at: Timestamp,
}

/// One change of a case. Serialized with a `kind` tag (`created`, `invited`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CaseChange {
    /// The case was opened by its lead agency.
    Created {
        name: String,
        reference: String,
        lead: String,
        marking: Marking,
    },
    /// The lead invited an agency.
    Invited { agency: String },
    /// The invited agency accepted.
    Joined { agency: String },
    /// The invited agency declined.
    Declined {
        agency: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// A member left.
    Left {
        agency: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// A member linked an item it is a party to; `shared` when the linking agency is the
    /// originator and shared it with the case at once.
    Linked { item: ItemSnapshot, shared: bool },
    /// The originator shared a linked item with every member (its consent, recorded).
    Shared { item: ItemSnapshot },
    /// A link as it reaches a member that may not see the item: what kind of item, not which.
    Withheld { item_kind: ItemKind },
    /// A note to the members.
    Note { text: String, marking: Marking },
    /// The lead changed the case's marking.
    Marking { marking: Marking },
    /// The lead closed the case.
    Closed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// The lead reopened it.
    Reopened,
}

impl CaseChange {
    /// The change's tag, as stored and shown.
    pub fn kind(&self) -> &'static str {
        match self {
            CaseChange::Created { .. } => "created",
            CaseChange::Invited { .. } => "invited",
            CaseChange::Joined { .. } => "joined",
            CaseChange::Declined { .. } => "declined",
            CaseChange::Left { .. } => "left",
            CaseChange::Linked { .. } => "linked",
            CaseChange::Shared { .. } => "shared",
            CaseChange::Withheld { .. } => "withheld",
            CaseChange::Note { .. } => "note",
            CaseChange::Marking { .. } => "marking",
            CaseChange::Closed { .. } => "closed",
            CaseChange::Reopened => "reopened",
        }
    }

    /// Whether the change is about the case and its members (seen by invited agencies too),
    /// rather than its content.
    pub fn is_membership(&self) -> bool {
        matches!(
            self,
            CaseChange::Created { .. }
                | CaseChange::Invited { .. }
                | CaseChange::Joined { .. }
                | CaseChange::Declined { .. }
                | CaseChange::Left { .. }
                | CaseChange::Marking { .. }
                | CaseChange::Closed { .. }
                | CaseChange::Reopened
        )
    }
}

/// One entry of a case's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseEvent {
    /// 1, 2, 3, … in the order the home node appended them.
    pub seq: u64,
    pub at: Timestamp,
    /// The acting user (`node:user` when the user is on another node).
    pub actor: String,
    /// The acting agency (its code).
    pub agency: String,
    pub change: CaseChange,
    /// For a change asked for by another node: the id of that node's action, so that it can
    /// tell its users the action took effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

/// A member agency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub agency: String,
    pub status: MemberStatus,
    /// The event that gave the agency this status.
    pub since_seq: u64,
    pub since: Timestamp,
}

/// A linked item as the log leaves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// `None` at a member node that received only the link's kind (withheld).
    pub item: Option<ItemSnapshot>,
    pub item_kind: ItemKind,
    pub linked_by: String,
    pub linked_seq: u64,
    pub linked_at: Timestamp,
    /// The event of the originator's consent, once given.
    pub shared_seq: Option<u64>,
}

/// A case rebuilt from its log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    pub name: String,
    pub reference: String,
    pub lead: String,
    pub marking: Marking,
    pub state: CaseState,
    pub created_at: Timestamp,
    pub created_by: String,
    pub members: Vec<Member>,
    /// Links by (kind, id); a withheld link by its event (`withheld:SEQ`).
    pub links: BTreeMap<(ItemKind, String), Link>,
    pub last_seq: u64,
    /// Links, shares and notes added by each agency (upper-case code): no member may take the
    /// whole log for itself.
    #[serde(default)]
    pub content_by: BTreeMap<String, u64>,
    pub updated_at: Timestamp,
}

/// A change the case does not allow, in words for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    NotAllowed(String),
    #[error("{0}")]
    Conflict(String),
}

fn invalid(field: &str, message: impl Into<String>) -> CaseError {
    CaseError::Invalid {
        field: field.to_string(),
        message: message.into(),
    }
}

/// Checks a short word: an agency code, a user name, an id.
pub fn check_word(field: &str, s: &str) -> Result<(), CaseError> {
    if s.is_empty() || s.len() > MAX_WORD_BYTES {
        return Err(invalid(field, format!("{} bytes (1 to {MAX_WORD_BYTES})", s.len())));
    }
    if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(invalid(
            field,
            format!("'{}' has spaces or control characters", s.escape_debug()),
        ));
    }
    Ok(())
}

/// Checks a text of at most `max` characters (new lines and tabs allowed); `empty_ok` for
/// optional notes.
pub fn check_text(field: &str, s: &str, max: usize, empty_ok: bool) -> Result<(), CaseError> {
    let n = s.chars().count();
    if (!empty_ok && s.trim().is_empty()) || n > max {
        return Err(invalid(field, format!("{n} characters (1 to {max})")));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(invalid(field, "control characters are not allowed"));
    }
    Ok(())
}

/// Checks a case reference: 1 to 64 bytes of letters, digits and `-_./:`.
pub fn check_reference(s: &str) -> Result<(), CaseError> {
    let ok = !s.is_empty()
        && s.len() <= MAX_REFERENCE_BYTES
        && s.chars().all(|c| c.is_alphanumeric() || "-_./:".contains(c));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "reference",
            format!(
                "'{}': 1 to {MAX_REFERENCE_BYTES} letters, digits and - _ . / :",
                s.escape_debug()
            ),
        ))
    }
}

impl ItemSnapshot {
    /// Checks every field (a snapshot may come from another node).
    pub fn check(&self) -> Result<(), CaseError> {
        check_word("item.id", &self.id)?;
        check_word("item.originator", &self.originator)?;
        if self.parties.is_empty() || self.parties.len() > MAX_PARTIES {
            return Err(invalid(
                "item.parties",
                format!("{} agencies (1 to {MAX_PARTIES})", self.parties.len()),
            ));
        }
        for p in &self.parties {
            check_word("item.parties", p)?;
        }
        if !self.has_party(&self.originator) {
            return Err(invalid("item.parties", "the originator is not among the parties"));
        }
        if self.tlp == Tlp::Red {
            return Err(CaseError::NotAllowed(
                "a TLP:RED item stays with its named recipients and is never linked to a case".into(),
            ));
        }
        check_text("item.title", &self.title, MAX_TITLE_CHARS, true)?;
        for (f, v) in [
            ("item.reference", &self.reference),
            ("item.subtype", &self.subtype),
            ("item.state", &self.state),
        ] {
            if let Some(v) = v {
                check_word(f, v)?;
            }
        }
        Ok(())
    }

    /// Whether `agency` is a party to the item.
    pub fn has_party(&self, agency: &str) -> bool {
        self.parties.iter().any(|p| p.eq_ignore_ascii_case(agency))
    }
}

fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Checks a case's or a note's marking: valid, and every user it names written `AGENCY:user`
/// (a case has several agencies, and a user name alone says nothing about which one).
pub fn check_marking(m: &Marking) -> Result<(), CaseError> {
    m.validate().map_err(|e| invalid("marking", e.to_string()))?;
    for r in &m.recipients {
        let ok = r
            .split_once(':')
            .is_some_and(|(a, u)| !a.is_empty() && !u.is_empty() && !u.contains(':'));
        if !ok {
            return Err(invalid(
                "marking.recipients",
                format!(
                    "'{}': in a case, name users as AGENCY:user (CN-MPS:li)",
                    r.escape_debug()
                ),
            ));
        }
    }
    Ok(())
}

/// Whether user `user` of `agency` is among `names` (`AGENCY:user`).
fn named(names: &[String], agency: &str, user: &str) -> bool {
    names
        .iter()
        .any(|n| n.split_once(':').is_some_and(|(a, u)| same(a, agency) && u == user))
}

/// Whether `names` (`AGENCY:user`) names any user of `agency`.
fn names_agency(names: &[String], agency: &str) -> bool {
    names
        .iter()
        .any(|n| n.split_once(':').is_some_and(|(a, _)| same(a, agency)))
}

/// What a reader gets of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventView {
    /// The event as it is.
    Full,
    /// A link the reader may not see: only its kind ([`CaseChange::Withheld`]).
    Withheld,
    /// Nothing.
    Hidden,
}

impl Case {
    /// Starts a case from its first event, which must be [`CaseChange::Created`] with seq 1.
    pub fn start(ev: &CaseEvent) -> Result<Case, CaseError> {
        let CaseChange::Created {
            name,
            reference,
            lead,
            marking,
        } = &ev.change
        else {
            return Err(CaseError::Conflict(format!(
                "a case starts with 'created', not '{}'",
                ev.change.kind()
            )));
        };
        if ev.seq != 1 {
            return Err(CaseError::Conflict(format!("a case starts at event 1, not {}", ev.seq)));
        }
        check_text("name", name, MAX_NAME_CHARS, false)?;
        check_reference(reference)?;
        check_word("lead", lead)?;
        check_word("actor", &ev.actor)?;
        check_marking(marking)?;
        if !same(&ev.agency, lead) {
            return Err(CaseError::NotAllowed("only the lead agency opens its case".into()));
        }
        Ok(Case {
            name: name.clone(),
            reference: reference.clone(),
            lead: lead.clone(),
            marking: marking.clone(),
            state: CaseState::Open,
            created_at: ev.at,
            created_by: ev.actor.clone(),
            members: vec![Member {
                agency: lead.clone(),
                status: MemberStatus::Active,
                since_seq: 1,
                since: ev.at,
            }],
            links: BTreeMap::new(),
            last_seq: 1,
            content_by: BTreeMap::new(),
            updated_at: ev.at,
        })
    }

    /// Rebuilds a case from its log in order of `seq` (gaps allowed: a member node holds only
    /// what it was sent).
    pub fn replay<'a>(events: impl IntoIterator<Item = &'a CaseEvent>) -> Result<Case, CaseError> {
        let mut it = events.into_iter();
        let first = it
            .next()
            .ok_or_else(|| CaseError::Conflict("the case has no events".into()))?;
        let mut case = Case::start(first)?;
        for ev in it {
            case.apply(ev)?;
        }
        Ok(case)
    }

    /// The member entry of `agency`.
    pub fn member(&self, agency: &str) -> Option<&Member> {
        self.members.iter().find(|m| same(&m.agency, agency))
    }

    /// The status of `agency` in the case, if it was ever invited.
    pub fn status(&self, agency: &str) -> Option<MemberStatus> {
        self.member(agency).map(|m| m.status)
    }

    fn is_active(&self, agency: &str) -> bool {
        self.status(agency) == Some(MemberStatus::Active)
    }

    fn set_status(&mut self, agency: &str, status: MemberStatus, ev: &CaseEvent) {
        match self.members.iter_mut().find(|m| same(&m.agency, agency)) {
            Some(m) => {
                m.status = status;
                m.since_seq = ev.seq;
                m.since = ev.at;
            }
            None => self.members.push(Member {
                agency: agency.to_string(),
                status,
                since_seq: ev.seq,
                since: ev.at,
            }),
        }
    }

    fn require_lead(&self, ev: &CaseEvent, what: &str) -> Result<(), CaseError> {
        if same(&ev.agency, &self.lead) {
            Ok(())
        } else {
            Err(CaseError::NotAllowed(format!(
                "only the lead agency {} may {what}",
                self.lead
            )))
        }
    }

    fn require_open(&self) -> Result<(), CaseError> {
        if self.state == CaseState::Open {
            Ok(())
        } else {
            Err(CaseError::Conflict(
                "the case is closed; its lead agency may reopen it".into(),
            ))
        }
    }

    fn require_member(&self, ev: &CaseEvent) -> Result<(), CaseError> {
        if self.is_active(&ev.agency) {
            Ok(())
        } else {
            Err(CaseError::NotAllowed(format!(
                "{} is not a member of the case",
                ev.agency
            )))
        }
    }

    /// Checks `ev` against the case as it stands and applies it. `Err`: nothing changed.
    pub fn apply(&mut self, ev: &CaseEvent) -> Result<(), CaseError> {
        if ev.seq <= self.last_seq {
            return Err(CaseError::Conflict(format!(
                "event {} is not after the case's last event {}",
                ev.seq, self.last_seq
            )));
        }
        // Content stops at MAX_EVENTS; the lead's changes and the members' answers keep a
        // reserve, so that a member that floods the log cannot stop the case being closed.
        let content = matches!(
            ev.change,
            CaseChange::Linked { .. }
                | CaseChange::Shared { .. }
                | CaseChange::Note { .. }
                | CaseChange::Withheld { .. }
        );
        if ev.seq > MAX_EVENTS + if content { 0 } else { EVENT_RESERVE } {
            return Err(CaseError::Conflict(format!(
                "a case holds at most {MAX_EVENTS} events (links, shares, notes); open a new case"
            )));
        }
        let added = self
            .content_by
            .get(&ev.agency.to_ascii_uppercase())
            .copied()
            .unwrap_or(0);
        if content && added >= MAX_MEMBER_CONTENT {
            return Err(CaseError::Conflict(format!(
                "{} has added {MAX_MEMBER_CONTENT} links, shares and notes to this case, the most one agency may; the lead may open a new case",
                ev.agency
            )));
        }
        check_word("agency", &ev.agency)?;
        check_word("actor", &ev.actor)?;
        if let Some(a) = &ev.action {
            check_word("action", a)?;
        }
        match &ev.change {
            CaseChange::Created { .. } => return Err(CaseError::Conflict("the case exists already".into())),
            CaseChange::Invited { agency } => {
                self.require_lead(ev, "invite agencies")?;
                self.require_open()?;
                check_word("agency", agency)?;
                match self.status(agency) {
                    Some(MemberStatus::Active) => {
                        return Err(CaseError::Conflict(format!("{agency} is already a member")));
                    }
                    Some(MemberStatus::Invited) => {
                        return Err(CaseError::Conflict(format!("{agency} is already invited")));
                    }
                    _ => {}
                }
                let current = self
                    .members
                    .iter()
                    .filter(|m| matches!(m.status, MemberStatus::Active | MemberStatus::Invited))
                    .count();
                if current >= MAX_MEMBERS {
                    return Err(CaseError::Conflict(format!("a case has at most {MAX_MEMBERS} members")));
                }
                self.set_status(agency, MemberStatus::Invited, ev);
            }
            CaseChange::Joined { agency } | CaseChange::Declined { agency, .. } => {
                if !same(agency, &ev.agency) {
                    return Err(CaseError::NotAllowed(
                        "an agency answers its own invitation only".into(),
                    ));
                }
                if self.status(agency) != Some(MemberStatus::Invited) {
                    return Err(CaseError::Conflict(format!(
                        "{agency} has no open invitation to the case"
                    )));
                }
                if let CaseChange::Declined { note: Some(n), .. } = &ev.change {
                    check_text("note", n, MAX_TEXT_CHARS, true)?;
                }
                let joined = matches!(ev.change, CaseChange::Joined { .. });
                if joined {
                    self.require_open()?;
                }
                let to = if joined {
                    MemberStatus::Active
                } else {
                    MemberStatus::Declined
                };
                self.set_status(agency, to, ev);
            }
            CaseChange::Left { agency, note } => {
                if !same(agency, &ev.agency) {
                    return Err(CaseError::NotAllowed("an agency leaves a case for itself only".into()));
                }
                if same(agency, &self.lead) {
                    return Err(CaseError::NotAllowed(
                        "the lead agency cannot leave its case; close it instead".into(),
                    ));
                }
                self.require_member(ev)?;
                if let Some(n) = note {
                    check_text("note", n, MAX_TEXT_CHARS, true)?;
                }
                self.set_status(agency, MemberStatus::Left, ev);
            }
            CaseChange::Linked { item, shared } => {
                self.require_open()?;
                self.require_member(ev)?;
                item.check()?;
                if !item.has_party(&ev.agency) {
                    return Err(CaseError::NotAllowed(format!(
                        "{} may link only items it is a party to",
                        ev.agency
                    )));
                }
                if *shared && !same(&item.originator, &ev.agency) {
                    return Err(CaseError::NotAllowed(format!(
                        "only the item's originator {} may share it with the case",
                        item.originator
                    )));
                }
                let key = (item.kind, item.id.clone());
                if self.links.contains_key(&key) {
                    return Err(CaseError::Conflict(format!(
                        "{} {} is already linked",
                        item.kind, item.id
                    )));
                }
                self.links.insert(
                    key,
                    Link {
                        item: Some(item.clone()),
                        item_kind: item.kind,
                        linked_by: ev.agency.clone(),
                        linked_seq: ev.seq,
                        linked_at: ev.at,
                        shared_seq: shared.then_some(ev.seq),
                    },
                );
            }
            CaseChange::Shared { item } => {
                self.require_open()?;
                self.require_member(ev)?;
                item.check()?;
                let key = (item.kind, item.id.clone());
                // The consent is the originator's of the item as it was linked, whatever the
                // sharing snapshot claims.
                let originator = match self.links.get(&key).and_then(|l| l.item.as_ref()) {
                    Some(stored) => {
                        if !same(&stored.originator, &item.originator)
                            || stored.parties.len() != item.parties.len()
                            || !stored.parties.iter().all(|p| item.has_party(p))
                        {
                            return Err(CaseError::NotAllowed(format!(
                                "{} {} was linked with originator {} and parties {}; a share must name the same",
                                item.kind,
                                item.id,
                                stored.originator,
                                stored.parties.join(", ")
                            )));
                        }
                        stored.originator.clone()
                    }
                    None => item.originator.clone(),
                };
                if !same(&originator, &ev.agency) {
                    return Err(CaseError::NotAllowed(format!(
                        "only the item's originator {originator} may share it with the case"
                    )));
                }
                match self.links.get_mut(&key) {
                    Some(l) if l.shared_seq.is_some() => {
                        return Err(CaseError::Conflict(format!(
                            "{} {} is already shared",
                            item.kind, item.id
                        )));
                    }
                    Some(l) => {
                        l.shared_seq = Some(ev.seq);
                        l.item = Some(item.clone());
                    }
                    // A member node that was sent only the link's kind learns the item here (the
                    // home node sends the link itself again with the share).
                    None => {
                        self.links.insert(
                            key,
                            Link {
                                item: Some(item.clone()),
                                item_kind: item.kind,
                                linked_by: ev.agency.clone(),
                                linked_seq: ev.seq,
                                linked_at: ev.at,
                                shared_seq: Some(ev.seq),
                            },
                        );
                    }
                }
            }
            CaseChange::Withheld { item_kind } => {
                self.links.insert(
                    (*item_kind, format!("withheld:{}", ev.seq)),
                    Link {
                        item: None,
                        item_kind: *item_kind,
                        linked_by: ev.agency.clone(),
                        linked_seq: ev.seq,
                        linked_at: ev.at,
                        shared_seq: None,
                    },
                );
            }
            CaseChange::Note { text, marking } => {
                self.require_open()?;
                self.require_member(ev)?;
                check_text("text", text, MAX_TEXT_CHARS, false)?;
                check_marking(marking)?;
            }
            CaseChange::Marking { marking } => {
                self.require_lead(ev, "change the case's marking")?;
                check_marking(marking)?;
                self.marking = marking.clone();
            }
            CaseChange::Closed { note } => {
                self.require_lead(ev, "close the case")?;
                self.require_open()?;
                if let Some(n) = note {
                    check_text("note", n, MAX_TEXT_CHARS, true)?;
                }
                self.state = CaseState::Closed;
            }
            CaseChange::Reopened => {
                self.require_lead(ev, "reopen the case")?;
                if self.state == CaseState::Open {
                    return Err(CaseError::Conflict("the case is open".into()));
                }
                self.state = CaseState::Open;
            }
        }
        if content {
            *self.content_by.entry(ev.agency.to_ascii_uppercase()).or_default() += 1;
        }
        self.last_seq = ev.seq;
        self.updated_at = ev.at;
        Ok(())
    }

    /// The relation of user `user` of `agency` to the case itself: the lead is its
    /// originator; a member (or invitee) its recipient organisation, named or not when the
    /// case is RED; anyone else an outsider.
    pub fn relation(&self, agency: &str, user: &str) -> Relation {
        if same(agency, &self.lead) {
            return Relation::Originator;
        }
        if self.member(agency).is_none() {
            return Relation::Outsider;
        }
        if self.marking.recipients.is_empty() || named(&self.marking.recipients, agency, user) {
            Relation::NamedRecipient
        } else {
            Relation::Organisation
        }
    }

    /// Whether user `user` of `agency` sees the case at all: an agency that was ever invited
    /// (and its users the case's marking admits).
    pub fn visible_to(&self, agency: &str, user: &str) -> bool {
        self.member(agency).is_some() && self.marking.admits(self.relation(agency, user))
    }

    /// What user `user` of `agency` gets of event `ev` (`None` for `user`: the agency as a
    /// whole, as a node deciding what to send sees it; named users are then checked where the
    /// event is read).
    pub fn event_view(&self, ev: &CaseEvent, agency: &str, user: Option<&str>) -> EventView {
        let Some(m) = self.member(agency) else {
            return EventView::Hidden;
        };
        if let Some(u) = user
            && !self.marking.admits(self.relation(agency, u))
        {
            return EventView::Hidden;
        }
        // What an agency saw until it declined or left.
        if matches!(m.status, MemberStatus::Declined | MemberStatus::Left) && ev.seq > m.since_seq {
            return EventView::Hidden;
        }
        let lead = same(agency, &self.lead);
        // Content only to members: an invitee, or one that declined, sees membership.
        let member = lead || m.status == MemberStatus::Active || m.status == MemberStatus::Left;
        if ev.change.is_membership() {
            return EventView::Full;
        }
        if !member {
            return EventView::Hidden;
        }
        match &ev.change {
            CaseChange::Linked { item, .. } => {
                let shared = self.links.get(&(item.kind, item.id.clone())).is_some_and(|l| {
                    l.shared_seq
                        .is_some_and(|s| m.status != MemberStatus::Left || s <= m.since_seq)
                });
                if item.has_party(agency) || shared {
                    EventView::Full
                } else {
                    EventView::Withheld
                }
            }
            CaseChange::Shared { .. } | CaseChange::Withheld { .. } => EventView::Full,
            CaseChange::Note { marking, .. } => {
                if same(agency, &ev.agency) || marking.tlp != Tlp::Red || marking.recipients.is_empty() {
                    return EventView::Full;
                }
                // A RED note naming users: to them only (and a node that serves none of them
                // is not sent it).
                let reaches = match user {
                    Some(u) => named(&marking.recipients, agency, u),
                    None => names_agency(&marking.recipients, agency),
                };
                if reaches { EventView::Full } else { EventView::Hidden }
            }
            _ => EventView::Full,
        }
    }

    /// Event `ev` as `agency` (and `user`, when given) receives it, or `None`.
    pub fn event_for(&self, ev: &CaseEvent, agency: &str, user: Option<&str>) -> Option<CaseEvent> {
        match self.event_view(ev, agency, user) {
            EventView::Full => Some(ev.clone()),
            EventView::Hidden => None,
            EventView::Withheld => {
                let CaseChange::Linked { item, .. } = &ev.change else {
                    return None;
                };
                Some(CaseEvent {
                    change: CaseChange::Withheld { item_kind: item.kind },
                    action: None,
                    ..ev.clone()
                })
            }
        }
    }

    /// The case's links as `agency` (and `user`) may see them: a link to an item it may not
    /// see shows its kind, who linked it and when, without the item.
    pub fn links_for(&self, agency: &str, user: Option<&str>) -> Vec<Link> {
        let Some(m) = self.member(agency) else {
            return Vec::new();
        };
        if let Some(u) = user
            && !self.marking.admits(self.relation(agency, u))
        {
            return Vec::new();
        }
        let lead = same(agency, &self.lead);
        if !lead && !matches!(m.status, MemberStatus::Active | MemberStatus::Left) {
            return Vec::new();
        }
        self.links
            .values()
            .filter(|l| m.status != MemberStatus::Left || l.linked_seq <= m.since_seq)
            .map(|l| {
                let sees = l.item.as_ref().is_some_and(|i| i.has_party(agency))
                    || l.shared_seq
                        .is_some_and(|s| m.status != MemberStatus::Left || s <= m.since_seq);
                if sees {
                    l.clone()
                } else {
                    Link {
                        item: None,
                        shared_seq: None,
                        ..l.clone()
                    }
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_790_000_000 + s).unwrap()
    }

    fn ev(seq: u64, agency: &str, change: CaseChange) -> CaseEvent {
        CaseEvent {
            seq,
            at: t(seq as i64),
            actor: "u".into(),
            agency: agency.into(),
            change,
            action: None,
        }
    }

    fn item(id: &str, originator: &str, parties: &[&str], tlp: Tlp) -> ItemSnapshot {
        ItemSnapshot {
            kind: ItemKind::Request,
            id: id.into(),
            originator: originator.into(),
            parties: parties.iter().map(|s| s.to_string()).collect(),
            tlp,
            title: "wallet drained".into(),
            reference: Some("FBI-2026-0001".into()),
            subtype: Some("subscriber_information".into()),
            state: Some("submitted".into()),
            at: t(0),
        }
    }

    fn created() -> CaseEvent {
        ev(
            1,
            "FBI",
            CaseChange::Created {
                name: "Operation Lantern".into(),
                reference: "JTF-2026-01".into(),
                lead: "FBI".into(),
                marking: Marking::new(Tlp::Amber),
            },
        )
    }

    fn case_with_members() -> Case {
        let log = vec![
            created(),
            ev(
                2,
                "FBI",
                CaseChange::Invited {
                    agency: "CN-MPS".into(),
                },
            ),
            ev(
                3,
                "FBI",
                CaseChange::Invited {
                    agency: "DE-BKA".into(),
                },
            ),
            ev(
                4,
                "CN-MPS",
                CaseChange::Joined {
                    agency: "CN-MPS".into(),
                },
            ),
        ];
        Case::replay(&log).unwrap()
    }

    #[test]
    fn only_the_lead_invites_and_only_the_invited_answer() {
        let mut c = case_with_members();
        assert_eq!(c.status("CN-MPS"), Some(MemberStatus::Active));
        assert_eq!(c.status("DE-BKA"), Some(MemberStatus::Invited));
        let e = c.apply(&ev(
            5,
            "CN-MPS",
            CaseChange::Invited {
                agency: "NL-POL".into(),
            },
        ));
        assert!(matches!(e, Err(CaseError::NotAllowed(_))), "{e:?}");
        let e = c.apply(&ev(
            5,
            "CN-MPS",
            CaseChange::Joined {
                agency: "DE-BKA".into(),
            },
        ));
        assert!(matches!(e, Err(CaseError::NotAllowed(_))), "{e:?}");
        let e = c.apply(&ev(
            5,
            "FBI",
            CaseChange::Left {
                agency: "FBI".into(),
                note: None,
            },
        ));
        assert!(matches!(e, Err(CaseError::NotAllowed(_))), "{e:?}");
        c.apply(&ev(
            5,
            "DE-BKA",
            CaseChange::Declined {
                agency: "DE-BKA".into(),
                note: None,
            },
        ))
        .unwrap();
        let e = c.apply(&ev(
            6,
            "DE-BKA",
            CaseChange::Joined {
                agency: "DE-BKA".into(),
            },
        ));
        assert!(matches!(e, Err(CaseError::Conflict(_))), "{e:?}");
        // An old seq is refused and changes nothing.
        let before = c.clone();
        assert!(c.apply(&ev(5, "FBI", CaseChange::Reopened)).is_err());
        assert_eq!(c, before);
    }

    #[test]
    fn items_reach_other_members_only_when_their_originator_shares_them() {
        let mut c = case_with_members();
        c.apply(&ev(
            5,
            "FBI",
            CaseChange::Invited {
                agency: "NL-POL".into(),
            },
        ))
        .unwrap();
        c.apply(&ev(
            6,
            "NL-POL",
            CaseChange::Joined {
                agency: "NL-POL".into(),
            },
        ))
        .unwrap();
        // CN-MPS links a request FBI sent it: it is a party, not the originator.
        let it = item("r1", "FBI", &["FBI", "CN-MPS"], Tlp::AmberStrict);
        let e = c.apply(&ev(
            7,
            "CN-MPS",
            CaseChange::Linked {
                item: it.clone(),
                shared: true,
            },
        ));
        assert!(matches!(e, Err(CaseError::NotAllowed(_))), "{e:?}");
        let linked = ev(
            7,
            "CN-MPS",
            CaseChange::Linked {
                item: it.clone(),
                shared: false,
            },
        );
        c.apply(&linked).unwrap();
        assert_eq!(c.event_view(&linked, "FBI", None), EventView::Full);
        assert_eq!(c.event_view(&linked, "CN-MPS", None), EventView::Full);
        assert_eq!(c.event_view(&linked, "NL-POL", None), EventView::Withheld);
        // An invitee sees no content, a stranger nothing.
        assert_eq!(c.event_view(&linked, "DE-BKA", None), EventView::Hidden);
        assert_eq!(c.event_view(&linked, "XX", None), EventView::Hidden);
        let w = c.event_for(&linked, "NL-POL", None).unwrap();
        assert_eq!(
            w.change,
            CaseChange::Withheld {
                item_kind: ItemKind::Request
            }
        );
        assert!(c.links_for("NL-POL", None)[0].item.is_none());
        // Only the originator shares it.
        let e = c.apply(&ev(8, "CN-MPS", CaseChange::Shared { item: it.clone() }));
        assert!(matches!(e, Err(CaseError::NotAllowed(_))), "{e:?}");
        c.apply(&ev(8, "FBI", CaseChange::Shared { item: it.clone() })).unwrap();
        assert_eq!(c.event_view(&linked, "NL-POL", None), EventView::Full);
        assert_eq!(c.links_for("NL-POL", None)[0].item.as_ref(), Some(&it));
        // A RED item is never linked; an item one is not a party to neither.
        let red = item("r2", "FBI", &["FBI", "CN-MPS"], Tlp::Red);
        assert!(
            c.apply(&ev(
                9,
                "FBI",
                CaseChange::Linked {
                    item: red,
                    shared: true
                }
            ))
            .is_err()
        );
        let other = item("r3", "DE-BKA", &["DE-BKA", "CN-MPS"], Tlp::Green);
        assert!(
            c.apply(&ev(
                9,
                "NL-POL",
                CaseChange::Linked {
                    item: other,
                    shared: false
                }
            ))
            .is_err()
        );
    }

    #[test]
    fn a_member_that_left_keeps_what_it_saw_and_nothing_after() {
        let mut c = case_with_members();
        let note = ev(
            5,
            "FBI",
            CaseChange::Note {
                text: "first".into(),
                marking: Marking::new(Tlp::Amber),
            },
        );
        c.apply(&note).unwrap();
        let left = ev(
            6,
            "CN-MPS",
            CaseChange::Left {
                agency: "CN-MPS".into(),
                note: Some("done".into()),
            },
        );
        c.apply(&left).unwrap();
        let after = ev(
            7,
            "FBI",
            CaseChange::Note {
                text: "second".into(),
                marking: Marking::new(Tlp::Amber),
            },
        );
        c.apply(&after).unwrap();
        assert_eq!(c.event_view(&note, "CN-MPS", None), EventView::Full);
        assert_eq!(c.event_view(&left, "CN-MPS", None), EventView::Full);
        assert_eq!(c.event_view(&after, "CN-MPS", None), EventView::Hidden);
        let e = c.apply(&ev(
            8,
            "CN-MPS",
            CaseChange::Note {
                text: "x".into(),
                marking: Marking::new(Tlp::Amber),
            },
        ));
        assert!(matches!(e, Err(CaseError::NotAllowed(_))), "{e:?}");
    }

    #[test]
    fn red_notes_and_red_cases_reach_the_users_they_name() {
        let mut c = case_with_members();
        let red = Marking {
            tlp: Tlp::Red,
            recipients: vec!["CN-MPS:li".into()],
        };
        let note = ev(
            5,
            "FBI",
            CaseChange::Note {
                text: "source".into(),
                marking: red.clone(),
            },
        );
        c.apply(&note).unwrap();
        assert_eq!(c.event_view(&note, "CN-MPS", Some("li")), EventView::Full);
        assert_eq!(c.event_view(&note, "CN-MPS", Some("wang")), EventView::Hidden);
        assert_eq!(c.event_view(&note, "FBI", Some("anyone")), EventView::Full);
        c.apply(&ev(6, "FBI", CaseChange::Marking { marking: red })).unwrap();
        assert!(c.visible_to("CN-MPS", "li"));
        assert!(!c.visible_to("CN-MPS", "wang"));
        assert!(c.visible_to("FBI", "anyone"));
        assert!(!c.visible_to("XX", "li"));
    }

    #[test]
    fn a_share_is_the_originator_of_the_item_as_linked() {
        let mut c = case_with_members();
        let it = item("r1", "FBI", &["FBI", "CN-MPS"], Tlp::AmberStrict);
        c.apply(&ev(
            5,
            "FBI",
            CaseChange::Linked {
                item: it.clone(),
                shared: false,
            },
        ))
        .unwrap();
        // CN-MPS claims to be the originator of FBI's item: refused, nothing shared.
        let forged = ItemSnapshot {
            originator: "CN-MPS".into(),
            parties: vec!["CN-MPS".into()],
            ..it.clone()
        };
        let e = c.apply(&ev(6, "CN-MPS", CaseChange::Shared { item: forged }));
        assert!(matches!(e, Err(CaseError::NotAllowed(_))), "{e:?}");
        assert!(c.links[&(ItemKind::Request, "r1".into())].shared_seq.is_none());
        c.apply(&ev(6, "FBI", CaseChange::Shared { item: it })).unwrap();
    }

    #[test]
    fn users_are_named_with_their_agency_in_a_case() {
        let mut c = case_with_members();
        let bare = Marking {
            tlp: Tlp::Red,
            recipients: vec!["officer".into()],
        };
        let e = c.apply(&ev(
            5,
            "FBI",
            CaseChange::Note {
                text: "x".into(),
                marking: bare,
            },
        ));
        assert!(matches!(e, Err(CaseError::Invalid { .. })), "{e:?}");
        let m = Marking {
            tlp: Tlp::Red,
            recipients: vec!["CN-MPS:officer".into()],
        };
        let note = ev(
            5,
            "FBI",
            CaseChange::Note {
                text: "x".into(),
                marking: m,
            },
        );
        c.apply(&note).unwrap();
        // DE-BKA's "officer" is not CN-MPS's.
        c.apply(&ev(
            6,
            "DE-BKA",
            CaseChange::Joined {
                agency: "DE-BKA".into(),
            },
        ))
        .unwrap();
        assert_eq!(c.event_view(&note, "DE-BKA", Some("officer")), EventView::Hidden);
        assert_eq!(
            c.event_view(&note, "DE-BKA", None),
            EventView::Hidden,
            "its node is not sent it"
        );
        assert_eq!(c.event_view(&note, "CN-MPS", Some("officer")), EventView::Full);
        assert_eq!(c.event_view(&note, "CN-MPS", None), EventView::Full);
    }

    #[test]
    fn one_member_cannot_fill_the_log() {
        let mut c = case_with_members();
        c.content_by.insert("CN-MPS".into(), MAX_MEMBER_CONTENT);
        let note = |seq, agency: &str| {
            ev(
                seq,
                agency,
                CaseChange::Note {
                    text: "x".into(),
                    marking: Marking::new(Tlp::Amber),
                },
            )
        };
        let e = c.apply(&note(5, "CN-MPS"));
        assert!(matches!(e, Err(CaseError::Conflict(_))), "{e:?}");
        c.apply(&note(5, "FBI")).unwrap();
        assert_eq!(c.content_by["FBI"], 1);
        // The lead may still close the case.
        c.apply(&ev(6, "FBI", CaseChange::Closed { note: None })).unwrap();
    }

    #[test]
    fn events_round_trip_as_json_and_refuse_unknown_fields() {
        let e = created();
        let j = serde_json::to_value(&e).unwrap();
        assert_eq!(j["change"]["kind"], "created");
        assert_eq!(serde_json::from_value::<CaseEvent>(j.clone()).unwrap(), e);
        let mut bad = j;
        bad["change"]["extra"] = serde_json::json!(1);
        assert!(serde_json::from_value::<CaseEvent>(bad).is_err());
    }
}
