//! Administration: users, roles and API tokens. The one place that answers "who may…":
//! - list, create, disable and enable users: admins;
//! - issue a token: admins for anyone, every user for themselves;
//! - list and revoke tokens: admins any token, every user their own (a user who lost a token
//!   can revoke it without waiting for an admin).
//!
//! The CLI (`liaison user`, `liaison token`) and the API (`/api/v1/users`, `/api/v1/tokens`)
//! call these same functions.

use crate::error::{Result, ServiceError};
use crate::node::{Node, require};
use jiff::Timestamp;
use liaison_core::Role;
use liaison_core::record::{Principal, TokenInfo, User};

impl Node {
    pub async fn users(&self, p: &Principal) -> Result<Vec<User>> {
        require(p.role.may_administer(), "listing users", p)?;
        Ok(self.store.users().await?)
    }

    pub async fn create_user(
        &self,
        p: &Principal,
        username: &str,
        display_name: &str,
        agency: &str,
        role: Role,
        now: Timestamp,
    ) -> Result<User> {
        require(p.role.may_administer(), "creating users", p)?;
        let name = username.trim();
        if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
            return Err(ServiceError::invalid(
                "username",
                format!("'{username}' must be 1-64 letters, digits, '.', '_' or '-'"),
            ));
        }
        let a = self
            .store
            .agency_by_code(agency)
            .await
            .map_err(|_| ServiceError::invalid("agency", format!("unknown agency '{agency}'")))?;
        // Users of an agency a peer node serves live on that node: a local user "of" it could
        // act for it here (send its requests, answer its notices).
        if let Some(peer) = self.store.agency_node(a.id).await? {
            return Err(ServiceError::invalid(
                "agency",
                format!("'{agency}' is served by the peer node {peer}; its users are created there"),
            ));
        }
        Ok(self
            .store
            .create_user(name, display_name, a.id, role, &p.username, now)
            .await?)
    }

    /// Issues a token for a user (admins for anyone; others only for themselves). A token issued
    /// for oneself through the API never outlives the token used to issue it, and is revoked
    /// with it.
    pub async fn create_token(
        &self,
        p: &Principal,
        username: &str,
        label: &str,
        days: u32,
        now: Timestamp,
    ) -> Result<(String, TokenInfo)> {
        if username != p.username {
            require(p.role.may_administer(), "issuing tokens for other users", p)?;
        }
        if !(1..=366).contains(&days) {
            return Err(ServiceError::invalid(
                "days",
                format!("{days} is not between 1 and 366"),
            ));
        }
        let u = self
            .store
            .user_by_name(username)
            .await
            .map_err(|_| ServiceError::invalid("username", format!("unknown user '{username}'")))?;
        let mut expires = now
            .checked_add(jiff::SignedDuration::from_hours(24 * i64::from(days)))
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        // A token a user issues for themselves with a token is that token's child: it expires
        // no later, and revoking the parent revokes it.
        let parent = match &p.token {
            Some(parent) if u.id == p.user => {
                let own = self.store.tokens(Some(p.user)).await?;
                if let Some(t) = own.iter().find(|t| &t.id == parent) {
                    expires = expires.min(t.expires_at);
                }
                Some(parent.as_str())
            }
            _ => None,
        };
        Ok(self
            .store
            .create_child_token(u.id, label, expires, parent, &p.username, now)
            .await?)
    }

    /// Disables or enables a user: a disabled user's tokens stop working at once on this node
    /// (within `AUTH_CACHE_TTL` on other processes sharing the database).
    pub async fn set_user_disabled(&self, p: &Principal, username: &str, disabled: bool, now: Timestamp) -> Result<()> {
        require(
            p.role.may_administer(),
            if disabled { "disabling users" } else { "enabling users" },
            p,
        )?;
        if disabled && username == p.username {
            return Err(ServiceError::invalid(
                "username",
                "you cannot disable your own account; ask another admin",
            ));
        }
        Ok(self
            .store
            .set_user_disabled(username, disabled, &p.username, now)
            .await?)
    }

    /// Gives a user another role (admins). Nobody changes their own role, so a node always
    /// keeps the administrator who made the change.
    pub async fn set_user_role(&self, p: &Principal, username: &str, role: Role, now: Timestamp) -> Result<User> {
        require(p.role.may_administer(), "changing users' roles", p)?;
        if username == p.username {
            return Err(ServiceError::invalid(
                "username",
                "you cannot change your own role; ask another admin",
            ));
        }
        let u = self
            .store
            .user_by_name(username)
            .await
            .map_err(|_| ServiceError::NotFound(format!("user '{username}'")))?;
        if u.role != role {
            self.store.set_user_role(username, role, &p.username, now).await?;
        }
        Ok(self.store.user_by_name(username).await?)
    }

    /// Tokens (never their secrets): every token for admins, the caller's own for others.
    pub async fn tokens(&self, p: &Principal) -> Result<Vec<TokenInfo>> {
        let only = if p.role.may_administer() { None } else { Some(p.user) };
        Ok(self.store.tokens(only).await?)
    }

    /// Revokes a token (admins any token, others their own). Unknown, already revoked, and other
    /// users' tokens for non-admins all answer "not found", so token ids do not leak.
    pub async fn revoke_token(&self, p: &Principal, id: &str, now: Timestamp) -> Result<()> {
        if !p.role.may_administer() {
            let own = self.store.tokens(Some(p.user)).await?;
            if !own.iter().any(|t| t.id == id) {
                return Err(ServiceError::NotFound(format!("active token {id}")));
            }
        }
        Ok(self.store.revoke_token(id, &p.username, now).await?)
    }

    /// The user a local command acts as (`liaison --as NAME`). Whoever can read the data
    /// directory can act as any enabled user, so this is for the node's own operator only; the
    /// API always authenticates with a token.
    pub async fn local_principal(&self, username: &str) -> Result<Principal> {
        self.store.principal(username).await.map_err(|e| match e {
            liaison_store::StoreError::NotFound(_) => {
                ServiceError::NotFound(format!("no enabled user '{username}' on this node"))
            }
            other => other.into(),
        })
    }
}
