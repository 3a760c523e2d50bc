//! Application statistics next to the request statistics: a namespace with counters, a
//! gauge, a text, a computed value and a collection, updated from handlers; and custom events
//! on a request's timeline.
//!
//! ```not_rust
//! cargo run --example app_stats
//! curl http://127.0.0.1:3000/
//! curl -X POST http://127.0.0.1:3000/orders -d widget
//! curl -s http://127.0.0.1:3000/stats/data       # see namespaces.shop
//! curl -s http://127.0.0.1:3000/stats/requests   # the order's timeline: reserve, charge
//! curl -s http://127.0.0.1:3000/stats/events
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
use tower_stats::registry::{Collection, Counter, Gauge};
use tower_stats::{Combine, RegistryError, RequestStats, Stats};

/// Handles to the application's statistics, shared with the handlers as state.
#[derive(Clone)]
struct ShopStats {
    orders: Counter,
    visits: Counter,
    basket_size: Gauge,
    recent_orders: Collection,
}

impl ShopStats {
    fn register(stats: &Stats) -> Result<Self, RegistryError> {
        let shop = stats.namespace("shop")?;
        shop.text("currency")?.set("EUR");
        shop.computed("conversion_rate", Combine::Instance, |ns| {
            let visits = ns.number("visits_total").unwrap_or(0.0);
            let orders = ns.number("orders_total").unwrap_or(0.0);
            (if visits > 0.0 { orders / visits } else { 0.0 }).into()
        })?;
        Ok(Self {
            orders: shop.counter("orders_total", Combine::Sum)?,
            visits: shop.counter("visits_total", Combine::Sum)?,
            basket_size: shop.gauge("basket_size", Combine::Max)?,
            recent_orders: shop.list("recent_orders", 20)?,
        })
    }
}

#[derive(Serialize)]
struct OrderRecord {
    item: String,
    at: f64,
}

/// The app: a shop front and an order route that update the `shop` namespace.
fn app(stats: &Stats, shop: ShopStats) -> Router {
    Router::new()
        .route("/", get(front))
        .route("/orders", post(order))
        .with_state(shop)
        .merge(stats.router())
        .layer(stats.layer())
}

async fn front(State(shop): State<ShopStats>) -> &'static str {
    shop.visits.incr();
    "Welcome to the shop\n"
}

/// Places an order. Each step is a custom event on the request's timeline, visible at
/// `/stats/requests/{id}`.
async fn order(State(shop): State<ShopStats>, request: RequestStats, item: String) -> String {
    let reserve = request.start_event("stock.reserve");
    tokio::time::sleep(Duration::from_millis(15)).await;
    reserve.finish_with(&serde_json::json!({ "item": item, "quantity": 1 }));

    let charge = request.start_event("payment.charge");
    tokio::time::sleep(Duration::from_millis(40)).await;
    charge.finish();
    // An instant event; an end without a start would be an error returned here, never a panic.
    if let Err(e) = request.event("confirmation.sent") {
        eprintln!("statistics: {e}");
    }

    shop.orders.incr();
    shop.basket_size.set(item.len() as f64);
    let at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    // A record that fails to serialize is reported, never a reason to fail the order.
    if let Err(e) = shop.recent_orders.push(&OrderRecord { item, at }) {
        eprintln!("statistics: {e}");
    }
    format!(
        "order {} placed (request {})\n",
        shop.orders.get(),
        request
            .id()
            .map_or_else(|| "not recorded".to_owned(), |id| id.to_string())
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let stats = Stats::new();
    let shop = ShopStats::register(&stats)?;
    stats.log_event("shop opened");
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    println!("shop on http://{addr}/");
    println!("  order:    curl -X POST http://{addr}/orders -d widget");
    println!("  stats:    http://{addr}/stats  (JSON: http://{addr}/stats/data)");
    println!("  requests: curl -s http://{addr}/stats/requests");
    println!("  events:   curl -s http://{addr}/stats/events");
    axum::serve(listener, app(&stats, shop)).await?;
    Ok(())
}
