//! Search (docs/search.md): words in requests, comments and evidence file names, in English and
//! Chinese; target identifiers looked up across requests and clean-up indicators; the filters
//! of the request listings (`q`, `case_reference`, `target`); saved searches.
//!
//! What a reader finds is what they may read: the store decides visibility in SQL from the
//! request's agencies, state and marking and each text's own marking (the rule of
//! `markings.rs`), so that hidden texts count nowhere; each hit is checked again here with
//! `markings.rs` itself before its snippet is made.

use crate::error::{Result, ServiceError};
use crate::node::{Node, require};
use jiff::Timestamp;
use liaison_core::record::{Principal, RequestFilter, SavedSearch, SearchHit, SearchPage, SearchSource, TargetLookup};
use liaison_core::search::{Query, parse_query, snippet};
use liaison_core::{AgencyId, RequestKind, State, UserId};
use liaison_intel::ident::{IdentKind, KeyMatch};
use liaison_store::DocSearch;

/// The parameters a search accepts, in the API's query string, the CLI's flags, the web
/// page's form and a saved search alike.
pub const SEARCH_PARAMS: &[&str] = &[
    "q",
    "case_reference",
    "target",
    "target_kind",
    "counterpart",
    "kind",
    "state",
    "owner",
    "from",
    "to",
    "in",
    "sort",
    "cursor",
    "limit",
];

/// Longest snippet, in characters.
pub const SNIPPET_CHARS: usize = 160;

/// Most saved searches a user keeps.
pub const MAX_SAVED: usize = 100;

/// A search as asked (see [`SEARCH_PARAMS`]); checked, not yet resolved against the directory.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchParams {
    /// Words (required for a search of texts; see docs/search.md for the syntax).
    pub q: Option<String>,
    pub case_reference: Option<String>,
    /// A target identifier (IP address or network, domain, URL, e-mail, phone, account, wallet,
    /// bank account, hash, ASN).
    pub target: Option<String>,
    /// How to read `target` when it cannot be told from its form (`account`, `wallet`, `bank`).
    pub target_kind: Option<IdentKind>,
    /// The other agency (code or id).
    pub counterpart: Option<String>,
    pub kind: Option<RequestKind>,
    pub states: Vec<State>,
    /// A colleague's user name, or `me`.
    pub owner: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// Where the words must be: `request`, `comment`, `file` (none: anywhere).
    pub sources: Vec<SearchSource>,
    /// Oldest first (`sort=oldest`) instead of newest first (`sort=newest`).
    pub oldest_first: bool,
    pub cursor: Option<String>,
    pub limit: u32,
}

impl Default for SearchParams {
    /// No words, no filters, newest first, 20 a page.
    fn default() -> Self {
        SearchParams {
            q: None,
            case_reference: None,
            target: None,
            target_kind: None,
            counterpart: None,
            kind: None,
            states: Vec::new(),
            owner: None,
            from: None,
            to: None,
            sources: Vec::new(),
            oldest_first: false,
            cursor: None,
            limit: 20,
        }
    }
}

/// An instant or a day (`2026-12-01`, read as its start in UTC).
fn instant(field: &str, v: &str) -> Result<Timestamp> {
    if let Ok(t) = v.parse::<Timestamp>() {
        return Ok(t);
    }
    v.parse::<jiff::civil::Date>()
        .ok()
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp())
        .ok_or_else(|| {
            ServiceError::invalid(
                field,
                format!("'{v}' is not a date (2026-12-01) or an instant (2026-12-01T08:00:00Z)"),
            )
        })
}

impl SearchParams {
    /// Reads the parameters from name–value pairs (a query string); an unknown or repeated
    /// name, or a bad value, is an error naming it.
    pub fn parse<I, K, V>(pairs: I) -> Result<SearchParams>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut s = SearchParams::default();
        let mut seen: Vec<String> = Vec::new();
        for (k, v) in pairs {
            let (k, v) = (k.as_ref(), v.as_ref().trim());
            if !SEARCH_PARAMS.contains(&k) {
                return Err(ServiceError::invalid(
                    k,
                    format!("unknown search parameter; known: {}", SEARCH_PARAMS.join(", ")),
                ));
            }
            if seen.iter().any(|x| x == k) {
                return Err(ServiceError::invalid(k, "given twice"));
            }
            seen.push(k.to_string());
            if v.is_empty() {
                continue;
            }
            let text = || Some(v.to_string());
            match k {
                "q" => s.q = text(),
                "case_reference" => s.case_reference = text(),
                "target" => s.target = text(),
                "target_kind" => {
                    s.target_kind = Some(
                        v.parse()
                            .map_err(|e: liaison_core::UnknownValue| ServiceError::invalid(k, e.to_string()))?,
                    )
                }
                "counterpart" => s.counterpart = text(),
                "kind" => {
                    s.kind = Some(
                        v.parse()
                            .map_err(|e: liaison_core::UnknownValue| ServiceError::invalid(k, e.to_string()))?,
                    )
                }
                "state" => {
                    for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                        s.states.push(
                            part.parse()
                                .map_err(|e: liaison_core::UnknownValue| ServiceError::invalid(k, e.to_string()))?,
                        );
                    }
                }
                "owner" => s.owner = text(),
                "from" => s.from = Some(instant(k, v)?),
                "to" => s.to = Some(instant(k, v)?),
                "in" => {
                    for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                        s.sources.push(
                            part.parse()
                                .map_err(|e: liaison_core::UnknownValue| ServiceError::invalid(k, e.to_string()))?,
                        );
                    }
                }
                "sort" => {
                    s.oldest_first = match v {
                        "newest" => false,
                        "oldest" => true,
                        _ => return Err(ServiceError::invalid(k, format!("'{v}' is not newest or oldest"))),
                    }
                }
                "cursor" => s.cursor = text(),
                "limit" => {
                    s.limit = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=200).contains(n))
                        .ok_or_else(|| ServiceError::invalid(k, format!("'{v}' is not a number from 1 to 200")))?
                }
                _ => {}
            }
        }
        if let (Some(f), Some(t)) = (s.from, s.to)
            && f >= t
        {
            return Err(ServiceError::invalid("to", "must be after 'from'"));
        }
        Ok(s)
    }

    /// Reads a query string (`q=phishing&state=received`, with or without the leading `?`).
    pub fn from_query_string(query: &str) -> Result<SearchParams> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.trim_start_matches('?'))
            .map_err(|e| ServiceError::invalid("query", format!("not a query string: {e}")))?;
        SearchParams::parse(pairs)
    }

    /// The parameters as a query string (without the cursor): what a saved search keeps and
    /// what the web page's links carry.
    pub fn to_query(&self) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        let mut put = |k: &'static str, v: Option<String>| {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                pairs.push((k, v));
            }
        };
        put("q", self.q.clone());
        put("case_reference", self.case_reference.clone());
        put("target", self.target.clone());
        put("target_kind", self.target_kind.map(|k| k.to_string()));
        put("counterpart", self.counterpart.clone());
        put("kind", self.kind.map(|k| k.as_str().to_string()));
        put(
            "state",
            Some(self.states.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")),
        );
        put("owner", self.owner.clone());
        put("from", self.from.map(|t| t.to_string()));
        put("to", self.to.map(|t| t.to_string()));
        put(
            "in",
            Some(self.sources.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")),
        );
        put("sort", self.oldest_first.then(|| "oldest".to_string()));
        put(
            "limit",
            (self.limit != 20 && self.limit != 0).then(|| self.limit.to_string()),
        );
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    }

    /// The words, parsed (an error names `q`).
    pub fn query(&self) -> Result<Option<Query>> {
        self.q
            .as_deref()
            .map(|q| parse_query(q).map_err(|e| ServiceError::invalid("q", e.to_string())))
            .transpose()
    }
}

/// What the reader typed, normalized for a reader in `country` (an error names `target`).
fn lookup_in(raw: &str, kind: Option<IdentKind>, country: Option<&str>) -> Result<liaison_intel::ident::Lookup> {
    liaison_intel::ident::lookup(raw, kind, country).map_err(|e| ServiceError::invalid("target", e.to_string()))
}

/// The keys of a target look-up as the store compares them.
fn key_ranges(keys: &[KeyMatch]) -> Vec<(String, String)> {
    keys.iter()
        .map(|k| match k {
            KeyMatch::Exact(k) => (k.clone(), k.clone()),
            KeyMatch::Range { lo, hi } => (lo.clone(), hi.clone()),
        })
        .collect()
}

impl Node {
    /// The country (ISO code) of the reader's agency: how national phone numbers are read.
    async fn reader_country(&self, p: &Principal) -> Option<String> {
        self.store
            .agency(p.agency)
            .await
            .ok()
            .map(|a| a.jurisdiction.to_string())
    }

    /// A target identifier as the reader typed it, normalized (an error names `target`).
    async fn target_lookup_of(
        &self,
        p: &Principal,
        raw: &str,
        kind: Option<IdentKind>,
    ) -> Result<liaison_intel::ident::Lookup> {
        let country = self.reader_country(p).await;
        liaison_intel::ident::lookup(raw, kind, country.as_deref())
            .map_err(|e| ServiceError::invalid("target", e.to_string()))
    }

    /// The agency named by code or id (an error names `field`).
    async fn agency_named(&self, p: &Principal, field: &str, v: &str) -> Result<AgencyId> {
        match v.parse::<AgencyId>() {
            Ok(id) => Ok(id),
            Err(_) => Ok(self.agency_by_code(p, field, v).await?.id),
        }
    }

    /// The owner named by user name (or `me`).
    async fn owner_named(&self, p: &Principal, v: &str) -> Result<UserId> {
        if v == "me" {
            return Ok(p.user);
        }
        self.colleague(p, "owner", v).await
    }

    /// Adds the search filters of a request listing (`q`, `case_reference`, `target` with
    /// `target_kind`) to `f`, checked.
    pub async fn search_filters(
        &self,
        p: &Principal,
        f: &mut RequestFilter,
        q: Option<&str>,
        case_reference: Option<&str>,
        target: Option<&str>,
        target_kind: Option<&str>,
    ) -> Result<()> {
        if let Some(q) = q.map(str::trim).filter(|q| !q.is_empty()) {
            f.text = Some(parse_query(q).map_err(|e| ServiceError::invalid("q", e.to_string()))?);
            f.reader = Some(p.username.clone());
        }
        if let Some(c) = case_reference.map(str::trim).filter(|c| !c.is_empty()) {
            if c.len() > 200 {
                return Err(ServiceError::invalid("case_reference", "longer than 200 bytes"));
            }
            f.case_reference = Some(c.to_string());
        }
        let kind = target_kind
            .map(|k| {
                k.parse::<IdentKind>()
                    .map_err(|e| ServiceError::invalid("target_kind", e.to_string()))
            })
            .transpose()?;
        if let Some(t) = target.map(str::trim).filter(|t| !t.is_empty()) {
            let l = self.target_lookup_of(p, t, kind).await?;
            f.target_keys = key_ranges(&l.keys);
        }
        Ok(())
    }

    /// Searches the texts the reader may see (`params.q` is required): one page of hits, newest
    /// first (or oldest), each with its request and a snippet; with the number of matching
    /// texts (capped at [`SearchPage::CAP`]).
    pub async fn search(&self, p: &Principal, params: &SearchParams, now: Timestamp) -> Result<SearchPage> {
        require(p.role.may_read_requests(), "searching requests", p)?;
        let query = params
            .query()?
            .ok_or_else(|| ServiceError::invalid("q", "a search needs words; to look up an identifier use target"))?;
        let counterpart = match &params.counterpart {
            Some(c) => Some(self.agency_named(p, "counterpart", c).await?),
            None => None,
        };
        let owner = match &params.owner {
            Some(o) => Some(self.owner_named(p, o).await?),
            None => None,
        };
        let after_doc = params
            .cursor
            .as_deref()
            .map(|c| {
                c.parse::<i64>()
                    .map_err(|_| ServiceError::invalid("cursor", format!("'{c}' is not a cursor this search returned")))
            })
            .transpose()?;
        let mut target_ids: Option<Vec<liaison_core::RequestId>> = None;
        if let Some(t) = &params.target {
            // Texts of the requests with this target only (at most the newest 1,000).
            let l = self.target_lookup_of(p, t, params.target_kind).await?;
            target_ids = Some(
                self.store
                    .target_requests(&key_ranges(&l.keys), p.agency, &p.username, SearchPage::CAP)
                    .await?,
            );
        }
        let ds = DocSearch {
            agency: p.agency,
            user: &p.username,
            query: &query,
            sources: &params.sources,
            kind: params.kind,
            states: &params.states,
            counterpart,
            case_reference: params.case_reference.as_deref(),
            owner,
            from: params.from,
            to: params.to,
            oldest_first: params.oldest_first,
            after_doc,
            limit: params.limit.max(1),
            requests: target_ids.as_deref(),
        };
        let (hits, count) = self.store.search_page_and_count(&ds, SearchPage::CAP).await?;
        let limit = ds.limit.clamp(1, 200) as usize;
        let more = hits.len() > limit;
        let hits = &hits[..hits.len().min(limit)];
        let next = if more {
            hits.last().map(|h| h.doc.to_string())
        } else {
            None
        };
        let ids: Vec<liaison_core::RequestId> = {
            let mut v: Vec<_> = hits.iter().map(|h| h.request_id).collect();
            v.sort();
            v.dedup();
            v
        };
        let (summaries, texts) = tokio::try_join!(
            self.store.request_summaries_by_id(&ids, now),
            self.store.search_texts(hits)
        )?;
        let mut items = Vec::with_capacity(hits.len());
        for h in hits {
            let Some(s) = summaries.iter().find(|s| s.id == h.request_id) else {
                continue;
            };
            // The store's SQL decided; the marking rule itself confirms for the request.
            if !crate::markings::admits_request(p, s.requesting_agency, s.requested_agency, &s.marking) {
                continue;
            }
            let text = texts.get(&h.doc).map(String::as_str).unwrap_or("");
            let (field, snip) = match h.source {
                SearchSource::Request => {
                    // reference, case reference, summary (one per line): the first that matches.
                    let mut lines = text.splitn(3, '\n');
                    let (reference, case, summary) = (
                        lines.next().unwrap_or(""),
                        lines.next().unwrap_or(""),
                        lines.next().unwrap_or(""),
                    );
                    [("summary", summary), ("case_reference", case), ("reference", reference)]
                        .into_iter()
                        .map(|(f, t)| (f, snippet(t, &query, SNIPPET_CHARS)))
                        .find(|(_, s)| !s.marks.is_empty())
                        .unwrap_or_else(|| ("summary", snippet(summary, &query, SNIPPET_CHARS)))
                }
                SearchSource::Comment => ("comment", snippet(text, &query, SNIPPET_CHARS)),
                SearchSource::File => ("file_name", snippet(text, &query, SNIPPET_CHARS)),
            };
            items.push(SearchHit {
                source: h.source,
                item_id: h.item_id.clone(),
                at: h.at,
                request: s.clone(),
                field: field.to_string(),
                snippet: snip,
            });
        }
        Ok(SearchPage {
            items,
            next,
            count: count.min(SearchPage::CAP),
            count_capped: count >= SearchPage::CAP,
        })
    }

    /// Looks up a target identifier: the requests the reader may see that have it among their
    /// targets, and (for the roles that work clean-up, and for every reader the notices sent to
    /// their agency) the clean-up indicators and notices under it.
    pub async fn lookup(
        &self,
        p: &Principal,
        raw: &str,
        kind: Option<IdentKind>,
        now: Timestamp,
    ) -> Result<TargetLookup> {
        require(p.role.may_read_requests(), "looking up identifiers", p)?;
        let agency = self.store.agency(p.agency).await?;
        let l = lookup_in(raw, kind, Some(&agency.jurisdiction.to_string()))?;
        let keys = key_ranges(&l.keys);
        let ids = self
            .store
            .target_requests(&keys, p.agency, &p.username, SearchPage::CAP)
            .await?;
        let shown: Vec<_> = ids.iter().take(50).copied().collect();
        let mut requests = self.store.request_summaries_by_id(&shown, now).await?;
        requests.retain(|s| crate::markings::admits_request(p, s.requesting_agency, s.requested_agency, &s.marking));
        requests.sort_by_key(|s| std::cmp::Reverse(s.id));
        let code = agency.code;
        let pairs: Vec<(String, String)> = l
            .indicators
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.clone()))
            .collect();
        let works_cleanup = crate::intel::may_operate(p.role) || p.role.may_read_statistics();
        let indicators = if works_cleanup {
            self.store.indicator_matches(&pairs, &code, true).await?
        } else {
            Vec::new()
        };
        let incoming = self.store.incoming_matches(&pairs, &code).await?;
        let mut notices: Vec<&str> = indicators
            .iter()
            .flat_map(|i| i.notices.iter().map(String::as_str))
            .chain(incoming.iter().map(|i| i.notice.as_str()))
            .collect();
        notices.sort();
        notices.dedup();
        Ok(TargetLookup {
            kind: l.ident.kind.to_string(),
            identifier: l.ident.display.clone(),
            request_count: ids.len() as u64,
            request_count_capped: ids.len() as u64 >= SearchPage::CAP,
            requests,
            notice_count: notices.len() as u64,
            indicators,
            incoming,
        })
    }

    /// The reader's saved searches.
    pub async fn saved_searches(&self, p: &Principal) -> Result<Vec<SavedSearch>> {
        require(p.role.may_read_requests(), "searching requests", p)?;
        Ok(self.store.saved_searches(p.user).await?)
    }

    /// Saves a search under a name (1–80 characters; the same name replaces it). The query is
    /// checked as a search would read it and kept without its cursor.
    pub async fn save_search(&self, p: &Principal, name: &str, query: &str, now: Timestamp) -> Result<SavedSearch> {
        require(p.role.may_read_requests(), "searching requests", p)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 80 || name.chars().any(char::is_control) {
            return Err(ServiceError::invalid(
                "name",
                "a saved search needs a name of 1 to 80 characters",
            ));
        }
        if query.len() > 4096 {
            return Err(ServiceError::invalid("query", "longer than 4,096 bytes"));
        }
        let mut params = SearchParams::from_query_string(query)?;
        params.query()?;
        if params.q.is_none() && params.target.is_none() && params.case_reference.is_none() {
            return Err(ServiceError::invalid(
                "query",
                "a saved search needs words (q), a target or a case reference",
            ));
        }
        params.cursor = None;
        let existing = self.store.saved_searches(p.user).await?;
        if existing.len() >= MAX_SAVED && !existing.iter().any(|s| s.name == name) {
            return Err(ServiceError::invalid(
                "name",
                format!("at most {MAX_SAVED} saved searches; delete one first"),
            ));
        }
        let s = SavedSearch {
            id: uuid::Uuid::now_v7().to_string(),
            user: p.user,
            name: name.to_string(),
            query: params.to_query(),
            created_at: now,
        };
        self.store.saved_search_put(&s).await?;
        Ok(s)
    }

    /// Deletes one of the reader's saved searches (by name or id).
    pub async fn delete_saved_search(&self, p: &Principal, name: &str) -> Result<()> {
        require(p.role.may_read_requests(), "searching requests", p)?;
        if self.store.saved_search_delete(p.user, name).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!("saved search '{name}'")))
        }
    }

    /// Re-creates the search index from the stored requests, comments and files
    /// (administrators; after a restore or to repair it). Answers (texts, target keys).
    pub async fn search_rebuild(&self, p: &Principal) -> Result<(u64, u64)> {
        require(p.role.may_administer(), "rebuilding the search index", p)?;
        Ok(self.store.search_rebuild().await?)
    }

    /// [tests, benchmarks] Where a listing filtered by words stops starting from the matching
    /// texts and walks its own order instead, testing each request (default 5,000 matches; 0:
    /// always walk). Both give the same requests; docs/search.md says why there are two.
    pub fn set_search_few_matches(&self, n: u64) {
        self.store.set_few_matches(n);
    }

    /// A page of hits as CSV (UTF-8, CRLF): when, where, the request, the snippet.
    pub async fn search_csv(&self, page: &SearchPage) -> Result<String> {
        use crate::report::csv_field as c;
        let mut out = String::from("at,source,field,reference,request_id,state,kind,case_reference,snippet\r\n");
        for h in &page.items {
            out += &[
                h.at.to_string(),
                h.source.as_str().to_string(),
                h.field.clone(),
                c(&h.request.reference),
                h.request.id.to_string(),
                h.request.state.as_str().to_string(),
                h.request.kind.as_str().to_string(),
                c(&h.request.case_reference),
                c(&h.snippet.text),
            ]
            .join(",");
            out += "\r\n";
        }
        Ok(out)
    }
}
