//! pushgate's own calls to the Office 365 Management Activity API, for `o365_activity`
//! connections whose config has a `subscription` (an app registration with
//! `ActivityFeed.Read`): starting and checking the content subscriptions that push to the
//! connection, and fetching the audit content each notification points to. Notifications
//! *from* the API are received by [`crate::sources::o365_activity`].
//!
//! - [`settings`]: what these calls need of a connection's config.
//! - [`manage`]: the REST client (tokens for the endpoint's `/.default` scope,
//!   `/subscriptions/start`, `/subscriptions/list`, content blobs), which fetches only
//!   from the connection's own, allow-listed endpoint.
//! - [`upkeep`]: the background task that keeps each content type's subscription started
//!   and checks it, and its pure decision, [`upkeep::decide`].
//! - [`fetch`]: the job that fetches the content each stored notification queued and
//!   stores its audit records.

pub mod fetch;
pub mod manage;
pub mod settings;
pub mod upkeep;

pub use manage::{ManageApi, ManageError};
pub use settings::O365Settings;
