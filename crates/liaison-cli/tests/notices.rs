//! Clean-up notices over federation (issue #14 part 3), end to end: two `liaison` processes
//! (us-fbi serving FBI and US-SS, cn-mps serving CN-MPS and CN-CNCERT) on 127.0.0.1, HTTPS
//! with pinned certificates, on SQLite. A notice issued at us-fbi for CN-MPS reaches cn-mps;
//! CN-MPS answers it item by item there; the answers reach us-fbi, which shows the
//! time-to-remediation; a reappearance travels as an update; other agencies on either node see
//! nothing; a forged answer about an item never sent to that peer is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use liaison_wire::{EnvelopeDraft, MessageId, NodeId, NodeKey, PayloadType};
use serde_json::{Value, json};

use std::time::Duration;

mod common;

use common::fed::FedNode as Node;

use common::fed::wait_for as wait;

fn items(notice: &Value) -> Vec<Value> {
    notice["items"].as_array().unwrap().clone()
}

fn item_of<'a>(items: &'a [Value], value: &str) -> &'a Value {
    items.iter().find(|i| i["value"] == value).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)] // each test has its own runtime; the lock only orders tests
async fn notice_travels_is_answered_item_by_item_and_scoped() {
    let _serial = common::serial();
    scenario("sqlite", None, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)] // each test has its own runtime; the lock only orders tests
async fn the_same_on_postgresql() {
    let _serial = common::serial();
    let (Some(a), Some(b)) = (
        liaison_service::fixtures::postgres_url().await,
        liaison_service::fixtures::postgres_url().await,
    ) else {
        return;
    };
    scenario("pg", Some(&a), Some(&b)).await;
}

async fn scenario(name: &str, db_us: Option<&str>, db_cn: Option<&str>) {
    let base = common::unique_dir(&format!("liaison-notices-test-{name}"));
    let mut us = Node::init_at(27, &base, "us-fbi", "FBI", "US", "America/New_York", db_us);
    let mut cn = Node::init_at(27, &base, "cn-mps", "CN-MPS", "CN", "Asia/Shanghai", db_cn);
    us.agency("US-SS", "US", "America/New_York");
    cn.agency("CN-CNCERT", "CN", "Asia/Shanghai");
    us.user("analyst", "FBI", "analyst");
    us.user("third", "US-SS", "analyst");
    cn.user("officer", "CN-MPS", "officer");
    cn.user("auditor", "CN-MPS", "auditor");
    cn.user("cert", "CN-CNCERT", "officer");
    cn.user("boss", "CN-MPS", "admin");
    let (pu, fu) = common::peer_file(&us.dir);
    let (pc, fc) = common::peer_file(&cn.dir);
    us.ok(&["peer", "add", pc.to_str().unwrap(), "--fingerprint", &fc]);
    cn.ok(&["peer", "add", pu.to_str().unwrap(), "--fingerprint", &fu]);
    us.start();
    cn.start();

    // Four hosts in CN-MPS's network, one in US-SS's (a local partner: nothing is sent).
    let f1 = base.join("feed-1.csv");
    let ips = ["198.51.100.10", "198.51.100.11", "198.51.100.12", "198.51.100.13"];
    let tlps = ["TLP:GREEN", "TLP:AMBER", "TLP:AMBER+STRICT", "TLP:GREEN"];
    let mut rows: Vec<(&str, &str)> = ips.iter().copied().zip(tlps).collect();
    rows.push(("203.0.113.5", "TLP:CLEAR"));
    common::fed::feed(&f1, &rows, jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1));
    let routes = [
        "--format",
        "liaison",
        "--route",
        "198.51.100.0/24=CN-MPS",
        "--route",
        "203.0.113.0/24=US-SS",
    ];
    let mut ingest = vec!["intel", "ingest", f1.to_str().unwrap()];
    ingest.extend(routes);
    us.as_json("analyst", &ingest);

    // Only this node's agencies' operators issue; the notice records its issuer (FBI).
    // A PAP that is not one is refused by name; the analyst asks for passive checks only.
    let e = us.fails_as("analyst", &["intel", "notices", "--issue", "--pap", "TLP:RED"]);
    assert!(e.contains("--pap") && e.contains("'TLP:RED' is not a PAP level"), "{e}");
    let issued = us.as_json("analyst", &["intel", "notices", "--issue", "--pap", "amber"]);
    let ours: Vec<&Value> = issued["notices"].as_array().unwrap().iter().collect();
    assert_eq!(ours.len(), 2, "{issued}");
    let to_cn = ours.iter().find(|n| n["partner"] == "CN-MPS").unwrap();
    assert_eq!(to_cn["issuer"], "FBI");
    assert_eq!(to_cn["tlp"], "TLP:AMBER+STRICT", "the strictest item's marking");
    assert_eq!(to_cn["pap"], "PAP:AMBER", "the PAP the issuer chose");
    let notice_id = to_cn["id"].as_str().unwrap().to_string();
    let us_ss_item = ours.iter().find(|n| n["partner"] == "US-SS").unwrap()["items"][0]["item_id"]
        .as_str()
        .unwrap()
        .to_string();

    // The notice reaches cn-mps, for CN-MPS only, with its marking and issuer.
    wait("notice at cn-mps", &us, &cn, || {
        cn.as_json("officer", &["intel", "inbox"])
            .as_array()
            .is_some_and(|a| !a.is_empty())
    });
    let inbox = cn.as_json("officer", &["intel", "inbox"]);
    assert_eq!(inbox.as_array().unwrap().len(), 1, "{inbox}");
    let n = &inbox[0];
    assert_eq!(n["id"], notice_id.as_str());
    assert_eq!(
        (n["issuer"].as_str(), n["sender"].as_str()),
        (Some("FBI"), Some("us-fbi"))
    );
    assert_eq!(n["partner"], "CN-MPS");
    assert_eq!(n["tlp"], "TLP:AMBER+STRICT");
    assert_eq!(n["pap"], "PAP:AMBER", "the PAP travels with the notice");
    let table = cn.ok(&["--as", "officer", "intel", "inbox"]);
    assert!(table.contains("PAP:AMBER: passive cross-checks only"), "{table}");
    let got = items(n);
    assert_eq!(got.len(), 4);
    for (ip, tlp) in ips.iter().zip(tlps) {
        assert_eq!(item_of(&got, ip)["tlp"], tlp, "each item keeps its marking");
        assert_eq!(item_of(&got, ip)["status"], "new");
    }
    // A non-addressed agency on cn-mps sees nothing and cannot answer; CN-MPS's auditor reads
    // but does not answer.
    assert_eq!(cn.as_json("cert", &["intel", "inbox"]), json!([]));
    let first = item_of(&got, ips[0])["item_id"].as_str().unwrap().to_string();
    let e = cn.fails_as("cert", &["intel", "answer", &first, "remediated"]);
    assert!(e.contains("not_found") || e.contains("not found"), "{e}");
    assert_eq!(cn.as_json("auditor", &["intel", "inbox"]).as_array().unwrap().len(), 1);
    let e = cn.fails_as("auditor", &["intel", "answer", &first, "remediated"]);
    assert!(e.contains("forbidden") || e.contains("not allowed"), "{e}");

    // The same through the API: the other agency's list is empty, an admin (no request
    // reading) is refused, and CN-MPS's officer answers the first item there.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let cn_api = cn.api();
    let get = |base: &str, path: &str, token: &str| {
        let req = http.get(format!("{base}{path}")).bearer_auth(token);
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.text().await.unwrap())
        }
    };
    let (st, body) = get(&cn_api, "/api/v1/intel/inbox", &cn.token("cert")).await;
    assert_eq!((st, body.as_str()), (200, "[]"));
    let (st, _) = get(&cn_api, "/api/v1/intel/inbox", &cn.token("boss")).await;
    assert_eq!(st, 403);
    let r = http
        .post(format!("{cn_api}/api/v1/intel/inbox/answer"))
        .bearer_auth(cn.token("officer"))
        .json(&json!({"item": first, "status": "remediated", "note": "remediated by CN-MPS"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let r: Value = r.json().await.unwrap();
    assert_eq!(
        (r["sent_to"].as_str(), r["status"].as_str()),
        (Some("us-fbi"), Some("remediated"))
    );

    // CN-MPS answers each other item once, each status once, on its own node.
    let statuses = ["remediated", "not-found", "disputed", "false-positive"];
    for (ip, st) in ips.iter().zip(statuses).skip(1) {
        let id = item_of(&got, ip)["item_id"].as_str().unwrap().to_string();
        let r = cn.as_json(
            "officer",
            &["intel", "answer", &id, st, "--note", &format!("{st} by CN-MPS")],
        );
        assert_eq!(
            (r["sent_to"].as_str(), r["issuer"].as_str()),
            (Some("us-fbi"), Some("FBI")),
            "{r}"
        );
    }
    let answered = items(&cn.as_json("officer", &["intel", "inbox"])[0]);
    for (ip, st) in ips.iter().zip(statuses) {
        assert_eq!(item_of(&answered, ip)["answer"], st);
    }

    // The answers reach us-fbi and are applied as the partner's feedback: time-to-remediation.
    wait("answers at us-fbi", &us, &cn, || {
        let r = us.as_json("analyst", &["intel", "remediation"]);
        r["rows"].as_array().is_some_and(|rows| {
            rows.iter()
                .any(|x| x["partner"] == "CN-MPS" && x["remediated"] == 1 && x["false_positive"] == 1)
        })
    });
    let rem = us.as_json("analyst", &["intel", "remediation"]);
    let row = rem["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["partner"] == "CN-MPS")
        .unwrap()
        .clone();
    assert_eq!(row["classification"], "c2-server", "{rem}");
    assert_eq!(
        (
            row["notified"].as_u64(),
            row["not_found"].as_u64(),
            row["disputed"].as_u64()
        ),
        (Some(4), Some(1), Some(1)),
        "{rem}"
    );
    assert!(row["median_ttr_secs"].as_i64().is_some_and(|t| t >= 0), "{rem}");
    let table = us.ok(&["--as", "analyst", "intel", "remediation"]);
    assert!(table.contains("CN-MPS") && table.contains("c2-server"), "{table}");

    // Through the API at us-fbi: the analyst's export of FBI's notices (CSV, for partners
    // without a node) and time-to-remediation; the third agency's analyst gets an empty scope.
    let us_api = us.api();
    let analyst = us.token("analyst");
    let (st, csv) = get(&us_api, "/api/v1/intel/notices?partner=CN-MPS&format=csv", &analyst).await;
    assert_eq!(st, 200);
    assert_eq!(csv.lines().filter(|l| l.contains("CN-MPS")).count(), 4, "{csv}");
    let (st, rem) = get(&us_api, "/api/v1/intel/remediation", &analyst).await;
    assert_eq!(st, 200);
    assert!(rem.contains("\"CN-MPS\""), "{rem}");
    let third = us.token("third");
    let (st, body) = get(&us_api, "/api/v1/intel/notices?partner=CN-MPS", &third).await;
    assert_eq!((st, body.as_str()), (200, "[]"));
    let (st, body) = get(&us_api, "/api/v1/intel/notices?partner=CN-MPS&format=csv", &third).await;
    assert_eq!(st, 200);
    assert_eq!(body.lines().count(), 1, "the header only: {body}");
    let (st, body) = get(&us_api, "/api/v1/intel/remediation", &third).await;
    assert_eq!(st, 200);
    assert!(!body.contains("CN-MPS"), "{body}");

    // A third agency's analyst on us-fbi sees no notice and no statistics of FBI's.
    assert_eq!(
        us.as_json("third", &["intel", "notices", "--partner", "CN-MPS"]),
        json!([])
    );
    let own = us.as_json("third", &["intel", "notices"]);
    assert!(own.as_array().unwrap().iter().all(|n| n["partner"] == "US-SS"), "{own}");
    let rem3 = us.as_json("third", &["intel", "remediation"]);
    assert!(
        rem3["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["partner"] != "CN-MPS"),
        "{rem3}"
    );

    // The remediated host is seen again: the next run marks it reappeared and sends it as an
    // update, which cn-mps shows as a reappearance.
    std::thread::sleep(Duration::from_millis(1100));
    let f2 = base.join("feed-2.csv");
    common::fed::feed(&f2, &[(ips[0], "TLP:GREEN")], jiff::Timestamp::now());
    let mut ingest = vec!["intel", "ingest", f2.to_str().unwrap()];
    ingest.extend(routes);
    let r = us.as_json("analyst", &ingest);
    assert_eq!(r["reappeared"], 1, "{r}");
    us.as_json("analyst", &["intel", "notices", "--issue"]);
    wait("reappearance at cn-mps", &us, &cn, || {
        let inbox = cn.as_json("officer", &["intel", "inbox"]);
        inbox.as_array().unwrap().iter().any(|n| {
            items(n)
                .iter()
                .any(|i| i["value"] == ips[0] && i["status"] == "reappeared")
        })
    });
    let inbox = cn.as_json("officer", &["intel", "inbox"]);
    let re = inbox
        .as_array()
        .unwrap()
        .iter()
        .flat_map(items)
        .find(|i| i["value"] == ips[0] && i["status"] == "reappeared")
        .unwrap();
    assert!(!re["detail"]["remediated_at"].is_null(), "{re}");
    assert!(!re["detail"]["previous_item"].is_null(), "{re}");
    let page = cn.ok(&["--as", "officer", "intel", "inbox"]);
    assert!(page.contains("reappeared"), "{page}");

    // A forged answer, signed by cn-mps, about an item us-fbi never sent to CN-MPS (US-SS's
    // item) and one about an unknown item: received, recorded as not applied, nothing changes.
    let feedback_before = us.as_json("analyst", &["intel", "remediation"]);
    common::kill(&mut cn.child);
    let msgs = us.json(&["federation", "messages"]);
    let last_seq = msgs["inbox"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["sender"] == "cn-mps")
        .map(|m| m["link_seq"].as_u64().unwrap())
        .max()
        .unwrap();
    let key = NodeKey::load(&cn.key_file()).unwrap();
    let client = us.pinned_client();
    let url = format!("https://127.0.0.1:{}/federation/v1/envelopes", us.port);
    let forged = [
        json!({"notice_id": notice_id, "item_id": us_ss_item, "partner": "CN-MPS", "status": "false-positive",
               "note": null, "at": jiff::Timestamp::now().to_string(), "actor": "mallory"}),
        json!({"notice_id": notice_id, "item_id": "0191d5a0-0000-7000-8000-000000000001", "partner": "CN-MPS", "status": "remediated",
               "note": null, "at": jiff::Timestamp::now().to_string(), "actor": "mallory"}),
    ];
    for (i, payload) in forged.into_iter().enumerate() {
        let seq = last_seq + 1 + i as u64;
        let env = EnvelopeDraft {
            message_id: MessageId::new(),
            sender: NodeId::parse("cn-mps").unwrap(),
            recipient: NodeId::parse("us-fbi").unwrap(),
            link_seq: seq,
            created_at: jiff::Timestamp::now(),
            payload_type: PayloadType::CleanupStatus,
            payload,
        }
        .sign(&key)
        .unwrap();
        let r = client.post(&url).body(env.to_bytes().unwrap()).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap_or_default());
        let msgs = us.json(&["federation", "messages"]);
        let row = msgs["inbox"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["link_seq"].as_u64() == Some(seq) && m["sender"] == "cn-mps")
            .unwrap()
            .clone();
        let outcome = row["outcome"].as_str().unwrap();
        assert!(outcome.starts_with("not applied:"), "{outcome}");
    }
    assert_eq!(us.as_json("analyst", &["intel", "remediation"]), feedback_before);
    let ss = us.as_json("third", &["intel", "notices"]);
    assert!(ss.as_array().unwrap().iter().all(|n| n["partner"] == "US-SS"), "{ss}");
    // Every notice and answer is a ledger leaf on both sides, and the ledgers verify.
    us.ok(&["ledger", "verify"]);
    cn.ok(&["ledger", "verify"]);
}
