//! The event stream: a bounded log of what happened on this instance, newest first.
//!
//! Requests log `request_started` when they start and `request_finished` (or
//! `request_error`, `request_aborted`, `request_panicked`) with their status and duration
//! when they end; applications add their own with [`Stats::log_event`]. Only requests that
//! keep a detailed record (see [`StatsBuilder::record_fraction`] and
//! [`RequestStats::dont_record`]) are logged.
//!
//! The log keeps at most [`StatsBuilder::event_capacity`] events (the oldest dropped first)
//! and shows none older than [`StatsBuilder::event_max_age`]; its memory is allocated once.
//!
//! [`Stats::log_event`]: crate::Stats::log_event
//! [`StatsBuilder::record_fraction`]: crate::StatsBuilder::record_fraction
//! [`StatsBuilder::event_capacity`]: crate::StatsBuilder::event_capacity
//! [`StatsBuilder::event_max_age`]: crate::StatsBuilder::event_max_age
//! [`RequestStats::dont_record`]: crate::RequestStats::dont_record

use std::fmt::Write as _;

pub use crate::snapshot::StreamEvent;

/// Renders events in TileStache's plain-text layout: the current epoch second, a rule, the
/// newest event of each instance (numbered), a rule, then up to 250 events newest first, each
/// indented by a per-instance column so that instances read as separate streams. Times are
/// relative (`moments ago`, `3 minutes ago`).
#[must_use]
pub fn render_text(events: &[StreamEvent], now_epoch: f64) -> String {
    let mut out = String::with_capacity(64 * events.len().min(250) + 64);
    let _ = writeln!(out, "{}", now_epoch.max(0.0).trunc() as u64);
    out.push_str("----------\n");
    let mut seen: Vec<&str> = Vec::new();
    for (n, event) in events.iter().enumerate() {
        if seen.contains(&event.instance.as_str()) {
            continue;
        }
        seen.push(&event.instance);
        let _ = writeln!(
            out,
            "{:>3}. {:>5} {}, {}",
            n + 1,
            event.instance,
            event.message,
            crate::report::format::ago(event.age_seconds)
        );
    }
    out.push_str("----------\n");
    for event in events.iter().take(250) {
        let indent = " ".repeat(column(&event.instance));
        let _ = writeln!(
            out,
            "{indent} {} {}, {}",
            event.instance,
            event.message,
            crate::report::format::ago(event.age_seconds)
        );
    }
    out
}

/// A stable column (0 to 31) for an instance name: FNV-1a of its bytes.
fn column(instance: &str) -> usize {
    let hash = instance.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % 32) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(instance: &str, message: &str, age: f64) -> StreamEvent {
        StreamEvent {
            time: 1000.0 - age,
            age_seconds: age,
            instance: instance.to_owned(),
            kind: "application".to_owned(),
            message: message.to_owned(),
            ..StreamEvent::default()
        }
    }

    #[test]
    fn text_layout() {
        let events = [
            event("a:1", "Finished GET /x 200 in 0.001 seconds", 2.0),
            event("b:2", "hello", 20.0),
            event("a:1", "Started GET /x", 200.0),
        ];
        let text = render_text(&events, 1000.9);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "1000");
        assert_eq!(lines[1], "----------");
        assert_eq!(
            lines[2],
            "  1.   a:1 Finished GET /x 200 in 0.001 seconds, moments ago"
        );
        assert_eq!(lines[3], "  2.   b:2 hello, 20 seconds ago");
        assert_eq!(lines[4], "----------");
        let indent_a = " ".repeat(column("a:1"));
        assert_eq!(
            lines[5],
            format!("{indent_a} a:1 Finished GET /x 200 in 0.001 seconds, moments ago")
        );
        assert_eq!(
            lines[7],
            format!("{indent_a} a:1 Started GET /x, 3 minutes ago")
        );
        assert_eq!(lines.len(), 8);
    }

    #[test]
    fn columns_are_stable_and_bounded() {
        assert_eq!(column("host:1"), column("host:1"));
        assert!((0..1000).all(|i| column(&format!("h:{i}")) < 32));
    }
}
