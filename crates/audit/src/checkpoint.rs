//! Signed head checkpoints: what catches a truncated tail.
//!
//! The hash chain alone proves that every record is linked to the one before it, but
//! deleting the last K records leaves a shorter chain that is perfectly valid. Only a
//! statement about the head kept *outside* the table can show that records are missing.
//! So the log periodically signs its head `{store, seq, hash, at}` with HMAC-SHA256 and
//! writes it to `<dir>/checkpoints/<store id>/checkpoint.json` (atomically: temp file,
//! fsync, rename), and appends the same line to `checkpoints.jsonl` next to it, the history.
//! `verify` then requires that
//!
//! - every signature checks out (an edited checkpoint is itself tampering),
//! - the log reaches the latest checkpoint's seq (else: truncated tail, records L+1..S), and
//! - the record at each checkpointed seq still has the checkpointed hash (else: the chain
//!   was rewritten and re-hashed at or before that seq; the history narrows down where).
//!
//! Checkpoints belong to a store, not to a home: one home may be pointed at several stores
//! (`--state-url`), and signing another store's head into this one's files would make the
//! two look tampered with. So each store carries a random id (see [`crate::Store::id`]),
//! every checkpoint names it (inside the MAC), and each store's checkpoints live in a folder
//! of their own. The key is shared by the home.
//!
//! A checkpoint is written every `checkpoint_every` appends (default 100), by the background
//! task when the head is older than `checkpoint_interval` (default 10 s), on
//! [`crate::AuditLog::checkpoint`] and on [`crate::AuditLog::close`]. Records appended after
//! the last checkpoint can still be cut off unnoticed, so the window is at most that many
//! records or that much time.
//!
//! The key is 32 random bytes in `<dir>/checkpoint.key` (hex, mode 0600), created with the
//! first checkpoint. It lives in the data dir, not in the state store, so someone who can
//! only write the database (a shared PostgreSQL, a copied SQLite file) cannot forge a head.
//! Someone who can write the data dir can; keep a copy of `checkpoints.jsonl` elsewhere
//! (it holds no secrets) for protection against that.
//!
//! Trust on first use happens only for an *empty* store: open signs its head (seq 0) when
//! it has no checkpoint yet. A store that has records but no checkpoint is never signed
//! automatically, neither at open nor by the periodic or closing checkpoints, because that
//! would bless whatever is left after someone cut the tail and deleted the checkpoint files.
//! `verify` reports it ([`crate::ProblemKind::NoCheckpoint`]) until an operator signs the head
//! on purpose (`steward audit verify --first-checkpoint` or `steward audit checkpoint`).
//!
//! Homes from before store ids hold `<dir>/checkpoint.json` and `<dir>/checkpoints.jsonl`
//! without a store (MAC domain `/1`). They are never written again. When a store without
//! checkpoints of its own is opened, the legacy checkpoints that match its chain (same hash
//! at the same seq) are re-signed as its own; `verify` lists the rest plainly as
//! belonging to no known store ([`crate::ProblemKind::Unattributed`]) rather than as
//! tampering, since they may be another store's heads that the old layout mixed in.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use steward_protocol::Timestamp;

use crate::{Error, Result};

pub(crate) const KEY_FILE: &str = "checkpoint.key";
pub(crate) const LATEST_FILE: &str = "checkpoint.json";
pub(crate) const HISTORY_FILE: &str = "checkpoints.jsonl";
/// The folder under the audit dir that holds one folder of checkpoints per store id.
pub(crate) const STORES_DIR: &str = "checkpoints";

/// MAC domain of checkpoints that name their store.
const DOMAIN: &str = "steward-audit-checkpoint/2";
/// MAC domain of legacy checkpoints (no store), only ever verified, never signed.
const LEGACY_DOMAIN: &str = "steward-audit-checkpoint/1";

/// A signed statement "store `store`'s log head was record `seq` with hash `hash` at `at`".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The store's id ([`crate::Store::id`]); empty in a legacy checkpoint.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub store: String,
    pub seq: u64,
    pub hash: String,
    pub at: Timestamp,
    /// HMAC-SHA256 over `steward-audit-checkpoint/2\n{store}\n{seq}\n{hash}\n{at}`, hex
    /// (legacy: `steward-audit-checkpoint/1\n{seq}\n{hash}\n{at}`).
    pub mac: String,
}

/// Holds the key and serializes checkpoint writes, for one store.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    /// The audit dir (`<home>/audit`): the key and the legacy files.
    home: PathBuf,
    /// This store's folder, `<home>/checkpoints/<store id>`.
    dir: PathBuf,
    store: String,
    key: [u8; 32],
    /// The newest checkpoint this process wrote or loaded; writes never go backwards.
    latest: Mutex<Option<Checkpoint>>,
    /// Whether this store has a checkpoint (see `has_any`), cached once true.
    anchored: AtomicBool,
    /// Whether the "no checkpoint, not signing" warning was logged already.
    warned: AtomicBool,
}

/// What `verify` learns from the checkpoint files.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    pub latest: Option<Checkpoint>,
    pub history: Vec<Checkpoint>,
    /// Whether this store's `checkpoint.json` exists (readable or not).
    pub latest_file: bool,
    /// Validly signed legacy checkpoints (no store id) from the audit dir itself.
    pub legacy: Vec<Checkpoint>,
    /// Lines or files that are unreadable or wrongly signed, with their seq when known.
    pub bad: Vec<(u64, String)>,
    /// Ids of other stores that have checkpoint folders in this home.
    pub other_stores: Vec<String>,
}

impl Checkpointer {
    /// Loads the home's key from `home`, creating it if missing, for the store `store`.
    pub fn open(home: &Path, store: &str) -> Result<Checkpointer> {
        std::fs::create_dir_all(home).map_err(Error::io(home))?;
        let path = home.join(KEY_FILE);
        let key = match std::fs::read_to_string(&path) {
            Ok(text) => parse_key(&path, &text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match create_key(&path) {
                Ok(key) => key,
                // Another process created it between our read and our create.
                Err(Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::AlreadyExists =>
                {
                    let text = std::fs::read_to_string(&path).map_err(Error::io(&path))?;
                    parse_key(&path, &text)?
                }
                Err(e) => return Err(e),
            },
            Err(e) => return Err(Error::io(&path)(e)),
        };
        let cp = Checkpointer {
            home: home.to_path_buf(),
            dir: home.join(STORES_DIR).join(store),
            store: store.to_string(),
            key,
            latest: Mutex::new(None),
            anchored: AtomicBool::new(false),
            warned: AtomicBool::new(false),
        };
        let latest = cp.read_latest().ok().flatten().filter(|c| cp.is_valid(c));
        if let Ok(mut guard) = cp.latest.lock() {
            *guard = latest;
        }
        Ok(cp)
    }

    /// This store's checkpoint folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The audit dir this store's checkpoints belong to (`<home>/audit`).
    pub fn home(&self) -> &Path {
        &self.home
    }

    pub fn store(&self) -> &str {
        &self.store
    }

    pub fn sign(&self, seq: u64, hash: &str, at: Timestamp) -> Checkpoint {
        Checkpoint {
            store: self.store.clone(),
            seq,
            hash: hash.to_string(),
            at,
            mac: hex::encode(self.mac(&text(&self.store, seq, hash, at))),
        }
    }

    fn mac(&self, text: &str) -> Vec<u8> {
        // new_from_slice accepts any key length for HMAC; the Err arm cannot happen.
        match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mut m) => {
                m.update(text.as_bytes());
                m.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        }
    }

    /// Whether `cp` is a validly signed checkpoint of *this* store.
    pub fn is_valid(&self, cp: &Checkpoint) -> bool {
        cp.store == self.store && self.mac_ok(cp, &text(&cp.store, cp.seq, &cp.hash, cp.at))
    }

    /// Whether `cp` is a validly signed legacy checkpoint (no store id).
    fn is_valid_legacy(&self, cp: &Checkpoint) -> bool {
        cp.store.is_empty()
            && self.mac_ok(
                cp,
                &format!("{LEGACY_DOMAIN}\n{}\n{}\n{}", cp.seq, cp.hash, cp.at.0),
            )
    }

    fn mac_ok(&self, cp: &Checkpoint, text: &str) -> bool {
        let Ok(given) = hex::decode(&cp.mac) else {
            return false;
        };
        match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mut m) => {
                m.update(text.as_bytes());
                m.verify_slice(&given).is_ok() // constant-time comparison
            }
            Err(_) => false,
        }
    }

    /// The last checkpoint written or loaded by this process.
    pub fn latest(&self) -> Option<Checkpoint> {
        self.latest.lock().ok().and_then(|g| g.clone())
    }

    /// Whether this store has any checkpoint on disk (a latest file or a non-empty history),
    /// valid or not: a damaged one is `verify`'s to report, not a reason to sign afresh.
    pub fn has_any(&self) -> bool {
        if self.anchored.load(Ordering::Relaxed) {
            return true;
        }
        let history = std::fs::metadata(self.dir.join(HISTORY_FILE)).is_ok_and(|m| m.len() > 0);
        let found = history || self.dir.join(LATEST_FILE).exists();
        if found {
            self.anchored.store(true, Ordering::Relaxed);
        }
        found
    }

    /// Whether automatic (periodic or closing) checkpoints may be signed: only once the
    /// store has a checkpoint. Logs once why not otherwise.
    pub fn may_sign_automatically(&self) -> bool {
        if self.has_any() {
            return true;
        }
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                store = %self.store,
                "this audit store has records but no checkpoint, so none is signed \
                 automatically; check it with `steward audit verify` and, if it is good, \
                 sign its head with `steward audit verify --first-checkpoint`"
            );
        }
        false
    }

    /// Writes `cp` as the latest checkpoint and appends it to the history, unless a newer
    /// one (higher seq) is already there. Blocking: call from a blocking task.
    pub fn write(&self, cp: &Checkpoint) -> Result<()> {
        if cp.store != self.store {
            // Only `sign` makes checkpoints, so this is a bug; never mix stores' files.
            return Err(Error::Checkpoint {
                path: self.dir.display().to_string(),
                detail: format!(
                    "refusing to write a checkpoint of store {:?} into the folder of store {}",
                    cp.store, self.store
                ),
            });
        }
        let Ok(mut latest) = self.latest.lock() else {
            return Ok(()); // a writer panicked mid-write; the next checkpoint repairs it
        };
        if latest.as_ref().is_some_and(|l| l.seq > cp.seq) {
            return Ok(());
        }
        // Another process sharing the data dir may have written a newer head.
        if let Ok(Some(on_disk)) = self.read_latest() {
            if on_disk.seq > cp.seq && self.is_valid(&on_disk) {
                *latest = Some(on_disk);
                return Ok(());
            }
        }
        std::fs::create_dir_all(&self.dir).map_err(Error::io(&self.dir))?;
        let line = serde_json::to_string(cp).map_err(Error::Encode)?;
        let path = self.dir.join(LATEST_FILE);
        let tmp = self.dir.join(format!("{LATEST_FILE}.tmp"));
        {
            let mut f = std::fs::File::create(&tmp).map_err(Error::io(&tmp))?;
            f.write_all(line.as_bytes()).map_err(Error::io(&tmp))?;
            f.write_all(b"\n").map_err(Error::io(&tmp))?;
            f.sync_all().map_err(Error::io(&tmp))?;
        }
        std::fs::rename(&tmp, &path).map_err(Error::io(&path))?;
        if latest.as_ref().is_none_or(|l| l.seq != cp.seq) {
            append_history(&self.dir.join(HISTORY_FILE), &[line])?;
        }
        self.anchored.store(true, Ordering::Relaxed);
        *latest = Some(cp.clone());
        Ok(())
    }

    /// Adopts legacy checkpoints that the caller found to match this store's chain: each is
    /// re-signed for this store (same seq, hash and time) into its history, the newest also
    /// as its latest. Only for a store that has no checkpoint yet. Blocking.
    pub fn adopt(&self, mut legacy: Vec<Checkpoint>) -> Result<()> {
        legacy.sort_by_key(|c| (c.at.0, c.seq));
        let Some(newest) = legacy.iter().max_by_key(|c| (c.seq, c.at.0)).cloned() else {
            return Ok(());
        };
        std::fs::create_dir_all(&self.dir).map_err(Error::io(&self.dir))?;
        let lines = legacy
            .iter()
            .map(|c| serde_json::to_string(&self.sign(c.seq, &c.hash, c.at)))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(Error::Encode)?;
        append_history(&self.dir.join(HISTORY_FILE), &lines)?;
        let cp = self.sign(newest.seq, &newest.hash, newest.at);
        let Ok(mut latest) = self.latest.lock() else {
            return Ok(());
        };
        // Already in the history: `write` must not append it again.
        *latest = Some(cp.clone());
        drop(latest);
        let line = serde_json::to_string(&cp).map_err(Error::Encode)?;
        let path = self.dir.join(LATEST_FILE);
        let tmp = self.dir.join(format!("{LATEST_FILE}.tmp"));
        {
            let mut f = std::fs::File::create(&tmp).map_err(Error::io(&tmp))?;
            f.write_all(format!("{line}\n").as_bytes())
                .map_err(Error::io(&tmp))?;
            f.sync_all().map_err(Error::io(&tmp))?;
        }
        std::fs::rename(&tmp, &path).map_err(Error::io(&path))?;
        self.anchored.store(true, Ordering::Relaxed);
        Ok(())
    }

    fn read_latest(&self) -> Result<Option<Checkpoint>> {
        read_checkpoint(&self.dir.join(LATEST_FILE))
    }

    /// Whether the home holds legacy checkpoint files (from before store ids).
    pub fn has_legacy(&self) -> bool {
        self.home.join(LATEST_FILE).exists() || self.home.join(HISTORY_FILE).exists()
    }

    /// The validly signed legacy checkpoints (latest file and history), and the bad ones.
    pub fn load_legacy(&self) -> (Vec<Checkpoint>, Vec<(u64, String)>) {
        let mut good = Vec::new();
        let mut bad = Vec::new();
        let latest_path = self.home.join(LATEST_FILE);
        match read_checkpoint(&latest_path) {
            Ok(Some(cp)) if self.is_valid_legacy(&cp) => good.push(cp),
            Ok(Some(cp)) => bad.push((
                cp.seq,
                format!(
                    "legacy {} (seq {}) has an invalid signature",
                    latest_path.display(),
                    cp.seq
                ),
            )),
            Ok(None) => {}
            Err(e) => bad.push((0, format!("legacy {e}"))),
        }
        let hist = self.home.join(HISTORY_FILE);
        for (n, parsed) in read_lines(&hist) {
            match parsed {
                Ok(cp) if self.is_valid_legacy(&cp) => good.push(cp),
                Ok(cp) => bad.push((
                    cp.seq,
                    format!(
                        "legacy {} line {n} (seq {}) has an invalid signature",
                        hist.display(),
                        cp.seq
                    ),
                )),
                Err(e) => bad.push((
                    0,
                    format!("legacy {} line {n} is unreadable: {e}", hist.display()),
                )),
            }
        }
        good.sort_by_key(|c| (c.seq, c.at.0));
        good.dedup_by(|a, b| a.seq == b.seq && a.hash == b.hash);
        (good, bad)
    }

    /// Reads and checks every checkpoint on disk, for `verify`.
    pub fn load(&self) -> Loaded {
        let mut out = Loaded {
            latest_file: self.dir.join(LATEST_FILE).exists(),
            ..Default::default()
        };
        let foreign = |cp: &Checkpoint, place: &str| {
            format!(
                "{place} (seq {}) names store {:?}, not this store {}: it was copied here \
                 from another store's folder",
                cp.seq, cp.store, self.store
            )
        };
        match self.read_latest() {
            Ok(Some(cp)) if self.is_valid(&cp) => out.latest = Some(cp),
            Ok(Some(cp)) if cp.store != self.store => {
                out.bad.push((cp.seq, foreign(&cp, LATEST_FILE)));
            }
            Ok(Some(cp)) => out.bad.push((
                cp.seq,
                format!("{LATEST_FILE} (seq {}) has an invalid signature", cp.seq),
            )),
            Ok(None) => {}
            Err(e) => out.bad.push((0, e.to_string())),
        }
        for (n, parsed) in read_lines(&self.dir.join(HISTORY_FILE)) {
            match parsed {
                Ok(cp) if self.is_valid(&cp) => out.history.push(cp),
                Ok(cp) if cp.store != self.store => {
                    let place = format!("{HISTORY_FILE} line {n}");
                    out.bad.push((cp.seq, foreign(&cp, &place)));
                }
                Ok(cp) => out.bad.push((
                    cp.seq,
                    format!(
                        "{HISTORY_FILE} line {n} (seq {}) has an invalid signature",
                        cp.seq
                    ),
                )),
                Err(e) => out
                    .bad
                    .push((0, format!("{HISTORY_FILE} line {n} is unreadable: {e}"))),
            }
        }
        let (legacy, bad) = self.load_legacy();
        out.legacy = legacy;
        out.bad.extend(bad);
        if let Ok(entries) = std::fs::read_dir(self.home.join(STORES_DIR)) {
            out.other_stores = entries
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|name| *name != self.store)
                .collect();
            out.other_stores.sort();
        }
        out
    }
}

/// The text a store's checkpoint MAC covers.
fn text(store: &str, seq: u64, hash: &str, at: Timestamp) -> String {
    format!("{DOMAIN}\n{store}\n{seq}\n{hash}\n{}", at.0)
}

fn read_checkpoint(path: &Path) -> Result<Option<Checkpoint>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(text.trim())
            .map(Some)
            .map_err(|e| Error::Checkpoint {
                path: path.display().to_string(),
                detail: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path)(e)),
    }
}

/// The non-blank lines of a history file, numbered from 1, each parsed; none if it is absent.
fn read_lines(path: &Path) -> Vec<(usize, serde_json::Result<Checkpoint>)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| (n + 1, serde_json::from_str(line)))
        .collect()
}

fn append_history(path: &Path, lines: &[String]) -> Result<()> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(Error::io(path))?;
    let mut text = String::new();
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    f.write_all(text.as_bytes()).map_err(Error::io(path))
}

fn parse_key(path: &Path, text: &str) -> Result<[u8; 32]> {
    let bad = |detail: &str| Error::Checkpoint {
        path: path.display().to_string(),
        detail: detail.to_string(),
    };
    let bytes = hex::decode(text.trim()).map_err(|_| bad("key is not hex"))?;
    bytes
        .try_into()
        .map_err(|_| bad("key is not 32 bytes (64 hex digits)"))
}

/// 32 bytes from the OS random source. uuid v4 draws from getrandom (the OS CSPRNG); two of
/// them give 244 random bits, ample for an HMAC key, without another dependency.
fn create_key(path: &Path) -> Result<[u8; 32]> {
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(Error::io(path))?;
    f.write_all(hex::encode(key).as_bytes())
        .map_err(Error::io(path))?;
    f.sync_all().map_err(Error::io(path))?;
    Ok(key)
}
