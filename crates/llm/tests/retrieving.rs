//! Retrieval's offer on the real embedder (all-minilm-l6-v2, fetched by `scripts/setup`):
//! what a follow-up in a conversation may choose from.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;
use steward_llm::eval::ToolSet;
use steward_llm::retrieval::load_hints;
use steward_llm::retrieving::{Retrieving, DEFAULT_TOP_K};
use steward_llm::{Backend, Inventory, InventoryItem, PlanRequest, Proposal, Turn};

/// Retrieval only ranks here; nothing is proposed.
#[derive(Debug)]
struct NeverAsked;

#[async_trait::async_trait]
impl Backend for NeverAsked {
    fn name(&self) -> String {
        "never-asked".into()
    }

    async fn propose(&self, _req: &PlanRequest) -> steward_llm::Result<Proposal> {
        unreachable!("the offer is computed without the model")
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn retrieving() -> Retrieving {
    let models = std::env::var("STEWARD_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join(".steward"))
        .join("models/all-minilm-l6-v2");
    let hints =
        load_hints(&std::fs::read_to_string(repo().join("prompts/tool_hints.toml")).unwrap())
            .unwrap();
    Retrieving::load(Arc::new(NeverAsked), &models, hints, DEFAULT_TOP_K).unwrap()
}

/// The person asked for `first`, Steward called `tool` on `service` and read its result;
/// then the person wrote `next`.
fn follow_up(first: &str, tool: &str, service: &str, next: &str) -> PlanRequest {
    PlanRequest {
        turns: vec![
            Turn::User { text: first.into() },
            Turn::Call {
                name: tool.into(),
                arguments: json!({"service": service}),
            },
            Turn::tool_result(
                tool,
                &format!("{service}: done"),
                &json!({"service": service}),
            ),
            Turn::User { text: next.into() },
        ],
        tools: ToolSet::catalogue().with_respond().defs,
        inventory: Inventory {
            services: ["stark-ind", "umbrella-bio", "acme-research"]
                .iter()
                .map(|n| InventoryItem {
                    name: n.to_string(),
                    kind: "tenant".into(),
                    description: String::new(),
                    image: String::new(),
                })
                .collect(),
        },
        ..Default::default()
    }
}

#[test]
fn what_the_conversation_did_stays_on_offer_for_a_follow_up_naming_no_tool() {
    let r = retrieving();
    let req = follow_up(
        "restart stark-ind",
        "service_restart",
        "stark-ind",
        "do the same for umbrella",
    );
    let offer = r.offer(&req).unwrap().unwrap();
    assert!(offer.contains(&"service_restart".to_string()), "{offer:?}");
    assert_eq!(offer.last().unwrap(), "respond");

    // On its own, the same words match no tool of the platform: only an answer is offered.
    let alone = PlanRequest {
        turns: vec![req.turns[3].clone()],
        ..req.clone()
    };
    assert_eq!(r.offer(&alone).unwrap().unwrap(), vec!["respond"]);
}

#[test]
fn an_earlier_destructive_call_is_offered_again_only_when_the_words_ask_for_loss() {
    let r = retrieving();
    let req = follow_up(
        "destroy the stark-ind tenant",
        "tenant_destroy",
        "stark-ind",
        "now the same for umbrella",
    );
    let offer = r.offer(&req).unwrap().unwrap();
    assert!(!offer.contains(&"tenant_destroy".to_string()), "{offer:?}");
}

#[test]
fn a_word_that_names_one_tool_still_settles_the_offer() {
    let r = retrieving();
    let req = follow_up(
        "logs of stark-ind",
        "service_logs",
        "stark-ind",
        "ok, restart acme-research",
    );
    assert_eq!(
        r.offer(&req).unwrap().unwrap(),
        vec!["service_restart", "respond"]
    );
}
