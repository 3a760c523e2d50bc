//! Which finished requests `{prefix}/requests` lists: its filters, read from the query string
//! and checked, and the records of a snapshot that match them.
//!
//! | Parameter | Matches a request |
//! |---|---|
//! | `uri_set` | counted in that URI set (the whole key, such as `GET /users/{id}`) |
//! | `status` | with that status code (`404`) or status class (`5xx`) |
//! | `min_seconds` | that took at least that many seconds |
//! | `call` | whose timeline has an entry with that label or call name (a span's name, an event's target such as `sqlx::query`) |
//!
//! Every filter given must match; an empty value is no filter. A value that cannot be
//! understood is an error (the router answers `400`), never silently ignored.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{RequestRecord, Snapshot};

/// Longest `uri_set` or `call` value accepted, in bytes.
const MAX_VALUE_BYTES: usize = 1024;

/// The filters of the request list; `None` is no filter.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct RequestFilter {
    /// The URI set key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri_set: Option<String>,
    /// A status code or class.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusFilter>,
    /// The least processing time, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_seconds: Option<f64>,
    /// The name of an event of the request's timeline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
}

/// A status filter: one code, or a class (`1xx` … `5xx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatusFilter {
    /// Exactly this code (100 to 599).
    Code(u16),
    /// Every code of this class: `5` is `5xx`.
    Class(u8),
}

impl fmt::Display for StatusFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code(code) => write!(f, "{code}"),
            Self::Class(class) => write!(f, "{class}xx"),
        }
    }
}

impl Serialize for StatusFilter {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl StatusFilter {
    /// `404` or `5xx` (any case); `None` for anything else.
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        let bytes = value.as_bytes();
        match bytes {
            [d @ b'1'..=b'5', x, y]
                if x.eq_ignore_ascii_case(&b'x') && y.eq_ignore_ascii_case(&b'x') =>
            {
                Some(Self::Class(d - b'0'))
            }
            [b'0'..=b'9', b'0'..=b'9', b'0'..=b'9'] => value
                .parse::<u16>()
                .ok()
                .filter(|code| (100..=599).contains(code))
                .map(Self::Code),
            _ => None,
        }
    }

    /// Whether `status` passes.
    #[must_use]
    pub fn matches(self, status: Option<u16>) -> bool {
        match (self, status) {
            (Self::Code(code), Some(status)) => status == code,
            (Self::Class(class), Some(status)) => status / 100 == u16::from(class),
            (_, None) => false,
        }
    }
}

/// A filter value that cannot be understood: the message says which and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError(String);

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FilterError {}

/// The raw parameters, as the query string gives them.
#[derive(Debug, Default, Deserialize)]
struct Params {
    uri_set: Option<String>,
    status: Option<String>,
    min_seconds: Option<String>,
    call: Option<String>,
}

impl RequestFilter {
    /// The filters of a query string (other parameters are left to others).
    ///
    /// # Errors
    ///
    /// A [`FilterError`] naming the parameter when a value is malformed: a status that is
    /// neither a code from 100 to 599 nor a class `1xx` … `5xx`, a `min_seconds` that is not
    /// a finite number of seconds at least 0, a value longer than 1,024 bytes, or a query
    /// string that is not `application/x-www-form-urlencoded`.
    ///
    /// # Example
    ///
    /// ```
    /// use tower_stats::report::requests::{RequestFilter, StatusFilter};
    ///
    /// let filter = RequestFilter::from_query(Some("uri_set=GET+%2Fusers%2F%7Bid%7D&status=5xx")).unwrap();
    /// assert_eq!(filter.uri_set.as_deref(), Some("GET /users/{id}"));
    /// assert_eq!(filter.status, Some(StatusFilter::Class(5)));
    /// assert!(RequestFilter::from_query(Some("status=600")).is_err());
    /// ```
    pub fn from_query(query: Option<&str>) -> Result<Self, FilterError> {
        let params: Params = match query {
            Some(q) => serde_urlencoded::from_str(q)
                .map_err(|_| FilterError("malformed query string".to_owned()))?,
            None => Params::default(),
        };
        let given = |v: Option<String>| v.filter(|v| !v.is_empty());
        let text = |name: &str, v: Option<String>| match given(v) {
            Some(v) if v.len() > MAX_VALUE_BYTES => Err(FilterError(format!(
                "`{name}` is too long: at most {MAX_VALUE_BYTES} bytes"
            ))),
            v => Ok(v),
        };
        let status = match given(params.status) {
            None => None,
            Some(v) => Some(StatusFilter::parse(&v).ok_or_else(|| {
                FilterError(
                    "`status` must be a status code from 100 to 599 (such as 404) or a class \
                     from 1xx to 5xx (such as 5xx)"
                        .to_owned(),
                )
            })?),
        };
        let min_seconds = match given(params.min_seconds) {
            None => None,
            Some(v) => Some(
                v.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .ok_or_else(|| {
                        FilterError(
                            "`min_seconds` must be a number of seconds, at least 0 (such as 0.5)"
                                .to_owned(),
                        )
                    })?,
            ),
        };
        Ok(Self {
            uri_set: text("uri_set", params.uri_set)?,
            status,
            min_seconds,
            call: text("call", params.call)?,
        })
    }

    /// Whether no filter is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Whether `record` passes every filter set.
    #[must_use]
    pub fn matches(&self, record: &RequestRecord) -> bool {
        self.uri_set
            .as_ref()
            .is_none_or(|set| record.uri_set == *set)
            && self.status.is_none_or(|s| s.matches(record.status))
            && self
                .min_seconds
                .is_none_or(|min| record.processing_seconds >= min)
            && self.call.as_ref().is_none_or(|call| {
                record
                    .events
                    .iter()
                    .any(|e| e.label == *call || e.call == *call)
            })
    }

    /// The finished requests of `snapshot` that pass, newest first: the recent requests, and
    /// the slow requests no longer among them.
    #[must_use]
    pub fn select<'a>(&self, snapshot: &'a Snapshot) -> Vec<&'a RequestRecord> {
        let http = &snapshot.http;
        let mut records: Vec<&RequestRecord> = http.recent_requests.iter().collect();
        for slow in &http.slow_requests {
            if !http.recent_requests.iter().any(|r| r.id == slow.id) {
                records.push(slow);
            }
        }
        records.retain(|r| self.matches(r));
        let end = |r: &RequestRecord| r.end_time.unwrap_or(r.start_time);
        records.sort_by(|a, b| end(b).total_cmp(&end(a)));
        records
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_and_classes() {
        assert_eq!(StatusFilter::parse("404"), Some(StatusFilter::Code(404)));
        assert_eq!(StatusFilter::parse("5xx"), Some(StatusFilter::Class(5)));
        assert_eq!(StatusFilter::parse("2XX"), Some(StatusFilter::Class(2)));
        for bad in [
            "", "99", "600", "6xx", "0xx", "4x", "+404", "4040", "abc", "٤٠٤",
        ] {
            assert_eq!(StatusFilter::parse(bad), None, "{bad}");
        }
        assert!(StatusFilter::Class(4).matches(Some(404)));
        assert!(!StatusFilter::Class(4).matches(Some(500)));
        assert!(!StatusFilter::Code(404).matches(None));
        assert_eq!(StatusFilter::Class(5).to_string(), "5xx");
    }

    #[test]
    fn parameters_are_checked() {
        assert!(RequestFilter::from_query(None).unwrap().is_empty());
        assert!(
            RequestFilter::from_query(Some("status=&uri_set=&format=json"))
                .unwrap()
                .is_empty()
        );
        let f = RequestFilter::from_query(Some("min_seconds=0.25&call=db.query")).unwrap();
        assert_eq!(f.min_seconds, Some(0.25));
        assert_eq!(f.call.as_deref(), Some("db.query"));
        for bad in [
            "min_seconds=-1",
            "min_seconds=NaN",
            "min_seconds=inf",
            "min_seconds=soon",
            "status=200ok",
        ] {
            assert!(RequestFilter::from_query(Some(bad)).is_err(), "{bad}");
        }
        let long = format!("call={}", "a".repeat(MAX_VALUE_BYTES + 1));
        assert!(RequestFilter::from_query(Some(&long)).is_err());
    }
}
