//! The final backup `tenant_destroy` takes before it removes anything.
//!
//! Backups belong to the backup executor ([`crate::backup`]): it dumps the schema with
//! `pg_dump -Fc`, records size, sha256 and row counts in a manifest, and lists and verifies
//! what it wrote. Destroy therefore takes its final backup through it, so that backup shows
//! up in `db_backups_list` and can be checked with `db_verify_backup` like any other.

use super::names::TenantNames;
use crate::env::Env;
use crate::Result;

/// Takes the final backup of the tenant's schema and returns its backup id
/// (`<subdomain>-YYYYMMDDTHHMMSSmmmZ`). Only called while the schema exists.
pub async fn final_backup(env: &Env, names: &TenantNames) -> Result<String> {
    crate::backup::backup_tenant_schema(env, &names.subdomain).await
}
