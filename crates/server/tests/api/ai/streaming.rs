//! Streams: every event one JSON `data:` line whatever the text holds, usage from the
//! provider's final numbers, an `error` event when the provider fails midway, and a client
//! that leaves cancels the upstream request.

use std::time::Duration;

use omnistack_testkit::ai::{Behaviour, PROMPT_TOKENS};
use reqwest::Method;
use serde_json::json;

use super::{events, stand, stream, text_of, used, used_becomes, user};

const ALLOWED: &str = "openai/gpt-4o-mini,anthropic/claude-3-5-haiku-latest,gemini/gemini-2.5-flash";
const MODELS: [(&str, &str); 3] = [
    ("openai/gpt-4o-mini", "openai"),
    ("anthropic/claude-3-5-haiku-latest", "anthropic"),
    ("gemini/gemini-2.5-flash", "gemini"),
];

#[tokio::test]
async fn streams_carry_newlines_and_any_unicode_and_end_with_the_providers_usage() {
    let stand = stand(&[("AI_ALLOWED_MODELS", ALLOWED)]).await;
    let (client, user_id) = user(&stand.app).await;
    let reply = "line one\nline two\r\n\r\ndata: {\"type\":\"done\"}\n\n\u{2028}— ✓ 😀 \u{202e}rtl\u{200d}\u{feff}e\u{301} \"q\" \\";
    stand.fake.reply(reply);
    let completion = reply.chars().count() as u64;
    for (model, provider) in MODELS {
        let body = json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "Tell me"}]});
        let (status, events) = stream(&client, "/api/v1/app/ai/chat", &body).await;
        assert_eq!(status, 200, "{events:?}");
        assert_eq!(text_of(&events), reply, "{provider}");
        assert!(events.len() > 3, "several deltas: {events:?}");
        let done = events.last().unwrap();
        assert_eq!(done["type"], "done", "{provider}: {events:?}");
        assert_eq!(done["usage"]["prompt_tokens"], PROMPT_TOKENS);
        assert_eq!(done["usage"]["completion_tokens"], completion);
        assert_eq!(done["usage"]["total_tokens"], PROMPT_TOKENS + completion);
        assert_eq!(done["finish_reason"], "stop");
        assert_eq!(done["provider"], provider);
        assert_eq!(events.iter().filter(|e| e["type"] == "done").count(), 1);
    }
    let openai = &stand.fake.requests_to("openai")[0];
    assert_eq!(openai.body["stream"], true);
    assert_eq!(openai.body["stream_options"], json!({"include_usage": true}));
    assert_eq!(stand.fake.requests_to("anthropic")[0].body["stream"], true);
    assert_eq!(
        stand.fake.requests_to("gemini")[0].path,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
    used_becomes(&stand.app, user_id, "ai_requests", 3).await;
    assert_eq!(used(&stand.app, user_id, "ai_tokens").await, 3 * (PROMPT_TOKENS + completion) as i64);
}

#[tokio::test]
async fn a_provider_failing_midway_ends_the_stream_with_an_error_event() {
    let stand = stand(&[("AI_ALLOWED_MODELS", ALLOWED), ("AI_FALLBACK", "gemini/gemini-2.5-flash")]).await;
    let (client, user_id) = user(&stand.app).await;
    stand.fake.reply("one two three four five six seven");
    for (model, provider) in MODELS {
        stand.fake.script(provider, [Behaviour::BreakAfter(2)]);
        let body = json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "Tell me"}]});
        let (status, events) = stream(&client, "/api/v1/app/ai/chat", &body).await;
        assert_eq!(status, 200, "{events:?}");
        assert_eq!(text_of(&events), "one two ", "{provider}: two deltas of four characters");
        let last = events.last().unwrap();
        assert_eq!(last["type"], "error", "{provider}: {events:?}");
        assert_eq!(last["error"]["code"], "EXTERNAL_SERVICE_ERROR");
        assert!(last["error"]["message"].as_str().unwrap().contains(provider));
        assert!(!events.iter().any(|e| e["type"] == "done"));
    }
    // After the first token there is no fallback: gemini served only its own call.
    assert_eq!(stand.fake.requests_to("gemini").len(), 1);
    used_becomes(&stand.app, user_id, "ai_requests", 3).await;
}

#[tokio::test]
async fn a_client_that_leaves_cancels_the_upstream_request_and_the_call_is_still_metered() {
    let stand = stand(&[]).await;
    let (client, user_id) = user(&stand.app).await;
    stand.fake.reply(&"slow words ".repeat(40));
    stand.fake.script("openai", [Behaviour::Slow(Duration::from_millis(100))]);
    let body = json!({"stream": true, "messages": [{"role": "user", "content": "Tell me a long story"}]});
    let mut res = client.request(Method::POST, "/api/v1/app/ai/chat").json(&body).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let first = res.chunk().await.unwrap().unwrap();
    let first = events(std::str::from_utf8(&first).unwrap());
    assert_eq!(first[0]["type"], "delta");
    drop(res);
    drop(client);
    for _ in 0..100 {
        if stand.fake.cancelled_streams() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stand.fake.cancelled_streams(), 1, "the fake saw its stream's connection closed");
    used_becomes(&stand.app, user_id, "ai_requests", 1).await;
}
