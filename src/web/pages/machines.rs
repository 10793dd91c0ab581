//! The Service accounts page (Administrators; issue 29): the account's machine identities
//! (adding one, removing one: a sudo act that ends its tokens) and the workload identity
//! federation trust policies that mint their short-lived tokens for CI jobs. Their long-lived
//! tokens are made on the usual create form ("Issued to").

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use askama::Template;
use serde::{Deserialize, Serialize};

use crate::domain::input::PersonName;
use crate::domain::{Role, ServiceAccountId, TrustPolicyId};
use crate::error::ServiceError;
use crate::services::federation::{PolicyInput, PolicyView};
use crate::services::people::service_accounts::{
    check_description, NewServiceAccount, ServiceAccountView,
};
use crate::web::auth::SignedIn;
use crate::web::csrf::CsrfForm;
use crate::web::ids::Id;
use crate::web::pages::login::NoFields;
use crate::web::views::{render, see_other, ErrorSummary, Layout};
use crate::web::{AppState, WebError};

const PAGE: &str = "/service-accounts";

struct RoleChoice {
    id: i32,
    label: &'static str,
    selected: bool,
}

fn roles(of: &SignedIn, chosen: &str) -> Vec<RoleChoice> {
    let chosen = Role::parse(chosen).unwrap_or(Role::Users);
    of.user
        .role
        .issuable()
        .into_iter()
        .map(|r| RoleChoice {
            id: r.id(),
            label: r.name(),
            selected: r == chosen,
        })
        .collect()
}

struct PolicyRow {
    id: i64,
    issuer: String,
    audience: String,
    conditions: String,
    service_account: String,
    role: String,
    minutes: i32,
}

impl PolicyRow {
    fn of(p: PolicyView) -> PolicyRow {
        PolicyRow {
            id: p.id.get(),
            issuer: p.issuer,
            audience: p.audience,
            conditions: p
                .conditions
                .iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect::<Vec<_>>()
                .join("\n"),
            service_account: p.service_account_name,
            role: p.role.name().to_owned(),
            minutes: p.lifetime_seconds / 60,
        }
    }
}

#[derive(Template)]
#[template(path = "service_accounts.html")]
struct MachinesPage {
    layout: Layout,
    accounts: Vec<ServiceAccountView>,
    policies: Vec<PolicyRow>,
    account_form: AccountForm,
    account_roles: Vec<RoleChoice>,
    account_errors: ErrorSummary,
    policy_form: PolicyForm,
    policy_roles: Vec<RoleChoice>,
    policy_errors: ErrorSummary,
    exchange_url: String,
}

/// "Add a service account", as typed.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct AccountForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    role: String,
}

/// "Add a trust policy", as typed; `conditions` is one `claim = value or pattern` per line.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct PolicyForm {
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    audience: String,
    #[serde(default)]
    conditions: String,
    #[serde(default)]
    service_account: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    minutes: String,
}

async fn page(
    state: &AppState,
    me: &SignedIn,
    account_form: Option<AccountForm>,
    account_errors: ErrorSummary,
    policy_form: Option<PolicyForm>,
    policy_errors: ErrorSummary,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let accounts = state.people.service_accounts(me.actor()).await?;
    let policies = state.federation.policies(me.actor()).await?;
    let account_form = account_form.unwrap_or_default();
    let policy_form = policy_form.unwrap_or(PolicyForm {
        minutes: "15".into(),
        ..PolicyForm::default()
    });
    render(
        status,
        &MachinesPage {
            layout: me.layout("service-accounts"),
            account_roles: roles(me, &account_form.role),
            policy_roles: roles(me, &policy_form.role),
            accounts,
            policies: policies.into_iter().map(PolicyRow::of).collect(),
            account_form,
            account_errors,
            policy_form,
            policy_errors,
            exchange_url: format!(
                "{}/iam/auth/token-exchange",
                state.settings.base_url.trim_end_matches('/')
            ),
        },
    )
}

fn summary_of(id: &'static str, problems: Vec<(&'static str, String)>) -> ErrorSummary {
    let mut s = ErrorSummary::new(id);
    for (field, m) in problems {
        s.add(field, m);
    }
    s
}

#[get("/service-accounts")]
pub async fn list(state: web::Data<AppState>, me: SignedIn) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    page(
        &state,
        &me,
        None,
        ErrorSummary::new("error-summary-accounts"),
        None,
        ErrorSummary::new("error-summary-policies"),
        StatusCode::OK,
    )
    .await
}

#[post("/service-accounts")]
pub async fn add(
    state: web::Data<AppState>,
    me: SignedIn,
    form: CsrfForm<AccountForm>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let mut problems = vec![];
    let name = PersonName::parse(&form.name)
        .map_err(|m| problems.push(("name", m)))
        .ok();
    let description = check_description(&form.description)
        .map_err(|m| problems.push(("description", m)))
        .ok();
    let role = Role::parse(&form.role)
        .ok_or_else(|| problems.push(("role", "Choose a role from the list.".to_string())))
        .ok();
    let result = match (name, description, role) {
        (Some(name), Some(description), Some(role)) => {
            state
                .people
                .create_service_account(
                    me.actor(),
                    NewServiceAccount {
                        name,
                        description,
                        role,
                    },
                )
                .await
        }
        _ => Err(ServiceError::Invalid(problems)),
    };
    match result {
        Ok(sa) => {
            me.session.set_flash(&format!(
                "Service account \"{}\" added. Issue it a token on the Create API token form, or let CI jobs exchange their own identity for one with a trust policy.",
                sa.name
            ));
            Ok(see_other(PAGE))
        }
        Err(ServiceError::Invalid(problems)) => {
            let s = summary_of("error-summary-accounts", problems);
            let typed = form.into_inner();
            let none = ErrorSummary::new("error-summary-policies");
            page(
                &state,
                &me,
                Some(typed),
                s,
                None,
                none,
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[post("/service-accounts/{serviceAccountId}/remove")]
pub async fn remove(
    state: web::Data<AppState>,
    me: SignedIn,
    id: Id<ServiceAccountId>,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let action = format!("/service-accounts/{}/remove", id.get());
    if let Some(ask) = super::sudo::unless_recent(&state, &me, &action, vec![]).await? {
        return Ok(ask);
    }
    let sa = state.people.service_account(me.actor(), id.get()).await?;
    let changed = state
        .people
        .remove_service_account(me.actor(), id.get())
        .await?;
    me.session.set_flash(&format!(
        "Service account \"{}\" removed, with {} and its trust policies.",
        sa.name,
        crate::domain::count(changed.deleted_tokens.len() as i64, "token", "tokens")
    ));
    Ok(see_other(PAGE))
}

/// `claim = value` lines, or the line that isn't one.
fn conditions(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((claim, value)) = line.split_once('=') else {
            return Err(format!(
                "Line {} isn't \"claim = value or pattern\", like sub = repo:acme/app:ref:refs/heads/main.",
                n + 1
            ));
        };
        out.insert(claim.trim().to_owned(), value.trim().to_owned());
    }
    Ok(out)
}

#[post("/service-accounts/trust-policies")]
pub async fn add_policy(
    state: web::Data<AppState>,
    me: SignedIn,
    form: CsrfForm<PolicyForm>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let mut problems = vec![];
    let conditions = conditions(&form.conditions)
        .map_err(|m| problems.push(("conditions", m)))
        .ok();
    let service_account = form
        .service_account
        .parse::<ServiceAccountId>()
        .map_err(|_| {
            problems.push((
                "service_account",
                "Choose the service account whose tokens it mints.".into(),
            ))
        })
        .ok();
    let role = Role::parse(&form.role)
        .ok_or_else(|| problems.push(("role", "Choose a role from the list.".to_string())))
        .ok();
    let minutes = form
        .minutes
        .trim()
        .parse::<i64>()
        .map_err(|_| problems.push(("minutes", "Minutes, from 1 to 60.".into())))
        .ok();
    let result = match (conditions, service_account, role, minutes) {
        (Some(conditions), Some(service_account), Some(role), Some(minutes)) => {
            state
                .federation
                .create_policy(
                    me.actor(),
                    PolicyInput {
                        issuer: form.issuer.trim().to_owned(),
                        audience: form.audience.trim().to_owned(),
                        conditions,
                        service_account,
                        role,
                        lifetime_seconds: minutes.saturating_mul(60),
                        allowed_routes: vec![],
                    },
                )
                .await
        }
        _ => Err(ServiceError::Invalid(problems)),
    };
    match result {
        Ok(p) => {
            me.session.set_flash(&format!(
                "Trust policy {} added: JWTs from {} can now be exchanged.",
                p.id, p.issuer
            ));
            Ok(see_other(PAGE))
        }
        Err(ServiceError::Invalid(problems)) => {
            let problems = problems
                .into_iter()
                .map(|(f, m)| match f {
                    "lifetime_seconds" => ("minutes", "Minutes, from 1 to 60.".to_string()),
                    "service_account_id" => ("service_account", m),
                    other => (other, m),
                })
                .collect();
            let s = summary_of("error-summary-policies", problems);
            let typed = form.into_inner();
            let none = ErrorSummary::new("error-summary-accounts");
            page(
                &state,
                &me,
                None,
                none,
                Some(typed),
                s,
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[post("/service-accounts/trust-policies/{policyId}/remove")]
pub async fn remove_policy(
    state: web::Data<AppState>,
    me: SignedIn,
    id: Id<TrustPolicyId>,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    state.federation.delete_policy(me.actor(), id.get()).await?;
    me.session
        .set_flash(&format!("Trust policy {} removed.", id.get()));
    Ok(see_other(PAGE))
}
