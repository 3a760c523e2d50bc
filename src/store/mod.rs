//! The write side: everything the layer touches for each request, kept in atomics and short
//! critical sections so that recording never waits on a reader.
//!
//! - [`http`]: the built-in `http` namespace's counters and its request-facing API;
//! - [`in_flight`]: the table of requests in flight;
//! - [`request`]: a request's record while it runs and once it has finished;
//! - [`ring`]: the ring of recent requests (and of application events);
//! - [`uri_sets`]: the bounded table of URI sets and their counters;
//! - [`windows`]: latency histograms per wall-clock period.
//!
//! The read side ([`crate::snapshot`]) copies what it needs out of here.

pub(crate) mod http;
pub(crate) mod in_flight;
pub(crate) mod request;
pub(crate) mod ring;
pub(crate) mod uri_sets;
pub(crate) mod windows;
