//! End to end: generated feed + generated MMDB through the two-thread pipeline.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use liaison_intel::source::{FeedFormat, ListConfig, ProgressUpdate};
use liaison_intel::{
    Classification, Enricher, GroupBy, Input, IntelConfig, Interval, MmdbLayout, Pipeline, PrefixTable, RouteRule,
    Router, RoutingConfig, SourceConfig, StatsQuery, generate_feed, generate_mmdb, indicator_stats,
};
use std::sync::atomic::{AtomicU64, Ordering};

#[test]
fn demo_feed_through_pipeline() {
    let mut feed = Vec::new();
    let fs = generate_feed(3, 60_000, &mut feed).unwrap();
    assert!(fs.malformed >= 5 && fs.duplicates > 0);
    let mut mmdb = Vec::new();
    generate_mmdb(3, MmdbLayout::IpinfoLite, &mut mmdb).unwrap();
    let routes = vec![RouteRule::country(
        "cncert",
        liaison_intel::route::country("CN").unwrap(),
    )];
    let mut p = Pipeline::new(
        Enricher::new(vec![PrefixTable::from_bytes(&mmdb).unwrap()]),
        Router::new(&RoutingConfig { routes }).unwrap(),
        1_795_000_000,
    );
    p.batch_size = 100; // many batches, exercises recycling and back-pressure
    p.channel_batches = 2;
    let list = b"# extra\n198.51.100.1\nbogus line\n".to_vec();
    let updates = AtomicU64::new(0);
    let progress = |_: ProgressUpdate<'_>| {
        updates.fetch_add(1, Ordering::Relaxed);
    };
    let mut seen = 0u64;
    let s = p.run_with(
        vec![
            Input::new(SourceConfig::new("demo", FeedFormat::Liaison), "demo.csv", &feed[..]),
            Input::new(
                SourceConfig::new("list", FeedFormat::List(ListConfig::default())),
                "list.txt",
                &list[..],
            ),
        ],
        &progress,
        &mut |_| seen += 1,
    );
    assert_eq!(s.sources.len(), 2);
    assert_eq!(s.rows, 60_000 + 2);
    assert_eq!(s.quarantined, fs.malformed + 1);
    assert_eq!(s.accepted, s.rows - s.quarantined);
    assert_eq!(seen, s.accepted);
    assert_eq!(s.new_indicators + s.resightings + s.deduplicated, s.accepted);
    assert!(s.deduplicated >= fs.duplicates / 2, "{s:?}");
    assert_eq!(s.routed + s.unroutable, s.accepted);
    assert!(s.routed > 0 && s.unroutable > 0);
    assert!(
        s.enriched as f64 > 0.7 * s.accepted as f64,
        "IP indicators are enriched: {s:?}"
    );
    assert_eq!(p.state.len() as u64, s.new_indicators);
    assert!(updates.load(Ordering::Relaxed) >= 3);
    let cn_c2 = indicator_stats(
        &p.state.indicators,
        &StatsQuery {
            class: Some(Classification::C2Server),
            victim_country: liaison_intel::route::country("CN"),
            ..StatsQuery::by(GroupBy::Country)
        },
    );
    assert!(cn_c2.len() > 5, "{cn_c2:?}");
    let last = p
        .state
        .indicators
        .iter()
        .filter(|i| i.partner.is_some())
        .map(|i| i.last_seen)
        .max()
        .unwrap();
    let notices = p.state.build_notices(Interval::day_of(last));
    assert_eq!(notices.len(), 1);
    assert!(
        notices[0]
            .items
            .iter()
            .all(|i| i.source_country.map(|c| c.to_string()) == Some("CN".into()))
    );
}

#[test]
fn same_seed_same_feed_and_config_from_toml() {
    let mut a = Vec::new();
    let mut b = Vec::new();
    generate_feed(11, 2_000, &mut a).unwrap();
    generate_feed(11, 2_000, &mut b).unwrap();
    assert_eq!(a, b);
    let cfg: IntelConfig = toml::from_str(
        r#"
        mmdb = []
        [[routes]]
        partner = "cncert"
        country = "CN"
        [sources.feodo]
        feed = "feodo"
        format = "feodo"
        [sources.partner]
        feed = "partner-list"
        format = "generic"
        indicator = "ip"
        default_classification = "botnet-c2"
        [sources.partner.limits]
        max_field_bytes = 1024
        "#,
    )
    .unwrap();
    assert_eq!(cfg.sources.len(), 2);
    assert_eq!(cfg.sources["partner"].limits.max_field_bytes, 1024);
    let p = Pipeline::from_config(&cfg, 0).unwrap();
    assert_eq!(p.router.partners().len(), 1);
}
