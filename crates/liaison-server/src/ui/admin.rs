//! Administration pages beyond the list of users: units (supervisors and admins), API tokens
//! and pinned peers (admins), renaming agencies in the directory (admins), and the ledger
//! (auditors and admins). Each form calls the same use case as the CLI and the API
//! (`Node::create_unit`, `unit_member`, `create_token`, `revoke_token`, `pin_peer`,
//! `remove_peer`, `rename_agency`, `ledger_overview`, `verify_ledger`, `prove_message`), so
//! every role check stays in the service; a page only leaves out what the viewer may not do.

use super::html::{Banner, Layout, Opt, filters, options, render};
use super::pages::local;
use super::{Session, Ui, redirect, service_banner};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use liaison_core::Role;
use liaison_service::ServiceError;

/// How many messages each way, and how many not applied, the ledger page lists.
pub const LEDGER_LIST: i64 = 50;

/// The tabs over every administration page; `current` is the one shown.
pub struct Tabs {
    pub items: Vec<Tab>,
}

pub struct Tab {
    pub href: &'static str,
    pub key: &'static str,
    pub current: bool,
}

/// The administration tabs the viewer may open.
pub(crate) fn tabs(role: Role, here: &str) -> Tabs {
    let admin = role.may_administer();
    let items = [
        ("/admin/users", "admin.tab_users", admin),
        (
            "/admin/units",
            "admin.tab_units",
            matches!(role, Role::Supervisor | Role::Admin),
        ),
        ("/admin/tokens", "admin.tab_tokens", admin),
        ("/admin/peers", "admin.tab_peers", admin),
        ("/directory", "admin.tab_directory", admin),
        ("/ledger", "admin.tab_ledger", role.may_audit()),
    ]
    .into_iter()
    .filter(|(_, _, shown)| *shown)
    .map(|(href, key, _)| Tab {
        href,
        key,
        current: href == here,
    })
    .collect();
    Tabs { items }
}

// ---- units ----------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin_units.html")]
struct UnitsPage<'a> {
    layout: Layout<'a>,
    tabs: Tabs,
    units: Vec<UnitRow>,
    /// Colleagues who may be added to a unit.
    people: Vec<Opt>,
    /// Values typed into the new-unit form (kept after an error).
    code: String,
    name: String,
}

struct UnitRow {
    code: String,
    name: String,
    members: Vec<(String, String)>,
}

async fn units_page(
    ui: &Ui,
    s: &Session,
    status: StatusCode,
    banners: Vec<Banner>,
    typed: (String, String),
) -> Response {
    let l = s.ctx.lang;
    let units = match ui.node.units(&s.p).await {
        Ok(u) => u,
        Err(e) => return s.error(&e),
    };
    // Supervisors read their colleagues; administrators (who read no requests) the users.
    let people = if s.p.role.may_administer() {
        ui.node
            .users(&s.p)
            .await
            .map(|all| all.into_iter().filter(|u| u.agency == s.p.agency).collect::<Vec<_>>())
    } else {
        ui.node.colleagues(&s.p).await
    };
    let people = match people {
        Ok(c) => c,
        Err(e) => return s.error(&e),
    };
    let name_of = |u: &str| {
        people
            .iter()
            .find(|p| p.username == u)
            .map(|p| format!("{} ({})", p.display_name, p.username))
            .unwrap_or_else(|| u.to_string())
    };
    let rows = units
        .iter()
        .map(|u| UnitRow {
            code: u.code.clone(),
            name: u.name.clone(),
            members: u.members.iter().map(|m| (m.clone(), name_of(m))).collect(),
        })
        .collect();
    let opts = options(
        people
            .iter()
            .filter(|p| !p.disabled)
            .map(|p| (p.username.as_str(), format!("{} ({})", p.display_name, p.username))),
        &[],
    );
    render(
        status,
        &UnitsPage {
            layout: s.layout(l.t("units.title"), banners),
            tabs: tabs(s.p.role, "/admin/units"),
            units: rows,
            people: opts,
            code: typed.0,
            name: typed.1,
        },
    )
}

/// `GET /admin/units`: the units of the viewer's agency with their members (supervisors and
/// admins change them; the service refuses other roles).
pub async fn units(AxState(ui): AxState<Ui>, s: Session) -> Response {
    units_page(&ui, &s, StatusCode::OK, vec![], Default::default()).await
}

/// `POST /admin/units`: a new unit.
pub async fn create_unit(AxState(ui): AxState<Ui>, s: Session, body: Bytes) -> Response {
    let form = match s.checked_form(&ui, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let l = s.ctx.lang;
    let code = form.get("code").unwrap_or("").to_string();
    let name = form.get("name").unwrap_or("").to_string();
    let r = ui.node.create_unit(&s.p, &code, &name, Timestamp::now()).await;
    let (status, banners) = s.outcome(r, |u| l.t1("units.created", &u.code));
    // What was typed comes back after an error.
    let typed = if status == StatusCode::OK {
        Default::default()
    } else {
        (code, name)
    };
    units_page(&ui, &s, status, banners, typed).await
}

/// `POST /admin/units/member`: adds a colleague to a unit or removes one (`action`).
pub async fn unit_member(AxState(ui): AxState<Ui>, s: Session, body: Bytes) -> Response {
    let form = match s.checked_form(&ui, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let l = s.ctx.lang;
    let unit = form.get("unit").unwrap_or("");
    let user = form.get("username").unwrap_or("");
    let add = form.get("action") != Some("remove");
    let r = ui.node.unit_member(&s.p, unit, user, add, Timestamp::now()).await;
    let key = if add { "units.added" } else { "units.removed" };
    let (status, banners) = s.outcome(r, |u| l.t(key).replacen("{}", user, 1).replacen("{}", &u.code, 1));
    units_page(&ui, &s, status, banners, Default::default()).await
}

// ---- tokens ---------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin_tokens.html")]
struct TokensPage<'a> {
    layout: Layout<'a>,
    tabs: Tabs,
    tokens: Vec<TokenRow>,
    /// Web sessions open now (each is a token; revoking one signs its user out).
    sessions: Vec<TokenRow>,
    users: Vec<Opt>,
    /// A token just issued: (user, secret), shown once.
    issued: Option<(String, String)>,
    label: String,
    days: String,
}

struct TokenRow {
    id: String,
    user: String,
    label: String,
    created: String,
    expires: String,
    /// Localized state: active, expired or revoked (with when).
    state: String,
    active: bool,
}

struct TokenForm {
    issued: Option<(String, String)>,
    label: String,
    days: String,
}

async fn tokens_page(ui: &Ui, s: &Session, status: StatusCode, banners: Vec<Banner>, f: TokenForm) -> Response {
    let l = s.ctx.lang;
    let now = Timestamp::now();
    let (tokens, users) = match (ui.node.tokens(&s.p).await, ui.node.users(&s.p).await) {
        (Ok(t), Ok(u)) => (t, u),
        (Err(e), _) | (_, Err(e)) => return s.error(&e),
    };
    let name = |id| {
        users
            .iter()
            .find(|u| u.id == id)
            .map(|u| u.username.clone())
            .unwrap_or_default()
    };
    let session = liaison_service::sign_in::SESSION_LABEL;
    let mut rows: Vec<TokenRow> = tokens
        .iter()
        .filter(|t| t.label != session || (t.revoked_at.is_none() && t.expires_at > now))
        .map(|t| {
            let (state, active) = match t.revoked_at {
                Some(at) => (l.t1("tokens.revoked_at", &local(at, &s.zone)), false),
                None if t.expires_at <= now => (l.t("tokens.expired").to_string(), false),
                None => (l.t("tokens.active").to_string(), true),
            };
            TokenRow {
                id: t.id.clone(),
                user: name(t.user),
                label: t.label.clone(),
                created: local(t.created_at, &s.zone),
                expires: local(t.expires_at, &s.zone),
                state,
                active,
            }
        })
        .collect();
    // Active first, then the newest; no more than 50 that no longer work.
    rows.sort_by(|a, b| b.active.cmp(&a.active).then_with(|| b.created.cmp(&a.created)));
    let (sessions, mut rows): (Vec<TokenRow>, Vec<TokenRow>) = rows.into_iter().partition(|r| r.label == session);
    let mut inactive = 0;
    rows.retain(|r| {
        inactive += usize::from(!r.active);
        r.active || inactive <= 50
    });
    let selected = f.issued.as_ref().map(|(u, _)| u.as_str()).unwrap_or("");
    let users = options(
        users
            .iter()
            .filter(|u| !u.disabled)
            .map(|u| (u.username.as_str(), format!("{} ({})", u.display_name, u.username))),
        &[selected],
    );
    render(
        status,
        &TokensPage {
            layout: s.layout(l.t("tokens.title"), banners),
            tabs: tabs(s.p.role, "/admin/tokens"),
            tokens: rows,
            sessions,
            users,
            issued: f.issued,
            label: f.label,
            days: f.days,
        },
    )
}

fn blank_token_form() -> TokenForm {
    TokenForm {
        issued: None,
        label: String::new(),
        days: "90".into(),
    }
}

/// `GET /admin/tokens`: every API token (never its secret), with a revoke button each, and a
/// form to issue one (admins).
pub async fn tokens(AxState(ui): AxState<Ui>, s: Session) -> Response {
    tokens_page(&ui, &s, StatusCode::OK, vec![], blank_token_form()).await
}

/// `POST /admin/tokens`: issues a token for a program acting as a user; its secret is shown
/// once on the page that answers.
pub async fn create_token(AxState(ui): AxState<Ui>, s: Session, body: Bytes) -> Response {
    let form = match s.checked_form(&ui, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let l = s.ctx.lang;
    let user = form.get("username").unwrap_or("").to_string();
    let label = form.get("label").unwrap_or("").trim().to_string();
    let days_text = form.get("days").unwrap_or("").trim().to_string();
    let typed = TokenForm {
        issued: None,
        label: label.clone(),
        days: days_text.clone(),
    };
    let Ok(days) = days_text.parse::<u32>() else {
        let b = Banner::field_error(l.t("tokens.days"), &l.t1("tokens.days_bad", &days_text));
        return tokens_page(&ui, &s, StatusCode::BAD_REQUEST, vec![b], typed).await;
    };
    if label.is_empty() {
        let b = Banner::field_error(l.t("tokens.label"), l.t("tokens.label_missing"));
        return tokens_page(&ui, &s, StatusCode::BAD_REQUEST, vec![b], typed).await;
    }
    match ui.node.create_token(&s.p, &user, &label, days, Timestamp::now()).await {
        Ok((secret, _)) => {
            let done = l.t1("tokens.issued", &user);
            let f = TokenForm {
                issued: Some((user, secret)),
                ..blank_token_form()
            };
            tokens_page(&ui, &s, StatusCode::OK, vec![Banner::ok(&done)], f).await
        }
        Err(e) => {
            let (status, b) = service_banner(l, &e);
            tokens_page(&ui, &s, status, vec![b], typed).await
        }
    }
}

/// `POST /admin/tokens/revoke`: revokes a token at once.
pub async fn revoke_token(AxState(ui): AxState<Ui>, s: Session, body: Bytes) -> Response {
    let form = match s.checked_form(&ui, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let id = form.get("id").unwrap_or("");
    let r = ui.node.revoke_token(&s.p, id, Timestamp::now()).await;
    let (status, banners) = s.outcome(r, |()| s.ctx.lang.t("tokens.revoked").to_string());
    tokens_page(&ui, &s, status, banners, blank_token_form()).await
}

// ---- peers ----------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin_peers.html")]
struct PeersPage<'a> {
    layout: Layout<'a>,
    tabs: Tabs,
    peers: Vec<PeerRow>,
    /// This node's own fingerprint and peer file, to give to a partner's operator.
    own: Option<(String, String)>,
    peer_file: String,
    fingerprint: String,
}

struct PeerRow {
    node_id: String,
    agency: String,
    base_url: String,
    added: String,
}

async fn peers_page(
    ui: &Ui,
    s: &Session,
    status: StatusCode,
    banners: Vec<Banner>,
    typed: (String, String),
) -> Response {
    let l = s.ctx.lang;
    let peers = match ui.node.peers(&s.p).await {
        Ok(p) => p,
        Err(e) => return s.error(&e),
    };
    let agencies = super::pages::agencies(ui, &s.p).await.unwrap_or_default();
    let rows = peers
        .iter()
        .map(|p| PeerRow {
            node_id: p.node_id.clone(),
            agency: p
                .agency_id
                .parse()
                .ok()
                .and_then(|id| agencies.get(&id))
                .map(|(a, _)| super::pages::agency_name(a, l))
                .unwrap_or_else(|| p.agency_id.clone()),
            base_url: p.base_url.clone(),
            added: local(p.added_at, &s.zone),
        })
        .collect();
    let own = match ui.node.own_peer_file().await {
        Ok(pf) => {
            let fp = pf.descriptor.fingerprint().map(|f| f.to_hex()).unwrap_or_default();
            serde_json::to_string_pretty(&pf).ok().map(|j| (fp, j))
        }
        Err(_) => None,
    };
    render(
        status,
        &PeersPage {
            layout: s.layout(l.t("peers.title"), banners),
            tabs: tabs(s.p.role, "/admin/peers"),
            peers: rows,
            own,
            peer_file: typed.0,
            fingerprint: typed.1,
        },
    )
}

/// `GET /admin/peers`: pinned peers, the form to pin one from its peer file and the fingerprint
/// its operator read out, and this node's own peer file.
pub async fn peers(AxState(ui): AxState<Ui>, s: Session) -> Response {
    peers_page(&ui, &s, StatusCode::OK, vec![], Default::default()).await
}

/// Longest peer file accepted from the form (a peer file is about 2 KB).
const MAX_PEER_FILE: usize = 64 * 1024;

/// `POST /admin/peers`: pins a peer if its descriptor has the fingerprint typed.
pub async fn pin_peer(AxState(ui): AxState<Ui>, s: Session, body: Bytes) -> Response {
    let form = match s.checked_form(&ui, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let l = s.ctx.lang;
    let text = form.get("peer_file").unwrap_or("").to_string();
    let fingerprint = form.get("fingerprint").unwrap_or("").trim().to_string();
    let typed = (text.clone(), fingerprint.clone());
    if text.len() > MAX_PEER_FILE {
        let b = Banner::field_error(
            l.t("peers.file"),
            &l.t1("peers.too_long", &(MAX_PEER_FILE / 1024).to_string()),
        );
        return peers_page(&ui, &s, StatusCode::PAYLOAD_TOO_LARGE, vec![b], typed).await;
    }
    let pf = match liaison_service::federation::parse_peer_file(text.as_bytes()) {
        Ok(pf) => pf,
        Err(e) => {
            let b = Banner::field_error(l.t("peers.file"), &e.to_string());
            return peers_page(&ui, &s, StatusCode::BAD_REQUEST, vec![b], typed).await;
        }
    };
    let r = ui.node.pin_peer(&s.p, &pf, &fingerprint, Timestamp::now()).await;
    let (status, banners) = s.outcome(r, |pinned| l.t1("peers.pinned", pinned.node_id.as_str()));
    let typed = if status == StatusCode::OK {
        Default::default()
    } else {
        typed
    };
    peers_page(&ui, &s, status, banners, typed).await
}

/// `POST /admin/peers/remove`: unpins a peer (its messages are refused from now on).
pub async fn remove_peer(AxState(ui): AxState<Ui>, s: Session, body: Bytes) -> Response {
    let form = match s.checked_form(&ui, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let node_id = form.get("node_id").unwrap_or("");
    let r = ui.node.remove_peer(&s.p, node_id).await;
    let (status, banners) = s.outcome(r, |()| s.ctx.lang.t1("peers.removed", node_id));
    peers_page(&ui, &s, status, banners, Default::default()).await
}

// ---- directory: renaming ---------------------------------------------------------------------

/// `POST /directory/rename`: an agency's names (English, its own language, Chinese pages).
pub async fn rename_agency(AxState(ui): AxState<Ui>, s: Session, body: Bytes) -> Response {
    let form = match s.checked_form(&ui, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let l = s.ctx.lang;
    let code = form.get("code").unwrap_or("").to_string();
    let names = liaison_service::AgencyNames {
        name_en: form.get("name_en").unwrap_or("").to_string(),
        name_native: form.get("name_native").unwrap_or("").to_string(),
        name_zh: form.get("name_zh").unwrap_or("").to_string(),
    };
    let r = ui.node.rename_agency(&s.p, &code, names, Timestamp::now()).await;
    let (status, banners) = s.outcome(r, |a| l.t1("dir.renamed", &super::pages::agency_name(&a, l)));
    super::pages::directory_page(&ui, &s, status, banners).await
}

// ---- ledger ---------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "ledger.html")]
struct LedgerPage<'a> {
    layout: Layout<'a>,
    tabs: Tabs,
    node_id: String,
    facts: Vec<(String, String)>,
    /// The lines of a verification just run, and whether the ledger is intact.
    verified: Option<Vec<String>>,
    verified_ok: bool,
    not_applied: Vec<Msg>,
    sent: Vec<Msg>,
    received: Vec<Msg>,
    evidence: Vec<(String, String, String, String)>,
}

/// One message of the ledger page.
struct Msg {
    id: String,
    peer: String,
    kind: String,
    at: String,
    /// Delivery or outcome, in the viewer's language where it is one of the known words.
    state: String,
}

async fn ledger_page(
    ui: &Ui,
    s: &Session,
    status: StatusCode,
    banners: Vec<Banner>,
    verified: Option<(bool, Vec<String>)>,
) -> Response {
    let l = s.ctx.lang;
    let o = match ui.node.ledger_overview(&s.p, LEDGER_LIST).await {
        Ok(o) => o,
        Err(e) => return s.error(&e),
    };
    let kind_of = |header: &str| {
        serde_json::from_str::<serde_json::Value>(header)
            .ok()
            .and_then(|h| h.get("payload_type").and_then(|t| t.as_str()).map(str::to_string))
            .unwrap_or_default()
    };
    let outcome = |o: &str| {
        if let Some(reason) = o.strip_prefix("not applied") {
            format!("{}{}", l.t("ledger.not_applied_word"), reason)
        } else {
            l.word("ledger.outcome", o)
        }
    };
    let inbox = |rows: &[liaison_core::record::InboxRow]| -> Vec<Msg> {
        rows.iter()
            .map(|r| Msg {
                id: r.message_id.clone(),
                peer: r.sender.clone(),
                kind: kind_of(&r.header),
                at: local(r.applied_at, &s.zone),
                state: outcome(&r.outcome),
            })
            .collect()
    };
    let sent = o
        .sent
        .iter()
        .map(|r| Msg {
            id: r.message_id.clone(),
            peer: r.recipient.clone(),
            kind: r.payload_type.clone(),
            at: local(r.created_at, &s.zone),
            state: match (&r.delivered_at, &r.last_error) {
                (Some(at), _) => l.t1("ledger.delivered_at", &local(*at, &s.zone)),
                (None, Some(err)) => l.t1("ledger.pending_error", &format!("{} — {err}", r.attempts)),
                (None, None) => l.t("ledger.pending").to_string(),
            },
        })
        .collect();
    let facts = vec![
        (
            l.t("ledger.base_url").to_string(),
            o.base_url.clone().unwrap_or_else(|| "—".into()),
        ),
        (l.t("ledger.peers").to_string(), o.peers.to_string()),
        (l.t("ledger.leaves").to_string(), o.ledger_leaves.to_string()),
        (l.t("ledger.outbox_pending").to_string(), o.outbox_pending.to_string()),
        (
            l.t("ledger.outbox_delivered").to_string(),
            o.outbox_delivered.to_string(),
        ),
    ];
    let evidence = o
        .evidence
        .iter()
        .map(|e| {
            (
                e.node_id.clone(),
                e.tree_size.to_string(),
                local(e.recorded_at, &s.zone),
                e.note.clone().unwrap_or_default(),
            )
        })
        .collect();
    render(
        status,
        &LedgerPage {
            layout: s.layout(l.t("ledger.title"), banners),
            tabs: tabs(s.p.role, "/ledger"),
            node_id: o.node_id.clone().unwrap_or_default(),
            facts,
            verified_ok: verified.as_ref().is_some_and(|(ok, _)| *ok),
            verified: verified.map(|(_, lines)| lines),
            not_applied: inbox(&o.not_applied),
            received: inbox(&o.received),
            sent,
            evidence,
        },
    )
}

/// `GET /ledger`: the node's federation at a glance, the messages not applied (conflicts with
/// the local state or rules), the latest messages each way with a proof to download each, and
/// the evidence kept of peers rewriting their history (auditors and admins).
pub async fn ledger(AxState(ui): AxState<Ui>, s: Session) -> Response {
    ledger_page(&ui, &s, StatusCode::OK, vec![], None).await
}

/// `POST /ledger/verify`: recomputes the ledger from its leaves and checks every kept tree
/// head (can take a while on a large ledger, so it runs only when asked).
pub async fn verify(AxState(ui): AxState<Ui>, s: Session, body: Bytes) -> Response {
    if let Err(r) = s.checked_form(&ui, &body) {
        return *r;
    }
    let l = s.ctx.lang;
    match ui.node.verify_ledger(&s.p).await {
        Ok(r) => {
            let intact = r.is_intact();
            let mut lines = vec![
                l.t1("ledger.verified_leaves", &r.leaves.to_string()),
                l.t1("ledger.verified_heads", &r.tree_heads_checked.to_string()),
                l.t1("ledger.verified_root", &r.root),
            ];
            lines.extend(r.problems.iter().cloned());
            let b = if intact {
                Banner::ok(l.t("ledger.intact"))
            } else {
                Banner::error(l.t("ledger.broken"))
            };
            let status = if intact { StatusCode::OK } else { StatusCode::CONFLICT };
            ledger_page(&ui, &s, status, vec![b], Some((intact, lines))).await
        }
        Err(e) => s.error(&e),
    }
}

/// `GET /ledger/proof/{message_id}`: the message's proof bundle, to check offline with
/// `liaison ledger verify-proof` (the payload is not disclosed).
pub async fn proof(AxState(ui): AxState<Ui>, s: Session, Path(id): Path<String>) -> Response {
    match ui.node.prove_message(&s.p, &id, false).await {
        Ok(bundle) => match serde_json::to_vec_pretty(&bundle) {
            Ok(body) => {
                let mut r = body.into_response();
                let h = r.headers_mut();
                h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                let safe: String = id
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .take(64)
                    .collect();
                if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"proof-{safe}.json\"")) {
                    h.insert(header::CONTENT_DISPOSITION, v);
                }
                r
            }
            Err(e) => s.error(&ServiceError::Internal(e.to_string())),
        },
        Err(e) => s.error(&e),
    }
}

/// The old address of the users page, kept for bookmarks.
pub async fn admin_home() -> Response {
    redirect("/admin/users")
}
