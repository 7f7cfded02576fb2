//! Parsers for configuration values; each failure becomes "VARIABLE: what is wrong".

use std::net::IpAddr;

use super::CorsOrigins;

/// A variable lookup that collects every problem instead of stopping at the first.
pub(super) struct Vars<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<String>,
}

impl<'a> Vars<'a> {
    pub(super) fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Vars { lookup, problems: Vec::new() }
    }

    /// The trimmed value, `None` when unset or blank.
    fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    pub(super) fn string(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.to_owned())
    }

    /// Parses the value (or the default); a failure is recorded and yields `None`.
    pub(super) fn parse<T>(
        &mut self,
        name: &str,
        default: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let value = self.string(name, default);
        match parse(&value) {
            Ok(parsed) => Some(parsed),
            Err(message) => {
                self.problems.push(format!("{name}: {message}"));
                None
            }
        }
    }

    /// Parses the value when set: `Some(None)` when unset, `None` when invalid.
    pub(super) fn optional<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<Option<T>> {
        match self.get(name) {
            None => Some(None),
            Some(value) => match parse(&value) {
                Ok(parsed) => Some(Some(parsed)),
                Err(message) => {
                    self.problems.push(format!("{name}: {message}"));
                    None
                }
            },
        }
    }

    /// Records a problem found by a check that spans several variables.
    pub(super) fn problem(&mut self, name: &str, message: &str) {
        self.problems.push(format!("{name}: {message}"));
    }

    pub(super) fn into_problems(self) -> Vec<String> {
        self.problems
    }
}

pub(super) fn number(value: &str, min: u64, max: u64) -> Result<u64, String> {
    match value.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("must be a whole number from {min} to {max}, got {value:?}")),
    }
}

pub(super) fn boolean(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("must be true or false, got {value:?}")),
    }
}

/// An absolute http(s) URL.
pub(super) fn http_url(value: &str) -> Result<String, String> {
    let valid = value
        .split_once("://")
        .is_some_and(|(scheme, rest)| matches!(scheme, "http" | "https") && !rest.is_empty() && !rest.contains(' '));
    if valid { Ok(value.to_owned()) } else { Err(format!("must be an http(s) URL, got {value:?}")) }
}

/// A Redis key prefix: printable ASCII without spaces, at most 64 characters.
pub(super) fn key_prefix(value: &str) -> Result<String, String> {
    if value.len() <= 64 && value.chars().all(|c| c.is_ascii_graphic()) {
        Ok(value.to_owned())
    } else {
        Err(format!("must be at most 64 printable characters without spaces, got {value:?}"))
    }
}

pub(super) fn host(value: &str) -> Result<IpAddr, String> {
    if value.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::from([127, 0, 0, 1]));
    }
    value.parse().map_err(|_| format!("must be an IP address such as 127.0.0.1 or 0.0.0.0, got {value:?}"))
}

pub(super) fn log_level(value: &str) -> Result<String, String> {
    match value.to_ascii_lowercase().as_str() {
        level @ ("trace" | "debug" | "info" | "warn" | "error") => Ok(level.to_owned()),
        "warning" => Ok("warn".to_owned()),
        "critical" => Ok("error".to_owned()),
        _ => Err(format!("must be one of trace, debug, info, warn, error, got {value:?}")),
    }
}

/// A comma-separated list or a JSON array of origins; `*` alone allows any origin.
pub(super) fn cors_origins(value: &str) -> Result<CorsOrigins, String> {
    let items: Vec<String> = if value.starts_with('[') {
        serde_json::from_str(value).map_err(|_| "must be a comma-separated list or a JSON array of strings")?
    } else {
        value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
    };
    if items.iter().any(|o| o == "*") {
        return if items.len() == 1 {
            Ok(CorsOrigins::Any)
        } else {
            Err("`*` cannot be combined with other origins".into())
        };
    }
    let mut origins = Vec::with_capacity(items.len());
    for item in items {
        let origin = item.trim_end_matches('/');
        let valid = origin.split_once("://").is_some_and(|(scheme, rest)| {
            matches!(scheme, "http" | "https") && !rest.is_empty() && !rest.contains(['/', '?', '#', ' '])
        });
        if !valid {
            return Err(format!("{item:?} is not an origin like https://app.example.com"));
        }
        origins.push(origin.to_owned());
    }
    Ok(CorsOrigins::List(origins))
}
