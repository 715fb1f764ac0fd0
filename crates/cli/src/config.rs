//! Layered configuration: built-in defaults < `<home>/config.toml` < `STEWARD_*` environment
//! < command-line flags. Every value remembers where it came from, so `steward config` and
//! doctor's messages can say which layer to fix.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The settings steward reads. Names are the keys of `config.toml`; the environment
/// variable is `STEWARD_` plus the upper-cased key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    StateUrl,
    PgUrl,
    PgContainerHost,
    TraefikApi,
    TraefikWeb,
    TraefikDynamicDir,
    Domain,
    ModelsDir,
    WeightsDir,
    TenantImage,
    TenantApp,
    TenantDatabase,
    ReleaseRetention,
    TenantSubnetPool,
    PoliciesDir,
    ApprovalTtl,
    Principal,
    PlannerModel,
    PlannerRoute,
    PlannerTopK,
    ClaudeApiKey,
    ClaudeBaseUrl,
    ClaudeModel,
    ClaudeCaFile,
    Listen,
    ApiRateLimit,
    Monitor,
    MonitorLabels,
    BackupKeepDaily,
    BackupKeepWeekly,
    BackupTargets,
    PrometheusUrl,
    AlertmanagerUrl,
}

impl Key {
    pub const ALL: [Key; 33] = [
        Key::StateUrl,
        Key::PgUrl,
        Key::PgContainerHost,
        Key::TraefikApi,
        Key::TraefikWeb,
        Key::TraefikDynamicDir,
        Key::Domain,
        Key::ModelsDir,
        Key::WeightsDir,
        Key::TenantImage,
        Key::TenantApp,
        Key::TenantDatabase,
        Key::ReleaseRetention,
        Key::TenantSubnetPool,
        Key::PoliciesDir,
        Key::ApprovalTtl,
        Key::Principal,
        Key::PlannerModel,
        Key::PlannerRoute,
        Key::PlannerTopK,
        Key::ClaudeApiKey,
        Key::ClaudeBaseUrl,
        Key::ClaudeModel,
        Key::ClaudeCaFile,
        Key::Listen,
        Key::ApiRateLimit,
        Key::Monitor,
        Key::MonitorLabels,
        Key::BackupKeepDaily,
        Key::BackupKeepWeekly,
        Key::BackupTargets,
        Key::PrometheusUrl,
        Key::AlertmanagerUrl,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Key::StateUrl => "state_url",
            Key::PgUrl => "pg_url",
            Key::PgContainerHost => "pg_container_host",
            Key::TraefikApi => "traefik_api",
            Key::TraefikWeb => "traefik_web",
            Key::TraefikDynamicDir => "traefik_dynamic_dir",
            Key::Domain => "domain",
            Key::ModelsDir => "models_dir",
            Key::WeightsDir => "weights_dir",
            Key::TenantImage => "tenant_image",
            Key::TenantApp => "tenant_app",
            Key::TenantDatabase => "tenant_database",
            Key::ReleaseRetention => "release_retention",
            Key::TenantSubnetPool => "tenant_subnet_pool",
            Key::PoliciesDir => "policies_dir",
            Key::ApprovalTtl => "approval_ttl",
            Key::Principal => "principal",
            Key::PlannerModel => "planner_model",
            Key::PlannerRoute => "planner_route",
            Key::PlannerTopK => "planner_top_k",
            Key::ClaudeApiKey => "claude_api_key",
            Key::ClaudeBaseUrl => "claude_base_url",
            Key::ClaudeModel => "claude_model",
            Key::ClaudeCaFile => "claude_ca_file",
            Key::Listen => "listen",
            Key::ApiRateLimit => "api_rate_limit",
            Key::Monitor => "monitor",
            Key::MonitorLabels => "monitor_labels",
            Key::BackupKeepDaily => "backup_keep_daily",
            Key::BackupKeepWeekly => "backup_keep_weekly",
            Key::BackupTargets => "backup_targets",
            Key::PrometheusUrl => "prometheus_url",
            Key::AlertmanagerUrl => "alertmanager_url",
        }
    }

    pub fn env(self) -> String {
        format!("STEWARD_{}", self.name().to_ascii_uppercase())
    }

    fn from_name(name: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Built-in default; `pg_url` has none because its password is made by the setup.
    fn default(self, home: &Path) -> Option<String> {
        let under_home = |p: &str| Some(home.join(p).display().to_string());
        match self {
            Key::StateUrl => Some(format!("sqlite://{}", home.join("state.db").display())),
            Key::PgUrl => None,
            Key::PgContainerHost => Some("172.17.0.1".into()),
            Key::TraefikApi => Some("http://127.0.0.1:58080".into()),
            Key::TraefikWeb => Some("http://127.0.0.1:58000".into()),
            Key::TraefikDynamicDir => under_home("traefik/dynamic"),
            Key::Domain => Some("localhost".into()),
            Key::ModelsDir => Some("models".into()),
            Key::WeightsDir => under_home("models"),
            Key::TenantImage => Some("steward-demo:v1".into()),
            Key::TenantApp => Some("fresco".into()),
            Key::TenantDatabase => Some("steward_tenants".into()),
            Key::ReleaseRetention => Some("5".into()),
            Key::TenantSubnetPool => Some("10.213.0.0/16".into()),
            Key::PoliciesDir => Some("policies".into()),
            Key::ApprovalTtl => Some("15m".into()),
            Key::Principal => Some("operator:local".into()),
            Key::PlannerModel => Some("qwen2.5-coder-1.5b-instruct-q4_k_m".into()),
            Key::PlannerRoute => Some("local".into()),
            Key::PlannerTopK => Some("12".into()),
            Key::ClaudeApiKey => None,
            Key::ClaudeBaseUrl => Some("https://api.anthropic.com".into()),
            Key::ClaudeModel => Some("claude-sonnet-4-5".into()),
            // Only a gateway signed by a private CA needs one; the system roots serve the API.
            Key::ClaudeCaFile => None,
            // Loopback: put Traefik (TLS) in front to take webhooks from another host.
            Key::Listen => Some("127.0.0.1:58100".into()),
            Key::ApiRateLimit => Some("50/s".into()),
            // `steward serve` follows Docker's events for every container Steward labels.
            Key::Monitor => Some("on".into()),
            // Extra label filters (`key=value`, comma-separated) narrowing what it follows.
            Key::MonitorLabels => Some(String::new()),
            // Retention after a verified scheduled backup: the newest verified backup of
            // each of the last 7 days and the last 4 ISO weeks.
            Key::BackupKeepDaily => Some("7".into()),
            Key::BackupKeepWeekly => Some("4".into()),
            // What `for_each = "database"` runs over: empty for every tenant and platform
            // database, else a comma-separated list of targets.
            Key::BackupTargets => Some(String::new()),
            // Where scripts/setup runs them (STEWARD_PROMETHEUS_PORT, STEWARD_ALERTMANAGER_PORT).
            Key::PrometheusUrl => Some("http://127.0.0.1:59090".into()),
            Key::AlertmanagerUrl => Some("http://127.0.0.1:59093".into()),
        }
    }

    /// Values that may carry a password are masked when shown.
    fn is_url_with_secret(self) -> bool {
        matches!(self, Key::StateUrl | Key::PgUrl)
    }
}

/// Which layer a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Env(String),
    Flag,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => write!(f, "default"),
            Source::File(p) => write!(f, "file {}", p.display()),
            Source::Env(v) => write!(f, "env {v}"),
            Source::Flag => write!(f, "flag"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub value: String,
    pub source: Source,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub home: PathBuf,
    /// Where the shipped data (policies/, models/*.toml, evals/) is read from: see
    /// [`DataRoot`].
    pub data_root: DataRoot,
    values: BTreeMap<Key, Setting>,
}

/// The directory the shipped data is found in, and why that one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRoot {
    pub dir: PathBuf,
    pub from: &'static str,
}

/// The file that marks a directory as holding steward's shipped data.
pub const DATA_MARKER: &str = "policies/steward.cedarschema";

impl DataRoot {
    /// `$STEWARD_DATA_DIR` if set; else `<home>/share` if it exists (the installed layout
    /// `steward init` writes); else the checkout the binary was built in, found by walking
    /// up from the binary (`target/debug/steward` -> the repository), then the checkout it
    /// was compiled from if it is still there; else the working directory.
    pub fn find(home: &Path, env: &dyn Fn(&str) -> Option<String>) -> DataRoot {
        if let Some(dir) = env("STEWARD_DATA_DIR").filter(|v| !v.is_empty()) {
            return DataRoot {
                dir: absolute(Path::new(&dir)),
                from: "env STEWARD_DATA_DIR",
            };
        }
        let share = home.join("share");
        if share.is_dir() {
            return DataRoot {
                dir: share,
                from: "<home>/share (steward init)",
            };
        }
        DataRoot::shipped()
    }

    /// Where the shipped data is without an installed copy: the checkout of the binary,
    /// the checkout it was compiled from, else the working directory.
    pub fn shipped() -> DataRoot {
        let exe = std::env::current_exe().ok();
        if let Some(dir) = exe.as_deref().and_then(|exe| {
            exe.ancestors()
                .skip(1)
                .find(|d| d.join(DATA_MARKER).is_file())
        }) {
            return DataRoot {
                dir: dir.to_path_buf(),
                from: "checkout of the binary",
            };
        }
        let compiled = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        if compiled.join(DATA_MARKER).is_file() {
            return DataRoot {
                dir: compiled.canonicalize().unwrap_or(compiled),
                from: "checkout the binary was built from",
            };
        }
        DataRoot {
            dir: absolute(Path::new(".")),
            from: "working directory",
        }
    }
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

impl Config {
    /// Resolves every key through the layers. `env` is passed in (not read globally) so
    /// tests can give each case its own environment.
    pub fn load(
        home: &Path,
        env: &dyn Fn(&str) -> Option<String>,
        flags: &[(Key, String)],
    ) -> Result<Config> {
        let mut values = BTreeMap::new();
        for key in Key::ALL {
            if let Some(value) = key.default(home) {
                values.insert(
                    key,
                    Setting {
                        value,
                        source: Source::Default,
                    },
                );
            }
        }
        let file = home.join("config.toml");
        if file.exists() {
            for (key, value) in read_file(&file)? {
                values.insert(
                    key,
                    Setting {
                        value,
                        source: Source::File(file.clone()),
                    },
                );
            }
        }
        for key in Key::ALL {
            if let Some(value) = env(&key.env()).filter(|v| !v.is_empty()) {
                values.insert(
                    key,
                    Setting {
                        value,
                        source: Source::Env(key.env()),
                    },
                );
            }
        }
        for (key, value) in flags {
            values.insert(
                *key,
                Setting {
                    value: value.clone(),
                    source: Source::Flag,
                },
            );
        }
        Ok(Config {
            home: home.to_path_buf(),
            data_root: DataRoot::find(home, env),
            values,
        })
    }

    /// A directory setting of shipped data (`policies_dir`, `models_dir`): absolute as
    /// given; relative from the default or the config file, against the data root (so
    /// `steward` works from any directory); relative from an environment variable or a
    /// flag, against the working directory, as a shell user means it.
    pub fn data_path(&self, key: Key) -> Result<PathBuf> {
        let value = Path::new(self.require(key)?);
        if value.is_absolute() {
            return Ok(value.to_path_buf());
        }
        Ok(match self.values.get(&key).map(|s| &s.source) {
            Some(Source::Env(_)) | Some(Source::Flag) => absolute(value),
            _ => self.data_root.dir.join(value),
        })
    }

    /// The setting's name with the layer it came from, as a person fixes it: the flag
    /// (`--as`) when it came from one, else `principal (from file <path>)`,
    /// `principal (from env STEWARD_PRINCIPAL)` or `principal (from default)`.
    pub fn source_label(&self, key: Key, flag: &str) -> String {
        match self.values.get(&key).map(|s| &s.source) {
            Some(Source::Flag) => flag.to_string(),
            Some(other) => format!("{} (from {other})", key.name()),
            None => key.name().to_string(),
        }
    }

    pub fn get(&self, key: Key) -> Option<&Setting> {
        self.values.get(&key)
    }

    /// The value of a key that must be set, with a message that says how to set it.
    pub fn require(&self, key: Key) -> Result<&str> {
        match self.values.get(&key) {
            Some(s) => Ok(&s.value),
            None => bail!(
                "{} is not set: run scripts/setup (it writes {}) or set {}",
                key.name(),
                self.home.join("config.toml").display(),
                key.env()
            ),
        }
    }

    /// `key = value  (source)` lines, secrets masked.
    pub fn describe(&self) -> Vec<String> {
        Key::ALL
            .into_iter()
            .map(|key| match self.values.get(&key) {
                Some(s) => {
                    let shown = if key == Key::ClaudeApiKey {
                        "********".to_string()
                    } else if key.is_url_with_secret() {
                        mask_password(&s.value)
                    } else {
                        s.value.clone()
                    };
                    format!("{:<20} = {shown}  ({})", key.name(), s.source)
                }
                None => format!("{:<20} is not set  (set {})", key.name(), key.env()),
            })
            .chain(std::iter::once(format!(
                "{:<20} = {}  ({}; relative policies_dir and models_dir start here)",
                "data root",
                self.data_root.dir.display(),
                self.data_root.from
            )))
            .collect()
    }
}

/// The principal a command acts as: `--as` when given, else the `principal` setting. An
/// invalid one is refused with the layer it came from (`--as`, `env STEWARD_PRINCIPAL`,
/// `file <home>/config.toml`), so the person fixes the right place. Returns the principal
/// and that label.
pub fn principal_arg(cfg: &Config, flag: Option<String>) -> Result<(String, String)> {
    let (value, from) = match flag {
        Some(p) => (p, "--as".to_string()),
        None => (
            cfg.require(Key::Principal)?.to_string(),
            cfg.source_label(Key::Principal, "--as"),
        ),
    };
    if let Err(e) = steward_policy::Principal::parse(&value) {
        bail!("{from} {value:?}: {e}");
    }
    Ok((value, from))
}

/// Refuses a SQLite `state_url` whose directory does not exist, unless it is the home
/// (steward makes its home). The store would otherwise create any directory the URL names
/// (steward-audit's `open_sqlite` does `create_dir_all`), so a typo in `--state-url` would
/// silently start a new, empty store somewhere.
pub fn check_state_dir(cfg: &Config) -> Result<()> {
    let url = cfg.require(Key::StateUrl)?;
    let Some(file) = sqlite_file(url) else {
        return Ok(());
    };
    let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    let dir = absolute(dir);
    if dir.is_dir() || dir == absolute(&cfg.home) {
        return Ok(());
    }
    bail!(
        "{} {}: the directory {} does not exist; create it, or use a state store in an \
         existing directory",
        cfg.source_label(Key::StateUrl, "--state-url"),
        mask_password(url),
        dir.display()
    )
}

/// The file of a `sqlite:` URL; `None` for other stores and in-memory databases.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

fn read_file(path: &Path) -> Result<Vec<(Key, String)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))?;
    table
        .into_iter()
        // Channel tables are read by the outbox (`crate::outbox::Channels`).
        .filter(|(name, _)| name != crate::outbox::CONFIG_TABLE)
        .map(|(name, value)| {
            let Some(key) = Key::from_name(&name) else {
                bail!("{}: unknown key `{name}`", path.display());
            };
            match value {
                toml::Value::String(s) => Ok((key, s)),
                other => bail!(
                    "{}: `{name}` must be a string, not {}",
                    path.display(),
                    other.type_str()
                ),
            }
        })
        .collect()
}

/// Replaces the password of a `scheme://user:password@host` URL with `***`.
pub fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("steward-config-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn layers_override_in_order_and_remember_their_source() {
        let home = home("layers");
        std::fs::write(
            home.join("config.toml"),
            "traefik_api = \"http://file:1\"\ndomain = \"file.test\"\npg_url = \"postgres://u:pw@h/db\"\n",
        )
        .unwrap();
        let env = |k: &str| (k == "STEWARD_DOMAIN").then(|| "env.test".to_string());
        let cfg = Config::load(&home, &env, &[(Key::Domain, "flag.test".into())]).unwrap();
        assert_eq!(cfg.get(Key::TraefikApi).unwrap().value, "http://file:1");
        assert!(matches!(
            cfg.get(Key::TraefikApi).unwrap().source,
            Source::File(_)
        ));
        assert_eq!(
            cfg.get(Key::Domain).unwrap(),
            &Setting {
                value: "flag.test".into(),
                source: Source::Flag
            }
        );
        assert_eq!(cfg.get(Key::TraefikWeb).unwrap().source, Source::Default);

        let cfg = Config::load(&home, &env, &[]).unwrap();
        assert_eq!(
            cfg.get(Key::Domain).unwrap().source,
            Source::Env("STEWARD_DOMAIN".into())
        );
        let shown = cfg.describe().join("\n");
        assert!(shown.contains("postgres://u:***@h/db"), "{shown}");
        assert!(!shown.contains("pw@"), "{shown}");
        std::fs::remove_dir_all(&home).unwrap();
    }

    #[test]
    fn missing_pg_url_says_how_to_fix() {
        let home = home("missing");
        let cfg = Config::load(&home, &|_| None, &[]).unwrap();
        let err = cfg.require(Key::PgUrl).unwrap_err().to_string();
        assert!(
            err.contains("scripts/setup") && err.contains("STEWARD_PG_URL"),
            "{err}"
        );
        std::fs::remove_dir_all(&home).unwrap();
    }

    #[test]
    fn unknown_or_mistyped_keys_are_refused() {
        let home = home("typo");
        std::fs::write(home.join("config.toml"), "trafik_api = \"x\"\n").unwrap();
        let err = Config::load(&home, &|_| None, &[]).unwrap_err().to_string();
        assert!(err.contains("unknown key `trafik_api`"), "{err}");
        std::fs::write(home.join("config.toml"), "domain = 3\n").unwrap();
        let err = Config::load(&home, &|_| None, &[]).unwrap_err().to_string();
        assert!(err.contains("`domain` must be a string"), "{err}");
        std::fs::remove_dir_all(&home).unwrap();
    }

    #[test]
    fn masking_leaves_passwordless_urls_alone() {
        assert_eq!(mask_password("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
        assert_eq!(mask_password("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            mask_password("postgres://u:p@ss@h/db"),
            "postgres://u:***@h/db"
        );
    }
}
