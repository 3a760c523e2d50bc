//! Small pieces shared by the pages' tables: display text, counts, durations, status and
//! outcome cells, and the note for rows left out.

use maud::{html, Markup};

use crate::report::format;
use crate::sanitize;

/// Longest string shown in a cell, in characters.
pub(super) const MAX_TEXT: usize = 200;

/// Most rows shown in one table; the rest are counted in a note.
pub(super) const MAX_ROWS: usize = 300;

/// Display text of a string from a request or the application: capped, no control characters.
pub(super) fn text(s: &str) -> String {
    sanitize::clean(s, MAX_TEXT)
}

/// `n` and the singular or plural noun: `1 open stream`, `2 open streams`.
pub(super) fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", format::count(n), if n == 1 { one } else { many })
}

/// A finite, non-negative number of seconds, or 0.
pub(super) fn seconds(x: f64) -> f64 {
    if x.is_finite() && x > 0.0 {
        x
    } else {
        0.0
    }
}

/// A duration that may be missing (no request in the window yet).
pub(super) fn opt_duration(seconds: Option<f64>) -> String {
    seconds.map_or_else(|| format::MISSING.to_owned(), format::duration)
}

/// A response status, or [`format::MISSING`] before the response head.
pub(super) fn status_text(status: Option<u16>) -> String {
    status.map_or_else(|| format::MISSING.to_owned(), |s| s.to_string())
}

/// The class of a status cell in a number column: `bad` for 5xx, `warn` for 4xx.
pub(super) fn status_class(status: Option<u16>) -> &'static str {
    match status {
        Some(500..) => "num bad",
        Some(400..=499) => "num warn",
        _ => "num",
    }
}

/// [`status_class`] for a cell that is not a number column.
pub(super) fn status_tone(status: Option<u16>) -> &'static str {
    match status {
        Some(500..) => "bad",
        Some(400..=499) => "warn",
        _ => "text",
    }
}

/// The class of an outcome cell: `bad` for errors and panics, `warn` for aborted requests.
pub(super) fn outcome_class(outcome: crate::Outcome) -> &'static str {
    match outcome {
        crate::Outcome::Error | crate::Outcome::Panicked => "bad",
        crate::Outcome::Aborted => "warn",
        _ => "text",
    }
}

/// A note counting the rows of a table left out beyond the first `shown`, if any.
pub(super) fn more_rows(shown: usize, total: usize) -> Markup {
    html! {
        @if total > shown {
            p.note { (format::count((total - shown) as u64)) " more not shown." }
        }
    }
}
