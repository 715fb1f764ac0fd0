//! Drafting a trigger rule from plain words. The grammar is not ours to define: the caller
//! passes the draft's JSON Schema (built from the rulebook's model and the catalogue, in
//! `steward_policy::rules::draft`), and the planner fills it in as the arguments of one
//! call, under the same constrained decoding as any tool call. The prompt
//! (`prompts/rule_draft.txt`) replaces the planner's; it is the same for every request, so
//! its KV cache is reused like the planner's.

mod health_words;
mod trigger_words;

use serde_json::Value;

use crate::plan::{Backend, Inventory, PlanRequest, Proposal, ToolDef, Turn};
use crate::prompt::tool_lines;
use crate::Result;

/// The drafting prompt; `{tools}` and `{call_example}` are filled in.
pub const DRAFT_TEMPLATE: &str = include_str!("../../../prompts/rule_draft.txt");

/// What a drafting request is made of: the draft as one tool, and the prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct DraftSpec {
    pub tool: ToolDef,
    system: String,
    /// The tools a step may call.
    steps: Vec<ToolDef>,
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
            steps,
        }
    }

    /// The request for one instruction: only the draft is offered, so the model must fill
    /// it in (no plain answer, no other tool). Its ladder has at least as many steps as
    /// the instruction names changes ([`changes_named`]): a small model closes the list
    /// after the first step of "restart it, and if that does not help roll it back and
    /// page me". Its steps are the tools the words name and its trigger the one they
    /// speak of, when they name any ([`only_named_steps`], [`only_named_triggers`]).
    pub fn request(&self, text: &str) -> PlanRequest {
        let mut tool = self.tool.clone();
        let asked = changes_named(text, &self.steps);
        let named = crate::intent::tools_named(
            &health_words::without_health_conditions(text),
            &self.steps,
            crate::intent::tool_verbs(),
        );
        if let Some(trigger) = tool.parameters.pointer_mut("/properties/trigger") {
            only_named_triggers(trigger, &trigger_words::triggers_named(text));
        }
        if let Some(steps) = tool
            .parameters
            .pointer_mut("/properties/steps")
            .and_then(Value::as_object_mut)
        {
            let at_least = steps.get("minItems").and_then(Value::as_u64).unwrap_or(0);
            steps.insert("minItems".into(), Value::from(at_least.max(asked as u64)));
            if let Some(kinds) = steps
                .get_mut("items")
                .and_then(|i| i["oneOf"].as_array_mut())
            {
                only_named_steps(kinds, &named);
            }
        }
        PlanRequest {
            turns: vec![Turn::User {
                text: text.to_string(),
            }],
            tools: vec![tool],
            offer: Some(vec![self.tool.name.clone()]),
            system: Some(self.system.clone()),
            ..PlanRequest::default()
        }
    }

    /// The draft `backend` writes for `text`, scoped to its service
    /// ([`scope_to_the_named_service`]) among the platform's `inventory`.
    pub async fn draft(
        &self,
        backend: &dyn Backend,
        text: &str,
        inventory: &Inventory,
    ) -> Result<Proposal> {
        let mut proposal = backend.propose(&self.request(text)).await?;
        scope_to_the_named_service(text, inventory, &mut proposal.call.arguments);
        wait_for_health_as_said(
            &health_words::health_deadlines(text),
            &mut proposal.call.arguments,
        );
        Ok(proposal)
    }
}

/// How many tools that change something the words of `text` name ([`crate::intent::tools_named`]):
/// "restart it, then roll back and page me" names three. Reads are left out: "unless it is
/// healthy again" is a step's condition, not a step.
fn changes_named(text: &str, tools: &[ToolDef]) -> usize {
    crate::intent::tools_named(text, tools, crate::intent::tool_verbs())
        .iter()
        .filter(|name| {
            tools
                .iter()
                .any(|t| &t.name == *name && !t.changes_nothing())
        })
        .count()
}

/// Keeps only the step kinds whose tool `named` holds, when the words name any: "tell me
/// when any container gets oom killed" is a `notify`, not a look at the logs.
fn only_named_steps(kinds: &mut Vec<Value>, named: &[String]) {
    let is_named = |kind: &Value| {
        kind["properties"]["tool"]["const"]
            .as_str()
            .is_some_and(|t| named.iter().any(|n| n == t))
    };
    if kinds.iter().any(is_named) {
        kinds.retain(is_named);
    }
}

/// Keeps only the trigger sources, and the monitor's kinds, that the words name when they
/// name any ([`trigger_words`]): "check the status of psra every hour" is a schedule.
fn only_named_triggers(trigger: &mut Value, named: &trigger_words::TriggersNamed) {
    fn keep_named(values: &mut Vec<Value>, named: &[&str], key: impl Fn(&Value) -> Option<&str>) {
        let is_named = |v: &Value| key(v).is_some_and(|k| named.contains(&k));
        if values.iter().any(is_named) {
            values.retain(is_named);
        }
    }
    let Some(variants) = trigger.get_mut("oneOf").and_then(Value::as_array_mut) else {
        return;
    };
    keep_named(variants, &named.sources, |v| {
        v["properties"]["source"]["const"].as_str()
    });
    for variant in variants {
        if variant["properties"]["source"]["const"] != "monitor" {
            continue;
        }
        if let Some(kinds) = variant
            .pointer_mut("/properties/kind/enum")
            .and_then(Value::as_array_mut)
        {
            keep_named(kinds, &named.monitor_kinds, Value::as_str);
        }
    }
}

/// Gives the first steps of a ladder that waits for nothing the health conditions the
/// words set between its steps, in order ([`health_words`]): "restart it, and if it is
/// not healthy within a minute notify me" is a restart `until = "healthy within 1m"`. The
/// last step has nothing after it to go on to. A ladder with any `until` of the model's is
/// left as drafted.
fn wait_for_health_as_said(deadlines: &[String], draft: &mut Value) {
    let Some(steps) = draft.get_mut("steps").and_then(Value::as_array_mut) else {
        return;
    };
    if steps.iter().any(|s| s.get("until").is_some()) {
        return;
    }
    let before_last = steps.len().saturating_sub(1);
    for (step, deadline) in steps.iter_mut().take(before_last).zip(deadlines) {
        if let Some(step) = step.as_object_mut() {
            step.insert(
                "until".into(),
                Value::String(format!("healthy within {deadline}")),
            );
        }
    }
}

/// Gives an alert or monitor trigger without a `service` label the one service its steps
/// act on (or, when no step names one, the one item of `inventory` the instruction names as
/// grounding reads names: "page me if langgraph goes unhealthy"), unless the instruction asks for any service
/// ([`about_any_service`]). "restart psra when it is unhealthy" drafted with bare labels
/// would restart psra whenever *any* container is unhealthy; a small model often leaves the
/// labels empty, and the steps and words say what it meant. Narrowing is the safe
/// direction: a rule that fires less never acts where it was not asked to.
fn scope_to_the_named_service(text: &str, inventory: &Inventory, draft: &mut Value) {
    if about_any_service(text) {
        return;
    }
    let mut acted_on: Vec<&str> = draft["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|step| step["args"]["service"].as_str())
        .collect();
    acted_on.dedup();
    let service = match acted_on.as_slice() {
        [] => crate::ground::only_item_named_in(text, inventory),
        // `{service}` is the event's own: no one service.
        [one] if !one.contains('{') => Some(one.to_string()),
        _ => None,
    };
    let Some(service) = service else {
        return;
    };
    let trigger = &mut draft["trigger"];
    if !matches!(trigger["source"].as_str(), Some("alert" | "monitor")) {
        return;
    }
    let Some(trigger) = trigger.as_object_mut() else {
        return;
    };
    let labels = trigger
        .entry("labels")
        .or_insert_with(|| Value::Object(Default::default()));
    if let Some(labels) = labels.as_object_mut() {
        labels
            .entry("service")
            .or_insert_with(|| Value::String(service));
    }
}

/// Whether an instruction is about whichever service the event names: "any" or
/// "whichever", or "every", "all" or "each" before a service, container or app ("every
/// night" is about time).
fn about_any_service(text: &str) -> bool {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let thing = |w: &str| {
        ["service", "container", "app"]
            .iter()
            .any(|t| w.starts_with(t))
    };
    words.iter().enumerate().any(|(i, w)| {
        matches!(*w, "any" | "anything" | "whichever")
            || (matches!(*w, "every" | "all" | "each")
                && words.get(i + 1).is_some_and(|next| thing(next)))
    })
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

    #[test]
    fn a_step_is_one_of_the_tools_the_instruction_names_when_it_names_any() {
        let tools = crate::eval::ToolSet::catalogue().defs;
        let kind = |tool: &str| json!({"type": "object", "properties": {"tool": {"const": tool}}});
        let schema = json!({"type": "object", "properties": {"steps": {"type": "array",
            "items": {"oneOf": [kind("service_logs"), kind("notify"), kind("service_restart")]}}}});
        let spec = DraftSpec::new("rule", schema, &tools);
        let kinds = |text: &str| -> Vec<String> {
            spec.request(text).tools[0].parameters["properties"]["steps"]["items"]["oneOf"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| {
                    k["properties"]["tool"]["const"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect()
        };
        assert_eq!(
            kinds("tell me when any container gets oom killed"),
            ["notify"]
        );
        assert_eq!(
            kinds("if psra is unhealthy restart it and if it is not healthy within a minute notify me"),
            ["notify", "service_restart"]
        );
        // Words that name no step tool leave every kind on offer.
        assert_eq!(
            kinds("when the DiskFull alert fires do what is needed"),
            ["service_logs", "notify", "service_restart"]
        );
    }

    #[test]
    fn the_ladder_has_a_step_for_each_change_the_instruction_names() {
        let tools = crate::eval::ToolSet::catalogue().defs;
        let schema = json!({"type": "object", "properties": {
            "steps": {"type": "array", "minItems": 1, "items": {"type": "object"}}}});
        let spec = DraftSpec::new("rule", schema, &tools);
        let at_least = |text: &str| {
            spec.request(text).tools[0].parameters["properties"]["steps"]["minItems"].clone()
        };
        let ladder = "if psra stays unhealthy for 2 minutes restart it, and if that does not help roll it back and page me";
        assert_eq!(at_least(ladder), 3);
        assert_eq!(
            at_least("if claude-chat is unhealthy restart it and if it is not healthy within a minute notify me"),
            2
        );
        assert_eq!(
            at_least("psra crashed? start it, and if it isn't healthy in 90 seconds page someone"),
            2,
            "a step's condition is no step"
        );
        assert_eq!(
            at_least("on HighErrorRate for rentguy roll rentguy back to the previous release and tell the team"),
            2
        );
        // A change spoken of as the event is no step; the schema's own minimum stays.
        assert_eq!(
            at_least("if n8n is stuck in a restart loop, roll it back to the previous release"),
            1
        );
        assert_eq!(at_least("check the status of psra every hour"), 1);
        assert_eq!(
            at_least("back up the acme-research database every night at 2am"),
            1
        );
    }

    #[test]
    fn the_trigger_is_the_one_the_instruction_speaks_of_when_it_speaks_of_one() {
        let tools = crate::eval::ToolSet::catalogue().defs;
        let variant = |source: &str, key: &str, value: Value| json!({"type": "object", "properties": {"source": {"const": source}, key: value}});
        let kinds = json!({"type": "string", "enum": ["unhealthy", "died", "oom", "restart_loop"]});
        let schema = json!({"type": "object", "properties": {"trigger": {"oneOf": [
            variant("alert", "name", json!({"type": "string"})),
            variant("monitor", "kind", kinds),
            variant("hook", "name", json!({"type": "string"})),
            variant("schedule", "cron", json!({"type": "string"})),
        ]}}});
        let spec = DraftSpec::new("rule", schema, &tools);
        let offered = |text: &str| -> Vec<String> {
            let req = spec.request(text);
            req.tools[0].parameters["properties"]["trigger"]["oneOf"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|v| {
                    let source = v["properties"]["source"]["const"].as_str().unwrap();
                    match v["properties"]["kind"]["enum"].as_array() {
                        Some(kinds) => kinds
                            .iter()
                            .map(|k| format!("{source}:{}", k.as_str().unwrap()))
                            .collect(),
                        None => vec![source.to_string()],
                    }
                })
                .collect()
        };
        assert_eq!(offered("check the status of psra every hour"), ["schedule"]);
        assert_eq!(
            offered("psra crashed? start it, and if it isn't healthy in 90 seconds page someone"),
            ["monitor:died"]
        );
        assert_eq!(offered("destroy every tenant when CPU is high"), ["alert"]);
        assert_eq!(
            offered("do what is needed for psra"),
            [
                "alert",
                "monitor:unhealthy",
                "monitor:died",
                "monitor:oom",
                "monitor:restart_loop",
                "hook",
                "schedule"
            ],
            "words that name no trigger leave every one on offer"
        );
        // A schema without a trigger is left as it is.
        let bare = DraftSpec::new("rule", json!({"type": "object"}), &tools);
        assert_eq!(
            bare.request("restart psra every hour").tools[0].parameters,
            json!({"type": "object"})
        );
    }

    #[test]
    fn a_health_condition_the_words_set_between_steps_is_the_step_befores_until() {
        let ladder = |steps: Value| json!({"trigger": {"source": "monitor", "kind": "died"}, "steps": steps});
        let restart = json!({"tool": "service_restart", "args": {"service": "psra"}});
        let notify = json!({"tool": "notify", "args": {"message": "psra is down"}});
        let rollback =
            json!({"tool": "service_rollback", "args": {"service": "psra", "to": "previous"}});
        let untils = |draft: &Value| -> Vec<Value> {
            draft["steps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["until"].clone())
                .collect()
        };

        let mut draft = ladder(json!([restart, notify]));
        wait_for_health_as_said(&["1m".to_string()], &mut draft);
        assert_eq!(untils(&draft), [json!("healthy within 1m"), Value::Null]);

        let mut draft = ladder(json!([restart, rollback, notify]));
        wait_for_health_as_said(&["60s".to_string(), "2m".to_string()], &mut draft);
        assert_eq!(
            untils(&draft),
            [
                json!("healthy within 60s"),
                json!("healthy within 2m"),
                Value::Null
            ]
        );

        // One step has nothing to go on to; a ladder with an until of its own stays.
        let mut draft = ladder(json!([restart]));
        wait_for_health_as_said(&["1m".to_string()], &mut draft);
        assert_eq!(untils(&draft), [Value::Null]);
        let mut own = restart.clone();
        own["until"] = json!("healthy within 30s");
        let mut draft = ladder(json!([own, notify]));
        wait_for_health_as_said(&["1m".to_string()], &mut draft);
        assert_eq!(untils(&draft), [json!("healthy within 30s"), Value::Null]);
    }

    #[test]
    fn a_trigger_without_a_service_label_watches_the_one_service_its_steps_act_on() {
        let drafted = |labels: Value, steps: Value| {
            json!({"trigger": {"source": "monitor", "kind": "unhealthy", "labels": labels},
                   "for": "0s", "steps": steps})
        };
        let restart = |s: &str| json!({"tool": "service_restart", "args": {"service": s}});
        let page = json!({"tool": "notify", "args": {"message": "psra is down"}});
        let scoped = |text: &str, mut d: Value| {
            scope_to_the_named_service(text, &Inventory::default(), &mut d);
            d["trigger"]["labels"].clone()
        };
        let psra = json!({"service": "psra"});
        let text = "restart psra when it is unhealthy, then page me";
        assert_eq!(
            scoped(text, drafted(json!({}), json!([restart("psra"), page]))),
            psra
        );
        // No labels at all, or an alert: the same.
        let mut alert = json!({"trigger": {"source": "alert", "name": "ServiceDown"},
                               "steps": [restart("psra")]});
        scope_to_the_named_service(text, &Inventory::default(), &mut alert);
        assert_eq!(alert["trigger"]["labels"], psra);
        // A label the model gave stays; an event's own service is no one service; nor are two.
        let other = json!({"service": "wpcs"});
        assert_eq!(
            scoped(text, drafted(other.clone(), json!([restart("psra")]))),
            other
        );
        let placeholder = drafted(json!({}), json!([restart("{service}")]));
        assert_eq!(scoped(text, placeholder), json!({}));
        let two = drafted(json!({}), json!([restart("psra"), restart("wpcs")]));
        assert_eq!(scoped(text, two), json!({}));
        // "any" asks for every service, whatever the steps name.
        let any = drafted(json!({}), json!([restart("psra")]));
        assert_eq!(
            scoped("if any service is unhealthy, restart psra", any),
            json!({})
        );
        let every = drafted(json!({}), json!([restart("psra")]));
        assert_eq!(
            scoped("when all services are unhealthy, restart psra", every),
            json!({})
        );
        let every_time = drafted(json!({}), json!([restart("psra")]));
        assert_eq!(scoped("restart psra every time it dies", every_time), psra);
        // Steps that name no service: the one inventory item the words name, as grounding
        // reads names (a misspelling too); two, or a name inside another, scope nothing.
        let inventory = |names: &[&str]| {
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            Inventory::of_platform_services(&names)
        };
        let platform = inventory(&["langgraph", "psra"]);
        let notify_only = || drafted(json!({}), json!([page]));
        let scoped_by = |text: &str, inventory: &Inventory| {
            let mut d = notify_only();
            scope_to_the_named_service(text, inventory, &mut d);
            d["trigger"]["labels"].clone()
        };
        let langgraph = json!({"service": "langgraph"});
        assert_eq!(
            scoped_by("page me if langgraph goes unhealthy", &platform),
            langgraph
        );
        assert_eq!(
            scoped_by("page me if langgrpah goes unhealthy", &platform),
            langgraph
        );
        assert_eq!(
            scoped_by("page me if langgraph or psra is down", &platform),
            json!({})
        );
        assert_eq!(
            scoped_by(
                "page me if langgraph goes unhealthy",
                &inventory(&["langgraph", "graph"])
            ),
            json!({})
        );
        // A schedule has no labels to narrow.
        let mut nightly = json!({"trigger": {"source": "schedule", "cron": "0 3 * * *"},
                                 "steps": [restart("psra")]});
        scope_to_the_named_service(
            "restart psra every night",
            &Inventory::default(),
            &mut nightly,
        );
        assert!(nightly["trigger"].get("labels").is_none());
    }
}
