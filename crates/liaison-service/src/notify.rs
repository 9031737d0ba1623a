//! Notifications: the deadline watcher's pass that turns history lines into lines of users'
//! inboxes (docs/queues.md). Every change to a request already writes a history line in its
//! own transaction (local or from a peer); this pass reads the lines written since the last
//! pass, in id order, and decides who is told what. Nothing on the path of a change waits for
//! it. A line is turned into at most one notification per user (the table's unique key), so
//! reading a line twice is harmless: each pass reads again the last ten seconds of lines, so
//! that a transaction that committed late (its line's id is from when it began) is not missed.

use crate::error::Result;
use crate::node::Node;
use jiff::Timestamp;
use liaison_core::lifecycle::{Role, Side, State};
use liaison_core::record::{EventRecord, Principal, StoredRequest, User, UserPrefs};
use liaison_core::sla::DeadlineKind;
use liaison_core::{AgencyId, RequestId, UserId};
use liaison_store::NewNotification;
use std::collections::{BTreeSet, HashMap};

/// The setting holding the id of the last history line read.
pub(crate) const CURSOR_KEY: &str = "notify.cursor";
/// How far back each pass reads again (milliseconds).
const REREAD_MS: i64 = 10_000;
/// History lines read per query.
const LINES: i64 = 500;

/// What one pass read and stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct NotifyReport {
    pub lines: usize,
    pub notifications: usize,
    /// E-mails and webhook calls queued.
    pub deliveries: usize,
}

/// What a pass knows about users (read once per pass).
struct Users {
    all: Vec<User>,
    prefs: HashMap<UserId, UserPrefs>,
}

impl Users {
    fn by_name(&self, name: &str) -> Option<&User> {
        self.all.iter().find(|u| u.username == name)
    }
    fn by_id(&self, id: UserId) -> Option<&User> {
        self.all.iter().find(|u| u.id == id)
    }
    fn of(&self, agency: AgencyId, roles: &[Role]) -> Vec<UserId> {
        self.all
            .iter()
            .filter(|u| u.agency == agency && !u.disabled && roles.contains(&u.role))
            .map(|u| u.id)
            .collect()
    }
}

fn principal(u: &User) -> Principal {
    Principal {
        user: u.id,
        username: u.username.clone(),
        agency: u.agency,
        role: u.role,
        token: None,
    }
}

impl Node {
    /// One pass of the notification fan-out (run by the deadline watcher).
    pub async fn notify_pass(&self, now: Timestamp) -> Result<NotifyReport> {
        let wall = Timestamp::now().as_millisecond();
        let cursor = self.store.setting(CURSOR_KEY).await?.unwrap_or_default();
        let reread = liaison_store::event_id_floor(wall - REREAD_MS);
        let mut from = if cursor < reread { cursor.clone() } else { reread };
        let users = Users {
            all: self.store.users().await?,
            prefs: self
                .store
                .all_prefs()
                .await?
                .into_iter()
                .filter_map(|p| Some((p.user?, p)))
                .collect(),
        };
        let mut report = NotifyReport::default();
        let mut last = cursor.clone();
        let mut requests: HashMap<RequestId, Option<StoredRequest>> = HashMap::new();
        loop {
            let lines = self.store.events_after(Some(&from), LINES).await?;
            let mut out = Vec::new();
            for ev in &lines {
                report.lines += 1;
                let r = match requests.get(&ev.request) {
                    Some(r) => r.clone(),
                    None => {
                        let r = self.store.request(ev.request, None).await.ok();
                        requests.insert(ev.request, r.clone());
                        r
                    }
                };
                if let Some(r) = r {
                    out.extend(self.fan_out(ev, &r, &users, now).await?);
                }
            }
            let stored = self.store.add_notifications(&out).await?;
            report.notifications += stored.len();
            report.deliveries += self.queue_deliveries(&stored, &users.all, &users.prefs, now).await?;
            if let Some(l) = lines.last() {
                from = l.id.to_string();
                if from > last {
                    last = from.clone();
                }
            }
            if (lines.len() as i64) < LINES {
                break;
            }
        }
        let digests = self.digests(&users, now).await?;
        report.notifications += digests.len();
        report.deliveries += self.queue_deliveries(&digests, &users.all, &users.prefs, now).await?;
        if last > cursor {
            self.store.set_setting(CURSOR_KEY, &last).await?;
        }
        Ok(report)
    }

    /// Who is told of one history line, and as what.
    async fn fan_out(
        &self,
        ev: &EventRecord,
        r: &StoredRequest,
        users: &Users,
        now: Timestamp,
    ) -> Result<Vec<NewNotification>> {
        let q = &r.request;
        let mut out = Vec::new();
        for (agency, side) in [
            (q.draft.requesting_agency, Side::Requesting),
            (q.draft.requested_agency, Side::Requested),
        ] {
            if !self.store.agency_is_local(agency).await? {
                continue;
            }
            // A draft is its author's agency's business only.
            if q.state == State::Draft && side == Side::Requested {
                continue;
            }
            let (owner, unit) = self.store.work_row(q.id, agency).await?;
            let watchers: Vec<UserId> = self
                .store
                .watchers(q.id)
                .await?
                .into_iter()
                .filter(|w| users.by_id(*w).is_some_and(|u| u.agency == agency))
                .collect();
            let actor = users.by_name(&ev.actor);
            // The partner acted: a user of a peer node (`node:user`) or of the other agency here.
            let partner = ev.actor.contains(':') || actor.is_some_and(|u| u.agency != agency);
            let mut base: BTreeSet<UserId> = watchers.iter().copied().collect();
            if let Some(o) = owner {
                base.insert(o);
                // While the owner is away, the delegate is told what the owner is.
                if let Some(p) = users.prefs.get(&o)
                    && p.away_until.is_some_and(|until| until > now)
                    && let Some(d) = p.delegate.as_deref().and_then(|d| users.by_name(d))
                {
                    base.insert(d.id);
                }
            }
            // Nobody owns it: the unit, else the side's intake (desk and supervisors receiving,
            // supervisors sending).
            let intake = || -> Vec<UserId> {
                match side {
                    Side::Requested => users.of(agency, &[Role::Desk, Role::Supervisor]),
                    Side::Requesting => users.of(agency, &[Role::Supervisor]),
                }
            };
            let unit_members = match unit {
                Some(u) => self.store.unit_members(u).await?,
                None => Vec::new(),
            };
            let fallback = |base: &mut BTreeSet<UserId>| {
                if owner.is_none() {
                    if unit_members.is_empty() {
                        base.extend(intake());
                    } else {
                        base.extend(unit_members.iter().copied());
                    }
                }
            };
            let deadline = ev
                .data
                .as_ref()
                .and_then(|d| d.get("deadline"))
                .and_then(|d| serde_json::from_value::<DeadlineKind>(d.clone()).ok());
            let concerns_side = |k: DeadlineKind| k == DeadlineKind::PreservationExpiry || k.owed_by() == side;
            let kind: &'static str = match ev.event.as_str() {
                // The arrival is announced by its receipt (`received`), not by the sending.
                "transition" | "created" if ev.to_state == Some(State::Submitted) && side == Side::Requested => {
                    continue;
                }
                "transition" if ev.to_state == Some(State::Received) && side == Side::Requested => {
                    fallback(&mut base);
                    "incoming"
                }
                // The sender's side: the receipt follows the sending at once (not worth a line).
                "transition" if ev.to_state == Some(State::Received) => continue,
                "transition" if ev.to_state == Some(State::Expired) => {
                    fallback(&mut base);
                    "expired"
                }
                "transition" if partner => {
                    fallback(&mut base);
                    if ev.to_state.is_some_and(State::counts_as_answered) {
                        "partner_answer"
                    } else {
                        "partner_change"
                    }
                }
                "transition" => "change",
                "comment" if partner => {
                    fallback(&mut base);
                    "partner_comment"
                }
                "comment" => "comment",
                "reminder" => match deadline {
                    Some(k) if concerns_side(k) => {
                        fallback(&mut base);
                        "deadline_approaching"
                    }
                    _ => continue,
                },
                "escalation" => match deadline {
                    Some(k) if concerns_side(k) => {
                        // The owner did not act in time: the unit and the supervisors hear of it.
                        base.extend(unit_members.iter().copied());
                        base.extend(users.of(agency, &[Role::Supervisor]));
                        "deadline_passed"
                    }
                    _ => continue,
                },
                "assigned" => {
                    let for_agency = ev
                        .data
                        .as_ref()
                        .and_then(|d| d.get("agency"))
                        .and_then(|a| a.as_str())
                        .is_some_and(|a| a == agency.to_string());
                    if !for_agency {
                        continue;
                    }
                    "assigned"
                }
                // Anything else (edited, marking, assessment, consent, …): the watchers.
                _ => {
                    base = watchers.iter().copied().collect();
                    "change"
                }
            };
            for uid in base {
                let Some(u) = users.by_id(uid) else { continue };
                if u.disabled || u.username == ev.actor || !u.role.may_read_requests() {
                    continue;
                }
                let p = principal(u);
                let d = &q.draft;
                if !crate::markings::admits_request(&p, d.requesting_agency, d.requested_agency, &d.marking()) {
                    continue;
                }
                if ev.event == "comment" && !crate::markings::admits_comment(&p, q, ev) {
                    continue;
                }
                out.push(NewNotification {
                    user: uid,
                    event: ev.id.to_string(),
                    request: Some(q.id),
                    at: ev.at,
                    kind: kind.to_string(),
                    data: serde_json::json!({
                        "reference": r.reference,
                        "event": ev.event,
                        "state": q.state,
                        "from": ev.from_state,
                        "to": ev.to_state,
                        "actor": ev.actor,
                        "deadline": deadline,
                        "due_at": ev.data.as_ref().and_then(|d| d.get("due_at")),
                        "kind": q.draft.kind,
                        "urgency": q.draft.urgency,
                        "tlp": d.marking().tlp,
                    }),
                });
            }
        }
        Ok(out)
    }

    /// Supervisors' daily digests: once a day, at `[work] digest_hour` in each one's zone,
    /// the counts of their queues.
    async fn digests(
        &self,
        users: &Users,
        now: Timestamp,
    ) -> Result<Vec<(liaison_core::NotificationId, NewNotification)>> {
        let mut out = Vec::new();
        for u in users.all.iter().filter(|u| u.role == Role::Supervisor && !u.disabled) {
            let prefs = users.prefs.get(&u.id).cloned().unwrap_or_default();
            if prefs.digest == Some(false) {
                continue;
            }
            let zone_name = match &prefs.time_zone {
                Some(z) => z.clone(),
                None => self.store.agency(u.agency).await?.time_zone,
            };
            let zone = liaison_core::directory::time_zone(&zone_name).unwrap_or(jiff::tz::TimeZone::UTC);
            let local = now.to_zoned(zone);
            if local.hour() < i8::try_from(self.work.digest_hour).unwrap_or(8) {
                continue;
            }
            let key = format!("digest:{}", local.date());
            if self.store.has_notification(u.id, &key).await? {
                continue;
            }
            let counts = self.queue_counts(&principal(u), now).await?;
            out.push(NewNotification {
                user: u.id,
                event: key,
                request: None,
                at: now,
                kind: "digest".into(),
                data: serde_json::json!({"date": local.date(), "counts": counts}),
            });
        }
        Ok(self.store.add_notifications(&out).await?)
    }
}
