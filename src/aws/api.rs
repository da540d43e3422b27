//! The AWS SNS API through `aws-sdk-sns`: `ConfirmSubscription` and `Publish`.
//!
//! Credentials come from the standard AWS chain (environment, profile, SSO, web identity,
//! container and instance roles); without any, calls are not made ([`AwsError::NoCredentials`]). The SDK configuration is loaded once, on first use, so
//! a pushgate that never talks to AWS never probes for credentials. The endpoint can be
//! overridden (`PUSHGATE_AWS_ENDPOINT_URL`) for tests against moto.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::error::CredentialsError;
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

/// How long the answer of a credentials probe is reused: found, then not found.
const CREDENTIALS_FOUND_FOR: Duration = Duration::from_secs(15 * 60);
const CREDENTIALS_MISSING_FOR: Duration = Duration::from_secs(60);

pub struct SnsApi {
    endpoint_url: Option<String>,
    sdk: OnceCell<SdkConfig>,
    /// When credentials were last looked for, and whether they were found.
    probe: Mutex<Option<(Instant, bool)>>,
}

impl SnsApi {
    pub fn new(endpoint_url: Option<String>) -> SnsApi {
        SnsApi { endpoint_url, sdk: OnceCell::new(), probe: Mutex::new(None) }
    }

    async fn sdk(&self) -> &SdkConfig {
        self.sdk
            .get_or_init(|| async {
                let timeouts = TimeoutConfig::builder().connect_timeout(CONNECT_TIMEOUT).operation_timeout(OPERATION_TIMEOUT).build();
                let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts);
                if let Some(url) = &self.endpoint_url {
                    loader = loader.endpoint_url(url);
                }
                loader.load().await
            })
            .await
    }

    /// Whether the standard chain yields credentials. The answer is reused for a while
    /// (the chain may probe instance metadata, which is slow where there is none); a
    /// provider that fails for another reason (timeout, throttling) is an outage, not
    /// an absence, and is asked again next time.
    async fn credentials(&self) -> Result<(), AwsError> {
        if let Some((at, found)) = *self.probe.lock().unwrap_or_else(|p| p.into_inner()) {
            if at.elapsed() < if found { CREDENTIALS_FOUND_FOR } else { CREDENTIALS_MISSING_FOR } {
                return if found { Ok(()) } else { Err(AwsError::NoCredentials) };
            }
        }
        let found = match self.sdk().await.credentials_provider() {
            None => false,
            Some(provider) => match provider.provide_credentials().await {
                Ok(_) => true,
                Err(CredentialsError::CredentialsNotLoaded(_)) => false,
                Err(e) => {
                    let e = aws_sdk_sns::error::DisplayErrorContext(&e);
                    return Err(AwsError::Unreachable(format!("AWS credentials could not be loaded: {e}")));
                }
            },
        };
        *self.probe.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), found));
        if found {
            Ok(())
        } else {
            Err(AwsError::NoCredentials)
        }
    }

    async fn client(&self, region: &str) -> aws_sdk_sns::Client {
        let config = aws_sdk_sns::config::Builder::from(self.sdk().await).region(Region::new(region.to_owned())).build();
        aws_sdk_sns::Client::from_conf(config)
    }

    /// Confirms a subscription with `AuthenticateOnUnsubscribe`, so only the topic owner
    /// (not whoever holds the token) can later unsubscribe it. Returns the subscription ARN.
    pub async fn confirm_subscription(&self, region: &str, topic_arn: &str, token: &str) -> Result<String, AwsError> {
        self.credentials().await?;
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
        self.credentials().await?;
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
