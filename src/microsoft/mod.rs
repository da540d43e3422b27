//! pushgate's own calls to Microsoft: keeping the Graph subscriptions of `ms_graph`
//! connections alive (create, renew, reauthorize), and the Office 365 Management Activity
//! API's of `o365_activity` connections, for connections whose config has a
//! `subscription`. Notifications *from* Microsoft are received by
//! [`crate::sources::ms_graph`] and [`crate::sources::o365_activity`]; this module is the
//! opposite direction, and the only one that uses an app registration's client credentials.
//!
//! - [`identity`]: app-only tokens (client credentials) and what every call shares.
//! - [`api`]: the Graph REST client (`/subscriptions`).
//! - [`upkeep`]: the Graph background task and its pure decision, [`upkeep::decide`].
//! - [`o365`]: the Management Activity API client and what uses it.

pub mod api;
pub mod identity;
pub mod o365;
pub mod upkeep;

pub use api::{GraphApi, GraphError};
pub use upkeep::{Upkeep, UpkeepHandle};
