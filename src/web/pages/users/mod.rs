//! Account → Users, for Administrators: list, add, change role, remove, delete all tokens.

use actix_web::http::StatusCode;
use actix_web::{get, web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::domain::leak_response::LeakResponse;
use crate::domain::{Role, UserId};
use crate::web::auth::SignedIn;
use crate::web::views::{datetime, render, ErrorSummary, Layout};
use crate::web::{AppState, WebError};

use super::tokens::Choice;

mod changes;
mod settings;

pub use changes::{add, change_role, delete_tokens, remove, reset_two_factor};
pub use settings::{new_scim_token, set_leak_response};

pub struct UserRow {
    pub id: UserId,
    pub name: String,
    pub email: String,
    pub role: &'static str,
    pub role_id: i32,
    pub sso: bool,
    pub active_tokens: usize,
    pub token_names: String,
    pub last_sign_in: String,
    /// Has a second factor (an Administrator may reset it).
    pub two_factor: bool,
    pub is_me: bool,
    pub roles: Vec<Choice>,
}

impl UserRow {
    /// "1 active token", "42 active tokens" (the link to them in the table).
    pub fn tokens_label(&self) -> String {
        crate::domain::count(self.active_tokens as i64, "active token", "active tokens")
    }
}

pub struct EventRow {
    pub at: String,
    pub who: String,
    pub summary: String,
}

/// A change that active tokens stand in the way of, and the one-step way through.
pub struct Refusal {
    pub message: String,
    pub tokens: Vec<String>,
    pub action: String,
    pub role: Option<i32>,
    pub button: String,
}

pub struct NewUserForm {
    pub name: String,
    pub email: String,
    pub roles: Vec<Choice>,
    pub sso: bool,
    pub error: Option<String>,
    pub summary: ErrorSummary,
}

/// "Are you sure?" before removing a user or deleting all their tokens.
pub struct Confirm {
    pub title: String,
    pub text: String,
    pub action: String,
    pub button: &'static str,
    /// A removal: whom (their active tokens are named, and deleted with them, in one step).
    pub removes: Option<UserId>,
    /// The form deletes the user's active tokens too.
    pub delete_tokens: bool,
}

pub struct InvitationShown {
    pub email: String,
    pub link: Option<String>,
    pub mailed: bool,
    /// It went to the outbox folder: no SMTP server is configured.
    pub outbox: bool,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    layout: Layout,
    rows: Vec<UserRow>,
    roles: Vec<Choice>,
    events: Vec<EventRow>,
    refusal: Option<Refusal>,
    problem: ErrorSummary,
    form: NewUserForm,
    invitation: Option<InvitationShown>,
    confirm: Option<Confirm>,
    /// The account's leak setting: true when reported tokens are only reported.
    leaks_notify_only: bool,
    scim: ScimCard,
}

/// The SCIM card: whether the account has a token, and a new one right after it was made
/// (the only time it is shown).
struct ScimCard {
    has_token: bool,
    new_token: Option<String>,
    base_url: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct UsersQuery {
    role: Option<String>,
    /// `remove` or `delete-tokens`, with `user`: show the confirmation first.
    confirm: Option<String>,
    user: Option<String>,
}

fn role_choices(selected: Option<Role>) -> Vec<Choice> {
    Role::ALL
        .iter()
        .map(|r| Choice {
            value: r.id().to_string(),
            label: r.name().to_string(),
            selected: selected == Some(*r),
        })
        .collect()
}

/// What a page shows beyond the list, depending on what just happened.
#[derive(Default)]
struct Extra {
    refusal: Option<Refusal>,
    /// A change refused for a reason the page states (e.g. the last Administrator).
    problem: Option<String>,
    form: Option<NewUserForm>,
    invitation: Option<InvitationShown>,
    confirm: Option<Confirm>,
    scim_token: Option<String>,
}

async fn render_users(
    state: &AppState,
    me: &SignedIn,
    filter: Option<Role>,
    status: StatusCode,
    extra: Extra,
) -> Result<HttpResponse, WebError> {
    let Extra {
        refusal,
        problem,
        form,
        invitation,
        confirm,
        scim_token,
    } = extra;
    let data = state.people.users_page(me.actor(), filter).await?;
    let with_two_factor = state.people.with_two_factor(me.actor()).await?;
    let leak_response = state.tokens.leak_response(me.actor()).await?;
    let scim = ScimCard {
        has_token: scim_token.is_some() || state.scim.has_token(me.actor()).await?,
        new_token: scim_token,
        base_url: format!("{}/scim/v2", state.scim.base_url()),
    };
    let rows = data
        .members
        .into_iter()
        .map(|m| UserRow {
            two_factor: with_two_factor.contains(&m.user.id),
            id: m.user.id,
            is_me: m.user.id == me.user.user.id,
            name: m.user.display_name().to_owned(),
            email: m.user.email,
            role: m.role.name(),
            role_id: m.role.id(),
            sso: m.user.auth_type.is_sso(),
            active_tokens: m.active_tokens.len(),
            // The first few names as the link's tooltip; the link lists them all.
            token_names: {
                let names: Vec<&str> = m
                    .active_tokens
                    .iter()
                    .take(5)
                    .map(|t| t.name.as_str())
                    .collect();
                let more = m.active_tokens.len().saturating_sub(names.len());
                if more > 0 {
                    format!("{} and {more} more", names.join(", "))
                } else {
                    names.join(", ")
                }
            },
            last_sign_in: m
                .user
                .last_login_at
                .map(datetime)
                .unwrap_or_else(|| "Never".into()),
            roles: role_choices(Some(m.role)),
        })
        .collect::<Vec<UserRow>>();
    // Removing someone with active tokens: one confirmation that says so and deletes them too.
    let confirm = confirm.map(|mut c| {
        if let Some(row) = c
            .removes
            .and_then(|id| rows.iter().find(|r| r.id == id))
            .filter(|r| r.active_tokens > 0)
        {
            c.text = format!(
                "{} <{}> will no longer be able to sign in, and their {} will stop working at once: \
                 they are deleted with the user. This can't be undone. Deleted tokens keep showing who issued them.",
                row.name,
                row.email,
                row.tokens_label()
            );
            c.button = "Delete their tokens and remove the user";
            c.delete_tokens = true;
        }
        c
    });
    let events = data
        .events
        .into_iter()
        .map(|e| EventRow {
            at: datetime(e.at),
            who: e.who.unwrap_or_else(|| "—".into()),
            summary: e.summary,
        })
        .collect();
    let page = UsersPage {
        layout: me.layout("users"),
        rows,
        roles: role_choices(filter),
        events,
        refusal,
        problem: problem
            .map(|m| ErrorSummary::one("error-summary-users", "", m))
            .unwrap_or_else(|| ErrorSummary::new("error-summary-users")),
        form: form.unwrap_or(NewUserForm {
            name: String::new(),
            email: String::new(),
            roles: role_choices(Some(Role::Users)),
            sso: false,
            error: None,
            summary: ErrorSummary::new("error-summary-add-user"),
        }),
        invitation,
        confirm,
        leaks_notify_only: leak_response == LeakResponse::NotifyOnly,
        scim,
    };
    render(status, &page)
}

#[get("/users")]
pub async fn list(
    state: web::Data<AppState>,
    me: SignedIn,
    query: web::Query<UsersQuery>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let filter = match query
        .role
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(v) => Some(
            Role::parse(v)
                .ok_or_else(|| WebError::BadRequest(format!("There is no role \"{v}\".")))?,
        ),
    };
    let confirm = match (query.confirm.as_deref(), query.user.as_deref()) {
        (None, _) => None,
        (Some(what), Some(raw)) => {
            let id = user_id(raw)?;
            // Only someone of this account, and only an Administrator asking: checked by the service.
            let (user, _) = state.people.user(me.actor(), id).await?;
            Some(match what {
                "remove" => Confirm {
                    title: format!("Remove {}?", user.display_name()),
                    text: format!(
                        "{} <{}> will no longer be able to sign in. Their deleted tokens keep showing who issued them.",
                        user.display_name(), user.email
                    ),
                    action: format!("/users/{id}/remove"),
                    button: "Remove user",
                    removes: Some(id),
                    delete_tokens: false,
                },
                "delete-tokens" => Confirm {
                    title: format!("Delete all tokens of {}?", user.display_name()),
                    text: "Every active API token this user issued stops working at once. This action cannot be undone.".into(),
                    action: format!("/users/{id}/delete-tokens"),
                    button: "Delete all tokens",
                    removes: None,
                    delete_tokens: false,
                },
                "reset-2fa" => Confirm {
                    title: format!("Reset the second factor of {}?", user.display_name()),
                    text: format!(
                        "{} <{}> will sign in with their password alone until they set up a new authenticator app \
                         (at once, if the account requires one). Do this only after checking it is really them, \
                         by a channel other than e-mail.",
                        user.display_name(),
                        user.email
                    ),
                    action: format!("/users/{id}/reset-two-factor"),
                    button: "Reset second factor",
                    removes: None,
                    delete_tokens: false,
                },
                other => return Err(WebError::BadRequest(format!("Nothing to confirm called \"{other}\"."))),
            })
        }
        (Some("scim-token"), None) => Some(Confirm {
            title: "Make a new SCIM token?".into(),
            text: "The identity provider's current token stops working at once: until it is given the new one, \
                   it can't add, change or remove the people of this account. This can't be undone."
                .into(),
            action: "/users/scim-token".into(),
            button: "Make a new SCIM token",
            removes: None,
            delete_tokens: false,
        }),
        (Some(_), None) => {
            return Err(WebError::BadRequest(
                "Say which user: add user=<id>.".into(),
            ))
        }
    };
    render_users(
        &state,
        &me,
        filter,
        StatusCode::OK,
        Extra {
            confirm,
            ..Default::default()
        },
    )
    .await
}

fn user_id(raw: &str) -> Result<UserId, WebError> {
    raw.parse().map_err(|_| WebError::NotFound)
}
