//! Helpers for this crate's tests (unit and integration): a fresh PostgreSQL database per
//! test when `DATABASE_URL` names a server, the moto and Pub/Sub emulator URLs the test
//! script exports, and a loud notice when one is missing; for unit tests, an HTTPS
//! server on 127.0.0.1 ([`tls_server`]), and a stand-in for a key publisher
//! ([`oidc_signer`], with the test-support feature).

#[cfg(any(test, feature = "test-support"))]
pub mod oidc_signer;
#[cfg(test)]
pub mod tls_server;

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

/// Set by the test script when it started moto: a missing moto is then a failure.
pub const REQUIRE_MOTO_VAR: &str = "PUSHGATE_REQUIRE_MOTO";

/// Set by the test script when it started the Pub/Sub emulator: a missing one is then a failure.
pub const REQUIRE_PUBSUB_EMULATOR_VAR: &str = "PUSHGATE_REQUIRE_PUBSUB_EMULATOR";

/// The URL of the moto server standing in for the AWS API (`PUSHGATE_TEST_MOTO_URL`), or
/// `None` (after printing why) when none runs.
pub fn moto_url(test: &str) -> Option<String> {
    service_url(test, "PUSHGATE_TEST_MOTO_URL", REQUIRE_MOTO_VAR, "no moto server")
}

/// The URL of the Pub/Sub emulator (`PUSHGATE_TEST_PUBSUB_EMULATOR`), or `None` (after
/// printing why) when none runs; it comes with the Google Cloud SDK.
pub fn pubsub_emulator_url(test: &str) -> Option<String> {
    service_url(
        test,
        "PUSHGATE_TEST_PUBSUB_EMULATOR",
        REQUIRE_PUBSUB_EMULATOR_VAR,
        "no Pub/Sub emulator (it comes with the Google Cloud SDK)",
    )
}

/// A test service's URL from `var`; when missing, a failure if `require_var` is `1`, else
/// a loud skip.
fn service_url(test: &str, var: &str, require_var: &str, missing: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) => Some(url),
        Err(_) if std::env::var(require_var).is_ok_and(|v| v == "1") => panic!("{test}: {var} is not set but {require_var}=1"),
        Err(_) => {
            eprintln!("SKIPPED ({test}): {missing}: {var} is not set; run scripts/test where it is installed");
            None
        }
    }
}
