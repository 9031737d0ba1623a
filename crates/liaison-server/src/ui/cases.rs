//! The joint-case pages (docs/cases.md): `/cases` (the cases of the viewer's agency and a form
//! to open one) and `/cases/{id}` (members, linked items, statistics, timeline, and the forms of
//! what the viewer may do: accept or decline, link, share, write a note, invite, close or
//! reopen, leave, download the case file). What a viewer sees and may do is decided by the use
//! cases (`Node::case`, `Node::case_*`); a refused form shows the service's reason.

use super::html::{Banner, Layout, Opt, filters, render};
use super::i18n::Lang;
use super::{Form, Session, Ui, redirect, service_banner};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as AxState};
use axum::http::StatusCode;
use axum::response::Response;
use jiff::Timestamp;
use liaison_core::case::{CaseChange, CaseEvent, ItemKind, MemberStatus};
use liaison_core::{Marking, Tlp};
use liaison_service::ServiceError;
use liaison_service::cases::{CaseStats, CaseView, ItemRef};

/// `/cases`.
#[derive(Template)]
#[template(path = "cases.html")]
struct CasesPage<'a> {
    layout: Layout<'a>,
    rows: Vec<CaseRow>,
    may_open: bool,
    tlps: Vec<Opt>,
}

struct CaseRow {
    id: String,
    reference: String,
    name: String,
    lead: String,
    state: String,
    tlp: String,
    tlp_class: &'static str,
    status: String,
    updated: String,
}

/// `/cases/{id}`.
#[derive(Template)]
#[template(path = "case.html")]
struct CasePage<'a> {
    layout: Layout<'a>,
    c: Shown,
}

struct Shown {
    id: String,
    reference: String,
    name: String,
    lead: String,
    state: String,
    open: bool,
    tlp: String,
    tlp_class: &'static str,
    /// "this node" or the peer node that keeps the case.
    home: String,
    status: String,
    invited: bool,
    is_lead: bool,
    member: bool,
    /// Drafting roles: accept, decline, leave, and the lead's changes.
    leads: bool,
    /// Roles that comment: link, share, notes.
    works: bool,
    members: Vec<(String, String, String)>,
    links: Vec<LinkRow>,
    stats: Option<StatsShown>,
    timeline: Vec<EventRow>,
    actions: Vec<(String, String, String)>,
    tlps: Vec<Opt>,
}

struct LinkRow {
    label: String,
    title: String,
    reference: String,
    href: String,
    linked_by: String,
    shared: bool,
    /// The viewer's agency originated it and has not shared it: the share button.
    may_share: bool,
    kind: String,
    id: String,
    state: String,
    usable: String,
}

struct StatsShown {
    line: String,
    by_state: Vec<(String, u64)>,
    deadlines: Vec<(String, String, String, bool)>,
}

struct EventRow {
    seq: u64,
    at: String,
    agency: String,
    actor: String,
    text: String,
}

fn when(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// `key`'s message with each `{}` replaced by the next of `args`.
fn tn(l: Lang, key: &str, args: &[&str]) -> String {
    let mut s = l.t(key).to_string();
    for a in args {
        s = s.replacen("{}", a, 1);
    }
    s
}

fn tlp_opts(selected: Tlp) -> Vec<Opt> {
    [Tlp::Green, Tlp::Amber, Tlp::AmberStrict, Tlp::Red]
        .into_iter()
        .map(|t| Opt {
            value: t.as_str().to_string(),
            label: t.as_str().to_string(),
            selected: t == selected,
        })
        .collect()
}

fn status_word(l: Lang, s: MemberStatus) -> String {
    l.word("case.status", s.as_str())
}

fn marking_text(m: &Marking) -> String {
    if m.recipients.is_empty() {
        m.tlp.to_string()
    } else {
        format!("{} ({})", m.tlp, m.recipients.join(", "))
    }
}

/// One timeline line in the viewer's language.
fn event_text(l: Lang, e: &CaseEvent) -> String {
    let note = |n: &Option<String>| n.as_ref().map(|n| format!(": {n}")).unwrap_or_default();
    match &e.change {
        CaseChange::Created { name, reference, .. } => tn(l, "case.ev_created", &[reference, name]),
        CaseChange::Invited { agency } => tn(l, "case.ev_invited", &[agency]),
        CaseChange::Joined { agency } => tn(l, "case.ev_joined", &[agency]),
        CaseChange::Declined { agency, note: n } => tn(l, "case.ev_declined", &[agency]) + &note(n),
        CaseChange::Left { agency, note: n } => tn(l, "case.ev_left", &[agency]) + &note(n),
        CaseChange::Linked { item, shared } => {
            let what = format!(
                "{} {} “{}”",
                l.word("case.kind", item.kind.as_str()),
                item.reference.as_deref().unwrap_or(&item.id),
                item.title
            );
            let mut s = tn(l, "case.ev_linked", &[&what]);
            if *shared {
                s.push_str(l.t("case.ev_and_shared"));
            }
            s
        }
        CaseChange::Shared { item } => {
            let what = format!(
                "{} {}",
                l.word("case.kind", item.kind.as_str()),
                item.reference.as_deref().unwrap_or(&item.id)
            );
            tn(l, "case.ev_shared", &[&what])
        }
        CaseChange::Withheld { item_kind } => tn(l, "case.ev_withheld", &[&l.word("case.kind", item_kind.as_str())]),
        CaseChange::Note { text, marking } => format!("[{}] {text}", marking_text(marking)),
        CaseChange::Marking { marking } => tn(l, "case.ev_marking", &[&marking_text(marking)]),
        CaseChange::Closed { note: n } => l.t("case.ev_closed").to_string() + &note(n),
        CaseChange::Reopened => l.t("case.ev_reopened").to_string(),
    }
}

fn shown(s: &Session, v: CaseView, stats: Option<CaseStats>) -> Shown {
    let l = s.ctx.lang;
    let mine = |a: &str| a.eq_ignore_ascii_case(&s.agency_code);
    let is_lead = mine(&v.lead);
    let links = v
        .links
        .iter()
        .map(|lv| {
            let item = lv.link.item.as_ref();
            LinkRow {
                label: l.word("case.kind", &lv.label),
                title: item
                    .map(|i| i.title.clone())
                    .unwrap_or_else(|| l.t("case.withheld").to_string()),
                reference: item.and_then(|i| i.reference.clone()).unwrap_or_default(),
                href: match (item, &lv.live) {
                    (Some(i), Some(_)) if i.kind == ItemKind::Request => format!("/requests/{}", i.id),
                    _ => String::new(),
                },
                linked_by: lv.link.linked_by.clone(),
                shared: lv.link.shared_seq.is_some(),
                may_share: lv.link.shared_seq.is_none() && item.is_some_and(|i| mine(&i.originator)),
                kind: lv.link.item_kind.as_str().to_string(),
                id: item.map(|i| i.id.clone()).unwrap_or_default(),
                state: match (&lv.live, item) {
                    (Some(live), _) => l.word("state", &live.state),
                    (None, Some(i)) => i
                        .state
                        .as_deref()
                        .map(|st| format!("{} ({})", l.word("state", st), l.t("case.when_linked")))
                        .unwrap_or_else(|| "—".into()),
                    _ => "—".into(),
                },
                usable: match &lv.live {
                    Some(live) if live.usable_in_case => l.t("case.usable_yes").to_string(),
                    Some(_) => l.t("case.usable_no").to_string(),
                    None => "—".into(),
                },
            }
        })
        .collect();
    let stats = stats.map(|st| StatsShown {
        line: tn(
            l,
            "case.stats_line",
            &[
                &st.members.to_string(),
                &st.requests.to_string(),
                &st.leads.to_string(),
                &st.notices.to_string(),
                &st.evidence.to_string(),
                &st.withheld.to_string(),
                &st.median_answer_secs
                    .map(|m| format!("{:.1}", m as f64 / 86_400.0))
                    .unwrap_or_else(|| "—".into()),
            ],
        ),
        by_state: st
            .requests_by_state
            .iter()
            .map(|(k, n)| (l.word("state", k), *n))
            .collect(),
        deadlines: st
            .open_deadlines
            .iter()
            .map(|d| {
                (
                    d.reference.clone(),
                    l.word("case.deadline", &d.deadline),
                    when(d.due),
                    d.overdue,
                )
            })
            .collect(),
    });
    Shown {
        home: v.home.clone().unwrap_or_else(|| l.t("case.this_node").to_string()),
        status: status_word(l, v.status),
        invited: v.status == MemberStatus::Invited,
        member: v.status == MemberStatus::Active,
        is_lead,
        leads: s.p.role.may_draft(),
        works: s.p.role.may_comment(),
        open: v.state == liaison_core::case::CaseState::Open,
        state: l.word("case.state", v.state.as_str()),
        tlp: marking_text(&v.marking),
        tlp_class: super::pages::marking_class(v.marking.tlp),
        members: v
            .members
            .iter()
            .map(|m| (m.agency.clone(), status_word(l, m.status), when(m.since)))
            .collect(),
        links,
        stats,
        timeline: v
            .timeline
            .iter()
            .rev()
            .map(|e| EventRow {
                seq: e.seq,
                at: when(e.at),
                agency: e.agency.clone(),
                actor: e.actor.clone(),
                text: event_text(l, e),
            })
            .collect(),
        actions: v
            .actions
            .iter()
            .map(|a| (l.word("case.action", &a.kind), when(a.at), a.outcome.clone()))
            .collect(),
        tlps: tlp_opts(v.marking.tlp),
        id: v.id,
        reference: v.reference,
        name: v.name,
        lead: v.lead,
    }
}

async fn list_page(ui: &Ui, s: &Session, status: StatusCode, mut banners: Vec<Banner>) -> Response {
    let l = s.ctx.lang;
    let rows = match ui.node.cases(&s.p).await {
        Ok(cs) => cs
            .into_iter()
            .map(|c| {
                let tlp: Tlp = c.tlp.parse().unwrap_or(Tlp::Red);
                CaseRow {
                    id: c.id,
                    reference: c.reference,
                    name: c.name,
                    lead: c.lead,
                    state: l.word("case.state", c.state.as_str()),
                    tlp: c.tlp,
                    tlp_class: super::pages::marking_class(tlp),
                    status: status_word(l, c.status),
                    updated: when(c.updated_at),
                }
            })
            .collect(),
        Err(e) => {
            banners.push(service_banner(l, &e).1);
            Vec::new()
        }
    };
    let page = CasesPage {
        layout: s.layout(l.t("case.list_title"), banners),
        rows,
        may_open: s.p.role.may_draft(),
        tlps: tlp_opts(ui.node.markings().request),
    };
    render(status, &page)
}

async fn case_page(ui: &Ui, s: &Session, id: &str, status: StatusCode, mut banners: Vec<Banner>) -> Response {
    let now = Timestamp::now();
    let v = match ui.node.case(&s.p, id, now).await {
        Ok(v) => v,
        Err(e) => return s.error(&e),
    };
    let stats = match ui.node.case_stats(&s.p, id, now).await {
        Ok(st) => Some(st),
        Err(e) => {
            banners.push(service_banner(s.ctx.lang, &e).1);
            None
        }
    };
    if v.actions.iter().any(|a| a.outcome == "waiting") {
        banners.push(Banner::info(s.ctx.lang.t("case.waiting")));
    }
    let title = format!("{} · {}", v.reference, v.name);
    let page = CasePage {
        layout: s.layout(&title, banners),
        c: shown(s, v, stats),
    };
    render(status, &page)
}

/// `GET /cases`.
pub async fn list(AxState(ui): AxState<Ui>, mut s: Session) -> Response {
    s.ctx.here = "/cases".into();
    list_page(&ui, &s, StatusCode::OK, Vec::new()).await
}

/// `POST /cases`: open a case (fields `name`, `reference`, `invite` — codes separated by
/// commas or spaces —, `tlp`).
pub async fn create(AxState(ui): AxState<Ui>, mut s: Session, body: Bytes) -> Response {
    s.ctx.here = "/cases".into();
    let form = Form::parse(&body);
    if !s.csrf_ok(&ui, &form) {
        return s.csrf_rejected();
    }
    let invite: Vec<String> = form
        .get("invite")
        .unwrap_or("")
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    let marking = match form.get("tlp").map(str::parse::<Tlp>) {
        Some(Ok(t)) => Some(Marking::new(t)),
        Some(Err(e)) => return refused(&ui, &s, ServiceError::invalid("tlp", e.to_string())).await,
        None => None,
    };
    let created = ui
        .node
        .case_create(
            &s.p,
            form.get("name").unwrap_or(""),
            form.get("reference").unwrap_or(""),
            marking,
            &invite,
            Timestamp::now(),
        )
        .await;
    match created {
        Ok(v) => redirect(&format!("/cases/{}?done=created", v.id)),
        Err(e) => refused(&ui, &s, e).await,
    }
}

async fn refused(ui: &Ui, s: &Session, e: ServiceError) -> Response {
    let (st, b) = service_banner(s.ctx.lang, &e);
    list_page(ui, s, st, vec![b]).await
}

/// `GET /cases/{id}`.
pub async fn show(
    AxState(ui): AxState<Ui>,
    mut s: Session,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    s.ctx.here = format!("/cases/{id}");
    let q = Form::query(raw.as_deref());
    let mut banners = Vec::new();
    if let Some(done) = q.get("done") {
        let key = format!(
            "case.done_{}",
            done.chars().filter(char::is_ascii_lowercase).collect::<String>()
        );
        banners.push(Banner::ok(s.ctx.lang.t(&key)));
    }
    case_page(&ui, &s, &id, StatusCode::OK, banners).await
}

/// `POST /cases/{id}/act`: one of the viewer's changes, named by the form's `do`.
pub async fn act(AxState(ui): AxState<Ui>, mut s: Session, Path(id): Path<String>, body: Bytes) -> Response {
    s.ctx.here = format!("/cases/{id}");
    let form = Form::parse(&body);
    if !s.csrf_ok(&ui, &form) {
        return s.csrf_rejected();
    }
    let now = Timestamp::now();
    let node = &ui.node;
    let p = &s.p;
    let note = form.get("note").map(str::to_string);
    let item = || -> Result<ItemRef, ServiceError> {
        let kind = form
            .get("kind")
            .unwrap_or("request")
            .parse::<ItemKind>()
            .map_err(|e| ServiceError::invalid("kind", e.to_string()))?;
        let id = form
            .get("item")
            .ok_or_else(|| ServiceError::invalid("item", "name the request (its reference or id)"))?;
        Ok(ItemRef {
            kind,
            id: id.trim().to_string(),
        })
    };
    let what = form.get("do").unwrap_or("");
    let result = match what {
        "accept" => node.case_answer(p, &id, true, None, now).await,
        "decline" => node.case_answer(p, &id, false, note, now).await,
        "leave" => node.case_leave(p, &id, note, now).await,
        "invite" => node.case_invite(p, &id, form.get("agency").unwrap_or(""), now).await,
        "close" => node.case_close(p, &id, false, note, now).await,
        "reopen" => node.case_close(p, &id, true, None, now).await,
        "link" => match item() {
            Ok(i) => node.case_link(p, &id, &i, form.get("share").is_some(), now).await,
            Err(e) => Err(e),
        },
        "share" => match item() {
            Ok(i) => node.case_share(p, &id, &i, now).await,
            Err(e) => Err(e),
        },
        "note" => {
            let marking = match form.get("tlp").map(str::parse::<Tlp>) {
                Some(Ok(t)) => Ok(Some(Marking::new(t))),
                Some(Err(e)) => Err(ServiceError::invalid("tlp", e.to_string())),
                None => Ok(None),
            };
            match marking {
                Ok(m) => node.case_note(p, &id, form.get("text").unwrap_or(""), m, now).await,
                Err(e) => Err(e),
            }
        }
        other => Err(ServiceError::invalid("do", format!("'{other}' is not a case action"))),
    };
    match result {
        Ok(v) if v.home.is_some() => redirect(&format!("/cases/{id}?done=sent")),
        Ok(_) => redirect(&format!("/cases/{id}?done={what}")),
        Err(e) => {
            let (st, b) = service_banner(s.ctx.lang, &e);
            case_page(&ui, &s, &id, st, vec![b]).await
        }
    }
}

/// `POST /cases/{id}/export`: the case file as a download.
pub async fn export(AxState(ui): AxState<Ui>, mut s: Session, Path(id): Path<String>, body: Bytes) -> Response {
    s.ctx.here = format!("/cases/{id}");
    let form = Form::parse(&body);
    if !s.csrf_ok(&ui, &form) {
        return s.csrf_rejected();
    }
    match crate::cases_api::case_file_response(&ui.node, &s.p, &id).await {
        Ok(r) => r,
        Err(e) => {
            let (st, b) = service_banner(s.ctx.lang, &e);
            case_page(&ui, &s, &id, st, vec![b]).await
        }
    }
}
