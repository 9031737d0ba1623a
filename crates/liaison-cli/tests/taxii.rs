//! The TAXII 2.1 server (docs/intel-formats.md, "TAXII 2.1"), end to end over HTTP: who sees
//! which collection and which levels in it, paging with `limit`/`next` and `added_after`,
//! the manifest, versions, filters, adding objects to an inbox and its status, sign-in by
//! Bearer and Basic; then taxii2-client against the same server (tests/interop/
//! check_taxii.py, skipped loudly without Python or the registry, required where `.ci/run`
//! sets `LIAISON_REQUIRE_INTEROP=1`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::collections::HashSet;
use std::path::PathBuf;

mod common;

use common::{cmd as liaison, ok_json};

const TAXII: &str = "application/taxii+json;version=2.1";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header("Accept", TAXII)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }
    async fn json(&self, path: &str, token: &str) -> Value {
        let r = self.get(path, token).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], TAXII, "{path}");
        r.json().await.unwrap()
    }
    /// Every object of a collection, paged by `limit`; also checks each page.
    async fn all(&self, col: &str, query: &str, limit: usize, token: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut path = format!("/taxii2/intel/collections/{col}/objects/?limit={limit}{query}");
            if let Some(n) = &next {
                path.push_str(&format!("&next={n}"));
            }
            let page = self.json(&path, token).await;
            let objs = page["objects"].as_array().cloned().unwrap_or_default();
            assert!(objs.len() <= limit);
            out.extend(objs);
            pages += 1;
            assert!(pages < 10_000);
            if page["more"] == true {
                next = Some(page["next"].as_str().unwrap().to_string());
            } else {
                assert!(page.get("next").is_none());
                return out;
            }
        }
    }
}

fn tlp_of(o: &Value) -> Option<&'static str> {
    let refs = o["object_marking_refs"].as_array()?;
    let r = refs.first()?.as_str()?;
    Some(match r {
        "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487" => "CLEAR",
        "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb" => "GREEN",
        "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421" => "AMBER",
        "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003" => "AMBER+STRICT",
        "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1" => "RED",
        _ => "other",
    })
}

fn levels(objs: &[Value]) -> HashSet<&'static str> {
    objs.iter()
        .filter(|o| o["type"] == "indicator")
        .filter_map(tlp_of)
        .collect()
}

fn token(dir: &std::path::Path, user: &str) -> String {
    ok_json(liaison(dir).args(["token", "create", user]))["token"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taxii_collections_by_marking_scope_paging_and_inbox() {
    let base_dir = common::unique_dir("liaison-taxii");
    let dir = base_dir.join("node");
    ok_json(liaison(&dir).arg("init").args(common::FBI_AGENCY));
    for (user, role) in [("fbi-analyst", "analyst"), ("fbi-officer", "officer")] {
        liaison(&dir)
            .args(["user", "add", user, "--agency", "FBI", "--role", role])
            .assert()
            .success();
    }
    common::add_agency(
        &dir,
        "DE-BKA",
        "Bundeskriminalamt",
        "DE",
        "Europe/Berlin",
        &[("bka-officer", "officer")],
    );
    common::add_agency(
        &dir,
        "US-SS",
        "United States Secret Service",
        "US",
        "America/New_York",
        &[("usss-officer", "officer")],
    );
    // An agency of the directory nobody works for here publishes nothing.
    common::add_agency(&dir, "JP-NPA", "National Police Agency", "JP", "Asia/Tokyo", &[]);
    let analyst = token(&dir, "fbi-analyst");
    let fbi_officer = token(&dir, "fbi-officer");
    let bka = token(&dir, "bka-officer");
    let usss = token(&dir, "usss-officer");

    // FBI's analyst imports the stix2 library's bundle: indicators at every level.
    let bundle = repo().join("tests/interop/fixtures/stix2-lib-bundle.json");
    let r = ok_json(
        liaison(&dir)
            .args(["--as", "fbi-analyst", "intel", "ingest", "--format", "stix"])
            .arg(&bundle),
    );
    assert_eq!(r["new_indicators"], 17, "{r}");

    let legal = liaison_service::legal::Legal::load(&dir.join("rules")).unwrap();
    let url = format!("sqlite://{}", dir.join("liaison.db").display());
    let config = liaison_service::taxii::TaxiiConfig {
        collections: vec![liaison_service::taxii::CollectionConfig {
            publisher: Some("FBI".into()),
            audience: "DE-BKA".into(),
            tlp_max: liaison_core::Tlp::AmberStrict,
            feeds: vec![],
            title: None,
        }],
        ..Default::default()
    };
    let node = liaison_service::Node::open(&url, Default::default(), legal)
        .await
        .unwrap()
        .with_taxii_config(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = liaison_server::api::router(node);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let _ = rustls::crypto::ring::default_provider().install_default();
    let c = Client {
        http: reqwest::Client::new(),
        base: base.clone(),
    };

    // Discovery and the API root.
    let d = c.json("/taxii2/", &bka).await;
    assert_eq!(d["api_roots"][0], "/taxii2/intel/");
    let root = c.json("/taxii2/intel/", &bka).await;
    assert_eq!(root["versions"][0], TAXII);
    assert!(root["max_content_length"].as_u64().unwrap() > 0);

    // Who sees which collection.
    // Every agency of the node has a community collection and an inbox; FBI also one for
    // DE-BKA. Readers see FBI's collections by their relation to FBI.
    let fbi_of = |v: &Value| -> Vec<(String, String, bool, bool)> {
        v["collections"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|c| c["title"].as_str().unwrap().starts_with("FBI"))
                    .map(|c| {
                        (
                            c["id"].as_str().unwrap().to_string(),
                            c["title"].as_str().unwrap().to_string(),
                            c["can_read"].as_bool().unwrap(),
                            c["can_write"].as_bool().unwrap(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let every = c.json("/taxii2/intel/collections/", &analyst).await;
    assert!(!every.to_string().contains("JP-NPA"), "{every}");
    let fbi_cols = fbi_of(&every);
    let shape: Vec<(&str, bool, bool)> = fbi_cols.iter().map(|(_, t, r, w)| (t.as_str(), *r, *w)).collect();
    assert_eq!(
        shape,
        vec![
            ("FBI: community, up to TLP:GREEN", true, false),
            ("FBI for DE-BKA, up to TLP:AMBER+STRICT", true, false),
            ("FBI: inbox", false, true),
        ]
    );
    let (community, bka_col, inbox) = (fbi_cols[0].0.clone(), fbi_cols[1].0.clone(), fbi_cols[2].0.clone());
    let ids = |v: Vec<(String, String, bool, bool)>| v.into_iter().map(|c| c.0).collect::<Vec<_>>();
    let bka_cols = ids(fbi_of(&c.json("/taxii2/intel/collections/", &bka).await));
    assert_eq!(bka_cols, vec![community.clone(), bka_col.clone()]);
    let usss_cols = ids(fbi_of(&c.json("/taxii2/intel/collections/", &usss).await));
    assert_eq!(usss_cols, vec![community.clone()], "a third agency: the community only");
    // An officer of the publisher is not an operator: none of its own agency's collections.
    let officer_cols = fbi_of(&c.json("/taxii2/intel/collections/", &fbi_officer).await);
    assert!(officer_cols.is_empty(), "{officer_cols:?}");
    // A collection the reader may not see is "not found", like one that does not exist.
    for col in [&bka_col, &inbox] {
        let r = c.get(&format!("/taxii2/intel/collections/{col}/objects/"), &usss).await;
        assert_eq!(r.status(), 404);
        assert_eq!(r.headers()["content-type"], TAXII);
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["http_status"], "404");
    }

    // What each reader sees: levels by relation, never RED.
    let bka_objs = c.all(&bka_col, "", 5, &bka).await;
    assert_eq!(
        levels(&bka_objs),
        ["CLEAR", "GREEN", "AMBER", "AMBER+STRICT"].into_iter().collect()
    );
    let all_levels = c.all(&bka_col, "", 1000, &analyst).await;
    assert_eq!(
        all_levels, bka_objs,
        "the publisher's analyst sees what the partner sees"
    );
    let com = c.all(&community, "", 3, &usss).await;
    assert_eq!(levels(&com), ["CLEAR", "GREEN"].into_iter().collect());
    // The collection starts with the publisher's identity and the marking definitions.
    assert_eq!(com[0]["type"], "identity");
    assert_eq!(com[1]["type"], "marking-definition");
    let indicators = com.iter().filter(|o| o["type"] == "indicator").count();
    let sightings = com.iter().filter(|o| o["type"] == "sighting").count();
    assert!(indicators > 0);
    assert_eq!(indicators, sightings);
    // Paging gives the same as one page; no id twice.
    let whole = c.all(&community, "", 1000, &usss).await;
    assert_eq!(whole, com);
    let unique: HashSet<&str> = com.iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(unique.len(), com.len());

    // The manifest: one entry per object, in the same order, with the object's version.
    let m = c
        .json(
            &format!("/taxii2/intel/collections/{community}/manifest/?limit=1000"),
            &usss,
        )
        .await;
    let entries = m["objects"].as_array().unwrap();
    assert_eq!(entries.len(), com.len());
    for (e, o) in entries.iter().zip(&com) {
        assert_eq!(e["id"], o["id"]);
        let v = o.get("modified").unwrap_or(&o["created"]);
        assert_eq!(&e["version"], v);
        assert_eq!(e["media_type"], "application/stix+json;version=2.1");
    }

    // Filters: by type, by id; one object and its versions.
    let only = c.all(&community, "&match[type]=sighting", 2, &usss).await;
    assert_eq!(only.len(), sightings);
    assert!(only.iter().all(|o| o["type"] == "sighting"));
    let ind = com.iter().find(|o| o["type"] == "indicator").unwrap();
    let id = ind["id"].as_str().unwrap();
    let one = c
        .json(&format!("/taxii2/intel/collections/{community}/objects/{id}/"), &usss)
        .await;
    assert_eq!(one["objects"].as_array().unwrap().len(), 1);
    assert_eq!(&one["objects"][0], ind);
    let v = c
        .json(
            &format!("/taxii2/intel/collections/{community}/objects/{id}/versions/"),
            &usss,
        )
        .await;
    assert_eq!(v["versions"][0], ind["modified"]);
    let r = c
        .get(
            &format!("/taxii2/intel/collections/{community}/objects/indicator--00000000-0000-4000-8000-000000000000/"),
            &usss,
        )
        .await;
    assert_eq!(r.status(), 404);
    // A changed filter with an old `next` is refused; unknown parameters are named.
    let p1 = c
        .json(
            &format!("/taxii2/intel/collections/{community}/objects/?limit=2"),
            &usss,
        )
        .await;
    let n = p1["next"].as_str().unwrap();
    let r = c
        .get(
            &format!("/taxii2/intel/collections/{community}/objects/?limit=2&next={n}&match[type]=indicator"),
            &usss,
        )
        .await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert!(e["description"].as_str().unwrap().contains("filters"), "{e}");
    let r = c
        .get(
            &format!("/taxii2/intel/collections/{community}/objects/?match[types]=x"),
            &usss,
        )
        .await;
    assert_eq!(r.status(), 400);

    // No marked value reaches a reader its marking does not admit, by any route: every
    // collection (those the reader may see and those it may not), its objects, manifest,
    // each object and its versions. The fixture says each value's level.
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("tests/interop/fixtures/expected.json")).unwrap())
            .unwrap();
    let values: Vec<(String, String)> = expected["fixtures"]["stix2-lib-bundle.json"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let v = r["value"].as_str().unwrap();
            // An AS number is written as a number in the pattern.
            let needle = match v.strip_prefix("AS") {
                Some(n) if n.chars().all(|c| c.is_ascii_digit()) => format!("= {n}"),
                _ => v.to_string(),
            };
            (needle, r["tlp"].as_str().unwrap().to_string())
        })
        .collect();
    let every_collection = c.json("/taxii2/intel/collections/", &analyst).await["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect::<Vec<_>>();
    let object_ids: Vec<String> = all_levels
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect();
    let admitted = |reader: &str, tlp: &str| match reader {
        "bka" => matches!(tlp, "clear" | "green" | "amber" | "amber+strict"),
        "usss" => matches!(tlp, "clear" | "green"),
        _ => false,
    };
    let mut probes = 0;
    let mut shown = HashSet::new();
    for (reader, tok) in [("bka", &bka), ("usss", &usss), ("fbi-officer", &fbi_officer)] {
        let mut paths = vec!["/taxii2/intel/collections/".to_string()];
        for col in &every_collection {
            let at = format!("/taxii2/intel/collections/{col}");
            paths.push(format!("{at}/"));
            paths.push(format!("{at}/objects/?limit=1000"));
            paths.push(format!("{at}/manifest/?limit=1000"));
            for id in &object_ids {
                paths.push(format!("{at}/objects/{id}/"));
                paths.push(format!("{at}/objects/{id}/versions/"));
            }
        }
        for path in paths {
            let body = c.get(&path, tok).await.text().await.unwrap();
            probes += 1;
            for (needle, tlp) in &values {
                if body.contains(needle.as_str()) {
                    assert!(admitted(reader, tlp), "{reader} sees {needle} ({tlp}) at {path}");
                    shown.insert((reader, tlp.clone()));
                }
            }
        }
    }
    assert!(probes > 300, "{probes}");
    eprintln!("TAXII leak sweep: {probes} requests, 0 leaks");
    // The control: each reader does see what it may.
    for (reader, tlp) in [
        ("bka", "amber+strict"),
        ("bka", "green"),
        ("usss", "clear"),
        ("usss", "green"),
    ] {
        assert!(
            shown.contains(&(reader, tlp.to_string())),
            "{reader} never saw a {tlp} value"
        );
    }

    // Sign-in: Basic with user name and token; the wrong user name, no credentials, a wrong
    // Accept.
    let objects_url = format!("{base}/taxii2/intel/collections/{community}/objects/?limit=1");
    let r = c
        .http
        .get(&objects_url)
        .header("Accept", TAXII)
        .basic_auth("usss-officer", Some(&usss))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-taxii-date-added-first"));
    let r = c
        .http
        .get(&objects_url)
        .basic_auth("bka-officer", Some(&usss))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("Basic"));
    let r = c.http.get(&objects_url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .http
        .get(&objects_url)
        .header("Accept", "application/json")
        .bearer_auth(&usss)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 406);

    // Adding objects: to the inbox only, by its agency's operators; a status resource.
    let last_added = {
        let r = c
            .get(
                &format!("/taxii2/intel/collections/{community}/objects/?limit=1000"),
                &usss,
            )
            .await;
        r.headers()["x-taxii-date-added-last"].to_str().unwrap().to_string()
    };
    let envelope = serde_json::json!({"objects": [
        {"type": "indicator", "spec_version": "2.1", "id": "indicator--5a8a4a5e-1d7e-4b1e-9d0e-2f6f3c1b7a01",
         "created": "2026-11-30T10:00:00.000Z", "modified": "2026-11-30T10:00:00.000Z",
         "name": "added", "pattern": "[ipv4-addr:value = '198.51.100.77']", "pattern_type": "stix",
         "valid_from": "2026-11-30T10:00:00.000Z", "labels": ["c2-server"],
         "object_marking_refs": ["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]},
        {"type": "indicator", "spec_version": "2.1", "id": "indicator--5a8a4a5e-1d7e-4b1e-9d0e-2f6f3c1b7a02",
         "created": "2026-11-30T10:00:00.000Z", "modified": "2026-11-30T10:00:00.000Z",
         "name": "broken", "pattern": "[ipv4-addr:value = 'not an address']", "pattern_type": "stix",
         "valid_from": "2026-11-30T10:00:00.000Z"}
    ]});
    let post = |col: String, token: String, ct: &'static str| {
        let http = c.http.clone();
        let url = format!("{base}/taxii2/intel/collections/{col}/objects/");
        let body = envelope.to_string();
        async move {
            http.post(url)
                .header("Accept", TAXII)
                .header("Content-Type", ct)
                .bearer_auth(token)
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(post(community.clone(), analyst.clone(), TAXII).await.status(), 403);
    assert_eq!(post(inbox.clone(), usss.clone(), TAXII).await.status(), 404);
    assert_eq!(
        post(inbox.clone(), analyst.clone(), "application/json").await.status(),
        415
    );
    let r = post(inbox.clone(), analyst.clone(), TAXII).await;
    assert_eq!(r.status(), 202);
    let mut status: Value = r.json().await.unwrap();
    let sid = status["id"].as_str().unwrap().to_string();
    for _ in 0..100 {
        if status["status"] == "complete" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        status = c.json(&format!("/taxii2/intel/status/{sid}/"), &analyst).await;
    }
    assert_eq!(status["status"], "complete", "{status}");
    assert_eq!(status["total_count"], 2);
    assert_eq!(status["success_count"], 1, "{status}");
    assert_eq!(status["failure_count"], 1);
    assert_eq!(
        status["failures"][0]["id"],
        "indicator--5a8a4a5e-1d7e-4b1e-9d0e-2f6f3c1b7a02"
    );
    assert!(
        status["failures"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not an address"),
        "{status}"
    );
    // Another user does not see the status.
    let r = c.get(&format!("/taxii2/intel/status/{sid}/"), &usss).await;
    assert_eq!(r.status(), 404);
    // The added GREEN indicator is in the community collection, after what was there:
    // a client polling with added_after gets it (and its sighting) alone.
    let new = c
        .all(&community, &format!("&added_after={last_added}"), 10, &usss)
        .await;
    let values: Vec<&str> = new
        .iter()
        .filter(|o| o["type"] == "indicator")
        .map(|o| o["pattern"].as_str().unwrap())
        .collect();
    assert_eq!(values.len(), 1, "{new:?}");
    assert!(values[0].contains("198.51.100.77"));
    assert_eq!(new.len(), 2);

    // taxii2-client against the same server (Basic auth, paging by 7, manifest, versions,
    // adding objects and polling their status).
    let url = format!("{base}/taxii2/");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .arg(repo().join("tests/interop/venv.sh"))
            .args([
                "check_taxii.py",
                &url,
                "--user",
                "fbi-analyst",
                "--password",
                &analyst,
                "--collection",
                &community,
                "--write-collection",
                &inbox,
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stdout.contains("INTEROP CHECK SKIPPED") && out.status.success() {
        eprintln!("{stdout}");
        return;
    }
    assert!(out.status.success(), "check_taxii.py failed:\n{stdout}\n{stderr}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
    eprintln!("{stdout}");
}

/// Pulling from partners (docs/intel-formats.md, "Pulling from partners"): node B pulls node
/// A's TAXII community collection (a real Liaison server, Basic auth with B's user on A) and a
/// MISP feed made by pymisp served by a plain HTTP server; each pull takes only what is new,
/// a broken answer changes nothing and is reported with what was wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_a_partners_taxii_collection_and_misp_feed() {
    let base_dir = common::unique_dir("liaison-pull");
    // A: FBI, with indicators at every level and a user for its partner DE-BKA.
    let a = base_dir.join("a");
    ok_json(liaison(&a).arg("init").args(common::FBI_AGENCY));
    liaison(&a)
        .args(["user", "add", "fbi-analyst", "--agency", "FBI", "--role", "analyst"])
        .assert()
        .success();
    common::add_agency(
        &a,
        "DE-BKA",
        "Bundeskriminalamt",
        "DE",
        "Europe/Berlin",
        &[("bka-puller", "officer")],
    );
    let bundle = repo().join("tests/interop/fixtures/stix2-lib-bundle.json");
    ok_json(
        liaison(&a)
            .args(["--as", "fbi-analyst", "intel", "ingest", "--format", "stix"])
            .arg(&bundle),
    );
    let puller = token(&a, "bka-puller");
    let analyst = token(&a, "fbi-analyst");
    let legal = liaison_service::legal::Legal::load(&a.join("rules")).unwrap();
    let url = format!("sqlite://{}", a.join("liaison.db").display());
    let node = liaison_service::Node::open(&url, Default::default(), legal)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, liaison_server::api::router(node)).await });
    let _ = rustls::crypto::ring::default_provider().install_default();
    let c = Client {
        http: reqwest::Client::new(),
        base: base.clone(),
    };
    let cols = c.json("/taxii2/intel/collections/", &puller).await;
    let community = cols["collections"][0]["id"].as_str().unwrap().to_string();

    // A MISP feed (the pymisp fixture) on a plain HTTP server.
    let feed_dir = base_dir.join("misp-feed");
    std::fs::create_dir_all(&feed_dir).unwrap();
    for e in std::fs::read_dir(repo().join("tests/interop/fixtures/misp-feed")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), feed_dir.join(e.file_name())).unwrap();
    }
    let misp_port = common::free_port_from(18_000 + (std::process::id() % 1000) as u16);
    let mut misp_server = std::process::Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &misp_port.to_string(),
            "--directory",
        ])
        .arg(&feed_dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(common::poll_until(
        std::time::Duration::from_secs(20),
        std::time::Duration::from_millis(100),
        || std::net::TcpStream::connect(("127.0.0.1", misp_port)).is_ok()
    ));

    // B: DE-BKA, pulling both.
    let b = base_dir.join("b");
    ok_json(liaison(&b).arg("init").args([
        "--agency-code",
        "DE-BKA",
        "--agency-name",
        "Bundeskriminalamt",
        "--jurisdiction",
        "DE",
        "--time-zone",
        "Europe/Berlin",
    ]));
    std::fs::write(b.join("fbi.token"), format!("{puller}\n")).unwrap();
    let mut cfg = std::fs::read_to_string(b.join("liaison.toml")).unwrap();
    cfg.push_str(&format!(
        "\n[pull.fbi]\nkind = \"taxii\"\nurl = \"{base}/taxii2/intel/collections/{community}/\"\nuser = \"bka-puller\"\ntoken_file = \"fbi.token\"\nevery_minutes = 0\n\n[pull.huge]\nkind = \"taxii\"\nurl = \"http://127.0.0.1:{misp_port}/huge/\"\nevery_minutes = 0\n\n[pull.csirt]\nkind = \"misp-feed\"\nurl = \"http://127.0.0.1:{misp_port}/\"\ndefault_tlp = \"TLP:AMBER\"\nevery_minutes = 0\n"
    ));
    std::fs::write(b.join("liaison.toml"), cfg).unwrap();
    let pull = |name: &str| -> Value {
        let b = b.clone();
        let name = name.to_string();
        std::thread::spawn(move || ok_json(liaison(&b).args(["intel", "pull", &name])))
            .join()
            .unwrap()
    };

    // The first pull takes the collection: CLEAR and GREEN only (B is community to A).
    let r = pull("fbi");
    let first_items = r[0]["items"].as_u64().unwrap();
    let new = r[0]["ingest"]["new_indicators"].as_u64().unwrap();
    assert!(new > 0, "{r}");
    assert_eq!(r[0]["feed"], "fbi");
    assert_eq!(r[0]["agency"], "DE-BKA");
    let whole = c.all(&community, "", 1000, &puller).await;
    assert_eq!(first_items, whole.len() as u64);
    let exported = base_dir.join("b-export.json");
    ok_json(
        liaison(&b)
            .args(["intel", "export", "--format", "stix", "--out"])
            .arg(&exported),
    );
    let ex: Value = serde_json::from_str(&std::fs::read_to_string(&exported).unwrap()).unwrap();
    let got: HashSet<&str> = levels(ex["objects"].as_array().unwrap());
    assert_eq!(
        got,
        ["CLEAR", "GREEN"].into_iter().collect(),
        "the markings arrive with the indicators"
    );

    // Nothing new: nothing pulled. Then A's analyst adds an indicator: the next pull takes
    // it alone (its indicator and sighting).
    let r = pull("fbi");
    assert_eq!(r[0]["items"], 0, "{r}");
    let envelope = serde_json::json!({"objects": [
        {"type": "indicator", "spec_version": "2.1", "id": "indicator--7a8a4a5e-1d7e-4b1e-9d0e-2f6f3c1b7a01",
         "created": "2026-11-30T10:00:00.000Z", "modified": "2026-11-30T10:00:00.000Z",
         "pattern": "[domain-name:value = 'pulled-later.example']", "pattern_type": "stix",
         "valid_from": "2026-11-30T10:00:00.000Z", "labels": ["phishing"],
         "object_marking_refs": ["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]}]});
    let inbox = c.json("/taxii2/intel/collections/", &analyst).await["collections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["title"] == "FBI: inbox")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let s: Value = c
        .http
        .post(format!("{base}/taxii2/intel/collections/{inbox}/objects/"))
        .header("Accept", TAXII)
        .header("Content-Type", TAXII)
        .bearer_auth(&analyst)
        .body(envelope.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["status"], "complete", "{s}");
    let r = pull("fbi");
    assert_eq!(r[0]["items"], 2, "{r}");
    assert_eq!(r[0]["ingest"]["new_indicators"], 1);

    // The MISP feed: every event once; an event the feed changes is fetched again, alone.
    let r = pull("csirt");
    assert_eq!(r[0]["items"], 3, "{r}");
    assert!(r[0]["ingest"]["new_indicators"].as_u64().unwrap() > 10, "{r}");
    assert_eq!(pull("csirt")[0]["items"], 0);
    let manifest_path = feed_dir.join("manifest.json");
    let mut manifest: Value = serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    let (uuid, _) = manifest
        .as_object()
        .unwrap()
        .iter()
        .next()
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap();
    manifest[&uuid]["timestamp"] = Value::from("1999999999");
    // A hostile key is skipped, never fetched as a path.
    manifest["../../etc/passwd"] = serde_json::json!({"timestamp": "1999999999"});
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    assert_eq!(pull("csirt")[0]["items"], 1);

    // An event with nothing Liaison keeps (every attribute `to_ids: false`): read, judged,
    // reported, and not fetched again.
    let event_path = feed_dir.join(format!("{uuid}.json"));
    let mut ev: Value = serde_json::from_str(&std::fs::read_to_string(&event_path).unwrap()).unwrap();
    for a in ev["Event"]["Attribute"].as_array_mut().unwrap() {
        a["to_ids"] = Value::Bool(false);
    }
    ev["Event"]["Object"] = serde_json::json!([]);
    std::fs::write(&event_path, ev.to_string()).unwrap();
    manifest[&uuid]["timestamp"] = Value::from("2000000000");
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    let r = pull("csirt");
    assert_eq!(r[0]["items"], 1, "{r}");
    assert!(r[0]["problem"].as_str().unwrap().contains("accepted"), "{r}");
    assert_eq!(pull("csirt")[0]["items"], 0);

    // A hostile TAXII server whose page is over 32 MiB: refused before it is read whole.
    let huge = feed_dir.join("huge/objects");
    std::fs::create_dir_all(&huge).unwrap();
    let mut big = String::from("{\"objects\":[");
    while big.len() < (33 << 20) {
        big.push_str(
            "{\"type\":\"note\",\"padding\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"},",
        );
    }
    big.push_str("{}]}");
    std::fs::write(huge.join("index.html"), big).unwrap();
    let o = liaison(&b).args(["intel", "pull", "huge"]).output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("larger than"), "{err}");

    // A broken answer: the pull fails naming it, and the state stays where it was.
    std::fs::write(&manifest_path, "{ not json").unwrap();
    let before = ok_json(liaison(&b).args(["intel", "pull", "--list"]));
    let o = liaison(&b).args(["intel", "pull", "csirt"]).output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("manifest.json") && err.contains("not a MISP manifest"),
        "{err}"
    );
    let after = ok_json(liaison(&b).args(["intel", "pull", "--list"]));
    let csirt = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "csirt")
            .unwrap()
            .clone()
    };
    assert_eq!(csirt(&before)["state"]["events"], csirt(&after)["state"]["events"]);
    assert!(
        csirt(&after)["state"]["last_error"]
            .as_str()
            .unwrap()
            .contains("not a MISP manifest")
    );
    let _ = misp_server.kill();
    let _ = misp_server.wait();
}
