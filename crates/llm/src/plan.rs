//! What a planner backend is asked and what it answers. Backends only *propose*: the agent
//! validates, vets and executes (or not) whatever comes back.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Error, Result};

/// One tool the model may call this turn: the OpenAI/Anthropic function shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDef {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: Value,
    /// What calling it does, when known: catalogue tools have one, a foreign tool list may
    /// declare one. `None` counts as a change (see [`ToolDef::changes_nothing`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<steward_tools::Effect>,
}

impl ToolDef {
    /// Whether calling it only reads: its declared effect, else the catalogue's. A tool
    /// whose effect nobody declared is taken as a change, so a question never reaches it
    /// through [`crate::retrieving`]'s read-only offer unless its name starts with a verb
    /// that only looks (`get_`, `list_`, `search_`, ...).
    pub fn changes_nothing(&self) -> bool {
        use steward_tools::Effect;
        let effect = self
            .effect
            .or_else(|| steward_tools::find(&self.name).map(|s| s.effect));
        match effect {
            Some(e) => matches!(e, Effect::Read | Effect::None),
            None => reading_verb(&self.name),
        }
    }

    /// Whether calling it is known to change something: declared or catalogue effect
    /// `write` or `destructive`. A foreign tool nobody declared an effect for is not.
    pub fn known_to_change(&self) -> bool {
        use steward_tools::Effect;
        matches!(
            self.effect
                .or_else(|| steward_tools::find(&self.name).map(|s| s.effect)),
            Some(Effect::Write | Effect::Destructive)
        )
    }

    /// Whether calling it loses data or removes something: declared or catalogue effect
    /// `destructive`.
    pub fn is_destructive(&self) -> bool {
        self.effect
            .or_else(|| steward_tools::find(&self.name).map(|s| s.effect))
            == Some(steward_tools::Effect::Destructive)
    }
}

/// Verbs that open the names of tools that only look things up, in the function-calling
/// lists of other projects (`get_weather`, `calculate_area`, `findRestaurants`).
const READING_VERBS: [&str; 16] = [
    "get",
    "list",
    "search",
    "find",
    "fetch",
    "lookup",
    "look",
    "query",
    "read",
    "show",
    "check",
    "calculate",
    "calc",
    "compute",
    "convert",
    "count",
];

fn reading_verb(name: &str) -> bool {
    let mut chars = name.chars();
    let first: String = chars
        .next()
        .map(|c| c.to_ascii_lowercase())
        .into_iter()
        .chain(chars.take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
        .collect();
    READING_VERBS.contains(&first.as_str())
}

/// A service or tenant the platform runs, so the model can map descriptions to names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryItem {
    pub name: String,
    /// `platform` or `tenant`.
    pub kind: String,
    /// Free words that describe it ("Fresco instance of Acme Research").
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The image it runs ("ghcr.io/acme/fresco:3.0.2"), when known: its repository is the
    /// product, so "the fresco instance of acme" and "fresco 3.1.0" can be grounded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
}

/// The live inventory, as `steward plan --inventory FILE` reads it:
/// `{"services": [{"name": "rentguy", "kind": "platform", "description": "..."}]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    pub services: Vec<InventoryItem>,
}

impl Inventory {
    /// Platform services known by name only (the policy's list, when Docker is not read).
    pub fn of_platform_services(names: &[String]) -> Inventory {
        Inventory {
            services: names
                .iter()
                .map(|name| InventoryItem {
                    name: name.clone(),
                    kind: "platform".into(),
                    description: String::new(),
                    image: String::new(),
                })
                .collect(),
        }
    }
}

/// Where a piece of untrusted text came from; the prompt fences it as data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UntrustedSource {
    ToolResult,
    AlertAnnotation,
    WebhookBody,
}

/// An earlier step of this conversation, replayed to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Turn {
    /// What the person typed.
    User { text: String },
    /// A call the planner proposed earlier.
    Call { name: String, arguments: Value },
    /// Text that is data, never instructions: a tool's output, an alert, a webhook body.
    Untrusted {
        source: UntrustedSource,
        /// The tool whose output this is, or the alert/webhook name.
        label: String,
        content: String,
    },
}

/// Longest tool result fed back to the planner, in characters.
pub const MAX_RESULT_CHARS: usize = 1200;

impl Turn {
    /// A tool's result as the planner reads it: the executor's one-line summary, then the
    /// facts of its output the summary does not state, one per line ([`crate::facts`]), cut
    /// at [`MAX_RESULT_CHARS`]. The conversation feeds results back this way, and the evals'
    /// multi-turn cases (`{"role":"result",...}`) are rendered by this same function.
    pub fn tool_result(tool: &str, summary: &str, output: &Value) -> Turn {
        let facts = crate::facts::beyond(summary, output, crate::facts::FOR_PLANNER);
        let content = std::iter::once(summary.to_string())
            .chain(facts)
            .collect::<Vec<_>>()
            .join("\n");
        Turn::tool_text(tool, content)
    }

    /// A tool's failure as the planner reads it.
    pub fn tool_failure(tool: &str, message: &str) -> Turn {
        Turn::tool_text(tool, format!("failed: {message}"))
    }

    fn tool_text(tool: &str, content: String) -> Turn {
        let content = match content.char_indices().nth(MAX_RESULT_CHARS) {
            Some((cut, _)) => format!("{}…", &content[..cut]),
            None => content,
        };
        Turn::Untrusted {
            source: UntrustedSource::ToolResult,
            label: tool.to_string(),
            content,
        }
    }
}

/// Receives a plain-text answer piece by piece as the model writes it, so `steward chat`
/// can show it live. Only the local backend streams; a fallback backend's answer may differ
/// from what was streamed, and the final answer is always in the proposal.
#[derive(Clone)]
pub struct TextStream(pub std::sync::Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for TextStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TextStream")
    }
}

/// One planning request: the conversation so far (ending with the newest user text or tool
/// result), the tools, and the inventory.
#[derive(Debug, Clone, Default)]
pub struct PlanRequest {
    pub turns: Vec<Turn>,
    /// Every tool of the catalogue; local backends list them all in the cached prompt prefix.
    pub tools: Vec<ToolDef>,
    /// The tools offered this turn (retrieval's top-k plus `respond`), by name; `None`
    /// offers all of `tools`. A backend may only propose one of these.
    pub offer: Option<Vec<String>>,
    pub inventory: Inventory,
    /// Where a plain-text answer goes as it is written; `None` waits for the whole answer.
    pub stream: Option<TextStream>,
    /// A system prompt of its own, in place of the planner's (`prompts/system.txt`): a task
    /// that is not picking the next tool, such as drafting a rule ([`crate::draft`]).
    pub system: Option<String>,
    /// The day it is (UTC), for words that choose by day ("restore the one from
    /// yesterday"); `None` without a clock (a replayed case), and then such a choice is
    /// asked about, never guessed.
    pub today: Option<chrono::NaiveDate>,
}

/// Longest request text accepted, in characters.
pub const MAX_INPUT_CHARS: usize = 10_000;

impl PlanRequest {
    /// Refuses what no model should be given: no text, text over [`MAX_INPUT_CHARS`], or
    /// binary data.
    pub fn check_input(&self) -> Result<()> {
        let Some(text) = self.turns.iter().rev().find_map(|t| match t {
            Turn::User { text } => Some(text),
            _ => None,
        }) else {
            return Err(Error::Input(
                "nothing to plan: the request has no text".into(),
            ));
        };
        if text.trim().is_empty() {
            return Err(Error::Input("nothing to plan: the request is empty".into()));
        }
        let chars = text.chars().count();
        if chars > MAX_INPUT_CHARS {
            return Err(Error::Input(format!(
                "the request is {chars} characters long; the limit is {MAX_INPUT_CHARS}: shorten it \
                 or pass long text (logs) as a file to a tool instead"
            )));
        }
        let control = text
            .chars()
            .filter(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
            .count();
        if control > 0 || text.contains('\u{fffd}') {
            return Err(Error::Input(
                "the request contains binary data (control characters or invalid UTF-8); send text"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The text of every turn: the person's words, the arguments of calls made, and the
    /// data the agent read (where backup ids and other literals come from).
    pub fn turn_texts(&self) -> Vec<String> {
        self.turns
            .iter()
            .map(|t| match t {
                Turn::User { text } => text.clone(),
                Turn::Call { arguments, .. } => arguments.to_string(),
                Turn::Untrusted { content, .. } => content.clone(),
            })
            .collect()
    }

    /// The person's newest words: the last user turn, or "" when there is none.
    pub fn latest_user_text(&self) -> &str {
        self.turns
            .iter()
            .rev()
            .find_map(|t| match t {
                Turn::User { text } => Some(text.as_str()),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// The tools a backend may propose this turn, in catalogue order.
    pub fn offered(&self) -> Vec<&ToolDef> {
        match &self.offer {
            None => self.tools.iter().collect(),
            Some(names) => self
                .tools
                .iter()
                .filter(|t| names.contains(&t.name))
                .collect(),
        }
    }
}

/// A proposed call; `respond` carries the model's answer, question or refusal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProposedCall {
    pub name: String,
    pub arguments: Value,
}

/// What a backend proposes for the next step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Proposal {
    pub call: ProposedCall,
    /// Which backend produced it (`local:<model>` or `claude:<model>`).
    pub backend: String,
    /// Geometric-mean probability of the tokens the model chose freely (1.0 when the
    /// backend does not report one); low values route to the fallback.
    pub confidence: f32,
    /// The probability the model gave to this tool, over a plain answer and the other
    /// tools offered, whatever its arguments (1.0 when the backend does not report one).
    pub choice: f32,
    /// Prompt tokens decoded for this request (after prefix reuse) and tokens generated.
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    /// Forward passes of a local model, the prompt's tail included (0 for a remote one):
    /// with the prompt tokens, what the request cost on any machine.
    pub forward_passes: usize,
}

/// A planner backend: local llama.cpp or Claude.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + std::fmt::Debug {
    fn name(&self) -> String;
    async fn propose(&self, req: &PlanRequest) -> Result<Proposal>;

    /// Gets ready for the next request, which has the tools, inventory and turns of `req`
    /// and more words of the person after them, so its answer comes fast: a local model
    /// loads or decodes its prompt state (and saves it), then decodes the turns. Nothing by
    /// default.
    async fn warm(&self, _req: &PlanRequest) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn foreign(name: &str, effect: Option<steward_tools::Effect>) -> ToolDef {
        ToolDef {
            name: name.into(),
            description: String::new(),
            parameters: serde_json::json!({"type": "object"}),
            effect,
        }
    }

    #[test]
    fn what_a_tool_does_comes_from_its_declaration_the_catalogue_or_its_first_verb() {
        use steward_tools::Effect;
        assert!(foreign("book_flight", Some(Effect::Read)).changes_nothing());
        assert!(!foreign("get_weather", Some(Effect::Write)).changes_nothing());
        assert!(foreign("service_status", None).changes_nothing());
        assert!(!foreign("service_restart", None).changes_nothing());
        assert!(foreign("tenant_destroy", None).is_destructive());
        for looks in [
            "get_weather",
            "calculateArea",
            "SearchProducts",
            "list_files",
        ] {
            assert!(foreign(looks, None).changes_nothing(), "{looks}");
        }
        for acts in ["book_flight", "getaway_plan", "send_email", "cancelOrder"] {
            assert!(!foreign(acts, None).changes_nothing(), "{acts}");
        }
        // Undeclared, it is not known to change anything either: a question may use it.
        assert!(!foreign("country_info_capital", None).known_to_change());
        assert!(foreign("service_restart", None).known_to_change());
        assert!(foreign("get_weather", Some(Effect::Write)).known_to_change());
    }
}
