//! A backend wrapper that offers only the tools retrieval ranks highest for the operator's
//! latest words (plus `respond`). The query is the person's own text, never the untrusted
//! text that followed it, so a log line cannot pull a destructive tool into the offer.
//! Both retrieval and the model read those words with swapped-letter verbs put right
//! ([`crate::typos`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::decode::RESPOND;
use crate::plan::{Backend, Inventory, PlanRequest, Proposal, ToolDef, Turn};
use crate::retrieval::{Embedder, ToolIndex};
use crate::Result;

/// Tools offered per turn by default: recall@12 is 0.986 on the eval cases that expect a
/// tool, recall@8 0.946 (`cargo run -p steward-llm --example retrieval_recall`).
pub const DEFAULT_TOP_K: usize = 12;

/// Below this probability of its choice, a read proposed for the person's words is named
/// rather than run: of the single-turn cases of the dev sets and the suite, 8 of the 12
/// off-topic requests proposed as reads chose below it, and 2 of the 154 right reads.
pub const MIN_READ_CHOICE: f32 = 0.1;

/// Below this best similarity nothing on the platform matches the request, so only
/// `respond` is offered: 10 of the 12 irrelevant eval requests score below it, and 6 of the
/// other 186 (see the same example).
pub const MIN_SCORE: f32 = 0.15;

#[derive(Debug)]
pub struct Retrieving {
    inner: Arc<dyn Backend>,
    indexes: Arc<Indexes>,
    k: usize,
}

/// The embedder and the tool indexes it has built, shared so that warming can build an
/// index on a blocking thread while the model warms.
#[derive(Debug)]
struct Indexes {
    embedder: Arc<Embedder>,
    hints: HashMap<String, String>,
    /// By catalogue fingerprint: evals may bring their own tool lists.
    built: std::sync::Mutex<HashMap<String, Arc<ToolIndex>>>,
    /// Where indexes are saved, one file per fingerprint, so that a new process loads the
    /// catalogue's embeddings (about a second and a half of work on two cores) instead of
    /// computing them before its first answer.
    saved: Option<PathBuf>,
}

impl Indexes {
    /// The index of `tools`: built on first use, or loaded when saved; a second caller
    /// waits for the first.
    fn of(&self, tools: &[ToolDef]) -> Result<Arc<ToolIndex>> {
        let key = self.fingerprint(tools);
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = built.get(&key) {
            return Ok(i.clone());
        }
        let index = match self.load(&key) {
            Some(index) => index,
            None => {
                let index = ToolIndex::build(&self.embedder, tools, &self.hints)?;
                self.save(&key, &index);
                index
            }
        };
        let index = Arc::new(index);
        built.insert(key, index.clone());
        Ok(index)
    }

    /// What the embeddings depend on: the embedder, and each tool's name, description and
    /// hints.
    fn fingerprint(&self, tools: &[ToolDef]) -> String {
        let mut h = Sha256::new();
        h.update(self.embedder.identity().as_bytes());
        for t in tools {
            for part in [&t.name, &t.description] {
                h.update(part.as_bytes());
                h.update([0]);
            }
            h.update(
                self.hints
                    .get(&t.name)
                    .map_or("", String::as_str)
                    .as_bytes(),
            );
            h.update([0]);
        }
        hex::encode(h.finalize())
    }

    fn file(&self, key: &str) -> Option<PathBuf> {
        Some(self.saved.as_ref()?.join(format!("{key}.json")))
    }

    /// A saved index; one that cannot be read is built again.
    fn load(&self, key: &str) -> Option<ToolIndex> {
        let path = self.file(key)?;
        let bytes = std::fs::read(&path).ok()?;
        match serde_json::from_slice(&bytes) {
            Ok(index) => {
                crate::saved::touch(&path);
                Some(index)
            }
            Err(e) => {
                tracing::warn!("ignoring the saved tool index {}: {e}", path.display());
                None
            }
        }
    }

    /// Saves `index` whole or not at all (written aside, then renamed); a failure costs
    /// only the next process the time to build it again.
    fn save(&self, key: &str, index: &ToolIndex) {
        let Some(path) = self.file(key) else { return };
        // A name of this process's own: two processes on one home must not write into
        // the same file.
        let aside = path.with_extension(format!("{}.part", std::process::id()));
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| serde_json::to_vec(index).map_err(std::io::Error::other))
            .and_then(|bytes| std::fs::write(&aside, bytes))
            .and_then(|()| std::fs::rename(&aside, &path));
        match written {
            Ok(()) => {
                if let Some(dir) = &self.saved {
                    crate::saved::keep_newest(dir, ".json", KEPT_TOOL_INDEXES);
                }
            }
            Err(e) => tracing::warn!("could not save the tool index to {}: {e}", path.display()),
        }
    }
}

/// Saved tool indexes kept: the platform's catalogue, and the tool sets of recent evals.
const KEPT_TOOL_INDEXES: usize = 16;

/// The tools retrieval ranks: all but `respond`, which is always offered.
fn candidates(tools: &[ToolDef]) -> Vec<ToolDef> {
    tools
        .iter()
        .filter(|t| t.name != RESPOND)
        .cloned()
        .collect()
}

impl Retrieving {
    pub fn new(
        inner: Arc<dyn Backend>,
        embedder: Arc<Embedder>,
        hints: HashMap<String, String>,
        k: usize,
    ) -> Retrieving {
        Retrieving {
            inner,
            indexes: Arc::new(Indexes {
                embedder,
                hints,
                built: std::sync::Mutex::new(HashMap::new()),
                saved: None,
            }),
            k,
        }
    }

    /// Loads the embedder from `dir` and wraps `inner`.
    pub fn load(
        inner: Arc<dyn Backend>,
        dir: &Path,
        hints: HashMap<String, String>,
        k: usize,
    ) -> Result<Retrieving> {
        Ok(Retrieving::new(
            inner,
            Arc::new(Embedder::load(dir)?),
            hints,
            k,
        ))
    }

    /// Saves the catalogue's embeddings in `dir`, and loads them from there in the next
    /// process.
    pub fn saving_indexes_in(self, dir: PathBuf) -> Retrieving {
        let indexes = Indexes {
            embedder: self.indexes.embedder.clone(),
            hints: self.indexes.hints.clone(),
            built: std::sync::Mutex::new(HashMap::new()),
            saved: Some(dir),
        };
        Retrieving {
            indexes: Arc::new(indexes),
            ..self
        }
    }

    /// The names offered for `req`: the `k` best for the person's latest words, and
    /// `respond`; only `respond` when nothing matches and no inventory item is named.
    /// - A question offers no tool known to change something (a foreign tool whose effect
    ///   nobody declared may answer it: "what is the capital of France?" next to
    ///   `country_info_capital`).
    /// - Right after untrusted text (a tool result, an alert, a webhook body), only tools
    ///   known to change nothing: that step may investigate or answer; a change needs the
    ///   person's next words. The tool whose output was just read is not offered again.
    /// - A destructive tool is offered only when the person's words ask for loss or
    ///   removal ([`crate::intent`]).
    /// - When a word of the request belongs to the vocabulary of exactly one tool, and the
    ///   rules above allow it, only that tool is offered ([`crate::intent::named_tool`]).
    pub fn offer(&self, req: &PlanRequest) -> Result<Option<Vec<String>>> {
        Ok(self.choose(req)?.map(|offer| offer.names))
    }

    /// [`Retrieving::offer`], and whether nothing fits at all.
    fn choose(&self, req: &PlanRequest) -> Result<Option<Offer>> {
        let candidates = candidates(&req.tools);
        let Some(query) = req.turns.iter().rev().find_map(|t| match t {
            Turn::User { text } => Some(text.as_str()),
            _ => None,
        }) else {
            return Ok(None);
        };
        // "cheers" after a look at search: courtesy asks for nothing, whatever a tool's
        // description resembles it ("message" for `notify`).
        if crate::answer::is_courtesy(query)
            && !names_an_item(query, &req.inventory)
            && crate::intent::named_tool(query, &candidates, crate::intent::tool_verbs()).is_none()
        {
            return Ok(Some(Offer {
                names: vec![RESPOND.to_string()],
                nothing_fits: true,
            }));
        }
        // "back it up first, then we upgrade": this turn's step is the backup.
        let step = step_now(query);
        let ranked = self
            .indexes
            .of(&candidates)?
            .rank(&self.indexes.embedder, step)?;
        let data_last = matches!(req.turns.last(), Some(Turn::Untrusted { .. }));
        let def = |name: &str| candidates.iter().find(|t| t.name == name);
        let reads_only = |name: &str| def(name).is_some_and(ToolDef::changes_nothing);
        let may_answer = |name: &str| def(name).is_some_and(|t| !t.known_to_change());
        let allowed_loss = |name: &str| {
            def(name).is_some_and(|t| {
                !t.is_destructive() || crate::intent::asks_for_loss(query, t, &candidates)
            })
        };
        // Right after a tool's output, calling that tool again would only read it again.
        let just_called = match req.turns.iter().rev().nth(1) {
            Some(Turn::Call { name, .. }) if data_last => Some(name.as_str()),
            _ => None,
        };
        // A question asks to be told, not for a change: "when was acme last backed up?"
        // is answered by listing backups, never by taking one.
        let asks = is_question(query);
        let unmatched = ranked.first().is_none_or(|(_, s)| *s < MIN_SCORE);
        let allowed = |name: &str| {
            Some(name) != just_called
                && (!asks || may_answer(name))
                && (!data_last || reads_only(name))
                && allowed_loss(name)
        };
        let acts = without_item_names(step, &req.inventory);
        let matched = !unmatched
            || names_an_item(query, &req.inventory)
            || crate::ground::names_an_items_product(query, &req.inventory)
            || (refers_back(query) && earlier_calls(&req.turns).next().is_some())
            || names_a_tool(&acts, &candidates);
        // A word that only one tool's vocabulary has settles the tool.
        let named = matched
            .then(|| crate::intent::named_tool(&acts, &candidates, crate::intent::tool_verbs()))
            .flatten()
            .filter(|named| allowed(named))
            .or_else(|| only_tool_that_scales(req, &candidates, &allowed));
        // "and the db?", "melkweg as well": a turn that names an item and says nothing
        // else asks for the last act again, on that item.
        let repeated = (named.is_none()
            && says_nothing_but_connectives(&acts)
            && names_an_item(query, &req.inventory))
        .then(|| earlier_calls(&req.turns).next())
        .flatten()
        .filter(|tool| allowed(tool) && def(tool).is_some_and(acts_on_an_item));
        // "put melkweg on shop 12.5.0": a version for a named item, with no act named, is
        // a deploy of that version (the one tool that takes an image for an item).
        let deployed = (named.is_none()
            && !asks
            && says_a_version(step)
            && names_an_item(query, &req.inventory))
        .then(|| only_tool_taking_an_image(&candidates))
        .flatten()
        .filter(|tool| allowed(tool));
        let repeats = repeated.is_some();
        let named = named.or(repeated).or(deployed);
        let mut names: Vec<String> = match named.clone() {
            Some(named) => {
                tracing::debug!(%named, "a word of the request names one tool");
                vec![named]
            }
            None => {
                let best: Vec<String> = if matched {
                    ranked
                        .into_iter()
                        .take(self.k)
                        .map(|(name, _)| name)
                        .collect()
                } else {
                    Vec::new()
                };
                // What this conversation already did stays on offer: "do the same for
                // stark", "again but over 30s" and "now the pemberton one" name no tool.
                let mut names: Vec<String> = Vec::new();
                for name in best.into_iter().chain(earlier_calls(&req.turns)) {
                    if allowed(&name) && !names.contains(&name) {
                        names.push(name);
                    }
                }
                names
            }
        };
        let nothing_fits = names.is_empty() && !matched;
        // "restart it" right after a look at umami: the act is named and "it" has one
        // referent, so the turn is that call; a small model would rather ask which service.
        // A destructive act may still be asked about.
        let call_is_settled = named.as_deref().is_some_and(|tool| {
            matches!(req.turns.last(), Some(Turn::User { .. }))
                && def(tool).is_some_and(|t| acts_on_an_item(t) && !t.is_destructive())
                && ((crate::intent::points_at_one_thing(query)
                    && crate::ground::items_of_last_exchange(req).len() == 1)
                    || (repeats
                        && crate::ground::only_item_named_in(query, &req.inventory).is_some()))
        });
        if !call_is_settled {
            names.push(RESPOND.to_string());
        }
        Ok(Some(Offer {
            names,
            nothing_fits,
        }))
    }
}

/// The tools offered for a request.
struct Offer {
    /// Their names, `respond` last unless the call is settled: the act is named, changes
    /// but destroys nothing, and its referent is the one item of the last exchange.
    names: Vec<String>,
    /// No tool is offered because nothing matches the person's words: not one tool's
    /// description, not an inventory item, not a word pointing back at the conversation.
    nothing_fits: bool,
}

/// The one allowed tool that can scale the quantity the person asks to scale ("double it"
/// after reading a memory limit): a small model reads "double it" as another look at the
/// data, while only the tool with that quantity as an argument can change it
/// ([`crate::scale`]).
fn only_tool_that_scales(
    req: &PlanRequest,
    candidates: &[ToolDef],
    allowed: &dyn Fn(&str) -> bool,
) -> Option<String> {
    let scaling: Vec<&ToolDef> = candidates
        .iter()
        .filter(|t| allowed(&t.name) && crate::scale::asked(req, t).is_some())
        .collect();
    match scaling.as_slice() {
        [one] => {
            tracing::debug!(named = %one.name, "the one tool that scales what was asked");
            Some(one.name.clone())
        }
        _ => None,
    }
}

/// Words that point back at something in the conversation ("verify it", "the one from the
/// 21st"): a follow-up with one of them is about what the conversation was about, however
/// little its words resemble a tool's description.
fn refers_back(text: &str) -> bool {
    const REFERENTS: [&str; 7] = ["it", "its", "that", "them", "this", "those", "one"];
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .any(|w| REFERENTS.contains(&w))
}

/// Whether `text` holds words that join or repeat ("and the", "as well", "what about",
/// "same for") and nothing else: with an item's name taken out, a turn that asks for
/// nothing of its own. A bare name says too little to repeat an act on.
fn says_nothing_but_connectives(text: &str) -> bool {
    const CONNECTIVES: [&str; 24] = [
        "and", "the", "what", "about", "how", "too", "also", "as", "well", "now", "same", "for",
        "then", "ok", "okay", "so", "plus", "please", "pls", "do", "again", "one", "of", "with",
    ];
    let mut words = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .peekable();
    words.peek().is_some() && words.all(|w| CONNECTIVES.contains(&w))
}

/// Whether `text` holds a version ([`crate::ground::is_version`]).
fn says_a_version(text: &str) -> bool {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .map(|w| w.trim_end_matches(['.', '?', '!']))
        .any(crate::ground::is_version)
}

/// The one tool that takes an image for an inventory item: the deploy, in whatever tool
/// set.
fn only_tool_taking_an_image(tools: &[ToolDef]) -> Option<String> {
    let taking: Vec<&ToolDef> = tools
        .iter()
        .filter(|t| acts_on_an_item(t) && t.parameters["properties"].get("image").is_some())
        .collect();
    match taking.as_slice() {
        [one] => Some(one.name.clone()),
        _ => None,
    }
}

/// Whether `tool` takes an inventory item (a service, tenant or backup target) to act on.
fn acts_on_an_item(tool: &ToolDef) -> bool {
    crate::ground::INVENTORIED
        .iter()
        .any(|key| tool.parameters["properties"].get(*key).is_some())
}

/// Whether a word of `text` is a word of exactly one tool's own name ("play Clair de Lune"
/// next to `play_song`): the request is about that tool however little the rest of its
/// words resemble the description (a title, a place). Names only, not the shipped verb
/// lists: "tell me a joke" must not reach `notify` through "tell".
fn names_a_tool(text: &str, tools: &[ToolDef]) -> bool {
    crate::intent::named_tool(text, tools, &HashMap::new()).is_some()
}

/// The tools this conversation called, newest first.
fn earlier_calls(turns: &[Turn]) -> impl Iterator<Item = String> + '_ {
    turns.iter().rev().filter_map(|t| match t {
        Turn::Call { name, .. } if name != RESPOND => Some(name.clone()),
        _ => None,
    })
}

/// Whether `text` names an inventory item as grounding reads names (whole, word by word,
/// misspelt, without a run-on number) or by two neighbouring parts: such a request is about
/// the platform even when its other words are too terse or misspelt ("bakcup") for the
/// similarity cut-off.
fn names_an_item(text: &str, inventory: &Inventory) -> bool {
    if crate::ground::names_an_item_by_its_name(text, inventory) {
        return true;
    }
    let text = text.to_lowercase();
    let words: Vec<&str> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    inventory.services.iter().any(|item| {
        let name = item.name.to_lowercase();
        let parts = crate::ground::name_parts(&name);
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        said_two_parts_in_order(&parts, &words)
    })
}

/// Whether two neighbouring parts of a name are written as neighbouring words: "hows de
/// vries doing" names `tandarts-de-vries`, as "smile studio" names `smile-studio-utrecht`.
fn said_two_parts_in_order(parts: &[&str], words: &[&str]) -> bool {
    parts.windows(2).any(|pair| {
        pair.iter().map(|p| p.len()).sum::<usize>() >= 6 && words.windows(2).any(|w| w == pair)
    })
}

/// The part of `text` to act on now: of several clauses ("ok back it up first, then we
/// upgrade"), the one that ends in "first"; otherwise all of it. A later step is the
/// person's next request, once they have seen this one done.
fn step_now(text: &str) -> &str {
    let clauses: Vec<&str> = text
        .split([',', ';', '.', '?', '!'])
        .flat_map(|clause| clause.split(" then "))
        .map(|clause| {
            let clause = clause.trim();
            let clause = clause.strip_prefix("then ").unwrap_or(clause);
            clause.strip_suffix(" then").unwrap_or(clause)
        })
        .filter(|clause| !clause.is_empty())
        .collect();
    let ends_in_first = |clause: &&&str| {
        clause
            .rsplit(|c: char| !c.is_alphanumeric())
            .find(|w| !w.is_empty())
            .is_some_and(|w| w.eq_ignore_ascii_case("first"))
    };
    match clauses
        .iter()
        .filter(ends_in_first)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [one] if clauses.len() > 1 => one,
        _ => text,
    }
}

/// Whether `proposal` reads the platform although the model all but chose otherwise:
/// a question off the platform's topic that names an item ("write a post about the
/// booking widget") comes out as a read of it. Only the platform's own reads, when a
/// plain answer was on offer: another project's tools are its own to judge.
fn is_unsure_read(req: &PlanRequest, proposal: &Proposal) -> bool {
    let offered = |name: &str| {
        req.offer
            .as_ref()
            .is_none_or(|o| o.iter().any(|n| n == name))
    };
    proposal.choice < MIN_READ_CHOICE
        && offered(RESPOND)
        && !crate::prompt::is_foreign(&req.tools)
        && req
            .tools
            .iter()
            .any(|t| t.name == proposal.call.name && t.name != RESPOND && t.changes_nothing())
}

/// `text` without the inventory's names in it, so that a service called "search" or
/// "backup-agent" is not read as the act: "do the same for search" names no tool.
fn without_item_names(text: &str, inventory: &Inventory) -> String {
    let mut lower = text.to_lowercase();
    let mut names: Vec<String> = inventory
        .services
        .iter()
        .map(|item| item.name.to_lowercase())
        .collect();
    // The longest first: "search-api" goes whole before "search" could split it.
    names.sort_by_key(|name| std::cmp::Reverse(name.len()));
    for name in names {
        let mut from = 0;
        while let Some(at) = lower[from..].find(&name).map(|i| i + from) {
            let end = at + name.len();
            let bounded = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric());
            if bounded(lower[..at].chars().next_back()) && bounded(lower[end..].chars().next()) {
                lower.replace_range(at..end, " ");
                from = at + 1;
            } else {
                from = end;
            }
        }
    }
    lower
}

/// Words that open a question.
const QUESTION_WORDS: [&str; 22] = [
    "when", "what", "whats", "which", "who", "whom", "whose", "where", "wheres", "why", "how",
    "hows", "is", "are", "was", "were", "did", "does", "has", "have", "any", "anything",
];

/// Whether `text` opens with a question word ("when was …", "is psra up?", "what's …",
/// "any errors …"). Polite requests ("can you restart psra?", "could you …") are not
/// questions here: they ask for the action.
fn is_question(text: &str) -> bool {
    let lower = text.trim_start().to_lowercase().replace('\u{2019}', "'");
    let first = lower
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .next()
        .unwrap_or_default();
    let first = first.strip_suffix("'s").unwrap_or(first);
    QUESTION_WORDS.contains(&first)
}

#[async_trait::async_trait]
impl Backend for Retrieving {
    fn name(&self) -> String {
        self.inner.name()
    }

    /// Warms the model and, meanwhile, embeds the catalogue, which the first request
    /// would otherwise wait for.
    async fn warm(&self, req: &PlanRequest) -> Result<()> {
        let indexes = self.indexes.clone();
        let tools = candidates(&req.tools);
        let index = tokio::task::spawn_blocking(move || indexes.of(&tools).map(drop));
        let (warmed, indexed) = tokio::join!(self.inner.warm(req), index);
        indexed.map_err(|e| crate::Error::Unavailable {
            backend: "tool retrieval".into(),
            message: format!("the index build stopped: {e}"),
        })??;
        warmed
    }

    async fn propose(&self, req: &PlanRequest) -> Result<Proposal> {
        // Empty, oversized or binary input is refused before anything reads it, the answers
        // that need no model included.
        req.check_input()?;
        let mut req = req.clone();
        // Retrieval and the model both read the person's latest words with swapped-letter
        // verbs put right ("stpo psra").
        let latest = req.turns.iter_mut().rev().find_map(|t| match t {
            Turn::User { text } => Some(text),
            _ => None,
        });
        if let Some(text) = latest {
            if let Some(fixed) = crate::typos::unswap(text, &req.tools) {
                tracing::debug!(from = %text, to = %fixed, "swapped letters");
                *text = fixed;
            }
        }
        if req.offer.is_some() {
            return self.inner.propose(&req).await;
        }
        let started = std::time::Instant::now();
        let offer = self.choose(&req)?;
        tracing::debug!(ms = started.elapsed().as_millis() as u64, offer = ?offer.as_ref().map(|o| &o.names), "retrieval");
        // Nothing fits the person's own words: the answer says so, and the model, which
        // would answer from memory or stretch a tool, is not asked.
        let from_person = matches!(req.turns.last(), Some(Turn::User { .. }));
        if from_person && offer.as_ref().is_some_and(|o| o.nothing_fits) {
            return Ok(crate::answer::without_model(
                crate::answer::no_tool_fits(&req),
                crate::answer::NO_TOOL,
            ));
        }
        req.offer = offer.map(|o| o.names);
        let proposal = self.inner.propose(&req).await?;
        if from_person && is_unsure_read(&req, &proposal) {
            tracing::debug!(tool = %proposal.call.name, choice = proposal.choice, "unsure read");
            return Ok(crate::answer::without_model(
                crate::answer::unsure_read(&proposal.call),
                crate::answer::NO_TOOL,
            ));
        }
        Ok(proposal)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::plan::InventoryItem;

    fn item(name: &str) -> InventoryItem {
        InventoryItem {
            name: name.into(),
            kind: "platform".into(),
            description: String::new(),
            image: String::new(),
        }
    }

    fn inventory() -> Inventory {
        Inventory {
            services: vec![item("psra"), item("wayne-foundation"), item("x-1")],
        }
    }

    #[test]
    fn questions_are_told_apart_from_requests() {
        for q in [
            "when was umbrella bio last backed up",
            "What's running?",
            "is psra up?",
            "any errors in n8n in the past 2h?",
            "who restarted psra yesterday",
        ] {
            assert!(is_question(q), "{q}");
        }
        for r in [
            "restart psra",
            "can you restart psra?",
            "I need psra restarted",
            "issue a backup of acme",
            "anyway, back up acme",
        ] {
            assert!(!is_question(r), "{r}");
        }
    }

    #[test]
    fn the_step_to_take_now_is_the_one_said_to_come_first() {
        assert_eq!(
            step_now("ok back it up first, then we upgrade"),
            "ok back it up first"
        );
        assert_eq!(
            step_now("upgrade it, but back it up first"),
            "but back it up first"
        );
        assert_eq!(
            step_now("nothing from today? back it up first then"),
            "back it up first"
        );
        // One clause, or "first" as a word of the thing: the whole request.
        assert_eq!(step_now("back it up first"), "back it up first");
        assert_eq!(
            step_now("take the first suggestion, medium plan"),
            "take the first suggestion, medium plan"
        );
        let rule = "when ServiceDown fires for wpcs restart it, then roll back if still down";
        assert_eq!(step_now(rule), rule);
    }

    #[test]
    fn item_names_are_not_read_as_acts() {
        let mut inv = inventory();
        inv.services.extend([item("search"), item("backup-agent")]);
        assert_eq!(
            without_item_names("Do the same for Search", &inv).trim(),
            "do the same for"
        );
        assert_eq!(
            without_item_names("backup backup-agent", &inv).trim(),
            "backup"
        );
        // Only whole names: "research" and "psrab" keep their letters.
        assert_eq!(without_item_names("research psrab", &inv), "research psrab");
    }

    #[test]
    fn an_item_is_named_whole_or_word_by_word() {
        let mut inv = inventory();
        assert!(names_an_item("psra -> steward-demo:v3", &inv));
        assert!(names_an_item("bakcup Wayne Foundation", &inv));
        assert!(!names_an_item("wayne's world trivia", &inv));
        assert!(!names_an_item("write me a poem", &inv));
        // A name whose parts are all too short to count as words is only named whole.
        assert!(!names_an_item("x marks 1 spot", &inv));
        assert!(names_an_item("restart x-1", &inv));
        // Two neighbouring parts of a longer name, as written in it.
        inv.services.push(item("tandarts-de-vries"));
        assert!(names_an_item("hows de vries doing", &inv));
        assert!(!names_an_item("vries de la", &inv));
    }

    fn proposal(name: &str, choice: f32) -> Proposal {
        let mut p = crate::answer::without_model(String::new(), "test");
        p.call.name = name.into();
        p.choice = choice;
        p
    }

    #[test]
    fn a_read_the_model_all_but_chose_against_is_named_not_run() {
        let req = PlanRequest {
            tools: crate::eval::ToolSet::catalogue().defs,
            inventory: inventory(),
            ..PlanRequest::default()
        };
        assert!(is_unsure_read(&req, &proposal("service_status", 0.05)));
        // Sure enough; or a change, which policy and approval stand in front of; or the
        // answer itself.
        assert!(!is_unsure_read(
            &req,
            &proposal("service_status", MIN_READ_CHOICE)
        ));
        assert!(!is_unsure_read(&req, &proposal("service_restart", 0.05)));
        assert!(!is_unsure_read(&req, &proposal(RESPOND, 0.05)));
        // No plain answer on offer: the read is what is left.
        let no_answer = PlanRequest {
            offer: Some(vec!["service_status".into()]),
            ..req.clone()
        };
        assert!(!is_unsure_read(
            &no_answer,
            &proposal("service_status", 0.05)
        ));
        // Another project's reads are its own to judge.
        let foreign = PlanRequest {
            tools: vec![ToolDef {
                name: "get_weather".into(),
                description: "Current weather of a city.".into(),
                parameters: serde_json::json!({"type": "object", "properties": {}}),
                effect: None,
            }],
            ..req
        };
        assert!(!is_unsure_read(&foreign, &proposal("get_weather", 0.05)));
    }

    /// Records that the model was warmed.
    #[derive(Debug, Default)]
    struct WarmedOnly(std::sync::atomic::AtomicBool);

    #[async_trait::async_trait]
    impl Backend for WarmedOnly {
        fn name(&self) -> String {
            "warmed-only".into()
        }

        async fn propose(&self, _req: &PlanRequest) -> Result<Proposal> {
            unreachable!("only warmed")
        }

        async fn warm(&self, _req: &PlanRequest) -> Result<()> {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        }
    }

    #[tokio::test]
    async fn warming_embeds_the_catalogue_beside_warming_the_model_and_saves_it() {
        let home = std::env::var("STEWARD_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.steward"));
        let saved = std::env::temp_dir().join(format!("steward-tools-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&saved);
        let retrieving = |model: Arc<dyn Backend>| {
            Retrieving::load(
                model,
                &home.join("models/all-minilm-l6-v2"),
                HashMap::new(),
                DEFAULT_TOP_K,
            )
            .expect("the embedder is fetched by scripts/setup")
            .saving_indexes_in(saved.clone())
        };
        let model = Arc::new(WarmedOnly::default());
        let first = retrieving(model.clone());
        let req = PlanRequest {
            tools: crate::eval::ToolSet::catalogue().defs,
            inventory: inventory(),
            ..PlanRequest::default()
        };
        first.warm(&req).await.unwrap();
        assert!(model.0.load(std::sync::atomic::Ordering::SeqCst));
        let built: Vec<Arc<ToolIndex>> = first
            .indexes
            .built
            .lock()
            .unwrap()
            .values()
            .cloned()
            .collect();
        assert_eq!(built.len(), 1, "one catalogue, one index");
        // The first request ranks with the index warming built.
        let asked = PlanRequest {
            turns: vec![Turn::User {
                text: "restart psra".into(),
            }],
            ..req.clone()
        };
        assert!(first.offer(&asked).unwrap().is_some());
        assert_eq!(first.indexes.built.lock().unwrap().len(), 1);
        // The next process loads the same embeddings from the file warming saved.
        let files: Vec<_> = std::fs::read_dir(&saved).unwrap().collect();
        assert_eq!(files.len(), 1, "no part file is left behind");
        let next = retrieving(Arc::new(WarmedOnly::default()));
        let key = next.indexes.fingerprint(&candidates(&req.tools));
        assert_eq!(next.indexes.load(&key).as_ref(), Some(built[0].as_ref()));
        // Another catalogue has another fingerprint.
        assert_ne!(key, next.indexes.fingerprint(&candidates(&req.tools[1..])));
        // A saved index that cannot be read is built again and saved over.
        std::fs::write(next.indexes.file(&key).unwrap(), "{").unwrap();
        assert!(next.indexes.load(&key).is_none());
        assert_eq!(
            next.indexes.of(&candidates(&req.tools)).unwrap().as_ref(),
            built[0].as_ref()
        );
        assert_eq!(next.indexes.load(&key).as_ref(), Some(built[0].as_ref()));
        std::fs::remove_dir_all(&saved).unwrap();
    }
}
