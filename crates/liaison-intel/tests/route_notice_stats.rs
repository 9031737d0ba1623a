//! Routing precedence, notices, feedback and reappearance, statistics, STIX/MISP shapes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use liaison_core::Tlp;
use liaison_intel::aggregate::{FeedbackError, Observed};
use liaison_intel::mapping::{Direction, stix_pattern as directed_pattern};
use liaison_intel::route::{RouteReason, country};
use liaison_intel::stix::tlp_marking_ref;
use liaison_intel::{
    Classification, CleanupState, Event, FeedbackStatus, GroupBy, IndicatorKind, IndicatorValue, Interval, ItemStatus,
    PartnerId, RouteRule, Router, RoutingConfig, StatsQuery, event_stats, indicator_stats, indicator_to_misp,
    indicator_to_stix, notices_to_csv, notices_to_json,
};
use std::sync::Arc;

fn stix_pattern(v: &IndicatorValue) -> String {
    directed_pattern(v, Direction::None)
}

const DAY: i64 = 86_400;
const T0: i64 = 1_793_491_200; // 2026-11-01T00:00:00Z

fn v(s: &str) -> IndicatorValue {
    IndicatorValue::detect(s).unwrap()
}

fn router() -> Router {
    let cn = country("CN").unwrap();
    let routes = vec![
        RouteRule::country("cncert", cn),
        RouteRule::asn("chinanet-abuse", 4134),
        RouteRule::cidr("hoster-a", "203.0.113.0/24".parse().unwrap()),
        RouteRule::cidr("hoster-a-customer", "203.0.113.128/25".parse().unwrap()),
        RouteRule::cidr("v6-hoster", "2001:db8::/32".parse().unwrap()),
        RouteRule::manual("le-case-42", "203.0.113.200"),
        RouteRule::manual("le-case-43", "http://evil.example/a"),
    ];
    Router::new(&RoutingConfig { routes }).unwrap()
}

#[test]
fn routing_precedence_manual_cidr_asn_country() {
    let r = router();
    let cn = country("CN");
    let route = |s: &str, cc, asn| r.route(&v(s), cc, asn).map(|(p, why)| (p.to_string(), why));
    assert_eq!(
        route("203.0.113.200", cn, Some(4134)),
        Some(("le-case-42".into(), RouteReason::Manual))
    );
    assert_eq!(
        route("203.0.113.201", cn, Some(4134)),
        Some(("hoster-a-customer".into(), RouteReason::Cidr))
    );
    assert_eq!(
        route("203.0.113.5", cn, Some(4134)),
        Some(("hoster-a".into(), RouteReason::Cidr))
    );
    assert_eq!(
        route("198.51.100.1", cn, Some(4134)),
        Some(("chinanet-abuse".into(), RouteReason::Asn))
    );
    assert_eq!(
        route("198.51.100.1", cn, Some(1)),
        Some(("cncert".into(), RouteReason::Country))
    );
    assert_eq!(route("198.51.100.1", country("DE"), None), None);
    assert_eq!(
        route("2001:db8::5", None, None),
        Some(("v6-hoster".into(), RouteReason::Cidr))
    );
    assert_eq!(
        route("http://203.0.113.129/x", None, None),
        Some(("hoster-a-customer".into(), RouteReason::Cidr))
    );
    assert_eq!(
        route("http://evil.example/a", None, None),
        Some(("le-case-43".into(), RouteReason::Manual))
    );
    assert_eq!(
        route("evil.example", cn, None),
        Some(("cncert".into(), RouteReason::Country))
    );
}

#[test]
fn routing_rules_are_validated_and_load_from_toml() {
    let bad = RoutingConfig {
        routes: vec![RouteRule {
            asn: Some(1),
            ..RouteRule::country("x", country("CN").unwrap())
        }],
    };
    assert!(Router::new(&bad).is_err());
    let cfg: RoutingConfig = toml::from_str(
        r#"
        [[routes]]
        partner = "cncert"
        country = "CN"
        [[routes]]
        partner = "0190b1e4-7c4e-7000-8000-000000000001"
        cidr = "198.51.100.0/24"
        "#,
    )
    .unwrap();
    let r = Router::new(&cfg).unwrap();
    assert_eq!(r.partners().len(), 2);
    assert!(toml::from_str::<RoutingConfig>("[[routes]]\npartner = \"x\"\ncountry = \"XX\"").is_err());
}

fn ev(value: &str, seen: i64, class: Classification, partner: Option<&str>) -> Event {
    let mut e = Event::new(v(value), Arc::from("feed"), seen);
    e.time_source = Some(seen);
    e.classification = class;
    e.partner = partner.map(PartnerId::new);
    e.tlp = Tlp::Green;
    e
}

#[test]
fn notices_feedback_reappearance_and_time_to_remediation() {
    let mut s = CleanupState::new();
    let cn = Some("cncert");
    assert_eq!(
        s.observe(&ev("198.51.100.1", T0 + 100, Classification::C2Server, cn)),
        Observed::New
    );
    assert_eq!(
        s.observe(&ev("198.51.100.1", T0 + 100, Classification::C2Server, cn)),
        Observed::Duplicate
    );
    assert_eq!(
        s.observe(&ev("198.51.100.1", T0 + 200, Classification::C2Server, cn)),
        Observed::Resighting
    );
    s.observe(&ev("http://evil.example/a", T0 + 300, Classification::Phishing, cn));
    s.observe(&ev("198.51.100.2", T0 + 400, Classification::C2Server, Some("other")));
    s.observe(&ev("198.51.100.3", T0 + 500, Classification::C2Server, None));
    let (_, ind) = s.get(&v("198.51.100.1")).unwrap();
    assert_eq!((ind.sightings, ind.first_seen, ind.last_seen), (2, T0 + 100, T0 + 200));

    let day1 = Interval::day_of(T0);
    let notices = s.issue_notices(day1, T0 + DAY);
    assert_eq!(notices.len(), 2, "unroutable indicator is not on any notice");
    let n = notices.iter().find(|n| n.partner.as_str() == "cncert").unwrap();
    assert_eq!(n.items.len(), 2);
    assert!(n.items.iter().all(|i| i.status == ItemStatus::New));
    assert_eq!(
        n.id,
        liaison_intel::NoticeId::new(&PartnerId::new("cncert"), day1),
        "stable id"
    );
    assert_eq!(s.build_notices(day1)[0].id, notices[0].id);
    assert_eq!(s.get(&v("198.51.100.1")).unwrap().1.last_notice, Some(n.id));
    let mut routed = ev("198.51.100.1", T0, Classification::C2Server, cn);
    assert_eq!(routed.notice_id(day1), Some(n.id));
    routed.partner = None;
    assert_eq!(routed.notice_id(day1), None);
    let c2_item = n.items.iter().find(|i| i.kind == IndicatorKind::Ipv4).unwrap().item_id;
    let url_item = n.items.iter().find(|i| i.kind == IndicatorKind::Url).unwrap().item_id;

    // Day 2: still active.
    s.observe(&ev("198.51.100.1", T0 + DAY + 10, Classification::C2Server, cn));
    s.observe(&ev(
        "http://evil.example/a",
        T0 + DAY + 20,
        Classification::Phishing,
        cn,
    ));
    let day2 = Interval::day_of(T0 + DAY);
    let n2 = s.issue_notices(day2, T0 + 2 * DAY);
    let n2 = n2.iter().find(|n| n.partner.as_str() == "cncert").unwrap();
    assert!(n2.items.iter().all(|i| i.status == ItemStatus::StillActive));
    assert_ne!(n2.id, n.id);

    // Feedback: wrong partner, unknown item, then remediated and false positive.
    assert!(matches!(
        s.apply_feedback(
            &PartnerId::new("other"),
            c2_item,
            FeedbackStatus::Remediated,
            T0 + 2 * DAY,
            None
        ),
        Err(FeedbackError::WrongPartner { .. })
    ));
    assert!(matches!(
        s.apply_feedback(
            &PartnerId::new("cncert"),
            uuid::Uuid::nil(),
            FeedbackStatus::Remediated,
            0,
            None
        ),
        Err(FeedbackError::UnknownItem(_))
    ));
    let cncert = PartnerId::new("cncert");
    s.apply_feedback(
        &cncert,
        c2_item,
        FeedbackStatus::Remediated,
        T0 + DAY + 3600,
        Some("null-routed".into()),
    )
    .unwrap();
    s.apply_feedback(&cncert, url_item, FeedbackStatus::FalsePositive, T0 + DAY + 3600, None)
        .unwrap();
    let day3 = Interval::day_of(T0 + 2 * DAY);
    s.observe(&ev(
        "http://evil.example/a",
        T0 + 2 * DAY + 5,
        Classification::Phishing,
        cn,
    ));
    assert!(
        s.build_notices(day3).iter().all(|n| n.partner.as_str() != "cncert"),
        "remediated and FP left out"
    );

    // Reappearance after remediation is flagged and back on the notice.
    assert_eq!(
        s.observe(&ev("198.51.100.1", T0 + 2 * DAY + 60, Classification::C2Server, cn)),
        Observed::Reappeared
    );
    let n3 = s.build_notices(day3);
    let n3 = n3.iter().find(|n| n.partner.as_str() == "cncert").unwrap();
    assert_eq!(n3.items.len(), 1);
    assert_eq!(n3.items[0].status, ItemStatus::Reappeared);

    let rem = s.remediation_by_partner();
    let c = rem.iter().find(|r| r.partner.as_str() == "cncert").unwrap();
    assert_eq!((c.notified, c.remediated, c.false_positive, c.reappeared), (2, 1, 1, 1));
    assert_eq!(
        c.median_ttr_secs,
        Some(3600),
        "first notified at T0+DAY, remediated one hour later"
    );

    // Exports.
    let mut csv_out = Vec::new();
    notices_to_csv(std::slice::from_ref(n3), &mut csv_out).unwrap();
    let text = String::from_utf8(csv_out).unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("notice_id,partner,interval_start"));
    let row = lines.next().unwrap();
    assert!(
        row.contains(",reappeared,ipv4,198.51.100.1,c2-server,malicious-code,"),
        "{row}"
    );
    // The item's marking, then the notice's PAP (a notice run's default: act on it).
    assert!(row.ends_with(",TLP:GREEN,PAP:GREEN"), "{row}");
    let json = notices_to_json(std::slice::from_ref(n3));
    assert_eq!(json[0]["partner"], "cncert");
    assert_eq!(json[0]["items"][0]["status"], "reappeared");
    assert_eq!(json[0]["items"][0]["item_id"], n3.items[0].item_id.to_string());
    assert_eq!(json[0]["tlp"], "TLP:GREEN");
}

#[test]
fn state_round_trips_through_parts() {
    let mut s = CleanupState::new();
    s.observe(&ev("198.51.100.1", T0, Classification::C2Server, Some("p")));
    let notices = s.issue_notices(Interval::day_of(T0), T0 + 10);
    let item = notices[0].items[0].item_id;
    let issued: Vec<_> = s.issued_items.iter().map(|(u, (i, p))| (*u, *i, p.clone())).collect();
    let mut s2 = CleanupState::from_parts(s.indicators.clone(), issued, s.feedback.clone());
    s2.apply_feedback(&PartnerId::new("p"), item, FeedbackStatus::NotFound, T0 + 20, None)
        .unwrap();
    assert_eq!(
        s2.observe(&ev("198.51.100.1", T0 + 30, Classification::C2Server, Some("p"))),
        Observed::Resighting
    );
}

#[test]
fn ingesting_agencies_are_recorded_as_one_shared_sorted_set() {
    let mut s = CleanupState::new();
    for host in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
        s.observe(&ev(host, T0, Classification::C2Server, None));
    }
    assert!(s.indicators.iter().all(|i| i.ingested_by.is_none()));
    s.mark_ingested_by(&[0, 1, 2], "US-SS");
    s.mark_ingested_by(&[1, 2, 99], "FBI");
    s.mark_ingested_by(&[2], "FBI");
    let sets: Vec<Option<&str>> = s.indicators.iter().map(|i| i.ingested_by.as_deref()).collect();
    assert_eq!(sets, [Some("US-SS"), Some("FBI,US-SS"), Some("FBI,US-SS")]);
    assert!(s.indicators[1].ingested_by("FBI") && s.indicators[1].ingested_by("US-SS"));
    assert!(!s.indicators[0].ingested_by("FBI"));
    assert!(!s.indicators[1].ingested_by("FB"), "codes match whole, not by prefix");
    // Indicators with the same set share one allocation.
    let (a, b) = (&s.indicators[1].ingested_by, &s.indicators[2].ingested_by);
    assert!(Arc::ptr_eq(a.as_ref().unwrap(), b.as_ref().unwrap()));
}

#[test]
fn new_indicators_are_renumbered_in_store_index_order() {
    let mut s = CleanupState::new();
    s.observe(&ev("203.0.113.9", T0, Classification::C2Server, None));
    let base = s.len() as u32;
    for host in [
        "198.51.100.20",
        "evil.example",
        "198.51.100.3",
        "10.0.0.1",
        "abc.example",
    ] {
        s.observe(&ev(host, T0, Classification::C2Server, None));
    }
    assert!(s.sort_from(base));
    let order: Vec<String> = s.indicators.iter().map(|i| i.value.to_string()).collect();
    // The old one keeps its place; the new ones by kind, then by their text byte by byte
    // (SQLite's BINARY collation): "198.51.100.20" < "198.51.100.3".
    assert_eq!(
        order,
        [
            "203.0.113.9",
            "abc.example",
            "evil.example",
            "10.0.0.1",
            "198.51.100.20",
            "198.51.100.3"
        ]
    );
    let kinds: Vec<&str> = s.indicators[1..].iter().map(|i| i.kind.as_str()).collect();
    assert!(kinds.windows(2).all(|w| w[0] <= w[1]), "{kinds:?}");
    // The lookup follows the new numbering.
    for (ix, ind) in s.indicators.iter().enumerate() {
        assert_eq!(s.get(&ind.value).unwrap().0 as usize, ix);
    }
    // Once a notice names one of them, they keep their numbers.
    let mut t = CleanupState::new();
    t.observe(&ev("198.51.100.9", T0, Classification::C2Server, Some("p")));
    t.observe(&ev("198.51.100.1", T0, Classification::C2Server, Some("p")));
    t.issue_notices(Interval::day_of(T0), T0 + 10);
    let before: Vec<String> = t.indicators.iter().map(|i| i.value.to_string()).collect();
    assert!(!t.sort_from(0));
    let after: Vec<String> = t.indicators.iter().map(|i| i.value.to_string()).collect();
    assert_eq!(before, after);
}

fn c2(value: &str, cc: &str, asn: u32, victims: &[(&str, u32)]) -> Vec<Event> {
    victims
        .iter()
        .enumerate()
        .map(|(i, (vc, n))| {
            let mut e = ev(value, T0 + i as i64, Classification::C2Server, None);
            e.source_country = country(cc);
            e.source_asn = Some(asn);
            e.victim_country = country(vc);
            e.victim_count = Some(*n);
            e
        })
        .collect()
}

#[test]
fn stats_c2_with_cn_victims_by_c2_country() {
    let mut events = Vec::new();
    events.extend(c2("198.51.100.1", "US", 64500, &[("CN", 100), ("IN", 5)]));
    events.extend(c2("198.51.100.2", "US", 64500, &[("CN", 50)]));
    events.extend(c2("198.51.100.3", "DE", 64501, &[("CN", 10), ("CN", 30)]));
    events.extend(c2("198.51.100.4", "RU", 64502, &[("BR", 7)]));
    let mut phish = ev("198.51.100.5", T0 + DAY, Classification::Phishing, None);
    phish.source_country = country("US");
    events.push(phish);
    let mut s = CleanupState::new();
    for e in &events {
        s.observe(e);
    }
    let q = StatsQuery {
        class: Some(Classification::C2Server),
        victim_country: country("CN"),
        ..StatsQuery::by(GroupBy::Country)
    };
    let rows = indicator_stats(&s.indicators, &q);
    let got: Vec<_> = rows.iter().map(|r| (r.key.as_str(), r.indicators, r.victims)).collect();
    assert_eq!(got, [("US", 2, 150), ("DE", 1, 30)]);

    let by_victim = indicator_stats(&s.indicators, &StatsQuery::by(GroupBy::VictimCountry));
    let got: Vec<_> = by_victim.iter().map(|r| (r.key.as_str(), r.indicators)).collect();
    assert_eq!(got, [("CN", 3), ("BR", 1), ("IN", 1), ("unknown", 1)]);

    let by_class = indicator_stats(&s.indicators, &StatsQuery::by(GroupBy::Classification));
    assert_eq!(by_class[0].key, "c2-server");
    assert_eq!(by_class[0].indicators, 4);
    let by_asn = indicator_stats(&s.indicators, &StatsQuery::by(GroupBy::Asn));
    assert_eq!((by_asn[0].key.as_str(), by_asn[0].indicators), ("AS64500", 2));
    let by_day = event_stats(&events, &StatsQuery::by(GroupBy::Day));
    let got: Vec<_> = by_day.iter().map(|r| (r.key.as_str(), r.indicators)).collect();
    assert_eq!(got, [("2026-11-01", 6), ("2026-11-02", 1)]);
    let ev_cn = event_stats(&events, &q);
    assert_eq!(ev_cn.iter().map(|r| r.victims).sum::<u64>(), 190);
    assert!("victim-country".parse::<GroupBy>().is_ok());
}

#[test]
fn stix_indicator_shape_and_misp_mapping() {
    let mut s = CleanupState::new();
    let mut e = ev("198.51.100.1", T0, Classification::C2Server, None);
    e.malware = Some(Arc::from("QakBot"));
    e.tlp = Tlp::AmberStrict;
    e.confidence = 90;
    s.observe(&e);
    let ind = &s.indicators[0];
    let x = indicator_to_stix(ind, None);
    assert_eq!(x["type"], "indicator");
    assert_eq!(x["spec_version"], "2.1");
    // A C2 server is where victims connect to: MISP ip-dst, a dst_ref pattern in STIX.
    assert_eq!(
        x["pattern"],
        "[network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_ref.value = '198.51.100.1' AND network-traffic:protocols[*] = 'ipv4']"
    );
    assert_eq!(x["pattern_type"], "stix");
    assert_eq!(x["valid_from"], "2026-11-01T00:00:00.000Z");
    assert_eq!(x["created"], "2026-11-01T00:00:00.000Z");
    assert_eq!(x["indicator_types"][0], "malicious-activity");
    assert_eq!(
        x["object_marking_refs"][0],
        "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"
    );
    assert_eq!(x["confidence"], 90);
    let id = x["id"].as_str().unwrap();
    assert!(id.starts_with("indicator--"));
    let u = uuid::Uuid::parse_str(&id["indicator--".len()..]).unwrap();
    assert_eq!(u.get_version_num(), 5);
    assert_eq!(indicator_to_stix(ind, None)["id"], x["id"], "deterministic");
    for key in [
        "type",
        "spec_version",
        "id",
        "created",
        "modified",
        "pattern",
        "pattern_type",
        "valid_from",
    ] {
        assert!(x.get(key).is_some(), "required property {key}");
    }
    let m = indicator_to_misp(ind);
    assert_eq!(
        (m["type"].as_str(), m["category"].as_str()),
        (Some("ip-dst"), Some("Network activity"))
    );
    assert_eq!(m["Tag"][0]["name"], "rsit:malicious-code=\"c2-server\"");
    assert_eq!(m["Tag"][1]["name"], "liaison:malware=\"qakbot\"");
    assert_eq!(m["Tag"][2]["name"], "tlp:amber+strict");

    assert_eq!(
        stix_pattern(&v("http://evil.example/it's")),
        "[url:value = 'http://evil.example/it\\'s']"
    );
    assert_eq!(stix_pattern(&v("2001:db8::1")), "[ipv6-addr:value = '2001:db8::1']");
    assert_eq!(stix_pattern(&v("10.0.0.0/8")), "[ipv4-addr:value = '10.0.0.0/8']");
    assert_eq!(stix_pattern(&v("AS4134")), "[autonomous-system:number = 4134]");
    assert_eq!(
        stix_pattern(&v("d41d8cd98f00b204e9800998ecf8427e")),
        "[file:hashes.'MD5' = 'd41d8cd98f00b204e9800998ecf8427e']"
    );
    assert_eq!(stix_pattern(&v("evil.example")), "[domain-name:value = 'evil.example']");
    assert_eq!(
        tlp_marking_ref(Tlp::Clear),
        "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"
    );

    let mut s = CleanupState::new();
    let mut infected = ev("198.51.100.9", T0, Classification::InfectedSystem, None);
    infected.tlp = Tlp::Clear;
    s.observe(&infected);
    s.observe(&ev(
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        T0,
        Classification::MalwareDistribution,
        None,
    ));
    assert_eq!(indicator_to_misp(&s.indicators[0])["type"], "ip-src");
    assert_eq!(
        indicator_to_stix(&s.indicators[0], None)["indicator_types"][0],
        "compromised"
    );
    assert_eq!(indicator_to_misp(&s.indicators[1])["type"], "sha256");
    assert_eq!(indicator_to_misp(&s.indicators[1])["category"], "Payload delivery");
}

#[test]
fn state_memory_grows_with_distinct_indicators_not_with_sightings() {
    let feed: Arc<str> = Arc::from("feed");
    let mut state = CleanupState::new();
    let ip = |i: u32| IndicatorValue::Ipv4(std::net::Ipv4Addr::from(0x0b00_0000 + i));
    for i in 0..20_000 {
        state.observe(&Event::new(ip(i), feed.clone(), T0));
    }
    let distinct = state.heap_bytes();
    let per = distinct as f64 / 20_000.0;
    // The records and the index: a few hundred bytes per IPv4 indicator.
    assert!((150.0..600.0).contains(&per), "{per} bytes per indicator");
    // Ten more sightings of each: no growth.
    for round in 1..=10 {
        for i in 0..20_000 {
            state.observe(&Event::new(ip(i), feed.clone(), T0 + round));
        }
    }
    assert_eq!(state.heap_bytes(), distinct);
    // A URL's text is counted too.
    let before = state.heap_bytes();
    state.observe(&Event::new(
        v("http://example.com/a-rather-long-path"),
        feed.clone(),
        T0,
    ));
    assert!(state.heap_bytes() >= before + 2 * "http://example.com/a-rather-long-path".len());
}
