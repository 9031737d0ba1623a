//! Assistance requests: what is asked, of whom, about whom, and on what basis.
//!
//! The shape follows the Council of Europe T-CY templates for Art 29/30 preservation and
//! Art 31 subscriber-information requests (T-CY(2018)10): authorities on both sides, case
//! reference, offences, summary of facts, the data sought and its relation to the offence,
//! earlier related requests, and the legal basis.

use crate::ids::{AgencyId, RequestId};
use crate::lifecycle::State;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The snake_case name used in JSON, the CLI and the database.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = crate::UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(crate::UnknownValue {
                        what: stringify!($name),
                        value: s.to_string(),
                        expected: &[$($text),+],
                    }),
                }
            }
        }
    };
}
pub(crate) use string_enum;

string_enum! {
    /// What the requesting agency asks the requested agency to do.
    RequestKind {
        /// Art 29 Budapest: freeze stored data until a formal request follows.
        ExpeditedPreservation = "expedited_preservation",
        /// Art 30 Budapest: disclose enough traffic data to identify the path.
        ExpeditedTrafficDisclosure = "expedited_traffic_disclosure",
        SubscriberInformation = "subscriber_information",
        TrafficData = "traffic_data",
        StoredContent = "stored_content",
        RealtimeTrafficData = "realtime_traffic_data",
        FinancialRecords = "financial_records",
        DomainRegistrationData = "domain_registration_data",
        Takedown = "takedown",
        /// Art 26 Budapest: information forwarded without a request.
        SpontaneousInformation = "spontaneous_information",
        OtherMutualAssistance = "other_mutual_assistance",
    }
}

impl RequestKind {
    /// Preservation requests have their own branch of the lifecycle (preserved, extended, …).
    pub fn is_preservation(self) -> bool {
        matches!(self, RequestKind::ExpeditedPreservation)
    }

    /// The data categories a request of this kind asks for by default.
    pub fn default_categories(self) -> &'static [DataCategory] {
        use DataCategory::*;
        match self {
            RequestKind::ExpeditedPreservation => &[SubscriberInformation, TrafficData, StoredContent],
            RequestKind::ExpeditedTrafficDisclosure | RequestKind::TrafficData => &[TrafficData],
            RequestKind::SubscriberInformation => &[SubscriberInformation],
            RequestKind::StoredContent => &[StoredContent],
            RequestKind::RealtimeTrafficData => &[RealtimeTrafficData],
            RequestKind::FinancialRecords => &[FinancialRecords],
            RequestKind::DomainRegistrationData => &[DomainRegistrationData],
            RequestKind::Takedown | RequestKind::SpontaneousInformation | RequestKind::OtherMutualAssistance => &[],
        }
    }
}

string_enum! {
    /// How fast the requesting side needs an answer.
    Urgency {
        /// Significant and imminent risk to the life or safety of a person (CETS 224 Art 3(2)(c)).
        Emergency = "emergency",
        Urgent = "urgent",
        Routine = "routine",
    }
}

string_enum! {
    /// Categories of data, after Budapest Art 1(d), 18(3) and Reg (EU) 2023/1543 Art 3.
    DataCategory {
        SubscriberInformation = "subscriber_information",
        /// IP address, port and time used only to identify a user (Reg 2023/1543 Art 3(10)).
        IdentificationData = "identification_data",
        TrafficData = "traffic_data",
        StoredContent = "stored_content",
        RealtimeTrafficData = "realtime_traffic_data",
        RealtimeContent = "realtime_content",
        FinancialRecords = "financial_records",
        DomainRegistrationData = "domain_registration_data",
    }
}

fn de_ip<'de, D: serde::Deserializer<'de>>(d: D) -> Result<IpAddr, D::Error> {
    let s = String::deserialize(d)?;
    s.trim()
        .parse()
        .map_err(|_| serde::de::Error::custom(format!("address: '{s}' is not an IPv4 or IPv6 address")))
}

fn instant(s: &str, field: &str) -> Result<jiff::Timestamp, String> {
    s.parse()
        .map_err(|_| format!("{field}'{s}' is not an RFC 3339 instant with offset (e.g. 2026-01-31T12:00:00Z)"))
}

fn de_observed_at<'de, D: serde::Deserializer<'de>>(d: D) -> Result<jiff::Timestamp, D::Error> {
    let s = String::deserialize(d)?;
    instant(&s, "observed_at: ").map_err(serde::de::Error::custom)
}

/// Deserializes an RFC 3339 instant with an error that quotes the value.
pub fn de_instant<'de, D: serde::Deserializer<'de>>(d: D) -> Result<jiff::Timestamp, D::Error> {
    let s = String::deserialize(d)?;
    instant(&s, "").map_err(serde::de::Error::custom)
}

/// A typed target of a request: whose data, which machine, which account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TargetValue {
    /// An IP address, with the source port where carrier-grade NAT makes it necessary.
    Ip {
        #[serde(deserialize_with = "de_ip")]
        address: IpAddr,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        port: Option<u16>,
        /// The instant the address was used (RFC 3339 with offset), required to identify a user.
        #[serde(deserialize_with = "de_observed_at")]
        observed_at: jiff::Timestamp,
        /// The time zone the original log was kept in (IANA name), if known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        zone: Option<String>,
    },
    Domain {
        name: String,
    },
    Url {
        url: String,
    },
    Email {
        address: String,
    },
    Account {
        service: String,
        identifier: String,
    },
    Phone {
        number: String,
    },
    CryptoWallet {
        currency: String,
        address: String,
    },
    BankAccount {
        institution: String,
        identifier: String,
    },
}

impl TargetValue {
    /// Every type's name as written in JSON (`"type": "ip"`), in the order forms offer them.
    pub const TYPES: [&'static str; 8] = [
        "ip",
        "domain",
        "url",
        "email",
        "account",
        "phone",
        "crypto_wallet",
        "bank_account",
    ];

    /// This target's type name (one of [`TargetValue::TYPES`]).
    pub fn type_name(&self) -> &'static str {
        match self {
            TargetValue::Ip { .. } => "ip",
            TargetValue::Domain { .. } => "domain",
            TargetValue::Url { .. } => "url",
            TargetValue::Email { .. } => "email",
            TargetValue::Account { .. } => "account",
            TargetValue::Phone { .. } => "phone",
            TargetValue::CryptoWallet { .. } => "crypto_wallet",
            TargetValue::BankAccount { .. } => "bank_account",
        }
    }
}

/// A target with the period for which data is sought.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// What the target is.
    pub value: TargetValue,
    /// Start of the period of interest.
    #[serde(deserialize_with = "de_instant")]
    pub from: jiff::Timestamp,
    /// End of the period of interest.
    #[serde(deserialize_with = "de_instant")]
    pub until: jiff::Timestamp,
    /// The service provider holding the data, where known: its country of establishment
    /// decides direct-provider paths (voluntary preservation and disclosure, CLOUD Act
    /// agreements) and whether EU e-Evidence orders reach it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
}

/// A service provider (mail host, platform, hosting company, bank) as the requester knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    /// Its name as the requester knows it (`ExampleMail Inc.`).
    pub name: String,
    /// Country of its main establishment (ISO 3166-1 alpha-2).
    pub established_in: crate::CountryCode,
    /// Whether it offers services in the European Union (Reg (EU) 2023/1543 Art 2-3: then a
    /// European Production or Preservation Order can reach it wherever it is established).
    #[serde(default)]
    pub offers_services_in_eu: bool,
}

/// Metadata of an attached document; the content itself travels separately and is verified by hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentMeta {
    pub file_name: String,
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
    pub size: u64,
    pub media_type: String,
}

/// A request as the requesting officer writes it (the input to create and to assess).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestDraft {
    pub kind: RequestKind,
    pub urgency: Urgency,
    pub requesting_agency: AgencyId,
    pub requested_agency: AgencyId,
    /// The requesting side's own case number.
    pub case_reference: String,
    /// Offence codes from the taxonomy (`rules/offences.toml`).
    pub offences: Vec<String>,
    pub summary: String,
    #[serde(default)]
    pub targets: Vec<Target>,
    /// Data sought; defaults to what the kind implies.
    #[serde(default)]
    pub data_categories: Vec<DataCategory>,
    /// The requesting side's domestic legal basis and the instrument invoked.
    #[serde(default)]
    pub legal_basis: String,
    /// Earlier requests in the same case (for example the preservation this request follows up).
    #[serde(default)]
    pub related: Vec<RequestId>,
    #[serde(default)]
    pub attachments: Vec<AttachmentMeta>,
    /// Amount involved, in the requesting side's currency units, where thresholds matter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Amount>,
    /// Facts that qualify an offence (for example `possession_only`, `distribution`), used by the legal engine.
    #[serde(default)]
    pub conduct: Vec<String>,
    /// How far the request may travel (docs/markings.md). A new draft without one gets the
    /// node's configured default; a stored request without one (written before markings
    /// existed) reads as `TLP:AMBER+STRICT` ([`RequestDraft::marking`]).
    #[serde(default, rename = "marking", skip_serializing_if = "Option::is_none")]
    pub marking_set: Option<crate::marking::Marking>,
}

/// A sum of money with its ISO 4217 currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Amount {
    /// Exact decimal; written in JSON as a string (`"2500.5"`), read from a string or a number.
    pub value: crate::money::Decimal,
    pub currency: String,
}

/// A stored request: the draft plus its state, version and key instants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssistanceRequest {
    pub id: RequestId,
    #[serde(flatten)]
    pub draft: RequestDraft,
    pub state: State,
    /// Optimistic-concurrency version; every change increments it.
    pub version: i64,
    pub created_at: jiff::Timestamp,
    pub updated_at: jiff::Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<jiff::Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<jiff::Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<jiff::Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack_due: Option<jiff::Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_due: Option<jiff::Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserved_until: Option<jiff::Timestamp>,
    /// While information is asked for (`needs_information`): when the requesting side must
    /// have supplied it. Never sent to a peer in `request_submitted` (a submitted request has
    /// none); the `needs_information` transition carries it in its data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub information_due: Option<jiff::Timestamp>,
}

/// A field of a draft that fails validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// JSON path of the field (`targets[2].until`).
    pub field: String,
    pub message: String,
}

impl RequestDraft {
    /// The request's marking: the one set, else what rows written before markings existed
    /// are read as ([`crate::marking::Marking::upgrade_default`]).
    pub fn marking(&self) -> crate::marking::Marking {
        self.marking_set.clone().unwrap_or_default()
    }

    /// Checks what the type system cannot: non-empty texts, ordered time windows, sane hashes.
    /// Returns every problem, not just the first.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let mut bad = |field: String, message: &str| {
            errs.push(FieldError {
                field,
                message: message.to_string(),
            })
        };
        if self.case_reference.trim().is_empty() {
            bad("case_reference".into(), "must not be empty");
        }
        if let Some(Err(e)) = self.marking_set.as_ref().map(|m| m.validate()) {
            bad("marking".into(), &e.to_string());
        }
        if self.case_reference.len() > 200 {
            bad("case_reference".into(), "must be at most 200 characters");
        }
        if self.summary.trim().is_empty() {
            bad("summary".into(), "must not be empty: give a brief summary of the facts");
        }
        if self.summary.len() > 20_000 {
            bad("summary".into(), "must be at most 20000 bytes");
        }
        if let Some(a) = &self.amount
            && !(a.currency.len() == 3 && a.currency.bytes().all(|b| b.is_ascii_uppercase()))
        {
            bad(
                "amount.currency".into(),
                "must be an ISO 4217 code: three capital letters, e.g. USD, CNY, EUR",
            );
        }
        if self.requesting_agency == self.requested_agency {
            bad("requested_agency".into(), "must differ from requesting_agency");
        }
        if self.offences.is_empty() && self.kind != RequestKind::SpontaneousInformation {
            bad("offences".into(), "name at least one offence code");
        }
        for (i, t) in self.targets.iter().enumerate() {
            if t.until < t.from {
                bad(format!("targets[{i}].until"), "is before targets[].from");
            }
            if let Some(p) = &t.provider {
                if p.name.trim().is_empty() {
                    bad(format!("targets[{i}].provider.name"), "must not be empty");
                } else if p.name.chars().count() > 200 {
                    bad(format!("targets[{i}].provider.name"), "must be at most 200 characters");
                } else if p.name.chars().any(char::is_control) {
                    bad(
                        format!("targets[{i}].provider.name"),
                        "must not contain control characters",
                    );
                }
            }
            match &t.value {
                TargetValue::Domain { name } if !is_domain(name) => {
                    bad(format!("targets[{i}].name"), "is not a domain name")
                }
                TargetValue::Email { address } if !address.contains('@') => {
                    bad(format!("targets[{i}].address"), "is not an e-mail address")
                }
                TargetValue::Url { url } if !(url.starts_with("http://") || url.starts_with("https://")) => {
                    bad(format!("targets[{i}].url"), "must start with http:// or https://")
                }
                TargetValue::Ip { zone: Some(z), .. } if jiff::tz::TimeZone::get(z).is_err() => {
                    bad(format!("targets[{i}].zone"), "is not an IANA time zone")
                }
                _ => {}
            }
        }
        for (i, a) in self.attachments.iter().enumerate() {
            if a.sha256.len() != 64 || !a.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                bad(format!("attachments[{i}].sha256"), "must be 64 hex digits");
            }
        }
        errs
    }

    /// The categories sought: the explicit list, or the kind's default.
    pub fn effective_categories(&self) -> Vec<DataCategory> {
        if self.data_categories.is_empty() {
            self.kind.default_categories().to_vec()
        } else {
            self.data_categories.clone()
        }
    }
}

fn is_domain(name: &str) -> bool {
    let n = name.trim_end_matches('.');
    !n.is_empty()
        && n.len() <= 253
        && n.contains('.')
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b >= 0x80)
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_type_names_are_the_json_tags() {
        let samples = [
            r#"{"type":"ip","address":"192.0.2.1","observed_at":"2026-01-01T00:00:00Z"}"#,
            r#"{"type":"domain","name":"example.com"}"#,
            r#"{"type":"url","url":"https://example.com/"}"#,
            r#"{"type":"email","address":"a@example.com"}"#,
            r#"{"type":"account","service":"x","identifier":"y"}"#,
            r#"{"type":"phone","number":"+1"}"#,
            r#"{"type":"crypto_wallet","currency":"BTC","address":"bc1"}"#,
            r#"{"type":"bank_account","institution":"b","identifier":"1"}"#,
        ];
        let names: Vec<&str> = samples
            .iter()
            .map(|j| serde_json::from_str::<TargetValue>(j).unwrap().type_name())
            .collect();
        assert_eq!(names, TargetValue::TYPES);
    }

    fn draft() -> RequestDraft {
        RequestDraft {
            kind: RequestKind::SubscriberInformation,
            urgency: Urgency::Routine,
            requesting_agency: AgencyId::new(),
            requested_agency: AgencyId::new(),
            case_reference: "FBI-2026-0042".into(),
            offences: vec!["BC-08".into()],
            summary: "Phishing campaign".into(),
            targets: vec![],
            data_categories: vec![],
            legal_basis: String::new(),
            related: vec![],
            attachments: vec![],
            amount: None,
            conduct: vec![],
            marking_set: None,
        }
    }

    #[test]
    fn valid_draft_has_no_errors() {
        assert!(draft().validate().is_empty());
    }

    #[test]
    fn reports_every_bad_field() {
        let mut d = draft();
        d.summary = " ".into();
        d.targets.push(Target {
            value: TargetValue::Domain {
                name: "not a domain".into(),
            },
            from: "2026-01-02T00:00:00Z".parse().unwrap(),
            until: "2026-01-01T00:00:00Z".parse().unwrap(),
            provider: None,
        });
        let fields: Vec<_> = d.validate().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["summary", "targets[0].until", "targets[0].name"]);
    }

    #[test]
    fn unknown_fields_and_values_are_rejected() {
        let json = r#"{"kind":"subscriber_information","urgency":"routine","requesting_agency":"0190a0b0-0000-7000-8000-000000000001","requested_agency":"0190a0b0-0000-7000-8000-000000000002","case_reference":"x","offences":["BC-02"],"summary":"s","colour":"red"}"#;
        let err = serde_json::from_str::<RequestDraft>(json).unwrap_err().to_string();
        assert!(err.contains("colour"), "{err}");
        let ip = r#"{"value":{"type":"ip","address":"300.1.1.1","observed_at":"2026-01-01T00:00:00Z"},"from":"2026-01-01T00:00:00Z","until":"2026-01-01T00:00:00Z"}"#;
        assert!(serde_json::from_str::<Target>(ip).is_err());
    }

    #[test]
    fn kind_parses_with_helpful_error() {
        let e = "preservation".parse::<RequestKind>().unwrap_err();
        assert!(e.to_string().contains("expedited_preservation"));
    }
}
