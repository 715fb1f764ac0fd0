//! Restoring a backup over its target: refuse a backup of another target or one whose file
//! fails its sha256, take a safety backup, replace the data in one transaction, then check
//! the row counts and checksums against the manifest.
//!
//! The dump is first rendered to SQL with `pg_restore --file` (a truncated or damaged
//! archive fails there, before anything is touched), then applied by psql in a single
//! transaction that starts by dropping what is there: the tenant schema, or every user schema
//! of a platform database. Objects created since the backup therefore go too, and a failure
//! at any statement rolls the whole replacement back.
//!
//! It is rendered in two parts: the schemas with their grants first, then everything else.
//! pg_restore keeps grants for its last pass, but a table handed to its owner (`ALTER TABLE
//! ... OWNER TO tenant_user_x`) needs that owner to have CREATE on the schema already, which
//! only a superuser may skip, and steward's admin role is not one.

use std::path::{Path, PathBuf};

use sqlx::Connection;

use super::dump;
use super::manifest::{self, Manifest};
use super::pgtools::{PgCommand, PgTools};
use super::stats::{self, Scope, TableCheck};
use super::target::{self, connect_db, quote_ident, Kind, Target};
use super::verify;
use crate::env::Env;
use crate::{Error, Result};

/// How long the replacing transaction waits for the application's locks before giving up.
const LOCK_TIMEOUT: &str = "-c lock_timeout=30s";

#[derive(Debug, Clone, PartialEq)]
pub struct Restored {
    pub manifest: Manifest,
    pub safety: Manifest,
    pub tables: Vec<TableCheck>,
}

/// The backup `id` of `target`, refused when it belongs to another target.
pub fn own_manifest(env: &Env, target: &str, id: &str) -> Result<(PathBuf, Manifest)> {
    target::check_name("backup target", target)?;
    let owner = manifest::target_of(id)?;
    if owner != target {
        return Err(Error::Conflict(format!(
            "backup {id} belongs to {owner:?}, not {target:?}; refusing to restore one target's \
             data over another's"
        )));
    }
    let (dir, m) = manifest::read_manifest(env, id)?;
    Ok((dir, m))
}

/// The backup must have been taken of what `target` is now.
fn check_same_target(m: &Manifest, target: &Target) -> Result<()> {
    if m.matches(target) {
        return Ok(());
    }
    let was = match &m.schema {
        Some(s) => format!("tenant schema {s} in database {}", m.database),
        None => format!("database {}", m.database),
    };
    Err(Error::Conflict(format!(
        "backup {} holds the {was}, but {:?} is now the {}; refusing to restore it there",
        m.id,
        target.name,
        target.describe()
    )))
}

/// SQL that empties the target before the dump's SQL recreates it, inside the same
/// transaction. `schemas` are the user schemas of a platform database.
pub fn prelude(target: &Target, schemas: &[String]) -> String {
    match &target.schema {
        Some(s) => format!("DROP SCHEMA IF EXISTS {} CASCADE;", quote_ident(s)),
        None => {
            let mut sql = String::new();
            for s in schemas {
                sql.push_str(&format!(
                    "DROP SCHEMA IF EXISTS {} CASCADE; ",
                    quote_ident(s)
                ));
            }
            // pg_dump of a database leaves `public` out (it exists in every database), so
            // it is recreated here as PostgreSQL 15 creates it; the dump then adds any
            // ownership or grants that differed.
            sql.push_str(
                "CREATE SCHEMA IF NOT EXISTS public; \
                 ALTER SCHEMA public OWNER TO pg_database_owner; \
                 GRANT USAGE ON SCHEMA public TO PUBLIC;",
            );
            sql
        }
    }
}

async fn user_schemas(env: &Env, target: &Target) -> Result<Vec<String>> {
    if target.kind == Kind::Schema {
        return Ok(Vec::new());
    }
    let mut conn = connect_db(env, &target.database).await?;
    let schemas = sqlx::query_scalar(
        r"SELECT nspname::text FROM pg_namespace
          WHERE nspname NOT IN ('pg_catalog', 'information_schema')
            AND nspname NOT LIKE 'pg\_toast%' AND nspname NOT LIKE 'pg\_temp%'
          ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await?;
    let _ = conn.close().await;
    Ok(schemas)
}

/// The files of one restore, beside the backup (private, removed afterwards; a crash leaves
/// them to `manifest::sweep_leftovers`).
#[derive(Debug, Clone)]
struct Work {
    schemas_list: PathBuf,
    rest_list: PathBuf,
    schemas_sql: PathBuf,
    rest_sql: PathBuf,
}

impl Work {
    fn new(dir: &Path, id: &str) -> Self {
        let file = |suffix: &str| dir.join(format!(".restore-{id}.{suffix}"));
        Self {
            schemas_list: file("schemas.list"),
            rest_list: file("rest.list"),
            schemas_sql: file("schemas.sql"),
            rest_sql: file("rest.sql"),
        }
    }

    fn files(&self) -> [&Path; 4] {
        [
            &self.schemas_list,
            &self.rest_list,
            &self.schemas_sql,
            &self.rest_sql,
        ]
    }

    fn remove(&self) {
        for f in self.files() {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// Whether a `pg_restore --list` entry creates a schema or grants on one
/// (`7; 2615 27199 SCHEMA - tenant_x steward`, `3365; 0 0 ACL - SCHEMA tenant_x steward`).
fn is_schema_entry(line: &str) -> bool {
    let Some((id, rest)) = line.split_once("; ") else {
        return false;
    };
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let desc = rest.splitn(3, ' ').nth(2).unwrap_or("");
    desc.starts_with("SCHEMA - ") || desc.starts_with("ACL - SCHEMA ")
}

/// Splits an archive's table of contents into the schema entries and all the others.
pub fn split_toc(toc: &str) -> (String, String) {
    let mut schemas = String::new();
    let mut rest = String::new();
    for line in toc.lines() {
        if line.starts_with(';') || line.trim().is_empty() {
            continue;
        }
        let part = if is_schema_entry(line) {
            &mut schemas
        } else {
            &mut rest
        };
        part.push_str(line);
        part.push('\n');
    }
    (schemas, rest)
}

/// The client program invocations of a restore.
#[derive(Debug, Clone)]
struct Commands {
    list: PgCommand,
    render_schemas: PgCommand,
    render_rest: PgCommand,
    apply: PgCommand,
}

fn commands(tools: &PgTools, target: &Target, dump: &Path, work: &Work, prelude: &str) -> Commands {
    let dump = dump.display().to_string();
    let render = |list: &Path, sql: &Path| {
        tools.offline(
            "pg_restore",
            &[
                format!("--use-list={}", list.display()),
                format!("--file={}", sql.display()),
                dump.clone(),
            ],
        )
    };
    Commands {
        list: tools.offline("pg_restore", &["--list".into(), dump.clone()]),
        render_schemas: render(&work.schemas_list, &work.schemas_sql),
        render_rest: render(&work.rest_list, &work.rest_sql),
        apply: tools.command(
            "psql",
            &target.database,
            &[
                "-X".into(),
                "-q".into(),
                "-v".into(),
                "ON_ERROR_STOP=1".into(),
                "--single-transaction".into(),
                "-c".into(),
                prelude.to_string(),
                "-f".into(),
                work.schemas_sql.display().to_string(),
                "-f".into(),
                work.rest_sql.display().to_string(),
            ],
        ),
    }
}

/// The steps of a restore, for dry runs.
pub fn plan(env: &Env, tools: &PgTools, dir: &Path, m: &Manifest, target: &Target) -> Vec<String> {
    let dump = manifest::dump_path(dir, &m.id);
    let work = Work::new(dir, &m.id);
    let prelude = prelude(target, &["<every user schema>".to_string()]);
    let c = commands(tools, target, &dump, &work, &prelude);
    let mut steps = vec![
        format!(
            "check that {} is {} bytes with sha256 {}",
            dump.display(),
            m.size,
            m.sha256
        ),
        format!(
            "read the archive's contents ({}) and split them into schemas with their grants, \
             and everything else",
            c.list.display()
        ),
        format!("render the schemas to SQL: {}", c.render_schemas.display()),
        format!("render everything else to SQL: {}", c.render_rest.display()),
    ];
    steps.extend(
        dump::plan(env, tools, target)
            .into_iter()
            .map(|s| format!("safety backup: {s}")),
    );
    steps.push(format!(
        "replace the {} in one transaction (lock_timeout 30s): {}",
        target.describe(),
        c.apply.display()
    ));
    steps.push(format!(
        "count rows and checksum the {} tables and compare them with the manifest ({} rows)",
        m.tables.len(),
        m.total_rows()
    ));
    steps
}

/// Restores backup `id` over `target_name`.
pub async fn restore(env: &Env, target_name: &str, id: &str) -> Result<Restored> {
    let (dir, m) = own_manifest(env, target_name, id)?;
    verify::check_file(&dir, &m).await?;
    let target = target::resolve(env, target_name).await?;
    check_same_target(&m, &target)?;
    let tools = PgTools::discover(env).await?;
    let work = Work::new(&dir, &m.id);
    let result = render_then_apply(env, &tools, &dir, &m, &target, &work).await;
    work.remove();
    let safety = result?;
    let tables = check_restored(env, &m, &target)
        .await
        .map_err(|e| match e {
            Error::Failed(msg) => Error::Failed(format!(
                "{msg}; the data before the restore is in safety backup {}",
                safety.id
            )),
            other => other,
        })?;
    Ok(Restored {
        manifest: m,
        safety,
        tables,
    })
}

/// Renders the dump to SQL (an unreadable archive fails here, before anything changes),
/// takes the safety backup, then applies the SQL in one transaction. Returns the safety
/// backup.
async fn render_then_apply(
    env: &Env,
    tools: &PgTools,
    dir: &Path,
    m: &Manifest,
    target: &Target,
    work: &Work,
) -> Result<Manifest> {
    let schemas = user_schemas(env, target).await?;
    let prelude = prelude(target, &schemas);
    let dump = manifest::dump_path(dir, &m.id);
    let c = commands(tools, target, &dump, work, &prelude);
    let unreadable = format!(
        "backup {} cannot be read, so nothing was restored or changed",
        m.id
    );
    // Created private before anything of the tenant's is written into them.
    for f in work.files() {
        std::fs::write(f, b"").map_err(Error::io(f))?;
        manifest::make_private(f)?;
    }
    let toc = tools.run(&c.list, &unreadable).await?;
    let (schema_entries, rest_entries) = split_toc(&String::from_utf8_lossy(&toc.stdout));
    std::fs::write(&work.schemas_list, schema_entries).map_err(Error::io(&work.schemas_list))?;
    std::fs::write(&work.rest_list, rest_entries).map_err(Error::io(&work.rest_list))?;
    tools.run(&c.render_schemas, &unreadable).await?;
    tools.run(&c.render_rest, &unreadable).await?;
    let safety = dump::backup(
        env,
        tools,
        target,
        &format!("safety before restoring {}", m.id),
    )
    .await
    .map_err(|e| match e {
        Error::Failed(msg) => Error::Failed(format!(
            "the safety backup before restoring {} failed, so nothing was restored: {msg}",
            m.id
        )),
        other => other,
    })?;
    let out = tools
        .process(&c.apply, Some(LOCK_TIMEOUT))
        .output()
        .await
        .map_err(|e| super::pgtools::spawn_error(&c.apply, e))?;
    super::pgtools::check_exit(
        &c.apply,
        &format!(
            "restoring backup {} into the {} failed and its transaction was rolled back, so \
             the data is as it was (safety backup {})",
            m.id,
            target.describe(),
            safety.id
        ),
        &out,
    )
    .map_err(|e| match e {
        Error::Failed(msg) if msg.contains("lock timeout") => Error::Failed(format!(
            "{msg}; the application held its tables for more than 30s: stop the service \
             (`steward call service_stop`) and run the restore again"
        )),
        other => other,
    })?;
    Ok(safety)
}

/// Counts the restored target in one snapshot and compares with the manifest.
async fn check_restored(env: &Env, m: &Manifest, target: &Target) -> Result<Vec<TableCheck>> {
    let mut conn = connect_db(env, &target.database).await?;
    let scope = match &target.schema {
        Some(s) => Scope::Schema(s),
        None => Scope::Database,
    };
    stats::begin_snapshot(&mut conn).await?;
    let actual = stats::table_stats(&mut conn, scope).await;
    let _ = stats::end_snapshot(&mut conn).await;
    let _ = conn.close().await;
    let (checks, problems) = stats::compare(&m.tables, &actual?);
    if problems.is_empty() {
        Ok(checks)
    } else {
        Err(Error::Failed(format!(
            "backup {} was restored into the {} but the result differs from the manifest: {}",
            m.id,
            target.describe(),
            problems.join("; ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_and_their_grants_are_restored_first() {
        let toc = ";\n; Archive created at 2026-11-23 17:40:37 UTC\n;\n\
            7; 2615 27199 SCHEMA - tenant_x steward\n\
            3365; 0 0 ACL - SCHEMA tenant_x steward\n\
            223; 1259 27201 TABLE tenant_x items tenant_user_x\n\
            3366; 0 0 COMMENT tenant_x TABLE items tenant_user_x\n\
            3357; 0 27201 TABLE DATA tenant_x items tenant_user_x\n\
            3370; 0 0 ACL tenant_x TABLE items tenant_user_x\n";
        let (schemas, rest) = split_toc(toc);
        assert_eq!(
            schemas,
            "7; 2615 27199 SCHEMA - tenant_x steward\n3365; 0 0 ACL - SCHEMA tenant_x steward\n"
        );
        assert_eq!(rest.lines().count(), 4);
        assert!(!rest.contains("SCHEMA - "));
        assert!(!is_schema_entry("; 7; 2615 27199 SCHEMA - x steward"));
    }
}
