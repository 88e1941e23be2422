//! Where a merged (`/clusters/*`) watch can resume: for every resourceVersion the stand-in handed
//! to a client, the position of each member stream at that moment.
//!
//! Why: a merged watch forwards member events as they arrive, so its resourceVersions are not
//! monotonic across members. A client resuming from RV `X` must continue every member from where
//! *that* member was when `X` was emitted, not from `X` itself (which would skip a member-B event
//! with RV < X still pending when X was sent). The RV stays a plain etcd revision on the wire;
//! the per-member vector lives here.
//!
//! Invariants:
//! - A lookup never returns a position ahead of what the client has seen: when several streams
//!   emitted the same RV, the per-cluster minimum is used (duplicates are possible, loss is not);
//!   a cluster known to only some of them is replayed from its state (`Joining`).
//! - Per key, a `floor` only rises; RVs at or below it are forgotten together in every log, and
//!   are answered with 410 Gone, so the client relists.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Mutex,
    time::{Duration, Instant},
};

use super::names::ClusterId;

/// Where one member stream of a merged watch stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    /// The client has every event of this member up to this revision: watch from it.
    Watching(u64),
    /// The client may have only part of this member's state at this revision: replay the state
    /// at it (ADDED for everything), then watch from it.
    Joining(u64),
}

impl Position {
    pub fn revision(self) -> u64 {
        match self {
            Position::Watching(r) | Position::Joining(r) => r,
        }
    }

    /// The position safe for both: the older revision, replaying if either replays.
    fn merge(self, other: Position) -> Position {
        let rv = self.revision().min(other.revision());
        match (self, other) {
            (Position::Watching(_), Position::Watching(_)) => Position::Watching(rv),
            _ => Position::Joining(rv),
        }
    }
}

/// Member positions by logical cluster.
pub type Vector = BTreeMap<ClusterId, Position>;

/// What a merged watch is over. Resumes are matched among streams with the same key: the
/// client's own stream is always among them, and streams with other filters (which may lag
/// elsewhere) do not add needless replays.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StreamKey {
    pub export: String,
    pub group: String,
    pub resource: String,
    /// Namespace and selectors, as the member requests carry them.
    pub filter: String,
}

/// The `filter` of a [`StreamKey`].
pub fn filter_key(namespace: Option<&str>, selectors: &str) -> String {
    format!("{}?{selectors}", namespace.unwrap_or_default())
}

/// One change of a stream's vector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Set(ClusterId, Position),
    Remove(ClusterId),
}

#[derive(Debug)]
struct Entry {
    token: Option<u64>,
    change: Option<Change>,
}

#[derive(Debug)]
struct StreamLog {
    id: u64,
    base: Vector,
    base_token: Option<u64>,
    entries: Vec<Entry>,
    latest_token: Option<u64>,
    ended_at: Option<Instant>,
}

impl StreamLog {
    fn max_token(&self) -> Option<u64> {
        self.entries
            .iter()
            .filter_map(|e| e.token)
            .chain(self.base_token)
            .max()
    }

    /// The vector right after the first emission of `token`, if this stream emitted it.
    fn vector_at(&self, token: u64) -> Option<Vector> {
        let mut vector = self.base.clone();
        if self.base_token == Some(token) {
            return Some(vector);
        }
        for entry in &self.entries {
            apply(&mut vector, entry.change.as_ref());
            if entry.token == Some(token) {
                return Some(vector);
            }
        }
        None
    }
}

fn apply(vector: &mut Vector, change: Option<&Change>) {
    match change {
        Some(Change::Set(c, p)) => {
            vector.insert(c.clone(), *p);
        }
        Some(Change::Remove(c)) => {
            vector.remove(c);
        }
        None => {}
    }
}

#[derive(Debug, Default)]
struct KeyLogs {
    floor: u64,
    logs: Vec<StreamLog>,
}

/// Limits that keep the registry small; see the module docs for what forgetting means.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_entries_per_key: usize,
    pub ended_ttl: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_entries_per_key: 200_000,
            ended_ttl: Duration::from_secs(15 * 60),
        }
    }
}

/// The registry of all merged streams (and merged LIST snapshots).
#[derive(Debug, Default)]
pub struct ResumeRegistry {
    inner: Mutex<Inner>,
    limits: Limits,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    keys: HashMap<StreamKey, KeyLogs>,
}

/// The answer to "where do I resume from RV X".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    Found(Vector),
    /// Never emitted by this process, or forgotten: the client must relist (410 Gone).
    Unknown,
}

impl ResumeRegistry {
    pub fn with_limits(limits: Limits) -> Self {
        Self {
            inner: Mutex::default(),
            limits,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts the log of a stream whose client is at `base` (reached at `base_token`, if any).
    pub fn open(&self, key: &StreamKey, base: Vector, base_token: Option<u64>) -> u64 {
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        let logs = inner.keys.entry(key.clone()).or_default();
        logs.logs.push(StreamLog {
            id,
            base,
            base_token,
            entries: Vec::new(),
            latest_token: base_token,
            ended_at: None,
        });
        id
    }

    /// Records that the stream handed `token` to its client (if any) right after `change`.
    pub fn record(&self, key: &StreamKey, id: u64, token: Option<u64>, change: Option<Change>) {
        let limits = self.limits;
        let mut inner = self.lock();
        let Some(logs) = inner.keys.get_mut(key) else {
            return;
        };
        if let Some(log) = logs.logs.iter_mut().find(|l| l.id == id) {
            log.entries.push(Entry { token, change });
            if token.is_some() {
                log.latest_token = token;
            }
        }
        let total: usize = logs.logs.iter().map(|l| l.entries.len()).sum();
        if total > limits.max_entries_per_key {
            let mut tokens: Vec<u64> = logs
                .logs
                .iter()
                .flat_map(|l| l.entries.iter().filter_map(|e| e.token))
                .collect();
            let mid = tokens.len() / 2;
            let (_, median, _) = tokens.select_nth_unstable(mid);
            let floor = *median;
            raise_floor(logs, floor);
        }
    }

    /// Marks the stream ended; its log stays for resumes until the TTL passes.
    pub fn end(&self, key: &StreamKey, id: u64) {
        let limits = self.limits;
        let mut inner = self.lock();
        let Some(logs) = inner.keys.get_mut(key) else {
            return;
        };
        if let Some(log) = logs.logs.iter_mut().find(|l| l.id == id) {
            log.ended_at = Some(Instant::now());
        }
        expire(logs, limits.ended_ttl);
    }

    /// Records a merged LIST snapshot: every listed cluster at `token`.
    pub fn record_snapshot(
        &self,
        key: &StreamKey,
        token: u64,
        clusters: impl IntoIterator<Item = ClusterId>,
    ) {
        let base = clusters
            .into_iter()
            .map(|c| (c, Position::Watching(token)))
            .collect();
        let id = self.open(key, base, Some(token));
        self.end(key, id);
    }

    pub fn lookup(&self, key: &StreamKey, token: u64) -> Lookup {
        let inner = self.lock();
        let Some(logs) = inner.keys.get(key) else {
            return Lookup::Unknown;
        };
        if token <= logs.floor {
            return Lookup::Unknown;
        }
        let candidates: Vec<Vector> = logs
            .logs
            .iter()
            .filter_map(|l| l.vector_at(token))
            .collect();
        if candidates.is_empty() {
            return Lookup::Unknown;
        }
        Lookup::Found(merge_all(&candidates))
    }
}

/// Per cluster the safe position over all candidates; clusters some candidates lack are replayed.
fn merge_all(candidates: &[Vector]) -> Vector {
    let mut out: Vector = BTreeMap::new();
    for vector in candidates {
        for (cluster, pos) in vector {
            out.entry(cluster.clone())
                .and_modify(|p| *p = p.merge(*pos))
                .or_insert(*pos);
        }
    }
    for (cluster, pos) in out.iter_mut() {
        if candidates.iter().any(|v| !v.contains_key(cluster)) {
            *pos = Position::Joining(pos.revision());
        }
    }
    out
}

fn raise_floor(logs: &mut KeyLogs, floor: u64) {
    if floor <= logs.floor {
        return;
    }
    logs.floor = floor;
    for log in &mut logs.logs {
        // Fold the prefix of forgotten tokens into the base; later stragglers are only memory.
        let keep_from = log
            .entries
            .iter()
            .position(|e| e.token.is_some_and(|t| t > floor))
            .unwrap_or(log.entries.len());
        for entry in log.entries.drain(..keep_from) {
            apply(&mut log.base, entry.change.as_ref());
        }
        if log.base_token.is_some_and(|t| t <= floor) {
            log.base_token = None;
        }
    }
    logs.logs
        .retain(|l| l.ended_at.is_none() || l.max_token().is_some_and(|t| t > floor));
}

fn expire(logs: &mut KeyLogs, ttl: Duration) {
    let now = Instant::now();
    // Active streams must still resolve their latest token, so the floor stays below them.
    let active_min = logs
        .logs
        .iter()
        .filter(|l| l.ended_at.is_none())
        .filter_map(|l| l.latest_token)
        .min();
    let expired_max = logs
        .logs
        .iter()
        .filter(|l| l.ended_at.is_some_and(|t| now.duration_since(t) >= ttl))
        .filter_map(StreamLog::max_token)
        .max();
    if let Some(mut floor) = expired_max {
        if let Some(active) = active_min {
            floor = floor.min(active.saturating_sub(1));
        }
        raise_floor(logs, floor);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ClusterId {
        ClusterId::parse(s).unwrap()
    }

    fn key() -> StreamKey {
        StreamKey {
            export: "x".into(),
            group: String::new(),
            resource: "configmaps".into(),
            filter: String::new(),
        }
    }

    #[test]
    fn resume_uses_the_positions_at_emission_not_the_token() {
        let (a, b) = (id("aaaaaaaaaaaaaaaa"), id("bbbbbbbbbbbbbbbb"));
        let reg = ResumeRegistry::default();
        reg.record_snapshot(&key(), 100, [a.clone(), b.clone()]);
        let s = reg.open(
            &key(),
            [
                (a.clone(), Position::Watching(100)),
                (b.clone(), Position::Watching(100)),
            ]
            .into(),
            Some(100),
        );
        // A's event 105 arrives before B's pending 103.
        reg.record(
            &key(),
            s,
            Some(105),
            Some(Change::Set(a.clone(), Position::Watching(105))),
        );
        reg.record(
            &key(),
            s,
            Some(103),
            Some(Change::Set(b.clone(), Position::Watching(103))),
        );
        let Lookup::Found(v) = reg.lookup(&key(), 105) else {
            panic!()
        };
        assert_eq!(v[&a], Position::Watching(105));
        assert_eq!(
            v[&b],
            Position::Watching(100),
            "B must resume before its pending 103"
        );
        let Lookup::Found(v) = reg.lookup(&key(), 100) else {
            panic!()
        };
        assert_eq!(v[&a], Position::Watching(100));
        assert_eq!(reg.lookup(&key(), 104), Lookup::Unknown);
    }

    #[test]
    fn the_same_token_in_two_streams_resumes_from_the_older_positions() {
        let (a, b) = (id("aaaaaaaaaaaaaaaa"), id("bbbbbbbbbbbbbbbb"));
        let reg = ResumeRegistry::default();
        let base: Vector = [
            (a.clone(), Position::Watching(1)),
            (b.clone(), Position::Watching(1)),
        ]
        .into();
        let s1 = reg.open(&key(), base.clone(), Some(1));
        let s2 = reg.open(&key(), [(a.clone(), Position::Watching(1))].into(), Some(1));
        reg.record(
            &key(),
            s1,
            Some(5),
            Some(Change::Set(b.clone(), Position::Watching(5))),
        );
        reg.record(
            &key(),
            s1,
            Some(7),
            Some(Change::Set(a.clone(), Position::Watching(7))),
        );
        reg.record(
            &key(),
            s2,
            Some(7),
            Some(Change::Set(a.clone(), Position::Watching(7))),
        );
        let Lookup::Found(v) = reg.lookup(&key(), 7) else {
            panic!()
        };
        assert_eq!(v[&a], Position::Watching(7));
        assert_eq!(
            v[&b],
            Position::Joining(5),
            "b is unknown to stream 2: replay its state"
        );
    }

    #[test]
    fn forgotten_tokens_are_unknown_but_active_streams_keep_their_latest() {
        let a = id("aaaaaaaaaaaaaaaa");
        let reg = ResumeRegistry::with_limits(Limits {
            max_entries_per_key: 4,
            ended_ttl: Duration::ZERO,
        });
        let s = reg.open(&key(), [(a.clone(), Position::Watching(1))].into(), Some(1));
        for rv in 2..=6 {
            reg.record(
                &key(),
                s,
                Some(rv),
                Some(Change::Set(a.clone(), Position::Watching(rv))),
            );
        }
        assert_eq!(reg.lookup(&key(), 2), Lookup::Unknown);
        assert_eq!(
            reg.lookup(&key(), 6),
            Lookup::Found([(a.clone(), Position::Watching(6))].into())
        );
        let old = reg.open(&key(), [(a.clone(), Position::Watching(9))].into(), Some(9));
        reg.end(&key(), old);
        assert_eq!(
            reg.lookup(&key(), 6),
            Lookup::Found([(a, Position::Watching(6))].into())
        );
    }
}
