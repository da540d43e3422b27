//! The server's own secrets: the master key that seals connection and destination
//! secrets, and the admin token.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::database::Database;
use super::layers::Layers;
use super::Secret;
use crate::crypto::MasterKey;

/// Name of the key file created beside a SQLite database when no master key is configured.
pub const KEY_FILE_NAME: &str = "pushgate.key";

/// Where the master key comes from. PostgreSQL has no file beside it, so a PostgreSQL
/// database without a configured key is refused at load and has no value here.
#[derive(Debug, Clone)]
pub enum MasterKeySource {
    /// `PUSHGATE_MASTER_KEY`, already checked to be a key.
    Configured(Arc<MasterKey>),
    /// The key file beside a SQLite database: read, or created on first start.
    KeyFile(PathBuf),
    /// A fresh key each start: an in-memory database's secrets end with the process anyway.
    Throwaway,
}

#[derive(Debug, Clone)]
pub struct ServerSecrets {
    pub master_key: MasterKeySource,
    /// The configured admin token, at least 16 characters; `None`: the stored ones.
    pub admin_token: Option<Secret>,
}

impl ServerSecrets {
    /// `None` (with the problem reported) when the master key cannot be had; nothing more
    /// is reported about the key when `database` is already wrong.
    pub(super) fn read(layers: &mut Layers, database: Option<&Database>) -> Option<ServerSecrets> {
        let master_key = match (layers.text("master_key"), database) {
            (Some(text), _) => match MasterKey::from_base64(&text) {
                Ok(key) => Some(MasterKeySource::Configured(Arc::new(key))),
                Err(_) => {
                    layers.error("PUSHGATE_MASTER_KEY: must be base64 of exactly 32 bytes");
                    None
                }
            },
            (None, Some(Database::SqliteFile(db))) => {
                let dir = db.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
                Some(MasterKeySource::KeyFile(dir.join(KEY_FILE_NAME)))
            }
            (None, Some(Database::SqliteMemory)) => Some(MasterKeySource::Throwaway),
            (None, Some(Database::Postgres(_))) => {
                layers.error("PUSHGATE_MASTER_KEY is required with PostgreSQL (base64 of 32 bytes)");
                None
            }
            (None, None) => None,
        };
        let admin_token = layers.text("admin_token").map(Secret::new);
        if admin_token.as_ref().is_some_and(|token| token.expose().len() < 16) {
            layers.error("PUSHGATE_ADMIN_TOKEN: must be at least 16 characters");
        }
        Some(ServerSecrets { master_key: master_key?, admin_token })
    }
}
