//! The origin executor: `origin_check` and `origin_compare` on the pure engine of
//! `steward-origin`, with stored products and supplier declarations from the state store.
//!
//! Both tools are reads: dry run validates the input and says what would be evaluated;
//! execute returns the explained verdict as the output and never changes anything, so it is
//! idempotent by construction.

pub mod store;

use std::sync::Arc;

use chrono::NaiveDate;
use serde_json::{json, Value};
use steward_origin::{AgreementId, Engine, Error as OriginError, Verdict};
use steward_tools::args::{OriginCheckArgs, OriginCompareArgs, OriginProductRef};
use steward_tools::{Call, Clock, Done, ErrorKind, Executor, Plan, Result, ToolError};

pub use store::OriginStore;

/// Serves `origin_check` and `origin_compare`.
#[derive(Debug, Clone)]
pub struct OriginExecutor {
    engine: Arc<Engine>,
    store: Option<OriginStore>,
    clock: Arc<dyn Clock>,
}

/// An origin engine error as a tool error: bad input is `invalid_args` with the field named.
pub fn tool_error(e: OriginError) -> ToolError {
    match e {
        OriginError::Invalid { .. }
        | OriginError::UnknownAgreement(_)
        | OriginError::Csv { .. } => ToolError::new(ErrorKind::InvalidArgs, e.to_string()),
        other => ToolError::new(ErrorKind::Failed, other.to_string()),
    }
}

/// What to evaluate, resolved from the arguments.
enum Subject {
    Inline(Value),
    Stored { id: String, body: Value },
}

impl OriginExecutor {
    /// `store`: the state store holding products and declarations; without one, only
    /// inline bills of materials can be checked.
    pub fn new(engine: Arc<Engine>, store: Option<OriginStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            engine,
            store,
            clock,
        }
    }

    fn today(&self) -> NaiveDate {
        let ms = self.clock.now().0;
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|d| d.date_naive())
            .unwrap_or_default()
    }

    fn date(&self, s: Option<&str>) -> Result<NaiveDate> {
        match s {
            None => Ok(self.today()),
            Some(s) => steward_origin::input::date(&json!(s), "shipment_date").map_err(tool_error),
        }
    }

    async fn subject(
        &self,
        product: &OriginProductRef,
        materials: Option<&Value>,
        agreement: Option<&str>,
        date: Option<&str>,
    ) -> Result<Subject> {
        match product {
            OriginProductRef::Inline(p) => {
                let mut req =
                    json!({"product": p, "materials": materials.cloned().unwrap_or(json!([]))});
                if let Some(a) = agreement {
                    req["agreement"] = json!(a);
                }
                req["shipment_date"] = match date {
                    Some(d) => json!(d),
                    None => Value::Null,
                };
                Ok(Subject::Inline(req))
            }
            OriginProductRef::Stored(id) => {
                if materials.is_some() {
                    return Err(ToolError::new(
                        ErrorKind::InvalidArgs,
                        "materials: not allowed with a stored product id (the stored product has its own)",
                    ));
                }
                let store = self.store.as_ref().ok_or_else(|| {
                    ToolError::new(
                        ErrorKind::Unavailable,
                        "no state store: stored products cannot be read",
                    )
                })?;
                let body = store.product(id).await?.ok_or_else(|| {
                    ToolError::new(
                        ErrorKind::NotFound,
                        format!("product {id:?} not found; store it with `steward origin import-products`"),
                    )
                })?;
                Ok(Subject::Stored {
                    id: id.clone(),
                    body,
                })
            }
        }
    }

    async fn verdict(
        &self,
        subject: &Subject,
        agreement: AgreementId,
        date: Option<&str>,
    ) -> Result<Verdict> {
        match subject {
            Subject::Inline(req) => {
                let mut req = req.clone();
                req["agreement"] = json!(agreement.id());
                steward_origin::check(&self.engine, &req).map_err(tool_error)
            }
            Subject::Stored { body, .. } => {
                let date = self.date(date)?;
                let parts = store::parts(body);
                let decls = match &self.store {
                    Some(s) => s.declarations(&parts).await?,
                    None => vec![],
                };
                steward_origin::check_stored(&self.engine, body, &decls, agreement, date)
                    .map_err(tool_error)
            }
        }
    }

    async fn check(&self, a: &OriginCheckArgs) -> Result<Verdict> {
        let agreement =
            steward_origin::input::agreement(Some(&json!(a.agreement))).map_err(tool_error)?;
        let materials = a.materials.as_ref().map(|m| json!(m));
        let subject = self
            .subject(
                &a.product,
                materials.as_ref(),
                Some(&a.agreement),
                a.shipment_date.as_deref(),
            )
            .await?;
        self.verdict(&subject, agreement, a.shipment_date.as_deref())
            .await
    }

    async fn compare(&self, a: &OriginCompareArgs) -> Result<steward_origin::Comparison> {
        let agreements =
            steward_origin::agreements(&a.agreements, "agreements").map_err(tool_error)?;
        let materials = a.materials.as_ref().map(|m| json!(m));
        let subject = self
            .subject(
                &a.product,
                materials.as_ref(),
                None,
                a.shipment_date.as_deref(),
            )
            .await?;
        let mut results = Vec::new();
        for ag in &agreements {
            results.push(
                self.verdict(&subject, *ag, a.shipment_date.as_deref())
                    .await?,
            );
        }
        let name = match &subject {
            Subject::Stored { id, .. } => id.clone(),
            Subject::Inline(req) => req["product"]["hs"]
                .as_str()
                .unwrap_or("inline product")
                .to_string(),
        };
        let date = results
            .first()
            .map(|v| v.shipment_date)
            .unwrap_or_else(|| self.today());
        let mut iter = results.into_iter();
        steward_origin::compare(
            &name,
            date,
            |_| {
                iter.next()
                    .ok_or_else(|| OriginError::invalid("agreements", "no result"))
            },
            &agreements,
        )
        .map_err(tool_error)
    }
}

fn read_only(summary: String, steps: Vec<String>) -> Plan {
    Plan {
        summary: format!("read only: {summary}"),
        steps,
        changes: false,
    }
}

fn product_name(p: &OriginProductRef) -> String {
    match p {
        OriginProductRef::Stored(id) => format!("stored product {id}"),
        OriginProductRef::Inline(p) => format!("product {}", p.hs),
    }
}

#[async_trait::async_trait]
impl Executor for OriginExecutor {
    fn tools(&self) -> &'static [&'static str] {
        &["origin_check", "origin_compare"]
    }

    async fn dry_run(&self, call: &Call) -> Result<Plan> {
        match call {
            Call::OriginCheck(a) => {
                // Validates everything execute would, so bad input shows before approval.
                let v = self.check(a).await?;
                Ok(read_only(
                    format!(
                        "evaluate {} under {} on {}",
                        product_name(&a.product),
                        a.agreement,
                        v.shipment_date
                    ),
                    vec![
                        "select the rule set by code, subdivision and date".into(),
                        "work out each material's status from its declarations".into(),
                        "evaluate every alternative with tolerance, exact decimals".into(),
                    ],
                ))
            }
            Call::OriginCompare(a) => {
                let c = self.compare(a).await?;
                Ok(read_only(
                    format!(
                        "evaluate {} under {} on {}",
                        product_name(&a.product),
                        c.results
                            .iter()
                            .map(|v| v.agreement)
                            .collect::<Vec<_>>()
                            .join(", "),
                        c.shipment_date
                    ),
                    vec!["one verdict per agreement".into()],
                ))
            }
            other => Err(not_mine(other)),
        }
    }

    async fn execute(&self, call: &Call) -> Result<Done> {
        match call {
            Call::OriginCheck(a) => {
                let v = self.check(a).await?;
                let mut output = serde_json::to_value(&v).unwrap_or(Value::Null);
                output["explanation"] = json!(steward_origin::render::verdict(&v));
                Ok(Done {
                    summary: format!(
                        "{} under {}: {} ({})",
                        v.product_hs,
                        v.agreement,
                        v.verdict.as_str(),
                        v.reason
                    ),
                    output,
                    changed: false,
                })
            }
            Call::OriginCompare(a) => {
                let c = self.compare(a).await?;
                let under = if c.qualifies_under.is_empty() {
                    "none of the agreements".to_string()
                } else {
                    c.qualifies_under.join(", ")
                };
                let mut output = serde_json::to_value(&c).unwrap_or(Value::Null);
                output["explanation"] = json!(steward_origin::render::comparison(&c));
                Ok(Done {
                    summary: format!("{} qualifies under {under}", c.product),
                    output,
                    changed: false,
                })
            }
            other => Err(not_mine(other)),
        }
    }
}

fn not_mine(call: &Call) -> ToolError {
    ToolError::new(
        ErrorKind::Unsupported,
        format!("the origin executor does not serve {}", call.tool()),
    )
}

#[cfg(test)]
mod tests {
    /// The tool schemas enumerate the agreements; they must be the engine's, in its order.
    #[test]
    fn the_schemas_list_exactly_the_engines_agreements() {
        let engine: Vec<&str> = steward_origin::AgreementId::ALL
            .iter()
            .map(|a| a.id())
            .collect();
        assert_eq!(steward_tools::args::AGREEMENT_IDS.to_vec(), engine);
    }
}
