//! Steward's HTTP surface (`steward serve`): health checks, the Alertmanager intake and
//! signed webhooks, the `/v1` API (with its OpenAPI document) and `/metrics`, authenticated
//! by bearer tokens. `app(state) -> Router`, so tests can
//! drive it without a socket; [`serve`] runs it on a listener with graceful shutdown.
//!
//! Sources never act: handlers authenticate, parse, deduplicate and hand [`Event`]s to the
//! trigger engine through [`Triggers`], group-committed (see [`commit`]).
//!
//! [`Event`]: steward_protocol::Event

pub mod alertmanager;
pub mod api;
mod app;
pub mod chat;
pub mod commit;
pub mod console;
mod db;
mod error;
pub mod hooks;
pub mod limits;
pub mod mcp;
pub mod metrics;
pub mod openapi;
pub mod refusals;
mod state;
pub mod tokens;
pub mod triggers;
pub mod v1;

use std::future::Future;
use std::time::Duration;

use tokio::net::TcpListener;

pub use app::{app, MAX_BODY};
pub use chat::PlannerSource;
pub use error::{Error, Result};
pub use limits::RateLimit;
pub use state::{AppState, Parts};
pub use triggers::{Check, Readiness, Submission, Triggers};
pub use v1::PlatformView;

/// Serves [`app`] on `listener` until `shutdown` completes, then stops accepting, lets
/// in-flight requests finish for up to `drain_deadline`, commits every queued request and
/// flushes the refusal counters to the audit log.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain_deadline: Duration,
) -> Result<()> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server =
        axum::serve(nodelay(listener), app(state.clone())).with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
    let mut running = tokio::spawn(async move { server.await });
    let outcome = tokio::select! {
        res = &mut running => Some(res),
        () = shutdown => None,
    };
    let result = match outcome {
        Some(res) => flatten(res),
        None => {
            let _ = stop.send(());
            match tokio::time::timeout(drain_deadline, &mut running).await {
                Ok(res) => flatten(res),
                Err(_) => {
                    tracing::warn!(
                        deadline_ms = drain_deadline.as_millis() as u64,
                        "requests still running at the drain deadline were cut off"
                    );
                    running.abort();
                    Ok(())
                }
            }
        }
    };
    state.close().await?;
    result
}

/// Accepted connections without Nagle's algorithm: a streamed answer (SSE, MCP) is written
/// in several small pieces, and each would otherwise wait for the client's delayed ACK
/// (about 40 ms).
pub fn nodelay(listener: TcpListener) -> impl axum::serve::Listener<Addr = std::net::SocketAddr> {
    use axum::serve::ListenerExt;
    listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY could not be set");
        }
    })
}

fn flatten(res: std::result::Result<std::io::Result<()>, tokio::task::JoinError>) -> Result<()> {
    match res {
        Ok(r) => r.map_err(Error::Io),
        Err(e) => Err(Error::Io(std::io::Error::other(e))),
    }
}
