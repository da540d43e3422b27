//! The senders, one folder each, and their registry ([`SOURCES`], [`Senders`]).
//!
//! A sender ([`Source`]) provides: its [`SourceSpec`] (route segment, default stream,
//! secret fields, heartbeat, the answers its retry rules need, its config's keys, rules
//! and JSON Schema), the settings it reads from a connection's config once when the
//! connection is loaded, its check over the raw bytes (a [`Verified`] proof carrying what
//! it parsed) and its decoding of that proof into an [`Intake`] the ingest pipeline stores.
//!
//! A sender depends on `model`, `verify` and this module's shared parts (the registry
//! types, `config_check`'s shared rules, `catalog`'s schema generation); it never touches
//! the store or HTTP types beyond the `http` crate's header map.

pub mod aws_eventbridge;
pub mod aws_sns;
pub mod catalog;
pub mod config_check;
pub mod gcp_pubsub;
pub mod ms_graph;
pub mod o365_activity;
pub mod webhook;

use chrono::{DateTime, Utc};
use http::HeaderMap;
use serde_json::Value;

use crate::model::{ContentFetch, HeartbeatProof, NewEvent, ReportedChange, SourceKind, SubscriptionChange};
pub(crate) use crate::verify::header;
pub use crate::verify::{RejectClass, Rejected};

/// One push as it arrived: nothing is parsed before verification. Its `Debug` shows
/// header names and the body length only: values and body may carry credentials.
#[derive(Clone, Copy)]
pub struct RawRequest<'a> {
    pub headers: &'a HeaderMap,
    pub query: Option<&'a str>,
    pub body: &'a [u8],
    /// The URL the sender pushed to (audiences are checked against it).
    pub push_url: &'a str,
    /// The clock of this check (fixed by `verify --at`).
    pub now: DateTime<Utc>,
}

impl std::fmt::Debug for RawRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawRequest")
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .field("push_url", &self.push_url)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// Proof that a push passed its sender's authentication, carrying what checking it
/// parsed (`P`: the SNS envelope, the Graph batch, a signed delivery id, or nothing). Only
/// this module's senders can make one, and [`Source::normalize`] takes it by value, so
/// nothing unverified is decoded and nothing verified is parsed twice.
#[derive(Debug)]
pub struct Verified<'a, P> {
    request: RawRequest<'a>,
    payload: P,
}

impl<'a, P> Verified<'a, P> {
    pub(in crate::sources) fn new(request: RawRequest<'a>, payload: P) -> Verified<'a, P> {
        Verified { request, payload }
    }
    pub fn request(&self) -> &RawRequest<'a> {
        &self.request
    }
    /// The request and what verification parsed from it.
    pub fn into_parts(self) -> (RawRequest<'a>, P) {
        (self.request, self.payload)
    }
}

/// What a verified push asks the store to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Intake {
    /// Events to store, each deduplicated on its key; `heartbeat` when the same push also
    /// carried a heartbeat (an EventBridge batch may hold both), as its sender named it. `stream` names the event
    /// table the payload belongs to when the sender can tell (a Workspace alert arriving
    /// over Pub/Sub); it applies to connections that kept their source's default stream.
    Events { events: Vec<NewEvent>, heartbeat: Option<HeartbeatProof>, stream: Option<&'static str> },
    /// A heartbeat, with the id and time its sender signed or carried: counted once per
    /// id, when fresh (`model::heartbeat`), and not stored as an event.
    Heartbeat(HeartbeatProof),
    /// A subscription handshake the ingest answers before acknowledging.
    Handshake(Handshake),
    /// A change of the subscription itself, also stored as a `lifecycle` event.
    Lifecycle { event: NewEvent, change: SubscriptionChange },
    /// A batch whose items were checked one by one (Graph): the events of the items that
    /// verified, the subscription changes they report, and each item that failed.
    Batch(Batch),
    /// Notifications of content to fetch in the background (Office 365 with Management
    /// API credentials): the notifications' events, and each content blob they announce.
    Content { events: Vec<NewEvent>, fetches: Vec<ContentFetch> },
}

/// The verified part of a batch, and why each other item was refused.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub events: Vec<NewEvent>,
    pub changes: Vec<ReportedChange>,
    pub refused: Vec<Rejected>,
}

impl Intake {
    /// Events only, no heartbeat.
    pub fn events(events: Vec<NewEvent>) -> Intake {
        Intake::Events { events, heartbeat: None, stream: None }
    }

    /// The `kind` of a `pushgate verify` report.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Intake::Events { .. } | Intake::Content { .. } => "events",
            Intake::Heartbeat(_) => "heartbeat",
            Intake::Handshake(_) => "handshake",
            Intake::Lifecycle { .. } => "lifecycle",
            // A batch of lifecycle notifications only is a lifecycle push.
            Intake::Batch(b) if !b.events.is_empty() && b.events.iter().all(|e| e.kind == crate::model::EventKind::Lifecycle) => {
                "lifecycle"
            }
            Intake::Batch(_) => "events",
        }
    }
}

/// A verified request to start a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake {
    /// An SNS `SubscriptionConfirmation` from an allowed topic.
    /// `auto_confirm`: the connection confirms at once; `false` keeps the SubscribeURL for
    /// an admin (the sender reads it from its config).
    SnsSubscription { region: String, topic_arn: String, subscribe_url: String, token: String, message_id: String, auto_confirm: bool },
    /// A Graph validation request: the decoded `validationToken` is echoed back as
    /// `text/plain`, which tells Graph the endpoint is ours.
    GraphValidation { token: Vec<u8> },
    /// An Office 365 Management Activity webhook validation (`{"validationCode": ...}`).
    O365Validation,
}

/// A connection's full (unsealed) config, with the settings its sender read from it once,
/// when the connection was loaded ([`Source::prepare`]): a push then checks against the
/// parsed settings instead of parsing the JSON again. Derefs to the JSON for everything
/// else.
pub struct ConnectionConfig {
    json: Value,
    prepared: Option<Result<Box<dyn std::any::Any + Send + Sync>, Rejected>>,
}

impl ConnectionConfig {
    /// `json` as `sender` reads it.
    pub fn load(sender: &dyn Sender, json: Value) -> ConnectionConfig {
        let prepared = Some(sender.prepare_any(&json));
        ConnectionConfig { json, prepared }
    }

    /// A config with nothing prepared: the sender prepares it on each push.
    pub fn unprepared(json: Value) -> ConnectionConfig {
        ConnectionConfig { json, prepared: None }
    }
}

impl std::ops::Deref for ConnectionConfig {
    type Target = Value;
    fn deref(&self) -> &Value {
        &self.json
    }
}

/// What one sender is: a static description ([`SourceSpec`]), the settings it reads from
/// a connection's config once, its check over the raw bytes and its decoding of what the
/// check proved. Senders are used through the object-safe [`Sender`], which every
/// `Source` is.
#[async_trait::async_trait]
pub trait Source: Send + Sync + 'static {
    /// What a push is checked against, read from the connection's config when the
    /// connection is loaded.
    type Settings: Send + Sync + 'static;
    /// What verification proved and parsed, handed to [`Source::normalize`] by value.
    type Proof: Send;

    /// What pushgate says of this source (its line in [`SOURCES`] is the same value).
    const SPEC: &'static SourceSpec;

    /// Reads a connection's config (validated when saved) into the settings every push is
    /// checked against. Its error refuses every push before `verify` runs, so it must be
    /// [`Rejected::config`] (unauthenticated: its detail, which names config fields, goes
    /// to the rejection record, never to the sender), and it must not refuse what a
    /// handshake needs (Graph answers a validation request even without a client state,
    /// which is why its settings keep that field optional).
    fn prepare(&self, config: &Value) -> Result<Self::Settings, Rejected>;

    /// Checks the push over its raw bytes against the connection's settings.
    async fn verify<'a>(&self, request: RawRequest<'a>, settings: &Self::Settings) -> Result<Verified<'a, Self::Proof>, Rejected>;

    /// Decodes a verified push; failures here are usually [`RejectClass::Undecodable`].
    fn normalize(&self, verified: Verified<'_, Self::Proof>, settings: &Self::Settings) -> Result<Intake, Rejected>;
}

/// A verified push: what it decoded to, or why it could not be decoded (usually
/// [`RejectClass::Undecodable`]: authentic, stored whole as a `raw` event, acknowledged).
pub type Decoded = Result<Intake, Rejected>;

/// A sender as ingest and `pushgate verify` use it, whatever its settings and proof.
#[async_trait::async_trait]
pub trait Sender: Send + Sync {
    fn spec(&self) -> &'static SourceSpec;

    /// [`Source::prepare`], boxed for the connection cache.
    fn prepare_any(&self, config: &Value) -> Result<Box<dyn std::any::Any + Send + Sync>, Rejected>;

    /// Verifies the push, then decodes it. `Err`: not verified (refused); `Ok(decoded)`:
    /// verified, and what it decoded to or why it could not be decoded.
    async fn receive(&self, request: RawRequest<'_>, config: &ConnectionConfig) -> Result<Decoded, Rejected>;
}

#[async_trait::async_trait]
impl<S: Source> Sender for S {
    fn spec(&self) -> &'static SourceSpec {
        S::SPEC
    }

    fn prepare_any(&self, config: &Value) -> Result<Box<dyn std::any::Any + Send + Sync>, Rejected> {
        self.prepare(config).map(|settings| Box::new(settings) as Box<dyn std::any::Any + Send + Sync>)
    }

    async fn receive(&self, request: RawRequest<'_>, config: &ConnectionConfig) -> Result<Decoded, Rejected> {
        let prepared_now;
        let settings: &S::Settings = match &config.prepared {
            Some(Ok(prepared)) => match prepared.downcast_ref::<S::Settings>() {
                Some(settings) => settings,
                // Prepared by another sender: ingest refuses a push to another source's
                // route before this, so this is a wiring mistake; reading again is safe.
                None => {
                    tracing::warn!(source = S::SPEC.kind.as_str(), "a connection's settings were prepared by another sender");
                    prepared_now = self.prepare(config)?;
                    &prepared_now
                }
            },
            Some(Err(refused)) => return Err(refused.clone()),
            None => {
                prepared_now = self.prepare(config)?;
                &prepared_now
            }
        };
        let verified = self.verify(request, settings).await?;
        Ok(self.normalize(verified, settings))
    }
}

/// The status a sender reads as "stored, stop retrying" (INTERFACE.md section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredAnswer {
    /// 200 with the JSON answer.
    Ok,
    /// 202 with the JSON answer (Graph).
    Accepted,
    /// 204 and no body (Pub/Sub).
    NoContent,
}

/// The status for a push whose credentials or signature are missing or wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnauthenticatedAnswer {
    /// 401: a credential the sender can be asked for (shared secrets, API keys).
    Unauthorized,
    /// 403: a signature or token that does not hold.
    Forbidden,
}

/// What pushgate says of one source: its route, where its events go by default, its
/// config's schema and secrets, its heartbeat and how its retry rules read an answer.
/// Each sender's module holds its own; [`SOURCES`] lists them.
#[derive(Debug)]
pub struct SourceSpec {
    pub kind: SourceKind,
    /// The `{source}` of `/push/{source}/{id}`.
    pub route_segment: &'static str,
    /// Whether the source also pushes to `/push/{source}/{id}/lifecycle` (Graph).
    pub lifecycle_route: bool,
    /// The event table a consumer queries when the connection names none.
    pub default_stream: &'static str,
    /// Where each secret sits in the config (`auth.secret`, `encryption_keys[].private_key_pem`):
    /// write-only, sealed at rest, shown as `***`.
    pub secret_fields: &'static [&'static str],
    /// What counts as this source's heartbeat, in words.
    pub heartbeat: &'static str,
    pub stored: StoredAnswer,
    pub unauthenticated: UnauthenticatedAnswer,
    pub config: ConfigSpec,
    /// Builds the sender, once per server.
    pub build: fn(&SenderDeps) -> Box<dyn Sender>,
}

/// What a source's config is: its keys, the rules the API words for a person, and the
/// typed config its JSON Schema is generated from and every saved config must read as.
#[derive(Debug)]
pub struct ConfigSpec {
    /// The top-level keys a config may have.
    pub keys: &'static [&'static str],
    /// Adds every problem with a config object to `errors`, in words for a person.
    pub check: fn(&serde_json::Map<String, Value>, &mut Vec<String>),
    /// The config's JSON Schema (draft 2020-12), generated from the typed config.
    pub schema: fn() -> Value,
    /// Reads a config as the typed config the schema is generated from.
    pub read: fn(&Value) -> Result<(), String>,
}

impl ConfigSpec {
    /// The spec of typed config `C` with `keys` and the rules of `check`.
    pub const fn of<C: serde::de::DeserializeOwned + schemars::JsonSchema>(
        keys: &'static [&'static str],
        check: fn(&serde_json::Map<String, Value>, &mut Vec<String>),
    ) -> ConfigSpec {
        ConfigSpec { keys, check, schema: catalog::schema_of::<C>, read: read_typed::<C> }
    }
}

/// Every source, in the order of [`SourceKind::ALL`]. The registry: a new sender is one
/// folder here, its `SourceKind` variant and its line below.
pub const SOURCES: [&SourceSpec; 6] =
    [&aws_sns::SPEC, &aws_eventbridge::SPEC, &gcp_pubsub::SPEC, &ms_graph::SPEC, &o365_activity::SPEC, &webhook::SPEC];

/// What pushgate says of `source`.
pub fn spec(source: SourceKind) -> &'static SourceSpec {
    SOURCES.iter().copied().find(|s| s.kind == source).expect("every source kind is in SOURCES")
}

/// The source whose push route is `/push/{segment}/...`.
pub fn from_route_segment(segment: &str) -> Option<SourceKind> {
    SOURCES.iter().find(|s| s.route_segment == segment).map(|s| s.kind)
}

/// Where `source` pushes for connection `id`, under the configured public URL (the URL an
/// admin gives the cloud, and the audience a Pub/Sub token names by default).
pub fn push_url(source: SourceKind, public_url: &str, id: impl std::fmt::Display) -> String {
    format!("{}/push/{}/{id}", public_url.trim_end_matches('/'), spec(source).route_segment)
}

/// The push URL of `connection`.
pub fn connection_push_url(connection: &crate::model::Connection, public_url: &str) -> String {
    push_url(connection.source, public_url, connection.id)
}

/// What senders are built with: the shared key stores some of them check against.
pub struct SenderDeps {
    /// Where SNS signing certificates come from (pinned, cached, fetched).
    pub sns_certs: std::sync::Arc<aws_sns::certs::CertStore>,
    /// Google's OIDC keys for Pub/Sub push tokens.
    pub google_keys: std::sync::Arc<gcp_pubsub::keys::GoogleKeys>,
    /// Microsoft's keys for Graph validation tokens.
    pub microsoft_keys: std::sync::Arc<ms_graph::keys::MicrosoftKeys>,
}

/// Every sender pushgate has, each built once by its spec's `build` in the order of
/// [`SOURCES`]. The push route and `pushgate verify` use the same registry, so they run
/// the same code.
pub struct Senders {
    built: Vec<Box<dyn Sender>>,
}

impl Senders {
    pub fn new(
        sns_certs: std::sync::Arc<aws_sns::certs::CertStore>,
        google_keys: std::sync::Arc<gcp_pubsub::keys::GoogleKeys>,
        microsoft_keys: std::sync::Arc<ms_graph::keys::MicrosoftKeys>,
    ) -> Senders {
        let deps = SenderDeps { sns_certs, google_keys, microsoft_keys };
        Senders { built: SOURCES.iter().map(|spec| (spec.build)(&deps)).collect() }
    }

    /// The sender of a source.
    pub fn get(&self, source: SourceKind) -> &dyn Sender {
        let at = SOURCES.iter().position(|s| s.kind == source).expect("every source kind is in SOURCES");
        self.built[at].as_ref()
    }
}

/// Where a shared secret sits in an `auth` object, for the sources that take one
/// (webhook, EventBridge API destinations).
pub(in crate::sources) const SHARED_SECRET_FIELDS: &[&str] = &["auth.value", "auth.password", "auth.secret"];

/// A connection's `auth` (webhook, EventBridge), read once when the connection is loaded.
pub(in crate::sources) fn read_auth(config: &Value, allowed: crate::verify::auth::Allowed) -> Result<crate::verify::auth::Auth, Rejected> {
    crate::verify::auth::Auth::parse(config, allowed).map_err(|e| Rejected::config(e.join("; ")))
}

/// Reads `config` as `T`, for [`ConfigSpec::read`].
fn read_typed<T: serde::de::DeserializeOwned>(config: &Value) -> Result<(), String> {
    T::deserialize(config).map(|_| ()).map_err(|e| e.to_string())
}

/// A JSON value's type, for refusal details (never the value: it may be long or secret).
pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests;
