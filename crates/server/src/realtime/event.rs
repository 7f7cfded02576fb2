//! What other services publish on channels: `hub.publish("room:ops", Event::Notification {…})`.

use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::channel::ChannelName;
use crate::error::{Error, FieldError, Result};

/// A channel message published by the server (or posted by a client, as `Message`).
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// `message {from_user_id, content}`: chat-like content from an account (or the service).
    Message {
        /// The author; `None` for the service itself.
        from_user_id: Option<Uuid>,
        /// Any JSON value.
        content: Value,
    },
    /// `notification {title, body, data}`: something to show the user.
    Notification {
        /// Short title.
        title: String,
        /// Text.
        body: String,
        /// Anything else the client needs (links, ids).
        data: Value,
    },
    /// `update {resource, action, resource_id, data}`: a resource changed; clients refresh it.
    Update {
        /// The kind of resource (`project`).
        resource: String,
        /// What happened (`created`, `updated`, `deleted`).
        action: String,
        /// Which one.
        resource_id: Option<String>,
        /// The new state, or what changed.
        data: Value,
    },
    /// A message of one of the service's own types (`export.ready`), with its data.
    Service {
        /// The message `type`.
        kind: &'static str,
        /// The message `data`.
        data: Value,
    },
}

impl Event {
    /// The message `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Message { .. } => "message",
            Event::Notification { .. } => "notification",
            Event::Update { .. } => "update",
            Event::Service { kind, .. } => kind,
        }
    }

    /// The message `data`.
    pub fn data(&self) -> Value {
        match self {
            Event::Message { from_user_id, content } => json!({"from_user_id": from_user_id, "content": content}),
            Event::Notification { title, body, data } => json!({"title": title, "body": body, "data": data}),
            Event::Update { resource, action, resource_id, data } => {
                json!({"resource": resource, "action": action, "resource_id": resource_id, "data": data})
            }
            Event::Service { data, .. } => data.clone(),
        }
    }
}

/// Where a published message went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// The channel.
    pub channel: String,
    /// Its offset; `None` when Redis was unreachable and it reached this instance only.
    pub offset: Option<u64>,
}

/// The channel an admin broadcast goes to: `channel`, or `user_id`'s personal channel, or
/// `broadcast` when neither is given.
pub fn target(channel: Option<String>, user_id: Option<Uuid>) -> Result<ChannelName> {
    match (channel, user_id) {
        (Some(_), Some(_)) => Err(Error::Validation(vec![
            FieldError::new("channel", "give channel or user_id, not both"),
            FieldError::new("user_id", "give channel or user_id, not both"),
        ])),
        (Some(channel), None) => {
            ChannelName::parse(&channel).map_err(|why| Error::Validation(vec![FieldError::new("channel", why)]))
        }
        (None, Some(user_id)) => Ok(ChannelName::user(user_id)),
        (None, None) => Ok(ChannelName::broadcast()),
    }
}

#[derive(Deserialize)]
struct NotificationData {
    title: String,
    body: String,
    #[serde(default)]
    data: Value,
}

#[derive(Deserialize)]
struct UpdateData {
    resource: String,
    action: String,
    #[serde(default)]
    resource_id: Option<Value>,
    #[serde(default)]
    data: Value,
}

impl Event {
    /// An event from an admin request: `kind` is `message`, `notification` or `update`, with the
    /// fields each needs in `data`.
    pub fn from_request(kind: &str, data: Value, from_user_id: Uuid) -> Result<Event> {
        let invalid = |err: serde_json::Error| Error::Validation(vec![FieldError::new("data", err.to_string())]);
        match kind {
            "message" => Ok(Event::Message { from_user_id: Some(from_user_id), content: data }),
            "notification" => {
                let NotificationData { title, body, data } = serde_json::from_value(data).map_err(invalid)?;
                Ok(Event::Notification { title, body, data })
            }
            "update" => {
                let UpdateData { resource, action, resource_id, data } =
                    serde_json::from_value(data).map_err(invalid)?;
                let resource_id = resource_id.filter(|id| !id.is_null()).map(|id| match id {
                    Value::String(text) => text,
                    other => other.to_string(),
                });
                Ok(Event::Update { resource, action, resource_id, data })
            }
            _ => Err(Error::Validation(vec![FieldError::new("type", "must be one of message, notification, update")])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_requests_become_events_or_name_the_bad_field() {
        let admin = Uuid::now_v7();
        let event = Event::from_request("notification", json!({"title": "t", "body": "b"}), admin).unwrap();
        assert_eq!(event.data(), json!({"title": "t", "body": "b", "data": null}));
        let update =
            Event::from_request("update", json!({"resource": "project", "action": "deleted", "resource_id": 7}), admin);
        assert_eq!(update.unwrap().data()["resource_id"], "7");
        for (kind, data) in [("notification", json!({"title": "t"})), ("shout", json!({}))] {
            assert!(matches!(Event::from_request(kind, data, admin), Err(Error::Validation(_))));
        }
    }

    #[test]
    fn the_target_is_one_channel() {
        assert_eq!(target(None, None).unwrap().as_str(), "broadcast");
        let user = Uuid::now_v7();
        assert_eq!(target(None, Some(user)).unwrap(), ChannelName::user(user));
        assert!(target(Some("room:a".into()), Some(user)).is_err());
        assert!(target(Some("bad channel".into()), None).is_err());
    }
}
