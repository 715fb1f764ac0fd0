//! Builds the planner backend from the config: the local model (`planner_model`, a manifest
//! in `models_dir`), Claude when a key is configured, the route between them
//! (`planner_route`: local | claude | local-first[:min confidence]), tool retrieval in
//! front (`planner_top_k` tools offered per turn), grounding of every proposal, and the
//! answer after an investigation stating what was found.

use std::str::FromStr;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use steward_llm::answer::Answering;
use steward_llm::claude::{ClaudeBackend, ClaudeConfig};
use steward_llm::ground::Grounding;
use steward_llm::local::{LocalBackend, LocalConfig};
use steward_llm::manifest::ModelManifest;
use steward_llm::retrieval::{load_hints, TOOL_HINTS};
use steward_llm::retrieving::Retrieving;
use steward_llm::{Backend, Route, Router};

use crate::config::{Config, Key};

/// The embedder used for tool retrieval.
const EMBEDDER: &str = "all-minilm-l6-v2";

/// The planner, as configured; `model` overrides `planner_model`.
pub fn backend(cfg: &Config, model: Option<&str>) -> Result<Arc<dyn Backend>> {
    planner_over(cfg, router(cfg, model)?)
}

/// The configured models and the route between them, with nothing in front: what fills in
/// a grammar of its own (a rule draft), where picking one tool and grounding its
/// arguments in the person's words do not apply.
pub fn router(cfg: &Config, model: Option<&str>) -> Result<Arc<dyn Backend>> {
    let route = Route::from_str(cfg.require(Key::PlannerRoute)?)
        .context("planner_route must be local, claude, local-first or local-first:<0..1>")?;
    let local: Option<Arc<dyn Backend>> = match route {
        Route::ClaudeOnly => None,
        _ => Some(Arc::new(local_backend(cfg, model)?)),
    };
    let claude = claude_backend(cfg)?;
    let router = Router::new(route, local, claude);
    router.check()?;
    Ok(Arc::new(router))
}

/// The planner over `router`: tool retrieval in front, grounding of every proposal, and
/// answers that state what an investigation found.
pub fn planner_over(cfg: &Config, router: Arc<dyn Backend>) -> Result<Arc<dyn Backend>> {
    let k: usize = cfg
        .require(Key::PlannerTopK)?
        .parse()
        .context("planner_top_k must be a number of tools, e.g. 12")?;
    let weights = std::path::PathBuf::from(cfg.require(Key::WeightsDir)?);
    let retrieving = Retrieving::load(router, &weights.join(EMBEDDER), load_hints(TOOL_HINTS)?, k)?
        .saving_indexes_in(cfg.home.join("cache").join("tools"));
    Ok(Arc::new(Answering {
        inner: Grounding { inner: retrieving },
    }))
}

/// The manifest named `name` (its `name` field or its file stem) in `models_dir`.
pub fn manifest(cfg: &Config, name: &str) -> Result<ModelManifest> {
    let dir = cfg.data_path(Key::ModelsDir)?;
    let all = ModelManifest::load_dir(&dir)?;
    let names: Vec<String> = all.iter().map(|m| m.name.clone()).collect();
    match all
        .into_iter()
        .find(|m| m.name == name || m.name.starts_with(name))
    {
        Some(m) => Ok(m),
        None => bail!(
            "no model {name:?} in {}; known: {}",
            dir.display(),
            names.join(", ")
        ),
    }
}

fn local_backend(cfg: &Config, model: Option<&str>) -> Result<LocalBackend> {
    let name = match model {
        Some(m) => m,
        None => cfg.require(Key::PlannerModel)?,
    };
    let manifest = manifest(cfg, name)?;
    let mut local = LocalConfig::new(
        manifest,
        std::path::PathBuf::from(cfg.require(Key::WeightsDir)?),
    );
    local.cache_dir = Some(cfg.home.join("cache").join("kv"));
    Ok(LocalBackend::load(local)?)
}

/// Claude when a key is configured (`claude_api_key` or `ANTHROPIC_API_KEY`), else none.
fn claude_backend(cfg: &Config) -> Result<Option<Arc<dyn Backend>>> {
    let config = ClaudeConfig {
        base_url: cfg.require(Key::ClaudeBaseUrl)?.to_string(),
        api_key: cfg.get(Key::ClaudeApiKey).map(|s| s.value.clone()),
        model: cfg.require(Key::ClaudeModel)?.to_string(),
        ca_file: cfg
            .get(Key::ClaudeCaFile)
            .filter(|s| !s.value.trim().is_empty())
            .map(|s| std::path::PathBuf::from(&s.value)),
        ..ClaudeConfig::default()
    }
    .with_env_key();
    if config.api_key.is_none() {
        return Ok(None);
    }
    Ok(Some(Arc::new(ClaudeBackend::new(config)?)))
}
