//! The fake AI providers as a process, for `bench/ai.sh`: `fake_ai [addr]` (default
//! `127.0.0.1:18090`), keeping no requests, until killed.

#[tokio::main]
async fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18090".to_owned());
    let fake =
        omnistack_testkit::ai::FakeAi::start_on(addr.parse().expect("an address such as 127.0.0.1:18090"), false).await;
    println!("fake AI providers on http://{}", fake.addr);
    std::future::pending::<()>().await;
}
