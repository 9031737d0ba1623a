//! Canonical JSON per RFC 8785 (JSON Canonicalization Scheme, "JCS").
//!
//! * Object members are sorted by their names compared as arrays of UTF-16 code units.
//! * No insignificant whitespace.
//! * Strings: `"` and `\` escaped, U+0008/09/0A/0C/0D as `\b \t \n \f \r`, every other
//!   control character below U+0020 as `\u00xx` (lower-case hex); everything else literal UTF-8.
//! * Numbers: the ECMAScript `Number.prototype.toString` form of the IEEE 754 double
//!   (shortest round-trip digits, exponent form below 1e-6 and from 1e21 up, `-0` as `0`).
//!   An integer beyond ±(2^53 − 1) is accepted only if it is written exactly as ECMAScript
//!   prints the nearest double; any other is rejected rather than silently rewritten
//!   (RFC 8785 requires I-JSON input, RFC 7493 §2.2).
//!
//! The full number rules are implemented so that [`canonicalize`] is a complete JCS. The
//! federation protocol itself is stricter: payloads carry integers only (see
//! [`check_protocol_numbers`]), because a JSON parser that is off by one unit in the last place
//! for a decimal would change a payload hash.

use serde_json::Value;

/// Largest integer a double holds exactly together with all smaller ones: 2^53 − 1.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A value that has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonError {
    /// NaN or an infinity (serde_json cannot normally produce these, but a `Value` built by hand can).
    #[error("number is not finite: JSON has no NaN or Infinity")]
    NonFinite,
    /// An integer that a double cannot represent exactly.
    #[error("integer {0} is outside ±(2^53 − 1) and cannot be canonicalized exactly; send it as a string")]
    UnsafeInteger(String),
    /// Serializing a Rust value to JSON failed.
    #[error("cannot serialize to JSON: {0}")]
    Serialize(String),
}

/// The RFC 8785 canonical bytes of a JSON value.
pub fn canonicalize(value: &Value) -> Result<Vec<u8>, CanonError> {
    let mut out = Vec::with_capacity(256);
    write_value(value, &mut out)?;
    Ok(out)
}

/// Serializes a Rust value to JSON and returns its canonical bytes.
pub fn to_canonical<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonError> {
    let v = serde_json::to_value(value).map_err(|e| CanonError::Serialize(e.to_string()))?;
    canonicalize(&v)
}

/// The protocol's number rule: every number in `value` is an integer within ±(2^53 − 1).
/// Returns the JSON pointer of the first offending number.
pub fn check_protocol_numbers(value: &Value) -> Result<(), String> {
    fn walk(v: &Value, path: &mut String) -> Result<(), String> {
        match v {
            Value::Number(n) => {
                let ok = if let Some(u) = n.as_u64() {
                    u <= MAX_SAFE_INTEGER
                } else if let Some(i) = n.as_i64() {
                    i.unsigned_abs() <= MAX_SAFE_INTEGER
                } else {
                    false
                };
                if ok {
                    Ok(())
                } else {
                    Err(format!(
                        "number {n} at '{path}' is not an integer within ±(2^53 − 1); send decimals and large numbers as strings"
                    ))
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push('/');
                    path.push_str(&i.to_string());
                    walk(item, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            Value::Object(map) => {
                for (k, item) in map {
                    let len = path.len();
                    path.push('/');
                    path.push_str(&k.replace('~', "~0").replace('/', "~1"));
                    walk(item, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
    walk(value, &mut String::new())
}

fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<(), CanonError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(n, out)?,
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push(b'{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write_value(v, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            0x08 => Some(b"\\b"),
            0x09 => Some(b"\\t"),
            0x0a => Some(b"\\n"),
            0x0c => Some(b"\\f"),
            0x0d => Some(b"\\r"),
            0x00..=0x1f => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        match escape {
            Some(e) => out.extend_from_slice(e),
            None => out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 0xf) as usize]]),
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn write_number(n: &serde_json::Number, out: &mut Vec<u8>) -> Result<(), CanonError> {
    let int: Option<i128> = n.as_u64().map(i128::from).or_else(|| n.as_i64().map(i128::from));
    if let Some(i) = int {
        if i.unsigned_abs() <= u128::from(MAX_SAFE_INTEGER) {
            out.extend_from_slice(i.to_string().as_bytes());
            return Ok(());
        }
        // A larger integer is accepted only if the ECMAScript form of the nearest double has
        // the very same digits: otherwise canonicalization would silently change the numeral
        // (9007199254740993 would become 9007199254740992).
        let es = format_es_number(i as f64)?;
        if es != i.to_string() {
            return Err(CanonError::UnsafeInteger(i.to_string()));
        }
        out.extend_from_slice(es.as_bytes());
        return Ok(());
    }
    let f = n.as_f64().ok_or(CanonError::NonFinite)?;
    out.extend_from_slice(format_es_number(f)?.as_bytes());
    Ok(())
}

/// ECMAScript `Number::toString(x)` (ECMA-262 §6.1.6.1.20) for a finite double.
pub fn format_es_number(x: f64) -> Result<String, CanonError> {
    if !x.is_finite() {
        return Err(CanonError::NonFinite);
    }
    if x == 0.0 {
        return Ok("0".to_string()); // covers -0
    }
    let mut s = String::new();
    if x < 0.0 {
        s.push('-');
    }
    // Rust's `{:e}` without precision prints the shortest digit string that round-trips,
    // which is the `k`-digit significand `s` of the ECMAScript algorithm.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').ok_or(CanonError::NonFinite)?;
    let exp: i32 = exp.parse().map_err(|_| CanonError::NonFinite)?;
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let digits = tie_to_even(x.abs(), digits, exp);
    let k = digits.len() as i32;
    let n = exp + 1; // value = 0.digits × 10^n
    if k <= n && n <= 21 {
        s.push_str(&digits);
        s.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        s.push_str(&digits[..n as usize]);
        s.push('.');
        s.push_str(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        s.push_str("0.");
        s.extend(std::iter::repeat_n('0', (-n) as usize));
        s.push_str(&digits);
    } else {
        s.push_str(&digits[..1]);
        if k > 1 {
            s.push('.');
            s.push_str(&digits[1..]);
        }
        s.push('e');
        s.push(if n > 0 { '+' } else { '-' });
        s.push_str(&(n - 1).abs().to_string());
    }
    Ok(s)
}

/// Among the shortest digit strings, ECMA-262 (`Number::toString`, note 2) takes the one
/// closest to `x` and, on an exact tie, the even one; V8, and so RFC 8785's test vectors, do
/// the same. Rust's shortest formatting may return the odd neighbour of an exact tie
/// (901234333333333.25 prints as `9.012343333333333e14`, where ECMAScript prints
/// `901234333333333.2`), so an exact tie is found from `x`'s exact decimal expansion and
/// resolved to the even neighbour when that one also round-trips.
fn tie_to_even(x: f64, digits: String, exp: i32) -> String {
    let k = digits.len();
    // A double's exact decimal expansion has at most 767 significant digits.
    let exact = format!("{x:.800e}");
    let Some((m, e)) = exact.split_once('e') else {
        return digits;
    };
    let exact_digits: String = m.chars().filter(|c| *c != '.').collect();
    let exact_digits = exact_digits.trim_end_matches('0');
    // A tie: x is exactly halfway between two k-digit neighbours at the same exponent.
    if e.parse::<i32>() != Ok(exp) || exact_digits.len() != k + 1 || !exact_digits.ends_with('5') {
        return digits;
    }
    let lower = &exact_digits[..k];
    let Some(last) = lower.bytes().last().map(|b| b - b'0') else {
        return digits;
    };
    if last == 9 {
        return digits; // the upper neighbour would end in 0, so it would not be k digits long
    }
    let upper = format!("{}{}", &lower[..k - 1], last + 1);
    let even = if last % 2 == 0 { lower.to_string() } else { upper };
    let spelled = if k == 1 {
        format!("{even}e{exp}")
    } else {
        format!("{}.{}e{exp}", &even[..1], &even[1..])
    };
    if spelled.parse::<f64>() == Ok(x) { even } else { digits }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon(v: &Value) -> String {
        String::from_utf8(canonicalize(v).unwrap()).unwrap()
    }

    #[test]
    #[allow(clippy::excessive_precision)] // the RFC's literal, kept as written
    fn es_numbers() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (-1.5, "-1.5"),
            (4.50, "4.5"),
            (2e-3, "0.002"),
            (0.000001, "0.000001"),
            (1e-7, "1e-7"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1e30, "1e+30"),
            (333333333.33333329, "333333333.3333333"),
            (123456789012345680000.0, "123456789012345680000"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (9007199254740992.0, "9007199254740992"),
            (295147905179352830000.0, "295147905179352830000"),
            (0.1, "0.1"),
            (1.2345e-7, "1.2345e-7"),
        ];
        for (x, want) in cases {
            assert_eq!(format_es_number(*x).unwrap(), *want, "{x:e}");
        }
        assert_eq!(format_es_number(f64::NAN), Err(CanonError::NonFinite));
        assert_eq!(format_es_number(f64::INFINITY), Err(CanonError::NonFinite));
    }

    #[test]
    #[allow(clippy::excessive_precision)] // the doubles' exact values, which are the point
    fn exact_ties_go_to_the_even_neighbour() {
        // Found by fuzzing against serde_json_canonicalizer: these doubles lie exactly halfway
        // between two shortest spellings; ECMAScript (and V8) take the even one.
        assert_eq!(format_es_number(901_234_333_333_333.25).unwrap(), "901234333333333.2");
        assert_eq!(format_es_number(600_000_000_000_000.25).unwrap(), "600000000000000.2");
        assert_eq!(format_es_number(562_949_953_421_312.75).unwrap(), "562949953421312.8");
        assert_eq!(format_es_number(-901_234_333_333_333.25).unwrap(), "-901234333333333.2");
        // Not ties: unchanged.
        assert_eq!(format_es_number(900_000_000_000_000.5).unwrap(), "900000000000000.5");
        assert_eq!(format_es_number(0.1).unwrap(), "0.1");
    }

    #[test]
    #[allow(clippy::excessive_precision)]
    fn rfc8785_section_3_2_2_example() {
        // The numbers/string/literals example of RFC 8785 §3.2.2 (written out here by hand).
        // The numbers come from Rust literals: serde_json's default float parser may be one
        // unit in the last place off for 333333333.33333329, which is exactly why the protocol
        // allows only integers in payloads.
        let mut input: Value = serde_json::from_str(
            r#"{
              "numbers": [],
              "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
              "literals": [null, true, false]
            }"#,
        )
        .unwrap();
        input["numbers"] = json!([333333333.33333329f64, 1e30f64, 4.50f64, 2e-3f64, 1e-27f64]);
        assert_eq!(
            canon(&input),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
    }

    #[test]
    fn key_order_is_utf16() {
        // RFC 8785 §3.2.3 sorting example: keys compared as UTF-16 code units, so U+1F600
        // (surrogates D83D DE00) sorts before U+FB33, the reverse of UTF-8 byte order.
        let input: Value = serde_json::from_str(
            r#"{"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
                "1": "One", "\ud83d\ude00": "Emoji: Grinning Face", "\u0080": "Control",
                "\u00f6": "Latin Small Letter O With Diaeresis"}"#,
        )
        .unwrap();
        assert_eq!(
            canon(&input),
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\
             \"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\
             \"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
        );
    }

    #[test]
    fn escapes_and_whitespace() {
        let v = json!({"b": [1, {"z": "\u{7f}\u{1}\t", "a": "\u{2028}"}], "a": "é"});
        assert_eq!(
            canon(&v),
            "{\"a\":\"é\",\"b\":[1,{\"a\":\"\u{2028}\",\"z\":\"\u{7f}\\u0001\\t\"}]}"
        );
    }

    #[test]
    fn unsafe_integers_rejected() {
        assert!(matches!(
            canonicalize(&json!(9007199254740993u64)),
            Err(CanonError::UnsafeInteger(_))
        ));
        assert!(matches!(
            canonicalize(&json!(-9007199254740993i64)),
            Err(CanonError::UnsafeInteger(_))
        ));
        assert!(matches!(
            canonicalize(&json!(u64::MAX)),
            Err(CanonError::UnsafeInteger(_))
        ));
        // 2^63 is a double, but ECMAScript prints it as 9223372036854776000: refused rather
        // than rewritten.
        assert!(matches!(
            canonicalize(&json!(1u64 << 63)),
            Err(CanonError::UnsafeInteger(_))
        ));
        // Large integers whose numeral is the double's ECMAScript form are kept.
        assert_eq!(canon(&json!(9007199254740992u64)), "9007199254740992");
        assert_eq!(canon(&json!(49843245969457096u64)), "49843245969457096");
        assert_eq!(canon(&json!(9223372036854776000u64)), "9223372036854776000");
        assert_eq!(canon(&json!(9007199254740991u64)), "9007199254740991");
        assert_eq!(canon(&json!(-9007199254740991i64)), "-9007199254740991");
    }

    #[test]
    fn protocol_numbers() {
        assert!(check_protocol_numbers(&json!({"a": [1, -2, {"b": 3}]})).is_ok());
        let err = check_protocol_numbers(&json!({"a": [1, {"b/c": 1.5}]})).unwrap_err();
        assert!(err.contains("/a/1/b~1c"), "{err}");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                (-(MAX_SAFE_INTEGER as i64)..=(MAX_SAFE_INTEGER as i64)).prop_map(|i| json!(i)),
                any::<f64>()
                    .prop_filter("finite", |f| f.is_finite())
                    .prop_map(|f| json!(f)),
                "\\PC{0,12}".prop_map(Value::String),
                "[\\x00-\\x1f\"\\\\]{0,4}".prop_map(Value::String),
            ];
            leaf.prop_recursive(3, 24, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                    prop::collection::btree_map("\\PC{0,6}", inner, 0..5)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]
            /// The canonical form is valid JSON for the same value (integers and strings
            /// exactly), and canonicalizing it again gives the same bytes.
            #[test]
            fn canonical_form_is_stable(v in json_value()) {
                let once = canonicalize(&v).unwrap();
                let parsed: Value = serde_json::from_slice(&once).unwrap();
                let twice = canonicalize(&parsed).unwrap();
                if check_protocol_numbers(&v).is_ok() {
                    prop_assert_eq!(&parsed, &v);
                    prop_assert_eq!(&once, &twice);
                }
            }

            /// The ECMAScript form reads back (with an exact parser) as the same double.
            #[test]
            fn es_number_round_trips(bits in any::<u64>()) {
                let f = f64::from_bits(bits);
                if f.is_finite() {
                    let s = format_es_number(f).unwrap();
                    prop_assert_eq!(s.parse::<f64>().unwrap(), if f == 0.0 { 0.0 } else { f });
                }
            }
        }
    }
}
