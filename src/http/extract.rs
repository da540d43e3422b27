//! Extractors whose refusals are JSON errors like every other answer: the admin body
//! (with its size limit), path parameters and query strings.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// An admin request body, refused with a JSON error when it is too large or unreadable.
pub struct AdminBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for AdminBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<AdminBody, ApiError> {
        Bytes::from_request(req, state).await.map(AdminBody).map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                let limit = super::ADMIN_BODY_LIMIT;
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", format!("admin bodies are limited to {limit} bytes"))
            } else {
                ApiError::bad_request("invalid_request", e.body_text())
            }
        })
    }
}

/// Path parameters; a path that does not decode (say, invalid UTF-8) is a JSON 400.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<ApiPath<T>, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(e) => Err(ApiError::bad_request("invalid_path", e.body_text())),
        }
    }
}

/// A query string; one that does not parse (say, a repeated field) is a JSON 400.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<ApiQuery<T>, ApiError> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(value)| ApiQuery(value))
            .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
    }
}
