//! What-if legal assessments.

use crate::error::{Result, ServiceError};
use crate::node::Node;
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
                liaison_law::AssessmentInput::from_draft(&r.request.draft, a.jurisdiction, b.jurisdiction, now)
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
}
