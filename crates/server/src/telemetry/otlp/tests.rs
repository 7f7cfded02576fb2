use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter, SpanLinks};
use prost::Message;

use super::{HttpExporter, encode_request};

fn context(trace: u128, span: u64, remote: bool) -> SpanContext {
    SpanContext::new(TraceId::from(trace), SpanId::from(span), TraceFlags::SAMPLED, remote, TraceState::default())
}

fn span(name: &'static str, scope: &InstrumentationScope) -> SpanData {
    let start = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
    SpanData {
        span_context: context(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736, 0x00f0_67aa_0ba9_02b7, false),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Server,
        name: Cow::Borrowed(name),
        start_time: start,
        end_time: start + Duration::from_micros(1234),
        attributes: vec![KeyValue::new("http.route", "/api/v1/app/users/me")],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: scope.clone(),
    }
}

/// What the stock conversion makes of `spans`.
fn reference(spans: &[SpanData], resource: &Resource) -> ExportTraceServiceRequest {
    let resource = ResourceAttributesWithSchema::from(resource);
    ExportTraceServiceRequest { resource_spans: group_spans_by_resource_and_scope(spans.to_vec(), &resource) }
}

fn encoded(spans: &[SpanData], resource: &Resource) -> ExportTraceServiceRequest {
    crate::install_crypto_provider();
    let mut exporter = HttpExporter::new("http://127.0.0.1:1/v1/traces".into(), &[], Duration::from_secs(1)).unwrap();
    exporter.set_resource(resource);
    let bytes = encode_request(spans, &exporter.resource, &exporter.resource_schema);
    ExportTraceServiceRequest::decode(bytes.as_slice()).expect("valid protobuf")
}

#[test]
fn the_encoding_decodes_to_what_the_stock_conversion_makes() {
    let ours = InstrumentationScope::builder("omnistack").build();
    let theirs = InstrumentationScope::builder("library")
        .with_version("1.2.3")
        .with_schema_url("https://opentelemetry.io/schemas/1.30.0")
        .with_attributes([KeyValue::new("scope.attr", true)])
        .build();

    let plain = span("GET /api/v1/app/users/me", &ours);
    let mut child = span("SELECT users", &ours);
    child.span_context = context(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736, 7, false);
    child.parent_span_id = SpanId::from(0x00f0_67aa_0ba9_02b7);
    child.span_kind = SpanKind::Client;
    child.status = Status::error("database error");
    child.dropped_attributes_count = 2;
    child.attributes = vec![
        KeyValue::new("db.system", "sqlite"),
        KeyValue::new("count", -42_i64),
        KeyValue::new("big", i64::MAX),
        KeyValue::new("ratio", 0.25),
        KeyValue::new("empty", ""),
        KeyValue::new("flag", false),
        KeyValue::new("names", Value::Array(Array::String(vec![StringValue::from("a"), StringValue::from("")]))),
        KeyValue::new("numbers", Value::Array(Array::I64(vec![1, -1, 0]))),
        KeyValue::new("floats", Value::Array(Array::F64(vec![1.5]))),
        KeyValue::new("bools", Value::Array(Array::Bool(vec![true, false]))),
    ];
    let mut remote = span("POST /api/v1/public/auth/register", &theirs);
    remote.parent_span_id = SpanId::from(99);
    remote.parent_span_is_remote = true;
    remote.span_context = SpanContext::new(
        TraceId::from(5),
        SpanId::from(6),
        TraceFlags::SAMPLED,
        false,
        TraceState::from_key_value([("vendor", "value")]).unwrap(),
    );
    remote.status = Status::Ok;
    remote.events.events.push(Event::new("cache miss", SystemTime::UNIX_EPOCH, vec![KeyValue::new("k", 1)], 1));
    remote.events.dropped_count = 3;
    remote.links.links.push(Link::new(context(8, 9, true), vec![KeyValue::new("link", "x")], 0));
    remote.links.dropped_count = 1;
    let mut unnamed = span("", &ours);
    unnamed.span_kind = SpanKind::Internal;
    unnamed.attributes.clear();

    let spans = [plain, child, remote, unnamed];
    let resource = Resource::builder_empty()
        .with_service_name("omnistack-test")
        .with_attributes([KeyValue::new("deployment.environment", "test"), KeyValue::new("service.version", "0.1.0")])
        .with_schema_url([], "https://opentelemetry.io/schemas/1.30.0")
        .build();
    assert_eq!(encoded(&spans, &resource), reference(&spans, &resource));

    let empty = Resource::builder_empty().build();
    assert_eq!(encoded(&spans[..1], &empty), reference(&spans[..1], &empty));
}

#[test]
fn varints_have_the_right_length() {
    for value in [0, 1, 127, 128, 16_383, 16_384, u64::from(u32::MAX), u64::MAX] {
        let mut out = Vec::new();
        super::varint(&mut out, value);
        assert_eq!(out.len(), super::varint_len(value), "{value}");
    }
}

/// A collector on a free port answering every export with `status`.
async fn collector(status: axum::http::StatusCode) -> String {
    let app = axum::Router::new().route("/v1/traces", axum::routing::post(move || async move { status }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn an_export_succeeds_only_when_the_collector_accepts_it() {
    crate::install_crypto_provider();
    let scope = InstrumentationScope::builder("omnistack").build();
    let batch = || vec![span("GET /", &scope)];
    let exporter = |url| HttpExporter::new(url, &[], Duration::from_secs(5)).unwrap();

    assert!(exporter(collector(axum::http::StatusCode::OK).await).export(batch()).await.is_ok());
    let refused = exporter(collector(axum::http::StatusCode::SERVICE_UNAVAILABLE).await).export(batch()).await;
    assert!(refused.unwrap_err().to_string().contains("503"));
    // Nothing listens on port 1.
    assert!(exporter("http://127.0.0.1:1/v1/traces".into()).export(batch()).await.is_err());
    // An empty batch sends nothing.
    assert!(exporter("http://127.0.0.1:1/v1/traces".into()).export(Vec::new()).await.is_ok());
}

#[test]
fn bad_header_names_are_refused() {
    crate::install_crypto_provider();
    let headers = [("bad header".to_owned(), "value".to_owned())];
    assert!(HttpExporter::new("http://127.0.0.1:1/v1/traces".into(), &headers, Duration::from_secs(1)).is_err());
}
