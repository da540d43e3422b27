use super::*;
use serde_json::json;

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/ms-graph/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn now() -> DateTime<Utc> {
    "2026-11-23T10:00:00Z".parse().unwrap()
}

fn no_decrypt(_: &Value) -> Result<Value, Rejected> {
    panic!("nothing here is encrypted")
}

fn expected(client_state: &str) -> Expected<'_> {
    Expected { client_state, tenant_ids: Vec::new(), upkeep: false }
}

/// Checks every item of a fixture with its own client state.
fn checked(path: &str, client_state: &str) -> Vec<Accepted> {
    let body = parse(&fixture(path)).unwrap();
    body.items.iter().map(|i| check(i, &expected(client_state), now(), no_decrypt).unwrap()).collect()
}

#[test]
fn documented_change_notifications_parse() {
    let [outlook] = checked("docs/basic-notification_outlook-message-created.json", "secretClientValue").try_into().unwrap();
    assert_eq!(outlook.event.kind, EventKind::Telemetry);
    assert!(outlook.event.dedupe_key.starts_with("{subscription_guid}:created:users/"));
    assert!(outlook.event.payload.get("clientState").is_none(), "the shared secret is never stored");
    assert_eq!(outlook.event.payload["resourceData"]["id"], "{long_id_string}");
    assert_eq!(
        outlook.change.unwrap().change,
        SubscriptionChange::Observed {
            external_id: "{subscription_guid}".into(),
            expires_at: Some("2016-03-19T22:11:09.952Z".parse().unwrap())
        }
    );
    // Printed unwrapped in the Teams documentation: read as a batch of one.
    let [teams] =
        checked("docs/basic-notification_teams-channel-message-created-unwrapped.json", "<<--SpecifiedClientState-->>").try_into().unwrap();
    assert!(teams.event.dedupe_key.starts_with("9f9d1ed0-c9cc-42e7-8d80-a7fc4b0cda3c:created:teams("));
}

#[test]
fn documented_lifecycle_notifications_parse() {
    let cases = [
        ("docs/lifecycle_reauthorizationRequired.json", "{secret client state}", "reauthorization"),
        ("issues/lifecycle_reauthorizationRequired_as-received_organizationId.json", "<secretstate>", "reauthorization"),
        ("docs/lifecycle_subscriptionRemoved.json", "<secretClientState>", "lost"),
        ("docs/lifecycle_missed.json", "<secretClientState>", "missed"),
    ];
    for (path, client_state, what) in cases {
        let [item] = checked(path, client_state).try_into().unwrap();
        assert_eq!(item.event.kind, EventKind::Lifecycle, "{path}");
        assert!(item.event.dedupe_key.starts_with("lifecycle:"), "{path}");
        let change = item.change.unwrap();
        let sub = item.event.payload["subscriptionId"].as_str().unwrap().to_owned();
        assert_eq!(change.event_key.as_deref(), Some(item.event.dedupe_key.as_str()), "applies once, with its event");
        let expected = match what {
            "reauthorization" => SubscriptionChange::ReauthorizationRequired { at: now(), subscription_id: sub.clone() },
            "lost" => SubscriptionChange::Removed { at: now(), subscription_id: sub.clone() },
            _ => SubscriptionChange::Missed { at: now() },
        };
        assert_eq!(change.change, expected, "{path}");
    }
}

#[test]
fn the_real_lifecycle_shape_is_checked_against_its_organization_id() {
    let body = parse(&fixture("issues/lifecycle_reauthorizationRequired_as-received_organizationId.json")).unwrap();
    let allowed = Expected { client_state: "<secretstate>", tenant_ids: vec!["<TENANT_ID_GUID>"], upkeep: false };
    assert!(check(&body.items[0], &allowed, now(), no_decrypt).is_ok(), "tenant ids compare without case");
    let other = Expected { client_state: "<secretstate>", tenant_ids: vec!["another-tenant"], upkeep: false };
    assert_eq!(check(&body.items[0], &other, now(), no_decrypt).unwrap_err().reason, "graph_tenant_not_allowed");
}

#[test]
fn the_documented_rich_notification_is_decrypted_through_the_callback() {
    let body = parse(&fixture("docs/rich-notification_teams-chatmessage-created.json")).unwrap();
    assert!(body.has_encrypted_content());
    let decrypted: Value = serde_json::from_slice(&fixture("docs/rich-notification_teams-chatmessage-decrypted.json")).unwrap();
    let item = check(&body.items[0], &expected("<<--SpecifiedClientState-->>"), now(), |content| {
        assert!(content.get("data").is_some());
        Ok(decrypted.clone())
    })
    .unwrap();
    assert_eq!(item.event.payload["resourceData"], decrypted, "the resource replaces the encrypted blob");
    assert!(item.event.payload.get("encryptedContent").is_none());
    assert_eq!(item.event.occurred_at, Some("2021-02-02T18:19:52.105Z".parse().unwrap()));
    // A failed decryption refuses the item with its own reason.
    let refused = check(&body.items[0], &expected("<<--SpecifiedClientState-->>"), now(), |_| {
        Err(Rejected::unauthenticated("graph_data_signature_invalid", "mismatch"))
    });
    assert_eq!(refused.unwrap_err().reason, "graph_data_signature_invalid");
}

fn item(client_state: &str, expiry: &str) -> Value {
    json!({
        "subscriptionId": "sub-1", "subscriptionExpirationDateTime": expiry, "changeType": "updated",
        "resource": "security/alerts/123", "clientState": client_state, "tenantId": "T1",
        "resourceData": {"id": "123"}
    })
}

#[test]
fn client_state_and_tenant_are_checked_per_item() {
    let e = Expected { client_state: "good", tenant_ids: vec!["t1"], upkeep: false };
    assert!(check(&item("good", "2026-11-24T00:00:00Z"), &e, now(), no_decrypt).is_ok());
    assert_eq!(check(&item("bad", "x"), &e, now(), no_decrypt).unwrap_err().reason, "graph_client_state_invalid");
    assert_eq!(check(&item("goo", "x"), &e, now(), no_decrypt).unwrap_err().reason, "graph_client_state_invalid");
    let mut missing = item("good", "x");
    missing.as_object_mut().unwrap().remove("clientState");
    assert_eq!(check(&missing, &e, now(), no_decrypt).unwrap_err().reason, "graph_client_state_missing");
    let mut no_tenant = item("good", "x");
    no_tenant.as_object_mut().unwrap().remove("tenantId");
    assert_eq!(check(&no_tenant, &e, now(), no_decrypt).unwrap_err().reason, "graph_tenant_not_allowed");
    assert_eq!(check(&json!("text"), &e, now(), no_decrypt).unwrap_err().reason, "graph_notification_malformed");
    let mut no_resource = item("good", "x");
    no_resource.as_object_mut().unwrap().remove("resource");
    assert_eq!(check(&no_resource, &e, now(), no_decrypt).unwrap_err().reason, "graph_notification_malformed");
}

#[test]
fn security_resources_are_alerts() {
    let e = expected("good");
    let alert = check(&item("good", "2026-11-24T00:00:00Z"), &e, now(), no_decrypt).unwrap();
    assert_eq!(alert.event.kind, EventKind::Alert);
    assert_eq!(kind_of("/Security/Incidents/1"), EventKind::Alert);
    assert_eq!(kind_of("users/1/messages"), EventKind::Telemetry);
}

#[test]
fn the_dedupe_key_ignores_the_expiry_and_key_order() {
    let e = expected("good");
    let a = check(&item("good", "2026-11-24T00:00:00Z"), &e, now(), no_decrypt).unwrap();
    let renewed = check(&item("good", "2026-11-27T00:00:00Z"), &e, now(), no_decrypt).unwrap();
    assert_eq!(a.event.dedupe_key, renewed.event.dedupe_key, "a retry after a renewal is the same notification");
    let reordered: Value = serde_json::from_str(
        r#"{"resourceData": {"id": "123"}, "tenantId": "T1", "clientState": "good", "resource": "security/alerts/123",
            "changeType": "updated", "subscriptionExpirationDateTime": "2026-11-24T00:00:00Z", "subscriptionId": "sub-1"}"#,
    )
    .unwrap();
    assert_eq!(check(&reordered, &e, now(), no_decrypt).unwrap().event.dedupe_key, a.event.dedupe_key);
    let mut changed = item("good", "2026-11-24T00:00:00Z");
    changed["resourceData"]["id"] = json!("124");
    assert_ne!(check(&changed, &e, now(), no_decrypt).unwrap().event.dedupe_key, a.event.dedupe_key);
}

#[test]
fn a_batch_keeps_what_verified_and_refuses_the_rest() {
    let e = expected("good");
    let results = vec![
        check(&item("good", "2026-11-24T00:00:00Z"), &e, now(), no_decrypt),
        check(&item("other-connection", "2026-11-24T00:00:00Z"), &e, now(), no_decrypt),
        check(&item("good", "2026-11-26T00:00:00Z"), &e, now(), no_decrypt),
    ];
    let batch = assemble(results).unwrap();
    assert_eq!(batch.events.len(), 2);
    assert_eq!(batch.refused.len(), 1);
    assert_eq!(batch.refused[0].reason, "graph_client_state_invalid");
    assert!(batch.refused[0].detail.starts_with("notification 1 of 3"));
    // One observation per subscription, with the latest expiry.
    assert_eq!(
        batch.changes,
        [ReportedChange::always(SubscriptionChange::Observed {
            external_id: "sub-1".into(),
            expires_at: Some("2026-11-26T00:00:00Z".parse().unwrap())
        })]
    );
    let nothing = assemble(vec![check(&item("bad", "x"), &e, now(), no_decrypt), check(&item("bad", "x"), &e, now(), no_decrypt)]);
    let refused = nothing.unwrap_err();
    assert_eq!(refused.reason, "graph_client_state_invalid");
    assert!(refused.detail.starts_with("no notification verified"));
}

#[test]
fn bodies_that_are_not_batches_are_malformed() {
    for body in [&b"not json"[..], b"[]", b"{}", br#"{"value": []}"#, br#"{"value": {}}"#, b"null"] {
        let e = parse(body).unwrap_err();
        assert_eq!((e.reason, e.class), ("graph_body_malformed", crate::sources::RejectClass::Malformed), "{body:?}");
    }
    let too_many = json!({"value": vec![json!({}); MAX_ITEMS + 1]});
    assert!(parse(&serde_json::to_vec(&too_many).unwrap()).is_err());
    let with_tokens = parse(br#"{"value": [{}], "validationTokens": ["a"]}"#).unwrap();
    assert_eq!(with_tokens.validation_tokens, Some(json!(["a"])));
}

#[test]
fn a_batch_with_nothing_stored_answers_by_what_failed() {
    let e = expected("good");
    let mut unreadable = item("good", "x");
    unreadable.as_object_mut().unwrap().remove("resource");
    // Authentic but unreadable: stored as a raw event and acknowledged, so Graph stops
    // retrying it. What is kept is the notification without its client state.
    let kept = assemble(vec![check(&unreadable, &e, now(), no_decrypt)]).unwrap();
    assert!(kept.events.is_empty());
    assert_eq!(kept.refused[0].class, crate::sources::RejectClass::Undecodable);
    let raw = kept.refused[0].kept.as_deref().expect("the notification is kept");
    let mut without_secret = unreadable.clone();
    without_secret.as_object_mut().unwrap().remove("clientState");
    assert_eq!(serde_json::from_slice::<Value>(raw.body.as_deref().unwrap()).unwrap(), without_secret);
    assert_eq!(raw.content_type.as_deref(), Some("application/json"));
    // A forged item keeps nothing.
    let forged = check(&item("bad", "x"), &e, now(), no_decrypt).unwrap_err();
    assert_eq!(forged.kept, None);
    // Malformed first, forged second: refused as unauthenticated (403), not malformed.
    let refused = assemble(vec![check(&json!(1), &e, now(), no_decrypt), check(&item("bad", "x"), &e, now(), no_decrypt)]);
    assert_eq!(refused.unwrap_err().class, crate::sources::RejectClass::Unauthenticated);
    // Only malformed items, nothing authenticated: malformed (400).
    let malformed = assemble(vec![check(&json!(1), &e, now(), no_decrypt)]).unwrap_err();
    assert_eq!(malformed.class, crate::sources::RejectClass::Malformed);
}

#[test]
fn with_upkeep_notifications_report_no_subscription_facts() {
    let e = Expected { client_state: "good", tenant_ids: Vec::new(), upkeep: true };
    let accepted = check(&item("good", "2026-11-24T00:00:00Z"), &e, now(), no_decrypt).unwrap();
    assert_eq!(accepted.change, None, "the upkeep knows its subscription from Graph's answers");
}
