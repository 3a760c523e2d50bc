//! Formatting numbers for people: durations, byte sizes, rates, counts, times and
//! "… ago" texts, as the `/stats` page shows them.
//!
//! Every function is pure and total: any input, including NaN, infinities, negative and
//! huge values, gives a string, and a value that cannot be shown becomes [`MISSING`].
//!
//! # Example
//!
//! ```
//! use tower_stats::report::format;
//!
//! assert_eq!(format::duration(0.0125), "12.5 ms");
//! assert_eq!(format::bytes(1536.0), "1.50 KiB");
//! assert_eq!(format::iso_time(1_795_240_800.0), "2026-11-21T06:00:00Z");
//! assert_eq!(format::ago(300.0), "5 minutes ago");
//! assert_eq!(format::duration(f64::NAN), format::MISSING);
//! ```

/// What is shown for a missing or unrepresentable value.
pub const MISSING: &str = "—";

/// `x` with three significant digits (`1.23`, `12.3`, `123`); `x` must be finite and
/// non-negative.
fn sig3(x: f64) -> String {
    if x >= 99.95 {
        format!("{x:.0}")
    } else if x >= 9.995 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// A duration given in seconds: `850 ns`, `12.5 µs`, `3.20 ms`, `1.25 s`, `2 min 5 s`,
/// `3 h 20 min`, `2 d 4 h`. Negative or non-finite values give [`MISSING`].
#[must_use]
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return MISSING.to_owned();
    }
    if seconds == 0.0 {
        return "0 s".to_owned();
    }
    // Sub-second values get three significant digits in the largest unit that keeps the
    // number at least 1 (moving up when rounding would give 1000).
    for (scale, unit) in [(1e9, "ns"), (1e6, "µs"), (1e3, "ms")] {
        let v = seconds * scale;
        if v < 999.5 {
            return format!("{} {unit}", sig3(v));
        }
    }
    if seconds < 59.995 {
        return format!("{} s", sig3(seconds));
    }
    // Longer durations are shown as two whole units.
    let total = seconds.round().min(u64::MAX as f64) as u64;
    let (days, rest) = (total / 86_400, total % 86_400);
    let (hours, rest) = (rest / 3_600, rest % 3_600);
    let (minutes, secs) = (rest / 60, rest % 60);
    if days > 0 {
        format!("{days} d {hours} h")
    } else if hours > 0 {
        format!("{hours} h {minutes} min")
    } else {
        format!("{minutes} min {secs} s")
    }
}

/// A byte count: `0 B`, `512 B`, `1.50 KiB`, `12.3 MiB`, `2.00 GiB`, `1.00 TiB`.
/// Negative or non-finite values give [`MISSING`].
#[must_use]
pub fn bytes(n: f64) -> String {
    if !n.is_finite() || n < 0.0 {
        return MISSING.to_owned();
    }
    if n < 1023.5 {
        return format!("{n:.0} B");
    }
    let mut v = n;
    for unit in ["KiB", "MiB", "GiB", "TiB", "PiB"] {
        v /= 1024.0;
        if v < 1023.5 || unit == "PiB" {
            return format!("{} {unit}", sig3(v));
        }
    }
    MISSING.to_owned()
}

/// A rate or other measured quantity with sensible precision: `0`, `0.0012`, `0.25`, `1.23`,
/// `42.5`, `42`, `1234`; whole numbers without decimals. Non-finite values give [`MISSING`].
#[must_use]
pub fn number(x: f64) -> String {
    if !x.is_finite() {
        return MISSING.to_owned();
    }
    if x == 0.0 {
        return "0".to_owned();
    }
    let sign = if x < 0.0 { "-" } else { "" };
    let a = x.abs();
    if a >= 1000.0 || (a.fract() == 0.0 && a < 1e15) {
        let rounded = a.round().min(u64::MAX as f64) as u64;
        return format!("{sign}{}", count(rounded));
    }
    if a < 0.01 {
        // Two significant digits for small rates, so they never read as zero.
        let digits = (-a.log10()).floor().clamp(0.0, 15.0) as usize + 2;
        return format!("{sign}{a:.digits$}");
    }
    format!("{sign}{}", sig3(a))
}

/// Events per second: `0/s`, `0.25/s`, `12.3/s`.
#[must_use]
pub fn per_second(x: f64) -> String {
    if !x.is_finite() {
        return MISSING.to_owned();
    }
    format!("{}/s", number(x))
}

/// Bytes per second: `0 B/s`, `1.50 KiB/s`.
#[must_use]
pub fn bytes_per_second(x: f64) -> String {
    let b = bytes(x);
    if b == MISSING {
        b
    } else {
        format!("{b}/s")
    }
}

/// A whole count, digits grouped by threes with a narrow no-break space from five digits on:
/// `0`, `1234`, `12 345`.
#[must_use]
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    if digits.len() < 5 {
        return digits;
    }
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 * 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202F}');
        }
        out.push(c);
    }
    out
}

/// Smallest and largest epoch seconds shown as a date: years 1 to 9999.
const MIN_EPOCH: f64 = -62_135_596_800.0;
const MAX_EPOCH: f64 = 253_402_300_799.0;

/// Unix epoch seconds as an ISO-8601 UTC time to the second: `2026-11-21T06:00:00Z`.
/// Times outside years 1 to 9999 and non-finite values give [`MISSING`].
#[must_use]
pub fn iso_time(epoch: f64) -> String {
    if !epoch.is_finite() || !(MIN_EPOCH..=MAX_EPOCH).contains(&epoch) {
        return MISSING.to_owned();
    }
    // In range, so the cast is exact enough and cannot overflow.
    let secs = epoch.floor() as i64;
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60
    )
}

/// Year, month and day of the day `days` after 1970-01-01 in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// How long ago, in TileStache's `nice_time` buckets: under 15 s `moments`; under 90 s
/// seconds; under 1.5 h minutes; under 1.5 days hours; under 1.5 weeks days; under 45 days
/// weeks; then months of 30 days. Counts are truncated. Negative values (clock skew) count as
/// `moments`; non-finite values give [`MISSING`].
#[must_use]
pub fn nice_time(seconds: f64) -> String {
    if !seconds.is_finite() {
        return MISSING.to_owned();
    }
    let s = seconds.max(0.0);
    let (n, unit) = if s < 15.0 {
        return "moments".to_owned();
    } else if s < 90.0 {
        (s, "second")
    } else if s < 5_400.0 {
        (s / 60.0, "minute")
    } else if s < 129_600.0 {
        (s / 3_600.0, "hour")
    } else if s < 907_200.0 {
        (s / 86_400.0, "day")
    } else if s < 3_888_000.0 {
        (s / 604_800.0, "week")
    } else {
        (s / 2_592_000.0, "month")
    };
    let n = n.trunc().min(u64::MAX as f64) as u64;
    format!("{} {unit}{}", count(n), if n == 1 { "" } else { "s" })
}

/// [`nice_time`] followed by ` ago`: `moments ago`, `42 seconds ago`, `3 hours ago`.
#[must_use]
pub fn ago(seconds: f64) -> String {
    if !seconds.is_finite() {
        return MISSING.to_owned();
    }
    format!("{} ago", nice_time(seconds))
}

/// Caps `s` at `max` characters (ending in `…` when cut) and replaces control characters, for
/// display.
#[must_use]
pub fn text(s: &str, max: usize) -> String {
    crate::sanitize::clean(s, max)
}

/// How a value named `key` is shown, guessed from the name as the page does for application
/// namespaces: `*_seconds` and `*_duration` as a duration, `*bytes*` as bytes (per second
/// when the name ends in `_per_second`), other `*_per_second` as a rate, `at`, `*_at`,
/// `time`, `*_time` and `timestamp` as an ISO time, whole numbers as counts, other numbers
/// with [`number`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// Seconds shown with [`duration`].
    Duration,
    /// A byte count shown with [`bytes()`].
    Bytes,
    /// Bytes per second shown with [`bytes_per_second`].
    BytesPerSecond,
    /// Events per second shown with [`per_second`].
    PerSecond,
    /// Unix epoch seconds shown with [`iso_time`].
    Time,
    /// Anything else: counts, [`number`], text.
    Plain,
}

impl Kind {
    /// The kind of the value named `key`.
    #[must_use]
    pub fn of(key: &str) -> Self {
        let key = key.to_ascii_lowercase();
        let per_second = key.ends_with("_per_second") || key.ends_with("_per_sec");
        if key.contains("bytes") {
            if per_second {
                Self::BytesPerSecond
            } else {
                Self::Bytes
            }
        } else if per_second {
            Self::PerSecond
        } else if key.ends_with("_seconds") || key.ends_with("_duration") || key == "duration" {
            Self::Duration
        } else if key == "at"
            || key.ends_with("_at")
            || key == "time"
            || key.ends_with("_time")
            || key == "timestamp"
        {
            Self::Time
        } else {
            Self::Plain
        }
    }
}

/// A JSON value named `key` formatted for people (see [`Kind`]); strings are capped at
/// `max` characters, nested arrays and objects shown as compact JSON. `now` (epoch seconds)
/// adds "… ago" to times. `null` gives [`MISSING`].
#[must_use]
pub fn json_value(key: &str, value: &serde_json::Value, now: f64, max: usize) -> String {
    use serde_json::Value;
    match value {
        Value::Null => MISSING.to_owned(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_owned(),
        Value::Number(n) => {
            let Some(x) = n.as_f64() else {
                return text(&n.to_string(), max);
            };
            match Kind::of(key) {
                Kind::Duration => duration(x),
                Kind::Bytes => bytes(x),
                Kind::BytesPerSecond => bytes_per_second(x),
                Kind::PerSecond => per_second(x),
                Kind::Time if x > 0.0 => {
                    let iso = iso_time(x);
                    if iso == MISSING || !now.is_finite() {
                        iso
                    } else {
                        format!("{iso} ({})", ago(now - x))
                    }
                }
                Kind::Time | Kind::Plain => match n.as_u64() {
                    Some(u) => count(u),
                    None => number(x),
                },
            }
        }
        Value::String(s) => text(s, max),
        other => text(&other.to_string(), max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations() {
        assert_eq!(duration(0.0), "0 s");
        assert_eq!(duration(1e-12), "0.00 ns");
        assert_eq!(duration(5e-7), "500 ns");
        assert_eq!(duration(0.000_000_85), "850 ns");
        assert_eq!(duration(0.000_999_6), "1.00 ms");
        assert_eq!(duration(0.000_012_5), "12.5 µs");
        assert_eq!(duration(0.0032), "3.20 ms");
        assert_eq!(duration(0.25), "250 ms");
        assert_eq!(duration(0.9999), "1.00 s");
        assert_eq!(duration(1.25), "1.25 s");
        assert_eq!(duration(59.99), "60.0 s");
        assert_eq!(duration(59.996), "1 min 0 s");
        assert_eq!(duration(125.0), "2 min 5 s");
        assert_eq!(duration(3.0 * 3600.0 + 20.0 * 60.0), "3 h 20 min");
        assert_eq!(duration(2.0 * 86_400.0 + 4.0 * 3600.0), "2 d 4 h");
        assert_eq!(duration(400.0 * 86_400.0), "400 d 0 h");
        assert!(duration(f64::MAX).starts_with(&format!("{} d ", u64::MAX / 86_400)));
    }

    #[test]
    fn durations_missing() {
        assert_eq!(duration(f64::NAN), MISSING);
        assert_eq!(duration(f64::INFINITY), MISSING);
        assert_eq!(duration(-1.0), MISSING);
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(bytes(0.0), "0 B");
        assert_eq!(bytes(1.0), "1 B");
        assert_eq!(bytes(1023.0), "1023 B");
        assert_eq!(bytes(1024.0), "1.00 KiB");
        assert_eq!(bytes(1536.0), "1.50 KiB");
        assert_eq!(bytes(1024.0 * 1023.9), "1.00 MiB");
        assert_eq!(bytes(12.3 * 1024.0 * 1024.0), "12.3 MiB");
        assert_eq!(bytes(2.0 * 1024f64.powi(3)), "2.00 GiB");
        assert_eq!(bytes(1024f64.powi(4)), "1.00 TiB");
        assert!(bytes(1e30).ends_with(" PiB"));
        assert_eq!(bytes(f64::NAN), MISSING);
        assert_eq!(bytes(-1.0), MISSING);
        assert_eq!(bytes_per_second(1536.0), "1.50 KiB/s");
        assert_eq!(bytes_per_second(f64::NAN), MISSING);
    }

    #[test]
    fn numbers_and_rates() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(0.000_123), "0.00012");
        assert_eq!(number(0.0012), "0.0012");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(1.23456), "1.23");
        assert_eq!(number(42.0), "42");
        assert_eq!(number(42.5), "42.5");
        assert_eq!(number(999.0), "999");
        assert_eq!(number(12_345.6), "12\u{202F}346");
        assert_eq!(number(-2.5), "-2.50");
        assert!(number(1e-300).starts_with("0.000"));
        assert_eq!(number(f64::NAN), MISSING);
        assert_eq!(per_second(0.0), "0/s");
        assert_eq!(per_second(12.34), "12.3/s");
        assert_eq!(per_second(f64::INFINITY), MISSING);
    }

    #[test]
    fn counts() {
        assert_eq!(count(0), "0");
        assert_eq!(count(9999), "9999");
        assert_eq!(count(12_345), "12\u{202F}345");
        assert_eq!(count(1_234_567), "1\u{202F}234\u{202F}567");
        assert_eq!(
            count(u64::MAX).chars().filter(|c| *c == '\u{202F}').count(),
            6
        );
    }

    #[test]
    fn iso_times() {
        assert_eq!(iso_time(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_time(0.999), "1970-01-01T00:00:00Z");
        assert_eq!(iso_time(1_795_240_800.0), "2026-11-21T06:00:00Z");
        assert_eq!(iso_time(951_782_400.0), "2000-02-29T00:00:00Z");
        assert_eq!(iso_time(4_107_542_399.0), "2100-02-28T23:59:59Z");
        assert_eq!(iso_time(-1.0), "1969-12-31T23:59:59Z");
        assert_eq!(iso_time(MIN_EPOCH), "0001-01-01T00:00:00Z");
        assert_eq!(iso_time(MAX_EPOCH), "9999-12-31T23:59:59Z");
        assert_eq!(iso_time(MAX_EPOCH + 1.0), MISSING);
        assert_eq!(iso_time(MIN_EPOCH - 1.0), MISSING);
        assert_eq!(iso_time(f64::NAN), MISSING);
        assert_eq!(iso_time(f64::NEG_INFINITY), MISSING);
    }

    #[test]
    fn nice_time_buckets() {
        assert_eq!(nice_time(0.0), "moments");
        assert_eq!(nice_time(-30.0), "moments");
        assert_eq!(nice_time(14.9), "moments");
        assert_eq!(nice_time(15.0), "15 seconds");
        assert_eq!(nice_time(89.9), "89 seconds");
        assert_eq!(nice_time(90.0), "1 minute");
        assert_eq!(nice_time(5_399.0), "89 minutes");
        assert_eq!(nice_time(5_400.0), "1 hour");
        assert_eq!(nice_time(129_599.0), "35 hours");
        assert_eq!(nice_time(129_600.0), "1 day");
        assert_eq!(nice_time(907_199.0), "10 days");
        assert_eq!(nice_time(907_200.0), "1 week");
        assert_eq!(nice_time(3_887_999.0), "6 weeks");
        assert_eq!(nice_time(3_888_000.0), "1 month");
        assert_eq!(nice_time(10.0 * 2_592_000.0), "10 months");
        assert_eq!(nice_time(f64::NAN), MISSING);
        assert_eq!(ago(300.0), "5 minutes ago");
        assert_eq!(ago(1.0), "moments ago");
        assert_eq!(ago(f64::NAN), MISSING);
        assert!(nice_time(f64::MAX).ends_with(" months"));
    }

    #[test]
    fn texts() {
        assert_eq!(text("abc", 10), "abc");
        assert_eq!(text("abcdef", 3), "abc…");
        assert_eq!(text("a\u{0}b\nc", 10), "a\u{FFFD}b\u{FFFD}c");
        assert_eq!(text("", 0), "");
        assert_eq!(text("é漢字🙂", 2), "é漢…");
    }

    #[test]
    fn kinds() {
        assert_eq!(Kind::of("processing_seconds"), Kind::Duration);
        assert_eq!(Kind::of("bytes_read_total"), Kind::Bytes);
        assert_eq!(Kind::of("bytes_written_per_second"), Kind::BytesPerSecond);
        assert_eq!(Kind::of("bytes_read_per_request"), Kind::Bytes);
        assert_eq!(Kind::of("requests_per_second"), Kind::PerSecond);
        assert_eq!(Kind::of("start_time"), Kind::Time);
        assert_eq!(Kind::of("at"), Kind::Time);
        assert_eq!(Kind::of("created_at"), Kind::Time);
        assert_eq!(Kind::of("orders_total"), Kind::Plain);
    }

    #[test]
    fn json_values() {
        let now = 1_795_240_800.0;
        assert_eq!(json_value("x", &json!(null), now, 10), MISSING);
        assert_eq!(json_value("x", &json!(true), now, 10), "yes");
        assert_eq!(
            json_value("orders", &json!(12_345), now, 10),
            "12\u{202F}345"
        );
        assert_eq!(json_value("ratio", &json!(0.5), now, 10), "0.50");
        assert_eq!(json_value("ratio", &json!(-3), now, 10), "-3");
        assert_eq!(
            json_value("wait_seconds", &json!(0.002), now, 10),
            "2.00 ms"
        );
        assert_eq!(json_value("bytes", &json!(2048), now, 10), "2.00 KiB");
        assert_eq!(
            json_value("at", &json!(now - 120.0), now, 10),
            "2026-11-21T05:58:00Z (2 minutes ago)"
        );
        assert_eq!(json_value("at", &json!(0), now, 10), "0");
        assert_eq!(json_value("at", &json!(1e300), now, 10), MISSING);
        assert_eq!(json_value("name", &json!("abcdef"), now, 3), "abc…");
        assert_eq!(json_value("l", &json!([1, "a"]), now, 100), "[1,\"a\"]");
    }
}
