//! Working the requests on this node: references, units, owners, watchers, users'
//! preferences, reminders, automatic expiry and the notification inbox. Local only: nothing
//! here is sent to a peer.

use crate::requests::{EVENT_COLS, EventRow, event_record, insert_event};
use crate::{Result, Store, StoreError, audit, ms, opt_ts, parse, ts, unique};
use liaison_core::lifecycle::State;
use liaison_core::record::{Assignment, EventRecord, Notification, Unit, UserPrefs};
use liaison_core::sla::DeadlineKind;
use liaison_core::{AgencyId, NotificationId, RequestId, UnitId, UserId};

/// Schema migration 23: indexes for the queues at a million requests (bench/queues/README.md).
/// - Each side's walks by due date, one per state (`Store::page_ids_taking`): the agency, the
///   state, the due key (`DUE_KEY` in requests.rs, spelled the same), the id; on the received
///   side also the sender, which its condition reads, so a count by state stays in the index.
/// - Each side's newest-first walk (agency, id) also carries what its conditions read (the
///   deadline, the state; the sender on the received side): "overdue" or "waiting on us",
///   newest first, step over the requests that do not match inside the index instead of
///   reading each row (SQLite: 20–55 ms → 2–22 ms), and PostgreSQL no longer prefers reading
///   and sorting a whole agency from a covering index (90–270 ms).
/// - `request_work` keeps a copy of its request's due key (`due`, kept by `SYNC_WORK_DUE`), so
///   an owner's or a unit's queue is one walk of its own index in either order; "nobody owns
///   it" is a probe of a partial index.
pub(crate) const MIGRATION_23: &str = r#"
DROP INDEX requests_requesting;
CREATE INDEX requests_requesting ON requests(requesting_agency, id, next_due, state);
DROP INDEX requests_received;
CREATE INDEX requests_received ON requests(requested_agency, id, requesting_agency, next_due, state) WHERE state <> 'draft';
CREATE INDEX requests_sent_due ON requests(requesting_agency, state, (COALESCE(next_due, 9223372036854775807)), id);
CREATE INDEX requests_received_due ON requests(requested_agency, state, (COALESCE(next_due, 9223372036854775807)), id, requesting_agency) WHERE state <> 'draft';
ALTER TABLE request_work ADD COLUMN due BIGINT NOT NULL DEFAULT 9223372036854775807;
UPDATE request_work SET due = COALESCE((SELECT next_due FROM requests WHERE requests.id = request_work.request_id), 9223372036854775807);
DROP INDEX request_work_owner;
DROP INDEX request_work_unit;
CREATE INDEX request_work_owner ON request_work(owner_id, agency_id, request_id);
CREATE INDEX request_work_owner_due ON request_work(owner_id, agency_id, due, request_id);
CREATE INDEX request_work_unit ON request_work(unit_id, agency_id, request_id);
CREATE INDEX request_work_unit_due ON request_work(unit_id, agency_id, due, request_id);
CREATE INDEX request_work_owned ON request_work(request_id, agency_id) WHERE owner_id IS NOT NULL
"#;

/// Schema migration 22: references, the information deadline, reminders, units, owners,
/// watchers, preferences and notifications. Existing requests get their references right
/// after it ([`backfill_references`]), in the same transaction.
pub(crate) const MIGRATION_22: &str = r#"
ALTER TABLE requests ADD COLUMN ref_prefix TEXT;
ALTER TABLE requests ADD COLUMN ref_seq BIGINT;
ALTER TABLE requests ADD COLUMN info_due BIGINT;
ALTER TABLE requests ADD COLUMN reminded_due BIGINT;
CREATE UNIQUE INDEX requests_reference ON requests(ref_prefix, ref_seq);
CREATE TABLE units (
    id TEXT PRIMARY KEY,
    agency_id TEXT NOT NULL REFERENCES agencies(id),
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (agency_id, code)
);
CREATE TABLE unit_members (
    unit_id TEXT NOT NULL REFERENCES units(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    PRIMARY KEY (unit_id, user_id)
);
CREATE INDEX unit_members_user ON unit_members(user_id);
CREATE TABLE request_work (
    request_id TEXT NOT NULL REFERENCES requests(id),
    agency_id TEXT NOT NULL REFERENCES agencies(id),
    owner_id TEXT REFERENCES users(id),
    unit_id TEXT REFERENCES units(id),
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (request_id, agency_id)
);
CREATE INDEX request_work_owner ON request_work(owner_id, request_id);
CREATE INDEX request_work_unit ON request_work(unit_id, request_id);
CREATE TABLE request_watchers (
    request_id TEXT NOT NULL REFERENCES requests(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    since BIGINT NOT NULL,
    PRIMARY KEY (request_id, user_id)
);
CREATE INDEX request_watchers_user ON request_watchers(user_id, request_id);
CREATE TABLE user_prefs (
    user_id TEXT PRIMARY KEY REFERENCES users(id),
    prefs TEXT NOT NULL
);
CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    event_id TEXT NOT NULL,
    request_id TEXT,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    read_at BIGINT,
    UNIQUE (event_id, user_id)
);
CREATE INDEX notifications_user ON notifications(user_id, id);
CREATE TABLE notify_outbox (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    target TEXT NOT NULL,
    dedupe TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_at BIGINT NOT NULL,
    state TEXT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    done_at BIGINT,
    UNIQUE (channel, target, dedupe)
);
CREATE INDEX notify_outbox_due ON notify_outbox(state, next_at)
"#;

/// Gives every request stored before schema migration 22 its reference, in the order they
/// were created: the requesting agency's code and the UTC year of creation, numbered from 1
/// (the time zone is not looked up here; new requests use the agency's).
pub(crate) async fn backfill_references(w: &mut crate::WriteTx) -> Result<u64> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT r.id, a.code, r.created_at FROM requests r JOIN agencies a ON a.id = r.requesting_agency \
         WHERE r.ref_seq IS NULL ORDER BY r.created_at, r.id",
    )
    .fetch_all(w.conn().await?)
    .await?;
    let mut next: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    let mut n = 0;
    for (id, code, created) in rows {
        let year = ts(created)?.to_zoned(jiff::tz::TimeZone::UTC).year();
        let prefix = format!("{}-{year:04}", code.to_ascii_uppercase());
        let seq = next.entry(prefix.clone()).or_insert(0);
        *seq += 1;
        sqlx::query("UPDATE requests SET ref_prefix = $1, ref_seq = $2 WHERE id = $3")
            .bind(&prefix)
            .bind(*seq)
            .bind(&id)
            .execute(w.conn().await?)
            .await?;
        n += 1;
    }
    Ok(n)
}

/// The smallest UUIDv7 text of the millisecond `ms`: history line ids are UUIDv7, so they
/// sort by the time they were made, and every line made at or after `ms` sorts after this.
pub fn event_id_floor(ms: i64) -> String {
    let ms = ms.max(0) as u64;
    format!("{:08x}-{:04x}-0000-0000-000000000000", ms >> 16, ms & 0xffff)
}

/// Schema migration 22 starts the notification fan-out from the moment of the upgrade:
/// history written before is not announced.
pub(crate) async fn start_notifications(w: &mut crate::WriteTx) -> Result<()> {
    let now = jiff::Timestamp::now().as_millisecond();
    sqlx::query("INSERT INTO settings (key, value) VALUES ('notify.cursor', $1) ON CONFLICT (key) DO NOTHING")
        .bind(event_id_floor(now))
        .execute(w.conn().await?)
        .await?;
    Ok(())
}

/// A reminder recorded by the deadline watcher: a deadline falls due within its lead time.
#[derive(Debug, Clone, PartialEq)]
pub struct Reminder {
    pub request: RequestId,
    pub deadline: DeadlineKind,
    pub due_at: jiff::Timestamp,
}

/// A request whose timed state ran out and that this node must expire (it serves the side
/// that owns the state).
#[derive(Debug, Clone, PartialEq)]
pub struct Lapsed {
    pub request: RequestId,
    pub state: State,
    pub deadline: DeadlineKind,
    pub due_at: jiff::Timestamp,
}

/// A notification to store: one line of one user's inbox, made from one history line.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    pub user: UserId,
    pub event: String,
    pub request: Option<RequestId>,
    pub at: jiff::Timestamp,
    pub kind: String,
    pub data: serde_json::Value,
}

type UnitRow = (String, String, String, String);

impl Store {
    // ---- units ----

    /// Creates a unit in an agency.
    pub async fn create_unit(
        &self,
        agency: AgencyId,
        code: &str,
        name: &str,
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<UnitId> {
        let id = UnitId::new();
        let mut w = self.write().await?;
        sqlx::query("INSERT INTO units (id, agency_id, code, name, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(id.to_string())
            .bind(agency.to_string())
            .bind(code)
            .bind(name)
            .bind(ms(now))
            .execute(w.conn().await?)
            .await
            .map_err(|e| unique(e, format!("unit '{code}'")))?;
        audit::append(
            &mut w,
            now,
            actor,
            "unit.create",
            &id.to_string(),
            &serde_json::json!({"agency": agency, "code": code, "name": name}),
        )
        .await?;
        w.commit().await?;
        Ok(id)
    }

    /// Adds (`add`) or removes a member of a unit.
    pub async fn set_unit_member(
        &self,
        unit: UnitId,
        user: UserId,
        add: bool,
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<()> {
        let (sql, action) = if add {
            (
                "INSERT INTO unit_members (unit_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                "unit.member.add",
            )
        } else {
            (
                "DELETE FROM unit_members WHERE unit_id = $1 AND user_id = $2",
                "unit.member.remove",
            )
        };
        self.link(sql, unit.to_string(), user, None, action, actor, now).await
    }

    /// Writes or removes one link row (`sql` binds `a`, the user, and `since` when given) with
    /// its audit entry (`action` on `a`, naming the user), in one transaction.
    #[allow(clippy::too_many_arguments)]
    async fn link(
        &self,
        sql: &'static str,
        a: String,
        user: UserId,
        since: Option<i64>,
        action: &str,
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<()> {
        let mut w = self.write().await?;
        let mut q = sqlx::query(sql).bind(a.clone()).bind(user.to_string());
        if let Some(t) = since {
            q = q.bind(t);
        }
        q.execute(w.conn().await?).await?;
        audit::append(&mut w, now, actor, action, &a, &serde_json::json!({"user": user})).await?;
        w.commit().await
    }

    /// The units of an agency with their members, by code.
    pub async fn units(&self, agency: AgencyId) -> Result<Vec<Unit>> {
        let rows: Vec<UnitRow> =
            sqlx::query_as("SELECT id, agency_id, code, name FROM units WHERE agency_id = $1 ORDER BY code")
                .bind(agency.to_string())
                .fetch_all(&self.pool)
                .await?;
        let members: Vec<(String, String)> = sqlx::query_as(
            "SELECT m.unit_id, u.username FROM unit_members m JOIN users u ON u.id = m.user_id \
             JOIN units n ON n.id = m.unit_id WHERE n.agency_id = $1 ORDER BY u.username",
        )
        .bind(agency.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(Unit {
                    members: members.iter().filter(|m| m.0 == r.0).map(|m| m.1.clone()).collect(),
                    id: parse(&r.0, "unit id")?,
                    agency: parse(&r.1, "agency id")?,
                    code: r.2,
                    name: r.3,
                })
            })
            .collect()
    }

    /// The units a user belongs to.
    pub async fn units_of(&self, user: UserId) -> Result<Vec<UnitId>> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT unit_id FROM unit_members WHERE user_id = $1")
            .bind(user.to_string())
            .fetch_all(&self.pool)
            .await?;
        ids.iter().map(|i| parse(i, "unit id")).collect()
    }

    // ---- owners and watchers ----

    /// Sets who works a request for `agency` (its owner and unit; `None` clears), with a
    /// history line (`assigned`) and an audit entry, in one transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn assign(
        &self,
        request: RequestId,
        agency: AgencyId,
        owner: Option<UserId>,
        unit: Option<UnitId>,
        note: Option<&str>,
        data: &serde_json::Value,
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<EventRecord> {
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO request_work (request_id, agency_id, owner_id, unit_id, updated_at, due) VALUES ($1, $2, $3, $4, $5, \
             COALESCE((SELECT next_due FROM requests WHERE id = $1), 9223372036854775807)) \
             ON CONFLICT (request_id, agency_id) DO UPDATE SET owner_id = excluded.owner_id, unit_id = excluded.unit_id, updated_at = excluded.updated_at",
        )
        .bind(request.to_string())
        .bind(agency.to_string())
        .bind(owner.map(|u| u.to_string()))
        .bind(unit.map(|u| u.to_string()))
        .bind(ms(now))
        .execute(w.conn().await?)
        .await?;
        let e = insert_event(&mut w, request, now, actor, "assigned", None, None, note, Some(data)).await?;
        audit::append(&mut w, now, actor, "request.assign", &request.to_string(), data).await?;
        w.commit().await?;
        Ok(e)
    }

    /// Who works a request on this node: one assignment per local agency that has one, with
    /// the watchers of each.
    pub async fn assignments(&self, request: RequestId) -> Result<Vec<Assignment>> {
        let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT w.agency_id, u.username, n.code FROM request_work w LEFT JOIN users u ON u.id = w.owner_id \
             LEFT JOIN units n ON n.id = w.unit_id WHERE w.request_id = $1 ORDER BY w.agency_id",
        )
        .bind(request.to_string())
        .fetch_all(&self.pool)
        .await?;
        let watchers: Vec<(String, String)> = sqlx::query_as(
            "SELECT u.agency_id, u.username FROM request_watchers r JOIN users u ON u.id = r.user_id \
             WHERE r.request_id = $1 ORDER BY u.username",
        )
        .bind(request.to_string())
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<Assignment> = Vec::new();
        for (agency, owner, unit) in rows {
            out.push(Assignment {
                agency: Some(parse(&agency, "agency id")?),
                owner,
                unit,
                watchers: watchers.iter().filter(|w| w.0 == agency).map(|w| w.1.clone()).collect(),
            });
        }
        // Watchers of an agency nobody assigned yet.
        for (agency, name) in &watchers {
            if out
                .iter()
                .any(|a| a.agency.map(|x| x.to_string()).as_deref() == Some(agency))
            {
                continue;
            }
            let a: AgencyId = parse(agency, "agency id")?;
            match out.iter_mut().find(|x| x.agency == Some(a)) {
                Some(x) => x.watchers.push(name.clone()),
                None => out.push(Assignment {
                    agency: Some(a),
                    owner: None,
                    unit: None,
                    watchers: vec![name.clone()],
                }),
            }
        }
        Ok(out)
    }

    /// The owner's and unit's ids of a request for `agency`, if assigned.
    pub async fn work_row(&self, request: RequestId, agency: AgencyId) -> Result<(Option<UserId>, Option<UnitId>)> {
        let row: Option<(Option<String>, Option<String>)> =
            sqlx::query_as("SELECT owner_id, unit_id FROM request_work WHERE request_id = $1 AND agency_id = $2")
                .bind(request.to_string())
                .bind(agency.to_string())
                .fetch_optional(&self.pool)
                .await?;
        let Some((o, u)) = row else { return Ok((None, None)) };
        Ok((
            o.map(|x| parse(&x, "user id")).transpose()?,
            u.map(|x| parse(&x, "unit id")).transpose()?,
        ))
    }

    /// Starts (`on`) or stops watching a request.
    pub async fn watch(
        &self,
        request: RequestId,
        user: UserId,
        on: bool,
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<()> {
        let (sql, action) = if on {
            (
                "INSERT INTO request_watchers (request_id, user_id, since) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                "request.watch",
            )
        } else {
            (
                "DELETE FROM request_watchers WHERE request_id = $1 AND user_id = $2",
                "request.unwatch",
            )
        };
        self.link(sql, request.to_string(), user, on.then(|| ms(now)), action, actor, now)
            .await
    }

    /// The ids of the users watching a request.
    pub async fn watchers(&self, request: RequestId) -> Result<Vec<UserId>> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT user_id FROM request_watchers WHERE request_id = $1")
            .bind(request.to_string())
            .fetch_all(&self.pool)
            .await?;
        ids.iter().map(|i| parse(i, "user id")).collect()
    }

    /// The ids of the members of a unit.
    pub async fn unit_members(&self, unit: UnitId) -> Result<Vec<UserId>> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT user_id FROM unit_members WHERE unit_id = $1")
            .bind(unit.to_string())
            .fetch_all(&self.pool)
            .await?;
        ids.iter().map(|i| parse(i, "user id")).collect()
    }

    // ---- preferences ----

    /// A user's preferences (defaults when never set).
    pub async fn prefs(&self, user: UserId) -> Result<UserPrefs> {
        let text: Option<String> = sqlx::query_scalar("SELECT prefs FROM user_prefs WHERE user_id = $1")
            .bind(user.to_string())
            .fetch_optional(&self.pool)
            .await?;
        let mut p: UserPrefs = match text {
            Some(t) => {
                serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("preferences of {user}: {e}")))?
            }
            None => UserPrefs::default(),
        };
        p.user = Some(user);
        Ok(p)
    }

    /// The active users of `agency` who are away at `now` and named `delegate` (a user name)
    /// to act for them: whose requests `delegate`'s "mine" also holds.
    pub async fn away_delegators(&self, agency: AgencyId, delegate: &str, now: jiff::Timestamp) -> Result<Vec<UserId>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT p.user_id, p.prefs FROM user_prefs p JOIN users u ON u.id = p.user_id \
             WHERE u.agency_id = $1 AND u.disabled = 0 AND p.prefs LIKE '%\"delegate\"%'",
        )
        .bind(agency.to_string())
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for (u, t) in rows {
            let p: UserPrefs =
                serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("preferences of {u}: {e}")))?;
            if p.delegate.as_deref() == Some(delegate) && p.away_until.is_some_and(|until| until > now) {
                out.push(parse(&u, "user id")?);
            }
        }
        Ok(out)
    }

    /// Replaces a user's preferences.
    pub async fn set_prefs(&self, user: UserId, prefs: &UserPrefs, actor: &str, now: jiff::Timestamp) -> Result<()> {
        let text = serde_json::to_string(prefs).map_err(StoreError::corrupt)?;
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO user_prefs (user_id, prefs) VALUES ($1, $2) ON CONFLICT (user_id) DO UPDATE SET prefs = excluded.prefs",
        )
        .bind(user.to_string())
        .bind(&text)
        .execute(w.conn().await?)
        .await?;
        audit::append(
            &mut w,
            now,
            actor,
            "user.prefs",
            &user.to_string(),
            &serde_json::json!({"prefs": prefs}),
        )
        .await?;
        w.commit().await
    }

    // ---- the deadline watcher ----

    /// Records a `reminder` history line for every request whose `kind` deadline falls due
    /// within `lead` of `now` and has not been reminded of for that due instant. A deadline
    /// is reminded of once (a new due instant, after a state change, is reminded of again).
    pub async fn record_reminders(
        &self,
        now: jiff::Timestamp,
        kind: DeadlineKind,
        lead: jiff::SignedDuration,
        batch: i64,
    ) -> Result<Vec<Reminder>> {
        let states = kind.states();
        if states.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (0..states.len()).map(|i| format!("${}", i + 4)).collect();
        let sql = format!(
            "SELECT id, next_due FROM requests WHERE next_due IS NOT NULL AND next_due >= $1 AND next_due < $2 \
             AND (reminded_due IS NULL OR reminded_due <> next_due) AND state IN ({}) ORDER BY next_due LIMIT $3",
            placeholders.join(", ")
        );
        let until = now.checked_add(lead).map_err(StoreError::corrupt)?;
        let mut w = self.write().await?;
        let mut q = sqlx::query_as::<_, (String, i64)>(sqlx::AssertSqlSafe(sql))
            .bind(ms(now))
            .bind(ms(until))
            .bind(batch);
        for s in &states {
            q = q.bind(s.as_str());
        }
        let rows = q.fetch_all(w.conn().await?).await?;
        let mut out = Vec::new();
        for (id, due) in rows {
            let rid: RequestId = parse(&id, "request id")?;
            sqlx::query("UPDATE requests SET reminded_due = $1 WHERE id = $2")
                .bind(due)
                .bind(&id)
                .execute(w.conn().await?)
                .await?;
            let due_ts = ts(due)?;
            let data = serde_json::json!({"deadline": kind, "due_at": due_ts});
            insert_event(
                &mut w,
                rid,
                now,
                "system",
                "reminder",
                None,
                None,
                Some(&format!("{} deadline falls due at {due_ts}", kind.as_str())),
                Some(&data),
            )
            .await?;
            audit::append(&mut w, now, "system", "request.remind", &id, &data).await?;
            out.push(Reminder {
                request: rid,
                deadline: kind,
                due_at: due_ts,
            });
        }
        w.commit().await?;
        Ok(out)
    }

    /// Requests whose timed state (`preserved`, `extended`, `needs_information`) ran out at
    /// or before `now` and whose requested agency this node serves: the requested side owns
    /// those expiries (docs/lifecycle.md). At most `batch`, soonest first.
    pub async fn lapsed(&self, now: jiff::Timestamp, batch: i64) -> Result<Vec<Lapsed>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT id, state, next_due FROM requests WHERE next_due IS NOT NULL AND next_due <= $1 \
             AND state IN ('preserved', 'extended', 'needs_information') \
             AND requested_agency IN (SELECT id FROM agencies WHERE node_id IS NULL) ORDER BY next_due LIMIT $2",
        )
        .bind(ms(now))
        .bind(batch)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, state, due)| {
                let state: State = parse(&state, "state")?;
                Ok(Lapsed {
                    request: parse(&id, "request id")?,
                    deadline: liaison_core::sla::running_deadline(state).unwrap_or(DeadlineKind::PreservationExpiry),
                    state,
                    due_at: ts(due)?,
                })
            })
            .collect()
    }

    // ---- notifications ----

    /// History lines after `after` (an event id; `None`: from the start), oldest first.
    pub async fn events_after(&self, after: Option<&str>, limit: i64) -> Result<Vec<EventRecord>> {
        let rows: Vec<EventRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{EVENT_COLS} WHERE id > $1 ORDER BY id LIMIT $2"
        )))
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(event_record).collect()
    }

    /// Stores notifications; one that exists already (same history line, same user) is left
    /// alone. Returns those stored now.
    pub async fn add_notifications(&self, items: &[NewNotification]) -> Result<Vec<(NotificationId, NewNotification)>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut w = self.write().await?;
        let mut out = Vec::new();
        for n in items {
            let id = NotificationId::new();
            let r = sqlx::query(
                "INSERT INTO notifications (id, user_id, event_id, request_id, at, kind, data) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (event_id, user_id) DO NOTHING",
            )
            .bind(id.to_string())
            .bind(n.user.to_string())
            .bind(&n.event)
            .bind(n.request.map(|r| r.to_string()))
            .bind(ms(n.at))
            .bind(&n.kind)
            .bind(n.data.to_string())
            .execute(w.conn().await?)
            .await?;
            if r.rows_affected() == 1 {
                out.push((id, n.clone()));
            }
        }
        w.commit().await?;
        Ok(out)
    }

    /// A user's notifications, newest first (`before`: a cursor, `unread`: only unread ones).
    pub async fn notifications(
        &self,
        user: UserId,
        unread: bool,
        before: Option<NotificationId>,
        limit: i64,
    ) -> Result<Vec<Notification>> {
        type Row = (String, i64, String, Option<String>, String, Option<i64>);
        let sql = format!(
            "SELECT id, at, kind, request_id, data, read_at FROM notifications WHERE user_id = $1 AND id < $2{} \
             ORDER BY id DESC LIMIT $3",
            if unread { " AND read_at IS NULL" } else { "" }
        );
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(user.to_string())
            .bind(before.map(|b| b.to_string()).unwrap_or_else(|| "~".into()))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(Notification {
                    id: parse(&r.0, "notification id")?,
                    at: ts(r.1)?,
                    kind: r.2,
                    request: r.3.map(|x| parse(&x, "request id")).transpose()?,
                    data: serde_json::from_str(&r.4).map_err(StoreError::corrupt)?,
                    read_at: opt_ts(r.5)?,
                })
            })
            .collect()
    }

    /// How many unread notifications a user has (counting at most `cap`).
    pub async fn unread_count(&self, user: UserId, cap: i64) -> Result<u64> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM (SELECT 1 FROM notifications WHERE user_id = $1 AND read_at IS NULL LIMIT $2) AS u",
        )
        .bind(user.to_string())
        .bind(cap)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Marks a user's notifications read: the one given, or all of them.
    pub async fn mark_read(&self, user: UserId, which: Option<NotificationId>, now: jiff::Timestamp) -> Result<u64> {
        let mut w = self.write().await?;
        let r = match which {
            Some(id) => {
                sqlx::query("UPDATE notifications SET read_at = $1 WHERE user_id = $2 AND id = $3 AND read_at IS NULL")
                    .bind(ms(now))
                    .bind(user.to_string())
                    .bind(id.to_string())
                    .execute(w.conn().await?)
                    .await?
            }
            None => {
                sqlx::query("UPDATE notifications SET read_at = $1 WHERE user_id = $2 AND read_at IS NULL")
                    .bind(ms(now))
                    .bind(user.to_string())
                    .execute(w.conn().await?)
                    .await?
            }
        };
        w.commit().await?;
        Ok(r.rows_affected())
    }

    /// Every user's preferences that were ever set.
    pub async fn all_prefs(&self) -> Result<Vec<UserPrefs>> {
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT user_id, prefs FROM user_prefs")
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|(u, t)| {
                let mut p: UserPrefs =
                    serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("preferences of {u}: {e}")))?;
                p.user = Some(parse(&u, "user id")?);
                Ok(p)
            })
            .collect()
    }

    /// Whether a user has the notification made from history line (or digest key) `event`.
    pub async fn has_notification(&self, user: UserId, event: &str) -> Result<bool> {
        let n: Option<String> = sqlx::query_scalar("SELECT id FROM notifications WHERE event_id = $1 AND user_id = $2")
            .bind(event)
            .bind(user.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(n.is_some())
    }

    // ---- the delivery outbox (e-mail, webhooks) ----

    /// Queues deliveries; one already queued (same channel, target and key) is left alone.
    /// Returns how many were queued now.
    pub async fn enqueue_deliveries(&self, items: &[NewDelivery], now: jiff::Timestamp) -> Result<usize> {
        if items.is_empty() {
            return Ok(0);
        }
        let mut w = self.write().await?;
        let mut n = 0;
        for d in items {
            let r = sqlx::query(
                "INSERT INTO notify_outbox (id, channel, target, dedupe, body, attempts, next_at, state, created_at) \
                 VALUES ($1, $2, $3, $4, $5, 0, $6, 'pending', $6) ON CONFLICT (channel, target, dedupe) DO NOTHING",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(&d.channel)
            .bind(&d.target)
            .bind(&d.dedupe)
            .bind(d.body.to_string())
            .bind(ms(now))
            .execute(w.conn().await?)
            .await?;
            n += r.rows_affected() as usize;
        }
        w.commit().await?;
        Ok(n)
    }

    /// Deliveries due at `now`, oldest first.
    pub async fn due_deliveries(&self, now: jiff::Timestamp, limit: i64) -> Result<Vec<Delivery>> {
        let rows: Vec<(String, String, String, String, String, i64)> = sqlx::query_as(
            "SELECT id, channel, target, dedupe, body, attempts FROM notify_outbox WHERE state = 'pending' AND next_at <= $1 \
             ORDER BY next_at, id LIMIT $2",
        )
        .bind(ms(now))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(Delivery {
                    id: r.0,
                    channel: r.1,
                    target: r.2,
                    dedupe: r.3,
                    body: serde_json::from_str(&r.4).map_err(StoreError::corrupt)?,
                    attempts: r.5,
                })
            })
            .collect()
    }

    /// Records an attempt: delivered (`Ok`), to try again at `retry_at`, or given up.
    pub async fn delivery_attempted(
        &self,
        id: &str,
        outcome: std::result::Result<(), (String, Option<jiff::Timestamp>)>,
        now: jiff::Timestamp,
    ) -> Result<()> {
        let mut w = self.write().await?;
        let q = match &outcome {
            Ok(()) => sqlx::query(
                "UPDATE notify_outbox SET state = 'sent', attempts = attempts + 1, done_at = $1, last_error = NULL WHERE id = $2",
            )
            .bind(ms(now))
            .bind(id),
            Err((e, Some(at))) => sqlx::query(
                "UPDATE notify_outbox SET attempts = attempts + 1, next_at = $1, last_error = $2 WHERE id = $3",
            )
            .bind(ms(*at))
            .bind(e)
            .bind(id),
            Err((e, None)) => sqlx::query(
                "UPDATE notify_outbox SET state = 'failed', attempts = attempts + 1, done_at = $1, last_error = $2 WHERE id = $3",
            )
            .bind(ms(now))
            .bind(e)
            .bind(id),
        };
        q.execute(w.conn().await?).await?;
        if let Err((e, None)) = &outcome {
            audit::append(
                &mut w,
                now,
                "system",
                "notify.failed",
                id,
                &serde_json::json!({"error": e}),
            )
            .await?;
        }
        w.commit().await
    }

    /// The outbox by state (pending, sent, failed) and the latest failures.
    pub async fn delivery_stats(&self) -> Result<(Vec<(String, String, i64)>, Vec<(String, String, String, String)>)> {
        let counts: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT channel, state, COUNT(*) FROM notify_outbox GROUP BY channel, state ORDER BY channel, state",
        )
        .fetch_all(&self.pool)
        .await?;
        let failed: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT channel, target, state, COALESCE(last_error, '') FROM notify_outbox WHERE last_error IS NOT NULL \
             ORDER BY created_at DESC LIMIT 20",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok((counts, failed))
    }
}

/// A delivery to queue: by e-mail (`target`: the address) or to a webhook (`target`: its
/// name); `dedupe` makes queueing it twice harmless.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    pub channel: String,
    pub target: String,
    pub dedupe: String,
    pub body: serde_json::Value,
}

/// A queued delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: String,
    pub channel: String,
    pub target: String,
    pub dedupe: String,
    pub body: serde_json::Value,
    pub attempts: i64,
}
