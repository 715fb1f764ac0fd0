//! Steward's HTTP surface. `app(state) -> Router`, so tests can drive it without a socket.
