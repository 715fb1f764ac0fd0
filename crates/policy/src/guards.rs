//! Guards: the stateful limits that sit next to Cedar. Policies judge one call on its own;
//! guards judge it against recent history and what is running now, which a stateless policy
//! language cannot see:
//!
//! - rate limits per principal and per tool (calls per sliding window),
//! - a blast-radius cap on destructive calls platform-wide,
//! - one write per target at a time (a second write waits or is refused).
//!
//! Time is passed in (`now_ms`), so tests and replays are deterministic.
//!
//! Across processes (each `steward` CLI call is one): the agent seeds the rate windows from
//! the audit log's recent executions at start-up ([`Guards::record_past`]), and with a lock
//! dir ([`Guards::with_lock_dir`]) a target's write slot is also an exclusive file lock, so
//! two processes never write one target at once. The OS releases the lock of a process
//! that dies. Two processes admitted in the same instant can still both count against a
//! rate window they each saw one short of its limit.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Deserialize;
use steward_protocol::Effect;
use steward_tools::Call;
use tokio::sync::Notify;

use crate::error::{PolicyError, Result};
use crate::principal::Principal;

/// The default file name of the guard configuration, beside the policies.
pub const GUARDS_FILE: &str = "guards.toml";

/// What a second write on a busy target does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConcurrencyMode {
    /// Refuse at once, naming the write in progress.
    Refuse,
    /// Wait (in [`Guards::admit_wait`]) up to `wait_timeout_ms` for the target to free up.
    Wait,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    pub window_secs: u64,
    /// Calls one principal may make per window.
    pub per_principal: u32,
    /// Calls of one tool per window, across principals.
    pub per_tool: u32,
    /// Per-tool overrides of `per_tool`.
    pub tools: BTreeMap<String, u32>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            window_secs: 60,
            per_principal: 60,
            per_tool: 120,
            tools: BTreeMap::from([
                ("service_restart".to_string(), 10),
                ("service_deploy".to_string(), 5),
                ("service_rollback".to_string(), 5),
                ("tenant_provision".to_string(), 5),
            ]),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlastRadiusConfig {
    pub window_secs: u64,
    /// Destructive calls allowed platform-wide per window (0 forbids them all).
    pub max_destructive: u32,
}

impl Default for BlastRadiusConfig {
    fn default() -> Self {
        BlastRadiusConfig {
            window_secs: 3600,
            max_destructive: 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TargetConfig {
    pub mode: ConcurrencyMode,
    pub wait_timeout_ms: u64,
}

impl Default for TargetConfig {
    fn default() -> Self {
        TargetConfig {
            mode: ConcurrencyMode::Refuse,
            wait_timeout_ms: 30_000,
        }
    }
}

/// The whole guard configuration (policies/guards.toml); every section and key is optional.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuardsConfig {
    pub rate_limit: RateLimitConfig,
    pub blast_radius: BlastRadiusConfig,
    pub target: TargetConfig,
}

impl GuardsConfig {
    fn check(&self) -> std::result::Result<(), String> {
        let r = &self.rate_limit;
        if r.window_secs == 0 || self.blast_radius.window_secs == 0 {
            return Err("window_secs must be at least 1".into());
        }
        if r.per_principal == 0 || r.per_tool == 0 {
            return Err("rate limits must be at least 1 (remove the tool to stop it)".into());
        }
        for (tool, n) in &r.tools {
            if steward_tools::find(tool).is_none() {
                return Err(format!("rate_limit.tools names unknown tool {tool:?}"));
            }
            if *n == 0 {
                return Err(format!("rate_limit.tools.{tool} must be at least 1"));
            }
        }
        Ok(())
    }

    fn tool_limit(&self, tool: &str) -> u32 {
        self.rate_limit
            .tools
            .get(tool)
            .copied()
            .unwrap_or(self.rate_limit.per_tool)
    }
}

/// Which guard refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardKind {
    PrincipalRate,
    ToolRate,
    BlastRadius,
    TargetBusy,
}

impl fmt::Display for GuardKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GuardKind::PrincipalRate => "rate limit per principal",
            GuardKind::ToolRate => "rate limit per tool",
            GuardKind::BlastRadius => "blast radius",
            GuardKind::TargetBusy => "one write per target",
        })
    }
}

/// A call a guard refused, with a message that names the guard and its limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{guard}: {message}")]
pub struct GuardRefusal {
    pub guard: GuardKind,
    pub message: String,
    /// When a retry could succeed, for rate and blast-radius limits.
    pub retry_after_ms: Option<i64>,
}

#[derive(Debug, Default)]
struct State {
    by_principal: HashMap<String, VecDeque<i64>>,
    by_tool: HashMap<&'static str, VecDeque<i64>>,
    destructive: VecDeque<i64>,
    /// Targets with a write in flight, each with the call that holds it.
    busy: HashMap<String, String>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Woken whenever a target is released, for waiting writers.
    released: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the counters inconsistent in a way
        // that matters more than refusing service, so keep going with the data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Admission control for calls that policy already allowed (or a human approved). Cheap to
/// clone: clones share the same counters.
#[derive(Debug, Clone)]
pub struct Guards {
    config: Arc<GuardsConfig>,
    shared: Arc<Shared>,
    /// Where target write slots are also file locks, shared by every process.
    lock_dir: Option<Arc<PathBuf>>,
}

/// Proof that a call was admitted. For a write with a target it holds that target's write
/// slot until dropped, so keep it alive for the duration of the execution.
#[derive(Debug)]
#[must_use = "dropping a Permit releases its target at once"]
pub struct Permit {
    slot: Option<Slot>,
}

#[derive(Debug)]
struct Slot {
    shared: Arc<Shared>,
    target: String,
    /// The cross-process lock, when the guards have a lock dir; released on drop.
    _file: Option<File>,
}

impl Permit {
    /// The target whose write slot this permit holds.
    pub fn target(&self) -> Option<&str> {
        self.slot.as_ref().map(|s| s.target.as_str())
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            slot.shared.lock().busy.remove(&slot.target);
            slot.shared.released.notify_waiters();
        }
    }
}

impl Guards {
    /// The built-in limits, used when no configuration file exists.
    pub fn defaults() -> Guards {
        Guards::new(GuardsConfig::default())
    }

    pub fn new(config: GuardsConfig) -> Guards {
        Guards {
            config: Arc::new(config),
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                released: Notify::new(),
            }),
            lock_dir: None,
        }
    }

    /// Makes each target's write slot a file lock in `dir` as well, so that separate
    /// processes (CLI calls, the server) exclude each other. The dir is created if needed.
    pub fn with_lock_dir(mut self, dir: &Path) -> Result<Guards> {
        std::fs::create_dir_all(dir).map_err(|source| PolicyError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        self.lock_dir = Some(Arc::new(dir.to_path_buf()));
        Ok(self)
    }

    /// Counts a call admitted earlier, possibly by another process (read back from the
    /// audit log at start-up), against the rate windows and the blast radius. Feed calls
    /// oldest first, before admitting new ones.
    pub fn record_past(&self, principal: &str, tool: &str, at_ms: i64) {
        let Some(spec) = steward_tools::find(tool) else {
            return;
        };
        if spec.effect == Effect::None {
            return;
        }
        let mut st = self.shared.lock();
        st.by_principal
            .entry(principal.to_string())
            .or_default()
            .push_back(at_ms);
        st.by_tool.entry(spec.name).or_default().push_back(at_ms);
        if spec.effect == Effect::Destructive {
            st.destructive.push_back(at_ms);
        }
    }

    /// The longest window any guard looks back over, for seeding with [`Guards::record_past`].
    pub fn lookback_ms(&self) -> i64 {
        ms(self
            .config
            .rate_limit
            .window_secs
            .max(self.config.blast_radius.window_secs))
    }

    /// Reads the configuration; a missing file means the defaults, a malformed or
    /// out-of-range one is an error (a typo must not silently lift a limit).
    pub fn load(path: &Path) -> Result<Guards> {
        let src = match std::fs::read_to_string(path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Guards::defaults()),
            Err(source) => {
                return Err(PolicyError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Guards::parse(path, &src)
    }

    /// Parses configuration text; `path` only names the source in errors.
    pub fn parse(path: &Path, src: &str) -> Result<Guards> {
        let err = |message: String| PolicyError::Guards {
            path: path.to_path_buf(),
            message,
        };
        let config: GuardsConfig = toml::from_str(src).map_err(|e| err(e.to_string()))?;
        config.check().map_err(err)?;
        Ok(Guards::new(config))
    }

    pub fn config(&self) -> &GuardsConfig {
        &self.config
    }

    /// Admits a call now or refuses it. Checks every guard before counting anything, so a
    /// refused call uses up no quota. Calls with no effect (`respond`) are never limited.
    pub fn admit(
        &self,
        principal: &Principal,
        call: &Call,
        target: Option<&str>,
        now_ms: i64,
    ) -> std::result::Result<Permit, GuardRefusal> {
        let effect = call.spec().effect;
        if effect == Effect::None {
            return Ok(Permit { slot: None });
        }
        let cfg = &*self.config;
        let tool = call.spec().name;
        let who = principal.to_string();
        let rate_window = ms(cfg.rate_limit.window_secs);
        let blast_window = ms(cfg.blast_radius.window_secs);
        let tool_limit = cfg.tool_limit(tool);

        let mut st = self.shared.lock();
        let st = &mut *st;

        let principal_log = st.by_principal.entry(who.clone()).or_default();
        prune(principal_log, now_ms, rate_window);
        if principal_log.len() >= cfg.rate_limit.per_principal as usize {
            return Err(GuardRefusal {
                guard: GuardKind::PrincipalRate,
                message: format!(
                    "{who} made {} calls in the last {}s (limit {} per {}s)",
                    principal_log.len(),
                    cfg.rate_limit.window_secs,
                    cfg.rate_limit.per_principal,
                    cfg.rate_limit.window_secs
                ),
                retry_after_ms: retry_after(principal_log, now_ms, rate_window),
            });
        }
        let tool_log = st.by_tool.entry(tool).or_default();
        prune(tool_log, now_ms, rate_window);
        if tool_log.len() >= tool_limit as usize {
            return Err(GuardRefusal {
                guard: GuardKind::ToolRate,
                message: format!(
                    "{tool} was called {} times in the last {}s (limit {tool_limit} per {}s)",
                    tool_log.len(),
                    cfg.rate_limit.window_secs,
                    cfg.rate_limit.window_secs
                ),
                retry_after_ms: retry_after(tool_log, now_ms, rate_window),
            });
        }
        prune(&mut st.destructive, now_ms, blast_window);
        if effect == Effect::Destructive
            && st.destructive.len() >= cfg.blast_radius.max_destructive as usize
        {
            return Err(GuardRefusal {
                guard: GuardKind::BlastRadius,
                message: format!(
                    "{} destructive calls platform-wide in the last {}s (limit {} per {}s); \
                     {tool} must wait",
                    st.destructive.len(),
                    cfg.blast_radius.window_secs,
                    cfg.blast_radius.max_destructive,
                    cfg.blast_radius.window_secs
                ),
                retry_after_ms: retry_after(&st.destructive, now_ms, blast_window),
            });
        }
        let slot = match target {
            Some(t) if matches!(effect, Effect::Write | Effect::Destructive) => {
                if let Some(holder) = st.busy.get(t) {
                    return Err(GuardRefusal {
                        guard: GuardKind::TargetBusy,
                        message: format!(
                            "a write on {t} is already running ({holder}); {tool} by {who} is \
                             refused (mode {})",
                            match cfg.target.mode {
                                ConcurrencyMode::Refuse => "refuse",
                                ConcurrencyMode::Wait => "wait: use admit_wait",
                            }
                        ),
                        retry_after_ms: None,
                    });
                }
                let file = match &self.lock_dir {
                    Some(dir) => Some(lock_target(dir, t, &format!("{tool} by {who}"))?),
                    None => None,
                };
                Some((t.to_string(), file))
            }
            _ => None,
        };

        // Admitted: count it everywhere.
        if let Some(log) = st.by_principal.get_mut(&who) {
            log.push_back(now_ms);
        }
        if let Some(log) = st.by_tool.get_mut(tool) {
            log.push_back(now_ms);
        }
        if effect == Effect::Destructive {
            st.destructive.push_back(now_ms);
        }
        if st.by_principal.len() > 4096 {
            st.by_principal.retain(|_, log| !log.is_empty());
        }
        let slot = slot.map(|(target, file)| {
            st.busy.insert(target.clone(), format!("{tool} by {who}"));
            Slot {
                shared: Arc::clone(&self.shared),
                target,
                _file: file,
            }
        });
        Ok(Permit { slot })
    }

    /// Like [`Guards::admit`], but when the target is busy and the configured mode is
    /// `wait`, waits for it to be released, up to `wait_timeout_ms`. Other refusals (rates,
    /// blast radius) are returned at once: waiting would not lift them soon.
    pub async fn admit_wait(
        &self,
        principal: &Principal,
        call: &Call,
        target: Option<&str>,
        now_ms: i64,
    ) -> std::result::Result<Permit, GuardRefusal> {
        if self.config.target.mode == ConcurrencyMode::Refuse {
            return self.admit(principal, call, target, now_ms);
        }
        let timeout = Duration::from_millis(self.config.target.wait_timeout_ms);
        let started = tokio::time::Instant::now();
        loop {
            // Register for the wake-up before looking, so a release between the look and
            // the wait is not missed.
            let released = self.shared.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let elapsed = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
            match self.admit(principal, call, target, now_ms.saturating_add(elapsed)) {
                Err(r) if r.guard == GuardKind::TargetBusy => {
                    let left = timeout.saturating_sub(started.elapsed());
                    // Another process's release wakes nobody here: look again now and then.
                    let nap = match self.lock_dir {
                        Some(_) => left.min(CROSS_PROCESS_POLL),
                        None => left,
                    };
                    if left.is_zero()
                        || (tokio::time::timeout(nap, released).await.is_err()
                            && started.elapsed() >= timeout)
                    {
                        return Err(GuardRefusal {
                            guard: GuardKind::TargetBusy,
                            message: format!(
                                "waited {} ms (wait_timeout_ms) for the write on {} to finish",
                                self.config.target.wait_timeout_ms,
                                target.unwrap_or("?")
                            ),
                            retry_after_ms: None,
                        });
                    }
                }
                other => return other,
            }
        }
    }

    /// Targets with a write in flight, for status displays.
    pub fn busy_targets(&self) -> HashSet<String> {
        self.shared.lock().busy.keys().cloned().collect()
    }
}

/// How often a writer waiting for a target another process holds looks again.
const CROSS_PROCESS_POLL: Duration = Duration::from_millis(50);

/// Takes the exclusive file lock of `target` in `dir`, writing `holder` into the file so a
/// refused caller can say who holds it.
fn lock_target(dir: &Path, target: &str, holder: &str) -> std::result::Result<File, GuardRefusal> {
    // Targets are validated identifiers, but the file name must not depend on that.
    let name: String = target
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = dir.join(format!("target-{name}.lock"));
    let busy = |message: String| GuardRefusal {
        guard: GuardKind::TargetBusy,
        message,
        retry_after_ms: None,
    };
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| busy(format!("cannot open the lock {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => {
            // Best effort: the holder text only improves another caller's message.
            let _ = file
                .set_len(0)
                .and_then(|()| write!(file, "{holder} (pid {})", std::process::id()));
            Ok(file)
        }
        Err(TryLockError::WouldBlock) => {
            let mut other = String::new();
            let _ = file.read_to_string(&mut other);
            Err(busy(format!(
                "a write on {target} is already running in another steward process ({}); \
                 {holder} is refused",
                if other.is_empty() {
                    "holder unknown"
                } else {
                    other.trim()
                }
            )))
        }
        Err(TryLockError::Error(e)) => Err(busy(format!("cannot lock {}: {e}", path.display()))),
    }
}

fn ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// Drops entries that left the sliding window `(now - window, now]`.
fn prune(log: &mut VecDeque<i64>, now_ms: i64, window_ms: i64) {
    while log
        .front()
        .is_some_and(|&t| t <= now_ms.saturating_sub(window_ms))
    {
        log.pop_front();
    }
}

fn retry_after(log: &VecDeque<i64>, now_ms: i64, window_ms: i64) -> Option<i64> {
    log.front()
        .map(|&t| (t.saturating_add(window_ms) - now_ms).max(1))
}
