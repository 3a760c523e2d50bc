//! The publishing thread: every publish interval it writes this instance's snapshot to Redis,
//! reads the other instances' and the control commands, on a runtime of its own, so that
//! nothing the application runs ever waits on Redis.

use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{timeout, MissedTickBehavior};

use crate::store::Store;
use crate::{Snapshot, Stats, MAX_SNAPSHOT_BYTES};

use super::keys::{is_boot_id, Keys};
use super::options::RedisOptions;

/// Most other instances read at each publish.
const MAX_INSTANCES: usize = 256;

/// Most bytes of other instances' snapshots read at each publish, all instances together:
/// what the cluster view may hold is bounded whatever Redis holds (about 80 instances with
/// 256 URI sets and 1,000 requests in flight each). Instances past it are listed, not read.
const MAX_READ_BYTES: usize = 64 * 1024 * 1024;

/// Most control commands kept in the stream.
const MAX_COMMANDS: usize = 1000;

/// Writes the snapshot with its time to live, and the instance's last publish time by the
/// server's clock in the instances set (dropping members older than the retention), in one
/// atomic step; returns the server's `TIME`.
const PUBLISH: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('ZADD', KEYS[2], now, ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[2]))
redis.call('EXPIRE', KEYS[2], ARGV[2])
return t
";

use crate::stats::Control as Action;

#[derive(Debug)]
struct Command {
    action: Action,
    namespace: Option<String>,
}

/// How publishing goes, as the routes show it.
#[derive(Debug, Clone, Default)]
pub(crate) struct PublishState {
    /// Whether the last publish succeeded.
    pub(crate) ok: bool,
    pub(crate) last_error: Option<String>,
    /// Local time of the last successful publish.
    pub(crate) last_success: Option<f64>,
    /// The Redis server's time at the last successful publish.
    pub(crate) last_seen: Option<f64>,
    pub(crate) publishes: u64,
    pub(crate) failures: u64,
    /// Local clock minus the server's, from the midpoint of the last publish's round trip.
    pub(crate) clock_offset: Option<f64>,
}

/// Another instance, as read at the last publish.
#[derive(Debug, Clone)]
pub(crate) struct Remote {
    pub(crate) boot_id: String,
    /// Its last publish, by the Redis server's clock.
    pub(crate) last_seen: f64,
    /// `live`, `stale`, `stopped` or `incompatible`.
    pub(crate) state: &'static str,
    pub(crate) clock_offset: Option<f64>,
    /// Its snapshot, unless it could not be read.
    pub(crate) snapshot: Option<Snapshot>,
    /// Why it could not be read.
    pub(crate) error: Option<String>,
}

impl Remote {
    /// An instance whose snapshot was not read or not merged, and why.
    fn incompatible(boot_id: String, last_seen: f64, error: String) -> Self {
        Self {
            boot_id,
            last_seen,
            state: "incompatible",
            clock_offset: None,
            snapshot: None,
            error: Some(error),
        }
    }
}

/// The value an instance publishes: its state, its clock offset and its snapshot.
#[derive(Serialize)]
struct Publish<'a> {
    state: &'a str,
    clock_offset_seconds: Option<f64>,
    snapshot: &'a Snapshot,
}

/// A published value as read back, the snapshot still raw.
#[derive(Deserialize)]
struct Published<'a> {
    state: String,
    clock_offset_seconds: Option<f64>,
    #[serde(borrow)]
    snapshot: &'a RawValue,
}

/// A request to stop, answered once the last snapshot is published.
type Stop = oneshot::Sender<oneshot::Sender<()>>;

/// What the publishing thread shares with the routes.
pub(crate) struct Cluster {
    pub(crate) options: RedisOptions,
    /// This instance's boot id.
    origin: String,
    keys: Keys,
    state: Mutex<PublishState>,
    remote: RwLock<Arc<Vec<Remote>>>,
    commands: mpsc::Sender<Command>,
    stop: Mutex<Option<Stop>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("service", &self.options.service)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Starts publishing `store` (whose options were checked) on a thread of its own. The
    /// thread holds the store weakly, and ends when the store is dropped.
    pub(crate) fn start(options: RedisOptions, boot_id: String, store: Weak<Store>) -> Arc<Self> {
        let (commands, received) = mpsc::channel(64);
        let (stop, stopped) = oneshot::channel();
        let cluster = Arc::new(Self {
            origin: boot_id,
            keys: Keys::new(&options.service),
            options,
            state: Mutex::default(),
            remote: RwLock::default(),
            commands,
            stop: Mutex::new(Some(stop)),
        });
        let weak = Arc::downgrade(&cluster);
        let spawned = std::thread::Builder::new()
            .name("tower-stats-redis".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(runtime) = runtime {
                    runtime.block_on(run(weak, store, received, stopped));
                }
            });
        if let Err(e) = spawned {
            cluster.failed(format!("could not start the publishing thread: {e}"));
        }
        cluster
    }

    /// How publishing goes, and the other instances as last read.
    pub(crate) fn view(&self) -> (PublishState, Arc<Vec<Remote>>) {
        let state = self.lock_state().clone();
        let remote = Arc::clone(&self.remote.read().unwrap_or_else(PoisonError::into_inner));
        (state, remote)
    }

    /// Posts a control command to every instance; `false` when too many are waiting.
    pub(crate) fn post(&self, action: Action, namespace: Option<&str>) -> bool {
        let command = Command {
            action,
            namespace: namespace.map(str::to_owned),
        };
        self.commands.try_send(command).is_ok()
    }

    /// Publishes a last snapshot with state `stopped` and stops; waits at most `wait`.
    pub(crate) async fn leave(&self, wait: Duration) {
        let stop = self
            .stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(stop) = stop {
            let (done, finished) = oneshot::channel();
            if stop.send(done).is_ok() {
                let _ = timeout(wait, finished).await;
            }
        }
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, PublishState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn failed(&self, error: String) {
        let mut state = self.lock_state();
        state.ok = false;
        state.failures = state.failures.saturating_add(1);
        state.last_error = Some(error);
    }
}

/// Unix time now, in seconds.
fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The connection, the stream position and the client of the publishing thread.
struct Link {
    client: redis::Client,
    connection: Option<ConnectionManager>,
    /// The id of the last control command seen; `None` until the stream was first read.
    control_from: Option<String>,
}

impl Link {
    async fn connection(&mut self, wait: Duration) -> Result<ConnectionManager, String> {
        if let Some(connection) = &self.connection {
            return Ok(connection.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(wait))
            .set_response_timeout(Some(wait))
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_with_config(self.client.clone(), config)
            .await
            .map_err(|e| format!("cannot connect to Redis: {e}"))?;
        self.connection = Some(connection.clone());
        Ok(connection)
    }
}

async fn run(
    cluster: Weak<Cluster>,
    store: Weak<Store>,
    mut commands: mpsc::Receiver<Command>,
    mut stop: oneshot::Receiver<oneshot::Sender<()>>,
) {
    let Some(started) = cluster.upgrade() else {
        return;
    };
    let interval = started.options.publish_interval;
    // Publishing and reading must fit in the interval; past it, the round is skipped.
    let deadline = interval.min(Duration::from_secs(3));
    let Ok(client) = redis::Client::open(started.options.url.as_str()) else {
        started.failed("invalid Redis URL".to_owned());
        return;
    };
    let service = started.options.service.clone();
    drop(started);
    let mut link = Link {
        client,
        connection: None,
        control_from: None,
    };
    if let Some(store) = store.upgrade() {
        store.log_internal_event(format!("Instance started (service {service})"));
    }
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let (Some(cluster), Some(store)) = (cluster.upgrade(), store.upgrade()) else {
                    return;
                };
                round(&cluster, &store, &mut link, "live", deadline).await;
            }
            Some(command) = commands.recv() => {
                let Some(cluster) = cluster.upgrade() else {
                    return;
                };
                let posted = timeout(deadline, post(&cluster, &mut link, &command, deadline)).await;
                match posted {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => cluster.failed(e),
                    Err(_) => cluster.failed("posting a control command timed out".to_owned()),
                }
            }
            done = &mut stop => {
                if let (Some(cluster), Some(store)) = (cluster.upgrade(), store.upgrade()) {
                    store.log_internal_event("Instance stopped".to_owned());
                    round(&cluster, &store, &mut link, "stopped", deadline).await;
                }
                if let Ok(done) = done {
                    let _ = done.send(());
                }
                return;
            }
        }
    }
}

/// One publish and read, within `deadline`; a round that misses it is skipped and counted.
async fn round(
    cluster: &Cluster,
    store: &Arc<Store>,
    link: &mut Link,
    state: &str,
    deadline: Duration,
) {
    match timeout(
        deadline,
        publish_and_read(cluster, store, link, state, deadline),
    )
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            link.connection = None;
            cluster.failed(e);
        }
        Err(_) => {
            link.connection = None;
            cluster.failed(format!(
                "publish missed its deadline of {} ms and was skipped",
                deadline.as_millis()
            ));
        }
    }
}

async fn publish_and_read(
    cluster: &Cluster,
    store: &Arc<Store>,
    link: &mut Link,
    state: &str,
    deadline: Duration,
) -> Result<(), String> {
    let mut connection = link.connection(deadline).await?;
    let boot_id = store.boot_id.clone();
    let keys = &cluster.keys;
    let retention = cluster.options.retention.as_secs().max(1);
    let snapshot = crate::snapshot::collect::snapshot(store);
    let offset = cluster.lock_state().clock_offset;
    let payload = serde_json::to_vec(&Publish {
        state,
        clock_offset_seconds: offset,
        snapshot: &snapshot,
    })
    .map_err(|e| format!("cannot encode the snapshot: {e}"))?;
    drop(snapshot);

    let sent = now();
    let time: Vec<String> = redis::cmd("EVAL")
        .arg(PUBLISH)
        .arg(2)
        .arg(keys.snapshot(&boot_id))
        .arg(keys.instances())
        .arg(payload)
        .arg(retention)
        .arg(&boot_id)
        .query_async(&mut connection)
        .await
        .map_err(|e| format!("publish failed: {e}"))?;
    let received = now();
    let server = match time.as_slice() {
        [secs, micros] => {
            secs.parse::<f64>().unwrap_or(0.0) + micros.parse::<f64>().unwrap_or(0.0) / 1e6
        }
        _ => return Err("Redis answered TIME with something else".to_owned()),
    };
    {
        let mut s = cluster.lock_state();
        s.ok = true;
        s.publishes = s.publishes.saturating_add(1);
        s.last_success = Some(received);
        s.last_seen = Some(server);
        s.clock_offset = Some((sent + received) / 2.0 - server);
    }

    let others = read_instances(cluster, &mut connection, &boot_id, server).await?;
    *cluster
        .remote
        .write()
        .unwrap_or_else(PoisonError::into_inner) = Arc::new(others);
    apply_commands(cluster, store, link, &mut connection, &boot_id).await
}

/// The other instances of the service, with their last publish.
async fn read_instances(
    cluster: &Cluster,
    connection: &mut ConnectionManager,
    own: &str,
    server_now: f64,
) -> Result<Vec<Remote>, String> {
    let keys = &cluster.keys;
    let retention = cluster.options.retention.as_secs_f64();
    let members: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg(keys.instances())
        .arg(server_now - retention)
        .arg("+inf")
        .arg("BYSCORE")
        .arg("WITHSCORES")
        .query_async(connection)
        .await
        .map_err(|e| format!("reading the instances failed: {e}"))?;
    let members: Vec<(String, f64)> = members
        .into_iter()
        .filter(|(m, _)| is_boot_id(m) && m != own)
        .rev()
        .take(MAX_INSTANCES)
        .collect();
    if members.is_empty() {
        return Ok(Vec::new());
    }
    // The sizes first, so that nothing larger than the budget is ever received.
    let mut sizes = redis::pipe();
    for (member, _) in &members {
        sizes.cmd("STRLEN").arg(keys.snapshot(member));
    }
    let sizes: Vec<usize> = sizes
        .query_async(connection)
        .await
        .map_err(|e| format!("reading the snapshots' sizes failed: {e}"))?;
    let stale_after = cluster.options.publish_interval.as_secs_f64() * 3.0;
    let mut others = Vec::new();
    let mut wanted = Vec::new();
    let mut budget = MAX_READ_BYTES;
    for ((boot_id, last_seen), size) in members.into_iter().zip(sizes) {
        let left_out = |error: String| Remote::incompatible(boot_id.clone(), last_seen, error);
        if size == 0 {
            continue;
        } else if size > MAX_SNAPSHOT_BYTES {
            others.push(left_out(format!("its snapshot is {size} bytes, too large")));
        } else if size > budget {
            others.push(left_out(format!(
                "left out: the cluster view reads at most {MAX_READ_BYTES} bytes of snapshots"
            )));
        } else {
            budget -= size;
            wanted.push((boot_id, last_seen));
        }
    }
    if !wanted.is_empty() {
        let mut get = redis::cmd("MGET");
        for (member, _) in &wanted {
            get.arg(keys.snapshot(member));
        }
        let payloads: Vec<Option<Vec<u8>>> = get
            .query_async(connection)
            .await
            .map_err(|e| format!("reading the snapshots failed: {e}"))?;
        for ((boot_id, last_seen), payload) in wanted.into_iter().zip(payloads) {
            let Some(payload) = payload else { continue };
            let stale = server_now - last_seen > stale_after;
            others.push(remote(boot_id, last_seen, &payload, stale));
        }
    }
    others.sort_by(|a, b| a.boot_id.cmp(&b.boot_id));
    Ok(others)
}

/// Reads one instance's published value, as untrusted input.
fn remote(boot_id: String, last_seen: f64, payload: &[u8], stale: bool) -> Remote {
    let incompatible = |error: String| Remote::incompatible(boot_id.clone(), last_seen, error);
    if payload.len() > MAX_SNAPSHOT_BYTES {
        return incompatible(format!(
            "its snapshot is {} bytes, too large",
            payload.len()
        ));
    }
    let published: Published<'_> = match serde_json::from_slice(payload) {
        Ok(p) => p,
        Err(e) => return incompatible(format!("not a published snapshot: {e}")),
    };
    let snapshot = match Snapshot::from_json(published.snapshot.get().as_bytes()) {
        Ok(s) => s,
        Err(e) => return incompatible(e.to_string()),
    };
    if snapshot.server.boot_id != boot_id {
        return incompatible("its snapshot is of another instance".to_owned());
    }
    let state = match (published.state.as_str(), stale) {
        ("stopped", _) => "stopped",
        (_, true) => "stale",
        _ => "live",
    };
    Remote {
        boot_id,
        last_seen,
        state,
        clock_offset: published.clock_offset_seconds.filter(|o| o.is_finite()),
        snapshot: Some(snapshot),
        error: None,
    }
}

/// Applies the control commands posted since the last round by other instances.
async fn apply_commands(
    cluster: &Cluster,
    store: &Arc<Store>,
    link: &mut Link,
    connection: &mut ConnectionManager,
    own: &str,
) -> Result<(), String> {
    let key = cluster.keys.control();
    let Some(from) = link.control_from.clone() else {
        // Start after the last command already there: earlier ones were for earlier
        // instances.
        let last: Vec<(String, Vec<String>)> = redis::cmd("XREVRANGE")
            .arg(&key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(connection)
            .await
            .map_err(|e| format!("reading the control stream failed: {e}"))?;
        link.control_from = Some(
            last.first()
                .map_or_else(|| "0-0".to_owned(), |e| e.0.clone()),
        );
        return Ok(());
    };
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(&key)
        .arg(format!("({from}"))
        .arg("+")
        .arg("COUNT")
        .arg(100)
        .query_async(connection)
        .await
        .map_err(|e| format!("reading the control stream failed: {e}"))?;
    let stats = Stats {
        shared: Arc::clone(store),
    };
    for (id, fields) in entries {
        link.control_from = Some(id);
        let field = |name: &str| {
            fields
                .chunks(2)
                .find(|kv| kv.first().map(String::as_str) == Some(name))
                .and_then(|kv| kv.get(1))
                .map(String::as_str)
        };
        if field("origin") == Some(own) {
            continue;
        }
        let namespace = field("namespace").filter(|n| !n.is_empty());
        // A namespace this instance does not have is left alone.
        if let Some(action) = field("action").and_then(Action::parse) {
            let _ = action.apply(&stats, namespace);
        }
    }
    Ok(())
}

/// Posts a control command to the stream.
async fn post(
    cluster: &Cluster,
    link: &mut Link,
    command: &Command,
    deadline: Duration,
) -> Result<(), String> {
    let mut connection = link.connection(deadline).await?;
    // The command names the instance that posted it, which applied it already.
    let result: Result<String, redis::RedisError> = redis::cmd("XADD")
        .arg(cluster.keys.control())
        .arg("MAXLEN")
        .arg("~")
        .arg(MAX_COMMANDS)
        .arg("*")
        .arg("action")
        .arg(command.action.as_str())
        .arg("namespace")
        .arg(command.namespace.as_deref().unwrap_or(""))
        .arg("origin")
        .arg(&cluster.origin)
        .query_async(&mut connection)
        .await;
    result
        .map(drop)
        .map_err(|e| format!("posting a control command failed: {e}"))
}
