//! What the HTTP email providers share: calls made inside a client span through
//! `telemetry::outbound` (whose client has a 10 s timeout and follows no redirects), and the
//! rule that turns an answer into a [`SendError`].

use lettre::message::Mailbox;
use reqwest::StatusCode;

use super::SendError;
use crate::telemetry::outbound;

/// Longest part of a provider's error body kept in the error (and so in a job's last error).
const MAX_ERROR_BODY: usize = 300;

/// `EMAIL_FROM` as a mailbox.
pub(super) fn sender(from: &str) -> anyhow::Result<Mailbox> {
    from.parse().map_err(|err| anyhow::anyhow!("EMAIL_FROM is not a mailbox: {err}"))
}

/// Sends the request; any 2xx is success.
pub(super) async fn send(provider: &str, request: reqwest::RequestBuilder) -> Result<(), SendError> {
    let response =
        outbound::send(request).await.map_err(|err| SendError::Transient(format!("{provider} unreachable: {err}")))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    let body: String = body.chars().take(MAX_ERROR_BODY).collect();
    let message = format!("{provider} answered {status}: {body}");
    Err(if is_transient(status) { SendError::Transient(message) } else { SendError::Permanent(message) })
}

/// Throttling (429) and server errors pass with time; any other refusal (a 4xx, or a redirect
/// a misconfigured base URL produces) fails the same way on every attempt.
fn is_transient(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

#[cfg(test)]
mod tests {
    use reqwest::StatusCode;

    use super::is_transient;

    #[test]
    fn only_throttling_and_server_errors_are_worth_retrying() {
        for code in [429, 500, 502, 503, 504] {
            assert!(is_transient(StatusCode::from_u16(code).unwrap()), "{code}");
        }
        for code in [301, 400, 401, 403, 404, 413, 422] {
            assert!(!is_transient(StatusCode::from_u16(code).unwrap()), "{code}");
        }
    }
}
