//! Email templates: each a subject, an HTML body and a plain-text body (files under
//! `templates/`, embedded at build time), filled from typed data. In HTML every value is
//! escaped; plain text keeps it as given. `{{name}}` inserts a value, `{{#name}}…{{/name}}`
//! keeps its inside only when `name` has a non-empty value. `project_name` (`PROJECT_NAME`) and
//! `frontend_url` (`FRONTEND_URL`) are available to every template.

mod data;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use data::{
    ContactAdmin, ContactConfirmation, DailyReport, ExportReady, Notification, PasswordReset, PaymentFailed,
    TemplateData, VerifyEmail, Welcome,
};

use crate::config::Config;

/// Every template the service sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateName {
    /// After registration.
    Welcome,
    /// The email-address confirmation link.
    VerifyEmail,
    /// The password-reset link.
    PasswordReset,
    /// A generic notice with a title, a body and an optional link.
    Notification,
    /// A contact-form submission, to the operator.
    ContactAdmin,
    /// The receipt sent to whoever filled in the contact form.
    ContactConfirmation,
    /// The daily summary for super admins.
    DailyReport,
    /// A requested data export can be downloaded.
    ExportReady,
    /// A subscription payment failed.
    PaymentFailed,
}

impl TemplateName {
    /// Every template, in a stable order.
    pub const ALL: [TemplateName; 9] = [
        TemplateName::Welcome,
        TemplateName::VerifyEmail,
        TemplateName::PasswordReset,
        TemplateName::Notification,
        TemplateName::ContactAdmin,
        TemplateName::ContactConfirmation,
        TemplateName::DailyReport,
        TemplateName::ExportReady,
        TemplateName::PaymentFailed,
    ];

    /// The snake_case name (also the metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateName::Welcome => "welcome",
            TemplateName::VerifyEmail => "verify_email",
            TemplateName::PasswordReset => "password_reset",
            TemplateName::Notification => "notification",
            TemplateName::ContactAdmin => "contact_admin",
            TemplateName::ContactConfirmation => "contact_confirmation",
            TemplateName::DailyReport => "daily_report",
            TemplateName::ExportReady => "export_ready",
            TemplateName::PaymentFailed => "payment_failed",
        }
    }
}

impl fmt::Display for TemplateName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TemplateName {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        TemplateName::ALL.into_iter().find(|name| name.as_str() == value).ok_or_else(|| {
            let names: Vec<&str> = TemplateName::ALL.iter().map(|n| n.as_str()).collect();
            format!("unknown template {value:?}; the templates are: {}", names.join(", "))
        })
    }
}

/// What every template may use besides its own data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateContext {
    /// `PROJECT_NAME`.
    pub project_name: String,
    /// `FRONTEND_URL`, without a trailing slash.
    pub frontend_url: String,
}

impl TemplateContext {
    /// The context of the running configuration.
    pub fn from_config(config: &Config) -> TemplateContext {
        TemplateContext {
            project_name: config.project_name.clone(),
            frontend_url: config.accounts.frontend_url.clone(),
        }
    }
}

/// A rendered message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// One line, no control characters.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML document.
    pub html: String,
}

/// Why a template could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The data lacks a field the template needs, or holds a wrong one.
    #[error("template {template}: {message}")]
    Data {
        /// The template.
        template: TemplateName,
        /// What is wrong, naming the field.
        message: String,
    },
    /// The template refers to a value it is never given (a fault in the template files).
    #[error("template {template}: unknown placeholder {name:?}")]
    Placeholder {
        /// The template.
        template: TemplateName,
        /// The placeholder.
        name: String,
    },
}

/// The values a template is filled with; absent optional values are left out.
pub type Fields = Vec<(&'static str, String)>;

const LAYOUT_HTML: &str = include_str!("templates/layout.html");
const FOOTER_TEXT: &str = include_str!("templates/footer.txt");

/// Renders `name` with `data` (the JSON form of its data struct).
pub fn render(name: TemplateName, data: &serde_json::Value, ctx: &TemplateContext) -> Result<Rendered, RenderError> {
    match name {
        TemplateName::Welcome => render_as::<Welcome>(data, ctx),
        TemplateName::VerifyEmail => render_as::<VerifyEmail>(data, ctx),
        TemplateName::PasswordReset => render_as::<PasswordReset>(data, ctx),
        TemplateName::Notification => render_as::<Notification>(data, ctx),
        TemplateName::ContactAdmin => render_as::<ContactAdmin>(data, ctx),
        TemplateName::ContactConfirmation => render_as::<ContactConfirmation>(data, ctx),
        TemplateName::DailyReport => render_as::<DailyReport>(data, ctx),
        TemplateName::ExportReady => render_as::<ExportReady>(data, ctx),
        TemplateName::PaymentFailed => render_as::<PaymentFailed>(data, ctx),
    }
}

/// Sample data for `name`, as `omnistack email preview` shows it.
pub fn sample(name: TemplateName) -> serde_json::Value {
    fn json<D: TemplateData>() -> serde_json::Value {
        serde_json::to_value(D::sample()).unwrap_or_default()
    }
    match name {
        TemplateName::Welcome => json::<Welcome>(),
        TemplateName::VerifyEmail => json::<VerifyEmail>(),
        TemplateName::PasswordReset => json::<PasswordReset>(),
        TemplateName::Notification => json::<Notification>(),
        TemplateName::ContactAdmin => json::<ContactAdmin>(),
        TemplateName::ContactConfirmation => json::<ContactConfirmation>(),
        TemplateName::DailyReport => json::<DailyReport>(),
        TemplateName::ExportReady => json::<ExportReady>(),
        TemplateName::PaymentFailed => json::<PaymentFailed>(),
    }
}

fn render_as<D: TemplateData>(data: &serde_json::Value, ctx: &TemplateContext) -> Result<Rendered, RenderError> {
    let template = D::TEMPLATE;
    let bad_data = |message: String| RenderError::Data { template, message };
    let data = D::deserialize(data).map_err(|err| bad_data(err.to_string()))?;
    let mut fields = data.fields().map_err(bad_data)?;
    fields.push(("project_name", ctx.project_name.clone()));
    fields.push(("frontend_url", ctx.frontend_url.clone()));
    let value = |name: &str| fields.iter().find(|(field, _)| *field == name).map(|(_, value)| value.as_str());

    let subject = one_line(&fill(template, D::SUBJECT, &|name| value(name).map(str::to_owned))?);
    let mut text = fill(template, D::TEXT, &|name| value(name).map(str::to_owned))?;
    text.push_str(&fill(template, FOOTER_TEXT, &|name| value(name).map(str::to_owned))?);
    let content = fill(template, D::HTML, &|name| value(name).map(escape_html))?;
    let html = fill(template, LAYOUT_HTML, &|name| match name {
        "content" => Some(content.clone()),
        "email_subject" => Some(escape_html(&subject)),
        _ => value(name).map(escape_html),
    })?;
    Ok(Rendered { subject, text, html })
}

/// `source` with every `{{name}}` replaced by `value(name)` (already escaped as the output
/// needs) and every `{{#name}}…{{/name}}` section kept only when `name` has a non-empty value.
fn fill(template: TemplateName, source: &str, value: &dyn Fn(&str) -> Option<String>) -> Result<String, RenderError> {
    let mut out = String::with_capacity(source.len() + source.len() / 2);
    let mut rest = source;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| unknown(template, after))?;
        let tag = after[..end].trim();
        rest = &after[end + 2..];
        if let Some(section) = tag.strip_prefix('#') {
            let close = format!("{{{{/{section}}}}}");
            let inner_end = rest.find(&close).ok_or_else(|| unknown(template, tag))?;
            if value(section).is_some_and(|v| !v.is_empty()) {
                out.push_str(&fill(template, &rest[..inner_end], value)?);
            }
            rest = &rest[inner_end + close.len()..];
        } else {
            out.push_str(&value(tag).ok_or_else(|| unknown(template, tag))?);
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn unknown(template: TemplateName, name: &str) -> RenderError {
    RenderError::Placeholder { template, name: name.chars().take(40).collect() }
}

/// `text` safe to place in HTML text and in quoted attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A subject on one line: control characters (CR and LF above all, which would start a new
/// header) become spaces, runs of spaces collapse, and it is cut at 200 characters.
fn one_line(subject: &str) -> String {
    let spaced: String = subject.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    spaced.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(200).collect()
}

#[cfg(test)]
mod tests;
