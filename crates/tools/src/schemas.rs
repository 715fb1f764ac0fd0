//! The committed tool definitions under `tools/<name>.json`: name, summary, effect and the
//! JSON Schema of the arguments, in the shape Claude, OpenAI and MCP all accept
//! (`input_schema`). They are generated from the typed structs by
//! `steward tools export`, and `committed_definitions_match_the_code` fails on drift.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::{call, CATALOGUE};

/// The definition of one tool as committed, or None for a tool outside the catalogue.
pub fn definition(tool: &str) -> Option<Value> {
    let spec = crate::find(tool)?;
    Some(json!({
        "name": spec.name,
        "description": spec.summary,
        "effect": spec.effect,
        "input_schema": call::schema(tool)?,
    }))
}

/// The exact text of `tools/<tool>.json`.
pub fn definition_text(tool: &str) -> Option<String> {
    let mut text = serde_json::to_string_pretty(&definition(tool)?).ok()?;
    text.push('\n');
    Some(text)
}

/// Writes every definition into `dir`, returning the files whose content changed.
pub fn export(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut changed = Vec::new();
    for spec in CATALOGUE {
        let path = dir.join(format!("{}.json", spec.name));
        let text = definition_text(spec.name).unwrap_or_default();
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            std::fs::write(&path, &text)?;
            changed.push(path);
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tools_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools")
    }

    #[test]
    fn committed_definitions_match_the_code() {
        let mut drifted = Vec::new();
        for spec in CATALOGUE {
            let path = tools_dir().join(format!("{}.json", spec.name));
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            if Some(committed) != definition_text(spec.name) {
                drifted.push(spec.name);
            }
        }
        assert!(
            drifted.is_empty(),
            "tools/*.json drifted from the typed args for {drifted:?}; run `cargo run -p steward-cli -- tools export`"
        );
    }

    #[test]
    fn no_stray_definitions() {
        for entry in std::fs::read_dir(tools_dir()).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if let Some(tool) = name.strip_suffix(".json") {
                assert!(
                    crate::find(tool).is_some(),
                    "tools/{name} is not in the catalogue"
                );
            }
        }
    }
}
