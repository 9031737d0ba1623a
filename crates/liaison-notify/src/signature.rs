//! The webhook signature: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<unix seconds>." || body)>`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a `Liaison-Signature` header was not accepted by [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The header is not `t=<unix seconds>,v1=<64 hex digits>`.
    #[error("the signature header is malformed: {0}")]
    Malformed(&'static str),
    /// The timestamp is older than the tolerance allows (a replay, or a clock far behind).
    #[error("the signature is stale: signed at {signed_at}, {age} s before now (tolerance {tolerance} s)")]
    Stale { signed_at: i64, age: i128, tolerance: i64 },
    /// The timestamp lies further in the future than the tolerance allows.
    #[error("the signature is from the future: signed at {signed_at}, {ahead} s after now (tolerance {tolerance} s)")]
    Future {
        signed_at: i64,
        ahead: i128,
        tolerance: i64,
    },
    /// No `v1` value matches the body under this secret.
    #[error("the signature does not match the body (wrong secret, or the body was changed)")]
    Mismatch,
}

fn mac(secret: &[u8], unix_seconds: i64, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this constructor cannot fail; an empty MAC would
    // still be returned by the fallback, which then never verifies.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => <HmacSha256 as Mac>::new(&Default::default()),
    };
    mac.update(unix_seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `Liaison-Signature` header value for `body` sent at `unix_seconds`:
/// `t=<unix_seconds>,v1=<lowercase hex of HMAC-SHA256(secret, "<unix_seconds>." || body)>`.
pub fn sign(secret: &[u8], unix_seconds: i64, body: &[u8]) -> String {
    let tag = mac(secret, unix_seconds, body).finalize().into_bytes();
    format!("t={unix_seconds},v1={}", hex::encode(tag))
}

/// Checks a `Liaison-Signature` header against `body`, as a receiver does.
///
/// The timestamp must lie within `tolerance_seconds` of `now_unix` either way (a negative
/// tolerance counts as zero). Several `v1=` values are allowed (one per secret during a
/// rotation); one matching is enough. Fields other than `t` and `v1` are ignored, so that
/// later schemes (`v2=`) can be added beside `v1`. The comparison is constant-time.
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now_unix: i64,
    tolerance_seconds: i64,
) -> Result<(), VerifyError> {
    let mut timestamp: Option<i64> = None;
    let mut candidates: Vec<Vec<u8>> = Vec::new();
    for field in header.split(',') {
        let field = field.trim();
        let Some((key, value)) = field.split_once('=') else {
            return Err(VerifyError::Malformed("a field without '='"));
        };
        match key {
            "t" => {
                if timestamp.is_some() {
                    return Err(VerifyError::Malformed("more than one t="));
                }
                let valid = !value.is_empty()
                    && value
                        .bytes()
                        .enumerate()
                        .all(|(i, b)| b.is_ascii_digit() || (i == 0 && b == b'-'));
                let parsed = if valid { value.parse::<i64>().ok() } else { None };
                match parsed {
                    Some(t) => timestamp = Some(t),
                    None => return Err(VerifyError::Malformed("t= is not a whole number of seconds")),
                }
            }
            "v1" => match hex::decode(value) {
                Ok(bytes) if bytes.len() == 32 => candidates.push(bytes),
                _ => return Err(VerifyError::Malformed("v1= is not 64 hex digits")),
            },
            _ => {}
        }
    }
    let Some(signed_at) = timestamp else {
        return Err(VerifyError::Malformed("no t= field"));
    };
    if candidates.is_empty() {
        return Err(VerifyError::Malformed("no v1= field"));
    }
    let tolerance = tolerance_seconds.max(0);
    let age = i128::from(now_unix) - i128::from(signed_at);
    if age > i128::from(tolerance) {
        return Err(VerifyError::Stale {
            signed_at,
            age,
            tolerance,
        });
    }
    if -age > i128::from(tolerance) {
        return Err(VerifyError::Future {
            signed_at,
            ahead: -age,
            tolerance,
        });
    }
    let expected = mac(secret, signed_at, body);
    // Every candidate is checked, so the time taken does not tell which one matched.
    let mut matched = false;
    for candidate in &candidates {
        matched |= expected.clone().verify_slice(candidate).is_ok();
    }
    if matched { Ok(()) } else { Err(VerifyError::Mismatch) }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Computed independently with Python 3.11:
    //   import hmac, hashlib
    //   hmac.new(b"0123456789abcdef-liaison", b"1700000000." + '{"id":"42","event":"request.received"}'.encode(),
    //            hashlib.sha256).hexdigest()
    const SECRET: &[u8] = b"0123456789abcdef-liaison";
    const BODY: &[u8] = br#"{"id":"42","event":"request.received"}"#;
    // -> ce0fbcf5bb7d6c17f63800c9401b390b14326d336294b296f2c8878db116dc8f
    const VECTOR: &str = "t=1700000000,v1=ce0fbcf5bb7d6c17f63800c9401b390b14326d336294b296f2c8878db116dc8f";

    #[test]
    fn sign_matches_the_known_vector() {
        assert_eq!(sign(SECRET, 1_700_000_000, BODY), VECTOR.to_owned());
    }

    #[test]
    fn verify_accepts_the_known_vector() {
        assert_eq!(verify(SECRET, VECTOR, BODY, 1_700_000_010, 300), Ok(()));
    }

    #[test]
    fn verify_accepts_within_tolerance_both_ways() {
        let header = sign(SECRET, 1_000, BODY);
        assert_eq!(verify(SECRET, &header, BODY, 1_300, 300), Ok(()));
        assert_eq!(verify(SECRET, &header, BODY, 700, 300), Ok(()));
    }

    #[test]
    fn verify_rejects_a_changed_body() {
        let header = sign(SECRET, 1_000, BODY);
        assert_eq!(
            verify(SECRET, &header, b"{\"id\":\"43\"}", 1_000, 300),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn verify_rejects_another_secret() {
        let header = sign(SECRET, 1_000, BODY);
        assert_eq!(
            verify(b"another secret of 16+ bytes", &header, BODY, 1_000, 300),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn verify_rejects_a_changed_timestamp() {
        let header = sign(SECRET, 1_000, BODY).replace("t=1000", "t=1001");
        assert_eq!(verify(SECRET, &header, BODY, 1_000, 300), Err(VerifyError::Mismatch));
    }

    #[test]
    fn verify_rejects_stale_and_future() {
        let header = sign(SECRET, 1_000, BODY);
        assert!(matches!(
            verify(SECRET, &header, BODY, 1_301, 300),
            Err(VerifyError::Stale { age: 301, .. })
        ));
        assert!(matches!(
            verify(SECRET, &header, BODY, 699, 300),
            Err(VerifyError::Future { ahead: 301, .. })
        ));
        // Extreme values do not overflow.
        let header = sign(SECRET, i64::MIN, BODY);
        assert!(matches!(
            verify(SECRET, &header, BODY, i64::MAX, 300),
            Err(VerifyError::Stale { .. })
        ));
    }

    #[test]
    fn verify_accepts_one_matching_signature_among_several() {
        let ours = sign(SECRET, 1_000, BODY);
        let theirs = sign(b"the previous secret, rotated", 1_000, BODY);
        let v1_theirs = theirs.split(',').nth(1).unwrap_or_default();
        let header = format!("{ours},{v1_theirs},v2=ignored");
        assert_eq!(verify(SECRET, &header, BODY, 1_000, 0), Ok(()));
    }

    #[test]
    fn verify_rejects_malformed_headers() {
        for header in [
            "",
            "v1=00",
            "t=1000",
            "t=1000,v1=zz",
            "t=+1000,v1=0000000000000000000000000000000000000000000000000000000000000000",
            "t=1000,t=1000,v1=0000000000000000000000000000000000000000000000000000000000000000",
            "t=abc,v1=0000000000000000000000000000000000000000000000000000000000000000",
            "t=1000;v1=0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert!(
                matches!(verify(SECRET, header, BODY, 1_000, 300), Err(VerifyError::Malformed(_))),
                "{header:?}"
            );
        }
    }
}
