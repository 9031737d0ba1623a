//! One mapping of indicator kind and direction to STIX 2.1 patterns and MISP attribute types,
//! used by the exports and the imports alike (docs/intel-formats.md, "Kinds and directions").
//!
//! *Direction* is where the indicator sits in the traffic it is known for: a command-and-control
//! server, a phishing site or a malware host is what victims connect **to** (`Dst`, MISP
//! `ip-dst`); an infected machine, a scanner or a spam source is what traffic comes **from**
//! (`Src`, MISP `ip-src`). Liaison does not store a direction: it follows from the indicator's
//! classification ([`Direction::of`]); an import reads it from the MISP type or the STIX
//! pattern, and uses it only where nothing else names the classification.
//!
//! STIX keeps the direction in the pattern's object path, the way misp-stix writes MISP's
//! directed types: `[network-traffic:dst_ref.type = 'ipv4-addr' AND
//! network-traffic:dst_ref.value = '…' AND network-traffic:protocols[*] = 'ipv4']`; an
//! undirected address is `[ipv4-addr:value = '…']`.

use crate::model::{Classification, IndicatorKind, IndicatorValue};

/// Where an indicator sits in the traffic it is known for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Traffic comes from it (an infected machine, a scanner, a spam source).
    Src,
    /// Victims connect to it (a C2 server, a phishing site, a malware host).
    Dst,
    /// Not known (classification `other`).
    None,
}

impl Direction {
    /// The direction of an indicator of classification `c`.
    pub fn of(c: Classification) -> Direction {
        match c {
            Classification::C2Server
            | Classification::Phishing
            | Classification::MalwareDistribution
            | Classification::Ransomware
            | Classification::Carding
            | Classification::DarknetMarket => Direction::Dst,
            Classification::InfectedSystem
            | Classification::Scanner
            | Classification::Spam
            | Classification::DdosAmplifier
            | Classification::VulnerableSystem => Direction::Src,
            Classification::Other => Direction::None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Src => "src",
            Direction::Dst => "dst",
            Direction::None => "none",
        }
    }
}

/// The hash algorithm of a file-hash value, by its length in hex digits.
pub fn hash_algorithm(hex: &str) -> HashAlgorithm {
    match hex.len() {
        32 => HashAlgorithm::Md5,
        40 => HashAlgorithm::Sha1,
        _ => HashAlgorithm::Sha256,
    }
}

/// The hash algorithms Liaison keeps (see [`IndicatorValue::parse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgorithm {
    Md5,
    Sha1,
    Sha256,
}

impl HashAlgorithm {
    /// The STIX 2.1 hash-algorithm-ov word.
    pub fn stix(self) -> &'static str {
        match self {
            HashAlgorithm::Md5 => "MD5",
            HashAlgorithm::Sha1 => "SHA-1",
            HashAlgorithm::Sha256 => "SHA-256",
        }
    }

    /// The MISP attribute type.
    pub fn misp(self) -> &'static str {
        match self {
            HashAlgorithm::Md5 => "md5",
            HashAlgorithm::Sha1 => "sha1",
            HashAlgorithm::Sha256 => "sha256",
        }
    }

    /// Reads a STIX hash key (`MD5`, `'SHA-256'`, `SHA256`, `sha-1`…).
    pub fn from_stix(key: &str) -> Option<HashAlgorithm> {
        match key.trim_matches('\'').to_ascii_uppercase().replace('-', "").as_str() {
            "MD5" => Some(HashAlgorithm::Md5),
            "SHA1" => Some(HashAlgorithm::Sha1),
            "SHA256" => Some(HashAlgorithm::Sha256),
            _ => None,
        }
    }
}

/// The MISP attribute type and category of an indicator value with a direction.
pub fn misp_type(value: &IndicatorValue, direction: Direction) -> (&'static str, &'static str) {
    const NET: &str = "Network activity";
    const PAYLOAD: &str = "Payload delivery";
    match value {
        IndicatorValue::Ipv4(_) | IndicatorValue::Ipv6(_) | IndicatorValue::Cidr(_) => match direction {
            Direction::Src => ("ip-src", NET),
            // MISP has no undirected address type; ip-dst is what misp-stix makes of an
            // undirected STIX address too.
            Direction::Dst | Direction::None => ("ip-dst", NET),
        },
        IndicatorValue::Asn(_) => ("AS", NET),
        IndicatorValue::Text(IndicatorKind::Domain, _) => ("domain", NET),
        IndicatorValue::Text(IndicatorKind::Url, _) => ("url", NET),
        // A feed's e-mail address is the sender of spam or phishing.
        IndicatorValue::Text(IndicatorKind::Email, _) => ("email-src", PAYLOAD),
        IndicatorValue::Text(IndicatorKind::FileHash, h) => (hash_algorithm(h).misp(), PAYLOAD),
        IndicatorValue::Text(..) => ("text", "Other"),
    }
}

/// What a MISP attribute type says: the indicator kind and the direction. `None` for types
/// Liaison does not keep (the importer counts them as skipped).
pub fn from_misp_type(ty: &str) -> Option<(Option<IndicatorKind>, Direction)> {
    Some(match ty {
        // An address or a network: the value tells IPv4, IPv6 or CIDR.
        "ip-src" => (None, Direction::Src),
        "ip-dst" => (None, Direction::Dst),
        "domain" | "hostname" => (Some(IndicatorKind::Domain), Direction::None),
        "url" | "uri" | "link" => (Some(IndicatorKind::Url), Direction::None),
        "email-src" | "email" => (Some(IndicatorKind::Email), Direction::Src),
        "md5" | "sha1" | "sha256" => (Some(IndicatorKind::FileHash), Direction::None),
        "AS" => (Some(IndicatorKind::Asn), Direction::None),
        _ => return None,
    })
}

/// Escapes a string for a STIX pattern literal (backslash and single quote).
pub fn pattern_literal(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

/// The STIX 2.1 pattern of an indicator value with a direction.
pub fn stix_pattern(value: &IndicatorValue, direction: Direction) -> String {
    let address = |ty: &str, v: String| match direction {
        Direction::None => format!("[{ty}:value = '{v}']"),
        Direction::Src | Direction::Dst => {
            // The protocol term is true of any traffic to or from an address of that family,
            // and it is what lets misp-stix's parser of other tools' STIX keep the direction
            // (it drops a pattern of `*_ref` terms alone: docs/intel-formats.md).
            let r = if direction == Direction::Src {
                "src_ref"
            } else {
                "dst_ref"
            };
            let proto = if ty == "ipv4-addr" { "ipv4" } else { "ipv6" };
            format!(
                "[network-traffic:{r}.type = '{ty}' AND network-traffic:{r}.value = '{v}' AND network-traffic:protocols[*] = '{proto}']"
            )
        }
    };
    match value {
        IndicatorValue::Ipv4(a) => address("ipv4-addr", a.to_string()),
        IndicatorValue::Ipv6(a) => address("ipv6-addr", a.to_string()),
        IndicatorValue::Cidr(ipnet::IpNet::V4(n)) => address("ipv4-addr", n.to_string()),
        IndicatorValue::Cidr(ipnet::IpNet::V6(n)) => address("ipv6-addr", n.to_string()),
        IndicatorValue::Asn(a) => format!("[autonomous-system:number = {a}]"),
        IndicatorValue::Text(kind, s) => {
            let lit = pattern_literal(s);
            match kind {
                IndicatorKind::Domain => format!("[domain-name:value = '{lit}']"),
                IndicatorKind::Url => format!("[url:value = '{lit}']"),
                IndicatorKind::Email => format!("[email-message:from_ref.value = '{lit}']"),
                IndicatorKind::FileHash => format!("[file:hashes.'{}' = '{lit}']", hash_algorithm(s).stix()),
                _ => format!("[url:value = '{lit}']"),
            }
        }
    }
}

/// What a STIX object path names: the indicator kind it holds (`None`: an address, decided by
/// the value) and the direction. `None` for paths Liaison does not keep.
pub fn from_stix_path(object: &str, path: &str) -> Option<(Option<IndicatorKind>, Direction)> {
    Some(match (object, path) {
        ("ipv4-addr" | "ipv6-addr", "value") => (None, Direction::None),
        ("network-traffic", "src_ref.value") => (None, Direction::Src),
        ("network-traffic", "dst_ref.value") => (None, Direction::Dst),
        ("domain-name", "value") => (Some(IndicatorKind::Domain), Direction::None),
        ("url", "value") => (Some(IndicatorKind::Url), Direction::None),
        ("email-addr", "value") => (Some(IndicatorKind::Email), Direction::None),
        ("email-message", "from_ref.value" | "sender_ref.value") => (Some(IndicatorKind::Email), Direction::Src),
        ("autonomous-system", "number") => (Some(IndicatorKind::Asn), Direction::None),
        ("file", p) if p.starts_with("hashes.") => {
            HashAlgorithm::from_stix(&p["hashes.".len()..])?;
            (Some(IndicatorKind::FileHash), Direction::None)
        }
        _ => return None,
    })
}

/// The classification an import gives an indicator when nothing names one: the direction
/// alone does not say what a machine is, so it is `other`.
pub const UNNAMED: Classification = Classification::Other;

/// The MISP taxonomy tag naming a classification: the RSIT taxonomy (`rsit:malicious-code=
/// "c2-server"`, MISP's `rsit` taxonomy, ENISA/TF-CSIRT Reference Security Incident
/// Taxonomy) where it has the value, else Liaison's own `liaison:classification="…"`.
pub fn classification_tag(c: Classification) -> String {
    match c {
        Classification::Ransomware
        | Classification::Carding
        | Classification::DarknetMarket
        | Classification::Other => {
            format!("liaison:classification=\"{}\"", c.as_str())
        }
        _ => format!("rsit:{}=\"{}\"", c.taxonomy(), c.as_str()),
    }
}

/// Reads a classification from a MISP tag written by [`classification_tag`] (or any RSIT
/// tag whose value Liaison knows).
pub fn classification_from_tag(tag: &str) -> Option<Classification> {
    let (ns, rest) = tag.split_once(':')?;
    if !(ns.eq_ignore_ascii_case("rsit") || ns.eq_ignore_ascii_case("liaison")) {
        return None;
    }
    let (_, value) = rest.split_once('=')?;
    Classification::parse_lenient(value.trim().trim_matches('"'))
}

/// The MISP tag of a TLP 2.0 label (`tlp:amber+strict`), as MISP's `tlp` taxonomy writes it.
pub fn tlp_tag(tlp: liaison_core::Tlp) -> String {
    tlp.as_str().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_and_direction_maps_both_ways() {
        let values = [
            IndicatorValue::parse(IndicatorKind::Ipv4, "203.0.113.7").unwrap(),
            IndicatorValue::parse(IndicatorKind::Ipv6, "2001:db8::1").unwrap(),
            IndicatorValue::parse(IndicatorKind::Cidr, "198.51.100.0/24").unwrap(),
            IndicatorValue::parse(IndicatorKind::Domain, "evil.example").unwrap(),
            IndicatorValue::parse(IndicatorKind::Url, "http://evil.example/x").unwrap(),
            IndicatorValue::parse(IndicatorKind::Email, "spam@evil.example").unwrap(),
            IndicatorValue::parse(IndicatorKind::FileHash, &"a".repeat(32)).unwrap(),
            IndicatorValue::parse(IndicatorKind::FileHash, &"b".repeat(40)).unwrap(),
            IndicatorValue::parse(IndicatorKind::FileHash, &"c".repeat(64)).unwrap(),
            IndicatorValue::parse(IndicatorKind::Asn, "AS64500").unwrap(),
        ];
        for v in &values {
            for d in [Direction::Src, Direction::Dst, Direction::None] {
                let (ty, _) = misp_type(v, d);
                let (kind, md) = from_misp_type(ty).unwrap();
                assert!(kind.is_none_or(|k| k == v.kind()), "{ty} for {v}");
                if matches!(
                    v.kind(),
                    IndicatorKind::Ipv4 | IndicatorKind::Ipv6 | IndicatorKind::Cidr
                ) {
                    assert_eq!(
                        md,
                        if d == Direction::Src {
                            Direction::Src
                        } else {
                            Direction::Dst
                        }
                    );
                }
                let p = stix_pattern(v, d);
                assert!(p.starts_with('[') && p.ends_with(']'), "{p}");
            }
        }
        assert_eq!(
            stix_pattern(&values[0], Direction::Src),
            "[network-traffic:src_ref.type = 'ipv4-addr' AND network-traffic:src_ref.value = '203.0.113.7' AND network-traffic:protocols[*] = 'ipv4']"
        );
        assert_eq!(
            stix_pattern(&values[0], Direction::None),
            "[ipv4-addr:value = '203.0.113.7']"
        );
        assert_eq!(
            stix_pattern(&values[8], Direction::None),
            format!("[file:hashes.'SHA-256' = '{}']", "c".repeat(64))
        );
    }

    #[test]
    fn classification_tags_round_trip() {
        for c in Classification::ALL {
            assert_eq!(classification_from_tag(&classification_tag(c)), Some(c), "{c}");
        }
        assert_eq!(
            classification_tag(Classification::C2Server),
            "rsit:malicious-code=\"c2-server\""
        );
        assert_eq!(classification_from_tag("tlp:amber"), None);
        assert_eq!(classification_from_tag("misp:tool=\"x\""), None);
    }

    #[test]
    fn directions_follow_the_classification() {
        assert_eq!(Direction::of(Classification::C2Server), Direction::Dst);
        assert_eq!(Direction::of(Classification::InfectedSystem), Direction::Src);
        assert_eq!(Direction::of(Classification::Other), Direction::None);
    }
}
