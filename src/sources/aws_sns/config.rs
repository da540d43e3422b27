//! The config of an `aws_sns` connection: its typed form (the catalog's schema) and the
//! rules `POST /v1/connections` words for a person.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::sources::config_check::{canary, optional_bool};

use crate::sources::catalog::MAX_CANARY_INTERVAL_SECONDS;

/// A topic ARN of [`super::topic_arn::TopicArn`]'s shape: one of the partitions pushgate
/// knows, a region that is a DNS label, a 12-digit account and a topic name.
pub const TOPIC_ARN_PATTERN: &str =
    r"^arn:(aws|aws-cn|aws-us-gov):sns:[a-z]([a-z0-9-]{0,30}[a-z0-9])?:[0-9]{12}:[A-Za-z0-9_-]{1,251}(\.fifo)?$";

/// Amazon SNS over HTTP/S: which topics may push, whether their subscriptions are
/// confirmed automatically, and an optional canary heartbeat.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The SNS topics whose messages are accepted; any other topic is refused.
    #[schemars(length(min = 1), inner(regex(pattern = TOPIC_ARN_PATTERN)))]
    pub topic_arns: Vec<String>,
    /// Confirm a topic's subscription as soon as its confirmation arrives (default true);
    /// false keeps the SubscribeURL for an admin.
    #[serde(default, deserialize_with = "crate::model::present")]
    pub auto_confirm: Option<bool>,
    /// pushgate publishes a heartbeat to this topic every `interval_seconds`; the topic
    /// must also be in `topic_arns`.
    #[serde(default, deserialize_with = "crate::model::present")]
    pub canary: Option<Canary>,
}

/// A canary heartbeat published to an SNS topic.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Canary {
    #[schemars(regex(pattern = TOPIC_ARN_PATTERN))]
    pub topic_arn: String,
    #[schemars(range(min = 1, max = MAX_CANARY_INTERVAL_SECONDS))]
    pub interval_seconds: i64,
}

/// Keys an `aws_sns` config may have.
pub const KEYS: [&str; 3] = ["topic_arns", "auto_confirm", "canary"];

fn is_topic_arn(arn: &str) -> bool {
    super::topic_arn::TopicArn::parse(arn).is_some()
}

/// Adds every problem with an `aws_sns` config to `errors`.
pub fn check(map: &Map<String, Value>, errors: &mut Vec<String>) {
    match map.get("topic_arns").and_then(Value::as_array) {
        Some(arns) if !arns.is_empty() => {
            for arn in arns {
                if !arn.as_str().is_some_and(is_topic_arn) {
                    errors.push(format!("`topic_arns`: {arn} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"));
                }
            }
        }
        _ => errors.push("`topic_arns` is required: a non-empty list of SNS topic ARNs".into()),
    }
    optional_bool(map, "auto_confirm", errors);
    canary(map, "topic_arn", is_topic_arn, "an SNS topic ARN", errors);
    // Its deliveries come back through this connection: a topic it refuses would
    // read as forged pushes ("Signature verification failing").
    let canary_topic = map.get("canary").and_then(|c| c.get("topic_arn")).and_then(Value::as_str);
    let allowed = map.get("topic_arns").and_then(Value::as_array);
    if let (Some(topic), Some(allowed)) = (canary_topic, allowed) {
        if !allowed.iter().any(|a| a.as_str() == Some(topic)) {
            errors.push(format!("`canary.topic_arn` {topic} must also be in `topic_arns`, or its heartbeats would be refused"));
        }
    }
}
