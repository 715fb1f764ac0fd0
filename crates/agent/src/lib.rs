//! The orchestrator that owns one request path for every intent. It reaches executors only
//! through `steward_tools`' trait and never depends on `steward-exec`.
