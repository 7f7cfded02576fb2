//! The AI gateway against local fakes of OpenAI, Anthropic and Gemini
//! (`omnistack_testkit::ai::FakeAi`): each provider's request and answer, JSON and streamed;
//! fallback, timeouts and circuit breakers; metering and plan limits; and what refuses a call.

mod guards;
mod providers;
mod resilience;
mod streaming;

use chrono::Utc;
use omnistack_testkit::ai::FakeAi;
use omnistack_testkit::{TestApp, TestClient};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

/// A server pointed at a fresh fake for all three providers.
pub struct Stand {
    pub app: TestApp,
    pub fake: FakeAi,
}

/// A server with the fake's providers, `openai/gpt-4o-mini` by default, a 2 s timeout, a
/// generous `ai` rate, and `extra` variables.
pub async fn stand(extra: &[(&str, &str)]) -> Stand {
    let fake = FakeAi::start().await;
    let mut builder = TestApp::builder()
        .env("AI_DEFAULT_MODEL", "openai/gpt-4o-mini")
        .env("AI_TIMEOUT_SECONDS", "2")
        .env("RATE_LIMIT_AI", "1000/minute");
    for (name, value) in fake.env() {
        builder = builder.env(name, &value);
    }
    for (name, value) in extra {
        builder = builder.env(name, value);
    }
    Stand { app: builder.spawn().await, fake }
}

/// A signed-in account: its client and id.
pub async fn user(app: &TestApp) -> (TestClient, Uuid) {
    let (client, session) = app.signed_in_client().await;
    let id = session["user"]["id"].as_str().unwrap().parse().unwrap();
    (client, id)
}

/// A one-message chat.
pub fn ask(text: &str) -> Value {
    json!({"messages": [{"role": "user", "content": text}]})
}

/// This month's total of `metric` for `user_id`.
pub async fn used(app: &TestApp, user_id: Uuid, metric: &str) -> i64 {
    let today = Utc::now().date_naive();
    let first = today - chrono::Days::new(40);
    omnistack_db::usage::total(&app.state.db, user_id, metric, first, today).await.unwrap()
}

/// Waits (up to 5 s) for `metric` of `user_id` to reach `expected`.
pub async fn used_becomes(app: &TestApp, user_id: Uuid, metric: &str, expected: i64) {
    for _ in 0..100 {
        if used(app, user_id, metric).await == expected {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(used(app, user_id, metric).await, expected, "{metric}");
}

/// Posts `body` to `path` and reads the whole `text/event-stream` answer as its JSON events.
pub async fn stream(client: &TestClient, path: &str, body: &Value) -> (u16, Vec<Value>) {
    let res = client.request(Method::POST, path).json(body).send().await.unwrap();
    let status = res.status().as_u16();
    if status == 200 {
        assert_eq!(res.headers()["content-type"], "text/event-stream");
    }
    let text = res.text().await.unwrap();
    if status != 200 {
        return (status, vec![serde_json::from_str(&text).unwrap()]);
    }
    (status, events(&text))
}

/// The JSON of each `data:` line; every event is exactly one line followed by a blank line.
pub fn events(text: &str) -> Vec<Value> {
    assert!(text.is_empty() || text.ends_with("\n\n"), "{text:?}");
    text.split_terminator("\n\n")
        .map(|frame| {
            let data = frame.strip_prefix("data: ").unwrap_or_else(|| panic!("not a data line: {frame:?}"));
            assert!(!data.contains('\n'), "one line per event: {data:?}");
            serde_json::from_str(data).unwrap()
        })
        .collect()
}

/// The text of the `delta` events.
pub fn text_of(events: &[Value]) -> String {
    events.iter().filter(|e| e["type"] == "delta").map(|e| e["content"].as_str().unwrap()).collect()
}
