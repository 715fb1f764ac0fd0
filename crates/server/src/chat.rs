//! Natural language over HTTP: `POST /v1/plan` (text to a proposal, its decision and
//! dry-run; runs nothing) and `POST /v1/chat/{session}/messages` (one turn of a kept
//! conversation, answered as Server-Sent Events while it happens: the answer's tokens, each
//! proposed step, approval requests and results). Both play the same conversation code as
//! `steward chat` (`steward_agent::conversation`), as the token's principal.
//!
//! The planner model and the live inventory come through [`PlannerSource`], so this crate
//! loads no model and reads no Docker; `steward serve` loads the model on first use.

use std::collections::HashSet;
use std::convert::Infallible;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream::Stream;
use serde::Deserialize;
use serde_json::{json, Value};
use steward_agent::conversation::{Conversation, Event, Means, Mode};
use steward_agent::Outcome;
use steward_audit::{on_pool, sql_for, Store};
use steward_llm::{Backend, Inventory, TextStream, Turn};
use steward_policy::Principal;
use steward_protocol::Origin;
use utoipa::ToSchema;

use crate::api::{ApiError, Refusal};
use crate::db::now_ms;
use crate::state::AppState;
use crate::v1::types::{CallAnswer, ErrorBody};
use crate::v1::{Caller, JsonBody};

/// Where the planner and what it should know about come from.
#[async_trait]
pub trait PlannerSource: Send + Sync + Debug {
    /// The planner backend (loaded on first use; later calls share it).
    async fn planner(&self) -> Result<Arc<dyn Backend>, String>;
    /// The services and tenants the planner may name, as they are now.
    async fn inventory(&self) -> Result<Inventory, String>;
}

/// A process without a planner model (benches, tests of the rest): `/v1/plan` and chat
/// answer 503 naming why.
#[derive(Debug)]
pub struct NoPlanner;

#[async_trait]
impl PlannerSource for NoPlanner {
    async fn planner(&self) -> Result<Arc<dyn Backend>, String> {
        Err("no planner model in this process".into())
    }
    async fn inventory(&self) -> Result<Inventory, String> {
        Ok(Inventory::default())
    }
}

/// `POST /v1/plan` and `POST /v1/chat/{session}/messages`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageBody {
    /// What the person wrote.
    pub text: String,
}

/// Longest message accepted, in bytes.
const MAX_TEXT: usize = 4000;

/// The chat sessions one process is playing a turn of (one turn at a time per session).
#[derive(Debug, Default)]
pub(crate) struct Busy(Mutex<HashSet<String>>);

impl Busy {
    fn claim(&self, id: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.to_string())
    }

    fn release(&self, id: &str) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
    }
}

fn valid_session(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn check_text(text: &str) -> Result<(), Refusal> {
    if text.trim().is_empty() {
        return Err(Refusal::InvalidPayload("empty message: at `text`".into()));
    }
    if text.len() > MAX_TEXT {
        return Err(Refusal::InvalidPayload(format!(
            "the message is over {MAX_TEXT} bytes: at `text`"
        )));
    }
    Ok(())
}

/// What a conversation needs from the source, or the 503 to answer.
async fn means_parts(
    state: &AppState,
) -> Result<(Arc<dyn Backend>, Inventory, Vec<steward_llm::ToolDef>), Response> {
    let source = &state.shared.planner;
    let planner = source.planner().await.map_err(|e| {
        tracing::error!(error = %e, "the planner could not be loaded");
        ApiError::unavailable(format!("the planner is unavailable: {e}")).into_response()
    })?;
    let inventory = source.inventory().await.map_err(|e| {
        tracing::error!(error = %e, "the inventory could not be read");
        ApiError::unavailable("the inventory could not be read (is Docker up?)").into_response()
    })?;
    let tools = steward_llm::eval::ToolSet::catalogue().with_respond().defs;
    Ok((planner, inventory, tools))
}

/// One event as the stream and `/v1/plan` show it: an outcome in the API's call shape.
fn event_json(e: &Event) -> (&'static str, Value) {
    match e {
        Event::Proposed {
            tool,
            arguments,
            backend,
            confidence,
            ms,
        } => (
            "proposed",
            json!({"tool": tool, "arguments": arguments, "backend": backend,
                   "confidence": confidence, "ms": ms}),
        ),
        Event::Invalid { message } => ("invalid", json!({ "message": message })),
        Event::Outcome { tool, outcome } => {
            let answer = serde_json::to_value(CallAnswer::of(tool, outcome)).unwrap_or_default();
            let name = if matches!(outcome, Outcome::PendingApproval { .. }) {
                "approval"
            } else {
                "result"
            };
            (name, answer)
        }
        Event::Answer { text } => ("answer", json!({ "text": text })),
        Event::BudgetSpent { steps } => ("budget_spent", json!({ "steps": steps })),
    }
}

/// Turns text into a proposal, its policy decision and dry-run; nothing runs.
#[utoipa::path(post, path = "/v1/plan", operation_id = "plan", tag = "chat",
    security(("bearer" = [])),
    request_body = MessageBody,
    responses(
        (status = 200, description = "The events: proposed, then result (planned, with decision and plan) or invalid, or an answer", body = Object),
        (status = 400, description = "Empty or oversized text", body = ErrorBody),
        (status = 503, description = "The planner model or the inventory is unavailable", body = ErrorBody),
    ))]
pub(crate) async fn plan(
    caller: Caller,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<MessageBody>,
) -> Response {
    if let Err(r) = check_text(&body.text) {
        return caller.refuse(&state, r);
    }
    let (planner, inventory, tools) = match means_parts(&state).await {
        Ok(p) => p,
        Err(r) => return caller.answer(r),
    };
    let mut conv = Conversation::new(caller.principal.clone(), Origin::Chat);
    let means = Means {
        planner: planner.as_ref(),
        orchestrator: &state.shared.orchestrator,
        tools: &tools,
        inventory: &inventory,
        stream: None,
    };
    match conv
        .turn(&body.text, means, Mode::PlanOnly, &mut |_| {})
        .await
    {
        Ok(events) => {
            let shown: Vec<Value> = events
                .iter()
                .map(|e| {
                    let (kind, mut v) = event_json(e);
                    v["event"] = kind.into();
                    v
                })
                .collect();
            caller.answer(Json(json!({ "events": shown })).into_response())
        }
        Err(e) => {
            tracing::error!(error = %e, "planning failed");
            caller.answer(
                ApiError::unavailable("planning failed; the server log has why").into_response(),
            )
        }
    }
}

/// One turn of chat session `session`, streamed as Server-Sent Events: `token` (a piece of
/// the answer as the model writes it), `proposed`, `approval` (a call waiting for a person:
/// its id and how to approve), `result`, `invalid`, `answer`, then `done` (or `error`). The
/// session's history is kept in the state store; it belongs to the principal that opened it.
#[utoipa::path(post, path = "/v1/chat/{session}/messages", operation_id = "chat", tag = "chat",
    security(("bearer" = [])),
    params(("session" = String, Path, description = "Session id: 1 to 64 of a-z, A-Z, 0-9, - and _; a new one starts a conversation")),
    request_body = MessageBody,
    responses(
        (status = 200, description = "text/event-stream of the turn's events", content_type = "text/event-stream", body = String),
        (status = 400, description = "Bad session id, empty or oversized text", body = ErrorBody),
        (status = 403, description = "The session belongs to another principal", body = ErrorBody),
        (status = 409, description = "A turn of this session is still running", body = ErrorBody),
        (status = 503, description = "The planner model or the inventory is unavailable", body = ErrorBody),
    ))]
pub(crate) async fn message(
    caller: Caller,
    State(state): State<AppState>,
    Path(session): Path<String>,
    JsonBody(body): JsonBody<MessageBody>,
) -> Response {
    match stream_turn(
        &state,
        &caller.principal,
        &caller.label,
        &session,
        body.text,
    )
    .await
    {
        Ok(sse) => caller.answer(sse),
        Err(Reject::Refused(r)) => caller.refuse(&state, r),
        Err(Reject::Answer(r)) => caller.answer(r),
    }
}

/// Why a turn did not start.
pub(crate) enum Reject {
    /// Counted and answered like every refusal.
    Refused(Refusal),
    /// Answered as is (busy, unavailable).
    Answer(Response),
}

/// Starts one turn of `session` as `principal` and answers its events as a stream. The
/// console's chat shares it.
pub(crate) async fn stream_turn(
    state: &AppState,
    principal: &Principal,
    label: &str,
    session: &str,
    text: String,
) -> Result<Response, Reject> {
    if !valid_session(session) {
        return Err(Reject::Refused(Refusal::InvalidPayload(
            "a session id is 1 to 64 of a-z, A-Z, 0-9, - and _: at `session`".into(),
        )));
    }
    check_text(&text).map_err(Reject::Refused)?;
    let store = state.shared.store.clone();
    let turns = match load(&store, session).await {
        Ok(Some((owner, _))) if owner != label => {
            return Err(Reject::Refused(Refusal::Forbidden(
                "this chat session belongs to another principal".into(),
            )))
        }
        Ok(Some((_, turns))) => turns,
        Ok(None) => Vec::new(),
        Err(e) => {
            tracing::error!(error = %e, "reading a chat session failed");
            return Err(Reject::Answer(ApiError::internal().into_response()));
        }
    };
    if !state.shared.chat_busy.claim(session) {
        let busy = ApiError::new(
            StatusCode::CONFLICT,
            "busy",
            "a turn of this session is still running; wait for its `done` event",
        );
        return Err(Reject::Answer(busy.into_response()));
    }
    let parts = means_parts(state).await;
    let (planner, inventory, tools) = match parts {
        Ok(p) => p,
        Err(r) => {
            state.shared.chat_busy.release(session);
            return Err(Reject::Answer(r));
        }
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<(&'static str, Value)>();
    let state = state.clone();
    let session = session.to_string();
    let label = label.to_string();
    let mut conv = Conversation::new(principal.clone(), Origin::Chat);
    conv.turns = turns;
    tokio::spawn(async move {
        let tokens = tx.clone();
        let stream = TextStream(Arc::new(move |piece: &str| {
            let _ = tokens.send(("token", json!({ "text": piece })));
        }));
        let means = Means {
            planner: planner.as_ref(),
            orchestrator: &state.shared.orchestrator,
            tools: &tools,
            inventory: &inventory,
            stream: Some(&stream),
        };
        let events = tx.clone();
        let mut on = move |e: &Event| {
            let _ = events.send(event_json(e));
        };
        let result = conv.turn(&text, means, Mode::Execute, &mut on).await;
        // The history is kept whatever the client does with the stream.
        if let Err(e) = save(&state.shared.store, &session, &label, &conv.turns).await {
            tracing::error!(error = %e, session, "saving a chat session failed");
        }
        state.shared.chat_busy.release(&session);
        let _ = match result {
            Ok(_) => tx.send(("done", json!({ "session": session }))),
            Err(e) => {
                tracing::error!(error = %e, session, "a chat turn failed");
                tx.send((
                    "error",
                    json!({ "message": "the turn failed; the server log has why" }),
                ))
            }
        };
    });
    Ok(sse(rx).into_response())
}

fn sse(
    rx: tokio::sync::mpsc::UnboundedReceiver<(&'static str, Value)>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let events = futures_util::stream::unfold(rx, |mut rx| async move {
        let (kind, data) = rx.recv().await?;
        Some((
            Ok(SseEvent::default().event(kind).data(data.to_string())),
            rx,
        ))
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

async fn load(store: &Store, id: &str) -> Result<Option<(String, Vec<Turn>)>, sqlx::Error> {
    let sql = sql_for(
        store,
        "SELECT principal, turns FROM chat_sessions WHERE id = $1",
    );
    let row = on_pool!(store, pool => {
        sqlx::query_as::<_, (String, String)>(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await?
    });
    Ok(row.map(|(principal, turns)| (principal, serde_json::from_str(&turns).unwrap_or_default())))
}

async fn save(store: &Store, id: &str, principal: &str, turns: &[Turn]) -> Result<(), sqlx::Error> {
    let text = serde_json::to_string(turns).unwrap_or_else(|_| "[]".into());
    let sql = sql_for(
        store,
        "INSERT INTO chat_sessions (id, principal, turns, updated_at_ms) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (id) DO UPDATE SET turns = excluded.turns, updated_at_ms = excluded.updated_at_ms",
    );
    on_pool!(store, pool => {
        sqlx::query(&sql)
            .bind(id)
            .bind(principal)
            .bind(&text)
            .bind(now_ms())
            .execute(pool)
            .await?;
    });
    Ok(())
}
