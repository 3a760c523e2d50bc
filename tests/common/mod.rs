//! Helpers shared by the integration tests: each test file that needs them declares
//! `mod common;`.
//!
//! - `http`: build a request, send it through a router and collect the response body.
//! - `url`: resolve a relative link as a browser does.
//! - `promtool`: Prometheus' own checker of the metrics formats.
//! - `redis`: a real `redis-server` for one test (feature `redis`).
//! - `app`: the app every performance measurement drives, bare or with a layer (with the
//!   minimal comparison layer in `minimal.rs`); the benchmarks include the same file.

// Each test crate uses only some of the helpers.
#![allow(dead_code)]

#[allow(unreachable_pub)]
pub(crate) mod app;
pub(crate) mod http;
pub(crate) mod promtool;
#[cfg(feature = "redis")]
pub(crate) mod redis;
pub(crate) mod url;
