//! `liaison case …` (docs/cases.md): joint task-force cases with member agencies on this node
//! and on peers' nodes.

use super::Ctx;
use super::request::{MarkingArgs, describe};
use crate::output::{json, table, when};
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use jiff::Timestamp;
use liaison_core::case::{CaseChange, CaseEvent, ItemKind};
use liaison_service::cases::{CaseView, ItemRef};
use liaison_service::evidence_package::case_file::verify_case_file;
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum CaseCmd {
    /// The cases your agency was invited to, newest change first.
    List,
    /// Open a case led by your agency, inviting agencies of this node or of peers' nodes.
    Create {
        /// The case's name (1 to 200 characters).
        #[arg(long)]
        name: String,
        /// The case reference, unique for your agency (JTF-2026-01).
        #[arg(long)]
        reference: String,
        /// An agency to invite (repeatable).
        #[arg(long = "invite")]
        invite: Vec<String>,
        #[command(flatten)]
        marking: MarkingArgs,
    },
    /// A case: members, linked items (an item you may not see shows its kind only), timeline.
    Show { case: String },
    /// Requests by state, time to answer and open deadlines over the case's links.
    Stats { case: String },
    /// Invite an agency (the lead agency's officers and supervisors).
    Invite { case: String, agency: String },
    /// Accept your agency's invitation.
    Accept { case: String },
    /// Decline your agency's invitation.
    Decline {
        case: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Leave the case: nothing more is shared with your agency.
    Leave {
        case: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Link a request, notice or evidence file your agency is a party to.
    Link(LinkArgs),
    /// Share a linked item your agency originated with every member (your consent, recorded).
    Share(ItemArgs),
    /// Write a note to the members.
    Note {
        case: String,
        text: String,
        #[command(flatten)]
        marking: MarkingArgs,
    },
    /// Close the case (the lead agency).
    Close {
        case: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Reopen a closed case (the lead agency).
    Reopen { case: String },
    /// Change the case's marking (the lead agency).
    Marking {
        case: String,
        #[command(flatten)]
        marking: MarkingArgs,
    },
    /// Write the case file for prosecutors: the case and the evidence package of every linked
    /// request you may read, signed by this node (verify it with `case verify`).
    Export {
        case: String,
        /// The file to write (must not exist), or - for standard output.
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify a case file offline (no data directory needed): its signature, every package in
    /// it, and that the case lists exactly those packages. Exit 7 on any mismatch.
    Verify {
        file: PathBuf,
        /// The fingerprint of a key you trust (from the node's operators, out of band;
        /// repeatable).
        #[arg(long = "trust")]
        trust: Vec<String>,
    },
}

#[derive(Args, Debug)]
pub struct ItemArgs {
    pub case: String,
    /// A request (its id or reference).
    #[arg(long, group = "item")]
    pub request: Option<String>,
    /// A clean-up notice (its id).
    #[arg(long, group = "item")]
    pub notice: Option<String>,
    /// An evidence file (its id).
    #[arg(long, group = "item")]
    pub evidence: Option<String>,
}

#[derive(Args, Debug)]
pub struct LinkArgs {
    #[command(flatten)]
    pub item: ItemArgs,
    /// Your agency originated the item and shares it with every member now.
    #[arg(long)]
    pub share: bool,
}

impl ItemArgs {
    fn item(&self) -> Result<ItemRef> {
        let (kind, id) = match (&self.request, &self.notice, &self.evidence) {
            (Some(r), None, None) => (ItemKind::Request, r),
            (None, Some(n), None) => (ItemKind::Notice, n),
            (None, None, Some(e)) => (ItemKind::Evidence, e),
            _ => {
                return Err(anyhow::Error::new(super::InputError(
                    "name one item: --request, --notice or --evidence".into(),
                )));
            }
        };
        Ok(ItemRef { kind, id: id.clone() })
    }
}

/// One line of a case's timeline.
pub fn describe_event(e: &CaseEvent) -> String {
    let what = match &e.change {
        CaseChange::Created { name, reference, .. } => format!("opened the case {reference} \"{name}\""),
        CaseChange::Invited { agency } => format!("invited {agency}"),
        CaseChange::Joined { agency } => format!("{agency} joined"),
        CaseChange::Declined { agency, note } => format!("{agency} declined{}", note_of(note)),
        CaseChange::Left { agency, note } => format!("{agency} left{}", note_of(note)),
        CaseChange::Linked { item, shared } => format!(
            "linked {} {} \"{}\"{}",
            item.kind,
            item.reference.as_deref().unwrap_or(&item.id),
            item.title,
            if *shared { " and shared it with the case" } else { "" }
        ),
        CaseChange::Shared { item } => format!(
            "shared {} {} with every member",
            item.kind,
            item.reference.as_deref().unwrap_or(&item.id)
        ),
        CaseChange::Withheld { item_kind } => format!("linked a {item_kind} your agency may not see"),
        CaseChange::Note { text, marking } => format!("note [{}]: {text}", describe(marking)),
        CaseChange::Marking { marking } => format!("marked the case {}", describe(marking)),
        CaseChange::Closed { note } => format!("closed the case{}", note_of(note)),
        CaseChange::Reopened => "reopened the case".into(),
    };
    format!("#{} {} {} ({}): {what}", e.seq, when(Some(e.at)), e.agency, e.actor)
}

fn note_of(n: &Option<String>) -> String {
    n.as_ref().map(|n| format!(": {n}")).unwrap_or_default()
}

fn print_case(ctx: &Ctx, v: &CaseView) -> Result<()> {
    if ctx.json {
        return json(v);
    }
    println!("{} {} [{}] {}", v.reference, v.name, describe(&v.marking), v.state);
    println!("  id {}", v.id);
    println!(
        "  lead {}; kept by {}; your agency: {}",
        v.lead,
        v.home.as_deref().unwrap_or("this node"),
        v.status
    );
    let mut t = table(&["member", "status", "since"]);
    for m in &v.members {
        t.add_row(vec![m.agency.clone(), m.status.to_string(), when(Some(m.since))]);
    }
    println!("{t}");
    if !v.links.is_empty() {
        let mut t = table(&["linked", "item", "by", "shared", "state now"]);
        for l in &v.links {
            let item = match &l.link.item {
                Some(i) => format!("{} {}", i.reference.as_deref().unwrap_or(&i.id), i.title),
                None => "(not shared with your agency)".into(),
            };
            let state = l
                .live
                .as_ref()
                .map(|r| {
                    let usable = if r.usable_in_case {
                        ""
                    } else {
                        " (answer not usable here without consent)"
                    };
                    format!("{}{usable}", r.state)
                })
                .unwrap_or_else(|| "-".into());
            t.add_row(vec![
                l.label.clone(),
                item,
                l.link.linked_by.clone(),
                if l.link.shared_seq.is_some() { "yes" } else { "no" }.into(),
                state,
            ]);
        }
        println!("{t}");
    }
    for e in &v.timeline {
        println!("{}", describe_event(e));
    }
    for a in &v.actions {
        println!(
            "your agency's {} asked {} by {}: {}",
            a.kind,
            when(Some(a.at)),
            a.actor,
            a.outcome
        );
    }
    Ok(())
}

/// Verifies a case file offline; exit 7 naming every mismatch.
fn verify(ctx: &Ctx, file: &Path, trust: &[String]) -> Result<()> {
    let fps = super::evidence_package::trusted(trust)?;
    let f = std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    let report = verify_case_file(std::io::BufReader::with_capacity(1 << 20, f), &fps);
    if ctx.json {
        json(&report)?;
        if !report.valid {
            std::process::exit(7);
        }
        return Ok(());
    } else {
        println!("{}: {}", if report.valid { "VALID" } else { "INVALID" }, file.display());
        for p in &report.problems {
            println!("  {p}");
        }
        if !report.node_id.is_empty() {
            println!(
                "  case {} exported by {} at node {} on {}; {} package(s), {} bytes",
                report.case_id,
                report.exported_by,
                report.node_id,
                report.exported_at,
                report.packages.len(),
                report.bytes
            );
        }
        for n in &report.packages {
            println!(
                "  {}: request {}, {} file(s), {} proof(s), {}",
                n.path,
                n.report.request_id,
                n.report.files,
                n.report.proofs,
                if n.report.valid { "valid" } else { "INVALID" }
            );
        }
        if let Some(s) = &report.signer {
            println!(
                "  manifest signed by {} key {} (fingerprint {}, {})",
                s.node_id,
                s.key_id,
                s.fingerprint,
                if s.trusted { "trusted" } else { "NOT trusted" }
            );
        }
    }
    if !report.valid {
        return Err(super::IntegrityFailure(format!(
            "the case file {} does not verify: {} problem(s), first: {}",
            file.display(),
            report.problems.len(),
            report.problems.first().map(|p| p.to_string()).unwrap_or_default()
        ))
        .into());
    }
    Ok(())
}

/// Writes the case file (beside `out`, then renamed, so a failed export leaves nothing).
async fn export(
    ctx: &Ctx,
    node: &liaison_service::Node,
    p: &liaison_service::Principal,
    case: &str,
    out: &Path,
) -> Result<()> {
    if out == Path::new("-") {
        // To standard output (a pipe): written to a temporary file first, which is removed.
        let (_, tmp) = node.case_export_temp(p, case, Timestamp::now()).await?;
        let copied = std::fs::File::open(&tmp).and_then(|mut f| std::io::copy(&mut f, &mut std::io::stdout().lock()));
        let _ = std::fs::remove_file(&tmp);
        copied.context("writing the case file to standard output")?;
        return Ok(());
    }
    let done = super::evidence_package::write_beside(out, "case-file.zip", async |tmp: &Path| {
        Ok(node.case_export(p, case, tmp, Timestamp::now()).await?)
    })
    .await?;
    if ctx.json {
        return json(&done);
    }
    println!(
        "{}: case file of case {} ({} bytes, {} evidence package(s), {} linked item(s) not included)",
        out.display(),
        done.case_id,
        done.size,
        done.packages,
        done.not_included
    );
    println!("  SHA-256 {}", done.sha256);
    println!(
        "  signed by node {} key {} (fingerprint {})",
        done.node_id, done.key_id, done.fingerprint
    );
    Ok(())
}

pub async fn run(ctx: &Ctx, cmd: CaseCmd) -> Result<()> {
    if let CaseCmd::Verify { file, trust } = &cmd {
        return verify(ctx, file, trust);
    }
    let (node, config) = ctx.node().await?;
    let p = ctx.principal(&node, &config).await?;
    let now = Timestamp::now();
    let v = match cmd {
        CaseCmd::List => {
            let cases = node.cases(&p).await?;
            if ctx.json {
                return json(&cases);
            }
            let mut t = table(&[
                "reference",
                "name",
                "lead",
                "state",
                "marking",
                "your agency",
                "changed",
            ]);
            for c in &cases {
                t.add_row(vec![
                    c.reference.clone(),
                    c.name.clone(),
                    c.lead.clone(),
                    c.state.to_string(),
                    c.tlp.clone(),
                    c.status.to_string(),
                    when(Some(c.updated_at)),
                ]);
            }
            println!("{t}");
            println!("{} case{}", cases.len(), if cases.len() == 1 { "" } else { "s" });
            return Ok(());
        }
        CaseCmd::Create {
            name,
            reference,
            invite,
            marking,
        } => {
            node.case_create(&p, &name, &reference, marking.marking()?, &invite, now)
                .await?
        }
        CaseCmd::Show { case } => node.case(&p, &case, now).await?,
        CaseCmd::Stats { case } => {
            let s = node.case_stats(&p, &case, now).await?;
            if ctx.json {
                return json(&s);
            }
            println!(
                "{} active members; {} requests, {} leads, {} notices, {} evidence files, {} not shared with you",
                s.members, s.requests, s.leads, s.notices, s.evidence, s.withheld
            );
            for (state, n) in &s.requests_by_state {
                println!("  {state}: {n}");
            }
            match s.median_answer_secs {
                Some(m) => println!("answered: {}; median {:.1} days", s.answered, m as f64 / 86_400.0),
                None => println!("answered: 0"),
            }
            for d in &s.open_deadlines {
                println!(
                    "  {} {} due {}{}",
                    d.reference,
                    d.deadline,
                    when(Some(d.due)),
                    if d.overdue { " OVERDUE" } else { "" }
                );
            }
            return Ok(());
        }
        CaseCmd::Invite { case, agency } => node.case_invite(&p, &case, &agency, now).await?,
        CaseCmd::Accept { case } => node.case_answer(&p, &case, true, None, now).await?,
        CaseCmd::Decline { case, note } => node.case_answer(&p, &case, false, note, now).await?,
        CaseCmd::Leave { case, note } => node.case_leave(&p, &case, note, now).await?,
        CaseCmd::Link(a) => node.case_link(&p, &a.item.case, &a.item.item()?, a.share, now).await?,
        CaseCmd::Share(a) => node.case_share(&p, &a.case, &a.item()?, now).await?,
        CaseCmd::Note { case, text, marking } => node.case_note(&p, &case, &text, marking.marking()?, now).await?,
        CaseCmd::Close { case, note } => node.case_close(&p, &case, false, note, now).await?,
        CaseCmd::Reopen { case } => node.case_close(&p, &case, true, None, now).await?,
        CaseCmd::Export { case, out } => return export(ctx, &node, &p, &case, &out).await,
        CaseCmd::Verify { .. } => return Ok(()),
        CaseCmd::Marking { case, marking } => {
            let Some(m) = marking.marking()? else {
                return Err(anyhow::Error::new(super::InputError(
                    "name the marking with --tlp".into(),
                )));
            };
            node.case_set_marking(&p, &case, m, now).await?
        }
    };
    if v.home.is_some() && !ctx.json {
        eprintln!("sent to the node that keeps the case; `liaison case show` tells when it is applied");
    }
    print_case(ctx, &v)
}
