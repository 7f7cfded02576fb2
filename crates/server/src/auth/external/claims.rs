//! The profile a verified token describes: email, name, avatar, session and (only through
//! `AUTH_ROLE_CLAIM`) a role. Providers spell these differently; the first usable spelling
//! wins. Nothing is invented: a value that does not look right is left out.

use serde_json::Value;

use super::ExternalIdentity;
use crate::config::RoleClaim;

/// Longest email address accepted (RFC 5321 path limit).
const MAX_EMAIL_CHARS: usize = 254;
/// Names are cut to this many characters.
const MAX_NAME_CHARS: usize = 255;
/// Longest avatar URL accepted.
const MAX_AVATAR_CHARS: usize = 2048;
/// Longest session id accepted.
const MAX_SESSION_ID_CHARS: usize = 255;

/// Roles a token may carry.
const ROLES: [&str; 3] = ["user", "admin", "super_admin"];

/// Where names are looked for, in order.
const NAME_CLAIMS: [&[&str]; 4] =
    [&["name"], &["full_name"], &["user_metadata", "full_name"], &["user_metadata", "name"]];

/// Where avatars are looked for, in order.
const AVATAR_CLAIMS: [&[&str]; 5] =
    [&["picture"], &["avatar_url"], &["image_url"], &["user_metadata", "avatar_url"], &["user_metadata", "picture"]];

/// The identity described by verified `claims`.
pub(super) fn identity(
    provider: &'static str,
    subject: String,
    claims: &Value,
    role_claim: Option<&RoleClaim>,
) -> ExternalIdentity {
    let email = text(claims.get("email")).filter(|email| looks_like_email(email)).map(str::to_owned);
    let email_verified = email.is_some() && is_true(claims.get("email_verified"));
    ExternalIdentity {
        provider,
        subject,
        email,
        email_verified,
        full_name: full_name(claims),
        avatar_url: AVATAR_CLAIMS
            .iter()
            .filter_map(|path| text(at(claims, path)))
            .find(|url| is_avatar_url(url))
            .map(str::to_owned),
        role: role_claim.and_then(|claim| role(claims, claim)),
        session_id: ["sid", "session_id"]
            .iter()
            .filter_map(|name| text(claims.get(*name)))
            .find(|sid| sid.chars().count() <= MAX_SESSION_ID_CHARS)
            .map(str::to_owned),
    }
}

/// The value at a path of object keys.
fn at<'a>(claims: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(claims, |value, key| value.get(key))
}

/// A non-blank string, trimmed.
fn text(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

fn is_true(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(flag)) => *flag,
        Some(Value::String(flag)) => flag.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// `local@domain.tld` without spaces or control characters, within the length limit.
fn looks_like_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.chars().count() <= MAX_EMAIL_CHARS
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
}

/// The first name claim present, else given and family names joined; control characters
/// removed, cut to the length limit.
fn full_name(claims: &Value) -> Option<String> {
    let named = NAME_CLAIMS.iter().find_map(|path| text(at(claims, path))).map(str::to_owned);
    let name = named.or_else(|| {
        let parts: Vec<&str> =
            ["given_name", "family_name"].iter().filter_map(|name| text(claims.get(*name))).collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    })?;
    let clean: String = name.chars().filter(|c| !c.is_control()).take(MAX_NAME_CHARS).collect();
    let clean = clean.trim();
    (!clean.is_empty()).then(|| clean.to_owned())
}

/// An absolute http(s) URL with a host, within the length limit.
fn is_avatar_url(url: &str) -> bool {
    url.len() <= MAX_AVATAR_CHARS
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
        && reqwest::Url::parse(url).is_ok_and(|parsed| {
            matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some_and(|h| !h.is_empty())
        })
}

/// The role at the configured claim: a claim named exactly by the path (namespaced claims
/// such as `https://example.com/role`), else the dotted path; only a known role name counts.
fn role(claims: &Value, claim: &RoleClaim) -> Option<String> {
    let value = claims.get(claim.path()).or_else(|| claim.segments().try_fold(claims, |value, key| value.get(key)))?;
    let role = value.as_str()?.trim();
    ROLES.contains(&role).then(|| role.to_owned())
}
