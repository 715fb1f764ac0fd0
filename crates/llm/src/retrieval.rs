//! Tool retrieval: all-MiniLM-L6-v2 sentence embeddings (candle, CPU) of each tool's name,
//! summary and usage hints, compared by cosine similarity with the operator's words, so
//! only the top-k tools are offered to the model and a large catalogue does not crowd the
//! choice. The tokenizer is BERT's uncased WordPiece, read from the model's
//! `tokenizer.json` (lowercase, split on whitespace and punctuation, greedy longest match).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use serde_json::Value;

use crate::plan::ToolDef;
use crate::{Error, Result};

/// Longest input embedded, in WordPiece tokens (with [CLS] and [SEP]).
const MAX_TOKENS: usize = 128;

/// The sentence embedder.
pub struct Embedder {
    /// Which weights these are (directory name and size), so embeddings saved by another
    /// embedder are not taken for this one's.
    identity: String,
    model: BertModel,
    vocab: HashMap<String, u32>,
    cls: u32,
    sep: u32,
    unk: u32,
    device: Device,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("vocab", &self.vocab.len())
            .finish()
    }
}

fn model_err(path: &Path, message: impl std::fmt::Display) -> Error {
    Error::Model {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

impl Embedder {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from `dir`.
    pub fn load(dir: &Path) -> Result<Embedder> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|e| model_err(&path, format!("{e}; run scripts/setup")))
        };
        let config: Config = serde_json::from_slice(&read("config.json")?)
            .map_err(|e| model_err(&dir.join("config.json"), e))?;
        let tokenizer: Value = serde_json::from_slice(&read("tokenizer.json")?)
            .map_err(|e| model_err(&dir.join("tokenizer.json"), e))?;
        let vocab: HashMap<String, u32> = tokenizer["model"]["vocab"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), u32::try_from(v.as_u64()?).ok()?)))
                    .collect()
            })
            .unwrap_or_default();
        let id = |t: &str| {
            vocab.get(t).copied().ok_or_else(|| {
                model_err(
                    &dir.join("tokenizer.json"),
                    format!("no {t} in the vocabulary"),
                )
            })
        };
        let (cls, sep, unk) = (id("[CLS]")?, id("[SEP]")?, id("[UNK]")?);
        let device = Device::Cpu;
        let weights = dir.join("model.safetensors");
        let bytes = read("model.safetensors")?;
        let identity = format!(
            "{} {}",
            dir.file_name().unwrap_or_default().to_string_lossy(),
            bytes.len()
        );
        let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &device)
            .map_err(|e| model_err(&weights, e))?;
        let model = BertModel::load(vb, &config).map_err(|e| model_err(&weights, e))?;
        Ok(Embedder {
            identity,
            model,
            vocab,
            cls,
            sep,
            unk,
            device,
        })
    }

    /// Which weights embed: the same identity means the same vectors for the same text.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// WordPiece ids of `text`, with [CLS] and [SEP], cut to [`MAX_TOKENS`].
    pub fn tokenize(&self, text: &str) -> Vec<u32> {
        let mut ids = vec![self.cls];
        'words: for word in basic_words(text) {
            let chars: Vec<char> = word.chars().collect();
            if chars.len() > 100 {
                ids.push(self.unk);
                continue;
            }
            let mut start = 0;
            let mut pieces = Vec::new();
            while start < chars.len() {
                let mut end = chars.len();
                let found = loop {
                    let sub: String = chars[start..end].iter().collect();
                    let sub = if start > 0 { format!("##{sub}") } else { sub };
                    if let Some(&id) = self.vocab.get(&sub) {
                        break Some(id);
                    }
                    end -= 1;
                    if end == start {
                        break None;
                    }
                };
                match found {
                    Some(id) => pieces.push(id),
                    None => {
                        ids.push(self.unk);
                        continue 'words;
                    }
                }
                start = end;
            }
            ids.extend(pieces);
        }
        ids.truncate(MAX_TOKENS - 1);
        ids.push(self.sep);
        ids
    }

    /// The L2-normalized mean-pooled embedding of `text` (384 numbers).
    pub fn embed(&self, text: &str) -> Result<Vec<f32>> {
        let fail = |e: candle_core::Error| Error::Model {
            path: "all-minilm-l6-v2".into(),
            message: format!("embedding failed: {e}"),
        };
        let ids = self.tokenize(text);
        let n = ids.len();
        let input = Tensor::from_vec(ids, (1, n), &self.device).map_err(fail)?;
        let types = input.zeros_like().map_err(fail)?;
        let out = self.model.forward(&input, &types, None).map_err(fail)?;
        let pooled = out
            .mean(1)
            .and_then(|t| t.squeeze(0))
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(fail)?;
        Ok(normalize(pooled))
    }
}

fn normalize(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

/// BERT's basic tokenization: lowercase, drop control characters, split on whitespace and
/// around each punctuation character.
fn basic_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_whitespace() || c.is_control() {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
        } else if c.is_ascii_punctuation() || (!c.is_alphanumeric() && !c.is_whitespace()) {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            words.push(c.to_string());
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// The embedded tools of one catalogue.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ToolIndex {
    tools: Vec<(String, Vec<f32>)>,
}

impl ToolIndex {
    /// Embeds each tool as "name in words: summary. hints" (hints: extra phrasings operators
    /// use, e.g. from `prompts/tool_hints.toml`).
    pub fn build(
        embedder: &Embedder,
        tools: &[ToolDef],
        hints: &HashMap<String, String>,
    ) -> Result<ToolIndex> {
        let tools = tools
            .iter()
            .map(|t| {
                let text = format!(
                    "{}: {} {}",
                    t.name.replace('_', " "),
                    t.description,
                    hints.get(&t.name).map_or("", String::as_str)
                );
                Ok((t.name.clone(), embedder.embed(&text)?))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ToolIndex { tools })
    }

    /// Tool names by similarity to `query`, best first, with their cosine scores.
    pub fn rank(&self, embedder: &Embedder, query: &str) -> Result<Vec<(String, f32)>> {
        let q = embedder.embed(query)?;
        let mut ranked: Vec<(String, f32)> = self
            .tools
            .iter()
            .map(|(name, v)| (name.clone(), v.iter().zip(&q).map(|(a, b)| a * b).sum()))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(ranked)
    }

    /// The `k` best tools for `query`.
    pub fn top_k(&self, embedder: &Embedder, query: &str, k: usize) -> Result<Vec<String>> {
        Ok(self
            .rank(embedder, query)?
            .into_iter()
            .take(k)
            .map(|(n, _)| n)
            .collect())
    }
}

/// The shipped hints, `prompts/tool_hints.toml`.
pub const TOOL_HINTS: &str = include_str!("../../../prompts/tool_hints.toml");

/// Usage hints per tool: `prompts/tool_hints.toml`, `tool = "phrases operators use"`.
pub fn load_hints(text: &str) -> Result<HashMap<String, String>> {
    toml::from_str(text).map_err(|e| Error::Data(format!("tool hints: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_tokenization_splits_punctuation_and_lowercases() {
        assert_eq!(
            basic_words("Restart RentGuy, pls! (now)"),
            ["restart", "rentguy", ",", "pls", "!", "(", "now", ")"]
        );
    }
}
