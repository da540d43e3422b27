//! The config of an `aws_sns` connection, as the source catalog describes it.

use schemars::JsonSchema;
use serde::Deserialize;

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
