//! Which store a database URL names, and how such a URL is shown.

use std::path::PathBuf;

use super::layers::Layers;

/// Which store a database URL names.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file, created if missing.
    SqliteFile(PathBuf),
    SqliteMemory,
    Postgres(String),
}

impl Database {
    pub fn parse(url: &str) -> Option<Database> {
        if url == "sqlite::memory:" || url == "sqlite://:memory:" {
            return Some(Database::SqliteMemory);
        }
        if let Some(rest) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            let path = rest.split('?').next().unwrap_or_default();
            return (!path.is_empty()).then(|| Database::SqliteFile(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Some(Database::Postgres(url.to_owned()));
        }
        None
    }

    /// The database `PUSHGATE_DATABASE_URL` names.
    pub(super) fn read(layers: &mut Layers) -> Option<Database> {
        let url = layers.text("database_url").unwrap_or_default();
        let database = Database::parse(&url);
        if database.is_none() {
            layers.error(format!(
                "PUSHGATE_DATABASE_URL: `{}` is not sqlite://PATH, sqlite::memory: or postgres://...",
                redact_password(&url)
            ));
        }
        database
    }
}

/// A PostgreSQL URL may hold a password: shown without it.
impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::SqliteFile(path) => f.debug_tuple("SqliteFile").field(path).finish(),
            Database::SqliteMemory => f.write_str("SqliteMemory"),
            Database::Postgres(url) => f.debug_tuple("Postgres").field(&redact_password(url)).finish(),
        }
    }
}

/// `scheme://user:password@host/...` with the password replaced by `***`.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        None => url.to_owned(),
    }
}
