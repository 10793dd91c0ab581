//! apitokens: permanent API tokens for the people of an account, and the API they unlock.
//!
//! Layers, one direction of dependency: `web` → `services` → `repo` → `db`, with `domain`
//! used by all and depending on none of them.

pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod email;
pub mod error;
pub mod metrics;
pub mod repo;
pub mod services;
pub mod startup;
pub mod web;
