//! Supabase database webhooks: `Authorization: Bearer <SUPABASE_WEBHOOK_SECRET>` (set as an
//! HTTP header of the webhook in the Supabase dashboard), compared in constant time; a wrong
//! or missing bearer is 401.
//!
//! The payload (`{type, table, schema, record, old_record}`) carries no event id and no
//! commit time, so the event id is `sha256:<hex of the body>`: a redelivery of the same body
//! is stored once, and two changes of one row differ in the row (its `updated_at`), so they
//! never collide. The event type is `<schema>.<table>.<INSERT|UPDATE|DELETE>`.
//!
//! [`SupabaseUsers`] keeps accounts in sync with `auth.users`: INSERT and UPDATE provision or
//! update the account linked to the row's `id` (the `sub` of Supabase's tokens); DELETE, or an
//! UPDATE that sets `deleted_at` (a soft delete), deactivates it. Other tables are ignored.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use futures::future::BoxFuture;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::process::{Processor, StoredEvent};
use super::profile::{self, text};
use crate::admin::users::deactivate_external;
use crate::config::Secret;
use crate::error::{Error, Result};
use crate::jobs::{JobContext, JobError};
use crate::users::sync_external_identity;

/// The provider name of Supabase identities.
const PROVIDER: &str = "supabase";
/// The operations a database webhook reports.
const OPERATIONS: [&str; 3] = ["INSERT", "UPDATE", "DELETE"];
/// Longest schema or table name (PostgreSQL's identifier limit).
const MAX_IDENTIFIER: usize = 63;

/// Checks the bearer; 401 unless it is the secret.
pub fn verify(secret: &Secret, headers: &HeaderMap) -> Result<()> {
    let sent = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .unwrap_or_default();
    // Hashing first makes the comparison's time independent of the lengths, too.
    let matches: bool = Sha256::digest(sent.as_bytes()).ct_eq(&Sha256::digest(secret.expose().as_bytes())).into();
    if matches { Ok(()) } else { Err(Error::Authentication("the webhook bearer secret is missing or wrong".into())) }
}

/// The event id and type of a payload (see the module documentation); 422 when it is not a
/// database webhook's payload.
pub fn event_id_and_type(body: &[u8], payload: &Value) -> Result<(String, String)> {
    let identifier = |key: &str| {
        text(payload, &[key])
            .filter(|v| !v.is_empty() && v.len() <= MAX_IDENTIFIER && v.bytes().all(|b| b.is_ascii_graphic()))
    };
    let (Some(schema), Some(table), Some(operation)) =
        (identifier("schema"), identifier("table"), text(payload, &["type"]).filter(|t| OPERATIONS.contains(t)))
    else {
        return Err(Error::Validation(vec![crate::error::FieldError::new(
            "body",
            "must be a database webhook payload: schema, table and type (INSERT, UPDATE or DELETE)",
        )]));
    };
    Ok((format!("sha256:{}", hex::encode(Sha256::digest(body))), format!("{schema}.{table}.{operation}")))
}

/// Processes `auth.users` changes.
#[derive(Clone, Copy, Debug, Default)]
pub struct SupabaseUsers;

impl Processor for SupabaseUsers {
    fn process<'a>(&'a self, ctx: &'a JobContext, event: &'a StoredEvent) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let payload = &event.payload;
            let deleted = |record: &Value| record.get("deleted_at").is_some_and(|d| !d.is_null());
            match event.event_type.as_str() {
                "auth.users.INSERT" | "auth.users.UPDATE" if !deleted(&payload["record"]) => {
                    let identity = identity(&payload["record"])?;
                    let (user, created) = sync_external_identity(&ctx.db, identity, false).await.map_err(retry)?;
                    tracing::info!(user.id = %user.id, created, "account synced from a Supabase webhook");
                    Ok(())
                }
                "auth.users.UPDATE" | "auth.users.DELETE" => {
                    let record =
                        if event.event_type.ends_with("DELETE") { &payload["old_record"] } else { &payload["record"] };
                    let subject = profile::checked_subject(text(record, &["id"]).unwrap_or_default())?;
                    deactivate_external(&ctx.db, PROVIDER, &subject).await.map_err(retry)?;
                    Ok(())
                }
                _ => Ok(()),
            }
        })
    }
}

/// The identity an `auth.users` row describes: `email` (verified when `email_confirmed_at`
/// is set), `raw_user_meta_data.full_name` or `.name`, `.avatar_url` or `.picture`.
fn identity(record: &Value) -> Result<crate::auth::external::ExternalIdentity, JobError> {
    let meta = &record["raw_user_meta_data"];
    let confirmed = record.get("email_confirmed_at").is_some_and(|c| c.as_str().is_some_and(|c| !c.trim().is_empty()));
    profile::identity(
        PROVIDER,
        text(record, &["id"]).unwrap_or_default(),
        text(record, &["email"]),
        confirmed,
        text(meta, &["full_name"]).or_else(|| text(meta, &["name"])).map(str::to_owned),
        text(meta, &["avatar_url"]).or_else(|| text(meta, &["picture"])),
    )
}

fn retry(err: Error) -> JobError {
    JobError::Retry(anyhow::anyhow!("{err}"))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use serde_json::json;

    use super::*;

    #[test]
    fn only_the_exact_bearer_passes() {
        let secret = Secret::new("a-long-supabase-bearer-secret");
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            headers
        };
        assert!(verify(&secret, &with("Bearer a-long-supabase-bearer-secret")).is_ok());
        for bad in ["Bearer a-long-supabase-bearer-secreT", "Bearer ", "a-long-supabase-bearer-secret", "Basic eA=="] {
            assert!(matches!(verify(&secret, &with(bad)), Err(Error::Authentication(_))), "{bad}");
        }
        assert!(verify(&secret, &HeaderMap::new()).is_err());
    }

    #[test]
    fn the_event_id_is_the_body_hash_and_the_type_names_the_table() {
        let payload = json!({"type": "UPDATE", "schema": "auth", "table": "users", "record": {"id": "u1"}});
        let body = serde_json::to_vec(&payload).unwrap();
        let (id, kind) = event_id_and_type(&body, &payload).unwrap();
        assert_eq!(kind, "auth.users.UPDATE");
        assert_eq!(id, format!("sha256:{}", hex::encode(Sha256::digest(&body))));
        for bad in
            [json!({"type": "TRUNCATE", "schema": "auth", "table": "users"}), json!({"type": "INSERT"}), json!([])]
        {
            assert!(matches!(event_id_and_type(b"{}", &bad), Err(Error::Validation(_))), "{bad}");
        }
    }

    #[test]
    fn a_confirmed_email_is_verified() {
        let record = json!({"id": "8d0fa0a5-0000-4000-8000-000000000001", "email": "Grace@Example.com",
            "email_confirmed_at": "2026-01-01T00:00:00Z", "raw_user_meta_data": {"name": "Grace Hopper", "picture": "https://x.example/g.png"}});
        let identity = identity(&record).unwrap();
        assert_eq!((identity.email.as_deref(), identity.email_verified), (Some("grace@example.com"), true));
        assert_eq!(identity.full_name.as_deref(), Some("Grace Hopper"));
        let unconfirmed = identity_of(json!({"id": "x", "email": "g@example.com", "email_confirmed_at": null}));
        assert!(!unconfirmed.email_verified);
    }

    fn identity_of(record: Value) -> crate::auth::external::ExternalIdentity {
        identity(&record).unwrap()
    }
}
