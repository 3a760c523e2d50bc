//! The benchmark app on a loopback port, for `benches/loopback.sh` (wrk).
//!
//! ```not_rust
//! cargo run --release --example bench_server -- --port 3001           # with the layer
//! cargo run --release --example bench_server -- --port 3002 --bare    # without it
//! ```
//!
//! Routes: `GET /hello`, `GET /users/{id}`, `POST /echo`, `GET /stream`; with the layer,
//! also the stats router (`/stats`, `/stats/data`), which is not recorded.

use axum::serve::ListenerExt;
use tower_stats::Stats;

#[path = "../benches/support/app.rs"]
#[allow(dead_code, unreachable_pub)]
mod app;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut bare = false;
    let mut port: u16 = 3000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bare" => bare = true,
            "--port" => {
                let value = args.next().ok_or("--port needs a value")?;
                port = value
                    .parse()
                    .map_err(|_| format!("not a port number: {value}"))?;
            }
            _ => {
                return Err(format!("usage: bench_server [--bare] [--port PORT], got {arg}").into())
            }
        }
    }
    let stats = Stats::new();
    // Both variants serve the same routes, the stats router included: the difference is the
    // layer alone.
    let app = if bare {
        app::routes().merge(stats.router())
    } else {
        app::routes().merge(stats.router()).layer(stats.layer())
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let variant = if bare { "bare" } else { "layered" };
    println!(
        "bench_server ({variant}) on http://{}",
        listener.local_addr()?
    );
    // No Nagle: pipelined responses would otherwise wait for the client's delayed ACK.
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            eprintln!("could not set TCP_NODELAY: {error}");
        }
    });
    axum::serve(listener, app).await?;
    Ok(())
}
