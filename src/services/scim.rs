//! SCIM 2.0 provisioning: an identity provider adds, changes, deactivates and deletes the
//! people of one account, authenticated by that account's SCIM bearer token.
//!
//! The rules: the account comes from the token, never from the request; SCIM-created users
//! sign in with SSO; their role comes from `roles` (Users when not given). **Deprovisioning**
//! (`active: false` or DELETE) removes the user from the account and deletes every token they
//! issued, in one transaction with the event and the Administrators' alerts; their sessions end
//! and their JWTs stop (the generation bump every removal makes). A deactivated user is still a
//! SCIM resource and may be reactivated, which gives access back but never the tokens; a
//! deleted one is gone (`404`), and creating the same userName again later revives the row.

use diesel::prelude::*;
use serde_json::Value;
use time::OffsetDateTime;

use super::members::Changed;
use super::tokens::retire;
use super::Services;
use crate::db::schema::{accounts, users};
use crate::db::DbConn;
use crate::domain::input::Email;
use crate::domain::scim::{Filter, ScimProblem, UserInput, UserView};
use crate::domain::token::{from_naive, to_naive};
use crate::domain::{sha256_hex, AuthType, NoticeKind, Role};
use crate::error::{ServiceError, ServiceResult};
use crate::repo::events::AccountEvent;
use crate::repo::notices::{NewNotice, Notice};
use crate::repo::{Account, NewUser, Session, Token, User};

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// What a SCIM operation ends in: a service error, or a problem in SCIM's own terms.
#[derive(Debug)]
pub enum ScimError {
    Problem(ScimProblem),
    Service(ServiceError),
}

impl From<ServiceError> for ScimError {
    fn from(e: ServiceError) -> Self {
        ScimError::Service(e)
    }
}

impl From<diesel::result::Error> for ScimError {
    fn from(e: diesel::result::Error) -> Self {
        ScimError::Service(e.into())
    }
}

impl From<ScimProblem> for ScimError {
    fn from(p: ScimProblem) -> Self {
        ScimError::Problem(p)
    }
}

pub type ScimResult<T> = Result<T, ScimError>;

fn not_found(id: i64) -> ScimError {
    ScimProblem::new(404, None, format!("There is no user {id} in this account.")).into()
}

fn conflict(detail: impl Into<String>) -> ScimError {
    ScimProblem::new(409, Some("uniqueness"), detail).into()
}

/// The account whose SCIM token this is. The shape (and its checksum) is checked before any
/// database read, so made-up tokens cost nothing but a CRC.
pub fn account_of_token(conn: &mut DbConn, presented: &str) -> ServiceResult<Option<Account>> {
    if !crate::domain::scim::token_shape_ok(presented) {
        return Ok(None);
    }
    Ok(accounts::table
        .filter(accounts::scim_token_hash.eq(sha256_hex(presented)))
        .select(Account::as_select())
        .first(conn)
        .optional()?)
}

/// Makes the account's SCIM token (replacing the one it had), records it, and returns the
/// token: the only time it exists outside the identity provider. `by`: the Administrator who
/// asked, `None` from the command line.
pub fn issue_token(
    conn: &mut DbConn,
    account_id: i64,
    by: Option<i64>,
    now: OffsetDateTime,
) -> ServiceResult<String> {
    let token = crate::domain::scim::generate_token();
    conn.transaction(|conn| {
        if !Account::lock(conn, account_id)? {
            return Err(ServiceError::NotFound);
        }
        let replaced = Account::find(conn, account_id)?
            .and_then(|a| a.scim_token_hash)
            .is_some();
        diesel::update(accounts::table.find(account_id))
            .set(accounts::scim_token_hash.eq(sha256_hex(&token)))
            .execute(conn)?;
        let how = if by.is_some() {
            "in the portal"
        } else {
            "on the command line"
        };
        let summary = if replaced {
            format!("Created a new SCIM token {how}; the old one stopped working")
        } else {
            format!("Created the account's SCIM token {how}")
        };
        AccountEvent::record(
            conn,
            account_id,
            by,
            to_naive(now),
            "scim.token_created",
            &summary,
        )?;
        Ok(())
    })?;
    Ok(token)
}

/// Whether the account has a SCIM token (the Users page says so).
pub fn has_token(conn: &mut DbConn, account_id: i64) -> ServiceResult<bool> {
    Ok(Account::find(conn, account_id)?.is_some_and(|a| a.scim_token_hash.is_some()))
}

/// The users SCIM sees: the account's live users and the deactivated ones.
fn visible(account_id: i64) -> users::BoxedQuery<'static, crate::db::MultiBackend> {
    users::table
        .filter(users::account_id.eq(account_id))
        .filter(users::removed_at.is_null().or(users::deactivated.eq(true)))
        .into_boxed()
}

/// SCIM's userName of a user: the identity provider's, else the e-mail.
pub fn user_name(user: &User) -> &str {
    user.user_name.as_deref().unwrap_or(&user.email)
}

/// A user as SCIM shows them; `base_url` makes `meta.location`.
pub fn view<'a>(user: &'a User, base_url: &str) -> UserView<'a> {
    UserView {
        id: user.id,
        user_name: user_name(user),
        display_name: &user.name,
        email: &user.email,
        active: user.removed_at.is_none(),
        role: user.role,
        external_id: user.external_id.as_deref(),
        created: from_naive(user.created_at)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        location: format!("{base_url}/scim/v2/Users/{}", user.id),
    }
}

/// One page of the account's users (by id), matching `filter`, and how many match in all.
pub fn list(
    conn: &mut DbConn,
    account_id: i64,
    filter: Option<&Filter>,
    start_index: i64,
    count: i64,
) -> ServiceResult<(i64, Vec<User>)> {
    let filtered = || {
        let q = visible(account_id);
        match filter {
            None => Some(q),
            Some(Filter::UserName(v)) => Some(
                q.filter(
                    lower(users::user_name.assume_not_null())
                        .eq(Email::normal_form(v))
                        .or(users::user_name
                            .is_null()
                            .and(lower(users::email).eq(Email::normal_form(v)))),
                ),
            ),
            Some(Filter::Email(v)) => Some(q.filter(lower(users::email).eq(Email::normal_form(v)))),
            Some(Filter::ExternalId(v)) => Some(q.filter(users::external_id.eq(v.clone()))),
            Some(Filter::Id(id)) => Some(q.filter(users::id.eq(*id))),
            Some(Filter::Active(true)) => Some(q.filter(users::removed_at.is_null())),
            Some(Filter::Active(false)) => Some(q.filter(users::removed_at.is_not_null())),
            Some(Filter::Nothing) => None,
        }
    };
    let Some(total_query) = filtered() else {
        return Ok((0, vec![]));
    };
    let total: i64 = total_query.count().get_result(conn)?;
    if count <= 0 || start_index > total {
        return Ok((total, vec![]));
    }
    let page = filtered()
        .expect("the same filter")
        .order(users::id.asc())
        .offset(start_index - 1)
        .limit(count)
        .select(User::as_select())
        .load(conn)?;
    Ok((total, page))
}

/// A user SCIM sees, of this account; anyone else is "not found".
pub fn get(conn: &mut DbConn, account_id: i64, id: i64) -> ScimResult<User> {
    visible(account_id)
        .filter(users::id.eq(id))
        .select(User::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| not_found(id))
}

/// Another user of the account (live or deactivated) with this userName, any case.
fn user_name_taken(
    conn: &mut DbConn,
    account_id: i64,
    name: &str,
    except: Option<i64>,
) -> ServiceResult<bool> {
    let filter = Filter::UserName(name.to_owned());
    let (_, found) = list(conn, account_id, Some(&filter), 1, 2)?;
    Ok(found.iter().any(|u| Some(u.id) != except))
}

/// The e-mail belongs to someone else (any account: e-mails are how people sign in).
fn email_taken(
    conn: &mut DbConn,
    email: &Email,
    except: Option<i64>,
) -> ServiceResult<Option<User>> {
    Ok(User::find_by_email(conn, email.as_str())?.filter(|u| Some(u.id) != except))
}

/// What is stored as `user_name`: nothing when it is the e-mail.
fn stored_user_name(input: &UserInput) -> Option<String> {
    (!input.user_name.eq_ignore_ascii_case(input.email.as_str())).then(|| input.user_name.clone())
}

fn event(
    conn: &mut DbConn,
    account_id: i64,
    now: OffsetDateTime,
    kind: &str,
    summary: &str,
) -> ServiceResult<()> {
    Ok(AccountEvent::record(
        conn,
        account_id,
        None,
        to_naive(now),
        kind,
        summary,
    )?)
}

/// Adds a user (an SSO user: they sign in through the identity provider). A userName or
/// e-mail already in use is a 409; an e-mail of a user the identity provider deleted from this
/// account earlier revives that row, without any of its old tokens.
pub fn create(
    conn: &mut DbConn,
    account_id: i64,
    input: &UserInput,
    now: OffsetDateTime,
) -> ScimResult<User> {
    conn.transaction(|conn| {
        Account::lock(conn, account_id)?;
        if user_name_taken(conn, account_id, &input.user_name, None)? {
            return Err(conflict(format!(
                "A user with userName \"{}\" already exists.",
                input.user_name
            )));
        }
        let role = input.role.unwrap_or(Role::Users);
        let id = match email_taken(conn, &input.email, None)? {
            Some(old)
                if old.account_id == account_id && old.removed_at.is_some() && !old.deactivated =>
            {
                diesel::update(users::table.find(old.id))
                    .set((
                        users::removed_at.eq(None::<time::PrimitiveDateTime>),
                        users::auth_type.eq(AuthType::Sso),
                        users::password_hash.eq(None::<String>),
                    ))
                    .execute(conn)?;
                old.id
            }
            Some(_) => {
                return Err(conflict(format!(
                    "A user with the e-mail address {} already exists.",
                    input.email.as_str()
                )))
            }
            None => {
                User::insert(
                    conn,
                    &NewUser {
                        account_id,
                        email: input.email.as_str(),
                        name: input.display_name.as_ref().map_or("", |n| n.as_str()),
                        password_hash: None,
                        role,
                        auth_type: AuthType::Sso,
                        created_at: to_naive(now),
                    },
                )?
                .id
            }
        };
        write_attributes(conn, id, input, role)?;
        event(
            conn,
            account_id,
            now,
            "user.added",
            &format!(
                "SCIM: added {} as {role} (SSO sign-in)",
                input.email.as_str()
            ),
        )?;
        if input.active == Some(false) {
            deprovision(conn, account_id, id, true, now)?;
        }
        get(conn, account_id, id)
    })
}

fn write_attributes(
    conn: &mut DbConn,
    id: i64,
    input: &UserInput,
    role: Role,
) -> ServiceResult<()> {
    diesel::update(users::table.find(id))
        .set((
            users::email.eq(input.email.as_str()),
            users::name.eq(input.display_name.as_ref().map_or("", |n| n.as_str())),
            users::user_name.eq(stored_user_name(input)),
            users::external_id.eq(input.external_id.as_deref()),
            users::role.eq(role),
        ))
        .execute(conn)?;
    Ok(())
}

/// Replaces a user's attributes (PUT, and PATCH after its operations are applied). A role
/// change follows the identity provider: tokens above the new role are deleted with it. The
/// account keeps an Administrator: demoting or deprovisioning the last one is refused.
pub fn replace(
    conn: &mut DbConn,
    account_id: i64,
    id: i64,
    input: &UserInput,
    now: OffsetDateTime,
) -> ScimResult<(User, Changed)> {
    conn.transaction(|conn| {
        Account::lock(conn, account_id)?;
        let user = get(conn, account_id, id)?;
        if user_name_taken(conn, account_id, &input.user_name, Some(id))? {
            return Err(conflict(format!(
                "A user with userName \"{}\" already exists.",
                input.user_name
            )));
        }
        if email_taken(conn, &input.email, Some(id))?.is_some() {
            return Err(conflict(format!(
                "A user with the e-mail address {} already exists.",
                input.email.as_str()
            )));
        }
        let role = input.role.unwrap_or(user.role);
        let mut changed = Changed::default();
        if role != user.role {
            let live = user.removed_at.is_none();
            if live && user.role.is_admin() && User::count_admins(conn, account_id)? <= 1 {
                return Err(last_admin());
            }
            let above: Vec<Token> = Token::active_of_issuer(conn, id, to_naive(now))?
                .into_iter()
                .filter(|t| !role.may_issue(t.role))
                .collect();
            for t in &above {
                changed.deleted_tokens.extend(retire_recorded(
                    conn,
                    t,
                    super::audit::Retired::RoleLowered,
                    now,
                )?);
            }
            diesel::update(users::table.find(id))
                .set(users::jwt_generation.eq(users::jwt_generation + 1))
                .execute(conn)?;
            event(
                conn,
                account_id,
                now,
                "user.role_changed",
                &format!(
                    "SCIM: changed the role of {} from {} to {role}{}",
                    user.email,
                    user.role,
                    if above.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " and deleted {} above it",
                            crate::domain::count(above.len() as i64, "token", "tokens")
                        )
                    }
                ),
            )?;
        }
        if input.email.as_str() != user.email {
            event(
                conn,
                account_id,
                now,
                "user.email_changed",
                &format!(
                    "SCIM: changed the e-mail of {} to {}",
                    user.email,
                    input.email.as_str()
                ),
            )?;
        }
        write_attributes(conn, id, input, role)?;
        match (input.active, user.removed_at.is_none()) {
            (Some(false), true) => {
                changed
                    .deleted_tokens
                    .extend(deprovision(conn, account_id, id, true, now)?.deleted_tokens);
            }
            (Some(true), false) => reactivate(conn, account_id, id, now)?,
            _ => {}
        }
        Ok((get(conn, account_id, id)?, changed))
    })
}

/// Deletes a token (with its lineage) for the identity provider and records each deletion.
fn retire_recorded(
    conn: &mut DbConn,
    token: &Token,
    why: super::audit::Retired,
    now: OffsetDateTime,
) -> ServiceResult<Vec<i64>> {
    let retired = retire(conn, token.id, None, to_naive(now))?;
    super::audit::record_retired(conn, None, now, token, &retired, why, true)?;
    Ok(retired)
}

fn last_admin() -> ScimError {
    ScimProblem::new(
        400,
        Some("mutability"),
        "This is the account's last Administrator: make someone else an Administrator first.",
    )
    .into()
}

/// Deprovisions a user: removed from the account (sessions ended, JWTs stopped by the
/// generation bump), every token they issued deleted, the event recorded, the Administrators
/// alerted about each deleted token. `keep` keeps them as a deactivated SCIM resource; without
/// it they are deleted. Inside the caller's transaction, which holds the account's lock.
fn deprovision(
    conn: &mut DbConn,
    account_id: i64,
    id: i64,
    keep: bool,
    now: OffsetDateTime,
) -> ScimResult<Changed> {
    let user = User::find(conn, id)?
        .filter(|u| u.account_id == account_id)
        .ok_or_else(|| not_found(id))?;
    if user.removed_at.is_none()
        && user.role.is_admin()
        && User::count_admins(conn, account_id)? <= 1
    {
        return Err(last_admin());
    }
    let mut changed = Changed::default();
    let active = Token::active_of_issuer(conn, id, to_naive(now))?;
    for t in &active {
        changed.deleted_tokens.extend(retire_recorded(
            conn,
            t,
            super::audit::Retired::Deprovisioned,
            now,
        )?);
    }
    diesel::update(users::table.find(id))
        .set((
            users::removed_at.eq(user.removed_at.unwrap_or(to_naive(now))),
            users::deactivated.eq(keep),
            users::jwt_generation.eq(users::jwt_generation + 1),
        ))
        .execute(conn)?;
    Session::delete_for_user(conn, id)?;
    let what = if keep { "deactivated" } else { "deleted" };
    let tokens = if active.is_empty() {
        String::new()
    } else {
        format!(
            " and deleted {}: {}",
            crate::domain::count(active.len() as i64, "token", "tokens"),
            active
                .iter()
                .map(|t| format!("\"{}\"", t.name))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    event(
        conn,
        account_id,
        now,
        "user.deprovisioned",
        &format!(
            "SCIM: {what} {} <{}>{tokens}",
            user.display_name(),
            user.email
        ),
    )?;
    // The Administrators hear of each token that died with the user: a script that used it
    // stops working now.
    let admins: Vec<User> = User::list_in_account(conn, account_id)?
        .into_iter()
        .filter(|u| u.role.is_admin() && u.id != id)
        .collect();
    let detail = format!(
        "{} was deprovisioned by the identity provider (SCIM)",
        user.email
    );
    let alerts: Vec<NewNotice> = active
        .iter()
        .flat_map(|t| {
            admins.iter().map(|a| NewNotice {
                token_id: t.id,
                kind: NoticeKind::Deprovisioned,
                user_id: a.id,
                created_at: to_naive(now),
                next_attempt_at: to_naive(now),
                detail: Some(detail.clone()),
            })
        })
        .collect();
    Notice::insert_many(conn, &alerts)?;
    Ok(changed)
}

/// Gives a deactivated user access back: no tokens (those stay deleted), no sessions.
fn reactivate(conn: &mut DbConn, account_id: i64, id: i64, now: OffsetDateTime) -> ScimResult<()> {
    let user = get(conn, account_id, id)?;
    diesel::update(users::table.find(id))
        .set((
            users::removed_at.eq(None::<time::PrimitiveDateTime>),
            users::deactivated.eq(false),
        ))
        .execute(conn)?;
    event(
        conn,
        account_id,
        now,
        "user.reactivated",
        &format!(
            "SCIM: reactivated {} <{}> (without their deleted tokens)",
            user.display_name(),
            user.email
        ),
    )?;
    Ok(())
}

/// DELETE: deprovisions the user and makes them no SCIM resource any more.
pub fn delete(
    conn: &mut DbConn,
    account_id: i64,
    id: i64,
    now: OffsetDateTime,
) -> ScimResult<Changed> {
    conn.transaction(|conn| {
        Account::lock(conn, account_id)?;
        get(conn, account_id, id)?;
        deprovision(conn, account_id, id, false, now)
    })
}

/// PATCH: the operations applied to the user as SCIM shows them, then replaced like a PUT.
pub fn patch(
    conn: &mut DbConn,
    account_id: i64,
    id: i64,
    body: &Value,
    base_url: &str,
    now: OffsetDateTime,
) -> ScimResult<(User, Changed)> {
    // Read and replaced under the account's lock, so two PATCHes of different attributes at
    // once both land (neither replaces the other's change with what it read before).
    conn.transaction(|conn| {
        Account::lock(conn, account_id)?;
        let user = get(conn, account_id, id)?;
        let mut current = view(&user, base_url).to_json();
        crate::domain::scim::apply_patch(&mut current, body)?;
        let input = UserInput::from_json(&current)?;
        // `active` is always in the view: unchanged unless an operation changed it.
        replace(conn, account_id, id, &input, now)
    })
}

impl Services {
    /// Runs SCIM work on the blocking pool; the cache forgets the tokens it deleted and the
    /// user's state, so a deprovisioned user's tokens and JWTs are refused from the next request.
    pub async fn scim<T: Send + 'static>(
        &self,
        user: Option<i64>,
        work: impl FnOnce(&mut DbConn, OffsetDateTime) -> ScimResult<(T, Changed)> + Send + 'static,
    ) -> ScimResult<T> {
        let now = self.clock.now();
        let (out, changed) = self.db.run(move |conn| Ok(work(conn, now))).await??;
        self.forget_tokens(&changed.deleted_tokens);
        if let Some(id) = user {
            self.user_states.forget(id);
        }
        if !changed.deleted_tokens.is_empty() {
            // The Administrators' alerts go out now, not with the next periodic sweep.
            let services = self.clone();
            tokio::spawn(async move {
                if let Err(e) = services.sweep(services.clock.now()).await {
                    tracing::warn!(error = %e, "deprovisioning alerts: the sweep failed; the next one sends them");
                }
            });
        }
        Ok(out)
    }

    /// The account a SCIM bearer token belongs to.
    pub async fn scim_account(&self, presented: String) -> ServiceResult<Option<Account>> {
        if !crate::domain::scim::token_shape_ok(&presented) {
            return Ok(None);
        }
        self.db
            .run(move |conn| account_of_token(conn, &presented))
            .await
    }

    /// A new SCIM token for the actor's account (Administrators only), shown once.
    pub async fn issue_scim_token(&self, actor: super::Actor) -> ServiceResult<String> {
        actor.require_admin()?;
        let now = self.clock.now();
        self.db
            .run(move |conn| issue_token(conn, actor.account_id, Some(actor.user_id), now))
            .await
    }

    pub async fn has_scim_token(&self, actor: super::Actor) -> ServiceResult<bool> {
        actor.require_admin()?;
        self.db
            .run(move |conn| has_token(conn, actor.account_id))
            .await
    }

    /// Where SCIM resources live (`meta.location`).
    pub fn base_url(&self) -> &str {
        &self.mail.base_url
    }
}
