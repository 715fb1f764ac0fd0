//! The small languages inside a rule: `on`, durations, `until`, `when` and cron lines.
//! Each parser returns a message that says what was expected, for the loader to prefix
//! with the file, rule and field.

use std::collections::BTreeMap;

use steward_tools::when::duration_ms;

use super::model::{CatchUp, Gate, Matcher, Until};
use crate::principal::{Principal, PrincipalKind};

/// `alert:<alertname>`, `hook:<name>`, `monitor:<kind>` or `schedule:<cron>`, with the
/// rule's `labels` (alert and monitor rules only).
pub(crate) fn matcher(on: &str, labels: BTreeMap<String, String>) -> Result<Matcher, String> {
    let expected = "expected alert:<alertname>, hook:<name>, monitor:<kind> or \
                    schedule:<cron>";
    let Some((kind, rest)) = on.split_once(':') else {
        return Err(format!("{on:?}: {expected}"));
    };
    let rest = rest.trim();
    if rest.is_empty() {
        return Err(format!("{on:?}: nothing after `{kind}:`; {expected}"));
    }
    let no_labels = |what: &str| {
        if labels.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "`labels` apply to alert and monitor rules, not to {what}"
            ))
        }
    };
    match kind.trim() {
        "alert" => {
            word(rest, "alert name")?;
            Ok(Matcher::Alert {
                name: rest.to_string(),
                labels,
            })
        }
        "hook" => {
            no_labels("hooks")?;
            Principal::parse(&format!("{}:{rest}", PrincipalKind::WebhookSource.prefix()))
                .map_err(|e| format!("hook name {rest:?} is not a valid principal id: {e}"))?;
            Ok(Matcher::Hook {
                name: rest.to_string(),
            })
        }
        "monitor" => {
            word(rest, "monitor event kind")?;
            Ok(Matcher::Monitor {
                kind: rest.to_string(),
                labels,
            })
        }
        "schedule" => {
            no_labels("schedules")?;
            cron(rest)?;
            Ok(Matcher::Schedule {
                cron: rest.split_whitespace().collect::<Vec<_>>().join(" "),
                timezone: String::new(),
                for_each: None,
                catch_up: CatchUp::Once,
            })
        }
        other => Err(format!("{on:?}: unknown source {other:?}; {expected}")),
    }
}

/// An alert or monitor name: one word of letters, digits and `_ : . -`.
fn word(s: &str, what: &str) -> Result<(), String> {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "_:.-".contains(c))
    {
        Ok(())
    } else {
        Err(format!(
            "{what} {s:?} may contain only letters, digits and _ : . -"
        ))
    }
}

/// `90s`, `10m`, `1h`, `0s`: a whole number with a unit (bare numbers are ambiguous).
pub(crate) fn duration(s: &str) -> Result<i64, String> {
    duration_ms(s).ok_or_else(|| {
        format!("{s:?} is not a duration: write a whole number with a unit, e.g. 30s, 10m, 1h")
    })
}

/// `healthy within <duration>` or `done`.
pub(crate) fn until(s: &str) -> Result<Until, String> {
    let words: Vec<&str> = s.split_whitespace().collect();
    match words.as_slice() {
        ["done"] => Ok(Until::Done),
        ["healthy", "within", d @ ..] if !d.is_empty() => {
            let within_ms = duration(&d.join(" "))?;
            if within_ms <= 0 {
                return Err(format!("{s:?}: the wait must be longer than 0s"));
            }
            Ok(Until::Healthy { within_ms })
        }
        _ => Err(format!(
            "{s:?}: expected `healthy within <duration>` (e.g. healthy within 60s) or `done`"
        )),
    }
}

/// `previous <JSON Pointer> == <JSON value>`, e.g. `previous /available == true`.
pub(crate) fn when(s: &str) -> Result<Gate, String> {
    let expected = "expected `previous <JSON Pointer> == <JSON value>`, e.g. \
                    `previous /available == true`";
    let Some(rest) = s.trim().strip_prefix("previous ") else {
        return Err(format!("{s:?}: {expected}"));
    };
    let Some((pointer, value)) = rest.split_once("==") else {
        return Err(format!("{s:?}: no `==`; {expected}"));
    };
    let pointer = pointer.trim();
    if !pointer.starts_with('/') || pointer.contains(char::is_whitespace) {
        return Err(format!(
            "{s:?}: {pointer:?} is not a JSON Pointer (it starts with / and has no spaces); \
             {expected}"
        ));
    }
    let equals: serde_json::Value = serde_json::from_str(value.trim()).map_err(|e| {
        format!(
            "{s:?}: {:?} is not a JSON value ({e}); strings need double quotes",
            value.trim()
        )
    })?;
    Ok(Gate {
        pointer: pointer.to_string(),
        equals,
    })
}

/// Five fields (minute hour day-of-month month day-of-week) in the usual cron syntax
/// (lists, ranges, steps, names), parsed by `croner`; seconds and years are refused, so a
/// schedule never fires more than once a minute.
pub(crate) fn cron(s: &str) -> Result<croner::Cron, String> {
    let fields = s.split_whitespace().count();
    if fields != 5 {
        return Err(format!(
            "cron {s:?} has {fields} fields; expected 5: minute hour day-of-month month day-of-week"
        ));
    }
    <croner::Cron as std::str::FromStr>::from_str(s).map_err(|e| format!("cron {s:?}: {e}"))
}

/// An IANA time zone name (`UTC`, `Europe/Amsterdam`) for a schedule's cron line.
pub(crate) fn timezone(s: &str) -> Result<chrono_tz::Tz, String> {
    s.parse::<chrono_tz::Tz>()
        .map_err(|_| format!("{s:?} is not an IANA time zone name such as UTC or Europe/Amsterdam"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_until_when_and_cron() {
        assert_eq!(
            until("healthy within 60s"),
            Ok(Until::Healthy { within_ms: 60_000 })
        );
        assert_eq!(until("done"), Ok(Until::Done));
        assert!(until("healthy in 60s").is_err());
        assert!(until("healthy within 0s").is_err());
        assert_eq!(
            when("previous /available == true"),
            Ok(Gate {
                pointer: "/available".into(),
                equals: json!(true)
            })
        );
        assert_eq!(
            when("previous /status == \"available\"").unwrap().equals,
            json!("available")
        );
        assert!(when("previous available == true").is_err());
        assert!(when("previous /available = true").is_err());
        assert!(when("previous /status == available").is_err());
        assert!(cron("*/5 * * * *").is_ok());
        assert!(cron("0 3 * * 1-5").is_ok());
        assert!(cron("0,30 8-18/2 1 1,6 0").is_ok());
        assert!(cron("30 2 * * MON-FRI").is_ok());
        assert!(timezone("Europe/Amsterdam").is_ok());
        assert!(timezone("Mars/Olympus").is_err());
        for bad in [
            "* * * *",
            "0 * * * * *",
            "60 * * * *",
            "* 24 * * *",
            "*/0 * * * *",
            "5-1 * * * *",
            "a * * * *",
        ] {
            assert!(cron(bad).is_err(), "{bad}");
        }
    }
}
