//! The checks of values serde cannot make, each naming its key.

use secrecy::ExposeSecret;

use super::{Config, ConfigError, MailTransportKind, SmtpTls};

impl Config {
    /// Checks the values serde cannot, naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |key: &str, why: &str| Err(ConfigError(format!("`{key}`: {why}")));
        if let Err(why) = check_log_filter(&self.log_level) {
            return fail("log_level", &why);
        }
        if let Err((key, why)) = self.tls.check(self.listen_addr) {
            return fail(key, &why);
        }
        if let Err((key, why)) = self.traces.check() {
            return fail(key, why);
        }
        if let Err((key, why)) = self.passkeys.check() {
            return fail(key, &why);
        }
        if self.max_connections == 0 {
            return fail("max_connections", "must be at least 1");
        }
        if self.max_connections_per_address == 0 {
            return fail("max_connections_per_address", "must be at least 1");
        }
        if self.connection_idle_secs == 0 || self.connection_idle_secs > 24 * 3600 {
            return fail("connection_idle_secs", "must be between 1 and 86400");
        }
        if let Some(metrics) = self.metrics_addr {
            // One port cannot be bound twice where the addresses overlap:
            // the same address, or either of them every interface.
            let (a, b) = (metrics.ip(), self.listen_addr.ip());
            if metrics.port() != 0
                && metrics.port() == self.listen_addr.port()
                && (a == b || a.is_unspecified() || b.is_unspecified())
            {
                return fail("metrics_addr", "must differ from listen_addr");
            }
        }
        if self.password.min_chars < 8 {
            return fail("password.min_chars", "must be at least 8");
        }
        if self.password.max_chars < 128 {
            return fail("password.max_chars", "must be at least 128");
        }
        if self.password.min_chars > self.password.max_chars {
            return fail("password.min_chars", "must not exceed password.max_chars");
        }
        if self.password.argon2_memory_kib < 19_456 {
            return fail("password.argon2_memory_kib", "must be at least 19456");
        }
        if self.password.argon2_iterations < 2 {
            return fail("password.argon2_iterations", "must be at least 2");
        }
        if self.password.argon2_parallelism == 0 {
            return fail("password.argon2_parallelism", "must be at least 1");
        }
        if self.background.workers == 0
            || self.background.workers >= self.database.max_connections as usize
        {
            return fail(
                "background.workers",
                "must be at least 1 and less than database.max_connections",
            );
        }
        if self.background.queue_capacity == 0 {
            return fail("background.queue_capacity", "must be at least 1");
        }
        if self.background.rescan_ms < 10 {
            return fail("background.rescan_ms", "must be at least 10");
        }
        // Ten years: far beyond any session, and far from overflowing the
        // milliseconds they are counted in.
        if self.session.absolute_ttl_secs > 10 * 365 * 24 * 3600 {
            return fail("session.absolute_ttl_secs", "must be at most ten years");
        }
        if self.totp.recent_auth_secs > 24 * 3600 {
            return fail("totp.recent_auth_secs", "must be at most a day");
        }
        if self.password.argon2_memory_kib > 4 * 1024 * 1024 {
            return fail(
                "password.argon2_memory_kib",
                "must be at most 4194304 (4 GiB)",
            );
        }
        if self.session.idle_ttl_secs == 0 || self.session.absolute_ttl_secs == 0 {
            return fail("session", "lifetimes must be positive");
        }
        if self.session.idle_ttl_secs > self.session.absolute_ttl_secs {
            return fail(
                "session.idle_ttl_secs",
                "must not exceed session.absolute_ttl_secs",
            );
        }
        if self.login.max_failures == 0 || self.login.max_failures > 100 {
            return fail("login.max_failures", "must be between 1 and 100");
        }
        if self.login.free_failures >= self.login.max_failures {
            return fail("login.free_failures", "must be below login.max_failures");
        }
        if self.reset.token_ttl_secs == 0 || self.reset.token_ttl_secs > 3600 {
            return fail("reset.token_ttl_secs", "must be between 1 and 3600");
        }
        if self.totp.issuer.trim().is_empty() || self.totp.issuer.contains(':') {
            return fail("totp.issuer", "must be non-empty and contain no ':'");
        }
        self.validate_sealing_keys()?;
        self.key_rotation.validate().map_err(ConfigError)?;
        if let Some(unknown) = self
            .information_centre
            .suspend_on_dispute
            .iter()
            .find(|kind| crate::kinds::EventKind::parse(kind).is_none())
        {
            return fail(
                "information_centre.suspend_on_dispute",
                &format!("{unknown:?} is not an event kind"),
            );
        }
        for origin in &self.cors_allowed_origins {
            if http::HeaderValue::from_str(origin).is_err()
                || !(origin.starts_with("https://") || origin.starts_with("http://"))
            {
                return fail(
                    "cors_allowed_origins",
                    &format!("{origin:?} is not an http(s) origin"),
                );
            }
        }
        if self.max_concurrent_requests == 0 {
            return fail("max_concurrent_requests", "must be at least 1");
        }
        if self.request_timeout_secs == 0 {
            return fail("request_timeout_secs", "must be at least 1");
        }
        self.rate_limit.validate().map_err(ConfigError)?;
        if let Some(url) = &self.database_url {
            let url = url.expose_secret();
            if !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
            {
                return fail(
                    "database_url",
                    "must start with sqlite:, postgres:// or postgresql://",
                );
            }
            // The driver logs a parameter it does not know with its value,
            // which could be a mistyped password: refused, named by its key.
            if !url.starts_with("sqlite:") {
                if let Some(key) = unknown_postgres_parameter(url) {
                    return Err(ConfigError(format!(
                        "`database_url`: the connection parameter {key:?} is not one the \
                         PostgreSQL driver takes (sslmode, sslrootcert, sslcert, sslkey, \
                         statement-cache-capacity, host, hostaddr, port, dbname, user, \
                         password, application_name, options)"
                    )));
                }
            }
        }
        for (key, value) in [
            ("mail.reset_url", &self.mail.reset_url),
            (
                "mail.information_centre_url",
                &self.mail.information_centre_url,
            ),
            ("mail.help_url", &self.mail.help_url),
            ("mail.report_url", &self.mail.report_url),
            ("mail.confirm_email_url", &self.mail.confirm_email_url),
            (
                "mail.factor_reset_cancel_url",
                &self.mail.factor_reset_cancel_url,
            ),
        ] {
            if !(value.starts_with("https://") || value.starts_with("http://")) {
                return fail(key, "must be an http(s) URL");
            }
        }
        if self.support.factor_reset_delay_secs == 0 {
            return fail("support.factor_reset_delay_secs", "must be at least 1");
        }
        if self.support.factor_reset_poll_ms < 10 {
            return fail("support.factor_reset_poll_ms", "must be at least 10");
        }
        if self.mail.from_name.chars().any(char::is_control) {
            return fail(
                "mail.from_name",
                "must hold no line break or control character",
            );
        }
        if self.mail.from_address.parse::<lettre::Address>().is_err() {
            return fail("mail.from_address", "must be an e-mail address");
        }
        if self.mail.max_attempts == 0 || self.mail.max_attempts > 100 {
            return fail("mail.max_attempts", "must be between 1 and 100");
        }
        // 0 would poll the database without pause.
        if !(10..=3_600_000).contains(&self.mail.poll_interval_ms) {
            return fail("mail.poll_interval_ms", "must be between 10 and 3600000");
        }
        // Checked whatever the transport: check-config prints the host, and
        // serve logs it.
        if let Some(why) = self.mail.smtp.host_problem() {
            return fail("mail.smtp.host", why);
        }
        if self.mail.transport == MailTransportKind::Smtp {
            let smtp = &self.mail.smtp;
            if smtp.host.trim().is_empty() {
                return fail("mail.smtp.host", "must not be empty");
            }
            if smtp.tls == SmtpTls::None && !smtp.host_is_loopback() {
                return fail(
                    "mail.smtp.tls",
                    "\"none\" is allowed only for a loopback host (localhost, 127.0.0.1, ::1)",
                );
            }
            if smtp.username.is_some() != smtp.password.is_some() {
                return fail("mail.smtp.username", "username and password go together");
            }
            // Six round trips at most must fit in the outbox lease (5 min).
            if smtp.timeout_secs == 0 || smtp.timeout_secs > 40 {
                return fail("mail.smtp.timeout_secs", "must be between 1 and 40");
            }
            if smtp.pool_max_size == 0 {
                return fail("mail.smtp.pool_max_size", "must be at least 1");
            }
        }
        Ok(())
    }

    /// Every configured sealing key is base64 of 32 bytes, listed once; the
    /// message names the key by its place, never by its value.
    fn validate_sealing_keys(&self) -> Result<(), ConfigError> {
        use crate::crypto::secretbox::Sealer;
        let fail = |key: String, why: String| Err(ConfigError(format!("`{key}`: {why}")));
        if self.totp.encryption_key.is_some() && !self.totp.encryption_keys.is_empty() {
            return fail(
                "totp.encryption_keys".into(),
                "set either totp.encryption_key or totp.encryption_keys, not both".into(),
            );
        }
        if let Some(key) = &self.totp.encryption_key {
            if let Err(error) = Sealer::from_base64(key.expose_secret()) {
                return fail("totp.encryption_key".into(), error.to_string());
            }
        }
        let mut keys = Vec::new();
        for (i, key) in self.totp.encryption_keys.iter().enumerate() {
            match Sealer::from_base64(key.expose_secret()) {
                Ok(sealer) => keys.push(sealer),
                Err(error) => return fail(format!("totp.encryption_keys[{i}]"), error.to_string()),
            }
        }
        if !keys.is_empty() {
            if let Err(error) = Sealer::ring(keys) {
                return fail("totp.encryption_keys".into(), error.to_string());
            }
        }
        Ok(())
    }
}

/// A tracing filter every directive of which names a level: `info`,
/// `gardien=debug,info`. tracing reads a lone word such as `loud` as a
/// target to log at every level, with nothing else logged: a typo would
/// silence the service.
pub(super) fn check_log_filter(filter: &str) -> Result<(), String> {
    use tracing_subscriber::filter::{EnvFilter, LevelFilter};
    let directives: Vec<&str> = filter
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    if directives.is_empty() {
        return Err("must name a level, e.g. \"info\"".into());
    }
    for directive in directives {
        let level = directive
            .rsplit_once('=')
            .map_or(directive, |(_, level)| level);
        if level.parse::<LevelFilter>().is_err() {
            return Err(format!(
                "{directive:?} names no level (trace, debug, info, warn, error or off; \
                 a target takes one as target=level)"
            ));
        }
    }
    EnvFilter::builder()
        .parse(filter)
        .map(drop)
        .map_err(|error| format!("{filter:?}: {error}"))
}

/// The first query parameter of a PostgreSQL URL that the driver does not
/// take (it would log it with its value), shown only when it is a plain
/// word, never its value.
fn unknown_postgres_parameter(url: &str) -> Option<String> {
    const TAKEN: &[&str] = &[
        "sslmode",
        "ssl-mode",
        "sslrootcert",
        "ssl-root-cert",
        "ssl-ca",
        "sslcert",
        "ssl-cert",
        "sslkey",
        "ssl-key",
        "statement-cache-capacity",
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "password",
        "application_name",
        "options",
    ];
    let (_, query) = url.split_once('?')?;
    let query = query.split('#').next().unwrap_or_default();
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').map_or(pair, |(key, _)| key))
        .find(|key| !TAKEN.contains(key))
        .map(|key| {
            if key.len() <= 40
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                key.to_string()
            } else {
                "(not shown)".to_string()
            }
        })
}
