//! The backup directory: `<state_dir>/backups/<target>/<id>.dump` and its manifest
//! `<id>.json`; the last verification of each backup goes to
//! `<state_dir>/backup-verifications/<target>/<id>.json`.
//!
//! A manifest is written last, through a temp file and a rename, so a manifest on disk always
//! describes a complete dump; a dump without one is an interrupted backup and never listed.
//! The manifest is never rewritten afterwards: verification results go to their own file.

use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use steward_protocol::Timestamp;

use super::stats::{TableCheck, TableStat};
use super::target::{check_name, Kind, Target};
use crate::env::Env;
use crate::{Error, Result};

/// Manifest format version, bumped when fields change meaning.
pub const FORMAT: u32 = 1;

/// What one backup holds and how to check it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub id: String,
    pub target: String,
    pub kind: Kind,
    pub database: String,
    pub schema: Option<String>,
    /// RFC3339, from the injected clock.
    pub created_at: String,
    pub created_at_ms: i64,
    /// Why it was taken: `db_backup`, `safety before restoring <id>`, `tenant backup`.
    pub reason: String,
    /// File name of the dump, beside the manifest.
    pub file: String,
    pub size: u64,
    pub sha256: String,
    pub server_version: String,
    /// How `tables[].checksum` was computed, so a verifier knows what to compare.
    pub checksum_method: String,
    /// Exact row counts and checksums per table, read in the snapshot pg_dump used.
    pub tables: Vec<TableStat>,
}

impl Manifest {
    pub fn total_rows(&self) -> i64 {
        self.tables.iter().map(|t| t.rows).sum()
    }

    pub fn matches(&self, target: &Target) -> bool {
        self.target == target.name
            && self.kind == target.kind
            && self.database == target.database
            && self.schema == target.schema
    }
}

/// The outcome of the last `db_verify_backup` of a backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyRecord {
    pub backup: String,
    pub ok: bool,
    pub verified_at: String,
    pub message: String,
    #[serde(default)]
    pub tables: Vec<TableCheck>,
}

/// `2026-11-23T10:15:00.123Z`.
pub fn rfc3339(ts: Timestamp) -> String {
    chrono::DateTime::from_timestamp_millis(ts.as_millis())
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ts.as_millis().to_string())
}

/// The id of a backup of `target` taken at `ts`: `<target>-YYYYMMDDTHHMMSSmmmZ`.
pub fn backup_id(target: &str, ts: Timestamp) -> String {
    let stamp = chrono::DateTime::from_timestamp_millis(ts.as_millis())
        .map(|d| d.format("%Y%m%dT%H%M%S%3f").to_string())
        .unwrap_or_else(|| "19700101T000000000".into());
    format!("{target}-{stamp}Z")
}

/// The target a backup id belongs to: everything before its last '-' (the time stamp
/// itself never holds one).
pub fn target_of(id: &str) -> Result<String> {
    let (target, stamp) = id.rsplit_once('-').ok_or(Error::Invalid {
        what: "backup id",
        value: id.to_string(),
        rule: "must be <target>-<YYYYMMDDTHHMMSS>Z",
    })?;
    let well_formed = stamp.len() >= 16
        && stamp.ends_with('Z')
        && stamp.as_bytes()[8] == b'T'
        && stamp[..8].bytes().all(|b| b.is_ascii_digit())
        && stamp[9..stamp.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_digit());
    if !well_formed {
        return Err(Error::Invalid {
            what: "backup id",
            value: id.to_string(),
            rule: "must be <target>-<YYYYMMDDTHHMMSS>Z",
        });
    }
    check_name("backup id's target", target)?;
    Ok(target.to_string())
}

pub fn backups_root(env: &Env) -> PathBuf {
    env.config.state_dir.join("backups")
}

/// The directory of `target`'s backups. `target` must be a validated name.
pub fn target_dir(env: &Env, target: &str) -> PathBuf {
    backups_root(env).join(target)
}

pub fn dump_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.dump"))
}

pub fn manifest_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.json"))
}

/// Where the last verification of backup `id` of `target` is recorded. Kept apart from the
/// backups themselves: verifying reads a backup and never changes what the backup dir holds.
pub fn verify_path(env: &Env, target: &str, id: &str) -> PathBuf {
    env.config
        .state_dir
        .join("backup-verifications")
        .join(target)
        .join(format!("{id}.json"))
}

/// Records the outcome of a verification (directory created private on first use).
pub fn write_verify(env: &Env, target: &str, record: &VerifyRecord) -> Result<()> {
    let path = verify_path(env, target, &record.backup);
    if let Some(dir) = path.parent() {
        ensure_private_dir(dir)?;
    }
    write_json_atomic(&path, record)
}

/// Creates the directory, readable by steward only: dumps hold tenant data.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(Error::io(dir))
}

pub fn make_private(path: &Path) -> Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(Error::io(path))
}

/// Writes `value` as pretty JSON through a temp file and a rename.
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::Failed(format!("{}: cannot serialize: {e}", path.display())))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).map_err(Error::io(&tmp))?;
    make_private(&tmp)?;
    std::fs::rename(&tmp, path).map_err(Error::io(path))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read(path).map_err(Error::io(path))?;
    serde_json::from_slice(&text).map_err(|e| {
        Error::Failed(format!(
            "{}: not a readable backup record ({e}); the file was changed by hand or truncated",
            path.display()
        ))
    })
}

/// The manifest of backup `id`; `NotFound` (what = "backup") when there is none.
pub fn read_manifest(env: &Env, id: &str) -> Result<(PathBuf, Manifest)> {
    let target = target_of(id)?;
    let dir = target_dir(env, &target);
    let path = manifest_path(&dir, id);
    if !path.is_file() {
        return Err(Error::NotFound {
            what: "backup",
            name: id.to_string(),
        });
    }
    let manifest: Manifest = read_json(&path)?;
    if manifest.id != id || manifest.target != target {
        return Err(Error::Failed(format!(
            "{}: manifest names backup {:?} of target {:?}, not {id:?}; it was moved or edited",
            path.display(),
            manifest.id,
            manifest.target
        )));
    }
    Ok((dir, manifest))
}

pub fn read_verify(env: &Env, target: &str, id: &str) -> Option<VerifyRecord> {
    let path = verify_path(env, target, id);
    path.is_file().then(|| read_json(&path).ok()).flatten()
}

/// Every complete backup of `target`, newest first.
pub fn list(env: &Env, target: &str) -> Result<Vec<Manifest>> {
    let dir = target_dir(env, target);
    let entries = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_suffix(".json") else {
            continue;
        };
        if id.starts_with('.') {
            continue;
        }
        let manifest: Manifest = read_json(&entry.path())?;
        out.push(manifest);
    }
    out.sort_by(|a, b| (b.created_at_ms, &b.id).cmp(&(a.created_at_ms, &a.id)));
    Ok(out)
}

/// Where pg_dump writes a backup before it is complete; never listed.
pub fn partial_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!(".{id}.dump.partial"))
}

/// Reserves a fresh id for a backup of `target` at `now` by creating its partial file
/// (private, and exclusively, so two backups started at once never share an id). When an id
/// is taken (the same millisecond, or a test clock standing still) the stamp in the id moves
/// on by a millisecond; the manifest keeps the clock's time.
pub fn reserve_id(dir: &Path, target: &str, now: Timestamp) -> Result<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut ms = now.as_millis();
    loop {
        let id = backup_id(target, Timestamp(ms));
        ms += 1;
        if manifest_path(dir, &id).exists() || dump_path(dir, &id).exists() {
            continue;
        }
        let partial = partial_path(dir, &id);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&partial)
        {
            Ok(_) => return Ok(id),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(&partial)(e)),
        }
    }
}

/// Removes what an interrupted backup or restore left in `dir` (a partial dump, rendered
/// SQL) once it is older than `min_age`, so a crash leaves nothing behind for long: the next
/// backup of the target repairs it. Younger files may belong to a run still going.
pub fn sweep_leftovers(dir: &Path, min_age: std::time::Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let leftover = (name.starts_with('.') && name.ends_with(".dump.partial"))
            || name.starts_with(".restore-");
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= min_age);
        if leftover && old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Size and hex sha256 of a file, read in 1 MiB blocks off the async runtime.
pub async fn sha256_file(path: &Path) -> Result<(u64, String)> {
    let path = path.to_path_buf();
    let p = path.clone();
    tokio::task::spawn_blocking(move || -> Result<(u64, String)> {
        let mut f = std::fs::File::open(&p).map_err(Error::io(&p))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = f.read(&mut buf).map_err(Error::io(&p))?;
            if n == 0 {
                break;
            }
            size += n as u64;
            hasher.update(&buf[..n]);
        }
        let digest = hasher.finalize();
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        Ok((size, hex))
    })
    .await
    .map_err(|e| Error::Failed(format!("{}: hashing task failed: {e}", path.display())))?
}

/// "12.3 KiB".
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_to_their_target() {
        let ts = Timestamp(1_795_428_900_123); // 2026-11-23T10:15:00.123Z
        let id = backup_id("acme-research", ts);
        assert_eq!(id, "acme-research-20261123T101500123Z");
        assert!(steward_tools::ident::BackupId::parse(&id).is_ok());
        assert_eq!(target_of(&id).unwrap(), "acme-research");
        assert_eq!(target_of("acme-20261123T101500Z").unwrap(), "acme");
        assert!(target_of("acme-research").is_err());
        assert!(target_of("20261123T101500Z").is_err());
        assert_eq!(rfc3339(ts), "2026-11-23T10:15:00.123Z");
        assert_eq!(human_size(1536), "1.5 KiB");
    }

    #[test]
    fn leftovers_of_interrupted_runs_are_swept() {
        let dir = std::env::temp_dir().join(format!("steward-sweep-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let id = "acme-20261123T101500000Z";
        let reserved = reserve_id(&dir, "acme", Timestamp(1_795_428_900_000)).unwrap();
        assert_eq!(reserved, id);
        // The partial file holds the id: the next reservation moves on.
        let next = reserve_id(&dir, "acme", Timestamp(1_795_428_900_000)).unwrap();
        assert_eq!(next, "acme-20261123T101500001Z");
        std::fs::write(dir.join(format!(".restore-{id}.sql")), b"x").unwrap();
        std::fs::write(dir.join(format!("{id}.json")), b"{}").unwrap();
        sweep_leftovers(&dir, std::time::Duration::from_secs(3600));
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            4,
            "young files stay"
        );
        sweep_leftovers(&dir, std::time::Duration::ZERO);
        let left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, vec![format!("{id}.json")]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
