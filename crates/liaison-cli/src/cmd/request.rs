//! `liaison request …`

use super::{Ctx, InputError};
use crate::output::{json, table, when};
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use jiff::Timestamp;
use liaison_core::RequestId;
use liaison_core::lifecycle::{RefusalReason, State, TransitionInput};
use liaison_core::request::{RequestDraft, RequestKind, Urgency};
use liaison_service::{RequestFilter, StoredRequest};

#[derive(Subcommand, Debug)]
pub enum RequestCmd {
    /// Create a draft from a JSON file (see the RequestDraft schema) or from flags.
    Create(CreateArgs),
    /// List requests your agency sends or receives, newest first.
    List(ListArgs),
    /// Show one request with its history and legal assessment.
    Show { id: String },
    /// Re-assess a submitted request under the current rule packs (the law in force on its
    /// submission date), e.g. after the packs were updated.
    Reassess { id: String },
    /// Move a request to another state.
    Transition(TransitionArgs),
    /// Add a comment (marked like the request unless --tlp says stricter).
    Comment {
        id: String,
        text: String,
        #[command(flatten)]
        marking: MarkingArgs,
    },
    /// Speciality: consent, as the requested agency, to the answer being used in another case
    /// of the requesting agency (legal reviewers and supervisors).
    Consent {
        id: String,
        /// The requesting agency's other case reference.
        #[arg(long = "case")]
        for_case: String,
        /// Conditions or reasons, recorded with the consent.
        #[arg(long)]
        note: Option<String>,
    },
    /// Change a request's TLP marking (only the requesting agency may: docs/markings.md).
    Marking {
        id: String,
        #[command(flatten)]
        marking: MarkingArgs,
    },
    /// Requests whose running deadline has passed.
    Overdue(ListArgs),
    /// Assign a request for your agency: its owner (a user of your agency) and unit. Without
    /// --owner or --unit: take it yourself.
    Assign {
        id: String,
        /// The new owner's user name (`none`: nobody).
        #[arg(long)]
        owner: Option<String>,
        /// The unit's code (`none`: no unit).
        #[arg(long)]
        unit: Option<String>,
        /// Why (recorded in the history).
        #[arg(long)]
        note: Option<String>,
    },
    /// Four eyes (docs/lifecycle.md): show a draft's call for approval and what you may do;
    /// --ask for approval (officers and supervisors of the requesting agency); --send-back
    /// REASON (an approver); --take-back (who asked). An approver approves by sending it:
    /// `liaison request transition ID submitted`.
    Approval {
        id: String,
        #[arg(long, conflicts_with_all = ["send_back", "take_back"])]
        ask: bool,
        /// Why the draft goes back to its author.
        #[arg(long, conflicts_with = "take_back")]
        send_back: Option<String>,
        #[arg(long)]
        take_back: bool,
    },
    /// Watch a request (be told of every change), or stop with --stop.
    Watch {
        id: String,
        #[arg(long)]
        stop: bool,
    },
    /// Convert a preservation: create the follow-up draft (of --kind) and mark the
    /// preservation converted. Complete the draft, then submit it.
    Convert {
        id: String,
        /// The follow-up's kind: stored_content, traffic_data, subscriber_information, …
        #[arg(long)]
        kind: String,
    },
    /// Write the formal letter of a request as a PDF in the languages of `--lang` (default
    /// en,zh-CN; docs/letter.md). Refused,
    /// listing them, while particulars the requested side's law asks for are missing, unless
    /// --draft (a watermarked draft that lists them).
    Letter(LetterArgs),
    /// Set the text of a letter's free-text field in one language (`--lang en` or `--lang
    /// zh-CN`): a translation of the summary, the purpose, the necessity of preservation.
    Translate {
        id: String,
        /// summary, purpose or necessity.
        #[arg(long)]
        field: String,
        /// The text (or --file).
        #[arg(long, conflicts_with = "file")]
        text: Option<String>,
        /// A UTF-8 file with the text.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
    },
}

#[derive(Args, Debug)]
pub struct LetterArgs {
    pub id: String,
    /// Where to write the PDF.
    #[arg(long)]
    pub out: std::path::PathBuf,
    /// Write a watermarked draft even if particulars are missing (they are listed in it).
    #[arg(long)]
    pub draft: bool,
    /// The signer's name, printed in the signature block (else a line to write it on).
    #[arg(long)]
    pub signer: Option<String>,
    /// The signer's rank or function.
    #[arg(long)]
    pub function: Option<String>,
    /// The place of signature.
    #[arg(long)]
    pub place: Option<String>,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// JSON file with the draft (other flags are then ignored).
    #[arg(long)]
    pub file: Option<std::path::PathBuf>,
    #[arg(long)]
    pub kind: Option<String>,
    #[arg(long, default_value = "routine")]
    pub urgency: String,
    /// Requested agency (code or id).
    #[arg(long)]
    pub to: Option<String>,
    /// Your case reference.
    #[arg(long)]
    pub case: Option<String>,
    /// Offence code (repeatable), e.g. BC-02.
    #[arg(long = "offence")]
    pub offences: Vec<String>,
    #[arg(long)]
    pub summary: Option<String>,
    #[arg(long, default_value = "")]
    pub legal_basis: String,
    /// Amount involved, exact (e.g. 2500.50); needs --currency.
    #[arg(long, requires = "currency")]
    pub amount: Option<liaison_core::money::Decimal>,
    /// ISO 4217 currency of --amount (USD, CNY, EUR, …).
    #[arg(long, requires = "amount")]
    pub currency: Option<String>,
    #[command(flatten)]
    pub marking: MarkingArgs,
}

/// A TLP 2.0 marking typed on the command line.
#[derive(Args, Debug, Default)]
pub struct MarkingArgs {
    /// TLP 2.0 level: CLEAR, GREEN, AMBER, AMBER+STRICT or RED (default: the node's [markings]).
    #[arg(long)]
    pub tlp: Option<String>,
    /// With --tlp RED: a user of the receiving agency who may read it (repeatable; none: the
    /// whole receiving agency).
    #[arg(long = "recipient")]
    pub recipients: Vec<String>,
}

impl MarkingArgs {
    /// The marking asked for, if any (`--recipient` needs `--tlp`).
    pub fn marking(&self) -> Result<Option<liaison_core::Marking>> {
        let Some(t) = &self.tlp else {
            if !self.recipients.is_empty() {
                return Err(bad("--recipient needs --tlp RED"));
            }
            return Ok(None);
        };
        let tlp: liaison_core::Tlp = t.parse().map_err(|e| bad(format!("--tlp: {e}")))?;
        let m = liaison_core::Marking {
            tlp,
            recipients: self.recipients.clone(),
        };
        m.validate().map_err(|e| bad(format!("--tlp/--recipient: {e}")))?;
        Ok(Some(m))
    }
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// One of your queues: mine, my_units, waiting_on_us, waiting_on_partner, unassigned,
    /// watching, overdue, all (default).
    #[arg(long)]
    pub queue: Option<String>,
    /// newest (default), oldest, or due (the running deadline, soonest first).
    #[arg(long)]
    pub sort: Option<String>,
    /// Only these states (comma-separated).
    #[arg(long)]
    pub state: Option<String>,
    #[arg(long)]
    pub kind: Option<String>,
    /// The other agency (code), whichever way the request goes.
    #[arg(long)]
    pub counterpart: Option<String>,
    /// Owned by this user of your agency.
    #[arg(long)]
    pub owner: Option<String>,
    /// Created at or after (RFC 3339 instant, or a date in your agency's zone).
    #[arg(long)]
    pub from: Option<String>,
    /// Created before.
    #[arg(long)]
    pub to: Option<String>,
    /// The running deadline falls before (passed ones included).
    #[arg(long)]
    pub due_before: Option<String>,
    /// Print the page as CSV.
    #[arg(long)]
    pub csv: bool,
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Continue after this cursor (printed at the end of the previous page).
    #[arg(long)]
    pub cursor: Option<String>,
    /// Only requests whose reference, case reference, summary, comments or file names hold
    /// these words (docs/search.md).
    #[arg(long)]
    pub text: Option<String>,
    /// Only requests with exactly this case reference.
    #[arg(long)]
    pub case_reference: Option<String>,
    /// Only requests with this target identifier (normalized: IP, network, domain, URL,
    /// e-mail, phone, account, wallet, bank account).
    #[arg(long)]
    pub target: Option<String>,
    /// How to read --target when its form does not tell (account, wallet, bank, …).
    #[arg(long)]
    pub target_kind: Option<String>,
}

#[derive(Args, Debug)]
pub struct TransitionArgs {
    pub id: String,
    /// Target state (e.g. acknowledged, in_review, accepted, refused, answered).
    #[arg(long)]
    pub to: String,
    #[arg(long)]
    pub reason: Option<String>,
    /// For refusals: dual_criminality, political_offence, essential_interests, …
    #[arg(long)]
    pub refusal_reason: Option<String>,
    /// For preservation: RFC 3339 instant until which data is kept.
    #[arg(long)]
    pub preserved_until: Option<String>,
    /// For conversion: the follow-up request id.
    #[arg(long)]
    pub follow_up: Option<String>,
    /// The version you last saw (default: the current one).
    #[arg(long)]
    pub version: Option<i64>,
}

fn bad(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(InputError(msg.into()))
}

/// A request named by its id or its reference (`FBI-2026-0042`).
async fn resolve_id(
    node: &liaison_service::Node,
    p: &liaison_service::Principal,
    s: &str,
    now: Timestamp,
) -> Result<RequestId> {
    Ok(node.resolve(p, s, now).await?)
}

pub async fn run(ctx: &Ctx, c: RequestCmd) -> Result<()> {
    let (node, config) = ctx.node().await?;
    let p = ctx.principal(&node, &config).await?;
    let now = Timestamp::now();
    match c {
        RequestCmd::Create(a) => {
            let draft: RequestDraft = match &a.file {
                Some(f) => {
                    let text = std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
                    serde_json::from_str(&text)
                        .map_err(|e| bad(format!("{}:{}:{}: {e}", f.display(), e.line(), e.column())))?
                }
                None => {
                    let kind: RequestKind = a
                        .kind
                        .as_deref()
                        .ok_or_else(|| bad("--kind is required (or give --file)"))?
                        .parse()
                        .map_err(|e| bad(format!("--kind: {e}")))?;
                    let urgency: Urgency = a.urgency.parse().map_err(|e| bad(format!("--urgency: {e}")))?;
                    let to =
                        a.to.as_deref()
                            .ok_or_else(|| bad("--to is required: the requested agency's code"))?;
                    let requested = node.agency_by_code(&p, "--to", to).await?;
                    RequestDraft {
                        kind,
                        urgency,
                        requesting_agency: p.agency,
                        requested_agency: requested.id,
                        case_reference: a.case.unwrap_or_default(),
                        offences: a.offences,
                        summary: a.summary.unwrap_or_default(),
                        targets: vec![],
                        data_categories: vec![],
                        legal_basis: a.legal_basis,
                        related: vec![],
                        attachments: vec![],
                        amount: a
                            .amount
                            .zip(a.currency)
                            .map(|(value, currency)| liaison_core::request::Amount {
                                value,
                                currency: currency.to_ascii_uppercase(),
                            }),
                        conduct: vec![],
                        marking_set: a.marking.marking()?,
                    }
                }
            };
            let r = node.create_request(&p, draft, now).await?;
            if ctx.json {
                return json(&r);
            }
            println!(
                "Created draft {} ({}, version {})",
                r.reference, r.request.id, r.request.version
            );
            println!(
                "Submit it with: liaison --data-dir {} --as {} request transition {} --to submitted",
                ctx.data_dir.display(),
                p.username,
                r.reference
            );
            Ok(())
        }
        RequestCmd::List(a) => list(ctx, &node, &p, a, None, now).await,
        RequestCmd::Overdue(a) => list(ctx, &node, &p, a, Some(now), now).await,
        RequestCmd::Show { id: s } => {
            let rid = resolve_id(&node, &p, &s, now).await?;
            let r = node.request(&p, rid, now).await?;
            let events = node.events(&p, rid, now).await?;
            if ctx.json {
                return json(&serde_json::json!({"request": r, "events": events}));
            }
            show(&r);
            let w = node.work_state(&p, rid, now).await?;
            println!(
                "  owner: {}   unit: {}   watchers: {}",
                w.assignment.owner.as_deref().unwrap_or("nobody"),
                w.assignment.unit.as_deref().unwrap_or("none"),
                if w.assignment.watchers.is_empty() {
                    "none".to_string()
                } else {
                    w.assignment.watchers.join(", ")
                }
            );
            match (w.awaiting, w.deadline.zip(w.due_at)) {
                (Some(a), Some((k, d))) => println!(
                    "  waiting on {}: {}",
                    if a == liaison_core::record::Awaiting::Us {
                        "us"
                    } else {
                        "the partner"
                    },
                    liaison_service::work::due_phrase(k, d, now, ctx.lang_code())
                ),
                (Some(a), None) => println!(
                    "  waiting on {}",
                    if a == liaison_core::record::Awaiting::Us {
                        "us"
                    } else {
                        "the partner"
                    }
                ),
                _ => {}
            }
            println!(
                "  may be used in (speciality): {}",
                liaison_service::markings::permitted_uses(&r.request, &events).join(", ")
            );
            let mut t = table(&["when (UTC)", "actor", "event", "from", "to", "reason"]);
            for e in &events {
                let event = match e.event.as_str() {
                    "comment" => format!("comment [{}]", liaison_service::markings::comment_marking(e).tlp),
                    "marking" => format!(
                        "marking → {}",
                        e.data
                            .as_ref()
                            .and_then(|d| d.get("marking"))
                            .and_then(|m| serde_json::from_value::<liaison_core::Marking>(m.clone()).ok())
                            .map(|m| describe(&m))
                            .unwrap_or_default()
                    ),
                    _ => e.event.clone(),
                };
                t.add_row(vec![
                    when(Some(e.at)),
                    e.actor.clone(),
                    event,
                    e.from_state.map(|s| s.to_string()).unwrap_or_default(),
                    e.to_state.map(|s| s.to_string()).unwrap_or_default(),
                    e.reason.clone().unwrap_or_default(),
                ]);
            }
            println!("{t}");
            if let Some(a) = &r.assessment {
                match a.value::<liaison_law::Assessment>() {
                    Ok(a) => {
                        println!(
                            "Legal assessment (rule packs {}):",
                            r.rule_pack_version.as_deref().unwrap_or("?")
                        );
                        for line in a.render(ctx.lang) {
                            println!("  {line}");
                        }
                    }
                    Err(_) => println!("Legal assessment: made in an older format that this version cannot show."),
                }
                if node.assessment_outdated(&r) {
                    println!(
                        "This assessment was made under older rule packs (now {}): `liaison request reassess {}` renews it.",
                        node.legal_version(),
                        r.request.id
                    );
                }
            }
            let allowed = node.allowed(&p, rid, now).await?;
            println!(
                "You ({}, {}) may move it to: {}",
                p.username,
                p.role,
                if allowed.is_empty() {
                    "nothing".to_string()
                } else {
                    allowed.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                }
            );
            Ok(())
        }
        RequestCmd::Transition(a) => {
            let rid = resolve_id(&node, &p, &a.id, now).await?;
            let to: State = a.to.parse().map_err(|e| bad(format!("--to: {e}")))?;
            // Dates and local times are read in the requested agency's zone: a preservation
            // "until 2026-12-31" runs to the end of that day where the data is kept.
            let (current, zone) = node.change_context(&p, rid, now).await?;
            let preserved_until = a
                .preserved_until
                .as_deref()
                .map(|text| liaison_core::directory::instant_in_zone(text, &zone))
                .transpose()
                .map_err(|e| bad(format!("--preserved-until: {e}")))?;
            let input = TransitionInput {
                to: Some(to),
                reason: a.reason,
                refusal_reason: a
                    .refusal_reason
                    .map(|r| r.parse::<RefusalReason>())
                    .transpose()
                    .map_err(|e| bad(format!("--refusal-reason: {e}")))?,
                preserved_until,
                follow_up: match &a.follow_up {
                    Some(s) => Some(resolve_id(&node, &p, s, now).await?),
                    None => None,
                },
            };
            let version = a.version.unwrap_or(current);
            let r = node.transition(&p, rid, version, input, now).await?;
            if ctx.json {
                return json(&r);
            }
            println!(
                "{} is now {} (version {})",
                r.reference, r.request.state, r.request.version
            );
            if let Some(d) = r.request.answer_due.filter(|_| r.request.state.is_pending()) {
                println!("Answer due {}", when(Some(d)));
            }
            Ok(())
        }
        RequestCmd::Reassess { id: s } => {
            let rid = resolve_id(&node, &p, &s, now).await?;
            let r = node.reassess(&p, rid, now).await?;
            if ctx.json {
                return json(&r);
            }
            println!(
                "Re-assessed {} under rule packs {} (law in force on {}).",
                r.request.id,
                r.rule_pack_version.as_deref().unwrap_or("?"),
                r.request.submitted_at.map(|t| t.to_string()).unwrap_or_default()
            );
            if let Some(a) = r
                .assessment
                .as_ref()
                .and_then(|a| a.value::<liaison_law::Assessment>().ok())
            {
                for line in a.render(ctx.lang) {
                    println!("  {line}");
                }
            }
            Ok(())
        }
        RequestCmd::Comment { id: s, text, marking } => {
            let e = node
                .comment(
                    &p,
                    resolve_id(&node, &p, &s, now).await?,
                    &text,
                    marking.marking()?,
                    now,
                )
                .await?;
            if ctx.json {
                return json(&e);
            }
            let m = liaison_service::markings::comment_marking(&e);
            println!("Comment added ({}), marked {}", e.id, m.tlp);
            Ok(())
        }
        RequestCmd::Consent { id: s, for_case, note } => {
            let rid = resolve_id(&node, &p, &s, now).await?;
            let e = node.consent_to_use(&p, rid, &for_case, note.as_deref(), now).await?;
            if ctx.json {
                return json(&e);
            }
            let uses = node.permitted_uses(&p, rid, now).await?;
            println!(
                "Consent recorded ({}); the answer may now be used in: {}",
                e.id,
                uses.join(", ")
            );
            Ok(())
        }
        RequestCmd::Letter(a) => {
            let opts = liaison_service::letter::LetterOptions {
                langs: if ctx.langs.is_empty() {
                    vec!["en".into(), "zh-CN".into()]
                } else {
                    ctx.langs.clone()
                },
                draft: a.draft,
                signer: a.signer,
                function: a.function,
                place: a.place,
            };
            let letter = node
                .request_letter(&p, resolve_id(&node, &p, &a.id, now).await?, &opts, now)
                .await?;
            std::fs::write(&a.out, &letter.pdf).with_context(|| format!("cannot write {}", a.out.display()))?;
            if ctx.json {
                return json(&serde_json::json!({
                    "reference": letter.reference,
                    "out": a.out,
                    "sha256": letter.sha256,
                    "bytes": letter.pdf.len(),
                    "languages": letter.languages,
                    "draft": letter.draft,
                    "missing": letter.missing.iter().map(|m| serde_json::json!({"field": m.field, "message": m.message})).collect::<Vec<_>>(),
                }));
            }
            println!(
                "Letter {} written to {} ({} bytes, SHA-256 {}){}",
                letter.reference,
                a.out.display(),
                letter.pdf.len(),
                letter.sha256,
                if letter.draft { " — DRAFT" } else { "" }
            );
            for m in &letter.missing {
                println!("  missing {}: {}", m.field, m.message);
            }
            Ok(())
        }
        RequestCmd::Translate {
            id: s,
            field,
            text,
            file,
        } => {
            let lang = match ctx.langs.as_slice() {
                [one] => one.clone(),
                _ => return Err(bad("name the text's language with --lang (one of en, zh-CN)")),
            };
            let text = match (text, file) {
                (Some(t), None) => t,
                (None, Some(f)) => {
                    let meta = std::fs::metadata(&f).with_context(|| format!("cannot read {}", f.display()))?;
                    if meta.len() > 256 * 1024 {
                        return Err(bad(format!("{}: {} bytes, at most 256 KiB", f.display(), meta.len())));
                    }
                    std::fs::read_to_string(&f).with_context(|| format!("cannot read {} as UTF-8", f.display()))?
                }
                _ => return Err(bad("give the text with --text or --file")),
            };
            let rid = resolve_id(&node, &p, &s, now).await?;
            node.set_request_text(&p, rid, &field, &lang, &text, now).await?;
            if ctx.json {
                return json(&serde_json::json!({"request": rid, "field": field, "lang": lang}));
            }
            println!("Text '{field}' of request {rid} set in {lang}.");
            Ok(())
        }
        RequestCmd::Assign {
            id: s,
            owner,
            unit,
            note,
        } => {
            let rid = resolve_id(&node, &p, &s, now).await?;
            let none = |v: &Option<String>| v.as_deref().is_some_and(|x| x.eq_ignore_ascii_case("none"));
            let current = node.work_state(&p, rid, now).await?.assignment;
            let owner = match (&owner, &unit) {
                (None, None) => Some(p.username.clone()),
                (Some(_), _) if none(&owner) => None,
                (Some(o), _) => Some(o.clone()),
                (None, Some(_)) => current.owner.clone(),
            };
            let unit = match &unit {
                Some(_) if none(&unit) => None,
                Some(u) => Some(u.clone()),
                None => current.unit.clone(),
            };
            let w = node
                .assign(&p, rid, owner.as_deref(), unit.as_deref(), note.as_deref(), now)
                .await?;
            if ctx.json {
                return json(&w);
            }
            println!(
                "{s}: owner {}, unit {}",
                w.assignment.owner.as_deref().unwrap_or("nobody"),
                w.assignment.unit.as_deref().unwrap_or("none")
            );
            Ok(())
        }
        RequestCmd::Approval {
            id: s,
            ask,
            send_back,
            take_back,
        } => {
            let rid = resolve_id(&node, &p, &s, now).await?;
            let v = if ask {
                let version = node.request(&p, rid, now).await?.request.version;
                node.ask_approval(&p, rid, version, now).await?
            } else if let Some(reason) = send_back.as_deref() {
                node.end_approval(&p, rid, Some(reason), now).await?
            } else if take_back {
                node.end_approval(&p, rid, None, now).await?
            } else {
                node.approval(&p, rid, now).await?
            };
            if ctx.json {
                return json(&v);
            }
            match &v.asked {
                Some(a) => println!(
                    "{s}: approval asked by {} at {} for version {}",
                    a.by,
                    when(Some(a.at)),
                    a.version
                ),
                None if v.required => println!("{s}: approval is required for this kind and not asked yet"),
                None => println!("{s}: no approval asked (not required for this kind)"),
            }
            let mut can = Vec::new();
            if v.moves.ask {
                can.push("ask (--ask)");
            }
            if v.moves.approve {
                can.push("approve by sending (request transition ID submitted)");
            }
            if v.moves.send_back {
                can.push("send back (--send-back REASON) or take back (--take-back)");
            }
            if v.moves.send {
                can.push("send (request transition ID submitted)");
            }
            if can.is_empty() {
                println!("You may do nothing about it now.");
            } else {
                println!("You may: {}", can.join("; "));
            }
            Ok(())
        }
        RequestCmd::Watch { id: s, stop } => {
            let rid = resolve_id(&node, &p, &s, now).await?;
            let w = node.watch(&p, rid, !stop, now).await?;
            if ctx.json {
                return json(&w);
            }
            println!(
                "{s}: {} ({} watching)",
                if stop {
                    "no longer watched by you"
                } else {
                    "watched by you"
                },
                w.assignment.watchers.len()
            );
            Ok(())
        }
        RequestCmd::Convert { id: s, kind } => {
            let rid = resolve_id(&node, &p, &s, now).await?;
            let kind: RequestKind = kind.parse().map_err(|e| bad(format!("--kind: {e}")))?;
            let (follow, pres) = node.convert_preservation(&p, rid, kind, now).await?;
            if ctx.json {
                return json(&serde_json::json!({"follow_up": follow, "preservation": pres}));
            }
            println!(
                "{} is converted; the follow-up draft is {} ({}).",
                pres.reference, follow.reference, follow.request.draft.kind
            );
            println!(
                "Complete it (targets, data categories, legal basis), then: liaison request transition {} --to submitted",
                follow.reference
            );
            Ok(())
        }
        RequestCmd::Marking { id: s, marking } => {
            let m = marking
                .marking()?
                .ok_or_else(|| bad("--tlp is required: the new level (CLEAR, GREEN, AMBER, AMBER+STRICT, RED)"))?;
            let r = node
                .set_marking(&p, resolve_id(&node, &p, &s, now).await?, m, now)
                .await?;
            if ctx.json {
                return json(&r);
            }
            println!(
                "Request {} is marked {}",
                r.request.id,
                describe(&r.request.draft.marking())
            );
            Ok(())
        }
    }
}

async fn list(
    ctx: &Ctx,
    node: &liaison_service::Node,
    p: &liaison_service::Principal,
    a: ListArgs,
    overdue: Option<Timestamp>,
    now: Timestamp,
) -> Result<()> {
    let mut f = RequestFilter {
        limit: a.limit.clamp(1, 500),
        overdue_at: overdue,
        ..Default::default()
    };
    if let Some(s) = &a.sort {
        f.sort = s.parse().map_err(|e: String| bad(format!("--sort: {e}")))?;
    }
    if let Some(s) = &a.state {
        for part in s.split(',').filter(|x| !x.is_empty()) {
            f.states.push(part.parse().map_err(|e| bad(format!("--state: {e}")))?);
        }
    }
    if let Some(k) = &a.kind {
        f.kind = Some(k.parse().map_err(|e| bad(format!("--kind: {e}")))?);
    }
    if let Some(c) = &a.counterpart {
        f.counterpart = Some(node.agency_by_code(p, "--counterpart", c).await?.id);
    }
    if let Some(o) = &a.owner {
        f.owner = Some(node.colleague(p, "--owner", o).await?);
    }
    let zone = node.user_zone(p).await?;
    for (flag, text, slot) in [
        ("--from", &a.from, &mut f.created_from),
        ("--to", &a.to, &mut f.created_to),
        ("--due-before", &a.due_before, &mut f.due_before),
    ] {
        if let Some(t) = text {
            *slot = Some(liaison_core::directory::instant_in_zone(t, &zone).map_err(|e| bad(format!("{flag}: {e}")))?);
        }
    }
    if let Some(c) = &a.cursor {
        let badc = || bad(format!("--cursor: '{c}' is not a cursor this command printed"));
        match f.sort {
            liaison_core::record::Sort::Newest => f.before = Some(c.parse().map_err(|_| badc())?),
            liaison_core::record::Sort::Oldest => f.after = Some(c.parse().map_err(|_| badc())?),
            liaison_core::record::Sort::Due => {
                f.after_due = Some(liaison_core::record::parse_due_cursor(c).ok_or_else(badc)?)
            }
        }
    }
    node.search_filters(
        p,
        &mut f,
        a.text.as_deref(),
        a.case_reference.as_deref(),
        a.target.as_deref(),
        a.target_kind.as_deref(),
    )
    .await?;
    let queue: liaison_service::work::Queue = match &a.queue {
        Some(q) => q.parse().map_err(|e: String| bad(format!("--queue: {e}")))?,
        None => liaison_service::work::Queue::All,
    };
    let page = node.queue(p, queue, f, now).await?;
    if a.csv {
        print!("{}", node.summaries_csv(&page.items, now).await?);
        if let Some(n) = page.next {
            eprintln!("more: --cursor {n}");
        }
        return Ok(());
    }
    if ctx.json {
        return json(&page);
    }
    let agencies = crate::output::agency_codes(node, p).await?;
    let lang = ctx.lang_code();
    let mut t = table(&[
        "reference",
        "kind",
        "urgency",
        "from → to",
        "state",
        "submitted",
        "deadline",
    ]);
    for q in &page.items {
        let code = |id| agencies.get(&id).cloned().unwrap_or_else(|| "?".into());
        t.add_row(vec![
            q.reference.clone(),
            q.kind.to_string(),
            q.urgency.to_string(),
            format!("{} → {}", code(q.requesting_agency), code(q.requested_agency)),
            q.state.to_string(),
            when(q.submitted_at),
            liaison_service::work::running_due_of(q)
                .map(|(k, d)| liaison_service::work::due_phrase(k, d, now, lang))
                .unwrap_or_default(),
        ]);
    }
    println!("{t}");
    println!("{} shown", page.items.len());
    if let Some(n) = page.next {
        println!("more: --cursor {n}");
    }
    Ok(())
}

fn show(r: &StoredRequest) {
    let q = &r.request;
    println!(
        "Request {} ({})  [{}]  version {}",
        r.reference, q.id, q.state, q.version
    );
    println!(
        "  kind: {}   urgency: {}   case: {}",
        q.draft.kind, q.draft.urgency, q.draft.case_reference
    );
    println!("  marking: {}", describe(&q.draft.marking()));
    println!("  offences: {}", q.draft.offences.join(", "));
    println!("  summary: {}", q.draft.summary);
    println!(
        "  submitted: {}   acknowledged: {}   answered: {}",
        when(q.submitted_at),
        when(q.acknowledged_at),
        when(q.answered_at)
    );
    println!(
        "  acknowledge by: {}   answer by: {}   preserved until: {}",
        when(q.ack_due),
        when(q.answer_due),
        when(q.preserved_until)
    );
    if let Some(k) = r.overdue {
        println!("  OVERDUE: {} deadline passed", k.as_str());
    }
}

/// A marking as a line: `TLP:RED (named: amy, bob)`.
pub fn describe(m: &liaison_core::Marking) -> String {
    if m.recipients.is_empty() {
        m.tlp.to_string()
    } else {
        format!("{} (named: {})", m.tlp, m.recipients.join(", "))
    }
}
