//! Where sessions live (`--session-store`): in this process, in Redis, or only in what the client
//! holds (the sealed cookie and the signed bearer token).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use dashmap::DashMap;
use redis::AsyncCommands as _;
use tokio::sync::OnceCell;

use super::session::Session;

/// How long one Redis command may take before the store counts as unavailable.
const REDIS_DEADLINE: Duration = Duration::from_secs(2);
const REDIS_PREFIX: &str = "kube-bind:";

/// The store could not answer; the request fails with 503 and the login is not lost.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the session store (Redis at {url}) is unreachable ({reason}); check that Redis is running, \
         then retry"
    )]
    Unavailable { url: String, reason: String },
    #[error("a stored session could not be read ({0}); log in again")]
    Corrupt(serde_json::Error),
}

/// A session store.
#[derive(Clone)]
pub enum SessionStore {
    /// This process only: lost on restart, not shared between replicas.
    Memory(MemoryStore),
    /// Shared by every replica, with a TTL of the session's lifetime.
    Redis(RedisStore),
    /// Nothing server-side: the client's sealed cookie or signed token is the session.
    Cookie,
}

impl SessionStore {
    /// Whether sessions are kept server-side (so logout can end them and tokens are checked
    /// against them).
    pub fn keeps_sessions(&self) -> bool {
        !matches!(self, Self::Cookie)
    }

    pub async fn save(&self, session: &Session) -> Result<(), StoreError> {
        match self {
            Self::Memory(store) => {
                store.save(session);
                Ok(())
            }
            Self::Redis(store) => store.save(session).await,
            Self::Cookie => Ok(()),
        }
    }

    /// The live session `sid`, if the store keeps sessions and it has not expired.
    pub async fn load(&self, sid: &str) -> Result<Option<Session>, StoreError> {
        let now = SystemTime::now();
        let found = match self {
            Self::Memory(store) => store.load(sid),
            Self::Redis(store) => store.load(sid).await?,
            Self::Cookie => None,
        };
        Ok(found.filter(|s| !s.is_expired(now)))
    }

    pub async fn delete(&self, sid: &str) -> Result<(), StoreError> {
        match self {
            Self::Memory(store) => {
                store.sessions.remove(sid);
                Ok(())
            }
            Self::Redis(store) => store.delete(sid).await,
            Self::Cookie => Ok(()),
        }
    }

    /// Records that the one-time value `key` was used; false when it already was. Stores without
    /// server state cannot tell and answer true (the login cookie, cleared on first use, is the
    /// guard there).
    pub async fn use_once(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        match self {
            Self::Memory(store) => Ok(store.use_once(key, ttl)),
            Self::Redis(store) => store.use_once(key, ttl).await,
            Self::Cookie => Ok(true),
        }
    }

    /// Live sessions in this process's store (memory only; `None` when not known here).
    pub fn active(&self) -> Option<usize> {
        match self {
            Self::Memory(store) => Some(store.live(SystemTime::now())),
            _ => None,
        }
    }
}

/// Sessions in a map; expired ones are swept whenever the map doubled since the last sweep.
#[derive(Clone, Default)]
pub struct MemoryStore {
    sessions: Arc<DashMap<String, Session>>,
    used: Arc<DashMap<String, SystemTime>>,
    swept_at_len: Arc<AtomicUsize>,
}

impl MemoryStore {
    fn save(&self, session: &Session) {
        self.sessions.insert(session.sid.clone(), session.clone());
        self.sweep_if_grown();
    }

    fn load(&self, sid: &str) -> Option<Session> {
        self.sessions.get(sid).map(|s| s.clone())
    }

    fn use_once(&self, key: &str, ttl: Duration) -> bool {
        let now = SystemTime::now();
        let mut fresh = false;
        self.used
            .entry(key.to_owned())
            .and_modify(|until| {
                if *until <= now {
                    *until = now + ttl;
                    fresh = true;
                }
            })
            .or_insert_with(|| {
                fresh = true;
                now + ttl
            });
        self.sweep_if_grown();
        fresh
    }

    fn live(&self, now: SystemTime) -> usize {
        self.sessions.iter().filter(|s| !s.is_expired(now)).count()
    }

    fn sweep_if_grown(&self) {
        let len = self.sessions.len() + self.used.len();
        let last = self.swept_at_len.load(Ordering::Relaxed);
        if len < 1024.max(last.saturating_mul(2)) {
            return;
        }
        let now = SystemTime::now();
        self.sessions.retain(|_, s| !s.is_expired(now));
        self.used.retain(|_, until| *until > now);
        self.swept_at_len
            .store(self.sessions.len() + self.used.len(), Ordering::Relaxed);
    }
}

/// Sessions in Redis as JSON under `kube-bind:session:<sid>`, expiring with the session. The
/// connection is made on first use and re-made by the connection manager after a failure, so a
/// Redis that is down at start or restarts later costs 503s, not the process.
#[derive(Clone)]
pub struct RedisStore {
    client: redis::Client,
    url: String,
    connection: Arc<OnceCell<redis::aio::ConnectionManager>>,
}

impl RedisStore {
    /// Checks the URL; does not connect.
    pub fn new(url: &str) -> Result<Self, redis::RedisError> {
        Ok(Self {
            client: redis::Client::open(url)?,
            url: redact_url(url),
            connection: Arc::new(OnceCell::new()),
        })
    }

    fn unavailable(&self, reason: impl ToString) -> StoreError {
        StoreError::Unavailable {
            url: self.url.clone(),
            reason: reason.to_string(),
        }
    }

    async fn connection(&self) -> Result<redis::aio::ConnectionManager, StoreError> {
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_DEADLINE))
            .set_response_timeout(Some(REDIS_DEADLINE))
            .set_number_of_retries(1);
        let connecting = self.connection.get_or_try_init(|| async {
            self.client
                .get_connection_manager_with_config(config)
                .await
                .map_err(|e| self.unavailable(e))
        });
        match tokio::time::timeout(REDIS_DEADLINE * 2, connecting).await {
            Ok(result) => result.cloned(),
            Err(_) => Err(self.unavailable("no answer within 4s")),
        }
    }

    /// Runs one command with the store's deadline.
    async fn run<T>(
        &self,
        command: impl AsyncFnOnce(&mut redis::aio::ConnectionManager) -> redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        let mut connection = self.connection().await?;
        match tokio::time::timeout(REDIS_DEADLINE, command(&mut connection)).await {
            Ok(result) => result.map_err(|e| self.unavailable(e)),
            Err(_) => Err(self.unavailable("no answer within 2s")),
        }
    }

    async fn save(&self, session: &Session) -> Result<(), StoreError> {
        let key = format!("{REDIS_PREFIX}session:{}", session.sid);
        let value = serde_json::to_string(session).map_err(StoreError::Corrupt)?;
        let ttl = session.remaining(SystemTime::now()).as_secs().max(1);
        self.run(async |c| c.set_ex::<_, _, ()>(key, value, ttl).await)
            .await
    }

    async fn load(&self, sid: &str) -> Result<Option<Session>, StoreError> {
        let key = format!("{REDIS_PREFIX}session:{sid}");
        let value: Option<String> = self.run(async |c| c.get(key).await).await?;
        value
            .map(|v| serde_json::from_str(&v).map_err(StoreError::Corrupt))
            .transpose()
    }

    async fn delete(&self, sid: &str) -> Result<(), StoreError> {
        let key = format!("{REDIS_PREFIX}session:{sid}");
        self.run(async |c| c.del::<_, ()>(key).await).await
    }

    async fn use_once(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        let key = format!("{REDIS_PREFIX}used:{key}");
        let options = redis::SetOptions::default()
            .conditional_set(redis::ExistenceCheck::NX)
            .with_expiration(redis::SetExpiry::EX(ttl.as_secs().max(1)));
        let set: Option<String> = self
            .run(async |c| c.set_options(key, 1, options).await)
            .await?;
        Ok(set.is_some())
    }
}

/// The URL without its password, for messages.
fn redact_url(url: &str) -> String {
    match url.split_once('@') {
        Some((scheme_and_user, host)) => match scheme_and_user.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://…@{host}"),
            None => format!("…@{host}"),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::session::{LoggedInUser, LoginFor};

    fn session(lifetime: Duration) -> Session {
        Session::start(
            LoggedInUser {
                subject: "alice".into(),
                issuer: "https://idp.example".into(),
                groups: vec![],
            },
            LoginFor::default(),
            SystemTime::now(),
            lifetime,
        )
    }

    #[tokio::test]
    async fn memory_keeps_deletes_and_hides_expired_sessions() {
        let store = SessionStore::Memory(MemoryStore::default());
        let live = session(Duration::from_secs(60));
        let expired = session(Duration::ZERO);
        store.save(&live).await.unwrap();
        store.save(&expired).await.unwrap();
        assert_eq!(store.load(&live.sid).await.unwrap(), Some(live.clone()));
        assert_eq!(store.load(&expired.sid).await.unwrap(), None);
        assert_eq!(store.active(), Some(1));
        store.delete(&live.sid).await.unwrap();
        assert_eq!(store.load(&live.sid).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_one_time_value_is_accepted_once() {
        let store = SessionStore::Memory(MemoryStore::default());
        assert!(
            store
                .use_once("state-1", Duration::from_secs(60))
                .await
                .unwrap()
        );
        assert!(
            !store
                .use_once("state-1", Duration::from_secs(60))
                .await
                .unwrap()
        );
        assert!(
            store
                .use_once("state-2", Duration::from_secs(60))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn the_memory_store_forgets_expired_sessions_as_it_grows() {
        let store = MemoryStore::default();
        for _ in 0..5000 {
            store.save(&session(Duration::ZERO));
        }
        assert!(store.sessions.len() < 2048, "{}", store.sessions.len());
    }

    #[tokio::test]
    async fn redis_down_is_a_clear_unavailable_error() {
        // Port 9 (discard) on loopback: nothing listens there.
        let store = SessionStore::Redis(RedisStore::new("redis://:secret@127.0.0.1:9/0").unwrap());
        let err = store.load("x").await.unwrap_err();
        let message = err.to_string();
        assert!(message.contains("unreachable"), "{message}");
        assert!(!message.contains("secret"), "{message}");
    }
}
