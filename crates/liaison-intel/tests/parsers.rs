//! Every feed parser, with malformed and hostile rows.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use liaison_core::Tlp;
use liaison_intel::source::{
    Column, CsvMapping, FeedFormat, ListConfig, ParseContext, ProgressUpdate, QuarantineReason, SourceConfig,
    SourceError, parse_source, parse_to_vec,
};
use liaison_intel::{Classification, IndicatorKind, IndicatorValue};
use std::sync::Arc;
use std::sync::Mutex;

const NOW: i64 = 1_795_000_000;

fn parse(format: FeedFormat, data: &[u8]) -> (Vec<liaison_intel::Event>, liaison_intel::SourceReport) {
    parse_to_vec(data, &SourceConfig::new("test-feed", format), "feed.csv", NOW)
}

#[test]
fn feodo_with_header_row() {
    let data = b"# Feodo Tracker IP Blocklist\n# Last updated\n\
\"first_seen_utc\",\"dst_ip\",\"dst_port\",\"c2_status\",\"last_online\",\"malware\"\n\
\"2021-01-17 07:44:46\",\"51.178.161.32\",\"4643\",\"online\",\"2021-05-10\",\"Dridex\"\n\
\"2021-01-18 07:44:46\",\"2001:db8::7\",\"443\",\"offline\",\"2021-05-11\",\"QakBot\"\n\
# END 2 entries\n";
    let (ev, rep) = parse(FeedFormat::Feodo, data);
    assert_eq!(rep.rows, 2, "{rep:?}");
    assert_eq!(rep.accepted, 2);
    assert_eq!(rep.quarantined, 0);
    assert_eq!(ev[0].value, IndicatorValue::Ipv4("51.178.161.32".parse().unwrap()));
    assert_eq!(ev[0].port, Some(4643));
    assert_eq!(ev[0].classification, Classification::C2Server);
    assert_eq!(ev[0].malware.as_deref(), Some("Dridex"));
    assert_eq!(ev[0].time_source, Some(1_610_869_486));
    assert_eq!(ev[0].last_seen, Some(1_620_604_800));
    assert_eq!(ev[0].time_observation, NOW);
    assert_eq!(ev[0].tlp, Tlp::Clear);
    assert_eq!(&*ev[0].feed, "test-feed");
    assert_eq!(ev[0].origin.line, 4);
    assert_eq!(ev[1].value.kind(), IndicatorKind::Ipv6);
}

#[test]
fn feodo_header_in_comment_and_old_layout() {
    let data = b"# Firstseen,DstIP,DstPort,LastOnline,Malware\n2019-05-27 12:00:00,1.2.3.4,447,2019-06-01,TrickBot\n";
    let (ev, rep) = parse(FeedFormat::Feodo, data);
    assert_eq!((rep.accepted, rep.quarantined), (1, 0), "{rep:?}");
    assert_eq!(ev[0].port, Some(447));
}

#[test]
fn feodo_without_indicator_column_reports_error_not_panic() {
    let (ev, rep) = parse(FeedFormat::Feodo, b"a,b,c\n1,2,3\n");
    assert!(ev.is_empty());
    assert!(matches!(rep.error, Some(SourceError::MissingColumn { .. })), "{rep:?}");
}

#[test]
fn urlhaus_csv() {
    let data = b"################################################################\n\
# abuse.ch URLhaus Database Dump (CSV - recent URLs)           #\n\
# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n\
\"3000001\",\"2024-05-01 10:00:00\",\"http://198.51.100.7/bins/mozi.m\",\"online\",\"2024-05-01 11:00:00\",\"malware_download\",\"elf,Mozi\",\"https://urlhaus.abuse.ch/url/3000001/\",\"lrz_urlhaus\"\n\
\"3000002\",\"2024-05-01 10:05:00\",\"https://Evil.Example.COM/x.exe\",\"offline\",\"\",\"malware_download\",\"exe\",\"https://urlhaus.abuse.ch/url/3000002/\",\"anon\"\n\
\"3000003\",\"2024-05-01 10:05:00\",\"http://x\"\n";
    let (ev, rep) = parse(FeedFormat::Urlhaus, data);
    assert_eq!(rep.accepted, 2, "{rep:?}");
    assert_eq!(rep.quarantined, 1);
    assert!(matches!(
        rep.quarantine[0].reason,
        QuarantineReason::ColumnCount { expected: 9, found: 3 }
    ));
    assert_eq!(rep.quarantine[0].line, 6);
    assert_eq!(ev[0].classification, Classification::MalwareDistribution);
    assert_eq!(ev[0].value.host_ip(), Some("198.51.100.7".parse().unwrap()));
    assert_eq!(ev[1].value.to_string(), "https://evil.example.com/x.exe");
    assert_eq!(ev[1].last_seen, None);
}

#[test]
fn threatfox_csv() {
    let data = b"# \"first_seen_utc\",\"ioc_id\",\"ioc_value\",\"ioc_type\",\"threat_type\",\"fk_malware\",\"malware_alias\",\"malware_printable\",\"last_seen_utc\",\"confidence_level\",\"reference\",\"tags\",\"anonymous\",\"reporter\"\n\
\"2024-05-01 10:00:00\", \"1\", \"203.0.113.9:8443\", \"ip:port\", \"botnet_cc\", \"win.cobalt_strike\", \"None\", \"Cobalt Strike\", \"\", \"100\", \"\", \"CobaltStrike\", \"0\", \"abuse_ch\"\n\
\"2024-05-01 10:00:00\", \"2\", \"bad.example\", \"domain\", \"payload_delivery\", \"win.x\", \"None\", \"X\", \"\", \"75\", \"\", \"\", \"0\", \"abuse_ch\"\n\
\"2024-05-01 10:00:00\", \"3\", \"D41D8CD98F00B204E9800998ECF8427E\", \"md5_hash\", \"payload\", \"win.x\", \"None\", \"X\", \"\", \"50\", \"\", \"\", \"0\", \"abuse_ch\"\n\
\"2024-05-01 10:00:00\", \"4\", \"300.1.1.1:80\", \"ip:port\", \"botnet_cc\", \"win.x\", \"None\", \"X\", \"\", \"50\", \"\", \"\", \"0\", \"abuse_ch\"\n";
    let (ev, rep) = parse(FeedFormat::ThreatfoxCsv, data);
    assert_eq!((rep.accepted, rep.quarantined), (3, 1), "{rep:?}");
    assert_eq!(ev[0].value.to_string(), "203.0.113.9");
    assert_eq!(ev[0].port, Some(8443));
    assert_eq!(ev[0].confidence, 100);
    assert_eq!(ev[0].classification, Classification::C2Server);
    assert_eq!(ev[0].malware.as_deref(), Some("Cobalt Strike"));
    assert_eq!(ev[1].value.kind(), IndicatorKind::Domain);
    assert_eq!(ev[1].classification, Classification::MalwareDistribution);
    assert_eq!(ev[2].value.to_string(), "d41d8cd98f00b204e9800998ecf8427e");
    assert!(matches!(
        rep.quarantine[0].reason,
        QuarantineReason::BadIndicator { .. }
    ));
}

#[test]
fn threatfox_json_export_and_api_shape() {
    let data = br#"{"1001": [{"ioc_value": "203.0.113.10:443", "ioc_type": "ip:port", "threat_type": "botnet_cc",
        "malware_printable": "QakBot", "first_seen_utc": "2024-05-01 10:00:00", "last_seen_utc": null,
        "confidence_level": 90, "tags": "qakbot", "reporter": "x"}],
      "1002": [{"ioc_value": "http://bad.example/a", "ioc_type": "url", "threat_type": "payload_delivery",
        "first_seen_utc": "not a time", "confidence_level": "80"}],
      "1003": [{"ioc_value": "evil.example", "ioc_type": "domain", "threat_type": "botnet_cc", "confidence_level": "75"}]}"#;
    let (ev, rep) = parse(FeedFormat::ThreatfoxJson, data);
    assert_eq!((rep.rows, rep.accepted, rep.quarantined), (3, 2, 1), "{rep:?}");
    assert_eq!(ev[0].port, Some(443));
    assert_eq!(ev[0].confidence, 90);
    assert_eq!(ev[1].confidence, 75);
    assert!(matches!(
        rep.quarantine[0].reason,
        QuarantineReason::BadTimestamp { .. }
    ));
    let api = br#"{"query_status": "ok", "data": [{"ioc": "evil2.example", "ioc_type": "domain", "threat_type": "botnet_cc"}]}"#;
    let (ev, rep) = parse(FeedFormat::ThreatfoxJson, api);
    assert_eq!(rep.accepted, 1, "{rep:?}");
    assert_eq!(ev[0].value.to_string(), "evil2.example");
}

#[test]
fn threatfox_json_truncated_keeps_what_was_read() {
    let data = br#"{"1": [{"ioc_value": "evil.example", "ioc_type": "domain"}], "2": [{"ioc_value": "#;
    let (ev, rep) = parse(FeedFormat::ThreatfoxJson, data);
    assert_eq!(ev.len(), 1);
    assert!(matches!(rep.error, Some(SourceError::Json { .. })), "{rep:?}");
}

#[test]
fn shadowserver_scan_and_event_reports() {
    let scan = b"\"timestamp\",\"ip\",\"protocol\",\"port\",\"hostname\",\"tag\",\"asn\",\"geo\",\"region\",\"city\",\"naics\",\"sic\",\"banner\"\n\
\"2024-05-01 00:01:02\",\"192.0.2.10\",\"tcp\",23,,\"telnet\",64500,\"CN\",\"BEIJING\",\"BEIJING\",0,0,\"login:\"\n";
    let (ev, rep) = parse(FeedFormat::Shadowserver, scan);
    assert_eq!(rep.accepted, 1, "{rep:?}");
    assert_eq!(ev[0].classification, Classification::VulnerableSystem);
    assert_eq!(ev[0].source_asn, Some(64500));
    assert_eq!(ev[0].source_country.map(|c| c.to_string()), Some("CN".into()));
    assert_eq!(ev[0].port, Some(23));
    let event = b"timestamp,protocol,src_ip,src_port,src_asn,src_geo,infection,family,tag\n\
2024-05-01T00:01:02Z,tcp,192.0.2.11,51000,64501,DE,andromeda,andromeda,sinkhole\n";
    let (ev, rep) = parse(FeedFormat::Shadowserver, event);
    assert_eq!(rep.accepted, 1, "{rep:?}");
    assert_eq!(ev[0].classification, Classification::InfectedSystem);
    assert_eq!(ev[0].malware.as_deref(), Some("andromeda"));
}

#[test]
fn generic_mapping_from_toml() {
    let toml_src = r#"
        delimiter = ";"
        indicator = "addr"
        time_source = ["seen", "when"]
        classification = 2
        default_classification = "botnet-c2"
        victim_count = "bots"
        victim_country = "victims_cc"
        default_tlp = "TLP:RED"
    "#;
    let m: CsvMapping = toml::from_str(toml_src).unwrap();
    assert_eq!(m.indicator, Column::Name("addr".into()));
    let data = b"addr;when;kind;bots;victims_cc\n198.51.100.1;2024-05-01 00:00:00;;1200;cn\nevil.example;2024-05-01;phishing;;\n";
    let (ev, rep) = parse(FeedFormat::Generic(Box::new(m)), data);
    assert_eq!(rep.accepted, 2, "{rep:?}");
    assert_eq!(ev[0].classification, Classification::C2Server);
    assert_eq!(ev[0].victim_count, Some(1200));
    assert_eq!(ev[0].victim_country.map(|c| c.to_string()), Some("CN".into()));
    assert_eq!(ev[0].tlp, Tlp::Red);
    assert_eq!(ev[1].classification, Classification::Phishing);
    assert_eq!(ev[1].value.kind(), IndicatorKind::Domain);
}

#[test]
fn hostile_rows_are_quarantined_and_batch_goes_on() {
    let mut data =
        b"time_source,indicator,kind,port,classification,malware,victim_count,victim_country,confidence,tlp\n".to_vec();
    data.extend_from_slice(b"2026-10-02 00:00:00,198.51.100.1,,443,c2-server,Emotet,10,CN,90,TLP:AMBER\n");
    data.extend_from_slice(b"2026-10-02 00:00:00,198.51.100.2,ipv4\n"); // wrong column count
    data.extend_from_slice(b"2026-10-02 00:00:00,999.51.100.3,ipv4,443,c2-server,Emotet,10,CN,90,TLP:AMBER\n"); // bad IP
    data.extend_from_slice(b"2026-13-02 00:00:00,198.51.100.4,,443,c2-server,Emotet,10,CN,90,TLP:AMBER\n"); // bad time
    data.extend_from_slice(b"2026-10-02 00:00:00,198.51.100.5,,443,c2-server,Emo\xff\xfe,10,CN,90,TLP:AMBER\n"); // UTF-8
    data.extend_from_slice(b"2026-10-02 00:00:00,http://198.51.100.6/");
    data.extend(std::iter::repeat_n(b'A', 100_000));
    data.extend_from_slice(b",url,,phishing,,,,50,TLP:AMBER\n"); // huge field
    data.extend_from_slice(b"2026-10-02 00:00:00,198.51.100.7,,443,c2-server,Emotet,10,CN,90,TLP:AMBER\n");
    // An unterminated quote swallows the rest of the file into one field: last row on purpose.
    data.extend_from_slice(b"2026-10-02 00:00:00,\"unterminated quote,,,,,,,,\n1,2,3\n");
    let (ev, rep) = parse(FeedFormat::Liaison, &data);
    assert_eq!(ev.len(), 2);
    assert_eq!(rep.quarantined, 6);
    let reasons: Vec<_> = rep.quarantine.iter().map(|q| (q.line, q.reason.clone())).collect();
    assert!(
        matches!(
            reasons[0],
            (3, QuarantineReason::ColumnCount { expected: 10, found: 3 })
        ),
        "{reasons:?}"
    );
    assert!(matches!(&reasons[1], (4, QuarantineReason::BadIndicator { message }) if message.contains("999.51.100.3")));
    assert!(matches!(&reasons[2], (5, QuarantineReason::BadTimestamp { column, .. }) if column == "time_source"));
    assert!(matches!(reasons[3], (6, QuarantineReason::InvalidUtf8 { column: 5 })));
    assert!(
        matches!(
            reasons[4],
            (
                7,
                QuarantineReason::FieldTooLong {
                    column: 1,
                    len: 100_020,
                    ..
                }
            )
        ),
        "{reasons:?}"
    );
    assert_eq!(rep.quarantine[4].excerpt.len(), 160);
    assert!(
        matches!(
            reasons[5],
            (9, QuarantineReason::ColumnCount { expected: 10, found: 2 })
        ),
        "{reasons:?}"
    );
    assert!(
        rep.quarantine[0]
            .to_string()
            .starts_with("feed.csv:3: wrong column count")
    );
    assert_eq!(rep.rows, rep.accepted + rep.quarantined);
}

#[test]
fn endless_line_and_unterminated_quote_are_bounded() {
    let mut data = b"indicator,note\n198.51.100.1,ok\n198.51.100.2,".to_vec();
    data.extend(std::iter::repeat_n(b'x', 5_000_000)); // 5 MB line, no newline for a while
    data.extend_from_slice(b"\n\r\n198.51.100.3,ok\r\n\"");
    data.extend(std::iter::repeat_n(b"a\n".as_slice(), 400_000).flatten()); // quote never closes
    let m = CsvMapping::new(Column::Name("indicator".into()));
    let cfg = SourceConfig::new("x", FeedFormat::Generic(Box::new(m)));
    let (ev, rep) = parse_to_vec(&data[..], &cfg, "f", NOW);
    let vals: Vec<String> = ev.iter().map(|e| e.value.to_string()).collect();
    assert_eq!(vals, ["198.51.100.1", "198.51.100.3"]);
    assert_eq!(rep.quarantined, 2, "{rep:?}");
    assert!(matches!(
        rep.quarantine[0].reason,
        QuarantineReason::RecordTooLong { .. }
    ));
    assert_eq!(rep.quarantine[0].line, 3);
    assert!(rep.quarantine[0].excerpt.starts_with("198.51.100.2x"));
    assert_eq!(ev[1].origin.line, 5);
    assert_eq!(rep.quarantine[1].line, 6);
}

#[test]
fn quarantine_keeps_only_the_first_n_details() {
    let mut data = b"indicator\n".to_vec();
    for _ in 0..50 {
        data.extend_from_slice(b"not an indicator!\n");
    }
    let mut cfg = SourceConfig::new(
        "x",
        FeedFormat::Generic(Box::new(CsvMapping::new(Column::Name("indicator".into())))),
    );
    cfg.limits.max_quarantine_kept = 10;
    let (_, rep) = parse_to_vec(&data[..], &cfg, "f", NOW);
    assert_eq!(rep.quarantined, 50);
    assert_eq!(rep.quarantine.len(), 10);
}

#[test]
fn plain_list_with_comments_and_hostile_lines() {
    let mut data = b"# my blocklist\n\n198.51.100.1\n  evil.example.  # trailing comment\nhttp://x.example/a\n2001:db8::1\n10.0.0.0/8\nAS64500\nnot valid\n".to_vec();
    data.extend(std::iter::repeat_n(b'a', 1_000_000));
    data.extend_from_slice(b"\n\xff\xfe.example\nlast.example\n");
    let cfg = ListConfig {
        classification: Classification::Phishing,
        ..ListConfig::default()
    };
    let (ev, rep) = parse(FeedFormat::List(cfg), &data);
    let vals: Vec<String> = ev.iter().map(|e| e.value.to_string()).collect();
    assert_eq!(
        vals,
        [
            "198.51.100.1",
            "evil.example",
            "http://x.example/a",
            "2001:db8::1",
            "10.0.0.0/8",
            "AS64500",
            "last.example"
        ]
    );
    assert!(ev.iter().all(|e| e.classification == Classification::Phishing));
    assert_eq!(rep.quarantined, 3, "{rep:?}");
    assert!(matches!(
        rep.quarantine[0].reason,
        QuarantineReason::BadIndicator { .. }
    ));
    assert_eq!(rep.quarantine[0].line, 9);
    assert!(matches!(
        rep.quarantine[1].reason,
        QuarantineReason::FieldTooLong { .. }
    ));
    assert!(matches!(rep.quarantine[2].reason, QuarantineReason::InvalidUtf8 { .. }));
    assert_eq!(rep.quarantine[2].line, 11);
}

#[test]
fn list_with_fixed_kind_rejects_other_kinds() {
    let cfg = ListConfig {
        kind: Some(IndicatorKind::Ipv4),
        ..ListConfig::default()
    };
    let (ev, rep) = parse(FeedFormat::List(cfg), b"198.51.100.1\nevil.example\n");
    assert_eq!(ev.len(), 1);
    assert_eq!(rep.quarantined, 1);
}

#[test]
fn progress_reports_bytes_and_rows() {
    let mut data = Vec::new();
    liaison_intel::generate_feed(7, 40_000, &mut data).unwrap();
    let seen = Mutex::new(Vec::new());
    let progress = |p: ProgressUpdate<'_>| seen.lock().unwrap().push((p.bytes_read, p.rows, p.done));
    let ctx = ParseContext {
        file: Arc::from("demo.csv"),
        source: 0,
        observed_at: NOW,
        progress: &progress,
    };
    let mut n = 0u64;
    let rep = parse_source(
        &data[..],
        &SourceConfig::new("demo", FeedFormat::Liaison),
        &ctx,
        &mut |_| n += 1,
    );
    let seen = seen.into_inner().unwrap();
    assert!(seen.len() >= 3, "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
    let last = seen.last().unwrap();
    assert_eq!(*last, (data.len() as u64, 40_000, true));
    assert_eq!(n, rep.accepted);
    assert_eq!(rep.bytes, data.len() as u64);
}

#[test]
fn format_names_parse() {
    for name in FeedFormat::NAMES {
        assert!(name.parse::<FeedFormat>().is_ok(), "{name}");
    }
    assert!("xml".parse::<FeedFormat>().is_err());
}
