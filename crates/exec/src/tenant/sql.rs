//! The tenant's PostgreSQL side: database, schema, role and grants, each checked before it is
//! changed so a re-run after a crash converges and reports precisely what it changed.
//!
//! Utility statements (`CREATE ROLE`, `GRANT`, ...) take no bind parameters, so every name is
//! validated and quoted by [`quote_ident`] and every value by [`quote_literal`]; nothing is
//! interpolated raw. Queries that can take parameters do.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection, Postgres, Transaction};

use super::names::TenantNames;
use crate::{Error, Result};

/// How long one tenant statement may run before PostgreSQL cancels it.
pub const STATEMENT_TIMEOUT: &str = "30s";

/// Serialises changes to `pg_database.datacl`: concurrent GRANT/REVOKE on one database fail
/// with "tuple concurrently updated", and tenants are provisioned in parallel.
const ACL_LOCK: i64 = 0x5354_4557_4152_4431; // "STEWARD1"

/// Quotes a SQL identifier after checking it is one of the names steward makes:
/// 1 to 63 bytes of `a-z`, `0-9` and `_`, starting with a letter or `_`. The check refuses
/// anything unexpected; the quoting (doubling `"`) would make even that harmless.
pub fn quote_ident(name: &str) -> Result<String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && (name.as_bytes()[0].is_ascii_lowercase() || name.as_bytes()[0] == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok {
        return Err(Error::Invalid {
            what: "SQL identifier",
            value: name.into(),
            rule: "must be 1 to 63 characters of a-z, 0-9 and '_', not starting with a digit",
        });
    }
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

/// Quotes a string literal the way PostgreSQL's `quote_literal` does: `'` doubled, and when
/// there is a backslash, an `E'...'` literal with `\` doubled, so the result is right whatever
/// `standard_conforming_strings` says. NUL cannot be sent at all and is refused.
pub fn quote_literal(value: &str) -> Result<String> {
    if value.contains('\0') {
        return Err(Error::Invalid {
            what: "SQL literal",
            value: value.replace('\0', "\\0"),
            rule: "must not contain NUL",
        });
    }
    let body = value.replace('\'', "''");
    Ok(if body.contains('\\') {
        format!("E'{}'", body.replace('\\', "\\\\"))
    } else {
        format!("'{body}'")
    })
}

/// Connection options for `database` with the admin URL's credentials.
pub fn options_for(pg_url: &str, database: &str) -> Result<PgConnectOptions> {
    Ok(PgConnectOptions::from_str(pg_url)?.database(database))
}

/// A small pool on the tenant database (which must exist).
pub async fn tenant_pool(pg_url: &str, database: &str) -> Result<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options_for(pg_url, database)?)
        .await?)
}

fn sqlstate(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(d) => d.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// True when `e` says the object already exists (a concurrent run made it first).
fn already_exists(e: &sqlx::Error) -> bool {
    matches!(
        sqlstate(e).as_deref(),
        // duplicate_database, duplicate_object, duplicate_schema, unique_violation
        Some("42P04" | "42710" | "42P06" | "23505")
    )
}

pub async fn database_exists(admin: &PgPool, db: &str) -> Result<bool> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(db)
            .fetch_one(admin)
            .await?,
    )
}

/// Creates the tenant database (owned by the admin role) if missing. True when created.
pub async fn create_database(admin: &PgPool, db: &str) -> Result<bool> {
    if database_exists(admin, db).await? {
        return Ok(false);
    }
    let stmt = format!("CREATE DATABASE {}", quote_ident(db)?);
    for attempt in 0..5 {
        match sqlx::raw_sql(&stmt).execute(admin).await {
            Ok(_) => return Ok(true),
            Err(e) if already_exists(&e) => return Ok(false),
            // object_in_use: another CREATE DATABASE is copying template1 right now.
            Err(e) if sqlstate(&e).as_deref() == Some("55006") && attempt < 4 => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if database_exists(admin, db).await? {
                    return Ok(false);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(false)
}

/// Whether PUBLIC (every role) still has any privilege on the tenant database or on its
/// `public` schema. Run on a connection to the tenant database.
pub async fn public_has_access(tenant: &PgPool, db: &str) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT has_database_privilege('public', $1, 'CONNECT')
             OR has_database_privilege('public', $1, 'TEMP')
             OR has_database_privilege('public', $1, 'CREATE')
             OR has_schema_privilege('public', 'public', 'USAGE')
             OR has_schema_privilege('public', 'public', 'CREATE')",
    )
    .bind(db)
    .fetch_one(tenant)
    .await?)
}

/// Runs `stmts` in one transaction holding the ACL lock.
async fn with_acl_lock(tenant: &PgPool, stmts: &[String]) -> Result<()> {
    let mut tx: Transaction<'static, Postgres> = tenant.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(ACL_LOCK)
        .execute(&mut *tx)
        .await?;
    for stmt in stmts {
        sqlx::query(stmt).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Takes every privilege away from PUBLIC on the tenant database and its `public` schema, so
/// a tenant role gets only what is granted to it by name.
pub async fn lock_down_public(tenant: &PgPool, db: &str) -> Result<()> {
    with_acl_lock(
        tenant,
        &[
            format!("REVOKE ALL ON DATABASE {} FROM PUBLIC", quote_ident(db)?),
            "REVOKE ALL ON SCHEMA public FROM PUBLIC".to_string(),
        ],
    )
    .await
}

pub async fn schema_exists(tenant: &PgPool, schema: &str) -> Result<bool> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
            .bind(schema)
            .fetch_one(tenant)
            .await?,
    )
}

/// Creates the tenant schema, owned by the admin role (the tenant gets USAGE and CREATE on
/// it, never ownership, so it cannot grant its schema away). True when created.
pub async fn create_schema(tenant: &PgPool, schema: &str) -> Result<bool> {
    if schema_exists(tenant, schema).await? {
        return Ok(false);
    }
    let stmt = format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(schema)?);
    match sqlx::raw_sql(&stmt).execute(tenant).await {
        Ok(_) => Ok(true),
        Err(e) if already_exists(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The role as PostgreSQL has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleState {
    pub can_login: bool,
    pub connection_limit: i32,
    /// `key=value` settings, e.g. `search_path=tenant_acme`.
    pub config: Vec<String>,
}

pub async fn role_state(pool: &PgPool, role: &str) -> Result<Option<RoleState>> {
    let row: Option<(bool, i32, Option<Vec<String>>)> = sqlx::query_as(
        "SELECT rolcanlogin, rolconnlimit, rolconfig FROM pg_roles WHERE rolname = $1",
    )
    .bind(role)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(can_login, connection_limit, config)| RoleState {
        can_login,
        connection_limit,
        config: config.unwrap_or_default(),
    }))
}

/// What the tenant role must look like.
#[derive(Debug, Clone)]
pub struct RoleSpec<'a> {
    pub names: &'a TenantNames,
    pub connection_limit: i32,
}

impl RoleSpec<'_> {
    fn settings(&self) -> [String; 2] {
        [
            format!("search_path={}", self.names.schema),
            format!("statement_timeout={STATEMENT_TIMEOUT}"),
        ]
    }

    /// Whether `state` already matches (the password cannot be read back; the caller knows
    /// from its secret file whether it must be set).
    pub fn matches(&self, state: &RoleState) -> bool {
        state.can_login
            && state.connection_limit == self.connection_limit
            && self.settings().iter().all(|s| state.config.contains(s))
    }
}

/// Converges the role: created with `password` when missing, else its attributes fixed and
/// the password set when `set_password`. True when anything changed.
pub async fn ensure_role(
    admin: &PgPool,
    spec: &RoleSpec<'_>,
    password: &str,
    set_password: bool,
) -> Result<bool> {
    let role = quote_ident(&spec.names.role)?;
    let login = format!(
        "LOGIN CONNECTION LIMIT {} PASSWORD {}",
        spec.connection_limit,
        quote_literal(password)?
    );
    // Only CREATE may spell out the NO... attributes: PostgreSQL 15 refuses them in ALTER
    // ROLE from a non-superuser even when they change nothing.
    let create = format!("NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION {login}");
    let alter = if set_password {
        login.clone()
    } else {
        format!("LOGIN CONNECTION LIMIT {}", spec.connection_limit)
    };
    let settings = format!(
        "ALTER ROLE {role} SET search_path = {}; ALTER ROLE {role} SET statement_timeout = {};",
        quote_ident(&spec.names.schema)?,
        quote_literal(STATEMENT_TIMEOUT)?
    );
    match role_state(admin, &spec.names.role).await? {
        None => {
            match sqlx::raw_sql(&format!("CREATE ROLE {role} {create}"))
                .execute(admin)
                .await
            {
                Ok(_) => {}
                // Made by a concurrent run: fall through and converge its attributes.
                Err(e) if already_exists(&e) => {
                    sqlx::raw_sql(&format!("ALTER ROLE {role} {login}"))
                        .execute(admin)
                        .await?;
                }
                Err(e) => return Err(e.into()),
            }
            sqlx::raw_sql(&settings).execute(admin).await?;
            Ok(true)
        }
        Some(state) if spec.matches(&state) && !set_password => Ok(false),
        Some(_) => {
            sqlx::raw_sql(&format!("ALTER ROLE {role} {alter}; {settings}"))
                .execute(admin)
                .await?;
            Ok(true)
        }
    }
}

/// The tenant role's effective privileges that matter for isolation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    pub connect: bool,
    pub temp_or_create_db: bool,
    pub schema_usage: bool,
    pub schema_create: bool,
    pub public_schema: bool,
    /// The admin role can use the tenant role's privileges (to dump its tables).
    pub admin_member: bool,
}

impl Grants {
    pub fn is_exact(&self) -> bool {
        self.connect
            && !self.temp_or_create_db
            && self.schema_usage
            && self.schema_create
            && !self.public_schema
            && self.admin_member
    }
}

pub async fn grants(tenant: &PgPool, names: &TenantNames) -> Result<Grants> {
    let row: (bool, bool, bool, bool, bool, bool) = sqlx::query_as(
        "SELECT has_database_privilege($1, $2, 'CONNECT'),
                has_database_privilege($1, $2, 'TEMP') OR has_database_privilege($1, $2, 'CREATE'),
                has_schema_privilege($1, $3, 'USAGE'),
                has_schema_privilege($1, $3, 'CREATE'),
                has_schema_privilege($1, 'public', 'USAGE') OR has_schema_privilege($1, 'public', 'CREATE'),
                pg_has_role(current_user, $1, 'USAGE')",
    )
    .bind(&names.role)
    .bind(&names.database)
    .bind(&names.schema)
    .fetch_one(tenant)
    .await?;
    Ok(Grants {
        connect: row.0,
        temp_or_create_db: row.1,
        schema_usage: row.2,
        schema_create: row.3,
        public_schema: row.4,
        admin_member: row.5,
    })
}

/// REVOKE first, then GRANT exactly: CONNECT on the tenant database, USAGE and CREATE on the
/// tenant's own schema, nothing on `public`. The admin role becomes a member of the tenant
/// role so it can dump and drop what the tenant creates (PostgreSQL 15: CREATEROLE may grant
/// membership in roles it manages). True when anything changed.
pub async fn ensure_grants(tenant: &PgPool, names: &TenantNames) -> Result<bool> {
    if grants(tenant, names).await?.is_exact() {
        return Ok(false);
    }
    let role = quote_ident(&names.role)?;
    let db = quote_ident(&names.database)?;
    let schema = quote_ident(&names.schema)?;
    with_acl_lock(
        tenant,
        &[
            format!("REVOKE ALL ON SCHEMA public FROM {role}"),
            format!("REVOKE ALL ON DATABASE {db} FROM PUBLIC"),
            format!("REVOKE ALL ON DATABASE {db} FROM {role}"),
            format!("REVOKE ALL ON SCHEMA {schema} FROM PUBLIC"),
            format!("GRANT CONNECT ON DATABASE {db} TO {role}"),
            format!("GRANT USAGE, CREATE ON SCHEMA {schema} TO {role}"),
            format!("GRANT {role} TO CURRENT_USER"),
        ],
    )
    .await?;
    Ok(true)
}

/// Stops new logins of the role and terminates its sessions. Returns how many sessions
/// were terminated, or `None` when the role does not exist.
pub async fn end_sessions(admin: &PgPool, role: &str) -> Result<Option<u64>> {
    let Some(state) = role_state(admin, role).await? else {
        return Ok(None);
    };
    let quoted = quote_ident(role)?;
    if state.can_login {
        sqlx::raw_sql(&format!("ALTER ROLE {quoted} NOLOGIN"))
            .execute(admin)
            .await?;
    }
    // Signalling another role's backend needs its privileges: take them if a crash came
    // before the grants step gave them.
    if !sqlx::query_scalar::<_, bool>("SELECT pg_has_role(current_user, $1, 'USAGE')")
        .bind(role)
        .fetch_one(admin)
        .await?
    {
        sqlx::raw_sql(&format!("GRANT {quoted} TO CURRENT_USER"))
            .execute(admin)
            .await?;
    }
    let terminated: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
    )
    .bind(role)
    .fetch_all(admin)
    .await?;
    let n = terminated.into_iter().filter(|t| *t).count() as u64;
    Ok(Some(n + u64::from(state.can_login)))
}

/// Drops the tenant schema with everything in it. True when it existed.
pub async fn drop_schema(tenant: &PgPool, schema: &str) -> Result<bool> {
    if !schema_exists(tenant, schema).await? {
        return Ok(false);
    }
    sqlx::raw_sql(&format!(
        "DROP SCHEMA IF EXISTS {} CASCADE",
        quote_ident(schema)?
    ))
    .execute(tenant)
    .await?;
    Ok(true)
}

/// Drops the role after removing whatever it still owns or was granted in the tenant
/// database (`DROP OWNED` also revokes its CONNECT there). True when it existed.
pub async fn drop_role(admin: &PgPool, tenant: Option<&PgPool>, role: &str) -> Result<bool> {
    if role_state(admin, role).await?.is_none() {
        return Ok(false);
    }
    let quoted = quote_ident(role)?;
    if !sqlx::query_scalar::<_, bool>("SELECT pg_has_role(current_user, $1, 'USAGE')")
        .bind(role)
        .fetch_one(admin)
        .await?
    {
        sqlx::raw_sql(&format!("GRANT {quoted} TO CURRENT_USER"))
            .execute(admin)
            .await?;
    }
    if let Some(tenant) = tenant {
        with_acl_lock(tenant, &[format!("DROP OWNED BY {quoted}")]).await?;
    }
    match sqlx::raw_sql(&format!("DROP ROLE IF EXISTS {quoted}"))
        .execute(admin)
        .await
    {
        Ok(_) => Ok(true),
        Err(e) => Err(Error::Failed(format!(
            "postgres: cannot drop role {role}: {e}; objects in databases other than the tenant \
             database may still depend on it (run DROP OWNED BY {role} there, then re-run)"
        ))),
    }
}

/// First key of the per-tenant advisory locks ("STEN").
const TENANT_LOCK_SPACE: i32 = 0x5354_454E;

/// Exclusive right to change one tenant, held on a connection of its own: two provisions or
/// destroys of the same tenant never interleave, and a crash (the connection closes) frees it.
#[derive(Debug)]
pub struct TenantLock(Option<PgConnection>);

impl TenantLock {
    /// Waits up to `timeout` for the lock of `subdomain`.
    pub async fn acquire(admin: &PgPool, subdomain: &str, timeout: Duration) -> Result<Self> {
        // Detached from the pool: dropping it closes the session, never returns a connection
        // that still holds the lock.
        let mut conn = admin.acquire().await?.detach();
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
                .bind(TENANT_LOCK_SPACE)
                .bind(format!("tenant:{subdomain}"))
                .fetch_one(&mut conn)
                .await?;
            if got {
                return Ok(Self(Some(conn)));
            }
            if std::time::Instant::now() >= deadline {
                return Err(Error::Conflict(format!(
                    "another tenant_provision or tenant_destroy of {subdomain} is still running                      after {timeout:?}; try again when it has finished"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ends the session, which releases the lock.
    pub async fn release(mut self) {
        if let Some(conn) = self.0.take() {
            let _ = conn.close().await;
        }
    }
}

/// Tenant roles that exist, for the subdomain check.
pub async fn tenant_roles(admin: &PgPool) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT rolname FROM pg_roles WHERE rolname LIKE 'tenant\\_user\\_%' ORDER BY rolname",
    )
    .fetch_all(admin)
    .await?)
}

/// Checks that the role can log in with `password` (the secret file and the role agree).
pub async fn can_login(pg_url: &str, names: &TenantNames, password: &str) -> Result<bool> {
    use sqlx::ConnectOptions;
    let opts = options_for(pg_url, &names.database)?
        .username(&names.role)
        .password(password);
    match opts.connect().await {
        Ok(conn) => {
            let conn: PgConnection = conn;
            let _ = conn.close().await;
            Ok(true)
        }
        // The password is checked before the CONNECT privilege: a refusal for lack of
        // CONNECT (a crash came before the grants step) means the password is right.
        Err(e) if sqlstate(&e).as_deref() == Some("42501") => Ok(true),
        // invalid_password / invalid_authorization_specification
        Err(e) if matches!(sqlstate(&e).as_deref(), Some("28P01" | "28000")) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_validated_and_quoted() {
        assert_eq!(quote_ident("tenant_acme").unwrap(), "\"tenant_acme\"");
        assert_eq!(quote_ident("_x9").unwrap(), "\"_x9\"");
        for bad in [
            "",
            "Tenant",
            "x\"; DROP ROLE steward; --",
            "a b",
            "9x",
            "x-y",
            "../x",
            &"a".repeat(64),
        ] {
            assert!(quote_ident(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn literals_are_escaped_like_quote_literal() {
        assert_eq!(quote_literal("abc").unwrap(), "'abc'");
        assert_eq!(quote_literal("it's").unwrap(), "'it''s'");
        assert_eq!(quote_literal(r"a\b'c").unwrap(), r"E'a\\b''c'");
        assert_eq!(
            quote_literal("'; DROP ROLE x; --").unwrap(),
            "'''; DROP ROLE x; --'"
        );
        assert!(quote_literal("a\0b").is_err());
    }
}
