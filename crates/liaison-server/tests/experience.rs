#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Assessments use the node's own observed channel durations once enough requests were answered.

mod common;

use jiff::{SignedDuration, Timestamp};
use liaison_core::Role;
use liaison_core::lifecycle::{State, TransitionInput};
use liaison_core::request::RequestKind;
use liaison_law::DurationSource;
use liaison_store::testing;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observed_durations_replace_pack_defaults() {
    let f = common::fixture(testing::sqlite().await.unwrap()).await;
    let now = Timestamp::now();
    let to = |s| TransitionInput {
        to: Some(s),
        ..Default::default()
    };
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

    for i in 0..6i64 {
        let t0 = now - SignedDuration::from_hours(24 * (400 - i));
        let r = f
            .node
            .create_request(f.who("FBI", Role::Officer), draft.clone(), t0)
            .await
            .unwrap();
        let mut v = r.request.version;
        let answered = t0 + SignedDuration::from_hours(24 * (90 + 4 * i));
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
