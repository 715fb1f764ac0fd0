//! Files one process saves so the next starts faster (the model's prompt state, the
//! catalogue's embeddings): only the newest few of a kind are kept, so evals over many tool
//! sets or inventories do not fill the disk.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Removes all but the `kept` most recently written or used files of `dir` whose name ends
/// in `suffix`. Failures are ignored: a file left over costs only disk space.
pub(crate) fn keep_newest(dir: &Path, suffix: &str, kept: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(SystemTime, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    for (_, old) in files.into_iter().skip(kept) {
        let _ = std::fs::remove_file(old);
    }
}

/// Marks `path` as just used, so [`keep_newest`] keeps it over files saved since.
pub(crate) fn touch(path: &Path) {
    let touched = std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(SystemTime::now()));
    if let Err(e) = touched {
        tracing::debug!("could not mark {} as used: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_the_newest_files_of_a_kind_are_kept_and_a_used_one_counts_as_new() {
        let dir = std::env::temp_dir().join(format!("steward-saved-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let at = |name: &str, secs: u64| {
            let path = dir.join(name);
            std::fs::write(&path, name).unwrap();
            let f = std::fs::File::options().write(true).open(&path).unwrap();
            f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
                .unwrap();
            path
        };
        let oldest = at("a.json", 1);
        at("b.json", 2);
        at("c.json", 3);
        at("other.kv", 0);
        touch(&oldest);
        keep_newest(&dir, ".json", 2);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["a.json", "c.json", "other.kv"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
