//! Users, roles and API tokens.
//!
//! A token is 32 random bytes shown once as `lia_<64 hex>`; only its SHA-256 is stored, so a
//! copy of the database does not leak usable tokens. (A slow hash such as Argon2 buys nothing
//! for 256-bit random secrets and would cost milliseconds on every API call.)

use crate::{Result, Store, StoreError, audit, ms, opt_ts, parse, ts, unique};
use liaison_core::record::{Principal, TokenInfo, User};
use liaison_core::{AgencyId, Role, UserId};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// How long a token found valid is taken as valid without asking the database again. A token
/// revoked or a user disabled through this store is refused at once; through another process
/// (the CLI on the same data directory, another instance on the same PostgreSQL database),
/// within this time.
pub const AUTH_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(2);

/// How stale a session's recorded last use may get before a request writes it again.
const IDLE_TOUCH_MS: i64 = 60_000;

/// What a token is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    /// A program's bearer token.
    Api,
    /// A web session, which also ends after `idle_seconds` without a request.
    Session { idle_seconds: i64 },
    /// A step of a sign-in that is not finished (a second factor or a new password is still
    /// due): never accepted as a credential. `step` is the service's state of the sign-in.
    SignInStep { step: String },
}

/// A token to write.
pub struct NewToken<'a> {
    pub user: UserId,
    pub label: &'a str,
    pub expires_at: jiff::Timestamp,
    pub parent: Option<&'a str>,
    pub kind: TokenKind,
}

/// At most this many tokens are remembered (then the cache starts afresh).
const AUTH_CACHE_MAX: usize = 10_000;

/// Tokens recently found valid, by hash, so that an API call costs no database read.
#[derive(Default)]
pub(crate) struct AuthCache {
    inner: std::sync::Mutex<AuthEntries>,
}

#[derive(Default)]
struct AuthEntries {
    /// Bumped by every change to users or tokens: a lookup that started before it is not kept.
    generation: u64,
    tokens: std::collections::HashMap<String, (Principal, i64, std::time::Instant)>,
}

impl AuthCache {
    fn with<T>(&self, f: impl FnOnce(&mut AuthEntries) -> T) -> T {
        crate::with_locked(&self.inner, f)
    }

    /// Forgets every token (after a change to users or tokens).
    pub(crate) fn clear(&self) {
        self.with(|e| {
            e.generation += 1;
            e.tokens.clear();
        });
    }
}

pub(crate) fn hash_token(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

type UserRow = (String, String, String, String, String, i64, i64);

fn user(r: UserRow) -> Result<User> {
    Ok(User {
        id: parse(&r.0, "user id")?,
        username: r.1,
        display_name: r.2,
        agency: parse(&r.3, "agency id")?,
        role: parse(&r.4, "role")?,
        created_at: ts(r.5)?,
        disabled: r.6 != 0,
    })
}

const USER_COLS: &str = "SELECT id, username, display_name, agency_id, role, created_at, disabled FROM users";

impl Store {
    pub async fn create_user(
        &self,
        username: &str,
        display_name: &str,
        agency: AgencyId,
        role: Role,
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<User> {
        let id = UserId::new();
        let mut w = self.write().await?;
        sqlx::query("INSERT INTO users (id, username, display_name, agency_id, role, created_at, disabled) VALUES ($1, $2, $3, $4, $5, $6, 0)")
            .bind(id.to_string())
            .bind(username)
            .bind(display_name)
            .bind(agency.to_string())
            .bind(role.as_str())
            .bind(ms(now))
            .execute(w.conn().await?)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound(format!("agency {agency}")),
                _ => unique(e, format!("user '{username}'")),
            })?;
        audit::append(
            &mut w,
            now,
            actor,
            "user.create",
            &id.to_string(),
            &serde_json::json!({"username": username, "agency": agency, "role": role}),
        )
        .await?;
        w.commit().await?;
        self.user_by_name(username).await
    }

    pub async fn users(&self) -> Result<Vec<User>> {
        let rows: Vec<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!("{USER_COLS} ORDER BY username")))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(user).collect()
    }

    pub async fn user_by_name(&self, username: &str) -> Result<User> {
        let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!("{USER_COLS} WHERE username = $1")))
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        user(row.ok_or_else(|| StoreError::NotFound(format!("user '{username}'")))?)
    }

    pub async fn user_by_id(&self, id: UserId) -> Result<User> {
        let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!("{USER_COLS} WHERE id = $1")))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        user(row.ok_or_else(|| StoreError::NotFound(format!("user {id}")))?)
    }

    pub async fn set_user_disabled(
        &self,
        username: &str,
        disabled: bool,
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<()> {
        let mut w = self.write().await?;
        let r = sqlx::query("UPDATE users SET disabled = $1 WHERE username = $2")
            .bind(i64::from(disabled))
            .bind(username)
            .execute(w.conn().await?)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user '{username}'")));
        }
        audit::append(
            &mut w,
            now,
            actor,
            if disabled { "user.disable" } else { "user.enable" },
            username,
            &serde_json::json!({}),
        )
        .await?;
        w.commit().await?;
        self.auth_cache.clear();
        Ok(())
    }

    /// Gives a user another role (audited with the old and the new role). The user's sessions
    /// and tokens act with the new role at once on this process (within `AUTH_CACHE_TTL` on
    /// others sharing the database).
    pub async fn set_user_role(&self, username: &str, role: Role, actor: &str, now: jiff::Timestamp) -> Result<()> {
        let mut w = self.write().await?;
        let old: Option<String> = sqlx::query_scalar("SELECT role FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(w.conn().await?)
            .await?;
        let Some(old) = old else {
            return Err(StoreError::NotFound(format!("user '{username}'")));
        };
        sqlx::query("UPDATE users SET role = $1 WHERE username = $2")
            .bind(role.as_str())
            .bind(username)
            .execute(w.conn().await?)
            .await?;
        audit::append(
            &mut w,
            now,
            actor,
            "user.role",
            username,
            &serde_json::json!({"from": old, "to": role}),
        )
        .await?;
        w.commit().await?;
        self.auth_cache.clear();
        Ok(())
    }

    /// Issues a token; returns the secret (shown once) and its metadata.
    pub async fn create_token(
        &self,
        user: UserId,
        label: &str,
        expires_at: jiff::Timestamp,
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<(String, TokenInfo)> {
        self.create_child_token(user, label, expires_at, None, actor, now).await
    }

    /// Issues a token; with `parent`, one that is revoked with that token (see migration 9).
    pub async fn create_child_token(
        &self,
        user: UserId,
        label: &str,
        expires_at: jiff::Timestamp,
        parent: Option<&str>,
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<(String, TokenInfo)> {
        self.insert_token(
            NewToken {
                user,
                label,
                expires_at,
                parent,
                kind: TokenKind::Api,
            },
            actor,
            now,
        )
        .await
    }

    /// Writes a token of any kind (API, web session, sign-in step) and its audit entry.
    pub(crate) async fn insert_token(
        &self,
        t: NewToken<'_>,
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<(String, TokenInfo)> {
        let NewToken {
            user,
            label,
            expires_at,
            parent,
            kind,
        } = t;
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let secret = format!("lia_{}", hex::encode(bytes));
        let id = uuid::Uuid::now_v7().to_string();
        let mut w = self.write().await?;
        let (purpose, idle, step) = match &kind {
            TokenKind::Api => ("api", None, None),
            TokenKind::Session { idle_seconds } => ("session", Some(*idle_seconds), None),
            TokenKind::SignInStep { step } => ("sign-in", None, Some(step.clone())),
        };
        sqlx::query("INSERT INTO tokens (id, user_id, token_hash, label, created_at, expires_at, parent_id, purpose, idle_seconds, last_used_at, step) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $5, $10)")
            .bind(&id)
            .bind(user.to_string())
            .bind(hash_token(&secret))
            .bind(label)
            .bind(ms(now))
            .bind(ms(expires_at))
            .bind(parent.map(str::to_string))
            .bind(purpose)
            .bind(idle)
            .bind(step)
            .execute(w.conn().await?)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound(format!("user {user}")),
                _ => StoreError::Database(e),
            })?;
        audit::append(
            &mut w,
            now,
            actor,
            "token.create",
            &id,
            &serde_json::json!({"user": user, "label": label, "expires_at": expires_at, "purpose": purpose}),
        )
        .await?;
        w.commit().await?;
        Ok((
            secret,
            TokenInfo {
                id,
                user,
                label: label.to_string(),
                created_at: now,
                expires_at,
                revoked_at: None,
            },
        ))
    }

    pub async fn tokens(&self, user: Option<UserId>) -> Result<Vec<TokenInfo>> {
        type Row = (String, String, String, i64, i64, Option<i64>);
        let q = "SELECT id, user_id, label, created_at, expires_at, revoked_at FROM tokens";
        let rows: Vec<Row> = match user {
            Some(u) => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!("{q} WHERE user_id = $1 ORDER BY id")))
                    .bind(u.to_string())
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!("{q} ORDER BY id")))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.into_iter()
            .map(|r| {
                Ok(TokenInfo {
                    id: r.0,
                    user: parse(&r.1, "user id")?,
                    label: r.2,
                    created_at: ts(r.3)?,
                    expires_at: ts(r.4)?,
                    revoked_at: opt_ts(r.5)?,
                })
            })
            .collect()
    }

    pub async fn revoke_token(&self, id: &str, actor: &str, now: jiff::Timestamp) -> Result<()> {
        let mut w = self.write().await?;
        let r = sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(ms(now))
            .bind(id)
            .execute(w.conn().await?)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("active token {id}")));
        }
        // Every token issued with it, and theirs in turn.
        let children = sqlx::query(
            "WITH RECURSIVE family(id) AS (SELECT id FROM tokens WHERE parent_id = $2 \
             UNION SELECT t.id FROM tokens t JOIN family f ON t.parent_id = f.id) \
             UPDATE tokens SET revoked_at = $1 WHERE id IN (SELECT id FROM family) AND revoked_at IS NULL",
        )
        .bind(ms(now))
        .bind(id)
        .execute(w.conn().await?)
        .await?
        .rows_affected();
        audit::append(
            &mut w,
            now,
            actor,
            "token.revoke",
            id,
            &serde_json::json!({"with_children": children}),
        )
        .await?;
        w.commit().await?;
        self.auth_cache.clear();
        Ok(())
    }

    /// The principal behind a token secret, if the token exists, is not revoked or expired,
    /// and its user is enabled.
    pub async fn authenticate(&self, secret: &str, now: jiff::Timestamp) -> Result<Option<Principal>> {
        if !secret.starts_with("lia_") || secret.len() != 68 {
            return Ok(None);
        }
        let hash = hash_token(secret);
        let now_ms = ms(now);
        let cached = self.auth_cache.with(|e| match e.tokens.get(&hash) {
            Some((p, expires, checked)) if now_ms < *expires && checked.elapsed() < AUTH_CACHE_TTL => Ok(p.clone()),
            _ => Err(e.generation),
        });
        let generation = match cached {
            Ok(p) => return Ok(Some(p)),
            Err(generation) => generation,
        };
        type Row = (String, String, String, String, i64, String, Option<i64>, Option<i64>);
        // A sign-in step's token is not a credential; a web session that was idle longer than
        // its idle time has ended.
        let row: Option<Row> = sqlx::query_as(
            "SELECT u.id, u.username, u.agency_id, u.role, t.expires_at, t.id, t.idle_seconds, t.last_used_at \
             FROM tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.expires_at > $2 AND u.disabled = 0 \
             AND t.purpose <> 'sign-in' \
             AND (t.idle_seconds IS NULL OR t.last_used_at IS NULL OR t.last_used_at + t.idle_seconds * 1000 > $2)",
        )
        .bind(&hash)
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        // A session's last use is written at most once a minute: its idle end is exact to
        // within that minute, and a busy session costs one small write a minute.
        if let (Some(_), Some(last)) = (r.6, r.7)
            && now_ms - last > IDLE_TOUCH_MS
        {
            self.touch_token(&r.5, now_ms).await?;
        }
        let p = Principal {
            user: parse(&r.0, "user id")?,
            username: r.1,
            agency: parse(&r.2, "agency id")?,
            role: parse(&r.3, "role")?,
            token: Some(r.5),
        };
        self.auth_cache.with(|e| {
            if e.generation == generation {
                if e.tokens.len() >= AUTH_CACHE_MAX {
                    e.tokens.clear();
                }
                e.tokens.insert(hash, (p.clone(), r.4, std::time::Instant::now()));
            }
        });
        Ok(Some(p))
    }

    /// The principal for a username (local CLI use: access to the data directory is trusted).
    pub async fn principal(&self, username: &str) -> Result<Principal> {
        let u = self.user_by_name(username).await?;
        if u.disabled {
            return Err(StoreError::NotFound(format!("enabled user '{username}'")));
        }
        Ok(Principal {
            user: u.id,
            username: u.username,
            agency: u.agency,
            role: u.role,
            token: None,
        })
    }

    /// Reads a node setting.
    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Writes a node setting.
    pub async fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(w.conn().await?)
        .await?;
        w.commit().await
    }
}
