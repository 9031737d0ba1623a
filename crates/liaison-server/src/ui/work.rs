//! Working the requests in the browser (docs/queues.md): the home page of each role
//! (`/home`), the inbox (`/inbox`), the request page's work panel (owner, unit, watching,
//! converting a preservation) and the list as CSV (`/requests.csv`). Every decision is the
//! use cases' (`Node::home`, `Node::assign`, `Node::watch`, `Node::convert_preservation`, …).

use super::html::filters;
use super::html::{Banner, Layout, Opt, options, render};
use super::pages::{agencies, badge_state, code_of};
use super::{Form, Session, Ui, redirect};
use crate::ui::html::StateBadge;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as AxState};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use liaison_core::record::{Awaiting, RequestSummary, StoredRequest};
use liaison_core::{RequestKind, Role};
use liaison_service::work::{Queue, due_phrase, notification_words_with, running_due_of};

/// A request in a short list: reference, pair, kind, state, what is due.
pub struct ShortRow {
    pub id: String,
    pub reference: String,
    pub pair: String,
    pub kind: String,
    pub state: StateBadge,
    pub due: String,
    pub late: bool,
}

pub(crate) fn short_rows(
    ui_lang: super::i18n::Lang,
    map: &std::collections::HashMap<liaison_core::AgencyId, (liaison_core::directory::Agency, Option<String>)>,
    items: &[RequestSummary],
    now: Timestamp,
) -> Vec<ShortRow> {
    items
        .iter()
        .map(|q| {
            let due = running_due_of(q);
            ShortRow {
                id: q.id.to_string(),
                reference: q.reference.clone(),
                pair: format!(
                    "{} → {}",
                    code_of(map, q.requesting_agency),
                    code_of(map, q.requested_agency)
                ),
                kind: ui_lang.word("kind", q.kind.as_str()),
                state: badge_state(ui_lang, q.state),
                due: due
                    .map(|(k, d)| due_phrase(k, d, now, ui_lang.code()))
                    .unwrap_or_default(),
                late: due.is_some_and(|(_, d)| d < now),
            }
        })
        .collect()
}

struct CountCard {
    key: &'static str,
    href: &'static str,
    value: String,
    alert: bool,
}

struct Section {
    title: String,
    href: String,
    rows: Vec<ShortRow>,
}

/// The home page.
#[derive(Template)]
#[template(path = "home.html")]
struct HomePage<'a> {
    layout: Layout<'a>,
    counts: Vec<CountCard>,
    sections: Vec<Section>,
}

pub async fn home(AxState(ui): AxState<Ui>, mut s: Session) -> Response {
    s.ctx.here = "/home".into();
    let l = s.ctx.lang;
    let now = Timestamp::now();
    if !s.p.role.may_read_requests() {
        // Administrators work in the directory and the users, not in requests.
        return redirect("/directory");
    }
    let (h, map) = match (ui.node.home(&s.p, None, now).await, agencies(&ui, &s.p).await) {
        (Ok(h), Ok(m)) => (h, m),
        (Err(e), _) | (_, Err(e)) => return s.error(&e),
    };
    let c = &h.counts;
    let counts = vec![
        CountCard {
            key: "home.mine",
            href: "/requests?queue=mine&sort=due",
            value: c.shown(c.mine),
            alert: false,
        },
        CountCard {
            key: "home.waiting_on_us",
            href: "/requests?queue=waiting_on_us&sort=due",
            value: c.shown(c.waiting_on_us),
            alert: false,
        },
        CountCard {
            key: "home.waiting_on_partner",
            href: "/requests?queue=waiting_on_partner&sort=due",
            value: c.shown(c.waiting_on_partner),
            alert: false,
        },
        CountCard {
            key: "home.overdue",
            href: "/requests?queue=overdue&sort=due",
            value: c.shown(c.overdue),
            alert: c.overdue > 0,
        },
        CountCard {
            key: "home.unassigned",
            href: "/requests?queue=unassigned&sort=due",
            value: c.shown(c.unassigned_incoming),
            alert: c.unassigned_incoming > 0,
        },
        CountCard {
            key: "home.my_units",
            href: "/requests?queue=my_units&sort=due",
            value: c.shown(c.my_units),
            alert: false,
        },
        CountCard {
            key: "home.unread",
            href: "/inbox",
            value: c.shown(c.unread_notifications),
            alert: c.unread_notifications > 0,
        },
    ];
    let sections = h
        .sections
        .iter()
        .map(|sec| Section {
            title: l.t(&format!("home.section.{}", sec.name)).to_string(),
            href: format!("/requests?queue={}&sort=due", sec.queue.as_str()),
            rows: short_rows(l, &map, &sec.items, now),
        })
        .collect();
    let title = l.t("home.title").to_string();
    render(
        StatusCode::OK,
        &HomePage {
            layout: s.layout(&title, Vec::new()),
            counts,
            sections,
        },
    )
}

struct InboxRow {
    id: String,
    at: String,
    kind: String,
    words: String,
    href: Option<String>,
    unread: bool,
}

/// The inbox.
#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage<'a> {
    layout: Layout<'a>,
    rows: Vec<InboxRow>,
    unread_only: bool,
    next: Option<String>,
}

pub async fn inbox(AxState(ui): AxState<Ui>, mut s: Session, RawQuery(raw): RawQuery) -> Response {
    s.ctx.here = "/inbox".into();
    let l = s.ctx.lang;
    let q = Form::query(raw.as_deref());
    let unread_only = q.get("unread").is_some();
    let before = q.get("cursor").and_then(|c| c.parse().ok());
    let now = Timestamp::now();
    let items = match ui.node.notifications(&s.p, unread_only, before, 50, now).await {
        Ok(i) => i,
        Err(e) => return s.error(&e),
    };
    let next = (items.len() == 50)
        .then(|| items.last().map(|n| n.id.to_string()))
        .flatten();
    let rows = items
        .iter()
        .map(|n| InboxRow {
            id: n.id.to_string(),
            at: super::pages::local(n.at, &s.zone),
            kind: l.t(&format!("notify.{}", n.kind)).to_string(),
            words: notification_words_with(n, now, l.code(), &|g, v| l.word(g, v)),
            href: n.request.map(|r| format!("/requests/{r}")),
            unread: n.read_at.is_none(),
        })
        .collect();
    let mut banners = Vec::new();
    if q.get("read").is_some() {
        banners.push(Banner::ok(l.t("inbox.marked")));
    }
    let title = l.t("inbox.title").to_string();
    render(
        StatusCode::OK,
        &InboxPage {
            layout: s.layout(&title, banners),
            rows,
            unread_only,
            next,
        },
    )
}

/// Marks every notification read (or the one named).
pub async fn inbox_read(AxState(ui): AxState<Ui>, mut s: Session, body: Bytes) -> Response {
    s.ctx.here = "/inbox".into();
    let form = Form::parse(&body);
    if !s.csrf_ok(&ui, &form) {
        return super::pages::bad_form(&s);
    }
    let which = form.get("id").and_then(|i| i.parse().ok());
    match ui.node.mark_read(&s.p, which, Timestamp::now()).await {
        Ok(_) => redirect("/inbox?read=1"),
        Err(e) => s.error(&e),
    }
}

/// The request page's work panel.
pub struct WorkPanel {
    pub owner: String,
    pub unit: String,
    pub watchers: String,
    pub awaiting: String,
    pub due: String,
    pub late: bool,
    pub watching: bool,
    pub may_assign: bool,
    pub may_take: bool,
    pub owner_opts: Vec<Opt>,
    pub unit_opts: Vec<Opt>,
    pub may_convert: bool,
    pub kind_opts: Vec<Opt>,
}

/// The work panel of request `r` for the viewer.
pub(crate) async fn panel(ui: &Ui, s: &Session, r: &StoredRequest) -> Result<WorkPanel, liaison_service::ServiceError> {
    let l = s.ctx.lang;
    let now = Timestamp::now();
    let w = ui.node.work_state(&s.p, r.request.id, now).await?;
    let a = &w.assignment;
    let me = &s.p.username;
    let works = matches!(
        s.p.role,
        Role::Officer | Role::Desk | Role::LegalReviewer | Role::Supervisor
    );
    let owner_is_me = a.owner.as_deref() == Some(me.as_str());
    let may_assign =
        works && (s.p.role == Role::Supervisor || s.p.role == Role::Desk || a.owner.is_none() || owner_is_me);
    let colleagues = if may_assign {
        ui.node.colleagues(&s.p).await?
    } else {
        Vec::new()
    };
    let units = if may_assign {
        ui.node.units(&s.p).await?
    } else {
        Vec::new()
    };
    let none = l.t("work.nobody").to_string();
    let owner_opts = options(
        std::iter::once(("", none.clone())).chain(colleagues.iter().map(|u| {
            (
                u.username.as_str(),
                format!("{} ({})", u.username, l.word("role", u.role.as_str())),
            )
        })),
        &[a.owner.as_deref().unwrap_or("")],
    );
    let unit_opts = options(
        std::iter::once(("", l.t("work.no_unit").to_string())).chain(
            units
                .iter()
                .map(|u| (u.code.as_str(), format!("{} — {}", u.code, u.name))),
        ),
        &[a.unit.as_deref().unwrap_or("")],
    );
    let requesting = s.p.agency == r.request.draft.requesting_agency;
    let may_convert = requesting
        && s.p.role.may_draft()
        && matches!(
            r.request.state,
            liaison_core::State::Preserved | liaison_core::State::Extended
        );
    let kind_opts = options(
        RequestKind::ALL
            .iter()
            .filter(|k| !k.is_preservation() && **k != RequestKind::SpontaneousInformation)
            .map(|k| (k.as_str(), l.word("kind", k.as_str()))),
        &["stored_content"],
    );
    Ok(WorkPanel {
        owner: a.owner.clone().unwrap_or_else(|| none.clone()),
        unit: a.unit.clone().unwrap_or_else(|| "—".into()),
        watchers: if a.watchers.is_empty() {
            "—".into()
        } else {
            a.watchers.join(", ")
        },
        awaiting: match w.awaiting {
            Some(Awaiting::Us) => l.t("work.awaiting_us").to_string(),
            Some(Awaiting::Partner) => l.t("work.awaiting_partner").to_string(),
            None => "—".into(),
        },
        due: w
            .deadline
            .zip(w.due_at)
            .map(|(k, d)| due_phrase(k, d, now, l.code()))
            .unwrap_or_else(|| "—".into()),
        late: w.due_in_ms.is_some_and(|m| m < 0),
        watching: a.watchers.iter().any(|x| x == me),
        may_take: works
            && !owner_is_me
            && (a.owner.is_none() || s.p.role == Role::Supervisor || s.p.role == Role::Desk),
        may_assign,
        owner_opts,
        unit_opts,
        may_convert,
        kind_opts,
    })
}

/// Assigns the request (owner and unit from the form; `take`: the viewer).
pub async fn assign(AxState(ui): AxState<Ui>, mut s: Session, Path(id): Path<String>, body: Bytes) -> Response {
    let (rid, form) = match super::pages::request_form(&ui, &mut s, &id, &body) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let now = Timestamp::now();
    let result = if form.get("take").is_some() {
        let unit = match ui.node.work_state(&s.p, rid, now).await {
            Ok(w) => w.assignment.unit,
            Err(e) => return super::pages::request_form_done(&ui, &s, &id, Err::<(), _>(e), "").await,
        };
        let me = s.p.username.clone();
        ui.node.assign(&s.p, rid, Some(&me), unit.as_deref(), None, now).await
    } else {
        let blank = |v: Option<&str>| v.map(str::trim).filter(|x| !x.is_empty()).map(str::to_string);
        ui.node
            .assign(
                &s.p,
                rid,
                blank(form.get("owner")).as_deref(),
                blank(form.get("unit")).as_deref(),
                blank(form.get("note")).as_deref(),
                now,
            )
            .await
    };
    super::pages::request_form_done(&ui, &s, &id, result, &format!("/requests/{rid}?assigned=1")).await
}

/// Starts or stops watching the request.
pub async fn watch(AxState(ui): AxState<Ui>, mut s: Session, Path(id): Path<String>, body: Bytes) -> Response {
    let (rid, form) = match super::pages::request_form(&ui, &mut s, &id, &body) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let on = form.get("on") == Some("1");
    let result = ui.node.watch(&s.p, rid, on, Timestamp::now()).await;
    super::pages::request_form_done(
        &ui,
        &s,
        &id,
        result,
        &format!("/requests/{rid}?watching={}", u8::from(on)),
    )
    .await
}

/// Converts the preservation: the follow-up draft is made, and the browser goes to it.
pub async fn convert(AxState(ui): AxState<Ui>, mut s: Session, Path(id): Path<String>, body: Bytes) -> Response {
    let (rid, form) = match super::pages::request_form(&ui, &mut s, &id, &body) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let kind = match form.get("kind").unwrap_or("").parse::<RequestKind>() {
        Ok(k) => k,
        Err(e) => {
            let err = liaison_service::ServiceError::invalid("kind", e.to_string());
            return super::pages::request_form_done(&ui, &s, &id, Err::<(), _>(err), "").await;
        }
    };
    match ui.node.convert_preservation(&s.p, rid, kind, Timestamp::now()).await {
        Ok((follow, _)) => redirect(&format!("/requests/{}?converted=1", follow.request.id)),
        Err(e) => super::pages::request_form_done(&ui, &s, &id, Err::<(), _>(e), "").await,
    }
}

/// The list's page as CSV (the same filters as `/requests`).
pub async fn csv(AxState(ui): AxState<Ui>, s: Session, RawQuery(raw): RawQuery) -> Response {
    let (queue, f) = match super::pages::list_filter(&ui, &s, raw.as_deref()).await {
        Ok(x) => x,
        Err(e) => return s.error(&e),
    };
    let now = Timestamp::now();
    let page = match ui.node.queue(&s.p, queue, f, now).await {
        Ok(p) => p,
        Err(e) => return s.error(&e),
    };
    match ui.node.summaries_csv(&page.items, now).await {
        Ok(text) => {
            let mut r = text.into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            r.headers_mut().insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"requests.csv\""),
            );
            r
        }
        Err(e) => s.error(&e),
    }
}

/// The queues a list can show, for its select.
pub(crate) fn queue_opts(l: super::i18n::Lang, selected: &str) -> Vec<Opt> {
    options(
        Queue::ALL
            .iter()
            .map(|q| (q.as_str(), l.t(&format!("queue.{}", q.as_str())).to_string())),
        &[selected],
    )
}
