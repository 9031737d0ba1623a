//! Joint cases (schema migration 26, docs/cases.md): the log of each case's events, and the
//! rows that make its members and links quick to find. The service decides every change
//! (`liaison_core::case::Case::apply`); this module writes what it decided in one transaction
//! with its audit entries and the envelopes it sends ([`Store::case_write`]).

use crate::writer::WriteTx;
use crate::{OutboxItem, Result, Store, StoreError, ms, ts};
use jiff::Timestamp;
use liaison_core::case::{CaseEvent, CaseState};

pub(crate) const MIGRATION_26: &str = r#"
CREATE TABLE cases (
    id TEXT CONSTRAINT cases_pk PRIMARY KEY,
    reference TEXT NOT NULL,
    name TEXT NOT NULL,
    lead TEXT NOT NULL,
    home TEXT,
    tlp TEXT NOT NULL,
    state TEXT NOT NULL,
    last_seq BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX cases_lead_reference ON cases(lead, reference);
CREATE TABLE case_events (
    case_id TEXT NOT NULL CONSTRAINT case_events_case_fk REFERENCES cases(id),
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    agency TEXT NOT NULL,
    kind TEXT NOT NULL,
    event TEXT NOT NULL,
    CONSTRAINT case_events_pk PRIMARY KEY (case_id, seq)
);
CREATE TABLE case_members (
    case_id TEXT NOT NULL CONSTRAINT case_members_case_fk REFERENCES cases(id),
    agency TEXT NOT NULL,
    status TEXT NOT NULL,
    since BIGINT NOT NULL,
    CONSTRAINT case_members_pk PRIMARY KEY (case_id, agency)
);
CREATE INDEX case_members_agency ON case_members(agency, case_id);
CREATE TABLE case_links (
    case_id TEXT NOT NULL CONSTRAINT case_links_case_fk REFERENCES cases(id),
    item_kind TEXT NOT NULL,
    item_id TEXT NOT NULL,
    linked_seq BIGINT NOT NULL,
    shared INTEGER NOT NULL,
    CONSTRAINT case_links_pk PRIMARY KEY (case_id, item_kind, item_id)
);
CREATE INDEX case_links_item ON case_links(item_kind, item_id);
CREATE TABLE case_actions (
    id TEXT CONSTRAINT case_actions_pk PRIMARY KEY,
    case_id TEXT NOT NULL CONSTRAINT case_actions_case_fk REFERENCES cases(id),
    agency TEXT NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    change_sha256 TEXT NOT NULL,
    at BIGINT NOT NULL,
    outcome TEXT,
    decided_at BIGINT
);
CREATE INDEX case_actions_case ON case_actions(case_id, at)
"#;

/// A case's row: what listings show without reading its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseRow {
    pub id: String,
    pub reference: String,
    pub name: String,
    pub lead: String,
    /// `None`: this node keeps the case (it serves the lead); else the peer node that does.
    pub home: Option<String>,
    pub tlp: String,
    pub state: CaseState,
    pub last_seq: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// An action this node's user asked of a case kept by another node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseAction {
    pub id: String,
    pub case_id: String,
    pub agency: String,
    pub actor: String,
    pub kind: String,
    /// SHA-256 of the change asked for (its JCS form): the event that answers the action must
    /// carry exactly this change.
    pub change_sha256: String,
    pub at: Timestamp,
    /// `None` while the home node has not answered; `applied`, or `refused: …`.
    pub outcome: Option<String>,
    pub decided_at: Option<Timestamp>,
}

/// One link as the rows keep it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseLinkRow {
    pub item_kind: String,
    pub item_id: String,
    pub linked_seq: u64,
    pub shared: bool,
}

/// What one change of a case writes, decided by the service.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseWrite {
    pub row: CaseRow,
    /// The case's `last_seq` the service decided from (`None`: a case new here). Another
    /// write in between is a `Conflict`.
    pub expected_last_seq: Option<u64>,
    /// Events to add; one already held as `withheld` is replaced by its full form.
    pub events: Vec<CaseEvent>,
    /// Every member (agency code, status, since), replacing the rows.
    pub members: Vec<(String, String, Timestamp)>,
    /// Every link, replacing the rows.
    pub links: Vec<CaseLinkRow>,
    /// Actions this node sends to the case's home node.
    pub actions: Vec<CaseAction>,
    /// Answers to this node's actions: (action id, outcome).
    pub decided: Vec<(String, String)>,
    pub outbox: Vec<OutboxItem>,
    /// Who writes (the audit entries' actor) and when.
    pub actor: String,
    pub at: Timestamp,
}

fn to_u64(v: i64, what: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what}: {v}")))
}

type RowTuple = (
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    i64,
    i64,
    i64,
);

fn case_row(r: RowTuple) -> Result<CaseRow> {
    Ok(CaseRow {
        id: r.0,
        reference: r.1,
        name: r.2,
        lead: r.3,
        home: r.4,
        tlp: r.5,
        state: crate::parse(&r.6, "case state")?,
        last_seq: to_u64(r.7, "case last_seq")?,
        created_at: ts(r.8)?,
        updated_at: ts(r.9)?,
    })
}

const ROW_COLS: &str =
    "c.id, c.reference, c.name, c.lead, c.home, c.tlp, c.state, c.last_seq, c.created_at, c.updated_at";

/// Writes one change of a case inside the caller's transaction (also an incoming
/// federation message's effect).
pub(crate) async fn case_write_in(w: &mut WriteTx, c: &CaseWrite) -> Result<()> {
    let r = &c.row;
    let last = i64::try_from(r.last_seq).map_err(|_| StoreError::Corrupt("case last_seq".into()))?;
    match c.expected_last_seq {
        None => {
            sqlx::query(
                "INSERT INTO cases (id, reference, name, lead, home, tlp, state, last_seq, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&r.id)
            .bind(&r.reference)
            .bind(&r.name)
            .bind(&r.lead)
            .bind(r.home.clone())
            .bind(&r.tlp)
            .bind(r.state.as_str())
            .bind(last)
            .bind(ms(r.created_at))
            .bind(ms(r.updated_at))
            .execute(w.conn().await?)
            .await
            .map_err(|e| crate::unique(e, format!("case {} ({} of {})", r.id, r.reference, r.lead)))?;
        }
        Some(expected) => {
            let expected = i64::try_from(expected).map_err(|_| StoreError::Corrupt("case last_seq".into()))?;
            let done = sqlx::query(
                "UPDATE cases SET name = $2, tlp = $3, state = $4, last_seq = $5, updated_at = $6 \
                 WHERE id = $1 AND last_seq = $7",
            )
            .bind(&r.id)
            .bind(&r.name)
            .bind(&r.tlp)
            .bind(r.state.as_str())
            .bind(last)
            .bind(ms(r.updated_at))
            .bind(expected)
            .execute(w.conn().await?)
            .await?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Conflict(format!(
                    "case {} changed while this change was decided; try again",
                    r.id
                )));
            }
        }
    }
    for ev in &c.events {
        let json = serde_json::to_string(ev).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let seq = i64::try_from(ev.seq).map_err(|_| StoreError::Corrupt("case event seq".into()))?;
        // A withheld link is replaced by its full form (a member that joined is sent the log
        // again); any other event already held stays as it is.
        sqlx::query("DELETE FROM case_events WHERE case_id = $1 AND seq = $2 AND kind = 'withheld'")
            .bind(&r.id)
            .bind(seq)
            .execute(w.conn().await?)
            .await?;
        let kind = ev.change.kind();
        sqlx::query(
            "INSERT INTO case_events (case_id, seq, at, agency, kind, event) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (case_id, seq) DO NOTHING",
        )
        .bind(&r.id)
        .bind(seq)
        .bind(ms(ev.at))
        .bind(&ev.agency)
        .bind(kind)
        .bind(&json)
        .execute(w.conn().await?)
        .await?;
        let detail = serde_json::json!({
            "seq": ev.seq,
            "agency": ev.agency,
            "by": ev.actor,
            "sha256": crate::audit::digest(&json),
        });
        crate::audit::append(w, c.at, &c.actor, &format!("case.{kind}"), &r.id, &detail).await?;
    }
    sqlx::query("DELETE FROM case_members WHERE case_id = $1")
        .bind(&r.id)
        .execute(w.conn().await?)
        .await?;
    for (agency, status, since) in &c.members {
        sqlx::query("INSERT INTO case_members (case_id, agency, status, since) VALUES ($1, $2, $3, $4)")
            .bind(&r.id)
            .bind(agency)
            .bind(status)
            .bind(ms(*since))
            .execute(w.conn().await?)
            .await?;
    }
    sqlx::query("DELETE FROM case_links WHERE case_id = $1")
        .bind(&r.id)
        .execute(w.conn().await?)
        .await?;
    for l in &c.links {
        let seq = i64::try_from(l.linked_seq).map_err(|_| StoreError::Corrupt("case link seq".into()))?;
        sqlx::query(
            "INSERT INTO case_links (case_id, item_kind, item_id, linked_seq, shared) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&r.id)
        .bind(&l.item_kind)
        .bind(&l.item_id)
        .bind(seq)
        .bind(i32::from(l.shared))
        .execute(w.conn().await?)
        .await?;
    }
    for a in &c.actions {
        sqlx::query(
            "INSERT INTO case_actions (id, case_id, agency, actor, kind, change_sha256, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&a.id)
        .bind(&a.case_id)
        .bind(&a.agency)
        .bind(&a.actor)
        .bind(&a.kind)
        .bind(&a.change_sha256)
        .bind(ms(a.at))
        .execute(w.conn().await?)
        .await?;
        crate::audit::append(
            w,
            a.at,
            &a.actor,
            "case.action",
            &a.case_id,
            &serde_json::json!({ "action": a.id, "kind": a.kind, "agency": a.agency }),
        )
        .await?;
    }
    for (id, outcome) in &c.decided {
        sqlx::query(
            "UPDATE case_actions SET outcome = $3, decided_at = $4 WHERE id = $1 AND case_id = $2 AND outcome IS NULL",
        )
        .bind(id)
        .bind(&r.id)
        .bind(outcome)
        .bind(ms(c.at))
        .execute(w.conn().await?)
        .await?;
    }
    crate::federation::write_outbox_in(w, &c.outbox).await?;
    Ok(())
}

impl Store {
    /// Writes one change of a case in one transaction: its row (checked against the
    /// `last_seq` the service decided from), its events with an audit entry each, its members
    /// and links, this node's actions and their answers, and the envelopes it sends.
    pub async fn case_write(&self, c: CaseWrite) -> Result<()> {
        self.writing(move |st| async move {
            let mut w = st.write().await?;
            case_write_in(&mut w, &c).await?;
            w.commit().await
        })
        .await
    }

    /// A case's row.
    pub async fn case_row(&self, id: &str) -> Result<CaseRow> {
        let sql = format!("SELECT {ROW_COLS} FROM cases c WHERE c.id = $1");
        let r: Option<RowTuple> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        case_row(r.ok_or_else(|| StoreError::NotFound(format!("case {id}")))?)
    }

    /// A case's row by its lead agency and reference.
    pub async fn case_by_reference(&self, lead: &str, reference: &str) -> Result<Option<CaseRow>> {
        let sql = format!("SELECT {ROW_COLS} FROM cases c WHERE c.lead = $1 AND c.reference = $2");
        let r: Option<RowTuple> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(lead)
            .bind(reference)
            .fetch_optional(&self.pool)
            .await?;
        r.map(case_row).transpose()
    }

    /// A case's log, in order.
    pub async fn case_events(&self, id: &str) -> Result<Vec<CaseEvent>> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT event FROM case_events WHERE case_id = $1 ORDER BY seq")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|(e,)| serde_json::from_str(&e).map_err(|e| StoreError::Corrupt(format!("case {id} event: {e}"))))
            .collect()
    }

    /// The cases in which `agency` was ever invited, newest change first, with its status.
    pub async fn cases_of_agency(&self, agency: &str) -> Result<Vec<(CaseRow, String)>> {
        let sql = format!(
            "SELECT {ROW_COLS}, m.status FROM case_members m JOIN cases c ON c.id = m.case_id \
             WHERE m.agency = $1 ORDER BY c.updated_at DESC, c.id DESC"
        );
        let rows: Vec<sqlx::any::AnyRow> = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(agency)
            .fetch_all(&self.pool)
            .await?;
        use sqlx::Row;
        rows.into_iter()
            .map(|r| {
                let t: RowTuple = (
                    r.try_get(0)?,
                    r.try_get(1)?,
                    r.try_get(2)?,
                    r.try_get(3)?,
                    r.try_get(4)?,
                    r.try_get(5)?,
                    r.try_get(6)?,
                    r.try_get(7)?,
                    r.try_get(8)?,
                    r.try_get(9)?,
                );
                let status: String = r.try_get(10)?;
                Ok((case_row(t)?, status))
            })
            .collect()
    }

    /// The cases an item is linked to (their ids).
    pub async fn cases_of_item(&self, kind: &str, id: &str) -> Result<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT case_id FROM case_links WHERE item_kind = $1 AND item_id = $2 ORDER BY case_id")
                .bind(kind)
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// This node's actions on a case, oldest first.
    pub async fn case_actions(&self, case_id: &str) -> Result<Vec<CaseAction>> {
        type T = (
            String,
            String,
            String,
            String,
            String,
            String,
            i64,
            Option<String>,
            Option<i64>,
        );
        let rows: Vec<T> = sqlx::query_as(
            "SELECT id, case_id, agency, actor, kind, change_sha256, at, outcome, decided_at FROM case_actions \
             WHERE case_id = $1 ORDER BY at, id",
        )
        .bind(case_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(CaseAction {
                    id: r.0,
                    case_id: r.1,
                    agency: r.2,
                    actor: r.3,
                    kind: r.4,
                    change_sha256: r.5,
                    at: ts(r.6)?,
                    outcome: r.7,
                    decided_at: r.8.map(ts).transpose()?,
                })
            })
            .collect()
    }
}
