//! HTML escaping and the page layout. Every value that did not come from this file goes
//! through [`esc`] before it reaches the page.

use super::i18n::Lang;
use std::fmt::Write as _;

/// Escapes text for use in element content and in double- or single-quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query-string value.
pub fn url_enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `<option>` elements; `selected` values are marked.
pub fn options<'a>(items: impl IntoIterator<Item = (&'a str, String)>, selected: &[&str]) -> String {
    let mut out = String::new();
    for (value, label) in items {
        let sel = if selected.contains(&value) { " selected" } else { "" };
        let _ = write!(out, "<option value=\"{}\"{sel}>{}</option>", esc(value), esc(&label));
    }
    out
}

/// A success, information or error message at the top of a page (already-escaped HTML).
pub struct Banner {
    pub class: &'static str,
    pub html: String,
}

impl Banner {
    pub fn ok(text: &str) -> Self {
        Banner {
            class: "ok",
            html: esc(text),
        }
    }
    pub fn info(text: &str) -> Self {
        Banner {
            class: "info",
            html: esc(text),
        }
    }
    pub fn error_html(html: String) -> Self {
        Banner { class: "error", html }
    }
    pub fn render(&self) -> String {
        let role = if self.class == "error" { "alert" } else { "status" };
        format!(
            "<div class=\"banner {}\" role=\"{role}\">{}</div>",
            self.class, self.html
        )
    }
}

/// Who is signed in, for the page header.
pub struct Viewer<'a> {
    pub username: &'a str,
    pub role: &'a str,
    pub agency: &'a str,
    pub csrf: &'a str,
    /// Whether to offer the new-draft page (officers and supervisors).
    pub may_draft: bool,
    /// Whether to offer the cooperation report (analysts, supervisors, auditors, admins).
    pub may_read_statistics: bool,
}

/// The page around `body`: header with navigation and language switch, banners, footer.
pub fn layout(
    lang: Lang,
    here: &str,
    title: &str,
    viewer: Option<&Viewer<'_>>,
    banners: &[Banner],
    body: &str,
) -> String {
    let t = |k: &str| lang.t(k).to_string();
    let mut nav = String::new();
    if let Some(v) = viewer {
        nav.push_str(&format!("<nav aria-label=\"{}\"><ul>", esc(&t("nav.main"))));
        for (href, key, shown) in [
            ("/requests", "nav.requests", true),
            ("/requests/new", "nav.new", v.may_draft),
            ("/directory", "nav.directory", true),
            ("/cooperation", "nav.cooperation", v.may_read_statistics),
        ] {
            if !shown {
                continue;
            }
            let current = if here == href || (href == "/requests" && here.starts_with("/requests?")) {
                " aria-current=\"page\""
            } else {
                ""
            };
            let _ = write!(nav, "<li><a href=\"{href}\"{current}>{}</a></li>", esc(&t(key)));
        }
        nav.push_str("</ul></nav>");
    }
    let mut who = String::new();
    if let Some(v) = viewer {
        let _ = write!(
            who,
            "<span>{}: <strong>{}</strong> · {} · {}</span>\
             <form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\" id=\"logout\">{}</button></form>",
            esc(&t("nav.signed_in_as")),
            esc(v.username),
            esc(v.role),
            esc(v.agency),
            esc(v.csrf),
            esc(&t("nav.logout")),
        );
    }
    let other = lang.other();
    let _ = write!(
        who,
        "<a id=\"lang-switch\" href=\"/lang?to={}&amp;back={}\" lang=\"{}\" hreflang=\"{}\" aria-label=\"{}\">{}</a>",
        other.code(),
        esc(&url_enc(here)),
        other.code(),
        other.code(),
        esc(&t("lang.other_label")),
        esc(&t("lang.other")),
    );
    let banners: String = banners.iter().map(Banner::render).collect();
    format!(
        "<!DOCTYPE html>\n<html lang=\"{code}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · {app}</title><link rel=\"stylesheet\" href=\"/static/app.css\"></head>\
         <body><a class=\"skip\" href=\"#main\">{skip}</a>\
         <header class=\"top\"><div class=\"bar\"><a class=\"brand\" href=\"/requests\">{app}</a>{nav}<div class=\"who\">{who}</div></div></header>\
         <main id=\"main\"><h1>{title}</h1>{banners}{body}</main>\
         <footer><p>{times}</p><p>{advice}</p></footer></body></html>\n",
        code = lang.code(),
        title = esc(title),
        app = esc(&t("app.name")),
        skip = esc(&t("nav.main")),
        times = esc(&t("footer.times")),
        advice = esc(&t("footer.advice")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
        assert_eq!(url_enc("/requests?state=a b&x"), "%2Frequests%3Fstate%3Da%20b%26x");
    }
}
