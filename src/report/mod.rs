//! Renderers: one per format, all from a [`Snapshot`](crate::Snapshot).

pub mod events;
pub mod format;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod html;
pub mod json;
pub mod prometheus;
