//! Typed arguments of every catalogue tool. The JSON Schemas under `tools/` are generated from
//! these structs (`steward tools schemas --write`), and a test fails when they drift.
//!
//! Unknown fields are refused, so a misspelt optional argument is an error, never silently
//! ignored.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ident::{BackupId, ImageRef, ServiceName, Subdomain};

/// Which services to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    Platform,
    Tenant,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceListArgs {
    /// Only platform services or only tenants; both when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ServiceKind>,
}

/// Arguments of the tools that take nothing but a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceArgs {
    /// Service name, e.g. `rentguy`, or a tenant such as `acme-research`.
    pub service: ServiceName,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceLogsArgs {
    pub service: ServiceName,
    /// Only lines newer than this: a duration (`10m`, `2h`, `1d`) or an RFC3339 time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// At most this many lines from the end (default 100, at most 10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub tail: Option<u32>,
    /// Only lines containing this text (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 200))]
    pub grep: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceMetricsArgs {
    pub service: ServiceName,
    /// Averaging window for CPU and network rates, e.g. `5s` (default 1s, at most 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceDeployArgs {
    pub service: ServiceName,
    /// Image to deploy; it must already be present on the host.
    pub image: ImageRef,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceRollbackArgs {
    pub service: ServiceName,
    /// `previous`, a release id such as `r3`, or a time: `yesterday`, `3h ago`, RFC3339.
    #[schemars(length(min = 1, max = 64))]
    pub to: String,
}

// At least one limit besides the service (`minProperties`): a call that sets none would
// change nothing, and the planner asks which limit is meant instead of proposing it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("minProperties" = 2))]
pub struct ServiceSetLimitsArgs {
    pub service: ServiceName,
    /// Memory limit in MiB (swap is limited to the same figure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 16, max = 65536))]
    pub memory_mb: Option<u32>,
    /// CPU limit in cores, e.g. 0.5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.01, max = 64.0))]
    pub cpus: Option<f64>,
    /// Maximum number of processes and threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 8, max = 65536))]
    pub pids: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantCheckSubdomainArgs {
    /// The wanted subdomain; any text is accepted and judged against the format rules.
    #[schemars(length(min = 1, max = 253))]
    pub subdomain: String,
}

/// Resource plan of a tenant container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TenantPlan {
    /// 512 MiB, 0.5 CPU, 100 PIDs.
    #[default]
    Small,
    /// 1 GiB, 1 CPU, 200 PIDs.
    Medium,
    /// 2 GiB, 2 CPUs, 400 PIDs.
    Large,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantProvisionArgs {
    pub subdomain: Subdomain,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<TenantPlan>,
    /// App image; defaults to the configured tenant app image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantDestroyArgs {
    /// The tenant's subdomain, as `service_list kind=tenant` shows it.
    pub tenant: ServiceName,
}

/// Arguments of the tools that take a backup target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DbTargetArgs {
    /// A tenant (its schema is dumped) or a platform service with a database.
    pub target: ServiceName,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DbVerifyBackupArgs {
    pub backup: BackupId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DbRestoreArgs {
    pub target: ServiceName,
    pub backup: BackupId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditSearchArgs {
    #[schemars(length(min = 1, max = 500))]
    pub query: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

/// The agreements the origin engine carries rules for. The schemas list them, so a model
/// cannot write "uk-japan" for `uk-japan-cepa` and a caller learns the ids from the schema.
pub const AGREEMENT_IDS: [&str; 3] = ["uk-eu-tca", "uk-japan-cepa", "uk-canada"];

/// `origin_check`: either `{product: "<stored product id>", agreement, shipment_date?}` or
/// the full inline bill of materials of ORIGIN.md (`product` is then an object and
/// `materials` the list). The origin engine validates the semantics (code lengths, values
/// against the ex-works price, dates, declarations) and names the field of any error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OriginCheckArgs {
    /// Agreement id: `uk-eu-tca`, `uk-japan-cepa` or `uk-canada`.
    #[schemars(extend("enum" = AGREEMENT_IDS))]
    pub agreement: String,
    /// A stored product's id, or the product itself (inline bill of materials).
    pub product: OriginProductRef,
    /// Shipment date, YYYY-MM-DD; required with an inline product, today when absent for a
    /// stored one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 10, max = 10))]
    pub shipment_date: Option<String>,
    /// The materials of an inline product (not allowed with a stored product id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub materials: Option<Vec<OriginMaterial>>,
}

/// `origin_compare`: under which of these agreements does the product qualify?
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OriginCompareArgs {
    /// A stored product's id, or the product itself (inline bill of materials).
    pub product: OriginProductRef,
    /// Agreement ids; all known agreements when empty.
    #[serde(default)]
    #[schemars(length(max = 10), extend("items" = {"type": "string", "enum": AGREEMENT_IDS}))]
    pub agreements: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 10, max = 10))]
    pub shipment_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub materials: Option<Vec<OriginMaterial>>,
}

/// A stored product id (a string) or an inline product (an object).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum OriginProductRef {
    /// The id of a product stored with `steward origin import-products`.
    Stored(#[schemars(length(min = 1, max = 64))] String),
    Inline(OriginProduct),
}

impl<'de> Deserialize<'de> for OriginProductRef {
    // By hand, so an inline product's error names its field instead of "did not match any
    // variant of untagged enum".
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(OriginProductRef::Stored(s)),
            v @ serde_json::Value::Object(_) => serde_json::from_value(v)
                .map(OriginProductRef::Inline)
                .map_err(|e| D::Error::custom(format!("product: {e}"))),
            _ => Err(D::Error::custom(
                "product: expected a stored product id (string) or an inline product (object)",
            )),
        }
    }
}

/// The product of an inline bill of materials (ORIGIN.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OriginProduct {
    /// Commodity code, 6 to 10 digits.
    #[schemars(regex(pattern = r"^[0-9]{6,10}$"))]
    pub hs: String,
    /// Ex-works price.
    pub exw: OriginAmount,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fob: Option<OriginAmount>,
    /// Canada: the transaction value, when it differs from the ex-works price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_value: Option<OriginAmount>,
    /// Canada: the net cost, for net-cost alternatives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_cost: Option<OriginAmount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_weight_kg: Option<OriginAmount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wholly_obtained: Option<bool>,
    /// Which subdivision of the rule applies, when the rule has several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 500))]
    pub subdivision: Option<String>,
    /// Codes of the specific processes carried out (as the verdict's conditions name them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 500))]
    pub description: Option<String>,
}

/// One material of an inline bill of materials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OriginMaterial {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 500))]
    pub name: Option<String>,
    /// Part id, for declarations stored with `steward origin import-declarations`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 500))]
    pub part: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 500))]
    pub supplier: Option<String>,
    #[schemars(regex(pattern = r"^[0-9]{6,10}$"))]
    pub hs: String,
    pub value: OriginAmount,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_kg: Option<OriginAmount>,
    /// `originating`, `non-originating` or `unknown` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<OriginStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wholly_obtained: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declaration: Option<OriginDeclaration>,
    /// The bill of materials of a sub-assembly, evaluated recursively.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bom: Option<Vec<OriginMaterial>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 500))]
    pub subdivision: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OriginStatus {
    Originating,
    NonOriginating,
    Unknown,
}

/// A supplier's declaration for a material.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OriginDeclaration {
    /// `ltsd` (long-term, at most 24 months; the default), `sd` or `other`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[schemars(length(min = 10, max = 10))]
    pub valid_from: String,
    #[schemars(length(min = 10, max = 10))]
    pub valid_to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 10, max = 10))]
    pub issued_on: Option<String>,
}

/// A non-negative amount: a JSON number or a decimal string (exact decimals are kept).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OriginAmount {
    Number(#[schemars(range(min = 0))] serde_json::Number),
    Text(#[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?$"))] String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    #[default]
    Info,
    Warning,
    Critical,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyArgs {
    #[schemars(length(min = 1, max = 2000))]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RespondArgs {
    #[schemars(length(min = 1, max = 4000))]
    pub text: String,
}
