//! A synthetic but realistic world for demos and benchmarks: networks across many countries and
//! ASNs, a feed of C2 servers, phishing and malware hosts in them (CN-heavy victims, some
//! duplicates, a few malformed rows), and a matching MMDB so no GeoLite2 file is needed.
//!
//! Everything is deterministic in the seed. The generated MMDB and the feed agree when built
//! from the same seed.

use crate::mmdb::{MmdbValue, MmdbWriter};
use crate::time::{UnixTime, civil_from_days, days_from_civil};
use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

/// SplitMix64: small, fast, good enough for synthetic data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n.max(1))) >> 64) as u64
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    fn weighted<'a, T>(&mut self, items: &'a [(T, u32)]) -> &'a T {
        let total: u64 = items.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut x = self.below(total);
        for (t, w) in items {
            if x < u64::from(*w) {
                return t;
            }
            x -= u64::from(*w);
        }
        &items[items.len() - 1].0
    }
}

/// Where malicious hosts sit (weights), roughly like public C2 statistics.
const HOST_COUNTRIES: &[(&str, u32)] = &[
    ("US", 22),
    ("DE", 10),
    ("NL", 10),
    ("RU", 9),
    ("CN", 8),
    ("FR", 6),
    ("GB", 5),
    ("SG", 4),
    ("HK", 4),
    ("UA", 3),
    ("BR", 3),
    ("IN", 3),
    ("VN", 3),
    ("KR", 2),
    ("JP", 2),
    ("TR", 2),
    ("IR", 2),
    ("PL", 2),
    ("RO", 2),
    ("CA", 2),
    ("BG", 1),
    ("MD", 1),
    ("SE", 1),
    ("IT", 1),
    ("ES", 1),
    ("ID", 1),
    ("TH", 1),
    ("ZA", 1),
    ("AR", 1),
    ("LT", 1),
];

/// Where the victims of C2s are: CN-heavy.
const VICTIM_COUNTRIES: &[(&str, u32)] = &[
    ("CN", 40),
    ("US", 10),
    ("IN", 8),
    ("BR", 6),
    ("RU", 5),
    ("VN", 5),
    ("ID", 5),
    ("DE", 3),
    ("TR", 3),
    ("IR", 3),
    ("TH", 2),
    ("PH", 2),
    ("MX", 2),
    ("EG", 2),
    ("PK", 2),
    ("GB", 1),
    ("FR", 1),
];

const C2_MALWARE: &[(&str, u32)] = &[
    ("Emotet", 10),
    ("QakBot", 8),
    ("Dridex", 5),
    ("TrickBot", 5),
    ("IcedID", 6),
    ("BumbleBee", 3),
    ("Pikabot", 3),
    ("CobaltStrike", 8),
    ("Sliver", 3),
    ("AsyncRAT", 4),
    ("Mirai", 6),
    ("Mozi", 3),
];

const PHISH_BRANDS: &[&str] = &["bank", "paypal", "wallet", "post", "tax", "mail", "cloud", "shop"];

/// One network of the synthetic world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub v4: ipnet::Ipv4Net,
    pub v6: ipnet::Ipv6Net,
    pub country: &'static str,
    pub asn: u32,
    pub org: String,
}

/// The networks of the synthetic world for `seed`.
pub fn world(seed: u64) -> Vec<Network> {
    let mut rng = Rng::new(seed ^ 0x00c0_ffee);
    let mut nets = Vec::new();
    let mut block: u32 = 20 << 8; // /16 counter: 20.0.0.0/16 upwards
    let mut asn: u32 = 20_000;
    let mut v6: u32 = 0x2a00_0000;
    for (cc, weight) in HOST_COUNTRIES {
        let n_asn = 2 + (*weight as u64 / 3).min(6) + rng.below(2);
        for a in 0..n_asn {
            asn += 1 + rng.below(900) as u32;
            let org = format!("{cc}-NET-{} Hosting {}", a + 1, asn % 97);
            for _ in 0..1 + rng.below(3) {
                loop {
                    block += 1;
                    let first = block >> 8;
                    if !(first == 127
                        || first == 100
                        || first == 169
                        || first == 172
                        || first == 192
                        || first == 198
                        || first == 203)
                    {
                        break;
                    }
                }
                v6 += 1 + rng.below(16) as u32;
                let v4 = ipnet::Ipv4Net::new(Ipv4Addr::from(block << 16), 16).unwrap_or_default();
                let v6net = ipnet::Ipv6Net::new(Ipv6Addr::from(u128::from(v6) << 96), 32).unwrap_or_default();
                nets.push(Network {
                    v4,
                    v6: v6net,
                    country: cc,
                    asn,
                    org: org.clone(),
                });
            }
        }
    }
    nets
}

/// The layout of a generated MMDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MmdbLayout {
    /// GeoLite2-Country fields plus GeoLite2-ASN fields in one record.
    GeoLite2,
    /// IPinfo Lite: `country_code`, `country`, `asn` ("AS123"), `as_name`.
    IpinfoLite,
}

/// Writes an MMDB covering every network of [`world`]`(seed)`, IPv4 and IPv6.
pub fn generate_mmdb(seed: u64, layout: MmdbLayout, out: impl Write) -> std::io::Result<()> {
    let mut w = match layout {
        MmdbLayout::GeoLite2 => MmdbWriter::new(6, "GeoLite2-Country"),
        MmdbLayout::IpinfoLite => MmdbWriter::new(6, "ipinfo lite"),
    };
    for n in world(seed) {
        let rec = match layout {
            MmdbLayout::GeoLite2 => MmdbValue::map([
                (
                    "country",
                    MmdbValue::map([
                        ("iso_code", MmdbValue::str(n.country)),
                        ("geoname_id", MmdbValue::Uint32(1_000_000 + n.asn % 1000)),
                    ]),
                ),
                ("autonomous_system_number", MmdbValue::Uint32(n.asn)),
                ("autonomous_system_organization", MmdbValue::Str(n.org.clone())),
            ]),
            MmdbLayout::IpinfoLite => MmdbValue::map([
                ("country_code", MmdbValue::str(n.country)),
                ("country", MmdbValue::str(n.country)),
                ("asn", MmdbValue::Str(format!("AS{}", n.asn))),
                ("as_name", MmdbValue::Str(n.org.clone())),
            ]),
        };
        w.insert(ipnet::IpNet::V4(n.v4), &rec);
        w.insert(ipnet::IpNet::V6(n.v6), &rec);
    }
    w.write(out)
}

struct Host {
    value: String,
    kind: &'static str,
    port: u16,
    class: &'static str,
    malware: &'static str,
    victims: u32,
    victim_country: &'static str,
}

fn make_host(rng: &mut Rng, nets: &[Network], i: u64) -> Host {
    let net = &nets[rng.below(nets.len() as u64) as usize];
    let v6 = rng.chance(0.05);
    let ip = if v6 {
        let host = u128::from(net.v6.network()) | u128::from(rng.next_u64() & 0xffff_ffff);
        Ipv6Addr::from(host).to_string()
    } else {
        let host = u32::from(net.v4.network()) | (1 + rng.below(65_534) as u32);
        Ipv4Addr::from(host).to_string()
    };
    let roll = rng.below(100);
    let (class, kind, value, malware) = match roll {
        0..=54 => ("c2-server", "", ip, *rng.weighted(C2_MALWARE)),
        55..=69 => {
            let brand = PHISH_BRANDS[rng.below(PHISH_BRANDS.len() as u64) as usize];
            let url = if rng.chance(0.5) && !v6 {
                format!("http://{ip}/{brand}/login.php?id={i}")
            } else {
                format!(
                    "https://secure-{brand}-{i}.example-{}.com/verify",
                    net.country.to_ascii_lowercase()
                )
            };
            ("phishing", "url", url, "")
        }
        70..=79 => {
            let url = if v6 {
                format!("http://[{ip}]/bins/x86")
            } else {
                format!("http://{ip}/bins/mozi.m")
            };
            ("malware-distribution", "url", url, "Mozi")
        }
        80..=89 => ("infected-system", "", ip, *rng.weighted(C2_MALWARE)),
        90..=94 => ("scanner", "", ip, ""),
        _ => ("spam", "", ip, ""),
    };
    let (victims, victim_country) = if class == "c2-server" {
        // Log-uniform 1..~5000 bots per C2.
        (
            1 + (2f64.powf((rng.below(1200) as f64) / 100.0)) as u32,
            *rng.weighted(VICTIM_COUNTRIES),
        )
    } else {
        (0, "")
    };
    let port = match class {
        "c2-server" => [443u16, 8080, 447, 2222, 4443, 80][rng.below(6) as usize],
        _ => 0,
    };
    Host {
        value,
        kind,
        port,
        class,
        malware,
        victims,
        victim_country,
    }
}

fn write_time(buf: &mut Vec<u8>, t: UnixTime) {
    let days = t.div_euclid(86_400);
    let s = t.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let _ = write!(
        buf,
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        s / 3600,
        (s / 60) % 60,
        s % 60
    );
}

/// The header of the generated feed ([`crate::source::CsvMapping::liaison`] layout).
pub const FEED_HEADER: &str =
    "time_source,indicator,kind,port,classification,malware,victim_count,victim_country,confidence,tlp";

/// Statistics about a generated feed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedStats {
    pub rows: u64,
    pub malformed: u64,
    pub duplicates: u64,
    pub distinct_hosts: u64,
    pub bytes: u64,
}

/// Writes a feed of `rows` data rows (plus header) in the Liaison generic CSV layout: about
/// one distinct host per 20 rows (re-sightings over 30 days from 2026-10-01), 1% exact
/// duplicate rows, and one malformed row in 50,000 (at least 5 when `rows >= 100`) cycling
/// through wrong column count, bad IP, bad timestamp, invalid UTF-8 and an oversized field.
pub fn generate_feed(seed: u64, rows: u64, mut out: impl Write) -> std::io::Result<FeedStats> {
    let nets = world(seed);
    let mut rng = Rng::new(seed);
    let n_hosts = (rows / 20).clamp(10, 5_000_000);
    let hosts: Vec<Host> = (0..n_hosts).map(|i| make_host(&mut rng, &nets, i)).collect();
    let start = days_from_civil(2026, 10, 1) * 86_400;
    let span = 30 * 86_400i64;
    let malformed_every = if rows >= 100 {
        (rows / 5).clamp(1, 50_000)
    } else {
        u64::MAX
    };
    let mut stats = FeedStats {
        distinct_hosts: n_hosts,
        ..FeedStats::default()
    };
    let mut buf = Vec::with_capacity(1 << 20);
    let mut prev: Vec<u8> = Vec::new();
    let mut row: Vec<u8> = Vec::with_capacity(256);
    writeln!(buf, "{FEED_HEADER}")?;
    let mut malformed_kind = 0u32;
    for r in 0..rows {
        row.clear();
        if r % malformed_every == malformed_every / 2 {
            malformed_kind += 1;
            stats.malformed += 1;
            match malformed_kind % 5 {
                0 => row.extend_from_slice(b"2026-10-02 00:00:00,20.1.2.3,ipv4\n"),
                1 => row.extend_from_slice(b"2026-10-02 00:00:00,999.1.2.3,,443,c2-server,Emotet,10,CN,90,TLP:AMBER\n"),
                2 => row.extend_from_slice(b"2026-13-45 99:00:00,20.1.2.4,,443,c2-server,Emotet,10,CN,90,TLP:AMBER\n"),
                3 => row.extend_from_slice(
                    b"2026-10-02 00:00:00,20.1.2.5,,443,c2-server,Emo\xff\xfetet,10,CN,90,TLP:AMBER\n",
                ),
                _ => {
                    row.extend_from_slice(b"2026-10-02 00:00:00,http://20.1.2.6/");
                    row.extend(std::iter::repeat_n(b'A', 20_000));
                    row.extend_from_slice(b",url,,phishing,,,,50,TLP:AMBER\n");
                }
            }
            buf.extend_from_slice(&row);
            continue;
        }
        if !prev.is_empty() && rng.chance(0.01) {
            stats.duplicates += 1;
            buf.extend_from_slice(&prev);
            continue;
        }
        // Skewed choice: a few hosts are very noisy, most are seen a handful of times.
        let h = if rng.chance(0.2) {
            &hosts[rng.below(n_hosts.min(1000)) as usize]
        } else {
            &hosts[rng.below(n_hosts) as usize]
        };
        let t = start + (span as u64 * r / rows.max(1)) as i64 + rng.below(3600) as i64;
        write_time(&mut row, t);
        row.push(b',');
        if h.value.contains(',') || h.value.contains('"') {
            row.push(b'"');
            row.extend_from_slice(h.value.replace('"', "\"\"").as_bytes());
            row.push(b'"');
        } else {
            row.extend_from_slice(h.value.as_bytes());
        }
        let _ = write!(row, ",{},", h.kind);
        if h.port > 0 {
            let _ = write!(row, "{}", h.port);
        }
        let _ = write!(row, ",{},{},", h.class, h.malware);
        if h.victims > 0 {
            // Botnet sizes drift a little between sightings.
            let v = h.victims + rng.below(u64::from(h.victims / 10 + 1)) as u32;
            let _ = write!(row, "{v}");
        }
        let tlp = if h.class == "c2-server" {
            "TLP:GREEN"
        } else {
            "TLP:AMBER"
        };
        let _ = writeln!(row, ",{},{},{tlp}", h.victim_country, 60 + rng.below(41));
        buf.extend_from_slice(&row);
        std::mem::swap(&mut prev, &mut row);
        if buf.len() > (1 << 20) - 512 {
            stats.bytes += buf.len() as u64;
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    stats.bytes += buf.len() as u64;
    out.write_all(&buf)?;
    out.flush()?;
    stats.rows = rows;
    Ok(stats)
}
