//! The local backend on a real GGUF model (SmolLM2-135M: small enough for mechanical
//! checks; the planner's accuracy is measured by `steward eval` with the default model).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use steward_llm::eval::ToolSet;
use steward_llm::local::{LocalBackend, LocalConfig};
use steward_llm::manifest::ModelManifest;
use steward_llm::{
    validate_call, Backend, Error, Inventory, InventoryItem, PlanRequest, TextStream, Turn,
};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn weights() -> PathBuf {
    std::env::var("STEWARD_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join(".steward"))
        .join("models")
}

fn small() -> ModelManifest {
    ModelManifest::load(&repo().join("models/smollm2-135m-instruct.toml")).unwrap()
}

fn inventory() -> Inventory {
    Inventory {
        services: ["rentguy", "psra", "n8n"]
            .iter()
            .map(|n| InventoryItem {
                name: n.to_string(),
                kind: "platform".into(),
                description: String::new(),
                image: String::new(),
            })
            .collect(),
    }
}

fn request(text: &str) -> PlanRequest {
    PlanRequest {
        turns: vec![Turn::User { text: text.into() }],
        tools: ToolSet::catalogue().with_respond().defs,
        inventory: inventory(),
        ..Default::default()
    }
}

fn load(cache: Option<PathBuf>) -> LocalBackend {
    let mut cfg = LocalConfig::new(small(), weights());
    cfg.cache_dir = cache;
    LocalBackend::load(cfg).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_proposal_is_a_schema_valid_call_and_the_prefix_is_reused() {
    let cache = std::env::temp_dir().join(format!("steward-kv-{}", std::process::id()));
    let backend = load(Some(cache.clone()));
    let tools = ToolSet::catalogue().with_respond().defs;
    let mut prompt_tokens = Vec::new();
    for text in [
        "restart rentguy",
        "show me psra logs from the last hour",
        "cap n8n at 256 mb",
        "what's the weather like?",
    ] {
        let p = backend.propose(&request(text)).await.unwrap();
        // Valid by construction: the name is a catalogue tool and the arguments have its shape.
        assert!(tools.iter().any(|t| t.name == p.call.name), "{p:?}");
        assert!(p.call.arguments.is_object(), "{p:?}");
        if p.call.name == "respond" || p.call.name.starts_with("service_") {
            validate_call(&tools, &p.call).unwrap_or_else(|e| panic!("{text:?}: {e}: {p:?}"));
        }
        assert!((0.0..=1.0).contains(&p.confidence));
        prompt_tokens.push(p.prompt_tokens);
    }
    // The first request decodes the system prefix; later ones only their own words.
    assert!(prompt_tokens[0] > 300, "{prompt_tokens:?}");
    assert!(
        prompt_tokens[1..].iter().all(|&n| n < 60),
        "{prompt_tokens:?}"
    );
    // The same words twice: the second reuses all of the first's prompt but its last token,
    // whatever forced tokens the first left unevaluated at the end of its call.
    let mut verify = request("verify backup rentguy-20261123T020000000Z");
    verify.offer = Some(vec!["db_verify_backup".into()]);
    let first = backend.propose(&verify).await.unwrap();
    let repeat = backend.propose(&verify).await.unwrap();
    assert_eq!(first.call.name, "db_verify_backup");
    assert_eq!(repeat.prompt_tokens, 1);

    // A changed inventory comes after the cached prefix: it costs its own tokens and the
    // request's, not the prefix again.
    let mut grown = request("restart rentguy");
    grown.inventory.services.push(InventoryItem {
        name: "acme-research".into(),
        kind: "tenant".into(),
        description: "Fresco instance of Acme Research".into(),
        image: "ghcr.io/acme/fresco:3.0.2".into(),
    });
    let p = backend.propose(&grown).await.unwrap();
    assert!(p.prompt_tokens < 120, "{}", p.prompt_tokens);

    // The state with each inventory is saved once it is decoded (warming finds the first
    // one saved already), and a new process finds it on disk and decodes only the request.
    backend.warm(&request("-")).await.unwrap();
    let saved = std::fs::read_dir(&cache)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .to_string_lossy()
                .ends_with(".inv.kv")
        })
        .count();
    assert_eq!(saved, 2, "the shipped inventory's and the grown one's");
    drop(backend);
    let again = load(Some(cache.clone()));
    let p = again.propose(&request("restart rentguy")).await.unwrap();
    assert!(p.prompt_tokens < 20, "{}", p.prompt_tokens);
    std::fs::remove_dir_all(&cache).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warmed_conversation_leaves_only_the_persons_new_words_to_decode() {
    let backend = load(None);
    let mut so_far = request("restart rentguy");
    so_far.turns.push(Turn::Call {
        name: "service_restart".into(),
        arguments: serde_json::json!({"service": "rentguy"}),
    });
    so_far.turns.push(Turn::tool_result(
        "service_restart",
        "rentguy: restarted, release r4 running (healthy)",
        &serde_json::json!({"service": "rentguy", "release": "r4", "health": "healthy",
            "started_at": "2026-11-23T08:02:11Z", "restart_count": 1}),
    ));
    let mut next = so_far.clone();
    next.turns.push(Turn::User {
        text: "now psra".into(),
    });

    // Cold (the system part and inventory cached): the earlier turns are decoded with the
    // new words.
    backend.warm(&request("-")).await.unwrap();
    let cold = backend.propose(&next).await.unwrap();
    // Another request in between leaves only the head in common.
    backend.propose(&request("restart psra")).await.unwrap();
    // Warmed (as `steward chat` does while the person types): only the new words are.
    backend.warm(&so_far).await.unwrap();
    let warmed = backend.propose(&next).await.unwrap();
    assert!(cold.prompt_tokens > 80, "{}", cold.prompt_tokens);
    assert!(warmed.prompt_tokens < 20, "{}", warmed.prompt_tokens);
    assert_eq!(
        warmed.call, cold.call,
        "warming changes the cost, not the answer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_prefix_reuse_every_request_decodes_its_whole_prompt_to_the_same_call() {
    let mut cfg = LocalConfig::new(small(), weights());
    cfg.prefix_reuse = false;
    let baseline = LocalBackend::load(cfg).unwrap();
    let shipped = load(None);
    for text in ["restart rentguy", "show me psra logs from the last hour"] {
        let naive = baseline.propose(&request(text)).await.unwrap();
        assert!(
            naive.prompt_tokens > 300,
            "{text:?}: {}",
            naive.prompt_tokens
        );
        let reused = shipped.propose(&request(text)).await.unwrap();
        assert_eq!(naive.call, reused.call, "{text:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_answer_streams_as_it_is_written() {
    let backend = load(None);
    let pieces = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = pieces.clone();
    let mut req = request("hello! who are you?");
    req.offer = Some(vec!["respond".into()]);
    req.stream = Some(TextStream(Arc::new(move |p: &str| {
        sink.lock().unwrap().push(p.to_string());
    })));
    let p = backend.propose(&req).await.unwrap();
    assert_eq!(p.call.name, "respond", "{p:?}");
    let pieces = pieces.lock().unwrap();
    assert!(
        pieces.len() > 1,
        "streamed in {} pieces: {p:?}",
        pieces.len()
    );
    assert_eq!(pieces.concat(), p.call.arguments["text"].as_str().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_offered_tools_can_be_proposed() {
    let backend = load(None);
    let mut req = request("restart rentguy");
    req.offer = Some(vec!["service_status".into()]);
    let p = backend.propose(&req).await.unwrap();
    assert_eq!(p.call.name, "service_status");
    assert!(p.call.arguments["service"].as_str().is_some(), "{p:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_before_the_model_runs() {
    let backend = load(None);
    for (text, expect) in [
        ("", "empty"),
        ("   \n ", "empty"),
        (&"x".repeat(10_001)[..], "10001 characters"),
        ("restart \u{0}\u{1}\u{2} rentguy", "binary"),
    ] {
        let err = backend.propose(&request(text)).await.unwrap_err();
        assert!(matches!(err, Error::Input(_)), "{err:?}");
        assert!(err.to_string().contains(expect), "{text:?}: {err}");
    }
}

#[test]
fn a_missing_or_corrupt_model_file_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("steward-badmodel-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let manifest = small();
    let err = LocalBackend::load(LocalConfig::new(manifest.clone(), dir.clone())).unwrap_err();
    assert!(
        err.to_string().contains("missing; run scripts/setup"),
        "{err}"
    );

    // Same size, one byte changed, no fetcher stamp: the hash catches it.
    let file = &manifest.files[0];
    let good = manifest.file_path(&weights(), file);
    let bad = manifest.file_path(&dir, file);
    std::fs::create_dir_all(bad.parent().unwrap()).unwrap();
    std::fs::copy(&good, &bad).unwrap();
    let mut bytes = std::fs::read(&bad).unwrap();
    bytes[1_000_000] ^= 0xff;
    std::fs::write(&bad, bytes).unwrap();
    let err = LocalBackend::load(LocalConfig::new(manifest, dir.clone())).unwrap_err();
    assert!(err.to_string().contains("sha256 mismatch"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
