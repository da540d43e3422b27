//! The destinations admin API and the change feed (INTERFACE.md section 7). Every handler
//! takes [`Admin`], so none runs without a valid token.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::admin::{page_limit, parse_body};
use super::auth::Admin;
use super::error::ApiError;
use super::extract::{AdminBody, ApiPath as Path, ApiQuery as Query};
use super::views::time;
use super::AppState;
use crate::destinations::{prepare_new, prepare_update, CreateRequest, PatchRequest};
use crate::forward::status;
use crate::model::{now, Backlog, DeadLetter, Destination, EventFilter, Position, SourceKind};

fn parse_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| ApiError::bad_request("invalid_destination_id", format!("`{text}` is not a UUID")))
}

fn invalid(errors: Vec<String>) -> ApiError {
    ApiError::bad_request("invalid_destination", errors.join("; "))
}

fn not_found(id: Uuid) -> ApiError {
    ApiError::not_found("destination_not_found", format!("no destination {id}"))
}

async fn load(state: &AppState, id: &str) -> Result<Destination, ApiError> {
    let id = parse_id(id)?;
    state.store.get_destination(id).await?.ok_or_else(|| not_found(id))
}

/// The destination object: its settings (secrets as `***`), status, lag and counters.
pub fn destination(d: &Destination, backlog: &Backlog, at: DateTime<Utc>) -> Value {
    let opt_time = |t: Option<DateTime<Utc>>| t.map(time).unwrap_or(Value::Null);
    json!({
        "id": d.id,
        "name": d.name,
        "kind": d.kind.as_str(),
        "filter": d.filter,
        "start_from": d.start_from.as_str(),
        "config": d.config_public,
        "created_at": time(d.created_at),
        "status": status::evaluate(d, backlog, at).as_str(),
        "last_delivered_at": opt_time(d.last_delivered_at),
        "last_error": d.last_error.as_ref().map(|e| json!({"at": time(e.at), "message": e.message})),
        "lag_events": backlog.events,
        "oldest_undelivered_at": opt_time(backlog.oldest_received_at),
        "counters": d.counters,
        "lease": d.lease.as_ref().filter(|l| l.expires_at >= at).map(|l| json!({"holder": l.holder, "expires_at": time(l.expires_at)})),
    })
}

/// A destination with its backlog read now.
async fn view(state: &AppState, d: &Destination) -> Result<Value, ApiError> {
    let backlog = state.store.backlog(d.position, &d.filter).await?;
    Ok(destination(d, &backlog, now()))
}

pub async fn create(_: Admin, State(state): State<AppState>, body: AdminBody) -> Result<Response, ApiError> {
    let request: CreateRequest = parse_body(&body)?;
    let new = prepare_new(request, &state.key, now()).map_err(invalid)?;
    let created = state.store.create_destination(&new).await?;
    tracing::info!(destination = %created.id, name = %created.name, kind = created.kind.as_str(), "destination created");
    state.forwarder.nudge(created.id);
    Ok((StatusCode::CREATED, Json(view(&state, &created).await?)).into_response())
}

pub async fn list(_: Admin, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut shown = Vec::new();
    for d in state.store.list_destinations().await? {
        shown.push(view(&state, &d).await?);
    }
    Ok(Json(json!({ "destinations": shown })))
}

pub async fn get(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let d = load(&state, &id).await?;
    Ok(Json(view(&state, &d).await?))
}

pub async fn patch(_: Admin, State(state): State<AppState>, Path(id): Path<String>, body: AdminBody) -> Result<Json<Value>, ApiError> {
    let request: PatchRequest = parse_body(&body)?;
    let existing = load(&state, &id).await?;
    let update = prepare_update(&existing, request, &state.key).map_err(invalid)?;
    let updated = state.store.update_destination(existing.id, &update, now()).await?.ok_or_else(|| not_found(existing.id))?;
    tracing::info!(destination = %updated.id, "destination changed");
    state.forwarder.nudge(updated.id);
    Ok(Json(view(&state, &updated).await?))
}

async fn set_paused(state: &AppState, id: &str, paused: bool) -> Result<Json<Value>, ApiError> {
    let id = parse_id(id)?;
    let d = state.store.set_destination_paused(id, paused, now()).await?.ok_or_else(|| not_found(id))?;
    tracing::info!(destination = %id, paused, "destination paused state changed");
    state.forwarder.nudge(id);
    Ok(Json(view(state, &d).await?))
}

pub async fn pause(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    set_paused(&state, &id, true).await
}

/// Resumes a paused destination; on one that is not paused it retries a failing
/// destination at once (after an operator fixed what it was failing on).
pub async fn resume(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    set_paused(&state, &id, false).await
}

pub async fn delete(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    if !state.store.delete_destination(id).await? {
        return Err(not_found(id));
    }
    tracing::info!(destination = %id, "destination deleted");
    state.forwarder.nudge(id);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
pub struct LimitQuery {
    limit: Option<String>,
}

fn dead_letter(d: &DeadLetter) -> Value {
    json!({"event_id": d.event_id, "at": time(d.at), "reason": d.reason, "attempts": d.attempts})
}

pub async fn dead_letters(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LimitQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = page_limit(q.limit.as_deref())?;
    let d = load(&state, &id).await?;
    let rows = state.store.list_dead_letters(d.id, limit).await?;
    Ok(Json(json!({ "dead_letters": rows.iter().map(dead_letter).collect::<Vec<_>>() })))
}

/// Marks every dead letter to be tried again once; answers how many (202: the delivery
/// happens in the background, and each letter leaves the list once delivered).
pub async fn replay(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let d = load(&state, &id).await?;
    let n = state.store.request_replay(d.id).await?;
    tracing::info!(destination = %d.id, dead_letters = n, "dead letters to be replayed");
    state.forwarder.nudge(d.id);
    Ok((StatusCode::ACCEPTED, Json(json!({ "replay_requested": n }))).into_response())
}

#[derive(Debug, Deserialize)]
pub struct FeedQuery {
    after: Option<String>,
    limit: Option<String>,
    tenant_id: Option<String>,
    source: Option<String>,
    stream: Option<String>,
    kind: Option<String>,
}

/// `GET /v1/events`: every connection's events oldest first, in commit order, read only
/// up to the store's horizon, so polling with `next_after` never skips an event that
/// committed late. `next_after` is always a cursor.
pub async fn feed(_: Admin, State(state): State<AppState>, Query(q): Query<FeedQuery>) -> Result<Json<Value>, ApiError> {
    let limit = page_limit(q.limit.as_deref())?;
    let after = match q.after.as_deref() {
        None | Some("") => Position::START,
        Some(text) => Position::parse_cursor(text)
            .ok_or_else(|| ApiError::bad_request("invalid_cursor", "`after` is not a cursor from next_after"))?,
    };
    let mut errors = Vec::new();
    if let Some(source) = q.source.as_deref().filter(|s| SourceKind::parse(s).is_none()) {
        errors.push(format!("unknown source `{source}`"));
    }
    let filter_value = json!({
        "tenant_ids": q.tenant_id.as_ref().map(|t| vec![t]),
        "sources": q.source.as_ref().map(|s| vec![s]),
        "streams": q.stream.as_ref().map(|s| vec![s]),
        "kinds": q.kind.as_ref().map(|k| vec![k]),
    });
    let without_nulls: serde_json::Map<String, Value> =
        filter_value.as_object().into_iter().flatten().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect();
    let filter: EventFilter = crate::destinations::parse_filter(Some(&Value::Object(without_nulls)), &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::bad_request("invalid_filter", errors.join("; ")));
    }
    let horizon = state.store.horizon().await?;
    let events = if horizon > after { state.store.read_events(after, horizon, &filter, limit).await? } else { Vec::new() };
    let next = match events.last() {
        Some(last) if events.len() == limit as usize => last.position,
        _ => horizon.max(after),
    };
    Ok(Json(json!({ "events": events, "next_after": next.cursor() })))
}
