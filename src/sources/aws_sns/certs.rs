//! Where SNS signing certificates come from, and what pushgate keeps of one.
//!
//! [`CertStore::get`] looks in three places, in order:
//!
//! 1. an in-memory cache of certificates already loaded (at most [`CACHE_CAPACITY`],
//!    the oldest evicted first; an entry lasts [`CACHE_TTL`] and never past its
//!    certificate's notAfter), so the hot path neither reads files nor fetches;
//! 2. the pinned directory (`PUSHGATE_SNS_CERT_DIR`), holding copies named by the last
//!    segment of their URL;
//! 3. the URL itself, when fetching is on: https only, the aws-lc-rs TLS provider with
//!    the Mozilla roots of `webpki-roots`, no redirects, [`FETCH_TIMEOUT`] for connect
//!    and for the whole exchange, at most [`MAX_CERT_BYTES`] read.
//!
//! Concurrent misses for one URL share a single load. A fetch that fails for reasons
//! of the network (no connection, timeout, a 5xx, 408 or 429) is
//! [`RejectClass::Unavailable`], so SNS retries the delivery later; an answer that
//! cannot be a certificate (3xx, other 4xx, too large, not one PEM X.509 RSA
//! certificate) is unauthenticated. The URL must have passed
//! [`super::cert_url::SigningCertUrl::check`] before it gets here.
//!
//! One file: the certificate store's three sources (pinned, cached, fetched) share one cache and one
//! error mapping, and read best top to bottom; its tests are in `certs/tests.rs`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, RSA_PKCS1_2048_8192_SHA256};
use chrono::{DateTime, Utc};
use tokio::io::AsyncReadExt;
use tokio::sync::OnceCell;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

use super::cert_url::SigningCertUrl;
use super::envelope::SignatureVersion;
use crate::outbound::{FetchError, Fetcher, TestTransport};
use crate::sources::{RejectClass, Rejected};

/// Most certificates kept in memory. SNS signs with one certificate per region at a
/// time, so this covers every region through a rotation with room to spare.
pub const CACHE_CAPACITY: usize = 64;

/// How long a loaded certificate is trusted before it is read or fetched again, so a
/// replaced pinned file or a revoked certificate is noticed within a day.
pub const CACHE_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Connect timeout, and timeout of the whole fetch, body included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest certificate file read; a real one is about 2 KiB.
pub const MAX_CERT_BYTES: usize = 64 * 1024;

/// Fetches allowed in a burst, then per minute. A forged message from an allowed topic
/// may name any certificate file; this bounds the requests such messages cause. Past it
/// a fetch is refused as unavailable (SNS retries later); cached certificates are unaffected.
pub const FETCH_BURST: u32 = 10;
pub const FETCHES_PER_MINUTE: u32 = 30;

/// How long a certificate URL that AWS refused (404, not a certificate) is refused
/// without asking again, and how many such URLs are remembered.
pub const REFUSAL_TTL: Duration = Duration::from_secs(10 * 60);
pub const REFUSAL_CAPACITY: usize = 256;

/// What pushgate keeps of a signing certificate: its RSA key, ready to verify with
/// either SNS signature version, and its validity period.
pub struct SigningCert {
    public_key_der: Vec<u8>,
    sha1: ParsedPublicKey,
    sha256: ParsedPublicKey,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
}

impl std::fmt::Debug for SigningCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningCert")
            .field("public_key_bytes", &self.public_key_der.len())
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish()
    }
}

fn invalid_cert(detail: impl Into<String>) -> Rejected {
    Rejected::unauthenticated("sns_cert_invalid", detail)
}

fn unavailable(detail: impl Into<String>) -> Rejected {
    Rejected::unavailable("sns_cert_unavailable", detail)
}

impl SigningCert {
    /// Reads one PEM `CERTIFICATE` block (whitespace around it allowed, nothing else)
    /// holding an X.509 certificate with an RSA key of 2048 to 8192 bits.
    pub fn from_pem(pem: &[u8]) -> Result<SigningCert, Rejected> {
        let text = std::str::from_utf8(pem).map_err(|_| invalid_cert("certificate file is not text"))?;
        // The PEM reader skips any lines before a block; SNS serves nothing but the
        // block, so anything else means this is not what SNS serves.
        if !text.trim_start().starts_with("-----BEGIN CERTIFICATE-----") {
            return Err(invalid_cert("certificate file does not start with a PEM CERTIFICATE block"));
        }
        let (rest, block) = x509_parser::pem::parse_x509_pem(text.trim_start().as_bytes())
            .map_err(|e| invalid_cert(format!("certificate file is not valid PEM: {e}")))?;
        if block.label != "CERTIFICATE" || !rest.iter().all(u8::is_ascii_whitespace) {
            return Err(invalid_cert("certificate file holds more than one PEM CERTIFICATE block"));
        }
        let (rest, cert) =
            X509Certificate::from_der(&block.contents).map_err(|e| invalid_cert(format!("certificate is not X.509: {e}")))?;
        if !rest.is_empty() {
            return Err(invalid_cert("certificate has bytes after its end"));
        }
        let spki = cert.public_key();
        if !matches!(spki.parsed(), Ok(PublicKey::RSA(_))) {
            return Err(invalid_cert("certificate key is not RSA"));
        }
        // An X.509 RSA key is a PKCS#1 RSAPublicKey, the form aws-lc-rs reads.
        let public_key_der = spki.subject_public_key.data.to_vec();
        let parse = |algorithm| {
            ParsedPublicKey::new(algorithm, &public_key_der).map_err(|e| invalid_cert(format!("certificate RSA key is unusable: {e}")))
        };
        let sha1 = parse(&RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY)?;
        let sha256 = parse(&RSA_PKCS1_2048_8192_SHA256)?;
        let time = |t: x509_parser::time::ASN1Time| {
            DateTime::from_timestamp(t.timestamp(), 0).ok_or_else(|| invalid_cert("certificate validity is out of range"))
        };
        let not_before = time(cert.validity().not_before)?;
        let not_after = time(cert.validity().not_after)?;
        if not_before > not_after {
            return Err(invalid_cert(format!("certificate validity is empty: notBefore {not_before} is after notAfter {not_after}")));
        }
        Ok(SigningCert { public_key_der, sha1, sha256, not_before, not_after })
    }

    /// The RSA public key, PKCS#1 `RSAPublicKey` DER.
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_key_der
    }

    pub fn not_before(&self) -> DateTime<Utc> {
        self.not_before
    }

    pub fn not_after(&self) -> DateTime<Utc> {
        self.not_after
    }

    /// Whether `at` lies within the validity period, ends included.
    pub fn valid_at(&self, at: DateTime<Utc>) -> bool {
        self.not_before <= at && at <= self.not_after
    }

    /// The key, parsed once, for the algorithm of a signature version.
    pub(super) fn verifier(&self, version: SignatureVersion) -> &ParsedPublicKey {
        match version {
            SignatureVersion::Sha1 => &self.sha1,
            SignatureVersion::Sha256 => &self.sha256,
        }
    }
}

/// A failure to build the HTTPS client of a fetching [`CertStore`].
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTPS client for SNS certificates: {0}")]
pub struct CertStoreError(String);

type Loaded = Result<Arc<SigningCert>, Rejected>;

/// Signing certificates by URL: cache, then pinned directory, then (optionally) fetch.
pub struct CertStore {
    pinned_dir: Option<PathBuf>,
    fetcher: Option<Fetcher>,
    cache: Mutex<HashMap<String, Cached>>,
    /// One load per URL at a time: later callers await the first one's result.
    loading: Mutex<HashMap<String, Arc<OnceCell<Loaded>>>>,
    /// URLs whose fetch was refused for good, with when: not fetched again for a while.
    refused: Mutex<HashMap<String, (Instant, Rejected)>>,
    fetch_limit: governor::DefaultDirectRateLimiter,
    /// [`CACHE_TTL`], shorter in tests.
    ttl: Duration,
}

struct Cached {
    cert: Arc<SigningCert>,
    loaded_at: Instant,
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertStore").field("pinned_dir", &self.pinned_dir).field("fetch", &self.fetcher.is_some()).finish_non_exhaustive()
    }
}

/// A lock that a panic elsewhere cannot make unusable: the maps stay consistent
/// between statements, so their contents are still right.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl CertStore {
    /// A store reading `pinned_dir` first and, with `fetch`, fetching what is not pinned.
    pub fn new(pinned_dir: Option<PathBuf>, fetch: bool) -> Result<CertStore, CertStoreError> {
        let fetcher = if fetch { Some(Fetcher::new(FETCH_TIMEOUT).map_err(CertStoreError)?) } else { None };
        Ok(CertStore::with_fetcher(pinned_dir, fetcher))
    }

    /// A store that never touches the network: certificates only from `pinned_dir`
    /// (what `pushgate verify` uses).
    pub fn offline(pinned_dir: Option<PathBuf>) -> CertStore {
        CertStore::with_fetcher(pinned_dir, None)
    }

    fn with_fetcher(pinned_dir: Option<PathBuf>, fetcher: Option<Fetcher>) -> CertStore {
        let quota = governor::Quota::per_minute(std::num::NonZeroU32::new(FETCHES_PER_MINUTE).expect("non-zero"))
            .allow_burst(std::num::NonZeroU32::new(FETCH_BURST).expect("non-zero"));
        CertStore {
            pinned_dir,
            fetcher,
            cache: Mutex::new(HashMap::new()),
            loading: Mutex::new(HashMap::new()),
            refused: Mutex::new(HashMap::new()),
            fetch_limit: governor::RateLimiter::direct(quota),
            ttl: CACHE_TTL,
        }
    }

    /// Sends fetches for `resolve.0` to `resolve.1` and trusts `extra_root_der` as well
    /// as the public roots, so tests can serve certificates from 127.0.0.1. No effect
    /// on a store that does not fetch.
    #[doc(hidden)]
    pub fn with_test_transport(self, resolve: (&str, SocketAddr), extra_root_der: Vec<u8>) -> Result<CertStore, CertStoreError> {
        let test = TestTransport { host: resolve.0.to_string(), addr: resolve.1, root_der: extra_root_der };
        self.refetch(|fetcher| fetcher.with_test_transport(test))
    }

    /// Replaces [`FETCH_TIMEOUT`], so tests of a slow server stay short.
    #[doc(hidden)]
    pub fn with_fetch_timeout(self, timeout: Duration) -> Result<CertStore, CertStoreError> {
        self.refetch(|fetcher| fetcher.with_timeout(timeout))
    }

    fn refetch(mut self, change: impl FnOnce(&Fetcher) -> Result<Fetcher, String>) -> Result<CertStore, CertStoreError> {
        if let Some(fetcher) = &self.fetcher {
            self.fetcher = Some(change(fetcher).map_err(CertStoreError)?);
        }
        Ok(self)
    }

    /// The certificate at `url`. `now` is the clock of the check: a cached certificate
    /// past its notAfter by that clock is loaded again rather than served.
    pub async fn get(&self, url: &SigningCertUrl, now: DateTime<Utc>) -> Result<Arc<SigningCert>, Rejected> {
        let key = url.as_str();
        if let Some(cert) = self.cached(key, now) {
            return Ok(cert);
        }
        let cell = lock(&self.loading).entry(key.to_string()).or_default().clone();
        let loaded = cell
            .get_or_init(|| async {
                // A load that finished between the lookup above and taking the cell
                // has filled the cache: no second fetch.
                match self.cached(key, now) {
                    Some(cert) => Ok(cert),
                    None => self.load(url, now).await,
                }
            })
            .await
            .clone();
        let mut loading = lock(&self.loading);
        if loading.get(key).is_some_and(|current| Arc::ptr_eq(current, &cell)) {
            loading.remove(key);
        }
        drop(loading);
        match loaded {
            // A refresh that cannot reach AWS (or is over the fetch rate) keeps serving the
            // certificate it was refreshing, while that is still valid: an outage or a flood
            // of forged fetches must not stop known-good messages.
            Err(e) if e.class == RejectClass::Unavailable => self.cached_within(key, now, Duration::MAX).ok_or(e),
            loaded => loaded,
        }
    }

    fn cached(&self, key: &str, now: DateTime<Utc>) -> Option<Arc<SigningCert>> {
        self.cached_within(key, now, self.ttl)
    }

    /// A cached certificate loaded less than `age` ago and not past its notAfter; one
    /// past its notAfter is dropped.
    fn cached_within(&self, key: &str, now: DateTime<Utc>, age: Duration) -> Option<Arc<SigningCert>> {
        let mut cache = lock(&self.cache);
        let entry = cache.get(key)?;
        if now > entry.cert.not_after {
            cache.remove(key);
            return None;
        }
        (entry.loaded_at.elapsed() < age).then(|| entry.cert.clone())
    }

    fn remember(&self, key: &str, cert: &Arc<SigningCert>, now: DateTime<Utc>) {
        if now > cert.not_after {
            return;
        }
        let mut cache = lock(&self.cache);
        if cache.len() >= CACHE_CAPACITY && !cache.contains_key(key) {
            let oldest = cache.iter().min_by_key(|(_, c)| c.loaded_at).map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                cache.remove(&oldest);
            }
        }
        cache.insert(key.to_string(), Cached { cert: cert.clone(), loaded_at: Instant::now() });
    }

    async fn load(&self, url: &SigningCertUrl, now: DateTime<Utc>) -> Loaded {
        let pem = match self.read_pinned(url.file_name()).await? {
            Some(pem) => pem,
            None => match &self.fetcher {
                Some(fetcher) => self.fetch(fetcher, url).await?,
                None => return Err(self.not_pinned(url)),
            },
        };
        let cert = SigningCert::from_pem(&pem).map_err(|e| Rejected { detail: format!("{} ({})", e.detail, url.as_str()), ..e });
        let cert = Arc::new(cert.inspect_err(|e| self.remember_refusal(url.as_str(), e))?);
        self.remember(url.as_str(), &cert, now);
        Ok(cert)
    }

    /// Fetches `url` unless it was refused lately or fetches are over their rate.
    async fn fetch(&self, fetcher: &Fetcher, url: &SigningCertUrl) -> Result<Vec<u8>, Rejected> {
        let key = url.as_str();
        if let Some(refusal) = self.recent_refusal(key) {
            return Err(refusal);
        }
        if self.fetch_limit.check().is_err() {
            return Err(unavailable(format!("too many SNS certificate fetches right now; {key} is fetched on a retry")));
        }
        fetch_certificate(fetcher, url).await.inspect_err(|e| self.remember_refusal(key, e))
    }

    fn recent_refusal(&self, key: &str) -> Option<Rejected> {
        let mut refused = lock(&self.refused);
        match refused.get(key) {
            Some((at, rejected)) if at.elapsed() < REFUSAL_TTL => Some(rejected.clone()),
            Some(_) => {
                refused.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps a permanent refusal (not a network failure) of a fetched certificate.
    fn remember_refusal(&self, key: &str, rejected: &Rejected) {
        if rejected.class != RejectClass::Unauthenticated {
            return;
        }
        let mut refused = lock(&self.refused);
        if refused.len() >= REFUSAL_CAPACITY {
            refused.retain(|_, (at, _)| at.elapsed() < REFUSAL_TTL);
            if refused.len() >= REFUSAL_CAPACITY {
                let oldest = refused.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    refused.remove(&oldest);
                }
            }
        }
        refused.insert(key.to_string(), (Instant::now(), rejected.clone()));
    }

    /// The pinned copy of `file_name`, or `None` when there is none.
    async fn read_pinned(&self, file_name: &str) -> Result<Option<Vec<u8>>, Rejected> {
        let Some(dir) = &self.pinned_dir else { return Ok(None) };
        let path = dir.join(file_name);
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            // The operator's directory is unreadable: not the sender's fault, so retry later.
            Err(e) => return Err(unavailable(format!("pinned certificate {} cannot be read: {e}", path.display()))),
        };
        let mut pem = Vec::new();
        file.take(MAX_CERT_BYTES as u64 + 1)
            .read_to_end(&mut pem)
            .await
            .map_err(|e| unavailable(format!("pinned certificate {} cannot be read: {e}", path.display())))?;
        if pem.len() > MAX_CERT_BYTES {
            return Err(invalid_cert(format!("pinned certificate {} is larger than {MAX_CERT_BYTES} bytes", path.display())));
        }
        Ok(Some(pem))
    }

    fn not_pinned(&self, url: &SigningCertUrl) -> Rejected {
        let detail = match &self.pinned_dir {
            Some(dir) => format!("{} is not in the pinned certificate directory {} and fetching is off", url.file_name(), dir.display()),
            None => format!(
                "{} cannot be checked: no pinned certificate directory (PUSHGATE_SNS_CERT_DIR) and fetching is off",
                url.file_name()
            ),
        };
        Rejected::unauthenticated("sns_cert_not_pinned", detail)
    }
}

/// Fetches a certificate: 200 with a body, or a refusal saying whether a retry can help.
async fn fetch_certificate(fetcher: &Fetcher, url: &SigningCertUrl) -> Result<Vec<u8>, Rejected> {
    let shown = url.as_str();
    let fetched = fetcher.get(url.url().clone(), MAX_CERT_BYTES).await.map_err(|e| match e {
        FetchError::Transport(e) => unavailable(format!("cannot fetch {shown}: {e}")),
        FetchError::TooLarge => invalid_cert(format!("{shown} is larger than {MAX_CERT_BYTES} bytes")),
    })?;
    let status = fetched.status;
    let transient =
        status.is_server_error() || status == reqwest::StatusCode::REQUEST_TIMEOUT || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
    if transient {
        return Err(unavailable(format!("{shown} answered {status}")));
    }
    if status.is_redirection() {
        return Err(invalid_cert(format!("{shown} answered {status}; redirects are not followed")));
    }
    if status == reqwest::StatusCode::NOT_FOUND {
        return Err(invalid_cert(format!("{shown} answered {status}: there is no such certificate")));
    }
    if status != reqwest::StatusCode::OK {
        return Err(invalid_cert(format!("{shown} answered {status}")));
    }
    Ok(fetched.body)
}

#[cfg(test)]
mod tests;
