//! Clean-up state persistence on every backend: dedup on upsert, reload, notices, feedback,
//! reappearance.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use liaison_core::{CountryCode, Tlp};
use liaison_intel::model::{Classification, Event, IndicatorValue, PartnerId};
use liaison_intel::{CleanupState, FeedbackStatus, Interval};
use liaison_store::Store;
use std::net::Ipv4Addr;
use std::sync::Arc;

const DAY0: i64 = 1_790_208_000; // 2026-09-24T00:00:00Z

fn event(i: u32, at: i64) -> Event {
    let mut ev = Event::new(
        IndicatorValue::Ipv4(Ipv4Addr::new(11, 0, (i >> 8) as u8, i as u8)),
        Arc::from("test feed"),
        at,
    );
    ev.time_source = Some(at);
    ev.classification = Classification::C2Server;
    ev.malware = Some(Arc::from("Emotet"));
    ev.port = Some(443);
    ev.tlp = Tlp::Green;
    ev.confidence = 90;
    ev.victim_count = Some(10 + i);
    ev.victim_country = Some(CountryCode::parse("CN").unwrap());
    ev.source_country = Some(CountryCode::parse(if i.is_multiple_of(2) { "US" } else { "DE" }).unwrap());
    ev.source_asn = Some(64_500 + i % 3);
    ev.as_org = Some(Arc::from("Example Net"));
    ev.partner = Some(PartnerId::new(if i.is_multiple_of(2) { "FBI" } else { "DE-BKA" }));
    ev
}

fn all(state: &CleanupState) -> Vec<u32> {
    (0..state.len() as u32).collect()
}

async fn save_all(store: &Store, state: &CleanupState) {
    let mut tx = store.intel_begin().await.unwrap();
    tx.save_indicators(state, &all(state)).await.unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upsert_dedups_and_reloads() {
    for store in liaison_store::testing::all_backends().await {
        let mut state = CleanupState::new();
        for i in 0..2500 {
            state.observe(&event(i, DAY0 + 60));
        }
        let first: Vec<u32> = (0..1200).collect();
        state.mark_ingested_by(&first, "FBI");
        // 2,500 rows: two full statements of 1,000 plus a partial one.
        save_all(&store, &state).await;
        assert_eq!(store.intel_counts().await.unwrap().indicators, 2500);

        // Same indicators again, later: upserts, no new rows.
        for i in 0..2500 {
            state.observe(&event(i, DAY0 + 3600));
        }
        let second: Vec<u32> = (1000..2500).collect();
        state.mark_ingested_by(&second, "US-SS");
        save_all(&store, &state).await;
        let c = store.intel_counts().await.unwrap();
        assert_eq!(c.indicators, 2500, "{:?}", store.backend());

        let loaded = store.intel_load().await.unwrap();
        assert_eq!(loaded.len(), 2500);
        assert_eq!(loaded.indicators, state.indicators, "{:?}", store.backend());
        let (ix, ind) = loaded.get(&event(7, 0).value).unwrap();
        assert_eq!(ix, 7);
        assert_eq!(ind.sightings, 2);
        assert_eq!(ind.victim_countries.get(CountryCode::parse("CN").unwrap()), Some(17));
        // Who ingested each indicator (migration 20) is stored and read back.
        let by = |i: usize| loaded.indicators[i].ingested_by.as_deref();
        assert_eq!(
            (by(0), by(1100), by(2000)),
            (Some("FBI"), Some("FBI,US-SS"), Some("US-SS"))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_feedback_and_reappearance_persist() {
    for store in liaison_store::testing::all_backends().await {
        let mut state = CleanupState::new();
        for i in 0..10 {
            state.observe(&event(i, DAY0 + 60));
        }
        save_all(&store, &state).await;

        // Issue notices for the day, in one transaction that loads the state.
        let mut tx = store.intel_begin().await.unwrap();
        let mut s = tx.load().await.unwrap();
        let notices = s.issue_notices(Interval::day_of(DAY0), DAY0 + 7200);
        assert_eq!(notices.len(), 2);
        tx.save_indicators(&s, &all(&s)).await.unwrap();
        tx.save_notices(&notices, DAY0 + 7200).await.unwrap();
        tx.commit().await.unwrap();

        let stored = store.intel_notices(Some("FBI")).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].notice.items.len(), 5);
        assert_eq!(stored[0].issued_at, DAY0 + 7200);
        assert_eq!(
            stored[0].notice.id,
            notices.iter().find(|n| n.partner.as_str() == "FBI").unwrap().id
        );
        assert_eq!(store.intel_notices(None).await.unwrap().len(), 2);

        // Feedback: one remediated, one false positive.
        let fbi = PartnerId::new("FBI");
        let items = &stored[0].notice.items;
        let owner = store.intel_item_owner(items[0].item_id).await.unwrap();
        assert_eq!(owner.partner, fbi);
        let mut tx = store.intel_begin().await.unwrap();
        let mut s = tx.load().await.unwrap();
        assert_eq!(s.issued_items.len(), 10);
        s.apply_feedback(&fbi, items[0].item_id, FeedbackStatus::Remediated, DAY0 + 10_000, None)
            .unwrap();
        s.apply_feedback(
            &fbi,
            items[1].item_id,
            FeedbackStatus::FalsePositive,
            DAY0 + 10_000,
            Some("sinkhole".into()),
        )
        .unwrap();
        tx.save_indicators(&s, &[items[0].indicator, items[1].indicator])
            .await
            .unwrap();
        tx.save_feedback(0, &s.feedback).await.unwrap();
        tx.commit().await.unwrap();

        // The remediated host is seen again: a reappearance.
        let mut s = store.intel_load().await.unwrap();
        assert_eq!(s.feedback.len(), 2);
        assert_eq!(s.feedback[1].note.as_deref(), Some("sinkhole"));
        let host = items[0].indicator;
        let ev = event(host, DAY0 + 20_000);
        assert_eq!(s.get(&ev.value).unwrap().0, host);
        assert_eq!(s.observe(&ev), liaison_intel::aggregate::Observed::Reappeared);
        let mut tx = store.intel_begin().await.unwrap();
        tx.save_indicators(&s, &[host]).await.unwrap();
        tx.commit().await.unwrap();

        let r = store.intel_load().await.unwrap();
        assert_eq!(r.indicators, s.indicators, "{:?}", store.backend());
        let ind = &r.indicators[host as usize];
        assert_eq!(ind.remediated_at, Some(DAY0 + 10_000));
        assert_eq!(ind.reappeared_at, Some(DAY0 + 20_000));
        assert_eq!(ind.reappearances, 1);
        assert!(r.indicators[items[1].indicator as usize].suppressed);
        assert_eq!(r.remediation_by_partner(), s.remediation_by_partner());
        let c = store.intel_counts().await.unwrap();
        assert_eq!((c.notices, c.notice_items, c.feedback), (2, 10, 2));
    }
}

/// `n` distinct indicators, `11.x.y.z` by index.
fn big_state(n: u32, at: i64) -> CleanupState {
    let mut state = CleanupState::new();
    for i in 0..n {
        let mut ev = event(i, at);
        ev.value = IndicatorValue::Ipv4(Ipv4Addr::from(0x0b00_0000 + i));
        state.observe(&ev);
    }
    state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_load_then_incremental_upserts_keep_dedup() {
    for store in liaison_store::testing::all_backends().await {
        // Large enough for SQLite's bulk load (index dropped and rebuilt).
        let n = liaison_store::IntelTx::BULK_MIN_ROWS as u32 + 500;
        let mut state = big_state(n, DAY0 + 60);
        save_all(&store, &state).await;
        assert_eq!(store.intel_counts().await.unwrap().indicators, u64::from(n));

        // Re-sightings of some, plus new ones below the bulk threshold: upserts.
        for i in (0..n).step_by(7) {
            let mut ev = event(i, DAY0 + 7200);
            ev.value = IndicatorValue::Ipv4(Ipv4Addr::from(0x0b00_0000 + i));
            state.observe(&ev);
        }
        for i in n..n + 300 {
            let mut ev = event(i, DAY0 + 7200);
            ev.value = IndicatorValue::Ipv4(Ipv4Addr::from(0x0b00_0000 + i));
            state.observe(&ev);
        }
        let mut dirty: Vec<u32> = (0..n).step_by(7).collect();
        dirty.extend(n..n + 300);
        // Repeated and unordered indices are written once.
        dirty.reverse();
        dirty.push(0);
        let mut tx = store.intel_begin().await.unwrap();
        assert_eq!(
            tx.save_indicators(&state, &dirty).await.unwrap(),
            dirty.len() as u64 - 1
        );
        tx.commit().await.unwrap();

        let loaded = store.intel_load().await.unwrap();
        assert_eq!(loaded.len() as u32, n + 300, "{:?}", store.backend());
        assert_eq!(loaded.indicators, state.indicators, "{:?}", store.backend());
        assert_eq!(loaded.indicators[7].sightings, 2);
        assert_eq!(loaded.indicators[8].sightings, 1);
        assert_eq!(loaded.indicators[7].last_seen, DAY0 + 7200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_load_that_meets_stored_duplicates_falls_back_to_upserts() {
    for store in liaison_store::testing::all_backends().await {
        // 10 indicators stored from one state ...
        let small = big_state(10, DAY0 + 60);
        save_all(&store, &small).await;
        // ... then a different, larger state whose indices 10.. repeat indicator 3 of the
        // stored ones (a caller that did not load the state first). Dedup by (kind, value)
        // must still hold: the duplicate updates row 3, nothing else is lost.
        let n = liaison_store::IntelTx::BULK_MIN_ROWS as u32 + 100;
        let mut state = big_state(10, DAY0 + 60);
        let mut ev = event(0, DAY0 + 600);
        ev.value = IndicatorValue::Ipv4(Ipv4Addr::new(200, 0, 0, 1));
        state.observe(&ev);
        for i in 11..n {
            let mut ev = event(i, DAY0 + 600);
            ev.value = IndicatorValue::Ipv4(Ipv4Addr::from(0x0c00_0000 + i));
            state.observe(&ev);
        }
        // Put the stored indicator 3 among the new indices.
        state.indicators.swap(3, 10);
        let new: Vec<u32> = (10..n).collect();
        let mut tx = store.intel_begin().await.unwrap();
        tx.save_indicators(&state, &new).await.unwrap();
        tx.commit().await.unwrap();
        let c = store.intel_counts().await.unwrap();
        // Index 10 (the repeated indicator 3) updated row 3 instead of adding a row.
        assert_eq!(c.indicators, u64::from(n) - 1, "{:?}", store.backend());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_transaction_stores_nothing_and_the_store_stays_writable() {
    let path = liaison_store::testing::sqlite_path().unwrap();
    let store = Store::open_sqlite(&path).await.unwrap();
    let state = big_state(liaison_store::IntelTx::BULK_MIN_ROWS as u32, DAY0 + 60);
    {
        let mut tx = store.intel_begin().await.unwrap();
        tx.save_indicators(&state, &all(&state)).await.unwrap();
        // Dropped without commit.
    }
    assert_eq!(store.intel_counts().await.unwrap().indicators, 0);
    save_all(&store, &state).await;
    store.close().await;
    // Reopening applies no migration twice and finds everything.
    let store = Store::open_sqlite(&path).await.unwrap();
    assert_eq!(store.intel_load().await.unwrap().indicators, state.indicators);
    store.close().await;
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// The rows of the indicator table as (id, kind, value, sightings, last_seen), in id order.
async fn rows(store: &Store) -> Vec<(u32, String, u64, i64)> {
    let st = store.intel_load().await.unwrap();
    st.indicators
        .iter()
        .enumerate()
        .map(|(i, ind)| (i as u32, ind.value.to_string(), ind.sightings, ind.last_seen))
        .collect()
}

/// An ingest persisted in short journalled transactions is all-or-nothing: one that died
/// after some chunks (its journal row still there) is rolled back exactly to the state
/// before it — changed rows written back, added rows removed — and a finished one leaves
/// no journal behind. The intel lease is exclusive across processes on both backends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journalled_ingest_that_dies_is_rolled_back_exactly() {
    for store in liaison_store::testing::all_backends().await {
        let mut state = CleanupState::new();
        for i in 0..300 {
            state.observe(&event(i, DAY0 + 60));
        }
        save_all(&store, &state).await;
        let before = rows(&store).await;
        let base = state.len() as u32;
        // The next run re-sights 0..300 and adds 300..700, and dies after two chunks.
        for i in 0..700 {
            state.observe(&event(i, DAY0 + 7200));
        }
        let dirty: Vec<u32> = (0..700).collect();
        let run = uuid::Uuid::now_v7();
        store.intel_run_begin(run, base, DAY0).await.unwrap();
        store.intel_save_chunk(&state, &dirty[..250], base).await.unwrap();
        store.intel_save_chunk(&state, &dirty[250..500], base).await.unwrap();
        assert_ne!(rows(&store).await, before, "the chunks were written");
        let r = store.intel_recover().await.unwrap();
        assert!(r.rolled_back, "{r:?}");
        assert_eq!((r.restored, r.removed), (300, 200), "{r:?}");
        assert_eq!(rows(&store).await, before, "exactly the state before the dead run");
        // Recovery again: nothing to do.
        assert!(!store.intel_recover().await.unwrap().rolled_back);

        // The same run to its commit point: all of it stays, the journal is empty.
        let run = uuid::Uuid::now_v7();
        store.intel_run_begin(run, base, DAY0).await.unwrap();
        for chunk in dirty.chunks(180) {
            store.intel_save_chunk(&state, chunk, base).await.unwrap();
        }
        store.intel_run_end(run).await.unwrap();
        let after = rows(&store).await;
        assert_eq!(after.len(), 700);
        assert!(!store.intel_recover().await.unwrap().rolled_back);
        assert_eq!(rows(&store).await, after);

        // One holder of the lease at a time (SQLite: a lock file next to the database).
        let held = store.intel_try_lease().await.unwrap().expect("free");
        assert!(store.intel_try_lease().await.unwrap().is_none(), "a second holder");
        held.release().await;
        assert!(store.intel_try_lease().await.unwrap().is_some(), "released");
    }
}

/// `intel_page` (the TAXII collections' reads, migration 21) on every backend: rows in
/// `(changed_at, id)` order, by agency among `ingested_by`, level and feed, never suppressed
/// ones, resumed after a key or at it; a rewritten row moves to the end with a later
/// `changed_at`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyset_pages_by_change_time() {
    use liaison_store::IndicatorPage;
    for store in liaison_store::testing::all_backends().await {
        let mut state = CleanupState::new();
        for i in 0..300 {
            let mut ev = event(i, DAY0 + 60);
            ev.tlp = if i % 3 == 0 { Tlp::Amber } else { Tlp::Green };
            state.observe(&ev);
        }
        let fbi: Vec<u32> = (0..200).collect();
        state.mark_ingested_by(&fbi, "FBI");
        let usss: Vec<u32> = (150..300).collect();
        state.mark_ingested_by(&usss, "US-SS");
        save_all(&store, &state).await;
        let q = |after: Option<(i64, i64)>, inclusive: bool, limit: u32| IndicatorPage {
            agency: "FBI".into(),
            or_unattributed: false,
            tlp: vec![Tlp::Clear, Tlp::Green],
            feeds: vec![],
            after,
            inclusive,
            added_after: None,
            limit,
        };
        // FBI's GREEN rows (ids 0..200 not divisible by 3), in pages of 50.
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store.intel_page(&q(after, false, 50)).await.unwrap();
            if page.is_empty() {
                break;
            }
            assert!(page.iter().all(|r| r.changed_at >= liaison_store::CHANGE_FLOOR_MS));
            after = page.last().map(|r| (r.changed_at, r.id));
            seen.extend(page.iter().map(|r| r.id));
        }
        let want: Vec<i64> = (0..200).filter(|i| i % 3 != 0).collect();
        assert_eq!(seen, want, "{:?}", store.backend());
        // At a key (inclusive) and after it.
        let first = store.intel_page(&q(None, false, 2)).await.unwrap();
        let k = (first[1].changed_at, first[1].id);
        assert_eq!(store.intel_page(&q(Some(k), true, 1)).await.unwrap()[0].id, first[1].id);
        assert_ne!(
            store.intel_page(&q(Some(k), false, 1)).await.unwrap()[0].id,
            first[1].id
        );
        // A feed that is not there; a level list that is empty.
        let mut other = q(None, false, 10);
        other.feeds = vec!["another feed".into()];
        assert!(store.intel_page(&other).await.unwrap().is_empty());
        other.feeds.clear();
        other.tlp.clear();
        assert!(store.intel_page(&other).await.unwrap().is_empty());
        // An agency code with LIKE wildcards matches nothing it should not.
        other.tlp = vec![Tlp::Green];
        other.agency = "F%".into();
        assert!(store.intel_page(&other).await.unwrap().is_empty());

        // Row 1 is written again: it moves to the end; added_after finds it alone.
        let before = store.intel_page(&q(None, false, 1000)).await.unwrap();
        let newest = before.iter().map(|r| r.changed_at).max().unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        state.observe(&event(1, DAY0 + 7200));
        let mut tx = store.intel_begin().await.unwrap();
        tx.save_indicators(&state, &[1]).await.unwrap();
        tx.commit().await.unwrap();
        let after_write = store.intel_page(&q(None, false, 1000)).await.unwrap();
        assert_eq!(after_write.last().unwrap().id, 1, "{:?}", store.backend());
        let mut since = q(None, false, 1000);
        since.added_after = Some(newest);
        let new: Vec<i64> = store.intel_page(&since).await.unwrap().iter().map(|r| r.id).collect();
        assert_eq!(new, vec![1]);
    }
}
