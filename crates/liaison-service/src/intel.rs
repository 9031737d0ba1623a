//! Network clean-up: the use cases over [`liaison_intel`] (ingest feeds, issue per-partner
//! notices, record partner feedback, statistics) and their HTTP routes under /api/v1/intel.
//!
//! Roles:
//! - analysts, supervisors and admins ingest feeds and issue notices;
//! - a partner agency's users (the partner id of a route is the agency code, e.g. `CN-CNCERT`)
//!   read their own notices and give feedback on their own items only;
//! - statistics and all notices: analysts, supervisors, auditors and admins.
//!
//! Enrichment databases and routes come from the node's `[intel]` configuration, given to the
//! node when it is opened ([`Node::with_intel_config`]).
//!
//! A notice run or feedback is one [`liaison_store::IntelTx`]: the state is loaded inside the
//! write transaction, changed in memory, and only changed indicators are written back. An
//! ingest parses outside any write transaction and writes in short ones
//! ([`crate::intel_ingest`]); all three hold the intel guard, so they never interleave.

use crate::error::{Result, ServiceError};
use crate::node::{Node, require};
use jiff::Timestamp;
use liaison_core::record::Principal;
use liaison_core::{CountryCode, Pap, Role};
use liaison_intel::StoredNotice;
use liaison_intel::aggregate::{FeedbackError, FeedbackRecord};
use liaison_intel::source::Progress;
use liaison_intel::time::{DAY, UnixTime, parse_timestamp};
use liaison_intel::{
    Classification, CleanupState, FeedFormat, FeedbackStatus, GroupBy, Input, Interval, Notice, NoticeId, PartnerId,
    RunSummary, SourceConfig, StatsQuery, StatsRow, indicator_stats,
};
use serde::Serialize;
use std::sync::Arc;
use uuid::Uuid;

pub use liaison_intel::IntelConfig;

// ----- use cases -----------------------------------------------------------------------------

/// What an ingest did: the pipeline's run summary plus what was persisted.
#[derive(Debug, Clone, Serialize)]
pub struct IngestReport {
    #[serde(flatten)]
    pub summary: RunSummary,
    /// Indicator rows written (new and changed).
    pub persisted: u64,
    pub persist_secs: f64,
    /// Distinct indicators known after the run.
    pub indicators_total: u64,
    /// Write transactions the indicators were persisted in.
    pub chunks: u64,
    /// The longest time one of them held the node's write lock (milliseconds).
    pub longest_write_ms: f64,
}

/// A notice as issued: counts only (the items are listed by `GET /api/v1/intel/notices`).
#[derive(Debug, Clone, Serialize)]
pub struct NoticeSummary {
    pub id: NoticeId,
    pub partner: PartnerId,
    pub interval: Interval,
    pub tlp: liaison_core::Tlp,
    pub pap: Pap,
    pub items: usize,
    pub new: usize,
    pub still_active: usize,
    pub reappeared: usize,
}

impl NoticeSummary {
    pub fn of(n: &Notice) -> NoticeSummary {
        use liaison_intel::ItemStatus as S;
        let count = |s: S| n.items.iter().filter(|i| i.status == s).count();
        NoticeSummary {
            id: n.id,
            partner: n.partner.clone(),
            interval: n.interval,
            tlp: n.tlp,
            pap: n.pap,
            items: n.items.len(),
            new: count(S::New),
            still_active: count(S::StillActive),
            reappeared: count(S::Reappeared),
        }
    }
}

/// The result of a notice run.
#[derive(Debug, Clone, Serialize)]
pub struct IssueReport {
    pub interval: Interval,
    pub notices: Vec<NoticeSummary>,
    pub items: usize,
}

/// May ingest feeds and issue notices.
pub fn may_operate(role: Role) -> bool {
    matches!(role, Role::Analyst | Role::Supervisor | Role::Admin)
}

/// A source in an ingest: display name (file path), format word and feed name.
pub fn source(name: &str, format: &str, feed: Option<&str>) -> Result<SourceConfig> {
    source_in(&IntelConfig::default(), name, format, feed)
}

/// Like [`source`], where the format word may also name a configured source
/// (`[intel.sources.NAME]`: its format or column mapping, feed name and limits; `feed`
/// replaces its feed name). A configured name wins over a built-in format word.
pub fn source_in(config: &IntelConfig, name: &str, format: &str, feed: Option<&str>) -> Result<SourceConfig> {
    if let Some(configured) = config.named_source(format) {
        let mut src = configured.clone();
        if let Some(f) = feed {
            src.feed = f.to_string();
        }
        return Ok(src);
    }
    let fmt: FeedFormat = format.parse().map_err(|e: liaison_intel::model::UnknownWord| {
        let mut names: Vec<&str> = FeedFormat::NAMES.to_vec();
        names.extend(config.sources.keys().map(String::as_str));
        ServiceError::invalid("format", format!("{e}; accepted: {}", names.join(", ")))
    })?;
    let feed = feed.map(str::to_string).unwrap_or_else(|| {
        std::path::Path::new(name)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| name.to_string())
    });
    Ok(SourceConfig::new(&feed, fmt))
}

fn secs(t: Timestamp) -> UnixTime {
    t.as_second()
}

impl Node {
    /// The node with its `[intel]` configuration (enrichment databases and routes).
    pub fn with_intel_config(mut self, config: IntelConfig) -> Self {
        self.intel = Arc::new(config);
        self
    }

    /// The `[intel]` configuration the node was opened with (empty: no enrichment, no routes).
    pub fn intel_config(&self) -> Arc<IntelConfig> {
        self.intel.clone()
    }

    /// The agency code of the principal: the partner id its notices are routed to.
    async fn partner_of(&self, p: &Principal) -> Result<String> {
        Ok(self.store.agency(p.agency).await?.code)
    }

    /// Runs feeds through parse → enrich → route → aggregate and persists the result.
    pub async fn intel_ingest(
        &self,
        p: &Principal,
        config: &IntelConfig,
        inputs: Vec<Input<'static>>,
        progress: Arc<dyn Progress + Send + Sync>,
        now: Timestamp,
    ) -> Result<IngestReport> {
        require(may_operate(p.role), "ingesting intelligence feeds", p)?;
        if !self.store.agency_is_local(p.agency).await? {
            return Err(ServiceError::Forbidden(format!(
                "user {} belongs to an agency served by another node; only this node's agencies ingest here",
                p.username
            )));
        }
        let code = self.partner_of(p).await?;
        let guard = self.intel_guard_try().await?;
        self.intel_ingest_run(guard, config, inputs, progress, None, Some(code), now)
            .await
    }

    /// [`Node::intel_ingest`] without a principal: for the demo and trusted tooling.
    /// Parses outside any write transaction and persists in short ones, holding the intel
    /// guard (busy when another ingest runs): see [`crate::intel_ingest`]. `agency`: the code
    /// of the local agency the indicators are ingested for (their statistics readers count
    /// them), if any.
    pub async fn intel_ingest_trusted(
        &self,
        config: &IntelConfig,
        inputs: Vec<Input<'static>>,
        progress: Arc<dyn Progress + Send + Sync>,
        agency: Option<&str>,
        now: Timestamp,
    ) -> Result<IngestReport> {
        let guard = self.intel_guard_try().await?;
        self.intel_ingest_run(guard, config, inputs, progress, None, agency.map(str::to_string), now)
            .await
    }

    /// Builds and records the notices for `[since, until)`. Default `since`: the end of the
    /// last notice run (else everything; today when that run already reached `until`);
    /// default `until`: the end of today (UTC). `pap`: what the partners may do about the
    /// items (default `[markings] notice_pap`); every notice of the run carries it.
    pub async fn intel_issue(
        &self,
        p: &Principal,
        since: Option<UnixTime>,
        until: Option<UnixTime>,
        pap: Option<Pap>,
        now: Timestamp,
    ) -> Result<IssueReport> {
        require(may_operate(p.role), "issuing clean-up notices", p)?;
        if !self.store.agency_is_local(p.agency).await? {
            return Err(ServiceError::Forbidden(format!(
                "user {} belongs to an agency served by another node; only this node's agencies issue notices here",
                p.username
            )));
        }
        let issuer = self.partner_of(p).await?;
        self.intel_issue_as(Some(&issuer), since, until, pap, now).await
    }

    /// [`Node::intel_issue`] without a principal: for the demo and trusted tooling. The
    /// notices record no issuing agency (only their partner sees them, besides a run as
    /// [`Node::intel_issue_as`]) and are not sent over federation.
    pub async fn intel_issue_trusted(
        &self,
        since: Option<UnixTime>,
        until: Option<UnixTime>,
        now: Timestamp,
    ) -> Result<IssueReport> {
        self.intel_issue_as(None, since, until, None, now).await
    }

    /// A notice run on behalf of agency `issuer` (a code; trusted: the caller checked it):
    /// the notices record it, and each notice whose partner is served by a peer node travels
    /// to that node as `cleanup_notice` envelopes written in the same transaction. Holds the
    /// intel guard ([`crate::intel_ingest`]): never interleaves with an ingest.
    pub async fn intel_issue_as(
        &self,
        issuer: Option<&str>,
        since: Option<UnixTime>,
        until: Option<UnixTime>,
        pap: Option<Pap>,
        now: Timestamp,
    ) -> Result<IssueReport> {
        let guard = self.intel_guard_wait().await?;
        let out = self.intel_issue_guarded(issuer, since, until, pap, now).await;
        guard.release().await;
        out
    }

    async fn intel_issue_guarded(
        &self,
        issuer: Option<&str>,
        since: Option<UnixTime>,
        until: Option<UnixTime>,
        pap: Option<Pap>,
        now: Timestamp,
    ) -> Result<IssueReport> {
        let at = secs(now);
        let mut tx = self.store.intel_begin().await?;
        let mut state = tx.load().await?;
        let until = until.unwrap_or_else(|| Interval::day_of(at).end);
        let since = match since {
            Some(s) => s,
            None => tx
                .last_interval_end()
                .await?
                .or_else(|| state.indicators.iter().map(|i| i.first_seen).min())
                .filter(|&s| s < until)
                // A second run the same day: the last day before `until`.
                .unwrap_or(until - DAY),
        };
        if until <= since {
            return Err(ServiceError::invalid("until", "must be after since"));
        }
        let interval = Interval {
            start: since,
            end: until,
        };
        let mut notices = state.issue_notices(interval, at);
        // A notice is marked at least the node's floor (`[markings] notice`), never below its
        // strictest item (docs/markings.md).
        let floor = self.markings.notice;
        let pap = pap.unwrap_or(self.markings.notice_pap);
        for n in &mut notices {
            n.tlp = n.tlp.max(floor);
            n.pap = pap;
        }
        let mut ixs: Vec<u32> = notices
            .iter()
            .flat_map(|n| n.items.iter().map(|i| i.indicator))
            .collect();
        ixs.sort_unstable();
        ixs.dedup();
        tx.save_indicators(&state, &ixs).await?;
        tx.save_notices(&notices, at).await?;
        if let Some(issuer) = issuer {
            let ids: Vec<NoticeId> = notices.iter().map(|n| n.id).collect();
            tx.set_issuer(&ids, issuer).await?;
            let outbox = crate::notices::outgoing_for_notices(self, &state, &notices, issuer, at).await?;
            tx.queue_outbox(&outbox).await?;
        }
        tx.commit().await?;
        Ok(IssueReport {
            interval,
            items: notices.iter().map(|n| n.items.len()).sum(),
            notices: notices.iter().map(NoticeSummary::of).collect(),
        })
    }

    /// Issued notices (optionally one partner's): for operators and statistics readers those
    /// their agency issued and those addressed to it; for other roles those addressed to their
    /// agency only. A third agency's users get an empty list.
    pub async fn intel_notices(&self, p: &Principal, partner: Option<&str>) -> Result<Vec<StoredNotice>> {
        let sees_issued = may_operate(p.role) || p.role.may_read_statistics();
        let own = self.partner_of(p).await?;
        let partner = if sees_issued {
            return Ok(self.store.intel_notices_visible(partner, Some(&own)).await?);
        } else {
            if let Some(asked) = partner
                && !asked.eq_ignore_ascii_case(&own)
            {
                return Err(ServiceError::Forbidden(format!(
                    "user {} of {own} may read only {own}'s notices, not {asked}'s",
                    p.username
                )));
            }
            Some(own)
        };
        Ok(self.store.intel_notices(partner.as_deref()).await?)
    }

    /// A partner's answer about one of its notice items.
    /// `claimed`: the agency code the caller says it answers for, if it says one (checked).
    pub async fn intel_feedback(
        &self,
        p: &Principal,
        claimed: Option<&str>,
        item: Uuid,
        status: FeedbackStatus,
        note: Option<String>,
        now: Timestamp,
    ) -> Result<FeedbackRecord> {
        require(p.role != Role::Auditor, "giving feedback on notices", p)?;
        if let Some(claimed) = claimed {
            let code = self.store.agency(p.agency).await?.code;
            if !claimed.eq_ignore_ascii_case(&code) {
                return Err(ServiceError::Forbidden(format!(
                    "user {} answers for {code}, not for {claimed}",
                    p.username
                )));
            }
        }
        let own = self.partner_of(p).await?;
        let owner = self.store.intel_item_owner(item).await?;
        if owner.partner.as_str() != own {
            return Err(ServiceError::Forbidden(format!(
                "notice item {item} was sent to {}, not to {own}",
                owner.partner
            )));
        }
        self.intel_feedback_trusted(&owner.partner, item, status, note, now)
            .await
    }

    /// [`Node::intel_feedback`] on behalf of `partner`, without a principal (demo, tooling).
    /// Holds the intel guard ([`crate::intel_ingest`]): never interleaves with an ingest.
    pub async fn intel_feedback_trusted(
        &self,
        partner: &PartnerId,
        item: Uuid,
        status: FeedbackStatus,
        note: Option<String>,
        now: Timestamp,
    ) -> Result<FeedbackRecord> {
        let guard = self.intel_guard_wait().await?;
        let out = self.intel_feedback_guarded(partner, item, status, note, now).await;
        guard.release().await;
        out
    }

    async fn intel_feedback_guarded(
        &self,
        partner: &PartnerId,
        item: Uuid,
        status: FeedbackStatus,
        note: Option<String>,
        now: Timestamp,
    ) -> Result<FeedbackRecord> {
        let mut tx = self.store.intel_begin().await?;
        let mut state = tx.load().await?;
        apply(&mut state, partner, item, status, note, secs(now))?;
        let first = state.feedback.len() - 1;
        let rec = state.feedback[first].clone();
        tx.save_indicators(&state, &[rec.indicator]).await?;
        tx.save_feedback(first, std::slice::from_ref(&rec)).await?;
        tx.commit().await?;
        Ok(rec)
    }

    /// Statistics over the persisted indicators that concern the reader's agency
    /// (docs/markings.md): those it ingested here, and those put on a notice to it. An
    /// indicator stored before the node recorded who ingested it (schema migration 20) counts
    /// for the node's agency when the node serves exactly one.
    pub async fn intel_stats(&self, p: &Principal, q: &StatsQuery) -> Result<Vec<StatsRow>> {
        require(p.role.may_read_statistics(), "reading clean-up statistics", p)?;
        let code = self.partner_of(p).await?;
        let local = self.store.agency_is_local(p.agency).await?;
        let only_local = local && {
            let all = self.store.agencies(&Default::default()).await?;
            all.iter().filter(|(_, node)| node.is_none()).count() == 1
        };
        let state = self.store.intel_load().await?;
        let concerns = |i: &&liaison_intel::Indicator| {
            (local && (i.ingested_by(&code) || (only_local && i.ingested_by.is_none())))
                || (i.first_notified.is_some() && i.partner.as_ref().is_some_and(|pt| pt.as_str() == code))
        };
        Ok(indicator_stats(state.indicators.iter().filter(concerns), q))
    }

    /// Statistics over every indicator of the node: [`Node::intel_stats`] without a principal
    /// (demo).
    pub async fn intel_stats_trusted(&self, q: &StatsQuery) -> Result<Vec<StatsRow>> {
        let state = self.store.intel_load().await?;
        Ok(indicator_stats(&state.indicators, q))
    }
}

pub(crate) fn apply(
    state: &mut CleanupState,
    partner: &PartnerId,
    item: Uuid,
    status: FeedbackStatus,
    note: Option<String>,
    at: UnixTime,
) -> Result<()> {
    state
        .apply_feedback(partner, item, status, at, note)
        .map_err(|e| match e {
            FeedbackError::UnknownItem(_) => ServiceError::NotFound(e.to_string()),
            FeedbackError::WrongPartner { .. } => ServiceError::Forbidden(e.to_string()),
        })
}

/// Parses an instant as feeds write it (`2026-10-01`, RFC 3339, Unix seconds).
/// Instants are kept to the millisecond, up to the last one other timestamps can hold
/// (9999-12-30T22:00:00Z); later ones would collapse into one stored value.
pub fn parse_instant(field: &str, s: &str) -> Result<UnixTime> {
    parse_timestamp(s.trim().as_bytes())
        .filter(|&t| t <= Timestamp::MAX.as_second())
        .ok_or_else(|| {
            ServiceError::invalid(
                field,
                format!("'{s}' is not a date or instant such as 2026-10-01 or 2026-10-01T12:00:00Z, up to 9999-12-30T22:00:00Z"),
            )
        })
}

/// Builds a statistics query from words (shared by the API and the CLI).
pub fn stats_query(
    by: &str,
    class: Option<&str>,
    victim_country: Option<&str>,
    country: Option<&str>,
    asn: Option<&str>,
    since: Option<&str>,
    until: Option<&str>,
) -> Result<StatsQuery> {
    let by: GroupBy = by.parse().map_err(|e: liaison_intel::model::UnknownWord| {
        ServiceError::invalid(
            "by",
            format!("{e}; accepted: country, victim-country, classification, asn, day, partner, malware"),
        )
    })?;
    let mut q = StatsQuery::by(by);
    q.class = class
        .map(|c| c.parse::<Classification>())
        .transpose()
        .map_err(|e| ServiceError::invalid("class", e.to_string()))?;
    let cc = |field: &str, v: Option<&str>| {
        v.map(CountryCode::parse)
            .transpose()
            .map_err(|_| ServiceError::invalid(field, format!("'{}' is not an ISO 3166 country code", v.unwrap_or(""))))
    };
    q.victim_country = cc("victim_country", victim_country)?;
    q.country = cc("country", country)?;
    q.asn = asn
        .map(|a| {
            liaison_intel::model::parse_asn(a)
                .ok_or_else(|| ServiceError::invalid("asn", format!("'{a}' is not an AS number")))
        })
        .transpose()?;
    q.since = since.map(|s| parse_instant("since", s)).transpose()?;
    q.until = until.map(|s| parse_instant("until", s)).transpose()?;
    Ok(q)
}
