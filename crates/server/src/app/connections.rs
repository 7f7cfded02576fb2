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
use axum::extract::ConnectInfo;
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
        let mut service = self.service.borrow_mut();
        // The router and every layer are always ready; should one ever not be, a copy waits.
        match service.poll_ready(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(())) => service.call(request),
            Poll::Ready(Err(never)) => match never {},
            Poll::Pending => Box::pin(service.clone().oneshot(request)),
        }
    }
}
