//! # liaison-law
//!
//! Rule packs (`rules/*.toml`: offence taxonomy, treaties and channels, one pack per jurisdiction)
//! and the assessment engine that tells, before a request is sent, whether dual criminality is
//! met, which channels exist, what each data category needs, whether the data will still be there,
//! and what may make the requested state refuse — each answer with its citation and confidence.
//!
//! Architecture invariants: no I/O except [`RulePacks::load`] / [`check`] reading the rules
//! directory; [`assess`] is pure and deterministic (the caller passes `as_of`); an unknown answer
//! is reported as [`Verdict::Unknown`] with a reason, never guessed.
//!
//! ```no_run
//! use liaison_core::{CountryCode, RequestKind, Urgency};
//! use liaison_law::{AssessmentInput, RulePacks, assess};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let packs = RulePacks::load(std::path::Path::new("rules"))?; // once, at start-up
//! let input = AssessmentInput {
//!     requesting: CountryCode::parse("CN")?,
//!     requested: CountryCode::parse("US")?,
//!     kind: RequestKind::StoredContent,
//!     urgency: Urgency::Routine,
//!     offences: vec!["OBSCENE-DISSEMINATION".into()],
//!     conduct: vec![],
//!     amount: None,
//!     categories: vec![],
//!     targets: vec![],
//!     as_of: jiff::Timestamp::now(),
//!     observed_durations: Default::default(),
//! };
//! let assessment = assess(&packs, &input)?; // Err(InputError) -> HTTP 400
//! assert_eq!(&*assessment.rule_pack_version, packs.content_hash());
//! for line in assessment.summary_lines() {
//!     println!("{line}");
//! }
//! # Ok(())
//! # }
//! ```

mod engine;
mod headline;
mod i18n;
mod model;
mod pack;

pub use engine::{AssessmentInput, InputError, MIN_OBSERVED_SAMPLES, ObservedDuration, assess};
pub use headline::{Headline, Outlook, TOP_REASONS};
pub use i18n::{Lang, Message, catalogue_problems, has_term, term};
pub use model::*;
pub use pack::{
    CoverageRow, Diagnostic, LoadError, OFFENCES_FILE, Offence, RulePacks, Severity, TREATIES_FILE, Taxonomy, check,
};
