//! Natural language in, vetted tool calls out: the planner proposes, the orchestrator
//! decides and runs. A turn may take several steps (investigate with read tools, then act)
//! and stops at a step budget, an answer, a write, or a call waiting for approval.
//!
//! Tool output goes back to the planner as untrusted data ([`Turn::tool_result`], the same
//! rendering the evals replay). From then on a call is marked as derived from untrusted
//! text, so policy asks a human before any write, unless every target it names is named by
//! the person's own words ("restart psra" after reading rentguy's logs is theirs; a backup
//! id read from a listing is not).

use steward_llm::ground::from_persons_words;
use steward_llm::{Backend, Inventory, PlanRequest, Proposal, TextStream, ToolDef, Turn};
use steward_policy::Principal;
use steward_protocol::Origin;
use steward_tools::{Call, Effect};

use crate::orchestrator::{Orchestrator, Outcome, Request};
use crate::{Error, Result};

/// Steps one turn may take by default (each step is one proposed call).
pub const DEFAULT_STEP_BUDGET: usize = 4;

/// What happened in a turn, in order, for the caller to show as it goes.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The planner proposed a call.
    Proposed {
        tool: String,
        arguments: serde_json::Value,
        backend: String,
        confidence: f32,
        ms: u64,
    },
    /// The proposal did not validate; the planner gets one retry with the error.
    Invalid { message: String },
    /// The orchestrator's outcome for a proposed call.
    Outcome { tool: String, outcome: Outcome },
    /// The planner's answer or question (`respond`).
    Answer { text: String },
    /// The step budget ran out before an answer.
    BudgetSpent { steps: usize },
}

/// Whether proposals run or are only planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Dry-run the first proposal and stop: nothing executes (`steward plan`).
    PlanOnly,
    /// Run read tools to investigate and propose actions through the full path.
    Execute,
}

/// What a conversation plans and runs with.
#[derive(Debug, Clone, Copy)]
pub struct Means<'a> {
    pub planner: &'a dyn Backend,
    pub orchestrator: &'a Orchestrator,
    /// The whole catalogue (retrieval picks what is offered each step).
    pub tools: &'a [ToolDef],
    pub inventory: &'a Inventory,
    /// Where a plain-text answer goes while the model writes it (`steward chat`).
    pub stream: Option<&'a TextStream>,
}

/// One conversation with one person.
#[derive(Debug)]
pub struct Conversation {
    pub principal: Principal,
    pub origin: Origin,
    pub turns: Vec<Turn>,
    pub step_budget: usize,
}

impl Conversation {
    pub fn new(principal: Principal, origin: Origin) -> Conversation {
        Conversation {
            principal,
            origin,
            turns: Vec::new(),
            step_budget: DEFAULT_STEP_BUDGET,
        }
    }

    /// Plays one request of the person through planner and orchestrator, calling `on` with
    /// each event as it happens, and returns them all.
    pub async fn turn(
        &mut self,
        text: &str,
        means: Means<'_>,
        mode: Mode,
        on: &mut (dyn FnMut(&Event) + Send),
    ) -> Result<Vec<Event>> {
        let mut events = Vec::new();
        let mut emit = |e: Event, events: &mut Vec<Event>| {
            on(&e);
            events.push(e);
        };
        self.turns.push(Turn::User { text: text.into() });
        let mut retried = false;
        for _ in 0..self.step_budget {
            let started = std::time::Instant::now();
            let proposal = self.propose(means).await?;
            means
                .orchestrator
                .observe_plan(started.elapsed().as_secs_f64());
            let call = proposal.call.clone();
            emit(
                Event::Proposed {
                    tool: call.name.clone(),
                    arguments: call.arguments.clone(),
                    backend: proposal.backend.clone(),
                    confidence: proposal.confidence,
                    ms: started.elapsed().as_millis() as u64,
                },
                &mut events,
            );
            if call.name == "respond" {
                let text = call.arguments["text"].as_str().unwrap_or("").to_string();
                self.turns.push(Turn::Call {
                    name: call.name,
                    arguments: call.arguments,
                });
                emit(Event::Answer { text }, &mut events);
                return Ok(events);
            }
            if let Err(e) = Call::parse(&call.name, call.arguments.clone()) {
                emit(
                    Event::Invalid {
                        message: e.message.clone(),
                    },
                    &mut events,
                );
                if retried {
                    // Twice invalid: back to the person, nothing runs.
                    return Ok(events);
                }
                retried = true;
                self.turns.push(Turn::Call {
                    name: call.name.clone(),
                    arguments: call.arguments,
                });
                self.turns.push(Turn::tool_failure(&call.name, &e.message));
                continue;
            }
            let effect = steward_tools::find(&call.name).map_or(Effect::Write, |s| s.effect);
            let outcome = means
                .orchestrator
                .handle(Request {
                    principal: self.principal.clone(),
                    origin: self.origin,
                    intent_text: Some(text.to_string()),
                    untrusted_text: self.has_untrusted()
                        && !from_persons_words(&self.turns, &call.arguments, means.inventory),
                    tool: call.name.clone(),
                    args: call.arguments.clone(),
                    dry_run_only: mode == Mode::PlanOnly,
                })
                .await?;
            let result = match &outcome {
                Outcome::Done { done, .. } => {
                    Some(Turn::tool_result(&call.name, &done.summary, &done.output))
                }
                Outcome::Failed { message, .. } => Some(Turn::tool_failure(&call.name, message)),
                _ => None,
            };
            emit(
                Event::Outcome {
                    tool: call.name.clone(),
                    outcome,
                },
                &mut events,
            );
            self.turns.push(Turn::Call {
                name: call.name,
                arguments: call.arguments,
            });
            // What ran is remembered, so "roll that back" can refer to it. Investigation
            // continues only after a read that ran; anything else (a plan, a write, a
            // refusal, a pending approval) goes back to the person.
            match result {
                Some(result) if mode == Mode::Execute => {
                    self.turns.push(result);
                    if effect != Effect::Read {
                        return Ok(events);
                    }
                }
                _ => return Ok(events),
            }
        }
        emit(
            Event::BudgetSpent {
                steps: self.step_budget,
            },
            &mut events,
        );
        Ok(events)
    }

    /// The planner's request for the next step: the turns so far, with `means`' tools,
    /// inventory and stream. Also what [`Backend::warm`] decodes while the person types.
    pub fn request(&self, means: Means<'_>) -> PlanRequest {
        PlanRequest {
            turns: self.turns.clone(),
            tools: means.tools.to_vec(),
            inventory: means.inventory.clone(),
            stream: means.stream.cloned(),
            today: Some(chrono::Utc::now().date_naive()),
            ..Default::default()
        }
    }

    async fn propose(&self, means: Means<'_>) -> Result<Proposal> {
        means
            .planner
            .propose(&self.request(means))
            .await
            .map_err(Error::Planner)
    }

    fn has_untrusted(&self) -> bool {
        self.turns
            .iter()
            .any(|t| matches!(t, Turn::Untrusted { .. }))
    }
}
