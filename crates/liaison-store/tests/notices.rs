//! Clean-up notices over federation (migration 11) on every backend: issuer scoping, outbox
//! rows written in the notice run's transaction, incoming notices (parts, markings, answers
//! and their outgoing message), and partners' answers recorded, claimed and applied once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use jiff::Timestamp;
use liaison_core::{CountryCode, Pap, Tlp};
use liaison_intel::model::{Classification, Event, IndicatorValue, PartnerId};
use liaison_intel::{CleanupState, FeedbackStatus, IncomingItem, IncomingNotice, Interval, RemoteAnswer};
use liaison_store::{Effect, IncomingRecord, LeafRecord, OutboxItem, Store};
use std::net::Ipv4Addr;
use std::sync::Arc;
use uuid::Uuid;

const DAY0: i64 = 1_790_208_000; // 2026-09-24T00:00:00Z

fn event(i: u8, partner: &str) -> Event {
    let mut ev = Event::new(
        IndicatorValue::Ipv4(Ipv4Addr::new(198, 51, 100, i)),
        Arc::from("test feed"),
        DAY0 + 60,
    );
    ev.time_source = Some(DAY0 + 60);
    ev.classification = Classification::C2Server;
    ev.tlp = if i == 1 { Tlp::Amber } else { Tlp::Green };
    ev.source_country = Some(CountryCode::parse("CN").unwrap());
    ev.partner = Some(PartnerId::new(partner));
    ev
}

fn outbox(id: &str, to: &str) -> OutboxItem {
    OutboxItem {
        message_id: id.into(),
        recipient: to.into(),
        payload_type: "cleanup_notice".into(),
        payload: serde_json::json!({"id": id}),
        created_at: Timestamp::from_second(DAY0).unwrap(),
    }
}

fn received(id: &str, sender: &str, seq: i64, effect: Effect) -> IncomingRecord {
    IncomingRecord {
        message_id: id.into(),
        sender: sender.into(),
        link_seq: seq,
        envelope_hash: "00".into(),
        header: "{}".into(),
        payload: "{}".into(),
        receipt: "{}".into(),
        outcome: "applied".into(),
        leaf: LeafRecord {
            kind: "received".into(),
            message_id: id.into(),
            leaf: "{\"kind\":\"received\"}".into(),
            leaf_hash: format!("{:064x}", seq + 1000 * i64::from(sender.len() as u8)),
        },
        at: Timestamp::from_second(DAY0).unwrap(),
        effect: Some(effect),
    }
}

/// A notice run of FBI for CN-MPS (2 items) and of nobody for DE-BKA (1 item), with two
/// outbox messages for the peer `cn-mps`.
async fn issue(store: &Store) -> Vec<liaison_intel::Notice> {
    let mut state = CleanupState::new();
    state.observe(&event(1, "CN-MPS"));
    state.observe(&event(2, "CN-MPS"));
    state.observe(&event(3, "DE-BKA"));
    let notices = state.issue_notices(Interval::day_of(DAY0), DAY0 + 3600);
    let mut tx = store.intel_begin().await.unwrap();
    tx.save_indicators(&state, &[0, 1, 2]).await.unwrap();
    tx.save_notices(&notices, DAY0 + 3600).await.unwrap();
    let cn: Vec<_> = notices
        .iter()
        .filter(|n| n.partner.as_str() == "CN-MPS")
        .map(|n| n.id)
        .collect();
    tx.set_issuer(&cn, "FBI").await.unwrap();
    tx.queue_outbox(&[outbox("m1", "cn-mps"), outbox("m2", "cn-mps")])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    notices
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuer_scopes_notices_and_the_outbox_commits_with_them() {
    for store in liaison_store::testing::all_backends().await {
        let b = format!("{:?}", store.backend());
        // A run that does not commit leaves neither notices nor messages.
        {
            let mut tx = store.intel_begin().await.unwrap();
            tx.queue_outbox(&[outbox("m0", "cn-mps")]).await.unwrap();
        }
        assert!(store.fed_outbox_pending("cn-mps", 10).await.unwrap().is_empty(), "{b}");

        let notices = issue(&store).await;
        let pending = store.fed_outbox_pending("cn-mps", 10).await.unwrap();
        let seqs: Vec<(String, i64)> = pending.iter().map(|o| (o.message_id.clone(), o.link_seq)).collect();
        assert_eq!(seqs, [("m1".to_string(), 1), ("m2".to_string(), 2)], "{b}");

        let all = store.intel_notices(None).await.unwrap();
        assert_eq!(all.len(), 2, "{b}");
        let fbi = store.intel_notices_visible(None, Some("FBI")).await.unwrap();
        assert_eq!(fbi.len(), 1, "{b}");
        assert_eq!(fbi[0].issuer.as_deref(), Some("FBI"));
        assert_eq!(fbi[0].notice.partner.as_str(), "CN-MPS");
        // The partner sees what was addressed to it; a third agency sees nothing; the notice
        // without an issuer is its partner's only.
        assert_eq!(
            store.intel_notices_visible(None, Some("CN-MPS")).await.unwrap().len(),
            1
        );
        assert!(
            store
                .intel_notices_visible(None, Some("US-SS"))
                .await
                .unwrap()
                .is_empty(),
            "{b}"
        );
        assert!(
            store
                .intel_notices_visible(Some("CN-MPS"), Some("US-SS"))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store.intel_notices_visible(None, Some("DE-BKA")).await.unwrap().len(),
            1
        );
        assert_eq!(store.intel_partners_of_issuer("FBI").await.unwrap(), ["CN-MPS"]);
        let cn = notices.iter().find(|n| n.partner.as_str() == "CN-MPS").unwrap();
        assert_eq!(store.intel_notice_issuer(cn.id).await.unwrap().as_deref(), Some("FBI"));
    }
}

fn incoming(sender: &str, id: Uuid, tlp: Tlp, items: &[(Uuid, &str, Tlp)], part: u32) -> IncomingNotice {
    IncomingNotice {
        sender: sender.into(),
        id,
        issuer: "FBI".into(),
        partner: "CN-MPS".into(),
        interval: Interval::day_of(DAY0),
        issued_at: DAY0 + 3600,
        tlp,
        // Part 1 says PAP:RED, part 2 PAP:GREEN, part 3 (an older sender) nothing.
        pap: match part {
            1 => Some(Pap::Red),
            2 => Some(Pap::Green),
            _ => None,
        },
        parts: 2,
        received_at: DAY0 + 3700 + i64::from(part),
        items: items
            .iter()
            .map(|(item, value, tlp)| IncomingItem {
                item_id: *item,
                kind: "ipv4".into(),
                value: (*value).into(),
                status: "new".into(),
                classification: "c2-server".into(),
                tlp: *tlp,
                detail: serde_json::json!({"sightings": 1}),
                answer: None,
                note: None,
                answered_at: None,
                answered_by: None,
            })
            .collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incoming_notices_parts_markings_and_answers() {
    for store in liaison_store::testing::all_backends().await {
        let b = format!("{:?}", store.backend());
        let notice = Uuid::from_u128(1);
        let (i1, i2, i3) = (Uuid::from_u128(11), Uuid::from_u128(12), Uuid::from_u128(13));
        let part1 = incoming("us-fbi", notice, Tlp::Red, &[(i1, "198.51.100.1", Tlp::Red)], 1);
        let part2 = incoming(
            "us-fbi",
            notice,
            Tlp::Green,
            &[(i2, "198.51.100.2", Tlp::Green), (i3, "198.51.100.3", Tlp::Clear)],
            2,
        );
        let out = store
            .fed_receive(&[
                received("r1", "us-fbi", 1, Effect::CleanupNotice(Box::new(part1))),
                received("r2", "us-fbi", 2, Effect::CleanupNotice(Box::new(part2.clone()))),
            ])
            .await
            .unwrap();
        assert_eq!(out, ["applied", "applied"], "{b}");
        let inbox = store.intel_inbox(Some("CN-MPS")).await.unwrap();
        assert_eq!(inbox.len(), 1, "{b}");
        let n = &inbox[0];
        assert_eq!(n.tlp, Tlp::Red, "a later part never lowers the marking ({b})");
        assert_eq!(n.pap, Some(Pap::Red), "nor the PAP ({b})");
        assert_eq!((n.issuer.as_str(), n.sender.as_str()), ("FBI", "us-fbi"));
        assert_eq!(n.items.len(), 3);
        assert_eq!(n.items[0].tlp, Tlp::Red);
        assert!(store.intel_inbox(Some("CN-CNCERT")).await.unwrap().is_empty(), "{b}");

        // An answer: recorded on the item, and its message queued for the issuing node.
        let refs = store.intel_inbox_item(i2).await.unwrap();
        assert_eq!(refs.len(), 1);
        assert_eq!((refs[0].notice_id, refs[0].partner.as_str()), (notice, "CN-MPS"));
        let mut msg = outbox("a1", "us-fbi");
        msg.payload_type = "cleanup_status".into();
        store
            .intel_inbox_answer(
                &refs[0],
                FeedbackStatus::NotFound,
                Some("gone"),
                "officer",
                DAY0 + 7200,
                msg,
            )
            .await
            .unwrap();
        let pending = store.fed_outbox_pending("us-fbi", 10).await.unwrap();
        assert_eq!(pending.len(), 1, "{b}");
        assert_eq!(pending[0].payload_type, "cleanup_status");
        // The same notice received again keeps the answer.
        store
            .fed_receive(&[received("r3", "us-fbi", 3, Effect::CleanupNotice(Box::new(part2)))])
            .await
            .unwrap();
        let item = store.intel_inbox(Some("CN-MPS")).await.unwrap()[0]
            .items
            .iter()
            .find(|i| i.item_id == i2)
            .unwrap()
            .clone();
        assert_eq!(item.answer, Some(FeedbackStatus::NotFound), "{b}");
        assert_eq!(
            (item.note.as_deref(), item.answered_by.as_deref()),
            (Some("gone"), Some("officer"))
        );
        assert_eq!(item.answered_at, Some(DAY0 + 7200));
        // A part from an older sender states no PAP: what is known stays.
        let old_part = incoming("us-fbi", notice, Tlp::Green, &[(i3, "198.51.100.3", Tlp::Clear)], 3);
        store
            .fed_receive(&[received("r6", "us-fbi", 4, Effect::CleanupNotice(Box::new(old_part)))])
            .await
            .unwrap();
        assert_eq!(
            store.intel_inbox(Some("CN-MPS")).await.unwrap()[0].pap,
            Some(Pap::Red),
            "{b}"
        );

        // A part that would move the notice to another agency is not applied.
        let mut moved = incoming(
            "us-fbi",
            notice,
            Tlp::Green,
            &[(Uuid::from_u128(14), "198.51.100.4", Tlp::Green)],
            2,
        );
        moved.partner = "CN-CNCERT".into();
        let out = store
            .fed_receive(&[received("r5", "us-fbi", 5, Effect::CleanupNotice(Box::new(moved)))])
            .await
            .unwrap();
        assert!(out[0].starts_with("not applied"), "{b}: {out:?}");
        assert!(store.intel_inbox(Some("CN-CNCERT")).await.unwrap().is_empty(), "{b}");
        assert_eq!(
            store.intel_inbox(Some("CN-MPS")).await.unwrap()[0].items.len(),
            3,
            "{b}"
        );

        // The same item id from another node is another item.
        let other = incoming(
            "de-bka",
            Uuid::from_u128(2),
            Tlp::Green,
            &[(i2, "198.51.100.2", Tlp::Green)],
            1,
        );
        store
            .fed_receive(&[received("r4", "de-bka", 1, Effect::CleanupNotice(Box::new(other)))])
            .await
            .unwrap();
        assert_eq!(store.intel_inbox_item(i2).await.unwrap().len(), 2, "{b}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_from_peers_are_recorded_and_applied_once() {
    for store in liaison_store::testing::all_backends().await {
        let b = format!("{:?}", store.backend());
        let notices = issue(&store).await;
        let cn = notices.iter().find(|n| n.partner.as_str() == "CN-MPS").unwrap();
        let item = cn.items[0].item_id;
        let answer = RemoteAnswer {
            message_id: "s1".into(),
            sender: "cn-mps".into(),
            item_id: item,
            partner: PartnerId::new("CN-MPS"),
            status: FeedbackStatus::Remediated,
            note: Some("cleaned".into()),
            actor: "cn-mps:officer".into(),
            at: DAY0 + 7200,
        };
        let out = store
            .fed_receive(&[received(
                "s1",
                "cn-mps",
                1,
                Effect::CleanupStatus(Box::new(answer.clone())),
            )])
            .await
            .unwrap();
        assert_eq!(out, ["applied"], "{b}");
        assert_eq!(
            store.intel_remote_pending(10).await.unwrap(),
            std::slice::from_ref(&answer),
            "{b}"
        );

        // Claimed and applied in one clean-up transaction; a second claim finds it taken.
        let mut tx = store.intel_begin().await.unwrap();
        let mut state = tx.load().await.unwrap();
        assert!(tx.claim_remote_answer("s1").await.unwrap());
        assert!(!tx.claim_remote_answer("s1").await.unwrap());
        state
            .apply_feedback(&answer.partner, item, answer.status, answer.at, answer.note.clone())
            .unwrap();
        let rec = state.feedback[0].clone();
        tx.save_indicators(&state, &[rec.indicator]).await.unwrap();
        tx.save_feedback(0, std::slice::from_ref(&rec)).await.unwrap();
        tx.mark_remote_answer("s1", "applied", DAY0 + 7300).await.unwrap();
        tx.commit().await.unwrap();
        assert!(store.intel_remote_pending(10).await.unwrap().is_empty(), "{b}");
        let all = store.intel_remote_answers().await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].1.as_deref(), Some("applied"));
        let loaded = store.intel_load().await.unwrap();
        assert_eq!(loaded.feedback.len(), 1, "{b}");
        assert_eq!(
            loaded.indicators[rec.indicator as usize].remediated_at,
            Some(DAY0 + 7200)
        );

        // The same message again (a forged duplicate id) is recorded as not applied; the link
        // goes on and nothing else changes.
        let dup = store
            .fed_receive(&[received("s2", "cn-mps", 2, Effect::CleanupStatus(Box::new(answer)))])
            .await
            .unwrap();
        assert!(dup[0].starts_with("not applied"), "{b}: {dup:?}");
        assert_eq!(store.intel_remote_answers().await.unwrap().len(), 1, "{b}");
    }
}
