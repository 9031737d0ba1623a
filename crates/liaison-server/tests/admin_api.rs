#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The administration routes over a real socket: what an operator does in the CLI (users,
//! tokens, peers, ledger, key rotation), an authorised client does through the API with the
//! same role checks.

mod common;

use jiff::Timestamp;
use liaison_core::Role;
use liaison_service::federation::IdentityParams;
use liaison_service::fixtures;
use liaison_service::setup::{NewUser, NodeSetup};
use liaison_wire::NodeId;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut rq = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            rq = rq.json(&b);
        }
        let resp = rq.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}

fn key_dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("liaison-admin-api-{name}-{}", uuid_like()))
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_tokens_are_administered_through_the_api() {
    let f = common::fixture(fixtures::sqlite_node().await.unwrap()).await;
    let api = Api {
        base: common::serve(&f.node).await,
        http: reqwest::Client::new(),
    };
    let admin = f.token("FBI", Role::Admin).to_string();
    let officer = f.token("FBI", Role::Officer).to_string();
    let analyst = f.token("FBI", Role::Analyst).to_string();

    // Admins list every token; others only their own.
    let (s, all) = api.call(Method::GET, "/api/v1/tokens", &admin, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(all.as_array().unwrap().len(), 2 * Role::ALL.len());
    let (s, own) = api.call(Method::GET, "/api/v1/tokens", &officer, None).await;
    assert_eq!(s, StatusCode::OK, "{own}");
    let own = own.as_array().unwrap();
    assert_eq!(own.len(), 1);
    let officer_token_id = own[0]["id"].as_str().unwrap().to_string();
    let analyst_token_id = all
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["user"] == json!(f.who("FBI", Role::Analyst).user))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Another user's token is "not found" for a non-admin (ids do not leak); an admin revokes it.
    let path = format!("/api/v1/tokens/{analyst_token_id}");
    let (s, v) = api.call(Method::DELETE, &path, &officer, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, _) = api.call(Method::DELETE, &path, &admin, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = api.call(Method::GET, "/api/v1/me", &analyst, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a revoked token is refused at once");
    let (s, _) = api.call(Method::DELETE, &path, &admin, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "already revoked");

    // A token a user issues for themselves is a child of the one they used: it expires no
    // later (the fixture's tokens last 24 hours; 366 days were asked for), and revoking the
    // parent revokes it and its own children.
    let desk_t = f.token("FBI", Role::Desk).to_string();
    let (s, child) = api
        .call(
            Method::POST,
            "/api/v1/tokens",
            &desk_t,
            Some(json!({"username": "fbi.desk", "days": 366})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{child}");
    let parent_expires: jiff::Timestamp = all
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["user"] == json!(f.who("FBI", Role::Desk).user))
        .unwrap()["expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let child_expires: jiff::Timestamp = child["info"]["expires_at"].as_str().unwrap().parse().unwrap();
    assert!(child_expires <= parent_expires, "{child_expires} > {parent_expires}");
    let child_t = child["token"].as_str().unwrap().to_string();
    let (s, grandchild) = api
        .call(
            Method::POST,
            "/api/v1/tokens",
            &child_t,
            Some(json!({"username": "fbi.desk", "days": 30})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{grandchild}");
    let grandchild_t = grandchild["token"].as_str().unwrap().to_string();
    let parent_id = all
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["user"] == json!(f.who("FBI", Role::Desk).user))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = api
        .call(Method::DELETE, &format!("/api/v1/tokens/{parent_id}"), &admin, None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    for t in [&desk_t, &child_t, &grandchild_t] {
        let (s, _) = api.call(Method::GET, "/api/v1/me", t, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "a token of the revoked family still works");
    }

    // Users revoke their own token.
    let (s, _) = api
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{officer_token_id}"),
            &officer,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = api.call(Method::GET, "/api/v1/me", &officer, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Disabling a user: admins only; the user's tokens stop working; enabling restores them.
    let desk = f.token("CN-MPS", Role::Desk).to_string();
    let supervisor = f.token("FBI", Role::Supervisor).to_string();
    let (s, v) = api
        .call(
            Method::PATCH,
            "/api/v1/users/cn-mps.desk",
            &supervisor,
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, _) = api
        .call(
            Method::PATCH,
            "/api/v1/users/cn-mps.desk",
            &admin,
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = api.call(Method::GET, "/api/v1/me", &desk, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = api
        .call(
            Method::PATCH,
            "/api/v1/users/cn-mps.desk",
            &admin,
            Some(json!({"disabled": false})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = api.call(Method::GET, "/api/v1/me", &desk, None).await;
    assert_eq!(s, StatusCode::OK);
    // Unknown users, unknown fields, and an admin disabling themselves.
    let (s, _) = api
        .call(
            Method::PATCH,
            "/api/v1/users/nobody",
            &admin,
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = api
        .call(
            Method::PATCH,
            "/api/v1/users/cn-mps.desk",
            &admin,
            Some(json!({"disabled": true, "motto": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = api
        .call(Method::PATCH, "/api/v1/users/cn-mps.desk", &admin, Some(json!({})))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "neither field: {v}");
    // A role change applies at once to the user's tokens; nobody changes their own role.
    let (s, v) = api
        .call(
            Method::PATCH,
            "/api/v1/users/cn-mps.desk",
            &admin,
            Some(json!({"role": "supervisor"})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (_, me) = api.call(Method::GET, "/api/v1/me", &desk, None).await;
    assert_eq!(me["role"], "supervisor", "{me}");
    let (s, _) = api
        .call(
            Method::PATCH,
            "/api/v1/users/cn-mps.desk",
            &supervisor,
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "only admins change roles");
    let (s, _) = api
        .call(
            Method::PATCH,
            "/api/v1/users/cn-mps.desk",
            &admin,
            Some(json!({"role": "desk"})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = api
        .call(
            Method::PATCH,
            "/api/v1/users/fbi.admin",
            &admin,
            Some(json!({"role": "officer"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, _) = api
        .call(
            Method::PATCH,
            "/api/v1/users/nobody",
            &admin,
            Some(json!({"role": "officer"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Renaming an agency: names only, admins only; Chinese pages' name kept locally.
    let (s, v) = api
        .call(
            Method::PATCH,
            "/api/v1/agencies/FBI",
            &admin,
            Some(json!({"name_en": "Federal Bureau of Investigation", "name_zh": "美国联邦调查局"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["name_zh"], "美国联邦调查局");
    assert_eq!(
        v["name_native"], "Federal Bureau of Investigation",
        "empty native: the English name"
    );
    let (_, dir) = api.call(Method::GET, "/api/v1/directory", &desk, None).await;
    assert!(dir.to_string().contains("美国联邦调查局"), "{dir}");
    let (s, _) = api
        .call(
            Method::PATCH,
            "/api/v1/agencies/FBI",
            &supervisor,
            Some(json!({"name_en": "X"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = api
        .call(
            Method::PATCH,
            "/api/v1/agencies/FBI",
            &admin,
            Some(json!({"name_en": " "})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["errors"][0]["field"], "name_en", "{v}");
    let (s, _) = api
        .call(
            Method::PATCH,
            "/api/v1/agencies/NOPE",
            &admin,
            Some(json!({"name_en": "X"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = api
        .call(
            Method::PATCH,
            "/api/v1/agencies/FBI",
            &admin,
            Some(json!({"name_en": "X", "code": "Y"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "the code does not change");
    // A new agency keeps the name for Chinese pages it is added with.
    let (s, v) = api
        .call(
            Method::POST,
            "/api/v1/agencies",
            &admin,
            Some(
                json!({"code": "US-USSS", "name_en": "United States Secret Service", "name_zh": "美国特勤局",
                        "jurisdiction": "US", "kind": "police", "time_zone": "America/New_York"}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (_, dir) = api.call(Method::GET, "/api/v1/directory", &desk, None).await;
    let usss = dir.as_array().unwrap().iter().find(|a| a["code"] == "US-USSS").unwrap();
    assert_eq!(usss["name_zh"], "美国特勤局", "stored, not only echoed: {usss}");
    let (s, v) = api
        .call(
            Method::PATCH,
            "/api/v1/users/fbi.admin",
            &admin,
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_ledger_and_keys_are_administered_through_the_api() {
    let now = Timestamp::now();
    // Node A: the two-agency fixture, with a federation identity.
    let f = common::fixture(fixtures::sqlite_node().await.unwrap()).await;
    f.node
        .create_identity(
            &f.fbi,
            &IdentityParams {
                node_id: NodeId::parse("us-fbi").unwrap(),
                listen: "127.0.0.1:1".into(),
                base_url: "https://127.0.0.1:1".into(),
                key_dir: key_dir("a"),
            },
            now,
        )
        .await
        .unwrap();
    // Node B: another agency's node, whose peer file A's operator receives.
    let b = fixtures::sqlite_node().await.unwrap();
    let nca = fixtures::agency("GB-NCA", "GB", "Europe/London").unwrap();
    let created = b
        .set_up(
            &NodeSetup {
                agency: nca.clone(),
                users: vec![NewUser::new("admin", "admin", Role::Admin)],
                token: Some(("admin".into(), 1)),
                identity: Some(IdentityParams {
                    node_id: NodeId::parse("gb-nca").unwrap(),
                    listen: "127.0.0.1:2".into(),
                    base_url: "https://127.0.0.1:2".into(),
                    key_dir: key_dir("b"),
                }),
                actor: "test".into(),
            },
            now,
        )
        .await
        .unwrap();
    let api_a = Api {
        base: common::serve(&f.node).await,
        http: reqwest::Client::new(),
    };
    let api_b = Api {
        base: common::serve(&b).await,
        http: reqwest::Client::new(),
    };
    let admin = f.token("FBI", Role::Admin).to_string();
    let auditor = f.token("FBI", Role::Auditor).to_string();
    let officer = f.token("FBI", Role::Officer).to_string();
    let b_admin = created.token.unwrap().0;

    // B's operator reads B's peer file and fingerprint.
    let (s, desc) = api_b
        .call(Method::GET, "/api/v1/federation/descriptor", &b_admin, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{desc}");
    let fingerprint = desc["fingerprint"].as_str().unwrap().to_string();
    let peer_file = desc["peer_file"].clone();

    // Only admins pin; a wrong fingerprint is an integrity failure and pins nothing.
    let body = |fp: &str| json!({"peer_file": peer_file, "fingerprint": fp});
    let (s, _) = api_a
        .call(
            Method::POST,
            "/api/v1/federation/peers",
            &officer,
            Some(body(&fingerprint)),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = api_a
        .call(
            Method::POST,
            "/api/v1/federation/peers",
            &admin,
            Some(body(&"0".repeat(64))),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    // The peer's agency entry is held to the directory's rules (no formula for a code).
    let (s, v) = api_a
        .call(
            Method::POST,
            "/api/v1/federation/peers",
            &admin,
            Some(json!({"peer_file": peer_file, "fingerprint": fingerprint, "agency_code": "=HYPERLINK(\"x\")"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["errors"][0]["field"], "agency.code", "{v}");
    let (s, v) = api_a
        .call(Method::GET, "/api/v1/federation/peers", &auditor, None)
        .await;
    assert_eq!((s, v), (StatusCode::OK, json!([])));
    let (s, v) = api_a
        .call(
            Method::POST,
            "/api/v1/federation/peers",
            &admin,
            Some(body(&fingerprint)),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["node_id"], "gb-nca");
    // The peer's agency is in A's directory now, served by the peer.
    let (_, dir) = api_a.call(Method::GET, "/api/v1/directory", &officer, None).await;
    let entry = dir
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["code"] == "GB-NCA")
        .cloned()
        .unwrap();
    assert_eq!(entry["node_id"], "gb-nca");
    // Its users live on its node: no local user may act for it here.
    let (s, v) = api_a
        .call(
            Method::POST,
            "/api/v1/users",
            &admin,
            Some(json!({"username": "nca.officer", "display_name": "x", "agency": "GB-NCA", "role": "officer"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("served by the peer node gb-nca"),
        "{v}"
    );
    let (s, v) = api_a
        .call(Method::GET, "/api/v1/federation/peers", &auditor, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v[0]["node_id"], "gb-nca");
    let (s, v) = api_a
        .call(Method::GET, "/api/v1/federation/status", &auditor, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["node_id"], "us-fbi");
    assert_eq!(v["peers"], json!(["gb-nca"]));
    let (s, _) = api_a
        .call(Method::GET, "/api/v1/federation/status", &officer, None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // The ledger verifies (no message yet: at most the audit anchor written at start-up, by a
    // background task); an unknown message has no proof.
    let (s, v) = api_a
        .call(Method::GET, "/api/v1/federation/ledger/verify", &auditor, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["intact"], json!(true), "{v}");
    assert!(v["leaves"].as_u64().unwrap() <= 1, "{v}");
    let (s, _) = api_a
        .call(Method::GET, "/api/v1/federation/ledger/proofs/nope", &auditor, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = api_a
        .call(
            Method::GET,
            "/api/v1/federation/ledger/proofs/nope?disclose_payload=maybe",
            &auditor,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

    // Key rotation: admins only; the rotation statement is queued for the one peer.
    let (s, _) = api_a
        .call(
            Method::POST,
            "/api/v1/federation/key-rotations",
            &auditor,
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = api_a
        .call(
            Method::POST,
            "/api/v1/federation/key-rotations",
            &admin,
            Some(json!({"overlap_hours": 9999})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = api_a
        .call(
            Method::POST,
            "/api/v1/federation/key-rotations",
            &admin,
            Some(json!({"overlap_hours": 2})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["descriptor_serial"].clone(), v["peers_told"].clone()),
        (json!(2), json!(1))
    );
    let (_, st) = api_a.call(Method::GET, "/api/v1/federation/status", &admin, None).await;
    assert_eq!(st["outbox_pending"], 1);

    // Unpinning: admins only; then the peer is gone.
    let (s, _) = api_a
        .call(Method::DELETE, "/api/v1/federation/peers/gb-nca", &auditor, None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = api_a
        .call(Method::DELETE, "/api/v1/federation/peers/gb-nca", &admin, None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = api_a
        .call(Method::DELETE, "/api/v1/federation/peers/gb-nca", &admin, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
