//! Machinery that isn't a rule of the product: the runner that puts Diesel work on the
//! blocking pool (and notices outages), the budget and the code for password hashing, and the
//! queue in front of leak-report signature checks. Every room runs on a `Runtime`.

pub mod database;
pub mod flood_gate;
pub mod guarded_dns;
pub mod password_work;
pub mod passwords;
pub mod report_gate;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::domain::Clock;
use crate::metrics::Metrics;

pub use database::{Database, Pools};

/// What every room of the services runs on: the database, the clock, the metrics, and the
/// flag set when the instance begins to shut down. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    pub db: Database,
    pub clock: Clock,
    pub metrics: Arc<Metrics>,
    pub stopping: Arc<AtomicBool>,
}

impl Runtime {
    /// Set on SIGTERM/SIGINT: not ready any more, and a running sweep stops after its
    /// current e-mail.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}
