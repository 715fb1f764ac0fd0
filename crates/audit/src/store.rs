use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::{Error, Result};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Which database holds Steward's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// Picks the backend from a URL's scheme.
    pub fn of_url(url: &str) -> Result<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(Error::UnsupportedUrl(url.to_string()))
        }
    }
}

/// A statement written once with PostgreSQL's `$n` placeholders, as `store`'s backend takes
/// it (SQLite numbers them `?n`). With [`on_pool!`](crate::on_pool) every table's queries are
/// written once for both backends.
pub fn sql_for(store: &Store, sql: &str) -> String {
    match store {
        Store::Postgres(_) => sql.to_string(),
        Store::Sqlite(_) => sql.replace('$', "?"),
    }
}

/// `($1,$2),($3,$4),…`: `rows` rows of `cols` placeholders for a multi-row `VALUES`, as
/// `store`'s backend takes them.
pub fn value_rows(store: &Store, rows: usize, cols: usize) -> String {
    let mut s = String::new();
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push(',');
            }
            s.push_str(&format!("${}", r * cols + c + 1));
        }
        s.push(')');
    }
    sql_for(store, &s)
}

/// Runs `$body` with `$pool` bound to whichever pool the [`Store`] holds: the same code is
/// expanded for SQLite and PostgreSQL, so the two paths cannot drift apart.
#[macro_export]
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            $crate::Store::Sqlite($pool) => $body,
            $crate::Store::Postgres($pool) => $body,
        }
    };
}

/// A migrated connection pool to Steward's state store.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Store {
    /// Opens the store at `url` (creating a SQLite file and its folder if needed) and applies
    /// pending migrations, so every caller sees the current schema.
    pub async fn open(url: &str) -> Result<Store> {
        match Backend::of_url(url)? {
            Backend::Sqlite => {
                // Held until migrated (see `open_sqlite`).
                let (pool, _guard) = open_sqlite(url).await?;
                let store = Store::Sqlite(pool);
                store.migrate().await?;
                store.ensure_id().await?;
                Ok(store)
            }
            Backend::Postgres => {
                // sqlx holds a PostgreSQL advisory lock while it migrates.
                let store = Store::Postgres(open_postgres(url).await?);
                store.migrate().await?;
                store.ensure_id().await?;
                Ok(store)
            }
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Store::Sqlite(_) => Backend::Sqlite,
            Store::Postgres(_) => Backend::Postgres,
        }
    }

    async fn migrate(&self) -> Result<()> {
        let backend = self.backend().name();
        let res = match self {
            Store::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await,
            Store::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await,
        };
        res.map_err(|source| Error::Migrate { backend, source })
    }

    /// Gives the store its identity on first open: a random id in the one-row table
    /// `steward_store`. Audit checkpoints are kept per store id (see [`crate::checkpoint`]), so
    /// a home that is pointed at another store never mixes that store's heads with its own.
    ///
    /// Created here rather than by a migration so the schema version (which doctor reports)
    /// stays put. SQLite runs this under the migration lock `open` holds; PostgreSQL under a
    /// transaction-scoped advisory lock, since concurrent `CREATE TABLE IF NOT EXISTS` can
    /// still collide there.
    async fn ensure_id(&self) -> Result<()> {
        let create = "CREATE TABLE IF NOT EXISTS steward_store (\
                      singleton INTEGER PRIMARY KEY CHECK (singleton = 1), \
                      id TEXT NOT NULL, created_at_ms BIGINT NOT NULL)";
        let insert = "INSERT INTO steward_store (singleton, id, created_at_ms) \
                      VALUES (1, $1, $2) ON CONFLICT DO NOTHING";
        let id = uuid::Uuid::new_v4().simple().to_string();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let res = match self {
            Store::Sqlite(pool) => {
                async {
                    sqlx::query(create).execute(pool).await?;
                    sqlx::query(insert)
                        .bind(&id)
                        .bind(now)
                        .execute(pool)
                        .await?;
                    Ok::<(), sqlx::Error>(())
                }
                .await
            }
            Store::Postgres(pool) => {
                async {
                    let mut tx = pool.begin().await?;
                    // Any constant will do; it only has to be the same in every process.
                    sqlx::query("SELECT pg_advisory_xact_lock(7236837474541282601)")
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(create).execute(&mut *tx).await?;
                    sqlx::query(insert)
                        .bind(&id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await
                }
                .await
            }
        };
        res.map_err(|source| Error::Database {
            backend: self.backend().name(),
            source,
        })
    }

    /// The store's identity (see `ensure_id`). Only letters, digits, `-` and `_` are
    /// accepted, since the id names a folder: anyone who can write the database must not be
    /// able to steer checkpoint files elsewhere with `../`.
    pub async fn id(&self) -> Result<String> {
        let sql = "SELECT id FROM steward_store WHERE singleton = 1";
        let res: std::result::Result<Option<String>, sqlx::Error> = match self {
            Store::Sqlite(pool) => sqlx::query_scalar(sql).fetch_optional(pool).await,
            Store::Postgres(pool) => sqlx::query_scalar(sql).fetch_optional(pool).await,
        };
        let id = res.map_err(|source| Error::Database {
            backend: self.backend().name(),
            source,
        })?;
        match id {
            Some(id)
                if !id.is_empty()
                    && id.len() <= 64
                    && id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
            {
                Ok(id)
            }
            Some(id) => Err(Error::StoreId(format!(
                "the store id {id:?} in table steward_store is not a plain id"
            ))),
            None => Err(Error::StoreId(
                "table steward_store has no row (was it deleted?); reopen the store to give \
                 it a new id"
                    .into(),
            )),
        }
    }

    /// Highest applied migration version; doctor reports it.
    pub async fn schema_version(&self) -> Result<i64> {
        let sql = "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success";
        let res = match self {
            Store::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
            Store::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        };
        res.map_err(|source| Error::Database {
            backend: self.backend().name(),
            source,
        })
    }

    pub async fn close(&self) {
        match self {
            Store::Sqlite(pool) => pool.close().await,
            Store::Postgres(pool) => pool.close().await,
        }
    }
}

/// Durability, the same on both backends: a commit survives a crash of Steward itself
/// (the database has it), and the store is never corrupted, but a crash of the OS or power
/// loss may lose the last fraction of a second of commits. A synchronous flush per commit
/// costs 0.2-0.5 ms here, which would cap sequential audit appends near 2,000/s on SQLite
/// and 1,600/s on PostgreSQL. Lost tail records still show: the signed checkpoint then
/// reaches past the end of the log and `verify` reports the gap (see `checkpoint`).
///
/// SQLite: WAL with `synchronous=NORMAL` (no fsync per commit; the WAL is synced at each
/// WAL checkpoint).
///
/// Several processes opening one fresh file at once (parallel CLI calls on a new machine)
/// would race twice: switching a new database to WAL takes an exclusive lock that SQLite
/// reports as "database is locked" without waiting, and sqlx takes no lock while it
/// migrates. So a file store is opened under [`MigrationLock`], returned to be held until
/// the migrations have run; an in-memory store needs none.
async fn open_sqlite(url: &str) -> Result<(SqlitePool, Option<MigrationLock>)> {
    let db = |source| Error::Database {
        backend: "sqlite",
        source,
    };
    let opts = SqliteConnectOptions::from_str(url)
        .map_err(db)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5));
    let file = opts.get_filename();
    let file =
        (!file.as_os_str().is_empty() && file != Path::new(":memory:")).then(|| file.to_path_buf());
    if let Some(parent) = file.as_deref().and_then(Path::parent) {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent).map_err(|source| Error::CreateDir {
                path: parent.display().to_string(),
                source,
            })?;
        }
    }
    let guard = match &file {
        Some(file) => Some(MigrationLock::acquire(file).await?),
        None => None,
    };
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(opts)
        .await
        .map_err(db)?;
    Ok((pool, guard))
}

/// An exclusive lock on `<database>.migrate.lock`, held while a store is created and
/// migrated, and released on drop (the OS releases it too if the process dies).
struct MigrationLock {
    _file: std::fs::File,
}

impl MigrationLock {
    async fn acquire(database: &Path) -> Result<MigrationLock> {
        let mut name = database.as_os_str().to_owned();
        name.push(".migrate.lock");
        let path = PathBuf::from(name);
        let io = |source| Error::Lock {
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        let file = tokio::task::spawn_blocking(move || file.lock().map(|()| file))
            .await
            .map_err(|e| io(std::io::Error::other(e)))?
            .map_err(io)?;
        Ok(MigrationLock { _file: file })
    }
}

/// PostgreSQL: `synchronous_commit=off` for Steward's sessions only (see [`open_sqlite`]
/// for why): the server acknowledges before its WAL writer flushes, at most about 0.6 s
/// later, and a server crash never leaves a half-applied transaction.
async fn open_postgres(url: &str) -> Result<PgPool> {
    let db = |source| Error::Database {
        backend: "postgres",
        source,
    };
    let opts = PgConnectOptions::from_str(url)
        .map_err(db)?
        .options([("synchronous_commit", "off")]);
    PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(opts)
        .await
        .map_err(db)
}
