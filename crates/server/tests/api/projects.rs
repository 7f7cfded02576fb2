//! The example resource: ownership, pagination, search, soft delete.

use omnistack_testkit::{TestApp, TestClient};
use serde_json::{Value, json};

async fn create(client: &TestClient, name: &str, description: Option<&str>) -> Value {
    let res = client.post_json("/api/v1/app/projects", &json!({"name": name, "description": description})).await;
    assert_eq!(res.status, 201, "{}", res.text);
    res.json()
}

#[tokio::test]
async fn creating_returns_201_with_the_v1_shape() {
    let app = TestApp::spawn().await;
    let (client, session) = app.signed_in_client().await;
    let project = create(&client, "  Apollo ", Some("to the moon")).await;
    let mut keys: Vec<&str> = project.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["created_at", "description", "id", "name", "owner_id", "updated_at"]);
    assert_eq!(project["name"], "Apollo");
    assert_eq!(project["owner_id"], session["user"]["id"]);
    assert!(project["created_at"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn invalid_projects_are_422_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let (client, _) = app.signed_in_client().await;
    for body in [
        json!({"name": ""}),
        json!({"name": "   "}),
        json!({"name": "x".repeat(256)}),
        json!({"name": "ok", "description": "d".repeat(2001)}),
    ] {
        let res = client.post_json("/api/v1/app/projects", &body).await;
        assert_eq!(res.status, 422, "{body}");
        assert_eq!(res.error_code(), "VALIDATION_ERROR");
    }
    assert_eq!(client.get("/api/v1/app/projects").await.json()["total"], 0);
}

#[tokio::test]
async fn listing_pages_newest_first_with_exact_total() {
    let app = TestApp::spawn().await;
    let (client, _) = app.signed_in_client().await;
    for i in 0..25 {
        create(&client, &format!("project {i:02}"), None).await;
    }
    let page = client.get("/api/v1/app/projects").await.json();
    assert_eq!((page["total"].as_i64(), page["skip"].as_i64(), page["limit"].as_i64()), (Some(25), Some(0), Some(20)));
    assert_eq!(page["items"].as_array().unwrap().len(), 20);
    assert_eq!(page["items"][0]["name"], "project 24");
    let last = client.get("/api/v1/app/projects?skip=20&limit=10").await.json();
    assert_eq!(last["items"].as_array().unwrap().len(), 5);
    assert_eq!(last["items"][4]["name"], "project 00");
}

#[tokio::test]
async fn paging_parameters_are_validated() {
    let app = TestApp::spawn().await;
    let (client, _) = app.signed_in_client().await;
    for query in ["limit=0", "limit=101", "skip=-1", "limit=ten"] {
        let res = client.get(&format!("/api/v1/app/projects?{query}")).await;
        assert_eq!(res.status, 422, "{query}");
    }
    assert_eq!(client.get("/api/v1/app/projects?limit=100").await.status, 200);
}

#[tokio::test]
async fn search_is_a_case_insensitive_substring_of_name_or_description() {
    let app = TestApp::spawn().await;
    let (client, _) = app.signed_in_client().await;
    create(&client, "Rocket Engine", None).await;
    create(&client, "Garden", Some("grow ROCKET lettuce")).await;
    create(&client, "Taxes", Some("100% boring")).await;
    let res = client.get("/api/v1/app/projects?search=rocket").await.json();
    assert_eq!(res["total"], 2);
    assert_eq!(client.get("/api/v1/app/projects?search=%25").await.json()["total"], 1, "% is literal");
    assert_eq!(client.get("/api/v1/app/projects?search=_").await.json()["total"], 0, "_ is literal");
}

#[tokio::test]
async fn get_patch_and_delete_an_own_project() {
    let app = TestApp::spawn().await;
    let (client, _) = app.signed_in_client().await;
    let project = create(&client, "Alpha", Some("first")).await;
    let path = format!("/api/v1/app/projects/{}", project["id"].as_str().unwrap());
    assert_eq!(client.get(&path).await.json()["name"], "Alpha");

    let res = client.patch_json(&path, &json!({"name": "Beta"})).await;
    assert_eq!(res.status, 200);
    assert_eq!((res.json()["name"].as_str(), res.json()["description"].as_str()), (Some("Beta"), Some("first")));
    let res = client.patch_json(&path, &json!({"description": null})).await;
    assert_eq!(res.json()["description"], Value::Null);
    assert_eq!(client.patch_json(&path, &json!({"name": ""})).await.status, 422);

    assert_eq!(client.delete(&path).await.status, 204);
    assert_eq!(client.get(&path).await.status, 404);
    assert_eq!(client.delete(&path).await.status, 404);
    assert_eq!(client.patch_json(&path, &json!({"name": "Zombie"})).await.status, 404);
    assert_eq!(client.get("/api/v1/app/projects").await.json()["total"], 0, "deleted projects are not listed");
}

#[tokio::test]
async fn another_users_project_is_404_for_every_operation() {
    let app = TestApp::spawn().await;
    let (owner, _) = app.signed_in_client().await;
    let (intruder, _) = app.signed_in_client().await;
    let project = create(&owner, "Secret", None).await;
    let path = format!("/api/v1/app/projects/{}", project["id"].as_str().unwrap());
    assert_eq!(intruder.get(&path).await.status, 404);
    assert_eq!(intruder.patch_json(&path, &json!({"name": "mine"})).await.status, 404);
    assert_eq!(intruder.delete(&path).await.status, 404);
    assert_eq!(intruder.get("/api/v1/app/projects").await.json()["total"], 0);
    assert_eq!(owner.get(&path).await.json()["name"], "Secret", "untouched");
}

#[tokio::test]
async fn a_malformed_id_is_404_not_500() {
    let app = TestApp::spawn().await;
    let (client, _) = app.signed_in_client().await;
    for id in ["not-a-uuid", "123", "%00"] {
        let res = client.get(&format!("/api/v1/app/projects/{id}")).await;
        assert_eq!(res.status, 404, "{id}");
        assert_eq!(res.error_code(), "NOT_FOUND");
    }
}

#[tokio::test]
async fn projects_require_authentication_and_exist_under_v2() {
    let app = TestApp::spawn().await;
    assert_eq!(app.client.get("/api/v1/app/projects").await.status, 401);
    let (client, _) = app.signed_in_client().await;
    create(&client, "Shared", None).await;
    let v2 = client.get("/api/v2/app/projects").await.json();
    assert_eq!(v2["data"][0]["name"], "Shared", "v2 envelopes the list: {v2}");
}
