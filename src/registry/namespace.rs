//! Application namespaces: named groups of values registered at run time.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use super::value::CollectionData;
use super::{
    check_name, Collection, Combine, Computed, Counter, Gauge, RegistryError, Text, ValueKind,
};

#[derive(Clone)]
enum Value {
    Counter(Arc<AtomicU64>),
    Gauge(Arc<AtomicU64>),
    Text(Arc<Mutex<String>>),
    Computed(Computed),
    Collection(Collection),
}

impl Value {
    fn value_kind(&self) -> ValueKind {
        match self {
            Self::Counter(_) => ValueKind::Counter,
            Self::Gauge(_) => ValueKind::Gauge,
            Self::Text(_) => ValueKind::Text,
            Self::Computed(_) => ValueKind::Computed,
            Self::Collection(_) => ValueKind::Collection,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Counter(_) => "counter",
            Self::Gauge(_) => "gauge",
            Self::Text(_) => "text",
            Self::Computed(_) => "computed value",
            Self::Collection(_) => "collection",
        }
    }
}

pub(crate) struct NamespaceInner {
    pub(crate) enabled: Arc<AtomicBool>,
    values: RwLock<BTreeMap<String, (Value, Combine)>>,
}

impl NamespaceInner {
    pub(crate) fn new() -> Self {
        Self {
            enabled: Arc::new(AtomicBool::new(true)),
            values: RwLock::default(),
        }
    }

    /// Zeroes counters and empties collections; gauges, texts and computed values stay.
    pub(crate) fn reset(&self) {
        let values = self.values.read().unwrap_or_else(|e| e.into_inner());
        for (value, _) in values.values() {
            match value {
                Value::Counter(c) => c.store(0, Ordering::Relaxed),
                Value::Collection(c) => c.clear(),
                _ => {}
            }
        }
    }

    /// Reads every value; computed ones are evaluated after the lock is released, from a view
    /// of the plain values (they may not depend on each other).
    pub(crate) fn read(&self, max_string_len: usize) -> NamespaceValues {
        let entries: Vec<(String, Value, Combine)> = {
            let values = self.values.read().unwrap_or_else(|e| e.into_inner());
            values
                .iter()
                .map(|(k, (v, c))| (k.clone(), v.clone(), *c))
                .collect()
        };
        let mut plain = serde_json::Map::new();
        let mut computed = Vec::new();
        let mut combine = BTreeMap::new();
        let mut kinds = BTreeMap::new();
        for (name, value, rule) in entries {
            combine.insert(name.clone(), rule);
            kinds.insert(name.clone(), value.value_kind());
            let json = match value {
                Value::Counter(c) => c.load(Ordering::Relaxed).into(),
                Value::Gauge(g) => float(f64::from_bits(g.load(Ordering::Relaxed))),
                Value::Text(t) => t.lock().unwrap_or_else(|e| e.into_inner()).clone().into(),
                Value::Collection(c) => c.to_value(),
                Value::Computed(f) => {
                    computed.push((name, f));
                    continue;
                }
            };
            plain.insert(name, json);
        }
        let mut values = plain.clone();
        let view = NamespaceView { values: &plain };
        for (name, f) in computed {
            let value = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&view)))
                .unwrap_or(serde_json::Value::Null);
            values.insert(name, value);
        }
        let mut values = serde_json::Value::Object(values);
        crate::sanitize::clean_value(&mut values, max_string_len);
        let serde_json::Value::Object(values) = values else {
            unreachable!("cleaning keeps the shape of a value")
        };
        NamespaceValues {
            enabled: self.enabled.load(Ordering::Relaxed),
            values,
            combine,
            kinds,
        }
    }
}

/// What [`NamespaceInner::read`] finds: the state, every value (computed ones evaluated), and
/// each value's combine rule and kind.
pub(crate) struct NamespaceValues {
    pub(crate) enabled: bool,
    pub(crate) values: serde_json::Map<String, serde_json::Value>,
    pub(crate) combine: BTreeMap<String, Combine>,
    pub(crate) kinds: BTreeMap<String, ValueKind>,
}

fn float(x: f64) -> serde_json::Value {
    serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

/// The plain values of a namespace, handed to computed values at report time.
#[derive(Debug)]
pub struct NamespaceView<'a> {
    values: &'a serde_json::Map<String, serde_json::Value>,
}

impl NamespaceView<'_> {
    /// The value named `name` (counters, gauges, texts and collections; not computed values).
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&serde_json::Value> {
        self.values.get(name)
    }

    /// The value named `name` as a number, if it is one.
    #[must_use]
    pub fn number(&self, name: &str) -> Option<f64> {
        self.get(name).and_then(serde_json::Value::as_f64)
    }
}

/// A handle to an application namespace. Cheap to clone.
///
/// Values are registered once (typically at start-up) and updated through the handles that
/// registration returns; registering a name again returns the same value.
///
/// # Example
///
/// ```
/// use tower_stats::{Combine, Stats};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let stats = Stats::new();
/// let shop = stats.namespace("shop")?;
/// let orders = shop.counter("orders_total", Combine::Sum)?;
/// shop.computed("orders_per_cart", Combine::Instance, |ns| {
///     let carts = ns.number("carts_total").unwrap_or(0.0);
///     let orders = ns.number("orders_total").unwrap_or(0.0);
///     (if carts > 0.0 { orders / carts } else { 0.0 }).into()
/// })?;
/// orders.incr();
///
/// let snapshot = stats.snapshot();
/// assert_eq!(snapshot.namespaces["shop"].values["orders_total"], 1);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Namespace {
    pub(crate) name: Arc<str>,
    pub(crate) inner: Arc<NamespaceInner>,
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Namespace")
            .field("name", &self.name)
            .field("enabled", &self.is_enabled())
            .finish()
    }
}

impl Namespace {
    /// The namespace's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the namespace is recording. Paused namespaces ignore updates.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.inner.enabled.load(Ordering::Relaxed)
    }

    fn register<T>(
        &self,
        name: &str,
        combine: Combine,
        make: impl FnOnce() -> Value,
        pick: impl FnOnce(&Value) -> Option<T>,
    ) -> Result<T, RegistryError> {
        check_name(name, "enabled")?;
        let mut values = self.inner.values.write().unwrap_or_else(|e| e.into_inner());
        let (value, _) = values
            .entry(name.to_owned())
            .or_insert_with(|| (make(), combine));
        pick(value).ok_or_else(|| RegistryError::KindMismatch {
            name: name.to_owned(),
            existing: value.kind(),
        })
    }

    /// Registers (or returns) a counter, 0 at first.
    pub fn counter(&self, name: &str, combine: Combine) -> Result<Counter, RegistryError> {
        let enabled = Arc::clone(&self.inner.enabled);
        self.register(
            name,
            combine,
            || Value::Counter(Arc::default()),
            |v| match v {
                Value::Counter(c) => Some(Counter {
                    value: Arc::clone(c),
                    enabled,
                }),
                _ => None,
            },
        )
    }

    /// Registers (or returns) a gauge, 0.0 at first.
    pub fn gauge(&self, name: &str, combine: Combine) -> Result<Gauge, RegistryError> {
        let enabled = Arc::clone(&self.inner.enabled);
        self.register(
            name,
            combine,
            || Value::Gauge(Arc::new(AtomicU64::new(0f64.to_bits()))),
            |v| match v {
                Value::Gauge(g) => Some(Gauge {
                    bits: Arc::clone(g),
                    enabled,
                }),
                _ => None,
            },
        )
    }

    /// Registers (or returns) a text value, empty at first. Text is never combined.
    pub fn text(&self, name: &str) -> Result<Text, RegistryError> {
        self.register(
            name,
            Combine::Instance,
            || Value::Text(Arc::default()),
            |v| match v {
                Value::Text(t) => Some(Text {
                    value: Arc::clone(t),
                }),
                _ => None,
            },
        )
    }

    /// Registers a value computed at report time from the namespace's plain values.
    /// Registering the name again replaces the function. A panicking function reports `null`.
    pub fn computed<F>(&self, name: &str, combine: Combine, f: F) -> Result<(), RegistryError>
    where
        F: Fn(&NamespaceView<'_>) -> serde_json::Value + Send + Sync + 'static,
    {
        check_name(name, "enabled")?;
        let mut values = self.inner.values.write().unwrap_or_else(|e| e.into_inner());
        match values.get(name) {
            Some((Value::Computed(_), _)) | None => {
                values.insert(name.to_owned(), (Value::Computed(Arc::new(f)), combine));
                Ok(())
            }
            Some((other, _)) => Err(RegistryError::KindMismatch {
                name: name.to_owned(),
                existing: other.kind(),
            }),
        }
    }

    /// Registers (or returns) a list collection holding at most `capacity` records.
    pub fn list(&self, name: &str, capacity: usize) -> Result<Collection, RegistryError> {
        self.collection(name, capacity, false)
    }

    /// Registers (or returns) a collection keyed by id holding at most `capacity` records.
    pub fn map(&self, name: &str, capacity: usize) -> Result<Collection, RegistryError> {
        self.collection(name, capacity, true)
    }

    fn collection(
        &self,
        name: &str,
        capacity: usize,
        keyed: bool,
    ) -> Result<Collection, RegistryError> {
        let enabled = Arc::clone(&self.inner.enabled);
        self.register(
            name,
            Combine::Instance,
            || {
                Value::Collection(Collection {
                    inner: Arc::new(Mutex::new(CollectionData {
                        keyed,
                        capacity,
                        items: VecDeque::new(),
                    })),
                    enabled: Arc::clone(&enabled),
                })
            },
            |v| match v {
                Value::Collection(c)
                    if c.inner.lock().unwrap_or_else(|e| e.into_inner()).keyed == keyed =>
                {
                    Some(c.clone())
                }
                _ => None,
            },
        )
    }
}
