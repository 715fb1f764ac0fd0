//! How a policy principal appears in approvals and audit records.

use steward_policy::{Principal, PrincipalKind};
use steward_protocol::Actor;

/// `kind:id`, the same form `Principal::parse` reads.
pub fn label(p: &Principal) -> String {
    format!("{}:{}", p.kind.prefix(), p.id)
}

/// People are users; everything else is a named service.
pub fn actor_of(p: &Principal) -> Actor {
    match p.kind {
        PrincipalKind::Operator => Actor::User { name: p.id.clone() },
        _ => Actor::Service { name: label(p) },
    }
}

/// The inverse of [`actor_of`]: the `kind:id` label the guards count an audited call under.
pub fn label_of_actor(actor: &Actor) -> String {
    match actor {
        Actor::User { name } => format!("{}:{name}", PrincipalKind::Operator.prefix()),
        Actor::Service { name } => name.clone(),
    }
}
