//! The console through `app(state)` (no socket, no browser; `crates/cli/tests/console.rs`
//! drives a real Chromium): sign-in and its cookie, the security headers, CSRF and
//! cross-site refusals, approvals answered as the signed-in principal, and escaping.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

#[macro_use]
mod common;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use common::{post_json, World};
use serde_json::{json, Value};

sqlite!(
    signing_in_sets_a_strict_cookie_and_every_page_a_strict_csp,
    forms_without_the_sessions_csrf_token_or_from_another_site_are_refused,
    an_approval_is_answered_in_the_console_as_the_signed_in_operator,
);

fn form(path: &str, cookie: Option<&str>, body: &str) -> Request<Body> {
    let mut b = Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("host", "steward.test");
    if let Some(c) = cookie {
        b = b.header("cookie", c);
    }
    b.body(Body::from(body.to_string())).unwrap()
}

fn page(path: &str, cookie: &str) -> Request<Body> {
    Request::get(path)
        .header("cookie", cookie)
        .body(Body::empty())
        .unwrap()
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// Signs in with a fresh token of `principal`; returns the cookie header value.
async fn sign_in(w: &World, principal: &str) -> String {
    let token = w.token(principal).await;
    let (s, headers, _) = w
        .send(form("/console/login", None, &format!("token={token}")))
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let set = headers["set-cookie"].to_str().unwrap().to_string();
    set.split(';').next().unwrap().to_string()
}

fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").unwrap() + 19;
    html[start..start + 64].to_string()
}

fn check_headers(h: &HeaderMap) {
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
}

async fn signing_in_sets_a_strict_cookie_and_every_page_a_strict_csp(w: &World) {
    // Not signed in: every page sends the person to sign in.
    for path in [
        "/console",
        "/console/approvals",
        "/console/incidents",
        "/console/audit",
    ] {
        let (s, h, _) = w
            .send(Request::get(path).body(Body::empty()).unwrap())
            .await;
        assert_eq!(s, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(h["location"], "/console/login");
    }
    let (s, h, body) = w
        .send(Request::get("/console/login").body(Body::empty()).unwrap())
        .await;
    assert_eq!(s, StatusCode::OK);
    check_headers(&h);
    assert!(text(&body).contains("name=\"viewport\""), "phone width");
    // A wrong token: 401, no cookie.
    let (s, h, _) = w.send(form("/console/login", None, "token=stw_nope")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(h.get("set-cookie").is_none());
    // A real one: a strict session cookie, then the overview with the platform.
    let token = w.token("operator:local").await;
    let (_, h, _) = w
        .send(form("/console/login", None, &format!("token={token}")))
        .await;
    let set = h["set-cookie"].to_str().unwrap();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(set.contains(part), "{set}");
    }
    assert!(
        !set.contains(&token),
        "the token itself never becomes the cookie"
    );
    let cookie = set.split(';').next().unwrap();
    let (s, h, body) = w.send(page("/console", cookie)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    check_headers(&h);
    let html = text(&body);
    assert!(
        html.contains("rentguy") && html.contains("operator:local"),
        "{html}"
    );
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script>"), "{html}");
    // A principal policy gives nothing sees a refusal, not the platform.
    let mallory = sign_in(w, "operator:mallory").await;
    let (s, _, body) = w.send(page("/console", &mallory)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(!text(&body).contains("rentguy"));
}

async fn forms_without_the_sessions_csrf_token_or_from_another_site_are_refused(w: &World) {
    let cookie = sign_in(w, "operator:local").await;
    let alice = w.token("operator:alice").await;
    let (_, _, pending) = w
        .send(post_json(
            "/v1/calls",
            Some(&alice),
            &json!({"tool": "tenant_destroy", "args": {"tenant": "acme"}}),
        ))
        .await;
    let id = pending["approval"]["id"].as_str().unwrap().to_string();
    let (_, _, html) = w.send(page("/console/approvals", &cookie)).await;
    let csrf = csrf_of(text(&html));
    let approve = format!("/console/approvals/{id}/approve");
    // No token, a forged one, another site, and no session: all refused, nothing runs.
    let (s, _, _) = w.send(form(&approve, Some(&cookie), "reason=x")).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = w
        .send(form(
            &approve,
            Some(&cookie),
            &format!("csrf={}", "0".repeat(64)),
        ))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let mut cross = form(&approve, Some(&cookie), &format!("csrf={csrf}"));
    cross
        .headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    let (s, _, _) = w.send(cross).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let mut fetch = form(&approve, Some(&cookie), &format!("csrf={csrf}"));
    fetch
        .headers_mut()
        .insert("sec-fetch-site", "cross-site".parse().unwrap());
    let (s, _, _) = w.send(fetch).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = w.send(form(&approve, None, &format!("csrf={csrf}"))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(w.probe.ran().is_empty());
    let refused = w.refused().await;
    for reason in ["bad_csrf", "cross_site", "no_session"] {
        assert!(
            refused.contains_key(&("console".to_string(), reason.to_string())),
            "{reason}: {refused:?}"
        );
    }
}

async fn an_approval_is_answered_in_the_console_as_the_signed_in_operator(w: &World) {
    let alice = w.token("operator:alice").await;
    let (_, _, pending) = w
        .send(post_json(
            "/v1/calls",
            Some(&alice),
            // The plan's summary carries the arguments: markup in them must stay text.
            &json!({"tool": "service_rollback", "args": {"service": "rentguy", "to": "previous"}}),
        ))
        .await;
    assert_eq!(
        pending["status"], "done",
        "operators roll back without approval: {pending}"
    );
    let (_, _, pending) = w
        .send(post_json(
            "/v1/calls",
            Some(&alice),
            &json!({"tool": "tenant_destroy", "args": {"tenant": "acme"}}),
        ))
        .await;
    let id = pending["approval"]["id"].as_str().unwrap().to_string();
    // alice may not approve her own request, in the console either.
    let own = sign_in(w, "operator:alice").await;
    let (_, _, html) = w.send(page("/console/approvals", &own)).await;
    let csrf = csrf_of(text(&html));
    let (s, h, _) = w
        .send(form(
            &format!("/console/approvals/{id}/approve"),
            Some(&own),
            &format!("csrf={csrf}"),
        ))
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (_, _, html) = w.send(page(h["location"].to_str().unwrap(), &own)).await;
    assert!(text(&html).contains("Not approved"), "{html}");
    assert_eq!(w.probe.ran(), ["service_rollback"]);
    // Another operator approves: it runs, and the page says so.
    let local = sign_in(w, "operator:local").await;
    let (_, _, html) = w.send(page("/console/approvals", &local)).await;
    assert!(text(&html).contains(&id) && text(&html).contains("tenant_destroy"));
    let csrf = csrf_of(text(&html));
    let (s, h, _) = w
        .send(form(
            &format!("/console/approvals/{id}/approve"),
            Some(&local),
            &format!("csrf={csrf}&reason=%3Cscript%3Ealert(1)%3C%2Fscript%3E"),
        ))
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (_, _, html) = w.send(page(h["location"].to_str().unwrap(), &local)).await;
    assert!(text(&html).contains("done"), "{html}");
    assert_eq!(w.probe.ran(), ["service_rollback", "tenant_destroy"]);
    let (_, _, html) = w.send(page("/console/approvals", &local)).await;
    assert!(text(&html).contains("Nothing waits"), "{html}");
    // The audit page shows the reason as text, never as markup.
    let (_, _, html) = w
        .send(page("/console/audit?q=tenant_destroy", &local))
        .await;
    let html = text(&html);
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("tenant_destroy"), "{html}");
}
