//! `liaison directory`, `user`, `token`, `report`, `audit`.

use super::{Ctx, InputError, IntegrityFailure};
use crate::output::{json, table, when};
use anyhow::Result;
use clap::{Args, Subcommand};
use jiff::Timestamp;
use liaison_core::Role;
use liaison_service::GroupBy;

#[derive(Args, Debug)]
pub struct DirectoryArgs {
    /// Only agencies of this jurisdiction (ISO code).
    #[arg(long)]
    pub jurisdiction: Option<String>,
    #[command(subcommand)]
    pub cmd: Option<DirectoryCmd>,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::enum_variant_names)] // the subcommands read add-jurisdiction, add-agency, add-contact
pub enum DirectoryCmd {
    /// Add or rename a jurisdiction (admin).
    AddJurisdiction {
        /// ISO 3166-1 alpha-2 code.
        code: String,
        #[arg(long)]
        en: String,
        #[arg(long)]
        zh: String,
    },
    /// Add an agency served by this node (admin).
    AddAgency {
        code: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        native_name: Option<String>,
        /// The name Chinese pages show (default: the native name when it is Chinese).
        #[arg(long)]
        zh_name: Option<String>,
        #[arg(long)]
        jurisdiction: String,
        /// police, prosecutor, central_authority, cert or point_of_contact_24_7.
        #[arg(long, default_value = "police")]
        kind: String,
        /// IANA time zone.
        #[arg(long)]
        time_zone: String,
    },
    /// Rename an agency in this node's directory (admin): names only; the code, jurisdiction,
    /// kind and time zone stay.
    RenameAgency {
        /// Agency code.
        code: String,
        /// English name.
        #[arg(long)]
        name: String,
        /// Name in the agency's own language (default: the English name).
        #[arg(long)]
        native_name: Option<String>,
        /// The name Chinese pages show (default: the native name when it is Chinese).
        #[arg(long)]
        zh_name: Option<String>,
    },
    /// Add a contact point to an agency (admin).
    AddContact {
        /// Agency code or id.
        agency: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        phone: String,
        #[arg(long)]
        email: String,
        /// Comma-separated language tags, e.g. zh,en.
        #[arg(long, default_value = "en")]
        languages: String,
        #[arg(long)]
        time_zone: String,
        /// 24/7, or days and hours like "Mon-Fri 09:00-17:30".
        #[arg(long, default_value = "Mon-Fri 09:00-17:00")]
        hours: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Add a user to an agency with a role.
    Add {
        username: String,
        /// Agency code or id.
        #[arg(long)]
        agency: String,
        /// officer, desk, legal_reviewer, supervisor, analyst, auditor or admin.
        #[arg(long)]
        role: String,
        #[arg(long)]
        name: Option<String>,
    },
    List,
    /// Disable a user (their tokens stop working).
    Disable {
        username: String,
    },
    /// Enable a disabled user again.
    Enable {
        username: String,
    },
    /// Give a user another role (not your own); it applies at once to their tokens and sessions.
    Role {
        username: String,
        /// officer, desk, legal_reviewer, supervisor, analyst, auditor or admin.
        role: String,
    },
    /// Give a user a temporary password for the web pages (printed once; to be changed at
    /// the next sign-in). Unlocks the account and ends the user's web sessions.
    Password {
        username: String,
        /// Also remove the user's second factor (a lost phone): they set it up again.
        #[arg(long)]
        reset_second_factor: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Issue a token (printed once).
    Create {
        username: String,
        #[arg(long, default_value_t = 90)]
        days: u32,
        #[arg(long, default_value = "cli")]
        label: String,
    },
    List,
    Revoke {
        id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ReportCmd {
    /// Who answers whom, how often and how fast.
    Cooperation {
        /// Start (RFC 3339 instant or YYYY-MM-DD); default two years ago.
        #[arg(long)]
        from: Option<String>,
        /// End; default now.
        #[arg(long)]
        to: Option<String>,
        /// agency or jurisdiction.
        #[arg(long, default_value = "agency")]
        by: String,
        /// table, json or csv.
        #[arg(long, default_value = "table")]
        format: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Recompute the hash chain; exit code 7 if any entry was altered, removed or reordered.
    Verify,
}

fn bad(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(InputError(msg.into()))
}

pub fn parse_instant(flag: &str, s: &str) -> Result<Timestamp> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    s.parse::<jiff::civil::Date>()
        .ok()
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp())
        .ok_or_else(|| bad(format!("{flag}: '{s}' is not a date (YYYY-MM-DD) or RFC 3339 instant")))
}

pub async fn directory(ctx: &Ctx, a: DirectoryArgs) -> Result<()> {
    let (node, config) = ctx.node().await?;
    let p = ctx.principal(&node, &config).await?;
    let now = Timestamp::now();
    if let Some(cmd) = a.cmd {
        return directory_edit(ctx, &node, &p, cmd, now).await;
    }
    let mut views = node.directory(&p, now).await?;
    if let Some(j) = &a.jurisdiction {
        let code = liaison_core::CountryCode::parse(j).map_err(|e| bad(format!("--jurisdiction: {e}")))?;
        views.retain(|v| v.agency.jurisdiction == code);
    }
    if ctx.json {
        return json(&views);
    }
    let mut t = table(&[
        "agency",
        "name",
        "native name",
        "jur.",
        "kind",
        "contact",
        "phone / e-mail",
        "languages",
        "local time",
        "hours",
        "open now",
    ]);
    for v in &views {
        if v.contacts.is_empty() {
            t.add_row(vec![
                v.agency.code.clone(),
                v.agency.name_en.clone(),
                v.agency.name_native.clone(),
                v.agency.jurisdiction.to_string(),
                v.agency.kind.to_string(),
                "-".into(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]);
        }
        for c in &v.contacts {
            t.add_row(vec![
                v.agency.code.clone(),
                v.agency.name_en.clone(),
                v.agency.name_native.clone(),
                v.agency.jurisdiction.to_string(),
                v.agency.kind.to_string(),
                c.contact.name.clone(),
                format!("{}\n{}", c.contact.phone, c.contact.email),
                c.contact.languages.join(", "),
                c.status.local_time.clone(),
                c.contact.office_hours.to_string(),
                if c.status.open { "yes".into() } else { "no".into() },
            ]);
        }
    }
    println!("{t}");
    Ok(())
}

pub async fn user(ctx: &Ctx, c: UserCmd) -> Result<()> {
    let (node, config) = ctx.node().await?;
    let p = ctx.principal(&node, &config).await?;
    let now = Timestamp::now();
    match c {
        UserCmd::Add {
            username,
            agency,
            role,
            name,
        } => {
            let role: Role = role.parse().map_err(|e| bad(format!("--role: {e}")))?;
            let u = node
                .create_user(&p, &username, name.as_deref().unwrap_or(&username), &agency, role, now)
                .await?;
            if ctx.json {
                return json(&u);
            }
            println!("Added {} ({}) to {}", u.username, u.role, agency);
            println!(
                "For the web pages, give them a password: liaison user password {}",
                u.username
            );
        }
        UserCmd::List => {
            let users = node.users(&p).await?;
            if ctx.json {
                return json(&users);
            }
            let agencies = crate::output::agency_codes(&node, &p).await?;
            let mut t = table(&["username", "name", "agency", "role", "created", "disabled"]);
            for u in users {
                t.add_row(vec![
                    u.username,
                    u.display_name,
                    agencies.get(&u.agency).cloned().unwrap_or_default(),
                    u.role.to_string(),
                    when(Some(u.created_at)),
                    u.disabled.to_string(),
                ]);
            }
            println!("{t}");
        }
        UserCmd::Disable { username } => {
            node.set_user_disabled(&p, &username, true, now).await?;
            println!("Disabled {username}");
        }
        UserCmd::Enable { username } => {
            node.set_user_disabled(&p, &username, false, now).await?;
            println!("Enabled {username}");
        }
        UserCmd::Role { username, role } => {
            let role: Role = role.parse().map_err(|e| bad(format!("role: {e}")))?;
            let u = node.set_user_role(&p, &username, role, now).await?;
            if ctx.json {
                return json(&u);
            }
            println!("{} is now {}", u.username, u.role);
        }
        UserCmd::Password {
            username,
            reset_second_factor,
        } => {
            let temporary = node.reset_password(&p, &username, reset_second_factor, now).await?;
            if ctx.json {
                return json(
                    &serde_json::json!({"username": username, "temporary_password": temporary, "second_factor_removed": reset_second_factor}),
                );
            }
            println!(
                "Temporary password for {username} (shown once; give it in person or by telephone; it must be changed at the next sign-in{}):\n{temporary}",
                if reset_second_factor {
                    "; the second factor was removed and is set up again at that sign-in"
                } else {
                    ""
                }
            );
        }
    }
    Ok(())
}

pub async fn token(ctx: &Ctx, c: TokenCmd) -> Result<()> {
    let (node, config) = ctx.node().await?;
    let p = ctx.principal(&node, &config).await?;
    let now = Timestamp::now();
    match c {
        TokenCmd::Create { username, days, label } => {
            let (secret, info) = node.create_token(&p, &username, &label, days, now).await?;
            if ctx.json {
                return json(&serde_json::json!({"token": secret, "info": info}));
            }
            println!(
                "Token for {username} (expires {}); shown once:\n{secret}",
                info.expires_at
            );
        }
        TokenCmd::List => {
            let tokens = node.tokens(&p).await?;
            if ctx.json {
                return json(&tokens);
            }
            let mut t = table(&["id", "user", "label", "created", "expires", "revoked"]);
            for k in tokens {
                t.add_row(vec![
                    k.id,
                    k.user.to_string(),
                    k.label,
                    when(Some(k.created_at)),
                    when(Some(k.expires_at)),
                    when(k.revoked_at),
                ]);
            }
            println!("{t}");
        }
        TokenCmd::Revoke { id } => {
            node.revoke_token(&p, &id, now).await?;
            println!("Revoked {id}");
        }
    }
    Ok(())
}

pub async fn report(ctx: &Ctx, c: ReportCmd) -> Result<()> {
    let (node, config) = ctx.node().await?;
    let p = ctx.principal(&node, &config).await?;
    let now = Timestamp::now();
    let ReportCmd::Cooperation { from, to, by, format } = c;
    let from = match from {
        Some(s) => parse_instant("--from", &s)?,
        None => now - jiff::SignedDuration::from_hours(24 * 730),
    };
    let to = match to {
        Some(s) => parse_instant("--to", &s)?,
        None => now,
    };
    let by: GroupBy = by.parse()?;
    let r = node.cooperation(&p, from, to, by, now).await?;
    print_cooperation(&r, if ctx.json { "json" } else { &format })
}

pub fn print_cooperation(r: &liaison_service::CooperationReport, format: &str) -> Result<()> {
    match format {
        "json" => json(r),
        "csv" => {
            print!("{}", liaison_service::report::cooperation_csv(r));
            Ok(())
        }
        "table" => {
            let f = |v: Option<f64>| v.map(|x| format!("{x}")).unwrap_or_else(|| "-".into());
            let mut t = table(&[
                "requesting",
                "requested",
                "sent",
                "ack'd",
                "answered",
                "refused",
                "pending",
                "overdue",
                "answer rate %",
                "ack h (median/p90)",
                "answer days (median/p90)",
            ]);
            for p in &r.pairs {
                t.add_row(vec![
                    p.requesting.clone(),
                    p.requested.clone(),
                    p.sent.to_string(),
                    p.acknowledged.to_string(),
                    p.answered.to_string(),
                    p.refused.to_string(),
                    p.pending.to_string(),
                    p.overdue.to_string(),
                    f(p.answer_rate),
                    format!(
                        "{} / {}",
                        f(p.median_hours_to_acknowledge),
                        f(p.p90_hours_to_acknowledge)
                    ),
                    format!("{} / {}", f(p.median_days_to_answer), f(p.p90_days_to_answer)),
                ]);
            }
            println!("Cooperation {} to {} by {}", when(Some(r.from)), when(Some(r.to)), r.by);
            println!("{t}");
            Ok(())
        }
        other => Err(bad(format!("--format: '{other}' is not table, json or csv"))),
    }
}

pub async fn audit(ctx: &Ctx, c: AuditCmd) -> Result<()> {
    let (node, config) = ctx.node().await?;
    let p = ctx.principal(&node, &config).await?;
    let AuditCmd::Verify = c;
    let r = node.verify_audit(&p).await?;
    if ctx.json {
        json(&r)?;
    } else if r.is_intact() {
        println!("Audit log intact: {} entries, head {}", r.entries, r.head_hash);
        println!(
            "  checked against the log: {} requests (content, state, version), {} comments (text) and {} evidence files (digest, size, marking); {} written before entries carried digests",
            r.requests_checked, r.comments_checked, r.evidence_checked, r.unchecked_legacy
        );
        match r.last_anchored_seq {
            Some(seq) => println!(
                "  anchored in the federation ledger up to entry {seq} ({} anchors checked): peers witness it through tree heads",
                r.anchors_checked
            ),
            None => println!("  not anchored yet (anchors are written by a node with a federation identity)"),
        }
    }
    if let Some((seq, why)) = r.first_bad {
        let more = if r.problems > 1 {
            format!(" ({} problems in all; --json lists the counts)", r.problems)
        } else {
            String::new()
        };
        return Err(IntegrityFailure(format!("audit log broken at entry {seq}: {why}{more}")).into());
    }
    Ok(())
}

async fn directory_edit(
    ctx: &Ctx,
    node: &liaison_service::Node,
    p: &liaison_service::Principal,
    cmd: DirectoryCmd,
    now: Timestamp,
) -> Result<()> {
    use liaison_core::directory::{Agency, ContactPoint};
    match cmd {
        DirectoryCmd::AddJurisdiction { code, en, zh } => {
            let code = liaison_core::CountryCode::parse(&code).map_err(|e| bad(e.to_string()))?;
            node.add_jurisdiction(
                p,
                liaison_core::jurisdiction::Jurisdiction {
                    code,
                    name_en: en,
                    name_zh: zh,
                },
            )
            .await?;
            println!("Jurisdiction {code} saved");
        }
        DirectoryCmd::AddAgency {
            code,
            name,
            native_name,
            zh_name,
            jurisdiction,
            kind,
            time_zone,
        } => {
            let a = Agency {
                id: liaison_core::AgencyId::new(),
                code,
                name_native: native_name.unwrap_or_else(|| name.clone()),
                name_zh: zh_name.unwrap_or_default(),
                name_en: name,
                jurisdiction: liaison_core::CountryCode::parse(&jurisdiction)
                    .map_err(|e| bad(format!("--jurisdiction: {e}")))?,
                kind: kind.parse().map_err(|e| bad(format!("--kind: {e}")))?,
                time_zone,
            };
            let a = node.add_agency(p, a, now).await?;
            if ctx.json {
                return json(&a);
            }
            println!("Added agency {} ({})", a.code, a.id);
        }
        DirectoryCmd::RenameAgency {
            code,
            name,
            native_name,
            zh_name,
        } => {
            let names = liaison_service::AgencyNames {
                name_en: name,
                name_native: native_name.unwrap_or_default(),
                name_zh: zh_name.unwrap_or_default(),
            };
            let a = node.rename_agency(p, &code, names, now).await?;
            if ctx.json {
                return json(&a);
            }
            let zh = if a.name_zh.is_empty() {
                "none set".to_string()
            } else {
                a.name_zh.clone()
            };
            println!(
                "Renamed {}: English '{}', native '{}', Chinese pages '{}'",
                a.code, a.name_en, a.name_native, zh
            );
        }
        DirectoryCmd::AddContact {
            agency,
            name,
            phone,
            email,
            languages,
            time_zone,
            hours,
        } => {
            let ag = node.agency_by_code(p, "agency", &agency).await?;
            let c = ContactPoint {
                id: liaison_core::ContactId::new(),
                agency: ag.id,
                name,
                phone,
                email,
                languages: languages
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
                time_zone,
                office_hours: hours.parse().map_err(|e| bad(format!("--hours: {e}")))?,
            };
            let c = node.add_contact(p, c, now).await?;
            if ctx.json {
                return json(&c);
            }
            println!("Added contact {} to {}", c.name, ag.code);
        }
    }
    Ok(())
}
