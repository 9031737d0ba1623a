//! Joint cases across nodes (issue #19, docs/cases.md), end to end: two `liaison` processes on
//! 127.0.0.1 with HTTPS and pinned certificates. us-fbi serves FBI (the lead) and US-SS;
//! cn-mps serves CN-MPS. The invitation travels to cn-mps, CN-MPS accepts there, links the
//! request FBI sent it, writes a note; FBI shares the request with the case, and US-SS, a
//! member that is no party to it, sees it only then. An action the home node refuses comes
//! back refused with its reason; a forged action for an agency the sender does not serve, and
//! a forged update about the case from a node that does not keep it, change nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use liaison_wire::{EnvelopeDraft, MessageId, NodeId, NodeKey, PayloadType};
use serde_json::{Value, json};
use std::time::Duration;

mod common;

use common::fed::FedNode as Node;

use common::fed::wait_for as wait;

fn has(v: &Value, s: &str) -> bool {
    v.to_string().contains(s)
}

fn outcomes(v: &Value) -> Vec<String> {
    v["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{} {}", a["kind"].as_str().unwrap(), a["outcome"].as_str().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)] // each test has its own runtime; the lock only orders tests
async fn a_case_spans_two_nodes_under_markings_and_consent() {
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
    let base = common::unique_dir(&format!("liaison-cases-test-{name}"));
    let mut us = Node::init_at(20, &base, "us-fbi", "FBI", "US", "America/New_York", db_us);
    let mut cn = Node::init_at(20, &base, "cn-mps", "CN-MPS", "CN", "Asia/Shanghai", db_cn);
    us.agency("US-SS", "US", "America/New_York");
    us.user("officer", "FBI", "officer");
    us.user("ss", "US-SS", "officer");
    cn.user("officer", "CN-MPS", "officer");
    cn.user("desk", "CN-MPS", "desk");
    let (pu, fu) = common::peer_file(&us.dir);
    let (pc, fc) = common::peer_file(&cn.dir);
    us.ok(&["peer", "add", pc.to_str().unwrap(), "--fingerprint", &fc]);
    cn.ok(&["peer", "add", pu.to_str().unwrap(), "--fingerprint", &fu]);
    us.start();
    cn.start();

    // FBI's request to CN-MPS, mirrored to cn-mps.
    let mut args = common::create_request_args("officer", "FBI-2026-0077", "SECRET-REQ subscriber of the C2 VPS");
    args.extend(["--tlp", "AMBER+STRICT"]);
    let r = us.json(&args);
    let rid = r["request"]["id"].as_str().or(r["id"].as_str()).unwrap().to_string();
    us.transition("officer", &rid, "submitted");
    wait("request at cn-mps", &us, &cn, || cn.try_request(&rid).is_some());

    // FBI opens the case and invites CN-MPS (on cn-mps) and US-SS (on us-fbi).
    let v = us.as_json(
        "officer",
        &[
            "case",
            "create",
            "--name",
            "Operation Lantern",
            "--reference",
            "JTF-7",
            "--invite",
            "CN-MPS",
            "--invite",
            "US-SS",
            "--tlp",
            "AMBER",
        ],
    );
    let case = v["id"].as_str().unwrap().to_string();
    assert_eq!(v["home"], Value::Null);
    wait("invitation at cn-mps", &us, &cn, || {
        cn.as_json("officer", &["case", "list"])
            .as_array()
            .is_some_and(|a| a.len() == 1)
    });
    let at_cn = cn.as_json("officer", &["case", "show", &case]);
    assert_eq!(at_cn["status"], "invited");
    assert_eq!(at_cn["home"], "us-fbi");
    assert_eq!(at_cn["marking"]["tlp"], "TLP:AMBER");
    assert_eq!(at_cn["members"].as_array().unwrap().len(), 3);

    // CN-MPS accepts on its own node: an action, applied by the home node.
    let v = cn.as_json("officer", &["case", "accept", &case]);
    assert_eq!(outcomes(&v), ["joined waiting"], "{v}");
    wait("accept applied", &us, &cn, || {
        cn.as_json("officer", &["case", "show", &case])["status"] == "active"
    });
    let at_cn = cn.as_json("officer", &["case", "show", &case]);
    assert_eq!(outcomes(&at_cn), ["joined applied"]);
    assert_eq!(
        us.as_json("officer", &["case", "show", &case])["members"][1]["status"],
        "active"
    );
    us.as_json("ss", &["case", "accept", &case]);

    // CN-MPS links the request it received (a party); it may not share it (not the originator).
    let e = cn.fails_as("officer", &["case", "share", &case, "--request", &rid]);
    assert!(e.contains("originator"), "{e}");
    cn.as_json("officer", &["case", "link", &case, "--request", &rid]);
    wait("link at us-fbi", &us, &cn, || {
        us.as_json("officer", &["case", "show", &case])["links"]
            .as_array()
            .is_some_and(|l| l.len() == 1)
    });
    let at_us = us.as_json("officer", &["case", "show", &case]);
    assert!(has(&at_us, "SECRET-REQ"), "a party sees it: {at_us}");
    let ss = us.as_json("ss", &["case", "show", &case]);
    assert!(!has(&ss, "SECRET-REQ") && !has(&ss, &rid), "US-SS is no party: {ss}");
    assert_eq!(ss["links"][0]["item"], Value::Null);

    // FBI, the originator, shares it: US-SS sees it now; the share reaches cn-mps too.
    us.as_json("officer", &["case", "share", &case, "--request", &rid]);
    assert!(has(&us.as_json("ss", &["case", "show", &case]), "SECRET-REQ"));
    wait("share at cn-mps", &us, &cn, || {
        cn.as_json("officer", &["case", "show", &case])["links"][0]["shared_seq"].is_u64()
    });

    // The case file: FBI's officer gets the request's evidence package in it; US-SS's officer,
    // who sees the shared request in the case but cannot read it here, gets none. Both verify
    // offline; a byte changed inside the nested package is found and named.
    let file = base.join("case-file.zip");
    let done = us.as_json("officer", &["case", "export", &case, "--out", file.to_str().unwrap()]);
    assert_eq!(
        (done["packages"].as_u64(), done["not_included"].as_u64()),
        (Some(1), Some(0)),
        "{done}"
    );
    let fp = done["fingerprint"].as_str().unwrap().to_string();
    let ok = us.json(&["case", "verify", file.to_str().unwrap(), "--trust", &fp]);
    assert_eq!(ok["valid"], true, "{ok}");
    assert_eq!(ok["packages"][0]["report"]["request_id"], rid.as_str());
    assert!(ok["packages"][0]["report"]["valid"].as_bool().unwrap());
    let untrusted = us.cmd(&["case", "verify", file.to_str().unwrap()]);
    assert_eq!(untrusted.status.code(), Some(7), "no trusted key: not valid");
    let ss_file = base.join("case-file-ss.zip");
    let ss_done = us.as_json("ss", &["case", "export", &case, "--out", ss_file.to_str().unwrap()]);
    assert_eq!(
        (ss_done["packages"].as_u64(), ss_done["not_included"].as_u64()),
        (Some(0), Some(1)),
        "{ss_done}"
    );
    assert!(us.json(&["case", "verify", ss_file.to_str().unwrap(), "--trust", &fp])["valid"] == true);
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.windows(12).position(|w| w == b"history.json").unwrap() + 200;
    bytes[at] ^= 0x20;
    let bad = base.join("case-file-bad.zip");
    std::fs::write(&bad, &bytes).unwrap();
    let o = us.cmd(&["--json", "case", "verify", bad.to_str().unwrap(), "--trust", &fp]);
    assert_eq!(o.status.code(), Some(7));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["valid"], false);
    assert!(
        report["problems"].to_string().contains("packages/0001-"),
        "the nested package is named: {report}"
    );

    // A note from cn-mps reaches the lead; a RED note from the lead naming cn-mps's officer
    // reaches only that user there.
    cn.as_json("officer", &["case", "note", &case, "NOTE-FROM-CN wallet cluster"]);
    wait("note at us-fbi", &us, &cn, || {
        has(&us.as_json("officer", &["case", "show", &case]), "NOTE-FROM-CN")
    });
    us.as_json(
        "officer",
        &[
            "case",
            "note",
            &case,
            "NOTE-RED informant",
            "--tlp",
            "RED",
            "--recipient",
            "CN-MPS:officer",
        ],
    );
    wait("red note at cn-mps", &us, &cn, || {
        has(&cn.as_json("officer", &["case", "show", &case]), "NOTE-RED")
    });
    assert!(!has(&cn.as_json("desk", &["case", "show", &case]), "NOTE-RED"));
    assert!(!has(&us.as_json("ss", &["case", "show", &case]), "NOTE-RED"));

    // Two actions queued while cn-mps's server is down: leave, then a note. The home node
    // applies the first and refuses the second, and says why.
    common::kill(&mut cn.child);
    cn.as_json("officer", &["case", "leave", &case, "--note", "handed over"]);
    cn.as_json("officer", &["case", "note", &case, "TOO-LATE"]);
    cn.start();
    wait("answers at cn-mps", &us, &cn, || {
        !outcomes(&cn.as_json("officer", &["case", "show", &case]))
            .iter()
            .any(|o| o.ends_with("waiting"))
    });
    let at_cn = cn.as_json("officer", &["case", "show", &case]);
    let o = outcomes(&at_cn);
    assert_eq!(o[..3], ["joined applied", "linked applied", "note applied"], "{o:?}");
    assert_eq!(o[3], "left applied", "{o:?}");
    assert!(o[4].starts_with("note refused: CN-MPS is not a member"), "{o:?}");
    assert_eq!(at_cn["status"], "left");
    assert!(!has(&us.as_json("officer", &["case", "show", &case]), "TOO-LATE"));
    // After leaving, nothing more reaches cn-mps.
    us.as_json("officer", &["case", "note", &case, "AFTER-LEFT"]);
    us.as_json("officer", &["case", "close", &case, "--note", "done"]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let at_cn = cn.as_json("officer", &["case", "show", &case]);
    assert!(!has(&at_cn, "AFTER-LEFT") && at_cn["state"] == "open", "{at_cn}");

    // Forged by cn-mps (with its own key): an action for US-SS, which it does not serve, and an
    // update about the case, which it does not keep. Received, not applied; nothing changes.
    let before = us.as_json("officer", &["case", "show", &case]);
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
    let now = jiff::Timestamp::now().to_string();
    let forged = [
        (
            PayloadType::CaseAction,
            json!({"case_id": case, "action": "0191d5a0-0000-7000-8000-000000000009", "at": now, "actor": "mallory",
                   "agency": "US-SS", "change": {"kind": "left", "agency": "US-SS"}}),
        ),
        (
            PayloadType::CaseUpdate,
            json!({"case_id": case, "events": [{"seq": 99, "at": now, "actor": "mallory", "agency": "FBI",
                   "change": {"kind": "closed"}}]}),
        ),
    ];
    for (i, (t, payload)) in forged.into_iter().enumerate() {
        let seq = last_seq + 1 + i as u64;
        let env = EnvelopeDraft {
            message_id: MessageId::new(),
            sender: NodeId::parse("cn-mps").unwrap(),
            recipient: NodeId::parse("us-fbi").unwrap(),
            link_seq: seq,
            created_at: jiff::Timestamp::now(),
            payload_type: t,
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
    assert_eq!(us.as_json("officer", &["case", "show", &case]), before);
    us.ok(&["ledger", "verify"]);
    cn.ok(&["ledger", "verify"]);
    us.ok(&["audit", "verify"]);
}

/// #19's three-node test: A (us-fbi, FBI) opens a case and invites B (cn-mps, CN-MPS) and C
/// (de-bka, DE-BKA); B joins, C declines. A links its requests to CN-MPS of every marking level
/// (RED is refused). B sees them all (a party); B cannot pass them to C: it may not share
/// them in A's case, and in a case of its own with C they reach C as their kind only. A then
/// invites C again, C joins, and sees exactly the one item A shared (its recorded consent).
/// Every node's view is checked secret by secret, and the case file of A and of B verifies
/// offline. SQLite (the two-node test above runs on both backends).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)] // each test has its own runtime; the lock only orders tests
async fn three_nodes_a_case_its_members_and_what_each_may_see() {
    let _serial = common::serial();
    let base = common::unique_dir("liaison-cases-three");
    let mut a = Node::init_at(20, &base, "us-fbi", "FBI", "US", "America/New_York", None);
    let mut b = Node::init_at(20, &base, "cn-mps", "CN-MPS", "CN", "Asia/Shanghai", None);
    let mut c = Node::init_at(20, &base, "de-bka", "DE-BKA", "DE", "Europe/Berlin", None);
    for (n, agency, users) in [
        (&a, "FBI", &[("officer", "officer")][..]),
        (&b, "CN-MPS", &[("officer", "officer"), ("desk", "desk")][..]),
        (&c, "DE-BKA", &[("officer", "officer")][..]),
    ] {
        for (u, role) in users {
            n.user(u, agency, role);
        }
    }
    for (x, y) in [(&a, &b), (&a, &c), (&b, &c)] {
        let (px, fx) = common::peer_file(&x.dir);
        let (py, fy) = common::peer_file(&y.dir);
        x.ok(&["peer", "add", py.to_str().unwrap(), "--fingerprint", &fy]);
        y.ok(&["peer", "add", px.to_str().unwrap(), "--fingerprint", &fx]);
    }
    a.start();
    b.start();
    c.start();

    // A's requests to CN-MPS, one per level, each with its own secret words.
    let mut ids = Vec::new();
    for level in ["CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"] {
        let secret = format!("SECRET-{}", level.replace('+', "-"));
        let summary = format!("{secret} subscriber of the C2 VPS");
        let mut args = common::create_request_args("officer", "FBI-2026-0100", &summary);
        args.extend(["--tlp", level]);
        if level == "RED" {
            args.extend(["--recipient", "desk"]);
        }
        let v = a.json(&args);
        let id = v["request"]["id"].as_str().or(v["id"].as_str()).unwrap().to_string();
        a.transition("officer", &id, "submitted");
        ids.push((level, secret, id));
    }
    for (_, _, id) in &ids {
        wait("request at cn-mps", &a, &b, || {
            b.try_request(id).is_some() || { b.cmd(&["--as", "desk", "request", "show", id]).status.success() }
        });
    }

    // The case: B joins, C declines.
    let v = a.as_json(
        "officer",
        &[
            "case",
            "create",
            "--name",
            "Triad",
            "--reference",
            "JTF-3",
            "--invite",
            "CN-MPS",
            "--invite",
            "DE-BKA",
            "--tlp",
            "AMBER",
        ],
    );
    let case = v["id"].as_str().unwrap().to_string();
    for n in [&b, &c] {
        wait("invitation", &a, n, || {
            n.cmd(&["--as", "officer", "case", "show", &case]).status.success()
        });
    }
    b.as_json("officer", &["case", "accept", &case]);
    c.as_json("officer", &["case", "decline", &case, "--note", "no jurisdiction"]);
    let member = |agency: &str| {
        a.as_json("officer", &["case", "show", &case])["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["agency"] == agency)
            .map(|m| m["status"].as_str().unwrap().to_string())
            .unwrap_or_default()
    };
    wait("answers at us-fbi", &a, &c, || {
        member("CN-MPS") == "active" && member("DE-BKA") == "declined"
    });
    wait("declined at de-bka", &a, &c, || {
        c.as_json("officer", &["case", "show", &case])["status"] == "declined"
    });
    assert!(has(&a.as_json("officer", &["case", "show", &case]), "no jurisdiction"));

    // A links its requests: every level but RED, which is refused; it shares the AMBER one.
    for (level, _, id) in &ids {
        let o = a.cmd(&["--json", "--as", "officer", "case", "link", &case, "--request", id]);
        assert_eq!(o.status.success(), *level != "RED", "linking the {level} request");
    }
    let amber = ids.iter().find(|(l, _, _)| *l == "AMBER").unwrap().2.clone();
    a.as_json("officer", &["case", "share", &case, "--request", &amber]);
    wait("links at cn-mps", &a, &b, || {
        b.as_json("officer", &["case", "show", &case])["links"]
            .as_array()
            .is_some_and(|l| l.len() == 4)
    });

    // B cannot pass A's items to C: no share in A's case (not the originator) ...
    for (level, _, id) in &ids[..4] {
        let e = b.fails_as("officer", &["case", "share", &case, "--request", id]);
        assert!(e.contains("originator"), "{level}: {e}");
    }
    // ... and in its own case with C they reach C as their kind only.
    let b_case = b.as_json(
        "officer",
        &[
            "case",
            "create",
            "--name",
            "Relay",
            "--reference",
            "MPS-3",
            "--invite",
            "DE-BKA",
        ],
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait("b's invitation at de-bka", &b, &c, || {
        c.cmd(&["--as", "officer", "case", "show", &b_case]).status.success()
    });
    c.as_json("officer", &["case", "accept", &b_case]);
    wait("c joined b's case", &b, &c, || {
        b.as_json("officer", &["case", "show", &b_case])["members"][1]["status"] == "active"
    });
    for (_, _, id) in &ids[..4] {
        b.as_json("officer", &["case", "link", &b_case, "--request", id]);
    }
    wait("b's links at de-bka", &b, &c, || {
        c.as_json("officer", &["case", "show", &b_case])["links"]
            .as_array()
            .is_some_and(|l| l.len() == 4)
    });

    // A case C's node never held, C invited only later: the invitation brings the log.
    let late = a.as_json(
        "officer",
        &["case", "create", "--name", "Later", "--reference", "JTF-3B"],
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    a.as_json("officer", &["case", "note", &late, "BEFORE-C note"]);
    a.as_json("officer", &["case", "invite", &late, "DE-BKA"]);
    wait("late invitation at de-bka", &a, &c, || {
        c.cmd(&["--as", "officer", "case", "show", &late]).status.success()
    });
    let at_c = c.as_json("officer", &["case", "show", &late]);
    assert_eq!(at_c["status"], "invited");
    assert!(!has(&at_c, "BEFORE-C"), "an invitee sees no content: {at_c}");

    // A invites C again; C joins and is sent the log as it may now see it.
    a.as_json("officer", &["case", "invite", &case, "DE-BKA"]);
    wait("second invitation", &a, &c, || {
        c.as_json("officer", &["case", "show", &case])["status"] == "invited"
    });
    c.as_json("officer", &["case", "accept", &case]);
    wait("c joined a's case", &a, &c, || {
        c.as_json("officer", &["case", "show", &case])["links"]
            .as_array()
            .is_some_and(|l| l.len() == 4)
    });

    // Exactly what each may see, secret by secret, on every node and by every path of a case.
    let secrets: Vec<&str> = ids.iter().map(|(_, s, _)| s.as_str()).collect();
    let view = |n: &Node, user: &str| {
        let mut all = String::new();
        for k in [&case, &b_case] {
            for args in [vec!["case", "show", k.as_str()], vec!["case", "stats", k.as_str()]] {
                let o = n.cmd(&[&["--json", "--as", user][..], &args[..]].concat());
                all.push_str(&String::from_utf8_lossy(&o.stdout));
            }
        }
        all.push_str(&n.as_json(user, &["case", "list"]).to_string());
        all
    };
    let at_a = view(&a, "officer");
    let at_b = view(&b, "officer");
    let at_c = view(&c, "officer");
    for s in &secrets {
        let linked = !s.ends_with("RED");
        assert_eq!(at_a.contains(s), linked, "A sees its linked items: {s}");
        assert_eq!(at_b.contains(s), linked, "B, a party, sees every linked item: {s}");
        assert_eq!(at_c.contains(s), *s == "SECRET-AMBER", "C sees only what A shared: {s}");
    }
    let c_view = c.as_json("officer", &["case", "show", &case]);
    let shown: Vec<_> = c_view["links"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| !l["item"].is_null())
        .collect();
    assert_eq!(shown.len(), 1, "{c_view}");
    assert_eq!(shown[0]["item"]["id"], amber.as_str());
    assert!(
        c_view["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["change"]["kind"] == "shared" && e["agency"] == "FBI"),
        "the consent is recorded: {c_view}"
    );
    // C cannot read the request itself: the case shows the item, not the request.
    assert!(!c.cmd(&["--as", "officer", "request", "show", &amber]).status.success());

    // A shares one more while C is a member: C's node had it as its kind only and now gets the
    // link whole, once (four links still, two of them shown).
    let green = ids.iter().find(|(l, _, _)| *l == "GREEN").unwrap().2.clone();
    a.as_json("officer", &["case", "share", &case, "--request", &green]);
    wait("second share at de-bka", &a, &c, || {
        has(&c.as_json("officer", &["case", "show", &case]), "SECRET-GREEN")
    });
    let c_view = c.as_json("officer", &["case", "show", &case]);
    let links = c_view["links"].as_array().unwrap();
    assert_eq!(links.len(), 4, "{c_view}");
    assert_eq!(links.iter().filter(|l| !l["item"].is_null()).count(), 2, "{c_view}");
    let stats = c.as_json("officer", &["case", "stats", &case]);
    assert_eq!(
        (stats["requests"].as_u64(), stats["withheld"].as_u64()),
        (Some(2), Some(2)),
        "{stats}"
    );

    // The case files of A and B verify offline with their node's key.
    for (n, name) in [(&a, "a"), (&b, "b")] {
        let file = base.join(format!("case-file-{name}.zip"));
        let done = n.as_json("officer", &["case", "export", &case, "--out", file.to_str().unwrap()]);
        assert_eq!(done["packages"].as_u64(), Some(4), "{name}: {done}");
        let fp = done["fingerprint"].as_str().unwrap().to_string();
        let r = n.json(&["case", "verify", file.to_str().unwrap(), "--trust", &fp]);
        assert_eq!(r["valid"], true, "{name}: {r}");
    }
    let file = base.join("case-file-c.zip");
    let done = c.as_json("officer", &["case", "export", &case, "--out", file.to_str().unwrap()]);
    assert_eq!(
        (done["packages"].as_u64(), done["not_included"].as_u64()),
        (Some(0), Some(4)),
        "{done}"
    );
    for n in [&a, &b, &c] {
        n.ok(&["ledger", "verify"]);
        n.ok(&["audit", "verify"]);
    }
}
