//! Inbound webhook secrets: `STRIPE_WEBHOOK_SECRETS`, `CLERK_WEBHOOK_SECRET`,
//! `SUPABASE_WEBHOOK_SECRET`. A provider whose secret is unset is not configured: its
//! webhook route answers 503. (Apple and Google are configured by their own variables.)

use super::contact::SigningKey;
use super::parse::Vars;
use super::{Secret, webhook_key};

/// The shortest secret accepted where the provider does not fix a format.
const MIN_SECRET_LEN: usize = 16;

/// What verifies each provider's webhooks; `None`: not configured.
#[derive(Clone, Debug, Default)]
pub struct InboundWebhookSettings {
    /// `STRIPE_WEBHOOK_SECRETS`: the endpoint secrets (`whsec_…`), several while one is
    /// rolled over; an event signed with any of them is accepted.
    pub stripe: Option<Vec<Secret>>,
    /// `CLERK_WEBHOOK_SECRET` (`whsec_<base64>`), as given and decoded.
    pub clerk: Option<SvixSecret>,
    /// `SUPABASE_WEBHOOK_SECRET`: the bearer token the database webhook sends.
    pub supabase: Option<Secret>,
}

/// A Svix endpoint secret: as given, and the HMAC key it stands for.
#[derive(Clone, Debug)]
pub struct SvixSecret {
    /// As given (`whsec_…`).
    pub secret: Secret,
    /// The base64 after `whsec_`, decoded.
    pub key: SigningKey,
}

/// Reads the inbound webhook variables.
pub(super) fn settings(vars: &mut Vars<'_>) -> InboundWebhookSettings {
    let stripe = vars
        .optional("STRIPE_WEBHOOK_SECRETS", |v| {
            let secrets: Vec<&str> = v.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
            if secrets.is_empty() {
                return Err("must list at least one secret (comma-separated)".into());
            }
            if let Some(short) = secrets.iter().position(|s| s.len() < MIN_SECRET_LEN) {
                return Err(format!("secret number {} is shorter than {MIN_SECRET_LEN} characters", short + 1));
            }
            Ok(secrets.into_iter().map(Secret::new).collect())
        })
        .flatten();
    let clerk = vars
        .optional("CLERK_WEBHOOK_SECRET", |v| {
            if !v.starts_with("whsec_") {
                return Err("must be the endpoint's signing secret, whsec_<base64>".into());
            }
            webhook_key(v).map(|key| SvixSecret { secret: Secret::new(v), key: SigningKey(key) })
        })
        .flatten();
    let supabase = vars
        .optional("SUPABASE_WEBHOOK_SECRET", |v| {
            if v.len() < MIN_SECRET_LEN {
                return Err(format!("must be at least {MIN_SECRET_LEN} characters (e.g. `openssl rand -hex 32`)"));
            }
            if !v.bytes().all(|b| b.is_ascii_graphic()) {
                return Err("must be visible ASCII without spaces (it is sent in a header)".into());
            }
            Ok(Secret::new(v))
        })
        .flatten();
    InboundWebhookSettings { stripe, clerk, supabase }
}

impl InboundWebhookSettings {
    /// Every inbound webhook variable as `(VARIABLE, value)`, secrets redacted.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let redacted = |set: bool| if set { "[REDACTED]".to_owned() } else { String::new() };
        vec![
            (
                "STRIPE_WEBHOOK_SECRETS",
                self.stripe.as_ref().map(|s| vec!["[REDACTED]"; s.len()].join(",")).unwrap_or_default(),
            ),
            ("CLERK_WEBHOOK_SECRET", redacted(self.clerk.is_some())),
            ("SUPABASE_WEBHOOK_SECRET", redacted(self.supabase.is_some())),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> (InboundWebhookSettings, Vec<String>) {
        let map: std::collections::HashMap<String, String> =
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let lookup = move |name: &str| map.get(name).cloned();
        let mut vars = Vars::new(&lookup);
        let settings = settings(&mut vars);
        (settings, vars.into_problems())
    }

    #[test]
    fn nothing_set_configures_no_provider() {
        let (settings, problems) = read(&[]);
        assert!(problems.is_empty());
        assert!(settings.stripe.is_none() && settings.clerk.is_none() && settings.supabase.is_none());
    }

    #[test]
    fn stripe_takes_a_comma_list_for_rotation() {
        let (settings, problems) =
            read(&[("STRIPE_WEBHOOK_SECRETS", " whsec_first_secret_value , whsec_second_secret_value,")]);
        assert!(problems.is_empty(), "{problems:?}");
        let secrets = settings.stripe.unwrap();
        assert_eq!(
            secrets.iter().map(Secret::expose).collect::<Vec<_>>(),
            ["whsec_first_secret_value", "whsec_second_secret_value"]
        );
        let (_, problems) = read(&[("STRIPE_WEBHOOK_SECRETS", "whsec_long_enough_value,short")]);
        assert!(problems[0].starts_with("STRIPE_WEBHOOK_SECRETS: secret number 2"), "{problems:?}");
        let (_, problems) = read(&[("STRIPE_WEBHOOK_SECRETS", ",,")]);
        assert!(problems[0].starts_with("STRIPE_WEBHOOK_SECRETS: "), "{problems:?}");
    }

    #[test]
    fn bad_secrets_name_their_variable_and_never_print() {
        let (_, problems) =
            read(&[("CLERK_WEBHOOK_SECRET", "not-a-svix-secret-at-all"), ("SUPABASE_WEBHOOK_SECRET", "short")]);
        assert!(problems.iter().any(|p| p.starts_with("CLERK_WEBHOOK_SECRET: ")), "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("SUPABASE_WEBHOOK_SECRET: ")), "{problems:?}");
        let (_, problems) = read(&[("CLERK_WEBHOOK_SECRET", "whsec_!!!")]);
        assert!(problems[0].starts_with("CLERK_WEBHOOK_SECRET: "), "{problems:?}");
        let (settings, problems) = read(&[
            ("CLERK_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            ("SUPABASE_WEBHOOK_SECRET", "a-long-supabase-bearer-secret"),
            ("STRIPE_WEBHOOK_SECRETS", "whsec_first_secret_value"),
        ]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(settings.clerk.as_ref().unwrap().key.0.len(), 24);
        let shown = format!("{settings:?} {:?}", settings.describe());
        for secret in ["MfKQ9r8G", "a-long-supabase", "whsec_first"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
