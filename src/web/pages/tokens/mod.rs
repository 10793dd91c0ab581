//! Profile → API tokens: the section, the create form, the one-time reveal, delete.

mod chart;
mod detail;
mod filters;
mod form;
mod policy;
pub mod routes;
mod view;

use actix_web::http::{header, StatusCode};
use actix_web::{get, post, web, HttpResponse};
use serde::Deserialize;

use crate::domain::token::{wire_form, Separator, TokenStatus, MAX_ACTIVE_TOKENS_PER_ACCOUNT};
use crate::domain::{Role, TokenId};
use crate::error::ServiceError;
use crate::services::tokens::{self, CreateOutcome, DeleteOutcome, ListQuery, PAGE_SIZE};
use crate::web::auth::{safe_next, SignedIn};
use crate::web::csrf::CsrfForm;
use crate::web::ids::Id;
use crate::web::views::{render, see_other};
use crate::web::{AppState, WebError};

pub use detail::{edit_token, rotate_token, set_allowlist, token_page, EventLine};
use filters::{non_empty, Cursor, Filters, SectionParams};
use form::{form_page, parse_create, CreateForm, FormErrors};
pub use policy::{policy_form, save_policy};
pub use view::Choice;
use view::{choice, ConfirmDelete, Reveal, SectionPage, TokenRow};

const SECTION: &str = "/profile/api-tokens";

async fn render_section(
    state: &AppState,
    me: &SignedIn,
    filters: Filters,
    reveal: Option<Reveal>,
    confirm_id: Option<TokenId>,
) -> Result<HttpResponse, WebError> {
    let now = state.clock().now();
    let is_admin = me.user.role.is_admin();
    let (before, after) = match filters.cursor {
        Cursor::Newest => (None, None),
        Cursor::Before(id) => (Some(id), None),
        Cursor::After(id) => (None, Some(id)),
    };
    let query = ListQuery {
        issued_by: filters.issued_by,
        role: filters.role,
        status: filters.status,
        page: 1,
        // One more than shown: whether there is a further page in the direction we went.
        per_page: Some(PAGE_SIZE + 1),
        before,
        after,
        token_id: filters.token,
        created_with: filters.created_with,
        deleted: filters.hides_deleted().then_some(false),
        expiring_soon: filters.expiring,
        ..Default::default()
    };
    let mut data = state
        .tokens
        .token_section(me.actor(), query, confirm_id)
        .await?;
    let more = data.page.tokens.len() as i64 > PAGE_SIZE;
    if more {
        match filters.cursor {
            // Going newer, the extra one is the newest: drop it from the top.
            Cursor::After(_) => {
                data.page.tokens.remove(0);
            }
            _ => {
                data.page.tokens.pop();
            }
        }
    }
    let (first, last) = (
        data.page.tokens.first().map(|t| t.id),
        data.page.tokens.last().map(|t| t.id),
    );
    let (has_newer, has_older) = match filters.cursor {
        Cursor::Newest => (false, more),
        Cursor::Before(_) => (true, more),
        Cursor::After(_) => (more, true),
    };
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
        shown: data.page.tokens.len() as i64,
        prev_link: first
            .filter(|_| has_newer)
            .map(|id| filters.url(Cursor::After(id))),
        next_link: last
            .filter(|_| has_older)
            .map(|id| filters.url(Cursor::Before(id))),
        show_issuer_filter: is_admin,
        issuers: data
            .issuers
            .iter()
            .map(|u| {
                choice(
                    u.id,
                    format!("{} ({})", u.display_name(), u.email),
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
        all_statuses: filters.all_statuses,
        deleted_hidden: filters.hides_deleted(),
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
                ends: t.ends_with_it,
            }),
        sso_warning: me.user.user.auth_type.is_sso(),
        back: filters.url(filters.cursor),
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
        .map(|v| v.parse::<TokenId>().map_err(|_| WebError::NotFound))
        .transpose()?;
    render_section(&state, &me, filters, None, confirm_id).await
}

#[get("/profile/api-tokens/new")]
pub async fn new_form(state: web::Data<AppState>, me: SignedIn) -> Result<HttpResponse, WebError> {
    let active = state.tokens.active_token_count(me.user.account.id).await?;
    let at_limit = active >= MAX_ACTIVE_TOKENS_PER_ACCOUNT;
    let errors = if at_limit {
        FormErrors::from_fields(vec![("limit", limit_message())])
    } else {
        FormErrors::default()
    };
    let policy = state.tokens.token_policy(me.actor()).await?;
    let machines = service_accounts(&state, &me).await?;
    let page = form_page(
        &me,
        state.clock().now(),
        &CreateForm::default(),
        errors,
        at_limit,
        &policy,
        &machines,
    );
    render(StatusCode::OK, &page)
}

/// The service accounts an Administrator may issue to (nobody else sees the choice).
async fn service_accounts(
    state: &AppState,
    me: &SignedIn,
) -> Result<Vec<crate::services::people::service_accounts::ServiceAccountView>, WebError> {
    if !me.user.role.is_admin() {
        return Ok(vec![]);
    }
    Ok(state.people.service_accounts(me.actor()).await?)
}

fn limit_message() -> String {
    match tokens::limit_reached() {
        ServiceError::Invalid(mut f) => f.remove(0).1,
        _ => unreachable!("limit_reached is a field error"),
    }
}

#[post("/profile/api-tokens")]
pub async fn create(
    state: web::Data<AppState>,
    me: SignedIn,
    form: CsrfForm<CreateForm>,
) -> Result<HttpResponse, WebError> {
    let now = state.clock().now();
    let request = match parse_create(&form, now) {
        Ok(request) => request,
        Err(errors) => {
            let policy = state.tokens.token_policy(me.actor()).await?;
            let errors = FormErrors::from_fields(errors);
            let machines = service_accounts(&state, &me).await?;
            let page = form_page(&me, now, &form, errors, false, &policy, &machines);
            return render(StatusCode::BAD_REQUEST, &page);
        }
    };
    // The most powerful tokens (an Administrator's, or one that never ends) ask for the
    // password again when it was given long ago.
    if request.role == crate::domain::Role::Administrators
        || request.expiry == crate::domain::input::Expiry::NEVER
    {
        let fields = crate::web::pages::sudo::fields_of(&*form);
        if let Some(ask) =
            crate::web::pages::sudo::unless_recent(&state, &me, SECTION, fields).await?
        {
            return Ok(ask);
        }
    }
    let created = match form.issued_to.trim() {
        "" => state.tokens.create_token(me.actor(), request).await,
        id => match id.parse::<crate::domain::ServiceAccountId>() {
            Ok(sa) => {
                state
                    .tokens
                    .create_service_account_token(me.actor(), sa, request)
                    .await
            }
            Err(_) => Err(ServiceError::invalid(
                "issued_to",
                "Choose who the token is issued to from the list.",
            )),
        },
    };
    match created {
        Ok(CreateOutcome::Created { token, secret }) => {
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
            let policy = state.tokens.token_policy(me.actor()).await?;
            let errors = FormErrors::from_fields(fields);
            let machines = service_accounts(&state, &me).await?;
            let page = form_page(&me, now, &form, errors, at_limit, &policy, &machines);
            render(StatusCode::BAD_REQUEST, &page)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    back: String,
}

#[post("/profile/api-tokens/{tokenId}/delete")]
pub async fn delete(
    state: web::Data<AppState>,
    me: SignedIn,
    id: Id<TokenId>,
    form: CsrfForm<DeleteForm>,
) -> Result<HttpResponse, WebError> {
    let id = id.get();
    let outcome = state.tokens.delete_token(me.actor(), id).await?;
    let message = match outcome {
        // `ids` holds the token itself and every active token created with it.
        DeleteOutcome::Deleted(t, ids) if ids.len() > 1 => format!(
            "API token \"{}\" was deleted, and with it {} created with it. Requests that use them are refused from now on.",
            t.name,
            crate::domain::count(ids.len() as i64 - 1, "token", "tokens")
        ),
        DeleteOutcome::Deleted(t, _) => {
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
