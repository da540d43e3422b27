//! Admin authentication: `Authorization: Bearer <token>`, checked against the SHA-256
//! hashes of the accepted tokens in constant time. Tokens themselves are never stored.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

use super::error::ApiError;
use super::AppState;
use crate::crypto::token_hash;
use crate::verify::constant_time_eq;

/// The hashes of every accepted admin token.
#[derive(Clone, Default)]
pub struct AdminTokens {
    hashes: Vec<String>,
}

impl std::fmt::Debug for AdminTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AdminTokens({} hashes)", self.hashes.len())
    }
}

impl AdminTokens {
    pub fn new(hashes: Vec<String>) -> AdminTokens {
        AdminTokens { hashes }
    }

    pub fn accepts(&self, token: &str) -> bool {
        let presented = token_hash(token);
        // Compare against every hash, so timing does not reveal which one matched.
        self.hashes.iter().fold(false, |ok, h| ok | constant_time_eq(presented.as_bytes(), h.as_bytes()))
    }
}

/// Proof that the request carried a valid admin token; handlers take it as an argument.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, ApiError> {
        match bearer_token(&parts.headers) {
            Some(t) if state.admin_tokens.accepts(t) => Ok(Admin),
            _ => Err(ApiError::unauthorized()),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header; `None` when absent or empty.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_known_tokens() {
        let tokens = AdminTokens::new(vec![token_hash("first-token-0123"), token_hash("second-token-456")]);
        assert!(tokens.accepts("first-token-0123"));
        assert!(tokens.accepts("second-token-456"));
        assert!(!tokens.accepts("first-token-012"));
        assert!(!AdminTokens::default().accepts(""));
    }
}
