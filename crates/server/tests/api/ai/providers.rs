//! Each provider's own request and answer (JSON), routing by complexity, the status route, and
//! metering of complete answers.

use omnistack_testkit::ai::{ANTHROPIC_KEY, DEFAULT_REPLY, GEMINI_KEY, OPENAI_KEY, PROMPT_TOKENS};
use serde_json::json;

use super::{stand, used, user};

const ALLOWED: &str = "openai/gpt-4o-mini,anthropic/claude-3-5-haiku-latest,gemini/gemini-2.5-flash";

fn conversation(model: &str) -> serde_json::Value {
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "system", "content": "Answer in English."},
            {"role": "user", "content": "How are you?"},
        ],
        "temperature": 1.5,
    })
}

#[tokio::test]
async fn each_provider_gets_its_own_wire_format_and_the_answer_has_one_shape() {
    let stand = stand(&[("AI_ALLOWED_MODELS", ALLOWED), ("AI_MAX_TOKENS", "256")]).await;
    let (client, user_id) = user(&stand.app).await;
    let completion = DEFAULT_REPLY.chars().count() as u64;
    let mut tokens = 0;
    for (model, provider, name) in [
        ("openai/gpt-4o-mini", "openai", "gpt-4o-mini"),
        ("anthropic/claude-3-5-haiku-latest", "anthropic", "claude-3-5-haiku-latest"),
        ("gemini/gemini-2.5-flash", "gemini", "gemini-2.5-flash"),
    ] {
        let mut body = conversation(model);
        if provider == "openai" {
            body["max_tokens"] = json!(100);
        }
        let res = client.post_json("/api/v1/app/ai/chat", &body).await;
        assert_eq!(res.status, 200, "{}", res.text);
        let answer = res.json();
        assert_eq!(answer["content"], DEFAULT_REPLY);
        assert_eq!((answer["provider"].as_str(), answer["model"].as_str()), (Some(provider), Some(name)));
        assert_eq!(answer["usage"]["prompt_tokens"], PROMPT_TOKENS);
        assert_eq!(answer["usage"]["completion_tokens"], completion);
        assert_eq!(answer["usage"]["total_tokens"], PROMPT_TOKENS + completion);
        assert_eq!(answer["finish_reason"], "stop");
        assert!(answer["latency_ms"].is_u64());
        tokens += PROMPT_TOKENS + completion;
    }

    let openai = &stand.fake.requests_to("openai")[0];
    assert_eq!(openai.path, "/v1/chat/completions");
    assert_eq!(openai.header("authorization"), Some(format!("Bearer {OPENAI_KEY}").as_str()));
    assert_eq!(openai.body["model"], "gpt-4o-mini");
    let roles: Vec<&str> =
        openai.body["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "system", "user"], "OpenAI keeps the order");
    assert_eq!(openai.body["max_completion_tokens"], 100);
    assert_eq!(openai.body["temperature"], 1.5);
    assert!(openai.body.get("stream").is_none());

    let anthropic = &stand.fake.requests_to("anthropic")[0];
    assert_eq!(anthropic.path, "/v1/messages");
    assert_eq!(anthropic.header("x-api-key"), Some(ANTHROPIC_KEY));
    assert_eq!(anthropic.header("anthropic-version"), Some("2023-06-01"));
    assert!(anthropic.header("authorization").is_none());
    assert_eq!(anthropic.body["system"], "Be brief.\n\nAnswer in English.", "system is top-level");
    let roles: Vec<&str> =
        anthropic.body["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "user"]);
    assert_eq!(anthropic.body["max_tokens"], 256, "AI_MAX_TOKENS when the request names none");
    assert_eq!(anthropic.body["temperature"], 1.0, "Anthropic's scale stops at 1");

    let gemini = &stand.fake.requests_to("gemini")[0];
    assert_eq!(gemini.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(gemini.header("x-goog-api-key"), Some(GEMINI_KEY));
    assert_eq!(gemini.body["systemInstruction"]["parts"][0]["text"], "Be brief.\n\nAnswer in English.");
    let roles: Vec<&str> =
        gemini.body["contents"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "model", "user"]);
    assert_eq!(gemini.body["contents"][2]["parts"][0]["text"], "How are you?");
    assert_eq!(gemini.body["generationConfig"]["maxOutputTokens"], 256);

    assert_eq!(used(&stand.app, user_id, "ai_requests").await, 3);
    assert_eq!(used(&stand.app, user_id, "ai_tokens").await, tokens as i64);
}

#[tokio::test]
async fn routed_prompts_take_the_model_of_their_complexity() {
    let stand = stand(&[("AI_ROUTES", "simple=gemini/gemini-2.5-flash,complex=anthropic/claude-sonnet-4-5")]).await;
    let (client, _) = user(&stand.app).await;
    for (complexity, provider, model) in [
        ("simple", "gemini", "gemini-2.5-flash"),
        ("moderate", "openai", "gpt-4o"),
        ("complex", "anthropic", "claude-sonnet-4-5"),
    ] {
        let body = json!({"prompt": "Summarise this.", "system": "You are terse.", "complexity": complexity});
        let res = client.post_json("/api/v1/app/ai/chat/routed", &body).await;
        assert_eq!(res.status, 200, "{}", res.text);
        assert_eq!((res.json()["provider"].as_str(), res.json()["model"].as_str()), (Some(provider), Some(model)));
    }
    assert_eq!(stand.fake.requests_to("anthropic")[0].body["system"], "You are terse.");
    assert_eq!(
        stand.fake.requests_to("openai")[0].body["messages"][0],
        json!({"role": "system", "content": "You are terse."})
    );

    // The routes' models are allowed by default; others are not.
    let res = client
        .post_json(
            "/api/v1/app/ai/chat",
            &json!({"model": "gemini/gemini-2.5-flash", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let res = client
        .post_json(
            "/api/v1/app/ai/chat",
            &json!({"model": "gemini/gemini-2.5-pro", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!((res.status.as_u16(), res.error_code().as_str()), (422, "VALIDATION_ERROR"), "{}", res.text);
}

#[tokio::test]
async fn the_status_lists_providers_models_and_circuits_without_secrets() {
    let stand = stand(&[("AI_FALLBACK", "anthropic/claude-3-5-haiku-latest")]).await;
    let (client, _) = user(&stand.app).await;
    let res = client.get("/api/v1/app/ai/status").await;
    assert_eq!(res.status, 200, "{}", res.text);
    let status = res.json();
    assert_eq!(status["enabled"], true);
    assert_eq!(status["default_model"], "openai/gpt-4o-mini");
    assert_eq!(status["fallback"], json!(["anthropic/claude-3-5-haiku-latest"]));
    assert_eq!(status["routes"]["simple"], "openai/gpt-4o-mini");
    assert_eq!(status["max_tokens"], 4096);
    let allowed = status["allowed_models"].as_array().unwrap();
    assert!(allowed.contains(&json!("anthropic/claude-3-5-haiku-latest")), "{allowed:?}");
    for provider in status["providers"].as_array().unwrap() {
        assert_eq!((provider["configured"].as_bool(), provider["circuit"].as_str()), (Some(true), Some("closed")));
    }
    for key in [OPENAI_KEY, ANTHROPIC_KEY, GEMINI_KEY] {
        assert!(!res.text.contains(key));
    }
    let described = stand.app.state.config.describe();
    assert!(described.contains(&("OPENAI_API_KEY", "[REDACTED]".to_owned())));
}
