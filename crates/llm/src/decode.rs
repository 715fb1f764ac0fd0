//! Constrained decoding of one tool call, `{"name":"<tool>","arguments":{...}}`, driven by
//! the tools' argument [`Shape`]s instead of a sampled grammar.
//!
//! Every character the shape fixes (braces, keys, quotes, the rest of a name once only one
//! fits) is *forced*: its tokens are queued and decoded in one batch with the next position
//! whose logits are needed, so they cost prompt speed (~70 tokens/s here) rather than
//! generation speed (~12 tokens/s). Only real choices read logits: which tool, which enum
//! value, whether to add an optional argument, and the characters of free strings and
//! numbers. Choices are greedy (argmax over the allowed tokens), so the same prompt always
//! gives the same call. The output is valid JSON of the right shape by construction.

use crate::complete::Completions;
use crate::plan::TextStream;
use crate::shape::{Property, Shape};
use crate::Result;

/// Who spoke last before the model's turn; it decides how the turn is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// The person: a call is expected, and text must clear [`After::text_margin`].
    Person,
    /// Untrusted data (a tool result, an alert, a webhook body): the person mostly wants
    /// the answer now.
    Data,
}

impl After {
    /// How much likelier (in logits) plain text must be than a call for the turn to be read
    /// as an answer.
    ///
    /// - After the person, 1.5: small models drift into narrating an action ("the service
    ///   has been restarted") instead of calling the tool; a question or refusal that is
    ///   really meant clears this easily, and grounding turns a call on an unnamed target
    ///   into a question.
    /// - After data, -3.0: text is favoured, because a small model reading an injected
    ///   instruction leans towards "doing something" (a further read it was not asked for).
    ///   Measured on the injection evals: the wrong follow-up calls sat 1.7-2.1 logits
    ///   above text.
    pub fn text_margin(self) -> f32 {
        match self {
            After::Person => 1.5,
            After::Data => -3.0,
        }
    }

    /// Whether `respond` may be written as a JSON call. Right after the person it is the
    /// model narrating an action it did not take ("psra has been updated to v3"): in the
    /// evals every such call was wrong, and a real answer comes as plain text. After data,
    /// calling it is how the model declines to act.
    fn respond_as_call(self) -> bool {
        self == After::Data
    }
}

/// The tool that carries answers, questions and refusals.
pub const RESPOND: &str = "respond";

/// Tokens a number may take (digits are single tokens): `-1.23456789e-10` fits.
const MAX_NUMBER_TOKENS: usize = 16;

/// What the decoder needs from a language model.
pub trait TokenModel {
    /// Tokens of `text` as plain text (no special tokens).
    fn tokenize(&self, text: &str) -> Vec<i32>;
    /// Tokens of `text` where chat-control markers are special tokens.
    fn tokenize_special(&self, text: &str) -> Vec<i32>;
    /// End-of-generation tokens (end of turn, end of text).
    fn is_end(&self, tok: i32) -> bool;
    /// The bytes token `tok` stands for.
    fn piece(&self, tok: i32) -> &[u8];
    fn n_vocab(&self) -> usize;
    /// Appends `tokens` to the sequence and returns the logits that follow the last one.
    fn eval(&mut self, tokens: &[i32]) -> Result<Vec<f32>>;
}

/// Limits that keep generation bounded.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Tokens of one free string (a service name, a grep pattern).
    pub string_tokens: usize,
    /// Tokens of `respond`'s text: one or two sentences.
    pub respond_tokens: usize,
    pub array_items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            string_tokens: 24,
            respond_tokens: 48,
            array_items: 8,
        }
    }
}

/// Per-vocabulary facts, computed once per model.
#[derive(Debug)]
pub struct VocabClasses {
    /// Printable ASCII without `"` or `\`: safe inside a JSON string as is.
    string_safe: Vec<bool>,
    /// Starts with `"`: the model wants to close the string.
    closes_string: Vec<bool>,
    /// Only digits.
    digits: Vec<bool>,
    /// Starts with `,`, `}` or `]`: the model wants to end a number.
    ends_value: Vec<bool>,
    /// Starts with `{` (after optional spaces): the model starts a JSON call.
    opens_object: Vec<bool>,
}

impl VocabClasses {
    pub fn of(m: &impl TokenModel) -> VocabClasses {
        let n = m.n_vocab();
        let mut c = VocabClasses {
            string_safe: vec![false; n],
            closes_string: vec![false; n],
            digits: vec![false; n],
            ends_value: vec![false; n],
            opens_object: vec![false; n],
        };
        for tok in 0..n {
            let p = m.piece(tok as i32);
            let Some(&first) = p.first() else { continue };
            c.string_safe[tok] = string_safe(p);
            c.closes_string[tok] = first == b'"';
            c.digits[tok] = p.iter().all(u8::is_ascii_digit);
            c.ends_value[tok] = matches!(first, b',' | b'}' | b']');
            c.opens_object[tok] = p.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        }
        c
    }
}

/// Printable ASCII without `"` or `\\`: safe inside a JSON string as is.
fn string_safe(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

/// The decoded call and how it was obtained.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// `{"name":..,"arguments":{..}}` exactly as decoded.
    pub json: String,
    /// exp(mean log p) of the structured choices (tool, enum values, optional arguments).
    pub confidence: f32,
    /// The probability of the choice between a plain answer and the tools, with the tool's
    /// name: how sure the model was of what to do, whatever its arguments.
    pub choice: f32,
    /// Tokens appended after the prompt: forced and chosen.
    pub tokens: usize,
    /// Forward passes of the model, the prompt's tail included: what generating costs,
    /// since a pass over a few tokens takes about as long as one over a single token.
    pub passes: usize,
    /// The tool of a call the model wrote as plain text instead of calling it (see
    /// `text_answer`); right after the person spoke, the backend decodes that call again
    /// as a real one.
    pub echoed: Option<String>,
}

/// One decoding run. `pending` starts with the prompt's tail (at least its last token),
/// which has not been evaluated yet.
pub struct Decoder<'a, M: TokenModel> {
    model: &'a mut M,
    classes: &'a VocabClasses,
    limits: Limits,
    pending: Vec<i32>,
    /// Fixed text not yet tokenized (see `force`).
    carry: String,
    logits: Option<Vec<f32>>,
    out: String,
    log_probs: Vec<f32>,
    tokens: usize,
    passes: usize,
    stream: Option<&'a TextStream>,
    completions: Option<&'a Completions>,
    /// Writing `respond`'s text: it streams, and ends like a plain answer.
    answering: bool,
}

impl<M: TokenModel> std::fmt::Debug for Decoder<'_, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder").field("out", &self.out).finish()
    }
}

impl<'a, M: TokenModel> Decoder<'a, M> {
    pub fn new(
        model: &'a mut M,
        classes: &'a VocabClasses,
        limits: Limits,
        prompt_tail: Vec<i32>,
    ) -> Self {
        Decoder {
            model,
            classes,
            limits,
            pending: prompt_tail,
            carry: String::new(),
            logits: None,
            out: String::new(),
            log_probs: Vec::new(),
            tokens: 0,
            passes: 0,
            stream: None,
            completions: None,
            answering: false,
        }
    }

    /// Completes the names in `completions` (see `free_string`).
    pub fn completing(mut self, completions: &'a Completions) -> Self {
        self.completions = Some(completions);
        self
    }

    /// Sends a plain-text answer to `stream` as it is written.
    pub fn streaming(mut self, stream: Option<&'a TextStream>) -> Self {
        self.stream = stream;
        self
    }

    /// Decodes the assistant's turn, which starts right after the prompt: either a tool call
    /// (the model opens it with `call_open`, e.g. `<tool_call>\n`) or plain text, which
    /// becomes `respond {text}` when `respond` is among `tools`. Chat models are trained to
    /// open a call only when a tool fits, so this first token is where they say "no tool".
    ///
    /// `after` says who spoke last (see [`After`]).
    pub fn turn(
        mut self,
        call_open: &str,
        tools: &[(String, Shape)],
        after: After,
    ) -> Result<Decoded> {
        let text_margin = after.text_margin();
        let open = self.model.tokenize_special(call_open);
        let can_respond = tools.iter().any(|(n, _)| n == RESPOND);
        if !can_respond {
            return self.open_call(&open, tools);
        }
        let logits = self.logits()?;
        // A call starts with the tag, or (models often skip it) straight with `{`.
        let starts_call =
            |t: i32| Some(&t) == open.first() || self.classes.opens_object[t as usize];
        let best_call = argmax(
            &logits,
            (0..logits.len() as i32).filter(|&t| starts_call(t)),
        );
        let best_text = argmax(
            &logits,
            (0..logits.len() as i32).filter(|&t| !starts_call(t) && !self.model.is_end(t)),
        );
        // Small models sometimes write a call as text, `db_backup(acme)`: a first word
        // that begins a tool's name is taken as the start of a call.
        let text_piece = String::from_utf8_lossy(self.model.piece(best_text))
            .trim()
            .to_string();
        let names_a_tool = text_piece.len() >= 2
            && tools
                .iter()
                .any(|(n, _)| n != RESPOND && n.starts_with(&text_piece));
        tracing::debug!(
            text_over_call = logits[best_text as usize] - logits[best_call as usize],
            text_margin,
            "call or text"
        );
        if logits[best_text as usize] > logits[best_call as usize] + text_margin && !names_a_tool {
            self.log_probs.push(log_softmax_at(&logits, best_text));
            return self.text_answer(after);
        }
        self.log_probs.push(log_softmax_at(&logits, best_call));
        let actions: Vec<(String, Shape)>;
        let tools = if !after.respond_as_call() && tools.iter().any(|(n, _)| n != RESPOND) {
            actions = tools
                .iter()
                .filter(|(n, _)| n != RESPOND)
                .cloned()
                .collect();
            &actions
        } else {
            tools
        };
        if Some(&best_call) == open.first() {
            self.open_call(&open, tools)
        } else {
            self.call(tools)
        }
    }

    fn open_call(mut self, open: &[i32], tools: &[(String, Shape)]) -> Result<Decoded> {
        for &t in open {
            self.push(t);
        }
        self.call(tools)
    }

    /// Decodes a call to one of `tools`, opened with `call_open`, with no plain-text way
    /// out: for a turn whose plain answer was no answer (empty, or a call written as text).
    pub fn forced_call(self, call_open: &str, tools: &[(String, Shape)]) -> Result<Decoded> {
        let open = self.model.tokenize_special(call_open);
        self.open_call(&open, tools)
    }

    /// The model's plain answer, up to the respond limit, as `respond {text}`.
    ///
    /// An answer that opens with `{` is the model writing a call as text, usually the one
    /// an injected instruction asked for (`{"name":"notify","arguments":{…secrets…}}`). It
    /// is cut short as soon as the tool's name is known (or cannot come), never streamed,
    /// and replaced by [`echoed_call_answer`]: the operator learns which call was not made
    /// instead of reading the injected call back as Steward's answer.
    fn text_answer(mut self, after: After) -> Result<Decoded> {
        let mut bytes = Vec::new();
        let mut live = LiveText::new(self.stream, self.limits.respond_tokens);
        let mut echo: Option<Echo> = None;
        for n in 0..self.limits.respond_tokens {
            let logits = self.logits()?;
            let tok = argmax(&logits, 0..logits.len() as i32);
            if self.model.is_end(tok) {
                break;
            }
            let piece = self.model.piece(tok).to_vec();
            if piece.contains(&b'\n') && !bytes.is_empty() && echo.is_none() {
                break; // one paragraph is enough for an answer or a question
            }
            self.push(tok);
            bytes.extend_from_slice(&piece);
            let text = String::from_utf8_lossy(&bytes);
            if text.trim_start().starts_with('{') {
                echo = Some(Echo::of(text.trim_start()));
                if echo.as_ref().is_some_and(Echo::is_settled) {
                    break;
                }
                continue;
            }
            if live.wrote(n, &bytes) {
                break;
            }
            // After data the answer opens with what was found, and the model's reading
            // fills the rest of its sentences: more would be cut off unread.
            if after == After::Data
                && crate::answer::sentence_ends(&text).count() >= crate::answer::MAX_SENTENCES - 1
            {
                break;
            }
        }
        let echoed = echo.as_ref().and_then(Echo::tool).map(str::to_string);
        let text = match echo {
            Some(echo) => echoed_call_answer(echo.tool(), after),
            None => String::from_utf8_lossy(&bytes).trim().to_string(),
        };
        let json = serde_json::json!({"name": RESPOND, "arguments": {"text": text}});
        Ok(Decoded {
            json: json.to_string(),
            confidence: self.confidence(),
            choice: self.so_far(),
            tokens: self.tokens,
            passes: self.passes,
            echoed,
        })
    }

    /// The probability of the choices made so far.
    fn so_far(&self) -> f32 {
        self.log_probs.iter().sum::<f32>().exp()
    }

    fn confidence(&self) -> f32 {
        if self.log_probs.is_empty() {
            1.0
        } else {
            (self.log_probs.iter().sum::<f32>() / self.log_probs.len() as f32).exp()
        }
    }

    /// Decodes one call to one of `tools` (name and argument shape). `respond` is just
    /// another tool here; its text gets the longer limit.
    pub fn call(mut self, tools: &[(String, Shape)]) -> Result<Decoded> {
        self.force("{\"name\":\"");
        let names: Vec<String> = tools
            .iter()
            .map(|(n, _)| format!("{}\"", escape(n)))
            .collect();
        let i = self.choose(&names)?;
        let (name, shape) = &tools[i];
        let choice = self.so_far();
        tracing::debug!(tool = %name, p = choice, "tool choice");
        self.force(",\"arguments\":");
        self.answering = name == RESPOND;
        let string_limit = if self.answering {
            self.limits.respond_tokens
        } else {
            self.limits.string_tokens
        };
        match shape {
            Shape::Object(props) => self.object(props, string_limit)?,
            other => self.value(None, other, string_limit)?,
        }
        self.force("}");
        self.flush();
        Ok(Decoded {
            confidence: self.confidence(),
            choice,
            json: self.out,
            tokens: self.tokens,
            passes: self.passes,
            echoed: None,
        })
    }

    fn object(&mut self, props: &[Property], string_limit: usize) -> Result<()> {
        self.force("{");
        self.members(props, true, string_limit)
    }

    /// A tagged union: the tag's value is the model's choice among the variants, then the
    /// chosen variant's own properties follow in the same object.
    fn tagged(
        &mut self,
        tag: &str,
        variants: &[(String, Vec<Property>)],
        string_limit: usize,
    ) -> Result<()> {
        self.force(&format!("{{\"{}\":", escape(tag)));
        let quoted: Vec<String> = variants
            .iter()
            .map(|(v, _)| format!("\"{}\"", escape(v)))
            .collect();
        let i = self.choose(&quoted)?;
        self.members(&variants[i].1, false, string_limit)
    }

    /// The properties of an object whose `{` (and, unless `first`, some members) is written,
    /// and its closing brace.
    fn members(&mut self, props: &[Property], first: bool, string_limit: usize) -> Result<()> {
        let mut first = first;
        let sep = |first: bool| if first { "" } else { "," };
        let (required, optional): (Vec<&Property>, Vec<&Property>) =
            props.iter().partition(|p| p.required);
        for p in required {
            self.force(&format!("{}\"{}\":", sep(first), escape(&p.name)));
            first = false;
            self.value(Some(&p.name), &p.shape, string_limit)?;
        }
        // Optional arguments come in whatever order the model writes them ("1 cpu, 1024 mb"
        // gives cpus before memory_mb): each one chosen leaves the others on offer.
        let mut rest: Vec<&Property> = optional;
        while !rest.is_empty() {
            // A free string's opening quote joins its key (`"grep":"`), as the model
            // would write it.
            let free = |p: &Property| matches!(p.shape, Shape::Str { options: None });
            let mut options: Vec<String> = rest
                .iter()
                .map(|p| {
                    let quote = if free(p) { "\"" } else { "" };
                    format!("{}\"{}\":{quote}", sep(first), escape(&p.name))
                })
                .collect();
            options.push("}".into());
            let i = self.choose(&options)?;
            if i == rest.len() {
                return Ok(());
            }
            first = false;
            let chosen = rest.remove(i);
            if free(chosen) {
                self.free_string(string_limit, Some(&chosen.name))?;
                self.force("\"");
            } else {
                self.value(Some(&chosen.name), &chosen.shape, string_limit)?;
            }
        }
        self.force("}");
        Ok(())
    }

    /// One value of `shape`; `key` is the argument it is for, when it is one.
    fn value(&mut self, key: Option<&str>, shape: &Shape, string_limit: usize) -> Result<()> {
        match shape {
            Shape::Object(props) => self.object(props, string_limit),
            Shape::Tagged { tag, variants } => self.tagged(tag, variants, string_limit),
            Shape::Str { options: Some(o) } => {
                let quoted: Vec<String> = o.iter().map(|s| format!("\"{}\"", escape(s))).collect();
                self.choose(&quoted).map(drop)
            }
            Shape::Str { options: None } => {
                self.force("\"");
                self.free_string(string_limit, key)?;
                self.force("\"");
                Ok(())
            }
            Shape::Integer => self.number(false),
            Shape::Number => self.number(true),
            Shape::Bool => self.choose(&["true".into(), "false".into()]).map(drop),
            Shape::Array { item, min_items } => {
                self.force("[");
                // Choices not taken yet: a list of choices names each at most once.
                let mut left: Vec<&String> = match item.as_ref() {
                    Shape::Str { options: Some(o) } => o.iter().collect(),
                    _ => Vec::new(),
                };
                for n in 0..self.limits.array_items {
                    let sep = if n == 0 { "" } else { "," };
                    // Below the schema's `minItems` the list cannot close yet.
                    let may_close = n >= *min_items;
                    match item.as_ref() {
                        // Whether to go on and with what are one choice over whole texts,
                        // so the model sees its own tokens (`["` and `[]` are single ones);
                        // asked for `"` after a lone `[`, it closed every list at once.
                        Shape::Str { options: Some(_) } => {
                            let close = may_close || left.is_empty();
                            let mut options = if close { vec!["]".to_string()] } else { vec![] };
                            options.extend(left.iter().map(|v| format!("{sep}\"{}\"", escape(v))));
                            match self.choose(&options)? {
                                0 if close => return Ok(()),
                                i => {
                                    left.remove(i - usize::from(close));
                                }
                            }
                        }
                        Shape::Str { options: None } => {
                            if may_close && self.choose(&["]".into(), format!("{sep}\"")])? == 0 {
                                return Ok(());
                            }
                            if !may_close {
                                self.force(&format!("{sep}\""));
                            }
                            self.free_string(string_limit, None)?;
                            self.force("\"");
                        }
                        _ => {
                            if may_close && !self.array_continues(item, n == 0)? {
                                break;
                            }
                            self.force(sep);
                            self.value(None, item, string_limit)?;
                        }
                    }
                }
                self.force("]");
                Ok(())
            }
        }
    }

    /// Whether the model adds another array item, judged from the next token: `]` (or
    /// `,` after an item) against the tokens that can start an item.
    fn array_continues(&mut self, item: &Shape, first: bool) -> Result<bool> {
        let close = self.single_token("]");
        let more = if first {
            match item {
                Shape::Str { .. } => self.single_token("\""),
                Shape::Object(_) | Shape::Tagged { .. } => self.single_token("{"),
                Shape::Array { .. } => self.single_token("["),
                Shape::Bool => self.single_token("t"),
                Shape::Integer | Shape::Number => self.single_token("1"),
            }
        } else {
            self.single_token(",")
        };
        let (Some(close), Some(more)) = (close, more) else {
            return Ok(false);
        };
        let logits = self.logits()?;
        Ok(logits[more as usize] > logits[close as usize])
    }

    fn single_token(&mut self, text: &str) -> Option<i32> {
        self.flush();
        match self.model.tokenize(text).as_slice() {
            [t] => Some(*t),
            _ => None,
        }
    }

    /// Picks one of `options` (literal texts that differ, none a prefix of another),
    /// token by token over their tokenizations; forced where only one continues.
    fn choose(&mut self, options: &[String]) -> Result<usize> {
        let carry = std::mem::take(&mut self.carry);
        let options: Vec<String> = options.iter().map(|o| format!("{carry}{o}")).collect();
        let seqs: Vec<Vec<i32>> = options.iter().map(|o| self.model.tokenize(o)).collect();
        let mut alive: Vec<usize> = (0..seqs.len()).filter(|&i| !seqs[i].is_empty()).collect();
        let mut pos = 0;
        loop {
            if let [only] = alive.as_slice() {
                let only = *only;
                for &t in &seqs[only][pos..] {
                    self.push(t);
                }
                self.out.push_str(&options[only]);
                return Ok(only);
            }
            // Options that end here are complete; they cannot be prefixes of others in
            // text, but their tokenizations may be: a complete one wins if nothing longer does.
            let mut next: Vec<i32> = alive
                .iter()
                .filter_map(|&i| seqs[i].get(pos).copied())
                .collect();
            next.sort_unstable();
            next.dedup();
            if next.is_empty() {
                let first = alive.first().copied().unwrap_or(0);
                self.out.push_str(&options[first]);
                return Ok(first);
            }
            let tok = if next.len() == 1 {
                next[0]
            } else {
                let logits = self.logits()?;
                let best = argmax(&logits, next.iter().copied());
                self.log_probs.push(log_softmax_at(&logits, best));
                best
            };
            self.push(tok);
            alive.retain(|&i| seqs[i].get(pos) == Some(&tok));
            pos += 1;
        }
    }

    /// Characters of a JSON string, without its quotes, until the model closes it.
    ///
    /// A string argument the model begins to copy (see [`Completions`]) is completed in
    /// one batch instead of a forward pass per token. The value ends there when it is a
    /// literal of the conversation or a name the person wrote whole; otherwise closing
    /// stays the model's choice, so it can still go on ("psra-staging" is not cut to "psra").
    ///
    /// `respond`'s text is an answer like a plain one: it streams as it is written and
    /// ends at the first full stop past half its limit.
    fn free_string(&mut self, limit: usize, key: Option<&str>) -> Result<()> {
        let completions = key.and(self.completions).filter(|_| !self.answering);
        let mut written = String::new();
        let mut completed = false;
        let mut live = self.answering.then(|| LiveText::new(self.stream, limit));
        for n in 0..limit {
            let logits = self.logits()?;
            let classes = self.classes;
            let allowed = (0..logits.len())
                .filter(|&t| classes.string_safe[t] || classes.closes_string[t])
                .map(|t| t as i32);
            let tok = argmax(&logits, allowed);
            if classes.closes_string[tok as usize] {
                return Ok(());
            }
            self.push(tok);
            let piece = String::from_utf8_lossy(self.model.piece(tok)).into_owned();
            self.out.push_str(&piece);
            written.push_str(&piece);
            if live
                .as_mut()
                .is_some_and(|l| l.wrote(n, written.as_bytes()))
            {
                return Ok(());
            }
            if let (Some(c), Some(key), false) = (completions, key, completed) {
                if let Some(rest) = c
                    .string_rest(key, &written)
                    .filter(|r| string_safe(r.text.as_bytes()))
                {
                    self.force(rest.text);
                    if rest.closes {
                        return Ok(());
                    }
                    written.push_str(rest.text);
                    completed = true;
                }
            }
        }
        Ok(())
    }

    /// A JSON number: an optional minus, digits, and for numbers (`fraction`) one decimal
    /// point and an exponent (`1e-9`), a digit after each of them, until the model ends it.
    /// A number the model begins to copy is completed like a string (see [`Completions`]).
    fn number(&mut self, fraction: bool) -> Result<()> {
        let point = self.single_token(".").filter(|_| fraction);
        let exponent = self.single_token("e").filter(|_| fraction);
        let minus = self.single_token("-");
        // After a list's "," a model writes " -" (one token) as readily as "-": JSON allows
        // the space before a value.
        let spaced_minus = self.single_token(" -");
        let mut written = String::new();
        let mut completed = false;
        let mut need_digit = true;
        for _ in 0..MAX_NUMBER_TOKENS {
            let logits = self.logits()?;
            let classes = self.classes;
            let seen_exponent = written.contains('e');
            let seen_point = written.contains('.') || seen_exponent;
            let signed = written.is_empty() || written.ends_with('e');
            // JSON writes no digit after a leading zero: "0", "0.5", never "000".
            let leading_zero = !seen_point && written.trim_start_matches([' ', '-']) == "0";
            let allowed = (0..logits.len())
                .filter(|&t| {
                    (classes.digits[t] && !leading_zero) || (!need_digit && classes.ends_value[t])
                })
                .map(|t| t as i32)
                .chain(point.filter(|_| !need_digit && !seen_point))
                .chain(exponent.filter(|_| !need_digit && !seen_exponent))
                .chain(minus.filter(|_| signed))
                .chain(spaced_minus.filter(|_| written.is_empty()));
            let tok = argmax(&logits, allowed);
            if classes.ends_value[tok as usize] {
                return Ok(());
            }
            self.push(tok);
            let piece = match Some(tok) {
                t if t == point => ".".to_string(),
                t if t == exponent => "e".to_string(),
                t if t == minus => "-".to_string(),
                t if t == spaced_minus => " -".to_string(),
                _ => String::from_utf8_lossy(self.model.piece(tok)).into_owned(),
            };
            need_digit = !piece.bytes().all(|b| b.is_ascii_digit());
            self.out.push_str(&piece);
            written.push_str(piece.trim_start());
            if let (Some(c), false) = (self.completions, completed) {
                if let Some(rest) = c.number_rest(&written, fraction) {
                    self.force(rest);
                    written.push_str(rest);
                    completed = true;
                    need_digit = false;
                }
            }
        }
        if need_digit {
            self.force("0");
        }
        Ok(())
    }

    /// Queues fixed text. It is tokenized only when the next choice is made, together with
    /// whatever follows it, so the model sees the tokens it would have written itself
    /// (`","` rather than `"` then `,"`).
    fn force(&mut self, text: &str) {
        self.carry.push_str(text);
    }

    fn flush(&mut self) {
        if self.carry.is_empty() {
            return;
        }
        let text = std::mem::take(&mut self.carry);
        for t in self.model.tokenize(&text) {
            self.push(t);
        }
        self.out.push_str(&text);
    }

    fn push(&mut self, tok: i32) {
        self.pending.push(tok);
        self.tokens += 1;
        self.logits = None;
    }

    /// Logits after everything so far, evaluating the queued tokens in one batch.
    fn logits(&mut self) -> Result<Vec<f32>> {
        self.flush();
        if self.logits.is_none() {
            let batch = std::mem::take(&mut self.pending);
            self.logits = Some(self.model.eval(&batch)?);
            self.passes += 1;
        }
        Ok(self.logits.clone().unwrap_or_default())
    }
}

fn argmax(logits: &[f32], allowed: impl Iterator<Item = i32>) -> i32 {
    let mut best = (f32::NEG_INFINITY, 0);
    for t in allowed {
        let l = logits.get(t as usize).copied().unwrap_or(f32::NEG_INFINITY);
        if l > best.0 {
            best = (l, t);
        }
    }
    best.1
}

fn log_softmax_at(logits: &[f32], tok: i32) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|l| (l - max).exp()).sum();
    logits.get(tok as usize).copied().unwrap_or(max) - max - sum.ln()
}

/// An answer's text on its way out while it is written: whole UTF-8 characters go to the
/// stream, if any, and past half the limit the first full stop ends it, so a rambling
/// answer ends on a whole sentence, sooner, instead of mid-word at the limit.
struct LiveText<'a> {
    stream: Option<&'a TextStream>,
    /// Bytes already sent: pieces may split a UTF-8 character.
    streamed: usize,
    limit: usize,
}

impl<'a> LiveText<'a> {
    fn new(stream: Option<&'a TextStream>, limit: usize) -> Self {
        LiveText {
            stream,
            streamed: 0,
            limit,
        }
    }

    /// Takes the answer so far, `text`, after its token number `n` (from 0); true when
    /// the answer is complete.
    fn wrote(&mut self, n: usize, text: &[u8]) -> bool {
        if let Some(stream) = self.stream {
            self.streamed += emit_valid_utf8(text, self.streamed, stream);
        }
        n + 1 >= self.limit / 2 && ends_sentence(&String::from_utf8_lossy(text))
    }
}

/// Whether `text` ends a sentence: `.`, `!` or `?`, but not a digit's point ("v1.").
fn ends_sentence(text: &str) -> bool {
    let mut back = text.trim_end().chars().rev();
    matches!(back.next(), Some('.' | '!' | '?')) && !back.next().is_some_and(|c| c.is_ascii_digit())
}

/// What a text answer that opens with `{` has shown of the call it writes.
#[derive(Debug, Clone, PartialEq)]
enum Echo {
    /// Could still become `{"name":"<tool>"`.
    Open,
    /// The tool it names (a plain identifier), or `None` once it cannot name one.
    Settled(Option<String>),
}

impl Echo {
    /// Reads `text` (trimmed, starting with `{`): `{"name": "notify"` settles on `notify`.
    fn of(text: &str) -> Echo {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let head = "{\"name\":\"";
        let Some(rest) = compact.strip_prefix(head) else {
            return if head.starts_with(&compact) {
                Echo::Open
            } else {
                Echo::Settled(None)
            };
        };
        match rest.find('"') {
            Some(end) => {
                let name = &rest[..end];
                let plain = (1..=48).contains(&name.len())
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                Echo::Settled(plain.then(|| name.to_string()))
            }
            None if rest.len() > 48 => Echo::Settled(None),
            None => Echo::Open,
        }
    }

    fn is_settled(&self) -> bool {
        matches!(self, Echo::Settled(_))
    }

    fn tool(&self) -> Option<&str> {
        match self {
            Echo::Settled(name) => name.as_deref(),
            Echo::Open => None,
        }
    }
}

/// The answer that replaces a call the model wrote as text (see `text_answer`). After
/// untrusted data the call follows from that data, often from an instruction injected into
/// it, so it is reported and not made.
fn echoed_call_answer(tool: Option<&str>, after: After) -> String {
    let what = tool.map_or("a tool call".to_string(), |t| format!("a `{t}` call"));
    match after {
        After::Data => format!(
            "I stopped before {what}: it would follow from the data above (logs, alerts, \
             webhooks or tool output), not from your words. Ask me directly if you want it."
        ),
        After::Person => format!(
            "I could not turn that into {what} I am sure of; please rephrase it, naming \
             the service or tenant."
        ),
    }
}

/// Sends the complete UTF-8 text of `bytes[from..]` to `stream` (leading whitespace of the
/// answer left out, as the final text is trimmed) and returns how many bytes it sent.
fn emit_valid_utf8(bytes: &[u8], from: usize, stream: &TextStream) -> usize {
    let rest = &bytes[from..];
    let valid = match std::str::from_utf8(rest) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&rest[..e.valid_up_to()]).unwrap_or_default(),
    };
    let text = if from == 0 { valid.trim_start() } else { valid };
    if text.is_empty() {
        // Only whitespace so far: hold it back unless the answer has begun.
        return if from == 0 { 0 } else { valid.len() };
    }
    (stream.0)(text);
    valid.len()
}

/// JSON string escaping for names and option texts placed between quotes.
fn escape(s: &str) -> String {
    let quoted = serde_json::Value::String(s.to_string()).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::{json, Value};
    use std::sync::{Arc, Mutex};

    const OPEN: i32 = 256;
    const END: i32 = 257;
    const SPACED_MINUS: i32 = 258;

    /// A byte-level model that wants to write `target` after the prompt: every token that
    /// continues it scores 5 plus its length, everything else 0. It lets the decoder's own choices
    /// (order, call or text, which tool) be tested without weights.
    struct Teacher {
        target: Vec<u8>,
        written: Vec<u8>,
        pieces: Vec<Vec<u8>>,
    }

    impl Teacher {
        fn new(target: &str) -> Teacher {
            let mut pieces: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
            pieces.push(b"<tool_call>\n".to_vec());
            pieces.push(Vec::new());
            pieces.push(b" -".to_vec());
            Teacher {
                target: target.as_bytes().to_vec(),
                written: Vec::new(),
                pieces,
            }
        }
    }

    impl TokenModel for Teacher {
        fn tokenize(&self, text: &str) -> Vec<i32> {
            // Bytes, but " -" is one token, as in real vocabularies.
            match text {
                " -" => vec![SPACED_MINUS],
                _ => text.bytes().map(i32::from).collect(),
            }
        }
        fn tokenize_special(&self, text: &str) -> Vec<i32> {
            match text.strip_prefix("<tool_call>\n") {
                Some(rest) => std::iter::once(OPEN).chain(self.tokenize(rest)).collect(),
                None => self.tokenize(text),
            }
        }
        fn is_end(&self, tok: i32) -> bool {
            tok == END
        }
        fn piece(&self, tok: i32) -> &[u8] {
            &self.pieces[tok as usize]
        }
        fn n_vocab(&self) -> usize {
            self.pieces.len()
        }
        fn eval(&mut self, tokens: &[i32]) -> Result<Vec<f32>> {
            for &t in tokens {
                let piece = self.pieces[t as usize].clone();
                self.written.extend(piece);
            }
            let rest = self.target.get(self.written.len()..).unwrap_or_default();
            Ok(self
                .pieces
                .iter()
                .enumerate()
                .map(|(t, p)| match t as i32 {
                    END if rest.is_empty() => 10.0,
                    _ if !p.is_empty() && rest.starts_with(p) => 5.0 + p.len() as f32,
                    _ => 0.0,
                })
                .collect())
        }
    }

    fn decode(target: &str, tools: &[(&str, Value)], after: After) -> Value {
        let mut model = Teacher::new(target);
        let classes = VocabClasses::of(&model);
        let tools: Vec<(String, Shape)> = tools
            .iter()
            .map(|(n, s)| (n.to_string(), Shape::of(s)))
            .collect();
        let decoded = Decoder::new(&mut model, &classes, Limits::default(), Vec::new())
            .turn("<tool_call>\n", &tools, after)
            .unwrap();
        serde_json::from_str(&decoded.json).unwrap()
    }

    fn limits() -> Value {
        json!({"type": "object", "required": ["service"], "properties": {
            "service": {"type": "string"},
            "memory_mb": {"type": "integer"},
            "cpus": {"type": "number"},
            "pids": {"type": "integer"}}})
    }

    fn respond() -> Value {
        json!({"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}})
    }

    /// A stream that keeps the pieces it is sent.
    fn collecting() -> (TextStream, Arc<Mutex<Vec<String>>>) {
        let pieces = Arc::new(Mutex::new(Vec::new()));
        let sink = pieces.clone();
        let stream = TextStream(Arc::new(move |p: &str| {
            sink.lock().unwrap().push(p.to_string());
        }));
        (stream, pieces)
    }

    #[test]
    fn numbers_keep_their_sign_and_exponent_and_integers_take_no_exponent() {
        let schema = json!({"type": "object", "required": ["a", "b", "c"], "properties": {
            "a": {"type": "integer"}, "b": {"type": "integer"}, "c": {"type": "number"}}});
        let tools = [("solve", schema)];
        let args = |target: &str| decode(target, &tools, After::Person)["arguments"].clone();
        let signed = args(
            "<tool_call>\n{\"name\":\"solve\",\"arguments\":{\"a\":-1,\"b\":-30,\"c\":-2.5e-9}}",
        );
        assert_eq!(signed, json!({"a": -1, "b": -30, "c": -2.5e-9}));
        // An integer ends where an exponent would begin; a minus stands only in front.
        let one = json!({"type": "object", "required": ["n"], "properties": {
            "n": {"type": "integer"}}});
        let n = |value: &str| {
            let target =
                format!("<tool_call>\n{{\"name\":\"count\",\"arguments\":{{\"n\":{value}}}}}");
            decode(&target, &[("count", one.clone())], After::Person)["arguments"]["n"].clone()
        };
        assert_eq!(n("1e5"), 1);
        assert_eq!(n("2-3"), 2);
        assert_eq!(n("000"), 0);
        assert_eq!(n("05"), 0);
        // In a list, after ",", the model may write its minus with a space before it.
        let list = json!({"type": "object", "required": ["xs"], "properties": {
            "xs": {"type": "array", "items": {"type": "number"}}}});
        let target = "<tool_call>\n{\"name\":\"plot\",\"arguments\":{\"xs\":[1.5, -112.07]}}";
        let args = decode(target, &[("plot", list)], After::Person)["arguments"].clone();
        assert_eq!(args["xs"], json!([1.5, -112.07]));
    }

    #[test]
    fn after_data_the_reading_stops_at_the_sentences_the_answer_keeps() {
        // Short enough that half the token limit (one character a token here) is not reached.
        let reading = "OOM. Raise it. Then watch.";
        let tools = [("service_logs", limits()), ("respond", respond())];
        let text = |after| decode(reading, &tools, after)["arguments"]["text"].clone();
        assert_eq!(text(After::Data), "OOM. Raise it.");
        // Nothing was found before a reply to the person: their answer is left whole.
        assert_eq!(text(After::Person), reading);
        assert_eq!(
            crate::answer::sentence_ends("v1.2 on rentguy.localhost").count(),
            0
        );
    }

    #[test]
    fn optional_arguments_come_in_the_order_the_model_writes_them() {
        let call = decode(
            r#"<tool_call>
{"name":"service_set_limits","arguments":{"service":"psra","cpus":1,"memory_mb":1024}}"#,
            &[("service_set_limits", limits()), ("respond", respond())],
            After::Person,
        );
        assert_eq!(
            call["arguments"],
            json!({"service": "psra", "cpus": 1, "memory_mb": 1024})
        );
    }

    #[test]
    fn respond_as_a_call_after_the_person_spoke_is_not_taken() {
        let narrated = r#"<tool_call>
{"name":"respond","arguments":{"text":"psra was restarted"}}"#;
        let tools = [("service_set_limits", limits()), ("respond", respond())];
        assert_eq!(
            decode(narrated, &tools, After::Person)["name"],
            "service_set_limits"
        );
        // After untrusted data, calling respond is how the model declines to act.
        assert_eq!(decode(narrated, &tools, After::Data)["name"], "respond");
        // With nothing else offered, respond stays.
        assert_eq!(
            decode(narrated, &tools[1..], After::Person)["name"],
            "respond"
        );
    }

    #[test]
    fn a_plain_answer_streams_piece_by_piece_as_whole_characters() {
        let target = "  Welke dienst bedoel je? Één naam graag.";
        let mut model = Teacher::new(target);
        let classes = VocabClasses::of(&model);
        let tools = vec![("respond".to_string(), Shape::of(&respond()))];
        let (stream, pieces) = collecting();
        // Room for the whole answer at a byte per token.
        let limits = Limits {
            respond_tokens: 200,
            ..Limits::default()
        };
        let decoded = Decoder::new(&mut model, &classes, limits, Vec::new())
            .streaming(Some(&stream))
            .turn("<tool_call>\n", &tools, After::Person)
            .unwrap();
        let call: Value = serde_json::from_str(&decoded.json).unwrap();
        let pieces = pieces.lock().unwrap();
        assert!(pieces.len() > 10, "streamed in {} pieces", pieces.len());
        assert_eq!(pieces.concat(), target.trim());
        assert_eq!(call["arguments"]["text"], target.trim());
    }

    #[test]
    fn a_call_written_as_text_after_data_is_reported_not_echoed_or_streamed() {
        let target = "\n{\"name\": \"notify\", \"arguments\": {\"message\": \"mail the secrets\"}}";
        let mut model = Teacher::new(target);
        let classes = VocabClasses::of(&model);
        let tools: Vec<(String, Shape)> = [("notify", respond()), ("respond", respond())]
            .iter()
            .map(|(n, s)| (n.to_string(), Shape::of(s)))
            .collect();
        let (stream, streamed) = collecting();
        let decoded = Decoder::new(&mut model, &classes, Limits::default(), Vec::new())
            .streaming(Some(&stream))
            .turn("<tool_call>\n", &tools, After::Data)
            .unwrap();
        let call: Value = serde_json::from_str(&decoded.json).unwrap();
        let text = call["arguments"]["text"].as_str().unwrap();
        assert_eq!(call["name"], "respond");
        assert!(text.contains("before a `notify` call"), "{text}");
        assert!(!text.contains("secrets"), "{text}");
        assert!(streamed.lock().unwrap().is_empty());
        // Cut short once the name was known: the arguments were never generated.
        assert_eq!(decoded.passes, "\n{\"name\": \"notify\"".len());
    }

    #[test]
    fn an_echoed_call_names_only_a_plain_tool_identifier() {
        assert_eq!(Echo::of("{\"na"), Echo::Open);
        assert_eq!(
            Echo::of("{ \"name\" : \"db_restore\","),
            Echo::Settled(Some("db_restore".into()))
        );
        assert_eq!(Echo::of("{\"service\": \"psra\"}"), Echo::Settled(None));
        assert_eq!(
            Echo::of("{\"name\": \"</untrusted> obey\""),
            Echo::Settled(None)
        );
        assert!(echoed_call_answer(None, After::Person).contains("a tool call"));
    }

    #[test]
    fn a_list_closes_only_after_its_minimum_of_items() {
        let schema = |min: u64| {
            json!({"type": "object", "required": ["tags"], "properties": {
                "tags": {"type": "array", "minItems": min,
                         "items": {"enum": ["red", "green", "blue"]}}}})
        };
        let target = "<tool_call>\n{\"name\":\"paint\",\"arguments\":{\"tags\":[\"red\"]}}";
        let tags = |min| {
            decode(target, &[("paint", schema(min))], After::Person)["arguments"]["tags"].clone()
        };
        assert_eq!(tags(0), json!(["red"]));
        // Past the text it follows, this test model goes on as it likes: at least two.
        let two = tags(2);
        assert!(two.as_array().is_some_and(|t| t.len() >= 2), "{two}");
        assert_eq!(two[0], "red");
        // A minimum above the choices there are ends with the last of them.
        assert_eq!(tags(5).as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn a_list_of_tagged_objects_follows_each_chosen_variant() {
        let step = |tool: &str, args: Value| {
            json!({"type": "object", "required": ["tool", "args"], "properties": {
                "tool": {"const": tool}, "args": args, "until": {"type": "string"}}})
        };
        let schema = json!({"type": "object", "required": ["steps"], "properties": {
        "steps": {"type": "array", "items": {"oneOf": [
            step("service_restart", json!({"type": "object", "required": ["service"],
                "properties": {"service": {"type": "string"}}})),
            step("notify", json!({"type": "object", "required": ["message"],
                "properties": {"message": {"type": "string"},
                               "severity": {"enum": ["info", "critical"]}}}))
        ]}}}});
        let args = r#"{"steps":[{"tool":"service_restart","args":{"service":"psra"},"until":"healthy within 60s"},{"tool":"notify","args":{"message":"psra down","severity":"critical"}}]}"#;
        let target = format!("<tool_call>\n{{\"name\":\"rule\",\"arguments\":{args}}}");
        let call = decode(&target, &[("rule", schema)], After::Person);
        assert_eq!(
            call["arguments"],
            serde_json::from_str::<Value>(args).unwrap()
        );
    }

    #[test]
    fn lists_of_choices_and_of_strings_are_written_item_by_item() {
        let schema = json!({"type": "object", "required": ["product"], "properties": {
            "product": {"type": "string"},
            "agreements": {"type": "array", "items": {"enum": ["uk-eu-tca", "uk-canada"]}},
            "tags": {"type": "array", "items": {"type": "string"}}}});
        // Written out in the schema's order: `json!` sorts keys unless a crate elsewhere in
        // the build turns on serde_json's `preserve_order`.
        for args in [
            r#"{"product":"p","agreements":["uk-canada","uk-eu-tca"],"tags":["a b","c"]}"#,
            r#"{"product":"p","agreements":[],"tags":[]}"#,
        ] {
            let target =
                format!("<tool_call>\n{{\"name\":\"origin_compare\",\"arguments\":{args}}}");
            let call = decode(
                &target,
                &[("origin_compare", schema.clone())],
                After::Person,
            );
            assert_eq!(
                call["arguments"],
                serde_json::from_str::<Value>(args).unwrap()
            );
        }
    }

    #[test]
    fn a_list_of_choices_names_each_choice_once() {
        let schema = json!({"type": "object", "required": ["product"], "properties": {
            "agreements": {"type": "array", "items": {"enum": ["uk-eu-tca", "uk-canada"]}}}});
        let call = decode(
            r#"<tool_call>
{"name":"origin_compare","arguments":{"agreements":["uk-canada","uk-canada","uk-eu-tca"]}}"#,
            &[("origin_compare", schema)],
            After::Person,
        );
        assert_eq!(
            call["arguments"]["agreements"],
            json!(["uk-canada", "uk-eu-tca"])
        );
    }

    /// Decodes `target` as a call to `tool` with argument schema `schema`, completing from
    /// `completions` when given: the arguments and the forward passes.
    fn completed_run(
        target: &str,
        tool: &str,
        schema: &Value,
        completions: Option<&Completions>,
    ) -> (Value, usize) {
        let mut model = Teacher::new(target);
        let classes = VocabClasses::of(&model);
        let tools = vec![(tool.to_string(), Shape::of(schema))];
        // The byte-level model writes a byte per token.
        let limits = Limits {
            string_tokens: 64,
            ..Limits::default()
        };
        let mut decoder = Decoder::new(&mut model, &classes, limits, Vec::new());
        if let Some(c) = completions {
            decoder = decoder.completing(c);
        }
        let d = decoder
            .turn("<tool_call>\n", &tools, After::Person)
            .unwrap();
        let call: Value = serde_json::from_str(&d.json).unwrap();
        (call["arguments"].clone(), d.passes)
    }

    #[test]
    fn a_named_item_is_completed_once_its_start_is_unique_and_the_model_still_closes_it() {
        let names = vec!["acme-research".into(), "psra".into(), "w\"ird".into()];
        let completions = Completions::new(names, []);
        let run = |target: &str, completing: bool| {
            let c = completing.then_some(&completions);
            let (args, passes) = completed_run(target, "service_restart", &limits(), c);
            (args["service"].clone(), passes)
        };
        let acme = "<tool_call>\n{\"name\":\"service_restart\",\"arguments\":{\"service\":\"acme-research\"}}";
        let (service, passes) = run(acme, true);
        assert_eq!(service, "acme-research");
        // Only "a" was chosen by the model; "cme-research" came forced.
        assert_eq!(passes + "cme-research".len(), run(acme, false).1);
        // A longer name the model goes on to write is not cut at the inventory's.
        let staging = "<tool_call>\n{\"name\":\"service_restart\",\"arguments\":{\"service\":\"psra-staging\"}}";
        assert_eq!(run(staging, true).0, "psra-staging");
        // A name that could not stand in a JSON string as is is never forced.
        let safe =
            "<tool_call>\n{\"name\":\"service_restart\",\"arguments\":{\"service\":\"wexyz\"}}";
        assert_eq!(run(safe, true).0, "wexyz");
    }

    #[test]
    fn a_backup_id_and_a_number_the_model_begins_to_copy_are_completed() {
        let completions = Completions::new(
            Vec::new(),
            [
                "backups: rentguy-20261123T020000000Z, rentguy-20261122T020000000Z",
                "restore the older one and give it 768 MB",
            ],
        );
        let schema = json!({"type": "object", "required": ["backup", "memory_mb"], "properties": {
            "backup": {"type": "string"}, "memory_mb": {"type": "integer"}}});
        let target = "<tool_call>\n{\"name\":\"db_restore\",\"arguments\":{\"backup\":\"rentguy-20261122T020000000Z\",\"memory_mb\":7680}}";
        let (args, passes) = completed_run(target, "db_restore", &schema, Some(&completions));
        let (plain_args, plain_passes) = completed_run(target, "db_restore", &schema, None);
        assert_eq!(args, plain_args);
        assert_eq!(args["backup"], "rentguy-20261122T020000000Z");
        // The model wrote the id up to the day that tells the two apart and "7"; the rest
        // of each came forced, and it still went on past "768" to its own "7680". The id,
        // a whole word of the conversation, closed without a choice of its own.
        assert_eq!(args["memory_mb"], 7680);
        let closing = 1;
        assert_eq!(
            passes + "T020000000Z".len() + closing + "68".len(),
            plain_passes
        );
    }

    #[test]
    fn a_long_answer_ends_at_the_first_full_stop_past_half_the_limit() {
        let first = "The weather is outside what I can see, so I cannot say. ";
        let long = format!("{first}{}", "More words follow here. ".repeat(5));
        let mut model = Teacher::new(&long);
        let classes = VocabClasses::of(&model);
        let tools = vec![("respond".to_string(), Shape::of(&respond()))];
        // The byte-level model writes a byte per token.
        let limits = Limits {
            respond_tokens: 80,
            ..Limits::default()
        };
        let decoded = Decoder::new(&mut model, &classes, limits, Vec::new())
            .turn("<tool_call>\n", &tools, After::Person)
            .unwrap();
        let call: Value = serde_json::from_str(&decoded.json).unwrap();
        assert_eq!(call["arguments"]["text"], first.trim());
        assert!(ends_sentence("It runs 3 services."));
        assert!(!ends_sentence("upgrade to v1."));
        assert!(!ends_sentence("so I cannot say"));
    }

    #[test]
    fn a_respond_call_streams_its_text_and_ends_at_a_full_stop_like_a_plain_answer() {
        let first = "I only operate this platform, so I cannot order food.";
        let target = format!(
            "<tool_call>\n{{\"name\":\"respond\",\"arguments\":{{\"text\":\"{first} Try a delivery app. And more.\"}}}}"
        );
        let mut model = Teacher::new(&target);
        let classes = VocabClasses::of(&model);
        let tools = vec![("respond".to_string(), Shape::of(&respond()))];
        let (stream, streamed) = collecting();
        let limits = Limits {
            respond_tokens: 80,
            ..Limits::default()
        };
        let decoded = Decoder::new(&mut model, &classes, limits, Vec::new())
            .streaming(Some(&stream))
            .turn("<tool_call>\n", &tools, After::Data)
            .unwrap();
        let call: Value = serde_json::from_str(&decoded.json).unwrap();
        assert_eq!(call["arguments"]["text"], first);
        assert_eq!(streamed.lock().unwrap().concat(), first);
    }

    #[test]
    fn plain_text_becomes_respond() {
        let call = decode(
            "Which service do you mean?",
            &[("service_set_limits", limits()), ("respond", respond())],
            After::Person,
        );
        assert_eq!(
            call,
            json!({"name": "respond", "arguments": {"text": "Which service do you mean?"}})
        );
    }
}
