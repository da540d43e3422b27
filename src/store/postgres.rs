//! The PostgreSQL store, for several stateless replicas on one database: dedupe is the
//! unique index, so any replica can take any retry.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use super::rows::{AlertDeliveryRow, ConnectionRow, EventRow, HistoryRow, RejectionRow, CONNECTION_COLUMNS, EVENT_COLUMNS};
use super::{batch, OpOutcome, StoreError, WriteOp};
use crate::model::{
    Connection, ConnectionFilter, ConnectionUpdate, NewConnection, StatusChange, StoredEvent, StoredRejection,
    AlertDelivery, BackgroundTask, SubscriptionChange,
};

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    const MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        Ok(PostgresStore { pool })
    }
}

sql_store!(PostgresStore, Postgres, "postgres");
