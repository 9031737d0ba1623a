//! Creating a node: opening its database, seeding the jurisdictions the rule packs know, its own
//! agency, its first users and the administrator's token, and its federation identity. Written
//! once for `liaison init`, `liaison demo`, the federation demo, the benchmarks and the tests.

use crate::error::{Result, ServiceError};
use crate::federation::IdentityParams;
use crate::legal::Legal;
use crate::node::Node;
use jiff::{SignedDuration, Timestamp};
use liaison_core::directory::{Agency, ContactPoint};
use liaison_core::jurisdiction::Jurisdiction;
use liaison_core::record::{Principal, TokenInfo, User};
use liaison_core::sla::SlaPolicy;
use liaison_core::{CountryCode, Role};
use liaison_store::Store;
use liaison_wire::NodeDescriptor;

/// A user to create with the node.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub role: Role,
}

impl NewUser {
    pub fn new(username: impl Into<String>, display_name: impl Into<String>, role: Role) -> Self {
        NewUser {
            username: username.into(),
            display_name: display_name.into(),
            role,
        }
    }
}

/// What a new node starts with.
#[derive(Debug, Clone)]
pub struct NodeSetup {
    /// The agency the node serves.
    pub agency: Agency,
    pub users: Vec<NewUser>,
    /// Issue a token for this user (one of `users`), valid this many days.
    pub token: Option<(String, u32)>,
    /// Create a federation identity (signing key, TLS certificate, signed descriptor).
    pub identity: Option<IdentityParams>,
    /// Who the audit log names for these writes (`init`, `demo`, …).
    pub actor: String,
}

/// What [`Node::set_up`] created.
#[derive(Debug, Clone)]
pub struct CreatedNode {
    pub agency: Agency,
    pub users: Vec<User>,
    /// The token secret (shown once) and its metadata.
    pub token: Option<(String, TokenInfo)>,
    pub descriptor: Option<NodeDescriptor>,
}

impl CreatedNode {
    /// The principal of a created user.
    pub fn principal(&self, username: &str) -> Option<Principal> {
        self.users.iter().find(|u| u.username == username).map(|u| Principal {
            user: u.id,
            username: u.username.clone(),
            agency: u.agency,
            role: u.role,
            token: None,
        })
    }
}

impl Node {
    /// Opens the node's database (a SQLite path or URL, or a PostgreSQL URL), creating or
    /// migrating its schema.
    pub async fn open(database_url: &str, sla: SlaPolicy, legal: Legal) -> Result<Node> {
        let store = Store::open(database_url)
            .await
            .map_err(|e| ServiceError::Internal(format!("opening the database: {e}")))?;
        Ok(Node::new(store, sla, legal))
    }

    /// Adds every jurisdiction the rule packs know, with their English and Chinese names.
    pub async fn seed_jurisdictions(&self) -> Result<usize> {
        let packs = self.legal.packs();
        let mut n = 0;
        for code in packs.jurisdictions().collect::<Vec<_>>() {
            let (en, zh) = packs.jurisdiction_name(code).unwrap_or((code.as_str(), code.as_str()));
            self.store
                .upsert_jurisdiction(&Jurisdiction {
                    code,
                    name_en: en.to_string(),
                    name_zh: zh.to_string(),
                })
                .await?;
            n += 1;
        }
        Ok(n)
    }

    /// Adds `code` to the directory's jurisdictions if it is missing (named by its code).
    pub(crate) async fn ensure_jurisdiction(&self, code: CountryCode) -> Result<()> {
        if !self.store.jurisdictions().await?.iter().any(|j| j.code == code) {
            self.store
                .upsert_jurisdiction(&Jurisdiction {
                    code,
                    name_en: code.to_string(),
                    name_zh: code.to_string(),
                })
                .await?;
        }
        Ok(())
    }

    /// Sets up a fresh node: jurisdictions, its agency, users, a token, and its federation
    /// identity. The caller is the operator creating the node (no principal exists yet).
    pub async fn set_up(&self, s: &NodeSetup, now: Timestamp) -> Result<CreatedNode> {
        self.seed_jurisdictions().await?;
        self.ensure_jurisdiction(s.agency.jurisdiction).await?;
        self.store.insert_agency(&s.agency, None, &s.actor, now).await?;
        let mut users = Vec::with_capacity(s.users.len());
        for u in &s.users {
            users.push(
                self.store
                    .create_user(&u.username, &u.display_name, s.agency.id, u.role, &s.actor, now)
                    .await?,
            );
        }
        let token = match &s.token {
            Some((name, days)) => {
                let u = users
                    .iter()
                    .find(|u| &u.username == name)
                    .ok_or_else(|| ServiceError::invalid("token", format!("'{name}' is not one of the new users")))?;
                let expires = now + SignedDuration::from_hours(24 * i64::from(*days));
                Some(self.store.create_token(u.id, &s.actor, expires, &s.actor, now).await?)
            }
            None => None,
        };
        let descriptor = match &s.identity {
            Some(params) => Some(self.create_identity(&s.agency, params, now).await?),
            None => None,
        };
        Ok(CreatedNode {
            agency: s.agency.clone(),
            users,
            token,
            descriptor,
        })
    }

    /// Adds a further agency served by this node, its contact points and users (demo and test
    /// directories; an admin adds agencies with [`Node::add_agency`]).
    pub async fn set_up_agency(
        &self,
        agency: &Agency,
        contacts: &[ContactPoint],
        users: &[NewUser],
        actor: &str,
        now: Timestamp,
    ) -> Result<Vec<User>> {
        self.ensure_jurisdiction(agency.jurisdiction).await?;
        self.store.insert_agency(agency, None, actor, now).await?;
        for c in contacts {
            self.store.insert_contact(c, actor, now).await?;
        }
        let mut out = Vec::with_capacity(users.len());
        for u in users {
            out.push(
                self.store
                    .create_user(&u.username, &u.display_name, agency.id, u.role, actor, now)
                    .await?,
            );
        }
        Ok(out)
    }
}
