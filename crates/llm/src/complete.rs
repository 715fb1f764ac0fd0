//! Completing values the model has begun to copy from the conversation.
//!
//! A small model spends a forward pass on every token of a value it copies: an inventory
//! name, a backup id (`rentguy-20261123T020000000Z` is about twenty tokens, since digits
//! are tokens of their own), an image reference, a number. Once what the model has
//! written begins exactly one candidate, the decoder forces the rest of it in one batch.
//! Ending the value stays the model's choice, so it can still write something longer.
//!
//! Uniqueness is judged against every word (or number) of the conversation, not only the
//! long ones: "20" is never completed to "2026-11-20" while the conversation also says "20".

use crate::ground::{named_items, INVENTORIED};
use crate::plan::{PlanRequest, Turn};

/// Shortest word worth completing outside the inventory: a literal such as a backup id,
/// an image reference or a timestamp, not a plain word the model may want to shorten.
const MIN_LITERAL_CHARS: usize = 8;
/// Digits a literal carries at least (one forward pass each when written).
const MIN_LITERAL_DIGITS: usize = 3;
/// Characters the model must write itself before a literal is completed.
const MIN_LITERAL_START: usize = 2;
/// A string argument that may be longer than this is free text (a message, a search
/// query), which may begin with a literal but goes on past it: never completed.
const MAX_IDENTIFIER_CHARS: u64 = 255;

/// The rest of a string value the model has begun.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StringRest<'c> {
    pub text: &'c str,
    /// The value ends with it.
    pub closes: bool,
}

/// What string and number arguments may be completed to, gathered once per request.
#[derive(Debug, Clone, Default)]
pub struct Completions {
    /// Inventory items the person named: candidates for the arguments that take an item.
    names: Vec<String>,
    /// Every word of the conversation, data included: runs of `[A-Za-z0-9._:/@+-]`.
    words: Vec<String>,
    /// Every number of the conversation, as written.
    numbers: Vec<String>,
    /// Arguments that hold free text (see [`MAX_IDENTIFIER_CHARS`]).
    free_text: Vec<String>,
    /// The words of the person's latest turn, lowercased.
    latest_words: Vec<String>,
}

impl Completions {
    /// The candidates of a planning request: the items the person named, and the words and
    /// numbers of every turn. Data the agent read counts, since that is where backup ids
    /// and release ids come from; a completion only finishes what the model chose to start.
    pub fn of(req: &PlanRequest) -> Completions {
        let texts = req.turn_texts();
        let mut completions = Completions::new(named_items(req), texts.iter().map(String::as_str));
        completions.free_text = req
            .tools
            .iter()
            .filter_map(|t| t.parameters.get("properties")?.as_object())
            .flatten()
            .filter(|(_, p)| {
                p.get("maxLength")
                    .and_then(serde_json::Value::as_u64)
                    .is_some_and(|max| max > MAX_IDENTIFIER_CHARS)
            })
            .map(|(key, _)| key.clone())
            .collect();
        if let Some(text) = req.turns.iter().rev().find_map(|t| match t {
            Turn::User { text } => Some(text),
            _ => None,
        }) {
            completions.latest_words = words_in(&text.to_lowercase()).collect();
        }
        completions
    }

    /// Candidates from inventory `names` and conversation `texts`.
    pub fn new<'t>(names: Vec<String>, texts: impl IntoIterator<Item = &'t str>) -> Completions {
        let mut words = Vec::new();
        let mut numbers = Vec::new();
        for text in texts {
            words.extend(words_in(text));
            numbers.extend(numbers_in(text));
        }
        for list in [&mut words, &mut numbers] {
            list.sort_unstable();
            list.dedup();
        }
        Completions {
            names,
            words,
            numbers,
            free_text: Vec::new(),
            latest_words: Vec::new(),
        }
    }

    /// The rest of the string argument `key` once the model has written `written`: the
    /// named item it begins (for an inventory argument), else the literal it begins.
    pub fn string_rest(&self, key: &str, written: &str) -> Option<StringRest<'_>> {
        if INVENTORIED.contains(&key) {
            // The name ends with the item when the person's latest words hold it whole;
            // otherwise they may have meant a longer name the inventory lacks ("psra-staging"
            // beside "psra"), and the model decides where the name ends.
            return unique_fit(&self.names, written).map(|f| StringRest {
                text: &f[written.len()..],
                closes: self.latest_words.iter().any(|w| w == f),
            });
        }
        if written.len() < MIN_LITERAL_START || self.free_text.iter().any(|k| k == key) {
            return None;
        }
        // A literal is a whole word of the conversation, which nothing there continues: the
        // value ends with it, and the forced tokens need no forward pass of their own when
        // no choice follows.
        unique_fit(&self.words, written)
            .filter(|w| is_literal(w))
            .map(|f| StringRest {
                text: &f[written.len()..],
                closes: true,
            })
    }

    /// The rest of a number once the model has written the digits `written`; an integer
    /// (`fraction` false) is never completed into a decimal.
    pub fn number_rest(&self, written: &str, fraction: bool) -> Option<&str> {
        unique_fit(&self.numbers, written)
            .map(|f| &f[written.len()..])
            .filter(|rest| fraction || !rest.contains('.'))
    }
}

/// The one candidate that begins with `written` and goes on past it.
fn unique_fit<'c>(candidates: &'c [String], written: &str) -> Option<&'c str> {
    if written.is_empty() {
        return None;
    }
    let mut fits = candidates.iter().filter(|c| c.starts_with(written));
    match (fits.next(), fits.next()) {
        (Some(only), None) if only.len() > written.len() => Some(only),
        _ => None,
    }
}

fn is_literal(word: &str) -> bool {
    word.len() >= MIN_LITERAL_CHARS
        && word.chars().filter(char::is_ascii_digit).count() >= MIN_LITERAL_DIGITS
}

/// Runs of identifier characters, without trailing punctuation ("…000Z." ends a sentence).
fn words_in(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || "._:/@+-".contains(c)))
        .map(|w| w.trim_end_matches(['.', ':', '-', '/', '@', '+']))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
}

/// Digit runs with at most one decimal point each: "1.4.2" gives "1.4" and "2". A minus
/// that stands before a run as a sign ("b=-3", "to -2") is kept; one inside a word or a
/// date ("r3-2", "2026-11-23") is not.
fn numbers_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut seen_point = false;
    let mut before: [Option<char>; 2] = [None, None];
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let next_is_digit = chars.peek().is_some_and(char::is_ascii_digit);
        if c.is_ascii_digit() {
            let sign = current.is_empty()
                && before[1] == Some('-')
                && !before[0].is_some_and(|b| b.is_ascii_alphanumeric());
            if sign {
                current.push('-');
            }
            current.push(c);
        } else if c == '.' && !seen_point && !current.is_empty() && next_is_digit {
            current.push(c);
            seen_point = true;
        } else if !current.is_empty() {
            out.push(std::mem::take(&mut current));
            seen_point = false;
        }
        before = [before[1], Some(c)];
    }
    if !current.is_empty() {
        out.push(current);
    }
    // "12,000" holds the run "000", which no JSON number begins with.
    out.retain(|n| {
        let digits = n.trim_start_matches('-');
        !(digits.starts_with('0') && digits[1..].starts_with(|c: char| c.is_ascii_digit()))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(texts: &[&str]) -> Completions {
        Completions::new(
            vec!["acme-research".into(), "psra".into()],
            texts.iter().copied(),
        )
    }

    #[test]
    fn an_inventory_argument_completes_to_the_named_item_it_begins() {
        let c = of(&["restart acme"]);
        let rest = c.string_rest("service", "ac").unwrap();
        assert_eq!(rest.text, "me-research");
        assert!(!rest.closes, "the model may go on to a longer name");
        assert_eq!(c.string_rest("service", "psra"), None, "already whole");
        assert_eq!(c.string_rest("service", "x"), None);
    }

    #[test]
    fn a_named_item_ends_the_value_only_when_the_person_wrote_it_whole() {
        use crate::plan::{Inventory, InventoryItem};
        let req = |text: &str| PlanRequest {
            turns: vec![Turn::User { text: text.into() }],
            inventory: Inventory {
                services: vec![InventoryItem {
                    name: "psra".into(),
                    kind: "platform".into(),
                    description: String::new(),
                    image: String::new(),
                }],
            },
            ..PlanRequest::default()
        };
        let rest = |text: &str| {
            let c = Completions::of(&req(text));
            c.string_rest("service", "ps")
                .map(|r| (r.text.to_string(), r.closes))
        };
        assert_eq!(rest("restart PSRA now"), Some(("ra".into(), true)));
        assert_eq!(rest("restart psra-staging"), Some(("ra".into(), false)));
    }

    #[test]
    fn a_literal_of_the_conversation_completes_once_its_start_is_unique() {
        let c = of(&[
            "verify the newest",
            "rentguy-20261123T020000000Z 4.1 MB\nrentguy-20261122T020000000Z 4.0 MB.",
        ]);
        assert_eq!(c.string_rest("backup", "rentguy-2026112"), None, "two fit");
        let rest = c.string_rest("backup", "rentguy-20261123").unwrap();
        assert_eq!(
            rest.text, "T020000000Z",
            "the full stop after it is not part of it"
        );
        assert!(rest.closes, "a whole word of the conversation");
        assert_eq!(
            c.string_rest("backup", "rentguy-20261122T").map(|r| r.text),
            Some("020000000Z")
        );
        assert_eq!(
            c.string_rest("backup", "r"),
            None,
            "one character is too little"
        );
    }

    #[test]
    fn plain_words_and_starts_shared_with_short_words_are_not_completed() {
        let c = of(&["show timeouts in psra since 20 minutes before 2026-11-20T14:00:00Z"]);
        assert_eq!(c.string_rest("grep", "time"), None, "a word, not a literal");
        assert_eq!(c.string_rest("to", "20"), None, "\"20\" is a word too");
        assert_eq!(
            c.string_rest("to", "202").map(|r| r.text),
            Some("6-11-20T14:00:00Z")
        );
    }

    #[test]
    fn free_text_arguments_are_not_completed() {
        use crate::plan::ToolDef;
        let req = PlanRequest {
            turns: vec![Turn::User {
                text: "tell ops registry.local/psra:1.4.2 is out".into(),
            }],
            tools: vec![ToolDef {
                name: "notify".into(),
                description: String::new(),
                parameters: serde_json::json!({"type": "object", "properties": {
                    "message": {"type": "string", "maxLength": 2000},
                    "image": {"type": "string", "maxLength": 255}}}),
                effect: None,
            }],
            ..PlanRequest::default()
        };
        let c = Completions::of(&req);
        assert_eq!(c.string_rest("message", "registry"), None);
        assert_eq!(
            c.string_rest("image", "registry").map(|r| r.text),
            Some(".local/psra:1.4.2")
        );
    }

    #[test]
    fn numbers_complete_from_the_conversation_and_integers_stay_integers() {
        let c = of(&["give psra 768 MB and 2 cpus, or 1.5 GB; version 2048"]);
        assert_eq!(c.number_rest("7", false), Some("68"));
        assert_eq!(c.number_rest("2", false), None, "2 and 2048 both fit");
        assert_eq!(c.number_rest("20", false), Some("48"));
        assert_eq!(c.number_rest("1", true), Some(".5"));
        assert_eq!(c.number_rest("1", false), None, "no integer begins with 1");
    }

    #[test]
    fn numbers_are_split_at_a_second_point_and_at_letters() {
        assert_eq!(
            numbers_in("image 1.4.2 and 768MB."),
            vec!["1.4", "2", "768"]
        );
        // No JSON number begins with a zero another digit follows.
        assert_eq!(numbers_in("12,000 miles, 0.5 and 05"), vec!["12", "0.5"]);
        assert_eq!(of(&["12,000 miles"]).number_rest("0", false), None);
    }

    #[test]
    fn a_minus_sign_is_kept_and_a_hyphen_is_not() {
        assert_eq!(
            numbers_in("b=-3, c = -4.5 on 2026-11-23 for r3-2"),
            vec!["-3", "-4.5", "2026", "11", "23", "3", "2"]
        );
        let c = of(&["coefficients 5, 20 and -25"]);
        assert_eq!(c.number_rest("-", false), Some("25"));
        assert_eq!(c.number_rest("2", false), Some("0"), "-25 is not 25");
    }
}
