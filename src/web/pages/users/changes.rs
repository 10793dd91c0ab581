//! Changing the account's people from the Users page: add, change a role, remove, delete all
//! of someone's tokens; refusals come back on the page with the reason.

use super::*;
use crate::domain::input::{Email, PersonName};
use crate::domain::Role;
use crate::domain::UserId;
use crate::error::{Blocker, ServiceError};
use crate::services::people::members::NewMember;
use crate::web::auth::SignedIn;
use crate::web::csrf::CsrfForm;
use crate::web::ids::Id;
use crate::web::pages::login::NoFields;
use crate::web::views::{see_other, ErrorSummary};
use crate::web::{AppState, WebError};
use actix_web::http::StatusCode;
use actix_web::{post, web, HttpResponse};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct AddForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    sign_in: String,
}

#[post("/users")]
pub async fn add(
    state: web::Data<AppState>,
    me: SignedIn,
    form: CsrfForm<AddForm>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let role = Role::parse(&form.role);
    let sso = form.sign_in == "sso";
    let again = |summary: ErrorSummary| NewUserForm {
        name: form.name.chars().take(200).collect(),
        email: form.email.chars().take(300).collect(),
        roles: role_choices(role.or(Some(Role::Users))),
        sso,
        error: Some(
            summary
                .items
                .iter()
                .map(|(_, m)| m.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        ),
        summary,
    };
    let parsed = (
        PersonName::parse(&form.name),
        Email::parse(&form.email),
        role.ok_or("Choose a role.".to_string()),
    );
    let (name, email, role) = match parsed {
        (Ok(n), Ok(e), Ok(r)) => (n, e, r),
        (n, e, r) => {
            let mut summary = ErrorSummary::new("error-summary-add-user");
            for (field, error) in [
                ("new-user-name", n.err()),
                ("new-user-email", e.err()),
                ("new-user-role", r.err()),
            ] {
                if let Some(m) = error {
                    summary.add(field, m);
                }
            }
            return render_users(
                &state,
                &me,
                None,
                StatusCode::BAD_REQUEST,
                Extra {
                    form: Some(again(summary)),
                    ..Default::default()
                },
            )
            .await;
        }
    };
    let member = NewMember {
        email,
        name: Some(name),
        role,
        sso,
        lang: None,
    };
    match state.people.invite(me.actor(), member).await {
        Ok(invited) => {
            let shown = InvitationShown {
                email: invited.user.email,
                link: invited.link,
                mailed: invited.mailed.is_ok(),
                outbox: invited.outbox,
            };
            render_users(
                &state,
                &me,
                None,
                StatusCode::OK,
                Extra {
                    invitation: Some(shown),
                    ..Default::default()
                },
            )
            .await
        }
        Err(ServiceError::Invalid(fields)) => {
            let mut summary = ErrorSummary::new("error-summary-add-user");
            for (field, m) in fields {
                summary.add(
                    if field == "email" {
                        "new-user-email"
                    } else {
                        ""
                    },
                    m,
                );
            }
            render_users(
                &state,
                &me,
                None,
                StatusCode::BAD_REQUEST,
                Extra {
                    form: Some(again(summary)),
                    ..Default::default()
                },
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Default, Deserialize, serde::Serialize)]
pub struct ChangeForm {
    #[serde(default)]
    role: String,
    /// Present when the Administrator chose to delete the tokens in the way.
    delete_tokens: Option<String>,
}

#[post("/users/{userId}/role")]
pub async fn change_role(
    state: web::Data<AppState>,
    me: SignedIn,
    id: Id<UserId>,
    form: CsrfForm<ChangeForm>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let id = id.get();
    let action = format!("/users/{id}/role");
    let fields = crate::web::pages::sudo::fields_of(&*form);
    if let Some(ask) = crate::web::pages::sudo::unless_recent(&state, &me, &action, fields).await? {
        return Ok(ask);
    }
    let role = Role::parse(&form.role)
        .ok_or_else(|| WebError::BadRequest("Choose one of the roles in the list.".into()))?;
    let delete = form.delete_tokens.is_some();
    match state.people.change_role(me.actor(), id, role, delete).await {
        Ok(changed) => {
            let extra = match changed.deleted_tokens.len() {
                0 => String::new(),
                1 => " 1 token with a higher role was deleted.".to_owned(),
                n => format!(" {n} tokens with a higher role were deleted."),
            };
            me.session
                .set_flash(&format!("The role is now {role}.{extra}"));
            Ok(see_other("/users"))
        }
        Err(ServiceError::TokensInTheWay {
            reason: Blocker::HigherRole,
            tokens,
        }) => {
            let refusal = Refusal {
                message: format!(
                    "The role can't be lowered to {role}: the user has issued active tokens with a higher role. \
                     A user must not keep a token above their rights."
                ),
                tokens: tokens.into_iter().map(|(_, n)| n).collect(),
                action: format!("/users/{id}/role"),
                role: Some(role.id()),
                button: format!("Delete these tokens and change the role to {role}"),
            };
            render_users(
                &state,
                &me,
                None,
                StatusCode::CONFLICT,
                Extra {
                    refusal: Some(refusal),
                    ..Default::default()
                },
            )
            .await
        }
        // Refused for a reason of its own (the last Administrator): said on the page.
        Err(ServiceError::Invalid(fields)) => {
            let message = fields
                .into_iter()
                .map(|(_, m)| m)
                .collect::<Vec<_>>()
                .join(" ");
            render_users(
                &state,
                &me,
                None,
                StatusCode::BAD_REQUEST,
                Extra {
                    problem: Some(message),
                    ..Default::default()
                },
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Default, Deserialize, serde::Serialize)]
pub struct RemoveForm {
    delete_tokens: Option<String>,
}

#[post("/users/{userId}/remove")]
pub async fn remove(
    state: web::Data<AppState>,
    me: SignedIn,
    id: Id<UserId>,
    form: CsrfForm<RemoveForm>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let id = id.get();
    let action = format!("/users/{id}/remove");
    let fields = crate::web::pages::sudo::fields_of(&*form);
    if let Some(ask) = crate::web::pages::sudo::unless_recent(&state, &me, &action, fields).await? {
        return Ok(ask);
    }
    let delete = form.delete_tokens.is_some();
    match state.people.remove_user(me.actor(), id, delete).await {
        Ok(_) => {
            me.session.set_flash(
                "The user was removed. Their deleted tokens still show who issued them.",
            );
            Ok(see_other("/users"))
        }
        Err(ServiceError::TokensInTheWay {
            reason: Blocker::ActiveTokens,
            tokens,
        }) => {
            let refusal = Refusal {
                message: "You can't remove the user as they have active tokens.".into(),
                tokens: tokens.into_iter().map(|(_, n)| n).collect(),
                action: format!("/users/{id}/remove"),
                role: None,
                button: "Delete their tokens and remove the user".into(),
            };
            render_users(
                &state,
                &me,
                None,
                StatusCode::CONFLICT,
                Extra {
                    refusal: Some(refusal),
                    ..Default::default()
                },
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[post("/users/{userId}/delete-tokens")]
pub async fn delete_tokens(
    state: web::Data<AppState>,
    me: SignedIn,
    id: Id<UserId>,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let id = id.get();
    let changed = state.people.delete_user_tokens(me.actor(), id).await?;
    me.session.set_flash(&match changed.deleted_tokens.len() {
        1 => "1 active token of the user was deleted.".to_owned(),
        n => format!("{n} active tokens of the user were deleted."),
    });
    Ok(see_other("/users"))
}

/// An Administrator resets someone's second factor (after the confirmation).
#[post("/users/{userId}/reset-two-factor")]
pub async fn reset_two_factor(
    state: web::Data<AppState>,
    me: SignedIn,
    id: Id<UserId>,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    match state.people.reset_two_factor(me.actor(), id.get()).await {
        Ok(()) => {
            me.session.set_flash("Their second factor was reset: they sign in with their password and set up a new one.");
            Ok(see_other("/users"))
        }
        Err(ServiceError::Invalid(fields)) => Err(WebError::BadRequest(
            fields
                .into_iter()
                .map(|(_, m)| m)
                .collect::<Vec<_>>()
                .join(" "),
        )),
        Err(e) => Err(e.into()),
    }
}
