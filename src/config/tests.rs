#![allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error

use super::*;
use figment::Jail;
use secrecy::ExposeSecret;

fn load_in(jail: &mut Jail, toml: &str) -> Result<Config, ConfigError> {
    jail.create_file("gardien.toml", toml).expect("write file");
    Config::load(Some(std::path::Path::new("gardien.toml")))
}

#[test]
fn defaults_are_the_embedded_setup() {
    Jail::expect_with(|_| {
        let config = Config::load(None).expect("defaults load");
        assert_eq!(config.listen_addr.to_string(), "127.0.0.1:50051");
        assert_eq!(config.data_dir, PathBuf::from("gardien-data"));
        assert!(config
            .effective_database_url()
            .expose_secret()
            .starts_with("sqlite://gardien-data/gardien.db"));
        assert_eq!(config.password.min_chars, 15);
        assert_eq!(config.session.idle_ttl_secs, 3600);
        Ok(())
    });
}

#[test]
fn the_environment_overrides_the_file_which_overrides_defaults() {
    Jail::expect_with(|jail| {
        jail.set_env("GARDIEN_LISTEN_ADDR", "127.0.0.1:6000");
        jail.set_env("GARDIEN_PASSWORD__MIN_CHARS", "20");
        jail.set_env("GARDIEN_TEST_POSTGRES_URL", "postgres://ignored");
        let config = load_in(
            jail,
            "listen_addr = \"0.0.0.0:7000\"\ndata_dir = \"/srv/gardien\"\n[password]\nmin_chars = 16\nmax_chars = 300\n",
        )
        .expect("loads");
        assert_eq!(config.listen_addr.to_string(), "127.0.0.1:6000");
        assert_eq!(config.data_dir, PathBuf::from("/srv/gardien"));
        assert_eq!(config.password.min_chars, 20);
        assert_eq!(config.password.max_chars, 300);
        Ok(())
    });
}

#[test]
fn an_unknown_key_is_refused_by_name() {
    Jail::expect_with(|jail| {
        let error = load_in(jail, "listen_adr = \"127.0.0.1:1\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("listen_adr"), "{error}");
        let error = load_in(jail, "[password]\nminimum = 3\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("minimum"), "{error}");
        Ok(())
    });
}

/// Issue 23 item 3: a Kubernetes Service named gardien gives every pod
/// of its namespace `GARDIEN_PORT=tcp://…` and the like, which stopped
/// the server. Unknown variables are now left out and named; known ones
/// still apply, and a bad value of a known one is still refused.
#[test]
fn unknown_environment_variables_are_ignored_and_named() {
    Jail::expect_with(|jail| {
        jail.set_env("GARDIEN_PORT", "tcp://10.0.0.1:50051");
        jail.set_env("GARDIEN_SERVICE_HOST", "10.0.0.1");
        jail.set_env("GARDIEN_PORT_50051_TCP_ADDR", "10.0.0.1");
        jail.set_env("GARDIEN_PASSWORD__MINIMUM", "3");
        jail.set_env("GARDIEN_PASSWORD__MIN_CHARS", "20");
        let config = Config::load(None).expect("loads");
        assert_eq!(config.password.min_chars, 20);
        let mut ignored = config.ignored_env.clone();
        ignored.sort();
        assert_eq!(
            ignored,
            [
                "GARDIEN_PASSWORD__MINIMUM",
                "GARDIEN_PORT",
                "GARDIEN_PORT_50051_TCP_ADDR",
                "GARDIEN_SERVICE_HOST"
            ]
        );
        // The file's unknown keys stay errors, with such variables set.
        let error = load_in(jail, "listen_adr = \"127.0.0.1:1\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("listen_adr"), "{error}");
        jail.set_env("GARDIEN_SESSION__IDLE_TTL_SECS", "soon");
        let error = Config::load(None).unwrap_err().to_string();
        assert!(error.contains("session.idle_ttl_secs"), "{error}");
        Ok(())
    });
}

#[test]
fn a_bad_value_is_refused_naming_the_key() {
    Jail::expect_with(|jail| {
        let error = load_in(jail, "listen_addr = \"not an address\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("listen_addr"), "{error}");
        let error = load_in(jail, "[password]\nmin_chars = 4\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("password.min_chars"), "{error}");
        let error = load_in(jail, "[password]\nargon2_memory_kib = 1024\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("password.argon2_memory_kib"), "{error}");
        jail.set_env("GARDIEN_SESSION__IDLE_TTL_SECS", "soon");
        let error = Config::load(None).unwrap_err().to_string();
        assert!(error.contains("session.idle_ttl_secs"), "{error}");
        Ok(())
    });
}

#[test]
fn the_sample_configuration_is_valid_and_matches_the_defaults() {
    Jail::expect_with(|_| {
        let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/gardien.toml");
        let config = Config::load(Some(std::path::Path::new(sample))).expect("sample loads");
        let defaults = Config::default();
        assert_eq!(config.listen_addr, defaults.listen_addr);
        assert_eq!(config.password.min_chars, defaults.password.min_chars);
        assert_eq!(
            config.rate_limit.credential.per_address.burst,
            defaults.rate_limit.credential.per_address.burst
        );
        assert_eq!(
            config.information_centre.suspend_on_dispute,
            defaults.information_centre.suspend_on_dispute
        );
        assert_eq!(config.key_rotation.online, defaults.key_rotation.online);
        assert_eq!(
            config.key_rotation.batch_size,
            defaults.key_rotation.batch_size
        );
        assert_eq!(config.key_rotation.pause_ms, defaults.key_rotation.pause_ms);
        assert_eq!(
            config.key_rotation.rescan_secs,
            defaults.key_rotation.rescan_secs
        );
        Ok(())
    });
}

#[test]
fn secrets_never_print() {
    Jail::expect_with(|jail| {
        jail.set_env(
            "GARDIEN_DATABASE_URL",
            "postgres://gardien:hunter2-secret@db/gardien",
        );
        let config = Config::load(None).expect("loads");
        assert!(!format!("{config:?}").contains("hunter2-secret"));
        Ok(())
    });
}

#[test]
fn rate_limit_keys_override_one_by_one_and_bad_values_are_named() {
    Jail::expect_with(|jail| {
        jail.set_env("GARDIEN_RATE_LIMIT__CREDENTIAL__PER_ADDRESS__BURST", "3");
        let config = load_in(
            jail,
            "[rate_limit]\ntrusted_proxies = [\"10.0.0.0/8\", \"192.0.2.1\"]\n",
        )
        .expect("loads");
        let credential = config.rate_limit.credential;
        assert_eq!(credential.per_address.burst, 3);
        assert_eq!(
            credential.per_address.per_minute,
            RateLimitConfig::default().credential.per_address.per_minute
        );
        assert!(!credential.fail_open);
        assert_eq!(config.rate_limit.trusted_networks().len(), 2);

        let error = load_in(jail, "[rate_limit]\ntrusted_proxies = [\"10.0.0.0/33\"]\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("rate_limit.trusted_proxies"), "{error}");
        let error = load_in(jail, "[rate_limit]\nbackend = \"redis\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("rate_limit.redis_url"), "{error}");
        let error = load_in(jail, "[rate_limit.read.per_address]\nbrust = 3\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("brust"), "{error}");
        Ok(())
    });
}

#[test]
fn smtp_settings_load_and_plain_text_is_refused_off_loopback() {
    Jail::expect_with(|jail| {
        jail.set_env("GARDIEN_MAIL__SMTP__PASSWORD", "s3cret");
        let config = load_in(
            jail,
            "[mail]\ntransport = \"smtp\"\nmax_attempts = 5\n[mail.smtp]\nhost = \"smtp.example.com\"\ntls = \"implicit\"\nusername = \"gardien\"\n",
        )
        .expect("loads");
        assert_eq!(config.mail.transport, MailTransportKind::Smtp);
        assert_eq!(config.mail.max_attempts, 5);
        assert_eq!(config.mail.smtp.effective_port(), 465);
        assert!(!format!("{:?}", config.mail.smtp).contains("s3cret"));

        let error = load_in(
            jail,
            "[mail]\ntransport = \"smtp\"\n[mail.smtp]\nhost = \"smtp.example.com\"\ntls = \"none\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("mail.smtp.tls"), "{error}");
        jail.clear_env();
        let config = load_in(
            jail,
            "[mail]\ntransport = \"smtp\"\n[mail.smtp]\nhost = \"127.0.0.1\"\nport = 2525\ntls = \"none\"\n",
        )
        .expect("plain text towards loopback loads");
        assert_eq!(config.mail.smtp.effective_port(), 2525);
        let error = load_in(jail, "[mail]\nmax_attempts = 0\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("mail.max_attempts"), "{error}");
        Ok(())
    });
}

#[test]
fn sealing_keys_load_as_a_list_and_a_bad_one_is_named_by_its_place_only() {
    use base64::{engine::general_purpose::STANDARD, Engine};
    let (new, old) = (STANDARD.encode([1u8; 32]), STANDARD.encode([2u8; 32]));
    Jail::expect_with(|jail| {
        jail.set_env(
            "GARDIEN_TOTP__ENCRYPTION_KEYS",
            format!("[\"{new}\", \"{old}\"]"),
        );
        let config = Config::load(None).expect("loads");
        let keys: Vec<_> = config
            .totp
            .encryption_keys
            .iter()
            .map(|k| k.expose_secret().to_string())
            .collect();
        assert_eq!(keys, [new.clone(), old.clone()]);
        assert!(!format!("{config:?}").contains(&new));

        let short = STANDARD.encode([3u8; 16]);
        for (keys, named) in [
            (
                format!("[\"{new}\", \"{short}\"]"),
                "totp.encryption_keys[1]",
            ),
            (format!("[\"{new}\", \"{new}\"]"), "totp.encryption_keys"),
        ] {
            jail.set_env("GARDIEN_TOTP__ENCRYPTION_KEYS", keys);
            let error = Config::load(None).unwrap_err().to_string();
            assert!(error.contains(named), "{error}");
            assert!(!error.contains(&new) && !error.contains(&short), "{error}");
        }

        jail.set_env("GARDIEN_TOTP__ENCRYPTION_KEYS", format!("[\"{new}\"]"));
        jail.set_env("GARDIEN_TOTP__ENCRYPTION_KEY", &old);
        let error = Config::load(None).unwrap_err().to_string();
        assert!(error.contains("not both"), "{error}");
        jail.clear_env();
        let error = load_in(jail, "[key_rotation]\nbatch_size = 0\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("key_rotation.batch_size"), "{error}");
        Ok(())
    });
}

/// The log filter has one variable, `GARDIEN_LOG`, over `log_level` from
/// the file; it was read by the logging code but left out by this loader
/// as a variable that "sets no configuration key".
#[test]
fn gardien_log_sets_the_log_filter_over_the_file() {
    Jail::expect_with(|jail| {
        jail.set_env("GARDIEN_LOG", "gardien=debug,info");
        let config = load_in(jail, "log_level = \"warn\"\n").expect("loads");
        assert_eq!(config.log_level, "gardien=debug,info");
        assert!(config.ignored_env.is_empty(), "{:?}", config.ignored_env);
        Ok(())
    });
}

/// A second name for the same setting is refused, pointing at the one.
#[test]
fn gardien_log_level_is_refused_naming_gardien_log() {
    Jail::expect_with(|jail| {
        jail.set_env("GARDIEN_LOG_LEVEL", "debug");
        let error = Config::load(None).unwrap_err().to_string();
        assert!(
            error.contains("GARDIEN_LOG_LEVEL") && error.contains("GARDIEN_LOG "),
            "{error}"
        );
        Ok(())
    });
}

#[test]
fn a_log_filter_is_refused_unless_every_directive_names_a_level() {
    use super::validate::check_log_filter;
    for good in [
        "info",
        "WARN",
        "gardien=debug,info",
        "warn,sqlx=off",
        "gardien::mail=trace",
        "info,",
    ] {
        assert_eq!(check_log_filter(good), Ok(()), "{good}");
    }
    for bad in ["", "loud", "gardien", "gardien=loud,info", "info,verbose"] {
        assert!(check_log_filter(bad).is_err(), "{bad:?} passed");
    }
    Jail::expect_with(|jail| {
        let error = load_in(jail, "log_level = \"loud\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`log_level`") && error.contains("loud"),
            "{error}"
        );
        jail.set_env("GARDIEN_LOG", "verbose");
        let error = Config::load(None).unwrap_err().to_string();
        assert!(error.contains("GARDIEN_LOG"), "{error}");
        Ok(())
    });
}

#[test]
fn an_unknown_postgres_parameter_is_refused_by_its_key_never_its_value() {
    let config = |url: &str| Config {
        database_url: Some(SecretString::from(url.to_string())),
        ..Config::default()
    };
    let refused = config("postgres://db/gardien?user=app&pasword=S3CRtypo")
        .validate()
        .unwrap_err()
        .to_string();
    assert!(refused.contains("\"pasword\""), "{refused}");
    assert!(!refused.contains("S3CRtypo"), "{refused}");
    // A key that could itself be a secret is not shown.
    let refused = config("postgres://db/gardien?S3CR%20typo=1")
        .validate()
        .unwrap_err()
        .to_string();
    assert!(!refused.contains("S3CR"), "{refused}");
    for good in [
        "postgres://db/gardien?sslmode=require&application_name=gardien",
        "postgresql://app:pw@db:5432/gardien",
        "sqlite://gardien.db?mode=rwc",
    ] {
        config(good).validate().unwrap();
    }
}
