//! Which Graph subscription resources have a delta query, and how a catch-up reads it.
//!
//! Microsoft Graph's delta queries ("Use delta query to track changes in Microsoft Graph
//! data") that match a resource one can subscribe to:
//!
//! | subscription resource | delta query | first delta state |
//! |---|---|---|
//! | `users`, `groups` | `users/delta`, `groups/delta` | `$deltatoken=latest` (directory objects sync "from now") |
//! | `users/{id}/mailFolders/{id}/messages` (or `me/...`, `mailFolders('Inbox')`) | `.../messages/delta` | a full first read |
//! | `users/{id}/contactFolders/{id}/contacts` | `.../contacts/delta` | a full first read |
//! | `drives/{id}/root`, `users/{id}/drive/root`, `sites/{id}/drive/root`, `me/drive/root` | `.../root/delta` | `token=latest` |
//! | `teams/{id}/channels/{id}/messages` | `.../messages/delta` | a full first read |
//! | `users/{id}/todo/lists/{id}/tasks` | `.../tasks/delta` | a full first read |
//!
//! Everything else has none that covers what the subscription does: messages of a whole
//! mailbox (`users/{id}/messages`: Outlook tracks changes per folder), events (their delta
//! needs a time window: `calendarView/delta`), security alerts, presence, chats, call
//! records... A resource with a query (`?$filter=...`) is not mapped either: a delta query
//! of the whole collection would read more than the subscription covers.

/// How a catch-up reads the changes of one subscription resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaQuery {
    /// The path of the delta query under the Graph endpoint (`users/delta`).
    pub path: String,
    /// The query of a first request that only learns the current state, when Graph has
    /// one; otherwise the first state is learned by reading everything once.
    pub latest: Option<&'static str>,
    /// The resource path of one changed item, without its id (`users`,
    /// `drives/{id}/items`): a stored catch-up's `resource` is this, `/`, the item's id.
    pub item_base: String,
}

impl DeltaQuery {
    /// The path and query of the first request of a round that only learns the state.
    pub fn first_read(&self) -> String {
        match self.latest {
            Some(latest) => format!("{}?{latest}", self.path),
            None => self.path.clone(),
        }
    }
}

/// The delta query of a subscription resource, or why it has none (the text completes
/// "the gap cannot be closed: ...").
pub fn delta_query(resource: &str) -> Result<DeltaQuery, String> {
    let trimmed = resource.trim().trim_start_matches('/').trim_end_matches('/');
    let none = || format!("resource {trimmed} has no delta query");
    if trimmed.contains('?') {
        return Err(format!("resource {trimmed} has a query, and a delta query would read more than it covers"));
    }
    // `mailFolders('Inbox')` is `mailFolders/Inbox`.
    let mut segments: Vec<String> = Vec::new();
    for segment in trimmed.split('/') {
        match segment.split_once('(') {
            Some((name, rest)) if rest.ends_with(')') => {
                segments.push(name.to_owned());
                segments.push(rest.trim_end_matches(')').trim_matches('\'').to_owned());
            }
            _ => segments.push(segment.to_owned()),
        }
    }
    if segments.iter().any(|s| s.is_empty()) {
        return Err(none());
    }
    let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
    let names: Vec<&str> = lower.iter().map(String::as_str).collect();
    let path = segments.join("/");
    let full_read = |path: &str| DeltaQuery { path: format!("{path}/delta"), latest: None, item_base: path.to_owned() };
    // The user a resource belongs to: `users/{id}` or `me`.
    let user_rest = match names.as_slice() {
        ["users", _, rest @ ..] => Some(rest),
        ["me", rest @ ..] => Some(rest),
        _ => None,
    };
    match names.as_slice() {
        ["users"] | ["groups"] => {
            return Ok(DeltaQuery { path: format!("{path}/delta"), latest: Some("$deltatoken=latest"), item_base: path });
        }
        ["drives", _, "root"] => {
            let drive = segments[..2].join("/");
            return Ok(DeltaQuery { path: format!("{path}/delta"), latest: Some("token=latest"), item_base: format!("{drive}/items") });
        }
        ["sites", _, "drive", "root"] | ["users", _, "drive", "root"] | ["me", "drive", "root"] => {
            let drive = segments[..segments.len() - 1].join("/");
            return Ok(DeltaQuery { path: format!("{path}/delta"), latest: Some("token=latest"), item_base: format!("{drive}/items") });
        }
        ["teams", _, "channels", _, "messages"] => return Ok(full_read(&path)),
        _ => {}
    }
    match user_rest {
        Some(["mailfolders", _, "messages"]) | Some(["contactfolders", _, "contacts"]) | Some(["todo", "lists", _, "tasks"]) => {
            Ok(full_read(&path))
        }
        Some(["messages"]) => Err(format!("resource {trimmed} has no delta query (Outlook tracks message changes per mail folder)")),
        Some(["events"]) | Some(["calendar", "events"]) => {
            Err(format!("resource {trimmed} has no delta query (the delta of events needs a time window)"))
        }
        _ => Err(none()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_resources_sync_from_now() {
        let users = delta_query("users").unwrap();
        assert_eq!((users.path.as_str(), users.latest, users.item_base.as_str()), ("users/delta", Some("$deltatoken=latest"), "users"));
        assert_eq!(users.first_read(), "users/delta?$deltatoken=latest");
        assert_eq!(delta_query("/Groups").unwrap().path, "Groups/delta", "Graph's paths are not case-sensitive; the case is kept");
    }

    #[test]
    fn a_mail_folder_is_read_whole_first() {
        let inbox = delta_query("users/8b4f/mailFolders('Inbox')/messages").unwrap();
        assert_eq!(inbox.path, "users/8b4f/mailFolders/Inbox/messages/delta");
        assert_eq!(inbox.latest, None);
        assert_eq!(inbox.first_read(), "users/8b4f/mailFolders/Inbox/messages/delta");
        assert_eq!(inbox.item_base, "users/8b4f/mailFolders/Inbox/messages");
        assert_eq!(
            delta_query("me/mailfolders/AQMkADNkNAAAgEMAAAA/messages").unwrap().path,
            "me/mailfolders/AQMkADNkNAAAgEMAAAA/messages/delta"
        );
        assert!(delta_query("users/u/contactFolders/c/contacts").is_ok());
        assert!(delta_query("users/u/todo/lists/l/tasks").is_ok());
        assert!(delta_query("teams/t/channels/c/messages").is_ok());
    }

    #[test]
    fn drive_items_sync_from_now_and_name_their_items() {
        let drive = delta_query("drives/b!x1/root").unwrap();
        assert_eq!((drive.first_read().as_str(), drive.item_base.as_str()), ("drives/b!x1/root/delta?token=latest", "drives/b!x1/items"));
        assert_eq!(delta_query("users/u/drive/root").unwrap().item_base, "users/u/drive/items");
        assert_eq!(delta_query("sites/s/drive/root").unwrap().path, "sites/s/drive/root/delta");
        assert_eq!(delta_query("me/drive/root").unwrap().item_base, "me/drive/items");
    }

    #[test]
    fn other_resources_have_none() {
        for resource in [
            "security/alerts_v2",
            "security/alerts?$filter=status eq 'newAlert'",
            "users/u/messages",
            "users/u/events",
            "communications/presences?$filter=id in ('a')",
            "chats/getAllMessages",
            "users/u",
            "users//mailFolders/x/messages",
            "",
        ] {
            let why = delta_query(resource).unwrap_err();
            assert!(why.starts_with("resource "), "{resource}: {why}");
        }
        assert_eq!(delta_query("security/alerts_v2").unwrap_err(), "resource security/alerts_v2 has no delta query");
    }
}
