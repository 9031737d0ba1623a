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
    /// The provider holding the data (name), for direct-provider paths and e-Evidence reach.
    #[arg(long)]
    pub provider: Option<String>,
    /// Where the provider is established (ISO code); required with --provider.
    #[arg(long)]
    pub provider_country: Option<String>,
    /// The provider offers services in the European Union.
    #[arg(long)]
    pub provider_in_eu: bool,
}

#[derive(Subcommand, Debug)]
pub enum RulesCmd {
    /// Validate every rule pack; problems are printed as file:line with the rule id.
    Check {
        /// Directory to check (default: rules_dir of the data directory, or ./rules).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Fail on warnings too (a "confirmed" rule without its primary excerpt).
        #[arg(long)]
        strict: bool,
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
        let rid: RequestId = node.resolve(&p, id, now).await?;
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
        let provider = match (&a.provider, &a.provider_country) {
            (Some(name), Some(c)) => Some(liaison_core::Provider {
                name: name.trim().to_string(),
                established_in: CountryCode::parse(c).map_err(|e| bad(format!("--provider-country: {e}")))?,
                offers_services_in_eu: a.provider_in_eu,
            }),
            (Some(_), None) => {
                return Err(bad(
                    "--provider needs --provider-country (ISO code of its establishment)",
                ));
            }
            (None, Some(_)) => return Err(bad("--provider-country needs --provider (the provider's name)")),
            (None, None) if a.provider_in_eu => {
                return Err(bad("--provider-in-eu needs --provider and --provider-country"));
            }
            (None, None) => None,
        };
        if let Some(p) = &provider
            && (p.name.is_empty() || p.name.chars().count() > 200 || p.name.chars().any(char::is_control))
        {
            return Err(bad("--provider: give the provider's name, 1 to 200 characters"));
        }
        let mut targets = Vec::new();
        if a.event_at.is_some() || provider.is_some() {
            let at = match &a.event_at {
                Some(e) => super::admin::parse_instant("--event-at", e)?,
                None => as_of,
            };
            targets.push(Target {
                value: TargetValue::Account {
                    service: "unspecified".into(),
                    identifier: "target".into(),
                },
                from: at,
                until: at,
                provider,
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
    for line in assessment.render(ctx.lang) {
        println!("{line}");
    }
    Ok(())
}

pub async fn rules(ctx: &Ctx, c: RulesCmd) -> Result<()> {
    let RulesCmd::Check { dir, strict } = c;
    let dir = match dir {
        Some(d) => d,
        None => match ctx.config() {
            Ok(c) => c.node.rules_dir,
            Err(_) => PathBuf::from("rules"),
        },
    };
    let diags = liaison_law::check(&dir);
    let catalogue = liaison_law::catalogue_problems();
    if ctx.json {
        json(&serde_json::json!({
            "errors": diags.iter().filter(|d| d.is_error()).map(|d| d.to_string()).collect::<Vec<_>>(),
            "warnings": diags.iter().filter(|d| !d.is_error()).map(|d| d.to_string()).collect::<Vec<_>>(),
            "catalogue": catalogue,
        }))?;
    } else {
        for d in &diags {
            println!("{d}");
        }
        for c in &catalogue {
            println!("message catalogue: {c}");
        }
    }
    let errors = diags.iter().filter(|d| d.is_error()).count() + catalogue.len();
    let warnings = diags.len() + catalogue.len() - errors;
    if errors > 0 || (strict && warnings > 0) {
        return Err(IntegrityFailure(format!(
            "{errors} error(s) and {warnings} warning(s) in the rule packs under {}",
            dir.display()
        ))
        .into());
    }
    let packs = liaison_law::RulePacks::load(&dir).with_context(|| format!("loading {}", dir.display()))?;
    if !ctx.json {
        println!(
            "Rule packs OK: {} jurisdictions, {} offences, version {}{}",
            packs.jurisdictions().count(),
            packs.taxonomy().len(),
            packs.content_hash(),
            if warnings > 0 {
                format!(" ({warnings} warning(s): confirmed rules without a primary excerpt)")
            } else {
                String::new()
            }
        );
    }
    Ok(())
}
