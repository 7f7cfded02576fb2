//! Logs, traces and metrics.
//!
//! - Logs: pretty lines in development, one JSON object per line with `LOG_FORMAT=json`
//!   (carrying `trace_id` and `span_id` inside a traced request).
//! - Traces: OpenTelemetry spans exported in batches, off the request path, to an OTLP
//!   collector (`OTEL_*`); nothing is exported without an endpoint. Spans are made with the
//!   OpenTelemetry SDK directly and travel in the OpenTelemetry context of the request
//!   (`tracing` carries log events only).
//! - Metrics: Prometheus, see [`metrics`]; the dashboard's request counts, see [`requests`].
//!
//! Add an attribute to the current request's span from any handler or service in one line:
//! `telemetry::set_attribute("project.id", id.to_string());`

use std::sync::LazyLock;
use std::time::Duration;

mod console;
mod json_log;
pub mod metrics;
mod otlp;
pub mod outbound;
mod process;
pub mod request_id;
pub mod requests;

use opentelemetry::global::{self, BoxedTracer};
use opentelemetry::trace::TraceContextExt;
use opentelemetry::{Context, KeyValue, Value};
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanExporter};
use tracing::Subscriber;
use tracing_subscriber::filter::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

use crate::config::{Config, LogFormat, OtlpProtocol, TelemetrySettings, TraceExport};

/// Noisy dependencies stay at `warn` unless `RUST_LOG` says otherwise.
const QUIET_DEPENDENCIES: &str = "sqlx=warn,hyper=warn,hyper_util=warn,h2=warn,tower_http=warn,redis=warn";

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
    if let Some(provider) = &provider {
        global::set_tracer_provider(provider.clone());
    }
    init_logging(config);
    if config.telemetry.metrics_enabled {
        metrics::handle();
    }
    process::mark_start();
    Telemetry { provider }
}

/// The tracer every span is made with. Spans are only made once a request has been sampled,
/// which [`init`] makes possible after installing the exporting provider, so the first lookup
/// finds it.
pub fn tracer() -> &'static BoxedTracer {
    static TRACER: LazyLock<BoxedTracer> = LazyLock::new(|| global::tracer("omnistack"));
    &TRACER
}

/// Sets an attribute on the span of the request (or WebSocket connection) being served;
/// nothing happens outside a traced one.
pub fn set_attribute(key: &'static str, value: impl Into<Value>) {
    Context::map_current(|cx| cx.span().set_attribute(KeyValue::new(key, value)));
}

/// [`set_attribute`] with a value made only when the request is traced, for values that cost
/// an allocation to build (ids as strings).
pub fn set_attribute_with<V: Into<Value>>(key: &'static str, value: impl FnOnce() -> V) {
    Context::map_current(|cx| {
        let span = cx.span();
        if span.is_recording() {
            span.set_attribute(KeyValue::new(key, value()));
        }
    });
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
        LogFormat::Json => fmt::layer().event_format(json_log::JsonLines).with_filter(filter).boxed(),
        LogFormat::Pretty => fmt::layer().with_filter(filter).boxed(),
    }
}

fn tracer_provider(settings: &TelemetrySettings, export: TraceExport) -> anyhow::Result<SdkTracerProvider> {
    Ok(match export {
        TraceExport::Console => provider_with(settings, console::ConsoleExporter),
        TraceExport::Otlp { endpoint, protocol: OtlpProtocol::HttpProtobuf, headers } => {
            let headers: Vec<_> = headers.into_iter().map(|(k, v)| (k, v.expose().to_owned())).collect();
            provider_with(settings, otlp::HttpExporter::new(endpoint, &headers, Duration::from_secs(10))?)
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
                .with_timeout(Duration::from_secs(10))
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
