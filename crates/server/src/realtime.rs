//! Realtime: WebSockets at `/api/v{1,2}/app/ws`, channels with presence and resumable history,
//! across instances through Redis (or in process without it).
//!
//! | module | what |
//! |---|---|
//! | [`hub`] | [`Hub`]: this instance's sockets, publishing, shutdown, counters |
//! | `engine` | the hub's state and fan-out, shared with its background work (modules below the hub import it, never the hub) |
//! | [`event`] | [`Event`]: what services publish; admin broadcast validation |
//! | [`protocol`] | the wire format, close codes, error codes |
//! | [`channel`] | channel names and the [`ChannelPolicy`] (who may subscribe and post) |
//! | [`session`] | the per-socket protocol as a pure state machine |
//! | [`connection`] | the socket driver: upgrade to close |
//! | [`admission`] | token, first-message and ticket authentication |
//! | `registry` | local subscriptions and the non-blocking fan-out |
//! | `mailbox` | a socket's queue of channel messages, its standing, its eviction |
//! | `shared`, `bridge` | state in Redis, and the pub/sub link between instances |
//! | [`history`] | offsets, epochs, replay |
//! | `presence`, `heartbeat` | who is in a room; refreshing and sweeping presence |
//! | `revocation` | logout, deactivation and role changes applied to open sockets |
//!
//! Other services publish with [`Hub::publish`] (`state.realtime.publish("room:ops", event)`)
//! or [`Hub::publish_to_user`]. Protocol, channels, close codes and limits are documented in
//! `docs/API.md` ("Realtime"); scaling and Redis in `docs/OPERATIONS.md`.

pub mod admission;
mod bridge;
pub mod channel;
pub mod connection;
mod engine;
pub mod event;
mod heartbeat;
pub mod history;
pub mod hub;
mod mailbox;
mod presence;
pub mod protocol;
mod rate_limit;
mod registry;
mod revocation;
pub mod session;
mod shared;
mod stats;
mod status;
mod tickets;
pub mod upgrade;

pub use channel::{Caller, ChannelKind, ChannelName, ChannelPolicy, DefaultPolicy};
pub use event::{Event, Published};
pub use hub::Hub;
pub use stats::HubStats;
pub use status::{ConnectionStatus, GlobalStatus, InstanceStatus, Status};
pub use tickets::TicketClaims;
