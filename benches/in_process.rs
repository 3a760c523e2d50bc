//! In-process cost of the stats layer, single-threaded, for callgrind and for the clock.
//!
//! ```not_rust
//! # a short `time` run (11 rounds of 2,000 requests), as a plain `cargo bench` does:
//! cargo bench --bench in_process
//! # interleaved rounds of bare, tower-http's in-flight counter, a minimal per-route latency
//! # layer (tests/common/minimal.rs), TraceLayer (no subscriber) and layered; medians in
//! # ns/request. With EVICT_KIB, each request is followed by a write to every cache line of
//! # that much other memory, as a server's network stack and buffers do between requests:
//! cargo bench --bench in_process -- time [ROUNDS] [REQUESTS_PER_ROUND] [EVICT_KIB]
//! # the same app driven by THREADS threads at once (default 2), each with a current-thread
//! # runtime, in interleaved rounds with the one-thread rounds: wall time per request, and the
//! # parallel efficiency of each layer (added ns on 1 thread / (THREADS x added wall ns)):
//! cargo bench --bench in_process -- parallel [ROUNDS] [REQUESTS_PER_THREAD] [THREADS]
//! # with the `tracing` feature: the time per span the stats `tracing` layer adds, from
//! # interleaved rounds of GET /spans (8 spans) under a registry without and with it:
//! cargo bench --bench in_process --features tracing -- spans [ROUNDS] [REQUESTS_PER_ROUND]
//! # request latency while another thread snapshots and renders /stats/data continuously:
//! cargo bench --bench in_process -- render [SECONDS]
//! # N requests of the mix (GET /hello, GET /users/{id}, 1 KiB POST /echo), for callgrind;
//! # benches/executable.sh builds the program in release and prints its path:
//! valgrind --tool=callgrind "$(benches/executable.sh in_process)" run layered 2000
//! ```
//!
//! `benches/callgrind.sh` runs `run` under callgrind for N and 2N requests and takes the
//! difference, so that start-up and set-up cancel. With the `tracing` feature, `run` also
//! takes `traced`, `spans-registry` and `spans-traced` (see [`TRACED`];
//! `benches/callgrind.sh --tracing`). `cargo bench` adds `--bench` to the arguments;
//! it is ignored.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use tokio::runtime::Runtime;
use tower_stats::Stats;

#[path = "../tests/common/app.rs"]
#[allow(dead_code, unreachable_pub)]
mod app;

#[cfg(feature = "tracing")]
#[path = "../tests/common/traced.rs"]
#[allow(dead_code, unreachable_pub)]
mod traced;

/// The variants, bare first and layered last.
const VARIANTS: [&str; 5] = ["bare", "in-flight", "minimal", "trace", "layered"];

const USAGE: &str = "usage: in_process run <bare|in-flight|minimal|trace|layered> <REQUESTS>
       in_process run <traced|spans-registry|spans-traced> <REQUESTS>   (feature tracing)
       in_process spans [ROUNDS] [REQUESTS_PER_ROUND]                   (feature tracing)
       in_process time [ROUNDS] [REQUESTS_PER_ROUND] [EVICT_KIB]
       in_process parallel [ROUNDS] [REQUESTS_PER_THREAD] [THREADS]
       in_process render [SECONDS]
       in_process            (a short time run: 11 rounds of 2,000 requests)";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` adds `--bench` after the arguments; it carries no meaning here.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let arg = |i: usize, default: u64| -> Result<u64, String> {
        args.get(i).map_or(Ok(default), |s| {
            s.parse().map_err(|_| format!("not a number: {s}"))
        })
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match args.first().map(String::as_str) {
        #[cfg(feature = "tracing")]
        Some("run") if args.get(1).is_some_and(|v| TRACED.contains(&v.as_str())) => {
            run_traced(&rt, args.get(1).map_or("", String::as_str), arg(2, 2_000)?);
        }
        Some("run") => {
            let stats = app::variant_stats(args.get(1).map_or("", String::as_str));
            let app = args
                .get(1)
                .and_then(|name| app::variant(name, &stats))
                .ok_or(USAGE)?;
            let n = arg(2, 2_000)?;
            rt.block_on(app::send_mix(&app, n, 0));
        }
        Some("time") => {
            let evict = usize::try_from(arg(3, 0)?)?.saturating_mul(1024);
            time(&rt, arg(1, 41)?, arg(2, 20_000)?, &mut vec![0; evict]);
        }
        Some("parallel") => parallel(
            &rt,
            arg(1, 21)?,
            arg(2, 20_000)?,
            usize::try_from(arg(3, 2)?)?.max(1),
        ),
        Some("render") => render(&rt, Duration::from_secs(arg(1, 3)?)),
        #[cfg(feature = "tracing")]
        Some("spans") => time_spans(&rt, arg(1, 41)?, arg(2, 5_000)?),
        // A plain `cargo bench` (or `cargo test --benches`): a short run, not the full one.
        None => time(&rt, 11, 2_000, &mut []),
        Some(_) => return Err(USAGE.into()),
    }
    Ok(())
}

/// The variants with a `tracing` subscriber (feature `tracing`): `traced`, the mix through the
/// stats layer under a registry with the stats `tracing` layer (no span in the handlers);
/// `spans-registry` and `spans-traced`, `GET /spans` (8 spans per request) through the stats
/// layer under a registry without and with the stats `tracing` layer.
#[cfg(feature = "tracing")]
const TRACED: [&str; 3] = ["traced", "spans-registry", "spans-traced"];

/// Runs `n` requests of a [`TRACED`] variant with its subscriber as the thread's default.
#[cfg(feature = "tracing")]
fn run_traced(rt: &Runtime, variant: &str, n: u64) {
    let stats = Stats::new();
    let with_layer = variant != "spans-registry";
    let _default =
        tracing::dispatcher::set_default(&traced::dispatch(with_layer.then_some(&stats)));
    if variant == "traced" {
        let app = app::layered(&stats);
        rt.block_on(app::send_mix(&app, n, 0));
    } else {
        let app = traced::spans_app(&stats);
        rt.block_on(traced::send_spans(&app, n));
    }
}

/// Interleaved rounds of `GET /spans` (8 spans per request, through the stats layer) under a
/// registry without and with the stats `tracing` layer, rotating which goes first: the time
/// per request of each, and the median of the rounds' paired differences per span.
#[cfg(feature = "tracing")]
fn time_spans(rt: &Runtime, rounds: u64, n: u64) {
    let stats = Stats::new();
    let app = traced::spans_app(&stats);
    let dispatches = [traced::dispatch(None), traced::dispatch(Some(&stats))];
    let round = |with_layer: bool| {
        let _default = tracing::dispatcher::set_default(&dispatches[usize::from(with_layer)]);
        let start = Instant::now();
        rt.block_on(traced::send_spans(&app, n));
        start.elapsed().as_nanos() as f64 / n as f64
    };
    // Warm-up: the registry's span slots, the timeline slots, the call names.
    round(false);
    round(true);
    let (mut without, mut with, mut added) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..rounds {
        let (a, b) = if r % 2 == 0 {
            let a = round(false);
            (a, round(true))
        } else {
            let b = round(true);
            (round(false), b)
        };
        without.push(a);
        with.push(b);
        added.push((b - a) / traced::SPANS_PER_REQUEST as f64);
    }
    println!(
        "GET /spans ({} spans per request), {rounds} interleaved rounds of {n} requests",
        traced::SPANS_PER_REQUEST
    );
    println!(
        "registry            median {:8.1} ns/request",
        median(&mut without)
    );
    println!(
        "registry + stats    median {:8.1} ns/request",
        median(&mut with)
    );
    println!(
        "per span recorded, median of paired differences: {:+.1} ns",
        median(&mut added)
    );
}

/// Nanoseconds per request for `n` requests of the mix.
fn round(rt: &Runtime, app: &Router, n: u64, evict: &mut [u8]) -> f64 {
    let start = Instant::now();
    if evict.is_empty() {
        rt.block_on(app::send_mix(app, n, 0));
    } else {
        rt.block_on(async {
            for i in 0..n {
                app::send_mix(app, 1, i).await;
                // One write per 64-byte line: the next request finds its data in a colder cache.
                for byte in evict.iter_mut().step_by(64) {
                    *byte = byte.wrapping_add(1);
                }
                std::hint::black_box(&*evict);
            }
        });
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

/// Interleaved rounds of every variant, rotating which goes first.
fn time(rt: &Runtime, rounds: u64, n: u64, evict: &mut [u8]) {
    let stats = Stats::new();
    let apps: Vec<(&str, Router)> = VARIANTS
        .iter()
        .filter_map(|name| Some((*name, app::variant(name, &stats)?)))
        .collect();
    // Warm-up: caches, the allocator, the URI sets and histogram chunks.
    for (_, app) in &apps {
        round(rt, app, n, evict);
    }
    let mut times = vec![Vec::new(); apps.len()];
    let mut added = Vec::new();
    for r in 0..rounds {
        let mut this_round = vec![0.0; apps.len()];
        for k in 0..apps.len() {
            let i = (k + r as usize) % apps.len();
            this_round[i] = round(rt, &apps[i].1, n, evict);
        }
        added.push(this_round[apps.len() - 1] - this_round[0]);
        for (t, x) in times.iter_mut().zip(this_round) {
            t.push(x);
        }
    }
    println!("mix, {rounds} interleaved rounds of {n} requests, current-thread runtime, oneshot");
    if !evict.is_empty() {
        println!(
            "{} KiB of other memory written after each request (its time included)",
            evict.len() / 1024
        );
    }
    let bare = median(&mut times[0]);
    for ((name, _), t) in apps.iter().zip(&mut times) {
        let m = median(t);
        println!(
            "{name:<10} median {m:8.1} ns/request  min {:8.1}  {:+7.1} ns  {:.3}x bare",
            t[0],
            m - bare,
            m / bare
        );
    }
    println!(
        "layered - bare, median of paired differences: {:+.1} ns/request",
        median(&mut added)
    );
    assert_eq!(
        stats.snapshot().http.requests_total,
        (rounds + 1) * n,
        "every layered request was recorded"
    );
}

/// A thread with a current-thread runtime of its own that sends the mix through the app it
/// is told to, when told to.
struct Sender {
    jobs: std::sync::mpsc::Sender<(usize, u64)>,
}

impl Sender {
    fn spawn(apps: Vec<Router>, done: std::sync::mpsc::Sender<()>) -> Self {
        let (jobs, receive) = std::sync::mpsc::channel::<(usize, u64)>();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            for (variant, n) in receive {
                rt.block_on(app::send_mix(&apps[variant], n, 0));
                if done.send(()).is_err() {
                    return;
                }
            }
        });
        Self { jobs }
    }
}

/// Interleaved rounds of every variant, each round timing `n` requests on this thread and
/// `n` requests on each of `threads` threads at once (wall time over all their requests).
/// The threads live for the whole run, so that each keeps the write shard it was given.
fn parallel(rt: &Runtime, rounds: u64, n: u64, threads: usize) {
    let stats = Stats::new();
    let apps: Vec<(&str, Router)> = VARIANTS
        .iter()
        .filter_map(|name| Some((*name, app::variant(name, &stats)?)))
        .collect();
    let routers: Vec<Router> = apps.iter().map(|(_, app)| app.clone()).collect();
    let (done, finished) = std::sync::mpsc::channel();
    let senders: Vec<Sender> = (0..threads)
        .map(|_| Sender::spawn(routers.clone(), done.clone()))
        .collect();
    let together = |variant: usize| -> f64 {
        let start = Instant::now();
        for sender in &senders {
            sender.jobs.send((variant, n)).expect("the thread runs");
        }
        for _ in 0..threads {
            finished.recv().expect("the thread runs");
        }
        start.elapsed().as_nanos() as f64 / (n as f64 * threads as f64)
    };
    // Warm-up, both ways.
    for (i, (_, app)) in apps.iter().enumerate() {
        round(rt, app, n, &mut []);
        together(i);
    }
    let (mut one, mut many) = (vec![Vec::new(); apps.len()], vec![Vec::new(); apps.len()]);
    let (mut added_one, mut added_many) =
        (vec![Vec::new(); apps.len()], vec![Vec::new(); apps.len()]);
    for r in 0..rounds {
        let mut this_one = vec![0.0; apps.len()];
        let mut this_many = vec![0.0; apps.len()];
        for k in 0..apps.len() {
            let i = (k + r as usize) % apps.len();
            this_one[i] = round(rt, &apps[i].1, n, &mut []);
            this_many[i] = together(i);
        }
        for i in 0..apps.len() {
            one[i].push(this_one[i]);
            many[i].push(this_many[i]);
            added_one[i].push(this_one[i] - this_one[0]);
            added_many[i].push(this_many[i] - this_many[0]);
        }
    }
    println!(
        "mix, {rounds} interleaved rounds of {n} requests on 1 thread and {n} on each of \
         {threads} threads at once (current-thread runtimes, oneshot)"
    );
    println!(
        "{:<10} {:>12} {:>12} {:>14} {:>14} {:>10}",
        "variant", "1 thread", "added", "threads, wall", "added wall", "efficiency"
    );
    for i in 0..apps.len() {
        let (a1, an) = (median(&mut added_one[i]), median(&mut added_many[i]));
        let efficiency = if i == 0 || an <= 0.0 {
            String::from("-")
        } else {
            format!("{:.2}", a1 / (threads as f64 * an))
        };
        println!(
            "{:<10} {:>9.1} ns {:>+9.1} ns {:>11.1} ns {:>+11.1} ns {:>10}",
            apps[i].0,
            median(&mut one[i]),
            a1,
            median(&mut many[i]),
            an,
            efficiency
        );
    }
    println!("(added: median of each round's paired difference with bare; efficiency: added on");
    println!(
        " 1 thread / ({threads} x added wall on {threads} threads), 1.0 when the layer's work"
    );
    println!(" runs in parallel as well as the app's)");
}

/// Per-request latencies of the mix on this thread for `duration`.
fn latencies(rt: &Runtime, app: &Router, duration: Duration) -> Vec<f64> {
    rt.block_on(async {
        let mut out = Vec::new();
        let end = Instant::now() + duration;
        let mut i = 0u64;
        while Instant::now() < end {
            for _ in 0..64 {
                let start = Instant::now();
                app::send_mix(app, 1, i).await;
                out.push(start.elapsed().as_nanos() as f64);
                i += 1;
            }
        }
        out
    })
}

fn summary(name: &str, mut values: Vec<f64>) {
    values.sort_by(f64::total_cmp);
    let q = |p: f64| values[((values.len() - 1) as f64 * p) as usize] / 1_000.0;
    println!(
        "{name:<34} n={:>7}  p50 {:>8.2} µs  p99 {:>8.2} µs  p99.9 {:>8.2} µs  max {:>9.2} µs",
        values.len(),
        q(0.5),
        q(0.99),
        q(0.999),
        q(1.0)
    );
}

/// Recording while another thread snapshots and renders `/stats/data` in a loop, at the sizes
/// of the render budget: if a lock were held across a render, requests would wait for it.
fn render(rt: &Runtime, duration: Duration) {
    let stats = app::report_stats();
    let app = app::report_app(&stats);
    rt.block_on(app::fill_report_sizes(&stats, &app));
    latencies(rt, &app, Duration::from_millis(200));

    let alone = latencies(rt, &app, duration);
    let stop = Arc::new(AtomicBool::new(false));
    let renderer = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut times = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                let json = tower_stats::report::json::render(&stats.snapshot());
                std::hint::black_box(json);
                times.push(start.elapsed().as_nanos() as f64);
            }
            times
        })
    };
    let during = latencies(rt, &app, duration);
    stop.store(true, Ordering::Relaxed);
    let renders = renderer.join().expect("the renderer finishes");
    let secs = duration.as_secs_f64();
    println!("256 URI sets, 100 slow requests, 1,000 in flight; mix on a current-thread runtime");
    println!(
        "requests/s: {:.0} alone, {:.0} while another thread renders /stats/data nonstop",
        alone.len() as f64 / secs,
        during.len() as f64 / secs
    );
    summary("request, nothing rendering", alone);
    summary("request, /stats/data rendering", during);
    summary("snapshot + JSON render", renders);
}
