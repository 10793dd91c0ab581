//! The token lifecycle: create, list, get, delete. The web page and the API both call these,
//! so every rule (role ceiling, the 50 limit, who sees what) lives here once.

use diesel::Connection;
use time::{OffsetDateTime, PrimitiveDateTime};

use super::{Actor, Services};
use ipnet::IpNet;

use crate::db::DbConn;
use crate::domain::input::{Expiry, TokenDescription, TokenName};
use crate::domain::leak_response::LeakResponse;
use crate::domain::policy::TokenPolicy;
use crate::domain::token::{
    from_naive, is_expiring_soon, to_naive, TokenSecret, TokenStatus, MAX_ACTIVE_TOKENS_PER_ACCOUNT,
};
use crate::domain::token_format;
use crate::domain::NoticeKind;
use crate::domain::Role;
use crate::error::{ServiceError, ServiceResult};
use crate::repo::events::AccountEvent;
use crate::repo::notices::{NewNotice, Notice};
use crate::repo::{Account, NewToken, Token, TokenFilter, TokenWithIssuer, User};

/// Rows per page of a token list.
pub const PAGE_SIZE: i64 = 50;

/// Who may see (and so manage) which tokens: Administrators every token of their account,
/// everyone else the tokens they issued.
#[derive(Debug, Clone, Copy)]
pub struct Visibility {
    pub account_id: i64,
    pub only_issuer: Option<i64>,
    /// Tokens above this role are not visible (so not deletable): a token acting with the
    /// Users role can't see or delete its issuer's Administrators tokens.
    pub max_role: Role,
}

impl Visibility {
    pub fn of(actor: &Actor) -> Visibility {
        Visibility {
            account_id: actor.account_id,
            only_issuer: (!actor.role.is_admin()).then_some(actor.user_id),
            max_role: actor.role,
        }
    }

    pub fn admits(&self, token: &Token) -> bool {
        token.account_id == self.account_id
            && self.only_issuer.is_none_or(|id| token.issuer_id == id)
            && token.role.rank() <= self.max_role.rank()
    }

    /// The same limit for a list query: `None` when every role is visible.
    pub fn roles(&self) -> Option<Vec<Role>> {
        (!self.max_role.is_admin()).then(|| self.max_role.at_most())
    }
}

/// What to create, already parsed into domain types.
#[derive(Debug, Clone)]
pub struct NewTokenRequest {
    pub name: TokenName,
    pub description: TokenDescription,
    pub role: Role,
    pub expiry: Expiry,
    /// The web form's one-time id: a second submission of the same form creates nothing.
    pub form_id: Option<String>,
    /// The token this request came through (API), which the new token can't outlive.
    pub parent: Option<i64>,
    /// The networks it may be used from (`domain::allowlist`); empty: any address.
    pub allowed_ips: Vec<IpNet>,
}

/// A token as the portal and the API show it.
#[derive(Debug, Clone)]
pub struct TokenView {
    pub id: i64,
    pub account_id: i64,
    pub name: String,
    pub description: Option<String>,
    pub role: Role,
    pub issuer_id: i64,
    pub issuer_name: String,
    pub issuer_email: String,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub last_used_at: Option<OffsetDateTime>,
    pub deleted_at: Option<OffsetDateTime>,
    pub status: TokenStatus,
    /// The token this one was created with (through the API): its id, and its name when the
    /// list that shows this one knows it.
    pub created_with: Option<(i64, Option<String>)>,
    /// After a rotation, while the old secret still works: until when.
    pub old_secret_until: Option<OffsetDateTime>,
    /// Active, but the account's token policy would not allow it today (set by lists that
    /// know the policy).
    pub outside_policy: bool,
    /// The networks it may be used from; empty: any address.
    pub allowed_ips: Vec<IpNet>,
    /// The last use's client address and user agent (`None` until used).
    pub last_used_ip: Option<String>,
    pub last_used_user_agent: Option<String>,
}

impl TokenView {
    /// Active and expiring soon (`domain::token::is_expiring_soon`).
    pub fn expiring_soon(&self, now: OffsetDateTime) -> bool {
        is_expiring_soon(self.status, self.expires_at, now)
    }

    pub fn new(row: TokenWithIssuer, now: OffsetDateTime) -> TokenView {
        let t = row.token;
        TokenView {
            status: TokenStatus::of(t.deleted_at, t.expires_at, now),
            id: t.id,
            account_id: t.account_id,
            name: t.name,
            description: t.description,
            role: t.role,
            issuer_id: t.issuer_id,
            issuer_name: crate::domain::user::display_name(&row.issuer_name, &row.issuer_email)
                .to_owned(),
            issuer_email: row.issuer_email,
            created_at: from_naive(t.created_at),
            expires_at: t.expires_at.map(from_naive),
            last_used_at: t.last_used_at.map(from_naive),
            deleted_at: t.deleted_at.map(from_naive),
            created_with: t.parent_id.map(|id| (id, None)),
            old_secret_until: t
                .old_secret_until
                .map(from_naive)
                .filter(|until| *until > now && t.deleted_at.is_none()),
            outside_policy: false,
            allowed_ips: crate::domain::allowlist::from_stored(t.allowed_ips.as_deref()),
            last_used_ip: t.last_used_ip,
            last_used_user_agent: t.last_used_user_agent,
        }
    }
}

pub enum CreateOutcome {
    /// The new token and its secret: the only time the secret exists outside the client.
    Created {
        token: TokenView,
        secret: TokenSecret,
    },
    /// This form was submitted before; that submission created `token`.
    AlreadyCreated { token: TokenView },
}

/// Creates a token for `actor`, at most 50 active per account, with a role no higher than
/// the actor's own.
pub fn create(
    conn: &mut DbConn,
    actor: &Actor,
    request: &NewTokenRequest,
    now: OffsetDateTime,
) -> ServiceResult<CreateOutcome> {
    let naive_now = to_naive(now);
    let description = request.description.clone().into_inner();
    let row = conn.transaction(|conn| {
        // Serialises creates per account, so the count below can't go stale before the insert.
        if !Account::lock(conn, actor.account_id)? {
            return Err(ServiceError::NotFound);
        }
        // The role ceiling, in one place: the acting role (a token's own), capped by the
        // issuer's role as it is now, read under the lock a role change also takes, so a
        // demotion racing this create can't leave a token above its issuer.
        let issuer = User::find(conn, actor.user_id)?
            .filter(|u| u.removed_at.is_none() && u.account_id == actor.account_id)
            .ok_or(ServiceError::NotFound)?;
        if !actor.role.capped_by(issuer.role).may_issue(request.role) {
            return Err(ServiceError::invalid(
                "role",
                format!("Can't create token with role {}", request.role),
            ));
        }
        if let Some(form_id) = request.form_id.as_deref() {
            if let Some(existing) = Token::find_by_form(conn, actor.user_id, form_id)? {
                return Ok(Err(existing.id));
            }
        }
        if Token::count_active(conn, actor.account_id, naive_now)? >= MAX_ACTIVE_TOKENS_PER_ACCOUNT
        {
            return Err(limit_reached());
        }
        let account = Account::find(conn, actor.account_id)?.ok_or(ServiceError::NotFound)?;
        account
            .token_policy()
            .check(request.expiry.instant(), now)
            .map_err(|m| ServiceError::invalid("expiry", m))?;
        // A token made with a token lives no longer than it: "never" only if it never expires.
        let parent_expiry = match request.parent {
            Some(parent_id) => Some(
                Token::find(conn, parent_id)?
                    .filter(|p| p.account_id == actor.account_id && p.deleted_at.is_none())
                    .ok_or(ServiceError::NotFound)?
                    .expires_at,
            ),
            None => None,
        };
        let expires_at = cap_expiry(request.expiry.instant().map(to_naive), [parent_expiry]);
        let allowed = crate::domain::allowlist::to_stored(&request.allowed_ips);
        let new = NewToken {
            account_id: actor.account_id,
            issuer_id: actor.user_id,
            name: request.name.as_str(),
            description: description.as_deref(),
            role: request.role,
            // Replaced below: the secret's checksum covers the id the insert assigns.
            secret_hash: PENDING_HASH,
            created_at: naive_now,
            expires_at,
            form_id: request.form_id.as_deref(),
            parent_id: request.parent,
            allowed_ips: allowed.as_deref(),
        };
        let id = Token::insert(conn, &new)?.id;
        let secret = token_format::generate_secret(id);
        Token::set_secret_hash(conn, id, &secret.hash().0)?;
        let via = super::audit::via_words(conn, actor)?;
        let mut expiry = expires_at.map_or("never expires".to_owned(), |at| {
            format!("expires {}", from_naive(at).date())
        });
        if let Some(list) = &allowed {
            expiry.push_str(&format!(", only from {}", list.replace(',', ", ")));
        }
        super::audit::record(
            conn,
            actor,
            now,
            "token.created",
            &format!(
                "Created token \"{}\" ({}, {expiry}){via}",
                request.name.as_str(),
                request.role
            ),
            Some(id),
        )?;
        Ok(Ok((id, secret)))
    })?;
    match row {
        Ok((id, secret)) => Ok(CreateOutcome::Created {
            token: load_view(conn, id, now)?,
            secret,
        }),
        Err(id) => Ok(CreateOutcome::AlreadyCreated {
            token: load_view(conn, id, now)?,
        }),
    }
}

/// What a new row holds for the one statement between its insert and its real hash (in one
/// transaction, so nobody sees it): not hex, so no secret could ever match it.
const PENDING_HASH: &str = "pending";

pub fn limit_reached() -> ServiceError {
    ServiceError::invalid(
        "limit",
        format!(
            "The account already has {MAX_ACTIVE_TOKENS_PER_ACCOUNT} active API tokens, the most it can have. Delete a token you no longer need, then create the new one."
        ),
    )
}

fn load_view(conn: &mut DbConn, id: i64, now: OffsetDateTime) -> ServiceResult<TokenView> {
    let row = Token::find_with_issuer(conn, id)?.ok_or(ServiceError::NotFound)?;
    Ok(TokenView::new(row, now))
}

/// Filters of a token list, as the web page and the API accept them.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub issued_by: Option<i64>,
    pub not_issued_by: Option<i64>,
    pub role: Option<Role>,
    pub status: Option<TokenStatus>,
    pub deleted: Option<bool>,
    /// Just this token (links from e-mails and notifications).
    pub token_id: Option<i64>,
    /// Only tokens that are expiring soon (the badge's link; use with `Active`).
    pub expiring_soon: bool,
    /// 1-based.
    pub page: i64,
    /// `None` = every matching token (the API's list without `limit`).
    pub per_page: Option<i64>,
    /// Rows to skip (the API's `offset`); `None`: from `page`.
    pub offset: Option<i64>,
    /// Keyset paging (see `TokenFilter`): tokens older than `before`, or the page just newer
    /// than `after`.
    pub before: Option<i64>,
    pub after: Option<i64>,
    /// Also count every match (`TokenPage::total`).
    pub count: bool,
}

pub struct TokenPage {
    pub tokens: Vec<TokenView>,
    /// Every match, when the query asked for the count.
    pub total: Option<i64>,
    pub page: i64,
    pub per_page: i64,
}

/// The tokens `actor` may see that match `query`, newest first.
pub fn list(
    conn: &mut DbConn,
    actor: &Actor,
    query: &ListQuery,
    now: OffsetDateTime,
) -> ServiceResult<TokenPage> {
    let visibility = Visibility::of(actor);
    let per_page = query.per_page.unwrap_or(i64::MAX / 4).max(1);
    let page = query.page.max(1);
    let issuer_id = match (visibility.only_issuer, query.issued_by) {
        // Someone else's tokens are not visible: an empty list, not an error.
        (Some(own), Some(asked)) if own != asked => {
            return Ok(TokenPage {
                tokens: vec![],
                total: query.count.then_some(0),
                page,
                per_page,
            });
        }
        (Some(own), _) => Some(own),
        (None, asked) => asked,
    };
    let filter = TokenFilter {
        account_id: visibility.account_id,
        issuer_id,
        not_issuer_id: query.not_issued_by,
        role: query.role,
        roles: visibility.roles(),
        status: query.status,
        deleted: query.deleted,
        ids: query.token_id.map(|id| vec![id]),
        expiring_soon: query.expiring_soon,
        limit: per_page,
        offset: query
            .offset
            .unwrap_or_else(|| (page - 1).saturating_mul(per_page)),
        before: query.before,
        after: query.after,
        count: query.count,
    };
    let (rows, total) = Token::list(conn, &filter, to_naive(now))?;
    let mut tokens: Vec<TokenView> = rows.into_iter().map(|r| TokenView::new(r, now)).collect();
    let policy = policy(conn, actor.account_id)?;
    if policy.is_set() {
        for t in tokens
            .iter_mut()
            .filter(|t| t.status == TokenStatus::Active)
        {
            t.outside_policy = policy.excludes(t.created_at, t.expires_at);
        }
    }
    // Name the parents the viewer may see (one lookup each; a page holds at most a few).
    let visibility = Visibility::of(actor);
    for view in tokens.iter_mut() {
        if let Some((parent_id, name)) = view.created_with.as_mut() {
            if let Some(parent) = Token::find(conn, *parent_id)?.filter(|p| visibility.admits(p)) {
                *name = Some(parent.name);
            }
        }
    }
    Ok(TokenPage {
        tokens,
        total,
        page,
        per_page,
    })
}

/// How many active tokens the account has (the 50 limit counts these).
pub fn active_count(conn: &mut DbConn, account_id: i64, now: OffsetDateTime) -> ServiceResult<i64> {
    Ok(Token::count_active(conn, account_id, to_naive(now))?)
}

/// One token, if `actor` may see it.
pub fn get(
    conn: &mut DbConn,
    actor: &Actor,
    id: i64,
    now: OffsetDateTime,
) -> ServiceResult<TokenView> {
    let row = Token::find_with_issuer(conn, id)?.ok_or(ServiceError::NotFound)?;
    if !Visibility::of(actor).admits(&row.token) {
        return Err(ServiceError::NotFound);
    }
    Ok(TokenView::new(row, now))
}

pub enum DeleteOutcome {
    /// Deleted now, with every token it created (the ids, for the cache).
    Deleted(TokenView, Vec<i64>),
    /// It was deleted before; nothing changed.
    AlreadyDeleted(TokenView),
}

/// Soft-deletes a token `actor` may see (Administrators: any of the account; others: their own).
pub fn delete(
    conn: &mut DbConn,
    actor: &Actor,
    id: i64,
    now: OffsetDateTime,
) -> ServiceResult<DeleteOutcome> {
    let naive_now: PrimitiveDateTime = to_naive(now);
    let retired = conn.transaction(|conn| -> ServiceResult<Option<Vec<i64>>> {
        let token = lock_visible(conn, actor, id)?;
        if token.deleted_at.is_some() {
            return Ok(None);
        }
        let retired = retire(conn, id, Some(actor.user_id), naive_now)?;
        super::audit::record_retired(
            conn,
            Some(actor),
            now,
            &token,
            &retired,
            super::audit::Retired::ByPerson,
            true,
        )?;
        Ok(Some(retired))
    })?;
    let view = load_view(conn, id, now)?;
    Ok(match retired {
        None => DeleteOutcome::AlreadyDeleted(view),
        Some(ids) => DeleteOutcome::Deleted(view, ids),
    })
}

/// A token `actor` may manage, read under the account's lock (the start of every change to
/// one): visible to them, else "not found".
fn lock_visible(conn: &mut DbConn, actor: &Actor, id: i64) -> ServiceResult<Token> {
    if !Account::lock(conn, actor.account_id)? {
        return Err(ServiceError::NotFound);
    }
    let token = Token::find(conn, id)?.ok_or(ServiceError::NotFound)?;
    if !Visibility::of(actor).admits(&token) {
        return Err(ServiceError::NotFound);
    }
    Ok(token)
}

/// A token `actor` may manage that isn't deleted (under the account's lock); `field` names
/// where the refusal goes.
fn lock_changeable(
    conn: &mut DbConn,
    actor: &Actor,
    id: i64,
    field: &'static str,
) -> ServiceResult<Token> {
    let token = lock_visible(conn, actor, id)?;
    if token.deleted_at.is_some() {
        return Err(ServiceError::invalid(
            field,
            "A deleted token can't be changed.",
        ));
    }
    Ok(token)
}

/// Changes a token's name and description (its role and expiry don't change: rotation is
/// for that). A deleted token can't be edited.
pub fn rename(
    conn: &mut DbConn,
    actor: &Actor,
    id: i64,
    name: &TokenName,
    description: &TokenDescription,
    now: OffsetDateTime,
) -> ServiceResult<TokenView> {
    conn.transaction(|conn| {
        let token = lock_changeable(conn, actor, id, "name")?;
        let description = description.clone().into_inner();
        if token.name == name.as_str() && token.description == description {
            return Ok(());
        }
        Token::rename(conn, id, name.as_str(), description.as_deref())?;
        let summary = if token.name == name.as_str() {
            format!("Changed the description of token \"{}\"", token.name)
        } else {
            format!("Renamed token \"{}\" to \"{}\"", token.name, name.as_str())
        };
        super::audit::record(conn, actor, now, "token.renamed", &summary, Some(id))
    })?;
    load_view(conn, id, now)
}

/// Sets the networks a token may be used from (empty: any), recorded when it changes.
pub fn set_allowed_ips(
    conn: &mut DbConn,
    actor: &Actor,
    id: i64,
    nets: &[IpNet],
    now: OffsetDateTime,
) -> ServiceResult<TokenView> {
    conn.transaction(|conn| {
        let token = lock_changeable(conn, actor, id, "allowed_ips")?;
        let stored = crate::domain::allowlist::to_stored(nets);
        if stored == token.allowed_ips {
            return Ok(());
        }
        Token::set_allowed_ips(conn, id, stored.as_deref())?;
        let summary = match &stored {
            Some(list) => format!(
                "Limited token \"{}\" to {}",
                token.name,
                list.replace(',', ", ")
            ),
            None => format!("Let token \"{}\" be used from any address", token.name),
        };
        super::audit::record(
            conn,
            actor,
            now,
            "token.allowlist_changed",
            &summary,
            Some(id),
        )
    })?;
    load_view(conn, id, now)
}

/// What a rotation asks for.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// How long the old secret keeps working (0: it stops now; at most 7 days).
    pub grace: time::Duration,
    /// A new expiry (`None`: keep the token's own), within the account's policy.
    pub expiry: Option<Expiry>,
}

/// Gives an active token a new secret (same id, name, role, issuer), keeping the old one
/// working for `rotation.grace`. Both are kept only as SHA-256; a secret from an earlier
/// rotation still in its grace is forgotten now. The expiry stays, or becomes a new one; either
/// must satisfy the account's policy. Returns the token and its new secret (shown once).
///
/// Rotation stays inside the lineage rules (`rotation_rules`): only the token's issuer
/// rotates it, a token credential only itself, and the new expiry is capped like a new
/// token's (at the parent's, and at the calling token's own).
pub fn rotate(
    conn: &mut DbConn,
    actor: &Actor,
    id: i64,
    rotation: &Rotation,
    now: OffsetDateTime,
) -> ServiceResult<(TokenView, TokenSecret)> {
    let secret = token_format::generate_secret(id);
    conn.transaction(|conn| {
        let token = lock_visible(conn, actor, id)?;
        may_rotate(actor, &token)?;
        if TokenStatus::of(token.deleted_at, token.expires_at, now) != TokenStatus::Active {
            return Err(ServiceError::invalid(
                "token",
                "Only an active token can be rotated: create a new one instead.",
            ));
        }
        let wanted = match &rotation.expiry {
            Some(e) => e.instant(),
            None => token.expires_at.map(from_naive),
        };
        let policy = Account::find(conn, actor.account_id)?
            .map(|a| a.token_policy())
            .unwrap_or_default();
        policy
            .check(wanted, now)
            .map_err(|m| ServiceError::invalid("expiry", m))?;
        let parent_expiry = match token.parent_id {
            Some(parent) => Some(
                Token::find(conn, parent)?
                    .map(|p| p.expires_at)
                    // A parent that is gone: the child went with it (`retire`), so this
                    // can't be reached for an active child; refuse rather than uncap.
                    .ok_or(ServiceError::NotFound)?,
            ),
            None => None,
        };
        let caller_expiry = acting_token(actor).map(|_| token.expires_at);
        let expires_at = cap_expiry(wanted.map(to_naive), [parent_expiry, caller_expiry]);
        // The old secret never outlives the token.
        let until = to_naive(now + rotation.grace);
        let until = expires_at.map_or(until, |at| until.min(at));
        let old = (rotation.grace > time::Duration::ZERO && until > to_naive(now))
            .then_some((token.secret_hash.as_str(), until));
        Token::rotate(conn, id, &secret.hash().0, old, expires_at)?;
        let via = super::audit::via_words(conn, actor)?;
        let grace = match old {
            Some((_, until)) => {
                let until = from_naive(until);
                format!(
                    "the old secret works until {} {:02}:{:02} UTC",
                    until.date(),
                    until.hour(),
                    until.minute()
                )
            }
            None => "the old secret stopped at once".to_owned(),
        };
        super::audit::record(
            conn,
            actor,
            now,
            "token.rotated",
            &format!("Rotated token \"{}\"{via}: {grace}", token.name),
            Some(id),
        )
    })?;
    Ok((load_view(conn, id, now)?, secret))
}

/// The token credential `actor` acts through, if any (not a JWT, not the portal).
pub fn acting_token(actor: &Actor) -> Option<i64> {
    match actor.origin.via {
        super::Via::Api(token) => token,
        _ => None,
    }
}

/// Who may rotate a token. A rotation hands out a new secret that acts as the token's issuer,
/// so only the issuer may receive one: an Administrator who could rotate a colleague's token
/// would hold a credential that the gateway reports as that colleague (deleting it is how an
/// Administrator ends someone else's token). And a token credential rotates only itself, so a
/// leaked token can't mint a fresh secret for a sibling that deleting the leaked one would
/// leave working.
pub fn may_rotate(actor: &Actor, token: &Token) -> ServiceResult<()> {
    if token.issuer_id != actor.user_id {
        return Err(ServiceError::Forbidden(
            "Only the person who issued a token can rotate it (a new secret acts as them). To end this token, delete it."
                .into(),
        ));
    }
    if let Some(caller) = acting_token(actor) {
        if caller != token.id {
            return Err(ServiceError::Forbidden(
                "A token can rotate only itself. Sign in to the portal, or use a JWT, to rotate your other tokens."
                    .into(),
            ));
        }
    }
    Ok(())
}

/// `wanted` (`None`: never), no later than any of `caps` (`Some(None)`: a cap that never
/// expires, so no cap; `None`: no such cap).
pub fn cap_expiry(
    wanted: Option<PrimitiveDateTime>,
    caps: impl IntoIterator<Item = Option<Option<PrimitiveDateTime>>>,
) -> Option<PrimitiveDateTime> {
    caps.into_iter()
        .flatten()
        .flatten()
        .fold(wanted, |at, cap| Some(at.map_or(cap, |at| at.min(cap))))
}

/// Forgets the old secrets whose grace has ended (a sweep's step), recording each once; at
/// most `limit` per call. Returns how many.
pub fn end_graces(conn: &mut DbConn, now: OffsetDateTime, limit: i64) -> ServiceResult<usize> {
    let mut ended = 0;
    for token in Token::graces_ended(conn, to_naive(now), limit)? {
        conn.transaction(|conn| {
            // Conditional: of two sweeps at once, one forgets it and records it.
            if Token::forget_old_secret(conn, token.id, to_naive(now))? {
                super::audit::record_system(
                    conn,
                    token.account_id,
                    now,
                    "token.grace_ended",
                    &format!(
                        "The old secret of token \"{}\" stopped working (its grace ended)",
                        token.name
                    ),
                    Some(token.id),
                )?;
                ended += 1;
            }
            Ok::<_, ServiceError>(())
        })?;
    }
    Ok(ended)
}

/// The account's token policy.
pub fn policy(conn: &mut DbConn, account_id: i64) -> ServiceResult<TokenPolicy> {
    Ok(Account::find(conn, account_id)?
        .ok_or(ServiceError::NotFound)?
        .token_policy())
}

/// Sets the account's token policy (Administrators only), recorded when it changes.
pub fn set_policy(
    conn: &mut DbConn,
    actor: &Actor,
    wanted: TokenPolicy,
    now: OffsetDateTime,
) -> ServiceResult<TokenPolicy> {
    actor.require_admin()?;
    conn.transaction(|conn| {
        if !Account::lock(conn, actor.account_id)? {
            return Err(ServiceError::NotFound);
        }
        let before = policy(conn, actor.account_id)?;
        if before != wanted {
            Account::set_token_policy(
                conn,
                actor.account_id,
                wanted.max_lifetime_days,
                wanted.expiry_required,
            )?;
            let lifetime = wanted
                .max_lifetime_days
                .map_or("no maximum lifetime".to_owned(), |d| {
                    format!("a maximum lifetime of {d} days")
                });
            let required = if wanted.expiry_required {
                "an expiry date required"
            } else {
                "no expiry date required"
            };
            super::audit::record(
                conn,
                actor,
                now,
                "account.token_policy",
                &format!("Set the token policy: {lifetime}, {required}"),
                None,
            )?;
        }
        Ok(wanted)
    })
}

/// Everything a token's page shows: the token, its trail, and the account's policy.
pub struct TokenDetail {
    pub token: TokenView,
    pub usage: super::usage::Usage,
    pub events: Vec<super::audit::Event>,
    pub policy: TokenPolicy,
}

/// A token's page, if `actor` may see the token.
pub fn token_page(
    conn: &mut DbConn,
    actor: &Actor,
    id: i64,
    now: OffsetDateTime,
) -> ServiceResult<TokenDetail> {
    let mut token = get(conn, actor, id, now)?;
    let policy = policy(conn, actor.account_id)?;
    token.outside_policy =
        token.status == TokenStatus::Active && policy.excludes(token.created_at, token.expires_at);
    if let Some((parent_id, name)) = token.created_with.as_mut() {
        if let Some(parent) =
            Token::find(conn, *parent_id)?.filter(|p| Visibility::of(actor).admits(p))
        {
            *name = Some(parent.name);
        }
    }
    let events = super::audit::for_token(conn, actor.account_id, id, 100)?;
    let usage = super::usage::of_visible_token(conn, id, now)?;
    Ok(TokenDetail {
        token,
        usage,
        events,
        policy,
    })
}

/// What became of a token found where it shouldn't be (`revoke_found`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoundToken {
    /// It was active and is now revoked (with the tokens it created: their ids, for caches).
    Revoked,
    /// It is active and stays so: its account only wants to be told (`LeakResponse`).
    Reported,
    /// It was already expired or deleted: nothing to do.
    AlreadyDead(TokenStatus),
    /// No token has this id and secret.
    Unknown,
}

/// The status of a token known only by its wire form: `None` when no token has this id and
/// secret (so a guess at an id learns nothing about that token).
pub fn status_of_presented(
    conn: &mut DbConn,
    presented: &crate::domain::token::PresentedToken,
    now: OffsetDateTime,
) -> ServiceResult<Option<(Token, TokenStatus)>> {
    let Some(token) = Token::find(conn, presented.id)? else {
        return Ok(None);
    };
    let hash = presented.secret.hash();
    let in_grace = token.old_secret_until.is_some_and(|u| from_naive(u) > now)
        && token
            .old_secret_hash
            .as_deref()
            .is_some_and(|old| hash.matches(old));
    if !hash.matches(&token.secret_hash) && !in_grace {
        return Ok(None);
    }
    let status = TokenStatus::of(token.deleted_at, token.expires_at, now);
    Ok(Some((token, status)))
}

/// Revokes an active token that was found where it shouldn't be (`where_found`: a file, a
/// URL), with every token it created — or, if its account is set to notify only, leaves it
/// — records it in the account's event log and alerts the issuer and the Administrators. No person
/// acts: the presented secret itself is the proof. Returns what happened and the ids revoked.
pub fn revoke_found(
    conn: &mut DbConn,
    presented: &crate::domain::token::PresentedToken,
    where_found: &str,
    now: OffsetDateTime,
) -> ServiceResult<(FoundToken, Vec<i64>)> {
    // Which account, read first: the transaction then starts with the account's lock (on
    // SQLite a read that turns into a write inside one transaction can't wait, it fails).
    let Some((token, _)) = status_of_presented(conn, presented, now)? else {
        return Ok((FoundToken::Unknown, vec![]));
    };
    conn.transaction(|conn| {
        Account::lock(conn, token.account_id)?;
        // Read again under the lock, so a delete racing this one is seen and wins once.
        let Some((token, status)) = status_of_presented(conn, presented, now)? else {
            return Ok((FoundToken::Unknown, vec![]));
        };
        if status != TokenStatus::Active {
            return Ok((FoundToken::AlreadyDead(status), vec![]));
        }
        let revoke = Account::find(conn, token.account_id)?
            .is_none_or(|a| a.leak_response == LeakResponse::Revoke);
        let (outcome, ids, kind, verb) = if revoke {
            let ids = retire(conn, token.id, None, to_naive(now))?;
            super::audit::record_retired(
                conn,
                None,
                now,
                &token,
                &ids,
                super::audit::Retired::Found(&clip(where_found, 200)),
                false,
            )?;
            (FoundToken::Revoked, ids, "token.revoked", "revoked")
        } else {
            (
                FoundToken::Reported,
                vec![],
                "token.leaked",
                "reported leaked (not revoked: the account only wants to be told)",
            )
        };
        let summary = format!(
            "Token {} \"{}\" {verb}: found in {}",
            token.id,
            token.name,
            clip(where_found, 500)
        );
        super::audit::record_system(conn, token.account_id, now, kind, &summary, Some(token.id))?;
        // The issuer and the Administrators are told, in the portal and by e-mail (a leak
        // alert each, sent by the next delivery, whatever their expiry-e-mail preference).
        let users = User::list_in_account(conn, token.account_id)?;
        let alerts: Vec<NewNotice> = super::notices::recipients(&token, &users)
            .into_iter()
            .map(|user| NewNotice {
                token_id: token.id,
                kind: NoticeKind::Leaked,
                user_id: user.id,
                created_at: to_naive(now),
                next_attempt_at: to_naive(now),
                detail: Some(clip(where_found, 500)),
            })
            .collect();
        Notice::insert_many(conn, &alerts)?;
        Ok((outcome, ids))
    })
}

/// At most `max` characters of `text` (an address or path from outside), control and
/// invisible characters escaped (`domain::text`), with "…" if cut.
fn clip(text: &str, max: usize) -> String {
    let text = crate::domain::text::escape_controls(text);
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.into_owned(),
    }
}

/// Marks a token deleted by `by`, with every active token it created, transitively, and
/// cancels their pending expiry e-mails. Returns the ids deleted now (for the cache). For use
/// inside a transaction that holds the account's lock.
pub(crate) fn retire(
    conn: &mut DbConn,
    id: i64,
    by: Option<i64>,
    at: PrimitiveDateTime,
) -> ServiceResult<Vec<i64>> {
    let mut retired = vec![];
    let mut frontier = vec![id];
    while !frontier.is_empty() {
        for &token in &frontier {
            if Token::mark_deleted(conn, token, by, at)? {
                retired.push(token);
            }
            Notice::cancel_for_token(conn, token)?;
        }
        // Ids only grow and a token's parent is older, so this ends; the cap is a guard.
        frontier = Token::active_children(conn, &frontier)?;
        if retired.len() > 10_000 {
            break;
        }
    }
    Ok(retired)
}

/// Everything the tokens section of the portal shows, loaded in one trip.
pub struct TokenSection {
    pub page: TokenPage,
    pub active_count: i64,
    /// The account's users, for the "Issued by" filter (Administrators only; else empty).
    pub issuers: Vec<User>,
    /// The token a delete confirmation asks about.
    pub confirm: Option<TokenView>,
}

impl Services {
    /// A token's page (see `token_page`).
    pub async fn token_page(&self, actor: Actor, id: i64) -> ServiceResult<TokenDetail> {
        let now = self.clock.now();
        self.db
            .run(move |conn| token_page(conn, &actor, id, now))
            .await
    }

    /// Sets a token's address allowlist; this instance's cache forgets the token at once (the
    /// others within their second).
    #[tracing::instrument(skip(self, nets), fields(account_id = actor.account_id, user_id = actor.user_id))]
    pub async fn set_token_allowlist(
        &self,
        actor: Actor,
        id: i64,
        nets: Vec<IpNet>,
    ) -> ServiceResult<TokenView> {
        let now = self.clock.now();
        let view = self
            .db
            .run(move |conn| set_allowed_ips(conn, &actor, id, &nets, now))
            .await?;
        self.forget_tokens(&[id]);
        Ok(view)
    }

    /// Renames a token (see `rename`).
    #[tracing::instrument(skip(self, name, description), fields(account_id = actor.account_id, user_id = actor.user_id))]
    pub async fn rename_token(
        &self,
        actor: Actor,
        id: i64,
        name: TokenName,
        description: TokenDescription,
    ) -> ServiceResult<TokenView> {
        let now = self.clock.now();
        self.db
            .run(move |conn| rename(conn, &actor, id, &name, &description, now))
            .await
    }

    /// Rotates a token (see `rotate`); this instance's cache forgets it at once, the others
    /// reload it within their second.
    #[tracing::instrument(skip(self, rotation), fields(account_id = actor.account_id, user_id = actor.user_id))]
    pub async fn rotate_token(
        &self,
        actor: Actor,
        id: i64,
        rotation: Rotation,
    ) -> ServiceResult<(TokenView, TokenSecret)> {
        let now = self.clock.now();
        let rotated = self
            .db
            .run(move |conn| rotate(conn, &actor, id, &rotation, now))
            .await?;
        self.forget_tokens(&[id]);
        tracing::info!(token_id = id, "token rotated");
        Ok(rotated)
    }

    /// The account's token policy.
    pub async fn token_policy(&self, actor: Actor) -> ServiceResult<TokenPolicy> {
        self.db
            .run(move |conn| policy(conn, actor.account_id))
            .await
    }

    /// Sets the account's token policy (Administrators only).
    pub async fn set_token_policy(
        &self,
        actor: Actor,
        wanted: TokenPolicy,
    ) -> ServiceResult<TokenPolicy> {
        let now = self.clock.now();
        self.db
            .run(move |conn| set_policy(conn, &actor, wanted, now))
            .await
    }

    /// What the account does with a token reported leaked (Administrators only).
    pub async fn leak_response(&self, actor: Actor) -> ServiceResult<LeakResponse> {
        actor.require_admin()?;
        self.db
            .run(move |conn| {
                Ok(Account::find(conn, actor.account_id)?
                    .ok_or(ServiceError::NotFound)?
                    .leak_response)
            })
            .await
    }

    /// Sets it (Administrators only), recorded in the account's event log.
    pub async fn set_leak_response(
        &self,
        actor: Actor,
        response: LeakResponse,
    ) -> ServiceResult<()> {
        actor.require_admin()?;
        let now = to_naive(self.clock.now());
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    if !Account::set_leak_response(conn, actor.account_id, response)? {
                        return Err(ServiceError::NotFound);
                    }
                    let summary = match response {
                        LeakResponse::Revoke => "Tokens reported leaked are revoked at once",
                        LeakResponse::NotifyOnly => {
                            "Tokens reported leaked are only reported, not revoked"
                        }
                    };
                    AccountEvent::record(
                        conn,
                        actor.account_id,
                        Some(actor.user_id),
                        now,
                        "account.leak_response",
                        summary,
                    )?;
                    Ok(())
                })
            })
            .await
    }

    /// The tokens section: one page of what `actor` may see, the account's active count, the
    /// issuers to filter by, and the token a delete confirmation is about (404 if not visible).
    pub async fn token_section(
        &self,
        actor: Actor,
        query: ListQuery,
        confirm: Option<i64>,
    ) -> ServiceResult<TokenSection> {
        let now = self.clock.now();
        self.db
            .run(move |conn| {
                let page = list(conn, &actor, &query, now)?;
                let active_count = active_count(conn, actor.account_id, now)?;
                let issuers = if actor.role.is_admin() {
                    User::list_in_account(conn, actor.account_id)?
                } else {
                    vec![]
                };
                let confirm = confirm.map(|id| get(conn, &actor, id, now)).transpose()?;
                Ok(TokenSection {
                    page,
                    active_count,
                    issuers,
                    confirm,
                })
            })
            .await
    }

    /// The tokens `actor` may see that match `query`.
    pub async fn list_tokens(&self, actor: Actor, query: ListQuery) -> ServiceResult<TokenPage> {
        let now = self.clock.now();
        self.db
            .run(move |conn| list(conn, &actor, &query, now))
            .await
    }

    /// One token, if `actor` may see it.
    pub async fn token(&self, actor: Actor, id: i64) -> ServiceResult<TokenView> {
        let now = self.clock.now();
        self.db.run(move |conn| get(conn, &actor, id, now)).await
    }

    /// How many active tokens the account has (the 50 limit counts these).
    pub async fn active_token_count(&self, account_id: i64) -> ServiceResult<i64> {
        let now = self.clock.now();
        self.db
            .run(move |conn| active_count(conn, account_id, now))
            .await
    }

    #[tracing::instrument(skip(self, request), fields(account_id = actor.account_id, user_id = actor.user_id, role = %request.role))]
    pub async fn create_token(
        &self,
        actor: Actor,
        request: NewTokenRequest,
    ) -> ServiceResult<CreateOutcome> {
        let now = self.clock.now();
        let outcome = self
            .db
            .run(move |conn| create(conn, &actor, &request, now))
            .await?;
        if let CreateOutcome::Created { token, .. } = &outcome {
            tracing::info!(token_id = token.id, "token created");
        }
        Ok(outcome)
    }

    /// Deletes a token (web page and API alike) and forgets it in this instance's cache, so
    /// it is refused from the very next request.
    #[tracing::instrument(skip(self), fields(account_id = actor.account_id, user_id = actor.user_id))]
    pub async fn delete_token(&self, actor: Actor, token_id: i64) -> ServiceResult<DeleteOutcome> {
        let now = self.clock.now();
        let outcome = self
            .db
            .run(move |conn| delete(conn, &actor, token_id, now))
            .await?;
        self.forget_tokens(&[token_id]);
        if let DeleteOutcome::Deleted(_, ids) = &outcome {
            self.forget_tokens(ids);
            tracing::info!(with_created = ids.len().saturating_sub(1), "token deleted");
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(user_id: i64, account_id: i64, role: Role) -> Actor {
        Actor {
            user_id,
            account_id,
            role,
            origin: Default::default(),
        }
    }

    fn token(account_id: i64, issuer_id: i64) -> Token {
        Token::fixture(account_id, issuer_id)
    }

    #[test]
    fn administrators_see_every_token_of_their_account_and_no_other() {
        let admin = Visibility::of(&actor(1, 7, Role::Administrators));
        assert_eq!(admin.only_issuer, None);
        assert!(admin.admits(&token(7, 1)));
        assert!(admin.admits(&token(7, 2)), "a colleague's token");
        assert!(!admin.admits(&token(8, 1)), "another account's token");
    }

    #[test]
    fn an_expiry_is_capped_by_every_cap_that_expires_and_by_none_that_doesnt() {
        use time::macros::datetime;
        let (soon, later, latest) = (
            datetime!(2026-12-10 23:59:59),
            datetime!(2027-01-10 23:59:59),
            datetime!(2028-01-01 00:00:00),
        );
        assert_eq!(cap_expiry(None, []), None, "nothing caps never");
        assert_eq!(
            cap_expiry(None, [Some(None)]),
            None,
            "a parent that never expires"
        );
        assert_eq!(cap_expiry(None, [Some(Some(later))]), Some(later));
        assert_eq!(cap_expiry(Some(latest), [Some(Some(later))]), Some(later));
        assert_eq!(cap_expiry(Some(soon), [Some(Some(later))]), Some(soon));
        assert_eq!(
            cap_expiry(Some(latest), [Some(Some(later)), None, Some(Some(soon))]),
            Some(soon),
            "the earliest of parent and calling token"
        );
    }

    #[test]
    fn only_the_issuer_rotates_and_a_token_only_itself() {
        let mut t = token(7, 2);
        t.id = 40;
        let issuer = actor(2, 7, Role::Engineers);
        assert!(may_rotate(&issuer, &t).is_ok(), "the issuer, in the portal");
        let admin = actor(1, 7, Role::Administrators);
        assert!(matches!(
            may_rotate(&admin, &t),
            Err(ServiceError::Forbidden(_))
        ));
        let itself = issuer.clone().from(super::super::Via::Api(Some(40)), "");
        assert!(may_rotate(&itself, &t).is_ok());
        let sibling = issuer.clone().from(super::super::Via::Api(Some(41)), "");
        assert!(matches!(
            may_rotate(&sibling, &t),
            Err(ServiceError::Forbidden(_))
        ));
        let jwt = issuer.from(super::super::Via::Api(None), "");
        assert!(may_rotate(&jwt, &t).is_ok(), "the issuer's JWT");
    }

    #[test]
    fn everyone_else_sees_only_the_tokens_they_issued() {
        for role in Role::ALL.into_iter().filter(|r| !r.is_admin()) {
            let v = Visibility::of(&actor(2, 7, role));
            assert_eq!(v.only_issuer, Some(2), "{role}");
            assert!(v.admits(&token(7, 2)), "{role}: own token");
            assert!(!v.admits(&token(7, 1)), "{role}: a colleague's token");
            assert!(!v.admits(&token(8, 2)), "{role}: another account");
        }
    }
}
