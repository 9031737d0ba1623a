//! What every API operation and every CLI command does with marked content
//! (docs/markings.md). A route or command added without a line here fails the tests that
//! walk the OpenAPI document (`every_operation_has_a_marking_rule`) and the CLI's command
//! tree (`every_command_has_a_marking_rule` in the `liaison` binary): whoever adds a path
//! must say how markings apply to it.

/// How a path reaches marked content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Reads or changes requests through `Node::visible_for` and the listings, which apply
    /// the request's marking (a `TLP:RED` request is "not found" for users it does not name).
    Requests,
    /// Comments: read through their request, then through their own marking (`Node::events`);
    /// written with a marking never below the request's.
    Comments,
    /// Evidence files: parties to their request only (`Node::visible_for`), then the file's own
    /// marking, never below the request's, with the uploader's agency as originator — the
    /// comment rule (`evidence::admits_file`); a file a reader may not see is "not found".
    Evidence,
    /// Clean-up notices, feedback and indicators: scoped to the issuing agency and the
    /// partner agency; items keep their TLP (docs/federation.md for what travels).
    Intel,
    /// Joint cases (docs/cases.md): a case reaches the agencies it invited, under its own
    /// marking; a linked item's content reaches a member that is not a party to it only after
    /// its originator shared it with the case; notes by their own marking; an agency that
    /// left sees nothing after it left (`liaison_core::case::Case::event_view`, the same rule
    /// for reading and for what is sent to each member's node).
    Cases,
    /// Counts and durations over requests or indicators, no content of any object.
    Statistics,
    /// Not marked content: the directory, users and tokens, rule packs, node settings and
    /// health — information the node's users need to work, never shared under TLP.
    Unmarked,
    /// Federation metadata: envelope headers, receipts, tree heads, peers. A proof bundle
    /// discloses a payload only when asked, and the payload carries its own marking.
    FederationMetadata,
    /// Whole-node operations run on the node's own machine (set-up, serving, backup and
    /// restore, demos, benchmarks): the data stays with the node that holds it.
    NodeOperator,
}

/// Every operation of the API, by its OpenAPI `operationId`.
pub const API: &[(&str, Reach)] = &[
    ("health", Reach::Unmarked),
    ("me", Reach::Unmarked),
    ("directory", Reach::Unmarked),
    ("addJurisdiction", Reach::Unmarked),
    ("addAgency", Reach::Unmarked),
    ("renameAgency", Reach::Unmarked),
    ("addContact", Reach::Unmarked),
    ("listRequests", Reach::Requests),
    ("searchTexts", Reach::Comments),
    ("listCases", Reach::Cases),
    ("createCase", Reach::Cases),
    ("getCase", Reach::Cases),
    ("caseStats", Reach::Cases),
    ("inviteToCase", Reach::Cases),
    ("answerCaseInvitation", Reach::Cases),
    ("leaveCase", Reach::Cases),
    ("linkToCase", Reach::Cases),
    ("shareWithCase", Reach::Cases),
    ("addCaseNote", Reach::Cases),
    ("setCaseState", Reach::Cases),
    ("setCaseMarking", Reach::Cases),
    ("exportCaseFile", Reach::Cases),
    ("lookupIdentifier", Reach::Requests),
    ("listSavedSearches", Reach::Unmarked),
    ("saveSearch", Reach::Unmarked),
    ("deleteSavedSearch", Reach::Unmarked),
    ("createRequest", Reach::Requests),
    ("listOverdue", Reach::Requests),
    ("getRequest", Reach::Requests),
    ("updateDraft", Reach::Requests),
    ("listEvents", Reach::Comments),
    ("allowedTransitions", Reach::Requests),
    ("transition", Reach::Requests),
    ("reassess", Reach::Requests),
    ("setMarking", Reach::Requests),
    ("addComment", Reach::Comments),
    ("getApproval", Reach::Requests),
    ("approvalStep", Reach::Requests),
    ("consentToUse", Reach::Comments),
    ("permittedUses", Reach::Requests),
    ("requestLetter", Reach::Requests),
    ("setRequestText", Reach::Requests),
    ("assess", Reach::Requests),
    ("cooperationReport", Reach::Statistics),
    ("listEvidence", Reach::Evidence),
    ("uploadEvidence", Reach::Evidence),
    ("beginEvidenceUpload", Reach::Evidence),
    ("evidenceUploadStatus", Reach::Evidence),
    ("putEvidencePiece", Reach::Evidence),
    ("abortEvidenceUpload", Reach::Evidence),
    ("finishEvidenceUpload", Reach::Evidence),
    ("getEvidence", Reach::Evidence),
    ("downloadEvidence", Reach::Evidence),
    ("evidenceCustody", Reach::Evidence),
    ("exportEvidencePackage", Reach::Evidence),
    ("intelIngest", Reach::Intel),
    ("intelIngestJob", Reach::Intel),
    ("intelIngestJobs", Reach::Intel),
    ("intelNotices", Reach::Intel),
    ("intelIssue", Reach::Intel),
    ("intelFeedback", Reach::Intel),
    ("intelStats", Reach::Statistics),
    ("intelInbox", Reach::Intel),
    ("intelInboxAnswer", Reach::Intel),
    ("intelRemediation", Reach::Statistics),
    // The exporting agency's own indicators and notices (the originator), each object with
    // its own marking; tlp_max narrows, nothing widens.
    ("intelExport", Reach::Intel),
    ("intelMispManifest", Reach::Intel),
    ("intelMispEvent", Reach::Intel),
    ("auditVerify", Reach::Statistics),
    // Working requests (docs/queues.md): listings and counts through the same visibility as
    // the request listings; owners, units, watchers and notifications are local and never sent.
    ("home", Reach::Requests),
    ("queueCounts", Reach::Statistics),
    ("workState", Reach::Requests),
    ("assign", Reach::Requests),
    ("watch", Reach::Requests),
    ("unwatch", Reach::Requests),
    ("convertPreservation", Reach::Requests),
    ("listUnits", Reach::Unmarked),
    ("createUnit", Reach::Unmarked),
    ("addUnitMember", Reach::Unmarked),
    ("removeUnitMember", Reach::Unmarked),
    ("getPreferences", Reach::Unmarked),
    ("setPreferences", Reach::Unmarked),
    // Each line names a request the reader may see (left out when the marking no longer
    // admits the reader) and carries no comment text.
    ("listNotifications", Reach::Requests),
    ("markNotificationsRead", Reach::Unmarked),
    ("listUsers", Reach::Unmarked),
    ("createUser", Reach::Unmarked),
    ("updateUser", Reach::Unmarked),
    ("resetPassword", Reach::Unmarked),
    ("listTokens", Reach::Unmarked),
    ("createToken", Reach::Unmarked),
    ("revokeToken", Reach::Unmarked),
    ("rotateKey", Reach::FederationMetadata),
    ("federationStatus", Reach::FederationMetadata),
    ("federationDescriptor", Reach::FederationMetadata),
    ("listPeers", Reach::FederationMetadata),
    ("pinPeer", Reach::FederationMetadata),
    ("unpinPeer", Reach::FederationMetadata),
    ("verifyLedger", Reach::FederationMetadata),
    ("proveMessage", Reach::FederationMetadata),
];

/// Every command of the `liaison` binary, by its words (`request show`).
pub const CLI: &[(&str, Reach)] = &[
    ("init", Reach::NodeOperator),
    ("serve", Reach::NodeOperator),
    ("request create", Reach::Requests),
    ("request list", Reach::Requests),
    ("search find", Reach::Comments),
    ("case list", Reach::Cases),
    ("case create", Reach::Cases),
    ("case show", Reach::Cases),
    ("case stats", Reach::Cases),
    ("case invite", Reach::Cases),
    ("case accept", Reach::Cases),
    ("case decline", Reach::Cases),
    ("case leave", Reach::Cases),
    ("case link", Reach::Cases),
    ("case share", Reach::Cases),
    ("case note", Reach::Cases),
    ("case close", Reach::Cases),
    ("case reopen", Reach::Cases),
    ("case marking", Reach::Cases),
    ("case export", Reach::Cases),
    ("case verify", Reach::Unmarked),
    ("search lookup", Reach::Requests),
    ("search saved", Reach::Unmarked),
    ("search save", Reach::Unmarked),
    ("search run", Reach::Comments),
    ("search forget", Reach::Unmarked),
    ("search rebuild", Reach::NodeOperator),
    ("request show", Reach::Comments),
    ("request reassess", Reach::Requests),
    ("request transition", Reach::Requests),
    ("request comment", Reach::Comments),
    ("request marking", Reach::Requests),
    ("request consent", Reach::Comments),
    ("request overdue", Reach::Requests),
    ("request assign", Reach::Requests),
    ("request watch", Reach::Requests),
    ("request convert", Reach::Requests),
    ("home", Reach::Requests),
    ("inbox", Reach::Requests),
    ("unit list", Reach::Unmarked),
    ("unit create", Reach::Unmarked),
    ("unit add", Reach::Unmarked),
    ("unit remove", Reach::Unmarked),
    ("prefs show", Reach::Unmarked),
    ("prefs set", Reach::Unmarked),
    // Counts and the errors of deliveries (addresses, receivers), never their content.
    ("notify status", Reach::Unmarked),
    ("evidence add", Reach::Evidence),
    ("evidence list", Reach::Evidence),
    ("evidence show", Reach::Evidence),
    ("evidence get", Reach::Evidence),
    ("evidence custody", Reach::Evidence),
    ("evidence hold", Reach::Evidence),
    ("evidence release", Reach::Evidence),
    ("evidence sweep", Reach::NodeOperator),
    ("evidence rotate-key", Reach::NodeOperator),
    // The package holds only what the exporting user may read (files as `evidence list`,
    // comments as `Node::events`, ledger messages whose payload that user may read).
    ("evidence export", Reach::Evidence),
    // Reads only the package file it is given: no node, no database.
    ("evidence verify", Reach::Unmarked),
    ("request approval", Reach::Requests),
    ("request letter", Reach::Requests),
    ("request translate", Reach::Requests),
    ("directory", Reach::Unmarked),
    ("directory add-jurisdiction", Reach::Unmarked),
    ("directory add-agency", Reach::Unmarked),
    ("directory rename-agency", Reach::Unmarked),
    ("directory add-contact", Reach::Unmarked),
    ("user add", Reach::Unmarked),
    ("user list", Reach::Unmarked),
    ("user disable", Reach::Unmarked),
    ("user enable", Reach::Unmarked),
    ("user role", Reach::Unmarked),
    ("user password", Reach::Unmarked),
    ("token create", Reach::Unmarked),
    ("token list", Reach::Unmarked),
    ("token revoke", Reach::Unmarked),
    ("report cooperation", Reach::Statistics),
    ("audit verify", Reach::Statistics),
    ("assess", Reach::Requests),
    ("rules check", Reach::Unmarked),
    ("demo", Reach::NodeOperator),
    ("peer add", Reach::FederationMetadata),
    ("peer list", Reach::FederationMetadata),
    ("peer remove", Reach::FederationMetadata),
    ("peer revoke-key", Reach::FederationMetadata),
    ("ledger verify", Reach::FederationMetadata),
    ("ledger prove", Reach::FederationMetadata),
    ("ledger verify-proof", Reach::FederationMetadata),
    ("ledger sth", Reach::FederationMetadata),
    ("ledger check-peers", Reach::FederationMetadata),
    ("ledger evidence", Reach::FederationMetadata),
    ("federation descriptor", Reach::FederationMetadata),
    ("federation status", Reach::FederationMetadata),
    ("federation messages", Reach::FederationMetadata),
    ("federation revoke-key", Reach::FederationMetadata),
    ("federation announce-revocations", Reach::FederationMetadata),
    ("federation rotate-key", Reach::FederationMetadata),
    ("federation bench", Reach::NodeOperator),
    ("demo-federation", Reach::NodeOperator),
    ("intel ingest", Reach::Intel),
    ("intel notices", Reach::Intel),
    ("intel feedback", Reach::Intel),
    ("intel stats", Reach::Statistics),
    ("intel inbox", Reach::Intel),
    ("intel answer", Reach::Intel),
    ("intel remediation", Reach::Statistics),
    ("intel export", Reach::Intel),
    ("intel pull", Reach::Intel),
    ("backup", Reach::NodeOperator),
    ("restore", Reach::NodeOperator),
];

/// The rule of an API operation, if it has one.
pub fn api_rule(operation_id: &str) -> Option<Reach> {
    API.iter().find(|(o, _)| *o == operation_id).map(|(_, r)| *r)
}

/// The rule of a CLI command (its words joined by spaces), if it has one.
pub fn cli_rule(words: &str) -> Option<Reach> {
    CLI.iter().find(|(c, _)| *c == words).map(|(_, r)| *r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation of the OpenAPI document has a rule here, and every rule an operation.
    #[test]
    fn every_operation_has_a_marking_rule() {
        let doc = crate::openapi::document_with(&[], &[], &[]);
        let mut ids: Vec<String> = Vec::new();
        if let Some(paths) = doc["paths"].as_object() {
            for item in paths.values() {
                for op in item.as_object().into_iter().flat_map(|o| o.values()) {
                    if let Some(id) = op["operationId"].as_str() {
                        ids.push(id.to_string());
                    }
                }
            }
        }
        assert!(ids.len() > 30, "the document lists its operations: {ids:?}");
        let missing: Vec<&String> = ids.iter().filter(|id| api_rule(id).is_none()).collect();
        assert!(
            missing.is_empty(),
            "operations without a marking rule (add them to marking_rules::API): {missing:?}"
        );
        let stale: Vec<&str> = API
            .iter()
            .map(|(o, _)| *o)
            .filter(|o| !ids.iter().any(|id| id == o))
            .collect();
        assert!(stale.is_empty(), "rules for operations that no longer exist: {stale:?}");
    }
}
