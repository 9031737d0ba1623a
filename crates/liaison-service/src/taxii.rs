//! TAXII 2.1 collections (docs/intel-formats.md, "TAXII 2.1"): which collections the node
//! offers, who may read or write each, and what a page of objects holds.
//!
//! **The model.** A collection is what one of this node's agencies (the *publisher*, one
//! with users on this node) shares
//! with one audience at one marking scope: a partner agency (`audience = "CN-MPS"`, up to
//! `TLP:AMBER+STRICT`) or the community (`audience = "community"`, up to `TLP:GREEN`).
//! Collections are declared in `[[taxii.collections]]`; every such agency also has a
//! community collection at `TLP:GREEN` (unless `community_collection = false`) and a writable
//! **inbox**. A collection holds the publisher's indicators (those its users ingested, never
//! false positives) at the levels of its scope and of its feeds (all unless listed), each as
//! an `indicator` and its `sighting`, after the objects every collection starts with: the
//! publisher's `identity` and the TLP 2.0 marking definitions of the levels it carries.
//!
//! **Who reads.** The audience agency's users (all roles), the publisher's operators (to see
//! what they share), and for a community collection the users of every agency of the
//! community (docs/markings.md). A reader sees an object only when its marking admits the
//! reader's relation to it (`liaison_core::marking::admits`): the audience agency is the
//! recipient organisation, the community is the community. `TLP:RED` is never in a
//! collection: it names people, and a collection is read by machines.
//!
//! **Order and paging.** Objects are in `date_added` order: the starting objects at
//! `stix::MAPPING_EPOCH`, then each indicator row at the time it was last written
//! (`intel_indicator.changed_at`, schema migration 21), its two objects together. `next` is a
//! keyset cursor (the last object's `(date_added, row, object)` and a digest of the filters),
//! so a page costs one indexed query whatever its depth, and a row written while a client
//! pages moves to the end, where the client meets it again as a new version.
//!
//! **Writing.** An envelope added to an agency's inbox (by its operators) is imported as STIX
//! through the ingest pipeline (feed `[taxii] inbox_feed`, unmarked objects `TLP:RED`); its
//! status resource is the ingest job, kept by the process that received it.

use crate::error::{Result, ServiceError};
use crate::intel::may_operate;
use crate::intel_ingest::{IngestJob, JobHandle, JobState};
use crate::node::Node;
use liaison_core::marking::{Circle, Parties, Relation, admits, relation};
use liaison_core::record::Principal;
use liaison_core::{AgencyId, Tlp};
use liaison_intel::aggregate::LIAISON_NAMESPACE;
use liaison_intel::stix::{MAPPING_EPOCH, Producer, indicator_to_stix, marking_definition, sighting_to_stix};
use liaison_store::{IndicatorPage, PagedIndicator};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// The media type of STIX 2.1 content.
pub const STIX_MEDIA_TYPE: &str = "application/stix+json;version=2.1";

/// The `date_added` of the objects every collection holds from the start (ms).
const HEAD_MS: i64 = MAPPING_EPOCH * 1000;

/// Rows read per query while a page fills (more when the page asks for more).
const ROWS_PER_QUERY: u32 = 256;

/// Rows a page may pass over (filtered out by `match[...]`) before it answers with what it
/// has and `more`: a filter that matches nothing never makes one request walk the table.
const SCAN_BUDGET: u64 = 50_000;

/// Status resources kept per process (the newest).
const STATUS_KEPT: usize = 256;

/// `[taxii]` in `liaison.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaxiiConfig {
    /// Serve `/taxii2/` at all.
    pub enabled: bool,
    /// Objects per page when the client names no `limit`.
    pub default_page: u32,
    /// The most objects per page (a larger `limit` is lowered to it).
    pub max_page: u32,
    /// The largest envelope a client may add (the API root's `max_content_length`).
    pub max_content_bytes: u64,
    /// The feed name objects added to an inbox are ingested under.
    pub inbox_feed: String,
    /// Whether every agency with users on the node has a community collection at `TLP:GREEN`.
    pub community_collection: bool,
    /// Collections for partners (and further community collections).
    pub collections: Vec<CollectionConfig>,
}

impl Default for TaxiiConfig {
    fn default() -> Self {
        TaxiiConfig {
            enabled: true,
            default_page: 100,
            max_page: 1000,
            max_content_bytes: 10 * 1024 * 1024,
            inbox_feed: "taxii-inbox".into(),
            community_collection: true,
            collections: Vec::new(),
        }
    }
}

/// One `[[taxii.collections]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionConfig {
    /// The sharing agency's code; may be left out when the node serves one agency.
    #[serde(default)]
    pub publisher: Option<String>,
    /// A partner agency's code, or `community`.
    pub audience: String,
    /// The widest level the collection carries (default `TLP:GREEN`).
    #[serde(default = "green")]
    pub tlp_max: Tlp,
    /// Only these feeds (default: every feed).
    #[serde(default)]
    pub feeds: Vec<String>,
    #[serde(default)]
    pub title: Option<String>,
}

fn green() -> Tlp {
    Tlp::Green
}

impl TaxiiConfig {
    /// Checks what can be checked without the directory: page sizes, levels.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.default_page == 0 || self.max_page == 0 || self.default_page > self.max_page {
            return Err(format!(
                "[taxii] default_page ({}) and max_page ({}) must be at least 1, default_page at most max_page",
                self.default_page, self.max_page
            ));
        }
        if self.max_content_bytes < 1024 {
            return Err(format!(
                "[taxii] max_content_bytes = {} is too small for any envelope (at least 1024)",
                self.max_content_bytes
            ));
        }
        for (i, c) in self.collections.iter().enumerate() {
            let at = format!("[[taxii.collections]] #{} (audience '{}')", i + 1, c.audience);
            if c.audience.trim().is_empty() {
                return Err(format!(
                    "{at}: audience is empty; name a partner agency's code or 'community'"
                ));
            }
            if c.tlp_max == Tlp::Red {
                return Err(format!(
                    "{at}: tlp_max = TLP:RED is not allowed: RED names people, and a collection is read by machines"
                ));
            }
            if c.is_community() && c.tlp_max > Tlp::Green {
                return Err(format!(
                    "{at}: a community collection carries at most TLP:GREEN (found {})",
                    c.tlp_max
                ));
            }
        }
        Ok(())
    }
}

impl CollectionConfig {
    fn is_community(&self) -> bool {
        self.audience.eq_ignore_ascii_case("community")
    }
}

/// Who a collection is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    Community,
    Agency(String),
}

/// A collection as the node offers it.
#[derive(Debug, Clone, Serialize)]
pub struct Collection {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    pub publisher: String,
    #[serde(skip)]
    pub publisher_id: AgencyId,
    #[serde(skip)]
    publisher_name: String,
    /// `None` for an inbox.
    pub audience: Option<Audience>,
    pub tlp_max: Option<Tlp>,
    pub feeds: Vec<String>,
    pub inbox: bool,
    /// Whether the collection also holds the indicators stored before the node recorded who
    /// ingested them (migration 20): when the node serves this agency alone.
    #[serde(skip)]
    unattributed: bool,
}

/// A collection and what the reader may do with it (the TAXII collection resource).
#[derive(Debug, Clone, Serialize)]
pub struct CollectionView {
    #[serde(flatten)]
    pub collection: Collection,
    pub can_read: bool,
    pub can_write: bool,
    /// The levels the reader sees in it.
    pub levels: Vec<Tlp>,
}

impl CollectionView {
    /// The TAXII 2.1 collection resource.
    pub fn resource(&self) -> Value {
        serde_json::json!({
            "id": self.collection.id.to_string(),
            "title": self.collection.title,
            "description": self.collection.description,
            "can_read": self.can_read,
            "can_write": self.can_write,
            "media_types": [STIX_MEDIA_TYPE],
        })
    }
}

/// The `match[...]`, `added_after`, `limit` and `next` parameters of a Get Objects or Get
/// Manifest request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectQuery {
    pub limit: Option<u32>,
    pub next: Option<String>,
    /// UTC milliseconds.
    pub added_after: Option<i64>,
    pub ids: Vec<String>,
    pub types: Vec<String>,
    /// `first`, `last`, `all` or timestamps (as given).
    pub versions: Vec<String>,
    pub spec_versions: Vec<String>,
}

impl ObjectQuery {
    /// Reads a query string: `limit`, `next`, `added_after`, `match[id|type|version|
    /// spec_version]` (comma-separated lists, or repeated); `paging`: whether `limit` and
    /// `next` are allowed (Get Objects, Get Manifest). Anything else is refused by name, and
    /// every value is checked here, before a page is read (`next` against the filters).
    pub fn parse(raw: &str, paging: bool) -> Result<ObjectQuery> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw)
            .map_err(|e| ServiceError::invalid("query", format!("the query string cannot be read: {e}")))?;
        let mut q = ObjectQuery::default();
        for (k, v) in pairs {
            if v.contains('\0') || k.contains('\0') {
                return Err(ServiceError::invalid("query", "the query string holds a NUL character"));
            }
            let list = || {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            };
            match k.as_str() {
                "limit" if paging => {
                    let n: u32 = v
                        .trim()
                        .parse()
                        .map_err(|_| ServiceError::invalid("limit", format!("'{v}' is not a whole number")))?;
                    // 0 (which taxii2-client sends after a page that came back empty with
                    // `more`) means the server's own page size.
                    q.limit = (n > 0).then_some(n);
                }
                "next" if paging => q.next = Some(v),
                "added_after" => q.added_after = Some(parse_taxii_time("added_after", &v)?),
                "match[id]" => q.ids.extend(list()),
                "match[type]" => q.types.extend(list()),
                "match[version]" => q.versions.extend(list()),
                "match[spec_version]" => q.spec_versions.extend(list()),
                other => {
                    return Err(ServiceError::invalid(
                        "query",
                        format!(
                            "unknown parameter '{}'; accepted: {}added_after, match[id], match[type], match[version], match[spec_version]",
                            other.chars().take(60).collect::<String>(),
                            if paging { "limit, next, " } else { "" }
                        ),
                    ));
                }
            }
        }
        Filter::new(&q)?;
        Ok(q)
    }

    /// Checks `next` (if any) against the collection and the filters it was given with.
    pub fn check_next(&self, collection: Uuid) -> Result<()> {
        match &self.next {
            Some(n) => decode_next(n, &digest(collection, self)).map(|_| ()),
            None => Ok(()),
        }
    }
}

/// One object of a page and when it was added.
#[derive(Debug, Clone)]
pub struct Entry {
    pub object: Value,
    /// UTC milliseconds.
    pub date_added: i64,
}

impl Entry {
    pub fn id(&self) -> &str {
        self.object.get("id").and_then(Value::as_str).unwrap_or("")
    }
    /// The object's version: its `modified`, else `created`.
    pub fn version(&self) -> &str {
        self.object
            .get("modified")
            .or_else(|| self.object.get("created"))
            .and_then(Value::as_str)
            .unwrap_or("")
    }
    /// The manifest record.
    pub fn manifest(&self) -> Value {
        serde_json::json!({
            "id": self.id(),
            "date_added": taxii_time(self.date_added),
            "version": self.version(),
            "media_type": STIX_MEDIA_TYPE,
        })
    }
}

/// A page of objects.
#[derive(Debug, Clone)]
pub struct Page {
    pub entries: Vec<Entry>,
    pub more: bool,
    pub next: Option<String>,
}

/// A TAXII timestamp (UTC, milliseconds).
pub fn taxii_time(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        Err(_) => "1970-01-01T00:00:00.000Z".into(),
    }
}

/// Parses a TAXII/STIX timestamp to UTC milliseconds.
pub fn parse_taxii_time(field: &str, s: &str) -> Result<i64> {
    let t: jiff::Timestamp = s.trim().parse().map_err(|e| {
        ServiceError::invalid(
            field,
            format!("'{s}' is not a timestamp like 2026-01-31T12:00:00.000Z: {e}"),
        )
    })?;
    Ok(t.as_millisecond())
}

/// Where a page ends: the last object's key, and the filters it was read with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    t: i64,
    row: i64,
    sub: u8,
}

/// Keys of the starting objects: `(HEAD_MS, -16 + i, 0)`, below every row id.
const HEAD_ROW_BASE: i64 = -16;

fn digest(collection: Uuid, q: &ObjectQuery) -> String {
    let mut h = Sha256::new();
    h.update(collection.as_bytes());
    let mut part = |name: &str, vals: &[String]| {
        let mut v: Vec<&String> = vals.iter().collect();
        v.sort();
        h.update(name.as_bytes());
        for x in v {
            h.update([0]);
            h.update(x.as_bytes());
        }
        h.update([1]);
    };
    part("id", &q.ids);
    part("type", &q.types);
    part("version", &q.versions);
    part("spec_version", &q.spec_versions);
    h.update(q.added_after.unwrap_or(i64::MIN).to_be_bytes());
    let d = h.finalize();
    d[..6].iter().map(|b| format!("{b:02x}")).collect()
}

fn encode_next(c: Cursor, digest: &str) -> String {
    format!("{}.{}.{}.{digest}", c.t, c.row, c.sub)
}

fn decode_next(s: &str, digest: &str) -> Result<Cursor> {
    let bad = || {
        ServiceError::invalid(
            "next",
            format!(
                "'{}' is not a 'next' value this server gave",
                s.chars().take(80).collect::<String>()
            ),
        )
    };
    let parts: Vec<&str> = s.split('.').collect();
    let [t, row, sub, d] = parts.as_slice() else {
        return Err(bad());
    };
    if *d != digest {
        return Err(ServiceError::invalid(
            "next",
            "the filters (added_after, match[...]) changed since this 'next' was given; keep them while paging, or start again without 'next'",
        ));
    }
    Ok(Cursor {
        t: t.parse().map_err(|_| bad())?,
        row: row.parse().map_err(|_| bad())?,
        sub: sub.parse().map_err(|_| bad())?,
    })
}

/// The node's directory as a marking circle: clients from `[markings.clients]`, and every
/// agency the directory knows (this node's and its pinned peers') as community.
struct NodeCircle<'a> {
    markings: &'a liaison_core::marking::MarkingConfig,
    known: &'a [String],
}

impl Circle for NodeCircle<'_> {
    fn is_client(&self, of: &str, agency: &str) -> bool {
        self.markings.is_client(of, agency)
    }
    fn in_community(&self, agency: &str) -> bool {
        self.known.iter().any(|k| k.eq_ignore_ascii_case(agency))
    }
}

/// A status resource: the ingest job of an added envelope and the ids it held.
struct StatusEntry {
    job: JobHandle,
    user: liaison_core::UserId,
    request_timestamp: i64,
    /// (id, version) of each object of the envelope, in order.
    objects: Vec<(String, String)>,
}

/// The status resources of this process.
#[derive(Default)]
pub struct TaxiiRuntime {
    statuses: Mutex<VecDeque<(Uuid, Arc<StatusEntry>)>>,
}

/// A matcher for the `match[...]` filters.
struct Filter<'a> {
    q: &'a ObjectQuery,
    /// Parsed `match[version]` timestamps (ms); `None` when first/last/all is asked.
    version_times: Option<Vec<i64>>,
}

impl<'a> Filter<'a> {
    fn new(q: &'a ObjectQuery) -> Result<Filter<'a>> {
        let mut times = Vec::new();
        let mut any_word = q.versions.is_empty();
        for v in &q.versions {
            match v.as_str() {
                "first" | "last" | "all" => any_word = true,
                other => times.push(parse_taxii_time("match[version]", other)?),
            }
        }
        for t in &q.types {
            if t.is_empty()
                || !t
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                return Err(ServiceError::invalid(
                    "match[type]",
                    format!("'{t}' is not a STIX object type"),
                ));
            }
        }
        Ok(Filter {
            q,
            version_times: if any_word { None } else { Some(times) },
        })
    }

    /// Whether rows (indicators and sightings) can match at all.
    fn rows_may_match(&self) -> bool {
        let type_ok = self.q.types.is_empty() || self.q.types.iter().any(|t| t == "indicator" || t == "sighting");
        let id_ok = self.q.ids.is_empty()
            || self
                .q
                .ids
                .iter()
                .any(|i| i.starts_with("indicator--") || i.starts_with("sighting--"));
        type_ok && id_ok && self.spec_ok()
    }

    fn spec_ok(&self) -> bool {
        self.q.spec_versions.is_empty() || self.q.spec_versions.iter().any(|v| v == "2.1")
    }

    fn admits(&self, e: &Entry) -> bool {
        if !self.spec_ok() || self.q.added_after.is_some_and(|a| e.date_added <= a) {
            return false;
        }
        let ty = e.object.get("type").and_then(Value::as_str).unwrap_or("");
        if !self.q.types.is_empty() && !self.q.types.iter().any(|t| t == ty) {
            return false;
        }
        if !self.q.ids.is_empty() && !self.q.ids.iter().any(|i| i == e.id()) {
            return false;
        }
        match &self.version_times {
            None => true,
            Some(times) => {
                let v = parse_taxii_time("version", e.version()).ok();
                v.is_some_and(|v| times.contains(&v))
            }
        }
    }
}

impl Node {
    /// The node with its `[taxii]` configuration.
    pub fn with_taxii_config(mut self, config: TaxiiConfig) -> Self {
        self.taxii = Arc::new(config);
        self
    }

    pub fn taxii_config(&self) -> Arc<TaxiiConfig> {
        self.taxii.clone()
    }

    /// Every collection this node offers (to anyone), in a stable order: per agency of the
    /// node, its community collection, the configured ones, its inbox. A configured collection
    /// that names an agency this node does not serve, or leaves the publisher out on a node
    /// serving several, is left out with a warning in the log.
    pub async fn taxii_all_collections(&self) -> Result<Vec<Collection>> {
        let all = self.store.agencies(&Default::default()).await?;
        self.collections_of(&all).await
    }

    /// [`Node::taxii_all_collections`] over the directory `all` (read once by the caller).
    async fn collections_of(
        &self,
        all: &[(liaison_core::directory::Agency, Option<String>)],
    ) -> Result<Vec<Collection>> {
        let cfg = self.taxii.clone();
        let local: Vec<_> = all.iter().filter(|(_, n)| n.is_none()).map(|(a, _)| a).collect();
        // Publishers are the node's agencies that have people on it: a directory entry no one
        // works for here (an agency known for letters only) shares nothing through this node.
        let staffed: std::collections::HashSet<AgencyId> = self
            .store
            .users()
            .await?
            .iter()
            .filter(|u| !u.disabled)
            .map(|u| u.agency)
            .collect();
        let mut out = Vec::new();
        for a in local.iter().filter(|a| staffed.contains(&a.id)) {
            let make = |audience: Option<Audience>, tlp_max: Option<Tlp>, feeds: Vec<String>, title: Option<String>| {
                let inbox = audience.is_none();
                let key = match &audience {
                    None => format!("taxii-inbox|{}", a.code),
                    Some(Audience::Community) => {
                        format!(
                            "taxii|{}|community|{}|{}",
                            a.code,
                            tlp_max.unwrap_or(Tlp::Green),
                            feeds.join(",")
                        )
                    }
                    Some(Audience::Agency(c)) => {
                        format!(
                            "taxii|{}|{}|{}|{}",
                            a.code,
                            c,
                            tlp_max.unwrap_or(Tlp::Green),
                            feeds.join(",")
                        )
                    }
                };
                let scope = tlp_max.map(|t| t.as_str()).unwrap_or("");
                let feeds_txt = if feeds.is_empty() {
                    "every feed".to_string()
                } else {
                    format!("feeds {}", feeds.join(", "))
                };
                let (default_title, description) = match &audience {
                    None => (
                        format!("{}: inbox", a.code),
                        format!(
                            "STIX 2.1 objects added here are imported as indicators of {} (feed '{}'); unmarked objects are kept as TLP:RED",
                            a.code, cfg.inbox_feed
                        ),
                    ),
                    Some(Audience::Community) => (
                        format!("{}: community, up to {scope}", a.code),
                        format!(
                            "Indicators {} shares with the community of this node (its agencies and those of its pinned peers), up to {scope}, from {feeds_txt}",
                            a.code
                        ),
                    ),
                    Some(Audience::Agency(c)) => (
                        format!("{} for {c}, up to {scope}", a.code),
                        format!("Indicators {} shares with {c}, up to {scope}, from {feeds_txt}", a.code),
                    ),
                };
                Collection {
                    id: Uuid::new_v5(&LIAISON_NAMESPACE, key.as_bytes()),
                    title: title.unwrap_or(default_title),
                    description,
                    publisher: a.code.clone(),
                    publisher_id: a.id,
                    publisher_name: a.name_en.clone(),
                    audience,
                    tlp_max,
                    feeds,
                    inbox,
                    unattributed: local.len() == 1,
                }
            };
            let mut push = |c: Collection| {
                // The same scope twice (a configured community collection like the default
                // one) is one collection.
                if !out.iter().any(|o: &Collection| o.id == c.id) {
                    out.push(c);
                }
            };
            if cfg.community_collection {
                push(make(Some(Audience::Community), Some(Tlp::Green), Vec::new(), None));
            }
            for (i, c) in cfg.collections.iter().enumerate() {
                let publisher = match &c.publisher {
                    Some(p) => p.as_str(),
                    None if local.len() == 1 => a.code.as_str(),
                    None => {
                        tracing::warn!(
                            collection = i + 1,
                            "[[taxii.collections]] #{} names no publisher on a node serving several agencies: left out",
                            i + 1
                        );
                        continue;
                    }
                };
                if !publisher.eq_ignore_ascii_case(&a.code) {
                    continue;
                }
                let audience = if c.is_community() {
                    Audience::Community
                } else {
                    match all.iter().find(|(x, _)| x.code.eq_ignore_ascii_case(c.audience.trim())) {
                        Some((x, _)) => Audience::Agency(x.code.clone()),
                        None => {
                            tracing::warn!(
                                audience = %c.audience,
                                "[[taxii.collections]] #{} is for an agency the directory does not know: left out",
                                i + 1
                            );
                            continue;
                        }
                    }
                };
                push(make(Some(audience), Some(c.tlp_max), c.feeds.clone(), c.title.clone()));
            }
            push(make(None, None, Vec::new(), None));
        }
        for c in &cfg.collections {
            if let Some(p) = &c.publisher
                && !local.iter().any(|a| a.code.eq_ignore_ascii_case(p))
            {
                tracing::warn!(publisher = %p, "[[taxii.collections]] names a publisher this node does not serve: left out");
            }
        }
        Ok(out)
    }

    /// The collections `p` may read or write, with what `p` sees in each.
    pub async fn taxii_collections(&self, p: &Principal) -> Result<Vec<CollectionView>> {
        let reader = self.store.agency(p.agency).await?;
        let all = self.store.agencies(&Default::default()).await?;
        let known: Vec<String> = all.iter().map(|(a, _)| a.code.clone()).collect();
        let circle = NodeCircle {
            markings: &self.markings,
            known: &known,
        };
        let mut out = Vec::new();
        for c in self.collections_of(&all).await? {
            let own = c.publisher_id == p.agency;
            if c.inbox {
                if own && may_operate(p.role) {
                    out.push(CollectionView {
                        collection: c,
                        can_read: false,
                        can_write: true,
                        levels: Vec::new(),
                    });
                }
                continue;
            }
            let audience_code = match &c.audience {
                Some(Audience::Agency(code)) => Some(code.as_str()),
                _ => None,
            };
            let rel = relation(
                &reader.code,
                &p.username,
                Parties {
                    originator: &c.publisher,
                    recipient: audience_code,
                    named: &[],
                },
                &circle,
            );
            let may = match rel {
                Relation::Originator => may_operate(p.role),
                Relation::NamedRecipient | Relation::Organisation => true,
                Relation::Community => c.audience == Some(Audience::Community),
                Relation::Client | Relation::Outsider => false,
            };
            if !may {
                continue;
            }
            let max = c.tlp_max.unwrap_or(Tlp::Green).min(Tlp::AmberStrict);
            let levels: Vec<Tlp> = Tlp::ALL.into_iter().filter(|t| *t <= max && admits(*t, rel)).collect();
            out.push(CollectionView {
                collection: c,
                can_read: true,
                can_write: false,
                levels,
            });
        }
        Ok(out)
    }

    /// One collection `p` may use; "not found" for any other (whether it exists or not).
    pub async fn taxii_collection(&self, p: &Principal, id: &str) -> Result<CollectionView> {
        let wanted = Uuid::parse_str(id.trim()).ok();
        self.taxii_collections(p)
            .await?
            .into_iter()
            .find(|c| Some(c.collection.id) == wanted)
            .ok_or_else(|| ServiceError::NotFound(format!("collection '{}'", id.chars().take(80).collect::<String>())))
    }

    /// One page of a collection's objects (Get Objects, Get Manifest, Get an Object).
    pub async fn taxii_objects(&self, p: &Principal, collection: &str, q: &ObjectQuery) -> Result<Page> {
        let view = self.taxii_collection(p, collection).await?;
        if !view.can_read {
            return Err(ServiceError::Forbidden(format!(
                "collection {} is an inbox: objects are added to it, not read from it",
                view.collection.id
            )));
        }
        let limit = q.limit.unwrap_or(self.taxii.default_page).clamp(1, self.taxii.max_page) as usize;
        self.page(&view, q, limit, Some(SCAN_BUDGET)).await
    }

    /// Every version of one object (Get an Object, Get Object Versions): "not found" when
    /// the collection does not hold it for `p`.
    pub async fn taxii_object(&self, p: &Principal, collection: &str, id: &str, q: &ObjectQuery) -> Result<Vec<Entry>> {
        let view = self.taxii_collection(p, collection).await?;
        if !view.can_read {
            return Err(ServiceError::Forbidden(format!(
                "collection {} is an inbox: objects are added to it, not read from it",
                view.collection.id
            )));
        }
        let mut one = q.clone();
        one.ids = vec![id.to_string()];
        one.next = None;
        // One object has one version here: the whole collection is searched for it.
        let page = self.page(&view, &one, 2, None).await?;
        if page.entries.is_empty() {
            return Err(ServiceError::NotFound(format!(
                "object '{}' in collection {}",
                id.chars().take(120).collect::<String>(),
                view.collection.id
            )));
        }
        Ok(page.entries)
    }

    async fn page(&self, view: &CollectionView, q: &ObjectQuery, limit: usize, budget: Option<u64>) -> Result<Page> {
        let c = &view.collection;
        let filter = Filter::new(q)?;
        let dig = digest(c.id, q);
        let cursor = match &q.next {
            Some(n) => Some(decode_next(n, &dig)?),
            None => None,
        };
        let producer = Producer {
            code: c.publisher.clone(),
            name: c.publisher_name.clone(),
        };
        let mut entries: Vec<(Entry, Cursor)> = Vec::new();
        // The starting objects.
        let mut head = vec![producer.identity()];
        head.extend(view.levels.iter().map(|t| marking_definition(*t)));
        for (i, obj) in head.into_iter().enumerate() {
            let key = Cursor {
                t: HEAD_MS,
                row: HEAD_ROW_BASE + i as i64,
                sub: 0,
            };
            if cursor.is_some_and(|c| (c.t, c.row, c.sub) >= (key.t, key.row, key.sub)) {
                continue;
            }
            let e = Entry {
                object: obj,
                date_added: HEAD_MS,
            };
            if filter.admits(&e) {
                entries.push((e, key));
            }
        }
        let mut scanned = 0u64;
        let mut out_of_budget = None;
        if filter.rows_may_match() && !view.levels.is_empty() && entries.len() <= limit {
            let mut partial = cursor.filter(|c| c.t > HEAD_MS || c.row >= 0);
            loop {
                let want = (limit + 1).saturating_sub(entries.len()) as u32;
                let rows_limit = want.max(ROWS_PER_QUERY);
                let rq = IndicatorPage {
                    agency: c.publisher.clone(),
                    or_unattributed: c.unattributed,
                    tlp: view.levels.clone(),
                    feeds: c.feeds.clone(),
                    after: partial.map(|k| (k.t, k.row)),
                    inclusive: partial.is_some_and(|k| k.sub < 1),
                    added_after: q.added_after,
                    limit: rows_limit,
                };
                let rows = self.store.intel_page(&rq).await?;
                let n = rows.len();
                for row in &rows {
                    scanned += 1;
                    for (sub, e) in row_entries(row, &producer).into_iter().enumerate() {
                        let key = Cursor {
                            t: row.changed_at,
                            row: row.id,
                            sub: sub as u8,
                        };
                        if partial.is_some_and(|k| (k.t, k.row, k.sub) >= (key.t, key.row, key.sub)) {
                            continue;
                        }
                        if filter.admits(&e) {
                            entries.push((e, key));
                        }
                    }
                    if entries.len() > limit {
                        break;
                    }
                    if budget.is_some_and(|b| scanned >= b) {
                        out_of_budget = Some(Cursor {
                            t: row.changed_at,
                            row: row.id,
                            sub: u8::MAX,
                        });
                        break;
                    }
                }
                if entries.len() > limit || out_of_budget.is_some() || (n as u32) < rows_limit {
                    break;
                }
                // Continue after the last row read, whole.
                if let Some(last) = rows.last() {
                    partial = Some(Cursor {
                        t: last.changed_at,
                        row: last.id,
                        sub: u8::MAX,
                    });
                }
            }
        }
        let more = entries.len() > limit || out_of_budget.is_some();
        entries.truncate(limit);
        let next = if more {
            let last = if entries.len() == limit {
                entries.last().map(|(_, k)| *k)
            } else {
                out_of_budget
            };
            last.map(|k| encode_next(k, &dig))
        } else {
            None
        };
        Ok(Page {
            entries: entries.into_iter().map(|(e, _)| e).collect(),
            more: more && next.is_some(),
            next,
        })
    }

    /// Adds an envelope to `p`'s agency's inbox: imports its objects as STIX (a background
    /// ingest job) and returns the status resource, `pending` until the job ends. Waits up
    /// to `wait` for it to end first.
    pub async fn taxii_add(
        &self,
        p: &Principal,
        collection: &str,
        body: &[u8],
        wait: std::time::Duration,
    ) -> Result<Value> {
        let view = self.taxii_collection(p, collection).await?;
        if !view.can_write {
            return Err(ServiceError::Forbidden(format!(
                "collection {} is read-only; add objects to your agency's inbox",
                view.collection.id
            )));
        }
        if body.len() as u64 > self.taxii.max_content_bytes {
            return Err(ServiceError::Unprocessable(format!(
                "the envelope is {} bytes, over this API root's max_content_length of {} ([taxii] max_content_bytes)",
                body.len(),
                self.taxii.max_content_bytes
            )));
        }
        let envelope: Value = serde_json::from_slice(body).map_err(|e| {
            ServiceError::invalid(
                "body",
                format!(
                    "the envelope is not JSON (line {}, column {}): {e}",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        let objects = match envelope.get("objects") {
            Some(Value::Array(a)) => a,
            Some(_) => return Err(ServiceError::invalid("objects", "must be a list of STIX objects")),
            None => {
                return Err(ServiceError::invalid(
                    "objects",
                    "missing: a TAXII envelope is {\"objects\": [ … ]}",
                ));
            }
        };
        if objects.is_empty() {
            return Err(ServiceError::invalid("objects", "the envelope holds no object"));
        }
        let ids: Vec<(String, String)> = objects
            .iter()
            .map(|o| {
                let s = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                let version = o
                    .get("modified")
                    .or_else(|| o.get("created"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                (s("id"), version)
            })
            .collect();
        let config = self.intel_config();
        let mut src = crate::intel::source_in(&config, "taxii", "stix", Some(&self.taxii.inbox_feed))?;
        src.feed = self.taxii.inbox_feed.clone();
        let name = format!("TAXII add to {}", view.collection.id);
        let (job, guard) = self.intel_ingest_begin(p, &src, "stix", &name).await?;
        let mut spool = match self.intel_spool_file() {
            Ok(s) => s,
            Err(e) => {
                job.fail(500, e.to_string());
                guard.release().await;
                return Err(e);
            }
        };
        let written = match spool.take_file() {
            Some(mut f) => {
                use std::io::Write;
                f.write_all(body).and_then(|()| f.sync_all())
            }
            None => Err(std::io::Error::other("spool file already taken")),
        };
        if let Err(e) = written {
            job.fail(500, e.to_string());
            guard.release().await;
            return Err(ServiceError::Internal(format!(
                "writing the envelope to the spool: {e}"
            )));
        }
        job.received(body.len() as u64);
        let task = self.intel_ingest_start(&job, guard, src, spool, jiff::Timestamp::now());
        let entry = Arc::new(StatusEntry {
            job: job.clone(),
            user: p.user,
            request_timestamp: jiff::Timestamp::now().as_millisecond(),
            objects: ids,
        });
        let id = job.id();
        {
            let mut s = self
                .taxii_rt
                .statuses
                .lock()
                .map_err(|_| ServiceError::Internal("TAXII status list poisoned".into()))?;
            while s.len() >= STATUS_KEPT {
                s.pop_front();
            }
            s.push_back((id, entry.clone()));
        }
        let _ = tokio::time::timeout(wait, task).await;
        Ok(status_resource(id, &entry))
    }

    /// A status resource of this process, for the user who added the envelope.
    pub fn taxii_status(&self, p: &Principal, id: &str) -> Result<Value> {
        let wanted = Uuid::parse_str(id.trim()).ok();
        let found = self
            .taxii_rt
            .statuses
            .lock()
            .map_err(|_| ServiceError::Internal("TAXII status list poisoned".into()))?
            .iter()
            .find(|(sid, e)| Some(*sid) == wanted && e.user == p.user)
            .map(|(sid, e)| (*sid, e.clone()));
        match found {
            Some((sid, e)) => Ok(status_resource(sid, &e)),
            None => Err(ServiceError::NotFound(format!(
                "status '{}' (this process keeps the last {STATUS_KEPT}, each for the user who added the objects)",
                id.chars().take(80).collect::<String>()
            ))),
        }
    }
}

/// A row's objects: its indicator and its sighting.
fn row_entries(row: &PagedIndicator, producer: &Producer) -> [Entry; 2] {
    [
        Entry {
            object: indicator_to_stix(&row.indicator, Some(producer)),
            date_added: row.changed_at,
        },
        Entry {
            object: sighting_to_stix(&row.indicator, Some(producer)),
            date_added: row.changed_at,
        },
    ]
}

fn status_resource(id: Uuid, e: &StatusEntry) -> Value {
    let job: IngestJob = e.job.snapshot();
    let total = e.objects.len() as u64;
    let detail = |(id, version): &(String, String), message: Option<String>| {
        let mut d = serde_json::json!({"id": id, "version": version});
        if let Some(m) = message {
            d["message"] = Value::from(m);
        }
        d
    };
    match job.state {
        JobState::Running => serde_json::json!({
            "id": id.to_string(),
            "status": "pending",
            "request_timestamp": taxii_time(e.request_timestamp),
            "total_count": total,
            "success_count": 0,
            "failure_count": 0,
            "pending_count": total,
            "pendings": e.objects.iter().map(|o| detail(o, None)).collect::<Vec<_>>(),
        }),
        JobState::Succeeded | JobState::Failed => {
            // Objects quarantined by the import, by their position (1-based).
            let mut failed: std::collections::BTreeMap<u64, String> = Default::default();
            let mut whole_failure = None;
            if let Some(r) = &job.report {
                for s in &r.summary.sources {
                    for q in &s.quarantine {
                        failed.insert(q.line, q.reason.to_string());
                    }
                    if let Some(err) = &s.error {
                        whole_failure = Some(err.to_string());
                    }
                }
            }
            if job.state == JobState::Failed {
                whole_failure = Some(
                    job.error
                        .as_ref()
                        .map(|e| e.detail.clone())
                        .unwrap_or_else(|| "the import failed".into()),
                );
            }
            let mut successes = Vec::new();
            let mut failures = Vec::new();
            for (i, o) in e.objects.iter().enumerate() {
                let pos = i as u64 + 1;
                match (&whole_failure, failed.get(&pos)) {
                    (Some(w), _) => failures.push(detail(o, Some(w.clone()))),
                    (None, Some(m)) => failures.push(detail(o, Some(m.clone()))),
                    (None, None) => successes.push(detail(o, None)),
                }
            }
            serde_json::json!({
                "id": id.to_string(),
                "status": "complete",
                "request_timestamp": taxii_time(e.request_timestamp),
                "total_count": total,
                "success_count": successes.len(),
                "failure_count": failures.len(),
                "pending_count": 0,
                "successes": successes,
                "failures": failures,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_round_trips_and_refuses_changed_filters() {
        let q = ObjectQuery::default();
        let d = digest(Uuid::nil(), &q);
        let c = Cursor {
            t: 1_790_000_000_000,
            row: 42,
            sub: 1,
        };
        let s = encode_next(c, &d);
        assert_eq!(decode_next(&s, &d).ok(), Some(c));
        let mut other = q.clone();
        other.types = vec!["indicator".into()];
        let e = decode_next(&s, &digest(Uuid::nil(), &other)).unwrap_err().to_string();
        assert!(e.contains("filters"), "{e}");
        assert!(decode_next("garbage", &d).is_err());
    }

    #[test]
    fn config_refuses_red_and_wide_community() {
        let mut c = TaxiiConfig::default();
        assert!(c.validate().is_ok());
        c.collections.push(CollectionConfig {
            publisher: None,
            audience: "community".into(),
            tlp_max: Tlp::Amber,
            feeds: vec![],
            title: None,
        });
        assert!(c.validate().unwrap_err().contains("at most TLP:GREEN"));
        c.collections[0].audience = "CN-MPS".into();
        c.collections[0].tlp_max = Tlp::Red;
        assert!(c.validate().unwrap_err().contains("RED"));
    }

    #[test]
    fn query_names_unknown_parameters() {
        let e = ObjectQuery::parse("match[types]=indicator", true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("match[types]"), "{e}");
        let q = ObjectQuery::parse(
            "limit=5&match[type]=indicator,sighting&added_after=2026-01-01T00:00:00Z",
            true,
        )
        .unwrap();
        assert_eq!(q.limit, Some(5));
        assert_eq!(q.types, vec!["indicator", "sighting"]);
        assert!(q.added_after.is_some());
        assert_eq!(ObjectQuery::parse("limit=0", true).unwrap().limit, None);
        assert!(ObjectQuery::parse("limit=-1", true).is_err());
        assert!(ObjectQuery::parse("limit=5", false).is_err());
        assert!(ObjectQuery::parse("match[type]=Indicator%20x", true).is_err());
        assert!(ObjectQuery::parse("match[version]=yesterday", true).is_err());
        let q = ObjectQuery::parse("next=1.2.3.abc", true).unwrap();
        assert!(q.check_next(Uuid::nil()).is_err());
    }

    #[test]
    fn times_are_taxii_timestamps() {
        assert_eq!(taxii_time(HEAD_MS), "2025-12-01T00:00:00.000Z");
        assert_eq!(parse_taxii_time("x", "2025-12-01T00:00:00.000Z").ok(), Some(HEAD_MS));
        assert!(parse_taxii_time("x", "yesterday").is_err());
    }
}
