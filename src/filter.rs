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
    pattern: Box<str>,
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
            pattern: pattern.into(),
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
            glob(&rule.pattern, value) != rule.negate
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

/// Matches `value` against a pattern where `*` is any run and `?` any one character.
fn glob(pattern: &str, value: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    let (mut pi, mut vi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, vi));
                pi += 1;
            }
            Some(&c) if c == '?' || c == v[vi] => {
                pi += 1;
                vi += 1;
            }
            _ => match star {
                Some((sp, sv)) => {
                    pi = sp + 1;
                    vi = sv + 1;
                    star = Some((sp, sv + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matching() {
        assert!(glob("/api/*", "/api/users/1"));
        assert!(glob("/api/*", "/api/"));
        assert!(!glob("/api/*", "/apix"));
        assert!(glob("*", ""));
        assert!(glob("/u?ers", "/users"));
        assert!(!glob("/u?ers", "/uers"));
        assert!(glob("*.css", "/static/site.css"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXbYY"));
        assert!(glob("/é*", "/état"));
        assert!(!glob("GET", "GETX"));
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
