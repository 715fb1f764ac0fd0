//! A tool's JSON output as facts, one per line (`live.health: unhealthy`): lists as a count
//! and their items, nothing empty, nothing the executor's summary line already says, long
//! hex ids cut to 12 characters and timestamps to the second, and items that say the same
//! thing at other times (a log line repeated) on one line with their count. People read this in
//! `steward chat` under the summary (the raw JSON is behind `/json` and `--verbose`); the
//! planner reads the same facts after the summary ([`crate::Turn::tool_result`]), which
//! costs it far fewer tokens to decode than the JSON did.

use std::collections::{HashMap, HashSet};

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
            let groups = alike(items);
            for group in groups.iter().take(budget.items) {
                out.push(format!("{ITEM}{}", group.line()));
            }
            let unshown: usize = groups.iter().skip(budget.items).map(|g| g.count).sum();
            if unshown > 0 {
                out.push(format!("  … {unshown} more"));
            }
        }
        v => out.push(format!("{path}: {}", scalar(v))),
    }
}

/// Items of a list that are alike ([`shape`]): the first, how many there were, and the last
/// (for when it was).
struct Alike<'a> {
    first: &'a Value,
    count: usize,
    last: &'a Value,
}

impl Alike<'_> {
    /// The first item on one line, then `(7 like this, the last at 2026-11-23T11:08:42Z)`.
    fn line(&self) -> String {
        let first = one_line(self.first);
        if self.count == 1 {
            return first;
        }
        match first_timestamp(self.last) {
            Some(at) => format!(
                "{first} ({} {LIKE_THIS}, the last at {})",
                self.count,
                compact(at)
            ),
            None => format!("{first} ({} {LIKE_THIS})", self.count),
        }
    }
}

/// How a line standing for several items says so.
const LIKE_THIS: &str = "like this";

/// The items grouped by their [`shape`], in order of first appearance. A log that repeats
/// one error 40 times reads as one line with a count, which is what a reader needs and costs
/// the planner one line's tokens instead of forty.
fn alike(items: &[Value]) -> Vec<Alike<'_>> {
    let mut groups: Vec<Alike> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for item in items {
        let key = one_line(&shape(item));
        match seen.get(&key) {
            Some(&i) => {
                groups[i].count += 1;
                groups[i].last = item;
            }
            None => {
                seen.insert(key, groups.len());
                groups.push(Alike {
                    first: item,
                    count: 1,
                    last: item,
                });
            }
        }
    }
    groups
}

/// What an item says apart from when and which: its timestamps left out, and in its prose
/// (values of several words, a log line's text) every run of 4 or more digits (an
/// execution, request or process id, a port) made one. Shorter numbers are kept: a status
/// code, an attempt or a size tells lines apart. A one-word value is a name or an id
/// (`rentguy-20261122T020000000Z`) that someone may ask for, and is kept whole.
fn shape(value: &Value) -> Value {
    const ID_DIGITS: usize = 4;
    match value {
        Value::String(s) if is_timestamp(s) => Value::Null,
        Value::String(s) if s.contains(char::is_whitespace) => {
            let mut out = String::with_capacity(s.len());
            let mut digits = String::new();
            for c in s.chars().chain(std::iter::once(' ')) {
                if c.is_ascii_digit() {
                    digits.push(c);
                    continue;
                }
                out.push_str(if digits.len() >= ID_DIGITS {
                    "#"
                } else {
                    &digits
                });
                digits.clear();
                out.push(c);
            }
            out.pop();
            Value::String(out)
        }
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(shape).collect()),
        other => other.clone(),
    }
}

/// The first timestamp in `value`, depth first in key order.
fn first_timestamp(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) if is_timestamp(s) => Some(s),
        Value::Object(map) => map.values().find_map(first_timestamp),
        Value::Array(items) => items.iter().find_map(first_timestamp),
        _ => None,
    }
}

/// An RFC 3339 date and time: `2026-11-23T11:02:00.412773018Z`.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b[..4].iter().all(u8::is_ascii_digit)
        && (b[4], b[7], b[10], b[13], b[16]) == (b'-', b'-', b'T', b':', b':')
}

/// An item line of [`beyond`] and how many items it stands for: 7 for a line ending
/// `(7 like this, the last at …)`, else 1. Data can end that way too, so a reader that
/// counts checks the sum against the list's length.
pub fn item_count(line: &str) -> (&str, usize) {
    let Some(open) = line.rfind(" (") else {
        return (line, 1);
    };
    let tail = &line[open + 2..];
    let count = tail
        .split_once(&format!(" {LIKE_THIS}"))
        .filter(|(_, rest)| *rest == ")" || rest.starts_with(", the last at "))
        .and_then(|(n, _)| n.parse::<usize>().ok())
        .filter(|n| *n > 1 && line.ends_with(')'));
    match count {
        Some(n) => (&line[..open], n),
        None => (line, 1),
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
    if is_timestamp(s) && b[19] == b'.' {
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
    fn alike_items_are_one_line_with_their_count() {
        let line = |text: &str, ts: &str| json!({"stream": "stdout", "text": text, "ts": ts});
        let output = json!({"lines": [
            line("ERROR stripe 429 (attempt 1) run 9120", "2026-11-23T11:02:00.41Z"),
            line("ERROR stripe 429 (attempt 2) run 9121", "2026-11-23T11:03:07.41Z"),
            line("ERROR stripe 429 (attempt 1) run 9122", "2026-11-23T11:04:14.41Z"),
            line("ERROR stripe 500 (attempt 1) run 9123", "2026-11-23T11:05:21.41Z"),
            line("ERROR stripe 429 (attempt 1) run 91240", "2026-11-23T11:06:28.41Z"),
        ]});
        let shown = beyond("", &output, ALL);
        // Runs of 4 or more digits in prose are ids; a status code or an attempt tells lines
        // apart.
        assert_eq!(
            shown,
            vec![
                "lines: 5",
                "  - stream=stdout, text=ERROR stripe 429 (attempt 1) run 9120, ts=2026-11-23T11:02:00Z (3 like this, the last at 2026-11-23T11:06:28Z)",
                "  - stream=stdout, text=ERROR stripe 429 (attempt 2) run 9121, ts=2026-11-23T11:03:07Z",
                "  - stream=stdout, text=ERROR stripe 500 (attempt 1) run 9123, ts=2026-11-23T11:05:21Z",
            ]
        );
        let counts: Vec<usize> = shown[1..].iter().map(|l| item_count(l).1).collect();
        assert_eq!(counts, [3, 1, 1]);
        assert!(item_count(&shown[1]).0.ends_with("ts=2026-11-23T11:02:00Z"));
        // A screenful counts what it leaves out in items, not in lines.
        let people = Budget {
            lines: None,
            items: 1,
        };
        assert_eq!(beyond("", &output, people)[2], "  … 2 more");
        // Items named by one-word ids are told apart by them: each backup stays on its own.
        let backups = json!({"backups": [
            {"backup": "rentguy-20261123T020000000Z", "kind": "schema"},
            {"backup": "rentguy-20261122T020000000Z", "kind": "schema"},
        ]});
        assert_eq!(beyond("", &backups, ALL).len(), 3);
        // Without times, only the count; data that merely ends like a count is one item.
        let plain = json!({"lines": [{"text": "x"}, {"text": "x"}]});
        assert_eq!(beyond("", &plain, ALL)[1], "  - text=x (2 like this)");
        assert_eq!(item_count("  - text=retry (3 like this) later").1, 1);
        assert_eq!(item_count("  - text=retried (1 like this)").1, 1);
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
