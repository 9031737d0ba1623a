#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Assessments use the node's own observed channel durations once enough requests were answered.

use jiff::{SignedDuration, Timestamp};
use liaison_core::Role;
use liaison_core::lifecycle::{State, TransitionInput};
use liaison_core::request::RequestKind;
use liaison_law::DurationSource;
use liaison_service::experience::Experience;
use liaison_service::fixtures::{self, TwoAgencies};
use std::sync::Arc;
use std::time::Duration;

/// Six requests from FBI to CN-MPS submitted 400–395 days before `now` and answered after
/// `first_days`, `first_days + 4`, … `first_days + 20` days.
async fn answer_six(f: &TwoAgencies, draft: &liaison_core::request::RequestDraft, now: Timestamp, first_days: i64) {
    let to = |s| TransitionInput {
        to: Some(s),
        ..Default::default()
    };
    for i in 0..6i64 {
        let t0 = now - SignedDuration::from_hours(24 * (400 - i));
        let r = f
            .node
            .create_request(f.who("FBI", Role::Officer), draft.clone(), t0)
            .await
            .unwrap();
        let mut v = r.request.version;
        let answered = t0 + SignedDuration::from_hours(24 * (first_days + 4 * i));
        for (who, state, at) in [
            (("FBI", Role::Officer), State::Submitted, t0),
            (
                ("CN-MPS", Role::Desk),
                State::Acknowledged,
                t0 + SignedDuration::from_hours(24),
            ),
            (
                ("CN-MPS", Role::LegalReviewer),
                State::InReview,
                t0 + SignedDuration::from_hours(48),
            ),
            (
                ("CN-MPS", Role::LegalReviewer),
                State::Accepted,
                t0 + SignedDuration::from_hours(72),
            ),
            (
                ("CN-MPS", Role::Officer),
                State::Executing,
                t0 + SignedDuration::from_hours(96),
            ),
            (("CN-MPS", Role::Officer), State::Answered, answered),
        ] {
            v = f
                .node
                .transition(f.who(who.0, who.1), r.request.id, v, to(state), at)
                .await
                .unwrap()
                .request
                .version;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observed_durations_replace_pack_defaults() {
    let f = TwoAgencies::on(fixtures::sqlite_node().await.unwrap()).await.unwrap();
    let now = Timestamp::now();
    let draft = f.draft(RequestKind::StoredContent);
    // Before any experience: pack default.
    let before = f
        .node
        .assess(f.who("FBI", Role::Officer), Some(draft.clone()), None, None, now)
        .await
        .unwrap();
    let sent = before
        .plan
        .iter()
        .find(|s| s.action == liaison_law::StepAction::Send)
        .and_then(|s| s.channel.clone())
        .expect("a send step");
    let ch = before.channels.iter().find(|c| c.id == sent).unwrap();
    assert_eq!(ch.duration_source, DurationSource::PackDefault);

    answer_six(&f, &draft, now, 90).await;
    f.node.experience.invalidate();
    let after = f
        .node
        .assess(f.who("FBI", Role::Officer), Some(draft), None, None, now)
        .await
        .unwrap();
    let ch = after.channels.iter().find(|c| c.id == sent).unwrap();
    assert_eq!(ch.duration_source, DurationSource::Observed { samples: 6 });
    // Medians of 90, 94, …, 110 days: nearest-rank median is 98.
    assert_eq!(ch.expected_days, 98.0);
}

/// Medians found stale are answered at once from the cache while one background task
/// recomputes them; the next call sees the new medians.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_medians_answer_at_once_and_are_recomputed_behind() {
    let f = TwoAgencies::on(fixtures::sqlite_node().await.unwrap()).await.unwrap();
    let now = Timestamp::now();
    let draft = f.draft(RequestKind::StoredContent);
    let cn = liaison_core::CountryCode::parse("CN").unwrap();
    let exp = Arc::new(Experience::with_ttl(Duration::ZERO)); // always stale once computed
    answer_six(&f, &draft, now, 90).await;
    let first = exp.for_node(&f.node, cn, now).await; // nothing cached: computed here
    let (channel, d) = first.iter().next().expect("a channel with observed durations");
    assert_eq!((d.samples, d.median_days), (6, 98.0));
    let channel = channel.clone();

    answer_six(&f, &draft, now, 300).await;
    let stale = exp.for_node(&f.node, cn, now).await;
    assert_eq!(
        stale[&channel].samples, 6,
        "the cached medians, while they are recomputed"
    );
    let t0 = std::time::Instant::now();
    loop {
        let fresh = exp.for_node(&f.node, cn, now).await;
        if fresh[&channel].samples == 12 {
            // Nearest-rank median of 90..110 and 300..320 (step 4): the sixth value, 110.
            assert_eq!(fresh[&channel].median_days, 110.0);
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "never recomputed: {fresh:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
