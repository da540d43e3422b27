use super::*;

use std::path::PathBuf;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn defaults_need_no_configuration() {
    let c = Config::load(None, &env(&[])).unwrap();
    assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(c.database, Database::SqliteFile("pushgate.db".into()));
    assert_eq!(c.http.max_body_bytes, 1_048_576);
    assert_eq!(c.monitor_interval, Duration::from_millis(15_000));
    assert_eq!(c.public_url_for("127.0.0.1:9000".parse().unwrap()), "http://127.0.0.1:9000");
}

#[test]
fn file_then_environment_override_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:0\"\nmax_body_bytes = 2048\nlog = \"debug\"\n").unwrap();
    let c = Config::load(Some(&path), &env(&[("PUSHGATE_LOG", "warn")])).unwrap();
    assert_eq!(c.listen, "127.0.0.1:0".parse().unwrap());
    assert_eq!(c.http.max_body_bytes, 2048);
    assert_eq!(c.log.filter, "warn");
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
    assert_eq!(format!("{:?}", c.database), r#"Postgres("postgres://app:***@db:5432/pg")"#);
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
    assert_eq!(c.listen, "0.0.0.0:0".parse().unwrap());
    assert!(toml::to_string(&c).unwrap().contains("listen = \":0\""), "printed as written");
}

#[test]
fn sns_certificate_fetching_can_be_turned_off() {
    assert!(Config::load(None, &env(&[])).unwrap().keys.sns_certs.fetch);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, "sns_cert_fetch = false\nsns_cert_dir = \"/etc/pushgate/sns\"\n").unwrap();
    let c = Config::load(Some(&path), &env(&[])).unwrap();
    assert!(!c.keys.sns_certs.fetch);
    assert_eq!(c.keys.sns_certs.pinned_dir.as_deref(), Some(Path::new("/etc/pushgate/sns")));
    assert!(!Config::load(None, &env(&[("PUSHGATE_SNS_CERT_FETCH", "false")])).unwrap().keys.sns_certs.fetch);
    let errors = Config::load(None, &env(&[("PUSHGATE_SNS_CERT_FETCH", "maybe")])).unwrap_err();
    assert!(errors.0.iter().any(|e| e.contains("PUSHGATE_SNS_CERT_FETCH")), "{errors:?}");
}

#[test]
fn graph_upkeep_settings_have_defaults_and_are_checked() {
    let c = Config::load(None, &env(&[])).unwrap();
    assert_eq!(c.graph.endpoint, "https://graph.microsoft.com/v1.0");
    assert_eq!(c.graph.login_endpoint, "https://login.microsoftonline.com");
    assert!(c.graph.upkeep);
    let c =
        Config::load(None, &env(&[("PUSHGATE_GRAPH_ENDPOINT", "http://127.0.0.1:9/v1.0/"), ("PUSHGATE_GRAPH_UPKEEP", "false")])).unwrap();
    assert_eq!(c.graph.endpoint, "http://127.0.0.1:9/v1.0", "no trailing slash");
    assert!(!c.graph.upkeep);
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

#[test]
fn an_alert_url_needs_its_secret() {
    let errors = Config::load(None, &env(&[("PUSHGATE_ALERT_WEBHOOK_URL", "https://hooks.example.com/x")])).unwrap_err().0;
    assert_eq!(errors, ["PUSHGATE_ALERT_WEBHOOK_SECRET is required when PUSHGATE_ALERT_WEBHOOK_URL is set"]);
    let c = Config::load(None, &env(&[("PUSHGATE_ALERT_WEBHOOK_URL", "https://a/b"), ("PUSHGATE_ALERT_WEBHOOK_SECRET", "s")])).unwrap();
    assert_eq!(c.alerts, Some(AlertWebhook { url: "https://a/b".into(), secret: Secret::new("s") }));
    assert!(!format!("{:?}", c.alerts).contains("/b"), "the path may be the credential");
    // A secret alone sends nothing, and is still shown as set.
    let c = Config::load(None, &env(&[("PUSHGATE_ALERT_WEBHOOK_SECRET", "s")])).unwrap();
    assert_eq!(c.alerts, None);
    assert!(toml::to_string(&c).unwrap().contains("alert_webhook_secret = \"***\""));
}

#[test]
fn the_master_key_comes_from_the_setting_or_from_beside_the_database() {
    let source = |pairs: &[(&str, &str)]| Config::load(None, &env(pairs)).unwrap().secrets.master_key;
    let key = ("PUSHGATE_MASTER_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    assert!(matches!(source(&[key]), MasterKeySource::Configured(_)));
    assert!(matches!(source(&[key, ("PUSHGATE_DATABASE_URL", "postgres://db/x")]), MasterKeySource::Configured(_)));
    assert!(matches!(source(&[]), MasterKeySource::KeyFile(f) if f == Path::new("./pushgate.key")));
    let beside = source(&[("PUSHGATE_DATABASE_URL", "sqlite:///var/lib/pushgate/p.db?mode=rwc")]);
    assert!(matches!(beside, MasterKeySource::KeyFile(f) if f == Path::new("/var/lib/pushgate/pushgate.key")));
    assert!(matches!(source(&[("PUSHGATE_DATABASE_URL", "sqlite::memory:")]), MasterKeySource::Throwaway));
    let errors = Config::load(None, &env(&[("PUSHGATE_MASTER_KEY", "c2hvcnQ=")])).unwrap_err().0;
    assert_eq!(errors, ["PUSHGATE_MASTER_KEY: must be base64 of exactly 32 bytes"]);
}

#[test]
fn check_config_prints_every_key_in_the_documented_order() {
    let set: Vec<(String, String)> = layers::DEFAULTS
        .iter()
        .map(|(key, default)| {
            let value = match *key {
                "public_url" | "aws_endpoint_url" | "pubsub_endpoint" | "alert_webhook_url" => "https://example.com",
                "admin_token" => "an-admin-token-0123456789",
                "master_key" => "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                "sns_cert_dir" => "/etc/pushgate/sns",
                "alert_webhook_secret" => "s",
                "trusted_proxies" => "10.0.0.0/8, 2001:db8::/32",
                _ => default.unwrap(),
            };
            (layers::var_name(key), value.to_owned())
        })
        .collect();
    let c = Config::load(None, &set.into_iter().collect()).unwrap();
    let printed = toml::to_string(&c).unwrap();
    let keys: Vec<&str> = printed.lines().filter_map(|line| line.split(" = ").next()).collect();
    assert_eq!(keys, layers::DEFAULTS.map(|(key, _)| key), "{printed}");
    assert!(printed.contains("monitor_interval_ms = 15000\n") && printed.contains("event_retention_hours = 720.0\n"), "{printed}");
    assert!(printed.contains("trusted_proxies = [\"10.0.0.0/8\", \"2001:db8::/32\"]\n"), "{printed}");
}

#[test]
fn verify_reads_its_settings_whatever_the_rest_says() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, "google_jwks = \"keys.json\"\npublic_url = \"https://push.example.com/\"\n").unwrap();
    // No server could run with this database, and `verify` opens none.
    let unusable = env(&[("PUSHGATE_DATABASE_URL", "mysql://x"), ("PUSHGATE_SNS_CERT_DIR", "/etc/pushgate/sns")]);
    assert!(Config::load(Some(&path), &unusable).is_err());
    let settings = OfflineSettings::load(Some(&path), &unusable).unwrap();
    assert_eq!(settings.public_url.as_deref(), Some("https://push.example.com"));
    assert_eq!(settings.keys.google_jwks, "keys.json");
    assert_eq!(settings.keys.sns_certs.pinned_dir, Some(PathBuf::from("/etc/pushgate/sns")));
    let errors = OfflineSettings::load(None, &env(&[("PUSHGATE_PUBLIC_URL", "ftp://x")])).unwrap_err().0;
    assert_eq!(errors, ["PUSHGATE_PUBLIC_URL: `ftp://x` is not an http(s) URL"]);
}

#[test]
fn trusted_proxies_are_networks_from_a_variable_or_a_file_list() {
    let ip = |text: &str| text.parse::<std::net::IpAddr>().unwrap();
    let none = Config::load(None, &env(&[])).unwrap();
    assert!(none.trusted_proxies.is_empty(), "no proxy is trusted unless named");
    assert!(toml::to_string(&none).unwrap().contains("trusted_proxies = []\n"));
    let c = Config::load(None, &env(&[("PUSHGATE_TRUSTED_PROXIES", " 10.0.0.0/8 ,192.0.2.7, fd00::/8,")])).unwrap();
    for (addr, trusted) in [("10.9.8.7", true), ("192.0.2.7", true), ("192.0.2.8", false), ("fd12::1", true), ("2001:db8::1", false)] {
        assert_eq!(c.trusted_proxies.contains(ip(addr)), trusted, "{addr}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, "trusted_proxies = [\"10.0.0.0/8\", \"2001:db8::/32\"]\n").unwrap();
    let c = Config::load(Some(&path), &env(&[])).unwrap();
    assert!(c.trusted_proxies.contains(ip("10.1.1.1")) && c.trusted_proxies.contains(ip("2001:db8::9")));
    // A string in the file reads as a variable does.
    std::fs::write(&path, "trusted_proxies = \"10.0.0.0/8, 2001:db8::/32\"\n").unwrap();
    assert_eq!(Config::load(Some(&path), &env(&[])).unwrap().trusted_proxies, c.trusted_proxies);
    // The variable wins over the file, as for every setting.
    let c = Config::load(Some(&path), &env(&[("PUSHGATE_TRUSTED_PROXIES", "")])).unwrap();
    assert!(c.trusted_proxies.is_empty());
}

#[test]
fn every_bad_trusted_proxy_is_reported() {
    let errors = Config::load(None, &env(&[("PUSHGATE_TRUSTED_PROXIES", "10.0.0.0/8, 10.0.0.0/33, lb.internal, 10.1.2.3/16, ::1/129")]))
        .unwrap_err()
        .0;
    assert_eq!(errors.len(), 4, "{errors:?}");
    for (error, entry) in errors.iter().zip(["10.0.0.0/33", "lb.internal", "10.1.2.3/16", "::1/129"]) {
        assert!(error.starts_with(&format!("PUSHGATE_TRUSTED_PROXIES: `{entry}` ")), "{error}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, "trusted_proxies = [\"10.0.0.0/8\", 8]\n").unwrap();
    let errors = Config::load(Some(&path), &env(&[])).unwrap_err().0;
    assert!(errors[0].contains("`trusted_proxies` must be a list of strings"), "{errors:?}");
    std::fs::write(&path, "max_body_bytes = [2048]\n").unwrap();
    let errors = Config::load(Some(&path), &env(&[])).unwrap_err().0;
    assert!(errors[0].contains("`max_body_bytes` must be a string or number"), "only lists take lists: {errors:?}");
}
