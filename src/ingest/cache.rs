//! A small cache of connections with their configs unsealed, so the hot path of a push
//! neither reads the database nor decrypts for every request. Entries live a few seconds
//! (other replicas' admin changes show up within that) and are dropped at once when this
//! process changes a connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::crypto::{MasterKey, SealedConfigError};
use crate::model::{Connection, SourceKind};
use crate::sources::{ConnectionConfig, Sender};

const TTL: Duration = Duration::from_secs(5);
const MAX_ENTRIES: usize = 100_000;

/// What the push path needs of a connection, with its full config (secrets included).
pub struct LoadedConnection {
    pub id: Uuid,
    pub tenant_id: String,
    pub source: SourceKind,
    pub stream: String,
    pub paused: bool,
    /// How old a heartbeat may be at its arrival and still count (interval + grace), when
    /// the connection expects heartbeats.
    pub heartbeat_window: Option<chrono::Duration>,
    /// The config as its sender prepared it when this was loaded.
    pub config: ConnectionConfig,
}

impl std::fmt::Debug for LoadedConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedConnection").field("id", &self.id).field("source", &self.source).finish_non_exhaustive()
    }
}

impl LoadedConnection {
    /// Opens `c`'s sealed config and lets `sender` read it once.
    pub fn unseal(c: &Connection, key: &MasterKey, sender: &dyn Sender) -> Result<LoadedConnection, SealedConfigError> {
        let config = ConnectionConfig::load(sender, key.open_config(&c.id.to_string(), &c.config_sealed)?);
        Ok(LoadedConnection {
            id: c.id,
            tenant_id: c.tenant_id.clone(),
            source: c.source,
            stream: c.stream.clone(),
            paused: c.facts.paused,
            heartbeat_window: crate::model::heartbeat::freshness_window(c.heartbeat_interval_seconds, c.grace_seconds),
            config,
        })
    }
}

pub struct ConnectionCache {
    entries: RwLock<HashMap<Uuid, (Instant, Arc<LoadedConnection>)>>,
    /// Bumped by every invalidation: a row read before one is not cached after it.
    generation: AtomicU64,
}

impl ConnectionCache {
    pub fn new() -> ConnectionCache {
        ConnectionCache { entries: RwLock::new(HashMap::new()), generation: AtomicU64::new(0) }
    }

    pub fn get(&self, id: Uuid) -> Option<Arc<LoadedConnection>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(&id).filter(|(at, _)| at.elapsed() < TTL).map(|(_, c)| c.clone())
    }

    /// The generation to pass to [`ConnectionCache::insert`], taken before reading the row.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Caches a connection read at `generation`, unless an invalidation happened since
    /// (the row may predate an admin change); returns it either way.
    pub fn insert(&self, connection: LoadedConnection, generation: u64) -> Arc<LoadedConnection> {
        let connection = Arc::new(connection);
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if self.generation.load(Ordering::Acquire) != generation {
            return connection;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (at, _)| at.elapsed() < TTL);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(connection.id, (Instant::now(), connection.clone()));
        connection
    }

    pub fn invalidate(&self, id: Uuid) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn loaded(id: Uuid) -> LoadedConnection {
        LoadedConnection {
            id,
            tenant_id: "t".into(),
            source: SourceKind::Webhook,
            stream: "s".into(),
            paused: false,
            heartbeat_window: None,
            config: ConnectionConfig::unprepared(Value::Null),
        }
    }

    #[test]
    fn a_row_read_before_an_invalidation_is_not_cached() {
        let cache = ConnectionCache::new();
        let id = Uuid::new_v4();
        let before = cache.generation();
        cache.invalidate(id); // an admin change lands while the row was being read
        cache.insert(loaded(id), before);
        assert!(cache.get(id).is_none());
        cache.insert(loaded(id), cache.generation());
        assert!(cache.get(id).is_some());
        cache.invalidate(id);
        assert!(cache.get(id).is_none());
    }
}
