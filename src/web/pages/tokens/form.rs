//! The create form: its fields as typed, parsed into a request, and the page around it.

use askama::Template;
use serde::Deserialize;

use super::view::{choice, Choice};
use crate::domain::input::{Expiry, TokenDescription, TokenName};
use crate::domain::{Role, Secret};
use crate::services::tokens::NewTokenRequest;
use crate::web::auth::SignedIn;
use crate::web::views::{date, Layout};

#[derive(Template)]
#[template(path = "token_new.html")]
pub struct NewTokenPage {
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
pub struct FormErrors {
    name: Option<String>,
    description: Option<String>,
    role: Option<String>,
    expiration: Option<String>,
    limit: Option<String>,
    any: bool,
}

impl FormErrors {
    pub fn from_fields(fields: Vec<(&'static str, String)>) -> FormErrors {
        let mut e = FormErrors {
            any: !fields.is_empty(),
            ..Default::default()
        };
        for (field, message) in fields {
            let slot = match field {
                "name" => &mut e.name,
                "description" => &mut e.description,
                "role" => &mut e.role,
                "expiration" | "exp_date" | "expiry" => &mut e.expiration,
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

pub fn form_page(
    me: &SignedIn,
    today: time::OffsetDateTime,
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
            Secret::generate().into_exposed()
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
        min_date: date(today),
        errors,
        at_limit,
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
                parent: None,
                allowed_ips: vec![],
            })
        }
        _ => Err(errors),
    }
}
