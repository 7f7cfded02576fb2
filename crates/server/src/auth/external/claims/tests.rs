//! Claim extraction: the order profile claims are read in, which claims vouch for an email,
//! and that nothing is invented.

use serde_json::{Value, json};

use super::identity;
use crate::auth::external::ExternalIdentity;
use crate::config::RoleClaim;

fn identity_of(claims: Value) -> ExternalIdentity {
    identity("oidc", "user_1".into(), &claims, None)
}

fn identity_with_role(claims: Value, path: &str) -> ExternalIdentity {
    identity("oidc", "user_1".into(), &claims, Some(&RoleClaim::new(path).unwrap()))
}

#[test]
fn profile_claims_are_read_in_order() {
    let full = identity_of(json!({
        "email": "  Ada@Example.com ", "email_verified": true,
        "name": "Ada Lovelace", "full_name": "Full", "user_metadata": {"full_name": "Meta", "name": "M", "avatar_url": "https://m/a.png", "picture": "https://m/p.png"},
        "given_name": "Ada", "family_name": "L",
        "picture": "https://cdn.example/p.png", "avatar_url": "https://cdn.example/a.png", "image_url": "https://img.clerk.com/i",
        "sid": "sess_1", "session_id": "s2",
    }));
    assert_eq!(full.email.as_deref(), Some("Ada@Example.com"));
    assert!(full.email_verified);
    assert_eq!(full.full_name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(full.avatar_url.as_deref(), Some("https://cdn.example/p.png"));
    assert_eq!(full.session_id.as_deref(), Some("sess_1"));
    assert_eq!(full.role, None);

    let steps = [
        (json!({"name": " ", "full_name": "Full"}), "Full"),
        (json!({"user_metadata": {"full_name": "Meta Full", "name": "Meta"}}), "Meta Full"),
        (json!({"user_metadata": {"name": "Meta"}, "given_name": "G"}), "Meta"),
        (json!({"given_name": "Grace", "family_name": "Hopper"}), "Grace Hopper"),
        (json!({"family_name": "Hopper"}), "Hopper"),
    ];
    for (claims, name) in steps {
        assert_eq!(identity_of(claims.clone()).full_name.as_deref(), Some(name), "{claims}");
    }
    let avatars = [
        (json!({"picture": "javascript:alert(1)", "avatar_url": "https://a/1"}), "https://a/1"),
        (json!({"image_url": "https://img/2", "user_metadata": {"avatar_url": "https://m/3"}}), "https://m/3"),
        (json!({"image_url": "https://img/2", "user_metadata": {"picture": "https://m/5"}}), "https://m/5"),
        (json!({"image_url": "https://img/2", "user_metadata": {"picture": " "}}), "https://img/2"),
        (json!({"user_metadata": {"avatar_url": "data:image/png;base64,AAAA", "picture": "http://m/4"}}), "http://m/4"),
    ];
    for (claims, url) in avatars {
        assert_eq!(identity_of(claims.clone()).avatar_url.as_deref(), Some(url), "{claims}");
    }
    assert_eq!(identity_of(json!({"session_id": "s2"})).session_id.as_deref(), Some("s2"));
}

#[test]
fn every_profile_claim_follows_its_documented_order() {
    let emails = [
        (json!({"email": "a@top.example", "user_metadata": {"email": "b@meta.example"}}), "a@top.example"),
        (json!({"email": " ", "user_metadata": {"email": "b@meta.example"}}), "b@meta.example"),
        (
            json!({"user_metadata": {"email": "b@meta.example"}, "app_metadata": {"email": "c@app.example"}}),
            "b@meta.example",
        ),
        (json!({"user_metadata": {"email": ""}, "app_metadata": {"email": "c@app.example"}}), "c@app.example"),
    ];
    for (claims, email) in emails {
        assert_eq!(identity_of(claims.clone()).email.as_deref(), Some(email), "{claims}");
    }
    let names = [
        (json!({"name": "N", "full_name": "F", "user_metadata": {"full_name": "MF", "name": "MN"}}), "N"),
        (json!({"full_name": "F", "user_metadata": {"full_name": "MF", "name": "MN"}}), "F"),
        (json!({"user_metadata": {"full_name": "MF", "name": "MN"}}), "MF"),
        (json!({"user_metadata": {"full_name": "", "name": "MN"}}), "MN"),
    ];
    for (claims, name) in names {
        assert_eq!(identity_of(claims.clone()).full_name.as_deref(), Some(name), "{claims}");
    }
    let avatars = [
        (json!({"picture": "https://p", "avatar_url": "https://a"}), "https://p"),
        (json!({"picture": "", "avatar_url": "https://a"}), "https://a"),
        (
            json!({"avatar_url": " ", "user_metadata": {"avatar_url": "https://m/a", "picture": "https://m/p"}}),
            "https://m/a",
        ),
        (json!({"user_metadata": {"picture": "https://m/p"}, "image_url": "https://i"}), "https://m/p"),
    ];
    for (claims, url) in avatars {
        assert_eq!(identity_of(claims.clone()).avatar_url.as_deref(), Some(url), "{claims}");
    }
}

fn verified(provider: &'static str, claims: Value) -> bool {
    let identity = identity(provider, "user_1".into(), &claims, None);
    assert!(identity.email.is_some(), "{claims}");
    identity.email_verified
}

#[test]
fn an_email_is_verified_only_where_the_provider_vouches_for_it() {
    let top = |extra: Value| {
        let mut claims = json!({"email": "ada@example.com"});
        claims.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        claims
    };
    for provider in ["oidc", "clerk", "supabase"] {
        assert!(verified(provider, top(json!({"email_verified": true}))), "{provider}");
        assert!(!verified(provider, top(json!({"email_verified": false}))), "{provider}");
        assert!(!verified(provider, top(json!({}))), "{provider}: no claim is no verification");
        assert!(!verified(provider, top(json!({"email_verified": null}))), "{provider}");
        assert!(!verified(provider, top(json!({"email_verified": "yes"}))), "{provider}");
        // user_metadata is writable by the user at Supabase: it never vouches.
        assert!(!verified(provider, top(json!({"user_metadata": {"email_verified": true}}))), "{provider}");
        let meta = json!({"user_metadata": {"email": "b@example.com", "email_verified": true}, "email_verified": true});
        assert!(!verified(provider, meta), "{provider}: an email from user_metadata is never verified");
        let app = json!({"app_metadata": {"email": "c@example.com", "email_verified": true}, "email_verified": true});
        assert!(verified(provider, app), "{provider}: app_metadata is set by the provider's server");
        let app = json!({"app_metadata": {"email": "c@example.com"}, "email_verified": true});
        assert!(!verified(provider, app), "{provider}: the top-level claim vouches for the top-level email only");
    }
    assert!(verified("clerk", top(json!({"primary_email_verified": true}))));
    assert!(verified("clerk", top(json!({"primary_email_verified": "true", "email_verified": null}))));
    assert!(!verified("clerk", top(json!({"primary_email_verified": true, "email_verified": false}))), "a no wins");
    assert!(!verified("oidc", top(json!({"primary_email_verified": true}))), "not an OIDC claim");
    assert!(verified("supabase", top(json!({"email_confirmed_at": "2024-05-01T10:00:00Z"}))));
    assert!(verified("supabase", top(json!({"email_confirmed_at": 1_714_557_600}))));
    assert!(!verified("supabase", top(json!({"email_confirmed_at": ""}))));
    assert!(!verified("supabase", top(json!({"email_confirmed_at": null}))));
    assert!(!verified("oidc", top(json!({"email_confirmed_at": "2024-05-01T10:00:00Z"}))), "not an OIDC claim");
}

#[test]
fn nothing_is_invented() {
    let empty = identity_of(json!({}));
    assert_eq!(
        empty,
        ExternalIdentity {
            provider: "oidc",
            subject: "user_1".into(),
            email: None,
            email_verified: false,
            full_name: None,
            avatar_url: None,
            role: None,
            session_id: None,
        }
    );
    for email in ["", "ada", "ada@", "@example.com", "ada@localhost", "a b@example.com", "a@b@example.com", "a@.com"] {
        let identity = identity_of(json!({"email": email, "email_verified": true}));
        assert_eq!(identity.email, None, "{email:?}");
        assert!(!identity.email_verified, "verified without an email: {email:?}");
    }
    assert_eq!(identity_of(json!({"email": 42})).email, None);
    assert!(!identity_of(json!({"email": "a@b.co", "email_verified": "no"})).email_verified);
    assert!(identity_of(json!({"email": "a@b.co", "email_verified": "true"})).email_verified);
    assert_eq!(identity_of(json!({"picture": "/relative.png"})).avatar_url, None);
    assert_eq!(identity_of(json!({"picture": "ftp://host/x.png"})).avatar_url, None);
}

#[test]
fn lengths_are_capped() {
    let long_email = format!("{}@example.com", "a".repeat(243));
    assert_eq!(long_email.len(), 255);
    assert_eq!(identity_of(json!({"email": long_email})).email, None);
    let max_email = &long_email[1..];
    assert_eq!(identity_of(json!({"email": max_email})).email.as_deref(), Some(max_email));

    let name = identity_of(json!({"name": format!("{}\u{0}x", "é".repeat(300))})).full_name.unwrap();
    assert_eq!(name.chars().count(), 255);
    assert!(name.chars().all(|c| c == 'é'));

    let long_url = format!("https://cdn.example/{}", "p".repeat(2048));
    let fallback = identity_of(json!({"picture": long_url, "avatar_url": "https://cdn.example/ok"}));
    assert_eq!(fallback.avatar_url.as_deref(), Some("https://cdn.example/ok"));
}

#[test]
fn roles_come_only_from_the_configured_claim_and_only_known_names() {
    let claims = json!({
        "role": "authenticated",
        "app_metadata": {"role": "admin"},
        "public_metadata": {"role": "super_admin"},
        "user_metadata": {"role": "super_admin"},
        "https://example.com/role": "admin",
    });
    assert_eq!(identity_of(claims.clone()).role, None);
    assert_eq!(identity_with_role(claims.clone(), "app_metadata.role").role.as_deref(), Some("admin"));
    assert_eq!(identity_with_role(claims.clone(), "public_metadata.role").role.as_deref(), Some("super_admin"));
    assert_eq!(identity_with_role(claims.clone(), "https://example.com/role").role.as_deref(), Some("admin"));
    assert_eq!(identity_with_role(claims.clone(), "role").role, None, "`authenticated` is not a role here");
    assert_eq!(identity_with_role(claims.clone(), "app_metadata.missing").role, None);
    assert_eq!(identity_with_role(json!({"role": ["admin"]}), "role").role, None);
    assert_eq!(identity_with_role(json!({"role": "Admin"}), "role").role, None);
    assert_eq!(identity_with_role(json!({"role": "user"}), "role").role.as_deref(), Some("user"));
}
