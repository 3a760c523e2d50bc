//! Which requests are recorded at all: include and exclude rules on method, path and route.
//!
//! A [`Filter`] is an AND-group of rules; the builder takes any number of groups:
//!
//! - [`StatsBuilder::include`]: when at least one include group exists, a request is recorded
//!   only if it matches **one** of them (an OR of AND-groups);
//! - [`StatsBuilder::exclude`]: a request matching **any** exclude group is not recorded.
//!
//! A request left out by the filters appears nowhere: not in the counters, the histograms, the
//! in-flight table or any list (to keep a request counted but leave out its details, use
//! sampling or `dont_record` instead).
//!
//! # Patterns
//!
//! Each rule is a pattern matched against the whole value:
//!
//! - `*` matches any run of characters, `/` included; `?` matches exactly one character;
//!   every other character matches itself (case-sensitive; methods are upper case);
//! - a leading `!` negates the rule: the value must **not** match the rest of the pattern
//!   (`!` alone matches only a non-empty value; use `\!` for a literal leading `!`).
//!
//! The method is the request method (`GET`, or an extension method as sent), the path is the
//! URI path without the query string, and the route is what the request's URI set is named
//! after: the `MatchedPath` template (`/users/{id}`), an application label, or `<unmatched>`.
//!
//! # Example
//!
//! ```
//! use tower_stats::{Filter, Stats};
//!
//! # fn main() -> Result<(), tower_stats::ConfigError> {
//! let stats = Stats::builder()
//!     // Health checks and preflight requests are not traffic worth recording.
//!     .exclude(Filter::new().path("/healthz"))
//!     .exclude(Filter::new().method("OPTIONS"))
//!     // Only the API is recorded: every method but HEAD under /api/.
//!     .include(Filter::new().path("/api/*").method("!HEAD"))
//!     .build()?;
//! # let _ = stats;
//! # Ok(())
//! # }
//! ```
//!
//! [`StatsBuilder::include`]: crate::StatsBuilder::include
//! [`StatsBuilder::exclude`]: crate::StatsBuilder::exclude

use std::fmt;

/// An AND-group of rules on method, path and route. See the [module docs](crate::filter).
#[derive(Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct Filter {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Method,
    Path,
    Route,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    field: Field,
    negate: bool,
    pattern: Pattern,
}

/// A pattern, compiled once when its rule is added so that matching a request allocates
/// nothing: a pattern without wildcards is compared as it is, any other is matched on its
/// characters.
#[derive(Clone, PartialEq, Eq)]
struct Pattern {
    text: Box<str>,
    /// The characters of a pattern with `*` or `?`; `None` for a literal.
    wildcards: Option<Box<[char]>>,
}

impl Pattern {
    fn new(text: &str) -> Self {
        Self {
            text: text.into(),
            wildcards: text.contains(['*', '?']).then(|| text.chars().collect()),
        }
    }

    #[inline]
    fn matches(&self, value: &str) -> bool {
        match &self.wildcards {
            None => *self.text == *value,
            Some(pattern) => glob(pattern, value),
        }
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for rule in &self.rules {
            let field = match rule.field {
                Field::Method => "method",
                Field::Path => "path",
                Field::Route => "route",
            };
            let neg = if rule.negate { "!" } else { "" };
            list.entry(&format_args!("{field} {neg}{:?}", rule.pattern));
        }
        list.finish()
    }
}

impl Filter {
    /// An empty group, which matches every request.
    pub fn new() -> Self {
        Self::default()
    }

    fn rule(mut self, field: Field, pattern: &str) -> Self {
        let (negate, pattern) = match pattern.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (
                false,
                pattern
                    .strip_prefix('\\')
                    .filter(|p| p.starts_with('!'))
                    .unwrap_or(pattern),
            ),
        };
        self.rules.push(Rule {
            field,
            negate,
            pattern: Pattern::new(pattern),
        });
        self
    }

    /// Adds a rule on the request method, such as `GET`, `P*` or `!OPTIONS`.
    pub fn method(self, pattern: &str) -> Self {
        self.rule(Field::Method, pattern)
    }

    /// Adds a rule on the request path (no query string), such as `/api/*` or `!/healthz`.
    pub fn path(self, pattern: &str) -> Self {
        self.rule(Field::Path, pattern)
    }

    /// Adds a rule on the route: the `MatchedPath` template, the application's URI set label,
    /// or `<unmatched>`. For example `/users/{id}` or `<unmatched>`.
    pub fn route(self, pattern: &str) -> Self {
        self.rule(Field::Route, pattern)
    }

    /// Whether a request with this method, path and route matches every rule of the group.
    #[must_use]
    pub fn matches(&self, method: &str, path: &str, route: &str) -> bool {
        self.rules.iter().all(|rule| {
            let value = match rule.field {
                Field::Method => method,
                Field::Path => path,
                Field::Route => route,
            };
            rule.pattern.matches(value) != rule.negate
        })
    }
}

/// Include and exclude groups, as configured.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filters {
    pub(crate) include: Vec<Filter>,
    pub(crate) exclude: Vec<Filter>,
}

impl Filters {
    pub(crate) fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    /// Whether a request is recorded.
    pub(crate) fn allows(&self, method: &str, path: &str, route: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|f| f.matches(method, path, route)))
            && !self.exclude.iter().any(|f| f.matches(method, path, route))
    }
}

/// Matches `value` against a pattern's characters, where `*` is any run and `?` any one
/// character. Walks `value` in place (by byte offset, one character at a time): no allocation.
fn glob(pattern: &[char], value: &str) -> bool {
    let next_char = |at: usize| value.get(at..).and_then(|rest| rest.chars().next());
    // Positions in `pattern` (characters) and in `value` (bytes, on character boundaries).
    let (mut pi, mut vi) = (0, 0);
    // The last `*` seen, and where in `value` the run it matches ends for now.
    let mut star: Option<(usize, usize)> = None;
    while let Some(c) = next_char(vi) {
        match pattern.get(pi) {
            Some('*') => {
                star = Some((pi, vi));
                pi += 1;
            }
            Some(&p) if p == '?' || p == c => {
                pi += 1;
                vi += c.len_utf8();
            }
            _ => match star {
                Some((sp, sv)) => {
                    // The `*` takes one more character, and matching resumes after it.
                    let sv = sv + next_char(sv).map_or(1, char::len_utf8);
                    pi = sp + 1;
                    vi = sv;
                    star = Some((sp, sv));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(pi..)
        .unwrap_or_default()
        .iter()
        .all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(pattern: &str, value: &str) -> bool {
        Pattern::new(pattern).matches(value)
    }

    #[test]
    fn glob_matching() {
        assert!(glob("/api/*", "/api/users/1"));
        assert!(glob("/api/*", "/api/"));
        assert!(!glob("/api/*", "/apix"));
        assert!(glob("*", ""));
        assert!(glob("", ""));
        assert!(!glob("", "x"));
        assert!(glob("/u?ers", "/users"));
        assert!(!glob("/u?ers", "/uers"));
        assert!(glob("*.css", "/static/site.css"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXbYY"));
        assert!(glob("/é*", "/état"));
        assert!(!glob("GET", "GETX"));
        assert!(glob("GET", "GET"));
    }

    #[test]
    fn wildcards_take_whole_characters() {
        // `?` is one character, however many bytes it takes.
        assert!(glob("/?tat", "/état"));
        assert!(!glob("/??tat", "/état"));
        assert!(glob("/?", "/😀"));
        // A `*` that must give back multi-byte characters while backtracking.
        assert!(glob("*é*é", "aéébé"));
        assert!(glob("/*/é?", "/ü/ü/éß"));
        assert!(!glob("/*/é?", "/ü/ü/é"));
        assert!(glob("*😀", "😀😀😀"));
        assert!(!glob("*😀x", "😀😀😀"));
    }

    #[test]
    fn matching_allocates_nothing() {
        let filters = Filters {
            include: vec![Filter::new().path("/a*/?/*.css").method("G?T")],
            exclude: vec![Filter::new().route("!/users/{id}").path("/a")],
        };
        let info = allocation_counter::measure(|| {
            assert!(filters.allows("GET", "/api/é/site.css", "/users/{id}"));
            assert!(!filters.allows("GET", "/api/é/site.js", "/users/{id}"));
        });
        assert_eq!(info.count_total, 0);
    }

    #[test]
    fn groups_and_negation() {
        let f = Filter::new().path("/api/*").method("!HEAD");
        assert!(f.matches("GET", "/api/x", "<unmatched>"));
        assert!(!f.matches("HEAD", "/api/x", "<unmatched>"));
        assert!(!f.matches("GET", "/web", "<unmatched>"));
        assert!(Filter::new().matches("GET", "/", "/"));
        let literal = Filter::new().path("\\!bang");
        assert!(literal.matches("GET", "!bang", ""));
        assert!(!literal.matches("GET", "bang", ""));
    }

    #[test]
    fn or_of_and_groups() {
        let filters = Filters {
            include: vec![
                Filter::new().route("/users/{id}"),
                Filter::new().method("POST"),
            ],
            exclude: vec![Filter::new().path("/users/0")],
        };
        assert!(filters.allows("GET", "/users/1", "/users/{id}"));
        assert!(filters.allows("POST", "/echo", "/echo"));
        assert!(!filters.allows("GET", "/echo", "/echo"));
        assert!(!filters.allows("GET", "/users/0", "/users/{id}"));
        assert!(Filters::default().allows("GET", "/", "/"));
    }
}
