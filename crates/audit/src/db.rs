//! The audit table, on either backend. Every statement is written once and run on whichever
//! pool the [`Store`] holds (the [`on_pool!`] macro expands the same code for both), so the
//! SQLite and PostgreSQL paths cannot drift apart.

use sqlx::pool::PoolConnection;
use sqlx::{Postgres, QueryBuilder, Sqlite};
use steward_protocol::{AuditEntry, AuditKind, AuditRecord, Timestamp};

use crate::chain::GENESIS;
use crate::store::Store;
use crate::{Error, Result};

/// Runs `$body` with `$pool` bound to the store's pool, whichever backend it is.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store {
            Store::Sqlite($pool) => $body,
            Store::Postgres($pool) => $body,
        }
    };
}

const COLUMNS: &str = "seq, at_ms, kind, refers_to, entry, prev_hash, hash";

/// Rows per multi-row INSERT: 7 binds each stays far below SQLite's and PostgreSQL's limits.
const INSERT_CHUNK: usize = 1000;

/// One stored row, as written.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct Row {
    pub seq: i64,
    pub at_ms: i64,
    pub kind: Option<String>,
    pub refers_to: Option<i64>,
    pub entry: String,
    pub prev_hash: String,
    pub hash: String,
}

/// Just the chain links of a row, for classifying problems without loading entries.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct Link {
    pub seq: i64,
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
}

/// Why an insert failed.
pub(crate) enum InsertError {
    /// A row with one of these seqs exists: another writer got there first.
    Taken,
    Other(Error),
}

fn backend(store: &Store) -> &'static str {
    store.backend().name()
}

/// The last record's seq and hash, or `None` for an empty log.
pub(crate) async fn head(store: &Store) -> Result<Option<(u64, String)>> {
    let sql = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1";
    let row: Option<(i64, String)> =
        on_pool!(store, |pool| sqlx::query_as(sql).fetch_optional(pool).await)
            .map_err(Error::db(backend(store)))?;
    Ok(row.map(|(seq, hash)| (seq as u64, hash)))
}

/// The hash of record `seq`, if it exists.
pub(crate) async fn hash_at(store: &Store, seq: u64) -> Result<Option<String>> {
    let sql = "SELECT hash FROM audit_log WHERE seq = $1";
    on_pool!(store, |pool| sqlx::query_scalar(sql)
        .bind(seq as i64)
        .fetch_optional(pool)
        .await)
    .map_err(Error::db(backend(store)))
}

/// The hashes of the records with these seqs (those that exist), for matching checkpoints.
pub(crate) async fn hashes_at(store: &Store, seqs: &[u64]) -> Result<Vec<(u64, String)>> {
    let mut out = Vec::with_capacity(seqs.len());
    for chunk in seqs.chunks(INSERT_CHUNK) {
        // As text: a hand-edited SQLite file may hold anything in `hash` (see `Page`).
        let rows: Vec<(i64, Option<String>)> = on_pool!(store, |pool| {
            let mut qb =
                QueryBuilder::new("SELECT seq, CAST(hash AS TEXT) FROM audit_log WHERE seq IN (");
            let mut sep = qb.separated(", ");
            for s in chunk {
                sep.push_bind(*s as i64);
            }
            qb.push(")");
            qb.build_query_as().fetch_all(pool).await
        })
        .map_err(Error::db(backend(store)))?;
        out.extend(
            rows.into_iter()
                .filter_map(|(seq, hash)| Some((seq as u64, hash?))),
        );
    }
    Ok(out)
}

/// Adds `rows` to an open transaction in multi-row INSERTs.
macro_rules! insert_rows {
    ($tx:expr, $rows:expr) => {
        async {
            for chunk in $rows.chunks(INSERT_CHUNK) {
                let mut qb = QueryBuilder::new(format!("INSERT INTO audit_log ({COLUMNS}) "));
                qb.push_values(chunk, |mut b, r| {
                    b.push_bind(r.seq)
                        .push_bind(r.at_ms)
                        .push_bind(r.kind.as_deref())
                        .push_bind(r.refers_to)
                        .push_bind(r.entry.as_str())
                        .push_bind(r.prev_hash.as_str())
                        .push_bind(r.hash.as_str());
                });
                qb.build().execute(&mut *$tx).await.map(|_| ())?;
            }
            Ok::<(), sqlx::Error>(())
        }
    };
}

/// A connection held by the appender for its whole life. Taking one from the pool costs
/// about as much as the insert itself (a cross-thread hand-off each way), so the hot path
/// keeps its own.
pub(crate) enum Conn {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conn::Sqlite(_) => "Conn::Sqlite",
            Conn::Postgres(_) => "Conn::Postgres",
        })
    }
}

impl Conn {
    pub async fn acquire(store: &Store) -> Result<Conn> {
        match store {
            Store::Sqlite(pool) => pool.acquire().await.map(Conn::Sqlite),
            Store::Postgres(pool) => pool.acquire().await.map(Conn::Postgres),
        }
        .map_err(Error::db(backend(store)))
    }

    fn backend(&self) -> &'static str {
        match self {
            Conn::Sqlite(_) => "sqlite",
            Conn::Postgres(_) => "postgres",
        }
    }

    fn insert_error(&self, e: sqlx::Error) -> InsertError {
        match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => InsertError::Taken,
            _ => InsertError::Other(Error::db(self.backend())(e)),
        }
    }

    /// Inserts one row. No explicit transaction: one statement is atomic by itself, and
    /// BEGIN/COMMIT would triple the round trips of the hot path.
    pub async fn insert_one(&mut self, r: &Row) -> std::result::Result<(), InsertError> {
        let sql = "INSERT INTO audit_log (seq, at_ms, kind, refers_to, entry, prev_hash, hash) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7)";
        let res = match self {
            Conn::Sqlite(c) => bind_row(sqlx::query(sql), r)
                .execute(&mut **c)
                .await
                .map(|_| ()),
            Conn::Postgres(c) => bind_row(sqlx::query(sql), r)
                .execute(&mut **c)
                .await
                .map(|_| ()),
        };
        res.map_err(|e| self.insert_error(e))
    }

    /// Inserts `rows` in one transaction, all or nothing.
    pub async fn insert(&mut self, rows: &[Row]) -> std::result::Result<(), InsertError> {
        let res = match self {
            Conn::Sqlite(c) => {
                async {
                    let mut tx = sqlx::Connection::begin(&mut **c).await?;
                    insert_rows!(tx, rows).await?;
                    tx.commit().await
                }
                .await
            }
            Conn::Postgres(c) => {
                async {
                    let mut tx = sqlx::Connection::begin(&mut **c).await?;
                    insert_rows!(tx, rows).await?;
                    tx.commit().await
                }
                .await
            }
        };
        res.map_err(|e| self.insert_error(e))
    }

    /// The slow path for a writer that lost the race for the next seq: reads the head and
    /// inserts the rows `make(head_seq, head_hash)` builds while holding the table's write
    /// lock (SQLite `BEGIN IMMEDIATE`; PostgreSQL `LOCK TABLE ... SHARE ROW EXCLUSIVE`, which
    /// blocks other inserts but not readers), so it cannot lose again however busy the other
    /// writer is.
    pub async fn insert_locked(
        &mut self,
        make: impl Fn(u64, &str) -> Vec<Row>,
    ) -> std::result::Result<Vec<Row>, InsertError> {
        let head_sql = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1";
        let build = |head: Option<(i64, String)>| match head {
            Some((seq, hash)) => make(seq as u64, &hash),
            None => make(0, GENESIS),
        };
        let res = match self {
            Conn::Sqlite(c) => {
                async {
                    let mut tx = sqlx::Connection::begin_with(&mut **c, "BEGIN IMMEDIATE").await?;
                    let head = sqlx::query_as(head_sql).fetch_optional(&mut *tx).await?;
                    let rows = build(head);
                    insert_rows!(tx, rows).await?;
                    tx.commit().await?;
                    Ok(rows)
                }
                .await
            }
            Conn::Postgres(c) => {
                async {
                    let mut tx = sqlx::Connection::begin(&mut **c).await?;
                    sqlx::query("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE")
                        .execute(&mut *tx)
                        .await?;
                    let head = sqlx::query_as(head_sql).fetch_optional(&mut *tx).await?;
                    let rows = build(head);
                    insert_rows!(tx, rows).await?;
                    tx.commit().await?;
                    Ok(rows)
                }
                .await
            }
        };
        res.map_err(|e| self.insert_error(e))
    }
}

fn bind_row<'q, DB: sqlx::Database>(
    q: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    r: &'q Row,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    q.bind(r.seq)
        .bind(r.at_ms)
        .bind(r.kind.as_deref())
        .bind(r.refers_to)
        .bind(r.entry.as_str())
        .bind(r.prev_hash.as_str())
        .bind(r.hash.as_str())
}

/// Up to `limit` rows with `seq > after`, in seq order (keyset paging: every page is an
/// index range scan, however deep into the log).
pub(crate) async fn rows_after(store: &Store, after: u64, limit: usize) -> Result<Vec<Row>> {
    let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2");
    on_pool!(store, |pool| sqlx::query_as(&sql)
        .bind(after as i64)
        .bind(limit as i64)
        .fetch_all(pool)
        .await)
    .map_err(Error::db(backend(store)))
}

/// Separates rows in a [`page_after`] string.
const ROW_SEP: char = '\u{1e}';
/// Separates columns in a [`page_after`] string.
const COL_SEP: char = '\u{1f}';
/// Stands for NULL in a [`page_after`] string.
const NULL_MARK: &str = "\u{15}";

/// Up to `limit` rows with `seq > after`, fetched as one aggregated string for `verify`,
/// with the number of rows it holds.
///
/// Fetching a million rows one by one costs sqlx a channel hand-off (SQLite) or a generic
/// row decode (both) per row, which made row transfer the slowest part of `verify`. Here
/// the database joins a whole page with control characters that canonical JSON never holds
/// raw. A hand-edited value could still contain one; [`parse_page`] then finds the wrong
/// number of rows or columns and the caller falls back to [`rows_after`], so a separator
/// can never shift a value into another column unnoticed.
pub(crate) async fn page_after(
    store: &Store,
    after: u64,
    limit: usize,
) -> Result<Option<(i64, String)>> {
    let (agg, chr) = match store {
        Store::Sqlite(_) => ("group_concat", "char"),
        Store::Postgres(_) => ("string_agg", "chr"),
    };
    let col = |c: &str| format!("COALESCE(CAST({c} AS TEXT), {chr}(21))");
    // concat_ws builds each row's text once; chained `||` would copy the entry per column.
    let sql = format!(
        "SELECT COUNT(*), {agg}(concat_ws({chr}(31), {}, {}, {}, {}, {}, {}, {}), {chr}(30)) \
         FROM (SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2) p",
        col("seq"),
        col("at_ms"),
        col("kind"),
        col("refers_to"),
        col("entry"),
        col("prev_hash"),
        col("hash"),
    );
    let (count, text): (i64, Option<String>) = on_pool!(store, |pool| sqlx::query_as(&sql)
        .bind(after as i64)
        .bind(limit as i64)
        .fetch_one(pool)
        .await)
    .map_err(Error::db(backend(store)))?;
    Ok(text.map(|t| (count, t)))
}

/// A page of rows for `verify`: the aggregated text and where each row's values are in it,
/// so a million rows cost no per-value allocation or copy. Every column but `seq` is kept
/// as text: a hand-edited SQLite file can hold text in an integer column, and `verify` must
/// report that, not fail on it.
#[derive(Debug, Default)]
pub(crate) struct Page {
    pub text: String,
    pub rows: Vec<PageRow>,
}

/// One row of a [`Page`]; the columns are byte ranges of `Page::text`, `None` for NULL.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageRow {
    pub seq: i64,
    pub at_ms: Option<(usize, usize)>,
    pub kind: Option<(usize, usize)>,
    pub refers_to: Option<(usize, usize)>,
    pub entry: Option<(usize, usize)>,
    pub prev_hash: Option<(usize, usize)>,
    pub hash: Option<(usize, usize)>,
}

/// A row with every column but `seq` as text (see [`Page`]).
type TextRow = (
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

const TEXT_COLUMNS: &str = "seq, CAST(at_ms AS TEXT), CAST(kind AS TEXT), \
    CAST(refers_to AS TEXT), CAST(entry AS TEXT), CAST(prev_hash AS TEXT), CAST(hash AS TEXT)";

impl Page {
    /// The text of a column, `""` for NULL.
    pub fn str(&self, range: Option<(usize, usize)>) -> &str {
        range
            .and_then(|(start, end)| self.text.get(start..end))
            .unwrap_or("")
    }

    /// The text of a column, `None` for NULL.
    pub fn opt(&self, range: Option<(usize, usize)>) -> Option<&str> {
        range.map(|r| self.str(Some(r)))
    }

    fn from_text_rows(rows: Vec<TextRow>) -> Page {
        let mut text = String::new();
        let mut push = |s: Option<String>| {
            s.map(|s| {
                let start = text.len();
                text.push_str(&s);
                (start, text.len())
            })
        };
        let rows = rows
            .into_iter()
            .map(
                |(seq, at_ms, kind, refers_to, entry, prev_hash, hash)| PageRow {
                    seq,
                    at_ms: push(at_ms),
                    kind: push(kind),
                    refers_to: push(refers_to),
                    entry: push(entry),
                    prev_hash: push(prev_hash),
                    hash: push(hash),
                },
            )
            .collect();
        Page { text, rows }
    }
}

/// Up to `limit` rows with `seq > after`, one by one, every column as text: the fallback of
/// [`parse_page`], slower but unconfused by any value.
pub(crate) async fn text_rows_after(store: &Store, after: u64, limit: usize) -> Result<Page> {
    let sql = format!("SELECT {TEXT_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2");
    let rows: Vec<TextRow> = on_pool!(store, |pool| sqlx::query_as(&sql)
        .bind(after as i64)
        .bind(limit as i64)
        .fetch_all(pool)
        .await)
    .map_err(Error::db(backend(store)))?;
    Ok(Page::from_text_rows(rows))
}

/// The rows with these seqs (those that exist), every column as text, in seq order.
pub(crate) async fn text_rows_by_seq(store: &Store, seqs: &[u64]) -> Result<Page> {
    let mut all = Vec::with_capacity(seqs.len());
    for chunk in seqs.chunks(INSERT_CHUNK) {
        let rows: Vec<TextRow> = on_pool!(store, |pool| {
            let mut qb = QueryBuilder::new(format!(
                "SELECT {TEXT_COLUMNS} FROM audit_log WHERE seq IN ("
            ));
            let mut sep = qb.separated(", ");
            for s in chunk {
                sep.push_bind(*s as i64);
            }
            qb.push(") ORDER BY seq");
            qb.build_query_as().fetch_all(pool).await
        })
        .map_err(Error::db(backend(store)))?;
        all.extend(rows);
    }
    all.sort_by_key(|r| r.0);
    Ok(Page::from_text_rows(all))
}

/// Splits a [`page_after`] string into its `count` rows; `None` if it does not hold exactly
/// that many well-formed rows (see there).
pub(crate) fn parse_page(count: i64, text: String) -> Option<Page> {
    let mut rows = Vec::with_capacity(usize::try_from(count).ok()?);
    let mut at = 0;
    for line in text.split(ROW_SEP) {
        let mut cols = line.split(COL_SEP);
        let line_start = at;
        let mut col_start = line_start;
        let mut next = || -> Option<(&str, Option<(usize, usize)>)> {
            let c = cols.next()?;
            let range = (col_start, col_start + c.len());
            col_start += c.len() + COL_SEP.len_utf8();
            Some((c, (c != NULL_MARK).then_some(range)))
        };
        let seq = next()?.0.parse().ok()?;
        let at_ms = next()?.1;
        let kind = next()?.1;
        let refers_to = next()?.1;
        let entry = next()?.1;
        let prev_hash = next()?.1;
        let hash = next()?.1;
        if cols.next().is_some() {
            return None;
        }
        rows.push(PageRow {
            seq,
            at_ms,
            kind,
            refers_to,
            entry,
            prev_hash,
            hash,
        });
        at = line_start + line.len() + ROW_SEP.len_utf8();
    }
    // The aggregate keeps the subquery's order in practice, but neither database promises
    // it, and sorting 12 MB inside the query costs more than this check.
    if !rows.is_sorted_by_key(|r| r.seq) {
        rows.sort_unstable_by_key(|r| r.seq);
    }
    (rows.len() as i64 == count).then_some(Page { text, rows })
}

/// Like [`rows_after`], only the chain links.
pub(crate) async fn links_after(store: &Store, after: u64, limit: usize) -> Result<Vec<Link>> {
    let sql = "SELECT seq, CAST(prev_hash AS TEXT) AS prev_hash, CAST(hash AS TEXT) AS hash \
               FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2";
    on_pool!(store, |pool| sqlx::query_as(sql)
        .bind(after as i64)
        .bind(limit as i64)
        .fetch_all(pool)
        .await)
    .map_err(Error::db(backend(store)))
}

/// The rows with these seqs (those that exist), in seq order.
pub(crate) async fn rows_by_seq(store: &Store, seqs: &[u64]) -> Result<Vec<Row>> {
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(seqs.len());
    for chunk in seqs.chunks(INSERT_CHUNK) {
        let rows: Vec<Row> = on_pool!(store, |pool| {
            let mut qb =
                QueryBuilder::new(format!("SELECT {COLUMNS} FROM audit_log WHERE seq IN ("));
            let mut sep = qb.separated(", ");
            for s in chunk {
                sep.push_bind(*s as i64);
            }
            qb.push(") ORDER BY seq");
            qb.build_query_as().fetch_all(pool).await
        })
        .map_err(Error::db(backend(store)))?;
        out.extend(rows);
    }
    out.sort_by_key(|r| r.seq);
    Ok(out)
}

/// `ExecBegin` rows that no `ExecEnd` or `Reconciled` row refers to, oldest first.
pub(crate) async fn open_begins(store: &Store) -> Result<Vec<Row>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_log b WHERE b.kind = 'exec_begin' AND NOT EXISTS \
         (SELECT 1 FROM audit_log e WHERE e.refers_to = b.seq \
          AND e.kind IN ('exec_end', 'reconciled')) ORDER BY b.seq"
    );
    on_pool!(store, |pool| sqlx::query_as(&sql).fetch_all(pool).await)
        .map_err(Error::db(backend(store)))
}

/// `ExecBegin` rows stamped after `after_ms`, oldest first.
pub(crate) async fn begins_since(store: &Store, after_ms: i64) -> Result<Vec<Row>> {
    let sql = match store {
        Store::Sqlite(_) => format!(
            "SELECT {COLUMNS} FROM audit_log WHERE kind = 'exec_begin' AND at_ms > ?1 ORDER BY seq"
        ),
        Store::Postgres(_) => format!(
            "SELECT {COLUMNS} FROM audit_log WHERE kind = 'exec_begin' AND at_ms > $1 ORDER BY seq"
        ),
    };
    on_pool!(store, |pool| sqlx::query_as(&sql)
        .bind(after_ms)
        .fetch_all(pool)
        .await)
    .map_err(Error::db(backend(store)))
}

impl Row {
    /// Builds a row from a hashed record, copying the columns kept outside `entry`.
    pub fn new(
        seq: u64,
        entry_json: String,
        prev_hash: String,
        hash: String,
        e: &AuditEntry,
    ) -> Row {
        Row {
            seq: seq as i64,
            at_ms: e.at.0,
            kind: e.kind.map(kind_name).map(str::to_string),
            refers_to: e.refers_to.map(|s| s as i64),
            entry: entry_json,
            prev_hash,
            hash,
        }
    }

    /// The record this row holds; fails when `entry` no longer parses (edited by hand).
    pub fn into_record(self) -> Result<AuditRecord> {
        let seq = self.seq as u64;
        let entry = serde_json::from_str(&self.entry).map_err(|e| Error::Corrupt {
            seq,
            detail: e.to_string(),
        })?;
        Ok(AuditRecord {
            seq,
            prev_hash: self.prev_hash,
            hash: self.hash,
            entry,
        })
    }

    /// Like [`Row::into_record`], but an unreadable entry becomes an empty one with only its
    /// time, so the search index can step past it (verify reports it).
    pub fn into_record_lossy(self) -> AuditRecord {
        let seq = self.seq as u64;
        let at = Timestamp(self.at_ms);
        let entry = serde_json::from_str(&self.entry).unwrap_or_else(|_| AuditEntry {
            at,
            ..Default::default()
        });
        AuditRecord {
            seq,
            prev_hash: self.prev_hash,
            hash: self.hash,
            entry,
        }
    }
}

/// The stored (serde) name of a kind, as in the `kind` column.
pub(crate) fn kind_name(k: AuditKind) -> &'static str {
    match k {
        AuditKind::Refused => "refused",
        AuditKind::ApprovalRequested => "approval_requested",
        AuditKind::ApprovalAnswered => "approval_answered",
        AuditKind::ExecBegin => "exec_begin",
        AuditKind::ExecEnd => "exec_end",
        AuditKind::Reconciled => "reconciled",
        AuditKind::PolicyChanged => "policy_changed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(cols: [&str; 7]) -> String {
        cols.join(&COL_SEP.to_string())
    }

    #[test]
    fn pages_split_back_into_rows() {
        let a = line(["1", "10", "exec_begin", NULL_MARK, "{}", "p1", "h1"]);
        let b = line(["2", "11", NULL_MARK, "1", "{\"x\":1}", "h1", "h2"]);
        let text = format!("{b}{ROW_SEP}{a}"); // out of order: sorted back
        let page = parse_page(2, text).unwrap();
        assert_eq!(page.rows.len(), 2);
        let (r1, r2) = (page.rows[0], page.rows[1]);
        assert_eq!((r1.seq, r2.seq), (1, 2));
        assert_eq!(page.opt(r1.kind), Some("exec_begin"));
        assert_eq!(page.opt(r1.refers_to), None);
        assert_eq!(page.opt(r2.kind), None);
        assert_eq!(page.opt(r2.refers_to), Some("1"));
        assert_eq!(page.str(r2.entry), "{\"x\":1}");
        assert_eq!(page.str(r2.hash), "h2");
    }

    #[test]
    fn smuggled_separators_are_refused() {
        let a = line(["1", "10", "k", NULL_MARK, "{}", "p", "h"]);
        let extra_row = format!("{a}{ROW_SEP}{a}");
        assert!(parse_page(1, extra_row).is_none());
        let extra_col = format!("{a}{COL_SEP}x");
        assert!(parse_page(1, extra_col).is_none());
        assert!(parse_page(1, "x".into()).is_none());
    }
}
