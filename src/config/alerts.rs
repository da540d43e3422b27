//! The alert webhook: where status transitions are POSTed, and the secret that signs them.

use super::layers::Layers;
use super::Secret;

/// A webhook URL with its signing secret: one without the other is refused at load.
#[derive(Clone, PartialEq, Eq)]
pub struct AlertWebhook {
    /// Often a bearer URL (the path is the credential): shown as scheme and host only.
    pub url: String,
    pub secret: Secret,
}

impl std::fmt::Debug for AlertWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertWebhook").field("url", &origin_only(&self.url)).field("secret", &self.secret).finish()
    }
}

impl AlertWebhook {
    /// The webhook, or `None` when no URL is set; a URL without its secret is reported.
    pub(super) fn read(layers: &mut Layers) -> Option<AlertWebhook> {
        let url = layers.http_url("alert_webhook_url");
        let secret = layers.text("alert_webhook_secret").map(Secret::new);
        match (url, secret) {
            (Some(url), Some(secret)) => Some(AlertWebhook { url, secret }),
            (Some(_), None) => {
                layers.error("PUSHGATE_ALERT_WEBHOOK_SECRET is required when PUSHGATE_ALERT_WEBHOOK_URL is set");
                None
            }
            (None, _) => None,
        }
    }
}

/// `scheme://host/***`: a URL without its path, query or user.
pub(super) fn origin_only(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split('/').next().unwrap_or_default();
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
            format!("{scheme}://{host}/***")
        }
        None => "***".to_owned(),
    }
}
