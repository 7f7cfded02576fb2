//! Graceful shutdown: stop accepting, let in-flight requests finish, then return.

use std::time::Duration;

use omnistack_testkit::TestApp;

use crate::probes;

#[tokio::test]
async fn in_flight_requests_finish_after_the_stop_signal_and_new_ones_are_refused() {
    let mut app = TestApp::builder().routes(probes::routes()).spawn().await;
    let client = app.client.clone();
    let in_flight = tokio::spawn(async move { client.get("/probe/slow?ms=1500").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let refused = reqwest::Client::new().get(app.url("/api/v1/public/health")).send().await;
    assert!(refused.is_err(), "new connections are refused while stopping");

    let res = in_flight.await.unwrap();
    assert_eq!(res.status, 200);
    assert_eq!(res.text, "done");
    app.shutdown().await.expect("server stops cleanly");
}

#[tokio::test]
async fn shutdown_is_bounded_by_the_grace_period() {
    let mut app = TestApp::builder().env("SHUTDOWN_TIMEOUT_SECONDS", "1").routes(probes::routes()).spawn().await;
    let client = app.client.clone();
    let _stuck = tokio::spawn(async move { client.get("/probe/slow?ms=20000").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    app.begin_shutdown();
    app.shutdown().await.expect("server stops cleanly");
    assert!(started.elapsed() < Duration::from_secs(3), "stopped after {:?}", started.elapsed());
}
