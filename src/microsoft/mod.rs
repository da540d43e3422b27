//! pushgate's own calls to Microsoft Graph: keeping the Graph subscriptions of `ms_graph`
//! connections alive (create, renew, reauthorize) for connections whose config has a
//! `subscription`. Notifications *from* Graph are received by
//! [`crate::sources::ms_graph`]; this module is the opposite direction, and the only one
//! that uses an app registration's client credentials.
//!
//! - [`api`]: the Graph REST client (client-credentials tokens, `/subscriptions`).
//! - [`upkeep`]: the background task and its pure decision, [`upkeep::decide`].

pub mod api;
pub mod runner;
pub mod upkeep;

pub use api::{GraphApi, GraphError};
pub use upkeep::{Upkeep, UpkeepHandle};
