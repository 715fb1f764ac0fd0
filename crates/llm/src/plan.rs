//! What a planner backend is asked and what it answers. Backends only *propose*: the agent
//! validates, vets and executes (or not) whatever comes back.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Result;

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
}

impl PlanRequest {
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
}

/// A planner backend: local llama.cpp or Claude.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + std::fmt::Debug {
    fn name(&self) -> String;
    async fn propose(&self, req: &PlanRequest) -> Result<Proposal>;
}
