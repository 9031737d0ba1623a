//! Users, the caller established from a token, and token metadata.

use crate::{AgencyId, Role, UserId};
use serde::Serialize;

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub agency: AgencyId,
    pub role: Role,
    pub created_at: jiff::Timestamp,
    pub disabled: bool,
}

/// Who is calling, as established from a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub user: UserId,
    pub username: String,
    pub agency: AgencyId,
    pub role: Role,
    /// The id of the token the caller signed in with (`None` for the local CLI, which acts
    /// as a user without one). Tokens a user issues for themselves are its children.
    #[serde(skip)]
    pub token: Option<String>,
}

/// A token's metadata (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    pub id: String,
    pub user: UserId,
    pub label: String,
    pub created_at: jiff::Timestamp,
    pub expires_at: jiff::Timestamp,
    pub revoked_at: Option<jiff::Timestamp>,
}
