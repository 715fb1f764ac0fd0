//! Policy decides whether a validated call may run: Allow, NeedsApproval or Deny, failing
//! closed. It sees only protocol types, never executors or the model.
