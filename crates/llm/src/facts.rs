//! A tool's JSON output as facts, one per line (`live.health: unhealthy`): lists as a count
//! and their items, nothing empty, nothing the executor's summary line already says, long
//! hex ids cut to 12 characters and timestamps to the second. People read this in
//! `steward chat` under the summary (the raw JSON is behind `/json` and `--verbose`); the
//! planner reads the same facts after the summary ([`crate::Turn::tool_result`]), which
//! costs it far fewer tokens to decode than the JSON did.

use std::collections::HashSet;

use serde_json::Value;

/// How much of an output a reader gets.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Lines at most; the rest is counted in a last line. `None`: every line.
    pub lines: Option<usize>,
    /// Items of each list.
    pub items: usize,
}

/// What `steward chat` shows a person: a screenful, with the rest behind `/json`.
pub const FOR_PEOPLE: Budget = Budget {
    lines: Some(16),
    items: 5,
};

/// What the planner reads: everything; the result as a whole is cut at
/// [`crate::plan::MAX_RESULT_CHARS`].
pub const FOR_PLANNER: Budget = Budget {
    lines: None,
    items: usize::MAX,
};

/// How a line holding one item of a list starts.
pub const ITEM: &str = "  - ";

/// Hex strings at least this long are ids (container ids, hashes); only their head is shown.
const LONG_HEX: usize = 32;
/// Characters of such an id that are shown, as `docker ps` does.
const SHORT_ID: usize = 12;

/// The facts of `output` that `summary` does not already state, one per line.
pub fn beyond(summary: &str, output: &Value, budget: Budget) -> Vec<String> {
    let said = words(summary);
    let mut out = Vec::new();
    collect("", output, &said, budget, &mut out);
    if let Some(max) = budget.lines {
        if out.len() > max {
            let more = out.len() - max;
            out.truncate(max);
            out.push(format!("… {more} more (/json shows all)"));
        }
    }
    out
}

/// The summary's words, without the punctuation around them: "billing: running
/// (unhealthy), release r6" says `billing`, `running`, `unhealthy`, `release`, `r6`.
fn words(summary: &str) -> HashSet<&str> {
    summary
        .split(|c: char| c.is_whitespace() || ",;()[]\"'".contains(c))
        .map(|w| w.trim_end_matches(['.', ':']))
        .filter(|w| !w.is_empty())
        .collect()
}

fn collect(path: &str, value: &Value, said: &HashSet<&str>, budget: Budget, out: &mut Vec<String>) {
    match value {
        Value::Null => {}
        Value::String(s) if s.is_empty() || said.contains(s.as_str()) => {}
        Value::Object(map) => {
            for (key, v) in map {
                collect(&child(path, key), v, said, budget, out);
            }
        }
        Value::Array(items) if items.is_empty() => {}
        Value::Array(items) if items.iter().all(is_scalar) => {
            let shown: Vec<String> = items.iter().take(budget.items).map(scalar).collect();
            out.push(format!(
                "{path}: {}{}",
                shown.join(", "),
                rest(items, budget)
            ));
        }
        Value::Array(items) => {
            out.push(format!("{path}: {}", items.len()));
            for item in items.iter().take(budget.items) {
                out.push(format!("{ITEM}{}", one_line(item)));
            }
            if items.len() > budget.items {
                out.push(format!("  … {} more", items.len() - budget.items));
            }
        }
        v => out.push(format!("{path}: {}", scalar(v))),
    }
}

/// " and 3 more" after the items of a list that were shown, or nothing.
fn rest(items: &[Value], budget: Budget) -> String {
    match items.len().saturating_sub(budget.items) {
        0 => String::new(),
        n => format!(" and {n} more"),
    }
}

/// The dotted path of `key` under `path`: `live.health`.
fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => compact(s),
        other => other.to_string(),
    }
}

/// A long hex id cut to its head; a timestamp without its fraction of a second.
fn compact(s: &str) -> String {
    if s.len() >= LONG_HEX && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return s[..SHORT_ID].to_string();
    }
    let b = s.as_bytes();
    if b.len() > 20 && b[10] == b'T' && b[19] == b'.' && b[..4].iter().all(u8::is_ascii_digit) {
        let digits = b[20..].iter().take_while(|c| c.is_ascii_digit()).count();
        return format!("{}{}", &s[..19], &s[20 + digits..]);
    }
    s.to_string()
}

/// An item of a list on one line, nested keys dotted: `id=r7, actor.name=mark`.
fn one_line(item: &Value) -> String {
    let mut parts = Vec::new();
    pairs("", item, &mut parts);
    parts.join(", ")
}

fn pairs(path: &str, value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Null => {}
        Value::Object(map) => {
            for (key, v) in map {
                pairs(&child(path, key), v, out);
            }
        }
        Value::Array(items) if items.is_empty() => {}
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(one_line).collect();
            out.push(format!("{path}=[{}]", inner.join("; ")));
        }
        v if path.is_empty() => out.push(scalar(v)),
        v => out.push(format!("{path}={}", scalar(v))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ALL: Budget = FOR_PLANNER;

    #[test]
    fn nested_facts_get_one_line_each_and_lists_are_counted() {
        // Keys in sorted order, so the order is the same with or without serde_json's
        // preserve_order.
        let output = json!({
            "empty": [],
            "kept": ["r5", "r6"],
            "live": {"health": "unhealthy", "ip": null, "release": "r7"},
            "releases": [{"id": "r7", "image": "steward-demo:v2"}, {"id": "r6", "image": "steward-demo:v1"}],
            "service": "rentguy"
        });
        assert_eq!(
            beyond("", &output, ALL),
            vec![
                "kept: r5, r6",
                "live.health: unhealthy",
                "live.release: r7",
                "releases: 2",
                "  - id=r7, image=steward-demo:v2",
                "  - id=r6, image=steward-demo:v1",
                "service: rentguy",
            ]
        );
    }

    #[test]
    fn what_the_summary_says_is_not_repeated() {
        let output = json!({
            "live": {"health": "unhealthy", "restart_count": 4, "state": "running"},
            "releases": [{"health": "unhealthy", "release": "r6"}],
            "service": "billing"
        });
        // The list item keeps its words: they say which release has which health.
        assert_eq!(
            beyond("billing: running (unhealthy), release r6", &output, ALL),
            vec![
                "live.restart_count: 4",
                "releases: 1",
                "  - health=unhealthy, release=r6"
            ]
        );
    }

    #[test]
    fn ids_and_timestamps_are_shortened_and_nested_items_dotted() {
        let output = json!({"records": [{
            "actor": {"kind": "user", "name": "mark"},
            "at": "2026-11-23T08:02:11.418273645Z",
            "hash": "76024f1d418e7f67935c2ad2030f4d95f27a5b20152ae780d69907562cdf3bcd",
            "spans": [{"from": "2026-11-16T14:30:51Z", "until": null}]
        }]});
        assert_eq!(
            beyond("", &output, ALL),
            vec![
                "records: 1",
                "  - actor.kind=user, actor.name=mark, at=2026-11-23T08:02:11Z, hash=76024f1d418e, spans=[from=2026-11-16T14:30:51Z]"
            ]
        );
    }

    #[test]
    fn people_get_a_screenful_and_are_told_where_the_rest_is() {
        let many: serde_json::Map<String, Value> =
            (0..30).map(|i| (format!("k{i:02}"), json!(i))).collect();
        let shown = beyond("", &Value::Object(many), FOR_PEOPLE);
        assert_eq!(shown.len(), 17);
        assert_eq!(shown.last().unwrap(), "… 14 more (/json shows all)");
        let list = json!({"ids": (0..8).collect::<Vec<_>>()});
        assert_eq!(
            beyond("", &list, FOR_PEOPLE),
            vec!["ids: 0, 1, 2, 3, 4 and 3 more"]
        );
    }
}
