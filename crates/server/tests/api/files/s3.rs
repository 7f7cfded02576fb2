//! The same flow against a real S3 implementation (moto's server, started by the test): presigned
//! PUT bound to the type and length, confirmation against HEAD, presigned download with the
//! attachment disposition, deletion, and refusal of objects that do not match.

use std::time::Duration;

use omnistack::jobs::Enqueue;
use omnistack::jobs::kinds::{FilesCleanup, Scheduled};
use omnistack_db::jobs::JobState;
use omnistack_testkit::TestApp;
use omnistack_testkit::s3::MotoS3;
use serde_json::json;

use super::{download, put_bytes, seed_storage, storage_used, stored, upload_url};
use crate::jobs::wait_for_state;

async fn app_on(moto: &MotoS3) -> TestApp {
    let mut builder = TestApp::builder();
    for (name, value) in moto.env() {
        builder = builder.env(name, &value);
    }
    builder.spawn().await
}

#[tokio::test]
async fn s3_presigned_upload_confirm_download_and_delete() {
    let moto = MotoS3::start().await;
    let app = app_on(&moto).await;
    let (client, session) = app.signed_in_client().await;
    let user_id = session["user"]["id"].as_str().unwrap().to_owned();
    let body = b"s3 bytes, straight to the bucket".to_vec();
    let issued = upload_url(&client, "report \"q3\".pdf", "application/pdf", body.len()).await;
    assert_eq!(issued.status, 201, "{}", issued.text);
    let issued = issued.json();
    let url = issued["upload_url"].as_str().unwrap();
    let id = issued["file_id"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&format!("{}/omnistack-test/{user_id}/{id}?", moto.endpoint)), "{url}");
    assert!(
        url.contains("X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost"),
        "type and length are signed: {url}"
    );
    assert_eq!(issued["headers"], json!({"Content-Type": "application/pdf"}));

    let put = put_bytes(&app, &issued, body.clone()).await;
    assert!(put.status().is_success(), "{}", put.text().await.unwrap());
    assert!(moto.has_object(&format!("{user_id}/{id}")).await);
    let confirmed = client.post_json(&format!("/api/v1/app/files/{id}/confirm"), &json!({})).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    assert_eq!(storage_used(&app, &user_id).await, body.len() as i64);

    let got = download(&app, &client, &id).await;
    assert_eq!(got.status(), 200);
    assert_eq!(
        got.headers()["content-disposition"],
        "attachment; filename=\"report _q3_.pdf\"; filename*=UTF-8''report%20%22q3%22.pdf"
    );
    assert_eq!(got.bytes().await.unwrap().to_vec(), body);

    let (other, _) = app.signed_in_client().await;
    assert_eq!(other.get(&format!("/api/v1/app/files/{id}/download-url")).await.status, 404);
    assert_eq!(other.delete(&format!("/api/v1/app/files/{id}")).await.status, 404);
    assert!(moto.has_object(&format!("{user_id}/{id}")).await, "another account's delete touches nothing");

    assert_eq!(client.delete(&format!("/api/v1/app/files/{id}")).await.status, 204);
    assert!(!moto.has_object(&format!("{user_id}/{id}")).await, "the object is deleted");
    assert_eq!(client.get(&format!("/api/v1/app/files/{id}")).await.status, 404);
    assert_eq!(storage_used(&app, &user_id).await, 0);
}

#[tokio::test]
async fn s3_objects_of_the_wrong_size_or_type_are_refused_and_removed() {
    let moto = MotoS3::start().await;
    let app = app_on(&moto).await;
    let (client, session) = app.signed_in_client().await;
    let user_id = session["user"]["id"].as_str().unwrap().to_owned();
    for (content_type, body) in [("text/plain", b"short".to_vec()), ("image/png", b"ten bytes!".to_vec())] {
        let issued = upload_url(&client, "declared.txt", "text/plain", 10).await.json();
        let id = issued["file_id"].as_str().unwrap().to_owned();
        let key = format!("{user_id}/{id}");
        // A store that does not check the signed headers lets any object through the URL.
        moto.put_object(&key, content_type, body).await;
        let refused = client.post_json(&format!("/api/v1/app/files/{id}/confirm"), &json!({})).await;
        assert_eq!(refused.status, 400, "{content_type}: {}", refused.text);
        assert!(!moto.has_object(&key).await, "the mismatching object is deleted");
        assert_eq!(client.get(&format!("/api/v1/app/files/{id}")).await.json()["status"], "pending");
    }
    assert_eq!(storage_used(&app, &user_id).await, 0, "nothing metered");
}

#[tokio::test]
async fn s3_quota_and_abandoned_uploads() {
    let moto = MotoS3::start().await;
    let app = app_on(&moto).await;
    let (client, session) = app.signed_in_client().await;
    let user_id = session["user"]["id"].as_str().unwrap().to_owned();
    let kept = stored(&app, &client, "kept.txt", b"kept").await;
    seed_storage(&app, &user_id, 100_000_000 - 4 - 10).await;
    let refused = upload_url(&client, "big.txt", "text/plain", 11).await;
    assert_eq!((refused.status.as_u16(), refused.error_code().as_str()), (402, "QUOTA_EXCEEDED"));

    let issued = upload_url(&client, "abandoned.txt", "text/plain", 10).await.json();
    assert!(put_bytes(&app, &issued, b"0123456789".to_vec()).await.status().is_success());
    let abandoned = issued["file_id"].as_str().unwrap().to_owned();
    let tick = Scheduled { tick: omnistack_db::time::now() + chrono::Duration::hours(25) };
    let job = app.state.jobs.enqueue::<FilesCleanup>(&app.state.db, &tick, Enqueue::default()).await.unwrap().unwrap();
    let done = wait_for_state(&app, job.id, JobState::Succeeded, Duration::from_secs(10)).await;
    assert_eq!(done.output.unwrap().0["files"], 1);
    assert!(!moto.has_object(&format!("{user_id}/{abandoned}")).await);
    assert!(moto.has_object(&format!("{user_id}/{kept}")).await);
}
