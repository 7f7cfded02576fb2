//! A small WebSocket client for the realtime tests.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for a message it expects.
const WAIT: Duration = Duration::from_secs(5);

/// A connected WebSocket that speaks JSON text.
pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// Opens `url` expecting the handshake to be refused; returns the status and the JSON body.
pub async fn refused_handshake(url: &str) -> (u16, Value) {
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => panic!("the handshake to {url} succeeded"),
        Err(tungstenite::Error::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
            (response.status().as_u16(), json)
        }
        Err(other) => panic!("unexpected handshake error: {other}"),
    }
}

impl WsClient {
    /// Connects (panics if the handshake fails).
    pub async fn connect(url: &str) -> WsClient {
        let (stream, _) =
            tokio_tungstenite::connect_async(url).await.unwrap_or_else(|err| panic!("connect {url}: {err}"));
        WsClient { stream }
    }

    /// Connects and waits for `connected`; returns its `data`.
    pub async fn connected(url: &str) -> (WsClient, Value) {
        let mut client = WsClient::connect(url).await;
        let connected = client.next_of_type("connected").await;
        (client, connected["data"].clone())
    }

    /// Sends a JSON message.
    pub async fn send(&mut self, value: Value) {
        self.send_text(&value.to_string()).await;
    }

    /// Sends a text frame as is.
    pub async fn send_text(&mut self, text: &str) {
        self.stream.send(Message::text(text)).await.expect("send a message");
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.stream.send(Message::binary(bytes)).await.expect("send a binary message");
    }

    /// The next JSON message within `wait`; `None` on timeout. Panics on a close.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.stream.next()).await.ok()?;
            match frame {
                Some(Ok(Message::Text(text))) => return Some(serde_json::from_str(&text).expect("server sends JSON")),
                Some(Ok(Message::Close(frame))) => panic!("closed while waiting for a message: {frame:?}"),
                Some(Ok(_)) => continue,
                Some(Err(err)) => panic!("socket error while waiting for a message: {err}"),
                None => panic!("socket ended while waiting for a message"),
            }
        }
    }

    /// The next JSON message (waits up to 5 s).
    pub async fn next(&mut self) -> Value {
        self.next_within(WAIT).await.expect("a message within 5 s")
    }

    /// Skips messages until one of type `kind` (within 5 s).
    pub async fn next_of_type(&mut self, kind: &str) -> Value {
        self.next_of_type_within(kind, WAIT).await
    }

    /// Skips messages until one of type `kind` (within `wait`).
    pub async fn next_of_type_within(&mut self, kind: &str, wait: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = self.next_within(left).await.unwrap_or_else(|| panic!("no `{kind}` within {wait:?}"));
            if message["type"] == kind {
                return message;
            }
        }
    }

    /// Sends `subscribe` and waits for `subscribed`.
    pub async fn subscribe(&mut self, channel: &str) -> Value {
        self.send(serde_json::json!({"type": "subscribe", "channel": channel})).await;
        self.next_of_type("subscribed").await
    }

    /// Reads until the server closes (within `wait`) and returns the close frame; messages
    /// before it are skipped. `None` if the connection ended without a close frame.
    pub async fn closed_within(&mut self, wait: Duration) -> Option<CloseFrame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => panic!("the server did not close within {wait:?}"),
                Ok(Some(Ok(Message::Close(frame)))) => return frame,
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_)) | None) => return None,
            }
        }
    }

    /// The close code the server sent within `wait` (panics without a close frame).
    pub async fn close_code(&mut self, wait: Duration) -> u16 {
        let frame = self.closed_within(wait).await.expect("a close frame");
        u16::from(frame.code)
    }

    /// Closes from the client side.
    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}
