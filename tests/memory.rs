//! The URI set table stays bounded when every request asks for a new key.
//!
//! `benches/memory_growth.rs` measures the resident memory under one million such requests.

use std::borrow::Cow;

use tower_stats::{Stats, OVERFLOW};

mod common;

use common::app;

const CAP: usize = 256;
const REQUESTS: u64 = 50_000;

#[tokio::test(flavor = "current_thread")]
async fn distinct_paths_through_a_raw_path_hook_stay_within_the_key_cap() {
    let stats = Stats::builder()
        .max_uri_sets(CAP)
        .uri_set_with(|parts| Some(Cow::Owned(parts.uri.path().to_owned())))
        .build()
        .expect("valid options");
    let app = app::layered(&stats);
    for i in 0..REQUESTS {
        app::get_path(&app, &format!("/r/{i:x}")).await;
    }
    let http = stats.snapshot().http;
    assert_eq!(http.requests_total, REQUESTS);
    assert!(
        http.uri_sets.len() <= CAP + 2,
        "{} URI set keys for a cap of {CAP}",
        http.uri_sets.len()
    );
    assert_eq!(http.uri_sets_overflowed, REQUESTS - CAP as u64);
    assert_eq!(http.uri_sets[OVERFLOW].count, REQUESTS - CAP as u64);
}

#[tokio::test(flavor = "current_thread")]
async fn distinct_unmatched_paths_share_one_key() {
    let stats = Stats::new();
    let app = app::layered(&stats);
    for i in 0..5_000u64 {
        app::get_path(&app, &format!("/r/{i:x}")).await;
    }
    let http = stats.snapshot().http;
    assert_eq!(http.uri_sets.len(), 1, "{:?}", http.uri_sets.keys());
    assert_eq!(http.uri_sets["GET <unmatched>"].count, 5_000);
}
