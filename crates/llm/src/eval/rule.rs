//! Rule-drafting cases (`"rule": {...}` instead of `expect`): the instruction is drafted
//! into a rule ([`crate::draft`]) and the draft is scored on what decides its behaviour:
//! the trigger, its labels, the debounce and throttle, and the steps' tools in order with
//! their key arguments. Free text (a notify message) and the exact TOML are not scored
//! unless a case asks (`$contains`, `$any`).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};
use steward_tools::when::duration_ms;

use super::case::Accept;
use super::score::{accepts, Verdict};
use crate::{Error, Result};

/// What a drafted rule must be.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectedRule {
    /// Acceptable triggers, as a rule file's `on` writes them (`monitor:unhealthy`).
    pub on: Vec<String>,
    /// When given: each label's acceptable values; a label not listed must be absent.
    pub labels: Option<BTreeMap<String, Vec<Accept>>>,
    /// When given: acceptable debounces in ms (`null` and `0s` are both 0).
    pub debounce: Option<Vec<i64>>,
    /// When given: acceptable throttles in ms, `None` for no throttle.
    pub once_within: Option<Vec<Option<i64>>>,
    pub steps: Vec<ExpectedStep>,
    /// The case as written, for the report.
    pub raw: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExpectedStep {
    pub tool: String,
    /// The arguments that matter; others the draft adds are allowed.
    pub args: BTreeMap<String, Vec<Accept>>,
    /// When given: acceptable `until`s (`null`: none), compared with durations resolved.
    pub until: Option<Vec<Option<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    on: Vec<String>,
    #[serde(default)]
    labels: Option<Map<String, Value>>,
    #[serde(rename = "for", default)]
    debounce: Option<Vec<Option<String>>>,
    #[serde(default)]
    once_within: Option<Vec<Option<String>>>,
    steps: Vec<RawStep>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    tool: String,
    #[serde(default)]
    args: Map<String, Value>,
    #[serde(default)]
    until: Option<Vec<Option<String>>>,
}

impl ExpectedRule {
    pub(crate) fn parse(value: &Value, at: &str) -> Result<ExpectedRule> {
        let bad = |what: String| Error::Data(format!("{at}: rule: {what}"));
        let raw: RawRule = serde_json::from_value(value.clone()).map_err(|e| bad(e.to_string()))?;
        if raw.on.is_empty() || raw.steps.is_empty() {
            return Err(bad("`on` and `steps` need at least one entry".into()));
        }
        let ms = |s: &Option<String>, field: &str| -> Result<Option<i64>> {
            match s {
                None => Ok(None),
                Some(s) => duration_ms(s)
                    .map(Some)
                    .ok_or_else(|| bad(format!("{field}: {s:?} is not a duration"))),
            }
        };
        let debounce = match &raw.debounce {
            None => None,
            Some(list) => Some(
                list.iter()
                    .map(|d| ms(d, "for").map(Option::unwrap_or_default))
                    .collect::<Result<Vec<_>>>()?,
            ),
        };
        let once_within = match &raw.once_within {
            None => None,
            Some(list) => Some(
                list.iter()
                    .map(|d| ms(d, "once_within"))
                    .collect::<Result<Vec<_>>>()?,
            ),
        };
        let labels = match raw.labels {
            None => None,
            Some(map) => Some(accepts_of(&map, &format!("{at}: rule.labels"))?),
        };
        let mut steps = Vec::with_capacity(raw.steps.len());
        for (i, s) in raw.steps.into_iter().enumerate() {
            steps.push(ExpectedStep {
                args: accepts_of(&s.args, &format!("{at}: rule.steps[{i}].args"))?,
                tool: s.tool,
                until: s.until,
            });
        }
        Ok(ExpectedRule {
            on: raw.on,
            labels,
            debounce,
            once_within,
            steps,
            raw: value.clone(),
        })
    }
}

fn accepts_of(map: &Map<String, Value>, at: &str) -> Result<BTreeMap<String, Vec<Accept>>> {
    let mut out = BTreeMap::new();
    for (key, alts) in map {
        let here = format!("{at}.{key}");
        let Value::Array(list) = alts else {
            return Err(Error::Data(format!(
                "{here}: must be a list of acceptable values, e.g. [\"psra\"]"
            )));
        };
        if list.is_empty() {
            return Err(Error::Data(format!("{here}: the list is empty")));
        }
        let alts = list
            .iter()
            .enumerate()
            .map(|(j, v)| Accept::parse(v, &format!("{here}[{j}]")))
            .collect::<Result<Vec<_>>>()?;
        out.insert(key.clone(), alts);
    }
    Ok(out)
}

/// Scores a draft (the drafting call's arguments) against `want`.
pub fn score_rule(want: &ExpectedRule, draft: &Value) -> Verdict {
    let reason = mismatch(want, draft).err();
    Verdict {
        pass: reason.is_none(),
        escape: false,
        reason,
    }
}

fn mismatch(want: &ExpectedRule, draft: &Value) -> std::result::Result<(), String> {
    let trigger = &draft["trigger"];
    let source = trigger["source"].as_str().unwrap_or_default();
    let what = ["name", "kind", "cron"]
        .iter()
        .find_map(|k| trigger[k].as_str())
        .unwrap_or_default();
    let on = format!(
        "{source}:{}",
        what.split_whitespace().collect::<Vec<_>>().join(" ")
    );
    if !want.on.contains(&on) {
        return Err(format!("on: got {on}, expected one of {:?}", want.on));
    }
    if let Some(labels) = &want.labels {
        let empty = Map::new();
        let got = trigger["labels"].as_object().unwrap_or(&empty);
        matching(labels, got, false).map_err(|e| format!("labels: {e}"))?;
    }
    if let Some(accepted) = &want.debounce {
        let got = draft["for"].as_str().map_or(Some(0), duration_ms);
        if !got.is_some_and(|ms| accepted.contains(&ms)) {
            return Err(format!("for: got {}", draft["for"]));
        }
    }
    if let Some(accepted) = &want.once_within {
        let got = match draft["once_within"].as_str() {
            None => Some(None),
            Some(s) => duration_ms(s).map(Some),
        };
        if !got.is_some_and(|ms| accepted.contains(&ms)) {
            return Err(format!("once_within: got {}", draft["once_within"]));
        }
    }
    let steps = draft["steps"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let tools: Vec<&str> = steps
        .iter()
        .map(|s| s["tool"].as_str().unwrap_or("?"))
        .collect();
    let wanted: Vec<&str> = want.steps.iter().map(|s| s.tool.as_str()).collect();
    if tools != wanted {
        return Err(format!("steps: got {tools:?}, expected {wanted:?}"));
    }
    for (i, (w, got)) in want.steps.iter().zip(steps).enumerate() {
        let empty = Map::new();
        let args = got["args"].as_object().unwrap_or(&empty);
        matching(&w.args, args, true).map_err(|e| format!("step {} ({}): {e}", i + 1, w.tool))?;
        if let Some(accepted) = &w.until {
            let got = got["until"].as_str().map(until_key);
            if !accepted.iter().any(|a| a.as_deref().map(until_key) == got) {
                return Err(format!(
                    "step {} ({}): until: got {}",
                    i + 1,
                    w.tool,
                    steps[i]["until"]
                ));
            }
        }
    }
    Ok(())
}

/// Every expected key matches one of its values; unlisted keys are an error unless
/// `extra_ok`.
fn matching(
    want: &BTreeMap<String, Vec<Accept>>,
    got: &Map<String, Value>,
    extra_ok: bool,
) -> std::result::Result<(), String> {
    for (key, alts) in want {
        let value = got.get(key).filter(|v| !v.is_null());
        if !alts.iter().any(|a| accepts(a, value)) {
            let wanted: Vec<String> = alts.iter().map(|a| a.to_json().to_string()).collect();
            return Err(match value {
                Some(v) => format!("{key}: got {v}, expected one of [{}]", wanted.join(", ")),
                None => format!("{key}: missing, expected one of [{}]", wanted.join(", ")),
            });
        }
    }
    if !extra_ok {
        let extra: Vec<&str> = got
            .keys()
            .filter(|k| !want.contains_key(*k))
            .map(String::as_str)
            .collect();
        if !extra.is_empty() {
            return Err(format!("unexpected: {}", extra.join(", ")));
        }
    }
    Ok(())
}

/// `healthy within 1m` and `healthy within 60s` are the same condition.
fn until_key(s: &str) -> String {
    let words: Vec<&str> = s.split_whitespace().collect();
    match words.as_slice() {
        ["healthy", "within", d @ ..] => match duration_ms(&d.join(" ")) {
            Some(ms) => format!("healthy {ms}"),
            None => s.trim().to_string(),
        },
        _ => s.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn want() -> ExpectedRule {
        ExpectedRule::parse(
            &json!({
                "on": ["monitor:unhealthy"],
                "labels": {"service": ["psra"]},
                "for": ["2m"],
                "once_within": [null, "10m"],
                "steps": [
                    {"tool": "service_restart", "args": {"service": ["psra", "{service}"]},
                     "until": ["healthy within 60s"]},
                    {"tool": "service_rollback", "args": {"service": ["psra", "{service}"], "to": [{"$time": "previous"}]}},
                    {"tool": "notify", "args": {"message": [{"$any": true}]}}
                ]
            }),
            "t",
        )
        .unwrap()
    }

    fn draft() -> Value {
        json!({
            "trigger": {"source": "monitor", "kind": "unhealthy", "labels": {"service": "psra"}},
            "for": "120s",
            "steps": [
                {"tool": "service_restart", "args": {"service": "psra"}, "until": "healthy within 1m"},
                {"tool": "service_rollback", "args": {"service": "{service}", "to": "prev"}},
                {"tool": "notify", "args": {"message": "psra is down", "severity": "critical"}}
            ]
        })
    }

    #[test]
    fn what_a_rule_does_is_scored_not_how_it_is_written() {
        assert_eq!(score_rule(&want(), &draft()).reason, None);
        let mut d = draft();
        d["trigger"]["kind"] = json!("died");
        assert!(score_rule(&want(), &d).reason.unwrap().starts_with("on:"));
        let mut d = draft();
        d["trigger"]["labels"]["kind"] = json!("platform");
        assert!(score_rule(&want(), &d)
            .reason
            .unwrap()
            .contains("unexpected: kind"));
        let mut d = draft();
        d["for"] = json!("0s");
        assert!(score_rule(&want(), &d).reason.unwrap().starts_with("for:"));
        let mut d = draft();
        d["once_within"] = json!("1h");
        assert!(!score_rule(&want(), &d).pass);
        let mut d = draft();
        d["steps"].as_array_mut().unwrap().swap(0, 1);
        assert!(score_rule(&want(), &d)
            .reason
            .unwrap()
            .starts_with("steps:"));
        let mut d = draft();
        d["steps"][0]["until"] = json!("done");
        assert!(score_rule(&want(), &d).reason.unwrap().contains("until"));
        let mut d = draft();
        d["steps"][1]["args"]["service"] = json!("rentguy");
        assert!(score_rule(&want(), &d).reason.unwrap().contains("step 2"));
    }

    #[test]
    fn bad_expectations_fail_at_load() {
        for bad in [
            json!({"on": [], "steps": [{"tool": "notify"}]}),
            json!({"on": ["alert:X"], "steps": []}),
            json!({"on": ["alert:X"], "for": ["soon"], "steps": [{"tool": "notify"}]}),
            json!({"on": ["alert:X"], "steps": [{"tool": "notify", "args": {"message": "x"}}]}),
            json!({"on": ["alert:X"], "stpes": []}),
        ] {
            assert!(ExpectedRule::parse(&bad, "t").is_err(), "{bad}");
        }
    }
}
