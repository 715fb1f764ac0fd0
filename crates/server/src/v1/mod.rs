//! The `/v1` HTTP API. Every handler authenticates the bearer token (the principal it is
//! bound to), takes one request from that token's rate limit, parses, and hands over to the
//! orchestrator, the same request path the CLI takes: calls are validated, vetted by Cedar,
//! approved where policy says so, run and audited there, never here.
//!
//! Views that are not tool calls (status, incidents, approvals, audit verify) are shown to
//! whoever policy lets call the read tool showing the same data (see
//! [`Caller::unless_may_read`]).

pub(crate) mod approvals;
pub(crate) mod audit;
pub(crate) mod calls;
pub(crate) mod tools;
pub mod types;
pub(crate) mod views;

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde_json::Value;
use steward_policy::Principal;
use steward_protocol::{Decision, Origin};

use crate::api::Refusal;
use crate::app::{authenticate, read_body, tag};
use crate::state::AppState;

/// Refusals of `/v1` are counted under this source.
pub(crate) const SOURCE: &str = "api";

/// What `/v1/status` shows of the platform; `steward serve` reads Docker and Traefik.
#[async_trait]
pub trait PlatformView: Send + Sync + Debug {
    /// The managed containers with health, release, image and route.
    async fn status(&self) -> Result<Value, String>;
}

/// The `/v1` routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/tools", get(tools::list))
        .route("/v1/tools/{name}", get(tools::one))
        .route("/v1/calls", post(calls::call))
        .route("/v1/approvals", get(approvals::list))
        .route("/v1/approvals/{id}/approve", post(approvals::approve))
        .route("/v1/approvals/{id}/deny", post(approvals::deny))
        .route("/v1/audit/search", get(audit::search))
        .route("/v1/audit/verify", get(audit::verify))
        .route("/v1/audit/checkpoint", post(audit::checkpoint))
        .route("/v1/status", get(views::status))
        .route("/v1/incidents", get(views::incidents))
        .route("/v1/incidents/{id}", get(views::incident))
        .route("/v1/origin/check", post(views::origin_check))
        .route("/v1/origin/compare", post(views::origin_compare))
        .route("/v1/plan", post(crate::chat::plan))
        .route("/v1/chat/{session}/messages", post(crate::chat::message))
}

/// The authenticated caller of a `/v1` request, admitted by its rate limit.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub principal: Principal,
    pub label: Arc<str>,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let label = authenticate(state, &parts.headers)
            .await
            .map_err(|r| refuse(state, None, r))?;
        if let Err(wait) = state.shared.limiter.admit(&label) {
            return Err(refuse(state, Some(&label), Refusal::RateLimited(wait)));
        }
        let principal = Principal::parse(&label).map_err(|e| {
            // Tokens are only issued for valid principals; a stored one that no longer
            // parses is refused, not guessed at.
            tracing::error!(principal = %label, error = %e, "a token's principal does not parse");
            refuse(state, Some(&label), Refusal::UnknownToken)
        })?;
        parts.extensions.insert(label.clone());
        Ok(Caller { principal, label })
    }
}

impl Caller {
    /// The refusal to answer when policy does not let this caller call the read tool `tool`
    /// (with `args`): the test for views showing the same data (403, counted).
    pub fn unless_may_read(
        &self,
        state: &AppState,
        tool: &str,
        args: Value,
        what: &str,
    ) -> Option<Response> {
        let why = read_denied(state, &self.principal, tool, args)?;
        Some(self.refuse(
            state,
            Refusal::Forbidden(format!("{what} is shown to {why}")),
        ))
    }

    pub fn refuse(&self, state: &AppState, r: Refusal) -> Response {
        refuse(state, Some(&self.label), r)
    }

    /// Tags a response with the caller for the request log.
    pub fn answer(&self, response: Response) -> Response {
        tag(response, Some(&self.label))
    }
}

/// Why policy does not let `principal` call the read tool `tool` (with `args`), or `None`
/// when it does: views that are not tool calls (the API's and the console's) show their
/// data to whoever may call the read tool showing the same. Fails closed.
pub(crate) fn read_denied(
    state: &AppState,
    principal: &Principal,
    tool: &str,
    args: Value,
) -> Option<String> {
    let decision = state
        .shared
        .orchestrator
        .permits(principal, Origin::Api, tool, args);
    match decision {
        Ok(Decision::Allow { .. } | Decision::NeedsApproval { .. }) => None,
        Ok(Decision::Deny { reason, .. }) => {
            Some(format!("principals policy lets call {tool}: {reason}"))
        }
        Err(e) => {
            tracing::error!(tool, error = %e.message, "a view's policy check could not be built");
            Some(format!("principals policy lets call {tool}"))
        }
    }
}

/// Counts a `/v1` refusal and answers it.
fn refuse(state: &AppState, who: Option<&Arc<str>>, r: Refusal) -> Response {
    crate::app::refuse(state, SOURCE, who, r)
}

/// A JSON request body of type `T`: `application/json`, at most [`crate::MAX_BODY`] bytes,
/// well-formed, with no field `T` does not know. Each failure is a counted refusal naming
/// what is wrong.
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub T);

/// Parses `req`'s body; `None` for no body at all.
async fn read_json<T: DeserializeOwned>(
    req: Request,
    state: &AppState,
) -> Result<Option<T>, Response> {
    let who = req.extensions().get::<Arc<str>>().cloned();
    let (parts, body) = req.into_parts();
    let bytes = read_body(&parts.headers, body)
        .await
        .map_err(|r| refuse(state, who.as_ref(), r))?;
    if bytes.is_empty() {
        return Ok(None);
    }
    let json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(refuse(state, who.as_ref(), Refusal::UnsupportedMediaType));
    }
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        refuse(
            state,
            who.as_ref(),
            Refusal::MalformedJson(format!("malformed JSON: {e}")),
        )
    })?;
    let de = serde_path_to_error::deserialize::<_, T>(value);
    de.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let message = if path == "." {
            format!("invalid body: {inner}")
        } else {
            format!("invalid body at `{path}`: {inner}")
        };
        refuse(state, who.as_ref(), Refusal::InvalidPayload(message))
    })
    .map(Some)
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for JsonBody<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let who = req.extensions().get::<Arc<str>>().cloned();
        match read_json(req, state).await? {
            Some(t) => Ok(JsonBody(t)),
            None => Err(refuse(
                state,
                who.as_ref(),
                Refusal::MalformedJson("the body is empty: send a JSON object".into()),
            )),
        }
    }
}

/// Like [`JsonBody`], but a request with no body at all stands for `T::default()` (an
/// approval without a reason).
#[derive(Debug)]
pub(crate) struct OptionalJsonBody<T>(pub T);

impl<T: DeserializeOwned + Default + Send> FromRequest<AppState> for OptionalJsonBody<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let body = read_json(req, state).await?;
        Ok(OptionalJsonBody(body.unwrap_or_default()))
    }
}
