//! What a loaded rulebook does with one event: which rules match, who they act as, their
//! throttle group, the ladder with its arguments rendered, and what policy says about it.
//! Nothing here runs a tool; the engine (`steward-agent`) does, down the one request path.

use steward_protocol::{Decision, Event, EventSource, Origin};
use steward_tools::Call;

use super::model::{Matcher, Planned, PlannedStep, Rule, Rulebook};
use super::template;
use crate::error::{PolicyError, Result};
use crate::principal::{Principal, PrincipalKind};
use crate::vet::{PolicySet, VetRequest};

impl Rulebook {
    /// The rules whose matcher fits the event (source, name, labels), in file order.
    /// Status is not looked at: a resolved event finds the same rules, so the engine can
    /// close what they opened.
    pub fn matching<'a>(&'a self, event: &Event) -> Vec<&'a Rule> {
        self.rules.iter().filter(|r| r.matches(event)).collect()
    }

    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }
}

impl Rule {
    /// Whether this rule answers the event. Alert and monitor rules match on the name and
    /// every label they list; a hook rule on the hook's name; a schedule rule on events
    /// whose name is the rule's id (the schedule source names its events after the rule).
    pub fn matches(&self, event: &Event) -> bool {
        if event.source != self.on.source() {
            return false;
        }
        match &self.on {
            Matcher::Alert { name, labels } | Matcher::Monitor { kind: name, labels } => {
                event.name == *name
                    && labels
                        .iter()
                        .all(|(k, v)| event.labels.get(k).is_some_and(|e| e == v))
            }
            Matcher::Hook { name } => event.name == *name,
            Matcher::Schedule { .. } => event.name == self.id,
        }
    }

    /// `alert_rule:<id>` for alert/monitor/schedule rules; `webhook:<hook name>` for hooks.
    pub fn principal(&self) -> Principal {
        match &self.on {
            Matcher::Hook { name } => Principal::new(PrincipalKind::WebhookSource, name.clone()),
            _ => Principal::new(PrincipalKind::AlertRule, self.id.clone()),
        }
    }

    /// Origin::Alert, Webhook, Monitor or Schedule.
    pub fn origin(&self) -> Origin {
        match self.on.source() {
            EventSource::Alert => Origin::Alert,
            EventSource::Hook => Origin::Webhook,
            EventSource::Monitor => Origin::Monitor,
            EventSource::Schedule => Origin::Schedule,
        }
    }

    /// The throttle group of an event: the throttle key (the rule id unless `throttle_key` says otherwise) plus the `group_by` values, as a JSON
    /// array so no value can forge another group (`service-down ["rentguy"]`). A missing
    /// value is `null`. Without `group_by` (or a throttle) the group is the rule id.
    pub fn group_key(&self, event: &Event) -> String {
        let (key, names) = match &self.throttle {
            Some(t) => (t.key.as_str(), t.group_by.as_slice()),
            None => (self.id.as_str(), &[][..]),
        };
        if names.is_empty() {
            return key.to_string();
        }
        let values: Vec<Option<String>> = names.iter().map(|n| event.value(n)).collect();
        let values = serde_json::to_string(&values).unwrap_or_default();
        format!("{key} {values}")
    }

    /// Renders each step's arguments from the event's typed values and validates them
    /// against the tool's JSON Schema (steward_tools); a missing value or invalid args is an
    /// error naming the step, argument and value. Runs nothing.
    pub fn plan(&self, event: &Event) -> Result<Planned> {
        let mut steps = Vec::with_capacity(self.steps.len());
        for (i, step) in self.steps.iter().enumerate() {
            let err = |message: String| PolicyError::Plan {
                rule: self.id.clone(),
                message: format!("step {} ({}): {message}", i + 1, step.tool),
            };
            let args = template::render_args(&step.args, event).map_err(err)?;
            // Arguments from the previous step's output are validated when the step runs.
            if !template::needs_previous(&args) {
                Call::parse(&step.tool, args.clone())
                    .map_err(|e| err(format!("{}; rendered arguments: {args}", e.message)))?;
            }
            steps.push(PlannedStep {
                tool: step.tool.clone(),
                args,
                when: step.when.clone(),
                until: step.until.clone(),
            });
        }
        Ok(Planned {
            rule: self.id.clone(),
            principal: self.principal().to_string(),
            origin: self.origin(),
            steps,
        })
    }
}

/// The policy decision for each planned step, as the rule's principal with the rule's origin
/// (what `rules test` prints and what examples check). Decided at noon UTC like every
/// example; [`decide_at`] takes the hour.
pub fn decide(policies: &PolicySet, planned: &Planned) -> Vec<Decision> {
    decide_at(policies, planned, super::examples::EXAMPLE_HOUR_UTC)
}

/// [`decide`] at a given hour of the day (UTC). Arguments come from typed values only, so
/// no step counts as planned from untrusted text. Anything that cannot be vetted (a bad
/// principal, arguments the tool refuses) is a `Deny`: fail closed.
pub fn decide_at(policies: &PolicySet, planned: &Planned, hour_utc: u8) -> Vec<Decision> {
    let principal = match Principal::parse(&planned.principal) {
        Ok(p) => p,
        Err(e) => {
            let deny = Decision::Deny {
                policies: vec![],
                reason: e.to_string(),
            };
            return vec![deny; planned.steps.len()];
        }
    };
    planned
        .steps
        .iter()
        .map(|step| match Call::parse(&step.tool, step.args.clone()) {
            Err(_) if template::needs_previous(&step.args) => Decision::Deny {
                policies: vec![],
                reason: "not decided yet: an argument comes from the previous step's output, \
                         so the call is vetted when the step runs"
                    .into(),
            },
            Ok(call) => policies.vet(&VetRequest {
                principal: &principal,
                call: &call,
                origin: planned.origin,
                untrusted_text: false,
                hour_utc,
            }),
            Err(e) => Decision::Deny {
                policies: vec![],
                reason: e.message,
            },
        })
        .collect()
}
