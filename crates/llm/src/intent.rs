//! Reading what the person's words ask for, deterministically:
//! - destructive intent: a destructive tool (one that loses data or removes something:
//!   `tenant_destroy`, `db_restore`, a foreign tool declared `destructive`) is proposed only
//!   when the person's own words ask for loss or removal. "stop", "pause", "kick" or "for
//!   now" never do, whatever a model makes of them;
//! - the tool a word names: a word of the request that belongs to one tool's vocabulary
//!   and no other's (its name, and the words for its act in `prompts/tool_verbs.toml`:
//!   "kick" is only `service_restart`'s, "tell" only `notify`'s) settles which tool it is,
//!   however a small model weighs the nouns around it ("stop the demo-lab *tenant* for now"
//!   is still a stop).

use std::collections::HashMap;

use crate::plan::ToolDef;

/// Stems of the words that ask for loss of data or removal; a word is one of them with an
/// ending of [`ENDINGS`] ("deleting", "removed", "wipes", but not "erasmus").
const LOSS_STEMS: [&str; 22] = [
    "delet",
    "destroy",
    "drop",
    "remov",
    "wipe",
    "wiping",
    "eras",
    "purg",
    "nuke",
    "nuking",
    "obliterat",
    "decommission",
    "deprovision",
    "terminat",
    "uninstall",
    "scrap",
    "trash",
    "eliminat",
    "discard",
    "overwrit",
    "restor",
    "offboard",
];

/// Endings a stem takes in a word.
const ENDINGS: [&str; 16] = [
    "", "e", "s", "es", "d", "ed", "ing", "ion", "ions", "al", "ped", "ping", "ment", "ure",
    "ation", "ten",
];

/// Whether `word` is `stem` with one of [`ENDINGS`].
fn inflects(word: &str, stem: &str) -> bool {
    word.strip_prefix(stem)
        .is_some_and(|ending| ENDINGS.contains(&ending))
}

/// Phrases that ask for removal in several words.
const LOSS_PHRASES: [&str; 5] = [
    "tear down",
    "tear it down",
    "get rid of",
    "rm -",
    "for good",
];

/// Words that make a request temporary, which removal never is.
const TEMPORARY: [&str; 5] = [
    "for now",
    "temporarily",
    "for a while",
    "for the moment",
    "until",
];

/// Whether `text` (the person's words) asks for what `tool` does when it is destructive:
/// a word of loss or removal, or the verb in the tool's own name that no other offered
/// tool's name shares (`cancel` in `cancel_order` next to `get_order`). A temporary
/// request ("stop it for now") never does.
pub fn asks_for_loss(text: &str, tool: &ToolDef, tools: &[ToolDef]) -> bool {
    let lower = text.to_lowercase().replace('\u{2019}', "'");
    if TEMPORARY.iter().any(|t| lower.contains(t)) {
        return false;
    }
    if speaks_of_loss(&lower) {
        return true;
    }
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    name_parts(&tool.name)
        .into_iter()
        .filter(|part| part.len() >= 4)
        .filter(|part| {
            !tools
                .iter()
                .filter(|t| t.name != tool.name)
                .any(|t| name_parts(&t.name).contains(part))
        })
        .any(|verb| words.iter().any(|w| inflects(w, &verb)))
}

/// Whether lowercase `text` holds a word or phrase of loss or removal, ordered or not.
fn speaks_of_loss(lower: &str) -> bool {
    LOSS_PHRASES.iter().any(|p| lower.contains(p))
        || lower
            .split(|c: char| !c.is_alphanumeric())
            .any(|w| LOSS_STEMS.iter().any(|s| inflects(w, s)))
}

/// Whether a tool removes something by its own words: a word of loss in its name or
/// description (`remove_item`, "Delete a file"), declared destructive or not.
pub fn removes(tool: &ToolDef) -> bool {
    let words = format!("{} {}", name_parts(&tool.name).join(" "), tool.description);
    speaks_of_loss(&words.to_lowercase())
}

/// Words that may open a request before its verb: "can u nuke the logs", "please wipe it",
/// "i want to delete them", "let's drop it".
const OPENERS: [&str; 23] = [
    "please", "pls", "plz", "can", "could", "would", "will", "you", "u", "we", "just", "now", "ok",
    "okay", "so", "go", "let", "lets", "s", "us", "i", "want", "to",
];

/// Words that join two clauses, each with a verb of its own: "wipe the cache and restart".
const JOINERS: [&str; 3] = ["and", "then", "but"];

/// The lowercase words of `text` (split as [`named_tool`] splits them), each with whether
/// it is the verb of its clause: the first word after the start, a stop or comma, or a
/// joining word, once openers are passed. "kick the proctoring service, exams start in 10
/// min" orders with "kick"; "exams" opens the second clause, so its "start" orders nothing.
fn words_with_verbs(lower: &str) -> Vec<(&str, bool)> {
    let mut out = Vec::new();
    let mut clause_open = true;
    for piece in lower.split_inclusive([',', '.', ';', '!', '?', ':']) {
        for word in piece
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            if JOINERS.contains(&word) {
                clause_open = true;
                out.push((word, false));
            } else if clause_open && !OPENERS.contains(&word) {
                clause_open = false;
                out.push((word, true));
            } else {
                out.push((word, false));
            }
        }
        clause_open = true;
    }
    out
}

/// Whether a clause of `text` orders removal or loss with its verb ("nuke the logs of
/// sms-reminders", "delete the old invoicing backups"), as opposed to speaking of one
/// ("who deleted it", "dispatch-api is dropping jobs", "don't delete anything"). A restore
/// is left out: reading the backups is its first step.
pub fn orders_loss(text: &str) -> bool {
    let lower = text.to_lowercase().replace('\u{2019}', "'");
    if TEMPORARY.iter().any(|t| lower.contains(t)) {
        return false;
    }
    let words = words_with_verbs(&lower);
    words.iter().enumerate().any(|(i, &(word, is_verb))| {
        // The verb as ordered: "delete", not "i deleted it by mistake" or "nuking it".
        let ordered = |stem: &str| {
            word.strip_prefix(stem)
                .is_some_and(|ending| ending.is_empty() || ending == "e")
                && !word.ends_with("ing")
        };
        let rest = || {
            words[i..]
                .iter()
                .map(|(w, _)| *w)
                .collect::<Vec<_>>()
                .join(" ")
        };
        is_verb
            && (LOSS_STEMS
                .iter()
                .filter(|s| **s != "restor")
                .any(|s| ordered(s))
                || LOSS_PHRASES.iter().any(|p| rest().starts_with(p)))
    })
}

/// Whether a clause of `text` orders an act other than loss with its verb: a word of a
/// tool's vocabulary ("wipe the cache and *restart* redis") or a verb that asks for the act
/// its noun names ("delete the old backups and *take* a new one").
pub fn orders_another_act(text: &str, tools: &[ToolDef]) -> bool {
    let lower = text.to_lowercase();
    let vocabulary = tool_vocabulary(tools, tool_verbs());
    clause_verbs(&lower).into_iter().any(|verb| {
        LIGHT_VERBS.contains(&verb) || vocabulary.iter().any(|(_, words)| orders_with(words, verb))
    })
}

/// The verbs of the clauses of lowercase `text` ([`words_with_verbs`]).
fn clause_verbs(lower: &str) -> Vec<&str> {
    words_with_verbs(lower)
        .into_iter()
        .filter_map(|(w, is_verb)| is_verb.then_some(w))
        .collect()
}

/// Whether `verb` opens a word of a tool's `vocabulary` ("bring" of "bring+up").
fn orders_with(vocabulary: &[String], verb: &str) -> bool {
    vocabulary.iter().any(|w| w.split('+').next() == Some(verb))
}

/// The words for each catalogue tool's act: `prompts/tool_verbs.toml`.
pub const TOOL_VERBS: &str = include_str!("../../../prompts/tool_verbs.toml");

/// [`TOOL_VERBS`], parsed once (shipped data; a test of its own parses it strictly).
pub fn tool_verbs() -> &'static HashMap<String, String> {
    static VERBS: std::sync::OnceLock<HashMap<String, String>> = std::sync::OnceLock::new();
    VERBS.get_or_init(|| toml::from_str(TOOL_VERBS).unwrap_or_default())
}

/// Words of tool names too general to tell tools apart ("check psra" is no subdomain check,
/// "search the invoicing logs" no audit search).
const GENERAL_NAME_WORDS: [&str; 11] = [
    "check", "show", "make", "find", "search", "list", "update", "add", "create", "remove", "info",
];

/// The one tool of `tools` that a word of `text` names: each tool's vocabulary is the words
/// of its name (four letters or more, and not [`GENERAL_NAME_WORDS`]) and its words in
/// `verbs` ([`TOOL_VERBS`]); a word counts only when it is in exactly one tool's
/// vocabulary, so words shared by several ("service", "tenant") name the thing acted on,
/// not the act. `None` when no such word is there, or words name different tools
/// ("restart psra and tell me").
pub fn named_tool(
    text: &str,
    tools: &[ToolDef],
    verbs: &HashMap<String, String>,
) -> Option<String> {
    let named = tools_named(text, tools, verbs);
    match named.as_slice() {
        [one] => Some(one.to_string()),
        [] => None,
        // Words of several tools: the one a clause's verb names is the act ordered ("kick
        // the proctoring service, exams start in 10 min" is a restart).
        _ => {
            let vocabulary = tool_vocabulary(tools, verbs);
            let lower = text.to_lowercase();
            let verbs = clause_verbs(&lower);
            let ordered: Vec<&str> = vocabulary
                .iter()
                .filter(|(name, words)| {
                    named.iter().any(|n| n == name) && verbs.iter().any(|v| orders_with(words, v))
                })
                .map(|(name, _)| *name)
                .collect();
            match ordered.as_slice() {
                [one] => Some(one.to_string()),
                _ => None,
            }
        }
    }
}

/// Every tool of `tools` that a word of `text` names, as [`named_tool`] reads words: a
/// word in exactly one tool's vocabulary, or a verb of two words, and not a change spoken
/// of as an event ("a restart loop"). Sorted, each once.
pub fn tools_named(text: &str, tools: &[ToolDef], verbs: &HashMap<String, String>) -> Vec<String> {
    let vocabulary = tool_vocabulary(tools, verbs);
    let owners = |word: &str| -> Vec<&str> {
        vocabulary
            .iter()
            .filter(|(_, words)| words.iter().any(|w| w == word))
            .map(|(name, _)| *name)
            .collect()
    };
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let reads = |name: &str| tools.iter().any(|t| t.name == name && t.changes_nothing());
    let mut named: Vec<String> = words
        .iter()
        .enumerate()
        .filter(|(_, w)| w.len() >= 3)
        .filter_map(|(i, w)| match owners(w).as_slice() {
            // "the psra deploy broke it" and "a restart loop" speak of an act, and do not
            // ask for it; a read is asked for by its noun ("the status of n8n").
            [one] if is_event_noun(&words, i) && !reads(one) => None,
            [one] => Some(one.to_string()),
            _ => None,
        })
        .collect();
    named.extend(
        vocabulary
            .iter()
            .filter(|(_, vocabulary)| {
                vocabulary
                    .iter()
                    .filter_map(|w| w.split_once('+'))
                    .any(|(verb, particle)| says_phrasal(&words, verb, particle))
            })
            .map(|(name, _)| name.to_string()),
    );
    named.sort_unstable();
    named.dedup();
    named
}

/// Each tool's vocabulary: the words of its name (four letters or more, and not
/// [`GENERAL_NAME_WORDS`]) and its words in `verbs`, a verb of two words as "verb+particle".
fn tool_vocabulary<'t>(
    tools: &'t [ToolDef],
    verbs: &HashMap<String, String>,
) -> Vec<(&'t str, Vec<String>)> {
    tools
        .iter()
        .map(|t| {
            let mut words: Vec<String> = name_parts(&t.name)
                .into_iter()
                .filter(|w| w.len() >= 4 && !GENERAL_NAME_WORDS.contains(&w.as_str()))
                .collect();
            if let Some(v) = verbs.get(&t.name) {
                words.extend(v.split_whitespace().map(str::to_lowercase));
            }
            (t.name.as_str(), words)
        })
        .collect()
}

/// Whether `words` hold a verb of two words, its particle right after it or a word or two
/// later: "bring grafana up", "their portal switched off". A particle followed by a word of
/// state belongs to that state: "go back online" is a start, not "go back".
fn says_phrasal(words: &[&str], verb: &str, particle: &str) -> bool {
    const MAX_GAP: usize = 3;
    const STATES: [&str; 6] = ["online", "offline", "up", "down", "on", "off"];
    words.iter().enumerate().any(|(i, w)| {
        inflects(w, verb)
            && (i + 1..words.len()).take(MAX_GAP).any(|j| {
                words[j] == particle
                    && (STATES.contains(&particle)
                        || !words.get(j + 1).is_some_and(|next| STATES.contains(next)))
            })
    })
}

/// Words that make the word after them a noun: articles, possessives (the "s" of
/// "yesterday's"), and words that pick one of several ("the last deploy", "last deploy").
const DETERMINERS: [&str; 17] = [
    "the", "a", "an", "this", "that", "its", "their", "our", "my", "your", "his", "her", "s",
    "last", "latest", "previous", "recent",
];
/// Verbs that ask for the act their noun names: "take a backup", "give it a restart".
const LIGHT_VERBS: [&str; 14] = [
    "take", "make", "do", "run", "trigger", "start", "kick", "off", "give", "perform", "need",
    "want", "schedule", "queue",
];

/// Whether `words[i]` is a noun for an event (after a determiner, or after a determiner and
/// one more word: "the nightly backup") that no light verb asks to have done, and that
/// takes no pronoun for an object.
fn is_event_noun(words: &[&str], i: usize) -> bool {
    // A word with a pronoun for its object is a verb: "within a minute notify me".
    const OBJECTS: [&str; 8] = [
        "me", "us", "it", "them", "him", "her", "someone", "everyone",
    ];
    if words.get(i + 1).is_some_and(|next| OBJECTS.contains(next)) {
        return false;
    }
    let at = |k: usize| i.checked_sub(k).map(|j| words[j]);
    let determiner = |k: usize| at(k).is_some_and(|w| DETERMINERS.contains(&w));
    let Some(det) = [1, 2].into_iter().find(|&k| determiner(k)) else {
        return false;
    };
    // The verb before the determiner, perhaps with "it" or "them" between.
    let asked = (det + 1..=det + 2).any(|k| at(k).is_some_and(|w| LIGHT_VERBS.contains(&w)));
    !asked
}

/// The lowercase words of a tool name: `tenant_destroy`, `cancelOrder`, `delete-file`.
fn name_parts(name: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut part = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() && !part.is_empty() {
            parts.push(std::mem::take(&mut part));
        }
        if c.is_alphanumeric() {
            part.push(c.to_ascii_lowercase());
        } else if !part.is_empty() {
            parts.push(std::mem::take(&mut part));
        }
    }
    if !part.is_empty() {
        parts.push(part);
    }
    parts
}

/// Whether `text` points at one thing already spoken of ("restart it", "roll that back"),
/// not at another one ("now the other one").
pub fn points_at_one_thing(text: &str) -> bool {
    const PRONOUNS: [&str; 4] = ["it", "its", "that", "this"];
    const ELSEWHERE: [&str; 3] = ["other", "another", "next"];
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).collect();
    words.iter().any(|w| PRONOUNS.contains(w)) && !words.iter().any(|w| ELSEWHERE.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_tools::Effect;

    fn tool(name: &str) -> ToolDef {
        ToolDef {
            name: name.into(),
            description: String::new(),
            parameters: serde_json::json!({"type": "object"}),
            effect: Some(Effect::Destructive),
        }
    }

    fn catalogue() -> Vec<ToolDef> {
        [
            "tenant_destroy",
            "tenant_provision",
            "db_restore",
            "db_backup",
            "service_stop",
        ]
        .into_iter()
        .map(tool)
        .collect()
    }

    #[test]
    fn removal_words_and_their_paraphrases_ask_for_loss() {
        let tools = catalogue();
        let destroy = &tools[0];
        for text in [
            "destroy tenant initech-hr",
            "umbrella biosciences churned, remove their fresco instance",
            "decommission the stark industries tenant",
            "nuke tenant wayne-fundation",
            "please get rid of demo-lab",
            "tear down the acme tenant",
            "wipe erasmus-mc, they left",
        ] {
            assert!(asks_for_loss(text, destroy, &tools), "{text}");
        }
    }

    #[test]
    fn stopping_pausing_or_anything_for_now_does_not() {
        let tools = catalogue();
        let destroy = &tools[0];
        for text in [
            "stop the demo-lab tenant for now",
            "pause demo-lab",
            "take acme-research offline",
            "RentGuy API is hanging, kick it",
            "shut down the erasmus-mc tenant",
            "remove demo-lab from traffic for now",
            "suspend the acme tenant until monday",
        ] {
            assert!(!asks_for_loss(text, destroy, &tools), "{text}");
        }
    }

    #[test]
    fn a_word_only_one_tools_vocabulary_has_names_that_tool() {
        let plain = |name: &str| ToolDef {
            effect: None,
            ..tool(name)
        };
        let tools: Vec<ToolDef> = [
            "service_restart",
            "service_stop",
            "service_start",
            "tenant_provision",
            "tenant_check_subdomain",
            "notify",
        ]
        .into_iter()
        .map(plain)
        .collect();
        let verbs: HashMap<String, String> = toml::from_str(TOOL_VERBS).unwrap();
        let named = |text: &str| named_tool(text, &tools, &verbs);
        assert_eq!(
            named("stop the demo-lab tenant for now").as_deref(),
            Some("service_stop")
        );
        assert_eq!(
            named("RentGuy is hanging, kick it").as_deref(),
            Some("service_restart")
        );
        assert_eq!(
            named("tell the on-call engineer that the disk is almost full").as_deref(),
            Some("notify")
        );
        // "service" is in several vocabularies; words of two tools settle nothing.
        assert_eq!(named("the service"), None);
        assert_eq!(named("restart psra and tell me"), None);
        // Things acted on or measured name no tool: "cpu" is a limit here, not a metric.
        let limits: Vec<ToolDef> = ["service_set_limits", "service_metrics"]
            .into_iter()
            .map(plain)
            .collect();
        assert_eq!(
            named_tool("limit rentguy to half a cpu", &limits, &verbs).as_deref(),
            Some("service_set_limits")
        );
        assert_eq!(named_tool("give n8n 2gb ram", &limits, &verbs), None);
        // An act spoken of as a noun is not asked for; one a light verb asks for is.
        assert_eq!(named("psra has been in a restart loop since noon"), None);
        assert_eq!(
            named("give it a quick restart").as_deref(),
            Some("service_restart")
        );
        assert_eq!(
            named("since the last restart psra is slow, stop it").as_deref(),
            Some("service_stop")
        );
        // General words of names settle nothing: "check psra" is no subdomain check, and
        // "search" is no audit search when the logs are what is searched.
        assert_eq!(named("check psra"), None);
        // Verbs of two words, the particle after the object.
        assert_eq!(
            named("switch nordwind off for the weekend").as_deref(),
            Some("service_stop")
        );
        assert_eq!(named("bring grafana up").as_deref(), Some("service_start"));
        assert_eq!(named("grafana is up"), None);
        let changes: Vec<ToolDef> = ["service_rollback", "db_backup", "service_start"]
            .into_iter()
            .map(plain)
            .collect();
        let changed = |text: &str| named_tool(text, &changes, &verbs);
        assert_eq!(
            changed("xray viewer back to r12").as_deref(),
            Some("service_rollback")
        );
        assert_eq!(
            changed("start fysio back up").as_deref(),
            Some("service_start")
        );
        assert_eq!(
            named("nordwind want their portal switched off").as_deref(),
            Some("service_stop")
        );
        // A particle followed by a word of state belongs to the state: back online is a
        // start, and "go back" alone still a rollback.
        assert_eq!(
            changed("oosterpoort can go back online").as_deref(),
            Some("service_start")
        );
        assert_eq!(
            changed("oosterpoort can go back to r3").as_deref(),
            Some("service_rollback")
        );
        assert_eq!(
            named("take their shop offline").as_deref(),
            Some("service_stop")
        );
        // Words of two tools: the one a clause's verb names is ordered.
        assert_eq!(
            named("kick the proctoring service, exams start in 10 min").as_deref(),
            Some("service_restart")
        );
        assert_eq!(named("stop psra, then start it again"), None);
        let reads: Vec<ToolDef> = ["audit_search", "service_logs"]
            .into_iter()
            .map(plain)
            .collect();
        assert_eq!(
            named_tool("search invoicing logs for 'vat mismatch'", &reads, &verbs).as_deref(),
            Some("service_logs")
        );
        assert_eq!(
            named_tool("search the audit log for denials", &reads, &verbs),
            None,
            "audit and log name two tools"
        );
    }

    #[test]
    fn a_clause_orders_loss_with_its_verb_and_not_by_speaking_of_one() {
        for ordered in [
            "can u nuke the logs of sms-reminders? theyre full of patient phone numbers",
            "delete the old invoicing backups",
            "the logs are full of phone numbers, please wipe them",
            "i want to get rid of the old releases",
        ] {
            assert!(orders_loss(ordered), "{ordered}");
        }
        for spoken in [
            "who deleted the acme tenant?",
            "ping oncall that dispatch-api is dropping jobs",
            "shut erasmus-mc down for the weekend, dont delete anything",
            "restore invoicing to last night's backup",
            "why did the conversion rate drop",
            "remove psra for now",
            "i deleted a tenant's backup by mistake, which ones are left?",
            "the nightly job deletes old files, is it running?",
            "nuking the cache was a mistake, is psra ok?",
        ] {
            assert!(!orders_loss(spoken), "{spoken}");
        }
        let tools: Vec<ToolDef> = ["service_restart", "db_backup"]
            .into_iter()
            .map(tool)
            .collect();
        assert!(!orders_another_act(
            "wipe the uploads bucket in minio",
            &tools
        ));
        assert!(orders_another_act(
            "wipe the cache and restart redis",
            &tools
        ));
        assert!(orders_another_act(
            "delete the old backups, then take a new one",
            &tools
        ));
    }

    #[test]
    fn a_tool_is_also_asked_for_by_the_verb_only_its_name_has() {
        let tools = catalogue();
        assert!(asks_for_loss(
            "restore acme from last night",
            &tools[2],
            &tools
        ));
        // "tenant" is shared by other tools' names: it names the thing, not the act.
        assert!(!asks_for_loss("stop the tenant", &tools[0], &tools));
        let shop = vec![tool("cancelOrder"), tool("get_order")];
        assert!(asks_for_loss("cancel order 1234", &shop[0], &shop));
        assert!(!asks_for_loss("where is order 1234", &shop[0], &shop));
    }

    #[test]
    fn a_pronoun_points_at_one_thing_and_the_other_one_does_not() {
        assert!(points_at_one_thing("restart it"));
        assert!(points_at_one_thing("roll that back"));
        assert!(!points_at_one_thing("ok now the other one"));
        assert!(!points_at_one_thing("do it for another tenant"));
        assert!(!points_at_one_thing("restart psra"));
    }
}
