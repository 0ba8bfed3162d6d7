//! The embedded HTTP server: the API's router over hyper, guarded against slow and idle clients.
//! A request's headers must arrive within the header timeout (which also closes a kept-alive
//! connection left idle that long), its body within the body timeout (answered 408), no more
//! than the connection cap are served at once (more wait in the kernel's backlog, and the first
//! wait is logged), and stopping waits at most the shutdown grace for requests in progress.

use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch, Semaphore};
use tokio::task::JoinSet;

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

/// Serves `app` on `listener` until `stop` fires, then drains within the grace.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    guards: Guards,
    mut stop: oneshot::Receiver<()>,
) -> std::io::Result<()> {
    let permits = std::sync::Arc::new(Semaphore::new(guards.max_connections.max(1)));
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
        let (app, mut closed) = (app.clone(), closed.clone());
        connections.spawn(async move {
            let _permit = permit;
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(guards.header_timeout)
                .keep_alive(true);
            // Handlers see the peer's address (failed authentications are limited per address).
            let app =
                tower::ServiceExt::map_request(app, move |mut req: axum::extract::Request<_>| {
                    req.extensions_mut().insert(ConnectInfo(peer));
                    req
                });
            let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
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
