//! Pending approvals in Steward's state store (SQLite or PostgreSQL), so they survive a
//! restart. Each request is bound to the exact call by a seal (see [`crate::seal`]): if the
//! stored row no longer matches its seal, the approval cannot run.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use steward_audit::{on_pool, sql_for, Store};
use steward_protocol::Timestamp;

use crate::{Error, Result};

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    Pending,
    /// Approved and executed (successfully or not: the audit log has the outcome).
    Executed,
    Denied,
    /// Taken back by the principal who proposed it.
    Withdrawn,
    Expired,
}

impl ApprovalState {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Executed => "executed",
            ApprovalState::Denied => "denied",
            ApprovalState::Withdrawn => "withdrawn",
            ApprovalState::Expired => "expired",
        }
    }

    /// `None` for a state this version does not know: never read as pending.
    fn parse(s: &str) -> Option<ApprovalState> {
        Some(match s {
            "pending" => ApprovalState::Pending,
            "executed" => ApprovalState::Executed,
            "denied" => ApprovalState::Denied,
            "withdrawn" => ApprovalState::Withdrawn,
            "expired" => ApprovalState::Expired,
            _ => return None,
        })
    }
}

/// One call waiting for (or answered by) a human.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub id: String,
    pub tool: String,
    pub args: Value,
    /// HMAC over the call and its lifetime (stored in the `args_hash` column); see
    /// [`crate::seal`].
    pub seal: String,
    /// Who asked, as `kind:id`.
    pub principal: String,
    pub origin: String,
    pub intent_text: Option<String>,
    pub untrusted: bool,
    /// The policy's reason for asking.
    pub reason: String,
    pub policies: Vec<String>,
    /// The dry-run plan the approver is shown.
    pub plan: Value,
    /// Principal kind allowed to answer (`operator`).
    pub approvers: String,
    pub requested_at: Timestamp,
    pub expires_at: Timestamp,
    pub state: ApprovalState,
    pub answered_by: Option<String>,
    pub answered_at: Option<Timestamp>,
    pub answer_reason: Option<String>,
}

impl Approval {
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }
}

/// JSON text with object keys sorted and no whitespace, so equal arguments seal alike.
pub(crate) fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&m[k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

/// One row of the approvals table, as stored.
#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    tool: String,
    args: String,
    args_hash: String,
    principal: String,
    origin: String,
    intent_text: Option<String>,
    untrusted: i64,
    reason: String,
    policies: String,
    plan: String,
    approvers: String,
    requested_at_ms: i64,
    expires_at_ms: i64,
    state: String,
    answered_by: Option<String>,
    answered_at_ms: Option<i64>,
    answer_reason: Option<String>,
}

const COLUMNS: &str = "id, tool, args, args_hash, principal, origin, intent_text, untrusted, \
    reason, policies, plan, approvers, requested_at_ms, expires_at_ms, state, answered_by, \
    answered_at_ms, answer_reason";

fn from_row(r: Row) -> Result<Approval> {
    fn json<T: serde::de::DeserializeOwned>(id: &str, s: &str, what: &str) -> Result<T> {
        serde_json::from_str(s).map_err(|e| Error::Corrupt(format!("approval {id}: {what}: {e}")))
    }
    Ok(Approval {
        args: json(&r.id, &r.args, "args")?,
        policies: json(&r.id, &r.policies, "policies")?,
        plan: json(&r.id, &r.plan, "plan")?,
        state: ApprovalState::parse(&r.state).ok_or_else(|| {
            Error::Corrupt(format!("approval {}: unknown state {:?}", r.id, r.state))
        })?,
        id: r.id,
        tool: r.tool,
        seal: r.args_hash,
        principal: r.principal,
        origin: r.origin,
        intent_text: r.intent_text,
        untrusted: r.untrusted != 0,
        reason: r.reason,
        approvers: r.approvers,
        requested_at: Timestamp(r.requested_at_ms),
        expires_at: Timestamp(r.expires_at_ms),
        answered_by: r.answered_by,
        answered_at: r.answered_at_ms.map(Timestamp),
        answer_reason: r.answer_reason,
    })
}

/// The approvals table.
#[derive(Debug, Clone)]
pub struct ApprovalStore {
    store: Store,
}

impl ApprovalStore {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    pub async fn insert(&self, a: &Approval) -> Result<()> {
        let sql = sql_for(
            &self.store,
            &format!(
                "INSERT INTO approvals ({COLUMNS}) VALUES \
                 ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18)"
            ),
        );
        let args = a.args.to_string();
        let policies = serde_json::to_string(&a.policies).unwrap_or_else(|_| "[]".into());
        let plan = a.plan.to_string();
        on_pool!(&self.store, pool => {
            sqlx::query(&sql)
                .bind(&a.id)
                .bind(&a.tool)
                .bind(&args)
                .bind(&a.seal)
                .bind(&a.principal)
                .bind(&a.origin)
                .bind(&a.intent_text)
                .bind(i64::from(a.untrusted))
                .bind(&a.reason)
                .bind(&policies)
                .bind(&plan)
                .bind(&a.approvers)
                .bind(a.requested_at.0)
                .bind(a.expires_at.0)
                .bind(a.state.as_str())
                .bind(&a.answered_by)
                .bind(a.answered_at.map(|t| t.0))
                .bind(&a.answer_reason)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    pub async fn get(&self, id: &str) -> Result<Approval> {
        let sql = sql_for(
            &self.store,
            &format!("SELECT {COLUMNS} FROM approvals WHERE id = $1"),
        );
        let row: Option<Row> = on_pool!(&self.store, pool => {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
        });
        match row {
            Some(r) => from_row(r),
            None => Err(Error::NoSuchApproval(id.to_string())),
        }
    }

    /// Pending requests first, then the most recent answered ones.
    pub async fn list(&self, include_answered: bool) -> Result<Vec<Approval>> {
        let filter = if include_answered {
            ""
        } else {
            "WHERE state = 'pending'"
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM approvals {filter} ORDER BY requested_at_ms DESC LIMIT 200"
        );
        let rows: Vec<Row> = on_pool!(&self.store, pool => {
            sqlx::query_as(&sql).fetch_all(pool).await?
        });
        rows.into_iter().map(from_row).collect()
    }

    /// Marks every pending request whose time ran out as expired and returns them, so no
    /// list ever shows a request as pending that can no longer be answered.
    pub async fn expire_due(&self, now: Timestamp) -> Result<Vec<Approval>> {
        let sql = sql_for(
            &self.store,
            &format!(
                "SELECT {COLUMNS} FROM approvals WHERE state = 'pending' AND expires_at_ms <= $1"
            ),
        );
        let rows: Vec<Row> = on_pool!(&self.store, pool => {
            sqlx::query_as(&sql).bind(now.0).fetch_all(pool).await?
        });
        let mut expired = Vec::new();
        for row in rows {
            let a = from_row(row)?;
            // Only the process whose update wins reports it.
            if self
                .answer(
                    &a.id,
                    ApprovalState::Expired,
                    "steward",
                    now,
                    Some("expired"),
                )
                .await?
            {
                expired.push(a);
            }
        }
        Ok(expired)
    }

    /// Moves a pending request to `state`; false when it was no longer pending (another
    /// answer won the race), so a request can be answered once only.
    pub async fn answer(
        &self,
        id: &str,
        state: ApprovalState,
        by: &str,
        at: Timestamp,
        reason: Option<&str>,
    ) -> Result<bool> {
        let sql = sql_for(
            &self.store,
            "UPDATE approvals SET state = $1, answered_by = $2, answered_at_ms = $3, \
             answer_reason = $4 WHERE id = $5 AND state = 'pending'",
        );
        let done = on_pool!(&self.store, pool => {
            sqlx::query(&sql)
                .bind(state.as_str())
                .bind(by)
                .bind(at.0)
                .bind(reason)
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_ignores_key_order_but_not_values() {
        let a = canonical(&json!({"service": "rentguy", "to": "r1"}));
        let b = canonical(&json!({"to": "r1", "service": "rentguy"}));
        let c = canonical(&json!({"to": "r2", "service": "rentguy"}));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn unknown_states_are_not_read_as_pending() {
        assert_eq!(
            ApprovalState::parse("pending"),
            Some(ApprovalState::Pending)
        );
        assert_eq!(
            ApprovalState::parse("withdrawn"),
            Some(ApprovalState::Withdrawn)
        );
        assert_eq!(ApprovalState::parse("approved-by-me"), None);
    }
}
