//! The snapshot on the wire: reading a `/stats/data` document back, checked and cleaned.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::histogram::HistogramLayout;
use crate::registry::{Combine, ValueKind};
use crate::sanitize::{clean, clean_value, needs_cleaning};

use super::model::{
    ApplicationEvent, ClusterStatus, HttpSnapshot, InstanceSummary, Limits, NamespaceSnapshot,
    RequestRecord, ServerInfo, Snapshot, StatusSnapshot, SCHEMA_VERSION,
};

/// Largest document [`Snapshot::from_json`] reads: 64 MiB.
pub const MAX_SNAPSHOT_BYTES: usize = 64 * 1024 * 1024;

/// Longest string kept from a document read back, in characters.
const MAX_STRING: usize = 1024;

/// Largest caps a document read back may declare.
const MAX_LIMITS: Limits = Limits {
    max_uri_sets: 65_536,
    slow_capacity: 100_000,
    recent_capacity: 100_000,
    event_capacity: 100_000,
    event_max_age_millis: 30 * 24 * 3_600_000,
    max_call_names: 65_536,
};

/// Most instances a merged document read back may list.
const MAX_INSTANCES: usize = 4096;

/// Why a document could not be read as a [`Snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The document is larger than [`MAX_SNAPSHOT_BYTES`].
    TooLarge {
        /// Its size in bytes.
        size: usize,
    },
    /// The document is written for another schema version.
    SchemaVersion {
        /// The version the document declares.
        found: u64,
    },
    /// The document is not a snapshot: the JSON error, with its line and column.
    Invalid(String),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { size } => write!(
                f,
                "snapshot document of {size} bytes is larger than the {MAX_SNAPSHOT_BYTES} \
                 bytes allowed"
            ),
            Self::SchemaVersion { found } => write!(
                f,
                "snapshot document has schema version {found}; this version of tower-stats \
                 reads version {SCHEMA_VERSION}"
            ),
            Self::Invalid(why) => write!(f, "invalid snapshot document: {why}"),
        }
    }
}

impl std::error::Error for SnapshotError {}

impl Snapshot {
    /// Reads a `/stats/data` document (schema version 2), treating it as untrusted: the size,
    /// the schema version, the histogram layout and every histogram are checked; collections
    /// are cut to the caps the document declares (themselves capped); every string is capped
    /// and cleaned of control characters; derived values are computed again from the raw
    /// data rather than taken from the document.
    ///
    /// # Errors
    ///
    /// [`SnapshotError`] says why the document was refused.
    ///
    /// # Example
    ///
    /// ```
    /// use tower_stats::{Snapshot, Stats};
    ///
    /// let stats = Stats::new();
    /// let snapshot = stats.snapshot();
    /// let json = serde_json::to_vec(&snapshot).unwrap();
    /// assert_eq!(Snapshot::from_json(&json).unwrap(), snapshot);
    /// assert!(Snapshot::from_json(br#"{"schema_version": 1}"#).is_err());
    /// ```
    pub fn from_json(bytes: &[u8]) -> Result<Self, SnapshotError> {
        if bytes.len() > MAX_SNAPSHOT_BYTES {
            return Err(SnapshotError::TooLarge { size: bytes.len() });
        }
        let mut snapshot: Self = serde_json::from_slice(bytes).map_err(|e| {
            // Say so when the document is of another version, rather than what of it did
            // not fit.
            #[derive(Deserialize)]
            struct Version {
                schema_version: Option<u64>,
            }
            match serde_json::from_slice::<Version>(bytes) {
                Ok(Version {
                    schema_version: Some(found),
                }) if found != u64::from(SCHEMA_VERSION) => SnapshotError::SchemaVersion { found },
                _ => SnapshotError::Invalid(e.to_string()),
            }
        })?;
        snapshot.bound_and_clean();
        snapshot.derive();
        Ok(snapshot)
    }

    /// Cuts collections to the (capped) declared limits and cleans every string.
    fn bound_and_clean(&mut self) {
        let l = &mut self.limits;
        l.max_uri_sets = l.max_uri_sets.min(MAX_LIMITS.max_uri_sets);
        l.slow_capacity = l.slow_capacity.min(MAX_LIMITS.slow_capacity);
        l.recent_capacity = l.recent_capacity.min(MAX_LIMITS.recent_capacity);
        l.event_capacity = l.event_capacity.min(MAX_LIMITS.event_capacity);
        l.event_max_age_millis = l.event_max_age_millis.min(MAX_LIMITS.event_max_age_millis);
        l.max_call_names = l.max_call_names.min(MAX_LIMITS.max_call_names);
        let limits = self.limits;
        clean_server(&mut self.server);
        let http = &mut self.http;
        http.in_flight.truncate(MAX_LIMITS.recent_capacity);
        http.open_streams.truncate(MAX_LIMITS.recent_capacity);
        http.slow_requests.truncate(limits.slow_capacity);
        http.recent_requests.truncate(limits.recent_capacity);
        http.duration_buckets.truncate(64);
        for record in http.records_mut() {
            clean_record(record);
        }
        http.status_codes = std::mem::take(&mut http.status_codes)
            .into_iter()
            .take(1024)
            .map(|(k, v)| (clean_str(&k), v))
            .collect();
        http.grpc_status_codes = std::mem::take(&mut http.grpc_status_codes)
            .into_iter()
            .take(32)
            .map(|(k, v)| (clean_str(&k), v))
            .collect();
        let sets = std::mem::take(&mut http.uri_sets);
        http.uri_sets = sets
            .into_iter()
            .take(limits.max_uri_sets.saturating_add(1))
            .map(|(key, mut set)| {
                set.method = clean_str(&set.method);
                set.route = clean_str(&set.route);
                // A set has at most 12 series; a merged one, a few times that.
                set.durations.truncate(64);
                for d in &mut set.durations {
                    d.status_code = clean_str(&d.status_code).chars().take(8).collect();
                    d.error_type = clean_str(&d.error_type).chars().take(16).collect();
                    d.cumulative.truncate(65);
                    let buckets = d.cumulative.len();
                    d.exemplars.retain(|e| e.bucket < buckets);
                    d.exemplars.truncate(buckets);
                    for e in &mut d.exemplars {
                        e.request_id = clean_str(&e.request_id).chars().take(64).collect();
                        e.trace_id = e.trace_id.take().filter(|t| {
                            t.len() == 32
                                && t.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                        });
                    }
                }
                (clean_str(&key), set)
            })
            .collect();
        super::calls::bound_and_clean(&mut http.calls, limits.max_call_names, clean_str);
        self.application_events.truncate(limits.event_capacity);
        for event in &mut self.application_events {
            event.instance = clean_str(&event.instance);
            event.message = clean_str(&event.message);
        }
        let status = &mut self.status;
        status.application = clean_str(&status.application);
        status.version = clean_str(&status.version);
        status.status = crate::status::AppStatus::from(clean_str(status.status.as_str()));
        for ns in self.namespaces.values_mut() {
            let mut values = Value::Object(std::mem::take(&mut ns.values));
            clean_value(&mut values, MAX_STRING);
            if let Value::Object(map) = values {
                ns.values = map;
            }
        }
        self.instances.truncate(MAX_INSTANCES);
        self.instances.iter_mut().for_each(clean_instance);
        if let Some(cluster) = &mut self.cluster {
            cluster.service = clean_str(&cluster.service);
            cluster.scope = clean_str(&cluster.scope);
            cluster.status = clean_str(&cluster.status);
            if let Some(e) = &mut cluster.last_error {
                *e = clean_str(e);
            }
            cluster.instances.truncate(MAX_INSTANCES);
            cluster.instances.iter_mut().for_each(clean_instance);
        }
    }
}

fn clean_instance(instance: &mut InstanceSummary) {
    clean_server(&mut instance.server);
    instance.state = clean_str(&instance.state);
    instance.status = crate::status::AppStatus::from(clean_str(instance.status.as_str()));
    if let Some(e) = &mut instance.error {
        *e = clean_str(e);
    }
    for values in instance.values.values_mut() {
        let mut v = Value::Object(std::mem::take(values));
        clean_value(&mut v, MAX_STRING);
        if let Value::Object(map) = v {
            *values = map;
        }
    }
}

fn clean_str(s: &str) -> String {
    if needs_cleaning(s, MAX_STRING) {
        clean(s, MAX_STRING)
    } else {
        s.to_owned()
    }
}

fn clean_server(server: &mut ServerInfo) {
    server.version = clean_str(&server.version);
    server.instance = clean_str(&server.instance);
    server.boot_id = clean_str(&server.boot_id);
}

fn clean_record(r: &mut RequestRecord) {
    for s in [&mut r.id, &mut r.method, &mut r.path, &mut r.uri_set] {
        *s = clean_str(s);
    }
    for s in [&mut r.client, &mut r.instance, &mut r.trace_id]
        .into_iter()
        .flatten()
    {
        *s = clean_str(s);
    }
    r.events.truncate(1024);
    for e in &mut r.events {
        e.label = clean_str(&e.label);
        e.source = clean_str(&e.source);
        e.call = clean_str(&e.call);
        if let Some(target) = &mut e.target {
            *target = clean_str(target);
        }
        if let Some(data) = &mut e.data {
            *data = clean_str(data);
        }
    }
}

/// How one application value is kinded and combined, as the document's `rules` gives it.
#[derive(Serialize, Deserialize)]
struct Rule {
    kind: ValueKind,
    combine: Combine,
}

/// The `rules` object: namespace → value → `{"kind", "combine"}`.
pub(super) struct Rules<'a>(pub(super) &'a Snapshot);

impl Serialize for Rules<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Values<'a>(&'a NamespaceSnapshot);
        impl Serialize for Values<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.0.kinds.len()))?;
                for (name, kind) in &self.0.kinds {
                    let combine = self
                        .0
                        .combine
                        .get(name)
                        .copied()
                        .unwrap_or(Combine::Instance);
                    map.serialize_entry(
                        name,
                        &Rule {
                            kind: *kind,
                            combine,
                        },
                    )?;
                }
                map.end()
            }
        }
        let mut map = serializer.serialize_map(Some(self.0.namespaces.len()))?;
        for (name, ns) in &self.0.namespaces {
            map.serialize_entry(name, &Values(ns))?;
        }
        map.end()
    }
}

/// Reads records kept by id (`{"42": {...}}`) back into a list, oldest first.
pub(super) fn records_from_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<RequestRecord>, D::Error> {
    let map = BTreeMap::<String, RequestRecord>::deserialize(deserializer)?;
    let mut records: Vec<RequestRecord> = map.into_values().collect();
    records.sort_by(|a, b| {
        a.start_time
            .total_cmp(&b.start_time)
            .then_with(|| a.id.len().cmp(&b.id.len()))
            .then_with(|| a.id.cmp(&b.id))
    });
    Ok(records)
}

/// The document as read, before the namespaces are sorted out.
#[derive(Deserialize)]
struct Document {
    schema_version: u32,
    generated_at: f64,
    server: ServerInfo,
    histogram_layout: HistogramLayout,
    #[serde(default)]
    limits: Limits,
    namespaces: BTreeMap<String, Box<RawValue>>,
    #[serde(default)]
    rules: BTreeMap<String, BTreeMap<String, Rule>>,
    #[serde(default)]
    application_events: Vec<ApplicationEvent>,
    #[serde(default)]
    status: StatusSnapshot,
    #[serde(default)]
    instances: Vec<InstanceSummary>,
    #[serde(default)]
    cluster: Option<ClusterStatus>,
}

impl<'de> Deserialize<'de> for Snapshot {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut doc = Document::deserialize(deserializer)?;
        if doc.schema_version != SCHEMA_VERSION {
            return Err(de::Error::custom(format_args!(
                "schema version {} is not {SCHEMA_VERSION}",
                doc.schema_version
            )));
        }
        if doc.histogram_layout != HistogramLayout::CURRENT {
            return Err(de::Error::custom(format_args!(
                "histogram layout {:?} is not this version's {:?}",
                doc.histogram_layout,
                HistogramLayout::CURRENT
            )));
        }
        let http = doc
            .namespaces
            .remove(crate::HTTP_NAMESPACE)
            .ok_or_else(|| de::Error::missing_field("namespaces.http"))?;
        let http: HttpSnapshot = serde_json::from_str(http.get()).map_err(de::Error::custom)?;
        let namespaces = doc
            .namespaces
            .into_iter()
            .map(|(name, raw)| {
                let value: Value = serde_json::from_str(raw.get()).map_err(de::Error::custom)?;
                let Value::Object(mut values) = value else {
                    return Err(de::Error::custom(format_args!(
                        "namespace {name:?} is not an object"
                    )));
                };
                let enabled = values
                    .remove("enabled")
                    .and_then(|v| v.as_bool())
                    .unwrap_or(true);
                let rules = doc.rules.remove(&name).unwrap_or_default();
                let mut ns = NamespaceSnapshot {
                    enabled,
                    ..NamespaceSnapshot::default()
                };
                for (key, rule) in rules {
                    if values.contains_key(&key) {
                        ns.kinds.insert(key.clone(), rule.kind);
                        ns.combine.insert(key, rule.combine);
                    }
                }
                ns.values = values;
                Ok((name, ns))
            })
            .collect::<Result<BTreeMap<_, _>, D::Error>>()?;
        let mut snapshot = Self {
            schema_version: doc.schema_version,
            generated_at: doc.generated_at,
            server: doc.server,
            limits: doc.limits,
            http,
            namespaces,
            application_events: doc.application_events,
            status: doc.status,
            instances: doc.instances,
            cluster: doc.cluster,
        };
        snapshot.derive();
        Ok(snapshot)
    }
}
