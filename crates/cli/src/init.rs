//! `steward init`: makes a home an installed steward needs outside a checkout. It writes
//! `<home>/config.toml` when there is none, and copies the data steward reads at run time
//! (`policies/`, the model manifests `models/*.toml`) from the checkout (or
//! `$STEWARD_DATA_DIR`) into `<home>/share/`, which then is the data root (see
//! [`crate::config::DataRoot`]) from any working directory. Prompts and tool definitions are
//! compiled into the binary and need no copy.
//!
//! Idempotent, and a file the person edited is never overwritten: next to each installed
//! file a pristine copy is kept under `<home>/share/.shipped/`; a later `init` updates a file
//! only while it still equals that copy, and names the ones it kept.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::config::{DataRoot, DATA_MARKER};

/// What one `init` did to each file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub installed: Vec<PathBuf>,
    pub updated: Vec<PathBuf>,
    pub unchanged: Vec<PathBuf>,
    /// Files the person edited since they were installed: left as they are.
    pub kept: Vec<PathBuf>,
    /// `config.toml` was written (there was none).
    pub config_written: bool,
}

const CONFIG_TEMPLATE: &str = "\
# steward's configuration: built-in defaults < this file < STEWARD_<KEY> environment
# variables < flags. `steward config` shows every value and where it came from.
# pg_url (the PostgreSQL admin URL) has no default; scripts/setup writes it for a checkout.
#
# pg_url = \"postgres://steward:<password>@127.0.0.1:55432/steward\"
# state_url = \"sqlite://<home>/state.db\"
# approval_ttl = \"15m\"
# principal = \"operator:local\"
";

/// Sets up `home` with the shipped data from `source` (the checkout or
/// `$STEWARD_DATA_DIR`).
pub fn run(home: &Path, source: &Path) -> Result<Report> {
    if !source.join(DATA_MARKER).is_file() {
        bail!(
            "{} holds no shipped data ({DATA_MARKER} is missing): run `steward init` from a \
             checkout's binary or set STEWARD_DATA_DIR to one",
            source.display()
        );
    }
    let share = home.join("share");
    if same_dir(source, &share) {
        bail!(
            "the shipped data is {} already; point STEWARD_DATA_DIR at a checkout to update it",
            share.display()
        );
    }
    std::fs::create_dir_all(home).with_context(|| format!("cannot create {}", home.display()))?;
    let mut report = Report::default();
    let config = home.join("config.toml");
    if !config.exists() {
        write_private(&config, CONFIG_TEMPLATE)?;
        report.config_written = true;
    }
    for rel in shipped_files(source)? {
        install(&source.join(&rel), &share, &rel, &mut report)?;
    }
    Ok(report)
}

/// The shipped source for `init`: `$STEWARD_DATA_DIR`, else the checkout (never the home's
/// own `share/`).
pub fn source(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    match env("STEWARD_DATA_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => DataRoot::shipped().dir,
    }
}

/// Paths relative to `source`: everything under `policies/`, and `models/*.toml`.
fn shipped_files(source: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    walk(source, Path::new("policies"), &mut files)?;
    let models = source.join("models");
    for entry in read_dir(&models)? {
        let name = entry.file_name();
        if entry.path().is_file() && Path::new(&name).extension() == Some("toml".as_ref()) {
            files.push(Path::new("models").join(name));
        }
    }
    files.sort();
    Ok(files)
}

fn walk(source: &Path, rel: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    for entry in read_dir(&source.join(rel))? {
        let child = rel.join(entry.file_name());
        if entry.path().is_dir() {
            walk(source, &child, files)?;
        } else {
            files.push(child);
        }
    }
    Ok(())
}

fn read_dir(dir: &Path) -> Result<Vec<std::fs::DirEntry>> {
    std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .map(|e| e.with_context(|| format!("cannot read {}", dir.display())))
        .collect()
}

fn install(from: &Path, share: &Path, rel: &Path, report: &mut Report) -> Result<()> {
    let shipped = std::fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
    let dest = share.join(rel);
    let pristine = share.join(".shipped").join(rel);
    let current = std::fs::read(&dest).ok();
    let last_installed = std::fs::read(&pristine).ok();
    let list = match current {
        None => &mut report.installed,
        Some(c) if c == shipped => &mut report.unchanged,
        Some(c) if Some(&c) == last_installed.as_ref() => &mut report.updated,
        Some(_) => {
            report.kept.push(dest);
            return Ok(());
        }
    };
    list.push(dest.clone());
    write(&dest, &shipped)?;
    if last_installed.as_deref() != Some(&shipped[..]) {
        write(&pristine, &shipped)?;
    }
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    if std::fs::read(path).ok().as_deref() == Some(bytes) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

impl Report {
    /// One line per kind of change, and one per file kept.
    pub fn lines(&self, home: &Path) -> Vec<String> {
        let mut lines = vec![if self.config_written {
            format!(
                "wrote {} (set pg_url in it)",
                home.join("config.toml").display()
            )
        } else {
            format!("kept {}", home.join("config.toml").display())
        }];
        lines.push(format!(
            "{}: {} installed, {} updated, {} unchanged, {} kept",
            home.join("share").display(),
            self.installed.len(),
            self.updated.len(),
            self.unchanged.len(),
            self.kept.len()
        ));
        lines.extend(self.kept.iter().map(|p| {
            format!(
                "kept your edit of {} (the shipped version differs; compare with {})",
                p.display(),
                pristine_of(home, p).display()
            )
        }));
        lines
    }
}

fn pristine_of(home: &Path, dest: &Path) -> PathBuf {
    let share = home.join("share");
    match dest.strip_prefix(&share) {
        Ok(rel) => share.join(".shipped").join(rel),
        Err(_) => dest.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("steward-init-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn checkout() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    #[test]
    fn installs_then_changes_nothing_and_keeps_edits() {
        let home = tmp("idem");
        let first = run(&home, &checkout()).unwrap();
        assert!(first.config_written);
        assert!(home.join("share").join(DATA_MARKER).is_file());
        assert!(home
            .join("share/models/smollm2-135m-instruct.toml")
            .is_file());
        assert!(
            first.updated.is_empty() && first.kept.is_empty(),
            "{first:?}"
        );

        let second = run(&home, &checkout()).unwrap();
        assert!(!second.config_written);
        assert!(second.installed.is_empty() && second.updated.is_empty());
        assert_eq!(second.unchanged.len(), first.installed.len());

        // An edit survives; a file the person left alone follows the shipped one.
        let edited = home.join("share/policies/guards.toml");
        std::fs::write(&edited, "# mine\n").unwrap();
        let source = tmp("source");
        copy(&checkout().join("policies"), &source.join("policies"));
        copy(&checkout().join("models"), &source.join("models"));
        let readme = source.join("policies/README.md");
        std::fs::write(&readme, "new shipped text\n").unwrap();
        std::fs::write(source.join("policies/guards.toml"), "# new shipped\n").unwrap();
        let third = run(&home, &source).unwrap();
        assert_eq!(third.kept, vec![edited.clone()]);
        assert_eq!(std::fs::read_to_string(&edited).unwrap(), "# mine\n");
        assert_eq!(third.updated, vec![home.join("share/policies/README.md")]);
        assert_eq!(
            std::fs::read_to_string(home.join("share/policies/README.md")).unwrap(),
            "new shipped text\n"
        );
        let lines = third.lines(&home).join("\n");
        assert!(lines.contains("kept your edit of"), "{lines}");
        std::fs::remove_dir_all(&home).unwrap();
        std::fs::remove_dir_all(&source).unwrap();
    }

    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            if e.path().is_dir() {
                copy(&e.path(), &to.join(e.file_name()));
            } else {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    }
}
