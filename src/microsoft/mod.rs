//! pushgate's own calls to Microsoft Graph: keeping the Graph subscriptions of `ms_graph`
//! connections alive (create, renew, reauthorize) for connections whose config has a
//! `subscription`. Notifications *from* Graph are received by
//! [`crate::sources::ms_graph`]; this module is the opposite direction, and the only one
//! that uses an app registration's client credentials.
//!
//! - [`api`]: the Graph REST client (client-credentials tokens, `/subscriptions`).
//! - [`upkeep`]: the background task and its pure decision, [`upkeep::decide`].
//! - [`catch_up`]: after lost notifications, the changes read with delta queries.

pub mod api;
pub mod catch_up;
pub mod upkeep;

pub use api::{GraphApi, GraphError};
pub use catch_up::{CatchUp, CatchUpHandle};
pub use upkeep::{Upkeep, UpkeepHandle};
