//! Bearer tokens: random, bound to one principal, stored as a SHA-256 hash only.
//!
//! A token is `stw_` + 64 hex digits (32 random bytes), so it can be recognised in a leaked
//! file or a secret scanner. Verification hashes the presented token and looks the hash up;
//! verified hashes are cached for [`REVALIDATE`] so the hot path is one hash and one map
//! lookup. Expiry is checked on every use; a revocation by another process (`steward token
//! revoke`) is seen within [`REVALIDATE`], one made through [`Tokens::revoke`] at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};
use steward_audit::Store;
use steward_protocol::Timestamp;

use crate::db::{now_ms, random_bytes};
use crate::{Error, Result};
use steward_audit::{on_pool, sql_for};

/// The prefix of every token Steward issues.
pub const TOKEN_PREFIX: &str = "stw_";

/// How long a verified (or unknown) token hash is trusted from memory before the store is
/// asked again; bounds how late a revocation from another process takes effect.
pub const REVALIDATE: Duration = Duration::from_secs(5);

/// Most unknown hashes remembered, so a flood of made-up tokens costs no store query each
/// yet cannot grow memory without bound.
const MAX_UNKNOWN: usize = 10_000;

/// A token as listed: everything but the secret, which is never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    pub id: String,
    pub principal: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// A freshly created token: shown once, then only its hash exists.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub info: TokenInfo,
    pub token: String,
}

/// What verifying a presented token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Valid { id: String, principal: Arc<str> },
    Unknown,
    Expired,
    Revoked,
}

#[derive(Debug, Clone)]
struct Cached {
    id: String,
    principal: Arc<str>,
    expires_at: Option<i64>,
    checked: Instant,
}

/// The token table (`server_tokens`) with an in-memory cache of verified hashes.
#[derive(Debug)]
pub struct Tokens {
    store: Store,
    valid: Mutex<HashMap<String, Cached>>,
    unknown: Mutex<HashMap<String, Instant>>,
}

type Row = (String, String, i64, Option<i64>, Option<i64>);

fn info((id, principal, created, expires, revoked): Row) -> TokenInfo {
    TokenInfo {
        id,
        principal,
        created_at: Timestamp(created),
        expires_at: expires.map(Timestamp),
        revoked_at: revoked.map(Timestamp),
    }
}

/// The stored form of a token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Tokens {
    pub fn new(store: Store) -> Tokens {
        Tokens {
            store,
            valid: Mutex::new(HashMap::new()),
            unknown: Mutex::new(HashMap::new()),
        }
    }

    /// Issues a token for `principal` (validated as `kind:id`), valid until `expires_at`
    /// (forever when `None`).
    pub async fn create(&self, principal: &str, expires_at: Option<Timestamp>) -> Result<NewToken> {
        let parsed = steward_policy::Principal::parse(principal).map_err(|e| Error::Principal {
            input: principal.to_string(),
            message: e.to_string(),
        })?;
        let principal = format!("{}:{}", parsed.kind.prefix(), parsed.id);
        let token = format!("{TOKEN_PREFIX}{}", hex::encode(random_bytes::<32>()?));
        let id = format!("tok_{}", hex::encode(random_bytes::<6>()?));
        let created = now_ms();
        let sql = sql_for(
            &self.store,
            "INSERT INTO server_tokens (id, hash, principal, created_at_ms, expires_at_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        );
        on_pool!(&self.store, pool => {
            sqlx::query(&sql)
                .bind(&id)
                .bind(hash_token(&token))
                .bind(&principal)
                .bind(created)
                .bind(expires_at.map(|t| t.0))
                .execute(pool)
                .await
                .map_err(Error::db(&self.store))?;
        });
        Ok(NewToken {
            info: TokenInfo {
                id,
                principal,
                created_at: Timestamp(created),
                expires_at,
                revoked_at: None,
            },
            token,
        })
    }

    /// Every token, newest first, revoked and expired ones included.
    pub async fn list(&self) -> Result<Vec<TokenInfo>> {
        let sql = "SELECT id, principal, created_at_ms, expires_at_ms, revoked_at_ms \
                   FROM server_tokens ORDER BY created_at_ms DESC, id";
        let rows: Vec<Row> = on_pool!(&self.store, pool => {
            sqlx::query_as(sql).fetch_all(pool).await.map_err(Error::db(&self.store))?
        });
        Ok(rows.into_iter().map(info).collect())
    }

    /// Revokes a token by id; revoking twice keeps the first time. Takes effect at once in
    /// this process and within [`REVALIDATE`] in others.
    pub async fn revoke(&self, id: &str) -> Result<TokenInfo> {
        let update = sql_for(
            &self.store,
            "UPDATE server_tokens SET revoked_at_ms = $1 WHERE id = $2 AND revoked_at_ms IS NULL",
        );
        let select = sql_for(
            &self.store,
            "SELECT id, principal, created_at_ms, expires_at_ms, revoked_at_ms \
             FROM server_tokens WHERE id = $1",
        );
        let row: Option<Row> = on_pool!(&self.store, pool => {
            sqlx::query(&update)
                .bind(now_ms())
                .bind(id)
                .execute(pool)
                .await
                .map_err(Error::db(&self.store))?;
            sqlx::query_as(&select)
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(Error::db(&self.store))?
        });
        let info = info(row.ok_or_else(|| Error::NoSuchToken(id.to_string()))?);
        lock(&self.valid).retain(|_, c| c.id != info.id);
        Ok(info)
    }

    /// Checks a presented token at `now`.
    pub async fn verify(&self, token: &str, now: Timestamp) -> Result<Verdict> {
        if !token.starts_with(TOKEN_PREFIX) {
            return Ok(Verdict::Unknown);
        }
        let hash = hash_token(token);
        if let Some(c) = lock(&self.valid).get(&hash) {
            if c.checked.elapsed() < REVALIDATE {
                return Ok(judge(c, now));
            }
        }
        if let Some(at) = lock(&self.unknown).get(&hash) {
            if at.elapsed() < REVALIDATE {
                return Ok(Verdict::Unknown);
            }
        }
        let sql = sql_for(
            &self.store,
            "SELECT id, principal, created_at_ms, expires_at_ms, revoked_at_ms \
             FROM server_tokens WHERE hash = $1",
        );
        let row: Option<Row> = on_pool!(&self.store, pool => {
            sqlx::query_as(&sql)
                .bind(&hash)
                .fetch_optional(pool)
                .await
                .map_err(Error::db(&self.store))?
        });
        let Some(row) = row else {
            let mut unknown = lock(&self.unknown);
            if unknown.len() >= MAX_UNKNOWN {
                unknown.clear();
            }
            unknown.insert(hash, Instant::now());
            return Ok(Verdict::Unknown);
        };
        let t = info(row);
        if t.revoked_at.is_some() {
            lock(&self.valid).remove(&hash);
            return Ok(Verdict::Revoked);
        }
        let cached = Cached {
            id: t.id,
            principal: Arc::from(t.principal),
            expires_at: t.expires_at.map(|e| e.0),
            checked: Instant::now(),
        };
        let verdict = judge(&cached, now);
        lock(&self.valid).insert(hash, cached);
        Ok(verdict)
    }
}

fn judge(c: &Cached, now: Timestamp) -> Verdict {
    match c.expires_at {
        Some(exp) if exp <= now.0 => Verdict::Expired,
        _ => Verdict::Valid {
            id: c.id.clone(),
            principal: c.principal.clone(),
        },
    }
}

/// A poisoned cache only means another request panicked mid-update; the map is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
