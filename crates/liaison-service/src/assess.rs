//! What-if legal assessments.

use crate::error::{Result, ServiceError};
use crate::node::{Node, require};
use jiff::Timestamp;
use liaison_core::RequestId;
use liaison_core::record::Principal;
use liaison_core::request::RequestDraft;

impl Node {
    /// Assesses a draft, a stored request, or an explicit input, without storing anything.
    pub async fn assess(
        &self,
        p: &Principal,
        draft: Option<RequestDraft>,
        request: Option<RequestId>,
        input: Option<liaison_law::AssessmentInput>,
        now: Timestamp,
    ) -> Result<liaison_law::Assessment> {
        // A what-if assessment reveals no case data: any authenticated user may run one.
        // Assessing a stored request needs the right to read it (checked by `visible`).
        let input = match (draft, request, input) {
            (Some(d), None, None) => {
                let a = self.store.agency(d.requesting_agency).await.map_err(|_| {
                    ServiceError::invalid(
                        "draft.requesting_agency",
                        format!("unknown agency {}", d.requesting_agency),
                    )
                })?;
                let b = self.store.agency(d.requested_agency).await.map_err(|_| {
                    ServiceError::invalid(
                        "draft.requested_agency",
                        format!("unknown agency {}", d.requested_agency),
                    )
                })?;
                liaison_law::AssessmentInput::from_draft(&d, a.jurisdiction, b.jurisdiction, now)
            }
            (None, Some(id), None) => {
                let (r, _) = self.visible(p, id, now).await?;
                let a = self.store.agency(r.request.draft.requesting_agency).await?;
                let b = self.store.agency(r.request.draft.requested_agency).await?;
                // A submitted request is assessed under the law in force when it was submitted;
                // `now` only for a draft (or a what-if with explicit input).
                let as_of = r.request.submitted_at.unwrap_or(now);
                liaison_law::AssessmentInput::from_draft(&r.request.draft, a.jurisdiction, b.jurisdiction, as_of)
            }
            (None, None, Some(i)) => i,
            _ => {
                return Err(ServiceError::invalid(
                    "body",
                    "give exactly one of draft, request or input",
                ));
            }
        };
        let mut input = input;
        if input.observed_durations.is_empty() {
            input.observed_durations = self.experience.for_state(&self.store, input.requested, now).await;
        }
        self.legal.assess_input(&input)
    }

    /// The rule-pack version (content hash) the node assesses with.
    pub fn legal_version(&self) -> &str {
        self.legal.version()
    }

    /// Whether a stored request's assessment was made under rule packs other than the node's
    /// current ones, or in an older assessment format: then a re-assessment is offered.
    pub fn assessment_outdated(&self, r: &liaison_core::record::StoredRequest) -> bool {
        let Some(a) = &r.assessment else {
            return false;
        };
        let format_ok = a
            .value::<serde_json::Value>()
            .ok()
            .and_then(|v| v.get("format").and_then(serde_json::Value::as_u64))
            == Some(u64::from(liaison_law::ASSESSMENT_FORMAT));
        !format_ok || r.rule_pack_version.as_deref() != Some(self.legal.version())
    }

    /// Re-assesses a submitted request under the current rule packs, applying the law in force
    /// on its submission date, and stores the new assessment (with an `assessment` event and an
    /// audit entry). Refused for drafts (they are assessed when submitted).
    pub async fn reassess(
        &self,
        p: &Principal,
        id: RequestId,
        now: Timestamp,
    ) -> Result<liaison_core::record::StoredRequest> {
        require(p.role.may_comment(), "re-assessing requests", p)?;
        let (r, _) = self.visible(p, id, now).await?;
        let Some(submitted) = r.request.submitted_at else {
            return Err(ServiceError::invalid(
                "request",
                format!("request {id} is a draft: it is assessed when it is submitted"),
            ));
        };
        let a = self.store.agency(r.request.draft.requesting_agency).await?;
        let b = self.store.agency(r.request.draft.requested_agency).await?;
        let observed = self.experience.for_state(&self.store, b.jurisdiction, now).await;
        let Some(result) = self
            .legal
            .assess(&r.request.draft, a.jurisdiction, b.jurisdiction, submitted, observed)
        else {
            return Err(ServiceError::invalid(
                "request",
                "both agencies are in one state: there is nothing cross-border to assess",
            ));
        };
        let (raw, version) = result.map_err(|e| ServiceError::invalid("offences", e))?;
        self.store
            .replace_assessment(id, raw, version, &p.username, now)
            .await?;
        let (r, _) = self.visible(p, id, now).await?;
        Ok(r)
    }
}
