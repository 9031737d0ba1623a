//! Enrichment on generated MMDB fixtures (GeoLite2 Country/ASN and IPinfo Lite layouts, v4/v6).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use liaison_intel::enrich::{Enricher, PrefixTable};
use liaison_intel::mmdb::{MmdbValue, MmdbWriter};
use liaison_intel::{Event, IndicatorKind, IndicatorValue, MmdbLayout};
use std::net::IpAddr;
use std::sync::Arc;

fn geolite_country(cc: &str) -> MmdbValue {
    MmdbValue::map([
        ("continent", MmdbValue::map([("code", MmdbValue::str("AS"))])),
        (
            "country",
            MmdbValue::map([
                ("geoname_id", MmdbValue::Uint32(1_814_991)),
                ("iso_code", MmdbValue::str(cc)),
                (
                    "names",
                    MmdbValue::map([("en", MmdbValue::str("Somewhere")), ("zh-CN", MmdbValue::str("某地"))]),
                ),
            ]),
        ),
        (
            "registered_country",
            MmdbValue::map([("iso_code", MmdbValue::str("US"))]),
        ),
    ])
}

fn geolite_asn(asn: u32, org: &str) -> MmdbValue {
    MmdbValue::map([
        ("autonomous_system_number", MmdbValue::Uint32(asn)),
        ("autonomous_system_organization", MmdbValue::str(org)),
    ])
}

fn build(w: MmdbWriter) -> Vec<u8> {
    let mut buf = Vec::new();
    w.write(&mut buf).unwrap();
    buf
}

fn country_db() -> Vec<u8> {
    let mut w = MmdbWriter::new(6, "GeoLite2-Country");
    w.insert("1.0.0.0/8".parse().unwrap(), &geolite_country("CN"));
    // More specific, inserted after the general network.
    w.insert("1.2.3.0/24".parse().unwrap(), &geolite_country("JP"));
    w.insert("198.51.100.0/24".parse().unwrap(), &geolite_country("DE"));
    w.insert("2001:db8::/32".parse().unwrap(), &geolite_country("NL"));
    w.insert("2400:cb00::/32".parse().unwrap(), &geolite_country("CN"));
    build(w)
}

fn asn_db() -> Vec<u8> {
    let mut w = MmdbWriter::new(6, "GeoLite2-ASN");
    w.insert("1.0.0.0/8".parse().unwrap(), &geolite_asn(4134, "CHINANET-BACKBONE"));
    w.insert("2001:db8::/32".parse().unwrap(), &geolite_asn(64500, "Example NL B.V."));
    build(w)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn geolite2_country_and_asn_v4_v6() {
    let c = PrefixTable::from_bytes(&country_db()).unwrap();
    let a = PrefixTable::from_bytes(&asn_db()).unwrap();
    assert_eq!(c.database_type, "GeoLite2-Country");
    let e = Enricher::new(vec![c, a]);
    let r = e.lookup(ip("1.9.9.9"));
    assert_eq!(r.country.unwrap().as_str(), "CN");
    assert_eq!(r.asn, Some(4134));
    assert_eq!(r.as_org.as_deref(), Some("CHINANET-BACKBONE"));
    assert_eq!(e.lookup(ip("1.2.3.4")).country.unwrap().as_str(), "JP");
    assert_eq!(e.lookup(ip("1.2.4.0")).country.unwrap().as_str(), "CN");
    assert_eq!(e.lookup(ip("1.255.255.255")).country.unwrap().as_str(), "CN");
    assert_eq!(e.lookup(ip("0.255.255.255")).country, None);
    assert_eq!(e.lookup(ip("2.0.0.0")).country, None);
    let r = e.lookup(ip("198.51.100.200"));
    assert_eq!((r.country.unwrap().as_str(), r.asn), ("DE", None));
    let r = e.lookup(ip("2001:db8:ffff::1"));
    assert_eq!(r.country.unwrap().as_str(), "NL");
    assert_eq!(r.asn, Some(64500));
    assert_eq!(e.lookup(ip("2400:cb00::1")).country.unwrap().as_str(), "CN");
    assert_eq!(e.lookup(ip("2001:db9::1")).country, None);
    // IPv4-mapped IPv6 goes to the IPv4 table.
    assert_eq!(e.lookup(ip("::ffff:1.2.3.4")).country.unwrap().as_str(), "JP");
}

#[test]
fn ipv4_aliases_are_not_reported_as_ipv6_networks() {
    let t = PrefixTable::from_bytes(&country_db()).unwrap();
    let (v4, v6) = t.len();
    assert_eq!(v6, 2, "only the two real IPv6 networks");
    assert_eq!(v4, 4, "1/8 split around 1.2.3/24, plus 198.51.100/24");
}

#[test]
fn ipinfo_lite_layout() {
    let mut w = MmdbWriter::new(6, "ipinfo lite");
    let rec = |cc: &str, asn: &str, name: &str| {
        MmdbValue::map([
            ("asn", MmdbValue::str(asn)),
            ("as_name", MmdbValue::str(name)),
            ("as_domain", MmdbValue::str("example.net")),
            ("continent", MmdbValue::str("Asia")),
            ("continent_code", MmdbValue::str("AS")),
            ("country", MmdbValue::str("China")),
            ("country_code", MmdbValue::str(cc)),
        ])
    };
    w.insert(
        "203.0.113.0/24".parse().unwrap(),
        &rec("CN", "AS4837", "CHINA UNICOM China169 Backbone"),
    );
    w.insert(
        "2001:db8:100::/48".parse().unwrap(),
        &rec("SG", "AS7473", "Singapore Telecommunications"),
    );
    let e = Enricher::new(vec![PrefixTable::from_bytes(&build(w)).unwrap()]);
    let r = e.lookup(ip("203.0.113.77"));
    assert_eq!(r.country.unwrap().as_str(), "CN");
    assert_eq!(r.asn, Some(4837));
    assert_eq!(r.as_org.as_deref(), Some("CHINA UNICOM China169 Backbone"));
    let r = e.lookup(ip("2001:db8:100:1::9"));
    assert_eq!((r.country.unwrap().as_str(), r.asn), ("SG", Some(7473)));
}

#[test]
fn ipv4_only_tree() {
    let mut w = MmdbWriter::new(4, "DBIP-Country-Lite");
    w.insert("10.0.0.0/8".parse().unwrap(), &geolite_country("FR"));
    w.insert("0.0.0.0/1".parse().unwrap(), &geolite_country("BR"));
    w.insert("10.1.0.0/16".parse().unwrap(), &geolite_country("IT"));
    let t = PrefixTable::from_bytes(&build(w)).unwrap();
    // The later /1 overwrote the earlier /8 (writer semantics); /16 inserted last wins.
    assert_eq!(t.lookup(ip("10.1.2.3")).unwrap().country.unwrap().as_str(), "IT");
    assert_eq!(t.lookup(ip("10.2.2.3")).unwrap().country.unwrap().as_str(), "BR");
    assert_eq!(t.lookup(ip("127.255.255.255")).unwrap().country.unwrap().as_str(), "BR");
    assert!(t.lookup(ip("128.0.0.0")).is_none());
    assert!(t.lookup(ip("2001:db8::1")).is_none());
}

#[test]
fn enrich_event_fills_only_missing_fields_and_ip_literal_hosts() {
    let e = Enricher::new(vec![
        PrefixTable::from_bytes(&country_db()).unwrap(),
        PrefixTable::from_bytes(&asn_db()).unwrap(),
    ]);
    let feed: Arc<str> = Arc::from("t");
    let mut ev = Event::new(
        IndicatorValue::parse(IndicatorKind::Url, "http://1.2.3.4/x").unwrap(),
        feed.clone(),
        0,
    );
    e.enrich(&mut ev);
    assert_eq!(ev.source_country.unwrap().as_str(), "JP");
    assert_eq!(ev.source_asn, Some(4134));
    let mut ev = Event::new(
        IndicatorValue::parse(IndicatorKind::Domain, "evil.example").unwrap(),
        feed.clone(),
        0,
    );
    e.enrich(&mut ev);
    assert_eq!((ev.source_country, ev.source_asn), (None, None), "no DNS");
    let mut ev = Event::new(IndicatorValue::Ipv4("1.9.9.9".parse().unwrap()), feed.clone(), 0);
    ev.source_country = liaison_intel::route::country("KR");
    e.enrich(&mut ev);
    assert_eq!(ev.source_country.unwrap().as_str(), "KR", "feed-provided country kept");
    assert_eq!(ev.source_asn, Some(4134));
    let mut ev = Event::new(IndicatorValue::Asn(4134), feed, 0);
    e.enrich(&mut ev);
    assert_eq!(ev.source_asn, Some(4134));
}

#[test]
fn corrupt_databases_are_errors_not_panics() {
    assert!(PrefixTable::from_bytes(b"not a database").is_err());
    let mut db = country_db();
    // Truncate in the middle of the tree: metadata is gone.
    db.truncate(db.len() / 3);
    assert!(PrefixTable::from_bytes(&db).is_err());
    // Flip bytes in the data section.
    let mut db = country_db();
    let n = db.len();
    for b in &mut db[n / 2..n / 2 + 40] {
        *b = 0xff;
    }
    let _ = PrefixTable::from_bytes(&db);
}

/// Cross-check: an independent MMDB reader (the `maxminddb` crate) agrees with our writer and
/// our compiled table on the generated demo database.
#[test]
fn independent_reader_agrees_with_generated_demo_db() {
    let mut buf = Vec::new();
    liaison_intel::generate_mmdb(42, MmdbLayout::GeoLite2, &mut buf).unwrap();
    let ours = PrefixTable::from_bytes(&buf).unwrap();
    let theirs = maxminddb::Reader::from_source(buf.clone()).unwrap();
    let mut rng = liaison_intel::demo::Rng::new(1);
    let world = liaison_intel::demo::world(42);
    let mut checked = 0;
    for _ in 0..2000 {
        let n = &world[rng.below(world.len() as u64) as usize];
        let probe: IpAddr = if rng.chance(0.3) {
            IpAddr::V6((u128::from(n.v6.network()) | u128::from(rng.next_u64())).into())
        } else if rng.chance(0.2) {
            IpAddr::V4((rng.next_u64() as u32).into())
        } else {
            IpAddr::V4((u32::from(n.v4.network()) | (rng.next_u64() as u32 & 0xffff)).into())
        };
        let v: Option<serde_json::Value> = theirs.lookup(probe).unwrap().decode().unwrap();
        let mine = ours.lookup(probe);
        let their_cc = v
            .as_ref()
            .and_then(|v| v["country"]["iso_code"].as_str().map(str::to_string));
        let their_asn = v.as_ref().and_then(|v| v["autonomous_system_number"].as_u64());
        assert_eq!(mine.and_then(|m| m.country).map(|c| c.to_string()), their_cc, "{probe}");
        assert_eq!(mine.and_then(|m| m.asn).map(u64::from), their_asn, "{probe}");
        checked += 1;
    }
    assert_eq!(checked, 2000);
}

/// Optional check against a real GeoLite2/DB-IP/IPinfo file: `LIAISON_TEST_MMDB=/path/x.mmdb`.
#[test]
fn real_database_agrees_with_maxminddb_when_given() {
    let Ok(path) = std::env::var("LIAISON_TEST_MMDB") else {
        return;
    };
    let ours = PrefixTable::open(std::path::Path::new(&path)).unwrap();
    let theirs = maxminddb::Reader::open_readfile(&path).unwrap();
    let mut rng = liaison_intel::demo::Rng::new(9);
    for i in 0..20_000 {
        let probe: IpAddr = if i % 4 == 0 {
            IpAddr::V6(((0x2000u128 + rng.below(0x1000) as u128) << 112 | u128::from(rng.next_u64())).into())
        } else {
            IpAddr::V4((rng.next_u64() as u32).into())
        };
        let v: Option<serde_json::Value> = theirs.lookup(probe).unwrap().decode().unwrap();
        let their_cc = v.as_ref().and_then(|v| {
            v["country"]["iso_code"]
                .as_str()
                .or(v["registered_country"]["iso_code"].as_str())
                .or(v["country_code"].as_str())
                .map(str::to_string)
        });
        let mine = ours.lookup(probe).and_then(|m| m.country).map(|c| c.to_string());
        assert_eq!(mine, their_cc, "{probe}");
    }
}
