//! The people of an account, managed by its Administrators: list, invite, change role,
//! remove, and delete all of a user's tokens. Every change lands in the account's event log.

use std::collections::HashMap;

use diesel::Connection;
use time::{Duration, OffsetDateTime};

use super::tokens::retire;
use super::{Actor, Services};
use crate::db::DbConn;
use crate::domain::input::{Email, Language, PersonName};
use crate::domain::token::{from_naive, to_naive, TokenStatus};
use crate::domain::{sha256_hex, AuthType, Role, Secret};
use crate::email::{invitation_message, InvitationMail, Recipient};
use crate::error::{Blocker, ServiceError, ServiceResult};
use crate::repo::events::AccountEvent;
use crate::repo::setups::PasswordSetup;
use crate::repo::{Account, NewUser, Session, Token, TokenFilter, User};

/// How long an invitation's set-password link works.
pub const SETUP_TTL: Duration = Duration::hours(72);

/// Takes the account's lock and loads a user of it who is not removed; anyone else is
/// "not found". The start of every change to a user.
fn lock_live_member(conn: &mut DbConn, actor: &Actor, user_id: i64) -> ServiceResult<User> {
    Account::lock(conn, actor.account_id)?;
    let user = member(conn, actor, user_id)?;
    if user.removed_at.is_some() {
        return Err(ServiceError::NotFound);
    }
    Ok(user)
}

/// A user of the actor's account (removed ones too); another account's is "not found".
fn member(conn: &mut DbConn, actor: &Actor, user_id: i64) -> ServiceResult<User> {
    match User::find(conn, user_id)? {
        Some(user) if user.account_id == actor.account_id => Ok(user),
        _ => Err(ServiceError::NotFound),
    }
}

pub struct MemberRow {
    pub user: User,
    pub role: Role,
    pub active_tokens: Vec<Token>,
}

/// The account's users (not removed), with their active tokens; Administrators only.
pub fn list(
    conn: &mut DbConn,
    actor: &Actor,
    role: Option<Role>,
    now: OffsetDateTime,
) -> ServiceResult<Vec<MemberRow>> {
    actor.require_admin()?;
    // Every active token of the account in one query, grouped by issuer.
    let filter = TokenFilter {
        account_id: actor.account_id,
        status: Some(TokenStatus::Active),
        limit: i64::MAX / 4,
        ..Default::default()
    };
    let mut by_issuer: HashMap<i64, Vec<Token>> = HashMap::new();
    for row in Token::list(conn, &filter, to_naive(now))?.0 {
        by_issuer
            .entry(row.token.issuer_id)
            .or_default()
            .push(row.token);
    }
    let mut rows = vec![];
    for user in User::list_in_account(conn, actor.account_id)? {
        let user_role = user.role;
        if role.is_some_and(|r| r != user_role) {
            continue;
        }
        let active_tokens = by_issuer.remove(&user.id).unwrap_or_default();
        rows.push(MemberRow {
            user,
            role: user_role,
            active_tokens,
        });
    }
    Ok(rows)
}

pub fn events(
    conn: &mut DbConn,
    actor: &Actor,
    limit: i64,
) -> ServiceResult<Vec<(AccountEvent, Option<String>)>> {
    actor.require_admin()?;
    Ok(AccountEvent::recent(conn, actor.account_id, limit)?)
}

/// A new user and, for password sign-in, the secret of their one-time set-password link.
pub struct Invitation {
    pub user: User,
    pub setup_secret: Option<String>,
}

/// Someone to add to the account.
#[derive(Debug, Clone)]
pub struct NewMember {
    pub email: Email,
    /// Optional through the API (Gcore's invite); the portal asks for it.
    pub name: Option<PersonName>,
    pub role: Role,
    pub sso: bool,
    /// English when not given.
    pub lang: Option<Language>,
}

/// Adds a user to the actor's account. Password users get a set-password link (valid 72 h);
/// SSO users sign in through their identity provider and get none.
pub fn invite(
    conn: &mut DbConn,
    actor: &Actor,
    member: &NewMember,
    now: OffsetDateTime,
) -> ServiceResult<Invitation> {
    let NewMember {
        email,
        name,
        role,
        sso,
        lang,
    } = member;
    let (role, sso) = (*role, *sso);
    actor.require_admin()?;
    let secret = (!sso).then(|| Secret::generate().into_exposed());
    conn.transaction(|conn| {
        Account::lock(conn, actor.account_id)?;
        if User::find_by_email(conn, email.as_str())?.is_some() {
            return Err(ServiceError::invalid(
                "email",
                "A user with this e-mail address already exists.",
            ));
        }
        let user = User::insert(
            conn,
            &NewUser {
                account_id: actor.account_id,
                email: email.as_str(),
                name: name.as_ref().map_or("", |n| n.as_str()),
                password_hash: None,
                role,
                auth_type: if sso {
                    AuthType::Sso
                } else {
                    AuthType::Password
                },
                created_at: to_naive(now),
            },
        )?;
        let user = match lang {
            Some(lang) => {
                User::update_profile(conn, user.id, &user.name, None, lang.as_str())?;
                User {
                    lang: lang.as_str().to_owned(),
                    ..user
                }
            }
            None => user,
        };
        if let Some(secret) = &secret {
            PasswordSetup::insert(
                conn,
                &PasswordSetup {
                    token_hash: sha256_hex(secret),
                    user_id: user.id,
                    created_at: to_naive(now),
                    expires_at: to_naive(now + SETUP_TTL),
                    used_at: None,
                },
            )?;
        }
        let how = if sso { "SAML SSO" } else { "password" };
        event(
            conn,
            actor,
            now,
            "user.added",
            &format!(
                "Added {} <{}> as {role} ({how} sign-in)",
                user.display_name(),
                user.email
            ),
        )?;
        Ok(Invitation {
            user,
            setup_secret: secret,
        })
    })
}

/// Sets the password of the user behind a set-password link; the link works once.
fn invalid_link() -> ServiceError {
    ServiceError::invalid(
        "token",
        "This link is not valid any more. Ask an Administrator for a new invitation.",
    )
}

/// Whether a set-password link still works: one SHA-256 and an indexed read, so a flood of
/// made-up links costs no password hashing.
pub fn check_link(conn: &mut DbConn, secret: &str, now: OffsetDateTime) -> ServiceResult<()> {
    match PasswordSetup::find(conn, &sha256_hex(secret))? {
        Some(s) if s.used_at.is_none() && s.expires_at > to_naive(now) => Ok(()),
        _ => Err(invalid_link()),
    }
}

/// Sets the password (already hashed) of the user behind a set-password link; the link
/// works once, also when two posts race.
pub fn set_password(
    conn: &mut DbConn,
    secret: &str,
    hashed: &str,
    now: OffsetDateTime,
) -> ServiceResult<User> {
    conn.transaction(|conn| {
        let invalid = invalid_link;
        let setup = PasswordSetup::find(conn, &sha256_hex(secret))?.ok_or_else(invalid)?;
        if setup.used_at.is_some() || setup.expires_at <= to_naive(now) {
            return Err(invalid());
        }
        let user = User::find(conn, setup.user_id)?
            .filter(|u| u.removed_at.is_none())
            .ok_or_else(invalid)?;
        if !PasswordSetup::use_once(conn, &setup.token_hash, to_naive(now))? {
            return Err(invalid());
        }
        User::set_password_hash(conn, user.id, hashed)?;
        Ok(user)
    })
}

/// The user behind a set-password link, if the link still works (to greet them on the page).
pub fn setup_user(
    conn: &mut DbConn,
    secret: &str,
    now: OffsetDateTime,
) -> ServiceResult<Option<User>> {
    let Some(setup) = PasswordSetup::find(conn, &sha256_hex(secret))? else {
        return Ok(None);
    };
    if setup.used_at.is_some() || setup.expires_at <= to_naive(now) {
        return Ok(None);
    }
    Ok(User::find(conn, setup.user_id)?.filter(|u| u.removed_at.is_none()))
}

/// What a change did to tokens: the ids it deleted (the caller forgets them in its cache).
#[derive(Debug, Default)]
pub struct Changed {
    pub deleted_tokens: Vec<i64>,
}

/// Changes a user's role. Refused while the user holds an active token above the new role,
/// unless `delete_blocking` asks to delete those tokens in the same step; refused if it would
/// leave the account without an Administrator.
pub fn change_role(
    conn: &mut DbConn,
    actor: &Actor,
    user_id: i64,
    new_role: Role,
    delete_blocking: bool,
    now: OffsetDateTime,
) -> ServiceResult<Changed> {
    actor.require_admin()?;
    conn.transaction(|conn| {
        let user = lock_live_member(conn, actor, user_id)?;
        let old_role = user.role;
        if old_role == new_role {
            return Ok(Changed::default());
        }
        ensure_not_last_admin(conn, actor, &user)?;
        let above: Vec<Token> = Token::active_of_issuer(conn, user.id, to_naive(now))?
            .into_iter()
            .filter(|t| !new_role.may_issue(t.role))
            .collect();
        if !above.is_empty() && !delete_blocking {
            return Err(in_the_way(Blocker::HigherRole, &above));
        }
        let changed = retire_all(
            conn,
            actor,
            &user,
            &above,
            now,
            &format!(" above {new_role}"),
            super::audit::Retired::RoleLowered,
        )?;
        User::set_role(conn, user.id, new_role)?;
        event(
            conn,
            actor,
            now,
            "user.role_changed",
            &format!(
                "Changed the role of {} from {old_role} to {new_role}",
                user.email
            ),
        )?;
        Ok(changed)
    })
}

/// Removes a user (softly: their tokens keep showing who issued them). Refused while they have
/// active tokens, unless `delete_tokens` deletes them in the same step; refused for the last
/// Administrator.
pub fn remove(
    conn: &mut DbConn,
    actor: &Actor,
    user_id: i64,
    delete_tokens: bool,
    now: OffsetDateTime,
) -> ServiceResult<Changed> {
    actor.require_admin()?;
    conn.transaction(|conn| {
        let user = lock_live_member(conn, actor, user_id)?;
        ensure_not_last_admin(conn, actor, &user)?;
        let active = Token::active_of_issuer(conn, user.id, to_naive(now))?;
        if !active.is_empty() && !delete_tokens {
            return Err(in_the_way(Blocker::ActiveTokens, &active));
        }
        let changed = retire_all(
            conn,
            actor,
            &user,
            &active,
            now,
            "",
            super::audit::Retired::IssuerRemoved,
        )?;
        User::mark_removed(conn, user.id, to_naive(now))?;
        Session::delete_for_user(conn, user.id)?;
        event(
            conn,
            actor,
            now,
            "user.removed",
            &format!("Removed {} <{}>", user.display_name(), user.email),
        )?;
        Ok(changed)
    })
}

/// Deletes every active token of a user at once: the remedy for an SSO user whose access the
/// identity provider revoked.
pub fn delete_all_tokens(
    conn: &mut DbConn,
    actor: &Actor,
    user_id: i64,
    now: OffsetDateTime,
) -> ServiceResult<Changed> {
    actor.require_admin()?;
    conn.transaction(|conn| {
        Account::lock(conn, actor.account_id)?;
        let user = member(conn, actor, user_id)?;
        let active = Token::active_of_issuer(conn, user.id, to_naive(now))?;
        retire_all(
            conn,
            actor,
            &user,
            &active,
            now,
            "",
            super::audit::Retired::AllOfIssuer,
        )
    })
}

/// `PATCH /iam/users/{id}`: name, phone, language, e-mail, sign-in method (and the role,
/// through `change_role`). Someone else's profile, and anyone's e-mail, need an
/// Administrator: the e-mail is where notices and set-password links go.
fn update_profile(
    conn: &mut DbConn,
    actor: &Actor,
    user_id: i64,
    update: &UserUpdate,
    now: OffsetDateTime,
) -> ServiceResult<()> {
    let user = member(conn, actor, user_id)?;
    if user.id != actor.user_id {
        actor.require_admin()?;
    }
    if user.removed_at.is_some() {
        return Err(ServiceError::NotFound);
    }
    if let Some(wanted) = update.auth_type {
        if wanted != user.auth_type {
            return Err(ServiceError::invalid(
                "auth_types",
                format!(
                    "The sign-in method can't be changed through the API (this user signs in with {}). Remove the user and add them again with the other method.",
                    user.auth_type.code()
                ),
            ));
        }
    }
    let name = match &update.name {
        None => user.name.clone(),
        Some(None) => String::new(),
        Some(Some(n)) => n.as_str().to_owned(),
    };
    let phone = update.phone.clone().unwrap_or(user.phone.clone());
    let lang = update
        .lang
        .as_ref()
        .map_or(user.lang.clone(), |l| l.as_str().to_owned());
    User::update_profile(conn, user.id, &name, phone.as_deref(), &lang)?;
    event(
        conn,
        actor,
        now,
        "user.updated",
        &format!("Updated the profile of {}", user.email),
    )?;
    if let Some(email) = update.email.as_ref().filter(|e| e.as_str() != user.email) {
        actor.require_admin()?;
        let taken =
            ServiceError::invalid("email", "A user with this e-mail address already exists.");
        if User::find_by_email(conn, email.as_str())?.is_some() {
            return Err(taken);
        }
        match User::set_email(conn, user.id, email.as_str()) {
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => return Err(taken),
            other => other?,
        }
        event(
            conn,
            actor,
            now,
            "user.email_changed",
            &format!("Changed the e-mail of {} to {}", user.email, email.as_str()),
        )?;
    }
    Ok(())
}

/// A change to a user through the API (`PATCH /iam/users/{id}`): each field is `None` when
/// not asked for.
#[derive(Debug, Default)]
pub struct UserUpdate {
    pub role: Option<Role>,
    /// `Some(None)` clears the name (the portal then shows the e-mail).
    pub name: Option<Option<PersonName>>,
    /// `Some(None)` clears the phone number.
    pub phone: Option<Option<String>>,
    pub lang: Option<Language>,
    pub email: Option<Email>,
    /// Accepted when it is the user's own method; a change is refused by name.
    pub auth_type: Option<AuthType>,
}

/// Applies `update` in one transaction (a refused change changes nothing) and returns the
/// user as they are now.
pub fn update_user(
    conn: &mut DbConn,
    actor: &Actor,
    user_id: i64,
    update: UserUpdate,
    now: OffsetDateTime,
) -> ServiceResult<(User, Account)> {
    conn.transaction(|conn| {
        if let Some(role) = update.role {
            change_role(conn, actor, user_id, role, false, now)?;
        }
        let profile = update.name.is_some()
            || update.phone.is_some()
            || update.lang.is_some()
            || update.email.is_some()
            || update.auth_type.is_some();
        if profile {
            update_profile(conn, actor, user_id, &update, now)?;
        }
        super::users::visible_user(conn, actor, user_id)
    })
}

fn event(
    conn: &mut DbConn,
    actor: &Actor,
    now: OffsetDateTime,
    kind: &str,
    summary: &str,
) -> ServiceResult<()> {
    Ok(AccountEvent::record(
        conn,
        actor.account_id,
        Some(actor.user_id),
        to_naive(now),
        kind,
        summary,
    )?)
}

/// Deletes `tokens` of `user` and logs it once; `why` completes "Deleted N tokens of X".
fn retire_all(
    conn: &mut DbConn,
    actor: &Actor,
    user: &User,
    tokens: &[Token],
    now: OffsetDateTime,
    why: &str,
    kind: super::audit::Retired,
) -> ServiceResult<Changed> {
    let mut changed = Changed::default();
    if tokens.is_empty() {
        return Ok(changed);
    }
    for t in tokens {
        let retired = retire(conn, t.id, Some(actor.user_id), to_naive(now))?;
        super::audit::record_retired(conn, Some(actor), now, t, &retired, kind, true)?;
        changed.deleted_tokens.extend(retired);
    }
    let summary = format!(
        "Deleted {} of {}{why}: {}",
        crate::domain::count(tokens.len() as i64, "token", "tokens"),
        user.email,
        names(tokens)
    );
    event(conn, actor, now, "tokens.deleted", &summary)?;
    Ok(changed)
}

fn in_the_way(reason: Blocker, tokens: &[Token]) -> ServiceError {
    ServiceError::TokensInTheWay {
        reason,
        tokens: tokens.iter().map(|t| (t.id, t.name.clone())).collect(),
    }
}

/// An account always keeps an Administrator: one who is `role` may not stop being one
/// (by a role change or removal) while the account has `admins` Administrators.
pub fn may_stop_being_admin(role: Role, admins: i64) -> bool {
    !role.is_admin() || admins > 1
}

fn ensure_not_last_admin(conn: &mut DbConn, actor: &Actor, user: &User) -> ServiceResult<()> {
    if user.role.is_admin()
        && !may_stop_being_admin(user.role, User::count_admins(conn, actor.account_id)?)
    {
        return Err(last_admin());
    }
    Ok(())
}

fn last_admin() -> ServiceError {
    ServiceError::invalid("role", "An account must keep at least one Administrator: make someone else an Administrator first.")
}

fn names(tokens: &[Token]) -> String {
    tokens
        .iter()
        .map(|t| format!("\"{}\"", t.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The Users page: the account's people with their active tokens, and the latest events.
pub struct UsersPage {
    pub members: Vec<MemberRow>,
    pub events: Vec<EventEntry>,
}

/// A line of the account's event log.
pub struct EventEntry {
    pub at: OffsetDateTime,
    /// Who did it (their name), if known.
    pub who: Option<String>,
    pub summary: String,
}

/// An invitation as sent: the user, their set-password link (password users), and whether
/// the e-mail went out (`Err` with the reason if not).
pub struct Invited {
    pub user: User,
    pub link: Option<String>,
    pub mailed: Result<(), String>,
}

impl Services {
    /// The Users page (Administrators only): members filtered by `role`, the latest 50 events.
    pub async fn users_page(&self, actor: Actor, role: Option<Role>) -> ServiceResult<UsersPage> {
        let now = self.clock.now();
        self.db
            .run(move |conn| {
                let members = list(conn, &actor, role, now)?;
                let events = events(conn, &actor, 50)?
                    .into_iter()
                    .map(|(e, who)| EventEntry {
                        at: from_naive(e.at),
                        who,
                        summary: e.summary,
                    })
                    .collect();
                Ok(UsersPage { members, events })
            })
            .await
    }

    /// Adds a user to the actor's account and sends the invitation (web page and API alike).
    #[tracing::instrument(skip(self, member), fields(account_id = actor.account_id, user_id = actor.user_id))]
    pub async fn invite(&self, actor: Actor, member: NewMember) -> ServiceResult<Invited> {
        let now = self.clock.now();
        let mail = self.mail.clone();
        self.db
            .run(move |conn| {
                let inv = invite(conn, &actor, &member, now)?;
                let Some(secret) = inv.setup_secret else {
                    return Ok(Invited {
                        user: inv.user,
                        link: None,
                        mailed: Ok(()),
                    });
                };
                let link = format!("{}/set-password?token={secret}", mail.base_url);
                let account = Account::find(conn, actor.account_id)?
                    .map(|a| a.name)
                    .unwrap_or_default();
                let inviter = User::find(conn, actor.user_id)?
                    .map(|u| u.display_name().to_owned())
                    .unwrap_or_default();
                let facts = InvitationMail {
                    recipient: Recipient {
                        name: inv.user.display_name().to_owned(),
                        email: inv.user.email.clone(),
                    },
                    account,
                    inviter,
                    link: link.clone(),
                };
                let mailed = invitation_message(&mail.from, &facts, &mail.base_url)
                    .and_then(|m| mail.mailer.send(&m));
                if let Err(e) = &mailed {
                    tracing::warn!(user_id = inv.user.id, error = %e, "invitation e-mail not sent");
                }
                Ok(Invited {
                    user: inv.user,
                    link: Some(link),
                    mailed,
                })
            })
            .await
    }

    /// Runs a change to a user and makes this instance's token cache forget the tokens it
    /// deleted, so they are refused from the next request: the one way every user change
    /// reaches the cache.
    async fn change_user(
        &self,
        target: i64,
        change: impl FnOnce(&mut DbConn, OffsetDateTime) -> ServiceResult<Changed> + Send + 'static,
    ) -> ServiceResult<Changed> {
        let now = self.clock.now();
        let changed = self.db.run(move |conn| change(conn, now)).await?;
        self.forget_tokens(&changed.deleted_tokens);
        self.user_states.forget(target);
        Ok(changed)
    }

    /// Changes a user's role (see `change_role`); deleted tokens are forgotten by the cache.
    #[tracing::instrument(skip(self), fields(account_id = actor.account_id, user_id = actor.user_id))]
    pub async fn change_role(
        &self,
        actor: Actor,
        target: i64,
        role: Role,
        delete_blocking: bool,
    ) -> ServiceResult<Changed> {
        self.change_user(target, move |conn, now| {
            change_role(conn, &actor, target, role, delete_blocking, now)
        })
        .await
    }

    /// Removes a user (see `remove`); deleted tokens are forgotten by the cache.
    #[tracing::instrument(skip(self), fields(account_id = actor.account_id, user_id = actor.user_id))]
    pub async fn remove_user(
        &self,
        actor: Actor,
        target: i64,
        delete_tokens: bool,
    ) -> ServiceResult<Changed> {
        self.change_user(target, move |conn, now| {
            remove(conn, &actor, target, delete_tokens, now)
        })
        .await
    }

    /// Deletes every active token of a user at once.
    #[tracing::instrument(skip(self), fields(account_id = actor.account_id, user_id = actor.user_id))]
    pub async fn delete_user_tokens(&self, actor: Actor, target: i64) -> ServiceResult<Changed> {
        self.change_user(target, move |conn, now| {
            delete_all_tokens(conn, &actor, target, now)
        })
        .await
    }

    /// `PATCH /iam/users/{id}` in one transaction.
    #[tracing::instrument(skip(self, update), fields(account_id = actor.account_id, user_id = actor.user_id))]
    pub async fn update_user(
        &self,
        actor: Actor,
        target: i64,
        update: UserUpdate,
    ) -> ServiceResult<(User, Account)> {
        let now = self.clock.now();
        let updated = self
            .db
            .run(move |conn| update_user(conn, &actor, target, update, now))
            .await;
        self.user_states.forget(target);
        updated
    }

    /// The user behind a set-password link, if the link still works.
    pub async fn setup_user(&self, secret: String) -> ServiceResult<Option<User>> {
        let now = self.clock.now();
        self.db
            .run(move |conn| setup_user(conn, &secret, now))
            .await
    }

    /// Sets the password behind a set-password link (the link works once).
    #[tracing::instrument(skip_all)]
    /// The link is looked up first; only a live link's password is hashed (under the
    /// password budget, holding no connection).
    pub async fn set_password(&self, secret: String, password: String) -> ServiceResult<User> {
        let now = self.clock.now();
        let link = secret.clone();
        // A turn in the budget first, as sign-in does: a flood of links told "busy" costs no
        // database work, and the lookups it does make are bounded by the budget's pace.
        let turn = self.passwords.turn().await?;
        self.db
            .run(move |conn| check_link(conn, &link, now))
            .await?;
        let hashed = self
            .passwords
            .run_in(turn, move || super::users::hash_password(&password))
            .await??;
        self.db
            .run(move |conn| set_password(conn, &secret, &hashed, now))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_administrator_may_not_stop_being_one() {
        assert!(!may_stop_being_admin(Role::Administrators, 1));
        assert!(!may_stop_being_admin(Role::Administrators, 0));
        assert!(may_stop_being_admin(Role::Administrators, 2));
    }

    #[test]
    fn anyone_else_may_change_whatever_the_count() {
        for role in Role::ALL.into_iter().filter(|r| !r.is_admin()) {
            assert!(may_stop_being_admin(role, 1), "{role}");
            assert!(may_stop_being_admin(role, 0), "{role}");
        }
    }
}
