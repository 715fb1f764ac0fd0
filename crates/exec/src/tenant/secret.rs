//! The tenant role's password. It lives only in the container's environment and in a 0600
//! file under `<state_dir>/tenants/<id>/`, so a re-run reuses it instead of rotating it.
//!
//! A new password is first written to `password.pending`; only once the role has it is the
//! file renamed to `password`. A crash between the two leaves `pending`, and the next run
//! sets that password on the role again, so file and role can never silently disagree.

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

const FINAL: &str = "password";
const PENDING: &str = "password.pending";

/// A password and whether the role still has to be given it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    pub password: String,
    pub pending: bool,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("password", &"<redacted>")
            .field("pending", &self.pending)
            .finish()
    }
}

/// The secret on disk, if any (`password` wins over `password.pending`).
pub fn load(dir: &Path) -> Result<Option<Secret>> {
    for (name, pending) in [(FINAL, false), (PENDING, true)] {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let password = text.trim().to_string();
                if is_valid(&password) {
                    return Ok(Some(Secret { password, pending }));
                }
                return Err(Error::Failed(format!(
                    "{} does not hold a 32-hex-digit password; delete it and re-run to \
                     generate a new one",
                    path.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&path)(e)),
        }
    }
    Ok(None)
}

/// The secret to use: the stored one, else a fresh random one written as pending.
/// The bool is true when a new password was generated.
pub fn load_or_create(dir: &Path) -> Result<(Secret, bool)> {
    if let Some(s) = load(dir)? {
        return Ok((s, false));
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(Error::io(dir))?;
    let password = random_hex(16)?;
    write_private(&dir.join(PENDING), &password)?;
    Ok((
        Secret {
            password,
            pending: true,
        },
        true,
    ))
}

/// Marks the pending password as the role's.
pub fn commit(dir: &Path) -> Result<()> {
    let pending = dir.join(PENDING);
    match std::fs::rename(&pending, dir.join(FINAL)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(&pending)(e)),
    }
}

/// Stores a new password as pending (the role will be given it), replacing the final one.
pub fn replace(dir: &Path) -> Result<Secret> {
    let password = random_hex(16)?;
    write_private(&dir.join(PENDING), &password)?;
    let _ = std::fs::remove_file(dir.join(FINAL));
    Ok(Secret {
        password,
        pending: true,
    })
}

fn is_valid(p: &str) -> bool {
    p.len() == 32 && p.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Writes `text` to `path` with mode 0600 through a temp file and a rename.
pub fn write_private(path: &Path, text: &str) -> Result<()> {
    let tmp: PathBuf = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(Error::io(&tmp))?;
    // The mode above only applies on creation; a leftover temp file may be wider.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(Error::io(&tmp))?;
    f.write_all(text.as_bytes()).map_err(Error::io(&tmp))?;
    f.sync_all().map_err(Error::io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(Error::io(path))
}

/// `n` random bytes from the kernel's CSPRNG, as lowercase hex.
fn random_hex(n: usize) -> Result<String> {
    let path = "/dev/urandom";
    let mut buf = vec![0u8; n];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(Error::io(path))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_then_commit_then_reuse() {
        let dir = std::env::temp_dir().join(format!("steward-secret-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (s, new) = load_or_create(&dir).unwrap();
        assert!(new && s.pending && is_valid(&s.password));
        let mode = std::fs::metadata(dir.join(PENDING))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (again, new) = load_or_create(&dir).unwrap();
        assert!(!new && again.pending);
        assert_eq!(again.password, s.password);
        commit(&dir).unwrap();
        let (done, _) = load_or_create(&dir).unwrap();
        assert!(!done.pending);
        assert_eq!(done.password, s.password);
        assert!(!format!("{done:?}").contains(&s.password));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
