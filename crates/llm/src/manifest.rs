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
    /// The chat format of a planner model (`[prompt]`); ChatML with `<tool_call>` by default.
    #[serde(default)]
    pub prompt: crate::prompt::ChatFormat,
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

/// Makes sure `path` holds exactly `file` before it is loaded: the fetcher's stamp is
/// trusted only when it is newer than the file; otherwise the file is hashed (a few seconds
/// for a gigabyte). Missing, truncated or corrupt weights give an error that says how to fix.
pub fn verify_file(path: &Path, file: &ModelFile) -> Result<()> {
    let fail = |message: String| Error::Model {
        path: path.to_path_buf(),
        message,
    };
    let refetch = "run scripts/setup to fetch it again";
    match check_file(path, file) {
        FileState::Missing => return Err(fail(format!("missing; {refetch}"))),
        FileState::WrongSize { expected, actual } => {
            return Err(fail(format!(
                "{actual} bytes, expected {expected} (truncated or wrong file); {refetch}"
            )))
        }
        FileState::Verified if stamp_is_newer(path) => return Ok(()),
        FileState::Verified | FileState::Unverified => {}
    }
    let actual = sha256_file(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    if actual != file.sha256 {
        return Err(fail(format!(
            "sha256 mismatch: expected {}, found {actual} (corrupt or replaced); {refetch}",
            file.sha256
        )));
    }
    Ok(())
}

fn stamp_path(path: &Path) -> PathBuf {
    let mut stamp = path.as_os_str().to_owned();
    stamp.push(".verified");
    PathBuf::from(stamp)
}

fn stamp_is_newer(path: &Path) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (modified(&stamp_path(path)), modified(path)) {
        (Some(stamp), Some(file)) => stamp >= file,
        _ => false,
    }
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
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
    match std::fs::read_to_string(stamp_path(path)) {
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
            prompt: Default::default(),
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
    fn verify_hashes_unless_a_newer_stamp_vouches() {
        let dir = std::env::temp_dir().join(format!("steward-verify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.gguf");
        // sha256("abcd")
        let good = "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589";
        let file = |sha: &str| ModelFile {
            path: "w.gguf".into(),
            sha256: sha.into(),
            size: 4,
        };
        let err = verify_file(&path, &file(good)).unwrap_err().to_string();
        assert!(err.contains("missing; run scripts/setup"), "{err}");
        std::fs::write(&path, b"abcd").unwrap();
        verify_file(&path, &file(good)).unwrap();
        std::fs::write(&path, b"abce").unwrap();
        let err = verify_file(&path, &file(good)).unwrap_err().to_string();
        assert!(
            err.contains("sha256 mismatch") && err.contains(good),
            "{err}"
        );
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
