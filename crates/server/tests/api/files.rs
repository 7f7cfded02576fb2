//! File storage through HTTP with the `local` provider: direct uploads to the signed route,
//! confirmation, downloads, deletion, ownership, limits, quota and the signed URLs' attacks.
//! `files/s3.rs` runs the same flow against moto's S3 server.

#[path = "files/s3.rs"]
mod s3;

use std::time::Duration;

use omnistack::files::signature::{Transfer, TransferSigner};
use omnistack::jobs::Enqueue;
use omnistack::jobs::kinds::{FilesCleanup, Scheduled};
use omnistack_db::jobs::JobState;
use omnistack_db::usage::UsageDelta;
use omnistack_testkit::{TestApp, TestClient, TestResponse};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::jobs::wait_for_state;

/// `url` as a client reaches it: root-relative local URLs are resolved against the server.
pub fn absolute(app: &TestApp, url: &str) -> String {
    if url.starts_with('/') { app.url(url) } else { url.to_owned() }
}

/// Asks for an upload URL.
pub async fn upload_url(client: &TestClient, filename: &str, content_type: &str, size: usize) -> TestResponse {
    let body = json!({"filename": filename, "content_type": content_type, "size": size});
    client.post_json("/api/v1/app/files/upload-url", &body).await
}

/// PUTs `body` to an issued upload with a plain HTTP client and the issued headers.
pub async fn put_bytes(app: &TestApp, issued: &Value, body: Vec<u8>) -> reqwest::Response {
    let mut request = reqwest::Client::new().put(absolute(app, issued["upload_url"].as_str().unwrap()));
    for (name, value) in issued["headers"].as_object().unwrap() {
        request = request.header(name.as_str(), value.as_str().unwrap());
    }
    request.body(body).send().await.unwrap()
}

/// Issues, uploads and confirms a file; returns its id.
pub async fn stored(app: &TestApp, client: &TestClient, filename: &str, body: &[u8]) -> String {
    let res = upload_url(client, filename, "text/plain", body.len()).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let issued = res.json();
    let put = put_bytes(app, &issued, body.to_vec()).await;
    assert!(put.status().is_success(), "{}", put.status());
    let id = issued["file_id"].as_str().unwrap().to_owned();
    let confirmed = client.post_json(&format!("/api/v1/app/files/{id}/confirm"), &json!({})).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    id
}

/// Downloads through an issued download URL.
pub async fn download(app: &TestApp, client: &TestClient, id: &str) -> reqwest::Response {
    let res = client.get(&format!("/api/v1/app/files/{id}/download-url")).await;
    assert_eq!(res.status, 200, "{}", res.text);
    reqwest::get(absolute(app, res.json()["url"].as_str().unwrap())).await.unwrap()
}

/// The caller's stored bytes as metered.
pub async fn storage_used(app: &TestApp, user_id: &str) -> i64 {
    let day = chrono::NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
    let until = chrono::NaiveDate::from_ymd_opt(2100, 1, 1).unwrap();
    let user = Uuid::parse_str(user_id).unwrap();
    omnistack_db::usage::total(&app.state.db, user, "storage_bytes", day, until).await.unwrap()
}

/// Seeds `bytes` of stored usage for the account.
pub async fn seed_storage(app: &TestApp, user_id: &str, bytes: i64) {
    let delta = UsageDelta {
        user_id: Uuid::parse_str(user_id).unwrap(),
        metric: "storage_bytes".into(),
        day: UsageDelta::day_of(omnistack_db::time::now()),
        value: bytes,
        dimensions: Vec::new(),
    };
    let mut tx = app.state.db.begin().await.unwrap();
    omnistack_db::usage::add(&mut tx, &[delta]).await.unwrap();
    tx.commit().await.unwrap();
}

fn query_param(url: &str, name: &str) -> String {
    let parsed = reqwest::Url::parse(&format!("http://x{url}")).unwrap();
    parsed.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned()).unwrap()
}

#[tokio::test]
async fn a_file_goes_up_is_confirmed_downloaded_and_deleted() {
    let app = TestApp::spawn().await;
    let (client, session) = app.signed_in_client().await;
    let user_id = session["user"]["id"].as_str().unwrap();
    let body = b"hello, files\n".to_vec();
    let res = upload_url(&client, "notes.txt", "text/plain", body.len()).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let issued = res.json();
    let mut keys: Vec<&str> = issued.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["expires_in", "file_id", "headers", "method", "upload_url"]);
    assert_eq!((issued["method"].as_str(), issued["expires_in"].as_u64()), (Some("PUT"), Some(900)));
    assert_eq!(issued["headers"], json!({"Content-Type": "text/plain"}));
    let id = issued["file_id"].as_str().unwrap().to_owned();
    let pending = client.get(&format!("/api/v1/app/files/{id}")).await.json();
    assert_eq!((pending["status"].as_str(), pending["size"].as_u64()), (Some("pending"), Some(13)));
    assert_eq!(client.get(&format!("/api/v1/app/files/{id}/download-url")).await.status, 409, "not confirmed");
    assert_eq!(client.post_json(&format!("/api/v1/app/files/{id}/confirm"), &json!({})).await.status, 400);

    let put = put_bytes(&app, &issued, body.clone()).await;
    assert_eq!(put.status(), 200);
    let confirmed = client.post_json(&format!("/api/v1/app/files/{id}/confirm"), &json!({})).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    assert_eq!(confirmed.json()["status"], "uploaded");
    assert!(confirmed.json()["uploaded_at"].is_string());
    let again = client.post_json(&format!("/api/v1/app/files/{id}/confirm"), &json!({})).await;
    assert_eq!(again.status, 200, "confirming twice is harmless");
    assert_eq!(storage_used(&app, user_id).await, 13, "metered once");

    let list = client.get("/api/v1/app/files?status=uploaded").await.json();
    assert_eq!((list["total"].as_i64(), list["items"][0]["id"].as_str()), (Some(1), Some(id.as_str())));
    assert_eq!(client.get("/api/v1/app/files?status=pending").await.json()["total"], 0);
    assert_eq!(client.get("/api/v1/app/files?status=lost").await.status, 422);
    assert_eq!(client.get("/api/v1/app/files?limit=0").await.status, 422);

    let got = download(&app, &client, &id).await;
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "text/plain");
    assert_eq!(got.headers()["content-disposition"], "attachment; filename=\"notes.txt\"; filename*=UTF-8''notes.txt");
    assert_eq!(got.bytes().await.unwrap().to_vec(), body);

    let url =
        client.get(&format!("/api/v1/app/files/{id}/download-url")).await.json()["url"].as_str().unwrap().to_owned();
    assert_eq!(client.delete(&format!("/api/v1/app/files/{id}")).await.status, 204);
    assert_eq!(client.get(&format!("/api/v1/app/files/{id}")).await.status, 404);
    assert_eq!(reqwest::get(absolute(&app, &url)).await.unwrap().status(), 403, "a link dies with its file");
    assert_eq!(storage_used(&app, user_id).await, 0, "deleting gives the bytes back");
    let owner_dir = app.state.config.data_dir.join("files").join(user_id);
    assert!(!owner_dir.join(&id).exists(), "the object is removed");
}

#[tokio::test]
async fn a_file_and_the_storage_it_takes_commit_together() {
    let app = TestApp::spawn().await;
    let (client, session) = app.signed_in_client().await;
    let user_id = session["user"]["id"].as_str().unwrap();
    let body = b"counted once\n".to_vec();
    let issued = upload_url(&client, "once.txt", "text/plain", body.len()).await.json();
    assert!(put_bytes(&app, &issued, body.clone()).await.status().is_success());
    let id = issued["file_id"].as_str().unwrap();
    let db = &app.state.db;
    let away = |from: &'static str, to: &'static str| async move {
        omnistack_db::testing::execute_unchecked(db, &format!("ALTER TABLE {from} RENAME TO {to}")).await.unwrap();
    };

    // The storage cannot be recorded: the confirmation fails whole, the file stays pending.
    away("usage_monthly", "usage_monthly_away").await;
    let failed = client.post_json(&format!("/api/v1/app/files/{id}/confirm"), &json!({})).await;
    assert_eq!(failed.status, 500, "{}", failed.text);
    away("usage_monthly_away", "usage_monthly").await;
    assert_eq!(client.get(&format!("/api/v1/app/files/{id}")).await.json()["status"], "pending");
    assert_eq!(storage_used(&app, user_id).await, 0);

    let confirmed = client.post_json(&format!("/api/v1/app/files/{id}/confirm"), &json!({})).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    assert_eq!(storage_used(&app, user_id).await, body.len() as i64, "counted once");

    // Deleting: the row goes with the storage it gives back, or neither does.
    away("usage_monthly", "usage_monthly_away").await;
    assert_eq!(client.delete(&format!("/api/v1/app/files/{id}")).await.status, 500);
    away("usage_monthly_away", "usage_monthly").await;
    assert_eq!(client.get(&format!("/api/v1/app/files/{id}")).await.status, 200, "the row is still there");
    assert_eq!(storage_used(&app, user_id).await, body.len() as i64);
    assert_eq!(client.delete(&format!("/api/v1/app/files/{id}")).await.status, 204);
    assert_eq!(client.get(&format!("/api/v1/app/files/{id}")).await.status, 404);
    assert_eq!(storage_used(&app, user_id).await, 0);
}

#[tokio::test]
async fn signed_upload_urls_refuse_forgery_expiry_tampering_wrong_bodies_and_replay() {
    let app = TestApp::spawn().await;
    let (client, _) = app.signed_in_client().await;
    let issued = upload_url(&client, "a.txt", "text/plain", 5).await.json();
    let url = issued["upload_url"].as_str().unwrap().to_owned();
    let id = issued["file_id"].as_str().unwrap();
    let http = reqwest::Client::new();
    let put = |url: String, content_type: &'static str, body: &'static [u8]| {
        let request = http.put(absolute(&app, &url)).header("content-type", content_type).body(body);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let signature = query_param(&url, "signature");
    let expires: i64 = query_param(&url, "expires").parse().unwrap();
    let mut flipped = signature.clone().into_bytes();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let other = upload_url(&client, "b.txt", "text/plain", 5).await.json();
    let other_id = other["file_id"].as_str().unwrap();
    let forged = [
        url.replace(&signature, &flipped),
        url.replace(&format!("expires={expires}"), &format!("expires={}", expires + 3600)),
        url.replace(&format!("signature={signature}"), "signature="),
        url.replace(&format!("&signature={signature}"), ""),
        url.replace(id, other_id),
        url.replace(id, "not-a-uuid"),
        url.replace("/upload?", "/download?"),
    ];
    for forged in forged {
        let status = put(forged.clone(), "text/plain", b"hello").await;
        assert!(status == 403 || status == 405 || status == 422, "{forged}: {status}");
    }
    // A valid signature whose time has passed.
    let signer = TransferSigner::new(app.state.config.secret_key.expose());
    let past = omnistack_db::time::now().timestamp() - 1;
    let file_id = Uuid::parse_str(id).unwrap();
    let stale = signer.sign(file_id, Transfer::Upload { content_type: "text/plain", size: 5 }, past);
    assert_eq!(put(format!("/files/{id}/upload?expires={past}&signature={stale}"), "text/plain", b"hello").await, 403);

    assert_eq!(put(url.clone(), "text/html", b"hello").await, 400, "another type");
    assert_eq!(put(url.clone(), "text/plain", b"hello!").await, 400, "longer");
    assert_eq!(put(url.clone(), "text/plain", b"hell").await, 400, "shorter");
    assert_eq!(put(url.clone(), "text/plain", b"hello").await, 200);
    assert_eq!(put(url.clone(), "text/plain", b"HELLO").await, 409, "a used URL cannot overwrite");
    assert_eq!(client.post_json(&format!("/api/v1/app/files/{id}/confirm"), &json!({})).await.status, 200);
    assert_eq!(put(url.clone(), "text/plain", b"HELLO").await, 409);
    let got = download(&app, &client, id).await;
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"hello");

    // Download links: tampering, and an upload signature on the download route.
    let link =
        client.get(&format!("/api/v1/app/files/{id}/download-url")).await.json()["url"].as_str().unwrap().to_owned();
    let link_signature = query_param(&link, "signature");
    assert_eq!(reqwest::get(absolute(&app, &link.replace(&link_signature, &flipped))).await.unwrap().status(), 403);
    let download_with_upload_signature = url.replace("/upload?", "/download?");
    assert_eq!(reqwest::get(absolute(&app, &download_with_upload_signature)).await.unwrap().status(), 403);
    let stale = signer.sign(file_id, Transfer::Download, past);
    let expired = app.url(&format!("/files/{id}/download?expires={past}&signature={stale}"));
    assert_eq!(reqwest::get(expired).await.unwrap().status(), 403);
}

#[tokio::test]
async fn bad_names_types_and_sizes_are_422_and_nothing_is_recorded() {
    let app = TestApp::builder().env("FILES_MAX_BYTES", "1000").spawn().await;
    let (client, _) = app.signed_in_client().await;
    let cases = [
        json!({"filename": "", "content_type": "text/plain", "size": 1}),
        json!({"filename": "x".repeat(256), "content_type": "text/plain", "size": 1}),
        json!({"filename": "../x", "content_type": "text/plain", "size": 1}),
        json!({"filename": "a\\b", "content_type": "text/plain", "size": 1}),
        json!({"filename": "..", "content_type": "text/plain", "size": 1}),
        json!({"filename": "a\u{0000}b", "content_type": "text/plain", "size": 1}),
        json!({"filename": "a\r\nb", "content_type": "text/plain", "size": 1}),
        json!({"filename": "invoice\u{202e}fdp.exe", "content_type": "text/plain", "size": 1}),
        json!({"filename": "a.html", "content_type": "text/html", "size": 1}),
        json!({"filename": "a.svg", "content_type": "image/svg+xml", "size": 1}),
        json!({"filename": "a", "content_type": "nonsense", "size": 1}),
        json!({"filename": "a", "content_type": "text/plain; charset=utf-8", "size": 1}),
        json!({"filename": "a", "content_type": "text/plain", "size": -1}),
        json!({"filename": "a", "content_type": "text/plain", "size": 1001}),
        json!({"filename": "a", "content_type": "text/plain", "size": "1"}),
        json!({"filename": "a", "content_type": "text/plain"}),
    ];
    for body in cases {
        let res = client.post_json("/api/v1/app/files/upload-url", &body).await;
        assert_eq!((res.status.as_u16(), res.error_code().as_str()), (422, "VALIDATION_ERROR"), "{body}: {}", res.text);
    }
    assert_eq!(client.get("/api/v1/app/files").await.json()["total"], 0);
    assert_eq!(upload_url(&client, "max.txt", "text/plain", 1000).await.status, 201, "the limit itself is fine");
}

#[tokio::test]
async fn any_name_downloads_under_a_safe_content_disposition() {
    let app = TestApp::spawn().await;
    let (client, _) = app.signed_in_client().await;
    let name = "r\u{e9}sum\u{e9} \"final\" \u{1f4c4} \u{5c65}\u{6b74}%20;x.txt";
    let id = stored(&app, &client, name, b"cv").await;
    let got = download(&app, &client, &id).await;
    let header = got.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(header.starts_with("attachment; filename=\"r_sum_ _final_ _ ___20;x.txt\"; filename*=UTF-8''"), "{header}");
    let encoded = header.split("filename*=UTF-8''").nth(1).unwrap();
    assert_eq!(percent_decode(encoded), name);
    let listed = client.get(&format!("/api/v1/app/files/{id}")).await.json();
    assert_eq!(listed["filename"], name, "the name is kept as given");
    let long = "\u{e9}".repeat(255);
    assert_eq!(upload_url(&client, &long, "text/plain", 1).await.status, 201, "255 characters, 510 bytes");
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn another_accounts_file_is_404_and_no_token_is_401() {
    let app = TestApp::spawn().await;
    let (owner, _) = app.signed_in_client().await;
    let (other, _) = app.signed_in_client().await;
    let id = stored(&app, &owner, "mine.txt", b"private").await;
    for path in [format!("/api/v1/app/files/{id}"), format!("/api/v1/app/files/{id}/download-url")] {
        assert_eq!(other.get(&path).await.status, 404, "{path}");
        assert_eq!(app.client.get(&path).await.status, 401, "{path}");
    }
    assert_eq!(other.post_json(&format!("/api/v1/app/files/{id}/confirm"), &json!({})).await.status, 404);
    assert_eq!(other.delete(&format!("/api/v1/app/files/{id}")).await.status, 404);
    assert_eq!(other.get("/api/v1/app/files").await.json()["total"], 0);
    assert_eq!(owner.get("/api/v1/app/files/not-a-uuid").await.status, 404);
    assert_eq!(owner.delete(&format!("/api/v1/app/files/{}", Uuid::now_v7())).await.status, 404);
    let anonymous = [
        app.client
            .post_json(
                "/api/v1/app/files/upload-url",
                &json!({"filename": "a", "content_type": "text/plain", "size": 1}),
            )
            .await,
        app.client.post_json(&format!("/api/v1/app/files/{id}/confirm"), &json!({})).await,
        app.client.get("/api/v1/app/files").await,
        app.client.delete(&format!("/api/v1/app/files/{id}")).await,
    ];
    assert!(anonymous.iter().all(|res| res.status == 401));
    assert_eq!(owner.get(&format!("/api/v1/app/files/{id}")).await.status, 200, "still there");
}

#[tokio::test]
async fn an_upload_past_the_plans_storage_is_402() {
    let app = TestApp::spawn().await;
    let (client, session) = app.signed_in_client().await;
    let user_id = session["user"]["id"].as_str().unwrap();
    seed_storage(&app, user_id, 100_000_000 - 10).await;
    assert_eq!(upload_url(&client, "fits.txt", "text/plain", 10).await.status, 201);
    let refused = upload_url(&client, "too-big.txt", "text/plain", 11).await;
    assert_eq!((refused.status.as_u16(), refused.error_code().as_str()), (402, "QUOTA_EXCEEDED"), "{}", refused.text);
    assert_eq!(refused.json()["error"]["details"]["metric"], "storage_bytes", "{}", refused.text);
    assert_eq!(client.get("/api/v1/app/files").await.json()["total"], 1, "the refused one is not recorded");
}

#[tokio::test]
async fn abandoned_uploads_are_removed_after_a_day_with_their_objects() {
    let app = TestApp::spawn().await;
    let (client, session) = app.signed_in_client().await;
    let user_id = session["user"]["id"].as_str().unwrap();
    let kept = stored(&app, &client, "kept.txt", b"kept").await;
    let issued = upload_url(&client, "abandoned.txt", "text/plain", 4).await.json();
    assert!(put_bytes(&app, &issued, b"lost".to_vec()).await.status().is_success());
    let abandoned = issued["file_id"].as_str().unwrap().to_owned();
    let path = app.state.config.data_dir.join("files").join(user_id).join(&abandoned);
    assert!(path.exists());

    let run = |hours: i64| {
        let tick = Scheduled { tick: omnistack_db::time::now() + chrono::Duration::hours(hours) };
        let jobs = app.state.jobs.clone();
        let db = app.state.db.clone();
        async move { jobs.enqueue::<FilesCleanup>(&db, &tick, Enqueue::default()).await.unwrap().unwrap() }
    };
    let early = run(23).await;
    let done = wait_for_state(&app, early.id, JobState::Succeeded, Duration::from_secs(10)).await;
    assert_eq!(done.output.unwrap().0["files"], 0, "not a day yet");
    let late = run(25).await;
    let done = wait_for_state(&app, late.id, JobState::Succeeded, Duration::from_secs(10)).await;
    assert_eq!(done.output.unwrap().0["files"], 1);
    assert_eq!(client.get(&format!("/api/v1/app/files/{abandoned}")).await.status, 404);
    assert!(!path.exists(), "the object went with the row");
    assert_eq!(client.get(&format!("/api/v1/app/files/{kept}")).await.status, 200, "confirmed files stay");
}

#[tokio::test]
async fn too_many_pending_uploads_are_refused() {
    let app = TestApp::builder().env("FILES_MAX_PENDING", "3").spawn().await;
    let (client, _) = app.signed_in_client().await;
    for n in 0..3 {
        assert_eq!(upload_url(&client, &format!("{n}.txt"), "text/plain", 1).await.status, 201);
    }
    assert_eq!(upload_url(&client, "one-more.txt", "text/plain", 1).await.status, 409);
    let first = client.get("/api/v1/app/files?limit=1").await.json()["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(client.delete(&format!("/api/v1/app/files/{first}")).await.status, 204);
    assert_eq!(upload_url(&client, "one-more.txt", "text/plain", 1).await.status, 201, "deleting frees a place");
}

#[tokio::test]
async fn v2_envelopes_the_same_files_and_pages_them_by_cursor() {
    let app = TestApp::spawn().await;
    let (client, _) = app.signed_in_client().await;
    let issued = client
        .post_json(
            "/api/v2/app/files/upload-url",
            &json!({"filename": "a.txt", "content_type": "text/plain", "size": 2}),
        )
        .await;
    assert_eq!(issued.status, 201, "{}", issued.text);
    let data = issued.json()["data"].clone();
    assert!(put_bytes(&app, &data, b"hi".to_vec()).await.status().is_success());
    let id = data["file_id"].as_str().unwrap().to_owned();
    let confirmed = client.post_json(&format!("/api/v2/app/files/{id}/confirm"), &json!({})).await.json();
    assert_eq!(confirmed["data"]["status"], "uploaded");
    for n in 0..2 {
        assert_eq!(upload_url(&client, &format!("p{n}.txt"), "text/plain", 1).await.status, 201);
    }
    let first = client.get("/api/v2/app/files?limit=2").await.json();
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    let next = first["meta"]["next_cursor"].as_str().unwrap();
    let second = client.get(&format!("/api/v2/app/files?limit=2&cursor={next}")).await.json();
    assert_eq!(second["data"][0]["id"].as_str(), Some(id.as_str()));
    assert!(second["meta"]["next_cursor"].is_null());
    let uploaded = client.get("/api/v2/app/files?status=uploaded").await.json();
    assert_eq!(uploaded["data"].as_array().unwrap().len(), 1);
    assert_eq!(client.get("/api/v2/app/files?status=lost").await.status, 422);
    assert_eq!(client.get(&format!("/api/v2/app/files/{id}")).await.json()["data"]["filename"], "a.txt");
    let link = client.get(&format!("/api/v2/app/files/{id}/download-url")).await.json();
    let got = reqwest::get(absolute(&app, link["data"]["url"].as_str().unwrap())).await.unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"hi");
    assert_eq!(client.get(&format!("/api/app/files/{id}")).await.status, 200, "unversioned paths reach v2");
    let (other, _) = app.signed_in_client().await;
    assert_eq!(other.get(&format!("/api/v2/app/files/{id}")).await.status, 404);
    assert_eq!(other.delete(&format!("/api/v2/app/files/{id}")).await.status, 404);
    assert_eq!(client.delete(&format!("/api/v2/app/files/{id}")).await.status, 204);
}
