#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The HTTP API end to end over a real socket, on SQLite and (when reachable) PostgreSQL.

mod common;

use liaison_core::Role;
use liaison_core::request::RequestKind;
use liaison_service::fixtures;
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Api {
    base: String,
    http: reqwest::Client,
    f: common::Fixture,
}

impl Api {
    async fn start(node: liaison_service::Node) -> Api {
        let f = common::fixture(node).await;
        let base = common::serve(&f.node).await;
        Api {
            base,
            http: reqwest::Client::new(),
            f,
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        who: Option<(&str, Role)>,
        body: Option<Value>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut rq = self.http.request(method, format!("{}{}", self.base, path));
        if let Some((a, r)) = who {
            rq = rq.bearer_auth(self.f.token(a, r));
        }
        if let Some(b) = body {
            rq = rq.json(&b);
        }
        let resp = rq.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v, headers)
    }

    async fn get(&self, path: &str, who: (&str, Role)) -> (StatusCode, Value) {
        let (s, v, _) = self.call(reqwest::Method::GET, path, Some(who), None).await;
        (s, v)
    }

    async fn post(&self, path: &str, who: (&str, Role), body: Value) -> (StatusCode, Value) {
        let (s, v, _) = self.call(reqwest::Method::POST, path, Some(who), Some(body)).await;
        (s, v)
    }

    fn draft_json(&self) -> Value {
        serde_json::to_value(self.f.draft(RequestKind::SubscriberInformation)).unwrap()
    }
}

const FBI_OFFICER: (&str, Role) = ("FBI", Role::Officer);
const MPS_DESK: (&str, Role) = ("CN-MPS", Role::Desk);
const MPS_LEGAL: (&str, Role) = ("CN-MPS", Role::LegalReviewer);

fn field_errors(v: &Value) -> Vec<String> {
    v["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["field"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_over_http() {
    for node in fixtures::nodes_on_every_backend().await.unwrap() {
        let api = Api::start(node).await;
        // Health needs no token; everything else does.
        let (s, v, _) = api.call(reqwest::Method::GET, "/api/v1/health", None, None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["database"], "ok");
        let (s, v, h) = api.call(reqwest::Method::GET, "/api/v1/requests", None, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(h[reqwest::header::CONTENT_TYPE], "application/problem+json");
        assert_eq!(v["status"], 401);
        let bad = api
            .http
            .get(format!("{}/api/v1/requests", api.base))
            .bearer_auth(format!("lia_{}", "f".repeat(64)))
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);

        // Create, submit: the requested agency is local, so it is received at once.
        let (s, created) = api.post("/api/v1/requests", FBI_OFFICER, api.draft_json()).await;
        assert_eq!(s, StatusCode::CREATED, "{created}");
        let id = created["id"].as_str().unwrap().to_string();
        // The requested side does not see drafts.
        let (s, _) = api.get(&format!("/api/v1/requests/{id}"), MPS_DESK).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, r) = api
            .post(
                &format!("/api/v1/requests/{id}/transitions"),
                FBI_OFFICER,
                json!({"version": 1, "to": "submitted"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{r}");
        assert_eq!(r["state"], "received");
        assert!(r["ack_due"].is_string() && r["answer_due"].is_string());
        assert_eq!(
            r["assessment"]["requested"], "CN",
            "assessment stored on submission: {r}"
        );
        assert!(r["rule_pack_version"].as_str().is_some_and(|v| v.len() >= 16));
        let version = r["version"].as_i64().unwrap();

        // Illegal transition: 409 listing what is allowed.
        let (s, p) = api
            .post(
                &format!("/api/v1/requests/{id}/transitions"),
                MPS_DESK,
                json!({"version": version, "to": "answered"}),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT);
        assert_eq!(p["allowed"], json!(["acknowledged", "withdrawn"]));
        // Wrong role on the right side: 403.
        let (s, p) = api
            .post(
                &format!("/api/v1/requests/{id}/transitions"),
                ("CN-MPS", Role::Analyst),
                json!({"version": version, "to": "acknowledged"}),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{p}");
        // Stale version: 409.
        let (s, p) = api
            .post(
                &format!("/api/v1/requests/{id}/transitions"),
                MPS_DESK,
                json!({"version": 1, "to": "acknowledged"}),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT);
        assert!(p["detail"].as_str().unwrap().contains("version"), "{p}");

        let mut v = version;
        for (who, to) in [
            (MPS_DESK, "acknowledged"),
            (MPS_LEGAL, "in_review"),
            (MPS_LEGAL, "accepted"),
            (("CN-MPS", Role::Officer), "executing"),
            (("CN-MPS", Role::Officer), "answered"),
            (FBI_OFFICER, "closed"),
        ] {
            let (s, r) = api
                .post(
                    &format!("/api/v1/requests/{id}/transitions"),
                    who,
                    json!({"version": v, "to": to}),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{to}: {r}");
            assert_eq!(r["state"], to);
            v = r["version"].as_i64().unwrap();
        }
        let (s, c) = api
            .post(
                &format!("/api/v1/requests/{id}/comments"),
                MPS_DESK,
                json!({"text": "Answer sent by courier as well"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        let (_, events) = api.get(&format!("/api/v1/requests/{id}/events"), FBI_OFFICER).await;
        let kinds: Vec<&str> = events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(kinds.iter().filter(|k| **k == "transition").count(), 8, "{kinds:?}");
        assert_eq!(kinds.last(), Some(&"comment"));
        let (_, allowed) = api
            .get(&format!("/api/v1/requests/{id}/transitions"), FBI_OFFICER)
            .await;
        assert_eq!(allowed["allowed"], json!([]));

        // Statistics: analysts yes, officers no.
        let (s, rep) = api
            .get("/api/v1/reports/cooperation?by=jurisdiction", ("FBI", Role::Analyst))
            .await;
        assert_eq!(s, StatusCode::OK, "{rep}");
        assert_eq!(rep["pairs"][0]["requesting"], "US");
        assert_eq!(rep["pairs"][0]["answered"], 1);
        let (s, _) = api.get("/api/v1/reports/cooperation", FBI_OFFICER).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let csv = api
            .http
            .get(format!("{}/api/v1/reports/cooperation?format=csv&by=agency", api.base))
            .bearer_auth(api.f.token("FBI", Role::Analyst))
            .send()
            .await
            .unwrap();
        assert!(
            csv.headers()[reqwest::header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/csv")
        );
        let body = csv.text().await.unwrap();
        assert!(body.starts_with("requesting,requested,sent"), "{body}");
        assert!(body.contains("FBI,CN-MPS,1,1,1,"), "{body}");

        // Audit: auditors yes, officers no; the chain is intact.
        let (s, a) = api.get("/api/v1/audit/verify", ("FBI", Role::Auditor)).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(a["first_bad"], Value::Null);
        let (s, _) = api.get("/api/v1/audit/verify", FBI_OFFICER).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_named() {
    for node in fixtures::nodes_on_every_backend().await.unwrap() {
        let api = Api::start(node).await;
        let mut d = api.draft_json();
        d["colour"] = json!("red");
        let (s, p) = api.post("/api/v1/requests", FBI_OFFICER, d).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(p["detail"].as_str().unwrap().contains("colour"), "{p}");

        let mut d = api.draft_json();
        d["targets"] = json!([{"value": {"type": "ip", "address": "10.0.0.300", "observed_at": "2026-01-01T00:00:00Z"}, "from": "2026-01-01T00:00:00Z", "until": "2026-01-02T00:00:00Z"}]);
        let (s, p) = api.post("/api/v1/requests", FBI_OFFICER, d).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        // Internally tagged values report the enclosing path; the message names the field and value.
        assert_eq!(field_errors(&p), ["targets[0].value"], "{p}");
        assert!(p["detail"].as_str().unwrap().contains("address: '10.0.0.300'"), "{p}");

        let mut d = api.draft_json();
        d["targets"] = json!([{"value": {"type": "ip", "address": "192.0.2.1", "observed_at": "yesterday"}, "from": "2026-01-01T00:00:00Z", "until": "2026-01-02T00:00:00Z"}]);
        let (_, p) = api.post("/api/v1/requests", FBI_OFFICER, d).await;
        assert_eq!(field_errors(&p), ["targets[0].value"], "{p}");
        assert!(
            p["detail"].as_str().unwrap().contains("observed_at: 'yesterday'"),
            "{p}"
        );
        let mut d = api.draft_json();
        d["targets"] = json!([{"value": {"type": "domain", "name": "example.com"}, "from": "soon", "until": "2026-01-02T00:00:00Z"}]);
        let (_, p) = api.post("/api/v1/requests", FBI_OFFICER, d).await;
        assert_eq!(field_errors(&p), ["targets[0].from"], "{p}");
        assert!(p["detail"].as_str().unwrap().contains("'soon'"), "{p}");

        let mut d = api.draft_json();
        d["targets"] = json!([{"value": {"type": "ip", "address": "192.0.2.1", "observed_at": "2026-01-01T00:00:00Z", "zone": "Mars/Olympus"}, "from": "2026-01-01T00:00:00Z", "until": "2026-01-02T00:00:00Z"}]);
        let (_, p) = api.post("/api/v1/requests", FBI_OFFICER, d).await;
        assert_eq!(field_errors(&p), ["targets[0].zone"], "{p}");

        let mut d = api.draft_json();
        d["offences"] = json!(["BC-02", "NOT-A-CRIME"]);
        d["summary"] = json!("");
        let (_, p) = api.post("/api/v1/requests", FBI_OFFICER, d).await;
        assert_eq!(field_errors(&p), ["summary", "offences[1]"], "{p}");
        assert!(p["detail"].as_str().unwrap().contains("NOT-A-CRIME"));

        let mut d = api.draft_json();
        d["kind"] = json!("wiretap");
        let (_, p) = api.post("/api/v1/requests", FBI_OFFICER, d).await;
        assert_eq!(field_errors(&p), ["kind"], "{p}");

        // Unknown agency in the draft.
        let mut d = api.draft_json();
        d["requested_agency"] = json!(uuid_str());
        let (s, p) = api.post("/api/v1/requests", FBI_OFFICER, d).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(field_errors(&p), ["requested_agency"], "{p}");

        // Assessment with an unknown jurisdiction.
        let (s, p) = api
            .post("/api/v1/assessments", FBI_OFFICER, json!({"input": {"requesting": "US", "requested": "ZZ", "kind": "subscriber_information", "urgency": "routine", "offences": ["BC-02"], "as_of": "2026-01-01T00:00:00Z"}}))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(p["detail"].as_str().unwrap().contains("ZZ"), "{p}");

        // Directory: invalid country code, time zone and office hours are named.
        let admin = ("FBI", Role::Admin);
        let (s, p) = api.post("/api/v1/agencies", admin, json!({"code": "BKA", "name_en": "Bundeskriminalamt", "jurisdiction": "XX", "kind": "police", "time_zone": "Europe/Berlin"})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(field_errors(&p), ["jurisdiction"], "{p}");
        assert!(p["detail"].as_str().unwrap().contains("'XX'"), "{p}");
        let (s, p) = api.post("/api/v1/agencies", admin, json!({"code": "BKA", "name_en": "Bundeskriminalamt", "jurisdiction": "CN", "kind": "police", "time_zone": "Europe/Atlantis"})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(field_errors(&p), ["time_zone"], "{p}");
        let (s, p) = api.post("/api/v1/contacts", admin, json!({"agency": api.f.mps.id, "name": "Desk", "phone": "+86", "email": "d@example.invalid", "time_zone": "Asia/Shanghai", "office_hours": "whenever"})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(field_errors(&p), ["office_hours"], "{p}");
        let (s, _) = api.post("/api/v1/agencies", FBI_OFFICER, json!({"code": "BKA", "name_en": "Bundeskriminalamt", "jurisdiction": "CN", "kind": "police", "time_zone": "Europe/Berlin"})).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, p) = api.post("/api/v1/contacts", admin, json!({"agency": api.f.mps.id, "name": "Desk", "phone": "+86 10 5550 0110", "email": "desk@example.invalid", "languages": ["zh"], "time_zone": "Asia/Shanghai", "office_hours": "24/7"})).await;
        assert_eq!(s, StatusCode::CREATED, "{p}");

        // Query parameters.
        let (s, p) = api.get("/api/v1/requests?state=lost", FBI_OFFICER).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(field_errors(&p), ["state"]);
        let (s, p) = api.get("/api/v1/requests?sort=name", FBI_OFFICER).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(field_errors(&p), ["sort"]);
        let (_, p) = api.get("/api/v1/requests?updated_since=last-week", FBI_OFFICER).await;
        assert_eq!(field_errors(&p), ["updated_since"]);

        // Oversized body: 413.
        let big = "x".repeat(liaison_server::api::MAX_BODY_BYTES + 10);
        let resp = api
            .http
            .post(format!("{}/api/v1/requests", api.base))
            .bearer_auth(api.f.token("FBI", Role::Officer))
            .header("content-type", "application/json")
            .body(format!("{{\"summary\":\"{big}\"}}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);

        // Wrong agency: an MPS officer cannot draft for the FBI.
        let (s, _) = api
            .post("/api/v1/requests", ("CN-MPS", Role::Officer), api.draft_json())
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        // Nothing half-written: no request exists after all these failures.
        assert_eq!(fixtures::count_requests(&api.f.node).await.unwrap(), 0);
    }
}

fn uuid_str() -> String {
    liaison_core::RequestId::new().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pagination_filters_and_docs() {
    let api = Api::start(fixtures::sqlite_node().await.unwrap()).await;
    for _ in 0..7 {
        let (s, _) = api.post("/api/v1/requests", FBI_OFFICER, api.draft_json()).await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let mut seen = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/requests?limit=3&cursor={c}"),
            None => "/api/v1/requests?limit=3".to_string(),
        };
        let (s, page) = api.get(&path, FBI_OFFICER).await;
        assert_eq!(s, StatusCode::OK);
        seen += page["items"].as_array().unwrap().len();
        match page["next"].as_str() {
            Some(n) => cursor = Some(n.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, 7);
    let (_, page) = api
        .get("/api/v1/requests?state=draft&kind=subscriber_information", FBI_OFFICER)
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 7);
    let (_, page) = api.get("/api/v1/requests?overdue=true", FBI_OFFICER).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 0);
    let (_, page) = api
        .get(&format!("/api/v1/requests?requested={}", api.f.mps.id), FBI_OFFICER)
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 7);
    // Pages list summaries by default (no body, no assessment); view=full gives whole requests.
    let summary = &page["items"][0];
    assert_eq!(summary["kind"], "subscriber_information");
    assert_eq!(summary["state"], "draft");
    assert_eq!(summary["requested_agency"], api.f.mps.id.to_string());
    assert!(summary["version"].is_i64() && summary["created_at"].is_string());
    assert!(summary.get("summary").is_none() && summary.get("targets").is_none());
    let (s, full) = api.get("/api/v1/requests?view=full&limit=2", FBI_OFFICER).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(full["items"].as_array().unwrap().len(), 2);
    assert!(full["items"][0]["targets"].is_array() && full["items"][0]["summary"].is_string());
    let (one_s, one) = api
        .get(
            &format!("/api/v1/requests/{}", full["items"][0]["id"].as_str().unwrap()),
            FBI_OFFICER,
        )
        .await;
    assert_eq!(one_s, StatusCode::OK);
    assert_eq!(one, full["items"][0]);
    let (s, problem) = api.get("/api/v1/requests?view=everything", FBI_OFFICER).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(problem.to_string().contains("view"), "{problem}");

    let (s, doc, _) = api.call(reqwest::Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/api/v1/requests",
        "/api/v1/requests/{id}/transitions",
        "/api/v1/reports/cooperation",
        "/api/v1/assessments",
        "/api/v1/intel/ingest",
        "/api/v1/intel/stats",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    let ui = api.http.get(format!("{}/api/v1/docs/", api.base)).send().await.unwrap();
    assert_eq!(ui.status(), StatusCode::OK);
    assert!(
        ui.text().await.unwrap().contains("swagger"),
        "Swagger UI is served locally"
    );
    let (s, me) = api.get("/api/v1/me", FBI_OFFICER).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["role"], "officer");
    let (s, dir) = api.get("/api/v1/directory", FBI_OFFICER).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(dir.as_array().unwrap().len(), 2);
}

/// Search over HTTP (docs/search.md): words in English and Chinese with snippets and counts, CSV,
/// the listing's `q`/`case_reference`/`target`, identifier look-ups, saved searches, and bad
/// input named by parameter; the partner never finds the other side's drafts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_over_http() {
    for node in fixtures::nodes_on_every_backend().await.unwrap() {
        let api = Api::start(node).await;
        let mut sent = api.draft_json();
        sent["summary"] = json!("Botnet controller 控制服务器 at 198.51.100.23 sends phishing mail");
        sent["case_reference"] = json!("OP-KESTREL-9");
        sent["targets"] = json!([{"value": {"type": "ip", "address": "198.51.100.23", "observed_at": "2026-10-01T12:00:00Z"},
                                  "from": "2026-09-01T00:00:00Z", "until": "2026-10-31T00:00:00Z"}]);
        let (s, r) = api.post("/api/v1/requests", FBI_OFFICER, sent).await;
        assert_eq!(s, StatusCode::CREATED, "{r}");
        let id = r["id"].as_str().unwrap().to_string();
        let (s, _) = api
            .post(
                &format!("/api/v1/requests/{id}/transitions"),
                FBI_OFFICER,
                json!({"version": r["version"], "to": "submitted"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let mut draft = api.draft_json();
        draft["summary"] = json!("Phishing kit sold on a forum, still a draft");
        let (s, _) = api.post("/api/v1/requests", FBI_OFFICER, draft).await;
        assert_eq!(s, StatusCode::CREATED);

        // Words, both languages; snippets mark the match.
        let (s, page) = api.get("/api/v1/search?q=phish", FBI_OFFICER).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        assert_eq!(page["count"], 2);
        let (_, page) = api.get("/api/v1/search?q=phish", MPS_DESK).await;
        assert_eq!(page["count"], 1, "the partner never finds the draft: {page}");
        let hit = &page["items"][0];
        assert_eq!(hit["source"], "request");
        assert_eq!(hit["field"], "summary");
        let text = hit["snippet"]["text"].as_str().unwrap();
        let m = &hit["snippet"]["marks"][0];
        let (a, b) = (m[0].as_u64().unwrap() as usize, m[1].as_u64().unwrap() as usize);
        assert_eq!(&text[a..b], "phishing");
        let (_, page) = api
            .get("/api/v1/search?q=%E6%9C%8D%E5%8A%A1", MPS_DESK) // 服务
            .await;
        assert_eq!(page["count"], 1, "{page}");
        // CSV.
        let resp = api
            .http
            .get(format!("{}/api/v1/search?q=phish&format=csv", api.base))
            .bearer_auth(api.f.token("FBI", Role::Officer))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
        let csv = resp.text().await.unwrap();
        assert_eq!(csv.lines().count(), 3, "{csv}");
        assert!(csv.starts_with("at,source,field,reference"));
        // The listing's filters (refused with 400 before #18).
        let (s, page) = api.get("/api/v1/requests?q=botnet", MPS_DESK).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
        let (_, page) = api.get("/api/v1/requests?case_reference=OP-KESTREL-9", MPS_DESK).await;
        assert_eq!(page["items"][0]["id"], id.as_str());
        let (_, page) = api.get("/api/v1/requests?target=198.51.100.0/24", MPS_DESK).await;
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
        // Look-up.
        let (s, l) = api.get("/api/v1/lookup?target=198.51.100.23", MPS_DESK).await;
        assert_eq!(s, StatusCode::OK, "{l}");
        assert_eq!(l["request_count"], 1);
        assert_eq!(l["kind"], "ip");
        // Saved searches.
        let (s, saved) = api
            .post(
                "/api/v1/searches",
                FBI_OFFICER,
                json!({"name": "botnets", "query": "q=botnet&sort=oldest"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{saved}");
        let (_, list) = api.get("/api/v1/searches", FBI_OFFICER).await;
        assert_eq!(list[0]["query"], "q=botnet&sort=oldest");
        let (_, list) = api.get("/api/v1/searches", MPS_DESK).await;
        assert_eq!(list.as_array().unwrap().len(), 0);
        let (s, _, _) = api
            .call(
                reqwest::Method::DELETE,
                "/api/v1/searches/botnets",
                Some(FBI_OFFICER),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _, _) = api
            .call(
                reqwest::Method::DELETE,
                "/api/v1/searches/botnets",
                Some(FBI_OFFICER),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        // Bad input names the parameter.
        for (path, field) in [
            ("/api/v1/search", "q"),
            ("/api/v1/search?q=-x", "q"),
            ("/api/v1/search?q=x&sort=best", "sort"),
            ("/api/v1/search?q=x&bogus=1", "bogus"),
            ("/api/v1/search?q=x&q=y", "q"),
            ("/api/v1/search?q=x&format=xml", "format"),
            ("/api/v1/lookup?target=no+such+thing", "target"),
            ("/api/v1/lookup", "target"),
            ("/api/v1/lookup?target=x&kind=colour", "kind"),
            ("/api/v1/requests?q=%22%22", "q"),
            ("/api/v1/requests?target=999.1.1.1", "target"),
        ] {
            let (s, v) = api.get(path, FBI_OFFICER).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {v}");
            assert_eq!(field_errors(&v), vec![field.to_string()], "{path}: {v}");
        }
        let (s, _) = api
            .post("/api/v1/searches", FBI_OFFICER, json!({"name": "", "query": "q=x"}))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
    }
}

/// Four eyes over HTTP (docs/lifecycle.md "Four eyes"): the approval resource, the steps and
/// their refusals as problem documents, and approving by sending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_eyes_over_http() {
    let node = fixtures::sqlite_node()
        .await
        .unwrap()
        .with_approval(liaison_core::approval::ApprovalPolicy {
            kinds: vec![RequestKind::SubscriberInformation],
            ..Default::default()
        });
    let api = Api::start(node).await;
    let sup = ("FBI", Role::Supervisor);
    let (s, created) = api.post("/api/v1/requests", FBI_OFFICER, api.draft_json()).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let approval = format!("/api/v1/requests/{id}/approval");
    let (s, v) = api.get(&approval, FBI_OFFICER).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        json!({"required": true, "asked": null, "moves": {"ask": true, "approve": false, "send_back": false, "send": false}})
    );
    // Sending without approval: 409, naming four eyes.
    let submit = json!({"version": 1, "to": "submitted"});
    let (s, v) = api
        .post(
            &format!("/api/v1/requests/{id}/transitions"),
            FBI_OFFICER,
            submit.clone(),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("four eyes"), "{v}");
    // Unknown action and unknown field: 400.
    let (s, _) = api.post(&approval, FBI_OFFICER, json!({"action": "approve"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = api
        .post(&approval, FBI_OFFICER, json!({"action": "ask", "version": 1, "x": 1}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = api
        .post(&approval, FBI_OFFICER, json!({"action": "ask", "version": 1}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["asked"]["by"], "fbi.officer");
    let (s, _) = api
        .post(&approval, FBI_OFFICER, json!({"action": "ask", "version": 1}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    // The asker cannot approve; a send-back needs a reason.
    let (s, _) = api
        .post(
            &format!("/api/v1/requests/{id}/transitions"),
            FBI_OFFICER,
            submit.clone(),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = api.post(&approval, sup, json!({"action": "return"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(field_errors(&v), ["reason"]);
    let (s, v) = api.get(&format!("/api/v1/requests/{id}/transitions"), sup).await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["allowed"].as_array().unwrap().contains(&json!("submitted")), "{v}");
    let (s, v) = api
        .post(&format!("/api/v1/requests/{id}/transitions"), sup, submit)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "received");
    let (_, v) = api.get(&approval, sup).await;
    assert_eq!(v["asked"], Value::Null);
}
