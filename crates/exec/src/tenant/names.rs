//! Every name a tenant's pieces carry, derived from its subdomain in one place so provision,
//! destroy and the subdomain check can never disagree about what belongs to a tenant.

use std::path::PathBuf;

use steward_tools::ident::{name_rule_violation, RESERVED_SUBDOMAINS};

use crate::env::ExecConfig;
use crate::{Error, Result};

/// Why a platform service's name cannot be a tenant's.
pub const RESERVED_SERVICE_RULE: &str = "is reserved: it is the name of a platform service; \
     pick another subdomain (tenant_check_subdomain suggests free ones)";

/// Port the tenant app listens on inside its container.
pub const APP_PORT: u16 = 8080;

/// The names of one tenant's database, Docker and Traefik objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantNames {
    /// `acme-research`: the service name and the host label.
    pub subdomain: String,
    /// `acme_research`: the subdomain with `-` turned into `_`, valid in SQL identifiers.
    pub id: String,
    /// `tenant_acme_research`.
    pub schema: String,
    /// `tenant_user_acme_research`.
    pub role: String,
    /// `<app>_tenant_acme_research`.
    pub container: String,
    /// `<app>_tenant_acme_research_net`.
    pub network: String,
    /// Route (file) name: the subdomain, like every other service's route.
    pub route: String,
    /// `acme-research.<domain>`.
    pub host: String,
    /// The database holding every tenant schema.
    pub database: String,
    /// `<state_dir>/tenants/<id>`: the role's password and progress markers.
    pub state_dir: PathBuf,
}

impl TenantNames {
    /// Derives the names, refusing a subdomain or configured value that breaks its rule, and
    /// (unless `allow_reserved`) a reserved name: common infrastructure names and the names
    /// of the platform's services ([`ExecConfig::reserved_services`]).
    /// `allow_reserved` is for destroy, which must be able to name anything it might own.
    pub fn new(subdomain: &str, config: &ExecConfig, allow_reserved: bool) -> Result<Self> {
        if let Some(rule) = name_rule_violation(subdomain) {
            return Err(Error::Invalid {
                what: "subdomain",
                value: subdomain.into(),
                rule,
            });
        }
        if !allow_reserved && RESERVED_SUBDOMAINS.contains(&subdomain) {
            return Err(Error::Invalid {
                what: "subdomain",
                value: subdomain.into(),
                rule: "is reserved for the platform",
            });
        }
        if !allow_reserved && config.reserved_services.iter().any(|s| s == subdomain) {
            return Err(Error::Invalid {
                what: "subdomain",
                value: subdomain.into(),
                rule: RESERVED_SERVICE_RULE,
            });
        }
        check_config("tenant_app", &config.tenant_app, 30, false)?;
        check_config("tenant_database", &config.tenant_database, 63, true)?;
        let id = subdomain.replace('-', "_");
        let container = format!("{}_tenant_{id}", config.tenant_app);
        Ok(Self {
            subdomain: subdomain.into(),
            schema: format!("tenant_{id}"),
            role: format!("tenant_user_{id}"),
            network: format!("{container}_net"),
            container,
            route: subdomain.into(),
            host: format!("{subdomain}.{}", config.domain),
            database: config.tenant_database.clone(),
            state_dir: config.state_dir.join("tenants").join(&id),
            id,
        })
    }

    /// The subdomain a tenant role name belongs to (`tenant_user_a_b` is `a-b`).
    pub fn subdomain_of_role(role: &str) -> Option<String> {
        role.strip_prefix("tenant_user_")
            .map(|id| id.replace('_', "-"))
    }
}

/// Configured names end up in container names and SQL; they get the same strictness as
/// arguments, so a bad config fails with the key to fix instead of with odd SQL.
fn check_config(what: &'static str, value: &str, max: usize, sql: bool) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value.as_bytes()[0].is_ascii_lowercase()
        && value.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || (!sql && b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid {
            what,
            value: value.into(),
            rule: if sql {
                "must be a lowercase SQL name: a-z first, then a-z, 0-9 or '_' (fix it in config.toml)"
            } else {
                "must be a-z first, then a-z, 0-9, '_' or '-' (fix it in config.toml)"
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ExecConfig {
        ExecConfig::new("/tmp/st".into(), "postgres://x@h/db".into())
    }

    #[test]
    fn names_follow_the_convention() {
        let n = TenantNames::new("acme-research", &config(), false).unwrap();
        assert_eq!(n.id, "acme_research");
        assert_eq!(n.schema, "tenant_acme_research");
        assert_eq!(n.role, "tenant_user_acme_research");
        assert_eq!(n.container, "fresco_tenant_acme_research");
        assert_eq!(n.network, "fresco_tenant_acme_research_net");
        assert_eq!(n.host, "acme-research.localhost");
        assert_eq!(n.state_dir, PathBuf::from("/tmp/st/tenants/acme_research"));
        assert_eq!(
            TenantNames::subdomain_of_role(&n.role).as_deref(),
            Some("acme-research")
        );
    }

    #[test]
    fn hostile_values_are_refused() {
        for bad in ["x; DROP", "../x", "Upper", "a--b", &"a".repeat(64)] {
            assert!(TenantNames::new(bad, &config(), true).is_err(), "{bad}");
        }
        assert!(TenantNames::new("www", &config(), false).is_err());
        assert!(TenantNames::new("www", &config(), true).is_ok());
        // Platform services' names are reserved too (destroy may still name them).
        for platform in ["wpcs", "rentguy", "n8n", "trading-dashboard"] {
            let err = TenantNames::new(platform, &config(), false)
                .unwrap_err()
                .to_string();
            assert!(err.contains("platform service"), "{platform}: {err}");
            assert!(TenantNames::new(platform, &config(), true).is_ok());
        }
        let mut c = config();
        c.reserved_services = vec!["acme".into()];
        assert!(TenantNames::new("acme", &c, false).is_err());
        assert!(TenantNames::new("wpcs", &c, false).is_ok());
        let mut c = config();
        c.tenant_database = "x\"; drop".into();
        assert!(TenantNames::new("ok", &c, false).is_err());
        let mut c = config();
        c.tenant_app = "../app".into();
        assert!(TenantNames::new("ok", &c, false).is_err());
    }
}
