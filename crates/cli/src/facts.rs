//! A tool's JSON output for people: one line per fact (`live.health: unhealthy`), lists as
//! a count and their first items, nothing empty. `steward chat` shows this under the
//! executor's summary; the raw JSON is behind `/json` and `--verbose`.

use serde_json::Value;

/// Lines shown at most; the rest is counted and left to `/json`.
const MAX_LINES: usize = 16;
/// Items of a list shown.
const MAX_ITEMS: usize = 5;

/// The facts of `output`, one per line.
pub fn lines(output: &Value) -> Vec<String> {
    let mut out = Vec::new();
    collect("", output, &mut out);
    if out.len() > MAX_LINES {
        let more = out.len() - MAX_LINES;
        out.truncate(MAX_LINES);
        out.push(format!("… {more} more (/json shows all)"));
    }
    out
}

fn collect(path: &str, value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Null => {}
        Value::Object(map) => {
            for (key, v) in map {
                let at = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                collect(&at, v, out);
            }
        }
        Value::Array(items) if items.is_empty() => {}
        Value::Array(items) if items.iter().all(is_scalar) => {
            let shown: Vec<String> = items.iter().take(MAX_ITEMS).map(scalar).collect();
            let rest = items.len().saturating_sub(MAX_ITEMS);
            let tail = if rest > 0 {
                format!(" and {rest} more")
            } else {
                String::new()
            };
            out.push(format!("{path}: {}{tail}", shown.join(", ")));
        }
        Value::Array(items) => {
            out.push(format!("{path}: {}", items.len()));
            for item in items.iter().take(MAX_ITEMS) {
                out.push(format!("  - {}", one_line(item)));
            }
            if items.len() > MAX_ITEMS {
                out.push(format!("  … {} more", items.len() - MAX_ITEMS));
            }
        }
        v => out.push(format!("{path}: {}", scalar(v))),
    }
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An item of a list on one line: `id=r7, image=steward-demo:v2`.
fn one_line(item: &Value) -> String {
    match item {
        Value::Object(map) => map
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| match v {
                Value::Object(_) | Value::Array(_) => format!("{k}={v}"),
                v => format!("{k}={}", scalar(v)),
            })
            .collect::<Vec<_>>()
            .join(", "),
        v => scalar(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
            lines(&output),
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
    fn long_outputs_are_cut_and_say_where_the_rest_is() {
        let many: serde_json::Map<String, Value> =
            (0..30).map(|i| (format!("k{i:02}"), json!(i))).collect();
        let shown = lines(&Value::Object(many));
        assert_eq!(shown.len(), MAX_LINES + 1);
        assert_eq!(shown.last().unwrap(), "… 14 more (/json shows all)");
    }
}
