//! The page handlers: each parses its input, calls one or two [`Node`] use cases and renders
//! the result or a banner naming what went wrong. No decisions are made here.

use super::html::{Banner, esc, options, url_enc};
use super::i18n::Lang;
use super::{Ctx, Form, LANG_COOKIE, Session, TOKEN_COOKIE, Ui, redirect, same_site, service_banner, set_cookie};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use liaison_core::directory::{Agency, time_zone};
use liaison_core::lifecycle::{Needs, RULES, RefusalReason, State, TransitionInput};
use liaison_core::request::{FieldError, RequestDraft, TargetValue};
use liaison_core::{AgencyId, RequestId, RequestKind, Urgency};
use liaison_service::{GroupBy, ServiceError};
use liaison_service::{Principal, RequestFilter, StoredRequest};
use std::collections::HashMap;
use std::fmt::Write as _;

// ----- helpers -------------------------------------------------------------------------------

fn utc(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// A deadline: UTC, and below it the requested agency's local time.
fn due(ts: Option<Timestamp>, zone: Option<&(TimeZone, String)>) -> String {
    match (ts, zone) {
        (None, _) => "—".into(),
        (Some(t), None) => esc(&utc(t)),
        (Some(t), Some((tz, name))) => format!(
            "{}<br><span class=\"small\">{} ({})</span>",
            esc(&utc(t)),
            esc(&t.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M %Z").to_string()),
            esc(name)
        ),
    }
}

async fn agencies(ui: &Ui, p: &Principal) -> Result<HashMap<AgencyId, (Agency, Option<String>)>, ServiceError> {
    Ok(ui
        .node
        .agencies(p)
        .await?
        .into_iter()
        .map(|(a, n)| (a.id, (a, n)))
        .collect())
}

fn code_of(map: &HashMap<AgencyId, (Agency, Option<String>)>, id: AgencyId) -> String {
    map.get(&id)
        .map(|(a, _)| a.code.clone())
        .unwrap_or_else(|| id.to_string())
}

fn agency_name(a: &Agency) -> String {
    if a.name_native != a.name_en && !a.name_native.is_empty() {
        format!("{} — {} ({})", a.code, a.name_en, a.name_native)
    } else {
        format!("{} — {}", a.code, a.name_en)
    }
}

fn zone_of(a: Option<&Agency>) -> Option<(TimeZone, String)> {
    a.and_then(|a| time_zone(&a.time_zone).ok().map(|z| (z, a.time_zone.clone())))
}

fn badge_state(lang: Lang, s: State) -> String {
    format!(
        "<span class=\"badge state\" data-state=\"{}\">{}</span>",
        s.as_str(),
        esc(&lang.word("state", s.as_str()))
    )
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

fn bad_form(s: &Session) -> Response {
    s.csrf_rejected()
}

// ----- sign-in, sign-out, language -----------------------------------------------------------

pub async fn home(ctx: Ctx) -> Response {
    if ctx.token.is_some() {
        redirect("/requests")
    } else {
        redirect("/login")
    }
}

fn login_page(ctx: &Ctx, status: StatusCode, banners: &[Banner]) -> Response {
    let l = ctx.lang;
    let body = format!(
        "<form class=\"card\" method=\"post\" action=\"/login\"><p>{}</p>\
         <label for=\"token\">{}</label>\
         <input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"off\" required>\
         <p><button type=\"submit\" id=\"login\">{}</button></p></form>",
        esc(l.t("login.intro")),
        esc(l.t("login.token")),
        esc(l.t("login.submit")),
    );
    ctx.page(status, l.t("login.title"), banners, &body)
}

pub async fn login_form(mut ctx: Ctx, RawQuery(q): RawQuery) -> Response {
    let q = Form::query(q.as_deref());
    let mut banners = vec![];
    if q.get("out").is_some() {
        banners.push(Banner::ok(ctx.lang.t("logout.done")));
    }
    if q.get("expired").is_some() {
        banners.push(Banner::info(ctx.lang.t("err.unauthenticated")));
    }
    ctx.here = "/login".into();
    login_page(&ctx, StatusCode::OK, &banners)
}

pub async fn login(AxState(ui): AxState<Ui>, mut ctx: Ctx, headers: HeaderMap, body: Bytes) -> Response {
    ctx.here = "/login".into();
    let l = ctx.lang;
    if !same_site(&headers) {
        return login_page(&ctx, StatusCode::FORBIDDEN, &[Banner::error_html(esc(l.t("err.csrf")))]);
    }
    let form = Form::parse(&body);
    let Some(token) = form.get("token").map(str::trim) else {
        return login_page(
            &ctx,
            StatusCode::BAD_REQUEST,
            &[Banner::error_html(format!(
                "<strong>{}</strong>: {}",
                esc(l.t("field.token")),
                esc(l.t("login.empty"))
            ))],
        );
    };
    let plausible = token.len() <= 256 && token.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let result = if plausible {
        ui.node.authenticate(token, Timestamp::now()).await
    } else {
        Err(ServiceError::Unauthenticated("malformed token".into()))
    };
    match result {
        Ok(_) => {
            let mut r = redirect("/requests");
            set_cookie(&mut r, &format!("{TOKEN_COOKIE}={token}{}", ctx.cookie_attrs()));
            r
        }
        Err(ServiceError::Unauthenticated(_)) => login_page(
            &ctx,
            StatusCode::UNAUTHORIZED,
            &[Banner::error_html(format!(
                "<strong>{}</strong>: {}",
                esc(l.t("field.token")),
                esc(l.t("login.failed"))
            ))],
        ),
        Err(e) => {
            let (status, b) = service_banner(l, &e);
            login_page(&ctx, status, &[b])
        }
    }
}

pub async fn logout(AxState(ui): AxState<Ui>, s: Session, body: Bytes) -> Response {
    if !s.csrf_ok(&ui, &Form::parse(&body)) {
        return bad_form(&s);
    }
    let mut r = redirect("/login?out=1");
    set_cookie(&mut r, &format!("{TOKEN_COOKIE}={}; Max-Age=0", s.ctx.cookie_attrs()));
    r
}

pub async fn set_lang(ctx: Ctx, RawQuery(q): RawQuery) -> Response {
    let q = Form::query(q.as_deref());
    let lang = q.get("to").and_then(Lang::parse).unwrap_or(ctx.lang);
    let back = q
        .get("back")
        .filter(|b| b.starts_with('/') && !b.starts_with("//") && !b.contains('\\') && !b.starts_with("/lang"))
        .unwrap_or("/requests");
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

pub async fn list(AxState(ui): AxState<Ui>, s: Session, RawQuery(raw): RawQuery) -> Response {
    let l = s.ctx.lang;
    let q = Form::query(raw.as_deref());
    let mut errors = Vec::new();
    let mut f = RequestFilter {
        limit: 50,
        ..Default::default()
    };
    let state = q.get("state");
    if let Some(v) = state {
        match v.parse::<State>() {
            Ok(st) => f.states.push(st),
            Err(e) => errors.push(FieldError {
                field: "state".into(),
                message: e.to_string(),
            }),
        }
    }
    let kind = q.get("kind");
    if let Some(v) = kind {
        match v.parse::<RequestKind>() {
            Ok(k) => f.kind = Some(k),
            Err(e) => errors.push(FieldError {
                field: "kind".into(),
                message: e.to_string(),
            }),
        }
    }
    let overdue = q.get("overdue").is_some();
    let now = Timestamp::now();
    if overdue {
        f.overdue_at = Some(now);
    }
    if let Some(c) = q.get("cursor") {
        match c.parse::<RequestId>() {
            Ok(id) => f.before = Some(id),
            Err(_) => errors.push(FieldError {
                field: "cursor".into(),
                message: format!("'{c}' is not a page cursor of this list"),
            }),
        }
    }
    let mut banners = Vec::new();
    let mut status = StatusCode::OK;
    let page = if errors.is_empty() {
        match ui.node.list(&s.p, f, now).await {
            Ok(p) => Some(p),
            Err(e) => {
                let (st, b) = service_banner(l, &e);
                status = st;
                banners.push(b);
                None
            }
        }
    } else {
        let (st, b) = service_banner(l, &ServiceError::Invalid(errors));
        status = st;
        banners.push(b);
        None
    };
    let map = match agencies(&ui, &s.p).await {
        Ok(m) => m,
        Err(e) => return s.error(&e),
    };

    let mut body = String::new();
    // Filters.
    let any = l.t("list.any").to_string();
    let state_opts = std::iter::once(("", any.clone()))
        .chain(State::ALL.iter().map(|st| (st.as_str(), l.word("state", st.as_str()))));
    let kind_opts = std::iter::once(("", any)).chain(
        RequestKind::ALL
            .iter()
            .map(|k| (k.as_str(), l.word("kind", k.as_str()))),
    );
    let _ = write!(
        body,
        "<form class=\"card filters\" method=\"get\" action=\"/requests\" aria-label=\"{}\">\
         <div><label for=\"f-state\">{}</label><select id=\"f-state\" name=\"state\">{}</select></div>\
         <div><label for=\"f-kind\">{}</label><select id=\"f-kind\" name=\"kind\">{}</select></div>\
         <div><label class=\"inline\"><input type=\"checkbox\" name=\"overdue\" value=\"1\"{}> {}</label></div>\
         <div><button type=\"submit\">{}</button> <a class=\"button secondary\" href=\"/requests\">{}</a></div></form>",
        esc(l.t("list.filters")),
        esc(l.t("list.state")),
        options(state_opts, &[state.unwrap_or("")]),
        esc(l.t("list.kind")),
        options(kind_opts, &[kind.unwrap_or("")]),
        if overdue { " checked" } else { "" },
        esc(l.t("list.overdue_only")),
        esc(l.t("list.apply")),
        esc(l.t("list.reset")),
    );
    if let Some(page) = page {
        if page.items.is_empty() {
            let _ = write!(body, "<p class=\"card\">{}</p>", esc(l.t("list.empty")));
        } else {
            let _ = write!(
                body,
                "<table class=\"list\" id=\"requests\"><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th>\
                 <th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th>\
                 <th scope=\"col\">{}</th></tr></thead><tbody>",
                esc(l.t("col.case")),
                esc(l.t("col.pair")),
                esc(l.t("col.kind")),
                esc(l.t("col.urgency")),
                esc(l.t("col.state")),
                esc(l.t("col.ack_due")),
                esc(l.t("col.answer_due")),
            );
            for rq in &page.items {
                let zone = zone_of(map.get(&rq.requested_agency).map(|(a, _)| a));
                let overdue = match rq.overdue {
                    Some(d) => format!(
                        " <span class=\"badge overdue\" title=\"{}\">{}</span>",
                        esc(&l.word("deadline", d.as_str())),
                        esc(l.t("badge.overdue"))
                    ),
                    None => String::new(),
                };
                let _ = write!(
                    body,
                    "<tr><td><a href=\"/requests/{id}\">{case}</a></td><td>{from} → {to}</td><td>{kind}</td>\
                     <td>{urg}</td><td>{state}{overdue}</td><td>{ack}</td><td>{ans}</td></tr>",
                    id = rq.id,
                    case = esc(if rq.case_reference.is_empty() {
                        "—"
                    } else {
                        &rq.case_reference
                    }),
                    from = esc(&code_of(&map, rq.requesting_agency)),
                    to = esc(&code_of(&map, rq.requested_agency)),
                    kind = esc(&l.word("kind", rq.kind.as_str())),
                    urg = esc(&l.word("urgency", rq.urgency.as_str())),
                    state = badge_state(l, rq.state),
                    ack = due(rq.ack_due, zone.as_ref()),
                    ans = due(rq.answer_due, zone.as_ref()),
                );
            }
            body.push_str("</tbody></table>");
        }
        let mut keep = String::new();
        for (k, v) in [("state", state), ("kind", kind), ("overdue", overdue.then_some("1"))] {
            if let Some(v) = v {
                let _ = write!(keep, "{k}={}&", url_enc(v));
            }
        }
        body.push_str("<p class=\"pager\">");
        if q.get("cursor").is_some() {
            let _ = write!(
                body,
                "<a href=\"/requests?{}\">{}</a>",
                esc(keep.trim_end_matches('&')),
                esc(l.t("list.first"))
            );
        }
        if let Some(next) = &page.next {
            let _ = write!(
                body,
                "<a id=\"next-page\" href=\"/requests?{}cursor={}\">{}</a>",
                esc(&keep),
                esc(&url_enc(next)),
                esc(l.t("list.next"))
            );
        }
        body.push_str("</p>");
    }
    s.page(status, l.t("list.title"), &banners, &body)
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
    render_detail(&ui, &s, &id, StatusCode::OK, banners).await
}

fn parse_id(id: &str) -> Result<RequestId, ServiceError> {
    id.parse()
        .map_err(|_| ServiceError::NotFound(format!("'{id}' is not a request id")))
}

async fn render_detail(ui: &Ui, s: &Session, id: &str, status: StatusCode, banners: Vec<Banner>) -> Response {
    let l = s.ctx.lang;
    let now = Timestamp::now();
    let id = match parse_id(id) {
        Ok(id) => id,
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
    let rq = &r.request;
    let d = &rq.draft;
    let requesting = map.get(&d.requesting_agency).map(|(a, _)| a);
    let requested = map.get(&d.requested_agency).map(|(a, _)| a);
    let zone = zone_of(requested);
    let mut body = String::new();

    // Facts.
    let row = |body: &mut String, key: &str, html: String| {
        let _ = write!(body, "<tr><th scope=\"row\">{}</th><td>{html}</td></tr>", esc(l.t(key)));
    };
    let _ = write!(
        body,
        "<p><a href=\"/requests\">← {}</a></p><section class=\"card\" aria-labelledby=\"facts\"><h2 id=\"facts\">{}</h2><table class=\"facts\">",
        esc(l.t("detail.back")),
        esc(l.t("detail.facts"))
    );
    let mut state_html = format!("<span id=\"state\">{}</span>", badge_state(l, rq.state));
    if let Some(dk) = r.overdue {
        let _ = write!(
            state_html,
            " <span class=\"badge overdue\">{}</span>",
            esc(&l.word("deadline", dk.as_str()))
        );
    }
    row(&mut body, "detail.state", state_html);
    row(
        &mut body,
        "detail.requesting",
        esc(&requesting
            .map(agency_name)
            .unwrap_or_else(|| d.requesting_agency.to_string())),
    );
    row(
        &mut body,
        "detail.requested",
        esc(&requested
            .map(agency_name)
            .unwrap_or_else(|| d.requested_agency.to_string())),
    );
    row(&mut body, "detail.kind", esc(&l.word("kind", d.kind.as_str())));
    row(&mut body, "detail.urgency", esc(&l.word("urgency", d.urgency.as_str())));
    row(&mut body, "detail.case_reference", esc(&d.case_reference));
    let offences: Vec<String> = d
        .offences
        .iter()
        .map(|c| format!("<li>{}</li>", esc(&offence_label(ui, l, c))))
        .collect();
    row(&mut body, "detail.offences", format!("<ul>{}</ul>", offences.concat()));
    row(
        &mut body,
        "detail.summary",
        format!("<div class=\"pre\" id=\"summary\">{}</div>", esc(&d.summary)),
    );
    if !d.legal_basis.is_empty() {
        row(&mut body, "detail.legal_basis", esc(&d.legal_basis));
    }
    let cats = if d.data_categories.is_empty() {
        d.kind.default_categories().to_vec()
    } else {
        d.data_categories.clone()
    };
    if !cats.is_empty() {
        let names: Vec<String> = cats.iter().map(|c| l.word("category", c.as_str())).collect();
        row(&mut body, "detail.data_categories", esc(&names.join(", ")));
    }
    row(&mut body, "detail.created", esc(&utc(rq.created_at)));
    if let Some(t) = rq.submitted_at {
        row(&mut body, "detail.submitted", esc(&utc(t)));
    }
    row(&mut body, "detail.ack_due", due(rq.ack_due, zone.as_ref()));
    row(&mut body, "detail.answer_due", due(rq.answer_due, zone.as_ref()));
    if rq.preserved_until.is_some() {
        row(
            &mut body,
            "detail.preserved_until",
            due(rq.preserved_until, zone.as_ref()),
        );
    }
    row(&mut body, "detail.version", rq.version.to_string());
    body.push_str("</table></section>");

    // Actions.
    let _ = write!(
        body,
        "<section class=\"card\" aria-labelledby=\"actions\"><h2 id=\"actions\">{}</h2>",
        esc(l.t("detail.actions"))
    );
    if allowed.is_empty() {
        let _ = write!(body, "<p>{}</p>", esc(l.t("detail.no_actions")));
    } else {
        body.push_str("<div class=\"actions\">");
        for to in &allowed {
            body.push_str(&transition_form(s, rq.id, rq.version, rq.state, *to));
        }
        body.push_str("</div>");
    }
    body.push_str("</section>");

    // Targets.
    let _ = write!(
        body,
        "<section class=\"card\" aria-labelledby=\"targets\"><h2 id=\"targets\">{}</h2>",
        esc(l.t("detail.targets"))
    );
    if d.targets.is_empty() {
        let _ = write!(body, "<p>{}</p>", esc(l.t("detail.no_targets")));
    } else {
        let _ = write!(
            body,
            "<table><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
            esc(l.t("detail.target_type")),
            esc(l.t("detail.target_value")),
            esc(l.t("detail.period"))
        );
        for t in &d.targets {
            let (kind, value) = target_text(&t.value);
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{} – {}</td></tr>",
                esc(&l.word("target", kind)),
                esc(&value),
                esc(&utc(t.from)),
                esc(&utc(t.until))
            );
        }
        body.push_str("</tbody></table>");
    }
    body.push_str("</section>");

    // Assessment.
    body.push_str(&assessment_html(l, &r));

    // Comment.
    if s.p.role.may_comment() {
        let _ = write!(
            body,
            "<form class=\"card\" method=\"post\" action=\"/requests/{id}/comment\"><h2>{}</h2>{}\
             <label for=\"comment-text\">{}</label><textarea id=\"comment-text\" name=\"text\" required maxlength=\"20000\"></textarea>\
             <p><button type=\"submit\" id=\"comment-submit\">{}</button></p></form>",
            esc(l.t("detail.comment")),
            s.csrf_input(),
            esc(l.t("detail.comment_text")),
            esc(l.t("detail.comment_submit")),
        );
    }

    // History.
    let _ = write!(
        body,
        "<section class=\"card\" aria-labelledby=\"history\"><h2 id=\"history\">{}</h2><table id=\"history-table\"><thead><tr>\
         <th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
        esc(l.t("detail.history")),
        esc(l.t("hist.at")),
        esc(l.t("hist.actor")),
        esc(l.t("hist.event")),
        esc(l.t("hist.change")),
        esc(l.t("hist.details")),
    );
    for e in &events {
        let change = match (e.from_state, e.to_state) {
            (Some(a), Some(b)) => format!("{} → {}", l.word("state", a.as_str()), l.word("state", b.as_str())),
            (None, Some(b)) => l.word("state", b.as_str()),
            _ => String::new(),
        };
        let mut details = String::new();
        if let Some(reason) = &e.reason {
            let _ = write!(details, "<div class=\"pre\">{}</div>", esc(reason));
        }
        if let Some(serde_json::Value::Object(data)) = &e.data {
            for (k, v) in data {
                let shown = match (k.as_str(), v.as_str()) {
                    ("refusal_reason", Some(code)) => l.word("refusal", code),
                    ("preserved_until", Some(ts)) => {
                        ts.parse::<Timestamp>().map(utc).unwrap_or_else(|_| ts.to_string())
                    }
                    (_, Some(sv)) => sv.to_string(),
                    _ => v.to_string(),
                };
                let _ = write!(
                    details,
                    "<div class=\"small\">{}: {}</div>",
                    esc(&l.word("field", k)),
                    esc(&shown)
                );
            }
        }
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{details}</td></tr>",
            esc(&utc(e.at)),
            esc(&e.actor),
            esc(&l.word("event", &e.event)),
            esc(&change),
        );
    }
    body.push_str("</tbody></table></section>");
    let title = format!(
        "{} · {}",
        if d.case_reference.is_empty() {
            rq.id.to_string()
        } else {
            d.case_reference.clone()
        },
        l.word("kind", d.kind.as_str())
    );
    s.page(status, &title, &banners, &body)
}

fn target_text(v: &TargetValue) -> (&'static str, String) {
    match v {
        TargetValue::Ip {
            address,
            port,
            observed_at,
            zone,
        } => {
            let mut s = match port {
                Some(p) => format!("{address} port {p}"),
                None => address.to_string(),
            };
            let _ = write!(s, " @ {}", utc(*observed_at));
            if let Some(z) = zone {
                let _ = write!(s, " (log zone {z})");
            }
            ("ip", s)
        }
        TargetValue::Domain { name } => ("domain", name.clone()),
        TargetValue::Url { url } => ("url", url.clone()),
        TargetValue::Email { address } => ("email", address.clone()),
        TargetValue::Account { service, identifier } => ("account", format!("{service}: {identifier}")),
        TargetValue::Phone { number } => ("phone", number.clone()),
        TargetValue::CryptoWallet { currency, address } => ("crypto_wallet", format!("{currency}: {address}")),
        TargetValue::BankAccount {
            institution,
            identifier,
        } => ("bank_account", format!("{institution}: {identifier}")),
    }
}

fn assessment_html(l: Lang, r: &StoredRequest) -> String {
    let mut out = format!(
        "<section class=\"card\" aria-labelledby=\"assessment\"><h2 id=\"assessment\">{}</h2>",
        esc(l.t("detail.assessment"))
    );
    match &r.assessment {
        None => {
            let _ = write!(out, "<p>{}</p>", esc(l.t("detail.no_assessment")));
        }
        Some(v) => match v.value::<liaison_law::Assessment>() {
            Ok(a) => {
                let _ = write!(out, "<p class=\"small\">{}</p>", esc(l.t("footer.advice")));
                out.push_str("<ul class=\"assessment\">");
                for line in a.summary_lines() {
                    let class = if line.starts_with(' ') { "" } else { " class=\"head\"" };
                    let _ = write!(out, "<li{class}>{}</li>", esc(&line));
                }
                out.push_str("</ul>");
            }
            Err(_) => {
                let pretty = v
                    .value::<serde_json::Value>()
                    .and_then(|j| serde_json::to_string_pretty(&j))
                    .unwrap_or_else(|_| v.get().to_string());
                let _ = write!(out, "<pre class=\"pre\">{}</pre>", esc(&pretty));
            }
        },
    }
    if let Some(version) = &r.rule_pack_version {
        let _ = write!(
            out,
            "<p class=\"small\">{}: {}</p>",
            esc(l.t("detail.rule_packs")),
            esc(version)
        );
    }
    out.push_str("</section>");
    out
}

fn needs(from: State, to: State) -> Needs {
    RULES
        .iter()
        .find(|r| r.from == from && r.to == to)
        .map(|r| r.needs)
        .unwrap_or(Needs::Nothing)
}

fn transition_form(s: &Session, id: RequestId, version: i64, from: State, to: State) -> String {
    let l = s.ctx.lang;
    let t = to.as_str();
    let mut fields = String::new();
    let reason = |fields: &mut String| {
        let _ = write!(
            fields,
            "<label for=\"reason-{t}\">{} ({})</label><textarea id=\"reason-{t}\" name=\"reason\" required></textarea>",
            esc(l.t("form.reason")),
            esc(l.t("form.required"))
        );
    };
    match needs(from, to) {
        Needs::Nothing => {}
        Needs::Reason => reason(&mut fields),
        Needs::Refusal => {
            let opts = std::iter::once(("", l.t("form.choose").to_string())).chain(
                RefusalReason::ALL
                    .iter()
                    .map(|r| (r.as_str(), l.word("refusal", r.as_str()))),
            );
            let _ = write!(
                fields,
                "<label for=\"refusal-{t}\">{} ({})</label><select id=\"refusal-{t}\" name=\"refusal_reason\" required>{}</select>",
                esc(l.t("form.refusal_reason")),
                esc(l.t("form.required")),
                options(opts, &[])
            );
            reason(&mut fields);
        }
        Needs::PreservedUntil => {
            let _ = write!(
                fields,
                "<label for=\"until-{t}\">{}</label><input type=\"date\" id=\"until-{t}\" name=\"preserved_until\">\
                 <p class=\"hint\">{}</p>",
                esc(l.t("form.preserved_until")),
                esc(l.t("form.preserved_until_help"))
            );
        }
        Needs::FollowUp => {
            let _ = write!(
                fields,
                "<label for=\"follow-{t}\">{} ({})</label><input type=\"text\" id=\"follow-{t}\" name=\"follow_up\" required>\
                 <p class=\"hint\">{}</p>",
                esc(l.t("form.follow_up")),
                esc(l.t("form.required")),
                esc(l.t("form.follow_up_help"))
            );
        }
    }
    format!(
        "<form method=\"post\" action=\"/requests/{id}/transition\" class=\"action\">{}\
         <input type=\"hidden\" name=\"version\" value=\"{version}\"><input type=\"hidden\" name=\"to\" value=\"{t}\">\
         {fields}<p><button type=\"submit\" id=\"go-{t}\">{}</button></p></form>",
        s.csrf_input(),
        esc(&l.t1("detail.move_to", &l.word("state", t))),
    )
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

pub async fn comment(AxState(ui): AxState<Ui>, mut s: Session, Path(id): Path<String>, body: Bytes) -> Response {
    s.ctx.here = format!("/requests/{}", url_enc(&id));
    let form = Form::parse(&body);
    if !s.csrf_ok(&ui, &form) {
        return bad_form(&s);
    }
    let rid = match parse_id(&id) {
        Ok(r) => r,
        Err(e) => return s.error(&e),
    };
    match ui
        .node
        .comment(&s.p, rid, form.get("text").unwrap_or(""), Timestamp::now())
        .await
    {
        Ok(_) => redirect(&format!("/requests/{rid}?commented=1")),
        Err(e) => {
            let (status, banner) = service_banner(s.ctx.lang, &e);
            render_detail(&ui, &s, &id, status, vec![banner]).await
        }
    }
}

// ----- new draft -----------------------------------------------------------------------------

#[derive(Default)]
struct DraftForm {
    kind: String,
    urgency: String,
    requested: String,
    case_reference: String,
    offences: Vec<String>,
    summary: String,
    legal_basis: String,
}

async fn draft_page(ui: &Ui, s: &Session, f: &DraftForm, status: StatusCode, banners: Vec<Banner>) -> Response {
    let l = s.ctx.lang;
    let map = match agencies(ui, &s.p).await {
        Ok(m) => m,
        Err(e) => return s.error(&e),
    };
    let mut others: Vec<&Agency> = map.values().map(|(a, _)| a).filter(|a| a.id != s.p.agency).collect();
    others.sort_by(|a, b| a.code.cmp(&b.code));
    let choose = l.t("form.choose").to_string();
    let kinds = std::iter::once(("", choose.clone())).chain(
        RequestKind::ALL
            .iter()
            .map(|k| (k.as_str(), l.word("kind", k.as_str()))),
    );
    let urgencies = Urgency::ALL.iter().map(|u| (u.as_str(), l.word("urgency", u.as_str())));
    let agency_ids: Vec<String> = others.iter().map(|a| a.id.to_string()).collect();
    let agency_opts = std::iter::once(("", choose)).chain(
        others
            .iter()
            .zip(&agency_ids)
            .map(|(a, id)| (id.as_str(), format!("{} ({})", agency_name(a), a.jurisdiction))),
    );
    let taxonomy = ui.node.legal.packs().taxonomy();
    let offence_opts = taxonomy
        .iter()
        .map(|o| (o.code.as_ref(), format!("{} — {} / {}", o.code, o.name_en, o.name_zh)));
    let selected: Vec<&str> = f.offences.iter().map(String::as_str).collect();
    let urgency = if f.urgency.is_empty() { "routine" } else { &f.urgency };
    let body = format!(
        "<form class=\"card\" method=\"post\" action=\"/requests/new\"><p>{intro}</p>{csrf}\
         <label for=\"kind\">{l_kind}</label><select id=\"kind\" name=\"kind\" required>{kinds}</select>\
         <label for=\"urgency\">{l_urg}</label><select id=\"urgency\" name=\"urgency\">{urgs}</select>\
         <label for=\"requested_agency\">{l_agency}</label><select id=\"requested_agency\" name=\"requested_agency\" required>{agencies}</select>\
         <label for=\"case_reference\">{l_case}</label><input type=\"text\" id=\"case_reference\" name=\"case_reference\" value=\"{case}\" required maxlength=\"200\">\
         <label for=\"offences\">{l_off}</label><select id=\"offences\" name=\"offences\" multiple required aria-describedby=\"offences-help\">{offs}</select>\
         <p class=\"hint\" id=\"offences-help\">{l_off_help}</p>\
         <label for=\"summary\">{l_sum}</label><textarea id=\"summary\" name=\"summary\" required rows=\"6\">{summary}</textarea>\
         <label for=\"legal_basis\">{l_basis}</label><input type=\"text\" id=\"legal_basis\" name=\"legal_basis\" value=\"{basis}\">\
         <p><button type=\"submit\" id=\"create\">{submit}</button></p></form>",
        intro = esc(l.t("new.intro")),
        csrf = s.csrf_input(),
        l_kind = esc(l.t("new.kind")),
        kinds = options(kinds, &[f.kind.as_str()]),
        l_urg = esc(l.t("new.urgency")),
        urgs = options(urgencies, &[urgency]),
        l_agency = esc(l.t("new.requested_agency")),
        agencies = options(agency_opts, &[f.requested.as_str()]),
        l_case = esc(l.t("new.case_reference")),
        case = esc(&f.case_reference),
        l_off = esc(l.t("new.offences")),
        offs = options(offence_opts, &selected),
        l_off_help = esc(l.t("new.offences_help")),
        l_sum = esc(l.t("new.summary")),
        summary = esc(&f.summary),
        l_basis = esc(l.t("new.legal_basis")),
        basis = esc(&f.legal_basis),
        submit = esc(l.t("new.submit")),
    );
    s.page(status, l.t("new.title"), &banners, &body)
}

pub async fn new_form(AxState(ui): AxState<Ui>, s: Session) -> Response {
    draft_page(&ui, &s, &DraftForm::default(), StatusCode::OK, vec![]).await
}

pub async fn create(AxState(ui): AxState<Ui>, mut s: Session, body: Bytes) -> Response {
    s.ctx.here = "/requests/new".into();
    let form = Form::parse(&body);
    if !s.csrf_ok(&ui, &form) {
        return bad_form(&s);
    }
    let get = |k: &str| form.get(k).unwrap_or("").trim().to_string();
    let f = DraftForm {
        kind: get("kind"),
        urgency: get("urgency"),
        requested: get("requested_agency"),
        case_reference: get("case_reference"),
        offences: form.all("offences").into_iter().map(|s| s.trim().to_string()).collect(),
        summary: form.get("summary").unwrap_or("").to_string(),
        legal_basis: get("legal_basis"),
    };
    let mut errs = Vec::new();
    let mut field_err = |field: &str, message: String| {
        errs.push(FieldError {
            field: field.into(),
            message,
        })
    };
    let kind = match f.kind.parse::<RequestKind>() {
        Ok(k) => Some(k),
        Err(e) => {
            field_err(
                "kind",
                if f.kind.is_empty() {
                    "choose one".into()
                } else {
                    e.to_string()
                },
            );
            None
        }
    };
    let urgency = match (if f.urgency.is_empty() { "routine" } else { &f.urgency }).parse::<Urgency>() {
        Ok(u) => Some(u),
        Err(e) => {
            field_err("urgency", e.to_string());
            None
        }
    };
    let requested = match f.requested.parse::<AgencyId>() {
        Ok(a) => Some(a),
        Err(_) => {
            field_err("requested_agency", "choose the agency you are asking".into());
            None
        }
    };
    if f.offences.is_empty() {
        field_err("offences", "choose at least one offence".into());
    }
    let result = match (kind, urgency, requested) {
        (Some(kind), Some(urgency), Some(requested)) if errs.is_empty() => {
            let draft = RequestDraft {
                kind,
                urgency,
                requesting_agency: s.p.agency,
                requested_agency: requested,
                case_reference: f.case_reference.clone(),
                offences: f.offences.clone(),
                summary: f.summary.clone(),
                targets: vec![],
                data_categories: vec![],
                legal_basis: f.legal_basis.clone(),
                related: vec![],
                attachments: vec![],
                amount: None,
                conduct: vec![],
            };
            ui.node.create_request(&s.p, draft, Timestamp::now()).await
        }
        _ => Err(ServiceError::Invalid(errs)),
    };
    match result {
        Ok(r) => redirect(&format!("/requests/{}", r.request.id)),
        Err(e) => {
            let (status, banner) = service_banner(s.ctx.lang, &e);
            draft_page(&ui, &s, &f, status, vec![banner]).await
        }
    }
}

// ----- directory -----------------------------------------------------------------------------

pub async fn directory(AxState(ui): AxState<Ui>, s: Session) -> Response {
    let l = s.ctx.lang;
    let now = Timestamp::now();
    let mut views = match ui.node.directory(&s.p, now).await {
        Ok(v) => v,
        Err(e) => return s.error(&e),
    };
    views.sort_by(|a, b| a.agency.code.cmp(&b.agency.code));
    let mut body = String::new();
    for v in &views {
        let a = &v.agency;
        let local = time_zone(&a.time_zone)
            .map(|z| now.to_zoned(z).strftime("%Y-%m-%d %H:%M %Z").to_string())
            .unwrap_or_else(|e| e.to_string());
        let node = match &v.node_id {
            Some(n) => format!("{}: {}", l.t("dir.peer_node"), n),
            None => l.t("dir.this_node").to_string(),
        };
        let _ = write!(
            body,
            "<section class=\"card agency\"><h2>{}</h2><p>{}: {} · {}: {} · {}: {} · {}: <strong>{}</strong> · {}</p>",
            esc(&agency_name(a)),
            esc(l.t("dir.jurisdiction")),
            esc(a.jurisdiction.as_str()),
            esc(l.t("dir.kind")),
            esc(&l.word("agency_kind", a.kind.as_str())),
            esc(l.t("dir.time_zone")),
            esc(&a.time_zone),
            esc(l.t("dir.now")),
            esc(&local),
            esc(&node),
        );
        if v.contacts.is_empty() {
            let _ = write!(body, "<p>{}</p>", esc(l.t("dir.no_contacts")));
        } else {
            let _ = write!(
                body,
                "<table><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th>\
                 <th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
                esc(l.t("dir.contact")),
                esc(l.t("dir.phone")),
                esc(l.t("dir.email")),
                esc(l.t("dir.languages")),
                esc(l.t("dir.office_hours")),
                esc(l.t("dir.now")),
                esc(l.t("dir.status")),
            );
            for c in &v.contacts {
                let (class, label) = if c.status.open {
                    ("open-now", l.t("dir.open"))
                } else {
                    ("closed-now", l.t("dir.closed"))
                };
                let _ = write!(
                    body,
                    "<tr><td>{}</td><td>{}</td><td><a href=\"mailto:{}\">{}</a></td><td>{}</td><td>{} ({})</td><td>{}</td>\
                     <td><span class=\"badge {class}\">{}</span></td></tr>",
                    esc(&c.contact.name),
                    esc(&c.contact.phone),
                    esc(&url_enc(&c.contact.email).replace("%40", "@")),
                    esc(&c.contact.email),
                    esc(&c.contact.languages.join(", ")),
                    esc(&c.contact.office_hours.to_string()),
                    esc(&c.contact.time_zone),
                    esc(&c.status.local_time),
                    esc(label),
                );
            }
            body.push_str("</tbody></table>");
        }
        body.push_str("</section>");
    }
    s.page(StatusCode::OK, l.t("dir.title"), &[], &body)
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

pub async fn cooperation(AxState(ui): AxState<Ui>, s: Session, RawQuery(raw): RawQuery) -> Response {
    let l = s.ctx.lang;
    let now = Timestamp::now();
    let q = match coop_query(raw.as_deref(), now) {
        Ok(q) => q,
        Err(e) => {
            let (status, b) = service_banner(l, &e);
            return s.page(status, l.t("coop.title"), &[b], &coop_form(l, "agency", "", ""));
        }
    };
    let report = match ui.node.cooperation(&s.p, q.from, q.to, q.by, now).await {
        Ok(r) => r,
        Err(e) => return s.error(&e),
    };
    let mut body = coop_form(l, &q.by_s, &q.from_s, &q.to_s);
    let csv = format!(
        "/cooperation.csv?by={}&from={}&to={}",
        url_enc(&q.by_s),
        url_enc(&q.from_s),
        url_enc(&q.to_s)
    );
    let _ = write!(
        body,
        "<p><a class=\"button secondary\" id=\"csv\" href=\"{}\">{}</a></p><p class=\"small\">{}</p>",
        esc(&csv),
        esc(l.t("coop.csv")),
        esc(l.t("coop.api_hint"))
    );
    let _ = write!(
        body,
        "<p>{}</p>",
        esc(&l.t1("coop.period", &format!("{} – {}", utc(report.from), utc(report.to))))
    );
    if report.pairs.is_empty() {
        let _ = write!(body, "<p class=\"card\">{}</p>", esc(l.t("coop.empty")));
    } else {
        body.push_str("<div class=\"scroll\"><table id=\"cooperation\"><thead><tr>");
        for k in [
            "coop.requesting",
            "coop.requested",
            "coop.sent",
            "coop.acknowledged",
            "coop.answered",
            "coop.refused",
            "coop.withdrawn",
            "coop.pending",
            "coop.overdue",
            "coop.answer_rate",
            "coop.median_ack",
            "coop.p90_ack",
            "coop.median_answer",
            "coop.p90_answer",
        ] {
            let _ = write!(body, "<th scope=\"col\">{}</th>", esc(l.t(k)));
        }
        body.push_str("</tr></thead><tbody>");
        for p in &report.pairs {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(&p.requesting),
                esc(&p.requested),
                p.sent,
                p.acknowledged,
                p.answered,
                p.refused,
                p.withdrawn,
                p.pending,
                p.overdue,
                num(p.answer_rate),
                num(p.median_hours_to_acknowledge),
                num(p.p90_hours_to_acknowledge),
                num(p.median_days_to_answer),
                num(p.p90_days_to_answer),
            );
        }
        body.push_str("</tbody></table></div>");
    }
    s.page(StatusCode::OK, l.t("coop.title"), &[], &body)
}

fn coop_form(l: Lang, by: &str, from: &str, to: &str) -> String {
    let opts = [
        ("agency", l.t("coop.by_agency").to_string()),
        ("jurisdiction", l.t("coop.by_jurisdiction").to_string()),
    ];
    format!(
        "<form class=\"card filters\" method=\"get\" action=\"/cooperation\">\
         <div><label for=\"by\">{}</label><select id=\"by\" name=\"by\">{}</select></div>\
         <div><label for=\"from\">{}</label><input type=\"date\" id=\"from\" name=\"from\" value=\"{}\"></div>\
         <div><label for=\"to\">{}</label><input type=\"date\" id=\"to\" name=\"to\" value=\"{}\"></div>\
         <div><button type=\"submit\">{}</button></div></form>",
        esc(l.t("coop.by")),
        options(opts, &[by]),
        esc(l.t("coop.from")),
        esc(from),
        esc(l.t("coop.to")),
        esc(to),
        esc(l.t("coop.show")),
    )
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
