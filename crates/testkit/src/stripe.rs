//! Stripe stand-ins. [`LocalStripe`] runs `localstripe` (PyPI, a pinned version, installed
//! into `target/localstripe-venv` on first use) for customers, plans, subscriptions and
//! invoices. [`FakeStripe`] is the API base the server is pointed at: it answers what
//! localstripe lacks (Checkout Sessions, Billing Portal sessions, `Idempotency-Key` replay and
//! the 409 for a key in flight, `price` on subscription items) and forwards the rest, and it
//! can be made to fail. Nothing here reaches the internet once localstripe is installed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The localstripe release the tests run against.
pub const LOCALSTRIPE_VERSION: &str = "1.15.10";

/// The secret key tests configure (`STRIPE_SECRET_KEY`).
pub const TEST_SECRET_KEY: &str = "sk_test_omnistack_0123456789";

/// A running localstripe, killed on drop.
pub struct LocalStripe {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    child: Child,
}

/// The `localstripe` program, installed on first use.
fn localstripe_program() -> PathBuf {
    crate::pip::installed_program("localstripe-venv", &format!("localstripe=={LOCALSTRIPE_VERSION}"), "localstripe")
}

impl LocalStripe {
    /// Starts localstripe on a free port and waits until it answers.
    pub async fn start() -> LocalStripe {
        omnistack::install_crypto_provider();
        let program = tokio::task::spawn_blocking(localstripe_program).await.unwrap();
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let child = Command::new(program)
            .args(["--port", &port.to_string(), "--from-scratch"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("localstripe starts");
        let url = format!("http://127.0.0.1:{port}");
        let stripe = LocalStripe { url, child };
        let client = reqwest::Client::new();
        for _ in 0..300 {
            let ready = client.get(format!("{}/v1/customers", stripe.url)).basic_auth(TEST_SECRET_KEY, Some("")).send();
            if ready.await.is_ok_and(|r| r.status().is_success()) {
                return stripe;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("localstripe did not start on port {port}");
    }
}

impl Drop for LocalStripe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A request the fake received.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// `GET`, `POST`, …
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its form body, decoded.
    pub form: Vec<(String, String)>,
}

impl Recorded {
    /// The form field `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Shared {
    upstream: String,
    failing: AtomicBool,
    refusal: Mutex<Option<(u16, String)>>,
    idempotent: Mutex<HashMap<String, Option<(u16, Value)>>>,
    sessions: Mutex<Vec<Value>>,
    customer_creations: AtomicUsize,
    requests: Mutex<Vec<Recorded>>,
}

/// The Stripe API the server talks to (see the module documentation). Stops on drop.
pub struct FakeStripe {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The localstripe behind it.
    pub local: LocalStripe,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
    http: reqwest::Client,
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeStripe {
    /// Starts localstripe and the fake in front of it.
    pub async fn start() -> FakeStripe {
        let local = LocalStripe::start().await;
        let shared = Arc::new(Shared { upstream: local.url.clone(), ..Shared::default() });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeStripe { addr, local, shared, server, http: reqwest::Client::new() }
    }

    /// `STRIPE_API_BASE` for the server.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answer every API call with a 500 (`true`) or serve again (`false`).
    pub fn set_failing(&self, failing: bool) {
        self.shared.failing.store(failing, Ordering::SeqCst);
    }

    /// Refuse every API call with `status` and Stripe's error `kind` (`card_error`, …), or
    /// serve again (`None`).
    pub fn set_refusal(&self, refusal: Option<(u16, &str)>) {
        *self.shared.refusal.lock().unwrap() = refusal.map(|(status, kind)| (status, kind.to_owned()));
    }

    /// Customer creations that reached localstripe (replays of a key do not count).
    pub fn customer_creations(&self) -> usize {
        self.shared.customer_creations.load(Ordering::SeqCst)
    }

    /// Every Checkout Session created, as returned.
    pub fn checkout_sessions(&self) -> Vec<Value> {
        self.shared.sessions.lock().unwrap().clone()
    }

    /// Every request received.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Calls Stripe (through the fake) as the test: `GET` when `form` is `None`.
    pub async fn call(&self, method: Method, path: &str, form: &[(&str, &str)]) -> Value {
        let request = self.http.request(method, format!("{}{path}", self.base_url())).bearer_auth(TEST_SECRET_KEY);
        let request = if form.is_empty() { request } else { request.form(form) };
        let response = request.send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    /// A monthly plan (also usable as a price id) of `amount` cents.
    pub async fn create_price(&self, id: &str, amount: u32) {
        let product = format!("prod_{id}");
        let _ = self
            .http
            .post(format!("{}/v1/products", self.local.url))
            .basic_auth(TEST_SECRET_KEY, Some(""))
            .form(&[("id", product.as_str()), ("name", id)])
            .send()
            .await
            .unwrap();
        let amount = amount.to_string();
        self.call(
            Method::POST,
            "/v1/plans",
            &[("id", id), ("product", &product), ("currency", "eur"), ("amount", &amount), ("interval", "month")],
        )
        .await;
    }

    /// Gives `customer` a card that pays, so subscriptions start `active`.
    pub async fn add_card(&self, customer: &str) {
        let card = self
            .call(
                Method::POST,
                "/v1/payment_methods",
                &[
                    ("type", "card"),
                    ("card[number]", "4242424242424242"),
                    ("card[exp_month]", "12"),
                    ("card[exp_year]", "2040"),
                    ("card[cvc]", "123"),
                ],
            )
            .await;
        let card = card["id"].as_str().unwrap();
        self.call(Method::POST, &format!("/v1/payment_methods/{card}/attach"), &[("customer", customer)]).await;
        self.call(
            Method::POST,
            &format!("/v1/customers/{customer}"),
            &[("invoice_settings[default_payment_method]", card)],
        )
        .await;
    }

    /// What paying a Checkout Session does at Stripe: a card for its customer and a
    /// subscription to its price. The subscription object.
    pub async fn pay_checkout(&self, session: &Value) -> Value {
        let customer = session["customer"].as_str().unwrap();
        let price = session["line_items"]["data"][0]["price"]["id"].as_str().unwrap();
        self.add_card(customer).await;
        self.call(Method::POST, "/v1/subscriptions", &[("customer", customer), ("items[0][price]", price)]).await
    }

    /// A Stripe event of `kind` about `object`.
    pub fn event(kind: &str, object: &Value) -> Value {
        json!({
            "id": format!("evt_{}", uuid::Uuid::new_v4().simple()),
            "object": "event",
            "api_version": "2024-06-20",
            "created": crate::idp::now(),
            "livemode": false,
            "pending_webhooks": 1,
            "type": kind,
            "data": {"object": object},
        })
    }
}

fn stripe_error(status: StatusCode, kind: &str, message: &str) -> Response {
    (status, axum::Json(json!({"error": {"type": kind, "message": message}}))).into_response()
}

fn random_id(prefix: &str) -> String {
    format!("{prefix}_test_{}", uuid::Uuid::new_v4().simple())
}

fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    reqwest::Url::parse(&format!("http://form/?{text}"))
        .map(|url| url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
        .unwrap_or_default()
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path_and_query = uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let recorded = Recorded {
        method: method.to_string(),
        path: path_and_query.clone(),
        headers: headers.clone(),
        form: form_pairs(&body),
    };
    shared.requests.lock().unwrap().push(recorded);
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {TEST_SECRET_KEY}"));
    if !authorized {
        return stripe_error(StatusCode::UNAUTHORIZED, "invalid_request_error", "Invalid API Key provided");
    }
    let refusal = shared.refusal.lock().unwrap().clone();
    if let Some((status, kind)) = refusal {
        return stripe_error(StatusCode::from_u16(status).unwrap(), &kind, "Refused by the test");
    }
    if shared.failing.load(Ordering::SeqCst) {
        return stripe_error(StatusCode::INTERNAL_SERVER_ERROR, "api_error", "Something went wrong on Stripe's end");
    }
    let key = (method == Method::POST)
        .then(|| headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned))
        .flatten();
    if let Some(key) = &key {
        let mut keys = shared.idempotent.lock().unwrap();
        match keys.get(key) {
            Some(Some((status, body))) => {
                let status = StatusCode::from_u16(*status).unwrap();
                return (status, [("idempotent-replayed", "true")], axum::Json(body.clone())).into_response();
            }
            Some(None) => {
                return stripe_error(
                    StatusCode::CONFLICT,
                    "idempotency_error",
                    "There is currently another in-progress request using this Stripe API key and idempotency key",
                );
            }
            None => {
                keys.insert(key.clone(), None);
            }
        }
    }
    let (status, body) = answer(&shared, &method, uri.path(), &path_and_query, &body).await;
    if let Some(key) = key {
        let mut keys = shared.idempotent.lock().unwrap();
        if status.is_server_error() {
            keys.remove(&key);
        } else {
            keys.insert(key, Some((status.as_u16(), body.clone())));
        }
    }
    (status, axum::Json(body)).into_response()
}

async fn answer(
    shared: &Shared,
    method: &Method,
    path: &str,
    path_and_query: &str,
    body: &[u8],
) -> (StatusCode, Value) {
    let form = form_pairs(body);
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    match (method.clone(), path) {
        (Method::POST, "/v1/checkout/sessions") => {
            let missing = ["mode", "customer", "success_url", "cancel_url", "line_items[0][price]"]
                .into_iter()
                .find(|name| field(name).is_none());
            if let Some(name) = missing {
                return (
                    StatusCode::BAD_REQUEST,
                    json!({"error": {"type": "invalid_request_error", "message": format!("Missing required param: {name}.")}}),
                );
            }
            let (customer, price) = (field("customer").unwrap(), field("line_items[0][price]").unwrap());
            for (kind, id) in [("customers", &customer), ("plans", &price)] {
                let (status, _) = forward(shared, &Method::GET, &format!("/v1/{kind}/{id}"), &[]).await;
                if status != StatusCode::OK {
                    return (
                        StatusCode::BAD_REQUEST,
                        json!({"error": {"type": "invalid_request_error", "code": "resource_missing", "message": format!("No such {kind}: '{id}'")}}),
                    );
                }
            }
            let id = random_id("cs");
            let session = json!({
                "id": id, "object": "checkout.session", "mode": field("mode"), "status": "open",
                "customer": customer, "client_reference_id": field("client_reference_id"),
                "success_url": field("success_url"), "cancel_url": field("cancel_url"),
                "metadata": {"user_id": field("metadata[user_id]")},
                "line_items": {"object": "list", "data": [{"price": {"id": price, "object": "price"}, "quantity": 1}]},
                "subscription": null,
                "url": format!("https://checkout.stripe.com/c/pay/{id}"),
            });
            shared.sessions.lock().unwrap().push(session.clone());
            (StatusCode::OK, session)
        }
        (Method::POST, "/v1/billing_portal/sessions") => {
            let Some(customer) = field("customer") else {
                return (
                    StatusCode::BAD_REQUEST,
                    json!({"error": {"type": "invalid_request_error", "message": "Missing required param: customer."}}),
                );
            };
            let (status, _) = forward(shared, &Method::GET, &format!("/v1/customers/{customer}"), &[]).await;
            if status != StatusCode::OK {
                return (
                    StatusCode::BAD_REQUEST,
                    json!({"error": {"type": "invalid_request_error", "code": "resource_missing", "message": "No such customer"}}),
                );
            }
            let id = random_id("bps");
            (
                StatusCode::OK,
                json!({"id": id, "object": "billing_portal.session", "customer": customer,
                "return_url": field("return_url"), "url": format!("https://billing.stripe.com/p/session/{id}")}),
            )
        }
        _ => {
            // localstripe knows plans, not prices: a price id is a plan id there.
            let form: Vec<(String, String)> = form
                .into_iter()
                .map(|(k, v)| match k.strip_suffix("[price]") {
                    Some(item) if item.starts_with("items[") => (format!("{item}[plan]"), v),
                    _ => (k, v),
                })
                .filter(|(k, _)| k != "proration_behavior" || method == Method::POST && path == "/v1/subscriptions")
                .collect();
            let (status, mut body) = forward(shared, method, path_and_query, &form).await;
            if status.is_success() && method == Method::POST && path == "/v1/customers" {
                shared.customer_creations.fetch_add(1, Ordering::SeqCst);
            }
            add_prices(&mut body);
            (status, body)
        }
    }
}

async fn forward(
    shared: &Shared,
    method: &Method,
    path_and_query: &str,
    form: &[(String, String)],
) -> (StatusCode, Value) {
    let client = reqwest::Client::new();
    let request = client
        .request(method.clone(), format!("{}{path_and_query}", shared.upstream))
        .basic_auth(TEST_SECRET_KEY, Some(""));
    let request = if *method == Method::GET || *method == Method::DELETE { request } else { request.form(form) };
    match request.send().await {
        Ok(response) => {
            let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
            let body = response
                .json()
                .await
                .unwrap_or_else(|_| json!({"error": {"type": "api_error", "message": "not JSON"}}));
            (status, body)
        }
        Err(err) => (StatusCode::BAD_GATEWAY, json!({"error": {"type": "api_error", "message": err.to_string()}})),
    }
}

/// Gives every subscription item the `price` Stripe puts beside the legacy `plan`.
fn add_prices(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.get("object").and_then(Value::as_str) == Some("subscription_item")
                && let Some(plan) = map.get("plan").cloned()
            {
                map.insert("price".into(), json!({"id": plan["id"], "object": "price", "product": plan["product"],
                    "unit_amount": plan["amount"], "currency": plan["currency"], "recurring": {"interval": plan["interval"]}}));
            }
            for child in map.values_mut() {
                add_prices(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(add_prices),
        _ => {}
    }
}
