//! Response compression (gzip, negotiated from `Accept-Encoding`) for bodies worth compressing.

use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{And, NotForContentType, Predicate, SizeAbove};

/// Bodies smaller than this go out as they are: for a small JSON body, gzip's framing (18
/// bytes) and the compressor's set-up per response cost more than the bytes it saves.
pub const MIN_BYTES: u64 = 1024;

/// What is compressed: bodies of at least [`MIN_BYTES`] (or of unknown size, such as streams),
/// except gRPC, images and server-sent events (tower-http's own exclusions).
type WorthIt = And<And<And<SizeAbove, NotForContentType>, NotForContentType>, NotForContentType>;

/// The compression layer.
pub fn layer() -> CompressionLayer<WorthIt> {
    let worth_it = SizeAbove::new(MIN_BYTES)
        .and(NotForContentType::GRPC)
        .and(NotForContentType::IMAGES)
        .and(NotForContentType::SSE);
    CompressionLayer::new().compress_when(worth_it)
}
