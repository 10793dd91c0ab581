//! HTML pages.

pub mod activity;
pub mod forgot;
pub mod health;
pub mod login;
pub mod machines;
pub mod notifications;
pub mod passkeys;
pub mod profile;
pub mod security;
pub mod setup;
pub mod sso;
pub mod sudo;
pub mod tokens;
pub mod unsubscribe;
pub mod users;
pub mod webhooks;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(login::home)
        .service(login::login_page)
        .service(login::login_submit)
        .service(login::logout)
        .service(profile::general)
        .service(profile::sign_out_everywhere)
        .service(profile::change_password)
        .service(security::show)
        .service(security::start)
        .service(security::confirm)
        .service(security::disable)
        .service(security::set_policy)
        .service(passkeys::registration_options)
        .service(passkeys::add)
        .service(passkeys::remove)
        .service(passkeys::sign_in_options)
        .service(passkeys::sign_in)
        .service(passkeys::sudo_options)
        .service(sso::ask_email)
        .service(sso::begin)
        .service(sso::callback)
        .service(sso::acs)
        .service(sso::sp_metadata)
        .service(sso::settings)
        .service(sso::save)
        .service(sso::turn_off)
        .service(machines::list)
        .service(machines::add)
        .service(machines::remove)
        .service(machines::add_policy)
        .service(machines::remove_policy)
        .service(webhooks::list)
        .service(webhooks::add)
        .service(webhooks::show)
        .service(webhooks::test)
        .service(webhooks::set_enabled)
        .service(webhooks::rotate_secret)
        .service(webhooks::remove)
        .service(webhooks::redeliver)
        .service(sudo::confirm)
        .service(security::second_step)
        .service(security::second_step_submit)
        .service(forgot::show)
        .service(forgot::submit)
        .service(tokens::section)
        .service(tokens::new_form)
        .service(tokens::policy_form)
        .service(tokens::save_policy)
        .service(tokens::token_page)
        .service(tokens::edit_token)
        .service(tokens::rotate_token)
        .service(tokens::set_allowlist)
        .service(tokens::routes::set_routes)
        .service(tokens::create)
        .service(tokens::delete)
        .service(notifications::list)
        .service(notifications::mark_read)
        .service(notifications::settings)
        .service(notifications::save_settings)
        .service(users::list)
        .service(activity::activity)
        .service(users::add)
        .service(users::change_role)
        .service(users::remove)
        .service(users::delete_tokens)
        .service(users::reset_two_factor)
        .service(users::set_leak_response)
        .service(users::new_scim_token)
        .service(setup::show)
        .service(setup::submit)
        .service(unsubscribe::show)
        .service(unsubscribe::submit);
}
