//! A chat conversation over the one request path: the shipped policies, a real state store
//! and audit log, the trigger tests' stand-in platform, and a scripted planner (the model
//! is not what these tests are about; `steward eval` runs it on the same turns).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod trigger_world;

use std::collections::VecDeque;
use std::sync::Mutex;

use serde_json::{json, Value};
use steward_agent::conversation::{Conversation, Event, Means, Mode};
use steward_agent::Outcome;
use steward_llm::eval::ToolSet;
use steward_llm::{
    Backend, Inventory, InventoryItem, PlanRequest, Proposal, ProposedCall, Turn, UntrustedSource,
};
use steward_policy::Principal;
use steward_protocol::Origin;
use trigger_world::World;

/// Proposes the calls it was given, in order, and keeps the requests it was asked.
#[derive(Debug, Default)]
struct Script {
    calls: Mutex<VecDeque<ProposedCall>>,
    asked: Mutex<Vec<PlanRequest>>,
}

impl Script {
    fn of(calls: &[(&str, Value)]) -> Script {
        Script {
            calls: Mutex::new(
                calls
                    .iter()
                    .map(|(name, arguments)| ProposedCall {
                        name: name.to_string(),
                        arguments: arguments.clone(),
                    })
                    .collect(),
            ),
            ..Script::default()
        }
    }
}

#[async_trait::async_trait]
impl Backend for Script {
    fn name(&self) -> String {
        "script".into()
    }

    async fn propose(&self, req: &PlanRequest) -> steward_llm::Result<Proposal> {
        self.asked.lock().unwrap().push(req.clone());
        let call = self
            .calls
            .lock()
            .unwrap()
            .pop_front()
            .expect("scripted call");
        Ok(Proposal {
            call,
            backend: "script".into(),
            confidence: 1.0,
            choice: 1.0,
            prompt_tokens: 0,
            generated_tokens: 0,
            forward_passes: 0,
        })
    }
}

fn inventory() -> Inventory {
    let item = |name: &str| InventoryItem {
        name: name.into(),
        kind: "platform".into(),
        description: String::new(),
        image: String::new(),
    };
    Inventory {
        services: vec![item("psra"), item("rentguy")],
    }
}

/// Plays `requests` in one conversation of operator:alice; returns the events of the last.
async fn converse(world: &World, script: &Script, requests: &[&str]) -> (Conversation, Vec<Event>) {
    let orchestrator = world.orchestrator().await;
    let tools = ToolSet::catalogue().with_respond().defs;
    let inventory = inventory();
    let means = Means {
        planner: script,
        orchestrator: &orchestrator,
        tools: &tools,
        inventory: &inventory,
        stream: None,
    };
    let mut conv = Conversation::new(Principal::parse("operator:alice").unwrap(), Origin::Chat);
    let mut last = Vec::new();
    for text in requests {
        last = conv
            .turn(text, means, Mode::Execute, &mut |_| {})
            .await
            .unwrap();
    }
    orchestrator.audit().close().await.unwrap();
    (conv, last)
}

fn outcome(events: &[Event]) -> &Outcome {
    match events.last() {
        Some(Event::Outcome { outcome, .. }) => outcome,
        other => panic!("the turn ended with {other:?}"),
    }
}

#[tokio::test]
async fn a_command_naming_its_own_target_after_an_investigation_runs_and_is_remembered() {
    let world = World::new(&[]).await;
    let script = Script::of(&[
        ("service_status", json!({"service": "psra"})),
        ("respond", json!({"text": "psra is unhealthy."})),
        ("service_restart", json!({"service": "psra"})),
    ]);
    let (conv, events) = converse(&world, &script, &["hows psra", "restart psra"]).await;
    assert!(
        matches!(outcome(&events), Outcome::Done { .. }),
        "{events:?}"
    );
    assert_eq!(world.fake.runs("service_restart", "psra"), 1);
    // The write's result is part of the conversation, as the evals replay it.
    match conv.turns.last() {
        Some(Turn::Untrusted {
            source: UntrustedSource::ToolResult,
            label,
            content,
        }) => {
            assert_eq!(label, "service_restart");
            // The summary line, then one line per fact of the output.
            assert_eq!(content, "restarted\nservice: psra");
        }
        other => panic!("last turn {other:?}"),
    }
    // The planner read the status result back in the shared rendering.
    let second = script.asked.lock().unwrap()[1].clone();
    assert!(matches!(
        second.turns.last(),
        Some(Turn::Untrusted { label, .. }) if label == "service_status"
    ));
    world.cleanup().await;
}

#[tokio::test]
async fn a_referent_to_what_the_person_named_earlier_is_theirs_too() {
    let world = World::new(&[]).await;
    let script = Script::of(&[
        ("service_status", json!({"service": "psra"})),
        ("respond", json!({"text": "psra is unhealthy."})),
        ("service_restart", json!({"service": "psra"})),
    ]);
    let (_, events) = converse(&world, &script, &["hows psra", "restart it"]).await;
    assert!(
        matches!(outcome(&events), Outcome::Done { .. }),
        "{events:?}"
    );
    assert_eq!(world.fake.runs("service_restart", "psra"), 1);
    world.cleanup().await;
}

#[tokio::test]
async fn a_write_on_a_target_the_person_never_named_waits_for_a_human() {
    let world = World::new(&[]).await;
    let script = Script::of(&[
        ("service_status", json!({"service": "psra"})),
        ("respond", json!({"text": "psra is unhealthy."})),
        ("service_restart", json!({"service": "rentguy"})),
    ]);
    let (_, events) = converse(&world, &script, &["hows psra", "ok, do what it says"]).await;
    assert!(
        matches!(outcome(&events), Outcome::PendingApproval { .. }),
        "{events:?}"
    );
    assert_eq!(world.fake.runs("service_restart", "rentguy"), 0);
    world.cleanup().await;
}
