//! Schema migrations, written in the SQL both SQLite and PostgreSQL accept.

use crate::{Backend, Result, Store, StoreError};

/// Ordered migrations. Never edit one that has shipped; add a new one.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "foundation", FOUNDATION),
    (2, "federation", crate::federation::MIGRATION),
    (3, "intel", crate::intel::MIGRATION),
    (4, "listing-indexes", LISTING_INDEXES),
    (5, "overdue-cover", OVERDUE_COVER),
    (7, "intel-bulk", crate::intel::MIGRATION_7),
    (8, "assessments-apart", ASSESSMENTS_APART),
    (9, "token-parents", TOKEN_PARENTS),
    (10, "markings", MARKINGS),
    (11, "notices-federated", crate::notices::MIGRATION_11),
    (12, "intel-ingest-journal", crate::intel::MIGRATION_12),
    (13, "evidence", crate::evidence::MIGRATION_13),
    (14, "letters", crate::letters::MIGRATION_14),
    (15, "listing-side-state", LISTING_SIDE_STATE),
    (16, "evidence-transfer", crate::bulk::MIGRATION_16),
    (18, "notice-pap", crate::intel::MIGRATION_18),
    (19, "evidence-chunks", crate::evidence::MIGRATION_19),
    (20, "intel-ingested-by", crate::intel::MIGRATION_20),
    (21, "intel-changed-at", crate::intel::MIGRATION_21),
    (22, "work-queues", crate::work::MIGRATION_22),
    (23, "queue-indexes", crate::work::MIGRATION_23),
    (24, "search", crate::search::MIGRATION_24),
    (25, "search-windows", crate::search::MIGRATION_25),
    (26, "cases", crate::cases::MIGRATION_26),
    (27, "sign-in", crate::sign_in::MIGRATION_27),
    (28, "approval", crate::approval::MIGRATION_28),
    (29, "agency-name-zh", crate::directory::MIGRATION_29),
    (30, "search-words", ""),
];

/// An agency's listing is two ordered walks, one per side (`Store::page_ids`). Without these,
/// the received side walked `requests_requested` newest-first and read every row to skip the
/// sender's drafts (and, with a state filter, every other state): at 51,000 drafts the
/// "received" page read 51,000 rows (35 ms), and under the paced mix the node fell behind
/// within a minute (bench/intel/README.md). Partial indexes: a receiving agency never sees
/// drafts, and its side's query says `state <> 'draft'`, which implies their condition.
const LISTING_SIDE_STATE: &str = r#"
CREATE INDEX requests_received ON requests(requested_agency, id) WHERE state <> 'draft';
CREATE INDEX requests_received_state ON requests(requested_agency, state, id) WHERE state <> 'draft';
CREATE INDEX requests_requesting_state ON requests(requesting_agency, state, id)
"#;

/// A token issued by a user for themselves, with another token, names that token as its
/// parent: it never outlives it, and revoking the parent revokes it (and its own children).
const TOKEN_PARENTS: &str = r#"
ALTER TABLE tokens ADD COLUMN parent_id TEXT;
CREATE INDEX tokens_parent ON tokens(parent_id)
"#;

/// TLP 2.0 markings on requests (docs/markings.md): the level and the named users, as
/// columns so that listings can leave out what a reader may not see without reading bodies.
/// Existing requests get `TLP:AMBER+STRICT` (their two agencies only: who could read them
/// before), never CLEAR; the marking in a request's body, when there is one, is the same.
/// Comments carry theirs in the event's data; one without is read as `TLP:AMBER+STRICT`.
const MARKINGS: &str = r#"
ALTER TABLE requests ADD COLUMN tlp TEXT NOT NULL DEFAULT 'TLP:AMBER+STRICT';
ALTER TABLE requests ADD COLUMN named TEXT
"#;

/// A request's legal assessment (about 10 KB of JSON, written once on submission) moves to a
/// table of its own: SQLite and PostgreSQL rewrite a whole row on `UPDATE`, so every later
/// state change rewrote the assessment too (three overflow pages into the WAL per change on
/// SQLite). Measured in bench/api/README.md.
const ASSESSMENTS_APART: &str = r#"
CREATE TABLE request_assessments (
    request_id TEXT PRIMARY KEY REFERENCES requests(id),
    assessment TEXT NOT NULL
);
INSERT INTO request_assessments (request_id, assessment) SELECT id, assessment FROM requests WHERE assessment IS NOT NULL;
ALTER TABLE requests DROP COLUMN assessment
"#;

/// Indexes found by the listing benchmark (bench/api/README.md): open requests by state
/// (the overdue + state listing on PostgreSQL) and changes since an instant, newest first.
const LISTING_INDEXES: &str = r#"
CREATE INDEX requests_open_state ON requests(state, id) WHERE next_due IS NOT NULL;
CREATE INDEX requests_updated_id ON requests(updated_at, id)
"#;

/// The overdue listing on SQLite read every open request whose deadline passed from the table
/// (~46,000 rows of ~600 bytes at 1,000,000 requests) to return one page. This partial index
/// holds everything that listing filters and sorts on, so the page's ids come from the index
/// alone (bench/api/README.md). It replaces `requests_next_due` (same leading column, open
/// requests only); `requests_updated` is covered by `requests_updated_id`. Fewer indexes
/// also make every request write cheaper.
const OVERDUE_COVER: &str = r#"
CREATE INDEX requests_due_cover ON requests(next_due, requesting_agency, requested_agency, state, id) WHERE next_due IS NOT NULL;
DROP INDEX requests_next_due;
DROP INDEX requests_updated
"#;

const FOUNDATION: &str = r#"
CREATE TABLE jurisdictions (
    code TEXT PRIMARY KEY,
    name_en TEXT NOT NULL,
    name_zh TEXT NOT NULL
);
CREATE TABLE agencies (
    id TEXT PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name_en TEXT NOT NULL,
    name_native TEXT NOT NULL,
    jurisdiction TEXT NOT NULL REFERENCES jurisdictions(code),
    kind TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    node_id TEXT
);
CREATE TABLE contacts (
    id TEXT PRIMARY KEY,
    agency_id TEXT NOT NULL REFERENCES agencies(id),
    name TEXT NOT NULL,
    phone TEXT NOT NULL,
    email TEXT NOT NULL,
    languages TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    office_hours TEXT NOT NULL
);
CREATE INDEX contacts_agency ON contacts(agency_id);
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    agency_id TEXT NOT NULL REFERENCES agencies(id),
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    token_hash TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX tokens_user ON tokens(user_id);
CREATE TABLE requests (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    urgency TEXT NOT NULL,
    state TEXT NOT NULL,
    requesting_agency TEXT NOT NULL REFERENCES agencies(id),
    requested_agency TEXT NOT NULL REFERENCES agencies(id),
    case_reference TEXT NOT NULL,
    body TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    submitted_at BIGINT,
    acknowledged_at BIGINT,
    answered_at BIGINT,
    ack_due BIGINT,
    answer_due BIGINT,
    preserved_until BIGINT,
    next_due BIGINT,
    escalated_due BIGINT,
    assessment TEXT,
    rule_pack_version TEXT
);
CREATE INDEX requests_state ON requests(state, id);
CREATE INDEX requests_kind ON requests(kind, id);
CREATE INDEX requests_requesting ON requests(requesting_agency, id);
CREATE INDEX requests_requested ON requests(requested_agency, id);
CREATE INDEX requests_pair ON requests(requesting_agency, requested_agency, id);
CREATE INDEX requests_updated ON requests(updated_at);
CREATE INDEX requests_next_due ON requests(next_due);
CREATE TABLE request_events (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL REFERENCES requests(id),
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    event TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT,
    reason TEXT,
    data TEXT
);
CREATE INDEX request_events_request ON request_events(request_id, at);
CREATE TABLE escalations (
    request_id TEXT NOT NULL REFERENCES requests(id),
    deadline TEXT NOT NULL,
    due_at BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (request_id, deadline, due_at)
);
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
)
"#;

pub(crate) async fn migrate(store: &Store) -> Result<()> {
    let mut w = store.write().await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL)")
        .execute(w.conn().await?)
        .await?;
    if store.backend() == Backend::Postgres {
        // Two instances starting together must not both migrate.
        sqlx::query("LOCK TABLE schema_migrations IN EXCLUSIVE MODE")
            .execute(w.conn().await?)
            .await?;
    }
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
        .fetch_all(w.conn().await?)
        .await?;
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        for stmt in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            sqlx::query(sqlx::AssertSqlSafe(stmt.to_string()))
                .execute(w.conn().await?)
                .await
                .map_err(|e| StoreError::Corrupt(format!("migration {version} ({name}) failed: {e}")))?;
        }
        if *version == 22 {
            crate::work::start_notifications(&mut w).await?;
            let n = crate::work::backfill_references(&mut w).await?;
            if n > 0 {
                tracing::info!(
                    requests = n,
                    "schema migration 22: references given to existing requests"
                );
            }
        }
        if *version == 24 {
            // The index is filled by migration 25 (which runs next), in the form it defines.
            crate::search::create_text_index(&mut w).await?;
        }
        if *version == 25 {
            crate::search::create_windows(&mut w).await?;
            let (docs, keys) = crate::search::rebuild_in(&mut w).await?;
            if docs > 0 {
                tracing::info!(
                    docs,
                    keys,
                    "schema migration 25: existing requests, comments and files indexed for search"
                );
            }
        }
        if *version == 30 {
            let words = crate::search::own_vocabulary(&mut w).await?;
            if words > 0 {
                tracing::info!(
                    words,
                    "schema migration 30: the search vocabulary copied into its own table"
                );
            }
        }
        sqlx::query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)")
            .bind(*version)
            .bind(*name)
            .execute(w.conn().await?)
            .await?;
    }
    let known = MIGRATIONS.iter().map(|m| m.0).max().unwrap_or(0);
    if let Some(max) = applied.iter().max()
        && *max > known
    {
        return Err(StoreError::Corrupt(format!(
            "the database has schema version {max}, newer than this program knows ({known}); upgrade liaison"
        )));
    }
    w.commit().await
}
