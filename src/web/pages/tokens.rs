//! Profile → API tokens: the section, the create form, the one-time reveal, delete.

use actix_web::http::{header, StatusCode};
use actix_web::{get, post, web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::domain::input::{Expiry, TokenDescription, TokenName};
use crate::domain::token::{wire_form, Separator, TokenStatus, MAX_ACTIVE_TOKENS_PER_ACCOUNT};
use crate::domain::Role;
use crate::error::ServiceError;
use crate::repo::User;
use crate::services::auth::random_id;
use crate::services::tokens::{
    self, CreateOutcome, DeleteOutcome, ListQuery, NewTokenRequest, TokenView, PAGE_SIZE,
};
use crate::web::auth::{safe_next, SignedIn};
use crate::web::views::{date, datetime, render, see_other, Layout};
use crate::web::{AppState, WebError};

const SECTION: &str = "/profile/api-tokens";

/// An option of a `<select>`.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

fn choice(value: impl ToString, label: impl ToString, selected: bool) -> Choice {
    Choice {
        value: value.to_string(),
        label: label.to_string(),
        selected,
    }
}

/// A row of the table, formatted for display.
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub issuer_name: String,
    pub issuer_email: String,
    pub role: &'static str,
    pub created: String,
    pub last_used: String,
    pub expires: String,
    pub status: &'static str,
    pub deletable: bool,
    pub expiring_soon: bool,
}

impl TokenRow {
    fn new(t: &TokenView, now: time::OffsetDateTime) -> TokenRow {
        TokenRow {
            id: t.id,
            name: t.name.clone(),
            description: t.description.clone(),
            issuer_name: t.issuer_name.clone(),
            issuer_email: t.issuer_email.clone(),
            role: t.role.name(),
            created: datetime(t.created_at),
            last_used: t
                .last_used_at
                .map(datetime)
                .unwrap_or_else(|| "Never used".into()),
            expires: t.expires_at.map(datetime).unwrap_or_else(|| "Never".into()),
            status: t.status.as_str(),
            deletable: t.status != TokenStatus::Deleted,
            expiring_soon: t.expiring_soon(now),
        }
    }
}

/// The token value, shown once.
pub struct Reveal {
    pub value: String,
    pub name: String,
}

pub struct ConfirmDelete {
    pub id: i64,
    pub name: String,
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct SectionPage {
    layout: Layout,
    rows: Vec<TokenRow>,
    total: i64,
    page: i64,
    pages: i64,
    prev_link: Option<String>,
    next_link: Option<String>,
    show_issuer_filter: bool,
    issuers: Vec<Choice>,
    roles: Vec<Choice>,
    statuses: Vec<Choice>,
    filtered: bool,
    active_count: i64,
    limit: i64,
    at_limit: bool,
    reveal: Option<Reveal>,
    confirm: Option<ConfirmDelete>,
    sso_warning: bool,
    back: String,
    expiring_soon: i64,
    only_expiring: bool,
    token_filter: Option<i64>,
}

/// The filters of the section, as query parameters (empty = all).
#[derive(Debug, Default, Deserialize)]
pub struct SectionParams {
    issued_by: Option<String>,
    role: Option<String>,
    status: Option<String>,
    page: Option<String>,
    confirm_delete: Option<String>,
    token: Option<String>,
    expiring: Option<String>,
}

#[derive(Debug, Default, Clone)]
struct Filters {
    issued_by: Option<i64>,
    role: Option<Role>,
    status: Option<TokenStatus>,
    page: i64,
    token: Option<i64>,
    expiring: bool,
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl Filters {
    fn parse(p: &SectionParams) -> Result<Filters, WebError> {
        let issued_by = non_empty(&p.issued_by)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    WebError::BadRequest(format!("\"Issued by\" must be a user id, not \"{v}\"."))
                })
            })
            .transpose()?;
        let role = non_empty(&p.role)
            .map(|v| {
                Role::parse(v)
                    .ok_or_else(|| WebError::BadRequest(format!("There is no role \"{v}\".")))
            })
            .transpose()?;
        let status = non_empty(&p.status)
            .map(|v| {
                TokenStatus::parse(v).ok_or_else(|| {
                    WebError::BadRequest(format!(
                        "Status must be active, expired or deleted, not \"{v}\"."
                    ))
                })
            })
            .transpose()?;
        let page = match non_empty(&p.page) {
            None => 1,
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=1_000_000).contains(n))
                .ok_or_else(|| WebError::BadRequest(format!("\"{v}\" is not a page number.")))?,
        };
        let token = non_empty(&p.token)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| WebError::BadRequest(format!("\"{v}\" is not a token id.")))
            })
            .transpose()?;
        let expiring = match non_empty(&p.expiring) {
            None => false,
            Some("soon") => true,
            Some(v) => {
                return Err(WebError::BadRequest(format!(
                    "\"expiring\" can only be \"soon\", not \"{v}\"."
                )))
            }
        };
        Ok(Filters {
            issued_by,
            role,
            status,
            page,
            token,
            expiring,
        })
    }

    fn is_filtered(&self) -> bool {
        self.issued_by.is_some()
            || self.role.is_some()
            || self.status.is_some()
            || self.token.is_some()
            || self.expiring
    }

    /// The section's address with these filters (and `page`).
    fn url(&self, page: i64) -> String {
        let mut pairs: Vec<(&str, String)> = vec![];
        if let Some(id) = self.issued_by {
            pairs.push(("issued_by", id.to_string()));
        }
        if let Some(role) = self.role {
            pairs.push(("role", role.id().to_string()));
        }
        if let Some(status) = self.status {
            pairs.push(("status", status.as_str().to_string()));
        }
        if let Some(id) = self.token {
            pairs.push(("token", id.to_string()));
        }
        if self.expiring {
            pairs.push(("expiring", "soon".to_string()));
        }
        if page > 1 {
            pairs.push(("page", page.to_string()));
        }
        if pairs.is_empty() {
            SECTION.to_string()
        } else {
            format!(
                "{SECTION}?{}",
                serde_urlencoded::to_string(&pairs).unwrap_or_default()
            )
        }
    }
}

/// Everything the section shows, loaded in one trip to the blocking pool.
struct SectionData {
    page: tokens::TokenPage,
    active_count: i64,
    users: Vec<User>,
    confirm: Option<TokenView>,
}

async fn render_section(
    state: &AppState,
    me: &SignedIn,
    filters: Filters,
    reveal: Option<Reveal>,
    confirm_id: Option<i64>,
) -> Result<HttpResponse, WebError> {
    let actor = me.actor();
    let now = state.clock.now();
    let is_admin = me.user.role.is_admin();
    let query = ListQuery {
        issued_by: filters.issued_by,
        role: filters.role,
        status: filters.status,
        page: filters.page,
        per_page: Some(PAGE_SIZE),
        token_id: filters.token,
        expiring_soon: filters.expiring,
        ..Default::default()
    };
    let data = state
        .db(move |conn| {
            let page = tokens::list(conn, &actor, &query, now)?;
            let active_count = tokens::active_count(conn, actor.account_id, now)?;
            let users = if is_admin {
                User::list_in_account(conn, actor.account_id)?
            } else {
                vec![]
            };
            let confirm = match confirm_id {
                Some(id) => match tokens::get(conn, &actor, id, now) {
                    Ok(t) => Some(t),
                    Err(ServiceError::NotFound) => return Err(ServiceError::NotFound),
                    Err(e) => return Err(e),
                },
                None => None,
            };
            Ok(SectionData {
                page,
                active_count,
                users,
                confirm,
            })
        })
        .await?;
    let pages = data.page.pages();
    let page = SectionPage {
        layout: me.layout("api-tokens"),
        rows: data
            .page
            .tokens
            .iter()
            .map(|t| TokenRow::new(t, now))
            .collect(),
        expiring_soon: me.counts.expiring_soon,
        only_expiring: filters.expiring,
        token_filter: filters.token,
        total: data.page.total,
        page: data.page.page,
        pages,
        prev_link: (data.page.page > 1).then(|| filters.url(data.page.page - 1)),
        next_link: (data.page.page < pages).then(|| filters.url(data.page.page + 1)),
        show_issuer_filter: is_admin,
        issuers: data
            .users
            .iter()
            .map(|u| {
                choice(
                    u.id,
                    format!("{} ({})", u.name, u.email),
                    filters.issued_by == Some(u.id),
                )
            })
            .collect(),
        roles: Role::ALL
            .iter()
            .map(|r| choice(r.id(), r.name(), filters.role == Some(*r)))
            .collect(),
        statuses: [
            TokenStatus::Active,
            TokenStatus::Expired,
            TokenStatus::Deleted,
        ]
        .iter()
        .map(|s| choice(s.as_str(), s.as_str(), filters.status == Some(*s)))
        .collect(),
        filtered: filters.is_filtered(),
        active_count: data.active_count,
        limit: MAX_ACTIVE_TOKENS_PER_ACCOUNT,
        at_limit: data.active_count >= MAX_ACTIVE_TOKENS_PER_ACCOUNT,
        reveal,
        confirm: data
            .confirm
            .filter(|t| t.status != TokenStatus::Deleted)
            .map(|t| ConfirmDelete {
                id: t.id,
                name: t.name,
            }),
        sso_warning: me.user.user.auth_type == "sso",
        back: filters.url(filters.page),
    };
    render(StatusCode::OK, &page)
}

#[get("/profile/api-tokens")]
pub async fn section(
    state: web::Data<AppState>,
    me: SignedIn,
    params: web::Query<SectionParams>,
) -> Result<HttpResponse, WebError> {
    let filters = Filters::parse(&params)?;
    let confirm_id = non_empty(&params.confirm_delete)
        .map(|v| v.parse::<i64>().map_err(|_| WebError::NotFound))
        .transpose()?;
    render_section(&state, &me, filters, None, confirm_id).await
}

#[derive(Template)]
#[template(path = "token_new.html")]
struct NewTokenPage {
    layout: Layout,
    form_id: String,
    name: String,
    description: String,
    roles: Vec<Choice>,
    never: bool,
    exp_date: String,
    min_date: String,
    errors: FormErrors,
    at_limit: bool,
}

#[derive(Default)]
struct FormErrors {
    name: Option<String>,
    description: Option<String>,
    role: Option<String>,
    expiration: Option<String>,
    limit: Option<String>,
    any: bool,
}

impl FormErrors {
    fn from_fields(fields: Vec<(&'static str, String)>) -> FormErrors {
        let mut e = FormErrors {
            any: !fields.is_empty(),
            ..Default::default()
        };
        for (field, message) in fields {
            let slot = match field {
                "name" => &mut e.name,
                "description" => &mut e.description,
                "role" => &mut e.role,
                "expiration" | "exp_date" => &mut e.expiration,
                _ => &mut e.limit,
            };
            slot.get_or_insert(message);
        }
        e
    }
}

/// The create form's fields, as typed (kept when the form comes back with errors).
#[derive(Debug, Default, Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    form_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    expiration: String,
    #[serde(default)]
    exp_date: String,
}

fn form_page(
    me: &SignedIn,
    state: &AppState,
    form: &CreateForm,
    errors: FormErrors,
    at_limit: bool,
) -> NewTokenPage {
    let issuable = me.user.role.issuable();
    let chosen = Role::parse(&form.role)
        .filter(|r| issuable.contains(r))
        .unwrap_or(Role::Users);
    NewTokenPage {
        layout: me.layout("api-tokens"),
        form_id: if form.form_id.is_empty() {
            random_id()
        } else {
            form.form_id.clone()
        },
        name: form.name.chars().take(200).collect(),
        description: form.description.chars().take(1000).collect(),
        roles: issuable
            .iter()
            .map(|r| choice(r.id(), r.name(), *r == chosen))
            .collect(),
        never: form.expiration != "date",
        exp_date: form.exp_date.chars().take(10).collect(),
        min_date: date(state.clock.now()),
        errors,
        at_limit,
    }
}

#[get("/profile/api-tokens/new")]
pub async fn new_form(state: web::Data<AppState>, me: SignedIn) -> Result<HttpResponse, WebError> {
    let account_id = me.user.account.id;
    let now = state.clock.now();
    let active = state
        .db(move |conn| tokens::active_count(conn, account_id, now))
        .await?;
    let at_limit = active >= MAX_ACTIVE_TOKENS_PER_ACCOUNT;
    let errors = if at_limit {
        FormErrors::from_fields(vec![("limit", limit_message())])
    } else {
        FormErrors::default()
    };
    let page = form_page(&me, &state, &CreateForm::default(), errors, at_limit);
    render(StatusCode::OK, &page)
}

fn limit_message() -> String {
    match tokens::limit_reached() {
        ServiceError::Invalid(mut f) => f.remove(0).1,
        _ => unreachable!("limit_reached is a field error"),
    }
}

/// Parses the form into a request, or says what is wrong with each field.
fn parse_create(
    form: &CreateForm,
    now: time::OffsetDateTime,
) -> Result<NewTokenRequest, Vec<(&'static str, String)>> {
    let mut errors = vec![];
    let name = TokenName::parse(&form.name)
        .map_err(|m| errors.push(("name", m)))
        .ok();
    let description = TokenDescription::parse(Some(&form.description))
        .map_err(|m| errors.push(("description", m)))
        .ok();
    let role = form
        .role
        .trim()
        .parse::<i32>()
        .ok()
        .and_then(Role::from_id)
        .ok_or_else(|| errors.push(("role", "Choose one of the roles in the list.".to_string())))
        .ok();
    let expiry = Expiry::from_form(&form.expiration, Some(&form.exp_date), now)
        .map_err(|m| errors.push(("expiration", m)))
        .ok();
    let form_id = Some(form.form_id.trim())
        .filter(|id| {
            !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric())
        })
        .map(str::to_owned);
    match (name, description, role, expiry) {
        (Some(name), Some(description), Some(role), Some(expiry)) if errors.is_empty() => {
            Ok(NewTokenRequest {
                name,
                description,
                role,
                expiry,
                form_id,
            })
        }
        _ => Err(errors),
    }
}

#[post("/profile/api-tokens")]
pub async fn create(
    state: web::Data<AppState>,
    me: SignedIn,
    form: web::Form<CreateForm>,
) -> Result<HttpResponse, WebError> {
    me.session.check_csrf(&form.csrf_token)?;
    let now = state.clock.now();
    let request = match parse_create(&form, now) {
        Ok(request) => request,
        Err(errors) => {
            let page = form_page(&me, &state, &form, FormErrors::from_fields(errors), false);
            return render(StatusCode::BAD_REQUEST, &page);
        }
    };
    let actor = me.actor();
    let outcome = state
        .db(move |conn| tokens::create(conn, &actor, &request, now))
        .await;
    match outcome {
        Ok(CreateOutcome::Created { token, secret }) => {
            tracing::info!(
                token_id = token.id,
                user_id = me.user.user.id,
                "token created"
            );
            let reveal = Reveal {
                value: wire_form(token.id, Separator::Underscore, &secret),
                name: token.name,
            };
            let mut response =
                render_section(&state, &me, Filters::default(), Some(reveal), None).await?;
            // The only response that carries the secret: never cached, never stored.
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-store"),
            );
            Ok(response)
        }
        Ok(CreateOutcome::AlreadyCreated { token }) => {
            me.session.set_flash(&format!(
                "This form was already submitted: it created the token \"{}\". A token's value is shown only once.",
                token.name
            ));
            Ok(see_other(SECTION))
        }
        Err(ServiceError::Invalid(fields)) => {
            let at_limit = fields.iter().any(|(f, _)| *f == "limit");
            let page = form_page(
                &me,
                &state,
                &form,
                FormErrors::from_fields(fields),
                at_limit,
            );
            render(StatusCode::BAD_REQUEST, &page)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    back: String,
}

#[post("/profile/api-tokens/{id}/delete")]
pub async fn delete(
    state: web::Data<AppState>,
    me: SignedIn,
    id: web::Path<String>,
    form: web::Form<DeleteForm>,
) -> Result<HttpResponse, WebError> {
    me.session.check_csrf(&form.csrf_token)?;
    let id: i64 = id.parse().map_err(|_| WebError::NotFound)?;
    let outcome = state.delete_token(me.actor(), id).await?;
    let message = match outcome {
        DeleteOutcome::Deleted(t) => {
            tracing::info!(token_id = t.id, user_id = me.user.user.id, "token deleted");
            format!(
                "API token \"{}\" was deleted. Requests that use it are refused from now on.",
                t.name
            )
        }
        DeleteOutcome::AlreadyDeleted(t) => {
            format!("API token \"{}\" was already deleted.", t.name)
        }
    };
    me.session.set_flash(&message);
    let back = safe_next(Some(&form.back));
    let back = if back.starts_with(SECTION) && !back.contains("confirm_delete") {
        back.as_str()
    } else {
        SECTION
    };
    Ok(see_other(back))
}
