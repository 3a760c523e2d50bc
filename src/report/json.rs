//! The `/stats/data` JSON document.

use crate::Snapshot;

/// Renders a snapshot as the `/stats/data` document (strict JSON: non-finite numbers become
/// `null`).
///
/// # Example
///
/// ```
/// let stats = tower_stats::Stats::new();
/// let json = tower_stats::report::json::render(&stats.snapshot());
/// let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
/// assert_eq!(value["schema_version"], tower_stats::SCHEMA_VERSION);
/// assert_eq!(value["namespaces"]["http"]["requests_total"], 0);
/// ```
#[must_use]
pub fn render(snapshot: &Snapshot) -> Vec<u8> {
    // Serializing plain data into a Vec cannot fail: every map key is a string and serde_json
    // writes non-finite floats as `null`.
    serde_json::to_vec(snapshot).unwrap_or_else(|_| b"{}".to_vec())
}
