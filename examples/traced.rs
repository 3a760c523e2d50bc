//! An app on a real embedded database whose request timelines fill themselves from `tracing`:
//! sqlx on SQLite in memory, the fmt subscriber on the console, and the stats layer.
//!
//! ```not_rust
//! cargo run --example traced --features tracing
//! ```
//!
//! Then `curl 127.0.0.1:3000/report` and open the request page it names: each query sqlx ran
//! is on the timeline, inside the handler's span, with its duration; the handler never calls
//! `start_event`. <http://127.0.0.1:3000/stats> shows the calls across requests. `PORT`
//! chooses the port (default 3000). It serves HTTP/1.1 and HTTP/2 (h2c with prior knowledge).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use sqlx::sqlite::{SqlitePool, SqlitePoolOptions};
use tower_stats::{RequestStats, Stats};
use tracing::{info, Instrument as _, Level};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer as _;

/// The app: `/report`, the stats router, and the stats layer over everything.
fn app(stats: &Stats, pool: SqlitePool) -> Router {
    Router::new()
        .route("/report", get(report))
        .with_state(pool)
        .merge(stats.router())
        .layer(stats.layer())
}

/// Runs several queries, one of them in a spawned task, and says where the timeline is.
#[tracing::instrument(skip_all)]
async fn report(
    State(pool): State<SqlitePool>,
    stats: RequestStats,
) -> Result<String, (StatusCode, String)> {
    let failed = |e: sqlx::Error| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    sqlx::query("INSERT INTO orders (customer, amount) VALUES (?, ?)")
        .bind("ada")
        .bind(12)
        .execute(&pool)
        .await
        .map_err(failed)?;
    let (orders, revenue): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM orders")
            .fetch_one(&pool)
            .await
            .map_err(failed)?;
    let top: Vec<(String, i64)> = sqlx::query_as(
        "SELECT customer, SUM(amount) AS total FROM orders GROUP BY customer ORDER BY total DESC LIMIT 3",
    )
    .fetch_all(&pool)
    .await
    .map_err(failed)?;
    // Work in a spawned task counts for the request through the span it runs in.
    let audit = tokio::spawn(
        {
            let pool = pool.clone();
            async move {
                sqlx::query("INSERT INTO audit (what) VALUES ('report')")
                    .execute(&pool)
                    .await
            }
        }
        .instrument(tracing::info_span!("audit")),
    );
    audit
        .await
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(failed)?;
    info!(orders, revenue, "report ready");

    let mut text = format!("{orders} orders, {revenue} in all\n");
    for (customer, total) in top {
        text.push_str(&format!("  {customer}: {total}\n"));
    }
    if let Some(id) = stats.id() {
        text.push_str(&format!("timeline: /stats/requests/{id}\n"));
    }
    Ok(text)
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
    // The console shows INFO; the stats layer is also given sqlx's query log (DEBUG).
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_filter(LevelFilter::INFO))
        .with(
            stats.tracing_layer().with_filter(
                Targets::new()
                    .with_default(Level::INFO)
                    .with_target("sqlx::query", Level::DEBUG),
            ),
        )
        .init();

    // One connection, kept open: an in-memory SQLite database lives as long as it does.
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect("sqlite::memory:")
        .await?;
    sqlx::query("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT NOT NULL, amount INTEGER NOT NULL)")
        .execute(&pool)
        .await?;
    sqlx::query("CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT NOT NULL)")
        .execute(&pool)
        .await?;
    for (customer, amount) in [("grace", 30), ("ada", 20), ("linus", 5)] {
        sqlx::query("INSERT INTO orders (customer, amount) VALUES (?, ?)")
            .bind(customer)
            .bind(amount)
            .execute(&pool)
            .await?;
    }

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    info!("tower-stats traced example listening on http://{addr}");
    println!("  try:       curl http://{addr}/report");
    println!("  timeline:  the request page /report names, or http://{addr}/stats/requests");
    println!("  calls:     http://{addr}/stats, or curl -s http://{addr}/stats/data");
    axum::serve(listener, app(&stats, pool)).await?;
    Ok(())
}
