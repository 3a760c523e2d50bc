//! Several instances, one view, through Redis (feature `redis`).
//!
//! Each instance of a service publishes its own [`Snapshot`](crate::Snapshot) to Redis every publish interval,
//! from a thread of its own: no request ever waits on Redis, and a Redis that is down, slow or
//! stopped only shows as the cluster's status. The stats routes then show the whole service:
//! the snapshots of every instance merged by each value's rule
//! ([`Snapshot::merge`](crate::Snapshot::merge)), with a
//! per-instance breakdown, and `?scope=local` or `?instance=NAME` for one instance.
//!
//! In Redis, everything of one service shares the hash tag `{service}`, so that it lives in one
//! slot of a Redis Cluster:
//!
//! - `tower-stats:{service}:snapshot:<boot id>`: the instance's last publish, an absolute,
//!   idempotent value (never a delta) with a time to live of the retention;
//! - `tower-stats:{service}:instances`: a sorted set of boot ids by the time of their last
//!   publish, on the Redis server's clock (`TIME`), not the instances' own;
//! - `tower-stats:{service}:control`: a stream of control commands (`pause`, `resume`,
//!   `reset`) posted with `scope=cluster`, which every live instance applies within one
//!   publish interval.
//!
//! An instance is its name plus a random boot id: a restart under the same name is a new
//! instance, and never overwrites or double-counts the previous run. An instance is `live`
//! while it publishes, `stale` after three publish intervals without one, and `stopped` once it
//! published its last snapshot on a graceful shutdown ([`Stats::leave_cluster`]). What is read
//! back from Redis is untrusted: sizes are capped, schema versions checked (an instance of
//! another version is listed as `incompatible` and not merged), strings cleaned again.
//!
//! [`Stats::leave_cluster`]: crate::Stats::leave_cluster

mod keys;
mod options;
mod publisher;
mod view;

pub use self::options::RedisOptions;

pub(crate) use self::publisher::Cluster;
pub(crate) use self::view::Scope;
