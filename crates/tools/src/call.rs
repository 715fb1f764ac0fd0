//! A validated, typed tool call: the only form executors ever see.

use serde_json::Value;

use crate::args::*;
use crate::catalogue::{self, ToolSpec};
use crate::error::{ErrorKind, ToolError};

macro_rules! typed_calls {
    ($($variant:ident($args:ty) = $tool:literal,)*) => {
        /// One catalogue tool with its typed arguments.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Call {
            $($variant($args),)*
        }

        impl Call {
            /// Every tool a `Call` can name, in declaration order.
            pub const TOOLS: &'static [&'static str] = &[$($tool,)*];

            /// The catalogue name of the tool.
            pub fn tool(&self) -> &'static str {
                match self {
                    $(Call::$variant(_) => $tool,)*
                }
            }

            /// The arguments as JSON (validated form, normalised field order).
            pub fn args_json(&self) -> Value {
                match self {
                    $(Call::$variant(a) => serde_json::to_value(a).unwrap_or(Value::Null),)*
                }
            }

            fn from_json(tool: &str, args: Value) -> Result<Call, ToolError> {
                match tool {
                    $($tool => serde_path_to_error::deserialize::<_, $args>(args)
                        .map(Call::$variant)
                        .map_err(|e| invalid(tool, e)),)*
                    _ => Err(ToolError::new(
                        ErrorKind::UnknownTool,
                        format!("unknown tool {tool:?}; `steward tools` lists the catalogue"),
                    )),
                }
            }
        }

        /// The JSON Schema of a tool's arguments, generated from its typed struct.
        pub fn schema(tool: &str) -> Option<Value> {
            let schema = match tool {
                $($tool => schemars::schema_for!($args),)*
                _ => return None,
            };
            serde_json::to_value(schema).ok()
        }
    };
}

typed_calls! {
    ServiceList(ServiceListArgs) = "service_list",
    ServiceStatus(ServiceArgs) = "service_status",
    ServiceLogs(ServiceLogsArgs) = "service_logs",
    ServiceMetrics(ServiceMetricsArgs) = "service_metrics",
    ServiceReleases(ServiceArgs) = "service_releases",
    ServiceRestart(ServiceArgs) = "service_restart",
    ServiceStop(ServiceArgs) = "service_stop",
    ServiceStart(ServiceArgs) = "service_start",
    ServiceDeploy(ServiceDeployArgs) = "service_deploy",
    ServiceRollback(ServiceRollbackArgs) = "service_rollback",
    ServiceSetLimits(ServiceSetLimitsArgs) = "service_set_limits",
    TenantCheckSubdomain(TenantCheckSubdomainArgs) = "tenant_check_subdomain",
    TenantProvision(TenantProvisionArgs) = "tenant_provision",
    TenantDestroy(TenantDestroyArgs) = "tenant_destroy",
    DbBackup(DbTargetArgs) = "db_backup",
    DbBackupsList(DbTargetArgs) = "db_backups_list",
    DbVerifyBackup(DbVerifyBackupArgs) = "db_verify_backup",
    DbRestore(DbRestoreArgs) = "db_restore",
    AuditSearch(AuditSearchArgs) = "audit_search",
    OriginCheck(OriginCheckArgs) = "origin_check",
    OriginCompare(OriginCompareArgs) = "origin_compare",
    Notify(NotifyArgs) = "notify",
    Respond(RespondArgs) = "respond",
}

/// The most specific error of a validation failure: for "not valid under any of the
/// schemas" (a string-or-object argument), the error deepest inside the value, so the
/// message names the field (`/product/hs`) rather than the whole argument.
fn deepest(err: &jsonschema::ValidationError<'_>) -> (String, String) {
    let mut best = (err.instance_path.to_string(), err.to_string());
    if let jsonschema::error::ValidationErrorKind::AnyOf { context } = &err.kind {
        for e in context.iter().flatten() {
            let candidate = deepest(e);
            if candidate.0.len() > best.0.len() {
                best = candidate;
            }
        }
    }
    best
}

/// The refusal of a call that sets too little (`minProperties`): it names what could be set
/// rather than counting properties ("service_set_limits needs at least one of memory_mb,
/// cpus or pids").
fn nothing_to_set(tool: &str, schema: &Value, args: &Value) -> ToolError {
    let empty = serde_json::Map::new();
    let given = args.as_object().unwrap_or(&empty);
    ToolError::new(
        ErrorKind::InvalidArgs,
        format!(
            "invalid arguments for {tool}: it needs at least one of {}",
            settings_left_out(schema, given)
        ),
    )
}

/// The optional arguments of `schema` that `args` leaves out or null, as a phrase:
/// "memory_mb, cpus or pids". Validation and the planner both say it when a call that must
/// set something (`minProperties`) sets nothing.
pub fn settings_left_out(schema: &Value, args: &serde_json::Map<String, Value>) -> String {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let left: Vec<&str> = schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|p| p.keys().map(String::as_str))
        .filter(|k| !required.contains(k) && args.get(*k).is_none_or(Value::is_null))
        .collect();
    match left.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => "another argument".to_string(),
    }
}

/// A typed-deserialization failure, naming the field at fault as the schema check does
/// (`at /product/hs`) when it is inside the arguments.
fn invalid(tool: &str, e: serde_path_to_error::Error<serde_json::Error>) -> ToolError {
    let path = e.path().to_string();
    let at = if path == "." {
        String::new()
    } else {
        format!(" at /{}", path.replace('.', "/"))
    };
    ToolError::new(
        ErrorKind::InvalidArgs,
        format!("invalid arguments for {tool}{at}: {}", e.into_inner()),
    )
}

impl Call {
    /// Validates `args` for `tool`: the tool must exist, the JSON must match the tool's
    /// schema (types, ranges, lengths), and it must deserialize into the typed struct, whose
    /// identifier types enforce the naming rules. Fails closed on anything else.
    pub fn parse(tool: &str, args: Value) -> Result<Call, ToolError> {
        let Some(schema) = schema(tool) else {
            return Self::from_json(tool, args);
        };
        if !args.is_object() {
            return Err(ToolError::new(
                ErrorKind::InvalidArgs,
                format!("invalid arguments for {tool}: expected a JSON object"),
            ));
        }
        // Typed deserialization first: its messages name the identifier rule that was broken.
        let call = Self::from_json(tool, args.clone())?;
        let validator = jsonschema::validator_for(&schema)
            .map_err(|e| ToolError::new(ErrorKind::Internal, format!("schema of {tool}: {e}")))?;
        if let Some(err) = validator.iter_errors(&args).next() {
            if let jsonschema::error::ValidationErrorKind::MinProperties { .. } = err.kind {
                return Err(nothing_to_set(tool, &schema, &args));
            }
            let (at, message) = deepest(&err);
            let at = if at.is_empty() { "/".to_string() } else { at };
            return Err(ToolError::new(
                ErrorKind::InvalidArgs,
                format!("invalid arguments for {tool} at {at}: {message}"),
            ));
        }
        Ok(call)
    }

    /// The catalogue entry of this call's tool.
    pub fn spec(&self) -> &'static ToolSpec {
        // Every variant is named after a catalogue entry and a test checks both lists agree;
        // should they ever drift, the call is treated as the most dangerous kind.
        catalogue::find(self.tool()).unwrap_or(&catalogue::UNLISTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_catalogue_tool_has_typed_args_and_a_schema() {
        for spec in catalogue::CATALOGUE {
            let schema = schema(spec.name).unwrap_or_else(|| panic!("{} has no schema", spec.name));
            assert_eq!(schema["type"], "object", "{}", spec.name);
        }
    }

    #[test]
    fn every_typed_call_has_its_own_catalogue_entry_and_a_stray_one_counts_as_destructive() {
        for tool in Call::TOOLS {
            let spec = catalogue::find(tool).unwrap_or_else(|| panic!("{tool} is not listed"));
            assert_eq!(spec.name, *tool);
        }
        assert_eq!(Call::TOOLS.len(), catalogue::CATALOGUE.len());
        assert_eq!(
            catalogue::UNLISTED.effect,
            steward_protocol::Effect::Destructive
        );
        assert!(catalogue::find(catalogue::UNLISTED.name).is_none());
    }

    #[test]
    fn valid_calls_parse_to_their_variant() {
        let c = Call::parse(
            "service_rollback",
            json!({"service": "rentguy", "to": "yesterday"}),
        )
        .unwrap();
        assert_eq!(c.tool(), "service_rollback");
        assert_eq!(c.spec().name, "service_rollback");
        assert_eq!(
            c.args_json(),
            json!({"service": "rentguy", "to": "yesterday"})
        );
    }

    #[test]
    fn origin_args_take_a_stored_id_or_an_inline_bill() {
        let stored = Call::parse(
            "origin_check",
            json!({"product": "bike-1", "agreement": "uk-eu-tca"}),
        )
        .unwrap();
        assert!(matches!(
            stored,
            Call::OriginCheck(OriginCheckArgs {
                product: OriginProductRef::Stored(_),
                ..
            })
        ));
        let inline = Call::parse(
            "origin_check",
            json!({"agreement": "uk-eu-tca", "shipment_date": "2026-06-01",
                   "product": {"hs": "871200", "exw": 200, "fob": "210.50"},
                   "materials": [{"hs": "871491", "value": 60, "origin": "non-originating",
                                  "declaration": {"kind": "ltsd", "valid_from": "2026-01-01", "valid_to": "2026-12-31"}}]}),
        )
        .unwrap();
        assert_eq!(inline.tool(), "origin_check");
        let compare = Call::parse(
            "origin_compare",
            json!({"product": "bike-1", "agreements": ["uk-eu-tca", "uk-canada"]}),
        )
        .unwrap();
        assert_eq!(compare.spec().effect, steward_protocol::Effect::Read);
        let err = Call::parse(
            "origin_compare",
            json!({"product": "bike-1", "agreements": ["uk-eu-tca", "eu"]}),
        )
        .unwrap_err();
        assert!(err.message.contains("/agreements/1"), "{err}");
        for (args, needle) in [
            (
                json!({"agreement": "uk-eu-tca", "product": {"hs": "8712", "exw": 1}}),
                "/product/hs",
            ),
            (
                json!({"agreement": "uk-eu-tca", "product": {"hs": "871200", "exw": -1}}),
                "/product/exw",
            ),
            (
                json!({"agreement": "uk-eu-tca", "product": {"hs": "871200", "exw": 1, "colour": "red"}}),
                "unknown field `colour`",
            ),
            (
                json!({"agreement": "uk-eu-tca", "product": 7}),
                "product: expected",
            ),
            (
                json!({"agreement": "uk-japan", "product": "bike-1"}),
                "/agreement",
            ),
        ] {
            let err = Call::parse("origin_check", args.clone()).unwrap_err();
            assert!(err.message.contains(needle), "{args}: {err}");
        }
    }

    #[test]
    fn bad_input_gets_a_clear_error() {
        let cases = [
            ("rm_rf", json!({}), ErrorKind::UnknownTool, "unknown tool"),
            (
                "service_status",
                json!("rentguy"),
                ErrorKind::InvalidArgs,
                "JSON object",
            ),
            (
                "service_status",
                json!({}),
                ErrorKind::InvalidArgs,
                "missing field `service`",
            ),
            (
                "service_status",
                json!({"service": 7}),
                ErrorKind::InvalidArgs,
                "invalid type",
            ),
            (
                "service_status",
                json!({"service": "x; DROP"}),
                ErrorKind::InvalidArgs,
                "must be lowercase",
            ),
            (
                "service_status",
                json!({"service": "rentguy", "force": true}),
                ErrorKind::InvalidArgs,
                "unknown field `force`",
            ),
            (
                "service_logs",
                json!({"service": "rentguy", "tail": 0}),
                ErrorKind::InvalidArgs,
                "/tail",
            ),
            (
                "tenant_provision",
                json!({"subdomain": "traefik"}),
                ErrorKind::InvalidArgs,
                "reserved",
            ),
            (
                "service_set_limits",
                json!({"service": "rentguy", "cpus": -1.0}),
                ErrorKind::InvalidArgs,
                "/cpus",
            ),
        ];
        for (tool, args, kind, needle) in cases {
            let err = Call::parse(tool, args.clone()).unwrap_err();
            assert_eq!(err.kind, kind, "{tool} {args}: {err}");
            assert!(err.message.contains(needle), "{tool} {args}: {err}");
        }
    }
}
