//! Microsoft Graph subscription upkeep: the APIs it calls and whether this replica runs it.

use super::layers::{var_name, Layers};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphSettings {
    /// Base URL of the Microsoft Graph API, without a trailing slash (paths are appended
    /// as `{endpoint}/subscriptions`).
    pub endpoint: String,
    /// Base URL of the Microsoft identity platform the upkeep gets its tokens from,
    /// without a trailing slash.
    pub login_endpoint: String,
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
        GraphSettings { endpoint: endpoint("graph_endpoint"), login_endpoint: endpoint("microsoft_login_endpoint"), upkeep }
    }
}
