//! Every page, in English and in Chinese, in real headless Chromium: axe-core (from npm,
//! `tests/axe/install.sh`) runs on each and no violation rated serious or critical is allowed
//! (docs/ui.md "Accessibility"). With `LIAISON_SCREENSHOT_DIR` set, a full-page screenshot of
//! each is written there (`scripts/screenshots.sh`).
//!
//! Skips loudly without Chromium and chromedriver unless `LIAISON_REQUIRE_BROWSER=1`; runs the
//! pages without axe-core, loudly, when npm is missing, unless `LIAISON_REQUIRE_AXE=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod chrome;
mod common;

use fantoccini::Client;
use jiff::Timestamp;
use liaison_core::Role;
use liaison_core::lifecycle::{State, TransitionInput};
use liaison_core::request::{RequestKind, Target, TargetValue};
use std::path::PathBuf;

/// axe-core's source, installed by `tests/axe/install.sh` (None: not available, said loudly).
fn axe_source() -> Option<String> {
    let required = std::env::var("LIAISON_REQUIRE_AXE").is_ok_and(|v| v == "1");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/axe/install.sh");
    let out = std::process::Command::new("bash").arg(script).output();
    let found = match out {
        Ok(o) if o.status.success() => {
            let path = String::from_utf8_lossy(&o.stdout).trim().to_string();
            std::fs::read_to_string(&path).ok()
        }
        Ok(o) => {
            eprintln!("{}", String::from_utf8_lossy(&o.stderr));
            None
        }
        Err(e) => {
            eprintln!("cannot run {script}: {e}");
            None
        }
    };
    if found.is_none() {
        let msg = "ACCESSIBILITY CHECK SKIPPED: axe-core could not be installed from npm (tests/axe/install.sh)";
        if required {
            panic!("{msg} (LIAISON_REQUIRE_AXE=1 makes this a failure)");
        }
        eprintln!("\n{}\n!!! {msg}\n{}\n", "!".repeat(100), "!".repeat(100));
    }
    found
}

/// Runs axe-core on the page open in the browser; returns the violations rated serious or
/// critical, one line each (rule, impact, help, the first elements concerned).
async fn axe_violations(c: &Client, axe: &str) -> Vec<String> {
    c.execute(axe, vec![]).await.expect("axe-core loads into the page");
    let run = r#"
        const done = arguments[arguments.length - 1];
        axe.run(document, { resultTypes: ['violations'] })
          .then(r => done(r.violations.map(v => [v.id, v.impact || '', v.help,
                v.nodes.slice(0, 4).map(n => n.target.join(' ')).join(' | ')])))
          .catch(e => done([['axe-error', 'critical', String(e), '']]));
    "#;
    let v = c.execute_async(run, vec![]).await.expect("axe-core runs");
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|row| {
            let cells: Vec<&str> = row.as_array()?.iter().filter_map(|x| x.as_str()).collect();
            let (id, impact, help, nodes) = (cells.first()?, cells.get(1)?, cells.get(2)?, cells.get(3)?);
            matches!(*impact, "serious" | "critical").then(|| format!("{id} ({impact}): {help} — {nodes}"))
        })
        .collect()
}

/// A page to visit: who is signed in (None: nobody), its path, its name in screenshots.
struct Page {
    who: Option<(&'static str, Role)>,
    path: String,
    name: String,
}

fn page(who: Option<(&'static str, Role)>, path: impl Into<String>, name: &str) -> Page {
    Page {
        who,
        path: path.into(),
        name: name.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_in_both_languages_passes_axe() {
    let Some(driver_path) = chrome::driver_or_skip("PAGE WALK") else {
        return;
    };
    let axe = axe_source();
    let shots = std::env::var_os("LIAISON_SCREENSHOT_DIR").map(PathBuf::from);
    if let Some(d) = &shots {
        std::fs::create_dir_all(d).unwrap();
    }

    // The data the pages show: a request sent and received, a draft, a comment, a joint case.
    let f = common::fixture(liaison_service::fixtures::sqlite_node().await.unwrap()).await;
    let now = Timestamp::now();
    let officer = f.who("FBI", Role::Officer).clone();
    let mut draft = f.draft(RequestKind::StoredContent);
    draft.case_reference = "FBI-2026-PAGES".into();
    draft.summary = "Extortion e-mails sent through a provider in the requested state".into();
    draft.targets = vec![Target {
        value: TargetValue::Email {
            address: "extortionist@example.cn".into(),
        },
        from: "2026-10-01T00:00:00Z".parse().unwrap(),
        until: "2026-11-01T00:00:00Z".parse().unwrap(),
        provider: None,
    }];
    let sent = f.node.create_request(&officer, draft.clone(), now).await.unwrap();
    f.node
        .comment(&officer, sent.request.id, "嫌疑人通过电子邮件实施敲诈勒索。", None, now)
        .await
        .unwrap();
    let to = |s: State| TransitionInput {
        to: Some(s),
        ..Default::default()
    };
    let sent = f
        .node
        .transition(&officer, sent.request.id, 1, to(State::Submitted), now)
        .await
        .unwrap();
    // One answered, so that the cooperation report's charts have a time to answer.
    let answered = f.node.create_request(&officer, draft.clone(), now).await.unwrap();
    let mut r = f
        .node
        .transition(&officer, answered.request.id, 1, to(State::Submitted), now)
        .await
        .unwrap();
    for (role, next) in [
        (Role::Desk, State::Acknowledged),
        (Role::LegalReviewer, State::InReview),
        (Role::LegalReviewer, State::Accepted),
        (Role::Officer, State::Executing),
        (Role::Officer, State::Answered),
    ] {
        r = f
            .node
            .transition(f.who("CN-MPS", role), r.request.id, r.request.version, to(next), now)
            .await
            .unwrap();
    }
    let kept = f.node.create_request(&officer, draft, now).await.unwrap();
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
    // Clean-up: a notice the FBI's analyst issued to CN-MPS, answered in part; a notice another
    // node sent to CN-MPS.
    let analyst = f.who("FBI", Role::Analyst).clone();
    let run = liaison_service::fixtures::intel::small_notice(
        &f.node,
        &analyst,
        "CN-MPS",
        &[("203.0.113.10", "c2-server"), ("203.0.113.11", "phishing")],
        now,
    )
    .await
    .unwrap();
    let notice = f.node.intel_issued(&analyst, 1).await.unwrap().remove(0).notice.notice;
    f.node
        .intel_feedback(
            f.who("CN-MPS", Role::Officer),
            None,
            notice.items[0].item_id,
            liaison_intel::FeedbackStatus::Remediated,
            Some("服务器已下线".into()),
            now,
        )
        .await
        .unwrap();
    assert_eq!(run.items, 2);
    liaison_service::fixtures::intel::incoming_notice(
        &f.node,
        "de-bka",
        "DE-BKA",
        "CN-MPS",
        &[
            ("198.51.100.7", liaison_core::Tlp::Amber),
            ("198.51.100.8", liaison_core::Tlp::Green),
        ],
        now,
    )
    .await
    .unwrap();
    let base = common::serve(&f.node).await;

    let officer_p = Some(("FBI", Role::Officer));
    let (s, d) = (sent.request.id, kept.request.id);
    let pages = vec![
        page(None, "/login", "login"),
        page(officer_p, "/home", "home-officer"),
        page(officer_p, "/requests", "requests"),
        page(officer_p, format!("/requests/{s}"), "request-sent"),
        page(officer_p, format!("/requests/{d}"), "request-draft"),
        page(officer_p, "/requests/new", "draft-new"),
        page(officer_p, format!("/requests/{d}/edit"), "draft-edit"),
        page(officer_p, format!("/requests/{d}/send"), "draft-send"),
        page(officer_p, "/search?q=extortion", "search"),
        page(officer_p, "/inbox", "inbox"),
        page(officer_p, "/directory", "directory"),
        page(officer_p, "/cases", "cases"),
        page(officer_p, format!("/cases/{}", case.id), "case"),
        page(officer_p, "/intel", "intel"),
        page(officer_p, "/account", "account"),
        page(officer_p, "/requests/00000000-0000-7000-8000-000000000000", "not-found"),
        page(Some(("CN-MPS", Role::Desk)), "/home", "home-desk"),
        page(
            Some(("CN-MPS", Role::Desk)),
            "/requests?queue=unassigned&sort=due",
            "queue-desk",
        ),
        page(
            Some(("CN-MPS", Role::Desk)),
            format!("/requests/{s}"),
            "request-received",
        ),
        page(Some(("FBI", Role::Supervisor)), "/cooperation", "cooperation"),
        page(Some(("FBI", Role::Analyst)), "/intel", "intel-analyst"),
        page(Some(("CN-MPS", Role::Officer)), "/intel", "intel-partner"),
        page(Some(("FBI", Role::Admin)), "/admin/users", "users"),
        page(Some(("FBI", Role::Admin)), "/admin/units", "units"),
        page(Some(("FBI", Role::Admin)), "/admin/tokens", "tokens"),
        page(Some(("FBI", Role::Admin)), "/admin/peers", "peers"),
        page(Some(("FBI", Role::Admin)), "/directory", "directory-admin"),
        page(Some(("FBI", Role::Auditor)), "/ledger", "ledger"),
    ];

    let (driver, url) = chrome::start_driver(&driver_path).await;
    let c = chrome::connect(&url, &driver.profile).await;
    let mut problems = Vec::new();
    let mut visited = 0;
    let result = async {
        let mut signed_in: Option<Option<(&str, Role)>>;
        for lang in ["en", "zh-CN"] {
            signed_in = None;
            for p in &pages {
                if signed_in != Some(p.who) {
                    // Signed out, the language chosen, then signed in on the page (with the
                    // user's API token: this node takes them, common::serve).
                    c.goto(&format!("{base}/login")).await.unwrap();
                    c.delete_all_cookies().await.unwrap();
                    c.goto(&format!("{base}/lang?to={lang}&back=/login")).await.unwrap();
                    if let Some((agency, role)) = p.who {
                        c.execute("document.querySelector('details').open = true;", vec![])
                            .await
                            .unwrap();
                        c.find(fantoccini::Locator::Id("token"))
                            .await
                            .unwrap()
                            .send_keys(f.token(agency, role))
                            .await
                            .unwrap();
                        chrome::click(&c, "#login-token").await;
                    }
                    signed_in = Some(p.who);
                }
                c.goto(&format!("{base}{}", p.path)).await.unwrap();
                let shown = c
                    .execute("return document.documentElement.lang;", vec![])
                    .await
                    .unwrap();
                assert_eq!(shown.as_str(), Some(lang), "{} is in {lang}", p.path);
                if let Some(axe) = &axe {
                    for v in axe_violations(&c, axe).await {
                        problems.push(format!("{} [{lang}] {}: {v}", p.name, p.path));
                    }
                }
                if let Some(dir) = &shots {
                    let short = if lang == "en" { "en" } else { "zh" };
                    chrome::full_page(&c, dir, &format!("{}-{short}", p.name)).await;
                }
                visited += 1;
            }
        }
    }
    .await;
    let _ = c.close().await;
    drop(driver);
    let () = result;
    eprintln!(
        "{visited} pages visited; axe-core {}; {} serious or critical violations",
        if axe.is_some() { "ran on each" } else { "NOT RUN" },
        problems.len()
    );
    assert!(
        problems.is_empty(),
        "serious or critical accessibility violations:\n{}",
        problems.join("\n")
    );
}
