//! Text input: a NUL character in any body field or query parameter, and text longer than its
//! documented maximum, are 422 `VALIDATION_ERROR` naming the field, on every engine.

use omnistack_testkit::{TestApp, TestClient, TestResponse};
use serde_json::{Value, json};

/// Asserts a 422 `VALIDATION_ERROR` whose `details.fields` name exactly `fields`.
fn assert_invalid(res: &TestResponse, fields: &[&str]) {
    assert_eq!(res.status, 422, "{}", res.text);
    let body = res.json();
    assert_eq!(body["error"]["code"], "VALIDATION_ERROR", "{body}");
    let mut named: Vec<&str> =
        body["error"]["details"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    named.sort_unstable();
    assert_eq!(named, fields, "{body}");
}

async fn project(client: &TestClient) -> String {
    let res = client.post_json("/api/v1/app/projects", &json!({"name": "Apollo"})).await;
    assert_eq!(res.status, 201, "{}", res.text);
    res.json()["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_nul_character_in_any_body_field_is_a_422_naming_the_field() {
    let app = TestApp::spawn().await;
    let (client, _) = app.signed_in_client().await;
    let id = project(&client).await;
    let nul = "a\u{0}b";
    let cases: Vec<(&str, &str, Value, &[&str])> = vec![
        ("POST", "/api/v1/app/projects", json!({"name": nul, "description": nul}), &["description", "name"]),
        ("POST", "/api/v2/app/projects", json!({"name": "ok", "description": nul}), &["description"]),
        ("PATCH", "/api/v1/app/projects/{id}", json!({"name": nul}), &["name"]),
        ("PATCH", "/api/v1/app/users/me", json!({"full_name": nul}), &["full_name"]),
        ("PATCH", "/api/v2/app/users/me", json!({"avatar_url": nul}), &["avatar_url"]),
        (
            "POST",
            "/api/v1/public/auth/register",
            json!({"email": "n@example.com", "password": "long-enough", "full_name": nul}),
            &["full_name"],
        ),
        ("POST", "/api/v1/public/auth/login", json!({"email": nul, "password": "long-enough"}), &["email"]),
        ("POST", "/api/v2/public/auth/password/forgot", json!({"email": nul}), &["email"]),
        ("POST", "/api/v1/public/auth/refresh", json!({"refresh_token": nul}), &["refresh_token"]),
        ("POST", "/api/v1/public/auth/verify-email", json!({"token": nul}), &["token"]),
    ];
    for (method, path, body, fields) in cases {
        let path = path.replace("{id}", &id);
        let request = client.request(method.parse().unwrap(), &path).json(&body);
        assert_invalid(&client.send(request).await, fields);
    }
    let listed = client.get("/api/v1/app/projects").await.json();
    assert_eq!(listed["total"], 1, "nothing was stored: {listed}");
    assert_eq!(listed["items"][0]["name"], "Apollo");
    // Fields the endpoint does not have are ignored, whatever they hold.
    let extra = json!({"name": "Gemini", "extra": {"list": ["fine", nul]}, "k\u{0}": nul});
    assert_eq!(client.post_json("/api/v1/app/projects", &extra).await.status, 201);
}

#[tokio::test]
async fn a_nul_character_in_a_query_parameter_is_a_422_naming_it() {
    let app = TestApp::spawn().await;
    let (client, _) = app.signed_in_client().await;
    assert_invalid(&client.get("/api/v1/app/projects?search=a%00b").await, &["search"]);
    assert_invalid(&client.get("/api/v2/app/projects?search=%00&limit=5").await, &["search"]);
    assert_invalid(&client.get("/api/v2/app/projects?cursor=%00").await, &["cursor"]);
    // An encoded percent sign followed by "00" is text, not NUL.
    assert_eq!(client.get("/api/v1/app/projects?search=100%2500").await.status, 200);
}

#[tokio::test]
async fn a_search_longer_than_its_maximum_is_a_422_on_both_versions() {
    let app = TestApp::spawn().await;
    let (client, _) = app.signed_in_client().await;
    project(&client).await;
    let longest = "a".repeat(255);
    assert_eq!(client.get(&format!("/api/v1/app/projects?search={longest}")).await.status, 200);
    assert_eq!(client.get(&format!("/api/v2/app/projects?search={longest}")).await.status, 200);
    let huge = "a".repeat(50_001);
    assert_invalid(&client.get(&format!("/api/v1/app/projects?search={huge}")).await, &["search"]);
    assert_invalid(&client.get(&format!("/api/v2/app/projects?search={huge}")).await, &["search"]);
    assert_invalid(&client.get(&format!("/api/v2/app/projects?cursor={}", "A".repeat(129))).await, &["cursor"]);
}

#[tokio::test]
async fn every_text_field_has_a_maximum_length_counted_as_sent() {
    // Every auth route is tried twice from one address: more than the `auth` class allows.
    let app = TestApp::builder().env("RATE_LIMIT_AUTH", "100/minute").spawn().await;
    let (client, _) = app.signed_in_client().await;
    let id = project(&client).await;
    let long = |n: usize| "x".repeat(n);
    let email = |n: usize| format!("{}@example.com", "a".repeat(n - 12));
    let cases: Vec<(&str, String, Value, &[&str])> = vec![
        (
            "POST",
            "/api/v1/public/auth/register".into(),
            json!({"email": email(255), "password": long(129), "full_name": long(256)}),
            &["email", "full_name", "password"],
        ),
        (
            "POST",
            "/api/v1/public/auth/login".into(),
            json!({"email": email(255), "password": long(129)}),
            &["email", "password"],
        ),
        ("POST", "/api/v1/public/auth/password/forgot".into(), json!({"email": email(255)}), &["email"]),
        ("POST", "/api/v1/public/auth/refresh".into(), json!({"refresh_token": long(513)}), &["refresh_token"]),
        ("POST", "/api/v1/public/auth/logout".into(), json!({"refresh_token": long(513)}), &["refresh_token"]),
        (
            "POST",
            "/api/v1/public/auth/password/reset".into(),
            json!({"token": long(513), "new_password": "long-enough"}),
            &["token"],
        ),
        ("POST", "/api/v1/public/auth/verify-email".into(), json!({"token": long(513)}), &["token"]),
        (
            "PATCH",
            "/api/v1/app/users/me".into(),
            json!({"full_name": long(256), "avatar_url": format!("https://e.com/{}", long(2035))}),
            &["avatar_url", "full_name"],
        ),
        // Surrounding spaces count: the limit is the one the OpenAPI schema states.
        ("PATCH", format!("/api/v1/app/projects/{id}"), json!({"name": format!(" {}", long(255))}), &["name"]),
        ("POST", "/api/v1/app/projects".into(), json!({"name": "ok", "description": long(2001)}), &["description"]),
    ];
    for (method, path, body, fields) in cases {
        let request = client.request(method.parse().unwrap(), &path).json(&body);
        assert_invalid(&client.send(request).await, fields);
    }
    let longest_email = json!({"email": email(254), "password": "long-enough", "full_name": long(255)});
    assert_eq!(app.client.post_json("/api/v1/public/auth/register", &longest_email).await.status, 201);
}

#[tokio::test]
async fn a_body_that_is_not_a_json_object_is_a_422_on_body() {
    let app = TestApp::spawn().await;
    let (client, _) = app.signed_in_client().await;
    let id = project(&client).await;
    for (path, body) in [
        (format!("/api/v1/app/projects/{id}"), json!([null, null])),
        ("/api/v2/app/users/me".to_owned(), json!([null, null])),
        ("/api/v1/app/projects".to_owned(), json!(["Named by position"])),
    ] {
        let method = if path.ends_with("/projects") { "POST" } else { "PATCH" };
        let request = client.request(method.parse().unwrap(), &path).json(&body);
        assert_invalid(&client.send(request).await, &["body"]);
    }
}
