//! Taking a backup: pg_dump in custom format, in the same snapshot as the row counts.
//!
//! A REPEATABLE READ transaction exports its snapshot; pg_dump joins it with `--snapshot`
//! while the same transaction counts and checksums every table, so the manifest describes
//! exactly the rows in the dump even while the application keeps writing. The two run at
//! the same time, so the counting costs little wall time.

use std::path::Path;

use super::manifest::{self, Manifest};
use super::pgtools::{check_exit, spawn_error, PgCommand, PgTools};
use super::stats::{self, Scope, TableStat};
use super::target::{connect_db, Kind, Target};
use crate::env::Env;
use crate::{Error, Result};

/// How long pg_dump waits for a table lock before giving up (an `ALTER TABLE` holding one).
const LOCK_WAIT: &str = "30s";

/// Partial files older than this are from a run that crashed, and are removed.
const LEFTOVER_AGE: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// The pg_dump invocation for `target` into `file`; `snapshot` is `None` in dry runs.
pub fn pg_dump_command(
    tools: &PgTools,
    target: &Target,
    file: &Path,
    snapshot: Option<&str>,
) -> PgCommand {
    let mut args = vec![
        "--format=custom".to_string(),
        format!("--lock-wait-timeout={LOCK_WAIT}"),
        format!("--snapshot={}", snapshot.unwrap_or("<exported snapshot>")),
    ];
    if let Some(schema) = &target.schema {
        // Double quotes make the -n pattern literal; --strict-names fails if it matches none.
        args.push("--strict-names".into());
        args.push(format!("--schema=\"{schema}\""));
    }
    args.push(format!("--file={}", file.display()));
    tools.command("pg_dump", &target.database, &args)
}

/// The steps of a backup of `target`, for dry runs.
pub fn plan(env: &Env, tools: &PgTools, target: &Target) -> Vec<String> {
    let dir = manifest::target_dir(env, &target.name);
    let id = manifest::backup_id(&target.name, env.clock.now());
    let tmp = manifest::partial_path(&dir, &id);
    vec![
        format!(
            "open a REPEATABLE READ READ ONLY transaction on database {} and export its snapshot",
            target.database
        ),
        format!(
            "run {}",
            pg_dump_command(tools, target, &tmp, None).display()
        ),
        format!(
            "meanwhile, in that snapshot, count rows exactly and checksum every table of the {}",
            target.describe()
        ),
        format!(
            "compute the dump's sha256 and rename it to {}",
            manifest::dump_path(&dir, &id).display()
        ),
        format!(
            "write the manifest {} (target, kind, size, sha256, rows and checksum per table)",
            manifest::manifest_path(&dir, &id).display()
        ),
    ]
}

/// Takes a backup of `target` and returns its manifest. On failure nothing is left behind
/// but an ignored partial file, which is removed.
pub async fn backup(env: &Env, tools: &PgTools, target: &Target, reason: &str) -> Result<Manifest> {
    let dir = manifest::target_dir(env, &target.name);
    manifest::ensure_private_dir(&dir)?;
    manifest::sweep_leftovers(&dir, LEFTOVER_AGE);
    let now = env.clock.now();
    let id = manifest::reserve_id(&dir, &target.name, now)?;
    let tmp = manifest::partial_path(&dir, &id);
    let result = dump_and_describe(env, tools, target, &dir, &id, &tmp, now, reason).await;
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn dump_and_describe(
    env: &Env,
    tools: &PgTools,
    target: &Target,
    dir: &Path,
    id: &str,
    tmp: &Path,
    now: steward_protocol::Timestamp,
    reason: &str,
) -> Result<Manifest> {
    let tables = dump_in_snapshot(env, tools, target, tmp).await?;
    let (size, sha256) = manifest::sha256_file(tmp).await?;
    let dump = manifest::dump_path(dir, id);
    std::fs::rename(tmp, &dump).map_err(Error::io(&dump))?;
    let m = Manifest {
        format: manifest::FORMAT,
        id: id.to_string(),
        target: target.name.clone(),
        kind: target.kind,
        database: target.database.clone(),
        schema: target.schema.clone(),
        created_at: manifest::rfc3339(now),
        created_at_ms: now.as_millis(),
        reason: reason.to_string(),
        file: format!("{id}.dump"),
        size,
        sha256,
        server_version: tools.server_version.clone(),
        checksum_method: stats::CHECKSUM_METHOD.to_string(),
        tables,
    };
    if let Err(e) = manifest::write_json_atomic(&manifest::manifest_path(dir, id), &m) {
        let _ = std::fs::remove_file(&dump);
        return Err(e);
    }
    Ok(m)
}

/// Runs pg_dump in an exported snapshot while the same snapshot is counted.
async fn dump_in_snapshot(
    env: &Env,
    tools: &PgTools,
    target: &Target,
    tmp: &Path,
) -> Result<Vec<TableStat>> {
    let mut conn = connect_db(env, &target.database).await?;
    stats::begin_snapshot(&mut conn).await?;
    let snapshot = stats::export_snapshot(&mut conn).await?;
    let cmd = pg_dump_command(tools, target, tmp, Some(&snapshot));
    let child = tools
        .process(&cmd, None)
        .spawn()
        .map_err(|e| spawn_error(&cmd, e))?;
    let scope = match (&target.kind, &target.schema) {
        (Kind::Schema, Some(s)) => Scope::Schema(s),
        _ => Scope::Database,
    };
    // Both finish before the transaction ends: pg_dump needs the snapshot to stay exported
    // until it has imported it.
    let (dumped, counted) = tokio::join!(
        child.wait_with_output(),
        stats::table_stats(&mut conn, scope)
    );
    let dumped = dumped.map_err(|e| spawn_error(&cmd, e))?;
    let _ = stats::end_snapshot(&mut conn).await;
    check_exit(&cmd, &format!("dumping the {}", target.describe()), &dumped)?;
    counted
}
