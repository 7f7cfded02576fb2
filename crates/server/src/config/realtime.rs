//! Settings of the realtime WebSocket endpoint (`WS_*`): liveness, limits, history, presence.

use std::time::Duration;

use super::parse::{self, Vars};

/// Realtime (WebSocket) settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealtimeSettings {
    /// `WS_PING_INTERVAL_SECONDS`: how often the server pings each socket.
    pub ping_interval: Duration,
    /// `WS_IDLE_TIMEOUT_SECONDS`: a socket that sends nothing (not even a pong) for this long
    /// is dropped. Must exceed the ping interval.
    pub idle_timeout: Duration,
    /// `WS_AUTH_TIMEOUT_SECONDS`: how long an unauthenticated socket may wait before its first
    /// `{"type":"auth"}` message.
    pub auth_timeout: Duration,
    /// `WS_TICKET_TTL_SECONDS`: lifetime of a single-use connection ticket.
    pub ticket_ttl: Duration,
    /// `WS_MAX_CONNECTIONS_PER_USER`: open sockets per account (across instances with Redis).
    pub max_connections_per_user: usize,
    /// `WS_MAX_CHANNELS_PER_CONNECTION`: subscriptions per socket (the personal channel counts).
    pub max_channels_per_connection: usize,
    /// `WS_MAX_MESSAGE_BYTES`: a larger inbound message closes the socket with 1009.
    pub max_message_bytes: usize,
    /// `WS_MESSAGES_PER_SECOND`: inbound messages per socket; more get an error, a sustained
    /// flood closes with 1008.
    pub messages_per_second: u32,
    /// `WS_OUTBOUND_QUEUE`: messages waiting for one socket; a socket that falls this far behind
    /// is disconnected with 1013.
    pub outbound_queue: usize,
    /// `WS_HISTORY_SIZE`: messages kept per channel for resuming.
    pub history_size: usize,
    /// `WS_HISTORY_MAX_BYTES`: encoded bytes kept per channel for resuming (oldest messages
    /// go first; a larger message is delivered but not kept).
    pub history_max_bytes: usize,
    /// `WS_HISTORY_TOTAL_BYTES`: bytes of history this instance keeps in process over every
    /// channel; past it, the history of the channels published to least recently is dropped.
    pub history_total_bytes: usize,
    /// `WS_HISTORY_TTL_SECONDS`: how long a message stays in a channel's history.
    pub history_ttl: Duration,
    /// `WS_PRESENCE_TTL_SECONDS`: presence left by an instance that stops refreshing it (one
    /// that died) expires after this long.
    pub presence_ttl: Duration,
    /// `WS_REVOCATION_POLL_MILLISECONDS`: how often, while sockets are open, the instance reads
    /// the revocation feed (logouts, deactivations, role changes) from the database.
    pub revocation_poll: Duration,
    /// `WS_REVOCATION_LOOKBACK_SECONDS`: how far each read of the feed reaches back before the
    /// previous one, so that clock skew between instances (and the CLI) loses no change.
    pub revocation_lookback: Duration,
}

impl Default for RealtimeSettings {
    fn default() -> Self {
        RealtimeSettings {
            ping_interval: Duration::from_secs(25),
            idle_timeout: Duration::from_secs(60),
            auth_timeout: Duration::from_secs(10),
            ticket_ttl: Duration::from_secs(30),
            max_connections_per_user: 10,
            max_channels_per_connection: 128,
            max_message_bytes: 64 * 1024,
            messages_per_second: 20,
            outbound_queue: 256,
            history_size: 100,
            history_max_bytes: 1 << 20,
            history_total_bytes: 64 << 20,
            history_ttl: Duration::from_secs(300),
            presence_ttl: Duration::from_secs(90),
            revocation_poll: Duration::from_millis(250),
            revocation_lookback: Duration::from_secs(5),
        }
    }
}

impl RealtimeSettings {
    /// Every setting as `(VARIABLE, value)`.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        vec![
            ("WS_PING_INTERVAL_SECONDS", self.ping_interval.as_secs().to_string()),
            ("WS_IDLE_TIMEOUT_SECONDS", self.idle_timeout.as_secs().to_string()),
            ("WS_AUTH_TIMEOUT_SECONDS", self.auth_timeout.as_secs().to_string()),
            ("WS_TICKET_TTL_SECONDS", self.ticket_ttl.as_secs().to_string()),
            ("WS_MAX_CONNECTIONS_PER_USER", self.max_connections_per_user.to_string()),
            ("WS_MAX_CHANNELS_PER_CONNECTION", self.max_channels_per_connection.to_string()),
            ("WS_MAX_MESSAGE_BYTES", self.max_message_bytes.to_string()),
            ("WS_MESSAGES_PER_SECOND", self.messages_per_second.to_string()),
            ("WS_OUTBOUND_QUEUE", self.outbound_queue.to_string()),
            ("WS_HISTORY_SIZE", self.history_size.to_string()),
            ("WS_HISTORY_MAX_BYTES", self.history_max_bytes.to_string()),
            ("WS_HISTORY_TOTAL_BYTES", self.history_total_bytes.to_string()),
            ("WS_HISTORY_TTL_SECONDS", self.history_ttl.as_secs().to_string()),
            ("WS_PRESENCE_TTL_SECONDS", self.presence_ttl.as_secs().to_string()),
            ("WS_REVOCATION_POLL_MILLISECONDS", self.revocation_poll.as_millis().to_string()),
            ("WS_REVOCATION_LOOKBACK_SECONDS", self.revocation_lookback.as_secs().to_string()),
        ]
    }
}

pub(super) fn settings(vars: &mut Vars<'_>) -> RealtimeSettings {
    let defaults = RealtimeSettings::default();
    let mut seconds = |name: &str, default: Duration, min: u64, max: u64| {
        let text = default.as_secs().to_string();
        Duration::from_secs(vars.parse(name, &text, |v| parse::number(v, min, max)).unwrap_or(default.as_secs()))
    };
    let ping_interval = seconds("WS_PING_INTERVAL_SECONDS", defaults.ping_interval, 1, 3600);
    let idle_timeout = seconds("WS_IDLE_TIMEOUT_SECONDS", defaults.idle_timeout, 2, 7200);
    let auth_timeout = seconds("WS_AUTH_TIMEOUT_SECONDS", defaults.auth_timeout, 1, 300);
    let ticket_ttl = seconds("WS_TICKET_TTL_SECONDS", defaults.ticket_ttl, 1, 3600);
    let history_ttl = seconds("WS_HISTORY_TTL_SECONDS", defaults.history_ttl, 1, 86_400);
    let presence_ttl = seconds("WS_PRESENCE_TTL_SECONDS", defaults.presence_ttl, 3, 3600);
    let revocation_lookback = seconds("WS_REVOCATION_LOOKBACK_SECONDS", defaults.revocation_lookback, 0, 300);
    let poll_ms = defaults.revocation_poll.as_millis() as u64;
    let revocation_poll = Duration::from_millis(
        vars.parse("WS_REVOCATION_POLL_MILLISECONDS", &poll_ms.to_string(), |v| parse::number(v, 50, 1000))
            .unwrap_or(poll_ms),
    );
    let mut count = |name: &str, default: usize, min: u64, max: u64| {
        vars.parse(name, &default.to_string(), |v| parse::number(v, min, max)).map_or(default, |n| n as usize)
    };
    let settings = RealtimeSettings {
        ping_interval,
        idle_timeout,
        auth_timeout,
        ticket_ttl,
        max_connections_per_user: count("WS_MAX_CONNECTIONS_PER_USER", defaults.max_connections_per_user, 1, 10_000),
        max_channels_per_connection: count(
            "WS_MAX_CHANNELS_PER_CONNECTION",
            defaults.max_channels_per_connection,
            1,
            10_000,
        ),
        max_message_bytes: count("WS_MAX_MESSAGE_BYTES", defaults.max_message_bytes, 256, 16 << 20),
        messages_per_second: count("WS_MESSAGES_PER_SECOND", defaults.messages_per_second as usize, 1, 100_000) as u32,
        outbound_queue: count("WS_OUTBOUND_QUEUE", defaults.outbound_queue, 1, 1 << 20),
        history_size: count("WS_HISTORY_SIZE", defaults.history_size, 0, 100_000),
        history_max_bytes: count("WS_HISTORY_MAX_BYTES", defaults.history_max_bytes, 0, 1 << 30),
        history_total_bytes: count("WS_HISTORY_TOTAL_BYTES", defaults.history_total_bytes, 0, 1 << 40),
        history_ttl,
        presence_ttl,
        revocation_poll,
        revocation_lookback,
    };
    if settings.idle_timeout <= settings.ping_interval {
        vars.problem("WS_IDLE_TIMEOUT_SECONDS", "must be longer than WS_PING_INTERVAL_SECONDS");
    }
    if settings.history_total_bytes < settings.history_max_bytes {
        vars.problem("WS_HISTORY_TOTAL_BYTES", "must be at least WS_HISTORY_MAX_BYTES");
    }
    settings
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> (RealtimeSettings, Vec<String>) {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let lookup = |name: &str| map.get(name).cloned();
        let mut vars = Vars::new(&lookup);
        let settings = settings(&mut vars);
        (settings, vars.into_problems())
    }

    #[test]
    fn defaults_match_the_documented_values() {
        let (settings, problems) = parse(&[]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(settings, RealtimeSettings::default());
        assert_eq!(settings.max_message_bytes, 65_536);
    }

    #[test]
    fn values_are_read_and_checked() {
        let (settings, problems) = parse(&[("WS_PING_INTERVAL_SECONDS", "2"), ("WS_OUTBOUND_QUEUE", "16")]);
        assert!(problems.is_empty());
        assert_eq!((settings.ping_interval.as_secs(), settings.outbound_queue), (2, 16));
        let (_, problems) = parse(&[("WS_PING_INTERVAL_SECONDS", "60"), ("WS_MESSAGES_PER_SECOND", "0")]);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("WS_IDLE_TIMEOUT_SECONDS:")));
    }

    #[test]
    fn history_bounds_and_the_revocation_poll_are_checked() {
        let (settings, problems) =
            parse(&[("WS_HISTORY_MAX_BYTES", "4096"), ("WS_REVOCATION_POLL_MILLISECONDS", "100")]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!((settings.history_max_bytes, settings.revocation_poll), (4096, Duration::from_millis(100)));
        let (_, problems) = parse(&[
            ("WS_HISTORY_MAX_BYTES", "4096"),
            ("WS_HISTORY_TOTAL_BYTES", "1024"),
            ("WS_REVOCATION_POLL_MILLISECONDS", "5000"),
        ]);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("WS_HISTORY_TOTAL_BYTES:")));
        assert!(problems.iter().any(|p| p.starts_with("WS_REVOCATION_POLL_MILLISECONDS:")));
    }
}
