//! API versions and their lifecycle: `API_DEFAULT_VERSION`, `API_DEPRECATIONS`, `API_SUNSETS`,
//! `API_DEPRECATED_ROUTES` and `API_SUNSET_ENFORCED`.
//!
//! Dates are `YYYY-MM-DD` and take effect at midnight UTC. A deprecation may lie in the future
//! (RFC 9745 lets the `Deprecation` header announce it); a sunset needs a deprecation of the
//! same version on or before it, and the latest version, having no successor, has none.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

use super::parse::{self, Vars};
use crate::config::ApiVersion;

/// The versions' schedule, and the version unversioned requests get.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiVersionSettings {
    /// `API_DEFAULT_VERSION`: serves `/api/<group>/…` requests that name no version.
    pub default_version: ApiVersion,
    /// `API_DEPRECATIONS`: when each listed version is (or will be) deprecated.
    pub deprecations: BTreeMap<ApiVersion, NaiveDate>,
    /// `API_SUNSETS`: when each listed version is retired.
    pub sunsets: BTreeMap<ApiVersion, NaiveDate>,
    /// `API_DEPRECATED_ROUTES`: single operations deprecated on their own.
    pub deprecated_routes: Vec<DeprecatedRoute>,
    /// `API_SUNSET_ENFORCED`: a retired version answers 410 `API_VERSION_SUNSET`.
    pub sunset_enforced: bool,
}

/// One operation deprecated on its own: `GET /api/v1/app/projects=2026-12-01`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeprecatedRoute {
    /// The method, upper case.
    pub method: String,
    /// The route template as routed, e.g. `/api/v1/app/projects/{id}`.
    pub route: String,
    /// Deprecated from.
    pub date: NaiveDate,
}

/// What applies to one deprecated operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deprecation {
    /// Deprecated from (midnight UTC).
    pub deprecated: DateTime<Utc>,
    /// Retired from (midnight UTC), when its version has a sunset.
    pub sunset: Option<DateTime<Utc>>,
}

impl Deprecation {
    /// Whether the sunset has come by `now`.
    pub fn is_retired(&self, now: DateTime<Utc>) -> bool {
        self.sunset.is_some_and(|sunset| now >= sunset)
    }
}

impl Default for ApiVersionSettings {
    /// The latest version by default; nothing deprecated; sunsets enforced.
    fn default() -> Self {
        ApiVersionSettings {
            default_version: ApiVersion::LATEST,
            deprecations: BTreeMap::new(),
            sunsets: BTreeMap::new(),
            deprecated_routes: Vec::new(),
            sunset_enforced: true,
        }
    }
}

impl ApiVersionSettings {
    /// The deprecation of operation `method route` of `version`, if the version or the route is
    /// deprecated: the earlier of the two dates, and the version's sunset.
    pub fn deprecation(&self, version: ApiVersion, method: &str, route: Option<&str>) -> Option<Deprecation> {
        let of_route = route.and_then(|route| {
            self.deprecated_routes
                .iter()
                .filter(|d| d.route == route && d.method.eq_ignore_ascii_case(method))
                .map(|d| d.date)
                .min()
        });
        let of_version = self.deprecations.get(&version).copied();
        let deprecated = of_route.into_iter().chain(of_version).min()?;
        Some(Deprecation {
            deprecated: midnight(deprecated),
            sunset: self.sunsets.get(&version).copied().map(midnight),
        })
    }

    /// Whether `version` or any of its routes is deprecated.
    pub fn deprecates_any(&self, version: ApiVersion) -> bool {
        let prefix = format!("/api/{version}/");
        self.deprecations.contains_key(&version) || self.deprecated_routes.iter().any(|d| d.route.starts_with(&prefix))
    }

    /// Every versioning setting as `(VARIABLE, value)`.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let dates = |map: &BTreeMap<ApiVersion, NaiveDate>| {
            map.iter().map(|(version, date)| format!("{version}={date}")).collect::<Vec<_>>().join(",")
        };
        let routes = self
            .deprecated_routes
            .iter()
            .map(|d| format!("{} {}={}", d.method, d.route, d.date))
            .collect::<Vec<_>>()
            .join(",");
        vec![
            ("API_DEFAULT_VERSION", self.default_version.to_string()),
            ("API_DEPRECATIONS", dates(&self.deprecations)),
            ("API_SUNSETS", dates(&self.sunsets)),
            ("API_DEPRECATED_ROUTES", routes),
            ("API_SUNSET_ENFORCED", self.sunset_enforced.to_string()),
        ]
    }
}

fn midnight(date: NaiveDate) -> DateTime<Utc> {
    date.and_time(NaiveTime::MIN).and_utc()
}

/// `YYYY-MM-DD`, exactly.
fn date(value: &str) -> Result<NaiveDate, String> {
    let parsed = (value.len() == 10).then(|| NaiveDate::parse_from_str(value, "%Y-%m-%d").ok()).flatten();
    parsed.ok_or_else(|| format!("{value:?} is not a date like 2026-12-01"))
}

/// `v1=2026-12-01,v2=…`: one date per version.
fn version_dates(value: &str) -> Result<BTreeMap<ApiVersion, NaiveDate>, String> {
    let mut dates = BTreeMap::new();
    for item in value.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        let (name, when) = item.split_once('=').ok_or_else(|| format!("{item:?} is not version=YYYY-MM-DD"))?;
        let version = ApiVersion::from_name(name.trim())
            .ok_or_else(|| format!("unknown version {:?}; versions are {}", name.trim(), ApiVersion::supported()))?;
        if dates.insert(version, date(when.trim())?).is_some() {
            return Err(format!("{version} is listed twice"));
        }
    }
    Ok(dates)
}

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// `GET /api/v1/app/projects=2026-12-01,…`: a method, a versioned route template and a date.
fn deprecated_routes(value: &str) -> Result<Vec<DeprecatedRoute>, String> {
    let mut routes = Vec::new();
    for item in value.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        let malformed = || format!("{item:?} is not METHOD /api/vN/route=YYYY-MM-DD");
        let (operation, when) = item.rsplit_once('=').ok_or_else(malformed)?;
        let mut words = operation.split_whitespace();
        let (Some(method), Some(route), None) = (words.next(), words.next(), words.next()) else {
            return Err(malformed());
        };
        let method = method.to_ascii_uppercase();
        if !METHODS.contains(&method.as_str()) {
            return Err(format!("{item:?}: unknown method {method}"));
        }
        let version = route.strip_prefix("/api/").and_then(|rest| rest.split_once('/')).map(|(version, _)| version);
        if version.and_then(ApiVersion::from_name).is_none() {
            return Err(format!("{item:?}: the route must start with /api/<version>/ ({})", ApiVersion::supported()));
        }
        routes.push(DeprecatedRoute { method, route: route.to_owned(), date: date(when.trim())? });
    }
    Ok(routes)
}

/// Reads the versioning variables; each problem is recorded in `vars`.
pub(super) fn settings(vars: &mut Vars) -> ApiVersionSettings {
    let defaults = ApiVersionSettings::default();
    let default_version = vars.parse("API_DEFAULT_VERSION", defaults.default_version.as_str(), |v| {
        ApiVersion::from_request_header(v)
            .ok_or_else(|| format!("unknown version {v:?}; versions are {}", ApiVersion::supported()))
    });
    let settings = ApiVersionSettings {
        default_version: default_version.unwrap_or(defaults.default_version),
        deprecations: vars.parse("API_DEPRECATIONS", "", version_dates).unwrap_or_default(),
        sunsets: vars.parse("API_SUNSETS", "", version_dates).unwrap_or_default(),
        deprecated_routes: vars.parse("API_DEPRECATED_ROUTES", "", deprecated_routes).unwrap_or_default(),
        sunset_enforced: vars.parse("API_SUNSET_ENFORCED", "true", parse::boolean).unwrap_or(true),
    };
    for (version, sunset) in &settings.sunsets {
        match settings.deprecations.get(version) {
            _ if *version == ApiVersion::LATEST => {
                vars.problem("API_SUNSETS", &format!("{version} is the latest version and cannot be retired"));
            }
            None => vars.problem("API_SUNSETS", &format!("{version} needs a deprecation date in API_DEPRECATIONS")),
            Some(deprecated) if deprecated > sunset => {
                vars.problem(
                    "API_SUNSETS",
                    &format!("{version} is retired ({sunset}) before it is deprecated ({deprecated})"),
                );
            }
            Some(_) => {}
        }
    }
    settings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> (ApiVersionSettings, Vec<String>) {
        let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let lookup = |name: &str| map.get(name).cloned();
        let mut vars = Vars::new(&lookup);
        let settings = settings(&mut vars);
        (settings, vars.into_problems())
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn defaults_serve_the_latest_version_with_nothing_deprecated() {
        let (settings, problems) = read(&[]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(settings, ApiVersionSettings::default());
        assert_eq!(settings.default_version, ApiVersion::V2);
        assert!(settings.sunset_enforced);
        assert_eq!(settings.deprecation(ApiVersion::V1, "GET", Some("/api/v1/app/projects")), None);
    }

    #[test]
    fn versions_and_routes_get_their_dates() {
        let (settings, problems) = read(&[
            ("API_DEFAULT_VERSION", "1"),
            ("API_DEPRECATIONS", " v1=2026-12-01 ,"),
            ("API_SUNSETS", "v1=2027-06-30"),
            (
                "API_DEPRECATED_ROUTES",
                "get /api/v2/app/projects=2026-10-01, DELETE /api/v1/app/projects/{id}=2026-01-15",
            ),
            ("API_SUNSET_ENFORCED", "false"),
        ]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(settings.default_version, ApiVersion::V1);
        assert!(!settings.sunset_enforced);
        assert_eq!(settings.deprecations[&ApiVersion::V1], day("2026-12-01"));
        assert_eq!(settings.deprecated_routes[0].method, "GET");

        let version = settings.deprecation(ApiVersion::V1, "GET", Some("/api/v1/app/projects")).unwrap();
        assert_eq!(version.deprecated.to_rfc3339(), "2026-12-01T00:00:00+00:00");
        assert_eq!(version.sunset.map(|s| s.to_rfc3339()).as_deref(), Some("2027-06-30T00:00:00+00:00"));
        let route = settings.deprecation(ApiVersion::V1, "DELETE", Some("/api/v1/app/projects/{id}")).unwrap();
        assert_eq!(route.deprecated.date_naive(), day("2026-01-15"), "the earlier date wins");
        let v2_route = settings.deprecation(ApiVersion::V2, "GET", Some("/api/v2/app/projects")).unwrap();
        assert_eq!((v2_route.deprecated.date_naive(), v2_route.sunset), (day("2026-10-01"), None));
        assert_eq!(settings.deprecation(ApiVersion::V2, "POST", Some("/api/v2/app/projects")), None);
        assert_eq!(settings.deprecation(ApiVersion::V2, "GET", None), None);
    }

    #[test]
    fn a_version_deprecates_something_when_it_or_one_of_its_routes_is_deprecated() {
        let (nothing, _) = read(&[]);
        assert!(!nothing.deprecates_any(ApiVersion::V1) && !nothing.deprecates_any(ApiVersion::V2));
        let (version, _) = read(&[("API_DEPRECATIONS", "v1=2026-12-01")]);
        assert!(version.deprecates_any(ApiVersion::V1) && !version.deprecates_any(ApiVersion::V2));
        let (route, problems) = read(&[("API_DEPRECATED_ROUTES", "GET /api/v2/app/projects=2026-10-01")]);
        assert!(problems.is_empty(), "{problems:?}");
        assert!(!route.deprecates_any(ApiVersion::V1) && route.deprecates_any(ApiVersion::V2));
    }

    #[test]
    fn retirement_starts_at_midnight_utc_of_the_sunset() {
        let (settings, _) = read(&[("API_DEPRECATIONS", "v1=2026-12-01"), ("API_SUNSETS", "v1=2027-06-30")]);
        let deprecation = settings.deprecation(ApiVersion::V1, "GET", None).unwrap();
        let at = |text: &str| DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc);
        assert!(!deprecation.is_retired(at("2027-06-29T23:59:59Z")));
        assert!(deprecation.is_retired(at("2027-06-30T00:00:00Z")));
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            ("API_DEFAULT_VERSION", "v3"),
            ("API_DEPRECATIONS", "v3=2026-12-01"),
            ("API_DEPRECATIONS", "v1"),
            ("API_DEPRECATIONS", "v1=2026-13-01"),
            ("API_DEPRECATIONS", "v1=2026-1-1"),
            ("API_DEPRECATIONS", "v1=2026-12-01,v1=2026-12-02"),
            ("API_DEPRECATED_ROUTES", "/api/v1/app/projects=2026-12-01"),
            ("API_DEPRECATED_ROUTES", "FETCH /api/v1/app/projects=2026-12-01"),
            ("API_DEPRECATED_ROUTES", "GET /app/projects=2026-12-01"),
            ("API_DEPRECATED_ROUTES", "GET /api/v9/app/projects=2026-12-01"),
            ("API_DEPRECATED_ROUTES", "GET /api/v1/app/projects"),
            ("API_SUNSET_ENFORCED", "sometimes"),
        ] {
            let (_, problems) = read(&[(name, value)]);
            assert_eq!(problems.len(), 1, "{name}={value}: {problems:?}");
            assert!(problems[0].starts_with(&format!("{name}: ")), "{problems:?}");
        }
    }

    #[test]
    fn a_sunset_needs_an_earlier_deprecation_and_a_successor() {
        for (deprecations, sunsets) in
            [("", "v1=2027-06-30"), ("v1=2027-07-01", "v1=2027-06-30"), ("v2=2026-01-01", "v2=2027-06-30")]
        {
            let (_, problems) = read(&[("API_DEPRECATIONS", deprecations), ("API_SUNSETS", sunsets)]);
            assert_eq!(problems.len(), 1, "{deprecations} / {sunsets}: {problems:?}");
            assert!(problems[0].starts_with("API_SUNSETS: "), "{problems:?}");
        }
    }

    #[test]
    fn describe_prints_values_as_they_are_written() {
        let (settings, _) = read(&[
            ("API_DEPRECATIONS", "v1=2026-12-01"),
            ("API_SUNSETS", "v1=2027-06-30"),
            ("API_DEPRECATED_ROUTES", "GET /api/v1/app/projects=2026-12-01"),
        ]);
        let described: BTreeMap<_, _> = settings.describe().into_iter().collect();
        assert_eq!(described["API_DEPRECATIONS"], "v1=2026-12-01");
        assert_eq!(described["API_SUNSETS"], "v1=2027-06-30");
        assert_eq!(described["API_DEPRECATED_ROUTES"], "GET /api/v1/app/projects=2026-12-01");
        assert_eq!(described["API_DEFAULT_VERSION"], "v2");
        assert_eq!(described["API_SUNSET_ENFORCED"], "true");
    }
}
