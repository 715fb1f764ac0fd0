//! What a backup target names: a tenant's schema in the tenants database, or the whole
//! database of a platform service (the one its container's `steward.database` label names).
//!
//! The tenant schema is looked up first, in PostgreSQL only, so tenant backups keep working
//! while Docker is down; Docker is asked only when no tenant schema matches.

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;
use std::time::Duration;

use bollard::query_parameters::ListContainersOptionsBuilder;
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::ConnectOptions;
use steward_tools::ident::name_rule_violation;

use crate::env::Env;
use crate::{labels, Error, Result};

/// Label on a platform service's containers naming the database that holds its data.
pub const DATABASE_LABEL: &str = "steward.database";

/// `what` of the `NotFound` error for an unknown target; the executor rewrites its message.
pub const TARGET_WHAT: &str = "backup target";

/// What a backup holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// One tenant schema (`pg_dump -n`).
    Schema,
    /// A platform service's whole database.
    Database,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Schema => "schema",
            Kind::Database => "database",
        }
    }
}

/// A resolved backup target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The name the tools take: a tenant subdomain or a platform service.
    pub name: String,
    pub kind: Kind,
    pub database: String,
    /// The tenant schema; `None` for a whole database.
    pub schema: Option<String>,
}

impl Target {
    /// "tenant schema tenant_acme in steward_tenants" / "database rentguy".
    pub fn describe(&self) -> String {
        match &self.schema {
            Some(s) => format!("tenant schema {s} in database {}", self.database),
            None => format!("database {}", self.database),
        }
    }
}

/// The schema of tenant `subdomain`: `tenant_<id>`, id being the subdomain with '-' → '_'.
pub fn tenant_schema(subdomain: &str) -> String {
    format!("tenant_{}", subdomain.replace('-', "_"))
}

/// Refuses a name that is not a valid service name, before anything touches the world.
pub fn check_name(what: &'static str, name: &str) -> Result<()> {
    match name_rule_violation(name) {
        None => Ok(()),
        Some(rule) => Err(Error::Invalid {
            what,
            value: name.to_string(),
            rule,
        }),
    }
}

/// Quotes an SQL identifier. Every identifier that reaches SQL text goes through here.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Databases no label may point backups (and so restores) at.
fn reserved_database(env: &Env, db: &str) -> Option<&'static str> {
    let admin_db = admin_database(env);
    if ["postgres", "template0", "template1"].contains(&db) {
        Some("is a PostgreSQL system database")
    } else if db == env.config.tenant_database {
        Some("is the tenants database; tenants are backed up one schema at a time")
    } else if admin_db.as_deref() == Some(db) {
        Some("is steward's own admin database")
    } else {
        None
    }
}

fn admin_database(env: &Env) -> Option<String> {
    PgConnectOptions::from_str(&env.config.pg_url)
        .ok()
        .and_then(|o| o.get_database().map(str::to_string))
}

fn database_name_rule(db: &str) -> Option<&'static str> {
    if db.is_empty() || db.len() > 63 {
        Some("must be 1 to 63 characters")
    } else if !db
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        Some("may contain only a-z, 0-9, '_' and '-'")
    } else if !(db.as_bytes()[0].is_ascii_lowercase() || db.as_bytes()[0] == b'_') {
        Some("must start with a letter or '_'")
    } else {
        None
    }
}

/// One connection to `database` with the admin role, or `Ok(None)` when that database does
/// not exist.
pub async fn connect_db_opt(env: &Env, database: &str) -> Result<Option<PgConnection>> {
    let opts = PgConnectOptions::from_str(&env.config.pg_url)?
        .database(database)
        .application_name("steward-backup");
    let connect = tokio::time::timeout(Duration::from_secs(5), opts.connect())
        .await
        .map_err(|_| {
            Error::Postgres(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "no answer within 5s from {}:{}",
                    opts.get_host(),
                    opts.get_port()
                ),
            )))
        })?;
    match connect {
        Ok(c) => Ok(Some(c)),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("3D000") => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// One connection to `database`; a missing database is a clear `Failed` error.
pub async fn connect_db(env: &Env, database: &str) -> Result<PgConnection> {
    connect_db_opt(env, database).await?.ok_or_else(|| {
        Error::Failed(format!(
            "postgres: database {database:?} does not exist on {}",
            pg_host(env)
        ))
    })
}

/// `host:port` of the admin URL, for messages.
pub fn pg_host(env: &Env) -> String {
    PgConnectOptions::from_str(&env.config.pg_url)
        .map(|o| format!("{}:{}", o.get_host(), o.get_port()))
        .unwrap_or_else(|_| "the configured PostgreSQL".into())
}

/// Whether tenant `name`'s schema exists; `None` when the tenants database does not exist.
async fn tenant_target(env: &Env, name: &str) -> Result<Option<Target>> {
    let database = env.config.tenant_database.clone();
    let Some(mut conn) = connect_db_opt(env, &database).await? else {
        return Ok(None);
    };
    let schema = tenant_schema(name);
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
            .bind(schema.clone())
            .fetch_one(&mut conn)
            .await?;
    Ok(exists.then(|| Target {
        name: name.to_string(),
        kind: Kind::Schema,
        database,
        schema: Some(schema),
    }))
}

/// The database a platform service's containers name in their `steward.database` label.
async fn platform_target(env: &Env, name: &str) -> Result<Option<Target>> {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("{}={name}", labels::SERVICE)],
    )]);
    let opts = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let containers = env
        .platform
        .docker
        .api()
        .list_containers(Some(opts))
        .await?;
    if containers.is_empty() {
        return Ok(None);
    }
    let databases: BTreeSet<String> = containers
        .iter()
        .filter_map(|c| c.labels.as_ref()?.get(DATABASE_LABEL).cloned())
        .collect();
    let database = match databases.len() {
        0 => {
            return Err(Error::Failed(format!(
                "service {name:?} is managed by steward but none of its containers has a \
                 {DATABASE_LABEL} label, so it has no database to back up"
            )))
        }
        1 => databases.into_iter().next().unwrap_or_default(),
        _ => {
            return Err(Error::Conflict(format!(
                "the containers of service {name:?} disagree on their {DATABASE_LABEL} label \
                 ({}); fix the labels so exactly one database is named",
                databases.into_iter().collect::<Vec<_>>().join(", ")
            )))
        }
    };
    if let Some(rule) = database_name_rule(&database).or_else(|| reserved_database(env, &database))
    {
        return Err(Error::Invalid {
            what: "database (from the steward.database label)",
            value: database,
            rule,
        });
    }
    let pool = env.admin_pool().await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(database.clone())
            .fetch_one(pool)
            .await?;
    if !exists {
        return Err(Error::Failed(format!(
            "service {name:?} names database {database:?} in its {DATABASE_LABEL} label, but \
             PostgreSQL at {} has no such database",
            pg_host(env)
        )));
    }
    Ok(Some(Target {
        name: name.to_string(),
        kind: Kind::Database,
        database,
        schema: None,
    }))
}

/// Resolves `name` to a tenant schema or a platform database; neither is `NotFound`.
pub async fn resolve(env: &Env, name: &str) -> Result<Target> {
    check_name("backup target", name)?;
    if let Some(t) = tenant_target(env, name).await? {
        return Ok(t);
    }
    if let Some(t) = platform_target(env, name).await? {
        return Ok(t);
    }
    Err(Error::NotFound {
        what: TARGET_WHAT,
        name: name.to_string(),
    })
}

/// Every backup target there is: each managed service that is a tenant with a schema or a
/// platform service with a database, by name. Services without a database are left out.
pub async fn all(env: &Env) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for service in crate::inventory::services(env, None).await? {
        match resolve(env, &service.name).await {
            Ok(t) => out.push(t.name),
            Err(Error::NotFound { .. } | Error::Failed(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Resolves tenant `subdomain` to its schema without asking Docker.
pub async fn resolve_tenant(env: &Env, subdomain: &str) -> Result<Target> {
    check_name("tenant", subdomain)?;
    tenant_target(env, subdomain)
        .await?
        .ok_or_else(|| Error::NotFound {
            what: TARGET_WHAT,
            name: subdomain.to_string(),
        })
}

/// The message for an unknown target: what was looked for, and where.
pub fn not_found_message(env: &Env, name: &str) -> String {
    format!(
        "backup target {name:?} not found: there is no tenant schema {} in database {} and no \
         platform service {name:?} whose containers carry a {DATABASE_LABEL} label; \
         `steward call service_list '{{}}'` lists what steward manages",
        tenant_schema(name),
        env.config.tenant_database
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_quoting() {
        assert_eq!(tenant_schema("acme-research"), "tenant_acme_research");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert!(database_name_rule("rentguy_db").is_none());
        assert!(database_name_rule("x; drop").is_some());
        assert!(database_name_rule("Upper").is_some());
        assert!(check_name("backup target", "../etc").is_err());
    }
}
