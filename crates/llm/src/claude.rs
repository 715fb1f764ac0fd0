//! The Claude planner backend over the Anthropic Messages API.
//!
//! Every answer is a tool call: the request offers the planning tools (with `respond` for
//! answers, questions and refusals) and sets `tool_choice: {"type": "any"}`. Earlier calls are
//! replayed as `tool_use` blocks and their results as `tool_result` blocks; every piece of
//! untrusted text (tool output, alert annotations, webhook bodies) is fenced as
//! `<untrusted source=... label=...>` data, with closing-tag lookalikes inside it neutralized,
//! and the system prompt tells the model that fenced text is never an instruction.
//!
//! The system prompt is `prompts/claude_system.txt`, compiled in with `include_str!` so the
//! binary cannot start with a missing or different template than the one its tests ran with.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::fence::fence;
use crate::plan::UntrustedSource;
use crate::plan::{Backend, Inventory, PlanRequest, Proposal, ProposedCall, ToolDef, Turn};
use crate::{Error, Result};

/// Where the Messages API lives unless configured otherwise.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The model asked unless configured otherwise.
pub const DEFAULT_MODEL: &str = "claude-sonnet-4-5";
/// Output budget of one planning answer (a single tool call).
pub const DEFAULT_MAX_TOKENS: u32 = 1024;
/// How long one HTTP request may take, connection included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest `retry-after` honoured before the one retry of a 429/529 answer.
pub const DEFAULT_MAX_RETRY_WAIT: Duration = Duration::from_secs(10);
/// The environment variable the API key is read from.
pub const API_KEY_ENV: &str = "ANTHROPIC_API_KEY";
/// The `anthropic-version` header this client speaks.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// The system prompt template; `{{inventory}}` is replaced by the inventory lines.
pub const SYSTEM_TEMPLATE: &str = include_str!("../../../prompts/claude_system.txt");

/// How long to wait before the retry when a 429/529 answer has no usable `retry-after`.
const DEFAULT_RETRY_WAIT: Duration = Duration::from_secs(1);

/// Settings of the Claude backend. `Debug` masks the API key.
#[derive(Clone)]
pub struct ClaudeConfig {
    /// Base URL of the API, without `/v1/messages`.
    pub base_url: String,
    /// The API key (`x-api-key`); `None` or empty means not configured.
    pub api_key: Option<String>,
    pub model: String,
    pub max_tokens: u32,
    /// Timeout of one HTTP request (connect, send, answer).
    pub timeout: Duration,
    /// A 429/529 answer is retried once when its `retry-after` is at most this long.
    pub max_retry_wait: Duration,
    /// Extra trusted root certificate(s), PEM, added to the system's: for a corporate
    /// gateway or private proxy whose certificate a private CA signs.
    pub ca_file: Option<PathBuf>,
}

impl Default for ClaudeConfig {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_string(),
            api_key: None,
            model: DEFAULT_MODEL.to_string(),
            max_tokens: DEFAULT_MAX_TOKENS,
            timeout: DEFAULT_TIMEOUT,
            max_retry_wait: DEFAULT_MAX_RETRY_WAIT,
            ca_file: None,
        }
    }
}

impl fmt::Debug for ClaudeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaudeConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("model", &self.model)
            .field("max_tokens", &self.max_tokens)
            .field("timeout", &self.timeout)
            .field("max_retry_wait", &self.max_retry_wait)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl ClaudeConfig {
    /// Defaults with the API key taken from `ANTHROPIC_API_KEY` (when set and not empty).
    pub fn from_env() -> Self {
        Self::default().with_env_key()
    }

    /// Fills a missing API key from `ANTHROPIC_API_KEY`; a configured key wins.
    pub fn with_env_key(mut self) -> Self {
        if self.api_key.as_deref().is_none_or(|k| k.trim().is_empty()) {
            self.api_key = std::env::var(API_KEY_ENV)
                .ok()
                .filter(|k| !k.trim().is_empty());
        }
        self
    }
}

/// The Claude planner backend.
pub struct ClaudeBackend {
    config: ClaudeConfig,
    api_key: String,
    url: String,
    client: reqwest::Client,
}

impl fmt::Debug for ClaudeBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaudeBackend")
            .field("config", &self.config)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl ClaudeBackend {
    /// Checks the settings and builds the HTTP client. Fails with [`Error::Unavailable`] when
    /// no API key is configured (saying how to set one), the base URL is not http(s), or the
    /// `ca_file` cannot be read or holds no valid PEM certificate.
    pub fn new(config: ClaudeConfig) -> Result<Self> {
        let backend = format!("claude:{}", config.model);
        let api_key = match config.api_key.as_deref().map(str::trim) {
            Some(k) if !k.is_empty() => k.to_string(),
            _ => {
                return Err(Error::Unavailable {
                    backend,
                    message: format!(
                        "no Anthropic API key configured; set the {API_KEY_ENV} environment \
                         variable (or `claude_api_key` in the steward config) to use Claude"
                    ),
                })
            }
        };
        if api_key.chars().any(|c| c.is_control() || !c.is_ascii()) {
            return Err(Error::Unavailable {
                backend,
                message: format!(
                    "the Anthropic API key contains characters an HTTP header cannot carry; \
                     check {API_KEY_ENV}"
                ),
            });
        }
        let base = config.base_url.trim().trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::Unavailable {
                backend,
                message: format!(
                    "the Claude base URL `{}` must start with http:// or https://",
                    config.base_url
                ),
            });
        }
        let url = format!("{base}/v1/messages");
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout);
        if let Some(path) = &config.ca_file {
            let certs = load_ca_file(path).map_err(|message| Error::Unavailable {
                backend: backend.clone(),
                message,
            })?;
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder.build().map_err(|e| Error::Unavailable {
            backend,
            message: format!("cannot build the HTTP client: {}", error_chain(&e)),
        })?;
        Ok(Self {
            config,
            api_key,
            url,
            client,
        })
    }

    /// The endpoint this backend posts to (`<base_url>/v1/messages`).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn config(&self) -> &ClaudeConfig {
        &self.config
    }

    /// The JSON body this backend would post for `req`: the tools offered this turn (see
    /// [`PlanRequest::offered`]), with `respond` added when the offer lacks it.
    pub fn request_body(&self, req: &PlanRequest) -> Result<Value> {
        let tools: Vec<Value> = offered_tools(req)
            .iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "description": t.description,
                    "input_schema": t.parameters,
                })
            })
            .collect();
        let system = match &req.system {
            // A prompt of its own (rule drafting): the call is a tool use here.
            Some(system) => system.replace("{call_example}", "(call the tool)"),
            None => system_prompt(&req.inventory),
        };
        Ok(json!({
            "model": self.config.model,
            "max_tokens": self.config.max_tokens,
            "system": system,
            "messages": messages(&req.turns)?,
            "tools": tools,
            "tool_choice": {"type": "any"},
        }))
    }

    fn unavailable(&self, message: String) -> Error {
        Error::Unavailable {
            backend: self.name(),
            message,
        }
    }

    fn protocol(&self, message: String) -> Error {
        Error::Protocol {
            backend: self.name(),
            message,
        }
    }

    /// Posts `body` once; `Ok(Err(retry))` is a 429/529 answer that may be retried.
    async fn post(&self, body: &Value) -> Result<std::result::Result<Value, Retry>> {
        let response = self
            .client
            .post(&self.url)
            .header("x-api-key", &self.api_key)
            .header("anthropic-version", ANTHROPIC_VERSION)
            .header("content-type", "application/json")
            .json(body)
            .send()
            .await
            .map_err(|e| self.send_error(&e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .and_then(|s| Duration::try_from_secs_f64(s).ok());
        let text = response.text().await.map_err(|e| {
            self.unavailable(format!(
                "reading the answer of {} failed: {}",
                self.url,
                error_chain(&e)
            ))
        })?;
        if status.is_success() {
            let value = serde_json::from_str(&text).map_err(|e| {
                self.protocol(format!("the answer is not JSON ({e}): {}", snippet(&text)))
            })?;
            return Ok(Ok(value));
        }
        let detail = api_error_message(&text);
        let code = status.as_u16();
        match code {
            401 | 403 => Err(self.unavailable(format!(
                "API key rejected by {} (HTTP {code}: {detail}); check {API_KEY_ENV}",
                self.url
            ))),
            429 | 529 => {
                let what = if code == 429 {
                    "rate limited"
                } else {
                    "overloaded"
                };
                Ok(Err(Retry {
                    wait: retry_after,
                    message: format!("{what} (HTTP {code}: {detail})"),
                }))
            }
            _ if status.is_server_error() => Err(self.unavailable(format!(
                "server error from {} (HTTP {code}: {detail})",
                self.url
            ))),
            _ => Err(self.unavailable(format!(
                "request refused by {} (HTTP {code}: {detail})",
                self.url
            ))),
        }
    }

    fn send_error(&self, e: &reqwest::Error) -> Error {
        let chain = error_chain(e);
        if e.is_timeout() {
            self.unavailable(format!(
                "no answer from {} within {:.1}s: {chain}",
                self.url,
                self.config.timeout.as_secs_f64()
            ))
        } else if let Some(tls) = tls_error(e) {
            // OpenSSL names every verification failure (unknown issuer, self-signed, expired,
            // wrong host) "certificate ...", so the text tells them from other TLS failures.
            if tls.to_string().contains("certificate") {
                self.unavailable(format!(
                    "cannot connect to {}: the server's TLS certificate is not trusted \
                     ({chain}); if a corporate gateway or private proxy signs it, set \
                     claude_ca_file to its CA certificate (PEM)",
                    self.url
                ))
            } else {
                self.unavailable(format!(
                    "cannot connect to {}: the TLS handshake failed ({chain}); check that \
                     claude_base_url is an https endpoint",
                    self.url
                ))
            }
        } else if e.is_connect() {
            self.unavailable(format!("cannot connect to {}: {chain}", self.url))
        } else {
            self.unavailable(format!("request to {} failed: {chain}", self.url))
        }
    }

    fn parse_answer(&self, answer: &Value, offered: &[ToolDef]) -> Result<Proposal> {
        let content = answer
            .get("content")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                self.protocol(format!(
                    "the answer has no content array: {}",
                    snippet(&answer.to_string())
                ))
            })?;
        let stop_reason = answer
            .get("stop_reason")
            .and_then(Value::as_str)
            .unwrap_or("");
        let text: Vec<&str> = content
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect();
        let text = text.join("\n");
        if stop_reason == "max_tokens" {
            return Err(self.protocol(format!(
                "the answer stopped at max_tokens ({}) before a complete tool call; raise \
                 claude_max_tokens",
                self.config.max_tokens
            )));
        }
        let Some(tool_use) = content
            .iter()
            .find(|b| b.get("type").and_then(Value::as_str) == Some("tool_use"))
        else {
            let text = if text.trim().is_empty() {
                "(no text)".to_string()
            } else {
                snippet(&text)
            };
            return Err(self.protocol(format!("stop_reason `{stop_reason}`, text only: {text}")));
        };
        let name = tool_use
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| self.protocol("a tool_use block without a name".to_string()))?;
        if !offered.iter().any(|t| t.name == name) {
            return Err(self.protocol(format!(
                "it called `{name}`, which was not offered this turn"
            )));
        }
        let arguments = tool_use.get("input").cloned().unwrap_or(Value::Null);
        if !arguments.is_object() {
            return Err(self.protocol(format!(
                "the input of tool_use `{name}` is not a JSON object: {}",
                snippet(&arguments.to_string())
            )));
        }
        let usage = answer.get("usage");
        let count = |key: &str| {
            usage
                .and_then(|u| u.get(key))
                .and_then(Value::as_u64)
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(0)
        };
        Ok(Proposal {
            call: ProposedCall {
                name: name.to_string(),
                arguments,
            },
            backend: self.name(),
            confidence: 1.0,
            choice: 1.0,
            prompt_tokens: count("input_tokens")
                .saturating_add(count("cache_creation_input_tokens"))
                .saturating_add(count("cache_read_input_tokens")),
            generated_tokens: count("output_tokens"),
            forward_passes: 0,
        })
    }
}

/// A 429/529 answer: how long the server asked to wait, and what it said.
struct Retry {
    wait: Option<Duration>,
    message: String,
}

#[async_trait::async_trait]
impl Backend for ClaudeBackend {
    fn name(&self) -> String {
        format!("claude:{}", self.config.model)
    }

    async fn propose(&self, req: &PlanRequest) -> Result<Proposal> {
        req.check_input()?;
        let offered = offered_tools(req);
        let body = self.request_body(req)?;
        let answer = match self.post(&body).await? {
            Ok(answer) => answer,
            Err(retry) => {
                let wait = retry.wait.unwrap_or(DEFAULT_RETRY_WAIT);
                if wait > self.config.max_retry_wait {
                    return Err(self.unavailable(format!(
                        "{} at {}; retry after {:.0}s",
                        retry.message,
                        self.url,
                        wait.as_secs_f64()
                    )));
                }
                tracing::info!(
                    backend = %self.name(),
                    wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    "{}; retrying once",
                    retry.message
                );
                tokio::time::sleep(wait).await;
                match self.post(&body).await? {
                    Ok(answer) => answer,
                    Err(again) => {
                        return Err(self.unavailable(format!(
                            "{} at {}, again after one retry; try later",
                            again.message, self.url
                        )))
                    }
                }
            }
        };
        self.parse_answer(&answer, &offered)
    }
}

/// The tools offered to Claude for `req`: [`PlanRequest::offered`], plus `respond` (from the
/// catalogue in `req.tools`, else [`respond_tool`]) when the offer lacks it, since every
/// answer must be a tool call.
pub fn offered_tools(req: &PlanRequest) -> Vec<ToolDef> {
    let mut tools: Vec<ToolDef> = req.offered().into_iter().cloned().collect();
    if !tools.iter().any(|t| t.name == "respond") {
        let respond = req
            .tools
            .iter()
            .find(|t| t.name == "respond")
            .cloned()
            .unwrap_or_else(respond_tool);
        tools.push(respond);
    }
    tools
}

/// The built-in `respond` tool (answers, questions, refusals), offered when the request's
/// tools lack it. Same schema as `tools/respond.json`.
pub fn respond_tool() -> ToolDef {
    ToolDef {
        name: "respond".to_string(),
        description: "Answer or ask back without acting.".to_string(),
        parameters: json!({
            "type": "object",
            "properties": {
                "text": {"type": "string", "minLength": 1, "maxLength": 4000}
            },
            "additionalProperties": false,
            "required": ["text"]
        }),
        effect: Some(steward_tools::Effect::None),
    }
}

/// The system prompt for `inventory`: [`SYSTEM_TEMPLATE`] with its inventory filled in.
pub fn system_prompt(inventory: &Inventory) -> String {
    let lines: Vec<String> = inventory
        .services
        .iter()
        .map(|s| {
            let mut line = format!("- {} ({})", one_line(&s.name), one_line(&s.kind));
            if !s.description.trim().is_empty() {
                line.push_str(": ");
                line.push_str(&one_line(&s.description));
            }
            line
        })
        .collect();
    let listing = if lines.is_empty() {
        "(none known)".to_string()
    } else {
        lines.join("\n")
    };
    SYSTEM_TEMPLATE.replace("{{inventory}}", &listing)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A `tool_use` block replayed to the model and not yet answered by a `tool_result`.
struct Pending {
    id: String,
    name: String,
}

/// Builds the Messages API `messages` from the conversation: roles alternate, every
/// `tool_use` is answered by a `tool_result` at the start of the next user message, the
/// conversation starts and ends with the user.
fn messages(turns: &[Turn]) -> Result<Vec<Value>> {
    if turns.is_empty() {
        return Err(Error::Input(
            "nothing to plan: the conversation has no turns".to_string(),
        ));
    }
    let mut out: Vec<(&'static str, Vec<Value>)> = Vec::new();
    let mut pending: Vec<Pending> = Vec::new();
    let mut calls = 0usize;
    for turn in turns {
        match turn {
            Turn::User { text } => {
                answer_pending(&mut out, &mut pending);
                push(&mut out, "user", json!({"type": "text", "text": text}));
            }
            Turn::Call { name, arguments } => {
                if out.is_empty() {
                    return Err(Error::Input(
                        "the conversation starts with a tool call; it must start with the \
                         person's request or an event"
                            .to_string(),
                    ));
                }
                let input = match arguments {
                    Value::Object(_) => arguments.clone(),
                    Value::Null => Value::Object(Map::new()),
                    other => {
                        return Err(Error::Input(format!(
                            "the earlier call of `{name}` has arguments that are not a JSON \
                             object: {other}"
                        )))
                    }
                };
                // A call after the user has spoken again starts a new assistant message;
                // calls already replayed in this one stay answered by the same user message.
                if out.last().is_some_and(|(role, _)| *role == "user") {
                    answer_pending(&mut out, &mut pending);
                }
                calls += 1;
                let id = format!("toolu_{calls}");
                push(
                    &mut out,
                    "assistant",
                    json!({"type": "tool_use", "id": id, "name": name, "input": input}),
                );
                pending.push(Pending {
                    id,
                    name: name.clone(),
                });
            }
            Turn::Untrusted {
                source,
                label,
                content,
            } => {
                let fenced = fence(*source, label, content);
                let answers = (*source == UntrustedSource::ToolResult)
                    .then(|| {
                        pending
                            .iter()
                            .position(|p| p.name == *label)
                            .or((!pending.is_empty()).then_some(0))
                    })
                    .flatten();
                match answers {
                    Some(i) => {
                        let call = pending.remove(i);
                        push(
                            &mut out,
                            "user",
                            json!({
                                "type": "tool_result",
                                "tool_use_id": call.id,
                                "content": fenced,
                            }),
                        );
                    }
                    None => {
                        answer_pending(&mut out, &mut pending);
                        push(&mut out, "user", json!({"type": "text", "text": fenced}));
                    }
                }
            }
        }
    }
    answer_pending(&mut out, &mut pending);
    Ok(out
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect())
}

/// Answers every pending `tool_use` with a `tool_result` saying no result was recorded (the
/// call was a `respond`, refused, awaiting approval, or not run), as the API requires.
fn answer_pending(out: &mut Vec<(&'static str, Vec<Value>)>, pending: &mut Vec<Pending>) {
    for call in pending.drain(..) {
        let note = if call.name == "respond" {
            "Shown to the person."
        } else {
            "No result was recorded for this call (refused, awaiting approval, or not run)."
        };
        push(
            out,
            "user",
            json!({"type": "tool_result", "tool_use_id": call.id, "content": note}),
        );
    }
}

/// Appends `block` to the last message when it has `role`, else starts a new message.
fn push(out: &mut Vec<(&'static str, Vec<Value>)>, role: &'static str, block: Value) {
    match out.last_mut() {
        Some((r, blocks)) if *r == role => blocks.push(block),
        _ => out.push((role, vec![block])),
    }
}

/// The `error.message` of an API error body, else the start of the body.
fn api_error_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            let err = v.get("error")?;
            let message = err.get("message")?.as_str()?.to_string();
            Some(match err.get("type").and_then(Value::as_str) {
                Some(kind) => format!("{kind}: {message}"),
                None => message,
            })
        })
        .unwrap_or_else(|| {
            if body.trim().is_empty() {
                "empty body".to_string()
            } else {
                snippet(body)
            }
        })
}

/// At most 300 characters of `s`, on one line.
fn snippet(s: &str) -> String {
    let line = one_line(s);
    match line.char_indices().nth(300) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line,
    }
}

/// The certificates of a `claude_ca_file`: one PEM certificate or a bundle of them.
fn load_ca_file(path: &Path) -> std::result::Result<Vec<reqwest::Certificate>, String> {
    let shown = path.display();
    let pem = std::fs::read(path)
        .map_err(|e| format!("cannot read the CA file {shown} (claude_ca_file): {e}"))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        format!(
            "the CA file {shown} (claude_ca_file) holds an invalid certificate: {}",
            error_chain(&e)
        )
    })?;
    if certs.is_empty() {
        return Err(format!(
            "the CA file {shown} (claude_ca_file) holds no PEM certificate \
             (-----BEGIN CERTIFICATE-----)"
        ));
    }
    Ok(certs)
}

/// The TLS error among the sources of `e`, if the request failed in the TLS layer.
fn tls_error(e: &reqwest::Error) -> Option<&native_tls::Error> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(tls) = s.downcast_ref::<native_tls::Error>() {
            return Some(tls);
        }
        source = s.source();
    }
    None
}

/// An error and its sources, `: `-separated.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn respond_after_call_is_answered_before_user_text() {
        let turns = vec![
            Turn::User {
                text: "restart it".into(),
            },
            Turn::Call {
                name: "respond".into(),
                arguments: json!({"text": "which service?"}),
            },
            Turn::User {
                text: "rentguy".into(),
            },
        ];
        let m = messages(&turns).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[2]["content"][0]["type"], "tool_result");
        assert_eq!(m[2]["content"][0]["tool_use_id"], "toolu_1");
        assert_eq!(m[2]["content"][1]["type"], "text");
    }
}
