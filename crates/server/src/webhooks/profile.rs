//! The profile values a user-directory webhook (Clerk, Supabase) may set, cleaned as the
//! token claims are: a value that does not look right is left out, never invented.

use serde_json::Value;

use crate::auth::external::ExternalIdentity;
use crate::jobs::JobError;

/// Longest email address accepted (RFC 5321 path limit).
const MAX_EMAIL_CHARS: usize = 254;
/// Names are cut to this many characters.
const MAX_NAME_CHARS: usize = 255;
/// Longest provider user id accepted.
const MAX_SUBJECT_CHARS: usize = 255;

/// The identity of a user-directory record, `provider` + `subject` and what it says.
pub(super) fn identity(
    provider: &'static str,
    subject: &str,
    email: Option<&str>,
    email_verified: bool,
    full_name: Option<String>,
    avatar_url: Option<&str>,
) -> Result<ExternalIdentity, JobError> {
    let subject = checked_subject(subject)?;
    let email = email.map(str::trim).filter(|e| is_email(e)).map(str::to_lowercase);
    Ok(ExternalIdentity {
        provider,
        subject,
        email_verified: email_verified && email.is_some(),
        email,
        full_name: full_name
            .map(|n| n.trim().chars().take(MAX_NAME_CHARS).collect::<String>())
            .filter(|n| !n.is_empty() && n.chars().all(|c| crate::contact::form::allowed(c, false))),
        avatar_url: avatar_url.map(str::trim).filter(|u| crate::users::check_avatar_url(u).is_ok()).map(str::to_owned),
        role: None,
        session_id: None,
    })
}

/// A provider user id: 1 to 255 visible ASCII characters, else the event is unusable.
pub(super) fn checked_subject(subject: &str) -> Result<String, JobError> {
    if subject.is_empty() || subject.len() > MAX_SUBJECT_CHARS || !subject.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(JobError::Permanent(anyhow::anyhow!("the event's user id is missing or malformed")));
    }
    Ok(subject.to_owned())
}

/// The string at `path` in `value`, if it is one.
pub(super) fn text<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(value, |v, key| v.get(key))?.as_str()
}

fn is_email(value: &str) -> bool {
    value.chars().count() <= MAX_EMAIL_CHARS
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        && value.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
}
