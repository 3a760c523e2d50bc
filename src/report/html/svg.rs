//! Pictures drawn on the server as inline SVG: the requests-per-minute sparkline, the bars of
//! the status classes and of the URI sets, and a request's timeline as a waterfall.

use maud::{html, Markup};

use super::cells::{opt_duration, plural, seconds, text, MAX_ROWS};
use crate::report::format;
use crate::sanitize;
use crate::RequestRecord;

/// Width and height of a [`sparkline`].
const SPARK_W: f64 = 240.0;
const SPARK_H: f64 = 40.0;

/// A sparkline of `points` (oldest first) as inline SVG named `label`: a line scaled to the
/// largest value, over a light area, with a dot on the newest point. Non-finite and negative
/// points count as 0; no point gives an empty frame. Its title lists the values.
pub(super) fn sparkline(points: &[f64], label: &str) -> Markup {
    let clean: Vec<f64> = points
        .iter()
        .map(|p| if p.is_finite() && *p > 0.0 { *p } else { 0.0 })
        .collect();
    let max = clean.iter().copied().fold(0.0_f64, f64::max);
    let step = if clean.len() > 1 {
        SPARK_W / (clean.len() - 1) as f64
    } else {
        0.0
    };
    let coords: Vec<(f64, f64)> = match clean.as_slice() {
        [] => Vec::new(),
        [only] => {
            let y = scale_y(*only, max);
            vec![(0.0, y), (SPARK_W, y)]
        }
        many => many
            .iter()
            .enumerate()
            .map(|(i, v)| (i as f64 * step, scale_y(*v, max)))
            .collect(),
    };
    let line: Vec<String> = coords
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect();
    let area = if coords.is_empty() {
        String::new()
    } else {
        format!(
            "0,{SPARK_H:.1} {} {SPARK_W:.1},{SPARK_H:.1}",
            line.join(" ")
        )
    };
    let values: Vec<String> = clean.iter().map(|v| format::number(*v)).collect();
    html! {
        svg.sparkline width=(SPARK_W) height=(SPARK_H) viewBox=(format!("0 0 {SPARK_W} {SPARK_H}"))
            role="img" aria-label=(label) {
            title { (label) ", oldest first: " (values.join(", ")) }
            @if let Some((x, y)) = coords.last() {
                polygon.area points=(area) {}
                polyline.line points=(line.join(" ")) fill="none" {}
                circle.now cx=(format!("{x:.1}")) cy=(format!("{y:.1}")) r="2.5" {}
            }
        }
    }
}

/// The y coordinate of `v` on a sparkline whose top is `max` (1 px margins).
fn scale_y(v: f64, max: f64) -> f64 {
    if max <= 0.0 {
        return SPARK_H - 1.0;
    }
    SPARK_H - 1.0 - (v / max) * (SPARK_H - 2.0)
}

/// Width of `value` out of `max` in a bar `width` wide; at least 1 when `value` is positive.
fn bar_width(value: f64, max: f64, width: f64) -> f64 {
    if !(value.is_finite() && max.is_finite()) || value <= 0.0 || max <= 0.0 {
        return 0.0;
    }
    (value / max * width).clamp(1.0, width)
}

/// Width of a URI set's latency bars and of its share bar.
const LATENCY_BAR: f64 = 100.0;
const SHARE_BAR: f64 = 44.0;

/// The share of responses in each status class (`1xx` to `5xx`, in order) as one bar split
/// in segments, each titled with its class and count. Empty classes have no segment.
pub(super) fn status_bar(classes: &[(&str, u64)]) -> Markup {
    let total: u64 = classes.iter().map(|(_, n)| n).sum();
    let mut x = 0.0;
    let segments: Vec<(usize, f64, f64, &str, u64)> = classes
        .iter()
        .enumerate()
        .filter(|(_, (_, n))| *n > 0)
        .map(|(i, (label, n))| {
            let w = *n as f64 / total as f64 * 1000.0;
            let seg = (i + 1, x, w, *label, *n);
            x += w;
            seg
        })
        .collect();
    html! {
        svg.statusbar width="100%" height="10" viewBox="0 0 1000 10" preserveAspectRatio="none"
            role="img" aria-label="Share of responses by status class" {
            rect.empty x="0" y="0" width="1000" height="10" {}
            @for (class, x, w, label, n) in &segments {
                rect class=(format!("s{class}")) x=(format!("{x:.2}")) y="0"
                    width=(format!("{w:.2}")) height="10" {
                    title { (label) ": " (n) }
                }
            }
        }
    }
}

/// A URI set's share of requests as a bar `part` out of `total` long.
pub(super) fn share_bar(part: u64, total: u64) -> Markup {
    html! {
        svg.bar width=(SHARE_BAR) height="10" viewBox=(format!("0 0 {SHARE_BAR} 10"))
            role="img" aria-label="share of requests" {
            rect.track x="0" y="0" width=(SHARE_BAR) height="10" {}
            rect.share x="0" y="0"
                width=(format!("{:.1}", bar_width(part as f64, total as f64, SHARE_BAR)))
                height="10" {}
        }
    }
}

/// A URI set's median and 99th percentile processing time as two bars on one track, to the
/// scale of `scale` seconds (the largest p99 of the table). A missing value has no bar.
pub(super) fn latency_bars(
    p50_seconds: Option<f64>,
    p99_seconds: Option<f64>,
    scale: f64,
) -> Markup {
    let p50 = p50_seconds.unwrap_or(0.0);
    let p99 = p99_seconds.unwrap_or(0.0);
    html! {
        svg.bar width=(LATENCY_BAR) height="12" viewBox=(format!("0 0 {LATENCY_BAR} 12"))
            role="img" aria-label="median and 99th percentile processing time" {
            title {
                "p50 " (opt_duration(p50_seconds))
                " · p99 " (opt_duration(p99_seconds))
            }
            rect.track x="0" y="5" width=(LATENCY_BAR) height="2" {}
            rect.p99 x="0" y="1"
                width=(format!("{:.1}", bar_width(p99, scale, LATENCY_BAR)))
                height="10" {}
            rect.p50 x="0" y="3"
                width=(format!("{:.1}", bar_width(p50, scale, LATENCY_BAR)))
                height="6" {}
        }
    }
}

/// Width, label column, row height and axis height of the timeline waterfall.
const FALL_W: f64 = 1100.0;
const FALL_LABEL: f64 = 230.0;
const FALL_RIGHT: f64 = 16.0;
const FALL_ROW: f64 = 22.0;
const FALL_AXIS: f64 = 22.0;

/// The timeline as a waterfall: the whole request on the first row, then one bar per event
/// at its offset, as long as it lasted, to the scale of the request's processing time (or of
/// the last event's end, if later). Instants are diamonds. Each bar's title says what it is.
pub(super) fn waterfall(record: &RequestRecord) -> Markup {
    let events = &record.events[..record.events.len().min(MAX_ROWS)];
    let total = seconds(record.processing_seconds);
    let scale = events
        .iter()
        .map(|e| seconds(e.offset_seconds) + seconds(e.duration_seconds))
        .fold(total, f64::max);
    let lane = FALL_W - FALL_LABEL - FALL_RIGHT;
    let x = |s: f64| -> f64 {
        if scale > 0.0 {
            FALL_LABEL + (seconds(s) / scale).min(1.0) * lane
        } else {
            FALL_LABEL
        }
    };
    let height = FALL_AXIS + (events.len() + 1) as f64 * FALL_ROW + 4.0;
    let ticks: Vec<(f64, &str)> = (0..=4)
        .map(|k| {
            let class = match k {
                0 => "tick first",
                4 => "tick last",
                _ => "tick",
            };
            (scale * f64::from(k) / 4.0, class)
        })
        .collect();
    let depths = super::calls::depths(record);
    // A nested entry's label is marked once per level.
    let rows: Vec<(f64, &crate::TimelineEvent, String)> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let depth = depths.get(i).copied().unwrap_or(0);
            let mark = "› ".repeat(depth.min(3));
            (FALL_AXIS + (i + 1) as f64 * FALL_ROW, e, mark)
        })
        .collect();
    let label = format!(
        "Timeline: {} over {}",
        plural(events.len() as u64, "event", "events"),
        format::duration(total)
    );
    html! {
        svg.waterfall width=(FALL_W) height=(height) viewBox=(format!("0 0 {FALL_W} {height}"))
            role="img" aria-label=(label) {
            title { (label) }
            @for (t, class) in &ticks {
                rect.grid x=(format!("{:.1}", x(*t))) y=(FALL_AXIS - 4.0) width="1"
                    height=(format!("{:.1}", height - FALL_AXIS)) {}
                text class=(class) x=(format!("{:.1}", x(*t))) y="13" { (format::duration(*t)) }
            }
            // The whole request.
            text.label x=(FALL_LABEL - 10.0) y=(FALL_AXIS + 15.0) { "whole request" }
            rect.lane x=(FALL_LABEL) y=(FALL_AXIS + 3.0) width=(lane) height="16" {}
            rect.total x=(FALL_LABEL) y=(FALL_AXIS + 5.0)
                width=(format!("{:.1}", (x(total) - FALL_LABEL).max(1.0))) height="12" {
                title { "whole request: " (format::duration(total)) }
            }
            @let (class, at) = duration_place(FALL_LABEL, x(total));
            text class=(class) x=(format!("{at:.1}")) y=(FALL_AXIS + 15.0) { (format::duration(total)) }
            @for (y, e, mark) in &rows {
                @let start = x(e.offset_seconds);
                @let end = x(seconds(e.offset_seconds) + seconds(e.duration_seconds));
                @let what = format!(
                    "{}: at +{} for {}",
                    text(&e.label),
                    format::duration(seconds(e.offset_seconds)),
                    format::duration(seconds(e.duration_seconds)),
                );
                text.label x=(FALL_LABEL - 10.0) y=(y + 15.0) { (mark) (sanitize::clean(&e.label, 30 - mark.chars().count())) }
                rect.lane x=(FALL_LABEL) y=(y + 3.0) width=(lane) height="16" {}
                @if e.timed || e.duration_seconds > 0.0 {
                    rect.event x=(format!("{start:.1}")) y=(y + 5.0)
                        width=(format!("{:.1}", (end - start).max(2.0))) height="12" {
                        title { (what) }
                    }
                } @else {
                    polygon.instant points=(format!(
                        "{start:.1},{:.1} {:.1},{:.1} {start:.1},{:.1} {:.1},{:.1}",
                        y + 5.0, start + 6.0, y + 11.0, y + 17.0, start - 6.0, y + 11.0
                    )) {
                        title { (what) }
                    }
                }
                @if e.duration_seconds > 0.0 {
                    @let (class, at) = duration_place(start, end);
                    text class=(class) x=(format!("{at:.1}")) y=(y + 15.0) {
                        (format::duration(seconds(e.duration_seconds)))
                    }
                }
            }
        }
    }
}

/// Where a bar's duration is written: after the bar when there is room, else inside it when
/// it is wide enough, else before it.
fn duration_place(start: f64, end: f64) -> (&'static str, f64) {
    if end + 90.0 <= FALL_W - FALL_RIGHT {
        ("dur", end + 8.0)
    } else if end - start >= 80.0 {
        ("dur inside", end - 6.0)
    } else {
        ("dur before", start - 8.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_scales_to_the_largest_point() {
        let svg = sparkline(&[0.0, 5.0, 10.0], "hits").into_string();
        assert!(
            svg.contains(r#"points="0.0,39.0 120.0,20.0 240.0,1.0""#),
            "{svg}"
        );
        assert!(
            svg.contains(r#"points="0,40.0 0.0,39.0 120.0,20.0 240.0,1.0 240.0,40.0""#),
            "{svg}"
        );
        assert!(svg.contains(r#"aria-label="hits""#), "{svg}");
        assert!(
            svg.contains("<title>hits, oldest first: 0, 5, 10</title>"),
            "{svg}"
        );
        assert!(
            svg.contains(r#"<circle class="now" cx="240.0" cy="1.0" r="2.5">"#),
            "{svg}"
        );
    }

    #[test]
    fn sparkline_edge_cases() {
        let empty = sparkline(&[], "x").into_string();
        assert!(
            empty.starts_with("<svg") && !empty.contains("polyline") && !empty.contains("circle"),
            "{empty}"
        );
        let one = sparkline(&[3.0], "x").into_string();
        assert!(one.contains(r#"points="0.0,1.0 240.0,1.0""#), "{one}");
        let flat = sparkline(&[0.0, 0.0], "x").into_string();
        assert!(flat.contains(r#"points="0.0,39.0 240.0,39.0""#), "{flat}");
        let odd = sparkline(&[f64::NAN, -1.0, f64::INFINITY, 2.0], "x").into_string();
        assert!(
            odd.contains(r#"points="0.0,39.0 80.0,39.0 160.0,39.0 240.0,1.0""#),
            "{odd}"
        );
    }

    #[test]
    fn durations_sit_beside_their_bars() {
        assert_eq!(duration_place(300.0, 400.0), ("dur", 408.0));
        assert_eq!(duration_place(300.0, 1080.0), ("dur inside", 1074.0));
        assert_eq!(duration_place(1050.0, 1070.0), ("dur before", 1042.0));
    }

    #[test]
    fn bar_widths() {
        assert_eq!(bar_width(0.0, 1.0, 100.0), 0.0);
        assert_eq!(bar_width(1e-9, 1.0, 100.0), 1.0);
        assert_eq!(bar_width(2.0, 1.0, 100.0), 100.0);
        assert_eq!(bar_width(f64::NAN, 1.0, 100.0), 0.0);
        assert_eq!(bar_width(1.0, 0.0, 100.0), 0.0);
    }
}
