//! The data each template needs: one struct per template. Enqueue with
//! `MailMessage::new(to, &VerifyEmail { link, .. })`; a job's JSON is checked against the same
//! struct when rendered, so a missing field is an error naming it, never a panic.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{Fields, TemplateName};

/// A template's data.
pub trait TemplateData: Serialize + DeserializeOwned {
    /// The template it fills.
    const TEMPLATE: TemplateName;
    /// The subject pattern.
    const SUBJECT: &'static str;
    /// The HTML body (inside the shared layout).
    const HTML: &'static str;
    /// The plain-text body (the shared footer follows).
    const TEXT: &'static str;
    /// The values, checked; an error names the bad field.
    fn fields(self) -> Result<Fields, String>;
    /// Realistic data for previews and tests.
    fn sample() -> Self;
}

/// `link` must be an absolute http(s) URL: a `javascript:` or relative link in an email is a
/// fault (or an attack), not something to send.
fn checked_link(field: &str, link: String) -> Result<String, String> {
    let valid = (link.starts_with("https://") || link.starts_with("http://"))
        && !link.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid { Ok(link) } else { Err(format!("{field} must be an http(s) URL, got {link:?}")) }
}

fn optional(fields: &mut Fields, name: &'static str, value: Option<String>) {
    if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
        fields.push((name, value));
    }
}

/// `welcome`: sent after registration.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Welcome {
    /// How to greet the user; may be empty.
    pub name: String,
}

impl TemplateData for Welcome {
    const TEMPLATE: TemplateName = TemplateName::Welcome;
    const SUBJECT: &'static str = "Welcome to {{project_name}}";
    const HTML: &'static str = include_str!("welcome.html");
    const TEXT: &'static str = include_str!("welcome.txt");

    fn fields(self) -> Result<Fields, String> {
        Ok(vec![("name", self.name.trim().to_owned())])
    }

    fn sample() -> Self {
        Welcome { name: "Ada Lovelace".into() }
    }
}

/// `verify_email`: the confirmation link.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VerifyEmail {
    /// `FRONTEND_URL/verify-email?token=…`.
    pub link: String,
    /// How long the link works, in words ("48 hours").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_for: Option<String>,
}

impl TemplateData for VerifyEmail {
    const TEMPLATE: TemplateName = TemplateName::VerifyEmail;
    const SUBJECT: &'static str = "Confirm your {{project_name}} email address";
    const HTML: &'static str = include_str!("verify_email.html");
    const TEXT: &'static str = include_str!("verify_email.txt");

    fn fields(self) -> Result<Fields, String> {
        let mut fields = vec![("link", checked_link("link", self.link)?)];
        optional(&mut fields, "valid_for", self.valid_for);
        Ok(fields)
    }

    fn sample() -> Self {
        VerifyEmail {
            link: "http://localhost:3000/verify-email?token=sample-token".into(),
            valid_for: Some("48 hours".into()),
        }
    }
}

/// `password_reset`: the reset link.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PasswordReset {
    /// `FRONTEND_URL/reset-password?token=…`.
    pub link: String,
    /// How long the link works, in words ("1 hour").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_for: Option<String>,
}

impl TemplateData for PasswordReset {
    const TEMPLATE: TemplateName = TemplateName::PasswordReset;
    const SUBJECT: &'static str = "Reset your {{project_name}} password";
    const HTML: &'static str = include_str!("password_reset.html");
    const TEXT: &'static str = include_str!("password_reset.txt");

    fn fields(self) -> Result<Fields, String> {
        let mut fields = vec![("link", checked_link("link", self.link)?)];
        optional(&mut fields, "valid_for", self.valid_for);
        Ok(fields)
    }

    fn sample() -> Self {
        PasswordReset {
            link: "http://localhost:3000/reset-password?token=sample-token".into(),
            valid_for: Some("1 hour".into()),
        }
    }
}

/// `notification`: a title, a body and an optional link.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Notification {
    /// Also the subject.
    pub title: String,
    /// Plain text; line breaks are kept.
    pub body: String,
    /// Where to act on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

impl TemplateData for Notification {
    const TEMPLATE: TemplateName = TemplateName::Notification;
    const SUBJECT: &'static str = "{{title}}";
    const HTML: &'static str = include_str!("notification.html");
    const TEXT: &'static str = include_str!("notification.txt");

    fn fields(self) -> Result<Fields, String> {
        if self.title.trim().is_empty() {
            return Err("title must not be empty".into());
        }
        let mut fields = vec![("title", self.title), ("body", self.body)];
        optional(&mut fields, "link", self.link.map(|link| checked_link("link", link)).transpose()?);
        Ok(fields)
    }

    fn sample() -> Self {
        Notification {
            title: "Your project was shared with you".into(),
            body: "Grace Hopper shared \"Compiler\" with you.\nYou can now edit it.".into(),
            link: Some("http://localhost:3000/projects".into()),
        }
    }
}

/// `contact_admin`: a contact-form submission, to `CONTACT_NOTIFY_EMAIL`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ContactAdmin {
    /// `CNT-XXXXXXXX`.
    pub reference_id: String,
    /// The sender's name.
    pub name: String,
    /// The sender's address.
    pub email: String,
    /// The message; line breaks are kept.
    pub message: String,
    /// Optional subject line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Optional phone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Optional company.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    /// Optional source (the page or campaign).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl TemplateData for ContactAdmin {
    const TEMPLATE: TemplateName = TemplateName::ContactAdmin;
    const SUBJECT: &'static str =
        "[{{project_name}}] Contact {{reference_id}} from {{name}}{{#subject}}: {{subject}}{{/subject}}";
    const HTML: &'static str = include_str!("contact_admin.html");
    const TEXT: &'static str = include_str!("contact_admin.txt");

    fn fields(self) -> Result<Fields, String> {
        let mut fields = vec![
            ("reference_id", self.reference_id),
            ("name", self.name),
            ("email", self.email),
            ("message", self.message),
        ];
        optional(&mut fields, "subject", self.subject);
        optional(&mut fields, "phone", self.phone);
        optional(&mut fields, "company", self.company);
        optional(&mut fields, "source", self.source);
        Ok(fields)
    }

    fn sample() -> Self {
        ContactAdmin {
            reference_id: "CNT-7Q2K9XHM".into(),
            name: "Ada Lovelace".into(),
            email: "ada@example.com".into(),
            message: "Hello,\nI would like a demo of the team plan.\nThanks!".into(),
            subject: Some("Team plan".into()),
            phone: Some("+44 20 7946 0958".into()),
            company: Some("Analytical Engines Ltd".into()),
            source: Some("pricing-page".into()),
        }
    }
}

/// `contact_confirmation`: the receipt for whoever wrote.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ContactConfirmation {
    /// The sender's name.
    pub name: String,
    /// `CNT-XXXXXXXX`.
    pub reference_id: String,
}

impl TemplateData for ContactConfirmation {
    const TEMPLATE: TemplateName = TemplateName::ContactConfirmation;
    const SUBJECT: &'static str = "We received your message ({{reference_id}})";
    const HTML: &'static str = include_str!("contact_confirmation.html");
    const TEXT: &'static str = include_str!("contact_confirmation.txt");

    fn fields(self) -> Result<Fields, String> {
        Ok(vec![("name", self.name.trim().to_owned()), ("reference_id", self.reference_id)])
    }

    fn sample() -> Self {
        ContactConfirmation { name: "Ada Lovelace".into(), reference_id: "CNT-7Q2K9XHM".into() }
    }
}

/// `daily_report`: the summary for super admins.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DailyReport {
    /// The period covered, in words ("2026-11-30 09:00 to 2026-12-01 09:00 UTC").
    pub period: String,
    /// Accounts created in the period.
    pub signups: u64,
    /// Accounts seen in the period.
    pub active_users: u64,
    /// Job attempts that failed (and will be retried) in the period.
    pub jobs_failed: u64,
    /// Jobs out of attempts in the period.
    pub jobs_dead: u64,
}

impl TemplateData for DailyReport {
    const TEMPLATE: TemplateName = TemplateName::DailyReport;
    const SUBJECT: &'static str = "{{project_name}} daily report: {{period}}";
    const HTML: &'static str = include_str!("daily_report.html");
    const TEXT: &'static str = include_str!("daily_report.txt");

    fn fields(self) -> Result<Fields, String> {
        Ok(vec![
            ("period", self.period),
            ("signups", self.signups.to_string()),
            ("active_users", self.active_users.to_string()),
            ("jobs_failed", self.jobs_failed.to_string()),
            ("jobs_dead", self.jobs_dead.to_string()),
        ])
    }

    fn sample() -> Self {
        DailyReport {
            period: "2026-11-30 09:00 to 2026-12-01 09:00 UTC".into(),
            signups: 42,
            active_users: 1337,
            jobs_failed: 3,
            jobs_dead: 0,
        }
    }
}

/// `export_ready`: a requested data export can be downloaded.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExportReady {
    /// The export job, which also names the download.
    pub job_id: String,
    /// Where to download it; without one the email points at `FRONTEND_URL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

impl TemplateData for ExportReady {
    const TEMPLATE: TemplateName = TemplateName::ExportReady;
    const SUBJECT: &'static str = "Your {{project_name}} data export is ready";
    const HTML: &'static str = include_str!("export_ready.html");
    const TEXT: &'static str = include_str!("export_ready.txt");

    fn fields(self) -> Result<Fields, String> {
        if self.job_id.trim().is_empty() {
            return Err("job_id must not be empty".into());
        }
        let mut fields = vec![("job_id", self.job_id)];
        optional(&mut fields, "link", self.link.map(|link| checked_link("link", link)).transpose()?);
        Ok(fields)
    }

    fn sample() -> Self {
        ExportReady { job_id: "0193a5f2-7c1e-7b3a-9f4e-2d8c6b1a0e57".into(), link: None }
    }
}

/// `payment_failed`: a subscription payment failed; the store retries, and the account keeps
/// its plan only while the payment is sorted out.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PaymentFailed {
    /// The plan the payment was for (`pro`, `enterprise`).
    pub plan: String,
    /// The amount due, formatted (`12.00 EUR`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// Where to update the payment method (the store's hosted invoice page); without one the
    /// email points at `FRONTEND_URL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

impl TemplateData for PaymentFailed {
    const TEMPLATE: TemplateName = TemplateName::PaymentFailed;
    const SUBJECT: &'static str = "Your {{project_name}} payment did not go through";
    const HTML: &'static str = include_str!("payment_failed.html");
    const TEXT: &'static str = include_str!("payment_failed.txt");

    fn fields(self) -> Result<Fields, String> {
        if self.plan.trim().is_empty() {
            return Err("plan must not be empty".into());
        }
        let mut fields = vec![("plan", self.plan)];
        optional(&mut fields, "amount", self.amount);
        optional(&mut fields, "link", self.link.map(|link| checked_link("link", link)).transpose()?);
        Ok(fields)
    }

    fn sample() -> Self {
        PaymentFailed {
            plan: "pro".into(),
            amount: Some("12.00 EUR".into()),
            link: Some("https://invoice.stripe.com/i/acct_1/test_inv".into()),
        }
    }
}
