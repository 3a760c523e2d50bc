//! The `/stats` page: what the server is doing right now, for people.
//!
//! Every page is rendered from one [`Snapshot`](crate::Snapshot) and the options of the
//! view, and nothing else. Top to bottom: a header (version, instance, uptime, when the page
//! was generated, and the application status as `/status` reports it, with maintenance On/Off
//! buttons), the built-in `http` namespace (rates, errors and latency quantiles over the last minute, the
//! last 15 minutes and since start side by side, as zPages' rpcz shows them; a summary of
//! counters; a requests-per-minute sparkline; responses by status; requests in flight oldest
//! first; open streams; slow requests newest first; and URI sets sortable by count, average,
//! p99 and maximum, with p50/p99 latency bars), the latest recent requests (linking to their
//! pages) and the latest events of the event stream, then every application namespace
//! rendered generically, as CherryPy's cpstats does: a table of scalars and one table per
//! collection. Each namespace has pause/resume and reset buttons (plain `POST` forms) unless
//! the router is read-only.
//!
//! The router serves two more pages from the same stylesheet when the client asks for HTML:
//! `{prefix}/requests`, the recent and slow requests newest first, under a form of filters
//! (URI set, status code or class, least time, call name: see [`requests`](super::requests);
//! the dashboard's URI sets, their 4xx and 5xx counts and its slow requests link there), and
//! `{prefix}/requests/{id}`, one
//! request with every field and its timeline as a waterfall and a table. The records of a
//! merged snapshot show their instance, and link to their pages by their qualified ids. All
//! links are relative (`./…`), so the pages work wherever the router is nested.
//!
//! The page has no script at all and works with JavaScript off; pictures are inline SVG drawn
//! on the server, and the styles come from `{prefix}/style.css` on the same origin. It is built
//! with [maud] templates, which escape every interpolated value, so request paths, labels and
//! application values cannot inject markup. Query parameters: `refresh=N` reloads the page
//! every `N` seconds (at least [`MIN_REFRESH_SECONDS`]), `sort=count|avg|p99|max` orders the
//! URI sets.
//!
//! [maud]: https://docs.rs/maud

mod activity;
mod application;
mod calls;
mod cells;
mod cluster;
mod dashboard;
mod http;
mod options;
mod page;
mod request_pages;
mod requests_in_flight;
mod svg;
#[cfg(test)]
mod tests;
mod uri_sets;

pub use self::dashboard::render;
pub use self::options::{
    refresh_interval, Controls, DashboardOptions, Formatting, Sort, CONTENT_SECURITY_POLICY,
    MAX_REFRESH_SECONDS, MIN_REFRESH_SECONDS, REFERRER_POLICY, STYLESHEET,
};

pub(crate) use self::request_pages::{
    find_request, render_request, render_request_not_found, render_requests,
};
