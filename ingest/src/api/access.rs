//! The access log: one line per HTTP request, target `cauce::access`, at `info`, with the
//! method, the route (its pattern, so no user id from a path), the status, the app, the items
//! accepted and rejected (batch routes) and the latency. Never a key, a header or a payload.
//! `CAUCE_LOG=info,cauce::access=off` turns it off. The latency also goes to the
//! `cauce_request_duration_seconds` histogram, by route pattern and status.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Extensions;
use axum::middleware::Next;
use axum::response::Response;

/// The app that called, for the access line: `log` puts an empty one in each request's
/// extensions, and the [`Caller`](super::Caller) extractor fills it in (a response cannot
/// carry it: a refusal by the extractor has none of the handler's).
#[derive(Debug, Clone, Default)]
pub struct AccessNote(Arc<Mutex<Option<String>>>);

impl AccessNote {
    /// Notes the app that called, if the request has a note.
    pub fn app(extensions: &Extensions, app_id: &str) {
        if let Some(note) = extensions.get::<AccessNote>() {
            *note.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(app_id.to_owned());
        }
    }
}

/// The items a batch had accepted and rejected: a batch route's response carries it out to
/// `log`.
#[derive(Debug, Clone, Copy)]
pub struct Items {
    /// Items accepted.
    pub accepted: usize,
    /// Items rejected.
    pub rejected: usize,
}

/// The route pattern a request matched, carried out in its response to `log`.
#[derive(Debug, Clone)]
struct Route(MatchedPath);

/// Inside the router (a route layer, where the matched route is known): passes it out.
pub(super) async fn mark_route(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    let mut res = next.run(req).await;
    if let Some(route) = route {
        res.extensions_mut().insert(Route(route));
    }
    res
}

/// Around the router: times the request and writes its line.
pub(super) async fn log(mut req: Request, next: Next) -> Response {
    let note = AccessNote::default();
    req.extensions_mut().insert(note.clone());
    let method = req.method().clone();
    let start = Instant::now();
    let res = next.run(req).await;
    let latency_ms = start.elapsed().as_secs_f64() * 1e3;
    let route = res.extensions().get::<Route>().map(|r| r.0.as_str());
    let app_id = note.0.lock().unwrap_or_else(|p| p.into_inner()).take();
    let items = res.extensions().get::<Items>();
    let status = res.status().as_u16();
    metrics::histogram!(
        cauce_store::metrics::REQUEST_DURATION,
        "route" => route.unwrap_or("unmatched").to_owned(),
        "status" => status.to_string(),
    )
    .record(latency_ms / 1e3);
    tracing::info!(
        target: "cauce::access",
        method = %method,
        route = route.unwrap_or("-"),
        status,
        app_id = app_id.as_deref().unwrap_or("-"),
        accepted = items.map(|i| i.accepted),
        rejected = items.map(|i| i.rejected),
        latency_ms = (latency_ms * 1000.0).round() / 1000.0,
        "Request."
    );
    res
}
