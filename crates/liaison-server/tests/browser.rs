//! A real browser drives the web UI: headless Chromium through chromedriver (WebDriver).
//!
//! Skips with a loud message when /usr/bin/chromium or chromedriver is missing, unless
//! LIAISON_REQUIRE_BROWSER=1, in which case it fails. Install them on Debian with
//! `apt-get install -y chromium chromium-driver`. The last screenshot is written to the
//! temporary directory (its path is printed) or to LIAISON_SCREENSHOT_DIR when set.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod chrome;
mod common;

use chrome::{click, connect, element, screenshot, start_driver, text_of};
use fantoccini::{Client, Locator};
use liaison_core::Role;
use liaison_core::lifecycle::{State, TransitionInput};
use liaison_core::request::RequestKind;
use std::time::Duration;

/// Signs in with a password on the sign-in page open in the browser, sets up the authenticator
/// app from the key shown (first sign-in) and passes the recovery codes; `shots` names the
/// screenshots of those steps (`enrol-{shots}`, `recovery-codes-{shots}`).
async fn sign_in_with_app(c: &Client, username: &str, password: &str, shots: Option<&str>) {
    c.find(Locator::Id("username"))
        .await
        .unwrap()
        .send_keys(username)
        .await
        .unwrap();
    c.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(password)
        .await
        .unwrap();
    click(c, "#login").await;
    assert!(c.find(Locator::Css("svg.qr")).await.is_ok(), "a QR code is shown");
    if let Some(lang) = shots {
        screenshot(c, &format!("enrol-{lang}")).await;
    }
    let key = text_of(c, "#secret").await;
    let secret = liaison_service::sign_in::base32_decode(&key).unwrap();
    let code =
        liaison_service::sign_in::totp_code(&secret, liaison_service::sign_in::totp_step(jiff::Timestamp::now()));
    c.find(Locator::Id("code"))
        .await
        .unwrap()
        .send_keys(&code)
        .await
        .unwrap();
    click(c, "#step-submit").await;
    let codes = text_of(c, "#recovery-codes").await;
    assert_eq!(codes.lines().count(), 10, "{codes}");
    if let Some(lang) = shots {
        screenshot(c, &format!("recovery-codes-{lang}")).await;
    }
    click(c, "#codes-continue").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_signs_in_moves_a_request_and_switches_language() {
    let Some(driver_path) = chrome::driver_or_skip("BROWSER TEST") else {
        return;
    };

    // The node, with one submitted request waiting for the requested side's desk.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // With an evidence store: the partner answers with a file.
    let evidence = std::env::temp_dir().join(format!("liaison-browser-evidence-{}", std::process::id()));
    let node = liaison_service::fixtures::sqlite_node()
        .await
        .unwrap()
        .with_evidence(liaison_service::evidence::EvidenceConfig::default().resolved(&evidence))
        .unwrap();
    let f = common::fixture(node).await;
    let now = jiff::Timestamp::now();
    let officer = f.who("FBI", Role::Officer).clone();
    let mut draft = f.draft(RequestKind::SubscriberInformation);
    draft.case_reference = "FBI-2026-BROWSER".into();
    draft.summary =
        "Ransomware operators used <script>alert(1)</script> in a phishing kit hosted in the requested state".into();
    draft.targets = vec![liaison_core::request::Target {
        value: liaison_core::request::TargetValue::Ip {
            address: "203.0.113.7".parse().unwrap(),
            port: None,
            observed_at: "2026-10-10T10:00:00Z".parse().unwrap(),
            zone: None,
        },
        from: "2026-10-01T00:00:00Z".parse().unwrap(),
        until: "2026-11-01T00:00:00Z".parse().unwrap(),
        provider: None,
    }];
    let r = f.node.create_request(&officer, draft, now).await.unwrap();
    f.node
        .comment(
            &officer,
            r.request.id,
            "嫌疑人通过钓鱼网站实施电信诈骗，服务器位于深圳。",
            None,
            now,
        )
        .await
        .unwrap();
    let input = TransitionInput {
        to: Some(State::Submitted),
        ..Default::default()
    };
    let r = f.node.transition(&officer, r.request.id, 1, input, now).await.unwrap();
    assert_eq!(r.request.state, State::Received);
    // The desk signs in with a password and sets up the second factor (the node's defaults).
    let password = "desk passphrase 2026";
    let admin_password = "admin passphrase 2026";
    let admin = f.who("CN-MPS", Role::Admin);
    f.node
        .set_password(admin, "cn-mps.desk", password, false, now)
        .await
        .unwrap();
    f.node
        .set_password(admin, "cn-mps.admin", admin_password, false, now)
        .await
        .unwrap();
    let partner_password = "partner passphrase 2026";
    for who in ["cn-mps.legal_reviewer", "cn-mps.officer", "cn-mps.analyst"] {
        f.node
            .set_password(admin, who, partner_password, false, now)
            .await
            .unwrap();
    }
    let officer_password = "officer passphrase 2026";
    f.node
        .set_password(f.who("FBI", Role::Admin), "fbi.officer", officer_password, false, now)
        .await
        .unwrap();
    // A clean-up notice another node sent to CN-MPS, for its analyst to answer.
    liaison_service::fixtures::intel::incoming_notice(
        &f.node,
        "de-bka",
        "DE-BKA",
        "CN-MPS",
        &[
            ("198.51.100.7", liaison_core::Tlp::Green),
            ("198.51.100.8", liaison_core::Tlp::Green),
        ],
        now,
    )
    .await
    .unwrap();
    // The answer's file, as the partner's officer picks it from the disk.
    let answer_file = evidence.with_extension("answer.csv");
    std::fs::write(
        &answer_file,
        "account,subscriber,registered\nexample-user,Li Ming,2024-03-02\n",
    )
    .unwrap();
    f.node
        .set_password(
            f.who("FBI", Role::Admin),
            "fbi.supervisor",
            officer_password,
            false,
            now,
        )
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let node = f.node.clone();
    tokio::spawn(async move {
        let _ = liaison_server::serve(node, listener, Duration::from_secs(3600), std::future::pending()).await;
    });

    let (driver, url) = start_driver(&driver_path).await;
    let c = connect(&url, &driver.profile).await;
    let result = async {
        // Sign in as the requested agency's 24/7 desk officer.
        c.goto(&format!("{base}/")).await.unwrap();
        assert!(c.current_url().await.unwrap().path().ends_with("/login"));
        screenshot(&c, "login-en").await;
        // First sign-in: the authenticator app is set up from the QR code or the key.
        sign_in_with_app(&c, "cn-mps.desk", password, Some("en")).await;
        // The desk lands on its home page: the incoming request nobody owns comes first.
        assert!(c.current_url().await.unwrap().path().ends_with("/home"));
        let first = text_of(&c, "main table tbody tr td a").await;
        assert_eq!(first, r.reference);
        screenshot(&c, "home-en").await;
        // The list of that queue, by due date: the reference links to the request, the case
        // reference beside it.
        c.goto(&format!("{base}/requests?queue=unassigned&sort=due"))
            .await
            .unwrap();
        assert_eq!(text_of(&c, "#requests tbody tr td a").await, r.reference);
        let row = text_of(&c, "#requests tbody tr").await;
        assert!(
            row.contains("FBI-2026-BROWSER") && row.contains("acknowledge due in"),
            "{row}"
        );
        screenshot(&c, "list").await;

        // Open the request: it was received; take it, then acknowledge it with the button.
        click(&c, "#requests tbody tr td a").await;
        assert_eq!(text_of(&c, "#state").await, "Received");
        assert_eq!(text_of(&c, "#owner").await, "Nobody");
        click(&c, "#take").await;
        assert_eq!(text_of(&c, ".banner.ok").await, "Assignment saved.");
        assert_eq!(text_of(&c, "#owner").await, "cn-mps.desk");
        assert_eq!(text_of(&c, "#awaiting").await, "Us");
        c.execute("document.getElementById('work').scrollIntoView()", vec![])
            .await
            .unwrap();
        screenshot(&c, "work-en").await;
        let summary = text_of(&c, "#summary").await;
        assert!(
            summary.contains("<script>alert(1)</script>"),
            "shown as text: {summary}"
        );
        click(&c, "#go-acknowledged").await;
        let banner = text_of(&c, ".banner.ok").await;
        assert_eq!(banner, "The request is now: Acknowledged");
        assert_eq!(text_of(&c, "#state").await, "Acknowledged");
        let history = text_of(&c, "#history-table").await;
        assert!(history.contains("Received → Acknowledged"), "{history}");
        screenshot(&c, "detail-en").await;
        // The full assessment: sections, sources as links.
        c.execute("document.getElementById('assessment').scrollIntoView()", vec![])
            .await
            .unwrap();
        assert!(
            c.find(Locator::Css("#assessment ~ ul.assessment p.sources a"))
                .await
                .is_ok(),
            "sources are links"
        );
        screenshot(&c, "assessment-en").await;
        // The lower half: actions for the new state and the history.
        c.execute("document.getElementById('actions').scrollIntoView()", vec![])
            .await
            .unwrap();
        screenshot(&c, "detail-en-lower").await;

        // Switch to Chinese: the same page with Chinese labels.
        click(&c, "#lang-switch").await;
        assert_eq!(text_of(&c, "#state").await, "已确认");
        let heading = text_of(&c, "#actions").await;
        assert_eq!(heading, "当前可执行的操作");
        let shot = screenshot(&c, "detail-zh").await;
        assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "a real screenshot");

        // The inbox after the watcher's pass: the incoming request, in Chinese, then English.
        f.node.tick(jiff::Timestamp::now()).await.unwrap();
        c.goto(&format!("{base}/inbox")).await.unwrap();
        let inbox = text_of(&c, "#inbox").await;
        assert!(inbox.contains(&r.reference) && inbox.contains("新来件"), "{inbox}");
        screenshot(&c, "inbox-zh").await;
        c.goto(&format!("{base}/requests/{}", r.reference)).await.unwrap();
        c.execute("document.getElementById('work').scrollIntoView()", vec![])
            .await
            .unwrap();
        screenshot(&c, "work-zh").await;
        c.goto(&format!("{base}/home")).await.unwrap();
        screenshot(&c, "home-zh").await;
        click(&c, "#lang-switch").await;
        let inbox_en = {
            c.goto(&format!("{base}/inbox")).await.unwrap();
            text_of(&c, "#inbox").await
        };
        assert!(inbox_en.contains("New incoming request"), "{inbox_en}");
        screenshot(&c, "inbox-en").await;
        click(&c, "#read-all").await;
        assert_eq!(text_of(&c, ".banner.ok").await, "Marked read.");

        // Search (docs/search.md): words with their places marked, a saved search, Chinese
        // words and an identifier look-up in the Chinese interface.
        c.goto(&format!("{base}/search")).await.unwrap();
        c.find(Locator::Id("s-q"))
            .await
            .unwrap()
            .send_keys("phish")
            .await
            .unwrap();
        click(&c, "#search-go").await;
        assert_eq!(text_of(&c, "#search-count").await, "1 text matches");
        assert_eq!(text_of(&c, "#hits mark").await, "phishing");
        assert!(text_of(&c, "#hits").await.contains(&r.reference));
        c.find(Locator::Id("s-name"))
            .await
            .unwrap()
            .send_keys("Phishing kits")
            .await
            .unwrap();
        click(&c, "#search-save").await;
        assert_eq!(text_of(&c, ".banner.ok").await, "Search saved.");
        assert!(text_of(&c, "#saved").await.contains("Phishing kits"));
        screenshot(&c, "search-en").await;
        click(&c, "#lang-switch").await;
        c.goto(&format!("{base}/search?q=%E8%AF%88%E9%AA%97")).await.unwrap(); // 诈骗
        assert_eq!(text_of(&c, "#search-count").await, "共 1 条内容匹配");
        assert_eq!(text_of(&c, "#hits mark").await, "诈骗");
        screenshot(&c, "search-zh").await;
        c.goto(&format!("{base}/search?target=203.0.113.0%2F24")).await.unwrap();
        let line = text_of(&c, "#lookup h2").await;
        assert!(
            line.contains("网段 203.0.113.0/24") && line.contains("1 个请求"),
            "{line}"
        );
        assert_eq!(text_of(&c, "#lookup tbody tr td a").await, r.reference);
        screenshot(&c, "lookup-zh").await;
        click(&c, "#lang-switch").await;

        // A joint case (docs/cases.md) led by FBI, which CN-MPS joined: the list and the case
        // page in both languages, the request linked and shared, a note in Chinese.
        let mps_officer = f.who("CN-MPS", Role::Officer).clone();
        let case = f
            .node
            .case_create(
                &officer,
                "Operation Lantern",
                "JTF-2026-07",
                Some(liaison_core::Marking::new(liaison_core::Tlp::Amber)),
                &["CN-MPS".into()],
                now,
            )
            .await
            .unwrap();
        f.node
            .case_answer(&mps_officer, &case.id, true, None, now)
            .await
            .unwrap();
        let item = liaison_service::cases::ItemRef {
            kind: liaison_core::case::ItemKind::Request,
            id: r.request.id.to_string(),
        };
        f.node.case_link(&officer, &case.id, &item, true, now).await.unwrap();
        f.node
            .case_note(
                &mps_officer,
                &case.id,
                "钱包地址与我方2025年案件中的团伙一致。",
                None,
                now,
            )
            .await
            .unwrap();
        c.goto(&format!("{base}/cases")).await.unwrap();
        assert!(text_of(&c, "#cases").await.contains("JTF-2026-07"));
        screenshot(&c, "cases-en").await;
        click(&c, "#cases tbody tr td a").await;
        assert_eq!(text_of(&c, "#case-status").await, "member");
        assert!(text_of(&c, "#link-table").await.contains(&r.reference));
        screenshot(&c, "case-en").await;
        click(&c, "#lang-switch").await;
        assert_eq!(text_of(&c, "#case-status").await, "成员");
        assert!(text_of(&c, "main").await.contains("钱包地址"));
        screenshot(&c, "case-zh").await;
        c.execute("document.getElementById('stats').scrollIntoView()", vec![])
            .await
            .unwrap();
        screenshot(&c, "case-zh-lower").await;
        click(&c, "#lang-switch").await;

        // The directory shows local times and office status.
        c.goto(&format!("{base}/requests/{}", r.reference)).await.unwrap();
        assert_eq!(text_of(&c, "#state").await, "Acknowledged");
        c.goto(&format!("{base}/directory")).await.unwrap();
        let dir = text_of(&c, "main").await;
        assert!(dir.contains("Asia/Shanghai"), "{dir}");
        screenshot(&c, "directory").await;
        // The account page, in both languages.
        c.goto(&format!("{base}/account")).await.unwrap();
        assert!(text_of(&c, "#acc-factor").await.contains("authenticator app set up"));
        screenshot(&c, "account-en").await;
        click(&c, "#lang-switch").await;
        assert!(text_of(&c, "#acc-factor").await.contains("已设置身份验证器应用"));
        screenshot(&c, "account-zh").await;
        click(&c, "#lang-switch").await;
        click(&c, "#logout").await;
        assert!(text_of(&c, ".banner.ok").await.contains("signed out"));

        // The administrator resets the desk's password on the Users page (signing in with a
        // password set beforehand and a code, in Chinese).
        click(&c, "#lang-switch").await;
        screenshot(&c, "login-zh").await;
        sign_in_with_app(&c, "cn-mps.admin", admin_password, Some("zh")).await;
        c.goto(&format!("{base}/admin/users")).await.unwrap();
        let users = text_of(&c, "#users").await;
        assert!(users.contains("cn-mps.desk"), "{users}");
        screenshot(&c, "users-zh").await;
        click(
            &c,
            "tr[data-user='cn-mps.desk'] form[action='/admin/users/reset'] button",
        )
        .await;
        let temporary = text_of(&c, "#temporary-password").await;
        assert_eq!(temporary.len(), 19, "four groups of four: {temporary}");
        screenshot(&c, "users-reset-zh").await;
        click(&c, "#lang-switch").await;
        screenshot(&c, "users-reset-en").await;
        // The cooperation report's chart; a cell opens the pair's requests.
        c.goto(&format!("{base}/cooperation")).await.unwrap();
        assert!(c.find(Locator::Css("svg#heat")).await.is_ok(), "the chart");
        screenshot(&c, "cooperation-en").await;
        click(&c, "#lang-switch").await;
        screenshot(&c, "cooperation-zh").await;
        click(&c, "#lang-switch").await;
        click(&c, "#logout").await;

        // The requesting officer drafts with a target; the verdict appears while drafting
        // (the script); the draft is saved, sent through the confirmation page, and received.
        sign_in_with_app(&c, "fbi.officer", officer_password, None).await;
        c.goto(&format!("{base}/requests/new")).await.unwrap();
        c.find(Locator::Id("case_reference"))
            .await
            .unwrap()
            .send_keys("FBI-2026-DRAFTED")
            .await
            .unwrap();
        c.find(Locator::Id("summary"))
            .await
            .unwrap()
            .send_keys("Extortion e-mails sent from an account at a Chinese provider")
            .await
            .unwrap();
        c.find(Locator::Id("t-value-1"))
            .await
            .unwrap()
            .send_keys("extortionist@example.cn")
            .await
            .unwrap();
        let fill = format!(
            "const v = (id, x) => {{ document.getElementById(id).value = x; }};
             v('kind', 'stored_content'); v('requested_agency', '{mps}'); v('t-type-1', 'email');
             v('t-from-1', '2026-10-01'); v('t-until-1', '2026-10-31');
             v('t-provider-1', 'ExampleMail'); v('t-country-1', 'CN');
             document.querySelector(\"#offences option[value='BC-08']\").selected = true;
             document.getElementById('offences').dispatchEvent(new Event('change', {{ bubbles: true }}));",
            mps = f.mps.id
        );
        c.execute(&fill, vec![]).await.unwrap();
        // No click: the script posts the form and swaps the verdict in.
        let word = text_of(&c, "#draft-verdict #verdict-word").await;
        assert!(!word.is_empty());
        screenshot(&c, "draft-en").await;
        click(&c, "#create").await;
        assert!(text_of(&c, "#verdict").await.contains("if sent now"));
        screenshot(&c, "draft-saved-en").await;
        click(&c, "#go-submitted").await;
        assert!(text_of(&c, "#send-targets").await.contains("extortionist@example.cn"));
        screenshot(&c, "send-en").await;
        click(&c, "#lang-switch").await;
        assert!(text_of(&c, "#confirm-send").await.contains("立即发送"));
        screenshot(&c, "send-zh").await;
        click(&c, "#confirm-send").await;
        assert_eq!(
            element(&c, "#state [data-state]")
                .await
                .attr("data-state")
                .await
                .unwrap()
                .as_deref(),
            Some("received")
        );
        let path = c.current_url().await.unwrap().path().to_string();
        click(&c, "#lang-switch").await;
        click(&c, "#logout").await;

        // The partner: the desk acknowledges (walked above in the browser; here through the
        // node), the legal reviewer decides in the browser, the officer executes and answers.
        let id: liaison_core::RequestId = path.trim_start_matches("/requests/").parse().unwrap();
        let desk = f.who("CN-MPS", Role::Desk).clone();
        let cur = f.node.request(&desk, id, jiff::Timestamp::now()).await.unwrap();
        let ack = TransitionInput {
            to: Some(State::Acknowledged),
            ..Default::default()
        };
        f.node
            .transition(&desk, id, cur.request.version, ack, jiff::Timestamp::now())
            .await
            .unwrap();
        // The reviewer works in Chinese: the verdict, the decision and the state in Chinese.
        sign_in_with_app(&c, "cn-mps.legal_reviewer", partner_password, None).await;
        c.goto(&format!("{base}{path}")).await.unwrap();
        click(&c, "#lang-switch").await;
        let verdict = text_of(&c, "#verdict-word").await;
        assert!(
            verdict.chars().any(|ch| ('\u{4e00}'..='\u{9fff}').contains(&ch)),
            "{verdict}"
        );
        click(&c, "#go-in_review").await;
        assert_eq!(text_of(&c, "#state").await, "法律审核中");
        click(&c, "#go-accepted").await;
        assert_eq!(text_of(&c, "#state").await, "已受理");
        screenshot(&c, "reviewer-zh").await;
        click(&c, "#lang-switch").await;
        assert_eq!(text_of(&c, "#state").await, "Accepted");
        screenshot(&c, "reviewer-en").await;
        click(&c, "#logout").await;
        sign_in_with_app(&c, "cn-mps.officer", partner_password, None).await;
        c.goto(&format!("{base}{path}")).await.unwrap();
        click(&c, "#go-executing").await;
        // The answer's file first: picked from the disk, marked, uploaded.
        element(&c, "#evidence-file")
            .await
            .send_keys(&answer_file.display().to_string())
            .await
            .unwrap();
        click(&c, "#evidence-submit").await;
        let files = text_of(&c, "#evidence-table").await;
        let name = answer_file.file_name().unwrap().to_string_lossy().to_string();
        assert!(files.contains(&name), "{files}");
        click(&c, "#go-answered").await;
        assert_eq!(text_of(&c, "#state").await, "Answered");
        screenshot(&c, "answered-en").await;
        click(&c, "#logout").await;
        // The requesting side's supervisor finds the answer and its file to download.
        sign_in_with_app(&c, "fbi.supervisor", officer_password, None).await;
        c.goto(&format!("{base}{path}")).await.unwrap();
        assert_eq!(text_of(&c, "#state").await, "Answered");
        let files = text_of(&c, "#evidence-table").await;
        assert!(files.contains(&name), "the requesting side sees the file: {files}");
        let link = element(&c, "#evidence-table a[download]").await;
        assert!(link.attr("href").await.unwrap().unwrap().contains("/evidence/"));
        // The supervisor reads the cooperation charts, in both languages.
        c.goto(&format!("{base}/cooperation")).await.unwrap();
        assert!(c.find(Locator::Css("svg#heat")).await.is_ok(), "the heat map");
        let charts = c.find_all(Locator::Css("main svg")).await.unwrap().len();
        assert!(charts >= 3, "heat map, trend and ageing: {charts}");
        click(&c, "#lang-switch").await;
        assert!(text_of(&c, "main").await.contains("协作"), "Chinese charts page");
        screenshot(&c, "supervisor-charts-zh").await;
        click(&c, "#lang-switch").await;
        click(&c, "#logout").await;

        // The partner's analyst answers a clean-up notice, item by item, in Chinese.
        sign_in_with_app(&c, "cn-mps.analyst", partner_password, None).await;
        c.goto(&format!("{base}/intel")).await.unwrap();
        click(&c, "#lang-switch").await;
        let row = "tr[data-item] ";
        element(&c, &format!("{row}select[name='status']"))
            .await
            .select_by_value("remediated")
            .await
            .unwrap();
        element(&c, &format!("{row}input[name='note']"))
            .await
            .send_keys("主机已清理")
            .await
            .unwrap();
        click(&c, &format!("{row}button[type='submit']")).await;
        let banner = text_of(&c, ".banner.ok").await;
        assert!(
            !banner.is_empty() && banner.chars().any(|ch| ('\u{4e00}'..='\u{9fff}').contains(&ch)),
            "{banner}"
        );
        let notice = text_of(&c, "section.notice").await;
        assert!(notice.contains("已处置") && notice.contains("主机已清理"), "{notice}");
        screenshot(&c, "notice-answered-zh").await;
        click(&c, "#lang-switch").await;
        click(&c, "#logout").await;
    }
    .await;
    let _ = c.close().await;
    drop(driver);
    result
}
