#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Search (docs/search.md), on SQLite and PostgreSQL: words in English and Chinese in request
//! texts, comments and evidence file names; identifiers normalized and looked up; what a reader
//! may not see stays out of hits, counts and snippets; listings filtered by words, case
//! reference and target; saved searches; the index rebuilt from the rows.

use jiff::Timestamp;
use liaison_core::lifecycle::{State, TransitionInput};
use liaison_core::record::{EvidenceKind, Principal, RequestFilter, SearchSource};
use liaison_core::request::{Target, TargetValue};
use liaison_core::{Marking, RequestId, RequestKind, Role, Tlp};
use liaison_service::ServiceError;
use liaison_service::evidence::{EvidenceConfig, NewEvidence, RetentionRule};
use liaison_service::fixtures::{self, TwoAgencies};
use liaison_service::search::SearchParams;
use sha2::{Digest, Sha256};

mod liaison_store_few {
    /// The node's default (docs/search.md).
    pub const DEFAULT: u64 = 5_000;
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn target(value: TargetValue) -> Target {
    Target {
        value,
        from: t("2026-10-01T00:00:00Z"),
        until: t("2026-11-01T00:00:00Z"),
        provider: None,
    }
}

/// A query string, or plain words (then `q=` them).
fn params(q: &str) -> SearchParams {
    if q.contains('=') {
        SearchParams::from_query_string(q).unwrap()
    } else {
        SearchParams::parse([("q", q)]).unwrap()
    }
}

/// (reference, source, field, marked words) of every hit of `q` for `p`, walking every page
/// of `limit` hits, and the count the first page gave.
async fn hits(
    f: &TwoAgencies,
    p: &Principal,
    q: &str,
    limit: u32,
) -> (Vec<(String, SearchSource, String, Vec<String>)>, u64) {
    let mut out = Vec::new();
    let mut sp = params(q);
    sp.limit = limit;
    let mut count = None;
    loop {
        let page = f.node.search(p, &sp, Timestamp::now()).await.unwrap();
        count.get_or_insert(page.count);
        for h in &page.items {
            let marked = h
                .snippet
                .marks
                .iter()
                .map(|&(s, e)| h.snippet.text[s..e].to_string())
                .collect();
            out.push((h.request.reference.clone(), h.source, h.field.clone(), marked));
        }
        assert!(out.len() <= 50, "the cursor does not advance");
        match page.next {
            Some(c) => sp.cursor = Some(c),
            None => break,
        }
    }
    (out, count.unwrap_or(0))
}

async fn listed(
    f: &TwoAgencies,
    p: &Principal,
    text: Option<&str>,
    case: Option<&str>,
    tgt: Option<&str>,
    kind: Option<&str>,
) -> Vec<String> {
    let mut filter = RequestFilter {
        limit: 50,
        ..Default::default()
    };
    f.node
        .search_filters(p, &mut filter, text, case, tgt, kind)
        .await
        .unwrap();
    let mut v: Vec<String> = f
        .node
        .list(p, filter, Timestamp::now())
        .await
        .unwrap()
        .items
        .iter()
        .map(|s| s.reference.clone())
        .collect();
    v.sort();
    v
}

async fn submit(f: &TwoAgencies, id: RequestId, now: Timestamp) {
    let officer = f.who("FBI", Role::Officer);
    let r = f.node.request(officer, id, now).await.unwrap();
    f.node
        .transition(
            officer,
            id,
            r.request.version,
            TransitionInput {
                to: Some(State::Submitted),
                ..Default::default()
            },
            now,
        )
        .await
        .unwrap();
}

async fn upload(f: &TwoAgencies, p: &Principal, id: RequestId, name: &str, marking: Option<Marking>, now: Timestamp) {
    let bytes = b"log lines";
    let u = f
        .node
        .evidence_upload_begin(
            p,
            id,
            NewEvidence {
                file_name: name.into(),
                media_type: Some("application/octet-stream".into()),
                marking,
                ..Default::default()
            },
            now,
        )
        .await
        .unwrap();
    let mut w = f.node.evidence_upload_piece(p, &u.id, 0).await.unwrap();
    w.write(bytes).await.unwrap();
    w.finish().await.unwrap();
    let sha = hex::encode(Sha256::digest(bytes));
    f.node.evidence_upload_finish(p, &u.id, Some(&sha), now).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_on_every_backend() {
    for node in fixtures::nodes_on_every_backend().await.unwrap() {
        let dir = std::env::temp_dir().join(format!("liaison-search-test-{}", uuid::Uuid::now_v7()));
        let config = EvidenceConfig {
            retention: vec![RetentionRule {
                kind: Some(EvidenceKind::Supporting),
                tlp: None,
                days: 30,
            }],
            ..Default::default()
        }
        .resolved(&dir);
        let f = TwoAgencies::on(node.with_evidence(config).unwrap()).await.unwrap();
        words_identifiers_and_who_sees_what(&f).await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}

async fn words_identifiers_and_who_sees_what(f: &TwoAgencies) {
    let n = &f.node;
    let now = Timestamp::now();
    let officer = f.who("FBI", Role::Officer);
    let mps = f.who("CN-MPS", Role::Officer);
    let mps_named = f.who("CN-MPS", Role::LegalReviewer);

    // A: submitted, with English and Chinese words and typed targets.
    let mut a = f.draft(RequestKind::SubscriberInformation);
    a.case_reference = "HQ-CY-2026-77".into();
    a.summary = "Phishing campaign against hospital staff run by a 电信诈骗集团 from servers in Shenzhen".into();
    a.targets = vec![
        target(TargetValue::Ip {
            address: "203.0.113.7".parse().unwrap(),
            port: None,
            observed_at: t("2026-10-10T10:00:00Z"),
            zone: None,
        }),
        target(TargetValue::Domain {
            name: "Bücher.Example".into(),
        }),
        target(TargetValue::Phone {
            number: "+86 138 0013 8000".into(),
        }),
        target(TargetValue::Email {
            address: "Boss@Bücher.example".into(),
        }),
        target(TargetValue::Ip {
            address: "2001:DB8:0:0::1".parse().unwrap(),
            port: None,
            observed_at: t("2026-10-10T10:00:00Z"),
            zone: None,
        }),
    ];
    let ra = n.create_request(officer, a, now).await.unwrap();
    let ida = ra.request.id;
    submit(f, ida, now).await;
    // B: a draft (the partner never sees drafts).
    let mut b = f.draft(RequestKind::SubscriberInformation);
    b.summary = "Ransomware negotiation through a wallet; phishing suspected".into();
    b.targets = vec![target(TargetValue::CryptoWallet {
        currency: "ETH".into(),
        address: "0xAbCdEf0123456789aBcDeF0123456789ABCDEF01".into(),
    })];
    let rb = n.create_request(officer, b, now).await.unwrap();

    // Comments: one below RED (both agencies read it), one RED naming one user of the partner.
    n.comment(
        officer,
        ida,
        "The suspects coordinate 诈骗 on QQ号码 12345 and reuse phishing kits",
        None,
        now,
    )
    .await
    .unwrap();
    let red = Marking {
        tlp: Tlp::Red,
        recipients: vec![mps_named.username.clone()],
    };
    n.comment(
        officer,
        ida,
        "Informant says the phishing servers move on Friday",
        Some(red.clone()),
        now,
    )
    .await
    .unwrap();
    // Evidence file names.
    upload(f, officer, ida, "phishing-kit-logs.zip", None, now).await;
    upload(f, officer, ida, "informant-phishing-notes.txt", Some(red), now).await;

    // English words by prefix, newest first; each reader sees what the markings allow, and the
    // count says the same.
    let (fbi_hits, fbi_count) = hits(f, officer, "phish", 2).await;
    assert_eq!(fbi_count, 6, "{fbi_hits:?}");
    assert_eq!(fbi_hits.len(), 6);
    assert_eq!(
        fbi_hits.iter().map(|h| h.1).collect::<Vec<_>>(),
        vec![
            SearchSource::File,
            SearchSource::File,
            SearchSource::Comment,
            SearchSource::Comment,
            SearchSource::Request,
            SearchSource::Request
        ],
        "newest first"
    );
    let (mps_hits, mps_count) = hits(f, mps, "phish", 20).await;
    assert_eq!(mps_count, 3, "{mps_hits:?}");
    assert!(
        mps_hits.iter().all(|h| h.0 == ra.reference),
        "never the draft: {mps_hits:?}"
    );
    assert!(
        !mps_hits
            .iter()
            .any(|h| h.3.iter().any(|w| w.contains("Informant") || w.contains("informant"))),
        "no snippet of the RED texts"
    );
    let (named_hits, named_count) = hits(f, mps_named, "phish", 20).await;
    assert_eq!(
        named_count, 5,
        "the named user reads the RED comment and file: {named_hits:?}"
    );
    // Oldest first is the reverse.
    let mut sp = params("q=phish&sort=oldest");
    sp.limit = 20;
    let oldest = n.search(officer, &sp, now).await.unwrap();
    assert_eq!(oldest.items.first().map(|h| h.source), Some(SearchSource::Request));
    // Snippets mark what matched.
    let summary_hit = mps_hits.iter().find(|h| h.1 == SearchSource::Request).unwrap();
    assert_eq!(summary_hit.2, "summary");
    assert_eq!(summary_hit.3, vec!["Phishing".to_string()]);

    // Chinese: two characters inside a longer run, in the summary and a comment.
    let (zh, _) = hits(f, mps, "诈骗", 20).await;
    assert_eq!(zh.len(), 2, "{zh:?}");
    assert!(zh.iter().all(|h| h.3.iter().any(|w| w == "诈骗")), "{zh:?}");
    let (zh, _) = hits(f, mps, "集团", 20).await;
    assert_eq!(zh.len(), 1);
    let (zh, _) = hits(f, mps, "q=号码", 20).await;
    assert_eq!(zh.len(), 1, "号码 after QQ");
    let (zh, _) = hits(f, mps, "q=诈骗集团成员", 20).await;
    assert!(zh.is_empty(), "a longer phrase that is not there");

    // Phrases, exclusions, sources, case references, references.
    assert_eq!(hits(f, mps, "q=%22hospital+staff%22", 20).await.0.len(), 1);
    assert_eq!(hits(f, mps, "q=%22staff+hospital%22", 20).await.0.len(), 0);
    let (x, _) = hits(f, officer, "q=phishing+-hospital+-kit+-kits", 20).await;
    assert_eq!(x.len(), 3, "the RED comment, the RED file and draft B: {x:?}");
    let (x, _) = hits(f, officer, "q=phish&in=file", 20).await;
    assert_eq!(x.len(), 2);
    assert!(x.iter().all(|h| h.2 == "file_name"));
    let (x, _) = hits(f, mps, "q=HQ-CY-2026-77", 20).await;
    assert_eq!(x.len(), 1);
    assert_eq!(x[0].2, "case_reference");
    let (x, _) = hits(f, mps, &format!("q={}", ra.reference), 20).await;
    assert_eq!(x.len(), 1);
    assert_eq!(x[0].2, "reference");
    // Filters on the request.
    assert_eq!(hits(f, officer, "q=phish&state=draft", 20).await.0.len(), 1);
    let state = n.request(officer, ida, now).await.unwrap().request.state;
    assert_eq!(
        hits(f, officer, &format!("q=phish&counterpart=CN-MPS&state={state}"), 20)
            .await
            .0
            .len(),
        5
    );
    assert_eq!(hits(f, officer, "q=phish&counterpart=CN-MPS", 20).await.0.len(), 6);
    assert_eq!(
        hits(f, officer, "q=phish&from=2000-01-01&to=2001-01-01", 20)
            .await
            .0
            .len(),
        0
    );
    assert_eq!(
        hits(f, officer, "q=phish&target=203.0.113.0/24", 20).await.0.len(),
        5,
        "texts of the requests with the target"
    );

    // Bad input names the parameter.
    for bad in [
        "q=",
        "q=%22%22",
        "q=-word",
        "sort=up&q=x",
        "nope=1&q=x",
        "q=x&q=y",
        "q=x&from=yesterday",
    ] {
        match SearchParams::from_query_string(bad).and_then(|p| p.query().map(|_| p)) {
            Ok(p) if p.q.is_none() => match n.search(officer, &p, now).await {
                Err(ServiceError::Invalid(e)) => assert_eq!(e[0].field, "q", "{bad}"),
                other => panic!("{bad}: {other:?}"),
            },
            Ok(p) => panic!("{bad}: accepted {p:?}"),
            Err(ServiceError::Invalid(e)) => assert!(!e[0].field.is_empty(), "{bad}"),
            Err(e) => panic!("{bad}: {e}"),
        }
    }

    // Listings filtered by words, case reference and target (normalized); words both ways
    // (from the matches, and walking the listing testing each request).
    for few in [liaison_store_few::DEFAULT, 0] {
        n.set_search_few_matches(few);
        assert_eq!(
            listed(f, mps, Some("诈骗"), None, None, None).await,
            vec![ra.reference.clone()]
        );
        assert_eq!(
            listed(f, mps, Some("phish -hospital"), None, None, None).await,
            vec![ra.reference.clone()]
        );
        assert!(listed(f, mps, Some("informant"), None, None, None).await.is_empty());
        assert_eq!(
            listed(f, mps_named, Some("informant"), None, None, None).await,
            vec![ra.reference.clone()]
        );
        let mut both = vec![ra.reference.clone(), rb.reference.clone()];
        both.sort();
        assert_eq!(listed(f, officer, Some("phishing"), None, None, None).await, both);
    }
    n.set_search_few_matches(liaison_store_few::DEFAULT);
    // Listings filtered by words, case reference and target (normalized).
    assert_eq!(
        listed(f, mps, Some("诈骗"), None, None, None).await,
        vec![ra.reference.clone()]
    );
    assert_eq!(
        listed(f, mps, Some("ransomware"), None, None, None).await,
        Vec::<String>::new()
    );
    assert_eq!(
        listed(f, officer, Some("ransomware"), None, None, None).await,
        vec![rb.reference.clone()]
    );
    assert_eq!(
        listed(f, mps, Some("informant"), None, None, None).await,
        Vec::<String>::new(),
        "a request matching only through a RED comment stays hidden from who may not read it"
    );
    assert_eq!(
        listed(f, mps_named, Some("informant"), None, None, None).await,
        vec![ra.reference.clone()]
    );
    assert_eq!(
        listed(f, mps, None, Some(" HQ-CY-2026-77 "), None, None).await,
        vec![ra.reference.clone()]
    );
    for ident in [
        "203.0.113.7",
        "203.0.113.0/24",
        "bücher.example",
        "XN--BCHER-KVA.EXAMPLE.",
        "0086-138-0013-8000",
        "boss@xn--bcher-kva.example",
        "2001:db8::1",
        "2001:0db8:0000:0000:0000:0000:0000:0001",
        "2001:db8::/64",
    ] {
        assert_eq!(
            listed(f, mps, None, None, Some(ident), None).await,
            vec![ra.reference.clone()],
            "{ident}"
        );
    }
    assert!(
        listed(f, mps, None, None, Some("203.0.114.0/24"), None)
            .await
            .is_empty()
    );
    assert_eq!(
        listed(
            f,
            officer,
            None,
            None,
            Some("eth:0xabcdef0123456789abcdef0123456789abcdef01"),
            Some("wallet")
        )
        .await,
        vec![rb.reference.clone()]
    );
    assert!(
        listed(
            f,
            mps,
            None,
            None,
            Some("eth:0xabcdef0123456789abcdef0123456789abcdef01"),
            Some("wallet")
        )
        .await
        .is_empty(),
        "the partner does not see the draft's target"
    );
    let mut bad = RequestFilter::default();
    match n
        .search_filters(mps, &mut bad, None, None, Some("not an identifier at all"), None)
        .await
    {
        Err(ServiceError::Invalid(e)) => assert_eq!(e[0].field, "target"),
        other => panic!("{other:?}"),
    }

    // Look-ups: "this address appears in N requests".
    let l = n.lookup(mps, "203.0.113.7", None, now).await.unwrap();
    assert_eq!(
        (l.kind.as_str(), l.identifier.as_str(), l.request_count),
        ("ip", "203.0.113.7", 1)
    );
    assert_eq!(l.requests[0].reference, ra.reference);
    let l = n.lookup(mps, "+86 (138) 0013-8000", None, now).await.unwrap();
    assert_eq!((l.identifier.as_str(), l.request_count), ("+8613800138000", 1));
    let l = n
        .lookup(
            mps,
            "eth:0xABCDEF0123456789ABCDEF0123456789ABCDEF01",
            Some(liaison_intel::ident::IdentKind::Wallet),
            now,
        )
        .await
        .unwrap();
    assert_eq!(l.request_count, 0);
    let l = n
        .lookup(
            officer,
            "eth:0xABCDEF0123456789ABCDEF0123456789ABCDEF01",
            Some(liaison_intel::ident::IdentKind::Wallet),
            now,
        )
        .await
        .unwrap();
    assert_eq!(l.request_count, 1);

    // A draft's edit replaces its words and targets.
    let cur = n.request(officer, rb.request.id, now).await.unwrap();
    let mut d = cur.request.draft.clone();
    d.summary = "Extortion by e-mail, no wallet".into();
    d.targets.clear();
    n.update_draft(officer, rb.request.id, cur.request.version, d, now)
        .await
        .unwrap();
    assert!(
        listed(f, officer, Some("ransomware"), None, None, None)
            .await
            .is_empty()
    );
    assert_eq!(
        listed(f, officer, Some("extortion"), None, None, None).await,
        vec![rb.reference.clone()]
    );
    assert!(
        listed(
            f,
            officer,
            None,
            None,
            Some("eth:0xabcdef0123456789abcdef0123456789abcdef01"),
            Some("wallet")
        )
        .await
        .is_empty()
    );

    // Saved searches: per user, by name, checked.
    let s = n
        .save_search(officer, "Phishing in CN", "q=phish&counterpart=CN-MPS&cursor=9", now)
        .await
        .unwrap();
    assert_eq!(s.query, "q=phish&counterpart=CN-MPS");
    n.save_search(officer, "Phishing in CN", "q=phishing", now)
        .await
        .unwrap();
    let saved = n.saved_searches(officer).await.unwrap();
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0].query, "q=phishing");
    assert!(
        n.saved_searches(mps).await.unwrap().is_empty(),
        "another user's list is their own"
    );
    for (name, query) in [("", "q=x"), ("ok", "q=x&bogus=1"), ("ok", "state=draft")] {
        assert!(matches!(
            n.save_search(officer, name, query, now).await,
            Err(ServiceError::Invalid(_))
        ));
    }
    n.delete_saved_search(officer, "Phishing in CN").await.unwrap();
    assert!(matches!(
        n.delete_saved_search(officer, "Phishing in CN").await,
        Err(ServiceError::NotFound(_))
    ));

    // The index rebuilt from the rows finds the same.
    assert!(matches!(
        n.search_rebuild(officer).await,
        Err(ServiceError::Forbidden(_))
    ));
    let before = hits(f, mps_named, "phish", 20).await;
    let (docs, keys) = n.search_rebuild(f.who("FBI", Role::Admin)).await.unwrap();
    assert_eq!(docs, 6, "two requests, two comments, two files");
    assert_eq!(
        keys, 5,
        "A: its IPv4 and IPv6 addresses, domain (also the e-mail's), phone and e-mail"
    );
    assert_eq!(hits(f, mps_named, "phish", 20).await, before);
    assert_eq!(
        listed(f, mps, None, None, Some("203.0.113.7"), None).await,
        vec![ra.reference.clone()]
    );
}

/// The store's SQL visibility rule (docs/search.md) against the service's own marking rule
/// (`markings.rs`, as the request's history applies it): for every request marking, comment
/// marking, author's side and reader, a comment is found by search exactly when the reader
/// sees it in the request's history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_sees_exactly_what_the_markings_let_through() {
    for node in fixtures::nodes_on_every_backend().await.unwrap() {
        let f = TwoAgencies::on(node).await.unwrap();
        let n = &f.node;
        let now = Timestamp::now();
        let red = |names: &[&str]| Marking {
            tlp: Tlp::Red,
            recipients: names.iter().map(|s| s.to_string()).collect(),
        };
        let request_markings = [
            Marking::new(Tlp::Green),
            Marking::new(Tlp::AmberStrict),
            red(&["cn-mps.legal_reviewer", "cn-mps.officer"]),
            red(&[]),
        ];
        let comment_markings = [
            None,
            Some(Marking::new(Tlp::Amber)),
            Some(red(&["cn-mps.officer"])),
            Some(red(&["fbi.supervisor"])),
            Some(red(&[])),
        ];
        let mut comments = Vec::new();
        for (i, rm) in request_markings.iter().enumerate() {
            let mut d = f.draft(RequestKind::SubscriberInformation);
            d.marking_set = Some(rm.clone());
            let r = n.create_request(f.who("FBI", Role::Officer), d, now).await.unwrap();
            submit(&f, r.request.id, now).await;
            for (j, cm) in comment_markings.iter().enumerate() {
                for (k, author) in [("FBI", Role::Officer), ("CN-MPS", Role::Officer)]
                    .into_iter()
                    .enumerate()
                {
                    let word = format!("zq{i}x{j}y{k}");
                    if let Ok(ev) = n
                        .comment(
                            f.who(author.0, author.1),
                            r.request.id,
                            &format!("note {word}"),
                            cm.clone(),
                            now,
                        )
                        .await
                    {
                        comments.push((r.request.id, ev.id, word));
                    }
                }
            }
        }
        assert!(comments.len() >= 20, "{}", comments.len());
        let (mut checked, mut hidden) = (0, 0);
        for agency in ["FBI", "CN-MPS"] {
            for role in Role::ALL.iter().filter(|r| r.may_read_requests()) {
                let p = f.who(agency, *role);
                for (id, ev, word) in &comments {
                    let in_history = match n.events(p, *id, now).await {
                        Ok(events) => events.iter().any(|e| e.id == *ev),
                        Err(_) => false,
                    };
                    let page = n.search(p, &params(word), now).await.unwrap();
                    assert_eq!(
                        page.count,
                        u64::from(in_history),
                        "{agency} {role} and comment {word}: history says {in_history}"
                    );
                    assert_eq!(page.items.len() as u64, page.count);
                    checked += 1;
                    hidden += usize::from(!in_history);
                }
            }
        }
        assert!(checked >= 100, "{checked}");
        assert!(
            hidden > 20 && hidden < checked - 20,
            "both kinds of case: {hidden} of {checked} hidden"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_walks_the_index_in_windows_on_every_backend() {
    for node in fixtures::nodes_on_every_backend().await.unwrap() {
        let f = TwoAgencies::on(node).await.unwrap();
        windows_periods_and_prefixes(&f).await;
    }
}

/// More texts than the smallest window of a PostgreSQL search (1,024, docs/search.md), one a
/// minute: pages, counts, both orders and periods come out the same as one pass over every
/// text would give, whichever windows the matches fall in; prefixes are replaced by the words
/// they start, and a prefix that starts none matches nothing (or, excluded, excludes nothing).
async fn windows_periods_and_prefixes(f: &TwoAgencies) {
    const N: i64 = 1100;
    let n = &f.node;
    let officer = f.who("FBI", Role::Officer);
    let base = t("2026-11-02T00:00:00Z");
    let mut d = f.draft(RequestKind::SubscriberInformation);
    d.summary = "Window walk".into();
    let id = n.create_request(officer, d, base).await.unwrap().request.id;
    for i in 0..N {
        let text = if i % 97 == 0 {
            format!("needle {i} haystack")
        } else {
            format!("haystack {i}")
        };
        let at = base.checked_add(jiff::SignedDuration::from_mins(i)).unwrap();
        n.comment(officer, id, &text, None, at).await.unwrap();
    }
    let minute = |at: Timestamp| at.duration_since(base).as_secs() / 60;
    // Every page of `q` (`limit` hits a page): the minutes of the hits, and the first count.
    let walk = |q: String, limit: u32| async move {
        let mut sp = params(&q);
        sp.limit = limit;
        let (mut out, mut count) = (Vec::new(), None);
        loop {
            let page = n.search(officer, &sp, Timestamp::now()).await.unwrap();
            count.get_or_insert((page.count, page.count_capped));
            out.extend(
                page.items
                    .iter()
                    .filter(|h| h.source == SearchSource::Comment)
                    .map(|h| minute(h.at)),
            );
            assert!(out.len() <= N as usize, "the cursor does not advance");
            match page.next {
                Some(c) => sp.cursor = Some(c),
                None => break,
            }
        }
        (out, count.unwrap_or_default())
    };
    let needles: Vec<i64> = (0..N).filter(|i| i % 97 == 0).collect();
    let newest: Vec<i64> = needles.iter().rev().copied().collect();
    assert_eq!(walk("needle".into(), 5).await, (newest.clone(), (12, false)));
    assert_eq!(walk("needl".into(), 5).await, (newest.clone(), (12, false)), "a prefix");
    assert_eq!(
        walk("q=needle&sort=oldest".into(), 5).await,
        (needles.clone(), (12, false))
    );
    assert_eq!(
        walk("needle -zzqnothing".into(), 20).await,
        (newest.clone(), (12, false))
    );
    assert_eq!(walk("needle zzqnothing".into(), 20).await, (vec![], (0, false)));
    assert_eq!(walk("needle -haystack".into(), 20).await, (vec![], (0, false)));
    let (first, count) = {
        let mut sp = params("haystack -needle");
        sp.limit = 3;
        let page = n.search(officer, &sp, Timestamp::now()).await.unwrap();
        (
            page.items.iter().map(|h| minute(h.at)).collect::<Vec<_>>(),
            (page.count, page.count_capped),
        )
    };
    assert_eq!(first, [1099, 1098, 1097]);
    assert_eq!(count, (1000, true), "the count stops at 1,000");
    // A period: minutes 100 to 499.
    let from = base.checked_add(jiff::SignedDuration::from_mins(100)).unwrap();
    let to = base.checked_add(jiff::SignedDuration::from_mins(500)).unwrap();
    let q = format!("q=needle&from={from}&to={to}");
    assert_eq!(walk(q.clone(), 2).await, (vec![485, 388, 291, 194], (4, false)));
    assert_eq!(
        walk(format!("{q}&sort=oldest"), 3).await,
        (vec![194, 291, 388, 485], (4, false))
    );
    let later = base.checked_add(jiff::SignedDuration::from_hours(100)).unwrap();
    assert_eq!(walk(format!("q=needle&from={later}"), 3).await, (vec![], (0, false)));
}
