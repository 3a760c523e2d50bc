//! The links from spans to their requests: a fixed table keyed by span id, allocated once with
//! the layer, written and read without a lock and without allocating.
//!
//! A span linked to a request keeps its link here: the request and the span's slot on its
//! timeline. The table has [`ENTRIES`] entries of 32 bytes (128 KiB), open addressing: a span
//! id is looked for in a window of [`WINDOW`] entries from a hash of the id, so a look-up
//! reads 256 bytes at most. When the window has no free entry (more linked spans open
//! at once than the table holds, or an unlucky cluster), [`SpanLinks::insert`] says so and the
//! layer keeps that link in the span's extensions instead, as tracing-subscriber offers
//! (which boxes it); [`SpanLinks::spilled`] tells the layer whether any link is kept there, so
//! that look-ups only try the extensions when one might be.
//!
//! Each entry is a small seqlock. Its span id is `0` when the entry is free and [`BUSY`]
//! while a link is being written. Inserting takes a free entry (`0` to `BUSY`), writes the
//! link, then publishes the span id. Reading loads the span id, the link, and the span id
//! again, and accepts the link only if the id did not change in between, so a link being
//! written, or an entry freed and taken by another span meanwhile, is never read as the
//! span's. Removing reads the link the same way, then frees the entry.
//!
//! Span ids come from the subscriber's registry, which gives each live span an id of its own
//! (non-zero) and reuses an id only after every layer has seen the span close: so a live span
//! is in at most one entry, and its entry is not freed while the span is being looked up.

use std::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::store::in_flight::SlotKey;

/// Entries of the layer's table (128 KiB). The links open at once are the spans open at once
/// in requests that keep a detailed record: the requests in flight times the spans open in
/// each (a request span, a handler's `#[instrument]`, a query inside it: a few), plus spans
/// that outlive their request in spawned tasks. With 4,096 entries, a thousand such spans
/// open at once (250 recorded requests in flight with four each) fill a quarter of the table,
/// where a simulation with random span ids finds the window full for about one insert in
/// 2,400 (at half full, one in 50); such a link goes to the span's extensions and costs one
/// allocation, nothing is lost. A larger table would cost memory for every application that
/// installs the layer; a longer window, reads for every look-up of a span that has no link.
pub(crate) const ENTRIES: usize = 4096;

/// Entries tried for one span id: 8 entries of 32 bytes.
pub(crate) const WINDOW: usize = 8;

/// The span id of an entry whose link is being written (never a live span's id in practice;
/// a span with this id keeps its link in its extensions).
const BUSY: u64 = u64::MAX;

/// The span id of a free entry (tracing's span ids are non-zero).
const FREE: u64 = 0;

/// What a span linked to a request is linked to: the request and the span's slot on its
/// timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpanLink {
    /// The request's id.
    pub(crate) id: u64,
    /// Where the request is in the in-flight table.
    pub(crate) key: SlotKey,
    /// The span's slot on the request's timeline (`u32::MAX` for none, in a link to the
    /// request itself).
    pub(crate) index: u32,
}

/// One entry: a span id and its link, 32 bytes aligned to 32, so that an entry never spans
/// two cache lines.
#[derive(Debug)]
#[repr(align(32))]
struct Entry {
    span: AtomicU64,
    request: AtomicU64,
    key: AtomicU64,
    index: AtomicU32,
}

impl Entry {
    const fn new() -> Self {
        Self {
            span: AtomicU64::new(FREE),
            request: AtomicU64::new(0),
            key: AtomicU64::new(0),
            index: AtomicU32::new(0),
        }
    }

    /// The link, if the entry holds span `span` (not `FREE` or `BUSY`) before and after it
    /// is read.
    #[inline]
    fn read(&self, span: u64) -> Option<SpanLink> {
        if self.span.load(Ordering::Acquire) != span {
            return None;
        }
        let link = SpanLink {
            id: self.request.load(Ordering::Relaxed),
            key: SlotKey::from_bits(self.key.load(Ordering::Relaxed)),
            index: self.index.load(Ordering::Relaxed),
        };
        // Orders the reads of the link before the second read of the id: if a writer's link
        // was read, its `BUSY` is seen below (it wrote the link after a release fence).
        fence(Ordering::Acquire);
        (self.span.load(Ordering::Relaxed) == span).then_some(link)
    }
}

/// The table of links; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct SpanLinks {
    entries: Box<[Entry]>,
    /// `entries.len() - 1` (the length is a power of two).
    mask: usize,
    /// How far a hash is shifted right to leave its high bits, the entry's index.
    shift: u32,
    /// Links kept in span extensions because their window was full, not yet removed.
    spilled: AtomicUsize,
}

impl SpanLinks {
    /// A table of [`ENTRIES`] entries.
    pub(crate) fn new() -> Self {
        Self::with_entries(ENTRIES)
    }

    /// A table of `entries` entries, rounded up to a power of two of at least [`WINDOW`].
    pub(crate) fn with_entries(entries: usize) -> Self {
        let len = entries.max(WINDOW).next_power_of_two();
        Self {
            entries: (0..len).map(|_| Entry::new()).collect(),
            mask: len - 1,
            shift: 64 - len.trailing_zeros(),
            spilled: AtomicUsize::new(0),
        }
    }

    /// The first entry of span `span`'s window. Registry ids are slab indexes (low bits) and
    /// generations (high bits): the multiplication spreads every bit into the high bits kept.
    #[inline]
    fn home(&self, span: u64) -> usize {
        let hash = span.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        usize::try_from(hash >> self.shift).unwrap_or(0)
    }

    #[inline]
    fn window(&self, span: u64) -> impl Iterator<Item = &Entry> {
        let home = self.home(span);
        (0..WINDOW).filter_map(move |i| self.entries.get((home + i) & self.mask))
    }

    /// Links span `span` (a live span not yet linked); `false` when its window is full (or
    /// the id cannot be told from a free or busy entry): the caller keeps the link elsewhere.
    pub(crate) fn insert(&self, span: u64, link: SpanLink) -> bool {
        if span == FREE || span == BUSY {
            return false;
        }
        for entry in self.window(span) {
            if entry.span.load(Ordering::Relaxed) != FREE
                || entry
                    .span
                    .compare_exchange(FREE, BUSY, Ordering::Acquire, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            // Makes `BUSY` visible to a reader that reads any part of the new link.
            fence(Ordering::Release);
            entry.request.store(link.id, Ordering::Relaxed);
            entry.key.store(link.key.to_bits(), Ordering::Relaxed);
            entry.index.store(link.index, Ordering::Relaxed);
            entry.span.store(span, Ordering::Release);
            return true;
        }
        false
    }

    /// The link of span `span`, if the table holds it.
    #[inline]
    pub(crate) fn get(&self, span: u64) -> Option<SpanLink> {
        if span == FREE || span == BUSY {
            return None;
        }
        self.window(span).find_map(|entry| entry.read(span))
    }

    /// Takes span `span`'s link out of the table (the span closed), freeing its entry.
    pub(crate) fn remove(&self, span: u64) -> Option<SpanLink> {
        if span == FREE || span == BUSY {
            return None;
        }
        self.window(span).find_map(|entry| {
            let link = entry.read(span)?;
            entry
                .span
                .compare_exchange(span, FREE, Ordering::Release, Ordering::Relaxed)
                .ok()
                .map(|_| link)
        })
    }

    /// Counts a link kept in a span's extensions.
    pub(crate) fn spill(&self) {
        self.spilled.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a link taken out of a span's extensions.
    pub(crate) fn unspill(&self) {
        let _ = self
            .spilled
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// Whether a link may be kept in a span's extensions. A span's link was spilled before
    /// the span could be looked up (in the call that created it), so a look-up that happens
    /// after sees the count include it.
    #[inline]
    pub(crate) fn spilled(&self) -> bool {
        self.spilled.load(Ordering::Relaxed) != 0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    use super::*;

    /// A link that tells which span it was written for.
    fn link_of(span: u64) -> SpanLink {
        SpanLink {
            id: span.wrapping_mul(3),
            key: SlotKey::from_bits(span ^ 0x5555_0000_AAAA),
            index: (span as u32).wrapping_add(7),
        }
    }

    /// `n` span ids whose window starts at the same entry as `span`'s.
    fn same_home(links: &SpanLinks, span: u64, n: usize) -> Vec<u64> {
        let home = links.home(span);
        (span..)
            .filter(|s| links.home(*s) == home)
            .take(n)
            .collect()
    }

    #[test]
    fn a_link_is_found_until_removed() {
        let links = SpanLinks::new();
        assert_eq!(links.entries.len(), ENTRIES);
        assert_eq!(
            (ENTRIES, ENTRIES * std::mem::size_of::<Entry>()),
            (4096, 128 * 1024),
            "as the docs say"
        );
        assert!(links.insert(1, link_of(1)));
        assert!(links.insert(2, link_of(2)));
        assert_eq!(links.get(1), Some(link_of(1)));
        assert_eq!(links.get(2), Some(link_of(2)));
        assert_eq!(links.get(3), None);
        assert_eq!(links.remove(1), Some(link_of(1)));
        assert_eq!(links.get(1), None);
        assert_eq!(links.remove(1), None, "removed once");
        assert_eq!(links.get(2), Some(link_of(2)));
        assert_eq!(links.get(FREE), None);
        assert!(
            !links.insert(BUSY, link_of(BUSY)),
            "not told from a busy entry"
        );
        assert_eq!(links.get(BUSY), None);
    }

    #[test]
    fn a_key_packs_into_one_word_and_back() {
        for span in [0, 1, u64::MAX, 0xFFFF_FFFF, 1 << 32] {
            let key = SlotKey::from_bits(span);
            assert_eq!(key.to_bits(), span);
        }
        assert_eq!(SlotKey::from_bits(SlotKey::NONE.to_bits()), SlotKey::NONE);
    }

    #[test]
    fn an_entry_freed_and_taken_by_another_span_is_not_mistaken_for_it() {
        let links = SpanLinks::with_entries(64);
        let spans = same_home(&links, 1, 2);
        let (first, second) = (spans[0], spans[1]);
        assert!(links.insert(first, link_of(first)));
        let taken = links.home(first);
        assert_eq!(links.remove(first), Some(link_of(first)));
        // The second span takes the entry the first one left.
        assert!(links.insert(second, link_of(second)));
        assert_eq!(
            links.entries[taken].span.load(Ordering::Relaxed),
            second,
            "the freed entry is reused"
        );
        assert_eq!(links.get(first), None);
        assert_eq!(links.remove(first), None);
        assert_eq!(links.get(second), Some(link_of(second)));
        // An entry being written reads as no link, whatever its words hold.
        let entry = &links.entries[taken];
        entry.span.store(BUSY, Ordering::Relaxed);
        assert_eq!(entry.read(second), None);
        assert_eq!(links.get(second), None);
        entry.span.store(second, Ordering::Release);
        assert_eq!(links.get(second), Some(link_of(second)));
    }

    #[test]
    fn a_full_window_says_so_and_frees_up_on_removal() {
        let links = SpanLinks::with_entries(64);
        let spans = same_home(&links, 1, WINDOW + 1);
        for span in &spans[..WINDOW] {
            assert!(links.insert(*span, link_of(*span)), "span {span}");
        }
        let last = spans[WINDOW];
        assert!(!links.insert(last, link_of(last)), "the window is full");
        assert_eq!(links.get(last), None);
        for span in &spans[..WINDOW] {
            assert_eq!(links.get(*span), Some(link_of(*span)));
        }
        assert_eq!(links.remove(spans[3]), Some(link_of(spans[3])));
        assert!(links.insert(last, link_of(last)));
        assert_eq!(links.get(last), Some(link_of(last)));

        // A table never holds more than its entries.
        let small = SpanLinks::with_entries(16);
        let held = (1..=1000).filter(|s| small.insert(*s, link_of(*s))).count();
        assert!(held <= 16, "{held}");
        assert!((1..=1000).all(|s| small.get(s).is_none_or(|l| l == link_of(s))));

        assert!(!links.spilled());
        links.spill();
        links.spill();
        assert!(links.spilled());
        links.unspill();
        assert!(links.spilled());
        links.unspill();
        links.unspill();
        assert!(!links.spilled(), "never below zero");
    }

    /// Threads link, look up and unlink spans of their own in a small table (so that
    /// windows overlap and entries are reused all the time), while another thread looks up
    /// spans nobody links: every look-up finds the span's own link or, once it is removed or
    /// when its window was full, nothing.
    #[test]
    fn concurrent_links_are_never_mistaken() {
        const THREADS: u64 = 4;
        const ROUNDS: u64 = 20_000;
        let links = Arc::new(SpanLinks::with_entries(32));
        let stop = Arc::new(AtomicBool::new(false));
        let stranger = {
            let (links, stop) = (Arc::clone(&links), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut looked = 0u64;
                loop {
                    for span in (1u64 << 40)..(1u64 << 40) + 64 {
                        assert_eq!(links.get(span), None, "span {span} was never linked");
                        looked += 1;
                    }
                    if stop.load(Ordering::Relaxed) {
                        return looked;
                    }
                }
            })
        };
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let links = Arc::clone(&links);
                std::thread::spawn(move || {
                    let mut linked = 0u64;
                    let mut open = Vec::new();
                    for round in 0..ROUNDS {
                        let span = (t + 1) << 32 | round;
                        if links.insert(span, link_of(span)) {
                            linked += 1;
                            open.push(span);
                        } else {
                            assert_eq!(links.get(span), None);
                        }
                        for span in &open {
                            assert_eq!(links.get(*span), Some(link_of(*span)));
                        }
                        // Up to three spans of this thread open at once; the oldest closes.
                        if open.len() == 3 {
                            let span = open.remove(0);
                            assert_eq!(links.remove(span), Some(link_of(span)));
                            assert_eq!(links.get(span), None);
                        }
                    }
                    for span in open {
                        assert_eq!(links.remove(span), Some(link_of(span)));
                    }
                    linked
                })
            })
            .collect();
        let linked: u64 = workers
            .into_iter()
            .map(|w| w.join().expect("no false link"))
            .sum();
        stop.store(true, Ordering::Relaxed);
        assert!(stranger.join().expect("no false link") > 0);
        // 12 spans open at most in 32 entries: most of them find room.
        assert!(linked > THREADS * ROUNDS / 2, "{linked}");
        assert!(links
            .entries
            .iter()
            .all(|e| e.span.load(Ordering::Relaxed) == FREE));
    }
}
