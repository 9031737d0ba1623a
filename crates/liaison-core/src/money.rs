//! Sums of money, exact.
//!
//! An amount is a non-negative decimal number with at most [`MAX_FRACTION_DIGITS`] digits after
//! the point and at most [`MAX_INTEGER_DIGITS`] before it, kept as an integer count of
//! 10⁻⁸ units, so `0.1 + 0.2` is `0.3` and nothing is lost between nodes. In JSON it is written
//! as a string (`"2500.50"` is written `"2500.5"`): the federation protocol carries no
//! fractional numbers (docs/federation.md §1.1), and a string survives every JSON library.
//! Reading accepts that string or, for API clients that send numbers, a JSON number whose
//! decimal text obeys the same rules (`2500.5`, `3000`; not `1e3`, not `-1`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Digits allowed after the decimal point (enough for every ISO 4217 currency and for the
/// usual crypto-asset units).
pub const MAX_FRACTION_DIGITS: usize = 8;
/// Digits allowed before the decimal point (up to 999 trillion).
pub const MAX_INTEGER_DIGITS: usize = 15;
const SCALE: i128 = 100_000_000;

/// A non-negative decimal amount, exact to 10⁻⁸.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Decimal {
    /// The amount in 10⁻⁸ units.
    scaled: i128,
}

/// Why a text is not an amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("'{0}' is not an amount: write digits with an optional decimal point, e.g. 2500 or 2500.50")]
    Syntax(String),
    #[error("'{0}' has more than {MAX_FRACTION_DIGITS} digits after the decimal point")]
    TooPrecise(String),
    #[error("'{0}' is too large: at most {MAX_INTEGER_DIGITS} digits before the decimal point")]
    TooLarge(String),
}

impl Decimal {
    /// Zero.
    pub const ZERO: Decimal = Decimal { scaled: 0 };

    /// A whole number of units.
    pub fn from_units(units: u64) -> Self {
        Decimal {
            scaled: i128::from(units) * SCALE,
        }
    }

    /// Parses `digits[.digits]`. No sign, no exponent, no spaces, no thousands separators.
    pub fn parse(s: &str) -> Result<Self, DecimalError> {
        let shown = || s.chars().take(40).collect::<String>();
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (s, None),
        };
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || frac.is_some_and(|f| !digits(f)) {
            return Err(DecimalError::Syntax(shown()));
        }
        let int = int.trim_start_matches('0');
        if int.len() > MAX_INTEGER_DIGITS {
            return Err(DecimalError::TooLarge(shown()));
        }
        let frac = frac.unwrap_or("").trim_end_matches('0');
        if frac.len() > MAX_FRACTION_DIGITS {
            return Err(DecimalError::TooPrecise(shown()));
        }
        // Both parts are at most 15 and 8 ASCII digits: the arithmetic cannot overflow.
        let mut scaled: i128 = 0;
        for b in int.bytes() {
            scaled = scaled * 10 + i128::from(b - b'0');
        }
        scaled *= SCALE;
        let mut f: i128 = 0;
        for b in frac.bytes() {
            f = f * 10 + i128::from(b - b'0');
        }
        for _ in frac.len()..MAX_FRACTION_DIGITS {
            f *= 10;
        }
        Ok(Decimal { scaled: scaled + f })
    }

    /// Compares with a threshold written as a binary floating-point number in a rule pack
    /// (`3000.0`): the threshold is rounded to 10⁻⁸ first, so `2999.99999999 < 3000`.
    pub fn cmp_threshold(&self, threshold: f64) -> std::cmp::Ordering {
        if !threshold.is_finite() || threshold >= 1e20 {
            return if threshold > 0.0 {
                std::cmp::Ordering::Less
            } else {
                std::cmp::Ordering::Greater
            };
        }
        if threshold < 0.0 {
            return std::cmp::Ordering::Greater;
        }
        // Finite, non-negative and below 10²⁰: times 10⁸ it fits an i128.
        let t = (threshold * SCALE as f64).round() as i128;
        self.scaled.cmp(&t)
    }

    /// Whether the amount is below a rule pack's threshold.
    pub fn below(&self, threshold: f64) -> bool {
        self.cmp_threshold(threshold) == std::cmp::Ordering::Less
    }
}

/// The digits after the decimal point an amount in `currency` is written with (ISO 4217's
/// "minor unit": 2 for most, 0 for JPY or KRW, 3 for KWD or BHD); `None` for a code that is not
/// a national currency of the list (crypto-assets: written with the digits they have).
pub fn minor_units(currency: &str) -> Option<usize> {
    const ZERO: &[&str] = &[
        "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF",
        "XPF",
    ];
    const THREE: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
    let c = currency.trim();
    if ZERO.contains(&c) {
        Some(0)
    } else if THREE.contains(&c) {
        Some(3)
    } else if c.len() == 3
        && c.bytes().all(|b| b.is_ascii_uppercase())
        && !["BTC", "ETH", "XMR", "USDT", "LTC"].contains(&c)
    {
        Some(2)
    } else {
        None
    }
}

impl Decimal {
    /// The amount as people read it: thousands grouped with commas, and at least `minor`
    /// digits after the point (more when the amount has them): `25000.5` with 2 is
    /// `25,000.50`; with 0, `1234567` is `1,234,567`.
    pub fn grouped(&self, minor: usize) -> String {
        let int = (self.scaled / SCALE).to_string();
        let mut out = String::with_capacity(int.len() + int.len() / 3 + 12);
        for (i, ch) in int.chars().enumerate() {
            if i > 0 && (int.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(ch);
        }
        let digits = format!("{:08}", self.scaled % SCALE);
        let kept = digits.trim_end_matches('0').len().max(minor.min(MAX_FRACTION_DIGITS));
        if kept > 0 {
            out.push('.');
            out.push_str(&digits[..kept]);
        }
        out
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let int = self.scaled / SCALE;
        let frac = self.scaled % SCALE;
        if frac == 0 {
            return write!(f, "{int}");
        }
        let digits = format!("{frac:08}");
        write!(f, "{int}.{}", digits.trim_end_matches('0'))
    }
}

impl std::str::FromStr for Decimal {
    type Err = DecimalError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Decimal::parse(s)
    }
}

impl Serialize for Decimal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Decimal;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an amount as a string of digits with an optional decimal point, e.g. \"2500.50\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Decimal, E> {
                Decimal::parse(v).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Decimal, E> {
                Decimal::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Decimal, E> {
                Decimal::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Decimal, E> {
                // The shortest text that reads back as the same double: what the client wrote
                // for every ordinary amount (2500.5 → "2500.5").
                let text = if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e16 {
                    format!("{v:.0}")
                } else {
                    format!("{v}")
                };
                Decimal::parse(&text).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_exactly() {
        for (input, shown) in [
            ("0", "0"),
            ("2500", "2500"),
            ("2500.50", "2500.5"),
            ("0.1", "0.1"),
            ("007.00000001", "7.00000001"),
            ("999999999999999.99999999", "999999999999999.99999999"),
        ] {
            let d = Decimal::parse(input).unwrap();
            assert_eq!(d.to_string(), shown, "{input}");
            assert_eq!(Decimal::parse(&d.to_string()).unwrap(), d);
        }
        assert_eq!(
            Decimal::parse("0.1").unwrap().scaled + Decimal::parse("0.2").unwrap().scaled,
            Decimal::parse("0.3").unwrap().scaled
        );
    }

    #[test]
    fn refuses_what_is_not_a_plain_amount() {
        for bad in [
            "", "-1", "+1", "1e3", "1.", ".5", "1,000", " 1", "1 ", "NaN", "0x10", "١٢",
        ] {
            assert!(matches!(Decimal::parse(bad), Err(DecimalError::Syntax(_))), "{bad:?}");
        }
        assert!(matches!(
            Decimal::parse("1.000000001"),
            Err(DecimalError::TooPrecise(_))
        ));
        assert!(matches!(
            Decimal::parse("1000000000000000"),
            Err(DecimalError::TooLarge(_))
        ));
        // Trailing zeros do not count as precision, leading zeros not as size.
        assert!(Decimal::parse("1.000000000000").is_ok());
        assert!(Decimal::parse("000000000000000000001").is_ok());
    }

    #[test]
    fn json_is_a_string_and_numbers_are_read() {
        let d: Decimal = serde_json::from_str("\"2500.50\"").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"2500.5\"");
        let n: Decimal = serde_json::from_str("2500.5").unwrap();
        assert_eq!(n, d);
        let i: Decimal = serde_json::from_str("3000").unwrap();
        assert_eq!(i, Decimal::from_units(3000));
        for bad in ["-5", "1e300", "\"1e3\"", "true", "null", "0.123456789"] {
            let e = serde_json::from_str::<Decimal>(bad).unwrap_err().to_string();
            assert!(!e.is_empty(), "{bad}");
        }
    }

    #[test]
    fn compares_with_pack_thresholds() {
        let d = Decimal::parse("2999.99999999").unwrap();
        assert!(d.below(3000.0));
        assert!(!Decimal::from_units(3000).below(3000.0));
        assert!(!Decimal::from_units(3001).below(3000.0));
        assert!(Decimal::ZERO.below(f64::INFINITY));
        assert!(!Decimal::ZERO.below(f64::NAN));
        assert!(!Decimal::ZERO.below(-1.0));
    }

    #[test]
    fn amounts_are_grouped_as_people_read_them() {
        let d = |s: &str| Decimal::parse(s).unwrap();
        assert_eq!(d("25000.5").grouped(2), "25,000.50");
        assert_eq!(d("999").grouped(2), "999.00");
        assert_eq!(d("1234567").grouped(0), "1,234,567");
        assert_eq!(d("0.12345678").grouped(2), "0.12345678");
        assert_eq!(d("1000.125").grouped(3), "1,000.125");
        assert_eq!(d("100000").grouped(0), "100,000");
        assert_eq!(minor_units("USD"), Some(2));
        assert_eq!(minor_units("JPY"), Some(0));
        assert_eq!(minor_units("KWD"), Some(3));
        assert_eq!(minor_units("BTC"), None);
    }
}
