//! Ownership labels on every Docker object Steward creates. Inventory is read from these,
//! so an unlabelled container is invisible to Steward and can never be touched by it.

/// The service a container belongs to (`rentguy`, `psra`, `acme_tenant_42`, ...).
pub const SERVICE: &str = "steward.service";
/// `platform` or `tenant`.
pub const KIND: &str = "steward.kind";
/// The release id of the container within its service's history.
pub const RELEASE: &str = "steward.release";
/// Marks networks and other non-service objects Steward owns.
pub const OWNED: &str = "steward.owned";
