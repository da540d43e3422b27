//! Microsoft's APIs pushgate calls (Graph for the subscription upkeep, the Office 365
//! Management API for O365 subscriptions and content, the identity platform for tokens)
//! and whether this replica keeps Graph subscriptions.

use super::layers::{var_name, Layers};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphSettings {
    /// Base URL of the Microsoft Graph API, without a trailing slash (paths are appended
    /// as `{endpoint}/subscriptions`).
    pub endpoint: String,
    /// Base URL of the Microsoft identity platform the upkeep gets its tokens from,
    /// without a trailing slash.
    pub login_endpoint: String,
    /// The Office 365 Management API bases (origins: scheme, host, port) an `o365_activity`
    /// connection's `subscription.endpoint` may name. Nothing else is ever called for O365,
    /// and a content blob is fetched only from its connection's own endpoint.
    pub o365_endpoints: Vec<String>,
    /// Whether this replica creates and renews Graph subscriptions. Replicas sharing a
    /// database would each create one per connection, so only one of them should.
    pub upkeep: bool,
}

impl GraphSettings {
    pub(super) fn read(layers: &mut Layers) -> GraphSettings {
        let upkeep = layers.flag("graph_upkeep");
        let mut endpoint = |key: &str| {
            let value = layers.text(key).unwrap_or_default().trim_end_matches('/').to_owned();
            if url::Url::parse(&value).ok().is_none_or(|u| !matches!(u.scheme(), "http" | "https") || u.host().is_none()) {
                layers.error(format!("{}: `{value}` is not an http(s) URL", var_name(key)));
            }
            value
        };
        let (graph_endpoint, login_endpoint) = (endpoint("graph_endpoint"), endpoint("microsoft_login_endpoint"));
        let mut o365_endpoints = Vec::new();
        for value in layers.text("o365_endpoints").unwrap_or_default().split(',').map(str::trim).filter(|v| !v.is_empty()) {
            match origin(value) {
                Ok(origin) => o365_endpoints.push(origin),
                Err(e) => layers.error(format!("{}: `{value}` {e}", var_name("o365_endpoints"))),
            }
        }
        GraphSettings { endpoint: graph_endpoint, login_endpoint, o365_endpoints, upkeep }
    }
}

/// The origin (`scheme://host[:port]`, no trailing slash) of an http(s) URL that names
/// nothing else: no path beyond `/`, no query, fragment or user info.
pub fn origin(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text).map_err(|e| format!("is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("is not an http(s) URL".into());
    }
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() || url.fragment().is_some() || url.path() != "/" {
        return Err("must be a scheme and host only (no path, query or user info)".into());
    }
    Ok(url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::origin;

    #[test]
    fn origins_name_a_scheme_and_a_host_only() {
        assert_eq!(origin("https://manage.office.com").unwrap(), "https://manage.office.com");
        assert_eq!(origin("https://Manage.Office.com/").unwrap(), "https://manage.office.com");
        assert_eq!(origin("http://127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080");
        assert_eq!(origin("https://manage.office.com:443").unwrap(), "https://manage.office.com");
        for bad in [
            "manage.office.com",
            "ftp://manage.office.com",
            "https://manage.office.com/api",
            "https://u:p@manage.office.com",
            "https://manage.office.com?x=1",
        ] {
            assert!(origin(bad).is_err(), "{bad}");
        }
    }
}
