//! Drafting a trigger rule from plain words. The grammar is not ours to define: the caller
//! passes the draft's JSON Schema (built from the rulebook's model and the catalogue, in
//! `steward_policy::rules::draft`), and the planner fills it in as the arguments of one
//! call, under the same constrained decoding as any tool call. The prompt
//! (`prompts/rule_draft.txt`) replaces the planner's; it is the same for every request, so
//! its KV cache is reused like the planner's.

use serde_json::Value;

use crate::plan::{PlanRequest, ToolDef, Turn};
use crate::prompt::tool_lines;

/// The drafting prompt; `{tools}` and `{call_example}` are filled in.
pub const DRAFT_TEMPLATE: &str = include_str!("../../../prompts/rule_draft.txt");

/// What a drafting request is made of: the draft as one tool, and the prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct DraftSpec {
    pub tool: ToolDef,
    system: String,
}

impl DraftSpec {
    /// `name` and `schema` are the draft's "tool"; `tools` are the ones a step may call,
    /// listed in the prompt one line each (`respond` is left out: a rule answers nobody).
    pub fn new(name: &str, schema: Value, tools: &[ToolDef]) -> DraftSpec {
        let steps: Vec<ToolDef> = tools
            .iter()
            .filter(|t| t.name != crate::decode::RESPOND)
            .cloned()
            .collect();
        DraftSpec {
            tool: ToolDef {
                name: name.to_string(),
                description: "A trigger rule: what starts it and the ladder of steps.".into(),
                parameters: schema,
                effect: None,
            },
            system: DRAFT_TEMPLATE.replace("{tools}", &tool_lines(&steps)),
        }
    }

    /// The request for one instruction: only the draft is offered, so the model must fill
    /// it in (no plain answer, no other tool).
    pub fn request(&self, text: &str) -> PlanRequest {
        PlanRequest {
            turns: vec![Turn::User {
                text: text.to_string(),
            }],
            tools: vec![self.tool.clone()],
            offer: Some(vec![self.tool.name.clone()]),
            system: Some(self.system.clone()),
            ..PlanRequest::default()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::prompt::ChatFormat;
    use serde_json::json;

    #[test]
    fn the_request_offers_only_the_draft_under_its_own_prompt() {
        let tools = vec![
            ToolDef {
                name: "service_restart".into(),
                description: "Restart a service.".into(),
                parameters: json!({"type": "object", "properties": {"service": {"type": "string"}}, "required": ["service"]}),
                effect: None,
            },
            ToolDef {
                name: "respond".into(),
                description: "Answer.".into(),
                parameters: json!({"type": "object"}),
                effect: None,
            },
        ];
        let spec = DraftSpec::new("rule", json!({"type": "object"}), &tools);
        let req = spec.request("restart psra when it dies");
        assert_eq!(req.offered().len(), 1);
        assert_eq!(req.offered()[0].name, "rule");
        let prompt = ChatFormat::default().render(&req);
        assert!(prompt
            .prefix
            .contains("- service_restart(service): Restart a service."));
        assert!(!prompt.prefix.contains("- respond"));
        assert!(
            prompt.prefix.contains("{service}"),
            "placeholders stay as written"
        );
        assert!(prompt.prefix.contains("<tool_call>"));
        assert!(!prompt.prefix.contains("Inventory"));
        assert!(prompt.suffix.contains("restart psra when it dies"));
    }
}
