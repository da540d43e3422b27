//! The connections admin API (`/v1/*`, INTERFACE.md section 2). Every handler takes
//! [`Admin`], so none runs without a valid token.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::auth::Admin;
use super::error::ApiError;
use super::extract::{AdminBody, ApiPath as Path, ApiQuery as Query};
use super::{views, AppState};
use crate::aws::ConfirmError;
use crate::connections::{prepare_new, prepare_update, CreateRequest, PatchRequest};
use crate::microsoft::o365::settings::O365Settings;
use crate::microsoft::upkeep::Settings;
use crate::model::{now, Connection, ConnectionFilter, SourceKind, Status, SubscriptionChange};

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

pub fn parse_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| ApiError::bad_request("invalid_connection_id", format!("`{text}` is not a UUID")))
}

/// An admin JSON body; shared with the destinations API.
pub(super) fn parse_body<T: serde::de::DeserializeOwned>(AdminBody(body): &AdminBody) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request("invalid_request", format!("the body is not valid: {e}")))
}

fn invalid(errors: Vec<String>) -> ApiError {
    ApiError::bad_request("invalid_connection", errors.join("; "))
}

fn not_found(id: Uuid) -> ApiError {
    ApiError::not_found("connection_not_found", format!("no connection {id}"))
}

async fn load(state: &AppState, id: &str) -> Result<Connection, ApiError> {
    let id = parse_id(id)?;
    state.store.get_connection(id).await?.ok_or_else(|| not_found(id))
}

fn view(state: &AppState, c: &Connection) -> Json<Value> {
    Json(views::connection(c, &state.public_url, now()))
}

pub async fn create(_: Admin, State(state): State<AppState>, body: AdminBody) -> Result<Response, ApiError> {
    let request: CreateRequest = parse_body(&body)?;
    let new = prepare_new(request, &state.key, now()).map_err(invalid)?;
    let created = state.store.create_connection(&new).await?;
    tracing::info!(connection = %created.id, tenant = %created.tenant_id, source = created.source.as_str(), "connection created");
    nudge_upkeep(&state, &created);
    Ok((StatusCode::CREATED, view(&state, &created)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    tenant_id: Option<String>,
    source: Option<String>,
    status: Option<String>,
}

pub async fn list(_: Admin, State(state): State<AppState>, Query(q): Query<ListQuery>) -> Result<Json<Value>, ApiError> {
    let source = match q.source.as_deref() {
        None => None,
        Some(s) => Some(SourceKind::parse(s).ok_or_else(|| ApiError::bad_request("invalid_filter", format!("unknown source `{s}`")))?),
    };
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(Status::parse(s).ok_or_else(|| ApiError::bad_request("invalid_filter", format!("unknown status `{s}`")))?),
    };
    let connections = state.store.list_connections(&ConnectionFilter { tenant_id: q.tenant_id, source }).await?;
    let at = now();
    let shown: Vec<Value> = connections
        .iter()
        .filter(|c| status.is_none_or(|s| crate::health::status_of(c, at).0 == s))
        .map(|c| views::connection(c, &state.public_url, at))
        .collect();
    Ok(Json(json!({ "connections": shown })))
}

pub async fn get(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let c = load(&state, &id).await?;
    Ok(view(&state, &c))
}

pub async fn patch(_: Admin, State(state): State<AppState>, Path(id): Path<String>, body: AdminBody) -> Result<Json<Value>, ApiError> {
    let request: PatchRequest = parse_body(&body)?;
    let existing = load(&state, &id).await?;
    let update = prepare_update(&existing, request, &state.key).map_err(invalid)?;
    let updated = state.store.update_connection(existing.id, &update, now()).await?.ok_or_else(|| not_found(existing.id))?;
    state.ingest.invalidate(updated.id);
    nudge_upkeep(&state, &updated);
    Ok(view(&state, &updated))
}

/// A connection with upkeep gets its subscription created or changed now, not at the
/// upkeep's next pass.
fn nudge_upkeep(state: &AppState, c: &Connection) {
    if c.facts.paused || !c.subscription_upkept() {
        return;
    }
    match c.source {
        SourceKind::MsGraph => state.graph_upkeep.nudge(c.id),
        SourceKind::O365Activity => state.o365_upkeep.nudge(c.id),
        _ => {}
    }
}

async fn set_paused(state: &AppState, id: &str, paused: bool) -> Result<Json<Value>, ApiError> {
    let id = parse_id(id)?;
    let c = state.store.set_paused(id, paused, now()).await?.ok_or_else(|| not_found(id))?;
    state.ingest.invalidate(id);
    nudge_upkeep(state, &c);
    tracing::info!(connection = %id, paused, "connection paused state changed");
    Ok(view(state, &c))
}

pub async fn pause(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    set_paused(&state, &id, true).await
}

pub async fn resume(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    set_paused(&state, &id, false).await
}

pub async fn delete(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    // Read before the row is gone: what the upkeep needs to delete the Graph subscription.
    let existing = state.store.get_connection(id).await?;
    let subscription = existing.as_ref().and_then(|c| upkept_subscription(&state, c));
    let o365_subscriptions = existing.as_ref().and_then(|c| upkept_o365_subscriptions(&state, c));
    let deleted = state.store.delete_connection(id).await?;
    state.ingest.invalidate(id);
    if deleted {
        tracing::info!(connection = %id, "connection deleted");
        if let Some((settings, external_id)) = subscription {
            state.graph_upkeep.retire(id, settings, external_id);
        }
        if let Some((settings, push_url)) = o365_subscriptions {
            state.o365_upkeep.retire(id, settings, push_url);
        }
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(id))
    }
}

/// The upkeep settings and Graph subscription id of a Graph connection with upkeep that
/// has a subscription: it is deleted from Graph with the connection, lest it keep pushing.
fn upkept_subscription(state: &AppState, c: &Connection) -> Option<(Settings, String)> {
    if c.source != SourceKind::MsGraph || c.config_public.get("subscription").is_none() {
        return None;
    }
    let external_id = c.facts.external_id.clone()?;
    let config = match crate::connections::open_config(&state.key, c) {
        Ok(config) => config,
        Err(e) => {
            tracing::warn!(connection = %c.id, error = %e, "cannot read the deleted connection's secrets: its Graph subscription is left to expire");
            return None;
        }
    };
    match Settings::of(&config) {
        Ok(settings) => Some((settings?, external_id)),
        Err(e) => {
            tracing::warn!(connection = %c.id, error = %e, "the deleted connection's subscription settings are unusable: its Graph subscription is left to expire");
            None
        }
    }
}

/// The upkeep settings and push URL of an Office 365 connection with upkeep: its
/// subscriptions are stopped with the connection where they still push to it.
fn upkept_o365_subscriptions(state: &AppState, c: &Connection) -> Option<(O365Settings, String)> {
    if c.source != SourceKind::O365Activity || !c.subscription_upkept() {
        return None;
    }
    let settings = crate::connections::open_config(&state.key, c).and_then(|config| O365Settings::of(&config));
    match settings {
        Ok(settings) => Some((settings?, crate::sources::connection_push_url(c, &state.public_url))),
        Err(e) => {
            tracing::warn!(connection = %c.id, error = %e, "the deleted connection's Office 365 subscriptions are left to Microsoft");
            None
        }
    }
}

/// SNS with `auto_confirm: false`: confirms the pending subscription.
pub async fn confirm(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let c = load(&state, &id).await?;
    if c.source != SourceKind::AwsSns {
        return Err(ApiError::bad_request("not_confirmable", "only aws_sns connections have subscriptions to confirm"));
    }
    let pending = c.facts.confirmation_url.as_deref().and_then(|url| Some((url, pending_confirmation(url)?)));
    let Some((url, (region, topic_arn, token))) = pending else {
        return Err(ApiError::new(StatusCode::CONFLICT, "nothing_to_confirm", "this connection has no pending subscription confirmation"));
    };
    // The topic may have been removed from the allow-list since the confirmation arrived.
    let allowed = c
        .config_public
        .get("topic_arns")
        .and_then(Value::as_array)
        .is_some_and(|arns| arns.iter().any(|a| a.as_str() == Some(topic_arn.as_str())));
    if !allowed {
        return Err(ApiError::new(StatusCode::CONFLICT, "topic_not_allowed", format!("{topic_arn} is no longer in `topic_arns`")));
    }
    let confirmed = state.confirmer.confirm(&region, &topic_arn, &token, url).await.map_err(|e| match e {
        ConfirmError::Unreachable(detail) => ApiError::unavailable("aws_unreachable", detail),
        ConfirmError::Refused(detail) => ApiError::new(StatusCode::BAD_GATEWAY, "confirmation_refused", detail),
    })?;
    let change = SubscriptionChange::Confirmed { external_id: confirmed.subscription_arn };
    let c = state.store.change_subscription(c.id, &change, now()).await?.ok_or_else(|| not_found(c.id))?;
    state.ingest.invalidate(c.id);
    tracing::info!(connection = %c.id, via = confirmed.via, "SNS subscription confirmed by an admin");
    Ok(view(&state, &c))
}

/// Region, topic ARN and token of a SubscribeURL (`?Action=ConfirmSubscription&TopicArn=...&Token=...`).
fn pending_confirmation(url: &str) -> Option<(String, String, String)> {
    let query = url.split_once('?')?.1;
    let (mut topic_arn, mut token) = (None, None);
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "TopicArn" => topic_arn = Some(value.into_owned()),
            "Token" => token = Some(value.into_owned()),
            _ => {}
        }
    }
    let topic_arn = topic_arn?;
    let region = topic_arn.split(':').nth(3).filter(|r| !r.is_empty())?.to_owned();
    Some((region, topic_arn, token?))
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    limit: Option<String>,
    after: Option<String>,
}

/// `limit` of a listing: 1 to 1000, 100 when absent; shared with the destinations API.
pub(super) fn page_limit(limit: Option<&str>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| ApiError::bad_request("invalid_limit", format!("`limit` must be 1 to {MAX_PAGE}"))),
    }
}

pub async fn events(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = page_limit(q.limit.as_deref())?;
    let before = match q.after.as_deref() {
        None | Some("") => None,
        Some(text) => {
            Some(text.parse::<i64>().map_err(|_| ApiError::bad_request("invalid_cursor", "`after` is not a cursor from next_after"))?)
        }
    };
    let c = load(&state, &id).await?;
    // One more than asked tells whether another page exists.
    let mut events = state.store.list_events(c.id, limit + 1, before).await?;
    let more = events.len() > limit as usize;
    events.truncate(limit as usize);
    let next_after = if more { events.last().map(|e| e.seq.to_string()) } else { None };
    Ok(Json(json!({ "events": events.iter().map(views::event).collect::<Vec<_>>(), "next_after": next_after })))
}

pub async fn rejections(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = page_limit(q.limit.as_deref())?;
    let c = load(&state, &id).await?;
    let rows = state.store.list_rejections(Some(c.id), limit).await?;
    Ok(Json(json!({ "rejections": rows.iter().map(views::rejection).collect::<Vec<_>>() })))
}

pub async fn history(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let c = load(&state, &id).await?;
    let rows = state.store.list_history(c.id).await?;
    Ok(Json(json!({ "history": rows.iter().map(views::history).collect::<Vec<_>>() })))
}

/// The source catalog (INTERFACE.md section 8): what a console needs to render each
/// source's form.
pub async fn sources(_: Admin) -> Json<Value> {
    Json(crate::sources::catalog::catalog_json().clone())
}

/// Counts by status and tenant, and the connections that need someone's attention.
pub async fn health(_: Admin, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let connections = state.store.list_connections(&ConnectionFilter::default()).await?;
    let at = now();
    let zero = || Status::ALL.iter().map(|s| (s.as_str(), 0u64)).collect::<BTreeMap<_, _>>();
    let mut counts = zero();
    let mut by_tenant: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
    let mut problems = Vec::new();
    for c in &connections {
        let (status, _) = crate::health::status_of(c, at);
        *counts.entry(status.as_str()).or_default() += 1;
        *by_tenant.entry(c.tenant_id.as_str()).or_insert_with(zero).entry(status.as_str()).or_default() += 1;
        if matches!(status, Status::Error | Status::RequiresAction) {
            problems.push(views::connection(c, &state.public_url, at));
        }
    }
    Ok(Json(json!({ "counts": counts, "by_tenant": by_tenant, "problems": problems })))
}
