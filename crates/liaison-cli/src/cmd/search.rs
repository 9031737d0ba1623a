//! `liaison search …` (docs/search.md): words in requests, comments and file names; identifier
//! look-ups; saved searches; rebuilding the index.

use super::Ctx;
use crate::output::{json, table, when};
use anyhow::Result;
use clap::{Args, Subcommand};
use jiff::Timestamp;
use liaison_core::record::SearchPage;
use liaison_service::search::SearchParams;

#[derive(Subcommand, Debug)]
pub enum SearchCmd {
    /// Find words in the requests you may read: references, case references, summaries,
    /// comments and evidence file names, in English or Chinese ("quoted phrase", -excluded).
    Find(Box<FindArgs>),
    /// Look up a target identifier (IP address or network, domain, URL, e-mail, phone,
    /// account, wallet, bank account): the requests and clean-up notices that concern it.
    Lookup {
        /// The identifier (an account as service:name, a wallet as currency:address, a bank
        /// account as institution:number, with --kind).
        identifier: String,
        /// ip, network, domain, url, email, phone, account, wallet, bank, file_hash, asn.
        #[arg(long)]
        kind: Option<String>,
    },
    /// Your saved searches.
    Saved,
    /// Save a search under a name: its query string as the API takes it
    /// (`q=phishing&state=received`); the same name replaces it.
    Save { name: String, query: String },
    /// Run a saved search.
    Run {
        name: String,
        #[arg(long)]
        cursor: Option<String>,
        /// Print the page as CSV.
        #[arg(long)]
        csv: bool,
    },
    /// Delete a saved search.
    Forget { name: String },
    /// Re-create the search index from the stored requests, comments and files (administrators).
    Rebuild,
}

#[derive(Args, Debug)]
pub struct FindArgs {
    /// The words.
    #[arg(required = true)]
    pub words: Vec<String>,
    /// Only requests with exactly this case reference.
    #[arg(long)]
    pub case_reference: Option<String>,
    /// Only requests with this target identifier.
    #[arg(long)]
    pub target: Option<String>,
    /// How to read --target when its form does not tell.
    #[arg(long)]
    pub target_kind: Option<String>,
    /// The other agency (code).
    #[arg(long)]
    pub counterpart: Option<String>,
    #[arg(long)]
    pub kind: Option<String>,
    /// Only requests in these states (comma-separated).
    #[arg(long)]
    pub state: Option<String>,
    /// Only requests owned by this user of your agency (or me).
    #[arg(long)]
    pub owner: Option<String>,
    /// Only texts written on or after this day (2026-12-01) or instant.
    #[arg(long)]
    pub from: Option<String>,
    /// Only texts written before this day or instant.
    #[arg(long)]
    pub to: Option<String>,
    /// Only in: request, comment, file (comma-separated).
    #[arg(long = "in")]
    pub within: Option<String>,
    /// Oldest first.
    #[arg(long)]
    pub oldest: bool,
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    #[arg(long)]
    pub cursor: Option<String>,
    /// Print the page as CSV.
    #[arg(long)]
    pub csv: bool,
    /// Also save this search under a name.
    #[arg(long)]
    pub save: Option<String>,
}

impl FindArgs {
    /// The flags as the search's parameters (one parser for the API, the CLI and the pages).
    fn params(&self) -> Result<SearchParams> {
        let mut pairs: Vec<(&str, String)> = vec![("q", self.words.join(" ")), ("limit", self.limit.to_string())];
        for (k, v) in [
            ("case_reference", &self.case_reference),
            ("target", &self.target),
            ("target_kind", &self.target_kind),
            ("counterpart", &self.counterpart),
            ("kind", &self.kind),
            ("state", &self.state),
            ("owner", &self.owner),
            ("from", &self.from),
            ("to", &self.to),
            ("in", &self.within),
            ("cursor", &self.cursor),
        ] {
            if let Some(v) = v {
                pairs.push((k, v.clone()));
            }
        }
        if self.oldest {
            pairs.push(("sort", "oldest".into()));
        }
        Ok(SearchParams::parse(pairs)?)
    }
}

pub async fn run(ctx: &Ctx, cmd: SearchCmd) -> Result<()> {
    let (node, config) = ctx.node().await?;
    let p = ctx.principal(&node, &config).await?;
    let now = Timestamp::now();
    match cmd {
        SearchCmd::Find(a) => {
            let params = a.params()?;
            if let Some(name) = &a.save {
                let s = node.save_search(&p, name, &params.to_query(), now).await?;
                eprintln!("saved as '{}'", s.name);
            }
            let page = node.search(&p, &params, now).await?;
            print_page(ctx, &node, &page, a.csv).await
        }
        SearchCmd::Run { name, cursor, csv } => {
            let saved = node.saved_searches(&p).await?;
            let Some(s) = saved.iter().find(|s| s.name == name || s.id == name) else {
                return Err(liaison_service::ServiceError::NotFound(format!("saved search '{name}'")).into());
            };
            let mut params = SearchParams::from_query_string(&s.query)?;
            params.cursor = cursor;
            if params.q.is_some() {
                let page = node.search(&p, &params, now).await?;
                return print_page(ctx, &node, &page, csv).await;
            }
            // A saved search without words: the requests listing with its filters.
            let mut f = liaison_service::RequestFilter {
                limit: params.limit,
                kind: params.kind,
                states: params.states.clone(),
                ..Default::default()
            };
            node.search_filters(
                &p,
                &mut f,
                None,
                params.case_reference.as_deref(),
                params.target.as_deref(),
                params.target_kind.map(|k| k.to_string()).as_deref(),
            )
            .await?;
            let page = node.list(&p, f, now).await?;
            if csv {
                print!("{}", node.summaries_csv(&page.items, now).await?);
                return Ok(());
            }
            if ctx.json {
                return json(&page);
            }
            for r in &page.items {
                println!("{}  {}  {}  {}", r.reference, r.kind, r.state, r.case_reference);
            }
            println!("{} shown", page.items.len());
            Ok(())
        }
        SearchCmd::Lookup { identifier, kind } => {
            let kind = kind
                .map(|k| k.parse::<liaison_intel::ident::IdentKind>())
                .transpose()
                .map_err(|e| anyhow::Error::new(super::InputError(format!("--kind: {e}"))))?;
            let l = node.lookup(&p, &identifier, kind, now).await?;
            if ctx.json {
                return json(&l);
            }
            let more = if l.request_count_capped { "+" } else { "" };
            println!(
                "{} {} appears in {}{} request{} and {} notice{} you may see",
                l.kind,
                l.identifier,
                l.request_count,
                more,
                if l.request_count == 1 { "" } else { "s" },
                l.notice_count,
                if l.notice_count == 1 { "" } else { "s" }
            );
            if !l.requests.is_empty() {
                let agencies = crate::output::agency_codes(&node, &p).await?;
                let mut t = table(&["reference", "kind", "state", "from → to", "case", "created"]);
                for r in &l.requests {
                    let code = |id| agencies.get(&id).cloned().unwrap_or_else(|| "?".into());
                    t.add_row(vec![
                        r.reference.clone(),
                        r.kind.to_string(),
                        r.state.to_string(),
                        format!("{} → {}", code(r.requesting_agency), code(r.requested_agency)),
                        r.case_reference.clone(),
                        when(Some(r.created_at)),
                    ]);
                }
                println!("{t}");
            }
            for i in &l.indicators {
                println!(
                    "indicator {} {} ({}, {}, last seen {}); notices: {}",
                    i.kind,
                    i.value,
                    i.classification,
                    i.status,
                    when(Some(i.last_seen)),
                    if i.notices.is_empty() {
                        "none".into()
                    } else {
                        i.notices.join(", ")
                    }
                );
            }
            for i in &l.incoming {
                println!(
                    "notice {} from {}: {} {} ({})",
                    i.notice, i.sender, i.kind, i.value, i.status
                );
            }
            Ok(())
        }
        SearchCmd::Saved => {
            let saved = node.saved_searches(&p).await?;
            if ctx.json {
                return json(&saved);
            }
            let mut t = table(&["name", "query", "saved"]);
            for s in &saved {
                t.add_row(vec![s.name.clone(), s.query.clone(), when(Some(s.created_at))]);
            }
            println!("{t}");
            Ok(())
        }
        SearchCmd::Save { name, query } => {
            let s = node.save_search(&p, &name, &query, now).await?;
            if ctx.json {
                return json(&s);
            }
            println!("saved '{}': {}", s.name, s.query);
            Ok(())
        }
        SearchCmd::Forget { name } => {
            node.delete_saved_search(&p, &name).await?;
            println!("deleted '{name}'");
            Ok(())
        }
        SearchCmd::Rebuild => {
            let started = std::time::Instant::now();
            eprintln!("rebuilding the search index…");
            let (docs, keys) = node.search_rebuild(&p).await?;
            if ctx.json {
                return json(&serde_json::json!({"texts": docs, "target_keys": keys}));
            }
            println!(
                "indexed {docs} texts and {keys} target keys in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
    }
}

async fn print_page(ctx: &Ctx, node: &liaison_service::Node, page: &SearchPage, csv: bool) -> Result<()> {
    if csv {
        print!("{}", node.search_csv(page).await?);
        if let Some(n) = &page.next {
            eprintln!("more: --cursor {n}");
        }
        return Ok(());
    }
    if ctx.json {
        return json(page);
    }
    let more = if page.count_capped { "+" } else { "" };
    match (page.count, page.count_capped) {
        (1, _) => println!("1 text matches"),
        (n, _) => println!("{n}{more} texts match"),
    }
    for h in &page.items {
        // Marks as «…» in a terminal.
        let mut text = String::new();
        let mut last = 0;
        for &(s, e) in &h.snippet.marks {
            if s < last
                || e > h.snippet.text.len()
                || !h.snippet.text.is_char_boundary(s)
                || !h.snippet.text.is_char_boundary(e)
            {
                continue;
            }
            text.push_str(&h.snippet.text[last..s]);
            text.push('«');
            text.push_str(&h.snippet.text[s..e]);
            text.push('»');
            last = e;
        }
        text.push_str(h.snippet.text.get(last..).unwrap_or(""));
        println!(
            "{}  {}  {} ({})  {}",
            h.request.reference,
            when(Some(h.at)),
            h.field.replace('_', " "),
            h.request.state,
            text
        );
    }
    if let Some(n) = &page.next {
        println!("more: --cursor {n}");
    }
    Ok(())
}
