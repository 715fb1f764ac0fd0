//! Bounds on what a refusal keeps of the input it refused. A 10 MB bill of materials that
//! fails validation must not become a 20 MB audit record (the arguments plus an error
//! message quoting them) nor 10 MB on a terminal: records keep a prefix with the size and
//! sha256 of the whole, and messages are cut with a note of what was left out.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Largest arguments accepted at all; the door every way in goes through.
pub const MAX_ARGS_BYTES: usize = 1024 * 1024;
/// Arguments up to this size are recorded whole in a refusal.
const KEEP_ARGS_BYTES: usize = 16 * 1024;
/// What a clipped record keeps of the arguments' JSON text.
const PREFIX_BYTES: usize = 1024;
/// Longest message a refusal carries.
pub const MAX_MESSAGE_BYTES: usize = 2048;

/// `args` as a refusal records them: whole when small, else a prefix of their JSON text
/// with the size and sha256 of all of it (enough to recognise the input later).
pub fn args(args: &Value) -> Value {
    let text = args.to_string();
    if text.len() <= KEEP_ARGS_BYTES {
        return args.clone();
    }
    json!({
        "clipped": true,
        "bytes": text.len(),
        "sha256": hex::encode(Sha256::digest(text.as_bytes())),
        "prefix": prefix(&text, PREFIX_BYTES),
    })
}

/// `text` cut to `max` bytes (on a character boundary) with a note of how much was left out.
pub fn text(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let kept = prefix(text, max);
    format!("{kept}… ({} more bytes)", text.len() - kept.len())
}

fn prefix(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_input_is_kept_whole_and_large_input_is_summarised() {
        let small = json!({"service": "rentguy"});
        assert_eq!(args(&small), small);
        let big = json!({"blob": "é".repeat(300_000)});
        let clipped = args(&big);
        assert_eq!(clipped["clipped"], true);
        assert_eq!(clipped["bytes"], big.to_string().len());
        assert_eq!(clipped["sha256"].as_str().map(str::len), Some(64));
        assert!(clipped.to_string().len() < 2 * PREFIX_BYTES);
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary_with_a_note() {
        let t = text(&"ü".repeat(5000), 101);
        assert!(t.ends_with("more bytes)"), "{t}");
        assert!(t.len() < 160, "{}", t.len());
        assert_eq!(text("short", 100), "short");
    }
}
