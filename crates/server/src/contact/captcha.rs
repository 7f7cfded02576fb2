//! Server-side captcha verification. hCaptcha, reCAPTCHA and Turnstile share one protocol: a
//! form-encoded `POST` of `secret`, `response` (the widget's token) and `remoteip` to the
//! provider's `siteverify` endpoint, answered by JSON with `success` (and, for reCAPTCHA v3,
//! a `score` from 0.0 to 1.0).
//!
//! A missing, refused or low-scoring token is the client's problem (400 `CAPTCHA_FAILED`); a
//! provider that cannot be reached or fails is ours (502 `EXTERNAL_SERVICE_ERROR`).

use serde::Deserialize;

use crate::config::{CaptchaProvider, CaptchaSettings};
use crate::error::{Error, Result};
use crate::telemetry::outbound;

/// Verifies captcha tokens with the configured provider; does nothing when none is.
#[derive(Clone, Debug)]
pub struct CaptchaVerifier {
    settings: Option<CaptchaSettings>,
    client: reqwest::Client,
}

/// What `siteverify` answers (the fields every provider shares, and reCAPTCHA's score).
#[derive(Debug, Deserialize)]
struct Answer {
    success: bool,
    #[serde(default)]
    score: Option<f64>,
    #[serde(default, rename = "error-codes")]
    error_codes: Vec<String>,
}

impl CaptchaVerifier {
    /// A verifier for `settings` (`None`: no captcha).
    pub fn new(settings: Option<CaptchaSettings>) -> anyhow::Result<CaptchaVerifier> {
        Ok(CaptchaVerifier { settings, client: crate::telemetry::outbound::client()? })
    }

    /// The provider's settings, when a captcha is required.
    pub fn settings(&self) -> Option<&CaptchaSettings> {
        self.settings.as_ref()
    }

    /// Checks `token` for a client at `remote_ip`; `Ok` when no captcha is configured.
    pub async fn verify(&self, token: Option<&str>, remote_ip: &str) -> Result<()> {
        let Some(settings) = &self.settings else { return Ok(()) };
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err(Error::CaptchaFailed("a captcha token is required (captcha_token)".into()));
        };
        let form = [("secret", settings.secret.expose()), ("response", token), ("remoteip", remote_ip)];
        let request = self.client.post(&settings.verify_url).form(&form);
        let provider = settings.provider.as_str();
        let unavailable = |why: String| {
            tracing::warn!(
                captcha.provider = provider,
                error = why,
                "captcha verification failed on the provider's side"
            );
            Error::ExternalService("the captcha provider could not verify the token; try again later".into())
        };
        let response = outbound::send(request).await.map_err(|err| unavailable(format!("unreachable: {err}")))?;
        let status = response.status();
        if !status.is_success() {
            return Err(unavailable(format!("answered {status}")));
        }
        let answer: Answer = response.json().await.map_err(|err| unavailable(format!("unreadable answer: {err}")))?;
        judge(settings.provider, settings.min_score, &answer)
    }
}

/// The provider's verdict: solved, and (reCAPTCHA v3) scored at least `min_score`.
fn judge(provider: CaptchaProvider, min_score: f64, answer: &Answer) -> Result<()> {
    if !answer.success {
        tracing::info!(captcha.provider = provider.as_str(), captcha.errors = ?answer.error_codes, "captcha refused");
        return Err(Error::CaptchaFailed("the captcha was not solved; please try again".into()));
    }
    if provider == CaptchaProvider::Recaptcha && answer.score.is_none_or(|score| score < min_score) {
        tracing::info!(captcha.score = ?answer.score, min_score, "captcha score too low");
        return Err(Error::CaptchaFailed("the captcha check did not pass; please try again".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(success: bool, score: Option<f64>) -> Answer {
        Answer { success, score, error_codes: Vec::new() }
    }

    #[test]
    fn a_refused_token_fails_for_every_provider() {
        for provider in [CaptchaProvider::Hcaptcha, CaptchaProvider::Recaptcha, CaptchaProvider::Turnstile] {
            assert!(matches!(judge(provider, 0.5, &answer(false, Some(0.9))), Err(Error::CaptchaFailed(_))));
        }
        assert!(judge(CaptchaProvider::Hcaptcha, 0.5, &answer(true, None)).is_ok());
        assert!(judge(CaptchaProvider::Turnstile, 0.5, &answer(true, None)).is_ok());
    }

    #[test]
    fn recaptcha_needs_a_score_at_least_the_minimum() {
        assert!(judge(CaptchaProvider::Recaptcha, 0.5, &answer(true, Some(0.5))).is_ok());
        assert!(judge(CaptchaProvider::Recaptcha, 0.5, &answer(true, Some(0.3))).is_err());
        assert!(judge(CaptchaProvider::Recaptcha, 0.5, &answer(true, None)).is_err());
        let parsed: Answer =
            serde_json::from_str(r#"{"success":false,"error-codes":["invalid-input-response"]}"#).unwrap();
        assert_eq!(parsed.error_codes, ["invalid-input-response"]);
    }
}
