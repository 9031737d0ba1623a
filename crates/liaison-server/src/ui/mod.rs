//! The web UI: server-rendered HTML pages at `/` for case officers, desk officers, legal
//! reviewers, analysts and supervisors, in English and Chinese.
//!
//! Like the API, the pages call [`Node`] use cases with the signed-in [`Principal`]; every rule
//! and role check stays in the service. Sign-in takes an API token, validated by
//! [`Node::authenticate`] and kept in an HttpOnly, SameSite=Strict cookie. Every POST carries a
//! CSRF token (HMAC-SHA256 of the session token under a per-process random key). Times are
//! shown in UTC, deadlines also in the requested agency's zone.
//!
//! The markup is in compile-time checked askama templates (`templates/`: `base.html` is the
//! layout with a `content` block, one template per page, shared fragments in `macros.html`).
//! Handlers hand the templates plain data, and the engine HTML-escapes every value it prints
//! ([`html::Entities`], wired in `askama.toml`); nothing is marked safe, so no value can reach a
//! page unescaped, and the Content-Security-Policy forbids scripts altogether. URL query values
//! go through the `url_enc` filter. Why askama and not maud: both check templates at compile time
//! and escape automatically, but askama keeps the markup in HTML files that the coming redesign
//! can edit as HTML, and it takes a custom escaper, which lets the pages keep the exact entities
//! they have always had (`&lt;`, `&quot;`, `&#39;`: maud does not escape `'` at all, askama's own
//! escaper writes `&#60;`); maud's markup is Rust macro syntax inside the handlers.

mod account;
mod admin;
mod cases;
mod charts;
mod draft;
mod evidence;
mod html;
mod i18n;
mod intel;
mod pages;
mod search;
mod service_text;
mod work;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use html::{Banner, FieldLine, Layout, PlainPage, Viewer, render};
use i18n::Lang;
use liaison_service::Principal;
use liaison_service::{Node, ServiceError};
use std::sync::Arc;

/// Name of the session cookie holding the API token.
pub const TOKEN_COOKIE: &str = "liaison_token";
/// Name of the cookie holding the chosen language (`en` or `zh-CN`).
pub const LANG_COOKIE: &str = "lang";

const CSS: &str = include_str!("../../../../web/static/app.css");
/// The one script: refreshes a draft's verdict while it is written (the form works without it).
const DRAFT_JS: &str = include_str!("../../../../web/static/draft.js");

/// Shared state of the UI routes.
#[derive(Clone)]
pub(crate) struct Ui {
    node: Node,
    csrf_key: Arc<ring::hmac::Key>,
    /// Failed sign-ins per client address (`account::Gate`).
    gate: Arc<account::Gate>,
}

impl Ui {
    fn csrf_for(&self, token: &str) -> String {
        hex::encode(ring::hmac::sign(&self.csrf_key, token.as_bytes()).as_ref())
    }

    fn csrf_ok(&self, token: &str, given: Option<&str>) -> bool {
        match given.and_then(|g| hex::decode(g.trim()).ok()) {
            Some(tag) => ring::hmac::verify(&self.csrf_key, token.as_bytes(), &tag).is_ok(),
            None => false,
        }
    }
}

/// The router serving the UI pages and their stylesheet. It has no fallback, so it can be
/// merged with the API router.
pub fn router(node: Node) -> Router {
    let secret: [u8; 32] = rand::random();
    let ui = Ui {
        node,
        csrf_key: Arc::new(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret)),
        gate: Default::default(),
    };
    Router::new()
        .route("/", get(pages::home))
        .route("/login", get(account::login_form).post(account::login))
        .route("/login/step", post(account::login_step))
        .route("/logout", post(account::logout))
        .route("/account", get(account::account))
        .route("/account/password", post(account::change_password))
        .route("/account/second-factor", post(account::factor_begin))
        .route("/account/second-factor/confirm", post(account::factor_confirm))
        .route("/admin", get(admin::admin_home))
        .route("/admin/users", get(account::users).post(account::create_user))
        .route("/admin/users/reset", post(account::reset))
        .route("/admin/users/role", post(account::change_role))
        .route("/admin/users/enabled", post(account::set_enabled))
        .route("/admin/units", get(admin::units).post(admin::create_unit))
        .route("/admin/units/member", post(admin::unit_member))
        .route("/admin/tokens", get(admin::tokens).post(admin::create_token))
        .route("/admin/tokens/revoke", post(admin::revoke_token))
        .route("/admin/peers", get(admin::peers).post(admin::pin_peer))
        .route("/admin/peers/remove", post(admin::remove_peer))
        .route("/directory/rename", post(admin::rename_agency))
        .route("/ledger", get(admin::ledger))
        .route("/ledger/verify", post(admin::verify))
        .route("/ledger/proof/{id}", get(admin::proof))
        .route("/lang", get(pages::set_lang))
        .route("/static/app.css", get(css))
        .route("/home", get(work::home))
        .route("/inbox", get(work::inbox))
        .route("/search", get(search::page))
        .route("/search.csv", get(search::csv))
        .route("/search/save", post(search::save))
        .route("/inbox/read", post(work::inbox_read))
        .route("/requests", get(pages::list))
        .route("/requests.csv", get(work::csv))
        .route("/requests/{id}/assign", post(work::assign))
        .route("/requests/{id}/watch", post(work::watch))
        .route("/requests/{id}/convert", post(work::convert))
        .route("/requests/new", get(draft::new_form).post(draft::create))
        .route("/requests/{id}/edit", get(draft::edit_form).post(draft::edit))
        .route("/requests/{id}/approval", post(draft::approval))
        .route("/requests/{id}/send", get(draft::confirm_send))
        .route("/static/draft.js", get(draft_js))
        .route("/requests/{id}", get(pages::detail))
        .route("/requests/{id}/transition", post(pages::transition))
        .route("/requests/{id}/comment", post(pages::comment))
        .route("/requests/{id}/reassess", post(pages::reassess))
        .route("/requests/{id}/marking", post(pages::marking))
        .route(
            "/requests/{id}/evidence",
            post(evidence::upload).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/requests/{id}/evidence/{file}", get(evidence::download))
        .route("/requests/{id}/letter", post(pages::letter))
        .route("/requests/{id}/evidence-package", post(pages::evidence_package))
        .route("/directory", get(pages::directory))
        .route("/cooperation", get(pages::cooperation))
        .route("/cooperation.csv", get(pages::cooperation_csv))
        .route("/cases", get(cases::list).post(cases::create))
        .route("/cases/{id}", get(cases::show))
        .route("/cases/{id}/act", post(cases::act))
        .route("/cases/{id}/export", post(cases::export))
        .route("/intel", get(intel::page))
        .route("/intel/answer", post(intel::answer))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(ui)
}

async fn css() -> Response {
    let mut r = CSS.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    r
}

async fn draft_js() -> Response {
    let mut r = DRAFT_JS.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    r
}

async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    // An evidence download keeps its `sandbox` and gets the page policy too.
    let sandbox = h
        .get(header::CONTENT_SECURITY_POLICY)
        .is_some_and(|v| v.as_bytes() == b"sandbox");
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        if sandbox {
            HeaderValue::from_static(
                "sandbox; default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                 frame-ancestors 'none'; base-uri 'none'",
            )
        } else {
            HeaderValue::from_static(
                "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; \
                 form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            )
        },
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

// ----- request context ---------------------------------------------------------------------

/// Reads one cookie from the request headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The page a form posted to `path` is on: where the language switch of the page that answers
/// the form goes back to (a GET of the form's own address would not be a page).
fn page_of_form(path: &str) -> String {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["requests", "new"] => "/requests/new".into(),
        ["requests" | "cases", id, _, ..] => format!("/{}/{id}", segs[0]),
        ["admin", ..] => "/admin/users".into(),
        [first, ..] => format!("/{first}"),
        [] => "/".into(),
    }
}

/// What every page needs, signed in or not.
pub(crate) struct Ctx {
    pub lang: Lang,
    /// This page's path and query, where the language switch returns to.
    pub here: String,
    /// Whether the browser reached us over HTTPS (through a reverse proxy): cookies get `Secure`.
    pub https: bool,
    token: Option<String>,
}

impl Ctx {
    fn from_parts(parts: &Parts) -> Ctx {
        let h = &parts.headers;
        let lang = cookie(h, LANG_COOKIE)
            .and_then(Lang::parse)
            .or_else(|| {
                h.get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(Lang::from_accept_language)
            })
            .unwrap_or(Lang::En);
        let here = if parts.method == axum::http::Method::GET {
            parts
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|| "/".into())
        } else {
            page_of_form(parts.uri.path())
        };
        let https = h
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"));
        let token = cookie(h, TOKEN_COOKIE).filter(|t| !t.is_empty()).map(str::to_string);
        Ctx {
            lang,
            here,
            https,
            token,
        }
    }

    /// The layout of a page for a visitor who is not signed in.
    pub fn layout(&self, title: &str, banners: Vec<Banner>) -> Layout<'_> {
        Layout {
            lang: self.lang,
            here: &self.here,
            title: title.to_string(),
            viewer: None,
            banners,
        }
    }

    fn cookie_attrs(&self) -> &'static str {
        if self.https {
            "; Path=/; HttpOnly; SameSite=Strict; Secure"
        } else {
            "; Path=/; HttpOnly; SameSite=Strict"
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Ctx::from_parts(parts))
    }
}

/// A signed-in user. Pages that need one redirect to the sign-in page without it.
pub(crate) struct Session {
    pub ctx: Ctx,
    pub p: Principal,
    /// The reader's time zone (their preference, else their agency's): pages show times in it.
    pub zone: jiff::tz::TimeZone,
    pub csrf: String,
    pub agency_code: String,
    token: String,
}

impl FromRequestParts<Ui> for Session {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, ui: &Ui) -> Result<Self, Self::Rejection> {
        let ctx = Ctx::from_parts(parts);
        let Some(token) = ctx.token.clone() else {
            return Err(redirect("/login"));
        };
        match ui.node.authenticate(&token, jiff::Timestamp::now()).await {
            Ok(p) => {
                let agency_code = match ui.node.agency(&p, p.agency).await {
                    Ok(a) => a.code,
                    Err(_) => p.agency.to_string(),
                };
                let zone = ui.node.user_zone(&p).await.unwrap_or(jiff::tz::TimeZone::UTC);
                Ok(Session {
                    zone,
                    csrf: ui.csrf_for(&token),
                    ctx,
                    p,
                    agency_code,
                    token,
                })
            }
            Err(ServiceError::Unauthenticated(_)) => {
                let mut r = redirect("/login?expired=1");
                set_cookie(&mut r, &format!("{TOKEN_COOKIE}={}; Max-Age=0", ctx.cookie_attrs()));
                Err(r)
            }
            Err(e) => {
                let (status, banner) = service_banner(ctx.lang, &e);
                let layout = ctx.layout(ctx.lang.t("err.title"), vec![banner]);
                Err(render(status, &PlainPage { layout }))
            }
        }
    }
}

impl Session {
    /// The layout of a page for the signed-in user.
    pub fn layout(&self, title: &str, banners: Vec<Banner>) -> Layout<'_> {
        Layout {
            viewer: Some(Viewer {
                username: &self.p.username,
                role: self.ctx.lang.word("role", self.p.role.as_str()),
                agency: &self.agency_code,
                csrf: &self.csrf,
                may_draft: self.p.role.may_draft(),
                may_read_statistics: self.p.role.may_read_statistics(),
                works: self.p.role.may_read_requests(),
                administers: self.p.role.may_administer(),
                audits: self.p.role.may_audit(),
                manages_units: self.p.role == liaison_core::Role::Supervisor,
            }),
            ..self.ctx.layout(title, banners)
        }
    }

    /// A page with a title and banners only.
    fn plain(&self, status: StatusCode, title: &str, banners: Vec<Banner>) -> Response {
        render(
            status,
            &PlainPage {
                layout: self.layout(title, banners),
            },
        )
    }

    /// An error page for a failed use case.
    pub fn error(&self, e: &ServiceError) -> Response {
        let (status, banner) = service_banner(self.ctx.lang, e);
        self.plain(status, self.ctx.lang.t("err.title"), vec![banner])
    }

    /// Checks a CSRF token read from a multipart form against this session.
    pub fn csrf_value_ok(&self, ui: &Ui, given: Option<&str>) -> bool {
        ui.csrf_ok(&self.token, given)
    }

    /// Checks a form's CSRF token against this session.
    pub fn csrf_ok(&self, ui: &Ui, form: &Form) -> bool {
        ui.csrf_ok(&self.token, form.get("csrf"))
    }

    /// A posted form whose CSRF token is right, or the page that refuses it.
    pub fn checked_form(&self, ui: &Ui, body: &[u8]) -> Result<Form, Box<Response>> {
        let form = Form::parse(body);
        if self.csrf_ok(ui, &form) {
            Ok(form)
        } else {
            Err(Box::new(self.csrf_rejected()))
        }
    }

    /// What a form's use case came to, for the page that answers: 200 with a banner saying
    /// what was done (`done` writes it from the result), or the error's status and banner.
    pub fn outcome<T>(&self, r: Result<T, ServiceError>, done: impl FnOnce(T) -> String) -> (StatusCode, Vec<Banner>) {
        match r {
            Ok(v) => (StatusCode::OK, vec![Banner::ok(&done(v))]),
            Err(e) => {
                let (status, b) = service_banner(self.ctx.lang, &e);
                (status, vec![b])
            }
        }
    }

    /// The page shown when a form's CSRF token is missing or wrong.
    pub fn csrf_rejected(&self) -> Response {
        let b = Banner::error(self.ctx.lang.t("err.csrf"));
        self.plain(StatusCode::FORBIDDEN, self.ctx.lang.t("err.title"), vec![b])
    }
}

#[cfg(test)]
mod form_pages {
    #[test]
    fn a_form_answer_switches_language_to_a_page() {
        for (post, page) in [
            ("/requests/abc/transition", "/requests/abc"),
            ("/requests/new", "/requests/new"),
            ("/cases/c1/act", "/cases/c1"),
            ("/cases", "/cases"),
            ("/admin/users/reset", "/admin/users"),
            ("/account/second-factor/confirm", "/account"),
            ("/login/step", "/login"),
            ("/search/save", "/search"),
            ("/intel/answer", "/intel"),
        ] {
            assert_eq!(super::page_of_form(post), page, "{post}");
        }
    }
}

/// A 303 redirect to a local path.
pub(crate) fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn set_cookie(r: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

// ----- forms and errors ----------------------------------------------------------------------

/// A parsed `application/x-www-form-urlencoded` body or query string (repeated names kept).
#[derive(Default)]
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(bytes: &[u8]) -> Form {
        Form(serde_urlencoded::from_bytes(bytes).unwrap_or_default())
    }
    pub fn query(raw: Option<&str>) -> Form {
        Form::parse(raw.unwrap_or("").as_bytes())
    }
    /// The first value of `name`, if given and not blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.as_str())
    }
    /// Every value of a repeated field, empty ones too, in order: the columns of a form's
    /// rows (a row's empty cell keeps its place).
    pub fn column(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Whether a POST comes from a page of this site (checked before sign-in, where there is no
/// session CSRF token yet).
pub(crate) fn same_site(headers: &HeaderMap) -> bool {
    let fetch_site_ok = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v == "same-origin" || v == "none");
    let origin_ok = match (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) {
        // "null" is what browsers send from privacy-sensitive contexts; Sec-Fetch-Site decides then.
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest.trim_end_matches('/') == host),
        _ => true,
    };
    fetch_site_ok && origin_ok
}

/// The localized label of a field path (`offences[0]` → "Offences").
fn field_label(lang: Lang, field: &str) -> String {
    // A target's field, by the row of the form (`targets[2].value`: "Target 2 — Identifier").
    if let Some((n, sub)) = field.strip_prefix("targets[").and_then(|r| r.split_once(']')) {
        let sub = sub.trim_start_matches('.').split('.').next().unwrap_or("");
        let what = match sub {
            "extra" | "service" | "currency" | "institution" | "port" => "draft.target_extra",
            "observed" | "observed_at" => "draft.observed",
            "zone" => "draft.zone",
            "period" | "from" | "until" => "detail.period",
            "provider" => "draft.provider",
            "type" => "detail.target_type",
            _ => "detail.target_value",
        };
        return format!("{} — {}", lang.t1("draft.target_n", n), lang.t(what));
    }
    let head = field.split(['[', '.']).find(|s| !s.is_empty()).unwrap_or(field);
    let head = if head == "draft" {
        field.split('.').nth(1).unwrap_or(head)
    } else {
        head
    };
    lang.word("field", head)
}

/// Maps a use-case error to an HTTP status and a banner that names the fields at fault.
pub(crate) fn service_banner(lang: Lang, e: &ServiceError) -> (StatusCode, Banner) {
    let lead = |key: &str| Banner::service_error(lang.t(key));
    let detailed = |key: &str, m: &str| lead(key).with_detail(lang.t("err.details"), &service_text::in_lang(lang, m));
    match e {
        ServiceError::Invalid(errs) | ServiceError::Incomplete(errs) => {
            let fields = errs
                .iter()
                .map(|fe| FieldLine {
                    field: fe.field.clone(),
                    label: field_label(lang, &fe.field),
                    message: service_text::in_lang(lang, &fe.message),
                })
                .collect();
            let status = if matches!(e, ServiceError::Incomplete(_)) {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::BAD_REQUEST
            };
            (status, lead("err.invalid").with_fields(fields))
        }
        ServiceError::Unauthenticated(m) => (StatusCode::UNAUTHORIZED, detailed("err.unauthenticated", m)),
        ServiceError::Forbidden(m) => (StatusCode::FORBIDDEN, detailed("err.forbidden", m)),
        ServiceError::NotFound(m) if m.starts_with("request") => (StatusCode::NOT_FOUND, lead("err.not_found")),
        ServiceError::NotFound(_) => (StatusCode::NOT_FOUND, lead("err.not_found_other")),
        ServiceError::IllegalTransition { message, allowed } => {
            let states: Vec<String> = allowed.iter().map(|s| lang.word("state", s.as_str())).collect();
            let message = &message.to_string();
            (
                StatusCode::CONFLICT,
                detailed("err.illegal", message).with_allowed(lang.t("err.allowed_now"), states.join(", ")),
            )
        }
        ServiceError::Conflict(m) | ServiceError::Integrity(m) | ServiceError::Busy { message: m, .. } => {
            (StatusCode::CONFLICT, detailed("err.conflict", m))
        }
        ServiceError::Unprocessable(m) => (StatusCode::UNPROCESSABLE_ENTITY, detailed("err.conflict", m)),
        ServiceError::Internal(m) => {
            tracing::error!(error = %m, "internal error in the web UI");
            (StatusCode::INTERNAL_SERVER_ERROR, lead("err.internal"))
        }
    }
}
