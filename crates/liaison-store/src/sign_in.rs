//! Sign-in credentials of people (docs/ui.md "Sign-in"): a password hash (Argon2id, made by
//! the service), an optional TOTP secret with one-time recovery codes, and the count of
//! failed attempts that locks an account for a while. The rules (what is checked, in which
//! order, how long a lock lasts) are the service's; this module stores and counts.
//!
//! Sign-in steps and web sessions are tokens ([`crate::users::TokenKind`]): a step is never a
//! credential, a session also ends when idle.

use crate::users::{NewToken, TokenKind};
use crate::{Result, Store, StoreError, audit, ms, opt_ts, parse};
use liaison_core::UserId;

pub(crate) const MIGRATION_27: &str = r#"
CREATE TABLE credentials (
    user_id TEXT CONSTRAINT credentials_pk PRIMARY KEY CONSTRAINT credentials_user_fk REFERENCES users(id),
    password_hash TEXT NOT NULL,
    must_change INTEGER NOT NULL,
    changed_at BIGINT NOT NULL,
    totp_secret TEXT,
    totp_last_step BIGINT,
    failures INTEGER NOT NULL,
    locked_until BIGINT
);
CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL CONSTRAINT recovery_codes_user_fk REFERENCES users(id),
    code_hash TEXT NOT NULL,
    used_at BIGINT,
    CONSTRAINT recovery_codes_pk PRIMARY KEY (user_id, code_hash)
);
ALTER TABLE tokens ADD COLUMN purpose TEXT NOT NULL DEFAULT 'api';
ALTER TABLE tokens ADD COLUMN idle_seconds BIGINT;
ALTER TABLE tokens ADD COLUMN last_used_at BIGINT;
ALTER TABLE tokens ADD COLUMN step TEXT;
UPDATE tokens SET purpose = 'session' WHERE label = 'web session'
"#;

/// A user's sign-in credential as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub user: UserId,
    /// The PHC string of the password's hash.
    pub password_hash: String,
    /// Set by an administrator's reset: the password must be changed at the next sign-in.
    pub must_change: bool,
    pub changed_at: jiff::Timestamp,
    /// The TOTP secret (hex), when a second factor is set up.
    pub totp_secret: Option<String>,
    /// The last TOTP time step accepted: a code is never accepted twice.
    pub totp_last_step: Option<i64>,
    /// Failed attempts since the last success (or reset).
    pub failures: i64,
    pub locked_until: Option<jiff::Timestamp>,
    /// Recovery codes not yet used.
    pub recovery_left: i64,
}

/// A sign-in step's token, found by its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInStep {
    pub token_id: String,
    pub user: UserId,
    pub step: String,
    pub expires_at: jiff::Timestamp,
}

impl Store {
    /// A user's credential, if one was ever set.
    pub async fn credential(&self, user: UserId) -> Result<Option<Credential>> {
        type Row = (
            String,
            String,
            i64,
            i64,
            Option<String>,
            Option<i64>,
            i64,
            Option<i64>,
            i64,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT c.user_id, c.password_hash, c.must_change, c.changed_at, c.totp_secret, c.totp_last_step, \
             c.failures, c.locked_until, \
             (SELECT COUNT(*) FROM recovery_codes r WHERE r.user_id = c.user_id AND r.used_at IS NULL) \
             FROM credentials c WHERE c.user_id = $1",
        )
        .bind(user.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(Credential {
                user: parse(&r.0, "user id")?,
                password_hash: r.1,
                must_change: r.2 != 0,
                changed_at: crate::ts(r.3)?,
                totp_secret: r.4,
                totp_last_step: r.5,
                failures: r.6,
                locked_until: opt_ts(r.7)?,
                recovery_left: r.8,
            })
        })
        .transpose()
    }

    /// Sets a user's password hash. Clears failures and any lock; `must_change` when an
    /// administrator set it. The user's web sessions and unfinished sign-ins end.
    pub async fn set_password(
        &self,
        user: UserId,
        password_hash: &str,
        must_change: bool,
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<()> {
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO credentials (user_id, password_hash, must_change, changed_at, failures) VALUES ($1, $2, $3, $4, 0) \
             ON CONFLICT (user_id) DO UPDATE SET password_hash = $2, must_change = $3, changed_at = $4, failures = 0, locked_until = NULL",
        )
        .bind(user.to_string())
        .bind(password_hash)
        .bind(i64::from(must_change))
        .bind(ms(now))
        .execute(w.conn().await?)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound(format!("user {user}")),
            _ => StoreError::Database(e),
        })?;
        let ended = end_sessions(&mut w, user, now).await?;
        audit::append(
            &mut w,
            now,
            actor,
            if must_change {
                "user.password_reset"
            } else {
                "user.password"
            },
            &user.to_string(),
            &serde_json::json!({"sessions_ended": ended}),
        )
        .await?;
        w.commit().await?;
        self.auth_cache.clear();
        Ok(())
    }

    /// Counts a failed attempt; at `max_failures` the account is locked until `lock_until`.
    /// Returns the lock's end when this attempt locked it.
    pub async fn sign_in_failed(
        &self,
        user: UserId,
        max_failures: i64,
        lock_until: jiff::Timestamp,
        why: &str,
        now: jiff::Timestamp,
    ) -> Result<Option<jiff::Timestamp>> {
        let mut w = self.write().await?;
        let failures: Option<i64> =
            sqlx::query_scalar("UPDATE credentials SET failures = failures + 1 WHERE user_id = $1 RETURNING failures")
                .bind(user.to_string())
                .fetch_optional(w.conn().await?)
                .await?;
        let locked = match failures {
            Some(n) if n >= max_failures => {
                sqlx::query("UPDATE credentials SET failures = 0, locked_until = $2 WHERE user_id = $1")
                    .bind(user.to_string())
                    .bind(ms(lock_until))
                    .execute(w.conn().await?)
                    .await?;
                // As stored (to the millisecond), so every later answer names the same instant.
                Some(crate::ts(ms(lock_until))?)
            }
            _ => None,
        };
        audit::append(
            &mut w,
            now,
            "system",
            if locked.is_some() {
                "user.locked"
            } else {
                "user.sign_in_failed"
            },
            &user.to_string(),
            &serde_json::json!({"why": why, "failures": failures, "locked_until": locked}),
        )
        .await?;
        w.commit().await?;
        Ok(locked)
    }

    /// Records a good password (and code): failures go back to zero.
    pub async fn sign_in_succeeded(&self, user: UserId) -> Result<()> {
        let mut w = self.write().await?;
        sqlx::query("UPDATE credentials SET failures = 0, locked_until = NULL WHERE user_id = $1")
            .bind(user.to_string())
            .execute(w.conn().await?)
            .await?;
        w.commit().await?;
        Ok(())
    }

    /// Takes a TOTP time step as used, if it is later than the last one used: false when the
    /// code was already used (two sign-ins racing with one code, or a replay).
    pub async fn take_totp_step(&self, user: UserId, step: i64) -> Result<bool> {
        let mut w = self.write().await?;
        let r = sqlx::query(
            "UPDATE credentials SET totp_last_step = $2 WHERE user_id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)",
        )
        .bind(user.to_string())
        .bind(step)
        .execute(w.conn().await?)
        .await?;
        w.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    /// Users whose second-factor secret does not start with `sealed_prefix` (written in the
    /// clear, before the node had a key), with what is stored.
    pub async fn unsealed_second_factors(&self, sealed_prefix: &str) -> Result<Vec<(UserId, String)>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT user_id, totp_secret FROM credentials WHERE totp_secret IS NOT NULL AND totp_secret NOT LIKE $1",
        )
        .bind(format!("{sealed_prefix}%"))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(u, s)| Ok((crate::parse(&u, "user id")?, s)))
            .collect()
    }

    /// Replaces a user's second-factor secret `old` by `new` (the same secret, sealed); false
    /// when the row no longer holds `old` (changed meanwhile, or sealed by another process).
    pub async fn reseal_second_factor(&self, user: UserId, old: &str, new: &str) -> Result<bool> {
        let mut w = self.write().await?;
        let r = sqlx::query("UPDATE credentials SET totp_secret = $3 WHERE user_id = $1 AND totp_secret = $2")
            .bind(user.to_string())
            .bind(old)
            .bind(new)
            .execute(w.conn().await?)
            .await?;
        w.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    /// Sets up (`Some`, with the first accepted step and the recovery codes' hashes) or removes
    /// (`None`) a user's second factor. The old recovery codes are gone either way.
    pub async fn set_second_factor(
        &self,
        user: UserId,
        factor: Option<(&str, i64, &[String])>,
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<()> {
        let mut w = self.write().await?;
        let r = sqlx::query("UPDATE credentials SET totp_secret = $2, totp_last_step = $3 WHERE user_id = $1")
            .bind(user.to_string())
            .bind(factor.map(|f| f.0.to_string()))
            .bind(factor.map(|f| f.1))
            .execute(w.conn().await?)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("a password for user {user}")));
        }
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user.to_string())
            .execute(w.conn().await?)
            .await?;
        for h in factor.map(|f| f.2).unwrap_or_default() {
            sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                .bind(user.to_string())
                .bind(h)
                .execute(w.conn().await?)
                .await?;
        }
        let ended = if factor.is_none() {
            end_sessions(&mut w, user, now).await?
        } else {
            0
        };
        audit::append(
            &mut w,
            now,
            actor,
            if factor.is_some() {
                "user.second_factor"
            } else {
                "user.second_factor_reset"
            },
            &user.to_string(),
            &serde_json::json!({"recovery_codes": factor.map_or(0, |f| f.2.len()), "sessions_ended": ended}),
        )
        .await?;
        w.commit().await?;
        self.auth_cache.clear();
        Ok(())
    }

    /// Uses a recovery code (by its hash): true if it was there and unused.
    pub async fn use_recovery_code(&self, user: UserId, code_hash: &str, now: jiff::Timestamp) -> Result<bool> {
        let mut w = self.write().await?;
        let r = sqlx::query(
            "UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
        )
        .bind(user.to_string())
        .bind(code_hash)
        .bind(ms(now))
        .execute(w.conn().await?)
        .await?;
        if r.rows_affected() == 1 {
            audit::append(
                &mut w,
                now,
                "system",
                "user.recovery_code_used",
                &user.to_string(),
                &serde_json::json!({}),
            )
            .await?;
        }
        w.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    /// Issues a token of a kind other than an API token (a web session, a sign-in step).
    pub async fn issue_token(
        &self,
        user: UserId,
        label: &str,
        expires_at: jiff::Timestamp,
        parent: Option<&str>,
        kind: TokenKind,
        now: jiff::Timestamp,
    ) -> Result<String> {
        let actor = match &kind {
            TokenKind::SignInStep { .. } | TokenKind::Session { .. } => "sign-in",
            TokenKind::Api => "system",
        };
        let (secret, _) = self
            .insert_token(
                NewToken {
                    user,
                    label,
                    expires_at,
                    parent,
                    kind,
                },
                actor,
                now,
            )
            .await?;
        Ok(secret)
    }

    /// The unfinished sign-in behind a step's secret, if it is not used, expired or the user
    /// disabled.
    pub async fn sign_in_step(&self, secret: &str, now: jiff::Timestamp) -> Result<Option<SignInStep>> {
        if !secret.starts_with("lia_") || secret.len() != 68 {
            return Ok(None);
        }
        let row: Option<(String, String, Option<String>, i64)> = sqlx::query_as(
            "SELECT t.id, t.user_id, t.step, t.expires_at FROM tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.token_hash = $1 AND t.purpose = 'sign-in' AND t.revoked_at IS NULL AND t.expires_at > $2 AND u.disabled = 0",
        )
        .bind(crate::users::hash_token(secret))
        .bind(ms(now))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(SignInStep {
                token_id: r.0,
                user: parse(&r.1, "user id")?,
                step: r.2.unwrap_or_default(),
                expires_at: crate::ts(r.3)?,
            })
        })
        .transpose()
    }

    /// Ends a sign-in step (used, or replaced by the next): false if it had already ended
    /// (the same step submitted twice at once).
    pub async fn end_sign_in_step(&self, token_id: &str, now: jiff::Timestamp) -> Result<bool> {
        let mut w = self.write().await?;
        let r = sqlx::query(
            "UPDATE tokens SET revoked_at = $2 WHERE id = $1 AND purpose = 'sign-in' AND revoked_at IS NULL",
        )
        .bind(token_id)
        .bind(ms(now))
        .execute(w.conn().await?)
        .await?;
        w.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    /// Writes a session's last use (see `IDLE_TOUCH_MS`).
    pub(crate) async fn touch_token(&self, token_id: &str, now_ms: i64) -> Result<()> {
        let mut w = self.write().await?;
        sqlx::query("UPDATE tokens SET last_used_at = $2 WHERE id = $1")
            .bind(token_id)
            .bind(now_ms)
            .execute(w.conn().await?)
            .await?;
        w.commit().await?;
        Ok(())
    }
}

/// Ends a user's web sessions and unfinished sign-ins (not their API tokens); returns how many.
async fn end_sessions(w: &mut crate::writer::WriteTx, user: UserId, now: jiff::Timestamp) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE tokens SET revoked_at = $2 WHERE user_id = $1 AND purpose IN ('session', 'sign-in') AND revoked_at IS NULL",
    )
    .bind(user.to_string())
    .bind(ms(now))
    .execute(w.conn().await?)
    .await?
    .rows_affected())
}
