//! The identity platform's token endpoint (`POST {login}/{tenant}/oauth2/v2.0/token`,
//! client credentials grant) as the fakes of Graph and the Management API answer it,
//! following "Microsoft identity platform and the OAuth 2.0 client credentials flow":
//! a token for the registered client id, secret and scope; otherwise 401
//! `{"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret
//! provided...", "error_codes": [7000215]}` (with the secret in its text, so a leak of it
//! anywhere downstream shows).

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// What the token endpoint accepts.
pub struct Registration<'a> {
    pub client_id: &'a str,
    pub client_secret: &'a str,
    pub scope: &'a str,
}

/// The answer to the token request `body`, and the token it issues (none when it is a
/// refusal). `refuse` refuses whatever the request holds.
pub fn answer(body: &[u8], registration: &Registration, refuse: bool, prefix: &str) -> (Option<String>, Response) {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let valid = field("client_id") == registration.client_id
        && field("client_secret") == registration.client_secret
        && field("grant_type") == "client_credentials"
        && field("scope") == registration.scope;
    if refuse || !valid {
        let description = format!(
            "AADSTS7000215: Invalid client secret provided ('{}'). Ensure the secret being sent in the request is the client secret value.\r\nTrace ID: 0\r\nTimestamp: now",
            field("client_secret")
        );
        let refusal = (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client", "error_description": description, "error_codes": [7000215]})),
        );
        return (None, refusal.into_response());
    }
    let token = format!("{prefix}-{}", uuid::Uuid::new_v4());
    let answer = Json(json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token})).into_response();
    (Some(token), answer)
}
