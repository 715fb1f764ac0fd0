//! `audit_search` as a tool: the same tantivy index `steward audit search` reads.

use std::sync::Arc;

use serde_json::json;
use steward_audit::AuditLog;
use steward_tools::{when, Call, Clock, Done, ErrorKind, Executor, Plan, ToolError};

/// Serves `audit_search`.
#[derive(Debug)]
pub struct AuditSearchExecutor {
    audit: Arc<AuditLog>,
    clock: Arc<dyn Clock>,
}

impl AuditSearchExecutor {
    pub fn new(audit: Arc<AuditLog>, clock: Arc<dyn Clock>) -> Self {
        Self { audit, clock }
    }
}

const LIMIT: usize = 50;

#[async_trait::async_trait]
impl Executor for AuditSearchExecutor {
    fn tools(&self) -> &'static [&'static str] {
        &["audit_search"]
    }

    async fn dry_run(&self, call: &Call) -> steward_tools::Result<Plan> {
        let Call::AuditSearch(args) = call else {
            return Err(wrong_tool(call));
        };
        Ok(Plan {
            summary: format!("search the audit log for {:?} (read only)", args.query),
            steps: vec![format!(
                "query the audit index, newest first, at most {LIMIT} records"
            )],
            changes: false,
        })
    }

    async fn execute(&self, call: &Call) -> steward_tools::Result<Done> {
        let Call::AuditSearch(args) = call else {
            return Err(wrong_tool(call));
        };
        let since = match &args.since {
            Some(s) => Some(
                when::resolve(s, self.clock.now())
                    .map_err(|e| ToolError::new(ErrorKind::InvalidArgs, e))?,
            ),
            None => None,
        };
        let records = self
            .audit
            .search(&args.query, since, LIMIT)
            .await
            .map_err(|e| ToolError::new(ErrorKind::Failed, e.to_string()))?;
        Ok(Done {
            summary: format!("{} audit record(s) match {:?}", records.len(), args.query),
            output: json!({"records": records}),
            changed: false,
        })
    }
}

fn wrong_tool(call: &Call) -> ToolError {
    ToolError::new(
        ErrorKind::Internal,
        format!("audit executor was given {}", call.tool()),
    )
}
