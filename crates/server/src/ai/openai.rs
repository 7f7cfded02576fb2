//! OpenAI chat completions (`POST {OPENAI_BASE_URL}/chat/completions`, `Authorization: Bearer`),
//! also spoken by compatible gateways. Streaming: `data:` chunks of `choices[0].delta.content`,
//! a last chunk with `usage` (asked for with `stream_options.include_usage`) and `data: [DONE]`.

use serde_json::{Value, json};

use super::stream::SseEvent;
use super::{Prompt, Reply, Step, TokenUsage, clip, finish_reason};
use crate::config::AiProviderSettings;

/// The request for `model`.
pub fn request(
    http: &reqwest::Client,
    settings: &AiProviderSettings,
    model: &str,
    prompt: &Prompt,
    stream: bool,
) -> reqwest::RequestBuilder {
    let messages: Vec<Value> =
        prompt.messages.iter().map(|m| json!({"role": m.role.as_str(), "content": m.content})).collect();
    let mut body = json!({
        "model": model,
        "messages": messages,
        "max_completion_tokens": prompt.max_tokens,
    });
    if let Some(temperature) = prompt.temperature {
        body["temperature"] = json!(temperature);
    }
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    http.post(format!("{}/chat/completions", settings.base_url)).bearer_auth(settings.api_key.expose()).json(&body)
}

fn usage(value: &Value) -> Option<TokenUsage> {
    let prompt = value["prompt_tokens"].as_u64()?;
    let completion = value["completion_tokens"].as_u64().unwrap_or(0);
    Some(TokenUsage::new(prompt, completion, value["total_tokens"].as_u64()))
}

fn normalise(reason: &str) -> String {
    match reason {
        "stop" | "length" | "content_filter" | "tool_calls" => reason.to_owned(),
        "function_call" => "tool_calls".to_owned(),
        other => finish_reason(other),
    }
}

/// A non-streaming answer, or `None` when it is not a chat completion.
pub fn reply(body: &Value) -> Option<Reply> {
    let choice = body["choices"].get(0)?;
    let content = match &choice["message"]["content"] {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        _ => return None,
    };
    Some(Reply {
        content,
        usage: usage(&body["usage"]).unwrap_or_default(),
        finish_reason: choice["finish_reason"].as_str().map(normalise),
    })
}

/// Reads the stream's chunks.
#[derive(Debug, Default)]
pub struct Decoder {
    usage: TokenUsage,
    finish_reason: Option<String>,
}

impl Decoder {
    /// One event.
    pub fn event(&mut self, event: &SseEvent) -> Result<Step, String> {
        let data = event.data.trim();
        if data == "[DONE]" {
            return Ok(Step::End);
        }
        let chunk: Value = serde_json::from_str(data).map_err(|_| "a chunk that is not JSON".to_owned())?;
        if let Some(error) = chunk.get("error") {
            return Err(clip(error["message"].as_str().unwrap_or("an error event")));
        }
        if let Some(usage) = usage(&chunk["usage"]) {
            self.usage = usage;
        }
        let Some(choice) = chunk["choices"].get(0) else {
            return Ok(Step::Nothing);
        };
        if let Some(reason) = choice["finish_reason"].as_str() {
            self.finish_reason = Some(normalise(reason));
        }
        match choice["delta"]["content"].as_str() {
            Some(text) if !text.is_empty() => Ok(Step::Text(text.to_owned())),
            _ => Ok(Step::Nothing),
        }
    }

    /// The stream ended without `[DONE]`: complete only if a finish reason came.
    pub fn at_eof(&self) -> Result<(), String> {
        if self.finish_reason.is_some() { Ok(()) } else { Err("the stream ended before the answer did".into()) }
    }

    /// Usage so far (the last chunk's).
    pub fn usage(&self) -> TokenUsage {
        self.usage
    }

    /// The finish reason, once given.
    pub fn finish_reason(&self) -> Option<String> {
        self.finish_reason.clone()
    }
}
