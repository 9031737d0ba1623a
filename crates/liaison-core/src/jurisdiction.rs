//! Jurisdictions, identified by ISO 3166-1 alpha-2 country codes.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The officially assigned ISO 3166-1 alpha-2 codes (249 entries), plus `EU` for the
/// European Union, which several instruments (e-Evidence Regulation) treat as one legal space.
const ASSIGNED: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ \
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR \
GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP \
KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT \
MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW \
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG \
UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// A validated ISO 3166-1 alpha-2 code, upper case (`CN`, `US`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode([u8; 2]);

/// A string that is not an assigned ISO 3166-1 alpha-2 code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not an ISO 3166-1 alpha-2 country code")]
pub struct CountryCodeError(pub String);

impl CountryCode {
    /// Parses and validates a code; lower case is accepted and upper-cased.
    pub fn parse(s: &str) -> Result<Self, CountryCodeError> {
        let b = s.trim().as_bytes();
        if b.len() != 2 || !b.iter().all(u8::is_ascii_alphabetic) {
            return Err(CountryCodeError(s.to_string()));
        }
        let code = [b[0].to_ascii_uppercase(), b[1].to_ascii_uppercase()];
        let is_assigned = ASSIGNED.split(' ').any(|c| c.as_bytes() == code.as_slice());
        if is_assigned || &code == b"EU" {
            Ok(CountryCode(code))
        } else {
            Err(CountryCodeError(s.to_string()))
        }
    }

    /// The code as a `&str`.
    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }

    /// Every assigned code, in alphabetical order.
    pub fn all() -> impl Iterator<Item = CountryCode> {
        ASSIGNED.split(' ').filter_map(|c| CountryCode::parse(c).ok())
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountryCode({})", self.as_str())
    }
}

impl FromStr for CountryCode {
    type Err = CountryCodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CountryCode::parse(s)
    }
}

impl Serialize for CountryCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CountryCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        CountryCode::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A jurisdiction as shown in the directory: code and names in English and Chinese.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jurisdiction {
    pub code: CountryCode,
    pub name_en: String,
    pub name_zh: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_has_every_assigned_code() {
        assert_eq!(CountryCode::all().count(), 249);
    }

    #[test]
    fn validates_codes() {
        assert_eq!(CountryCode::parse("cn").unwrap().as_str(), "CN");
        assert!(CountryCode::parse("XX").is_err());
        assert!(CountryCode::parse("USA").is_err());
        assert!(CountryCode::parse("").is_err());
        assert!(CountryCode::parse("EU").is_ok());
        let err: Result<CountryCode, _> = serde_json::from_str("\"ZZ\"");
        assert!(err.unwrap_err().to_string().contains("ZZ"));
    }
}
