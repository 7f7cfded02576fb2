//! Fallback before the first token (5xx, 429, timeouts), no fallback on a refusal, 502 when
//! every provider fails, and the circuit breaker opening, skipping and probing.

use std::time::Duration;

use omnistack_testkit::ai::Behaviour;
use serde_json::json;

use super::{ask, stand, stream, text_of, used, used_becomes, user};

const FALLBACK: &str = "anthropic/claude-3-5-haiku-latest,gemini/gemini-2.5-flash";

#[tokio::test]
async fn a_provider_answering_500_falls_back_to_the_next_and_only_the_answer_is_metered() {
    let stand = stand(&[("AI_FALLBACK", FALLBACK)]).await;
    let (client, user_id) = user(&stand.app).await;
    stand.fake.script("openai", [Behaviour::Status(500)]);
    let res = client.post_json("/api/v1/app/ai/chat", &super::ask("Hi")).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(
        (res.json()["provider"].as_str(), res.json()["model"].as_str()),
        (Some("anthropic"), Some("claude-3-5-haiku-latest"))
    );
    assert_eq!((stand.fake.requests_to("openai").len(), stand.fake.requests_to("anthropic").len()), (1, 1));

    // Streaming: 503 from OpenAI and 429 from Anthropic before any token; Gemini answers.
    stand.fake.script("openai", [Behaviour::Status(503)]);
    stand.fake.script("anthropic", [Behaviour::Status(429)]);
    let body = json!({"stream": true, "messages": [{"role": "user", "content": "Hi"}]});
    let (status, events) = stream(&client, "/api/v1/app/ai/chat", &body).await;
    assert_eq!(status, 200, "{events:?}");
    assert_eq!(events.last().unwrap()["provider"], "gemini");
    assert_eq!(text_of(&events), omnistack_testkit::ai::DEFAULT_REPLY);

    // A stream that ends before its first token also moves on.
    stand.fake.script("openai", [Behaviour::BreakAfter(0)]);
    let (status, events) = stream(&client, "/api/v1/app/ai/chat", &body).await;
    assert_eq!(status, 200);
    assert_eq!(events.last().unwrap()["provider"], "anthropic", "{events:?}");
    used_becomes(&stand.app, user_id, "ai_requests", 3).await;
}

#[tokio::test]
async fn a_provider_that_times_out_falls_back_within_the_timeout() {
    let stand = stand(&[("AI_FALLBACK", FALLBACK), ("AI_TIMEOUT_SECONDS", "1")]).await;
    let (client, _) = user(&stand.app).await;
    stand.fake.script("openai", [Behaviour::Hang]);
    let started = std::time::Instant::now();
    let res = client.post_json("/api/v1/app/ai/chat", &ask("Hi")).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json()["provider"], "anthropic");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(res.json()["latency_ms"].as_u64().unwrap() >= 1000);

    stand.fake.script("openai", [Behaviour::Hang]);
    let body = json!({"stream": true, "messages": [{"role": "user", "content": "Hi"}]});
    let (status, events) = stream(&client, "/api/v1/app/ai/chat", &body).await;
    assert_eq!(status, 200);
    assert_eq!(events.last().unwrap()["provider"], "anthropic");
}

#[tokio::test]
async fn a_refusal_is_not_retried_and_every_provider_failing_is_502_without_metering() {
    let stand = stand(&[("AI_FALLBACK", FALLBACK)]).await;
    let (client, user_id) = user(&stand.app).await;
    stand.fake.script("openai", [Behaviour::Status(400)]);
    let res = client.post_json("/api/v1/app/ai/chat", &ask("Hi")).await;
    assert_eq!((res.status.as_u16(), res.error_code().as_str()), (502, "EXTERNAL_SERVICE_ERROR"), "{}", res.text);
    assert!(stand.fake.requests_to("anthropic").is_empty());

    for provider in ["openai", "anthropic", "gemini"] {
        stand.fake.script(provider, [Behaviour::Status(500), Behaviour::Status(502)]);
    }
    let res = client.post_json("/api/v1/app/ai/chat", &ask("Hi")).await;
    assert_eq!((res.status.as_u16(), res.error_code().as_str()), (502, "EXTERNAL_SERVICE_ERROR"), "{}", res.text);
    let body = json!({"stream": true, "messages": [{"role": "user", "content": "Hi"}]});
    let (status, events) = stream(&client, "/api/v1/app/ai/chat", &body).await;
    assert_eq!(status, 502, "{events:?}");
    assert_eq!(events[0]["error"]["code"], "EXTERNAL_SERVICE_ERROR");
    assert!(!events[0]["error"]["message"].as_str().unwrap().contains("fake"), "the provider's words stay in the log");
    assert_eq!(used(&stand.app, user_id, "ai_requests").await, 0);
}

async fn circuit(client: &omnistack_testkit::TestClient, provider: &str) -> String {
    let status = client.get("/api/v1/app/ai/status").await.json();
    let found = status["providers"].as_array().unwrap().iter().find(|p| p["name"] == provider).unwrap().clone();
    found["circuit"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_breaker_opens_after_consecutive_failures_skips_the_provider_then_probes_it() {
    let stand = stand(&[
        ("AI_FALLBACK", "anthropic/claude-3-5-haiku-latest"),
        ("AI_BREAKER_THRESHOLD", "2"),
        ("AI_BREAKER_COOLDOWN_SECONDS", "1"),
    ])
    .await;
    let (client, _) = user(&stand.app).await;
    stand.fake.script("openai", [Behaviour::Status(500), Behaviour::Status(500)]);
    for _ in 0..2 {
        let res = client.post_json("/api/v1/app/ai/chat", &ask("Hi")).await;
        assert_eq!(res.json()["provider"], "anthropic", "{}", res.text);
    }
    assert_eq!(circuit(&client, "openai").await, "open");
    assert_eq!(circuit(&client, "anthropic").await, "closed");
    let res = client.post_json("/api/v1/app/ai/chat", &ask("Hi")).await;
    assert_eq!(res.json()["provider"], "anthropic");
    assert_eq!(stand.fake.requests_to("openai").len(), 2, "an open circuit is skipped");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(circuit(&client, "openai").await, "half_open");
    let res = client.post_json("/api/v1/app/ai/chat", &ask("Hi")).await;
    assert_eq!(res.json()["provider"], "openai", "the probe went through and succeeded: {}", res.text);
    assert_eq!(circuit(&client, "openai").await, "closed");

    // A failed probe opens it again at once.
    stand.fake.script("openai", [Behaviour::Status(500), Behaviour::Status(500), Behaviour::Status(500)]);
    for _ in 0..2 {
        client.post_json("/api/v1/app/ai/chat", &ask("Hi")).await;
    }
    assert_eq!(circuit(&client, "openai").await, "open");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let res = client.post_json("/api/v1/app/ai/chat", &ask("Hi")).await;
    assert_eq!(res.json()["provider"], "anthropic");
    assert_eq!(circuit(&client, "openai").await, "open");
}

#[tokio::test]
async fn providers_that_all_hang_answer_502_before_the_request_timeout() {
    let stand = stand(&[
        ("AI_FALLBACK", "anthropic/claude-3-5-haiku-latest"),
        ("AI_TIMEOUT_SECONDS", "1"),
        ("REQUEST_TIMEOUT_SECONDS", "2"),
    ])
    .await;
    let (client, _) = user(&stand.app).await;
    stand.fake.script("openai", [Behaviour::Hang]);
    stand.fake.script("anthropic", [Behaviour::Hang]);
    let res = client.post_json("/api/v1/app/ai/chat", &ask("Hi")).await;
    assert_eq!((res.status.as_u16(), res.error_code().as_str()), (502, "EXTERNAL_SERVICE_ERROR"), "{}", res.text);
    assert_eq!(stand.fake.requests_to("anthropic").len(), 1, "the fallback got what was left of the time");
}
