//! Console sessions: a bearer token is exchanged once for a random session id in an
//! `HttpOnly; SameSite=Strict` cookie (`Secure` behind TLS), bound to the token's principal
//! and to a CSRF token every form carries. Sessions live in memory: a restart of `serve`
//! signs everyone out, which is the safe direction.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap};

/// The session cookie's name.
pub const COOKIE: &str = "steward_session";

/// How long a session lasts without a new login.
pub const TTL: Duration = Duration::from_secs(12 * 3600);

/// Most sessions kept; past it the oldest are dropped (they log in again).
const MAX_SESSIONS: usize = 10_000;

/// One signed-in person (or whoever holds a token).
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Arc<str>,
    /// Every form carries it; a POST without the same one is refused.
    pub csrf: String,
    expires: Instant,
}

/// The live sessions.
#[derive(Debug, Default)]
pub struct Sessions {
    live: Mutex<HashMap<String, Session>>,
}

fn random_hex() -> Option<String> {
    crate::db::random_bytes::<32>().ok().map(hex::encode)
}

impl Sessions {
    /// Opens a session for `principal`: `(session id, session)`.
    pub fn open(&self, principal: Arc<str>) -> Option<(String, Session)> {
        let id = random_hex()?;
        let session = Session {
            principal,
            csrf: random_hex()?,
            expires: Instant::now() + TTL,
        };
        let mut live = self
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        live.retain(|_, s| s.expires > now);
        if live.len() >= MAX_SESSIONS {
            if let Some(oldest) = live
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
            {
                live.remove(&oldest);
            }
        }
        live.insert(id.clone(), session.clone());
        Some((id, session))
    }

    /// The session the request's cookie names, if it is live.
    pub fn get(&self, headers: &HeaderMap) -> Option<(String, Session)> {
        let id = cookie(headers, COOKIE)?;
        let live = self
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let s = live.get(&id)?;
        (s.expires > Instant::now()).then(|| (id.clone(), s.clone()))
    }

    pub fn close(&self, id: &str) {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
    }
}

/// A cookie's value from the `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Whether two secrets are equal, in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The `Set-Cookie` value of a session (or of its removal, `max_age` 0). `Secure` when the
/// request reached us over TLS (a proxy such as Traefik says so in `X-Forwarded-Proto`).
pub fn set_cookie(id: &str, max_age: Duration, headers: &HeaderMap) -> String {
    let tls = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    format!(
        "{COOKIE}={id}; Path=/console; Max-Age={}; HttpOnly; SameSite=Strict{}",
        max_age.as_secs(),
        if tls { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_by_its_cookie_and_gone_once_closed() {
        let sessions = Sessions::default();
        let (id, s) = sessions.open("operator:alice".into()).unwrap();
        assert_eq!(id.len(), 64);
        assert_ne!(s.csrf, id);
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            format!("other=1; {COOKIE}={id}").parse().unwrap(),
        );
        assert_eq!(&*sessions.get(&h).unwrap().1.principal, "operator:alice");
        sessions.close(&id);
        assert!(sessions.get(&h).is_none());
        assert!(same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("a", "ab"));
        let c = set_cookie(&id, TTL, &HeaderMap::new());
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && !c.contains("Secure"));
        let mut tls = HeaderMap::new();
        tls.insert("x-forwarded-proto", "https".parse().unwrap());
        assert!(set_cookie(&id, TTL, &tls).ends_with("; Secure"));
    }
}
