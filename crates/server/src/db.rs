//! Small helpers for queries that run on both backends, as `steward_agent::approvals` writes them.

use steward_audit::Store;

/// The query with PostgreSQL's `$n` placeholders turned into SQLite's `?n` where needed.
pub(crate) fn sql_for(store: &Store, sql: &str) -> String {
    match store {
        Store::Postgres(_) => sql.to_string(),
        Store::Sqlite(_) => sql.replace('$', "?"),
    }
}

/// Runs `$body` with `$pool` bound to whichever pool the store holds.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            steward_audit::Store::Sqlite($pool) => $body,
            steward_audit::Store::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `n` random bytes from the operating system.
pub(crate) fn random_bytes<const N: usize>() -> crate::Result<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| crate::Error::Random(e.to_string()))?;
    Ok(buf)
}
