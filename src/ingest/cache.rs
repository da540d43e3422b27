//! A small cache of connections with their configs unsealed, so the hot path of a push
//! neither reads the database nor decrypts for every request. Entries live a few seconds
//! (other replicas' admin changes show up within that) and are dropped at once when this
//! process changes a connection.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use uuid::Uuid;

use crate::crypto::{CryptoError, MasterKey};
use crate::model::{Connection, SourceKind};

const TTL: Duration = Duration::from_secs(5);
const MAX_ENTRIES: usize = 100_000;

/// What the push path needs of a connection, with its full config (secrets included).
pub struct LoadedConnection {
    pub id: Uuid,
    pub tenant_id: String,
    pub source: SourceKind,
    pub stream: String,
    pub paused: bool,
    pub config: Value,
}

impl std::fmt::Debug for LoadedConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedConnection").field("id", &self.id).field("source", &self.source).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UnsealError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("the unsealed config is not JSON")]
    NotJson,
}

impl LoadedConnection {
    pub fn unseal(c: &Connection, key: &MasterKey) -> Result<LoadedConnection, UnsealError> {
        let plain = key.open(&c.id.to_string(), &c.config_sealed)?;
        let config = serde_json::from_slice(&plain).map_err(|_| UnsealError::NotJson)?;
        Ok(LoadedConnection {
            id: c.id,
            tenant_id: c.tenant_id.clone(),
            source: c.source,
            stream: c.stream.clone(),
            paused: c.facts.paused,
            config,
        })
    }
}

pub struct ConnectionCache {
    entries: RwLock<HashMap<Uuid, (Instant, Arc<LoadedConnection>)>>,
}

impl ConnectionCache {
    pub fn new() -> ConnectionCache {
        ConnectionCache { entries: RwLock::new(HashMap::new()) }
    }

    pub fn get(&self, id: Uuid) -> Option<Arc<LoadedConnection>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(&id).filter(|(at, _)| at.elapsed() < TTL).map(|(_, c)| c.clone())
    }

    pub fn insert(&self, connection: LoadedConnection) -> Arc<LoadedConnection> {
        let connection = Arc::new(connection);
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
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
        self.entries.write().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }
}
