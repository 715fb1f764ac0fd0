//! Verifying a backup: the file must hash to the manifest's sha256, then it is restored into
//! a scratch database and every table's row count and checksum is compared with the
//! manifest. The scratch database is dropped whatever happens.
//!
//! A scratch database rather than a scratch schema: the dump then restores under its own
//! schema names, untouched, so what is checked is exactly what a restore would write.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::Path;

use sqlx::Connection;

use super::manifest::{self, Manifest, VerifyRecord};
use super::pgtools::{PgCommand, PgTools};
use super::stats::{self, Scope, TableCheck};
use super::target::{connect_db, quote_ident, Kind};
use crate::env::Env;
use crate::{Error, Result};

/// Scratch databases are named with this prefix and a random suffix.
pub const SCRATCH_PREFIX: &str = "steward_verify_";

/// Session settings of the restore into the scratch database.
const SCRATCH_OPTIONS: &str = "-c synchronous_commit=off";

/// A verified backup: what was compared, table by table.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub manifest: Manifest,
    pub scratch_database: String,
    pub tables: Vec<TableCheck>,
}

/// `steward_verify_<16 hex>`: random, so concurrent verifications never share one.
pub fn scratch_name() -> String {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    format!("{SCRATCH_PREFIX}{:016x}", h.finish())
}

pub fn pg_restore_command(tools: &PgTools, scratch: &str, dump: &Path) -> PgCommand {
    tools.command(
        "pg_restore",
        scratch,
        &[
            "--no-owner".into(),
            "--no-privileges".into(),
            "--exit-on-error".into(),
            dump.display().to_string(),
        ],
    )
}

/// The steps of a verification, for dry runs.
pub fn plan(env: &Env, tools: &PgTools, dir: &Path, m: &Manifest) -> Vec<String> {
    let dump = manifest::dump_path(dir, &m.id);
    let scratch = format!("{SCRATCH_PREFIX}<random>");
    vec![
        format!(
            "check that {} is {} bytes with sha256 {}",
            dump.display(),
            m.size,
            m.sha256
        ),
        format!("CREATE DATABASE {scratch} TEMPLATE template0"),
        format!(
            "run PGOPTIONS='{SCRATCH_OPTIONS}' {}",
            pg_restore_command(tools, &scratch, &dump).display()
        ),
        format!(
            "count rows and checksum the {} tables and compare them with the manifest",
            m.tables.len()
        ),
        format!("DROP DATABASE {scratch} WITH (FORCE), also when a step failed"),
        format!(
            "record the outcome in {}",
            manifest::verify_path(env, &m.target, &m.id).display()
        ),
    ]
}

/// Checks the dump file against the manifest's size and sha256.
pub async fn check_file(dir: &Path, m: &Manifest) -> Result<()> {
    let dump = manifest::dump_path(dir, &m.id);
    if !dump.is_file() {
        return Err(Error::Failed(format!(
            "backup {} is incomplete: its dump file {} is missing",
            m.id,
            dump.display()
        )));
    }
    let (size, sha256) = manifest::sha256_file(&dump).await?;
    if sha256 != m.sha256 {
        return Err(Error::Failed(format!(
            "backup {} is corrupted: sha256 mismatch: the manifest says {} ({} bytes) but {} \
             has {} ({size} bytes); the dump file changed on disk since the backup, do not \
             restore it",
            m.id,
            m.sha256,
            m.size,
            dump.display(),
            sha256
        )));
    }
    Ok(())
}

/// Verifies backup `id`, records the outcome beside the manifest, and fails with a message
/// naming the first problems when anything does not match.
pub async fn verify(env: &Env, id: &str) -> Result<Verified> {
    let (dir, m) = manifest::read_manifest(env, id)?;
    let result = verify_manifest(env, &dir, &m).await;
    let record = match &result {
        Ok(v) => VerifyRecord {
            backup: m.id.clone(),
            ok: true,
            verified_at: manifest::rfc3339(env.clock.now()),
            message: format!(
                "sha256 matches; restored into a scratch database: {} tables, {} rows, counts \
                 and checksums match the manifest",
                v.tables.len(),
                m.total_rows()
            ),
            tables: v.tables.clone(),
        },
        Err((e, tables)) => VerifyRecord {
            backup: m.id.clone(),
            ok: false,
            verified_at: manifest::rfc3339(env.clock.now()),
            message: e.to_string(),
            tables: tables.clone(),
        },
    };
    // The outcome is returned even if it cannot be recorded; the record only feeds the list.
    let _ = manifest::write_verify(env, &m.target, &record);
    result.map_err(|(e, _)| e)
}

type Failure = (Error, Vec<TableCheck>);

async fn verify_manifest(
    env: &Env,
    dir: &Path,
    m: &Manifest,
) -> std::result::Result<Verified, Failure> {
    check_file(dir, m).await.map_err(|e| (e, Vec::new()))?;
    let tools = PgTools::discover(env).await.map_err(|e| (e, Vec::new()))?;
    let scratch = scratch_name();
    let pool = env.admin_pool().await.map_err(|e| (e, Vec::new()))?;
    sqlx::query(&format!(
        "CREATE DATABASE {} TEMPLATE template0",
        quote_ident(&scratch)
    ))
    .execute(pool)
    .await
    .map_err(|e| (e.into(), Vec::new()))?;
    let outcome = restore_and_compare(env, &tools, dir, m, &scratch).await;
    // A plain drop, retried briefly: a connection of the comparison that is still closing,
    // or an autovacuum worker a fresh restore woke, goes away by itself (FORCE would refuse
    // to end a process of another role). FORCE last, for a session still holding it.
    let drop = |force: &str| format!("DROP DATABASE IF EXISTS {}{force}", quote_ident(&scratch));
    let mut dropped = sqlx::query(&drop("")).execute(pool).await;
    for wait_ms in [100, 300, 1000] {
        if dropped.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(wait_ms)).await;
        dropped = sqlx::query(&drop("")).execute(pool).await;
    }
    if dropped.is_err() {
        dropped = sqlx::query(&drop(" WITH (FORCE)")).execute(pool).await;
    }
    match (outcome, dropped) {
        (Ok(tables), Ok(_)) => Ok(Verified {
            manifest: m.clone(),
            scratch_database: scratch,
            tables,
        }),
        (Ok(tables), Err(e)) => Err((
            Error::Failed(format!(
                "backup {} verified, but the scratch database {scratch} could not be dropped \
                 ({e}); drop it by hand",
                m.id
            )),
            tables,
        )),
        (Err((e, tables)), Ok(_)) => Err((e, tables)),
        (Err((e, tables)), Err(drop_err)) => Err((
            Error::Failed(format!(
                "{e}; also, the scratch database {scratch} could not be dropped ({drop_err}); \
                 drop it by hand"
            )),
            tables,
        )),
    }
}

async fn restore_and_compare(
    env: &Env,
    tools: &PgTools,
    dir: &Path,
    m: &Manifest,
    scratch: &str,
) -> std::result::Result<Vec<TableCheck>, Failure> {
    let dump = manifest::dump_path(dir, &m.id);
    let cmd = pg_restore_command(tools, scratch, &dump);
    let what = format!("restoring backup {} into scratch database {scratch}", m.id);
    // The scratch copy is thrown away, so its commits need not wait for the disk; and the
    // connection that counts it is opened while pg_restore runs.
    let (restored, conn) = tokio::join!(
        tools.run_with(&cmd, &what, Some(SCRATCH_OPTIONS)),
        connect_db(env, scratch)
    );
    restored.map_err(|e| {
        let e = match e {
            Error::Failed(msg) => Error::Failed(format!(
                "backup {} failed verification: the dump does not restore: {msg}",
                m.id
            )),
            other => other,
        };
        (e, Vec::new())
    })?;
    let mut conn = conn.map_err(|e| (e, Vec::new()))?;
    let scope = match (&m.kind, &m.schema) {
        (Kind::Schema, Some(s)) => Scope::Schema(s),
        _ => Scope::Database,
    };
    let counted = async {
        stats::begin_snapshot(&mut conn).await?;
        let t = stats::table_stats(&mut conn, scope).await;
        let _ = stats::end_snapshot(&mut conn).await;
        t
    }
    .await;
    let _ = conn.close().await;
    let actual = counted.map_err(|e| (e, Vec::new()))?;
    let (checks, problems) = stats::compare(&m.tables, &actual);
    if problems.is_empty() {
        Ok(checks)
    } else {
        Err((
            Error::Failed(format!(
                "backup {} failed verification: the restored copy differs from the manifest: {}",
                m.id,
                problems.join("; ")
            )),
            checks,
        ))
    }
}
