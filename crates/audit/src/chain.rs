//! The chain's encoding: canonical JSON of an entry and the record hash.
//!
//! A record's hash is
//!
//! ```text
//! sha256("steward-audit/1\n" || decimal(seq) || "\n" || prev_hash || "\n" || entry_json)
//! ```
//!
//! in lowercase hex, where `entry_json` is the canonical JSON of the entry: object keys
//! sorted by byte order at every depth, no whitespace, strings escaping only `"`, `\\` and
//! control characters (as serde_json does), numbers as serde_json prints them. The first
//! record's `prev_hash` is [`GENESIS`]. The store keeps `entry_json` byte for byte, so a
//! verifier recomputes the hash without re-encoding anything, and an outsider can check a
//! record with `printf` and `sha256sum`.
//!
//! The key order is fixed here rather than left to serde_json, because whether serde_json
//! keeps insertion order depends on a cargo feature any crate in the build may switch on.

use serde_json::Value;
use steward_protocol::AuditEntry;

use crate::{Error, Result};

/// `prev_hash` of seq 1: there is nothing before it.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const DOMAIN: &[u8] = b"steward-audit/1\n";

/// The canonical JSON of `entry`, exactly the bytes that are hashed and stored.
pub fn canonical_json(entry: &AuditEntry) -> Result<String> {
    let value = serde_json::to_value(entry).map_err(Error::Encode)?;
    let mut out = String::with_capacity(256);
    write_canonical(&value, &mut out)?;
    Ok(out)
}

fn write_canonical(value: &Value, out: &mut String) -> Result<()> {
    match value {
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(key, out);
                out.push(':');
                write_canonical(v, out)?;
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out)?;
            }
            out.push(']');
        }
        Value::String(s) => write_str(s, out),
        Value::Number(n) => {
            use std::fmt::Write;
            let _ = write!(out, "{n}"); // writing to a String cannot fail
        }
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Null => out.push_str("null"),
    }
    Ok(())
}

/// A JSON string literal: `"` and `\` escaped, control characters as `\n`-style short
/// escapes or `\u00xx`, everything else (all non-ASCII included) as is. Written here rather
/// than borrowed from serde_json so the hashed bytes depend on this crate alone.
fn write_str(s: &str, out: &mut String) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xf) as usize] as char);
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// The hash of the record `seq` whose predecessor has hash `prev_hash`.
pub fn record_hash(seq: u64, prev_hash: &str, entry_json: &str) -> String {
    hex::encode(record_digest(seq, prev_hash, entry_json))
}

pub(crate) fn record_digest(seq: u64, prev_hash: &str, entry_json: &str) -> [u8; 32] {
    let mut msg = Vec::with_capacity(DOMAIN.len() + 20 + 2 + prev_hash.len() + entry_json.len());
    msg.extend_from_slice(DOMAIN);
    push_decimal(&mut msg, seq);
    msg.push(b'\n');
    msg.extend_from_slice(prev_hash.as_bytes());
    msg.push(b'\n');
    msg.extend_from_slice(entry_json.as_bytes());
    sha256(&msg)
}

fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// SHA-256 of a whole message, padded here and compressed by `sha2::compress256` block by
/// block.
///
/// Why not `Sha256::digest`: the workspace builds its own crates unoptimized, and the
/// generic buffering layers of `digest` are instantiated (unoptimized) in this crate, which
/// made hashing the slowest part of `verify` (3.3 µs for 600 bytes against 0.6 µs here).
/// `compress256` itself is compiled in the optimized `sha2` crate and uses SHA-NI when the
/// CPU has it. The unit tests check this against `Sha256` for every padding case.
pub(crate) fn sha256(msg: &[u8]) -> [u8; 32] {
    use sha2::digest::generic_array::GenericArray;
    let mut state: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let full = msg.len() / 64 * 64;
    for block in msg[..full].chunks_exact(64) {
        sha2::compress256(
            &mut state,
            std::slice::from_ref(GenericArray::from_slice(block)),
        );
    }
    let rest = &msg[full..];
    let mut tail = [0u8; 128];
    tail[..rest.len()].copy_from_slice(rest);
    tail[rest.len()] = 0x80;
    let tail_len = if rest.len() < 56 { 64 } else { 128 };
    tail[tail_len - 8..tail_len].copy_from_slice(&((msg.len() as u64) * 8).to_be_bytes());
    for block in tail[..tail_len].chunks_exact(64) {
        sha2::compress256(
            &mut state,
            std::slice::from_ref(GenericArray::from_slice(block)),
        );
    }
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// Whether a stored hex hash equals a computed digest (case-sensitive: the log writes
/// lowercase, so an uppercased hash is an edit too).
pub(crate) fn hash_matches(stored: &str, digest: &[u8; 32]) -> bool {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let s = stored.as_bytes();
    if s.len() != 64 {
        return false;
    }
    let mut i = 0;
    while i < 32 {
        let b = digest[i];
        if s[2 * i] != HEX[(b >> 4) as usize] || s[2 * i + 1] != HEX[(b & 0xf) as usize] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_protocol::{AuditKind, Timestamp};

    #[test]
    fn keys_are_sorted_at_every_depth() {
        let entry = AuditEntry {
            at: Timestamp(5),
            kind: Some(AuditKind::ExecBegin),
            tool: Some("service_restart".into()),
            args: Some(serde_json::json!({"z": 1, "a": {"y": [true, null], "b": "x\"y"}})),
            ..Default::default()
        };
        assert_eq!(
            canonical_json(&entry).unwrap(),
            r#"{"args":{"a":{"b":"x\"y","y":[true,null]},"z":1},"at":5,"kind":"exec_begin","tool":"service_restart"}"#
        );
    }

    #[test]
    fn sha256_matches_the_reference_for_every_padding_case() {
        use sha2::{Digest, Sha256};
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in 0..data.len() {
            let want: [u8; 32] = Sha256::digest(&data[..len]).into();
            assert_eq!(sha256(&data[..len]), want, "length {len}");
        }
        let mut digits = Vec::new();
        for n in [0u64, 7, 10, 1234567890, u64::MAX] {
            digits.clear();
            push_decimal(&mut digits, n);
            assert_eq!(digits, n.to_string().into_bytes());
        }
    }

    #[test]
    fn strings_escape_like_json() {
        for s in [
            "plain",
            "quote \" back \\ slash",
            "ctl \u{1} \u{1f} \n\r\t\u{8}\u{c}",
            "ünï ☃ \u{7f}",
        ] {
            let mut out = String::new();
            write_str(s, &mut out);
            assert_eq!(out, serde_json::to_string(s).unwrap());
            assert_eq!(serde_json::from_str::<String>(&out).unwrap(), s);
        }
    }

    #[test]
    fn kind_column_names_match_serde() {
        use AuditKind::*;
        for k in [
            Refused,
            ApprovalRequested,
            ApprovalAnswered,
            ExecBegin,
            ExecEnd,
            Reconciled,
            PolicyChanged,
        ] {
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                serde_json::Value::String(crate::db::kind_name(k).into())
            );
        }
    }

    #[test]
    fn hash_is_reproducible_with_shell_tools() {
        // printf 'steward-audit/1\n1\n%s\n{}' 000…0 | sha256sum
        let h = record_hash(1, GENESIS, "{}");
        assert_eq!(
            h,
            "c90b9f6341950a51ceb9dbfdacbfe235f252558fc1a4835c57dc4e895a62bdae"
        );
        assert!(hash_matches(&h, &record_digest(1, GENESIS, "{}")));
        assert_ne!(h, record_hash(2, GENESIS, "{}"));
    }
}
