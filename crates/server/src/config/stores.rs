//! In-app purchase stores: the App Store (`APPLE_*`) and Google Play (`GOOGLE_*`). A store is
//! configured when its required variables are all set; its webhook and link routes answer 503
//! otherwise. Half a store (some variables set, others not) is a configuration error naming
//! what is missing.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use super::Secret;
use super::parse::{self, Vars};

/// Google's published keys for the OIDC tokens Pub/Sub push sends.
pub const GOOGLE_CERTS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";
/// The Android Publisher API.
pub const GOOGLE_PLAY_API: &str = "https://androidpublisher.googleapis.com";
/// At most this many root certificates.
const MAX_ROOTS: usize = 10;
/// A root certificate file larger than this is refused.
const MAX_PEM_BYTES: u64 = 64 * 1024;

/// The App Store's environments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppleEnvironment {
    /// Real purchases.
    Production,
    /// Test purchases (Xcode, TestFlight, sandbox accounts).
    Sandbox,
}

impl AppleEnvironment {
    /// The name Apple signs (`data.environment`).
    pub fn as_str(self) -> &'static str {
        match self {
            AppleEnvironment::Production => "Production",
            AppleEnvironment::Sandbox => "Sandbox",
        }
    }
}

/// The App Store: whose notifications and transactions are believed.
#[derive(Clone, Debug)]
pub struct AppleSettings {
    /// `APPLE_ROOT_CERTS`: the trusted roots (DER), read from the PEM files listed.
    pub root_certs: Vec<Vec<u8>>,
    /// `APPLE_ROOT_CERTS` as given (the paths).
    pub root_paths: String,
    /// `APPLE_BUNDLE_ID`: the app's bundle id.
    pub bundle_id: String,
    /// `APPLE_ENVIRONMENT`: `Production` (default) or `Sandbox`.
    pub environment: AppleEnvironment,
}

/// A Google service account key (`GOOGLE_PLAY_SERVICE_ACCOUNT_JSON`).
#[derive(Clone, Debug)]
pub struct ServiceAccountKey {
    /// `client_email`: the assertion's issuer.
    pub client_email: String,
    /// `private_key_id`: the assertion's `kid`, when given.
    pub private_key_id: Option<String>,
    /// `private_key`: RSA, PKCS#8 PEM.
    pub private_key: Secret,
    /// `token_uri`: where the assertion is exchanged for an access token.
    pub token_uri: String,
}

/// Google Play: whose push deliveries are believed and how the Publisher API is reached.
#[derive(Clone, Debug)]
pub struct GoogleSettings {
    /// `GOOGLE_PUBSUB_JWKS_URL`: the keys of the push's OIDC token (default Google's).
    pub jwks_url: String,
    /// `GOOGLE_PUBSUB_AUDIENCE`: the push subscription's audience.
    pub audience: String,
    /// `GOOGLE_PUBSUB_SERVICE_ACCOUNT`: the service account the push subscription signs as.
    pub push_service_account: String,
    /// `GOOGLE_PLAY_PACKAGE_NAME`: the app's package name.
    pub package_name: String,
    /// `GOOGLE_PLAY_SERVICE_ACCOUNT_JSON`: the key that calls the Publisher API.
    pub service_account: ServiceAccountKey,
    /// `GOOGLE_PLAY_API_BASE`: the Publisher API's base URL (default Google's).
    pub api_base: String,
}

/// Both stores; `None`: not configured.
#[derive(Clone, Debug, Default)]
pub struct StoreSettings {
    /// The App Store.
    pub apple: Option<AppleSettings>,
    /// Google Play.
    pub google: Option<GoogleSettings>,
}

impl StoreSettings {
    /// Every store variable as `(VARIABLE, value)`, the service account key redacted.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let apple = self.apple.as_ref();
        let google = self.google.as_ref();
        vec![
            ("APPLE_ROOT_CERTS", apple.map(|a| a.root_paths.clone()).unwrap_or_default()),
            ("APPLE_BUNDLE_ID", apple.map(|a| a.bundle_id.clone()).unwrap_or_default()),
            ("APPLE_ENVIRONMENT", apple.map_or("Production", |a| a.environment.as_str()).to_owned()),
            ("GOOGLE_PUBSUB_JWKS_URL", google.map_or(GOOGLE_CERTS_URL, |g| g.jwks_url.as_str()).to_owned()),
            ("GOOGLE_PUBSUB_AUDIENCE", google.map(|g| g.audience.clone()).unwrap_or_default()),
            ("GOOGLE_PUBSUB_SERVICE_ACCOUNT", google.map(|g| g.push_service_account.clone()).unwrap_or_default()),
            ("GOOGLE_PLAY_PACKAGE_NAME", google.map(|g| g.package_name.clone()).unwrap_or_default()),
            ("GOOGLE_PLAY_SERVICE_ACCOUNT_JSON", if google.is_some() { "[REDACTED]".into() } else { String::new() }),
            ("GOOGLE_PLAY_API_BASE", google.map_or(GOOGLE_PLAY_API, |g| g.api_base.as_str()).to_owned()),
        ]
    }
}

/// Reads the store variables.
pub(super) fn settings(vars: &mut Vars<'_>) -> StoreSettings {
    StoreSettings { apple: apple(vars), google: google(vars) }
}

fn apple(vars: &mut Vars<'_>) -> Option<AppleSettings> {
    let roots = vars.optional("APPLE_ROOT_CERTS", read_roots);
    let bundle_id = vars.optional("APPLE_BUNDLE_ID", |v| identifier(v, 155));
    let environment = vars.parse("APPLE_ENVIRONMENT", "Production", |v| match v {
        "Production" => Ok(AppleEnvironment::Production),
        "Sandbox" => Ok(AppleEnvironment::Sandbox),
        _ => Err(format!("must be Production or Sandbox, got {v:?}")),
    });
    let (roots, bundle_id) = (roots?, bundle_id?);
    match (roots, bundle_id) {
        (None, None) => None,
        (Some((root_paths, root_certs)), Some(bundle_id)) => {
            Some(AppleSettings { root_certs, root_paths, bundle_id, environment: environment? })
        }
        (None, Some(_)) => {
            vars.problem("APPLE_ROOT_CERTS", "must be set with APPLE_BUNDLE_ID (Apple Root CA G3's PEM file)");
            None
        }
        (Some(_), None) => {
            vars.problem("APPLE_BUNDLE_ID", "must be set with APPLE_ROOT_CERTS (the app's bundle id)");
            None
        }
    }
}

fn google(vars: &mut Vars<'_>) -> Option<GoogleSettings> {
    let jwks_url = vars.parse("GOOGLE_PUBSUB_JWKS_URL", GOOGLE_CERTS_URL, parse::http_url);
    let api_base = vars.parse("GOOGLE_PLAY_API_BASE", GOOGLE_PLAY_API, |v| parse::http_url(v.trim_end_matches('/')));
    let audience = vars.optional("GOOGLE_PUBSUB_AUDIENCE", |v| bounded(v, 500));
    let push_account = vars.optional("GOOGLE_PUBSUB_SERVICE_ACCOUNT", |v| {
        bounded(v, 254).and_then(|v| if v.contains('@') { Ok(v) } else { Err("must be an email address".into()) })
    });
    let package = vars.optional("GOOGLE_PLAY_PACKAGE_NAME", |v| identifier(v, 255));
    let key = vars.optional("GOOGLE_PLAY_SERVICE_ACCOUNT_JSON", service_account);
    let required = [
        ("GOOGLE_PUBSUB_AUDIENCE", audience.as_ref().map(Option::is_some)),
        ("GOOGLE_PUBSUB_SERVICE_ACCOUNT", push_account.as_ref().map(Option::is_some)),
        ("GOOGLE_PLAY_PACKAGE_NAME", package.as_ref().map(Option::is_some)),
        ("GOOGLE_PLAY_SERVICE_ACCOUNT_JSON", key.as_ref().map(Option::is_some)),
    ];
    if required.iter().all(|(_, set)| *set == Some(false)) {
        return None;
    }
    for (name, set) in required {
        if set == Some(false) {
            vars.problem(name, "must be set with the other GOOGLE_PUBSUB_* and GOOGLE_PLAY_* variables");
        }
    }
    Some(GoogleSettings {
        jwks_url: jwks_url?,
        audience: audience??,
        push_service_account: push_account??,
        package_name: package??,
        service_account: key??,
        api_base: api_base?,
    })
}

/// Visible ASCII, 1 to `max` bytes.
fn bounded(value: &str, max: usize) -> Result<String, String> {
    if value.len() <= max && value.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(value.to_owned())
    } else {
        Err(format!("must be at most {max} visible ASCII characters"))
    }
}

/// A reverse-DNS id (`com.example.app`): letters, digits, `.`, `-`, `_`.
fn identifier(value: &str, max: usize) -> Result<String, String> {
    let valid = value.len() <= max && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if valid { Ok(value.to_owned()) } else { Err(format!("must be an id such as com.example.app, got {value:?}")) }
}

/// The certificates of the PEM files listed (comma-separated).
fn read_roots(value: &str) -> Result<(String, Vec<Vec<u8>>), String> {
    let paths: Vec<&str> = value.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
    if paths.is_empty() || paths.len() > MAX_ROOTS {
        return Err(format!("must list 1 to {MAX_ROOTS} PEM files"));
    }
    let mut certs = Vec::new();
    for path in &paths {
        let too_big = std::fs::metadata(path).map(|m| m.len() > MAX_PEM_BYTES).unwrap_or(false);
        if too_big {
            return Err(format!("{path} is larger than {MAX_PEM_BYTES} bytes"));
        }
        let text = std::fs::read_to_string(path).map_err(|err| format!("cannot read {path}: {err}"))?;
        let found = pem_certificates(&text).map_err(|err| format!("{path}: {err}"))?;
        if found.is_empty() {
            return Err(format!("{path} holds no BEGIN CERTIFICATE block"));
        }
        certs.extend(found);
    }
    for (i, der) in certs.iter().enumerate() {
        webpki::anchor_from_trusted_cert(&rustls::pki_types::CertificateDer::from(der.as_slice()))
            .map_err(|err| format!("certificate number {} cannot be a trust anchor: {err}", i + 1))?;
    }
    Ok((paths.join(","), certs))
}

/// The DER of every `CERTIFICATE` block in `text`.
pub fn pem_certificates(text: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut certs = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let body = &rest[start + "-----BEGIN CERTIFICATE-----".len()..];
        let end = body.find("-----END CERTIFICATE-----").ok_or("a certificate block is not closed")?;
        let base64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
        certs.push(STANDARD.decode(base64).map_err(|_| "a certificate block is not base64")?);
        rest = &body[end..];
    }
    Ok(certs)
}

#[derive(Deserialize)]
struct KeyFile {
    client_email: String,
    private_key: String,
    private_key_id: Option<String>,
    token_uri: String,
}

/// The key's JSON, inline (`{…}`) or in the file named.
fn service_account(value: &str) -> Result<ServiceAccountKey, String> {
    let json = if value.starts_with('{') {
        value.to_owned()
    } else {
        std::fs::read_to_string(value).map_err(|err| format!("cannot read {value}: {err}"))?
    };
    let key: KeyFile = serde_json::from_str(&json)
        .map_err(|_| "must be a service account key (JSON with client_email, private_key, token_uri)".to_owned())?;
    jsonwebtoken::EncodingKey::from_rsa_pem(key.private_key.as_bytes())
        .map_err(|_| "private_key is not an RSA private key in PEM".to_owned())?;
    let token_uri = parse::http_url(&key.token_uri).map_err(|err| format!("token_uri {err}"))?;
    Ok(ServiceAccountKey {
        client_email: bounded(&key.client_email, 254).map_err(|err| format!("client_email {err}"))?,
        private_key_id: key.private_key_id.filter(|id| !id.is_empty() && id.len() <= 200),
        private_key: Secret::new(key.private_key),
        token_uri,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/apple");

    fn read(pairs: &[(&str, &str)]) -> (StoreSettings, Vec<String>) {
        let map: std::collections::HashMap<String, String> =
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let lookup = move |name: &str| map.get(name).cloned();
        let mut vars = Vars::new(&lookup);
        let settings = settings(&mut vars);
        (settings, vars.into_problems())
    }

    fn key_json() -> String {
        let pem = include_str!("../../../testkit/keys/rsa_a.pem");
        serde_json::json!({"client_email": "play@example.iam.gserviceaccount.com", "private_key": pem,
            "private_key_id": "k1", "token_uri": "https://oauth2.googleapis.com/token"})
        .to_string()
    }

    #[test]
    fn nothing_set_configures_no_store() {
        let (settings, problems) = read(&[]);
        assert!(problems.is_empty() && settings.apple.is_none() && settings.google.is_none(), "{problems:?}");
    }

    #[test]
    fn apple_reads_its_roots_and_names_what_is_missing_or_wrong() {
        let roots = format!("{FIXTURES}/root.pem, {FIXTURES}/other-root.pem");
        let (settings, problems) = read(&[
            ("APPLE_ROOT_CERTS", &roots),
            ("APPLE_BUNDLE_ID", "com.example.app"),
            ("APPLE_ENVIRONMENT", "Sandbox"),
        ]);
        assert!(problems.is_empty(), "{problems:?}");
        let apple = settings.apple.unwrap();
        assert_eq!((apple.root_certs.len(), apple.environment), (2, AppleEnvironment::Sandbox));
        for (pairs, variable) in [
            (vec![("APPLE_BUNDLE_ID", "com.example.app")], "APPLE_ROOT_CERTS"),
            (vec![("APPLE_ROOT_CERTS", roots.as_str())], "APPLE_BUNDLE_ID"),
            (vec![("APPLE_ROOT_CERTS", "/nonexistent.pem"), ("APPLE_BUNDLE_ID", "a.b")], "APPLE_ROOT_CERTS"),
            (vec![("APPLE_ROOT_CERTS", concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))], "APPLE_ROOT_CERTS"),
            (vec![("APPLE_ROOT_CERTS", roots.as_str()), ("APPLE_BUNDLE_ID", "a b")], "APPLE_BUNDLE_ID"),
            (
                vec![("APPLE_ROOT_CERTS", roots.as_str()), ("APPLE_BUNDLE_ID", "a.b"), ("APPLE_ENVIRONMENT", "prod")],
                "APPLE_ENVIRONMENT",
            ),
        ] {
            let (settings, problems) = read(&pairs);
            assert!(settings.apple.is_none(), "{pairs:?}");
            assert!(problems.iter().any(|p| p.starts_with(variable)), "{pairs:?}: {problems:?}");
        }
    }

    #[test]
    fn google_needs_all_four_and_never_prints_its_key() {
        let json = key_json();
        let all = [
            ("GOOGLE_PUBSUB_AUDIENCE", "https://api.example.com/api/v1/public/webhooks/google"),
            ("GOOGLE_PUBSUB_SERVICE_ACCOUNT", "push@example.iam.gserviceaccount.com"),
            ("GOOGLE_PLAY_PACKAGE_NAME", "com.example.app"),
            ("GOOGLE_PLAY_SERVICE_ACCOUNT_JSON", json.as_str()),
        ];
        let (settings, problems) = read(&all);
        assert!(problems.is_empty(), "{problems:?}");
        let google = settings.google.clone().unwrap();
        assert_eq!((google.jwks_url.as_str(), google.api_base.as_str()), (GOOGLE_CERTS_URL, GOOGLE_PLAY_API));
        assert_eq!(google.service_account.private_key_id.as_deref(), Some("k1"));
        let shown = format!("{settings:?} {:?}", settings.describe());
        assert!(!shown.contains("PRIVATE KEY") && !shown.contains("MII"), "{shown}");

        let (settings, problems) = read(&all[..3]);
        assert!(settings.google.is_none());
        assert!(problems.iter().any(|p| p.starts_with("GOOGLE_PLAY_SERVICE_ACCOUNT_JSON")), "{problems:?}");
        let broken = [all[0], all[1], all[2], ("GOOGLE_PLAY_SERVICE_ACCOUNT_JSON", r#"{"client_email":"x"}"#)];
        let (_, problems) = read(&broken);
        assert!(problems.iter().any(|p| p.starts_with("GOOGLE_PLAY_SERVICE_ACCOUNT_JSON")), "{problems:?}");
        let (_, problems) = read(&[all[0], all[1], all[2], all[3], ("GOOGLE_PLAY_API_BASE", "ftp://x")]);
        assert!(problems.iter().any(|p| p.starts_with("GOOGLE_PLAY_API_BASE")), "{problems:?}");
    }
}
