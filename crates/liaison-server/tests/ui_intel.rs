//! The clean-up page (`/intel`) over HTTP: incoming notices for the viewer's agency only, the
//! per-item answer form (not for auditors), the answer going out, both languages, escaping.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use liaison_core::{Role, Tlp};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};

async fn login(http: &reqwest::Client, base: &str, token: &str) -> String {
    let resp = http
        .post(format!("{base}/login"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let set = resp.headers()[SET_COOKIE].to_str().unwrap().to_string();
    set.split(';').next().unwrap().to_string()
}

async fn get(http: &reqwest::Client, base: &str, cookie: &str, path: &str) -> (StatusCode, String) {
    let r = http
        .get(format!("{base}{path}"))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn post(http: &reqwest::Client, base: &str, cookie: &str, form: &str) -> (StatusCode, Option<String>, String) {
    let r = http
        .post(format!("{base}/intel/answer"))
        .header(COOKIE, cookie)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form.to_string())
        .send()
        .await
        .unwrap();
    let loc = r.headers().get(LOCATION).map(|v| v.to_str().unwrap().to_string());
    (r.status(), loc, r.text().await.unwrap())
}

fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).unwrap() + marker.len();
    let end = html[start..].find('"').unwrap();
    html[start..start + end].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incoming_notices_are_listed_and_answered_per_item() {
    let f = common::fixture(liaison_service::fixtures::sqlite_node().await.unwrap()).await;
    let n = liaison_service::fixtures::intel::incoming_notice(
        &f.node,
        "de-bka",
        "DE-<b>BKA</b>",
        "CN-MPS",
        &[("198.51.100.7", Tlp::Amber), ("198.51.100.8", Tlp::Green)],
        jiff::Timestamp::now(),
    )
    .await
    .unwrap();
    let item = n.items[0].item_id.to_string();
    let base = common::serve(&f.node).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // The addressed agency's officer: the notice, its marking, an answer form per item; the
    // issuer's name is escaped.
    let officer = login(&http, &base, f.token("CN-MPS", Role::Officer)).await;
    let (s, html) = get(&http, &base, &officer, "/intel").await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("198.51.100.7") && html.contains("TLP:AMBER"), "{html}");
    assert!(
        html.contains("DE-&lt;b&gt;BKA&lt;/b&gt;") && !html.contains("<b>BKA"),
        "{html}"
    );
    assert_eq!(html.matches("action=\"/intel/answer\"").count(), 2);
    assert!(html.contains("href=\"/intel\""), "the navigation links the page");
    let (_, zh) = get(&http, &base, &format!("{officer}; lang=zh-CN"), "/intel").await;
    assert!(zh.contains("收到的通报") && zh.contains("处置时长"), "{zh}");
    // The notice's PAP with what it permits, in each language; the badges carry their level.
    assert!(
        html.contains("badge pap pap-green\">PAP:GREEN<") && html.contains("active actions allowed"),
        "{html}"
    );
    assert!(html.contains("badge tlp tlp-amber\">TLP:AMBER<"), "{html}");
    assert!(zh.contains("允许主动处置"), "{zh}");

    // A form without the CSRF token is refused; with it the answer is recorded and sent.
    let (s, _, _) = post(&http, &base, &officer, &format!("item={item}&status=remediated")).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let csrf = csrf_of(&html);
    let (s, loc, body) = post(
        &http,
        &base,
        &officer,
        &format!("csrf={csrf}&item={item}&status=remediated&note=host%20reinstalled"),
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(loc.as_deref(), Some("/intel?answered=1"));
    let (_, html) = get(&http, &base, &officer, "/intel?answered=1").await;
    assert!(
        html.contains("Answer recorded") && html.contains("host reinstalled"),
        "{html}"
    );
    let p = f.who("CN-MPS", Role::Officer);
    let inbox = f.node.intel_inbox(p).await.unwrap();
    assert_eq!(
        inbox[0]
            .items
            .iter()
            .find(|i| i.item_id == n.items[0].item_id)
            .unwrap()
            .answer,
        Some(liaison_intel::FeedbackStatus::Remediated)
    );
    // A bad status is named.
    let (s, _, body) = post(&http, &base, &officer, &format!("csrf={csrf}&item={item}&status=maybe")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");

    // The agency's auditor reads but has no form and cannot answer.
    let auditor = login(&http, &base, f.token("CN-MPS", Role::Auditor)).await;
    let (_, html) = get(&http, &base, &auditor, "/intel").await;
    assert!(
        html.contains("198.51.100.7") && !html.contains("action=\"/intel/answer\""),
        "{html}"
    );
    let csrf = csrf_of(&html);
    let (s, _, _) = post(
        &http,
        &base,
        &auditor,
        &format!("csrf={csrf}&item={item}&status=disputed"),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Another agency on the same node sees no incoming notice and cannot answer one.
    let fbi = login(&http, &base, f.token("FBI", Role::Officer)).await;
    let (_, html) = get(&http, &base, &fbi, "/intel").await;
    assert!(
        !html.contains("198.51.100.7") && html.contains("No incoming notices"),
        "{html}"
    );
    let csrf = csrf_of(&html);
    let (s, _, _) = post(
        &http,
        &base,
        &fbi,
        &format!("csrf={csrf}&item={item}&status=remediated"),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// The issuing side: an analyst's page lists the notices the agency issued, item by item with
/// the partner's answer, and the agency's indicators by classification, in both languages;
/// the partner's officer does not see the issuer's notices as "issued".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issued_notices_show_the_partners_answers_per_item() {
    let f = common::fixture(liaison_service::fixtures::sqlite_node().await.unwrap()).await;
    let now = jiff::Timestamp::now();
    let analyst = f.who("FBI", Role::Analyst).clone();
    let issued = liaison_service::fixtures::intel::small_notice(
        &f.node,
        &analyst,
        "CN-MPS",
        &[("203.0.113.10", "c2-server"), ("203.0.113.11", "phishing")],
        now,
    )
    .await
    .unwrap();
    assert!(!issued.notices.is_empty(), "{issued:?}");
    let notice = f.node.intel_issued(&analyst, 20).await.unwrap().remove(0).notice;
    let first = notice
        .notice
        .items
        .iter()
        .find(|i| i.value == "203.0.113.10")
        .unwrap()
        .item_id;
    f.node
        .intel_feedback(
            f.who("CN-MPS", Role::Officer),
            None,
            first,
            liaison_intel::FeedbackStatus::Remediated,
            Some("服务器已下线".into()),
            now,
        )
        .await
        .unwrap();

    let base = common::serve(&f.node).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let fbi = login(&http, &base, f.token("FBI", Role::Analyst)).await;
    let (s, html) = get(&http, &base, &fbi, "/intel").await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("Notices your agency issued"), "{html}");
    assert!(html.contains("Notice to CN-MPS"), "{html}");
    assert!(html.contains("2 items, 1 answered"), "{html}");
    assert!(html.contains("203.0.113.10") && html.contains("203.0.113.11"));
    assert!(html.contains("Remediated") && html.contains("服务器已下线") && html.contains("No answer yet"));
    assert!(html.contains("Botnet command-and-control server") && html.contains("Phishing"));
    assert!(
        html.contains("id=\"indicators-table\""),
        "the indicators by classification"
    );
    let (_, zh) = get(&http, &base, &format!("{fbi}; lang=zh-CN"), "/intel").await;
    assert!(
        zh.contains("本机构发出的通报") && zh.contains("共 2 项，已答复 1 项"),
        "{zh}"
    );
    assert!(zh.contains("僵尸网络控制服务器") && zh.contains("尚未答复"));

    // The partner's officer sees the notice as incoming, not as issued, and no statistics.
    let mps = login(&http, &base, f.token("CN-MPS", Role::Officer)).await;
    let (_, html) = get(&http, &base, &mps, "/intel").await;
    assert!(!html.contains("Notices your agency issued") && !html.contains("indicators-table"));
}
