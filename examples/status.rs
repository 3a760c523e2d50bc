//! A health status for load balancers: `/status`, and maintenance mode switched over HTTP or
//! from the application's own code.
//!
//! ```not_rust
//! cargo run --example status
//! ```
//!
//! Then, with `PORT` choosing the port (default 3000):
//!
//! ```not_rust
//! curl -i http://127.0.0.1:3000/status        # 200 {"application":"tower-stats",…,"status":"ok"}
//! curl -I http://127.0.0.1:3000/status        # HEAD: the same code and headers, no body
//! curl -X POST 'http://127.0.0.1:3000/stats/maintenance?on=true'
//! curl -i http://127.0.0.1:3000/status        # 503, Retry-After: 30, "maintenance"
//! curl -X POST -d on=false http://127.0.0.1:3000/stats/maintenance
//! curl -X POST http://127.0.0.1:3000/admin/drain            # drains itself for 10 s
//! curl -X POST 'http://127.0.0.1:3000/admin/fail?on=true'   # 500 "degraded"
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use tower_stats::{AppStatus, Stats};

/// What the application's own health check looks at; a real app would update it from a
/// background task (database pings, queue depth, …).
#[derive(Clone, Default)]
struct Health {
    failing: Arc<AtomicBool>,
}

#[derive(Clone)]
struct AppState {
    stats: Stats,
    health: Health,
}

/// The app: `/status`, the stats routes (with `POST /stats/maintenance`), two admin routes
/// that change the status from code, and the stats layer over everything.
fn app(stats: &Stats, health: &Health) -> Router {
    let state = AppState {
        stats: stats.clone(),
        health: health.clone(),
    };
    Router::new()
        .route("/", get(|| async { "Hello from the status example\n" }))
        .route("/admin/drain", post(drain))
        .route("/admin/fail", post(fail))
        .with_state(state)
        .merge(stats.status_router())
        .merge(stats.router())
        .layer(stats.layer())
}

/// Puts the app in maintenance for ten seconds, then back in service: what a deploy script
/// would do before stopping an instance.
async fn drain(State(state): State<AppState>) -> &'static str {
    let status = state.stats.status();
    status.set_maintenance(true);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        status.set_maintenance(false);
    });
    "draining for 10 s\n"
}

#[derive(Deserialize)]
struct FailParams {
    on: Option<bool>,
}

/// Makes the health check fail (`on=true`, the default) or pass (`on=false`).
async fn fail(State(state): State<AppState>, Query(params): Query<FailParams>) -> &'static str {
    let on = params.on.unwrap_or(true);
    state.health.failing.store(on, Ordering::SeqCst);
    if on {
        "health check failing\n"
    } else {
        "health check passing\n"
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .map_err(|_| format!("PORT must be a port number, got {p:?}"))?,
        Err(_) => 3000,
    };
    let stats = Stats::new();
    stats.set_application(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"));
    let status = stats.status();
    status.set_retry_after(Some(Duration::from_secs(30)));
    // Computed once per /status request, while maintenance is off.
    let health = Health::default();
    let check = health.clone();
    status.status_with(move || {
        if check.failing.load(Ordering::SeqCst) {
            AppStatus::from("degraded")
        } else {
            AppStatus::Ok
        }
    });

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    println!("tower-stats status example listening on http://{addr}");
    println!();
    println!("  status:      curl -i http://{addr}/status");
    println!("  maintenance: curl -X POST 'http://{addr}/stats/maintenance?on=true'");
    println!("               curl -X POST 'http://{addr}/stats/maintenance?on=false'");
    println!("  from code:   curl -X POST http://{addr}/admin/drain");
    println!("               curl -X POST 'http://{addr}/admin/fail?on=true'");
    println!("  dashboard:   http://{addr}/stats");
    axum::serve(listener, app(&stats, &health)).await?;
    Ok(())
}
