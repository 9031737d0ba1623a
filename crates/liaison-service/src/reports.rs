//! Reports: cooperation statistics and the audit chain.

use crate::error::{Result, ServiceError};
use crate::node::{Node, require};
use jiff::Timestamp;
use liaison_core::directory::Agency;
use liaison_core::record::{AuditReport, Principal};
use liaison_core::stats::{PairStats, cooperation};
use liaison_core::{AgencyId, Role};
use serde::Serialize;
use std::collections::HashMap;

/// How to group cooperation statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Agency,
    Jurisdiction,
}

impl std::str::FromStr for GroupBy {
    type Err = ServiceError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "agency" => Ok(GroupBy::Agency),
            "jurisdiction" => Ok(GroupBy::Jurisdiction),
            _ => Err(ServiceError::invalid(
                "by",
                format!("'{s}' is not agency or jurisdiction"),
            )),
        }
    }
}

/// A cooperation report for a period.
#[derive(Debug, Clone, Serialize)]
pub struct CooperationReport {
    pub from: Timestamp,
    pub to: Timestamp,
    pub by: &'static str,
    pub pairs: Vec<PairStats>,
}

/// The cooperation report's charts (the web page draws them).
#[derive(Debug, Clone, Serialize)]
pub struct CooperationCharts {
    /// The months of the period, `YYYY-MM`, oldest first.
    pub months: Vec<String>,
    pub trend: Vec<liaison_core::stats::Trend>,
    pub ageing: Vec<liaison_core::stats::Ageing>,
}

fn report(
    rows: &[liaison_core::stats::StatsRow],
    from: Timestamp,
    to: Timestamp,
    by: GroupBy,
    now: Timestamp,
    key: impl Fn(AgencyId) -> String,
) -> CooperationReport {
    CooperationReport {
        from,
        to,
        by: if by == GroupBy::Agency {
            "agency"
        } else {
            "jurisdiction"
        },
        pairs: cooperation(rows, now, key),
    }
}

impl Node {
    /// Cooperation statistics for requests submitted in `[from, to)`.
    pub async fn cooperation(
        &self,
        p: &Principal,
        from: Timestamp,
        to: Timestamp,
        by: GroupBy,
        now: Timestamp,
    ) -> Result<CooperationReport> {
        let (rows, key) = self.stats_of(p, from, to, by).await?;
        Ok(report(&rows, from, to, by, now, &key))
    }

    /// [`Node::cooperation`] and the report's charts, from one read of the requests: each
    /// pair's median time to answer by month of sending, and its requests still open at `now`
    /// by age.
    pub async fn cooperation_with_charts(
        &self,
        p: &Principal,
        from: Timestamp,
        to: Timestamp,
        by: GroupBy,
        now: Timestamp,
    ) -> Result<(CooperationReport, CooperationCharts)> {
        let (rows, key) = self.stats_of(p, from, to, by).await?;
        let months = liaison_core::stats::months(from, to.min(now));
        let charts = CooperationCharts {
            trend: liaison_core::stats::trend(&rows, &months, &key),
            ageing: liaison_core::stats::ageing(&rows, now, &key),
            months,
        };
        Ok((report(&rows, from, to, by, now, &key), charts))
    }

    /// The statistics rows the reader may count (their own agency's, all for an administrator)
    /// and the grouping key.
    async fn stats_of(
        &self,
        p: &Principal,
        from: Timestamp,
        to: Timestamp,
        by: GroupBy,
    ) -> Result<(Vec<liaison_core::stats::StatsRow>, impl Fn(AgencyId) -> String + use<>)> {
        require(p.role.may_read_statistics(), "reading statistics", p)?;
        if to <= from {
            return Err(ServiceError::invalid("to", "must be after from"));
        }
        let mut rows = self.store.stats_rows(from, to).await?;
        if p.role != Role::Admin {
            rows.retain(|r| r.requesting == p.agency || r.requested == p.agency);
        }
        let agencies: HashMap<AgencyId, Agency> = self
            .store
            .agencies(&Default::default())
            .await?
            .into_iter()
            .map(|(a, _)| (a.id, a))
            .collect();
        let key = move |id: AgencyId| match agencies.get(&id) {
            Some(a) => match by {
                GroupBy::Agency => a.code.clone(),
                GroupBy::Jurisdiction => a.jurisdiction.to_string(),
            },
            None => id.to_string(),
        };
        Ok((rows, key))
    }

    /// Recomputes the audit chain.
    pub async fn verify_audit(&self, p: &Principal) -> Result<AuditReport> {
        require(p.role.may_audit(), "verifying the audit log", p)?;
        Ok(self.store.verify_audit().await?)
    }
}
