//! Policy decides whether a validated call may run: Allow, NeedsApproval or Deny, failing
//! closed. It sees only protocol and tool types, never executors or the model.
//!
//! - [`PolicySet`] vets one call with Cedar policies from `policies/` (schema-validated,
//!   their `@example`s checked at load). Approval is a policy annotation; see
//!   `policies/README.md`.
//! - [`Guards`] add what a stateless policy cannot see: rate limits, a blast-radius cap on
//!   destructive calls and one write per target at a time.

mod entities;
mod error;
mod examples;
mod guards;
mod principal;
mod resource;
pub mod rules;
mod vet;

pub use entities::{platform_services, ENTITIES_FILE};
pub use error::{PolicyError, PolicyError as Error, Result};
pub use examples::DecisionKind;
pub use guards::{
    BlastRadiusConfig, ConcurrencyMode, GuardKind, GuardRefusal, Guards, GuardsConfig, Permit,
    RateLimitConfig, TargetConfig, GUARDS_FILE,
};
pub use principal::{Principal, PrincipalKind};
pub use resource::target_of;
pub use vet::{describe, ApproveRequest, PolicySet, VetRequest, APPROVE_ACTION, SCHEMA_FILE};
