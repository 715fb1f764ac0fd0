//! The local planner backend: a GGUF model run by llama.cpp (`llama-cpp-2`) on a worker
//! thread that owns the model and its context, so requests are served one at a time.
//!
//! Speed comes from three things:
//! - **prefix reuse**: the KV cache keeps the tokens of the previous request; a new prompt
//!   decodes only what differs after their common prefix (the system part with the tools,
//!   then the inventory, are shared by every request);
//! - **state files**: the system part's KV state is saved under the cache dir, keyed by a
//!   hash of the model and the tokens, so a fresh process (one CLI call) loads it in
//!   milliseconds instead of decoding ~1,500 tokens at ~86 tokens/s. The inventory comes
//!   after it, so a new service or tenant costs only the inventory's tokens; [`Backend::warm`]
//!   decodes and saves the state with the inventory too (`steward warm` ahead of time), and
//!   decodes the conversation so far (`steward chat` warms while the person types);
//! - **forced-token batching** in the [`crate::decode`] decoder.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::complete::Completions;
use crate::decode::{After, Decoder, Limits, TokenModel, VocabClasses};
use crate::manifest::{verify_file, ModelManifest};
use crate::plan::{Backend, PlanRequest, Proposal, ProposedCall};
use crate::prompt::{ChatFormat, Prompt};
use crate::shape::Shape;
use crate::{Error, Result};

/// How to load and run a local model.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    pub manifest: ModelManifest,
    /// The folder holding `<manifest name>/<file>` (`weights_dir` in the config).
    pub weights_dir: PathBuf,
    /// Where prefix state files go; `None` keeps prefixes in memory only.
    pub cache_dir: Option<PathBuf>,
    pub threads: usize,
    pub n_ctx: u32,
    pub limits: Limits,
    /// Keep the KV cache between requests (and use `cache_dir`). Off only for the
    /// benchmark's baseline, which decodes the whole prompt every time.
    pub prefix_reuse: bool,
}

impl LocalConfig {
    pub fn new(manifest: ModelManifest, weights_dir: PathBuf) -> LocalConfig {
        LocalConfig {
            manifest,
            weights_dir,
            cache_dir: None,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            n_ctx: 4096,
            limits: Limits::default(),
            prefix_reuse: true,
        }
    }
}

/// What loading cost, for `steward eval` and the benchmarks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadStats {
    pub load_ms: u64,
}

enum Job {
    Plan {
        req: PlanRequest,
        reply: tokio::sync::oneshot::Sender<Result<Proposal>>,
    },
    Warm {
        req: PlanRequest,
        reply: tokio::sync::oneshot::Sender<Result<()>>,
    },
}

/// Handle to the worker thread; cheap to share behind an `Arc`. Dropping the last handle
/// waits for the job in hand: a process that ends while llama.cpp computes (a chat that
/// quits while the conversation is still warming) can crash in llama.cpp's exit handlers.
#[derive(Debug)]
pub struct LocalBackend {
    name: String,
    jobs: Option<mpsc::Sender<Job>>,
    worker: Option<std::thread::JoinHandle<()>>,
    stats: LoadStats,
}

impl Drop for LocalBackend {
    fn drop(&mut self) {
        // Closing the queue ends the worker's loop after the job in hand.
        drop(self.jobs.take());
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

impl LocalBackend {
    /// Verifies the weights (size, then sha256 unless the fetcher's stamp vouches for
    /// them), loads the model and starts the worker. Blocks for the load (about a second).
    pub fn load(cfg: LocalConfig) -> Result<LocalBackend> {
        let file = cfg.manifest.files.first().ok_or_else(|| Error::Model {
            path: cfg.weights_dir.join(&cfg.manifest.name),
            message: "the manifest lists no weight file".into(),
        })?;
        let path = cfg.manifest.file_path(&cfg.weights_dir, file);
        verify_file(&path, file)?;
        let name = format!("local:{}", cfg.manifest.name);
        let (jobs, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<LoadStats>>();
        let model_sha = file.sha256.clone();
        let worker = std::thread::Builder::new()
            .name("steward-llm".into())
            .spawn(move || worker(cfg, path, model_sha, rx, ready_tx))
            .map_err(|e| Error::Model {
                path: PathBuf::new(),
                message: format!("cannot start the model thread: {e}"),
            })?;
        let stats = ready_rx.recv().map_err(|_| Error::Model {
            path: PathBuf::new(),
            message: "the model thread stopped while loading".into(),
        })??;
        Ok(LocalBackend {
            name,
            jobs: Some(jobs),
            worker: Some(worker),
            stats,
        })
    }

    pub fn load_stats(&self) -> LoadStats {
        self.stats
    }
}

#[async_trait::async_trait]
impl Backend for LocalBackend {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn propose(&self, req: &PlanRequest) -> Result<Proposal> {
        req.check_input()?;
        self.run(|reply| Job::Plan {
            req: req.clone(),
            reply,
        })
        .await
    }

    async fn warm(&self, req: &PlanRequest) -> Result<()> {
        self.run(|reply| Job::Warm {
            req: req.clone(),
            reply,
        })
        .await
    }
}

impl LocalBackend {
    /// Queues the job `job` makes of a reply channel and waits for the worker's answer.
    async fn run<T>(
        &self,
        job: impl FnOnce(tokio::sync::oneshot::Sender<Result<T>>) -> Job,
    ) -> Result<T> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let gone = || Error::Unavailable {
            backend: self.name.clone(),
            message: "the model thread has stopped".into(),
        };
        self.jobs
            .as_ref()
            .ok_or_else(gone)?
            .send(job(reply))
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// llama.cpp's global state: initialized once per process, shared by every model loaded.
fn llama() -> std::result::Result<&'static LlamaBackend, String> {
    static BACKEND: std::sync::OnceLock<std::result::Result<LlamaBackend, String>> =
        std::sync::OnceLock::new();
    BACKEND
        .get_or_init(|| {
            LlamaBackend::init()
                .map(|mut b| {
                    b.void_logs();
                    b
                })
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn worker(
    cfg: LocalConfig,
    path: PathBuf,
    model_sha: String,
    jobs: mpsc::Receiver<Job>,
    ready: mpsc::Sender<Result<LoadStats>>,
) {
    let started = Instant::now();
    let model_err = |message: String| Error::Model {
        path: path.clone(),
        message,
    };
    let backend = match llama() {
        Ok(b) => b,
        Err(e) => {
            let _ = ready.send(Err(model_err(format!("cannot start llama.cpp: {e}"))));
            return;
        }
    };
    let model = match LlamaModel::load_from_file(backend, &path, &LlamaModelParams::default()) {
        Ok(m) => m,
        Err(e) => {
            let _ = ready.send(Err(model_err(format!("llama.cpp cannot load it: {e}"))));
            return;
        }
    };
    let model_loaded = Instant::now();
    let threads = i32::try_from(cfg.threads).unwrap_or(2);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(cfg.n_ctx))
        .with_n_batch(512)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let ctx = match model.new_context(backend, params) {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(model_err(format!("cannot create a context: {e}"))));
            return;
        }
    };
    let mut engine = Engine::new(&model, ctx, cfg.n_ctx);
    let context_made = Instant::now();
    let classes = VocabClasses::of(&engine);
    // Each part's own time: what a shorter start-up would have to cut.
    tracing::debug!(
        weights_ms = (model_loaded - started).as_millis(),
        context_ms = (context_made - model_loaded).as_millis(),
        vocabulary_ms = context_made.elapsed().as_millis(),
        "model loaded"
    );
    let _ = ready.send(Ok(LoadStats {
        load_ms: started.elapsed().as_millis() as u64,
    }));
    let name = format!("local:{}", cfg.manifest.name);
    let cache = PrefixCache {
        dir: cfg.cache_dir.clone(),
        model_sha,
    };
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Plan { req, reply } => {
                let result = plan_one(
                    &mut engine,
                    &classes,
                    &cfg.manifest.prompt,
                    &cache,
                    cfg.limits,
                    cfg.prefix_reuse,
                    &req,
                )
                .map(|(call, decoded_prompt, d)| Proposal {
                    call,
                    backend: name.clone(),
                    confidence: d.confidence,
                    choice: d.choice,
                    prompt_tokens: decoded_prompt,
                    generated_tokens: d.tokens,
                    forward_passes: d.passes,
                });
                let _ = reply.send(result);
            }
            Job::Warm { req, reply } => {
                let result = if cfg.prefix_reuse {
                    warm(&mut engine, &cfg.manifest.prompt, &cache, &req)
                } else {
                    Ok(())
                };
                let _ = reply.send(result);
            }
        }
    }
}

/// Brings the KV cache to the system part and the inventory of `req`, from state files
/// when they exist (saving the state with the inventory for the next process), then to the
/// turns of `req`, so the next request, which adds the person's words to them, decodes
/// only those. Only the head is saved to a file, never a conversation.
fn warm(
    engine: &mut Engine<'_>,
    format: &ChatFormat,
    cache: &PrefixCache,
    req: &PlanRequest,
) -> Result<()> {
    let rendered = format.render(req);
    let (prefix, head) = head_tokens(engine, &rendered);
    bring_head(engine, cache, &prefix, &head)?;
    let mut conversation = head;
    conversation.extend(engine.tokenize_special(&rendered.suffix));
    if conversation.len() >= engine.n_ctx as usize {
        // Too long to go on: the next request says so.
        return Ok(());
    }
    let rest = engine.reuse_prefix(&conversation)?;
    engine.feed(&rest, false)
}

/// Makes the KV cache start with `head` (the system part and the inventory): it already
/// does, or its state file loads, or the inventory is decoded after the system part's state
/// and the result saved, so a later switch back to this inventory (another process, or
/// requests that alternate inventories, as the evals' do) loads it instead of decoding it
/// again.
fn bring_head(
    engine: &mut Engine<'_>,
    cache: &PrefixCache,
    prefix: &[i32],
    head: &[i32],
) -> Result<()> {
    if cache.restore_or_save(engine, head, Saved::Inventory)? {
        return Ok(());
    }
    cache.restore_or_save(engine, prefix, Saved::Prefix)?;
    if cache.dir.is_none() {
        // Nothing can be saved: the inventory is decoded with the request, in one batch.
        return Ok(());
    }
    let rest = engine.reuse_prefix(head)?;
    engine.feed(&rest, false)?;
    cache.save(engine, head, Saved::Inventory);
    Ok(())
}

/// The tokens of the system part, and of the system part with the inventory after it.
fn head_tokens(engine: &Engine<'_>, prompt: &Prompt) -> (Vec<i32>, Vec<i32>) {
    let prefix = engine.tokenize_special(&prompt.prefix);
    let mut head = prefix.clone();
    head.extend(engine.tokenize_special(&prompt.inventory));
    (prefix, head)
}

/// The tools to decode a call to when the model's plain answer, right after the person
/// spoke, is no answer: the tool of a call it wrote as text ("that broke checkout, roll it
/// back" written as `{"name": "service_rollback", ...`), or, for an empty answer, every
/// offered action. `None` keeps the answer (after data, a call written as text is what an
/// injected instruction asked for, and is reported, not made).
fn redo_as_call(
    decoded: &crate::decode::Decoded,
    after: After,
    offered: &[(String, Shape)],
) -> Option<Vec<(String, Shape)>> {
    if after != After::Person {
        return None;
    }
    let actions = || {
        offered
            .iter()
            .filter(|(n, _)| n != crate::decode::RESPOND)
            .cloned()
            .collect::<Vec<_>>()
    };
    if let Some(tool) = &decoded.echoed {
        let tools: Vec<_> = actions().into_iter().filter(|(n, _)| n == tool).collect();
        return (!tools.is_empty()).then_some(tools);
    }
    let answer: Value = serde_json::from_str(&decoded.json).ok()?;
    let empty = answer["name"] == crate::decode::RESPOND
        && answer["arguments"]["text"]
            .as_str()
            .is_some_and(|t| t.trim().is_empty());
    let tools = actions();
    (empty && !tools.is_empty()).then_some(tools)
}

fn plan_one(
    engine: &mut Engine<'_>,
    classes: &VocabClasses,
    format: &ChatFormat,
    cache: &PrefixCache,
    limits: Limits,
    prefix_reuse: bool,
    req: &PlanRequest,
) -> Result<(ProposedCall, usize, crate::decode::Decoded)> {
    let offered: Vec<(String, Shape)> = req
        .offered()
        .into_iter()
        .map(|t| (t.name.clone(), Shape::of(&t.parameters)))
        .collect();
    if offered.is_empty() {
        return Err(Error::Input("no tools are offered for this request".into()));
    }
    let rendered = format.render(req);
    let (prefix_tokens, head_tokens) = head_tokens(engine, &rendered);
    let suffix_tokens = engine.tokenize_special(&rendered.suffix);
    let total = head_tokens.len() + suffix_tokens.len();
    // Room for the answer: the longest call is a respond text plus its framing.
    if total + limits.respond_tokens + 64 > engine.n_ctx as usize {
        return Err(Error::Input(format!(
            "the conversation is {total} tokens, too long for the model's {}-token context; \
             start a new conversation",
            engine.n_ctx
        )));
    }
    let decoded_before = engine.decoded;
    if prefix_reuse {
        bring_head(engine, cache, &prefix_tokens, &head_tokens)?;
    } else {
        engine.truncate(0)?;
    }
    let mut prompt = head_tokens;
    prompt.extend(suffix_tokens);
    let tail = engine.reuse_prefix(&prompt)?;
    // The prefix decoded above (when it was not cached) and the tail, which the first pass
    // evaluates. Counted here, not from what the decode evaluated: forced tokens that no
    // choice follows are never evaluated.
    let prompt_decoded = engine.decoded - decoded_before + tail.len();
    let after = match req.turns.last() {
        Some(crate::plan::Turn::Untrusted { .. }) => After::Data,
        _ => After::Person,
    };
    let completions = Completions::of(req);
    let mut decoded = Decoder::new(engine, classes, limits, tail)
        .streaming(req.stream.as_ref())
        .completing(&completions)
        .turn(&format.call_open, &offered, after)?;
    if let Some(tools) = redo_as_call(&decoded, after, &offered) {
        // The person asked for something and the plain answer is none: decode the turn
        // again as a call (the one the model wrote as text, or any offered action).
        tracing::debug!(answer = %decoded.json, "no answer in plain text; decoding a call");
        let tail = engine.reuse_prefix(&prompt)?;
        let (tokens, passes) = (decoded.tokens, decoded.passes);
        decoded = Decoder::new(engine, classes, limits, tail)
            .completing(&completions)
            .forced_call(&format.call_open, &tools)?;
        decoded.tokens += tokens;
        decoded.passes += passes;
    }
    let parsed: Value = serde_json::from_str(&decoded.json).map_err(|e| Error::Protocol {
        backend: "local".into(),
        message: format!("decoded text is not JSON ({e}): {}", decoded.json),
    })?;
    let mut call = ProposedCall {
        name: parsed["name"].as_str().unwrap_or_default().to_string(),
        arguments: parsed["arguments"].clone(),
    };
    canonical_names(&mut call.arguments, &req.inventory);
    Ok((call, prompt_decoded, decoded))
}

/// Trims string arguments and replaces those that name an inventory item in another case
/// ("RentGuy") by the item's name, so a capital letter does not fail validation.
fn canonical_names(args: &mut Value, inventory: &crate::plan::Inventory) {
    if let Some(obj) = args.as_object_mut() {
        for v in obj.values_mut() {
            // A space the model wrote after the opening quote is not part of a name.
            if let Some(s) = v
                .as_str()
                .filter(|s| s.trim() != *s && !s.trim().is_empty())
            {
                *v = Value::String(s.trim().to_string());
            }
            if let Some(s) = v.as_str() {
                if let Some(item) = inventory
                    .services
                    .iter()
                    .find(|i| i.name != s && i.name.eq_ignore_ascii_case(s.trim()))
                {
                    *v = Value::String(item.name.clone());
                }
            }
        }
    }
}

/// The model, its context and what its KV cache holds (sequence 0).
struct Engine<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    n_ctx: u32,
    /// Tokens whose keys and values are in the cache, in order.
    cached: Vec<i32>,
    pieces: Vec<Vec<u8>>,
    /// Tokens evaluated since load, for the prompt/generated split.
    decoded: usize,
}

impl<'m> Engine<'m> {
    fn new(model: &'m LlamaModel, ctx: LlamaContext<'m>, n_ctx: u32) -> Engine<'m> {
        let vocab = model.vocab();
        let pieces = vocab
            .tokens()
            .map(|t| vocab.token_to_piece(t, false, None))
            .collect();
        Engine {
            model,
            ctx,
            n_ctx,
            cached: Vec::new(),
            pieces,
            decoded: 0,
        }
    }

    /// Drops the cached tokens after the longest common prefix with `prompt` and returns
    /// the rest of `prompt` (at least its last token, whose logits are needed).
    fn reuse_prefix(&mut self, prompt: &[i32]) -> Result<Vec<i32>> {
        let common = self
            .cached
            .iter()
            .zip(prompt)
            .take_while(|(a, b)| a == b)
            .count()
            .min(prompt.len().saturating_sub(1));
        self.truncate(common)?;
        Ok(prompt[common..].to_vec())
    }

    fn truncate(&mut self, keep: usize) -> Result<()> {
        if keep < self.cached.len() {
            let from = u32::try_from(keep).unwrap_or(u32::MAX);
            self.ctx
                .kv_cache_seq_rm(0, Some(from), None)
                .map_err(|e| self.fail(format!("cannot trim the KV cache: {e}")))?;
            self.cached.truncate(keep);
        }
        Ok(())
    }

    fn fail(&self, message: String) -> Error {
        Error::Protocol {
            backend: "local".into(),
            message,
        }
    }

    /// Evaluates `tokens` after the cached ones, in batches, with logits for the last.
    fn feed(&mut self, tokens: &[i32], want_logits: bool) -> Result<()> {
        if self.cached.len() + tokens.len() > self.n_ctx as usize {
            return Err(self.fail(format!(
                "the {}-token context is full; start a new conversation",
                self.n_ctx
            )));
        }
        let chunk = 512;
        let mut batch = LlamaBatch::new(chunk, 1);
        for (c, part) in tokens.chunks(chunk).enumerate() {
            batch.clear();
            let last_chunk = (c + 1) * chunk >= tokens.len();
            for (i, &t) in part.iter().enumerate() {
                let pos = i32::try_from(self.cached.len() + i).unwrap_or(i32::MAX);
                let logits = want_logits && last_chunk && i + 1 == part.len();
                batch
                    .add(LlamaToken(t), pos, &[0], logits)
                    .map_err(|e| self.fail(format!("batch: {e}")))?;
            }
            self.ctx
                .decode(&mut batch)
                .map_err(|e| self.fail(format!("llama.cpp decode failed: {e}")))?;
            self.cached.extend_from_slice(part);
            self.decoded += part.len();
        }
        Ok(())
    }
}

impl TokenModel for Engine<'_> {
    fn tokenize(&self, text: &str) -> Vec<i32> {
        self.model
            .vocab()
            .tokenize(text.as_bytes(), false, false)
            .into_iter()
            .map(|t| t.0)
            .collect()
    }

    fn tokenize_special(&self, text: &str) -> Vec<i32> {
        self.model
            .vocab()
            .tokenize(text.as_bytes(), false, true)
            .into_iter()
            .map(|t| t.0)
            .collect()
    }

    fn is_end(&self, tok: i32) -> bool {
        self.model.vocab().is_eog(LlamaToken(tok))
    }

    fn piece(&self, tok: i32) -> &[u8] {
        self.pieces
            .get(usize::try_from(tok).unwrap_or(usize::MAX))
            .map_or(&[], Vec::as_slice)
    }

    fn n_vocab(&self) -> usize {
        self.pieces.len()
    }

    fn eval(&mut self, tokens: &[i32]) -> Result<Vec<f32>> {
        if tokens.is_empty() {
            return Err(self.fail("nothing to evaluate".into()));
        }
        let started = Instant::now();
        self.feed(tokens, true)?;
        tracing::trace!(
            tokens = tokens.len(),
            ms = started.elapsed().as_millis() as u64,
            "forward pass"
        );
        let last = i32::try_from((tokens.len() - 1) % 512).unwrap_or(0);
        Ok(self.ctx.get_logits_ith(last).to_vec())
    }
}

/// Which state a file holds: the system part (one per prompt and model), or the system
/// part with an inventory (one per inventory; only the newest few are kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Saved {
    Prefix,
    Inventory,
}

/// State files with an inventory that are kept; older ones are removed when one is saved.
const KEPT_INVENTORY_STATES: usize = 4;

/// State files: `<dir>/<sha256(model sha, tokens)>.kv`, `.inv.kv` with an inventory.
struct PrefixCache {
    dir: Option<PathBuf>,
    model_sha: String,
}

impl PrefixCache {
    fn file(&self, dir: &Path, tokens: &[i32], saved: Saved) -> PathBuf {
        let mut h = Sha256::new();
        h.update(self.model_sha.as_bytes());
        for t in tokens {
            h.update(t.to_le_bytes());
        }
        let ext = match saved {
            Saved::Prefix => "kv",
            Saved::Inventory => "inv.kv",
        };
        dir.join(format!("{}.{ext}", &hex::encode(h.finalize())[..32]))
    }

    /// Makes the KV cache start with `tokens`: it already does, or their state file loads;
    /// else the system part (`Saved::Prefix`) is decoded and saved for the next process,
    /// while an inventory is left to the caller. Returns whether the cache now starts with
    /// `tokens`. Failures only cost speed.
    fn restore_or_save(
        &self,
        engine: &mut Engine<'_>,
        tokens: &[i32],
        saved: Saved,
    ) -> Result<bool> {
        if engine.cached.starts_with(tokens) {
            return Ok(true);
        }
        let Some(dir) = &self.dir else {
            return Ok(false);
        };
        let file = self.file(dir, tokens, saved);
        if file.exists() {
            engine.truncate(0)?;
            match engine.ctx.state_load_file(&file, tokens.len() + 1) {
                Ok(loaded) if loaded.iter().map(|t| t.0).eq(tokens.iter().copied()) => {
                    engine.cached = tokens.to_vec();
                    return Ok(true);
                }
                Ok(_) | Err(_) => {
                    tracing::warn!(file = %file.display(), "stale prefix state; decoding again");
                    engine.ctx.clear_kv_cache();
                    engine.cached.clear();
                }
            }
        }
        if saved == Saved::Inventory {
            return Ok(false);
        }
        engine.truncate(0)?;
        engine.feed(tokens, false)?;
        self.save(engine, tokens, saved);
        Ok(true)
    }

    /// Saves the state of the KV cache, which holds `tokens`, as their state file, unless
    /// that file exists.
    fn save(&self, engine: &Engine<'_>, tokens: &[i32], saved: Saved) {
        let Some(dir) = &self.dir else { return };
        let file = self.file(dir, tokens, saved);
        if file.exists() {
            return;
        }
        let as_tokens: Vec<LlamaToken> = tokens.iter().map(|&t| LlamaToken(t)).collect();
        if std::fs::create_dir_all(dir).is_ok() {
            // A name of this process's own: two processes on one home (a chat beside an
            // eval) must not write into the same file, one renaming it while the other
            // still writes, and leave a torn state for the next load.
            let tmp = file.with_extension(format!("{}.tmp", std::process::id()));
            if engine.ctx.state_save_file(&tmp, &as_tokens).is_ok() {
                let _ = std::fs::rename(&tmp, &file);
            }
        }
        if saved == Saved::Inventory {
            crate::saved::keep_newest(dir, ".inv.kv", KEPT_INVENTORY_STATES);
        }
    }
}
