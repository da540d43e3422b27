use super::*;
use crate::microsoft::api::Delivery;
use crate::microsoft::api::EncryptionCertificate;
use chrono::Duration as D;
use serde_json::{json, Value};

fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z").unwrap().with_timezone(&Utc) + D::minutes(minutes)
}

fn live(expires_in_minutes: i64) -> Facts {
    Facts {
        confirmed_at: Some(at(-10)),
        external_id: Some("sub-1".into()),
        expires_at: Some(at(expires_in_minutes)),
        upkeep_settings_hash: Some(HASH.into()),
        ..Default::default()
    }
}

const LIFETIME: D = D::minutes(4230);
const HASH: &str = "5e77";

#[test]
fn a_connection_without_a_subscription_gets_one() {
    assert_eq!(decide(&Facts::default(), LIFETIME, HASH, at(0)), Action::Create { reason: "no subscription yet" });
}

#[test]
fn a_removed_subscription_is_created_again_unless_confirmed_since() {
    let mut facts = live(3000);
    facts.subscription_lost_at = Some(at(-1));
    assert!(matches!(decide(&facts, LIFETIME, HASH, at(0)), Action::Create { .. }));
    facts.subscription_lost_at = Some(at(-20));
    assert_eq!(decide(&facts, LIFETIME, HASH, at(0)), Action::Nothing, "confirmed after the loss");
}

#[test]
fn an_expired_subscription_is_created_again_even_when_reauthorization_was_asked() {
    let mut facts = live(-1);
    facts.reauthorization_required_at = Some(at(-30));
    assert_eq!(decide(&facts, LIFETIME, HASH, at(0)), Action::Create { reason: "the subscription expired" });
    assert!(matches!(decide(&live(0), LIFETIME, HASH, at(0)), Action::Create { .. }), "expiring now is expired");
}

#[test]
fn a_reauthorization_request_is_answered_whatever_the_expiry() {
    let mut facts = live(4000);
    facts.reauthorization_required_at = Some(at(-1));
    assert_eq!(decide(&facts, LIFETIME, HASH, at(0)), Action::Reauthorize { id: "sub-1".into() });
}

#[test]
fn renewal_starts_when_less_than_half_the_lifetime_is_left() {
    assert_eq!(decide(&live(2116), LIFETIME, HASH, at(0)), Action::Nothing);
    assert_eq!(decide(&live(2114), LIFETIME, HASH, at(0)), Action::Renew { id: "sub-1".into() });
    assert_eq!(decide(&live(29), D::minutes(60), HASH, at(0)), Action::Renew { id: "sub-1".into() });
    assert_eq!(decide(&live(31), D::minutes(60), HASH, at(0)), Action::Nothing);
    let mut unknown_expiry = live(0);
    unknown_expiry.expires_at = None;
    assert_eq!(decide(&unknown_expiry, LIFETIME, HASH, at(0)), Action::Renew { id: "sub-1".into() });
}

#[test]
fn a_subscription_created_with_other_settings_is_replaced() {
    let mut facts = live(4000);
    facts.reauthorization_required_at = Some(at(-1));
    assert_eq!(decide(&facts, LIFETIME, "other", at(0)), Action::Replace { old: "sub-1".into() }, "before reauthorizing it");
    assert_eq!(decide(&live(4000), LIFETIME, "other", at(0)), Action::Replace { old: "sub-1".into() });
    let mut unknown = live(4000);
    unknown.upkeep_settings_hash = None;
    assert_eq!(decide(&unknown, LIFETIME, "other", at(0)), Action::Nothing, "no stored fingerprint counts as the same");
    assert!(matches!(decide(&live(-1), LIFETIME, "other", at(0)), Action::Create { .. }), "an expired one is just created");
}

#[test]
fn the_fingerprint_covers_what_a_subscription_is_created_with() {
    let base = Settings::of(&config()).unwrap().unwrap();
    let url = "https://p.example/push/ms-graph/1";
    let fingerprint = base.fingerprint(url);
    assert_eq!(fingerprint.len(), 64);
    let mut changed = Vec::new();
    for (path, value) in [
        ("/client_state", json!("cs2")),
        ("/subscription/resource", json!("groups")),
        ("/subscription/change_type", json!("updated")),
        ("/subscription/tenant_id", json!("t2")),
        ("/subscription/client_id", json!("c2")),
    ] {
        let mut c = config();
        *c.pointer_mut(path).unwrap() = value;
        changed.push(Settings::of(&c).unwrap().unwrap().fingerprint(url));
    }
    let mut with_certificate = base.clone();
    with_certificate.encryption = Some(EncryptionCertificate { id: "k1".into(), certificate_base64: "MIIB".into() });
    changed.push(with_certificate.fingerprint(url));
    with_certificate.encryption = Some(EncryptionCertificate { id: "k2".into(), certificate_base64: "MIIB".into() });
    changed.push(with_certificate.fingerprint(url));
    changed.push(base.fingerprint("https://q.example/push/ms-graph/1"));
    for (i, other) in changed.iter().enumerate() {
        assert_ne!(other, &fingerprint, "change {i}");
    }
    let mut same = config();
    same["subscription"]["client_secret"] = json!("rotated");
    same["subscription"]["expiration_minutes"] = json!(60);
    assert_eq!(Settings::of(&same).unwrap().unwrap().fingerprint(url), fingerprint, "renewals and tokens apply these");
}

fn connection(id: Uuid) -> Connection {
    let facts = Facts::default();
    let at = at(0);
    Connection {
        id,
        tenant_id: "acme".into(),
        name: "g".into(),
        source: SourceKind::MsGraph,
        stream: "s".into(),
        heartbeat_interval_seconds: None,
        grace_seconds: 0,
        config_public: json!({}),
        config_sealed: String::new(),
        created_at: at,
        activated_at: at,
        updated_at: at,
        facts,
        counters: Default::default(),
        canary: Default::default(),
        upkeep: Default::default(),
        catch_up: Default::default(),
    }
}

#[test]
fn a_nudge_ends_the_wait_of_that_connection_only() {
    let (a, b) = (connection(Uuid::new_v4()), connection(Uuid::new_v4()));
    let mut backoff = Backoff::default();
    let start = Instant::now();
    backoff.failed(&a, Duration::from_secs(60), start);
    backoff.failed(&b, Duration::from_secs(60), start);
    let nudged = HashSet::from([a.id]);
    assert!(!backoff.skips(&a, &nudged, start), "nudged");
    assert!(backoff.skips(&b, &nudged, start), "still waiting");
    assert!(!backoff.skips(&b, &nudged, start + Duration::from_secs(61)), "waited long enough");
}

#[test]
fn a_running_upkeep_collects_nudged_connections_until_its_next_pass() {
    let handle = UpkeepHandle::new();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    handle.nudge(a);
    assert!(handle.take_nudged().is_empty(), "no upkeep runs: nothing kept");
    handle.shared.running.store(true, Ordering::SeqCst);
    let clone = handle.clone();
    clone.nudge(a);
    handle.nudge(b);
    handle.nudge(a);
    assert_eq!(handle.take_nudged(), HashSet::from([a, b]));
    assert!(handle.take_nudged().is_empty(), "taken by one pass");
    let settings = Settings::of(&config()).unwrap().unwrap();
    clone.retire(a, settings, "sub-1".into());
    let retired = handle.take_retirements();
    assert_eq!((retired.len(), retired[0].external_id.as_str()), (1, "sub-1"));
}

#[test]
fn failures_back_off_doubling_up_to_sixteen_intervals() {
    let minute = Duration::from_secs(60);
    let waits: Vec<u64> = (1..=7).map(|n| backoff_delay(minute, n).as_secs() / 60).collect();
    assert_eq!(waits, [1, 2, 4, 8, 16, 16, 16]);
    assert_eq!(backoff_delay(minute, u32::MAX), minute * 16);
    assert_eq!(backoff_delay(Duration::MAX, 3), Duration::MAX, "no overflow");
}

fn config() -> Value {
    json!({
        "client_state": "cs",
        "subscription": {"resource": "users", "change_type": "created", "tenant_id": "t", "client_id": "c", "client_secret": "s"},
    })
}

#[test]
fn settings_are_read_from_the_full_config() {
    let s = Settings::of(&config()).unwrap().unwrap();
    assert_eq!((s.resource.as_str(), s.credentials.client_secret.expose()), ("users", "s"));
    assert_eq!(s.lifetime, D::minutes(DEFAULT_EXPIRATION_MINUTES));
    assert_eq!(s.encryption, None);
    let mut c = config();
    c["subscription"]["expiration_minutes"] = json!(60);
    assert_eq!(Settings::of(&c).unwrap().unwrap().lifetime, D::minutes(60));
    assert_eq!(Settings::of(&json!({"client_state": "cs"})), Ok(None));
    c["subscription"]["client_secret"] = json!("");
    assert!(Settings::of(&c).unwrap_err().contains("client_secret"));
    assert!(!format!("{:?}", Settings::of(&config())).contains("\"s\""), "Debug hides the secret");
}

#[test]
fn a_key_with_a_certificate_asks_for_rich_notifications() {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["pushgate".into()]).unwrap().self_signed(&key).unwrap();
    let mut c = config();
    c["encryption_keys"] = json!([
        {"id": "plain", "private_key_pem": "-----BEGIN PRIVATE KEY-----"},
        {"id": "k2", "private_key_pem": "-----BEGIN PRIVATE KEY-----", "certificate_pem": cert.pem()},
    ]);
    let e = Settings::of(&c).unwrap().unwrap().encryption.unwrap();
    use base64::Engine;
    assert_eq!(e.id, "k2");
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(&e.certificate_base64).unwrap(), cert.der().to_vec());
    c["encryption_keys"][1]["certificate_pem"] = json!("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----");
    assert!(Settings::of(&c).unwrap_err().contains("k2"));
}

#[test]
fn a_subscription_graph_holds_is_checked_against_the_connection() {
    use crate::config::Secret;
    let settings = Settings::of(&config()).unwrap().unwrap();
    let url = "https://p.example/push/ms-graph/1";
    let held = Delivery {
        notification_url: Some(url.into()),
        resource: Some("users".into()),
        change_type: Some("created".into()),
        client_state: Some(Secret::new("cs")),
    };
    assert_eq!(mismatch(&held, url, &settings), None);
    assert_eq!(mismatch(&Delivery::default(), url, &settings), None, "what Graph does not say is not held against it");
    let written_otherwise = Delivery { resource: Some("/Users".into()), change_type: Some(" Created ".into()), ..held.clone() };
    assert_eq!(mismatch(&written_otherwise, url, &settings), None);
    let mut two = settings.clone();
    two.change_type = "updated,deleted".into();
    let reordered = Delivery { change_type: Some("deleted,updated".into()), ..held.clone() };
    assert_eq!(mismatch(&reordered, url, &two), None, "the parts of a change type in another order");

    let moved = Delivery { notification_url: Some("https://elsewhere.example/hook".into()), ..held.clone() };
    let why = mismatch(&moved, url, &settings).unwrap();
    assert!(why.contains("notificationUrl") && why.contains("https://elsewhere.example/hook") && why.contains(url), "{why}");
    let why = mismatch(&Delivery { resource: Some("groups".into()), ..held.clone() }, url, &settings).unwrap();
    assert!(why.contains("resource is \"groups\""), "{why}");
    let why = mismatch(&Delivery { change_type: Some("created,deleted".into()), ..held.clone() }, url, &settings).unwrap();
    assert!(why.contains("changeType"), "{why}");
    let other_state = Delivery { client_state: Some(Secret::new("someone-elses-state")), ..held.clone() };
    let why = mismatch(&other_state, url, &settings).unwrap();
    assert!(why.contains("clientState") && !why.contains("someone-elses-state") && !why.contains("\"cs\""), "never the value: {why}");
    let everything = Delivery { notification_url: Some("https://x.example".into()), resource: Some("groups".into()), ..held };
    let why = mismatch(&everything, url, &settings).unwrap();
    assert!(why.contains("notificationUrl") && why.contains("; its resource"), "every difference: {why}");
}
