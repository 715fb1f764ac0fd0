//! The web console, served by `steward serve` at `/console`: server-rendered HTML, one
//! stylesheet, and one small script for the chat page's streamed answers. A person signs in with a token (exchanged for a session
//! cookie) and sees the platform, answers approvals, follows incidents and searches the
//! audit log, as the token's principal: every page asks the same policy the API does, and
//! an approval goes through the orchestrator like any other.
//!
//! Every response carries a strict Content-Security-Policy; every form carries the
//! session's CSRF token, and a POST from another site is refused.

mod html;
mod pages;
pub mod session;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use steward_policy::Principal;

use crate::state::AppState;
pub use html::esc;
use session::Session;

/// Refusals in the console are counted under this source.
const SOURCE: &str = "console";

/// The policy every console page is sent with: only this origin's stylesheet and script
/// (no inline script, no eval), fetches only to this origin, no frames, forms only here.
pub const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; \
     connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

pub(crate) fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/console", get(pages::overview))
        .route("/console/login", get(pages::login_form).post(pages::login))
        .route("/console/logout", post(pages::logout))
        .route("/console/approvals", get(pages::approvals))
        .route("/console/approvals/{id}/{answer}", post(pages::answer))
        .route("/console/incidents", get(pages::incidents))
        .route("/console/incidents/{id}", get(pages::incident))
        .route("/console/audit", get(pages::audit))
        .route("/console/chat", get(pages::chat))
        .route(
            "/console/chat/{session}/messages",
            post(pages::chat_message),
        )
        .route("/console/static/console.css", get(stylesheet))
        .route("/console/static/chat.js", get(chat_script))
        .layer(middleware::from_fn_with_state(state.clone(), headers))
}

/// Security headers on every console response.
async fn headers(State(_): State<AppState>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Not `no-referrer`: with it, browsers send `Origin: null` on form posts, which
    // the same-origin check must refuse.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The chat page's only script (served from this origin, as the CSP requires).
const CHAT_JS: &str = include_str!("chat.js");

async fn chat_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        CHAT_JS,
    )
        .into_response()
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        html::CSS,
    )
        .into_response()
}

/// The signed-in person of a console request.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    pub session_id: String,
    pub session: Session,
    pub principal: Principal,
}

impl Viewer {
    /// The session of the request, or `None` (the page then sends the person to sign in).
    fn of(state: &AppState, headers: &HeaderMap) -> Option<Viewer> {
        let (session_id, session) = state.shared.sessions.get(headers)?;
        let principal = Principal::parse(&session.principal).ok()?;
        Some(Viewer {
            session_id,
            session,
            principal,
        })
    }

    fn label(&self) -> &str {
        &self.session.principal
    }

    /// A full page for this viewer.
    fn page(&self, title: &str, nav: html::Nav, flash: Option<&str>, body: &str) -> Response {
        let who = Some((self.label(), self.session.csrf.as_str()));
        tagged(
            html_response(StatusCode::OK, html::page(title, nav, who, flash, body)),
            &self.session.principal,
        )
    }

    /// A refusal page (403), counted like the API's.
    fn forbidden(&self, state: &AppState, message: &str) -> Response {
        crate::app::count_refusal(state, SOURCE, "forbidden");
        let who = Some((self.label(), self.session.csrf.as_str()));
        let body = format!("<p>{}</p>", esc(message));
        html_response(
            StatusCode::FORBIDDEN,
            html::page("Not for this principal", html::Nav::None, who, None, &body),
        )
    }
}

fn tagged(response: Response, who: &Arc<str>) -> Response {
    crate::app::tag(response, Some(who))
}

fn html_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn to_login() -> Response {
    Redirect::to("/console/login").into_response()
}

/// A POST must come from this origin: a browser's `Sec-Fetch-Site` or `Origin` naming
/// another site is refused (before any form field is looked at).
fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") {
            return false;
        }
    }
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(origin) => {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let bare = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                .unwrap_or("");
            !host.is_empty() && bare == host
        }
    }
}

/// A refused form post: 403, counted, nothing done.
fn refuse_post(state: &AppState, reason: &'static str, message: &str) -> Response {
    crate::app::count_refusal(state, SOURCE, reason);
    let body = format!(
        "<p>{}</p><p><a href=\"/console\">Back</a></p>",
        esc(message)
    );
    html_response(
        StatusCode::FORBIDDEN,
        html::page("Refused", html::Nav::None, None, None, &body),
    )
}
