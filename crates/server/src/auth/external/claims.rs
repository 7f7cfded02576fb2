//! The profile a verified token describes: email, name, avatar, session and (only through
//! `AUTH_ROLE_CLAIM`) a role. Providers spell these differently; the first usable spelling
//! wins. Nothing is invented: a value that does not look right is left out.
//!
//! An email counts as verified only when a claim the provider's own server sets vouches for
//! it where it was found (see [`EMAIL_CLAIMS`]); `user_metadata` is writable by the user at
//! Supabase, so nothing read there is ever verified.

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

/// Where avatars are looked for, in order (Clerk's `image_url` last).
const AVATAR_CLAIMS: [&[&str]; 5] =
    [&["picture"], &["avatar_url"], &["user_metadata", "avatar_url"], &["user_metadata", "picture"], &["image_url"]];

/// Where emails are looked for, in order, with what may vouch for each.
const EMAIL_CLAIMS: [(&[&str], Vouchers); 3] = [
    (&["email"], Vouchers::Provider),
    (&["user_metadata", "email"], Vouchers::Nobody),
    (&["app_metadata", "email"], Vouchers::Claims(&[Voucher::Flag(&["app_metadata", "email_verified"])])),
];

/// The claims that may say an email is verified.
#[derive(Clone, Copy)]
enum Vouchers {
    /// The provider's own verification claims ([`provider_vouchers`]).
    Provider,
    /// These claims.
    Claims(&'static [Voucher]),
    /// Nothing: the value is writable by the user.
    Nobody,
}

/// One claim that may say an email is verified.
#[derive(Clone, Copy)]
enum Voucher {
    /// A boolean (`true` or `"true"` yes, `false` or `"false"` no).
    Flag(&'static [&'static str]),
    /// A confirmation time: present (a non-blank string or a positive number) means yes.
    Time(&'static [&'static str]),
}

/// The top-level claims with which each provider says its `email` is verified: OIDC's
/// standard `email_verified`; at Clerk, the session-token claims an operator adds
/// (`email_verified`, `primary_email_verified`); at Supabase, claims added by a custom access
/// token hook (`email_verified`, or the `email_confirmed_at` time).
fn provider_vouchers(provider: &str) -> &'static [Voucher] {
    match provider {
        "clerk" => &[Voucher::Flag(&["email_verified"]), Voucher::Flag(&["primary_email_verified"])],
        "supabase" => &[Voucher::Flag(&["email_verified"]), Voucher::Time(&["email_confirmed_at"])],
        _ => &[Voucher::Flag(&["email_verified"])],
    }
}

/// The identity described by verified `claims`.
pub(super) fn identity(
    provider: &'static str,
    subject: String,
    claims: &Value,
    role_claim: Option<&RoleClaim>,
) -> ExternalIdentity {
    let found = EMAIL_CLAIMS.iter().find_map(|(path, vouchers)| {
        text(at(claims, path)).filter(|email| looks_like_email(email)).zip(Some(*vouchers))
    });
    let email = found.map(|(email, _)| email.to_owned());
    let email_verified = found.is_some_and(|(_, vouchers)| vouched(provider, claims, vouchers));
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

/// Whether some voucher says yes and none says no.
fn vouched(provider: &str, claims: &Value, vouchers: Vouchers) -> bool {
    let vouchers = match vouchers {
        Vouchers::Provider => provider_vouchers(provider),
        Vouchers::Claims(vouchers) => vouchers,
        Vouchers::Nobody => return false,
    };
    let said: Vec<bool> = vouchers.iter().filter_map(|voucher| says_verified(claims, *voucher)).collect();
    said.contains(&true) && !said.contains(&false)
}

/// What one voucher says, if it is present and not `null`.
fn says_verified(claims: &Value, voucher: Voucher) -> Option<bool> {
    match voucher {
        Voucher::Flag(path) => match at(claims, path)? {
            Value::Null => None,
            Value::Bool(flag) => Some(*flag),
            Value::String(flag) => Some(flag.trim().eq_ignore_ascii_case("true")),
            _ => Some(false),
        },
        Voucher::Time(path) => match at(claims, path)? {
            Value::Null => None,
            Value::String(time) => Some(!time.trim().is_empty()),
            Value::Number(time) => Some(time.as_f64().is_some_and(|t| t > 0.0)),
            _ => Some(false),
        },
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

#[cfg(test)]
mod tests;
