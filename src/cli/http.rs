//! The embedded HTTP server: the API's router over hyper, guarded against slow and idle clients.
//! A request's headers must arrive within the header timeout (which also closes a kept-alive
//! connection left idle that long), its body within the body timeout (answered 408), no more
//! than the connection cap are served at once (more wait in the kernel's backlog, and the first
//! wait is logged), and stopping waits at most the shutdown grace for requests in progress.
//! With [`Tls`], connections are HTTPS, whose handshake must end within the header timeout.
//! A request answered without its body being read (a refusal: a bad key, a rate limit) has the
//! rest of its body read before the answer goes out ([`drain_unread`]).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use http_body::{Frame, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch, Semaphore};
use tokio::task::JoinSet;

use super::tls::Tls;

/// How the server treats its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guards {
    /// How long a client may take to send a request's headers, and the most a kept-alive
    /// connection stays idle.
    pub header_timeout: Duration,
    /// The most connections served at once.
    pub max_connections: usize,
    /// How long stopping waits for requests in progress.
    pub shutdown_grace: Duration,
}

/// The most of an unread body read before an early answer goes out; a larger body is not read,
/// and its connection closes after the answer.
const DRAIN_LIMIT: usize = 2 * 1024 * 1024;
/// The longest an early answer waits for the rest of its body.
const DRAIN_WAIT: Duration = Duration::from_secs(10);

/// A request body that the handler and [`drain_unread`] share.
struct Shared(Arc<Mutex<Body>>);

impl Shared {
    fn body(&self) -> std::sync::MutexGuard<'_, Body> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl http_body::Body for Shared {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut *self.body()).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body().is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body().size_hint()
    }
}

/// Reads what the handler left of the request body (up to [`DRAIN_LIMIT`], within
/// [`DRAIN_WAIT`]) before the answer goes out. A connection closed with unread bytes is reset by
/// the kernel, and a client still sending its body (as SDKs do before they read) can then lose
/// the answer (a 401, a 429) and see only "connection reset".
async fn drain_unread(req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > DRAIN_LIMIT) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let shared = Arc::new(Mutex::new(body));
    let proxy = Body::new(Shared(Arc::clone(&shared)));
    let response = next.run(Request::from_parts(parts, proxy)).await;
    // A body too slow (408) or too large (413) is not waited for: its connection closes.
    if matches!(response.status().as_u16(), 408 | 413) {
        return response;
    }
    let rest = axum::body::to_bytes(Body::new(Shared(shared)), DRAIN_LIMIT);
    let _ = tokio::time::timeout(DRAIN_WAIT, rest).await;
    response
}

/// Serves `app` on `listener` (HTTPS with `tls`) until `stop` fires, then drains within the
/// grace.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    guards: Guards,
    tls: Option<Arc<Tls>>,
    mut stop: oneshot::Receiver<()>,
) -> std::io::Result<()> {
    let app = app.layer(axum::middleware::from_fn(drain_unread));
    let permits = Arc::new(Semaphore::new(guards.max_connections.max(1)));
    let (closing, closed) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut at_cap = false;
    loop {
        while connections.try_join_next().is_some() {}
        if permits.available_permits() == 0 && !at_cap {
            tracing::warn!(
                max_connections = guards.max_connections,
                "Connection cap reached; new connections wait."
            );
        }
        at_cap = permits.available_permits() == 0;
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = &mut stop => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!(error = %e, "Accept failed.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let (app, closed, tls) = (app.clone(), closed.clone(), tls.clone());
        connections.spawn(async move {
            let _permit = permit;
            let Some(tls) = tls else {
                return connection(TokioIo::new(stream), app, peer, guards, closed).await;
            };
            match tokio::time::timeout(guards.header_timeout, tls.acceptor().accept(stream)).await {
                Ok(Ok(stream)) => connection(TokioIo::new(stream), app, peer, guards, closed).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed."),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out."),
            }
        });
    }
    drop(listener);
    let _ = closing.send(true);
    let open = connections.len();
    let drained = tokio::time::timeout(guards.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            of = open,
            "Shutdown grace passed; closing the rest."
        );
        connections.abort_all();
    }
    Ok(())
}

/// Serves one connection's requests until it ends, or until `closed` says the server stops.
async fn connection<I>(
    io: I,
    app: Router,
    peer: std::net::SocketAddr,
    guards: Guards,
    mut closed: watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(guards.header_timeout)
        .keep_alive(true);
    // Handlers see the peer's address (failed authentications are limited per address).
    let app = tower::ServiceExt::map_request(app, move |mut req: axum::extract::Request<_>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req
    });
    let conn = http.serve_connection(io, TowerToHyperService::new(app));
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = closed.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "Connection ended with an error.");
    }
}
