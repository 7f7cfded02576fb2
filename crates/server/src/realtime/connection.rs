//! One socket from upgrade to close. The socket is split: the stream feeds the [`Session`],
//! the sink is written only here. Channel messages arrive through the socket's bounded mailbox;
//! a write that cannot finish within `WS_IDLE_TIMEOUT_SECONDS`, or an eviction by the
//! fan-out (queue full), ends the socket without touching anyone else's: it leaves the hub at
//! once, and its close frame, queued behind all the client has not read, then has as long as
//! any write to go out (only on shutdown does the hub wait for the frame). A change of the
//! socket's standing (`realtime::revocation`) closes it with 4003 or re-applies the channel
//! policy to its subscriptions.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until, timeout};
use tungstenite::Message;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};

use super::admission::{self, Admitted};
use super::channel::{Caller, ChannelKind, ChannelName};
use super::engine::until_stopped;
use super::hub::Hub;
use super::protocol::{self, ClientMessage, Delivery, close, error_code};
use super::registry::{Attached, Standing};
use super::session::{Outbound, Session, SessionLimits, Step};
use super::stats::Counters;
use super::upgrade::Socket as WebSocket;
use crate::error::Error;
use crate::rate_limit::LimitClass;
use crate::state::AppState;

/// How long a close frame may take to go out on a socket that never carried channel messages
/// (or on shutdown), and how long the client then has to answer it.
const CLOSE_SEND: Duration = Duration::from_secs(5);
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// Channel messages written in one flush.
const BATCH: usize = 64;
/// Text messages longer than this go out as fragments (RFC 6455, section 5.4) of at most this
/// many bytes, split between characters: the socket's write buffer keeps the capacity of the
/// longest frame it ever wrote, so a socket that was once sent a long message (a big room's
/// member list) does not keep that much for the rest of its life.
pub const FRAGMENT_BYTES: usize = 2 * 1024;

/// Why the socket ends.
enum End {
    /// The peer is gone (or cannot be written to): nothing more to send.
    Gone,
    /// Close with this code and reason.
    Close(u16, &'static str),
}

/// What woke the socket's loop.
enum Wake {
    End(End),
    Frame(Option<Result<Message, tungstenite::Error>>),
    Mail,
    Ping,
}

struct Socket {
    sink: SplitSink<WebSocket, Message>,
    stream: SplitStream<WebSocket>,
}

/// Runs an upgraded socket to its end. `admitted` is `None` when the client must authenticate
/// with its first message.
///
/// The socket's task lives as long as the socket, and a future is as large as its largest
/// state: authentication, registering with the hub, subscribing, every client request and the
/// close all wait on the database or Redis, so they run in futures of their own (boxed, freed
/// when done). What an idle socket keeps is only the loop's own state (see
/// `docs/adr/0009-websocket-memory.md`).
pub async fn serve(state: AppState, socket: WebSocket, admitted: Option<Admitted>) {
    let (sink, stream) = socket.split();
    let socket = Socket { sink, stream };
    let Some(mut driver) = Box::pin(open(&state, socket, admitted)).await else { return };
    let end = driver.run().await;
    Box::pin(driver.finish(end)).await;
}

/// Authenticates (unless `admitted`) and registers the socket with the hub; `None` when it
/// ended meanwhile (closed here, with the reason).
async fn open(state: &AppState, mut socket: Socket, admitted: Option<Admitted>) -> Option<Driver<'_>> {
    let hub = state.realtime.clone();
    let mut stopping = hub.stopping();
    let admitted = match admitted {
        Some(admitted) => admitted,
        None => match first_message(state, &mut socket, &mut stopping).await {
            Ok(admitted) => admitted,
            Err(End::Close(code, reason)) => {
                socket.close(code, reason, CLOSE_SEND).await;
                return None;
            }
            Err(End::Gone) => return None,
        },
    };
    // Only these outlive the admission: the account row itself is dropped here.
    let caller = Caller { user_id: admitted.user.user.id, role: admitted.user.role };
    let (session_id, expires_at) = (admitted.user.session_id, admitted.expires_at);
    drop(admitted);
    crate::telemetry::set_attribute("user.id", caller.user_id.to_string());
    let Some(attached) = hub.attach(caller, session_id).await else {
        let limit = hub.settings().max_connections_per_user;
        let text = protocol::error(
            error_code::TOO_MANY_CONNECTIONS,
            &format!("at most {limit} connections per account"),
            None,
        );
        if socket.sink.send(Message::Text(text.into())).await.is_ok() {
            socket.close(close::POLICY, "too many connections", CLOSE_SEND).await;
        }
        return None;
    };
    let settings = hub.settings();
    let limits = SessionLimits {
        max_channels: settings.max_channels_per_connection,
        messages_per_second: settings.messages_per_second,
    };
    let session = Session::new(caller, attached.id, expires_at, limits, hub.policy(), std::time::Instant::now());
    let mut driver = Driver { state, hub, socket, session, attached, stopping };
    if let Err(end) = driver.greet().await {
        driver.finish(end).await;
        return None;
    }
    Some(driver)
}

/// Waits (at most `WS_AUTH_TIMEOUT_SECONDS`) for `{"type":"auth","token"}`.
async fn first_message(
    state: &AppState,
    socket: &mut Socket,
    stopping: &mut watch::Receiver<bool>,
) -> Result<Admitted, End> {
    let deadline = Instant::now() + state.realtime.settings().auth_timeout;
    let text = loop {
        tokio::select! {
            () = until_stopped(stopping) => return Err(End::Close(close::RESTART, "server restarting")),
            () = sleep_until(deadline) => return Err(End::Close(close::UNAUTHENTICATED, "authentication timeout")),
            frame = socket.stream.next() => match frame {
                Some(Ok(Message::Text(text))) => break text,
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Binary(_))) => break tungstenite::Utf8Bytes::from_static(""),
                Some(Ok(Message::Close(_)) | Err(_)) | None => return Err(End::Gone),
            },
        }
    };
    let Ok(ClientMessage::Auth { token }) = ClientMessage::parse(&text) else {
        return Err(End::Close(close::UNAUTHENTICATED, "authenticate first: {\"type\":\"auth\",\"token\":\"...\"}"));
    };
    match admission::with_token(state, &token).await {
        Ok(admitted) => Ok(admitted),
        Err(Error::Authorization(_)) => Err(End::Close(close::FORBIDDEN, "account deactivated")),
        Err(_) => Err(End::Close(close::UNAUTHENTICATED, "authentication failed")),
    }
}

struct Driver<'a> {
    state: &'a AppState,
    hub: Hub,
    socket: Socket,
    session: Session,
    attached: Attached,
    stopping: watch::Receiver<bool>,
}

impl Driver<'_> {
    /// Sends `connected` and subscribes the socket to its account's personal channel.
    async fn greet(&mut self) -> Result<(), End> {
        let caller = self.session.caller();
        self.send(self.session.connected()).await?;
        let personal = ChannelName::user(caller.user_id);
        let subscription = self.hub.subscribe(self.attached.id, caller, &personal, false).await.ok_or(End::Gone)?;
        self.session.track(personal, subscription.snapshot.offset);
        Ok(())
    }

    /// Unregisters the socket and closes it (see the module's documentation for the order).
    async fn finish(self, end: End) {
        let Driver { hub, mut socket, attached, .. } = self;
        let id = attached.id;
        drop(attached);
        match end {
            End::Close(close::RESTART, reason) => {
                // On shutdown the hub is drained only once every socket has had its 1012.
                socket.close(close::RESTART, reason, CLOSE_SEND).await;
                hub.detach(id).await;
            }
            End::Close(code, reason) => {
                if code == close::SLOW_CONSUMER {
                    Counters::add(&hub.inner.counters.slow_consumers, 1);
                }
                // The close frame queues behind everything the client has not read yet (for a
                // slow consumer, megabytes): the socket leaves the hub first, so nothing waits
                // for it and the account may reconnect, then the frame gets as long as any write.
                hub.detach(id).await;
                socket.close(code, reason, hub.settings().idle_timeout).await;
            }
            End::Gone => hub.detach(id).await,
        }
    }

    /// The socket's loop, until it ends. Everything that waits on something other than the
    /// socket, its queue and its timers runs boxed (see [`serve`]).
    async fn run(&mut self) -> End {
        let (ping_every, idle_timeout) = (self.hub.settings().ping_interval, self.hub.settings().idle_timeout);
        let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
        let idle = tokio::time::sleep(idle_timeout);
        let mut expires_at = self.session.expires_at();
        let expiry = tokio::time::sleep_until(deadline(expires_at));
        tokio::pin!(idle, expiry);
        loop {
            let wake = tokio::select! {
                biased;
                () = until_stopped(&mut self.stopping) => Wake::End(End::Close(close::RESTART, "server restarting")),
                () = self.attached.mailbox.evicted() => Wake::End(slow_consumer()),
                () = &mut expiry => Wake::End(End::Close(close::UNAUTHENTICATED, "token expired")),
                () = &mut idle => Wake::End(End::Close(close::IDLE, "idle timeout")),
                frame = self.socket.stream.next() => Wake::Frame(frame),
                () = self.attached.mailbox.ready() => Wake::Mail,
                _ = ping.tick() => Wake::Ping,
            };
            let result = match wake {
                Wake::End(end) => Err(end),
                Wake::Frame(frame) => {
                    idle.as_mut().reset(Instant::now() + idle_timeout);
                    Box::pin(self.on_frame(frame)).await
                }
                Wake::Mail => self.on_mail().await,
                Wake::Ping => self.write(vec![Message::Ping(Default::default())]).await,
            };
            if let Err(end) = result {
                return end;
            }
            if self.session.expires_at() != expires_at {
                expires_at = self.session.expires_at();
                expiry.as_mut().reset(deadline(expires_at));
            }
        }
    }

    async fn on_frame(&mut self, frame: Option<Result<Message, tungstenite::Error>>) -> Result<(), End> {
        match frame {
            Some(Ok(Message::Text(text))) => {
                Counters::add(&self.hub.inner.counters.messages_in, 1);
                let refused = self.session.refused();
                let step = self.session.on_text(&text, std::time::Instant::now());
                let dropped = self.session.refused() - refused;
                Counters::add(&self.hub.inner.counters.rate_limited, dropped);
                if dropped == 0 {
                    // `websocket_messages`: what the account's socket sent that was not dropped.
                    let user_id = self.session.caller().user_id;
                    self.state.usage.count(user_id, crate::usage::metric::WEBSOCKET_MESSAGES, 1, &[]);
                }
                self.execute(step).await
            }
            Some(Ok(Message::Binary(_))) => {
                Counters::add(&self.hub.inner.counters.messages_in, 1);
                let text = protocol::error(error_code::INVALID_JSON, "messages are JSON text, not binary", None);
                self.send(text).await
            }
            // Pings are answered by the protocol layer; raw frames are never read.
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Ok(()),
            Some(Ok(Message::Close(_))) | None => Err(End::Gone),
            Some(Err(tungstenite::Error::Capacity(_))) => Err(End::Close(close::TOO_BIG, "message too big")),
            Some(Err(_)) => Err(End::Gone),
        }
    }

    async fn execute(&mut self, step: Step) -> Result<(), End> {
        let caller = self.session.caller();
        let id = self.attached.id;
        match step {
            Step::Reply(text) => self.send(text).await,
            Step::Subscribe { channel, since } => {
                if let Some(refusal) = self.room_limited(&channel).await {
                    return self.send(refusal).await;
                }
                let subscription = self.hub.subscribe(id, caller, &channel, since.is_some()).await.ok_or(End::Gone)?;
                let outbound =
                    self.session.subscribed(channel, &subscription.snapshot, since.as_ref(), subscription.members);
                let messages = outbound
                    .into_iter()
                    .map(|out| match out {
                        Outbound::Text(text) => Message::Text(text.into()),
                        Outbound::Shared(delivery) => Message::Text(delivery.text.clone()),
                    })
                    .collect();
                self.write(messages).await
            }
            Step::Unsubscribe(channel) => {
                self.hub.unsubscribe(id, caller, &channel).await;
                self.send(self.session.unsubscribed(&channel)).await
            }
            Step::Publish { channel, content } => {
                let data = json!({"from_user_id": caller.user_id, "content": content});
                self.hub.publish_on(&channel, "message", &data).await;
                Ok(())
            }
            Step::Authenticate(token) => match admission::with_token(self.state, &token).await {
                Ok(admitted) => {
                    let fresh = Caller { user_id: admitted.user.user.id, role: admitted.user.role };
                    match self.session.reauthenticated(fresh, admitted.expires_at) {
                        Ok(()) => {
                            self.hub.reauthenticated(id, fresh, admitted.user.session_id);
                            Ok(())
                        }
                        Err(text) => self.send(text).await,
                    }
                }
                Err(Error::Authorization(_)) => Err(End::Close(close::FORBIDDEN, "account deactivated")),
                Err(err) => self.send(protocol::error(error_code::AUTHENTICATION_ERROR, &err.to_string(), None)).await,
            },
            Step::Close { code, reason } => Err(End::Close(code, reason)),
        }
    }

    /// Handles a changed standing, then writes the channel messages taken with it (one batch;
    /// the mailbox wakes the loop again for the rest).
    async fn on_mail(&mut self) -> Result<(), End> {
        let mail = self.attached.mailbox.take(BATCH);
        if let Some(standing) = mail.standing {
            Box::pin(self.on_standing(standing)).await?;
        }
        self.deliver(mail.deliveries).await
    }

    /// The revocation feed changed this socket's standing: close it when revoked, else drop the
    /// subscriptions (and posting rights) the new role no longer allows, telling the client.
    async fn on_standing(&mut self, standing: Standing) -> Result<(), End> {
        if let Some(revoked) = standing.revoked {
            return Err(End::Close(close::FORBIDDEN, revoked.reason()));
        }
        if standing.role == self.session.caller().role {
            return Ok(());
        }
        let before = self.session.caller();
        let ended = self.session.role_changed(standing.role);
        let mut messages = Vec::with_capacity(ended.len());
        for (channel, text) in ended {
            self.hub.unsubscribe(self.attached.id, before, &channel).await;
            messages.push(Message::Text(text.into()));
        }
        if messages.is_empty() { Ok(()) } else { self.write(messages).await }
    }

    /// Joining a room the socket is not in counts against the account's `rooms` rate
    /// (`RATE_LIMIT_ROOMS`); over it, the error message to send instead of subscribing.
    async fn room_limited(&self, channel: &ChannelName) -> Option<String> {
        let room = matches!(channel.kind(), ChannelKind::Room(_) | ChannelKind::Other(_));
        if !room || self.session.is_subscribed(channel) {
            return None;
        }
        let decision = self.state.limiter.check(LimitClass::Rooms, &self.session.caller().user_id.to_string()).await;
        if decision.allowed {
            return None;
        }
        let rate = self.state.limiter.rate(LimitClass::Rooms);
        let message = format!("at most {rate} room joins per account; retry in {} s", decision.retry_after);
        Some(protocol::error(error_code::TOO_MANY_ROOMS, &message, Some(channel.as_str())))
    }

    /// Writes queued channel messages the session accepts (not duplicates of a replay), in one
    /// flush.
    async fn deliver(&mut self, deliveries: Vec<Arc<Delivery>>) -> Result<(), End> {
        let batch: Vec<Message> = deliveries
            .iter()
            .filter(|delivery| self.session.accept(delivery))
            .map(|delivery| Message::Text(delivery.text.clone()))
            .collect();
        if batch.is_empty() { Ok(()) } else { self.write(batch).await }
    }

    async fn send(&mut self, text: String) -> Result<(), End> {
        self.write(vec![Message::Text(text.into())]).await
    }

    /// Writes and flushes, unless the socket is evicted meanwhile or the write takes longer
    /// than `WS_IDLE_TIMEOUT_SECONDS`.
    async fn write(&mut self, messages: Vec<Message>) -> Result<(), End> {
        let count = messages.iter().filter(|m| matches!(m, Message::Text(_))).count() as u64;
        let limit = self.hub.settings().idle_timeout;
        let sink = &mut self.socket.sink;
        let work = async move {
            for message in messages {
                match message {
                    Message::Text(text) => {
                        for frame in frames(text) {
                            sink.feed(frame).await?;
                        }
                    }
                    other => sink.feed(other).await?,
                }
            }
            sink.flush().await
        };
        let mailbox = &self.attached.mailbox;
        tokio::select! {
            biased;
            written = timeout(limit, work) => match written {
                Ok(Ok(())) => {
                    Counters::add(&self.hub.inner.counters.messages_out, count);
                    Ok(())
                }
                _ => Err(End::Gone),
            },
            () = mailbox.evicted() => Err(slow_consumer()),
        }
    }
}

impl Socket {
    /// Sends a close frame (giving up after `send_within`: it goes out only once the client
    /// has read what was written before it), then gives the client a moment to answer it so
    /// the TCP connection ends cleanly (and the frame is not lost to a reset).
    async fn close(&mut self, code: u16, reason: &'static str, send_within: Duration) {
        let frame = Message::Close(Some(CloseFrame { code: CloseCode::from(code), reason: reason.into() }));
        if !matches!(timeout(send_within, self.sink.send(frame)).await, Ok(Ok(()))) {
            return;
        }
        let _ = timeout(CLOSE_WAIT, async { while let Some(Ok(_)) = self.stream.next().await {} }).await;
    }
}

fn slow_consumer() -> End {
    End::Close(close::SLOW_CONSUMER, "too slow: reconnect and resume")
}

/// When a token expiring at `expires_at` (Unix seconds) stops being good, on the Tokio clock.
fn deadline(expires_at: Option<i64>) -> Instant {
    let now = Instant::now();
    match expires_at {
        Some(at) => {
            let left = at.saturating_sub(chrono::Utc::now().timestamp()).max(0);
            now + Duration::from_secs(left as u64)
        }
        None => now + Duration::from_secs(100 * 365 * 86_400),
    }
}

/// `text` as one frame, or as fragments of at most [`FRAGMENT_BYTES`] when longer.
fn frames(text: tungstenite::Utf8Bytes) -> impl Iterator<Item = Message> {
    let mut whole = Some(text);
    let mut start = 0;
    std::iter::from_fn(move || {
        let text = whole.as_ref()?;
        if start == 0 && text.len() <= FRAGMENT_BYTES {
            return whole.take().map(Message::Text);
        }
        let mut end = (start + FRAGMENT_BYTES).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let opcode = OpCode::Data(if start == 0 { Data::Text } else { Data::Continue });
        let last = end == text.len();
        let payload = tungstenite::Bytes::from(text.clone()).slice(start..end);
        start = end;
        if last {
            whole = None;
        }
        Some(Message::Frame(Frame::message(payload, opcode, last)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<(OpCode, bool, String)> {
        frames(text.to_owned().into())
            .map(|message| match message {
                Message::Text(text) => (OpCode::Data(Data::Text), true, text.to_string()),
                Message::Frame(frame) => {
                    let header = frame.header().clone();
                    (header.opcode, header.is_final, String::from_utf8(frame.into_payload().to_vec()).unwrap())
                }
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn short_messages_go_out_whole() {
        let text = "x".repeat(FRAGMENT_BYTES);
        assert_eq!(split(&text), vec![(OpCode::Data(Data::Text), true, text)]);
    }

    #[test]
    fn long_messages_go_out_in_fragments_split_between_characters() {
        // Three-byte characters never line up with the fragment size.
        let text: String = "€".repeat(FRAGMENT_BYTES) + "end";
        let frames = split(&text);
        assert!(frames.len() >= 3);
        assert_eq!(frames[0].0, OpCode::Data(Data::Text));
        assert!(frames[1..].iter().all(|(opcode, _, _)| *opcode == OpCode::Data(Data::Continue)));
        assert!(frames.iter().rev().skip(1).all(|(_, last, _)| !last) && frames.last().unwrap().1);
        assert!(frames.iter().all(|(_, _, part)| part.len() <= FRAGMENT_BYTES && !part.is_empty()));
        assert_eq!(frames.into_iter().map(|(_, _, part)| part).collect::<String>(), text);
    }
}
