//! Traffic Light Protocol 2.0 markings (FIRST, August 2022).
//!
//! TLP says how far information may travel. Liaison attaches a marking to every
//! indicator, notice and message; sharing code uses [`Tlp::allows`] to decide
//! whether an audience may receive it.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A TLP 2.0 label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Tlp {
    /// TLP:CLEAR — no limit on disclosure.
    #[serde(rename = "TLP:CLEAR")]
    Clear,
    /// TLP:GREEN — the recipient's community, not public channels.
    #[serde(rename = "TLP:GREEN")]
    Green,
    /// TLP:AMBER — the recipient's organisation and its clients, need to know.
    #[serde(rename = "TLP:AMBER")]
    Amber,
    /// TLP:AMBER+STRICT — the recipient's organisation only.
    #[serde(rename = "TLP:AMBER+STRICT")]
    AmberStrict,
    /// TLP:RED — the named recipients only.
    #[serde(rename = "TLP:RED")]
    Red,
}

/// Who would receive a piece of information, from the widest to the narrowest audience.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Audience {
    /// Anyone, including publication.
    Public,
    /// A trusted community (for example the CERT community, a federation of partners).
    Community,
    /// The recipient organisation and the clients it serves.
    OrganisationAndClients,
    /// The recipient organisation only.
    Organisation,
    /// Only the individuals the sender named.
    NamedRecipients,
}

impl Tlp {
    /// All labels, from least to most restrictive.
    pub const ALL: [Tlp; 5] = [Tlp::Clear, Tlp::Green, Tlp::Amber, Tlp::AmberStrict, Tlp::Red];

    /// The label as written in TLP 2.0 (`TLP:AMBER+STRICT`).
    pub fn as_str(self) -> &'static str {
        match self {
            Tlp::Clear => "TLP:CLEAR",
            Tlp::Green => "TLP:GREEN",
            Tlp::Amber => "TLP:AMBER",
            Tlp::AmberStrict => "TLP:AMBER+STRICT",
            Tlp::Red => "TLP:RED",
        }
    }

    /// Whether information with this label may be shared with `audience`.
    pub fn allows(self, audience: Audience) -> bool {
        let widest = match self {
            Tlp::Clear => Audience::Public,
            Tlp::Green => Audience::Community,
            Tlp::Amber => Audience::OrganisationAndClients,
            Tlp::AmberStrict => Audience::Organisation,
            Tlp::Red => Audience::NamedRecipients,
        };
        audience >= widest
    }

    /// The more restrictive of two labels: combining data keeps the stricter marking.
    pub fn stricter(self, other: Tlp) -> Tlp {
        self.max(other)
    }
}

impl fmt::Display for Tlp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not a TLP 2.0 label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a TLP 2.0 label (expected CLEAR, GREEN, AMBER, AMBER+STRICT or RED)")]
pub struct TlpParseError(pub String);

impl FromStr for Tlp {
    type Err = TlpParseError;

    /// Accepts `TLP:AMBER+STRICT`, `amber+strict`, and the TLP 1.0 `WHITE` (mapped to CLEAR).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let bare = t.strip_prefix("TLP:").or_else(|| t.strip_prefix("tlp:")).unwrap_or(t);
        match bare.to_ascii_uppercase().replace(' ', "").as_str() {
            "CLEAR" | "WHITE" => Ok(Tlp::Clear),
            "GREEN" => Ok(Tlp::Green),
            "AMBER" => Ok(Tlp::Amber),
            "AMBER+STRICT" | "AMBER-STRICT" => Ok(Tlp::AmberStrict),
            "RED" => Ok(Tlp::Red),
            _ => Err(TlpParseError(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_labels_and_legacy_white() {
        assert_eq!("TLP:AMBER+STRICT".parse::<Tlp>().unwrap(), Tlp::AmberStrict);
        assert_eq!("white".parse::<Tlp>().unwrap(), Tlp::Clear);
        assert_eq!("tlp:red".parse::<Tlp>().unwrap(), Tlp::Red);
        assert!("TLP:PURPLE".parse::<Tlp>().is_err());
    }

    #[test]
    fn sharing_rules_follow_tlp2() {
        assert!(Tlp::Clear.allows(Audience::Public));
        assert!(!Tlp::Green.allows(Audience::Public));
        assert!(Tlp::Green.allows(Audience::Community));
        assert!(!Tlp::Amber.allows(Audience::Community));
        assert!(Tlp::Amber.allows(Audience::OrganisationAndClients));
        assert!(!Tlp::AmberStrict.allows(Audience::OrganisationAndClients));
        assert!(Tlp::AmberStrict.allows(Audience::Organisation));
        assert!(!Tlp::Red.allows(Audience::Organisation));
        assert!(Tlp::Red.allows(Audience::NamedRecipients));
        assert_eq!(Tlp::Green.stricter(Tlp::Amber), Tlp::Amber);
    }

    #[test]
    fn serde_uses_tlp2_spelling() {
        assert_eq!(
            serde_json::to_string(&Tlp::AmberStrict).unwrap(),
            "\"TLP:AMBER+STRICT\""
        );
    }
}
