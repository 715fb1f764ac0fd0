//! `tenant_check_subdomain`: is a name free, and if not, why and what to take instead.
//!
//! A name is taken when a tenant (its container, its role or its state dir), a platform
//! service (a labelled container) or a route file already uses it, and reserved when it is
//! common infrastructure (`www`) or the name of a platform service
//! ([`crate::env::ExecConfig::reserved_services`]), running here or not. Such a name is a
//! normal answer (`available: false`, with suggestions); a name that breaks the format rules
//! is an `InvalidArgs` error, like any other invalid argument, whose message still carries
//! suggestions. Suggestions are deterministic: fixed suffixes tried in order, each one
//! checked free, so the same world gives the same answer.

use std::collections::{BTreeMap, HashMap};

use bollard::query_parameters::ListContainersOptionsBuilder;
use serde_json::{json, Value};
use steward_tools::ident::{name_rule_violation, MAX_NAME_LEN, RESERVED_SUBDOMAINS};
use steward_tools::{ErrorKind, ToolError};

use super::names::TenantNames;
use super::sql;
use crate::env::Env;
use crate::{labels, Result};

/// The format rules, worded as `ident.rs` words them when one is broken.
pub const FORMAT_RULES: &[&str] = &[
    "must not be empty",
    "must be at most 40 characters",
    "must be lowercase",
    "may contain only a-z, 0-9 and '-'",
    "must start with a letter",
    "must not end with '-' or contain '--'",
    "is reserved for the platform",
];

/// Suffixes tried, in order, for suggestions.
const SUFFIXES: &[&str] = &[
    "2", "app", "hq", "3", "io", "team", "4", "web", "5", "online", "6", "7", "8", "9",
];

/// Who holds a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    Tenant,
    PlatformService,
    Route,
    /// The name of a platform service (configured), whether or not it runs here.
    Reserved,
    /// A container of the tenant's name that steward does not own.
    UnmanagedContainer(String),
}

impl Holder {
    fn describe(&self, name: &str) -> String {
        match self {
            Holder::Tenant => format!("taken by the existing tenant {name}"),
            Holder::PlatformService => format!("taken by the platform service {name}"),
            Holder::Route => format!("taken by the route file {name}.yml"),
            Holder::Reserved => format!("reserved: {name} is the name of a platform service"),
            Holder::UnmanagedContainer(c) => {
                format!("taken: container {c} exists and is not managed by steward")
            }
        }
    }
}

/// Every name in use, gathered once so checking many candidates costs nothing more.
#[derive(Debug, Default)]
pub struct Taken {
    by_name: BTreeMap<String, Holder>,
}

impl Taken {
    /// Reads containers (one list call), route files and tenant roles.
    pub async fn gather(env: &Env) -> Result<Self> {
        let mut by_name = BTreeMap::new();
        let opts = ListContainersOptionsBuilder::new().all(true).build();
        let containers = env
            .platform
            .docker
            .api()
            .list_containers(Some(opts))
            .await?;
        let mut names: HashMap<String, bool> = HashMap::new();
        for c in containers {
            let l = c.labels.unwrap_or_default();
            let managed = l.contains_key(labels::SERVICE);
            if let Some(service) = l.get(labels::SERVICE) {
                let holder = if l.get(labels::KIND).map(String::as_str) == Some("tenant") {
                    Holder::Tenant
                } else {
                    Holder::PlatformService
                };
                by_name.insert(service.clone(), holder);
            }
            for n in c.names.unwrap_or_default() {
                names.insert(n.trim_start_matches('/').to_string(), managed);
            }
        }
        if let Ok(entries) = std::fs::read_dir(env.platform.routes.path()) {
            for e in entries.flatten() {
                let file = e.file_name().to_string_lossy().into_owned();
                if let Some(route) = file.strip_suffix(".yml") {
                    by_name.entry(route.to_string()).or_insert(Holder::Route);
                }
            }
        }
        // A tenant whose provision stopped before its role exists still has its state dir.
        if let Ok(entries) = std::fs::read_dir(env.config.state_dir.join("tenants")) {
            for e in entries.flatten() {
                if e.path().is_dir() {
                    let id = e.file_name().to_string_lossy().into_owned();
                    by_name.insert(id.replace('_', "-"), Holder::Tenant);
                }
            }
        }
        let admin = env.admin_pool().await?;
        for role in sql::tenant_roles(admin).await? {
            if let Some(sub) = TenantNames::subdomain_of_role(&role) {
                by_name.insert(sub, Holder::Tenant);
            }
        }
        // An unlabelled container with a tenant's container name blocks that tenant.
        let app = &env.config.tenant_app;
        for (n, managed) in names {
            if managed {
                continue;
            }
            if let Some(id) = n.strip_prefix(&format!("{app}_tenant_")) {
                by_name
                    .entry(id.replace('_', "-"))
                    .or_insert(Holder::UnmanagedContainer(n.clone()));
            }
        }
        // Platform services' names, whether or not they run here.
        for name in &env.config.reserved_services {
            by_name.insert(name.clone(), Holder::Reserved);
        }
        Ok(Self { by_name })
    }

    pub fn holder(&self, name: &str) -> Option<&Holder> {
        self.by_name.get(name)
    }
}

/// The format rule `value` breaks, reserved names included.
pub fn format_violation(value: &str) -> Option<&'static str> {
    name_rule_violation(value).or_else(|| {
        RESERVED_SUBDOMAINS
            .contains(&value)
            .then_some("is reserved for the platform")
    })
}

/// A best effort at turning free text into a valid name: lowercase, other characters to
/// `-`, no leading digit, no `--`, at most 40 characters.
pub fn normalize(value: &str) -> String {
    let mut out = String::new();
    for ch in value.trim().chars() {
        let c = ch.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_string();
    let out = if out.starts_with(|c: char| c.is_ascii_digit()) {
        format!("t-{out}")
    } else {
        out
    };
    fit(&out, "")
}

/// `base-suffix` cut to fit the length limit (the base is shortened, never the suffix).
fn fit(base: &str, suffix: &str) -> String {
    let room = MAX_NAME_LEN.saturating_sub(if suffix.is_empty() {
        0
    } else {
        suffix.len() + 1
    });
    let base: String = base.chars().take(room).collect();
    let base = base.trim_end_matches('-');
    if suffix.is_empty() {
        base.to_string()
    } else {
        format!("{base}-{suffix}")
    }
}

/// Up to `n` free, valid names derived from `base`, in a fixed order.
pub fn suggestions(base: &str, taken: &Taken, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    if base.is_empty() || !base.starts_with(|c: char| c.is_ascii_lowercase()) {
        return out;
    }
    for suffix in SUFFIXES {
        let candidate = fit(base, suffix);
        if format_violation(&candidate).is_none()
            && taken.holder(&candidate).is_none()
            && !out.contains(&candidate)
        {
            out.push(candidate);
            if out.len() == n {
                break;
            }
        }
    }
    out
}

/// An `InvalidArgs` error when `value` breaks a format rule, naming the rule and offering
/// corrected names (so a planner or a person can retry with one of them).
pub async fn refuse_invalid(env: &Env, value: &str) -> std::result::Result<(), ToolError> {
    let Some(rule) = name_rule_violation(value) else {
        return Ok(());
    };
    let shown = value.chars().take(80).collect::<String>();
    // Suggestions are a courtesy: the refusal stands even when the world cannot be read.
    let sugg = match Taken::gather(env).await {
        Ok(taken) => corrected(value, &taken),
        Err(_) => Vec::new(),
    };
    let hint = if sugg.is_empty() {
        String::new()
    } else {
        format!("; try {}", sugg.join(", "))
    };
    Err(ToolError::new(
        ErrorKind::InvalidArgs,
        format!(
            "subdomain {shown:?} {rule} (a subdomain is 1 to {MAX_NAME_LEN} of a-z, 0-9 and '-', \
             starting with a letter){hint}"
        ),
    ))
}

/// Up to three free, valid names made from an invalid one.
fn corrected(value: &str, taken: &Taken) -> Vec<String> {
    let fixed = normalize(value);
    let mut sugg = Vec::new();
    if format_violation(&fixed).is_none() && taken.holder(&fixed).is_none() {
        sugg.push(fixed.clone());
    }
    for s in suggestions(&fixed, taken, 3) {
        if sugg.len() < 3 && !sugg.contains(&s) {
            sugg.push(s);
        }
    }
    sugg
}

/// The full answer of `tenant_check_subdomain` for a well-formed name: available, reserved
/// or taken. A malformed name is refused first ([`refuse_invalid`]).
pub async fn check(env: &Env, value: &str) -> std::result::Result<(String, Value), ToolError> {
    refuse_invalid(env, value).await?;
    let rules: Vec<&str> = FORMAT_RULES.to_vec();
    let reserved: Vec<&str> = RESERVED_SUBDOMAINS
        .iter()
        .copied()
        .chain(env.config.reserved_services.iter().map(String::as_str))
        .collect();
    let taken = Taken::gather(env).await?;
    let host = format!("{value}.{}", env.config.domain);
    let reserved_rule = if RESERVED_SUBDOMAINS.contains(&value) {
        Some("is reserved for the platform")
    } else if taken.holder(value) == Some(&Holder::Reserved) {
        Some("is reserved: it is the name of a platform service")
    } else {
        None
    };
    if let Some(rule) = reserved_rule {
        let sugg = suggestions(value, &taken, 3);
        return Ok((
            format!("{value} {rule}; try {}", sugg.join(", ")),
            json!({
                "subdomain": value, "available": false, "status": "reserved",
                "reason": format!("subdomain {value:?} {rule}"), "rule": rule, "rules": rules,
                "reserved": reserved, "suggestions": sugg,
            }),
        ));
    }
    match taken.holder(value) {
        Some(holder) => {
            let sugg = suggestions(value, &taken, 3);
            let (status, reason) = match holder {
                Holder::Tenant => ("taken_by_tenant", holder.describe(value)),
                Holder::PlatformService => ("taken_by_platform_service", holder.describe(value)),
                Holder::Route => ("taken_by_route", holder.describe(value)),
                Holder::Reserved => ("reserved", holder.describe(value)),
                Holder::UnmanagedContainer(_) => ("taken_by_container", holder.describe(value)),
            };
            Ok((
                format!("{value} is {reason}; try {}", sugg.join(", ")),
                json!({
                    "subdomain": value, "available": false, "status": status,
                    "reason": reason, "host": host, "rules": rules, "reserved": reserved,
                    "suggestions": sugg,
                }),
            ))
        }
        None => Ok((
            format!("{value} is available ({host})"),
            json!({
                "subdomain": value, "available": true, "status": "available",
                "host": host, "rules": rules, "reserved": reserved, "suggestions": [],
            }),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_ident_can_report_is_listed() {
        for (value, expect) in [
            ("", "must not be empty"),
            ("Abc", "must be lowercase"),
            ("a;b", "may contain only"),
            ("9a", "must start with a letter"),
            ("a-", "must not end with"),
            ("www", "is reserved"),
        ] {
            let rule = format_violation(value).unwrap();
            assert!(rule.contains(expect), "{value}: {rule}");
            assert!(
                FORMAT_RULES.contains(&rule),
                "{rule} missing from FORMAT_RULES"
            );
        }
        let long = "a".repeat(64);
        assert!(FORMAT_RULES.contains(&format_violation(&long).unwrap()));
    }

    #[test]
    fn suggestions_are_deterministic_valid_and_free() {
        let mut taken = Taken::default();
        taken.by_name.insert("acme".into(), Holder::Tenant);
        taken.by_name.insert("acme-2".into(), Holder::Tenant);
        assert_eq!(
            suggestions("acme", &taken, 3),
            ["acme-app", "acme-hq", "acme-3"]
        );
        let long = "a".repeat(40);
        for s in suggestions(&long, &taken, 3) {
            assert!(format_violation(&s).is_none(), "{s}");
        }
        assert_eq!(suggestions("www", &taken, 1), ["www-2"]);
        // A reserved platform service name is never suggested.
        taken.by_name.insert("acme-app".into(), Holder::Reserved);
        assert_eq!(suggestions("acme", &taken, 1), ["acme-hq"]);
    }

    #[test]
    fn free_text_is_normalized() {
        assert_eq!(normalize("Acme Research!"), "acme-research");
        assert_eq!(normalize("x; DROP"), "x-drop");
        assert_eq!(normalize("../etc"), "etc");
        assert_eq!(normalize("42 Club"), "t-42-club");
        assert!(normalize(&"b".repeat(80)).len() <= 40);
    }
}
