//! Example requests carried in policy files and checked at load time, so a policy whose
//! behaviour drifts from what its author wrote down refuses to load (the idea of codex-rs
//! execpolicy's `match` / `not_match`).
//!
//! Syntax, one example per line comment:
//!
//! ```text
//! // @example <decision> [by <id>[,<id>...]] <request JSON object>
//! ```
//!
//! `<decision>` is `allow`, `needs_approval` or `deny`; `by` lists policy ids that must be
//! among the ones that decided. The request holds `principal` and `tool` (required), `args`
//! (default `{}`), `origin` (default `"chat"`), `untrusted_text` (default `false`) and
//! `hour` (UTC, default 12). With `requester` (`kind:id`), the example is an answer to an
//! approval request instead: may `principal` approve the call `requester` proposed from
//! `origin`?

use std::fmt;

use serde::Deserialize;
use serde_json::Value;
use steward_protocol::{Decision, Origin};

/// The three verdicts, without their payload, for comparing expectations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionKind {
    Allow,
    NeedsApproval,
    Deny,
}

impl DecisionKind {
    pub fn of(d: &Decision) -> DecisionKind {
        match d {
            Decision::Allow { .. } => DecisionKind::Allow,
            Decision::NeedsApproval { .. } => DecisionKind::NeedsApproval,
            Decision::Deny { .. } => DecisionKind::Deny,
        }
    }

    fn parse(s: &str) -> Option<DecisionKind> {
        Some(match s {
            "allow" => DecisionKind::Allow,
            "needs_approval" => DecisionKind::NeedsApproval,
            "deny" => DecisionKind::Deny,
            _ => return None,
        })
    }
}

impl fmt::Display for DecisionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecisionKind::Allow => "allow",
            DecisionKind::NeedsApproval => "needs_approval",
            DecisionKind::Deny => "deny",
        })
    }
}

/// The request part of an example.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExampleRequest {
    pub principal: String,
    pub tool: String,
    #[serde(default = "empty_object")]
    pub args: Value,
    #[serde(default = "chat")]
    pub origin: Origin,
    #[serde(default)]
    pub untrusted_text: bool,
    #[serde(default = "noon")]
    pub hour: u8,
    /// Set for an approval example: who proposed the call `principal` answers.
    #[serde(default)]
    pub requester: Option<String>,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}
fn chat() -> Origin {
    Origin::Chat
}
fn noon() -> u8 {
    12
}

/// One parsed `@example` line.
#[derive(Debug, Clone)]
pub(crate) struct Example {
    pub line: usize,
    /// The line as written (after `@example`), quoted back in errors.
    pub text: String,
    pub expect: DecisionKind,
    pub by: Vec<String>,
    pub request: ExampleRequest,
}

impl Example {
    /// A human-readable form of the expectation, e.g. `deny by tenant-scope`.
    pub fn expected(&self) -> String {
        if self.by.is_empty() {
            self.expect.to_string()
        } else {
            format!("{} by {}", self.expect, self.by.join(","))
        }
    }

    /// `None` when `got` satisfies the example.
    pub fn check(&self, got: &Decision) -> Option<()> {
        let ok = DecisionKind::of(got) == self.expect
            && self
                .by
                .iter()
                .all(|id| got.policies().iter().any(|p| p == id));
        (!ok).then_some(())
    }
}

/// Finds the `@example` lines of one file. Errors are `(line, message)`.
pub(crate) fn parse_examples(src: &str) -> Result<Vec<Example>, (usize, String)> {
    let mut out = Vec::new();
    for (i, raw) in src.lines().enumerate() {
        let line = i + 1;
        let Some(comment) = raw.trim_start().strip_prefix("//") else {
            continue;
        };
        let Some(rest) = comment.trim_start().strip_prefix("@example") else {
            continue;
        };
        let text = rest.trim().to_string();
        let Some(brace) = text.find('{') else {
            return Err((line, "expected `<decision> [by <ids>] {json}`".into()));
        };
        let (head, json) = text.split_at(brace);
        let mut words = head.split_whitespace();
        let decision = words.next().unwrap_or("");
        let expect = DecisionKind::parse(decision).ok_or_else(|| {
            (
                line,
                format!("unknown decision {decision:?}; expected allow, needs_approval or deny"),
            )
        })?;
        let by = match (words.next(), words.next(), words.next()) {
            (None, _, _) => Vec::new(),
            (Some("by"), Some(ids), None) => ids
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            _ => {
                return Err((
                    line,
                    format!("expected `by id1,id2` after the decision, found {head:?}"),
                ))
            }
        };
        let request: ExampleRequest =
            serde_json::from_str(json).map_err(|e| (line, format!("request JSON: {e}")))?;
        out.push(Example {
            line,
            text,
            expect,
            by,
            request,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_decision_by_and_defaults() {
        let src = "permit(principal, action, resource);\n\
                   // @example needs_approval by a,b {\"principal\":\"operator:x\",\"tool\":\"respond\"}\n\
                   //   @example deny {\"principal\":\"webhook:n8n\",\"tool\":\"notify\",\"origin\":\"webhook\",\"hour\":3}\n";
        let ex = parse_examples(src).unwrap();
        assert_eq!(ex.len(), 2);
        assert_eq!(ex[0].line, 2);
        assert_eq!(ex[0].expect, DecisionKind::NeedsApproval);
        assert_eq!(ex[0].by, ["a", "b"]);
        assert_eq!(ex[0].request.origin, Origin::Chat);
        assert_eq!(ex[0].request.hour, 12);
        assert_eq!(ex[1].request.origin, Origin::Webhook);
        assert_eq!(ex[1].request.hour, 3);
    }

    #[test]
    fn malformed_examples_name_the_line() {
        for (src, needle) in [
            ("// @example maybe {}", "unknown decision"),
            ("// @example allow", "expected `<decision>"),
            ("// @example allow because x {}", "expected `by"),
            (
                "// @example allow {\"tool\":\"respond\"}",
                "missing field `principal`",
            ),
            (
                "// @example allow {\"principal\":\"operator:a\",\"tool\":\"x\",\"extra\":1}",
                "unknown field",
            ),
        ] {
            let (line, msg) = parse_examples(src).unwrap_err();
            assert_eq!(line, 1);
            assert!(msg.contains(needle), "{src}: {msg}");
        }
    }
}
