//! Cache misses of the gateway, read together.
//!
//! Under a load of many distinct tokens each miss used to be its own read (a round trip and
//! a blocking-pool hop each). Misses now queue; one worker task reads everything queued in
//! one query, answers each, and reads again if more queued meanwhile: batches form by
//! themselves under load (while one read runs, the next batch gathers) and a lone miss
//! waits for nothing but its own read. The worker is a spawned task, so a request that goes
//! away can't strand the others.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::token_cache::{LoadedRow, TokenVerifier};
use crate::error::{ServiceError, ServiceResult};
use crate::services::runtime::Database;

/// Most ids per read.
const MAX_BATCH: usize = 500;

type Waiter = (i64, oneshot::Sender<ServiceResult<LoadedRow>>);

#[derive(Default)]
pub struct MissBatcher {
    queue: Mutex<Vec<Waiter>>,
    /// A worker is reading (or about to).
    working: AtomicBool,
}

/// An error for every waiter of a failed read (the original isn't `Clone`).
pub(crate) fn shared(e: &ServiceError) -> ServiceError {
    match e {
        ServiceError::Unavailable(why) => ServiceError::Unavailable(why.clone()),
        ServiceError::Busy => ServiceError::Busy,
        other => ServiceError::Internal(anyhow::anyhow!("token read failed: {other}")),
    }
}

impl MissBatcher {
    /// The row of token `id` (or none), read with whatever other misses are waiting.
    pub(crate) async fn load(self: &Arc<Self>, db: &Database, id: i64) -> ServiceResult<LoadedRow> {
        let (tx, rx) = oneshot::channel();
        self.queue.lock().expect("miss queue lock").push((id, tx));
        self.start_worker(db);
        rx.await.unwrap_or_else(|_| {
            Err(ServiceError::Unavailable(
                "the token read was dropped".into(),
            ))
        })
    }

    fn start_worker(self: &Arc<Self>, db: &Database) {
        if self.working.swap(true, Ordering::AcqRel) {
            return;
        }
        let (me, db) = (self.clone(), db.clone());
        tokio::spawn(async move {
            loop {
                let batch: Vec<Waiter> = {
                    let mut queue = me.queue.lock().expect("miss queue lock");
                    let n = queue.len().min(MAX_BATCH);
                    queue.drain(..n).collect()
                };
                if batch.is_empty() {
                    me.working.store(false, Ordering::Release);
                    // A miss queued after the drain but before the flag fell: go on.
                    let more = !me.queue.lock().expect("miss queue lock").is_empty();
                    if more && !me.working.swap(true, Ordering::AcqRel) {
                        continue;
                    }
                    return;
                }
                let mut ids: Vec<i64> = batch.iter().map(|(id, _)| *id).collect();
                ids.sort_unstable();
                ids.dedup();
                let read = db
                    .run_gateway(move |conn| TokenVerifier::load_many(conn, &ids))
                    .await;
                match read {
                    Ok((rows, started)) => {
                        let by_id: HashMap<i64, _> = rows.into_iter().map(|r| (r.id, r)).collect();
                        for (id, tx) in batch {
                            let _ = tx
                                .send(Ok(LoadedRow::from_parts(by_id.get(&id).cloned(), started)));
                        }
                    }
                    Err(e) => {
                        for (_, tx) in batch {
                            let _ = tx.send(Err(shared(&e)));
                        }
                    }
                }
            }
        });
    }
}
