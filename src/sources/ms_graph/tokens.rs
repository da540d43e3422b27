//! The check of the `validationTokens` of a batch of Graph rich notifications: JWTs
//! Microsoft's identity platform signs for Graph change tracking, naming the
//! subscription's application as audience. They vouch for the whole batch, so every
//! token must verify or none of the batch is trusted.
//!
//! [`verify_validation_tokens`] first bounds the work ([`MAX_TOKENS`] tokens of at most
//! [`MAX_TOKEN_BYTES`] each, each a string shaped like a JWT), then checks each token in
//! order, cheapest first, believing nothing it says before its signature verifies:
//!
//! 1. the JOSE header names `alg` RS256 exactly and a `kid`, and the signature verifies
//!    with Microsoft's key of that `kid` ([`MicrosoftKeys`]); keys a token carries or
//!    points at are ignored ([`crate::verify::jwt`]);
//! 2. `aud` is one of the connection's `app_ids`; with none configured nothing can be
//!    checked, so every token fails;
//! 3. `iss` is a tenant's v1 (`https://sts.windows.net/{tid}/`) or v2
//!    (`https://login.microsoftonline.com/{tid}/v2.0`) issuer, the tenant one of the
//!    connection's `tenant_ids` when it names any, and the `tid` claim, when present,
//!    that same tenant;
//! 4. the caller is Graph change tracking ([`GRAPH_CHANGE_TRACKING_APP_ID`]): in `appid`
//!    for a v1 token (`ver` "1.0"), in `azp` for a v2 token (`ver` "2.0"); a token of
//!    another version fails;
//! 5. `exp`, `iat` (and `nbf`) against the clock of the check, with
//!    [`crate::verify::jwt::LEEWAY_SECONDS`].
//!
//! Identifiers (application and tenant ids, GUIDs) compare case-insensitively. A
//! refusal's detail says which token failed and why, naming the expected values, never
//! the token.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::keys::MicrosoftKeys;
use crate::sources::json_kind;
use crate::sources::Rejected;
use crate::verify::jwt::{quoted, string_claim, Reasons};

/// The application id of Microsoft Graph change tracking, the caller of every
/// validation token.
pub const GRAPH_CHANGE_TRACKING_APP_ID: &str = "0bf30f3b-4a52-48df-9a82-234910c4a086";

/// Most tokens checked in one batch: Graph sends one per application and tenant in it.
pub const MAX_TOKENS: usize = 16;

/// Longest token read; Graph's are about 1.5 KiB.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

const V1_ISSUER: (&str, &str) = ("https://sts.windows.net/", "/");
const V2_ISSUER: (&str, &str) = ("https://login.microsoftonline.com/", "/v2.0");

const REASONS: Reasons = Reasons {
    signer: "Microsoft",
    tokens: "Graph validation tokens",
    malformed: "graph_token_malformed",
    algorithm: "graph_token_algorithm",
    unknown_key: "graph_unknown_key",
    signature: "graph_token_signature",
    expired: "graph_token_expired",
    not_yet_valid: "graph_token_not_yet_valid",
};

/// What the tokens must say, from the connection's configuration.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The connection's `app_ids`: the audiences accepted.
    pub app_ids: &'a [String],
    /// The connection's `tenant_ids`: the issuing tenants accepted; empty for any.
    pub tenant_ids: &'a [String],
}

/// Which token format a validation token is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenVersion {
    /// `ver` "1.0": issuer `sts.windows.net`, caller in `appid`.
    V1,
    /// `ver` "2.0": issuer `login.microsoftonline.com/…/v2.0`, caller in `azp`.
    V2,
}

/// The claims of a verified validation token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    pub version: TokenVersion,
    /// The `aud`: the application the notifications are for, as the token writes it.
    pub app_id: String,
    /// The tenant of the issuer, as the token writes it.
    pub tenant_id: String,
    pub issuer: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Verifies every token of a `validationTokens` value: see the module documentation.
/// The first token that fails refuses the whole batch.
pub async fn verify_validation_tokens(
    tokens: &Value,
    keys: &MicrosoftKeys,
    expected: &Expected<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<TokenClaims>, Rejected> {
    let tokens = token_list(tokens)?;
    let count = tokens.len();
    let mut verified = Vec::with_capacity(count);
    for (index, token) in tokens.into_iter().enumerate() {
        let claims = verify_token(token, keys, expected, now)
            .await
            .map_err(|e| Rejected { detail: format!("validation token {} of {count}: {}", index + 1, e.detail), ..e })?;
        verified.push(claims);
    }
    Ok(verified)
}

/// The tokens, once the list and every token in it are within bounds and shaped like
/// JWTs: all of them are looked at before any key or RSA work.
fn token_list(tokens: &Value) -> Result<Vec<&str>, Rejected> {
    let Value::Array(items) = tokens else {
        return Err(REASONS.malformed(format!("validationTokens is {}, not a list of tokens", json_kind(tokens))));
    };
    if items.is_empty() {
        return Err(REASONS.malformed("validationTokens is empty: it vouches for nothing"));
    }
    if items.len() > MAX_TOKENS {
        return Err(REASONS.malformed(format!("validationTokens holds {} tokens; at most {MAX_TOKENS} are checked", items.len())));
    }
    let count = items.len();
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let at = format!("validation token {} of {count}", index + 1);
            let Value::String(token) = item else {
                return Err(REASONS.malformed(format!("{at} is {}, not a string", json_kind(item))));
            };
            if token.len() > MAX_TOKEN_BYTES {
                return Err(REASONS.malformed(format!("{at} is longer than {MAX_TOKEN_BYTES} bytes")));
            }
            REASONS.check_shape(token, &at)?;
            Ok(token.as_str())
        })
        .collect()
}

async fn verify_token(token: &str, keys: &MicrosoftKeys, expected: &Expected<'_>, now: DateTime<Utc>) -> Result<TokenClaims, Rejected> {
    let kid = REASONS.signing_key_id(token)?;
    let key = keys.key(&kid).await?;
    let claims = REASONS.verified_claims(token, &key, &kid)?;
    check_claims(&claims, expected, now)
}

fn same_id(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The verified claims checked against `expected` and the clock `now`.
fn check_claims(claims: &Map<String, Value>, expected: &Expected<'_>, now: DateTime<Utc>) -> Result<TokenClaims, Rejected> {
    let app_id = check_audience(claims, expected.app_ids)?;
    let (issuer, tenant_id) = check_issuer(claims, expected.tenant_ids)?;
    let version = check_caller(claims)?;
    let validity = REASONS.check_times(claims, now)?;
    Ok(TokenClaims {
        version,
        app_id: app_id.to_string(),
        tenant_id: tenant_id.to_string(),
        issuer: issuer.to_string(),
        issued_at: validity.issued_at,
        expires_at: validity.expires_at,
    })
}

fn check_audience<'c>(claims: &'c Map<String, Value>, app_ids: &[String]) -> Result<&'c str, Rejected> {
    let refuse = |detail: String| Rejected::unauthenticated("graph_token_audience", detail);
    if app_ids.is_empty() {
        return Err(refuse("the connection names no app_ids, so no token audience can be accepted".into()));
    }
    if let Some(Value::Array(_)) = claims.get("aud") {
        return Err(refuse(format!("token audience is a list; expected one of the app_ids {app_ids:?}")));
    }
    let audience = string_claim(claims, "aud", "graph_token_audience")?;
    if !app_ids.iter().any(|id| same_id(id, audience)) {
        return Err(refuse(format!("token audience is {}, expected one of the app_ids {app_ids:?}", quoted(audience))));
    }
    Ok(audience)
}

/// The issuer and its tenant.
fn check_issuer<'c>(claims: &'c Map<String, Value>, tenant_ids: &[String]) -> Result<(&'c str, &'c str), Rejected> {
    let refuse = |detail: String| Rejected::unauthenticated("graph_token_issuer", detail);
    let issuer = string_claim(claims, "iss", "graph_token_issuer")?;
    let tenant = [V1_ISSUER, V2_ISSUER]
        .iter()
        .find_map(|(prefix, suffix)| issuer.strip_prefix(prefix)?.strip_suffix(suffix))
        .filter(|tenant| !tenant.is_empty() && !tenant.contains('/'))
        .ok_or_else(|| {
            refuse(format!(
                "token issuer is {}, expected {}{{tenant}}{} or {}{{tenant}}{}",
                quoted(issuer),
                V1_ISSUER.0,
                V1_ISSUER.1,
                V2_ISSUER.0,
                V2_ISSUER.1
            ))
        })?;
    if !tenant_ids.is_empty() && !tenant_ids.iter().any(|id| same_id(id, tenant)) {
        return Err(refuse(format!("token issuer is tenant {}, expected one of the tenant_ids {tenant_ids:?}", quoted(tenant))));
    }
    match claims.get("tid") {
        None => {}
        Some(Value::String(tid)) if same_id(tid, tenant) => {}
        Some(Value::String(tid)) => {
            return Err(refuse(format!("token tid is {} but its issuer is tenant {}", quoted(tid), quoted(tenant))))
        }
        Some(other) => return Err(refuse(format!("token tid claim is {}, not a string", json_kind(other)))),
    }
    Ok((issuer, tenant))
}

/// The token's version, once its caller is Graph change tracking.
fn check_caller(claims: &Map<String, Value>) -> Result<TokenVersion, Rejected> {
    let version = string_claim(claims, "ver", "graph_token_caller")?;
    let (version, claim) = match version {
        "1.0" => (TokenVersion::V1, "appid"),
        "2.0" => (TokenVersion::V2, "azp"),
        other => {
            return Err(Rejected::unauthenticated(
                "graph_token_caller",
                format!("token version (ver) is {}; only 1.0 (caller in appid) and 2.0 (caller in azp) are known", quoted(other)),
            ))
        }
    };
    let caller = string_claim(claims, claim, "graph_token_caller")?;
    if !same_id(caller, GRAPH_CHANGE_TRACKING_APP_ID) {
        return Err(Rejected::unauthenticated(
            "graph_token_caller",
            format!("token {claim} is {}, expected Graph change tracking {GRAPH_CHANGE_TRACKING_APP_ID}", quoted(caller)),
        ));
    }
    Ok(version)
}

#[cfg(test)]
mod tests;
