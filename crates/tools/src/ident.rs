//! Validated identifiers. Every name that reaches Docker, PostgreSQL, Traefik or the file
//! system passes through one of these types first, so a hostile value (`x; DROP`, `../`,
//! `UPPER`, 64+ characters, `www`) is refused at deserialization, before any side effect,
//! with a message that names the rule it broke.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// Longest DNS label, and PostgreSQL's identifier limit leaves room for `tenant_user_` plus it.
pub const MAX_NAME_LEN: usize = 40;

/// Subdomains a tenant can never take: they name the platform itself or common infrastructure.
pub const RESERVED_SUBDOMAINS: &[&str] = &[
    "www",
    "api",
    "traefik",
    "admin",
    "app",
    "mail",
    "smtp",
    "ftp",
    "ns1",
    "ns2",
    "steward",
    "postgres",
    "db",
    "static",
    "assets",
    "cdn",
    "status",
    "auth",
    "login",
    "dashboard",
];

/// Why a name was refused: the rule, phrased so it can be shown to a person as is.
pub fn name_rule_violation(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        return Some("must not be empty");
    }
    if value.len() > MAX_NAME_LEN {
        return Some("must be at most 40 characters");
    }
    if value.bytes().any(|b| b.is_ascii_uppercase()) {
        return Some("must be lowercase");
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Some("may contain only a-z, 0-9 and '-'");
    }
    if !value.as_bytes()[0].is_ascii_lowercase() {
        return Some("must start with a letter");
    }
    if value.ends_with('-') || value.contains("--") {
        return Some("must not end with '-' or contain '--'");
    }
    None
}

macro_rules! validated_string {
    ($(#[$doc:meta])* $name:ident, $what:literal, $pattern:literal, $max:expr, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates `value`; the error names the rule that was broken.
            pub fn parse(value: &str) -> Result<Self, String> {
                let check: fn(&str) -> Option<&'static str> = $check;
                match check(value) {
                    None => Ok(Self(value.to_string())),
                    Some(rule) => Err(format!("{} {:?} {}", $what, value, rule)),
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn inline_schema() -> bool {
                true
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "pattern": $pattern,
                    "minLength": 1,
                    "maxLength": $max,
                })
            }
        }
    };
}

validated_string!(
    /// A service Steward manages: a platform service (`rentguy`) or a tenant (`acme-research`).
    ServiceName,
    "service name",
    "^[a-z][a-z0-9-]*$",
    MAX_NAME_LEN,
    name_rule_violation
);

validated_string!(
    /// A tenant subdomain that may be provisioned: a service name that is not reserved.
    Subdomain,
    "subdomain",
    "^[a-z][a-z0-9-]*$",
    MAX_NAME_LEN,
    |v| name_rule_violation(v).or_else(|| {
        RESERVED_SUBDOMAINS
            .contains(&v)
            .then_some("is reserved for the platform")
    })
);

validated_string!(
    /// A Docker image reference such as `steward-demo:v2`, `registry.local:5000/team/app:1.2`
    /// or `app@sha256:<64 hex>`, checked against Docker's reference grammar so a malformed
    /// one is refused here rather than by the Docker Engine mid-deploy.
    ImageRef,
    "image",
    "^[a-z0-9][A-Za-z0-9._/:@-]*$",
    255,
    image_rule_violation
);

/// Longest image tag Docker accepts.
const MAX_TAG_LEN: usize = 128;

/// The rule of Docker's reference grammar (`[domain[:port]/]path[:tag][@digest]`) that
/// `value` breaks. Stricter than Docker in one place: the domain must be lowercase too.
pub fn image_rule_violation(value: &str) -> Option<&'static str> {
    if value.is_empty() || value.len() > 255 {
        return Some("must be 1 to 255 characters");
    }
    let (rest, digest) = match value.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (value, None),
    };
    if let Some(d) = digest {
        let hex = d.strip_prefix("sha256:").unwrap_or("");
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Some("digest after '@' must be sha256: followed by 64 lowercase hex digits");
        }
    }
    // A ':' after the last '/' starts the tag; one before it belongs to the registry's port.
    let after_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[after_slash..].find(':') {
        Some(i) => (&rest[..after_slash + i], Some(&rest[after_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag {
        let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        let ok = !t.is_empty()
            && t.len() <= MAX_TAG_LEN
            && word(t.as_bytes()[0])
            && t.bytes().all(|b| word(b) || b == b'.' || b == b'-');
        if !ok {
            return Some(
                "tag after ':' must be 1 to 128 of A-Z, a-z, 0-9, '_', '.' and '-', not starting with '.' or '-'",
            );
        }
    }
    if name.is_empty() {
        return Some("must name a repository before the tag or digest");
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    let first = parts[0];
    if parts.len() > 1 && (first.contains(['.', ':']) || first == "localhost") {
        if let Some(rule) = domain_violation(first) {
            return Some(rule);
        }
        parts.remove(0);
    }
    for part in parts {
        if let Some(rule) = path_component_violation(part) {
            return Some(rule);
        }
    }
    None
}

/// A registry host with an optional port: DNS labels joined by '.'.
fn domain_violation(domain: &str) -> Option<&'static str> {
    let (host, port) = match domain.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (domain, None),
    };
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Some("registry port after ':' must be 1 to 5 digits");
        }
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if host.split('.').all(label_ok) {
        None
    } else {
        Some("registry host must be lowercase DNS labels (a-z, 0-9, inner '-') joined by '.'")
    }
}

/// One path component: lowercase alphanumeric runs joined by '.', '_', '__' or '-'s.
fn path_component_violation(part: &str) -> Option<&'static str> {
    const RULE: &str = "path components must be lowercase a-z and 0-9, separated by '/' and \
                        joined inside by '.', '_', '__' or '-'";
    if part.is_empty() {
        return Some(RULE);
    }
    if part.bytes().any(|b| b.is_ascii_uppercase()) {
        return Some("repository path must be lowercase");
    }
    let b = part.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return Some(RULE);
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &part[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|c| c == b'-');
        if !ok {
            return Some(RULE);
        }
    }
    None
}

validated_string!(
    /// A backup id as `db_backup` returns it (`acme-research-20261123T101500Z`).
    BackupId,
    "backup id",
    "^[a-z][a-z0-9-]*-[0-9]{8}T[0-9]{6}[0-9]*Z$",
    80,
    |v| {
        if v.is_empty() || v.len() > 80 {
            Some("must be 1 to 80 characters")
        } else if !v.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'T' || b == b'Z'
        }) {
            Some("may contain only a-z, 0-9, '-', 'T' and 'Z'")
        } else if !v.as_bytes()[0].is_ascii_lowercase() {
            Some("must start with a letter")
        } else {
            None
        }
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_refused_with_the_rule() {
        let cases = [
            ("x; DROP", "lowercase"),
            ("x;drop", "only a-z"),
            ("../etc", "only a-z"),
            ("Rentguy", "lowercase"),
            ("9lives", "start with a letter"),
            ("a-", "end with '-'"),
            ("", "empty"),
        ];
        for (value, rule) in cases {
            let err = ServiceName::parse(value).unwrap_err();
            assert!(err.contains(rule), "{value:?}: {err}");
        }
        let long = "a".repeat(64);
        assert!(ServiceName::parse(&long)
            .unwrap_err()
            .contains("at most 40"));
        for reserved in ["www", "api", "traefik"] {
            assert!(Subdomain::parse(reserved).unwrap_err().contains("reserved"));
            assert!(ServiceName::parse(reserved).is_ok());
        }
        assert!(ImageRef::parse("steward-demo:v1").is_ok());
        assert!(ImageRef::parse("x;rm -rf /").is_err());
        assert!(BackupId::parse("../../etc/passwd").is_err());
        assert!(BackupId::parse("acme-20261123T101500Z").is_ok());
    }

    #[test]
    fn image_refs_follow_dockers_reference_grammar() {
        let digest = format!("sha256:{}", "0123456789abcdef".repeat(4));
        for good in [
            "steward-demo:v1".to_string(),
            "registry.example.com:5000/team/app:1.2".into(),
            "localhost/app".into(),
            "localhost:5000/a/b/c:latest".into(),
            "library/postgres".into(),
            "my_app__x.y--z:V1.0_rc-2".into(),
            format!("app@{digest}"),
            format!("registry.local/app:v2@{digest}"),
            format!("app:{}", "t".repeat(128)),
        ] {
            assert!(
                ImageRef::parse(&good).is_ok(),
                "{good}: {:?}",
                ImageRef::parse(&good)
            );
        }
        let bad = [
            ("a:b:c:d@@", "digest"),
            ("a:b:c:d", "tag"),
            ("app:", "tag"),
            ("app:.v1", "tag"),
            ("app@sha256:abc", "digest"),
            ("app@md5:0123", "digest"),
            ("App:v1", "lowercase"),
            ("team/App", "lowercase"),
            ("app_", "path components"),
            ("a___b", "path components"),
            ("a/-b", "path components"),
            ("a//b", "path components"),
            ("x;rm -rf /", "path components"),
            ("registry.example.com:50x0/app", "port"),
            ("-reg.example.com/app", "registry host"),
            (":v1", "repository"),
        ];
        for (value, rule) in bad {
            let err = ImageRef::parse(value).unwrap_err();
            assert!(err.contains(rule), "{value:?}: {err}");
        }
        let long_tag = format!("app:{}", "t".repeat(129));
        assert!(ImageRef::parse(&long_tag).unwrap_err().contains("tag"));
    }

    #[test]
    fn deserializing_validates() {
        let err = serde_json::from_str::<ServiceName>("\"x; DROP\"").unwrap_err();
        assert!(err.to_string().contains("service name"), "{err}");
        let ok: ServiceName = serde_json::from_str("\"acme-research\"").unwrap();
        assert_eq!(ok.as_str(), "acme-research");
    }
}
