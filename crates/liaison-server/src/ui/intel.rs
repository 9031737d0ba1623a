//! The clean-up page (`/intel`): time-to-remediation for the viewer's scope, and the notices
//! other nodes issued for the viewer's agency with a per-item answer form (`/intel/answer`).
//! What a viewer sees and may answer is decided by the use cases (`Node::intel_inbox`,
//! `Node::intel_inbox_answer`, `Node::intel_remediation`).

use super::html::{Banner, Layout, filters, render};
use super::{Form, Session, Ui, redirect, service_banner};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State as AxState};
use axum::http::StatusCode;
use axum::response::Response;
use jiff::Timestamp;
use liaison_core::Role;
use liaison_intel::FeedbackStatus;
use liaison_service::notices::{RemediationRow, answer_word};

/// The clean-up page.
#[derive(Template)]
#[template(path = "intel.html")]
struct IntelPage<'a> {
    layout: Layout<'a>,
    remediation: Vec<RemRow>,
    notices: Vec<InNotice>,
    /// Whether the viewer may answer (any role that reads requests, except auditors).
    may_answer: bool,
    /// Whether the viewer may read incoming notices at all.
    reads_inbox: bool,
    /// Whether the viewer reads what the agency issued (analysts, supervisors, auditors, admins).
    reads_issued: bool,
    /// The notices the viewer's agency issued, newest first, with the partners' answers.
    issued: Vec<OutNotice>,
    /// The agency's indicators by classification: (classification, indicators, sightings, victims).
    indicators: Vec<(String, String, String, String)>,
}

/// How many issued notices the page shows, and how many items of each.
const ISSUED_SHOWN: usize = 20;
const ITEMS_SHOWN: usize = 100;

struct OutNotice {
    id: String,
    partner: String,
    issued: String,
    period: String,
    tlp: String,
    tlp_class: &'static str,
    pap: String,
    pap_class: &'static str,
    /// "12 items, 5 answered".
    summary: String,
    items: Vec<OutItem>,
    /// Items not shown (beyond [`ITEMS_SHOWN`]).
    more: usize,
}

struct OutItem {
    kind: String,
    value: String,
    class: String,
    status: String,
    answer: String,
    answered: String,
    note: String,
}

struct RemRow {
    partner: String,
    class: String,
    counts: Vec<String>,
}

struct InNotice {
    id: String,
    issuer: String,
    sender: String,
    tlp: String,
    /// The TLP badge's CSS class (`tlp-amber`, …).
    tlp_class: &'static str,
    /// The PAP badge's CSS class (`pap-amber`, …); empty when not stated.
    pap_class: &'static str,
    /// `PAP:…` and what it permits, in the viewer's language; empty label when not stated.
    pap: String,
    pap_meaning: String,
    period: String,
    items: Vec<InItem>,
}

struct InItem {
    id: String,
    kind: String,
    value: String,
    class: String,
    tlp: String,
    /// Localized item status; `reappeared` items are marked.
    status: String,
    reappeared: bool,
    answer: String,
    note: String,
}

fn day(t: i64) -> String {
    Timestamp::from_second(t)
        .map(|t| t.strftime("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// A time to remediate as people say it ("2 d 3 h", "2天3小时"); "—" when there is none.
fn ttr(l: super::i18n::Lang, secs: Option<f64>) -> String {
    secs.filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| liaison_service::work::duration_words((s * 1000.0) as u64, l == super::i18n::Lang::Zh))
        .unwrap_or_else(|| "—".into())
}

fn rem_row(l: super::i18n::Lang, r: &RemediationRow) -> RemRow {
    RemRow {
        partner: r.partner.clone(),
        class: l.word("class", &r.classification),
        counts: vec![
            r.notified.to_string(),
            r.remediated.to_string(),
            r.reappeared.to_string(),
            r.not_found.to_string(),
            r.disputed.to_string(),
            r.false_positive.to_string(),
            ttr(l, r.median_ttr_secs.map(|s| s as f64)),
            ttr(l, r.mean_ttr_secs),
        ],
    }
}

async fn render_page(ui: &Ui, s: &Session, status: StatusCode, mut banners: Vec<Banner>) -> Response {
    let l = s.ctx.lang;
    let remediation = match ui.node.intel_remediation(&s.p).await {
        Ok(r) => r.rows.iter().map(|r| rem_row(l, r)).collect(),
        Err(e) => {
            banners.push(service_banner(l, &e).1);
            Vec::new()
        }
    };
    let reads_inbox = s.p.role.may_read_requests();
    let notices = if reads_inbox {
        match ui.node.intel_inbox(&s.p).await {
            Ok(ns) => ns
                .into_iter()
                .map(|n| InNotice {
                    id: n.id.to_string(),
                    issuer: n.issuer,
                    sender: n.sender,
                    tlp: n.tlp.as_str().to_string(),
                    tlp_class: super::pages::marking_class(n.tlp),
                    pap_class: n.pap.map(pap_class).unwrap_or(""),
                    pap: n.pap.map(|p| p.as_str().to_string()).unwrap_or_default(),
                    pap_meaning: match n.pap {
                        Some(p) => l
                            .t(&format!("intel.pap_{}", p.as_str()[4..].to_ascii_lowercase()))
                            .to_string(),
                        None => l.t("intel.pap_unstated").to_string(),
                    },
                    period: format!("{} – {}", day(n.interval.start), day(n.interval.end)),
                    items: n
                        .items
                        .into_iter()
                        .map(|i| InItem {
                            id: i.item_id.to_string(),
                            reappeared: i.is_reappearance(),
                            status: l.t(&format!("intel.item_{}", i.status.replace('-', "_"))).to_string(),
                            kind: i.kind,
                            value: i.value,
                            class: l.word("class", &i.classification),
                            tlp: i.tlp.as_str().to_string(),
                            answer: i
                                .answer
                                .map(|a| {
                                    l.t(&format!("intel.answer_{}", answer_word(a).replace('-', "_")))
                                        .to_string()
                                })
                                .unwrap_or_default(),
                            note: i.note.unwrap_or_default(),
                        })
                        .collect(),
                })
                .collect(),
            Err(e) => {
                banners.push(service_banner(l, &e).1);
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    let reads_issued =
        s.p.role.may_read_statistics() || matches!(s.p.role, Role::Analyst | Role::Supervisor | Role::Admin);
    let (issued, indicators) = if reads_issued {
        let issued = match ui.node.intel_issued(&s.p, ISSUED_SHOWN).await {
            Ok(list) => list.into_iter().map(|n| out_notice(l, &s.zone, n)).collect(),
            Err(e) => {
                banners.push(service_banner(l, &e).1);
                Vec::new()
            }
        };
        let q = liaison_intel::stats::StatsQuery::by(liaison_intel::stats::GroupBy::Classification);
        let indicators = match ui.node.intel_stats(&s.p, &q).await {
            Ok(rows) => rows
                .into_iter()
                .map(|r| {
                    (
                        l.word("class", &r.key),
                        r.indicators.to_string(),
                        r.sightings.to_string(),
                        r.victims.to_string(),
                    )
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        (issued, indicators)
    } else {
        (Vec::new(), Vec::new())
    };
    let page = IntelPage {
        layout: s.layout(l.t("intel.title"), banners),
        remediation,
        notices,
        may_answer: reads_inbox && s.p.role != Role::Auditor,
        reads_inbox,
        reads_issued,
        issued,
        indicators,
    };
    render(status, &page)
}

/// The CSS class of a PAP badge.
fn pap_class(p: liaison_core::Pap) -> &'static str {
    match p {
        liaison_core::Pap::Red => "pap-red",
        liaison_core::Pap::Amber => "pap-amber",
        liaison_core::Pap::Green => "pap-green",
        liaison_core::Pap::Clear => "pap-clear",
    }
}

fn out_notice(l: super::i18n::Lang, zone: &jiff::tz::TimeZone, n: liaison_service::notices::IssuedNotice) -> OutNotice {
    let stored = n.notice;
    let notice = stored.notice;
    let total = notice.items.len();
    let answered = notice
        .items
        .iter()
        .filter(|i| n.answers.contains_key(&i.item_id))
        .count();
    let items = notice
        .items
        .iter()
        .take(ITEMS_SHOWN)
        .map(|i| {
            let status = match i.status {
                liaison_intel::ItemStatus::New => "intel.item_new",
                liaison_intel::ItemStatus::StillActive => "intel.item_still_active",
                liaison_intel::ItemStatus::Reappeared => "intel.item_reappeared",
            };
            let (answer, answered, note) = match n.answers.get(&i.item_id) {
                Some((word, at, note)) => (
                    l.t(&format!("intel.answer_{}", word.replace('-', "_"))).to_string(),
                    Timestamp::from_second(*at)
                        .map(|t| super::pages::local(t, zone))
                        .unwrap_or_default(),
                    note.clone().unwrap_or_default(),
                ),
                None => (l.t("intel.no_answer").to_string(), String::new(), String::new()),
            };
            OutItem {
                kind: i.kind.as_str().to_string(),
                value: i.value.clone(),
                class: l.word("class", i.classification.as_str()),
                status: l.t(status).to_string(),
                answer,
                answered,
                note,
            }
        })
        .collect();
    OutNotice {
        id: notice.id.0.to_string(),
        partner: notice.partner.as_str().to_string(),
        issued: Timestamp::from_second(stored.issued_at)
            .map(|t| super::pages::local(t, zone))
            .unwrap_or_default(),
        period: format!("{} – {}", day(notice.interval.start), day(notice.interval.end)),
        tlp: notice.tlp.as_str().to_string(),
        tlp_class: super::pages::marking_class(notice.tlp),
        pap: notice.pap.as_str().to_string(),
        pap_class: pap_class(notice.pap),
        summary: l
            .t("intel.issued_summary")
            .replacen("{}", &total.to_string(), 1)
            .replacen("{}", &answered.to_string(), 1),
        items,
        more: total.saturating_sub(ITEMS_SHOWN),
    }
}

/// `GET /intel`.
pub async fn page(AxState(ui): AxState<Ui>, mut s: Session, RawQuery(raw): RawQuery) -> Response {
    s.ctx.here = "/intel".into();
    let q = Form::query(raw.as_deref());
    let mut banners = Vec::new();
    if q.get("answered").is_some() {
        banners.push(Banner::ok(s.ctx.lang.t("intel.answered")));
    }
    render_page(&ui, &s, StatusCode::OK, banners).await
}

/// `POST /intel/answer`: one item's answer (fields `item`, `status`, `note`).
pub async fn answer(AxState(ui): AxState<Ui>, mut s: Session, body: Bytes) -> Response {
    s.ctx.here = "/intel".into();
    let form = Form::parse(&body);
    if !s.csrf_ok(&ui, &form) {
        return s.csrf_rejected();
    }
    let l = s.ctx.lang;
    let item = match form.get("item").unwrap_or("").parse::<uuid::Uuid>() {
        Ok(i) => i,
        Err(_) => {
            let e = liaison_service::ServiceError::invalid("item", "not a notice item id");
            let (st, b) = service_banner(l, &e);
            return render_page(&ui, &s, st, vec![b]).await;
        }
    };
    let status = match form.get("status").unwrap_or("").parse::<FeedbackStatus>() {
        Ok(st) => st,
        Err(e) => {
            let e = liaison_service::ServiceError::invalid("status", e.to_string());
            let (st, b) = service_banner(l, &e);
            return render_page(&ui, &s, st, vec![b]).await;
        }
    };
    let note = form.get("note").map(str::to_string);
    match ui
        .node
        .intel_inbox_answer(&s.p, item, status, note, Timestamp::now())
        .await
    {
        Ok(_) => redirect("/intel?answered=1"),
        Err(e) => {
            let (st, b) = service_banner(l, &e);
            render_page(&ui, &s, st, vec![b]).await
        }
    }
}
