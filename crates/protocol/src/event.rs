use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Timestamp;

/// Which kind of source produced an event. Sources never act; rules turn events into calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventSource {
    /// Alertmanager's webhook (`POST /hooks/alertmanager`).
    Alert,
    /// A signed webhook (`POST /hooks/<name>`), n8n or anything that computes the HMAC.
    Hook,
    /// The Docker-events health monitor (next issue).
    Monitor,
    /// A cron schedule (next issue).
    Schedule,
}

impl EventSource {
    /// The name rules and people use: `alert`, `hook`, `monitor`, `schedule`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventSource::Alert => "alert",
            EventSource::Hook => "hook",
            EventSource::Monitor => "monitor",
            EventSource::Schedule => "schedule",
        }
    }
}

/// Whether the condition an event reports is still going on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    Firing,
    Resolved,
}

/// One thing that happened, as every trigger source reports it to the rulebooks.
///
/// `labels` and `fields` are typed: they come from configuration Steward trusts (an alert
/// rule's labels, a hook's JSON Pointer mapping validated later by the tool's schema) and
/// are the only place rule arguments may be taken from. `text` is free text nobody on the
/// platform team wrote (alert annotations, a webhook's message): data, never instructions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub source: EventSource,
    /// The alert's name (`alertname`), the hook's name, the monitor event (`unhealthy`) or
    /// the schedule's id.
    pub name: String,
    pub status: EventStatus,
    /// What identifies the same condition across repeats: Alertmanager's fingerprint, a
    /// webhook's delivery id. A repeat of a firing key never re-runs actions.
    pub key: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub fields: BTreeMap<String, Value>,
    /// Untrusted free text, kept for people and the audit log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// When the condition started (an alert's `startsAt`), else when it was received.
    pub at: Timestamp,
}

impl Event {
    /// A typed value by name: a label first, then a field rendered as text (strings without
    /// quotes). `None` when neither exists.
    pub fn value(&self, name: &str) -> Option<String> {
        if let Some(v) = self.labels.get(name) {
            return Some(v.clone());
        }
        match self.fields.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }
}
