//! The HTTP edge: pages (HTML) and the JSON API. Handlers parse input into domain types, call
//! one service entry point on `Services`, and render. Nothing here reaches the database.

pub mod api;
pub mod assets;
pub mod auth;
pub mod client;
pub mod csrf;
pub mod error;
pub mod ids;
pub mod observe;
pub mod pages;
pub mod routes;
pub mod scim;
pub mod session;
pub mod views;

use std::sync::Arc;

use crate::config::Settings;
use crate::services::Services;

pub use error::WebError;
pub use routes::{configure, CSP};

/// What every handler can reach: the services, and the settings the edge needs (cookies,
/// addresses).
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    pub settings: Arc<Settings>,
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}
