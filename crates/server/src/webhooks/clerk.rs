//! Clerk's user directory kept in sync: `user.created` and `user.updated` provision or update
//! the account linked to the Clerk user id (the `sub` of Clerk's session tokens, so a user
//! seen first by webhook and later by token is one account), `user.deleted` deactivates it.
//! Other event types are ignored. The rules are those of token sign-in
//! ([`crate::users::sync_external_identity`]): only a verified primary email becomes the
//! account's email, and a deactivated account is never reactivated by an update.

use futures::future::BoxFuture;
use serde_json::Value;

use super::process::{Processor, StoredEvent};
use super::profile::{self, text};
use crate::admin::users::deactivate_external;
use crate::jobs::{JobContext, JobError};
use crate::users::sync_external_identity;

/// The provider name of Clerk identities.
const PROVIDER: &str = "clerk";

/// Processes Clerk's `user.*` events.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClerkUsers;

impl Processor for ClerkUsers {
    fn process<'a>(&'a self, ctx: &'a JobContext, event: &'a StoredEvent) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let data = &event.payload["data"];
            match event.event_type.as_str() {
                "user.created" | "user.updated" => {
                    let identity = identity(data)?;
                    let (user, created) = sync_external_identity(&ctx.db, identity, false).await.map_err(retry)?;
                    tracing::info!(user.id = %user.id, created, "account synced from a Clerk webhook");
                    Ok(())
                }
                "user.deleted" => {
                    let subject = profile::checked_subject(text(data, &["id"]).unwrap_or_default())?;
                    deactivate_external(&ctx.db, PROVIDER, &subject).await.map_err(retry)?;
                    Ok(())
                }
                _ => Ok(()),
            }
        })
    }
}

/// The identity a Clerk user object describes: its primary email (verified when its
/// verification status is `verified`), `first_name` + `last_name`, `image_url`.
fn identity(user: &Value) -> Result<crate::auth::external::ExternalIdentity, JobError> {
    let primary_id = text(user, &["primary_email_address_id"]);
    let primary = user["email_addresses"]
        .as_array()
        .and_then(|addresses| addresses.iter().find(|a| primary_id.is_some() && text(a, &["id"]) == primary_id));
    let email = primary.and_then(|a| text(a, &["email_address"]));
    let verified = primary.and_then(|a| text(a, &["verification", "status"])) == Some("verified");
    let name = [text(user, &["first_name"]), text(user, &["last_name"])]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    profile::identity(
        PROVIDER,
        text(user, &["id"]).unwrap_or_default(),
        email,
        verified,
        Some(name),
        text(user, &["image_url"]),
    )
}

fn retry(err: crate::error::Error) -> JobError {
    JobError::Retry(anyhow::anyhow!("{err}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_primary_email_is_verified_only_by_its_own_verification() {
        let user = json!({
            "id": "user_2abc",
            "primary_email_address_id": "idn_2",
            "email_addresses": [
                {"id": "idn_1", "email_address": "old@example.com", "verification": {"status": "verified"}},
                {"id": "idn_2", "email_address": "Ada@Example.com", "verification": {"status": "unverified"}},
            ],
            "first_name": "Ada", "last_name": " Lovelace ",
            "image_url": "https://img.clerk.com/ada.png",
        });
        let identity = identity(&user).unwrap();
        assert_eq!(identity.subject, "user_2abc");
        assert_eq!(identity.email.as_deref(), Some("ada@example.com"));
        assert!(!identity.email_verified);
        assert_eq!(identity.full_name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(identity.avatar_url.as_deref(), Some("https://img.clerk.com/ada.png"));
        assert_eq!(identity.role, None, "webhooks never set roles");
    }

    #[test]
    fn odd_values_are_left_out_and_a_missing_id_is_permanent() {
        let user = json!({"id": "user_1", "first_name": "\u{202e}evil", "image_url": "javascript:alert(1)",
            "primary_email_address_id": "idn_1", "email_addresses": [{"id": "idn_1", "email_address": "not an email"}]});
        let identity = identity(&user).unwrap();
        assert_eq!((identity.email, identity.full_name, identity.avatar_url), (None, None, None));
        assert!(matches!(self::identity(&json!({"first_name": "A"})), Err(JobError::Permanent(_))));
        assert!(matches!(self::identity(&json!({"id": "a b"})), Err(JobError::Permanent(_))));
    }
}
