//! What a server needs before it can serve, read or made once at start: the store
//! (connected and migrated), the master key (configured, or the key file beside a SQLite
//! database, checked against the stored secrets), and the admin tokens.

use std::path::Path;
use std::sync::Arc;

use crate::config::{Database, MasterKeySource, Secret};
use crate::crypto::{generate_admin_token, token_hash, MasterKey};
use crate::http::AdminTokens;
use crate::store::{Store, StoreError};
use crate::{connections, destinations, model, store};

pub use crate::config::KEY_FILE_NAME;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("master key file {path}: {source}")]
    KeyFile { path: String, source: std::io::Error },
    #[error("master key file {0} does not hold base64 of 32 bytes")]
    BadKeyFile(String),
    #[error("master key file {0} is missing, but the database holds connections sealed with a key: restore the file from its backup (or set PUSHGATE_MASTER_KEY to that key)")]
    KeyFileMissing(String),
    #[error("the master key does not open the secrets of connection {0}: it is not the key they were sealed with")]
    WrongKey(String),
    #[error("cannot serve: {0}")]
    Serve(#[from] std::io::Error),
}

/// Connects to the database and applies migrations.
pub async fn open_store(database: &Database) -> Result<Arc<dyn Store>, StoreError> {
    let store = store::connect(database).await?;
    store.migrate().await?;
    Ok(store)
}

/// The master key: configured, else the key file beside a SQLite database (created
/// with mode 0600 on first start), else a throwaway key for an in-memory database.
/// A key that does not open the stored secrets is refused, and a missing key file is not
/// replaced while connections sealed with the old one exist.
pub async fn master_key(source: &MasterKeySource, store: &dyn Store) -> Result<Arc<MasterKey>, StartError> {
    let connections = store.list_connections(&model::ConnectionFilter::default()).await?;
    let destinations = store.list_destinations().await?;
    let sealed_exist = !connections.is_empty() || !destinations.is_empty();
    let key = match source {
        MasterKeySource::Configured(key) => key.clone(),
        MasterKeySource::KeyFile(path) => Arc::new(load_or_create_key_file(path, sealed_exist)?),
        MasterKeySource::Throwaway => {
            Arc::new(MasterKey::from_base64(&MasterKey::generate_base64()).map_err(|_| StartError::Config("key generation failed".into()))?)
        }
    };
    if let Some(sealed) = connections.first() {
        if connections::open_config(&key, sealed).is_err() {
            return Err(StartError::WrongKey(sealed.id.to_string()));
        }
    }
    if let Some(sealed) = destinations.first() {
        if destinations::open_config(&key, sealed).is_err() {
            return Err(StartError::WrongKey(format!("destination {}", sealed.id)));
        }
    }
    Ok(key)
}

fn load_or_create_key_file(path: &Path, secrets_exist: bool) -> Result<MasterKey, StartError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let shown = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => MasterKey::from_base64(&text).map_err(|_| StartError::BadKeyFile(shown)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && secrets_exist => Err(StartError::KeyFileMissing(shown)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let text = MasterKey::generate_base64();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|source| StartError::KeyFile { path: shown.clone(), source })?;
            file.write_all(format!("{text}\n").as_bytes())
                .and_then(|_| file.sync_all())
                .map_err(|source| StartError::KeyFile { path: shown.clone(), source })?;
            eprintln!("pushgate: created master key file {shown} (mode 0600); back it up: without it stored secrets cannot be read");
            MasterKey::from_base64(&text).map_err(|_| StartError::BadKeyFile(shown))
        }
        Err(source) => Err(StartError::KeyFile { path: shown, source }),
    }
}

/// The accepted admin tokens: the configured one alone when there is one (so configuring
/// a token also revokes a generated one); else those stored, and when none is stored yet
/// a new token is generated, stored hashed, and printed once to stderr.
pub async fn admin_tokens(store: &dyn Store, configured: Option<&Secret>) -> Result<AdminTokens, StartError> {
    if let Some(token) = configured {
        return Ok(AdminTokens::new(vec![token_hash(token.expose())]));
    }
    let mut hashes = store.admin_token_hashes().await?;
    if hashes.is_empty() {
        let token = generate_admin_token();
        let hash = token_hash(&token);
        store.add_admin_token(&hash, model::now()).await?;
        eprintln!("pushgate: generated admin token (shown once; it is stored only as a hash):\n\n    {token}\n");
        hashes.push(hash);
    }
    Ok(AdminTokens::new(hashes))
}
