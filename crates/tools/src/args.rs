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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
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

/// `origin_check` arguments are specified in ORIGIN.md; they are typed by the origin issue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OriginCheckArgs(pub serde_json::Map<String, serde_json::Value>);

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
