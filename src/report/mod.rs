//! Renderers: one per format, each from a [`Snapshot`](crate::Snapshot) and the options of
//! the view, and nothing else: the JSON document, Prometheus text, the event stream text, and
//! the HTML pages.

pub mod events;
pub mod format;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod html;
pub mod json;
pub mod prometheus;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod requests;
