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

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::ToSpan;

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
