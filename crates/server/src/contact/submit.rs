//! A submission's path: the fields' rules, the per-IP budget (`contact` class), the spam
//! rules, the captcha, then the row and the jobs it causes in one transaction. And the status
//! route's answer, which reads the budget without spending it.
//!
//! Spam (a filled honeypot, or a form sent sooner than `CONTACT_MIN_FILL_SECONDS` after
//! `form_started_at`, or dated in the future) gets the same answer as a real submission, so a
//! bot learns nothing; it is stored as `spam` and causes nothing.

use chrono::Utc;
use omnistack_db::contact::{self as db_contact, ContactSubmission, NewContactSubmission};
use omnistack_db::{Db, DbError};

use super::captcha::CaptchaVerifier;
use super::form::{ContactForm, ValidForm};
use super::reference::new_reference;
use super::webhook::{ContactSubmitted, ContactWebhook, WebhookArgs};
use crate::config::ContactSettings;
use crate::error::{Error, Result};
use crate::jobs::kinds::enqueue_email;
use crate::jobs::{Enqueue, Jobs};
use crate::mail::{ContactAdmin, ContactConfirmation, MailMessage};
use crate::rate_limit::{LimitClass, RateDecision, RateLimiter};

/// What the sender is told on success (and on spam).
pub const THANKS: &str = "Thank you for your message. We will get back to you soon.";

/// The longest user agent kept, in bytes.
const MAX_USER_AGENT: usize = 512;

/// What a submission needs.
#[derive(Clone, Copy, Debug)]
pub struct ContactDeps<'a> {
    /// Where submissions are stored.
    pub db: &'a Db,
    /// Where their emails and webhook deliveries are enqueued.
    pub jobs: &'a Jobs,
    /// The per-IP budget.
    pub limiter: &'a RateLimiter,
    /// The captcha, when one is configured.
    pub captcha: &'a CaptchaVerifier,
    /// `CONTACT_*`.
    pub settings: &'a ContactSettings,
}

/// Where a submission comes from.
#[derive(Clone, Copy, Debug)]
pub struct Origin<'a> {
    /// The client's address (see `rate_limit::client_ip`).
    pub ip: &'a str,
    /// Its `User-Agent`, if any.
    pub user_agent: Option<&'a str>,
}

/// The answer to a submission, real or spam alike.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// `CNT-XXXXXXXX`.
    pub reference_id: String,
}

/// What the form's page needs to know before it is sent.
#[derive(Clone, Debug)]
pub struct ContactStatus {
    /// Whether this client may send a form now.
    pub available: bool,
    /// This client's budget in the `contact` class.
    pub rate_limit: RateDecision,
    /// `CONTACT_REQUIRE_SUBJECT`.
    pub require_subject: bool,
    /// `CONTACT_REQUIRE_PHONE`.
    pub require_phone: bool,
    /// The captcha provider, when one is required.
    pub captcha_provider: Option<&'static str>,
    /// Its public site key.
    pub captcha_site_key: Option<String>,
}

/// Takes a submission: see the module documentation for the order of the checks.
pub async fn submit(deps: ContactDeps<'_>, form: ContactForm, origin: Origin<'_>) -> Result<Receipt> {
    let form = form.validate(deps.settings)?;
    let decision = deps.limiter.check(LimitClass::Contact, origin.ip).await;
    if !decision.allowed {
        return Err(Error::RateLimited(decision));
    }
    if let Some(reason) = spam_reason(&form, deps.settings.min_fill_seconds, Utc::now().timestamp()) {
        let stored = store(deps, &form, origin, Some(reason)).await?;
        tracing::info!(
            contact.reference_id = stored.reference_id,
            contact.spam_reason = reason,
            "contact form spam stored"
        );
        return Ok(Receipt { reference_id: stored.reference_id });
    }
    if let Err(err) = deps.captcha.verify(form.captcha_token.as_deref(), origin.ip).await {
        // The provider's outage is not the sender's doing: it costs no budget. A failed
        // captcha does (it is what a bot sends).
        if matches!(err, Error::ExternalService(_)) {
            deps.limiter.refund(LimitClass::Contact, origin.ip).await;
        }
        return Err(err);
    }
    let stored = store(deps, &form, origin, None).await?;
    deps.jobs.wake();
    Ok(Receipt { reference_id: stored.reference_id })
}

/// The client's budget and the form's requirements; spends nothing.
pub async fn contact_status(deps: ContactDeps<'_>, ip: &str) -> ContactStatus {
    let rate_limit = deps.limiter.peek(LimitClass::Contact, ip).await;
    let captcha = deps.captcha.settings();
    ContactStatus {
        available: rate_limit.allowed,
        rate_limit,
        require_subject: deps.settings.require_subject,
        require_phone: deps.settings.require_phone,
        captcha_provider: captcha.map(|c| c.provider.as_str()),
        captcha_site_key: captcha.and_then(|c| c.site_key.clone()),
    }
}

/// Why a form is spam, if it is: a filled honeypot, or sent too soon after it was shown.
fn spam_reason(form: &ValidForm, min_fill_seconds: u64, now: i64) -> Option<&'static str> {
    if form.honeypot_filled {
        return Some("honeypot");
    }
    let started = form.form_started_at?;
    let elapsed = now.saturating_sub(started);
    (elapsed < 0 || elapsed.unsigned_abs() < min_fill_seconds).then_some("too_fast")
}

/// Stores the submission and, unless it is spam, enqueues what it causes in the same
/// transaction. A reference id that is already taken is drawn again.
async fn store(
    deps: ContactDeps<'_>,
    form: &ValidForm,
    origin: Origin<'_>,
    spam: Option<&'static str>,
) -> Result<ContactSubmission> {
    // `to_str` only yields visible ASCII, so any byte offset is a character boundary; the
    // caller passes such a string.
    let user_agent = origin.user_agent.map(|ua| &ua[..ua.len().min(MAX_USER_AGENT)]);
    for _ in 0..3 {
        let reference_id = new_reference()?;
        let new = NewContactSubmission {
            reference_id: &reference_id,
            name: &form.name,
            email: &form.email,
            subject: form.subject.as_deref(),
            message: &form.message,
            phone: form.phone.as_deref(),
            company: form.company.as_deref(),
            source: form.source.as_deref(),
            status: if spam.is_some() { "spam" } else { "new" },
            spam_reason: spam,
            ip_address: Some(origin.ip),
            user_agent,
        };
        let mut tx = deps.db.begin().await?;
        let stored = match db_contact::insert_submission(&mut tx, &new).await {
            Ok(stored) => stored,
            Err(DbError::Conflict(_)) => continue,
            Err(err) => return Err(err.into()),
        };
        if spam.is_none() {
            enqueue_effects(deps, &mut tx, &stored).await?;
        }
        tx.commit().await?;
        return Ok(stored);
    }
    Err(Error::Internal(anyhow::anyhow!("three reference ids in a row were taken")))
}

/// The admin's email, the sender's receipt and the CRM webhook, as configured.
async fn enqueue_effects(deps: ContactDeps<'_>, tx: &mut omnistack_db::Tx, row: &ContactSubmission) -> Result<()> {
    let settings = deps.settings;
    match &settings.notify_email {
        Some(to) => {
            let data = ContactAdmin {
                reference_id: row.reference_id.clone(),
                name: row.name.clone(),
                email: row.email.clone(),
                message: row.message.clone(),
                subject: row.subject.clone(),
                phone: row.phone.clone(),
                company: row.company.clone(),
                source: row.source.clone(),
            };
            let key = Some(format!("contact_admin:{}", row.id));
            enqueue_email(deps.jobs, &mut *tx, &MailMessage::new(to.as_str(), &data), key).await?;
        }
        None => tracing::warn!(
            contact.reference_id = row.reference_id,
            "contact submission stored; nobody is notified (set CONTACT_NOTIFY_EMAIL or ADMIN_EMAIL)"
        ),
    }
    if settings.send_confirmation {
        let data = ContactConfirmation { name: row.name.clone(), reference_id: row.reference_id.clone() };
        let key = Some(format!("contact_confirmation:{}", row.id));
        enqueue_email(deps.jobs, &mut *tx, &MailMessage::new(row.email.as_str(), &data), key).await?;
    }
    if settings.webhook.is_some() {
        let args = WebhookArgs { submission_id: row.id, data: ContactSubmitted::from(row) };
        let options = Enqueue { unique_key: Some(format!("contact_webhook:{}", row.id)), ..Enqueue::default() };
        deps.jobs.enqueue::<ContactWebhook>(&mut *tx, &args, options).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(honeypot_filled: bool, form_started_at: Option<i64>) -> ValidForm {
        ValidForm {
            name: "Ada".into(),
            email: "ada@example.com".into(),
            message: "Hello there".into(),
            subject: None,
            phone: None,
            company: None,
            source: None,
            honeypot_filled,
            form_started_at,
            captcha_token: None,
        }
    }

    #[test]
    fn a_filled_honeypot_or_a_hurried_or_future_form_is_spam() {
        let now = 1_000_000;
        assert_eq!(spam_reason(&form(false, None), 3, now), None);
        assert_eq!(spam_reason(&form(false, Some(now - 3)), 3, now), None);
        assert_eq!(spam_reason(&form(false, Some(0)), 3, now), None, "a form left open long ago");
        assert_eq!(spam_reason(&form(true, Some(now - 60)), 3, now), Some("honeypot"));
        assert_eq!(spam_reason(&form(false, Some(now - 2)), 3, now), Some("too_fast"));
        assert_eq!(spam_reason(&form(false, Some(now + 5)), 3, now), Some("too_fast"), "in the future");
        assert_eq!(spam_reason(&form(false, Some(now + 5)), 0, now), Some("too_fast"));
        assert_eq!(spam_reason(&form(false, Some(i64::MIN)), 3, now), None);
    }
}
