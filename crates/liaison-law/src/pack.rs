//! Rule packs: the TOML files under `rules/`, their validation, and the indexes the engine uses.
//!
//! Loading is all or nothing: [`RulePacks::load`] either returns packs in which every rule has
//! passed every check, or an error listing every problem found ([`check`] returns the same list).

use crate::model::{
    ChannelKind, Citation, Confidence, ContentsRule, DcRequirement, Particular, PeriodKind, RefusalGround,
};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use liaison_core::{CountryCode, DataCategory, RequestKind};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toml::Spanned;
use toml::value::Datetime;

/// FNV-1a: the indexes are keyed by short trusted strings and country codes, where SipHash's
/// flooding resistance buys nothing and costs a third of an assessment.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// A hash map with the FNV hasher.
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

/// File holding the offence taxonomy.
pub const OFFENCES_FILE: &str = "offences.toml";
/// File holding treaties, memberships and channels.
pub const TREATIES_FILE: &str = "treaties.toml";

/// One problem in a rule pack, displayed as `rules/cn.toml:42: rule cn.dc.bc-09: ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based line; 0 when the problem concerns the file as a whole.
    pub line: usize,
    pub rule: Option<String>,
    pub message: String,
    /// Warnings (a "confirmed" rule without its primary excerpt) do not stop the packs loading.
    pub severity: Severity,
}

/// How bad a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Severity {
    #[default]
    Error,
    Warning,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file.display(), self.line)?;
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        if let Some(r) = &self.rule {
            write!(f, "rule {r}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Why rule packs could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read rule packs in {}: {source}", dir.display())]
    Io {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} problem(s) in rule packs; first: {}", .0.len(), .0.first().map(|d| d.to_string()).unwrap_or_default())]
    Invalid(Vec<Diagnostic>),
}

impl LoadError {
    /// Every problem found (empty for I/O errors).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            LoadError::Invalid(d) => d,
            LoadError::Io { .. } => &[],
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Raw TOML shapes
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCitation {
    #[serde(default)]
    instrument: String,
    #[serde(default)]
    article: String,
    #[serde(default)]
    url: String,
    /// Verbatim quote of the primary source.
    #[serde(default)]
    excerpt: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOffences {
    offence: Vec<RawOffence>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOffence {
    code: Spanned<String>,
    name_en: String,
    name_zh: String,
    source: String,
    #[serde(default)]
    conduct: Vec<String>,
    #[serde(default)]
    refusal_flags: Vec<RefusalGround>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTreaties {
    #[serde(default)]
    treaty: Vec<RawTreaty>,
    #[serde(default)]
    membership: Vec<RawMembership>,
    #[serde(default)]
    channel: Vec<RawChannel>,
    #[serde(default)]
    request_contents: Vec<RawContents>,
}

/// `[[request_contents]]`: what a formal request must contain on some channels (the letter).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContents {
    id: Spanned<String>,
    /// Channel ids this list applies to.
    #[serde(default)]
    channels: Vec<String>,
    /// Channel kinds this list applies to (any channel of the kind).
    #[serde(default)]
    channel_kinds: Vec<ChannelKind>,
    /// Request kinds (empty: all).
    #[serde(default)]
    request_kinds: Vec<RequestKind>,
    /// Requested states (empty: all).
    #[serde(default)]
    requested_in: Vec<CountryCode>,
    /// The list used when no list names the channel.
    #[serde(default)]
    generic: bool,
    particulars: Vec<Particular>,
    #[serde(default)]
    note: String,
    effective_from: Option<Datetime>,
    effective_until: Option<Datetime>,
    confidence: Option<Confidence>,
    citation: Option<RawCitation>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTreaty {
    id: Spanned<String>,
    name: String,
    #[serde(default)]
    name_zh: String,
    /// Only Parties to this other treaty may join (the Second Additional Protocol: Budapest).
    #[serde(default)]
    open_to: Option<String>,
    #[serde(default)]
    in_force: Option<bool>,
    #[serde(default)]
    note: String,
    effective_from: Option<Datetime>,
    effective_until: Option<Datetime>,
    confidence: Option<Confidence>,
    citation: Option<RawCitation>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MembershipStatus {
    Party,
    Member,
    Signatory,
    NotParty,
    Unknown,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMembership {
    id: Spanned<String>,
    treaty: String,
    party: CountryCode,
    status: MembershipStatus,
    #[serde(default)]
    reservations: Vec<String>,
    #[serde(default)]
    note: String,
    effective_from: Option<Datetime>,
    effective_until: Option<Datetime>,
    confidence: Option<Confidence>,
    citation: Option<RawCitation>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRefusal {
    ground: RefusalGround,
    clause: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPenaltyFloor {
    /// The offence must be punishable in the requesting state by at least this many years...
    min_years: f64,
    /// ...when one of these categories is sought...
    categories: Vec<DataCategory>,
    /// ...unless the offence is one of these codes.
    #[serde(default)]
    exempt_offences: Vec<String>,
    /// What the warning says when the floor is not shown to be met.
    #[serde(default)]
    warning: FloorWarning,
}

/// How a channel's penalty floor is named in warnings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FloorWarning {
    /// A penalty floor (Reg 2023/1543 Art 5(4)).
    #[default]
    PenaltyFloor,
    /// The serious-crime condition of a CLOUD Act agreement.
    SeriousCrime,
}

/// Who a channel reaches besides the requested state's authorities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Reach {
    /// Orders the requesting member state issues to any provider offering services in the
    /// Union, wherever established (Reg (EU) 2023/1543): only the requesting state must be
    /// bound, and a target's provider must offer services in the Union (or the requested
    /// state be bound too).
    UnionProvider,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    id: Spanned<String>,
    kind: ChannelKind,
    name: String,
    #[serde(default)]
    name_zh: String,
    /// Direct-provider paths: the provider must be established in one of these states (when
    /// no target names a provider, the provider is taken to be in the requested state).
    #[serde(default)]
    provider_established_in: Vec<CountryCode>,
    #[serde(default)]
    reach: Option<Reach>,
    /// The order the requesting state issues under its own law, by requesting state.
    #[serde(default)]
    issuing_instrument: BTreeMap<String, String>,
    #[serde(default)]
    treaty: Option<String>,
    #[serde(default)]
    requested_in: Vec<CountryCode>,
    #[serde(default)]
    request_kinds: Vec<RequestKind>,
    coercive: bool,
    dual_criminality: DcRequirement,
    default_days: f64,
    #[serde(default)]
    emergency_days: Option<f64>,
    #[serde(default)]
    preservation_days: Option<u32>,
    /// Penalty floor in the requesting state for some categories (Reg 2023/1543 Art 5(4)).
    #[serde(default)]
    penalty_floor: Option<RawPenaltyFloor>,
    #[serde(default)]
    refusal_grounds: Vec<RawRefusal>,
    #[serde(default)]
    note: String,
    effective_from: Option<Datetime>,
    effective_until: Option<Datetime>,
    confidence: Option<Confidence>,
    citation: Option<RawCitation>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJurisdiction {
    jurisdiction: Spanned<String>,
    name_en: String,
    name_zh: String,
    /// The sovereign state a territory belongs to (Hong Kong, Macau: CN): no diplomatic
    /// channel between parts of one state.
    #[serde(default)]
    part_of: Option<CountryCode>,
    #[serde(default)]
    criminality: Vec<RawCriminality>,
    #[serde(default)]
    instrument: Vec<RawInstrument>,
    #[serde(default)]
    retention: Vec<RawRetention>,
    #[serde(default)]
    approval: Vec<RawApproval>,
}

/// What a jurisdiction's law says about an offence, as written in the pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum LawVerdict {
    Criminal,
    NotCriminal,
    Conditional,
    Unknown,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThreshold {
    #[serde(default)]
    amount_min: Option<f64>,
    /// Amount from which the conduct is criminal everywhere in the state (regional floors vary).
    #[serde(default)]
    amount_certain: Option<f64>,
    #[serde(default)]
    currency: Option<String>,
    description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCriminality {
    id: Spanned<String>,
    offence: String,
    #[serde(default)]
    conduct: Vec<String>,
    verdict: LawVerdict,
    note: String,
    #[serde(default)]
    max_penalty_years: Option<f64>,
    #[serde(default)]
    threshold: Option<RawThreshold>,
    effective_from: Option<Datetime>,
    effective_until: Option<Datetime>,
    confidence: Option<Confidence>,
    citation: Option<RawCitation>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInstrument {
    id: Spanned<String>,
    category: DataCategory,
    instrument: String,
    standard: String,
    #[serde(default)]
    must_contain: Vec<String>,
    #[serde(default)]
    penalty_over_years: Option<f64>,
    effective_from: Option<Datetime>,
    effective_until: Option<Datetime>,
    confidence: Option<Confidence>,
    citation: Option<RawCitation>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    id: Spanned<String>,
    categories: Vec<DataCategory>,
    /// Text shown to users ("at least 6 months").
    #[serde(default)]
    period: Option<String>,
    #[serde(default)]
    days: Option<u32>,
    #[serde(default)]
    months: Option<u32>,
    /// minimum, maximum, fixed or none.
    #[serde(default)]
    kind: Option<PeriodKind>,
    note: String,
    effective_from: Option<Datetime>,
    effective_until: Option<Datetime>,
    confidence: Option<Confidence>,
    citation: Option<RawCitation>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApproval {
    id: Spanned<String>,
    requirement: String,
    #[serde(default)]
    categories: Vec<DataCategory>,
    effective_from: Option<Datetime>,
    effective_until: Option<Datetime>,
    confidence: Option<Confidence>,
    citation: Option<RawCitation>,
}

// ---------------------------------------------------------------------------------------------
// Compiled, validated shapes
// ---------------------------------------------------------------------------------------------

/// Validity period and source shared by every rule.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    pub id: Arc<str>,
    pub from: Timestamp,
    /// Exclusive: the first instant the rule no longer applies.
    pub until: Option<Timestamp>,
    pub citation: Arc<Citation>,
}

impl Meta {
    #[inline]
    pub fn in_force(&self, t: Timestamp) -> bool {
        self.from <= t && self.until.is_none_or(|u| t < u)
    }
}

/// One offence of the taxonomy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offence {
    pub code: Arc<str>,
    pub name_en: Arc<str>,
    pub name_zh: Arc<str>,
    /// The instrument the definition follows.
    pub source: Arc<str>,
    /// Conduct qualifiers that the packs distinguish for this offence.
    pub conduct: Vec<String>,
    /// Refusal grounds that this offence tends to attract (political offence, ...).
    pub refusal_flags: Vec<RefusalGround>,
}

impl Offence {
    /// Whether the offence is one of Budapest Convention Arts 2-11.
    pub fn is_budapest(&self) -> bool {
        self.code.starts_with("BC-")
    }
}

/// The offence taxonomy (`rules/offences.toml`).
#[derive(Debug, Clone, Default)]
pub struct Taxonomy {
    entries: Vec<Offence>,
    index: FastMap<Arc<str>, usize>,
}

impl Taxonomy {
    /// Loads and validates `offences.toml` from a rules directory.
    pub fn load(dir: &Path) -> Result<Self, LoadError> {
        let path = dir.join(OFFENCES_FILE);
        let src = std::fs::read_to_string(&path).map_err(|source| LoadError::Io {
            dir: dir.to_path_buf(),
            source,
        })?;
        let mut diags = Vec::new();
        let t = parse_taxonomy(&path, &src, &mut diags);
        if diags.is_empty() {
            Ok(t)
        } else {
            Err(LoadError::Invalid(diags))
        }
    }

    pub fn contains(&self, code: &str) -> bool {
        self.index.contains_key(code)
    }

    pub fn get(&self, code: &str) -> Option<&Offence> {
        self.index.get(code).map(|&i| &self.entries[i])
    }

    /// Entries in file order.
    pub fn iter(&self) -> impl Iterator<Item = &Offence> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Treaty {
    pub meta: Meta,
    pub name: Arc<str>,
    pub name_zh: Arc<str>,
    pub open_to: Option<Arc<str>>,
    pub in_force: bool,
    pub note: Arc<str>,
}

#[derive(Debug, Clone)]
pub(crate) struct Membership {
    pub meta: Meta,
    pub treaty: Arc<str>,
    /// Position of the treaty in `Inner::treaty_list`.
    pub treaty_idx: usize,
    pub status: MembershipStatus,
    pub reservations: Vec<String>,
    pub note: Arc<str>,
}

#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    pub ground: RefusalGround,
    pub clause: Arc<str>,
}

#[derive(Debug, Clone)]
pub(crate) struct Channel {
    pub meta: Meta,
    pub kind: ChannelKind,
    pub name: Arc<str>,
    pub name_zh: Arc<str>,
    pub provider_established_in: Vec<CountryCode>,
    pub reach: Option<Reach>,
    pub issuing_instrument: Vec<(CountryCode, Arc<str>)>,
    pub treaty: Option<Arc<str>>,
    /// Position of the treaty in `Inner::treaty_list`.
    pub treaty_idx: Option<usize>,
    pub requested_in: Vec<CountryCode>,
    pub request_kinds: Vec<RequestKind>,
    pub coercive: bool,
    pub dual_criminality: DcRequirement,
    pub default_days: f64,
    pub emergency_days: Option<f64>,
    pub preservation_days: Option<u32>,
    pub penalty_floor: Option<PenaltyFloor>,
    pub refusal_grounds: Vec<Refusal>,
    pub note: Arc<str>,
}

#[derive(Debug, Clone)]
pub(crate) struct Contents {
    pub meta: Meta,
    pub channels: Vec<Arc<str>>,
    pub channel_kinds: Vec<ChannelKind>,
    pub request_kinds: Vec<RequestKind>,
    pub requested_in: Vec<CountryCode>,
    pub generic: bool,
    pub particulars: Vec<Particular>,
    pub note: Arc<str>,
}

#[derive(Debug, Clone)]
pub(crate) struct PenaltyFloor {
    pub min_years: f64,
    pub categories: Vec<DataCategory>,
    pub exempt_offences: Vec<String>,
    pub warning: FloorWarning,
}

#[derive(Debug, Clone)]
pub(crate) struct Threshold {
    pub amount_min: Option<f64>,
    pub amount_certain: Option<f64>,
    pub currency: Option<Arc<str>>,
    pub description: Arc<str>,
}

#[derive(Debug, Clone)]
pub(crate) struct CriminalityRule {
    pub meta: Meta,
    pub conduct: Vec<String>,
    pub verdict: LawVerdict,
    pub note: Arc<str>,
    pub max_penalty_years: Option<f64>,
    pub threshold: Option<Threshold>,
}

#[derive(Debug, Clone)]
pub(crate) struct InstrumentRule {
    pub meta: Meta,
    pub instrument: Arc<str>,
    pub standard: Arc<str>,
    pub must_contain: Vec<Arc<str>>,
    pub penalty_over_years: Option<f64>,
}

#[derive(Debug, Clone)]
pub(crate) struct RetentionRule {
    pub meta: Meta,
    pub kind: PeriodKind,
    pub period: Option<Arc<str>>,
    pub days: Option<u32>,
    pub months: Option<u32>,
    pub note: Arc<str>,
}

#[derive(Debug, Clone)]
pub(crate) struct ApprovalRule {
    pub meta: Meta,
    pub requirement: Arc<str>,
    pub categories: Vec<DataCategory>,
}

#[derive(Debug, Clone)]
pub(crate) struct Jurisdiction {
    pub code: CountryCode,
    /// The sovereign state (itself, or the state a territory belongs to).
    pub sovereign: CountryCode,
    pub name_en: Arc<str>,
    pub name_zh: Arc<str>,
    pub criminality: FastMap<Arc<str>, Vec<CriminalityRule>>,
    pub instruments: FastMap<DataCategory, Vec<InstrumentRule>>,
    pub retention: FastMap<DataCategory, Vec<RetentionRule>>,
    pub approvals: Vec<ApprovalRule>,
    /// Every rule's (id, topic, confidence) for the coverage table.
    pub coverage: Vec<(String, String, Confidence)>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub hash: String,
    pub taxonomy: Taxonomy,
    pub jurisdictions: BTreeMap<CountryCode, Jurisdiction>,
    /// Treaties in id order; memberships and channels refer to them by position.
    pub treaty_list: Vec<Treaty>,
    pub memberships: FastMap<CountryCode, Vec<Membership>>,
    pub channels: Vec<Channel>,
    pub contents: Vec<Contents>,
}

/// Loaded, validated, immutable rule packs. Cloning is cheap (one `Arc`).
#[derive(Debug, Clone)]
pub struct RulePacks {
    pub(crate) inner: Arc<Inner>,
}

/// One row of the coverage table: a jurisdiction, a topic, and the confidence of its rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoverageRow {
    pub jurisdiction: CountryCode,
    pub topic: String,
    pub rule: String,
    pub confidence: Confidence,
}

impl RulePacks {
    /// Loads every pack in `dir`, validates them, and builds the indexes. All or nothing.
    pub fn load(dir: &Path) -> Result<Self, LoadError> {
        let (packs, diags) = load_all(dir)?;
        match packs {
            Some(p) if !diags.iter().any(Diagnostic::is_error) => Ok(p),
            _ => Err(LoadError::Invalid(
                diags.into_iter().filter(Diagnostic::is_error).collect(),
            )),
        }
    }

    /// SHA-256 (hex) over every pack file's name and bytes in file-name order: the rule-pack version.
    pub fn content_hash(&self) -> &str {
        &self.inner.hash
    }

    /// What a formal request on `channel` (a channel id; `None` when the assessment found
    /// none) must contain, for a request of `kind` to `requested`, under the law in force at
    /// `at`: every list that names the channel (or its kind), else the generic lists. Each
    /// comes with its source; the letter takes the union of their particulars.
    pub fn request_contents(
        &self,
        channel: Option<&str>,
        kind: RequestKind,
        requested: CountryCode,
        at: Timestamp,
    ) -> Vec<ContentsRule> {
        let channel_kind = channel.and_then(|id| {
            self.inner
                .channels
                .iter()
                .find(|c| &*c.meta.id == id && c.meta.in_force(at))
                .map(|c| c.kind)
        });
        let applies = |r: &&Contents| {
            r.meta.in_force(at)
                && (r.request_kinds.is_empty() || r.request_kinds.contains(&kind))
                && (r.requested_in.is_empty() || r.requested_in.contains(&requested))
        };
        let specific: Vec<&Contents> = self
            .inner
            .contents
            .iter()
            .filter(applies)
            .filter(|r| {
                channel.is_some_and(|id| r.channels.iter().any(|c| &**c == id))
                    || channel_kind.is_some_and(|k| r.channel_kinds.contains(&k))
            })
            .collect();
        let chosen = if specific.is_empty() {
            self.inner
                .contents
                .iter()
                .filter(applies)
                .filter(|r| r.generic)
                .collect()
        } else {
            specific
        };
        chosen
            .into_iter()
            .map(|r| ContentsRule {
                id: r.meta.id.clone(),
                particulars: r.particulars.clone(),
                note: r.note.clone(),
                citation: r.meta.citation.clone(),
            })
            .collect()
    }

    /// A channel's names (English, Chinese), if the packs have it.
    pub fn channel_name(&self, id: &str) -> Option<(&str, &str)> {
        self.inner
            .channels
            .iter()
            .find(|c| &*c.meta.id == id)
            .map(|c| (&*c.name, &*c.name_zh))
    }

    pub fn taxonomy(&self) -> &Taxonomy {
        &self.inner.taxonomy
    }

    /// Jurisdictions with a pack, in code order.
    pub fn jurisdictions(&self) -> impl Iterator<Item = CountryCode> + '_ {
        self.inner.jurisdictions.keys().copied()
    }

    /// Every channel's id, in pack order.
    pub fn channel_ids(&self) -> impl Iterator<Item = &str> + '_ {
        self.inner.channels.iter().map(|c| &*c.meta.id)
    }

    /// The name of a jurisdiction with a pack, in English and Chinese.
    pub fn jurisdiction_name(&self, code: CountryCode) -> Option<(&str, &str)> {
        self.inner.jurisdictions.get(&code).map(|j| (&*j.name_en, &*j.name_zh))
    }

    /// Every rule by jurisdiction and topic, for `docs/rules.md`. Treaty memberships are listed
    /// under the member's code (also for states without a jurisdiction pack).
    pub fn coverage(&self) -> Vec<CoverageRow> {
        let mut rows = Vec::new();
        for j in self.inner.jurisdictions.values() {
            for (rule, topic, confidence) in &j.coverage {
                rows.push(CoverageRow {
                    jurisdiction: j.code,
                    topic: topic.clone(),
                    rule: rule.clone(),
                    confidence: *confidence,
                });
            }
        }
        for (code, ms) in &self.inner.memberships {
            for m in ms {
                rows.push(CoverageRow {
                    jurisdiction: *code,
                    topic: format!("treaty {}", m.treaty),
                    rule: m.meta.id.to_string(),
                    confidence: m.meta.citation.confidence,
                });
            }
        }
        rows.sort_by(|a, b| (a.jurisdiction, &a.topic, &a.rule).cmp(&(b.jurisdiction, &b.topic, &b.rule)));
        rows
    }
}

/// Checks every pack in `dir` and returns every problem found (empty: the packs load).
pub fn check(dir: &Path) -> Vec<Diagnostic> {
    match load_all(dir) {
        Ok((_, diags)) => diags,
        Err(e) => vec![Diagnostic {
            file: dir.to_path_buf(),
            line: 0,
            rule: None,
            message: e.to_string(),
            severity: Severity::Error,
        }],
    }
}

// ---------------------------------------------------------------------------------------------
// Loading and validation
// ---------------------------------------------------------------------------------------------

struct FileCtx<'a> {
    path: &'a Path,
    src: &'a str,
}

impl FileCtx<'_> {
    fn line(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.src.len());
        self.src.as_bytes()[..end].iter().filter(|b| **b == b'\n').count() + 1
    }

    fn diag(&self, span: &Range<usize>, rule: Option<&str>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: self.path.to_path_buf(),
            line: self.line(span),
            rule: rule.map(str::to_string),
            message: message.into(),
            severity: Severity::Error,
        }
    }

    fn warn(&self, span: &Range<usize>, rule: Option<&str>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..self.diag(span, rule, message)
        }
    }
}

fn date_to_ts(d: &Datetime) -> Result<Timestamp, String> {
    let Some(date) = d.date else {
        return Err(format!("'{d}' is not a date"));
    };
    if d.time.is_some() {
        return Err(format!("'{d}' must be a plain date (YYYY-MM-DD)"));
    }
    let year = i16::try_from(date.year).map_err(|_| format!("year out of range in '{d}'"))?;
    let civil =
        jiff::civil::Date::new(year, date.month as i8, date.day as i8).map_err(|e| format!("bad date '{d}': {e}"))?;
    civil
        .to_zoned(TimeZone::UTC)
        .map(|z| z.timestamp())
        .map_err(|e| format!("bad date '{d}': {e}"))
}

/// The fields every rule carries, checked together.
struct RawMeta<'r> {
    id: &'r Spanned<String>,
    effective_from: &'r Option<Datetime>,
    effective_until: &'r Option<Datetime>,
    confidence: Option<Confidence>,
    citation: &'r Option<RawCitation>,
}

fn meta(ctx: &FileCtx<'_>, raw: RawMeta<'_>, diags: &mut Vec<Diagnostic>) -> Option<Meta> {
    let id = raw.id.get_ref().as_str();
    let span = raw.id.span();
    let mut ok = true;
    if id.trim().is_empty() {
        diags.push(ctx.diag(&span, None, "empty rule id"));
        ok = false;
    }
    let from = match raw.effective_from {
        None => {
            diags.push(ctx.diag(&span, Some(id), "missing effective_from"));
            ok = false;
            None
        }
        Some(d) => match date_to_ts(d) {
            Ok(t) => Some(t),
            Err(e) => {
                diags.push(ctx.diag(&span, Some(id), format!("effective_from: {e}")));
                ok = false;
                None
            }
        },
    };
    let until = match raw.effective_until {
        None => None,
        Some(d) => match date_to_ts(d) {
            Ok(t) => Some(t),
            Err(e) => {
                diags.push(ctx.diag(&span, Some(id), format!("effective_until: {e}")));
                ok = false;
                None
            }
        },
    };
    if let (Some(f), Some(u)) = (from, until)
        && u <= f
    {
        diags.push(ctx.diag(&span, Some(id), "effective_until must be after effective_from"));
        ok = false;
    }
    let confidence = match raw.confidence {
        Some(c) => c,
        None => {
            diags.push(ctx.diag(
                &span,
                Some(id),
                "missing confidence (confirmed / partial / unconfirmed)",
            ));
            ok = false;
            Confidence::Unconfirmed
        }
    };
    let citation = match raw.citation {
        None => {
            diags.push(ctx.diag(&span, Some(id), "missing citation (instrument, article, url)"));
            ok = false;
            None
        }
        Some(c) => {
            let mut missing = Vec::new();
            if c.instrument.trim().is_empty() {
                missing.push("instrument");
            }
            if c.article.trim().is_empty() {
                missing.push("article");
            }
            if c.url.trim().is_empty() {
                missing.push("url");
            }
            if !missing.is_empty() {
                diags.push(ctx.diag(&span, Some(id), format!("citation is missing {}", missing.join(", "))));
                ok = false;
            }
            let excerpt = c.excerpt.as_deref().map(str::trim).filter(|e| !e.is_empty());
            if confidence == Confidence::Confirmed && excerpt.is_none() {
                diags.push(ctx.warn(
                    &span,
                    Some(id),
                    "confirmed without a primary excerpt: quote the statute, treaty or register in citation.excerpt, or mark the rule partial",
                ));
            }
            if c.excerpt.is_some() && excerpt.is_none() {
                diags.push(ctx.diag(&span, Some(id), "citation.excerpt is empty"));
                ok = false;
            }
            Some(c)
        }
    };
    match (ok, from, citation) {
        (true, Some(from), Some(c)) => Some(Meta {
            id: Arc::from(id),
            from,
            until,
            citation: Arc::new(Citation {
                rule: Arc::from(id),
                instrument: Arc::from(c.instrument.as_str()),
                article: Arc::from(c.article.as_str()),
                url: Arc::from(c.url.as_str()),
                confidence,
                excerpt: c
                    .excerpt
                    .as_deref()
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(Arc::from),
            }),
        }),
        _ => None,
    }
}

/// A rule's id, span and validity, remembered for the overlap check.
type Dated = (String, Range<usize>, Timestamp, Option<Timestamp>);

/// Rules of one file that must not be in force at the same time: topic -> (id, span, from, until).
#[derive(Default)]
struct OverlapCheck {
    topics: BTreeMap<String, Vec<Dated>>,
    ids: HashMap<String, String>,
}

impl OverlapCheck {
    /// Registers a rule under `topic`. One TOML entry may cover several topics (a retention rule
    /// for several categories): `first` is false for the second and later ones.
    fn add(&mut self, ctx: &FileCtx<'_>, topic: String, m: &Meta, span: Range<usize>, diags: &mut Vec<Diagnostic>) {
        self.add_part(ctx, topic, m, span, diags, true);
    }

    fn add_part(
        &mut self,
        ctx: &FileCtx<'_>,
        topic: String,
        m: &Meta,
        span: Range<usize>,
        diags: &mut Vec<Diagnostic>,
        first: bool,
    ) {
        let section = topic.split_whitespace().next().unwrap_or_default();
        let key = format!("{section}:{}", m.id);
        match self.ids.get(&key) {
            Some(t) if first && *t != topic => {
                diags.push(ctx.diag(
                    &span,
                    Some(&m.id),
                    format!("rule id already used for another topic ({t})"),
                ));
            }
            Some(_) => {}
            None => {
                self.ids.insert(key, topic.clone());
            }
        }
        let entries = self.topics.entry(topic.clone()).or_default();
        for (other, _, f, u) in entries.iter() {
            let overlaps = m.from < u.unwrap_or(Timestamp::MAX) && *f < m.until.unwrap_or(Timestamp::MAX);
            if overlaps {
                diags.push(ctx.diag(
                    &span,
                    Some(&m.id),
                    format!("effective dates overlap with rule {other} for the same topic ({topic})"),
                ));
            }
        }
        entries.push((m.id.to_string(), span, m.from, m.until));
    }
}

fn parse<T: for<'de> Deserialize<'de>>(ctx: &FileCtx<'_>, diags: &mut Vec<Diagnostic>) -> Option<T> {
    match toml::from_str::<T>(ctx.src) {
        Ok(v) => Some(v),
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let rule = enclosing_rule_id(ctx.src, ctx.line(&span));
            diags.push(ctx.diag(&span, rule.as_deref(), e.message().trim_end().to_string()));
            None
        }
    }
}

/// The `id` (or `code`) of the `[[table]]` entry that contains `line`, found textually so that
/// syntax and type errors can still name their rule.
fn enclosing_rule_id(src: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = src.lines().collect();
    let end = line.min(lines.len());
    let start = lines[..end].iter().rposition(|l| l.trim_start().starts_with("[["))?;
    let stop = lines[start + 1..]
        .iter()
        .position(|l| l.trim_start().starts_with('['))
        .map_or(lines.len(), |p| start + 1 + p);
    lines[start..stop].iter().find_map(|l| {
        let (key, value) = l.split_once('=')?;
        let key = key.trim();
        if key != "id" && key != "code" {
            return None;
        }
        let v = value.trim().strip_prefix('"')?;
        Some(v[..v.find('"')?].to_string())
    })
}

fn parse_taxonomy(path: &Path, src: &str, diags: &mut Vec<Diagnostic>) -> Taxonomy {
    let ctx = FileCtx { path, src };
    let mut t = Taxonomy::default();
    let Some(raw) = parse::<RawOffences>(&ctx, diags) else {
        return t;
    };
    for o in raw.offence {
        let code = o.code.get_ref().trim().to_string();
        let span = o.code.span();
        if code.is_empty()
            || !code
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
        {
            diags.push(ctx.diag(
                &span,
                Some(&code),
                "offence code must be upper-case letters, digits and '-'",
            ));
            continue;
        }
        if t.index.contains_key(code.as_str()) {
            diags.push(ctx.diag(&span, Some(&code), "duplicate offence code"));
            continue;
        }
        if o.name_en.trim().is_empty() || o.name_zh.trim().is_empty() || o.source.trim().is_empty() {
            diags.push(ctx.diag(&span, Some(&code), "name_en, name_zh and source must not be empty"));
            continue;
        }
        let code: Arc<str> = Arc::from(code);
        t.index.insert(code.clone(), t.entries.len());
        t.entries.push(Offence {
            code,
            name_en: Arc::from(o.name_en),
            name_zh: Arc::from(o.name_zh),
            source: Arc::from(o.source),
            conduct: o.conduct,
            refusal_flags: o.refusal_flags,
        });
    }
    t
}

struct TreatyData {
    treaty_list: Vec<Treaty>,
    memberships: FastMap<CountryCode, Vec<Membership>>,
    channels: Vec<Channel>,
    contents: Vec<Contents>,
}

fn parse_treaties(path: &Path, src: &str, diags: &mut Vec<Diagnostic>) -> Option<TreatyData> {
    let ctx = FileCtx { path, src };
    let raw = parse::<RawTreaties>(&ctx, diags)?;
    let before = diags.len();
    let mut overlap = OverlapCheck::default();
    let mut treaties = BTreeMap::new();
    for t in &raw.treaty {
        let raw_meta = RawMeta {
            id: &t.id,
            effective_from: &t.effective_from,
            effective_until: &t.effective_until,
            confidence: t.confidence,
            citation: &t.citation,
        };
        let Some(m) = meta(&ctx, raw_meta, diags) else { continue };
        overlap.add(&ctx, format!("treaty {}", m.id), &m, t.id.span(), diags);
        treaties.insert(
            m.id.clone(),
            Treaty {
                name: Arc::from(t.name.as_str()),
                name_zh: Arc::from(t.name_zh.as_str()),
                open_to: t.open_to.as_deref().map(Arc::from),
                in_force: t.in_force.unwrap_or(true),
                note: Arc::from(t.note.as_str()),
                meta: m,
            },
        );
    }
    for t in &raw.treaty {
        if let Some(o) = &t.open_to
            && !treaties.contains_key(o.as_str())
        {
            diags.push(ctx.diag(
                &t.id.span(),
                Some(t.id.get_ref()),
                format!("open_to: unknown treaty '{o}'"),
            ));
        }
    }
    let mut memberships: FastMap<CountryCode, Vec<Membership>> = FastMap::default();
    for r in &raw.membership {
        let raw_meta = RawMeta {
            id: &r.id,
            effective_from: &r.effective_from,
            effective_until: &r.effective_until,
            confidence: r.confidence,
            citation: &r.citation,
        };
        let Some(m) = meta(&ctx, raw_meta, diags) else { continue };
        if !treaties.contains_key(r.treaty.as_str()) {
            diags.push(ctx.diag(&r.id.span(), Some(&m.id), format!("unknown treaty '{}'", r.treaty)));
            continue;
        }
        overlap.add(
            &ctx,
            format!("membership {} {}", r.treaty, r.party),
            &m,
            r.id.span(),
            diags,
        );
        memberships.entry(r.party).or_default().push(Membership {
            treaty: Arc::from(r.treaty.as_str()),
            treaty_idx: 0,
            status: r.status,
            reservations: r.reservations.clone(),
            note: Arc::from(r.note.as_str()),
            meta: m,
        });
    }
    let mut channels = Vec::new();
    for c in &raw.channel {
        let raw_meta = RawMeta {
            id: &c.id,
            effective_from: &c.effective_from,
            effective_until: &c.effective_until,
            confidence: c.confidence,
            citation: &c.citation,
        };
        let Some(m) = meta(&ctx, raw_meta, diags) else { continue };
        if let Some(t) = &c.treaty
            && !treaties.contains_key(t.as_str())
        {
            diags.push(ctx.diag(&c.id.span(), Some(&m.id), format!("unknown treaty '{t}'")));
            continue;
        }
        if !(c.default_days.is_finite() && c.default_days > 0.0) {
            diags.push(ctx.diag(&c.id.span(), Some(&m.id), "default_days must be a positive number"));
            continue;
        }
        if c.name_zh.trim().is_empty() {
            diags.push(ctx.diag(
                &c.id.span(),
                Some(&m.id),
                "name_zh (the channel's Chinese name) is required",
            ));
            continue;
        }
        let mut issuing = Vec::new();
        for (k, v) in &c.issuing_instrument {
            match CountryCode::parse(k) {
                Ok(cc) if cc.as_str() == k.as_str() && !v.trim().is_empty() => {
                    issuing.push((cc, Arc::from(v.as_str())))
                }
                _ => diags.push(ctx.diag(
                    &c.id.span(),
                    Some(&m.id),
                    format!("issuing_instrument: '{k}' must be an upper-case ISO code with a non-empty instrument"),
                )),
            }
        }
        overlap.add(&ctx, format!("channel {}", m.id), &m, c.id.span(), diags);
        channels.push(Channel {
            kind: c.kind,
            name: Arc::from(c.name.as_str()),
            name_zh: Arc::from(c.name_zh.as_str()),
            provider_established_in: c.provider_established_in.clone(),
            reach: c.reach,
            issuing_instrument: issuing,
            treaty: c.treaty.as_deref().map(Arc::from),
            treaty_idx: None,
            requested_in: c.requested_in.clone(),
            request_kinds: c.request_kinds.clone(),
            coercive: c.coercive,
            dual_criminality: c.dual_criminality,
            default_days: c.default_days,
            emergency_days: c.emergency_days,
            preservation_days: c.preservation_days,
            penalty_floor: c.penalty_floor.as_ref().map(|f| PenaltyFloor {
                min_years: f.min_years,
                categories: f.categories.clone(),
                exempt_offences: f.exempt_offences.clone(),
                warning: f.warning,
            }),
            refusal_grounds: c
                .refusal_grounds
                .iter()
                .map(|r| Refusal {
                    ground: r.ground,
                    clause: Arc::from(r.clause.as_str()),
                })
                .collect(),
            note: Arc::from(c.note.as_str()),
            meta: m,
        });
    }
    let pos: HashMap<Arc<str>, usize> = treaties.keys().enumerate().map(|(i, k)| (k.clone(), i)).collect();
    for m in memberships.values_mut().flatten() {
        m.treaty_idx = pos.get(&m.treaty).copied().unwrap_or(usize::MAX);
    }
    for c in &mut channels {
        c.treaty_idx = c.treaty.as_ref().and_then(|t| pos.get(t).copied());
    }
    let mut contents = Vec::new();
    for r in &raw.request_contents {
        let raw_meta = RawMeta {
            id: &r.id,
            effective_from: &r.effective_from,
            effective_until: &r.effective_until,
            confidence: r.confidence,
            citation: &r.citation,
        };
        let Some(m) = meta(&ctx, raw_meta, diags) else { continue };
        let span = r.id.span();
        if r.particulars.is_empty() {
            diags.push(ctx.diag(&span, Some(&m.id), "particulars: list at least one particular"));
            continue;
        }
        if r.generic == (!r.channels.is_empty() || !r.channel_kinds.is_empty()) {
            diags.push(ctx.diag(
                &span,
                Some(&m.id),
                "name channels or channel_kinds, or set generic = true (one of the two)",
            ));
            continue;
        }
        if let Some(unknown) = r
            .channels
            .iter()
            .find(|c| !channels.iter().any(|k| &*k.meta.id == c.as_str()))
        {
            diags.push(ctx.diag(&span, Some(&m.id), format!("channels: unknown channel '{unknown}'")));
            continue;
        }
        contents.push(Contents {
            channels: r.channels.iter().map(|c| Arc::from(c.as_str())).collect(),
            channel_kinds: r.channel_kinds.clone(),
            request_kinds: r.request_kinds.clone(),
            requested_in: r.requested_in.clone(),
            generic: r.generic,
            particulars: r.particulars.clone(),
            note: Arc::from(r.note.as_str()),
            meta: m,
        });
    }
    let treaty_list = treaties.into_values().collect();
    (!diags[before..].iter().any(Diagnostic::is_error)).then_some(TreatyData {
        treaty_list,
        memberships,
        channels,
        contents,
    })
}

fn parse_jurisdiction(
    path: &Path,
    src: &str,
    taxonomy: &Taxonomy,
    diags: &mut Vec<Diagnostic>,
) -> Option<Jurisdiction> {
    let ctx = FileCtx { path, src };
    let raw = parse::<RawJurisdiction>(&ctx, diags)?;
    let before = diags.len();
    let jspan = raw.jurisdiction.span();
    let code = match CountryCode::parse(raw.jurisdiction.get_ref()) {
        Ok(c) if c.as_str() == raw.jurisdiction.get_ref().as_str() => c,
        _ => {
            diags.push(ctx.diag(
                &jspan,
                None,
                format!(
                    "unknown jurisdiction code '{}' (expected an upper-case ISO 3166-1 alpha-2 code)",
                    raw.jurisdiction.get_ref()
                ),
            ));
            return None;
        }
    };
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    if stem != code.as_str().to_ascii_lowercase() {
        diags.push(ctx.diag(
            &jspan,
            None,
            format!(
                "jurisdiction {code} must live in {}.toml",
                code.as_str().to_ascii_lowercase()
            ),
        ));
    }
    let prefix = format!("{}.", code.as_str().to_ascii_lowercase());
    let mut j = Jurisdiction {
        code,
        sovereign: raw.part_of.unwrap_or(code),
        name_en: Arc::from(raw.name_en.as_str()),
        name_zh: Arc::from(raw.name_zh.as_str()),
        criminality: FastMap::default(),
        instruments: FastMap::default(),
        retention: FastMap::default(),
        approvals: Vec::new(),
        coverage: Vec::new(),
    };
    let mut overlap = OverlapCheck::default();
    let check_prefix = |id: &Spanned<String>, diags: &mut Vec<Diagnostic>| {
        if !id.get_ref().starts_with(&prefix) {
            diags.push(ctx.diag(
                &id.span(),
                Some(id.get_ref()),
                format!("rule ids in this pack must start with '{prefix}'"),
            ));
        }
    };
    for r in &raw.criminality {
        check_prefix(&r.id, diags);
        let raw_meta = RawMeta {
            id: &r.id,
            effective_from: &r.effective_from,
            effective_until: &r.effective_until,
            confidence: r.confidence,
            citation: &r.citation,
        };
        let Some(m) = meta(&ctx, raw_meta, diags) else { continue };
        let Some(off) = taxonomy.get(&r.offence) else {
            diags.push(ctx.diag(
                &r.id.span(),
                Some(&m.id),
                format!("unknown offence code '{}' (not in {OFFENCES_FILE})", r.offence),
            ));
            continue;
        };
        if let Some(t) = &r.threshold
            && t.amount_min.is_some() != t.currency.is_some()
        {
            diags.push(ctx.diag(
                &r.id.span(),
                Some(&m.id),
                "threshold: amount_min and currency go together",
            ));
            continue;
        }
        let mut conduct = r.conduct.clone();
        conduct.sort();
        let topic = if conduct.is_empty() {
            format!("{}", off.code)
        } else {
            format!("{} [{}]", off.code, conduct.join(","))
        };
        overlap.add(&ctx, format!("offence {topic}"), &m, r.id.span(), diags);
        j.coverage
            .push((m.id.to_string(), format!("offence {topic}"), m.citation.confidence));
        j.criminality
            .entry(off.code.clone())
            .or_default()
            .push(CriminalityRule {
                conduct,
                verdict: r.verdict,
                note: Arc::from(r.note.as_str()),
                max_penalty_years: r.max_penalty_years,
                threshold: r.threshold.as_ref().map(|t| Threshold {
                    amount_min: t.amount_min,
                    amount_certain: t.amount_certain,
                    currency: t.currency.as_deref().map(Arc::from),
                    description: Arc::from(t.description.as_str()),
                }),
                meta: m,
            });
    }
    for r in &raw.instrument {
        check_prefix(&r.id, diags);
        let raw_meta = RawMeta {
            id: &r.id,
            effective_from: &r.effective_from,
            effective_until: &r.effective_until,
            confidence: r.confidence,
            citation: &r.citation,
        };
        let Some(m) = meta(&ctx, raw_meta, diags) else { continue };
        let topic = format!("evidence {}", r.category);
        overlap.add(&ctx, topic.clone(), &m, r.id.span(), diags);
        j.coverage.push((m.id.to_string(), topic, m.citation.confidence));
        j.instruments.entry(r.category).or_default().push(InstrumentRule {
            instrument: Arc::from(r.instrument.as_str()),
            standard: Arc::from(r.standard.as_str()),
            must_contain: r.must_contain.iter().map(|s| Arc::from(s.as_str())).collect(),
            penalty_over_years: r.penalty_over_years,
            meta: m,
        });
    }
    for r in &raw.retention {
        check_prefix(&r.id, diags);
        let raw_meta = RawMeta {
            id: &r.id,
            effective_from: &r.effective_from,
            effective_until: &r.effective_until,
            confidence: r.confidence,
            citation: &r.citation,
        };
        let Some(m) = meta(&ctx, raw_meta, diags) else { continue };
        if r.days.is_some() && r.months.is_some() {
            diags.push(ctx.diag(&r.id.span(), Some(&m.id), "give days or months, not both"));
            continue;
        }
        if r.categories.is_empty() {
            diags.push(ctx.diag(&r.id.span(), Some(&m.id), "categories must not be empty"));
            continue;
        }
        let Some(kind) = r.kind else {
            diags.push(ctx.diag(
                &r.id.span(),
                Some(&m.id),
                "missing kind: is the period a minimum, a maximum, fixed, or is there none?",
            ));
            continue;
        };
        let has_period = r.days.is_some() || r.months.is_some();
        if kind == PeriodKind::None && has_period {
            diags.push(ctx.diag(&r.id.span(), Some(&m.id), "kind = none takes no days or months"));
            continue;
        }
        if kind != PeriodKind::None && !has_period {
            diags.push(ctx.diag(
                &r.id.span(),
                Some(&m.id),
                format!("kind = {} needs days or months", kind.as_str()),
            ));
            continue;
        }
        for (i, cat) in r.categories.iter().enumerate() {
            let topic = format!("retention {cat}");
            overlap.add_part(&ctx, topic.clone(), &m, r.id.span(), diags, i == 0);
            j.coverage.push((m.id.to_string(), topic, m.citation.confidence));
            j.retention.entry(*cat).or_default().push(RetentionRule {
                meta: m.clone(),
                kind,
                period: r.period.as_deref().map(Arc::from),
                days: r.days,
                months: r.months,
                note: Arc::from(r.note.as_str()),
            });
        }
    }
    for r in &raw.approval {
        check_prefix(&r.id, diags);
        let raw_meta = RawMeta {
            id: &r.id,
            effective_from: &r.effective_from,
            effective_until: &r.effective_until,
            confidence: r.confidence,
            citation: &r.citation,
        };
        let Some(m) = meta(&ctx, raw_meta, diags) else { continue };
        let topic = format!("approval {}", m.id);
        overlap.add(&ctx, topic.clone(), &m, r.id.span(), diags);
        j.coverage.push((
            m.id.to_string(),
            "approval (export of evidence)".to_string(),
            m.citation.confidence,
        ));
        j.approvals.push(ApprovalRule {
            requirement: Arc::from(r.requirement.as_str()),
            categories: r.categories.clone(),
            meta: m,
        });
    }
    (!diags[before..].iter().any(Diagnostic::is_error)).then_some(j)
}

/// Reads every `*.toml` in `dir` and validates it. Returns the packs only if nothing is wrong.
fn load_all(dir: &Path) -> Result<(Option<RulePacks>, Vec<Diagnostic>), LoadError> {
    let io = |source| LoadError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) == Some("toml")
            && let Some(name) = path.file_name().and_then(|n| n.to_str())
        {
            files.push((name.to_string(), dir.join(name)));
        }
    }
    files.sort();
    let mut sources: Vec<(String, PathBuf, String)> = Vec::with_capacity(files.len());
    let mut hasher = Sha256::new();
    for (name, path) in files {
        let src = std::fs::read_to_string(&path).map_err(io)?;
        hasher.update((name.len() as u64).to_be_bytes());
        hasher.update(name.as_bytes());
        hasher.update((src.len() as u64).to_be_bytes());
        hasher.update(src.as_bytes());
        sources.push((name, path, src));
    }
    let hash = hex::encode(hasher.finalize());

    let mut diags = Vec::new();
    let find = |want: &str| sources.iter().find(|(n, _, _)| n == want);
    let Some((_, opath, osrc)) = find(OFFENCES_FILE) else {
        diags.push(Diagnostic {
            file: dir.join(OFFENCES_FILE),
            line: 0,
            rule: None,
            message: "missing offence taxonomy".into(),
            severity: Severity::Error,
        });
        return Ok((None, diags));
    };
    let taxonomy = parse_taxonomy(opath, osrc, &mut diags);
    let treaties = match find(TREATIES_FILE) {
        Some((_, p, s)) => parse_treaties(p, s, &mut diags),
        None => {
            diags.push(Diagnostic {
                file: dir.join(TREATIES_FILE),
                line: 0,
                rule: None,
                message: "missing treaties file".into(),
                severity: Severity::Error,
            });
            None
        }
    };
    let mut jurisdictions = BTreeMap::new();
    for (name, path, src) in &sources {
        if name == OFFENCES_FILE || name == TREATIES_FILE {
            continue;
        }
        if let Some(j) = parse_jurisdiction(path, src, &taxonomy, &mut diags) {
            if jurisdictions.contains_key(&j.code) {
                diags.push(Diagnostic {
                    file: path.clone(),
                    line: 1,
                    rule: None,
                    message: format!("second pack for jurisdiction {}", j.code),
                    severity: Severity::Error,
                });
            }
            jurisdictions.insert(j.code, j);
        }
    }
    match treaties {
        Some(t) if !diags.iter().any(Diagnostic::is_error) => {
            let inner = Inner {
                hash,
                taxonomy,
                jurisdictions,
                treaty_list: t.treaty_list,
                memberships: t.memberships,
                channels: t.channels,
                contents: t.contents,
            };
            Ok((Some(RulePacks { inner: Arc::new(inner) }), diags))
        }
        _ => Ok((None, diags)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_plain_utc_days() {
        let d: Datetime = "2017-06-01".parse().unwrap();
        assert_eq!(date_to_ts(&d).unwrap().to_string(), "2017-06-01T00:00:00Z");
        let dt: Datetime = "2017-06-01T10:00:00Z".parse().unwrap();
        assert!(date_to_ts(&dt).unwrap_err().contains("plain date"));
    }

    #[test]
    fn diagnostic_display() {
        let d = Diagnostic {
            file: PathBuf::from("rules/cn.toml"),
            line: 42,
            rule: Some("cn.dc.bc-09".into()),
            message: "boom".into(),
            severity: Severity::Error,
        };
        assert_eq!(d.to_string(), "rules/cn.toml:42: rule cn.dc.bc-09: boom");
        let d = Diagnostic { rule: None, ..d };
        assert_eq!(d.to_string(), "rules/cn.toml:42: boom");
    }

    #[test]
    fn lines_are_one_based() {
        let ctx = FileCtx {
            path: Path::new("x.toml"),
            src: "a\nb\nc",
        };
        assert_eq!(ctx.line(&(0..1)), 1);
        assert_eq!(ctx.line(&(2..3)), 2);
        assert_eq!(ctx.line(&(99..100)), 3);
    }

    #[test]
    fn validity_is_half_open() {
        let m = Meta {
            id: Arc::from("x"),
            from: "2017-06-01T00:00:00Z".parse().unwrap(),
            until: Some("2018-01-01T00:00:00Z".parse().unwrap()),
            citation: Arc::new(Citation {
                rule: Arc::from("x"),
                instrument: Arc::from("i"),
                article: Arc::from("a"),
                url: Arc::from("u"),
                confidence: Confidence::Partial,
                excerpt: None,
            }),
        };
        assert!(m.in_force("2017-06-01T00:00:00Z".parse().unwrap()));
        assert!(!m.in_force("2017-05-31T23:59:59Z".parse().unwrap()));
        assert!(!m.in_force("2018-01-01T00:00:00Z".parse().unwrap()));
    }

    #[test]
    fn packs_are_shareable() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<RulePacks>();
        send_sync::<Taxonomy>();
    }
}
