//! The HTTP client for pushgate's few outbound requests (SNS signing certificates, SNS
//! SubscribeURLs). Callers check every URL against their allow-list before a request;
//! this client adds what all of them need: https only, the public web PKI (bundled
//! roots, so a slim container needs no CA store), TLS by aws-lc-rs, no redirects (a
//! redirect could lead off the allow-listed host), and timeouts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A way to reach a name at a local address with an extra trusted root: tests serve an
/// allow-listed host (`sns.us-east-1.amazonaws.com`) from 127.0.0.1.
#[derive(Clone)]
pub struct TestTransport {
    pub host: String,
    pub addr: SocketAddr,
    pub root_der: Vec<u8>,
}

/// The client, or an error when TLS cannot be set up (no usable root certificate).
pub fn https_client(timeout: Duration, test: Option<&TestTransport>) -> Result<reqwest::Client, String> {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(t) = test {
        roots.add(rustls::pki_types::CertificateDer::from(t.root_der.clone())).map_err(|e| e.to_string())?;
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut builder = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .https_only(true)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout)
        .timeout(timeout)
        .user_agent(concat!("pushgate/", env!("CARGO_PKG_VERSION")));
    if let Some(t) = test {
        // A test server on 127.0.0.1 must not be reached through a proxy from the environment.
        builder = builder.resolve(&t.host, t.addr).no_proxy();
    }
    builder.build().map_err(|e| e.to_string())
}

/// A request error of a client from [`https_client`] in words: the innermost cause says
/// what happened (reqwest's own message only says that a request failed).
pub fn describe_error(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!("no answer within {} ms", timeout.as_millis());
    }
    let mut cause: &dyn std::error::Error = error;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}
