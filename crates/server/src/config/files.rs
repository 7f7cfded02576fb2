//! File storage settings (`STORAGE_PROVIDER`, `S3_*`, `FILES_*`).

use std::path::Path;
use std::time::Duration;

use super::parse::{self, Vars};
use super::secret::Secret;

/// 100 MiB.
const DEFAULT_MAX_BYTES: u64 = 100 * 1024 * 1024;

/// What `FILES_ALLOWED_TYPES` allows when unset: common documents, images, audio and video
/// that browsers do not run. HTML, SVG and XML are left out (they can carry scripts).
pub const DEFAULT_ALLOWED_TYPES: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/avif",
    "application/pdf",
    "text/plain",
    "text/csv",
    "text/markdown",
    "application/json",
    "application/zip",
    "application/gzip",
    "audio/mpeg",
    "audio/ogg",
    "audio/wav",
    "video/mp4",
    "video/webm",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
];

/// Where file bytes are kept.
#[derive(Clone, Debug)]
pub enum StorageProvider {
    /// `local`: under `DATA_DIR/files`, uploaded and downloaded through the binary's own signed
    /// routes.
    Local {
        /// `DATA_DIR/files`.
        root: std::path::PathBuf,
    },
    /// `s3`: any S3-compatible store, through presigned URLs.
    S3(S3Settings),
}

/// `S3_*`.
#[derive(Clone, Debug)]
pub struct S3Settings {
    /// `S3_BUCKET`.
    pub bucket: String,
    /// `S3_REGION` (default `us-east-1`; R2 takes `auto`).
    pub region: String,
    /// `S3_ENDPOINT`: the store's base URL (default `https://s3.<region>.amazonaws.com`).
    pub endpoint: String,
    /// `S3_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `S3_SECRET_ACCESS_KEY`.
    pub secret_access_key: Secret,
    /// `S3_FORCE_PATH_STYLE`: `<endpoint>/<bucket>/<key>` instead of `<bucket>.<endpoint host>`
    /// (MinIO and most self-hosted stores need it).
    pub force_path_style: bool,
}

/// Which media types may be uploaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowedTypes {
    /// `*`: any well-formed type.
    Any,
    /// Only these (lowercase).
    List(Vec<String>),
}

impl AllowedTypes {
    /// Whether `content_type` (lowercase, no parameters) may be uploaded.
    pub fn allows(&self, content_type: &str) -> bool {
        match self {
            AllowedTypes::Any => true,
            AllowedTypes::List(list) => list.iter().any(|t| t == content_type),
        }
    }
}

/// File storage.
#[derive(Clone, Debug)]
pub struct FileSettings {
    /// `STORAGE_PROVIDER` and its settings.
    pub provider: StorageProvider,
    /// `FILES_MAX_BYTES`: the largest file.
    pub max_bytes: u64,
    /// `FILES_ALLOWED_TYPES`: comma-separated media types, or `*`.
    pub allowed_types: AllowedTypes,
    /// `FILES_MAX_PENDING`: uploads one account may have issued and not yet confirmed.
    pub max_pending: i64,
    /// `FILES_URL_EXPIRE_SECONDS`: how long upload and download URLs are valid.
    pub url_ttl: Duration,
    /// `FILES_PUBLIC_URL`: the origin clients reach this server at, for the `local` provider's
    /// URLs (`https://api.example.com`); unset, those URLs are root-relative (`/files/…`).
    pub public_url: Option<String>,
}

impl FileSettings {
    /// Every file setting as `(VARIABLE, value)`, secrets redacted.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let mut described = vec![
            (
                "STORAGE_PROVIDER",
                match self.provider {
                    StorageProvider::Local { .. } => "local".to_owned(),
                    StorageProvider::S3(_) => "s3".to_owned(),
                },
            ),
            ("FILES_MAX_BYTES", self.max_bytes.to_string()),
            (
                "FILES_ALLOWED_TYPES",
                match &self.allowed_types {
                    AllowedTypes::Any => "*".to_owned(),
                    AllowedTypes::List(list) => list.join(","),
                },
            ),
            ("FILES_MAX_PENDING", self.max_pending.to_string()),
            ("FILES_URL_EXPIRE_SECONDS", self.url_ttl.as_secs().to_string()),
            ("FILES_PUBLIC_URL", self.public_url.clone().unwrap_or_default()),
        ];
        if let StorageProvider::S3(s3) = &self.provider {
            described.extend([
                ("S3_BUCKET", s3.bucket.clone()),
                ("S3_REGION", s3.region.clone()),
                ("S3_ENDPOINT", s3.endpoint.clone()),
                ("S3_ACCESS_KEY_ID", s3.access_key_id.clone()),
                ("S3_SECRET_ACCESS_KEY", s3.secret_access_key.to_string()),
                ("S3_FORCE_PATH_STYLE", s3.force_path_style.to_string()),
            ]);
        }
        described
    }
}

/// A media type as uploads declare it: `type/subtype` of RFC 6838 characters, no parameters,
/// at most 127 bytes; lowercased.
pub fn media_type(value: &str) -> Option<String> {
    let lower = value.trim().to_ascii_lowercase();
    let (kind, subtype) = lower.split_once('/')?;
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
            && s.as_bytes()[0].is_ascii_alphanumeric()
    };
    (lower.len() <= 127 && token(kind) && token(subtype)).then_some(lower)
}

fn allowed_types(value: &str) -> Result<AllowedTypes, String> {
    if value == "*" {
        return Ok(AllowedTypes::Any);
    }
    let mut list = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        list.push(media_type(item).ok_or_else(|| format!("{item:?} is not a media type (type/subtype)"))?);
    }
    if list.is_empty() {
        return Err("must be `*` or a comma-separated list of media types".into());
    }
    Ok(AllowedTypes::List(list))
}

fn url_origin(value: &str) -> Result<String, String> {
    let parsed = url::Url::parse(value).map_err(|_| "must be an http(s) URL".to_owned())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err("must be an http(s) URL".into());
    }
    Ok(value.trim_end_matches('/').to_owned())
}

fn s3_settings(vars: &mut Vars<'_>) -> Option<S3Settings> {
    let mut missing = Vec::new();
    let mut required = |vars: &mut Vars<'_>, name: &'static str| {
        let value = vars.string(name, "");
        if value.is_empty() {
            missing.push(name);
        }
        value
    };
    let bucket = required(vars, "S3_BUCKET");
    let access_key_id = required(vars, "S3_ACCESS_KEY_ID");
    let secret_access_key = required(vars, "S3_SECRET_ACCESS_KEY");
    if !missing.is_empty() {
        vars.problem("STORAGE_PROVIDER", &format!("s3 needs {}", missing.join(", ")));
        return None;
    }
    let region = vars.string("S3_REGION", "us-east-1");
    let endpoint = vars.parse("S3_ENDPOINT", &format!("https://s3.{region}.amazonaws.com"), url_origin)?;
    let force_path_style = vars.parse("S3_FORCE_PATH_STYLE", "false", parse::boolean)?;
    Some(S3Settings {
        bucket,
        region,
        endpoint,
        access_key_id,
        secret_access_key: Secret::new(secret_access_key),
        force_path_style,
    })
}

pub(super) fn settings(vars: &mut Vars<'_>, data_dir: &Path) -> FileSettings {
    let provider = match vars.parse("STORAGE_PROVIDER", "local", |v| match v {
        "local" | "s3" => Ok(v.to_owned()),
        _ => Err("must be local or s3".into()),
    }) {
        Some(p) if p == "s3" => s3_settings(vars).map(StorageProvider::S3),
        _ => None,
    }
    .unwrap_or_else(|| StorageProvider::Local { root: data_dir.join("files") });
    let defaults = DEFAULT_ALLOWED_TYPES.join(",");
    FileSettings {
        provider,
        max_bytes: vars
            .parse("FILES_MAX_BYTES", &DEFAULT_MAX_BYTES.to_string(), |v| parse::number(v, 1, 5 * 1024 * 1024 * 1024))
            .unwrap_or(DEFAULT_MAX_BYTES),
        allowed_types: vars
            .parse("FILES_ALLOWED_TYPES", &defaults, allowed_types)
            .unwrap_or_else(|| AllowedTypes::List(Vec::new())),
        max_pending: vars
            .parse("FILES_MAX_PENDING", "100", |v| parse::number(v, 1, 1_000_000_000))
            .map_or(100, |n| n as i64),
        url_ttl: Duration::from_secs(
            vars.parse("FILES_URL_EXPIRE_SECONDS", "900", |v| parse::number(v, 10, 7 * 86_400)).unwrap_or(900),
        ),
        public_url: vars.optional("FILES_PUBLIC_URL", url_origin).flatten(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> (FileSettings, Vec<String>) {
        let lookup = |name: &str| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned());
        let mut vars = Vars::new(&lookup);
        let settings = settings(&mut vars, Path::new("/data"));
        (settings, vars.into_problems())
    }

    #[test]
    fn defaults_are_local_100_mib_and_a_safe_list() {
        let (files, problems) = read(&[]);
        assert!(problems.is_empty());
        assert!(matches!(files.provider, StorageProvider::Local { ref root } if root == Path::new("/data/files")));
        assert_eq!(files.max_bytes, 100 * 1024 * 1024);
        assert!(files.allowed_types.allows("image/png"));
        assert!(!files.allowed_types.allows("text/html"));
        assert!(!files.allowed_types.allows("image/svg+xml"));
    }

    #[test]
    fn s3_without_its_variables_names_them() {
        let (_, problems) = read(&[("STORAGE_PROVIDER", "s3"), ("S3_BUCKET", "b")]);
        assert_eq!(problems, vec!["STORAGE_PROVIDER: s3 needs S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY".to_owned()]);
        let (files, problems) = read(&[
            ("STORAGE_PROVIDER", "s3"),
            ("S3_BUCKET", "b"),
            ("S3_ACCESS_KEY_ID", "k"),
            ("S3_SECRET_ACCESS_KEY", "s"),
            ("S3_REGION", "eu-west-3"),
        ]);
        assert!(problems.is_empty(), "{problems:?}");
        let StorageProvider::S3(s3) = files.provider else { panic!("s3") };
        assert_eq!(s3.endpoint, "https://s3.eu-west-3.amazonaws.com");
        assert!(!format!("{:?}", s3).contains("\"s\""), "the secret is redacted");
    }

    #[test]
    fn allowed_types_take_a_star_or_a_list_of_media_types() {
        assert_eq!(read(&[("FILES_ALLOWED_TYPES", "*")]).0.allowed_types, AllowedTypes::Any);
        let (files, _) = read(&[("FILES_ALLOWED_TYPES", "Image/PNG, text/plain")]);
        assert_eq!(files.allowed_types, AllowedTypes::List(vec!["image/png".into(), "text/plain".into()]));
        assert_eq!(read(&[("FILES_ALLOWED_TYPES", "png")]).1.len(), 1);
        assert_eq!(read(&[("STORAGE_PROVIDER", "ftp")]).1.len(), 1);
        assert_eq!(read(&[("FILES_PUBLIC_URL", "ftp://x")]).1.len(), 1);
    }

    #[test]
    fn media_types_are_two_tokens_without_parameters() {
        assert_eq!(media_type("Text/Plain").as_deref(), Some("text/plain"));
        for bad in ["text", "text/plain; charset=utf-8", "text/", "/plain", "te xt/plain", "text/pla\0in", "a/b/c"] {
            assert_eq!(media_type(bad), None, "{bad:?}");
        }
        assert_eq!(media_type(&format!("a/{}", "b".repeat(64))), None);
    }
}
