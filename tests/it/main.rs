//! One integration test binary: the real app over real HTTP, on SQLite by default or on
//! PostgreSQL when `TEST_DATABASE_URL` is set (CI runs both).

mod api;
mod attack;
mod browser;
mod cli;
mod digest;
mod federation;
mod gcore;
mod helpers;
mod idle;
mod layers;
mod leaks;
mod lifecycle;
mod limits;
mod members;
mod notify;
mod operate;
mod outage;
mod passkeys;
mod passwords;
mod portal;
mod portal_details;
mod quotas;
mod review;
mod revoke;
mod scim;
mod self_token;
mod sign_in;
mod smtp;
mod sso;
mod sudo;
mod tokens_service;
mod tokens_web;
mod two_factor;
mod webhooks;
mod wire;
