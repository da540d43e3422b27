//! The `s3` sink (being written).

use uuid::Uuid;

use super::{Limits, Record, Sink, SinkError};
use crate::forward::config::S3Config;

pub struct S3Sink {
    _config: S3Config,
}

impl S3Sink {
    pub fn new(config: S3Config) -> Result<S3Sink, String> {
        Ok(S3Sink { _config: config })
    }
}

#[async_trait::async_trait]
impl Sink for S3Sink {
    fn limits(&self) -> Limits {
        Limits { max_events: 1000, max_bytes: 8 << 20, linger: std::time::Duration::ZERO, overhead_per_record: 0 }
    }

    async fn send(&self, _batch_id: Uuid, _records: &[Record]) -> Result<(), SinkError> {
        Err(SinkError::failing("the s3 sink is not built yet"))
    }
}
