//! A stand-in for SNS in tests: its own RSA-2048 key, a self-signed certificate for it
//! named like an SNS one, and messages signed the way SNS signs them.
//!
//! Messages are signed with `SignatureVersion` 2 (RSA PKCS#1 v1.5, SHA-256): aws-lc-rs
//! does not sign with SHA-1, and version 1 is covered by real SNS messages. The
//! certificate is written out as DER by hand, because the certificate generators in
//! this crate's tree are test-only dependencies and this module is also for the
//! integration tests. The string to sign is built here independently of
//! [`super::envelope::Envelope::string_to_sign`], so a round trip tests that too.
//! Nothing in this module runs outside tests; failures of key generation panic.

use std::path::{Path, PathBuf};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RsaKeyPair, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Datelike, TimeZone, Utc};
use serde_json::{json, Map, Value};

/// An SNS look-alike signer for one region.
pub struct TestSigner {
    key: RsaKeyPair,
    region: String,
    cert_pem: String,
    cert_file_name: String,
}

impl TestSigner {
    /// A signer whose certificate is valid from 2000 to 2099.
    pub fn new(region: &str) -> TestSigner {
        let from = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single().expect("a valid date");
        let until = Utc.with_ymd_and_hms(2099, 12, 31, 23, 59, 59).single().expect("a valid date");
        TestSigner::with_validity(region, from, until)
    }

    /// A signer whose certificate is valid from `not_before` to `not_after` (whole seconds).
    pub fn with_validity(region: &str, not_before: DateTime<Utc>, not_after: DateTime<Utc>) -> TestSigner {
        let key = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
        let cert_der = self_signed_certificate(&key, not_before, not_after);
        let mut id = [0u8; 16];
        aws_lc_rs::rand::fill(&mut id).expect("system randomness");
        TestSigner {
            key,
            region: region.to_string(),
            cert_pem: pem("CERTIFICATE", &cert_der),
            cert_file_name: format!("SimpleNotificationService-{}.pem", hex::encode(id)),
        }
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// `SimpleNotificationService-<32 hex digits>.pem`.
    pub fn cert_file_name(&self) -> &str {
        &self.cert_file_name
    }

    /// Where SNS of this region would publish the certificate.
    pub fn cert_url(&self) -> String {
        format!("https://sns.{}.amazonaws.com/{}", self.region, self.cert_file_name)
    }

    /// Writes the certificate into a pinned directory, under its file name.
    pub fn write_pinned(&self, dir: &Path) -> std::io::Result<PathBuf> {
        let path = dir.join(&self.cert_file_name);
        std::fs::write(&path, &self.cert_pem)?;
        Ok(path)
    }

    /// A signed `Notification` body; `subject` is signed when given.
    pub fn notification(
        &self,
        topic_arn: &str,
        message_id: &str,
        message: &str,
        subject: Option<&str>,
        timestamp: DateTime<Utc>,
    ) -> String {
        let mut fields = json!({
            "Type": "Notification",
            "MessageId": message_id,
            "TopicArn": topic_arn,
            "Message": message,
            "Timestamp": sns_time(timestamp),
            "UnsubscribeURL": format!(
                "https://sns.{}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={topic_arn}:1",
                self.region
            ),
        });
        if let Some(subject) = subject {
            fields["Subject"] = json!(subject);
        }
        self.sign_fields(fields)
    }

    /// A signed `SubscriptionConfirmation` body.
    pub fn subscription_confirmation(
        &self,
        topic_arn: &str,
        message_id: &str,
        token: &str,
        subscribe_url: &str,
        timestamp: DateTime<Utc>,
    ) -> String {
        self.confirmation("SubscriptionConfirmation", topic_arn, message_id, token, subscribe_url, timestamp)
    }

    /// A signed `UnsubscribeConfirmation` body.
    pub fn unsubscribe_confirmation(
        &self,
        topic_arn: &str,
        message_id: &str,
        token: &str,
        subscribe_url: &str,
        timestamp: DateTime<Utc>,
    ) -> String {
        self.confirmation("UnsubscribeConfirmation", topic_arn, message_id, token, subscribe_url, timestamp)
    }

    fn confirmation(
        &self,
        kind: &str,
        topic_arn: &str,
        message_id: &str,
        token: &str,
        subscribe_url: &str,
        timestamp: DateTime<Utc>,
    ) -> String {
        let message = format!(
            "You have chosen to subscribe to the topic {topic_arn}.\n\
             To confirm the subscription, visit the SubscribeURL included in this message."
        );
        self.sign_fields(json!({
            "Type": kind,
            "MessageId": message_id,
            "Token": token,
            "TopicArn": topic_arn,
            "Message": message,
            "SubscribeURL": subscribe_url,
            "Timestamp": sns_time(timestamp),
        }))
    }

    /// Adds `SignatureVersion` 2, `Signature` and `SigningCertURL` to an envelope's
    /// other fields (an object with a `Type`), signing them as SNS does.
    pub fn sign_fields(&self, mut fields: Value) -> String {
        let signed_names: &[&str] = match fields["Type"].as_str() {
            Some("Notification") => &["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
            _ => &["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"],
        };
        let mut to_sign = String::new();
        for name in signed_names {
            if let Some(value) = fields.get(*name).and_then(Value::as_str) {
                to_sign.push_str(&format!("{name}\n{value}\n"));
            }
        }
        let object: &mut Map<String, Value> = fields.as_object_mut().expect("envelope fields are a JSON object");
        object.insert("SignatureVersion".into(), json!("2"));
        object.insert("Signature".into(), json!(self.sign(to_sign.as_bytes())));
        object.insert("SigningCertURL".into(), json!(self.cert_url()));
        fields.to_string()
    }

    /// Base64 of an RSA PKCS#1 v1.5 SHA-256 signature of `data`.
    pub fn sign(&self, data: &[u8]) -> String {
        STANDARD.encode(rsa_sha256_signature(&self.key, data))
    }
}

fn rsa_sha256_signature(key: &RsaKeyPair, data: &[u8]) -> Vec<u8> {
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), data, &mut signature).expect("RSA signing");
    signature
}

/// A time as SNS writes `Timestamp`: UTC, milliseconds, `Z`.
pub fn sns_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn pem(label: &str, der: &[u8]) -> String {
    let text = STANDARD.encode(der);
    let lines: Vec<&str> = text.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// DER of a minimal X.509 v3 certificate for `key`, issued by itself to CN=sns.amazonaws.com.
fn self_signed_certificate(key: &RsaKeyPair, not_before: DateTime<Utc>, not_after: DateTime<Utc>) -> Vec<u8> {
    const SHA256_WITH_RSA: &[u8] = &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
    const RSA_ENCRYPTION: &[u8] = &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    const COMMON_NAME: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x03];
    const NULL: &[u8] = &[0x05, 0x00];

    let mut serial = [0u8; 16];
    aws_lc_rs::rand::fill(&mut serial).expect("system randomness");
    serial[0] = (serial[0] & 0x7f) | 0x01; // positive, no leading zero byte
    let name = sequence(&[tlv(0x31, &sequence(&[COMMON_NAME.to_vec(), tlv(0x0c, b"sns.amazonaws.com")]))]);
    let signature_algorithm = sequence(&[SHA256_WITH_RSA.to_vec(), NULL.to_vec()]);
    let public_key = sequence(&[sequence(&[RSA_ENCRYPTION.to_vec(), NULL.to_vec()]), bit_string(key.public_key().as_ref())]);
    let tbs = sequence(&[
        tlv(0xa0, &tlv(0x02, &[2])), // version 3
        tlv(0x02, &serial),
        signature_algorithm.clone(),
        name.clone(),
        sequence(&[time(not_before), time(not_after)]),
        name,
        public_key,
    ]);
    let signature = rsa_sha256_signature(key, &tbs);
    sequence(&[tbs, signature_algorithm, bit_string(&signature)])
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    if content.len() < 0x80 {
        out.push(content.len() as u8);
    } else {
        let len = content.len().to_be_bytes();
        let significant = &len[len.iter().take_while(|b| **b == 0).count()..];
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

fn sequence(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

fn bit_string(bytes: &[u8]) -> Vec<u8> {
    tlv(0x03, &[&[0u8][..], bytes].concat())
}

/// UTCTime through 2049, GeneralizedTime after, as RFC 5280 requires.
fn time(at: DateTime<Utc>) -> Vec<u8> {
    if (1950..2050).contains(&at.year()) {
        tlv(0x17, at.format("%y%m%d%H%M%SZ").to_string().as_bytes())
    } else {
        tlv(0x18, at.format("%Y%m%d%H%M%SZ").to_string().as_bytes())
    }
}
