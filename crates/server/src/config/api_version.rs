//! The API versions this server speaks, which one is the latest, and how clients name them.
//!
//! Adding a version: a variant here (and in [`ApiVersion::ALL`]), its module `api/vN.rs`, one
//! line in `router::build`; see "Adding a version" in `docs/API.md`.

use std::fmt;

/// A released API version, served under `/api/vN/…`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ApiVersion {
    /// The Python original's shapes, frozen.
    V1,
    /// Enveloped bodies, cursor pagination.
    V2,
}

impl ApiVersion {
    /// Every version, oldest first.
    pub const ALL: [ApiVersion; 2] = [ApiVersion::V1, ApiVersion::V2];

    /// The newest version: the successor of every deprecated one.
    pub const LATEST: ApiVersion = ApiVersion::V2;

    /// The path segment and header value: `v1`, `v2`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1 => "v1",
            ApiVersion::V2 => "v2",
        }
    }

    /// A version as written in a path segment or a configuration value: `v1`, `v2`.
    pub fn from_name(name: &str) -> Option<ApiVersion> {
        ApiVersion::ALL.into_iter().find(|version| version.as_str() == name)
    }

    /// A version as a client asks for it in `Accept-Version` or `X-API-Version`: `1`, `v1`,
    /// `V1` (surrounding spaces ignored).
    pub fn from_request_header(value: &str) -> Option<ApiVersion> {
        let value = value.trim().to_ascii_lowercase();
        let number = value.strip_prefix('v').unwrap_or(&value);
        ApiVersion::ALL.into_iter().find(|version| &version.as_str()[1..] == number)
    }

    /// `v1, v2`: the supported versions, for messages.
    pub fn supported() -> String {
        ApiVersion::ALL.map(ApiVersion::as_str).join(", ")
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_may_name_a_version_with_or_without_its_v() {
        for (value, expected) in [("1", ApiVersion::V1), ("v1", ApiVersion::V1), (" V2 ", ApiVersion::V2)] {
            assert_eq!(ApiVersion::from_request_header(value), Some(expected), "{value:?}");
        }
        for value in ["3", "v3", "", "v", "1.0", "vv1", "latest"] {
            assert_eq!(ApiVersion::from_request_header(value), None, "{value:?}");
        }
    }

    #[test]
    fn paths_and_configuration_use_the_exact_name() {
        assert_eq!(ApiVersion::from_name("v2"), Some(ApiVersion::V2));
        assert_eq!(ApiVersion::from_name("2"), None);
        assert_eq!(ApiVersion::from_name("V2"), None);
        assert_eq!(ApiVersion::supported(), "v1, v2");
        assert_eq!(ApiVersion::LATEST, *ApiVersion::ALL.last().unwrap());
    }
}
