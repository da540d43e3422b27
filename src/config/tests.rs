use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn defaults_need_no_configuration() {
    let c = Config::load(None, &env(&[])).unwrap();
    assert_eq!(c.listen, "127.0.0.1:8080");
    assert_eq!(c.database(), Some(Database::SqliteFile("pushgate.db".into())));
    assert_eq!(c.max_body_bytes, 1_048_576);
    assert_eq!(c.monitor_interval_ms, 15_000);
    assert_eq!(c.public_url_for("127.0.0.1:9000".parse().unwrap()), "http://127.0.0.1:9000");
}

#[test]
fn file_then_environment_override_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:0\"\nmax_body_bytes = 2048\nlog = \"debug\"\n").unwrap();
    let c = Config::load(Some(&path), &env(&[("PUSHGATE_LOG", "warn")])).unwrap();
    assert_eq!(c.listen, "127.0.0.1:0");
    assert_eq!(c.max_body_bytes, 2048);
    assert_eq!(c.log, "warn");
}

#[test]
fn every_error_is_reported_at_once() {
    let errors = Config::load(
        None,
        &env(&[
            ("PUSHGATE_LISTEN", "nowhere"),
            ("PUSHGATE_DATABASE_URL", "postgres://db/x"),
            ("PUSHGATE_MAX_BODY_BYTES", "lots"),
            ("PUSHGATE_LOG_FORMAT", "xml"),
            ("PUSHGATE_PUBLIC_URL", "ftp://x"),
        ]),
    )
    .unwrap_err()
    .0;
    let all = errors.join("\n");
    for needle in
        ["PUSHGATE_LISTEN", "PUSHGATE_MASTER_KEY is required", "PUSHGATE_MAX_BODY_BYTES", "PUSHGATE_LOG_FORMAT", "PUSHGATE_PUBLIC_URL"]
    {
        assert!(all.contains(needle), "missing {needle} in {all}");
    }
}

#[test]
fn unknown_file_keys_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, "lisen = \"x\"\n").unwrap();
    let errors = Config::load(Some(&path), &env(&[])).unwrap_err().0;
    assert!(errors[0].contains("unknown key `lisen`"));
}

#[test]
fn secrets_never_print() {
    let c = Config::load(
        None,
        &env(&[
            ("PUSHGATE_ADMIN_TOKEN", "super-secret-token-123"),
            ("PUSHGATE_ALERT_WEBHOOK_URL", "https://a"),
            ("PUSHGATE_ALERT_WEBHOOK_SECRET", "hook-secret-xyz"),
        ]),
    )
    .unwrap();
    let debug = format!("{c:?}");
    let printed = toml::to_string(&c).unwrap();
    for text in [debug, printed] {
        assert!(!text.contains("super-secret-token-123") && !text.contains("hook-secret-xyz"));
        assert!(text.contains("***"));
    }
}

#[test]
fn urls_with_credentials_print_without_them() {
    let c = Config::load(
        None,
        &env(&[
            ("PUSHGATE_DATABASE_URL", "postgres://app:db-pass-123@db:5432/pg"),
            ("PUSHGATE_MASTER_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            ("PUSHGATE_ALERT_WEBHOOK_URL", "https://hooks.example.com/services/T0/B0/token-xyz"),
            ("PUSHGATE_ALERT_WEBHOOK_SECRET", "s"),
        ]),
    )
    .unwrap();
    let printed = toml::to_string(&c).unwrap() + &format!("{c:?}");
    assert!(printed.contains("postgres://app:***@db:5432/pg"), "{printed}");
    assert!(printed.contains("https://hooks.example.com/***"), "{printed}");
    assert!(!printed.contains("db-pass-123") && !printed.contains("token-xyz"));
    assert_eq!(redact_password("sqlite://pushgate.db"), "sqlite://pushgate.db");
}

#[test]
fn database_urls() {
    assert_eq!(Database::parse("sqlite::memory:"), Some(Database::SqliteMemory));
    assert_eq!(Database::parse("sqlite:///var/x.db?mode=rwc"), Some(Database::SqliteFile("/var/x.db".into())));
    assert!(matches!(Database::parse("postgresql://u@h/d"), Some(Database::Postgres(_))));
    assert_eq!(Database::parse("mysql://x"), None);
    assert_eq!(Database::parse("sqlite://"), None);
}

#[test]
fn colon_port_binds_every_interface() {
    let c = Config::load(None, &env(&[("PUSHGATE_LISTEN", ":0")])).unwrap();
    assert_eq!(c.listen_addr(), Some("0.0.0.0:0".parse().unwrap()));
}

#[test]
fn sns_certificate_fetching_can_be_turned_off() {
    assert!(Config::load(None, &env(&[])).unwrap().sns_cert_fetch);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, "sns_cert_fetch = false\nsns_cert_dir = \"/etc/pushgate/sns\"\n").unwrap();
    let c = Config::load(Some(&path), &env(&[])).unwrap();
    assert!(!c.sns_cert_fetch);
    assert_eq!(c.sns_cert_dir.as_deref(), Some(std::path::Path::new("/etc/pushgate/sns")));
    assert!(!Config::load(None, &env(&[("PUSHGATE_SNS_CERT_FETCH", "false")])).unwrap().sns_cert_fetch);
    let errors = Config::load(None, &env(&[("PUSHGATE_SNS_CERT_FETCH", "maybe")])).unwrap_err();
    assert!(errors.0.iter().any(|e| e.contains("PUSHGATE_SNS_CERT_FETCH")), "{errors:?}");
}

#[test]
fn graph_upkeep_settings_have_defaults_and_are_checked() {
    let c = Config::load(None, &env(&[])).unwrap();
    assert_eq!(c.graph_endpoint, "https://graph.microsoft.com/v1.0");
    assert_eq!(c.microsoft_login_endpoint, "https://login.microsoftonline.com");
    assert!(c.graph_upkeep);
    let c =
        Config::load(None, &env(&[("PUSHGATE_GRAPH_ENDPOINT", "http://127.0.0.1:9/v1.0/"), ("PUSHGATE_GRAPH_UPKEEP", "false")])).unwrap();
    assert_eq!(c.graph_endpoint, "http://127.0.0.1:9/v1.0", "no trailing slash");
    assert!(!c.graph_upkeep);
    let errors = Config::load(
        None,
        &env(&[
            ("PUSHGATE_GRAPH_ENDPOINT", "graph.microsoft.com"),
            ("PUSHGATE_MICROSOFT_LOGIN_ENDPOINT", "ftp://login"),
            ("PUSHGATE_GRAPH_UPKEEP", "sometimes"),
        ]),
    )
    .unwrap_err()
    .0
    .join("\n");
    for needle in ["PUSHGATE_GRAPH_ENDPOINT", "PUSHGATE_MICROSOFT_LOGIN_ENDPOINT", "PUSHGATE_GRAPH_UPKEEP"] {
        assert!(errors.contains(needle), "missing {needle} in {errors}");
    }
}
