//! The router and its handlers. Handlers authenticate, parse and hand over; they decide
//! nothing about what runs.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use steward_protocol::{Event, EventSource, EventStatus, Timestamp};

use crate::api::{ApiError, Refusal};
use crate::commit::{Answer, CommitError, Job};
use crate::db::now_ms;
use crate::hooks::{verify_signature, SignatureError};
use crate::state::AppState;
use crate::tokens::Verdict;
use crate::triggers::{Check, Submission};
use crate::{alertmanager, commit};

/// Largest request body accepted.
pub const MAX_BODY: usize = 1024 * 1024;

/// The principal a response was made for, picked up by the request log.
#[derive(Debug, Clone)]
struct Who(Arc<str>);

/// Steward's HTTP API.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/hooks/alertmanager", post(alertmanager_hook))
        .route("/hooks/{name}", post(signed_hook))
        .route("/v1/requests/{id}", get(request_view))
        .route("/openapi.json", get(openapi_json))
        .route("/metrics", get(metrics))
        .merge(crate::v1::routes())
        .merge(crate::console::routes(&state))
        .route_service(
            "/mcp",
            tower::Layer::layer(
                &middleware::from_fn_with_state(state.clone(), crate::mcp::authenticate_mcp),
                crate::mcp::service(&state),
            ),
        )
        .fallback(not_found)
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// One structured line per request: method, path, status, latency and principal.
async fn log_request(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let response = next.run(req).await;
    let principal = response
        .extensions()
        .get::<Who>()
        .map_or("-", |w| &*w.0)
        .to_string();
    tracing::info!(
        target: "steward_server::access",
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        latency_us = start.elapsed().as_micros() as u64,
        principal = %principal,
        "request"
    );
    response
}

async fn healthz() -> Response {
    Json(json!({"ok": true})).into_response()
}

async fn readyz(State(state): State<AppState>) -> Response {
    let mut checks = state.shared.readiness.check().await;
    checks.push(if state.shared.commit.is_running() {
        Check::ok("intake")
    } else {
        Check::failed("intake", "the group-commit writer has stopped")
    });
    let failing: Vec<&str> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.name.as_str())
        .collect();
    let status = if failing.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({"ready": failing.is_empty(), "failing": failing, "checks": checks});
    (status, Json(body)).into_response()
}

/// The OpenAPI 3.1 document of the HTTP API (public: it is the published contract).
async fn openapi_json() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        crate::openapi::document(),
    )
        .into_response()
}

/// Prometheus metrics, for any valid token (Prometheus scrapes with its own).
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    const SOURCE: &str = "metrics";
    let who = match authenticate(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return refuse(&state, SOURCE, None, r),
    };
    let incidents = steward_agent::incidents::IncidentStore::new(state.shared.store.clone());
    let (approvals, open) = tokio::join!(
        state.shared.orchestrator.list_approvals(false),
        incidents.list(true)
    );
    let text = state.shared.metrics.encode(
        approvals.ok().map(|a| a.len()),
        open.ok().map(|i| i.len()),
        state.shared.audit.appended(),
    );
    let content_type = HeaderValue::from_static(crate::metrics::CONTENT_TYPE);
    tag(
        ([(header::CONTENT_TYPE, content_type)], text).into_response(),
        Some(&who),
    )
}

async fn not_found() -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint").into_response()
}

/// Counts one refusal in the audit log's counters and in the metrics.
pub(crate) fn count_refusal(state: &AppState, source: &str, reason: &'static str) {
    state.shared.refusals.count(source, reason);
    state.shared.metrics.refused(source, reason);
}

/// Counts a refusal under `source` and answers it.
pub(crate) fn refuse(
    state: &AppState,
    source: &str,
    who: Option<&Arc<str>>,
    r: Refusal,
) -> Response {
    count_refusal(state, source, r.reason());
    tracing::debug!(source, reason = r.reason(), "request refused");
    let mut response = r.to_error().into_response();
    if let Refusal::RateLimited(secs) = r {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    tag(response, who)
}

pub(crate) fn tag(mut response: Response, who: Option<&Arc<str>>) -> Response {
    if let Some(w) = who {
        response.extensions_mut().insert(Who(w.clone()));
    }
    response
}

/// The bearer token's principal, or the refusal.
pub(crate) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Arc<str>, Refusal> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(Refusal::MissingToken);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or(Refusal::MissingToken)?;
    match state.shared.tokens.verify(token, Timestamp(now_ms())).await {
        Ok(Verdict::Valid { principal, .. }) => Ok(principal),
        Ok(Verdict::Unknown) => Err(Refusal::UnknownToken),
        Ok(Verdict::Expired) => Err(Refusal::ExpiredToken),
        Ok(Verdict::Revoked) => Err(Refusal::RevokedToken),
        Err(e) => {
            // Fail closed: a token that cannot be checked is not accepted.
            tracing::error!(error = %e, "token lookup failed");
            Err(Refusal::UnknownToken)
        }
    }
}

/// Reads the body up to [`MAX_BODY`]; a longer one is refused without reading it all.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
) -> Result<axum::body::Bytes, Refusal> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(Refusal::BodyTooLarge);
    }
    let limited = http_body_util::Limited::new(body, MAX_BODY);
    match http_body_util::BodyExt::collect(limited).await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Refusal::BodyTooLarge),
        Err(e) => Err(Refusal::MalformedJson(format!(
            "could not read the body: {e}"
        ))),
    }
}

fn parse_json(bytes: &[u8]) -> Result<Value, Refusal> {
    serde_json::from_slice(bytes)
        .map_err(|e| Refusal::MalformedJson(format!("malformed JSON: {e}")))
}

/// The engine's or the store's own message was logged by the writer; the client only
/// learns whether to retry.
fn commit_failed(e: CommitError) -> Response {
    let message = match e {
        CommitError::Closed => "the server is shutting down; retry later",
        CommitError::Unavailable(_) => "the request could not be recorded; retry later",
    };
    ApiError::unavailable(message).into_response()
}

fn accepted(answer: Value) -> Response {
    (StatusCode::ACCEPTED, Json(answer)).into_response()
}

async fn alertmanager_hook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    const SOURCE: &str = "alertmanager";
    let who = match authenticate(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return refuse(&state, SOURCE, None, r),
    };
    let who = Some(&who);
    if who.map(|w| &**w) != Some("webhook:alertmanager") {
        let r = Refusal::Forbidden("this endpoint admits only webhook:alertmanager".into());
        return refuse(&state, SOURCE, who, r);
    }
    let events = match read_body(&headers, body)
        .await
        .and_then(|b| parse_json(&b))
        .and_then(|v| alertmanager::parse(&v).map_err(Refusal::InvalidPayload))
    {
        Ok(events) => events,
        Err(r) => return refuse(&state, SOURCE, who, r),
    };
    let job = Job {
        submission: Submission {
            request_id: uuid::Uuid::new_v4().to_string(),
            principal: "webhook:alertmanager".into(),
            events,
        },
        source: SOURCE.into(),
        delivery: None,
    };
    match state.shared.commit.submit(job).await {
        Ok(Answer::Accepted(a) | Answer::Replayed(a)) => tag(accepted(a), who),
        Err(e) => tag(commit_failed(e), who),
    }
}

/// A `Steward-Delivery` id: 1 to 200 visible ASCII characters.
fn delivery_id(headers: &HeaderMap) -> Result<String, Refusal> {
    headers
        .get("steward-delivery")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|d| !d.is_empty() && d.len() <= 200 && d.bytes().all(|b| b.is_ascii_graphic()))
        .map(String::from)
        .ok_or(Refusal::MissingDelivery)
}

async fn signed_hook(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // Unknown names share one counter: request data never becomes a counter key.
    let Some(def) = state.shared.hooks.get(&name) else {
        let who = authenticate(&state, &headers).await.ok();
        return refuse(&state, "hook:unknown", who.as_ref(), Refusal::UnknownHook);
    };
    let source = format!("hook:{name}");
    let who = match authenticate(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return refuse(&state, &source, None, r),
    };
    let principal = format!("webhook:{name}");
    let who = Some(&who);
    if who.map(|w| &**w) != Some(principal.as_str()) {
        let r = Refusal::Forbidden(format!("this hook admits only {principal}"));
        return refuse(&state, &source, who, r);
    }
    let checked =
        async {
            let bytes = read_body(&headers, body).await?;
            let delivery = delivery_id(&headers)?;
            let secrets = state.shared.secrets.get(&name).map_err(|e| {
                tracing::error!(hook = %name, error = %e, "reading the hook's secret failed");
                Refusal::BadSignature("the hook's signing secret cannot be read".into())
            })?;
            if secrets.is_empty() {
                return Err(Refusal::BadSignature(format!(
                    "hook {name} has no signing secret yet (`steward hooks secret {name}`)"
                )));
            }
            let header = headers
                .get("steward-signature")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            match verify_signature(header, &secrets, &bytes, now_ms().div_euclid(1000)) {
                Ok(()) => {}
                Err(SignatureError::Stale) => return Err(Refusal::StaleTimestamp),
                Err(SignatureError::Malformed) => return Err(Refusal::BadSignature(
                    "missing or malformed Steward-Signature: expected t=<unix seconds>,v1=<hex \
                     HMAC-SHA256 of \"<t>.\" + body>"
                        .into(),
                )),
                Err(SignatureError::Mismatch) => {
                    return Err(Refusal::BadSignature(
                        "no v1 signature matches the hook's secret".into(),
                    ))
                }
            }
            let value = parse_json(&bytes)?;
            let extracted = def.extract(&value).map_err(Refusal::InvalidPayload)?;
            Ok((delivery, extracted))
        };
    let (delivery, extracted) = match checked.await {
        Ok(x) => x,
        Err(r) => return refuse(&state, &source, who, r),
    };
    let event = Event {
        source: EventSource::Hook,
        name: name.clone(),
        status: EventStatus::Firing,
        key: delivery.clone(),
        labels: Default::default(),
        fields: extracted.fields,
        text: extracted.text,
        at: Timestamp(now_ms()),
    };
    let job = Job {
        submission: Submission {
            request_id: uuid::Uuid::new_v4().to_string(),
            principal,
            events: vec![event],
        },
        source: source.clone(),
        delivery: Some(format!("{name}\n{delivery}")),
    };
    match state.shared.commit.submit(job).await {
        Ok(Answer::Accepted(a)) => tag(accepted(a), who),
        Ok(Answer::Replayed(a)) => {
            state
                .shared
                .refusals
                .count(&source, Refusal::ReplayedDelivery.reason());
            let mut response = accepted(a);
            response
                .headers_mut()
                .insert("steward-replayed", HeaderValue::from_static("true"));
            tag(response, who)
        }
        Err(e) => tag(commit_failed(e), who),
    }
}

/// What became of a webhook or alert request: its incidents and their state. Shown to
/// operators and to the principal that made it.
#[utoipa::path(get, path = "/v1/requests/{id}", operation_id = "getRequest", tag = "requests",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The request id a hook or alert POST answered")),
    responses(
        (status = 200, description = "The request", body = Object),
        (status = 403, description = "Neither an operator nor its maker", body = crate::v1::types::ErrorBody),
        (status = 404, description = "No such request", body = crate::v1::types::ErrorBody),
    ))]
pub(crate) async fn request_view(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    const SOURCE: &str = "requests";
    let who = match authenticate(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return refuse(&state, SOURCE, None, r),
    };
    let who = Some(&who);
    let principal = who.map_or("", |w| &**w);
    if !principal.starts_with("operator:") {
        match commit::maker(&state.shared.store, &id).await {
            Ok(Some(maker)) if maker == principal => {}
            Ok(Some(_)) => {
                let r = Refusal::Forbidden(
                    "a request is shown to operators and to the principal that made it".into(),
                );
                return refuse(&state, SOURCE, who, r);
            }
            Ok(None) => return refuse(&state, SOURCE, who, Refusal::NotFound),
            Err(e) => {
                tracing::error!(error = %e, "looking up a request's maker failed");
                return tag(ApiError::internal().into_response(), who);
            }
        }
    }
    match state.shared.triggers.request(&id).await {
        Ok(Some(view)) => tag(Json(view).into_response(), who),
        Ok(None) => refuse(&state, SOURCE, who, Refusal::NotFound),
        Err(e) => {
            tracing::error!(error = %e, request = %id, "the trigger engine could not show a request");
            tag(
                ApiError::unavailable("the trigger engine is unavailable").into_response(),
                who,
            )
        }
    }
}
