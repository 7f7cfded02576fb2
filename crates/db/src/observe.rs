//! One span and one latency sample per database call, following the OpenTelemetry database
//! conventions: span `"<OPERATION> <table>"`, `db.system`, `db.operation.name`,
//! `db.collection.name` and `db.query.text` (statements only ever hold `$n` placeholders, so
//! the text carries no bound values).
//!
//! Spans go straight to the OpenTelemetry tracer installed by the server, as children of the
//! request being served. Outside a sampled trace (background work, tracing off) no span is made.

use std::sync::LazyLock;
use std::time::Instant;

use opentelemetry::global::{self, BoxedTracer};
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};

use crate::{Engine, Result};

/// Looked up on first use, which only happens inside a sampled trace, so after the server has
/// installed its tracer provider.
static TRACER: LazyLock<BoxedTracer> = LazyLock::new(|| global::tracer("omnistack"));

/// Runs `call` inside a client span for `operation` on `table`, recording
/// `db_query_duration_seconds` (and `db_query_errors_total` on failure).
pub async fn traced<T>(
    engine: Engine,
    operation: &'static str,
    table: &'static str,
    statement: &str,
    call: impl Future<Output = Result<T>>,
) -> Result<T> {
    let span = Context::map_current(|parent| {
        parent.span().span_context().is_sampled().then(|| {
            TRACER
                .span_builder(format!("{operation} {table}"))
                .with_kind(SpanKind::Client)
                .with_attributes([
                    KeyValue::new("db.system", engine.as_str()),
                    KeyValue::new("db.operation.name", operation),
                    KeyValue::new("db.collection.name", table),
                    KeyValue::new("db.query.text", statement.to_owned()),
                ])
                .start_with_context(&*TRACER, parent)
        })
    });
    let started = Instant::now();
    let result = call.await;
    let labels = [("operation", operation), ("table", table)];
    metrics::histogram!("db_query_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    // Looked up on every call, so the error series exists (at zero) from a statement's first run.
    let errors = metrics::counter!("db_query_errors_total", &labels);
    if let Err(err) = &result
        && !matches!(err, crate::DbError::Conflict(_))
    {
        errors.increment(1);
    }
    if let Some(mut span) = span {
        if let Err(err) = &result {
            let kind = if matches!(err, crate::DbError::Conflict(_)) { "unique violation" } else { "database error" };
            span.set_status(Status::error(kind));
        }
        span.end();
    }
    result
}
