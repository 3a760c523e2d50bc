//! The quickstart app publishing to Redis: run two of them on two ports against one
//! `redis-server`, and each shows both instances at `/stats`.
//!
//! ```not_rust
//! redis-server --port 6379 --save '' &
//! REDIS_URL=redis://127.0.0.1:6379/ PORT=3001 INSTANCE=web-1 cargo run --example cluster --features redis
//! REDIS_URL=redis://127.0.0.1:6379/ PORT=3002 INSTANCE=web-2 cargo run --example cluster --features redis
//! ```
//!
//! Then open <http://127.0.0.1:3001/stats> (every instance merged, with each one listed),
//! `?scope=local` for this instance only, or `?instance=web-2`. `REDIS_URL` is required;
//! `PORT` defaults to 3000, `INSTANCE` to `host:pid`, `PUBLISH_INTERVAL_MS` to 1000. Ctrl-C
//! stops the instance gracefully: it publishes once more as `stopped`.

use std::time::Duration;

use tower_stats::{RedisOptions, Stats};

#[path = "quickstart.rs"]
#[allow(dead_code, unreachable_pub)]
mod quickstart;

fn env_number(name: &str, default: u64) -> Result<u64, String> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|_| format!("{name} must be a whole number, got {v:?}")),
        Err(_) => Ok(default),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL")
        .map_err(|_| "REDIS_URL is required, such as redis://127.0.0.1:6379/")?;
    let port = u16::try_from(env_number("PORT", 3000)?).map_err(|_| "PORT is not a port")?;
    let interval = Duration::from_millis(env_number("PUBLISH_INTERVAL_MS", 1000)?);
    let mut builder = Stats::builder().redis(
        RedisOptions::new(url)
            .service("quickstart")
            .publish_interval(interval),
    );
    if let Ok(name) = std::env::var("INSTANCE") {
        builder = builder.instance(name);
    }
    let stats = builder.build()?;
    stats.set_application(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    println!("tower-stats cluster example listening on http://{addr}");
    println!("  dashboard (every instance): http://{addr}/stats");
    println!("  this instance only:         http://{addr}/stats?scope=local");
    println!("  JSON:                       curl -s 'http://{addr}/stats/data?scope=cluster'");
    println!(
        "  pause every instance:       curl -X POST 'http://{addr}/stats/pause?scope=cluster'"
    );
    axum::serve(listener, quickstart::app(&stats))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    stats.leave_cluster().await;
    Ok(())
}
