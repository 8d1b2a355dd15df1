//! The volume service's background work: the disk operations a request
//! starts and answers before they finish (Cinder's volume manager).
//!
//! The desired outcome is in the row's status (`creating`, `deleting`,
//! `extending`; a snapshot's `creating`, `deleting`), so the work is a
//! reconciler: at start, and every minute, every row in such a status is
//! worked on again. Backend operations are idempotent, so running one twice
//! (a crash after the disk was made, before the status was written) is fine.

use std::sync::Arc;
use std::time::Duration;

use ferro_common::time;
use tokio::sync::watch;

use super::VolumeService;
use crate::backend::Source;
use crate::error::Result;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Job {
    CreateVolume(String),
    DeleteVolume(String),
    Extend(String),
    CreateSnapshot(String),
    DeleteSnapshot(String),
}

impl VolumeService {
    /// Queues `job` for the worker.
    pub(crate) fn start(&self, job: Job) {
        if self.jobs.send(job).is_err() {
            tracing::warn!("the volume worker is not running; the next scan picks the work up");
        }
    }

    /// Runs queued work until shutdown, and rescans the rows whose work is
    /// unfinished at start and every minute.
    pub async fn run_worker(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let Some(mut rx) = self.jobs_rx.lock().ok().and_then(|mut r| r.take()) else {
            return;
        };
        // An upload that was running when the service stopped is lost (its
        // image is left `saving`, then killed by the image service's rules):
        // the volume goes back to use.
        let _ = sqlx::query(
            "UPDATE volumes SET status = CASE WHEN EXISTS (SELECT 1 FROM volume_attachments a WHERE a.volume_id = volumes.id) \
             THEN 'in-use' ELSE 'available' END WHERE status = 'uploading'",
        )
        .execute(self.pool())
        .await;
        let mut scan = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = scan.tick() => {
                    match self.unfinished().await {
                        Ok(jobs) => for j in jobs { self.spawn(j) },
                        Err(e) => tracing::warn!(error = %e, "reading unfinished volume work failed"),
                    }
                }
                j = rx.recv() => match j {
                    Some(j) => self.spawn(j),
                    None => return,
                },
            }
        }
    }

    fn spawn(self: &Arc<Self>, job: Job) {
        {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            if !running.insert(job.clone()) {
                return;
            }
        }
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.work(&job).await {
                tracing::warn!(?job, error = %e, "volume work failed; it is tried again at the next scan");
            }
            me.running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&job);
        });
    }

    async fn unfinished(&self) -> Result<Vec<Job>> {
        let vols: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, status FROM volumes WHERE status IN ('creating', 'deleting', 'extending')",
        )
        .fetch_all(self.pool())
        .await?;
        let snaps: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, status FROM volume_snapshots WHERE status IN ('creating', 'deleting')",
        )
        .fetch_all(self.pool())
        .await?;
        let mut jobs: Vec<Job> = Vec::new();
        // Snapshots first: a volume deleted with its snapshots goes after them.
        for (id, status) in snaps {
            jobs.push(match status.as_str() {
                "creating" => Job::CreateSnapshot(id),
                _ => Job::DeleteSnapshot(id),
            });
        }
        for (id, status) in vols {
            jobs.push(match status.as_str() {
                "creating" => Job::CreateVolume(id),
                "deleting" => Job::DeleteVolume(id),
                _ => Job::Extend(id),
            });
        }
        Ok(jobs)
    }

    async fn set_error(&self, table: &str, id: &str, status: &str, why: &str) -> Result<()> {
        tracing::error!(resource_id = %id, status, error = %why, "volume work failed");
        if table == "volumes" {
            sqlx::query(
                "UPDATE volumes SET status = $1, error = $2, updated_at = $3 WHERE id = $4",
            )
            .bind(status)
            .bind(why)
            .bind(time::now_micros())
            .bind(id)
            .execute(self.pool())
            .await?;
        } else {
            sqlx::query("UPDATE volume_snapshots SET status = $1, updated_at = $2 WHERE id = $3")
                .bind(status)
                .bind(time::now_micros())
                .bind(id)
                .execute(self.pool())
                .await?;
        }
        Ok(())
    }

    async fn work(&self, job: &Job) -> Result<()> {
        match job {
            Job::CreateVolume(id) => {
                let Some(v) = self.get_volume(id).await? else {
                    return Ok(());
                };
                if v.status != "creating" {
                    return Ok(());
                }
                let source = if let Some(s) = &v.snapshot_id {
                    Source::Snapshot(s.clone())
                } else if let Some(s) = &v.source_volid {
                    Source::Volume(s.clone())
                } else if let Some(image) = &v.image_id {
                    match self.images.get(image).await {
                        Ok(Some(img)) if img.status == "active" => Source::Image {
                            path: self.images.store.data_path(image),
                            format: img.disk_format.unwrap_or_else(|| "raw".into()),
                        },
                        _ => {
                            return self
                                .set_error(
                                    "volumes",
                                    id,
                                    "error",
                                    &format!("image {image} is not active"),
                                )
                                .await
                        }
                    }
                } else {
                    Source::Blank
                };
                match self.backend.create(id, v.size, &source).await {
                    Ok(()) => {
                        self.transition(id, "creating", "available").await?;
                    }
                    Err(e) => {
                        self.set_error("volumes", id, "error", &e.to_string())
                            .await?
                    }
                }
            }
            Job::DeleteVolume(id) => {
                let Some(v) = self.get_volume(id).await? else {
                    return Ok(());
                };
                if v.status != "deleting" {
                    return Ok(());
                }
                for s in self.snapshots_of(id).await? {
                    if let Err(e) = self.backend.delete_snapshot(&s.id).await {
                        return self
                            .set_error("volumes", id, "error_deleting", &e.to_string())
                            .await;
                    }
                    sqlx::query("DELETE FROM volume_snapshots WHERE id = $1")
                        .bind(&s.id)
                        .execute(self.pool())
                        .await?;
                }
                match self.backend.delete(id).await {
                    Ok(()) => {
                        let mut tx = self.pool().begin().await?;
                        sqlx::query("DELETE FROM volume_attachments WHERE volume_id = $1")
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                        sqlx::query("DELETE FROM volumes WHERE id = $1 AND status = 'deleting'")
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                        tx.commit().await?;
                        tracing::info!(volume_id = %id, "volume deleted");
                    }
                    Err(e) => {
                        self.set_error("volumes", id, "error_deleting", &e.to_string())
                            .await?
                    }
                }
            }
            Job::Extend(id) => {
                let Some(v) = self.get_volume(id).await? else {
                    return Ok(());
                };
                if v.status != "extending" {
                    return Ok(());
                }
                let attached = !self
                    .attachments_of(&[id.as_str()])
                    .await?
                    .remove(id.as_str())
                    .unwrap_or_default()
                    .is_empty();
                if attached {
                    // Its host grows it (QEMU holds the file): the size in
                    // the row is what the host is asked for.
                    self.transition(id, "extending", "in-use").await?;
                    tracing::info!(volume_id = %id, size = v.size, "an attached volume extended; its host grows it");
                    return Ok(());
                }
                match self.backend.extend(id, v.size).await {
                    Ok(()) => {
                        self.transition(id, "extending", "available").await?;
                    }
                    Err(e) => {
                        self.set_error("volumes", id, "error_extending", &e.to_string())
                            .await?
                    }
                }
            }
            Job::CreateSnapshot(id) => {
                let Some(s) = self.get_snapshot(id).await? else {
                    return Ok(());
                };
                if s.status != "creating" {
                    return Ok(());
                }
                match self.backend.snapshot(&s.volume_id, id).await {
                    Ok(()) => {
                        sqlx::query(
                            "UPDATE volume_snapshots SET status = 'available', updated_at = $1 WHERE id = $2 AND status = 'creating'",
                        )
                        .bind(time::now_micros())
                        .bind(id)
                        .execute(self.pool())
                        .await?;
                        tracing::info!(snapshot_id = %id, "snapshot available");
                    }
                    Err(e) => {
                        self.set_error("snapshots", id, "error", &e.to_string())
                            .await?
                    }
                }
            }
            Job::DeleteSnapshot(id) => {
                let Some(s) = self.get_snapshot(id).await? else {
                    return Ok(());
                };
                if s.status != "deleting" {
                    return Ok(());
                }
                match self.backend.delete_snapshot(id).await {
                    Ok(()) => {
                        sqlx::query(
                            "DELETE FROM volume_snapshots WHERE id = $1 AND status = 'deleting'",
                        )
                        .bind(id)
                        .execute(self.pool())
                        .await?;
                        tracing::info!(snapshot_id = %id, "snapshot deleted");
                    }
                    Err(e) => {
                        self.set_error("snapshots", id, "error_deleting", &e.to_string())
                            .await?
                    }
                }
            }
        }
        Ok(())
    }
}
