//! Push routes: `POST /push/{source}/{id}`. The body is read as raw bytes under the size
//! limit and handed to ingest untouched; the answer's status follows each sender's retry
//! rules (INTERFACE.md section 4).

use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, MatchedPath, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::client_addr::client_addr;
use super::error::ApiError;
use super::extract::ApiPath as Path;
use super::AppState;
use crate::ingest::{Origin, PushAccepted, PushError};
use crate::model::{now, SourceKind};
use crate::sources::{self, RawRequest, RejectClass, StoredAnswer, UnauthenticatedAnswer};

/// The status a sender reads as "stored, stop retrying"; each sender names its own
/// ([`crate::sources::SourceSpec::stored`]) and this is the one place it becomes a code.
fn stored_status(source: SourceKind) -> StatusCode {
    match sources::spec(source).stored {
        StoredAnswer::Ok => StatusCode::OK,
        StoredAnswer::Accepted => StatusCode::ACCEPTED,
        StoredAnswer::NoContent => StatusCode::NO_CONTENT,
    }
}

/// The status for a push whose credentials or signature are missing or wrong.
fn unauthenticated_status(source: SourceKind) -> StatusCode {
    match sources::spec(source).unauthenticated {
        UnauthenticatedAnswer::Unauthorized => StatusCode::UNAUTHORIZED,
        UnauthenticatedAnswer::Forbidden => StatusCode::FORBIDDEN,
    }
}

/// `POST /push/{source}/{id}`, and `POST /push/ms-graph/{id}/lifecycle` for Graph
/// lifecycle notifications (and the validation of that URL), received like the
/// notifications themselves.
pub async fn push(
    State(state): State<AppState>,
    Path((segment, id)): Path<(String, String)>,
    route: MatchedPath,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let lifecycle = route.as_str().ends_with("/lifecycle");
    let suffix = if lifecycle { "/lifecycle" } else { "" };
    // Only a source that says so (Graph) has a lifecycle URL.
    let source = sources::from_route_segment(&segment).filter(|s| !lifecycle || sources::spec(*s).lifecycle_route);
    let Some(source) = source else {
        state.ingest.refuse_unknown_route();
        return ApiError::not_found("unknown_route", format!("no push route /push/{segment}/{{id}}{suffix}")).into_response();
    };
    receive(state, source, id, suffix, peer, uri, headers, body).await
}

/// One push to `source`'s route for connection `id` (`suffix`: `/lifecycle` or none).
#[allow(clippy::too_many_arguments)]
async fn receive(
    state: AppState,
    source: SourceKind,
    id: String,
    suffix: &str,
    peer: SocketAddr,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // Behind trusted proxies, the sender they name (see `client_addr`); otherwise the peer.
    let origin = Origin { source_addr: Some(client_addr(peer.ip(), &headers, &state.trusted_proxies).to_string()) };
    // Memory for the body is reserved before reading, so slow senders cannot pin more
    // than the budget between them; past it, pushes are shed (503) and retried later.
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let Some(_reserved) = state.body_budget.reserve(declared, state.max_body_bytes) else {
        return ApiError::unavailable("overloaded", "too many push bodies are being received; retry later").into_response();
    };
    let body = match read_limited(body, declared, state.max_body_bytes).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            let id = uuid::Uuid::parse_str(&id).ok();
            let detail = format!("the body is over {} bytes", state.max_body_bytes);
            // An oversized body is not kept, not even its prefix.
            state.ingest.refuse_early(source, id, "body_too_large", &detail, b"", &origin).await;
            return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", detail).into_response();
        }
        Err(BodyError::Unreadable) => {
            return ApiError::bad_request("body_unreadable", "the body ended before it was complete").into_response();
        }
    };
    let Ok(id) = uuid::Uuid::parse_str(&id) else {
        let shown: String = id.chars().take(64).collect();
        let detail = format!("`{shown}` is not a UUID");
        state.ingest.refuse_early(source, None, "invalid_connection_id", &detail, &body, &origin).await;
        return ApiError::bad_request("invalid_connection_id", detail).into_response();
    };
    let push_url = format!("{}{suffix}", sources::push_url(source, &state.public_url, id));
    let request = RawRequest { headers: &headers, query: uri.query(), body: &body, push_url: &push_url, now: now() };
    match state.ingest.push(source, id, request, &origin).await {
        Ok(accepted) => accepted_response(source, accepted),
        Err(e) => error_response(source, e).into_response(),
    }
}

/// Why a body was not read.
enum BodyError {
    TooLarge,
    /// The sender stopped sending (disconnect, reset) before the body was complete.
    Unreadable,
}

/// Reads the whole body, refusing it once it passes `limit` (declared or actual).
async fn read_limited(body: Body, declared: Option<u64>, limit: usize) -> Result<Bytes, BodyError> {
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e).is_some_and(|inner| inner.is::<http_body_util::LengthLimitError>());
        if too_large {
            BodyError::TooLarge
        } else {
            BodyError::Unreadable
        }
    })
}

fn accepted_response(source: SourceKind, accepted: PushAccepted) -> Response {
    let body = match accepted {
        // A validation is answered as its sender expects, whatever the source's stored status.
        PushAccepted::Validated { echo } => return validated_response(echo),
        PushAccepted::Stored { stored, duplicates } => json!({"status": "stored", "stored": stored, "duplicates": duplicates}),
        PushAccepted::Heartbeat { duplicate } => json!({"status": "heartbeat", "duplicate": duplicate}),
        PushAccepted::HeartbeatNotFresh => json!({"status": "kept_as_rejection", "reason": crate::model::heartbeat::NOT_FRESH}),
        PushAccepted::StoredRaw { reason, stored, duplicates } => {
            json!({"status": "stored_raw", "reason": reason, "stored": stored, "duplicates": duplicates})
        }
        // A refusal all the same (a retry cannot help): the rejection record says why.
        PushAccepted::HandshakeRefused { reason } => json!({"status": "kept_as_rejection", "reason": reason}),
        PushAccepted::Confirmed { subscription_arn } => json!({"status": "confirmed", "subscription_arn": subscription_arn}),
        PushAccepted::AwaitingConfirmation => json!({"status": "awaiting_admin_confirmation"}),
        PushAccepted::Lifecycle => json!({"status": "lifecycle"}),
        PushAccepted::StoredPartly { stored, duplicates, refused } => {
            json!({"status": "stored", "stored": stored, "duplicates": duplicates, "refused": refused})
        }
    };
    match stored_status(source) {
        StatusCode::NO_CONTENT => StatusCode::NO_CONTENT.into_response(),
        status => (status, Json(body)).into_response(),
    }
}

/// 200 to a validation request. Graph wants its token back as plain text, byte for byte;
/// `nosniff` keeps a browser from reading a token full of markup as HTML.
fn validated_response(echo: Option<Vec<u8>>) -> Response {
    match echo {
        Some(token) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain"), (header::X_CONTENT_TYPE_OPTIONS, "nosniff")], token).into_response()
        }
        None => (StatusCode::OK, Json(json!({"status": "validated"}))).into_response(),
    }
}

fn error_response(source: SourceKind, error: PushError) -> ApiError {
    match error {
        PushError::UnknownConnection => ApiError::not_found("unknown_connection", "no connection with this id for this route"),
        PushError::Paused => ApiError::unavailable("paused", "the connection is paused; retry later"),
        PushError::Rejected(r) => match r.class {
            // The detail can name what the connection expects (an audience, an account, a
            // topic): it goes to the rejection record, not to whoever sent the push.
            RejectClass::Unauthenticated => ApiError::new(
                unauthenticated_status(source),
                r.reason,
                "the push is not authenticated for this connection; the reason code says why, and the connection's rejections hold the detail",
            ),
            // Undecodable and refused handshakes are acknowledged by ingest; were one to
            // arrive here it is still the sender's request that is wrong.
            RejectClass::Malformed | RejectClass::Undecodable | RejectClass::HandshakeRefused => ApiError::bad_request(r.reason, r.detail),
            // The detail (paths, upstream errors) is for the rejection record and the log;
            // the sender, not yet authenticated, learns only to retry.
            RejectClass::Unavailable => {
                ApiError::unavailable(r.reason, "a signing certificate or the cloud's API cannot be reached right now; retry later")
            }
        },
        PushError::StoreUnavailable => ApiError::unavailable("store_unavailable", "the event could not be stored; retry later"),
        PushError::Overloaded => ApiError::unavailable("overloaded", "too many pushes are waiting to be stored; retry later"),
    }
}
