//! OTLP/HTTP export (`http/protobuf`), encoded straight from the SDK's span data.
//!
//! The stock exporter first converts every span into generated protobuf structs (a `String`
//! per attribute key and value, a `Vec` per list) and then encodes those; with every request
//! traced that conversion cost more CPU than making the spans. Here each batch is written in
//! one pass into one buffer, with the same wire format: `ExportTraceServiceRequest` from
//! `opentelemetry/proto/collector/trace/v1`. A unit test decodes the output and compares it
//! with the stock conversion.

use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use opentelemetry::trace::{SpanContext, SpanKind, Status};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// Sends batches of spans to an OTLP/HTTP collector.
#[derive(Debug)]
pub struct HttpExporter {
    client: reqwest::Client,
    endpoint: String,
    headers: HeaderMap,
    /// The encoded `Resource` message, the same for every batch.
    resource: Vec<u8>,
    resource_schema: String,
}

impl HttpExporter {
    /// An exporter posting to `endpoint` (the full `/v1/traces` URL) with extra `headers`.
    pub fn new(endpoint: String, headers: &[(String, String)], timeout: Duration) -> anyhow::Result<HttpExporter> {
        let mut map = HeaderMap::new();
        for (key, value) in headers {
            map.insert(HeaderName::try_from(key.as_str())?, HeaderValue::try_from(value.as_str())?);
        }
        map.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-protobuf"));
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("omnistack/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(HttpExporter { client, endpoint, headers: map, resource: Vec::new(), resource_schema: String::new() })
    }
}

impl SpanExporter for HttpExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        if batch.is_empty() {
            return Ok(());
        }
        let body = encode_request(&batch, &self.resource, &self.resource_schema);
        drop(batch);
        let response = self
            .client
            .post(&self.endpoint)
            .headers(self.headers.clone())
            .body(body)
            .send()
            .await
            .map_err(|err| OTelSdkError::InternalFailure(format!("OTLP export failed: {err}")))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(OTelSdkError::InternalFailure(format!("the OTLP collector answered {}", response.status())))
        }
    }

    fn set_resource(&mut self, resource: &Resource) {
        let mut encoded = Vec::new();
        for (key, value) in resource.iter() {
            message(&mut encoded, 1, &KeyValue::new(key.clone(), value.clone()), key_value_len, key_value);
        }
        self.resource = encoded;
        self.resource_schema = resource.schema_url().unwrap_or_default().to_owned();
    }
}

/// `ExportTraceServiceRequest` with one `ResourceSpans` holding a `ScopeSpans` per scope.
fn encode_request(spans: &[SpanData], resource: &[u8], resource_schema: &str) -> Vec<u8> {
    let mut scopes: Vec<(&InstrumentationScope, Vec<&SpanData>)> = Vec::new();
    for span in spans {
        match scopes.iter_mut().find(|(scope, _)| **scope == span.instrumentation_scope) {
            Some((_, members)) => members.push(span),
            None => scopes.push((&span.instrumentation_scope, vec![span])),
        }
    }
    let scope_lens: Vec<usize> = scopes.iter().map(|(scope, members)| scope_spans_len(scope, members)).collect();
    let resource_spans_len = len_field(1, resource.len())
        + scope_lens.iter().map(|len| len_field(2, *len)).sum::<usize>()
        + string_len(3, resource_schema);

    let mut out = Vec::with_capacity(len_field(1, resource_spans_len));
    key(&mut out, 1, LEN);
    varint(&mut out, resource_spans_len as u64);
    bytes(&mut out, 1, resource, true);
    for ((scope, members), len) in scopes.iter().zip(scope_lens) {
        key(&mut out, 2, LEN);
        varint(&mut out, len as u64);
        scope_spans(&mut out, scope, members);
    }
    string(&mut out, 3, resource_schema);
    out
}

// Wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

// Span flag bits: the parent's remoteness is known, and the parent is remote.
const HAS_IS_REMOTE: u32 = 0x100;
const IS_REMOTE: u32 = 0x200;

fn varint_len(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn key(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, u64::from(field << 3 | u32::from(wire)));
}

fn key_len(field: u32) -> usize {
    varint_len(u64::from(field << 3))
}

/// Size of a length-delimited field holding `len` bytes.
fn len_field(field: u32, len: usize) -> usize {
    key_len(field) + varint_len(len as u64) + len
}

fn string_len(field: u32, value: &str) -> usize {
    if value.is_empty() { 0 } else { len_field(field, value.len()) }
}

fn string(out: &mut Vec<u8>, field: u32, value: &str) {
    bytes(out, field, value.as_bytes(), false);
}

/// A bytes or string field; empty ones are left out, as proto3 does, unless `always`.
fn bytes(out: &mut Vec<u8>, field: u32, value: &[u8], always: bool) {
    if always || !value.is_empty() {
        key(out, field, LEN);
        varint(out, value.len() as u64);
        out.extend_from_slice(value);
    }
}

fn uint_len(field: u32, value: u64) -> usize {
    if value == 0 { 0 } else { key_len(field) + varint_len(value) }
}

fn uint(out: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        key(out, field, VARINT);
        varint(out, value);
    }
}

fn fixed64(out: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        key(out, field, FIXED64);
        out.extend_from_slice(&value.to_le_bytes());
    }
}

fn fixed64_len(field: u32, value: u64) -> usize {
    if value == 0 { 0 } else { key_len(field) + 8 }
}

fn fixed32(out: &mut Vec<u8>, field: u32, value: u32) {
    if value != 0 {
        key(out, field, FIXED32);
        out.extend_from_slice(&value.to_le_bytes());
    }
}

fn fixed32_len(field: u32, value: u32) -> usize {
    if value == 0 { 0 } else { key_len(field) + 4 }
}

/// A nested message field (always written, even when empty).
fn message<T: ?Sized>(
    out: &mut Vec<u8>,
    field: u32,
    value: &T,
    len: impl Fn(&T) -> usize,
    write: impl Fn(&mut Vec<u8>, &T),
) {
    key(out, field, LEN);
    varint(out, len(value) as u64);
    write(out, value);
}

fn message_len<T: ?Sized>(field: u32, value: &T, len: impl Fn(&T) -> usize) -> usize {
    len_field(field, len(value))
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

fn kind(kind: &SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

fn span_flags(context: &SpanContext, parent_is_remote: bool) -> u32 {
    u32::from(context.trace_flags().to_u8()) | HAS_IS_REMOTE | if parent_is_remote { IS_REMOTE } else { 0 }
}

// AnyValue: 1 string, 2 bool, 3 int, 4 double, 5 array (ArrayValue { 1: repeated AnyValue }).
fn any_value_len(value: &Value) -> usize {
    match value {
        Value::Bool(_) => key_len(2) + 1,
        Value::I64(i) => key_len(3) + varint_len(*i as u64),
        Value::F64(_) => key_len(4) + 8,
        Value::String(s) => len_field(1, s.as_str().len()),
        Value::Array(array) => len_field(5, array_len(array)),
        other => len_field(1, other.as_str().len()),
    }
}

fn any_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Bool(b) => {
            key(out, 2, VARINT);
            varint(out, u64::from(*b));
        }
        Value::I64(i) => {
            key(out, 3, VARINT);
            varint(out, *i as u64);
        }
        Value::F64(f) => {
            key(out, 4, FIXED64);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Value::String(s) => bytes(out, 1, s.as_str().as_bytes(), true),
        Value::Array(array) => message(out, 5, array, array_len, write_array),
        other => bytes(out, 1, other.as_str().as_bytes(), true),
    }
}

fn array_values(array: &Array) -> Vec<Value> {
    match array {
        Array::Bool(values) => values.iter().map(|v| Value::Bool(*v)).collect(),
        Array::I64(values) => values.iter().map(|v| Value::I64(*v)).collect(),
        Array::F64(values) => values.iter().map(|v| Value::F64(*v)).collect(),
        Array::String(values) => values.iter().map(|v| Value::String(v.clone())).collect(),
        _ => Vec::new(),
    }
}

fn array_len(array: &Array) -> usize {
    array_values(array).iter().map(|v| message_len(1, v, any_value_len)).sum()
}

fn write_array(out: &mut Vec<u8>, array: &Array) {
    for value in array_values(array) {
        message(out, 1, &value, any_value_len, any_value);
    }
}

// KeyValue: 1 key, 2 value.
fn key_value_len(kv: &KeyValue) -> usize {
    len_field(1, kv.key.as_str().len()) + message_len(2, &kv.value, any_value_len)
}

fn key_value(out: &mut Vec<u8>, kv: &KeyValue) {
    bytes(out, 1, kv.key.as_str().as_bytes(), true);
    message(out, 2, &kv.value, any_value_len, any_value);
}

fn attributes_len(field: u32, attributes: &[KeyValue]) -> usize {
    attributes.iter().map(|kv| message_len(field, kv, key_value_len)).sum()
}

fn write_attributes(out: &mut Vec<u8>, field: u32, attributes: &[KeyValue]) {
    for kv in attributes {
        message(out, field, kv, key_value_len, key_value);
    }
}

// ScopeSpans: 1 scope (InstrumentationScope: 1 name, 2 version, 3 attributes), 2 spans, 3 schema_url.
fn scope_len(scope: &InstrumentationScope) -> usize {
    string_len(1, scope.name())
        + string_len(2, scope.version().unwrap_or_default())
        + scope.attributes().map(|kv| message_len(3, kv, key_value_len)).sum::<usize>()
}

fn write_scope(out: &mut Vec<u8>, scope: &InstrumentationScope) {
    string(out, 1, scope.name());
    string(out, 2, scope.version().unwrap_or_default());
    for kv in scope.attributes() {
        message(out, 3, kv, key_value_len, key_value);
    }
}

fn scope_spans_len(scope: &InstrumentationScope, spans: &[&SpanData]) -> usize {
    message_len(1, scope, scope_len)
        + spans.iter().map(|span| message_len(2, *span, span_len)).sum::<usize>()
        + string_len(3, scope.schema_url().unwrap_or_default())
}

fn scope_spans(out: &mut Vec<u8>, scope: &InstrumentationScope, spans: &[&SpanData]) {
    message(out, 1, scope, scope_len, write_scope);
    for span in spans {
        message(out, 2, *span, span_len, write_span);
    }
    string(out, 3, scope.schema_url().unwrap_or_default());
}

// Status: 2 message, 3 code.
fn status_parts(status: &Status) -> (&str, u64) {
    match status {
        Status::Unset => ("", 0),
        Status::Ok => ("", 1),
        Status::Error { description } => (description.as_ref(), 2),
    }
}

fn status_len(status: &Status) -> usize {
    let (text, code) = status_parts(status);
    string_len(2, text) + uint_len(3, code)
}

fn write_status(out: &mut Vec<u8>, status: &Status) {
    let (text, code) = status_parts(status);
    string(out, 2, text);
    uint(out, 3, code);
}

// Event: 1 time, 2 name, 3 attributes, 4 dropped attributes.
fn event_len(event: &opentelemetry::trace::Event) -> usize {
    fixed64_len(1, nanos(event.timestamp))
        + string_len(2, &event.name)
        + attributes_len(3, &event.attributes)
        + uint_len(4, u64::from(event.dropped_attributes_count))
}

fn write_event(out: &mut Vec<u8>, event: &opentelemetry::trace::Event) {
    fixed64(out, 1, nanos(event.timestamp));
    string(out, 2, &event.name);
    write_attributes(out, 3, &event.attributes);
    uint(out, 4, u64::from(event.dropped_attributes_count));
}

// Link: 1 trace id, 2 span id, 3 trace state, 4 attributes, 5 dropped attributes, 6 flags.
fn link_len(link: &opentelemetry::trace::Link) -> usize {
    let context = &link.span_context;
    len_field(1, 16)
        + len_field(2, 8)
        + string_len(3, &context.trace_state().header())
        + attributes_len(4, &link.attributes)
        + uint_len(5, u64::from(link.dropped_attributes_count))
        + fixed32_len(6, span_flags(context, context.is_remote()))
}

fn write_link(out: &mut Vec<u8>, link: &opentelemetry::trace::Link) {
    let context = &link.span_context;
    bytes(out, 1, &context.trace_id().to_bytes(), true);
    bytes(out, 2, &context.span_id().to_bytes(), true);
    string(out, 3, &context.trace_state().header());
    write_attributes(out, 4, &link.attributes);
    uint(out, 5, u64::from(link.dropped_attributes_count));
    fixed32(out, 6, span_flags(context, context.is_remote()));
}

// Span: 1 trace id, 2 span id, 3 trace state, 4 parent span id, 5 name, 6 kind, 7 start,
// 8 end, 9 attributes, 10 dropped attributes, 11 events, 12 dropped events, 13 links,
// 14 dropped links, 15 status, 16 flags.
fn parent_id(span: &SpanData) -> Option<[u8; 8]> {
    (span.parent_span_id != opentelemetry::trace::SpanId::INVALID).then(|| span.parent_span_id.to_bytes())
}

fn span_len(span: &SpanData) -> usize {
    let context = &span.span_context;
    len_field(1, 16)
        + len_field(2, 8)
        + string_len(3, &context.trace_state().header())
        + parent_id(span).map_or(0, |_| len_field(4, 8))
        + string_len(5, &span.name)
        + uint_len(6, kind(&span.span_kind))
        + fixed64_len(7, nanos(span.start_time))
        + fixed64_len(8, nanos(span.end_time))
        + attributes_len(9, &span.attributes)
        + uint_len(10, u64::from(span.dropped_attributes_count))
        + span.events.iter().map(|event| message_len(11, event, event_len)).sum::<usize>()
        + uint_len(12, u64::from(span.events.dropped_count))
        + span.links.iter().map(|link| message_len(13, link, link_len)).sum::<usize>()
        + uint_len(14, u64::from(span.links.dropped_count))
        + message_len(15, &span.status, status_len)
        + fixed32_len(16, span_flags(context, span.parent_span_is_remote))
}

fn write_span(out: &mut Vec<u8>, span: &SpanData) {
    let context = &span.span_context;
    bytes(out, 1, &context.trace_id().to_bytes(), true);
    bytes(out, 2, &context.span_id().to_bytes(), true);
    string(out, 3, &context.trace_state().header());
    if let Some(parent) = parent_id(span) {
        bytes(out, 4, &parent, true);
    }
    string(out, 5, &span.name);
    uint(out, 6, kind(&span.span_kind));
    fixed64(out, 7, nanos(span.start_time));
    fixed64(out, 8, nanos(span.end_time));
    write_attributes(out, 9, &span.attributes);
    uint(out, 10, u64::from(span.dropped_attributes_count));
    for event in span.events.iter() {
        message(out, 11, event, event_len, write_event);
    }
    uint(out, 12, u64::from(span.events.dropped_count));
    for link in span.links.iter() {
        message(out, 13, link, link_len, write_link);
    }
    uint(out, 14, u64::from(span.links.dropped_count));
    message(out, 15, &span.status, status_len, write_status);
    fixed32(out, 16, span_flags(context, span.parent_span_is_remote));
}

#[cfg(test)]
mod tests;
