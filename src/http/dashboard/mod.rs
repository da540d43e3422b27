//! The HTML health dashboard at `GET /`, one page per connection at
//! `GET /connections/{id}`, and the login: `POST /login` trades a valid admin token for a
//! session cookie, `POST /logout` ends the session. The pages also accept the admin token
//! as `Authorization: Bearer`, like `/v1`.
//!
//! Every page is rendered on the server and works without JavaScript; the answers forbid
//! scripts, framing and caching outright (`Content-Security-Policy`, `Cache-Control`).

mod arrivals;
mod connection_page;
mod cookie;
mod guidance;
mod page;
mod timeline;
mod when;

use askama::Template;
use axum::extract::rejection::{FormRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;

use super::auth::bearer_token;
use super::error::ApiError;
use super::AppState;
use crate::model::{now, ConnectionFilter};
use connection_page::{ConnectionPage, Inputs};
use page::{DashboardPage, LoginPage, MessagePage};

/// Login forms carry one token; nothing larger is read.
pub const LOGIN_BODY_LIMIT: usize = 4 * 1024;

/// Who is asking for the dashboard.
enum Viewer {
    Admin,
    /// Presented an admin token that is not accepted.
    WrongToken,
    /// Presented nothing usable: no token, and no live session (a stale cookie after a
    /// restart or expiry lands here, so it simply sees the login form again).
    Anonymous,
}

fn viewer(state: &AppState, headers: &HeaderMap) -> Viewer {
    let bearer = bearer_token(headers);
    if bearer.is_some_and(|t| state.admin_tokens.accepts(t)) {
        return Viewer::Admin;
    }
    if cookie::session_id(headers).is_some_and(|id| state.sessions.is_valid(id)) {
        return Viewer::Admin;
    }
    if bearer.is_some() {
        Viewer::WrongToken
    } else {
        Viewer::Anonymous
    }
}

/// `GET /`: the dashboard for admins, the login form for everyone else.
pub async fn show(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match viewer(&state, &headers) {
        Viewer::Admin => match dashboard(&state).await {
            Ok(response) => response,
            Err(e) => e.into_response(),
        },
        Viewer::WrongToken => login_form(StatusCode::UNAUTHORIZED, Some("That admin token is not valid.")),
        Viewer::Anonymous => login_form(StatusCode::OK, None),
    }
}

async fn dashboard(state: &AppState) -> Result<Response, ApiError> {
    let connections = state.store.list_connections(&ConnectionFilter::default()).await?;
    let mut destinations = Vec::new();
    for d in state.store.list_destinations().await? {
        let backlog = state.store.backlog(d.position, &d.filter).await?;
        destinations.push((d, backlog));
    }
    let page = DashboardPage::new(&connections, &destinations, now());
    Ok(html(StatusCode::OK, page.render()))
}

/// `GET /connections/{id}`: one connection's page for admins. Anyone else is sent to the
/// login form first (a wrong bearer token is refused), before the id is even looked at,
/// so the answer tells nothing about which connections exist.
pub async fn show_connection(State(state): State<AppState>, headers: HeaderMap, id: Result<Path<String>, PathRejection>) -> Response {
    match viewer(&state, &headers) {
        Viewer::Admin => {}
        Viewer::WrongToken => return login_form(StatusCode::UNAUTHORIZED, Some("That admin token is not valid.")),
        Viewer::Anonymous => return redirect("/", None),
    }
    let id = match id {
        Ok(Path(text)) => match uuid::Uuid::parse_str(&text) {
            Ok(id) => id,
            Err(_) => {
                return message(StatusCode::BAD_REQUEST, "Not a connection id", &format!("“{text}” is not a connection id (a UUID)."))
            }
        },
        Err(_) => return message(StatusCode::BAD_REQUEST, "Not a connection id", "This address does not hold a connection id."),
    };
    match connection(&state, id).await {
        Ok(Some(response)) => response,
        Ok(None) => {
            message(StatusCode::NOT_FOUND, "No such connection", &format!("There is no connection {id}: it may have been deleted."))
        }
        Err(e) => e.into_response(),
    }
}

async fn connection(state: &AppState, id: uuid::Uuid) -> Result<Option<Response>, ApiError> {
    let Some(c) = state.store.get_connection(id).await? else { return Ok(None) };
    let at = now();
    let history = state.store.list_history(id).await?;
    let rejections = state.store.list_rejections(Some(id), connection_page::REJECTIONS_SHOWN).await?;
    let arrivals = state.store.hourly_arrivals(id, connection_page::arrivals_from(at), arrivals::HOURS).await?;
    let inputs = Inputs { connection: &c, history: &history, rejections: &rejections, arrivals: &arrivals };
    Ok(Some(html(StatusCode::OK, ConnectionPage::new(inputs, &state.public_url, at).render())))
}

fn message(status: StatusCode, title: &str, text: &str) -> Response {
    html(status, MessagePage { title, text }.render())
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

/// `POST /login`: checks the token exactly as `/v1` does (hash, constant-time compare)
/// and on success starts a session. No CSRF token is needed: the session cookie is
/// `SameSite=Strict`, and a forged login could only log a browser in with a token the
/// forger already holds.
pub async fn login(State(state): State<AppState>, form: Result<Form<LoginForm>, FormRejection>) -> Response {
    let Ok(Form(form)) = form else {
        return login_form(StatusCode::BAD_REQUEST, Some("The login form could not be read; please try again."));
    };
    let token = form.token.trim();
    if token.is_empty() || !state.admin_tokens.accepts(token) {
        return login_form(StatusCode::UNAUTHORIZED, Some("That admin token is not valid."));
    }
    let id = state.sessions.create();
    tracing::info!("dashboard login");
    redirect("/", Some(&cookie::start(&id, serves_https(&state))))
}

/// `POST /logout`: ends the session the cookie names and clears the cookie.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(id) = cookie::session_id(&headers) {
        state.sessions.revoke(id);
    }
    redirect("/", Some(&cookie::clear(serves_https(&state))))
}

/// Cookies are marked `Secure` when browsers reach us over HTTPS.
fn serves_https(state: &AppState) -> bool {
    state.public_url.get(..8).is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

fn login_form(status: StatusCode, error: Option<&str>) -> Response {
    html(status, LoginPage { error }.render())
}

/// A `303 See Other` to `location`, setting a cookie when given.
fn redirect(location: &'static str, set_cookie: Option<&str>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, HeaderValue::from_static(location));
    match set_cookie.map(HeaderValue::from_str) {
        None => {}
        Some(Ok(value)) => {
            headers.insert(header::SET_COOKIE, value);
        }
        // The cookie is built from base64 text only; should it ever not be a valid
        // header, answering without it is safer than failing the request.
        Some(Err(e)) => tracing::error!(error = %e, "session cookie is not a valid header value"),
    }
    no_store(headers);
    response
}

fn html(status: StatusCode, rendered: Result<String, askama::Error>) -> Response {
    let body = match rendered {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, "dashboard template failed to render");
            return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error").into_response();
        }
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    // No scripts at all, inline styles only, forms post only to us, never framed (so the
    // buttons cannot be clickjacked).
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    no_store(headers);
    response
}

/// The pages show tenants and connections: nothing in between may keep a copy.
fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}
