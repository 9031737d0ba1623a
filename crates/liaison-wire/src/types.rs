//! Small wire types: node ids, message ids, hashes, signatures, timestamps, strict parsing.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// The newest protocol version this implementation speaks, carried in every signed object
/// it creates for a peer that speaks it too (docs/federation.md §3.4).
///
/// - 1: the first version.
/// - 2: amounts in `request_submitted` are decimal strings (`"2500.5"`); version numbers are
///   negotiated (a node sends the lower of its own and the peer's version, and accepts every
///   version from [`MIN_PROTOCOL_VERSION`] to this one).
/// - 3: a target of `request_submitted` may name its `provider`.
/// - 4: markings (TLP 2.0 on requests and comments, the `marking` payload; docs/markings.md) and
///   clean-up notices over federation (`cleanup_notice`, `cleanup_status`).
/// - 5: evidence transfer (`evidence_manifest`, `evidence_result`, the bulk channel:
///   docs/federation.md §12) and PAP on clean-up notices (`cleanup_notice.pap`, §11.1).
/// - 6: the sender's reference of a request in `request_submitted` (`reference`, §10.3).
/// - 7: joint cases (`case_update`, `case_action`: docs/federation.md §13).
pub const PROTOCOL_VERSION: u32 = 7;

/// The oldest protocol version this implementation still accepts and can send.
pub const MIN_PROTOCOL_VERSION: u32 = 1;

/// Whether this implementation accepts a signed object of protocol version `v`.
pub fn version_supported(v: u32) -> bool {
    (MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&v)
}

/// The version to speak with a peer whose descriptor says `peer_version`: the newer of the
/// two that both know, or `None` when the peer is older than [`MIN_PROTOCOL_VERSION`].
pub fn negotiate(peer_version: u32) -> Option<u32> {
    let v = peer_version.min(PROTOCOL_VERSION);
    (v >= MIN_PROTOCOL_VERSION).then_some(v)
}

/// The identifier of a federation node: 1–63 characters of `a-z 0-9 . -`, starting with a
/// letter or digit (e.g. `de-bka`, `cn-mps.cyber`). Chosen by the operator, stable for the
/// life of the node, and unique within a federation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(String);

/// A string that is not a valid node id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a node id (1-63 characters of a-z, 0-9, '.', '-', starting with a letter or digit)")]
pub struct NodeIdError(pub String);

impl NodeId {
    /// Parses a node id.
    pub fn parse(s: &str) -> Result<Self, NodeIdError> {
        let ok = !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            && s.as_bytes()[0].is_ascii_alphanumeric();
        if ok {
            Ok(NodeId(s.to_string()))
        } else {
            Err(NodeIdError(s.to_string()))
        }
    }

    /// The id as a `&str`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for NodeId {
    type Err = NodeIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NodeId::parse(s)
    }
}

impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        NodeId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The id of one federation message: a UUIDv7, chosen by the sender, kept across retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(pub uuid::Uuid);

impl MessageId {
    /// A new time-ordered id (reads the system clock through the `uuid` crate).
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        MessageId(uuid::Uuid::now_v7())
    }

    /// Whether this is a version 7 UUID, as the protocol requires.
    pub fn is_v7(&self) -> bool {
        self.0.get_version_num() == 7
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for MessageId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s).map(MessageId)
    }
}

/// Fixed-size bytes encoded on the wire as lower-case hex (parsing rejects upper case so that
/// every value has exactly one encoding).
macro_rules! hex_bytes {
    ($(#[$meta:meta])* $name:ident, $len:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Lower-case hex.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// Parses exactly `2 × len` lower-case hex digits.
            pub fn from_hex(s: &str) -> Result<Self, HexError> {
                if s.len() != 2 * $len || s.bytes().any(|b| b.is_ascii_uppercase()) {
                    return Err(HexError { expected: $len, got: s.to_string() });
                }
                let mut b = [0u8; $len];
                hex::decode_to_slice(s, &mut b)
                    .map_err(|_| HexError { expected: $len, got: s.to_string() })?;
                Ok($name(b))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::from_hex(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// Hex that is not the expected length or not lower-case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected} bytes as {} lower-case hex digits, got '{got}'", 2 * expected)]
pub struct HexError {
    pub expected: usize,
    pub got: String,
}

hex_bytes!(
    /// A SHA-256 digest.
    Hash256,
    32
);
hex_bytes!(
    /// An Ed25519 signature (64 bytes).
    SignatureBytes,
    64
);
hex_bytes!(
    /// An Ed25519 public key (32 bytes).
    PublicKeyBytes,
    32
);

impl Hash256 {
    /// SHA-256 of `data`.
    pub fn digest(data: &[u8]) -> Self {
        Hash256(Sha256::digest(data).into())
    }
}

/// RFC 3339 timestamps in UTC with exactly three fractional digits
/// (`2026-11-22T10:37:41.123Z`). Signed objects carry millisecond precision so that every
/// implementation prints the same string; parsing accepts only that exact form.
pub mod ms_time {
    use super::*;
    use jiff::Timestamp;

    /// Truncates to whole milliseconds (what signing does to every timestamp it is given).
    pub fn truncate(ts: Timestamp) -> Timestamp {
        Timestamp::from_millisecond(ts.as_millisecond()).unwrap_or(ts)
    }

    /// The wire form of a timestamp.
    pub fn format(ts: &Timestamp) -> String {
        format!("{:.3}", truncate(*ts))
    }

    /// Parses the wire form, rejecting any other spelling.
    pub fn parse(s: &str) -> Result<Timestamp, String> {
        let ts: Timestamp = s
            .parse()
            .map_err(|e| format!("'{s}' is not an RFC 3339 timestamp: {e}"))?;
        if format(&ts) != s {
            return Err(format!(
                "timestamp '{s}' must be UTC with exactly 3 fractional digits, like '{}'",
                format(&ts)
            ));
        }
        Ok(ts)
    }

    pub fn serialize<S: Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(ts))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }

    /// The same for `Option<Timestamp>` (`null` when absent).
    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(ts: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
            match ts {
                Some(ts) => s.serialize_some(&format(ts)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
            match Option::<String>::deserialize(d)? {
                Some(s) => parse(&s).map(Some).map_err(serde::de::Error::custom),
                None => Ok(None),
            }
        }
    }
}

/// A received object that does not parse, or parses but is not in its one canonical spelling.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {what}: {reason}")]
pub struct ParseError {
    pub what: &'static str,
    pub reason: String,
}

/// Parses a wire object strictly: unknown fields are refused (every wire struct denies them),
/// and re-encoding the parsed value must give back exactly the received JSON value, so an
/// object has one spelling and its signature input is unambiguous.
pub fn strict_from_value<T: DeserializeOwned + Serialize>(
    what: &'static str,
    value: serde_json::Value,
) -> Result<T, ParseError> {
    let parsed: T = serde_json::from_value(value.clone()).map_err(|e| ParseError {
        what,
        reason: e.to_string(),
    })?;
    let again = serde_json::to_value(&parsed).map_err(|e| ParseError {
        what,
        reason: e.to_string(),
    })?;
    if again != value {
        return Err(ParseError {
            what,
            reason: "not in canonical form (a field is spelled differently than it re-encodes)".to_string(),
        });
    }
    Ok(parsed)
}

/// [`strict_from_value`] from bytes.
pub fn strict_from_slice<T: DeserializeOwned + Serialize>(what: &'static str, bytes: &[u8]) -> Result<T, ParseError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| ParseError {
        what,
        reason: e.to_string(),
    })?;
    strict_from_value(what, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids() {
        assert!(NodeId::parse("de-bka").is_ok());
        assert!(NodeId::parse("cn-mps.cyber9").is_ok());
        for bad in ["", "-x", "DE", "a b", "a_b", &"a".repeat(64)] {
            assert!(NodeId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hex_is_strict() {
        let h = Hash256::digest(b"");
        assert_eq!(
            h.to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Hash256::from_hex(&h.to_hex()).unwrap(), h);
        assert!(Hash256::from_hex(&h.to_hex().to_uppercase()).is_err());
        assert!(Hash256::from_hex("00").is_err());
    }

    #[test]
    fn timestamps_have_one_spelling() {
        let ts: jiff::Timestamp = "2026-11-22T10:37:41.123456Z".parse().unwrap();
        assert_eq!(ms_time::format(&ts), "2026-11-22T10:37:41.123Z");
        let ts0: jiff::Timestamp = "2026-11-22T10:37:41Z".parse().unwrap();
        assert_eq!(ms_time::format(&ts0), "2026-11-22T10:37:41.000Z");
        assert!(ms_time::parse("2026-11-22T10:37:41.123Z").is_ok());
        assert!(ms_time::parse("2026-11-22T10:37:41Z").is_err());
        assert!(ms_time::parse("2026-11-22T10:37:41.1230Z").is_err());
        assert!(ms_time::parse("2026-11-22T11:37:41.123+01:00").is_err());
    }
}
