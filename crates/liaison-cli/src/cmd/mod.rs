//! Command definitions and dispatch.

mod admin;
mod assess;
// [instances]
mod backup;
mod case;
mod demo;
mod evidence;
mod evidence_package;
// [federation]
pub mod federation;
mod init;
// [intel] network clean-up
pub mod intel;
mod request;
mod search;
mod work;

use crate::config::Config;
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use liaison_service::Node;
use liaison_service::Principal;
use liaison_service::legal::Legal;
use std::path::PathBuf;

/// An integrity check failed (exit code 7).
#[derive(Debug)]
pub struct IntegrityFailure(pub String);

/// The command line's own input errors (exit code 3).
#[derive(Debug)]
pub struct InputError(pub String);

impl std::error::Error for IntegrityFailure {}
impl std::error::Error for InputError {}

impl std::fmt::Display for IntegrityFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

const AFTER_HELP: &str = "Exit codes: 0 success, 1 failure, 2 usage error, 3 invalid input, 4 not found, \
5 conflict (stale version, illegal transition, duplicate), 6 not permitted, 7 integrity check failed, 10 internal error.";

/// Liaison: cross-border cybercrime cooperation, one node per agency.
#[derive(Parser, Debug)]
#[command(name = "liaison", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    /// Data directory (configuration, SQLite database, rule packs, keys).
    /// The node's data directory [default: liaison-data]; `demo` creates it (default: a new
    /// temporary directory).
    #[arg(long, global = true, env = "LIAISON_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Act as this user (for commands that act on cases); default: cli_user in liaison.toml.
    #[arg(long = "as", global = true, env = "LIAISON_USER")]
    pub user: Option<String>,
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Language of legal assessments: en or zh (zh-CN) [default: en]. `request letter` takes a
    /// comma-separated list in print order (default en,zh-CN), `request translate` one.
    #[arg(long, global = true, env = "LIAISON_LANG", value_parser = parse_langs)]
    pub lang: Option<Langs>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a data directory: commented config, database, rule packs, an admin user and token.
    Init(init::InitArgs),
    /// Run the node's API (and its deadline watcher).
    Serve(init::ServeArgs),
    /// Work with assistance requests.
    #[command(subcommand)]
    Request(request::RequestCmd),
    /// Search: words in requests, comments and file names; identifier look-ups; saved searches.
    #[command(subcommand)]
    Search(search::SearchCmd),
    /// Joint task-force cases: members on several nodes, linked items, timeline, statistics.
    #[command(subcommand)]
    Case(case::CaseCmd),
    /// Your home page: queue counts and the lists your role starts a shift with.
    Home(work::HomeArgs),
    /// Your notifications (newest first); mark them read.
    Inbox(work::InboxArgs),
    /// Units (teams) of your agency and their members.
    #[command(subcommand)]
    Unit(work::UnitCmd),
    /// Your preferences: language, time zone, e-mail, digest, delegate while away.
    #[command(subcommand)]
    Prefs(work::PrefsCmd),
    /// Notifications that leave the node (e-mail, webhooks): the outbox.
    #[command(subcommand)]
    Notify(work::NotifyCmd),
    /// Show the directory: agencies and contact points with their local time and office hours.
    Directory(admin::DirectoryArgs),
    /// Manage users.
    #[command(subcommand)]
    User(admin::UserCmd),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(admin::TokenCmd),
    /// Reports.
    #[command(subcommand)]
    Report(admin::ReportCmd),
    /// The audit log.
    #[command(subcommand)]
    Audit(admin::AuditCmd),
    /// Evidence files on requests: add, list, get, custody, legal holds, retention, key rotation.
    #[command(subcommand)]
    Evidence(evidence::EvidenceCmd),
    /// Assess a request (stored or described by flags) against both states' law.
    Assess(assess::AssessArgs),
    /// Rule packs.
    #[command(subcommand)]
    Rules(assess::RulesCmd),
    /// Run a throwaway demonstration node with realistic data, and serve it on 127.0.0.1.
    Demo(demo::DemoArgs),
    // [federation]
    /// Pinned peer nodes (like SSH known_hosts).
    #[command(subcommand)]
    Peer(federation::PeerCmd),
    /// The append-only ledger of messages sent, received and acknowledged.
    #[command(subcommand)]
    Ledger(federation::LedgerCmd),
    /// This node's federation identity, messages and key rotation.
    #[command(subcommand)]
    Federation(federation::FedCmd),
    /// Two federated nodes (US FBI and China's MPS) on 127.0.0.1 exchanging a request.
    DemoFederation(federation::DemoFedArgs),
    // [intel]
    /// Network clean-up: ingest threat feeds, notify partners, record their feedback, statistics.
    #[command(subcommand)]
    Intel(intel::IntelCmd),
    // [instances]
    /// Write one archive of the node (database snapshot, keys, configuration), mode 0600.
    Backup(backup::BackupArgs),
    /// Restore a node from a `liaison backup` archive (verified before anything is touched).
    Restore(backup::RestoreArgs),
}

/// What every command gets.
pub struct Ctx {
    /// Language of legal assessments (the first of `--lang`).
    pub lang: liaison_law::Lang,
    /// Every language of `--lang` as given (empty: none given): the letter's languages.
    pub langs: Vec<String>,
    pub data_dir: PathBuf,
    /// Whether the user named the data directory (`--data-dir` or `LIAISON_DATA_DIR`).
    pub data_dir_given: bool,
    pub user: Option<String>,
    pub json: bool,
}

impl Ctx {
    /// The language of what the command prints about work (`en` or `zh-CN`).
    pub fn lang_code(&self) -> &'static str {
        match self.lang {
            liaison_law::Lang::Zh => "zh-CN",
            _ => "en",
        }
    }

    pub fn config(&self) -> Result<Config> {
        Config::load(&self.data_dir)
    }

    /// Opens the node described by the data directory's configuration.
    pub async fn node(&self) -> Result<(Node, Config)> {
        let config = self.config()?;
        let node = open_node(&config).await?;
        Ok((node, config))
    }

    /// The acting user: `--as`, else the configured CLI user.
    pub async fn principal(&self, node: &Node, config: &Config) -> Result<Principal> {
        let name = self.user.clone().unwrap_or_else(|| config.node.cli_user.clone());
        node.local_principal(&name)
            .await
            .with_context(|| format!("acting as '{name}' (choose a user with --as)"))
    }
}

pub async fn open_node(config: &Config) -> Result<Node> {
    let legal = Legal::load(&config.node.rules_dir).map_err(|e| {
        let details: Vec<String> = e.diagnostics().iter().map(|d| format!("  {d}")).collect();
        anyhow::Error::new(IntegrityFailure(format!(
            "rule packs in {} are not valid; the node will not run on half-loaded law: {e}\n{}",
            config.node.rules_dir.display(),
            details.join("\n")
        )))
    })?;
    let node = Node::open(&config.node.database_url, config.sla.clone(), legal)
        .await
        .with_context(|| format!("opening the database {}", redact(&config.node.database_url)))?;
    node.with_intel_config(config.intel.clone())
        .with_taxii_config(config.taxii.clone())
        .with_pull_sources(config.pull.clone(), std::path::PathBuf::new())
        .with_markings(config.markings.clone())
        .context("[markings] in liaison.toml")?
        .with_evidence(config.evidence.clone())
        .context("[evidence] in liaison.toml")?
        .with_letter_config(config.letter.clone())
        .context("[letter] in liaison.toml")?
        .with_notify(config.notify.clone())
        .context("[notify] in liaison.toml")
        .map(|n| n.with_work_config(config.work.clone()))
        .and_then(|n| {
            config
                .sign_in
                .validate()
                .map_err(|e| anyhow::anyhow!("[sign_in] in liaison.toml: {e}"))?;
            Ok(n.with_sign_in(config.sign_in.clone())
                .with_approval(config.approval.clone()))
        })
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// `--lang`: one language, or several separated by commas (the letter's print order).
#[derive(Debug, Clone)]
pub struct Langs {
    pub first: liaison_law::Lang,
    pub tags: Vec<String>,
}

fn parse_langs(s: &str) -> std::result::Result<Langs, String> {
    let tags: Vec<String> = s
        .split(',')
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    let mut first = None;
    for t in &tags {
        let l = liaison_law::Lang::parse(t)
            .ok_or_else(|| format!("'{t}' is not a language Liaison speaks: use en or zh"))?;
        first.get_or_insert(l);
    }
    let first = first.ok_or_else(|| "name a language: en or zh".to_string())?;
    Ok(Langs { first, tags })
}

pub async fn run(cli: Cli) -> Result<()> {
    let ctx = Ctx {
        lang: cli.lang.as_ref().map(|l| l.first).unwrap_or_default(),
        langs: cli.lang.map(|l| l.tags).unwrap_or_default(),
        data_dir_given: cli.data_dir.is_some(),
        data_dir: cli.data_dir.unwrap_or_else(|| PathBuf::from("liaison-data")),
        user: cli.user,
        json: cli.json,
    };
    match cli.command {
        Command::Init(a) => init::init(&ctx, a).await,
        Command::Serve(a) => init::serve(&ctx, a).await,
        Command::Request(c) => request::run(&ctx, c).await,
        Command::Search(c) => search::run(&ctx, c).await,
        Command::Case(c) => case::run(&ctx, c).await,
        Command::Home(a) => work::home(&ctx, a).await,
        Command::Inbox(a) => work::inbox(&ctx, a).await,
        Command::Unit(c) => work::unit(&ctx, c).await,
        Command::Prefs(c) => work::prefs(&ctx, c).await,
        Command::Notify(c) => work::notify(&ctx, c).await,
        Command::Directory(a) => admin::directory(&ctx, a).await,
        Command::User(c) => admin::user(&ctx, c).await,
        Command::Token(c) => admin::token(&ctx, c).await,
        Command::Report(c) => admin::report(&ctx, c).await,
        Command::Audit(c) => admin::audit(&ctx, c).await,
        Command::Evidence(c) => evidence::run(&ctx, c).await,
        Command::Assess(a) => assess::assess(&ctx, a).await,
        Command::Rules(c) => assess::rules(&ctx, c).await,
        Command::Demo(a) => demo::demo(&ctx, a).await,
        Command::Peer(c) => federation::peer(&ctx, c).await,
        Command::Ledger(c) => federation::ledger(&ctx, c).await,
        Command::Federation(c) => federation::federation(&ctx, c).await,
        Command::DemoFederation(a) => federation::demo_federation(&ctx, a).await,
        Command::Intel(c) => intel::run(&ctx, c).await,      // [intel]
        Command::Backup(a) => backup::backup(&ctx, a).await, // [instances]
        Command::Restore(a) => backup::restore(&ctx, a).await,
    }
}
