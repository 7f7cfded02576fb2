//! Settings of the service's own accounts and tokens.

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
