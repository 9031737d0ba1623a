//! `liaison.toml`: one file in the data directory, with `LIAISON_*` environment overrides.

use anyhow::{Context, Result, bail};
use liaison_core::sla::SlaPolicy;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const FILE: &str = "liaison.toml";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8640";

/// The node's settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub node: NodeSection,
    #[serde(default)]
    pub sla: SlaPolicy,
    /// Threat-feed clean-up: enrichment databases, routes to partners, feed column mappings.
    #[serde(default)]
    pub intel: liaison_intel::IntelConfig,
    /// [instances] This instance's federation settings (per instance, never in the database).
    #[serde(default, skip_serializing_if = "InstanceFederation::is_empty")]
    pub federation: InstanceFederation,
    /// Bounds on the connections of the API and federation listeners.
    #[serde(default)]
    pub limits: LimitsSection,
    /// TLP 2.0 defaults per kind of object and declared client organisations (docs/markings.md).
    #[serde(default)]
    pub markings: liaison_core::marking::MarkingConfig,
    /// Evidence files: directory, key file, size limit, retention (docs/evidence.md).
    #[serde(default)]
    pub evidence: liaison_service::evidence::EvidenceConfig,
    /// The formal letter: its font and the language request summaries are written in
    /// (docs/letter.md).
    #[serde(default)]
    pub letter: liaison_service::letter::LetterConfig,
    /// The TAXII 2.1 server: page sizes, partner collections (docs/intel-formats.md).
    #[serde(default)]
    pub taxii: liaison_service::taxii::TaxiiConfig,
    /// Partners' TAXII collections and MISP feeds pulled as sources (docs/intel-formats.md).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub pull: liaison_service::intel_pull::PullSources,
    /// Reminder lead times and the supervisors' digest hour (docs/queues.md).
    #[serde(default)]
    pub work: liaison_service::work::WorkConfig,
    /// E-mail and webhooks (docs/queues.md).
    #[serde(default)]
    pub notify: liaison_service::deliver::NotifyConfig,
    /// Passwords, second factors, locks and web sessions (docs/ui.md "Sign-in").
    #[serde(default)]
    pub sign_in: liaison_service::sign_in::SignInConfig,
    /// Four eyes: which kinds of request a second person approves before they are sent
    /// (docs/lifecycle.md "Four eyes").
    #[serde(default)]
    pub approval: liaison_core::approval::ApprovalPolicy,
}

/// `[limits]`: how long a connection may take and how many may be open, on the API listener
/// and on the federation listener (each counted separately).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Federation (TLS) only: seconds for the TLS handshake.
    pub handshake_timeout_seconds: u64,
    /// Seconds for a request's headers to arrive, from accept or from the request's first byte.
    pub header_timeout_seconds: u64,
    /// Seconds to receive and answer a request (body included); later it is answered 408.
    pub request_timeout_seconds: u64,
    /// Seconds a kept-alive connection may stay without a request and without a byte moving.
    pub idle_timeout_seconds: u64,
    /// Connections open at once on each listener; more are closed at once.
    pub max_connections: usize,
    /// Connections open at once from one IP address on each listener; more are closed at once.
    pub max_connections_per_address: usize,
}

impl Default for LimitsSection {
    fn default() -> Self {
        let d = liaison_server::conn::Limits::default();
        LimitsSection {
            handshake_timeout_seconds: d.handshake_timeout.as_secs(),
            header_timeout_seconds: d.header_timeout.as_secs(),
            request_timeout_seconds: d.request_timeout.as_secs(),
            idle_timeout_seconds: d.idle_timeout.as_secs(),
            max_connections: d.max_connections,
            max_connections_per_address: d.max_per_address,
        }
    }
}

impl LimitsSection {
    /// Every value must be at least 1, a connection limit at most 1,000,000 and a time at most
    /// a day; the per-address limit no more than the total.
    fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("handshake_timeout_seconds", self.handshake_timeout_seconds),
            ("header_timeout_seconds", self.header_timeout_seconds),
            ("request_timeout_seconds", self.request_timeout_seconds),
            ("idle_timeout_seconds", self.idle_timeout_seconds),
        ] {
            if !(1..=86_400).contains(&v) {
                bail!("limits.{name} = {v}: must be 1 to 86400 seconds");
            }
        }
        for (name, v) in [
            ("max_connections", self.max_connections),
            ("max_connections_per_address", self.max_connections_per_address),
        ] {
            if !(1..=1_000_000).contains(&v) {
                bail!("limits.{name} = {v}: must be 1 to 1000000");
            }
        }
        if self.max_connections_per_address > self.max_connections {
            bail!(
                "limits.max_connections_per_address = {} is more than limits.max_connections = {}",
                self.max_connections_per_address,
                self.max_connections
            );
        }
        Ok(())
    }

    /// The listeners' limits.
    pub fn to_limits(self) -> liaison_server::conn::Limits {
        use std::time::Duration;
        liaison_server::conn::Limits {
            handshake_timeout: Duration::from_secs(self.handshake_timeout_seconds),
            header_timeout: Duration::from_secs(self.header_timeout_seconds),
            request_timeout: Duration::from_secs(self.request_timeout_seconds),
            idle_timeout: Duration::from_secs(self.idle_timeout_seconds),
            max_connections: self.max_connections,
            max_per_address: self.max_connections_per_address,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// Address the API listens on.
    pub listen: String,
    /// `sqlite://PATH` (default, in the data directory) or `postgres://USER@HOST:PORT/DB`.
    pub database_url: String,
    /// Directory of rule packs; the node refuses to start if any pack is invalid.
    pub rules_dir: PathBuf,
    /// Seconds between runs of the deadline watcher.
    pub tick_seconds: u64,
    /// The user the command line acts as when `--as` is not given.
    pub cli_user: String,
}

impl Config {
    pub fn defaults(data_dir: &Path) -> Config {
        Config {
            node: NodeSection {
                listen: DEFAULT_LISTEN.into(),
                database_url: format!("sqlite://{}", data_dir.join("liaison.db").display()),
                rules_dir: data_dir.join("rules"),
                tick_seconds: 30,
                cli_user: "admin".into(),
            },
            sla: SlaPolicy::default(),
            intel: Default::default(),
            federation: Default::default(),
            limits: LimitsSection::default(),
            markings: Default::default(),
            evidence: liaison_service::evidence::EvidenceConfig::default().resolved(data_dir),
            letter: Default::default(),
            taxii: Default::default(),
            pull: Default::default(),
            work: Default::default(),
            notify: Default::default(),
            sign_in: liaison_service::sign_in::SignInConfig {
                key_file: Some(data_dir.join("sign-in.key")),
                ..Default::default()
            },
            approval: Default::default(),
        }
    }

    /// Loads `DATA_DIR/liaison.toml` and applies `LIAISON_*` overrides.
    pub fn load(data_dir: &Path) -> Result<Config> {
        let path = data_dir.join(FILE);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read {} (run `liaison init --data-dir {}` first)",
                path.display(),
                data_dir.display()
            )
        })?;
        let mut c: Config = toml::from_str(&text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start].lines().count().max(1)).unwrap_or(0);
            anyhow::anyhow!("{}:{line}: {}", path.display(), e.message())
        })?;
        c.apply_env()?;
        c.sla.validate().with_context(|| format!("in {}", path.display()))?;
        c.limits.validate().with_context(|| format!("in {}", path.display()))?;
        c.approval
            .validate()
            .map_err(|e| anyhow::anyhow!("in {}: {e}", path.display()))?;
        c.taxii
            .validate()
            .map_err(|e| anyhow::anyhow!("in {}: {e}", path.display()))?;
        liaison_service::intel_pull::validate(&c.pull).map_err(|e| anyhow::anyhow!("in {}: {e}", path.display()))?;
        for s in c.pull.values_mut() {
            for p in [&mut s.token_file, &mut s.ca_file].into_iter().flatten() {
                if p.is_relative() {
                    *p = data_dir.join(&*p);
                }
            }
        }
        c.evidence
            .validate()
            .map_err(|e| anyhow::anyhow!("in {}: {e}", path.display()))?;
        c.work
            .validate()
            .map_err(|e| anyhow::anyhow!("in {}: {e}", path.display()))?;
        c.notify
            .validate()
            .map_err(|e| anyhow::anyhow!("in {}: {e}", path.display()))?;
        if let Some(s) = c.notify.smtp.as_mut() {
            for p in [&mut s.password_file, &mut s.ca_file].into_iter().flatten() {
                if p.is_relative() {
                    *p = data_dir.join(&*p);
                }
            }
        }
        for w in &mut c.notify.webhooks {
            if w.secret_file.is_relative() {
                w.secret_file = data_dir.join(&w.secret_file);
            }
            if let Some(p) = w.ca_file.as_mut()
                && p.is_relative()
            {
                *p = data_dir.join(&*p);
            }
        }
        if c.notify.base_url.is_none() {
            c.notify.base_url = Some(format!("http://{}", c.node.listen));
        }
        // Relative paths are relative to the data directory; unset ones default into it.
        for p in [&mut c.evidence.dir, &mut c.evidence.key_file].into_iter().flatten() {
            if p.is_relative() {
                *p = data_dir.join(&*p);
            }
        }
        c.evidence = c.evidence.resolved(data_dir);
        // Second-factor secrets are sealed under a key beside the database unless told otherwise.
        let key = c.sign_in.key_file.take().unwrap_or_else(|| "sign-in.key".into());
        c.sign_in.key_file = Some(if key.is_relative() { data_dir.join(key) } else { key });
        Ok(c)
    }

    fn apply_env(&mut self) -> Result<()> {
        if let Ok(v) = std::env::var("LIAISON_LISTEN") {
            self.node.listen = v;
        }
        if let Ok(v) = std::env::var("LIAISON_DATABASE_URL") {
            self.node.database_url = v;
        }
        if let Ok(v) = std::env::var("LIAISON_RULES_DIR") {
            self.node.rules_dir = v.into();
        }
        self.federation.apply_env();
        if let Ok(v) = std::env::var("LIAISON_LETTER_FONT") {
            self.letter.font = Some(v.into());
        }
        if let Ok(v) = std::env::var("LIAISON_TICK_SECONDS") {
            match v.parse() {
                Ok(n) if n > 0 => self.node.tick_seconds = n,
                _ => bail!("LIAISON_TICK_SECONDS='{v}' is not a positive whole number"),
            }
        }
        Ok(())
    }

    /// The commented file `liaison init` writes.
    pub fn commented(&self) -> Result<String> {
        #[derive(Serialize)]
        struct SlaOnly<'a> {
            sla: &'a SlaPolicy,
        }
        // Serialised under its own key so the answer rows become [[sla.answer]] tables.
        let sla = toml::to_string_pretty(&SlaOnly { sla: &self.sla })?;
        Ok(format!(
            r#"# Liaison node configuration. Every setting can be overridden by an environment variable
# (shown beside it). Times are UTC in storage and shown in each viewer's time zone.

[node]
# Address the API listens on (LIAISON_LISTEN). Keep it on 127.0.0.1 unless a TLS proxy fronts it.
listen = {listen:?}
# Database (LIAISON_DATABASE_URL): the embedded SQLite file below, or PostgreSQL for several
# instances sharing one database, e.g. postgres://liaison@127.0.0.1:5432/liaison
database_url = {db:?}
# Rule packs: the law the node assesses requests against (LIAISON_RULES_DIR).
# `liaison rules check` validates them; the node will not start on an invalid pack.
rules_dir = {rules:?}
# Seconds between runs of the deadline watcher that records escalations (LIAISON_TICK_SECONDS).
tick_seconds = {tick}
# The user the command line acts as when --as is not given (LIAISON_USER).
cli_user = {user:?}

# Service levels: how long the requested agency has to acknowledge and to answer.
# Periods are "Nh" (elapsed hours) or "Nd" (calendar days in the requested agency's time zone,
# correct across daylight-saving changes). In the answer table the row naming the request kind
# wins over the row without a kind. Each row names where its number comes from.
{sla}{federation}
# Connection bounds of the API listener and of the federation (TLS) listener, each counted
# separately. A connection over a limit is closed at once; refusals and timeouts are counted and
# logged at most once every 10 s per listener. The limits are lowered (with a warning) when both
# listeners at their limits would not fit in the process's open-files limit (`ulimit -n`).
[limits]
# Seconds for a federation peer's TLS handshake.
handshake_timeout_seconds = {hs}
# Seconds for a request's headers to arrive, counted from the connection's start or from the
# request's first byte: a connection that sends nothing, or half a request, is closed then.
header_timeout_seconds = {hdr}
# Seconds to receive and answer one request, its body included; a slower request is answered
# 408 and its connection closed.
request_timeout_seconds = {req}
# Seconds a kept-alive connection may wait for its next request with no byte moving.
idle_timeout_seconds = {idle}
# Connections open at once on each listener, and from one IP address on each listener.
max_connections = {maxc}
max_connections_per_address = {maxa}

# TLP 2.0 markings (docs/markings.md): the level each kind of object gets when none is given
# (TLP:CLEAR is refused for requests and comments), and the client organisations an agency
# declares (they may receive what it receives as TLP:AMBER). notice_pap: what a partner may do
# about a clean-up notice's machines when the issuer says nothing (PAP:GREEN: act on them;
# PAP:AMBER: passive checks only; PAP:RED: nothing detectable).
# [markings]
# request = "TLP:AMBER+STRICT"
# comment = "TLP:AMBER+STRICT"
# notice = "TLP:AMBER"
# notice_pap = "PAP:GREEN"
# [markings.clients]
# "CN-CNCERT" = ["CN-ISP-A"]

# TAXII 2.1 (docs/intel-formats.md, "TAXII 2.1") at /taxii2/ on the API's address: every agency
# with users on the node has a community collection (up to TLP:GREEN) and an inbox its analysts
# add STIX to; a collection for a partner agency carries up to the level you choose (never
# TLP:RED), from every feed or the feeds listed. Clients sign in with a token (Bearer, or Basic: user name, token).
# [taxii]
# default_page = 100
# max_page = 1000
# max_content_bytes = 10485760
# community_collection = true
# [[taxii.collections]]
# audience = "CN-MPS"
# tlp_max = "TLP:AMBER"
# feeds = ["sinkhole"]

# Signing in to the web pages (docs/ui.md "Sign-in"): user name and password (Argon2id), and a
# second factor from an authenticator app (TOTP) unless require_second_factor is false.
# max_failures wrong passwords or codes in a row lock an account for lockout_minutes (an
# administrator's password reset unlocks it). A web session ends after session_hours, or
# idle_minutes without a request. token_sign_in lets the page also take an API token (no
# second factor then): for tests only. Second-factor secrets are sealed in the database under
# the key in key_file (default: sign-in.key in the data directory, made on first use; back it
# up with the database: without it every user sets up the second factor again).
# Four eyes (docs/lifecycle.md "Four eyes"): drafts of these kinds are sent only once a second
# person approves them, one of the approvers' roles who is not the person who asked. Anyone
# who drafts may still ask for approval of any draft. Empty (the default): not required.
# [approval]
# kinds = ["stored_content", "traffic_data"]
# approvers = ["supervisor"]

# [sign_in]
# require_second_factor = true
# min_password_length = 12
# max_failures = 5
# lockout_minutes = 15
# session_hours = 12
# idle_minutes = 30
# token_sign_in = false

# Working requests (docs/queues.md): how long before a deadline its reminder goes to the
# owner (else the unit, the desk and the supervisors), and the hour of the supervisors' daily
# digest in each one's time zone.
# [work]
# remind_acknowledge_hours = 24
# remind_answer_hours = 24
# remind_preservation_days = 7
# remind_information_days = 3
# digest_hour = 8

# Notifications by e-mail and webhook (docs/queues.md). Each user chooses an address and the
# kinds they want by e-mail (`liaison prefs set --email …`); a webhook gets the notifications of
# one agency (or all), signed with HMAC-SHA256 (header Liaison-Signature). What leaves the node
# carries a link and at most TLP:GREEN content. Failed deliveries are retried (the delay doubles
# from retry_seconds, at most an hour) up to max_attempts. base_url: the node's address for links.
# [notify]
# base_url = "https://liaison.agency.example"
# retry_seconds = 60
# max_attempts = 20
# [notify.smtp]
# host = "smtp.agency.example"
# port = 587
# tls = "starttls"
# username = "liaison"
# password_file = "smtp.password"
# from = "Liaison <liaison@agency.example>"
# [[notify.webhooks]]
# name = "duty-chat"
# url = "https://chat.agency.example/hooks/liaison"
# secret_file = "duty-chat.secret"
# agency = "FBI"
# kinds = ["incoming", "deadline_passed"]

# Pulling from partners (`liaison intel pull`, and `liaison serve` every `every_minutes`): a
# partner's TAXII 2.1 collection (url = the collection's URL) or MISP feed (url = the directory
# of manifest.json), ingested for one of this node's agencies under the feed name (default: the
# section's name). The token is read from token_file (Bearer; with `user`, HTTP Basic); what
# arrives unmarked gets default_tlp. What was seen is kept: nothing is pulled twice.
# [pull.partner-cert]
# kind = "taxii"
# url = "https://taxii.partner.example/taxii2/api1/collections/COLLECTION-ID/"
# user = "liaison"
# token_file = "partner-cert.token"
# default_tlp = "TLP:AMBER"
# every_minutes = 60

# Evidence files (`liaison evidence …`, docs/evidence.md): content is stored encrypted and
# content-addressed in `dir` (default DATA_DIR/evidence); the key-encryption keys are in
# `key_file` (default DATA_DIR/evidence.key), never in the database: back it up, and give every
# instance sharing the directory the same key file. Uploads larger than max_file_bytes
# (default 16 GiB) are refused; a user may have max_open_uploads unfinished uploads (default 16),
# and one that received nothing for upload_expiry_hours (default 168) is removed by the hourly
# sweep. Retention: the first rule matching a file's kind (supporting,
# answer, comment) and TLP wins; its content is deleted `days` after upload unless a legal hold
# covers it or its request. No rule: kept for ever.
# [evidence]
# dir = "/srv/liaison/evidence"
# key_file = "/etc/liaison/evidence.key"
# max_file_bytes = 17179869184
# max_open_uploads = 16
# upload_expiry_hours = 168
# [[evidence.retention]]
# kind = "answer"
# tlp = "TLP:RED"
# days = 365
# [[evidence.retention]]
# days = 3650

# The formal letter (`liaison request letter`, docs/letter.md): a font with Latin and Chinese
# glyphs, embedded in the PDF (default: fonts-wqy-zenhei or fonts-noto-cjk, found at run time;
# LIAISON_LETTER_FONT), and the language officers write a request's summary in (the other
# language needs `liaison request translate`).
# [letter]
# font = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"
# font_index = 0
# source_lang = "en"

# Threat-feed clean-up (`liaison intel ingest …`): MaxMind-format databases for country and ASN
# (GeoLite2 Country/City/ASN, DB-IP, IPinfo Lite), and which partner agency receives the
# indicators found in which networks. The most specific route wins: indicator > CIDR > ASN > country.
# Feeds uploaded to POST /api/v1/intel/ingest are streamed to DATA_DIR/spool, at most
# max_upload_bytes (default 4 GiB).
# [intel]
# mmdb = ["/var/lib/liaison/GeoLite2-Country.mmdb", "/var/lib/liaison/GeoLite2-ASN.mmdb"]
# max_upload_bytes = 4294967296
# [[intel.routes]]
# country = "CN"
# partner = "CN-CNCERT"
# [[intel.routes]]
# cidr = "203.0.113.0/24"
# partner = "FBI"
## A partner's CSV in its own layout: `liaison intel ingest list.csv --format partner-list` (API:
## format=partner-list). Every column named here must be in the file's header, else the run fails.
# [intel.sources.partner-list]
# feed = "partner list"
# format = "generic"
# indicator = "addr"
# time_source = "seen"
# classification = "type"
# default_classification = "c2-server"
"#,
            listen = self.node.listen,
            db = self.node.database_url,
            rules = self.node.rules_dir.display().to_string(),
            tick = self.node.tick_seconds,
            user = self.node.cli_user,
            federation = self.federation.commented(),
            hs = self.limits.handshake_timeout_seconds,
            hdr = self.limits.header_timeout_seconds,
            req = self.limits.request_timeout_seconds,
            idle = self.limits.idle_timeout_seconds,
            maxc = self.limits.max_connections,
            maxa = self.limits.max_connections_per_address,
        ))
    }
}

// ---- [instances] per-instance federation settings ----

/// `[federation]`: what differs between instances that share one database (several
/// `liaison serve` processes on one PostgreSQL database, each with its own data directory):
/// where this instance's federation endpoints listen and where its copy of the keys is.
/// Unset values fall back to what `liaison init` stored in the database (older data
/// directories). Environment: `LIAISON_FED_LISTEN`, `LIAISON_FED_KEY_DIR`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InstanceFederation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_dir: Option<PathBuf>,
}

impl InstanceFederation {
    pub fn is_empty(&self) -> bool {
        self.listen.is_none() && self.key_dir.is_none()
    }

    fn apply_env(&mut self) {
        if let Ok(v) = std::env::var("LIAISON_FED_LISTEN")
            && !v.is_empty()
        {
            self.listen = Some(v);
        }
        if let Ok(v) = std::env::var("LIAISON_FED_KEY_DIR")
            && !v.is_empty()
        {
            self.key_dir = Some(v.into());
        }
    }

    /// The federation layer's settings for this instance.
    pub fn settings(&self) -> liaison_service::federation::FedSettings {
        let mut s = liaison_service::federation::FedSettings::from_env();
        s.listen = self.listen.clone();
        s.key_dir = self.key_dir.clone();
        s
    }

    fn commented(&self) -> String {
        let line = |name: &str, v: Option<String>, example: &str| match v {
            Some(v) => format!("{name} = {v:?}\n"),
            None => format!("# {name} = {example:?}\n"),
        };
        format!(
            r#"
# This instance's federation settings. Per instance: several instances may share one
# PostgreSQL database, each with its own data directory and liaison.toml.
[federation]
# Address this instance's federation endpoints listen on (LIAISON_FED_LISTEN).
{listen}# Directory of this instance's copy of the key files and TLS certificate (LIAISON_FED_KEY_DIR);
# default: the federation/ directory of the data directory that ran `liaison init`.
{key_dir}"#,
            listen = line("listen", self.listen.clone(), "127.0.0.1:8641"),
            key_dir = line(
                "key_dir",
                self.key_dir.as_ref().map(|p| p.display().to_string()),
                "/var/lib/liaison/federation"
            ),
        )
    }
}

#[cfg(test)]
mod instance_section {
    use super::*;

    #[test]
    fn the_federation_section_round_trips() {
        let dir = std::env::temp_dir().join("liaison-config-instances-test");
        let mut c = Config::defaults(&dir);
        let text = c.commented().unwrap();
        let back: Config = toml::from_str(&text).unwrap();
        assert!(back.federation.is_empty());
        c.federation.listen = Some("127.0.0.1:9641".into());
        c.federation.key_dir = Some(dir.join("keys"));
        let back: Config = toml::from_str(&c.commented().unwrap()).unwrap();
        assert_eq!(back.federation, c.federation);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commented_default_parses_back() {
        let dir = std::env::temp_dir().join("liaison-config-test");
        let c = Config::defaults(&dir);
        let text = c.commented().unwrap();
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(back.sla, c.sla);
        assert_eq!(back.node.listen, DEFAULT_LISTEN);
        assert_eq!(back.limits, LimitsSection::default());
    }

    #[test]
    fn limits_are_optional_and_validated() {
        let dir = std::env::temp_dir().join("liaison-config-limits-test");
        let text = Config::defaults(&dir).commented().unwrap();
        let start = text.find("[limits]").unwrap();
        let end = text.find("# Threat-feed").unwrap();
        let without: Config = toml::from_str(&format!("{}{}", &text[..start], &text[end..])).unwrap();
        assert_eq!(without.limits, LimitsSection::default());
        let l: LimitsSection = toml::from_str("header_timeout_seconds = 2\nmax_connections = 8").unwrap();
        assert_eq!(
            (l.header_timeout_seconds, l.max_connections, l.idle_timeout_seconds),
            (2, 8, 60)
        );
        assert!(l.validate().is_err(), "per address 64 > total 8");
        let zero: LimitsSection = toml::from_str("idle_timeout_seconds = 0").unwrap();
        assert!(
            zero.validate()
                .unwrap_err()
                .to_string()
                .contains("idle_timeout_seconds")
        );
        assert!(toml::from_str::<LimitsSection>("idle_timeout = 3").is_err());
    }
}

/// The commented template with the example block starting at `marker` uncommented and moved
/// to the end (tables must follow the plain keys).
#[cfg(test)]
fn uncommented(text: &str, marker: &str) -> String {
    let start = text.find(marker).expect("the example is in the template");
    let end = start + text[start..].find("\n\n").expect("the example ends with a blank line");
    let block: String = text[start..end]
        .lines()
        .map(|l| l.strip_prefix("# ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    format!("{}\n{}\n{block}\n", &text[..start], &text[end..])
}

#[cfg(test)]
mod work_section {
    use super::*;

    #[test]
    fn the_commented_work_and_notify_examples_parse_when_uncommented() {
        let dir = std::env::temp_dir().join("liaison-config-work-test");
        let text = Config::defaults(&dir).commented().unwrap();
        let full = uncommented(
            &uncommented(&uncommented(&text, "# [work]"), "# [notify]"),
            "# [sign_in]",
        );
        let full = uncommented(&full, "# [approval]");
        let c: Config = toml::from_str(&full).unwrap();
        assert_eq!(c.approval.kinds.len(), 2);
        assert!(c.approval.validate().is_ok());
        assert_eq!(c.sign_in, liaison_service::sign_in::SignInConfig::default());
        assert!(c.sign_in.validate().is_ok());
        assert!(c.work.validate().is_ok());
        assert_eq!(c.work.remind_preservation_days, 7);
        assert!(c.notify.validate().is_ok());
        let smtp = c.notify.smtp.as_ref().unwrap();
        assert_eq!((smtp.port, smtp.tls.as_str()), (Some(587), "starttls"));
        assert_eq!(
            c.notify.webhooks[0].kinds.as_deref().unwrap(),
            ["incoming", "deadline_passed"]
        );
    }
}

#[cfg(test)]
mod evidence_section {
    use super::*;

    #[test]
    fn the_commented_evidence_example_parses_when_uncommented() {
        let dir = std::env::temp_dir().join("liaison-config-evidence-test");
        let full = uncommented(&Config::defaults(&dir).commented().unwrap(), "# [evidence]");
        let c: Config = toml::from_str(&full).unwrap();
        assert_eq!(c.evidence.dir.as_deref(), Some(Path::new("/srv/liaison/evidence")));
        assert_eq!(c.evidence.limit(), 16 << 30);
        assert_eq!(c.evidence.open_uploads_limit(), 16);
        assert_eq!(c.evidence.upload_expiry(), std::time::Duration::from_secs(168 * 3600));
        assert_eq!(c.evidence.retention.len(), 2);
        use liaison_core::record::EvidenceKind;
        assert_eq!(
            c.evidence.retention_days(EvidenceKind::Answer, liaison_core::Tlp::Red),
            Some(365)
        );
        assert_eq!(
            c.evidence
                .retention_days(EvidenceKind::Supporting, liaison_core::Tlp::Amber),
            Some(3650)
        );
        assert!(c.evidence.validate().is_ok());
    }
}

#[cfg(test)]
mod intel_section {
    use super::*;

    #[test]
    fn the_commented_intel_example_parses_when_uncommented() {
        let dir = std::env::temp_dir().join("liaison-config-intel-test");
        let text = Config::defaults(&dir).commented().unwrap();
        let start = text.find("# [intel]").unwrap();
        let uncommented: String = text[start..]
            .lines()
            .map(|l| l.strip_prefix("# ").unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        let full = format!("{}\n{uncommented}\n", &text[..start]);
        let c: Config = toml::from_str(&full).unwrap();
        assert_eq!(c.intel.routing.routes.len(), 2);
        assert_eq!(c.intel.enrich.mmdb.len(), 2);
        assert_eq!(c.intel.max_upload_bytes, Some(4 << 30));
        let src = c.intel.named_source("partner-list").unwrap();
        assert_eq!(src.feed, "partner list");
        assert!(matches!(src.format, liaison_intel::FeedFormat::Generic(_)));
    }

    #[test]
    fn the_commented_taxii_and_pull_examples_parse_when_uncommented() {
        let dir = std::env::temp_dir().join("liaison-config-taxii-test");
        let text = Config::defaults(&dir).commented().unwrap();
        let text = uncommented(&uncommented(&text, "# [taxii]"), "# [pull.partner-cert]");
        let c: Config = toml::from_str(&text).unwrap();
        assert!(c.taxii.validate().is_ok());
        assert_eq!(c.taxii.collections[0].audience, "CN-MPS");
        assert_eq!(c.taxii.collections[0].tlp_max, liaison_core::Tlp::Amber);
        let p = &c.pull["partner-cert"];
        assert_eq!(p.kind, liaison_service::intel_pull::PullKind::Taxii);
        assert_eq!(p.default_tlp, liaison_core::Tlp::Amber);
        assert!(liaison_service::intel_pull::validate(&c.pull).is_ok());
    }

    #[test]
    fn the_commented_markings_example_parses_when_uncommented() {
        let dir = std::env::temp_dir().join("liaison-config-markings-test");
        let full = uncommented(&Config::defaults(&dir).commented().unwrap(), "# [markings]");
        let c: Config = toml::from_str(&full).unwrap();
        assert_eq!(c.markings.request, liaison_core::Tlp::AmberStrict);
        assert!(c.markings.is_client("CN-CNCERT", "CN-ISP-A"));
        assert!(c.markings.validate().is_ok());
    }
}
