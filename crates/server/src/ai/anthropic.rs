//! Anthropic messages (`POST {ANTHROPIC_BASE_URL}/v1/messages`, `x-api-key` and
//! `anthropic-version`), with the system prompt top-level. Streaming: `message_start` (input
//! tokens), `content_block_delta` (`text_delta`), `message_delta` (stop reason, output tokens so
//! far), `message_stop`; `error` events mid-stream.

use serde_json::{Value, json};

use super::stream::SseEvent;
use super::{Prompt, Reply, Role, Step, TokenUsage, clip, finish_reason};
use crate::config::AiProviderSettings;

/// The API version every request pins.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// The request for `model`. Anthropic's temperature stops at 1.0, so higher values are sent as
/// 1.0.
pub fn request(
    http: &reqwest::Client,
    settings: &AiProviderSettings,
    model: &str,
    prompt: &Prompt,
    stream: bool,
) -> reqwest::RequestBuilder {
    let messages: Vec<Value> = prompt
        .messages
        .iter()
        .filter(|m| m.role != Role::System)
        .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
        .collect();
    let mut body = json!({"model": model, "max_tokens": prompt.max_tokens, "messages": messages});
    if let Some(system) = prompt.system() {
        body["system"] = json!(system);
    }
    if let Some(temperature) = prompt.temperature {
        body["temperature"] = json!(temperature.min(1.0));
    }
    if stream {
        body["stream"] = json!(true);
    }
    http.post(format!("{}/v1/messages", settings.base_url))
        .header("x-api-key", settings.api_key.expose())
        .header("anthropic-version", ANTHROPIC_VERSION)
        .json(&body)
}

fn normalise(reason: &str) -> String {
    match reason {
        "end_turn" | "stop_sequence" => "stop".to_owned(),
        "max_tokens" => "length".to_owned(),
        "tool_use" => "tool_calls".to_owned(),
        "refusal" => "content_filter".to_owned(),
        other => finish_reason(other),
    }
}

/// A non-streaming answer, or `None` when it is not a message.
pub fn reply(body: &Value) -> Option<Reply> {
    let blocks = body["content"].as_array()?;
    let content = blocks.iter().filter(|b| b["type"] == "text").filter_map(|b| b["text"].as_str()).collect();
    let input = body["usage"]["input_tokens"].as_u64().unwrap_or(0);
    let output = body["usage"]["output_tokens"].as_u64().unwrap_or(0);
    Some(Reply {
        content,
        usage: TokenUsage::new(input, output, None),
        finish_reason: body["stop_reason"].as_str().map(normalise),
    })
}

/// Reads the stream's events.
#[derive(Debug, Default)]
pub struct Decoder {
    input: u64,
    output: u64,
    finish_reason: Option<String>,
}

impl Decoder {
    /// One event.
    pub fn event(&mut self, event: &SseEvent) -> Result<Step, String> {
        let value: Value = serde_json::from_str(&event.data).map_err(|_| "an event that is not JSON".to_owned())?;
        let kind = value["type"].as_str().unwrap_or(&event.event);
        match kind {
            "message_start" => {
                let usage = &value["message"]["usage"];
                self.input = usage["input_tokens"].as_u64().unwrap_or(0);
                self.output = usage["output_tokens"].as_u64().unwrap_or(0);
                Ok(Step::Nothing)
            }
            "content_block_delta" => match (value["delta"]["type"].as_str(), value["delta"]["text"].as_str()) {
                (Some("text_delta"), Some(text)) if !text.is_empty() => Ok(Step::Text(text.to_owned())),
                _ => Ok(Step::Nothing),
            },
            "message_delta" => {
                if let Some(reason) = value["delta"]["stop_reason"].as_str() {
                    self.finish_reason = Some(normalise(reason));
                }
                // Cumulative counts, not increments.
                if let Some(output) = value["usage"]["output_tokens"].as_u64() {
                    self.output = output;
                }
                if let Some(input) = value["usage"]["input_tokens"].as_u64() {
                    self.input = input;
                }
                Ok(Step::Nothing)
            }
            "message_stop" => Ok(Step::End),
            "error" => Err(clip(value["error"]["message"].as_str().unwrap_or("an error event"))),
            _ => Ok(Step::Nothing),
        }
    }

    /// The stream ended without `message_stop`: it was cut off.
    pub fn at_eof(&self) -> Result<(), String> {
        Err("the stream ended before message_stop".into())
    }

    /// Usage so far.
    pub fn usage(&self) -> TokenUsage {
        TokenUsage::new(self.input, self.output, None)
    }

    /// The finish reason, once given.
    pub fn finish_reason(&self) -> Option<String> {
        self.finish_reason.clone()
    }
}
