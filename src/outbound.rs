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
    client(timeout, test, true)
}

/// The same client for a URL the operator configured (the alert webhook), which may be
/// plain http on an internal network.
pub fn operator_client(timeout: Duration) -> Result<reqwest::Client, String> {
    client(timeout, None, false)
}

fn client(timeout: Duration, test: Option<&TestTransport>, https_only: bool) -> Result<reqwest::Client, String> {
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
        .https_only(https_only)
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

/// A fetcher of small documents (a certificate, a key set) from allow-listed https URLs:
/// the client above, its settings, and a size-capped read. Callers decide what a status
/// means for them.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    timeout: Duration,
    test: Option<TestTransport>,
}

/// A fetched answer: its status and headers, and its body when the status was 200.
pub struct Fetched {
    pub status: reqwest::StatusCode,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

/// Why nothing usable was fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// No answer: connect error, TLS failure, timeout, a body cut short (the detail says which).
    Transport(String),
    /// A 200 whose body is over the caller's limit.
    TooLarge,
}

impl Fetcher {
    pub fn new(timeout: Duration) -> Result<Fetcher, String> {
        Ok(Fetcher { client: https_client(timeout, None)?, timeout, test: None })
    }

    /// The same fetcher with another timeout (tests of slow servers).
    pub fn with_timeout(&self, timeout: Duration) -> Result<Fetcher, String> {
        Ok(Fetcher { client: https_client(timeout, self.test.as_ref())?, timeout, test: self.test.clone() })
    }

    /// The same fetcher reaching `test.host` at a local address.
    pub fn with_test_transport(&self, test: TestTransport) -> Result<Fetcher, String> {
        Ok(Fetcher { client: https_client(self.timeout, Some(&test))?, timeout: self.timeout, test: Some(test) })
    }

    /// GETs `url`, reading at most `max_bytes` of a 200 answer's body.
    pub async fn get(&self, url: url::Url, max_bytes: usize) -> Result<Fetched, FetchError> {
        let mut response = self.client.get(url).send().await.map_err(|e| FetchError::Transport(describe_error(&e, self.timeout)))?;
        let (status, headers) = (response.status(), response.headers().clone());
        let mut body = Vec::new();
        if status != reqwest::StatusCode::OK {
            return Ok(Fetched { status, headers, body });
        }
        if response.content_length().is_some_and(|len| len > max_bytes as u64) {
            return Err(FetchError::TooLarge);
        }
        while let Some(chunk) = response.chunk().await.map_err(|e| FetchError::Transport(describe_error(&e, self.timeout)))? {
            if body.len() + chunk.len() > max_bytes {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched { status, headers, body })
    }
}
