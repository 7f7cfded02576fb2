//! The contact form's fields and their rules. Every problem is reported at once, by field.
//!
//! Maximum lengths count characters as sent; then text is trimmed (Unicode white space) and
//! minimum lengths count what is left. Control characters (line breaks and tabs are allowed
//! inside the message only) and invisible formatting characters (bidirectional overrides and
//! isolates, zero-width spaces, byte-order marks, interlinear annotations, the noncharacters
//! U+FDD0–U+FDEF, U+FFFE and U+FFFF) are refused, so nothing can reorder or hide text in an
//! admin's inbox or a CRM, or inject headers through the subject line. The OpenAPI schema
//! (`api::v1::contact::ContactRequest`) states the same rules as `maxLength` and `pattern`.

use crate::accounts;
use crate::config::ContactSettings;
use crate::error::{Error, FieldError, Result};

/// `name`: characters.
pub const NAME: (usize, usize) = (2, 100);
/// `message`: characters.
pub const MESSAGE: (usize, usize) = (10, 5000);
/// `subject`: at most.
pub const SUBJECT_MAX: usize = 200;
/// `phone`: at most.
pub const PHONE_MAX: usize = 50;
/// `phone`: how many digits.
pub const PHONE_DIGITS: (usize, usize) = (5, 20);
/// `company`: at most.
pub const COMPANY_MAX: usize = 200;
/// `source`: at most.
pub const SOURCE_MAX: usize = 100;
/// `website` (the honeypot): at most.
pub const WEBSITE_MAX: usize = 500;
/// `captcha_token`: at most.
pub const CAPTCHA_TOKEN_MAX: usize = 4096;

/// A submission as received (every field optional here, so every problem is reported).
#[derive(Clone, Debug, Default)]
pub struct ContactForm {
    /// The sender's name.
    pub name: Option<String>,
    /// The sender's address.
    pub email: Option<String>,
    /// The message.
    pub message: Option<String>,
    /// Subject line.
    pub subject: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// Company.
    pub company: Option<String>,
    /// Where the form was (a page or a campaign).
    pub source: Option<String>,
    /// The honeypot: hidden from people, filled in by bots.
    pub website: Option<String>,
    /// When the form was shown, in unix seconds.
    pub form_started_at: Option<i64>,
    /// The captcha widget's token.
    pub captcha_token: Option<String>,
}

/// A submission whose fields passed every rule (trimmed; empty optional fields are `None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidForm {
    /// 2–100 characters.
    pub name: String,
    /// Normalised (trimmed, lowercased).
    pub email: String,
    /// 10–5000 characters, line breaks kept.
    pub message: String,
    /// At most 200 characters.
    pub subject: Option<String>,
    /// 5 to 20 digits, with spaces and `+ - ( ) . x X`.
    pub phone: Option<String>,
    /// At most 200 characters.
    pub company: Option<String>,
    /// At most 100 characters.
    pub source: Option<String>,
    /// Whether the honeypot was filled in.
    pub honeypot_filled: bool,
    /// See [`ContactForm::form_started_at`].
    pub form_started_at: Option<i64>,
    /// See [`ContactForm::captcha_token`].
    pub captcha_token: Option<String>,
}

impl ContactForm {
    /// Checks every field; a 422 naming each bad one otherwise.
    pub fn validate(self, settings: &ContactSettings) -> Result<ValidForm> {
        let mut problems = Vec::new();
        let mut field = |name: &'static str, value: Option<String>, rule: Rule| {
            let too_long = value.as_deref().and_then(|raw| FieldError::too_long(name, raw, rule.max));
            match too_long.map_or_else(|| check(value, rule).map_err(|m| FieldError::new(name, m)), Err) {
                Ok(value) => value,
                Err(problem) => {
                    problems.push(problem);
                    None
                }
            }
        };
        let name = field("name", self.name, Rule::line(NAME.0, NAME.1).required());
        let email = field("email", self.email, Rule::line(1, 254).required());
        let message = field("message", self.message, Rule::text(MESSAGE.0, MESSAGE.1).required());
        let subject = field("subject", self.subject, Rule::line(1, SUBJECT_MAX).required_if(settings.require_subject));
        let phone = field("phone", self.phone, Rule::line(1, PHONE_MAX).required_if(settings.require_phone));
        let company = field("company", self.company, Rule::line(1, COMPANY_MAX));
        let source = field("source", self.source, Rule::line(1, SOURCE_MAX));
        let website = field("website", self.website, Rule::any(WEBSITE_MAX));
        let captcha_token = field("captcha_token", self.captcha_token, Rule::any(CAPTCHA_TOKEN_MAX));
        let email = email.and_then(|raw| match accounts::normalize_email(&raw) {
            Ok(email) => Some(email),
            Err(message) => {
                problems.push(FieldError::new("email", message));
                None
            }
        });
        if let Some(phone) = &phone
            && let Err(message) = check_phone(phone)
        {
            problems.push(FieldError::new("phone", message));
        }
        match (name, email, message) {
            (Some(name), Some(email), Some(message)) if problems.is_empty() => Ok(ValidForm {
                name,
                email,
                message,
                subject,
                phone,
                company,
                source,
                honeypot_filled: website.is_some(),
                form_started_at: self.form_started_at,
                captcha_token,
            }),
            _ => Err(Error::Validation(problems)),
        }
    }
}

/// How one text field is checked.
#[derive(Clone, Copy, Debug)]
struct Rule {
    min: usize,
    max: usize,
    required: bool,
    multiline: bool,
    /// Any characters, no trimming rules beyond the length (the honeypot, the captcha token).
    opaque: bool,
}

impl Rule {
    fn line(min: usize, max: usize) -> Rule {
        Rule { min, max, required: false, multiline: false, opaque: false }
    }

    fn text(min: usize, max: usize) -> Rule {
        Rule { multiline: true, ..Rule::line(min, max) }
    }

    fn any(max: usize) -> Rule {
        Rule { opaque: true, ..Rule::line(0, max) }
    }

    fn required(self) -> Rule {
        Rule { required: true, ..self }
    }

    fn required_if(self, required: bool) -> Rule {
        Rule { required, ..self }
    }
}

/// The trimmed value (`None` when absent or blank), or what is wrong with it (the maximum
/// length is checked before, on the value as sent).
fn check(value: Option<String>, rule: Rule) -> Result<Option<String>, String> {
    let value = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let Some(value) = value else {
        return if rule.required { Err("field required".into()) } else { Ok(None) };
    };
    if !rule.opaque {
        if let Some(odd) = value.chars().find(|c| !allowed(*c, rule.multiline)) {
            return Err(format!(
                "must not contain control or invisible formatting characters (found U+{:04X})",
                odd as u32
            ));
        }
        if value.chars().count() < rule.min {
            return Err(format!("must be at least {} characters", rule.min));
        }
    } else if value.contains('\0') {
        return Err("must not contain NUL characters".into());
    }
    Ok(Some(value))
}

/// Whether `c` may appear in a trimmed text field (the admin console applies the same rule).
pub(crate) fn allowed(c: char, multiline: bool) -> bool {
    if c.is_control() {
        return multiline && matches!(c, '\n' | '\r' | '\t');
    }
    !matches!(c,
        '\u{200B}' | '\u{2028}' | '\u{2029}' | '\u{FEFF}'
        | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FFF9}'..='\u{FFFB}'
        | '\u{FDD0}'..='\u{FDEF}' | '\u{FFFE}' | '\u{FFFF}')
}

/// A phone number: digits with the usual separators, and an `x` before an extension.
fn check_phone(phone: &str) -> Result<(), String> {
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    let separators =
        phone.chars().all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '(' | ')' | '.' | 'x' | 'X'));
    if separators && (PHONE_DIGITS.0..=PHONE_DIGITS.1).contains(&digits) {
        Ok(())
    } else {
        Err(format!(
            "must be a phone number: {} to {} digits, with spaces, +, -, (, ), . or x",
            PHONE_DIGITS.0, PHONE_DIGITS.1
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ContactSettings {
        ContactSettings {
            notify_email: None,
            send_confirmation: false,
            require_subject: false,
            require_phone: false,
            min_fill_seconds: 3,
            captcha: None,
            webhook: None,
        }
    }

    fn form() -> ContactForm {
        ContactForm {
            name: Some("  Ada Lovelace ".into()),
            email: Some("Ada@Example.com".into()),
            message: Some("Hello,\nI would like a demo.".into()),
            ..ContactForm::default()
        }
    }

    fn fields(result: Result<ValidForm>) -> Vec<(String, String)> {
        match result {
            Err(Error::Validation(fields)) => fields.into_iter().map(|f| (f.field, f.message)).collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_form_is_trimmed_and_normalised() {
        let valid = ContactForm { subject: Some("  ".into()), ..form() }.validate(&settings()).unwrap();
        assert_eq!(valid.name, "Ada Lovelace");
        assert_eq!(valid.email, "ada@example.com");
        assert_eq!(valid.subject, None, "blank optional fields are absent");
        assert!(!valid.honeypot_filled);
    }

    #[test]
    fn every_problem_is_reported_by_field() {
        let bad = ContactForm {
            name: Some("A".into()),
            email: Some("not-an-email".into()),
            message: Some("short".into()),
            subject: Some("s".repeat(SUBJECT_MAX + 1)),
            phone: Some("call me".into()),
            ..ContactForm::default()
        };
        let names: Vec<String> = fields(bad.validate(&settings())).into_iter().map(|(f, _)| f).collect();
        assert_eq!(names, ["name", "message", "subject", "email", "phone"]);
        let missing: Vec<String> =
            fields(ContactForm::default().validate(&settings())).into_iter().map(|(f, _)| f).collect();
        assert_eq!(missing, ["name", "email", "message"]);
    }

    #[test]
    fn required_subject_and_phone_follow_the_configuration() {
        let strict = ContactSettings { require_subject: true, require_phone: true, ..settings() };
        let names: Vec<String> = fields(form().validate(&strict)).into_iter().map(|(f, _)| f).collect();
        assert_eq!(names, ["subject", "phone"]);
        let complete =
            ContactForm { subject: Some("Demo".into()), phone: Some("+44 (20) 7946-0958 x12".into()), ..form() };
        assert!(complete.validate(&strict).is_ok());
    }

    #[test]
    fn control_and_invisible_characters_are_refused() {
        for odd in
            ["Ada\0Lovelace", "Ada\u{202E}ecalevol", "Ada\u{200B}", "Ada\u{FEFF}x", "Ada\u{2066}x", "Ada\rLovelace"]
        {
            let result = ContactForm { name: Some(odd.into()), ..form() }.validate(&settings());
            assert_eq!(fields(result)[0].0, "name", "{odd:?}");
        }
        let subject_break = ContactForm { subject: Some("Hi\nBcc: x@example.com".into()), ..form() };
        assert_eq!(fields(subject_break.validate(&settings()))[0].0, "subject");
        let nul_message = ContactForm { message: Some("Hello there\0 friend".into()), ..form() };
        assert_eq!(fields(nul_message.validate(&settings()))[0].0, "message");
        let nul_honeypot = ContactForm { website: Some("\0".into()), ..form() };
        assert_eq!(fields(nul_honeypot.validate(&settings()))[0].0, "website");
        let noncharacter = ContactForm { company: Some("Acme\u{FFFF}".into()), ..form() };
        assert_eq!(fields(noncharacter.validate(&settings()))[0].0, "company");
    }

    #[test]
    fn ordinary_unicode_and_line_breaks_in_the_message_are_kept() {
        let valid = ContactForm {
            name: Some("Zoë Ångström-Łukasiewicz 李".into()),
            message: Some("Bonjour,\r\n\tmerci ! 👩‍💻 שלום".into()),
            ..form()
        }
        .validate(&settings())
        .unwrap();
        assert_eq!(valid.name, "Zoë Ångström-Łukasiewicz 李");
        assert!(valid.message.contains("👩‍💻"));
    }

    #[test]
    fn a_phone_number_has_5_to_20_digits() {
        for (phone, ok) in [
            ("1234", false),
            ("12345", true),
            ("+1 (234) 5", true),
            ("1".repeat(20).as_str(), true),
            ("1".repeat(21).as_str(), false),
            ("+44 (20) 7946-0958 x12345678", true),
            ("+44 (20) 7946-0958 x123456789", false),
            ("0".repeat(PHONE_MAX - 1).as_str(), false),
            ("12345 ext", false),
            ("١٢٣٤٥", false),
        ] {
            let result = ContactForm { phone: Some(phone.into()), ..form() }.validate(&settings());
            assert_eq!(result.is_ok(), ok, "{phone:?}");
        }
    }

    #[test]
    fn maximum_lengths_count_the_value_as_sent_and_minimums_the_trimmed_value() {
        let padded = format!(" {} ", "a".repeat(NAME.1 - 2));
        assert_eq!(ContactForm { name: Some(padded), ..form() }.validate(&settings()).unwrap().name.len(), NAME.1 - 2);
        let over = ContactForm { name: Some(format!("{} ", "a".repeat(NAME.1))), ..form() };
        assert_eq!(fields(over.validate(&settings()))[0], ("name".into(), "must be at most 100 characters".into()));
        let short = ContactForm { name: Some(" \tA\n ".into()), ..form() };
        assert_eq!(fields(short.validate(&settings()))[0], ("name".into(), "must be at least 2 characters".into()));
        let honeypot = ContactForm { website: Some(" ".repeat(WEBSITE_MAX + 1)), ..form() };
        assert_eq!(fields(honeypot.validate(&settings()))[0].0, "website");
    }

    #[test]
    fn white_space_around_a_line_is_trimmed_even_when_it_is_a_control_character() {
        let valid =
            ContactForm { name: Some("\u{85}\tAda\r\n\u{2028}".into()), ..form() }.validate(&settings()).unwrap();
        assert_eq!(valid.name, "Ada");
        let inside = ContactForm { name: Some("Ada\u{2028}Lovelace".into()), ..form() };
        assert_eq!(fields(inside.validate(&settings()))[0].0, "name");
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        let at_limit = ContactForm { name: Some("é".repeat(NAME.1)), ..form() };
        assert!(at_limit.validate(&settings()).is_ok());
        let over = ContactForm { message: Some("é".repeat(MESSAGE.1 + 1)), ..form() };
        assert_eq!(fields(over.validate(&settings()))[0], ("message".into(), "must be at most 5000 characters".into()));
    }
}
