//! The call statistics of snapshots: merged across instances, and bounded and cleaned when
//! read back.
//!
//! Calls and their histograms add. Past the largest `max_call_names` of the inputs, the names
//! with the fewest calls are folded into `<overflow>` (ties broken by name), as URI sets are;
//! past 64 URI sets for one call, the sets with the fewest calls are folded into its
//! `<overflow>` set. A folded name's requests add to `<overflow>`'s, so there a request that
//! made several folded calls counts more than once.

use std::collections::BTreeMap;

use crate::store::calls::MAX_URI_SETS_PER_CALL;
use crate::store::uri_sets::OVERFLOW;

use super::model::{CallSnapshot, CallUriSet, Snapshot};

/// The calls of every part, added up, within `max_names` names.
pub(super) fn merge(
    parts: &[(&Snapshot, bool)],
    max_names: usize,
) -> BTreeMap<String, CallSnapshot> {
    let mut calls: BTreeMap<String, CallSnapshot> = BTreeMap::new();
    for (s, _) in parts {
        for (name, call) in &s.http.calls {
            add(calls.entry(name.clone()).or_default(), call);
        }
    }
    for call in calls.values_mut() {
        cap_uri_sets(call);
    }
    cap_names(&mut calls, max_names);
    calls
}

fn add(into: &mut CallSnapshot, call: &CallSnapshot) {
    into.requests = into.requests.saturating_add(call.requests);
    into.latency.merge(&call.latency);
    for (key, set) in &call.uri_sets {
        add_set(into.uri_sets.entry(key.clone()).or_default(), set);
    }
}

fn add_set(into: &mut CallUriSet, set: &CallUriSet) {
    into.count = into.count.saturating_add(set.count);
    into.requests = into.requests.saturating_add(set.requests);
}

/// Folds the names with the fewest calls into `<overflow>` past `cap` names.
fn cap_names(calls: &mut BTreeMap<String, CallSnapshot>, cap: usize) {
    let mut names: Vec<(u64, String)> = calls
        .iter()
        .filter(|(name, _)| name.as_str() != OVERFLOW)
        .map(|(name, call)| (call.latency.count(), name.clone()))
        .collect();
    if names.len() <= cap {
        return;
    }
    names.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    for (_, name) in names.split_off(cap) {
        if let Some(call) = calls.remove(&name) {
            let overflow = calls.entry(OVERFLOW.to_owned()).or_default();
            add(overflow, &call);
            cap_uri_sets(overflow);
        }
    }
}

/// Folds the URI sets with the fewest calls into `<overflow>` past the sets kept per call.
fn cap_uri_sets(call: &mut CallSnapshot) {
    let mut keys: Vec<(u64, String)> = call
        .uri_sets
        .iter()
        .filter(|(key, _)| key.as_str() != OVERFLOW)
        .map(|(key, set)| (set.count, key.clone()))
        .collect();
    if keys.len() <= MAX_URI_SETS_PER_CALL {
        return;
    }
    keys.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    for (_, key) in keys.split_off(MAX_URI_SETS_PER_CALL) {
        if let Some(set) = call.uri_sets.remove(&key) {
            add_set(call.uri_sets.entry(OVERFLOW.to_owned()).or_default(), &set);
        }
    }
}

/// Keeps a document's calls within `max_names` names (plus `<overflow>`) and 64 URI sets per
/// call (plus `<overflow>`), with every name cleaned by `clean`.
pub(super) fn bound_and_clean(
    calls: &mut BTreeMap<String, CallSnapshot>,
    max_names: usize,
    clean: impl Fn(&str) -> String,
) {
    let all = std::mem::take(calls);
    let (overflow, named): (Vec<_>, Vec<_>) =
        all.into_iter().partition(|(name, _)| name == OVERFLOW);
    *calls = named
        .into_iter()
        .take(max_names)
        .chain(overflow)
        .map(|(name, mut call)| {
            let sets = std::mem::take(&mut call.uri_sets);
            let (overflow, named): (Vec<_>, Vec<_>) =
                sets.into_iter().partition(|(key, _)| key == OVERFLOW);
            call.uri_sets = named
                .into_iter()
                .take(MAX_URI_SETS_PER_CALL)
                .chain(overflow)
                .map(|(key, set)| (clean(&key), set))
                .collect();
            (clean(&name), call)
        })
        .collect();
}
