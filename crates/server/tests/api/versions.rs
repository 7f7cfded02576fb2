//! API versions: the version headers, v2's shapes, unversioned routing and deprecation.

mod deprecation;
mod negotiation;
mod v2_shapes;

use omnistack_testkit::TestResponse;
use serde_json::Value;

/// Asserts the version headers of an `/api/…` response.
fn assert_version_headers(res: &TestResponse, version: &str) {
    assert_eq!(res.header("x-api-version"), Some(version), "X-API-Version on {} {}", res.status, res.text);
    assert_eq!(res.header("x-api-latest-version"), Some("v2"), "X-API-Latest-Version on {}", res.status);
}

/// The sorted keys of a JSON object.
fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value.as_object().expect("an object").keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}
