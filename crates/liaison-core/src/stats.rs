//! Cooperation statistics: who answers whom, and how fast.
//!
//! For each ordered pair (requesting → requested) the report counts what was sent and what
//! became of it, with median and 90th-percentile times to acknowledge and to answer. The
//! input is one row per submitted request; grouping by agency or by jurisdiction is a key
//! function supplied by the caller.

use crate::ids::AgencyId;
use crate::lifecycle::State;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One submitted request, as statistics need it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsRow {
    pub requesting: AgencyId,
    pub requested: AgencyId,
    pub state: State,
    pub submitted_at: jiff::Timestamp,
    pub acknowledged_at: Option<jiff::Timestamp>,
    pub answered_at: Option<jiff::Timestamp>,
    pub ack_due: Option<jiff::Timestamp>,
    pub answer_due: Option<jiff::Timestamp>,
}

/// Figures for one ordered pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairStats {
    pub requesting: String,
    pub requested: String,
    pub sent: u64,
    pub acknowledged: u64,
    pub answered: u64,
    pub refused: u64,
    pub withdrawn: u64,
    pub pending: u64,
    pub overdue: u64,
    /// answered / (sent − withdrawn), in percent.
    pub answer_rate: Option<f64>,
    pub median_hours_to_acknowledge: Option<f64>,
    pub p90_hours_to_acknowledge: Option<f64>,
    pub median_days_to_answer: Option<f64>,
    pub p90_days_to_answer: Option<f64>,
}

/// Nearest-rank percentile of sorted values (`q` in 0..=1).
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank.min(sorted.len()) - 1).copied()
}

fn hours(a: jiff::Timestamp, b: jiff::Timestamp) -> f64 {
    (b.as_millisecond() - a.as_millisecond()) as f64 / 3_600_000.0
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Whether the request's running deadline had passed at `now` without the awaited step.
pub fn is_overdue(r: &StatsRow, now: jiff::Timestamp) -> bool {
    match r.state {
        State::Submitted | State::Received => r.ack_due.is_some_and(|d| d < now),
        s if s.is_pending() => r.answer_due.is_some_and(|d| d < now),
        _ => false,
    }
}

/// Computes statistics per ordered pair of keys; `key` maps an agency to the grouping label
/// (its code, or its jurisdiction). Pairs are returned sorted by (requesting, requested).
pub fn cooperation(rows: &[StatsRow], now: jiff::Timestamp, key: impl Fn(AgencyId) -> String) -> Vec<PairStats> {
    #[derive(Default)]
    struct Acc {
        sent: u64,
        ack: u64,
        answered: u64,
        refused: u64,
        withdrawn: u64,
        pending: u64,
        overdue: u64,
        ack_h: Vec<f64>,
        ans_d: Vec<f64>,
    }
    let mut groups: BTreeMap<(String, String), Acc> = BTreeMap::new();
    for r in rows {
        let a = groups.entry((key(r.requesting), key(r.requested))).or_default();
        a.sent += 1;
        if let Some(t) = r.acknowledged_at {
            a.ack += 1;
            a.ack_h.push(hours(r.submitted_at, t));
        }
        if r.state.counts_as_answered() {
            a.answered += 1;
            if let Some(t) = r.answered_at {
                a.ans_d.push(hours(r.submitted_at, t) / 24.0);
            }
        }
        match r.state {
            State::Refused => a.refused += 1,
            State::Withdrawn => a.withdrawn += 1,
            s if s.is_pending() => a.pending += 1,
            _ => {}
        }
        if is_overdue(r, now) {
            a.overdue += 1;
        }
    }
    groups
        .into_iter()
        .map(|((requesting, requested), mut a)| {
            a.ack_h.sort_by(f64::total_cmp);
            a.ans_d.sort_by(f64::total_cmp);
            let base = a.sent - a.withdrawn;
            PairStats {
                requesting,
                requested,
                sent: a.sent,
                acknowledged: a.ack,
                answered: a.answered,
                refused: a.refused,
                withdrawn: a.withdrawn,
                pending: a.pending,
                overdue: a.overdue,
                answer_rate: (base > 0).then(|| round1(100.0 * a.answered as f64 / base as f64)),
                median_hours_to_acknowledge: percentile(&a.ack_h, 0.5).map(round1),
                p90_hours_to_acknowledge: percentile(&a.ack_h, 0.9).map(round1),
                median_days_to_answer: percentile(&a.ans_d, 0.5).map(round1),
                p90_days_to_answer: percentile(&a.ans_d, 0.9).map(round1),
            }
        })
        .collect()
}

/// One point of a time-to-answer trend: the requests a partner was sent in one calendar month
/// (UTC) and answered, with the median days they took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendPoint {
    /// The month, `2026-03`.
    pub month: String,
    /// Requests submitted that month that were answered.
    pub answered: u64,
    pub median_days_to_answer: Option<f64>,
}

/// The monthly time-to-answer of one ordered pair, oldest month first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trend {
    pub requesting: String,
    pub requested: String,
    /// How many requests the pair has in all (for picking the busiest pairs to draw).
    pub sent: u64,
    /// One point per month of `months`, in order (no answer that month: `None` median).
    pub points: Vec<TrendPoint>,
}

/// The calendar months (UTC, `YYYY-MM`) from `from` to `to`, both included.
pub fn months(from: jiff::Timestamp, to: jiff::Timestamp) -> Vec<String> {
    let utc = jiff::tz::TimeZone::UTC;
    let (a, b) = (from.to_zoned(utc.clone()).date(), to.to_zoned(utc).date());
    let mut out = Vec::new();
    let (mut y, mut m) = (a.year(), a.month());
    while (y, m) <= (b.year(), b.month()) && out.len() < 1200 {
        out.push(format!("{y:04}-{m:02}"));
        if m == 12 {
            y += 1;
            m = 1;
        } else {
            m += 1;
        }
    }
    out
}

fn month_of(t: jiff::Timestamp) -> String {
    t.to_zoned(jiff::tz::TimeZone::UTC).strftime("%Y-%m").to_string()
}

/// The median time to answer per pair and month of submission, over `months` (see
/// [`months`]); a request answered counts in the month it was sent.
pub fn trend(rows: &[StatsRow], months: &[String], key: impl Fn(AgencyId) -> String) -> Vec<Trend> {
    /// Per pair: requests sent, and the days to answer by month of sending.
    type ByMonth = (u64, BTreeMap<String, Vec<f64>>);
    let mut groups: BTreeMap<(String, String), ByMonth> = BTreeMap::new();
    for r in rows {
        let g = groups.entry((key(r.requesting), key(r.requested))).or_default();
        g.0 += 1;
        if r.state.counts_as_answered()
            && let Some(t) = r.answered_at
        {
            g.1.entry(month_of(r.submitted_at))
                .or_default()
                .push(hours(r.submitted_at, t) / 24.0);
        }
    }
    groups
        .into_iter()
        .map(|((requesting, requested), (sent, mut by_month))| Trend {
            requesting,
            requested,
            sent,
            points: months
                .iter()
                .map(|m| {
                    let mut days = by_month.remove(m).unwrap_or_default();
                    days.sort_by(f64::total_cmp);
                    TrendPoint {
                        month: m.clone(),
                        answered: days.len() as u64,
                        median_days_to_answer: percentile(&days, 0.5).map(round1),
                    }
                })
                .collect(),
        })
        .collect()
}

/// The age bands of open requests, in days since they were sent: under 7, 7–30, 30–90,
/// 90–180, and 180 or more.
pub const AGE_BANDS: [(u32, Option<u32>); 5] = [
    (0, Some(7)),
    (7, Some(30)),
    (30, Some(90)),
    (90, Some(180)),
    (180, None),
];

/// The requests of one ordered pair still waiting for the requested side (sent, not yet
/// answered, refused, withdrawn or closed), by age band ([`AGE_BANDS`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ageing {
    pub requesting: String,
    pub requested: String,
    /// Open requests in each band of [`AGE_BANDS`].
    pub bands: [u64; 5],
    /// Of them, past their running deadline.
    pub overdue: u64,
}

/// Open requests by pair and age at `now`; pairs without an open request are left out.
pub fn ageing(rows: &[StatsRow], now: jiff::Timestamp, key: impl Fn(AgencyId) -> String) -> Vec<Ageing> {
    let mut groups: BTreeMap<(String, String), ([u64; 5], u64)> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.state.is_pending()) {
        let days = hours(r.submitted_at, now) / 24.0;
        let band = AGE_BANDS
            .iter()
            .position(|(_, upto)| upto.is_none_or(|u| days < f64::from(u)))
            .unwrap_or(AGE_BANDS.len() - 1);
        let g = groups.entry((key(r.requesting), key(r.requested))).or_default();
        if let Some(b) = g.0.get_mut(band) {
            *b += 1;
        }
        if is_overdue(r, now) {
            g.1 += 1;
        }
    }
    groups
        .into_iter()
        .map(|((requesting, requested), (bands, overdue))| Ageing {
            requesting,
            requested,
            bands,
            overdue,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::ToSpan;

    #[test]
    fn trend_by_month_of_sending_and_ageing_by_band() {
        let (a, b) = (AgencyId::new(), AgencyId::new());
        let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        let row = |state, sent: &str, answered: Option<&str>| StatsRow {
            requesting: a,
            requested: b,
            state,
            submitted_at: at(sent),
            acknowledged_at: None,
            answered_at: answered.map(at),
            ack_due: Some(at(sent) + 24.hours()),
            answer_due: Some(at(sent) + 240.hours()),
        };
        let rows = vec![
            row(State::Answered, "2026-01-05T00:00:00Z", Some("2026-01-15T00:00:00Z")),
            row(State::Closed, "2026-01-20T00:00:00Z", Some("2026-03-01T00:00:00Z")),
            row(State::Answered, "2026-03-02T00:00:00Z", Some("2026-03-04T00:00:00Z")),
            row(State::Received, "2026-03-25T00:00:00Z", None),
            row(State::Acknowledged, "2025-06-01T00:00:00Z", None),
            row(State::Refused, "2026-02-01T00:00:00Z", None),
        ];
        let ms = months(at("2026-01-10T00:00:00Z"), at("2026-03-31T00:00:00Z"));
        assert_eq!(ms, ["2026-01", "2026-02", "2026-03"]);
        let key = |id: AgencyId| if id == a { "US".to_string() } else { "CN".to_string() };
        let t = trend(&rows, &ms, key);
        assert_eq!(t.len(), 1);
        let meds: Vec<Option<f64>> = t[0].points.iter().map(|p| p.median_days_to_answer).collect();
        // January: 10 and 40 days (nearest-rank median: 10); none in February; March: 2.
        assert_eq!(meds, [Some(10.0), None, Some(2.0)]);
        assert_eq!(t[0].points[0].answered, 2);
        let g = ageing(&rows, at("2026-04-01T00:00:00Z"), key);
        // Open: 7 days old (the second band) and 304 days old (the last); both overdue.
        assert_eq!(g[0].bands, [0, 1, 0, 0, 1]);
        assert_eq!(g[0].overdue, 2);
        assert_eq!(
            months(at("2025-12-31T23:00:00Z"), at("2026-01-01T00:00:00Z")),
            ["2025-12", "2026-01"]
        );
    }

    fn t0() -> jiff::Timestamp {
        "2025-01-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), Some(5.0));
        assert_eq!(percentile(&v, 0.9), Some(9.0));
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[3.0], 0.9), Some(3.0));
    }

    #[test]
    fn counts_answers_refusals_and_overdue_per_pair() {
        let (a, b) = (AgencyId::new(), AgencyId::new());
        let row = |state, ack: Option<i64>, ans: Option<i64>| StatsRow {
            requesting: a,
            requested: b,
            state,
            submitted_at: t0(),
            acknowledged_at: ack.map(|h| t0() + h.hours()),
            answered_at: ans.map(|h| t0() + h.hours()),
            ack_due: Some(t0() + 24.hours()),
            answer_due: Some(t0() + 240.hours()),
        };
        let rows = vec![
            row(State::Answered, Some(2), Some(48)),
            row(State::Closed, Some(4), Some(96)),
            row(State::Refused, Some(10), None),
            row(State::Submitted, None, None),
            row(State::Withdrawn, None, None),
        ];
        let now = t0() + 48.hours();
        let s = cooperation(&rows, now, |id| if id == a { "US".into() } else { "CN".into() });
        assert_eq!(s.len(), 1);
        let p = &s[0];
        assert_eq!((p.requesting.as_str(), p.requested.as_str()), ("US", "CN"));
        assert_eq!(
            (
                p.sent,
                p.acknowledged,
                p.answered,
                p.refused,
                p.withdrawn,
                p.pending,
                p.overdue
            ),
            (5, 3, 2, 1, 1, 1, 1)
        );
        assert_eq!(p.answer_rate, Some(50.0));
        assert_eq!(p.median_hours_to_acknowledge, Some(4.0));
        assert_eq!(p.median_days_to_answer, Some(2.0));
        assert_eq!(p.p90_days_to_answer, Some(4.0));
    }
}
