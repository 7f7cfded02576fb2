//! A real S3 implementation for the file tests: `moto`'s server (PyPI, a pinned version,
//! installed into `target/moto-venv` on first use), started on a free port with a bucket of its
//! own. It never skips: a test that asks for it fails loudly when it cannot start.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The moto release the tests run against.
pub const MOTO_VERSION: &str = "5.2.5";
/// The bucket [`MotoS3::start`] creates.
pub const BUCKET: &str = "omnistack-test";
/// The region the tests configure.
pub const REGION: &str = "us-east-1";
/// Credentials moto accepts (it does not check them).
pub const ACCESS_KEY_ID: &str = "testing-access-key";
/// See [`ACCESS_KEY_ID`].
pub const SECRET_ACCESS_KEY: &str = "testing-secret-key";

/// A running moto server, killed on drop.
pub struct MotoS3 {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    child: Child,
}

/// The `moto_server` program, installed on first use.
fn moto_program() -> PathBuf {
    crate::pip::installed_program("moto-venv", &format!("moto[server]=={MOTO_VERSION}"), "moto_server")
}

impl MotoS3 {
    /// Starts moto on a free port, waits until it answers and creates [`BUCKET`].
    pub async fn start() -> MotoS3 {
        omnistack::install_crypto_provider();
        let program = tokio::task::spawn_blocking(moto_program).await.unwrap();
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let child = Command::new(program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let moto = MotoS3 { endpoint: format!("http://127.0.0.1:{port}"), child };
        let client = reqwest::Client::new();
        for _ in 0..600 {
            // Moto accepts unsigned requests; creating the bucket doubles as the readiness probe.
            let created = client.put(format!("{}/{BUCKET}", moto.endpoint)).send().await;
            if created.is_ok_and(|r| r.status().is_success()) {
                return moto;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("moto_server did not start on port {port}");
    }

    /// The server's configuration variables for this store.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("STORAGE_PROVIDER", "s3".into()),
            ("S3_BUCKET", BUCKET.into()),
            ("S3_REGION", REGION.into()),
            ("S3_ENDPOINT", self.endpoint.clone()),
            ("S3_ACCESS_KEY_ID", ACCESS_KEY_ID.into()),
            ("S3_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.into()),
            ("S3_FORCE_PATH_STYLE", "true".into()),
        ]
    }

    /// Writes an object straight into the bucket (unsigned; moto allows it), as a client that
    /// ignored the signed headers could on a lax store.
    pub async fn put_object(&self, key: &str, content_type: &str, body: Vec<u8>) {
        let url = format!("{}/{BUCKET}/{key}", self.endpoint);
        let response = reqwest::Client::new().put(url).header("content-type", content_type).body(body).send().await;
        assert!(response.is_ok_and(|r| r.status().is_success()), "moto stores the object");
    }

    /// Whether the bucket holds `key` (a signed HEAD: moto keeps presigned uploads private).
    pub async fn has_object(&self, key: &str) -> bool {
        let endpoint = self.endpoint.parse().expect("an endpoint URL");
        let bucket = rusty_s3::Bucket::new(endpoint, rusty_s3::UrlStyle::Path, BUCKET, REGION).expect("a bucket");
        let credentials = rusty_s3::Credentials::new(ACCESS_KEY_ID, SECRET_ACCESS_KEY);
        let url = rusty_s3::S3Action::sign(&bucket.head_object(Some(&credentials), key), Duration::from_secs(60));
        let response = reqwest::Client::new().head(url.as_str()).send().await.expect("moto answers");
        match response.status().as_u16() {
            200 => true,
            404 => false,
            other => panic!("moto answered HEAD with {other}"),
        }
    }
}

impl Drop for MotoS3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
