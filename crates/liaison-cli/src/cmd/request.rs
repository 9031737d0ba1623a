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
    /// Only these states (comma-separated).
    #[arg(long)]
    pub state: Option<String>,
    #[arg(long)]
    pub kind: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Continue after this cursor (printed at the end of the previous page).
    #[arg(long)]
    pub cursor: Option<String>,
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

fn id(s: &str) -> Result<RequestId> {
    s.parse().map_err(|_| bad(format!("'{s}' is not a request id")))
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
            println!("Created draft {} (version {})", r.request.id, r.request.version);
            println!(
                "Submit it with: liaison --data-dir {} --as {} request transition {} --to submitted",
                ctx.data_dir.display(),
                p.username,
                r.request.id
            );
            Ok(())
        }
        RequestCmd::List(a) => list(ctx, &node, &p, a, None, now).await,
        RequestCmd::Overdue(a) => list(ctx, &node, &p, a, Some(now), now).await,
        RequestCmd::Show { id: s } => {
            let rid = id(&s)?;
            let r = node.request(&p, rid, now).await?;
            let events = node.events(&p, rid, now).await?;
            if ctx.json {
                return json(&serde_json::json!({"request": r, "events": events}));
            }
            show(&r);
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
            let rid = id(&a.id)?;
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
                follow_up: a.follow_up.map(|s| id(&s)).transpose()?,
            };
            let version = a.version.unwrap_or(current);
            let r = node.transition(&p, rid, version, input, now).await?;
            if ctx.json {
                return json(&r);
            }
            println!(
                "{} is now {} (version {})",
                r.request.id, r.request.state, r.request.version
            );
            if let Some(d) = r.request.answer_due.filter(|_| r.request.state.is_pending()) {
                println!("Answer due {}", when(Some(d)));
            }
            Ok(())
        }
        RequestCmd::Reassess { id: s } => {
            let rid = id(&s)?;
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
            let e = node.comment(&p, id(&s)?, &text, marking.marking()?, now).await?;
            if ctx.json {
                return json(&e);
            }
            let m = liaison_service::markings::comment_marking(&e);
            println!("Comment added ({}), marked {}", e.id, m.tlp);
            Ok(())
        }
        RequestCmd::Consent { id: s, for_case, note } => {
            let rid = id(&s)?;
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
            let letter = node.request_letter(&p, id(&a.id)?, &opts, now).await?;
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
            let rid = id(&s)?;
            node.set_request_text(&p, rid, &field, &lang, &text, now).await?;
            if ctx.json {
                return json(&serde_json::json!({"request": rid, "field": field, "lang": lang}));
            }
            println!("Text '{field}' of request {rid} set in {lang}.");
            Ok(())
        }
        RequestCmd::Marking { id: s, marking } => {
            let m = marking
                .marking()?
                .ok_or_else(|| bad("--tlp is required: the new level (CLEAR, GREEN, AMBER, AMBER+STRICT, RED)"))?;
            let r = node.set_marking(&p, id(&s)?, m, now).await?;
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
    if let Some(s) = &a.state {
        for part in s.split(',').filter(|x| !x.is_empty()) {
            f.states.push(part.parse().map_err(|e| bad(format!("--state: {e}")))?);
        }
    }
    if let Some(k) = &a.kind {
        f.kind = Some(k.parse().map_err(|e| bad(format!("--kind: {e}")))?);
    }
    if let Some(c) = &a.cursor {
        f.before = Some(id(c)?);
    }
    let page = node.list(p, f, now).await?;
    if ctx.json {
        return json(&page);
    }
    let agencies = crate::output::agency_codes(node, p).await?;
    let mut t = table(&[
        "id",
        "kind",
        "urgency",
        "from → to",
        "state",
        "submitted",
        "due",
        "overdue",
    ]);
    for q in &page.items {
        let code = |id| agencies.get(&id).cloned().unwrap_or_else(|| "?".into());
        t.add_row(vec![
            q.id.to_string(),
            q.kind.to_string(),
            q.urgency.to_string(),
            format!("{} → {}", code(q.requesting_agency), code(q.requested_agency)),
            q.state.to_string(),
            when(q.submitted_at),
            when(if matches!(q.state, State::Submitted | State::Received) {
                q.ack_due
            } else if q.state.is_pending() {
                q.answer_due
            } else {
                q.preserved_until
            }),
            q.overdue.map(|k| k.as_str().to_string()).unwrap_or_default(),
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
    println!("Request {}  [{}]  version {}", q.id, q.state, q.version);
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
