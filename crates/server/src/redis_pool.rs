//! The shared Redis connection (when `REDIS_URL` is set): one multiplexed connection that
//! connects lazily and reconnects by itself, so a Redis outage never stops the server.

use std::time::{Duration, Instant};

use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// How long any single Redis command may take before it counts as failed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);

/// A lazily connected, self-healing Redis connection.
#[derive(Clone)]
pub struct RedisPool {
    manager: ConnectionManager,
}

impl std::fmt::Debug for RedisPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisPool")
    }
}

impl RedisPool {
    /// Prepares the connection; nothing is sent until the first command. Fails only on a
    /// malformed URL.
    pub fn new(url: &str) -> redis::RedisResult<RedisPool> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        Ok(RedisPool { manager: ConnectionManager::new_lazy_with_config(client, config)? })
    }

    /// A handle for issuing commands (cheap to clone; all handles share one connection).
    pub fn connection(&self) -> ConnectionManager {
        self.manager.clone()
    }

    /// `PING`, returning the round-trip time.
    pub async fn ping(&self) -> redis::RedisResult<Duration> {
        let started = Instant::now();
        let mut conn = self.connection();
        let _: String = traced("PING", redis::cmd("PING").query_async(&mut conn)).await?;
        Ok(started.elapsed())
    }
}

/// Runs one Redis command inside a client span (only inside a sampled trace) and records
/// `redis_command_duration_seconds` and `redis_command_errors_total`.
pub async fn traced<T>(
    command: &'static str,
    call: impl Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    let span = Context::map_current(|parent| {
        parent.span().span_context().is_sampled().then(|| {
            let tracer = crate::telemetry::tracer();
            tracer
                .span_builder(command)
                .with_kind(SpanKind::Client)
                .with_attributes([KeyValue::new("db.system", "redis"), KeyValue::new("db.operation.name", command)])
                .start_with_context(tracer, parent)
        })
    });
    let started = Instant::now();
    let result = call.await;
    metrics::histogram!("redis_command_duration_seconds", "command" => command).record(started.elapsed().as_secs_f64());
    // Looked up on every call, so the error series exists (at zero) from a command's first run.
    let errors = metrics::counter!("redis_command_errors_total", "command" => command);
    if result.is_err() {
        errors.increment(1);
    }
    if let Some(mut span) = span {
        if let Err(err) = &result {
            span.set_status(Status::error(err.category().to_owned()));
        }
        span.end();
    }
    result
}
