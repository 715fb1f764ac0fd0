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
    /// A Docker image reference such as `steward-demo:v2` or `registry.local/app@sha256:...`.
    ImageRef,
    "image",
    "^[a-z0-9][a-z0-9._/:@-]*$",
    255,
    |v| {
        if v.is_empty() || v.len() > 255 {
            Some("must be 1 to 255 characters")
        } else if !v.as_bytes()[0].is_ascii_alphanumeric() {
            Some("must start with a letter or digit")
        } else if !v.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"._/:@-".contains(&b)
        }) {
            Some("may contain only a-z, 0-9 and . _ / : @ -")
        } else if v.contains("..") {
            Some("must not contain '..'")
        } else {
            None
        }
    }
);

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
    fn deserializing_validates() {
        let err = serde_json::from_str::<ServiceName>("\"x; DROP\"").unwrap_err();
        assert!(err.to_string().contains("service name"), "{err}");
        let ok: ServiceName = serde_json::from_str("\"acme-research\"").unwrap();
        assert_eq!(ok.as_str(), "acme-research");
    }
}
