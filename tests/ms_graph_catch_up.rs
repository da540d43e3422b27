//! Graph catch-up end to end, on SQLite and PostgreSQL: a real pushgate server keeps a
//! subscription at a fake Graph (`common/fake_graph.rs`) whose delta queries page the way
//! Microsoft documents them (the mail folder's items are Microsoft's own example,
//! `fixtures/ms-graph/docs/delta-query-messages_example-1.json`). After a `missed`
//! lifecycle notification, or a subscription Graph removed and the upkeep created again,
//! the changes in between are read and stored as notifications marked `_catch_up`, and a
//! notification of the same change that arrives later is a duplicate.

mod common;
#[path = "common/fake_graph.rs"]
mod fake_graph;

use std::time::Duration;

use common::{Backend, TestServer};
use fake_graph::FakeGraph;
use serde_json::{json, Value};

on_both_backends_with!(
    a_missed_report_is_caught_up_and_the_same_change_notified_later_is_a_duplicate,
    a_removed_subscription_created_again_is_caught_up,
    a_throttled_delta_query_waits_for_its_retry_after,
    a_resource_without_a_delta_query_leaves_the_gap_in_the_history,
);

const TENANT: &str = "6babcaad-604b-40ac-a9d7-9fd97c0b779f";
const CLIENT_ID: &str = "0b5c3b1e-8d2f-4a6e-9c1d-2e3f4a5b6c7d";
const SECRET: &str = "pushgate-catch-up-secret-5d1e";
const CLIENT_STATE: &str = "catch-up-client-state-7";
const USER: &str = "8b4fd2c1-5a0e-4d7b-9c3f-1e2d3c4b5a69";
const FOLDER: &str = "AQMkADNkNAAAgEMAAAA";

const INTERVAL: Duration = Duration::from_millis(200);
const WITHIN: Duration = Duration::from_secs(20);

fn mail_folder() -> String {
    format!("users/{USER}/mailFolders/{FOLDER}/messages")
}

/// Microsoft's example: the items of the first round's pages and of the next round's.
fn example() -> (Vec<Value>, Vec<Value>) {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ms-graph/docs/delta-query-messages_example-1.json"))
            .unwrap();
    let fixture: Value = serde_json::from_str(&text).unwrap();
    let items = |round: &str| -> Vec<Value> {
        fixture[round].as_array().unwrap().iter().flat_map(|page| page["value"].as_array().unwrap().clone()).collect()
    };
    (items("first_round"), items("next_round"))
}

async fn start(backend: Backend, test: &str, fake: &FakeGraph) -> Option<TestServer> {
    TestServer::builder(backend, test)
        .envs(fake.env())
        .with_options(|o| {
            o.graph_upkeep_interval = Some(INTERVAL);
            o.graph_catch_up_interval = Some(INTERVAL);
            // Fewer pages than a first read of the mail folder: a round goes on in the next pass.
            o.graph_catch_up_pages_per_pass = Some(2);
        })
        .start()
        .await
}

/// Creates a connection subscribed to `resource` and waits for its subscription and for
/// the catch-up's first read of the resource's state.
async fn created(server: &TestServer, resource: &str) -> (String, Value) {
    let c = server
        .create(json!({
            "tenant_id": "acme",
            "name": "Graph changes",
            "source": "ms_graph",
            "heartbeat_interval_seconds": null,
            "config": {
                "client_state": CLIENT_STATE,
                "tenant_ids": [TENANT],
                "subscription": {"resource": resource, "change_type": "created,updated,deleted", "tenant_id": TENANT,
                    "client_id": CLIENT_ID, "client_secret": SECRET},
            },
        }))
        .await;
    let id = c["id"].as_str().unwrap().to_owned();
    let c = server
        .wait_for(&id, "a subscription and its first delta state", 100, Duration::from_millis(100), |c| {
            !c["subscription"]["external_id"].is_null() && !c["subscription"]["catch_up"]["last_success_at"].is_null()
        })
        .await;
    (id, c)
}

/// POSTs a Graph lifecycle notification for the connection's current subscription.
async fn lifecycle(server: &TestServer, connection: &Value, event: &str) {
    let subscription = connection["subscription"]["external_id"].as_str().unwrap();
    let body = json!({"value": [{
        "subscriptionId": subscription,
        "subscriptionExpirationDateTime": connection["subscription"]["expires_at"],
        "tenantId": TENANT,
        "clientState": CLIENT_STATE,
        "lifecycleEvent": event,
        "resource": connection["config"]["subscription"]["resource"],
        "resourceData": {"@odata.type": "#Microsoft.Graph.subscription", "id": subscription},
    }]});
    let url = format!("{}/lifecycle", connection["push_url"].as_str().unwrap());
    let answer = server.client.post(url).json(&body).send().await.unwrap();
    assert_eq!(answer.status(), 202, "lifecycle {event}");
}

async fn history(server: &TestServer, id: &str) -> Vec<Value> {
    server.get_json(&format!("/v1/connections/{id}/history")).await["history"].as_array().unwrap().clone()
}

/// Waits for a history entry whose message starts with `text`.
async fn history_entry(server: &TestServer, id: &str, text: &str) -> Value {
    common::eventually(&format!("a history entry {text:?}"), WITHIN, async || {
        history(server, id).await.into_iter().find(|h| h["message"].as_str().is_some_and(|m| m.starts_with(text)))
    })
    .await
}

async fn caught_up(server: &TestServer, id: &str) -> Vec<Value> {
    server.events(id).await.into_iter().filter(|e| e["payload"]["_catch_up"] == true).collect()
}

/// A Graph notification of a message, as Outlook sends it (without resource data beyond
/// the item's id and etag).
async fn notify_message(server: &TestServer, connection: &Value, message_id: &str, etag: &str) -> Value {
    let subscription = connection["subscription"]["external_id"].as_str().unwrap();
    let body = json!({"value": [{
        "subscriptionId": subscription,
        "subscriptionExpirationDateTime": connection["subscription"]["expires_at"],
        "changeType": "updated",
        "resource": format!("Users/{USER}/Messages/{message_id}"),
        "resourceData": {"@odata.type": "#Microsoft.Graph.Message", "@odata.id": format!("Users/{USER}/Messages/{message_id}"),
            "@odata.etag": etag, "id": message_id},
        "clientState": CLIENT_STATE,
        "tenantId": TENANT,
    }]});
    let answer = server.client.post(connection["push_url"].as_str().unwrap()).json(&body).send().await.unwrap();
    assert_eq!(answer.status(), 202);
    server.connection(connection["id"].as_str().unwrap()).await
}

async fn a_missed_report_is_caught_up_and_the_same_change_notified_later_is_a_duplicate(backend: Backend) {
    let fake = FakeGraph::start(CLIENT_ID, SECRET).await;
    let Some(server) = start(backend, "a_missed_report_is_caught_up_and_the_same_change_notified_later_is_a_duplicate", &fake).await else {
        return;
    };
    let (first_round, next_round) = example();
    fake.change(&mail_folder(), first_round.clone());
    let (id, c) = created(&server, &mail_folder()).await;

    // The first state of a mail folder is learned by reading it whole, two items a page,
    // over two passes: nothing of it is stored.
    let reads = fake.delta_requests();
    assert_eq!(reads.len(), 3, "{reads:?}");
    assert_eq!(reads[0].path, format!("/v1.0/{}/delta", mail_folder()));
    assert_eq!(reads[0].query, "", "a full first read");
    assert!(reads[1].query.starts_with("$skiptoken=") && reads[2].query.starts_with("$skiptoken="), "{reads:?}");
    assert!(caught_up(&server, &id).await.is_empty());
    assert!(c["subscription"]["catch_up"]["last_error"].is_null(), "{c}");

    // Notifications are lost meanwhile: a message deleted, another one updated.
    fake.change(&mail_folder(), next_round.clone());
    lifecycle(&server, &c, "missed").await;
    let entry = history_entry(&server, &id, "Missed changes caught up").await;
    assert_eq!(
        entry["message"],
        format!("Missed changes caught up: 2 changes of {} read with a delta query were stored (0 were stored already)", mail_folder())
    );
    assert_eq!(entry["old_status"], entry["new_status"], "a note, not a transition: {entry}");
    let last = fake.delta_requests().pop().unwrap();
    assert_eq!(last.query, format!("$deltatoken={}", first_round.len()), "read from the last known state");

    let events = caught_up(&server, &id).await;
    assert_eq!(events.len(), 2, "{events:?}");
    let subscription = c["subscription"]["external_id"].as_str().unwrap();
    let (deleted, updated) = (&events[1]["payload"], &events[0]["payload"]);
    assert_eq!(deleted["changeType"], "deleted");
    assert_eq!(deleted["resourceData"], next_round[0]);
    assert_eq!(updated["changeType"], "updated");
    assert_eq!(updated["resourceData"], next_round[1]);
    assert_eq!(updated["resource"], format!("{}/AAMkADNkNAAASq35xAAA=", mail_folder()));
    for e in &events {
        assert_eq!((e["payload"]["subscriptionId"].as_str(), e["payload"]["tenantId"].as_str()), (Some(subscription), Some(TENANT)));
        assert_eq!(e["source"], "ms_graph");
        assert!(e["dedupe_key"].as_str().unwrap().starts_with("catch-up:"), "{e}");
    }

    // Graph delivers the notification of the updated message after all: same item, same
    // etag, so it is a duplicate; a later change (a new etag) is stored.
    let before = server.connection(&id).await;
    let etag = next_round[1]["@odata.etag"].as_str().unwrap();
    let after = notify_message(&server, &c, "AAMkADNkNAAASq35xAAA=", etag).await;
    assert_eq!(after["counters"]["events"], before["counters"]["events"], "{after}");
    assert_eq!(after["counters"]["duplicates"].as_i64().unwrap(), before["counters"]["duplicates"].as_i64().unwrap() + 1);
    let newer = notify_message(&server, &c, "AAMkADNkNAAASq35xAAA=", "W/\"CQAAABYAAAARn2vdzPFjSbaPPxzjlzOTAAASsKZ0\"").await;
    assert_eq!(newer["counters"]["events"].as_i64().unwrap(), before["counters"]["events"].as_i64().unwrap() + 1, "{newer}");
    let stored = server.events(&id).await;
    assert_eq!(stored[0]["payload"]["resourceData"]["@odata.etag"], "W/\"CQAAABYAAAARn2vdzPFjSbaPPxzjlzOTAAASsKZ0\"");
    assert!(stored[0]["payload"].get("_catch_up").is_none());

    let metrics = server.admin(reqwest::Method::GET, "/metrics").send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("pushgate_graph_catch_up_items_total{outcome=\"stored\"} 2"), "{metrics}");
    server.stop().await;
}

async fn a_removed_subscription_created_again_is_caught_up(backend: Backend) {
    let fake = FakeGraph::start(CLIENT_ID, SECRET).await;
    let Some(server) = start(backend, "a_removed_subscription_created_again_is_caught_up", &fake).await else { return };
    fake.change("users", [json!({"id": "u1", "displayName": "Adele Vance"})]);
    let (id, c) = created(&server, "users").await;
    // Directory objects sync from now: no items, only the link of the next round.
    let reads = fake.delta_requests();
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert_eq!((reads[0].path.as_str(), reads[0].query.as_str()), ("/v1.0/users/delta", "$deltatoken=latest"));

    // Graph removes the subscription; users change before the upkeep creates a new one.
    // (The shapes of "Use delta query to track changes in Microsoft Graph data".)
    fake.change(
        "users",
        [
            json!({"id": "u1", "displayName": "Adele Vance", "jobTitle": "Retail Manager"}),
            json!({"id": "u2", "@removed": {"reason": "changed"}}),
        ],
    );
    let old = c["subscription"]["external_id"].as_str().unwrap().to_owned();
    lifecycle(&server, &c, "subscriptionRemoved").await;
    let entry = history_entry(&server, &id, "Missed changes caught up").await;
    assert_eq!(
        entry["message"],
        "Missed changes caught up: 2 changes of users read with a delta query were stored (0 were stored already)"
    );
    let now = server.connection(&id).await;
    let new = now["subscription"]["external_id"].as_str().unwrap();
    assert_ne!(new, old, "created again: {now}");
    let events = caught_up(&server, &id).await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[1]["payload"]["resource"], "users/u1");
    assert_eq!(events[1]["payload"]["resourceData"]["jobTitle"], "Retail Manager");
    assert_eq!(events[0]["payload"]["changeType"], "deleted");
    for e in &events {
        assert_eq!(e["payload"]["subscriptionId"], new, "the new subscription's");
    }
    assert!(now["subscription"]["catch_up"]["last_error"].is_null(), "{now}");
    server.stop().await;
}

async fn a_throttled_delta_query_waits_for_its_retry_after(backend: Backend) {
    let fake = FakeGraph::start(CLIENT_ID, SECRET).await;
    let Some(server) = start(backend, "a_throttled_delta_query_waits_for_its_retry_after", &fake).await else { return };
    let (id, c) = created(&server, "users").await;
    fake.change("users", [json!({"id": "u7", "displayName": "Megan Bowen"})]);
    let asked_before = fake.delta_requests().len();
    fake.throttle(1, 1);
    lifecycle(&server, &c, "missed").await;
    history_entry(&server, &id, "Missed changes caught up: 1 changes").await;

    let reads = fake.delta_requests();
    assert_eq!(reads.len(), asked_before + 2, "the throttled request, then one after its Retry-After: {reads:?}");
    let waited = reads[asked_before + 1].at - reads[asked_before].at;
    assert!(waited >= Duration::from_secs(1), "asked again after {waited:?}, before Retry-After: 1");
    assert_eq!(reads[asked_before].query, reads[asked_before + 1].query, "the same page asked again");
    assert_eq!(caught_up(&server, &id).await.len(), 1);
    let metrics = server.admin(reqwest::Method::GET, "/metrics").send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("pushgate_graph_catch_up_throttled_total 1"), "{metrics}");
    server.stop().await;
}

async fn a_resource_without_a_delta_query_leaves_the_gap_in_the_history(backend: Backend) {
    let fake = FakeGraph::start(CLIENT_ID, SECRET).await;
    let Some(server) = start(backend, "a_resource_without_a_delta_query_leaves_the_gap_in_the_history", &fake).await else { return };
    let c = server
        .create(json!({
            "tenant_id": "acme",
            "name": "Graph security alerts",
            "source": "ms_graph",
            "heartbeat_interval_seconds": null,
            "config": {
                "client_state": CLIENT_STATE,
                "tenant_ids": [TENANT],
                "subscription": {"resource": "security/alerts_v2", "change_type": "created,updated", "tenant_id": TENANT,
                    "client_id": CLIENT_ID, "client_secret": SECRET},
            },
        }))
        .await;
    let id = c["id"].as_str().unwrap().to_owned();
    let c = server.wait_for(&id, "a subscription", 100, Duration::from_millis(100), |c| !c["subscription"]["external_id"].is_null()).await;
    lifecycle(&server, &c, "missed").await;
    let entry = history_entry(&server, &id, "the gap cannot be closed").await;
    assert_eq!(
        entry["message"],
        "the gap cannot be closed: resource security/alerts_v2 has no delta query (Graph reported missed notifications)"
    );
    let c = server.connection(&id).await;
    assert_eq!(c["subscription"]["catch_up"]["last_error"], entry["message"], "{c}");
    assert!(fake.delta_requests().is_empty(), "nothing to read");
    // Entered once: later passes find nothing due.
    server.catch_up_passes(2).await;
    let notes = history(&server, &id).await.into_iter().filter(|h| h["message"] == entry["message"]).count();
    assert_eq!(notes, 1);
    server.stop().await;
}
