//! Signed head checkpoints: what catches a truncated tail.
//!
//! The hash chain alone proves that every record is linked to the one before it, but
//! deleting the last K records leaves a shorter chain that is perfectly valid. Only a
//! statement about the head kept *outside* the table can show that records are missing.
//! So the log periodically signs its head `{seq, hash, at}` with HMAC-SHA256 and writes it
//! to `<dir>/checkpoint.json` (atomically: temp file, fsync, rename), and appends the same
//! line to `<dir>/checkpoints.jsonl`, the history. `verify` then requires that
//!
//! - every signature checks out (an edited checkpoint is itself tampering),
//! - the log reaches the latest checkpoint's seq (else: truncated tail, records L+1..S), and
//! - the record at each checkpointed seq still has the checkpointed hash (else: the chain
//!   was rewritten and re-hashed at or before that seq; the history narrows down where).
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
//! Trust on first use: a checkpoint of the current head is written at open only when the
//! key did not exist yet. A missing `checkpoint.json` next to an existing key is reported by
//! `verify`, since deleting it together with the tail is the obvious attack.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use steward_protocol::Timestamp;

use crate::{Error, Result};

pub(crate) const KEY_FILE: &str = "checkpoint.key";
pub(crate) const LATEST_FILE: &str = "checkpoint.json";
pub(crate) const HISTORY_FILE: &str = "checkpoints.jsonl";

/// A signed statement "the log's head was record `seq` with hash `hash` at time `at`".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: u64,
    pub hash: String,
    pub at: Timestamp,
    /// HMAC-SHA256 over `steward-audit-checkpoint/1\n{seq}\n{hash}\n{at}`, hex.
    pub mac: String,
}

/// Holds the key and serializes checkpoint writes.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    dir: PathBuf,
    key: [u8; 32],
    /// The newest checkpoint this process wrote or loaded; writes never go backwards.
    latest: Mutex<Option<Checkpoint>>,
}

/// What `verify` learns from the checkpoint files.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    pub latest: Option<Checkpoint>,
    pub history: Vec<Checkpoint>,
    /// Lines or files that are unreadable or wrongly signed, with their seq when known.
    pub bad: Vec<(u64, String)>,
}

impl Checkpointer {
    /// Loads the key from `dir`, creating it if missing. Returns whether it was created.
    pub fn open(dir: &Path) -> Result<(Checkpointer, bool)> {
        std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
        let path = dir.join(KEY_FILE);
        let (key, created) = match std::fs::read_to_string(&path) {
            Ok(text) => (parse_key(&path, &text)?, false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match create_key(&path) {
                Ok(key) => (key, true),
                // Another process created it between our read and our create.
                Err(Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::AlreadyExists =>
                {
                    let text = std::fs::read_to_string(&path).map_err(Error::io(&path))?;
                    (parse_key(&path, &text)?, false)
                }
                Err(e) => return Err(e),
            },
            Err(e) => return Err(Error::io(&path)(e)),
        };
        let cp = Checkpointer {
            dir: dir.to_path_buf(),
            key,
            latest: Mutex::new(None),
        };
        let latest = cp.read_latest().ok().flatten().filter(|c| cp.is_valid(c));
        if let Ok(mut guard) = cp.latest.lock() {
            *guard = latest;
        }
        Ok((cp, created))
    }

    pub fn sign(&self, seq: u64, hash: &str, at: Timestamp) -> Checkpoint {
        Checkpoint {
            seq,
            hash: hash.to_string(),
            at,
            mac: hex::encode(self.mac(seq, hash, at)),
        }
    }

    fn mac(&self, seq: u64, hash: &str, at: Timestamp) -> Vec<u8> {
        // new_from_slice accepts any key length for HMAC; the Err arm cannot happen.
        match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mut m) => {
                m.update(format!("steward-audit-checkpoint/1\n{seq}\n{hash}\n{}", at.0).as_bytes());
                m.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        }
    }

    pub fn is_valid(&self, cp: &Checkpoint) -> bool {
        let Ok(given) = hex::decode(&cp.mac) else {
            return false;
        };
        match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mut m) => {
                m.update(
                    format!(
                        "steward-audit-checkpoint/1\n{}\n{}\n{}",
                        cp.seq, cp.hash, cp.at.0
                    )
                    .as_bytes(),
                );
                m.verify_slice(&given).is_ok() // constant-time comparison
            }
            Err(_) => false,
        }
    }

    /// The last checkpoint written or loaded by this process.
    pub fn latest(&self) -> Option<Checkpoint> {
        self.latest.lock().ok().and_then(|g| g.clone())
    }

    /// Writes `cp` as the latest checkpoint and appends it to the history, unless a newer
    /// one (higher seq) is already there. Blocking: call from a blocking task.
    pub fn write(&self, cp: &Checkpoint) -> Result<()> {
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
            let hist = self.dir.join(HISTORY_FILE);
            let mut f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&hist)
                .map_err(Error::io(&hist))?;
            f.write_all(format!("{line}\n").as_bytes())
                .map_err(Error::io(&hist))?;
        }
        *latest = Some(cp.clone());
        Ok(())
    }

    fn read_latest(&self) -> Result<Option<Checkpoint>> {
        let path = self.dir.join(LATEST_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                serde_json::from_str(text.trim())
                    .map(Some)
                    .map_err(|e| Error::Checkpoint {
                        path: path.display().to_string(),
                        detail: e.to_string(),
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&path)(e)),
        }
    }

    pub fn has_latest_file(&self) -> bool {
        self.dir.join(LATEST_FILE).exists()
    }

    /// Reads and checks every checkpoint on disk, for `verify`.
    pub fn load(&self) -> Loaded {
        let mut out = Loaded::default();
        match self.read_latest() {
            Ok(Some(cp)) if self.is_valid(&cp) => out.latest = Some(cp),
            Ok(Some(cp)) => out.bad.push((
                cp.seq,
                format!("{LATEST_FILE} (seq {}) has an invalid signature", cp.seq),
            )),
            Ok(None) => {}
            Err(e) => out.bad.push((0, e.to_string())),
        }
        let hist = self.dir.join(HISTORY_FILE);
        if let Ok(text) = std::fs::read_to_string(&hist) {
            for (n, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Checkpoint>(line) {
                    Ok(cp) if self.is_valid(&cp) => out.history.push(cp),
                    Ok(cp) => out.bad.push((
                        cp.seq,
                        format!(
                            "{HISTORY_FILE} line {} (seq {}) has an invalid signature",
                            n + 1,
                            cp.seq
                        ),
                    )),
                    Err(e) => out.bad.push((
                        0,
                        format!("{HISTORY_FILE} line {} is unreadable: {e}", n + 1),
                    )),
                }
            }
        }
        out
    }
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
