//! What a call acts on, derived from its arguments: the Cedar resource that policies see and
//! the target key the per-target write guard serialises on. Both come from the same fields so
//! the policy and the guards can never disagree about what a call touches.

use std::collections::{HashMap, HashSet};

use cedar_policy::{Entity, EntityUid, RestrictedExpression};
use serde_json::Value;
use steward_tools::Call;

use crate::entities::uid;

/// The resource of a call, by the first argument present among `service`, `target`,
/// `tenant`, `subdomain` and `backup`; calls with none of them act on the platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Resource {
    Platform,
    Service(String),
    Tenant(String),
    Backup { id: String, target: String },
}

/// The single id of the platform resource.
pub(crate) const PLATFORM_ID: &str = "steward";

impl Resource {
    pub fn of_args(args: &Value) -> Resource {
        let field = |name: &str| args.get(name).and_then(Value::as_str).map(str::to_string);
        if let Some(s) = field("service").or_else(|| field("target")) {
            Resource::Service(s)
        } else if let Some(t) = field("tenant").or_else(|| field("subdomain")) {
            Resource::Tenant(t)
        } else if let Some(b) = field("backup") {
            let target = backup_target(&b).to_string();
            Resource::Backup { id: b, target }
        } else {
            Resource::Platform
        }
    }

    /// Which entity type the resource is, as a small key.
    pub fn kind(&self) -> u8 {
        match self {
            Resource::Platform => 0,
            Resource::Service(_) => 1,
            Resource::Tenant(_) => 2,
            Resource::Backup { .. } => 3,
        }
    }

    /// The name the per-target guard keys on: services and tenants share one namespace (a
    /// tenant's service is named after its subdomain), and a backup counts as its target.
    pub fn target(&self) -> Option<&str> {
        match self {
            Resource::Platform => None,
            Resource::Service(s) | Resource::Tenant(s) => Some(s),
            Resource::Backup { target, .. } => Some(target),
        }
    }

    /// The Cedar entity of the resource, with the attributes the schema declares. `tenant`
    /// is set whenever the name is not one of the platform's own services, which is what
    /// lets tenant-scope policies work for tenants provisioned after the policies loaded.
    pub fn entity(&self, platform: &HashSet<String>) -> Result<Entity, String> {
        let tenant_of = |name: &str| (!platform.contains(name)).then(|| name.to_string());
        let s = RestrictedExpression::new_string;
        let (uid, mut attrs, tenant): (EntityUid, HashMap<String, RestrictedExpression>, _) =
            match self {
                Resource::Platform => (uid("Platform", PLATFORM_ID)?, HashMap::new(), None),
                Resource::Service(name) => (
                    uid("Service", name)?,
                    HashMap::from([
                        ("name".to_string(), s(name.clone())),
                        (
                            "platform".to_string(),
                            RestrictedExpression::new_bool(platform.contains(name)),
                        ),
                    ]),
                    tenant_of(name),
                ),
                // A platform service's name is no tenant's, whichever argument carries it.
                Resource::Tenant(name) => (
                    uid("Tenant", name)?,
                    HashMap::from([("name".to_string(), s(name.clone()))]),
                    tenant_of(name),
                ),
                Resource::Backup { id, target } => (
                    uid("Backup", id)?,
                    HashMap::from([
                        ("name".to_string(), s(id.clone())),
                        ("target".to_string(), s(target.clone())),
                    ]),
                    tenant_of(target),
                ),
            };
        if let Some(t) = tenant {
            attrs.insert("tenant".to_string(), s(t));
        }
        Entity::new(uid, attrs, HashSet::new()).map_err(|e| e.to_string())
    }
}

/// A backup id is `<target>-<UTC timestamp>` (`acme-research-20261123T101500Z`).
fn backup_target(id: &str) -> &str {
    match id.rsplit_once('-') {
        Some((target, stamp)) if stamp.ends_with('Z') && stamp.contains('T') => target,
        _ => id,
    }
}

/// The target a call writes to, for [`crate::Guards::admit`]: the service, tenant or backup
/// target named in its arguments, or `None` for platform-wide calls.
pub fn target_of(call: &Call) -> Option<String> {
    Resource::of_args(&call.args_json())
        .target()
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resources_follow_the_argument_names() {
        assert_eq!(
            Resource::of_args(&json!({"service": "rentguy", "image": "x"})),
            Resource::Service("rentguy".into())
        );
        assert_eq!(
            Resource::of_args(&json!({"target": "acme", "backup": "acme-20261123T101500Z"})),
            Resource::Service("acme".into())
        );
        assert_eq!(
            Resource::of_args(&json!({"backup": "acme-research-20261123T101500Z"})),
            Resource::Backup {
                id: "acme-research-20261123T101500Z".into(),
                target: "acme-research".into()
            }
        );
        assert_eq!(
            Resource::of_args(&json!({"subdomain": "shop"})),
            Resource::Tenant("shop".into())
        );
        assert_eq!(Resource::of_args(&json!({})), Resource::Platform);
    }

    #[test]
    fn target_of_a_call() {
        let call = Call::parse(
            "db_restore",
            json!({"target": "acme", "backup": "acme-20261123T101500Z"}),
        )
        .unwrap();
        assert_eq!(target_of(&call).as_deref(), Some("acme"));
        let call = Call::parse("notify", json!({"message": "hi"})).unwrap();
        assert_eq!(target_of(&call), None);
    }
}
