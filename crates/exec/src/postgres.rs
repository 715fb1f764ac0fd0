//! PostgreSQL access with the admin role steward owns.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

use crate::Result;

/// Connects once with `url` and returns the server's version string, e.g. `PostgreSQL 15.18`.
/// Fails with the server's own message (wrong password, unknown database, refused).
pub async fn server_version(url: &str) -> Result<String> {
    let opts = PgConnectOptions::from_str(url)?;
    let mut conn: PgConnection = tokio::time::timeout(Duration::from_secs(5), opts.connect())
        .await
        .map_err(|_| {
            crate::Error::Timeout(format!(
                "postgres: no answer within 5s from {}:{}",
                opts.get_host(),
                opts.get_port()
            ))
        })??;
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    Ok(format!("PostgreSQL {version}"))
}
