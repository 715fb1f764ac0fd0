//! The rulebook's data model: what `policies/rules/*.toml` says once it has been parsed and
//! checked. This is the contract between the rulebook loader (this crate) and the engine
//! that runs ladders (`steward-agent`); the engine reads these types and nothing else.

use std::collections::BTreeMap;

use serde::Serialize;
use steward_protocol::{EventSource, Origin};

/// Every rule of every file in `policies/rules/`, checked at load.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Rulebook {
    pub rules: Vec<Rule>,
}

/// One rule: which events it answers, how often, and the ladder of steps it climbs.
#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    /// Unique across the rulebook; the steps run as principal `alert_rule:<id>` (alerts,
    /// monitor events, schedules) or `webhook:<hook>` (hooks).
    pub id: String,
    pub description: String,
    /// The file it came from, for error messages.
    pub file: String,
    pub on: Matcher,
    /// Debounce: the event must still be firing this long after it started before the
    /// first step runs (0: at once).
    pub for_ms: i64,
    pub throttle: Option<Throttle>,
    pub steps: Vec<Step>,
}

/// What a rule listens to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Matcher {
    /// `on = "alert:ServiceDown"` plus optional `[rule.labels]` that must all be equal.
    Alert {
        name: String,
        labels: BTreeMap<String, String>,
    },
    /// `on = "hook:signup"`.
    Hook { name: String },
    /// `on = "monitor:unhealthy"` (next issue), with optional labels.
    Monitor {
        kind: String,
        labels: BTreeMap<String, String>,
    },
    /// `on = "schedule:<cron>"` with `timezone` (required: a schedule's hours mean nothing
    /// without one), optional `for_each` and `catch_up`.
    Schedule {
        cron: String,
        /// IANA name, e.g. `UTC`, `Europe/Amsterdam`.
        timezone: String,
        /// `database`: one run per tenant and platform database, the name in label
        /// `target`. `None`: one run.
        for_each: Option<String>,
        catch_up: CatchUp,
    },
}

/// What a schedule does at start-up about runs missed while `steward serve` was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Run the latest missed slot once (default).
    Once,
    /// Wait for the next slot.
    Skip,
}

/// The values `for_each` may name: the scheduler knows how to list these.
pub const FOR_EACH: [&str; 1] = ["database"];

impl Matcher {
    /// The first time a schedule fires strictly after `after`; `None` for other matchers or
    /// a cron line that never fires again.
    pub fn next_fire(
        &self,
        after: steward_protocol::Timestamp,
    ) -> Option<steward_protocol::Timestamp> {
        let Matcher::Schedule { cron, timezone, .. } = self else {
            return None;
        };
        let cron = <croner::Cron as std::str::FromStr>::from_str(cron).ok()?;
        let tz: chrono_tz::Tz = timezone.parse().ok()?;
        // Slots fall on whole minutes whatever the fraction of a second `after` has.
        let after =
            chrono::DateTime::from_timestamp(after.0.div_euclid(1000), 0)?.with_timezone(&tz);
        let next = cron.find_next_occurrence(&after, false).ok()?;
        Some(steward_protocol::Timestamp(next.timestamp_millis()))
    }
}

impl Matcher {
    pub fn source(&self) -> EventSource {
        match self {
            Matcher::Alert { .. } => EventSource::Alert,
            Matcher::Hook { .. } => EventSource::Hook,
            Matcher::Monitor { .. } => EventSource::Monitor,
            Matcher::Schedule { .. } => EventSource::Schedule,
        }
    }
}

/// At most one run per `group_by` values within `once_within_ms` (Ansible EDA's throttle).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Throttle {
    pub once_within_ms: i64,
    /// Rules with the same `throttle_key` share their windows (default: the rule id), so
    /// two rules that heal the same service (an alert's and the monitor's) never both
    /// act on one outage.
    pub key: String,
    /// Typed event values (labels or fields) that make up a group; empty: one group.
    pub group_by: Vec<String>,
}

/// One rung of the escalation ladder: a typed call, an optional gate before it and an
/// optional condition after it.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub tool: String,
    /// Argument templates: literal JSON, or strings with `{name}` placeholders filled only
    /// from the event's typed values ([`Event::value`](steward_protocol::Event::value)); the tool's schema validates the
    /// rendered arguments.
    pub args: serde_json::Map<String, serde_json::Value>,
    /// `when = "previous /available == true"`: run this step only if the previous step's
    /// output has this value at the JSON Pointer; otherwise the incident closes, saying which
    /// condition was not met, and no later step runs.
    pub when: Option<Gate>,
    /// What must hold after this step for the ladder to stop (incident resolved). When it
    /// does not hold, the next step runs; after the last step the incident closes
    /// unresolved. `None`: the step must succeed and the ladder goes on to the next step
    /// (a sequence); a failed call closes the incident as failed.
    pub until: Option<Until>,
}

/// A condition on the previous step's output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gate {
    pub pointer: String,
    pub equals: serde_json::Value,
}

/// The condition checked after a step ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Until {
    /// `until = "healthy within 60s"`: the service named by the step's `service` argument
    /// reports healthy (its `service_status`) within the time.
    Healthy { within_ms: i64 },
    /// `until = "done"`: the call ran without error.
    Done,
}

/// What one rule wants done for one event: the rule and its steps with arguments rendered.
#[derive(Debug, Clone, Serialize)]
pub struct Planned {
    pub rule: String,
    pub principal: String,
    /// The origin every step is vetted with ([`Rule::origin`]); the principal alone cannot
    /// tell an alert from a monitor event.
    pub origin: Origin,
    pub steps: Vec<PlannedStep>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedStep {
    pub tool: String,
    pub args: serde_json::Value,
    pub when: Option<Gate>,
    pub until: Option<Until>,
}
