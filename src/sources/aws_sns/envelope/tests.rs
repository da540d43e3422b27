use super::*;
use crate::sources::RejectClass;
use serde_json::json;

fn notification() -> Value {
    json!({
        "Type": "Notification",
        "MessageId": "m-1",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:alerts",
        "Message": "hello",
        "Timestamp": "2026-03-06T19:55:38.903Z",
        "SignatureVersion": "1",
        "Signature": "c2ln",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"
    })
}

fn confirmation(kind: &str) -> Value {
    json!({
        "Type": kind,
        "MessageId": "m-2",
        "Token": "tok",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:alerts",
        "Message": "confirm",
        "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=tok",
        "Timestamp": "2026-03-06T19:31:32.895Z",
        "SignatureVersion": "2",
        "Signature": "c2ln",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem"
    })
}

fn parse(value: &Value) -> Result<Envelope, Rejected> {
    Envelope::parse(value.to_string().as_bytes())
}

#[test]
fn a_notification_without_subject_signs_six_fields() {
    let envelope = parse(&notification()).unwrap();
    assert_eq!(envelope.message_type(), MessageType::Notification);
    assert_eq!(envelope.region(), "us-east-1");
    assert_eq!(envelope.signature_version(), SignatureVersion::Sha1);
    assert_eq!(envelope.sent_at().to_rfc3339(), "2026-03-06T19:55:38.903+00:00");
    assert_eq!(
        envelope.string_to_sign(),
        "Message\nhello\nMessageId\nm-1\nTimestamp\n2026-03-06T19:55:38.903Z\n\
         TopicArn\narn:aws:sns:us-east-1:123456789012:alerts\nType\nNotification\n"
    );
}

#[test]
fn a_present_subject_is_signed_even_when_empty_and_a_null_one_is_absent() {
    let mut body = notification();
    body["Subject"] = json!("");
    assert!(parse(&body).unwrap().string_to_sign().contains("MessageId\nm-1\nSubject\n\nTimestamp\n"));
    body["Subject"] = Value::Null;
    let envelope = parse(&body).unwrap();
    assert_eq!(envelope.subject(), None);
    assert!(!envelope.string_to_sign().contains("Subject"));
}

#[test]
fn confirmations_sign_subscribe_url_and_token() {
    for kind in ["SubscriptionConfirmation", "UnsubscribeConfirmation"] {
        let envelope = parse(&confirmation(kind)).unwrap();
        assert_eq!(
            envelope.string_to_sign(),
            format!(
                "Message\nconfirm\nMessageId\nm-2\n\
                 SubscribeURL\nhttps://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=tok\n\
                 Timestamp\n2026-03-06T19:31:32.895Z\nToken\ntok\n\
                 TopicArn\narn:aws:sns:us-east-1:123456789012:alerts\nType\n{kind}\n"
            )
        );
    }
}

#[test]
fn a_subject_on_a_confirmation_is_not_signed() {
    let mut body = confirmation("SubscriptionConfirmation");
    body["Subject"] = json!("ignored");
    assert!(!parse(&body).unwrap().string_to_sign().contains("Subject"));
}

#[test]
fn both_spellings_of_the_url_fields_are_read() {
    let mut body = notification();
    let url = body.as_object_mut().unwrap().remove("SigningCertURL").unwrap();
    body["SigningCertUrl"] = url.clone();
    body["UnsubscribeUrl"] = body.as_object_mut().unwrap().remove("UnsubscribeURL").unwrap();
    let envelope = parse(&body).unwrap();
    assert_eq!(envelope.signing_cert_url(), url.as_str().unwrap());
    assert!(envelope.unsubscribe_url().is_some());
}

#[test]
fn a_field_given_twice_is_refused() {
    let mut body = notification();
    body["SigningCertUrl"] = body["SigningCertURL"].clone();
    assert_eq!(parse(&body).unwrap_err().reason, "sns_not_an_envelope");
    let text = notification().to_string().replacen("\"Message\":", "\"Message\":\"x\",\"Message\":", 1);
    assert_eq!(Envelope::parse(text.as_bytes()).unwrap_err().reason, "sns_not_an_envelope");
}

#[test]
fn bodies_that_are_not_envelopes() {
    for body in [&b""[..], b"hello", b"[1]", b"\"x\"", b"{", b"{}", br#"{"Message":"raw delivery"}"#, b"\xff{"] {
        let e = Envelope::parse(body).unwrap_err();
        assert_eq!((e.class, e.reason), (RejectClass::Malformed, "sns_not_an_envelope"), "{body:?}: {e}");
    }
}

#[test]
fn unknown_types_and_non_string_fields_are_malformed() {
    let mut body = notification();
    body["Type"] = json!("Ping");
    assert_eq!(parse(&body).unwrap_err().reason, "sns_envelope_invalid");
    body["Type"] = json!(1);
    assert_eq!(parse(&body).unwrap_err().reason, "sns_envelope_invalid");
    let mut body = notification();
    body["Message"] = json!({"a": 1});
    let e = parse(&body).unwrap_err();
    assert_eq!(e.reason, "sns_envelope_invalid");
    assert!(e.detail.contains("`Message` must be a string"), "{e}");
}

#[test]
fn missing_fields_are_named() {
    let mut body = confirmation("SubscriptionConfirmation");
    body.as_object_mut().unwrap().remove("Token");
    body.as_object_mut().unwrap().remove("MessageId");
    let e = parse(&body).unwrap_err();
    assert_eq!((e.class, e.reason), (RejectClass::Malformed, "sns_envelope_invalid"));
    assert_eq!(e.detail, "SubscriptionConfirmation is missing the fields `MessageId`, `Token`");
    let mut body = notification();
    body["Timestamp"] = Value::Null;
    assert_eq!(parse(&body).unwrap_err().detail, "Notification is missing the field `Timestamp`");
}

#[test]
fn the_signing_cert_url_must_be_a_present_string() {
    let mut body = notification();
    body["SigningCertURL"] = json!(123);
    assert_eq!(parse(&body).unwrap_err().reason, "sns_cert_url_invalid");
    body.as_object_mut().unwrap().remove("SigningCertURL");
    assert_eq!(parse(&body).unwrap_err().reason, "sns_cert_url_invalid");
}

#[test]
fn only_signature_versions_1_and_2() {
    let mut body = notification();
    body["SignatureVersion"] = json!("2");
    assert_eq!(parse(&body).unwrap().signature_version(), SignatureVersion::Sha256);
    for version in ["3", "", "01", "1 "] {
        body["SignatureVersion"] = json!(version);
        let e = parse(&body).unwrap_err();
        assert_eq!((e.class, e.reason), (RejectClass::Unauthenticated, "sns_signature_version_unsupported"));
    }
}

#[test]
fn bad_timestamps_are_malformed() {
    let mut body = notification();
    body["Timestamp"] = json!("yesterday");
    let e = parse(&body).unwrap_err();
    assert_eq!(e.reason, "sns_envelope_invalid");
    assert!(e.detail.contains("Timestamp"));
}

#[test]
fn topic_arns() {
    for (arn, region) in [
        ("arn:aws:sns:us-east-1:123456789012:alerts", "us-east-1"),
        ("arn:aws-cn:sns:cn-north-1:123456789012:a_b-c", "cn-north-1"),
        ("arn:aws-us-gov:sns:us-gov-west-1:123456789012:x.fifo", "us-gov-west-1"),
    ] {
        assert_eq!(TopicArn::parse(arn).map(|a| a.region().to_string()), Some(region.to_string()), "{arn}");
    }
    for arn in [
        "",
        "arn:aws:sns:us-east-1:123456789012",
        "arn:aws:sqs:us-east-1:123456789012:alerts",
        "arn:aws:sns:us-east-1:12345678901:alerts",
        "arn:aws:sns:us-east-1:123456789012:",
        "arn:aws:sns:us-east-1:123456789012:a:b",
        "arn:aws:sns:US-EAST-1:123456789012:alerts",
        "arn:aws:sns:us-east-1.evil.com:123456789012:alerts",
        "arn:aws:sns::123456789012:alerts",
        "arn:other:sns:us-east-1:123456789012:alerts",
        "arn:aws:sns:us-east-1:123456789012:bad name",
        "arn:aws:sns:us-east-1:123456789012:.fifo",
    ] {
        assert!(TopicArn::parse(arn).is_none(), "{arn}");
    }
    let mut body = notification();
    body["TopicArn"] = json!("arn:aws:sns:us-east-1:123:alerts");
    assert_eq!(parse(&body).unwrap_err().reason, "sns_envelope_invalid");
}

#[test]
fn long_refused_values_are_cut_short_in_details() {
    let mut body = notification();
    body["Type"] = json!("x".repeat(10_000));
    assert!(parse(&body).unwrap_err().detail.len() < 200);
}
