//! A tonic gRPC server with the standard health service, recorded by the stats layer, and the
//! stats routes on the same port.
//!
//! ```not_rust
//! PORT=50051 cargo run --example grpc
//! grpcurl -plaintext 127.0.0.1:50051 grpc.health.v1.Health/Check
//! curl -s 127.0.0.1:50051/stats/data
//! ```
//!
//! Each call is counted under its path (`POST /grpc.health.v1.Health/Check`), with its
//! `grpc-status` in `grpc_status_codes`; a `Watch` that streams several messages is a stream,
//! kept out of the latency figures. `PORT` chooses the port (default 50051). The server speaks
//! HTTP/2 (gRPC) and HTTP/1.1 (the dashboard in a browser: <http://127.0.0.1:50051/stats>).

use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic_health::pb::health_server::{Health, HealthServer};
use tower_stats::Stats;

/// The gRPC services and the stats routes on one router.
pub fn routes(stats: &Stats, health: HealthServer<impl Health>) -> Routes {
    let grpc = Routes::new(health).into_axum_router();
    Routes::from(grpc.merge(stats.router()))
}

/// Serves `routes` on `listener` with the stats layer over everything. The layer hands the
/// services tonic's own bodies (`generic_bodies`): nothing is converted to axum's body type.
pub async fn serve(
    listener: TcpListener,
    stats: &Stats,
    routes: Routes,
) -> Result<(), tonic::transport::Error> {
    let mut server = Server::builder()
        // HTTP/1.1 as well, for the dashboard in a browser.
        .accept_http1(true)
        .layer(stats.layer().generic_bodies());
    server
        .add_routes(routes)
        .serve_with_incoming(TcpIncoming::from(listener))
        .await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .map_err(|_| format!("PORT must be a port number, got {p:?}"))?,
        Err(_) => 50051,
    };
    let stats = Stats::new();
    let (reporter, health) = tonic_health::server::health_reporter();
    // The server as a whole ("") is serving.
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    println!("tower-stats gRPC example listening on {addr}");
    println!();
    println!("  try:       grpcurl -plaintext {addr} grpc.health.v1.Health/Check");
    println!("             grpcurl -plaintext {addr} grpc.health.v1.Health/Watch");
    println!("  dashboard: http://{addr}/stats");
    println!("  JSON:      curl -s http://{addr}/stats/data");
    println!("  metrics:   curl -s http://{addr}/stats/metrics");
    serve(listener, &stats, routes(&stats, health)).await?;
    Ok(())
}
