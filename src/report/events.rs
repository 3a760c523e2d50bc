//! The `/stats/events` text: the event stream in TileStache's plain-text layout.

use std::fmt::Write as _;

use crate::report::format;
use crate::{Snapshot, StreamEvent};

/// Renders the snapshot's event stream ([`Snapshot::events`], newest first) as text, at the
/// time the snapshot was taken: the current epoch second, a rule, the newest event of each
/// instance (numbered), a rule, then up to 250 events newest first, each indented by a
/// per-instance column so that the instances of a merged snapshot read as separate streams.
/// Times are relative (`moments ago`, `3 minutes ago`).
///
/// # Example
///
/// ```
/// let stats = tower_stats::Stats::new();
/// stats.log_event("deployed");
/// let text = tower_stats::report::events::render(&stats.snapshot());
/// let lines: Vec<&str> = text.lines().collect();
/// assert_eq!(lines[1], "----------");
/// assert!(lines[2].ends_with(" deployed, moments ago"), "{text}");
/// ```
#[must_use]
pub fn render(snapshot: &Snapshot) -> String {
    render_text(&snapshot.events(), snapshot.generated_at)
}

/// The layout of [`render`], for `events` (newest first) shown at `now_epoch`.
fn render_text(events: &[StreamEvent], now_epoch: f64) -> String {
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
            format::ago(event.age_seconds)
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
            format::ago(event.age_seconds)
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
        // Each instance keeps its column: a:1 is indented by 9 spaces, b:2 by 13.
        assert_eq!(
            lines[5],
            "          a:1 Finished GET /x 200 in 0.001 seconds, moments ago"
        );
        assert_eq!(lines[6], "              b:2 hello, 20 seconds ago");
        assert_eq!(lines[7], "          a:1 Started GET /x, 3 minutes ago");
        assert_eq!(lines.len(), 8);
    }

    #[test]
    fn a_snapshot_renders_its_events_at_its_time() {
        let snapshot = Snapshot {
            generated_at: 1000.9,
            application_events: vec![crate::ApplicationEvent {
                time: 998.9,
                instance: "a:1".to_owned(),
                message: "hello".to_owned(),
            }],
            ..Snapshot::default()
        };
        assert_eq!(
            render(&snapshot),
            concat!(
                "1000\n",
                "----------\n",
                "  1.   a:1 hello, moments ago\n",
                "----------\n",
                "          a:1 hello, moments ago\n",
            )
        );
    }

    #[test]
    fn columns_are_fnv_1a_of_the_name_modulo_32() {
        // FNV-1a (64 bits) of "" is 0xcbf29ce484222325, of "a" 0xaf63dc4c8601ec8c and of
        // "foobar" 0x85944171f73967e8 (the published test vectors): the low five bits.
        assert_eq!(column(""), 0x25 % 32);
        assert_eq!(column("a"), 0x8c % 32);
        assert_eq!(column("foobar"), 0xe8 % 32);
        assert_eq!((column("host:1"), column("host:2")), (26, 7));
        // A thousand names use every one of the 32 columns.
        let used: std::collections::BTreeSet<usize> =
            (0..1000).map(|i| column(&format!("h:{i}"))).collect();
        assert_eq!(used, (0..32).collect());
    }
}
