//! Heartbeats of joined hosts, written in batches.
//!
//! A heartbeat only says "this host is alive now"; a host counts as down
//! after 50 s without one. So the controller notes each heartbeat in memory
//! and writes all of the last second's in one statement, instead of one
//! database write per heartbeat: 1,000 hosts beating every 10 s are 100
//! writes a second one by one, one a second batched. A heartbeat's time in
//! the database is at most a second late.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use ferro_common::time;
use ferro_store::{sqlx, Db};

/// Hosts whose heartbeats are not written yet.
#[derive(Default)]
pub struct Heartbeats {
    pending: Mutex<HashSet<String>>,
}

/// The most hosts one statement updates.
const BATCH: usize = 500;

impl Heartbeats {
    pub fn note(&self, host: &str) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if !p.contains(host) {
            p.insert(host.to_owned());
        }
    }

    /// Writes the noted heartbeats; on a database error they stay noted.
    pub async fn flush(&self, db: &Db) -> Result<usize, sqlx::Error> {
        let hosts: Vec<String> = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            p.drain().collect()
        };
        if hosts.is_empty() {
            return Ok(0);
        }
        let now = time::now_micros();
        for chunk in hosts.chunks(BATCH) {
            let sql = format!(
                "UPDATE hosts SET heartbeat_at = $1 WHERE name IN ({})",
                ferro_store::marks(2, chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(now);
            for h in chunk {
                q = q.bind(h);
            }
            if let Err(e) = q.execute(db.pool()).await {
                let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                p.extend(hosts);
                return Err(e);
            }
        }
        Ok(hosts.len())
    }

    /// Flushes every second until the controller stops, then once more.
    pub async fn run(&self, db: Db, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            let stopping = tokio::select! {
                _ = stop.changed() => true,
                _ = tick.tick() => false,
            };
            if let Err(e) = self.flush(&db).await {
                tracing::warn!(error = %e, "writing heartbeats failed; they are kept for the next try");
            }
            if stopping {
                return;
            }
        }
    }
}
