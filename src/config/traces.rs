//! `[traces]`: OpenTelemetry spans of every RPC and of its database work,
//! exported over OTLP/gRPC when an endpoint is set.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TracesConfig {
    /// The OTLP/gRPC endpoint of a collector (`http://collector:4317`, or
    /// `https://…`); no span is exported while it is unset.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans.
    pub service_name: String,
    /// Share of the traces started here that are kept, 0 to 1; a call that
    /// comes with a W3C `traceparent` follows its caller's decision.
    pub sample_ratio: f64,
}

impl Default for TracesConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "gardien".into(),
            sample_ratio: 1.0,
        }
    }
}

impl TracesConfig {
    pub(super) fn check(&self) -> Result<(), (&'static str, &'static str)> {
        if let Some(endpoint) = &self.otlp_endpoint {
            if endpoint.contains('@') {
                return Err((
                    "traces.otlp_endpoint",
                    "must not hold credentials (user@host); they would be shown by \
                     check-config and logged",
                ));
            }
            // '%': an IPv6 zone, which the exporter cannot reach.
            let valid = !endpoint.contains(|c: char| c.is_whitespace() || c == '#' || c == '%')
                && endpoint.parse::<http::Uri>().is_ok_and(|uri| {
                    // The port, when given, is a number of 1 to 65535 (the
                    // parser keeps any digits).
                    let port_ok = uri
                        .authority()
                        .is_some_and(|authority| port_in_range(authority.as_str()));
                    matches!(uri.scheme_str(), Some("http" | "https"))
                        && uri.host().is_some_and(|host| !host.is_empty())
                        && port_ok
                        && uri.path_and_query().is_none_or(|p| p.as_str() == "/")
                });
            if !valid {
                return Err((
                    "traces.otlp_endpoint",
                    "must be an http:// or https:// address with a host, an optional port \
                     and no path, e.g. http://collector:4317",
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err(("traces.sample_ratio", "must be between 0 and 1"));
        }
        if self.service_name.trim().is_empty() || self.service_name.len() > 128 {
            return Err(("traces.service_name", "must have 1 to 128 characters"));
        }
        Ok(())
    }
}

/// Whether the port of `authority` (`host`, `host:port`, `[v6]:port`), if
/// it has one, is 1 to 65535.
fn port_in_range(authority: &str) -> bool {
    let after_host = match authority.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map_or("", |(_, after)| after),
        None => authority.rsplit_once(':').map_or("", |(_, port)| port),
    };
    let port = after_host.strip_prefix(':').unwrap_or(after_host);
    port.is_empty()
        || (port.bytes().all(|b| b.is_ascii_digit())
            && !port.starts_with('0')
            && port.parse::<u16>().is_ok_and(|port| port > 0))
}
