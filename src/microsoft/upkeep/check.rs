//! The check of a subscription Graph holds against the connection it was made for.

use super::Settings;
use crate::microsoft::api::Delivery;

/// How the subscription Graph holds (`held`, as far as its answer says) differs from what
/// the connection asks for, in words, or `None` when it matches. The client state is a
/// secret: that it differs is said, never its value. Graph writes a resource with or
/// without a leading `/` and in any case, and a change type's parts in any order.
pub fn mismatch(held: &Delivery, notification_url: &str, settings: &Settings) -> Option<String> {
    let mut differences = Vec::new();
    if let Some(url) = held.notification_url.as_deref().filter(|url| *url != notification_url) {
        differences.push(format!("its notificationUrl is {url:?}, not {notification_url:?}"));
    }
    let resource = |r: &str| r.trim().trim_start_matches('/').to_ascii_lowercase();
    if let Some(held) = held.resource.as_deref().filter(|r| resource(r) != resource(&settings.resource)) {
        differences.push(format!("its resource is {held:?}, not {:?}", settings.resource));
    }
    let change_types =
        |c: &str| c.split(',').map(|t| t.trim().to_ascii_lowercase()).filter(|t| !t.is_empty()).collect::<std::collections::BTreeSet<_>>();
    if let Some(held) = held.change_type.as_deref().filter(|c| change_types(c) != change_types(&settings.change_type)) {
        differences.push(format!("its changeType is {held:?}, not {:?}", settings.change_type));
    }
    if held.client_state.as_ref().is_some_and(|c| c != &settings.client_state) {
        differences.push("its clientState is not the connection's".to_owned());
    }
    (!differences.is_empty()).then(|| format!("the subscription at Graph no longer matches the connection: {}", differences.join("; ")))
}
