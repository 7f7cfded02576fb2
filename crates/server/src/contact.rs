//! The public contact form: validated submissions stored with the jobs they cause (emails,
//! the CRM webhook) in one transaction, spam caught quietly, an optional captcha, a per-IP
//! budget, and what admins do with the submissions.
//!
//! | module | what |
//! |---|---|
//! | [`form`] | the fields and their rules (lengths, odd characters, required by configuration) |
//! | [`submit`] | the submission: budget, spam rules, captcha, store + enqueue; the status route |
//! | [`captcha`] | server-side verification with hCaptcha, reCAPTCHA v3 or Turnstile |
//! | [`reference`] | `CNT-XXXXXXXX` reference ids from the OS RNG |
//! | [`webhook`] | the `contact_webhook` job: a Standard Webhooks delivery to the CRM |
//! | [`admin`] | list, read and triage submissions (admins) |

pub mod admin;
pub mod captcha;
pub mod form;
pub mod reference;
pub mod submit;
pub mod webhook;

pub use captcha::CaptchaVerifier;
pub use form::ContactForm;
pub use submit::{ContactDeps, ContactStatus, Origin, Receipt, contact_status, submit};
pub use webhook::ContactWebhook;
