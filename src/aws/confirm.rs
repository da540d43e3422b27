//! Confirming an SNS subscription once its `SubscriptionConfirmation` has been verified.
//!
//! With AWS credentials, through `ConfirmSubscription` with `AuthenticateOnUnsubscribe`
//! (so the token alone can no longer unsubscribe us). Without them, by a GET of the
//! message's `SubscribeURL`, after checking that it is https on the topic region's own
//! `sns.<region>` host: no other URL is ever fetched.

use super::api::{AwsError, SnsApi};
use crate::sources::aws_sns::cert_url::check_subscribe_url;

/// Longest answer to a SubscribeURL GET that is read (AWS answers a few hundred bytes).
const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// Why a subscription could not be confirmed.
#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    /// AWS could not be reached: SNS should retry the confirmation message.
    #[error("{0}")]
    Unreachable(String),
    /// AWS refused (expired token, no permission) or the URL is not one we fetch.
    #[error("{0}")]
    Refused(String),
}

pub struct Confirmer {
    api: std::sync::Arc<SnsApi>,
    http: reqwest::Client,
}

/// How a subscription was confirmed, with the subscription ARN AWS answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmed {
    pub subscription_arn: Option<String>,
    pub via: &'static str,
}

impl Confirmer {
    pub fn new(api: std::sync::Arc<SnsApi>, http: reqwest::Client) -> Confirmer {
        Confirmer { api, http }
    }

    /// Confirms the subscription a verified `SubscriptionConfirmation` asked for.
    pub async fn confirm(&self, region: &str, topic_arn: &str, token: &str, subscribe_url: &str) -> Result<Confirmed, ConfirmError> {
        match self.api.confirm_subscription(region, topic_arn, token).await {
            Ok(arn) => return Ok(Confirmed { subscription_arn: Some(arn), via: "ConfirmSubscription" }),
            Err(AwsError::NoCredentials) => {}
            Err(AwsError::Unreachable(e)) => return Err(ConfirmError::Unreachable(e)),
            // Credentials that may not confirm (another account's, no permission): the
            // SubscribeURL still works, it just cannot set AuthenticateOnUnsubscribe.
            Err(AwsError::Refused(e)) => {
                tracing::warn!(topic_arn, error = %e, "ConfirmSubscription refused; confirming through the SubscribeURL");
            }
        }
        self.confirm_by_url(region, subscribe_url).await
    }

    /// GETs the SubscribeURL, once it has passed the allow-list.
    pub async fn confirm_by_url(&self, region: &str, subscribe_url: &str) -> Result<Confirmed, ConfirmError> {
        check_subscribe_url(subscribe_url, region).map_err(|r| ConfirmError::Refused(r.detail))?;
        let mut answer = self
            .http
            .get(subscribe_url)
            .send()
            .await
            .map_err(|e| ConfirmError::Unreachable(format!("GET SubscribeURL failed: {}", without_url(e))))?;
        let status = answer.status();
        let mut body = Vec::new();
        while let Some(chunk) = answer.chunk().await.map_err(|e| ConfirmError::Unreachable(without_url(e)))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_ANSWER_BYTES {
                return Err(ConfirmError::Refused("the SubscribeURL answer is too large".into()));
            }
        }
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(ConfirmError::Unreachable(format!("the SubscribeURL answered {status}")));
        }
        if !status.is_success() {
            return Err(ConfirmError::Refused(format!("the SubscribeURL answered {status} (expired or already used token?)")));
        }
        Ok(Confirmed { subscription_arn: subscription_arn(&String::from_utf8_lossy(&body)), via: "SubscribeURL" })
    }
}

/// The `SubscriptionArn` of a `ConfirmSubscriptionResponse` XML answer, when it is an SNS ARN.
fn subscription_arn(xml: &str) -> Option<String> {
    let start = xml.find("<SubscriptionArn>")? + "<SubscriptionArn>".len();
    let end = start + xml[start..].find("</SubscriptionArn>")?;
    let arn = xml[start..end].trim();
    let plausible = arn.starts_with("arn:") && arn.contains(":sns:") && arn.len() <= 512 && arn.chars().all(|c| c.is_ascii_graphic());
    plausible.then(|| arn.to_owned())
}

/// A reqwest error without its URL: the SubscribeURL holds the confirmation token.
fn without_url(error: reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_redirect() {
        "redirects are not followed"
    } else {
        "request failed"
    };
    format!("{kind}: {}", error.without_url())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_arn_is_read_from_the_answer() {
        let xml = "<ConfirmSubscriptionResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">\
            <ConfirmSubscriptionResult><SubscriptionArn>arn:aws:sns:us-west-2:123456789012:MyTopic:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55</SubscriptionArn>\
            </ConfirmSubscriptionResult></ConfirmSubscriptionResponse>";
        assert_eq!(
            subscription_arn(xml).as_deref(),
            Some("arn:aws:sns:us-west-2:123456789012:MyTopic:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55")
        );
        assert_eq!(subscription_arn("<SubscriptionArn><script></SubscriptionArn>"), None);
        assert_eq!(subscription_arn("nothing"), None);
    }
}
