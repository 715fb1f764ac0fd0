//! A number asked for relative to the current one: "double its memory", "halve the cpu of
//! psra", "double it" after reading a service's metrics. The person gives no number, so the
//! model has none to copy and a small model leaves the argument out. The current value is in
//! the tool results the agent read (a limit in a summary or a fact line); this reads it there
//! and scales it, so the call carries the figure the person meant.

use serde_json::Value;

use crate::plan::{PlanRequest, ToolDef, Turn, UntrustedSource};
use crate::shape::Shape;

/// The factor the person's words ask for, if any. Not in the phrases where these words
/// scale nothing: "double-check", "restarted twice", "half an hour".
pub(crate) fn factor(words: &[String]) -> Option<f64> {
    words.iter().enumerate().find_map(|(i, w)| {
        let next = words.get(i + 1).map_or("", String::as_str);
        match w.as_str() {
            "double" if !next.starts_with("check") => Some(2.0),
            // "twice the memory", "twice as much"; "restarted twice" counts times.
            "twice" if matches!(next, "the" | "as" | "its" | "their") => Some(2.0),
            "triple" => Some(3.0),
            "quadruple" => Some(4.0),
            "halve" => Some(0.5),
            "half"
                if !matches!(
                    next,
                    "a" | "an" | "past" | "hour" | "day" | "minute" | "week"
                ) =>
            {
                Some(0.5)
            }
            _ => None,
        }
    })
}

/// The first three letters of an argument's name, which a word that names it starts with:
/// "mem" for `memory_mb`, "cpu" for `cpus`.
fn stem(key: &str) -> &str {
    key.get(..3).unwrap_or(key)
}

/// The numeric arguments of `tool` that `words` name, each with whether it takes an
/// integer.
fn named_numeric_keys(tool: &ToolDef, words: &[String]) -> Vec<(String, bool)> {
    let Shape::Object(props) = Shape::of(&tool.parameters) else {
        return Vec::new();
    };
    props
        .into_iter()
        .filter_map(|p| match p.shape {
            Shape::Integer => Some((p.name, true)),
            Shape::Number => Some((p.name, false)),
            _ => None,
        })
        .filter(|(key, _)| key.len() >= 3 && words.iter().any(|w| w.starts_with(stem(key))))
        .collect()
}

/// The argument and value the person's newest words ask for by scaling a current value,
/// when the data the agent read holds that value. The argument is the one the newest words
/// name, or for "double it" the one the person's earlier words named.
pub fn asked(req: &PlanRequest, tool: &ToolDef) -> Option<(String, Value)> {
    let newest = crate::answer::words(req.latest_user_text());
    let factor = factor(&newest)?;
    let user_turns = req.turns.iter().rev().filter_map(|t| match t {
        Turn::User { text } => Some(crate::answer::words(text)),
        _ => None,
    });
    let keys = user_turns
        .map(|words| named_numeric_keys(tool, &words))
        .find(|keys| !keys.is_empty())?;
    let [(key, integer)] = keys.as_slice() else {
        return None;
    };
    let current = req.turns.iter().rev().find_map(|t| match t {
        Turn::Untrusted {
            source: UntrustedSource::ToolResult,
            content,
            ..
        } => current_limit(content, key),
        _ => None,
    })?;
    let schema = tool.parameters.pointer(&format!("/properties/{key}"))?;
    let wanted = current * factor;
    let in_range = schema
        .get("minimum")
        .and_then(Value::as_f64)
        .is_none_or(|min| wanted >= min)
        && schema
            .get("maximum")
            .and_then(Value::as_f64)
            .is_none_or(|max| wanted <= max);
    if !in_range {
        return None;
    }
    let value = if *integer {
        Value::from(wanted.round() as u64)
    } else {
        serde_json::Number::from_f64(wanted).map(Value::Number)?
    };
    Some((key.to_string(), value))
}

/// A piece of a result line: a word (letters, digits after letters, `_`), a number, or `/`.
#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Number(f64),
    Slash,
}

fn tokens(clause: &str) -> Vec<Token> {
    // The length of the run at the start of `s` whose characters are `part`.
    let run = |s: &str, part: fn(char) -> bool| s.find(|c: char| !part(c)).unwrap_or(s.len());
    let mut out = Vec::new();
    let mut rest = clause;
    while let Some(c) = rest.chars().next() {
        let end = if c.is_ascii_digit() {
            let end = run(rest, |d| d.is_ascii_digit() || d == '.');
            if let Ok(n) = rest[..end].trim_end_matches('.').parse() {
                out.push(Token::Number(n));
            }
            end
        } else if c.is_alphabetic() || c == '_' {
            let end = run(rest, |d| d.is_alphanumeric() || d == '_');
            out.push(Token::Word(rest[..end].to_lowercase()));
            end
        } else {
            if c == '/' {
                out.push(Token::Slash);
            }
            c.len_utf8()
        };
        rest = &rest[end..];
    }
    out
}

/// The current limit of `key` that a tool result states, in `key`'s unit. A limit is a
/// number after a word holding "limit" (`memory.limit_bytes: 1073741824`, "of limit 0.5
/// cores", "limits memory 512 MiB, cpus 1"), or after `/` ("memory 301 / 512 MiB"), in a
/// clause that names the key.
pub(crate) fn current_limit(content: &str, key: &str) -> Option<f64> {
    figures(content, key).find(|f| f.limit).map(|f| f.value)
}

/// How much of `key` a tool result says is in use, in `key`'s unit: a number in a clause
/// that names the key, before anything marks a limit ("memory 301 / 512 MiB", "398 pids").
pub(crate) fn current_use(content: &str, key: &str) -> Option<f64> {
    figures(content, key).find(|f| !f.limit).map(|f| f.value)
}

/// A figure of a tool result for one quantity, in its argument's unit.
struct Figure {
    value: f64,
    limit: bool,
}

/// The figures of `key` in `content`, in order: per clause that names the key, the first
/// number in use and the first limit.
fn figures<'a>(content: &'a str, key: &'a str) -> impl Iterator<Item = Figure> + 'a {
    content
        .lines()
        .flat_map(|line| line.split(';'))
        .flat_map(move |part| {
            // "limits memory 1024 MiB, cpus 1, pids 200": the clauses after one that opens
            // with "limits" are limits too.
            let mut in_list_of_limits = false;
            part.split(',')
                .flat_map(|clause| {
                    let toks = tokens(clause);
                    let opens_list =
                        matches!(toks.first(), Some(Token::Word(w)) if w.starts_with("limit"));
                    in_list_of_limits |= opens_list;
                    clause_figures(&toks, key, in_list_of_limits)
                })
                .collect::<Vec<_>>()
        })
}

/// The first figure in use and the first limit of one clause's tokens, when the clause
/// names `key`; `limits` when the clause is in a list of limits. The figure in use is the
/// first number after the word naming the key ("memory 301 / 512", "CPU 22.7%",
/// `pids.current: 112`), or the one just before it ("112 pids"), never a limit.
fn clause_figures(toks: &[Token], key: &str, limits: bool) -> Vec<Figure> {
    let names_key = |t: &Token| matches!(t, Token::Word(w) if w.starts_with(stem(key)));
    let Some(key_at) = toks.iter().position(names_key) else {
        return Vec::new();
    };
    let marks_limit =
        |t: &Token| matches!(t, Token::Slash) || matches!(t, Token::Word(w) if w.contains("limit"));
    let bytes = toks.iter().any(|t| {
        matches!(t, Token::Word(w) if w.contains("bytes") && (w.contains("limit") || names_key(t)))
    });
    // A number at `i`, with the word after it as its unit.
    let number_at = |i: usize| match toks.get(i) {
        Some(Token::Number(n)) => {
            let unit = match toks.get(i + 1) {
                Some(Token::Word(u)) => u.as_str(),
                _ => "",
            };
            Some(in_unit_of(key, *n, unit, bytes))
        }
        _ => None,
    };
    let in_use = (!limits && !toks[..key_at].iter().any(marks_limit))
        .then(|| {
            (key_at + 1..toks.len())
                .take_while(|&i| !marks_limit(&toks[i]))
                .find_map(number_at)
                .or_else(|| key_at.checked_sub(1).and_then(number_at))
        })
        .flatten();
    let limit = (0..toks.len())
        .skip_while(|&i| !limits && !toks[..=i].iter().any(marks_limit))
        .find_map(number_at);
    [(in_use, false), (limit, true)]
        .into_iter()
        .filter_map(|(value, limit)| {
            Some(Figure {
                value: value?,
                limit,
            })
        })
        .collect()
}

/// `n`, written with `unit` (or as bytes), in the unit of `key`: MiB for a `_mb` key.
fn in_unit_of(key: &str, n: f64, unit: &str, bytes: bool) -> f64 {
    if !key.ends_with("_mb") {
        return n;
    }
    match unit {
        _ if bytes => n / 1_048_576.0,
        "gib" | "gb" | "g" => n * 1024.0,
        "b" | "bytes" => n / 1_048_576.0,
        _ => n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set_limits() -> ToolDef {
        ToolDef {
            name: "service_set_limits".into(),
            description: String::new(),
            parameters: json!({"type": "object", "properties": {
                "service": {"type": "string"},
                "memory_mb": {"type": ["integer", "null"], "minimum": 16, "maximum": 65536},
                "cpus": {"type": ["number", "null"], "minimum": 0.01, "maximum": 64.0},
                "pids": {"type": ["integer", "null"], "minimum": 8, "maximum": 65536},
            }, "required": ["service"]}),
            effect: None,
        }
    }

    fn req(turns: Vec<Turn>) -> PlanRequest {
        PlanRequest {
            turns,
            ..PlanRequest::default()
        }
    }

    fn user(t: &str) -> Turn {
        Turn::User { text: t.into() }
    }

    fn result(summary: &str, output: Value) -> Turn {
        Turn::tool_result("service_metrics", summary, &output)
    }

    #[test]
    fn a_limit_is_read_from_summaries_and_fact_lines_in_the_arguments_unit() {
        let metrics = "mq-1 (mq-1-r2) over 1.0s: CPU 22.7%, memory 985.55 / 1024 MiB, 112 pids";
        assert_eq!(current_limit(metrics, "memory_mb"), Some(1024.0));
        assert_eq!(
            current_limit(metrics, "cpus"),
            None,
            "22.7% is a use, not a limit"
        );
        let status =
            "billing: running (healthy), release r6; limits memory 2 GiB, cpus 0.5, pids 200";
        assert_eq!(current_limit(status, "memory_mb"), Some(2048.0));
        assert_eq!(current_limit(status, "cpus"), Some(0.5));
        assert_eq!(current_limit(status, "pids"), Some(200.0));
        let facts = "summary\npids.current: 112\npids.limit: 400\nmemory.limit_bytes: 1073741824";
        assert_eq!(current_limit(facts, "pids"), Some(400.0));
        assert_eq!(current_limit(facts, "memory_mb"), Some(1024.0));
        assert_eq!(
            current_limit("psra: cpu 99.2% of limit 0.5 cores", "cpus"),
            Some(0.5)
        );
    }

    #[test]
    fn what_is_in_use_is_read_apart_from_its_limit() {
        let metrics = "mq-1 (mq-1-r2) over 1.0s: CPU 22.7%, memory 985.55 / 1024 MiB, 112 pids";
        assert_eq!(current_use(metrics, "memory_mb"), Some(985.55));
        assert_eq!(current_use(metrics, "pids"), Some(112.0));
        assert_eq!(current_use(metrics, "cpus"), Some(22.7));
        // A list of limits states no use, and a fact line names what it holds.
        let status = "billing: running (healthy); limits memory 2 GiB, cpus 0.5, pids 200";
        assert_eq!(current_use(status, "memory_mb"), None);
        assert_eq!(current_use(status, "pids"), None);
        let facts = "summary\npids.limit: 400\npids.current: 112";
        assert_eq!(current_use(facts, "pids"), Some(112.0));
        assert_eq!(current_limit(facts, "pids"), Some(400.0));
    }

    #[test]
    fn double_it_scales_the_quantity_the_person_named_earlier() {
        let read = result(
            "mq-1 (mq-1-r2) over 1.0s: CPU 22.7%, memory 985.55 / 1024 MiB, 112 pids",
            json!({"pids": {"current": 112, "limit": 400}}),
        );
        let r = req(vec![user("mq-1 mem"), read.clone(), user("double it")]);
        assert_eq!(
            asked(&r, &set_limits()),
            Some(("memory_mb".to_string(), json!(2048)))
        );
        let r = req(vec![
            user("mq-1 stats"),
            read.clone(),
            user("halve its pids"),
        ]);
        assert_eq!(
            asked(&r, &set_limits()),
            Some(("pids".to_string(), json!(200)))
        );
    }

    #[test]
    fn nothing_is_scaled_without_a_factor_a_named_quantity_or_a_current_value() {
        let read = result("psra: cpu 99.2% of limit 0.5 cores", json!({}));
        let tool = set_limits();
        let none = |turns| asked(&req(turns), &tool);
        assert_eq!(none(vec![read.clone(), user("raise its cpu")]), None);
        // Words that scale nothing in these phrases.
        for text in [
            "double-check its cpu",
            "its cpu restarted twice, why",
            "its cpu over the last half hour",
        ] {
            let turns = vec![user("why is psra slow"), read.clone(), user(text)];
            assert_eq!(none(turns), None, "{text}");
        }
        assert_eq!(none(vec![read.clone(), user("double it")]), None);
        assert_eq!(none(vec![user("double psra's cpu")]), None);
        assert_eq!(
            none(vec![user("why is psra slow"), read, user("double its cpu")]),
            Some(("cpus".to_string(), json!(1.0)))
        );
        // Text the person typed is no tool result, so no current value is read from it.
        assert_eq!(
            none(vec![
                user("psra: cpu 99% of limit 0.5 cores"),
                user("double its cpu")
            ]),
            None
        );
    }

    #[test]
    fn a_scaled_value_outside_the_schemas_range_is_not_proposed() {
        let read = result("big: limits memory 40000 MiB", json!({}));
        let r = req(vec![read, user("double its memory")]);
        assert_eq!(asked(&r, &set_limits()), None);
    }
}
