//! `liaison assess` and `liaison rules check`.

use super::{Ctx, InputError, IntegrityFailure};
use crate::output::json;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use jiff::Timestamp;
use liaison_core::request::{Amount, Target, TargetValue};
use liaison_core::{CountryCode, DataCategory, RequestId, RequestKind, Urgency};
use liaison_law::AssessmentInput;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct AssessArgs {
    /// Assess a stored request.
    #[arg(long)]
    pub request: Option<String>,
    /// Requesting state (ISO code), for a what-if assessment without a stored request.
    #[arg(long)]
    pub from: Option<String>,
    /// Requested state (ISO code).
    #[arg(long)]
    pub to: Option<String>,
    #[arg(long, default_value = "subscriber_information")]
    pub kind: String,
    #[arg(long, default_value = "routine")]
    pub urgency: String,
    /// Offence code (repeatable).
    #[arg(long = "offence")]
    pub offences: Vec<String>,
    /// Conduct qualifier (repeatable), e.g. possession_only, distribution.
    #[arg(long = "conduct")]
    pub conduct: Vec<String>,
    /// Data category (repeatable); default: what the kind implies.
    #[arg(long = "category")]
    pub categories: Vec<String>,
    /// Amount involved, e.g. 2500.
    #[arg(long)]
    pub amount: Option<liaison_core::money::Decimal>,
    /// ISO 4217 currency of --amount.
    #[arg(long, default_value = "CNY")]
    pub currency: String,
    /// When the data of interest was created (RFC 3339 or YYYY-MM-DD): drives retention risk.
    #[arg(long)]
    pub event_at: Option<String>,
    /// Evaluate the law in force on this date instead of today.
    #[arg(long)]
    pub as_of: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum RulesCmd {
    /// Validate every rule pack; problems are printed as file:line with the rule id.
    Check {
        /// Directory to check (default: rules_dir of the data directory, or ./rules).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

fn bad(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(InputError(msg.into()))
}

pub async fn assess(ctx: &Ctx, a: AssessArgs) -> Result<()> {
    let (node, config) = ctx.node().await?;
    let p = ctx.principal(&node, &config).await?;
    let now = Timestamp::now();
    let as_of = a
        .as_of
        .as_deref()
        .map(|s| super::admin::parse_instant("--as-of", s))
        .transpose()?
        .unwrap_or(now);
    let assessment = if let Some(id) = &a.request {
        let rid: RequestId = id
            .parse()
            .map_err(|_| bad(format!("--request: '{id}' is not a request id")))?;
        node.assess(&p, None, Some(rid), None, as_of).await?
    } else {
        let from = CountryCode::parse(
            a.from
                .as_deref()
                .ok_or_else(|| bad("give --request ID, or --from and --to (ISO codes)"))?,
        )
        .map_err(|e| bad(format!("--from: {e}")))?;
        let to = CountryCode::parse(a.to.as_deref().ok_or_else(|| bad("--to is required with --from"))?)
            .map_err(|e| bad(format!("--to: {e}")))?;
        let kind: RequestKind = a.kind.parse().map_err(|e| bad(format!("--kind: {e}")))?;
        let urgency: Urgency = a.urgency.parse().map_err(|e| bad(format!("--urgency: {e}")))?;
        let mut categories = Vec::new();
        for c in &a.categories {
            categories.push(c.parse::<DataCategory>().map_err(|e| bad(format!("--category: {e}")))?);
        }
        if categories.is_empty() {
            categories = kind.default_categories().to_vec();
        }
        let mut targets = Vec::new();
        if let Some(e) = &a.event_at {
            let at = super::admin::parse_instant("--event-at", e)?;
            targets.push(Target {
                value: TargetValue::Account {
                    service: "unspecified".into(),
                    identifier: "target".into(),
                },
                from: at,
                until: at,
            });
        }
        let input = AssessmentInput {
            requesting: from,
            requested: to,
            kind,
            urgency,
            offences: a.offences,
            conduct: a.conduct,
            amount: a.amount.map(|value| Amount {
                value,
                currency: a.currency,
            }),
            categories,
            targets,
            as_of,
            observed_durations: Default::default(),
        };
        node.assess(&p, None, None, Some(input), as_of).await?
    };
    if ctx.json {
        return json(&assessment);
    }
    for line in assessment.summary_lines() {
        println!("{line}");
    }
    Ok(())
}

pub async fn rules(ctx: &Ctx, c: RulesCmd) -> Result<()> {
    let RulesCmd::Check { dir } = c;
    let dir = match dir {
        Some(d) => d,
        None => match ctx.config() {
            Ok(c) => c.node.rules_dir,
            Err(_) => PathBuf::from("rules"),
        },
    };
    let diags = liaison_law::check(&dir);
    if ctx.json {
        json(&diags.iter().map(|d| d.to_string()).collect::<Vec<_>>())?;
    } else {
        for d in &diags {
            println!("{d}");
        }
    }
    if !diags.is_empty() {
        return Err(IntegrityFailure(format!(
            "{} problem(s) in the rule packs under {}",
            diags.len(),
            dir.display()
        ))
        .into());
    }
    let packs = liaison_law::RulePacks::load(&dir).with_context(|| format!("loading {}", dir.display()))?;
    if !ctx.json {
        println!(
            "Rule packs OK: {} jurisdictions, {} offences, version {}",
            packs.jurisdictions().count(),
            packs.taxonomy().len(),
            packs.content_hash()
        );
    }
    Ok(())
}
