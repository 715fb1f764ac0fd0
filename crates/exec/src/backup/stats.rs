//! Exact row counts and content checksums per table, read inside one REPEATABLE READ
//! transaction, and their comparison.
//!
//! The checksum of a table is an order-independent multiset hash: the sum over its rows of
//! a 64-bit row hash, so a restore that writes rows in another physical order still matches,
//! and it needs no sort and no primary key. The row hash is `hash_record_extended(row, 0)`,
//! which hashes each column's value with its type's own hash function (twice as fast as
//! rendering rows to text). A table with a column type that has no hash function (`json`,
//! `point`, ...) falls back to `hashtextextended(row::text, 0)`, with the row output settings
//! pinned for the transaction so both sides render rows alike. The checksum string names the
//! method (`record:` or `text:`), so a backup and its restore are always compared alike.

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnection;

use super::target::quote_ident;
use crate::Result;

pub const CHECKSUM_METHOD: &str = "record: sum(hash_record_extended(row, 0)); text: \
     sum(hashtextextended(row::text, 0)) with TimeZone=UTC, DateStyle=ISO,YMD, \
     IntervalStyle=postgres, extra_float_digits=3, bytea_output=hex";

/// One table as it was when the backup was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableStat {
    /// `schema.table`, as a person reads it.
    pub table: String,
    pub schema: String,
    pub name: String,
    pub rows: i64,
    pub checksum: String,
}

/// One table's comparison between the manifest and a restored copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableCheck {
    pub table: String,
    pub expected_rows: Option<i64>,
    pub rows: Option<i64>,
    pub rows_ok: bool,
    pub checksum_ok: bool,
}

/// Which tables to read: one schema, or every user schema of the database.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    Schema(&'a str),
    Database,
}

/// Starts the read-only REPEATABLE READ transaction that counts (and that pg_dump joins
/// through an exported snapshot), with row output settings pinned.
pub async fn begin_snapshot(conn: &mut PgConnection) -> Result<()> {
    for sql in [
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        "SET LOCAL TimeZone = 'UTC'",
        "SET LOCAL DateStyle = 'ISO, YMD'",
        "SET LOCAL IntervalStyle = 'postgres'",
        "SET LOCAL extra_float_digits = 3",
        "SET LOCAL bytea_output = 'hex'",
        "SET LOCAL row_security = off",
    ] {
        sqlx::query(sql).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Exports the transaction's snapshot for `pg_dump --snapshot`.
pub async fn export_snapshot(conn: &mut PgConnection) -> Result<String> {
    Ok(sqlx::query_scalar("SELECT pg_export_snapshot()")
        .fetch_one(&mut *conn)
        .await?)
}

pub async fn end_snapshot(conn: &mut PgConnection) -> Result<()> {
    sqlx::query("ROLLBACK").execute(&mut *conn).await?;
    Ok(())
}

/// Plain tables (and leaf partitions) whose rows pg_dump writes: extension-owned tables and
/// system schemas are left out, as pg_dump leaves them out.
async fn tables(conn: &mut PgConnection, scope: Scope<'_>) -> Result<Vec<(String, String)>> {
    let schema = match scope {
        Scope::Schema(s) => Some(s),
        Scope::Database => None,
    };
    Ok(sqlx::query_as(
        r"SELECT n.nspname::text, c.relname::text
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind = 'r'
            AND CASE WHEN $1::text IS NULL
                     THEN n.nspname NOT IN ('pg_catalog', 'information_schema')
                          AND n.nspname NOT LIKE 'pg\_toast%'
                          AND n.nspname NOT LIKE 'pg\_temp%'
                     ELSE n.nspname = $1::text END
            AND NOT EXISTS (SELECT 1 FROM pg_depend d
                            WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                              AND d.deptype = 'e')
          ORDER BY 1, 2",
    )
    .bind(schema.map(str::to_string))
    .fetch_all(&mut *conn)
    .await?)
}

/// Counts and checksums every table in `scope`, inside the caller's transaction.
pub async fn table_stats(conn: &mut PgConnection, scope: Scope<'_>) -> Result<Vec<TableStat>> {
    let mut out = Vec::new();
    for (schema, name) in tables(conn, scope).await? {
        // Identifiers come from the catalog and are quoted; `ONLY` because pg_dump copies
        // each table's own rows, not its inheritance children's.
        let table = format!("{}.{}", quote_ident(&schema), quote_ident(&name));
        let (rows, checksum) = table_checksum(conn, &table).await?;
        out.push(TableStat {
            table: format!("{schema}.{name}"),
            schema,
            name,
            rows,
            checksum,
        });
    }
    Ok(out)
}

/// Row count and checksum of one (quoted) table: by column hashes when every column type
/// can be hashed, else by row text. The savepoint keeps the snapshot transaction usable
/// when the first form is refused.
async fn table_checksum(conn: &mut PgConnection, table: &str) -> Result<(i64, String)> {
    let by_record = format!(
        "SELECT count(*)::bigint, \
                coalesce(sum(hash_record_extended(steward_row, 0)), 0)::text \
         FROM ONLY {table} AS steward_row"
    );
    sqlx::query("SAVEPOINT steward_checksum")
        .execute(&mut *conn)
        .await?;
    match sqlx::query_as::<_, (i64, String)>(&by_record)
        .fetch_one(&mut *conn)
        .await
    {
        Ok((rows, sum)) => {
            sqlx::query("RELEASE SAVEPOINT steward_checksum")
                .execute(&mut *conn)
                .await?;
            return Ok((rows, format!("record:{sum}")));
        }
        // No hash function for some column type; anything else fails the same way below.
        Err(sqlx::Error::Database(_)) => {
            sqlx::query("ROLLBACK TO SAVEPOINT steward_checksum")
                .execute(&mut *conn)
                .await?;
        }
        Err(e) => return Err(e.into()),
    }
    let by_text = format!(
        "SELECT count(*)::bigint, \
                coalesce(sum(hashtextextended((steward_row.*)::text, 0)), 0)::text \
         FROM ONLY {table} AS steward_row"
    );
    let (rows, sum): (i64, String) = sqlx::query_as(&by_text).fetch_one(&mut *conn).await?;
    Ok((rows, format!("text:{sum}")))
}

/// Table by table: every expected table must be present with the same count and checksum,
/// and no table may appear that the backup did not have.
pub fn compare(expected: &[TableStat], actual: &[TableStat]) -> (Vec<TableCheck>, Vec<String>) {
    let mut checks = Vec::new();
    let mut problems = Vec::new();
    for e in expected {
        let a = actual.iter().find(|a| a.table == e.table);
        let rows_ok = a.is_some_and(|a| a.rows == e.rows);
        let checksum_ok = a.is_some_and(|a| a.checksum == e.checksum);
        match a {
            None => problems.push(format!("table {} is missing", e.table)),
            Some(a) if !rows_ok => problems.push(format!(
                "table {} has {} rows, the manifest says {}",
                e.table, a.rows, e.rows
            )),
            Some(_) if !checksum_ok => problems.push(format!(
                "table {} has {} rows as expected but different content (checksum mismatch)",
                e.table, e.rows
            )),
            Some(_) => {}
        }
        checks.push(TableCheck {
            table: e.table.clone(),
            expected_rows: Some(e.rows),
            rows: a.map(|a| a.rows),
            rows_ok,
            checksum_ok,
        });
    }
    for a in actual {
        if !expected.iter().any(|e| e.table == a.table) {
            problems.push(format!(
                "table {} is not in the manifest ({} rows)",
                a.table, a.rows
            ));
            checks.push(TableCheck {
                table: a.table.clone(),
                expected_rows: None,
                rows: Some(a.rows),
                rows_ok: false,
                checksum_ok: false,
            });
        }
    }
    (checks, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(table: &str, rows: i64, checksum: &str) -> TableStat {
        TableStat {
            table: format!("s.{table}"),
            schema: "s".into(),
            name: table.into(),
            rows,
            checksum: checksum.into(),
        }
    }

    #[test]
    fn compare_names_each_difference() {
        let expected = [stat("a", 3, "1"), stat("b", 2, "2"), stat("c", 1, "3")];
        let actual = [stat("a", 3, "1"), stat("b", 2, "9"), stat("d", 5, "4")];
        let (checks, problems) = compare(&expected, &actual);
        assert_eq!(checks.len(), 4);
        assert!(checks[0].rows_ok && checks[0].checksum_ok);
        assert!(checks[1].rows_ok && !checks[1].checksum_ok);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("s.b") && problems[0].contains("checksum"));
        assert!(problems[1].contains("s.c is missing"));
        assert!(problems[2].contains("s.d is not in the manifest"));
    }
}
