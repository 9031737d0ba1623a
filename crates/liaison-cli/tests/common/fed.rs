//! A federated `liaison` node in its own process, for the end-to-end tests (federation,
//! clean-up notices, markings): init, users, start and stop, commands, its API and its peers.
#![allow(dead_code)]

use super::strip_ansi;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub struct FedNode {
    pub dir: PathBuf,
    pub node_id: String,
    pub port: u16,
    pub child: Option<Child>,
    pub log: PathBuf,
}

impl FedNode {
    /// A node with a federation identity serving agency `code`, its federation port found
    /// from `slot` (`super::port_slot`: each test binary its own), and the case users
    /// `officer`, `desk` and `legal` (legal reviewer).
    pub fn new_with(base: &Path, node_id: &str, code: &str, jurisdiction: &str, tz: &str, db: Option<&str>) -> FedNode {
        let n = FedNode::init_at(0, base, node_id, code, jurisdiction, tz, db);
        for (u, role) in [("officer", "officer"), ("desk", "desk"), ("legal", "legal_reviewer")] {
            n.ok(&["user", "add", u, "--agency", code, "--role", role]);
        }
        n
    }

    /// The node initialised (`liaison init` with a federation identity), no users but the admin.
    pub fn init_at(
        slot: u16,
        base: &Path,
        node_id: &str,
        code: &str,
        jurisdiction: &str,
        tz: &str,
        db: Option<&str>,
    ) -> FedNode {
        let port = super::free_port_from(super::port_slot(slot));
        let n = FedNode {
            log: base.join(format!("{node_id}.log")),
            dir: base.join(node_id),
            node_id: node_id.into(),
            port,
            child: None,
        };
        let mut init = vec!["init"];
        if let Some(url) = db {
            init.extend(["--database-url", url]);
        }
        let listen = format!("127.0.0.1:{port}");
        init.extend(super::node_init_args(code, jurisdiction, tz, node_id, &listen));
        n.ok(&init);
        n
    }

    /// The `liaison` command on this node's data directory, not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        super::data_dir_command(&self.dir, args)
    }

    pub fn cmd(&self, args: &[&str]) -> std::process::Output {
        self.command(args).output().unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        super::ok_stdout(&self.cmd(args), format_args!("{} {:?}", self.node_id, args))
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    /// Writes the peer file and returns (path, fingerprint).
    pub fn peer_file(&self) -> (PathBuf, String) {
        super::peer_file(&self.dir)
    }

    pub fn start(&mut self) {
        self.start_with(&[]);
    }

    pub fn start_with(&mut self, env: &[(&str, &str)]) {
        assert!(self.child.is_none());
        let child = self.child.insert(super::spawn_federated(&self.dir, &self.log, env));
        // A node that exits (its port taken, say) fails the test here, with its log.
        let log = || strip_ansi(&super::read_log(&self.log));
        super::wait_listening(child, self.port, &self.node_id, log, "did not listen within 20 s");
    }

    pub fn kill(&mut self) {
        super::kill(&mut self.child);
    }

    pub fn log_text(&self) -> String {
        strip_ansi(&super::read_log(&self.log))
    }

    pub fn request(&self, id: &str) -> Value {
        self.json(&["--as", "officer", "request", "show", id])
    }

    pub fn try_request(&self, id: &str) -> Option<Value> {
        let o = self.cmd(&["--json", "--as", "officer", "request", "show", id]);
        o.status.success().then(|| serde_json::from_slice(&o.stdout).unwrap())
    }

    pub fn state(&self, id: &str) -> Option<String> {
        super::request_state(&self.cmd(&["--json", "--as", "officer", "request", "show", id]))
    }

    pub fn wait_state(&self, id: &str, state: &str) {
        let t0 = Instant::now();
        while self.state(id).as_deref() != Some(state) {
            if t0.elapsed() > Duration::from_secs(30) {
                // Say why: every node log of this test (they sit beside the nodes' folders).
                let mut logs = String::new();
                if let Some(base) = self.log.parent()
                    && let Ok(entries) = std::fs::read_dir(base)
                {
                    for e in entries.flatten() {
                        let p = e.path();
                        if p.extension().is_some_and(|x| x == "log") {
                            let text = strip_ansi(&std::fs::read_to_string(&p).unwrap_or_default());
                            let tail: Vec<&str> = text.lines().rev().take(40).collect();
                            logs += &format!("\n--- {} (last 40 lines) ---\n", p.display());
                            logs += &tail.into_iter().rev().collect::<Vec<_>>().join("\n");
                        }
                    }
                }
                panic!(
                    "{}: request {id} is {:?}, not {state}, after 30 s{logs}",
                    self.node_id,
                    self.state(id)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn transition(&self, user: &str, id: &str, to: &str) {
        self.ok(&["--as", user, "request", "transition", id, "--to", to]);
    }

    pub fn comment(&self, user: &str, id: &str, text: &str) {
        self.ok(&["--as", user, "request", "comment", id, text]);
    }

    pub fn comments(&self, id: &str) -> Vec<String> {
        super::comments(&self.request(id))
    }

    pub fn pending(&self) -> usize {
        super::undelivered(&self.json(&["federation", "messages"]))
    }

    /// An HTTPS client that accepts only this node's pinned certificate (from its peer file).
    pub fn pinned_client(&self) -> reqwest::Client {
        let (peer_file, _) = self.peer_file();
        let pf: Value = serde_json::from_slice(&std::fs::read(peer_file).unwrap()).unwrap();
        let fp = liaison_wire::Hash256::from_hex(pf["descriptor"]["tls_cert_sha256"].as_str().unwrap()).unwrap();
        liaison_server::federation::https::pinned_client(fp).unwrap()
    }

    pub fn key_file(&self) -> PathBuf {
        std::fs::read_dir(self.dir.join("federation"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("node-key-"))
            .unwrap()
    }

    /// `--json --as USER ARGS…`.
    pub fn as_json(&self, user: &str, args: &[&str]) -> Value {
        let mut a = vec!["--as", user];
        a.extend_from_slice(args);
        self.json(&a)
    }

    /// Runs `--json --as USER ARGS…`, which must fail; returns what it printed.
    pub fn fails_as(&self, user: &str, args: &[&str]) -> String {
        let mut a = vec!["--json", "--as", user];
        a.extend_from_slice(args);
        let o = self.cmd(&a);
        assert!(
            !o.status.success(),
            "{} {a:?} should fail: {}",
            self.node_id,
            String::from_utf8_lossy(&o.stdout)
        );
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    }

    /// Adds an agency to the node's directory (served by this node).
    pub fn agency(&self, code: &str, jurisdiction: &str, tz: &str) {
        self.ok(&[
            "directory",
            "add-agency",
            code,
            "--name",
            code,
            "--jurisdiction",
            jurisdiction,
            "--time-zone",
            tz,
        ]);
    }

    pub fn user(&self, name: &str, agency: &str, role: &str) {
        self.ok(&["user", "add", name, "--agency", agency, "--role", role]);
    }

    /// The API base URL (`http://ADDR`) of the running node, from its "serving on" log line.
    pub fn api(&self) -> String {
        let mut addr = None;
        assert!(
            super::poll_until(Duration::from_secs(20), Duration::from_millis(50), || {
                addr = self
                    .log_text()
                    .lines()
                    .find_map(super::served_address)
                    .map(str::to_string);
                addr.is_some()
            }),
            "{} logged no API address:\n{}",
            self.node_id,
            self.log_text()
        );
        format!("http://{}", addr.unwrap_or_default())
    }

    /// A fresh API token of `user`.
    pub fn token(&self, user: &str) -> String {
        self.json(&["token", "create", user])["token"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

impl Drop for FedNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A feed in the Liaison CSV layout: `(indicator, tlp)` sighted at `at`.
pub fn feed(path: &Path, rows: &[(&str, &str)], at: jiff::Timestamp) {
    let mut s = String::from(
        "time_source,indicator,kind,port,classification,malware,victim_count,victim_country,confidence,tlp\n",
    );
    for (ip, tlp) in rows {
        s += &format!("{at},{ip},ipv4,443,botnet-c2,qakbot,3,CN,80,{tlp}\n");
    }
    std::fs::write(path, s).unwrap();
}

/// Polls `f` every 100 ms for up to 30 s; on time-out fails with both nodes' logs.
#[allow(dead_code)]
pub fn wait_for(what: &str, a: &FedNode, b: &FedNode, mut f: impl FnMut() -> bool) {
    assert!(
        super::poll_until(Duration::from_secs(30), Duration::from_millis(100), &mut f),
        "{what}: not within 30 s\n--- {} ---\n{}\n--- {} ---\n{}",
        a.node_id,
        a.log_text(),
        b.node_id,
        b.log_text()
    );
}
