//! `models/*.toml`: one manifest per model, naming each weight file with its size and
//! sha256. `scripts/fetch_models.py` fetches and verifies them; this module lets steward check
//! them without re-hashing a gigabyte on every start.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{Error, Result};

#[derive(Debug, Clone, Deserialize)]
pub struct ModelManifest {
    pub name: String,
    pub role: String,
    pub files: Vec<ModelFile>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ModelFile {
    /// Relative to the model's own folder under the weights directory.
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

/// What is known about one weight file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    /// Present with the right size, and the fetcher's stamp records the expected hash.
    Verified,
    Missing,
    WrongSize {
        expected: u64,
        actual: u64,
    },
    /// Right size, but never verified (or the stamp names another hash).
    Unverified,
}

impl ModelManifest {
    /// Loads every `*.toml` in `dir`, sorted by file name so output is stable.
    pub fn load_dir(dir: &Path) -> Result<Vec<ModelManifest>> {
        let io = |source| Error::Io {
            path: dir.to_path_buf(),
            source,
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        paths.iter().map(|p| Self::load(p)).collect()
    }

    pub fn load(path: &Path) -> Result<ModelManifest> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| Error::Manifest {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Where `file` lives under the weights directory.
    pub fn file_path(&self, weights_dir: &Path, file: &ModelFile) -> PathBuf {
        weights_dir.join(&self.name).join(&file.path)
    }

    /// Checks each file cheaply: existence, size, and the fetcher's verification stamp.
    pub fn check(&self, weights_dir: &Path) -> Vec<(PathBuf, FileState)> {
        self.files
            .iter()
            .map(|f| {
                let path = self.file_path(weights_dir, f);
                let state = check_file(&path, f);
                (path, state)
            })
            .collect()
    }
}

fn check_file(path: &Path, file: &ModelFile) -> FileState {
    let Ok(meta) = std::fs::metadata(path) else {
        return FileState::Missing;
    };
    if meta.len() != file.size {
        return FileState::WrongSize {
            expected: file.size,
            actual: meta.len(),
        };
    }
    let mut stamp = path.as_os_str().to_owned();
    stamp.push(".verified");
    match std::fs::read_to_string(PathBuf::from(stamp)) {
        Ok(s) if s.contains(&file.sha256) => FileState::Verified,
        _ => FileState::Unverified,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(size: u64) -> ModelManifest {
        ModelManifest {
            name: "m".into(),
            role: "planner".into(),
            files: vec![ModelFile {
                path: "w.gguf".into(),
                sha256: "ab12".into(),
                size,
            }],
        }
    }

    #[test]
    fn file_states() {
        let dir = std::env::temp_dir().join(format!("steward-manifest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("m")).unwrap();
        let m = manifest(4);
        assert_eq!(m.check(&dir)[0].1, FileState::Missing);
        std::fs::write(dir.join("m/w.gguf"), b"abc").unwrap();
        assert_eq!(
            m.check(&dir)[0].1,
            FileState::WrongSize {
                expected: 4,
                actual: 3
            }
        );
        std::fs::write(dir.join("m/w.gguf"), b"abcd").unwrap();
        assert_eq!(m.check(&dir)[0].1, FileState::Unverified);
        std::fs::write(dir.join("m/w.gguf.verified"), "sha256=ffff").unwrap();
        assert_eq!(m.check(&dir)[0].1, FileState::Unverified);
        std::fs::write(dir.join("m/w.gguf.verified"), "sha256=ab12").unwrap();
        assert_eq!(m.check(&dir)[0].1, FileState::Verified);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_manifest_names_the_file() {
        let dir = std::env::temp_dir().join(format!("steward-manifest-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("x.toml"), "name = 3").unwrap();
        let err = ModelManifest::load_dir(&dir).unwrap_err().to_string();
        assert!(
            err.contains("x.toml") && err.contains("not a valid model manifest"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
