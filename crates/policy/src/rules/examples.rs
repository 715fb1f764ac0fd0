//! Events as people write them (a rule's `[[rule.example]]`, the file `steward rules test`
//! reads), and the check of a rule against its examples at load.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::Value;
use steward_protocol::{Event, EventSource, EventStatus, Timestamp};

use super::matching::decide;
use super::model::Rule;
use crate::examples::DecisionKind;
use crate::vet::{describe, PolicySet};

/// An event with the envelope optional: `status` defaults to firing, `key` and `at` to
/// what the caller gives. Unknown keys are refused, so a misspelt `lables` is not an event
/// without labels.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventInput {
    pub source: EventSource,
    pub name: String,
    #[serde(default)]
    pub status: Option<EventStatus>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub fields: BTreeMap<String, Value>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub at: Option<At>,
}

/// When the event started: milliseconds since the epoch, or a time expression
/// (`RFC3339`, `10m ago`) resolved against the caller's clock.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum At {
    Millis(i64),
    Expr(String),
}

impl EventInput {
    /// The full event; `Err` when `at` is not a time.
    pub fn into_event(self, default_key: &str, now: Timestamp) -> Result<Event, String> {
        let at = match self.at {
            None => now,
            Some(At::Millis(ms)) => Timestamp(ms),
            Some(At::Expr(e)) => {
                steward_tools::when::resolve(&e, now).map_err(|m| format!("`at`: {m}"))?
            }
        };
        Ok(Event {
            source: self.source,
            name: self.name,
            status: self.status.unwrap_or(EventStatus::Firing),
            key: self.key.unwrap_or_else(|| default_key.to_string()),
            labels: self.labels,
            fields: self.fields,
            text: self.text,
            at,
        })
    }
}

/// `[[rule.example]]`: an event and what the rule must make of it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExampleDef {
    pub event: EventInput,
    /// The ladder's tools in order; empty: the rule must not match the event.
    pub steps: Vec<String>,
    /// The policy decision of each step (`allow`, `needs_approval`, `deny`), when given.
    #[serde(default)]
    pub decisions: Option<Vec<String>>,
}

/// Examples are decided at noon UTC, like the Cedar files' `@example`s, so a policy that
/// depends on the hour gives the same answer at every load.
pub(crate) const EXAMPLE_HOUR_UTC: u8 = 12;

/// Checks one example against the rule as loaded; `Err` says what differs, expected vs got.
pub(crate) fn check(rule: &Rule, ex: &ExampleDef, policies: &PolicySet) -> Result<(), String> {
    let event = ex
        .event
        .clone()
        .into_event("example", Timestamp(0))
        .map_err(|e| format!("bad event: {e}"))?;
    let expected_decisions = match &ex.decisions {
        None => None,
        Some(d) => Some(
            d.iter()
                .map(|s| decision_kind(s))
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    if !rule.matches(&event) {
        if ex.steps.is_empty() {
            return Ok(());
        }
        return Err(format!(
            "the rule does not match the event\n  expected: steps {}\n  got:      no match",
            list(&ex.steps)
        ));
    }
    if ex.steps.is_empty() {
        return Err(format!(
            "the rule matches the event\n  expected: no match\n  got:      steps {}",
            list(
                &rule
                    .steps
                    .iter()
                    .map(|s| s.tool.clone())
                    .collect::<Vec<_>>()
            )
        ));
    }
    let planned = rule
        .plan(&event)
        .map_err(|e| format!("the event cannot be planned: {e}"))?;
    let got: Vec<String> = planned.steps.iter().map(|s| s.tool.clone()).collect();
    if got != ex.steps {
        return Err(format!(
            "steps differ\n  expected: {}\n  got:      {}",
            list(&ex.steps),
            list(&got)
        ));
    }
    if let Some(expected) = expected_decisions {
        let decisions = decide(policies, &planned);
        let mut kinds: Vec<DecisionKind> = decisions.iter().map(DecisionKind::of).collect();
        // Steps whose arguments come from the previous step's output are vetted when they
        // run; an example lists the decisions of the steps before them.
        let deferred = planned
            .steps
            .iter()
            .position(|s| super::template::needs_previous(&s.args))
            .unwrap_or(kinds.len());
        if expected.len() == deferred {
            kinds.truncate(deferred);
        }
        if kinds != expected {
            let mut got = String::new();
            for (i, (step, d)) in planned.steps.iter().zip(&decisions).enumerate() {
                let _ = write!(got, "\n    {}. {}: {}", i + 1, step.tool, describe(d));
            }
            return Err(format!(
                "decisions differ\n  expected: {}\n  got:      {}{got}",
                list(&expected),
                list(&kinds)
            ));
        }
    }
    Ok(())
}

fn decision_kind(s: &str) -> Result<DecisionKind, String> {
    Ok(match s {
        "allow" => DecisionKind::Allow,
        "needs_approval" => DecisionKind::NeedsApproval,
        "deny" => DecisionKind::Deny,
        other => {
            return Err(format!(
                "decision {other:?} is not allow, needs_approval or deny"
            ))
        }
    })
}

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    let items: Vec<String> = items.iter().map(ToString::to_string).collect();
    format!("[{}]", items.join(", "))
}
