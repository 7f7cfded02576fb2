//! `/public/contact*` (the contact form and its status) and `/admin/contact*` (submissions,
//! for admins).

use std::net::SocketAddr;

use crate::api::Routes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::header::USER_AGENT;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use omnistack_db::Db;
use omnistack_db::contact::ContactSubmission;
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use uuid::Uuid;

use crate::admin::audit::AuditContext;
use crate::auth::AdminUser;
use crate::contact::submit::THANKS;
use crate::contact::{self, ContactDeps, ContactForm, Origin, admin};
use crate::error::{ErrorBody, Result};
use crate::http::extract::{Json, Query};
use crate::rate_limit;
use crate::state::AppState;

/// The public contact routes, for the `public` group; submissions also spend the `contact`
/// budget (in the service, so the status route can read it for free).
pub fn routes() -> Routes {
    Routes::new().routes(routes!(submit_contact)).routes(routes!(contact_status))
}

/// The admin contact routes.
pub fn admin_routes() -> Routes {
    Routes::new().routes(routes!(list_submissions)).routes(routes!(get_submission, update_submission))
}

/// A contact-form submission. Unknown fields are refused. Maximum lengths count characters as
/// sent; text is then trimmed (Unicode white space), and minimum lengths count what is left.
/// Control characters (tabs and line breaks are allowed inside `message` only), zero-width
/// spaces, bidirectional overrides and isolates, byte-order marks, interlinear annotations and
/// the noncharacters U+FDD0–U+FDEF, U+FFFE and U+FFFF are refused; each `pattern` says the same.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactRequest {
    /// The sender's name: 2 to 100 characters once trimmed.
    #[schema(
        required,
        nullable = false,
        min_length = 2,
        max_length = 100,
        example = "Ada Lovelace",
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200b\u2028-\u202f\u205f\u2066-\u2069\u3000\ufdd0-\ufdef\ufeff\ufff9-\ufffb\ufffe\uffff][^\x00-\x1f\x7f-\x9f\u200b\u2028-\u202e\u2066-\u2069\ufdd0-\ufdef\ufeff\ufff9-\ufffb\ufffe\uffff]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200b\u2028-\u202f\u205f\u2066-\u2069\u3000\ufdd0-\ufdef\ufeff\ufff9-\ufffb\ufffe\uffff][\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub name: Option<String>,
    /// The sender's email address (trimmed and lowercased): one `@`, a dotted domain, no spaces
    /// or control characters.
    #[schema(
        required,
        nullable = false,
        max_length = 254,
        example = "ada@example.com",
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^@\x00-\x20\x7f-\xa0\u1680\u2000-\u200b\u2028-\u202f\u205f\u2066-\u2069\u3000\ufdd0-\ufdef\ufeff\ufff9-\ufffb\ufffe\uffff]+@[^@.\x00-\x20\x7f-\xa0\u1680\u2000-\u200b\u2028-\u202f\u205f\u2066-\u2069\u3000\ufdd0-\ufdef\ufeff\ufff9-\ufffb\ufffe\uffff][^@\x00-\x20\x7f-\xa0\u1680\u2000-\u200b\u2028-\u202f\u205f\u2066-\u2069\u3000\ufdd0-\ufdef\ufeff\ufff9-\ufffb\ufffe\uffff]*\.[^@\x00-\x20\x7f-\xa0\u1680\u2000-\u200b\u2028-\u202f\u205f\u2066-\u2069\u3000\ufdd0-\ufdef\ufeff\ufff9-\ufffb\ufffe\uffff]*[^@.\x00-\x20\x7f-\xa0\u1680\u2000-\u200b\u2028-\u202f\u205f\u2066-\u2069\u3000\ufdd0-\ufdef\ufeff\ufff9-\ufffb\ufffe\uffff][\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub email: Option<String>,
    /// The message: 10 to 5000 characters once trimmed; line breaks and tabs are kept.
    #[schema(
        required,
        nullable = false,
        min_length = 10,
        max_length = 5000,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200b\u2028-\u202f\u205f\u2066-\u2069\u3000\ufdd0-\ufdef\ufeff\ufff9-\ufffb\ufffe\uffff][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u2028-\u202e\u2066-\u2069\ufdd0-\ufdef\ufeff\ufff9-\ufffb\ufffe\uffff]{8,}[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200b\u2028-\u202f\u205f\u2066-\u2069\u3000\ufdd0-\ufdef\ufeff\ufff9-\ufffb\ufffe\uffff][\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub message: Option<String>,
    /// Subject line, at most 200 characters; one line (required when `require_subject`; blank
    /// is none).
    #[schema(
        max_length = 200,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200b\u2028-\u202f\u205f\u2066-\u2069\u3000\ufdd0-\ufdef\ufeff\ufff9-\ufffb\ufffe\uffff](?:[^\x00-\x1f\x7f-\x9f\u200b\u2028-\u202e\u2066-\u2069\ufdd0-\ufdef\ufeff\ufff9-\ufffb\ufffe\uffff]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200b\u2028-\u202f\u205f\u2066-\u2069\u3000\ufdd0-\ufdef\ufeff\ufff9-\ufffb\ufffe\uffff])?[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)?$"
    )]
    pub subject: Option<String>,
    /// Phone number, at most 50 characters: 5 to 20 digits, with spaces and `+ - ( ) . x X`
    /// (required when `require_phone`; blank is none).
    #[schema(
        max_length = 50,
        example = "+44 20 7946 0958",
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:[ +\-().xX]*(?:[0-9][ +\-().xX]*){5,20}[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)?$"
    )]
    pub phone: Option<String>,
    /// Company, at most 200 characters; one line (blank is none).
    #[schema(
        max_length = 200,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200b\u2028-\u202f\u205f\u2066-\u2069\u3000\ufdd0-\ufdef\ufeff\ufff9-\ufffb\ufffe\uffff](?:[^\x00-\x1f\x7f-\x9f\u200b\u2028-\u202e\u2066-\u2069\ufdd0-\ufdef\ufeff\ufff9-\ufffb\ufffe\uffff]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200b\u2028-\u202f\u205f\u2066-\u2069\u3000\ufdd0-\ufdef\ufeff\ufff9-\ufffb\ufffe\uffff])?[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)?$"
    )]
    pub company: Option<String>,
    /// Where the form is (a page or a campaign), at most 100 characters; one line (blank is
    /// none).
    #[schema(
        max_length = 100,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200b\u2028-\u202f\u205f\u2066-\u2069\u3000\ufdd0-\ufdef\ufeff\ufff9-\ufffb\ufffe\uffff](?:[^\x00-\x1f\x7f-\x9f\u200b\u2028-\u202e\u2066-\u2069\ufdd0-\ufdef\ufeff\ufff9-\ufffb\ufffe\uffff]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200b\u2028-\u202f\u205f\u2066-\u2069\u3000\ufdd0-\ufdef\ufeff\ufff9-\ufffb\ufffe\uffff])?[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)?$"
    )]
    pub source: Option<String>,
    /// Honeypot: hide this field from people and leave it empty.
    #[schema(max_length = 500)]
    pub website: Option<String>,
    /// When the form was shown, in unix seconds.
    pub form_started_at: Option<i64>,
    /// The captcha widget's token (required when `captcha.provider` is set).
    #[schema(max_length = 4096)]
    pub captcha_token: Option<String>,
}

impl From<ContactRequest> for ContactForm {
    fn from(body: ContactRequest) -> Self {
        ContactForm {
            name: body.name,
            email: body.email,
            message: body.message,
            subject: body.subject,
            phone: body.phone,
            company: body.company,
            source: body.source,
            website: body.website,
            form_started_at: body.form_started_at,
            captcha_token: body.captcha_token,
        }
    }
}

/// A submission was received.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactResponse {
    /// Always true.
    pub success: bool,
    /// What to quote when following up.
    #[schema(example = "CNT-7Q2K9XHM", pattern = "^CNT-[2-9A-HJKMNP-Z]{8}$")]
    pub reference_id: String,
    /// A thank-you line to show.
    pub message: &'static str,
}

/// The caller's budget for submissions.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactRateLimit {
    /// Submissions allowed per window.
    pub limit: u32,
    /// Submissions left in this window.
    pub remaining: u32,
    /// When the window ends, unix seconds.
    pub reset: u64,
}

/// The captcha the form must carry.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactCaptcha {
    /// `hcaptcha`, `recaptcha`, `turnstile`, or null when no captcha is required.
    pub provider: Option<&'static str>,
    /// The provider's public site key for the widget.
    pub site_key: Option<String>,
}

/// What the form's page needs to know.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactStatusResponse {
    /// Whether the caller may send a form now.
    pub available: bool,
    /// The caller's budget (reading it spends nothing).
    pub rate_limit: ContactRateLimit,
    /// Whether `subject` is required.
    pub require_subject: bool,
    /// Whether `phone` is required.
    pub require_phone: bool,
    /// The captcha, if one is required.
    pub captcha: ContactCaptcha,
}

/// A stored submission, as admins see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactSubmissionResponse {
    /// Submission id.
    pub id: Uuid,
    /// `CNT-XXXXXXXX`.
    pub reference_id: String,
    /// The sender's name.
    pub name: String,
    /// The sender's address.
    pub email: String,
    /// Subject.
    pub subject: Option<String>,
    /// The message.
    pub message: String,
    /// Phone.
    pub phone: Option<String>,
    /// Company.
    pub company: Option<String>,
    /// Source.
    pub source: Option<String>,
    /// `new`, `read`, `replied`, `spam` or `archived`.
    pub status: String,
    /// Why it was taken for spam (`honeypot`, `too_fast`).
    pub spam_reason: Option<String>,
    /// The client's address.
    pub ip_address: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// When it arrived.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<ContactSubmission> for ContactSubmissionResponse {
    fn from(row: ContactSubmission) -> Self {
        ContactSubmissionResponse {
            id: row.id,
            reference_id: row.reference_id,
            name: row.name,
            email: row.email,
            subject: row.subject,
            message: row.message,
            phone: row.phone,
            company: row.company,
            source: row.source,
            status: row.status,
            spam_reason: row.spam_reason,
            ip_address: row.ip_address,
            user_agent: row.user_agent,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// A page of submissions.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactListResponse {
    /// The page, newest first.
    pub items: Vec<ContactSubmissionResponse>,
    /// Submissions matching the filter.
    pub total: i64,
    /// Submissions skipped.
    pub skip: i64,
    /// Page size.
    pub limit: i64,
}

/// Filter and page of the submission list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContactListParams {
    /// Only submissions with this status (`new`, `read`, `replied`, `spam`, `archived`);
    /// empty means every status.
    #[param(schema_with = status_filter_schema)]
    pub status: Option<String>,
    /// Submissions to skip (default 0).
    #[param(minimum = 0)]
    pub skip: Option<i64>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// A new status for a submission.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactStatusUpdate {
    /// `new`, `read`, `replied`, `spam` or `archived`.
    #[schema(schema_with = status_schema)]
    pub status: String,
}

/// A submission's status: one of [`admin::STATUSES`].
fn status_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("`new`, `read`, `replied`, `spam` or `archived`."))
        .enum_values(Some(admin::STATUSES))
        .examples(["read"])
        .build()
}

/// The list's status filter: one of [`admin::STATUSES`], or empty for every status.
fn status_filter_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("Only submissions with this status; empty means every status."))
        .enum_values(Some(std::iter::once("").chain(admin::STATUSES)))
        .build()
}

fn deps(state: &AppState) -> ContactDeps<'_> {
    ContactDeps {
        db: &state.db,
        jobs: &state.jobs,
        limiter: &state.limiter,
        captcha: &state.captcha,
        settings: &state.config.contact,
    }
}

/// Sends a message through the contact form. Spam is answered like a real submission.
#[utoipa::path(post, path = "/public/contact", tag = "contact", request_body = ContactRequest,
    responses(
        (status = CREATED, description = "Received; the reference id identifies it", body = ContactResponse),
        (status = BAD_REQUEST, description = "`CAPTCHA_FAILED`: the captcha token is missing, refused or scored too low; or `BAD_REQUEST`: the body is not JSON", body = ErrorBody),
        (status = PAYLOAD_TOO_LARGE, description = "The body exceeds `MAX_BODY_BYTES`", body = ErrorBody),
        (status = UNSUPPORTED_MEDIA_TYPE, description = "The body is not `application/json`", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "Invalid or unknown fields, named in `details.fields`", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Too many submissions from this address (`RATE_LIMIT_CONTACT`); see `Retry-After`", body = ErrorBody),
        (status = BAD_GATEWAY, description = "`EXTERNAL_SERVICE_ERROR`: the captcha provider could not be reached; nothing was stored", body = ErrorBody),
    ))]
pub async fn submit_contact(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(body): Json<ContactRequest>,
) -> Result<(StatusCode, Json<ContactResponse>)> {
    let ip = rate_limit::client_ip(peer, &headers, state.limiter.trusted_proxies()).to_string();
    let user_agent = headers.get(USER_AGENT).and_then(|v| v.to_str().ok());
    let origin = Origin { ip: &ip, user_agent };
    let receipt = contact::submit(deps(&state), body.into(), origin).await?;
    Ok((
        StatusCode::CREATED,
        Json(ContactResponse { success: true, reference_id: receipt.reference_id, message: THANKS }),
    ))
}

/// What the form needs: the caller's remaining budget (not spent by asking), required
/// fields and the captcha.
#[utoipa::path(get, path = "/public/contact/status", tag = "contact",
    responses(
        (status = OK, description = "The form's requirements and the caller's budget", body = ContactStatusResponse),
        (status = TOO_MANY_REQUESTS, description = "Too many requests from this address (`RATE_LIMIT_PUBLIC`)", body = ErrorBody),
    ))]
pub async fn contact_status(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Json<ContactStatusResponse> {
    let ip = rate_limit::client_ip(peer, &headers, state.limiter.trusted_proxies()).to_string();
    let status = contact::contact_status(deps(&state), &ip).await;
    Json(ContactStatusResponse {
        available: status.available,
        rate_limit: ContactRateLimit {
            limit: status.rate_limit.limit,
            remaining: status.rate_limit.remaining,
            reset: status.rate_limit.reset_at,
        },
        require_subject: status.require_subject,
        require_phone: status.require_phone,
        captcha: ContactCaptcha { provider: status.captcha_provider, site_key: status.captcha_site_key },
    })
}

/// Lists submissions, newest first.
#[utoipa::path(get, path = "/admin/contact", tag = "contact", params(ContactListParams), security(("bearer" = [])),
    responses(
        (status = OK, description = "A page of submissions", body = ContactListResponse),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin, or a deactivated account", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "A bad status filter or page", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn list_submissions(
    State(db): State<Db>,
    AdminUser(admin): AdminUser,
    Query(params): Query<ContactListParams>,
) -> Result<Json<ContactListResponse>> {
    let (skip, limit) = (params.skip.unwrap_or(0), params.limit.unwrap_or(20));
    let page = admin::list_submissions(&db, &admin, params.status.as_deref(), skip, limit).await?;
    let items = page.items.into_iter().map(ContactSubmissionResponse::from).collect();
    Ok(Json(ContactListResponse { items, total: page.total, skip, limit }))
}

/// One submission.
#[utoipa::path(get, path = "/admin/contact/{id}", tag = "contact", security(("bearer" = [])),
    params(("id" = String, Path, description = "Submission id", max_length = 36)),
    responses(
        (status = OK, description = "The submission", body = ContactSubmissionResponse),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin, or a deactivated account", body = ErrorBody),
        (status = NOT_FOUND, description = "No such submission (or a malformed id)", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn get_submission(
    State(db): State<Db>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
) -> Result<Json<ContactSubmissionResponse>> {
    Ok(Json(admin::find_submission(&db, &admin, &id).await?.into()))
}

/// Sets a submission's status.
#[utoipa::path(patch, path = "/admin/contact/{id}", tag = "contact", security(("bearer" = [])),
    request_body = ContactStatusUpdate,
    params(("id" = String, Path, description = "Submission id", max_length = 36)),
    responses(
        (status = OK, description = "The submission, with its new status", body = ContactSubmissionResponse),
        (status = BAD_REQUEST, description = "The body is not JSON", body = ErrorBody),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin, or a deactivated account", body = ErrorBody),
        (status = NOT_FOUND, description = "No such submission (or a malformed id)", body = ErrorBody),
        (status = PAYLOAD_TOO_LARGE, description = "The body exceeds `MAX_BODY_BYTES`", body = ErrorBody),
        (status = UNSUPPORTED_MEDIA_TYPE, description = "The body is not `application/json`", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "An unknown status or field", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn update_submission(
    State(db): State<Db>,
    AdminUser(admin): AdminUser,
    context: AuditContext,
    Path(id): Path<String>,
    Json(body): Json<ContactStatusUpdate>,
) -> Result<Json<ContactSubmissionResponse>> {
    Ok(Json(admin::set_status(&db, &admin, &context, &id, &body.status).await?.into()))
}
