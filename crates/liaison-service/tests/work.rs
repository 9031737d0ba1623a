#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Working the requests (docs/queues.md), on SQLite and PostgreSQL: references, owners and
//! queues, the deadline watcher's expiries and reminders (at the right instant across a DST
//! change, each once), converting a preservation, and the inbox.

use jiff::{SignedDuration, Timestamp};
use liaison_core::lifecycle::{State, TransitionInput};
use liaison_core::record::{Awaiting, RequestFilter, Sort};
use liaison_core::{RequestKind, Role, Urgency};
use liaison_service::ServiceError;
use liaison_service::fixtures::{self, TwoAgencies};
use liaison_service::work::Queue;

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn to(s: State) -> TransitionInput {
    TransitionInput {
        to: Some(s),
        reason: Some("test".into()),
        ..Default::default()
    }
}

async fn step(f: &TwoAgencies, agency: &str, role: Role, id: liaison_core::RequestId, s: State, now: Timestamp) {
    let r = f.node.request(f.who(agency, role), id, now).await.unwrap();
    f.node
        .transition(f.who(agency, role), id, r.request.version, to(s), now)
        .await
        .unwrap_or_else(|e| panic!("{agency} {role} -> {s}: {e}"));
}

/// A queue sorted by due date, walked one request at a time through every cursor (stops the
/// test if a cursor does not advance).
async fn by_due(
    n: &liaison_service::Node,
    p: &liaison_core::record::Principal,
    q: Queue,
    now: Timestamp,
) -> Vec<liaison_core::RequestId> {
    let mut seen = Vec::new();
    let mut filter = RequestFilter {
        sort: Sort::Due,
        limit: 1,
        ..Default::default()
    };
    loop {
        let page = n.queue(p, q, filter.clone(), now).await.unwrap();
        seen.extend(page.items.iter().map(|s| s.id));
        assert!(seen.len() <= 100, "the cursor does not advance: {seen:?}");
        match page.next {
            Some(c) => filter.after_due = Some(liaison_core::record::parse_due_cursor(&c).unwrap()),
            None => break,
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_owners_and_queues() {
    for node in fixtures::nodes_on_every_backend().await.unwrap() {
        let f = TwoAgencies::on(node).await.unwrap();
        let n = &f.node;
        let now = Timestamp::now();
        let year = now
            .to_zoned(jiff::tz::TimeZone::get("America/New_York").unwrap())
            .year();
        let officer = f.who("FBI", Role::Officer);
        // References: the agency's code, the year in its zone, a number; unique, in order.
        let mut ids = Vec::new();
        for (i, urgency) in [Urgency::Routine, Urgency::Emergency, Urgency::Urgent]
            .into_iter()
            .enumerate()
        {
            let mut d = f.draft(RequestKind::SubscriberInformation);
            d.urgency = urgency;
            let r = n.create_request(officer, d, now).await.unwrap();
            assert_eq!(r.reference, format!("FBI-{year}-{:04}", i + 1));
            ids.push((r.request.id, r.reference.clone()));
        }
        // Accepted wherever an id is, in any case; the answer carries it too.
        let (id0, ref0) = ids[0].clone();
        assert_eq!(n.resolve(officer, &ref0.to_lowercase(), now).await.unwrap(), id0);
        assert_eq!(n.request(officer, id0, now).await.unwrap().reference, ref0);
        // A draft is invisible to the partner: "not found", naming what was asked, never the id.
        let mps_officer = f.who("CN-MPS", Role::Officer);
        match n.resolve(mps_officer, &ref0, now).await {
            Err(ServiceError::NotFound(m)) => assert!(m.contains(&ref0) && !m.contains(&id0.to_string()), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            n.resolve(officer, "not a reference", now).await,
            Err(ServiceError::Invalid(_))
        ));
        // The author owns the draft: "mine".
        let mine = n
            .queue(officer, Queue::Mine, RequestFilter::default(), now)
            .await
            .unwrap();
        assert_eq!(mine.items.len(), 3);
        let w = n.work_state(officer, id0, now).await.unwrap();
        assert_eq!(w.assignment.owner.as_deref(), Some("fbi.officer"));
        assert_eq!(w.awaiting, Some(Awaiting::Us));
        // Sent: it now waits on the partner, and the partner's desk sees it unassigned.
        for (id, _) in &ids {
            step(&f, "FBI", Role::Officer, *id, State::Submitted, now).await;
        }
        let wp = |p, q| {
            let n = n.clone();
            async move {
                n.queue(p, q, RequestFilter::default(), now)
                    .await
                    .unwrap()
                    .items
                    .iter()
                    .map(|s| s.reference.clone())
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(wp(officer, Queue::WaitingOnPartner).await.len(), 3);
        assert!(wp(officer, Queue::WaitingOnUs).await.is_empty());
        let desk = f.who("CN-MPS", Role::Desk);
        assert_eq!(wp(desk, Queue::Unassigned).await.len(), 3);
        assert_eq!(wp(desk, Queue::WaitingOnUs).await.len(), 3);
        // The partner sees the same reference (same node: the same row).
        assert_eq!(n.request(desk, id0, now).await.unwrap().reference, ref0);
        // The desk assigns one to the officer: it leaves "unassigned" and enters the officer's "mine".
        n.assign(desk, id0, Some("cn-mps.officer"), None, Some("yours"), now)
            .await
            .unwrap();
        assert_eq!(wp(desk, Queue::Unassigned).await.len(), 2);
        assert_eq!(wp(mps_officer, Queue::Mine).await, vec![ref0.clone()]);
        // Owners are per agency: the FBI's owner is unchanged.
        assert_eq!(
            n.work_state(officer, id0, now)
                .await
                .unwrap()
                .assignment
                .owner
                .as_deref(),
            Some("fbi.officer")
        );
        // A legal reviewer may not take what the officer owns; the owner hands it over.
        let legal = f.who("CN-MPS", Role::LegalReviewer);
        assert!(matches!(
            n.assign(legal, id0, Some("cn-mps.legal_reviewer"), None, None, now)
                .await,
            Err(ServiceError::Forbidden(_))
        ));
        let w = n
            .assign(
                mps_officer,
                id0,
                Some("cn-mps.legal_reviewer"),
                None,
                Some("for review"),
                now,
            )
            .await
            .unwrap();
        assert_eq!(w.assignment.owner.as_deref(), Some("cn-mps.legal_reviewer"));
        // The owner must be of the agency, active, and work requests.
        let sup = f.who("CN-MPS", Role::Supervisor);
        for bad in ["fbi.officer", "cn-mps.analyst", "nobody"] {
            assert!(
                matches!(
                    n.assign(sup, id0, Some(bad), None, None, now).await,
                    Err(ServiceError::Invalid(_))
                ),
                "{bad}"
            );
        }
        // Units: a unit's queue holds what is assigned to it.
        n.create_unit(sup, "desk-a", "Desk, shift A", now).await.unwrap();
        n.unit_member(sup, "desk-a", "cn-mps.desk", true, now).await.unwrap();
        assert!(matches!(
            n.create_unit(desk, "x", "X", now).await,
            Err(ServiceError::Forbidden(_))
        ));
        n.assign(sup, ids[1].0, None, Some("desk-a"), None, now).await.unwrap();
        assert_eq!(wp(desk, Queue::MyUnits).await, vec![ids[1].1.clone()]);
        // Watching.
        n.watch(f.who("CN-MPS", Role::Analyst), ids[2].0, true, now)
            .await
            .unwrap();
        assert_eq!(
            wp(f.who("CN-MPS", Role::Analyst), Queue::Watching).await,
            vec![ids[2].1.clone()]
        );
        // Sorted by due date: the emergency first, then urgent, then routine; one at a time.
        assert_eq!(
            by_due(n, desk, Queue::WaitingOnUs, now).await,
            vec![ids[1].0, ids[2].0, ids[0].0]
        );
        // Counterpart and owner filters.
        let by = |counterpart, owner| RequestFilter {
            counterpart,
            owner,
            ..Default::default()
        };
        assert_eq!(
            n.queue(officer, Queue::All, by(Some(f.mps.id), None), now)
                .await
                .unwrap()
                .items
                .len(),
            3
        );
        assert_eq!(
            n.queue(desk, Queue::All, by(None, Some(legal.user)), now)
                .await
                .unwrap()
                .items
                .len(),
            1
        );
        // Counts agree with the lists.
        let c = n.queue_counts(desk, now).await.unwrap();
        // (A request given to a unit without an owner is still unassigned: nobody owns it.)
        assert_eq!(
            (c.waiting_on_us, c.unassigned_incoming, c.my_units, c.mine),
            (3, 2, 1, 0)
        );
        // The home page of the desk: incoming (unassigned) first.
        let h = n.home(desk, None, now).await.unwrap();
        assert_eq!(h.sections[0].name, "incoming");
        assert_eq!(h.sections[0].items.len(), 2);
        // CSV: a header and one line per request, with the reference and the deadline.
        let page = n
            .queue(desk, Queue::WaitingOnUs, RequestFilter::default(), now)
            .await
            .unwrap();
        let csv = n.summaries_csv(&page.items, now).await.unwrap();
        assert_eq!(csv.lines().count(), 4);
        assert!(csv.starts_with("reference,id,kind"));
        assert!(csv.contains(&ref0) && csv.contains(",acknowledge,"));
    }
}

/// An owner's and a unit's queues walk `request_work`, which keeps a copy of each request's
/// due key (schema migration 23): after submission, an acknowledgement by the partner (the
/// answer deadline replaces the acknowledgement's) and an assignment, the owner's and the
/// unit's queues by due date list exactly what the agency's queue by due date lists (which
/// reads the request's own deadline), page by page, and the counts agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owners_queue_by_due_date_follows_every_deadline_change() {
    for node in fixtures::nodes_on_every_backend().await.unwrap() {
        let f = TwoAgencies::on(node).await.unwrap();
        let n = &f.node;
        let now = Timestamp::now();
        let officer = f.who("FBI", Role::Officer);
        let mut ids = Vec::new();
        for urgency in [Urgency::Routine, Urgency::Emergency, Urgency::Urgent, Urgency::Routine] {
            let mut d = f.draft(RequestKind::SubscriberInformation);
            d.urgency = urgency;
            ids.push(n.create_request(officer, d, now).await.unwrap().request.id);
        }
        // Drafts: no deadline runs; the order is the ids'.
        assert_eq!(
            by_due(n, officer, Queue::Mine, now).await,
            by_due(n, officer, Queue::All, now).await
        );
        for id in &ids {
            step(&f, "FBI", Role::Officer, *id, State::Submitted, now).await;
        }
        let mine = by_due(n, officer, Queue::Mine, now).await;
        assert_eq!(mine, by_due(n, officer, Queue::All, now).await);
        assert_eq!(mine, vec![ids[1], ids[2], ids[0], ids[3]], "by acknowledgement due");
        // The partner acknowledges the first routine request: its answer deadline (weeks away)
        // replaces the acknowledgement's (days away), and it moves to the end of the queue.
        step(&f, "CN-MPS", Role::Desk, ids[0], State::Acknowledged, now).await;
        let mine = by_due(n, officer, Queue::Mine, now).await;
        assert_eq!(mine, by_due(n, officer, Queue::All, now).await);
        assert_eq!(mine, vec![ids[1], ids[2], ids[3], ids[0]]);
        // A unit's queue: two of them given to a unit the officer belongs to.
        let sup = f.who("FBI", Role::Supervisor);
        n.create_unit(sup, "cyber-1", "Cyber 1", now).await.unwrap();
        n.unit_member(sup, "cyber-1", "fbi.officer", true, now).await.unwrap();
        for id in [ids[0], ids[3]] {
            n.assign(sup, id, Some("fbi.officer"), Some("cyber-1"), None, now)
                .await
                .unwrap();
        }
        let all = by_due(n, officer, Queue::All, now).await;
        let units = by_due(n, officer, Queue::MyUnits, now).await;
        let expected: Vec<_> = all.iter().copied().filter(|i| *i == ids[0] || *i == ids[3]).collect();
        assert_eq!(units, expected);
        assert_eq!(by_due(n, officer, Queue::Mine, now).await, all);
        let c = n.queue_counts(officer, now).await.unwrap();
        assert_eq!((c.cap, c.mine, c.my_units, c.waiting_on_partner), (1_000, 4, 2, 4));
        assert_eq!((c.shown(4), c.shown(1_000)), ("4".to_string(), "1000+".to_string()));
        let h = n.home(officer, None, now).await.unwrap();
        assert_eq!(h.counts, c);
        // Newest first through the same walks, with a filter that needs the request's row.
        let page = n
            .queue(
                officer,
                Queue::MyUnits,
                RequestFilter {
                    states: vec![State::Acknowledged],
                    ..Default::default()
                },
                now,
            )
            .await
            .unwrap();
        assert_eq!(page.items.iter().map(|s| s.id).collect::<Vec<_>>(), vec![ids[0]]);
    }
}

/// Preservation requested from CN-MPS of the FBI (New York: the clocks go forward on
/// 2026-03-08): the 90-day period ends at the same local time, an hour earlier in UTC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preservation_expires_at_its_instant_across_dst_with_one_reminder() {
    for node in fixtures::nodes_on_every_backend().await.unwrap() {
        let f = TwoAgencies::on(node).await.unwrap();
        let n = &f.node;
        let t0 = t("2026-03-02T15:00:00Z"); // 10:00 in New York (EST)
        let mut d = fixtures::draft(RequestKind::ExpeditedPreservation, f.mps.id, f.fbi.id, "CN-CASE-7");
        d.urgency = Urgency::Urgent;
        let r = n.create_request(f.who("CN-MPS", Role::Officer), d, t0).await.unwrap();
        let id = r.request.id;
        step(&f, "CN-MPS", Role::Officer, id, State::Submitted, t0).await;
        for s in [State::Acknowledged, State::Accepted, State::Preserved] {
            step(&f, "FBI", Role::Desk, id, s, t0).await;
        }
        let until = n
            .request(f.who("FBI", Role::Desk), id, t0)
            .await
            .unwrap()
            .request
            .preserved_until
            .unwrap();
        // 90 calendar days later, 10:00 in New York, now EDT: 14:00 UTC.
        assert_eq!(until, t("2026-05-31T14:00:00Z"));
        // The reminder: 7 days before, once.
        let lead = until - SignedDuration::from_hours(7 * 24);
        let early = n.tick(lead - SignedDuration::from_secs(1)).await.unwrap();
        assert_eq!(early.reminders, 0);
        let r1 = n.tick(lead + SignedDuration::from_secs(1)).await.unwrap();
        assert_eq!(r1.reminders, 1);
        let r2 = n.tick(lead + SignedDuration::from_hours(1)).await.unwrap();
        assert_eq!(r2.reminders, 0, "a reminder fires once");
        let events = n.events(f.who("FBI", Role::Desk), id, until).await.unwrap();
        assert_eq!(events.iter().filter(|e| e.event == "reminder").count(), 1);
        // Both sides' people hear of it: the requesting officer (owner) and the FBI's desk
        // (nobody owns it there).
        for (agency, role) in [
            ("CN-MPS", Role::Officer),
            ("FBI", Role::Desk),
            ("FBI", Role::Supervisor),
        ] {
            let inbox = n
                .notifications(f.who(agency, role), false, None, 50, until)
                .await
                .unwrap();
            assert_eq!(
                inbox.iter().filter(|x| x.kind == "deadline_approaching").count(),
                1,
                "{agency} {role}: {inbox:?}"
            );
        }
        // One millisecond before the end: still preserved. At the end: expired, by the node.
        let before = n.tick(until - SignedDuration::from_millis(1)).await.unwrap();
        assert_eq!(before.expired, 0);
        assert_eq!(
            n.request(f.who("FBI", Role::Desk), id, until)
                .await
                .unwrap()
                .request
                .state,
            State::Preserved
        );
        let at = n.tick(until).await.unwrap();
        assert_eq!(at.expired, 1);
        let r = n.request(f.who("FBI", Role::Desk), id, until).await.unwrap();
        assert_eq!(r.request.state, State::Expired);
        let last = n.events(f.who("FBI", Role::Desk), id, until).await.unwrap();
        let exp = last.iter().find(|e| e.to_state == Some(State::Expired)).unwrap();
        assert_eq!(exp.actor, "system");
        assert!(exp.reason.as_deref().unwrap().contains("preservation period ended"));
        assert_eq!(n.tick(until + SignedDuration::from_hours(1)).await.unwrap().expired, 0);
        // The owner is told.
        let inbox = n
            .notifications(f.who("CN-MPS", Role::Officer), true, None, 50, until)
            .await
            .unwrap();
        assert!(inbox.iter().any(|x| x.kind == "expired"), "{inbox:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn information_not_supplied_expires_and_a_preservation_converts_into_a_draft() {
    for node in fixtures::nodes_on_every_backend().await.unwrap() {
        let f = TwoAgencies::on(node).await.unwrap();
        let n = &f.node;
        let t0 = t("2026-10-20T12:00:00Z");
        // Information asked for: due in 30 calendar days in the requested side's zone (New
        // York, back to EST on 2026-11-01), then expired by the requested side's node.
        let d = fixtures::draft(RequestKind::StoredContent, f.mps.id, f.fbi.id, "CN-CASE-8");
        let r = n.create_request(f.who("CN-MPS", Role::Officer), d, t0).await.unwrap();
        let id = r.request.id;
        step(&f, "CN-MPS", Role::Officer, id, State::Submitted, t0).await;
        step(&f, "FBI", Role::Desk, id, State::Acknowledged, t0).await;
        step(&f, "FBI", Role::LegalReviewer, id, State::InReview, t0).await;
        step(&f, "FBI", Role::LegalReviewer, id, State::NeedsInformation, t0).await;
        let r = n.request(f.who("CN-MPS", Role::Officer), id, t0).await.unwrap();
        let due = r.request.information_due.unwrap();
        assert_eq!(due, t("2026-11-19T13:00:00Z"), "08:00 in New York, EST");
        let w = n.work_state(f.who("CN-MPS", Role::Officer), id, t0).await.unwrap();
        assert_eq!(w.awaiting, Some(Awaiting::Us));
        assert_eq!(w.deadline, Some(liaison_core::sla::DeadlineKind::Information));
        assert_eq!(n.tick(due - SignedDuration::from_millis(1)).await.unwrap().expired, 0);
        assert_eq!(n.tick(due).await.unwrap().expired, 1);
        assert_eq!(
            n.request(f.who("CN-MPS", Role::Officer), id, due)
                .await
                .unwrap()
                .request
                .state,
            State::Expired
        );

        // Converting a preservation makes the follow-up draft.
        let d = fixtures::draft(RequestKind::ExpeditedPreservation, f.mps.id, f.fbi.id, "CN-CASE-9");
        let p = n.create_request(f.who("CN-MPS", Role::Officer), d, t0).await.unwrap();
        step(&f, "CN-MPS", Role::Officer, p.request.id, State::Submitted, t0).await;
        for s in [State::Acknowledged, State::Accepted, State::Preserved] {
            step(&f, "FBI", Role::Desk, p.request.id, s, t0).await;
        }
        // Not by the requested side, and not into another preservation.
        assert!(
            n.convert_preservation(
                f.who("FBI", Role::Officer),
                p.request.id,
                RequestKind::StoredContent,
                t0
            )
            .await
            .is_err()
        );
        assert!(matches!(
            n.convert_preservation(
                f.who("CN-MPS", Role::Officer),
                p.request.id,
                RequestKind::ExpeditedPreservation,
                t0
            )
            .await,
            Err(ServiceError::Invalid(_))
        ));
        let (follow, converted) = n
            .convert_preservation(
                f.who("CN-MPS", Role::Officer),
                p.request.id,
                RequestKind::StoredContent,
                t0,
            )
            .await
            .unwrap();
        assert_eq!(converted.request.state, State::Converted);
        assert_eq!(follow.request.state, State::Draft);
        assert_eq!(follow.request.draft.kind, RequestKind::StoredContent);
        assert_eq!(follow.request.draft.related, vec![p.request.id]);
        assert_eq!(follow.request.draft.case_reference, "CN-CASE-9");
        assert!(follow.request.draft.summary.contains(&p.reference));
        // The draft is its author's.
        let w = n
            .work_state(f.who("CN-MPS", Role::Officer), follow.request.id, t0)
            .await
            .unwrap();
        assert_eq!(w.assignment.owner.as_deref(), Some("cn-mps.officer"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_tells_who_should_know_and_nobody_else() {
    for node in fixtures::nodes_on_every_backend().await.unwrap() {
        let f = TwoAgencies::on(node).await.unwrap();
        let n = &f.node;
        let now = Timestamp::now();
        let officer = f.who("FBI", Role::Officer);
        let r = n
            .create_request(officer, f.draft(RequestKind::TrafficData), now)
            .await
            .unwrap();
        let id = r.request.id;
        step(&f, "FBI", Role::Officer, id, State::Submitted, now).await;
        n.tick(now).await.unwrap();
        // New incoming: the partner's desk and supervisor (nobody owns it there), not its officer.
        let kinds = |agency: &'static str, role| {
            let n = n.clone();
            let p = f.who(agency, role).clone();
            async move {
                n.notifications(&p, false, None, 50, now)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|x| x.kind)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(kinds("CN-MPS", Role::Desk).await, vec!["incoming"]);
        // (Leaving out the daily digest, which comes at any time of day after the digest hour
        // in the supervisor's zone: the test may run then.)
        let no_digest = |v: Vec<String>| v.into_iter().filter(|k| k != "digest").collect::<Vec<_>>();
        assert_eq!(no_digest(kinds("CN-MPS", Role::Supervisor).await), vec!["incoming"]);
        assert!(kinds("CN-MPS", Role::Officer).await.is_empty());
        // The sender's officer made the change: not told of it.
        assert!(kinds("FBI", Role::Officer).await.is_empty());
        // The partner acknowledges and comments: the owner hears of both, and so does a watcher.
        n.watch(f.who("FBI", Role::Supervisor), id, true, now).await.unwrap();
        step(&f, "CN-MPS", Role::Desk, id, State::Acknowledged, now).await;
        n.comment(f.who("CN-MPS", Role::Desk), id, "we are on it", None, now)
            .await
            .unwrap();
        n.tick(now).await.unwrap();
        let got = kinds("FBI", Role::Officer).await;
        assert!(
            got.contains(&"partner_change".to_string()) && got.contains(&"partner_comment".to_string()),
            "{got:?}"
        );
        // Reading the pass again changes nothing (each line tells each user once).
        n.tick(now).await.unwrap();
        assert_eq!(kinds("FBI", Role::Officer).await.len(), got.len());
        // Unread, then read.
        let c = n.queue_counts(officer, now).await.unwrap();
        assert_eq!(c.unread_notifications, got.len() as u64);
        n.mark_read(officer, None, now).await.unwrap();
        assert_eq!(n.queue_counts(officer, now).await.unwrap().unread_notifications, 0);
        // A comment marked RED for the legal reviewer only is announced to no one else.
        let red = liaison_core::Marking {
            tlp: liaison_core::Tlp::Red,
            recipients: vec!["fbi.legal_reviewer".into()],
        };
        let comments = |v: Vec<String>| v.iter().filter(|k| *k == "partner_comment").count();
        assert_eq!(comments(kinds("FBI", Role::Supervisor).await), 1);
        n.comment(f.who("CN-MPS", Role::Desk), id, "eyes only", Some(red), now)
            .await
            .unwrap();
        n.tick(now).await.unwrap();
        assert_eq!(comments(kinds("FBI", Role::Supervisor).await), 1);
        assert_eq!(comments(kinds("FBI", Role::Officer).await), 1);
        assert_eq!(
            comments(kinds("FBI", Role::LegalReviewer).await),
            0,
            "not owner nor watcher"
        );
        // Away: the delegate is told what the owner is, and finds the owner's requests in
        // "mine" (counted too) until the owner is back.
        let fbi_sup = f.who("FBI", Role::Supervisor).clone();
        let mine_of = |p: liaison_core::record::Principal, at: Timestamp| {
            let n = n.clone();
            async move {
                let page = n.queue(&p, Queue::Mine, RequestFilter::default(), at).await.unwrap();
                let count = n.queue_counts(&p, at).await.unwrap().mine;
                (page.items.iter().map(|s| s.id).collect::<Vec<_>>(), count)
            }
        };
        assert_eq!(mine_of(fbi_sup.clone(), now).await, (vec![], 0));
        let mut prefs = n.prefs(officer).await.unwrap();
        prefs.delegate = Some("fbi.supervisor".into());
        prefs.away_until = Some(now + SignedDuration::from_hours(48));
        n.set_prefs(officer, prefs, now).await.unwrap();
        assert_eq!(mine_of(fbi_sup.clone(), now).await, (vec![id], 1));
        let back = now + SignedDuration::from_hours(49);
        assert_eq!(mine_of(fbi_sup.clone(), back).await, (vec![], 0));
        assert_eq!(mine_of(officer.clone(), now).await, (vec![id], 1), "still the owner's");
        step(&f, "CN-MPS", Role::LegalReviewer, id, State::InReview, now).await;
        n.tick(now).await.unwrap();
        assert!(
            kinds("FBI", Role::Supervisor)
                .await
                .contains(&"partner_change".to_string())
        );
        // A delegate must be of the agency.
        let mut bad = n.prefs(officer).await.unwrap();
        bad.delegate = Some("cn-mps.officer".into());
        bad.time_zone = Some("Mars/Olympus".into());
        match n.set_prefs(officer, bad, now).await {
            Err(ServiceError::Invalid(v)) => assert_eq!(v.len(), 2, "{v:?}"),
            other => panic!("{other:?}"),
        }
        // The supervisors' digest: once a day, from the digest hour in their zone.
        let digests = |v: Vec<String>| v.iter().filter(|k| *k == "digest").count();
        let before = digests(kinds("FBI", Role::Supervisor).await);
        let dawn = t("2030-01-15T12:30:00Z"); // 07:30 in New York
        n.tick(dawn).await.unwrap();
        assert_eq!(digests(kinds("FBI", Role::Supervisor).await), before);
        let morning = t("2030-01-15T13:30:00Z"); // 08:30
        n.tick(morning).await.unwrap();
        n.tick(morning + SignedDuration::from_hours(2)).await.unwrap();
        assert_eq!(digests(kinds("FBI", Role::Supervisor).await), before + 1);
        assert_eq!(digests(kinds("FBI", Role::Officer).await), 0, "supervisors only");
    }
}
