//! Renderers: one per format, all from a [`Snapshot`](crate::Snapshot).

pub mod html;
pub mod json;
