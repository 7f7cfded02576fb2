//! Google Gemini (`POST {GEMINI_BASE_URL}/v1beta/models/{model}:generateContent`, and
//! `:streamGenerateContent?alt=sse`; `x-goog-api-key`). Turns are `contents` with roles `user`
//! and `model`, the system prompt is `systemInstruction`, limits are `generationConfig`, and
//! usage is `usageMetadata`. A stream is a series of whole responses, ended by the connection.

use serde_json::{Value, json};

use super::stream::SseEvent;
use super::{Prompt, Reply, Role, Step, TokenUsage, clip, finish_reason};
use crate::config::AiProviderSettings;

/// The request for `model` (a configured name: letters, digits and `.-_:@` only).
pub fn request(
    http: &reqwest::Client,
    settings: &AiProviderSettings,
    model: &str,
    prompt: &Prompt,
    stream: bool,
) -> reqwest::RequestBuilder {
    let contents: Vec<Value> = prompt
        .messages
        .iter()
        .filter(|m| m.role != Role::System)
        .map(|m| {
            let role = if m.role == Role::Assistant { "model" } else { "user" };
            json!({"role": role, "parts": [{"text": m.content}]})
        })
        .collect();
    let mut config = json!({"maxOutputTokens": prompt.max_tokens});
    if let Some(temperature) = prompt.temperature {
        config["temperature"] = json!(temperature);
    }
    let mut body = json!({"contents": contents, "generationConfig": config});
    if let Some(system) = prompt.system() {
        body["systemInstruction"] = json!({"parts": [{"text": system}]});
    }
    let url = if stream {
        format!("{}/v1beta/models/{model}:streamGenerateContent?alt=sse", settings.base_url)
    } else {
        format!("{}/v1beta/models/{model}:generateContent", settings.base_url)
    };
    http.post(url).header("x-goog-api-key", settings.api_key.expose()).json(&body)
}

fn normalise(reason: &str) -> String {
    match reason {
        "STOP" => "stop".to_owned(),
        "MAX_TOKENS" => "length".to_owned(),
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" => "content_filter".to_owned(),
        other => finish_reason(&other.to_ascii_lowercase()),
    }
}

fn usage(metadata: &Value) -> Option<TokenUsage> {
    let prompt = metadata["promptTokenCount"].as_u64()?;
    let completion =
        metadata["candidatesTokenCount"].as_u64().unwrap_or(0) + metadata["thoughtsTokenCount"].as_u64().unwrap_or(0);
    Some(TokenUsage::new(prompt, completion, metadata["totalTokenCount"].as_u64()))
}

/// The text of the first candidate, and its finish reason (or the prompt's block reason).
fn candidate(body: &Value) -> (String, Option<String>) {
    let candidate = &body["candidates"][0];
    let text = candidate["content"]["parts"]
        .as_array()
        .map(|parts| parts.iter().filter_map(|p| p["text"].as_str()).collect())
        .unwrap_or_default();
    let reason = candidate["finishReason"]
        .as_str()
        .map(normalise)
        .or_else(|| body["promptFeedback"]["blockReason"].as_str().map(|_| "content_filter".to_owned()));
    (text, reason)
}

/// A non-streaming answer, or `None` when it is not a `GenerateContentResponse`.
pub fn reply(body: &Value) -> Option<Reply> {
    if body.get("candidates").is_none() && body.get("promptFeedback").is_none() {
        return None;
    }
    let (content, finish_reason) = candidate(body);
    Some(Reply { content, usage: usage(&body["usageMetadata"]).unwrap_or_default(), finish_reason })
}

/// Reads the stream's responses.
#[derive(Debug, Default)]
pub struct Decoder {
    usage: TokenUsage,
    finish_reason: Option<String>,
}

impl Decoder {
    /// One event.
    pub fn event(&mut self, event: &SseEvent) -> Result<Step, String> {
        let chunk: Value = serde_json::from_str(&event.data).map_err(|_| "a chunk that is not JSON".to_owned())?;
        if let Some(error) = chunk.get("error") {
            return Err(clip(error["message"].as_str().unwrap_or("an error event")));
        }
        if let Some(usage) = usage(&chunk["usageMetadata"]) {
            self.usage = usage;
        }
        let (text, reason) = candidate(&chunk);
        if reason.is_some() {
            self.finish_reason = reason;
        }
        Ok(if text.is_empty() { Step::Nothing } else { Step::Text(text) })
    }

    /// The connection ended: complete once a finish reason came.
    pub fn at_eof(&self) -> Result<(), String> {
        if self.finish_reason.is_some() { Ok(()) } else { Err("the stream ended before the answer did".into()) }
    }

    /// Usage so far (the last response's).
    pub fn usage(&self) -> TokenUsage {
        self.usage
    }

    /// The finish reason, once given.
    pub fn finish_reason(&self) -> Option<String> {
        self.finish_reason.clone()
    }
}
