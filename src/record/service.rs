use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use std::marker::PhantomData;

use axum_core::body::Body;
use bytes::Bytes;
use http::{Request, Response};
use tower_service::Service;

use super::request_body::ReadCounter;
use super::{
    grpc, AxumBodies, GenericBodies, RecordGuard, RequestBody, RequestStats, ResponseBody,
    ResponseFuture,
};
use crate::config::StatsRouteMatch;
use crate::sanitize;
use crate::store::shard::{self, CachePadded};
use crate::store::uri_sets::{
    method_index, UriSet, UriSetEntry, HEAD_INDEX, METHOD_SLOTS, UNMATCHED,
};
use crate::store::Store;
use crate::Stats;

/// Middleware that records every request it serves into a [`Stats`] store.
///
/// The inner service receives an [`axum_core::body::Body`] and the response body is handed on
/// as one: under axum, which uses that type everywhere, a body is passed along as it is and
/// boxed only where the layer has to watch it. A request body that is not already at its end
/// is wrapped to count the bytes the inner service reads; a response body is wrapped to count
/// the bytes the server polls and to finish the record when the body ends or is dropped.
///
/// `M` is the [body mode](super::BodyMode): with [`AxumBodies`] (the default) the inner service
/// receives an [`axum_core::body::Body`] and the response body is handed on as one, boxed only
/// where the layer has to watch it; with [`GenericBodies`] the inner service receives a
/// [`RequestBody<B>`] and the response carries a [`ResponseBody<B>`], as with tower-http's
/// layers.
///
/// See the [module docs](crate::record) for an example.
#[derive(Debug)]
pub struct StatsService<S, M = AxumBodies> {
    inner: S,
    /// The store and what this service learned about the route it serves, through the handle
    /// of the write shard this instance was made for.
    handle: StoreRef,
    /// Every shard's handle, in the instance `Router::layer` keeps: a clone takes the handle
    /// of the shard of the thread that clones it, so that taking and dropping it writes a
    /// count that only that shard's threads write. `None` in clones.
    family: Option<Arc<[StoreRef]>>,
    mode: PhantomData<M>,
}

impl<S: Clone, M> Clone for StatsService<S, M> {
    /// A clone for the current thread's write shard (axum clones a route's service for each
    /// request). A clone of a clone keeps its handle.
    #[inline]
    fn clone(&self) -> Self {
        let handle = self
            .family
            .as_ref()
            .and_then(|family| family.get(shard::current(family.len())))
            .unwrap_or(&self.handle);
        Self {
            inner: self.inner.clone(),
            handle: Arc::clone(handle),
            family: None,
            mode: PhantomData,
        }
    }
}

/// A reference to the store for the requests of one write shard, with the service's route
/// cache: the reference count a request takes and drops is its handle's, which only that
/// shard's threads write, rather than the store's, which every thread would.
#[derive(Debug)]
pub(crate) struct ShardHandle {
    store: Arc<Store>,
    routes: Arc<RouteCache>,
    /// The write shard.
    shard: usize,
}

/// What a request keeps of the store: its shard's handle, on cache lines of its own.
pub(crate) type StoreRef = Arc<CachePadded<ShardHandle>>;

impl std::ops::Deref for ShardHandle {
    type Target = Store;

    #[inline]
    fn deref(&self) -> &Store {
        &self.store
    }
}

/// The URI set of the route a service instance serves, per method, so that a request to a
/// known route costs no hashing and no lock.
///
/// With axum's `Router::layer`, each route gets its own instance of the service, and every
/// request to it carries the same `MatchedPath`, so the first decision is remembered with the
/// matched path it was made for. A request is recognised by what its matched path says:
/// under a nested router each request's matched path is a string allocated for it, and once
/// freed, its address may be taken by another route's. The remembered matched path is kept
/// alive, so a request carrying that very string (the same address: no other string can be
/// there) is recognised without reading it, and any other by comparing the text. A
/// different matched path (an instance that serves several routes) simply takes the
/// ordinary path. Only decisions that cannot change are remembered: a set already used, and
/// an exact stats-route verdict.
#[derive(Debug, Default)]
struct RouteCache {
    slots: [OnceLock<CachedRoute>; METHOD_SLOTS],
}

#[derive(Debug)]
struct CachedRoute {
    /// The matched path the decision was made for, kept alive.
    matched: KnownPath,
    /// `None` for a request to the stats routes (left out).
    entry: Option<Arc<UriSetEntry>>,
}

impl RouteCache {
    #[inline]
    fn get(&self, method: usize, matched: &str) -> Option<&CachedRoute> {
        let cached = self.slots.get(method)?.get()?;
        let known = cached.matched.as_str();
        // The same string (`known` is alive, so no other string is at its address), or the
        // same text in another string.
        let same = (known.as_ptr() == matched.as_ptr() && known.len() == matched.len())
            || known == matched;
        same.then_some(cached)
    }

    fn remember(&self, method: usize, matched: KnownPath, entry: Option<Arc<UriSetEntry>>) {
        if let Some(slot) = self.slots.get(method) {
            let _ = slot.set(CachedRoute { matched, entry });
        }
    }
}

/// A request's matched path, owned: axum's `MatchedPath` (a reference-counted string), or
/// `<unmatched>`.
#[derive(Debug, Clone)]
enum KnownPath {
    Unmatched,
    #[cfg(feature = "axum")]
    Matched(axum::extract::MatchedPath),
}

impl KnownPath {
    fn of(extensions: &http::Extensions) -> Self {
        #[cfg(feature = "axum")]
        if let Some(matched) = extensions.get::<axum::extract::MatchedPath>() {
            return Self::Matched(matched.clone());
        }
        let _ = extensions;
        Self::Unmatched
    }

    #[inline]
    fn as_str(&self) -> &str {
        match self {
            Self::Unmatched => UNMATCHED,
            #[cfg(feature = "axum")]
            Self::Matched(matched) => matched.as_str(),
        }
    }
}

impl<S> StatsService<S> {
    /// Wraps `inner`, recording into `stats`, in the default body mode ([`AxumBodies`]).
    pub fn new(inner: S, stats: Stats) -> Self {
        Self::with_mode(inner, stats)
    }
}

impl<S, M> StatsService<S, M> {
    /// Wraps `inner`, recording into `stats`, in body mode `M`.
    pub(crate) fn with_mode(inner: S, stats: Stats) -> Self {
        let routes: Arc<RouteCache> = Arc::default();
        let store = stats.shared;
        let family: Arc<[StoreRef]> = (0..store.http.shards.len())
            .map(|shard| {
                Arc::new(CachePadded::new(ShardHandle {
                    store: Arc::clone(&store),
                    routes: Arc::clone(&routes),
                    shard,
                }))
            })
            .collect();
        let handle = Arc::clone(&family[0]);
        Self {
            inner,
            handle,
            family: Some(family),
            mode: PhantomData,
        }
    }

    /// A reference to the inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// A mutable reference to the inner service.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for StatsService<S, AxumBodies>
where
    S: Service<Request<Body>, Response = Response<ResBody>>,
    ReqBody: http_body::Body<Data = Bytes> + Send + 'static,
    ReqBody::Error: Into<axum_core::BoxError>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<axum_core::BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, AxumBodies>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        // A body already at its end (most GET requests) has nothing to count: it is passed on
        // as it came, which under axum costs nothing.
        self.record(req, Body::new, |body, counter| {
            Body::new(RequestBody::new(body, Some(counter)))
        })
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for StatsService<S, GenericBodies>
where
    S: Service<Request<RequestBody<ReqBody>>, Response = Response<ResBody>>,
    ReqBody: http_body::Body,
    ResBody: http_body::Body,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, GenericBodies>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        self.record(
            req,
            |body| RequestBody::new(body, None),
            |body, counter| RequestBody::new(body, Some(counter)),
        )
    }
}

impl<S, M> StatsService<S, M> {
    /// Records `req` (unless it is left out) and calls the inner service with its body made
    /// into the inner service's body type: by `plain` when nothing is to be counted (the
    /// request is not recorded, or its body is already at its end), else by `counted`.
    #[inline(always)]
    fn record<ReqBody, InnerBody>(
        &mut self,
        mut req: Request<ReqBody>,
        plain: impl FnOnce(ReqBody) -> InnerBody,
        counted: impl FnOnce(ReqBody, ReadCounter) -> InnerBody,
    ) -> ResponseFuture<S::Future, M>
    where
        S: Service<Request<InnerBody>>,
        ReqBody: http_body::Body,
    {
        let handle = &self.handle;
        let shared = &handle.store;
        if !shared.http.enabled.load(Ordering::Relaxed) {
            return self.pass_through(req, plain);
        }
        // The request is read in place and moved once, into the inner call.
        let config = &shared.config;
        let method = method_index(req.method());
        // gRPC calls (always `POST` over HTTP/2) are counted under their path,
        // `/package.Service/Method`.
        let grpc = req.version() == http::Version::HTTP_2
            && req.method() == http::Method::POST
            && grpc::is_grpc_request(req.headers());
        let labelled =
            grpc || config.uri_set_hook.is_some() || req.extensions().get::<UriSet>().is_some();
        let matched = matched_path(req.extensions());
        let cached = if labelled {
            None
        } else {
            handle.routes.get(method, matched.unwrap_or(UNMATCHED))
        };
        // The request writes one shard until it ends: its id, its counters, its part of the URI
        // set (whose reference count only this shard writes). The current thread's, or, in a
        // clone, the shard of the thread that cloned the service: axum and hyper clone it for
        // each request, on the thread that then calls it.
        let shard = if self.family.is_some() {
            shared.http.current_shard()
        } else {
            handle.shard
        };
        let uri_set = match cached {
            Some(CachedRoute { entry: None, .. }) => return self.pass_through(req, plain),
            Some(CachedRoute {
                entry: Some(entry), ..
            }) => {
                if !config.filters.is_empty()
                    && !config.filters.allows(
                        req.method().as_str(),
                        req.uri().path(),
                        entry.route(),
                    )
                {
                    return self.pass_through(req, plain);
                }
                Arc::clone(entry.shard(shard))
            }
            None => {
                let entry;
                (req, entry) = self.resolve(req, method, labelled, grpc);
                match entry {
                    Some(entry) => Arc::clone(entry.shard(shard)),
                    None => return self.pass_through(req, plain),
                }
            }
        };
        let client = if config.record_client {
            client_of(req.extensions())
        } else {
            None
        };
        let id = shared.http.next_id(shard);
        let detailed = sampled(id, config.record_fraction);
        // Kept for the exemplars, which only requests with a detailed record can be.
        let trace_id = if detailed {
            crate::store::exemplars::trace_id_of(req.headers())
        } else {
            crate::store::exemplars::TraceId::NONE
        };
        let mut guard = RecordGuard::start(
            Arc::clone(handle),
            shard,
            id,
            req.method(),
            req.uri(),
            uri_set,
            client,
            detailed,
            trace_id,
        );
        if grpc {
            guard.watch_grpc();
        }
        let key = guard.key();
        if config.request_extension {
            req.extensions_mut()
                .insert(RequestStats::new(Arc::clone(handle), id, key));
        }
        let head = method == HEAD_INDEX;
        let req = req.map(|body| {
            if http_body::Body::is_end_stream(&body) {
                plain(body)
            } else {
                counted(body, ReadCounter::new(Arc::clone(handle), id, key))
            }
        });
        // If the inner `call` panics, the guard is dropped while unwinding: recorded as panicked.
        #[cfg(feature = "tracing")]
        let (future, guard) = {
            // The request is current during the inner `call` too, so that a span an inner
            // layer creates there (tower-http's `TraceLayer`) is linked to it.
            let mut guard = guard;
            let entered = super::handle::PollScope::enter(&mut guard.current);
            let future = self.inner.call(req);
            drop(entered);
            (future, guard)
        };
        #[cfg(not(feature = "tracing"))]
        let future = self.inner.call(req);
        ResponseFuture::new(future, Some(guard), head)
    }

    /// Calls the inner service without recording anything.
    fn pass_through<ReqBody, InnerBody>(
        &mut self,
        req: Request<ReqBody>,
        plain: impl FnOnce(ReqBody) -> InnerBody,
    ) -> ResponseFuture<S::Future, M>
    where
        S: Service<Request<InnerBody>>,
    {
        ResponseFuture::new(self.inner.call(req.map(plain)), None, false)
    }
}

impl<S, M> StatsService<S, M> {
    /// The URI set of a request whose route this instance has not remembered yet: `None`
    /// when the request is not recorded.
    ///
    /// Under axum, a route's requests come here only until the route is remembered, so this
    /// is kept out of `call`'s way (marked cold: `call` then runs fewer instructions and less
    /// code per request). Requests labelled by a URI-set hook or extension always come here.
    #[cold]
    #[inline(never)]
    fn resolve<ReqBody>(
        &self,
        req: Request<ReqBody>,
        method: usize,
        labelled: bool,
        grpc: bool,
    ) -> (Request<ReqBody>, Option<Arc<UriSetEntry>>) {
        let shared = &self.handle.store;
        let config = &shared.config;
        let matched = matched_path(req.extensions());
        let stats_route = if config.record_stats_routes {
            Some(false)
        } else {
            match matched.map(|m| (m, config.stats_route_match(m))) {
                None | Some((_, StatsRouteMatch::No)) => Some(false),
                Some((_, StatsRouteMatch::Exact)) => Some(true),
                Some((m, StatsRouteMatch::Candidate)) => {
                    // Nested stats routes are learned when served: not final yet.
                    shared.is_stats_route(m).then_some(true)
                }
            }
        };
        if stats_route == Some(true) {
            if !labelled {
                self.handle
                    .routes
                    .remember(method, KnownPath::of(req.extensions()), None);
            }
            return (req, None);
        }
        // The URI set hook is given the request's parts.
        let (parts, body) = req.into_parts();
        let route = route_of(shared, &parts, grpc);
        let entry = (config.filters.is_empty()
            || config
                .filters
                .allows(parts.method.as_str(), parts.uri.path(), &route))
        .then(|| shared.http.uri_sets.get(method, &route));
        drop(route);
        let req = Request::from_parts(parts, body);
        let Some(entry) = entry else {
            return (req, None);
        };
        // Remember a set once it has been used: a route whose requests all move to
        // another set (`set_uri_set`) must not keep an empty key alive.
        if !labelled && stats_route == Some(false) && entry.is_used() {
            self.handle.routes.remember(
                method,
                KnownPath::of(req.extensions()),
                Some(Arc::clone(&entry)),
            );
        }
        (req, Some(entry))
    }
}

/// Whether request `id` keeps a detailed record: a hash of the id compared with `fraction`,
/// so the choice is spread evenly and costs no lock and no random-number state.
#[inline]
fn sampled(id: u64, fraction: f64) -> bool {
    if fraction >= 1.0 {
        return true;
    }
    if fraction <= 0.0 {
        return false;
    }
    // SplitMix64's finalizer: consecutive ids map to well-spread 64-bit values.
    let mut z = id.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    ((z >> 11) as f64) < fraction * (1u64 << 53) as f64
}

/// The route part of a request's URI set key, cleaned and capped: the application's label
/// (a [`UriSet`] extension, then the URI-set hook), else a gRPC request's path
/// (`/package.Service/Method`), else axum's matched path, else `<unmatched>`.
fn route_of<'a>(shared: &Store, parts: &'a http::request::Parts, grpc: bool) -> Cow<'a, str> {
    let cap = shared.config.max_string_len;
    let label: Cow<'a, str> = if let Some(set) = parts.extensions.get::<UriSet>() {
        Cow::Borrowed(set.as_str())
    } else if let Some(label) = shared
        .config
        .uri_set_hook
        .as_ref()
        .and_then(|hook| hook(parts))
    {
        label
    } else if grpc {
        Cow::Borrowed(parts.uri.path())
    } else {
        matched_path(&parts.extensions).map_or(Cow::Borrowed(UNMATCHED), Cow::Borrowed)
    };
    if sanitize::needs_cleaning(&label, cap) {
        Cow::Owned(sanitize::clean(&label, cap))
    } else {
        label
    }
}

#[cfg(feature = "axum")]
#[inline]
fn matched_path(extensions: &http::Extensions) -> Option<&str> {
    extensions
        .get::<axum::extract::MatchedPath>()
        .map(axum::extract::MatchedPath::as_str)
}

#[cfg(not(feature = "axum"))]
fn matched_path(_extensions: &http::Extensions) -> Option<&str> {
    None
}

fn client_of(extensions: &http::Extensions) -> Option<SocketAddr> {
    #[cfg(feature = "axum")]
    if let Some(info) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0);
    }
    extensions.get::<SocketAddr>().copied()
}

#[cfg(all(test, feature = "axum"))]
mod tests {
    use axum::extract::MatchedPath;
    use tokio::time::Instant;
    use tower::ServiceExt;

    use super::*;
    use crate::store::uri_sets::UriSets;

    /// The matched path axum gives a request to `route` (served at `path`).
    fn matched_path_of(route: &str, path: &str) -> MatchedPath {
        let app = axum::Router::new().route(
            route,
            axum::routing::get(|matched: MatchedPath| async move {
                let mut response = axum::response::Response::new(Body::empty());
                response.extensions_mut().insert(matched);
                response
            }),
        );
        let request = Request::get(path).body(Body::empty()).expect("a request");
        futures_util::FutureExt::now_or_never(app.oneshot(request))
            .expect("answers at once")
            .expect("infallible")
            .extensions()
            .get::<MatchedPath>()
            .cloned()
            .expect("the handler's matched path")
    }

    /// A nested router gives each request a matched path allocated for it: once a request's
    /// string is freed, another route's string of the same length may take its address. The
    /// cache tells them apart by what they say, not where they are.
    #[test]
    fn a_route_is_recognised_by_its_matched_path_not_by_where_the_string_is() {
        let sets = UriSets::new(16, Instant::now(), 0, Arc::from([]), 2);
        let cache = RouteCache::default();
        let get = method_index(&http::Method::GET);
        let aa = matched_path_of("/api/aa", "/api/aa");
        cache.remember(
            get,
            KnownPath::Matched(aa.clone()),
            Some(sets.get(get, "/api/aa")),
        );
        let hit = |cache: &RouteCache, matched: &str| {
            cache
                .get(get, matched)
                .map(|c| c.entry.as_ref().map(|e| e.key().to_owned()))
        };
        let known = Some(Some("GET /api/aa".to_owned()));
        // The very string, and the same text in another string (the next request's).
        assert_eq!(hit(&cache, aa.as_str()), known);
        let mut matched = String::from("/api/aa");
        assert_eq!(hit(&cache, &matched), known);
        // Another route's text in that same string: a string at an address that was seen.
        matched.replace_range(.., "/api/bb");
        assert_eq!(
            hit(&cache, &matched),
            None,
            "another route at the same address"
        );
        assert_eq!(hit(&cache, "/api/a"), None);
        assert_eq!(hit(&cache, "/api/aaa"), None);
        // The remembered string stays alive: its address cannot go to another string.
        let address = aa.as_str().as_ptr();
        drop(aa);
        let cached = cache.slots[get].get().expect("remembered");
        assert_eq!(cached.matched.as_str().as_ptr(), address);
        assert_eq!(cached.matched.as_str(), "/api/aa");
        // Other methods have slots of their own; `<unmatched>` is a route like any other.
        let post = method_index(&http::Method::POST);
        assert!(cache.get(post, "/api/aa").is_none());
        cache.remember(post, KnownPath::Unmatched, None);
        assert!(cache
            .get(post, UNMATCHED)
            .is_some_and(|c| c.entry.is_none()));
        assert!(cache.get(post, "/api/aa").is_none());
    }
}
