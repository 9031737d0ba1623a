//! Identifiers an officer looks up: IP addresses, networks, domains, URLs, e-mail addresses,
//! phone numbers, platform accounts, crypto wallets, bank accounts, file hashes and AS numbers.
//!
//! One normalization serves two sides:
//! - request targets ([`TargetValue`]) are indexed under normalized *keys* ([`target_keys`]);
//! - what an officer types is normalized the same way ([`lookup`]) into keys or key ranges
//!   that find those targets, and into the exact `(IndicatorKind, value)` pairs to probe in
//!   the clean-up indicator table (values exactly as [`IndicatorValue::parse`] stores them).
//!
//! Domains, URLs, e-mail addresses, hashes and AS numbers are normalized by
//! [`IndicatorValue::parse`] / [`IndicatorValue::detect`], so a target and an indicator about
//! the same thing always agree.
//!
//! # Keys
//!
//! Keys are stored in a database column and compared with `=` and `BETWEEN`, so their byte
//! order matters: IP keys are fixed-width lower-case hex, so byte order is numeric order and a
//! network is one inclusive range.
//!
//! | prefix  | rest                                                                        |
//! |---------|-----------------------------------------------------------------------------|
//! | `ip4:`  | 8 lower-case hex digits, big-endian (`ip4:c0000201`); also IPv4-mapped IPv6  |
//! | `ip6:`  | 32 lower-case hex digits                                                    |
//! | `dom:`  | lower-case IDNA ASCII host name without trailing dot                         |
//! | `url:`  | the URL as [`IndicatorValue::parse`] normalizes it                          |
//! | `mail:` | the e-mail address as [`IndicatorValue::parse`] normalizes it               |
//! | `tel:`  | E.164: `+` and 8 to 15 digits                                               |
//! | `acct:` | `service:identifier`, both lower case, without a leading `@`                |
//! | `wal:`  | `currency:address` (see [`IdentKind::Wallet`])                              |
//! | `bank:` | `institution:IDENTIFIER` (spaces and hyphens removed, upper case)           |
//! | `hash:` | lower-case hex MD5, SHA-1 or SHA-256                                        |
//! | `asn:`  | the AS number in decimal                                                    |
//!
//! A URL or e-mail target is also indexed under its host's `dom:` key (or IP key when the host
//! is an IP literal), so looking up a domain finds the URLs and addresses on it.

use crate::model::{IndicatorKind, IndicatorValue, ValueError, parse_asn, parse_ip, url_host};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use liaison_core::UnknownValue;
use liaison_core::request::TargetValue;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// The longest input [`lookup`] accepts, in bytes.
pub const MAX_INPUT_LEN: usize = 2048;

/// Shortest prefix length of the networks probed around an IPv4 address or network.
const V4_FLOOR: u8 = 8;
/// Shortest prefix length of the networks probed around an IPv6 address or network.
const V6_FLOOR: u8 = 16;
/// A network of at most 2^8 = 256 addresses also has each address probed.
const ADDRESS_PROBE_BITS: u8 = 8;
/// How many characters of a bad value an error message quotes.
const QUOTE_LEN: usize = 120;

/// What kind of identifier a look-up is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentKind {
    /// An IPv4 or IPv6 address (an IPv4-mapped IPv6 address is the IPv4 address).
    Ip,
    /// A CIDR network, IPv4 or IPv6, truncated to its network address.
    Network,
    /// A host name (internationalised names in their IDNA ASCII form).
    Domain,
    /// A URL.
    Url,
    /// An e-mail address.
    Email,
    /// A phone number in E.164 form.
    Phone,
    /// An account on a platform: `service:identifier`. Identifiers are compared without case:
    /// handles on the services Liaison deals with (X/Twitter, Telegram, Instagram, GitHub…)
    /// are case-insensitive. Where a service's identifiers are case-sensitive, lower-casing can
    /// only make a look-up find more, never miss a target.
    Account,
    /// A crypto-currency wallet: `currency:address`. Ethereum-style (`0x` + 40 hex) and bech32
    /// (`bc1…`, `tb1…`, `ltc1…`) addresses are case-insensitive and lower-cased; any other
    /// address (base58 and the rest) is case-sensitive and kept as written.
    Wallet,
    /// A bank account: `institution:identifier` (an IBAN or a national account number).
    Bank,
    /// An MD5, SHA-1 or SHA-256 file hash.
    FileHash,
    /// An autonomous system number.
    Asn,
}

/// The names [`IdentKind`] is written with, in declaration order.
const KIND_NAMES: &[&str] = &[
    "ip",
    "network",
    "domain",
    "url",
    "email",
    "phone",
    "account",
    "wallet",
    "bank",
    "file_hash",
    "asn",
];

impl IdentKind {
    /// Every kind, in declaration order.
    pub const ALL: [IdentKind; 11] = [
        IdentKind::Ip,
        IdentKind::Network,
        IdentKind::Domain,
        IdentKind::Url,
        IdentKind::Email,
        IdentKind::Phone,
        IdentKind::Account,
        IdentKind::Wallet,
        IdentKind::Bank,
        IdentKind::FileHash,
        IdentKind::Asn,
    ];

    /// The snake_case name used in JSON, query strings and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentKind::Ip => "ip",
            IdentKind::Network => "network",
            IdentKind::Domain => "domain",
            IdentKind::Url => "url",
            IdentKind::Email => "email",
            IdentKind::Phone => "phone",
            IdentKind::Account => "account",
            IdentKind::Wallet => "wallet",
            IdentKind::Bank => "bank",
            IdentKind::FileHash => "file_hash",
            IdentKind::Asn => "asn",
        }
    }

    /// The key prefix of identifiers of this kind kept as text (`dom:`, `tel:`…); IPs and
    /// networks have `ip4:` / `ip6:` keys instead.
    fn text_prefix(self) -> &'static str {
        match self {
            IdentKind::Ip | IdentKind::Network => "",
            IdentKind::Domain => "dom:",
            IdentKind::Url => "url:",
            IdentKind::Email => "mail:",
            IdentKind::Phone => "tel:",
            IdentKind::Account => "acct:",
            IdentKind::Wallet => "wal:",
            IdentKind::Bank => "bank:",
            IdentKind::FileHash => "hash:",
            IdentKind::Asn => "asn:",
        }
    }
}

impl fmt::Display for IdentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IdentKind {
    type Err = UnknownValue;

    /// Reads a kind name, ignoring case and treating `-` and spaces as `_`; also accepts the
    /// target type names `crypto_wallet` and `bank_account` and the words `cidr` and `hash`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        Ok(match name.as_str() {
            "ip" => IdentKind::Ip,
            "network" | "cidr" => IdentKind::Network,
            "domain" => IdentKind::Domain,
            "url" => IdentKind::Url,
            "email" | "e_mail" => IdentKind::Email,
            "phone" => IdentKind::Phone,
            "account" => IdentKind::Account,
            "wallet" | "crypto_wallet" => IdentKind::Wallet,
            "bank" | "bank_account" => IdentKind::Bank,
            "file_hash" | "hash" => IdentKind::FileHash,
            "asn" => IdentKind::Asn,
            _ => {
                return Err(UnknownValue {
                    what: "IdentifierKind",
                    value: s.to_string(),
                    expected: KIND_NAMES,
                });
            }
        })
    }
}

/// A normalized identifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ident {
    /// What it is.
    pub kind: IdentKind,
    /// Its normalized human form: `192.0.2.1`, `203.0.113.0/24`, `xn--bcher-kva.example`,
    /// `+8613800138000`, `telegram:example_user`, `AS64500`…
    pub display: String,
}

/// How stored target keys match a look-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyMatch {
    /// Keys equal to this one.
    Exact(String),
    /// Keys from `lo` to `hi`, both included (the addresses of a network).
    Range {
        /// The first key of the range.
        lo: String,
        /// The last key of the range.
        hi: String,
    },
}

impl KeyMatch {
    /// Whether a stored key matches (byte-wise comparison, as the database does it).
    pub fn matches(&self, key: &str) -> bool {
        match self {
            KeyMatch::Exact(k) => k == key,
            KeyMatch::Range { lo, hi } => lo.as_str() <= key && key <= hi.as_str(),
        }
    }
}

/// Everything one look-up searches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lookup {
    /// What the officer typed, normalized.
    pub ident: Ident,
    /// Target keys to search (`key = ?` or `key BETWEEN ? AND ?`).
    pub keys: Vec<KeyMatch>,
    /// `(kind, value)` pairs to probe in the clean-up indicator table, values exactly as
    /// [`IndicatorValue::parse`] and its `Display` give them for that kind.
    pub indicators: Vec<(IndicatorKind, String)>,
}

/// Why a look-up string is not a usable identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentError {
    /// Nothing but white space.
    #[error(
        "nothing to look up: type an IP address, network, domain, URL, e-mail address, phone number, file hash \
         or AS number"
    )]
    Empty,
    /// Longer than [`MAX_INPUT_LEN`] bytes.
    #[error("the input is {0} bytes long; at most 2048 bytes are accepted")]
    TooLong(usize),
    /// No kind was given and the value is none of the kinds that can be recognised.
    #[error(
        "'{0}' is not recognised: expected an IP address (192.0.2.1, 2001:db8::1), a CIDR network \
         (203.0.113.0/24), a domain (example.com), a URL with its scheme (https://example.com/x), an e-mail \
         address, a phone number starting with + or 00, a file hash (32, 40 or 64 hex digits) or an AS number \
         (AS64500); an account, wallet or bank account needs its kind"
    )]
    Unrecognised(String),
    /// Looks like an account handle, which needs the kind and the service.
    #[error(
        "'{0}' looks like an account handle: look it up with the kind account, written service:identifier \
         (e.g. telegram:@example_user)"
    )]
    LooksLikeHandle(String),
    /// Not an IP address.
    #[error("'{0}' is not an IP address: expected IPv4 (192.0.2.1) or IPv6 (2001:db8::1)")]
    BadIp(String),
    /// A network given where a single address was asked for.
    #[error("'{0}' is a network, not a single address: look it up with the kind network")]
    NotAnAddress(String),
    /// Not a CIDR network.
    #[error(
        "'{0}' is not a CIDR network: expected an address and a prefix length, e.g. 203.0.113.0/24 or \
         2001:db8::/48"
    )]
    BadNetwork(String),
    /// Not a host name.
    #[error("'{0}' is not a domain name: expected a host name such as example.com or bücher.example")]
    BadDomain(String),
    /// Not a URL.
    #[error("'{0}' is not a URL: expected e.g. https://example.com/path")]
    BadUrl(String),
    /// Not an e-mail address.
    #[error("'{0}' is not an e-mail address: expected local-part@domain, e.g. abuse@example.com")]
    BadEmail(String),
    /// Not a file hash.
    #[error("'{0}' is not a file hash: expected 32, 40 or 64 hex digits (MD5, SHA-1, SHA-256)")]
    BadHash(String),
    /// Not an AS number.
    #[error("'{0}' is not an AS number: expected AS64500 or 64500 (1 to 4294967295)")]
    BadAsn(String),
    /// Not a phone number.
    #[error("'{value}' is not a phone number: {reason}")]
    BadPhone {
        /// The value as typed (clipped).
        value: String,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// A national phone number without a usable default country.
    #[error(
        "'{value}' is a national phone number and {reason}: write it with + and the country code \
         (e.g. +44 20 7946 0018)"
    )]
    NationalPhone {
        /// The value as typed (clipped).
        value: String,
        /// Why no country applies.
        reason: String,
    },
    /// An account, wallet or bank account not written as two parts separated by `:`.
    #[error("'{value}' is not a valid {kind} reference: write it as {form}")]
    BadPair {
        /// The kind asked for.
        kind: IdentKind,
        /// The value as typed (clipped).
        value: String,
        /// The expected form, with an example.
        form: &'static str,
    },
}

/// Keys under which a request target is indexed (at most a handful; deduplicated, sorted).
///
/// An IP address gives its IP key; a domain its `dom:` key (the IP key when the name is an IP
/// literal); a URL its `url:` key and its host's key; an e-mail address its `mail:` key and its
/// domain's key; an account, phone number, wallet or bank account its own key.
/// `default_country` (ISO 3166-1 alpha-2) reads national phone numbers.
///
/// A value that does not normalize (a bad phone number, a bad domain) gives no key for that
/// part; this never fails: targets are validated elsewhere.
pub fn target_keys(t: &TargetValue, default_country: Option<&str>) -> Vec<String> {
    let mut keys = Vec::with_capacity(2);
    match t {
        TargetValue::Ip { address, .. } => keys.push(ip_key(*address)),
        TargetValue::Domain { name } => keys.extend(host_key(name)),
        TargetValue::Url { url } => {
            if let Ok(IndicatorValue::Text(IndicatorKind::Url, u)) = IndicatorValue::parse(IndicatorKind::Url, url) {
                keys.extend(url_host(&u).and_then(host_key));
                keys.push(format!("url:{u}"));
            }
        }
        TargetValue::Email { address } => {
            if let Ok(IndicatorValue::Text(IndicatorKind::Email, e)) =
                IndicatorValue::parse(IndicatorKind::Email, address)
            {
                keys.extend(e.rsplit_once('@').and_then(|(_, d)| host_key(d)));
                keys.push(format!("mail:{e}"));
            }
        }
        TargetValue::Account { service, identifier } => {
            keys.extend(account(service, identifier).map(|a| format!("acct:{a}")));
        }
        TargetValue::Phone { number } => {
            keys.extend(phone(number, default_country).ok().map(|p| format!("tel:{p}")));
        }
        TargetValue::CryptoWallet { currency, address } => {
            keys.extend(wallet(currency, address).map(|w| format!("wal:{w}")));
        }
        TargetValue::BankAccount {
            institution,
            identifier,
        } => keys.extend(bank(institution, identifier).map(|b| format!("bank:{b}"))),
    }
    keys.sort();
    keys.dedup();
    keys
}

/// Parses what an officer typed into the keys and indicator values to search.
///
/// With `kind` `None` the kind is detected: an IP address, a CIDR network, a URL with its
/// scheme, an e-mail address, a phone number starting with `+` or `00` (digits, spaces, dots,
/// hyphens, parentheses), a file hash, `AS123`, a domain. An account needs
/// `kind = Account` and the form `service:identifier`, a wallet `currency:address` with
/// `kind = Wallet`, a bank account `institution:identifier` with `kind = Bank`; a bare AS
/// number `64500` needs `kind = Asn`, a national phone number `kind = Phone` and a
/// `default_country` (ISO 3166-1 alpha-2). Input longer than [`MAX_INPUT_LEN`] bytes is an
/// error.
///
/// Keys: an IP gives its key; a network the inclusive range of its addresses' keys; every other
/// kind its own key. Indicators: an address gives itself (an IPv4 address also its
/// IPv4-mapped IPv6 spelling `::ffff:a.b.c.d`, which the model keeps as an IPv6 indicator when a
/// feed declares it IPv6) and every network containing it down to /8 (IPv4) or /16 (IPv6), /32
/// and /128 included (the model keeps a `/32` network as a network); a network gives itself, every larger network down to /8 or /16
/// and, when it holds at most 256 addresses, each address; a domain, URL, e-mail address, hash
/// or AS number gives itself; phone numbers, accounts, wallets and bank accounts give none.
pub fn lookup(raw: &str, kind: Option<IdentKind>, default_country: Option<&str>) -> Result<Lookup, IdentError> {
    if raw.len() > MAX_INPUT_LEN {
        return Err(IdentError::TooLong(raw.len()));
    }
    let s = raw.trim();
    if s.is_empty() {
        return Err(IdentError::Empty);
    }
    let norm = match kind {
        Some(k) => normalize_as(s, k, default_country)?,
        None => detect(s, default_country)?,
    };
    Ok(build(norm))
}

/// A normalized identifier before its keys and probes are built.
enum Norm {
    Ip(IpAddr),
    Net(IpNet),
    Asn(u32),
    /// Every other kind: the normalized text, which is also the key without its prefix.
    Text(IdentKind, String),
}

fn build(norm: Norm) -> Lookup {
    match norm {
        Norm::Ip(ip) => Lookup {
            ident: Ident {
                kind: IdentKind::Ip,
                display: ip.to_string(),
            },
            keys: vec![KeyMatch::Exact(ip_key(ip))],
            indicators: ip_probes(ip),
        },
        Norm::Net(net) => Lookup {
            ident: Ident {
                kind: IdentKind::Network,
                display: net.to_string(),
            },
            keys: net_ranges(net),
            indicators: net_probes(net),
        },
        Norm::Asn(asn) => {
            let display = IndicatorValue::Asn(asn).to_string();
            Lookup {
                keys: vec![KeyMatch::Exact(format!("asn:{asn}"))],
                indicators: vec![(IndicatorKind::Asn, display.clone())],
                ident: Ident {
                    kind: IdentKind::Asn,
                    display,
                },
            }
        }
        Norm::Text(kind, text) => {
            let probe = match kind {
                IdentKind::Domain => Some(IndicatorKind::Domain),
                IdentKind::Url => Some(IndicatorKind::Url),
                IdentKind::Email => Some(IndicatorKind::Email),
                IdentKind::FileHash => Some(IndicatorKind::FileHash),
                _ => None,
            };
            Lookup {
                keys: vec![KeyMatch::Exact(format!("{}{text}", kind.text_prefix()))],
                indicators: probe.map(|k| (k, text.clone())).into_iter().collect(),
                ident: Ident { kind, display: text },
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Kind detection and per-kind normalization
// ---------------------------------------------------------------------------------------------

fn detect(s: &str, default_country: Option<&str>) -> Result<Norm, IdentError> {
    if let Some(ip) = ip_literal(s) {
        return Ok(Norm::Ip(canonical_ip(ip)));
    }
    // Nothing else starts with '+'; "00…" is a phone number unless it is a hash of digits.
    if s.starts_with('+') || (s.starts_with("00") && is_phone_shaped(s) && !is_hash_shaped(s)) {
        return phone(s, default_country).map(|p| Norm::Text(IdentKind::Phone, p));
    }
    if s.starts_with('@') {
        return Err(IdentError::LooksLikeHandle(clip(s)));
    }
    match IndicatorValue::detect(s) {
        Ok(v) => from_value(v, s),
        Err(e) => Err(value_error(&e, s)),
    }
}

fn normalize_as(s: &str, kind: IdentKind, default_country: Option<&str>) -> Result<Norm, IdentError> {
    match kind {
        IdentKind::Ip => match ip_literal(s) {
            Some(ip) => Ok(Norm::Ip(canonical_ip(ip))),
            None if s.contains('/') && s.parse::<IpNet>().is_ok() => Err(IdentError::NotAnAddress(clip(s))),
            None => Err(IdentError::BadIp(clip(s))),
        },
        IdentKind::Network => {
            if let Some(ip) = ip_literal(s) {
                return Ok(Norm::Net(canonical_net(IpNet::from(ip))));
            }
            match IndicatorValue::parse(IndicatorKind::Cidr, s) {
                Ok(IndicatorValue::Cidr(n)) => Ok(Norm::Net(canonical_net(n))),
                _ => Err(IdentError::BadNetwork(clip(s))),
            }
        }
        IdentKind::Domain => {
            if let Some(ip) = ip_literal(s) {
                return Ok(Norm::Ip(canonical_ip(ip)));
            }
            parse_value(IndicatorKind::Domain, s)
        }
        IdentKind::Url => parse_value(IndicatorKind::Url, s),
        IdentKind::Email => parse_value(IndicatorKind::Email, s),
        IdentKind::FileHash => parse_value(IndicatorKind::FileHash, s),
        IdentKind::Asn => parse_asn(s).map(Norm::Asn).ok_or_else(|| IdentError::BadAsn(clip(s))),
        IdentKind::Phone => phone(s, default_country).map(|p| Norm::Text(kind, p)),
        IdentKind::Account => pair(s, kind, account, "service:identifier, e.g. telegram:@example_user"),
        IdentKind::Wallet => pair(
            s,
            kind,
            wallet,
            "currency:address, e.g. btc:bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
        ),
        IdentKind::Bank => pair(
            s,
            kind,
            bank,
            "institution:identifier, e.g. example bank:DE89 3704 0044 0532 0130 00",
        ),
    }
}

/// Parses with the indicator model and maps its value and error.
fn parse_value(kind: IndicatorKind, s: &str) -> Result<Norm, IdentError> {
    match IndicatorValue::parse(kind, s) {
        Ok(v) => from_value(v, s),
        Err(e) => Err(value_error(&e, s)),
    }
}

/// Reads `first:second` with `f`, splitting at the first `:`.
fn pair(s: &str, kind: IdentKind, f: fn(&str, &str) -> Option<String>, form: &'static str) -> Result<Norm, IdentError> {
    s.split_once(':')
        .and_then(|(a, b)| f(a, b))
        .map(|t| Norm::Text(kind, t))
        .ok_or_else(|| IdentError::BadPair {
            kind,
            value: clip(s),
            form,
        })
}

fn from_value(v: IndicatorValue, s: &str) -> Result<Norm, IdentError> {
    Ok(match v {
        IndicatorValue::Ipv4(a) => Norm::Ip(IpAddr::V4(a)),
        IndicatorValue::Ipv6(a) => Norm::Ip(canonical_ip(IpAddr::V6(a))),
        IndicatorValue::Cidr(n) => Norm::Net(canonical_net(n)),
        IndicatorValue::Asn(a) => Norm::Asn(a),
        IndicatorValue::Text(k, t) => {
            let kind = match k {
                IndicatorKind::Domain => IdentKind::Domain,
                IndicatorKind::Url => IdentKind::Url,
                IndicatorKind::Email => IdentKind::Email,
                IndicatorKind::FileHash => IdentKind::FileHash,
                // The model keeps only these kinds as text.
                _ => return Err(IdentError::Unrecognised(clip(s))),
            };
            Norm::Text(kind, t.into_string())
        }
    })
}

fn value_error(e: &ValueError, s: &str) -> IdentError {
    let v = clip(s);
    match e {
        ValueError::BadIp(_) => IdentError::BadIp(v),
        ValueError::BadCidr(_) => IdentError::BadNetwork(v),
        ValueError::BadDomain(_) => IdentError::BadDomain(v),
        ValueError::BadUrl(_) => IdentError::BadUrl(v),
        ValueError::BadEmail(_) => IdentError::BadEmail(v),
        ValueError::BadHash(_) => IdentError::BadHash(v),
        ValueError::BadAsn(_) => IdentError::BadAsn(v),
        ValueError::Unrecognised(_) => IdentError::Unrecognised(v),
        ValueError::Empty => IdentError::Empty,
    }
}

/// The value for an error message: at most [`QUOTE_LEN`] bytes, cut at a character boundary.
fn clip(s: &str) -> String {
    if s.len() <= QUOTE_LEN {
        return s.to_string();
    }
    let mut end = QUOTE_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn is_hash_shaped(s: &str) -> bool {
    matches!(s.len(), 32 | 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

// ---------------------------------------------------------------------------------------------
// IP addresses and networks
// ---------------------------------------------------------------------------------------------

/// An IP literal, optionally in brackets (`[2001:db8::1]`).
fn ip_literal(s: &str) -> Option<IpAddr> {
    let inner = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(s);
    parse_ip(inner)
}

/// An IPv4-mapped IPv6 address is its IPv4 address.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// Truncated to its network; an IPv6 network inside `::ffff:0:0/96` becomes the IPv4 network of
/// the addresses it maps.
fn canonical_net(net: IpNet) -> IpNet {
    let net = net.trunc();
    match net {
        IpNet::V6(n) if n.prefix_len() >= 96 => match n.network().to_ipv4_mapped() {
            Some(a) => Ipv4Net::new(a, n.prefix_len() - 96).map_or(net, IpNet::V4),
            None => net,
        },
        _ => net,
    }
}

fn ip4_key(a: Ipv4Addr) -> String {
    format!("ip4:{:08x}", u32::from(a))
}

fn ip6_key(a: Ipv6Addr) -> String {
    format!("ip6:{:032x}", u128::from(a))
}

fn ip_key(ip: IpAddr) -> String {
    match canonical_ip(ip) {
        IpAddr::V4(a) => ip4_key(a),
        IpAddr::V6(a) => ip6_key(a),
    }
}

/// The key of a host: an IP literal (brackets allowed) or a domain name.
fn host_key(host: &str) -> Option<String> {
    if let Some(inner) = host.strip_prefix('[') {
        return inner.strip_suffix(']').and_then(parse_ip).map(ip_key);
    }
    match IndicatorValue::parse(IndicatorKind::Domain, host).ok()? {
        IndicatorValue::Ipv4(a) => Some(ip4_key(a)),
        IndicatorValue::Ipv6(a) => Some(ip_key(IpAddr::V6(a))),
        IndicatorValue::Text(IndicatorKind::Domain, d) => Some(format!("dom:{d}")),
        _ => None,
    }
}

/// The key ranges of a (canonical) network's addresses. An IPv6 network that contains
/// `::ffff:0:0/96` also contains every IPv4-mapped address, whose keys are IPv4 keys.
fn net_ranges(net: IpNet) -> Vec<KeyMatch> {
    match net {
        IpNet::V4(n) => vec![KeyMatch::Range {
            lo: ip4_key(n.network()),
            hi: ip4_key(n.broadcast()),
        }],
        IpNet::V6(n) => {
            let mut keys = vec![KeyMatch::Range {
                lo: ip6_key(n.network()),
                hi: ip6_key(n.broadcast()),
            }];
            let mapped_base = Ipv4Addr::UNSPECIFIED.to_ipv6_mapped();
            if n.prefix_len() <= 96 && n.contains(&mapped_base) {
                keys.push(KeyMatch::Range {
                    lo: ip4_key(Ipv4Addr::UNSPECIFIED),
                    hi: ip4_key(Ipv4Addr::BROADCAST),
                });
            }
            keys
        }
    }
}

fn cidr_probe(net: IpNet) -> (IndicatorKind, String) {
    (IndicatorKind::Cidr, IndicatorValue::Cidr(net).to_string())
}

/// An address, its IPv4-mapped IPv6 spelling for an IPv4 address (stored as an IPv6 indicator
/// when a feed declares it IPv6), and every network containing it down to the floor.
fn ip_probes(ip: IpAddr) -> Vec<(IndicatorKind, String)> {
    let mut out = Vec::new();
    match ip {
        IpAddr::V4(a) => {
            out.push((IndicatorKind::Ipv4, IndicatorValue::Ipv4(a).to_string()));
            out.push((
                IndicatorKind::Ipv6,
                IndicatorValue::Ipv6(a.to_ipv6_mapped()).to_string(),
            ));
            for len in (V4_FLOOR..=32).rev() {
                if let Ok(n) = Ipv4Net::new(a, len) {
                    out.push(cidr_probe(IpNet::V4(n.trunc())));
                }
            }
        }
        IpAddr::V6(a) => {
            out.push((IndicatorKind::Ipv6, IndicatorValue::Ipv6(a).to_string()));
            for len in (V6_FLOOR..=128).rev() {
                if let Ok(n) = Ipv6Net::new(a, len) {
                    out.push(cidr_probe(IpNet::V6(n.trunc())));
                }
            }
        }
    }
    out
}

/// A network, every larger network down to the floor, and its addresses when it is small.
fn net_probes(net: IpNet) -> Vec<(IndicatorKind, String)> {
    let mut out = vec![cidr_probe(net)];
    let floor = match net {
        IpNet::V4(_) => V4_FLOOR,
        IpNet::V6(_) => V6_FLOOR,
    };
    let mut cur = net;
    while cur.prefix_len() > floor {
        let Some(up) = cur.supernet() else { break };
        out.push(cidr_probe(up));
        cur = up;
    }
    match net {
        IpNet::V4(n) if n.prefix_len() >= 32 - ADDRESS_PROBE_BITS => {
            for a in u32::from(n.network())..=u32::from(n.broadcast()) {
                out.push((IndicatorKind::Ipv4, IndicatorValue::Ipv4(Ipv4Addr::from(a)).to_string()));
            }
        }
        IpNet::V6(n) if n.prefix_len() >= 128 - ADDRESS_PROBE_BITS => {
            for a in u128::from(n.network())..=u128::from(n.broadcast()) {
                out.push((IndicatorKind::Ipv6, IndicatorValue::Ipv6(Ipv6Addr::from(a)).to_string()));
            }
        }
        _ => {}
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Accounts, wallets, bank accounts
// ---------------------------------------------------------------------------------------------

/// `service:identifier`, both trimmed and lower case, one leading `@` removed.
fn account(service: &str, identifier: &str) -> Option<String> {
    let service = service.trim().to_lowercase();
    let id = identifier.trim();
    let id = id.strip_prefix('@').unwrap_or(id).trim().to_lowercase();
    (!service.is_empty() && !id.is_empty()).then(|| format!("{service}:{id}"))
}

/// `currency:address`: currency lower case; Ethereum-style and bech32 addresses lower case,
/// any other address as written (trimmed).
fn wallet(currency: &str, address: &str) -> Option<String> {
    let currency = currency.trim().to_lowercase();
    let a = address.trim();
    if currency.is_empty() || a.is_empty() {
        return None;
    }
    if is_eth_address(a) || is_bech32_address(a) {
        Some(format!("{currency}:{}", a.to_ascii_lowercase()))
    } else {
        Some(format!("{currency}:{a}"))
    }
}

/// `0x` and 40 hex digits (EIP-55 mixed case is only a checksum).
fn is_eth_address(a: &str) -> bool {
    a.len() == 42 && (a.starts_with("0x") || a.starts_with("0X")) && a.bytes().skip(2).all(|b| b.is_ascii_hexdigit())
}

/// A bech32 / bech32m address of Bitcoin main or test net or Litecoin (BIP 173: one case only,
/// the lower-case form is canonical).
fn is_bech32_address(a: &str) -> bool {
    ["bc1", "tb1", "ltc1"]
        .iter()
        .any(|hrp| a.len() > hrp.len() && a.get(..hrp.len()).is_some_and(|p| p.eq_ignore_ascii_case(hrp)))
        && a.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `institution:IDENTIFIER`: institution lower case; identifier without white space and
/// hyphens, upper case (IBAN style).
fn bank(institution: &str, identifier: &str) -> Option<String> {
    let inst = institution.trim().to_lowercase();
    let id: String = identifier
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect();
    (!inst.is_empty() && !id.is_empty()).then(|| format!("{inst}:{id}"))
}

// ---------------------------------------------------------------------------------------------
// Phone numbers
// ---------------------------------------------------------------------------------------------

/// How national phone numbers of a country are written.
struct PhoneCountry {
    /// ISO 3166-1 alpha-2 code.
    iso: &'static str,
    /// Country calling code (ITU-T E.164), without `+`.
    code: &'static str,
    /// Trunk prefix dialled before a national number inside the country; `""` when there is
    /// none (the number's first digit, even a 0, is part of the number).
    trunk: &'static str,
    /// Length range of the national significant number, given only where it is fixed and
    /// needed: to tell the trunk prefix from a first digit equal to it, or to refuse abolished
    /// dialling forms.
    nsn: Option<(usize, usize)>,
}

const fn pc(iso: &'static str, code: &'static str, trunk: &'static str) -> PhoneCountry {
    PhoneCountry {
        iso,
        code,
        trunk,
        nsn: None,
    }
}

const fn pc_len(iso: &'static str, code: &'static str, trunk: &'static str, lo: usize, hi: usize) -> PhoneCountry {
    PhoneCountry {
        iso,
        code,
        trunk,
        nsn: Some((lo, hi)),
    }
}

/// Country calling codes from the ITU-T E.164 list of assigned country codes; national trunk
/// prefixes from the national numbering plans as notified to the ITU. Trunk prefix "0" unless
/// noted.
///
/// Left out: AR (+54). Its national form of mobile numbers inserts `15` after the area code,
/// while the international form inserts `9` after the country code; a plain trunk-prefix rule
/// would index such a number under a key that its international form never gives.
const PHONE_COUNTRIES: [PhoneCountry; 44] = [
    // North American Numbering Plan: trunk prefix 1. The national number always has 10 digits
    // and never starts with 1, so "1 202 555 0100" and "202 555 0100" are one number.
    pc_len("US", "1", "1", 10, 10),
    pc_len("CA", "1", "1", 10, 10),
    pc("GB", "44", "0"),
    pc("FR", "33", "0"),
    pc("DE", "49", "0"),
    // Italy: no trunk prefix; the leading 0 of fixed-line numbers is part of the number
    // (+39 06 …) since 1998.
    pc("IT", "39", ""),
    // Spain: no trunk prefix (closed 9-digit numbering since 1998).
    pc("ES", "34", ""),
    pc("NL", "31", "0"),
    pc("BE", "32", "0"),
    pc("CH", "41", "0"),
    pc("AT", "43", "0"),
    pc("SE", "46", "0"),
    // Norway: no trunk prefix (closed 8-digit numbering).
    pc("NO", "47", ""),
    // Denmark: no trunk prefix (closed 8-digit numbering).
    pc("DK", "45", ""),
    pc("FI", "358", "0"),
    // Poland: no trunk prefix (closed 9-digit numbering since 2005).
    pc("PL", "48", ""),
    pc("IE", "353", "0"),
    // Portugal: no trunk prefix (closed 9-digit numbering since 1999).
    pc("PT", "351", ""),
    // Russia: trunk prefix 8 (not 0). The national number always has 10 digits and may itself
    // start with 8 (812 St Petersburg, 800 freephone), so 8 is the trunk prefix only on 11
    // digits.
    pc_len("RU", "7", "8", 10, 10),
    pc("UA", "380", "0"),
    pc("TR", "90", "0"),
    pc("IL", "972", "0"),
    pc("IN", "91", "0"),
    // China: trunk prefix 0 before area codes; mobile numbers are written without it.
    pc("CN", "86", "0"),
    // Hong Kong, Macao, Singapore: no trunk prefix (closed 8-digit numbering).
    pc("HK", "852", ""),
    pc("MO", "853", ""),
    pc("TW", "886", "0"),
    pc("JP", "81", "0"),
    pc("KR", "82", "0"),
    pc("SG", "65", ""),
    pc("MY", "60", "0"),
    pc("TH", "66", "0"),
    pc("VN", "84", "0"),
    pc("PH", "63", "0"),
    pc("ID", "62", "0"),
    pc("AU", "61", "0"),
    pc("NZ", "64", "0"),
    // Brazil: trunk prefix 0; the national number is 10 (fixed) or 11 (mobile) digits. The
    // long-distance form with a carrier selection code (0 + carrier + area code) is refused
    // rather than guessed.
    pc_len("BR", "55", "0", 10, 11),
    // Mexico: no trunk prefix since August 2019 (the 01/044/045 prefixes were abolished);
    // national numbers have 10 digits, so the old forms are refused rather than misread.
    pc_len("MX", "52", "", 10, 10),
    pc("ZA", "27", "0"),
    pc("NG", "234", "0"),
    pc("EG", "20", "0"),
    pc("AE", "971", "0"),
    pc("SA", "966", "0"),
];

fn phone_country(iso: &str) -> Option<&'static PhoneCountry> {
    PHONE_COUNTRIES.iter().find(|c| c.iso.eq_ignore_ascii_case(iso))
}

fn is_phone_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '.' | '-' | '(' | ')')
}

/// Digits, separators and a leading `+` only.
fn is_phone_shaped(s: &str) -> bool {
    let body = s.strip_prefix('+').unwrap_or(s);
    body.chars().all(|c| c.is_ascii_digit() || is_phone_separator(c))
}

/// A phone number in E.164 form (`+` and 8 to 15 digits).
///
/// Spaces, dots, hyphens and parentheses are ignored; `00` before the country code is read as
/// `+`, and a `(0)` after the country code (`+44 (0)20 …`) is dropped. A national number needs
/// `default_country`: its trunk prefix is removed and its country code put in front.
fn phone(raw: &str, default_country: Option<&str>) -> Result<String, IdentError> {
    let s = raw.trim();
    let bad = |reason: String| IdentError::BadPhone { value: clip(s), reason };
    if !is_phone_shaped(s) {
        return Err(bad(
            "only digits, spaces, dots, hyphens, parentheses and a leading + are allowed".into(),
        ));
    }
    let digits_of = |t: &str| -> String { t.chars().filter(char::is_ascii_digit).collect() };
    let digits = digits_of(s);
    if digits.is_empty() {
        return Err(bad("it has no digits".into()));
    }
    // In an international number a "(0)" is the trunk prefix shown for national callers; in a
    // national number it is the trunk prefix itself and stays.
    let without_zero = if s.contains("(0)") {
        digits_of(&s.replace("(0)", " "))
    } else {
        digits.clone()
    };
    let international = if s.starts_with('+') {
        Some(without_zero.as_str())
    } else {
        without_zero.strip_prefix("00")
    };
    let e164 = if let Some(number) = international {
        if number.starts_with('0') {
            return Err(bad("a country code never starts with 0 (after + or 00)".into()));
        }
        number.to_string()
    } else {
        let national = |reason: String| IdentError::NationalPhone { value: clip(s), reason };
        let iso = default_country.map(str::trim).filter(|c| !c.is_empty());
        let Some(iso) = iso else {
            return Err(national("no default country is set".into()));
        };
        let Some(country) = phone_country(iso) else {
            return Err(national(format!(
                "the default country '{}' is not in the phone table",
                clip(iso)
            )));
        };
        let fits = |n: &str| country.nsn.is_none_or(|(lo, hi)| (lo..=hi).contains(&n.len()));
        let mut nsn = digits.as_str();
        if let Some(rest) = nsn.strip_prefix(country.trunk)
            && !country.trunk.is_empty()
            && fits(rest)
        {
            nsn = rest;
        }
        if let Some((lo, hi)) = country.nsn
            && !fits(nsn)
        {
            let digits = if lo == hi {
                lo.to_string()
            } else {
                format!("{lo} to {hi}")
            };
            let after = if country.trunk.is_empty() {
                String::new()
            } else {
                format!(" after the trunk prefix {}", country.trunk)
            };
            return Err(bad(format!(
                "a national number of {} has {digits} digits{after}; this one has {}",
                country.iso,
                nsn.len()
            )));
        }
        if nsn.is_empty() {
            return Err(bad("it has no digits after the trunk prefix".into()));
        }
        format!("{}{nsn}", country.code)
    };
    if !(8..=15).contains(&e164.len()) {
        return Err(bad(format!(
            "an international number has 8 to 15 digits after the + (ITU-T E.164); this one has {}",
            e164.len()
        )));
    }
    Ok(format!("+{e164}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(l: &Lookup) -> &str {
        match l.keys.as_slice() {
            [KeyMatch::Exact(k)] => k,
            other => panic!("expected one exact key, got {other:?}"),
        }
    }

    fn target(json: &str) -> TargetValue {
        serde_json::from_str(json).unwrap()
    }

    fn ip_target(address: &str) -> TargetValue {
        target(&format!(
            r#"{{"type":"ip","address":"{address}","observed_at":"2026-01-01T00:00:00Z"}}"#
        ))
    }

    #[test]
    fn ip_addresses_have_one_key_whatever_their_spelling() {
        let cases = [
            ("192.0.2.1", "ip4:c0000201", "192.0.2.1"),
            ("  192.0.2.1\t", "ip4:c0000201", "192.0.2.1"),
            ("0.0.0.0", "ip4:00000000", "0.0.0.0"),
            ("255.255.255.255", "ip4:ffffffff", "255.255.255.255"),
            ("::ffff:192.0.2.1", "ip4:c0000201", "192.0.2.1"),
            ("::FFFF:C000:0201", "ip4:c0000201", "192.0.2.1"),
            ("[::ffff:192.0.2.1]", "ip4:c0000201", "192.0.2.1"),
            ("2001:db8::1", "ip6:20010db8000000000000000000000001", "2001:db8::1"),
            ("2001:DB8::1", "ip6:20010db8000000000000000000000001", "2001:db8::1"),
            (
                "2001:0db8:0000:0000:0000:0000:0000:0001",
                "ip6:20010db8000000000000000000000001",
                "2001:db8::1",
            ),
            ("[2001:db8::1]", "ip6:20010db8000000000000000000000001", "2001:db8::1"),
            (
                "64:ff9b::192.0.2.1",
                "ip6:0064ff9b0000000000000000c0000201",
                "64:ff9b::c000:201",
            ),
            (
                "64:FF9B::C000:201",
                "ip6:0064ff9b0000000000000000c0000201",
                "64:ff9b::c000:201",
            ),
            ("::", "ip6:00000000000000000000000000000000", "::"),
        ];
        for (input, key, display) in cases {
            for kind in [None, Some(IdentKind::Ip), Some(IdentKind::Domain)] {
                let l = lookup(input, kind, None).unwrap();
                assert_eq!(l.ident.kind, IdentKind::Ip, "{input} {kind:?}");
                assert_eq!(l.ident.display, display, "{input}");
                assert_eq!(exact(&l), key, "{input}");
            }
            let addr = input.trim().trim_start_matches('[').trim_end_matches(']');
            assert_eq!(target_keys(&ip_target(addr), None), [key], "{input}");
        }
        assert!(matches!(
            lookup("203.0.113.0/24", Some(IdentKind::Ip), None),
            Err(IdentError::NotAnAddress(_))
        ));
        assert!(matches!(
            lookup("1.2.3.999", Some(IdentKind::Ip), None),
            Err(IdentError::BadIp(_))
        ));
        assert!(matches!(
            lookup("example.com", Some(IdentKind::Ip), None),
            Err(IdentError::BadIp(_))
        ));
    }

    #[test]
    fn networks_are_key_ranges_over_their_addresses() {
        /// Input, kind given, display, key ranges `(lo, hi)`.
        type Case<'a> = (&'a str, Option<IdentKind>, &'a str, &'a [(&'a str, &'a str)]);
        let cases: [Case; 8] = [
            (
                "203.0.113.7/24",
                None,
                "203.0.113.0/24",
                &[("ip4:cb007100", "ip4:cb0071ff")],
            ),
            (
                "203.0.113.5/32",
                None,
                "203.0.113.5/32",
                &[("ip4:cb007105", "ip4:cb007105")],
            ),
            (
                "203.0.113.5",
                Some(IdentKind::Network),
                "203.0.113.5/32",
                &[("ip4:cb007105", "ip4:cb007105")],
            ),
            ("0.0.0.0/0", None, "0.0.0.0/0", &[("ip4:00000000", "ip4:ffffffff")]),
            (
                "2001:DB8:1:2::17/64",
                None,
                "2001:db8:1:2::/64",
                &[(
                    "ip6:20010db8000100020000000000000000",
                    "ip6:20010db800010002ffffffffffffffff",
                )],
            ),
            (
                "2001:db8::1/128",
                Some(IdentKind::Network),
                "2001:db8::1/128",
                &[(
                    "ip6:20010db8000000000000000000000001",
                    "ip6:20010db8000000000000000000000001",
                )],
            ),
            // IPv4-mapped networks are IPv4 networks.
            (
                "::ffff:192.0.2.9/120",
                None,
                "192.0.2.0/24",
                &[("ip4:c0000200", "ip4:c00002ff")],
            ),
            // A network holding ::ffff:0:0/96 also holds every IPv4-mapped address.
            (
                "::/80",
                None,
                "::/80",
                &[
                    (
                        "ip6:00000000000000000000000000000000",
                        "ip6:00000000000000000000ffffffffffff",
                    ),
                    ("ip4:00000000", "ip4:ffffffff"),
                ],
            ),
        ];
        for (input, kind, display, ranges) in cases {
            let l = lookup(input, kind, None).unwrap();
            assert_eq!(l.ident.kind, IdentKind::Network, "{input}");
            assert_eq!(l.ident.display, display, "{input}");
            let want: Vec<KeyMatch> = ranges
                .iter()
                .map(|(lo, hi)| KeyMatch::Range {
                    lo: lo.to_string(),
                    hi: hi.to_string(),
                })
                .collect();
            assert_eq!(l.keys, want, "{input}");
        }
        assert!(matches!(
            lookup("203.0.113.0/33", Some(IdentKind::Network), None),
            Err(IdentError::BadNetwork(_))
        ));
    }

    #[test]
    fn a_range_holds_exactly_its_addresses() {
        let key = |s: &str| ip_key(s.parse().unwrap());
        let l = lookup("203.0.113.0/24", None, None).unwrap();
        let r = &l.keys[0];
        for inside in ["203.0.113.0", "203.0.113.1", "203.0.113.128", "203.0.113.255"] {
            assert!(r.matches(&key(inside)), "{inside}");
        }
        for outside in [
            "203.0.112.255",
            "203.0.114.0",
            "0.0.0.0",
            "255.255.255.255",
            "::ffff:cb00:6fff",
        ] {
            assert!(!r.matches(&key(outside)), "{outside}");
        }
        // A mapped address is the IPv4 address, so it is inside.
        assert!(r.matches(&key("::ffff:203.0.113.9")));
        // IPv6 keys never fall into an IPv4 range and the other way round.
        assert!(!r.matches(&key("2001:db8::1")));
        assert!(!r.matches("ip4:cb0071"));
        let l = lookup("2001:db8:1:2::/64", None, None).unwrap();
        let r = &l.keys[0];
        for inside in ["2001:db8:1:2::", "2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"] {
            assert!(r.matches(&key(inside)), "{inside}");
        }
        for outside in [
            "2001:db8:1:1:ffff:ffff:ffff:ffff",
            "2001:db8:1:3::",
            "203.0.113.1",
            "::",
        ] {
            assert!(!r.matches(&key(outside)), "{outside}");
        }
        // Byte order is numeric order.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..2000 {
            let a = xorshift(&mut x) as u32;
            let b = xorshift(&mut x) as u32;
            assert_eq!(
                a.cmp(&b),
                ip4_key(Ipv4Addr::from(a)).cmp(&ip4_key(Ipv4Addr::from(b))),
                "{a} {b}"
            );
            let c = (u128::from(xorshift(&mut x)) << 64) | u128::from(xorshift(&mut x));
            let d = (u128::from(xorshift(&mut x)) << 64) | u128::from(xorshift(&mut x));
            assert_eq!(c.cmp(&d), ip6_key(Ipv6Addr::from(c)).cmp(&ip6_key(Ipv6Addr::from(d))));
        }
    }

    #[test]
    fn internationalised_domains_have_one_key() {
        let cases = [
            ("Bücher.Example", "dom:xn--bcher-kva.example"),
            ("bücher.example.", "dom:xn--bcher-kva.example"),
            ("xn--bcher-kva.example", "dom:xn--bcher-kva.example"),
            ("XN--BCHER-KVA.EXAMPLE.", "dom:xn--bcher-kva.example"),
            ("Evil.Example.COM.", "dom:evil.example.com"),
            ("例え。テスト", "dom:xn--r8jz45g.xn--zckzah"),
        ];
        for (input, key) in cases {
            for kind in [None, Some(IdentKind::Domain)] {
                let l = lookup(input, kind, None).unwrap();
                assert_eq!(l.ident.kind, IdentKind::Domain, "{input}");
                assert_eq!(exact(&l), key, "{input}");
                assert_eq!(l.ident.display, &key[4..]);
                assert_eq!(l.indicators, [(IndicatorKind::Domain, key[4..].to_string())]);
            }
            let t = TargetValue::Domain { name: input.into() };
            assert_eq!(target_keys(&t, None), [key], "{input}");
        }
        // A domain target that is an IP literal is indexed as the IP.
        let t = TargetValue::Domain {
            name: "[2001:DB8::1]".into(),
        };
        assert_eq!(target_keys(&t, None), ["ip6:20010db8000000000000000000000001"]);
        let t = TargetValue::Domain {
            name: "192.0.2.1".into(),
        };
        assert_eq!(target_keys(&t, None), ["ip4:c0000201"]);
        let t = TargetValue::Domain {
            name: "not a domain".into(),
        };
        assert!(target_keys(&t, None).is_empty());
        assert!(matches!(
            lookup("xn--a.example", Some(IdentKind::Domain), None),
            Err(IdentError::BadDomain(_))
        ));
    }

    #[test]
    fn url_and_email_targets_are_also_found_by_their_host() {
        let cases: [(TargetValue, &[&str]); 6] = [
            (
                TargetValue::Url {
                    url: "https://Bücher.Example:8443/Pfad?q=1".into(),
                },
                &[
                    "dom:xn--bcher-kva.example",
                    "url:https://xn--bcher-kva.example:8443/Pfad?q=1",
                ],
            ),
            (
                TargetValue::Url {
                    url: "HTTP://Evil.Example./login".into(),
                },
                &["dom:evil.example", "url:http://evil.example./login"],
            ),
            (
                TargetValue::Url {
                    url: "http://user@198.51.100.7:8080/x".into(),
                },
                &["ip4:c6336407", "url:http://user@198.51.100.7:8080/x"],
            ),
            (
                TargetValue::Url {
                    url: "http://[2001:DB8::1]:80/x".into(),
                },
                &["ip6:20010db8000000000000000000000001", "url:http://[2001:db8::1]:80/x"],
            ),
            (
                TargetValue::Email {
                    address: "Abuse@Bücher.Example".into(),
                },
                &["dom:xn--bcher-kva.example", "mail:abuse@xn--bcher-kva.example"],
            ),
            (
                TargetValue::Email {
                    address: "no-at-sign".into(),
                },
                &[],
            ),
        ];
        for (t, keys) in cases {
            let got = target_keys(&t, None);
            assert_eq!(got, keys, "{t:?}");
            // The URL or address itself, and its host, are found by a look-up.
            let (raw, kind) = match &t {
                TargetValue::Url { url } => (url.as_str(), IdentKind::Url),
                TargetValue::Email { address } => (address.as_str(), IdentKind::Email),
                _ => unreachable!(),
            };
            if let Ok(l) = lookup(raw, Some(kind), None) {
                assert!(got.iter().any(|k| l.keys[0].matches(k)), "{raw}");
                assert_eq!(l.indicators.len(), 1);
            }
        }
        let host = lookup("bücher.example", None, None).unwrap();
        let url = lookup("https://bücher.example/", None, None).unwrap();
        assert_eq!(url.ident.kind, IdentKind::Url);
        assert_eq!(exact(&url), "url:https://xn--bcher-kva.example/");
        let t = target_keys(
            &TargetValue::Url {
                url: "https://bücher.example/".into(),
            },
            None,
        );
        assert!(t.iter().any(|k| host.keys[0].matches(k)));
        assert!(t.iter().any(|k| url.keys[0].matches(k)));
    }

    #[test]
    fn phone_numbers_become_e164() {
        let ok: [(&str, Option<&str>, &str); 16] = [
            ("+86 138 0013 8000", None, "+8613800138000"),
            ("0086-138-0013-8000", None, "+8613800138000"),
            ("+86 (138) 0013.8000", Some("US"), "+8613800138000"),
            ("(202) 555-0100", Some("US"), "+12025550100"),
            ("1 (202) 555-0100", Some("us"), "+12025550100"),
            ("+1 202 555 0100", None, "+12025550100"),
            ("020 7946 0018", Some("GB"), "+442079460018"),
            ("7946 0018 99", Some("GB"), "+447946001899"),
            ("+44 (0)20 7946 0018", None, "+442079460018"),
            ("0044 (0)20 7946 0018", None, "+442079460018"),
            ("06 1234 5678", Some("IT"), "+390612345678"),
            ("8 (812) 123-45-67", Some("RU"), "+78121234567"),
            ("812 123 45 67", Some("RU"), "+78121234567"),
            ("(11) 91234-5678", Some("BR"), "+5511912345678"),
            ("0 11 91234-5678", Some("BR"), "+5511912345678"),
            ("138 0013 8000", Some("CN"), "+8613800138000"),
        ];
        for (input, country, e164) in ok {
            let l = lookup(input, Some(IdentKind::Phone), country).unwrap();
            assert_eq!(l.ident.display, e164, "{input}");
            assert_eq!(exact(&l), format!("tel:{e164}"));
            assert!(l.indicators.is_empty());
            let t = TargetValue::Phone { number: input.into() };
            assert_eq!(target_keys(&t, country), [format!("tel:{e164}")], "{input}");
        }
        // Detected without a kind when written internationally.
        for input in ["+86 138 0013 8000", "0086-138-0013-8000"] {
            let l = lookup(input, None, None).unwrap();
            assert_eq!(l.ident.kind, IdentKind::Phone);
            assert_eq!(l.ident.display, "+8613800138000");
        }
        let national = [
            ("138 0013 8000", None),
            ("138 0013 8000", Some("")),
            ("138 0013 8000", Some("XX")),
            ("(202) 555-0100", Some("AR")),
        ];
        for (input, country) in national {
            let e = lookup(input, Some(IdentKind::Phone), country).unwrap_err();
            assert!(matches!(e, IdentError::NationalPhone { .. }), "{input} {e}");
            assert!(e.to_string().contains("with + and the country code"), "{e}");
            let t = TargetValue::Phone { number: input.into() };
            assert!(target_keys(&t, country).is_empty());
        }
        let bad: [(&str, Option<&str>); 12] = [
            ("+86 138 abcd 8000", None),
            ("call +86 138 0013 8000", Some("CN")),
            ("+86 1380", None),
            ("+86 1380 0138 0001 2345", None),
            ("+0086 138 0013 8000", None),
            ("+", None),
            ("0 21 11 91234-5678", Some("BR")),
            ("01 55 1234 5678", Some("MX")),
            ("202 555 010", Some("US")),
            ("0", Some("GB")),
            // Found by the random-input test: a "(0)" that is not after a country code.
            ("(0)0", Some("GB")),
            ("0(0)0", None),
        ];
        for (input, country) in bad {
            let e = lookup(input, Some(IdentKind::Phone), country).unwrap_err();
            assert!(matches!(e, IdentError::BadPhone { .. }), "{input}: {e}");
        }
        let e = lookup("+86 138 abcd 8000", None, None).unwrap_err();
        assert!(e.to_string().contains("only digits"), "{e}");
        // Every table entry is well formed and unique.
        for (i, c) in PHONE_COUNTRIES.iter().enumerate() {
            assert!(c.iso.len() == 2 && c.iso.bytes().all(|b| b.is_ascii_uppercase()));
            assert!(!c.code.starts_with('0') && c.code.bytes().all(|b| b.is_ascii_digit()));
            assert!(c.trunk.bytes().all(|b| b.is_ascii_digit()));
            assert!(PHONE_COUNTRIES[..i].iter().all(|o| o.iso != c.iso), "{}", c.iso);
        }
    }

    #[test]
    fn accounts_wallets_and_bank_accounts() {
        let cases: [(&str, IdentKind, &str); 9] = [
            ("Twitter:@ExampleUser", IdentKind::Account, "acct:twitter:exampleuser"),
            (
                " Telegram : @Example_User ",
                IdentKind::Account,
                "acct:telegram:example_user",
            ),
            ("github:Octo-Cat", IdentKind::Account, "acct:github:octo-cat"),
            (
                "ETH:0x52908400098527886E0F7030069857D2E4169EE7",
                IdentKind::Wallet,
                "wal:eth:0x52908400098527886e0f7030069857d2e4169ee7",
            ),
            (
                "BTC:BC1QAR0SRRR7XFKVY5L643LYDNW9RE59GTZZWF5MDQ",
                IdentKind::Wallet,
                "wal:btc:bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
            ),
            (
                "btc: 1BoatSLRHtKNngkdXEeobR76b53LETtpyT ",
                IdentKind::Wallet,
                "wal:btc:1BoatSLRHtKNngkdXEeobR76b53LETtpyT",
            ),
            (
                "bch:bitcoincash:qpm2qsznhks23z7629mms6s4cwef74vcwvy22gdx6a",
                IdentKind::Wallet,
                "wal:bch:bitcoincash:qpm2qsznhks23z7629mms6s4cwef74vcwvy22gdx6a",
            ),
            (
                "Example Bank:DE89 3704 0044 0532 0130 00",
                IdentKind::Bank,
                "bank:example bank:DE89370400440532013000",
            ),
            (
                " example bank :de89-3704-0044-0532-0130-00",
                IdentKind::Bank,
                "bank:example bank:DE89370400440532013000",
            ),
        ];
        for (input, kind, key) in cases {
            let l = lookup(input, Some(kind), None).unwrap();
            assert_eq!(l.ident.kind, kind);
            assert_eq!(exact(&l), key, "{input}");
            assert_eq!(l.ident.display, key.split_once(':').unwrap().1);
            assert!(l.indicators.is_empty());
            let (a, b) = input.split_once(':').unwrap();
            let t = match kind {
                IdentKind::Account => TargetValue::Account {
                    service: a.into(),
                    identifier: b.into(),
                },
                IdentKind::Wallet => TargetValue::CryptoWallet {
                    currency: a.into(),
                    address: b.into(),
                },
                _ => TargetValue::BankAccount {
                    institution: a.into(),
                    identifier: b.into(),
                },
            };
            assert_eq!(target_keys(&t, None), [key], "{input}");
        }
        for (input, kind) in [
            ("exampleuser", IdentKind::Account),
            ("twitter:@", IdentKind::Account),
            (":foo", IdentKind::Account),
            ("0x52908400098527886E0F7030069857D2E4169EE7", IdentKind::Wallet),
            ("DE89 3704 0044 0532 0130 00", IdentKind::Bank),
        ] {
            let e = lookup(input, Some(kind), None).unwrap_err();
            assert!(matches!(e, IdentError::BadPair { .. }), "{input}");
            assert!(e.to_string().contains("write it as"), "{e}");
        }
        // Handles and pairs are not guessed without a kind.
        assert!(matches!(
            lookup("@ExampleUser", None, None),
            Err(IdentError::LooksLikeHandle(_))
        ));
        assert!(matches!(
            lookup("telegram:foo", None, None),
            Err(IdentError::Unrecognised(_))
        ));
    }

    #[test]
    fn hashes_and_as_numbers() {
        let md5 = "D41D8CD98F00B204E9800998ECF8427E";
        let sha1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
        let sha256 = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
        for h in [md5, sha1, sha256] {
            for kind in [None, Some(IdentKind::FileHash)] {
                let l = lookup(h, kind, None).unwrap();
                let lower = h.to_ascii_lowercase();
                assert_eq!(l.ident.kind, IdentKind::FileHash);
                assert_eq!(exact(&l), format!("hash:{lower}"));
                assert_eq!(l.indicators, [(IndicatorKind::FileHash, lower)]);
            }
        }
        assert!(matches!(
            lookup(&md5[1..], Some(IdentKind::FileHash), None),
            Err(IdentError::BadHash(_))
        ));
        for (input, kind) in [
            ("AS64500", None),
            ("as64500", None),
            ("AS64500", Some(IdentKind::Asn)),
            ("64500", Some(IdentKind::Asn)),
        ] {
            let l = lookup(input, kind, None).unwrap();
            assert_eq!(l.ident.kind, IdentKind::Asn);
            assert_eq!(l.ident.display, "AS64500");
            assert_eq!(exact(&l), "asn:64500");
            assert_eq!(l.indicators, [(IndicatorKind::Asn, "AS64500".to_string())]);
        }
        assert!(lookup("64500", None, None).is_err());
        assert!(matches!(
            lookup("AS0", Some(IdentKind::Asn), None),
            Err(IdentError::BadAsn(_))
        ));
        assert!(matches!(
            lookup("AS4294967296", Some(IdentKind::Asn), None),
            Err(IdentError::BadAsn(_))
        ));
    }

    #[test]
    fn kinds_are_detected() {
        let cases = [
            ("192.0.2.1", IdentKind::Ip),
            ("2001:db8::1", IdentKind::Ip),
            ("[2001:db8::1]", IdentKind::Ip),
            ("2001:db8::/32", IdentKind::Network),
            ("192.0.2.0/24", IdentKind::Network),
            ("https://example.com/x", IdentKind::Url),
            ("hxxp://example.com/x", IdentKind::Url),
            ("abuse@example.com", IdentKind::Email),
            ("+86 138 0013 8000", IdentKind::Phone),
            ("0086 138 0013 8000", IdentKind::Phone),
            ("d41d8cd98f00b204e9800998ecf8427e", IdentKind::FileHash),
            // A hash made of digits only is a hash, not a phone number.
            ("00112233445566778899001122334455", IdentKind::FileHash),
            ("AS64500", IdentKind::Asn),
            ("example.com", IdentKind::Domain),
            ("bücher.example", IdentKind::Domain),
        ];
        for (input, kind) in cases {
            let l = lookup(input, None, None).unwrap();
            assert_eq!(l.ident.kind, kind, "{input}");
        }
        for input in ["", "   ", "example", "example.com/x", "not an identifier", "1.2.3.999"] {
            assert!(lookup(input, None, None).is_err(), "{input}");
        }
        assert_eq!(lookup(" \t", None, None), Err(IdentError::Empty));
        let e = lookup("example.com/x", None, None).unwrap_err().to_string();
        assert!(
            e.contains("'example.com/x'") && e.contains("URL with its scheme"),
            "{e}"
        );
    }

    #[test]
    fn kind_names() {
        for k in IdentKind::ALL {
            assert_eq!(k.to_string().parse::<IdentKind>().unwrap(), k);
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{k}\""));
        }
        assert_eq!(serde_json::to_string(&IdentKind::FileHash).unwrap(), "\"file_hash\"");
        assert_eq!("File-Hash".parse::<IdentKind>().unwrap(), IdentKind::FileHash);
        assert_eq!("crypto_wallet".parse::<IdentKind>().unwrap(), IdentKind::Wallet);
        let e = "walet".parse::<IdentKind>().unwrap_err().to_string();
        assert!(e.contains("'walet'") && e.contains("did you mean 'wallet'"), "{e}");
        assert!(e.contains("ip, network, domain, url, email, phone, account, wallet, bank, file_hash, asn"));
    }

    /// Every probe reads back through the indicator model as itself, with its kind.
    fn assert_probes_are_stored_values(l: &Lookup) {
        for (kind, value) in &l.indicators {
            let v = IndicatorValue::parse(*kind, value).unwrap();
            assert_eq!(v.kind(), *kind, "{value}");
            assert_eq!(&v.to_string(), value);
        }
    }

    #[test]
    fn indicator_probes_of_addresses_and_networks() {
        let cidrs = |l: &Lookup| -> Vec<String> {
            l.indicators
                .iter()
                .filter(|(k, _)| *k == IndicatorKind::Cidr)
                .map(|(_, v)| v.clone())
                .collect()
        };
        let l = lookup("192.0.2.1", None, None).unwrap();
        assert_probes_are_stored_values(&l);
        assert_eq!(l.indicators[0], (IndicatorKind::Ipv4, "192.0.2.1".to_string()));
        assert_eq!(l.indicators[1], (IndicatorKind::Ipv6, "::ffff:192.0.2.1".to_string()));
        let c = cidrs(&l);
        assert_eq!(c.len(), 25);
        for n in [
            "192.0.2.1/32",
            "192.0.2.0/31",
            "192.0.2.0/24",
            "192.0.0.0/16",
            "192.0.0.0/8",
        ] {
            assert!(c.iter().any(|x| x == n), "{n}");
        }
        assert_eq!(l.indicators.len(), 27);
        // A stored /32 network is found: it keeps its prefix in the model.
        assert_eq!(
            IndicatorValue::parse(IndicatorKind::Cidr, "192.0.2.1/32")
                .unwrap()
                .to_string(),
            "192.0.2.1/32"
        );
        assert_eq!(lookup("::ffff:192.0.2.1", None, None).unwrap(), l);

        let l = lookup("2001:db8::1", None, None).unwrap();
        assert_probes_are_stored_values(&l);
        let c = cidrs(&l);
        assert_eq!(c.len(), 113);
        assert_eq!(c.first().map(String::as_str), Some("2001:db8::1/128"));
        assert_eq!(c.last().map(String::as_str), Some("2001::/16"));

        let l = lookup("198.51.100.6/30", None, None).unwrap();
        assert_probes_are_stored_values(&l);
        let mut want = vec![(IndicatorKind::Cidr, "198.51.100.4/30".to_string())];
        for (len, net) in [
            (29, "198.51.100.0"),
            (28, "198.51.100.0"),
            (27, "198.51.100.0"),
            (26, "198.51.100.0"),
            (25, "198.51.100.0"),
            (24, "198.51.100.0"),
            (23, "198.51.100.0"),
            (22, "198.51.100.0"),
            (21, "198.51.96.0"),
            (20, "198.51.96.0"),
            (19, "198.51.96.0"),
            (18, "198.51.64.0"),
            (17, "198.51.0.0"),
            (16, "198.51.0.0"),
            (15, "198.50.0.0"),
            (14, "198.48.0.0"),
            (13, "198.48.0.0"),
            (12, "198.48.0.0"),
            (11, "198.32.0.0"),
            (10, "198.0.0.0"),
            (9, "198.0.0.0"),
            (8, "198.0.0.0"),
        ] {
            want.push((IndicatorKind::Cidr, format!("{net}/{len}")));
        }
        for a in 4..=7 {
            want.push((IndicatorKind::Ipv4, format!("198.51.100.{a}")));
        }
        assert_eq!(l.indicators, want);

        let l = lookup("203.0.113.0/24", None, None).unwrap();
        assert_eq!(
            l.indicators.iter().filter(|(k, _)| *k == IndicatorKind::Ipv4).count(),
            256
        );
        let l = lookup("203.0.112.0/23", None, None).unwrap();
        assert_eq!(l.indicators.len(), 1 + 15);
        let l = lookup("10.0.0.0/6", None, None).unwrap();
        assert_eq!(l.indicators, [(IndicatorKind::Cidr, "8.0.0.0/6".to_string())]);
        let l = lookup("2001:db8:1:2::/64", None, None).unwrap();
        assert_probes_are_stored_values(&l);
        assert_eq!(l.indicators.len(), 1 + 48);
        let l = lookup("2001:db8::/120", None, None).unwrap();
        assert_probes_are_stored_values(&l);
        assert_eq!(
            l.indicators.iter().filter(|(k, _)| *k == IndicatorKind::Ipv6).count(),
            256
        );
        assert_eq!(l.indicators.len(), 1 + 104 + 256);
        let l = lookup("192.0.2.7/32", None, None).unwrap();
        assert_eq!(l.indicators.len(), 1 + 24 + 1);
        assert_eq!(
            l.indicators.last(),
            Some(&(IndicatorKind::Ipv4, "192.0.2.7".to_string()))
        );

        for input in ["https://Evil.Example/x", "Abuse@Example.com", "Example.COM", "AS64500"] {
            let l = lookup(input, None, None).unwrap();
            assert_eq!(l.indicators.len(), 1);
            assert_probes_are_stored_values(&l);
        }
    }

    #[test]
    fn input_is_bounded() {
        let long = format!("{}.example", "a".repeat(MAX_INPUT_LEN));
        assert_eq!(lookup(&long, None, None), Err(IdentError::TooLong(long.len())));
        assert!(matches!(
            lookup(&long, Some(IdentKind::Account), None),
            Err(IdentError::TooLong(_))
        ));
        let at_limit = "a".repeat(MAX_INPUT_LEN);
        let e = lookup(&at_limit, Some(IdentKind::Domain), None).unwrap_err();
        assert!(matches!(e, IdentError::BadDomain(_)));
        // Error messages quote a bounded part of the value.
        assert!(e.to_string().len() < 300, "{e}");
        let e = lookup(&"é".repeat(1000), None, None).unwrap_err();
        assert!(e.to_string().len() < 600, "{e}");
    }

    fn xorshift(x: &mut u64) -> u64 {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    }

    const FUZZ_ROUNDS: usize = 30_000;

    #[test]
    fn random_input_never_panics() {
        const ALPHABET: &[&str] = &[
            "0", "1", "2", "7", "9", "a", "f", "x", "A", "F", "Z", ".", ":", "::", "/", "@", "+", "-", "(", ")", "(0)",
            "[", "]", " ", "%", "_", "00", "ffff", "xn--", "0x", "bc1", "AS", "://", "http", "ü", "。", "例",
            "\u{385}", "\u{0}", "\t", "é", "é", "ß", "İ", "\u{200d}", "\u{ff0e}", "#", "?",
        ];
        const COUNTRIES: &[Option<&str>] = &[
            None,
            Some("US"),
            Some("gb"),
            Some("RU"),
            Some("BR"),
            Some("XX"),
            Some(""),
        ];
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..FUZZ_ROUNDS {
            let len = (xorshift(&mut x) % 24) as usize;
            let mut s = String::new();
            for _ in 0..len {
                s.push_str(ALPHABET[(xorshift(&mut x) % ALPHABET.len() as u64) as usize]);
            }
            let pick = (xorshift(&mut x) % (IdentKind::ALL.len() as u64 + 1)) as usize;
            let kind = IdentKind::ALL.get(pick).copied();
            let country = COUNTRIES[(xorshift(&mut x) % COUNTRIES.len() as u64) as usize];
            if let Ok(l) = lookup(&s, kind, country) {
                assert!(!l.keys.is_empty(), "{s:?}");
                assert_probes_are_stored_values(&l);
                for k in &l.keys {
                    if let KeyMatch::Range { lo, hi } = k {
                        assert!(lo <= hi, "{s:?}");
                    }
                }
                // Whatever a kind-given look-up finds, the same value as a target is indexed under.
                let (a, b) = s.split_once(':').unwrap_or((&s, ""));
                let t = match l.ident.kind {
                    IdentKind::Domain => Some(TargetValue::Domain { name: s.clone() }),
                    IdentKind::Url => Some(TargetValue::Url { url: s.clone() }),
                    IdentKind::Email => Some(TargetValue::Email { address: s.clone() }),
                    IdentKind::Phone => Some(TargetValue::Phone { number: s.clone() }),
                    IdentKind::Account => Some(TargetValue::Account {
                        service: a.into(),
                        identifier: b.into(),
                    }),
                    IdentKind::Wallet => Some(TargetValue::CryptoWallet {
                        currency: a.into(),
                        address: b.into(),
                    }),
                    IdentKind::Bank => Some(TargetValue::BankAccount {
                        institution: a.into(),
                        identifier: b.into(),
                    }),
                    _ => None,
                };
                if let Some(t) = t {
                    let keys = target_keys(&t, country);
                    assert!(keys.iter().any(|k| l.keys[0].matches(k)), "{s:?} {keys:?} {l:?}");
                }
            }
            for t in [
                TargetValue::Domain { name: s.clone() },
                TargetValue::Url { url: s.clone() },
                TargetValue::Email { address: s.clone() },
                TargetValue::Phone { number: s.clone() },
                TargetValue::Account {
                    service: s.clone(),
                    identifier: s.clone(),
                },
                TargetValue::CryptoWallet {
                    currency: s.clone(),
                    address: s.clone(),
                },
                TargetValue::BankAccount {
                    institution: s.clone(),
                    identifier: s.clone(),
                },
            ] {
                let keys = target_keys(&t, country);
                assert!(keys.len() <= 2);
                assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
            }
        }
    }
}
