//! Alertmanager's webhook payload (version 4), turned into one [`Event`] per alert.
//!
//! Parsed by hand from a `serde_json::Value` so that a refusal names the exact field
//! (`alerts[2].fingerprint`), which is what a person fixing an Alertmanager config needs.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use steward_protocol::{Event, EventSource, EventStatus, Timestamp};

/// The only payload version accepted.
pub const VERSION: &str = "4";

type Obj = Map<String, Value>;

fn field<'a>(obj: &'a Obj, path: &str, name: &str) -> Result<&'a Value, String> {
    obj.get(name)
        .ok_or_else(|| format!("{path}{name}: missing"))
}

fn string<'a>(obj: &'a Obj, path: &str, name: &str) -> Result<&'a str, String> {
    field(obj, path, name)?
        .as_str()
        .ok_or_else(|| format!("{path}{name}: must be a string"))
}

fn object<'a>(obj: &'a Obj, path: &str, name: &str) -> Result<&'a Obj, String> {
    field(obj, path, name)?
        .as_object()
        .ok_or_else(|| format!("{path}{name}: must be an object"))
}

/// A label or annotation map: every value must be a string.
fn strings(obj: &Obj, path: &str, name: &str) -> Result<BTreeMap<String, String>, String> {
    object(obj, path, name)?
        .iter()
        .map(|(k, v)| match v.as_str() {
            Some(s) => Ok((k.clone(), s.to_string())),
            None => Err(format!("{path}{name}.{k}: must be a string")),
        })
        .collect()
}

fn status(obj: &Obj, path: &str) -> Result<EventStatus, String> {
    match string(obj, path, "status")? {
        "firing" => Ok(EventStatus::Firing),
        "resolved" => Ok(EventStatus::Resolved),
        other => Err(format!(
            "{path}status: {other:?} is neither \"firing\" nor \"resolved\""
        )),
    }
}

/// Annotations rendered as data, one `key: value` line each, in key order.
fn render(annotations: &BTreeMap<String, String>) -> Option<String> {
    (!annotations.is_empty()).then(|| {
        annotations
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// The events of one payload, in the payload's order. Every field Alertmanager sends with
/// version 4 must be present with its type; a refusal names the first one that is not.
pub fn parse(body: &Value) -> Result<Vec<Event>, String> {
    let top = body
        .as_object()
        .ok_or_else(|| "the payload must be a JSON object".to_string())?;
    let version = string(top, "", "version")?;
    if version != VERSION {
        return Err(format!(
            "version: {version:?} is not supported (Alertmanager webhook payload version {VERSION})"
        ));
    }
    string(top, "", "groupKey")?;
    if !field(top, "", "truncatedAlerts")?.is_u64() {
        return Err("truncatedAlerts: must be a non-negative integer".into());
    }
    status(top, "")?;
    string(top, "", "receiver")?;
    strings(top, "", "groupLabels")?;
    strings(top, "", "commonLabels")?;
    strings(top, "", "commonAnnotations")?;
    string(top, "", "externalURL")?;
    let alerts = field(top, "", "alerts")?
        .as_array()
        .ok_or_else(|| "alerts: must be an array".to_string())?;
    if alerts.is_empty() {
        return Err("alerts: empty (Alertmanager sends at least one alert)".into());
    }
    alerts
        .iter()
        .enumerate()
        .map(|(i, a)| alert(a, &format!("alerts[{i}].")))
        .collect()
}

fn alert(a: &Value, path: &str) -> Result<Event, String> {
    let a = a
        .as_object()
        .ok_or_else(|| format!("{}: must be an object", path.trim_end_matches('.')))?;
    let status = status(a, path)?;
    let labels = strings(a, path, "labels")?;
    let annotations = strings(a, path, "annotations")?;
    let starts_at = string(a, path, "startsAt")?;
    let at = chrono::DateTime::parse_from_rfc3339(starts_at)
        .map_err(|e| format!("{path}startsAt: {starts_at:?} is not an RFC 3339 time ({e})"))?;
    string(a, path, "endsAt")?;
    string(a, path, "generatorURL")?;
    let fingerprint = string(a, path, "fingerprint")?;
    if fingerprint.is_empty() {
        return Err(format!("{path}fingerprint: empty"));
    }
    let name = labels
        .get("alertname")
        .filter(|n| !n.is_empty())
        .cloned()
        .ok_or_else(|| format!("{path}labels.alertname: missing"))?;
    Ok(Event {
        source: EventSource::Alert,
        name,
        status,
        key: fingerprint.to_string(),
        labels,
        fields: BTreeMap::new(),
        text: render(&annotations),
        at: Timestamp(at.timestamp_millis()),
    })
}
