//! The HTTP side of the metrics: `GET /metrics` (admin only) and the middleware that
//! counts and times every request by its route template.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::auth::Admin;
use super::error::ApiError;
use super::AppState;
use crate::metrics::Metrics;
use crate::model::{now, ConnectionFilter};

/// The content type of the Prometheus text exposition format.
const EXPOSITION_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `route` label of a request no route matched.
const UNMATCHED_ROUTE: &str = "unmatched";

/// `GET /metrics`: this server's counters and every connection's series, evaluated now.
pub async fn scrape(_: Admin, State(state): State<AppState>) -> Result<Response, ApiError> {
    let connections = state.store.list_connections(&ConnectionFilter::default()).await?;
    let mut destinations = Vec::new();
    for d in state.store.list_destinations().await? {
        let backlog = state.store.backlog(d.position, &d.filter).await?;
        destinations.push((d, backlog));
    }
    let at = now();
    let mut text = state.metrics.render(&connections, at);
    text.push_str(&crate::metrics::render_destinations(&destinations, at));
    let mut response = text.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(EXPOSITION_CONTENT_TYPE));
    Ok(response)
}

/// Counts and times one request. It runs after routing, so the matched route template is
/// known; the raw path is never a label (ids in it would make a series per connection).
pub async fn track_requests(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().map_or(UNMATCHED_ROUTE, MatchedPath::as_str).to_owned();
    let method = method_label(request.method());
    let response = next.run(request).await;
    metrics.request(&route, method, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

/// The standard methods by name; any other (clients may invent them) as `other`, so
/// invented methods cannot add series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invented_methods_share_one_label() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let invented = Method::from_bytes(b"FROBNICATE").expect("a valid token");
        assert_eq!(method_label(&invented), "other");
    }
}
