#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use liaison_law::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A private copy of the shipped rules that a test may break.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "liaison-law-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for e in std::fs::read_dir(rules_dir()).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
        }
        Scratch(dir)
    }

    fn append(&self, file: &str, text: &str) -> usize {
        let p = self.0.join(file);
        let mut s = std::fs::read_to_string(&p).unwrap();
        s.push('\n');
        let first_line = s.lines().count() + 1;
        s.push_str(text);
        std::fs::write(&p, s).unwrap();
        first_line
    }

    /// 1-based line of the first line containing `needle`.
    fn line_of(&self, file: &str, needle: &str) -> usize {
        let s = std::fs::read_to_string(self.0.join(file)).unwrap();
        s.lines().position(|l| l.contains(needle)).unwrap() + 1
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn shipped_packs_pass_check() {
    let problems = check(&rules_dir());
    assert!(problems.is_empty(), "{problems:#?}");
    let p = packs();
    assert_eq!(p.content_hash().len(), 64);
    let codes: Vec<String> = p.jurisdictions().map(|c| c.to_string()).collect();
    for want in ["BR", "CN", "DE", "FR", "GB", "IN", "JP", "KR", "RU", "US"] {
        assert!(codes.contains(&want.to_string()), "{want} missing");
    }
    assert_eq!(p.jurisdiction_name(cc("CN")), Some(("China", "中国")));
}

#[test]
fn us_and_cn_cover_every_offence_category_and_retention() {
    use liaison_core::DataCategory;
    let rows = packs().coverage();
    for j in ["US", "CN"] {
        for o in packs().taxonomy().iter() {
            assert!(
                rows.iter()
                    .any(|r| r.jurisdiction.as_str() == j && r.topic.starts_with(&format!("offence {}", o.code))),
                "{j} lacks {}",
                o.code
            );
        }
        for c in DataCategory::ALL {
            assert!(
                rows.iter()
                    .any(|r| r.jurisdiction.as_str() == j && r.topic == format!("evidence {c}")),
                "{j} lacks evidence {c}"
            );
            if !matches!(c, DataCategory::RealtimeContent | DataCategory::RealtimeTrafficData) {
                assert!(
                    rows.iter()
                        .any(|r| r.jurisdiction.as_str() == j && r.topic == format!("retention {c}")),
                    "{j} lacks retention {c}"
                );
            }
        }
    }
    for j in ["GB", "DE", "FR", "JP", "KR", "IN", "RU", "BR"] {
        for n in 2..=11 {
            let code = format!("offence BC-{n:02}");
            assert!(
                rows.iter().any(|r| r.jurisdiction.as_str() == j && r.topic == code),
                "{j} lacks {code}"
            );
        }
        assert!(
            rows.iter()
                .any(|r| r.jurisdiction.as_str() == j && r.topic == "retention traffic_data"),
            "{j} retention"
        );
        assert!(
            rows.iter()
                .any(|r| r.jurisdiction.as_str() == j && r.topic == "treaty budapest"),
            "{j} Budapest status"
        );
    }
}

#[test]
fn taxonomy_loads_with_names() {
    let t = Taxonomy::load(&rules_dir()).unwrap();
    assert!(t.contains("BC-02") && t.contains("FRAUD-TELECOM") && !t.contains("BC-12"));
    let o = t.get("OBSCENE-DISSEMINATION").unwrap();
    assert_eq!(&*o.name_zh, "传播淫秽物品（成人色情）");
    assert_eq!(t.iter().filter(|o| o.is_budapest()).count(), 10);
    assert_eq!(t.len(), packs().taxonomy().len());
}

#[test]
fn broken_packs_give_file_line_and_rule() {
    struct Case {
        name: &'static str,
        file: &'static str,
        text: &'static str,
        rule: Option<&'static str>,
        needle: &'static str,
        message: &'static str,
    }
    let cases = [
        Case {
            name: "overlapping dates",
            file: "cn.toml",
            text: "[[retention]]\nid = \"cn.ret.logs.draft\"\ncategories = [\"traffic_data\"]\ndays = 90\nkind = \"minimum\"\nnote = \"x\"\neffective_from = 2016-01-01\nconfidence = \"unconfirmed\"\ncitation = { instrument = \"i\", article = \"a\", url = \"u\" }\n",
            rule: Some("cn.ret.logs.draft"),
            needle: "id = \"cn.ret.logs.draft\"",
            message: "overlap with rule cn.ret.logs.mps82",
        },
        Case {
            name: "unknown offence code",
            file: "us.toml",
            text: "[[criminality]]\nid = \"us.dc.bc-99\"\noffence = \"BC-99\"\nverdict = \"criminal\"\nnote = \"x\"\neffective_from = 2000-01-01\nconfidence = \"unconfirmed\"\ncitation = { instrument = \"i\", article = \"a\", url = \"u\" }\n",
            rule: Some("us.dc.bc-99"),
            needle: "id = \"us.dc.bc-99\"",
            message: "unknown offence code 'BC-99'",
        },
        Case {
            name: "missing citation",
            file: "de.toml",
            text: "[[criminality]]\nid = \"de.dc.gambling\"\noffence = \"GAMBLING-ONLINE\"\nverdict = \"criminal\"\nnote = \"x\"\neffective_from = 2000-01-01\nconfidence = \"unconfirmed\"\n",
            rule: Some("de.dc.gambling"),
            needle: "id = \"de.dc.gambling\"",
            message: "missing citation",
        },
        Case {
            name: "empty citation url",
            file: "fr.toml",
            text: "[[criminality]]\nid = \"fr.dc.gambling\"\noffence = \"GAMBLING-ONLINE\"\nverdict = \"criminal\"\nnote = \"x\"\neffective_from = 2000-01-01\nconfidence = \"unconfirmed\"\ncitation = { instrument = \"i\", article = \"a\" }\n",
            rule: Some("fr.dc.gambling"),
            needle: "id = \"fr.dc.gambling\"",
            message: "citation is missing url",
        },
        Case {
            name: "until before from",
            file: "jp.toml",
            text: "[[criminality]]\nid = \"jp.dc.gambling\"\noffence = \"GAMBLING-ONLINE\"\nverdict = \"criminal\"\nnote = \"x\"\neffective_from = 2000-01-01\neffective_until = 1999-01-01\nconfidence = \"unconfirmed\"\ncitation = { instrument = \"i\", article = \"a\", url = \"u\" }\n",
            rule: Some("jp.dc.gambling"),
            needle: "id = \"jp.dc.gambling\"",
            message: "effective_until must be after",
        },
        Case {
            name: "retention without its kind",
            file: "de.toml",
            text: "[[retention]]\nid = \"de.ret.draft\"\ncategories = [\"domain_registration_data\"]\ndays = 90\nnote = \"x\"\neffective_from = 2030-01-01\nconfidence = \"unconfirmed\"\ncitation = { instrument = \"i\", article = \"a\", url = \"u\" }\n",
            rule: Some("de.ret.draft"),
            needle: "id = \"de.ret.draft\"",
            message: "missing kind",
        },
        Case {
            name: "a channel without its Chinese name",
            file: "treaties.toml",
            text: "[[channel]]\nid = \"xx-police\"\nkind = \"police_to_police\"\nname = \"n\"\ncoercive = false\ndual_criminality = \"required\"\ndefault_days = 10\neffective_from = 2000-01-01\nconfidence = \"unconfirmed\"\ncitation = { instrument = \"i\", article = \"a\", url = \"u\" }\n",
            rule: Some("xx-police"),
            needle: "id = \"xx-police\"",
            message: "name_zh",
        },
        Case {
            name: "unknown treaty for a channel",
            file: "treaties.toml",
            text: "[[channel]]\nid = \"xx-mla\"\nkind = \"treaty_mla\"\nname = \"n\"\nname_zh = \"n\"\ntreaty = \"nowhere\"\ncoercive = true\ndual_criminality = \"required\"\ndefault_days = 10\neffective_from = 2000-01-01\nconfidence = \"unconfirmed\"\ncitation = { instrument = \"i\", article = \"a\", url = \"u\" }\n",
            rule: Some("xx-mla"),
            needle: "id = \"xx-mla\"",
            message: "unknown treaty 'nowhere'",
        },
        Case {
            name: "unknown country in a membership",
            file: "treaties.toml",
            text: "[[membership]]\nid = \"budapest.xx\"\ntreaty = \"budapest\"\nparty = \"XX\"\nstatus = \"party\"\neffective_from = 2000-01-01\nconfidence = \"unconfirmed\"\ncitation = { instrument = \"i\", article = \"a\", url = \"u\" }\n",
            rule: Some("budapest.xx"),
            needle: "party = \"XX\"",
            message: "'XX' is not an ISO 3166-1 alpha-2 country code",
        },
        Case {
            name: "syntax error",
            file: "kr.toml",
            text: "[[criminality]\nid = \"kr.dc.x\"\n",
            rule: Some("kr.dc.x"),
            needle: "[[criminality]\n",
            message: "",
        },
        Case {
            name: "unknown field",
            file: "in.toml",
            text: "[[retention]]\nid = \"in.ret.x\"\ncategories = [\"traffic_data\"]\nnote = \"x\"\ncolour = \"red\"\neffective_from = 2030-01-01\nconfidence = \"unconfirmed\"\ncitation = { instrument = \"i\", article = \"a\", url = \"u\" }\n",
            rule: Some("in.ret.x"),
            needle: "colour",
            message: "colour",
        },
        Case {
            name: "unknown data category",
            file: "ru.toml",
            text: "[[retention]]\nid = \"ru.ret.x\"\ncategories = [\"gossip\"]\nnote = \"x\"\neffective_from = 2030-01-01\nconfidence = \"unconfirmed\"\ncitation = { instrument = \"i\", article = \"a\", url = \"u\" }\n",
            rule: Some("ru.ret.x"),
            needle: "gossip",
            message: "gossip",
        },
        Case {
            name: "rule id of another jurisdiction",
            file: "br.toml",
            text: "[[criminality]]\nid = \"us.dc.gambling2\"\noffence = \"GAMBLING-ONLINE\"\nverdict = \"criminal\"\nnote = \"x\"\neffective_from = 2000-01-01\nconfidence = \"unconfirmed\"\ncitation = { instrument = \"i\", article = \"a\", url = \"u\" }\n",
            rule: Some("us.dc.gambling2"),
            needle: "id = \"us.dc.gambling2\"",
            message: "must start with 'br.'",
        },
    ];
    for c in cases {
        let s = Scratch::new();
        let appended_at = s.append(c.file, c.text);
        let want_line = if c.needle.ends_with('\n') {
            appended_at
        } else {
            s.line_of(c.file, c.needle)
        };
        let diags = check(s.path());
        let d = diags
            .iter()
            .find(|d| d.file.ends_with(c.file) && d.message.contains(c.message))
            .unwrap_or_else(|| panic!("{}: no diagnostic in {}: {diags:#?}", c.name, c.file));
        assert_eq!(d.line, want_line, "{}: {d}", c.name);
        assert_eq!(d.rule.as_deref(), c.rule, "{}: {d}", c.name);
        let shown = d.to_string();
        let prefix = format!("{}:{}: ", s.path().join(c.file).display(), want_line);
        assert!(shown.starts_with(&prefix), "{}: {shown}", c.name);
        if let Some(r) = c.rule {
            assert!(shown.contains(&format!("rule {r}: ")), "{}: {shown}", c.name);
        }
        // Never half-loaded.
        let err = RulePacks::load(s.path()).unwrap_err();
        assert!(!err.diagnostics().is_empty(), "{}", c.name);
        assert!(err.to_string().contains(&shown), "{}: {err}", c.name);
    }
}

#[test]
fn check_reports_all_problems_at_once() {
    let s = Scratch::new();
    s.append("us.toml", "[[criminality]]\nid = \"us.dc.a\"\noffence = \"NOPE-1\"\nverdict = \"criminal\"\nnote = \"x\"\neffective_from = 2000-01-01\nconfidence = \"unconfirmed\"\ncitation = { instrument = \"i\", article = \"a\", url = \"u\" }\n");
    s.append("cn.toml", "[[criminality]]\nid = \"cn.dc.b\"\noffence = \"BC-02\"\nverdict = \"criminal\"\nnote = \"x\"\neffective_from = 2000-01-01\nconfidence = \"unconfirmed\"\n");
    std::fs::write(
        s.path().join("xx.toml"),
        "jurisdiction = \"XX\"\nname_en = \"x\"\nname_zh = \"x\"\n",
    )
    .unwrap();
    let diags = check(s.path());
    assert!(diags.iter().any(|d| d.rule.as_deref() == Some("us.dc.a")), "{diags:#?}");
    assert!(diags.iter().any(|d| d.rule.as_deref() == Some("cn.dc.b")), "{diags:#?}");
    assert!(
        diags.iter().any(|d| d.file.ends_with("xx.toml")
            && d.line == 1
            && d.message.contains("unknown jurisdiction code 'XX'")),
        "{diags:#?}"
    );
}

#[test]
fn missing_confidence_and_misplaced_pack() {
    let s = Scratch::new();
    s.append("gb.toml", "[[criminality]]\nid = \"gb.dc.gambling\"\noffence = \"GAMBLING-ONLINE\"\nverdict = \"criminal\"\nnote = \"x\"\neffective_from = 2000-01-01\ncitation = { instrument = \"i\", article = \"a\", url = \"u\" }\n");
    std::fs::write(
        s.path().join("au.toml"),
        std::fs::read_to_string(s.path().join("de.toml")).unwrap(),
    )
    .unwrap();
    let diags = check(s.path());
    assert!(
        diags
            .iter()
            .any(|d| d.rule.as_deref() == Some("gb.dc.gambling") && d.message.contains("confidence")),
        "{diags:#?}"
    );
    assert!(
        diags
            .iter()
            .any(|d| d.file.ends_with("au.toml") && d.message.contains("de.toml")),
        "{diags:#?}"
    );
}

#[test]
fn content_hash_is_stable_and_tracks_bytes() {
    let s = Scratch::new();
    let a = RulePacks::load(s.path()).unwrap();
    assert_eq!(
        a.content_hash(),
        packs().content_hash(),
        "same bytes, same hash, wherever they live"
    );
    s.append("us.toml", "# a comment changes the version\n");
    let b = RulePacks::load(s.path()).unwrap();
    assert_ne!(a.content_hash(), b.content_hash());
}

#[test]
fn missing_directory_is_an_io_error() {
    let e = RulePacks::load(Path::new("/nonexistent/liaison-rules")).unwrap_err();
    assert!(matches!(e, LoadError::Io { .. }));
    let d = check(Path::new("/nonexistent/liaison-rules"));
    assert_eq!(d.len(), 1);
}

#[test]
fn art_29_4_reservation_brings_back_dual_criminality_for_non_budapest_offences() {
    // Japan made the Art 29(4) reservation (rules/treaties.toml, budapest.jp).
    let packs = packs();
    let kind = liaison_core::RequestKind::ExpeditedPreservation;
    let porn = assess(
        packs,
        &input("GB", "JP", kind, &["OBSCENE-DISSEMINATION"], "2026-11-01"),
    )
    .unwrap();
    assert_eq!(
        porn.plan[0].channel.as_deref(),
        Some("budapest-24-7"),
        "{:?}",
        porn.plan
    );
    assert_eq!(porn.dual_criminality[0].required, DcRequirement::Discretionary);
    assert!(porn.dual_criminality[0].explanation(Lang::En).contains("29(4)"));
    let hacking = assess(packs, &input("GB", "JP", kind, &["BC-02"], "2026-11-01")).unwrap();
    assert_eq!(hacking.dual_criminality[0].required, DcRequirement::NotRequired);
    // No reservation by the United States.
    let us = assess(
        packs,
        &input("GB", "US", kind, &["OBSCENE-DISSEMINATION"], "2026-11-01"),
    )
    .unwrap();
    assert_eq!(us.dual_criminality[0].required, DcRequirement::NotRequired);
}

#[test]
fn a_confirmed_rule_without_its_excerpt_is_a_warning_not_an_error() {
    let s = Scratch::new();
    s.append(
        "de.toml",
        "[[approval]]\nid = \"de.ap.draft\"\nrequirement = \"r\"\neffective_from = 2030-01-01\nconfidence = \"confirmed\"\ncitation = { instrument = \"i\", article = \"a\", url = \"u\" }\n",
    );
    let line = s.line_of("de.toml", "id = \"de.ap.draft\"");
    let diags = check(s.path());
    let d = diags
        .iter()
        .find(|d| d.rule.as_deref() == Some("de.ap.draft"))
        .unwrap_or_else(|| panic!("{diags:#?}"));
    assert_eq!(d.severity, Severity::Warning);
    assert_eq!(d.line, line);
    assert!(d.to_string().contains("warning: "), "{d}");
    assert!(d.message.contains("excerpt"), "{d}");
    // Warnings do not stop a node from starting.
    RulePacks::load(s.path()).unwrap();

    // With the quote it is clean; an empty quote is an error.
    let s = Scratch::new();
    s.append(
        "de.toml",
        "[[approval]]\nid = \"de.ap.draft\"\nrequirement = \"r\"\neffective_from = 2030-01-01\nconfidence = \"confirmed\"\ncitation = { instrument = \"i\", article = \"a\", url = \"u\", excerpt = \"The text.\" }\n",
    );
    assert!(!check(s.path()).iter().any(|d| d.rule.as_deref() == Some("de.ap.draft")));
    let s = Scratch::new();
    s.append(
        "de.toml",
        "[[approval]]\nid = \"de.ap.draft\"\nrequirement = \"r\"\neffective_from = 2030-01-01\nconfidence = \"partial\"\ncitation = { instrument = \"i\", article = \"a\", url = \"u\", excerpt = \" \" }\n",
    );
    let diags = check(s.path());
    assert!(
        diags.iter().any(|d| d.rule.as_deref() == Some("de.ap.draft")
            && d.is_error()
            && d.message.contains("excerpt is empty")),
        "{diags:#?}"
    );
}
