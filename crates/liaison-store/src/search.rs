//! Search (schema migration 24, docs/search.md): the text index over request summaries, case
//! references, comments and evidence file names, the index of request targets by normalized
//! identifier, and saved searches.
//!
//! **Documents.** Each searchable item is one row of `search_docs` (`doc`, a number that grows
//! with every item written, so the newest items have the largest numbers), with the request it
//! belongs to, where it came from (`request`, `comment`, `file`), when it was written, the side
//! that wrote it and its own marking. Its text is indexed as the tokens of
//! `liaison_core::search::index_terms` (words; Chinese, Japanese and Korean as overlapping
//! pairs of characters), which both backends split at the spaces: on SQLite in the FTS5 table
//! `search_fts` (contentless, its rowid is `doc`), on PostgreSQL in the `tsvector` column
//! `search_docs.tsv` under a GIN index. The original text is not copied: snippets are made
//! from the rows themselves, for one page of results.
//!
//! **Who sees a document** is decided in SQL, from the request's live columns (its two
//! agencies, its state, its marking) and the document's own marking ([`doc_visible`]), so that
//! counts leave out what the reader may not see. It is the rule of `liaison-service`'s
//! `markings.rs` (`admits_request`, `admits_comment`, `admits_file`) written once more in SQL;
//! a test in the service compares the two over every combination.
//!
//! Every write path of a request, a comment and an evidence file adds its document in the same
//! transaction (`push_*`); a draft's edit replaces its request document and target keys.

use crate::requests::Arg;
use crate::writer::Batch;
use crate::{Backend, Result, Store, StoreError, WriteTx, ms, ts};
use liaison_core::record::{IncomingMatch, IndicatorMatch, SavedSearch, SearchSource};
use liaison_core::search::{Expansions, Query};
use liaison_core::{AgencyId, RequestId, UserId};
use sqlx::Row;

/// Migration 24 (`search`), the part both backends share. The text index itself is created by
/// [`create_text_index`] (FTS5 on SQLite, a `tsvector` column and GIN index on PostgreSQL),
/// and every existing request, comment and file is indexed by [`rebuild_in`].
pub(crate) const MIGRATION_24: &str = r#"
CREATE TABLE search_targets (
    ident TEXT NOT NULL,
    request_id TEXT NOT NULL CONSTRAINT search_targets_request_fk REFERENCES requests(id),
    CONSTRAINT search_targets_pk PRIMARY KEY (ident, request_id)
);
CREATE INDEX search_targets_request ON search_targets(request_id);
CREATE INDEX requests_case_reference ON requests(case_reference, id);
CREATE INDEX intel_inbox_item_value ON intel_inbox_item(value);
CREATE TABLE saved_searches (
    id TEXT CONSTRAINT saved_searches_pk PRIMARY KEY,
    user_id TEXT NOT NULL CONSTRAINT saved_searches_user_fk REFERENCES users(id),
    name TEXT NOT NULL,
    query TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT saved_searches_name UNIQUE (user_id, name)
)
"#;

/// Migration 25 (`search-windows`), the part both backends share: `search_spans` keeps, for
/// every run of 4,096 consecutive documents ([`SPAN_BITS`]), the earliest and latest instant
/// written in it, so that a search limited to a period reads only the documents of the spans
/// that overlap it. The rest ([`create_windows`]) is per backend, and the index is rebuilt.
pub(crate) const MIGRATION_25: &str = r#"
CREATE TABLE search_spans (
    span BIGINT CONSTRAINT search_spans_pk PRIMARY KEY,
    first_at BIGINT NOT NULL,
    last_at BIGINT NOT NULL
)
"#;

/// A span is the documents whose number shifted right by this many bits is the same.
pub(crate) const SPAN_BITS: u32 = 12;

/// The sizes (as bits) of the windows a PostgreSQL search walks newest first: each document's
/// `tsv` carries one token per level naming its window (`zzw10n…`, see [`window_token`]), so
/// that the GIN index gives only the matches inside a window, however common the words are.
/// Each step of a walk is at most four times the one before: a step reads the matches of its
/// window whole, so the last step, the one that fills the page or the count, reads at most
/// about four times what it needed (with three levels 16 times apart, a count of 1,000 for
/// a word in one text of a thousand read 6,000 matches: 110 ms).
pub(crate) const WINDOW_LEVELS: [u32; 6] = [10, 12, 14, 16, 18, 20];

/// The token naming the window of `level` bits that holds document `doc`.
pub(crate) fn window_token(level: u32, doc: i64) -> String {
    format!("zzw{level}n{}", doc >> level)
}

/// The window tokens of document `doc`, as the index appends them to its terms (PostgreSQL).
fn window_tokens(doc: i64) -> String {
    WINDOW_LEVELS
        .iter()
        .map(|l| format!(" {}", window_token(*l, doc)))
        .collect()
}

/// The rest of migration 25, per backend: the vocabulary of the index, from which a search
/// replaces a prefix by the few indexed words it starts (SQLite: an `fts5vocab` table over the
/// FTS5 index; PostgreSQL: a table of words in byte order, kept by every write). Both indexes
/// read a prefix by gathering every matching word's whole list of documents first, which for a
/// common prefix costs what reading the whole list costs; named words are read lazily.
pub(crate) async fn create_windows(w: &mut WriteTx) -> Result<()> {
    let stmts: &[&str] = match w.backend() {
        Backend::Sqlite => &["CREATE VIRTUAL TABLE search_vocab USING fts5vocab(search_fts, 'row')"],
        Backend::Postgres => {
            &["CREATE TABLE search_vocab (term TEXT COLLATE \"C\" CONSTRAINT search_vocab_pk PRIMARY KEY)"]
        }
    };
    for s in stmts {
        sqlx::query(sqlx::AssertSqlSafe(s.to_string()))
            .execute(w.conn().await?)
            .await
            .map_err(|e| StoreError::Corrupt(format!("schema migration 25 (search-windows) failed: {e}")))?;
    }
    Ok(())
}

/// Migration 30 (`search-words`), SQLite only: the vocabulary becomes a table of its own,
/// kept by every write as on PostgreSQL, instead of the `fts5vocab` table over the FTS5 index.
/// An `fts5vocab` row counts its word's documents as it is read, whether or not the query asks
/// for the count: expanding the prefix `account` read the lists of `account` and `accounts`
/// whole, 25 ms at 6,000,000 texts, on every search for it (bench/search/README.md). The words
/// already indexed are copied once; on PostgreSQL nothing changes.
pub(crate) async fn own_vocabulary(w: &mut WriteTx) -> Result<u64> {
    if w.backend() != Backend::Sqlite {
        return Ok(0);
    }
    let stmts = [
        "CREATE TABLE search_words (term TEXT CONSTRAINT search_words_pk PRIMARY KEY) WITHOUT ROWID",
        "INSERT INTO search_words (term) SELECT term FROM search_vocab",
        "DROP TABLE search_vocab",
        "ALTER TABLE search_words RENAME TO search_vocab",
    ];
    let mut words = 0;
    for s in stmts {
        let r = sqlx::query(sqlx::AssertSqlSafe(s.to_string()))
            .execute(w.conn().await?)
            .await
            .map_err(|e| StoreError::Corrupt(format!("schema migration 30 (search-words) failed: {e}")))?;
        if s.starts_with("INSERT") {
            words = r.rows_affected();
        }
    }
    Ok(words)
}

/// The distinct tokens of `terms` as a JSON list, for the vocabulary (SQLite's `json_each`).
fn terms_json(terms: &str) -> String {
    let words: std::collections::BTreeSet<&str> = terms.split_ascii_whitespace().collect();
    serde_json::to_string(&words).unwrap_or_else(|_| "[]".into())
}

/// Creates the backend's text index over `search_docs` (part of migration 24).
pub(crate) async fn create_text_index(w: &mut WriteTx) -> Result<()> {
    let stmts: &[&str] = match w.backend() {
        // `doc` is the rowid (`INTEGER PRIMARY KEY`): a hit of the FTS5 table is one seek into
        // `search_docs`. The tokens are kept in `terms` (the tokens of `index_terms` and the
        // agency tokens), which the FTS5 table indexes as its external content (stored once)
        // and which a listing's per-request test reads with `LIKE` ([`doc_matches`]).
        // unicode61 keeps the tokens as they are (no diacritics removed: both backends alike).
        Backend::Sqlite => &[
            "CREATE TABLE search_docs (
                doc INTEGER PRIMARY KEY,
                request_id TEXT NOT NULL REFERENCES requests(id),
                source TEXT NOT NULL,
                item_id TEXT NOT NULL,
                at BIGINT NOT NULL,
                side TEXT NOT NULL,
                tlp TEXT NOT NULL,
                named TEXT,
                terms TEXT NOT NULL
            )",
            "CREATE VIRTUAL TABLE search_fts USING fts5(terms, content='search_docs', content_rowid='doc', tokenize='unicode61 remove_diacritics 0')",
        ],
        // The statistics target of `tsv` is raised so that the planner knows rare words as rare
        // (with the default, any word outside the most common thousand was guessed at 0.5 % of
        // the rows, and a search for a rare word walked the newest texts one by one).
        Backend::Postgres => &[
            "CREATE TABLE search_docs (
                doc BIGINT CONSTRAINT search_docs_pk PRIMARY KEY,
                request_id TEXT NOT NULL CONSTRAINT search_docs_request_fk REFERENCES requests(id),
                source TEXT NOT NULL,
                item_id TEXT NOT NULL,
                at BIGINT NOT NULL,
                side TEXT NOT NULL,
                tlp TEXT NOT NULL,
                named TEXT,
                tsv tsvector NOT NULL
            )",
            "CREATE INDEX search_docs_tsv ON search_docs USING gin (tsv)",
            "ALTER TABLE search_docs ALTER COLUMN tsv SET STATISTICS 2000",
        ],
    };
    let common = [
        "CREATE INDEX search_docs_request ON search_docs(request_id, doc)",
        "CREATE INDEX search_docs_item ON search_docs(item_id)",
    ];
    for s in stmts.iter().chain(common.iter()) {
        sqlx::query(sqlx::AssertSqlSafe(s.to_string()))
            .execute(w.conn().await?)
            .await
            .map_err(|e| StoreError::Corrupt(format!("schema migration 24 (search) failed: {e}")))?;
    }
    Ok(())
}

/// The text of a request's own document: its reference, case reference and summary.
pub(crate) fn request_text(reference: &str, case_reference: &str, summary: &str) -> String {
    format!("{reference}\n{case_reference}\n{summary}")
}

/// The statement that adds a document on PostgreSQL ([`push_doc`]), `$8` its terms.
const PG_PUSH_DOC: &str = "WITH n AS (SELECT COALESCE(MAX(doc), 0) + 1 AS doc FROM search_docs), \
    d AS (INSERT INTO search_docs (doc, request_id, source, item_id, at, side, tlp, named, tsv) \
    SELECT n.doc, $1, $2, $3, $4, $5, $6, $7, to_tsvector('simple', \
    $8 || (SELECT ' zzag' || replace(requesting_agency, '-', '') || ' zzag' || replace(requested_agency, '-', '') FROM requests WHERE id = $1) \
    || ' zzw10n' || (n.doc >> 10) || ' zzw12n' || (n.doc >> 12) || ' zzw14n' || (n.doc >> 14) \
    || ' zzw16n' || (n.doc >> 16) || ' zzw18n' || (n.doc >> 18) || ' zzw20n' || (n.doc >> 20)) FROM n \
    RETURNING doc, at, tsv), \
    v AS (INSERT INTO search_vocab (term) SELECT unnest(tsvector_to_array(d.tsv)) FROM d ON CONFLICT DO NOTHING) \
    INSERT INTO search_spans (span, first_at, last_at) SELECT d.doc >> 12, d.at, d.at FROM d \
    ON CONFLICT (span) DO UPDATE SET first_at = LEAST(search_spans.first_at, excluded.first_at), \
    last_at = GREATEST(search_spans.last_at, excluded.last_at)";

/// Adds a document to `b` (its row and its index entry; the number is the next one).
#[allow(clippy::too_many_arguments)]
pub(crate) fn push_doc(
    b: &mut Batch,
    backend: Backend,
    request: RequestId,
    source: SearchSource,
    item_id: &str,
    at: jiff::Timestamp,
    side: &str,
    tlp: &str,
    named: Option<String>,
    text: &str,
) {
    let terms = liaison_core::search::index_terms(text);
    let row = vec![
        request.to_string().into(),
        source.as_str().into(),
        item_id.into(),
        ms(at).into(),
        side.into(),
        tlp.into(),
        named.into(),
    ];
    match backend {
        Backend::Sqlite => {
            let mut row = row;
            let words = terms_json(&terms);
            row.push(terms.into());
            // Its words (and its two agency tokens, as on PostgreSQL) into the vocabulary.
            b.push(
                "INSERT OR IGNORE INTO search_vocab (term) SELECT value FROM json_each($1) \
                 UNION ALL SELECT 'zzag' || replace(requesting_agency, '-', '') FROM requests WHERE id = $2 \
                 UNION ALL SELECT 'zzag' || replace(requested_agency, '-', '') FROM requests WHERE id = $2",
                vec![words.into(), request.to_string().into()],
            );
            b.push(
                "INSERT INTO search_docs (doc, request_id, source, item_id, at, side, tlp, named, terms) \
                 VALUES ((SELECT COALESCE(MAX(doc), 0) + 1 FROM search_docs), $1, $2, $3, $4, $5, $6, $7, \
                 $8 || (SELECT ' zzag' || replace(requesting_agency, '-', '') || ' zzag' || replace(requested_agency, '-', '') FROM requests WHERE id = $1))",
                row,
            );
            b.push(
                "INSERT INTO search_fts (rowid, terms) SELECT doc, terms FROM search_docs WHERE doc = (SELECT MAX(doc) FROM search_docs)",
                vec![],
            );
            // The document's span (`SPAN_BITS`).
            b.push(
                "INSERT INTO search_spans (span, first_at, last_at) SELECT doc >> 12, at, at FROM search_docs \
                 WHERE doc = (SELECT MAX(doc) FROM search_docs) ON CONFLICT (span) DO UPDATE \
                 SET first_at = min(search_spans.first_at, excluded.first_at), last_at = max(search_spans.last_at, excluded.last_at)",
                vec![],
            );
        }
        Backend::Postgres => {
            let mut row = row;
            row.push(terms.into());
            // One statement (one round trip inside the write lock): the document with its
            // agency tokens and the window tokens of `window_tokens` (`WINDOW_LEVELS`),
            // its words into the vocabulary, and its span (`SPAN_BITS`).
            b.push(PG_PUSH_DOC, row);
        }
    }
}

/// Adds the request document of a new request (its marking is the request's own, read from
/// the request's columns at search time).
pub(crate) fn push_request_doc(
    b: &mut Batch,
    backend: Backend,
    r: &liaison_core::request::AssistanceRequest,
    reference: &str,
) {
    let text = request_text(reference, &r.draft.case_reference, &r.draft.summary);
    push_doc(
        b,
        backend,
        r.id,
        SearchSource::Request,
        &r.id.to_string(),
        r.created_at,
        "requesting",
        "TLP:CLEAR",
        None,
        &text,
    );
}

/// Adds the target keys of a request (deduplicated).
pub(crate) fn push_targets(b: &mut Batch, id: RequestId, keys: &[String]) {
    for k in keys {
        b.push(
            "INSERT INTO search_targets (ident, request_id) VALUES ($1, $2)",
            vec![k.as_str().into(), id.to_string().into()],
        );
    }
}

/// The deduplicated keys of a draft's targets; national phone numbers are read in the
/// requesting agency's country (`country`).
pub(crate) fn target_keys(d: &liaison_core::request::RequestDraft, country: Option<&str>) -> Vec<String> {
    let mut keys: Vec<String> = d
        .targets
        .iter()
        .flat_map(|t| liaison_intel::ident::target_keys(&t.value, country))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The country of an agency (for national phone numbers), read inside a transaction; only
/// when a draft has a phone target.
pub(crate) async fn country_for(w: &mut WriteTx, d: &liaison_core::request::RequestDraft) -> Result<Option<String>> {
    let phone = d
        .targets
        .iter()
        .any(|t| matches!(t.value, liaison_core::request::TargetValue::Phone { .. }));
    if !phone {
        return Ok(None);
    }
    let c: Option<String> = sqlx::query_scalar("SELECT jurisdiction FROM agencies WHERE id = $1")
        .bind(d.requesting_agency.to_string())
        .fetch_optional(w.conn().await?)
        .await?;
    Ok(c)
}

/// Replaces a draft's request document and target keys after an edit (inside its transaction).
pub(crate) async fn reindex_draft_in(
    w: &mut WriteTx,
    id: RequestId,
    d: &liaison_core::request::RequestDraft,
    at: jiff::Timestamp,
) -> Result<()> {
    let reference: Option<(Option<String>, Option<i64>)> =
        sqlx::query_as("SELECT ref_prefix, ref_seq FROM requests WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(w.conn().await?)
            .await?;
    let (prefix, seq) = reference.unwrap_or((None, None));
    let reference = crate::reference_text(prefix.as_deref(), seq, &id.to_string());
    let country = country_for(w, d).await?;
    let backend = w.backend();
    let mut b = Batch::default();
    if backend == Backend::Sqlite {
        b.push(
            "INSERT INTO search_fts (search_fts, rowid, terms) SELECT 'delete', doc, terms FROM search_docs WHERE request_id = $1 AND source = 'request'",
            vec![id.to_string().into()],
        );
    }
    b.push(
        "DELETE FROM search_docs WHERE request_id = $1 AND source = 'request'",
        vec![id.to_string().into()],
    );
    b.push(
        "DELETE FROM search_targets WHERE request_id = $1",
        vec![id.to_string().into()],
    );
    let text = request_text(&reference, &d.case_reference, &d.summary);
    push_doc(
        &mut b,
        backend,
        id,
        SearchSource::Request,
        &id.to_string(),
        at,
        "requesting",
        "TLP:CLEAR",
        None,
        &text,
    );
    push_targets(&mut b, id, &target_keys(d, country.as_deref()));
    w.run(b).await?;
    Ok(())
}

/// The marking columns of a comment's document, from the comment's event data (`marking`,
/// `side`; a comment without them reads as `TLP:AMBER+STRICT` by the requesting side).
pub(crate) fn comment_cols(data: Option<&serde_json::Value>) -> (String, String, Option<String>) {
    let marking: liaison_core::Marking = data
        .and_then(|d| d.get("marking"))
        .and_then(|m| serde_json::from_value(m.clone()).ok())
        .unwrap_or_default();
    let side = match data.and_then(|d| d.get("side")).and_then(|s| s.as_str()) {
        Some("requested") => "requested",
        _ => "requesting",
    };
    let named =
        (!marking.recipients.is_empty()).then(|| serde_json::to_string(&marking.recipients).unwrap_or_default());
    (side.to_string(), marking.tlp.as_str().to_string(), named)
}

/// Who may see a document, as SQL over `d` (the document) and `r` (its request) for the
/// reader's agency `a` and the `LIKE` pattern `pat` of the reader's name as a JSON string
/// (`%"name"%`, see [`named_pattern`]): the request reaches its two agencies (the requested one
/// once it is no longer a draft); a `TLP:RED` request naming users reaches, at the requested
/// agency, only them; a document below RED (its own level or its request's) reaches both
/// agencies; a RED one reaches the side that wrote it and, at the other, its named users (all
/// of them when it names nobody).
pub(crate) fn doc_visible(a: &str, pat: &str) -> String {
    format!(
        "(r.requesting_agency = {a} OR (r.requested_agency = {a} AND r.state <> 'draft')) \
         AND (r.tlp <> 'TLP:RED' OR r.requesting_agency = {a} OR r.named IS NULL OR r.named LIKE {pat} ESCAPE '!') \
         AND ((d.tlp <> 'TLP:RED' AND r.tlp <> 'TLP:RED') \
              OR (CASE WHEN d.side = 'requested' THEN r.requested_agency ELSE r.requesting_agency END) = {a} \
              OR d.named IS NULL OR d.named LIKE {pat} ESCAPE '!')"
    )
}

/// The `LIKE` pattern that finds `user` in a JSON list of names (`["alice","bob"]`). User
/// names are letters, digits, `.`, `_` and `-` (`liaison-service`'s `admin.rs`), so the JSON
/// string is the name in quotes and matches one whole element; `_` is escaped.
pub(crate) fn named_pattern(user: &str) -> String {
    let mut p = String::with_capacity(user.len() + 4);
    p.push_str("%\"");
    for c in user.chars() {
        if matches!(c, '_' | '%' | '!') {
            p.push('!');
        }
        p.push(c);
    }
    p.push_str("\"%");
    p
}

/// The backend's condition "document `d` matches `q`" with `q`'s placeholder `qp` (the query
/// rendered by [`render`]).
/// On SQLite, document `d`'s terms are tested with `LIKE`, one pattern per term (see
/// [`like_patterns`]; `pats` are their placeholders, the excluded terms' after a `!`): the
/// tokens are letters and digits separated by single spaces, so a phrase is a run of them and a
/// prefix the start of one, exactly as FTS5 matches. (An FTS5 `MATCH` per document read the
/// term's whole list of documents each time: 600–740 ms for a page at 20,000 requests.)
pub(crate) fn doc_matches(backend: Backend, qp: &str, pats: &[(String, bool)]) -> String {
    match backend {
        Backend::Sqlite => pats
            .iter()
            .map(|(p, negated)| {
                let not = if *negated { "NOT " } else { "" };
                format!("(' ' || d.terms || ' ') {not}LIKE {p}")
            })
            .collect::<Vec<_>>()
            .join(" AND "),
        Backend::Postgres => format!("d.tsv @@ to_tsquery('simple', {qp})"),
    }
}

/// The `LIKE` patterns of `q`'s terms over `' ' || terms || ' '` (with whether each excludes).
pub(crate) fn like_patterns(q: &Query) -> Vec<(String, bool)> {
    q.terms
        .iter()
        .map(|t| {
            let end = if t.last_is_prefix { "%" } else { " %" };
            (format!("% {}{end}", t.tokens.join(" ")), t.negated)
        })
        .collect()
}

/// The token every document of a request carries for each of its two agencies (`zzag` and
/// the agency's id without dashes): a search adds the reader's to its words, so that the text
/// index itself leaves out the documents of requests between other agencies. It only narrows:
/// who may see a document is still decided by [`doc_visible`] (a draft's documents carry the
/// requested agency's token too). The SQL that writes it is spelled out in [`push_doc`].
pub(crate) fn agency_token(a: AgencyId) -> String {
    format!("zzag{}", a.to_string().replace('-', ""))
}

/// The tokens of both agencies of a request, as the index appends them to a document's terms.
fn agency_tokens(requesting: &str, requested: &str) -> String {
    format!(
        " zzag{} zzag{}",
        requesting.replace('-', ""),
        requested.replace('-', "")
    )
}

/// `p` in the backend's query language, limited to the documents of requests that involve
/// every agency of `agencies` (the reader's, and the counterpart a search names) and, when
/// given, to the window named by `window` (a token of [`window_token`]).
pub(crate) fn render(backend: Backend, p: &Prepared, agencies: &[AgencyId], window: Option<&str>) -> String {
    let mut tokens: Vec<String> = agencies.iter().map(|a| agency_token(*a)).collect();
    tokens.extend(window.map(str::to_string));
    match backend {
        Backend::Sqlite if tokens.is_empty() => p.q.to_fts5_with(&p.words),
        Backend::Sqlite => format!("({}) AND {}", p.q.to_fts5_with(&p.words), tokens.join(" AND ")),
        Backend::Postgres if tokens.is_empty() => p.q.to_tsquery_with(&p.words),
        Backend::Postgres => {
            let t: Vec<String> = tokens.iter().map(|t| format!("'{t}'")).collect();
            format!("({}) & {}", p.q.to_tsquery_with(&p.words), t.join(" & "))
        }
    }
}

/// PostgreSQL: the conditions "`d` carries these tokens" (agency or window tokens, or one
/// alternative of several `|`-joined), one `tsv @@` each with its placeholder from `next`.
/// Apart, not `&`-joined into the words' query: the GIN index then reads each as a scan key
/// of its own and skips every key ahead to where the others are (a window starting at text
/// 5,767,168 makes the others jump there), where within one query it walks the rarest
/// token's whole list (180,000 texts of a partner agency: 41 ms for a window, 2.7 ms apart).
pub(crate) fn pg_token_conds(tokens: &[String], mut next: impl FnMut(String) -> String) -> String {
    tokens
        .iter()
        .map(|t| format!(" AND d.tsv @@ to_tsquery('simple', {})", next(t.clone())))
        .collect()
}

/// The agency tokens most texts carry (PostgreSQL) and when they were read.
pub(crate) type CommonAgencies = (std::time::Instant, std::sync::Arc<Vec<String>>);

/// How long the list of agency tokens most texts carry is used before it is read again.
pub(crate) const COMMON_AGENCIES_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// The share of texts above which an agency's token is left out of a query (PostgreSQL).
pub(crate) const COMMON_AGENCY_SHARE: f64 = 0.3;

/// The most indexed words a prefix is replaced by ([`Store::prepare`]); a prefix that starts
/// more stays a prefix.
pub const MAX_EXPANSION: usize = 64;

/// A query made ready for the index by [`Store::prepare`].
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    /// The query, without excluded prefixes that start no indexed word.
    pub q: Query,
    /// The indexed words of its prefixes (those that start few enough).
    pub words: Expansions,
    /// A required prefix starts no indexed word: nothing matches.
    pub empty: bool,
    /// The agencies whose tokens the query adds (see [`Store::narrowing`]).
    pub agencies: Vec<AgencyId>,
}

/// A range of `doc` numbers: `lo` included, `hi` not (`None`: unbounded).
pub(crate) type DocRange = (Option<i64>, Option<i64>);

/// `range` narrowed to what follows the cursor of `s` (in its order).
fn after_cursor(s: &DocSearch<'_>, (lo, hi): DocRange) -> DocRange {
    match (s.after_doc, s.oldest_first) {
        (None, _) => (lo, hi),
        (Some(c), true) => (Some(lo.map_or(c + 1, |l| l.max(c + 1))), hi),
        (Some(c), false) => (lo, Some(hi.map_or(c, |h| h.min(c)))),
    }
}

/// A part of the documents, as a range of `doc` numbers (`lo` included, `hi` not) and the
/// token of the window that holds the range, when there is one.
#[derive(Debug, Clone, Default)]
pub(crate) struct Window {
    pub lo: Option<i64>,
    pub hi: Option<i64>,
    pub token: Option<String>,
}

/// The most documents a capped count reads before it answers "more" and the most a "few
/// matches" probe reads ([`Store::text_matches_few`]).
pub const FEW_MATCHES: u64 = 5_000;

/// One document found by [`Store::search_page`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocHit {
    pub doc: i64,
    pub request_id: RequestId,
    pub source: SearchSource,
    pub item_id: String,
    pub at: jiff::Timestamp,
}

/// What [`Store::search_page`] and [`Store::search_count`] look for.
#[derive(Debug, Clone)]
pub struct DocSearch<'a> {
    /// The reader: their agency and user name (markings that name users).
    pub agency: AgencyId,
    pub user: &'a str,
    pub query: &'a Query,
    /// Only documents from these sources (empty: all).
    pub sources: &'a [SearchSource],
    /// Conditions on the request (all optional).
    pub kind: Option<liaison_core::RequestKind>,
    pub states: &'a [liaison_core::State],
    pub counterpart: Option<AgencyId>,
    pub case_reference: Option<&'a str>,
    /// The request works for this user on the reader's side.
    pub owner: Option<UserId>,
    /// The document was written in this window.
    pub from: Option<jiff::Timestamp>,
    pub to: Option<jiff::Timestamp>,
    /// Oldest first instead of newest first.
    pub oldest_first: bool,
    /// Cursor: the `doc` of the last item of the previous page.
    pub after_doc: Option<i64>,
    pub limit: u32,
    /// Only texts of these requests (a target look-up's).
    pub requests: Option<&'a [RequestId]>,
}

impl Store {
    /// Re-creates the whole search index from the stored requests, comments and evidence
    /// files (after a restore, or to repair it); one transaction. Answers how many documents
    /// and target keys it wrote.
    pub async fn search_rebuild(&self) -> Result<(u64, u64)> {
        self.writing(move |s| async move {
            let mut w = s.write().await?;
            let n = rebuild_in(&mut w).await?;
            w.commit().await?;
            Ok(n)
        })
        .await
    }

    /// One page of documents matching `s` that the reader may see, newest (or oldest) first,
    /// with one more than the page when another follows.
    pub async fn search_page(&self, s: &DocSearch<'_>) -> Result<Vec<DocHit>> {
        let p = self.prepare_for(s).await?;
        let period = self.period_range(s).await?;
        self.page_in(s, &p, period).await
    }

    /// How many documents match `s` for its reader, counting at most `cap`.
    pub async fn search_count(&self, s: &DocSearch<'_>, cap: u64) -> Result<u64> {
        let p = self.prepare_for(s).await?;
        let period = self.period_range(s).await?;
        self.count_in(s, &p, period, cap).await
    }

    /// [`Store::search_page`] and [`Store::search_count`] together, side by side, with the
    /// query prepared and the period read once.
    pub async fn search_page_and_count(&self, s: &DocSearch<'_>, cap: u64) -> Result<(Vec<DocHit>, u64)> {
        let p = self.prepare_for(s).await?;
        let period = self.period_range(s).await?;
        tokio::try_join!(self.page_in(s, &p, period), self.count_in(s, &p, period, cap))
    }

    /// A page of `s` (see [`Store::search_page`]) within `period` (from [`Store::period_range`]).
    async fn page_in(&self, s: &DocSearch<'_>, p: &Prepared, period: Option<DocRange>) -> Result<Vec<DocHit>> {
        let take = u64::from(s.limit.clamp(1, 200)) + 1;
        let (Some(range), false) = (period, p.empty) else {
            return Ok(Vec::new());
        };
        let mut hits = Vec::new();
        for w in self.windows(s, after_cursor(s, range)).await? {
            let (sql, args) = self.search_sql(s, p, &w, Some(take - hits.len() as u64));
            let rows = crate::requests::bind_any(sqlx::query(sqlx::AssertSqlSafe(sql)), args)
                .fetch_all(&self.pool)
                .await?;
            for row in &rows {
                hits.push(DocHit {
                    doc: row.try_get(0)?,
                    request_id: crate::parse(&row.try_get::<String, _>(1)?, "search request id")?,
                    source: crate::parse(&row.try_get::<String, _>(2)?, "search source")?,
                    item_id: row.try_get(3)?,
                    at: ts(row.try_get(4)?)?,
                });
            }
            if hits.len() as u64 >= take {
                break;
            }
        }
        Ok(hits)
    }

    /// The capped count of `s` (see [`Store::search_count`]; its cursor plays no part) within
    /// `period`.
    async fn count_in(&self, s: &DocSearch<'_>, p: &Prepared, period: Option<DocRange>, cap: u64) -> Result<u64> {
        let (Some(range), false) = (period, p.empty) else {
            return Ok(0);
        };
        let mut n = 0u64;
        for w in self.windows(s, range).await? {
            let (sql, args) = self.search_sql(s, p, &w, None);
            let sql = format!("SELECT COUNT(*) FROM ({sql} LIMIT {}) AS m", cap - n);
            let c: i64 = crate::requests::bind_any(sqlx::query(sqlx::AssertSqlSafe(sql)), args)
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?;
            n += u64::try_from(c).unwrap_or(0);
            if n >= cap {
                break;
            }
        }
        Ok(n)
    }

    /// [benchmarks] The SQL and arguments of the first query of a page of `s` (for EXPLAIN):
    /// on PostgreSQL, its newest (or oldest) window.
    pub async fn search_page_sql(&self, s: &DocSearch<'_>) -> Result<(String, Vec<Arg>)> {
        let p = self.prepare_for(s).await?;
        let range = self
            .period_range(s)
            .await?
            .map_or((Some(0), Some(0)), |r| after_cursor(s, r));
        let w = self.windows(s, range).await?.into_iter().next().unwrap_or_default();
        Ok(self.search_sql(s, &p, &w, Some(u64::from(s.limit.clamp(1, 200)) + 1)))
    }

    /// The agencies of `agencies` whose token narrows a query. On PostgreSQL a token that most
    /// texts carry (the node's own agency, on a node that hosts one) narrows nothing, and the
    /// GIN index reads its whole list to intersect it (25 ms at 6,000,000 texts); the
    /// statistics of `search_docs.tsv` tell which tokens those are (read again every
    /// [`COMMON_AGENCIES_TTL`]). Leaving a token out never changes a result: who may see a text
    /// is decided in SQL.
    pub(crate) async fn narrowing(&self, agencies: &[AgencyId]) -> Result<Vec<AgencyId>> {
        if self.backend() == Backend::Sqlite || agencies.is_empty() {
            return Ok(agencies.to_vec());
        }
        let cached = self
            .common_agencies
            .lock()
            .ok()
            .and_then(|c| c.clone())
            .filter(|(at, _)| at.elapsed() < COMMON_AGENCIES_TTL)
            .map(|(_, v)| v);
        let common = match cached {
            Some(v) => v,
            None => {
                let rows: Vec<(String, f64)> = sqlx::query_as(
                    "SELECT u.e, CAST(u.f AS DOUBLE PRECISION) FROM pg_stats s, \
                     LATERAL unnest(CAST(CAST(s.most_common_elems AS TEXT) AS TEXT[]), s.most_common_elem_freqs) AS u(e, f) \
                     WHERE s.schemaname = current_schema() AND s.tablename = 'search_docs' AND s.attname = 'tsv' \
                     AND u.e LIKE 'zzag%' AND u.f IS NOT NULL",
                )
                .fetch_all(&self.pool)
                .await?;
                let v: std::sync::Arc<Vec<String>> = std::sync::Arc::new(
                    rows.into_iter()
                        .filter(|(_, f)| *f >= COMMON_AGENCY_SHARE)
                        .map(|(e, _)| e)
                        .collect(),
                );
                if let Ok(mut c) = self.common_agencies.lock() {
                    *c = Some((std::time::Instant::now(), v.clone()));
                }
                v
            }
        };
        Ok(agencies
            .iter()
            .copied()
            .filter(|a| !common.contains(&agency_token(*a)))
            .collect())
    }

    /// `q` made ready for the index: each prefix that starts at most [`MAX_EXPANSION`] indexed
    /// words is replaced by them (see [`create_windows`]); a required prefix that starts none
    /// makes the query match nothing (`empty`), an excluded one is dropped.
    pub(crate) async fn prepare(&self, q: &Query) -> Result<Prepared> {
        let mut words = Expansions::new();
        for prefix in q.prefixes() {
            let end = format!("{prefix}\u{10FFFF}");
            let found: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT term FROM search_vocab WHERE term >= $1 AND term < $2 ORDER BY term LIMIT {}",
                MAX_EXPANSION + 1
            )))
            .bind(prefix)
            .bind(&end)
            .fetch_all(&self.pool)
            .await?;
            if found.len() <= MAX_EXPANSION {
                words.insert(prefix.to_string(), found);
            }
        }
        let none = |t: &liaison_core::search::Term| {
            t.last_is_prefix && t.tokens.last().and_then(|l| words.get(l)).is_some_and(|w| w.is_empty())
        };
        let empty = q.terms.iter().any(|t| !t.negated && none(t));
        let q = Query {
            terms: q.terms.iter().filter(|t| !(t.negated && none(t))).cloned().collect(),
        };
        Ok(Prepared {
            q,
            words,
            empty,
            agencies: Vec::new(),
        })
    }

    /// [`Store::prepare`] for the search `s`: with the tokens of its reader's agency and its
    /// counterpart, where they narrow.
    async fn prepare_for(&self, s: &DocSearch<'_>) -> Result<Prepared> {
        let mut p = self.prepare(s.query).await?;
        let mut agencies = vec![s.agency];
        agencies.extend(s.counterpart);
        p.agencies = self.narrowing(&agencies).await?;
        Ok(p)
    }

    /// The documents a search may find, as a range of `doc` numbers (`None`: no document):
    /// the spans that overlap the period of `s` (whole spans, so a superset).
    async fn period_range(&self, s: &DocSearch<'_>) -> Result<Option<DocRange>> {
        if s.from.is_none() && s.to.is_none() {
            return Ok(Some((None, None)));
        }
        let (a, b): (Option<i64>, Option<i64>) =
            sqlx::query_as("SELECT MIN(span), MAX(span) FROM search_spans WHERE last_at >= $1 AND first_at < $2")
                .bind(s.from.map(ms).unwrap_or(i64::MIN))
                .bind(s.to.map(ms).unwrap_or(i64::MAX))
                .fetch_one(&self.pool)
                .await?;
        Ok(a.zip(b)
            .map(|(a, b)| (Some(a << SPAN_BITS), Some((b + 1) << SPAN_BITS))))
    }

    /// The queries of a search over `range`, in the order the results come: one on SQLite
    /// (FTS5 walks its matches in `doc` order and the query stops at its limit). On
    /// PostgreSQL, which reads a GIN index's matches whole before it can order them, a walk
    /// from the newest (or oldest) end of the range through windows of growing size, each
    /// named by its token ([`WINDOW_LEVELS`]), then the rest of the range: the caller stops
    /// when it has what it needs, so a common word reads only its matches in the newest
    /// window, and a rare one reaches the last query, which then finds little. Filters that
    /// select few requests (a case reference, an owner, a list of requests) read those
    /// requests' documents instead, in one query.
    async fn windows(&self, s: &DocSearch<'_>, (lo, hi): DocRange) -> Result<Vec<Window>> {
        let whole = Window { lo, hi, token: None };
        if self.backend() == Backend::Sqlite || s.case_reference.is_some() || s.owner.is_some() || s.requests.is_some()
        {
            return Ok(vec![whole]);
        }
        let (lo, hi) = match (lo, hi) {
            (Some(l), Some(h)) => (l, h),
            _ => {
                let (min, max): (Option<i64>, Option<i64>) =
                    sqlx::query_as("SELECT MIN(doc), MAX(doc) FROM search_docs")
                        .fetch_one(&self.pool)
                        .await?;
                let (Some(min), Some(max)) = (min, max) else {
                    return Ok(vec![whole]);
                };
                (lo.unwrap_or(min).max(min), hi.unwrap_or(max + 1).min(max + 1))
            }
        };
        let mut out = Vec::new();
        if lo >= hi {
            return Ok(out);
        }
        if s.oldest_first {
            let mut pos = lo;
            for level in WINDOW_LEVELS {
                let end = (((pos >> level) + 1) << level).min(hi);
                if pos < end {
                    out.push(Window {
                        lo: Some(pos),
                        hi: Some(end),
                        token: Some(window_token(level, pos)),
                    });
                    pos = end;
                }
            }
            if pos < hi {
                out.push(Window {
                    lo: Some(pos),
                    hi: Some(hi),
                    token: None,
                });
            }
        } else {
            let mut pos = hi;
            for level in WINDOW_LEVELS {
                let start = (((pos - 1) >> level) << level).max(lo);
                if start < pos {
                    out.push(Window {
                        lo: Some(start),
                        hi: Some(pos),
                        token: Some(window_token(level, pos - 1)),
                    });
                    pos = start;
                }
            }
            if lo < pos {
                out.push(Window {
                    lo: Some(lo),
                    hi: Some(pos),
                    token: None,
                });
            }
        }
        Ok(out)
    }

    /// The SQL of a search over one window (ordered, with `take` rows when given; unordered
    /// and without a limit for counts).
    fn search_sql(&self, s: &DocSearch<'_>, p: &Prepared, w: &Window, take: Option<u64>) -> (String, Vec<Arg>) {
        let backend = self.backend();
        let mut args: Vec<Arg> = Vec::new();
        let next = |args: &mut Vec<Arg>, a: Arg| {
            args.push(a);
            format!("${}", args.len())
        };
        let (qp, tokens) = match backend {
            Backend::Sqlite => (render(backend, p, &p.agencies, w.token.as_deref()), Vec::new()),
            Backend::Postgres => {
                let mut t: Vec<String> = p.agencies.iter().map(|a| format!("'{}'", agency_token(*a))).collect();
                t.extend(w.token.as_ref().map(|w| format!("'{w}'")));
                (render(backend, p, &[], None), t)
            }
        };
        let qp = next(&mut args, Arg::S(qp));
        let token_conds = pg_token_conds(&tokens, |t| next(&mut args, Arg::S(t)));
        let a = next(&mut args, Arg::S(s.agency.to_string()));
        let pat = next(&mut args, Arg::S(named_pattern(s.user)));
        let mut conds = doc_visible(&a, &pat);
        conds += &token_conds;
        // `col IN (…)` over the values, nothing when there are none.
        let in_list = |args: &mut Vec<Arg>, col: &str, values: Vec<&str>| -> String {
            if values.is_empty() {
                return String::new();
            }
            let ps: Vec<String> = values.into_iter().map(|v| next(args, Arg::S(v.to_string()))).collect();
            format!(" AND {col} IN ({})", ps.join(", "))
        };
        conds += &in_list(&mut args, "d.source", s.sources.iter().map(|x| x.as_str()).collect());
        conds += &in_list(&mut args, "r.kind", s.kind.iter().map(|k| k.as_str()).collect());
        conds += &in_list(&mut args, "r.state", s.states.iter().map(|x| x.as_str()).collect());
        if let Some(c) = s.counterpart {
            let cp = next(&mut args, Arg::S(c.to_string()));
            conds += &format!(
                " AND ((r.requesting_agency = {a} AND r.requested_agency = {cp}) OR (r.requested_agency = {a} AND r.requesting_agency = {cp}))"
            );
        }
        if let Some(c) = s.case_reference {
            conds += &format!(" AND r.case_reference = {}", next(&mut args, Arg::S(c.to_string())));
        }
        if let Some(u) = s.owner {
            let up = next(&mut args, Arg::S(u.to_string()));
            conds += &format!(
                " AND EXISTS (SELECT 1 FROM request_work o WHERE o.request_id = r.id AND o.agency_id = {a} AND o.owner_id = {up})"
            );
        }
        if let Some(ids) = s.requests {
            if ids.is_empty() {
                conds += " AND 1 = 0";
            } else {
                let ps: Vec<String> = ids.iter().map(|i| next(&mut args, Arg::S(i.to_string()))).collect();
                conds += &format!(" AND d.request_id IN ({})", ps.join(", "));
            }
        }
        if let Some(t) = s.from {
            conds += &format!(" AND d.at >= {}", next(&mut args, Arg::I(ms(t))));
        }
        if let Some(t) = s.to {
            conds += &format!(" AND d.at < {}", next(&mut args, Arg::I(ms(t))));
        }
        // The range is tested on the FTS5 table's rowid (FTS5 then reads only that part of
        // its lists) or on the primary key.
        let key = match backend {
            Backend::Sqlite => "f.rowid",
            Backend::Postgres => "d.doc",
        };
        if let Some(l) = w.lo {
            conds += &format!(" AND {key} >= {}", next(&mut args, Arg::I(l)));
        }
        if let Some(h) = w.hi {
            conds += &format!(" AND {key} < {}", next(&mut args, Arg::I(h)));
        }
        let dir = if s.oldest_first { "" } else { " DESC" };
        // The documents come from the text index in `doc` order (FTS5 walks its rowids in
        // either direction; PostgreSQL either walks the primary key and tests each row, or
        // reads the GIN index's matches in the window and sorts them, whichever it expects to
        // be cheaper); each is then checked against its request's row.
        let from = match backend {
            Backend::Sqlite => format!(
                "search_fts f JOIN search_docs d ON d.doc = f.rowid JOIN requests r ON r.id = d.request_id \
                 WHERE search_fts MATCH {qp} AND {conds}"
            ),
            Backend::Postgres => format!(
                "search_docs d JOIN requests r ON r.id = d.request_id WHERE d.tsv @@ to_tsquery('simple', {qp}) AND {conds}"
            ),
        };
        let sql = match take {
            Some(n) => format!(
                "SELECT d.doc, d.request_id, d.source, d.item_id, d.at FROM {from} ORDER BY {key}{dir} LIMIT {n}"
            ),
            None => format!("SELECT 1 FROM {from}"),
        };
        (sql, args)
    }

    /// Whether at most [`FEW_MATCHES`] documents match `q` (whoever may see them): then a
    /// listing filtered by `q` starts from the matches, otherwise it walks its requests in
    /// order and tests each. On SQLite the matches are counted (FTS5 reads only its lists, up
    /// to the cap). On PostgreSQL counting them costs one heap read each (50 ms for 5,000):
    /// there the matches among the newest 131,072 to 262,144 documents (one or two windows of
    /// the largest level) are counted and the whole estimated from them, exact when those
    /// windows hold every document. Either way only the listing's strategy depends on it.
    pub(crate) async fn text_matches_few(&self, p: &Prepared, agency: Option<AgencyId>) -> Result<bool> {
        if p.empty {
            return Ok(true);
        }
        let few = self.few_matches.load(std::sync::atomic::Ordering::Relaxed);
        let backend = self.backend();
        let agencies = self.narrowing(&agency.into_iter().collect::<Vec<_>>()).await?;
        if backend == Backend::Sqlite {
            let sql = format!(
                "SELECT COUNT(*) FROM (SELECT 1 FROM search_fts WHERE search_fts MATCH $1 LIMIT {}) AS m",
                few + 1
            );
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(render(backend, p, &agencies, None))
                .fetch_one(&self.pool)
                .await?;
            return Ok(u64::try_from(n).unwrap_or(u64::MAX) <= few);
        }
        let (min, max): (Option<i64>, Option<i64>) = sqlx::query_as("SELECT MIN(doc), MAX(doc) FROM search_docs")
            .fetch_one(&self.pool)
            .await?;
        let (Some(min), Some(max)) = (min, max) else {
            return Ok(true);
        };
        let level = WINDOW_LEVELS[WINDOW_LEVELS.len() - 1];
        let newest = max >> level;
        let mut start = newest << level;
        let mut tokens = vec![format!("'{}'", window_token(level, max))];
        if max - start < (1 << (level - 1)) && newest > 0 {
            start -= 1 << level;
            tokens.push(format!("'{}'", window_token(level, start)));
        }
        let start = start.max(min);
        let (sampled, all) = (
            u64::try_from(max - start + 1).unwrap_or(1),
            u64::try_from(max - min + 1).unwrap_or(1),
        );
        // At most `few` in all: at most this many in the sample (all of them when it is all).
        let limit = (u128::from(few) * u128::from(sampled)).div_ceil(u128::from(all.max(1)));
        let mut token_list: Vec<String> = agencies.iter().map(|a| format!("'{}'", agency_token(*a))).collect();
        token_list.push(tokens.join(" | "));
        let mut binds = vec![render(backend, p, &[], None)];
        let conds = pg_token_conds(&token_list, |t| {
            binds.push(t);
            format!("${}", binds.len())
        });
        let sql = format!(
            "SELECT COUNT(*) FROM (SELECT 1 FROM search_docs d WHERE d.tsv @@ to_tsquery('simple', $1){conds} \
             AND d.doc >= {start} LIMIT {}) AS m",
            limit + 1
        );
        let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql));
        for b in binds {
            query = query.bind(b);
        }
        let n: i64 = query.fetch_one(&self.pool).await?;
        Ok(u128::try_from(n).unwrap_or(u128::MAX) <= limit)
    }

    /// [tests, benchmarks] Sets where a listing filtered by words stops starting from the
    /// matches (default [`FEW_MATCHES`]; 0: always walk the listing and test each request).
    pub fn set_few_matches(&self, n: u64) {
        self.few_matches.store(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// The texts of the found documents, for snippets: a request's reference, case reference
    /// and summary (as one text, `request_text`), a comment's text, a file's name. Items no
    /// longer there are left out.
    pub async fn search_texts(&self, hits: &[DocHit]) -> Result<std::collections::HashMap<i64, String>> {
        let mut out = std::collections::HashMap::new();
        for h in hits {
            let text: Option<String> = match h.source {
                SearchSource::Request => {
                    let row: Option<(String, Option<String>, Option<i64>)> =
                        sqlx::query_as("SELECT body, ref_prefix, ref_seq FROM requests WHERE id = $1")
                            .bind(h.request_id.to_string())
                            .fetch_optional(&self.pool)
                            .await?;
                    match row {
                        Some((body, prefix, seq)) => {
                            let d: liaison_core::request::RequestDraft =
                                serde_json::from_str(&body).map_err(StoreError::corrupt)?;
                            let reference = crate::reference_text(prefix.as_deref(), seq, &h.request_id.to_string());
                            Some(request_text(&reference, &d.case_reference, &d.summary))
                        }
                        None => None,
                    }
                }
                SearchSource::Comment => sqlx::query_scalar("SELECT reason FROM request_events WHERE id = $1")
                    .bind(&h.item_id)
                    .fetch_optional(&self.pool)
                    .await?
                    .flatten(),
                SearchSource::File => {
                    sqlx::query_scalar("SELECT file_name FROM evidence_files WHERE id = $1")
                        .bind(&h.item_id)
                        .fetch_optional(&self.pool)
                        .await?
                }
            };
            if let Some(t) = text {
                out.insert(h.doc, t);
            }
        }
        Ok(out)
    }

    /// The requests (visible to `agency`/`user`) that have a target under one of `keys`
    /// (`(lo, hi)`, inclusive; `lo == hi` for one key), newest first, at most `take`.
    pub async fn target_requests(
        &self,
        keys: &[(String, String)],
        agency: AgencyId,
        user: &str,
        take: u64,
    ) -> Result<Vec<RequestId>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec![Arg::S(agency.to_string()), Arg::S(named_pattern(user))];
        let mut ors = Vec::new();
        for (lo, hi) in keys {
            args.push(Arg::S(lo.clone()));
            if lo == hi {
                ors.push(format!("t.ident = ${}", args.len()));
            } else {
                args.push(Arg::S(hi.clone()));
                ors.push(format!("t.ident BETWEEN ${} AND ${}", args.len() - 1, args.len()));
            }
        }
        let sql = format!(
            "SELECT DISTINCT r.id FROM search_targets t JOIN requests r ON r.id = t.request_id \
             WHERE ({}) AND {} ORDER BY r.id DESC LIMIT {take}",
            ors.join(" OR "),
            request_visible("$1", "$2")
        );
        let ids: Vec<String> = crate::requests::bind_any(sqlx::query(sqlx::AssertSqlSafe(sql)), args)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<std::result::Result<_, _>>()?;
        ids.iter().map(|i| crate::parse(i, "request id")).collect()
    }

    /// Saves a search for a user under a name (a second one of the same name replaces it).
    pub async fn saved_search_put(&self, s: &SavedSearch) -> Result<()> {
        let s = s.clone();
        self.writing(move |st| async move {
            let mut w = st.write().await?;
            sqlx::query("DELETE FROM saved_searches WHERE user_id = $1 AND name = $2")
                .bind(s.user.to_string())
                .bind(&s.name)
                .execute(w.conn().await?)
                .await?;
            sqlx::query(
                "INSERT INTO saved_searches (id, user_id, name, query, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&s.id)
            .bind(s.user.to_string())
            .bind(&s.name)
            .bind(&s.query)
            .bind(ms(s.created_at))
            .execute(w.conn().await?)
            .await?;
            w.commit().await
        })
        .await
    }

    /// A user's saved searches, by name.
    pub async fn saved_searches(&self, user: UserId) -> Result<Vec<SavedSearch>> {
        let rows: Vec<(String, String, String, i64)> =
            sqlx::query_as("SELECT id, name, query, created_at FROM saved_searches WHERE user_id = $1 ORDER BY name")
                .bind(user.to_string())
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(id, name, query, at)| {
                Ok(SavedSearch {
                    id,
                    user,
                    name,
                    query,
                    created_at: ts(at)?,
                })
            })
            .collect()
    }

    /// Deletes one of a user's saved searches (by id or name); whether there was one.
    pub async fn saved_search_delete(&self, user: UserId, id_or_name: &str) -> Result<bool> {
        let key = id_or_name.to_string();
        self.writing(move |st| async move {
            let mut w = st.write().await?;
            let r = sqlx::query("DELETE FROM saved_searches WHERE user_id = $1 AND (id = $2 OR name = $2)")
                .bind(user.to_string())
                .bind(&key)
                .execute(w.conn().await?)
                .await?;
            w.commit().await?;
            Ok(r.rows_affected() > 0)
        })
        .await
    }

    /// The size of the search index: documents and target keys.
    pub async fn search_size(&self) -> Result<(u64, u64)> {
        let docs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM search_docs")
            .fetch_one(&self.pool)
            .await?;
        let keys: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM search_targets")
            .fetch_one(&self.pool)
            .await?;
        Ok((u64::try_from(docs).unwrap_or(0), u64::try_from(keys).unwrap_or(0)))
    }
}

impl Store {
    /// The indicators under the exact `(kind, value)` pairs that `agency` (its code) ingested
    /// (or that were stored before the node recorded who ingested them), below `TLP:RED`, with
    /// the notices that listed them and that the agency issued or received (`issued`: also
    /// those it issued; otherwise only those addressed to it). At most 100.
    pub async fn indicator_matches(
        &self,
        pairs: &[(String, String)],
        agency: &str,
        issued: bool,
    ) -> Result<Vec<IndicatorMatch>> {
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec![Arg::S(format!("%,{},%", agency.replace(['%', '_', '!'], "")))];
        let ors: Vec<String> = pairs
            .iter()
            .map(|(k, v)| {
                args.push(Arg::S(k.clone()));
                args.push(Arg::S(v.clone()));
                format!("(kind = ${} AND value = ${})", args.len() - 1, args.len())
            })
            .collect();
        let sql = format!(
            "SELECT id, kind, value, classification, status, partner, last_seen, tlp FROM intel_indicator \
             WHERE ({}) AND tlp <> 'TLP:RED' AND (ingested_by IS NULL OR (',' || ingested_by || ',') LIKE $1 ESCAPE '!') \
             ORDER BY last_seen DESC LIMIT 100",
            ors.join(" OR ")
        );
        let rows = crate::requests::bind_any(sqlx::query(sqlx::AssertSqlSafe(sql)), args)
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.try_get(0)?;
            let notices: Vec<String> = sqlx::query_scalar(if issued {
                "SELECT DISTINCT n.id FROM intel_notice_item i JOIN intel_notice n ON n.id = i.notice_id \
                 WHERE i.indicator_id = $1 AND (n.issuer = $2 OR n.partner = $2) ORDER BY n.id"
            } else {
                "SELECT DISTINCT n.id FROM intel_notice_item i JOIN intel_notice n ON n.id = i.notice_id \
                 WHERE i.indicator_id = $1 AND n.partner = $2 ORDER BY n.id"
            })
            .bind(id)
            .bind(agency)
            .fetch_all(&self.pool)
            .await?;
            out.push(IndicatorMatch {
                kind: row.try_get(1)?,
                value: row.try_get(2)?,
                classification: row.try_get(3)?,
                status: row.try_get(4)?,
                partner: row.try_get(5)?,
                last_seen: ts(row.try_get(6)?)?,
                tlp: row.try_get(7)?,
                notices,
            });
        }
        Ok(out)
    }

    /// The items of notices other nodes sent `agency` (its code) under the `(kind, value)`
    /// pairs; at most 100, newest notice first.
    pub async fn incoming_matches(&self, pairs: &[(String, String)], agency: &str) -> Result<Vec<IncomingMatch>> {
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec![Arg::S(agency.to_string())];
        let ors: Vec<String> = pairs
            .iter()
            .map(|(k, v)| {
                args.push(Arg::S(k.clone()));
                args.push(Arg::S(v.clone()));
                format!("(i.kind = ${} AND i.value = ${})", args.len() - 1, args.len())
            })
            .collect();
        let sql = format!(
            "SELECT i.sender, i.notice_id, i.kind, i.value, i.status, i.tlp FROM intel_inbox_item i \
             JOIN intel_inbox_notice n ON n.sender = i.sender AND n.id = i.notice_id \
             WHERE n.partner = $1 AND ({}) ORDER BY n.issued_at DESC LIMIT 100",
            ors.join(" OR ")
        );
        let rows = crate::requests::bind_any(sqlx::query(sqlx::AssertSqlSafe(sql)), args)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(IncomingMatch {
                    sender: r.try_get(0)?,
                    notice: r.try_get(1)?,
                    kind: r.try_get(2)?,
                    value: r.try_get(3)?,
                    status: r.try_get(4)?,
                    tlp: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// How many requests visible to `agency`/`user` have a target under `keys`, at most `cap`.
    pub async fn target_count(&self, keys: &[(String, String)], agency: AgencyId, user: &str, cap: u64) -> Result<u64> {
        Ok(self.target_requests(keys, agency, user, cap).await?.len() as u64)
    }
}

/// Who may see a request, as SQL over `r` (the first two lines of [`doc_visible`]).
pub(crate) fn request_visible(a: &str, pat: &str) -> String {
    format!(
        "(r.requesting_agency = {a} OR (r.requested_agency = {a} AND r.state <> 'draft')) \
         AND (r.tlp <> 'TLP:RED' OR r.requesting_agency = {a} OR r.named IS NULL OR r.named LIKE {pat} ESCAPE '!')"
    )
}

/// How many texts the rebuild writes between two progress lines in the log.
const REBUILD_REPORT: u64 = 500_000;

/// The page cache of the write connection during a rebuild on SQLite, KiB (256 MiB).
const REBUILD_CACHE_KIB: u64 = 262_144;

/// How many rows the rebuild writes per statement.
const REBUILD_CHUNK: usize = 200;

/// The sources of the rebuild, each read in id order (UUIDv7: the order of creation) in
/// chunks, as (order id, at, request, item, text, event data, side, tlp, named, reference prefix,
/// reference number).
const REBUILD_SOURCES: [(&str, &str); 3] = [
    (
        "request",
        "SELECT id, created_at, id, id, body, CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), \
         ref_prefix, ref_seq, requesting_agency, requested_agency \
         FROM requests WHERE id > $1 ORDER BY id LIMIT 1000",
    ),
    (
        "comment",
        "SELECT e.id, e.at, e.request_id, e.id, e.reason, e.data, CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), \
         CAST(NULL AS TEXT), CAST(NULL AS BIGINT), r.requesting_agency, r.requested_agency \
         FROM request_events e JOIN requests r ON r.id = e.request_id WHERE e.event = 'comment' AND e.id > $1 ORDER BY e.id LIMIT 1000",
    ),
    (
        "file",
        "SELECT f.id, f.uploaded_at, f.request_id, f.id, f.file_name, CAST(NULL AS TEXT), f.side, f.tlp, f.named, \
         CAST(NULL AS TEXT), CAST(NULL AS BIGINT), r.requesting_agency, r.requested_agency \
         FROM evidence_files f JOIN requests r ON r.id = f.request_id WHERE f.id > $1 ORDER BY f.id LIMIT 1000",
    ),
];

type SourceRow = (
    String,
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    String,
    String,
);

/// Deletes the whole index and writes it again from the stored rows, in the order the items
/// were created (the `doc` numbers follow it; the three sources are merged by id, UUIDv7).
/// Reads and writes in chunks: memory stays bounded whatever the database holds. Answers
/// (documents, target keys).
pub(crate) async fn rebuild_in(w: &mut WriteTx) -> Result<(u64, u64)> {
    let backend = w.backend();
    // A bulk load: the secondary indexes (and on SQLite the FTS5 index) are dropped, the rows
    // written, and the indexes built once at the end, which is many times faster than keeping
    // them up to date row by row (at 6,000,000 texts the random inserts into
    // `search_docs(request_id, doc)` and the GIN index dominated). The transaction hides it all.
    let wipe: &[&str] = match backend {
        Backend::Sqlite => &[
            "INSERT INTO search_fts (search_fts) VALUES ('delete-all')",
            "DELETE FROM search_docs",
            "DELETE FROM search_targets",
            "DELETE FROM search_spans",
            "DROP INDEX IF EXISTS search_docs_request",
            "DROP INDEX IF EXISTS search_docs_item",
        ],
        Backend::Postgres => &[
            "TRUNCATE search_docs, search_targets, search_spans, search_vocab",
            "DROP INDEX IF EXISTS search_docs_tsv",
            "DROP INDEX IF EXISTS search_docs_request",
            "DROP INDEX IF EXISTS search_docs_item",
        ],
    };
    for s in wipe {
        sqlx::query(sqlx::AssertSqlSafe(s.to_string()))
            .execute(w.conn().await?)
            .await?;
    }
    // SQLite: the vocabulary is a table of its own from migration 30 on (before, during
    // migration 25, it is still the `fts5vocab` view of the FTS5 index, which keeps itself).
    let own_words = backend == Backend::Sqlite && {
        let plain: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'search_vocab' AND type = 'table' \
             AND sql NOT LIKE 'CREATE VIRTUAL%'",
        )
        .fetch_one(w.conn().await?)
        .await?;
        plain > 0
    };
    if own_words {
        sqlx::query("DELETE FROM search_vocab").execute(w.conn().await?).await?;
    }
    // SQLite: the transaction's pages beyond the page cache (16 MiB per connection) go to the
    // WAL and are read back from there one system call each; a large cache for the rebuild
    // (set back at the end) keeps most of them in memory.
    if backend == Backend::Sqlite {
        sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA cache_size = -{REBUILD_CACHE_KIB}")))
            .execute(w.conn().await?)
            .await?;
    }
    let started = std::time::Instant::now();
    tracing::info!("search index: rebuilding from the stored requests, comments and files");
    let mut bufs: Vec<std::collections::VecDeque<SourceRow>> = vec![Default::default(); 3];
    let mut cursors: Vec<Option<String>> = vec![Some(String::new()); 3];
    let mut docs: Vec<Doc> = Vec::with_capacity(REBUILD_CHUNK);
    let mut keys: Vec<(String, String)> = Vec::new();
    let (mut n_docs, mut n_keys, mut doc) = (0u64, 0u64, 0i64);
    let mut countries: std::collections::HashMap<String, Option<String>> = Default::default();
    // SQLite: the vocabulary (migration 30), written after the texts.
    let mut words: std::collections::HashSet<String> = Default::default();
    loop {
        for i in 0..3 {
            if bufs[i].is_empty()
                && let Some(c) = cursors[i].take()
            {
                let rows: Vec<SourceRow> = sqlx::query_as(REBUILD_SOURCES[i].1)
                    .bind(c)
                    .fetch_all(w.conn().await?)
                    .await?;
                cursors[i] = rows.last().map(|r| r.0.clone());
                bufs[i].extend(rows);
            }
        }
        let Some(i) = (0..3)
            .filter(|i| !bufs[*i].is_empty())
            .min_by(|a, b| bufs[*a][0].0.cmp(&bufs[*b][0].0))
        else {
            break;
        };
        let Some((_, at, request_id, item_id, text, data, side, tlp, named, prefix, seq, requesting, requested)) =
            bufs[i].pop_front()
        else {
            break;
        };
        let tokens = agency_tokens(&requesting, &requested);
        doc += 1;
        let text = text.unwrap_or_default();
        let mut d = match REBUILD_SOURCES[i].0 {
            "request" => {
                let draft: liaison_core::request::RequestDraft =
                    serde_json::from_str(&text).map_err(StoreError::corrupt)?;
                let reference = crate::reference_text(prefix.as_deref(), seq, &request_id);
                let agency = draft.requesting_agency.to_string();
                let country = match countries.get(&agency) {
                    Some(c) => c.clone(),
                    None => {
                        let c: Option<String> = sqlx::query_scalar("SELECT jurisdiction FROM agencies WHERE id = $1")
                            .bind(&agency)
                            .fetch_optional(w.conn().await?)
                            .await?;
                        countries.insert(agency, c.clone());
                        c
                    }
                };
                for k in target_keys(&draft, country.as_deref()) {
                    keys.push((k, request_id.clone()));
                }
                let terms =
                    liaison_core::search::index_terms(&request_text(&reference, &draft.case_reference, &draft.summary))
                        + &tokens;
                Doc {
                    doc,
                    request_id,
                    source: "request",
                    item_id,
                    at,
                    side: "requesting".into(),
                    tlp: "TLP:CLEAR".into(),
                    named: None,
                    terms,
                }
            }
            "comment" => {
                let data: Option<serde_json::Value> = data.as_deref().and_then(|d| serde_json::from_str(d).ok());
                let (side, tlp, named) = comment_cols(data.as_ref());
                Doc {
                    doc,
                    request_id,
                    source: "comment",
                    item_id,
                    at,
                    side,
                    tlp,
                    named,
                    terms: liaison_core::search::index_terms(&text) + &tokens,
                }
            }
            _ => Doc {
                doc,
                request_id,
                source: "file",
                item_id,
                at,
                side: side.unwrap_or_else(|| "requesting".into()),
                tlp: tlp.unwrap_or_else(|| "TLP:AMBER+STRICT".into()),
                named,
                terms: liaison_core::search::index_terms(&text) + &tokens,
            },
        };
        match backend {
            Backend::Postgres => d.terms += &window_tokens(d.doc),
            Backend::Sqlite if own_words => {
                for t in d.terms.split_ascii_whitespace() {
                    if !words.contains(t) {
                        words.insert(t.to_string());
                    }
                }
            }
            Backend::Sqlite => {}
        }
        docs.push(d);
        if docs.len() == REBUILD_CHUNK {
            n_docs += write_docs(w, backend, &docs).await?;
            docs.clear();
            if n_docs % REBUILD_REPORT == 0 {
                tracing::info!(
                    texts = n_docs,
                    seconds = started.elapsed().as_secs(),
                    "search index: texts written"
                );
            }
        }
        if keys.len() >= REBUILD_CHUNK {
            n_keys += write_keys(w, &keys).await?;
            keys.clear();
        }
    }
    n_docs += write_docs(w, backend, &docs).await?;
    n_keys += write_keys(w, &keys).await?;
    let mut words: Vec<String> = words.into_iter().collect();
    words.sort_unstable();
    for chunk in words.chunks(REBUILD_CHUNK) {
        write_words(w, chunk).await?;
    }
    let build: &[&str] = match backend {
        Backend::Sqlite => &[
            "CREATE INDEX search_docs_request ON search_docs(request_id, doc)",
            "CREATE INDEX search_docs_item ON search_docs(item_id)",
            // FTS5 gathers new entries in memory and writes them out as a segment whenever
            // they pass `hashsize` (1 MiB by default); the segments are then merged level by
            // level. At 6,000,000 texts that is thousands of small segments merged again and
            // again inside one transaction (after 35 minutes the WAL held 6.6 GB and the
            // build was not done). Large segments for the rebuild, the default again after.
            "INSERT INTO search_fts (search_fts, rank) VALUES ('hashsize', 268435456)",
            "INSERT INTO search_fts (search_fts) VALUES ('rebuild')",
            "INSERT INTO search_fts (search_fts, rank) VALUES ('hashsize', 1048576)",
        ],
        // The GIN index builds in memory up to `maintenance_work_mem` (64 MB by default),
        // writing and merging runs beyond it; for this transaction only, more.
        Backend::Postgres => &[
            "SET LOCAL maintenance_work_mem = '512MB'",
            "CREATE INDEX search_docs_request ON search_docs(request_id, doc)",
            "CREATE INDEX search_docs_item ON search_docs(item_id)",
            "CREATE INDEX search_docs_tsv ON search_docs USING gin (tsv)",
            "INSERT INTO search_vocab (term) SELECT word FROM ts_stat('SELECT tsv FROM search_docs')",
        ],
    };
    tracing::info!(
        texts = n_docs,
        target_keys = n_keys,
        seconds = started.elapsed().as_secs(),
        "search index: every text written; building the indexes"
    );
    for s in build {
        sqlx::query(sqlx::AssertSqlSafe(s.to_string()))
            .execute(w.conn().await?)
            .await?;
        tracing::info!(
            seconds = started.elapsed().as_secs(),
            step = s.split_whitespace().take(4).collect::<Vec<_>>().join(" "),
            "search index: built"
        );
    }
    if backend == Backend::Sqlite {
        sqlx::query("PRAGMA cache_size = -16384")
            .execute(w.conn().await?)
            .await?;
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO search_spans (span, first_at, last_at) \
         SELECT doc >> {SPAN_BITS}, MIN(at), MAX(at) FROM search_docs GROUP BY doc >> {SPAN_BITS}"
    )))
    .execute(w.conn().await?)
    .await?;
    Ok((n_docs, n_keys))
}

/// `(…), (…)` for `rows` rows of `width` values, each value written by `cell(row, column)`.
fn rows_sql(rows: usize, width: usize, cell: impl Fn(usize, usize) -> String) -> String {
    (0..rows)
        .map(|i| format!("({})", (0..width).map(|j| cell(i, j)).collect::<Vec<_>>().join(", ")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A document as the rebuild writes it.
#[derive(Debug, Clone)]
pub(crate) struct Doc {
    pub doc: i64,
    pub request_id: String,
    pub source: &'static str,
    pub item_id: String,
    pub at: i64,
    pub side: String,
    pub tlp: String,
    pub named: Option<String>,
    /// `index_terms` of the text.
    pub terms: String,
}

/// Writes documents with given numbers, many rows per statement (the rebuild builds the text
/// index over them afterwards).
pub(crate) async fn write_docs(w: &mut WriteTx, backend: Backend, docs: &[Doc]) -> Result<u64> {
    if docs.is_empty() {
        return Ok(0);
    }
    let tsv = backend == Backend::Postgres;
    let width = 9;
    let rows = rows_sql(docs.len(), width, |i, j| {
        if tsv && j == 8 {
            format!("to_tsvector('simple', ${})", i * width + j + 1)
        } else {
            format!("${}", i * width + j + 1)
        }
    });
    let cols = if tsv {
        "doc, request_id, source, item_id, at, side, tlp, named, tsv"
    } else {
        "doc, request_id, source, item_id, at, side, tlp, named, terms"
    };
    let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO search_docs ({cols}) VALUES {rows}"
    )));
    for d in docs {
        q = q
            .bind(d.doc)
            .bind(d.request_id.clone())
            .bind(d.source)
            .bind(d.item_id.clone())
            .bind(d.at)
            .bind(d.side.clone())
            .bind(d.tlp.clone())
            .bind(d.named.clone())
            .bind(d.terms.clone());
    }
    q.execute(w.conn().await?).await?;
    Ok(docs.len() as u64)
}

/// Writes words into the vocabulary (SQLite), many rows per statement.
async fn write_words(w: &mut WriteTx, words: &[String]) -> Result<()> {
    if words.is_empty() {
        return Ok(());
    }
    let rows = rows_sql(words.len(), 1, |i, _| format!("${}", i + 1));
    let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO search_vocab (term) VALUES {rows} ON CONFLICT DO NOTHING"
    )));
    for t in words {
        q = q.bind(t.clone());
    }
    q.execute(w.conn().await?).await?;
    Ok(())
}

/// Writes target keys, many rows per statement (duplicates of one request ignored).
pub(crate) async fn write_keys(w: &mut WriteTx, keys: &[(String, String)]) -> Result<u64> {
    if keys.is_empty() {
        return Ok(0);
    }
    let rows = rows_sql(keys.len(), 2, |i, j| format!("${}", i * 2 + j + 1));
    let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO search_targets (ident, request_id) VALUES {rows} ON CONFLICT DO NOTHING"
    )));
    for (k, r) in keys {
        q = q.bind(k.clone()).bind(r.clone());
    }
    let r = q.execute(w.conn().await?).await?;
    Ok(r.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sql_writes_every_window_token() {
        for level in WINDOW_LEVELS {
            assert!(
                PG_PUSH_DOC.contains(&format!("' zzw{level}n' || (n.doc >> {level})")),
                "{level}"
            );
        }
        assert_eq!(PG_PUSH_DOC.matches("zzw").count(), WINDOW_LEVELS.len());
        assert!(PG_PUSH_DOC.contains(&format!("d.doc >> {SPAN_BITS}")));
        assert_eq!(window_tokens(5000), " zzw10n4 zzw12n1 zzw14n0 zzw16n0 zzw18n0 zzw20n0");
    }

    /// The rebuild on SQLite writes FTS5 segments of up to 256 MiB, and leaves the table's
    /// setting at FTS5's default for the small transactions that follow.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rebuild_leaves_the_fts5_settings_as_it_found_them() {
        let path = crate::testing::sqlite_path().unwrap();
        let store = Store::open_sqlite(&path).await.unwrap();
        assert_eq!(store.search_rebuild().await.unwrap(), (0, 0));
        let size: i64 = sqlx::query_scalar("SELECT v FROM search_fts_config WHERE k = 'hashsize'")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(size, 1_048_576);
        let ok: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM search_fts WHERE search_fts MATCH 'x'")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(ok, 0);
    }

    #[test]
    fn named_pattern_matches_one_whole_name() {
        assert_eq!(named_pattern("bob"), "%\"bob\"%");
        assert_eq!(named_pattern("a_b"), "%\"a!_b\"%");
    }
}
