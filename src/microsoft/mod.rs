//! pushgate's own calls to Microsoft: keeping the Graph subscriptions of `ms_graph`
//! connections alive (create, renew, reauthorize), and the Office 365 Management Activity
//! API's of `o365_activity` connections, for connections whose config has a
//! `subscription`. Notifications *from* Microsoft are received by
//! [`crate::sources::ms_graph`] and [`crate::sources::o365_activity`]; this module is the
//! opposite direction, and the only one that uses an app registration's client credentials.
//!
//! - [`identity`]: app-only tokens (client credentials) and what every call shares.
//! - [`api`]: the Graph REST client (`/subscriptions`, delta queries).
//! - [`upkeep`]: the Graph background task and its pure decision, [`upkeep::decide`].
//! - [`catch_up`]: after lost notifications, the changes read with delta queries.
//! - [`o365`]: the Management Activity API client and what uses it.
//! - [`runner`]: the loop, backoff and recording both subscription upkeeps share.

pub mod api;
pub mod catch_up;
pub mod identity;
pub mod o365;
pub mod runner;
pub mod upkeep;

pub use api::{GraphApi, GraphError};
pub use catch_up::{CatchUp, CatchUpHandle};
pub use upkeep::{Upkeep, UpkeepHandle};
