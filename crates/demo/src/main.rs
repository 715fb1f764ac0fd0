//! The demo platform app. It is packaged `FROM scratch` as a static binary, so it reads all
//! settings from the environment and needs no files:
//!
//! - `PORT` (default 8080), `SERVICE_NAME`, `DEMO_VERSION` (baked into each image tag);
//! - `DATABASE_URL`: when set, `/` reports the row count of table `items` (created if missing);
//! - `DEMO_START_UNHEALTHY=1`: start failing `/health` (a release that never becomes healthy).
//!
//! `POST /admin/health/fail` and `POST /admin/health/ok` flip health at run time, so the
//! self-healing path can be exercised; `POST /admin/health/break` fails it for good (a
//! marker file survives restarts, so only a rollback heals the release).
//! `POST /admin/errors/on` makes every other request answer 500 until `/admin/errors/off` or
//! a restart. `GET /metrics` counts requests and errors by status and reports health, for
//! Prometheus. `steward-demo healthcheck` probes `/health` for Docker's HEALTHCHECK, since a
//! scratch image has no curl.

mod app;
mod metrics;
mod probe;

use std::net::SocketAddr;
use std::process::ExitCode;

fn main() -> ExitCode {
    let port: u16 = match std::env::var("PORT").map(|p| p.parse()) {
        Err(_) => 8080,
        Ok(Ok(port)) => port,
        Ok(Err(e)) => {
            eprintln!("steward-demo: PORT is not a port number: {e}");
            return ExitCode::from(2);
        }
    };
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
        return probe::healthcheck(port);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("steward-demo: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let settings = app::Settings::from_env();
    match runtime.block_on(app::serve(SocketAddr::from(([0, 0, 0, 0], port)), settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("steward-demo: {e}");
            ExitCode::FAILURE
        }
    }
}
