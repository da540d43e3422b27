//! The `pushgate_session` cookie: reading it from `Cookie` headers and writing the
//! `Set-Cookie` values that start and end a dashboard session.

use axum::http::{header, HeaderMap};

use crate::http::sessions::SESSION_LIFETIME;

pub const SESSION_COOKIE: &str = "pushgate_session";

/// The session id the request carries, if any. Several `Cookie` headers (HTTP/2 splits
/// them) and any number of other cookies may come along.
pub fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|value| !value.is_empty())
}

/// Starts a session. `HttpOnly` keeps the id from scripts; `SameSite=Strict` keeps
/// browsers from sending it with requests that other sites start, which is what protects
/// the dashboard's forms (logout) from cross-site request forgery without a CSRF token.
pub fn start(id: &str, secure: bool) -> String {
    format!("{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}", SESSION_LIFETIME.as_secs(), secure_flag(secure))
}

/// Tells the browser to forget the session cookie.
pub fn clear(secure: bool) -> String {
    format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}", secure_flag(secure))
}

fn secure_flag(secure: bool) -> &'static str {
    if secure {
        "; Secure"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn finds_the_session_among_other_cookies_and_headers() {
        let mut headers = HeaderMap::new();
        assert_eq!(session_id(&headers), None);
        headers.append(header::COOKIE, HeaderValue::from_static("theme=dark; other=1"));
        headers.append(header::COOKIE, HeaderValue::from_static("a=b;pushgate_session=abc123 ; c=d"));
        assert_eq!(session_id(&headers), Some("abc123"));

        let mut empty = HeaderMap::new();
        empty.append(header::COOKIE, HeaderValue::from_static("pushgate_session=; broken; =x"));
        assert_eq!(session_id(&empty), None);
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_only_over_https() {
        assert_eq!(start("id1", false), "pushgate_session=id1; HttpOnly; SameSite=Strict; Path=/; Max-Age=43200");
        assert!(start("id1", true).ends_with("; Secure"));
        assert_eq!(clear(false), "pushgate_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    }
}
