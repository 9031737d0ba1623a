//! Network clean-up end to end: the `liaison intel` commands on a data directory made by
//! `liaison init`, and the /api/v1/intel routes in process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::path::{Path, PathBuf};

mod common;

fn tmp(tag: &str) -> PathBuf {
    common::unique_dir(&format!("liaison-intel-{tag}"))
}

use common::{cmd as liaison, ok_json};

/// A data directory with the FBI node, CN-CNCERT as a partner agency and one user each,
/// plus a generated feed (2,000 rows, 5 malformed) and MMDB.
fn setup(tag: &str) -> (PathBuf, PathBuf, PathBuf, String) {
    let base = tmp(tag);
    let dir = base.join("node");
    let init = ok_json(liaison(&dir).arg("init").args(common::FBI_AGENCY));
    let token = init["admin_token"].as_str().unwrap().to_string();
    liaison(&dir)
        .args([
            "directory",
            "add-agency",
            "CN-CNCERT",
            "--name",
            "CNCERT/CC",
            "--jurisdiction",
            "CN",
            "--kind",
            "cert",
            "--time-zone",
            "Asia/Shanghai",
        ])
        .assert()
        .success();
    for (user, agency, role) in [("cncert", "CN-CNCERT", "officer"), ("fbi-analyst", "FBI", "analyst")] {
        liaison(&dir)
            .args(["user", "add", user, "--agency", agency, "--role", role])
            .assert()
            .success();
    }
    let feed = base.join("feed.csv");
    let mmdb = base.join("world.mmdb");
    let stats = liaison_intel::generate_feed(11, 2000, std::fs::File::create(&feed).unwrap()).unwrap();
    assert_eq!(stats.malformed, 5);
    liaison_intel::generate_mmdb(
        11,
        liaison_intel::MmdbLayout::GeoLite2,
        std::fs::File::create(&mmdb).unwrap(),
    )
    .unwrap();
    (dir, feed, mmdb, token)
}

fn ingest(dir: &Path, feed: &Path, mmdb: &Path) -> Value {
    ok_json(
        liaison(dir)
            .args(["intel", "ingest"])
            .arg(feed)
            .args(["--format", "liaison", "--feed", "test botnet feed", "--mmdb"])
            .arg(mmdb)
            .args(["--route", "CN=CN-CNCERT", "--route", "US=FBI"]),
    )
}

#[test]
fn cli_ingest_notices_feedback_stats() {
    let (dir, feed, mmdb, _) = setup("cli");

    let r = ingest(&dir, &feed, &mmdb);
    assert_eq!(r["rows"], 2000);
    assert_eq!(r["quarantined"], 5);
    let q = &r["sources"][0]["quarantine"];
    assert_eq!(q.as_array().unwrap().len(), 5);
    assert!(q[0]["file"].as_str().unwrap().ends_with("feed.csv"));
    assert!(q[0]["line"].as_u64().unwrap() > 1);
    let new = r["new_indicators"].as_u64().unwrap();
    assert!(new > 50, "{r}");
    assert_eq!(r["indicators_total"].as_u64().unwrap(), new);
    assert_eq!(r["persisted"].as_u64().unwrap(), new);
    assert!(r["routed"].as_u64().unwrap() > 0 && r["unroutable"].as_u64().unwrap() > 0);

    // The same feed again: nothing new, everything deduplicated or re-sighted.
    let again = ingest(&dir, &feed, &mmdb);
    assert_eq!(again["new_indicators"], 0);
    assert_eq!(again["indicators_total"].as_u64().unwrap(), new);

    // Table output has the summary and quarantined file:line reasons.
    let out = liaison(&dir)
        .args(["intel", "ingest"])
        .arg(&feed)
        .args(["--format", "liaison", "--mmdb"])
        .arg(&mmdb)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("quarantined") && text.contains("feed.csv:"), "{text}");

    // Issue notices (admin) and list them.
    let issued = ok_json(liaison(&dir).args(["intel", "notices", "--issue"]));
    let partners: Vec<&str> = issued["issued"]["notices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["partner"].as_str().unwrap())
        .collect();
    assert_eq!(partners, ["CN-CNCERT", "FBI"]);
    // A second run the same day works too (the last day before the end of today).
    ok_json(liaison(&dir).args(["intel", "notices", "--issue"]));
    let cn = ok_json(liaison(&dir).args(["--as", "cncert", "intel", "notices"]));
    assert_eq!(cn.as_array().unwrap().len(), 1, "a partner sees only its own notices");
    assert_eq!(cn[0]["partner"], "CN-CNCERT");
    let item = cn[0]["items"][0]["item_id"].as_str().unwrap().to_string();
    // A partner cannot read another partner's notices.
    liaison(&dir)
        .args(["--as", "cncert", "intel", "notices", "--partner", "FBI"])
        .assert()
        .code(6);

    // Feedback: only the partner the item was sent to.
    liaison(&dir)
        .args(["--as", "fbi-analyst", "intel", "feedback", &item, "remediated"])
        .assert()
        .code(6);
    let fb = ok_json(liaison(&dir).args([
        "--as",
        "cncert",
        "intel",
        "feedback",
        &item,
        "remediated",
        "--note",
        "host cleaned",
    ]));
    assert_eq!(fb["status"], "remediated");
    liaison(&dir)
        .args(["--as", "cncert", "intel", "feedback", &item, "maybe"])
        .assert()
        .code(3);

    // CSV export.
    let out = liaison(&dir)
        .args(["intel", "notices", "--partner", "CN-CNCERT", "--format", "csv"])
        .output()
        .unwrap();
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(csv.starts_with("notice_id,partner,"), "{csv}");
    assert!(csv.contains(&item));

    // Statistics: C2 servers with victims in CN, by country of the C2.
    let s = ok_json(liaison(&dir).args([
        "--as",
        "fbi-analyst",
        "intel",
        "stats",
        "--by",
        "country",
        "--class",
        "botnet-c2",
        "--victim-country",
        "CN",
    ]));
    let rows = s["rows"].as_array().unwrap();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r["victims"].as_u64().unwrap() > 0));
    liaison(&dir)
        .args(["--as", "cncert", "intel", "stats", "--by", "country"])
        .assert()
        .code(6);
    liaison(&dir)
        .args(["intel", "stats", "--by", "planet"])
        .assert()
        .code(3);
}

/// Indicators counted by `intel stats` for `user` (all groups by classification).
fn counted(dir: &Path, user: &str) -> u64 {
    let s = ok_json(liaison(dir).args(["--as", user, "intel", "stats", "--by", "classification"]));
    common::stats_total(&s)
}

/// Statistics count only what concerns the reader's agency (docs/markings.md): what it
/// ingested on this node, and what was put on a notice to it. Two agencies served by one
/// node are two organisations: neither sees the other's counts.
#[test]
fn stats_are_scoped_to_the_readers_agency() {
    let (dir, feed, mmdb, _) = setup("scoped");
    liaison(&dir)
        .args([
            "directory",
            "add-agency",
            "US-SS",
            "--name",
            "United States Secret Service",
            "--jurisdiction",
            "US",
            "--kind",
            "police",
            "--time-zone",
            "America/New_York",
        ])
        .assert()
        .success();
    for (user, agency) in [("usss-analyst", "US-SS"), ("cn-analyst", "CN-CNCERT")] {
        liaison(&dir)
            .args(["user", "add", user, "--agency", agency, "--role", "analyst"])
            .assert()
            .success();
    }
    let r = ingest(&dir, &feed, &mmdb);
    let new = r["new_indicators"].as_u64().unwrap();
    assert_eq!(counted(&dir, "fbi-analyst"), new, "FBI's own ingest counts for FBI");
    assert_eq!(
        counted(&dir, "usss-analyst"),
        0,
        "another agency of the same node sees none of it"
    );
    assert_eq!(counted(&dir, "cn-analyst"), 0, "nothing was sent to CN-CNCERT yet");

    // Put on a notice to CN-CNCERT: then they count for CN-CNCERT, and only those.
    ok_json(liaison(&dir).args(["intel", "notices", "--issue"]));
    let cn = ok_json(liaison(&dir).args(["--as", "cncert", "intel", "notices"]));
    let items = cn[0]["items"].as_array().unwrap().len() as u64;
    assert!(items > 0);
    assert_eq!(counted(&dir, "cn-analyst"), items);

    // US-SS ingests three rows, one of them a host FBI's feed has: three count for US-SS, and
    // FBI's count is unchanged.
    let bytes = std::fs::read(&feed).unwrap();
    let csv = String::from_utf8_lossy(&bytes);
    let known = csv
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(1))
        .find(|v| v.parse::<std::net::Ipv4Addr>().is_ok())
        .unwrap()
        .to_string();
    let small = dir.join("usss.csv");
    std::fs::write(
        &small,
        format!(
            "time_source,indicator,kind,port,classification,malware,victim_count,victim_country,confidence,tlp\n\
             2026-11-30T10:00:00Z,{known},,443,c2-server,Emotet,3,US,80,TLP:AMBER\n\
             2026-11-30T10:00:00Z,198.51.100.77,,443,c2-server,Emotet,3,US,80,TLP:AMBER\n\
             2026-11-30T10:00:00Z,phish.example.net,,,phishing,,,US,70,TLP:AMBER\n"
        ),
    )
    .unwrap();
    liaison(&dir)
        .args(["user", "add", "usss-admin", "--agency", "US-SS", "--role", "admin"])
        .assert()
        .success();
    let r2 = ok_json(
        liaison(&dir)
            .args(["--as", "usss-admin", "intel", "ingest"])
            .arg(&small)
            .args(["--format", "liaison", "--feed", "usss"]),
    );
    assert_eq!(r2["new_indicators"], 2, "{r2}");
    assert_eq!(counted(&dir, "usss-analyst"), 3);
    assert_eq!(counted(&dir, "fbi-analyst"), new);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_ingest_issue_feedback_stats() {
    let (dir, feed, mmdb, admin) = setup("api");
    let cn_token = ok_json(liaison(&dir).args(["token", "create", "cncert"]));
    let cn_token = cn_token["token"].as_str().unwrap().to_string();

    let legal = liaison_service::legal::Legal::load(&dir.join("rules")).unwrap();
    let url = format!("sqlite://{}", dir.join("liaison.db").display());
    let mut cfg = liaison_intel::IntelConfig::default();
    cfg.enrich.mmdb = vec![mmdb];
    cfg.routing.routes = vec![liaison_intel::RouteRule::country(
        "CN-CNCERT",
        liaison_core::CountryCode::parse("CN").unwrap(),
    )];
    let node = liaison_service::Node::open(&url, Default::default(), legal)
        .await
        .unwrap()
        .with_intel_config(cfg);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = liaison_server::api::router(node);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();

    let body = std::fs::read(&feed).unwrap();
    let r: Value = http
        .post(format!(
            "{base}/api/v1/intel/ingest?format=liaison&feed=upload&wait=true"
        ))
        .bearer_auth(&admin)
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["quarantined"], 5, "{r}");
    assert!(r["new_indicators"].as_u64().unwrap() > 50);

    // Unknown format, unknown parameter: 400 with the field named.
    let bad = http
        .post(format!("{base}/api/v1/intel/ingest?format=xml"))
        .bearer_auth(&admin)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let p: Value = bad.json().await.unwrap();
    assert_eq!(p["errors"][0]["field"], "format");

    // A partner may not ingest or issue.
    let denied = http
        .post(format!("{base}/api/v1/intel/notices/issue"))
        .bearer_auth(&cn_token)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
    let issued = http
        .post(format!("{base}/api/v1/intel/notices/issue"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(issued.status(), 201);
    let issued: Value = issued.json().await.unwrap();
    assert_eq!(issued["notices"][0]["partner"], "CN-CNCERT");

    let notices: Value = http
        .get(format!("{base}/api/v1/intel/notices?partner=CN-CNCERT"))
        .bearer_auth(&cn_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let item = notices[0]["items"][0]["item_id"].as_str().unwrap().to_string();
    let csv = http
        .get(format!("{base}/api/v1/intel/notices?format=csv"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.contains(&item));

    let fb = http
        .post(format!("{base}/api/v1/intel/feedback"))
        .bearer_auth(&cn_token)
        .json(&json!({"partner": "CN-CNCERT", "item": item, "status": "false-positive", "note": "sinkhole"}))
        .send()
        .await
        .unwrap();
    assert_eq!(fb.status(), 201, "{}", fb.text().await.unwrap());
    let wrong = http
        .post(format!("{base}/api/v1/intel/feedback"))
        .bearer_auth(&admin)
        .json(&json!({"item": item, "status": "remediated"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403, "the admin's agency (FBI) did not get this item");

    let stats: Value = http
        .get(format!(
            "{base}/api/v1/intel/stats?by=country&class=botnet-c2&victim_country=CN"
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!stats["rows"].as_array().unwrap().is_empty(), "{stats}");
    let denied = http
        .get(format!("{base}/api/v1/intel/stats?by=country"))
        .bearer_auth(&cn_token)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
}
