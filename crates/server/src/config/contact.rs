//! Contact-form settings: `CONTACT_*` (who is told, what is required, the spam timer, the CRM
//! webhook) and `CAPTCHA_*`.

use base64::Engine as _;

use super::Secret;
use super::parse::{self, Vars};

/// How the public contact form behaves.
#[derive(Clone, Debug)]
pub struct ContactSettings {
    /// `CONTACT_NOTIFY_EMAIL` (default `ADMIN_EMAIL`): who gets `contact_admin`; `None`
    /// stores submissions without mailing anyone.
    pub notify_email: Option<String>,
    /// `CONTACT_SEND_CONFIRMATION`: send `contact_confirmation` to the sender.
    pub send_confirmation: bool,
    /// `CONTACT_REQUIRE_SUBJECT`.
    pub require_subject: bool,
    /// `CONTACT_REQUIRE_PHONE`.
    pub require_phone: bool,
    /// `CONTACT_MIN_FILL_SECONDS`: a form sent sooner after `form_started_at` is spam.
    pub min_fill_seconds: u64,
    /// `CAPTCHA_*`, when a provider is chosen.
    pub captcha: Option<CaptchaSettings>,
    /// `CONTACT_WEBHOOK_URL` + `CONTACT_WEBHOOK_SECRET`, when set.
    pub webhook: Option<WebhookSettings>,
}

/// A captcha provider (`CAPTCHA_PROVIDER`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptchaProvider {
    /// hCaptcha.
    Hcaptcha,
    /// Google reCAPTCHA v3 (scored).
    Recaptcha,
    /// Cloudflare Turnstile.
    Turnstile,
}

impl CaptchaProvider {
    /// The value as written in `CAPTCHA_PROVIDER`.
    pub fn as_str(self) -> &'static str {
        match self {
            CaptchaProvider::Hcaptcha => "hcaptcha",
            CaptchaProvider::Recaptcha => "recaptcha",
            CaptchaProvider::Turnstile => "turnstile",
        }
    }

    /// The provider's own verify endpoint.
    pub fn default_verify_url(self) -> &'static str {
        match self {
            CaptchaProvider::Hcaptcha => "https://api.hcaptcha.com/siteverify",
            CaptchaProvider::Recaptcha => "https://www.google.com/recaptcha/api/siteverify",
            CaptchaProvider::Turnstile => "https://challenges.cloudflare.com/turnstile/v0/siteverify",
        }
    }
}

/// Server-side captcha verification.
#[derive(Clone, Debug)]
pub struct CaptchaSettings {
    /// `CAPTCHA_PROVIDER`.
    pub provider: CaptchaProvider,
    /// `CAPTCHA_SECRET`.
    pub secret: Secret,
    /// `CAPTCHA_SITE_KEY`: public, shown by the status route for the widget.
    pub site_key: Option<String>,
    /// `CAPTCHA_VERIFY_URL` (default: the provider's endpoint).
    pub verify_url: String,
    /// `CAPTCHA_MIN_SCORE`: the lowest reCAPTCHA v3 score accepted.
    pub min_score: f64,
}

/// The outbound CRM webhook.
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    /// `CONTACT_WEBHOOK_URL`.
    pub url: String,
    /// `CONTACT_WEBHOOK_SECRET`, as given.
    pub secret: Secret,
    /// The HMAC key it stands for (`whsec_<base64>` decoded, as Standard Webhooks does;
    /// anything else its bytes), decoded once here.
    pub key: SigningKey,
}

/// Key bytes that never print.
#[derive(Clone)]
pub struct SigningKey(pub Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// The key bytes of a webhook secret: `whsec_<base64>` decoded, anything else as is.
pub fn webhook_key(secret: &str) -> Result<Vec<u8>, String> {
    match secret.strip_prefix("whsec_") {
        Some(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| "a whsec_ secret must be followed by base64".to_owned())
            .and_then(|key| if key.is_empty() { Err("the whsec_ secret is empty".to_owned()) } else { Ok(key) }),
        None if secret.len() >= 16 => Ok(secret.as_bytes().to_vec()),
        None => Err("must be at least 16 characters (or whsec_<base64>)".to_owned()),
    }
}

/// Reads `CONTACT_*` and `CAPTCHA_*`; `admin_email` is the default recipient.
pub(super) fn settings(vars: &mut Vars<'_>, admin_email: Option<&str>) -> ContactSettings {
    let notify_email = vars
        .optional("CONTACT_NOTIFY_EMAIL", |v| {
            if v.contains('@') && !v.chars().any(|c| c.is_whitespace() || c.is_control()) {
                Ok(v.to_lowercase())
            } else {
                Err(format!("must be an email address, got {v:?}"))
            }
        })
        .flatten()
        .or_else(|| admin_email.map(str::to_owned));
    let flag = |vars: &mut Vars<'_>, name: &str| vars.parse(name, "false", parse::boolean).unwrap_or(false);
    ContactSettings {
        notify_email,
        send_confirmation: flag(vars, "CONTACT_SEND_CONFIRMATION"),
        require_subject: flag(vars, "CONTACT_REQUIRE_SUBJECT"),
        require_phone: flag(vars, "CONTACT_REQUIRE_PHONE"),
        min_fill_seconds: vars.parse("CONTACT_MIN_FILL_SECONDS", "3", |v| parse::number(v, 0, 3600)).unwrap_or(3),
        captcha: captcha(vars),
        webhook: webhook(vars),
    }
}

fn captcha(vars: &mut Vars<'_>) -> Option<CaptchaSettings> {
    let provider = vars
        .optional("CAPTCHA_PROVIDER", |v| match v.to_ascii_lowercase().as_str() {
            "hcaptcha" => Ok(Some(CaptchaProvider::Hcaptcha)),
            "recaptcha" => Ok(Some(CaptchaProvider::Recaptcha)),
            "turnstile" => Ok(Some(CaptchaProvider::Turnstile)),
            "none" | "off" => Ok(None),
            other => Err(format!("must be hcaptcha, recaptcha, turnstile or none, got {other:?}")),
        })
        .flatten()
        .flatten();
    let secret = vars.optional("CAPTCHA_SECRET", |v| Ok(Secret::new(v))).flatten();
    let site_key = vars.optional("CAPTCHA_SITE_KEY", |v| Ok(v.to_owned())).flatten();
    let min_score = vars
        .parse("CAPTCHA_MIN_SCORE", "0.5", |v| match v.parse::<f64>() {
            Ok(score) if (0.0..=1.0).contains(&score) => Ok(score),
            _ => Err(format!("must be a number from 0.0 to 1.0, got {v:?}")),
        })
        .unwrap_or(0.5);
    let verify_url = vars.optional("CAPTCHA_VERIFY_URL", parse::http_url).flatten();
    let provider = provider?;
    let Some(secret) = secret else {
        vars.problem("CAPTCHA_SECRET", &format!("is required when CAPTCHA_PROVIDER={}", provider.as_str()));
        return None;
    };
    let verify_url = verify_url.unwrap_or_else(|| provider.default_verify_url().to_owned());
    Some(CaptchaSettings { provider, secret, site_key, verify_url, min_score })
}

fn webhook(vars: &mut Vars<'_>) -> Option<WebhookSettings> {
    let url = vars.optional("CONTACT_WEBHOOK_URL", parse::http_url).flatten();
    let secret = vars
        .optional("CONTACT_WEBHOOK_SECRET", |v| webhook_key(v).map(|key| (Secret::new(v), SigningKey(key))))
        .flatten();
    let url = url?;
    let Some((secret, key)) = secret else {
        vars.problem(
            "CONTACT_WEBHOOK_SECRET",
            "is required when CONTACT_WEBHOOK_URL is set (the deliveries are signed)",
        );
        return None;
    };
    Some(WebhookSettings { url, secret, key })
}

impl ContactSettings {
    /// Every contact and captcha variable as `(VARIABLE, value)`, secrets redacted.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let captcha = self.captcha.as_ref();
        let webhook = self.webhook.as_ref();
        vec![
            ("CONTACT_NOTIFY_EMAIL", self.notify_email.clone().unwrap_or_default()),
            ("CONTACT_SEND_CONFIRMATION", self.send_confirmation.to_string()),
            ("CONTACT_REQUIRE_SUBJECT", self.require_subject.to_string()),
            ("CONTACT_REQUIRE_PHONE", self.require_phone.to_string()),
            ("CONTACT_MIN_FILL_SECONDS", self.min_fill_seconds.to_string()),
            ("CONTACT_WEBHOOK_URL", webhook.map(|w| w.url.clone()).unwrap_or_default()),
            ("CONTACT_WEBHOOK_SECRET", webhook.map(|w| w.secret.to_string()).unwrap_or_default()),
            ("CAPTCHA_PROVIDER", captcha.map_or("none", |c| c.provider.as_str()).to_owned()),
            ("CAPTCHA_SECRET", captcha.map(|c| c.secret.to_string()).unwrap_or_default()),
            ("CAPTCHA_SITE_KEY", captcha.and_then(|c| c.site_key.clone()).unwrap_or_default()),
            ("CAPTCHA_VERIFY_URL", captcha.map(|c| c.verify_url.clone()).unwrap_or_default()),
            ("CAPTCHA_MIN_SCORE", captcha.map_or(0.5, |c| c.min_score).to_string()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> (ContactSettings, Vec<String>) {
        let map: std::collections::HashMap<String, String> =
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let lookup = move |name: &str| map.get(name).cloned();
        let mut vars = Vars::new(&lookup);
        let settings = settings(&mut vars, Some("admin@example.com"));
        (settings, vars.into_problems())
    }

    #[test]
    fn defaults_notify_the_admin_and_need_nothing_else() {
        let (settings, problems) = read(&[]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(settings.notify_email.as_deref(), Some("admin@example.com"));
        assert_eq!(settings.min_fill_seconds, 3);
        assert!(!settings.send_confirmation && !settings.require_subject && !settings.require_phone);
        assert!(settings.captcha.is_none() && settings.webhook.is_none());
    }

    #[test]
    fn a_captcha_provider_without_a_secret_names_the_variable() {
        let (_, problems) = read(&[("CAPTCHA_PROVIDER", "turnstile")]);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("CAPTCHA_SECRET: is required when CAPTCHA_PROVIDER=turnstile"), "{problems:?}");
        let (_, problems) = read(&[("CAPTCHA_PROVIDER", "friendly"), ("CAPTCHA_SECRET", "s")]);
        assert!(problems[0].starts_with("CAPTCHA_PROVIDER: "), "{problems:?}");
        let (_, problems) =
            read(&[("CAPTCHA_PROVIDER", "recaptcha"), ("CAPTCHA_SECRET", "s"), ("CAPTCHA_MIN_SCORE", "2")]);
        assert!(problems[0].starts_with("CAPTCHA_MIN_SCORE: "), "{problems:?}");
    }

    #[test]
    fn each_provider_verifies_at_its_own_endpoint_unless_overridden() {
        let (settings, _) = read(&[("CAPTCHA_PROVIDER", "hcaptcha"), ("CAPTCHA_SECRET", "s")]);
        assert_eq!(settings.captcha.unwrap().verify_url, "https://api.hcaptcha.com/siteverify");
        let (settings, _) = read(&[
            ("CAPTCHA_PROVIDER", "recaptcha"),
            ("CAPTCHA_SECRET", "s"),
            ("CAPTCHA_VERIFY_URL", "http://127.0.0.1:9/verify"),
        ]);
        let captcha = settings.captcha.unwrap();
        assert_eq!((captcha.verify_url.as_str(), captcha.min_score), ("http://127.0.0.1:9/verify", 0.5));
    }

    #[test]
    fn a_webhook_needs_a_usable_secret_and_whsec_secrets_are_decoded() {
        let (_, problems) = read(&[("CONTACT_WEBHOOK_URL", "https://crm.example/hook")]);
        assert!(problems[0].starts_with("CONTACT_WEBHOOK_SECRET: is required"), "{problems:?}");
        let (_, problems) =
            read(&[("CONTACT_WEBHOOK_URL", "https://crm.example/hook"), ("CONTACT_WEBHOOK_SECRET", "whsec_!!")]);
        assert!(problems[0].starts_with("CONTACT_WEBHOOK_SECRET: "), "{problems:?}");
        assert_eq!(webhook_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap().len(), 24);
        assert_eq!(webhook_key("a-plain-secret-of-some-length").unwrap(), b"a-plain-secret-of-some-length");
        assert!(webhook_key("short").is_err());
    }
}
