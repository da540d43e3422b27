//! Authenticating one SNS push: [`authenticate`].
//!
//! The checks run cheapest and side-effect-free first, so that a message from a topic
//! the connection does not allow, with a foreign certificate URL or a stale timestamp,
//! is refused before any certificate is read or fetched:
//!
//! 1. the `x-amz-sns-rawdelivery: true` header (raw delivery carries no signature);
//! 2. the envelope's shape ([`Envelope::parse`]);
//! 3. the `x-amz-sns-message-type` header, when sent, equals `Type`;
//! 4. `TopicArn` is one of the connection's topics;
//! 5. `SigningCertURL` is the topic region's SNS endpoint ([`SigningCertUrl::check`]);
//! 6. `Timestamp` is at most [`MAX_FUTURE_SKEW`] ahead and [`MAX_MESSAGE_AGE`] behind;
//! 7. the certificate ([`CertStore::get`]);
//! 8. the certificate was valid at `Timestamp`;
//! 9. the RSA PKCS#1 v1.5 signature over [`Envelope::string_to_sign`], with SHA-1 for
//!    `SignatureVersion` 1 and SHA-256 for 2.
//!
//! Reason codes (class in brackets: 400 malformed, 403 unauthenticated, 503 unavailable):
//!
//! | code | class | when |
//! |---|---|---|
//! | `sns_raw_delivery` | malformed | raw message delivery is on for the subscription |
//! | `sns_not_an_envelope` | malformed | body is not a JSON object with a `Type`, or repeats a field |
//! | `sns_envelope_invalid` | malformed | unknown `Type`, a field missing or not a string, bad `TopicArn` or `Timestamp` |
//! | `sns_type_mismatch` | malformed | `x-amz-sns-message-type` differs from `Type` |
//! | `sns_signature_version_unsupported` | unauthenticated | `SignatureVersion` is not `1` or `2` |
//! | `topic_not_allowed` | unauthenticated | `TopicArn` is not one of the connection's `topic_arns` |
//! | `sns_cert_url_invalid` | unauthenticated (malformed when missing or not a string) | `SigningCertURL` breaks a rule |
//! | `sns_message_too_old` | unauthenticated | `Timestamp` is more than 7 days old |
//! | `sns_message_from_future` | unauthenticated | `Timestamp` is more than 15 minutes ahead |
//! | `sns_cert_not_pinned` | unauthenticated | fetching is off and the certificate is not pinned |
//! | `sns_cert_unavailable` | unavailable | the certificate cannot be fetched or read right now |
//! | `sns_cert_invalid` | unauthenticated | the certificate URL answered no certificate, or not an RSA X.509 PEM one |
//! | `sns_cert_expired_at_timestamp` | unauthenticated | the certificate was not valid at `Timestamp` |
//! | `sns_signature_invalid` | unauthenticated | `Signature` is not base64 or does not verify |
//!
//! [`super::cert_url::check_subscribe_url`] adds `sns_subscribe_url_invalid`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use http::HeaderMap;

use super::cert_url::SigningCertUrl;
use super::certs::CertStore;
use super::envelope::{quoted, Envelope, SignatureVersion};
use crate::sources::{header, Rejected};

/// How far ahead of pushgate's clock a `Timestamp` may be: room for clock drift
/// between SNS and this host, no more.
pub const MAX_FUTURE_SKEW: TimeDelta = TimeDelta::minutes(15);

/// How old a `Timestamp` may be. SNS stops retrying an HTTP/S delivery within an hour
/// (a hard limit of its delivery policies), so a week is generous; anything older is a
/// captured message played back.
pub const MAX_MESSAGE_AGE: TimeDelta = TimeDelta::days(7);

/// Authenticates an SNS push to a connection allowing `allowed_topics`, with the clock
/// `now`. Returns the envelope, every signed field of it proven to come from SNS.
pub async fn authenticate(
    body: &[u8],
    headers: &HeaderMap,
    now: DateTime<Utc>,
    allowed_topics: &[String],
    certs: &CertStore,
) -> Result<Envelope, Rejected> {
    if header(headers, "x-amz-sns-rawdelivery").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Err(Rejected::malformed(
            "sns_raw_delivery",
            "raw message delivery is on for this subscription; its messages carry no signature, so turn it off",
        ));
    }
    let envelope = Envelope::parse(body)?;
    if let Some(sent) = headers.get("x-amz-sns-message-type") {
        if sent.as_bytes() != envelope.message_type().as_str().as_bytes() {
            let shown = quoted(&String::from_utf8_lossy(sent.as_bytes()));
            let kind = envelope.message_type().as_str();
            return Err(Rejected::malformed(
                "sns_type_mismatch",
                format!("header x-amz-sns-message-type is {shown} but the message's Type is {kind}"),
            ));
        }
    }
    if !allowed_topics.iter().any(|topic| topic == envelope.topic_arn()) {
        return Err(Rejected::unauthenticated(
            "topic_not_allowed",
            format!("TopicArn {} is not one of this connection's topic_arns", envelope.topic_arn()),
        ));
    }
    let cert_url = SigningCertUrl::check(envelope.signing_cert_url(), envelope.region())?;
    check_freshness(envelope.sent_at(), now)?;

    let cert = certs.get(&cert_url, now).await?;
    if !cert.valid_at(envelope.sent_at()) {
        return Err(Rejected::unauthenticated(
            "sns_cert_expired_at_timestamp",
            format!(
                "certificate {} is valid from {} to {}, which does not include the message's Timestamp {}",
                cert_url.file_name(),
                cert.not_before(),
                cert.not_after(),
                envelope.timestamp()
            ),
        ));
    }
    let signature =
        STANDARD.decode(envelope.signature()).map_err(|_| Rejected::unauthenticated("sns_signature_invalid", "Signature is not base64"))?;
    let version = envelope.signature_version();
    cert.verifier(version).verify_sig(envelope.string_to_sign().as_bytes(), &signature).map_err(|_| {
        let algorithm = match version {
            SignatureVersion::Sha1 => "RSA SHA-1, SignatureVersion 1",
            SignatureVersion::Sha256 => "RSA SHA-256, SignatureVersion 2",
        };
        Rejected::unauthenticated(
            "sns_signature_invalid",
            format!("Signature ({algorithm}) does not verify with certificate {}", cert_url.file_name()),
        )
    })?;
    Ok(envelope)
}

fn check_freshness(sent_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), Rejected> {
    if sent_at - now > MAX_FUTURE_SKEW {
        return Err(Rejected::unauthenticated(
            "sns_message_from_future",
            format!("Timestamp {sent_at} is more than 15 minutes ahead of this server's clock ({now})"),
        ));
    }
    if now - sent_at > MAX_MESSAGE_AGE {
        return Err(Rejected::unauthenticated(
            "sns_message_too_old",
            format!("Timestamp {sent_at} is more than 7 days old ({now}); SNS gives up on a delivery long before that, so it is taken for a replay"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
