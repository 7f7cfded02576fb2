//! Response compression (gzip, negotiated from `Accept-Encoding`) for bodies worth compressing.
//!
//! A request without `Accept-Encoding` accepts only the identity coding, so it skips
//! tower-http's negotiation and body wrapper altogether; every other request gets them.

use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::header;
use axum::response::Response;
use futures::FutureExt;
use futures::future::{Either, Map};
use tower::{Layer, Service};
use tower_http::compression::predicate::{And, NotForContentType, Predicate, SizeAbove};
use tower_http::compression::{Compression, CompressionBody, CompressionLayer, ResponseFuture};

/// Bodies smaller than this go out as they are: for a small JSON body, gzip's framing (18
/// bytes) and the compressor's set-up per response cost more than the bytes it saves.
pub const MIN_BYTES: u64 = 1024;

/// What is compressed: bodies of at least [`MIN_BYTES`] (or of unknown size, such as streams),
/// except gRPC, images and server-sent events (tower-http's own exclusions).
type WorthIt = And<And<And<SizeAbove, NotForContentType>, NotForContentType>, NotForContentType>;

/// The compression layer.
#[derive(Clone, Debug)]
pub struct Compress(CompressionLayer<WorthIt>);

/// The layer: [`Compress`].
pub fn layer() -> Compress {
    let worth_it = SizeAbove::new(MIN_BYTES)
        .and(NotForContentType::GRPC)
        .and(NotForContentType::IMAGES)
        .and(NotForContentType::SSE);
    Compress(CompressionLayer::new().compress_when(worth_it))
}

impl<S> Layer<S> for Compress {
    type Service = CompressService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CompressService(self.0.layer(inner))
    }
}

/// The service [`Compress`] makes.
#[derive(Clone)]
pub struct CompressService<S>(Compression<S, WorthIt>);

type Boxed<B, E> = fn(Result<Response<B>, E>) -> Result<Response, E>;

/// The future of a response that went through tower-http's compression.
type Compressed<F, E> = Map<ResponseFuture<F, WorthIt>, Boxed<CompressionBody<Body>, E>>;

fn boxed<B, E>(result: Result<Response<B>, E>) -> Result<Response, E>
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    result.map(|response| response.map(Body::new))
}

impl<S> Service<Request> for CompressService<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<Compressed<S::Future, S::Error>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if request.headers().contains_key(header::ACCEPT_ENCODING) {
            Either::Left(self.0.call(request).map(boxed as Boxed<_, S::Error>))
        } else {
            Either::Right(self.0.get_mut().call(request))
        }
    }
}
