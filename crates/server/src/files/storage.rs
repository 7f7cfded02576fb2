//! Where file bytes live: a [`Storage`] makes the URLs clients upload to and download from, and
//! looks at or removes an object. [`LocalStorage`] keeps files under `DATA_DIR/files` behind the
//! binary's own signed routes ([`super::signature`]); [`S3Storage`] presigns requests to any
//! S3-compatible store with `rusty-s3` and calls it with `reqwest` (ADR 0018).

use std::path::PathBuf;
use std::time::Duration;

use futures::future::BoxFuture;
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use uuid::Uuid;

use super::signature::{Transfer, TransferSigner};
use crate::config::S3Settings;
use crate::error::{Error, Result};
use crate::telemetry::outbound;

/// An upload the client makes itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadTarget {
    /// Where to send the bytes.
    pub url: String,
    /// Headers to send exactly as given.
    pub headers: Vec<(&'static str, String)>,
}

/// What the store knows of an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Its length in bytes.
    pub size: u64,
    /// Its stored media type, when the store keeps one (the local upload route refuses any
    /// type but the declared one, so it keeps none).
    pub content_type: Option<String>,
}

/// What an upload or download is about.
#[derive(Clone, Copy, Debug)]
pub struct Object<'a> {
    /// The file's id.
    pub id: Uuid,
    /// Its server-made key.
    pub key: &'a str,
}

/// A place to keep files.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// The URL and headers for uploading exactly `size` bytes of `content_type`.
    fn upload_target(&self, object: Object<'_>, content_type: &str, size: i64, ttl: Duration) -> Result<UploadTarget>;
    /// A URL that downloads the object as an attachment with this `Content-Disposition`.
    fn download_url(&self, object: Object<'_>, disposition: &str, ttl: Duration) -> Result<String>;
    /// The object's size and type; `None` when there is no such object.
    fn head<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<ObjectMeta>>>;
    /// Removes the object; removing one that is not there succeeds.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<()>>;
}

/// Unix seconds `ttl` from now.
pub fn expiry(ttl: Duration) -> i64 {
    omnistack_db::time::now().timestamp() + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2)
}

/// Files under a directory, served by the binary's signed `/files/{id}/…` routes.
#[derive(Debug)]
pub struct LocalStorage {
    root: PathBuf,
    signer: TransferSigner,
    public_url: String,
}

impl LocalStorage {
    /// Files under `root`; URLs start with `public_url` (empty: root-relative).
    pub fn new(root: PathBuf, signer: TransferSigner, public_url: Option<&str>) -> LocalStorage {
        LocalStorage { root, signer, public_url: public_url.unwrap_or_default().to_owned() }
    }

    /// The object's path. Keys are made by the server from UUIDs (`<owner>/<file>`); anything
    /// else is refused rather than joined.
    pub fn path(&self, key: &str) -> Result<PathBuf> {
        let safe = !key.is_empty()
            && key.split('/').all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'));
        if !safe {
            return Err(Error::Internal(anyhow::anyhow!("a storage key that is not the server's")));
        }
        Ok(self.root.join(key))
    }

    /// The signer of this store's URLs.
    pub fn signer(&self) -> &TransferSigner {
        &self.signer
    }

    fn url(&self, id: Uuid, action: &str, transfer: Transfer<'_>, ttl: Duration) -> String {
        let expires = expiry(ttl);
        let signature = self.signer.sign(id, transfer, expires);
        format!("{}/files/{id}/{action}?expires={expires}&signature={signature}", self.public_url)
    }
}

impl Storage for LocalStorage {
    fn upload_target(&self, object: Object<'_>, content_type: &str, size: i64, ttl: Duration) -> Result<UploadTarget> {
        let url = self.url(object.id, "upload", Transfer::Upload { content_type, size }, ttl);
        Ok(UploadTarget { url, headers: vec![("Content-Type", content_type.to_owned())] })
    }

    fn download_url(&self, object: Object<'_>, _disposition: &str, ttl: Duration) -> Result<String> {
        // The download route writes the disposition from the row itself.
        Ok(self.url(object.id, "download", Transfer::Download, ttl))
    }

    fn head<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<ObjectMeta>>> {
        Box::pin(async move {
            match tokio::fs::metadata(self.path(key)?).await {
                Ok(meta) if meta.is_file() => Ok(Some(ObjectMeta { size: meta.len(), content_type: None })),
                Ok(_) => Ok(None),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(err) => Err(Error::Internal(anyhow::Error::new(err).context("reading a stored file's size"))),
            }
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match tokio::fs::remove_file(self.path(key)?).await {
                Ok(()) => Ok(()),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(err) => Err(Error::Internal(anyhow::Error::new(err).context("removing a stored file"))),
            }
        })
    }
}

/// An S3-compatible bucket.
pub struct S3Storage {
    bucket: Bucket,
    credentials: Credentials,
    http: reqwest::Client,
}

impl std::fmt::Debug for S3Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Storage").field("bucket", &self.bucket.name()).finish_non_exhaustive()
    }
}

/// How long one call to the store may take.
const S3_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the presigned requests the server itself sends are valid.
const OWN_REQUEST_TTL: Duration = Duration::from_secs(60);

impl S3Storage {
    /// The bucket `settings` name, called through `http`.
    pub fn new(settings: &S3Settings, http: reqwest::Client) -> anyhow::Result<S3Storage> {
        let endpoint = settings.endpoint.parse()?;
        let style = if settings.force_path_style { UrlStyle::Path } else { UrlStyle::VirtualHost };
        let bucket = Bucket::new(endpoint, style, settings.bucket.clone(), settings.region.clone())?;
        let credentials =
            Credentials::new(settings.access_key_id.clone(), settings.secret_access_key.expose().to_owned());
        Ok(S3Storage { bucket, credentials, http })
    }

    fn unavailable(what: &str, detail: impl std::fmt::Display) -> Error {
        tracing::warn!(error = %detail, "object storage: {what} failed");
        Error::ExternalService("the file store did not answer".into())
    }
}

impl Storage for S3Storage {
    fn upload_target(&self, object: Object<'_>, content_type: &str, size: i64, ttl: Duration) -> Result<UploadTarget> {
        let mut action = self.bucket.put_object(Some(&self.credentials), object.key);
        let length = size.to_string();
        // Signed headers: S3 refuses the PUT unless both are sent with exactly these values.
        action.headers_mut().insert("content-length", length);
        action.headers_mut().insert("content-type", content_type.to_owned());
        let url = action.sign(ttl).to_string();
        Ok(UploadTarget { url, headers: vec![("Content-Type", content_type.to_owned())] })
    }

    fn download_url(&self, object: Object<'_>, disposition: &str, ttl: Duration) -> Result<String> {
        let mut action = self.bucket.get_object(Some(&self.credentials), object.key);
        action.query_mut().insert("response-content-disposition", disposition.to_owned());
        Ok(action.sign(ttl).to_string())
    }

    fn head<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<ObjectMeta>>> {
        Box::pin(async move {
            let url = self.bucket.head_object(Some(&self.credentials), key).sign(OWN_REQUEST_TTL);
            let response = outbound::send(self.http.head(url.as_str()).timeout(S3_TIMEOUT))
                .await
                .map_err(|err| Self::unavailable("HEAD", err))?;
            match response.status().as_u16() {
                404 => Ok(None),
                200 => {
                    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
                    let size = header("content-length").and_then(|v| v.parse().ok());
                    let Some(size) = size else { return Err(Self::unavailable("HEAD", "no Content-Length")) };
                    Ok(Some(ObjectMeta { size, content_type: header("content-type").map(str::to_owned) }))
                }
                status => Err(Self::unavailable("HEAD", status)),
            }
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let url = self.bucket.delete_object(Some(&self.credentials), key).sign(OWN_REQUEST_TTL);
            let response = outbound::send(self.http.delete(url.as_str()).timeout(S3_TIMEOUT))
                .await
                .map_err(|err| Self::unavailable("DELETE", err))?;
            match response.status().as_u16() {
                200 | 204 | 404 => Ok(()),
                status => Err(Self::unavailable("DELETE", status)),
            }
        })
    }
}
