//! The accept loop: each connection served by hyper (HTTP/1.1, with upgrades for WebSockets), each
//! request handed to the layered router in place.
//!
//! `axum::serve` clones the whole layered service for every request (hyper calls a service
//! through `&self`, tower through `&mut self`) and adds the peer address through one more
//! layer. Here each connection owns one copy of the service and calls it directly: requests on
//! a connection arrive one at a time, from the connection's own task.

use std::cell::RefCell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use futures::future::BoxFuture;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::{Service, ServiceExt};

use crate::http;

/// Accepts connections on `listener` until `shutdown` completes; then stops accepting, asks
/// every connection to close after the request it is serving, and returns once all are closed.
pub async fn accept(
    listener: TcpListener,
    service: http::Service,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Every connection holds a receiver: `true` asks it to stop, and the sender sees the last
    // one dropped when the last connection is done.
    let (stop, stopped) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) if is_connection_error(&err) => continue,
                Err(err) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::error!(error = %err, "accepting a connection");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        tokio::spawn(serve_connection(stream, peer, service.clone(), stopped.clone()));
    }
    drop(listener);
    drop(stopped);
    let _ = stop.send(true);
    stop.closed().await;
    Ok(())
}

fn is_connection_error(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(err.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset)
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    service: http::Service,
    mut stop: watch::Receiver<bool>,
) {
    // Responses go out as soon as they are written (a streamed body's later chunks too).
    let _ = stream.set_nodelay(true);
    let connection = Connection { service: RefCell::new(service), peer: ConnectInfo(peer) };
    let mut serving = pin!(http1::Builder::new().serve_connection(TokioIo::new(stream), connection).with_upgrades());
    tokio::select! {
        biased;
        _ = serving.as_mut() => return,
        _ = stop.wait_for(|&stop| stop) => serving.as_mut().graceful_shutdown(),
    }
    let _ = serving.await;
}

/// One connection's service: its own copy of the layered router.
struct Connection {
    service: RefCell<http::Service>,
    peer: ConnectInfo<SocketAddr>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for Connection {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(self.peer);
        // hyper calls this from the connection's task only, never while a call is running, so
        // the borrow is never contended.
        call_in_place(&mut self.service.borrow_mut(), request)
    }
}

/// `request` through `service`, called in place when it is ready (the router and every layer
/// always are); should it ever not be, a copy of it waits for readiness instead.
fn call_in_place(service: &mut http::Service, request: Request) -> BoxFuture<'static, Result<Response, Infallible>> {
    match service.poll_ready(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(())) => service.call(request),
        Poll::Ready(Err(never)) => match never {},
        Poll::Pending => Box::pin(service.clone().oneshot(request)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use tower::util::BoxCloneSyncService;

    use super::*;

    /// A service ready when `ready` says so, counting its calls.
    #[derive(Clone, Default)]
    struct Gate {
        ready: Arc<AtomicBool>,
        waiting: Arc<Mutex<Option<Waker>>>,
        calls: Arc<AtomicUsize>,
    }

    impl Service<Request> for Gate {
        type Response = Response;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Response, Infallible>>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            if self.ready.load(Ordering::SeqCst) {
                return Poll::Ready(Ok(()));
            }
            *self.waiting.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        }

        fn call(&mut self, _: Request) -> Self::Future {
            self.calls.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Ok(StatusCode::NO_CONTENT.into_response()))
        }
    }

    #[tokio::test]
    async fn a_ready_service_is_called_in_place_and_one_not_ready_is_waited_for() {
        let gate = Gate { ready: Arc::new(AtomicBool::new(true)), ..Gate::default() };
        let mut service: http::Service = BoxCloneSyncService::new(gate.clone());
        let answer = call_in_place(&mut service, Request::new(Body::empty()));
        assert_eq!(gate.calls.load(Ordering::SeqCst), 1, "called before the answer is awaited");
        assert_eq!(answer.await.unwrap().status(), StatusCode::NO_CONTENT);

        gate.ready.store(false, Ordering::SeqCst);
        let waiting = tokio::spawn(call_in_place(&mut service, Request::new(Body::empty())));
        tokio::task::yield_now().await;
        assert_eq!(gate.calls.load(Ordering::SeqCst), 1, "not called while not ready");
        gate.ready.store(true, Ordering::SeqCst);
        let waker = gate.waiting.lock().unwrap().take();
        waker.expect("the copy waits for readiness").wake();
        assert_eq!(waiting.await.unwrap().unwrap().status(), StatusCode::NO_CONTENT);
        assert_eq!(gate.calls.load(Ordering::SeqCst), 2);
    }
}
