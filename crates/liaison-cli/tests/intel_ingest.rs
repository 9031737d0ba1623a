//! Ingest that never blocks the node (issue #14 part 4), on SQLite and PostgreSQL: mapped CSV
//! sources (`[intel.sources.NAME]`) from the CLI and the API; runs that accept no row, or whose
//! header lacks the format's columns, fail and store nothing (CLI exit 3, API 422, naming the
//! columns expected and found and the file:line); uploads are streamed to a spool file, a second
//! ingest during one is answered 409 with `Retry-After`, progress is readable while it runs, an
//! upload over `[intel] max_upload_bytes` is refused 413 and leaves nothing behind.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod common;

use common::{cmd as liaison, ok_json};

/// The `[intel]` section the tests append to liaison.toml: a mapped source and a small
/// upload limit.
const INTEL_TOML: &str = r#"
[intel]
max_upload_bytes = 65536

[intel.sources.partner-list]
feed = "partner list"
format = "generic"
indicator = "addr"
time_source = "seen"
classification = "type"
default_classification = "c2-server"
"#;

/// A partner's list in the mapped layout (`seen,addr,type`).
const PARTNER_LIST: &str = "seen,addr,type\n2026-10-01,203.0.113.5,c2-server\n2026-10-01,203.0.113.6,phishing\n2026-10-02,198.51.100.7,c2-server\n";

/// A data directory (SQLite, or PostgreSQL at `pg`) with the FBI node, an analyst, and the
/// `[intel]` section above; returns (dir, admin token).
fn setup(tag: &str, pg: Option<&str>) -> (PathBuf, String) {
    let base = common::unique_dir(&format!("liaison-ingest-{tag}"));
    let dir = base.join("node");
    let mut init = liaison(&dir);
    init.arg("init").args(common::FBI_AGENCY);
    if let Some(url) = pg {
        init.args(["--database-url", url]);
    }
    let init = ok_json(&mut init);
    let token = init["admin_token"].as_str().unwrap().to_string();
    let toml = dir.join("liaison.toml");
    let mut text = std::fs::read_to_string(&toml).unwrap();
    assert!(!text.contains("\n[intel]"), "init wrote an [intel] section already");
    text.push_str(INTEL_TOML);
    std::fs::write(&toml, text).unwrap();
    (dir, token)
}

/// Distinct indicators stored, by the statistics of the CLI.
fn indicators(dir: &Path) -> u64 {
    let s = ok_json(liaison(dir).args(["intel", "stats", "--by", "classification"]));
    common::stats_total(&s)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn cli_mapped_source_and_failing_runs(tag: &str, pg: Option<&str>) {
    let (dir, _) = setup(tag, pg);
    // The mapped source reads the partner's columns.
    let list = write(&dir, "partner.csv", PARTNER_LIST);
    let r = ok_json(
        liaison(&dir)
            .args(["intel", "ingest"])
            .arg(&list)
            .args(["--format", "partner-list"]),
    );
    assert_eq!(
        (r["accepted"].as_u64(), r["quarantined"].as_u64()),
        (Some(3), Some(0)),
        "{r}"
    );
    assert_eq!(r["new_indicators"], 3, "{r}");
    assert_eq!(r["sources"][0]["file"], list.display().to_string());
    assert_eq!(indicators(&dir), 3);
    let stats = ok_json(liaison(&dir).args(["intel", "stats", "--by", "classification"]));
    let phishing = stats["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "phishing");
    assert!(phishing.is_some(), "the mapped `type` column was read: {stats}");

    // A file whose header lacks the mapped columns: exit 3, the columns named, nothing stored.
    let other = write(&dir, "other.csv", "when,ip,kind\n2026-10-01,203.0.113.99,c2\n");
    let out = liaison(&dir)
        .args(["intel", "ingest"])
        .arg(&other)
        .args(["--format", "partner-list"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!("{}:1", other.display())),
        "file:line named: {err}"
    );
    assert!(
        err.contains("'addr'") && err.contains("'seen'") && err.contains("'type'"),
        "expected columns: {err}"
    );
    assert!(err.contains("found [when, ip, kind]"), "found columns: {err}");
    assert!(err.contains("nothing was stored"), "{err}");
    assert_eq!(indicators(&dir), 3);

    // The right columns but every row bad in this format (a Liaison CSV read as URLhaus,
    // whose rows have 9 columns): exit 3, the first bad rows with file:line, nothing stored.
    let liaison_csv = write(
        &dir,
        "liaison.csv",
        "time_source,indicator,classification\n2026-10-01,203.0.113.50,c2\n2026-10-01,203.0.113.51,c2\n",
    );
    let out = liaison(&dir)
        .args(["intel", "ingest"])
        .arg(&liaison_csv)
        .args(["--format", "urlhaus"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("none of its 3 rows was accepted"), "{err}");
    assert!(
        err.contains(&format!("{}:1: wrong column count", liaison_csv.display())),
        "{err}"
    );
    assert_eq!(indicators(&dir), 3);

    // An empty run accepts nothing: it fails too.
    let empty = write(&dir, "empty.txt", "# nothing today\n");
    let out = liaison(&dir)
        .args(["intel", "ingest"])
        .arg(&empty)
        .args(["--format", "list"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("no row was accepted"), "{err}");
    // An unknown format names the configured sources among the accepted ones.
    let out = liaison(&dir)
        .args(["intel", "ingest"])
        .arg(&list)
        .args(["--format", "partner"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("partner-list"), "{err}");
    assert_eq!(indicators(&dir), 3);
}

#[test]
fn cli_mapped_source_and_failing_runs_sqlite() {
    cli_mapped_source_and_failing_runs("cli-sqlite", None);
}

#[test]
fn cli_mapped_source_and_failing_runs_postgres() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(url) = rt.block_on(liaison_service::fixtures::postgres_url()) else {
        return;
    };
    cli_mapped_source_and_failing_runs("cli-pg", Some(&url));
}

/// An HTTP/1.1 request whose body is sent by hand: the headers and `first` now, the rest
/// when the caller says so.
struct OpenUpload {
    stream: std::net::TcpStream,
}

impl OpenUpload {
    fn start(addr: &str, path: &str, token: &str, length: usize, first: &[u8]) -> OpenUpload {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: text/csv\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        stream.write_all(first).unwrap();
        stream.flush().unwrap();
        OpenUpload { stream }
    }

    /// Sends the rest and reads the answer: (status, body).
    fn finish(mut self, rest: &[u8]) -> (u16, Value) {
        self.stream.write_all(rest).unwrap();
        self.stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut answer = Vec::new();
        self.stream.read_to_end(&mut answer).unwrap();
        let text = String::from_utf8_lossy(&answer);
        let status: u16 = text.split(' ').nth(1).unwrap().parse().unwrap();
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
        // Chunked or not: the JSON object is between the first '{' and the last '}'.
        let json = match (body.find('{'), body.rfind('}')) {
            (Some(a), Some(b)) => serde_json::from_str(&body[a..=b]).unwrap(),
            _ => Value::Null,
        };
        (status, json)
    }
}

async fn api_busy_progress_limits(tag: &str, pg: Option<&str>) {
    let (dir, admin) = setup(tag, pg);
    let legal = liaison_service::legal::Legal::load(&dir.join("rules")).unwrap();
    let url = match pg {
        Some(u) => u.to_string(),
        None => format!("sqlite://{}", dir.join("liaison.db").display()),
    };
    let toml: toml::Table = toml::from_str(INTEL_TOML).unwrap();
    let cfg: liaison_intel::IntelConfig = toml["intel"].clone().try_into().unwrap();
    let spool = dir.join("spool");
    let node = liaison_service::Node::open(&url, Default::default(), legal)
        .await
        .unwrap()
        .with_intel_config(cfg)
        .with_intel_spool(spool.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let base = format!("http://{addr}");
    let app = liaison_server::api::router(node);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let get = |path: String| {
        let http = http.clone();
        let admin = admin.clone();
        async move {
            let r = http.get(path).bearer_auth(&admin).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };

    // A first upload, half sent: the job is visible, receiving.
    let feed = PARTNER_LIST.as_bytes();
    let (head, rest) = feed.split_at(40);
    let open = {
        let (addr, admin) = (addr.clone(), admin.clone());
        let head = head.to_vec();
        tokio::task::spawn_blocking(move || {
            OpenUpload::start(
                &addr,
                "/api/v1/intel/ingest?format=partner-list&name=partner.csv",
                &admin,
                feed.len(),
                &head,
            )
        })
        .await
        .unwrap()
    };
    let mut receiving = Value::Null;
    let seen = async {
        for _ in 0..600 {
            let (s, jobs) = get(format!("{base}/api/v1/intel/ingests")).await;
            assert_eq!(s, 200, "{jobs}");
            if jobs[0]["bytes_received"].as_u64() == Some(40) {
                receiving = jobs[0].clone();
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }
    .await;
    assert!(seen, "the upload's progress never showed");
    assert_eq!(receiving["state"], "running", "{receiving}");
    assert_eq!(receiving["phase"], "receiving", "{receiving}");
    assert_eq!(receiving["format"], "partner-list");
    assert_eq!(receiving["feed"], "partner list");
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 1, "one spool file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let f = std::fs::read_dir(&spool).unwrap().next().unwrap().unwrap();
        assert_eq!(f.metadata().unwrap().permissions().mode() & 0o777, 0o600);
    }

    // A second ingest meanwhile: 409 with Retry-After and a problem that says why.
    let busy = http
        .post(format!("{base}/api/v1/intel/ingest?format=list"))
        .bearer_auth(&admin)
        .body("203.0.113.77\n")
        .send()
        .await
        .unwrap();
    assert_eq!(busy.status(), 409);
    let retry: u64 = busy.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 0);
    let p: Value = busy.json().await.unwrap();
    assert_eq!(p["title"], "Busy", "{p}");
    assert!(
        p["detail"].as_str().unwrap().contains("one ingest runs at a time"),
        "{p}"
    );

    // The first one finishes: 202 with its job; its progress and report are readable.
    let rest = rest.to_vec();
    let (status, job) = tokio::task::spawn_blocking(move || open.finish(&rest)).await.unwrap();
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let mut done = Value::Null;
    for _ in 0..600 {
        let (s, j) = get(format!("{base}/api/v1/intel/ingest/{id}")).await;
        assert_eq!(s, 200, "{j}");
        if j["state"] != "running" {
            done = j;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["phase"], "done");
    assert_eq!(done["bytes_received"].as_u64(), Some(feed.len() as u64));
    assert_eq!(
        (done["rows"].as_u64(), done["accepted"].as_u64()),
        (Some(3), Some(3)),
        "{done}"
    );
    assert_eq!(done["quarantined"], 0);
    assert_eq!(done["report"]["new_indicators"], 3, "{done}");
    assert!(done["report"]["chunks"].as_u64().unwrap() >= 1);
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0, "spool file removed");
    let (s, _) = get(format!("{base}/api/v1/intel/ingest/{}", uuid::Uuid::now_v7())).await;
    assert_eq!(s, 404);
    assert_eq!(indicators(&dir), 3);

    // A header without the format's columns: 422 naming them (wait=true), nothing stored; the
    // job records the failure.
    let r = http
        .post(format!(
            "{base}/api/v1/intel/ingest?format=liaison&name=wrong.csv&wait=true"
        ))
        .bearer_auth(&admin)
        .body("addr,seen\n203.0.113.90,2026-10-01\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let p: Value = r.json().await.unwrap();
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("wrong.csv:1") && detail.contains("'indicator'") && detail.contains("found [addr, seen]"),
        "{p}"
    );
    // No accepted row (async): the job fails with 422 and the first bad rows.
    let r = http
        .post(format!("{base}/api/v1/intel/ingest?format=list&name=junk.txt"))
        .bearer_auth(&admin)
        .body("not an indicator\nneither this\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let job: Value = r.json().await.unwrap();
    let id = job["id"].as_str().unwrap().to_string();
    let mut failed = Value::Null;
    for _ in 0..600 {
        let (_, j) = get(format!("{base}/api/v1/intel/ingest/{id}")).await;
        if j["state"] != "running" {
            failed = j;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(failed["state"], "failed", "{failed}");
    assert_eq!(failed["error"]["status"], 422, "{failed}");
    let detail = failed["error"]["detail"].as_str().unwrap();
    assert!(
        detail.contains("none of its 2 rows was accepted") && detail.contains("junk.txt:1"),
        "{failed}"
    );
    assert_eq!(indicators(&dir), 3);

    // Over the configured upload limit (64 KiB): 413, nothing stored, no spool file left, and
    // the next ingest goes through.
    let mut big = String::from("seen,addr,type\n");
    let mut i = 0u32;
    while big.len() < 200_000 {
        big.push_str(&format!(
            "2026-10-03,10.{}.{}.{},c2-server\n",
            i >> 16,
            (i >> 8) & 255,
            i & 255
        ));
        i += 1;
    }
    // A client of its own: the node closes this connection while the body is still coming,
    // which must not leave a broken connection in the shared client's pool.
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/intel/ingest?format=partner-list&wait=true"))
        .bearer_auth(&admin)
        .body(big)
        .send()
        .await;
    // The node answers 413 as soon as the limit is passed; the client may see the
    // connection closed while it still sends.
    if let Ok(r) = r {
        assert_eq!(r.status(), 413);
        let p: Value = r.json().await.unwrap();
        assert!(p["detail"].as_str().unwrap().contains("65536 bytes"), "{p}");
    }
    let (_, jobs) = get(format!("{base}/api/v1/intel/ingests")).await;
    assert_eq!(jobs[0]["state"], "failed", "{jobs}");
    assert_eq!(jobs[0]["error"]["status"], 413, "{jobs}");
    assert_eq!(indicators(&dir), 3);
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0, "spool file removed");

    // Mapped source through the API, with a NUL byte read as U+FFFD: it goes through.
    let r = http
        .post(format!("{base}/api/v1/intel/ingest?format=partner-list&wait=true"))
        .bearer_auth(&admin)
        .body("seen,addr,type,note\n2026-10-04,192.0.2.1,c2-server,sink\u{0}hole\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(indicators(&dir), 4);
    // Notices and feedback take the same guard and still work between ingests.
    let issued = http
        .post(format!("{base}/api/v1/intel/notices/issue"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(issued.status(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_busy_progress_and_limits_sqlite() {
    api_busy_progress_limits("api-sqlite", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_busy_progress_and_limits_postgres() {
    let Some(url) = liaison_service::fixtures::postgres_url().await else {
        return;
    };
    api_busy_progress_limits("api-pg", Some(&url)).await;
}
