//! Which planner answers: the local model only, Claude only, or the local model first with
//! Claude when the local answer is unusable (no tool call, a call that fails validation, or
//! confidence below a threshold).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::claude::{offered_tools, API_KEY_ENV};
use crate::plan::{Backend, PlanRequest, Proposal, ProposedCall, ToolDef};
use crate::{Error, Result};

/// The confidence below which `local-first` asks Claude, unless the route names one.
pub const DEFAULT_MIN_CONFIDENCE: f32 = 0.5;

/// The routing rule, configured as `local`, `claude`, `local-first` or `local-first:<0..1>`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Route {
    #[default]
    LocalOnly,
    ClaudeOnly,
    /// Local first; Claude when the local answer has no usable call, fails validation, or its
    /// confidence is below `min_confidence`.
    LocalFirst {
        min_confidence: f32,
    },
}

impl FromStr for Route {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let bad = || {
            Error::Input(format!(
                "unknown planner route `{s}`; use `local`, `claude`, `local-first` or \
                 `local-first:<min confidence between 0 and 1>` (e.g. `local-first:0.5`)"
            ))
        };
        match s.to_ascii_lowercase().as_str() {
            "local" | "local-only" => Ok(Route::LocalOnly),
            "claude" | "claude-only" => Ok(Route::ClaudeOnly),
            "local-first" => Ok(Route::LocalFirst {
                min_confidence: DEFAULT_MIN_CONFIDENCE,
            }),
            other => {
                let threshold = other.strip_prefix("local-first:").ok_or_else(bad)?;
                let min_confidence: f32 = threshold.trim().parse().map_err(|_| bad())?;
                if !(0.0..=1.0).contains(&min_confidence) {
                    return Err(bad());
                }
                Ok(Route::LocalFirst { min_confidence })
            }
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::LocalOnly => f.write_str("local"),
            Route::ClaudeOnly => f.write_str("claude"),
            Route::LocalFirst { min_confidence } => write!(f, "local-first:{min_confidence}"),
        }
    }
}

/// A [`Backend`] that routes each request to the local model, Claude, or both in turn.
#[derive(Debug, Clone)]
pub struct Router {
    pub route: Route,
    pub local: Option<Arc<dyn Backend>>,
    pub claude: Option<Arc<dyn Backend>>,
}

impl Router {
    pub fn new(
        route: Route,
        local: Option<Arc<dyn Backend>>,
        claude: Option<Arc<dyn Backend>>,
    ) -> Self {
        Self {
            route,
            local,
            claude,
        }
    }

    /// Whether the configured backends can serve the route; the same error `propose` would
    /// give, for start-up checks (`steward doctor`).
    pub fn check(&self) -> Result<()> {
        match self.route {
            Route::LocalOnly => self.need_local().map(|_| ()),
            Route::ClaudeOnly => self.need_claude().map(|_| ()),
            Route::LocalFirst { .. } => {
                if self.local.is_none() && self.claude.is_none() {
                    self.need_local().map(|_| ())
                } else {
                    Ok(())
                }
            }
        }
    }

    fn need_local(&self) -> Result<&Arc<dyn Backend>> {
        self.local.as_ref().ok_or_else(|| Error::Unavailable {
            backend: "local".to_string(),
            message: format!(
                "planner route `{}` needs the local model, which is not configured (check \
                 models_dir and `steward doctor`)",
                self.route
            ),
        })
    }

    fn need_claude(&self) -> Result<&Arc<dyn Backend>> {
        self.claude.as_ref().ok_or_else(|| Error::Unavailable {
            backend: "claude".to_string(),
            message: format!(
                "planner route `{}` needs Claude, which is not configured; set the \
                 {API_KEY_ENV} environment variable (or `claude_api_key` in the steward \
                 config), or use route `local`",
                self.route
            ),
        })
    }
}

#[async_trait::async_trait]
impl Backend for Router {
    fn name(&self) -> String {
        let part = |b: &Option<Arc<dyn Backend>>| {
            b.as_ref().map_or_else(|| "none".to_string(), |b| b.name())
        };
        format!(
            "router({}; local={}; claude={})",
            self.route,
            part(&self.local),
            part(&self.claude)
        )
    }

    async fn warm(&self, req: &PlanRequest) -> Result<()> {
        match &self.local {
            Some(local) if self.route != Route::ClaudeOnly => local.warm(req).await,
            _ => Ok(()),
        }
    }

    async fn propose(&self, req: &PlanRequest) -> Result<Proposal> {
        let min_confidence = match self.route {
            Route::LocalOnly => return self.need_local()?.propose(req).await,
            Route::ClaudeOnly => return self.need_claude()?.propose(req).await,
            Route::LocalFirst { min_confidence } => min_confidence,
        };
        let Some(local) = &self.local else {
            let claude = self.need_claude()?;
            let mut p = claude.propose(req).await?;
            p.backend = format!("{} (local not configured)", p.backend);
            return Ok(p);
        };
        let local_name = local.name();
        // What Claude would be offered too: this turn's tools, `respond` always among them.
        let offered = offered_tools(req);
        let (local_result, reason) = match local.propose(req).await {
            Ok(p) => match validate_call(&offered, &p.call) {
                Err(why) => {
                    let reason = format!("{local_name} proposed an invalid call: {why}");
                    (Ok(p), reason)
                }
                Ok(()) if p.confidence < min_confidence => {
                    let reason = format!(
                        "{local_name} confidence {:.2} < {min_confidence}",
                        p.confidence
                    );
                    (Ok(p), reason)
                }
                Ok(()) => return Ok(p),
            },
            // No usable call, or the local model cannot run: Claude may still answer.
            Err(e @ (Error::Protocol { .. } | Error::Unavailable { .. } | Error::Model { .. })) => {
                let reason = e.to_string();
                (Err(e), reason)
            }
            Err(e) => return Err(e),
        };
        let Some(claude) = &self.claude else {
            tracing::debug!(%reason, "no Claude backend configured; keeping the local answer");
            return local_result;
        };
        tracing::info!(%reason, "falling back to Claude");
        match claude.propose(req).await {
            Ok(mut p) => {
                p.backend = format!("{} (fallback: {reason})", p.backend);
                Ok(p)
            }
            // Fail closed: a local answer that was not good enough is not used after all.
            Err(Error::Unavailable { backend, message }) => Err(Error::Unavailable {
                backend,
                message: format!("{message} (asked as fallback: {reason})"),
            }),
            Err(Error::Protocol { backend, message }) => Err(Error::Protocol {
                backend,
                message: format!("{message} (asked as fallback: {reason})"),
            }),
            Err(e) => Err(e),
        }
    }
}

/// Checks a proposed call against the tools offered (for a [`PlanRequest`], pass
/// [`crate::claude::offered_tools`], as the router does): the name must be one of them and the
/// arguments a JSON object valid against its `parameters` schema (the draft its `$schema`
/// names, else 2020-12). The error says what is wrong, for logs and for the fallback note.
pub fn validate_call(tools: &[ToolDef], call: &ProposedCall) -> std::result::Result<(), String> {
    let Some(tool) = tools.iter().find(|t| t.name == call.name) else {
        let offered: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
        return Err(format!(
            "`{}` is not among the offered tools ({})",
            call.name,
            offered.join(", ")
        ));
    };
    if !call.arguments.is_object() {
        return Err(format!(
            "the arguments of `{}` are not a JSON object",
            call.name
        ));
    }
    let validator = jsonschema::validator_for(&tool.parameters)
        .map_err(|e| format!("the schema of `{}` is not usable: {e}", call.name))?;
    let problems: Vec<String> = validator
        .iter_errors(&call.arguments)
        .take(3)
        .map(|e| {
            let at = e.instance_path.to_string();
            let at = if at.is_empty() { "/".to_string() } else { at };
            format!("at {at}: {e}")
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "invalid arguments for `{}`: {}",
            call.name,
            problems.join("; ")
        ))
    }
}
