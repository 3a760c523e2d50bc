//! Resident memory under requests to distinct random paths: the layer's tables stay bounded.
//!
//! ```not_rust
//! cargo bench --bench memory_growth -- unmatched              # unmatched paths, 1,000,000
//! cargo bench --bench memory_growth -- hook                   # a hook returning the raw path
//! cargo bench --bench memory_growth -- hook 1000000           # the number of requests
//! cargo bench --bench memory_growth                           # a short run: 100,000 unmatched
//! ```
//!
//! `unmatched`: every path misses the routes, so all land in `GET <unmatched>`. `hook`: a
//! `uri_set_with` hook returns the raw path, so every request asks for a new URI set; the
//! table stops at `max_uri_sets` (256) and the rest go to `<overflow>`. Prints the resident
//! set size (from `/proc/self/statm`) before, after 100,000 requests and at the end. Without
//! arguments (a plain `cargo bench`, which passes only `--bench`), it makes a short run of
//! 100,000 unmatched requests.

use std::borrow::Cow;

use axum::body::Body;
use http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;
use tower_stats::Stats;

#[path = "../tests/common/app.rs"]
#[allow(dead_code, unreachable_pub)]
mod app;

/// Resident set size in bytes, or 0 where `/proc` is not available.
fn resident_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    pages * page_size()
}

/// The page size from the auxiliary vector (`AT_PAGESZ`), 4096 if it cannot be read.
fn page_size() -> u64 {
    const AT_PAGESZ: u64 = 6;
    std::fs::read("/proc/self/auxv")
        .ok()
        .and_then(|auxv| {
            auxv.chunks_exact(16).find_map(|entry| {
                let word = |b: &[u8]| u64::from_ne_bytes(b.try_into().ok()?).into();
                let key: Option<u64> = word(&entry[..8]);
                (key? == AT_PAGESZ).then(|| word(&entry[8..]))?
            })
        })
        .unwrap_or(4096)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` adds `--bench` after the arguments; it carries no meaning here.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let hook = match args.first().map(String::as_str) {
        None | Some("unmatched") => false,
        Some("hook") => true,
        Some(other) => {
            return Err(format!("usage: memory_growth [unmatched|hook] [N], got {other}").into())
        }
    };
    let total: u64 = match args.get(1) {
        Some(n) => n.parse().map_err(|_| format!("not a number: {n}"))?,
        // A plain `cargo bench` (or `cargo test --benches`): a short run.
        None if args.is_empty() => 100_000,
        None => 1_000_000,
    };
    let stats = if hook {
        Stats::builder()
            .uri_set_with(|parts| Some(Cow::Owned(parts.uri.path().to_owned())))
            .build()?
    } else {
        Stats::new()
    };
    let app = app::layered(&stats);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    let before = resident_bytes();
    let variant = if hook {
        "hook returning the raw path"
    } else {
        "unmatched"
    };
    println!("{total} requests to distinct random paths, {variant}, max_uri_sets 256");
    println!("{:>10} requests  RSS {:8.2} MiB", 0, mib(before));
    let mut x: u64 = 0x853c_49e6_748f_ea9b;
    let mut after_100k = before;
    rt.block_on(async {
        for i in 1..=total {
            // xorshift64*: distinct, random-looking paths.
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let path = format!("/r/{:016x}", x.wrapping_mul(0x2545_f491_4f6c_dd1d));
            let request = Request::get(path).body(Body::empty())?;
            let response = app.clone().oneshot(request).await?;
            response.into_body().collect().await?;
            if i == 100_000 {
                after_100k = resident_bytes();
                println!("{i:>10} requests  RSS {:8.2} MiB", mib(after_100k));
            }
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    let after = resident_bytes();
    let http = stats.snapshot().http;
    println!("{total:>10} requests  RSS {:8.2} MiB", mib(after));
    println!(
        "growth: {:.2} MiB over the first 100,000, {:.2} MiB after them; URI set keys {} (overflowed {}), requests recorded {}",
        mib(after_100k.saturating_sub(before)),
        mib(after.saturating_sub(after_100k)),
        http.uri_sets.len(),
        http.uri_sets_overflowed,
        http.requests_total
    );
    Ok(())
}
