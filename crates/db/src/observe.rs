//! One span and one latency sample per database call, following the OpenTelemetry database
//! conventions: span `"<OPERATION> <table>"`, `db.system`, `db.operation.name`,
//! `db.collection.name` and `db.query.text` (statements only ever hold `$n` placeholders, so
//! the text carries no bound values).

use std::time::Instant;

use tracing::Instrument;

use crate::{Db, Result};

/// Runs `call` inside a client span for `operation` on `table`, recording
/// `db_query_duration_seconds` (and `db_query_errors_total` on failure).
pub async fn traced<T>(
    db: &Db,
    operation: &'static str,
    table: &'static str,
    statement: &str,
    call: impl Future<Output = Result<T>>,
) -> Result<T> {
    let span = tracing::info_span!(
        "db.query",
        otel.name = %format_args!("{operation} {table}"),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        db.system = db.engine().as_str(),
        db.operation.name = operation,
        db.collection.name = table,
        db.query.text = statement,
    );
    let started = Instant::now();
    let result = call.instrument(span.clone()).await;
    let labels = [("operation", operation), ("table", table)];
    metrics::histogram!("db_query_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    if let Err(err) = &result {
        span.record("otel.status_code", "ERROR");
        if !matches!(err, crate::DbError::Conflict(_)) {
            metrics::counter!("db_query_errors_total", &labels).increment(1);
        }
    }
    result
}
