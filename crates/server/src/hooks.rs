//! Signed webhooks: the hook definitions (`policies/hooks.toml`), their signing secrets
//! (`<home>/secrets/hooks/<name>`) and the `Steward-Signature` check.
//!
//! A hook's body becomes typed event fields only through the JSON Pointers its definition
//! names; everything else in the body is ignored, and free text (if the hook names a `text`
//! pointer) is kept as untrusted data.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

use crate::db::random_bytes;
use crate::{Error, Result};

/// How far a signature's `t` may be from now, either way.
pub const TOLERANCE_SECS: i64 = 300;

/// How often a hook's secret file is checked for a rotation.
const SECRET_RECHECK: Duration = Duration::from_secs(1);

/// One hook as `policies/hooks.toml` defines it under `[hook.<name>]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookDef {
    pub description: String,
    /// Event field name -> JSON Pointer into the body (`subdomain = "/subdomain"`).
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// A JSON Pointer to free text for the planner, kept as untrusted data.
    #[serde(default)]
    pub text: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HooksFile {
    #[serde(default)]
    hook: BTreeMap<String, HookDef>,
}

/// Every defined hook, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookBook {
    hooks: BTreeMap<String, HookDef>,
}

/// Whether `name` may name a hook (and so a principal id and a file name).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl HookBook {
    /// Loads `path` (`policies/hooks.toml`); a missing file is an empty book.
    pub fn load(path: &Path) -> Result<HookBook> {
        match std::fs::read_to_string(path) {
            Ok(text) => HookBook::parse(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HookBook::default()),
            Err(e) => Err(Error::Hooks {
                path: path.display().to_string(),
                message: e.to_string(),
            }),
        }
    }

    /// Parses and checks a hooks file; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<HookBook> {
        let err = |message: String| Error::Hooks {
            path: origin.to_string(),
            message,
        };
        let file: HooksFile = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        for (name, def) in &file.hook {
            if !valid_name(name) || name == "alertmanager" {
                return Err(err(format!(
                    "hook name {name:?}: use 1 to 64 of a-z, 0-9, '_' and '-' \
                     (\"alertmanager\" is the built-in intake)"
                )));
            }
            if def.fields.is_empty() && def.text.is_none() {
                return Err(err(format!(
                    "hook {name}: map at least one field (`fields = {{ x = \"/x\" }}`) or `text`"
                )));
            }
            let pointers = def.fields.iter().map(|(f, p)| (f.as_str(), p));
            for (field, pointer) in pointers.chain(def.text.iter().map(|p| ("text", p))) {
                if !(pointer.is_empty() || pointer.starts_with('/')) {
                    return Err(err(format!(
                        "hook {name}: {field} = {pointer:?} is not a JSON Pointer (start it with '/')"
                    )));
                }
            }
            if let Some(bad) = def.fields.keys().find(|f| {
                f.is_empty()
                    || !f
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            }) {
                return Err(err(format!(
                    "hook {name}: field name {bad:?} is not a plain name"
                )));
            }
        }
        Ok(HookBook { hooks: file.hook })
    }

    pub fn get(&self, name: &str) -> Option<&HookDef> {
        self.hooks.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.hooks.keys().map(String::as_str)
    }
}

/// What a hook took from a body: typed fields and, if defined, untrusted text.
#[derive(Debug, Clone, PartialEq)]
pub struct Extracted {
    pub fields: BTreeMap<String, Value>,
    pub text: Option<String>,
}

impl HookDef {
    /// Takes the defined fields out of `body`. A missing pointer or a value that is not a
    /// JSON scalar is refused, naming the field and the pointer.
    pub fn extract(&self, body: &Value) -> std::result::Result<Extracted, String> {
        let mut fields = BTreeMap::new();
        for (name, pointer) in &self.fields {
            let v = body
                .pointer(pointer)
                .ok_or_else(|| format!("field {name}: the body has nothing at {pointer:?}"))?;
            if v.is_object() || v.is_array() {
                return Err(format!(
                    "field {name} at {pointer:?} must be a string, number, boolean or null"
                ));
            }
            fields.insert(name.clone(), v.clone());
        }
        let text = match &self.text {
            None => None,
            Some(pointer) => match body.pointer(pointer) {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Null) | None => None,
                Some(_) => return Err(format!("text at {pointer:?} must be a string")),
            },
        };
        Ok(Extracted { fields, text })
    }
}

/// Where a hook's secret lives under a secrets dir (`<home>/secrets/hooks`).
pub fn secret_path(dir: &Path, name: &str) -> Result<PathBuf> {
    if !valid_name(name) {
        return Err(Error::HookName(name.to_string()));
    }
    Ok(dir.join(name))
}

/// A hook's secrets, current first: one per line. The line after the current one is the
/// previous secret, still accepted until the next rotation so senders can switch.
pub fn read_secrets(dir: &Path, name: &str) -> Result<Vec<String>> {
    let path = secret_path(dir, name)?;
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(2)
            .map(String::from)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(Error::Secret {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// What [`ensure_secret`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretChange {
    /// The current secret (to configure in the sender).
    pub secret: String,
    pub created: bool,
    pub rotated: bool,
}

/// Creates a hook's secret if it has none, or with `rotate` makes a new current secret and
/// keeps the old one as previous. The file is written whole (temp file, rename), mode 0600.
pub fn ensure_secret(dir: &Path, name: &str, rotate: bool) -> Result<SecretChange> {
    let path = secret_path(dir, name)?;
    let existing = read_secrets(dir, name)?;
    if let (Some(current), false) = (existing.first(), rotate) {
        return Ok(SecretChange {
            secret: current.clone(),
            created: false,
            rotated: false,
        });
    }
    let secret = format!("whsec_{}", hex::encode(random_bytes::<32>()?));
    let mut text = format!("{secret}\n");
    if let Some(previous) = existing.first() {
        text.push_str(previous);
        text.push('\n');
    }
    let io = |source| Error::Secret {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&tmp).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(SecretChange {
        secret,
        created: existing.is_empty(),
        rotated: !existing.is_empty(),
    })
}

#[derive(Debug)]
struct Loaded {
    secrets: Vec<Vec<u8>>,
    modified: Option<SystemTime>,
    checked: Instant,
}

/// The secrets of every hook, read from their files and re-read when a file changes (a
/// rotation by `steward hooks secret --rotate` takes effect within a second).
#[derive(Debug)]
pub struct HookSecrets {
    dir: PathBuf,
    cache: Mutex<HashMap<String, Loaded>>,
}

impl HookSecrets {
    pub fn new(dir: PathBuf) -> HookSecrets {
        HookSecrets {
            dir,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The hook's secrets as HMAC keys (the secret text's bytes), current first; empty
    /// when it has none.
    pub fn get(&self, name: &str) -> Result<Vec<Vec<u8>>> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = cache.get_mut(name) {
            if l.checked.elapsed() < SECRET_RECHECK {
                return Ok(l.secrets.clone());
            }
            let modified = self.modified(name)?;
            l.checked = Instant::now();
            if modified == l.modified {
                return Ok(l.secrets.clone());
            }
        }
        let modified = self.modified(name)?;
        let secrets: Vec<Vec<u8>> = read_secrets(&self.dir, name)?
            .into_iter()
            .map(String::into_bytes)
            .collect();
        cache.insert(
            name.to_string(),
            Loaded {
                secrets: secrets.clone(),
                modified,
                checked: Instant::now(),
            },
        );
        Ok(secrets)
    }

    fn modified(&self, name: &str) -> Result<Option<SystemTime>> {
        let path = secret_path(&self.dir, name)?;
        Ok(std::fs::metadata(path).and_then(|m| m.modified()).ok())
    }
}

/// The `Steward-Signature` header value for `body` signed with `secret` at `t` (unix s).
pub fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", hex::encode(mac(secret, t, body)))
}

fn mac(secret: &[u8], t: i64, body: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// No header, or not `t=<unix>,v1=<hex>[,v1=...]`.
    Malformed,
    /// `t` is more than [`TOLERANCE_SECS`] from now.
    Stale,
    /// No `v1` matches any of the hook's secrets.
    Mismatch,
}

/// Checks a `Steward-Signature` header against the hook's secrets at `now` (unix s). Every
/// `v1=` is tried against every secret with a constant-time compare.
pub fn verify_signature(
    header: &str,
    secrets: &[Vec<u8>],
    body: &[u8],
    now: i64,
) -> std::result::Result<(), SignatureError> {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
            Some(("v1", v)) => sigs.push(hex::decode(v).map_err(|_| SignatureError::Malformed)?),
            // Unknown schemes are skipped, so a sender may add newer ones alongside v1.
            Some(_) => {}
            None => return Err(SignatureError::Malformed),
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if sigs.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - t).abs() > TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    let signed = t.to_string();
    for secret in secrets {
        let Ok(m) = Hmac::<Sha256>::new_from_slice(secret) else {
            continue;
        };
        let mut m = m;
        m.update(signed.as_bytes());
        m.update(b".");
        m.update(body);
        for sig in &sigs {
            // verify_slice compares in constant time.
            if m.clone().verify_slice(sig).is_ok() {
                return Ok(());
            }
        }
    }
    Err(SignatureError::Mismatch)
}
