//! The admin routes over submissions: listing by status, reading, triaging, and refusals.

use serde_json::json;

use super::{app_with, assert_invalid, assert_received, form, form_with, submit};
use crate::realtime::{account, admin_account};

#[tokio::test]
async fn admins_list_submissions_newest_first_filter_by_status_and_triage_them() {
    let app = app_with(&[]).await;
    let first = assert_received(&submit(&app, &form()).await);
    let spam = assert_received(&submit(&app, &form_with(json!({"website": "bot"}))).await);
    let (token, _) = admin_account(&app).await;
    let admin = app.client.with_token(&token);

    let list = admin.get("/api/v1/admin/contact").await;
    assert_eq!(list.status, 200, "{}", list.text);
    let body = list.json();
    assert_eq!((body["total"].clone(), body["skip"].clone(), body["limit"].clone()), (json!(2), json!(0), json!(20)));
    let references: Vec<&str> =
        body["items"].as_array().unwrap().iter().map(|i| i["reference_id"].as_str().unwrap()).collect();
    assert_eq!(references, [spam.as_str(), first.as_str()], "newest first");

    let only_new = admin.get("/api/v1/admin/contact?status=new&limit=1").await.json();
    assert_eq!((only_new["total"].clone(), only_new["items"][0]["reference_id"].clone()), (json!(1), json!(first)));
    let id = only_new["items"][0]["id"].as_str().unwrap().to_owned();

    let one = admin.get(&format!("/api/v1/admin/contact/{id}")).await.json();
    assert_eq!((one["status"].clone(), one["email"].clone()), (json!("new"), json!("ada@example.com")));
    let read = admin.patch_json(&format!("/api/v1/admin/contact/{id}"), &json!({"status": "replied"})).await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(read.json()["status"], "replied");
    assert_eq!(admin.get("/api/v1/admin/contact?status=replied").await.json()["total"], 1);
}

#[tokio::test]
async fn the_admin_routes_refuse_anonymous_callers_non_admins_bad_ids_and_bad_statuses() {
    let app = app_with(&[]).await;
    assert_received(&submit(&app, &form()).await);
    let id = super::stored(&app).await[0].id;
    let path = format!("/api/v1/admin/contact/{id}");

    for res in [
        app.client.get("/api/v1/admin/contact").await,
        app.client.get(&path).await,
        app.client.patch_json(&path, &json!({"status": "read"})).await,
    ] {
        assert_eq!((res.status.as_u16(), res.error_code()), (401, "AUTHENTICATION_ERROR".to_owned()));
    }
    let (user_token, _) = account(&app).await;
    let user = app.client.with_token(&user_token);
    for res in [
        user.get("/api/v1/admin/contact").await,
        user.get(&path).await,
        user.patch_json(&path, &json!({"status": "read"})).await,
    ] {
        assert_eq!((res.status.as_u16(), res.error_code()), (403, "AUTHORIZATION_ERROR".to_owned()));
    }

    let (token, _) = admin_account(&app).await;
    let admin = app.client.with_token(&token);
    for bad in ["/api/v1/admin/contact/not-a-uuid", &format!("/api/v1/admin/contact/{}", uuid::Uuid::now_v7())] {
        let res = admin.get(bad).await;
        assert_eq!((res.status.as_u16(), res.error_code()), (404, "NOT_FOUND".to_owned()), "{bad}");
        let res = admin.patch_json(bad, &json!({"status": "read"})).await;
        assert_eq!(res.status, 404, "{bad}");
    }
    assert_invalid(&admin.patch_json(&path, &json!({"status": "deleted"})).await, "status");
    assert_invalid(&admin.patch_json(&path, &json!({"status": "read", "note": "x"})).await, "note");
    assert_invalid(&admin.get("/api/v1/admin/contact?status=bogus").await, "status");
    assert_invalid(&admin.get("/api/v1/admin/contact?limit=0").await, "limit");
    assert_eq!(super::stored(&app).await[0].status, "new", "nothing changed");
}
