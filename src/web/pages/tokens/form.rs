//! The create form: its fields as typed, parsed into a request, and the page around it.

use askama::Template;
use serde::Deserialize;

use super::view::{choice, Choice};
use crate::domain::input::{Expiry, TokenDescription, TokenName, HORIZON_DAYS};
use crate::domain::policy::TokenPolicy;
use crate::domain::{Role, Secret};
use crate::services::tokens::NewTokenRequest;
use crate::web::auth::SignedIn;
use crate::web::views::{date, ErrorSummary, Layout};

#[derive(Template)]
#[template(path = "token_new.html")]
pub struct NewTokenPage {
    layout: Layout,
    form_id: String,
    name: String,
    description: String,
    roles: Vec<Choice>,
    expiries: Vec<ExpiryChoice>,
    /// "Set expiration date" is the chosen one.
    custom_date: bool,
    exp_date: String,
    min_date: String,
    max_date: String,
    /// The account's policy in words, when there is one.
    policy_text: Option<String>,
    errors: FormErrors,
    at_limit: bool,
    /// "Issued to" choices (Administrators with service accounts): the person, or one of them.
    issued_to: Vec<Choice>,
    /// The allowed routes as typed, one a line.
    allowed_routes: String,
    /// "Limit this token"'s presets: the route and what it is for.
    presets: &'static [(&'static str, &'static str)],
    /// The account's policy requires allowed routes.
    routes_required: bool,
    /// The rate and quota fields as typed, and the policy's rate cap in words.
    limits: super::routes::LimitFields,
    rate_cap: Option<String>,
}

/// Common limits, ticked instead of typed.
const ROUTE_PRESETS: &[(&str, &str)] = &[
    ("GET /**", "Read only:"),
    (
        "POST /cdn/resources/*/purge",
        "Purge any CDN resource's cache:",
    ),
    ("* /dns/**", "DNS only:"),
];

#[derive(Default)]
pub struct FormErrors {
    name: Option<String>,
    description: Option<String>,
    role: Option<String>,
    expiration: Option<String>,
    limit: Option<String>,
    allowed_routes: Option<String>,
    limits: Option<String>,
    quota: Option<String>,
}

impl FormErrors {
    /// The summary at the top of the form: each message, linked to its field.
    pub fn summary(&self) -> ErrorSummary {
        let mut summary = ErrorSummary::new("form-errors");
        for (field, message) in [
            ("", &self.limit),
            ("name", &self.name),
            ("description", &self.description),
            ("role", &self.role),
            ("exp_date", &self.expiration),
            ("allowed_routes", &self.allowed_routes),
            ("rate_requests", &self.limits),
            ("quota_requests", &self.quota),
        ] {
            if let Some(m) = message {
                summary.add(field, m.clone());
            }
        }
        summary
    }

    pub fn from_fields(fields: Vec<(&'static str, String)>) -> FormErrors {
        let mut e = FormErrors::default();
        for (field, message) in fields {
            let slot = match field {
                "name" => &mut e.name,
                "description" => &mut e.description,
                "role" => &mut e.role,
                "expiration" | "exp_date" | "expiry" => &mut e.expiration,
                "allowed_routes" => &mut e.allowed_routes,
                "rate_limit" => &mut e.limits,
                "usage_limit" => &mut e.quota,
                _ => &mut e.limit,
            };
            slot.get_or_insert(message);
        }
        e
    }
}

/// One of the expiry choices: a preset (`30d`) or `never`.
pub struct ExpiryChoice {
    pub value: String,
    pub label: String,
    pub checked: bool,
}

/// The presets offered (GitHub's): 7, 30, 60 and 90 days.
const PRESETS: [i64; 4] = [7, 30, 60, 90];
/// The preset chosen when nothing was: 30 days (GitHub's default too), short enough that a
/// forgotten token ends by itself, long enough not to be a chore; within the policy.
const DEFAULT_DAYS: i64 = 30;

/// The expiry choices the account's policy allows, and which one is chosen: the presets
/// that fit (plus the policy's own limit when it is not one of them), "Never expire" only
/// without a policy that forbids it.
fn expiry_choices(
    policy: &TokenPolicy,
    chosen: &str,
    today: time::OffsetDateTime,
) -> (Vec<ExpiryChoice>, bool) {
    let limit = policy.max_lifetime_days.map(i64::from);
    let mut days: Vec<i64> = PRESETS
        .into_iter()
        .filter(|d| limit.is_none_or(|l| *d <= l))
        .collect();
    if let Some(l) = limit.filter(|l| !PRESETS.contains(l)) {
        days.push(l);
    }
    days.sort_unstable();
    let allow_never = !policy.is_set();
    let default = days
        .iter()
        .copied()
        .filter(|d| *d <= DEFAULT_DAYS)
        .max()
        .or_else(|| days.first().copied())
        .map(|d| format!("{d}d"))
        .unwrap_or_else(|| "date".into());
    let known = |v: &str| {
        v == "date" || (v == "never" && allow_never) || days.iter().any(|d| format!("{d}d") == v)
    };
    let chosen = if known(chosen) {
        chosen.to_owned()
    } else {
        default
    };
    let mut choices: Vec<ExpiryChoice> = days
        .iter()
        .map(|d| {
            let until = date(today + time::Duration::days(*d));
            let most = if limit == Some(*d) {
                ", the most allowed"
            } else {
                ""
            };
            ExpiryChoice {
                value: format!("{d}d"),
                label: format!("{d} days (until {until}{most})"),
                checked: chosen == format!("{d}d"),
            }
        })
        .collect();
    if allow_never {
        choices.push(ExpiryChoice {
            value: "never".into(),
            label: "Never expire".into(),
            checked: chosen == "never",
        });
    }
    (choices, chosen == "date")
}

/// The create form's fields, as typed (kept when the form comes back with errors, and carried
/// through a re-authentication).
#[derive(Debug, Default, Deserialize, serde::Serialize)]
pub struct CreateForm {
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
    /// Empty: the person; else a service account's id (Administrators).
    #[serde(default)]
    pub issued_to: String,
    /// One route a line.
    #[serde(default)]
    pub allowed_routes: String,
    /// The rate and quota fields (before `rest`, which gets what no field took).
    #[serde(flatten)]
    pub limits: super::routes::LimitFields,
    /// Ticked presets (`preset:<n>` checkboxes), joined to the lines on submit.
    #[serde(flatten)]
    pub rest: std::collections::BTreeMap<String, String>,
}

pub fn form_page(
    me: &SignedIn,
    today: time::OffsetDateTime,
    form: &CreateForm,
    errors: FormErrors,
    at_limit: bool,
    policy: &TokenPolicy,
    service_accounts: &[crate::services::people::service_accounts::ServiceAccountView],
) -> NewTokenPage {
    let (expiries, custom_date) = expiry_choices(policy, form.expiration.trim(), today);
    let max_date = match policy.latest_expiry(today) {
        Some(latest) => date(latest),
        None => date(today + time::Duration::days(HORIZON_DAYS)),
    };
    let issuable = me.user.role.issuable();
    let chosen = Role::parse(&form.role)
        .filter(|r| issuable.contains(r))
        .unwrap_or(Role::Users);
    NewTokenPage {
        layout: me.layout("api-tokens"),
        form_id: if form.form_id.is_empty() {
            Secret::generate().into_exposed()
        } else {
            form.form_id.clone()
        },
        name: form.name.chars().take(200).collect(),
        description: form.description.chars().take(1000).collect(),
        roles: issuable
            .iter()
            .map(|r| choice(r.id(), r.label_with_description(), *r == chosen))
            .collect(),
        expiries,
        custom_date,
        exp_date: form.exp_date.chars().take(10).collect(),
        min_date: date(today),
        max_date,
        policy_text: policy.is_set().then(|| super::policy::policy_words(policy)),
        errors,
        at_limit,
        allowed_routes: form.routes_text().chars().take(25_000).collect(),
        presets: ROUTE_PRESETS,
        routes_required: policy.routes_required,
        limits: form.limits.kept(),
        rate_cap: policy.max_rate.map(|r| r.to_string()),
        issued_to: if service_accounts.is_empty() {
            vec![]
        } else {
            std::iter::once(choice(
                "",
                format!("Me ({})", me.user.user.display_name()),
                form.issued_to.is_empty(),
            ))
            .chain(service_accounts.iter().map(|sa| {
                choice(
                    sa.id,
                    format!("Service account {} (at most {})", sa.name, sa.role),
                    form.issued_to == sa.id.to_string(),
                )
            }))
            .collect()
        },
    }
}

impl CreateForm {
    /// The typed lines with the ticked presets (known ones only) after them.
    pub fn routes_text(&self) -> String {
        let mut lines: Vec<&str> = self.allowed_routes.lines().collect();
        let ticked = self
            .rest
            .keys()
            .filter_map(|k| k.strip_prefix("preset:")?.parse::<usize>().ok());
        for n in ticked {
            if let Some((route, _)) = ROUTE_PRESETS.get(n) {
                if !lines.iter().any(|l| l.trim() == *route) {
                    lines.push(route);
                }
            }
        }
        lines.join("\n")
    }
}

/// Parses the form into a request, or says what is wrong with each field.
pub fn parse_create(
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
    let text = form.routes_text();
    let allowed_routes = crate::domain::routes::parse_lines(text.lines())
        .map_err(|m| errors.push(("allowed_routes", m)))
        .ok();
    let limits = form.limits.parse().map_err(|e| errors.extend(e)).ok();
    let form_id = Some(form.form_id.trim())
        .filter(|id| {
            !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric())
        })
        .map(str::to_owned);
    match (name, description, role, expiry, allowed_routes, limits) {
        (
            Some(name),
            Some(description),
            Some(role),
            Some(expiry),
            Some(allowed_routes),
            Some((rate_limit, usage_limit)),
        ) if errors.is_empty() => Ok(NewTokenRequest {
            name,
            description,
            role,
            expiry,
            form_id,
            parent: None,
            allowed_ips: vec![],
            allowed_routes,
            rate_limit,
            usage_limit,
        }),
        _ => Err(errors),
    }
}
