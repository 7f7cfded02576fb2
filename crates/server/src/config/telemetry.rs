//! Tracing export (the standard `OTEL_*` variables, plus the Python original's `OTEL_ENABLED`
//! and `OTEL_EXPORTER`) and the metrics endpoint's token.

use super::Secret;
use super::parse::{self, Vars};

/// Where spans go.
#[derive(Clone, Debug, PartialEq)]
pub enum TraceExport {
    /// An OTLP collector.
    Otlp {
        /// The traces endpoint (for HTTP, the full `…/v1/traces` URL).
        endpoint: String,
        /// `http/protobuf` or `grpc`.
        protocol: OtlpProtocol,
        /// `OTEL_EXPORTER_OTLP_HEADERS` (API keys: values are secrets).
        headers: Vec<(String, Secret)>,
    },
    /// One line per span on standard output (`OTEL_EXPORTER=console`).
    Console,
}

/// OTLP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// `http/protobuf` (port 4318).
    HttpProtobuf,
    /// `grpc` (port 4317).
    Grpc,
}

/// Which traces are kept.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SamplerSettings {
    /// Fraction of new traces kept (1.0 keeps all).
    pub ratio: f64,
    /// Follow the caller's sampling decision when a `traceparent` arrives.
    pub parent_based: bool,
}

/// Observability settings.
#[derive(Clone, Debug)]
pub struct TelemetrySettings {
    /// Span export; `None` exports nothing (the default).
    pub export: Option<TraceExport>,
    /// `OTEL_SERVICE_NAME`.
    pub service_name: String,
    /// `OTEL_RESOURCE_ATTRIBUTES` (`key=value,…`).
    pub resource_attributes: Vec<(String, String)>,
    /// `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`.
    pub sampler: SamplerSettings,
    /// `METRICS_ENABLED`: record metrics and serve the scrape endpoints.
    pub metrics_enabled: bool,
    /// `METRICS_TOKEN`: when set, the metrics endpoints require `Authorization: Bearer <token>`.
    pub metrics_token: Option<Secret>,
    /// `METRICS_PUBLIC`: serve the metrics without a token in production (a scrape behind a
    /// private network). Outside production an unset token already means public.
    pub metrics_public: bool,
}

pub(super) fn settings(vars: &mut Vars<'_>) -> TelemetrySettings {
    let disabled = vars.parse("OTEL_SDK_DISABLED", "false", parse::boolean).unwrap_or(false)
        || !vars.parse("OTEL_ENABLED", "true", parse::boolean).unwrap_or(true);
    let exporter = vars
        .optional("OTEL_TRACES_EXPORTER", exporter_name)
        .flatten()
        .or_else(|| vars.optional("OTEL_EXPORTER", exporter_name).flatten())
        .unwrap_or("otlp");
    let protocol = vars
        .parse("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", |v| match v {
            "http/protobuf" => Ok(OtlpProtocol::HttpProtobuf),
            "grpc" => Ok(OtlpProtocol::Grpc),
            other => Err(format!("must be http/protobuf or grpc, got {other:?}")),
        })
        .unwrap_or(OtlpProtocol::HttpProtobuf);
    let traces_endpoint = vars.optional("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", parse::http_url).flatten();
    let base_endpoint = vars.optional("OTEL_EXPORTER_OTLP_ENDPOINT", parse::http_url).flatten();
    let endpoint = traces_endpoint.or_else(|| {
        base_endpoint.map(|base| match protocol {
            OtlpProtocol::HttpProtobuf => format!("{}/v1/traces", base.trim_end_matches('/')),
            OtlpProtocol::Grpc => base,
        })
    });
    let headers = vars.optional("OTEL_EXPORTER_OTLP_HEADERS", key_values).flatten().unwrap_or_default();
    let export = match (disabled, exporter, endpoint) {
        (true, _, _) | (_, "none", _) => None,
        (false, "console", _) => Some(TraceExport::Console),
        (false, _, Some(endpoint)) => Some(TraceExport::Otlp {
            endpoint,
            protocol,
            headers: headers.into_iter().map(|(k, v)| (k, Secret::new(v))).collect(),
        }),
        (false, _, None) => None,
    };
    let sampler = vars
        .parse("OTEL_TRACES_SAMPLER", "parentbased_always_on", |v| match v {
            "always_on"
            | "always_off"
            | "traceidratio"
            | "parentbased_always_on"
            | "parentbased_always_off"
            | "parentbased_traceidratio" => Ok(v.to_owned()),
            other => Err(format!("unsupported sampler {other:?}")),
        })
        .unwrap_or_default();
    let ratio_arg = vars
        .parse("OTEL_TRACES_SAMPLER_ARG", "1.0", |v| match v.parse::<f64>() {
            Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
            _ => Err(format!("must be a number from 0 to 1, got {v:?}")),
        })
        .unwrap_or(1.0);
    let ratio = match sampler.as_str() {
        "always_off" | "parentbased_always_off" => 0.0,
        "traceidratio" | "parentbased_traceidratio" => ratio_arg,
        _ => 1.0,
    };
    TelemetrySettings {
        export,
        service_name: vars.string("OTEL_SERVICE_NAME", "omnistack"),
        resource_attributes: vars.optional("OTEL_RESOURCE_ATTRIBUTES", key_values).flatten().unwrap_or_default(),
        sampler: SamplerSettings { ratio, parent_based: sampler.starts_with("parentbased") },
        metrics_enabled: vars.parse("METRICS_ENABLED", "true", parse::boolean).unwrap_or(true),
        metrics_token: vars.optional("METRICS_TOKEN", |v| Ok(Secret::new(v))).flatten(),
        metrics_public: vars.parse("METRICS_PUBLIC", "false", parse::boolean).unwrap_or(false),
    }
}

fn exporter_name(value: &str) -> Result<&'static str, String> {
    match value {
        "otlp" => Ok("otlp"),
        "console" => Ok("console"),
        "none" => Ok("none"),
        other => Err(format!("must be otlp, console or none, got {other:?}")),
    }
}

/// `key=value,key2=value2`, values percent-decoded (the OTLP header format).
fn key_values(value: &str) -> Result<Vec<(String, String)>, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_owned(), percent_decode(value.trim()))),
            _ => Err(format!("expected key=value pairs, got {pair:?}")),
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = text.get(i + 1..i + 3).and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl TelemetrySettings {
    /// Every variable with its effective value, secrets redacted.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let (endpoint, protocol, headers) = match &self.export {
            Some(TraceExport::Otlp { endpoint, protocol, headers }) => (
                endpoint.clone(),
                match protocol {
                    OtlpProtocol::HttpProtobuf => "http/protobuf",
                    OtlpProtocol::Grpc => "grpc",
                },
                headers.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
            ),
            _ => (String::new(), "http/protobuf", String::new()),
        };
        let exporter = match &self.export {
            Some(TraceExport::Otlp { .. }) => "otlp",
            Some(TraceExport::Console) => "console",
            None => "none",
        };
        let attributes = self.resource_attributes.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>();
        vec![
            ("OTEL_EXPORTER", exporter.to_owned()),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_owned()),
            ("OTEL_EXPORTER_OTLP_HEADERS", headers),
            ("OTEL_SERVICE_NAME", self.service_name.clone()),
            ("OTEL_RESOURCE_ATTRIBUTES", attributes.join(",")),
            ("OTEL_TRACES_SAMPLER_ARG", self.sampler.ratio.to_string()),
            ("METRICS_ENABLED", self.metrics_enabled.to_string()),
            ("METRICS_TOKEN", self.metrics_token.as_ref().map(ToString::to_string).unwrap_or_default()),
            ("METRICS_PUBLIC", self.metrics_public.to_string()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn load(vars: &[(&str, &str)]) -> (TelemetrySettings, Vec<String>) {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let lookup = |name: &str| map.get(name).cloned();
        let mut vars = Vars::new(&lookup);
        let settings = settings(&mut vars);
        (settings, vars.into_problems())
    }

    #[test]
    fn nothing_is_exported_without_an_endpoint() {
        assert_eq!(load(&[]).0.export, None);
    }

    #[test]
    fn the_generic_endpoint_gets_the_traces_path_for_http_but_not_for_grpc() {
        let (http, _) = load(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")]);
        assert!(
            matches!(http.export, Some(TraceExport::Otlp { ref endpoint, .. }) if endpoint == "http://collector:4318/v1/traces")
        );
        let (grpc, _) =
            load(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]);
        assert!(
            matches!(grpc.export, Some(TraceExport::Otlp { ref endpoint, protocol: OtlpProtocol::Grpc, .. }) if endpoint == "http://collector:4317")
        );
        let (specific, _) = load(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:4318/custom"),
        ]);
        assert!(
            matches!(specific.export, Some(TraceExport::Otlp { ref endpoint, .. }) if endpoint == "http://b:4318/custom")
        );
    }

    #[test]
    fn headers_are_decoded_and_redacted() {
        let (settings, _) = load(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://api.honeycomb.io"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-honeycomb-team=abc%3D123,x-other=v"),
        ]);
        let Some(TraceExport::Otlp { headers, .. }) = &settings.export else { panic!("otlp expected") };
        assert_eq!(headers[0].0, "x-honeycomb-team");
        assert_eq!(headers[0].1.expose(), "abc=123");
        let described: HashMap<_, _> = settings.describe().into_iter().collect();
        assert!(!described["OTEL_EXPORTER_OTLP_HEADERS"].contains("abc"));
    }

    #[test]
    fn the_legacy_switches_and_sdk_disabled_turn_export_off() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        assert_eq!(load(&[endpoint, ("OTEL_ENABLED", "false")]).0.export, None);
        assert_eq!(load(&[endpoint, ("OTEL_SDK_DISABLED", "true")]).0.export, None);
        assert_eq!(load(&[endpoint, ("OTEL_EXPORTER", "none")]).0.export, None);
        assert_eq!(load(&[("OTEL_EXPORTER", "console")]).0.export, Some(TraceExport::Console));
    }

    #[test]
    fn samplers_map_to_a_ratio_and_parent_rule() {
        let (s, _) = load(&[("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"), ("OTEL_TRACES_SAMPLER_ARG", "0.25")]);
        assert_eq!(s.sampler, SamplerSettings { ratio: 0.25, parent_based: true });
        let (s, _) = load(&[("OTEL_TRACES_SAMPLER", "always_off")]);
        assert_eq!(s.sampler.ratio, 0.0);
        let (_, problems) = load(&[("OTEL_TRACES_SAMPLER_ARG", "2")]);
        assert!(problems[0].starts_with("OTEL_TRACES_SAMPLER_ARG"));
    }
}
