//! The `kafka` sink (being written).

use uuid::Uuid;

use super::{Limits, Record, Sink, SinkError};
use crate::forward::config::KafkaConfig;

pub struct KafkaSink {
    _config: KafkaConfig,
}

impl KafkaSink {
    pub fn new(config: KafkaConfig) -> Result<KafkaSink, String> {
        Ok(KafkaSink { _config: config })
    }
}

#[async_trait::async_trait]
impl Sink for KafkaSink {
    fn limits(&self) -> Limits {
        Limits { max_events: 1000, max_bytes: 8 << 20, linger: std::time::Duration::ZERO, overhead_per_record: 0 }
    }

    async fn send(&self, _batch_id: Uuid, _records: &[Record]) -> Result<(), SinkError> {
        Err(SinkError::failing("the kafka sink is not built yet"))
    }
}
