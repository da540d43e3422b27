//! pushgate receives the security data that clouds push, proves each push authentic,
//! stores it durably and exactly once, and watches every feed's heartbeat.
//!
//! A map of the crate, in the order a push travels:
//!
//! - [`http`]: axum router and layers; push routes, admin API, probes. Only it imports axum.
//! - [`ingest`]: connection lookup, verification, normalization and group commit: the only
//!   module that joins [`sources`] and [`store`].
//! - [`sources`]: one folder per sender (`webhook`, `aws_sns`, ...) and their registry:
//!   each sender's spec (route, default stream, answers, config schema), `verify` over raw
//!   bytes into a proof, then `normalize` into events, a heartbeat, a handshake or a
//!   lifecycle change. Depends only on [`model`] and [`verify`].
//! - [`verify`]: what the senders share: constant-time comparison, HMAC, shared-secret
//!   schemes, JWKS, JWT checks, redaction and the refusal type.
//! - [`aws`], [`gcp`], [`microsoft`]: pushgate's own calls to the clouds (confirming SNS
//!   subscriptions, publishing, checking Pub/Sub subscriptions, keeping Graph
//!   subscriptions alive); [`canary`]: the canary heartbeat task;
//!   [`outbound`]: the https client behind every allow-listed fetch.
//! - [`store`]: the [`store::Store`] trait with SQLite and PostgreSQL implementations.
//! - [`forward`]: ships every stored event onward to the configured destinations (NATS
//!   JetStream, HTTP NDJSON, Splunk HEC), at least once and in commit order, and applies
//!   retention; [`destinations`]: admin-side validation and sealing of destinations.
//! - [`health`]: the pure `evaluate(facts, policy, now)` behind every status;
//!   [`monitor`]: evaluates every connection periodically and records transitions;
//!   [`alerts`]: queues each transition in the store and posts it to the alert webhook.
//! - [`jobs`]: the job leases under which the Microsoft upkeeps, the canaries, the Pub/Sub
//!   check and alert deliveries run on one replica at a time.
//! - [`connections`], [`secrets`], [`crypto`]: admin-side validation, secret masking and
//!   sealing at rest with the master key.
//! - [`config`], [`cli`]: configuration and the command line; [`startup`]: the store,
//!   master key and admin tokens a server opens first; [`server`]: building and serving
//!   one replica.
//! - [`model`]: the plain data types everything above shares; [`passes`]: the count of a
//!   background job's completed passes, which tests wait on.

pub mod alerts;
pub mod aws;
pub mod canary;
pub mod cli;
pub mod config;
pub mod connections;
pub mod crypto;
pub mod destinations;
pub mod forward;
pub mod gcp;
pub mod health;
pub mod http;
pub mod ingest;
pub mod jobs;
pub mod metrics;
pub mod microsoft;
pub mod model;
pub mod monitor;
pub mod outbound;
pub mod passes;
pub mod secrets;
pub mod server;
pub mod sources;
pub mod startup;
pub mod store;
#[doc(hidden)]
pub mod testing;
pub mod verify;

pub use server::{run, run_with, RunOptions};
pub use startup::{admin_tokens, master_key, open_store, StartError, KEY_FILE_NAME};
