//! The `tracing` layer with a real instrumented library: sqlx on SQLite in memory. sqlx logs
//! each query as an event on target `sqlx::query` with its elapsed time, from the thread that
//! runs SQLite, inside the span the query was issued in; each query lands on the timeline of
//! the request that issued it, with its duration, and nobody calls `start_event`.
//!
//! sqlx emits from a thread of its own, which sees only the global subscriber: this file
//! installs one, for its single test.

#![cfg(feature = "tracing")]

mod common;

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use http::{Method, StatusCode};
use sqlx::sqlite::{SqlitePool, SqlitePoolOptions};
use tower_stats::Stats;
use tracing_subscriber::layer::SubscriberExt;

use common::http::{request, send};

#[tracing::instrument(skip_all)]
async fn report(State(pool): State<SqlitePool>) -> Result<String, StatusCode> {
    let failed = |_| StatusCode::INTERNAL_SERVER_ERROR;
    sqlx::query("INSERT INTO orders (amount) VALUES (?)")
        .bind(42)
        .execute(&pool)
        .await
        .map_err(failed)?;
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM orders")
        .fetch_one(&pool)
        .await
        .map_err(failed)?;
    let (total,): (i64,) = sqlx::query_as("SELECT SUM(amount) FROM orders")
        .fetch_one(&pool)
        .await
        .map_err(failed)?;
    Ok(format!("{count} {total}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlx_queries_land_on_the_timeline_with_their_durations() {
    let stats = Stats::new();
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(stats.tracing_layer()),
    )
    .expect("the only global subscriber of this test binary");
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .expect("SQLite in memory");
    sqlx::query("CREATE TABLE orders (id INTEGER PRIMARY KEY, amount INTEGER NOT NULL)")
        .execute(&pool)
        .await
        .expect("create table");
    let app = Router::new()
        .route("/report", get(report))
        .with_state(pool)
        .merge(stats.router())
        .layer(stats.layer());

    for n in 1..=2 {
        let response = send(&app, request(Method::GET, "/report")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.body(), &format!("{n} {}", 42 * n));
    }

    // Queries outside requests (the table's creation) are on no timeline.
    let recent = stats.recent_requests();
    assert_eq!(recent.len(), 2);
    for record in &recent {
        let labels: Vec<&str> = record.events.iter().map(|e| e.label.as_str()).collect();
        assert_eq!(
            labels,
            // sqlx's summaries of the statements.
            [
                "report",
                "INSERT INTO orders (amount) …",
                "SELECT COUNT(*) FROM orders",
                "SELECT SUM(amount) FROM orders"
            ],
            "{:?}",
            record.events
        );
        let handler = &record.events[0];
        assert_eq!((handler.source.as_str(), handler.parent), ("span", None));
        // sqlx's thread holds the handler's span for a moment after the last query: it may
        // close just after the request ended, and then shows open, running to the end.
        let handler_closed = !handler.open;
        for query in &record.events[1..] {
            assert_eq!(query.source, "event");
            assert_eq!(query.target.as_deref(), Some("sqlx::query"));
            assert_eq!(query.parent, Some(0), "inside the handler's span");
            assert!(query.timed);
            assert!(query.duration_seconds > 0.0, "{query:?}");
            // Within the handler's span, which is within the request.
            assert!(query.offset_seconds >= handler.offset_seconds, "{query:?}");
            assert!(
                query.offset_seconds + query.duration_seconds
                    <= handler.offset_seconds + handler.duration_seconds + 1e-6,
                "{query:?} {handler:?}"
            );
            assert!(
                query.offset_seconds + query.duration_seconds <= record.processing_seconds,
                "{query:?}"
            );
            let data = query.data.as_deref().unwrap_or_default();
            assert!(data.contains("rows_returned="), "{data}");
            if query.label.starts_with("INSERT") {
                // The whole statement, on one line.
                assert_eq!(
                    data,
                    "db.statement=INSERT INTO orders (amount) VALUES (?) rows_affected=1 rows_returned=0"
                );
            }
        }
        let totals: Vec<(&str, u64)> = record
            .call_totals
            .iter()
            .map(|t| (t.name.as_str(), t.count))
            .collect();
        if handler_closed {
            assert_eq!(totals, [("sqlx::query", 3), ("report", 1)]);
        } else {
            assert_eq!(totals, [("sqlx::query", 3)], "an open span is no call yet");
        }
    }
    let closed = recent.iter().filter(|r| !r.events[0].open).count() as u64;

    let calls = stats.snapshot().http.calls;
    let queries = &calls["sqlx::query"];
    assert_eq!((queries.count, queries.requests), (6, 2));
    assert_eq!(queries.per_request, 3.0);
    assert!(queries.total_seconds > 0.0);
    assert_eq!(queries.uri_sets["GET /report"].count, 6);
    assert_eq!(calls.get("report").map_or(0, |c| c.count), closed);
}
