//! The page handlers: each parses its input, calls one or two [`Node`] use cases and renders
//! the result or a banner naming what went wrong. No decisions are made here. Each page is a
//! template in `templates/` (`login.html`, `list.html`, …) filled with the plain data below.

use super::html::{Banner, Due, Labelled, Layout, LocalTime, Opt, StateBadge, filters, options, render, url_enc};
use super::i18n::Lang;
use super::{Ctx, Form, LANG_COOKIE, Session, Ui, redirect, service_banner, set_cookie};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as AxState};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use liaison_core::directory::{Agency, time_zone};
use liaison_core::lifecycle::{Needs, RULES, RefusalReason, State, TransitionInput};
use liaison_core::request::{FieldError, TargetValue};
use liaison_core::{AgencyId, Marking, RequestId, RequestKind, Tlp};
use liaison_service::{GroupBy, ServiceError};
use liaison_service::{Principal, RequestFilter, StoredRequest};
use std::collections::HashMap;

// ----- helpers -------------------------------------------------------------------------------

pub(crate) fn utc(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// A time as the reader reads it: in their zone (their preference, else their agency's:
/// `Session::zone`), the zone named by its offset from UTC (`2026-12-07 20:56 UTC+8`).
pub(crate) fn local(ts: Timestamp, tz: &TimeZone) -> String {
    let z = ts.to_zoned(tz.clone());
    let secs = z.offset().seconds();
    let sign = if secs < 0 { '−' } else { '+' };
    let (h, m) = (secs.abs() / 3600, secs.abs() % 3600 / 60);
    let off = match (secs, m) {
        (0, _) => String::new(),
        (_, 0) => format!("{sign}{h}"),
        _ => format!("{sign}{h}:{m:02}"),
    };
    format!("{} UTC{off}", z.strftime("%Y-%m-%d %H:%M"))
}

/// A deadline in the reader's zone, and below it the requested agency's local time (where
/// that zone is another).
fn due(ts: Option<Timestamp>, reader: &TimeZone, zone: Option<&(TimeZone, String)>) -> Due {
    match (ts, zone) {
        (None, _) => Due {
            at: "—".into(),
            local: None,
        },
        (Some(t), Some((tz, name))) if tz != reader => Due {
            at: local(t, reader),
            local: Some(LocalTime {
                time: t.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M %Z").to_string(),
                zone: name.clone(),
            }),
        },
        (Some(t), _) => Due {
            at: local(t, reader),
            local: None,
        },
    }
}

pub(crate) async fn agencies(
    ui: &Ui,
    p: &Principal,
) -> Result<HashMap<AgencyId, (Agency, Option<String>)>, ServiceError> {
    Ok(ui
        .node
        .agencies(p)
        .await?
        .into_iter()
        .map(|(a, n)| (a.id, (a, n)))
        .collect())
}

pub(crate) fn code_of(map: &HashMap<AgencyId, (Agency, Option<String>)>, id: AgencyId) -> String {
    map.get(&id)
        .map(|(a, _)| a.code.clone())
        .unwrap_or_else(|| id.to_string())
}

/// An agency as a reader names it: its code, then its name in the reader's language first and
/// the English or native one after. A Chinese reader gets the name set for Chinese pages, else
/// the native name when it is written in Chinese; an English reader the English name first.
pub(crate) fn agency_name(a: &Agency, l: Lang) -> String {
    let native = !a.name_native.is_empty() && a.name_native != a.name_en;
    let chinese = a.name_native.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
    if l == Lang::Zh && !a.name_zh.is_empty() {
        return format!("{} — {}（{}）", a.code, a.name_zh, a.name_en);
    }
    match (native, l == Lang::Zh && chinese) {
        (true, true) => format!("{} — {}（{}）", a.code, a.name_native, a.name_en),
        (true, false) => format!("{} — {} ({})", a.code, a.name_en, a.name_native),
        (false, _) => format!("{} — {}", a.code, a.name_en),
    }
}

fn zone_of(a: Option<&Agency>) -> Option<(TimeZone, String)> {
    a.and_then(|a| time_zone(&a.time_zone).ok().map(|z| (z, a.time_zone.clone())))
}

pub(crate) fn badge_state(lang: Lang, s: State) -> StateBadge {
    StateBadge {
        code: s.as_str(),
        label: lang.word("state", s.as_str()),
    }
}

fn offence_label(ui: &Ui, lang: Lang, code: &str) -> String {
    match ui.node.legal.packs().taxonomy().get(code) {
        Some(o) => match lang {
            Lang::En => format!("{code} — {} ({})", o.name_en, o.name_zh),
            Lang::Zh => format!("{code} — {}（{}）", o.name_zh, o.name_en),
        },
        None => code.to_string(),
    }
}

pub(crate) fn bad_form(s: &Session) -> Response {
    s.csrf_rejected()
}

// ----- sign-in, sign-out, language -----------------------------------------------------------

pub async fn home(ctx: Ctx) -> Response {
    if ctx.token.is_some() {
        redirect("/home")
    } else {
        redirect("/login")
    }
}

/// Whether `b` is a path on this site to send the browser back to: one leading `/`, and only
/// visible ASCII without `\` (browsers drop tabs and line breaks from a URL, so `/\t/host`
/// would become `//host`, another site).
fn is_local_path(b: &str) -> bool {
    b.starts_with('/')
        && !b.starts_with("//")
        && !b.starts_with("/lang")
        && b.chars().all(|c| c.is_ascii_graphic() && c != '\\')
}

pub async fn set_lang(ctx: Ctx, RawQuery(q): RawQuery) -> Response {
    let q = Form::query(q.as_deref());
    let lang = q.get("to").and_then(Lang::parse).unwrap_or(ctx.lang);
    let back = q.get("back").filter(|b| is_local_path(b)).unwrap_or("/requests");
    let mut r = redirect(back);
    let secure = if ctx.https { "; Secure" } else { "" };
    set_cookie(
        &mut r,
        &format!(
            "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax{secure}",
            lang.code()
        ),
    );
    r
}

// ----- request list --------------------------------------------------------------------------

/// The list's queue and filters from its query string (the page and its CSV alike).
pub(crate) async fn list_filter(
    ui: &Ui,
    s: &Session,
    raw: Option<&str>,
) -> Result<(liaison_service::work::Queue, RequestFilter), ServiceError> {
    let q = Form::query(raw);
    let mut errors = Vec::new();
    let mut f = RequestFilter {
        limit: 50,
        ..Default::default()
    };
    let mut field = |name: &str, message: String| {
        errors.push(FieldError {
            field: name.into(),
            message,
        })
    };
    if let Some(v) = q.get("state").filter(|v| !v.is_empty()) {
        match v.parse::<State>() {
            Ok(st) => f.states.push(st),
            Err(e) => field("state", e.to_string()),
        }
    }
    if let Some(v) = q.get("kind").filter(|v| !v.is_empty()) {
        match v.parse::<RequestKind>() {
            Ok(k) => f.kind = Some(k),
            Err(e) => field("kind", e.to_string()),
        }
    }
    let now = Timestamp::now();
    if q.get("overdue").is_some() {
        f.overdue_at = Some(now);
    }
    if let Some(v) = q.get("sort").filter(|v| !v.is_empty()) {
        match v.parse() {
            Ok(x) => f.sort = x,
            Err(e) => field("sort", e),
        }
    }
    let mut queue = liaison_service::work::Queue::All;
    if let Some(v) = q.get("queue").filter(|v| !v.is_empty()) {
        match v.parse() {
            Ok(x) => queue = x,
            Err(e) => field("queue", e),
        }
    }
    if let Some(c) = q.get("cursor") {
        let bad = format!("'{c}' is not a page cursor of this list");
        match f.sort {
            liaison_core::record::Sort::Newest => match c.parse::<RequestId>() {
                Ok(id) => f.before = Some(id),
                Err(_) => field("cursor", bad),
            },
            liaison_core::record::Sort::Oldest => match c.parse::<RequestId>() {
                Ok(id) => f.after = Some(id),
                Err(_) => field("cursor", bad),
            },
            liaison_core::record::Sort::Due => match liaison_core::record::parse_due_cursor(c) {
                Some(x) => f.after_due = Some(x),
                None => field("cursor", bad),
            },
        }
    }
    if let Some(v) = q.get("counterpart").filter(|v| !v.is_empty()) {
        match ui.node.agency_by_code(&s.p, "counterpart", v).await {
            Ok(a) => f.counterpart = Some(a.id),
            Err(ServiceError::Invalid(mut e)) => errors.append(&mut e),
            Err(e) => return Err(e),
        }
    }
    // One direction of a pair (a cell of the cooperation report's heat map).
    for (name, slot) in [("requesting", &mut f.requesting), ("requested", &mut f.requested)] {
        if let Some(v) = q.get(name).filter(|v| !v.is_empty()) {
            match ui.node.agency_by_code(&s.p, name, v).await {
                Ok(a) => *slot = Some(a.id),
                Err(ServiceError::Invalid(mut e)) => errors.append(&mut e),
                Err(e) => return Err(e),
            }
        }
    }
    if let Some(v) = q.get("owner").filter(|v| !v.trim().is_empty()) {
        match ui.node.colleague(&s.p, "owner", v).await {
            Ok(u) => f.owner = Some(u),
            Err(ServiceError::Invalid(mut e)) => errors.append(&mut e),
            Err(e) => return Err(e),
        }
    }
    // Search filters (docs/search.md): words, case reference, target.
    match ui
        .node
        .search_filters(
            &s.p,
            &mut f,
            q.get("q"),
            q.get("case_reference"),
            q.get("target"),
            q.get("target_kind"),
        )
        .await
    {
        Ok(()) => {}
        Err(ServiceError::Invalid(mut e)) => errors.append(&mut e),
        Err(e) => return Err(e),
    }
    if errors.is_empty() {
        Ok((queue, f))
    } else {
        Err(ServiceError::Invalid(errors))
    }
}

pub async fn list(AxState(ui): AxState<Ui>, s: Session, RawQuery(raw): RawQuery) -> Response {
    let l = s.ctx.lang;
    let q = Form::query(raw.as_deref());
    let now = Timestamp::now();
    let mut banners = Vec::new();
    let mut status = StatusCode::OK;
    let page = match list_filter(&ui, &s, raw.as_deref()).await {
        Ok((queue, f)) => match ui.node.queue(&s.p, queue, f, now).await {
            Ok(p) => Some(p),
            Err(e) => {
                let (st, b) = service_banner(l, &e);
                status = st;
                banners.push(b);
                None
            }
        },
        Err(e) => {
            let (st, b) = service_banner(l, &e);
            status = st;
            banners.push(b);
            None
        }
    };
    let map = match agencies(&ui, &s.p).await {
        Ok(m) => m,
        Err(e) => return s.error(&e),
    };
    // Operators (admins, auditors) learn here of messages from peers that were not applied.
    if s.p.role.may_audit()
        && let Ok(st) = ui.node.federation_status(&s.p).await
        && st.inbox_not_applied > 0
    {
        banners.push(Banner::info(
            &l.t("fed.not_applied").replace("{n}", &st.inbox_not_applied.to_string()),
        ));
    }

    // Filters.
    let (state, kind, queue, sort, counterpart, owner) = (
        q.get("state"),
        q.get("kind"),
        q.get("queue"),
        q.get("sort"),
        q.get("counterpart"),
        q.get("owner"),
    );
    let overdue = q.get("overdue").is_some();
    let any = l.t("list.any").to_string();
    let state_opts = std::iter::once(("", any.clone()))
        .chain(State::ALL.iter().map(|st| (st.as_str(), l.word("state", st.as_str()))));
    let kind_opts = std::iter::once(("", any.clone())).chain(
        RequestKind::ALL
            .iter()
            .map(|k| (k.as_str(), l.word("kind", k.as_str()))),
    );
    let mut codes: Vec<&str> = map
        .values()
        .filter(|(a, _)| a.id != s.p.agency)
        .map(|(a, _)| a.code.as_str())
        .collect();
    codes.sort_unstable();
    let counterpart_opts = options(
        std::iter::once(("", any)).chain(codes.iter().map(|c| (*c, c.to_string()))),
        &[counterpart.unwrap_or("")],
    );
    let sort_opts = options(
        ["newest", "oldest", "due"].map(|v| (v, l.t(&format!("list.sort_{v}")).to_string())),
        &[sort.unwrap_or("newest")],
    );
    let next = page.as_ref().and_then(|p| p.next.clone());
    let rows = page.map(|page| {
        page.items
            .iter()
            .map(|rq| {
                let zone = zone_of(map.get(&rq.requested_agency).map(|(a, _)| a));
                let running = liaison_service::work::running_due_of(rq);
                ListRow {
                    id: rq.id.to_string(),
                    reference: rq.reference.clone(),
                    case: if rq.case_reference.is_empty() {
                        "—".into()
                    } else {
                        rq.case_reference.clone()
                    },
                    from: code_of(&map, rq.requesting_agency),
                    to: code_of(&map, rq.requested_agency),
                    kind: l.word("kind", rq.kind.as_str()),
                    urgency: l.word("urgency", rq.urgency.as_str()),
                    state: badge_state(l, rq.state),
                    overdue: rq.overdue.map(|d| l.word("deadline", d.as_str())),
                    due_words: running
                        .map(|(k, d)| liaison_service::work::due_phrase(k, d, now, l.code()))
                        .unwrap_or_else(|| "—".into()),
                    due: due(running.map(|(_, d)| d), &s.zone, zone.as_ref()),
                    tlp: rq.marking.tlp.as_str(),
                    tlp_class: marking_class(rq.marking.tlp),
                }
            })
            .collect()
    });
    let keep: Vec<(&'static str, String)> = [
        ("queue", queue),
        ("sort", sort),
        ("state", state),
        ("kind", kind),
        ("counterpart", counterpart),
        ("requesting", q.get("requesting")),
        ("requested", q.get("requested")),
        ("owner", owner),
        ("overdue", overdue.then_some("1")),
        ("q", q.get("q")),
        ("case_reference", q.get("case_reference")),
        ("target", q.get("target")),
        ("target_kind", q.get("target_kind")),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (k, v.to_string())))
    .collect();
    let page = ListPage {
        layout: s.layout(l.t("list.title"), banners),
        queue_opts: super::work::queue_opts(l, queue.unwrap_or("all")),
        sort_opts,
        counterpart_opts,
        owner: owner.unwrap_or("").to_string(),
        text: q.get("q").unwrap_or("").to_string(),
        target: q.get("target").unwrap_or("").to_string(),
        state_opts: options(state_opts, &[state.unwrap_or("")]),
        kind_opts: options(kind_opts, &[kind.unwrap_or("")]),
        overdue,
        rows,
        keep,
        first: q.get("cursor").is_some(),
        next,
    };
    render(status, &page)
}

/// One request in the list.
struct ListRow {
    id: String,
    reference: String,
    case: String,
    from: String,
    to: String,
    kind: String,
    urgency: String,
    state: StateBadge,
    /// The deadline missed, if any.
    overdue: Option<String>,
    /// What is due and by how much, and when (UTC and local).
    due_words: String,
    due: Due,
    /// The request's TLP level and its badge's CSS class.
    tlp: &'static str,
    tlp_class: &'static str,
}

/// The request list with its filters and pager.
#[derive(Template)]
#[template(path = "list.html")]
struct ListPage<'a> {
    layout: Layout<'a>,
    queue_opts: Vec<Opt>,
    sort_opts: Vec<Opt>,
    counterpart_opts: Vec<Opt>,
    owner: String,
    /// The words and the target identifier filtering the list (docs/search.md).
    text: String,
    target: String,
    state_opts: Vec<Opt>,
    kind_opts: Vec<Opt>,
    overdue: bool,
    /// The requests found; `None` when the filters or the use case failed.
    rows: Option<Vec<ListRow>>,
    /// The filters the pager's and the CSV's links keep.
    keep: Vec<(&'static str, String)>,
    /// Whether to link to the first page (this is a later one). The pager is shown with `rows`.
    first: bool,
    /// The cursor of the next page, if there is one.
    next: Option<String>,
}

// ----- request detail ------------------------------------------------------------------------

pub async fn detail(AxState(ui): AxState<Ui>, s: Session, Path(id): Path<String>, RawQuery(raw): RawQuery) -> Response {
    let l = s.ctx.lang;
    let q = Form::query(raw.as_deref());
    let mut banners = Vec::new();
    if let Some(st) = q.get("moved").and_then(|v| v.parse::<State>().ok()) {
        banners.push(Banner::ok(&l.t1("detail.moved", &l.word("state", st.as_str()))));
    }
    if q.get("commented").is_some() {
        banners.push(Banner::ok(l.t("detail.commented")));
    }
    if q.get("reassessed").is_some() {
        banners.push(Banner::ok(l.t("detail.reassessed")));
    }
    if q.get("marked").is_some() {
        banners.push(Banner::ok(l.t("detail.marked")));
    }
    for (key, msg) in [("assigned", "detail.assigned"), ("converted", "detail.converted")] {
        if q.get(key).is_some() {
            banners.push(Banner::ok(l.t(msg)));
        }
    }
    match q.get("watching") {
        Some("1") => banners.push(Banner::ok(l.t("detail.watching_on"))),
        Some("0") => banners.push(Banner::ok(l.t("detail.watching_off"))),
        _ => {}
    }
    if q.get("uploaded").is_some() {
        banners.push(Banner::ok(l.t("detail.evidence_uploaded")));
    }
    render_detail(&ui, &s, &id, StatusCode::OK, banners).await
}

fn parse_id(id: &str) -> Result<RequestId, ServiceError> {
    id.parse()
        .map_err(|_| ServiceError::NotFound(format!("'{id}' is not a request id")))
}

/// [`render_detail`] for the other page modules (evidence uploads).
pub(crate) async fn render_detail_with(
    ui: &Ui,
    s: &Session,
    id: &str,
    status: StatusCode,
    banners: Vec<Banner>,
) -> Response {
    render_detail(ui, s, id, status, banners).await
}

async fn render_detail(ui: &Ui, s: &Session, id: &str, status: StatusCode, banners: Vec<Banner>) -> Response {
    let l = s.ctx.lang;
    let now = Timestamp::now();
    let id = match ui.node.resolve(&s.p, id, now).await {
        Ok(id) => id,
        Err(ServiceError::Invalid(_)) => return s.error(&ServiceError::NotFound(format!("request {id}"))),
        Err(e) => return s.error(&e),
    };
    let r = match ui.node.request(&s.p, id, now).await {
        Ok(r) => r,
        Err(e) => return s.error(&e),
    };
    let (events, allowed, map) = match (
        ui.node.events(&s.p, id, now).await,
        ui.node.allowed(&s.p, id, now).await,
        agencies(ui, &s.p).await,
    ) {
        (Ok(e), Ok(a), Ok(m)) => (e, a, m),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return s.error(&e),
    };
    // Evidence files, on a node with an evidence directory.
    let evidence = if ui.node.evidence_enabled() {
        match ui.node.evidence_list(&s.p, id, now).await {
            Ok(files) => Some(super::evidence::rows(l, &files)),
            Err(e) => return s.error(&e),
        }
    } else {
        None
    };
    let rq = &r.request;
    let d = &rq.draft;
    let requesting = map.get(&d.requesting_agency).map(|(a, _)| a);
    let requested = map.get(&d.requested_agency).map(|(a, _)| a);
    let zone = zone_of(requested);
    let cats = if d.data_categories.is_empty() {
        d.kind.default_categories().to_vec()
    } else {
        d.data_categories.clone()
    };
    let categories = (!cats.is_empty()).then(|| {
        cats.iter()
            .map(|c| l.word("category", c.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    });
    let targets = d
        .targets
        .iter()
        .map(|t| {
            let (kind, value) = target_text(&t.value);
            TargetRow {
                kind: l.word("target", kind),
                value,
                from: local(t.from, &s.zone),
                until: local(t.until, &s.zone),
                provider: t
                    .provider
                    .as_ref()
                    .map(|p| format!("{} ({})", p.name, p.established_in))
                    .unwrap_or_default(),
            }
        })
        .collect();
    // The move that ended the request, among the facts: the ground of a refusal and the
    // reason given (also in the history).
    let ended = events
        .iter()
        .rev()
        .find(|e| matches!(e.to_state, Some(State::Refused | State::Withdrawn | State::Expired)))
        .filter(|e| e.to_state == Some(rq.state))
        .map(|e| {
            let ground = e
                .data
                .as_ref()
                .and_then(|d| d.get("refusal_reason"))
                .and_then(|v| v.as_str())
                .map(|code| l.word("refusal", code));
            let reason = e.reason.clone().unwrap_or_default();
            let label = match e.to_state {
                Some(State::Refused) => l.t("detail.refused_because").to_string(),
                _ => l.t("detail.ended_because").to_string(),
            };
            let text = match ground {
                Some(g) if reason.is_empty() => g,
                Some(g) => format!("{g} — {reason}"),
                None => reason,
            };
            (label, text)
        })
        .filter(|(_, text)| !text.is_empty());
    let history = events
        .iter()
        .map(|e| {
            let change = match (e.from_state, e.to_state) {
                (Some(a), Some(b)) => format!("{} → {}", l.word("state", a.as_str()), l.word("state", b.as_str())),
                (None, Some(b)) => l.word("state", b.as_str()),
                _ => String::new(),
            };
            let mut data = Vec::new();
            if let Some(serde_json::Value::Object(fields)) = &e.data {
                for (k, v) in fields {
                    // Nothing is said of a value that is not there.
                    if v.is_null() {
                        continue;
                    }
                    let shown = match (k.as_str(), v.as_str()) {
                        ("agency", Some(id)) => id
                            .parse::<AgencyId>()
                            .ok()
                            .and_then(|id| map.get(&id))
                            .map(|(a, _)| a.code.clone())
                            .unwrap_or_else(|| id.to_string()),
                        ("refusal_reason", Some(code)) => l.word("refusal", code),
                        ("step", Some(step)) => l.word("step", step),
                        ("preserved_until", Some(ts)) => {
                            ts.parse::<Timestamp>().map(utc).unwrap_or_else(|_| ts.to_string())
                        }
                        ("marking", _) => serde_json::from_value::<Marking>(v.clone())
                            .map(|m| marking_text(&m))
                            .unwrap_or_else(|_| v.to_string()),
                        ("side", Some(sd)) => l.word("side", sd),
                        // Instants (a due time, a new deadline) as every other time is shown.
                        (_, Some(sv)) => sv.parse::<Timestamp>().map(utc).unwrap_or_else(|_| sv.to_string()),
                        _ => v.to_string(),
                    };
                    data.push(Labelled::new(l.word("field", k), shown));
                }
            }
            HistoryRow {
                at: local(e.at, &s.zone),
                actor: if e.actor == "system" {
                    l.t("history.system").to_string()
                } else {
                    e.actor.clone()
                },
                event: l.word("event", &e.event),
                change,
                reason: e.reason.clone(),
                data,
            }
        })
        .collect();
    let title = if d.case_reference.is_empty() {
        format!("{} · {}", r.reference, l.word("kind", d.kind.as_str()))
    } else {
        format!(
            "{} · {} · {}",
            r.reference,
            d.case_reference,
            l.word("kind", d.kind.as_str())
        )
    };
    let work = match super::work::panel(ui, s, &r).await {
        Ok(w) => Some(w),
        Err(e) => return s.error(&e),
    };
    // The joint cases the request is linked to, as the viewer may see them.
    let cases = match ui.node.cases_of_request(&s.p, rq.id).await {
        Ok(cs) => cs.into_iter().map(|c| (c.id, c.reference, c.name)).collect(),
        Err(ServiceError::Forbidden(_)) => Vec::new(),
        Err(e) => return s.error(&e),
    };
    // A draft shows the verdict it would get if it were sent now.
    let shown = match (rq.state, &r.assessment) {
        (State::Draft, None) => match ui.node.assess(&s.p, None, Some(rq.id), None, now).await {
            Ok(a) => assessment_of(&a, &d.targets, l, true),
            Err(_) => assessment(&r, l),
        },
        _ => assessment(&r, l),
    };
    let approval = if rq.state == State::Draft {
        match ui.node.approval(&s.p, rq.id, now).await {
            Ok(v) => Some(super::draft::approval_panel(l, &s.p.username, &s.zone, &v)),
            Err(e) => return s.error(&e),
        }
    } else {
        None
    };
    let approves = approval.as_ref().is_some_and(|a| a.approve);
    // Related requests by their references, linked where the reader may open them.
    let mut related = Vec::new();
    for rel in &d.related {
        let shown = match ui.node.request(&s.p, *rel, now).await {
            Ok(x) => x.reference,
            Err(_) => rel.to_string(),
        };
        related.push((rel.to_string(), shown));
    }
    let page = DetailPage {
        layout: s.layout(&title, banners),
        amount: d.amount.as_ref().map(|a| {
            let minor = liaison_core::money::minor_units(&a.currency).unwrap_or(0);
            format!("{} {}", a.value.grouped(minor), a.currency)
        }),
        conduct: (!d.conduct.is_empty()).then(|| {
            d.conduct
                .iter()
                .map(|c| l.word("conduct", c))
                .collect::<Vec<_>>()
                .join(l.t("list.sep"))
        }),
        related,
        may_edit: rq.state == State::Draft && s.p.role.may_draft() && s.p.agency == d.requesting_agency,
        approval,
        cases,
        id: rq.id.to_string(),
        reference: r.reference.clone(),
        work,
        version: rq.version,
        state: badge_state(l, rq.state),
        overdue: r.overdue.map(|dk| l.word("deadline", dk.as_str())),
        requesting: requesting
            .map(|a| agency_name(a, l))
            .unwrap_or_else(|| d.requesting_agency.to_string()),
        requested: requested
            .map(|a| agency_name(a, l))
            .unwrap_or_else(|| d.requested_agency.to_string()),
        kind: l.word("kind", d.kind.as_str()),
        urgency: l.word("urgency", d.urgency.as_str()),
        case_reference: d.case_reference.clone(),
        offences: d.offences.iter().map(|c| offence_label(ui, l, c)).collect(),
        summary: d.summary.clone(),
        legal_basis: (!d.legal_basis.is_empty()).then(|| d.legal_basis.clone()),
        categories,
        created: local(rq.created_at, &s.zone),
        submitted: rq.submitted_at.map(utc),
        ack_due: due(rq.ack_due, &s.zone, zone.as_ref()),
        answer_due: due(rq.answer_due, &s.zone, zone.as_ref()),
        preserved_until: rq.preserved_until.map(|t| due(Some(t), &s.zone, zone.as_ref())),
        actions: allowed
            .iter()
            .map(|to| {
                let mut f = transition_form(l, rq.state, *to);
                if *to == State::Submitted {
                    // Sending goes by a page that shows the verdict and asks to confirm.
                    f.label = l
                        .t(if approves {
                            "send.approve_and_send"
                        } else {
                            "send.review"
                        })
                        .to_string();
                }
                f
            })
            .collect(),
        targets,
        assessment: shown,
        outdated: r.assessment.is_some() && ui.node.assessment_outdated(&r),
        may_reassess: s.p.role.may_comment() && rq.submitted_at.is_some(),
        may_comment: s.p.role.may_comment(),
        marking: marking_text(&d.marking()),
        marking_class: marking_class(d.marking().tlp),
        comment_levels: options(
            std::iter::once(("", l.t("marking.default").to_string())).chain(
                Tlp::ALL
                    .iter()
                    .filter(|t| **t >= d.marking().tlp)
                    .map(|t| (t.as_str(), t.to_string())),
            ),
            &[],
        ),
        may_mark: s.p.role.may_draft() && s.p.agency == d.requesting_agency,
        may_letter: s.p.role.may_draft() && s.p.agency == d.requesting_agency,
        mark_levels: options(
            Tlp::ALL.iter().map(|t| (t.as_str(), t.to_string())),
            &[d.marking().tlp.as_str()],
        ),
        mark_recipients: d.marking().recipients.join(", "),
        evidence_levels: super::evidence::levels(l, d.marking().tlp),
        evidence,
        history,
        ended,
    };
    render(status, &page)
}

/// A request with its facts, the moves the viewer may make, targets, assessment and history.
#[derive(Template)]
#[template(path = "detail.html")]
struct DetailPage<'a> {
    layout: Layout<'a>,
    /// The amount involved with its currency.
    amount: Option<String>,
    /// The conduct stated, in words.
    conduct: Option<String>,
    /// Related requests: id and reference.
    related: Vec<(String, String)>,
    /// The viewer may edit the draft.
    may_edit: bool,
    /// A draft's four-eyes approval, as the viewer may act on it.
    approval: Option<super::draft::ApprovalPanel>,
    /// Joint cases the request is linked to: id, reference, name.
    cases: Vec<(String, String, String)>,
    id: String,
    /// The node's reference of the request.
    reference: String,
    /// Owner, unit, watchers, what it waits for (`None`: the viewer does not work requests).
    work: Option<super::work::WorkPanel>,
    version: i64,
    state: StateBadge,
    /// The deadline missed, if any.
    overdue: Option<String>,
    requesting: String,
    requested: String,
    kind: String,
    urgency: String,
    case_reference: String,
    offences: Vec<String>,
    summary: String,
    legal_basis: Option<String>,
    /// The data categories asked for, if any.
    categories: Option<String>,
    created: String,
    submitted: Option<String>,
    ack_due: Due,
    answer_due: Due,
    preserved_until: Option<Due>,
    actions: Vec<TransitionForm>,
    targets: Vec<TargetRow>,
    assessment: Assessment,
    /// Made under rule packs other than the node's current ones (or an older format).
    outdated: bool,
    may_reassess: bool,
    may_comment: bool,
    /// The request's marking as a label, and its CSS class (`tlp-red`, …).
    marking: String,
    marking_class: &'static str,
    /// Levels for the comment form (first: the node's default) and the change form.
    comment_levels: Vec<Opt>,
    /// The change form: shown to the requesting agency's drafting users (the originator).
    may_mark: bool,
    /// The letter form: the requesting agency's drafting users.
    may_letter: bool,
    mark_levels: Vec<Opt>,
    mark_recipients: String,
    /// The request's evidence files (`None`: the node keeps none) and the upload form's levels.
    evidence: Option<Vec<super::evidence::EvidenceRow>>,
    evidence_levels: Vec<Opt>,
    history: Vec<HistoryRow>,
    /// Why the request ended, when it was refused, withdrawn or expired: the ground (for a
    /// refusal) and the reason given.
    ended: Option<(String, String)>,
}

struct TargetRow {
    kind: String,
    value: String,
    from: String,
    until: String,
    /// The provider holding the data and its country (empty: not named).
    provider: String,
}

struct HistoryRow {
    at: String,
    actor: String,
    event: String,
    /// The state change, if the event made one.
    change: String,
    reason: Option<String>,
    /// The event's other data, labelled.
    data: Vec<Labelled>,
}

/// The legal assessment as shown: none yet, its verdict and its sections, or (if it does not
/// read as an assessment) the stored JSON.
pub(crate) struct Assessment {
    pub(crate) missing: bool,
    /// The headline: the outlook in a word, its reasons, what to do first.
    pub(crate) verdict: Option<VerdictView>,
    /// The findings by section (dual criminality, channels, evidence, retention, refusal
    /// risks, plan, notes), each line of a section with its depth.
    pub(crate) sections: Vec<Section>,
    pub(crate) raw: Option<String>,
}

/// [`liaison_law::Headline`] in the reader's language.
pub(crate) struct VerdictView {
    /// `clear`, `conditional` or `likely_refused` (the CSS class and the message key).
    pub(crate) code: &'static str,
    pub(crate) word: String,
    pub(crate) reasons: Vec<String>,
    /// "N more findings below", when the reasons were cut.
    pub(crate) more: Option<String>,
    pub(crate) first_step: Option<String>,
    /// The fastest lawful channel and its expected time in words.
    pub(crate) channel: Option<String>,
    /// The day whose law was applied.
    pub(crate) as_of: String,
    /// Made for a draft as it stands, not stored at sending.
    pub(crate) preview: bool,
}

pub(crate) struct Section {
    pub(crate) title: String,
    pub(crate) findings: Vec<FindingView>,
}

/// One finding of the assessment: the sentence, the request's target it is about, the lines
/// under it, and its sources as links.
pub(crate) struct FindingView {
    pub(crate) text: String,
    pub(crate) target: Option<String>,
    pub(crate) details: Vec<String>,
    pub(crate) sources: Vec<Source>,
}

/// A source of a finding: the instrument and article, the primary text's address (only
/// `https:`/`http:` ones are linked), and how well the fact was confirmed.
pub(crate) struct Source {
    pub(crate) label: String,
    pub(crate) url: Option<String>,
    pub(crate) confidence: String,
    /// `confirmed`, `partial` or `unconfirmed` (the CSS class).
    pub(crate) class: &'static str,
}

fn source(l: Lang, c: &liaison_law::Citation) -> Source {
    let url = c.url.trim();
    Source {
        label: format!("{}, {}", c.instrument, c.article),
        url: (url.starts_with("https://") || url.starts_with("http://")).then(|| url.to_string()),
        confidence: l.word("confidence", c.confidence.as_str()),
        class: c.confidence.as_str(),
    }
}

/// Days as people say them: "about 10 days", "about 3 months".
fn days_words(l: Lang, days: f64) -> String {
    if days < 1.0 {
        l.t1("verdict.hours", &format!("{:.0}", (days * 24.0).max(1.0)))
    } else if days < 60.0 {
        l.t1("verdict.days", &format!("{days:.0}"))
    } else {
        l.t1("verdict.months", &format!("{:.0}", days / 30.4))
    }
}

pub(crate) fn target_text(v: &TargetValue) -> (&'static str, String) {
    let text = match v {
        TargetValue::Ip {
            address,
            port,
            observed_at,
            zone,
        } => {
            let port = port.map(|p| format!(" port {p}")).unwrap_or_default();
            let zone = zone.as_ref().map(|z| format!(" (log zone {z})")).unwrap_or_default();
            format!("{address}{port} @ {}{zone}", utc(*observed_at))
        }
        TargetValue::Domain { name } => name.clone(),
        TargetValue::Url { url } => url.clone(),
        TargetValue::Email { address } => address.clone(),
        TargetValue::Account { service, identifier } => format!("{service}: {identifier}"),
        TargetValue::Phone { number } => number.clone(),
        TargetValue::CryptoWallet { currency, address } => format!("{currency}: {address}"),
        TargetValue::BankAccount {
            institution,
            identifier,
        } => format!("{institution}: {identifier}"),
    };
    (v.type_name(), text)
}

fn assessment(r: &StoredRequest, l: Lang) -> Assessment {
    match &r.assessment {
        None => Assessment {
            missing: true,
            verdict: None,
            sections: vec![],
            raw: None,
        },
        Some(v) => match v.value::<liaison_law::Assessment>() {
            Ok(a) => assessment_of(&a, &r.request.draft.targets, l, false),
            Err(_) => Assessment {
                missing: false,
                verdict: None,
                sections: vec![],
                raw: Some(
                    v.value::<serde_json::Value>()
                        .and_then(|j| serde_json::to_string_pretty(&j))
                        .unwrap_or_else(|_| v.get().to_string()),
                ),
            },
        },
    }
}

/// An assessment as shown; `preview`: made for a draft (or a draft being written), not the
/// one stored when the request was sent.
pub(crate) fn assessment_of(
    a: &liaison_law::Assessment,
    targets: &[liaison_core::request::Target],
    l: Lang,
    preview: bool,
) -> Assessment {
    let lang = l.law();
    let h = a.headline(lang);
    // A finding about a target names it by its value, not by its position.
    let sections = a
        .sections(lang)
        .into_iter()
        .map(|sec| Section {
            title: sec.title,
            findings: sec
                .findings
                .into_iter()
                .map(|f| {
                    let mut sources: Vec<Source> = Vec::new();
                    for c in &f.citations {
                        let s = source(l, c);
                        if !sources.iter().any(|x| x.label == s.label) {
                            sources.push(s);
                        }
                    }
                    FindingView {
                        text: f.text,
                        target: f.target.and_then(|i| targets.get(i)).map(|t| target_text(&t.value).1),
                        details: f.details,
                        sources,
                    }
                })
                .collect(),
        })
        .collect();
    Assessment {
        missing: false,
        verdict: Some(VerdictView {
            code: h.outlook.code(),
            word: l.word("verdict", h.outlook.code()),
            reasons: h.reasons,
            more: (h.more > 0).then(|| l.t1("verdict.more", &h.more.to_string())),
            first_step: h.first_step,
            channel: h
                .channel
                .map(|(name, days)| format!("{name} — {}", days_words(l, days))),
            as_of: a.as_of.strftime("%Y-%m-%d").to_string(),
            preview,
        }),
        sections,
        raw: None,
    }
}

fn needs(from: State, to: State) -> Needs {
    RULES
        .iter()
        .find(|r| r.from == from && r.to == to)
        .map(|r| r.needs)
        .unwrap_or(Needs::Nothing)
}

/// The form of one move, with the fields the move needs.
struct TransitionForm {
    to: &'static str,
    /// The button's label.
    label: String,
    /// The refusal reasons to choose from, if the move is a refusal.
    refusal: Option<Vec<Opt>>,
    reason: bool,
    preserved_until: bool,
    follow_up: bool,
}

fn transition_form(l: Lang, from: State, to: State) -> TransitionForm {
    let needs = needs(from, to);
    let refusal = (needs == Needs::Refusal).then(|| {
        let opts = std::iter::once(("", l.t("form.choose").to_string())).chain(
            RefusalReason::ALL
                .iter()
                .map(|r| (r.as_str(), l.word("refusal", r.as_str()))),
        );
        options(opts, &[])
    });
    TransitionForm {
        to: to.as_str(),
        label: l.t1("detail.move_to", &l.word("state", to.as_str())),
        refusal,
        reason: matches!(needs, Needs::Reason | Needs::Refusal),
        preserved_until: needs == Needs::PreservedUntil,
        follow_up: needs == Needs::FollowUp,
    }
}

/// Reads a preservation date: `YYYY-MM-DD` (end of that day in the requested agency's zone)
/// or an RFC 3339 instant.
fn parse_until(v: &str, zone: Option<&(TimeZone, String)>) -> Result<Timestamp, ServiceError> {
    let v = v.trim();
    if let Ok(t) = v.parse::<Timestamp>() {
        return Ok(t);
    }
    let bad = || ServiceError::invalid("preserved_until", format!("'{v}' is not a date such as 2027-03-31"));
    let date: jiff::civil::Date = v.parse().map_err(|_| bad())?;
    let tz = zone.map(|(z, _)| z.clone()).unwrap_or(TimeZone::UTC);
    date.at(23, 59, 0, 0)
        .to_zoned(tz)
        .map(|z| z.timestamp())
        .map_err(|_| bad())
}

pub async fn transition(AxState(ui): AxState<Ui>, mut s: Session, Path(id): Path<String>, body: Bytes) -> Response {
    s.ctx.here = format!("/requests/{}", url_enc(&id));
    let form = Form::parse(&body);
    if !s.csrf_ok(&ui, &form) {
        return bad_form(&s);
    }
    let now = Timestamp::now();
    let rid = match parse_id(&id) {
        Ok(r) => r,
        Err(e) => return s.error(&e),
    };
    // Sending a draft first shows what goes and its verdict, and asks to confirm.
    if form.get("to") == Some(State::Submitted.as_str()) && form.get("confirm") != Some("1") {
        return redirect(&format!("/requests/{rid}/send"));
    }
    let result = async {
        let mut errs = Vec::new();
        let version = form.get("version").and_then(|v| v.trim().parse::<i64>().ok());
        if version.is_none() {
            errs.push(FieldError {
                field: "version".into(),
                message: "reload the page: the form lacks the request's version".into(),
            });
        }
        let to = match form.get("to").map(|v| v.parse::<State>()) {
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => {
                errs.push(FieldError {
                    field: "to".into(),
                    message: e.to_string(),
                });
                None
            }
            None => None,
        };
        let refusal_reason = match form.get("refusal_reason").map(|v| v.parse::<RefusalReason>()) {
            Some(Ok(r)) => Some(r),
            Some(Err(e)) => {
                errs.push(FieldError {
                    field: "refusal_reason".into(),
                    message: e.to_string(),
                });
                None
            }
            None => None,
        };
        let follow_up = match form.get("follow_up").map(|v| v.trim().parse::<RequestId>()) {
            Some(Ok(f)) => Some(f),
            Some(Err(_)) => {
                errs.push(FieldError {
                    field: "follow_up".into(),
                    message: format!("'{}' is not a request id", form.get("follow_up").unwrap_or_default()),
                });
                None
            }
            None => None,
        };
        let preserved_until = match form.get("preserved_until") {
            Some(v) => {
                let cur = ui.node.request(&s.p, rid, now).await?;
                let map = agencies(&ui, &s.p).await?;
                let zone = zone_of(map.get(&cur.request.draft.requested_agency).map(|(a, _)| a));
                match parse_until(v, zone.as_ref()) {
                    Ok(t) => Some(t),
                    Err(ServiceError::Invalid(e)) => {
                        errs.extend(e);
                        None
                    }
                    Err(e) => return Err(e),
                }
            }
            None => None,
        };
        if !errs.is_empty() {
            return Err(ServiceError::Invalid(errs));
        }
        let input = TransitionInput {
            to,
            reason: form.get("reason").map(|r| r.trim().to_string()),
            refusal_reason,
            preserved_until,
            follow_up,
        };
        ui.node
            .transition(&s.p, rid, version.unwrap_or_default(), input, now)
            .await
    }
    .await;
    match result {
        Ok(r) => redirect(&format!("/requests/{}?moved={}", r.request.id, r.request.state)),
        Err(e) => {
            let (status, banner) = service_banner(s.ctx.lang, &e);
            render_detail(&ui, &s, &id, status, vec![banner]).await
        }
    }
}

/// The start of a form posted on a request's page: the page to come back to, the CSRF check,
/// the request id. `Err` is the answer to give at once.
pub(crate) fn request_form(
    ui: &Ui,
    s: &mut Session,
    id: &str,
    body: &Bytes,
) -> Result<(RequestId, Form), Box<Response>> {
    s.ctx.here = format!("/requests/{}", url_enc(id));
    let form = Form::parse(body);
    if !s.csrf_ok(ui, &form) {
        return Err(Box::new(bad_form(s)));
    }
    match parse_id(id) {
        Ok(r) => Ok((r, form)),
        Err(e) => Err(Box::new(s.error(&e))),
    }
}

/// Where a form posted on a request's page ends: back to the page with `done` on success, the
/// page with the service's refusal otherwise.
pub(crate) async fn request_form_done<T>(
    ui: &Ui,
    s: &Session,
    id: &str,
    result: Result<T, ServiceError>,
    done: &str,
) -> Response {
    match result {
        Ok(_) => redirect(done),
        Err(e) => {
            let (status, banner) = service_banner(s.ctx.lang, &e);
            render_detail(ui, s, id, status, vec![banner]).await
        }
    }
}

pub async fn comment(AxState(ui): AxState<Ui>, mut s: Session, Path(id): Path<String>, body: Bytes) -> Response {
    let (rid, form) = match request_form(&ui, &mut s, &id, &body) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let result = match form_marking(form.get("tlp"), None) {
        Ok(m) => {
            ui.node
                .comment(&s.p, rid, form.get("text").unwrap_or(""), m, Timestamp::now())
                .await
        }
        Err(e) => Err(e),
    };
    request_form_done(&ui, &s, &id, result, &format!("/requests/{rid}?commented=1")).await
}

/// The formal letter as a PDF download (the requesting agency's drafting users; the service
/// checks). Missing particulars: the page again, with a banner naming each.
pub async fn letter(AxState(ui): AxState<Ui>, mut s: Session, Path(id): Path<String>, body: Bytes) -> Response {
    let (rid, form) = match request_form(&ui, &mut s, &id, &body) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let opts = liaison_service::letter::LetterOptions {
        langs: vec![form.get("lang").unwrap_or("en,zh-CN").to_string()],
        draft: form.get("draft").is_some(),
        signer: form.get("signer").map(str::to_string),
        function: form.get("function").map(str::to_string),
        place: form.get("place").map(str::to_string),
    };
    match ui.node.request_letter(&s.p, rid, &opts, Timestamp::now()).await {
        Ok(letter) => crate::api::pdf_attachment(letter),
        Err(e) => request_form_done(&ui, &s, &id, Err::<(), _>(e), "").await,
    }
}

/// The request's evidence package as a download (docs/evidence.md): what the user may read,
/// signed by the node; the service checks who may export and records the custody steps.
pub async fn evidence_package(
    AxState(ui): AxState<Ui>,
    mut s: Session,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (rid, _) = match request_form(&ui, &mut s, &id, &body) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    match crate::evidence_package::package_response(&ui.node, &s.p, rid).await {
        Ok(r) => r,
        Err(e) => request_form_done(&ui, &s, &id, Err::<(), _>(e), "").await,
    }
}

/// Changes a request's marking (the originator only; the service checks).
pub async fn marking(AxState(ui): AxState<Ui>, mut s: Session, Path(id): Path<String>, body: Bytes) -> Response {
    let (rid, form) = match request_form(&ui, &mut s, &id, &body) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let result = match form_marking(form.get("tlp"), form.get("recipients")) {
        Ok(Some(m)) => ui.node.set_marking(&s.p, rid, m, Timestamp::now()).await,
        Ok(None) => Err(ServiceError::invalid("tlp", "choose a level")),
        Err(e) => Err(e),
    };
    request_form_done(&ui, &s, &id, result, &format!("/requests/{rid}?marked=1")).await
}

/// A marking from a form: a level (empty: none chosen) and user names separated by commas.
pub(crate) fn form_marking(tlp: Option<&str>, recipients: Option<&str>) -> Result<Option<Marking>, ServiceError> {
    let Some(t) = tlp.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let tlp: Tlp = t
        .parse()
        .map_err(|e: liaison_core::tlp::TlpParseError| ServiceError::invalid("tlp", e.to_string()))?;
    let recipients: Vec<String> = recipients
        .unwrap_or("")
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect();
    let m = Marking { tlp, recipients };
    m.validate()
        .map_err(|e| ServiceError::invalid("marking", e.to_string()))?;
    Ok(Some(m))
}

/// A marking as shown: `TLP:RED (amy, bob)`.
fn marking_text(m: &Marking) -> String {
    if m.recipients.is_empty() {
        m.tlp.to_string()
    } else {
        format!("{} ({})", m.tlp, m.recipients.join(", "))
    }
}

/// The CSS class of a TLP badge.
pub(crate) fn marking_class(t: Tlp) -> &'static str {
    match t {
        Tlp::Clear => "tlp-clear",
        Tlp::Green => "tlp-green",
        Tlp::Amber => "tlp-amber",
        Tlp::AmberStrict => "tlp-amber-strict",
        Tlp::Red => "tlp-red",
    }
}

/// Re-assesses a submitted request under the current rule packs (the law of its submission date).
pub async fn reassess(AxState(ui): AxState<Ui>, mut s: Session, Path(id): Path<String>, body: Bytes) -> Response {
    let (rid, _) = match request_form(&ui, &mut s, &id, &body) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let result = ui.node.reassess(&s.p, rid, Timestamp::now()).await;
    request_form_done(
        &ui,
        &s,
        &id,
        result,
        &format!("/requests/{rid}?reassessed=1#assessment"),
    )
    .await
}

// ----- directory -----------------------------------------------------------------------------

pub async fn directory(AxState(ui): AxState<Ui>, s: Session) -> Response {
    directory_page(&ui, &s, StatusCode::OK, vec![]).await
}

/// The directory page with `banners` (after a rename); administrators get a form per agency
/// to rename it in English, in its own language and for Chinese pages.
pub(crate) async fn directory_page(ui: &Ui, s: &Session, status: StatusCode, banners: Vec<Banner>) -> Response {
    let l = s.ctx.lang;
    let now = Timestamp::now();
    let mut views = match ui.node.directory(&s.p, now).await {
        Ok(v) => v,
        Err(e) => return s.error(&e),
    };
    views.sort_by(|a, b| a.agency.code.cmp(&b.agency.code));
    let agencies = views
        .iter()
        .map(|v| {
            let a = &v.agency;
            let local = time_zone(&a.time_zone)
                .map(|z| now.to_zoned(z).strftime("%Y-%m-%d %H:%M %Z").to_string())
                .unwrap_or_else(|e| e.to_string());
            let node = match &v.node_id {
                Some(n) => format!("{}: {}", l.t("dir.peer_node"), n),
                None => l.t("dir.this_node").to_string(),
            };
            let contacts = v
                .contacts
                .iter()
                .map(|c| {
                    let (class, status) = if c.status.open {
                        ("open-now", l.t("dir.open"))
                    } else {
                        ("closed-now", l.t("dir.closed"))
                    };
                    ContactRow {
                        name: c.contact.name.clone(),
                        phone: c.contact.phone.clone(),
                        mailto: url_enc(&c.contact.email).replace("%40", "@"),
                        email: c.contact.email.clone(),
                        languages: c.contact.languages.join(", "),
                        office_hours: c.contact.office_hours.to_string(),
                        time_zone: c.contact.time_zone.clone(),
                        local_time: c.status.local_time.clone(),
                        class,
                        status: status.to_string(),
                    }
                })
                .collect();
            AgencyCard {
                name: agency_name(a, l),
                code: a.code.clone(),
                name_en: a.name_en.clone(),
                name_native: a.name_native.clone(),
                name_zh: a.name_zh.clone(),
                jurisdiction: a.jurisdiction.as_str().to_string(),
                kind: l.word("agency_kind", a.kind.as_str()),
                time_zone: a.time_zone.clone(),
                local,
                node,
                contacts,
            }
        })
        .collect();
    let administers = s.p.role.may_administer();
    let page = DirectoryPage {
        layout: s.layout(l.t("dir.title"), banners),
        tabs: super::admin::tabs(s.p.role, "/directory"),
        administers,
        agencies,
    };
    render(status, &page)
}

/// The directory: every agency with its local time and contact points.
#[derive(Template)]
#[template(path = "directory.html")]
struct DirectoryPage<'a> {
    layout: Layout<'a>,
    /// The administration tabs (shown to administrators only).
    tabs: super::admin::Tabs,
    /// Whether the viewer may rename agencies.
    administers: bool,
    agencies: Vec<AgencyCard>,
}

struct AgencyCard {
    name: String,
    code: String,
    name_en: String,
    name_native: String,
    name_zh: String,
    jurisdiction: String,
    kind: String,
    time_zone: String,
    /// The time there now.
    local: String,
    /// Which node serves the agency.
    node: String,
    contacts: Vec<ContactRow>,
}

struct ContactRow {
    name: String,
    phone: String,
    /// The address for the `mailto:` link.
    mailto: String,
    email: String,
    languages: String,
    office_hours: String,
    time_zone: String,
    local_time: String,
    /// `open-now` or `closed-now`.
    class: &'static str,
    status: String,
}

// ----- cooperation report --------------------------------------------------------------------

struct CoopQuery {
    by: GroupBy,
    by_s: String,
    from: Timestamp,
    to: Timestamp,
    from_s: String,
    to_s: String,
}

fn coop_query(raw: Option<&str>, now: Timestamp) -> Result<CoopQuery, ServiceError> {
    let q = Form::query(raw);
    let mut errs = Vec::new();
    let by_s = q.get("by").unwrap_or("agency").to_string();
    let by = match by_s.parse::<GroupBy>() {
        Ok(b) => b,
        Err(ServiceError::Invalid(e)) => {
            errs.extend(e);
            GroupBy::Agency
        }
        Err(e) => return Err(e),
    };
    let mut date = |field: &str, default: Timestamp| -> (Timestamp, String) {
        match q.get(field) {
            None => (default, default.strftime("%Y-%m-%d").to_string()),
            Some(v) => match v.trim().parse::<jiff::civil::Date>() {
                Ok(d) => match d.to_zoned(TimeZone::UTC) {
                    Ok(z) => (z.timestamp(), v.trim().to_string()),
                    Err(e) => {
                        errs.push(FieldError {
                            field: field.into(),
                            message: e.to_string(),
                        });
                        (default, v.to_string())
                    }
                },
                Err(_) => {
                    errs.push(FieldError {
                        field: field.into(),
                        message: format!("'{v}' is not a date such as 2026-01-31"),
                    });
                    (default, v.to_string())
                }
            },
        }
    };
    let default_from = now
        .checked_sub(jiff::SignedDuration::from_hours(24 * 730))
        .unwrap_or(now);
    let (from, from_s) = date("from", default_from);
    let (to, to_s) = match q.get("to") {
        // A date means "up to the end of that day".
        Some(_) => {
            let (t, s) = date("to", now);
            (t.checked_add(jiff::SignedDuration::from_hours(24)).unwrap_or(t), s)
        }
        None => (now, now.strftime("%Y-%m-%d").to_string()),
    };
    if !errs.is_empty() {
        return Err(ServiceError::Invalid(errs));
    }
    Ok(CoopQuery {
        by,
        by_s,
        from,
        to,
        from_s,
        to_s,
    })
}

fn num(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.1}")).unwrap_or_else(|| "—".into())
}

/// A duration in hours as people say it: "45 min", "7 h", "40 d 3 h" ("40天3小时").
fn duration_words(l: Lang, hours: Option<f64>) -> String {
    let Some(h) = hours.filter(|h| h.is_finite() && *h >= 0.0) else {
        return "—".into();
    };
    let minutes = (h * 60.0).round() as i64;
    if minutes < 60 {
        return l.t1("dur.min", &minutes.to_string());
    }
    let hours = (h.round()) as i64;
    if hours < 48 {
        return l.t1("dur.h", &hours.to_string());
    }
    let (d, rest) = (hours / 24, hours % 24);
    if rest == 0 {
        l.t1("dur.d", &d.to_string())
    } else {
        l.t("dur.dh")
            .replace("{d}", &d.to_string())
            .replace("{h}", &rest.to_string())
    }
}

/// The answer-rate heat map of the cooperation report: one row per requesting key, one
/// column per requested key, drawn by the template as SVG (no script).
struct HeatMap {
    width: usize,
    height: usize,
    cols: Vec<(usize, String)>,
    rows: Vec<(usize, String)>,
    cells: Vec<HeatCell>,
    legend: Vec<(usize, &'static str, String)>,
}

struct HeatCell {
    x: usize,
    y: usize,
    fill: &'static str,
    rate: String,
    sent: String,
    /// What the cell says in words (its tooltip and accessible name).
    title: String,
    /// The pair's requests, when the viewer's agency is one of them (grouped by agency).
    href: Option<String>,
}

const HEAT_LABEL_W: usize = 130;
const HEAT_HEAD_H: usize = 40;
const HEAT_CELL_W: usize = 104;
const HEAT_CELL_H: usize = 50;

/// The fill of an answer rate (percent): light tints, so the dark text stays readable.
fn heat_fill(rate: Option<f64>) -> &'static str {
    match rate {
        None => "#eef1f4",
        Some(r) if r < 25.0 => "#f4c7c3",
        Some(r) if r < 50.0 => "#f9dcb8",
        Some(r) if r < 75.0 => "#fce8b2",
        Some(r) if r < 90.0 => "#d8eec2",
        Some(_) => "#b7e1cd",
    }
}

fn heat_map(l: Lang, pairs: &[liaison_core::stats::PairStats], by_agency: bool, own: &str) -> Option<HeatMap> {
    if pairs.is_empty() {
        return None;
    }
    let mut from: Vec<&str> = pairs.iter().map(|p| p.requesting.as_str()).collect();
    let mut to: Vec<&str> = pairs.iter().map(|p| p.requested.as_str()).collect();
    from.sort_unstable();
    from.dedup();
    to.sort_unstable();
    to.dedup();
    let mut cells = Vec::new();
    for (i, a) in from.iter().enumerate() {
        for (j, b) in to.iter().enumerate() {
            let Some(p) = pairs.iter().find(|p| p.requesting == *a && p.requested == *b) else {
                continue;
            };
            let rate = p.answer_rate.map(|r| format!("{r:.0}%")).unwrap_or_else(|| "—".into());
            let sent = l.t1("coop.heat_sent", &p.sent.to_string());
            let title = l
                .t("coop.heat_title")
                .replace("{pair}", &format!("{a} → {b}"))
                .replace("{rate}", &rate)
                .replace("{sent}", &p.sent.to_string())
                .replace(
                    "{median}",
                    &duration_words(l, p.median_days_to_answer.map(|d| d * 24.0)),
                );
            let href = (by_agency && (*a == own || *b == own))
                .then(|| format!("/requests?requesting={}&requested={}", url_enc(a), url_enc(b)));
            cells.push(HeatCell {
                x: HEAT_LABEL_W + j * HEAT_CELL_W,
                y: HEAT_HEAD_H + i * HEAT_CELL_H,
                fill: heat_fill(p.answer_rate),
                rate,
                sent,
                title,
                href,
            });
        }
    }
    let legend = [
        (None, l.t("coop.heat_none").to_string()),
        (Some(10.0), "< 25%".to_string()),
        (Some(30.0), "25–49%".to_string()),
        (Some(60.0), "50–74%".to_string()),
        (Some(80.0), "75–89%".to_string()),
        (Some(95.0), "≥ 90%".to_string()),
    ]
    .into_iter()
    .enumerate()
    .map(|(k, (r, label))| (k * 110, heat_fill(r), label))
    .collect();
    Some(HeatMap {
        width: HEAT_LABEL_W + to.len() * HEAT_CELL_W + 2,
        height: HEAT_HEAD_H + from.len() * HEAT_CELL_H + 2,
        cols: to
            .iter()
            .enumerate()
            .map(|(j, b)| (HEAT_LABEL_W + j * HEAT_CELL_W + HEAT_CELL_W / 2, b.to_string()))
            .collect(),
        rows: from
            .iter()
            .enumerate()
            .map(|(i, a)| (HEAT_HEAD_H + i * HEAT_CELL_H + HEAT_CELL_H / 2 + 5, a.to_string()))
            .collect(),
        cells,
        legend,
    })
}

pub async fn cooperation(AxState(ui): AxState<Ui>, s: Session, RawQuery(raw): RawQuery) -> Response {
    let l = s.ctx.lang;
    let now = Timestamp::now();
    let q = match coop_query(raw.as_deref(), now) {
        Ok(q) => q,
        Err(e) => {
            let (status, b) = service_banner(l, &e);
            let page = CoopPage {
                layout: s.layout(l.t("coop.title"), vec![b]),
                by_opts: coop_by_options(l, "agency"),
                from: String::new(),
                to: String::new(),
                report: None,
            };
            return render(status, &page);
        }
    };
    let (report, charts) = match ui.node.cooperation_with_charts(&s.p, q.from, q.to, q.by, now).await {
        Ok(x) => x,
        Err(e) => return s.error(&e),
    };
    let rows = report
        .pairs
        .iter()
        .map(|p| CoopRow {
            requesting: p.requesting.clone(),
            requested: p.requested.clone(),
            counts: [
                p.sent,
                p.acknowledged,
                p.answered,
                p.refused,
                p.withdrawn,
                p.pending,
                p.overdue,
            ]
            .iter()
            .map(|n| n.to_string())
            .chain(std::iter::once(num(p.answer_rate)))
            // Times as people say them: days and hours, not "962.9" hours.
            .chain([p.median_hours_to_acknowledge, p.p90_hours_to_acknowledge].map(|h| duration_words(l, h)))
            .chain([p.median_days_to_answer, p.p90_days_to_answer].map(|d| duration_words(l, d.map(|d| d * 24.0))))
            .collect(),
        })
        .collect();
    let page = CoopPage {
        layout: s.layout(l.t("coop.title"), vec![]),
        by_opts: coop_by_options(l, &q.by_s),
        report: Some(CoopReport {
            period: l.t1(
                "coop.period",
                &format!("{} – {}", local(report.from, &s.zone), local(report.to, &s.zone)),
            ),
            heat: heat_map(l, &report.pairs, report.by == "agency", &s.agency_code),
            trend: super::charts::trend_chart(l, &charts.months, &charts.trend),
            ageing: super::charts::ageing_chart(l, &charts.ageing),
            by: q.by_s,
            rows,
        }),
        from: q.from_s,
        to: q.to_s,
    };
    render(StatusCode::OK, &page)
}

fn coop_by_options(l: Lang, by: &str) -> Vec<Opt> {
    let opts = [
        ("agency", l.t("coop.by_agency").to_string()),
        ("jurisdiction", l.t("coop.by_jurisdiction").to_string()),
    ];
    options(opts, &[by])
}

/// The cooperation report: its form, and the report unless the form's values are wrong.
#[derive(Template)]
#[template(path = "cooperation.html")]
struct CoopPage<'a> {
    layout: Layout<'a>,
    by_opts: Vec<Opt>,
    from: String,
    to: String,
    report: Option<CoopReport>,
}

struct CoopReport {
    /// The grouping, for the CSV link (with the form's `from` and `to`).
    by: String,
    period: String,
    /// The answer rate of every pair as a chart.
    heat: Option<HeatMap>,
    /// The busiest pairs' median time to answer by month of sending.
    trend: Option<super::charts::TrendChart>,
    /// Open requests by age.
    ageing: Option<super::charts::AgeingChart>,
    rows: Vec<CoopRow>,
}

struct CoopRow {
    requesting: String,
    requested: String,
    /// The twelve numeric columns, formatted.
    counts: Vec<String>,
}

pub async fn cooperation_csv(AxState(ui): AxState<Ui>, s: Session, RawQuery(raw): RawQuery) -> Response {
    let now = Timestamp::now();
    let report = match coop_query(raw.as_deref(), now) {
        Ok(q) => ui.node.cooperation(&s.p, q.from, q.to, q.by, now).await,
        Err(e) => Err(e),
    };
    match report {
        Ok(r) => {
            let mut resp = liaison_service::report::cooperation_csv(&r).into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            h.insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"cooperation.csv\""),
            );
            resp
        }
        Err(e) => s.error(&e),
    }
}

#[cfg(test)]
mod durations {
    use super::{Lang, duration_words};

    #[test]
    fn durations_read_as_people_say_them() {
        for (hours, en, zh) in [
            (Some(0.25), "15 min", "15分钟"),
            (Some(7.4), "7 h", "7小时"),
            (Some(47.6), "2 d", "2天"),
            (Some(962.9), "40 d 3 h", "40天3小时"),
            (None, "—", "—"),
        ] {
            assert_eq!(duration_words(Lang::En, hours), en);
            assert_eq!(duration_words(Lang::Zh, hours), zh);
        }
    }
}
