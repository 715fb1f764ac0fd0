//! Database backups: pg_dump per tenant schema or platform database, with a verified manifest.
//!
//! - [`target`]: what a target names (tenant schema or a platform service's database).
//! - [`dump`]: `db_backup`, pg_dump in the snapshot the row counts were read in.
//! - [`manifest`]: the backup directory, ids, manifests and verification records.
//! - [`verify`]: `db_verify_backup`, sha256 then a restore into a scratch database.
//! - [`restore`]: `db_restore`, safety backup then a one-transaction replacement.
//! - [`retention`]: which verified backups to keep, applied after a verified backup.
//! - [`stats`]: exact row counts and checksums per table, and their comparison.
//! - [`pgtools`]: finding and running pg_dump, pg_restore and psql.

pub mod dump;
pub mod manifest;
pub mod pgtools;
pub mod restore;
pub mod retention;
pub mod stats;
pub mod target;
pub mod verify;

use std::sync::Arc;

use serde_json::{json, Value};
use steward_tools::{Call, Done, ErrorKind, Executor, Plan, Result, ToolError};

use crate::env::Env;
use crate::Error;

use manifest::Manifest;
use pgtools::PgTools;
use target::Target;

/// Serves the database backup tools.
#[derive(Debug, Clone)]
pub struct BackupExecutor {
    env: Arc<Env>,
}

impl BackupExecutor {
    pub fn new(env: Arc<Env>) -> Self {
        Self { env }
    }
}

/// Backs up tenant `subdomain`'s schema and returns the backup id. `tenant_destroy` calls it
/// for the final backup; it asks PostgreSQL only, so it works while Docker is down. A tenant
/// whose schema does not exist is `NotFound`.
pub async fn backup_tenant_schema(env: &Env, subdomain: &str) -> crate::Result<String> {
    let target = target::resolve_tenant(env, subdomain).await?;
    let tools = PgTools::discover(env).await?;
    let m = dump::backup(env, &tools, &target, "tenant backup").await?;
    Ok(m.id)
}

/// Converts an executor error, giving the not-found cases messages that say where steward
/// looked and which tool lists what exists.
fn tool_error(env: &Env, e: Error) -> ToolError {
    match e {
        Error::NotFound { what, name } if what == target::TARGET_WHAT => {
            ToolError::new(ErrorKind::NotFound, target::not_found_message(env, &name))
        }
        Error::NotFound {
            what: "backup",
            name,
        } => {
            let dir = manifest::target_of(&name)
                .map(|t| manifest::target_dir(env, &t).display().to_string())
                .unwrap_or_default();
            let target = manifest::target_of(&name).unwrap_or_default();
            ToolError::new(
                ErrorKind::NotFound,
                format!(
                    "backup {name:?} not found in {dir}; `steward call db_backups_list \
                     '{{\"target\":\"{target}\"}}'` lists the backups of {target:?}"
                ),
            )
        }
        other => other.into(),
    }
}

fn describe_backup(m: &Manifest) -> String {
    let what = match &m.schema {
        Some(s) => format!("tenant schema {s}"),
        None => format!("database {}", m.database),
    };
    format!(
        "{what} ({} tables, {} rows, {})",
        m.tables.len(),
        m.total_rows(),
        manifest::human_size(m.size)
    )
}

fn manifest_json(env: &Env, m: &Manifest) -> Value {
    let dir = manifest::target_dir(env, &m.target);
    json!({
        "backup": m.id,
        "target": m.target,
        "kind": m.kind,
        "database": m.database,
        "schema": m.schema,
        "created_at": m.created_at,
        "reason": m.reason,
        "path": manifest::dump_path(&dir, &m.id),
        "manifest": manifest::manifest_path(&dir, &m.id),
        "size": m.size,
        "sha256": m.sha256,
        "tables": m.tables.iter().map(|t| json!({"table": t.table, "rows": t.rows})).collect::<Vec<_>>(),
    })
}

impl BackupExecutor {
    async fn tools_or_names(&self) -> crate::Result<PgTools> {
        match PgTools::discover(&self.env).await {
            Ok(t) => Ok(t),
            // A dry run still shows the steps when the programs are missing.
            Err(Error::Failed(_)) => PgTools::unresolved(&self.env),
            Err(e) => Err(e),
        }
    }

    async fn plan(&self, call: &Call) -> crate::Result<Plan> {
        let env = &*self.env;
        match call {
            Call::DbBackup(a) => {
                let target = target::resolve(env, a.target.as_str()).await?;
                let tools = self.tools_or_names().await?;
                Ok(Plan {
                    summary: format!("back up the {}", target.describe()),
                    steps: dump::plan(env, &tools, &target),
                    changes: true,
                })
            }
            Call::DbBackupsList(a) => {
                target::check_name("backup target", a.target.as_str())?;
                let dir = manifest::target_dir(env, a.target.as_str());
                Ok(Plan {
                    summary: format!("list the backups of {}", a.target),
                    steps: vec![format!(
                        "read the manifests and verification records in {}",
                        dir.display()
                    )],
                    changes: false,
                })
            }
            Call::DbVerifyBackup(a) => {
                let (dir, m) = manifest::read_manifest(env, a.backup.as_str())?;
                let tools = self.tools_or_names().await?;
                Ok(Plan {
                    summary: format!(
                        "verify backup {} of {} in a scratch database, then drop it",
                        m.id, m.target
                    ),
                    steps: verify::plan(env, &tools, &dir, &m),
                    changes: false,
                })
            }
            Call::DbRestore(a) => {
                let (dir, m) = restore::own_manifest(env, a.target.as_str(), a.backup.as_str())?;
                let target: Target = target::resolve(env, a.target.as_str()).await?;
                let tools = self.tools_or_names().await?;
                Ok(Plan {
                    summary: format!(
                        "replace the {} with backup {} ({}), after a safety backup",
                        target.describe(),
                        m.id,
                        m.created_at
                    ),
                    steps: restore::plan(env, &tools, &dir, &m, &target),
                    changes: true,
                })
            }
            other => Err(Error::Failed(format!(
                "the backup executor does not serve {}",
                other.tool()
            ))),
        }
    }

    async fn run(&self, call: &Call) -> crate::Result<Done> {
        let env = &*self.env;
        match call {
            Call::DbBackup(a) => {
                let target = target::resolve(env, a.target.as_str()).await?;
                let tools = PgTools::discover(env).await?;
                let m = dump::backup(env, &tools, &target, "db_backup").await?;
                Ok(Done {
                    summary: format!("backed up {} as {}", describe_backup(&m), m.id),
                    output: manifest_json(env, &m),
                    changed: true,
                })
            }
            Call::DbBackupsList(a) => {
                let name = a.target.as_str();
                target::check_name("backup target", name)?;
                let dir = manifest::target_dir(env, name);
                let backups = manifest::list(env, name)?;
                let rows: Vec<Value> = backups
                    .iter()
                    .map(|m| {
                        let verified = manifest::read_verify(env, name, &m.id).map(
                            |v| json!({"ok": v.ok, "at": v.verified_at, "message": v.message}),
                        );
                        json!({
                            "backup": m.id,
                            "created_at": m.created_at,
                            "kind": m.kind,
                            "reason": m.reason,
                            "size": m.size,
                            "rows": m.total_rows(),
                            "tables": m.tables.len(),
                            "dump_present": manifest::dump_path(&dir, &m.id).is_file(),
                            "verified": verified,
                        })
                    })
                    .collect();
                let summary = match backups.first() {
                    Some(newest) => format!(
                        "{} backup(s) of {name}, newest {} ({})",
                        backups.len(),
                        newest.id,
                        newest.created_at
                    ),
                    None => format!("no backups of {name} in {}", dir.display()),
                };
                Ok(Done {
                    summary,
                    output: json!({"target": name, "dir": dir, "backups": rows}),
                    changed: false,
                })
            }
            Call::DbVerifyBackup(a) => {
                let v = verify::verify(env, a.backup.as_str()).await?;
                Ok(Done {
                    summary: format!(
                        "backup {} verified: sha256 matches and a restore into a scratch \
                         database has the manifest's counts and checksums ({})",
                        v.manifest.id,
                        describe_backup(&v.manifest)
                    ),
                    output: json!({
                        "backup": v.manifest.id,
                        "ok": true,
                        "sha256": v.manifest.sha256,
                        "scratch_database": v.scratch_database,
                        "tables": v.tables,
                    }),
                    changed: false,
                })
            }
            Call::DbRestore(a) => {
                let r = restore::restore(env, a.target.as_str(), a.backup.as_str()).await?;
                Ok(Done {
                    summary: format!(
                        "restored {} from backup {}; counts and checksums match the manifest; \
                         the data before is in safety backup {}",
                        describe_backup(&r.manifest),
                        r.manifest.id,
                        r.safety.id
                    ),
                    output: json!({
                        "backup": r.manifest.id,
                        "target": r.manifest.target,
                        "safety_backup": r.safety.id,
                        "tables": r.tables,
                    }),
                    changed: true,
                })
            }
            other => Err(Error::Failed(format!(
                "the backup executor does not serve {}",
                other.tool()
            ))),
        }
    }
}

#[async_trait::async_trait]
impl Executor for BackupExecutor {
    fn tools(&self) -> &'static [&'static str] {
        &[
            "db_backup",
            "db_backups_list",
            "db_verify_backup",
            "db_restore",
        ]
    }

    async fn dry_run(&self, call: &Call) -> Result<Plan> {
        self.plan(call).await.map_err(|e| tool_error(&self.env, e))
    }

    async fn execute(&self, call: &Call) -> Result<Done> {
        self.run(call).await.map_err(|e| tool_error(&self.env, e))
    }
}
