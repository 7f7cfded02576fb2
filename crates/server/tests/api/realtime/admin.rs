//! `POST /admin/ws/broadcast` and `GET /app/ws/status`.

use omnistack_testkit::TestApp;
use serde_json::json;

use super::{account, admin_account, connect};

#[tokio::test]
async fn only_admins_broadcast_and_requests_are_validated() {
    let app = TestApp::spawn().await;
    let (token, user_id) = account(&app).await;
    let (admin_token, admin_id) = admin_account(&app).await;
    let user = app.client.with_token(&token);
    let admin = app.client.with_token(&admin_token);
    let body = json!({"type": "notification", "data": {"title": "t", "body": "b"}});
    assert_eq!(app.client.post_json("/api/v1/admin/ws/broadcast", &body).await.status, 401);
    let res = user.post_json("/api/v1/admin/ws/broadcast", &body).await;
    assert_eq!((res.status.as_u16(), res.error_code().as_str()), (403, "AUTHORIZATION_ERROR"));

    let both = json!({"channel": "room:a", "user_id": user_id, "type": "message", "data": 1});
    let res = admin.post_json("/api/v1/admin/ws/broadcast", &both).await;
    assert_eq!(res.status, 422);
    assert_eq!(res.json()["error"]["details"]["fields"].as_array().unwrap().len(), 2);
    for bad in [
        json!({"type": "shout", "data": {}}),
        json!({"type": "notification", "data": {"title": "no body"}}),
        json!({"channel": "bad channel", "type": "message", "data": 1}),
    ] {
        assert_eq!(admin.post_json("/api/v2/admin/ws/broadcast", &bad).await.status, 422, "{bad}");
    }

    let mut socket = connect(&app, &token).await;
    socket.subscribe("broadcast").await;
    let res = admin.post_json("/api/v1/admin/ws/broadcast", &body).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json()["channel"], "broadcast");
    assert!(res.json()["offset"].as_u64().is_some());
    assert_eq!(socket.next_of_type("notification").await["data"]["title"], "t");

    let direct = json!({"user_id": user_id, "type": "message", "data": {"text": "just you"}});
    assert_eq!(admin.post_json("/api/v1/admin/ws/broadcast", &direct).await.status, 200);
    let message = socket.next_of_type("message").await;
    assert_eq!(message["channel"], format!("user:{user_id}"));
    assert_eq!(message["data"], json!({"from_user_id": admin_id, "content": {"text": "just you"}}));
}

#[tokio::test]
async fn status_lists_the_callers_sockets_and_admins_see_everything() {
    let app = TestApp::spawn().await;
    let (token, user_id) = account(&app).await;
    let (admin_token, _) = admin_account(&app).await;
    let mut first = connect(&app, &token).await;
    first.subscribe("room:a").await;
    let _second = connect(&app, &token).await;
    let _admin_socket = connect(&app, &admin_token).await;

    let status = app.client.with_token(&token).get("/api/v1/app/ws/status").await;
    assert_eq!(status.status, 200, "{}", status.text);
    let status = status.json();
    assert!(status.get("global").is_none());
    let connections = status["connections"].as_array().unwrap();
    assert_eq!(connections.len(), 2);
    let channels: Vec<&serde_json::Value> = connections.iter().map(|c| &c["channels"]).collect();
    assert!(channels.contains(&&json!(["room:a", format!("user:{user_id}")])), "{channels:?}");
    assert!(connections.iter().all(|c| c["instance_id"] == status["instance_id"]));

    let global = app.client.with_token(&admin_token).get("/api/v1/app/ws/status").await.json()["global"].clone();
    assert_eq!((global["connections"].as_u64(), global["users_online"].as_u64()), (Some(3), Some(2)));
    assert_eq!(global["instances"].as_array().unwrap().len(), 1);
    assert!(global["stats"]["messages_out"].as_u64().unwrap() >= 4);
}

#[tokio::test]
async fn the_realtime_routes_are_documented_and_plain_http_gets_the_error_shape() {
    let app = TestApp::spawn().await;
    for version in ["v1", "v2"] {
        let doc = app.client.get(&format!("/api/{version}/openapi.json")).await.json();
        for (path, method) in
            [("app/ws", "get"), ("app/ws/ticket", "post"), ("app/ws/status", "get"), ("admin/ws/broadcast", "post")]
        {
            let operation = &doc["paths"][format!("/api/{version}/{path}")][method];
            assert!(operation.is_object(), "{method} {path} documented in {version}");
            assert_eq!(operation["tags"][0], "realtime");
        }
    }
    let res = app.client.get("/api/v1/app/ws").await;
    assert!(res.status.is_client_error(), "{}", res.status);
    assert!(!res.error_code().is_empty(), "{}", res.text);
}
