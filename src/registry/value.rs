//! The kinds of value an application namespace holds.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::NamespaceView;

/// How a value combines across instances of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Combine {
    /// Added up over instances (request counts, bytes).
    Sum,
    /// The smallest over instances.
    Min,
    /// The largest over instances.
    Max,
    /// Per instance only, never combined (start times, versions).
    Instance,
}

/// What kind of value an application statistic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ValueKind {
    /// A [`Counter`].
    Counter,
    /// A [`Gauge`].
    Gauge,
    /// A [`Text`].
    Text,
    /// A value computed at report time.
    Computed,
    /// A [`Collection`].
    Collection,
}

/// A monotonically increasing counter. Cheap to clone; every clone updates the same value.
///
/// Updates are ignored while the namespace is paused.
#[derive(Clone)]
pub struct Counter {
    pub(crate) value: Arc<AtomicU64>,
    pub(crate) enabled: Arc<AtomicBool>,
}

impl Counter {
    /// Adds one.
    pub fn incr(&self) {
        self.add(1);
    }

    /// Adds `n`. The counter stops at `u64::MAX` rather than wrapping around, so it never
    /// goes down.
    pub fn add(&self, n: u64) {
        if self.enabled.load(Ordering::Relaxed) {
            let _ = self
                .value
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                    Some(v.saturating_add(n))
                });
        }
    }

    /// The current value.
    #[must_use]
    pub fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Counter").field(&self.get()).finish()
    }
}

/// A value that goes up and down, such as a queue length. Cheap to clone.
///
/// Updates are ignored while the namespace is paused; reset keeps gauges, since they describe
/// the present rather than a period.
#[derive(Clone)]
pub struct Gauge {
    pub(crate) bits: Arc<AtomicU64>,
    pub(crate) enabled: Arc<AtomicBool>,
}

impl Gauge {
    /// Sets the value. Non-finite values are reported as `null`.
    pub fn set(&self, value: f64) {
        if self.enabled.load(Ordering::Relaxed) {
            self.bits.store(value.to_bits(), Ordering::Relaxed);
        }
    }

    /// Adds `delta` (negative to subtract).
    pub fn add(&self, delta: f64) {
        if self.enabled.load(Ordering::Relaxed) {
            let _ = self
                .bits
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                    Some((f64::from_bits(b) + delta).to_bits())
                });
        }
    }

    /// The current value.
    #[must_use]
    pub fn get(&self) -> f64 {
        f64::from_bits(self.bits.load(Ordering::Relaxed))
    }
}

impl fmt::Debug for Gauge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Gauge").field(&self.get()).finish()
    }
}

/// A text value, such as a version or a mode. Capped and cleaned when reported.
#[derive(Clone)]
pub struct Text {
    pub(crate) value: Arc<Mutex<String>>,
}

impl Text {
    /// Replaces the text.
    pub fn set(&self, value: impl Into<String>) {
        *self.value.lock().unwrap_or_else(|e| e.into_inner()) = value.into();
    }

    /// A copy of the current text.
    #[must_use]
    pub fn get(&self) -> String {
        self.value.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Text").field(&self.get()).finish()
    }
}

/// A function evaluated when a report is made, from the namespace's other values.
pub type Computed = Arc<dyn Fn(&NamespaceView<'_>) -> serde_json::Value + Send + Sync>;

/// A bounded collection of records: a list (oldest first, oldest evicted first) or a map
/// keyed by id (oldest insertion evicted first). Cheap to clone.
///
/// Records are JSON objects; anything that serializes to an object can be added.
#[derive(Clone)]
pub struct Collection {
    pub(crate) inner: Arc<Mutex<CollectionData>>,
    pub(crate) enabled: Arc<AtomicBool>,
}

#[derive(Debug)]
pub(crate) struct CollectionData {
    pub(crate) keyed: bool,
    pub(crate) capacity: usize,
    pub(crate) items: VecDeque<(String, serde_json::Value)>,
}

/// Why a record could not be added to a [`Collection`].
#[derive(Debug)]
#[non_exhaustive]
pub enum CollectionError {
    /// The record did not serialize to a JSON object.
    NotAnObject,
    /// Serialization failed.
    Serialize(serde_json::Error),
    /// `push` on a keyed collection, or `insert` on a list.
    WrongKind,
}

impl fmt::Display for CollectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAnObject => f.write_str("a collection record must serialize to a JSON object"),
            Self::Serialize(e) => write!(f, "collection record failed to serialize: {e}"),
            Self::WrongKind => f.write_str(
                "`push` is for list collections and `insert`/`remove` for keyed collections",
            ),
        }
    }
}

impl std::error::Error for CollectionError {}

impl Collection {
    fn to_record(record: &impl Serialize) -> Result<serde_json::Value, CollectionError> {
        match serde_json::to_value(record) {
            Ok(v @ serde_json::Value::Object(_)) => Ok(v),
            Ok(_) => Err(CollectionError::NotAnObject),
            Err(e) => Err(CollectionError::Serialize(e)),
        }
    }

    /// Appends a record to a list collection, evicting the oldest beyond capacity.
    ///
    /// Ignored (with `Ok`) while the namespace is paused.
    pub fn push(&self, record: &impl Serialize) -> Result<(), CollectionError> {
        let record = Self::to_record(record)?;
        let mut data = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if data.keyed {
            return Err(CollectionError::WrongKind);
        }
        if self.enabled.load(Ordering::Relaxed) {
            data.items.push_back((String::new(), record));
            while data.items.len() > data.capacity {
                data.items.pop_front();
            }
        }
        Ok(())
    }

    /// Inserts or replaces the record under `id` in a keyed collection, evicting the oldest
    /// inserted beyond capacity.
    ///
    /// Ignored (with `Ok`) while the namespace is paused.
    pub fn insert(
        &self,
        id: impl Into<String>,
        record: &impl Serialize,
    ) -> Result<(), CollectionError> {
        let record = Self::to_record(record)?;
        let id = id.into();
        let mut data = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if !data.keyed {
            return Err(CollectionError::WrongKind);
        }
        if self.enabled.load(Ordering::Relaxed) {
            if let Some(slot) = data.items.iter_mut().find(|(k, _)| *k == id) {
                slot.1 = record;
            } else {
                data.items.push_back((id, record));
                while data.items.len() > data.capacity {
                    data.items.pop_front();
                }
            }
        }
        Ok(())
    }

    /// Removes the record under `id` from a keyed collection; returns whether it was there.
    pub fn remove(&self, id: &str) -> bool {
        let mut data = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let before = data.items.len();
        data.items.retain(|(k, _)| k != id);
        before != data.items.len()
    }

    /// Number of records.
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .items
            .len()
    }

    /// Whether the collection holds no record.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every record.
    pub fn clear(&self) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .items
            .clear();
    }

    pub(crate) fn to_value(&self) -> serde_json::Value {
        let data = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if data.keyed {
            serde_json::Value::Object(data.items.iter().cloned().collect())
        } else {
            serde_json::Value::Array(data.items.iter().map(|(_, v)| v.clone()).collect())
        }
    }
}

impl fmt::Debug for Collection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let data = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("Collection")
            .field("keyed", &data.keyed)
            .field("capacity", &data.capacity)
            .field("len", &data.items.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(value: u64) -> Counter {
        Counter {
            value: Arc::new(AtomicU64::new(value)),
            enabled: Arc::new(AtomicBool::new(true)),
        }
    }

    #[test]
    fn a_counter_saturates_rather_than_wrapping() {
        let c = counter(u64::MAX - 2);
        c.add(2);
        assert_eq!(c.get(), u64::MAX);
        c.incr();
        assert_eq!(c.get(), u64::MAX, "stays at the top");
        let c = counter(10);
        c.add(u64::MAX);
        assert_eq!(c.get(), u64::MAX);
    }
}
