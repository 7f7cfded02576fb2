//! Settings of the service's own accounts, tokens and email.

use std::time::Duration;

use super::Secret;
use super::parse::{self, Vars};

/// Own-account settings.
#[derive(Clone, Debug)]
pub struct AccountSettings {
    /// `JWT_ISSUER`: the `iss` of the service's own access tokens.
    pub jwt_issuer: String,
    /// `ACCESS_TOKEN_EXPIRE_MINUTES`.
    pub access_token_ttl: Duration,
    /// `REFRESH_TOKEN_EXPIRE_DAYS`.
    pub refresh_token_ttl: Duration,
    /// `FRONTEND_URL`: base of the links in emails (`/verify-email?token=`, `/reset-password?token=`).
    pub frontend_url: String,
    /// `ADMIN_EMAIL` + `ADMIN_PASSWORD`: a super admin created at first start when both are set.
    pub bootstrap_admin: Option<(String, Secret)>,
}

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
}

impl MailProvider {
    /// The value as written in `EMAIL_PROVIDER`.
    pub fn name(&self) -> &'static str {
        match self {
            MailProvider::Console { .. } => "console",
            MailProvider::Smtp(_) => "smtp",
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

pub(super) fn accounts(vars: &mut Vars<'_>) -> AccountSettings {
    let email = vars.optional("ADMIN_EMAIL", |v| Ok(v.to_lowercase())).flatten();
    let password = vars.optional("ADMIN_PASSWORD", |v| Ok(Secret::new(v))).flatten();
    let bootstrap_admin = match (email, password) {
        (Some(email), Some(password)) => Some((email, password)),
        (None, None) => None,
        _ => {
            vars.problem("ADMIN_EMAIL", "ADMIN_EMAIL and ADMIN_PASSWORD must be set together");
            None
        }
    };
    AccountSettings {
        jwt_issuer: vars.string("JWT_ISSUER", "omnistack"),
        access_token_ttl: Duration::from_secs(
            60 * vars.parse("ACCESS_TOKEN_EXPIRE_MINUTES", "15", |v| parse::number(v, 1, 1440)).unwrap_or(15),
        ),
        refresh_token_ttl: Duration::from_secs(
            86_400 * vars.parse("REFRESH_TOKEN_EXPIRE_DAYS", "30", |v| parse::number(v, 1, 365)).unwrap_or(30),
        ),
        frontend_url: vars
            .parse("FRONTEND_URL", "http://localhost:3000", parse::http_url)
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_owned(),
        bootstrap_admin,
    }
}

/// Reads `EMAIL_FROM`, `EMAIL_PROVIDER` and `SMTP_*`. Production refuses to start without a
/// real provider unless the console is chosen explicitly, so one-time links never reach the
/// log by accident.
pub(super) fn mail(vars: &mut Vars<'_>, production: bool) -> MailSettings {
    let from = vars.string("EMAIL_FROM", "OmniStack <noreply@localhost>");
    let smtp = vars.optional("SMTP_HOST", |v| Ok(v.to_owned())).flatten().map(|host| SmtpSettings {
        host,
        port: vars.parse("SMTP_PORT", "587", |v| parse::number(v, 1, 65535)).unwrap_or(587) as u16,
        user: vars.optional("SMTP_USER", |v| Ok(v.to_owned())).flatten(),
        password: vars.optional("SMTP_PASSWORD", |v| Ok(Secret::new(v))).flatten(),
        tls: vars.parse("SMTP_TLS", "true", parse::boolean).unwrap_or(true),
    });
    let chosen = vars
        .optional("EMAIL_PROVIDER", |v| match v {
            "console" | "smtp" => Ok(v.to_owned()),
            other => Err(format!("must be console or smtp, got {other:?}")),
        })
        .flatten();
    let console = MailProvider::Console { redact_tokens: production };
    let provider = match (chosen.as_deref(), smtp) {
        (Some("console"), _) => console,
        (Some(_) | None, Some(smtp)) => MailProvider::Smtp(smtp),
        (Some(_), None) => {
            vars.problem("SMTP_HOST", "is required when EMAIL_PROVIDER=smtp");
            console
        }
        (None, None) if production => {
            vars.problem(
                "EMAIL_PROVIDER",
                "production needs a mail provider: set SMTP_HOST (and the other SMTP_* variables), or \
                 EMAIL_PROVIDER=console to write messages to the log with their one-time tokens redacted",
            );
            console
        }
        (None, None) => console,
    };
    MailSettings { from, provider }
}
