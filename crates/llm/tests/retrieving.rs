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
    retrieving_over(Arc::new(NeverAsked))
}

/// Retrieval on the real embedder in front of `model`.
fn retrieving_over(model: Arc<dyn Backend>) -> Retrieving {
    let models = std::env::var("STEWARD_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join(".steward"))
        .join("models/all-minilm-l6-v2");
    let hints =
        load_hints(&std::fs::read_to_string(repo().join("prompts/tool_hints.toml")).unwrap())
            .unwrap();
    Retrieving::load(model, &models, hints, DEFAULT_TOP_K).unwrap()
}

fn item(name: &str, kind: &str) -> InventoryItem {
    InventoryItem {
        name: name.into(),
        kind: kind.into(),
        description: String::new(),
        image: String::new(),
    }
}

/// What retrieval offers after `turns`, on a catalogue platform of three tenants.
fn offer(turns: Vec<Turn>) -> Vec<String> {
    let req = PlanRequest {
        turns,
        tools: ToolSet::catalogue().with_respond().defs,
        inventory: Inventory {
            services: ["stark-ind", "umbrella-bio", "acme-research"]
                .iter()
                .map(|n| item(n, "tenant"))
                .collect(),
        },
        ..Default::default()
    };
    retrieving().offer(&req).unwrap().unwrap()
}

/// The offer for `next`, after the person asked `first` and Steward called `tool` on
/// stark-ind and read its result.
fn offer_after(first: &str, tool: &str, next: &str) -> Vec<String> {
    let service = json!({"service": "stark-ind"});
    offer(vec![
        Turn::User { text: first.into() },
        Turn::Call {
            name: tool.into(),
            arguments: service.clone(),
        },
        Turn::tool_result(tool, "stark-ind: done", &service),
        Turn::User { text: next.into() },
    ])
}

#[test]
fn what_the_conversation_did_stays_on_offer_for_a_follow_up_naming_no_tool() {
    let next = "do the same for umbrella";
    let offered = offer_after("restart stark-ind", "service_restart", next);
    assert!(
        offered.contains(&"service_restart".to_string()),
        "{offered:?}"
    );
    assert_eq!(offered.last().unwrap(), "respond");
    // On its own, the same words match no tool of the platform: only an answer is offered.
    assert_eq!(
        offer(vec![Turn::User { text: next.into() }]),
        vec!["respond"]
    );
}

#[test]
fn an_earlier_destructive_call_is_offered_again_only_when_the_words_ask_for_loss() {
    let offered = offer_after(
        "destroy the stark-ind tenant",
        "tenant_destroy",
        "now the same for umbrella",
    );
    assert!(
        !offered.contains(&"tenant_destroy".to_string()),
        "{offered:?}"
    );
}

#[test]
fn a_word_that_names_one_tool_still_settles_the_offer() {
    assert_eq!(
        offer_after(
            "logs of stark-ind",
            "service_logs",
            "ok, restart acme-research"
        ),
        vec!["service_restart", "respond"]
    );
}

#[test]
fn a_follow_up_about_what_was_read_is_settled_by_its_tool_word_however_terse() {
    // "is the one from the 21st any good? verify it" resembles no tool's description
    // enough to match, but "it" points at the backups just listed, and "verify" names a tool.
    let next = "is the one from the 21st any good? verify it";
    assert_eq!(
        offer_after("stark-ind backups", "db_backups_list", next),
        vec!["db_verify_backup", "respond"]
    );
    // Without a conversation to point back at, "verify" still names the tool (its own
    // name's word), so grounding asks which backup instead of "I cannot do that".
    assert_eq!(
        offer(vec![Turn::User { text: next.into() }]),
        vec!["db_verify_backup", "respond"]
    );
}

#[test]
fn double_it_after_reading_a_limit_offers_only_the_tool_that_sets_it() {
    let read = "mq (mq-r2) over 1.0s: CPU 22.7%, memory 985.55 / 1024 MiB, 112 pids";
    let offered = offer(vec![
        Turn::User {
            text: "stark-ind mem".into(),
        },
        Turn::Call {
            name: "service_metrics".into(),
            arguments: json!({"service": "stark-ind"}),
        },
        Turn::tool_result("service_metrics", read, &json!({})),
        Turn::User {
            text: "double it".into(),
        },
    ]);
    // "it" is the one service just read, so the call is settled: no answer is offered.
    assert_eq!(offered, vec!["service_set_limits"]);
}

#[test]
fn a_named_act_on_the_one_item_just_spoken_of_is_a_call_not_a_question() {
    assert_eq!(
        offer_after("status of stark-ind", "service_status", "restart it"),
        vec!["service_restart"]
    );
    // Another item, or a read of something that is no item, may still be asked about.
    assert_eq!(
        offer_after(
            "status of stark-ind",
            "service_status",
            "restart the other one"
        ),
        vec!["service_restart", "respond"]
    );
    assert_eq!(
        offer_after("stark-ind backups", "db_backups_list", "verify it"),
        vec!["db_verify_backup", "respond"]
    );
    // A destructive act on it may still be asked about.
    assert_eq!(
        offer_after("status of stark-ind", "service_status", "destroy it"),
        vec!["tenant_destroy", "respond"]
    );
}

#[test]
fn a_turn_naming_only_an_item_asks_for_the_last_act_again() {
    // "and umbrella-bio?" after logs of stark-ind: the logs of umbrella-bio, settled.
    assert_eq!(
        offer_after("stark-ind logs", "service_logs", "and umbrella-bio?"),
        vec!["service_logs"]
    );
    assert_eq!(
        offer_after(
            "restart stark-ind",
            "service_restart",
            "acme-research as well"
        ),
        vec!["service_restart"]
    );
    // Words of its own ask for something else: the model chooses, and may ask.
    let offered = offer_after(
        "stark-ind logs",
        "service_logs",
        "and is umbrella-bio slow?",
    );
    assert_eq!(offered.last().unwrap(), "respond", "{offered:?}");
    // A bare name says too little to repeat an act on: the model may ask.
    let offered = offer_after("restart stark-ind", "service_restart", "umbrella-bio");
    assert_eq!(offered.last().unwrap(), "respond", "{offered:?}");
    // A destructive act is never repeated on a name alone.
    let offered = offer_after(
        "destroy the stark-ind tenant",
        "tenant_destroy",
        "and umbrella-bio",
    );
    assert!(
        !offered.contains(&"tenant_destroy".to_string()),
        "{offered:?}"
    );
}

#[test]
fn a_version_for_a_named_item_with_no_act_named_is_a_deploy() {
    assert_eq!(
        offer(vec![Turn::User {
            text: "put stark-ind on fresco 3.1.0".into()
        }]),
        vec!["service_deploy", "respond"]
    );
    // A quantity is no version, and a question asks to be told: ranking chooses.
    for text in ["give stark-ind 1.5 cpus", "is stark-ind on 3.1.0?"] {
        let offered = offer(vec![Turn::User { text: text.into() }]);
        assert!(offered.len() > 2, "{text}: {offered:?}");
    }
}

/// Records that it was asked, and proposes `respond`.
#[derive(Debug, Default)]
struct Model {
    asked: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl Backend for Model {
    fn name(&self) -> String {
        "model".into()
    }

    async fn propose(&self, _req: &PlanRequest) -> steward_llm::Result<Proposal> {
        self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(Proposal {
            call: steward_llm::ProposedCall {
                name: "respond".into(),
                arguments: json!({"text": "from the model"}),
            },
            backend: "model".into(),
            confidence: 1.0,
            choice: 1.0,
            prompt_tokens: 1,
            generated_tokens: 1,
            forward_passes: 1,
        })
    }
}

#[tokio::test]
async fn a_request_nothing_fits_is_answered_without_the_model() {
    let model = Arc::new(Model::default());
    let retrieving = retrieving_over(model.clone());
    let ask = |text: &str| PlanRequest {
        turns: vec![Turn::User { text: text.into() }],
        tools: ToolSet::catalogue().with_respond().defs,
        inventory: Inventory {
            services: vec![item("psra", "platform")],
        },
        ..Default::default()
    };
    for text in [
        "what's the capital of France",
        "recommend a pizza place near the office",
    ] {
        let p = retrieving.propose(&ask(text)).await.unwrap();
        assert_eq!(p.backend, steward_llm::answer::NO_TOOL, "{text}");
        assert_eq!(p.call.name, "respond");
        let said = p.call.arguments["text"].as_str().unwrap();
        assert!(
            said.starts_with("I cannot do or look that up"),
            "{text}: {said}"
        );
        assert!(said.contains("restart"), "{text}: {said}");
    }
    // Input no one should plan from is refused, not answered.
    for text in ["", " \n", &"x".repeat(10_001)] {
        let refused = retrieving.propose(&ask(text)).await.unwrap_err();
        assert!(matches!(refused, steward_llm::Error::Input(_)), "{refused}");
    }
    assert_eq!(model.asked.load(std::sync::atomic::Ordering::SeqCst), 0);
    // The platform's own requests still reach the model.
    for text in ["restart psra", "is psra up?"] {
        let p = retrieving.propose(&ask(text)).await.unwrap();
        assert_eq!(p.backend, "model", "{text}");
    }
    assert_eq!(model.asked.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn thanks_after_a_result_is_answered_without_the_model() {
    let model = Arc::new(Model::default());
    let retrieving = retrieving_over(model.clone());
    let status = json!({"service": "psra"});
    let after_a_look = |next: &str| PlanRequest {
        turns: vec![
            Turn::User {
                text: "is psra up?".into(),
            },
            Turn::Call {
                name: "service_status".into(),
                arguments: status.clone(),
            },
            Turn::tool_result("service_status", "psra: running (healthy)", &status),
            Turn::User { text: next.into() },
        ],
        tools: ToolSet::catalogue().with_respond().defs,
        inventory: Inventory {
            services: vec![item("psra", "platform")],
        },
        ..Default::default()
    };
    for text in ["cheers", "great, thanks!"] {
        let p = retrieving.propose(&after_a_look(text)).await.unwrap();
        assert_eq!(p.backend, steward_llm::answer::NO_TOOL, "{text}");
        assert_eq!(p.call.arguments["text"], "You're welcome.", "{text}");
    }
    assert_eq!(model.asked.load(std::sync::atomic::Ordering::SeqCst), 0);
    // Thanks that also ask for something are a request.
    for text in ["thanks, now restart it", "cheers, and psra logs?"] {
        let p = retrieving.propose(&after_a_look(text)).await.unwrap();
        assert_eq!(p.backend, "model", "{text}");
    }
}

#[tokio::test]
async fn a_word_of_one_tools_name_is_a_match_however_far_the_rest_is() {
    let model = Arc::new(Model::default());
    let retrieving = retrieving_over(model.clone());
    let music = ToolSet::from_file(&repo().join("evals/toolsets/music.json")).unwrap();
    let ask = |text: &str| PlanRequest {
        turns: vec![Turn::User { text: text.into() }],
        tools: music.clone().with_respond().defs,
        ..Default::default()
    };
    // A title says nothing the description does; "play" is play_song's own word.
    let p = retrieving
        .propose(&ask("play Clair de Lune"))
        .await
        .unwrap();
    assert_eq!(p.backend, "model");
    assert_eq!(model.asked.load(std::sync::atomic::Ordering::SeqCst), 1);
    // A word of the shipped verb lists is no match: "tell" is `notify`'s, and a joke is not
    // a notification.
    let joke = PlanRequest {
        turns: vec![Turn::User {
            text: "tell me a joke".into(),
        }],
        tools: ToolSet::catalogue().with_respond().defs,
        ..Default::default()
    };
    let p = retrieving.propose(&joke).await.unwrap();
    assert_eq!(p.backend, steward_llm::answer::NO_TOOL);
    assert_eq!(model.asked.load(std::sync::atomic::Ordering::SeqCst), 1);
}
