//! The console's pages and form posts.

use std::collections::HashMap;
use std::fmt::Write;

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde_json::{json, Value};
use steward_agent::incidents::IncidentStore;
use steward_agent::{Outcome, Request as CallRequest};
use steward_protocol::{Origin, Timestamp};

use super::html::{badge, esc, page, when, Nav};
use super::session::{same_secret, set_cookie, TTL};
use super::{html_response, refuse_post, same_origin, to_login, Viewer};
use crate::db::now_ms;
use crate::state::AppState;
use crate::tokens::Verdict;

type Params = Query<HashMap<String, String>>;

fn flash(q: &HashMap<String, String>) -> Option<&str> {
    q.get("flash").map(String::as_str)
}

/// `None` when policy lets the viewer call the read tool `tool`, else the refusal page.
fn unless_may_read(v: &Viewer, state: &AppState, tool: &str, args: Value) -> Option<Response> {
    let why = crate::v1::read_denied(state, &v.principal, tool, args)?;
    Some(v.forbidden(state, &format!("This page is shown to {why}")))
}

fn field<'a>(row: &'a Value, key: &str) -> &'a str {
    row.get(key).and_then(Value::as_str).unwrap_or("")
}

pub(crate) async fn overview(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    let Some(v) = Viewer::of(&state, &headers) else {
        return to_login();
    };
    if let Some(refused) = unless_may_read(&v, &state, "service_list", json!({})) {
        return refused;
    }
    let incidents = IncidentStore::new(state.shared.store.clone());
    let (platform, approvals, open) = tokio::join!(
        state.shared.platform.status(),
        state.shared.orchestrator.list_approvals(false),
        incidents.list(true),
    );
    let mut body = String::new();
    let pending = approvals.map(|a| a.len()).unwrap_or(0);
    let open = open.map(|i| i.len()).unwrap_or(0);
    let _ = write!(
        body,
        "<p><a href=\"/console/approvals\">{pending} pending approval{}</a> · \
         <a href=\"/console/incidents\">{open} open incident{}</a></p>",
        if pending == 1 { "" } else { "s" },
        if open == 1 { "" } else { "s" },
    );
    match platform {
        Ok(p) => {
            let rows = p["rows"].as_array().cloned().unwrap_or_default();
            if let Some(e) = p["traefik_error"].as_str() {
                let _ = write!(
                    body,
                    "<p class=\"flash\">Traefik did not answer; routes are unknown: {}</p>",
                    esc(e)
                );
            }
            for (title, kind) in [("Services", "platform"), ("Tenants", "tenant")] {
                let mine: Vec<&Value> = rows.iter().filter(|r| field(r, "kind") == kind).collect();
                let _ = write!(body, "<h2>{title}</h2>");
                if mine.is_empty() {
                    body.push_str("<p class=\"muted\">none</p>");
                    continue;
                }
                body.push_str(
                    "<div class=\"scroll\"><table><thead><tr><th>service</th><th>health</th>\
                     <th>release</th><th class=\"wide\">image</th><th>route</th></tr></thead><tbody>",
                );
                for r in mine {
                    let health = match field(r, "health") {
                        "" | "none" => field(r, "state"),
                        h => h,
                    };
                    let _ = write!(
                        body,
                        "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"wide\">{}</td><td>{}</td></tr>",
                        esc(field(r, "service")),
                        badge(health),
                        esc(field(r, "release")),
                        esc(field(r, "image")),
                        esc(field(r, "route")),
                    );
                }
                body.push_str("</tbody></table></div>");
            }
        }
        Err(e) => {
            let _ = write!(
                body,
                "<p class=\"flash\">The platform could not be read: {}</p>",
                esc(&e)
            );
        }
    }
    v.page("Overview", Nav::Overview, flash(&q), &body)
}

pub(crate) async fn login_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if Viewer::of(&state, &headers).is_some() {
        return Redirect::to("/console").into_response();
    }
    login_page(StatusCode::OK, None)
}

fn login_page(status: StatusCode, error: Option<&str>) -> Response {
    let body = "<div class=\"login card\"><form method=\"post\" action=\"/console/login\">\
        <label for=\"token\">API token</label>\
        <input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"off\" required>\
        <button type=\"submit\">Sign in</button>\
        <p class=\"muted\">A token from <code>steward token create --as operator:&lt;you&gt;</code>; \
        you act as its principal.</p></form></div>";
    html_response(status, page("Sign in", Nav::None, None, error, body))
}

pub(crate) async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    if !same_origin(&headers) {
        return refuse_post(
            &state,
            "cross_site",
            "A sign-in from another site is refused.",
        );
    }
    let token = form
        .as_ref()
        .ok()
        .and_then(|f| f.0.get("token"))
        .map(|t| t.trim().to_string())
        .unwrap_or_default();
    let verdict = state
        .shared
        .tokens
        .verify(&token, Timestamp(now_ms()))
        .await;
    let principal = match verdict {
        Ok(Verdict::Valid { principal, .. }) => principal,
        Ok(_) => {
            crate::app::count_refusal(&state, super::SOURCE, "unknown_token");
            return login_page(
                StatusCode::UNAUTHORIZED,
                Some("That token is unknown, expired or revoked."),
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "token lookup failed");
            return login_page(StatusCode::SERVICE_UNAVAILABLE, Some("Try again shortly."));
        }
    };
    let Some((id, _)) = state.shared.sessions.open(principal) else {
        return login_page(StatusCode::SERVICE_UNAVAILABLE, Some("Try again shortly."));
    };
    let cookie = set_cookie(&id, TTL, &headers);
    ([(header::SET_COOKIE, cookie)], Redirect::to("/console")).into_response()
}

/// The session of a form post, after the same-origin and CSRF checks; or the refusal.
fn posted(
    state: &AppState,
    headers: &HeaderMap,
    form: &Result<Form<HashMap<String, String>>, FormRejection>,
) -> Result<Viewer, Box<Response>> {
    if !same_origin(headers) {
        let message = "A form posted from another site is refused.";
        return Err(Box::new(refuse_post(state, "cross_site", message)));
    }
    let Some(v) = Viewer::of(state, headers) else {
        return Err(Box::new(refuse_post(state, "no_session", "Sign in first.")));
    };
    let sent = form
        .as_ref()
        .ok()
        .and_then(|f| f.0.get("csrf"))
        .map(String::as_str);
    if !sent.is_some_and(|s| same_secret(s, &v.session.csrf)) {
        return Err(Box::new(refuse_post(
            state,
            "bad_csrf",
            "This form's CSRF token does not match your session; reload the page and try again.",
        )));
    }
    Ok(v)
}

pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let v = match posted(&state, &headers, &form) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    state.shared.sessions.close(&v.session_id);
    let cookie = set_cookie("", std::time::Duration::ZERO, &headers);
    (
        [(header::SET_COOKIE, cookie)],
        Redirect::to("/console/login"),
    )
        .into_response()
}

pub(crate) async fn approvals(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    let Some(v) = Viewer::of(&state, &headers) else {
        return to_login();
    };
    let list = match state.shared.orchestrator.list_approvals(false).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "listing approvals failed");
            return v.page(
                "Approvals",
                Nav::Approvals,
                Some("Approvals could not be read."),
                "",
            );
        }
    };
    let mut body = String::new();
    let shown: Vec<_> = list
        .iter()
        .filter(|a| crate::v1::approvals::visible_to(&v.principal, v.label(), a))
        .collect();
    if shown.is_empty() {
        body.push_str("<p class=\"muted\">Nothing waits for a person.</p>");
    }
    for a in shown {
        let plan_summary = a.plan["summary"].as_str().unwrap_or("");
        let steps: String = a.plan["steps"]
            .as_array()
            .map(|s| {
                s.iter()
                    .filter_map(Value::as_str)
                    .map(|s| format!("<li>{}</li>", esc(s)))
                    .collect()
            })
            .unwrap_or_default();
        let args = serde_json::to_string_pretty(&a.args).unwrap_or_default();
        let csrf = esc(&v.session.csrf);
        let id = esc(&a.id);
        let _ = write!(
            body,
            "<section class=\"card\" id=\"{id}\"><h2>{tool}</h2><pre>{args}</pre>\
             <p><strong>Plan:</strong> {summary}</p><ol>{steps}</ol>\
             <p class=\"muted\">Asked by {who} via {origin}{untrusted}; {reason}. \
             Expires {expires}. ({id})</p>\
             <form class=\"answer\" method=\"post\" action=\"/console/approvals/{id}/approve\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <input type=\"text\" name=\"reason\" placeholder=\"Reason (optional)\" aria-label=\"Reason to approve\">\
             <button type=\"submit\" name=\"approve\">Approve and run</button></form>\
             <form class=\"answer\" method=\"post\" action=\"/console/approvals/{id}/deny\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <input type=\"text\" name=\"reason\" placeholder=\"Reason (required)\" aria-label=\"Reason to deny\" required>\
             <button type=\"submit\" class=\"deny\" name=\"deny\">Deny</button></form></section>",
            tool = esc(&a.tool),
            args = esc(&args),
            summary = esc(plan_summary),
            who = esc(&a.principal),
            origin = esc(&a.origin),
            untrusted = if a.untrusted { ", from untrusted text" } else { "" },
            reason = esc(&a.reason),
            expires = when(a.expires_at.0),
        );
    }
    v.page("Approvals", Nav::Approvals, flash(&q), &body)
}

/// `POST /console/approvals/{id}/approve|deny`: answered through the orchestrator as the
/// viewer; the page it leads back to says what came of it.
pub(crate) async fn answer(
    State(state): State<AppState>,
    Path((id, answer)): Path<(String, String)>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let v = match posted(&state, &headers, &form) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let reason = form
        .as_ref()
        .ok()
        .and_then(|f| f.0.get("reason"))
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty());
    let orchestrator = &state.shared.orchestrator;
    let message = match answer.as_str() {
        "approve" => match orchestrator
            .approve(&id, &v.principal, reason.as_deref())
            .await
        {
            Ok(Outcome::Done { done, .. }) => format!("Approved {id}: done. {}", done.summary),
            Ok(Outcome::Failed { message, .. }) => {
                format!("Approved {id}; it ran and failed: {message}")
            }
            Ok(Outcome::Refused { message, .. }) => {
                format!("Approved {id}, but it did not run: {message}")
            }
            Ok(other) => format!("Approved {id}: {}", other.label()),
            Err(e) => format!("Not approved: {e}"),
        },
        "deny" => match reason {
            None => "A denial needs a reason.".to_string(),
            Some(r) => match orchestrator.deny(&id, &v.principal, Some(r.as_str())).await {
                Ok(a) => format!(
                    "{} {id}.",
                    if a.state.as_str() == "withdrawn" {
                        "Withdrew"
                    } else {
                        "Denied"
                    }
                ),
                Err(e) => format!("Not denied: {e}"),
            },
        },
        _ => return (StatusCode::NOT_FOUND, "no such answer").into_response(),
    };
    Redirect::to(&format!("/console/approvals?flash={}", percent(&message))).into_response()
}

/// Percent-encodes a query value.
fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(crate) async fn incidents(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    let Some(v) = Viewer::of(&state, &headers) else {
        return to_login();
    };
    if let Some(refused) = unless_may_read(&v, &state, "service_list", json!({})) {
        return refused;
    }
    let all = q.get("all").is_some_and(|a| a == "true");
    let list = IncidentStore::new(state.shared.store.clone())
        .list(!all)
        .await;
    let mut body = format!(
        "<p><a href=\"/console/incidents{}\">{}</a></p>",
        if all { "" } else { "?all=true" },
        if all {
            "Only open ones"
        } else {
            "Closed ones too"
        }
    );
    match list {
        Ok(list) if list.is_empty() => body.push_str("<p class=\"muted\">No incidents.</p>"),
        Ok(list) => {
            body.push_str(
                "<div class=\"scroll\"><table><thead><tr><th>incident</th><th>status</th>\
                 <th>event</th><th class=\"wide\">rule</th><th>opened</th></tr></thead><tbody>",
            );
            for i in list {
                let _ = write!(
                    body,
                    "<tr><td><a href=\"/console/incidents/{id}\">{id}</a></td><td>{status}</td>\
                     <td>{event}</td><td class=\"wide\">{rule}</td><td>{opened}</td></tr>",
                    id = esc(&i.id),
                    status = badge(i.status.as_str()),
                    event = esc(&format!("{} {}", i.event.name, labels(&i.event.labels))),
                    rule = esc(i.rule.as_deref().unwrap_or("none")),
                    opened = when(i.opened_at.0),
                );
            }
            body.push_str("</tbody></table></div>");
        }
        Err(e) => {
            tracing::error!(error = %e, "listing incidents failed");
            body.push_str("<p class=\"flash\">Incidents could not be read.</p>");
        }
    }
    v.page("Incidents", Nav::Incidents, flash(&q), &body)
}

fn labels(l: &std::collections::BTreeMap<String, String>) -> String {
    l.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) async fn incident(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Some(v) = Viewer::of(&state, &headers) else {
        return to_login();
    };
    if let Some(refused) = unless_may_read(&v, &state, "service_list", json!({})) {
        return refused;
    }
    let i = match IncidentStore::new(state.shared.store.clone())
        .get(&id)
        .await
    {
        Ok(Some(i)) => i,
        Ok(None) => return v.page("No such incident", Nav::Incidents, None, ""),
        Err(e) => {
            tracing::error!(error = %e, "reading an incident failed");
            return v.page(
                "Incident",
                Nav::Incidents,
                Some("The incident could not be read."),
                "",
            );
        }
    };
    let mut body = format!(
        "<p>{status} {event} · rule {rule} · opened {opened}{closed}</p>",
        status = badge(i.status.as_str()),
        event = esc(&format!("{} {}", i.event.name, labels(&i.event.labels))),
        rule = esc(i.rule.as_deref().unwrap_or("none")),
        opened = when(i.opened_at.0),
        closed = i
            .closed_at
            .map(|c| format!(
                " · closed {}: {}",
                when(c.0),
                esc(i.close_reason.as_deref().unwrap_or(""))
            ))
            .unwrap_or_default(),
    );
    if let Some(text) = &i.event.text {
        let _ = write!(
            body,
            "<h2>Event text (untrusted, shown as data)</h2><pre>{}</pre>",
            esc(text)
        );
    }
    body.push_str("<h2>Timeline</h2><ol>");
    for t in &i.timeline {
        let outcome = t
            .outcome
            .as_ref()
            .map(|o| {
                let status = o["status"].as_str().unwrap_or("");
                let summary = o["summary"]
                    .as_str()
                    .or(o["message"].as_str())
                    .unwrap_or("");
                format!(" {} {}", badge(status), esc(summary))
            })
            .unwrap_or_default();
        let _ = write!(
            body,
            "<li><span class=\"muted\">{at}</span> {kind}{step}{message}{outcome}</li>",
            at = when(t.at.0),
            kind = esc(t.kind.as_str()),
            step = t
                .tool
                .as_ref()
                .map(|tool| format!(
                    " step {} <strong>{}</strong>",
                    t.step.unwrap_or(0),
                    esc(tool)
                ))
                .unwrap_or_default(),
            message = t
                .message
                .as_ref()
                .map(|m| format!(": {}", esc(m)))
                .unwrap_or_default(),
        );
    }
    body.push_str("</ol>");
    v.page(&format!("Incident {id}"), Nav::Incidents, None, &body)
}

pub(crate) async fn audit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    let Some(v) = Viewer::of(&state, &headers) else {
        return to_login();
    };
    if let Some(refused) = unless_may_read(&v, &state, "audit_search", json!({"query": "*"})) {
        return refused;
    }
    let query = q.get("q").map(|s| s.trim().to_string()).unwrap_or_default();
    let verify = state.shared.orchestrator.audit().verify().await;
    let mut body = match verify {
        Ok(r) => {
            state.shared.metrics.audit_verified(r.ok);
            format!(
                "<p>Chain {}: {} records{}.</p>",
                badge(if r.ok { "ok" } else { "failed" }),
                r.records,
                if r.ok {
                    ""
                } else {
                    ", problems found: run steward audit verify"
                }
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "audit verify failed to run");
            "<p class=\"flash\">The audit log could not be verified.</p>".to_string()
        }
    };
    let _ = write!(
        body,
        "<form class=\"answer\" method=\"get\" action=\"/console/audit\">\
         <input type=\"search\" name=\"q\" value=\"{}\" placeholder=\"tool, service, principal…\" aria-label=\"Search the audit log\">\
         <button type=\"submit\">Search</button></form>",
        esc(&query)
    );
    if !query.is_empty() {
        let outcome = state
            .shared
            .orchestrator
            .handle(CallRequest {
                principal: v.principal.clone(),
                origin: Origin::Api,
                intent_text: None,
                untrusted_text: false,
                tool: "audit_search".into(),
                args: json!({ "query": query }),
                dry_run_only: false,
            })
            .await;
        match outcome {
            Ok(Outcome::Done { done, .. }) => {
                let records = done.output["records"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let _ = write!(body, "<p class=\"muted\">{}</p>", esc(&done.summary));
                body.push_str(
                    "<div class=\"scroll\"><table><thead><tr><th>seq</th><th>when</th><th>who</th>\
                     <th>what</th><th class=\"wide\">outcome</th></tr></thead><tbody>",
                );
                for r in records {
                    let e = &r["entry"];
                    let outcome = e["outcome"].to_string();
                    let _ = write!(
                        body,
                        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} {}</td><td class=\"wide\">{}</td></tr>",
                        r["seq"],
                        when(e["at"].as_i64().unwrap_or(0)),
                        esc(&e["actor"].to_string()),
                        esc(e["kind"].as_str().unwrap_or("")),
                        esc(e["tool"].as_str().unwrap_or("")),
                        esc(&outcome.chars().take(200).collect::<String>()),
                    );
                }
                body.push_str("</tbody></table></div>");
            }
            Ok(other) => {
                let _ = write!(
                    body,
                    "<p class=\"flash\">Search {}.</p>",
                    esc(other.label())
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "audit search failed");
                body.push_str("<p class=\"flash\">The search failed.</p>");
            }
        }
    }
    v.page("Audit", Nav::Audit, None, &body)
}

pub(crate) async fn chat(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(v) = Viewer::of(&state, &headers) else {
        return to_login();
    };
    let body = format!(
        "<meta name=\"csrf\" content=\"{}\"><div id=\"chat-log\" aria-live=\"polite\"></div>\
         <form id=\"chat-form\" class=\"answer\"><input type=\"text\" id=\"chat-text\" \
         placeholder=\"why is rentguy slow?\" aria-label=\"Message\" autocomplete=\"off\">\
         <button type=\"submit\">Send</button></form>\
         <p class=\"muted\">Reads run at once; anything that changes the platform goes through \
         policy, and waits in Approvals where policy asks for a person.</p>\
         <script src=\"/console/static/chat.js\"></script>",
        esc(&v.session.csrf)
    );
    v.page("Chat", Nav::Chat, None, &body)
}

/// `POST /console/chat/{session}/messages`: the chat page's turn, as the signed-in
/// principal, with the CSRF token in `X-CSRF-Token`; streamed like the API's.
pub(crate) async fn chat_message(
    State(state): State<AppState>,
    Path(session): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !same_origin(&headers) {
        return refuse_post(
            &state,
            "cross_site",
            "A message from another site is refused.",
        );
    }
    let Some(v) = Viewer::of(&state, &headers) else {
        return refuse_post(&state, "no_session", "Sign in first.");
    };
    let sent = headers.get("x-csrf-token").and_then(|h| h.to_str().ok());
    if !sent.is_some_and(|s| same_secret(s, &v.session.csrf)) {
        return refuse_post(
            &state,
            "bad_csrf",
            "The CSRF token does not match your session.",
        );
    }
    let Ok(message) = serde_json::from_slice::<crate::chat::MessageBody>(&body) else {
        return (StatusCode::BAD_REQUEST, "expected {\"text\": \"...\"}").into_response();
    };
    let label = v.session.principal.clone();
    match crate::chat::stream_turn(&state, &v.principal, &label, &session, message.text).await {
        Ok(r) => r,
        Err(crate::chat::Reject::Refused(r)) => {
            crate::app::refuse(&state, "console", Some(&label), r)
        }
        Err(crate::chat::Reject::Answer(r)) => r,
    }
}
