//! Products and supplier declarations in Steward's state store (tables of migration 0004),
//! on SQLite or PostgreSQL alike.

use serde_json::Value;
use sqlx::Row;
use steward_audit::{on_pool, sql_for, Store};
use steward_origin::declarations::StoredDeclaration;
use steward_tools::{ErrorKind, ToolError};

fn db(e: sqlx::Error) -> ToolError {
    ToolError::new(ErrorKind::Unavailable, format!("state store: {e}"))
}

/// supplier, part, hs, origin, kind, valid_from, valid_to, issued_on.
type DeclarationRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
);

/// The origin tables of the state store.
#[derive(Debug, Clone)]
pub struct OriginStore {
    store: Store,
}

impl OriginStore {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Inserts or replaces a product document (validated by the caller).
    pub async fn put_product(&self, id: &str, body: &Value, now_ms: i64) -> Result<(), ToolError> {
        let sql = sql_for(
            &self.store,
            "INSERT INTO origin_products (id, body, updated_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated_at_ms = excluded.updated_at_ms",
        );
        let text = body.to_string();
        on_pool!(&self.store, pool => {
            sqlx::query(&sql).bind(id).bind(&text).bind(now_ms).execute(pool).await.map_err(db)?;
        });
        Ok(())
    }

    pub async fn product(&self, id: &str) -> Result<Option<Value>, ToolError> {
        let sql = sql_for(
            &self.store,
            "SELECT body FROM origin_products WHERE id = $1",
        );
        let body: Option<String> = on_pool!(&self.store, pool => {
            sqlx::query(&sql).bind(id).fetch_optional(pool).await.map_err(db)?
                .map(|r| r.get::<String, _>(0))
        });
        body.map(|b| {
            serde_json::from_str(&b).map_err(|e| {
                ToolError::new(
                    ErrorKind::Failed,
                    format!("stored product {id:?} is not JSON: {e}"),
                )
            })
        })
        .transpose()
    }

    /// Inserts or replaces declarations (keyed by supplier, part and start date).
    pub async fn put_declarations(&self, decls: &[StoredDeclaration]) -> Result<usize, ToolError> {
        let sql = sql_for(
            &self.store,
            "INSERT INTO origin_declarations (supplier, part, hs, origin, kind, valid_from, valid_to, issued_on) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (supplier, part, valid_from) DO UPDATE SET hs = excluded.hs, origin = excluded.origin, \
             kind = excluded.kind, valid_to = excluded.valid_to, issued_on = excluded.issued_on",
        );
        for d in decls {
            let issued = d.issued_on.map(|x| x.to_string());
            on_pool!(&self.store, pool => {
                sqlx::query(&sql)
                    .bind(&d.supplier)
                    .bind(&d.part)
                    .bind(&d.hs)
                    .bind(&d.origin)
                    .bind(&d.kind)
                    .bind(d.valid_from.to_string())
                    .bind(d.valid_to.to_string())
                    .bind(issued)
                    .execute(pool)
                    .await
                    .map_err(db)?;
            });
        }
        Ok(decls.len())
    }

    /// Every declaration of the given parts.
    pub async fn declarations(
        &self,
        parts: &[String],
    ) -> Result<Vec<StoredDeclaration>, ToolError> {
        let sql = sql_for(
            &self.store,
            "SELECT supplier, part, hs, origin, kind, valid_from, valid_to, issued_on \
             FROM origin_declarations WHERE part = $1 ORDER BY supplier, valid_from",
        );
        let mut out = Vec::new();
        for part in parts {
            let rows: Vec<DeclarationRow> = on_pool!(&self.store, pool => {
                sqlx::query_as(&sql).bind(part).fetch_all(pool).await.map_err(db)?
            });
            for (supplier, part, hs, origin, kind, from, to, issued) in rows {
                let day = |s: &str| {
                    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| {
                        ToolError::new(
                            ErrorKind::Failed,
                            format!("stored declaration date {s:?}: {e}"),
                        )
                    })
                };
                out.push(StoredDeclaration {
                    supplier,
                    part,
                    hs,
                    origin,
                    kind,
                    valid_from: day(&from)?,
                    valid_to: day(&to)?,
                    issued_on: issued.as_deref().map(day).transpose()?,
                });
            }
        }
        Ok(out)
    }
}

/// The `part` ids a product document mentions, at every level of its bill.
pub fn parts(product: &Value) -> Vec<String> {
    fn walk(ms: &Value, out: &mut Vec<String>) {
        for m in ms.as_array().into_iter().flatten() {
            if let Some(p) = m.get("part").and_then(Value::as_str) {
                if !out.iter().any(|x| x == p) {
                    out.push(p.to_string());
                }
            }
            if let Some(b) = m.get("bom") {
                walk(b, out);
            }
        }
    }
    let mut out = Vec::new();
    if let Some(ms) = product.get("materials") {
        walk(ms, &mut out);
    }
    out
}
