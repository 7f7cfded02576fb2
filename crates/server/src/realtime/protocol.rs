//! The wire format: what clients send, how server messages are encoded, close and error codes.
//!
//! Every server message is one JSON object `{"type", "data", "channel", "timestamp", "offset"?}`;
//! `channel` is `null` for messages that belong to no channel, `offset` is present on channel
//! messages kept in the channel's history.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tungstenite::Utf8Bytes;

/// Close codes the server uses.
pub mod close {
    /// The socket was idle (no pong, no message) for `WS_IDLE_TIMEOUT_SECONDS`.
    pub const IDLE: u16 = 1001;
    /// Policy violation: a sustained message flood, or too many connections for the account.
    pub const POLICY: u16 = 1008;
    /// An inbound message larger than `WS_MAX_MESSAGE_BYTES`.
    pub const TOO_BIG: u16 = 1009;
    /// The server is restarting or stopping; reconnect (to another instance).
    pub const RESTART: u16 = 1012;
    /// The client did not keep up with its messages; reconnect and resume.
    pub const SLOW_CONSUMER: u16 = 1013;
    /// Authentication failed, timed out, or the access token expired.
    pub const UNAUTHENTICATED: u16 = 4001;
    /// The account is deactivated, or the socket's sign-in session was revoked (logout,
    /// password reset).
    pub const FORBIDDEN: u16 = 4003;
}

/// Codes of `error` messages (the socket stays open).
pub mod error_code {
    /// The message is not a JSON object.
    pub const INVALID_JSON: &str = "INVALID_JSON";
    /// The `type` is not one the server knows.
    pub const UNKNOWN_TYPE: &str = "UNKNOWN_TYPE";
    /// A field is missing or has the wrong type.
    pub const INVALID_MESSAGE: &str = "INVALID_MESSAGE";
    /// The channel name is malformed.
    pub const INVALID_CHANNEL: &str = "INVALID_CHANNEL";
    /// The channel policy refuses the operation.
    pub const FORBIDDEN: &str = "FORBIDDEN";
    /// Posting to or leaving a channel the socket is not subscribed to.
    pub const NOT_SUBSCRIBED: &str = "NOT_SUBSCRIBED";
    /// `WS_MAX_CHANNELS_PER_CONNECTION` reached.
    pub const TOO_MANY_CHANNELS: &str = "TOO_MANY_CHANNELS";
    /// The account joined more rooms than `RATE_LIMIT_ROOMS` allows; retry later.
    pub const TOO_MANY_ROOMS: &str = "TOO_MANY_ROOMS";
    /// `WS_MAX_CONNECTIONS_PER_USER` reached (the socket is then closed with 1008).
    pub const TOO_MANY_CONNECTIONS: &str = "TOO_MANY_CONNECTIONS";
    /// More than `WS_MESSAGES_PER_SECOND`; the message was dropped.
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    /// A re-authentication token was refused; the current one stays in force until it expires.
    pub const AUTHENTICATION_ERROR: &str = "AUTHENTICATION_ERROR";
    /// A dependency failed; retry.
    pub const UNAVAILABLE: &str = "UNAVAILABLE";
}

/// Where a client stands in a channel's stream: the last offset it saw, in which epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The last offset received.
    pub offset: u64,
    /// The channel's epoch when it was received; a different epoch means history was lost.
    pub epoch: String,
}

/// A message from the client.
#[derive(Debug, PartialEq)]
pub enum ClientMessage {
    /// Answered with `pong`.
    Ping,
    /// First-message authentication, or a fresh token before the current one expires.
    Auth {
        /// An access token.
        token: String,
    },
    /// Join a channel, optionally resuming after `since`.
    Subscribe {
        /// The channel name.
        channel: String,
        /// The last position seen before a reconnect.
        since: Option<Position>,
    },
    /// Leave a channel.
    Unsubscribe {
        /// The channel name.
        channel: String,
    },
    /// Post to a channel the socket is subscribed to.
    Message {
        /// The channel name.
        channel: String,
        /// Any JSON value; delivered as `content`.
        data: Value,
    },
}

/// Why an inbound text is not a valid client message: `(error code, explanation)`.
pub type Malformed = (&'static str, String);

impl ClientMessage {
    /// Parses one inbound text frame.
    pub fn parse(text: &str) -> Result<ClientMessage, Malformed> {
        let value: Value = serde_json::from_str(text)
            .map_err(|_| (error_code::INVALID_JSON, "messages must be JSON objects".to_owned()))?;
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .ok_or((error_code::INVALID_MESSAGE, "a message needs a string `type`".to_owned()))?;
        let invalid = |err: serde_json::Error| (error_code::INVALID_MESSAGE, format!("invalid `{kind}`: {err}"));
        match kind {
            "ping" => Ok(ClientMessage::Ping),
            "auth" => {
                let body: AuthBody = serde_json::from_value(value.clone()).map_err(invalid)?;
                Ok(ClientMessage::Auth { token: body.token })
            }
            "subscribe" => {
                let body: SubscribeBody = serde_json::from_value(value.clone()).map_err(invalid)?;
                Ok(ClientMessage::Subscribe { channel: body.channel, since: body.since })
            }
            "unsubscribe" => {
                let body: ChannelBody = serde_json::from_value(value.clone()).map_err(invalid)?;
                Ok(ClientMessage::Unsubscribe { channel: body.channel })
            }
            "message" => {
                let body: PostBody = serde_json::from_value(value.clone()).map_err(invalid)?;
                Ok(ClientMessage::Message { channel: body.channel, data: body.data })
            }
            other => Err((error_code::UNKNOWN_TYPE, format!("unknown message type {other:?}"))),
        }
    }
}

#[derive(Deserialize)]
struct AuthBody {
    token: String,
}

#[derive(Deserialize)]
struct SubscribeBody {
    channel: String,
    #[serde(default)]
    since: Option<Position>,
}

#[derive(Deserialize)]
struct ChannelBody {
    channel: String,
}

#[derive(Deserialize)]
struct PostBody {
    channel: String,
    #[serde(default)]
    data: Value,
}

/// One encoded server message on a channel, shared by every socket it goes to.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The channel.
    pub channel: Arc<str>,
    /// Its offset in the channel's history; `None` for presence events (and messages sent
    /// while Redis was unreachable), which are not kept.
    pub offset: Option<u64>,
    /// When it was published (milliseconds since the Unix epoch).
    pub sent_at_ms: i64,
    /// The encoded message.
    pub text: Utf8Bytes,
}

impl Delivery {
    /// Reads the routing fields back from an encoded channel message (as relayed through Redis).
    pub fn decode(text: String) -> Option<Delivery> {
        #[derive(Deserialize)]
        struct Header {
            channel: String,
            offset: Option<u64>,
            timestamp: DateTime<Utc>,
        }
        let header: Header = serde_json::from_str(&text).ok()?;
        Some(Delivery {
            channel: header.channel.into(),
            offset: header.offset,
            sent_at_ms: header.timestamp.timestamp_millis(),
            text: Utf8Bytes::from(text),
        })
    }
}

#[derive(Serialize)]
struct Encoded<'a, D: Serialize> {
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
    #[serde(rename = "type")]
    kind: &'a str,
    data: &'a D,
    channel: Option<&'a str>,
    timestamp: String,
}

/// Encodes a server message stamped `at`.
pub fn encode_at<D: Serialize>(
    kind: &str,
    data: &D,
    channel: Option<&str>,
    offset: Option<u64>,
    at: DateTime<Utc>,
) -> String {
    let timestamp = at.to_rfc3339_opts(SecondsFormat::Micros, true);
    serde_json::to_string(&Encoded { offset, kind, data, channel, timestamp }).unwrap_or_default()
}

/// Encodes a server message stamped now.
pub fn encode<D: Serialize>(kind: &str, data: &D, channel: Option<&str>) -> String {
    encode_at(kind, data, channel, None, Utc::now())
}

/// An `error` message.
pub fn error(code: &str, message: &str, channel: Option<&str>) -> String {
    encode("error", &serde_json::json!({"code": code, "message": message}), channel)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn client_messages_parse_and_failures_are_classified() {
        assert_eq!(ClientMessage::parse(r#"{"type":"ping"}"#), Ok(ClientMessage::Ping));
        let subscribe =
            ClientMessage::parse(r#"{"type":"subscribe","channel":"room:a","since":{"offset":3,"epoch":"e"}}"#);
        assert_eq!(
            subscribe,
            Ok(ClientMessage::Subscribe {
                channel: "room:a".into(),
                since: Some(Position { offset: 3, epoch: "e".into() })
            })
        );
        assert_eq!(ClientMessage::parse("nope").unwrap_err().0, error_code::INVALID_JSON);
        assert_eq!(ClientMessage::parse(r#"{"type":"dance"}"#).unwrap_err().0, error_code::UNKNOWN_TYPE);
        assert_eq!(ClientMessage::parse(r#"{"type":"subscribe"}"#).unwrap_err().0, error_code::INVALID_MESSAGE);
        assert_eq!(ClientMessage::parse(r#"[1]"#).unwrap_err().0, error_code::INVALID_MESSAGE);
    }

    #[test]
    fn encoded_messages_have_the_common_shape_and_decode_back() {
        let text = encode_at("message", &json!({"content": 1}), Some("room:a"), Some(7), Utc::now());
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["type"], "message");
        assert_eq!(value["offset"], 7);
        assert!(value["timestamp"].as_str().unwrap().ends_with('Z'));
        let delivery = Delivery::decode(text).unwrap();
        assert_eq!((&*delivery.channel, delivery.offset), ("room:a", Some(7)));
        let pong: Value = serde_json::from_str(&encode("pong", &json!({}), None)).unwrap();
        assert_eq!(pong["channel"], Value::Null);
        assert!(pong.get("offset").is_none());
    }
}
