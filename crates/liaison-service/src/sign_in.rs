//! Sign-in for people (docs/ui.md "Sign-in"): user name and password, then a second factor
//! (a TOTP code from an authenticator app, RFC 6238, or a one-time recovery code). API tokens
//! stay for programs.
//!
//! A sign-in is a short series of steps decided here, never in a page:
//! 1. the password, checked against its Argon2id hash (a wrong one counts towards a lock:
//!    `max_failures` failures lock the account for `lockout_minutes`; an administrator's reset
//!    ends a lock);
//! 2. the code, when the user has a second factor;
//! 3. a new password, when an administrator reset it;
//! 4. setting up a second factor, when the node requires one and the user has none: the
//!    secret is shown, a code from it proves the app has it, and ten recovery codes are shown
//!    once.
//!
//! Between steps the browser holds a *step token*: a token of its own kind, valid ten minutes,
//! never accepted as a credential, and used once (each step replaces it). The end is a web
//! session: a token that ends after `session_hours`, or `idle_minutes` without a request, or
//! at sign-out, or when the password or second factor is reset.

use crate::error::{Result, ServiceError};
use crate::node::{Node, require};
use jiff::{SignedDuration, Timestamp};
use liaison_core::UserId;
use liaison_core::record::{Principal, User};
use liaison_store::{Credential, TokenKind};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The label of the token behind a web session (sessions are tokens: revoking one ends it).
pub const SESSION_LABEL: &str = "web session";

/// `[sign_in]` in the node's configuration.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignInConfig {
    /// Every user must set up a second factor (TOTP) at their first sign-in.
    pub require_second_factor: bool,
    /// The shortest password accepted.
    pub min_password_length: usize,
    /// Failed attempts in a row (wrong password or code) that lock an account.
    pub max_failures: u32,
    /// How long a lock lasts.
    pub lockout_minutes: u32,
    /// How long a web session lasts at most.
    pub session_hours: u32,
    /// A web session ends after this long without a request.
    pub idle_minutes: u32,
    /// Whether the sign-in page also takes an API token (then no second factor is asked).
    /// Off by default: tokens are for programs.
    pub token_sign_in: bool,
    /// The key that seals second-factor secrets in the database (`sign_in_seal`); the CLI
    /// sets `DATA_DIR/sign-in.key` when it is not given. None: secrets are stored as hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<std::path::PathBuf>,
}

impl Default for SignInConfig {
    fn default() -> Self {
        SignInConfig {
            require_second_factor: true,
            min_password_length: 12,
            max_failures: 5,
            lockout_minutes: 15,
            session_hours: 12,
            idle_minutes: 30,
            token_sign_in: false,
            key_file: None,
        }
    }
}

impl SignInConfig {
    /// Checks the values make sense (named errors for the configuration file).
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(8..=128).contains(&self.min_password_length) {
            return Err(format!(
                "sign_in.min_password_length = {} is not between 8 and 128",
                self.min_password_length
            ));
        }
        if !(1..=100).contains(&self.max_failures) {
            return Err(format!(
                "sign_in.max_failures = {} is not between 1 and 100",
                self.max_failures
            ));
        }
        if !(1..=24 * 60).contains(&self.lockout_minutes) {
            return Err(format!(
                "sign_in.lockout_minutes = {} is not between 1 and 1440",
                self.lockout_minutes
            ));
        }
        if !(1..=24).contains(&self.session_hours) {
            return Err(format!(
                "sign_in.session_hours = {} is not between 1 and 24",
                self.session_hours
            ));
        }
        if !(1..=self.session_hours * 60).contains(&self.idle_minutes) {
            return Err(format!(
                "sign_in.idle_minutes = {} is not between 1 and the session's {} hours",
                self.idle_minutes, self.session_hours
            ));
        }
        Ok(())
    }
}

/// What a sign-in step came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignIn {
    /// Signed in: the web session's secret, and the recovery codes when a second factor was
    /// set up just now (shown once).
    Done {
        session: String,
        recovery_codes: Vec<String>,
    },
    /// Another step is due; `problem` says why the last answer was not taken, if it was not.
    Next {
        step: String,
        need: Need,
        problem: Option<Problem>,
    },
    /// Too many failures: no sign-in until then (or an administrator's reset).
    Locked { until: Timestamp },
    /// Wrong user name or password (which one is not said), or a step that has ended.
    Refused,
}

/// The step that is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// A code from the authenticator app, or a recovery code.
    Code,
    /// A new password (the administrator's temporary one must be replaced).
    NewPassword,
    /// Setting up the second factor: the secret in base32, the `otpauth://` URI for a QR code.
    Enrol { secret: String, uri: String },
}

/// Why an answer to a step was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The code is wrong, or was already used.
    WrongCode,
    /// The new password is not acceptable.
    Password(PasswordProblem),
}

/// Why a new password is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordProblem {
    /// Fewer characters than the node's minimum (which is given).
    TooShort {
        min: usize,
    },
    TooLong,
    ContainsUsername,
    /// Fewer than five different characters.
    TooSimple,
    /// The same as the temporary password it replaces.
    Unchanged,
}

impl std::fmt::Display for PasswordProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PasswordProblem::TooShort { min } => write!(f, "the password must have at least {min} characters"),
            PasswordProblem::TooLong => write!(f, "the password must have at most {MAX_SECRET_LEN} bytes"),
            PasswordProblem::ContainsUsername => write!(f, "the password must not contain the user name"),
            PasswordProblem::TooSimple => write!(f, "the password must use at least 5 different characters"),
            PasswordProblem::Unchanged => write!(f, "the new password must differ from the temporary one"),
        }
    }
}

/// A user's sign-in as their own page and the admin's list show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignInState {
    pub has_password: bool,
    pub must_change: bool,
    pub second_factor: bool,
    pub recovery_codes_left: i64,
    pub locked_until: Option<Timestamp>,
    pub password_changed_at: Option<Timestamp>,
}

/// The state of a sign-in between steps, kept with its step token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "need", rename_all = "snake_case")]
enum Step {
    Code,
    NewPassword,
    /// `secret` as it is stored (`Node::store_secret`: sealed, or hex without a key file).
    Enrol {
        secret: String,
    },
}

/// A step token lasts this long.
const STEP_MINUTES: i64 = 10;
/// TOTP: 30-second steps, 6 digits, one step of clock drift either way (RFC 6238 §5.2).
const TOTP_PERIOD: i64 = 30;
const TOTP_DIGITS: u32 = 6;
/// Recovery codes given when a second factor is set up.
const RECOVERY_CODES: usize = 10;
/// The longest password or code read at all (Argon2 of a megabyte is work for nobody).
const MAX_SECRET_LEN: usize = 1024;

impl Node {
    /// Sets `[sign_in]`.
    pub fn with_sign_in(mut self, c: SignInConfig) -> Self {
        self.sign_in = std::sync::Arc::new(c);
        // The key is read from the new configuration on first use.
        self.factor_key = Default::default();
        self
    }

    /// The node's sign-in rules.
    pub fn sign_in_config(&self) -> &SignInConfig {
        &self.sign_in
    }

    /// The first step: user name and password.
    pub async fn sign_in(&self, username: &str, password: &str, now: Timestamp) -> Result<SignIn> {
        let user = if username.len() <= 64 && password.len() <= MAX_SECRET_LEN {
            self.store
                .user_by_name(username.trim())
                .await
                .ok()
                .filter(|u| !u.disabled)
        } else {
            None
        };
        let cred = match &user {
            Some(u) => self.store.credential(u.id).await?,
            None => None,
        };
        let (Some(user), Some(cred)) = (user, cred) else {
            // The same work as for a real user, so the time taken does not say which names exist.
            let _ = verify_password(dummy_hash().to_string(), password.to_string()).await;
            return Ok(SignIn::Refused);
        };
        if let Some(until) = cred.locked_until.filter(|u| *u > now) {
            return Ok(SignIn::Locked { until });
        }
        if !verify_password(cred.password_hash.clone(), password.to_string()).await? {
            return self.failed(user.id, "password", now).await;
        }
        if cred.totp_secret.is_some() {
            return self.next(user.id, Step::Code, None, now).await;
        }
        self.after_code(&user, &cred, now).await
    }

    /// A later step: the answer typed (a code, or the new password).
    pub async fn sign_in_step(&self, step_token: &str, answer: &str, now: Timestamp) -> Result<SignIn> {
        let Some(found) = self.store.sign_in_step(step_token.trim(), now).await? else {
            return Ok(SignIn::Refused);
        };
        let step: Step = serde_json::from_str(&found.step)
            .map_err(|e| ServiceError::Internal(format!("sign-in step {}: {e}", found.token_id)))?;
        let user = self.store.user_by_id(found.user).await?;
        let Some(cred) = self.store.credential(user.id).await? else {
            return Ok(SignIn::Refused);
        };
        if let Some(until) = cred.locked_until.filter(|u| *u > now) {
            self.store.end_sign_in_step(&found.token_id, now).await?;
            return Ok(SignIn::Locked { until });
        }
        let agency = self.agency_code(&user).await;
        let shown = self.need_of(&step, &user, &agency)?;
        let again = |problem| SignIn::Next {
            step: step_token.trim().to_string(),
            need: shown.clone(),
            problem: Some(problem),
        };
        let answer = answer.trim();
        match &step {
            Step::Code => {
                let Some(stored) = cred.totp_secret.as_deref() else {
                    return Ok(SignIn::Refused);
                };
                let secret = self.read_secret(user.id, stored)?;
                if !self.check_code(user.id, &secret, answer, true, now).await? {
                    return Ok(match self.failed(user.id, "code", now).await? {
                        SignIn::Refused => again(Problem::WrongCode),
                        locked => locked,
                    });
                }
                if !self.store.end_sign_in_step(&found.token_id, now).await? {
                    return Ok(SignIn::Refused);
                }
                self.after_code(&user, &cred, now).await
            }
            Step::NewPassword => {
                if let Some(why) = self.password_problem(&user.username, answer) {
                    return Ok(again(Problem::Password(why)));
                }
                if verify_password(cred.password_hash.clone(), answer.to_string()).await? {
                    return Ok(again(Problem::Password(PasswordProblem::Unchanged)));
                }
                if !self.store.end_sign_in_step(&found.token_id, now).await? {
                    return Ok(SignIn::Refused);
                }
                let hash = hash_password(answer.to_string()).await?;
                self.store
                    .set_password(user.id, &hash, false, &user.username, now)
                    .await?;
                let cred = self.store.credential(user.id).await?.unwrap_or(cred);
                self.after_password(&user, &cred, now).await
            }
            Step::Enrol { secret } => {
                let secret = self.read_secret(user.id, secret)?;
                let Some(at) = totp_match(&secret, answer, now) else {
                    return Ok(match self.failed(user.id, "code", now).await? {
                        SignIn::Refused => again(Problem::WrongCode),
                        locked => locked,
                    });
                };
                if !self.store.end_sign_in_step(&found.token_id, now).await? {
                    return Ok(SignIn::Refused);
                }
                let codes = self.set_factor(&user, &secret, at, now).await?;
                let session = self.open_session(user.id, now).await?;
                Ok(SignIn::Done {
                    session,
                    recovery_codes: codes,
                })
            }
        }
    }

    /// The step due on a step token, without answering it (to show its page again).
    pub async fn sign_in_step_need(&self, step_token: &str, now: Timestamp) -> Result<Option<Need>> {
        let Some(found) = self.store.sign_in_step(step_token.trim(), now).await? else {
            return Ok(None);
        };
        let Ok(step) = serde_json::from_str::<Step>(&found.step) else {
            return Ok(None);
        };
        let u = self.store.user_by_id(found.user).await?;
        Ok(Some(self.need_of(&step, &u, &self.agency_code(&u).await)?))
    }

    /// What the user's sign-in looks like (their own, or anyone's for admins).
    pub async fn sign_in_state(&self, p: &Principal, username: &str) -> Result<SignInState> {
        if username != p.username {
            require(p.role.may_administer(), "reading another user's sign-in", p)?;
        }
        let u = self
            .store
            .user_by_name(username)
            .await
            .map_err(|_| ServiceError::NotFound(format!("user '{username}'")))?;
        Ok(state_of(self.store.credential(u.id).await?))
    }

    /// Every user with their sign-in state (admins).
    pub async fn users_sign_in(&self, p: &Principal) -> Result<Vec<(User, SignInState)>> {
        require(p.role.may_administer(), "listing users", p)?;
        let mut out = Vec::new();
        for u in self.store.users().await? {
            let c = self.store.credential(u.id).await?;
            out.push((u, state_of(c)));
        }
        Ok(out)
    }

    /// An administrator's reset: a temporary password (returned, shown once) that must be
    /// changed at the next sign-in. Ends a lock and the user's web sessions; the second
    /// factor stays unless `second_factor` is true (a lost phone).
    pub async fn reset_password(
        &self,
        p: &Principal,
        username: &str,
        second_factor: bool,
        now: Timestamp,
    ) -> Result<String> {
        require(p.role.may_administer(), "resetting passwords", p)?;
        let u = self
            .store
            .user_by_name(username)
            .await
            .map_err(|_| ServiceError::NotFound(format!("user '{username}'")))?;
        let temporary = random_words(4);
        let hash = hash_password(temporary.clone()).await?;
        self.store.set_password(u.id, &hash, true, &p.username, now).await?;
        if second_factor {
            self.store.set_second_factor(u.id, None, &p.username, now).await?;
        }
        Ok(temporary)
    }

    /// An administrator sets a password they chose (provisioning, the demonstration node):
    /// checked like any new password; with `must_change`, to be replaced at the next sign-in.
    pub async fn set_password(
        &self,
        p: &Principal,
        username: &str,
        password: &str,
        must_change: bool,
        now: Timestamp,
    ) -> Result<()> {
        require(p.role.may_administer(), "setting passwords", p)?;
        let u = self
            .store
            .user_by_name(username)
            .await
            .map_err(|_| ServiceError::NotFound(format!("user '{username}'")))?;
        if let Some(why) = self.password_problem(&u.username, password) {
            return Err(ServiceError::invalid("password", why.to_string()));
        }
        let hash = hash_password(password.to_string()).await?;
        Ok(self
            .store
            .set_password(u.id, &hash, must_change, &p.username, now)
            .await?)
    }

    /// A user changes their own password (the current one is asked again). Every web session
    /// of the user ends; the new session's secret is returned for the browser that asked.
    pub async fn change_password(&self, p: &Principal, current: &str, new: &str, now: Timestamp) -> Result<String> {
        let u = self.store.user_by_id(p.user).await?;
        let Some(cred) = self.store.credential(u.id).await? else {
            return Err(ServiceError::invalid(
                "current",
                "you have no password yet; ask an administrator",
            ));
        };
        self.check_current(&u, &cred, current, now).await?;
        if let Some(why) = self.password_problem(&u.username, new) {
            return Err(ServiceError::invalid("new_password", why.to_string()));
        }
        let hash = hash_password(new.to_string()).await?;
        self.store.set_password(u.id, &hash, false, &p.username, now).await?;
        self.open_session(u.id, now).await
    }

    /// Starts setting up (or replacing) one's own second factor from the account page:
    /// the step token and what to show.
    /// The current password is asked again: a session left open on a shared computer must not
    /// be enough to move the second factor to another phone.
    pub async fn second_factor_begin(&self, p: &Principal, current: &str, now: Timestamp) -> Result<(String, Need)> {
        let u = self.store.user_by_id(p.user).await?;
        let Some(cred) = self.store.credential(u.id).await? else {
            return Err(ServiceError::invalid(
                "current",
                "set a password before a second factor",
            ));
        };
        self.check_current(&u, &cred, current, now).await?;
        let mut secret = [0u8; 20];
        rand::rng().fill_bytes(&mut secret);
        let step = Step::Enrol {
            secret: self.store_secret(u.id, &secret)?,
        };
        let need = self.need_of(&step, &u, &self.agency_code(&u).await)?;
        let token = self.step_token(u.id, &step, now).await?;
        Ok((token, need))
    }

    /// Finishes [`Node::second_factor_begin`] with a code from the app: the new recovery
    /// codes (shown once).
    pub async fn second_factor_confirm(
        &self,
        p: &Principal,
        step_token: &str,
        code: &str,
        now: Timestamp,
    ) -> Result<Vec<String>> {
        let found = self
            .store
            .sign_in_step(step_token.trim(), now)
            .await?
            .filter(|f| f.user == p.user)
            .ok_or_else(|| ServiceError::invalid("code", "this set-up has ended; start again"))?;
        let Ok(Step::Enrol { secret }) = serde_json::from_str::<Step>(&found.step) else {
            return Err(ServiceError::invalid("code", "this set-up has ended; start again"));
        };
        let secret = self.read_secret(p.user, &secret)?;
        let Some(at) = totp_match(&secret, code.trim(), now) else {
            return Err(ServiceError::invalid(
                "code",
                "the code does not match; check the phone's clock and type the newest code",
            ));
        };
        if !self.store.end_sign_in_step(&found.token_id, now).await? {
            return Err(ServiceError::invalid("code", "this set-up has ended; start again"));
        }
        let u = self.store.user_by_id(p.user).await?;
        self.set_factor(&u, &secret, at, now).await
    }

    /// A web session for a caller who signed in with a token (when `token_sign_in` allows):
    /// a child of that token (it ends when the typed token ends or is revoked).
    pub async fn start_session(&self, p: &Principal, now: Timestamp) -> Result<String> {
        if !self.sign_in.token_sign_in {
            return Err(ServiceError::Forbidden(
                "signing in to the web pages with an API token is turned off on this node ([sign_in] token_sign_in)"
                    .into(),
            ));
        }
        let Some(parent) = p.token.as_deref() else {
            return Err(ServiceError::Unauthenticated("a session starts from a token".into()));
        };
        let own = self.store.tokens(Some(p.user)).await?;
        let parent_expires = own
            .iter()
            .find(|t| t.id == parent)
            .map(|t| t.expires_at)
            .ok_or_else(|| ServiceError::Unauthenticated("the token is unknown, expired or revoked".into()))?;
        let expires = (now + SignedDuration::from_hours(i64::from(self.sign_in.session_hours))).min(parent_expires);
        Ok(self
            .store
            .issue_token(p.user, SESSION_LABEL, expires, Some(parent), self.session_kind(), now)
            .await?)
    }

    /// Ends the caller's web session: its token is revoked.
    pub async fn end_session(&self, p: &Principal, now: Timestamp) -> Result<()> {
        match p.token.as_deref() {
            Some(t) => self.revoke_token(p, t, now).await,
            None => Ok(()),
        }
    }

    // ----- the steps' shared parts ----------------------------------------------------------

    /// The current password, asked again on the account page; a wrong one counts towards the
    /// lock like a failed sign-in.
    async fn check_current(&self, u: &User, cred: &Credential, current: &str, now: Timestamp) -> Result<()> {
        if current.len() > MAX_SECRET_LEN || !verify_password(cred.password_hash.clone(), current.to_string()).await? {
            self.store
                .sign_in_failed(
                    u.id,
                    i64::from(self.sign_in.max_failures),
                    self.lock_end(now),
                    "password",
                    now,
                )
                .await?;
            return Err(ServiceError::invalid("current", "the current password is wrong"));
        }
        Ok(())
    }

    fn session_kind(&self) -> TokenKind {
        TokenKind::Session {
            idle_seconds: i64::from(self.sign_in.idle_minutes) * 60,
        }
    }

    async fn open_session(&self, user: UserId, now: Timestamp) -> Result<String> {
        self.store.sign_in_succeeded(user).await?;
        let expires = now + SignedDuration::from_hours(i64::from(self.sign_in.session_hours));
        Ok(self
            .store
            .issue_token(user, SESSION_LABEL, expires, None, self.session_kind(), now)
            .await?)
    }

    /// After the password (and the code, if any): a new password if one is due, then the
    /// second factor's set-up if required, then the session.
    async fn after_code(&self, user: &User, cred: &Credential, now: Timestamp) -> Result<SignIn> {
        if cred.must_change {
            return self.next(user.id, Step::NewPassword, None, now).await;
        }
        self.after_password(user, cred, now).await
    }

    async fn after_password(&self, user: &User, cred: &Credential, now: Timestamp) -> Result<SignIn> {
        if cred.totp_secret.is_none() && self.sign_in.require_second_factor {
            let mut secret = [0u8; 20];
            rand::rng().fill_bytes(&mut secret);
            return self
                .next(
                    user.id,
                    Step::Enrol {
                        secret: self.store_secret(user.id, &secret)?,
                    },
                    None,
                    now,
                )
                .await;
        }
        Ok(SignIn::Done {
            session: self.open_session(user.id, now).await?,
            recovery_codes: vec![],
        })
    }

    async fn next(&self, user: UserId, step: Step, problem: Option<Problem>, now: Timestamp) -> Result<SignIn> {
        let u = self.store.user_by_id(user).await?;
        let need = self.need_of(&step, &u, &self.agency_code(&u).await)?;
        let token = self.step_token(user, &step, now).await?;
        Ok(SignIn::Next {
            step: token,
            need,
            problem,
        })
    }

    async fn step_token(&self, user: UserId, step: &Step, now: Timestamp) -> Result<String> {
        let json = serde_json::to_string(step).map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok(self
            .store
            .issue_token(
                user,
                "sign-in step",
                now + SignedDuration::from_mins(STEP_MINUTES),
                None,
                TokenKind::SignInStep { step: json },
                now,
            )
            .await?)
    }

    fn lock_end(&self, now: Timestamp) -> Timestamp {
        now + SignedDuration::from_mins(i64::from(self.sign_in.lockout_minutes))
    }

    async fn failed(&self, user: UserId, why: &str, now: Timestamp) -> Result<SignIn> {
        let max = i64::from(self.sign_in.max_failures);
        Ok(
            match self
                .store
                .sign_in_failed(user, max, self.lock_end(now), why, now)
                .await?
            {
                Some(until) => SignIn::Locked { until },
                None => SignIn::Refused,
            },
        )
    }

    /// A TOTP code (each step once) or, when `recovery`, an unused recovery code.
    async fn check_code(
        &self,
        user: UserId,
        secret: &[u8],
        answer: &str,
        recovery: bool,
        now: Timestamp,
    ) -> Result<bool> {
        if let Some(step) = totp_match(secret, answer, now) {
            return Ok(self.store.take_totp_step(user, step).await?);
        }
        if recovery && let Some(norm) = normalise_recovery(answer) {
            return Ok(self.store.use_recovery_code(user, &sha256_hex(&norm), now).await?);
        }
        Ok(false)
    }

    async fn set_factor(&self, u: &User, secret: &[u8], step: i64, now: Timestamp) -> Result<Vec<String>> {
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| recovery_code()).collect();
        let hashes: Vec<String> = codes
            .iter()
            .filter_map(|c| normalise_recovery(c))
            .map(|n| sha256_hex(&n))
            .collect();
        self.store
            .set_second_factor(
                u.id,
                Some((&self.store_secret(u.id, secret)?, step, &hashes)),
                &u.username,
                now,
            )
            .await?;
        Ok(codes)
    }

    /// Whether `new` may be `username`'s password; why not if it may not.
    pub fn password_problem(&self, username: &str, new: &str) -> Option<PasswordProblem> {
        if new.chars().count() < self.sign_in.min_password_length {
            return Some(PasswordProblem::TooShort {
                min: self.sign_in.min_password_length,
            });
        }
        if new.len() > MAX_SECRET_LEN {
            return Some(PasswordProblem::TooLong);
        }
        if new.to_lowercase().contains(&username.to_lowercase()) {
            return Some(PasswordProblem::ContainsUsername);
        }
        let mut distinct: Vec<char> = new.chars().collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() < 5 {
            return Some(PasswordProblem::TooSimple);
        }
        None
    }

    /// The agency code shown in the authenticator app's label; the user's agency id if the
    /// directory does not answer.
    async fn agency_code(&self, u: &User) -> String {
        match self.store.agency(u.agency).await {
            Ok(a) => a.code,
            Err(_) => u.agency.to_string(),
        }
    }
}

fn state_of(c: Option<Credential>) -> SignInState {
    match c {
        None => SignInState {
            has_password: false,
            must_change: false,
            second_factor: false,
            recovery_codes_left: 0,
            locked_until: None,
            password_changed_at: None,
        },
        Some(c) => SignInState {
            has_password: true,
            must_change: c.must_change,
            second_factor: c.totp_secret.is_some(),
            recovery_codes_left: c.recovery_left,
            locked_until: c.locked_until,
            password_changed_at: Some(c.changed_at),
        },
    }
}

impl Node {
    /// What the page of a step shows (the set-up step opens its secret for the QR code).
    fn need_of(&self, step: &Step, user: &User, agency: &str) -> Result<Need> {
        Ok(match step {
            Step::Code => Need::Code,
            Step::NewPassword => Need::NewPassword,
            Step::Enrol { secret } => {
                let raw = self.read_secret(user.id, secret)?;
                let b32 = base32(&raw);
                let label = format!("Liaison:{agency} {}", user.username);
                Need::Enrol {
                    uri: format!(
                        "otpauth://totp/{}?secret={b32}&issuer=Liaison&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_PERIOD}",
                        percent(&label)
                    ),
                    secret: b32,
                }
            }
        })
    }
}

// ----- passwords -------------------------------------------------------------------------------

/// Argon2id with the crate's default cost (19 MiB, 2 passes: OWASP's minimum), on a blocking
/// thread so a sign-in never stalls the node's other work.
async fn hash_password(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|e| ServiceError::Internal(e.to_string()))?;
        argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ServiceError::Internal(format!("hashing a password: {e}")))
    })
    .await
    .map_err(|e| ServiceError::Internal(e.to_string()))?
}

async fn verify_password(hash: String, password: String) -> Result<bool> {
    tokio::task::spawn_blocking(move || {
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        let parsed =
            PasswordHash::new(&hash).map_err(|e| ServiceError::Internal(format!("a stored password hash: {e}")))?;
        Ok(argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(|e| ServiceError::Internal(e.to_string()))?
}

/// A hash of nothing anyone knows, checked for unknown users.
fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let mut pw = [0u8; 32];
        rand::rng().fill_bytes(&mut pw);
        SaltString::encode_b64(&salt)
            .ok()
            .and_then(|s| {
                argon2::Argon2::default()
                    .hash_password(&pw, &s)
                    .ok()
                    .map(|h| h.to_string())
            })
            .unwrap_or_default()
    })
}

/// A temporary password: `n` groups of four letters and digits, e.g. `k7qm-2xvd-…`.
fn random_words(n: usize) -> String {
    (0..n).map(|_| random_chars(4)).collect::<Vec<_>>().join("-")
}

/// Letters and digits without look-alikes (no 0/o, 1/l/i).
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

fn random_chars(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| {
            // Rejection sampling keeps every character equally likely.
            loop {
                let b = (rng.next_u32() & 0xff) as usize;
                if b < 256 - 256 % ALPHABET.len() {
                    return ALPHABET[b % ALPHABET.len()] as char;
                }
            }
        })
        .collect()
}

/// A recovery code: `xxxxx-xxxxx` (about 49 bits).
fn recovery_code() -> String {
    format!("{}-{}", random_chars(5), random_chars(5))
}

/// A recovery code as typed, without case, spaces or dashes; `None` if it cannot be one.
fn normalise_recovery(s: &str) -> Option<String> {
    let n: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (n.len() == 10 && n.bytes().all(|b| ALPHABET.contains(&b))).then_some(n)
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

// ----- TOTP (RFC 6238 over RFC 4226) -----------------------------------------------------------

/// The code of one time step.
pub fn totp_code(secret: &[u8], step: i64) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = ring::hmac::sign(&key, &step.to_be_bytes());
    let h = tag.as_ref();
    // Dynamic truncation (RFC 4226 §5.3).
    let off = usize::from(h[h.len() - 1] & 0x0f);
    let bin = (u32::from(h[off] & 0x7f) << 24)
        | (u32::from(h[off + 1]) << 16)
        | (u32::from(h[off + 2]) << 8)
        | u32::from(h[off + 3]);
    format!("{:0width$}", bin % 10u32.pow(TOTP_DIGITS), width = TOTP_DIGITS as usize)
}

/// The time step of an instant.
pub fn totp_step(now: Timestamp) -> i64 {
    now.as_second().div_euclid(TOTP_PERIOD)
}

/// The step whose code `answer` is (now, or one step before or after), if any.
fn totp_match(secret: &[u8], answer: &str, now: Timestamp) -> Option<i64> {
    let answer: String = answer.chars().filter(|c| !c.is_whitespace()).collect();
    if answer.len() != TOTP_DIGITS as usize || !answer.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = totp_step(now);
    [now, now - 1, now + 1].into_iter().find(|s| {
        let code = totp_code(secret, *s);
        // Compared without an early exit, so the time taken does not tell how many digits match.
        code.bytes().zip(answer.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    })
}

/// RFC 4648 base32 without padding, as authenticator apps take secrets.
pub fn base32(bytes: &[u8]) -> String {
    const A: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            out.push(A[((buf >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(A[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Back from [`base32`] (what an authenticator app does with the key typed); `None` for a
/// character outside the alphabet.
pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| *c != b'=' && !c.is_ascii_whitespace()) {
        let v = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buf = (buf << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            out.push((buf >> (bits - 8)) as u8);
            bits -= 8;
        }
    }
    Some(out)
}

/// Percent-encodes an `otpauth://` label.
fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 (8-digit codes there; their last 6 digits are ours).
    #[test]
    fn totp_matches_rfc_6238_vectors() {
        let secret = b"12345678901234567890";
        for (t, eight) in [
            (59, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
        ] {
            assert_eq!(totp_code(secret, t / 30), eight[2..], "t = {t}");
        }
    }

    #[test]
    fn totp_accepts_one_step_of_drift_only() {
        let secret = b"12345678901234567890";
        let now = Timestamp::from_second(1_111_111_111).unwrap_or(Timestamp::UNIX_EPOCH);
        let s = totp_step(now);
        assert_eq!(totp_match(secret, &totp_code(secret, s), now), Some(s));
        assert_eq!(totp_match(secret, &totp_code(secret, s - 1), now), Some(s - 1));
        assert_eq!(totp_match(secret, &totp_code(secret, s + 1), now), Some(s + 1));
        assert_eq!(totp_match(secret, &totp_code(secret, s - 2), now), None);
        assert_eq!(totp_match(secret, "12345", now), None);
        assert_eq!(totp_match(secret, "abcdef", now), None);
    }

    #[test]
    fn base32_matches_rfc_4648() {
        for (raw, b32) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(raw.as_bytes()), b32);
            assert_eq!(base32_decode(b32).unwrap_or_default(), raw.as_bytes());
        }
    }

    #[test]
    fn recovery_codes_normalise() {
        let c = recovery_code();
        assert_eq!(c.len(), 11);
        let n = normalise_recovery(&c.to_uppercase().replace('-', " ")).unwrap_or_default();
        assert_eq!(n, c.replace('-', ""));
        assert_eq!(normalise_recovery("123456"), None);
        assert!(random_words(4).split('-').all(|w| w.len() == 4));
    }
}
