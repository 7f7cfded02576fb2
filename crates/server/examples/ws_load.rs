//! WebSocket load: opens N authenticated sockets on one or more instances, subscribes them all
//! to one room, publishes into it at a fixed rate from a few extra sockets and reports delivered
//! messages per second, publish-to-receive latency (p50/p99) and, given the server's pid, its
//! resident memory per idle socket. Run it through `bench/ws.sh`, which starts the server.
//!
//!   cargo run --release --example ws_load -- --url http://127.0.0.1:18090 --connections 1000
//!
//! Traffic goes only to the given URLs (use 127.0.0.1).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Parser;
use futures::{SinkExt, StreamExt, stream};
use serde_json::json;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

/// Options.
#[derive(Debug, Parser)]
struct Options {
    /// Base URL of an instance; repeat to spread sockets over several (through Redis).
    #[arg(long = "url", default_value = "http://127.0.0.1:18090")]
    urls: Vec<String>,
    /// Receiving sockets.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Sockets per account (the server's WS_MAX_CONNECTIONS_PER_USER must allow it).
    #[arg(long, default_value_t = 10)]
    per_account: usize,
    /// Messages published per second, in total.
    #[arg(long, default_value_t = 50)]
    rate: u64,
    /// Publishing sockets (each stays under the server's WS_MESSAGES_PER_SECOND).
    #[arg(long, default_value_t = 4)]
    publishers: usize,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Server process whose VmRSS is read before and after the sockets open.
    #[arg(long)]
    pid: Option<u32>,
    /// The room.
    #[arg(long, default_value = "room:load")]
    channel: String,
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    omnistack::install_crypto_provider();
    let options = Options::parse();
    let http = reqwest::Client::new();
    let accounts = options.connections.div_ceil(options.per_account) + options.publishers;
    let started = Instant::now();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let tokens: Vec<String> = stream::iter(0..accounts)
        .map(|i| register(&http, &options.urls[0], format!("load-{run}-{i}@example.com")))
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    println!("registered {accounts} accounts in {:.1} s", started.elapsed().as_secs_f64());

    let before = rss_kib(options.pid);
    let started = Instant::now();
    // Sockets open in steps (1,000, 5,000, 10,000, then every 10,000): the server's RSS is read
    // at each, so the cost of the later sockets shows apart from what the first ones set up.
    let mut steps: Vec<usize> = [1_000, 5_000].into_iter().filter(|&n| n < options.connections).collect();
    steps.extend((1..).map(|n| n * 10_000).take_while(|&n| n < options.connections));
    steps.push(options.connections);
    let mut receivers: Vec<Socket> = Vec::with_capacity(options.connections);
    let mut readings: Vec<(usize, u64)> = Vec::new();
    for step in steps {
        let opened: Vec<Socket> = stream::iter(receivers.len()..step)
            .map(|i| {
                let url = &options.urls[i % options.urls.len()];
                open(url, &tokens[i / options.per_account], &options.channel)
            })
            .buffer_unordered(64)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<anyhow::Result<_>>()?;
        receivers.extend(opened);
        if options.pid.is_some() {
            tokio::time::sleep(Duration::from_secs(2)).await;
            if let Some(rss) = rss_kib(options.pid) {
                readings.push((step, rss));
            }
        }
    }
    println!("opened and subscribed {} sockets in {:.1} s", receivers.len(), started.elapsed().as_secs_f64());
    if let Some(before) = before {
        // The measured server is the first URL's, which holds every n-th socket.
        let held = |sockets: usize| sockets.div_ceil(options.urls.len());
        let mut previous = (0, before);
        for &(sockets, rss) in &readings {
            let per = rss.saturating_sub(before) as f64 * 1024.0 / held(sockets) as f64;
            let added = (held(sockets) - held(previous.0)).max(1);
            let marginal = rss.saturating_sub(previous.1) as f64 * 1024.0 / added as f64;
            println!(
                "server RSS with {sockets} sockets idle: {rss} KiB ({per:.0} bytes per socket; \
                 {marginal:.0} per socket since {} sockets)",
                previous.0
            );
            previous = (sockets, rss);
        }
        if let Some(&(_, after)) = readings.last() {
            let held = held(options.connections);
            let per = (after.saturating_sub(before)) as f64 * 1024.0 / held as f64;
            println!(
                "server RSS: {before} KiB before, {after} KiB with its {held} sockets idle: {per:.0} bytes per socket"
            );
        }
    }

    let (stop, stopped) = watch::channel(false);
    let received = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> =
        receivers.into_iter().map(|socket| tokio::spawn(receive(socket, stopped.clone(), received.clone()))).collect();
    let mut publishers = Vec::new();
    for p in 0..options.publishers {
        let token = &tokens[accounts - 1 - p];
        let socket = open(&options.urls[0], token, &options.channel).await?;
        let per_second = (options.rate / options.publishers as u64).max(1);
        publishers.push(tokio::spawn(publish(socket, options.channel.clone(), per_second, options.seconds)));
    }
    let started = Instant::now();
    let mut published = 0;
    for publisher in publishers {
        published += publisher.await??;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = stop.send(true);
    let elapsed = started.elapsed().as_secs_f64() - 2.0;
    let mut latencies = Vec::new();
    for reader in readers {
        latencies.extend(reader.await?);
    }
    report(published, options.connections, received.load(Ordering::Relaxed), elapsed, &mut latencies);
    Ok(())
}

async fn register(http: &reqwest::Client, base: &str, email: String) -> anyhow::Result<String> {
    let body = json!({"email": email, "password": "load-test-password"});
    let res = http.post(format!("{base}/api/v1/public/auth/register")).json(&body).send().await?;
    if !res.status().is_success() {
        bail!("registration failed: {} {}", res.status(), res.text().await.unwrap_or_default());
    }
    let session: serde_json::Value = res.json().await?;
    session["access_token"].as_str().map(str::to_owned).context("no access token")
}

/// A socket, authenticated and subscribed (waits for `subscribed`).
async fn open(base: &str, token: &str, channel: &str) -> anyhow::Result<Socket> {
    let url = format!("{}/api/v1/app/ws?token={token}", base.replacen("http", "ws", 1));
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.context("connecting")?;
    socket.send(Message::text(json!({"type": "subscribe", "channel": channel}).to_string())).await?;
    while let Some(frame) = socket.next().await {
        if let Message::Text(text) = frame? {
            if text.contains("\"type\":\"subscribed\"") {
                return Ok(socket);
            }
            if text.contains("\"type\":\"error\"") {
                bail!("subscribe refused: {text}");
            }
        }
    }
    bail!("closed before subscribing")
}

/// Counts published messages and records their latency (µs) until stopped.
async fn receive(mut socket: Socket, mut stop: watch::Receiver<bool>, received: Arc<AtomicU64>) -> Vec<u32> {
    let mut latencies = Vec::new();
    loop {
        tokio::select! {
            _ = stop.changed() => return latencies,
            frame = socket.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    if let Some(sent) = field(&text, "\"sent_us\":") {
                        received.fetch_add(1, Ordering::Relaxed);
                        latencies.push(now_us().saturating_sub(sent).min(u64::from(u32::MAX)) as u32);
                    }
                }
                Some(Ok(_)) => {}
                _ => return latencies,
            },
        }
    }
}

/// Posts `per_second` messages a second for `seconds`; returns how many.
async fn publish(socket: Socket, channel: String, per_second: u64, seconds: u64) -> anyhow::Result<u64> {
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / per_second));
    let mut sent = 0;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let (mut sink, mut incoming) = socket.split();
    // The publisher is subscribed too: read (and ignore) its copies so its queue never fills.
    let drain = tokio::spawn(async move { while let Some(Ok(_)) = incoming.next().await {} });
    while Instant::now() < deadline {
        tick.tick().await;
        let message = json!({"type": "message", "channel": channel, "data": {"sent_us": now_us(), "n": sent}});
        sink.send(Message::text(message.to_string())).await?;
        sent += 1;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = sink.close().await;
    drain.abort();
    Ok(sent)
}

fn field(text: &str, key: &str) -> Option<u64> {
    let start = text.find(key)? + key.len();
    let digits: String = text[start..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or_default()
}

fn rss_kib(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn report(published: u64, sockets: usize, received: u64, seconds: f64, latencies: &mut [u32]) {
    latencies.sort_unstable();
    let percentile = |p: f64| {
        let index = ((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(index).map_or(0.0, |us| f64::from(*us) / 1000.0)
    };
    let expected = published * sockets as u64;
    println!("published {published} messages to {sockets} sockets in {seconds:.1} s");
    println!(
        "delivered {received} of {expected} ({:.2}%): {:.0} messages/s",
        received as f64 * 100.0 / expected.max(1) as f64,
        received as f64 / seconds
    );
    println!("publish-to-receive latency: p50 {:.2} ms, p99 {:.2} ms", percentile(0.50), percentile(0.99));
}
