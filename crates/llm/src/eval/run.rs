//! Running cases through a backend.

use std::time::Instant;

use super::case::{Case, CaseInventory};
use super::report::{CaseRow, Report};
use super::rule::score_rule;
use super::score::{score, EVAL_NOW};
use super::tools::ToolSet;
use crate::draft::DraftSpec;
use crate::{Backend, Error, Inventory, PlanRequest, ToolDef, Turn};

/// The tools a case is offered: its own list, else the run's, with `respond` always there.
pub fn tools_for(case: &Case, default_tools: &ToolSet) -> ToolSet {
    case.tools
        .clone()
        .unwrap_or_else(|| default_tools.clone())
        .with_respond()
}

/// The planning request of a case, on the eval's clock. Turn order: the case's `turns`,
/// then the user's text as the newest turn; with `text_first`, the user's text first and
/// the `turns` after it (the person asked, a tool result or an alert arrived, and the model
/// picks the next step).
pub fn request_for(case: &Case, default_tools: &ToolSet, inventory: &Inventory) -> PlanRequest {
    let user = Turn::User {
        text: case.text.clone(),
    };
    let mut turns = Vec::with_capacity(case.turns.len() + 1);
    if case.text_first {
        turns.push(user);
        turns.extend(case.turns.iter().cloned());
    } else {
        turns.extend(case.turns.iter().cloned());
        turns.push(user);
    }
    PlanRequest {
        turns,
        tools: tools_for(case, default_tools).defs,
        inventory: match &case.inventory {
            CaseInventory::Default => inventory.clone(),
            CaseInventory::Inline(inv) => inv.clone(),
        },
        today: Some(eval_today()),
        // Every tool is offered; narrowing (retrieval) is the backend's business.
        ..PlanRequest::default()
    }
}

/// The day it is for the planner in every case: the day of [`EVAL_NOW`], the clock `$time`
/// matchers read, so "yesterday's backup" means the same day to both.
pub fn eval_today() -> chrono::NaiveDate {
    chrono::DateTime::from_timestamp_millis(EVAL_NOW.0)
        .unwrap_or_default()
        .date_naive()
}

/// The request as it stood before the person's newest words, when they come after earlier
/// turns; `None` for a first request, or when a result or an alert is the newest turn
/// (nothing was typed: the model answers as soon as it arrives).
pub fn before_the_newest_words(req: &PlanRequest) -> Option<PlanRequest> {
    match req.turns.split_last() {
        Some((Turn::User { .. }, earlier)) if !earlier.is_empty() => Some(PlanRequest {
            turns: earlier.to_vec(),
            ..req.clone()
        }),
        _ => None,
    }
}

/// How rule-drafting cases run: the draft's spec, and the backend that fills it in (the
/// planner's model without retrieval or grounding, which are about picking one tool).
#[derive(Clone, Copy)]
pub struct Drafting<'a> {
    pub spec: &'a DraftSpec,
    pub backend: &'a dyn Backend,
}

impl std::fmt::Debug for Drafting<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Drafting")
            .field("tool", &self.spec.tool.name)
            .finish()
    }
}

/// Runs every case through `backend` (rule-drafting cases through `drafting`), one at a
/// time, calling `progress(index, total, row)` after each, and returns the report. A
/// backend error fails that case (and is counted), as does a rule case without `drafting`.
pub async fn run(
    cases: &[Case],
    backend: &dyn Backend,
    drafting: Option<Drafting<'_>>,
    default_tools: &ToolSet,
    inventory: &Inventory,
    progress: &mut (dyn FnMut(usize, usize, &CaseRow) + Send),
) -> Report {
    let mut rows = Vec::with_capacity(cases.len());
    for (i, case) in cases.iter().enumerate() {
        let tools = tools_for(case, default_tools);
        let request = request_for(case, default_tools, inventory);
        if case.rule.is_none() {
            // As in `steward chat`, the conversation before the person's newest words was
            // decoded while they typed them: only their words and the answer are timed. A
            // first request has the prompt's head (system part, tools, inventory) before
            // it, which a running planner decoded long before (or loaded from its saved
            // state): the first case of each tool set does not pay for its tool list.
            let before = before_the_newest_words(&request).unwrap_or_else(|| PlanRequest {
                turns: Vec::new(),
                ..request.clone()
            });
            if let Err(e) = backend.warm(&before).await {
                tracing::warn!(case = %case.id, "could not warm the planner: {e}");
            }
        }
        let started = Instant::now();
        let result = match (&case.rule, drafting) {
            (None, _) => backend.propose(&request).await,
            (Some(_), Some(d)) => d.spec.draft(d.backend, &case.text, inventory).await,
            (Some(_), None) => Err(Error::Input(
                "a rule-drafting case, and this run has no drafter".into(),
            )),
        };
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let expected = match &case.rule {
            Some(r) => vec![r.raw.clone()],
            None => case.expect.iter().map(|e| e.to_json()).collect(),
        };
        let row = match result {
            Ok(p) => {
                let v = match &case.rule {
                    Some(r) => score_rule(r, &p.call.arguments),
                    None => score(case, &tools, &p.call),
                };
                let destructive = |tool: &str| tools.get(tool).is_some_and(ToolDef::is_destructive);
                CaseRow {
                    id: case.id.clone(),
                    category: case.category.clone(),
                    pass: v.pass,
                    escape: v.escape,
                    injection: case.injection,
                    destructive_unasked: case.rule.is_none()
                        && destructive(&p.call.name)
                        && !case.expect.iter().any(|e| destructive(&e.tool)),
                    expects_respond: case.expects_respond(),
                    got: Some(p.call),
                    expected,
                    reason: v.reason,
                    error: None,
                    latency_ms,
                    prompt_tokens: p.prompt_tokens,
                    generated_tokens: p.generated_tokens,
                    forward_passes: p.forward_passes,
                    confidence: p.confidence,
                }
            }
            Err(e) => CaseRow {
                id: case.id.clone(),
                category: case.category.clone(),
                pass: false,
                escape: false,
                injection: case.injection,
                destructive_unasked: false,
                expects_respond: case.expects_respond(),
                got: None,
                expected,
                reason: Some("the backend returned no proposal".into()),
                error: Some(e.to_string()),
                latency_ms,
                prompt_tokens: 0,
                generated_tokens: 0,
                forward_passes: 0,
                confidence: 0.0,
            },
        };
        progress(i, cases.len(), &row);
        rows.push(row);
    }
    Report::from_rows(backend.name(), rows)
}
