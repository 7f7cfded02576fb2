//! The AI gateway: one chat API in front of OpenAI, Anthropic and Gemini, each spoken in its
//! own wire format ([`openai`], [`anthropic`], [`gemini`]).
//!
//! A call picks its model (the request's, from the allow-list; a route's; the default), then
//! tries it and the `AI_FALLBACK` entries in order: a timeout, 429 or 5xx before the first token
//! moves on to the next, a refusal (another 4xx) ends the call. A [`breaker::Breaker`] per
//! provider skips one that keeps failing and lets a probe through after a cool-down. Plan limits
//! are checked before the upstream call; `ai_requests` and `ai_tokens` are recorded after it,
//! from the provider's own usage (for streams, from its final usage; a stream the client leaves
//! is recorded with what was known). Streams ([`stream`]) are relayed event by event; dropping
//! the client's body drops the upstream response, which closes its connection.

pub mod anthropic;
pub mod breaker;
pub mod gemini;
pub mod openai;
pub mod stream;

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use futures::{Stream, StreamExt};
use omnistack_db::users::User;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::config::{AiProvider, AiSettings, Complexity, ModelRef};
use crate::error::{Error, FieldError, Result};
use crate::rate_limit::{LimitClass, RateLimiter};
use crate::telemetry::outbound;
use crate::usage::{Usage, metric};
use breaker::{Breaker, CircuitState};
use stream::{SseParser, frame};

/// Most messages in one chat.
pub const MAX_MESSAGES: usize = 100;
/// Most characters in one message.
pub const MAX_MESSAGE_CHARS: usize = 100_000;
/// Most characters over all messages of a chat.
pub const MAX_TOTAL_CHARS: usize = 400_000;
/// Longest answer read from a provider (non-streaming).
const MAX_RESPONSE_BYTES: usize = 8 << 20;

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = ChatRole)]
pub enum Role {
    /// Instructions for the model.
    System,
    /// The person.
    User,
    /// The model.
    Assistant,
}

impl Role {
    /// As the providers write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One message of a chat.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[schema(as = ChatMessage)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: Role,
    /// The text: 1 to 100,000 characters.
    #[schema(min_length = 1, max_length = 100000)]
    pub content: String,
}

/// What is sent to a provider.
#[derive(Clone, Debug)]
pub struct Prompt {
    /// Every message, system messages included, in order.
    pub messages: Vec<Message>,
    /// Sampling temperature (0 to 2).
    pub temperature: Option<f64>,
    /// The most tokens to generate (never more than `AI_MAX_TOKENS`).
    pub max_tokens: u32,
}

impl Prompt {
    /// The system messages joined by a blank line, for providers that take the system prompt
    /// apart from the turns.
    pub fn system(&self) -> Option<String> {
        let parts: Vec<&str> =
            self.messages.iter().filter(|m| m.role == Role::System).map(|m| m.content.as_str()).collect();
        if parts.is_empty() { None } else { Some(parts.join("\n\n")) }
    }
}

/// Tokens a call used, as its provider counted them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct TokenUsage {
    /// Tokens read.
    pub prompt_tokens: u64,
    /// Tokens written.
    pub completion_tokens: u64,
    /// Their sum (as the provider reports it, when it does).
    pub total_tokens: u64,
}

impl TokenUsage {
    /// Usage from the provider's counts; `total` defaults to the sum.
    pub fn new(prompt: u64, completion: u64, total: Option<u64>) -> TokenUsage {
        TokenUsage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: total.unwrap_or(prompt.saturating_add(completion)),
        }
    }
}

/// A provider's whole answer.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The text.
    pub content: String,
    /// Tokens used.
    pub usage: TokenUsage,
    /// `stop`, `length`, `content_filter`, `tool_calls` or the provider's own word.
    pub finish_reason: Option<String>,
}

/// What one streamed event meant.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// More text.
    Text(String),
    /// Nothing to relay (usage, a ping, a block start).
    Nothing,
    /// The answer is complete.
    End,
}

/// A provider's own word, cut to a label's length and to `[a-z0-9_]`.
fn finish_reason(raw: &str) -> String {
    raw.chars().take(32).map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect()
}

/// A provider's message, cut for a log line.
fn clip(message: &str) -> String {
    message.chars().take(300).collect()
}

/// A completed, non-streamed chat.
#[derive(Clone, Debug)]
pub struct Completion {
    /// The text.
    pub content: String,
    /// The model that answered.
    pub model: String,
    /// Its provider.
    pub provider: &'static str,
    /// Tokens used.
    pub usage: TokenUsage,
    /// Why the answer ended.
    pub finish_reason: Option<String>,
    /// Time from the request to the answer, fallbacks included.
    pub latency_ms: u64,
}

/// A stream of `text/event-stream` frames.
pub type EventStream = Pin<Box<dyn Stream<Item = std::result::Result<Bytes, std::convert::Infallible>> + Send>>;

/// What a chat produced.
pub enum Answer {
    /// The whole answer.
    Complete(Completion),
    /// Server-sent events: `delta`s, then `done` or `error`.
    Stream(EventStream),
}

/// A chat request, as validated by [`chat`].
#[derive(Clone, Debug)]
pub struct ChatInput {
    /// The conversation.
    pub messages: Vec<Message>,
    /// `provider/model` from the allow-list; the default when absent.
    pub model: Option<String>,
    /// 0 to 2.
    pub temperature: Option<f64>,
    /// 1 to `AI_MAX_TOKENS`.
    pub max_tokens: Option<u32>,
    /// Answer as server-sent events.
    pub stream: bool,
}

/// A routed request: the model comes from `AI_ROUTES`.
#[derive(Clone, Debug)]
pub struct RoutedInput {
    /// The user's prompt.
    pub prompt: String,
    /// An optional system prompt.
    pub system: Option<String>,
    /// Picks the model.
    pub complexity: Complexity,
    /// 0 to 2.
    pub temperature: Option<f64>,
    /// 1 to `AI_MAX_TOKENS`.
    pub max_tokens: Option<u32>,
    /// Answer as server-sent events.
    pub stream: bool,
}

/// The gateway: settings, the outbound client and the breakers. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Gateway {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: AiSettings,
    http: reqwest::Client,
    breakers: [Breaker; 3],
    /// How long a chat may take to its answer (or its first token), fallbacks included: a
    /// little less than `REQUEST_TIMEOUT_SECONDS`, so the gateway answers before the 504.
    budget: Duration,
}

/// One provider in `/ai/status`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ProviderStatus {
    /// `openai`, `anthropic` or `gemini`.
    pub name: &'static str,
    /// Whether its key is set.
    pub configured: bool,
    /// `closed`, `open` or `half_open`.
    pub circuit: &'static str,
}

impl Gateway {
    /// A gateway for `settings` inside requests bounded by `request_timeout`. Its client has
    /// no overall timeout (streams last); each attempt is bounded by `AI_TIMEOUT_SECONDS` and
    /// by what is left of the request's time.
    pub fn new(settings: &AiSettings, request_timeout: Duration) -> reqwest::Result<Gateway> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("omnistack/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let breaker = || Breaker::new(settings.breaker_threshold, settings.breaker_cooldown);
        let budget = request_timeout.saturating_sub(Duration::from_millis(500)).max(Duration::from_secs(1));
        let inner = Inner { settings: settings.clone(), http, breakers: [breaker(), breaker(), breaker()], budget };
        Ok(Gateway { inner: Arc::new(inner) })
    }

    /// The settings.
    pub fn settings(&self) -> &AiSettings {
        &self.inner.settings
    }

    fn breaker(&self, provider: AiProvider) -> &Breaker {
        &self.inner.breakers[provider as usize]
    }

    /// Every provider, whether it is configured and its circuit.
    pub fn providers(&self) -> Vec<ProviderStatus> {
        let now = Instant::now();
        AiProvider::ALL
            .into_iter()
            .map(|provider| ProviderStatus {
                name: provider.as_str(),
                configured: self.settings().provider(provider).is_some(),
                circuit: self.breaker(provider).state(now).as_str(),
            })
            .collect()
    }

    /// The circuit of `provider` now.
    pub fn circuit(&self, provider: AiProvider) -> CircuitState {
        self.breaker(provider).state(Instant::now())
    }
}

/// Sets the AI series at zero for every configured model, so dashboards see them from the
/// start; the labels come from the configuration only.
pub fn register_series(settings: &AiSettings) {
    for model in &settings.allowed_models {
        let (provider, name) = (model.provider.as_str(), model.to_string());
        for outcome in ["ok", "failed", "refused", "skipped"] {
            metrics::counter!("omnistack_ai_calls_total", "provider" => provider, "model" => name.clone(), "outcome" => outcome)
                .absolute(0);
        }
        metrics::counter!("omnistack_ai_tokens_total", "provider" => provider, "model" => name).absolute(0);
    }
}

/// What it takes to serve a chat.
#[derive(Clone, Copy)]
pub struct Deps<'a> {
    /// The providers.
    pub gateway: &'a Gateway,
    /// Plan limits and metering.
    pub usage: &'a Usage,
    /// The `ai` rate class.
    pub limiter: &'a RateLimiter,
}

fn invalid(field: &str, message: impl Into<String>) -> Error {
    Error::Validation(vec![FieldError::new(field, message.into())])
}

fn not_configured() -> Error {
    Error::ServiceUnavailable(
        "the AI gateway is not configured (set OPENAI_API_KEY, ANTHROPIC_API_KEY or GEMINI_API_KEY)".into(),
    )
}

/// Checks temperature and max tokens; the number of tokens to ask for.
fn sampling(settings: &AiSettings, temperature: Option<f64>, max_tokens: Option<u32>) -> Result<u32> {
    if let Some(t) = temperature
        && !(t.is_finite() && (0.0..=2.0).contains(&t))
    {
        return Err(invalid("temperature", "must be from 0 to 2"));
    }
    match max_tokens {
        None => Ok(settings.max_tokens),
        Some(n) if (1..=settings.max_tokens).contains(&n) => Ok(n),
        Some(_) => Err(invalid("max_tokens", format!("must be from 1 to {}", settings.max_tokens))),
    }
}

/// Checks the messages: 1 to [`MAX_MESSAGES`], each 1 to [`MAX_MESSAGE_CHARS`] characters and
/// not blank, [`MAX_TOTAL_CHARS`] in all, and at least one from the user.
fn check_messages(messages: &[Message]) -> Result<()> {
    if messages.is_empty() || messages.len() > MAX_MESSAGES {
        return Err(invalid("messages", format!("must hold 1 to {MAX_MESSAGES} messages")));
    }
    let mut total = 0usize;
    let mut fields = Vec::new();
    for (index, message) in messages.iter().enumerate() {
        let chars = message.content.chars().count();
        total += chars;
        if message.content.trim().is_empty() || chars > MAX_MESSAGE_CHARS {
            fields.push(FieldError::new(
                format!("messages[{index}].content"),
                format!("must be 1 to {MAX_MESSAGE_CHARS} characters, not only spaces"),
            ));
        }
    }
    if !fields.is_empty() {
        return Err(Error::Validation(fields));
    }
    if total > MAX_TOTAL_CHARS {
        return Err(invalid("messages", format!("must hold at most {MAX_TOTAL_CHARS} characters in all")));
    }
    if !messages.iter().any(|m| m.role == Role::User) {
        return Err(invalid("messages", "must include a user message"));
    }
    Ok(())
}

/// The models to try: `first`, then the fallback list (without repeats).
fn candidates(settings: &AiSettings, first: &ModelRef) -> Vec<ModelRef> {
    let mut list = vec![first.clone()];
    list.extend(settings.fallback.iter().filter(|m| *m != first).cloned());
    list
}

/// `POST /ai/chat`.
pub async fn chat(deps: Deps<'_>, caller: &CurrentUser, input: ChatInput) -> Result<Answer> {
    let settings = deps.gateway.settings();
    if !settings.enabled() {
        return Err(not_configured());
    }
    caller.refuse_impersonation()?;
    check_messages(&input.messages)?;
    let max_tokens = sampling(settings, input.temperature, input.max_tokens)?;
    let model = match input.model.as_deref() {
        None => settings.default_model.clone().ok_or_else(not_configured)?,
        Some(name) => settings
            .allowed_models
            .iter()
            .find(|m| m.to_string() == name)
            .cloned()
            .ok_or_else(|| invalid("model", "is not one of the allowed models (see GET /ai/status)"))?,
    };
    let prompt = Prompt { messages: input.messages, temperature: input.temperature, max_tokens };
    run(deps, &caller.user, candidates(settings, &model), prompt, input.stream).await
}

/// `POST /ai/chat/routed`.
pub async fn routed(deps: Deps<'_>, caller: &CurrentUser, input: RoutedInput) -> Result<Answer> {
    let settings = deps.gateway.settings();
    if !settings.enabled() {
        return Err(not_configured());
    }
    caller.refuse_impersonation()?;
    let mut messages = Vec::with_capacity(2);
    if let Some(system) = input.system {
        if system.trim().is_empty() || system.chars().count() > MAX_MESSAGE_CHARS {
            return Err(invalid("system", format!("must be 1 to {MAX_MESSAGE_CHARS} characters, not only spaces")));
        }
        messages.push(Message { role: Role::System, content: system });
    }
    if input.prompt.trim().is_empty() || input.prompt.chars().count() > MAX_MESSAGE_CHARS {
        return Err(invalid("prompt", format!("must be 1 to {MAX_MESSAGE_CHARS} characters, not only spaces")));
    }
    messages.push(Message { role: Role::User, content: input.prompt });
    let max_tokens = sampling(settings, input.temperature, input.max_tokens)?;
    let model = settings.route(input.complexity).cloned().ok_or_else(not_configured)?;
    let prompt = Prompt { messages, temperature: input.temperature, max_tokens };
    run(deps, &caller.user, candidates(settings, &model), prompt, input.stream).await
}

/// The rate class, then the plan's limits, then the models in order.
async fn run(deps: Deps<'_>, user: &User, models: Vec<ModelRef>, prompt: Prompt, stream: bool) -> Result<Answer> {
    let decision = deps.limiter.check(LimitClass::Ai, &user.id.to_string()).await;
    if !decision.allowed {
        return Err(Error::RateLimited(decision));
    }
    deps.usage.ensure_within(user, metric::AI_REQUESTS, 1).await?;
    deps.usage.ensure_within(user, metric::AI_TOKENS, i64::from(prompt.max_tokens.max(1))).await?;
    let started = Instant::now();
    let gateway = deps.gateway;
    let deadline = started + gateway.inner.budget;
    for model in models {
        let left = deadline.saturating_duration_since(Instant::now());
        if left < Duration::from_millis(50) {
            break;
        }
        let timeout = gateway.settings().timeout.min(left);
        let provider = model.provider;
        if gateway.settings().provider(provider).is_none() {
            continue;
        }
        let label = model.to_string();
        if !gateway.breaker(provider).allow(Instant::now()) {
            count(&model, &label, "skipped");
            continue;
        }
        let meter = Meter::disarmed(deps.usage, user.id, &model);
        let attempt = if stream {
            open_stream(gateway, &model, &prompt, meter, started, timeout).await.map(Answer::Stream)
        } else {
            complete(gateway, &model, &prompt, meter, started, timeout).await.map(Answer::Complete)
        };
        match attempt {
            Ok(answer) => {
                gateway.breaker(provider).success();
                crate::telemetry::set_attribute("gen_ai.system", provider.as_str());
                crate::telemetry::set_attribute_with("gen_ai.request.model", || model.model.clone());
                return Ok(answer);
            }
            Err(Failure::Retry(why)) => {
                count(&model, &label, "failed");
                gateway.breaker(provider).failure(Instant::now());
                tracing::warn!(ai.provider = provider.as_str(), ai.model = %label, reason = %why, "an AI provider failed; trying the next");
            }
            Err(Failure::Refused(why)) => {
                count(&model, &label, "refused");
                gateway.breaker(provider).success();
                tracing::warn!(ai.provider = provider.as_str(), ai.model = %label, reason = %why, "an AI provider refused the request");
                return Err(Error::ExternalService(format!("the AI provider ({provider}) refused the request")));
            }
        }
    }
    Err(Error::ExternalService("no AI provider could answer in time; try again later".into()))
}

fn count(model: &ModelRef, label: &str, outcome: &'static str) {
    metrics::counter!("omnistack_ai_calls_total", "provider" => model.provider.as_str(), "model" => label.to_owned(), "outcome" => outcome)
        .increment(1);
}

/// Why an attempt failed.
enum Failure {
    /// Timeout, 429, 5xx, an unreadable answer: try the next model.
    Retry(String),
    /// Another 4xx: the request will not succeed as sent.
    Refused(String),
}

/// Records a call's usage once: when it ends, or (for a stream the client left) when dropped,
/// with the usage known by then. It starts disarmed: an attempt that fails records nothing.
struct Meter {
    usage: Usage,
    user_id: Uuid,
    model: ModelRef,
    recorded: bool,
    partial: TokenUsage,
}

impl Meter {
    fn disarmed(usage: &Usage, user_id: Uuid, model: &ModelRef) -> Meter {
        Meter { usage: usage.clone(), user_id, model: model.clone(), recorded: true, partial: TokenUsage::default() }
    }

    async fn record(&mut self, tokens: TokenUsage) {
        self.recorded = true;
        record(self.usage.clone(), self.user_id, self.model.clone(), tokens).await;
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        // Only a stream the client left before its end gets here unrecorded.
        if !self.recorded
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let (usage, user_id, model) = (self.usage.clone(), self.user_id, self.model.clone());
            runtime.spawn(record(usage, user_id, model, self.partial));
        }
    }
}

async fn record(usage: Usage, user_id: Uuid, model: ModelRef, tokens: TokenUsage) {
    let (provider, name) = (model.provider.as_str(), model.model.as_str());
    let dimensions = [("provider", provider), ("model", name)];
    let total = i64::try_from(tokens.total_tokens).unwrap_or(i64::MAX);
    metrics::counter!("omnistack_ai_tokens_total", "provider" => provider, "model" => model.to_string())
        .increment(tokens.total_tokens);
    let used = [(metric::AI_REQUESTS, 1), (metric::AI_TOKENS, total)];
    if let Err(err) = usage.record_all(user_id, &used, &dimensions).await {
        tracing::error!(error = %err, "AI usage could not be recorded");
    }
}

fn request(gateway: &Gateway, model: &ModelRef, prompt: &Prompt, stream: bool) -> Option<reqwest::RequestBuilder> {
    let settings = gateway.settings().provider(model.provider)?;
    let http = &gateway.inner.http;
    Some(match model.provider {
        AiProvider::OpenAi => openai::request(http, settings, &model.model, prompt, stream),
        AiProvider::Anthropic => anthropic::request(http, settings, &model.model, prompt, stream),
        AiProvider::Gemini => gemini::request(http, settings, &model.model, prompt, stream),
    })
}

/// Sends the request (in a client span) and sorts a failing status.
async fn send(request: reqwest::RequestBuilder) -> std::result::Result<reqwest::Response, Failure> {
    let response = outbound::send(request).await.map_err(|err| {
        Failure::Retry(if err.is_connect() { "could not connect".into() } else { "the request failed".into() })
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = read_limited(response, MAX_ERROR_BYTES).await.unwrap_or_default();
    let message = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(clip))
        .unwrap_or_default();
    let why = format!("HTTP {}: {message}", status.as_u16());
    if status.is_server_error() || matches!(status.as_u16(), 408 | 429) {
        Err(Failure::Retry(why))
    } else {
        Err(Failure::Refused(why))
    }
}

/// Longest error body read from a provider (for the log line).
const MAX_ERROR_BYTES: usize = 64 << 10;

/// The body, or `None` when it breaks off or passes `limit` bytes.
async fn read_limited(response: reqwest::Response, limit: usize) -> Option<Vec<u8>> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return None;
    }
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.ok()?;
        if body.len() + chunk.len() > limit {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    Some(body)
}

fn observe(model: &ModelRef, started: Instant) {
    metrics::histogram!("omnistack_ai_upstream_duration_seconds", "provider" => model.provider.as_str(), "model" => model.to_string())
        .record(started.elapsed().as_secs_f64());
}

/// One non-streaming attempt, within `AI_TIMEOUT_SECONDS`.
async fn complete(
    gateway: &Gateway,
    model: &ModelRef,
    prompt: &Prompt,
    mut meter: Meter,
    started: Instant,
    timeout: Duration,
) -> std::result::Result<Completion, Failure> {
    let call_started = Instant::now();
    let call = async {
        let request = request(gateway, model, prompt, false).ok_or_else(|| Failure::Retry("not configured".into()))?;
        let response = send(request).await?;
        let body = read_limited(response, MAX_RESPONSE_BYTES)
            .await
            .ok_or_else(|| Failure::Retry("an answer cut off or too large".into()))?;
        let json: Value =
            serde_json::from_slice(&body).map_err(|_| Failure::Retry("an answer that is not JSON".into()))?;
        let reply = match model.provider {
            AiProvider::OpenAi => openai::reply(&json),
            AiProvider::Anthropic => anthropic::reply(&json),
            AiProvider::Gemini => gemini::reply(&json),
        };
        reply.ok_or_else(|| Failure::Retry("an answer in an unknown shape".into()))
    };
    let reply = match tokio::time::timeout(timeout, call).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(failure)) => return Err(failure),
        Err(_) => return Err(Failure::Retry("timed out".into())),
    };
    observe(model, call_started);
    count(model, &model.to_string(), "ok");
    meter.record(reply.usage).await;
    Ok(Completion {
        content: reply.content,
        model: model.model.clone(),
        provider: model.provider.as_str(),
        usage: reply.usage,
        finish_reason: reply.finish_reason,
        latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

/// A provider's stream reader.
enum Decoder {
    OpenAi(openai::Decoder),
    Anthropic(anthropic::Decoder),
    Gemini(gemini::Decoder),
}

impl Decoder {
    fn for_provider(provider: AiProvider) -> Decoder {
        match provider {
            AiProvider::OpenAi => Decoder::OpenAi(openai::Decoder::default()),
            AiProvider::Anthropic => Decoder::Anthropic(anthropic::Decoder::default()),
            AiProvider::Gemini => Decoder::Gemini(gemini::Decoder::default()),
        }
    }

    fn event(&mut self, event: &stream::SseEvent) -> std::result::Result<Step, String> {
        match self {
            Decoder::OpenAi(d) => d.event(event),
            Decoder::Anthropic(d) => d.event(event),
            Decoder::Gemini(d) => d.event(event),
        }
    }

    fn at_eof(&self) -> std::result::Result<(), String> {
        match self {
            Decoder::OpenAi(d) => d.at_eof(),
            Decoder::Anthropic(d) => d.at_eof(),
            Decoder::Gemini(d) => d.at_eof(),
        }
    }

    fn usage(&self) -> TokenUsage {
        match self {
            Decoder::OpenAi(d) => d.usage(),
            Decoder::Anthropic(d) => d.usage(),
            Decoder::Gemini(d) => d.usage(),
        }
    }

    fn finish_reason(&self) -> Option<String> {
        match self {
            Decoder::OpenAi(d) => d.finish_reason(),
            Decoder::Anthropic(d) => d.finish_reason(),
            Decoder::Gemini(d) => d.finish_reason(),
        }
    }
}

type Upstream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// A relayed stream: the upstream body, its parser and decoder, and the frames ready to send.
struct Relay {
    gateway: Gateway,
    model: ModelRef,
    upstream: Upstream,
    parser: SseParser,
    decoder: Decoder,
    pending: VecDeque<Bytes>,
    deltas: usize,
    finished: bool,
    meter: Meter,
    started: Instant,
    call_started: Instant,
}

impl Relay {
    /// Reads the next upstream chunk into frames. `Err` is an upstream failure (nothing framed
    /// for it yet).
    async fn pump(&mut self) -> std::result::Result<(), String> {
        let timeout = self.gateway.settings().timeout;
        let chunk = match tokio::time::timeout(timeout, self.upstream.next()).await {
            Err(_) => return Err("timed out".into()),
            Ok(None) => {
                self.decoder.at_eof()?;
                self.done().await;
                return Ok(());
            }
            Ok(Some(Err(_))) => return Err("the stream broke".into()),
            Ok(Some(Ok(chunk))) => chunk,
        };
        let events = self.parser.push(&chunk).map_err(|_| "an event too large".to_owned())?;
        for event in events {
            match self.decoder.event(&event)? {
                Step::Text(text) => {
                    self.deltas += 1;
                    self.pending.push_back(frame(&json!({"type": "delta", "content": text})));
                }
                Step::Nothing => {}
                Step::End => {
                    self.done().await;
                    return Ok(());
                }
            }
        }
        self.meter.partial = self.decoder.usage();
        Ok(())
    }

    async fn done(&mut self) {
        let usage = self.decoder.usage();
        self.finished = true;
        observe(&self.model, self.call_started);
        count(&self.model, &self.model.to_string(), "ok");
        self.meter.record(usage).await;
        self.pending.push_back(frame(&json!({
            "type": "done",
            "usage": usage,
            "finish_reason": self.decoder.finish_reason(),
            "model": self.model.model,
            "provider": self.model.provider.as_str(),
            "latency_ms": u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })));
    }

    /// A failure after the first token: an `error` event ends the stream.
    async fn fail(&mut self, why: String) {
        self.finished = true;
        let provider = self.model.provider;
        count(&self.model, &self.model.to_string(), "failed");
        self.gateway.breaker(provider).failure(Instant::now());
        tracing::warn!(ai.provider = provider.as_str(), ai.model = %self.model, reason = %why, "an AI stream failed midway");
        self.meter.record(self.decoder.usage()).await;
        self.pending.push_back(frame(&json!({
            "type": "error",
            "error": {"code": "EXTERNAL_SERVICE_ERROR", "message": format!("the AI provider ({provider}) failed during the answer")},
        })));
    }
}

/// Opens a stream and reads it up to its first token (or its end) within
/// `AI_TIMEOUT_SECONDS`; only then is the answer committed to this model.
async fn open_stream(
    gateway: &Gateway,
    model: &ModelRef,
    prompt: &Prompt,
    meter: Meter,
    started: Instant,
    timeout: Duration,
) -> std::result::Result<EventStream, Failure> {
    let call_started = Instant::now();
    let Some(request) = request(gateway, model, prompt, true) else {
        return Err(Failure::Retry("not configured".into()));
    };
    let opened = async {
        let response = send(request).await?;
        let mut relay = Relay {
            gateway: gateway.clone(),
            model: model.clone(),
            upstream: Box::pin(response.bytes_stream()),
            parser: SseParser::new(),
            decoder: Decoder::for_provider(model.provider),
            pending: VecDeque::new(),
            deltas: 0,
            finished: false,
            meter,
            started,
            call_started,
        };
        while relay.deltas == 0 && !relay.finished {
            if let Err(why) = relay.pump().await {
                return Err(Failure::Retry(why));
            }
        }
        Ok(relay)
    };
    let outcome = tokio::time::timeout(timeout, opened).await;
    let mut relay = match outcome {
        Ok(Ok(relay)) => relay,
        Ok(Err(failure)) => return Err(failure),
        Err(_) => return Err(Failure::Retry("timed out before the first token".into())),
    };
    // From here the call counts, whatever happens to the client.
    relay.meter.recorded = relay.finished;
    let frames = futures::stream::unfold(relay, |mut relay| async move {
        loop {
            if let Some(frame) = relay.pending.pop_front() {
                return Some((Ok(frame), relay));
            }
            if relay.finished {
                return None;
            }
            if let Err(why) = relay.pump().await {
                relay.fail(why).await;
            }
        }
    });
    Ok(Box::pin(frames))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(data: &str) -> stream::SseEvent {
        stream::SseEvent { event: String::new(), data: data.into() }
    }

    #[test]
    fn openai_chunks_give_text_usage_and_the_end() {
        let mut decoder = openai::Decoder::default();
        let first = r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi\n"},"finish_reason":null}],"usage":null}"#;
        assert_eq!(decoder.event(&event(first)), Ok(Step::Text("Hi\n".into())));
        let last = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
        assert_eq!(decoder.event(&event(last)), Ok(Step::Nothing));
        let usage = r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#;
        assert_eq!(decoder.event(&event(usage)), Ok(Step::Nothing));
        assert_eq!(decoder.event(&event("[DONE]")), Ok(Step::End));
        assert_eq!(decoder.usage(), TokenUsage::new(5, 2, Some(7)));
        assert_eq!(decoder.finish_reason().as_deref(), Some("stop"));
        assert!(decoder.event(&event(r#"{"error":{"message":"overloaded"}}"#)).is_err());
    }

    #[test]
    fn anthropic_events_count_usage_cumulatively() {
        let mut decoder = anthropic::Decoder::default();
        let start = r#"{"type":"message_start","message":{"usage":{"input_tokens":10,"output_tokens":1}}}"#;
        assert_eq!(decoder.event(&event(start)), Ok(Step::Nothing));
        let delta = r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a\nb"}}"#;
        assert_eq!(decoder.event(&event(delta)), Ok(Step::Text("a\nb".into())));
        for output in [3, 6] {
            let stop = format!(
                r#"{{"type":"message_delta","delta":{{"stop_reason":"max_tokens"}},"usage":{{"output_tokens":{output}}}}}"#
            );
            decoder.event(&event(&stop)).unwrap();
        }
        assert_eq!(decoder.event(&event(r#"{"type":"message_stop"}"#)), Ok(Step::End));
        assert_eq!(decoder.usage(), TokenUsage::new(10, 6, None));
        assert_eq!(decoder.finish_reason().as_deref(), Some("length"));
        assert!(decoder.at_eof().is_err());
    }

    #[test]
    fn gemini_responses_join_parts_and_keep_the_last_usage() {
        let mut decoder = gemini::Decoder::default();
        let first = r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"x"},{"text":"y"}]}}],"usageMetadata":{"promptTokenCount":4}}"#;
        assert_eq!(decoder.event(&event(first)), Ok(Step::Text("xy".into())));
        assert!(decoder.at_eof().is_err(), "no finish reason yet");
        let last = r#"{"candidates":[{"content":{"parts":[{"text":""}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":2,"totalTokenCount":6}}"#;
        assert_eq!(decoder.event(&event(last)), Ok(Step::Nothing));
        assert!(decoder.at_eof().is_ok());
        assert_eq!(decoder.usage(), TokenUsage::new(4, 2, Some(6)));
    }

    #[test]
    fn finish_reasons_become_short_labels() {
        assert_eq!(finish_reason("Weird Reason! with a very long tail of words"), "weird_reason__with_a_very_long_t");
    }
}
