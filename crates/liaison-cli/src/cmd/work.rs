//! `liaison home`, `liaison inbox`, `liaison unit …`, `liaison prefs …`: working the
//! requests (docs/queues.md).

use super::{Ctx, InputError};
use crate::output::{json, table, when};
use anyhow::Result;
use clap::{Args, Subcommand};
use jiff::Timestamp;
use liaison_service::UserPrefs;

fn bad(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(InputError(msg.into()))
}

#[derive(Args, Debug)]
pub struct HomeArgs {
    /// End of your shift (RFC 3339, or a local time/date in your agency's zone); default: in 12 hours.
    #[arg(long)]
    pub shift_end: Option<String>,
}

#[derive(Args, Debug)]
pub struct InboxArgs {
    /// Only unread notifications.
    #[arg(long)]
    pub unread: bool,
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Mark this notification read.
    #[arg(long, conflicts_with = "read_all")]
    pub read: Option<String>,
    /// Mark every notification read.
    #[arg(long)]
    pub read_all: bool,
}

#[derive(Subcommand, Debug)]
pub enum UnitCmd {
    /// Your agency's units and their members.
    List,
    /// Create a unit (supervisors, administrators).
    Create {
        /// Short code (a-z, 0-9, '-', '_').
        code: String,
        /// Its name.
        name: String,
    },
    /// Add a user of your agency to a unit.
    Add { code: String, user: String },
    /// Remove a user from a unit.
    Remove { code: String, user: String },
}

#[derive(Subcommand, Debug)]
pub enum PrefsCmd {
    /// Your preferences.
    Show,
    /// Change your preferences (only what you give; `--clear NAME` removes one).
    Set(PrefsArgs),
}

#[derive(Args, Debug)]
pub struct PrefsArgs {
    /// en or zh-CN.
    #[arg(long)]
    pub language: Option<String>,
    /// IANA zone, e.g. Asia/Shanghai.
    #[arg(long)]
    pub time_zone: Option<String>,
    /// Where e-mail notifications go.
    #[arg(long)]
    pub email: Option<String>,
    /// Kinds also sent by e-mail (comma-separated).
    #[arg(long)]
    pub email_kinds: Option<String>,
    /// The daily digest: on or off.
    #[arg(long)]
    pub digest: Option<String>,
    /// Who acts for you while you are away (a user of your agency).
    #[arg(long)]
    pub delegate: Option<String>,
    /// Away until (RFC 3339, or a date/time in your agency's zone).
    #[arg(long)]
    pub away_until: Option<String>,
    /// Remove a preference: language, time_zone, email, email_kinds, digest, delegate, away_until.
    #[arg(long)]
    pub clear: Vec<String>,
}

pub async fn home(ctx: &Ctx, a: HomeArgs) -> Result<()> {
    let (node, config) = ctx.node().await?;
    let p = ctx.principal(&node, &config).await?;
    let now = Timestamp::now();
    let zone = node.user_zone(&p).await?;
    let end = a
        .shift_end
        .as_deref()
        .map(|t| liaison_core::directory::instant_in_zone(t, &zone))
        .transpose()
        .map_err(|e| bad(format!("--shift-end: {e}")))?;
    let h = node.home(&p, end, now).await?;
    if ctx.json {
        return json(&h);
    }
    let c = &h.counts;
    let n = |v: u64| c.shown(v);
    println!("{} ({})", p.username, p.role);
    println!(
        "  mine {}   my units {}   waiting on us {}   waiting on the partner {}   overdue {}   unassigned incoming {}   unread notifications {}",
        n(c.mine),
        n(c.my_units),
        n(c.waiting_on_us),
        n(c.waiting_on_partner),
        n(c.overdue),
        n(c.unassigned_incoming),
        n(c.unread_notifications)
    );
    let agencies = crate::output::agency_codes(&node, &p).await?;
    for s in &h.sections {
        println!();
        println!("{} ({}):", s.name.replace('_', " "), s.items.len());
        if s.items.is_empty() {
            println!("  nothing");
            continue;
        }
        let mut t = table(&["reference", "kind", "from → to", "state", "deadline"]);
        for q in &s.items {
            let code = |id| agencies.get(&id).cloned().unwrap_or_else(|| "?".into());
            t.add_row(vec![
                q.reference.clone(),
                q.kind.to_string(),
                format!("{} → {}", code(q.requesting_agency), code(q.requested_agency)),
                q.state.to_string(),
                liaison_service::work::running_due_of(q)
                    .map(|(k, d)| liaison_service::work::due_phrase(k, d, now, ctx.lang_code()))
                    .unwrap_or_default(),
            ]);
        }
        println!("{t}");
        println!("  all: liaison request list --queue {} --sort due", s.queue.as_str());
    }
    Ok(())
}

pub async fn inbox(ctx: &Ctx, a: InboxArgs) -> Result<()> {
    let (node, config) = ctx.node().await?;
    let p = ctx.principal(&node, &config).await?;
    let now = Timestamp::now();
    if a.read_all || a.read.is_some() {
        let which = a
            .read
            .as_deref()
            .map(|r| {
                r.parse()
                    .map_err(|_| bad(format!("--read: '{r}' is not a notification id")))
            })
            .transpose()?;
        let n = node.mark_read(&p, which, now).await?;
        if ctx.json {
            return json(&serde_json::json!({"marked": n}));
        }
        println!("{n} marked read");
        return Ok(());
    }
    let items = node
        .notifications(&p, a.unread, None, a.limit.clamp(1, 200), now)
        .await?;
    if ctx.json {
        return json(&items);
    }
    let mut t = table(&["when (UTC)", "", "kind", "request", "what"]);
    for n in &items {
        let s = |k: &str| n.data.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
        t.add_row(vec![
            when(Some(n.at)),
            if n.read_at.is_none() {
                "●".into()
            } else {
                String::new()
            },
            n.kind.replace('_', " "),
            s("reference"),
            liaison_service::work::notification_words(n, now, ctx.lang_code()),
        ]);
    }
    println!("{t}");
    println!("{} shown; mark read with --read ID or --read-all", items.len());
    Ok(())
}

pub async fn unit(ctx: &Ctx, c: UnitCmd) -> Result<()> {
    let (node, config) = ctx.node().await?;
    let p = ctx.principal(&node, &config).await?;
    let now = Timestamp::now();
    let units = match c {
        UnitCmd::List => node.units(&p).await?,
        UnitCmd::Create { code, name } => vec![node.create_unit(&p, &code, &name, now).await?],
        UnitCmd::Add { code, user } => vec![node.unit_member(&p, &code, &user, true, now).await?],
        UnitCmd::Remove { code, user } => vec![node.unit_member(&p, &code, &user, false, now).await?],
    };
    if ctx.json {
        return json(&units);
    }
    let mut t = table(&["code", "name", "members"]);
    for u in &units {
        t.add_row(vec![u.code.clone(), u.name.clone(), u.members.join(", ")]);
    }
    println!("{t}");
    Ok(())
}

pub async fn prefs(ctx: &Ctx, c: PrefsCmd) -> Result<()> {
    let (node, config) = ctx.node().await?;
    let p = ctx.principal(&node, &config).await?;
    let now = Timestamp::now();
    let prefs = match c {
        PrefsCmd::Show => node.prefs(&p).await?,
        PrefsCmd::Set(a) => {
            let mut cur: UserPrefs = node.prefs(&p).await?;
            let zone = node.user_zone(&p).await?;
            if a.language.is_some() {
                cur.language = a.language;
            }
            if a.time_zone.is_some() {
                cur.time_zone = a.time_zone;
            }
            if a.email.is_some() {
                cur.email = a.email;
            }
            if let Some(k) = a.email_kinds {
                cur.email_kinds = Some(
                    k.split(',')
                        .map(|x| x.trim().to_string())
                        .filter(|x| !x.is_empty())
                        .collect(),
                );
            }
            if let Some(d) = a.digest {
                cur.digest = Some(match d.as_str() {
                    "on" | "true" | "yes" => true,
                    "off" | "false" | "no" => false,
                    _ => return Err(bad(format!("--digest: '{d}' is not on or off"))),
                });
            }
            if a.delegate.is_some() {
                cur.delegate = a.delegate;
            }
            if let Some(t) = a.away_until {
                cur.away_until = Some(
                    liaison_core::directory::instant_in_zone(&t, &zone)
                        .map_err(|e| bad(format!("--away-until: {e}")))?,
                );
            }
            for name in &a.clear {
                match name.as_str() {
                    "language" => cur.language = None,
                    "time_zone" => cur.time_zone = None,
                    "email" => cur.email = None,
                    "email_kinds" => cur.email_kinds = None,
                    "digest" => cur.digest = None,
                    "delegate" => cur.delegate = None,
                    "away_until" => cur.away_until = None,
                    other => return Err(bad(format!("--clear: '{other}' is not a preference"))),
                }
            }
            node.set_prefs(&p, cur, now).await?
        }
    };
    if ctx.json {
        return json(&prefs);
    }
    let v = |o: &Option<String>| o.clone().unwrap_or_else(|| "(default)".into());
    println!("language:    {}", v(&prefs.language));
    println!("time zone:   {}", v(&prefs.time_zone));
    println!("e-mail:      {}", v(&prefs.email));
    println!(
        "e-mail for:  {}",
        prefs
            .email_kinds
            .as_ref()
            .map(|k| k.join(", "))
            .unwrap_or_else(|| format!("(default) {}", liaison_service::work::DEFAULT_EMAIL_KINDS.join(", ")))
    );
    println!(
        "digest:      {}",
        match prefs.digest {
            Some(true) => "on",
            Some(false) => "off",
            None => "(default: supervisors only)",
        }
    );
    println!("delegate:    {}", v(&prefs.delegate));
    println!("away until:  {}", when(prefs.away_until));
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum NotifyCmd {
    /// The e-mail and webhook outbox: how many deliveries are pending, sent and given up, and
    /// the latest errors (administrators).
    Status,
}

pub async fn notify(ctx: &Ctx, c: NotifyCmd) -> Result<()> {
    let (node, config) = ctx.node().await?;
    let p = ctx.principal(&node, &config).await?;
    match c {
        NotifyCmd::Status => {
            let s = node.delivery_status(&p).await?;
            if ctx.json {
                return json(&s);
            }
            let mut t = table(&["channel", "state", "deliveries"]);
            for c in s["counts"].as_array().into_iter().flatten() {
                t.add_row(vec![
                    c["channel"].as_str().unwrap_or_default().to_string(),
                    c["state"].as_str().unwrap_or_default().to_string(),
                    c["count"].to_string(),
                ]);
            }
            println!("{t}");
            let errors = s["errors"].as_array().cloned().unwrap_or_default();
            if !errors.is_empty() {
                println!("Latest errors:");
                for e in errors {
                    println!(
                        "  {} {} ({}): {}",
                        e["channel"].as_str().unwrap_or_default(),
                        e["target"].as_str().unwrap_or_default(),
                        e["state"].as_str().unwrap_or_default(),
                        e["error"].as_str().unwrap_or_default()
                    );
                }
            }
            Ok(())
        }
    }
}
