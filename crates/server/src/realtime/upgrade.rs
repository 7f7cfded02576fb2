//! The WebSocket opening handshake (RFC 6455, section 4.2) on an HTTP/1.1 request, taken from
//! hyper here rather than through axum's `WebSocketUpgrade`, so that the socket's framing is
//! the service's to set: large messages go out as fragments, which bounds the write buffer a
//! socket keeps (`docs/adr/0020-websocket-framing.md`).

use std::future::Future;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tungstenite::protocol::{Role, WebSocketConfig};

use crate::error::{Error, Result};

/// An upgraded socket.
pub type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// A valid opening handshake, ready to be accepted. As an extractor it refuses anything else
/// with 400 `BAD_REQUEST`, before the handler runs.
#[derive(Debug)]
pub struct Handshake {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

impl<S: Send + Sync> FromRequestParts<S> for Handshake {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self> {
        let refuse = |why: &str| Err(Error::BadRequest(format!("not a WebSocket handshake: {why}")));
        let headers = &parts.headers;
        if !has_token(headers, header::CONNECTION, "upgrade") {
            return refuse("the Connection header must include `upgrade`");
        }
        if !has_token(headers, header::UPGRADE, "websocket") {
            return refuse("the Upgrade header must be `websocket`");
        }
        if headers.get(header::SEC_WEBSOCKET_VERSION).map(HeaderValue::as_bytes) != Some(b"13") {
            return refuse("Sec-WebSocket-Version must be 13");
        }
        let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY).cloned() else {
            return refuse("Sec-WebSocket-Key is missing");
        };
        let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
            return refuse("this connection cannot be upgraded");
        };
        Ok(Handshake { key, on_upgrade })
    }
}

impl Handshake {
    /// Answers 101 and, once the connection is handed over, runs `serve` on the socket (in a
    /// task of its own) with `config`.
    pub fn accept<F, Fut>(self, config: WebSocketConfig, serve: F) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let accept = tungstenite::handshake::derive_accept_key(self.key.as_bytes());
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            let Ok(upgraded) = on_upgrade.await else { return };
            let socket = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
            serve(socket).await;
        });
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&accept) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        response
    }
}

/// Whether `name`'s comma-separated values include `token` (ASCII case-insensitive).
fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_tokens_are_matched_whole_and_without_case() {
        let mut headers = HeaderMap::new();
        headers.append(header::CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        assert!(has_token(&headers, header::CONNECTION, "upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websockets"));
        assert!(!has_token(&headers, header::UPGRADE, "websocket"));
        assert!(!has_token(&headers, header::SEC_WEBSOCKET_KEY, "x"));
    }

    #[test]
    fn the_accept_key_is_rfc_6455s() {
        // RFC 6455, section 1.3.
        assert_eq!(
            tungstenite::handshake::derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
