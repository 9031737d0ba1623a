//! Aggregation: events folded into indicators, per-partner clean-up notices, partner feedback.
//!
//! [`CleanupState`] is a plain struct with methods and public data, so the persistence layer
//! can load and save it. Suggested tables (SQLite/PostgreSQL):
//!
//! ```sql
//! CREATE TABLE intel_indicator (
//!   id INTEGER PRIMARY KEY,            -- CleanupState index (stable for the state's life)
//!   kind TEXT NOT NULL, value TEXT NOT NULL,
//!   classification TEXT NOT NULL, malware TEXT, feed TEXT NOT NULL,
//!   first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, sightings INTEGER NOT NULL,
//!   confidence INTEGER NOT NULL, tlp TEXT NOT NULL, port INTEGER,
//!   victim_count INTEGER, victim_countries TEXT,   -- JSON [["CN", 120], ...]
//!   source_country TEXT, source_asn INTEGER, as_org TEXT, partner TEXT,
//!   first_notified INTEGER, last_notice TEXT, remediated_at INTEGER, reappeared_at INTEGER,
//!   reappearances INTEGER NOT NULL DEFAULT 0, suppressed INTEGER NOT NULL DEFAULT 0,
//!   UNIQUE (kind, value));
//! CREATE TABLE intel_notice (
//!   id TEXT PRIMARY KEY,               -- NoticeId (UUIDv5 of partner + interval)
//!   partner TEXT NOT NULL, interval_start INTEGER NOT NULL, interval_end INTEGER NOT NULL,
//!   issued_at INTEGER NOT NULL, tlp TEXT NOT NULL, UNIQUE (partner, interval_start, interval_end));
//! CREATE TABLE intel_notice_item (
//!   id TEXT PRIMARY KEY,               -- item id (UUIDv5 of notice id + kind + value)
//!   notice_id TEXT NOT NULL REFERENCES intel_notice(id),
//!   indicator_id INTEGER NOT NULL REFERENCES intel_indicator(id),
//!   status TEXT NOT NULL);             -- new | still-active | reappeared
//! CREATE TABLE intel_feedback (
//!   id INTEGER PRIMARY KEY, item_id TEXT NOT NULL REFERENCES intel_notice_item(id),
//!   indicator_id INTEGER NOT NULL, partner TEXT NOT NULL,
//!   status TEXT NOT NULL,              -- remediated | not-found | disputed | false-positive
//!   at INTEGER NOT NULL, note TEXT);
//! ```

use crate::fast_hash::FastMap;
use crate::model::{Classification, Event, IndicatorKind, IndicatorValue, PartnerId};
use crate::time::{UnixTime, format_rfc3339};
use liaison_core::{CountryCode, Pap, Tlp};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use uuid::Uuid;

/// An indicator value's text as stored (`Display`): borrowed when the value holds it, else
/// written into `buf`.
fn value_text<'a>(v: &'a IndicatorValue, buf: &'a mut String) -> &'a str {
    match v {
        IndicatorValue::Text(_, s) => s,
        other => {
            use std::fmt::Write as _;
            buf.clear();
            let _ = write!(buf, "{other}");
            buf
        }
    }
}

/// Namespace for Liaison's deterministic UUIDv5 ids (notices, items, STIX ids).
pub const LIAISON_NAMESPACE: Uuid = Uuid::from_u128(0x6c69_6169_736f_6e00_8000_0000_0000_0001);

/// One indicator with everything learned from its sightings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Indicator {
    pub kind: IndicatorKind,
    pub value: IndicatorValue,
    pub classification: Classification,
    pub malware: Option<Arc<str>>,
    pub feed: Arc<str>,
    pub first_seen: UnixTime,
    pub last_seen: UnixTime,
    pub sightings: u64,
    pub confidence: u8,
    pub tlp: Tlp,
    pub port: Option<u16>,
    /// The largest victim count a feed reported.
    pub victim_count: Option<u32>,
    /// Victims per country (largest count reported per country; 1 when only a country is given).
    pub victim_countries: Victims,
    pub source_country: Option<CountryCode>,
    pub source_asn: Option<u32>,
    pub as_org: Option<Arc<str>>,
    pub partner: Option<PartnerId>,
    /// When the indicator was first put on a notice.
    pub first_notified: Option<UnixTime>,
    /// The last notice it was put on.
    pub last_notice: Option<NoticeId>,
    /// When the partner said it was remediated (latest).
    pub remediated_at: Option<UnixTime>,
    /// A sighting after `remediated_at`.
    pub reappeared_at: Option<UnixTime>,
    pub reappearances: u32,
    /// Marked a false positive: left out of further notices.
    pub suppressed: bool,
    /// Which of the node's agencies ingested it: their codes, sorted, joined by `,` (shared
    /// between indicators with the same set). `None` when not recorded: a pipeline run of its
    /// own, or an indicator stored before the node recorded it (schema migration 20). Local
    /// to the node: never serialized.
    #[serde(skip)]
    pub ingested_by: Option<Arc<str>>,
}

impl Indicator {
    pub(crate) fn from_event(ev: &Event) -> Indicator {
        let seen = ev.seen_at();
        let first = ev.first_seen.or(ev.time_source).unwrap_or(seen).min(seen);
        let mut ind = Indicator {
            kind: ev.value.kind(),
            value: ev.value.clone(),
            classification: ev.classification,
            malware: ev.malware.clone(),
            feed: ev.feed.clone(),
            first_seen: first,
            last_seen: seen,
            sightings: u64::from(ev.count.max(1)),
            confidence: ev.confidence,
            tlp: ev.tlp,
            port: ev.port,
            victim_count: ev.victim_count,
            victim_countries: Victims::default(),
            source_country: ev.source_country,
            source_asn: ev.source_asn,
            as_org: ev.as_org.clone(),
            partner: ev.partner.clone(),
            first_notified: None,
            last_notice: None,
            remediated_at: None,
            reappeared_at: None,
            reappearances: 0,
            suppressed: false,
            ingested_by: None,
        };
        ind.add_victims(ev);
        ind
    }

    fn add_victims(&mut self, ev: &Event) {
        if let Some(cc) = ev.victim_country {
            self.victim_countries.add_max(cc, ev.victim_count.unwrap_or(1));
        }
    }

    /// Whether agency `code` is among those that ingested the indicator.
    pub fn ingested_by(&self, code: &str) -> bool {
        self.ingested_by
            .as_deref()
            .is_some_and(|list| list.split(',').any(|c| c == code))
    }

    /// Whether the indicator counts as active (not remediated, or seen again since).
    pub fn is_active(&self) -> bool {
        !self.suppressed
            && match (self.remediated_at, self.reappeared_at) {
                (None, _) => true,
                (Some(r), Some(a)) => a > r,
                (Some(_), None) => false,
            }
    }

    /// Total victims over all countries.
    pub fn victims(&self) -> u64 {
        let by_country: u64 = self.victim_countries.iter().map(|(_, n)| u64::from(n)).sum();
        by_country.max(u64::from(self.victim_count.unwrap_or(0)))
    }
}

/// Victims per country. The first country is stored inline: most indicators have one, and
/// the aggregation hot path then touches no extra heap memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Victims {
    first: Option<(CountryCode, u32)>,
    more: Vec<(CountryCode, u32)>,
}

impl Victims {
    pub fn from_pairs(pairs: &[(CountryCode, u32)]) -> Victims {
        let mut v = Victims::default();
        for &(c, n) in pairs {
            v.add_max(c, n);
        }
        v
    }
    /// Records `n` victims in `cc`, keeping the largest count seen per country.
    pub fn add_max(&mut self, cc: CountryCode, n: u32) {
        match &mut self.first {
            None => self.first = Some((cc, n)),
            Some((c, v)) if *c == cc => *v = (*v).max(n),
            Some(_) => match self.more.iter_mut().find(|(c, _)| *c == cc) {
                Some((_, v)) => *v = (*v).max(n),
                None => self.more.push((cc, n)),
            },
        }
    }
    pub fn iter(&self) -> impl Iterator<Item = (CountryCode, u32)> + '_ {
        self.first.into_iter().chain(self.more.iter().copied())
    }
    pub fn get(&self, cc: CountryCode) -> Option<u32> {
        self.iter().find(|(c, _)| *c == cc).map(|(_, n)| n)
    }
    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }
    pub fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.more.len()
    }
    /// The countries after the first.
    pub fn rest(&self) -> &[(CountryCode, u32)] {
        &self.more
    }
}

impl Serialize for Victims {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// What [`CleanupState::observe`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    New,
    Resighting,
    /// The same sighting again (same indicator, same time): counted, not applied.
    Duplicate,
    /// Seen after the partner reported it remediated.
    Reappeared,
}

/// A half-open time range `[start, end)` that a notice covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Interval {
    pub start: UnixTime,
    pub end: UnixTime,
}

impl Interval {
    /// The UTC day containing `t`.
    pub fn day_of(t: UnixTime) -> Interval {
        let start = t.div_euclid(crate::time::DAY) * crate::time::DAY;
        Interval {
            start,
            end: start + crate::time::DAY,
        }
    }
    pub fn contains(&self, t: UnixTime) -> bool {
        self.start <= t && t < self.end
    }
}

/// A notice's stable id: UUIDv5 of partner and interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NoticeId(pub Uuid);

impl NoticeId {
    pub fn new(partner: &PartnerId, interval: Interval) -> NoticeId {
        let name = format!("notice|{}|{}|{}", partner.as_str(), interval.start, interval.end);
        NoticeId(Uuid::new_v5(&LIAISON_NAMESPACE, name.as_bytes()))
    }
}

impl fmt::Display for NoticeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Status of an item on a notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ItemStatus {
    /// First seen in this interval.
    New,
    /// Known before and still seen.
    StillActive,
    /// Seen again after the partner reported it remediated.
    Reappeared,
}

/// One indicator on a notice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoticeItem {
    /// UUIDv5 of notice id + kind + value: what the partner answers to.
    pub item_id: Uuid,
    /// Index of the indicator in the [`CleanupState`].
    #[serde(skip)]
    pub indicator: u32,
    pub kind: IndicatorKind,
    pub value: String,
    pub status: ItemStatus,
    pub classification: Classification,
    pub malware: Option<Arc<str>>,
    pub first_seen: UnixTime,
    pub last_seen: UnixTime,
    pub sightings: u64,
    pub port: Option<u16>,
    pub source_country: Option<CountryCode>,
    pub source_asn: Option<u32>,
    pub as_org: Option<Arc<str>>,
    pub victim_count: Option<u32>,
    pub tlp: Tlp,
}

/// A clean-up notice: what one partner should act on for one interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    pub id: NoticeId,
    pub partner: PartnerId,
    pub interval: Interval,
    /// The strictest TLP of its items.
    pub tlp: Tlp,
    /// What the partner may do about the items (docs/markings.md). A notice run gives every
    /// notice the level its issuer chose ([`Notice::DEFAULT_PAP`] unless told otherwise).
    pub pap: Pap,
    pub items: Vec<NoticeItem>,
}

impl Notice {
    /// The PAP of a notice whose issuer chose none: a clean-up notice asks the partner to act.
    pub const DEFAULT_PAP: Pap = Pap::Green;
}

/// A partner's answer about one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeedbackStatus {
    Remediated,
    NotFound,
    Disputed,
    FalsePositive,
}

impl std::str::FromStr for FeedbackStatus {
    type Err = crate::model::UnknownWord;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().replace(['_', ' '], "-").as_str() {
            "remediated" | "fixed" | "cleaned" => FeedbackStatus::Remediated,
            "not-found" | "notfound" => FeedbackStatus::NotFound,
            "disputed" => FeedbackStatus::Disputed,
            "false-positive" | "fp" => FeedbackStatus::FalsePositive,
            _ => {
                return Err(crate::model::UnknownWord {
                    what: "feedback status",
                    value: s.to_string(),
                });
            }
        })
    }
}

/// One recorded answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedbackRecord {
    pub item_id: Uuid,
    pub indicator: u32,
    pub partner: PartnerId,
    pub status: FeedbackStatus,
    pub at: UnixTime,
    pub note: Option<String>,
}

/// Feedback that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedbackError {
    #[error("no notice item with id {0}")]
    UnknownItem(Uuid),
    #[error("item {item} belongs to partner '{owner}', not '{partner}'")]
    WrongPartner { item: Uuid, owner: String, partner: String },
}

/// Time-to-remediation and feedback counts for one partner.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartnerRemediation {
    pub partner: PartnerId,
    pub notified: u64,
    pub remediated: u64,
    pub not_found: u64,
    pub disputed: u64,
    pub false_positive: u64,
    pub reappeared: u64,
    /// Median and mean seconds from first notice to "remediated".
    pub median_ttr_secs: Option<i64>,
    pub mean_ttr_secs: Option<f64>,
}

/// The whole aggregation state.
#[derive(Debug, Clone, Default)]
pub struct CleanupState {
    pub indicators: Vec<Indicator>,
    index: FastMap<IndicatorValue, u32>,
    /// Notice items issued so far: item id -> (indicator, partner).
    pub issued_items: FastMap<Uuid, (u32, PartnerId)>,
    pub feedback: Vec<FeedbackRecord>,
    scratch: Vec<u32>,
}

impl CleanupState {
    pub fn new() -> CleanupState {
        CleanupState::default()
    }

    /// Orders the indicators from index `base` on by kind, then by value as text (the order
    /// of a store's `(kind, value)` index), renumbering them. Written in index order, they then
    /// go into such an index in key order: consecutive rows land in the same few index pages,
    /// where in the order a feed first named them every row changed another page. Only for
    /// indicators nothing refers to yet: returns `false` and changes nothing when a notice
    /// item or an answer names one of them.
    pub fn sort_from(&mut self, base: u32) -> bool {
        let base_ix = base as usize;
        if base_ix >= self.indicators.len() {
            return true;
        }
        if self.issued_items.values().any(|(i, _)| *i >= base) || self.feedback.iter().any(|f| f.indicator >= base) {
            return false;
        }
        // In place, and without a key per indicator (the state is at its largest here): each
        // comparison writes the values that have no text of their own into two buffers.
        let new = &mut self.indicators[base_ix..];
        let (mut ta, mut tb) = (String::new(), String::new());
        new.sort_unstable_by(|a, b| {
            a.kind
                .as_str()
                .cmp(b.kind.as_str())
                .then_with(|| value_text(&a.value, &mut ta).cmp(value_text(&b.value, &mut tb)))
        });
        for (k, ind) in new.iter().enumerate() {
            if let Some(ix) = self.index.get_mut(&ind.value) {
                *ix = base + k as u32;
            }
        }
        true
    }

    /// Records that agency `code` ingested the indicators at `ixs` (see
    /// [`Indicator::ingested_by`]). Indicators with the same set before share one set after.
    /// Indices out of range are ignored.
    pub fn mark_ingested_by(&mut self, ixs: &[u32], code: &str) {
        let mut sets: FastMap<Option<Arc<str>>, Option<Arc<str>>> = FastMap::default();
        for &ix in ixs {
            let Some(ind) = self.indicators.get_mut(ix as usize) else {
                continue;
            };
            if ind.ingested_by(code) {
                continue;
            }
            let next = sets
                .entry(ind.ingested_by.clone())
                .or_insert_with_key(|old| {
                    let mut codes: Vec<&str> = old.as_deref().map(|l| l.split(',').collect()).unwrap_or_default();
                    codes.push(code);
                    codes.sort_unstable();
                    Some(Arc::from(codes.join(",")))
                })
                .clone();
            ind.ingested_by = next;
        }
    }

    /// Rebuilds a state from persisted parts (indicators in id order, issued items, feedback).
    pub fn from_parts(
        indicators: Vec<Indicator>,
        issued_items: impl IntoIterator<Item = (Uuid, u32, PartnerId)>,
        feedback: Vec<FeedbackRecord>,
    ) -> CleanupState {
        let mut index = FastMap::default();
        for (i, ind) in indicators.iter().enumerate() {
            index.insert(ind.value.clone(), i as u32);
        }
        CleanupState {
            indicators,
            index,
            issued_items: issued_items.into_iter().map(|(u, i, p)| (u, (i, p))).collect(),
            feedback,
            scratch: Vec::new(),
        }
    }

    /// An estimate of the heap memory this state holds, in bytes: the indicator records,
    /// the value index, out-of-line values (domains, URLs, …), extra victim countries,
    /// issued items and feedback. Shared words (feeds, malware, AS names, partners) are
    /// interned and left out.
    ///
    /// The state grows with *distinct* indicators, not with rows: about 340 bytes per
    /// IPv4 indicator (bench/intel/README.md). This makes that growth visible to callers
    /// (the ingest summary, the benchmark) so an operator can size a node or split feeds.
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        // hashbrown: one control byte per bucket plus the (key, value) slot; buckets are
        // the capacity rounded up to a power of two, at 7/8 load.
        fn table<K, V>(cap: usize) -> usize {
            let buckets = (cap * 8 / 7).next_power_of_two();
            buckets * (size_of::<(K, V)>() + 1)
        }
        let mut out = self.indicators.capacity() * size_of::<Indicator>()
            + table::<IndicatorValue, u32>(self.index.capacity())
            + table::<Uuid, (u32, PartnerId)>(self.issued_items.capacity())
            + self.feedback.capacity() * size_of::<FeedbackRecord>()
            + self.scratch.capacity() * size_of::<u32>();
        for ind in &self.indicators {
            if let IndicatorValue::Text(_, t) = &ind.value {
                // Once in the record, once in the index key.
                out += 2 * t.len();
            }
            out += std::mem::size_of_val(ind.victim_countries.rest());
        }
        for f in &self.feedback {
            out += f.note.as_ref().map_or(0, String::capacity);
        }
        out
    }

    pub fn len(&self) -> usize {
        self.indicators.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indicators.is_empty()
    }

    /// The index and record of an indicator.
    pub fn get(&self, value: &IndicatorValue) -> Option<(u32, &Indicator)> {
        let i = *self.index.get(value)?;
        Some((i, self.indicators.get(i as usize)?))
    }

    /// Folds a batch of events into the state, calling `done` with each result in order.
    ///
    /// Same result as [`CleanupState::observe`] per event, but all index look-ups of the batch
    /// run first: independent look-ups let the CPU overlap their cache misses, which dominate
    /// once the state outgrows the caches.
    pub fn observe_batch(&mut self, events: &[Event], mut done: impl FnMut(&Event, Observed)) {
        let mut found = std::mem::take(&mut self.scratch);
        found.clear();
        found.extend(
            events
                .iter()
                .map(|e| self.index.get(&e.value).copied().unwrap_or(u32::MAX)),
        );
        for (ev, &ix) in events.iter().zip(&found) {
            let r = if ix == u32::MAX {
                self.observe(ev)
            } else {
                self.update(ix, ev)
            };
            done(ev, r);
        }
        self.scratch = found;
    }

    /// Folds one event into the state.
    #[inline]
    pub fn observe(&mut self, ev: &Event) -> Observed {
        let Some(&i) = self.index.get(&ev.value) else {
            self.index.insert(ev.value.clone(), self.indicators.len() as u32);
            self.indicators.push(Indicator::from_event(ev));
            return Observed::New;
        };
        self.update(i, ev)
    }

    #[inline]
    fn update(&mut self, i: u32, ev: &Event) -> Observed {
        let Some(ind) = self.indicators.get_mut(i as usize) else {
            return Observed::Duplicate;
        };
        let seen = ev.seen_at();
        if let Some(v) = ev.victim_count {
            ind.victim_count = Some(ind.victim_count.map_or(v, |c| c.max(v)));
        }
        if ev.victim_country.is_some() {
            ind.add_victims(ev);
        }
        if seen == ind.last_seen {
            return Observed::Duplicate;
        }
        ind.sightings += u64::from(ev.count.max(1));
        ind.last_seen = ind.last_seen.max(seen);
        let first = ev.first_seen.or(ev.time_source).unwrap_or(seen).min(seen);
        ind.first_seen = ind.first_seen.min(first);
        ind.confidence = ind.confidence.max(ev.confidence);
        ind.tlp = ind.tlp.stricter(ev.tlp);
        if ind.malware.is_none() {
            ind.malware.clone_from(&ev.malware);
        }
        if ind.source_country.is_none() {
            ind.source_country = ev.source_country;
        }
        if ind.source_asn.is_none() {
            ind.source_asn = ev.source_asn;
        }
        if ind.as_org.is_none() && ev.as_org.is_some() {
            ind.as_org.clone_from(&ev.as_org);
        }
        if ind.partner.is_none() && ev.partner.is_some() {
            ind.partner.clone_from(&ev.partner);
        }
        if let Some(r) = ind.remediated_at
            && seen > r
            && ind.reappeared_at.is_none_or(|a| a <= r)
        {
            ind.reappeared_at = Some(seen);
            ind.reappearances += 1;
            return Observed::Reappeared;
        }
        Observed::Resighting
    }

    fn item_id(notice: NoticeId, ind: &Indicator) -> Uuid {
        let name = format!("{}|{}", ind.kind.as_str(), ind.value);
        Uuid::new_v5(&notice.0, name.as_bytes())
    }

    /// Builds the notices for `interval` (pure): for each partner, the active indicators last
    /// seen in the interval, marked new / still-active / reappeared. Sorted by partner, items by
    /// kind and value, so the output is deterministic.
    pub fn build_notices(&self, interval: Interval) -> Vec<Notice> {
        let mut by_partner: std::collections::BTreeMap<&PartnerId, Vec<u32>> = Default::default();
        for (i, ind) in self.indicators.iter().enumerate() {
            let Some(p) = &ind.partner else { continue };
            let seen_in =
                interval.contains(ind.last_seen) || (ind.first_seen < interval.end && ind.last_seen >= interval.end);
            if seen_in && ind.is_active() {
                by_partner.entry(p).or_default().push(i as u32);
            }
        }
        by_partner
            .into_iter()
            .map(|(partner, ixs)| {
                let id = NoticeId::new(partner, interval);
                let mut items: Vec<NoticeItem> = ixs
                    .into_iter()
                    .filter_map(|i| {
                        let ind = self.indicators.get(i as usize)?;
                        let status = if ind.remediated_at.is_some() && ind.reappeared_at.is_some() {
                            ItemStatus::Reappeared
                        } else if interval.contains(ind.first_seen) && ind.first_notified.is_none() {
                            ItemStatus::New
                        } else {
                            ItemStatus::StillActive
                        };
                        Some(NoticeItem {
                            item_id: CleanupState::item_id(id, ind),
                            indicator: i,
                            kind: ind.kind,
                            value: ind.value.to_string(),
                            status,
                            classification: ind.classification,
                            malware: ind.malware.clone(),
                            first_seen: ind.first_seen,
                            last_seen: ind.last_seen,
                            sightings: ind.sightings,
                            port: ind.port,
                            source_country: ind.source_country,
                            source_asn: ind.source_asn,
                            as_org: ind.as_org.clone(),
                            victim_count: ind.victim_count,
                            tlp: ind.tlp,
                        })
                    })
                    .collect();
                items.sort_by(|a, b| (a.kind, &a.value).cmp(&(b.kind, &b.value)));
                let tlp = items.iter().map(|i| i.tlp).max().unwrap_or(Tlp::Clear);
                Notice {
                    id,
                    partner: partner.clone(),
                    interval,
                    tlp,
                    pap: Notice::DEFAULT_PAP,
                    items,
                }
            })
            .collect()
    }

    /// Records that `notices` were sent at `at`: sets first-notified times and remembers the item
    /// ids so feedback can refer to them.
    pub fn mark_issued(&mut self, notices: &[Notice], at: UnixTime) {
        for n in notices {
            for item in &n.items {
                if let Some(ind) = self.indicators.get_mut(item.indicator as usize) {
                    ind.first_notified.get_or_insert(at);
                    ind.last_notice = Some(n.id);
                }
                self.issued_items
                    .insert(item.item_id, (item.indicator, n.partner.clone()));
            }
        }
    }

    /// Builds and marks the notices for `interval` in one step.
    pub fn issue_notices(&mut self, interval: Interval, at: UnixTime) -> Vec<Notice> {
        let notices = self.build_notices(interval);
        self.mark_issued(&notices, at);
        notices
    }

    /// Applies a partner's answer about a notice item.
    pub fn apply_feedback(
        &mut self,
        partner: &PartnerId,
        item_id: Uuid,
        status: FeedbackStatus,
        at: UnixTime,
        note: Option<String>,
    ) -> Result<(), FeedbackError> {
        let (ix, owner) = self
            .issued_items
            .get(&item_id)
            .cloned()
            .ok_or(FeedbackError::UnknownItem(item_id))?;
        if &owner != partner {
            return Err(FeedbackError::WrongPartner {
                item: item_id,
                owner: owner.to_string(),
                partner: partner.to_string(),
            });
        }
        if let Some(ind) = self.indicators.get_mut(ix as usize) {
            match status {
                FeedbackStatus::Remediated => {
                    ind.remediated_at = Some(at);
                    ind.reappeared_at = None;
                }
                FeedbackStatus::FalsePositive => ind.suppressed = true,
                FeedbackStatus::NotFound | FeedbackStatus::Disputed => {}
            }
        }
        self.feedback.push(FeedbackRecord {
            item_id,
            indicator: ix,
            partner: partner.clone(),
            status,
            at,
            note,
        });
        Ok(())
    }

    /// Feedback counts and time-to-remediation per partner, sorted by partner.
    pub fn remediation_by_partner(&self) -> Vec<PartnerRemediation> {
        let mut out: std::collections::BTreeMap<&PartnerId, (PartnerRemediation, Vec<i64>)> = Default::default();
        let blank = |p: &PartnerId| PartnerRemediation {
            partner: p.clone(),
            notified: 0,
            remediated: 0,
            not_found: 0,
            disputed: 0,
            false_positive: 0,
            reappeared: 0,
            median_ttr_secs: None,
            mean_ttr_secs: None,
        };
        for ind in &self.indicators {
            let (Some(p), Some(n)) = (&ind.partner, ind.first_notified) else {
                continue;
            };
            let e = out.entry(p).or_insert_with(|| (blank(p), Vec::new()));
            e.0.notified += 1;
            if ind.reappearances > 0 {
                e.0.reappeared += 1;
            }
            if let Some(r) = ind.remediated_at {
                e.1.push((r - n).max(0));
            }
        }
        for fb in &self.feedback {
            let e = out
                .entry(&fb.partner)
                .or_insert_with(|| (blank(&fb.partner), Vec::new()));
            match fb.status {
                FeedbackStatus::Remediated => e.0.remediated += 1,
                FeedbackStatus::NotFound => e.0.not_found += 1,
                FeedbackStatus::Disputed => e.0.disputed += 1,
                FeedbackStatus::FalsePositive => e.0.false_positive += 1,
            }
        }
        out.into_values()
            .map(|(mut r, mut ttr)| {
                if let Some(s) = TtrSummary::of(&mut ttr) {
                    r.median_ttr_secs = Some(s.median);
                    r.mean_ttr_secs = Some(s.mean);
                }
                r
            })
            .collect()
    }
}

/// Writes notices as CSV (one row per item).
pub fn notices_to_csv<W: std::io::Write>(notices: &[Notice], out: W) -> Result<(), csv::Error> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
        "notice_id",
        "partner",
        "interval_start",
        "interval_end",
        "item_id",
        "status",
        "kind",
        "value",
        "classification",
        "taxonomy",
        "malware",
        "first_seen",
        "last_seen",
        "sightings",
        "port",
        "source_country",
        "source_asn",
        "as_org",
        "victim_count",
        "tlp",
        "pap",
    ])?;
    for n in notices {
        for i in &n.items {
            // Every cell through the spreadsheet guard: partner codes, indicator values,
            // malware names and AS organisations come from feeds and peers.
            let record: [String; 21] = [
                n.id.to_string(),
                n.partner.to_string(),
                format_rfc3339(n.interval.start),
                format_rfc3339(n.interval.end),
                i.item_id.to_string(),
                match i.status {
                    ItemStatus::New => "new",
                    ItemStatus::StillActive => "still-active",
                    ItemStatus::Reappeared => "reappeared",
                }
                .to_string(),
                i.kind.to_string(),
                i.value.clone(),
                i.classification.to_string(),
                i.classification.taxonomy().to_string(),
                i.malware.as_deref().unwrap_or("").to_string(),
                format_rfc3339(i.first_seen),
                format_rfc3339(i.last_seen),
                i.sightings.to_string(),
                i.port.map(|p| p.to_string()).unwrap_or_default(),
                i.source_country.map(|c| c.to_string()).unwrap_or_default(),
                i.source_asn.map(|a| a.to_string()).unwrap_or_default(),
                i.as_org.as_deref().unwrap_or("").to_string(),
                i.victim_count.map(|v| v.to_string()).unwrap_or_default(),
                i.tlp.to_string(),
                n.pap.to_string(),
            ];
            w.write_record(record.iter().map(|c| liaison_core::spreadsheet_safe(c).into_owned()))?;
        }
    }
    w.flush()?;
    Ok(())
}

/// Notices as JSON (an array of notice objects with their items).
pub fn notices_to_json(notices: &[Notice]) -> serde_json::Value {
    serde_json::to_value(notices).unwrap_or(serde_json::Value::Null)
}

/// A notice as the node keeps it, with when it was issued.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoredNotice {
    #[serde(flatten)]
    pub notice: Notice,
    pub issued_at: crate::time::UnixTime,
    /// The issuing agency (its code); `None` for notices issued by trusted tooling or before
    /// issuers were recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
}

/// The median, mean and longest of time-to-remediation durations (seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TtrSummary {
    pub median: i64,
    pub mean: f64,
    pub max: i64,
}

impl TtrSummary {
    /// Summarises `ttr` (sorted in place); `None` when there is none.
    pub fn of(ttr: &mut [i64]) -> Option<TtrSummary> {
        ttr.sort_unstable();
        let (&median, &max) = (ttr.get(ttr.len() / 2)?, ttr.last()?);
        let mean = ttr.iter().map(|&t| t as f64).sum::<f64>() / ttr.len() as f64;
        Some(TtrSummary { median, mean, max })
    }
}
