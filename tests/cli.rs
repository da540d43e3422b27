//! The `pushgate` binary: first start with no configuration, graceful shutdown,
//! `check-config`, `migrate` and `verify`.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_pushgate");

/// A command with no PUSHGATE_* variables from the caller's environment.
fn pushgate(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("PUSHGATE_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Starts `pushgate` on port 0 and reads stderr until it is listening; returns the child,
/// its base URL and everything it printed so far.
fn start(dir: &Path) -> (Child, String, String) {
    start_with(dir, &[])
}

fn start_with(dir: &Path, env: &[(&str, &str)]) -> (Child, String, String) {
    let mut child = pushgate(dir)
        .env("PUSHGATE_LISTEN", "127.0.0.1:0")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A thread drains stderr (so the child never blocks on a full pipe) and hands lines over.
    let reader = BufReader::new(child.stderr.take().unwrap());
    let (lines, incoming) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in reader.lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let mut printed = String::new();
    loop {
        let Ok(line) = incoming.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pushgate did not report its address within 30 s:\n{printed}");
        };
        printed.push_str(&line);
        printed.push('\n');
        if let Some(rest) = line.split("address=").nth(1) {
            let address = rest.split_whitespace().next().unwrap().to_owned();
            return (child, format!("http://{address}"), printed);
        }
    }
}

fn terminate(mut child: Child) -> std::process::ExitStatus {
    Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    panic!("pushgate did not stop within 10 s of SIGTERM");
}

fn generated_token(printed: &str) -> Option<String> {
    printed.split_whitespace().find(|w| w.starts_with("pga_")).map(str::to_owned)
}

#[tokio::test]
async fn first_start_needs_no_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let (child, base, printed) = start(dir.path());
    let token = generated_token(&printed).expect("an admin token is printed on first start");

    let key_file = dir.path().join("pushgate.key");
    assert!(dir.path().join("pushgate.db").exists(), "SQLite file created");
    assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    let key = std::fs::read_to_string(&key_file).unwrap();

    let client = http_client();
    assert_eq!(client.get(format!("{base}/readyz")).send().await.unwrap().status(), 200);
    let created = client
        .post(format!("{base}/v1/connections"))
        .bearer_auth(&token)
        .json(&json!({"tenant_id": "t", "name": "n", "source": "webhook",
            "config": {"auth": {"type": "api_key", "header": "X-Key", "value": "k-123"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let pushed = client.post(format!("{base}/push/webhook/{id}")).header("x-key", "k-123").body("{}").send().await.unwrap();
    assert_eq!(pushed.status(), 200);
    assert!(terminate(child).success(), "SIGTERM is a clean exit");

    // The second start reuses the key and the stored token, and prints no new token.
    let (child, base, printed) = start(dir.path());
    assert_eq!(generated_token(&printed), None);
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key);
    let events = client.get(format!("{base}/v1/connections/{id}/events")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(events.status(), 200);
    assert_eq!(events.json::<Value>().await.unwrap()["events"].as_array().unwrap().len(), 1);
    assert!(terminate(child).success());

    // Configuring a token replaces the generated one, which is then refused.
    let (child, base, _) = start_with(dir.path(), &[("PUSHGATE_ADMIN_TOKEN", "configured-token-0123456789")]);
    let list = |t: &str| client.get(format!("{base}/v1/connections")).bearer_auth(t.to_owned()).send();
    assert_eq!(list(&token).await.unwrap().status(), 401);
    assert_eq!(list("configured-token-0123456789").await.unwrap().status(), 200);
    assert!(terminate(child).success());
}

#[test]
fn check_config_lists_every_error_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = pushgate(dir.path())
        .arg("check-config")
        .env("PUSHGATE_LISTEN", "nowhere")
        .env("PUSHGATE_DATABASE_URL", "postgres://db.example/pushgate")
        .env("PUSHGATE_MAX_BODY_BYTES", "many")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    for needle in ["PUSHGATE_LISTEN", "PUSHGATE_MASTER_KEY is required", "PUSHGATE_MAX_BODY_BYTES"] {
        assert!(stderr.contains(needle), "{needle} missing from:\n{stderr}");
    }
}

#[test]
fn check_config_prints_the_configuration_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.toml"), "listen = \"127.0.0.1:9999\"\nadmin_token = \"file-token-that-is-secret\"\n").unwrap();
    let out = pushgate(dir.path()).args(["--config", "p.toml", "check-config"]).env("PUSHGATE_LOG", "debug").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("listen = \"127.0.0.1:9999\""), "{stdout}");
    assert!(stdout.contains("log = \"debug\""), "environment overrides defaults");
    assert!(stdout.contains("admin_token = \"***\""));
    assert!(!stdout.contains("file-token-that-is-secret"));
}

#[test]
fn migrate_creates_the_database_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let out = pushgate(dir.path()).arg("migrate").env("PUSHGATE_DATABASE_URL", "sqlite://m.db").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.path().join("m.db").exists());
}

fn verify(dir: &Path, args: &[&str]) -> (i32, Value) {
    let out = pushgate(dir).arg("verify").args(args).output().unwrap();
    let code = out.status.code().unwrap();
    (code, serde_json::from_slice(&out.stdout).unwrap_or(Value::Null))
}

#[test]
fn verify_checks_a_captured_webhook_offline() {
    let dir = tempfile::tempdir().unwrap();
    let connection = json!({"tenant_id": "acme", "source": "webhook",
        "config": {"auth": {"type": "standard_webhooks", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}});
    std::fs::write(dir.path().join("c.json"), connection.to_string()).unwrap();
    // The example of the Standard Webhooks specification.
    std::fs::write(dir.path().join("body.json"), br#"{"test": 2432232314}"#).unwrap();
    let headers = [
        "--header",
        "webhook-id: msg_p5jXN8AQM9LWM0D4loKWxJek",
        "--header",
        "webhook-timestamp: 1614265330",
        "--header",
        "webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    ];

    let mut args = vec!["--connection", "c.json", "--at", "2021-02-25T15:02:10Z"];
    args.extend(headers);
    args.push("body.json");
    let (code, report) = verify(dir.path(), &args);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["verified"], true);
    assert_eq!(report["reason"], Value::Null);
    assert_eq!(report["kind"], "events");
    assert_eq!(report["events"][0]["dedupe_key"], "msg_p5jXN8AQM9LWM0D4loKWxJek");
    assert_eq!(report["events"][0]["payload"], json!({"test": 2432232314u64}));
    assert_eq!(report["events"][0]["tenant_id"], "acme");

    // With today's clock the signed timestamp is far outside the tolerance.
    let mut now_args = vec!["--connection", "c.json"];
    now_args.extend(headers);
    now_args.push("body.json");
    let (code, report) = verify(dir.path(), &now_args);
    assert_eq!((code, report["verified"].clone(), report["reason"].clone()), (1, json!(false), json!("timestamp_out_of_tolerance")));

    std::fs::write(dir.path().join("tampered.json"), br#"{"test": 2432232315}"#).unwrap();
    let mut tampered = args.clone();
    *tampered.last_mut().unwrap() = "tampered.json";
    let (code, report) = verify(dir.path(), &tampered);
    assert_eq!((code, report["reason"].clone()), (1, json!("bad_signature")));
}

#[test]
fn verify_judges_a_captured_hmac_heartbeat_offline() {
    let dir = tempfile::tempdir().unwrap();
    let connection = json!({"source": "webhook", "heartbeat_interval_seconds": 300,
        "config": {"auth": {"type": "hmac_sha256", "header": "X-Signature", "secret": "s3cret"}}});
    std::fs::write(dir.path().join("c.json"), connection.to_string()).unwrap();
    let check = |body: &[u8], at: &str| {
        std::fs::write(dir.path().join("hb.json"), body).unwrap();
        let signature = format!("X-Signature: {}", hex::encode(pushgate::verify::hmac_sha256(b"s3cret", &[body])));
        verify(dir.path(), &["--connection", "c.json", "--header", &signature, "--at", at, "hb.json"])
    };
    let named = br#"{"type": "heartbeat", "id": "hb-2026-12-01T10:05:00Z", "time": "2026-12-01T10:05:00Z"}"#;
    let (code, report) = check(named, "2026-12-01T10:05:30Z");
    assert_eq!((code, report["kind"].clone(), report["reason"].clone()), (0, json!("heartbeat"), Value::Null), "{report}");
    assert_eq!(
        report["heartbeat"],
        json!({"id": "hb-2026-12-01T10:05:00Z", "signed_at": "2026-12-01T10:05:00Z", "counts_at": "2026-12-01T10:05:00Z", "fresh": true})
    );
    // Default grace (60 s): 300 + 60 s after it was sent it still counts, a second later not.
    assert_eq!(check(named, "2026-12-01T10:11:00Z").0, 0);
    let (code, report) = check(named, "2026-12-01T10:11:01Z");
    assert_eq!((code, report["reason"].clone()), (1, json!("heartbeat_not_fresh")), "{report}");
    // Without `id` and `time` the signature proves no time at all.
    let (code, report) = check(br#"{"type": "heartbeat"}"#, "2026-12-01T10:05:30Z");
    assert_eq!((code, report["verified"].clone(), report["reason"].clone()), (1, json!(true), json!("heartbeat_not_fresh")), "{report}");
    assert_eq!(report["heartbeat"], json!({"id": null, "signed_at": null, "counts_at": null, "fresh": false}));
}

#[test]
fn verify_usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("c.json"),
        r#"{"source": "webhook", "config": {"auth": {"type": "api_key", "header": "X", "value": "v"}}}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("b.json"), "{}").unwrap();
    std::fs::write(dir.path().join("bad.json"), r#"{"source": "webhook", "config": {}}"#).unwrap();
    for args in [
        vec!["--connection", "missing.json", "b.json"],
        vec!["--connection", "c.json", "missing-body.json"],
        vec!["--connection", "bad.json", "b.json"],
        vec!["--connection", "c.json", "--source", "fax", "b.json"],
        vec!["--connection", "c.json", "--at", "yesterday", "b.json"],
        vec!["--connection", "c.json", "--header", "no colon", "b.json"],
    ] {
        assert_eq!(verify(dir.path(), &args).0, 2, "{args:?}");
    }
    let (code, report) = verify(dir.path(), &["--connection", "c.json", "--header", "X: v", "b.json"]);
    assert_eq!((code, report["verified"].clone()), (0, json!(true)));
}

/// `verify` with the fixtures' pinned SNS certificates.
fn verify_sns(dir: &Path, pinned: bool, args: &[&str]) -> (i32, Value) {
    let mut cmd = pushgate(dir);
    if pinned {
        cmd.env("PUSHGATE_SNS_CERT_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/aws-sns/certs"));
    }
    let out = cmd.arg("verify").args(args).output().unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap(), report)
}

#[test]
fn verify_checks_captured_sns_messages_offline() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/aws-sns");
    let topic = "arn:aws:sns:us-west-2:131990247566:dongie-standard-topic";
    std::fs::write(
        dir.path().join("c.json"),
        json!({"tenant_id": "acme", "source": "aws_sns", "config": {"topic_arns": [topic]}}).to_string(),
    )
    .unwrap();
    let file = |name: &str| format!("{fixtures}/{name}");
    let at = "2026-03-06T20:05:00Z";

    let notification = file("messages/javav2-mm_notification-v2.json");
    let (code, report) = verify_sns(dir.path(), true, &["--connection", "c.json", "--at", at, &notification]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["verified"], json!(true));
    let event = &report["events"][0];
    assert_eq!(event["dedupe_key"], "9d2c5580-b61d-550c-8583-37a582870907");
    assert_eq!(report["kind"], "raw", "{report}");
    assert_eq!(report["reason"], "sns_message_not_json");
    assert_eq!(event["kind"], "raw");
    assert_eq!(
        event["payload"],
        json!({"raw": "This message uses signature version 2.", "content_type": "text/plain"}),
        "a non-JSON Message is kept whole"
    );
    assert_eq!(event["source"], "aws_sns");

    let confirmation = file("messages/javav2-mm_subscription-confirmation-v1.json");
    let (code, report) = verify_sns(dir.path(), true, &["--connection", "c.json", "--at", at, &confirmation]);
    assert_eq!((code, report["kind"].clone()), (0, json!("handshake")), "{report}");
    let unsubscribe = file("messages/javav2-mm_unsubscribe-confirmation-v2.json");
    let (code, report) = verify_sns(dir.path(), true, &["--connection", "c.json", "--at", at, &unsubscribe]);
    assert_eq!((code, report["kind"].clone()), (0, json!("lifecycle")), "{report}");
    assert_eq!(report["events"][0]["kind"], "lifecycle");

    // The same message, refused: today (too old), with nothing pinned, and tampered.
    let (code, report) = verify_sns(dir.path(), true, &["--connection", "c.json", &notification]);
    assert_eq!((code, report["reason"].clone()), (1, json!("sns_message_too_old")), "{report}");
    let (code, report) = verify_sns(dir.path(), false, &["--connection", "c.json", "--at", at, &notification]);
    assert_eq!((code, report["reason"].clone()), (1, json!("sns_cert_not_pinned")), "{report}");
    let tampered = file("negative/tampered-message-body.json");
    std::fs::write(
        dir.path().join("ruby.json"),
        json!({"source": "aws_sns", "config": {"topic_arns": ["arn:aws:sns:us-east-2:295079676684:publish-and-verify-892f85fe-4836-424d-8188-ab85bef0f362"]}}).to_string(),
    )
    .unwrap();
    let (code, report) = verify_sns(dir.path(), true, &["--connection", "ruby.json", "--at", "2022-07-28T21:25:00Z", &tampered]);
    assert_eq!((code, report["reason"].clone()), (1, json!("sns_signature_invalid")), "{report}");
    let (code, report) = verify_sns(dir.path(), true, &["--connection", "ruby.json", "--at", "2022-07-28T21:25:00Z", &notification]);
    assert_eq!((code, report["reason"].clone()), (1, json!("topic_not_allowed")), "{report}");
}

#[test]
fn verify_checks_captured_eventbridge_pushes_offline() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("c.json"),
        json!({"source": "aws_eventbridge", "config": {"auth": {"type": "api_key", "header": "X-Key", "value": "k-123"}}}).to_string(),
    )
    .unwrap();
    let finding = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/aws-eventbridge/securityhub/asr_afsbp-ec2.7.json");
    let (code, report) = verify(dir.path(), &["--connection", "c.json", "--header", "X-Key: k-123", finding]);
    assert_eq!((code, report["kind"].clone()), (0, json!("events")), "{report}");
    assert_eq!(report["events"][0]["kind"], "alert");
    assert_eq!(report["events"][0]["occurred_at"], "2021-02-17T14:56:09.063Z");
    let (code, report) = verify(dir.path(), &["--connection", "c.json", "--header", "X-Key: wrong", finding]);
    assert_eq!((code, report["verified"].clone()), (1, json!(false)), "{report}");
    let schedule =
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/aws-eventbridge/scheduled/awsdocs_eventbridge_scheduled-event.json");
    let (code, report) = verify(dir.path(), &["--connection", "c.json", "--header", "X-Key: k-123", schedule]);
    assert_eq!((code, report["kind"].clone()), (0, json!("heartbeat")), "{report}");
    let heartbeat = json!({"id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "signed_at": "2015-10-08T16:53:06Z",
        "counts_at": "2015-10-08T16:53:06Z", "fresh": true});
    assert_eq!(report["heartbeat"], heartbeat, "no interval: no age bound");
    // With an interval, `--at` says whether it would still count.
    std::fs::write(
        dir.path().join("every5.json"),
        json!({"source": "aws_eventbridge", "heartbeat_interval_seconds": 300, "grace_seconds": 60,
            "config": {"auth": {"type": "api_key", "header": "X-Key", "value": "k-123"}}})
        .to_string(),
    )
    .unwrap();
    let at = |at: &str| verify(dir.path(), &["--connection", "every5.json", "--header", "X-Key: k-123", "--at", at, schedule]);
    let (code, report) = at("2015-10-08T16:58:00Z");
    assert_eq!((code, report["reason"].clone(), report["heartbeat"].clone()), (0, Value::Null, heartbeat), "{report}");
    let (code, report) = at("2015-10-08T17:53:06Z");
    assert_eq!((code, report["verified"].clone(), report["reason"].clone()), (1, json!(true), json!("heartbeat_not_fresh")), "{report}");
    assert_eq!((report["heartbeat"]["fresh"].clone(), report["heartbeat"]["counts_at"].clone()), (json!(false), Value::Null));
    assert!(report["detail"].as_str().unwrap().contains("3600 s before it arrived"), "{report}");
}

#[test]
fn verify_checks_a_captured_pubsub_push_offline() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/gcp-pubsub");
    std::fs::write(
        dir.path().join("c.json"),
        json!({"source": "gcp_pubsub", "config": {"service_account_email": "integration-tests@chingor-test.iam.gserviceaccount.com",
            "audience": "https://example.com/path"}})
        .to_string(),
    )
    .unwrap();
    let token = std::fs::read_to_string(format!("{fixtures}/oidc/google-auth-library-java_FEDERATED_SIGNON_RS256_TOKEN.jwt")).unwrap();
    let authorization = format!("Authorization: Bearer {}", token.trim());
    let body = format!("{fixtures}/push/google-cloudevents_testdata_v1_MessagePublishedData-text.json");
    let run = |at: Option<&str>| {
        let mut cmd = pushgate(dir.path());
        cmd.env("PUSHGATE_GOOGLE_JWKS", format!("{fixtures}/oidc/google-auth-library-java_federated_keys.json"));
        cmd.args(["verify", "--connection", "c.json", "--header", &authorization]);
        if let Some(at) = at {
            cmd.args(["--at", at]);
        }
        let out = cmd.arg(&body).output().unwrap();
        (out.status.code().unwrap(), serde_json::from_slice::<Value>(&out.stdout).unwrap_or(Value::Null))
    };
    // The real Google-signed token, inside its hour of validity.
    let (code, report) = run(Some("2020-04-23T07:30:00Z"));
    assert_eq!((code, report["kind"].clone()), (0, json!("events")), "{report}");
    assert_eq!(report["events"][0]["source"], "gcp_pubsub");
    // Today it has expired.
    let (code, report) = run(None);
    assert_eq!((code, report["reason"].clone()), (1, json!("gcp_token_expired")), "{report}");
}

#[tokio::test]
async fn a_lost_or_wrong_master_key_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let (child, base, printed) = start(dir.path());
    let token = generated_token(&printed).unwrap();
    let created = http_client()
        .post(format!("{base}/v1/connections"))
        .bearer_auth(&token)
        .json(&json!({"tenant_id": "t", "name": "n", "source": "o365_activity", "config": {"auth_id": "secret-id"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert!(terminate(child).success());

    let key_file = dir.path().join("pushgate.key");
    let key = std::fs::read_to_string(&key_file).unwrap();
    std::fs::remove_file(&key_file).unwrap();
    let out = pushgate(dir.path()).env("PUSHGATE_LISTEN", "127.0.0.1:0").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("restore the file from its backup"));
    assert!(!key_file.exists(), "no new key replaces the lost one");

    let other = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let out = pushgate(dir.path()).env("PUSHGATE_LISTEN", "127.0.0.1:0").env("PUSHGATE_MASTER_KEY", other).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not the key they were sealed with"));

    std::fs::write(&key_file, key).unwrap();
    let (child, _, _) = start(dir.path());
    assert!(terminate(child).success(), "the restored key starts again");
}

/// An HTTP client. reqwest is built without a TLS crypto provider of its own (the crate
/// uses aws-lc-rs), and no client can be built before one is installed.
fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::new()
}

const GRAPH_FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ms-graph");

/// `verify` of a Graph or O365 push, with Microsoft's keys from `jwks` when given.
fn verify_microsoft(dir: &Path, jwks: Option<&Path>, args: &[&str]) -> (i32, Value) {
    let mut cmd = pushgate(dir);
    if let Some(file) = jwks {
        cmd.env("PUSHGATE_MICROSOFT_JWKS", file);
    }
    let out = cmd.arg("verify").args(args).output().unwrap();
    (out.status.code().unwrap(), serde_json::from_slice(&out.stdout).unwrap_or(Value::Null))
}

#[test]
fn verify_checks_captured_graph_and_o365_pushes_offline() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, value: &Value| std::fs::write(dir.path().join(name), value.to_string()).unwrap();
    write("lifecycle.json", &json!({"source": "ms_graph", "config": {"client_state": "{secret client state}"}}));
    let sample = format!("{GRAPH_FIXTURES}/docs/lifecycle_reauthorizationRequired.json");
    let (code, report) = verify_microsoft(dir.path(), None, &["--connection", "lifecycle.json", &sample]);
    assert_eq!((code, report["kind"].clone()), (0, json!("lifecycle")), "{report}");
    assert_eq!(report["events"][0]["payload"].get("clientState"), None);
    // Another connection's client state: refused, with the reason an operator looks for.
    write("other.json", &json!({"source": "ms_graph", "config": {"client_state": "not-this-one"}}));
    let (code, report) = verify_microsoft(dir.path(), None, &["--connection", "other.json", &sample]);
    assert_eq!((code, report["reason"].clone()), (1, json!("graph_client_state_invalid")));
    // A validation request: the query alone decides, the body is not read.
    std::fs::write(dir.path().join("empty"), b"").unwrap();
    let (code, report) = verify_microsoft(dir.path(), None, &["--connection", "other.json", "--query", "validationToken=abc", "empty"]);
    assert_eq!((code, report["kind"].clone()), (0, json!("handshake")));

    // A rich notification of the Graph SDK's vector, vouched for by a validation token.
    let encrypted: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{GRAPH_FIXTURES}/encrypted-content/encryptedContent.json")).unwrap())
            .unwrap();
    let key = std::fs::read_to_string(format!("{GRAPH_FIXTURES}/encrypted-content/richnotificationsapp.key.pem")).unwrap();
    let (app, tenant) = ("6a0e3d42-7c55-4f0b-9e54-1d2f3a4b5c6d", "84bd8158-6d4d-4958-8b9f-9d6445542f95");
    write(
        "rich.json",
        &json!({"source": "ms_graph", "config": {"client_state": "cs", "app_ids": [app],
        "encryption_keys": [{"id": encrypted["encryptionCertificateId"], "private_key_pem": key}]}}),
    );
    let signer = pushgate::testing::oidc_signer::TestOidcSigner::new();
    let jwks = signer.write_microsoft_jwks(dir.path()).unwrap();
    let at = "2026-11-23T10:00:00Z";
    let token = signer.graph_token_v2(app, tenant, at.parse().unwrap());
    write(
        "push.json",
        &json!({"value": [{"subscriptionId": "s", "changeType": "created", "clientState": "cs", "tenantId": tenant,
        "resource": "teams('t')/channels('c')/messages('1')", "encryptedContent": encrypted}], "validationTokens": [token]}),
    );
    let (code, report) = verify_microsoft(dir.path(), Some(&jwks), &["--connection", "rich.json", "--at", at, "push.json"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["events"][0]["payload"]["resourceData"]["body"]["content"], "Hello World");
    // Keys are never fetched offline; a day later the token has expired.
    let (code, report) = verify_microsoft(dir.path(), None, &["--connection", "rich.json", "--at", at, "push.json"]);
    assert_eq!((code, report["reason"].clone()), (1, json!("graph_keys_unavailable_offline")));
    let (code, report) =
        verify_microsoft(dir.path(), Some(&jwks), &["--connection", "rich.json", "--at", "2026-11-24T10:00:00Z", "push.json"]);
    assert_eq!((code, report["reason"].clone()), (1, json!("graph_token_expired")));

    // Office 365 activity: the Webhook-AuthID header decides.
    write("o365.json", &json!({"source": "o365_activity", "config": {"auth_id": "a1"}}));
    write(
        "content.json",
        &json!([{"contentType": "Audit.General", "contentId": "c1", "contentUri": "https://manage.office.com/x",
        "contentCreated": "2026-11-23T10:00:00Z"}]),
    );
    let (code, report) =
        verify_microsoft(dir.path(), None, &["--connection", "o365.json", "--header", "Webhook-AuthID: a1", "content.json"]);
    assert_eq!((code, report["events"][0]["dedupe_key"].clone()), (0, json!("c1")), "{report}");
    let (code, report) = verify_microsoft(dir.path(), None, &["--connection", "o365.json", "content.json"]);
    assert_eq!((code, report["reason"].clone()), (1, json!("o365_auth_id_missing")));
}
