//! STIX 2.1 and MISP end to end, checked with the peers' own tools (tests/interop/): a node
//! imports a bundle made by the `stix2` library and a MISP feed made by pymisp (the committed
//! fixtures), and a feed of its own with classified indicators and a notice; it exports a
//! STIX bundle, MISP events and a MISP feed; stix2-validator 3.2.0 and `stix2.parse
//! (allow_custom=False)` accept the bundle, pymisp loads the events, misp-stix converts them
//! both ways keeping type (kind and direction), value and TLP, and misp-stix reads Liaison's
//! bundle back with kind, value, direction and TLP. The Python checks run in a venv made by
//! tests/interop/venv.sh: skipped loudly when Python or the registry is unavailable, required
//! where `.ci/run` sets `LIAISON_REQUIRE_INTEROP=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

mod common;

use common::{cmd as liaison, ok_json};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs a script of the interop harness; `None` when it was skipped (no Python, no registry).
fn python(script: &str, args: &[&Path]) -> Option<String> {
    let o = std::process::Command::new("bash")
        .arg(repo().join("tests/interop/venv.sh"))
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    if out.contains("INTEROP CHECK SKIPPED") && o.status.success() {
        eprintln!("{out}");
        return None;
    }
    assert!(o.status.success(), "{script} failed:\nstdout: {out}\nstderr: {err}");
    Some(out)
}

/// The fixture indicators (tests/interop/fixtures/expected.json): (value, kind, tlp word).
fn expected() -> Vec<(String, String, String, String)> {
    let text = std::fs::read_to_string(repo().join("tests/interop/fixtures/expected.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    for rows in v["fixtures"].as_object().unwrap().values() {
        for r in rows.as_array().unwrap() {
            let s = |k: &str| r[k].as_str().unwrap().to_string();
            out.push((s("value"), s("kind"), s("tlp"), s("direction")));
        }
    }
    out
}

/// The kind a MISP attribute type names, and its direction.
fn misp_kind(ty: &str, value: &str) -> (&'static str, &'static str) {
    match ty {
        "ip-src" | "ip-dst" => (
            if value.contains(':') { "ipv6" } else { "ipv4" },
            if ty == "ip-src" { "src" } else { "dst" },
        ),
        "domain" => ("domain", "none"),
        "url" => ("url", "none"),
        "email-src" => ("email", "src"),
        "md5" | "sha1" | "sha256" => ("file-hash", "none"),
        "AS" => ("asn", "none"),
        other => panic!("unexpected MISP type {other}"),
    }
}

#[test]
fn stix_and_misp_both_ways_with_the_peers_tools() {
    let base = common::unique_dir("liaison-interop");
    let dir = base.join("node");
    ok_json(liaison(&dir).arg("init").args(common::FBI_AGENCY));
    liaison(&dir)
        .args(["user", "add", "fbi-analyst", "--agency", "FBI", "--role", "analyst"])
        .assert()
        .success();
    let fixtures = repo().join("tests/interop/fixtures");
    // A source with a small document cap, to see a bundle over it refused.
    let toml = dir.join("liaison.toml");
    let mut text = std::fs::read_to_string(&toml).unwrap();
    text.push_str(
        "\n[intel.sources.tiny-stix]\nformat = \"stix\"\nfeed = \"tiny\"\nlimits = { max_document_bytes = 1000 }\n",
    );
    std::fs::write(&toml, text).unwrap();
    let refused = liaison(&dir)
        .args(["--as", "fbi-analyst", "intel", "ingest", "--format", "tiny-stix"])
        .arg(fixtures.join("stix2-lib-bundle.json"))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(3), "{refused:?}");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("larger than the limit of 1000 bytes") && err.contains("nothing of it was imported"),
        "{err}"
    );

    // --- Import: a bundle made by the stix2 library, a MISP feed made by pymisp. ---
    let stix_in = ok_json(
        liaison(&dir)
            .args(["--as", "fbi-analyst", "intel", "ingest", "--format", "stix"])
            .arg(fixtures.join("stix2-lib-bundle.json")),
    );
    assert_eq!(stix_in["sources"][0]["accepted"], 17, "{stix_in:#}");
    assert_eq!(stix_in["sources"][0]["quarantined"], 0, "{stix_in:#}");
    let misp_in = ok_json(
        liaison(&dir)
            .args(["--as", "fbi-analyst", "intel", "ingest", "--format", "misp"])
            .arg(fixtures.join("misp-feed")),
    );
    let accepted: u64 = misp_in["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["accepted"].as_u64().unwrap())
        .sum();
    assert_eq!(accepted, 17, "{misp_in:#}");

    // A feed of the node's own: classified indicators in both directions, one routed to a
    // partner so a notice (a STIX report) is issued.
    let csv = base.join("own.csv");
    std::fs::write(
        &csv,
        "indicator,classification,malware,tlp,first_seen,last_seen\n\
         198.51.100.77,c2-server,QakBot,TLP:AMBER,2026-11-01T00:00:00Z,2026-11-03T00:00:00Z\n\
         203.0.113.99,infected-system,,TLP:AMBER+STRICT,2026-11-02T00:00:00Z,2026-11-02T06:00:00Z\n\
         2001:db8::99,scanner,,TLP:GREEN,2026-11-02T00:00:00Z,2026-11-02T00:00:00Z\n\
         http://evil.example/dl,malware-distribution,Emotet,TLP:CLEAR,2026-11-01T00:00:00Z,2026-11-01T00:00:00Z\n",
    )
    .unwrap();
    ok_json(
        liaison(&dir)
            .args(["--as", "fbi-analyst", "intel", "ingest", "--format", "liaison"])
            .arg(&csv)
            .args(["--route", "198.51.100.77=FBI"]),
    );
    ok_json(liaison(&dir).args([
        "--as",
        "fbi-analyst",
        "intel",
        "notices",
        "--issue",
        "--since",
        "2026-10-01",
        "--until",
        "2026-12-01",
    ]));

    // --- Export. ---
    let out = base.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let (stix, misp, feed) = (
        out.join("export.stix.json"),
        out.join("export.misp.json"),
        out.join("feed"),
    );
    // `intel export` as the analyst, with extra flags, to `path`.
    let export = |extra: &[&str], path: &Path| {
        ok_json(
            liaison(&dir)
                .args(["--as", "fbi-analyst", "intel", "export"])
                .args(extra)
                .arg("--out")
                .arg(path),
        )
    };
    let s = export(&["--format", "stix"], &stix);
    assert_eq!(
        (s["indicators"].as_u64(), s["notices"].as_u64()),
        (Some(38), Some(1)),
        "{s:#}"
    );
    export(&["--format", "misp"], &misp);
    export(&["--format", "misp-feed"], &feed);
    // A community export leaves out what is marked above TLP:GREEN.
    let green = export(
        &["--format", "stix", "--tlp-max", "TLP:GREEN"],
        &out.join("green.stix.json"),
    );
    let bundle: Value = serde_json::from_slice(&std::fs::read(out.join("green.stix.json")).unwrap()).unwrap();
    for o in bundle["objects"].as_array().unwrap() {
        for m in o["object_marking_refs"].as_array().unwrap_or(&Vec::new()) {
            let level = liaison_intel::stix::tlp_of_marking_ref(m.as_str().unwrap()).unwrap();
            assert!(level <= liaison_core::Tlp::Green, "{o}");
        }
    }
    assert!(green["left_out_by_marking"].as_u64().unwrap() > 0);

    // What was imported is exported with its kind and marking ("default": TLP:RED).
    let events: Value = serde_json::from_slice(&std::fs::read(&misp).unwrap()).unwrap();
    let mut exported: HashMap<String, (String, String, String)> = HashMap::new();
    for e in events["response"].as_array().unwrap() {
        let tlp = e["Event"]["Tag"][0]["name"]
            .as_str()
            .unwrap()
            .trim_start_matches("tlp:")
            .to_string();
        for a in e["Event"]["Attribute"].as_array().unwrap() {
            let (ty, value) = (a["type"].as_str().unwrap(), a["value"].as_str().unwrap());
            let (kind, dir) = misp_kind(ty, value);
            exported.insert(value.to_string(), (kind.to_string(), dir.to_string(), tlp.clone()));
        }
    }
    // Two MISP attributes have no TLP tag and inherit their event's distribution 3 "All
    // communities": CLEAR by the documented table (docs/intel-formats.md); expected.json,
    // which looks at TLP tags only, says "default" for them.
    let by_distribution = [
        "203.0.113.31",
        "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
    ];
    for (value, kind, tlp, _) in expected() {
        let got = exported
            .get(&value)
            .unwrap_or_else(|| panic!("{value} was not exported"));
        let tlp = match tlp.as_str() {
            "default" if by_distribution.contains(&value.as_str()) => "clear".to_string(),
            "default" => "red".to_string(),
            _ => tlp,
        };
        assert_eq!((&got.0, &got.2), (&kind, &tlp), "{value}");
    }
    assert_eq!(exported["198.51.100.77"].1, "dst", "a C2 server");
    assert_eq!(exported["203.0.113.99"].1, "src", "an infected machine");
    assert_eq!(exported["2001:db8::99"].1, "src", "a scanner");

    // --- The peers' tools. ---
    if python("check_stix.py", &[&stix]).is_none() {
        return;
    }
    python("check_stix.py", &[&out.join("green.stix.json")]);
    python("check_misp.py", &[&misp]);
    python("check_misp.py", &[&feed]);
    // misp-stix reads Liaison's bundle (its parser of other tools' STIX) with kind, value,
    // direction and TLP.
    let conv: Value = serde_json::from_str(&python("stix_to_misp.py", &[&stix]).unwrap()).unwrap();
    let mut seen = 0;
    for a in conv["attributes"].as_array().unwrap() {
        let value = a["value"].as_str().unwrap().trim_start_matches("AS");
        let key = if a["kind"] == "asn" {
            format!("AS{value}")
        } else {
            value.to_string()
        };
        let Some((kind, dir, tlp)) = exported.get(&key) else {
            continue;
        };
        seen += 1;
        assert_eq!(a["kind"].as_str(), Some(kind.as_str()), "{a}");
        // The attribute's own marking; misp-stix leaves it out where the event (which it
        // makes of the notice's report, with the report's marking) carries the same tag.
        let own: Vec<&str> = a["tags"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t.as_str()?.strip_prefix("tlp:"))
            .collect();
        match own.as_slice() {
            [] => assert_eq!(a["tlp"].as_str(), Some(tlp.as_str()), "inherited from the event: {a}"),
            _ => assert_eq!(own, [tlp.as_str()], "{a}"),
        }
        if kind.starts_with("ipv") {
            let want = if dir == "src" { "src" } else { "dst" };
            assert_eq!(a["direction"].as_str(), Some(want), "{a}");
        }
    }
    assert_eq!(seen, exported.len(), "misp-stix read every indicator: {conv:#}");
}

/// The API: `GET /api/v1/intel/export` and the MISP feed a MISP instance subscribes to, for
/// the operators of the agency that ingested the indicators only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_export_and_misp_feed() {
    let base_dir = common::unique_dir("liaison-interop-api");
    let dir = base_dir.join("node");
    let init = ok_json(liaison(&dir).arg("init").args(common::FBI_AGENCY));
    let admin = init["admin_token"].as_str().unwrap().to_string();
    liaison(&dir)
        .args(["user", "add", "fbi-officer", "--agency", "FBI", "--role", "officer"])
        .assert()
        .success();
    let officer = ok_json(liaison(&dir).args(["token", "create", "fbi-officer"]));
    let officer = officer["token"].as_str().unwrap().to_string();

    let legal = liaison_service::legal::Legal::load(&dir.join("rules")).unwrap();
    let url = format!("sqlite://{}", dir.join("liaison.db").display());
    let node = liaison_service::Node::open(&url, Default::default(), legal)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = liaison_server::api::router(node);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let get = |path: &str, token: &str| http.get(format!("{base}{path}")).bearer_auth(token.to_string()).send();

    // Import over the API: a STIX bundle made by the stix2 library.
    let bundle = std::fs::read(repo().join("tests/interop/fixtures/stix2-lib-bundle.json")).unwrap();
    let r = http
        .post(format!("{base}/api/v1/intel/ingest?format=stix&wait=true"))
        .bearer_auth(&admin)
        .body(bundle)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r: Value = r.json().await.unwrap();
    assert_eq!(r["new_indicators"], 17, "{r}");

    // Export: a STIX bundle as an attachment, with what was left out counted.
    let r = get("/api/v1/intel/export?format=stix&tlp_max=TLP:GREEN", &admin)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "application/stix+json;version=2.1");
    assert!(h["content-disposition"].to_str().unwrap().starts_with("attachment"));
    let left_out: u64 = h["x-liaison-left-out-by-marking"].to_str().unwrap().parse().unwrap();
    let kept: u64 = h["x-liaison-indicators"].to_str().unwrap().parse().unwrap();
    assert_eq!(kept + left_out, 17);
    assert!(left_out > 0 && kept > 0);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["type"], "bundle");
    let indicators = b["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["type"] == "indicator")
        .count() as u64;
    assert_eq!(indicators, kept);

    // Only operators export: an officer is refused; bad parameters name the field.
    let r = get("/api/v1/intel/export?format=stix", &officer).await.unwrap();
    assert_eq!(r.status(), 403);
    for (q, field) in [
        ("format=xml", "format"),
        ("format=stix&tlp_max=PURPLE", "tlp_max"),
        ("format=stix&x=1", "x"),
    ] {
        let r = get(&format!("/api/v1/intel/export?{q}"), &admin).await.unwrap();
        assert_eq!(r.status(), 400, "{q}");
        let p: Value = r.json().await.unwrap();
        assert!(p.to_string().contains(field), "{q}: {p}");
    }

    // The MISP feed: the manifest lists events, each served as <uuid>.json.
    let m: Value = get("/api/v1/intel/misp-feed/manifest.json", &admin)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&String> = m.as_object().unwrap().keys().collect();
    assert!(!ids.is_empty());
    let mut attributes = 0;
    for id in &ids {
        let e: Value = get(&format!("/api/v1/intel/misp-feed/{id}.json"), &admin)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(e["Event"]["uuid"].as_str(), Some(id.as_str()));
        assert_eq!(e["Event"]["timestamp"], m[id.as_str()]["timestamp"]);
        attributes += e["Event"]["Attribute"].as_array().unwrap().len();
    }
    assert_eq!(attributes, 17);
    let r = get(
        "/api/v1/intel/misp-feed/00000000-0000-4000-8000-000000000000.json",
        &admin,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 404);
    let r = get("/api/v1/intel/misp-feed/..%2Fliaison.db", &admin).await.unwrap();
    assert_eq!(r.status(), 400);
}
