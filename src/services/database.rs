//! Runs synchronous Diesel work on the blocking thread pool, so it never holds up the async
//! workers. Only the services reach the database, and only through this.

use crate::db::{DbConn, DbPool};
use crate::error::{ServiceError, ServiceResult};

#[derive(Clone)]
pub struct Database {
    pool: DbPool,
}

impl Database {
    pub fn new(pool: DbPool) -> Database {
        Database { pool }
    }

    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    /// Runs `f` with a pooled connection on the blocking pool.
    pub async fn run<T, F>(&self, f: F) -> ServiceResult<T>
    where
        F: FnOnce(&mut DbConn) -> ServiceResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(|e| {
                ServiceError::Internal(anyhow::anyhow!("no database connection: {e}"))
            })?;
            f(&mut conn)
        })
        .await
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("blocking task failed: {e}")))?
    }
}
