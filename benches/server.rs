//! The benchmark app on a loopback port, for `benches/loopback.sh` (wrk).
//!
//! ```not_rust
//! cargo bench --bench server -- --port 3001              # with the layer
//! cargo bench --bench server -- --port 3002 --bare       # without it
//! cargo bench --bench server -- --port 3003 --in-flight  # tower-http's counter
//! cargo bench --bench server -- --port 3004 --minimal    # a minimal layer
//! ```
//!
//! Routes: `GET /hello`, `GET /users/{id}`, `POST /echo`, `GET /stream`, and the stats router
//! (`/stats`, `/stats/data`), which the layer does not record. `--in-flight` puts tower-http's
//! in-flight request counter over the routes instead of the stats layer: the cheapest useful
//! `Router::layer`, measured as the floor any such layer starts from. `--minimal` puts a minimal
//! per-route latency layer there instead (`tests/common/minimal.rs`): counters, one
//! histogram and two clock reads. Without arguments (a plain `cargo bench`, which passes only
//! `--bench`), it prints its usage and exits instead of serving forever.

use axum::serve::ListenerExt;
use tower_stats::Stats;

#[path = "../tests/common/app.rs"]
#[allow(dead_code, unreachable_pub)]
mod app;

const USAGE: &str = "usage: server [--bare | --in-flight | --minimal] [--port PORT]";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` adds `--bench` after the arguments; it carries no meaning here.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.is_empty() {
        println!("{USAGE}");
        println!("(nothing to measure without arguments; benches/loopback.sh starts the servers)");
        return Ok(());
    }
    let mut variant = "layered";
    let mut port: u16 = 3000;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bare" => variant = "bare",
            "--in-flight" => variant = "in-flight",
            "--minimal" => variant = "minimal",
            "--port" => {
                let value = args.next().ok_or("--port needs a value")?;
                port = value
                    .parse()
                    .map_err(|_| format!("not a port number: {value}"))?;
            }
            _ => return Err(format!("{USAGE}, got {arg}").into()),
        }
    }
    let stats = Stats::new();
    // Every variant serves the same routes, the stats router included: the difference is the
    // layer alone.
    let routes = app::routes().merge(stats.router());
    let app = match variant {
        "bare" => routes,
        "in-flight" => routes.layer(tower_http::metrics::InFlightRequestsLayer::pair().0),
        "minimal" => routes.layer(app::minimal::MinimalLayer),
        _ => routes.layer(stats.layer()),
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("server ({variant}) on http://{}", listener.local_addr()?);
    // No Nagle: pipelined responses would otherwise wait for the client's delayed ACK.
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            eprintln!("could not set TCP_NODELAY: {error}");
        }
    });
    axum::serve(listener, app).await?;
    Ok(())
}
