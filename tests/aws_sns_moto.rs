//! pushgate against moto standing in for the AWS SNS API (`PUSHGATE_AWS_ENDPOINT_URL`):
//! `ConfirmSubscription` for a verified confirmation, and canary heartbeats published
//! with `Publish`, on SQLite and PostgreSQL.
//!
//! moto delivers what is published to HTTP subscribers, signed with a throw-away
//! certificate it serves only from itself: pushgate must refuse those deliveries (and
//! record why), never accept them. Skipped, loudly, without a moto server (see
//! `scripts/test`, which starts one).

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{Backend, TestServer, TestServerBuilder};
use pushgate::sources::aws_sns::test_signer::TestSigner;
use serde_json::{json, Value};

on_both_backends_with!(
    verified_confirmation_calls_confirm_subscription,
    canary_heartbeats_are_published_and_moto_deliveries_refused,
    canary_publish_failures_are_visible_on_the_connection,
);

const REGION: &str = "us-east-1";

/// The AWS SDK reads credentials from the environment: moto accepts any.
fn aws_environment() {
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_REGION", REGION);
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
}

async fn moto_client(moto: &str) -> aws_sdk_sns::Client {
    let config =
        aws_config::defaults(aws_config::BehaviorVersion::latest()).endpoint_url(moto).region(aws_config::Region::new(REGION)).load().await;
    aws_sdk_sns::Client::new(&config)
}

async fn topic(client: &aws_sdk_sns::Client, name: &str) -> String {
    client.create_topic().name(name).send().await.unwrap().topic_arn.unwrap()
}

/// A server whose AWS API is moto's.
fn server(backend: Backend, test: &str, moto: &str) -> TestServerBuilder {
    TestServer::builder(backend, test).env("PUSHGATE_AWS_ENDPOINT_URL", moto)
}

async fn sns_connection(server: &TestServer, config: Value) -> String {
    let c = server
        .create(json!({"tenant_id": "acme", "name": "moto", "source": "aws_sns", "heartbeat_interval_seconds": 60, "config": config}))
        .await;
    c["id"].as_str().unwrap().to_owned()
}

async fn verified_confirmation_calls_confirm_subscription(backend: Backend) {
    let Some(moto) = pushgate::testing::moto_url("verified_confirmation_calls_confirm_subscription") else { return };
    aws_environment();
    let sns = moto_client(&moto).await;
    let topic_arn = topic(&sns, "pushgate-confirm").await;
    let signer = TestSigner::new(REGION);
    let Some(server) = server(backend, "moto_confirm", &moto).sns_signer(&signer).start().await else { return };
    let id = sns_connection(&server, json!({"topic_arns": [topic_arn]})).await;

    let token = "2336412f37fb687f5d51e6e2425929f52e8e353134fe72d55ef8b330217d82da";
    let subscribe_url = format!("https://sns.{REGION}.amazonaws.com/?Action=ConfirmSubscription&TopicArn={topic_arn}&Token={token}");
    let body = signer.subscription_confirmation(&topic_arn, "moto-confirm-1", token, &subscribe_url, Utc::now());
    let response = server.client.post(server.url(&format!("/push/aws-sns/{id}"))).body(body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["status"], "confirmed", "{answer}");
    // moto's ConfirmSubscription answers the topic ARN plus a fixed suffix.
    let arn = answer["subscription_arn"].as_str().unwrap().to_owned();
    assert!(arn.starts_with(&format!("{topic_arn}:")), "{arn}");
    let c = server.connection(&id).await;
    assert_eq!(c["subscription"]["external_id"], arn.as_str());
    assert_eq!(c["status"], "connected");
    server.stop().await;
}

async fn canary_heartbeats_are_published_and_moto_deliveries_refused(backend: Backend) {
    let Some(moto) = pushgate::testing::moto_url("canary_heartbeats_are_published_and_moto_deliveries_refused") else {
        return;
    };
    aws_environment();
    let sns = moto_client(&moto).await;
    let topic_arn = topic(&sns, &format!("pushgate-canary-{}", uuid::Uuid::new_v4().simple())).await;
    // Fetching is off: moto's certificate exists only inside moto, and must not be trusted.
    let Some(server) = server(backend, "moto_canary", &moto).env("PUSHGATE_SNS_CERT_FETCH", "false").start().await else { return };
    let id = sns_connection(&server, json!({"topic_arns": [topic_arn], "canary": {"topic_arn": topic_arn, "interval_seconds": 1}})).await;
    // moto confirms HTTP subscriptions by itself and then delivers every publish to them.
    sns.subscribe().topic_arn(&topic_arn).protocol("http").endpoint(server.url(&format!("/push/aws-sns/{id}"))).send().await.unwrap();

    let c =
        server.wait_for(&id, "a published canary", 150, Duration::from_millis(100), |c| c["canary"]["last_published_at"].is_string()).await;
    assert!(c["canary"]["last_error"].is_null(), "{c}");
    let rejection =
        common::eventually("moto's delivery", Duration::from_secs(15), async || server.rejections(&id).await.first().cloned()).await;
    // The delivery names a plausible AWS certificate URL, but nothing vouches for moto's
    // key: refused as unauthenticated, recorded, and never counted as a heartbeat.
    assert_eq!(rejection["reason"], "sns_cert_not_pinned", "{rejection}");
    assert!(rejection["body_prefix"].as_str().unwrap().contains("Scheduled Event"), "{rejection}");
    let c = server.connection(&id).await;
    assert!(c["last_heartbeat_at"].is_null(), "{c}");
    assert_eq!(c["counters"]["heartbeats"], 0);
    assert!(server.events(&id).await.is_empty());
    server.stop().await;
}

async fn canary_publish_failures_are_visible_on_the_connection(backend: Backend) {
    let Some(moto) = pushgate::testing::moto_url("canary_publish_failures_are_visible_on_the_connection") else { return };
    aws_environment();
    let Some(server) = server(backend, "moto_canary_failure", &moto).start().await else { return };
    let missing = "arn:aws:sns:us-east-1:123456789012:no-such-topic";
    let id = sns_connection(&server, json!({"topic_arns": [missing], "canary": {"topic_arn": missing, "interval_seconds": 1}})).await;
    let c = server.wait_for(&id, "a failed canary", 150, Duration::from_millis(100), |c| c["canary"]["last_error"].is_string()).await;
    assert!(c["canary"]["last_error_at"].is_string());
    assert!(c["canary"]["last_published_at"].is_null());
    assert!(c["canary"]["last_error"].as_str().unwrap().contains("NotFound"), "{c}");
    server.stop().await;
}
