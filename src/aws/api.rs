//! The AWS SNS API through `aws-sdk-sns`: `ConfirmSubscription` and `Publish`.
//!
//! Credentials come from the standard AWS chain (environment, profile, SSO, web identity,
//! container and instance roles). The SDK configuration is loaded once, on first use, so
//! a pushgate that never talks to AWS never probes for credentials. The endpoint can be
//! overridden (`PUSHGATE_AWS_ENDPOINT_URL`) for tests against moto.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;
use tokio::sync::OnceCell;

/// Why an SNS API call failed.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// No credentials in the standard chain: the call was not made.
    #[error("no AWS credentials are configured")]
    NoCredentials,
    /// AWS answered with an error (access denied, topic not found, bad token, ...).
    #[error("AWS refused the call: {0}")]
    Refused(String),
    /// AWS could not be reached or did not answer in time: worth retrying.
    #[error("AWS could not be reached: {0}")]
    Unreachable(String),
}

/// Connect and whole-call limits: a confirmation runs while SNS waits for our answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

pub struct SnsApi {
    endpoint_url: Option<String>,
    sdk: OnceCell<SdkConfig>,
}

impl SnsApi {
    pub fn new(endpoint_url: Option<String>) -> SnsApi {
        SnsApi { endpoint_url, sdk: OnceCell::new() }
    }

    async fn sdk(&self) -> &SdkConfig {
        self.sdk
            .get_or_init(|| async {
                let timeouts = TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_timeout(OPERATION_TIMEOUT)
                    .build();
                let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts);
                if let Some(url) = &self.endpoint_url {
                    loader = loader.endpoint_url(url);
                }
                loader.load().await
            })
            .await
    }

    /// Whether the standard chain yields credentials right now.
    pub async fn has_credentials(&self) -> bool {
        match self.sdk().await.credentials_provider() {
            Some(provider) => provider.provide_credentials().await.is_ok(),
            None => false,
        }
    }

    async fn client(&self, region: &str) -> aws_sdk_sns::Client {
        let config = aws_sdk_sns::config::Builder::from(self.sdk().await).region(Region::new(region.to_owned())).build();
        aws_sdk_sns::Client::from_conf(config)
    }

    /// Confirms a subscription with `AuthenticateOnUnsubscribe`, so only the topic owner
    /// (not whoever holds the token) can later unsubscribe it. Returns the subscription ARN.
    pub async fn confirm_subscription(&self, region: &str, topic_arn: &str, token: &str) -> Result<String, AwsError> {
        if !self.has_credentials().await {
            return Err(AwsError::NoCredentials);
        }
        let answer = self
            .client(region)
            .await
            .confirm_subscription()
            .topic_arn(topic_arn)
            .token(token)
            .authenticate_on_unsubscribe("true")
            .send()
            .await
            .map_err(classify)?;
        answer.subscription_arn.ok_or_else(|| AwsError::Refused("the answer holds no SubscriptionArn".into()))
    }

    /// Publishes `message` to a topic; returns the message id.
    pub async fn publish(&self, region: &str, topic_arn: &str, message: &str) -> Result<String, AwsError> {
        if !self.has_credentials().await {
            return Err(AwsError::NoCredentials);
        }
        let answer = self.client(region).await.publish().topic_arn(topic_arn).message(message).send().await.map_err(classify)?;
        Ok(answer.message_id.unwrap_or_default())
    }
}

/// Service errors are answers (retrying the same call will not help); the rest is transport.
fn classify<E, R>(error: aws_sdk_sns::error::SdkError<E, R>) -> AwsError
where
    E: std::error::Error + aws_sdk_sns::error::ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_sns::error::SdkError;
    match &error {
        SdkError::ServiceError(service) => {
            let e = service.err();
            AwsError::Refused(format!("{}: {}", e.code().unwrap_or("error"), e.message().unwrap_or("no message")))
        }
        _ => AwsError::Unreachable(aws_sdk_sns::error::DisplayErrorContext(&error).to_string()),
    }
}
