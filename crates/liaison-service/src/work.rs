//! Working the requests: references, owners and units, watchers, queues and home pages, the
//! in-app inbox and users' preferences. Everything here is local to the node: owners, units,
//! watchers and notifications never travel to peers.

use crate::error::{Result, ServiceError};
use crate::node::{Node, require};
use jiff::Timestamp;
use liaison_core::lifecycle::{Role, Side, State};
use liaison_core::record::{
    Assignment, Awaiting, Notification, Page, Principal, QueueCounts, RequestFilter, RequestSummary, Unit, UserPrefs,
    WorkState,
};
use liaison_core::sla::DeadlineKind;
use liaison_core::{NotificationId, RequestId, UnitId};
use serde::{Deserialize, Serialize};

/// `[work]`: when the deadline watcher reminds people of a deadline, and when supervisors get
/// their digest.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkConfig {
    /// Hours before an acknowledgement falls due.
    pub remind_acknowledge_hours: u32,
    /// Hours before an answer falls due.
    pub remind_answer_hours: u32,
    /// Days before a preservation lapses.
    pub remind_preservation_days: u32,
    /// Days before information asked for falls due.
    pub remind_information_days: u32,
    /// The hour (0–23, in each supervisor's time zone) of the daily digest.
    pub digest_hour: u8,
}

impl Default for WorkConfig {
    fn default() -> Self {
        WorkConfig {
            remind_acknowledge_hours: 24,
            remind_answer_hours: 24,
            remind_preservation_days: 7,
            remind_information_days: 3,
            digest_hour: 8,
        }
    }
}

impl WorkConfig {
    /// Checks the values (the digest hour is an hour of the day).
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.digest_hour > 23 {
            return Err(format!(
                "[work] digest_hour = {}: give an hour from 0 to 23",
                self.digest_hour
            ));
        }
        Ok(())
    }

    /// How long before a deadline of `kind` its reminder fires.
    pub fn lead(&self, kind: DeadlineKind) -> jiff::SignedDuration {
        let hours = match kind {
            DeadlineKind::Acknowledge => i64::from(self.remind_acknowledge_hours),
            DeadlineKind::Answer => i64::from(self.remind_answer_hours),
            DeadlineKind::PreservationExpiry => i64::from(self.remind_preservation_days) * 24,
            DeadlineKind::Information => i64::from(self.remind_information_days) * 24,
        };
        jiff::SignedDuration::from_hours(hours)
    }
}

/// A queue of requests, seen from the caller's agency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Queue {
    /// Requests the caller owns, and those of colleagues away who named the caller their
    /// delegate (while they are away).
    Mine,
    /// Requests assigned to the caller's units.
    MyUnits,
    /// Requests waiting for the caller's agency to move.
    WaitingOnUs,
    /// Requests waiting for the partner.
    WaitingOnPartner,
    /// Incoming requests waiting on us that nobody owns yet (the desk's intake).
    Unassigned,
    /// Requests the caller watches.
    Watching,
    /// Requests whose running deadline has passed.
    Overdue,
    /// Everything the caller may see (filters and sort still apply).
    All,
}

impl std::str::FromStr for Queue {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s {
            "mine" => Queue::Mine,
            "my_units" | "my-units" => Queue::MyUnits,
            "waiting_on_us" | "waiting-on-us" => Queue::WaitingOnUs,
            "waiting_on_partner" | "waiting-on-partner" => Queue::WaitingOnPartner,
            "unassigned" => Queue::Unassigned,
            "watching" => Queue::Watching,
            "overdue" => Queue::Overdue,
            "all" => Queue::All,
            _ => {
                return Err(format!(
                    "'{s}' is not a queue: mine, my_units, waiting_on_us, waiting_on_partner, unassigned, watching, overdue or all"
                ));
            }
        })
    }
}

impl Queue {
    pub const ALL: &'static [Queue] = &[
        Queue::Mine,
        Queue::MyUnits,
        Queue::WaitingOnUs,
        Queue::WaitingOnPartner,
        Queue::Unassigned,
        Queue::Watching,
        Queue::Overdue,
        Queue::All,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Queue::Mine => "mine",
            Queue::MyUnits => "my_units",
            Queue::WaitingOnUs => "waiting_on_us",
            Queue::WaitingOnPartner => "waiting_on_partner",
            Queue::Unassigned => "unassigned",
            Queue::Watching => "watching",
            Queue::Overdue => "overdue",
            Queue::All => "all",
        }
    }
}

/// A role's home page: its counts and the lists it starts a shift with.
#[derive(Debug, Clone, Serialize)]
pub struct Home {
    pub role: Role,
    pub counts: QueueCounts,
    pub sections: Vec<HomeSection>,
}

/// One list of a home page.
#[derive(Debug, Clone, Serialize)]
pub struct HomeSection {
    /// What the list is (`incoming`, `due_this_shift`, `drafts`, `waiting_on_partner`, …).
    pub name: &'static str,
    /// The queue and filters that open the whole list.
    pub queue: Queue,
    pub items: Vec<RequestSummary>,
}

/// Roles that work requests and may own them.
fn may_own(role: Role) -> bool {
    matches!(
        role,
        Role::Officer | Role::Desk | Role::LegalReviewer | Role::Supervisor
    )
}

impl Node {
    /// The request a reference or id names, if the caller may see it. A reference
    /// (`FBI-2026-0042`) is accepted wherever an id is; one the caller may not see is "not
    /// found", like one that does not exist (and the answer never names its id).
    pub async fn resolve(&self, p: &Principal, s: &str, now: Timestamp) -> Result<RequestId> {
        let s = s.trim();
        if let Ok(id) = s.parse::<RequestId>() {
            return Ok(id);
        }
        let not_found = || ServiceError::NotFound(format!("request {s}"));
        if liaison_store::RefSpec::parse(&s.to_ascii_uppercase()).is_none() {
            return Err(ServiceError::invalid(
                "id",
                format!("'{s}' is neither a request id (UUID) nor a reference such as FBI-2026-0042"),
            ));
        }
        let id = self.store.request_by_reference(s).await?.ok_or_else(not_found)?;
        match self.visible(p, id, now).await {
            Ok(_) => Ok(id),
            Err(ServiceError::NotFound(_)) => Err(not_found()),
            Err(e) => Err(e),
        }
    }

    /// Who works a request and what it waits for, seen from the caller's agency.
    pub async fn work_state(&self, p: &Principal, id: RequestId, now: Timestamp) -> Result<WorkState> {
        let (r, side) = self.visible(p, id, now).await?;
        let all = self.store.assignments(id).await?;
        let assignment = all
            .into_iter()
            .find(|a| a.agency == Some(p.agency))
            .unwrap_or_else(|| Assignment {
                agency: Some(p.agency),
                ..Default::default()
            });
        Ok(work_state_of(&r.request, side, assignment, now))
    }

    /// Assigns a request for the caller's agency: an owner (a user name of the agency, or
    /// none) and a unit (a unit code, or none). Supervisors assign anything; the desk assigns
    /// incoming requests; officers and legal reviewers take a request nobody owns, or hand
    /// over one they own.
    #[allow(clippy::too_many_arguments)]
    pub async fn assign(
        &self,
        p: &Principal,
        id: RequestId,
        owner: Option<&str>,
        unit: Option<&str>,
        note: Option<&str>,
        now: Timestamp,
    ) -> Result<WorkState> {
        require(may_own(p.role), "assigning requests", p)?;
        let (_, side) = self.visible(p, id, now).await?;
        let (cur_owner, _) = self.store.work_row(id, p.agency).await?;
        let allowed = match p.role {
            Role::Supervisor => true,
            Role::Desk => side == Side::Requested || cur_owner.is_none_or(|o| o == p.user),
            _ => cur_owner.is_none_or(|o| o == p.user),
        };
        if !allowed {
            return Err(ServiceError::Forbidden(format!(
                "{} ({}) may not reassign a request someone else owns: ask its owner or a supervisor",
                p.username, p.role
            )));
        }
        let owner_user = match owner.map(str::trim).filter(|o| !o.is_empty()) {
            None => None,
            Some(name) => {
                let u = self
                    .store
                    .user_by_name(name)
                    .await
                    .map_err(|_| ServiceError::invalid("owner", format!("no user '{name}' on this node")))?;
                if u.agency != p.agency || u.disabled || !may_own(u.role) {
                    return Err(ServiceError::invalid(
                        "owner",
                        format!(
                            "'{name}' cannot own requests of your agency (another agency, disabled, or a role that does not work requests)"
                        ),
                    ));
                }
                // An officer hands over to a colleague, and anyone may take one nobody owns;
                // only the desk and supervisors give a request to someone else.
                Some(u)
            }
        };
        let unit_row = match unit.map(str::trim).filter(|u| !u.is_empty()) {
            None => None,
            Some(code) => Some(self.unit_by_code(p, code).await?),
        };
        let data = serde_json::json!({
            "agency": p.agency,
            "owner": owner_user.as_ref().map(|u| u.username.clone()),
            "unit": unit_row.as_ref().map(|u| u.code.clone()),
            "previous_owner": match cur_owner { Some(o) => self.user_name(o).await, None => None },
        });
        self.store
            .assign(
                id,
                p.agency,
                owner_user.as_ref().map(|u| u.id),
                unit_row.as_ref().map(|u| u.id),
                note,
                &data,
                &p.username,
                now,
            )
            .await?;
        self.work_state(p, id, now).await
    }

    /// Starts or stops watching a request (any role that reads requests).
    pub async fn watch(&self, p: &Principal, id: RequestId, on: bool, now: Timestamp) -> Result<WorkState> {
        self.visible(p, id, now).await?;
        self.store.watch(id, p.user, on, &p.username, now).await?;
        self.work_state(p, id, now).await
    }

    async fn user_name(&self, id: liaison_core::UserId) -> Option<String> {
        self.store
            .users()
            .await
            .ok()?
            .into_iter()
            .find(|u| u.id == id)
            .map(|u| u.username)
    }

    async fn unit_by_code(&self, p: &Principal, code: &str) -> Result<Unit> {
        self.store
            .units(p.agency)
            .await?
            .into_iter()
            .find(|u| u.code.eq_ignore_ascii_case(code))
            .ok_or_else(|| {
                ServiceError::invalid("unit", format!("your agency has no unit '{code}' (liaison unit list)"))
            })
    }

    /// The users of the caller's agency who may own requests (for an owner's select).
    pub async fn colleagues(&self, p: &Principal) -> Result<Vec<liaison_core::record::User>> {
        require(p.role.may_read_requests(), "reading requests", p)?;
        Ok(self
            .store
            .users()
            .await?
            .into_iter()
            .filter(|u| u.agency == p.agency && !u.disabled && may_own(u.role))
            .collect())
    }

    // ---- units ----

    /// Units of the caller's agency (every role but the administrator's may read them; the
    /// administrator reads them for any agency through [`Node::units_of_agency`]).
    pub async fn units(&self, p: &Principal) -> Result<Vec<Unit>> {
        Ok(self.store.units(p.agency).await?)
    }

    /// Creates a unit in the caller's agency (supervisors and administrators).
    pub async fn create_unit(&self, p: &Principal, code: &str, name: &str, now: Timestamp) -> Result<Unit> {
        require(matches!(p.role, Role::Supervisor | Role::Admin), "creating units", p)?;
        let code = code.trim();
        let ok = !code.is_empty()
            && code.len() <= 32
            && code
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !ok {
            return Err(ServiceError::invalid(
                "code",
                format!("'{code}' is not a unit code: 1–32 characters of a-z, 0-9, '-' and '_'"),
            ));
        }
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(ServiceError::invalid("name", "give a name of 1 to 200 characters"));
        }
        self.store.create_unit(p.agency, code, name, &p.username, now).await?;
        self.unit_by_code(p, code).await
    }

    /// Adds a user of the caller's agency to a unit, or removes them.
    pub async fn unit_member(
        &self,
        p: &Principal,
        unit: &str,
        username: &str,
        add: bool,
        now: Timestamp,
    ) -> Result<Unit> {
        require(matches!(p.role, Role::Supervisor | Role::Admin), "changing units", p)?;
        let u = self.unit_by_code(p, unit).await?;
        let user = self
            .store
            .user_by_name(username)
            .await
            .map_err(|_| ServiceError::invalid("user", format!("no user '{username}' on this node")))?;
        if user.agency != p.agency {
            return Err(ServiceError::invalid(
                "user",
                format!("'{username}' is not of your agency"),
            ));
        }
        self.store.set_unit_member(u.id, user.id, add, &p.username, now).await?;
        self.unit_by_code(p, unit).await
    }

    // ---- preferences ----

    /// The caller's preferences.
    pub async fn prefs(&self, p: &Principal) -> Result<UserPrefs> {
        Ok(self.store.prefs(p.user).await?)
    }

    /// Replaces the caller's preferences, after checking each value.
    pub async fn set_prefs(&self, p: &Principal, prefs: UserPrefs, now: Timestamp) -> Result<UserPrefs> {
        let mut errs = Vec::new();
        if let Some(l) = &prefs.language
            && !matches!(l.as_str(), "en" | "zh-CN")
        {
            errs.push(field_error("language", format!("'{l}' is not en or zh-CN")));
        }
        if let Some(z) = &prefs.time_zone
            && liaison_core::directory::time_zone(z).is_err()
        {
            errs.push(field_error(
                "time_zone",
                format!("'{z}' is not an IANA time zone such as Asia/Shanghai"),
            ));
        }
        if let Some(e) = &prefs.email
            && !plausible_email(e)
        {
            errs.push(field_error("email", format!("'{e}' is not an e-mail address")));
        }
        if let Some(kinds) = &prefs.email_kinds {
            for k in kinds {
                if !NOTIFICATION_KINDS.contains(&k.as_str()) {
                    errs.push(field_error(
                        "email_kinds",
                        format!(
                            "'{k}' is not a kind of notification ({})",
                            NOTIFICATION_KINDS.join(", ")
                        ),
                    ));
                }
            }
        }
        if let Some(d) = &prefs.delegate {
            match self.store.user_by_name(d).await {
                Ok(u) if u.agency == p.agency && !u.disabled && u.id != p.user && may_own(u.role) => {}
                _ => errs.push(field_error(
                    "delegate",
                    format!("'{d}' is not another active user of your agency who works requests"),
                )),
            }
        }
        if !errs.is_empty() {
            return Err(ServiceError::Invalid(errs));
        }
        self.store.set_prefs(p.user, &prefs, &p.username, now).await?;
        self.prefs(p).await
    }

    // ---- queues ----

    /// The filter of a queue for the caller, on top of `f` (its other filters and sort).
    /// "Mine" also holds what colleagues away named the caller to act for.
    async fn queue_filter(&self, p: &Principal, q: Queue, f: RequestFilter, now: Timestamp) -> Result<RequestFilter> {
        require(p.role.may_read_requests(), "reading requests", p)?;
        let units = match q {
            Queue::MyUnits => self.store.units_of(p.user).await?,
            _ => Vec::new(),
        };
        let mut f = queue_filter(p.agency, p.user, units, q, f, now);
        if q == Queue::Mine {
            f.also_owners = self.store.away_delegators(p.agency, &p.username, now).await?;
        }
        Ok(f)
    }

    /// One page of a queue (see [`Queue`]); `f` adds filters and the sort.
    pub async fn queue(
        &self,
        p: &Principal,
        q: Queue,
        f: RequestFilter,
        now: Timestamp,
    ) -> Result<Page<RequestSummary>> {
        let f = self.queue_filter(p, q, f, now).await?;
        let mut page = self.store.request_summaries(&f, now).await?;
        page.items
            .retain(|s| crate::markings::admits_request(p, s.requesting_agency, s.requested_agency, &s.marking));
        Ok(page)
    }

    /// How many requests each of the caller's queues holds (each stops at
    /// [`QueueCounts::CAP`]). Counts leave out nothing the marking hides from the caller
    /// except TLP:RED requests naming other users, which are rare; see docs/queues.md.
    /// The six counts and the unread notifications run side by side (each on its own
    /// connection of the pool).
    pub async fn queue_counts(&self, p: &Principal, now: Timestamp) -> Result<QueueCounts> {
        require(p.role.may_read_requests(), "reading requests", p)?;
        let cap = QueueCounts::CAP;
        let units = self.store.units_of(p.user).await?;
        let away = self.store.away_delegators(p.agency, &p.username, now).await?;
        let filters: Vec<RequestFilter> = COUNTED
            .iter()
            .map(|q| {
                let mut f = queue_filter(p.agency, p.user, units.clone(), *q, RequestFilter::default(), now);
                if *q == Queue::Mine {
                    f.also_owners = away.clone();
                }
                f
            })
            .collect();
        let counts = futures_util::future::try_join_all(filters.iter().map(|f| self.store.count_matching(f, cap)));
        let unread = self.store.unread_count(p.user, i64::try_from(cap).unwrap_or(i64::MAX));
        let (counts, unread) = tokio::try_join!(counts, unread)?;
        let mut c = QueueCounts {
            cap,
            unread_notifications: unread,
            ..Default::default()
        };
        for (q, n) in COUNTED.iter().zip(counts) {
            match q {
                Queue::Mine => c.mine = n,
                Queue::MyUnits => c.my_units = n,
                Queue::WaitingOnUs => c.waiting_on_us = n,
                Queue::WaitingOnPartner => c.waiting_on_partner = n,
                Queue::Overdue => c.overdue = n,
                Queue::Unassigned => c.unassigned_incoming = n,
                _ => {}
            }
        }
        Ok(c)
    }

    /// The caller's home page: the lists the role starts with. The desk: unassigned incoming
    /// requests and what falls due before `shift_end` (default: 12 hours from now); officers:
    /// their own requests by due date, their drafts and what waits on the partner; legal
    /// reviewers: requests in review or waiting for acceptance; supervisors: overdue, then
    /// unassigned incoming, then what waits on us by due date. The counts and the lists are
    /// read side by side.
    pub async fn home(&self, p: &Principal, shift_end: Option<Timestamp>, now: Timestamp) -> Result<Home> {
        require(p.role.may_read_requests(), "reading requests", p)?;
        let plan = home_plan(p.role, shift_end, now);
        let sections = futures_util::future::try_join_all(plan.into_iter().map(|(name, queue, f)| async move {
            let items = self.queue(p, queue, f, now).await?.items;
            Ok::<_, ServiceError>(HomeSection { name, queue, items })
        }));
        let (counts, sections) = tokio::try_join!(self.queue_counts(p, now), sections)?;
        Ok(Home {
            role: p.role,
            counts,
            sections,
        })
    }

    // ---- the inbox ----

    /// The caller's notifications, newest first. A line about a request the caller may no
    /// longer see (its marking changed) is left out.
    pub async fn notifications(
        &self,
        p: &Principal,
        unread: bool,
        before: Option<NotificationId>,
        limit: u32,
        now: Timestamp,
    ) -> Result<Vec<Notification>> {
        let items = self
            .store
            .notifications(p.user, unread, before, i64::from(limit.clamp(1, 200)))
            .await?;
        let mut out = Vec::with_capacity(items.len());
        for n in items {
            match n.request {
                Some(r) if self.visible(p, r, now).await.is_err() => {}
                _ => out.push(n),
            }
        }
        Ok(out)
    }

    /// Marks one of the caller's notifications read, or all of them.
    pub async fn mark_read(&self, p: &Principal, which: Option<NotificationId>, now: Timestamp) -> Result<u64> {
        Ok(self.store.mark_read(p.user, which, now).await?)
    }
}

/// The filter of queue `q` for `user` of `agency` (whose units are `units`), on top of `f`:
/// what [`Node::queue`] lists and counts (the benchmark times the same filters).
pub fn queue_filter(
    agency: liaison_core::AgencyId,
    user: liaison_core::UserId,
    units: Vec<UnitId>,
    q: Queue,
    mut f: RequestFilter,
    now: Timestamp,
) -> RequestFilter {
    f.visible_to = Some(agency);
    if f.limit == 0 {
        f.limit = 50;
    }
    match q {
        Queue::Mine => f.owner = Some(user),
        Queue::MyUnits => {
            // No unit: nothing, rather than everything.
            f.units = if units.is_empty() {
                vec![UnitId(uuid::Uuid::nil())]
            } else {
                units
            };
        }
        Queue::WaitingOnUs => f.awaiting = Some(Awaiting::Us),
        Queue::WaitingOnPartner => f.awaiting = Some(Awaiting::Partner),
        Queue::Unassigned => {
            f.awaiting = Some(Awaiting::Us);
            f.unowned = true;
            f.requested = Some(agency);
        }
        Queue::Watching => f.watcher = Some(user),
        Queue::Overdue => f.overdue_at = Some(now),
        Queue::All => {}
    }
    f
}

/// The queues [`Node::queue_counts`] counts, in its order.
pub const COUNTED: [Queue; 6] = [
    Queue::Mine,
    Queue::MyUnits,
    Queue::WaitingOnUs,
    Queue::WaitingOnPartner,
    Queue::Overdue,
    Queue::Unassigned,
];

/// The sections of a role's home page ([`Node::home`]): name, queue and filter. The desk:
/// unassigned incoming requests and what falls due before `shift_end` (default: 12 hours
/// from now); officers: their own requests by due date, their drafts and what waits on the
/// partner; legal reviewers: requests in review or waiting for acceptance; supervisors:
/// overdue, then unassigned incoming, then what waits on us and on the partner.
pub fn home_plan(
    role: Role,
    shift_end: Option<Timestamp>,
    now: Timestamp,
) -> Vec<(&'static str, Queue, RequestFilter)> {
    let due = |limit: u32| RequestFilter {
        sort: liaison_core::record::Sort::Due,
        limit,
        ..Default::default()
    };
    let end = shift_end.unwrap_or_else(|| now + jiff::SignedDuration::from_hours(12));
    match role {
        Role::Desk => vec![
            ("incoming", Queue::Unassigned, due(20)),
            (
                "due_this_shift",
                Queue::WaitingOnUs,
                RequestFilter {
                    due_before: Some(end),
                    ..due(20)
                },
            ),
            ("mine", Queue::Mine, due(20)),
        ],
        Role::Officer => vec![
            ("mine", Queue::Mine, due(20)),
            (
                "drafts",
                Queue::Mine,
                RequestFilter {
                    states: vec![State::Draft],
                    limit: 20,
                    ..Default::default()
                },
            ),
            ("waiting_on_partner", Queue::WaitingOnPartner, due(20)),
        ],
        Role::LegalReviewer => vec![
            (
                "review",
                Queue::WaitingOnUs,
                RequestFilter {
                    states: vec![State::Acknowledged, State::InReview],
                    ..due(20)
                },
            ),
            ("mine", Queue::Mine, due(20)),
        ],
        Role::Supervisor => vec![
            ("overdue", Queue::Overdue, due(20)),
            ("incoming", Queue::Unassigned, due(20)),
            ("waiting_on_us", Queue::WaitingOnUs, due(20)),
            ("waiting_on_partner", Queue::WaitingOnPartner, due(20)),
        ],
        _ => vec![
            ("watching", Queue::Watching, due(20)),
            ("overdue", Queue::Overdue, due(20)),
        ],
    }
}

/// The kinds of notification (docs/queues.md).
pub const NOTIFICATION_KINDS: &[&str] = &[
    "incoming",
    "partner_answer",
    "partner_change",
    "partner_comment",
    "comment",
    "change",
    "assigned",
    "deadline_approaching",
    "deadline_passed",
    "expired",
    "digest",
];

/// Kinds sent by e-mail unless the user chose others.
pub const DEFAULT_EMAIL_KINDS: &[&str] = &[
    "incoming",
    "partner_answer",
    "deadline_approaching",
    "deadline_passed",
    "expired",
];

fn field_error(field: &str, message: impl Into<String>) -> liaison_core::request::FieldError {
    liaison_core::request::FieldError {
        field: field.to_string(),
        message: message.into(),
    }
}

fn plausible_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !e
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'))
        && e.len() <= 254
}

/// What a request waits for, from `side`.
pub(crate) fn work_state_of(
    r: &liaison_core::request::AssistanceRequest,
    side: Side,
    assignment: Assignment,
    now: Timestamp,
) -> WorkState {
    let awaiting = r
        .state
        .awaits()
        .map(|s| if s == side { Awaiting::Us } else { Awaiting::Partner });
    let running = liaison_core::sla::running_deadline(r.state).and_then(|k| {
        let due = match k {
            DeadlineKind::Acknowledge => r.ack_due,
            DeadlineKind::Answer => r.answer_due,
            DeadlineKind::PreservationExpiry => r.preserved_until,
            DeadlineKind::Information => r.information_due,
        }?;
        Some((k, due))
    });
    WorkState {
        assignment,
        awaiting,
        deadline: running.map(|(k, _)| k),
        due_at: running.map(|(_, d)| d),
        due_in_ms: running.map(|(_, d)| d.as_millisecond() - now.as_millisecond()),
    }
}

impl Node {
    /// An agency's time zone (dates typed by its users are read there).
    pub async fn agency_zone(&self, agency: liaison_core::AgencyId) -> Result<jiff::tz::TimeZone> {
        let a = self.store.agency(agency).await?;
        liaison_core::directory::time_zone(&a.time_zone).map_err(|e| ServiceError::Internal(e.to_string()))
    }

    /// The caller's time zone: their preference, else their agency's (times they type, such
    /// as "due before 18:00", are read there).
    pub async fn user_zone(&self, p: &Principal) -> Result<jiff::tz::TimeZone> {
        if let Some(z) = self.store.prefs(p.user).await?.time_zone
            && let Ok(tz) = liaison_core::directory::time_zone(&z)
        {
            return Ok(tz);
        }
        self.agency_zone(p.agency).await
    }

    /// A user of the caller's agency, by name (for the owner filter).
    pub async fn colleague(&self, p: &Principal, field: &str, username: &str) -> Result<liaison_core::UserId> {
        match self.store.user_by_name(username.trim()).await {
            Ok(u) if u.agency == p.agency => Ok(u.id),
            _ => Err(ServiceError::invalid(
                field,
                format!("no user '{}' in your agency", username.trim()),
            )),
        }
    }

    /// A page of summaries as CSV (RFC 4180, cells safe for spreadsheets): reference, id,
    /// kind, urgency, state, the two agencies' codes, case reference, created, updated, the
    /// running deadline, when it falls due and by how much it is late, the TLP.
    pub async fn summaries_csv(&self, items: &[RequestSummary], now: Timestamp) -> Result<String> {
        use crate::report::csv_field as c;
        let mut codes: std::collections::HashMap<liaison_core::AgencyId, String> = Default::default();
        let mut out = String::from(
            "reference,id,kind,urgency,state,requesting,requested,case_reference,created_at,updated_at,deadline,due_at,late_by_hours,tlp\r\n",
        );
        for s in items {
            for a in [s.requesting_agency, s.requested_agency] {
                if let std::collections::hash_map::Entry::Vacant(e) = codes.entry(a) {
                    e.insert(
                        self.store
                            .agency(a)
                            .await
                            .map(|x| x.code)
                            .unwrap_or_else(|_| a.to_string()),
                    );
                }
            }
            let running = running_due_of(s);
            let late = running
                .filter(|(_, d)| *d < now)
                .map(|(_, d)| {
                    format!(
                        "{:.1}",
                        (now.as_millisecond() - d.as_millisecond()) as f64 / 3_600_000.0
                    )
                })
                .unwrap_or_default();
            out += &[
                c(&s.reference),
                s.id.to_string(),
                s.kind.to_string(),
                s.urgency.to_string(),
                s.state.to_string(),
                c(codes.get(&s.requesting_agency).map(String::as_str).unwrap_or_default()),
                c(codes.get(&s.requested_agency).map(String::as_str).unwrap_or_default()),
                c(&s.case_reference),
                s.created_at.to_string(),
                s.updated_at.to_string(),
                running.map(|(k, _)| k.as_str().to_string()).unwrap_or_default(),
                running.map(|(_, d)| d.to_string()).unwrap_or_default(),
                late,
                s.marking.tlp.as_str().to_string(),
            ]
            .join(",");
            out += "\r\n";
        }
        Ok(out)
    }
}

/// What falls due and by how much, as people say it: "answer due in 2 d 3 h", "acknowledge
/// 5 h late" (`lang` `zh-CN`: "答复 2天3小时后到期", "确认收到 已逾期5小时").
pub fn due_phrase(kind: DeadlineKind, due: Timestamp, now: Timestamp, lang: &str) -> String {
    let zh = lang.starts_with("zh");
    let what = match (kind, zh) {
        (DeadlineKind::Acknowledge, false) => "acknowledge",
        (DeadlineKind::Answer, false) => "answer",
        (DeadlineKind::PreservationExpiry, false) => "preservation ends",
        (DeadlineKind::Information, false) => "information",
        (DeadlineKind::Acknowledge, true) => "确认收到",
        (DeadlineKind::Answer, true) => "答复",
        (DeadlineKind::PreservationExpiry, true) => "保全期满",
        (DeadlineKind::Information, true) => "补充信息",
    };
    let ms = due.as_millisecond() - now.as_millisecond();
    let span = duration_words(ms.unsigned_abs(), zh);
    match (ms >= 0, zh) {
        (true, false) => format!("{what} due in {span}"),
        (false, false) => format!("{what} {span} late"),
        (true, true) => format!("{what} {span}后到期"),
        (false, true) => format!("{what} 已逾期{span}"),
    }
}

/// A duration as days and hours ("2 d 3 h", "45 min"; `zh`: "2天3小时", "45分钟").
pub fn duration_words(ms: u64, zh: bool) -> String {
    let minutes = ms / 60_000;
    let (d, h, m) = (minutes / 1440, (minutes % 1440) / 60, minutes % 60);
    match (d, h, zh) {
        (0, 0, false) => format!("{m} min"),
        (0, 0, true) => format!("{m}分钟"),
        (0, h, false) => format!("{h} h"),
        (0, h, true) => format!("{h}小时"),
        (d, 0, false) => format!("{d} d"),
        (d, 0, true) => format!("{d}天"),
        (d, h, false) => format!("{d} d {h} h"),
        (d, h, true) => format!("{d}天{h}小时"),
    }
}

/// The running deadline of a listed request: its kind and when it falls due.
pub fn running_due_of(s: &RequestSummary) -> Option<(DeadlineKind, Timestamp)> {
    let k = liaison_core::sla::running_deadline(s.state)?;
    let due = match k {
        DeadlineKind::Acknowledge => s.ack_due,
        DeadlineKind::Answer => s.answer_due,
        DeadlineKind::PreservationExpiry => s.preserved_until,
        DeadlineKind::Information => s.information_due,
    }?;
    Some((k, due))
}

/// A notification in words (`lang` `en` or `zh-CN`): what happened to which request. It
/// names the request by its reference and says no more than its kind, state and deadline —
/// never a comment's or a summary's text — so the same words may go out by e-mail.
pub fn notification_words(n: &Notification, now: Timestamp, lang: &str) -> String {
    notification_words_with(n, now, lang, &|_, v| v.replace('_', " "))
}

/// [`notification_words`] with the words of codes (a request's kind, urgency, state) from
/// `word(group, code)` — the web UI's catalog, where the CLI and e-mail show the codes.
pub fn notification_words_with(
    n: &Notification,
    now: Timestamp,
    lang: &str,
    word: &dyn Fn(&str, &str) -> String,
) -> String {
    let zh = lang.starts_with("zh");
    let d = &n.data;
    let s = |k: &str| {
        let v = d.get(k).and_then(|v| v.as_str()).unwrap_or_default();
        match k {
            "kind" => word("kind", v),
            "urgency" => word("urgency", v),
            "to" | "from" | "state" => word("state", v),
            "event" => word("event", v),
            _ => v.to_string(),
        }
    };
    let r = s("reference");
    let due = d
        .get("deadline")
        .and_then(|k| serde_json::from_value::<DeadlineKind>(k.clone()).ok())
        .zip(
            d.get("due_at")
                .and_then(|t| t.as_str())
                .and_then(|t| t.parse::<Timestamp>().ok()),
        )
        .map(|(k, t)| due_phrase(k, t, now, lang))
        .unwrap_or_default();
    match (n.kind.as_str(), zh) {
        ("incoming", false) => format!("{r}: new request from the partner ({}, {})", s("kind"), s("urgency")),
        ("incoming", true) => format!("{r}：对方发来新请求（{}，{}）", s("kind"), s("urgency")),
        ("partner_answer", false) => format!("{r}: the partner answered ({})", s("to")),
        ("partner_answer", true) => format!("{r}：对方已答复（{}）", s("to")),
        ("partner_change", false) => format!("{r}: the partner moved it to {}", s("to")),
        ("partner_change", true) => format!("{r}：对方将其改为 {}", s("to")),
        ("partner_comment", false) => format!("{r}: the partner commented"),
        ("partner_comment", true) => format!("{r}：对方发表了意见"),
        ("comment", false) => format!("{r}: {} commented", s("actor")),
        ("comment", true) => format!("{r}：{} 发表了意见", s("actor")),
        ("assigned", false) => format!("{r}: assignment changed by {}", s("actor")),
        ("assigned", true) => format!("{r}：{} 调整了承办人", s("actor")),
        ("deadline_approaching", _) | ("deadline_passed", _) => format!("{r}: {due}"),
        ("expired", false) => format!("{r}: expired ({})", s("from")),
        ("expired", true) => format!("{r}：已过期（{}）", s("from")),
        ("digest", _) => {
            let c = |k: &str| d.pointer(&format!("/counts/{k}")).and_then(|v| v.as_u64()).unwrap_or(0);
            if zh {
                format!(
                    "每日摘要：待我方处理 {}，逾期 {}，未分配的来件 {}，待对方处理 {}",
                    c("waiting_on_us"),
                    c("overdue"),
                    c("unassigned_incoming"),
                    c("waiting_on_partner")
                )
            } else {
                format!(
                    "Daily digest: {} waiting on us, {} overdue, {} unassigned incoming, {} waiting on the partner",
                    c("waiting_on_us"),
                    c("overdue"),
                    c("unassigned_incoming"),
                    c("waiting_on_partner")
                )
            }
        }
        (_, false) => {
            let to = s("to");
            if to.is_empty() {
                format!("{r}: {} by {}", s("event"), s("actor"))
            } else {
                format!("{r}: {} moved it to {to}", s("actor"))
            }
        }
        (_, true) => {
            let to = s("to");
            if to.is_empty() {
                format!("{r}：{}（{}）", s("event"), s("actor"))
            } else {
                format!("{r}：{} 将其改为 {to}", s("actor"))
            }
        }
    }
}
