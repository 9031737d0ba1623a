//! Crash safety under write load (#12): a real `liaison serve` process is SIGKILLed while
//! clients write to it, restarted on the same data, and checked — on SQLite and on PostgreSQL.
//!
//! - **Requests, transitions, comments.** Six clients walk requests through the lifecycle over
//!   the HTTP API (create, submit, acknowledge, comment, review, accept, execute, answer, close,
//!   each with the token of a user allowed to), recording every write the server answered with
//!   a 2xx. After a number of acknowledged writes (different in each round, fixed by the test) the
//!   server is killed; after the restart every acknowledged request is there with at least the
//!   acknowledged version and state (and a transition event into that state), every acknowledged
//!   comment is there with its id and text (once), `liaison audit verify` exits 0 and counts at
//!   least one more entry per acknowledged write, and the clients go on from what the node says
//!   (a write in flight at the kill may have landed or not; the test accepts either). Five rounds.
//! - **Intel ingest.** An ingest parses outside the write lock and writes in many short
//!   transactions, journalled (schema migration 12; `liaison_service::intel_ingest`): deleting
//!   its journal row is its commit point, and a run killed before it is rolled back when the
//!   node starts again (or by the next ingest). So what the design guarantees is still
//!   all-or-nothing once the node is back: a run killed before its commit leaves no trace and is
//!   simply run again; a run the server answered is fully stored. After a CLI kill the server
//!   is restarted too, to roll the CLI's run back. The test compares the indicator table
//!   row by row with a reference built by the same feeds on a node that was never killed: after
//!   each kill the table is exactly the state before the killed run (or, if the commit won the
//!   race, exactly the state after it; an answered run must be the latter), the re-run then gives
//!   exactly the reference, and a last re-run of an ingested feed adds no indicator and no row.
//!   The server is killed during an API ingest at 30% and 90% of the duration of an
//!   uninterrupted one and as soon as the ingest is seen writing (SQLite: its first write to the
//!   WAL, i.e. its commit; PostgreSQL: its row upsert running), and `liaison intel ingest` (a CLI
//!   process writing while the server runs on) is killed as soon as it is seen writing. At least
//!   one kill must have left a run uncommitted (else no partial run was exercised).
//!
//! SIGKILL tests a process crash: what the database has been told to commit survives it whatever
//! the `synchronous` setting. A power loss (the OS losing its page cache) is not simulated here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

use common::BIN;

// The tests run one at a time: each loads the machine's two cores on its own.
use common::serial;

fn base(name: &str) -> PathBuf {
    common::unique_dir(&format!("liaison-crash-{name}"))
}

/// A port for the federation listener (written into the configuration by `init`, bound by
/// `serve`): below the ephemeral range, distinct within this process, checked free.
fn free_port() -> u16 {
    common::free_port_from(common::port_slot(23))
}

/// A small deterministic generator (xorshift), so that every run kills at the same points.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

// ----- a node: its data directory, its database and its `liaison serve` process -------------

struct Node {
    base: PathBuf,
    dir: PathBuf,
    /// The database: `sqlite://…` or the PostgreSQL URL of a fresh schema.
    db_url: String,
    child: Option<Child>,
    /// API base URL of the running server (`http://127.0.0.1:PORT`).
    api: String,
    starts: usize,
    tokens: HashMap<&'static str, String>,
    fbi: String,
    mps: String,
}

impl Node {
    /// `liaison init` (FBI) on SQLite or on `pg`, CN-MPS served by the same node, and a user
    /// with a token for each role the lifecycle needs: `officer` (FBI), `desk`, `legal` and
    /// `mps` (a CN-MPS officer), plus the administrator's token from `init` (`admin`).
    fn init(name: &str, pg: Option<&str>) -> Node {
        let base = base(name);
        let dir = base.join("node");
        let mut n = Node {
            db_url: match pg {
                Some(url) => url.to_string(),
                None => format!("sqlite://{}?mode=ro", dir.join("liaison.db").display()),
            },
            base,
            dir,
            child: None,
            api: String::new(),
            starts: 0,
            tokens: HashMap::new(),
            fbi: String::new(),
            mps: String::new(),
        };
        let fed = format!("127.0.0.1:{}", free_port());
        let mut args = vec!["init"];
        args.extend(common::FBI_AGENCY);
        args.extend(["--federation-listen", &fed]);
        if let Some(url) = pg {
            args.extend(["--database-url", url]);
        }
        let init = n.json(&args);
        n.tokens
            .insert("admin", init["admin_token"].as_str().unwrap().to_string());
        n.fbi = init["agency"]["id"].as_str().unwrap().to_string();
        let mps = n.json(&common::ADD_CN_MPS);
        n.mps = mps["id"].as_str().unwrap().to_string();
        for (user, agency, role) in [
            ("officer", "FBI", "officer"),
            ("desk", "CN-MPS", "desk"),
            ("legal", "CN-MPS", "legal_reviewer"),
            ("mps", "CN-MPS", "officer"),
        ] {
            n.ok(&["user", "add", user, "--agency", agency, "--role", role]);
            let t = n.json(&["token", "create", user]);
            n.tokens.insert(user, t["token"].as_str().unwrap().to_string());
        }
        n
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--data-dir")
            .arg(&self.dir)
            .args(args)
            .env_remove("LIAISON_USER")
            .env_remove("LIAISON_DATA_DIR")
            .env_remove("LIAISON_DATABASE_URL")
            .env_remove("LIAISON_LISTEN")
            .env("LIAISON_LOG", "warn")
            .env("NO_COLOR", "1");
        c
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        self.command(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "liaison {args:?} failed ({}): {}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    fn log(&self) -> PathBuf {
        self.base.join(format!("serve-{}.log", self.starts))
    }

    fn log_text(&self) -> String {
        common::read_log(&self.log())
    }

    /// Starts `liaison serve` on a port the kernel picks (read back from its first line) and
    /// waits until `/api/v1/health` answers 200.
    async fn start(&mut self) {
        assert!(self.child.is_none());
        self.starts += 1;
        let child = self
            .command(&["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.log()).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let probe = http_with(Duration::from_secs(5));
        let t0 = Instant::now();
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("liaison serve exited on start ({status}):\n{}", self.log_text());
            }
            let log = self.log_text();
            if let Some(addr) = log.lines().find_map(common::served_address) {
                let api = format!("http://{addr}");
                if let Ok(r) = probe.get(format!("{api}/api/v1/health")).send().await
                    && r.status().is_success()
                {
                    self.api = api;
                    return;
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "liaison serve not healthy within 60 s:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// SIGKILL: no shutdown code runs, exactly as in a crash.
    fn kill(&mut self) {
        common::kill(&mut self.child);
    }

    /// `liaison audit verify` must exit 0; returns the number of entries.
    fn audit_verify(&self) -> i64 {
        let o = self.run(&["--json", "audit", "verify"]);
        assert!(
            o.status.success(),
            "audit verify failed ({}): {}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let r: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert!(r["first_bad"].is_null(), "{r}");
        r["entries"].as_i64().unwrap()
    }

    async fn health(&self, http: &reqwest::Client) {
        let r = http.get(format!("{}/api/v1/health", self.api)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn http_with(timeout: Duration) -> reqwest::Client {
    // reqwest is built with rustls and no default crypto provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(timeout).build().unwrap()
}

fn http() -> reqwest::Client {
    http_with(Duration::from_secs(300))
}

// ----- requests, transitions and comments under load -----------------------------------------

/// One step of a request's life, with the user who takes it.
#[derive(Clone, Copy, Debug)]
enum Step {
    Create,
    To(&'static str, &'static str),
    Comment(&'static str),
}

const CHAIN: [Step; 11] = [
    Step::Create,
    Step::To("submitted", "officer"), // answered as `received`: CN-MPS is on this node
    Step::To("acknowledged", "desk"),
    Step::Comment("desk"),
    Step::To("in_review", "legal"),
    Step::Comment("legal"),
    Step::To("accepted", "legal"),
    Step::To("executing", "desk"),
    Step::Comment("officer"),
    Step::To("answered", "mps"),
    Step::To("closed", "officer"),
];

/// The states a request of the chain goes through, in order.
const ORDER: [&str; 9] = [
    "draft",
    "submitted",
    "received",
    "acknowledged",
    "in_review",
    "accepted",
    "executing",
    "answered",
    "closed",
];

fn rank(state: &str) -> usize {
    ORDER
        .iter()
        .position(|s| *s == state)
        .unwrap_or_else(|| panic!("state {state} is not on the test's path"))
}

/// The step after a request in `state` (None: closed, start a new one).
fn next_step(state: &str) -> Option<usize> {
    match state {
        "draft" => Some(1),
        // `submitted` alone is never stored here (submission and local receipt are one write):
        // acknowledging it then fails loudly.
        "submitted" | "received" => Some(2),
        "acknowledged" => Some(3),
        "in_review" => Some(5),
        "accepted" => Some(7),
        "executing" => Some(8),
        "answered" => Some(10),
        "closed" => None,
        other => panic!("unexpected state {other}"),
    }
}

#[derive(Clone, Debug)]
struct AckedRequest {
    version: i64,
    state: String,
}

/// Everything the server acknowledged (answered 2xx), over all rounds.
#[derive(Clone, Default)]
struct Acked {
    requests: BTreeMap<String, AckedRequest>,
    /// (request, event id, text)
    comments: Vec<(String, String, String)>,
    writes: usize,
}

struct Load {
    http: reqwest::Client,
    api: String,
    tokens: HashMap<&'static str, String>,
    fbi: String,
    mps: String,
    acked: Arc<Mutex<Acked>>,
    count: Arc<AtomicUsize>,
    /// Writes sent and not yet answered.
    in_flight: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

/// The server went away (connection refused or reset, an answer cut short): the expected
/// end of a round.
struct Gone;

impl Load {
    async fn send(&self, user: &str, path: &str, body: Value) -> Result<Value, Gone> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let r = self.send_counted(user, path, body).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        r
    }

    async fn send_counted(&self, user: &str, path: &str, body: Value) -> Result<Value, Gone> {
        let r = self
            .http
            .post(format!("{}{path}", self.api))
            .bearer_auth(&self.tokens[user])
            .json(&body)
            .send()
            .await
            .map_err(|_| Gone)?;
        let status = r.status();
        // A body cut by the kill is not an acknowledgement.
        let text = r.text().await.map_err(|_| Gone)?;
        assert!(status.is_success(), "POST {path} as {user}: {status} {text}");
        Ok(serde_json::from_str(&text).unwrap())
    }

    async fn get(&self, path: &str) -> Result<Value, Gone> {
        let r = self
            .http
            .get(format!("{}{path}", self.api))
            .bearer_auth(&self.tokens["officer"])
            .send()
            .await
            .map_err(|_| Gone)?;
        let status = r.status();
        let text = r.text().await.map_err(|_| Gone)?;
        assert!(status.is_success(), "GET {path}: {status} {text}");
        Ok(serde_json::from_str(&text).unwrap())
    }

    fn ack(&self, f: impl FnOnce(&mut Acked)) {
        let mut a = self.acked.lock().unwrap();
        f(&mut a);
        a.writes += 1;
        drop(a);
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    /// One client: walks requests through `CHAIN` until the server goes away, starting with
    /// the request it had when the last round ended (read back from the node). Returns the
    /// request it is working on.
    async fn client(self: Arc<Self>, who: usize, round: usize, mut current: Option<String>) -> Option<String> {
        let mut step = 0;
        // The version this client last saw (a comment does not change it).
        let mut version = 0;
        if let Some(id) = &current {
            let Ok(r) = self.get(&format!("/api/v1/requests/{id}")).await else {
                return current;
            };
            version = r["version"].as_i64().unwrap();
            match next_step(r["state"].as_str().unwrap()) {
                Some(s) => step = s,
                None => current = None,
            }
        }
        let mut n = 0;
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return current;
            }
            n += 1;
            let done = match CHAIN[step] {
                Step::Create => {
                    let case = format!("CRASH-{round}-{who}-{n}");
                    let draft = json!({
                        "kind": "subscriber_information",
                        "urgency": "routine",
                        "requesting_agency": self.fbi,
                        "requested_agency": self.mps,
                        "case_reference": case,
                        "offences": ["BC-02"],
                        "summary": "Subscriber of the account that controls the botnet",
                        "targets": [{
                            "value": {"type": "email", "address": "c2@example.cn"},
                            "from": "2026-01-01T00:00:00Z",
                            "until": "2026-01-31T00:00:00Z"
                        }],
                        "legal_basis": "18 USC 2703(d); Budapest Art 31"
                    });
                    self.send("officer", "/api/v1/requests", draft).await.map(|r| {
                        let id = r["id"].as_str().unwrap().to_string();
                        assert_eq!(r["state"], "draft", "{r}");
                        version = r["version"].as_i64().unwrap();
                        self.ack(|a| {
                            a.requests.insert(
                                id.clone(),
                                AckedRequest {
                                    version,
                                    state: "draft".into(),
                                },
                            );
                        });
                        current = Some(id);
                    })
                }
                Step::To(to, user) => {
                    let id = current.clone().unwrap();
                    self.send(
                        user,
                        &format!("/api/v1/requests/{id}/transitions"),
                        json!({"version": version, "to": to}),
                    )
                    .await
                    .map(|r| {
                        let state = r["state"].as_str().unwrap().to_string();
                        version = r["version"].as_i64().unwrap();
                        self.ack(|a| {
                            a.requests.insert(id, AckedRequest { version, state });
                        });
                    })
                }
                Step::Comment(user) => {
                    let id = current.clone().unwrap();
                    let text = format!("round {round} client {who} write {n} by {user}");
                    self.send(
                        user,
                        &format!("/api/v1/requests/{id}/comments"),
                        json!({ "text": text }),
                    )
                    .await
                    .map(|r| {
                        assert_eq!(r["reason"], text.as_str(), "{r}");
                        let event = r["id"].as_str().unwrap().to_string();
                        self.ack(|a| a.comments.push((id, event, text)));
                    })
                }
            };
            if done.is_err() {
                return current;
            }
            step += 1;
            if step == CHAIN.len() {
                step = 0;
                current = None;
            }
        }
    }
}

/// Checks that everything acknowledged so far is stored, through the API of the restarted
/// node. Returns how many writes that were never acknowledged are stored too (writes in
/// flight at the kill that committed: state changes beyond the acknowledged version, and
/// comments).
async fn check_acknowledged(node: &Node, http: &reqwest::Client, acked: &Acked) -> usize {
    let mut landed = 0;
    let acked_events: HashSet<&str> = acked.comments.iter().map(|c| c.1.as_str()).collect();
    let load = Load {
        http: http.clone(),
        api: node.api.clone(),
        tokens: node.tokens.clone(),
        fbi: node.fbi.clone(),
        mps: node.mps.clone(),
        acked: Arc::new(Mutex::new(Acked::default())),
        count: Arc::new(AtomicUsize::new(0)),
        in_flight: Arc::new(AtomicUsize::new(0)),
        stop: Arc::new(AtomicBool::new(false)),
    };
    let mut comments_by_request: HashMap<&str, Vec<(&str, &str)>> = HashMap::new();
    for (rq, ev, text) in &acked.comments {
        comments_by_request
            .entry(rq.as_str())
            .or_default()
            .push((ev.as_str(), text.as_str()));
    }
    for (id, want) in &acked.requests {
        let Ok(r) = load.get(&format!("/api/v1/requests/{id}")).await else {
            panic!("the restarted node went away");
        };
        let Ok(events) = load.get(&format!("/api/v1/requests/{id}/events")).await else {
            panic!("the restarted node went away");
        };
        let state = r["state"].as_str().unwrap();
        let version = r["version"].as_i64().unwrap();
        assert!(
            version >= want.version && rank(state) >= rank(&want.state),
            "request {id}: acknowledged at version {} in {}, stored at version {version} in {state}",
            want.version,
            want.state
        );
        let events = events.as_array().unwrap();
        if version > want.version {
            landed += 1;
        }
        landed += events
            .iter()
            .filter(|e| e["event"] == "comment" && !acked_events.contains(e["id"].as_str().unwrap()))
            .count();
        if want.state != "draft" {
            assert!(
                events
                    .iter()
                    .any(|e| e["event"] == "transition" && e["to_state"] == want.state.as_str()),
                "request {id}: no transition event into the acknowledged state {}: {events:?}",
                want.state
            );
        }
        let mut ids = HashSet::new();
        for e in events {
            assert!(ids.insert(e["id"].as_str().unwrap()), "request {id}: event twice: {e}");
        }
        let mut texts = HashSet::new();
        for e in events.iter().filter(|e| e["event"] == "comment") {
            assert!(
                texts.insert(e["reason"].as_str().unwrap()),
                "request {id}: comment stored twice: {e}"
            );
        }
        for (ev, text) in comments_by_request.remove(id.as_str()).unwrap_or_default() {
            assert!(
                events
                    .iter()
                    .any(|e| e["id"] == ev && e["event"] == "comment" && e["reason"] == text),
                "request {id}: acknowledged comment {ev} ({text:?}) missing: {events:?}"
            );
        }
    }
    assert!(
        comments_by_request.is_empty(),
        "comments on requests never acknowledged: {comments_by_request:?}"
    );
    node.health(http).await;
    landed
}

async fn requests_under_sigkill(name: &str, pg: Option<&str>) {
    const CLIENTS: usize = 6;
    const ROUNDS: usize = 5;
    let mut node = Node::init(name, pg);
    node.start().await;
    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut current: Vec<Option<String>> = vec![None; CLIENTS];
    let mut rng = Rng(0x5eed_c0ff_ee00_0012);
    let mut audit_entries = node.audit_verify();
    let started = Instant::now();
    for round in 0..ROUNDS {
        let http = http();
        let count = Arc::new(AtomicUsize::new(0));
        let load = Arc::new(Load {
            http: http.clone(),
            api: node.api.clone(),
            tokens: node.tokens.clone(),
            fbi: node.fbi.clone(),
            mps: node.mps.clone(),
            acked: acked.clone(),
            count: count.clone(),
            in_flight: Arc::new(AtomicUsize::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
        });
        let writes_before = acked.lock().unwrap().writes;
        let clients: Vec<_> = (0..CLIENTS)
            .map(|who| tokio::spawn(load.clone().client(who, round, current[who].clone())))
            .collect();
        // Kill after a number of acknowledged writes that differs from round to round.
        let target = 50 + rng.below(250) as usize;
        let t0 = Instant::now();
        let mut early = false;
        while count.load(Ordering::SeqCst) < target {
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "only {} writes acknowledged in 120 s:\n{}",
                count.load(Ordering::SeqCst),
                node.log_text()
            );
            if clients.iter().any(|c| c.is_finished()) {
                early = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let in_flight = load.in_flight.load(Ordering::SeqCst);
        node.kill();
        for (who, c) in clients.into_iter().enumerate() {
            // A client's failed assertion surfaces here.
            current[who] = c.await.unwrap();
        }
        assert!(!early, "a client lost the server before the kill:\n{}", node.log_text());
        // What the server acknowledged, from here on only read.
        let a = acked.lock().unwrap().clone();
        let this_round = a.writes - writes_before;
        eprintln!(
            "{name} round {round}: killed after {target} acknowledged writes with {in_flight} in flight ({this_round} acknowledged in the round; {} requests, {} comments so far)",
            a.requests.len(),
            a.comments.len()
        );
        node.start().await;
        let landed = check_acknowledged(&node, &http, &a).await;
        eprintln!(
            "{name} round {round}: after the restart every acknowledged write is there; unacknowledged writes found stored as well: {landed}"
        );
        // Every acknowledged write wrote at least one audit entry, in its own transaction.
        let entries = node.audit_verify();
        assert!(
            entries >= audit_entries + this_round as i64,
            "audit log: {entries} entries after the restart, {audit_entries} before the round and {this_round} writes acknowledged in it"
        );
        audit_entries = entries;
    }
    // The node serves again: one more request through its first steps, then everything again.
    let http = http();
    let load = Arc::new(Load {
        http: http.clone(),
        api: node.api.clone(),
        tokens: node.tokens.clone(),
        fbi: node.fbi.clone(),
        mps: node.mps.clone(),
        acked: acked.clone(),
        count: Arc::new(AtomicUsize::new(0)),
        in_flight: Arc::new(AtomicUsize::new(0)),
        stop: Arc::new(AtomicBool::new(false)),
    });
    let writes_before = acked.lock().unwrap().writes;
    let stop = load.stop.clone();
    let count = load.count.clone();
    let c = tokio::spawn(load.clone().client(CLIENTS, ROUNDS, None));
    while count.load(Ordering::SeqCst) < 5 && !c.is_finished() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::SeqCst);
    c.await.unwrap();
    assert!(
        acked.lock().unwrap().writes >= writes_before + 5,
        "the restarted node took no writes"
    );
    let a = acked.lock().unwrap().clone();
    check_acknowledged(&node, &http, &a).await;
    node.audit_verify();
    eprintln!(
        "{name}: {} acknowledged writes ({} requests, {} comments) over {ROUNDS} kills, all present; {:.1} s",
        a.writes,
        a.requests.len(),
        a.comments.len(),
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)] // the lock only orders the tests of this file
async fn requests_transitions_comments_survive_sigkill_sqlite() {
    let _serial = serial();
    requests_under_sigkill("requests-sqlite", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)]
async fn requests_transitions_comments_survive_sigkill_postgres() {
    let _serial = serial();
    let Some(url) = liaison_service::fixtures::postgres_url().await else {
        return;
    };
    requests_under_sigkill("requests-pg", Some(&url)).await;
}

// ----- intel ingest ------------------------------------------------------------------------

/// Small feeds ingested first (acknowledged), then the large ones the kills interrupt.
const SMALL_FEEDS: [u64; 3] = [101, 102, 103];
const LARGE_FEEDS: [u64; 5] = [201, 202, 203, 204, 205];
const LARGE_ROWS: u64 = 60_000;

/// One row of `intel_indicator`: every column that depends only on the feeds (not on when
/// they were ingested).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    id: i64,
    kind: String,
    value: String,
    classification: String,
    malware: Option<String>,
    first_seen: i64,
    last_seen: i64,
    sightings: i64,
    confidence: i64,
    tlp: String,
    victim_count: Option<i64>,
    status: String,
    reappearances: i64,
}

async fn indicators(db_url: &str) -> Vec<Row> {
    use sqlx::Row as _;
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(db_url)
        .await
        .unwrap();
    let rows = sqlx::query(
        "SELECT CAST(id AS BIGINT), kind, value, classification, malware, CAST(first_seen AS BIGINT), \
         CAST(last_seen AS BIGINT), CAST(sightings AS BIGINT), CAST(confidence AS BIGINT), tlp, \
         CAST(victim_count AS BIGINT), status, CAST(reappearances AS BIGINT) \
         FROM intel_indicator ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows.iter()
        .map(|r| Row {
            id: r.get(0),
            kind: r.get(1),
            value: r.get(2),
            classification: r.get(3),
            malware: r.get(4),
            first_seen: r.get(5),
            last_seen: r.get(6),
            sightings: r.get(7),
            confidence: r.get(8),
            tlp: r.get(9),
            victim_count: r.get(10),
            status: r.get(11),
            reappearances: r.get(12),
        })
        .collect()
}

struct Feeds {
    dir: PathBuf,
    /// The indicator table of a node that was never killed: after the small feeds, then after
    /// each large feed.
    reference: Vec<Vec<Row>>,
    /// Seconds an uninterrupted ingest of the first large feed took through the CLI.
    large_secs: f64,
}

fn feed_path(dir: &Path, seed: u64) -> PathBuf {
    dir.join(format!("feed-{seed}.csv"))
}

fn feed_name(seed: u64) -> String {
    format!("crash test feed {seed}")
}

/// The feeds, and the reference: the same ingests, one by one, by the CLI on a fresh SQLite
/// node. Built once for both backends.
async fn feeds() -> &'static Feeds {
    // Built by the first intel test, under the serial lock (so never by two at once).
    static FEEDS: std::sync::OnceLock<Feeds> = std::sync::OnceLock::new();
    if let Some(f) = FEEDS.get() {
        return f;
    }
    let built = async {
        let node = Node::init("intel-reference", None);
        let dir = node.base.clone();
        for seed in SMALL_FEEDS {
            liaison_intel::generate_feed(seed, 2_000, std::fs::File::create(feed_path(&dir, seed)).unwrap()).unwrap();
        }
        for seed in LARGE_FEEDS {
            liaison_intel::generate_feed(seed, LARGE_ROWS, std::fs::File::create(feed_path(&dir, seed)).unwrap())
                .unwrap();
        }
        let ingest = |seed: u64| {
            let path = feed_path(&dir, seed);
            node.json(&[
                "intel",
                "ingest",
                path.to_str().unwrap(),
                "--format",
                "liaison",
                "--feed",
                &feed_name(seed),
            ])
        };
        for seed in SMALL_FEEDS {
            ingest(seed);
        }
        let mut reference = vec![indicators(&node.db_url).await];
        let mut large_secs = 0.0;
        for (i, seed) in LARGE_FEEDS.into_iter().enumerate() {
            let t0 = Instant::now();
            ingest(seed);
            if i == 0 {
                large_secs = t0.elapsed().as_secs_f64();
            }
            reference.push(indicators(&node.db_url).await);
        }
        Feeds {
            dir,
            reference,
            large_secs,
        }
    }
    .await;
    FEEDS.get_or_init(|| built)
}

async fn api_ingest(http: &reqwest::Client, node: &Node, feeds: &Feeds, seed: u64) -> Result<Value, reqwest::Error> {
    let body = std::fs::read(feed_path(&feeds.dir, seed)).unwrap();
    let r = http
        .post(format!("{}/api/v1/intel/ingest", node.api))
        .query(&[
            ("format", "liaison"),
            ("feed", feed_name(seed).as_str()),
            ("wait", "true"),
        ])
        .bearer_auth(&node.tokens["admin"])
        .body(body)
        .send()
        .await?;
    let status = r.status();
    let text = r.text().await?;
    assert!(status.is_success(), "ingest of feed {seed}: {status} {text}");
    Ok(serde_json::from_str(&text).unwrap())
}

/// Which state the table is in: `before` (the killed run left nothing) or `after` (it was
/// committed in full). Anything else is a partial or corrupted ingest.
fn which(stage: &str, got: &[Row], before: &[Row], after: &[Row]) -> &'static str {
    if got == before {
        "absent"
    } else if got == after {
        "complete"
    } else {
        let first_diff = got
            .iter()
            .zip(after)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(after.len()));
        panic!(
            "{stage}: the indicator table is neither the state before the killed ingest ({} rows) nor after it ({} rows): {} rows, first difference with the complete state at row {first_diff}: {:?} vs {:?}",
            before.len(),
            after.len(),
            got.len(),
            got.get(first_diff),
            after.get(first_diff)
        );
    }
}

/// When a kill lands during an ingest.
#[derive(Clone, Copy, Debug)]
enum KillAt {
    /// This fraction of the duration of an uninterrupted ingest after it was started.
    Fraction(f64),
    /// As soon as the ingest is seen writing its rows: on SQLite the first write to the WAL
    /// file (a clean-up transaction keeps its pages in memory, so that is its commit being
    /// written); on PostgreSQL a statement of the row upsert running while the transaction
    /// holds its lock on the indicator table.
    Writing,
}

/// Sees an ingest writing (see [`KillAt::Writing`]).
struct WriteProbe {
    wal: Option<(PathBuf, Option<(u64, std::time::SystemTime)>)>,
    pg: Option<sqlx::AnyPool>,
}

impl WriteProbe {
    async fn new(node: &Node, pg: Option<&str>) -> WriteProbe {
        match pg {
            Some(url) => {
                sqlx::any::install_default_drivers();
                let pool = sqlx::any::AnyPoolOptions::new()
                    .max_connections(1)
                    .connect(url)
                    .await
                    .unwrap();
                WriteProbe {
                    wal: None,
                    pg: Some(pool),
                }
            }
            None => {
                let wal = node.dir.join("liaison.db-wal");
                let now = Self::stat(&wal);
                WriteProbe {
                    wal: Some((wal, now)),
                    pg: None,
                }
            }
        }
    }

    fn stat(p: &Path) -> Option<(u64, std::time::SystemTime)> {
        let m = std::fs::metadata(p).ok()?;
        Some((m.len(), m.modified().ok()?))
    }

    async fn writing(&self) -> bool {
        if let Some((wal, before)) = &self.wal {
            return Self::stat(wal) != *before;
        }
        let pool = self.pg.as_ref().unwrap();
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid \
             JOIN pg_class c ON c.oid = l.relation \
             WHERE c.relname = 'intel_indicator' AND c.relnamespace = current_schema()::regnamespace \
             AND l.mode = 'ExclusiveLock' AND l.granted AND a.state = 'active' \
             AND a.query LIKE '%json_to_recordset%'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        n > 0
    }
}

/// Waits for the kill point of `at`, or for `done` (the ingest answered or failed first).
async fn wait_kill_point(at: KillAt, node: &Node, pg: Option<&str>, large: f64, done: &dyn Fn() -> bool) -> String {
    match at {
        KillAt::Fraction(f) => {
            tokio::time::sleep(Duration::from_secs_f64(large * f)).await;
            format!("at {:.0}% ({:.2} s)", f * 100.0, large * f)
        }
        KillAt::Writing => {
            let probe = WriteProbe::new(node, pg).await;
            let t0 = Instant::now();
            while !done() {
                if probe.writing().await {
                    return format!("while writing ({:.2} s in)", t0.elapsed().as_secs_f64());
                }
                assert!(
                    t0.elapsed() < Duration::from_secs(300),
                    "the ingest neither wrote nor ended"
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            "after it ended".into()
        }
    }
}

async fn intel_under_sigkill(name: &str, pg: Option<&str>) {
    let feeds = feeds().await;
    let started = Instant::now();
    let mut node = Node::init(name, pg);
    node.start().await;
    let http = http();
    for seed in SMALL_FEEDS {
        api_ingest(&http, &node, feeds, seed).await.unwrap();
    }
    assert!(
        indicators(&node.db_url).await == feeds.reference[0],
        "the acknowledged small ingests differ from the reference"
    );
    // The first large feed, uninterrupted: its duration sets when the timed kills land.
    let t0 = Instant::now();
    let r = api_ingest(&http, &node, feeds, LARGE_FEEDS[0]).await.unwrap();
    let large = t0.elapsed().as_secs_f64();
    assert!(indicators(&node.db_url).await == feeds.reference[1]);
    assert_eq!(
        r["indicators_total"].as_u64().unwrap() as usize,
        feeds.reference[1].len()
    );
    let audit_before = node.audit_verify();
    let mut outcomes = Vec::new();
    // Kills of the server during an API ingest, then one of `liaison intel ingest` (the CLI
    // process writes; the server runs on).
    let plan = [
        (1, false, KillAt::Fraction(0.3)),
        (2, false, KillAt::Writing),
        (3, false, KillAt::Fraction(0.9)),
        (4, true, KillAt::Writing),
    ];
    for (k, by_cli, at) in plan {
        let seed = LARGE_FEEDS[k];
        let (before, after) = (&feeds.reference[k], &feeds.reference[k + 1]);
        let finished = Arc::new(AtomicBool::new(false));
        let (answered, when) = if by_cli {
            let path = feed_path(&feeds.dir, seed);
            let child = node
                .command(&[
                    "--json",
                    "intel",
                    "ingest",
                    path.to_str().unwrap(),
                    "--format",
                    "liaison",
                    "--feed",
                    &feed_name(seed),
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let child = Mutex::new(child);
            let when = wait_kill_point(at, &node, pg, feeds.large_secs, &|| {
                child.lock().unwrap().try_wait().unwrap().is_some()
            })
            .await;
            let mut child = child.into_inner().unwrap();
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            // The CLI's run may have died between its short transactions: the server's next
            // start (or the next ingest) rolls it back.
            node.kill();
            node.start().await;
            (o.status.success(), when)
        } else {
            let request = {
                let http = http.clone();
                let (api, token) = (node.api.clone(), node.tokens["admin"].clone());
                let body = std::fs::read(feed_path(&feeds.dir, seed)).unwrap();
                let finished = finished.clone();
                tokio::spawn(async move {
                    let r = http
                        .post(format!("{api}/api/v1/intel/ingest"))
                        .query(&[
                            ("format", "liaison"),
                            ("feed", feed_name(seed).as_str()),
                            ("wait", "true"),
                        ])
                        .bearer_auth(&token)
                        .body(body)
                        .send()
                        .await;
                    let text = match r {
                        Ok(r) => {
                            let status = r.status();
                            let text = r.text().await.ok();
                            if let Some(t) = &text {
                                assert!(status.is_success(), "ingest of feed {seed}: {status} {t}");
                            }
                            text
                        }
                        Err(_) => None,
                    };
                    finished.store(true, Ordering::SeqCst);
                    text
                })
            };
            let when = wait_kill_point(at, &node, pg, large, &|| finished.load(Ordering::SeqCst)).await;
            node.kill();
            let answered = request.await.unwrap().is_some();
            node.start().await;
            (answered, when)
        };
        let how = format!("{} kill {when}", if by_cli { "CLI" } else { "server" });
        let got = indicators(&node.db_url).await;
        let outcome = which(&format!("{name}: {how}"), &got, before, after);
        if answered {
            assert_eq!(
                outcome, "complete",
                "{name}: {how}: an acknowledged ingest must be stored in full"
            );
        }
        node.health(&http).await;
        node.audit_verify();
        if outcome == "absent" {
            // Resumable: the same ingest again runs to completion, exactly as if never killed.
            api_ingest(&http, &node, feeds, seed).await.unwrap();
            assert!(
                indicators(&node.db_url).await == *after,
                "{name}: the re-run after the {how} differs from the reference"
            );
        }
        outcomes.push(format!("{how}: {}{outcome}", if answered { "answered, " } else { "" }));
    }
    // A re-run of an ingested feed adds no indicator and no row: the same ids and keys.
    let last = feeds.reference.last().unwrap();
    let r = api_ingest(&http, &node, feeds, LARGE_FEEDS[4]).await.unwrap();
    assert_eq!(r["new_indicators"], 0, "{r}");
    assert_eq!(r["indicators_total"].as_u64().unwrap() as usize, last.len(), "{r}");
    let got = indicators(&node.db_url).await;
    let keys = |rows: &[Row]| -> Vec<(i64, String, String)> {
        rows.iter().map(|r| (r.id, r.kind.clone(), r.value.clone())).collect()
    };
    assert_eq!(keys(&got), keys(last));
    let distinct: HashSet<(&str, &str)> = got.iter().map(|r| (r.kind.as_str(), r.value.as_str())).collect();
    assert_eq!(distinct.len(), got.len(), "an indicator stored twice");
    // The audit log is intact (an ingest writes no audit entry: the count is unchanged).
    assert_eq!(node.audit_verify(), audit_before);
    node.health(&http).await;
    eprintln!(
        "{name}: {} indicators; an uninterrupted large ingest {large:.2} s; {}; {:.1} s in all",
        got.len(),
        outcomes.join("; "),
        started.elapsed().as_secs_f64()
    );
    assert!(
        outcomes.iter().any(|o| o.ends_with("absent")),
        "no kill landed before an ingest's commit, so no partial run was exercised: {outcomes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)]
async fn intel_ingest_survives_sigkill_sqlite() {
    let _serial = serial();
    intel_under_sigkill("intel-sqlite", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)]
async fn intel_ingest_survives_sigkill_postgres() {
    let _serial = serial();
    let Some(url) = liaison_service::fixtures::postgres_url().await else {
        return;
    };
    intel_under_sigkill("intel-pg", Some(&url)).await;
}
