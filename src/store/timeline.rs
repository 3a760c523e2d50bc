//! Timeline entries fed by the `tracing` layer: a span takes its slot on the request's
//! timeline when it is created (so that the spans and events inside it can name it as their
//! parent) and is given its end when it closes.

use tokio::time::Instant;

use super::http::HttpStore;
use super::in_flight::SlotKey;
use super::request::TimelineEntry;

impl HttpStore {
    /// Adds `entry` to the timeline of request `id` and returns its index; `None` when the
    /// request has finished, keeps no detailed record, or its timeline is full (then the
    /// entry is counted as dropped).
    pub(crate) fn push_timeline_entry(
        &self,
        key: SlotKey,
        id: u64,
        entry: TimelineEntry,
        max_entries: usize,
    ) -> Option<u32> {
        let mut entry = Some(entry);
        self.in_flight
            .update(key, id, |live| {
                if !live.detailed {
                    return None;
                }
                let extras = live.extras_mut();
                let index = u32::try_from(extras.events.len()).ok()?;
                if extras.events.len() >= max_entries {
                    extras.events_dropped = extras.events_dropped.saturating_add(1);
                    return None;
                }
                extras.events.extend(entry.take());
                Some(index)
            })
            .flatten()
    }

    /// Ends the open span at `index` on the timeline of request `id`, if the request is still
    /// running.
    pub(crate) fn close_timeline_entry(&self, key: SlotKey, id: u64, index: u32, end: Instant) {
        self.in_flight.update(key, id, |live| {
            let entry = live
                .extras
                .as_mut()
                .and_then(|x| x.events.get_mut(index as usize));
            if let Some(entry) = entry.filter(|e| e.open) {
                entry.end = end.max(entry.start);
                entry.open = false;
            }
        });
    }

    /// Appends `fields` to the data of the entry at `index` (fields recorded on a span after
    /// it was created), keeping the data within `cap` characters.
    pub(crate) fn add_timeline_fields(
        &self,
        key: SlotKey,
        id: u64,
        index: u32,
        fields: &str,
        cap: usize,
    ) {
        self.in_flight.update(key, id, |live| {
            let entry = live
                .extras
                .as_mut()
                .and_then(|x| x.events.get_mut(index as usize));
            let Some(entry) = entry else {
                return;
            };
            let data = entry.data.get_or_insert_with(String::new);
            let used = data.chars().count();
            if used >= cap {
                return;
            }
            if !data.is_empty() {
                data.push(' ');
            }
            let room = cap.saturating_sub(used + 1);
            match fields.char_indices().nth(room) {
                Some((at, _)) => {
                    data.push_str(fields.get(..at).unwrap_or_default());
                    data.push('…');
                }
                None => data.push_str(fields),
            }
        });
    }
}
