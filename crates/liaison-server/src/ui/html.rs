//! What every template shares: the HTML escaper, percent-encoding of URL query values, the data
//! of the page layout (header, banners) and of repeated fragments (option lists, deadlines,
//! state badges), and the rendering of a template into a response. No markup is built here: the
//! markup is in `templates/`, and every value reaches it as plain data escaped by [`Entities`].

use super::i18n::Lang;
use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::fmt;

/// The escaper of every `.html` template (wired in `askama.toml`). It escapes the same five
/// characters as askama's own, but as the named entities the pages have always used (`&lt;`,
/// `&gt;`, `&amp;`, `&quot;`, `&#39;`), so the output is unchanged by the move to templates.
#[derive(Debug, Clone, Copy, Default)]
pub struct Entities;

impl askama::filters::Escaper for Entities {
    fn write_escaped_str<W: fmt::Write>(&self, mut dest: W, s: &str) -> fmt::Result {
        let mut start = 0;
        for (i, b) in s.bytes().enumerate() {
            let entity = match b {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                b'\'' => "&#39;",
                _ => continue,
            };
            // The five characters are ASCII, so `i` and `i + 1` are character boundaries.
            dest.write_str(&s[start..i])?;
            dest.write_str(entity)?;
            start = i + 1;
        }
        dest.write_str(&s[start..])
    }
}

/// Percent-encodes a query-string value: everything but ASCII letters, digits and `-_.~`.
pub fn url_enc(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

/// The filters the templates call besides askama's built-ins.
pub mod filters {
    /// `{{ value|url_enc }}`: [`super::url_enc`] for a URL query value in a template.
    #[askama::filter_fn]
    pub fn url_enc(value: impl std::fmt::Display, _: &dyn askama::Values) -> askama::Result<String> {
        Ok(super::url_enc(&value.to_string()))
    }
}

/// Renders a page; a template that fails (it cannot, short of a formatting error) is a 500.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => {
            let mut r = (status, body).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "a web UI template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// One option of a select element (macro `options` in `macros.html`).
pub struct Opt {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// The options of a select; `selected` values are marked.
pub fn options<'a>(items: impl IntoIterator<Item = (&'a str, String)>, selected: &[&str]) -> Vec<Opt> {
    items
        .into_iter()
        .map(|(value, label)| Opt {
            selected: selected.contains(&value),
            value: value.to_string(),
            label,
        })
        .collect()
}

/// A label and the text that goes with it (`label: text`).
pub struct Labelled {
    pub label: String,
    pub text: String,
}

impl Labelled {
    pub fn new(label: impl Into<String>, text: impl Into<String>) -> Self {
        Labelled {
            label: label.into(),
            text: text.into(),
        }
    }
}

/// A field named in an error banner.
pub struct FieldLine {
    /// The field path, as the service named it (`offences[0]`).
    pub field: String,
    /// Its localized label.
    pub label: String,
    pub message: String,
}

/// A success, information or error message at the top of a page (macro `banner`). The parts
/// that are set are shown in this order: `text`, `field`, `lead`, `fields`, `allowed`, `detail`.
#[derive(Default)]
pub struct Banner {
    class: &'static str,
    /// Plain text, the whole message.
    pub text: Option<String>,
    /// `label: text` with the label in bold, a message about one form field.
    pub field: Option<Labelled>,
    /// The first paragraph of an error from a use case.
    pub lead: Option<String>,
    /// The fields at fault, as a list.
    pub fields: Option<Vec<FieldLine>>,
    /// The states a request may move to now.
    pub allowed: Option<Labelled>,
    /// The service's own message, in small print.
    pub detail: Option<Labelled>,
}

impl Banner {
    fn with_text(class: &'static str, text: &str) -> Self {
        Banner {
            class,
            text: Some(text.to_string()),
            ..Default::default()
        }
    }
    pub fn ok(text: &str) -> Self {
        Banner::with_text("ok", text)
    }
    pub fn info(text: &str) -> Self {
        Banner::with_text("info", text)
    }
    pub fn error(text: &str) -> Self {
        Banner::with_text("error", text)
    }
    /// An error about one form field.
    pub fn field_error(label: &str, message: &str) -> Self {
        Banner {
            class: "error",
            field: Some(Labelled::new(label, message)),
            ..Default::default()
        }
    }
    /// An error from a use case, led by `lead`; add the details with the fields.
    pub fn service_error(lead: &str) -> Self {
        Banner {
            class: "error",
            lead: Some(lead.to_string()),
            ..Default::default()
        }
    }
    /// Adds the fields at fault.
    pub fn with_fields(self, fields: Vec<FieldLine>) -> Self {
        Banner {
            fields: Some(fields),
            ..self
        }
    }
    /// Adds the states a request may move to now.
    pub fn with_allowed(self, label: &str, states: String) -> Self {
        Banner {
            allowed: Some(Labelled::new(label, states)),
            ..self
        }
    }
    /// Adds the service's own message.
    pub fn with_detail(self, label: &str, message: &str) -> Self {
        Banner {
            detail: Some(Labelled::new(label, message)),
            ..self
        }
    }
    pub fn class(&self) -> &'static str {
        self.class
    }
    pub fn role(&self) -> &'static str {
        if self.class == "error" { "alert" } else { "status" }
    }
}

/// Who is signed in, for the page header.
pub struct Viewer<'a> {
    pub username: &'a str,
    /// The localized role.
    pub role: String,
    pub agency: &'a str,
    pub csrf: &'a str,
    /// Whether to offer the new-draft page (officers and supervisors).
    pub may_draft: bool,
    /// Whether to offer the cooperation report (analysts, supervisors, auditors, admins).
    pub may_read_statistics: bool,
    /// Whether to offer the home page and the inbox (every role that reads requests).
    pub works: bool,
    /// Whether to offer the administration pages (admins).
    pub administers: bool,
    /// Whether to offer the ledger (auditors; admins reach it from the administration tabs).
    pub audits: bool,
    /// Whether to offer the units page on its own (supervisors; admins reach it from the tabs).
    pub manages_units: bool,
}

/// One link of the main navigation.
pub struct NavLink {
    pub href: &'static str,
    /// Message key of its label.
    pub key: &'static str,
    /// Whether it is the page shown (`aria-current`).
    pub current: bool,
}

/// What `base.html` shows around every page: header with navigation and language switch,
/// title, banners, footer.
pub struct Layout<'a> {
    pub lang: Lang,
    /// This page's path and query, where the language switch returns to.
    pub here: &'a str,
    pub title: String,
    pub viewer: Option<Viewer<'a>>,
    pub banners: Vec<Banner>,
}

impl Layout<'_> {
    /// The navigation offered to the viewer (none before sign-in).
    pub fn nav(&self) -> Vec<NavLink> {
        let Some(v) = &self.viewer else {
            return Vec::new();
        };
        [
            ("/home", "nav.home", v.works),
            ("/requests", "nav.requests", true),
            ("/requests/new", "nav.new", v.may_draft),
            ("/search", "nav.search", true),
            ("/cases", "nav.cases", v.works),
            ("/directory", "nav.directory", true),
            ("/cooperation", "nav.cooperation", v.may_read_statistics),
            ("/intel", "nav.intel", true),
            ("/inbox", "nav.inbox", v.works),
            ("/admin/users", "nav.admin", v.administers),
            ("/admin/units", "nav.units", v.manages_units),
            ("/ledger", "nav.ledger", v.audits && !v.administers),
            ("/account", "nav.account", true),
        ]
        .into_iter()
        .filter(|(_, _, shown)| *shown)
        .map(|(href, key, _)| NavLink {
            href,
            key,
            current: self.here == href
                || (href == "/requests" && self.here.starts_with("/requests?"))
                || (href == "/inbox" && self.here.starts_with("/inbox?"))
                || (href == "/search" && self.here.starts_with("/search?"))
                || (href == "/cases" && self.here.starts_with("/cases/"))
                || (href == "/admin/users" && (self.here.starts_with("/admin/") || self.here.starts_with("/ledger"))),
        })
        .collect()
    }

    /// The CSRF token for the forms of the page (empty before sign-in, where there are none).
    pub fn csrf(&self) -> &str {
        self.viewer.as_ref().map_or("", |v| v.csrf)
    }
}

/// A page with nothing but the layout: a title and banners (error pages).
#[derive(Template)]
#[template(path = "base.html")]
pub struct PlainPage<'a> {
    pub layout: Layout<'a>,
}

/// A request's state as a badge (macro `state_badge`).
pub struct StateBadge {
    pub code: &'static str,
    pub label: String,
}

/// A deadline (macro `due`): UTC, and below it the requested agency's local time; `—` if none.
pub struct Due {
    /// In the reader's zone.
    pub at: String,
    pub local: Option<LocalTime>,
}

/// A time in a named zone.
pub struct LocalTime {
    pub time: String,
    /// The IANA zone name.
    pub zone: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes_and_encodes_query_values() {
        let shown = askama::filters::escape("a < b > c & \"y\" 'z' 中文", Entities)
            .map(|s| s.to_string())
            .unwrap_or_default();
        assert_eq!(shown, "a &lt; b &gt; c &amp; &quot;y&quot; &#39;z&#39; 中文");
        assert_eq!(url_enc("/requests?state=a b&x"), "%2Frequests%3Fstate%3Da%20b%26x");
        assert_eq!(url_enc("é~"), "%C3%A9~");
    }
}
