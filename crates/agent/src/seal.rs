//! The binding between an approval and the call it approves, kept out of the row's reach.
//!
//! An approvals row holds the tool and arguments an operator is asked about. A plain hash
//! stored beside them binds nothing: whoever can write the row (a shared PostgreSQL, a copy of
//! the SQLite file) rewrites tool, arguments and hash together. So the row carries an
//! HMAC-SHA256 over everything that decides what runs, keyed by a secret kept in the audit
//! directory (`approval.key`, mode 0600), outside the state store. A row whose seal does not
//! check out never runs, and neither does one sealed under another home's key.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::approvals::{canonical, Approval};
use crate::{Error, Result};

const KEY_FILE: &str = "approval.key";

/// Seals approvals and checks their seals.
#[derive(Debug)]
pub struct Sealer {
    key: [u8; 32],
}

impl Sealer {
    /// Loads the key from `dir`, creating it (random, mode 0600) on first use.
    pub fn open(dir: &Path) -> Result<Sealer> {
        let path = dir.join(KEY_FILE);
        let io = |e: std::io::Error| Error::Seal(format!("{}: {e}", path.display()));
        std::fs::create_dir_all(dir).map_err(io)?;
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let fresh = hex::encode(random_key());
                let mut opts = OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                match opts.open(&path) {
                    Ok(mut f) => {
                        f.write_all(fresh.as_bytes()).map_err(io)?;
                        f.sync_all().map_err(io)?;
                        fresh
                    }
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        std::fs::read_to_string(&path).map_err(io)?
                    }
                    Err(e) => return Err(io(e)),
                }
            }
            Err(e) => return Err(io(e)),
        };
        let key = hex::decode(text.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| Error::Seal(format!("{}: not 64 hex digits", path.display())))?;
        Ok(Sealer { key })
    }

    /// The seal of `a`: over its id, tool, canonical arguments, requester, origin, trust
    /// and lifetime, so none of them can be changed (an expiry pushed out included).
    pub fn seal(&self, a: &Approval) -> String {
        self.mac(a)
            .map(|m| hex::encode(m.finalize().into_bytes()))
            .unwrap_or_default()
    }

    /// Whether `a.seal` is the seal of `a` (constant-time comparison).
    pub fn check(&self, a: &Approval) -> bool {
        match (hex::decode(&a.seal), self.mac(a)) {
            (Ok(given), Some(m)) => m.verify_slice(&given).is_ok(),
            _ => false,
        }
    }

    /// `None` cannot happen (HMAC takes keys of any length); it makes every check fail.
    fn mac(&self, a: &Approval) -> Option<Hmac<Sha256>> {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).ok()?;
        let text = format!(
            "steward-approval/1\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
            a.id,
            a.tool,
            canonical(&a.args),
            a.principal,
            a.origin,
            a.untrusted,
            a.requested_at.0,
            a.expires_at.0
        );
        m.update(text.as_bytes());
        Some(m)
    }
}

/// 256 bits from the OS's CSPRNG (uuid v4 draws from getrandom: 122 random bits each).
fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    for (chunk, id) in key
        .chunks_mut(16)
        .zip([uuid::Uuid::new_v4(), uuid::Uuid::new_v4()])
    {
        chunk.copy_from_slice(id.as_bytes());
    }
    key
}
