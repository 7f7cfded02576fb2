//! Logs, traces and metrics.
//!
//! - Logs: pretty lines in development, one JSON object per line with `LOG_FORMAT=json`
//!   (carrying `trace_id` and `span_id` inside a traced request).
//! - Traces: OpenTelemetry spans exported in batches, off the request path, to an OTLP
//!   collector (`OTEL_*`); nothing is exported without an endpoint.
//! - Metrics: Prometheus, see [`metrics`].
//!
//! Add an attribute to the current request's span from any handler or service in one line:
//! `tracing::Span::current().set_attribute("project.id", id.to_string());`
//! (with `tracing_opentelemetry::OpenTelemetrySpanExt` in scope).

mod console;
mod json_log;
pub mod metrics;
pub mod outbound;
mod process;
pub mod samplers;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanExporter};
use tracing::Subscriber;
use tracing_subscriber::filter::{EnvFilter, Targets, dynamic_filter_fn, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

use crate::config::{Config, LogFormat, OtlpProtocol, TelemetrySettings, TraceExport};

/// Noisy dependencies stay at `warn` unless `RUST_LOG` says otherwise.
const QUIET_DEPENDENCIES: &str = "sqlx=warn,hyper=warn,hyper_util=warn,h2=warn,tower_http=warn,redis=warn";

/// Span names that only make sense inside a trace: alone they are dropped, not exported.
const CHILD_ONLY_SPANS: [&str; 2] = ["db.query", "redis.command"];

/// Owns the tracer provider; [`Telemetry::shutdown`] flushes the spans still queued.
#[must_use = "dropping it skips the final flush"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports what is queued and stops the exporter.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(err) = provider.shutdown()
        {
            tracing::warn!(error = %err, "flushing spans at shutdown failed");
        }
    }
}

/// Logging only (one-shot commands): installs the global subscriber when none is installed.
pub fn init_logging(config: &Config) {
    let _ = tracing_subscriber::registry().with(log_layer(config)).try_init();
}

/// Logging plus span export. Must run inside the Tokio runtime (the exporter lives on it).
pub fn init(config: &Config) -> Telemetry {
    let provider = match config.telemetry.export.clone() {
        None => None,
        Some(export) => match tracer_provider(&config.telemetry, export) {
            Ok(provider) => Some(provider),
            Err(err) => {
                eprintln!("omnistack: tracing export disabled: {err}");
                None
            }
        },
    };
    let otel = provider.as_ref().map(|provider| {
        // Spans only: log events stay in the log rather than being copied into span events.
        let spans = Targets::new().with_target("omnistack", tracing::Level::INFO);
        let spans_only = filter_fn(|meta| meta.is_span());
        let child_only =
            dynamic_filter_fn(|meta, cx| !CHILD_ONLY_SPANS.contains(&meta.name()) || cx.lookup_current().is_some());
        // Only the attributes the conventions ask for: no code location, thread or busy/idle
        // timing on every span (each costs time on the request path).
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("omnistack"))
            .with_location(false)
            .with_threads(false)
            .with_level(false)
            .with_tracked_inactivity(false)
            // Nothing reads the ambient OpenTelemetry context (outbound calls take the span's
            // context explicitly), so entering a span on every poll need not activate one.
            .with_context_activation(false)
            .with_filter(spans)
            .with_filter(spans_only)
            .with_filter(child_only)
    });
    let _ = tracing_subscriber::registry().with(log_layer(config)).with(otel).try_init();
    if config.telemetry.metrics_enabled {
        metrics::handle();
    }
    process::mark_start();
    Telemetry { provider }
}

fn log_layer<S>(config: &Config) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let directives = if config.log_filter.contains('=') {
        config.log_filter.clone()
    } else {
        format!("{},{QUIET_DEPENDENCIES}", config.log_filter)
    };
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    match config.log_format {
        LogFormat::Json => fmt::layer()
            .fmt_fields(fmt::format::JsonFields::new())
            .event_format(json_log::JsonLines)
            .with_filter(filter)
            .boxed(),
        LogFormat::Pretty => fmt::layer().with_filter(filter).boxed(),
    }
}

fn tracer_provider(settings: &TelemetrySettings, export: TraceExport) -> anyhow::Result<SdkTracerProvider> {
    Ok(match export {
        TraceExport::Console => provider_with(settings, console::ConsoleExporter),
        TraceExport::Otlp { endpoint, protocol: OtlpProtocol::HttpProtobuf, headers } => {
            let headers = headers.into_iter().map(|(k, v)| (k, v.expose().to_owned())).collect();
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(endpoint)
                .with_headers(headers)
                .with_timeout(std::time::Duration::from_secs(10))
                .build()?;
            provider_with(settings, exporter)
        }
        TraceExport::Otlp { endpoint, protocol: OtlpProtocol::Grpc, headers } => {
            let mut map = axum::http::HeaderMap::new();
            for (key, value) in headers {
                map.insert(axum::http::HeaderName::try_from(key)?, value.expose().parse()?);
            }
            let metadata = opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(map);
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .with_metadata(metadata)
                .with_timeout(std::time::Duration::from_secs(10))
                .build()?;
            provider_with(settings, exporter)
        }
    })
}

fn provider_with(settings: &TelemetrySettings, exporter: impl SpanExporter + 'static) -> SdkTracerProvider {
    // Requests are sampled at the edge (`http::observe`) before any span exists; what reaches
    // the SDK is kept. Other root spans (WebSocket connections) follow the same parent rule.
    let sampler = if settings.sampler.parent_based {
        Sampler::ParentBased(Box::new(Sampler::AlwaysOn))
    } else {
        Sampler::AlwaysOn
    };
    let resource = Resource::builder_empty()
        .with_service_name(settings.service_name.clone())
        .with_attributes(
            settings
                .resource_attributes
                .iter()
                .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
                .chain([KeyValue::new("service.version", env!("CARGO_PKG_VERSION"))]),
        )
        .build();
    SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(exporter, Tokio).build())
        .with_sampler(sampler)
        .with_resource(resource)
        .build()
}
