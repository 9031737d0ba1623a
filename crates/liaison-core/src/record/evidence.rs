//! Evidence files attached to requests, answers and comments (docs/evidence.md).

use crate::marking::Marking;
use crate::{AgencyId, RequestId, Side};
use serde::{Deserialize, Serialize};

/// What a file is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// A supporting document sent with the request.
    Supporting,
    /// Part of the answer.
    Answer,
    /// Attached to a comment (`attached_to` names the comment's event).
    Comment,
}

impl EvidenceKind {
    pub const ALL: [EvidenceKind; 3] = [EvidenceKind::Supporting, EvidenceKind::Answer, EvidenceKind::Comment];

    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceKind::Supporting => "supporting",
            EvidenceKind::Answer => "answer",
            EvidenceKind::Comment => "comment",
        }
    }

    pub fn parse(s: &str) -> Option<EvidenceKind> {
        EvidenceKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for EvidenceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One evidence file's metadata (never its content or keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EvidenceFile {
    pub id: String,
    pub request_id: RequestId,
    pub kind: EvidenceKind,
    /// The comment event a `comment` file is attached to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attached_to: Option<String>,
    /// SHA-256 of the content, hex: its address in the evidence directory.
    pub sha256: String,
    pub size: u64,
    /// Media type found from the content's magic bytes (`None`: not recognised).
    pub media_type_sniffed: Option<String>,
    /// Media type the uploader claimed.
    pub media_type_claimed: Option<String>,
    /// The original file name, sanitised.
    pub file_name: String,
    pub uploader: String,
    pub uploader_agency: AgencyId,
    /// The side of the request the uploader's agency is on.
    pub side: Side,
    pub uploaded_at: jiff::Timestamp,
    /// At least the request's marking.
    pub marking: Marking,
    /// Held files are never deleted under retention.
    pub legal_hold: bool,
    /// When the content and its key were deleted under retention (the row stays).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<jiff::Timestamp>,
}

/// A resumable upload in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EvidenceUpload {
    pub id: String,
    pub request_id: RequestId,
    pub kind: EvidenceKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attached_to: Option<String>,
    pub file_name: String,
    pub media_type_claimed: Option<String>,
    pub uploader: String,
    pub uploader_agency: AgencyId,
    pub side: Side,
    pub marking: Marking,
    pub created_at: jiff::Timestamp,
    /// Bytes received and stored so far: the offset the next piece must start at.
    pub received: u64,
    /// Whether a piece is arriving now (through this node process): wait for it to end (a
    /// broken connection ends it) before resuming.
    pub receiving: bool,
}

/// A legal hold on a request (all its files) or on one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LegalHold {
    /// A request id or an evidence file id.
    pub subject: String,
    pub by: String,
    pub at: jiff::Timestamp,
    pub reason: String,
}
