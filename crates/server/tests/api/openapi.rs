//! The OpenAPI documents describe what the server does: every response has its required
//! description, every operation lists the answers its guard, extractors and layers give, and
//! every text a client sends has the maximum length the server enforces.

use omnistack_testkit::TestApp;
use serde_json::{Value, json};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Every `(method, path, operation)` of a document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                found.push((method.to_owned(), path.clone(), operation.clone()));
            }
        }
    }
    found
}

/// The schema `schema` points to (`$ref` into `components`), or itself.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => &doc["components"]["schemas"][reference.rsplit('/').next().unwrap()],
        None => schema,
    }
}

async fn documents(app: &TestApp) -> Vec<Value> {
    let mut docs = Vec::new();
    for version in ["v1", "v2"] {
        docs.push(app.client.get(&format!("/api/{version}/openapi.json")).await.json());
    }
    docs
}

#[tokio::test]
async fn tag_names_are_unique() {
    let app = TestApp::spawn().await;
    for doc in documents(&app).await {
        let names: Vec<&str> =
            doc["tags"].as_array().unwrap().iter().map(|tag| tag["name"].as_str().unwrap()).collect();
        let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), names.len(), "duplicate tag names in {names:?}");
    }
}

#[tokio::test]
async fn every_response_has_a_description_and_every_operation_lists_what_its_layers_answer() {
    let app = TestApp::spawn().await;
    for doc in documents(&app).await {
        for (method, path, operation) in operations(&doc) {
            let responses = operation["responses"].as_object().unwrap();
            for (status, response) in responses {
                let description = response["description"].as_str().unwrap_or_default();
                assert!(!description.is_empty(), "{method} {path} {status} has no description");
            }
            let lists = |statuses: &[&str]| {
                for status in statuses {
                    assert!(responses.contains_key(*status), "{method} {path} does not document {status}");
                }
            };
            lists(&["504"]);
            if operation["security"].as_array().is_some_and(|s| !s.is_empty()) {
                lists(&["401", "403", "429"]);
            }
            if operation.get("requestBody").is_some() {
                lists(&["400", "413", "415", "422"]);
            }
            let parameters = operation["parameters"].as_array().cloned().unwrap_or_default();
            if parameters.iter().any(|p| p["in"] == "query") {
                lists(&["422"]);
            }
            if path.contains("/public/auth/") {
                lists(&["429"]);
            }
        }
    }
}

#[tokio::test]
async fn every_text_a_client_sends_is_documented_with_a_maximum_length_and_no_nul() {
    let app = TestApp::spawn().await;
    for doc in documents(&app).await {
        for (method, path, operation) in operations(&doc) {
            let mut strings = Vec::new();
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                strings.push((parameter["name"].as_str().unwrap().to_owned(), parameter["schema"].clone()));
            }
            if let Some(schema) = operation["requestBody"]["content"]["application/json"].get("schema") {
                let body = resolve(&doc, schema);
                // An opaque object (an inbound webhook's event) has no fields to bound; its size is.
                for (name, property) in body["properties"].as_object().into_iter().flatten() {
                    strings.push((name.clone(), property.clone()));
                }
            }
            for (name, schema) in strings {
                let types = match &schema["type"] {
                    Value::Array(types) => types.clone(),
                    other => vec![other.clone()],
                };
                if !types.contains(&json!("string")) || schema["format"] == "uuid" || schema.get("enum").is_some() {
                    continue;
                }
                assert!(schema["maxLength"].as_u64().is_some(), "{method} {path}: {name} has no maxLength");
                let pattern = schema["pattern"].as_str().unwrap_or_else(|| panic!("{method} {path}: {name}"));
                assert!(!admits_nul(pattern), "{method} {path}: {name}'s pattern {pattern} admits NUL");
            }
        }
    }
}

#[tokio::test]
async fn the_documented_maximum_lengths_are_the_ones_the_server_enforces() {
    let app = TestApp::spawn().await;
    let (client, _) = app.signed_in_client().await;
    let doc = &documents(&app).await[0];
    let schema = |name: &str, field: &str| doc["components"]["schemas"][name]["properties"][field].clone();
    let max = |name: &str, field: &str| schema(name, field)["maxLength"].as_u64().unwrap() as usize;

    let name = max("CreateProjectRequest", "name");
    let description = max("CreateProjectRequest", "description");
    let longest = json!({"name": "n".repeat(name), "description": "d".repeat(description)});
    assert_eq!(client.post_json("/api/v1/app/projects", &longest).await.status, 201);
    for body in
        [json!({"name": "n".repeat(name + 1)}), json!({"name": "ok", "description": "d".repeat(description + 1)})]
    {
        assert_eq!(client.post_json("/api/v1/app/projects", &body).await.status, 422, "{body}");
    }

    let full_name = max("UpdateMeRequest", "full_name");
    let me = |n: usize| json!({"full_name": "f".repeat(n)});
    assert_eq!(client.patch_json("/api/v1/app/users/me", &me(full_name)).await.status, 200);
    assert_eq!(client.patch_json("/api/v1/app/users/me", &me(full_name + 1)).await.status, 422);

    let list = &doc["paths"]["/api/v1/app/projects"]["get"]["parameters"];
    let search = list.as_array().unwrap().iter().find(|p| p["name"] == "search").unwrap();
    let search = search["schema"]["maxLength"].as_u64().unwrap() as usize;
    let page = |n: usize| format!("/api/v1/app/projects?search={}", "s".repeat(n));
    assert_eq!(client.get(&page(search)).await.status, 200);
    assert_eq!(client.get(&page(search + 1)).await.status, 422);
}

/// Whether a pattern may match a NUL: it excludes one by name (`\u0000`, `\x00`), or it is made
/// only of what cannot match one (no `.`, negated class or negated escape).
fn admits_nul(pattern: &str) -> bool {
    if pattern.contains(r"\u0000") || pattern.contains(r"\x00") {
        return false;
    }
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('S' | 'D' | 'W' | 'P' | 'c' | '0') => return true,
                Some(hex @ ('x' | 'u')) => {
                    let digits: String = chars.by_ref().take(if hex == 'x' { 2 } else { 4 }).collect();
                    if digits.chars().all(|d| d == '0') {
                        return true;
                    }
                }
                _ => {}
            },
            '[' if !in_class => {
                in_class = true;
                if chars.peek() == Some(&'^') {
                    return true;
                }
            }
            ']' => in_class = false,
            '.' if !in_class => return true,
            _ => {}
        }
    }
    false
}

#[test]
fn nul_is_found_in_patterns_that_admit_it() {
    assert!(admits_nul("^.{1,5}$"));
    assert!(admits_nul("^[^a]+$"));
    assert!(admits_nul(r"^\S+$"));
    assert!(!admits_nul(r"^[^\u0000]*$"));
    assert!(!admits_nul("^[A-Za-z0-9:._-]+$"));
    assert!(!admits_nul(r"^[ +\-().xX]*(?:[0-9][ +\-().xX]*){5,20}$"));
}
