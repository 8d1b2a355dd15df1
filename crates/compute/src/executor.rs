//! Drives compute's sagas: takes a saga's lease, runs its steps one after
//! the other, records each, and decides what an error means.
//!
//! - a step's `Outcome::Next` is recorded before the next step runs, so a
//!   crash repeats at most one step (which is safe to run twice);
//! - a permanent error (the request can't be done: a 4xx the network or
//!   the scheduler gave) turns a create round to its undo steps;
//! - a passing error (the database, a lost race) gives the lease up and
//!   the saga is tried again by the next scan, as is a step that waits.
//!
//! Every controller scans for sagas whose lease ran out ([`run`]), so the
//! sagas of a controller that died are finished by another, or by itself
//! once restarted.

use std::sync::Arc;
use std::time::Duration;

use crate::error::{ComputeError, Result};
use crate::saga::{self, Kind, Saga};
use crate::service::ComputeService;

/// What a step asks for next.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Next(&'static str),
    /// Look again in this many microseconds (or when woken).
    Wait(i64),
    Done,
}

/// How a drive ended.
#[derive(Debug)]
pub enum Ended {
    /// Finished (or found finished).
    Done,
    /// Stopped before the step it was told to stop at, lease kept.
    Paused,
    /// Waiting, or failed for a passing reason: the scan takes it up again.
    Later,
    /// Another controller holds it.
    NotMine,
    /// It could not be done and was undone; the error says why.
    Undone(ComputeError),
}

const RETRY_MICROS: i64 = 2_000_000;

/// Whether an error means the operation can never succeed as asked.
fn permanent(e: &ComputeError) -> bool {
    !matches!(e, ComputeError::Internal(_) | ComputeError::Stale(_))
}

impl ComputeService {
    /// Drives saga `id` in the background.
    pub fn kick(self: &Arc<Self>, id: String) {
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.drive(&id, None).await {
                tracing::warn!(saga_id = %id, error = %e, "driving a saga failed; it will be retried");
            }
        });
    }

    /// Runs saga `id` until it is done, waits, or reaches `stop_before`.
    /// One task of this process drives a saga at a time: asked again while
    /// it runs (a host's report, a kick), the running task looks once more
    /// instead of waiting.
    pub async fn drive(self: &Arc<Self>, id: &str, stop_before: Option<&str>) -> Result<Ended> {
        {
            let mut d = self.driving.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(again) = d.get_mut(id) {
                *again = true;
                return Ok(Ended::Later);
            }
            d.insert(id.to_owned(), false);
        }
        let out = self.drive_once(id, stop_before).await;
        self.driving
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        out
    }

    /// Whether the saga was asked for again while this task drove it
    /// (clearing the request).
    fn asked_again(&self, id: &str) -> bool {
        let mut d = self.driving.lock().unwrap_or_else(|p| p.into_inner());
        d.get_mut(id).map(std::mem::take).unwrap_or(false)
    }

    async fn drive_once(self: &Arc<Self>, id: &str, stop_before: Option<&str>) -> Result<Ended> {
        let Some(mut s) = saga::take(self.pool(), id, &self.holder).await? else {
            return Ok(Ended::NotMine);
        };
        let mut first_error: Option<ComputeError> = None;
        for _ in 0..32 {
            if stop_before == Some(s.step.as_str()) {
                return Ok(Ended::Paused);
            }
            let outcome = match s.kind() {
                Some(Kind::ServerCreate) => self.create_step(&s).await,
                Some(Kind::ServerDelete) => self.delete_step(&s).await,
                Some(Kind::ServerResize) => self.resize_step(&s).await,
                Some(Kind::ServerMigrate) => self.migrate_step(&s).await,
                Some(Kind::ServerLiveMigrate) => self.live_migrate_step(&s).await,
                Some(Kind::ServerSnapshot | Kind::ServerShelve) => self.snapshot_step(&s).await,
                Some(Kind::VolumeAttach) => self.attach_step(&s).await,
                Some(Kind::VolumeDetach) => self.detach_step(&s).await,
                None => Err(ComputeError::Internal(format!(
                    "saga {} of unknown kind {}",
                    s.id, s.kind
                ))),
            };
            match outcome {
                Ok(Outcome::Next(step)) => {
                    tracing::debug!(saga_id = %s.id, step, "saga step done");
                    if !saga::advance(self.pool(), &s.id, &self.holder, step).await? {
                        return Ok(Ended::NotMine);
                    }
                    s.step = step.to_owned();
                }
                Ok(Outcome::Wait(_)) if self.asked_again(&s.id) => {
                    tracing::debug!(saga_id = %s.id, "asked again while waiting; looking once more");
                }
                Ok(Outcome::Wait(micros)) => {
                    saga::release(self.pool(), &s.id, &self.holder, None, micros).await?;
                    return Ok(Ended::Later);
                }
                Ok(Outcome::Done) => {
                    let mut tx = self.pool().begin().await?;
                    saga::finish(&mut tx, &s.id).await?;
                    tx.commit().await?;
                    tracing::info!(saga_id = %s.id, kind = %s.kind, resource_id = %s.resource_id, "saga finished");
                    return Ok(match first_error {
                        Some(e) => Ended::Undone(e),
                        None => Ended::Done,
                    });
                }
                Err(e)
                    if permanent(&e)
                        && s.unwinding == 0
                        && s.kind().and_then(Kind::undo_from).is_some() =>
                {
                    let undo = s.kind().and_then(Kind::undo_from).unwrap_or_default();
                    tracing::info!(saga_id = %s.id, resource_id = %s.resource_id, error = %e, "saga step refused; undoing");
                    let why = e.to_string();
                    if !saga::unwind(self.pool(), &s.id, &self.holder, undo, &why).await? {
                        return Ok(Ended::NotMine);
                    }
                    s.unwinding = 1;
                    s.step = undo.into();
                    first_error = Some(e);
                }
                Err(e) => {
                    tracing::warn!(saga_id = %s.id, resource_id = %s.resource_id, step = %s.step, error = %e, "saga step failed; retrying later");
                    saga::release(
                        self.pool(),
                        &s.id,
                        &self.holder,
                        Some(&e.to_string()),
                        RETRY_MICROS,
                    )
                    .await?;
                    return Ok(match first_error {
                        Some(e) => Ended::Undone(e),
                        None => Ended::Later,
                    });
                }
            }
        }
        saga::release(self.pool(), &s.id, &self.holder, None, RETRY_MICROS).await?;
        Ok(Ended::Later)
    }

    /// Runs `work` (one long step: a disk copy, an upload) while renewing
    /// the saga's lease every 10 s, so that no other controller takes the
    /// saga over meanwhile.
    pub(crate) async fn renewing<T>(
        &self,
        saga: &Saga,
        work: impl std::future::Future<Output = T>,
    ) -> T {
        tokio::pin!(work);
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        tick.tick().await;
        loop {
            tokio::select! {
                out = &mut work => return out,
                _ = tick.tick() => {
                    if let Err(e) = saga::advance(self.pool(), &saga.id, &self.holder, &saga.step).await {
                        tracing::warn!(saga_id = %saga.id, error = %e, "renewing a saga's lease failed");
                    }
                }
            }
        }
    }

    /// Turns an accepted create round at once (another server of the same
    /// request was refused) and undoes it.
    pub async fn undo_create(self: &Arc<Self>, saga_id: &str, why: &str) -> Result<()> {
        if saga::take(self.pool(), saga_id, &self.holder)
            .await?
            .is_none()
        {
            return Ok(());
        }
        let undo = Kind::ServerCreate.undo_from().unwrap_or_default();
        saga::unwind(self.pool(), saga_id, &self.holder, undo, why).await?;
        self.drive(saga_id, None).await?;
        Ok(())
    }

    /// Every few seconds, drives the sagas no controller holds: those of a
    /// controller that died, and those whose wait is over. Runs until the
    /// controller stops.
    pub async fn run_sagas(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        match saga::reclaim(self.pool(), &self.holder).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                sagas = n,
                "resuming the sagas this controller held before it stopped"
            ),
            Err(e) => tracing::warn!(error = %e, "reclaiming this controller's sagas failed"),
        }
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = tick.tick() => {}
            }
            let due: Vec<Saga> = match saga::due(self.pool(), 100).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, "reading open sagas failed");
                    continue;
                }
            };
            for s in due {
                if let Err(e) = self.drive(&s.id, None).await {
                    tracing::warn!(saga_id = %s.id, error = %e, "driving a saga failed; it will be retried");
                }
            }
        }
    }
}
