//! The web UI over HTTP: sign-in cookie, pages, form transitions with CSRF, languages, escaping.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use liaison_core::Role;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};

struct Ui {
    base: String,
    http: reqwest::Client,
    f: common::Fixture,
}

/// A signed-in browser: the session cookie and, optionally, a language cookie.
struct Browser<'a> {
    ui: &'a Ui,
    cookie: String,
}

impl Ui {
    async fn start() -> Ui {
        let f = common::fixture(liaison_service::fixtures::sqlite_node().await.unwrap()).await;
        let base = common::serve(&f.node).await;
        Ui {
            base,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            f,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Signs in with the token of `agency`/`role` and returns the session cookie pair.
    async fn login(&self, agency: &str, role: Role) -> Browser<'_> {
        let resp = self
            .http
            .post(self.url("/login"))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(format!("token={}", self.f.token(agency, role)))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        assert_eq!(resp.headers()[LOCATION], "/home", "sign-in lands on the home page");
        let set = resp.headers()[SET_COOKIE].to_str().unwrap().to_string();
        assert!(set.starts_with("liaison_token=lia_"), "{set}");
        assert!(set.contains("HttpOnly"), "{set}");
        assert!(set.contains("SameSite=Strict"), "{set}");
        let pair = set.split(';').next().unwrap().to_string();
        Browser { ui: self, cookie: pair }
    }
}

impl Browser<'_> {
    fn with_lang(&self, lang: &str) -> Browser<'_> {
        Browser {
            ui: self.ui,
            cookie: format!("{}; lang={lang}", self.cookie),
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let resp = self
            .ui
            .http
            .get(self.ui.url(path))
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .unwrap();
        let s = resp.status();
        (s, resp.text().await.unwrap())
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (StatusCode, String, Option<String>) {
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", enc(v)))
            .collect::<Vec<_>>()
            .join("&");
        let resp = self
            .ui
            .http
            .post(self.ui.url(path))
            .header(COOKIE, &self.cookie)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let s = resp.status();
        let loc = resp.headers().get(LOCATION).map(|v| v.to_str().unwrap().to_string());
        (s, resp.text().await.unwrap(), loc)
    }

    /// The CSRF token embedded in the forms of a page.
    async fn csrf(&self, path: &str) -> String {
        let (_, html) = self.get(path).await;
        attr_after(&html, "name=\"csrf\" value=\"").expect("page has a CSRF field")
    }
}

use common::enc;

fn attr_after(html: &str, marker: &str) -> Option<String> {
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_string())
}

const XSS: &str = "Phishing kit <script>alert('pwned')</script> & \"quotes\"";

/// Creates a draft through the new-draft form and returns its id.
async fn create_draft(b: &Browser<'_>, mps: &str) -> String {
    let csrf = b.csrf("/requests/new").await;
    let (s, body, loc) = b
        .post(
            "/requests/new",
            &[
                ("csrf", &csrf),
                ("kind", "subscriber_information"),
                ("urgency", "urgent"),
                ("requested_agency", mps),
                ("case_reference", "FBI-UI-<b>7</b>"),
                ("offences", "BC-02"),
                ("summary", XSS),
                ("legal_basis", "18 USC 1030"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    let loc = loc.unwrap();
    let id = loc.strip_prefix("/requests/").unwrap();
    id.strip_suffix("?saved=1")
        .expect("saved: the page says so")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_list_detail_transition_and_languages() {
    let ui = Ui::start().await;
    let mps_id = ui.f.mps.id.to_string();

    // Not signed in: pages send you to the sign-in form; the stylesheet is public.
    let r = ui.http.get(ui.url("/requests")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/login");
    let r = ui.http.get(ui.url("/")).send().await.unwrap();
    assert_eq!(r.headers()[LOCATION], "/login");
    let r = ui.http.get(ui.url("/static/app.css")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()[CONTENT_TYPE].to_str().unwrap().starts_with("text/css"));
    let r = ui.http.get(ui.url("/login")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let html = r.text().await.unwrap();
    assert!(html.contains("name=\"token\"") && html.contains("<label for=\"token\">API token</label>"));

    // A wrong token is refused with a message naming the field; an empty one too.
    let r = ui
        .http
        .post(ui.url("/login"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("token=lia_{}", "0".repeat(64)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get(SET_COOKIE).is_none());
    let html = r.text().await.unwrap();
    assert!(html.contains("unknown, expired or revoked"), "{html}");
    let r = ui
        .http
        .post(ui.url("/login"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("token=")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // A sign-in posted from another site is refused.
    let r = ui
        .http
        .post(ui.url("/login"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "cross-site")
        .body(format!("token={}", ui.f.token("FBI", Role::Officer)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // The requesting officer drafts through the form; the summary is escaped on every page.
    let fbi = ui.login("FBI", Role::Officer).await;
    let id = create_draft(&fbi, &mps_id).await;
    let (s, html) = fbi.get(&format!("/requests/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!html.contains("<script>alert"), "summary must be escaped");
    assert!(
        html.contains("Phishing kit &lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt; &amp; &quot;quotes&quot;"),
        "{html}"
    );
    assert!(!html.contains("<b>7</b>") && html.contains("FBI-UI-&lt;b&gt;7&lt;/b&gt;"));
    assert!(html.contains("data-state=\"draft\""));
    assert!(html.contains("id=\"go-submitted\"") && html.contains("id=\"go-withdrawn\""));
    assert!(html.contains("BC-02"));
    assert!(html.contains("href=\"/requests/new\""));

    // The list shows it, with the pair and state; filters work and bad filters are explained.
    let (s, html) = fbi.get("/requests").await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains(&format!("href=\"/requests/{id}\"")), "{html}");
    assert!(html.contains("FBI → CN-MPS"));
    let (_, html) = fbi.get("/requests?state=draft&kind=subscriber_information").await;
    assert!(html.contains(&format!("href=\"/requests/{id}\"")));
    let (_, html) = fbi.get("/requests?state=answered").await;
    assert!(!html.contains(&format!("href=\"/requests/{id}\"")));
    assert!(html.contains("No requests match"));
    let (s, html) = fbi.get("/requests?state=<bogus>&overdue=1").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        html.contains("<strong>State</strong>") && html.contains("&lt;bogus&gt;"),
        "{html}"
    );
    assert!(!html.contains("<bogus>"));

    // A transition without or with a wrong CSRF token is refused and changes nothing.
    let (s, _, _) = fbi
        .post(
            &format!("/requests/{id}/transition"),
            &[("version", "1"), ("to", "submitted")],
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, html, _) = fbi
        .post(
            &format!("/requests/{id}/transition"),
            &[("csrf", &"ab".repeat(32)), ("version", "1"), ("to", "submitted")],
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(html.contains("form has expired"));
    let (_, html) = fbi.get(&format!("/requests/{id}")).await;
    assert!(html.contains("data-state=\"draft\""));
    // Another user's CSRF token does not work with this session either.
    let other = ui.login("FBI", Role::Supervisor).await;
    let other_csrf = other.csrf("/requests/new").await;
    let (s, _, _) = fbi
        .post(
            &format!("/requests/{id}/transition"),
            &[("csrf", &other_csrf), ("version", "1"), ("to", "submitted")],
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Sending first shows what goes, the verdict and what to look at, and sends nothing.
    let csrf = fbi.csrf(&format!("/requests/{id}")).await;
    let (s, html, _) = fbi
        .post(
            &format!("/requests/{id}/transition"),
            &[("csrf", &csrf), ("version", "1"), ("to", "submitted")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{html}");
    let (s, html) = fbi.get(&format!("/requests/{id}/send")).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(
        html.contains("id=\"confirm-send\"") && html.contains("Send now"),
        "{html}"
    );
    assert!(html.contains("Legal verdict if sent now:"), "{html}");
    assert!(html.contains("The request names no target"), "{html}");
    let (_, html) = fbi.get(&format!("/requests/{id}")).await;
    assert!(html.contains("data-state=\"draft\""), "nothing was sent");
    // Confirmed: the local requested agency receives it at once.
    let (s, body, loc) = fbi
        .post(
            &format!("/requests/{id}/transition"),
            &[("csrf", &csrf), ("version", "1"), ("to", "submitted"), ("confirm", "1")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(loc.unwrap(), format!("/requests/{id}?moved=received"));
    let (_, html) = fbi.get(&format!("/requests/{id}?moved=received")).await;
    assert!(html.contains("The request is now: Received"), "{html}");
    assert!(html.contains("data-state=\"received\""));
    assert!(
        html.contains("Legal assessment") && html.contains("<h3>Dual criminality</h3>"),
        "{html}"
    );
    // The verdict leads the page, before the facts and the buttons.
    let verdict = html.find("id=\"verdict-word\"").expect("a verdict headline");
    assert!(verdict < html.find("id=\"facts\"").unwrap() && verdict < html.find("id=\"actions\"").unwrap());
    assert!(html.find("id=\"assessment\"").unwrap() < html.find("id=\"actions\"").unwrap());
    assert!(html.contains("id=\"verdict-channel\""), "the fastest lawful channel");
    // Sources are links to the primary texts, with how well each was confirmed.
    assert!(html.contains("<p class=\"sources small\">Sources:"), "{html}");
    assert!(html.contains("<a href=\"https://") && html.contains("rel=\"noopener noreferrer external\""));
    assert!(html.contains("class=\"conf conf-"));
    assert!(!html.contains("Version"), "no internal version shown");
    assert!(
        html.contains("Asia/Shanghai"),
        "deadline in the requested agency's zone"
    );

    // Withdrawal needs a reason: the banner names the field and nothing crashes.
    let (s, html, _) = fbi
        .post(
            &format!("/requests/{id}/transition"),
            &[("csrf", &csrf), ("version", "3"), ("to", "withdrawn")],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{html}");
    assert!(
        html.contains("data-field=\"reason\"") && html.contains("<strong>Reason</strong>"),
        "{html}"
    );
    // Illegal move and stale version get their own messages.
    let (s, html, _) = fbi
        .post(
            &format!("/requests/{id}/transition"),
            &[("csrf", &csrf), ("version", "3"), ("to", "answered")],
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(html.contains("not possible from the request"), "{html}");
    let (s, html, _) = fbi
        .post(
            &format!("/requests/{id}/transition"),
            &[
                ("csrf", &csrf),
                ("version", "1"),
                ("to", "withdrawn"),
                ("reason", "dup"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(html.contains("Someone changed this request"), "{html}");
    let (s, html, _) = fbi
        .post(
            &format!("/requests/{id}/transition"),
            &[("csrf", &csrf), ("version", "x"), ("to", "nowhere")],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(html.contains("data-field=\"version\"") && html.contains("data-field=\"to\""));

    // The requested side's desk officer acknowledges through the form, in Chinese.
    let desk = ui.login("CN-MPS", Role::Desk).await;
    let zh = desk.with_lang("zh-CN");
    let (s, html) = zh.get(&format!("/requests/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("<html lang=\"zh-CN\">"));
    assert!(
        html.contains("已接收") && html.contains("法律评估") && html.contains("变更为：已确认"),
        "{html}"
    );
    assert!(html.contains("24/7 值班员"), "role label in Chinese");
    assert!(!html.contains("href=\"/requests/new\""), "desk officers do not draft");
    assert!(!html.contains("href=\"/cooperation\""), "nor read statistics");
    let csrf = zh.csrf(&format!("/requests/{id}")).await;
    let (s, _, loc) = zh
        .post(
            &format!("/requests/{id}/transition"),
            &[("csrf", &csrf), ("version", "3"), ("to", "acknowledged")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (_, html) = zh.get(&loc.unwrap()).await;
    assert!(html.contains("请求当前状态：已确认"), "{html}");
    // Comments go through the same CSRF check.
    let (s, _, loc) = zh
        .post(
            &format!("/requests/{id}/comment"),
            &[("csrf", &csrf), ("text", "已电话联系 <i>provider</i>")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (_, html) = zh.get(&loc.unwrap()).await;
    assert!(html.contains("已电话联系 &lt;i&gt;provider&lt;/i&gt;"));
    let (s, _, _) = zh
        .post(&format!("/requests/{id}/comment"), &[("csrf", &csrf), ("text", "  ")])
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // The legal assessment speaks the page's language; with current packs nothing is outdated,
    // and a re-assessment goes through the same CSRF check and comes back with a notice.
    let (_, html) = zh.get(&format!("/requests/{id}")).await;
    assert!(
        html.contains("<h3>双重犯罪</h3>") && html.contains("<h3>行动方案</h3>"),
        "{html}"
    );
    assert!(
        html.contains("<span class=\"small\">法律评估结论：</span>"),
        "the verdict in Chinese"
    );
    assert!(html.contains("理由"), "every step says why: {html}");
    assert!(!html.contains("Dual criminality"), "no English headings in Chinese");
    assert!(!html.contains("id=\"assessment-outdated\""), "{html}");
    let (s, _, _) = zh
        .post(&format!("/requests/{id}/reassess"), &[("csrf", "forged")])
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, loc) = zh.post(&format!("/requests/{id}/reassess"), &[("csrf", &csrf)]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (_, html) = zh.get(&loc.unwrap()).await;
    assert!(html.contains("已按当前规则包重新评估"), "{html}");

    // Accept-Language picks Chinese when there is no cookie; the switch link sets the cookie.
    let r = ui
        .http
        .get(ui.url("/login"))
        .header("accept-language", "zh-CN,zh;q=0.9,en;q=0.5")
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("API 令牌"));
    let r = ui
        .http
        .get(ui.url("/lang?to=zh-CN&back=/directory"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/directory");
    assert!(r.headers()[SET_COOKIE].to_str().unwrap().starts_with("lang=zh-CN"));
    let r = ui
        .http
        .get(ui.url("/lang?to=en&back=//evil.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()[LOCATION], "/requests");
    // Browsers drop tabs and line breaks from a URL: `/<tab>/host` would be `//host`.
    for back in ["/%09/evil.example", "/%0A/evil.example", "/%5Cevil.example", "/%20/x"] {
        let r = ui
            .http
            .get(ui.url(&format!("/lang?to=en&back={back}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()[LOCATION], "/requests", "back={back}");
    }

    // Unknown and invisible requests are a friendly 404.
    let (s, html) = desk.get("/requests/not-an-id").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(html.contains("does not exist or is not visible"));
    let draft2 = create_draft(&fbi, &mps_id).await;
    let (s, _) = desk.get(&format!("/requests/{draft2}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "drafts stay invisible to the requested side");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_report_errors_and_other_pages_render() {
    let ui = Ui::start().await;
    let fbi = ui.login("FBI", Role::Officer).await;

    // An incomplete draft: every missing field is named, the entered values are kept.
    let csrf = fbi.csrf("/requests/new").await;
    let (s, html, _) = fbi
        .post(
            "/requests/new",
            &[("csrf", &csrf), ("case_reference", "KEEP-ME"), ("summary", "")],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    for f in ["kind", "requested_agency", "offences"] {
        assert!(html.contains(&format!("data-field=\"{f}\"")), "{f}: {html}");
    }
    assert!(html.contains("value=\"KEEP-ME\""));
    // The service's own validation (empty summary) is shown too.
    let (s, html, _) = fbi
        .post(
            "/requests/new",
            &[
                ("csrf", &csrf),
                ("kind", "takedown"),
                ("requested_agency", &ui.f.mps.id.to_string()),
                ("case_reference", "X-1"),
                ("offences", "BC-02"),
                ("summary", ""),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("data-field=\"summary\""), "{html}");
    // Offences come from the taxonomy with English and Chinese names.
    let (_, html) = fbi.get("/requests/new").await;
    assert!(html.contains("value=\"BC-02\""));
    assert!(
        html.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
        "Chinese offence names"
    );

    // Directory: agencies with local time, contacts with office hours and open/closed now.
    let contact = liaison_core::directory::ContactPoint {
        id: liaison_core::ContactId::new(),
        agency: ui.f.mps.id,
        name: "24/7 desk <night shift>".into(),
        phone: "+86 10 0000 0000".into(),
        email: "desk@mps.example".into(),
        languages: vec!["zh".into(), "en".into()],
        time_zone: "Asia/Shanghai".into(),
        office_hours: "24/7".parse().unwrap(),
    };
    ui.f.add_contact(&contact).await.unwrap();
    let (s, html) = fbi.get("/directory").await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("CN-MPS") && html.contains("Asia/Shanghai"));
    assert!(
        html.contains("24/7 desk &lt;night shift&gt;") && html.contains("badge open-now"),
        "{html}"
    );

    // Cooperation: officers may not read statistics; analysts may, with a CSV download.
    let (s, html) = fbi.get("/cooperation").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(html.contains("Your role may not do this"));
    let analyst = ui.login("FBI", Role::Analyst).await;
    let (s, html) = analyst.get("/cooperation?by=jurisdiction").await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("/cooperation.csv?by=jurisdiction"));
    let (s, html) = analyst.get("/cooperation?by=planet&from=yesterday").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(html.contains("data-field=\"by\"") && html.contains("data-field=\"from\""));
    let r = ui
        .http
        .get(ui.url("/cooperation.csv?by=agency"))
        .header(COOKIE, &analyst.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()[CONTENT_TYPE].to_str().unwrap().starts_with("text/csv"));

    // Analysts see requests but have no transition or comment forms.
    let (s, html) = analyst.get("/requests").await;
    assert_eq!(s, StatusCode::OK);
    assert!(!html.contains("go-"));

    // Signing out needs the CSRF token and clears the cookie.
    let (s, _, _) = fbi.post("/logout", &[]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let csrf = fbi.csrf("/requests").await;
    let resp = ui
        .http
        .post(ui.url("/logout"))
        .header(COOKIE, &fbi.cookie)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(resp.headers()[SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    // The browser held a session token of its own, not the typed one; signing out revoked it
    // on the node (a copied cookie no longer works), and the typed token still does.
    let session = fbi.cookie.trim_start_matches("liaison_token=").to_string();
    assert_ne!(session, ui.f.token("FBI", Role::Officer));
    let (s, _) = fbi.get("/requests").await;
    assert_ne!(s, StatusCode::OK, "the signed-out session still works");
    let me = |token: String| {
        let http = ui.http.clone();
        let url = ui.url("/api/v1/me");
        async move { http.get(url).bearer_auth(token).send().await.unwrap().status() }
    };
    assert_eq!(me(session).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(ui.f.token("FBI", Role::Officer).to_string()).await, StatusCode::OK);
    // The API is unaffected by the UI routes.
    let r = ui.http.get(ui.url("/api/v1/health")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = ui.http.get(ui.url("/no/such/page")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

/// Markup and quotes in stored values: a request's summary and case reference, and an agency's
/// code and names.
const MARKUP: &str = "<script>\"'&";
const MARKUP_ESCAPED: &str = "&lt;script&gt;&quot;&#39;&amp;";

/// Asserts that `html` shows every one of `expected` (escaped text) and no raw markup.
fn assert_escaped(page: &str, html: &str, expected: &[String]) {
    // The node's own script (the draft form's) is the only one a page may carry.
    let without_own = html.replace("<script src=\"/static/draft.js\" defer></script>", "");
    assert!(
        !without_own.contains("<script"),
        "{page}: a value reached the page unescaped\n{html}"
    );
    for e in expected {
        assert!(html.contains(e.as_str()), "{page}: {e} is not shown\n{html}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_with_markup_are_escaped_on_every_page() {
    use liaison_core::directory::{Agency, AgencyKind};
    use liaison_core::lifecycle::{State, TransitionInput};
    use liaison_core::request::RequestKind;

    let ui = Ui::start().await;
    let now = jiff::Timestamp::now();
    // An agency whose code and names carry markup, and a submitted request to it whose summary
    // and case reference do too.
    let agency = Agency {
        id: liaison_core::AgencyId::new(),
        code: format!("XA{MARKUP}"),
        name_en: format!("Agency {MARKUP}"),
        name_native: format!("机构 {MARKUP}"),
        name_zh: String::new(),
        jurisdiction: ui.f.mps.jurisdiction,
        kind: AgencyKind::Police,
        time_zone: "Asia/Shanghai".into(),
    };
    ui.f.add_agency(&agency, "xa.desk", Role::Desk).await.unwrap();
    let officer = ui.f.who("FBI", Role::Officer).clone();
    let mut draft = ui.f.draft(RequestKind::SubscriberInformation);
    draft.requested_agency = agency.id;
    draft.case_reference = format!("CASE-{MARKUP}");
    draft.summary = format!("Summary {MARKUP} end");
    let r = ui.f.node.create_request(&officer, draft, now).await.unwrap();
    let input = TransitionInput {
        to: Some(State::Submitted),
        ..Default::default()
    };
    let r =
        ui.f.node
            .transition(&officer, r.request.id, 1, input, now)
            .await
            .unwrap();
    let id = r.request.id;

    let code = format!("XA{MARKUP_ESCAPED}");
    let case = format!("CASE-{MARKUP_ESCAPED}");
    let summary = format!("Summary {MARKUP_ESCAPED} end");
    let name = format!("Agency {MARKUP_ESCAPED} (机构 {MARKUP_ESCAPED})");
    let fbi = ui.login("FBI", Role::Officer).await;
    let analyst = ui.login("FBI", Role::Analyst).await;
    for lang in ["en", "zh-CN"] {
        let b = fbi.with_lang(lang);
        // A Chinese reader gets the agency's Chinese name first.
        let name = if lang == "en" {
            name.clone()
        } else {
            format!("机构 {MARKUP_ESCAPED}（Agency {MARKUP_ESCAPED}）")
        };
        // The list: case reference and the pair of agency codes.
        let (s, html) = b.get("/requests").await;
        assert_eq!(s, StatusCode::OK);
        assert_escaped("list", &html, &[case.clone(), format!("FBI → {code}")]);
        // The request: title, heading and facts.
        let (s, html) = b.get(&format!("/requests/{id}")).await;
        assert_eq!(s, StatusCode::OK);
        assert_escaped(
            "detail",
            &html,
            &[
                // The node's reference first, then the case reference.
                "<title>FBI-".to_string(),
                format!(" · {case} · "),
                format!("<td>{case}</td>"),
                format!("<div class=\"pre\" id=\"summary\">{summary}</div>"),
                format!("<td>{code} — {name}</td>"),
            ],
        );
        // The new-draft form offers the agency by name.
        let (s, html) = b.get("/requests/new").await;
        assert_eq!(s, StatusCode::OK);
        assert_escaped("new draft", &html, &[format!("\">{code} — {name} (CN)</option>")]);
        // The directory shows the agency.
        let (s, html) = b.get("/directory").await;
        assert_eq!(s, StatusCode::OK);
        assert_escaped("directory", &html, &[format!("<h2>{code} — {name}</h2>")]);
        // The cooperation report names the pair by agency code.
        let (s, html) = analyst.with_lang(lang).get("/cooperation").await;
        assert_eq!(s, StatusCode::OK);
        assert_escaped("cooperation", &html, &[format!("<td class=\"nowrap\">{code}</td>")]);
        // A filter value with markup is named, escaped, in the error banner.
        let (s, html) = b.get("/requests?state=%3Cscript%3E%22%27%26").await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_escaped("list with a bad filter", &html, &[MARKUP_ESCAPED.to_string()]);
    }
    // A failed draft keeps the values entered, escaped in the attribute and the text area.
    let csrf = fbi.csrf("/requests/new").await;
    let (s, html, _) = fbi
        .post(
            "/requests/new",
            &[
                ("csrf", &csrf),
                ("case_reference", &format!("CASE-{MARKUP}")),
                ("summary", &format!("Summary {MARKUP} end")),
                ("legal_basis", MARKUP),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_escaped(
        "new draft with errors",
        &html,
        &[
            format!("value=\"{case}\""),
            format!(">{summary}</textarea>"),
            format!("value=\"{MARKUP_ESCAPED}\""),
        ],
    );
}

/// Markings through the web UI (#14): chosen on the new-draft form, shown as a badge, changed by
/// the originator's form only; a RED request is "not found" for the users it does not name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markings_are_set_shown_and_changed_by_the_originator() {
    let ui = Ui::start().await;
    let fbi = ui.login("FBI", Role::Officer).await;
    let csrf = fbi.csrf("/requests/new").await;
    let mps_id = ui.f.mps.id.to_string();
    let desk = ui.f.who("CN-MPS", Role::Desk).username.clone();
    let (s, body, loc) = fbi
        .post(
            "/requests/new",
            &[
                ("csrf", &csrf),
                ("kind", "subscriber_information"),
                ("requested_agency", &mps_id),
                ("case_reference", "FBI-UI-RED"),
                ("offences", "BC-02"),
                ("summary", "For the desk only."),
                ("tlp", "TLP:RED"),
                ("recipients", &desk),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    let id = loc.unwrap().strip_prefix("/requests/").unwrap().replace("?saved=1", "");
    let (_, html) = fbi.get(&format!("/requests/{id}")).await;
    assert!(html.contains("badge tlp tlp-red"), "{html}");
    assert!(html.contains(&format!("TLP:RED ({desk})")));
    assert!(html.contains("action=\"/requests/"), "{html}");
    assert!(
        html.contains("id=\"mark-submit\""),
        "the originator sees the change form"
    );

    // Submitted: the named desk officer reads it, another officer of CN-MPS finds nothing.
    let rid: liaison_core::RequestId = id.parse().unwrap();
    let officer = ui.f.who("FBI", Role::Officer);
    let r = ui.f.node.request(officer, rid, jiff::Timestamp::now()).await.unwrap();
    let submit = liaison_core::lifecycle::TransitionInput {
        to: Some(liaison_core::State::Submitted),
        ..Default::default()
    };
    ui.f.node
        .transition(officer, rid, r.request.version, submit, jiff::Timestamp::now())
        .await
        .unwrap();
    let named = ui.login("CN-MPS", Role::Desk).await;
    let (s, html) = named.get(&format!("/requests/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!html.contains("id=\"mark-submit\""), "the recipient has no change form");
    let other = ui.login("CN-MPS", Role::Officer).await;
    let (s, _) = other.get(&format!("/requests/{id}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, list) = other.get("/requests").await;
    assert!(!list.contains("FBI-UI-RED"), "left out of the list");

    // The recipient's post to the change form is refused; the originator's lowers it.
    let csrf = named.csrf(&format!("/requests/{id}")).await;
    let (s, html, _) = named
        .post(
            &format!("/requests/{id}/marking"),
            &[("csrf", &csrf), ("tlp", "TLP:CLEAR")],
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{html}");
    let csrf = fbi.csrf(&format!("/requests/{id}")).await;
    let (s, _, loc) = fbi
        .post(
            &format!("/requests/{id}/marking"),
            &[("csrf", &csrf), ("tlp", "TLP:AMBER")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(loc.unwrap().ends_with("?marked=1"));
    let (s, html) = other.get(&format!("/requests/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("badge tlp tlp-amber"));

    // The same page in Chinese names the marking in Chinese.
    let (_, html) = named.with_lang("zh-CN").get(&format!("/requests/{id}")).await;
    assert!(html.contains("标记（TLP）"), "{html}");
}

/// A `multipart/form-data` body as a browser sends the evidence form: the CSRF field, the
/// marking, then the file.
fn multipart(csrf: &str, tlp: &str, file_name: &str, content: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----liaisonTestBoundary7MA4YWxkTrZu0gW";
    let mut b = Vec::new();
    for (name, value) in [("csrf", csrf), ("tlp", tlp)] {
        b.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    b.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: text/html\r\n\r\n"
        )
        .as_bytes(),
    );
    b.extend_from_slice(content);
    b.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_files_are_listed_uploaded_and_downloaded_never_inline() {
    let dir = std::env::temp_dir().join(format!("liaison-ui-evidence-{}", std::process::id()));
    let node = liaison_service::fixtures::sqlite_node()
        .await
        .unwrap()
        .with_evidence(liaison_service::evidence::EvidenceConfig::default().resolved(&dir))
        .unwrap();
    let f = common::fixture(node).await;
    let base = common::serve(&f.node).await;
    let ui = Ui {
        base,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        f,
    };
    let officer = ui.f.who("FBI", Role::Officer);
    let now = jiff::Timestamp::now();
    let r =
        ui.f.node
            .create_request(
                officer,
                ui.f.draft(liaison_core::RequestKind::SubscriberInformation),
                now,
            )
            .await
            .unwrap();
    let submit = liaison_core::lifecycle::TransitionInput {
        to: Some(liaison_core::State::Submitted),
        ..Default::default()
    };
    ui.f.node
        .transition(officer, r.request.id, r.request.version, submit, now)
        .await
        .unwrap();
    let id = r.request.id.to_string();
    let fbi = ui.login("FBI", Role::Officer).await;
    let page = format!("/requests/{id}");
    let (_, html) = fbi.get(&page).await;
    assert!(html.contains("id=\"evidence-none\""), "{html}");
    assert!(html.contains("enctype=\"multipart/form-data\""));

    // Without the CSRF token: refused, nothing stored.
    let content = b"<html><script>alert('would run if shown inline')</script></html>".to_vec();
    let (ct, body) = multipart("wrong", "", "page.html", &content);
    let resp = ui
        .http
        .post(ui.url(&format!("{page}/evidence")))
        .header(COOKIE, &fbi.cookie)
        .header(CONTENT_TYPE, ct)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let csrf = fbi.csrf(&page).await;
    let (ct, body) = multipart(&csrf, "TLP:RED", "page.html", &content);
    let resp = ui
        .http
        .post(ui.url(&format!("{page}/evidence")))
        .header(COOKIE, &fbi.cookie)
        .header(CONTENT_TYPE, ct)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{:?}", resp.text().await);
    assert_eq!(resp.headers()[LOCATION], format!("/requests/{id}?uploaded=1#evidence"));
    let (_, html) = fbi.get(&format!("{page}?uploaded=1")).await;
    assert!(html.contains("The file was uploaded."));
    assert!(html.contains("id=\"evidence-table\""));
    assert!(html.contains("page.html"));
    assert!(html.contains("badge tlp tlp-red"));
    let href = attr_after(&html, &format!("href=\"/requests/{id}/evidence/")).unwrap();
    let file_url = format!("/requests/{id}/evidence/{href}");

    // The download is an attachment that never renders: even HTML comes as octet-stream.
    let resp = ui
        .http
        .get(ui.url(&file_url))
        .header(COOKIE, &fbi.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers().clone();
    assert_eq!(h[CONTENT_TYPE], "application/octet-stream");
    assert!(
        h["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"page.html\"")
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("sandbox; default-src 'none'")
    );
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), content.as_slice());

    // RED, for the requesting agency's file: the whole requested agency is its named
    // recipient (no names), so CN-MPS's desk sees it; a third agency's user does not.
    let desk = ui.login("CN-MPS", Role::Desk).await;
    let (_, html) = desk.with_lang("zh-CN").get(&page).await;
    assert!(html.contains("证据文件"), "{html}");
    assert!(html.contains("page.html"));
    let (s, _) = desk.get(&file_url).await;
    assert_eq!(s, StatusCode::OK);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Joint cases in the browser (docs/cases.md): FBI opens a case from the form and invites
/// CN-MPS; CN-MPS's officer sees the invitation and accepts; FBI links a request, which CN-MPS
/// (a party) sees; notes and the timeline in both languages; a refused form names the rule;
/// the case file needs the node's signing key; a forged form without CSRF is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joint_cases_are_opened_joined_linked_and_exported_from_the_pages() {
    let ui = Ui::start().await;
    let fbi = ui.login("FBI", Role::Officer).await;
    let mps = ui.login("CN-MPS", Role::Officer).await;
    let (s, html) = fbi.get("/cases").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains("id=\"no-cases\"") && html.contains("id=\"open-case-submit\""),
        "{html}"
    );
    assert!(
        html.contains("href=\"/cases\" aria-current=\"page\""),
        "the navigation names the page"
    );

    // Open: a bad reference is refused with the field named; then a good one.
    let csrf = fbi.csrf("/cases").await;
    let (s, html, _) = fbi
        .post(
            "/cases",
            &[
                ("csrf", &csrf),
                ("name", "Lantern"),
                ("reference", "bad ref"),
                ("invite", "CN-MPS"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(html.contains("data-field=\"reference\""), "{html}");
    let (s, _, loc) = fbi
        .post(
            "/cases",
            &[
                ("csrf", &csrf),
                ("name", "Operation <Lantern>"),
                ("reference", "JTF-UI-1"),
                ("invite", "CN-MPS"),
                ("tlp", "TLP:AMBER"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let loc = loc.unwrap();
    assert!(loc.ends_with("?done=created"), "{loc}");
    let case_path = loc.split('?').next().unwrap().to_string();
    let (_, html) = fbi.get(&loc).await;
    assert!(html.contains("Operation &lt;Lantern&gt;"), "escaped");
    assert!(html.contains("TLP:AMBER") && html.contains("invited CN-MPS"), "{html}");

    // CN-MPS is invited: it may accept; no link or note form before it has.
    let (_, html) = mps.get(&case_path).await;
    assert!(
        html.contains("id=\"accept\"") && !html.contains("id=\"link\""),
        "{html}"
    );
    let (_, zh) = mps.with_lang("zh-CN").get(&case_path).await;
    assert!(zh.contains("本机构受邀参加此案件") && zh.contains("受邀"), "{zh}");
    let csrf_m = mps.csrf(&case_path).await;
    let act = format!("{case_path}/act");
    let (s, _, loc) = mps.post(&act, &[("csrf", &csrf_m), ("do", "accept")]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(loc.unwrap().ends_with("?done=accept"));

    // FBI links a submitted request to CN-MPS; CN-MPS, a party, sees its summary.
    let draft = create_draft(&fbi, &ui.f.mps.id.to_string()).await;
    let detail_csrf = fbi.csrf(&format!("/requests/{draft}")).await;
    let (s, body, _) = fbi
        .post(
            &format!("/requests/{draft}/transition"),
            &[
                ("csrf", &detail_csrf),
                ("version", "1"),
                ("to", "submitted"),
                ("confirm", "1"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    let csrf = fbi.csrf(&case_path).await;
    let (s, body, _) = fbi
        .post(
            &act,
            &[
                ("csrf", &csrf),
                ("do", "link"),
                ("kind", "request"),
                ("item", &draft),
                ("share", "1"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    let (_, html) = mps.get(&case_path).await;
    assert!(
        html.contains("Phishing kit &lt;script&gt;"),
        "the linked request's summary, escaped: {html}"
    );
    assert!(
        html.contains(&format!("href=\"/requests/{draft}\"")),
        "a link to the request itself"
    );
    let (_, req) = mps.get(&format!("/requests/{draft}")).await;
    assert!(
        req.contains("id=\"joint-cases\"") && req.contains(&format!("href=\"{case_path}\"")),
        "the request page names its case: {req}"
    );

    // A note; a refused one (empty) names the field; a RED note in Chinese.
    let (s, _, _) = mps
        .post(
            &act,
            &[
                ("csrf", &csrf_m),
                ("do", "note"),
                ("text", "Wallet cluster matches"),
                ("tlp", "TLP:AMBER"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (s, html, _) = mps
        .post(&act, &[("csrf", &csrf_m), ("do", "note"), ("text", "  ")])
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("data-field=\"text\""), "{html}");
    let (_, html) = fbi.get(&case_path).await;
    assert!(
        html.contains("Wallet cluster matches") && html.contains("CN-MPS joined"),
        "{html}"
    );
    let (_, zh) = fbi.with_lang("zh-CN").get(&case_path).await;
    assert!(zh.contains("时间线") && zh.contains("CN-MPS 已加入"), "{zh}");
    // Only the lead closes: CN-MPS gets no close form, and a forged one is refused by rule.
    assert!(!html.contains("id=\"leave\"") && html.contains("id=\"close\""));
    let (s, html, _) = mps.post(&act, &[("csrf", &csrf_m), ("do", "close")]).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{html}");
    let (s, _, _) = mps.post(&act, &[("do", "leave")]).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "no CSRF token");

    // The case file: this test node has no federation signing key, so the page says why it
    // cannot sign one (the signed file itself: crates/liaison-cli/tests/cases.rs).
    let (s, html, _) = fbi.post(&format!("{case_path}/export"), &[("csrf", &csrf)]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("no federation signing key"), "{html}");

    // A stranger's agency does not see the case.
    let (_, list) = ui.login("FBI", Role::Admin).await.get("/cases").await;
    assert!(!list.contains("JTF-UI-1"));
}

/// A refused request says why among its facts: the ground in the reader's words and the
/// reviewer's reason.
#[tokio::test]
async fn a_refusal_is_among_the_facts() {
    use liaison_core::lifecycle::{RefusalReason, State, TransitionInput};
    use liaison_core::request::RequestKind;
    let ui = Ui::start().await;
    let now = jiff::Timestamp::now();
    let f = &ui.f;
    let officer = f.who("FBI", Role::Officer);
    let r = f
        .node
        .create_request(officer, f.draft(RequestKind::SubscriberInformation), now)
        .await
        .unwrap();
    let id = r.request.id;
    let go = |to: State| TransitionInput {
        to: Some(to),
        ..Default::default()
    };
    let r = f
        .node
        .transition(officer, id, 1, go(State::Submitted), now)
        .await
        .unwrap();
    let r = f
        .node
        .transition(
            f.who("CN-MPS", Role::Desk),
            id,
            r.request.version,
            go(State::Acknowledged),
            now,
        )
        .await
        .unwrap();
    let reviewer = f.who("CN-MPS", Role::LegalReviewer);
    let r = f
        .node
        .transition(reviewer, id, r.request.version, go(State::InReview), now)
        .await
        .unwrap();
    let refuse = TransitionInput {
        to: Some(State::Refused),
        refusal_reason: Some(RefusalReason::DualCriminality),
        reason: Some("Not an offence here below the threshold.".into()),
        ..Default::default()
    };
    f.node
        .transition(f.who("CN-MPS", Role::LegalReviewer), id, r.request.version, refuse, now)
        .await
        .unwrap();
    let fbi = ui.login("FBI", Role::Officer).await;
    let (_, html) = fbi.get(&format!("/requests/{id}")).await;
    let i = html.find("id=\"ended-why\"").expect("the refusal among the facts");
    assert!(
        html[i..].starts_with("id=\"ended-why\">No dual criminality — Not an offence here below the threshold."),
        "{}",
        &html[i..i + 200]
    );
    assert!(i < html.find("id=\"assessment\"").unwrap());
}

/// The cooperation report's chart: the answer rate of each pair as SVG; a cell of the reader's
/// agency opens that direction's requests; times in days and hours.
#[tokio::test]
async fn cooperation_chart_opens_the_pairs_requests() {
    use liaison_core::lifecycle::{State, TransitionInput};
    use liaison_core::request::RequestKind;
    let ui = Ui::start().await;
    let now = jiff::Timestamp::now();
    let f = &ui.f;
    let officer = f.who("FBI", Role::Officer);
    let r = f
        .node
        .create_request(officer, f.draft(RequestKind::SubscriberInformation), now)
        .await
        .unwrap();
    let submit = TransitionInput {
        to: Some(State::Submitted),
        ..Default::default()
    };
    let r = f.node.transition(officer, r.request.id, 1, submit, now).await.unwrap();
    let reference = r.reference.clone();
    let analyst = ui.login("FBI", Role::Analyst).await;
    // The answer rate of each pair as a chart (SVG, no script); a cell of the analyst's own
    // agency opens that direction's requests; times in days and hours.
    let (s, html) = analyst.get("/cooperation").await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(
        html.contains("<svg class=\"heat\" id=\"heat\" role=\"group\""),
        "{html}"
    );
    let link = "/requests?requesting=FBI&amp;requested=CN-MPS";
    assert!(html.contains(&format!("<a href=\"{link}\"")), "{html}");
    assert!(html.contains("<title>FBI → CN-MPS: "), "a cell says what it shows");
    assert!(!html.contains("style="), "no inline style (the CSP forbids it)");
    // The open request by age (under 7 days), as a bar and as a table; no answer yet, so no
    // time-to-answer trend.
    assert!(
        html.contains("id=\"ageing\"") && html.contains("<title>FBI → CN-MPS: 1 open for under 7 days</title>"),
        "{html}"
    );
    assert!(
        html.contains("1 open, 0 overdue") && html.contains("id=\"ageing-table\""),
        "{html}"
    );
    assert!(!html.contains("id=\"trend\""), "{html}");
    let (s, list) = analyst.get(&link.replace("&amp;", "&")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(list.contains(&reference), "{list}");
    let (_, other_way) = analyst.get("/requests?requesting=CN-MPS&requested=FBI").await;
    assert!(!other_way.contains(&reference), "one direction only");
    let (s, html) = analyst.get("/requests?requesting=NOPE").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(html.contains("data-field=\"requesting\""));
    let (_, zh) = analyst.with_lang("zh-CN").get("/cooperation").await;
    assert!(zh.contains("各对机构的答复率") && zh.contains("已发 1 件"), "{zh}");
    assert!(
        zh.contains("待答复 1 件，逾期 0 件") && zh.contains("不足 7 天"),
        "{zh}"
    );
}

/// The complete draft (docs/ui.md "Drafting"): typed targets with their provider, data
/// categories, amount, conduct and related requests; problems named by target row with the
/// values kept; the verdict checked without saving; editing; sending through the confirmation
/// page; four eyes asked for on the page and given by a supervisor; the script and its policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drafts_are_complete_checked_edited_confirmed_and_approved() {
    let ui = Ui::start().await;
    let fbi = ui.login("FBI", Role::Officer).await;
    let mps = ui.f.mps.id.to_string();
    let earlier = create_draft(&fbi, &mps).await;
    let csrf = fbi.csrf("/requests/new").await;
    let row = |v: [&'static str; 10]| {
        [
            "t_type",
            "t_value",
            "t_extra",
            "t_observed",
            "t_zone",
            "t_from",
            "t_until",
            "t_provider",
            "t_country",
            "t_eu",
        ]
        .into_iter()
        .zip(v)
        .collect::<Vec<(&str, &str)>>()
    };
    let mut form: Vec<(&str, &str)> = vec![
        ("csrf", &csrf),
        ("kind", "stored_content"),
        ("urgency", "urgent"),
        ("requested_agency", &mps),
        ("case_reference", "FBI-DRAFT-9"),
        ("offences", "BC-08"),
        ("conduct", "distribution"),
        ("summary", "Extortion by e-mail"),
        ("categories", "stored_content"),
        ("categories", "subscriber_information"),
        ("amount", "25,000.50"),
        ("currency", "usd"),
        ("related", &earlier),
        ("tlp", ""),
        ("recipients", ""),
    ];
    form.extend(row([
        "email",
        "alice@example.com",
        "",
        "",
        "",
        "2026-10-01",
        "2026-10-31",
        "ExampleMail Inc.",
        "US",
        "yes",
    ]));
    form.extend(row(["", "", "", "", "", "", "", "", "", "no"]));
    form.extend(row([
        "ip",
        "10.0.0.300",
        "",
        "2026-10-02T14:03",
        "Asia/Shanghai",
        "2026-10-02",
        "2026-10-02",
        "",
        "",
        "no",
    ]));
    // A bad address is named by its row (blank rows counted), and every value comes back.
    let (s, html, _) = fbi.post("/requests/new", &form).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("Target 3 — Identifier"), "{html}");
    assert!(
        html.contains("&#39;10.0.0.300&#39; is not an IPv4 or IPv6 address"),
        "{html}"
    );
    assert!(html.contains("value=\"alice@example.com\"") && html.contains("value=\"ExampleMail Inc.\""));
    assert!(html.contains("value=\"25,000.50\"") && html.contains("value=\"Asia/Shanghai\""));
    // Checking the verdict stores nothing and shows the verdict the draft would get.
    let ip = form.iter().position(|(_, v)| *v == "10.0.0.300").unwrap();
    form[ip].1 = "203.0.113.7";
    let mut check = form.clone();
    check.push(("check", "1"));
    let (_, before) = fbi.get("/requests?state=draft").await;
    let (s, html, _) = fbi.post("/requests/new", &check).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(
        html.contains("id=\"draft-verdict\"") && html.contains("Legal verdict if sent now:"),
        "{html}"
    );
    assert!(html.contains("id=\"verdict-word\""), "{html}");
    let (_, after) = fbi.get("/requests?state=draft").await;
    assert_eq!(
        before.matches("<tr").count(),
        after.matches("<tr").count(),
        "a check saves nothing"
    );
    // More rows.
    let mut more = form.clone();
    more.push(("more_rows", "1"));
    let (_, html, _) = fbi.post("/requests/new", &more).await;
    assert!(html.contains("id=\"target-6\""), "three rows and three more");
    // Saved: the page shows everything typed, and the preview verdict.
    let (s, body, loc) = fbi.post("/requests/new", &form).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    let id = loc.unwrap().strip_prefix("/requests/").unwrap().replace("?saved=1", "");
    let (_, html) = fbi.get(&format!("/requests/{id}")).await;
    for want in [
        "alice@example.com",
        "ExampleMail Inc. (US)",
        "203.0.113.7 @ 2026-10-02 06:03 UTC (log zone Asia/Shanghai)",
        "<span id=\"amount\">25,000.50 USD</span>",
        "Distribution",
        "Stored content, Subscriber information",
        "Legal verdict if sent now:",
        &format!("href=\"/requests/{earlier}\""),
    ] {
        assert!(html.contains(want), "{want}: {html}");
    }
    // Times in the reader's zone, named by its offset: FBI's is America/New_York.
    assert!(html.contains(" UTC−5</td>") || html.contains(" UTC−4</td>"), "{html}");
    // Edited: the form comes back filled in; the change is saved.
    let (s, html) = fbi.get(&format!("/requests/{id}/edit")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains("value=\"alice@example.com\"") && html.contains("value=\"2026-10-31\""),
        "{html}"
    );
    assert!(html.contains("<option value=\"yes\" selected>"), "{html}");
    let csrf = fbi.csrf(&format!("/requests/{id}/edit")).await;
    let mut edit = form.clone();
    edit[0].1 = &csrf;
    edit.retain(|(k, _)| *k != "summary");
    edit.push(("summary", "Extortion by e-mail, second victim"));
    edit.push(("version", "1"));
    let (s, body, _) = fbi.post(&format!("/requests/{id}/edit"), &edit).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    let (_, html) = fbi.get(&format!("/requests/{id}")).await;
    assert!(
        html.contains("second victim") && html.contains("Draft edited"),
        "{html}"
    );
    // Edited again from the old version: refused, nothing lost.
    let (s, html, _) = fbi.post(&format!("/requests/{id}/edit"), &edit).await;
    assert_eq!(s, StatusCode::CONFLICT, "{html}");
    assert!(html.contains("value=\"alice@example.com\""));

    // Four eyes, asked for on the page: the officer can no longer send it himself.
    let csrf = fbi.csrf(&format!("/requests/{id}")).await;
    let (s, body, _) = fbi
        .post(
            &format!("/requests/{id}/approval"),
            &[("csrf", &csrf), ("action", "ask"), ("version", "2")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    let (_, html) = fbi.get(&format!("/requests/{id}")).await;
    assert!(html.contains("Approval asked by fbi.officer"), "{html}");
    assert!(!html.contains("id=\"go-submitted\"") && html.contains("id=\"approval-return\""));
    assert!(html.contains("Take back the request for approval"));
    // The supervisor approves by sending, through the confirmation page.
    let sup = ui.login("FBI", Role::Supervisor).await;
    let (_, html) = sup.get(&format!("/requests/{id}")).await;
    assert!(
        html.contains("Approve and send…") && html.contains("Send back to the author"),
        "{html}"
    );
    let csrf = sup.csrf(&format!("/requests/{id}")).await;
    let send = [("csrf", csrf.as_str()), ("version", "2"), ("to", "submitted")];
    let (s, _, loc) = sup.post(&format!("/requests/{id}/transition"), &send).await;
    assert_eq!(
        (s, loc.as_deref()),
        (StatusCode::SEE_OTHER, Some(format!("/requests/{id}/send").as_str()))
    );
    let (_, html) = sup.get(&format!("/requests/{id}/send")).await;
    assert!(
        html.contains("Approve and send now") && html.contains("alice@example.com"),
        "{html}"
    );
    let mut confirmed = send.to_vec();
    confirmed.push(("confirm", "1"));
    let (s, body, loc) = sup.post(&format!("/requests/{id}/transition"), &confirmed).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert!(loc.unwrap().ends_with("?moved=received"));
    // The requested side reads the same request in its own zone (Asia/Shanghai).
    let desk = ui.login("CN-MPS", Role::Desk).await;
    let (_, html) = desk.get(&format!("/requests/{id}")).await;
    assert!(html.contains(" UTC+8</td>"), "{html}");
    let (_, html) = fbi.get(&format!("/requests/{id}")).await;
    assert!(
        html.contains("Approved by") && html.contains("fbi.supervisor"),
        "{html}"
    );
    assert!(!html.contains("id=\"edit-draft\""), "sent: no longer edited");
    let (s, _) = fbi.get(&format!("/requests/{id}/edit")).await;
    assert_eq!(s, StatusCode::CONFLICT);

    // Chinese, the script and its policy.
    let (_, html) = fbi.with_lang("zh-CN").get("/requests/new").await;
    assert!(html.contains("查看法律结论") && html.contains("增加目标行"), "{html}");
    // The form's own checks speak Chinese too.
    let csrf = fbi.csrf("/requests/new").await;
    let mut bad = vec![
        ("csrf", csrf.as_str()),
        ("kind", "stored_content"),
        ("requested_agency", &mps),
    ];
    bad.extend(row(["ip", "10.0.0.300", "", "", "", "", "", "", "", "no"]));
    let (s, html, _) = fbi.with_lang("zh-CN").post("/requests/new", &bad).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        html.contains("目标 1 — 标识</strong>: “10.0.0.300”不是 IPv4 或 IPv6 地址"),
        "{html}"
    );
    assert!(html.contains("请至少选择一项罪名"), "{html}");
    // References are looked up one by one: a form names at most 50.
    let many = vec!["FBI-2026-0001"; 51].join(",");
    let (s, html, _) = fbi
        .post("/requests/new", &[("csrf", csrf.as_str()), ("related", many.as_str())])
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(html.contains("name at most 50 related requests"), "{html}");
    assert!(html.contains("<script src=\"/static/draft.js\" defer></script>"));
    let r = ui.http.get(ui.url("/static/draft.js")).send().await.unwrap();
    assert!(
        r.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(r.text().await.unwrap().contains("draft-verdict"));
}

/// Administration through the pages: adding a user (with a temporary password shown once),
/// changing a role, disabling and enabling; units; API tokens issued (the secret works on the
/// API) and revoked (it stops working); peers refused on a wrong file; agencies renamed (the
/// Chinese name shows on Chinese pages); the ledger verified. Other roles are refused by the
/// service, and see neither the forms nor the tabs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administration_pages_work_and_refuse_other_roles() {
    let ui = Ui::start().await;
    let admin = ui.login("FBI", Role::Admin).await;

    // Users: add one; the temporary password is shown once.
    let csrf = admin.csrf("/admin/users").await;
    let (s, html, _) = admin
        .post(
            "/admin/users",
            &[
                ("csrf", &csrf),
                ("username", "fbi.newcomer"),
                ("display_name", "New Comer"),
                ("agency", "FBI"),
                ("role", "officer"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("fbi.newcomer is added"), "{html}");
    let temporary = attr_after(&html, "id=\"temporary-password\" class=\"secret\">").is_some()
        || html.contains("id=\"temporary-password\"");
    assert!(temporary, "{html}");
    assert!(html.contains("data-user=\"fbi.newcomer\""));
    // A bad user name is named and what was typed comes back.
    let (s, html, _) = admin
        .post(
            "/admin/users",
            &[
                ("csrf", &csrf),
                ("username", "no spaces"),
                ("display_name", "X Y"),
                ("agency", "FBI"),
                ("role", "officer"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        html.contains("value=\"no spaces\"") && html.contains("value=\"X Y\""),
        "{html}"
    );
    // Role change, then disable and enable.
    let (s, html, _) = admin
        .post(
            "/admin/users/role",
            &[("csrf", &csrf), ("username", "fbi.newcomer"), ("role", "supervisor")],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("fbi.newcomer is now: Supervisor."), "{html}");
    let me = ui.f.who("FBI", Role::Admin).username.clone();
    assert!(
        !html.contains(&format!("aria-label=\"Change the role of {me}\"")),
        "no role change offered for oneself"
    );
    let (s, html, _) = admin
        .post(
            "/admin/users/role",
            &[("csrf", &csrf), ("username", &me), ("role", "officer")],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "nobody changes their own role: {html}");
    let (s, html, _) = admin
        .post(
            "/admin/users/enabled",
            &[("csrf", &csrf), ("username", "fbi.newcomer"), ("enabled", "0")],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("fbi.newcomer is disabled"), "{html}");
    let (_, html, _) = admin
        .post(
            "/admin/users/enabled",
            &[("csrf", &csrf), ("username", "fbi.newcomer"), ("enabled", "1")],
        )
        .await;
    assert!(html.contains("fbi.newcomer is enabled again."), "{html}");
    let (_, zh) = admin.with_lang("zh-CN").get("/admin/users").await;
    assert!(
        zh.contains("添加用户") && zh.contains("API 令牌") && zh.contains("对端节点"),
        "{zh}"
    );

    // Units: create, add a member, remove them.
    let (s, html, _) = admin
        .post(
            "/admin/units",
            &[("csrf", &csrf), ("code", "cyber-2"), ("name", "Cyber squad 2")],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("Unit cyber-2 is created.") && html.contains("data-unit=\"cyber-2\""));
    let officer_name = ui.f.who("FBI", Role::Officer).username.clone();
    let (_, html, _) = admin
        .post(
            "/admin/units/member",
            &[
                ("csrf", &csrf),
                ("unit", "cyber-2"),
                ("username", &officer_name),
                ("action", "add"),
            ],
        )
        .await;
    assert!(html.contains(&format!("data-member=\"{officer_name}\"")), "{html}");
    let (_, html, _) = admin
        .post(
            "/admin/units/member",
            &[
                ("csrf", &csrf),
                ("unit", "cyber-2"),
                ("username", &officer_name),
                ("action", "remove"),
            ],
        )
        .await;
    assert!(!html.contains(&format!("data-member=\"{officer_name}\"")), "{html}");
    let (s, html, _) = admin
        .post("/admin/units", &[("csrf", &csrf), ("code", "Bad Code"), ("name", "x")])
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(html.contains("value=\"Bad Code\""), "typed values come back: {html}");

    // Tokens: issue one; the secret works on the API until it is revoked.
    let (s, html, _) = admin
        .post(
            "/admin/tokens",
            &[
                ("csrf", &csrf),
                ("username", &officer_name),
                ("label", "nightly import"),
                ("days", "30"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    let secret = attr_after(&html, "<code id=\"token-secret\" class=\"secret\">")
        .map(|s| s.split('<').next().unwrap().to_string());
    let secret = match secret {
        Some(s) => s,
        None => {
            let start = html.find("id=\"token-secret\" class=\"secret\">").unwrap() + 32;
            html[start..].split('<').next().unwrap().to_string()
        }
    };
    assert!(secret.starts_with("lia_"), "{secret}");
    let me_api = |t: String| {
        let http = ui.http.clone();
        let url = ui.url("/api/v1/me");
        async move { http.get(url).bearer_auth(t).send().await.unwrap().status() }
    };
    assert_eq!(me_api(secret.clone()).await, StatusCode::OK);
    let (_, html) = admin.get("/admin/tokens").await;
    assert!(html.contains("nightly import"));
    let id = {
        let row = html.find("nightly import").unwrap();
        let before = &html[..row];
        let at = before.rfind("data-token=\"").unwrap() + "data-token=\"".len();
        before[at..].split('"').next().unwrap().to_string()
    };
    let (s, html, _) = admin
        .post("/admin/tokens/revoke", &[("csrf", &csrf), ("id", &id)])
        .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert_eq!(me_api(secret).await, StatusCode::UNAUTHORIZED);
    let (s, _, _) = admin
        .post(
            "/admin/tokens",
            &[
                ("csrf", &csrf),
                ("username", &officer_name),
                ("label", "x"),
                ("days", "400"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "more than 366 days is refused");

    // Peers: nothing pinned and no identity yet; a file that is not a peer file is refused.
    let (s, html, _) = admin
        .post(
            "/admin/peers",
            &[
                ("csrf", &csrf),
                ("peer_file", "{\"not\": \"a peer\"}"),
                ("fingerprint", "ab"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("value=\"ab\""), "{html}");
    assert!(html.contains("No peer nodes are pinned."));
    let (_, html) = admin.get("/ledger").await;
    assert!(
        html.contains("no federation identity") && !html.contains("id=\"verify-ledger\""),
        "{html}"
    );
    // With an identity here and a partner's node: pin it from its peer file and fingerprint.
    let now = jiff::Timestamp::now();
    let dir = |n: &str| {
        std::env::temp_dir().join(format!(
            "liaison-ui-admin-{n}-{}-{}",
            std::process::id(),
            now.as_nanosecond()
        ))
    };
    ui.f.node
        .create_identity(
            &ui.f.fbi,
            &liaison_service::federation::IdentityParams {
                node_id: liaison_wire::NodeId::parse("us-fbi").unwrap(),
                listen: "127.0.0.1:1".into(),
                base_url: "https://127.0.0.1:1".into(),
                key_dir: dir("a"),
            },
            now,
        )
        .await
        .unwrap();
    let b = liaison_service::fixtures::sqlite_node().await.unwrap();
    b.set_up(
        &liaison_service::setup::NodeSetup {
            agency: liaison_service::fixtures::agency("GB-NCA", "GB", "Europe/London").unwrap(),
            users: vec![liaison_service::setup::NewUser::new("admin", "admin", Role::Admin)],
            token: None,
            identity: Some(liaison_service::federation::IdentityParams {
                node_id: liaison_wire::NodeId::parse("gb-nca").unwrap(),
                listen: "127.0.0.1:2".into(),
                base_url: "https://127.0.0.1:2".into(),
                key_dir: dir("b"),
            }),
            actor: "test".into(),
        },
        now,
    )
    .await
    .unwrap();
    // B's administrator named B's agency for B's Chinese pages: that name stays on B.
    let b_admin = b.local_principal("admin").await.unwrap();
    let names = liaison_service::AgencyNames {
        name_en: "National Crime Agency".into(),
        name_native: String::new(),
        name_zh: "英国国家犯罪调查局".into(),
    };
    b.rename_agency(&b_admin, "GB-NCA", names, now).await.unwrap();
    let pf = b.own_peer_file().await.unwrap();
    let fingerprint = pf.descriptor.fingerprint().unwrap().to_hex();
    let file = serde_json::to_string(&pf).unwrap();
    assert!(
        !file.contains("name_zh") && !file.contains("英国"),
        "local names stay local: {file}"
    );
    let wrong = "00".repeat(32);
    let (s, html, _) = admin
        .post(
            "/admin/peers",
            &[("csrf", &csrf), ("peer_file", &file), ("fingerprint", &wrong)],
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "a wrong fingerprint pins nothing: {html}");
    assert!(html.contains("No peer nodes are pinned."));
    let (s, html, _) = admin
        .post(
            "/admin/peers",
            &[("csrf", &csrf), ("peer_file", &file), ("fingerprint", &fingerprint)],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(
        html.contains("Peer gb-nca is pinned.") && html.contains("data-peer=\"gb-nca\""),
        "{html}"
    );
    assert!(
        html.contains("id=\"own-fingerprint\""),
        "this node's own fingerprint is shown"
    );
    let (s, html, _) = admin
        .post("/admin/peers/remove", &[("csrf", &csrf), ("node_id", "gb-nca")])
        .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(!html.contains("data-peer=\"gb-nca\""), "{html}");

    // Directory: rename with a Chinese name; Chinese pages show it first.
    let (s, html, _) = admin
        .post(
            "/directory/rename",
            &[
                ("csrf", &csrf),
                ("code", "FBI"),
                ("name_en", "Federal Bureau of Investigation"),
                ("name_native", ""),
                ("name_zh", "美国联邦调查局"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    let (_, zh) = ui
        .login("FBI", Role::Officer)
        .await
        .with_lang("zh-CN")
        .get("/directory")
        .await;
    assert!(
        zh.contains("FBI — 美国联邦调查局（Federal Bureau of Investigation）"),
        "{zh}"
    );
    assert!(!zh.contains("action=\"/directory/rename\""), "officers do not rename");
    let (s, _, _) = admin
        .post(
            "/directory/rename",
            &[("csrf", &csrf), ("code", "FBI"), ("name_en", "  ")],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "an English name is required");

    // Ledger: verified on demand.
    let (s, html) = admin.get("/ledger").await;
    assert_eq!(s, StatusCode::OK, "{html}");
    let (s, html, _) = admin.post("/ledger/verify", &[("csrf", &csrf)]).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("The ledger is intact."), "{html}");
    let auditor = ui.login("FBI", Role::Auditor).await;
    let (s, html) = auditor.get("/ledger").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains("href=\"/ledger\""),
        "auditors find the ledger in the navigation"
    );

    // Other roles: refused by the service, and offered nothing.
    let officer = ui.login("FBI", Role::Officer).await;
    let (_, home) = officer.get("/requests").await;
    assert!(!home.contains("href=\"/admin/users\"") && !home.contains("href=\"/ledger\""));
    let ocsrf = officer.csrf("/requests").await;
    for (path, form) in [
        (
            "/admin/users",
            vec![("username", "x"), ("agency", "FBI"), ("role", "admin")],
        ),
        (
            "/admin/users/role",
            vec![("username", "fbi.newcomer"), ("role", "admin")],
        ),
        ("/admin/units", vec![("code", "mine"), ("name", "Mine")]),
        (
            "/admin/tokens",
            vec![("username", "fbi.newcomer"), ("label", "x"), ("days", "1")],
        ),
        ("/directory/rename", vec![("code", "FBI"), ("name_en", "Hijacked")]),
    ] {
        let mut f = vec![("csrf", ocsrf.as_str())];
        f.extend(form);
        let (s, html, _) = officer.post(path, &f).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}: {html}");
    }
    for path in ["/admin/tokens", "/admin/peers", "/ledger"] {
        let (s, _) = officer.get(path).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}");
    }
    // The node's refusals and field messages in Chinese on Chinese pages.
    let (s, zh, _) = officer
        .with_lang("zh-CN")
        .post("/admin/units", &[("csrf", &ocsrf), ("code", "mine"), ("name", "Mine")])
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(zh.contains("无权建立小组（用户 fbi.officer）"), "{zh}");
    let (s, zh, _) = admin
        .with_lang("zh-CN")
        .post("/admin/units", &[("csrf", &csrf), ("code", "Bad Code"), ("name", "x")])
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(zh.contains("“Bad Code”不是有效的小组代码"), "{zh}");
    assert!(!zh.contains("is not a unit code"), "{zh}");
}

/// The node's own messages on Chinese pages: a refused move, someone else's change, empty and
/// missing fields, a letter's missing particulars, an unknown owner, a saved search without a
/// name — each shown in Chinese, none left in English (no "节点原文（英文）" lead).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nodes_messages_are_chinese_on_chinese_pages() {
    let ui = Ui::start().await;
    let mps = ui.f.mps.id.to_string();
    let fbi = ui.login("FBI", Role::Officer).await;
    let id = create_draft(&fbi, &mps).await;
    let zh = fbi.with_lang("zh-CN");
    let page = format!("/requests/{id}");
    let csrf = zh.csrf(&page).await;
    let english = |html: &str| html.contains("节点原文（英文）");
    let banner = |html: &str| {
        let at = html.find("class=\"banner error\"").expect("an error banner");
        html[at..].split("</div>").next().unwrap().to_string()
    };

    // An empty comment.
    let (s, html, _) = zh
        .post(&format!("{page}/comment"), &[("csrf", &csrf), ("text", "  ")])
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{html}");
    let b = banner(&html);
    assert!(b.contains("不能为空") && !english(&b), "{b}");

    // A move the lifecycle does not have from a draft.
    let (s, html, _) = zh
        .post(
            &format!("{page}/transition"),
            &[("csrf", &csrf), ("to", "answered"), ("version", "1")],
        )
        .await;
    assert!(s == StatusCode::CONFLICT || s == StatusCode::FORBIDDEN, "{s}: {html}");
    let b = banner(&html);
    assert!(!english(&b) && !b.contains("cannot go from"), "{b}");

    // Someone else's change: the draft is at version 1, the form says 7.
    let (s, html, _) = zh
        .post(
            &format!("{page}/transition"),
            &[("csrf", &csrf), ("to", "withdrawn"), ("version", "7"), ("reason", "x")],
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{html}");
    let b = banner(&html);
    assert!(b.contains("请重新加载") && !english(&b), "{b}");

    // A letter with particulars missing (no draft watermark asked for).
    let (s, html, _) = zh
        .post(&format!("{page}/letter"), &[("csrf", &csrf), ("lang", "en,zh-CN")])
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    let b = banner(&html);
    assert!(
        !english(&b) && b.contains("请求函要件") && b.contains("缺少案情摘要的中文文本"),
        "{b}"
    );

    // An owner who is not there.
    let (s, html, _) = zh
        .post(&format!("{page}/assign"), &[("csrf", &csrf), ("owner", "nobody-here")])
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{html}");
    let b = banner(&html);
    assert!(b.contains("nobody-here") && !english(&b), "{b}");

    // A saved search without a name.
    let scsrf = zh.csrf("/search").await;
    let (s, html, _) = zh
        .post(
            "/search/save",
            &[("csrf", &scsrf), ("name", ""), ("query", "q=phishing")],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{html}");
    let b = banner(&html);
    assert!(!english(&b) && b.contains("<strong>名称</strong>"), "{b}");
}
