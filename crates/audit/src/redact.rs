//! Secret redaction, applied to every entry before it is hashed, stored or indexed.
//!
//! Redaction has to happen before hashing: a hash-chained log cannot be cleaned afterwards
//! without breaking the chain, so a secret that got in would stay forever. The rules are
//! deliberately greedy; a false positive costs a little context in the log, a false negative
//! leaks a credential into a file that is kept for years.
//!
//! - A JSON object member whose key names a secret (`password`, `secret`, `token`,
//!   `api_key`, `private_key`, `credential`, `authorization`, `passphrase`, any case, as part
//!   of a longer key too) has its value replaced, whatever its type.
//! - In every string: URL credentials (`postgres://user:pw@host` keeps `user`), `key=value` and
//!   `key: value` pairs whose key names a secret (`PGPASSWORD=…`, `"token":"…"`),
//!   `--password value` flags, `Bearer …`/`Basic …` credentials, and tokens with well-known
//!   prefixes (`sk-…`, `ghp_…`, `github_pat_…`, `glpat-…`, `xox?-…`, `AKIA…`).

use std::borrow::Cow;

use serde_json::Value;
use steward_protocol::{AuditEntry, Decision};

/// What a secret is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Parts of key names that mark the value as a secret; `_` also matches `-`.
const SECRET_WORDS: &[&[u8]] = &[
    b"password",
    b"passwd",
    b"passphrase",
    b"secret",
    b"token",
    b"api_key",
    b"apikey",
    b"private_key",
    b"privatekey",
    b"credential",
    b"authorization",
];

/// Prefixes of well-known bearer tokens, redacted wherever they stand as a word.
const TOKEN_PREFIXES: &[&[u8]] = &[
    b"sk-",
    b"ghp_",
    b"gho_",
    b"ghs_",
    b"ghu_",
    b"github_pat_",
    b"glpat-",
    b"xoxb-",
    b"xoxp-",
    b"xoxa-",
    b"AKIA",
];

/// No rule can match a string shorter than this (`token=x` is the shortest).
const MIN_LEN: usize = 7;

/// Redacts every free-form part of `entry` in place: intent text, args, approval, plan,
/// outcome and decision reasons. Names (actor, tool, origin) are kept.
pub fn redact_entry(entry: &mut AuditEntry) {
    if let Some(text) = entry.intent_text.as_mut() {
        redact_string(text);
    }
    for v in [
        entry.args.as_mut(),
        entry.approval.as_mut(),
        entry.plan.as_mut(),
        entry.outcome.as_mut(),
    ]
    .into_iter()
    .flatten()
    {
        redact_value(v);
    }
    match entry.decision.as_mut() {
        Some(Decision::NeedsApproval { reason, .. }) | Some(Decision::Deny { reason, .. }) => {
            redact_string(reason)
        }
        _ => {}
    }
}

/// Redacts a JSON value in place (see the module docs for the rules).
pub fn redact_value(value: &mut Value) {
    match value {
        Value::String(s) => redact_string(s),
        Value::Array(items) => {
            let mut secret_flag = false;
            for item in items.iter_mut() {
                // `["--password", "x"]`: the element after a secret flag is the secret.
                if secret_flag && !item.is_null() {
                    *item = Value::String(REDACTED.into());
                    secret_flag = false;
                    continue;
                }
                secret_flag = matches!(item, Value::String(s) if is_secret_flag(s));
                redact_value(item);
            }
        }
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if is_secret_key(key) {
                    if !v.is_null() {
                        *v = Value::String(REDACTED.into());
                    }
                } else {
                    redact_value(v);
                }
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Redacts a string in place; allocates only when something is found.
pub fn redact_string(s: &mut String) {
    if let Cow::Owned(clean) = redact_str(s) {
        *s = clean;
    }
}

/// The redacted form of `s`, borrowed when there was nothing to redact.
///
/// One pass over the bytes finds every candidate (secret words, auth schemes, token
/// prefixes); URL credentials are looked for only when the string holds `://`. Strings are
/// redacted on every append, before the hash, so this stays allocation-free when nothing
/// matches.
pub fn redact_str(s: &str) -> Cow<'_, str> {
    if s.len() < MIN_LEN {
        return Cow::Borrowed(s);
    }
    let mut ranges = Vec::new();
    url_credentials(s, &mut ranges);
    let b = s.as_bytes();
    for i in 0..b.len() {
        let c = b[i].to_ascii_lowercase();
        if matches!(c, b'p' | b's' | b't' | b'a' | b'c') {
            for w in SECRET_WORDS {
                if w[0] == c && word_at_ci(b, i, w) {
                    pair_value(s, i, w.len(), &mut ranges);
                }
            }
        }
        if c == b'b' && at_word_start(b, i) {
            auth_scheme(s, i, &mut ranges);
        }
        if matches!(b[i], b's' | b'g' | b'x' | b'A') && at_word_start(b, i) {
            prefixed_token(b, i, &mut ranges);
        }
    }
    apply(s, ranges)
}

/// Whether a key (object member, env var, flag name) names a secret.
pub fn is_secret_key(key: &str) -> bool {
    let b = key.as_bytes();
    (0..b.len()).any(|i| SECRET_WORDS.iter().any(|w| word_at_ci(b, i, w)))
}

/// Whether `word` (lowercase, `_` standing for `_` or `-`) occurs at `b[i..]`, any case.
fn word_at_ci(b: &[u8], i: usize, word: &[u8]) -> bool {
    b.len() - i >= word.len()
        && word.iter().zip(&b[i..]).all(|(&w, &h)| {
            let h = h.to_ascii_lowercase();
            h == w || (w == b'_' && h == b'-')
        })
}

fn at_word_start(b: &[u8], i: usize) -> bool {
    i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_' || b[i - 1] == b'-')
}

fn is_secret_flag(s: &str) -> bool {
    s.starts_with('-') && !s.contains('=') && is_secret_key(s.trim_start_matches('-'))
}

/// Replaces the byte ranges (merged where they overlap) with [`REDACTED`].
fn apply(s: &str, mut ranges: Vec<(usize, usize)>) -> Cow<'_, str> {
    ranges.retain(|(a, b)| b > a);
    if ranges.is_empty() {
        return Cow::Borrowed(s);
    }
    ranges.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(ranges.len());
    for (a, b) in ranges {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    let mut out = String::with_capacity(s.len());
    let mut at = 0;
    for (start, end) in merged {
        out.push_str(&s[at..start]);
        out.push_str(REDACTED);
        at = end;
    }
    out.push_str(&s[at..]);
    Cow::Owned(out)
}

fn ends_value(c: u8) -> bool {
    c.is_ascii_whitespace()
        || matches!(
            c,
            b'"' | b'\'' | b'&' | b';' | b',' | b'`' | b'<' | b'>' | b')' | b'}'
        )
}

/// The end of the value starting at `from`: the first byte that ends a value.
fn value_end(b: &[u8], from: usize) -> usize {
    (from..b.len())
        .find(|&j| ends_value(b[j]))
        .unwrap_or(b.len())
}

/// `scheme://user:password@host`: the password goes, the user and host stay. A password
/// that itself holds `/` or `@` is still covered: the credentials run to the last `@` of
/// the whitespace-delimited word when a `:` comes before any `/`.
fn url_credentials(s: &str, ranges: &mut Vec<(usize, usize)>) {
    let mut from = 0;
    while let Some(pos) = s[from..].find("://") {
        let start = from + pos + 3;
        let word_end = s[start..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>'))
            .map_or(s.len(), |i| start + i);
        let word = &s[start..word_end];
        if let Some(at) = word.rfind('@') {
            let userinfo = &word[..at];
            if let Some(c) = userinfo.find(':') {
                if userinfo.find('/').is_none_or(|sl| c < sl) && at > c + 1 {
                    ranges.push((start + c + 1, start + at));
                }
            }
        }
        from = word_end.max(start);
    }
}

/// The value after a secret word found at `hit`: `key=value`, `key: value`,
/// `"key":"value"`, `--key value`, or `key <credential-looking word>` in prose.
fn pair_value(s: &str, hit: usize, word_len: usize, ranges: &mut Vec<(usize, usize)>) {
    let b = s.as_bytes();
    // The rest of the key: `PGPASSWORD`, `db_password_file`, `token_v2`.
    let mut i = hit + word_len;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
        i += 1;
    }
    let flag = hit >= 2 && &b[hit - 2..hit] == b"--";
    // Optional closing quote of a JSON key, then spaces.
    if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
        i += 1;
    }
    let sep_at = skip_spaces(b, i);
    let value_start = if sep_at < b.len() && (b[sep_at] == b'=' || b[sep_at] == b':') {
        skip_spaces(b, sep_at + 1)
    } else if sep_at > i && sep_at < b.len() && (flag || looks_like_credential(word_at(s, sep_at)))
    {
        sep_at
    } else {
        return;
    };
    let mut vs = value_start;
    let quote = b.get(vs).copied().filter(|c| *c == b'"' || *c == b'\'');
    if quote.is_some() {
        vs += 1;
    }
    let mut ve = match quote {
        Some(q) => (vs..b.len()).find(|&j| b[j] == q).unwrap_or(b.len()),
        None => value_end(b, vs),
    };
    // `Authorization: Bearer <token>`: the scheme word is not the secret, the next is.
    if quote.is_none() && is_auth_scheme(&s[vs..ve]) {
        let next = skip_spaces(b, ve);
        if next > ve && next < b.len() {
            ve = value_end(b, next);
        }
    }
    ranges.push((vs, ve));
}

/// `Bearer <token>` and `Basic <base64>` (HTTP Authorization values).
fn auth_scheme(s: &str, i: usize, ranges: &mut Vec<(usize, usize)>) {
    let b = s.as_bytes();
    for scheme in [&b"bearer "[..], &b"basic "[..]] {
        if word_at_ci(b, i, scheme) {
            let vs = i + scheme.len();
            let ve = value_end(b, vs);
            // Tokens are long; "basic auth" or "bearer of news" are not.
            if ve - vs >= 12 {
                ranges.push((vs, ve));
            }
        }
    }
}

/// A token with a well-known prefix at `i`.
fn prefixed_token(b: &[u8], i: usize, ranges: &mut Vec<(usize, usize)>) {
    for prefix in TOKEN_PREFIXES {
        if b[i..].starts_with(prefix) {
            let end = (i..b.len())
                .find(|&j| !(b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b'-'))
                .unwrap_or(b.len());
            // Long enough to be a credential, not a word like "sk-learn".
            if end - i >= prefix.len() + 12 {
                ranges.push((i, end));
            }
        }
    }
}

/// The whitespace-delimited word starting at `at`.
fn word_at(s: &str, at: usize) -> &str {
    let rest = &s[at..];
    &rest[..rest.find(char::is_whitespace).unwrap_or(rest.len())]
}

/// Whether a bare word after a secret's name looks like the secret itself rather than
/// prose ("the token expired"): letters and digits mixed, or very long.
fn looks_like_credential(word: &str) -> bool {
    let w = word.trim_end_matches(['.', ',', ';', ':', ')']);
    let has_digit = w.bytes().any(|c| c.is_ascii_digit());
    let has_alpha = w.bytes().any(|c| c.is_ascii_alphabetic());
    (w.len() >= 6 && has_digit && has_alpha) || w.len() >= 24
}

fn is_auth_scheme(word: &str) -> bool {
    ["bearer", "basic", "token", "digest"]
        .iter()
        .any(|w| word.eq_ignore_ascii_case(w))
}

fn skip_spaces(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(s: &str) -> String {
        redact_str(s).into_owned()
    }

    #[test]
    fn url_credentials() {
        assert_eq!(
            r("DATABASE_URL=postgres://app:s3cr3t@db:5432/app"),
            "DATABASE_URL=postgres://app:[REDACTED]@db:5432/app"
        );
        assert_eq!(
            r("connect postgresql://u:p@ss/w0rd@host/db now"),
            "connect postgresql://u:[REDACTED]@host/db now"
        );
        assert_eq!(
            r("see https://example.com/a@b"),
            "see https://example.com/a@b"
        );
        assert_eq!(r("http://host:8080/x"), "http://host:8080/x");
    }

    #[test]
    fn pairs_and_flags() {
        assert_eq!(r("PGPASSWORD=hunter2 psql"), "PGPASSWORD=[REDACTED] psql");
        assert_eq!(r("password: hunter2"), "password: [REDACTED]");
        assert_eq!(
            r(r#"{"api_token":"abc123"}"#),
            r#"{"api_token":"[REDACTED]"}"#
        );
        assert_eq!(r("x?token=abc&y=1"), "x?token=[REDACTED]&y=1");
        assert_eq!(
            r("run --password hunter2 now"),
            "run --password [REDACTED] now"
        );
        assert_eq!(r("the token expired"), "the token expired");
        assert_eq!(r("token ab12cd34ef rejected"), "token [REDACTED] rejected");
        assert_eq!(r("password reset for bob"), "password reset for bob");
    }

    #[test]
    fn schemes_and_prefixes() {
        assert_eq!(
            r("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc"),
            "Authorization: [REDACTED]"
        );
        assert_eq!(r("use Bearer abcdefghijklmnop"), "use Bearer [REDACTED]");
        assert_eq!(
            r("key ghp_abcdefghijklmnopqrstuvwxyz0123 ok"),
            "key [REDACTED] ok"
        );
        assert_eq!(r("task-runner sk-learn"), "task-runner sk-learn");
    }

    #[test]
    fn values() {
        let mut v = json!({
            "service": "rentguy",
            "db_password": "hunter2",
            "Secret": {"nested": 1},
            "env": ["POSTGRES_PASSWORD=hunter2", "A=b"],
            "argv": ["pg_dump", "--password", "hunter2", "-d", "x"],
            "token": null,
        });
        redact_value(&mut v);
        assert_eq!(
            v,
            json!({
                "service": "rentguy",
                "db_password": "[REDACTED]",
                "Secret": "[REDACTED]",
                "env": ["POSTGRES_PASSWORD=[REDACTED]", "A=b"],
                "argv": ["pg_dump", "--password", "[REDACTED]", "-d", "x"],
                "token": null,
            })
        );
    }
}
