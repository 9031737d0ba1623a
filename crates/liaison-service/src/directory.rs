//! The directory: agencies, contact points with their local time, jurisdictions.

use crate::error::{Result, ServiceError};
use crate::node::{Node, require};
use jiff::Timestamp;
use liaison_core::AgencyId;
use liaison_core::directory::{Agency, ContactPoint, LocalStatus, time_zone};
use liaison_core::record::Principal;
use liaison_core::request::FieldError;
use liaison_store::StoreError;
use serde::Serialize;
use std::collections::HashMap;

/// A contact point with its local time and office status now.
#[derive(Debug, Clone, Serialize)]
pub struct ContactView {
    #[serde(flatten)]
    pub contact: ContactPoint,
    #[serde(flatten)]
    pub status: LocalStatus,
}

/// An agency with its contact points.
#[derive(Debug, Clone, Serialize)]
pub struct AgencyView {
    #[serde(flatten)]
    pub agency: Agency,
    /// The peer node serving this agency, if it is not on this node.
    pub node_id: Option<String>,
    pub contacts: Vec<ContactView>,
}

impl Node {
    /// Every agency in the directory with the peer node serving it (`None`: served here).
    /// The directory is not secret: any authenticated user may read it.
    pub async fn agencies(&self, p: &Principal) -> Result<Vec<(Agency, Option<String>)>> {
        let _ = p;
        Ok(self.store.agencies(&Default::default()).await?)
    }

    /// The agency with directory code `code` (case as stored); an unknown code is invalid
    /// input on `field`, with the known codes.
    pub async fn agency_by_code(&self, p: &Principal, field: &str, code: &str) -> Result<Agency> {
        let _ = p;
        match self.store.agency_by_code(code).await {
            Ok(a) => Ok(a),
            Err(StoreError::NotFound(_)) => {
                let mut known: Vec<String> = self
                    .store
                    .agencies(&Default::default())
                    .await?
                    .into_iter()
                    .map(|(a, _)| a.code)
                    .collect();
                known.sort();
                let hint = match known.iter().find(|k| k.eq_ignore_ascii_case(code)) {
                    Some(k) => format!(" (did you mean {k}?)"),
                    None => String::new(),
                };
                Err(ServiceError::invalid(
                    field,
                    format!(
                        "unknown agency '{code}'{hint}; known: {}. Add one with: liaison directory add-agency",
                        known.join(", ")
                    ),
                ))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// One agency of the directory.
    pub async fn agency(&self, p: &Principal, id: AgencyId) -> Result<Agency> {
        let _ = p;
        Ok(self.store.agency(id).await?)
    }

    /// The directory with each contact's local time and office status at `now`.
    pub async fn directory(&self, p: &Principal, now: Timestamp) -> Result<Vec<AgencyView>> {
        let _ = p;
        let agencies = self.store.agencies(&Default::default()).await?;
        let contacts = self.store.contacts(None).await?;
        let mut by_agency: HashMap<AgencyId, Vec<ContactView>> = HashMap::new();
        for c in contacts {
            let status = c.status_at(now).map_err(|e| ServiceError::Internal(e.to_string()))?;
            by_agency
                .entry(c.agency)
                .or_default()
                .push(ContactView { contact: c, status });
        }
        Ok(agencies
            .into_iter()
            .map(|(a, node_id)| {
                let contacts = by_agency.remove(&a.id).unwrap_or_default();
                AgencyView {
                    agency: a,
                    node_id,
                    contacts,
                }
            })
            .collect())
    }
}

/// An agency's names, as an administrator edits them ([`Node::rename_agency`]).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgencyNames {
    pub name_en: String,
    #[serde(default)]
    pub name_native: String,
    #[serde(default)]
    pub name_zh: String,
}

/// Directory maintenance (admins).
impl Node {
    /// Adds a jurisdiction with its names (needed before agencies of that state).
    pub async fn add_jurisdiction(&self, p: &Principal, j: liaison_core::jurisdiction::Jurisdiction) -> Result<()> {
        require(p.role.may_administer(), "maintaining the directory", p)?;
        let errs: Vec<FieldError> = [("name_en", &j.name_en, "English"), ("name_zh", &j.name_zh, "Chinese")]
            .into_iter()
            .filter(|(_, name, _)| name.trim().is_empty())
            .map(|(field, _, lang)| FieldError {
                field: field.into(),
                message: format!("give the jurisdiction's name in {lang}"),
            })
            .collect();
        if !errs.is_empty() {
            return Err(ServiceError::Invalid(errs));
        }
        Ok(self.store.upsert_jurisdiction(&j).await?)
    }

    /// Adds an agency served by this node.
    pub async fn add_agency(&self, p: &Principal, a: Agency, now: Timestamp) -> Result<Agency> {
        require(p.role.may_administer(), "maintaining the directory", p)?;
        let errs = check_agency(&a, "");
        if !errs.is_empty() {
            return Err(ServiceError::Invalid(errs));
        }
        self.store
            .insert_agency(&a, None, &p.username, now)
            .await
            .map_err(|e| match e {
                StoreError::NotFound(m) => ServiceError::invalid("jurisdiction", m),
                other => other.into(),
            })?;
        Ok(a)
    }

    /// Renames an agency in this node's directory (admins): its English name (required), its
    /// name in its own language (empty: the English one) and the name Chinese pages show
    /// (empty: the native name when it is Chinese, else the English one). Names only: the
    /// code, jurisdiction, kind and time zone stay as requests and deadlines were made with
    /// them. Agencies of peer nodes may be renamed too: the names are this node's readers'.
    pub async fn rename_agency(&self, p: &Principal, code: &str, names: AgencyNames, now: Timestamp) -> Result<Agency> {
        require(p.role.may_administer(), "maintaining the directory", p)?;
        let a = self.store.agency_by_code(code).await.map_err(|e| match e {
            StoreError::NotFound(_) => ServiceError::NotFound(format!("agency '{code}'")),
            other => other.into(),
        })?;
        let clean = |s: &str| s.trim().to_string();
        let en = clean(&names.name_en);
        let native = match clean(&names.name_native) {
            n if n.is_empty() => en.clone(),
            n => n,
        };
        let zh = clean(&names.name_zh);
        let mut errs = Vec::new();
        if en.is_empty() {
            errs.push(FieldError {
                field: "name_en".into(),
                message: "give the agency's name in English".into(),
            });
        }
        for (field, v) in [("name_en", &en), ("name_native", &native), ("name_zh", &zh)] {
            if v.chars().count() > 200 {
                errs.push(FieldError {
                    field: field.into(),
                    message: format!("{} characters; at most 200", v.chars().count()),
                });
            } else if v.chars().any(char::is_control) {
                errs.push(FieldError {
                    field: field.into(),
                    message: "must not contain control characters".into(),
                });
            }
        }
        if !errs.is_empty() {
            return Err(ServiceError::Invalid(errs));
        }
        self.store
            .rename_agency(a.id, &en, &native, &zh, &p.username, now)
            .await?;
        Ok(self.store.agency(a.id).await?)
    }

    /// Adds a contact point to an agency.
    pub async fn add_contact(&self, p: &Principal, c: ContactPoint, now: Timestamp) -> Result<ContactPoint> {
        require(p.role.may_administer(), "maintaining the directory", p)?;
        let mut errs = Vec::new();
        if let Err(e) = time_zone(&c.time_zone) {
            errs.push(FieldError {
                field: "time_zone".into(),
                message: e.to_string(),
            });
        }
        if !c.email.contains('@') {
            errs.push(FieldError {
                field: "email".into(),
                message: format!("'{}' is not an e-mail address", c.email),
            });
        }
        if c.name.trim().is_empty() {
            errs.push(FieldError {
                field: "name".into(),
                message: "must not be empty".into(),
            });
        }
        // Stored comma-separated: a tag with a comma (or an empty one) would not read back.
        for (i, l) in c.languages.iter().enumerate() {
            if !is_language_tag(l) {
                errs.push(FieldError {
                    field: format!("languages[{i}]"),
                    message: format!("'{l}' is not a BCP 47 language tag such as en or zh-Hans"),
                });
            }
        }
        if !errs.is_empty() {
            return Err(ServiceError::Invalid(errs));
        }
        self.store
            .insert_contact(&c, &p.username, now)
            .await
            .map_err(|e| match e {
                StoreError::NotFound(m) => ServiceError::invalid("agency", m),
                other => other.into(),
            })?;
        Ok(c)
    }
}

/// A BCP 47 language tag in the simple form `xx(-yyyy)*`: 2-8 letters, then subtags of 1-8
/// letters or digits.
fn is_language_tag(t: &str) -> bool {
    let mut parts = t.split('-');
    let primary = parts.next().unwrap_or("");
    (2..=8).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// What a directory entry must be, wherever it comes from (an admin, a peer's file): a code of
/// 1-32 letters, digits, `-` or `_`, an English name, and a known time zone. `prefix` goes in
/// front of each field name (`agency.` for a peer file).
pub(crate) fn check_agency(a: &Agency, prefix: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if a.code.trim().is_empty()
        || a.code.len() > 32
        || !a
            .code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        errs.push(FieldError {
            field: format!("{prefix}code"),
            message: format!("'{}' must be 1-32 letters, digits, '-' or '_'", a.code),
        });
    }
    if a.name_en.trim().is_empty() {
        errs.push(FieldError {
            field: format!("{prefix}name_en"),
            message: "must not be empty".into(),
        });
    }
    if let Err(e) = time_zone(&a.time_zone) {
        errs.push(FieldError {
            field: format!("{prefix}time_zone"),
            message: e.to_string(),
        });
    }
    errs
}
