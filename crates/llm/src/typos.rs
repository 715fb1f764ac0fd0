//! Verbs typed with two letters swapped ("stpo psra", "strat n8n", "bakcup acme").
//!
//! A small model reads "stpo" as nothing in particular and falls back on a status check;
//! retrieval embeds it as noise. A word that is a catalogue verb with two adjacent letters
//! swapped is read as that verb. The vocabulary is the words of the tool names, whose
//! swaps are not English words, so ordinary words are never rewritten.

use crate::plan::ToolDef;

/// Shortest word considered: the swaps of shorter words are too often other words.
const MIN_WORD: usize = 4;

/// `text` with each word that is a tool-name word with two adjacent letters swapped
/// replaced by that word; `None` when nothing changes.
pub fn unswap(text: &str, tools: &[ToolDef]) -> Option<String> {
    let mut vocabulary: Vec<String> = tools
        .iter()
        .flat_map(|t| t.name.split('_'))
        .filter(|w| w.len() >= MIN_WORD && w.chars().all(|c| c.is_ascii_lowercase()))
        .map(str::to_string)
        .collect();
    vocabulary.sort_unstable();
    vocabulary.dedup();
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut word = String::new();
    let mut flush = |word: &mut String, out: &mut String| {
        match corrected(word, &vocabulary) {
            Some(fix) => {
                out.push_str(fix);
                changed = true;
            }
            None => out.push_str(word),
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphabetic() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    changed.then_some(out)
}

/// The one vocabulary word that `word` (letters, any case) is with two adjacent letters
/// swapped.
fn corrected<'v>(word: &str, vocabulary: &'v [String]) -> Option<&'v str> {
    let word = word.to_ascii_lowercase();
    if word.len() < MIN_WORD || vocabulary.contains(&word) {
        return None;
    }
    let mut fits = vocabulary.iter().filter(|v| swapped_once(&word, v));
    match (fits.next(), fits.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}

/// Whether `a` is `b` with exactly one pair of adjacent, different letters swapped.
fn swapped_once(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let diff: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
    matches!(diff.as_slice(), [i, j] if *j == i + 1 && a[*i] == b[*j] && a[*j] == b[*i])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tools() -> Vec<ToolDef> {
        [
            "service_stop",
            "service_start",
            "service_restart",
            "db_backup",
            "service_logs",
        ]
        .iter()
        .map(|n| ToolDef {
            name: n.to_string(),
            description: String::new(),
            parameters: json!({"type": "object"}),
            effect: None,
        })
        .collect()
    }

    #[test]
    fn a_tool_verb_with_two_letters_swapped_is_read_as_the_verb() {
        let t = tools();
        assert_eq!(
            unswap("stpo vps-manager", &t).as_deref(),
            Some("stop vps-manager")
        );
        assert_eq!(
            unswap("strat psra again", &t).as_deref(),
            Some("start psra again")
        );
        assert_eq!(
            unswap("bakcup acme, then lgos", &t).as_deref(),
            Some("backup acme, then logs")
        );
        assert_eq!(unswap("Strat psra", &t).as_deref(), Some("start psra"));
    }

    #[test]
    fn words_that_are_not_swapped_verbs_stay_as_written() {
        let t = tools();
        for text in [
            "stop psra",
            "spot the error in the form",
            "Stop PSRA",
            "stopp psra", // not a swap
            "spto",       // more than one swap away
        ] {
            assert_eq!(unswap(text, &t), None, "{text}");
        }
    }
}
