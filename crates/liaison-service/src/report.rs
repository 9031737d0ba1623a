//! Renderings of reports shared by the API and the CLI.

use crate::reports::CooperationReport;
use std::fmt::Write as _;

fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x}")).unwrap_or_default()
}

pub(crate) fn csv_field(s: &str) -> String {
    let s = liaison_core::spreadsheet_safe(s);
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The cooperation report as CSV (RFC 4180), one line per ordered pair.
pub fn cooperation_csv(r: &CooperationReport) -> String {
    let mut out = String::from(
        "requesting,requested,sent,acknowledged,answered,refused,withdrawn,pending,overdue,answer_rate_pct,median_hours_to_acknowledge,p90_hours_to_acknowledge,median_days_to_answer,p90_days_to_answer\n",
    );
    for p in &r.pairs {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            csv_field(&p.requesting),
            csv_field(&p.requested),
            p.sent,
            p.acknowledged,
            p.answered,
            p.refused,
            p.withdrawn,
            p.pending,
            p.overdue,
            opt(p.answer_rate),
            opt(p.median_hours_to_acknowledge),
            opt(p.p90_hours_to_acknowledge),
            opt(p.median_days_to_answer),
            opt(p.p90_days_to_answer)
        );
    }
    out
}
