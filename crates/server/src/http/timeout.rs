//! `REQUEST_TIMEOUT_SECONDS`: a route that has not answered in time answers 504 (its body is
//! the error shape, from `error_body`).
//!
//! The timer starts when the route first has to wait. A route that answers without waiting (a
//! probe, a cached read) can never run out of time, so it never touches the runtime's timer
//! wheel: no registration under its lock and no removal afterwards, on every request.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower::Service;

/// `inner`, answering 504 once it has waited for `after`.
#[derive(Clone, Debug)]
pub struct TimeoutService<S> {
    inner: S,
    after: Duration,
}

impl<S> TimeoutService<S> {
    pub fn new(inner: S, after: Duration) -> Self {
        Self { inner, after }
    }
}

impl<S> Service<Request> for TimeoutService<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = TimeoutFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        TimeoutFuture { inner: self.inner.call(request), after: self.after, timer: None }
    }
}

pin_project! {
    /// The route's answer, or 504 once the route has waited for `after`.
    pub struct TimeoutFuture<F> {
        #[pin]
        inner: F,
        after: Duration,
        #[pin]
        timer: Option<Sleep>,
    }
}

impl<F, E> Future for TimeoutFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(result) = this.inner.poll(cx) {
            return Poll::Ready(result);
        }
        if this.timer.is_none() {
            this.timer.set(Some(tokio::time::sleep(*this.after)));
        }
        if let Some(timer) = this.timer.as_pin_mut() {
            ready!(timer.poll(cx));
        }
        Poll::Ready(Ok(StatusCode::GATEWAY_TIMEOUT.into_response()))
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use axum::body::Body;
    use tower::ServiceExt;

    use super::*;

    fn route(wait: Duration) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send> + Clone {
        tower::service_fn(move |_: Request| async move {
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            Ok::<_, Infallible>(StatusCode::OK.into_response())
        })
    }

    #[tokio::test]
    async fn a_route_that_waits_too_long_answers_504_and_one_in_time_its_own_answer() {
        let slow = TimeoutService::new(route(Duration::from_secs(30)), Duration::from_millis(50));
        let started = std::time::Instant::now();
        let response = slow.oneshot(Request::new(Body::empty())).await.unwrap();
        assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
        assert!(started.elapsed() < Duration::from_secs(10));

        let waits = TimeoutService::new(route(Duration::from_millis(20)), Duration::from_secs(30));
        assert_eq!(waits.oneshot(Request::new(Body::empty())).await.unwrap().status(), StatusCode::OK);

        let immediate = TimeoutService::new(route(Duration::ZERO), Duration::ZERO);
        assert_eq!(immediate.oneshot(Request::new(Body::empty())).await.unwrap().status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn the_timer_starts_only_when_the_route_waits() {
        let mut future = Box::pin(
            TimeoutService::new(route(Duration::ZERO), Duration::from_secs(5)).call(Request::new(Body::empty())),
        );
        let waker = std::task::Waker::noop();
        let polled = future.as_mut().poll(&mut Context::from_waker(waker));
        assert!(matches!(polled, Poll::Ready(Ok(ref response)) if response.status() == StatusCode::OK));
        assert!(future.timer.is_none(), "an immediate answer never arms the timer");

        let mut future = Box::pin(
            TimeoutService::new(route(Duration::from_secs(1)), Duration::from_secs(5))
                .call(Request::new(Body::empty())),
        );
        assert!(future.as_mut().poll(&mut Context::from_waker(waker)).is_pending());
        assert!(future.timer.is_some(), "a route that waits arms it");
    }
}
