//! `OTEL_EXPORTER=console`: one line per finished span on standard output, for development.

use std::io::Write;

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// Prints spans instead of sending them anywhere.
#[derive(Debug)]
pub struct ConsoleExporter;

impl SpanExporter for ConsoleExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut out = std::io::stdout().lock();
        for span in batch {
            let duration = span.end_time.duration_since(span.start_time).unwrap_or_default();
            let attributes: Vec<String> = span.attributes.iter().map(|kv| format!("{}={}", kv.key, kv.value)).collect();
            let _ = writeln!(
                out,
                "span {} trace_id={} span_id={} parent_id={} duration_ms={:.3} status={:?} {}",
                span.name,
                span.span_context.trace_id(),
                span.span_context.span_id(),
                span.parent_span_id,
                duration.as_secs_f64() * 1000.0,
                span.status,
                attributes.join(" ")
            );
        }
        Ok(())
    }
}
