//! The node's view of the law: the loaded rule packs and the calls the use cases need.

use crate::error::ServiceError;
use liaison_core::CountryCode;
use liaison_core::request::{FieldError, RequestDraft};
use liaison_law::{Assessment, AssessmentInput, RulePacks};
use std::path::Path;
use std::sync::Arc;

/// Validated rule packs, shared by every request handler.
#[derive(Clone)]
pub struct Legal {
    packs: Arc<RulePacks>,
}

impl Legal {
    /// Loads and validates every pack under `dir`; the node refuses to start on any problem.
    pub fn load(dir: &Path) -> Result<Self, liaison_law::LoadError> {
        Ok(Legal {
            packs: Arc::new(RulePacks::load(dir)?),
        })
    }

    pub fn packs(&self) -> &RulePacks {
        &self.packs
    }

    /// The rule-pack version (content hash).
    pub fn version(&self) -> &str {
        self.packs.content_hash()
    }

    /// One error per offence code the taxonomy does not know.
    pub fn check_offences(&self, codes: &[String]) -> Vec<FieldError> {
        codes
            .iter()
            .enumerate()
            .filter(|(_, c)| !self.packs.taxonomy().contains(c))
            .map(|(i, c)| FieldError {
                field: format!("offences[{i}]"),
                message: format!("unknown offence code '{c}' (see rules/offences.toml)"),
            })
            .collect()
    }

    /// Assesses an input; unknown jurisdictions or offences are a 400.
    pub fn assess_input(&self, input: &AssessmentInput) -> Result<Assessment, ServiceError> {
        liaison_law::assess(&self.packs, input).map_err(|e| {
            let field = match e {
                liaison_law::InputError::UnknownOffences(_) => "offences",
                _ => "requested",
            };
            ServiceError::invalid(field, e.to_string())
        })
    }

    /// The assessment stored with a request on submission, as JSON plus the pack version.
    /// `None` never happens today; the option leaves room for nodes without packs.
    pub fn assess(
        &self,
        draft: &RequestDraft,
        requesting: CountryCode,
        requested: CountryCode,
        now: jiff::Timestamp,
        observed: std::collections::BTreeMap<String, liaison_law::ObservedDuration>,
    ) -> Option<Result<(liaison_store::RawJson, String), String>> {
        let mut input = AssessmentInput::from_draft(draft, requesting, requested, now);
        input.observed_durations = observed;
        Some(match liaison_law::assess(&self.packs, &input) {
            Ok(a) => liaison_store::RawJson::to_raw(&a)
                .map(|v| (v, self.version().to_string()))
                .map_err(|e| e.to_string()),
            Err(liaison_law::InputError::SameJurisdiction(_)) => {
                // A domestic request between two agencies of one state: nothing cross-border to assess.
                return None;
            }
            Err(e) => Err(e.to_string()),
        })
    }
}
