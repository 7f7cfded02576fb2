//! `/app/ai/*`: the AI gateway (status, chat, routed chat), answering JSON or server-sent events.

use crate::api::Routes;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::ai::{self, Answer, Completion, Deps, Message, ProviderStatus, TokenUsage};
use crate::auth::CurrentUser;
use crate::config::Complexity;
use crate::error::{ErrorBody, Result};
use crate::http::extract::Json;
use crate::state::AppState;

/// The AI routes, for the `app` group.
pub fn routes() -> Routes {
    Routes::new().routes(routes!(ai_status)).routes(routes!(ai_chat)).routes(routes!(ai_chat_routed))
}

/// The models for each complexity.
#[derive(Debug, Serialize, ToSchema)]
pub struct AiRoutes {
    /// `provider/model` for simple prompts.
    pub simple: Option<String>,
    /// `provider/model` for moderate prompts.
    pub moderate: Option<String>,
    /// `provider/model` for complex prompts.
    pub complex: Option<String>,
}

/// What the gateway offers.
#[derive(Debug, Serialize, ToSchema)]
pub struct AiStatusResponse {
    /// Whether any provider is configured.
    pub enabled: bool,
    /// Every provider: configured or not, and its circuit (`closed`, `open`, `half_open`).
    pub providers: Vec<ProviderStatus>,
    /// `provider/model` used when a chat names none.
    #[schema(example = "openai/gpt-4o-mini")]
    pub default_model: Option<String>,
    /// The models a chat may name.
    pub allowed_models: Vec<String>,
    /// Tried in order when a model fails before its first token.
    pub fallback: Vec<String>,
    /// `AI_ROUTES`.
    pub routes: AiRoutes,
    /// The most tokens a chat may ask for.
    pub max_tokens: u32,
}

/// The gateway's providers, circuits and models.
#[utoipa::path(get, path = "/app/ai/status", tag = "ai", security(("bearer" = [])),
    responses(
        (status = OK, body = AiStatusResponse),
        (status = UNAUTHORIZED, body = ErrorBody),
    ))]
pub async fn ai_status(State(state): State<AppState>, _caller: CurrentUser) -> Json<AiStatusResponse> {
    let settings = state.ai.settings();
    let names = |models: &[crate::config::ModelRef]| models.iter().map(ToString::to_string).collect();
    let route = |c: Complexity| settings.route(c).map(ToString::to_string);
    Json(AiStatusResponse {
        enabled: settings.enabled(),
        providers: state.ai.providers(),
        default_model: settings.default_model.as_ref().map(ToString::to_string),
        allowed_models: names(&settings.allowed_models),
        fallback: names(&settings.fallback),
        routes: AiRoutes {
            simple: route(Complexity::Simple),
            moderate: route(Complexity::Moderate),
            complex: route(Complexity::Complex),
        },
        max_tokens: settings.max_tokens,
    })
}

/// A chat.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatRequest {
    /// 1 to 100 messages (400,000 characters in all), at least one from the user.
    #[schema(min_items = 1, max_items = 100)]
    pub messages: Vec<Message>,
    /// `provider/model` from `allowed_models`; the default model when absent.
    #[schema(example = "openai/gpt-4o-mini", max_length = 120)]
    pub model: Option<String>,
    /// 0 to 2 (sent to Anthropic as at most 1).
    #[schema(minimum = 0, maximum = 2)]
    pub temperature: Option<f64>,
    /// 1 to `AI_MAX_TOKENS` (default: `AI_MAX_TOKENS`).
    #[schema(minimum = 1)]
    pub max_tokens: Option<u32>,
    /// Answer as `text/event-stream`.
    #[serde(default)]
    pub stream: bool,
}

/// How demanding a routed prompt is.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ComplexityParam {
    /// Short, cheap answers.
    Simple,
    /// The everyday model.
    Moderate,
    /// The most capable model.
    Complex,
}

/// A prompt routed by complexity.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RoutedChatRequest {
    /// The user's prompt: 1 to 100,000 characters.
    #[schema(min_length = 1, max_length = 100000)]
    pub prompt: String,
    /// An optional system prompt: 1 to 100,000 characters.
    #[schema(min_length = 1, max_length = 100000)]
    pub system: Option<String>,
    /// Picks the model from `AI_ROUTES`.
    pub complexity: ComplexityParam,
    /// 0 to 2.
    #[schema(minimum = 0, maximum = 2)]
    pub temperature: Option<f64>,
    /// 1 to `AI_MAX_TOKENS`.
    #[schema(minimum = 1)]
    pub max_tokens: Option<u32>,
    /// Answer as `text/event-stream`.
    #[serde(default)]
    pub stream: bool,
}

/// A complete answer. With `stream: true` the answer is instead `text/event-stream`, each
/// event one JSON object on a `data:` line: `{"type":"delta","content":…}` as text arrives, then
/// `{"type":"done","usage":{…},"finish_reason":…,"model":…,"provider":…,"latency_ms":…}`, or
/// `{"type":"error","error":{"code":…,"message":…}}` when the provider fails midway.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatResponse {
    /// The answer.
    pub content: String,
    /// The model that answered (a fallback's, when the first failed).
    #[schema(example = "gpt-4o-mini")]
    pub model: String,
    /// `openai`, `anthropic` or `gemini`.
    #[schema(example = "openai")]
    pub provider: &'static str,
    /// Tokens, as the provider counted them.
    pub usage: TokenUsage,
    /// `stop`, `length`, `content_filter`, `tool_calls`, or the provider's own word.
    #[schema(example = "stop")]
    pub finish_reason: Option<String>,
    /// Time to the answer, fallbacks included.
    pub latency_ms: u64,
}

impl From<Completion> for ChatResponse {
    fn from(c: Completion) -> Self {
        ChatResponse {
            content: c.content,
            model: c.model,
            provider: c.provider,
            usage: c.usage,
            finish_reason: c.finish_reason,
            latency_ms: c.latency_ms,
        }
    }
}

fn respond(answer: Answer) -> Response {
    match answer {
        Answer::Complete(completion) => Json(ChatResponse::from(completion)).into_response(),
        Answer::Stream(events) => {
            let mut response = Body::from_stream(events).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
            response
        }
    }
}

fn deps(state: &AppState) -> Deps<'_> {
    Deps { gateway: &state.ai, usage: &state.usage, limiter: &state.limiter }
}

/// Chats with the default model or an allowed one, falling back through `AI_FALLBACK`.
#[utoipa::path(post, path = "/app/ai/chat", tag = "ai", security(("bearer" = [])), request_body = ChatRequest,
    responses(
        (status = OK, body = ChatResponse, description = "The answer (JSON), or `text/event-stream` with `stream: true`"),
        (status = UNAUTHORIZED, body = ErrorBody),
        (status = PAYMENT_REQUIRED, body = ErrorBody, description = "QUOTA_EXCEEDED: the plan's AI limit"),
        (status = FORBIDDEN, body = ErrorBody, description = "An impersonation token"),
        (status = UNPROCESSABLE_ENTITY, body = ErrorBody),
        (status = TOO_MANY_REQUESTS, body = ErrorBody, description = "The `ai` rate class"),
        (status = BAD_GATEWAY, body = ErrorBody, description = "EXTERNAL_SERVICE_ERROR: every provider failed or one refused"),
        (status = SERVICE_UNAVAILABLE, body = ErrorBody, description = "No provider is configured"),
    ))]
pub async fn ai_chat(
    State(state): State<AppState>,
    caller: CurrentUser,
    Json(body): Json<ChatRequest>,
) -> Result<Response> {
    let input = ai::ChatInput {
        messages: body.messages,
        model: body.model,
        temperature: body.temperature,
        max_tokens: body.max_tokens,
        stream: body.stream,
    };
    Ok(respond(ai::chat(deps(&state), &caller, input).await?))
}

/// Chats with the model `AI_ROUTES` gives the prompt's complexity.
#[utoipa::path(post, path = "/app/ai/chat/routed", tag = "ai", security(("bearer" = [])), request_body = RoutedChatRequest,
    responses(
        (status = OK, body = ChatResponse, description = "The answer (JSON), or `text/event-stream` with `stream: true`"),
        (status = UNAUTHORIZED, body = ErrorBody),
        (status = PAYMENT_REQUIRED, body = ErrorBody, description = "QUOTA_EXCEEDED: the plan's AI limit"),
        (status = FORBIDDEN, body = ErrorBody, description = "An impersonation token"),
        (status = UNPROCESSABLE_ENTITY, body = ErrorBody),
        (status = TOO_MANY_REQUESTS, body = ErrorBody, description = "The `ai` rate class"),
        (status = BAD_GATEWAY, body = ErrorBody, description = "EXTERNAL_SERVICE_ERROR: every provider failed or one refused"),
        (status = SERVICE_UNAVAILABLE, body = ErrorBody, description = "No provider is configured"),
    ))]
pub async fn ai_chat_routed(
    State(state): State<AppState>,
    caller: CurrentUser,
    Json(body): Json<RoutedChatRequest>,
) -> Result<Response> {
    let complexity = match body.complexity {
        ComplexityParam::Simple => Complexity::Simple,
        ComplexityParam::Moderate => Complexity::Moderate,
        ComplexityParam::Complex => Complexity::Complex,
    };
    let input = ai::RoutedInput {
        prompt: body.prompt,
        system: body.system,
        complexity,
        temperature: body.temperature,
        max_tokens: body.max_tokens,
        stream: body.stream,
    };
    Ok(respond(ai::routed(deps(&state), &caller, input).await?))
}
