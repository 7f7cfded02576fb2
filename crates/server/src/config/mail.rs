//! Email delivery settings: `EMAIL_FROM`, `EMAIL_PROVIDER` and each provider's variables.

use super::Secret;
use super::parse::{self, Vars};

/// How email leaves the service.
#[derive(Clone, Debug)]
pub struct MailSettings {
    /// `EMAIL_FROM`.
    pub from: String,
    /// `EMAIL_PROVIDER`: who delivers it.
    pub provider: MailProvider,
}

/// Who delivers email (`EMAIL_PROVIDER`).
#[derive(Clone, Debug)]
pub enum MailProvider {
    /// `console`: written to the log, not sent. The default outside production; in production
    /// only when chosen explicitly, and then one-time tokens in links are redacted.
    Console {
        /// Replace the tokens in links with `[REDACTED]` (production).
        redact_tokens: bool,
    },
    /// `smtp`: an SMTP relay (`SMTP_*`); the default when `SMTP_HOST` is set.
    Smtp(SmtpSettings),
    /// `resend`: the Resend HTTP API (`RESEND_API_KEY`, `RESEND_API_URL`).
    Resend(HttpApiSettings),
    /// `sendgrid`: the SendGrid v3 HTTP API (`SENDGRID_API_KEY`, `SENDGRID_API_URL`).
    SendGrid(HttpApiSettings),
}

impl MailProvider {
    /// The value as written in `EMAIL_PROVIDER`.
    pub fn name(&self) -> &'static str {
        match self {
            MailProvider::Console { .. } => "console",
            MailProvider::Smtp(_) => "smtp",
            MailProvider::Resend(_) => "resend",
            MailProvider::SendGrid(_) => "sendgrid",
        }
    }
}

/// An SMTP relay.
#[derive(Clone, Debug)]
pub struct SmtpSettings {
    /// `SMTP_HOST`.
    pub host: String,
    /// `SMTP_PORT` (587; 465 means implicit TLS).
    pub port: u16,
    /// `SMTP_USER`.
    pub user: Option<String>,
    /// `SMTP_PASSWORD`.
    pub password: Option<Secret>,
    /// `SMTP_TLS`: require STARTTLS (or implicit TLS on 465).
    pub tls: bool,
}

/// An email provider reached over HTTPS with a bearer API key.
#[derive(Clone, Debug)]
pub struct HttpApiSettings {
    /// `RESEND_API_KEY` / `SENDGRID_API_KEY`.
    pub api_key: Secret,
    /// `RESEND_API_URL` / `SENDGRID_API_URL`, without a trailing slash.
    pub base_url: String,
}

const RESEND_API_URL: &str = "https://api.resend.com";
const SENDGRID_API_URL: &str = "https://api.sendgrid.com";

/// Reads `EMAIL_FROM`, `EMAIL_PROVIDER`, `SMTP_*`, `RESEND_*` and `SENDGRID_*`. Production
/// refuses to start without a real provider unless the console is chosen explicitly, so
/// one-time links never reach the log by accident.
pub(super) fn settings(vars: &mut Vars<'_>, production: bool) -> MailSettings {
    let from = vars.string("EMAIL_FROM", "OmniStack <noreply@localhost>");
    let smtp = vars.optional("SMTP_HOST", |v| Ok(v.to_owned())).flatten().map(|host| SmtpSettings {
        host,
        port: vars.parse("SMTP_PORT", "587", |v| parse::number(v, 1, 65535)).unwrap_or(587) as u16,
        user: vars.optional("SMTP_USER", |v| Ok(v.to_owned())).flatten(),
        password: vars.optional("SMTP_PASSWORD", |v| Ok(Secret::new(v))).flatten(),
        tls: vars.parse("SMTP_TLS", "true", parse::boolean).unwrap_or(true),
    });
    let resend = http_api(vars, "RESEND_API_KEY", "RESEND_API_URL", RESEND_API_URL);
    let sendgrid = http_api(vars, "SENDGRID_API_KEY", "SENDGRID_API_URL", SENDGRID_API_URL);
    let chosen = vars
        .optional("EMAIL_PROVIDER", |v| match v {
            "console" | "smtp" | "resend" | "sendgrid" => Ok(v.to_owned()),
            other => Err(format!("must be console, smtp, resend or sendgrid, got {other:?}")),
        })
        .flatten();
    let console = MailProvider::Console { redact_tokens: production };
    let provider = match (chosen.as_deref(), smtp) {
        (Some("console"), _) => console,
        (Some("resend"), _) => required(vars, resend.map(MailProvider::Resend), "RESEND_API_KEY", "resend"),
        (Some("sendgrid"), _) => required(vars, sendgrid.map(MailProvider::SendGrid), "SENDGRID_API_KEY", "sendgrid"),
        (Some(_) | None, Some(smtp)) => MailProvider::Smtp(smtp),
        (Some(_), None) => required(vars, None, "SMTP_HOST", "smtp"),
        (None, None) if production => {
            vars.problem(
                "EMAIL_PROVIDER",
                "production needs a mail provider: set EMAIL_PROVIDER=smtp (with SMTP_HOST and the other SMTP_* \
                 variables), resend (with RESEND_API_KEY) or sendgrid (with SENDGRID_API_KEY), or \
                 EMAIL_PROVIDER=console to write messages to the log with their one-time tokens redacted",
            );
            console
        }
        (None, None) => console,
    };
    MailSettings { from, provider }
}

/// The provider, or a problem naming the variable it lacks (the placeholder returned then is
/// never used: the configuration fails).
fn required(vars: &mut Vars<'_>, provider: Option<MailProvider>, variable: &str, chosen: &str) -> MailProvider {
    provider.unwrap_or_else(|| {
        vars.problem(variable, &format!("is required when EMAIL_PROVIDER={chosen}"));
        MailProvider::Console { redact_tokens: true }
    })
}

/// The key and base URL of an HTTP provider; `None` without a key. The URL is checked even
/// when the provider is not chosen, so a typo is caught before it is needed.
fn http_api(vars: &mut Vars<'_>, key: &str, url: &str, default_url: &str) -> Option<HttpApiSettings> {
    let base_url = vars.parse(url, default_url, parse::http_url).map(|u| u.trim_end_matches('/').to_owned());
    let api_key = vars.optional(key, |v| Ok(Secret::new(v))).flatten()?;
    Some(HttpApiSettings { api_key, base_url: base_url.unwrap_or_else(|| default_url.to_owned()) })
}

impl MailSettings {
    /// Every email variable as `(VARIABLE, value)`, secrets redacted, for `omnistack config`.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let smtp = match &self.provider {
            MailProvider::Smtp(smtp) => Some(smtp),
            _ => None,
        };
        let (resend, sendgrid) = match &self.provider {
            MailProvider::Resend(api) => (Some(api), None),
            MailProvider::SendGrid(api) => (None, Some(api)),
            _ => (None, None),
        };
        let key = |api: Option<&HttpApiSettings>| api.map(|a| a.api_key.to_string()).unwrap_or_default();
        let url = |api: Option<&HttpApiSettings>, default: &str| api.map_or(default.to_owned(), |a| a.base_url.clone());
        vec![
            ("EMAIL_FROM", self.from.clone()),
            ("EMAIL_PROVIDER", self.provider.name().to_owned()),
            ("SMTP_HOST", smtp.map(|s| s.host.clone()).unwrap_or_default()),
            ("SMTP_PORT", smtp.map(|s| s.port.to_string()).unwrap_or_default()),
            ("SMTP_USER", smtp.and_then(|s| s.user.clone()).unwrap_or_default()),
            ("SMTP_PASSWORD", smtp.and_then(|s| s.password.as_ref()).map(Secret::to_string).unwrap_or_default()),
            ("SMTP_TLS", smtp.map(|s| s.tls.to_string()).unwrap_or_default()),
            ("RESEND_API_KEY", key(resend)),
            ("RESEND_API_URL", url(resend, RESEND_API_URL)),
            ("SENDGRID_API_KEY", key(sendgrid)),
            ("SENDGRID_API_URL", url(sendgrid, SENDGRID_API_URL)),
        ]
    }
}
