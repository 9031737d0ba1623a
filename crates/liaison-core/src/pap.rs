//! The Permissible Actions Protocol (PAP): what the recipient of an indicator may *do* with
//! it, as TLP says how far it may travel. Four levels, as in MISP's `PAP` taxonomy (version 3)
//! and the STIX 2.1 PAP marking definition (OASIS, 2022):
//!
//! - `PAP:RED`: non-detectable actions only: passive use on the recipient's own logs, nothing
//!   on the network that the adversary could notice;
//! - `PAP:AMBER`: passive cross-checks as well: look-ups with third-party services (whois,
//!   passive DNS), a monitoring honeypot; no contact with the target;
//! - `PAP:GREEN`: active actions allowed: ping the target, block traffic to or from it, take
//!   it down or have its operator clean it;
//! - `PAP:CLEAR`: no restriction (`PAP:WHITE` in older texts).
//!
//! Liaison carries a PAP on clean-up notices (docs/markings.md): the issuing analyst says what
//! the partner may do about the listed machines. The node cannot police actions taken outside
//! it; it keeps the level, shows it next to every item, never lowers it, and carries it in
//! every export.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A PAP level, ordered from the least to the most restrictive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Pap {
    /// PAP:CLEAR: no restriction on use.
    #[serde(rename = "PAP:CLEAR")]
    Clear,
    /// PAP:GREEN: active actions allowed.
    #[serde(rename = "PAP:GREEN")]
    Green,
    /// PAP:AMBER: passive cross-checks only.
    #[serde(rename = "PAP:AMBER")]
    Amber,
    /// PAP:RED: non-detectable actions only.
    #[serde(rename = "PAP:RED")]
    Red,
}

impl Pap {
    /// All levels, from the least to the most restrictive.
    pub const ALL: [Pap; 4] = [Pap::Clear, Pap::Green, Pap::Amber, Pap::Red];

    /// The label as written (`PAP:AMBER`).
    pub fn as_str(self) -> &'static str {
        match self {
            Pap::Clear => "PAP:CLEAR",
            Pap::Green => "PAP:GREEN",
            Pap::Amber => "PAP:AMBER",
            Pap::Red => "PAP:RED",
        }
    }

    /// Whether the recipient may act on the network in a way the target could notice
    /// (block, probe, take down, have the machine cleaned).
    pub fn allows_active(self) -> bool {
        self <= Pap::Green
    }

    /// What the level permits, in one English sentence (for exports and the CLI).
    pub fn meaning(self) -> &'static str {
        match self {
            Pap::Clear => "no restriction on use",
            Pap::Green => "active actions allowed: block, probe, take down or have the machine cleaned",
            Pap::Amber => "passive cross-checks only (third-party look-ups, monitoring); no contact with the target",
            Pap::Red => "non-detectable actions only: passive use on your own logs, nothing on the network",
        }
    }

    /// The same in Chinese.
    pub fn meaning_zh(self) -> &'static str {
        match self {
            Pap::Clear => "使用不受限制",
            Pap::Green => "允许主动处置：封堵、探测、下线或要求运营者清除",
            Pap::Amber => "仅限被动核查（第三方查询、监测）；不得接触目标",
            Pap::Red => "仅限不可被察觉的行动：只在本方日志中被动使用，不得在网络上采取行动",
        }
    }
}

impl fmt::Display for Pap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not a PAP level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a PAP level (expected PAP:CLEAR, PAP:GREEN, PAP:AMBER or PAP:RED)")]
pub struct PapParseError(pub String);

impl FromStr for Pap {
    type Err = PapParseError;

    /// Accepts `PAP:AMBER`, `amber`, and the older `WHITE` (read as CLEAR).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let bare = t.strip_prefix("PAP:").or_else(|| t.strip_prefix("pap:")).unwrap_or(t);
        match bare.to_ascii_uppercase().as_str() {
            "CLEAR" | "WHITE" => Ok(Pap::Clear),
            "GREEN" => Ok(Pap::Green),
            "AMBER" => Ok(Pap::Amber),
            "RED" => Ok(Pap::Red),
            _ => Err(PapParseError(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_levels_and_the_older_white() {
        assert_eq!("PAP:AMBER".parse::<Pap>().unwrap(), Pap::Amber);
        assert_eq!("red".parse::<Pap>().unwrap(), Pap::Red);
        assert_eq!("PAP:WHITE".parse::<Pap>().unwrap(), Pap::Clear);
        let e = "TLP:RED".parse::<Pap>().unwrap_err();
        assert!(e.to_string().contains("'TLP:RED' is not a PAP level"), "{e}");
    }

    #[test]
    fn order_and_active_use() {
        assert!(Pap::Red > Pap::Amber && Pap::Amber > Pap::Green && Pap::Green > Pap::Clear);
        assert!(Pap::Green.allows_active() && Pap::Clear.allows_active());
        assert!(!Pap::Amber.allows_active() && !Pap::Red.allows_active());
        assert_eq!(serde_json::to_string(&Pap::Amber).unwrap(), "\"PAP:AMBER\"");
        for p in Pap::ALL {
            assert_eq!(p.as_str().parse::<Pap>().unwrap(), p);
        }
    }
}
