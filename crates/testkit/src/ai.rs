//! [`FakeAi`]: one local server speaking OpenAI's chat completions, Anthropic's messages and
//! Gemini's `generateContent` / `streamGenerateContent?alt=sse`, JSON and streamed, each with
//! its own auth header, usage fields and error bodies. Each provider follows a script of
//! [`Behaviour`]s (then answers), and the fake keeps every request it received and counts the
//! streams whose client went away before the end.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// `OPENAI_API_KEY` the fake accepts.
pub const OPENAI_KEY: &str = "sk-test-openai-0123456789";
/// `ANTHROPIC_API_KEY` the fake accepts.
pub const ANTHROPIC_KEY: &str = "sk-ant-test-0123456789";
/// `GEMINI_API_KEY` the fake accepts.
pub const GEMINI_KEY: &str = "gemini-test-key-0123456789";
/// The prompt tokens every answer reports.
pub const PROMPT_TOKENS: u64 = 12;

/// What a provider does with its next request.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// Answers (JSON or streamed, as asked).
    Answer,
    /// Fails with this status and the provider's error body.
    Status(u16),
    /// Never answers.
    Hang,
    /// Streams this many text deltas, then fails: OpenAI ends the stream without a finish,
    /// Anthropic sends an `error` event, Gemini breaks the connection. JSON requests get a 500.
    BreakAfter(usize),
    /// Streams with this pause between events (a slow answer a client may leave).
    Slow(Duration),
}

/// A request the fake received.
#[derive(Clone, Debug)]
pub struct Received {
    /// `openai`, `anthropic` or `gemini`.
    pub provider: &'static str,
    /// Path and query.
    pub path: String,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its JSON body.
    pub body: Value,
}

impl Received {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Default)]
struct Shared {
    scripts: Mutex<HashMap<&'static str, VecDeque<Behaviour>>>,
    reply: Mutex<Option<String>>,
    received: Mutex<Vec<Received>>,
    keep_requests: bool,
    cancelled: AtomicUsize,
}

/// The fake providers, stopped on drop.
pub struct FakeAi {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

/// The answer unless [`FakeAi::reply`] or [`FakeAi::echo`] says otherwise.
pub const DEFAULT_REPLY: &str = "Hello from the fake provider.";

impl FakeAi {
    /// Starts on a free port, keeping every request.
    pub async fn start() -> FakeAi {
        FakeAi::start_on("127.0.0.1:0".parse().expect("an address"), true).await
    }

    /// Starts on `addr`; `keep_requests: false` keeps nothing (for benchmarks).
    pub async fn start_on(addr: SocketAddr, keep_requests: bool) -> FakeAi {
        let shared = Arc::new(Shared { keep_requests, ..Shared::default() });
        *shared.reply.lock().unwrap() = Some(DEFAULT_REPLY.to_owned());
        let router = Router::new()
            .route("/v1/chat/completions", post(openai))
            .route("/v1/messages", post(anthropic))
            .route("/v1beta/models/{action}", post(gemini))
            .with_state(shared.clone());
        let listener = TcpListener::bind(addr).await.expect("bind the fake AI provider");
        let addr = listener.local_addr().expect("local address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        FakeAi { addr, shared, task }
    }

    /// The variables pointing the server at this fake for all three providers.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("OPENAI_API_KEY", OPENAI_KEY.to_owned()),
            ("OPENAI_BASE_URL", format!("http://{}/v1", self.addr)),
            ("ANTHROPIC_API_KEY", ANTHROPIC_KEY.to_owned()),
            ("ANTHROPIC_BASE_URL", format!("http://{}", self.addr)),
            ("GEMINI_API_KEY", GEMINI_KEY.to_owned()),
            ("GEMINI_BASE_URL", format!("http://{}", self.addr)),
        ]
    }

    /// Queues behaviours for `provider`'s next requests (then it answers again).
    pub fn script(&self, provider: &'static str, behaviours: impl IntoIterator<Item = Behaviour>) {
        self.shared.scripts.lock().unwrap().entry(provider).or_default().extend(behaviours);
    }

    /// Answers with `text` from now on.
    pub fn reply(&self, text: &str) {
        *self.shared.reply.lock().unwrap() = Some(text.to_owned());
    }

    /// Answers with the last user message from now on.
    pub fn echo(&self) {
        *self.shared.reply.lock().unwrap() = None;
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// The requests `provider` received.
    pub fn requests_to(&self, provider: &str) -> Vec<Received> {
        self.requests().into_iter().filter(|r| r.provider == provider).collect()
    }

    /// Streams whose client left before the end.
    pub fn cancelled_streams(&self) -> usize {
        self.shared.cancelled.load(Ordering::SeqCst)
    }
}

impl Drop for FakeAi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One request, as the handlers see it.
struct Call {
    provider: &'static str,
    model: String,
    stream: bool,
    reply: String,
    behaviour: Behaviour,
}

fn admit(
    shared: &Shared,
    provider: &'static str,
    path: String,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Value, Behaviour, String), Box<Response>> {
    let json: Value =
        serde_json::from_slice(body).map_err(|_| Box::new(error(provider, 400, "the body is not JSON")))?;
    if shared.keep_requests {
        shared.received.lock().unwrap().push(Received { provider, path, headers: headers.clone(), body: json.clone() });
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let authorised = match provider {
        "openai" => header("authorization") == format!("Bearer {OPENAI_KEY}"),
        "anthropic" => header("x-api-key") == ANTHROPIC_KEY && header("anthropic-version") == "2023-06-01",
        _ => header("x-goog-api-key") == GEMINI_KEY,
    };
    if !authorised {
        return Err(Box::new(error(provider, 401, "invalid credentials")));
    }
    let behaviour =
        shared.scripts.lock().unwrap().get_mut(provider).and_then(VecDeque::pop_front).unwrap_or(Behaviour::Answer);
    let reply = shared.reply.lock().unwrap().clone().unwrap_or_else(|| last_user_text(provider, &json));
    Ok((json, behaviour, reply))
}

fn last_user_text(provider: &str, body: &Value) -> String {
    let (list, role) = if provider == "gemini" { ("contents", "user") } else { ("messages", "user") };
    body[list]
        .as_array()
        .and_then(|items| items.iter().rev().find(|m| m["role"] == role))
        .map(|m| {
            if provider == "gemini" {
                m["parts"][0]["text"].as_str().unwrap_or_default().to_owned()
            } else {
                m["content"].as_str().unwrap_or_default().to_owned()
            }
        })
        .unwrap_or_default()
}

fn error(provider: &str, status: u16, message: &str) -> Response {
    let body = match provider {
        "openai" => json!({"error": {"message": message, "type": "server_error", "code": null}}),
        "anthropic" => json!({"type": "error", "error": {"type": "api_error", "message": message}}),
        _ => json!({"error": {"code": status, "message": message, "status": "INTERNAL"}}),
    };
    (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), axum::Json(body)).into_response()
}

async fn openai(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let (json, behaviour, reply) = match admit(&shared, "openai", "/v1/chat/completions".into(), &headers, &body) {
        Ok(admitted) => admitted,
        Err(response) => return *response,
    };
    let model = json["model"].as_str().unwrap_or_default().to_owned();
    let stream = json["stream"] == true;
    respond(shared, Call { provider: "openai", model, stream, reply, behaviour }).await
}

async fn anthropic(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let (json, behaviour, reply) = match admit(&shared, "anthropic", "/v1/messages".into(), &headers, &body) {
        Ok(admitted) => admitted,
        Err(response) => return *response,
    };
    if json["max_tokens"].as_u64().is_none() {
        return error("anthropic", 400, "max_tokens: Field required");
    }
    let model = json["model"].as_str().unwrap_or_default().to_owned();
    let stream = json["stream"] == true;
    respond(shared, Call { provider: "anthropic", model, stream, reply, behaviour }).await
}

async fn gemini(
    State(shared): State<Arc<Shared>>,
    Path(action): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = match &query {
        Some(query) => format!("/v1beta/models/{action}?{query}"),
        None => format!("/v1beta/models/{action}"),
    };
    let (_, behaviour, reply) = match admit(&shared, "gemini", path, &headers, &body) {
        Ok(admitted) => admitted,
        Err(response) => return *response,
    };
    let (model, stream) = match action.split_once(':') {
        Some((model, "generateContent")) => (model.to_owned(), false),
        Some((model, "streamGenerateContent")) if query.as_deref() == Some("alt=sse") => (model.to_owned(), true),
        _ => return error("gemini", 404, "unknown method"),
    };
    respond(shared, Call { provider: "gemini", model, stream, reply, behaviour }).await
}

async fn respond(shared: Arc<Shared>, call: Call) -> Response {
    match call.behaviour {
        Behaviour::Status(status) => return error(call.provider, status, "the fake provider fails"),
        Behaviour::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Behaviour::BreakAfter(_) if !call.stream => return error(call.provider, 500, "the fake provider fails"),
        _ => {}
    }
    if call.stream { stream(shared, call) } else { axum::Json(whole(&call)).into_response() }
}

fn completion_tokens(text: &str) -> u64 {
    text.chars().count() as u64
}

fn whole(call: &Call) -> Value {
    let (text, model) = (&call.reply, &call.model);
    let completion = completion_tokens(text);
    match call.provider {
        "openai" => json!({
            "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": completion, "total_tokens": PROMPT_TOKENS + completion},
        }),
        "anthropic" => json!({
            "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": PROMPT_TOKENS, "output_tokens": completion},
        }),
        _ => json!({
            "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": PROMPT_TOKENS, "candidatesTokenCount": completion, "totalTokenCount": PROMPT_TOKENS + completion},
            "modelVersion": model,
        }),
    }
}

/// The reply in pieces of at most 4 characters.
fn pieces(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(4).map(|c| c.iter().collect()).collect()
}

fn sse(event: Option<&str>, data: &Value) -> Bytes {
    let mut out = String::new();
    if let Some(name) = event {
        out.push_str(&format!("event: {name}\n"));
    }
    out.push_str(&format!("data: {data}\n\n"));
    Bytes::from(out)
}

/// The stream's events; `None` marks where a [`Behaviour::BreakAfter`] cuts the connection.
fn events(call: &Call) -> Vec<Option<Bytes>> {
    let parts = pieces(&call.reply);
    let completion = completion_tokens(&call.reply);
    let break_after = match call.behaviour {
        Behaviour::BreakAfter(n) => Some(n),
        _ => None,
    };
    let mut out = Vec::new();
    match call.provider {
        "openai" => {
            let chunk = |delta: Value, finish: Value| {
                json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": call.model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], "usage": null})
            };
            out.push(Some(sse(None, &chunk(json!({"role": "assistant", "content": ""}), Value::Null))));
            for (i, part) in parts.iter().enumerate() {
                if break_after == Some(i) {
                    return out;
                }
                out.push(Some(sse(None, &chunk(json!({"content": part}), Value::Null))));
            }
            out.push(Some(sse(None, &chunk(json!({}), json!("stop")))));
            let usage = json!({"prompt_tokens": PROMPT_TOKENS, "completion_tokens": completion, "total_tokens": PROMPT_TOKENS + completion});
            out.push(Some(sse(
                None,
                &json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "choices": [], "usage": usage}),
            )));
            out.push(Some(Bytes::from_static(b"data: [DONE]\n\n")));
        }
        "anthropic" => {
            let start = json!({"type": "message_start", "message": {"id": "msg_fake", "type": "message", "role": "assistant",
                "model": call.model, "content": [], "stop_reason": null, "usage": {"input_tokens": PROMPT_TOKENS, "output_tokens": 1}}});
            out.push(Some(sse(Some("message_start"), &start)));
            out.push(Some(sse(
                Some("content_block_start"),
                &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            )));
            out.push(Some(sse(Some("ping"), &json!({"type": "ping"}))));
            for (i, part) in parts.iter().enumerate() {
                if break_after == Some(i) {
                    let failure =
                        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
                    out.push(Some(sse(Some("error"), &failure)));
                    return out;
                }
                let delta =
                    json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": part}});
                out.push(Some(sse(Some("content_block_delta"), &delta)));
            }
            out.push(Some(sse(Some("content_block_stop"), &json!({"type": "content_block_stop", "index": 0}))));
            let delta = json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                "usage": {"output_tokens": completion}});
            out.push(Some(sse(Some("message_delta"), &delta)));
            out.push(Some(sse(Some("message_stop"), &json!({"type": "message_stop"}))));
        }
        _ => {
            let last = parts.len().saturating_sub(1);
            for (i, part) in parts.iter().enumerate() {
                if break_after == Some(i) {
                    out.push(None);
                    return out;
                }
                let mut candidate = json!({"content": {"parts": [{"text": part}], "role": "model"}, "index": 0});
                let mut usage = json!({"promptTokenCount": PROMPT_TOKENS});
                if i == last {
                    candidate["finishReason"] = json!("STOP");
                    usage = json!({"promptTokenCount": PROMPT_TOKENS, "candidatesTokenCount": completion,
                        "totalTokenCount": PROMPT_TOKENS + completion});
                }
                out.push(Some(sse(
                    None,
                    &json!({"candidates": [candidate], "usageMetadata": usage, "modelVersion": call.model}),
                )));
            }
        }
    }
    out
}

/// Counts a stream as cancelled unless it reached its end.
struct Watch {
    shared: Arc<Shared>,
    ended: bool,
}

impl Watch {
    fn end(&mut self) {
        self.ended = true;
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if !self.ended {
            self.shared.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn stream(shared: Arc<Shared>, call: Call) -> Response {
    let pause = match call.behaviour {
        Behaviour::Slow(pause) => Some(pause),
        _ => None,
    };
    // Each event goes out in two writes, so events straddle chunk boundaries.
    let mut writes: VecDeque<Option<Bytes>> = VecDeque::new();
    for event in events(&call) {
        match event {
            Some(bytes) => {
                let middle = bytes.len() / 2;
                writes.push_back(Some(bytes.slice(..middle)));
                writes.push_back(Some(bytes.slice(middle..)));
            }
            None => writes.push_back(None),
        }
    }
    let watch = Watch { shared, ended: false };
    let body = futures::stream::unfold((writes, watch, 0usize), move |(mut writes, mut watch, n)| async move {
        let next = writes.pop_front();
        match next {
            None => {
                watch.end();
                None
            }
            Some(None) => {
                // Let what was written go out before the connection breaks.
                tokio::time::sleep(Duration::from_millis(50)).await;
                watch.end();
                Some((Err(std::io::Error::other("the fake provider breaks the connection")), (writes, watch, n + 1)))
            }
            Some(Some(bytes)) => {
                if let Some(pause) = pause
                    && n % 2 == 0
                {
                    tokio::time::sleep(pause).await;
                }
                Some((Ok(bytes), (writes, watch, n + 1)))
            }
        }
    });
    ([(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], Body::from_stream(body))
        .into_response()
}
