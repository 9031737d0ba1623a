//! Sign-in, sign-out, one's own account, and the administrator's list of users.
//!
//! The steps of a sign-in (password, code, new password, setting up the second factor) are
//! decided by [`Node::sign_in`] and [`Node::sign_in_step`]; a page only shows the step that is
//! due. Between steps the page carries the step's token in a hidden field: it is not a
//! credential, lasts ten minutes and is used once. Failed attempts are also counted per
//! client address here: after [`GATE_MAX`] failures in [`GATE_WINDOW`], that address is
//! answered 429 with `Retry-After` until the window ends (the per-account lock is the node's).

use super::html::{Banner, Layout, filters, render};
use super::{Ctx, Form, Session, TOKEN_COOKIE, Ui, redirect, same_site, service_banner, set_cookie};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::Response;
use jiff::Timestamp;
use liaison_service::ServiceError;
use liaison_service::sign_in::{Need, PasswordProblem, Problem, SignIn, SignInState};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Failed sign-in attempts from one address allowed per window.
pub const GATE_MAX: u32 = 30;
/// The window of [`GATE_MAX`].
pub const GATE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Addresses remembered at most (then the oldest windows are dropped).
const GATE_ADDRESSES: usize = 100_000;

/// Failed attempts per client address.
#[derive(Default)]
pub(crate) struct Gate {
    inner: std::sync::Mutex<HashMap<Option<IpAddr>, (Instant, u32)>>,
}

impl Gate {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<Option<IpAddr>, (Instant, u32)>) -> T) -> T {
        match self.inner.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Seconds until this address may try again, if it is shut out now.
    fn shut(&self, who: Option<IpAddr>) -> Option<u64> {
        self.with(|m| match m.get(&who) {
            Some((start, n)) if *n >= GATE_MAX && start.elapsed() < GATE_WINDOW => {
                Some((GATE_WINDOW - start.elapsed()).as_secs().max(1))
            }
            _ => None,
        })
    }

    fn failed(&self, who: Option<IpAddr>) {
        self.with(|m| {
            if m.len() >= GATE_ADDRESSES {
                m.retain(|_, (start, _)| start.elapsed() < GATE_WINDOW);
            }
            let e = m.entry(who).or_insert((Instant::now(), 0));
            if e.0.elapsed() >= GATE_WINDOW {
                *e = (Instant::now(), 0);
            }
            e.1 += 1;
        });
    }
}

/// The client's address, when the server knows it (the connection's peer).
pub(crate) struct ClientAddr(Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

// ----- the pages -------------------------------------------------------------------------------

/// The sign-in form: user name and password (and an API token, where the node allows it).
#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    layout: Layout<'a>,
    username: String,
    token_sign_in: bool,
}

/// A later step of a sign-in, or the second factor's set-up from the account page.
#[derive(Template)]
#[template(path = "login_step.html")]
struct StepPage<'a> {
    layout: Layout<'a>,
    /// Where the form goes: `/login/step`, or `/account/second-factor/confirm`.
    action: &'static str,
    step: String,
    /// `code`, `new_password` or `enrol`.
    need: &'static str,
    secret: String,
    uri: String,
    qr: Option<Qr>,
}

/// A QR code as SVG path data (one `h1v1h-1z` square per dark module), drawn by the template.
struct Qr {
    /// The side in modules, with the quiet zone.
    size: usize,
    path: String,
}

/// The recovery codes, shown once.
#[derive(Template)]
#[template(path = "recovery_codes.html")]
struct CodesPage<'a> {
    layout: Layout<'a>,
    codes: Vec<String>,
    next: &'static str,
}

/// One's own account.
#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    layout: Layout<'a>,
    state: StateView,
    min_length: usize,
}

/// A sign-in state in words.
struct StateView {
    password: String,
    second_factor: String,
    has_factor: bool,
    recovery_left: i64,
    locked: String,
}

/// The administrator's list of users.
#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage<'a> {
    layout: Layout<'a>,
    tabs: super::admin::Tabs,
    users: Vec<UserRow>,
    /// A temporary password just set: (user, password), shown once.
    reset: Option<(String, String)>,
    /// The new-user form: the agencies this node serves, the roles, and what was typed.
    agencies: Vec<super::html::Opt>,
    roles: Vec<super::html::Opt>,
    new_username: String,
    new_name: String,
}

struct UserRow {
    username: String,
    display_name: String,
    agency: String,
    role: String,
    /// The roles to choose from, the user's own selected.
    roles: Vec<super::html::Opt>,
    enabled: bool,
    /// Whether this row is the viewer (no role change, no disabling oneself).
    is_self: bool,
    state: StateView,
}

/// What the new-user form held, to show again after an error.
#[derive(Default)]
struct NewUser {
    username: String,
    name: String,
    agency: String,
    role: String,
}

fn role_options(l: super::i18n::Lang, selected: &str) -> Vec<super::html::Opt> {
    super::html::options(
        liaison_core::Role::ALL
            .iter()
            .map(|r| (r.as_str(), l.word("role", r.as_str()))),
        &[selected],
    )
}

fn state_view(l: super::i18n::Lang, zone: &jiff::tz::TimeZone, s: &SignInState, now: Timestamp) -> StateView {
    StateView {
        password: if !s.has_password {
            l.t("account.no_password").into()
        } else if s.must_change {
            l.t("account.must_change").into()
        } else {
            s.password_changed_at
                .map(|t| l.t1("account.password_set", &super::pages::local(t, zone)))
                .unwrap_or_default()
        },
        second_factor: if s.second_factor {
            l.t("account.factor_on").into()
        } else {
            l.t("account.factor_off").into()
        },
        has_factor: s.second_factor,
        recovery_left: s.recovery_codes_left,
        locked: s
            .locked_until
            .filter(|u| *u > now)
            .map(|u| l.t1("account.locked_until", &super::pages::local(u, zone)))
            .unwrap_or_default(),
    }
}

fn login_page(ctx: &Ctx, ui: &Ui, status: StatusCode, banners: Vec<Banner>, username: &str) -> Response {
    let layout = ctx.layout(ctx.lang.t("login.title"), banners);
    render(
        status,
        &LoginPage {
            layout,
            username: username.chars().take(64).collect(),
            token_sign_in: ui.node.sign_in_config().token_sign_in,
        },
    )
}

fn qr_of(uri: &str) -> Option<Qr> {
    let code = qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M).ok()?;
    let w = code.width();
    let quiet = 4;
    let mut path = String::new();
    for (i, c) in code.to_colors().iter().enumerate() {
        if *c == qrcode::Color::Dark {
            path.push_str(&format!("M{} {}h1v1h-1z", i % w + quiet, i / w + quiet));
        }
    }
    Some(Qr {
        size: w + 2 * quiet,
        path,
    })
}

fn step_page(
    ctx: &Ctx,
    status: StatusCode,
    banners: Vec<Banner>,
    action: &'static str,
    step: String,
    need: &Need,
) -> Response {
    let l = ctx.lang;
    let (key, code, secret, uri) = match need {
        Need::Code => ("login.step_code", "code", String::new(), String::new()),
        Need::NewPassword => ("login.step_new_password", "new_password", String::new(), String::new()),
        Need::Enrol { secret, uri } => ("login.step_enrol", "enrol", secret.clone(), uri.clone()),
    };
    let qr = if uri.is_empty() { None } else { qr_of(&uri) };
    render(
        status,
        &StepPage {
            layout: ctx.layout(l.t(key), banners),
            action,
            step,
            need: code,
            secret,
            uri,
            qr,
        },
    )
}

fn problem_banner(l: super::i18n::Lang, p: &Problem) -> Banner {
    match p {
        Problem::WrongCode => Banner::field_error(l.t("field.code"), l.t("login.wrong_code")),
        Problem::Password(why) => password_banner(l, why),
    }
}

/// Why a new password was not taken, in the reader's language.
fn password_banner(l: super::i18n::Lang, why: &PasswordProblem) -> Banner {
    let text = match why {
        PasswordProblem::TooShort { min } => l.t1("password.too_short", &min.to_string()),
        PasswordProblem::TooLong => l.t("password.too_long").to_string(),
        PasswordProblem::ContainsUsername => l.t("password.has_username").to_string(),
        PasswordProblem::TooSimple => l.t("password.too_simple").to_string(),
        PasswordProblem::Unchanged => l.t("password.unchanged").to_string(),
    };
    Banner::field_error(l.t("field.new_password"), &text)
}

fn locked_page(ctx: &Ctx, ui: &Ui, until: Timestamp) -> Response {
    let l = ctx.lang;
    login_page(
        ctx,
        ui,
        StatusCode::TOO_MANY_REQUESTS,
        vec![Banner::error(&l.t1("login.locked", &super::pages::utc(until)))],
        "",
    )
}

fn shut_out(ctx: &Ctx, ui: &Ui, secs: u64) -> Response {
    let l = ctx.lang;
    let mut r = login_page(
        ctx,
        ui,
        StatusCode::TOO_MANY_REQUESTS,
        vec![Banner::error(&l.t1("login.too_many", &(secs.div_ceil(60)).to_string()))],
        "",
    );
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// Where a finished sign-in goes: the home page with the session cookie, or first the page
/// with the recovery codes.
fn signed_in(ctx: &Ctx, session: &str, codes: Vec<String>) -> Response {
    let mut r = if codes.is_empty() {
        redirect("/home")
    } else {
        let l = ctx.lang;
        render(
            StatusCode::OK,
            &CodesPage {
                layout: ctx.layout(l.t("codes.title"), vec![Banner::ok(l.t("login.factor_done"))]),
                codes,
                next: "/home",
            },
        )
    };
    set_cookie(&mut r, &format!("{TOKEN_COOKIE}={session}{}", ctx.cookie_attrs()));
    r
}

/// What a sign-in step came to, as a response.
fn outcome(ui: &Ui, ctx: &Ctx, who: Option<IpAddr>, result: Result<SignIn, ServiceError>, username: &str) -> Response {
    let l = ctx.lang;
    match result {
        Ok(SignIn::Done {
            session,
            recovery_codes,
        }) => signed_in(ctx, &session, recovery_codes),
        Ok(SignIn::Next { step, need, problem }) => {
            let banners = problem.iter().map(|p| problem_banner(l, p)).collect::<Vec<_>>();
            if problem.is_some() {
                ui.gate.failed(who);
            }
            let status = if problem.is_some() {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            };
            step_page(ctx, status, banners, "/login/step", step, &need)
        }
        Ok(SignIn::Locked { until }) => {
            ui.gate.failed(who);
            locked_page(ctx, ui, until)
        }
        Ok(SignIn::Refused) => {
            ui.gate.failed(who);
            login_page(
                ctx,
                ui,
                StatusCode::UNAUTHORIZED,
                vec![Banner::error(l.t("login.refused"))],
                username,
            )
        }
        Err(e) => {
            let (status, b) = service_banner(l, &e);
            login_page(ctx, ui, status, vec![b], username)
        }
    }
}

// ----- handlers --------------------------------------------------------------------------------

/// What both sign-in forms check first: the form came from this site (there is no session, so
/// no CSRF token, yet), and the address is not shut out by the gate.
fn admit(ui: &Ui, ctx: &Ctx, who: Option<IpAddr>, headers: &HeaderMap) -> Option<Response> {
    if !same_site(headers) {
        return Some(login_page(
            ctx,
            ui,
            StatusCode::FORBIDDEN,
            vec![Banner::error(ctx.lang.t("err.csrf"))],
            "",
        ));
    }
    ui.gate.shut(who).map(|secs| shut_out(ctx, ui, secs))
}

pub async fn login_form(
    AxState(ui): AxState<Ui>,
    mut ctx: Ctx,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> Response {
    let q = Form::query(q.as_deref());
    let mut banners = vec![];
    if q.get("out").is_some() {
        banners.push(Banner::ok(ctx.lang.t("logout.done")));
    }
    if q.get("expired").is_some() {
        banners.push(Banner::info(ctx.lang.t("err.unauthenticated")));
    }
    ctx.here = "/login".into();
    login_page(&ctx, &ui, StatusCode::OK, banners, "")
}

/// `POST /login`: user name and password, or (where allowed) an API token.
pub async fn login(
    AxState(ui): AxState<Ui>,
    mut ctx: Ctx,
    ClientAddr(who): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    ctx.here = "/login".into();
    let l = ctx.lang;
    if let Some(refused) = admit(&ui, &ctx, who, &headers) {
        return refused;
    }
    let form = Form::parse(&body);
    if let Some(token) = form.get("token").map(str::trim) {
        return token_login(&ui, &ctx, who, token).await;
    }
    let username = form.get("username").unwrap_or("").trim();
    let password = form.get("password").unwrap_or("");
    if username.is_empty() || password.is_empty() {
        return login_page(
            &ctx,
            &ui,
            StatusCode::BAD_REQUEST,
            vec![Banner::error(l.t("login.empty"))],
            username,
        );
    }
    let result = ui.node.sign_in(username, password, Timestamp::now()).await;
    outcome(&ui, &ctx, who, result, username)
}

/// `POST /login/step`: the code, or the new password (twice).
pub async fn login_step(
    AxState(ui): AxState<Ui>,
    mut ctx: Ctx,
    ClientAddr(who): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    ctx.here = "/login".into();
    let l = ctx.lang;
    if let Some(refused) = admit(&ui, &ctx, who, &headers) {
        return refused;
    }
    let form = Form::parse(&body);
    let step = form.get("step").unwrap_or("");
    let answer = match (form.get("new_password"), form.get("code")) {
        (Some(new), _) => {
            if form.get("confirm") != Some(new) {
                // Not a failed attempt: the two fields differ. The step stays as it was.
                return match ui.node.sign_in_step_need(step, Timestamp::now()).await {
                    Ok(Some(need)) => step_page(
                        &ctx,
                        StatusCode::BAD_REQUEST,
                        vec![Banner::field_error(l.t("field.confirm"), l.t("login.mismatch"))],
                        "/login/step",
                        step.to_string(),
                        &need,
                    ),
                    _ => outcome(&ui, &ctx, who, Ok(SignIn::Refused), ""),
                };
            }
            new
        }
        (None, Some(code)) => code,
        (None, None) => "",
    };
    let result = ui.node.sign_in_step(step, answer, Timestamp::now()).await;
    outcome(&ui, &ctx, who, result, "")
}

/// The token sign-in (only where `[sign_in] token_sign_in` allows it): the browser never
/// holds the token that was typed, but a session token of its own, a child of it.
async fn token_login(ui: &Ui, ctx: &Ctx, who: Option<IpAddr>, token: &str) -> Response {
    let l = ctx.lang;
    let plausible = token.len() <= 256 && token.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let result = if plausible {
        ui.node.authenticate(token, Timestamp::now()).await
    } else {
        Err(ServiceError::Unauthenticated("malformed token".into()))
    };
    let result = match result {
        Ok(p) => ui.node.start_session(&p, Timestamp::now()).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(session) => signed_in(ctx, &session, vec![]),
        Err(ServiceError::Unauthenticated(_)) => {
            ui.gate.failed(who);
            login_page(
                ctx,
                ui,
                StatusCode::UNAUTHORIZED,
                vec![Banner::field_error(l.t("field.token"), l.t("login.failed"))],
                "",
            )
        }
        Err(e) => {
            let (status, b) = service_banner(l, &e);
            login_page(ctx, ui, status, vec![b], "")
        }
    }
}

pub async fn logout(AxState(ui): AxState<Ui>, s: Session, body: Bytes) -> Response {
    if !s.csrf_ok(&ui, &Form::parse(&body)) {
        return s.csrf_rejected();
    }
    // Signing out ends the session token on the node too, not only in this browser.
    if let Err(e) = ui.node.end_session(&s.p, Timestamp::now()).await {
        tracing::warn!(user = %s.p.username, error = %e, "could not revoke the web session's token");
    }
    let mut r = redirect("/login?out=1");
    set_cookie(&mut r, &format!("{TOKEN_COOKIE}={}; Max-Age=0", s.ctx.cookie_attrs()));
    r
}

fn account_page(ui: &Ui, s: &Session, status: StatusCode, banners: Vec<Banner>, state: &SignInState) -> Response {
    let l = s.ctx.lang;
    render(
        status,
        &AccountPage {
            layout: s.layout(l.t("account.title"), banners),
            state: state_view(l, &s.zone, state, Timestamp::now()),
            min_length: ui.node.sign_in_config().min_password_length,
        },
    )
}

/// `GET /account`: one's sign-in, a password change, the second factor.
pub async fn account(
    AxState(ui): AxState<Ui>,
    s: Session,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> Response {
    let l = s.ctx.lang;
    let q = Form::query(q.as_deref());
    let banners = if q.get("changed").is_some() {
        vec![Banner::ok(l.t("account.changed"))]
    } else {
        vec![]
    };
    match ui.node.sign_in_state(&s.p, &s.p.username).await {
        Ok(state) => account_page(&ui, &s, StatusCode::OK, banners, &state),
        Err(e) => s.error(&e),
    }
}

/// `POST /account/password`: current password, new one twice.
pub async fn change_password(AxState(ui): AxState<Ui>, s: Session, body: Bytes) -> Response {
    let form = Form::parse(&body);
    if !s.csrf_ok(&ui, &form) {
        return s.csrf_rejected();
    }
    let l = s.ctx.lang;
    let new = form.get("new_password").unwrap_or("");
    // What can be said in the reader's language is said before the node is asked.
    let early = if form.get("confirm") != Some(new) {
        Some(Banner::field_error(l.t("field.confirm"), l.t("login.mismatch")))
    } else {
        ui.node
            .password_problem(&s.p.username, new)
            .map(|why| password_banner(l, &why))
    };
    if let Some(b) = early {
        return match ui.node.sign_in_state(&s.p, &s.p.username).await {
            Ok(state) => account_page(&ui, &s, StatusCode::BAD_REQUEST, vec![b], &state),
            Err(e) => s.error(&e),
        };
    }
    let result = ui
        .node
        .change_password(&s.p, form.get("current").unwrap_or(""), new, Timestamp::now())
        .await;
    match result {
        Ok(session) => {
            let mut r = redirect("/account?changed=1");
            set_cookie(&mut r, &format!("{TOKEN_COOKIE}={session}{}", s.ctx.cookie_attrs()));
            r
        }
        Err(e) => {
            let (status, b) = match &e {
                ServiceError::Invalid(f) if f.iter().any(|f| f.field == "current") => (
                    StatusCode::BAD_REQUEST,
                    Banner::field_error(l.t("field.current"), l.t("account.wrong_current")),
                ),
                _ => service_banner(l, &e),
            };
            match ui.node.sign_in_state(&s.p, &s.p.username).await {
                Ok(state) => account_page(&ui, &s, status, vec![b], &state),
                Err(e) => s.error(&e),
            }
        }
    }
}

/// `POST /account/second-factor`: starts setting up (or replacing) the second factor.
pub async fn factor_begin(AxState(ui): AxState<Ui>, s: Session, body: Bytes) -> Response {
    let form = Form::parse(&body);
    if !s.csrf_ok(&ui, &form) {
        return s.csrf_rejected();
    }
    let l = s.ctx.lang;
    match ui
        .node
        .second_factor_begin(&s.p, form.get("current").unwrap_or(""), Timestamp::now())
        .await
    {
        Ok((step, need)) => factor_page(&s, StatusCode::OK, vec![], step, &need),
        Err(ServiceError::Invalid(_)) => match ui.node.sign_in_state(&s.p, &s.p.username).await {
            Ok(state) => account_page(
                &ui,
                &s,
                StatusCode::BAD_REQUEST,
                vec![Banner::field_error(l.t("field.current"), l.t("account.wrong_current"))],
                &state,
            ),
            Err(e) => s.error(&e),
        },
        Err(e) => s.error(&e),
    }
}

fn factor_page(s: &Session, status: StatusCode, banners: Vec<Banner>, step: String, need: &Need) -> Response {
    let l = s.ctx.lang;
    let Need::Enrol { secret, uri } = need else {
        return s.error(&ServiceError::Internal("not a set-up step".into()));
    };
    render(
        status,
        &StepPage {
            layout: s.layout(l.t("login.step_enrol"), banners),
            action: "/account/second-factor/confirm",
            step,
            need: "enrol",
            secret: secret.clone(),
            uri: uri.clone(),
            qr: qr_of(uri),
        },
    )
}

/// `POST /account/second-factor/confirm`: the code that proves the app has the secret.
pub async fn factor_confirm(AxState(ui): AxState<Ui>, s: Session, body: Bytes) -> Response {
    let form = Form::parse(&body);
    if !s.csrf_ok(&ui, &form) {
        return s.csrf_rejected();
    }
    let l = s.ctx.lang;
    let step = form.get("step").unwrap_or("");
    match ui
        .node
        .second_factor_confirm(&s.p, step, form.get("code").unwrap_or(""), Timestamp::now())
        .await
    {
        Ok(codes) => render(
            StatusCode::OK,
            &CodesPage {
                layout: s.layout(l.t("codes.title"), vec![Banner::ok(l.t("login.factor_done"))]),
                codes,
                next: "/account",
            },
        ),
        Err(e @ ServiceError::Invalid(_)) => {
            let (status, b) = service_banner(l, &e);
            match ui.node.sign_in_step_need(step, Timestamp::now()).await {
                Ok(Some(need)) => factor_page(&s, status, vec![b], step.to_string(), &need),
                _ => s.error(&e),
            }
        }
        Err(e) => s.error(&e),
    }
}

async fn users_page(
    ui: &Ui,
    s: &Session,
    status: StatusCode,
    banners: Vec<Banner>,
    reset: Option<(String, String)>,
) -> Response {
    users_page_with(ui, s, status, banners, reset, NewUser::default()).await
}

async fn users_page_with(
    ui: &Ui,
    s: &Session,
    status: StatusCode,
    banners: Vec<Banner>,
    reset: Option<(String, String)>,
    typed: NewUser,
) -> Response {
    let l = s.ctx.lang;
    let now = Timestamp::now();
    let list = match ui.node.users_sign_in(&s.p).await {
        Ok(list) => list,
        Err(e) => return s.error(&e),
    };
    let agencies = match super::pages::agencies(ui, &s.p).await {
        Ok(a) => a,
        Err(e) => return s.error(&e),
    };
    let mut users = Vec::with_capacity(list.len());
    for (u, st) in list {
        let agency = agencies
            .get(&u.agency)
            .map(|(a, _)| a.code.clone())
            .unwrap_or_else(|| u.agency.to_string());
        users.push(UserRow {
            is_self: u.username == s.p.username,
            roles: role_options(l, u.role.as_str()),
            username: u.username,
            display_name: u.display_name,
            agency,
            role: l.word("role", u.role.as_str()),
            enabled: !u.disabled,
            state: state_view(l, &s.zone, &st, now),
        });
    }
    // Users are created for the agencies this node serves (a peer's users live on its node).
    let mut local: Vec<(String, String)> = agencies
        .values()
        .filter(|(_, node)| node.is_none())
        .map(|(a, _)| (a.code.clone(), super::pages::agency_name(a, l)))
        .collect();
    local.sort();
    let agency_choice = if typed.agency.is_empty() {
        s.agency_code.clone()
    } else {
        typed.agency.clone()
    };
    let agency_opts = super::html::options(
        local.iter().map(|(code, name)| (code.as_str(), name.clone())),
        &[agency_choice.as_str()],
    );
    let role_choice = if typed.role.is_empty() {
        "officer"
    } else {
        typed.role.as_str()
    };
    render(
        status,
        &UsersPage {
            layout: s.layout(l.t("users.title"), banners),
            tabs: super::admin::tabs(s.p.role, "/admin/users"),
            users,
            reset,
            agencies: agency_opts,
            roles: role_options(l, role_choice),
            new_username: typed.username,
            new_name: typed.name,
        },
    )
}

/// `POST /admin/users`: a new user of an agency this node serves, with a role and a temporary
/// password (shown once; they choose their own and set up the second factor at the first
/// sign-in).
pub async fn create_user(AxState(ui): AxState<Ui>, s: Session, body: Bytes) -> Response {
    let form = match s.checked_form(&ui, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let l = s.ctx.lang;
    let typed = NewUser {
        username: form.get("username").unwrap_or("").trim().to_string(),
        name: form.get("display_name").unwrap_or("").trim().to_string(),
        agency: form.get("agency").unwrap_or("").to_string(),
        role: form.get("role").unwrap_or("").to_string(),
    };
    let Ok(role) = typed.role.parse::<liaison_core::Role>() else {
        let b = Banner::field_error(l.t("users.role"), &l.t1("users.role_unknown", &typed.role));
        return users_page_with(&ui, &s, StatusCode::BAD_REQUEST, vec![b], None, typed).await;
    };
    let name = if typed.name.is_empty() {
        typed.username.clone()
    } else {
        typed.name.clone()
    };
    let now = Timestamp::now();
    let created = ui
        .node
        .create_user(&s.p, &typed.username, &name, &typed.agency, role, now)
        .await;
    let u = match created {
        Ok(u) => u,
        Err(e) => {
            let (status, b) = service_banner(l, &e);
            return users_page_with(&ui, &s, status, vec![b], None, typed).await;
        }
    };
    match ui.node.reset_password(&s.p, &u.username, false, now).await {
        Ok(temporary) => {
            let text = l.t1("users.created", &u.username);
            users_page(
                &ui,
                &s,
                StatusCode::OK,
                vec![Banner::ok(&text)],
                Some((u.username, temporary)),
            )
            .await
        }
        Err(e) => {
            let (status, b) = service_banner(l, &e);
            users_page(&ui, &s, status, vec![b], None).await
        }
    }
}

/// `POST /admin/users/role`: gives a user another role (not one's own).
pub async fn change_role(AxState(ui): AxState<Ui>, s: Session, body: Bytes) -> Response {
    let form = match s.checked_form(&ui, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let l = s.ctx.lang;
    let username = form.get("username").unwrap_or("");
    let role_text = form.get("role").unwrap_or("");
    let Ok(role) = role_text.parse::<liaison_core::Role>() else {
        let b = Banner::field_error(l.t("users.role"), &l.t1("users.role_unknown", role_text));
        return users_page(&ui, &s, StatusCode::BAD_REQUEST, vec![b], None).await;
    };
    match ui.node.set_user_role(&s.p, username, role, Timestamp::now()).await {
        Ok(u) => {
            let text = l.t("users.role_changed").replacen("{}", &u.username, 1).replacen(
                "{}",
                &l.word("role", u.role.as_str()),
                1,
            );
            users_page(&ui, &s, StatusCode::OK, vec![Banner::ok(&text)], None).await
        }
        Err(e) => {
            let (status, b) = service_banner(l, &e);
            users_page(&ui, &s, status, vec![b], None).await
        }
    }
}

/// `POST /admin/users/enabled`: disables a user (their tokens and sessions stop working at
/// once) or enables them again (`enabled` = `0` or `1`).
pub async fn set_enabled(AxState(ui): AxState<Ui>, s: Session, body: Bytes) -> Response {
    let form = Form::parse(&body);
    if !s.csrf_ok(&ui, &form) {
        return s.csrf_rejected();
    }
    let l = s.ctx.lang;
    let username = form.get("username").unwrap_or("");
    let enable = form.get("enabled") == Some("1");
    match ui
        .node
        .set_user_disabled(&s.p, username, !enable, Timestamp::now())
        .await
    {
        Ok(()) => {
            let key = if enable {
                "users.enabled_done"
            } else {
                "users.disabled_done"
            };
            users_page(&ui, &s, StatusCode::OK, vec![Banner::ok(&l.t1(key, username))], None).await
        }
        Err(e) => {
            let (status, b) = service_banner(l, &e);
            users_page(&ui, &s, status, vec![b], None).await
        }
    }
}

/// `GET /admin/users`: every user with their sign-in state, and a reset per user (admins).
pub async fn users(AxState(ui): AxState<Ui>, s: Session) -> Response {
    users_page(&ui, &s, StatusCode::OK, vec![], None).await
}

/// `POST /admin/users/reset`: a temporary password for a user (shown once), and with
/// `second_factor` the removal of their second factor.
pub async fn reset(AxState(ui): AxState<Ui>, s: Session, body: Bytes) -> Response {
    let form = Form::parse(&body);
    if !s.csrf_ok(&ui, &form) {
        return s.csrf_rejected();
    }
    let l = s.ctx.lang;
    let username = form.get("username").unwrap_or("").to_string();
    let factor = form.get("second_factor").is_some();
    match ui.node.reset_password(&s.p, &username, factor, Timestamp::now()).await {
        Ok(temporary) => {
            let text = if factor {
                l.t1("users.reset_done_factor", &username)
            } else {
                l.t1("users.reset_done", &username)
            };
            users_page(
                &ui,
                &s,
                StatusCode::OK,
                vec![Banner::ok(&text)],
                Some((username, temporary)),
            )
            .await
        }
        Err(e) => {
            let (status, b) = service_banner(l, &e);
            users_page(&ui, &s, status, vec![b], None).await
        }
    }
}
