use serde_json::{Value, json};

use super::*;

fn ctx() -> TemplateContext {
    TemplateContext { project_name: "Acme & Co".into(), frontend_url: "https://app.acme.test".into() }
}

/// Every required field of each template (the rest are optional).
fn required(name: TemplateName) -> &'static [&'static str] {
    match name {
        TemplateName::Welcome => &["name"],
        TemplateName::VerifyEmail | TemplateName::PasswordReset => &["link"],
        TemplateName::Notification => &["title", "body"],
        TemplateName::ContactAdmin => &["reference_id", "name", "email", "message"],
        TemplateName::ContactConfirmation => &["name", "reference_id"],
        TemplateName::DailyReport => &["period", "signups", "active_users", "jobs_failed", "jobs_dead"],
        TemplateName::ExportReady => &["job_id"],
        TemplateName::PaymentFailed => &["plan"],
    }
}

#[test]
fn every_template_renders_its_sample_data_with_the_project_name_and_frontend_url() {
    for name in TemplateName::ALL {
        let rendered = render(name, &sample(name), &ctx()).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert!(!rendered.subject.is_empty() && !rendered.subject.contains(['\r', '\n']), "{name}");
        assert!(!rendered.subject.contains("{{") && !rendered.text.contains("{{") && !rendered.html.contains("{{"));
        assert!(rendered.text.contains("Acme & Co") && rendered.text.contains("https://app.acme.test"), "{name}");
        assert!(rendered.html.contains("Acme &amp; Co") && !rendered.html.contains("Acme & Co"), "{name}");
        assert!(rendered.html.contains("href=\"https://app.acme.test\""), "{name}");
        assert!(rendered.html.starts_with("<!DOCTYPE html>"), "{name}");
    }
}

#[test]
fn every_template_renders_with_only_its_required_fields() {
    for name in TemplateName::ALL {
        let full = sample(name);
        let minimal: serde_json::Map<String, Value> =
            required(name).iter().map(|field| (field.to_string(), full[*field].clone())).collect();
        let rendered = render(name, &Value::Object(minimal), &ctx()).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert!(!rendered.html.contains("{{") && !rendered.text.contains("{{"), "{name}");
    }
}

#[test]
fn a_missing_required_field_is_an_error_naming_it_never_a_panic() {
    for name in TemplateName::ALL {
        for field in required(name) {
            let mut data = sample(name);
            data.as_object_mut().unwrap().remove(*field);
            let err = render(name, &data, &ctx()).expect_err(&format!("{name} without {field}"));
            assert!(matches!(err, RenderError::Data { template, .. } if template == name), "{err}");
            assert!(err.to_string().contains(field), "{name}: {err}");
        }
        for junk in [Value::Null, json!("text"), json!([1, 2]), json!(42)] {
            assert!(render(name, &junk, &ctx()).is_err(), "{name} with {junk}");
        }
    }
    let wrong_type = json!({"period": "today", "signups": "many", "active_users": 1, "jobs_failed": 0, "jobs_dead": 0});
    assert!(render(TemplateName::DailyReport, &wrong_type, &ctx()).unwrap_err().to_string().contains("invalid type"));
}

#[test]
fn user_data_is_escaped_in_html_and_kept_as_given_in_plain_text() {
    let attack = "<script>alert('x')</script> & \"quoted\"";
    let data = json!({
        "reference_id": "CNT-1", "name": attack, "email": "a@example.com", "message": attack, "subject": attack,
    });
    let rendered = render(TemplateName::ContactAdmin, &data, &ctx()).unwrap();
    assert!(!rendered.html.contains("<script>"), "{}", rendered.html);
    assert!(rendered.html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quoted&quot;"));
    assert!(rendered.text.contains(attack), "{}", rendered.text);
    for name in [TemplateName::Welcome, TemplateName::ContactConfirmation] {
        let data = json!({"name": attack, "reference_id": "CNT-1"});
        let rendered = render(name, &data, &ctx()).unwrap();
        assert!(!rendered.html.contains("<script>") && rendered.html.contains("&lt;script&gt;"), "{name}");
        assert!(rendered.text.contains("<script>alert('x')</script>"), "{name}");
    }
    let notification = json!({"title": "<b>Hi</b>", "body": "<img src=x onerror=alert(1)>"});
    let rendered = render(TemplateName::Notification, &notification, &ctx()).unwrap();
    assert!(!rendered.html.contains("<img") && !rendered.html.contains("<b>Hi"), "{}", rendered.html);
    assert!(rendered.html.contains("<title>&lt;b&gt;Hi&lt;/b&gt;</title>"), "{}", rendered.html);
}

#[test]
fn the_escaper_covers_text_and_attribute_contexts() {
    assert_eq!(
        escape_html(r#"<a href="x" title='y'>&</a>"#),
        "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
    );
    assert_eq!(escape_html("plain ünïcödé"), "plain ünïcödé");
}

#[test]
fn links_must_be_http_urls_so_no_script_link_is_ever_mailed() {
    for link in ["javascript:alert(1)", "/relative", "https://ok.test/a b", "https://ok.test/\r\nBcc: x"] {
        let err = render(TemplateName::PasswordReset, &json!({ "link": link }), &ctx()).unwrap_err();
        assert!(err.to_string().contains("link must be an http(s) URL"), "{link}: {err}");
        let notification = json!({"title": "t", "body": "b", "link": link});
        assert!(render(TemplateName::Notification, &notification, &ctx()).is_err(), "{link}");
    }
    let link = "https://app.acme.test/reset-password?token=abc&x=1";
    let rendered = render(TemplateName::PasswordReset, &json!({ "link": link }), &ctx()).unwrap();
    assert!(rendered.text.contains(link));
    assert!(rendered.html.contains("href=\"https://app.acme.test/reset-password?token=abc&amp;x=1\""));
}

#[test]
fn subjects_stay_on_one_line_whatever_the_data_holds() {
    let data = json!({"title": "Hello\r\nBcc: victim@example.com\tnow", "body": "b"});
    let rendered = render(TemplateName::Notification, &data, &ctx()).unwrap();
    assert_eq!(rendered.subject, "Hello Bcc: victim@example.com now");
    let long = json!({"title": "x".repeat(500), "body": "b"});
    assert_eq!(render(TemplateName::Notification, &long, &ctx()).unwrap().subject.chars().count(), 200);
}

#[test]
fn optional_sections_appear_only_with_a_value() {
    let mut data = sample(TemplateName::ContactAdmin);
    let with = render(TemplateName::ContactAdmin, &data, &ctx()).unwrap();
    assert!(with.text.contains("Phone:     +44 20 7946 0958") && with.subject.ends_with(": Team plan"));
    data["phone"] = json!("  ");
    data.as_object_mut().unwrap().remove("subject");
    let without = render(TemplateName::ContactAdmin, &data, &ctx()).unwrap();
    assert!(!without.text.contains("Phone:") && !without.html.contains(">Phone<"), "{}", without.text);
    assert_eq!(without.subject, "[Acme & Co] Contact CNT-7Q2K9XHM from Ada Lovelace");
    let welcome = render(TemplateName::Welcome, &json!({"name": ""}), &ctx()).unwrap();
    assert!(welcome.text.starts_with("Hi,\n"), "{}", welcome.text);
}

#[test]
fn template_names_are_snake_case_on_the_wire_and_parse_back() {
    for name in TemplateName::ALL {
        assert_eq!(serde_json::to_value(name).unwrap(), json!(name.as_str()));
        assert_eq!(name.as_str().parse::<TemplateName>().unwrap(), name);
    }
    let err = "nope".parse::<TemplateName>().unwrap_err();
    assert!(err.contains("welcome, verify_email, password_reset"), "{err}");
}

#[test]
fn an_unknown_placeholder_is_an_error_not_an_empty_string() {
    let err = fill(TemplateName::Welcome, "Hi {{nobody}}", &|_| None).unwrap_err();
    assert!(matches!(err, RenderError::Placeholder { ref name, .. } if name == "nobody"), "{err}");
    assert!(fill(TemplateName::Welcome, "{{#open}} never closed", &|_| Some("x".into())).is_err());
    assert!(fill(TemplateName::Welcome, "dangling {{", &|_| None).is_err());
}
