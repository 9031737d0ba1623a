#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The API answers what its OpenAPI document says: one test per fix made while checking the
//! document against a live node with schemathesis (tests/contract/run.sh runs that check).

mod common;

use liaison_core::Role;
use liaison_service::fixtures;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

struct Api {
    base: String,
    http: reqwest::Client,
    f: common::Fixture,
}

struct Answer {
    status: StatusCode,
    content_type: String,
    headers: header::HeaderMap,
    body: Value,
}

impl Api {
    async fn start() -> Api {
        let f = common::fixture(fixtures::sqlite_node().await.unwrap()).await;
        let base = common::serve(&f.node).await;
        Api {
            base,
            http: reqwest::Client::new(),
            f,
        }
    }

    /// A raw call: `body` is sent as is, with `content_type` if given.
    async fn raw(
        &self,
        method: Method,
        path: &str,
        who: Option<(&str, Role)>,
        content_type: Option<&str>,
        body: Option<String>,
    ) -> Answer {
        let mut rq = self.http.request(method, format!("{}{}", self.base, path));
        if let Some((a, r)) = who {
            rq = rq.bearer_auth(self.f.token(a, r));
        }
        if let Some(ct) = content_type {
            rq = rq.header(header::CONTENT_TYPE, ct);
        }
        if let Some(b) = body {
            rq = rq.body(b);
        }
        let resp = rq.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            content_type,
            headers,
            body,
        }
    }

    async fn post_json(&self, path: &str, who: (&str, Role), body: &str) -> Answer {
        self.raw(
            Method::POST,
            path,
            Some(who),
            Some("application/json"),
            Some(body.into()),
        )
        .await
    }
}

const OFFICER: (&str, Role) = ("FBI", Role::Officer);
const ADMIN: (&str, Role) = ("FBI", Role::Admin);

fn fields(a: &Answer) -> Vec<String> {
    a.body["errors"]
        .as_array()
        .map(|e| e.iter().map(|x| x["field"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// An RFC 9457 problem with the given status.
fn assert_problem(a: &Answer, status: StatusCode) {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(a.content_type, "application/problem+json", "{}", a.body);
    assert_eq!(a.body["status"], status.as_u16(), "{}", a.body);
    for k in ["type", "title", "detail"] {
        assert!(a.body[k].is_string(), "problem without {k}: {}", a.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framework_refusals_are_problem_documents() {
    let api = Api::start().await;
    // A body over the limit was a text/plain 413.
    let big = format!(
        "{{\"summary\":\"{}\"}}",
        "x".repeat(liaison_server::api::MAX_BODY_BYTES + 10)
    );
    let a = api.post_json("/api/v1/requests", OFFICER, &big).await;
    assert_problem(&a, StatusCode::PAYLOAD_TOO_LARGE);
    // A method the route does not have was an empty 405; the Allow header stays.
    let a = api
        .raw(Method::DELETE, "/api/v1/requests", Some(OFFICER), None, None)
        .await;
    assert_problem(&a, StatusCode::METHOD_NOT_ALLOWED);
    assert!(a.headers.contains_key(header::ALLOW), "{:?}", a.headers);
    // A path segment that is not UTF-8 was a text/plain 400.
    let a = api
        .raw(Method::GET, "/api/v1/requests/%FF", Some(OFFICER), None, None)
        .await;
    assert_problem(&a, StatusCode::BAD_REQUEST);
    // /requests/overdue took an overdue parameter and ignored it; like any unknown one, it is refused.
    let a = api
        .raw(
            Method::GET,
            "/api/v1/requests/overdue?overdue=false",
            Some(OFFICER),
            None,
            None,
        )
        .await;
    assert_problem(&a, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&a), ["overdue"], "{}", a.body);
    // Unknown routes were already problems.
    let a = api.raw(Method::GET, "/api/v1/nothing", Some(OFFICER), None, None).await;
    assert_problem(&a, StatusCode::NOT_FOUND);
    // The health check keeps its own JSON.
    let a = api.raw(Method::GET, "/api/v1/health", None, None, None).await;
    assert_eq!(
        (a.status, a.content_type.as_str()),
        (StatusCode::OK, "application/json")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_json_and_nothing_else() {
    let api = Api::start().await;
    // No body, or another media type: 415 (documented on every operation with a JSON body).
    let a = api
        .raw(Method::POST, "/api/v1/requests", Some(OFFICER), None, None)
        .await;
    assert_problem(&a, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Feedback read any body as JSON (a missing one was a 400); it is a 415 like the others.
    let a = api
        .raw(
            Method::POST,
            "/api/v1/intel/feedback",
            Some(OFFICER),
            Some("text/plain"),
            Some(json!({"item": uuid::Uuid::nil(), "status": "remediated"}).to_string()),
        )
        .await;
    assert_problem(&a, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // The media type is compared without case, parameters aside.
    let a = api
        .raw(
            Method::POST,
            "/api/v1/requests/00000000-0000-0000-0000-000000000000/comments",
            Some(OFFICER),
            Some("Application/JSON; charset=utf-8"),
            Some(r#"{"text": "hello"}"#.into()),
        )
        .await;
    assert_problem(&a, StatusCode::NOT_FOUND);
    // Trailing characters after the JSON value were ignored.
    let a = api
        .post_json(
            "/api/v1/requests/00000000-0000-0000-0000-000000000000/comments",
            OFFICER,
            r#"{"text": "hello"} trailing"#,
        )
        .await;
    assert_problem(&a, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&a), ["body"], "{}", a.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integral_numbers_are_integers() {
    let api = Api::start().await;
    // JSON Schema counts 30.0 and 3e1 as integers; serde refused them.
    for days in ["30.0", "3e1", "30"] {
        let a = api
            .post_json(
                "/api/v1/tokens",
                ADMIN,
                &format!(r#"{{"username": "fbi.officer", "days": {days}}}"#),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "days {days}: {}", a.body);
    }
    // The same where a handler reads the body as JSON first: a transition's version, an
    // explicit assessment input.
    let draft = serde_json::to_value(api.f.draft(liaison_core::RequestKind::SubscriberInformation)).unwrap();
    let created = api.post_json("/api/v1/requests", OFFICER, &draft.to_string()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap();
    let a = api
        .post_json(
            &format!("/api/v1/requests/{id}/transitions"),
            OFFICER,
            r#"{"version": 1.0, "to": "submitted"}"#,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let input = json!({"requesting": "US", "requested": "CN", "kind": "subscriber_information", "urgency": "routine",
                       "offences": ["BC-02"], "as_of": "2026-01-01T00:00:00Z",
                       "observed_durations": {"budapest-mla": {"median_days": 40, "samples": 12.0}}});
    let a = api
        .post_json("/api/v1/assessments", OFFICER, &json!({"input": input}).to_string())
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = api
        .post_json("/api/v1/tokens", ADMIN, r#"{"username": "fbi.officer", "days": 30.5}"#)
        .await;
    assert_problem(&a, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&a), ["days"], "{}", a.body);
    // Other errors in the same body are still reported first and by path.
    let a = api
        .post_json(
            "/api/v1/tokens",
            ADMIN,
            r#"{"username": "fbi.officer", "days": 30.0, "x": 1}"#,
        )
        .await;
    assert_problem(&a, StatusCode::BAD_REQUEST);
    assert!(a.body["detail"].as_str().unwrap().contains('x'), "{}", a.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assessment_input_refuses_unknown_fields() {
    let api = Api::start().await;
    let input = json!({"requesting": "US", "requested": "CN", "kind": "subscriber_information", "urgency": "routine", "offences": ["BC-02"], "as_of": "2026-01-01T00:00:00Z"});
    let a = api
        .post_json("/api/v1/assessments", OFFICER, &json!({"input": input}).to_string())
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // A misspelt optional field was silently ignored (and the assessment made without it).
    let mut typo = input.clone();
    typo["category"] = json!(["stored_content"]);
    let a = api
        .post_json("/api/v1/assessments", OFFICER, &json!({"input": typo}).to_string())
        .await;
    assert_problem(&a, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&a), ["input.category"], "{}", a.body);
    assert!(a.body["detail"].as_str().unwrap().contains("categories"), "{}", a.body);
    // Errors inside the input name their path under input.
    let mut bad = input;
    bad["as_of"] = json!("yesterday");
    let a = api
        .post_json("/api/v1/assessments", OFFICER, &json!({"input": bad}).to_string())
        .await;
    assert_eq!(fields(&a), ["input.as_of"], "{}", a.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_refusals_name_the_field() {
    let api = Api::start().await;
    // A blank Chinese name was reported as name_en.
    let a = api
        .post_json(
            "/api/v1/jurisdictions",
            ADMIN,
            r#"{"code": "DE", "name_en": "Germany", "name_zh": " "}"#,
        )
        .await;
    assert_problem(&a, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&a), ["name_zh"], "{}", a.body);
    // Languages are stored comma-separated: a tag with a comma came back as two.
    let contact = |langs: Value| {
        json!({"agency": api.f.mps.id, "name": "Desk", "phone": "+86 10 5550 0110", "email": "desk@example.invalid",
               "languages": langs, "time_zone": "Asia/Shanghai", "office_hours": "24/7"})
        .to_string()
    };
    let a = api
        .post_json("/api/v1/contacts", ADMIN, &contact(json!(["en,zh", ""])))
        .await;
    assert_problem(&a, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&a), ["languages[0]", "languages[1]"], "{}", a.body);
    let a = api
        .post_json("/api/v1/contacts", ADMIN, &contact(json!(["en", "zh-Hans"])))
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let a = api
        .raw(Method::GET, "/api/v1/directory", Some(OFFICER), None, None)
        .await;
    let mps = a
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["code"] == "CN-MPS")
        .unwrap();
    assert_eq!(mps["contacts"][0]["languages"], json!(["en", "zh-Hans"]));
}

/// What every route of the router answers, as the document must say it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_names_every_status_and_content_type() {
    let api = Api::start().await;
    let doc = api
        .raw(Method::GET, "/api/v1/openapi.json", None, None, None)
        .await
        .body;
    let ops: Vec<(String, String, &Value)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .iter()
                .map(move |(m, op)| (m.to_uppercase(), path.clone(), op))
        })
        .collect();
    assert_eq!(ops.len(), 99, "operations in the document");
    for (method, path, op) in &ops {
        let codes: Vec<&str> = op["responses"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert!(op["operationId"].is_string(), "{method} {path}");
        if path == "/api/v1/health" {
            assert_eq!(codes, ["200", "503"]);
            continue;
        }
        for c in ["401", "500"] {
            assert!(codes.contains(&c), "{method} {path} lacks {c}: {codes:?}");
        }
        if op["requestBody"]["content"]["application/json"]["schema"]["$ref"].is_string() {
            for c in ["400", "413", "415"] {
                assert!(codes.contains(&c), "{method} {path} lacks {c}: {codes:?}");
            }
        }
        for (code, r) in op["responses"].as_object().unwrap() {
            if code.starts_with('4') || code.starts_with('5') {
                let name = r["$ref"].as_str().unwrap().rsplit('/').next().unwrap();
                let ct = doc["components"]["responses"][name]["content"].as_object().unwrap();
                assert_eq!(
                    ct.keys().collect::<Vec<_>>(),
                    ["application/problem+json"],
                    "{method} {path} {code}"
                );
            }
        }
        // Each call that the document names answers with a documented status and type.
        if method == "GET" && !path.contains('{') {
            let a = api
                .raw(Method::GET, path, Some(("FBI", Role::Supervisor)), None, None)
                .await;
            let documented = op["responses"][a.status.as_str()].clone();
            assert!(!documented.is_null(), "GET {path} answered {}: {}", a.status, a.body);
        }
    }
    // CSV where the handlers answer CSV.
    for path in ["/api/v1/reports/cooperation", "/api/v1/intel/notices"] {
        assert!(doc["paths"][path]["get"]["responses"]["200"]["content"]["text/csv"].is_object());
        let a = api
            .raw(
                Method::GET,
                &format!("{path}?format=csv"),
                Some(("FBI", Role::Supervisor)),
                None,
                None,
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.body);
        assert!(a.content_type.starts_with("text/csv"), "{path}: {}", a.content_type);
    }
    // Enumerations the node decides come from the node.
    let schemas = &doc["components"]["schemas"];
    assert!(
        schemas["OffenceCode"]["enum"]
            .as_array()
            .unwrap()
            .contains(&json!("BC-02"))
    );
    assert!(
        schemas["TimeZone"]["enum"]
            .as_array()
            .unwrap()
            .contains(&json!("Asia/Shanghai"))
    );
    assert!(
        schemas["AssessedJurisdiction"]["enum"]
            .as_array()
            .unwrap()
            .contains(&json!("CN"))
    );
    // Every request body schema refuses unknown fields, as the handlers do.
    for name in [
        "RequestDraft",
        "DraftUpdate",
        "Transition",
        "Comment",
        "Jurisdiction",
        "NewAgency",
        "NewContact",
        "NewUser",
        "NewToken",
        "Feedback",
        "InboxAnswer",
        "AssessmentInput",
    ] {
        assert_eq!(schemas[name]["additionalProperties"], false, "{name}");
    }
}

/// PostgreSQL cannot store U+0000: every text field that reached it was a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_is_refused_on_every_backend() {
    for node in fixtures::nodes_on_every_backend().await.unwrap() {
        let f = common::fixture(node).await;
        let base = common::serve(&f.node).await;
        let http = reqwest::Client::new();
        let post = |path: &str, who: (&str, Role), body: Value| {
            http.post(format!("{base}{path}"))
                .bearer_auth(f.token(who.0, who.1))
                .json(&body)
                .send()
        };
        let problem = |r: reqwest::Response| async move {
            assert_eq!(r.status(), StatusCode::BAD_REQUEST);
            let p: Value = r.json().await.unwrap();
            assert!(p["detail"].as_str().unwrap().contains("U+0000"), "{p}");
            p["errors"][0]["field"].as_str().unwrap().to_string()
        };
        let mut d = serde_json::to_value(f.draft(liaison_core::RequestKind::SubscriberInformation)).unwrap();
        d["targets"] = json!([{"value": {"type": "phone", "number": "+1\u{0}"}, "from": "2026-01-01T00:00:00Z", "until": "2026-01-02T00:00:00Z"}]);
        let field = problem(post("/api/v1/requests", OFFICER, d).await.unwrap()).await;
        assert_eq!(field, "targets[0].value.number");
        let field = problem(
            post(
                "/api/v1/users",
                ADMIN,
                json!({"username": "nul", "display_name": "a\u{0}", "agency": "FBI", "role": "officer"}),
            )
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(field, "display_name");
        let r = http
            .get(format!("{base}/api/v1/intel/notices?partner=CN%00"))
            .bearer_auth(f.token("FBI", Role::Admin))
            .send()
            .await
            .unwrap();
        assert_eq!(problem(r).await, "partner");
        // In a feed, NUL bytes are read as U+FFFD: the batch goes on.
        let r = http
            .post(format!("{base}/api/v1/intel/ingest?format=liaison&wait=true"))
            .bearer_auth(f.token("FBI", Role::Admin))
            .body("indicator,malware,classification\n203.0.113.7,Emo\u{0}tet,c2\n203.0.113.8,\u{0},c2\n")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        let r: Value = http
            .get(format!("{base}/api/v1/intel/stats?by=malware"))
            .bearer_auth(f.token("FBI", Role::Admin))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let keys: Vec<&str> = r["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["key"].as_str().unwrap())
            .collect();
        assert!(keys.contains(&"Emo\u{FFFD}tet"), "{keys:?}");
    }
}

/// A listing filtered on two agencies neither of which is the caller's (or on the caller's on
/// both sides) matches nothing; on PostgreSQL it was a 500 (a cached statement prepared for
/// another number of parameters).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_that_cannot_match_is_empty_on_every_backend() {
    for node in fixtures::nodes_on_every_backend().await.unwrap() {
        let f = common::fixture(node).await;
        let base = common::serve(&f.node).await;
        let http = reqwest::Client::new();
        let other = liaison_core::AgencyId::new();
        let own = f.fbi.id;
        for query in [
            format!("requesting={other}&requested={other}"),
            format!("requesting={other}&requested={other}&kind=takedown"),
            format!("requesting={other}&requested={other}&kind=takedown&state=draft,submitted"),
            format!("requesting={own}&requested={own}&kind=takedown"),
            format!("requesting={own}&requested={other}&view=full"),
        ] {
            for path in ["/api/v1/requests", "/api/v1/requests/overdue"] {
                let r = http
                    .get(format!("{base}{path}?{query}"))
                    .bearer_auth(f.token("FBI", Role::Supervisor))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::OK, "{path}?{query}");
                let page: Value = r.json().await.unwrap();
                assert_eq!(page, json!({"items": [], "next": null}), "{path}?{query}");
            }
        }
    }
}

/// Clean-up instants past what the node stores (it keeps milliseconds in an i64) collapsed
/// into one value: issuing notices for two such intervals was a 500 (a unique key broken).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intel_instants_stay_in_range() {
    let api = Api::start().await;
    let sup = ("FBI", Role::Supervisor);
    for until in [
        "9223372036854775807",
        "9223372036854775806",
        "253402207201",
        "9999-12-31",
    ] {
        let a = api
            .raw(
                Method::POST,
                &format!("/api/v1/intel/notices/issue?since=2000-01-01&until={until}"),
                Some(sup),
                None,
                None,
            )
            .await;
        assert_problem(&a, StatusCode::BAD_REQUEST);
        assert_eq!(fields(&a), ["until"], "{}", a.body);
    }
    for until in ["253402207200", "9999-12-30"] {
        let a = api
            .raw(
                Method::POST,
                &format!("/api/v1/intel/notices/issue?since=2000-01-01&until={until}"),
                Some(sup),
                None,
                None,
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{until}: {}", a.body);
    }
    let a = api
        .raw(
            Method::GET,
            "/api/v1/intel/stats?since=99999999999999",
            Some(sup),
            None,
            None,
        )
        .await;
    assert_problem(&a, StatusCode::BAD_REQUEST);
}

/// An assessment in the reader's language, direct-provider preservation first, and the
/// re-assessment endpoint's refusals (issue #16).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assessments_speak_the_asked_language_and_reassessment_refuses_what_it_must() {
    let api = Api::start().await;
    let body = json!({"input": {
        "requesting": "CN", "requested": "US", "kind": "expedited_preservation", "urgency": "routine",
        "offences": ["FRAUD-TELECOM"], "as_of": "2026-12-01T00:00:00Z",
        "targets": [{"value": {"type": "domain", "name": "example.org"},
            "from": "2026-10-01T00:00:00Z", "until": "2026-11-01T00:00:00Z",
            "provider": {"name": "ExampleMail Inc.", "established_in": "US"}}]
    }})
    .to_string();
    let a = api.post_json("/api/v1/assessments?lang=zh-CN", OFFICER, &body).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["plan"][0]["action"], "preserve", "{}", a.body);
    assert_eq!(a.body["plan"][0]["channel"], "us-provider-preservation", "{}", a.body);
    let rendered: Vec<&str> = a.body["rendered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(rendered.iter().any(|l| l.contains("行动方案")), "{rendered:?}");
    assert!(
        rendered.iter().any(|l| l.contains("美国服务提供者应外国请求自愿保全")),
        "{rendered:?}"
    );
    // Without lang: codes and parameters only.
    let a = api.post_json("/api/v1/assessments", OFFICER, &body).await;
    assert!(a.body.get("rendered").is_none());
    assert_eq!(
        a.body["plan"][0]["what"]["code"], "plan.preserve_informal",
        "{}",
        a.body
    );
    // A language the node does not speak.
    let a = api.post_json("/api/v1/assessments?lang=fr", OFFICER, &body).await;
    assert_problem(&a, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&a), ["lang"], "{}", a.body);
    // A provider with a control character in its name is refused with its path.
    let bad = body.replace("ExampleMail Inc.", "Example\\u0007Mail");
    let a = api.post_json("/api/v1/assessments", OFFICER, &bad).await;
    assert_problem(&a, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&a), ["input.targets[0].provider.name"], "{}", a.body);
    // Re-assessment: unknown request 404, an analyst 403.
    let a = api
        .post_json(
            "/api/v1/requests/00000000-0000-7000-8000-000000000000/reassess",
            OFFICER,
            "",
        )
        .await;
    assert_problem(&a, StatusCode::NOT_FOUND);
    let a = api
        .post_json(
            "/api/v1/requests/00000000-0000-7000-8000-000000000000/reassess",
            ("FBI", Role::Analyst),
            "",
        )
        .await;
    assert_problem(&a, StatusCode::FORBIDDEN);
}
