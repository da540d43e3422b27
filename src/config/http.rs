//! The HTTP side of a server: the address it binds, the base URL the clouds reach it at,
//! and the limits every request shares.

use std::net::SocketAddr;
use std::time::Duration;

use super::layers::Layers;

/// Server-wide limits, checked against each other at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Body limit of push routes (413 beyond).
    pub max_body_bytes: usize,
    /// Push-body bytes buffered at once across all requests, at least `max_body_bytes`;
    /// beyond it, pushes are shed.
    pub max_buffered_body_bytes: usize,
    /// Longest a request may take before it is answered 503 with `Retry-After`.
    pub request_timeout: Duration,
    /// Requests served at once; beyond it, requests are shed with 503.
    pub max_concurrent_requests: usize,
}

impl HttpLimits {
    pub(super) fn read(layers: &mut Layers) -> HttpLimits {
        let max_body_bytes = layers.number("max_body_bytes") as usize;
        let request_timeout_ms = layers.number("request_timeout_ms");
        let max_concurrent_requests = layers.number("max_concurrent_requests") as usize;
        let max_buffered_body_bytes = layers.number("max_buffered_body_bytes") as usize;
        if max_body_bytes < 1024 {
            layers.error("PUSHGATE_MAX_BODY_BYTES: must be at least 1024");
        }
        if request_timeout_ms < 100 {
            layers.error("PUSHGATE_REQUEST_TIMEOUT_MS: must be at least 100");
        }
        if max_buffered_body_bytes < max_body_bytes {
            layers.error("PUSHGATE_MAX_BUFFERED_BODY_BYTES: must be at least PUSHGATE_MAX_BODY_BYTES");
        }
        if max_concurrent_requests == 0 {
            layers.error("PUSHGATE_MAX_CONCURRENT_REQUESTS: must be at least 1");
        }
        HttpLimits {
            max_body_bytes,
            max_buffered_body_bytes,
            request_timeout: Duration::from_millis(request_timeout_ms),
            max_concurrent_requests,
        }
    }
}

/// The address to bind; `:PORT` means every interface.
pub(super) fn listen(layers: &mut Layers) -> Option<SocketAddr> {
    let text = layers.text("listen").unwrap_or_default();
    let full = if text.starts_with(':') { format!("0.0.0.0{text}") } else { text.clone() };
    let addr = full.parse().ok();
    if addr.is_none() {
        layers.error(format!("PUSHGATE_LISTEN: `{text}` is not a socket address like 127.0.0.1:8080"));
    }
    addr
}

/// The configured base URL of push routes, without a trailing slash.
pub(super) fn public_url(layers: &mut Layers) -> Option<String> {
    let url = layers.text("public_url")?.trim_end_matches('/').to_owned();
    layers.require_http_url("public_url", &url);
    Some(url)
}
