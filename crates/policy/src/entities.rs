//! The directory of known principals (policies/entities.toml): the facts Cedar policies
//! reason about but that a request cannot vouch for itself, such as the services an alert
//! rule may touch or the tenant a service account belongs to.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;

use cedar_policy::{Entity, EntityId, EntityTypeName, EntityUid, RestrictedExpression, Schema};
use serde::Deserialize;

use crate::error::{PolicyError, Result};
use crate::principal::{Principal, PrincipalKind};

/// The file beside the policies that lists every principal Steward knows.
pub const ENTITIES_FILE: &str = "entities.toml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntitiesFile {
    /// Services of the platform itself; every other service name is a tenant's.
    #[serde(default)]
    platform_services: Vec<String>,
    #[serde(default)]
    operator: BTreeMap<String, OperatorDef>,
    #[serde(default)]
    role: BTreeMap<String, RoleDef>,
    #[serde(default)]
    service_account: BTreeMap<String, ServiceAccountDef>,
    #[serde(default)]
    alert_rule: BTreeMap<String, AlertRuleDef>,
    #[serde(default)]
    webhook: BTreeMap<String, ToolsDef>,
    #[serde(default)]
    mcp: BTreeMap<String, McpDef>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OperatorDef {
    #[serde(default)]
    roles: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleDef {
    /// Free text for people reading the file; policies do not see it.
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceAccountDef {
    tenant: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertRuleDef {
    services: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolsDef {
    #[serde(default)]
    tools: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct McpDef {
    #[serde(default)]
    tools: Vec<String>,
    #[serde(default)]
    roles: Vec<String>,
}

/// Known principals as Cedar entities, and which services belong to the platform.
#[derive(Debug, Clone)]
pub(crate) struct Directory {
    pub platform_services: HashSet<String>,
    /// Each principal with the entities a request about it needs: itself, then its roles.
    pub principals: HashMap<Principal, Vec<Entity>>,
}

/// The platform's own services listed in `dir/entities.toml`, for the parts of Steward that
/// need the names without the policies: a tenant must never take one of them.
pub fn platform_services(dir: &Path) -> Result<Vec<String>> {
    let path = dir.join(ENTITIES_FILE);
    let src = std::fs::read_to_string(&path).map_err(|source| PolicyError::Io {
        path: path.clone(),
        source,
    })?;
    let file: EntitiesFile = toml::from_str(&src).map_err(|e| PolicyError::Entities {
        path,
        message: e.to_string(),
    })?;
    Ok(file.platform_services)
}

pub(crate) fn uid(type_name: &str, id: &str) -> std::result::Result<EntityUid, String> {
    let ty = EntityTypeName::from_str(type_name).map_err(|e| e.to_string())?;
    Ok(EntityUid::from_type_name_and_id(ty, EntityId::new(id)))
}

fn string_set(items: &[String]) -> RestrictedExpression {
    RestrictedExpression::new_set(items.iter().cloned().map(RestrictedExpression::new_string))
}

impl Directory {
    /// Loads entities.toml and checks every entity against the schema, so an attribute the
    /// policies rely on cannot be missing or mistyped at request time.
    pub fn load(path: &Path, schema: &Schema) -> Result<Directory> {
        let src = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Directory::parse(path, &src, schema)
    }

    pub fn parse(path: &Path, src: &str, schema: &Schema) -> Result<Directory> {
        let err = |message: String| PolicyError::Entities {
            path: path.to_path_buf(),
            message,
        };
        let file: EntitiesFile = toml::from_str(src).map_err(|e| err(e.to_string()))?;

        let mut principals: Vec<(Principal, Entity)> = Vec::new();
        let mut roles: HashMap<String, Entity> = HashMap::new();

        let mk = |kind: PrincipalKind,
                  id: &str,
                  attrs: Vec<(&str, RestrictedExpression)>,
                  parents: &[String]|
         -> Result<(Principal, Entity)> {
            let principal = Principal::parse(&format!("{}:{id}", kind.prefix()))?;
            let me = uid(kind.cedar_type(), id).map_err(err)?;
            let parents = parents
                .iter()
                .map(|r| uid("Role", r))
                .collect::<std::result::Result<HashSet<_>, _>>()
                .map_err(err)?;
            let attrs = attrs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect::<HashMap<_, _>>();
            let entity =
                Entity::new(me, attrs, parents).map_err(|e| err(format!("{principal}: {e}")))?;
            Ok((principal, entity))
        };

        for id in file.role.keys() {
            let (p, e) = mk(PrincipalKind::Role, id, vec![], &[])?;
            roles.insert(id.clone(), e.clone());
            principals.push((p, e));
        }
        let check_roles = |who: &str, rs: &[String]| -> Result<()> {
            for r in rs {
                if !file.role.contains_key(r) {
                    return Err(err(format!(
                        "{who} names role {r:?}, which has no [role.{r}] table"
                    )));
                }
            }
            Ok(())
        };
        let check_tools = |who: &str, tools: &[String]| -> Result<()> {
            for t in tools {
                if steward_tools::find(t).is_none() {
                    return Err(err(format!("{who} lists unknown tool {t:?}")));
                }
            }
            Ok(())
        };
        for (id, def) in &file.operator {
            check_roles(&format!("operator:{id}"), &def.roles)?;
            principals.push(mk(
                PrincipalKind::Operator,
                id,
                vec![("name", RestrictedExpression::new_string(id.clone()))],
                &def.roles,
            )?);
        }
        for (id, def) in &file.service_account {
            principals.push(mk(
                PrincipalKind::ServiceAccount,
                id,
                vec![(
                    "tenant",
                    RestrictedExpression::new_string(def.tenant.clone()),
                )],
                &[],
            )?);
        }
        for (id, def) in &file.alert_rule {
            principals.push(mk(
                PrincipalKind::AlertRule,
                id,
                vec![("services", string_set(&def.services))],
                &[],
            )?);
        }
        for (id, def) in &file.webhook {
            check_tools(&format!("webhook:{id}"), &def.tools)?;
            principals.push(mk(
                PrincipalKind::WebhookSource,
                id,
                vec![("tools", string_set(&def.tools))],
                &[],
            )?);
        }
        for (id, def) in &file.mcp {
            check_tools(&format!("mcp:{id}"), &def.tools)?;
            check_roles(&format!("mcp:{id}"), &def.roles)?;
            principals.push(mk(
                PrincipalKind::McpClient,
                id,
                vec![("tools", string_set(&def.tools))],
                &def.roles,
            )?);
        }

        // Conformance with the schema: attribute names and types, allowed parents.
        cedar_policy::Entities::from_entities(
            principals.iter().map(|(_, e)| e.clone()),
            Some(schema),
        )
        .map_err(|e| err(format!("does not match the schema: {e}")))?;

        let mut by_principal = HashMap::new();
        for (p, e) in principals {
            let mut with_roles = vec![e.clone()];
            if let Some(rs) = role_names(&file, &p) {
                with_roles.extend(rs.iter().filter_map(|r| roles.get(r).cloned()));
            }
            by_principal.insert(p, with_roles);
        }
        Ok(Directory {
            platform_services: file.platform_services.into_iter().collect(),
            principals: by_principal,
        })
    }
}

fn role_names<'a>(file: &'a EntitiesFile, p: &Principal) -> Option<&'a [String]> {
    match p.kind {
        PrincipalKind::Operator => file.operator.get(&p.id).map(|d| d.roles.as_slice()),
        PrincipalKind::McpClient => file.mcp.get(&p.id).map(|d| d.roles.as_slice()),
        _ => None,
    }
}
