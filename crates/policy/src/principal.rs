//! Who is asking: the principal of a vetting request, as written on the command line and in
//! audit records (`operator:alice`, `alert_rule:rentguy-unhealthy`).

use std::fmt;
use std::str::FromStr;

use steward_protocol::Origin;

use crate::error::{PolicyError, Result};

/// The kinds of principal the Cedar schema knows. Each maps to one Cedar entity type, so a
/// policy can say `principal is AlertRule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PrincipalKind {
    Operator,
    Role,
    ServiceAccount,
    AlertRule,
    WebhookSource,
    McpClient,
}

impl PrincipalKind {
    pub const ALL: [PrincipalKind; 6] = [
        PrincipalKind::Operator,
        PrincipalKind::Role,
        PrincipalKind::ServiceAccount,
        PrincipalKind::AlertRule,
        PrincipalKind::WebhookSource,
        PrincipalKind::McpClient,
    ];

    /// The prefix used in principal strings and as the table name in entities.toml.
    pub fn prefix(self) -> &'static str {
        match self {
            PrincipalKind::Operator => "operator",
            PrincipalKind::Role => "role",
            PrincipalKind::ServiceAccount => "service_account",
            PrincipalKind::AlertRule => "alert_rule",
            PrincipalKind::WebhookSource => "webhook",
            PrincipalKind::McpClient => "mcp",
        }
    }

    /// The Cedar entity type name in steward.cedarschema.
    pub fn cedar_type(self) -> &'static str {
        match self {
            PrincipalKind::Operator => "Operator",
            PrincipalKind::Role => "Role",
            PrincipalKind::ServiceAccount => "ServiceAccount",
            PrincipalKind::AlertRule => "AlertRule",
            PrincipalKind::WebhookSource => "WebhookSource",
            PrincipalKind::McpClient => "McpClient",
        }
    }

    /// The origins a request from this kind of principal can arrive with. A webhook source
    /// only ever posts webhooks and an MCP client only ever speaks MCP, so a request that
    /// names one of them with another origin is forged or misrouted, and is refused.
    pub fn origins(self) -> &'static [Origin] {
        match self {
            PrincipalKind::Operator | PrincipalKind::Role => &[Origin::Chat, Origin::Api],
            PrincipalKind::ServiceAccount => &[Origin::Api],
            PrincipalKind::AlertRule => &[Origin::Alert, Origin::Monitor, Origin::Schedule],
            PrincipalKind::WebhookSource => &[Origin::Webhook],
            PrincipalKind::McpClient => &[Origin::Mcp],
        }
    }

    /// Whether this kind of principal is an automated source whose requests are untrusted
    /// whatever origin they claim (webhook bodies, MCP clients, alerts).
    pub fn is_untrusted_source(self) -> bool {
        matches!(
            self,
            PrincipalKind::AlertRule | PrincipalKind::WebhookSource | PrincipalKind::McpClient
        )
    }

    /// Accepts the short prefixes and the long spellings (`webhook_source`, `mcp_client`),
    /// so both the CLI habit and the Cedar type name work.
    fn from_prefix(s: &str) -> Option<PrincipalKind> {
        Some(match s {
            "operator" => PrincipalKind::Operator,
            "role" => PrincipalKind::Role,
            "service_account" => PrincipalKind::ServiceAccount,
            "alert_rule" => PrincipalKind::AlertRule,
            "webhook" | "webhook_source" => PrincipalKind::WebhookSource,
            "mcp" | "mcp_client" => PrincipalKind::McpClient,
            _ => return None,
        })
    }
}

/// The principal of a request: its kind and its id. What it may do is not stored here but
/// in policies/entities.toml (roles, tenant, services, tools), so a forged principal string
/// carries no privileges; an id that is not listed there is denied.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principal {
    pub kind: PrincipalKind,
    pub id: String,
}

/// Longest accepted id; ids become Cedar entity ids and appear in audit records.
const MAX_ID_LEN: usize = 128;

impl Principal {
    pub fn new(kind: PrincipalKind, id: impl Into<String>) -> Principal {
        Principal {
            kind,
            id: id.into(),
        }
    }

    /// Parses `kind:id`, e.g. `operator:alice`, `alert_rule:rentguy-unhealthy`,
    /// `service_account:tenant-acme`, `webhook:n8n`, `mcp:claude-desktop`, `role:viewer`.
    /// Ids may hold letters, digits and `. _ @ + -` (operators may be e-mail addresses).
    pub fn parse(s: &str) -> Result<Principal> {
        let err = |message: String| PolicyError::Principal {
            input: s.to_string(),
            message,
        };
        let Some((kind, id)) = s.split_once(':') else {
            return Err(err(format!(
                "expected kind:id, where kind is one of {}",
                kinds_list()
            )));
        };
        let kind = PrincipalKind::from_prefix(kind).ok_or_else(|| {
            err(format!(
                "unknown kind {kind:?}; expected one of {}",
                kinds_list()
            ))
        })?;
        if id.is_empty() || id.len() > MAX_ID_LEN {
            return Err(err(format!("id must be 1 to {MAX_ID_LEN} characters")));
        }
        if !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._@+-".contains(c))
        {
            return Err(err(
                "id may contain only letters, digits and . _ @ + -".to_string()
            ));
        }
        Ok(Principal::new(kind, id))
    }
}

fn kinds_list() -> String {
    PrincipalKind::ALL
        .iter()
        .map(|k| k.prefix())
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.prefix(), self.id)
    }
}

impl FromStr for Principal {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Principal> {
        Principal::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_and_round_trips() {
        for s in [
            "operator:alice",
            "role:viewer",
            "service_account:tenant-acme",
            "alert_rule:rentguy-unhealthy",
            "webhook:n8n",
            "mcp:claude-desktop",
            "operator:alice@example.com",
        ] {
            let p = Principal::parse(s).unwrap();
            assert_eq!(p.to_string(), s);
        }
        assert_eq!(
            Principal::parse("mcp_client:x").unwrap().kind,
            PrincipalKind::McpClient
        );
    }

    #[test]
    fn refuses_malformed_input_with_the_rule() {
        for (s, needle) in [
            ("alice", "expected kind:id"),
            ("user:alice", "unknown kind"),
            ("operator:", "1 to 128"),
            ("operator:a b", "may contain only"),
            ("operator:\"x\"", "may contain only"),
        ] {
            let e = Principal::parse(s).unwrap_err().to_string();
            assert!(e.contains(needle), "{s}: {e}");
        }
    }
}
