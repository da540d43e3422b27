//! Canary heartbeats: for SNS connections with `canary: {"topic_arn", "interval_seconds"}`
//! and Pub/Sub connections with `canary: {"topic", "interval_seconds"}`.
//!
//! pushgate publishes a heartbeat to the topic at that interval (SNS: an
//! EventBridge-shaped `Scheduled Event`; Pub/Sub: a message with attribute
//! `pushgate_kind=heartbeat`), so the heartbeat travels the real path (the cloud's
//! delivery, HTTPS, the push route, verification) and a break anywhere on it turns into
//! a missing heartbeat.
//! Each publish's outcome is stored on the connection (`canary.last_published_at`,
//! `canary.last_error`), so a failing canary is visible before the heartbeat goes stale.
//! Paused connections get no canary.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;
use uuid::Uuid;

use crate::aws::SnsApi;
use crate::gcp::PubSubApi;
use crate::model::{now, BackgroundTask, Connection, ConnectionFilter, SourceKind};
use crate::store::Store;

/// How often the list of canaries is re-read from the store (admin changes apply within it).
const REFRESH: Duration = Duration::from_secs(5);

/// One connection's canary, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canary {
    pub connection_id: Uuid,
    pub target: Target,
    pub interval: Duration,
}

/// Where a canary publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Sns { topic_arn: String, region: String, account: String },
    PubSub { topic: String },
}

impl Canary {
    /// The canary of an unpaused SNS or Pub/Sub connection that has one.
    pub fn of(connection: &Connection) -> Option<Canary> {
        if connection.facts.paused {
            return None;
        }
        let canary = connection.config_public.get("canary")?;
        let seconds = canary.get("interval_seconds")?.as_u64().filter(|s| *s >= 1)?;
        let target = match connection.source {
            SourceKind::AwsSns => {
                let topic_arn = canary.get("topic_arn")?.as_str()?.to_owned();
                // arn:PARTITION:sns:REGION:ACCOUNT:NAME
                let arn = crate::sources::aws_sns::topic_arn::TopicArn::parse(&topic_arn)?;
                Target::Sns { region: arn.region().to_owned(), account: arn.account().to_owned(), topic_arn }
            }
            SourceKind::GcpPubsub => Target::PubSub { topic: canary.get("topic")?.as_str()?.to_owned() },
            _ => return None,
        };
        Some(Canary { connection_id: connection.id, target, interval: Duration::from_secs(seconds) })
    }

    /// The heartbeat: what an EventBridge schedule rule would deliver to SNS, or a
    /// Pub/Sub message marked `pushgate_kind=heartbeat`.
    pub fn message(&self) -> Value {
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        match &self.target {
            Target::Sns { region, account, .. } => json!({
                "version": "0",
                "id": Uuid::new_v4(),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": account,
                "time": time,
                "region": region,
                "resources": [format!("pushgate:canary:{}", self.connection_id)],
                "detail": {},
            }),
            Target::PubSub { .. } => {
                json!({"type": "heartbeat", "source": "pushgate-canary", "connection_id": self.connection_id, "time": time})
            }
        }
    }
}

/// The clouds' APIs canaries publish through.
#[derive(Clone)]
pub struct Publishers {
    pub sns: Arc<SnsApi>,
    pub pubsub: Arc<PubSubApi>,
}

/// Publishes every due canary until `stop` turns true.
pub async fn run(store: Arc<dyn Store>, publishers: Publishers, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut canaries: Vec<Canary> = Vec::new();
    let mut next_due: HashMap<Uuid, Instant> = HashMap::new();
    let in_flight: Arc<Mutex<HashSet<Uuid>>> = Arc::default();
    let mut refreshed: Option<Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if refreshed.is_none_or(|at| at.elapsed() >= REFRESH) {
            match store.list_connections(&ConnectionFilter::default()).await {
                Ok(list) => {
                    canaries = list.iter().filter_map(Canary::of).collect();
                    next_due.retain(|id, _| canaries.iter().any(|c| c.connection_id == *id));
                    refreshed = Some(Instant::now());
                }
                Err(e) => tracing::warn!(error = %e, "cannot read the canary list; keeping the last one"),
            }
        }
        let now_instant = Instant::now();
        for canary in &canaries {
            let due = next_due.entry(canary.connection_id).or_insert(now_instant);
            if *due > now_instant || !in_flight.lock().expect("canary set").insert(canary.connection_id) {
                continue;
            }
            // Validation caps the interval at a day; an hour is the fallback should a stored
            // value ever be out of range, so no addition can overflow.
            *due = now_instant.checked_add(canary.interval).unwrap_or(now_instant + Duration::from_secs(3600));
            let (store, publishers, in_flight, canary) = (store.clone(), publishers.clone(), in_flight.clone(), canary.clone());
            tokio::spawn(async move {
                publish(store.as_ref(), &publishers, &canary).await;
                in_flight.lock().expect("canary set").remove(&canary.connection_id);
            });
        }
    }
}

/// Publishes one heartbeat and records the outcome.
pub async fn publish(store: &dyn Store, publishers: &Publishers, canary: &Canary) {
    let message = canary.message().to_string();
    let outcome = match &canary.target {
        Target::Sns { topic_arn, region, .. } => publishers.sns.publish(region, topic_arn, &message).await.map_err(|e| e.to_string()),
        Target::PubSub { topic } => {
            publishers.pubsub.publish(topic, message.into_bytes(), &[("pushgate_kind", "heartbeat")]).await.map_err(|e| e.to_string())
        }
    };
    let error = match outcome {
        Ok(message_id) => {
            tracing::debug!(connection = %canary.connection_id, message_id, "canary heartbeat published");
            None
        }
        Err(e) => {
            tracing::warn!(connection = %canary.connection_id, target = ?canary.target, error = %e, "canary heartbeat not published");
            Some(e)
        }
    };
    if let Err(e) = store.record_task(canary.connection_id, BackgroundTask::Canary, now(), error.as_deref()).await {
        tracing::warn!(connection = %canary.connection_id, error = %e, "canary outcome not recorded");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(config: Value, paused: bool) -> Connection {
        Connection {
            id: Uuid::nil(),
            tenant_id: "t".into(),
            name: "n".into(),
            source: SourceKind::AwsSns,
            stream: "s".into(),
            heartbeat_interval_seconds: Some(60),
            grace_seconds: 10,
            config_public: config,
            config_sealed: String::new(),
            created_at: now(),
            activated_at: now(),
            updated_at: now(),
            facts: crate::model::Facts { paused, ..Default::default() },
            counters: Default::default(),
            canary: Default::default(),
            upkeep: Default::default(),
            fetch: Default::default(),
            catch_up: Default::default(),
        }
    }

    #[test]
    fn a_configured_canary_is_read_from_the_connection() {
        let config = json!({"topic_arns": [], "canary": {"topic_arn": "arn:aws:sns:eu-west-1:111122223333:hb", "interval_seconds": 60}});
        let canary = Canary::of(&connection(config.clone(), false)).unwrap();
        let Target::Sns { region, account, .. } = &canary.target else { panic!("an SNS canary") };
        assert_eq!((region.as_str(), account.as_str()), ("eu-west-1", "111122223333"));
        assert_eq!(canary.interval, Duration::from_secs(60));
        assert!(Canary::of(&connection(config, true)).is_none(), "paused connections get no canary");
        assert!(Canary::of(&connection(json!({"topic_arns": []}), false)).is_none());
    }

    #[test]
    fn the_message_is_a_scheduled_event_heartbeat() {
        let config = json!({"canary": {"topic_arn": "arn:aws:sns:eu-west-1:111122223333:hb", "interval_seconds": 5}});
        let m = Canary::of(&connection(config, false)).unwrap().message();
        assert_eq!((m["source"].as_str(), m["detail-type"].as_str()), (Some("aws.events"), Some("Scheduled Event")));
        assert_eq!(m["account"], "111122223333");
        assert!(chrono::DateTime::parse_from_rfc3339(m["time"].as_str().unwrap()).is_ok());
    }
}
