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
}

/// The live inventory, as `steward plan --inventory FILE` reads it:
/// `{"services": [{"name": "rentguy", "kind": "platform", "description": "..."}]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    pub services: Vec<InventoryItem>,
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
}
