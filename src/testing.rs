//! Helpers for this crate's tests (unit and integration): a fresh PostgreSQL database per
//! test when `DATABASE_URL` names a server, and a loud notice when it does not.

use sqlx::{Connection, PgConnection};

/// Set by the test script when it started PostgreSQL: a missing server is then a failure.
pub const REQUIRE_POSTGRES_VAR: &str = "PUSHGATE_REQUIRE_POSTGRES";

/// A URL of a new, empty database on the server `DATABASE_URL` names, or `None` (after
/// printing why) when no server is configured.
pub async fn fresh_postgres_url(test: &str) -> Option<String> {
    let Ok(base) = std::env::var("DATABASE_URL") else {
        if std::env::var(REQUIRE_POSTGRES_VAR).is_ok_and(|v| v == "1") {
            panic!("{test}: DATABASE_URL is not set but {REQUIRE_POSTGRES_VAR}=1");
        }
        eprintln!("SKIPPED (PostgreSQL leg of {test}): DATABASE_URL is not set; run scripts/test to include it");
        return None;
    };
    let name = format!("pushgate_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&base).await.expect("DATABASE_URL does not accept connections");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("cannot create a test database");
    let _ = admin.close().await;
    let (without_query, query) = match base.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (base.as_str(), String::new()),
    };
    let (server, _) = without_query.rsplit_once('/').expect("DATABASE_URL has a database path");
    Some(format!("{server}/{name}{query}"))
}
