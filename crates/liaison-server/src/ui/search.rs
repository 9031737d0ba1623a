//! The search page (`/search`, docs/search.md): words in the requests the viewer may read, an
//! identifier look-up, and the viewer's saved searches. Works without JavaScript: a GET form,
//! links for the next page and the CSV, small POST forms (with the CSRF token) to save and
//! delete a search.

use super::html::filters;
use super::html::{Banner, Layout, render};
use super::pages::{agencies, badge_state, code_of, marking_class};
use super::{Form, Session, Ui, redirect, service_banner};
use crate::ui::html::StateBadge;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State as AxState};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use liaison_core::record::{SearchPage, TargetLookup};
use liaison_service::search::SearchParams;

/// A piece of a snippet: text, and whether it is a match (shown in `<mark>`).
pub struct Piece {
    pub text: String,
    pub mark: bool,
}

/// One hit as the page shows it.
pub struct HitRow {
    pub id: String,
    pub reference: String,
    pub pair: String,
    pub state: StateBadge,
    pub tlp: &'static str,
    pub tlp_class: &'static str,
    pub at: String,
    pub where_: String,
    pub pieces: Vec<Piece>,
}

/// A request found by a look-up.
pub struct LookupRow {
    pub id: String,
    pub reference: String,
    pub case: String,
    pub pair: String,
    pub state: StateBadge,
}

/// A saved search as listed.
pub struct SavedRow {
    pub name: String,
    pub query: String,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPageHtml<'a> {
    layout: Layout<'a>,
    q: String,
    target: String,
    case_reference: String,
    within: String,
    counterpart: String,
    owner: String,
    from: String,
    to: String,
    kind_opts: Vec<super::html::Opt>,
    state_opts: Vec<super::html::Opt>,
    oldest: bool,
    /// Hits of a search of words (None: no words asked).
    hits: Option<Vec<HitRow>>,
    count: String,
    /// A look-up's summary line and requests (None: no identifier asked, or words were).
    lookup_line: Option<String>,
    lookup_rows: Vec<LookupRow>,
    lookup_notices: Vec<String>,
    saved: Vec<SavedRow>,
    /// The query string of this search (without cursor), for links and saving.
    this_query: String,
    next: Option<String>,
}

/// Splits a snippet into marked and plain pieces (marks are byte ranges on char boundaries).
fn pieces(text: &str, marks: &[(usize, usize)]) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut last = 0;
    for &(s, e) in marks {
        if s < last || e > text.len() || s >= e || !text.is_char_boundary(s) || !text.is_char_boundary(e) {
            continue;
        }
        if s > last {
            out.push(Piece {
                text: text[last..s].to_string(),
                mark: false,
            });
        }
        out.push(Piece {
            text: text[s..e].to_string(),
            mark: true,
        });
        last = e;
    }
    if last < text.len() {
        out.push(Piece {
            text: text[last..].to_string(),
            mark: false,
        });
    }
    out
}

pub async fn page(AxState(ui): AxState<Ui>, mut s: Session, RawQuery(raw): RawQuery) -> Response {
    s.ctx.here = "/search".into();
    let l = s.ctx.lang;
    let form = Form::query(raw.as_deref());
    let now = Timestamp::now();
    let mut banners = Vec::new();
    let mut status = StatusCode::OK;
    match form.get("saved") {
        Some("1") => banners.push(Banner::ok(l.t("search.saved_ok"))),
        Some("0") => banners.push(Banner::ok(l.t("search.forgot_ok"))),
        _ => {}
    }
    // The form's own fields, then the search as every face reads it.
    let pairs: Vec<(String, String)> = liaison_service::search::SEARCH_PARAMS
        .iter()
        .filter_map(|k| form.get(k).map(|v| (k.to_string(), v.to_string())))
        .collect();
    let params = match SearchParams::parse(pairs) {
        Ok(p) => Some(p),
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
    let mut hits = None;
    let mut count = String::new();
    let mut next = None;
    let (mut lookup_line, mut lookup_rows, mut lookup_notices) = (None, Vec::new(), Vec::new());
    if let Some(params) = &params {
        if params.q.is_some() {
            match ui.node.search(&s.p, params, now).await {
                Ok(SearchPage {
                    items,
                    next: n,
                    count: c,
                    count_capped,
                }) => {
                    count = if c == 1 {
                        l.t("search.count_one").to_string()
                    } else {
                        l.t("search.count")
                            .replace("{}", &format!("{c}{}", if count_capped { "+" } else { "" }))
                    };
                    next = n;
                    hits = Some(
                        items
                            .iter()
                            .map(|h| HitRow {
                                id: h.request.id.to_string(),
                                reference: h.request.reference.clone(),
                                pair: format!(
                                    "{} → {}",
                                    code_of(&map, h.request.requesting_agency),
                                    code_of(&map, h.request.requested_agency)
                                ),
                                state: badge_state(l, h.request.state),
                                tlp: h.request.marking.tlp.as_str(),
                                tlp_class: marking_class(h.request.marking.tlp),
                                at: super::pages::local(h.at, &s.zone),
                                where_: l.t(&format!("search.field.{}", h.field)).to_string(),
                                pieces: pieces(&h.snippet.text, &h.snippet.marks),
                            })
                            .collect(),
                    );
                }
                Err(e) => {
                    let (st, b) = service_banner(l, &e);
                    status = st;
                    banners.push(b);
                }
            }
        } else if let Some(t) = &params.target {
            match ui.node.lookup(&s.p, t, params.target_kind, now).await {
                Ok(TargetLookup {
                    kind,
                    identifier,
                    request_count,
                    request_count_capped,
                    requests,
                    notice_count,
                    indicators,
                    incoming,
                }) => {
                    lookup_line = Some(
                        l.t("search.lookup_line")
                            .replace("{kind}", l.t(&format!("search.kind.{kind}")))
                            .replace("{id}", &identifier)
                            .replace(
                                "{requests}",
                                &format!("{request_count}{}", if request_count_capped { "+" } else { "" }),
                            )
                            .replace("{notices}", &notice_count.to_string()),
                    );
                    lookup_rows = requests
                        .iter()
                        .map(|r| LookupRow {
                            id: r.id.to_string(),
                            reference: r.reference.clone(),
                            case: r.case_reference.clone(),
                            pair: format!(
                                "{} → {}",
                                code_of(&map, r.requesting_agency),
                                code_of(&map, r.requested_agency)
                            ),
                            state: badge_state(l, r.state),
                        })
                        .collect();
                    lookup_notices = indicators
                        .iter()
                        .map(|i| format!("{} {} · {} · {}", i.kind, i.value, i.classification, i.status))
                        .chain(
                            incoming
                                .iter()
                                .map(|i| format!("{} · {} {} · {}", i.sender, i.kind, i.value, i.status)),
                        )
                        .collect();
                }
                Err(e) => {
                    let (st, b) = service_banner(l, &e);
                    status = st;
                    banners.push(b);
                }
            }
        }
    }
    let saved = ui
        .node
        .saved_searches(&s.p)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|x| SavedRow {
            name: x.name,
            query: x.query,
        })
        .collect();
    let this_query = params.as_ref().map(SearchParams::to_query).unwrap_or_default();
    let title = l.t("search.title").to_string();
    render(
        status,
        &SearchPageHtml {
            layout: s.layout(&title, banners),
            q: form.get("q").unwrap_or("").to_string(),
            target: form.get("target").unwrap_or("").to_string(),
            case_reference: form.get("case_reference").unwrap_or("").to_string(),
            within: form.get("in").unwrap_or("").to_string(),
            counterpart: form.get("counterpart").unwrap_or("").to_string(),
            owner: form.get("owner").unwrap_or("").to_string(),
            from: form.get("from").unwrap_or("").to_string(),
            to: form.get("to").unwrap_or("").to_string(),
            kind_opts: super::html::options(
                std::iter::once(("", l.t("list.any").to_string())).chain(
                    liaison_core::RequestKind::ALL
                        .iter()
                        .map(|k| (k.as_str(), l.word("kind", k.as_str()))),
                ),
                &[form.get("kind").unwrap_or("")],
            ),
            state_opts: super::html::options(
                std::iter::once(("", l.t("list.any").to_string())).chain(
                    liaison_core::State::ALL
                        .iter()
                        .map(|st| (st.as_str(), l.word("state", st.as_str()))),
                ),
                &[form.get("state").unwrap_or("")],
            ),
            oldest: form.get("sort") == Some("oldest"),
            hits,
            count,
            lookup_line,
            lookup_rows,
            lookup_notices,
            saved,
            this_query,
            next,
        },
    )
}

/// The hits of a search as CSV (the page's search, this page only).
pub async fn csv(AxState(ui): AxState<Ui>, s: Session, RawQuery(raw): RawQuery) -> Response {
    let params = match SearchParams::from_query_string(raw.as_deref().unwrap_or("")) {
        Ok(p) => p,
        Err(e) => return s.error(&e),
    };
    let page = match ui.node.search(&s.p, &params, Timestamp::now()).await {
        Ok(p) => p,
        Err(e) => return s.error(&e),
    };
    match ui.node.search_csv(&page).await {
        Ok(text) => {
            let mut resp = text.into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            resp.headers_mut().insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"search.csv\""),
            );
            resp
        }
        Err(e) => s.error(&e),
    }
}

/// Saves the page's search under a name, or deletes a saved one (`forget`).
pub async fn save(AxState(ui): AxState<Ui>, mut s: Session, body: Bytes) -> Response {
    s.ctx.here = "/search".into();
    let form = Form::parse(&body);
    if !s.csrf_ok(&ui, &form) {
        return super::pages::bad_form(&s);
    }
    let now = Timestamp::now();
    if let Some(name) = form.get("forget") {
        return match ui.node.delete_saved_search(&s.p, name).await {
            Ok(()) => redirect("/search?saved=0"),
            Err(e) => s.error(&e),
        };
    }
    let name = form.get("name").unwrap_or("");
    let query = form.get("query").unwrap_or("");
    match ui.node.save_search(&s.p, name, query, now).await {
        Ok(saved) => redirect(&format!("/search?{}&saved=1", saved.query)),
        Err(e) => s.error(&e),
    }
}
