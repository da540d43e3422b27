//! A publisher's JSON Web Key Set (JWKS) of RS256 signing keys, and where pushgate gets
//! it: the one key cache behind Google's OIDC keys (`sources::gcp_pubsub::keys`)
//! and Microsoft's identity platform keys (`sources::ms_graph::keys`). What
//! differs between publishers (the setting's name, the default URL, the reason codes, the
//! accepted key sizes) is a [`Publisher`] descriptor; the behaviour is the same.
//!
//! The set comes from the publisher's setting: an `https://` URL (by default the
//! publisher's [`Publisher::default_url`]) or the path of a local file, holding a JWKS
//! (`{"keys": [{"kid", "kty": "RSA", "alg": "RS256", "n", "e", ...}]}`). Only RSA keys
//! with a `kid` are kept (and, when a key names them, `alg` RS256 and `use` sig), with a
//! modulus in [`Publisher::modulus_bits`]: both publishers sign with RS256.
//!
//! [`KeySet::key`] answers from memory. The set is loaded again, in the request that
//! needs it (nothing runs in the background):
//!
//! - when it is older than the `Cache-Control: max-age` the publisher sent with it (less
//!   its `Age`, at most [`MAX_MAX_AGE`]; [`DEFAULT_MAX_AGE`] without one, and for a file);
//! - when a token names a `kid` the set lacks, since publishers publish a new key before
//!   they sign with it.
//!
//! At most one load runs at a time, and a load starts at most once per
//! [`RELOAD_INTERVAL`], so tokens naming invented `kid`s cannot make pushgate hammer the
//! publisher (or the disk); in between, an unknown `kid` is refused as unauthenticated.
//! A load that fails keeps the keys already held, so an outage does not stop tokens
//! signed with known keys. Without keys, a failed load is [`RejectClass::Unavailable`]
//! (the sender redelivers later), and so is an unknown `kid` while the last load failed:
//! the key may be one the publisher has just published.
//!
//! A fetch uses [`crate::outbound::https_client`] (https only, the public web PKI, no
//! redirects) with [`FETCH_TIMEOUT`] for connect and for the whole exchange, reads at
//! most [`MAX_JWKS_BYTES`], and takes only a 200. Every failure to get a usable key set
//! is unavailable, whatever its cause: the key source is the operator's setting, so
//! nothing about the push itself is wrong.
//!
//! One file: the cache, its reload rules and its fetch are one state machine; its tests are
//! in `jwks/tests.rs`.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::PublicKeyComponents;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::DecodingKey;
use tokio::io::AsyncReadExt;

use super::Rejected;
use crate::outbound::{FetchError, Fetcher, TestTransport};

/// Connect timeout, and timeout of the whole fetch, body included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest key set read; Google's is about 2 KiB, Microsoft's (with certificates) 10 KiB.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

/// How long a key set is used before it is loaded again, when its answer had no
/// `Cache-Control: max-age` (and for a file).
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(60 * 60);

/// Longest `max-age` believed, so a key its publisher withdraws is dropped within a day.
pub const MAX_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// Least time between the starts of two loads.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(60);

/// Who publishes a key set, and how pushgate names it in settings, details and reason
/// codes.
#[derive(Debug)]
pub struct Publisher {
    /// The publisher in details and logs: "Google".
    pub name: &'static str,
    /// The setting that names the key source: "PUSHGATE_GOOGLE_JWKS".
    pub setting: &'static str,
    /// Where the publisher serves its keys (named in the offline refusal).
    pub default_url: &'static str,
    /// Reason code when no usable key set can be had.
    pub unavailable: &'static str,
    /// Reason code offline (`pushgate verify`), where keys are never fetched.
    pub unavailable_offline: &'static str,
    /// Reason code of a `kid` the loaded set lacks.
    pub unknown_key: &'static str,
    /// RSA modulus sizes accepted; other keys are skipped.
    pub modulus_bits: RangeInclusive<usize>,
}

impl Publisher {
    fn unavailable(&self, detail: impl Into<String>) -> Rejected {
        Rejected::unavailable(self.unavailable, detail)
    }
}

/// Marks the publisher of a [`KeySet`], so each publisher's set is a type of its own
/// and one cannot be passed where the other is expected.
pub trait Published: Send + Sync + 'static {
    const PUBLISHER: &'static Publisher;
}

/// A setting that names no usable key source; it reads `SETTING: why`.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {detail}")]
pub struct KeysError {
    setting: &'static str,
    detail: String,
}

/// A publisher's signing keys by `kid`: cached, loaded from a URL or a file.
pub struct KeySet<P: Published> {
    // Shared with the load task, which runs on its own so that a request dropped
    // mid-load (a closed connection, a timeout) cannot cancel it.
    source: Arc<Source>,
    state: Arc<Mutex<State>>,
    /// One load at a time; callers that waited for it use its result.
    loading: Arc<tokio::sync::Mutex<()>>,
    /// [`RELOAD_INTERVAL`], shorter in tests.
    reload_interval: Duration,
    publisher: PhantomData<fn() -> P>,
}

enum Source {
    Url {
        url: url::Url,
        fetcher: Fetcher,
    },
    File(PathBuf),
    /// `pushgate verify` with a URL setting: it never fetches, so it has no keys.
    Offline,
}

#[derive(Default)]
struct State {
    keys: Option<Arc<Loaded>>,
    /// Loads started so far: a caller that waited for the load lock sees whether
    /// another caller loaded meanwhile.
    loads: u64,
    last_load: Option<Instant>,
    /// Why the latest load failed; `None` once one succeeds.
    last_failure: Option<Rejected>,
}

/// One load's keys.
struct Loaded {
    by_kid: HashMap<String, Arc<DecodingKey>>,
    loaded_at: Instant,
    max_age: Duration,
}

impl Loaded {
    fn is_stale(&self) -> bool {
        self.loaded_at.elapsed() >= self.max_age
    }
}

impl<P: Published> std::fmt::Debug for KeySet<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet").field("publisher", &P::PUBLISHER.name).field("source", &self.source.describe()).finish_non_exhaustive()
    }
}

/// A lock that a panic elsewhere cannot make unusable: the state stays consistent
/// between statements.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<P: Published> KeySet<P> {
    /// Keys from an `https://` URL (fetched) or, for anything without a scheme, a file path.
    pub fn from_setting(setting: &str) -> Result<KeySet<P>, KeysError> {
        let error = |detail: String| KeysError { setting: P::PUBLISHER.setting, detail };
        if setting.is_empty() {
            return Err(error("is empty; name an https:// URL or a JWKS file".into()));
        }
        let source = match setting.split_once("://") {
            None => Source::File(PathBuf::from(setting)),
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => {
                let url = url::Url::parse(setting).map_err(|e| error(format!("`{setting}` is not a URL: {e}")))?;
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(error(format!("`{setting}` names no host")));
                }
                let fetcher = Fetcher::new(FETCH_TIMEOUT).map_err(|e| error(format!("cannot build the HTTPS client: {e}")))?;
                Source::Url { url, fetcher }
            }
            Some(_) => {
                return Err(error(format!(
                    "`{setting}` is not an https:// URL; keys are only fetched over https (a local file is named by its path)"
                )))
            }
        };
        Ok(KeySet::with_source(source))
    }

    /// Keys that never come from the network, for `pushgate verify`: from `file`, or
    /// none at all (every token is then refused with the publisher's
    /// [`Publisher::unavailable_offline`]).
    pub fn offline(file: Option<PathBuf>) -> KeySet<P> {
        KeySet::with_source(file.map_or(Source::Offline, Source::File))
    }

    /// [`KeySet::offline`] for the publisher's setting: its file, or no keys when it is
    /// a URL.
    pub fn offline_from_setting(setting: &str) -> KeySet<P> {
        let is_file = !setting.is_empty() && !setting.contains("://");
        KeySet::offline(is_file.then(|| PathBuf::from(setting)))
    }

    fn with_source(source: Source) -> KeySet<P> {
        KeySet {
            source: Arc::new(source),
            state: Arc::default(),
            loading: Arc::default(),
            reload_interval: RELOAD_INTERVAL,
            publisher: PhantomData,
        }
    }

    /// Sends fetches for `resolve.0` to `resolve.1` and trusts `extra_root_der` as well
    /// as the public roots, so tests can serve keys from 127.0.0.1. No effect on keys
    /// from a file.
    #[doc(hidden)]
    pub fn with_test_transport(self, resolve: (&str, SocketAddr), extra_root_der: Vec<u8>) -> Result<KeySet<P>, KeysError> {
        let test = TestTransport { host: resolve.0.to_string(), addr: resolve.1, root_der: extra_root_der };
        self.refetch(|fetcher| fetcher.with_test_transport(test))
    }

    /// Replaces [`FETCH_TIMEOUT`], so tests of a slow server stay short.
    #[doc(hidden)]
    pub fn with_fetch_timeout(self, timeout: Duration) -> Result<KeySet<P>, KeysError> {
        self.refetch(|fetcher| fetcher.with_timeout(timeout))
    }

    fn refetch(mut self, change: impl FnOnce(&Fetcher) -> Result<Fetcher, String>) -> Result<KeySet<P>, KeysError> {
        if let Source::Url { url, fetcher } = self.source.as_ref() {
            let fetcher = change(fetcher)
                .map_err(|e| KeysError { setting: P::PUBLISHER.setting, detail: format!("cannot build the HTTPS client: {e}") })?;
            self.source = Arc::new(Source::Url { url: url.clone(), fetcher });
        }
        Ok(self)
    }

    /// The key with id `kid`, loading the key set first when it is missing, stale or
    /// lacks `kid` (within the reload limit).
    pub async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, Rejected> {
        let publisher = P::PUBLISHER;
        if let Source::Offline = self.source.as_ref() {
            return Err(Rejected::unavailable(
                publisher.unavailable_offline,
                format!(
                    "{}'s signing keys are not fetched offline: set {} to a JWKS file \
                     (a copy of what {} served when the push was sent)",
                    publisher.name, publisher.setting, publisher.default_url
                ),
            ));
        }
        let (has_key, needs_load, may_load, loads) = {
            let state = lock(&self.state);
            let has_key = state.keys.as_ref().is_some_and(|keys| keys.by_kid.contains_key(kid));
            let needs_load = !has_key || state.keys.as_ref().is_some_and(|keys| keys.is_stale());
            let may_load = state.last_load.is_none_or(|at| at.elapsed() >= self.reload_interval);
            (has_key, needs_load, may_load, state.loads)
        };
        if needs_load && may_load {
            self.load_unless_done(loads).await;
        } else if !has_key {
            // A load may be under way (started within the interval): its result decides.
            drop(self.loading.lock().await);
        }
        self.lookup(kid)
    }

    /// Loads the key set, unless a load started since the caller saw `seen` loads. The
    /// load runs as a task of its own: dropping the caller leaves it running, so a flood
    /// of abandoned requests cannot keep the keys from ever loading.
    async fn load_unless_done(&self, seen: u64) {
        let (source, state, loading) = (self.source.clone(), self.state.clone(), self.loading.clone());
        let _ = tokio::spawn(async move { load(P::PUBLISHER, &source, &state, &loading, seen).await }).await;
    }

    fn lookup(&self, kid: &str) -> Result<Arc<DecodingKey>, Rejected> {
        let publisher = P::PUBLISHER;
        let state = lock(&self.state);
        let Some(keys) = &state.keys else {
            return Err(state.last_failure.clone().unwrap_or_else(|| {
                // The only load so far was abandoned by its request (a timeout or a
                // closed connection) before it finished.
                publisher.unavailable(format!("{}'s signing keys from {} are not loaded yet", publisher.name, self.source.describe()))
            }));
        };
        if let Some(key) = keys.by_kid.get(kid) {
            return Ok(key.clone());
        }
        match &state.last_failure {
            Some(failure) => Err(publisher.unavailable(format!(
                "no known {} signing key has kid {kid:?}, and the keys cannot be loaded again: {}",
                publisher.name, failure.detail
            ))),
            None => Err(Rejected::unauthenticated(
                publisher.unknown_key,
                format!(
                    "no {} signing key has kid {kid:?} (keys from {}, loaded {} s ago)",
                    publisher.name,
                    self.source.describe(),
                    keys.loaded_at.elapsed().as_secs()
                ),
            )),
        }
    }
}

/// The body of [`KeySet::load_unless_done`]'s task.
async fn load(publisher: &Publisher, source: &Source, state: &Mutex<State>, loading: &tokio::sync::Mutex<()>, seen: u64) {
    let _one_at_a_time = loading.lock().await;
    {
        let mut state = lock(state);
        if state.loads != seen {
            return;
        }
        state.loads += 1;
        state.last_load = Some(Instant::now());
    }
    let loaded = source.load(publisher).await;
    let mut state = lock(state);
    match loaded {
        Ok(keys) => {
            state.keys = Some(Arc::new(keys));
            state.last_failure = None;
        }
        Err(failure) => {
            // While older keys are served, this log is the only sign of the failure.
            tracing::warn!(source = %source.describe(), detail = %failure.detail, "{} signing keys could not be loaded", publisher.name);
            state.last_failure = Some(failure);
        }
    }
}

impl Source {
    fn describe(&self) -> String {
        match self {
            Source::Url { url, .. } => url.to_string(),
            Source::File(path) => path.display().to_string(),
            Source::Offline => "nowhere (offline)".into(),
        }
    }

    async fn load(&self, publisher: &Publisher) -> Result<Loaded, Rejected> {
        let (body, max_age) = match self {
            Source::Url { url, fetcher } => fetch_key_set(publisher, fetcher, url).await?,
            Source::File(path) => (read_file(publisher, path).await?, None),
            Source::Offline => return Err(publisher.unavailable("there is no key source offline")),
        };
        let by_kid = parse_jwks(publisher, &body, &self.describe())?;
        let max_age = max_age.unwrap_or(DEFAULT_MAX_AGE).min(MAX_MAX_AGE);
        Ok(Loaded { by_kid, loaded_at: Instant::now(), max_age })
    }
}

async fn read_file(publisher: &Publisher, path: &Path) -> Result<Vec<u8>, Rejected> {
    let name = publisher.name;
    let cannot_read = |e: std::io::Error| publisher.unavailable(format!("{name} key file {} cannot be read: {e}", path.display()));
    let file = tokio::fs::File::open(path).await.map_err(cannot_read)?;
    let mut body = Vec::new();
    file.take(MAX_JWKS_BYTES as u64 + 1).read_to_end(&mut body).await.map_err(cannot_read)?;
    if body.len() > MAX_JWKS_BYTES {
        return Err(publisher.unavailable(format!("{name} key file {} is larger than {MAX_JWKS_BYTES} bytes", path.display())));
    }
    Ok(body)
}

/// The usable keys of a JWKS by `kid` (the first of a repeated `kid` wins), or why
/// there are none. `origin` names where the JWKS came from.
fn parse_jwks(publisher: &Publisher, body: &[u8], origin: &str) -> Result<HashMap<String, Arc<DecodingKey>>, Rejected> {
    let set: JwkSet = serde_json::from_slice(body)
        .map_err(|e| publisher.unavailable(format!("{origin} is not a JWKS (a JSON object with a `keys` list): {e}")))?;
    let mut by_kid = HashMap::new();
    let mut skipped = Vec::new();
    for jwk in &set.keys {
        match rsa_signing_key(jwk, &publisher.modulus_bits) {
            Ok((kid, key)) => {
                by_kid.entry(kid).or_insert_with(|| Arc::new(key));
            }
            Err(why) => skipped.push(why),
        }
    }
    if by_kid.is_empty() {
        let why = if skipped.is_empty() { "the key list is empty".to_string() } else { skipped.join("; ") };
        return Err(publisher.unavailable(format!("{origin} holds no usable RSA signing key: {why}")));
    }
    Ok(by_kid)
}

/// A JWK as an RS256 verification key with its `kid`, or why it is not one.
fn rsa_signing_key(jwk: &Jwk, modulus_bits: &RangeInclusive<usize>) -> Result<(String, DecodingKey), String> {
    let kid = jwk.common.key_id.as_deref().filter(|kid| !kid.is_empty()).ok_or("a key has no kid")?;
    let AlgorithmParameters::RSA(rsa) = &jwk.algorithm else {
        return Err(format!("key {kid:?} is not an RSA key"));
    };
    if let Some(alg) = jwk.common.key_algorithm.filter(|alg| *alg != KeyAlgorithm::RS256) {
        return Err(format!("key {kid:?} is for {alg}, not RS256"));
    }
    if jwk.common.public_key_use.as_ref().is_some_and(|usage| *usage != PublicKeyUse::Signature) {
        return Err(format!("key {kid:?} is not for signatures"));
    }
    // Some publishers pad base64url; the padding carries nothing.
    let decode = |text: &str| URL_SAFE_NO_PAD.decode(text.trim_end_matches('='));
    let (Ok(n), Ok(e)) = (decode(&rsa.n), decode(&rsa.e)) else {
        return Err(format!("key {kid:?} has an n or e that is not base64url"));
    };
    let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
    if !modulus_bits.contains(&bits) {
        let (least, most) = (modulus_bits.start(), modulus_bits.end());
        return Err(format!("key {kid:?} has a {bits}-bit modulus; {least} to {most} bits are accepted"));
    }
    // A key aws-lc-rs cannot build is dropped here rather than failing every token.
    PublicKeyComponents { n: &n, e: &e }.as_der().map_err(|_| format!("key {kid:?} is not a valid RSA public key"))?;
    Ok((kid.to_string(), DecodingKey::from_rsa_raw_components(&n, &e)))
}

/// The body of a 200 answer, and how long it may be used by its `Cache-Control`. Every
/// failure is unavailable: the key source is the operator's setting, not the push.
async fn fetch_key_set(publisher: &Publisher, fetcher: &Fetcher, url: &url::Url) -> Result<(Vec<u8>, Option<Duration>), Rejected> {
    let shown = url.as_str();
    let unavailable = |detail: String| publisher.unavailable(detail);
    let fetched = fetcher.get(url.clone(), MAX_JWKS_BYTES).await.map_err(|e| match e {
        FetchError::Transport(e) => unavailable(format!("cannot fetch {shown}: {e}")),
        FetchError::TooLarge => unavailable(format!("{shown} is larger than {MAX_JWKS_BYTES} bytes")),
    })?;
    let status = fetched.status;
    if status.is_redirection() {
        return Err(unavailable(format!("{shown} answered {status}; redirects are not followed")));
    }
    if status != reqwest::StatusCode::OK {
        return Err(unavailable(format!("{shown} answered {status}")));
    }
    Ok((fetched.body, freshness(&fetched.headers)))
}

/// How much longer an answer may be used: its `Cache-Control: max-age` less its `Age`
/// (the time it already spent in a cache), or `None` without a readable `max-age`.
fn freshness(headers: &http::HeaderMap) -> Option<Duration> {
    let seconds = |text: &str| text.trim().trim_matches('"').parse::<u64>().ok();
    let max_age = headers
        .get_all(http::header::CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(|directive| {
            let (name, value) = directive.split_once('=')?;
            name.trim().eq_ignore_ascii_case("max-age").then(|| seconds(value)).flatten()
        })?;
    let age = headers.get(http::header::AGE).and_then(|v| v.to_str().ok()).and_then(seconds).unwrap_or(0);
    Some(Duration::from_secs(max_age.saturating_sub(age)))
}

#[cfg(test)]
mod tests;
