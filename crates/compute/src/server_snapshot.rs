//! The server-snapshot saga (`createImage`, and `createBackup`, a
//! snapshot with a type and a rotation): the server's root disk becomes a
//! new image, as Nova's does.
//!
//! ```text
//!  accept: task → image_snapshot (compare-and-set) + saga, one transaction
//!    ▼
//!  image: the image row, queued, by the id planned at accept (the request
//!         answers with it); task → image_pending_upload
//!    ▼
//!  capture: the host's agent writes a consistent qcow2 copy of the disk
//!           (the guest paused meanwhile) next to the image store;
//!           task → image_uploading
//!    ▼
//!  upload: the copy streamed into the image service (checked and hashed
//!          as any upload), the copy removed; for a backup, the server's
//!          oldest backups of its type beyond the rotation deleted; task
//!          cleared
//!
//!  a refusal (the server went away, the host failed the copy) unwinds:
//!  unwind-image: the copy and the image removed, task cleared
//! ```
//!
//! A server booted from a volume has no disk of its own: as Nova does,
//! `capture` snapshots each of its volumes in the volume service instead
//! (by ids planned at accept), and the image holds no data, only their
//! mapping (`bdm_v2`, `block_device_mapping`, `root_device_name`): a
//! server created from it boots from a new volume made from the snapshot.
//! Its undo deletes those snapshots.

use std::path::PathBuf;
use std::sync::Arc;

use ferro_agent_api::spec::ROOT_DEVICE;
use ferro_common::{ids, time, AuthContext};
use ferro_image::model::Image;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{ComputeError, Result};
use crate::executor::{Ended, Outcome};
use crate::model::Server;
use crate::saga::{self, failpoint, Saga};
use crate::service::{stale_unless, ComputeService};

/// The task states a snapshot (or backup) passes through (Nova's names).
pub fn is_snapshot_task(t: &str) -> bool {
    SNAPSHOT_TASKS.contains(&t)
}

const SNAPSHOT_TASKS: [&str; 7] = [
    "image_snapshot",
    "image_backup",
    "image_pending_upload",
    "image_uploading",
    "shelving",
    "shelving_image_pending_upload",
    "shelving_image_uploading",
];

/// The task states above as an SQL list.
fn task_list() -> String {
    SNAPSHOT_TASKS
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A backup's type (`daily`, `weekly`, …) and how many of that type the
/// server keeps.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Backup {
    pub backup_type: String,
    pub rotation: i64,
}

/// Image properties a snapshot never takes over from the server's image
/// (Nova's `non_inheritable_image_properties`, and what it sets itself).
const NOT_INHERITED: &[&str] = &[
    "cache_in_nova",
    "bittorrent",
    "img_signature",
    "img_signature_hash_method",
    "img_signature_key_type",
    "img_signature_certificate_uuid",
    "image_type",
    "instance_uuid",
    "base_image_ref",
    "user_id",
    "owner_project_name",
    "owner_user_name",
];

/// How many times the host is asked for the disk's copy (2 s apart).
const CAPTURE_TRIES: i64 = 5;

/// What the saga makes: the image as planned at accept.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SnapshotPlan {
    pub image_id: String,
    pub name: String,
    pub host: String,
    pub owner: String,
    pub min_disk: i64,
    pub min_ram: i64,
    pub properties: Map<String, Value>,
    /// For a server booted from a volume: its volumes' snapshots.
    #[serde(default)]
    pub volumes: Vec<VolumeSnapshot>,
    /// Who asked (the volume service's snapshots are theirs).
    #[serde(default)]
    pub ctx: Option<AuthContext>,
    /// Set for `createBackup`.
    #[serde(default)]
    pub backup: Option<Backup>,
    /// A shelve: after the upload the server is stopped and offloaded.
    /// (No image — an empty `image_id` — for a server booted from a volume.)
    #[serde(default)]
    pub shelve: bool,
}

/// One volume of a server booted from a volume, snapshotted for its image.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VolumeSnapshot {
    pub volume_id: String,
    pub snapshot_id: String,
    pub device: String,
    pub size: i64,
    pub delete_on_termination: bool,
}

impl VolumeSnapshot {
    /// The mapping a server created from the image gets (Nova's image
    /// block device mapping).
    fn image_mapping(&self) -> Value {
        let root = self.device == ROOT_DEVICE;
        serde_json::json!({
            "source_type": "snapshot",
            "destination_type": "volume",
            "snapshot_id": self.snapshot_id,
            "volume_id": null,
            "image_id": null,
            "volume_size": self.size,
            "delete_on_termination": self.delete_on_termination,
            "boot_index": if root { Value::from(0) } else { Value::Null },
            "device_name": self.device,
            "disk_bus": "virtio",
            "device_type": "disk",
            "guest_format": null,
            "no_device": null,
            "tag": null,
            "volume_type": null,
        })
    }
}

impl SnapshotPlan {
    /// A step's task state: Nova's shelve names its own.
    fn task(&self, snapshot_task: &'static str) -> &'static str {
        match (self.shelve, snapshot_task) {
            (true, "image_pending_upload") => "shelving_image_pending_upload",
            (true, "image_uploading") => "shelving_image_uploading",
            (_, t) => t,
        }
    }

    fn image(&self) -> Image {
        let now = time::now_micros();
        Image {
            id: self.image_id.clone(),
            name: Some(self.name.clone()),
            status: "queued".into(),
            visibility: "private".into(),
            protected: 0,
            os_hidden: 0,
            owner: self.owner.clone(),
            // A volume-backed server's image holds no data.
            disk_format: Some(
                if self.volumes.is_empty() {
                    "qcow2"
                } else {
                    "raw"
                }
                .into(),
            ),
            container_format: Some("bare".into()),
            size: None,
            virtual_size: None,
            checksum: None,
            os_hash_algo: None,
            os_hash_value: None,
            min_disk: self.min_disk,
            min_ram: self.min_ram,
            tags: "[]".into(),
            properties: Value::Object(self.properties.clone()).to_string(),
            created_at: now,
            updated_at: now,
        }
    }
}

fn image_error(e: impl std::fmt::Display) -> ComputeError {
    ComputeError::Internal(format!("the image service: {e}"))
}

impl ComputeService {
    /// Where the host's copy of the disk waits for its upload (next to the
    /// image store's files, on the same disk).
    fn snapshot_copy(&self, image_id: &str) -> PathBuf {
        self.images
            .store
            .data_path(image_id)
            .with_extension("snapshot")
    }

    /// `createImage` (and `createBackup` with `backup`): plans the image,
    /// takes the server, writes the saga and makes the image before
    /// answering. Returns the image's id.
    pub async fn create_image(
        self: &Arc<Self>,
        ctx: &AuthContext,
        srv: &Server,
        name: &str,
        metadata: Map<String, Value>,
        backup: Option<Backup>,
    ) -> Result<String> {
        let plan = self.plan_image(ctx, srv, name, metadata, backup).await?;
        if plan.backup.is_some() && !plan.volumes.is_empty() {
            return Err(ComputeError::BadRequest(
                "It is not possible to backup volume backed instance.".into(),
            ));
        }
        let task = if plan.backup.is_some() {
            "image_backup"
        } else {
            "image_snapshot"
        };
        let saga_id = self
            .accept_snapshot(srv, &plan, saga::Kind::ServerSnapshot, task, "image")
            .await?;
        failpoint("server-snapshot.accepted");
        // The image exists when the request answers; the copy goes on.
        match self.drive(&saga_id, Some("capture")).await? {
            Ended::Undone(e) => return Err(e),
            Ended::Paused => self.kick(saga_id),
            _ => {}
        }
        Ok(plan.image_id)
    }

    /// The image a snapshot of `srv` makes, with Nova's properties.
    pub(crate) async fn plan_image(
        &self,
        ctx: &AuthContext,
        srv: &Server,
        name: &str,
        metadata: Map<String, Value>,
        backup: Option<Backup>,
    ) -> Result<SnapshotPlan> {
        let Some(host) = srv.host.clone() else {
            return Err(ComputeError::Conflict(format!(
                "Cannot snapshot instance {} while it has no host",
                srv.id
            )));
        };
        let base = self.images.get(&srv.image_id).await.map_err(image_error)?;
        let mut properties: Map<String, Value> = base
            .as_ref()
            .map(|b| b.props())
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| !NOT_INHERITED.contains(&k.as_str()))
            .collect();
        let kind = if backup.is_some() {
            "backup"
        } else {
            "snapshot"
        };
        properties.insert("image_type".into(), kind.into());
        if let Some(b) = &backup {
            properties.insert("backup_type".into(), b.backup_type.clone().into());
        }
        properties.insert("instance_uuid".into(), srv.id.clone().into());
        properties.insert("base_image_ref".into(), srv.image_id.clone().into());
        properties.insert("user_id".into(), ctx.user_id.clone().into());
        let volumes = self.volume_snapshots(srv).await?;
        if !volumes.is_empty() {
            properties.remove("base_image_ref");
            properties.insert("bdm_v2".into(), "True".into());
            properties.insert("root_device_name".into(), ROOT_DEVICE.into());
            let mappings: Vec<Value> = volumes.iter().map(VolumeSnapshot::image_mapping).collect();
            properties.insert(
                "block_device_mapping".into(),
                Value::Array(mappings).to_string().into(),
            );
        }
        properties.extend(metadata);
        Ok(SnapshotPlan {
            image_id: ids::uuid_id(),
            name: name.to_owned(),
            host,
            owner: srv.project_id.clone(),
            min_disk: srv.flavor().map(|f| f.disk).unwrap_or(0),
            min_ram: base.map(|b| b.min_ram).unwrap_or(0),
            properties,
            ctx: (!volumes.is_empty()).then(|| ctx.clone()),
            volumes,
            backup,
            shelve: false,
        })
    }

    /// Takes the server (`task`, compare-and-set on the row the caller
    /// checked) and writes the saga, in one transaction. Returns its id.
    pub(crate) async fn accept_snapshot(
        &self,
        srv: &Server,
        plan: &SnapshotPlan,
        kind: saga::Kind,
        task: &str,
        first_step: &str,
    ) -> Result<String> {
        let params = serde_json::to_string(plan)
            .map_err(|e| ComputeError::Internal(format!("encoding a saga: {e}")))?;
        let mut tx = self.pool().begin().await?;
        let taken = sqlx::query(
            "UPDATE servers SET state_generation = state_generation + 1, task_state = $1, updated_at = $2 \
             WHERE id = $3 AND state_generation = $4 AND task_state IS NULL",
        )
        .bind(task)
        .bind(time::now_micros())
        .bind(&srv.id)
        .bind(srv.state_generation)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        stale_unless(taken, &srv.id)?;
        let saga_id =
            saga::insert(&mut tx, kind, &srv.id, &params, first_step, &self.holder).await?;
        tx.commit().await?;
        tracing::info!(server_id = %srv.id, image_id = %plan.image_id, saga_id = %saga_id, kind = kind.as_str(), "snapshot accepted");
        Ok(saga_id)
    }

    /// Runs one step of a snapshot saga.
    pub(crate) async fn snapshot_step(self: &Arc<Self>, saga: &Saga) -> Result<Outcome> {
        let plan: SnapshotPlan = serde_json::from_str(&saga.params).map_err(|e| {
            ComputeError::Internal(format!("saga {}: unreadable plan: {e}", saga.id))
        })?;
        let id = saga.resource_id.as_str();
        let copy = self.snapshot_copy(&plan.image_id);
        match saga.step.as_str() {
            "image" => {
                if self
                    .images
                    .get(&plan.image_id)
                    .await
                    .map_err(image_error)?
                    .is_none()
                {
                    self.images
                        .insert_queued(&plan.image())
                        .await
                        .map_err(image_error)?;
                }
                failpoint("server-snapshot.image-made");
                self.set_snapshot_task(id, plan.task("image_pending_upload"))
                    .await?;
                Ok(Outcome::Next("capture"))
            }
            "capture" if !plan.volumes.is_empty() => {
                let api = self.volume_api()?;
                let ctx = plan.ctx.clone().ok_or_else(|| {
                    ComputeError::Internal(format!("saga {}: no caller recorded", saga.id))
                })?;
                let mut making = false;
                for v in &plan.volumes {
                    let name = format!("snapshot for {}", plan.name);
                    match api
                        .snapshot_for_image(&ctx, &v.snapshot_id, &v.volume_id, &name)
                        .await?
                        .as_str()
                    {
                        "available" => {}
                        "creating" => making = true,
                        other => {
                            return Err(ComputeError::Conflict(format!(
                                "Snapshot {} of volume {} is {other}.",
                                v.snapshot_id, v.volume_id
                            )))
                        }
                    }
                }
                if making {
                    return Ok(Outcome::Wait(500_000));
                }
                failpoint("server-snapshot.captured");
                self.set_snapshot_task(id, plan.task("image_uploading"))
                    .await?;
                Ok(Outcome::Next("upload"))
            }
            "capture" => {
                let srv = self.server(id).await?;
                if srv.as_ref().is_none_or(Server::deleting) {
                    return Err(ComputeError::Conflict(format!(
                        "Instance {id} was deleted during the snapshot."
                    )));
                }
                let Some(agent) = self.agent(&plan.host) else {
                    return Err(ComputeError::Internal(format!(
                        "host {} is not reachable from this controller",
                        plan.host
                    )));
                };
                // A host restarting or briefly unreachable gets a few
                // more tries before the snapshot is given up.
                if let Err(e) = self.renewing(saga, agent.snapshot(id, &copy)).await {
                    let why = format!("Snapshot of instance {id} failed: {e}");
                    return Err(if saga.attempts < CAPTURE_TRIES {
                        ComputeError::Internal(why)
                    } else {
                        ComputeError::Conflict(why)
                    });
                }
                failpoint("server-snapshot.captured");
                self.set_snapshot_task(id, plan.task("image_uploading"))
                    .await?;
                Ok(Outcome::Next("upload"))
            }
            "upload" => {
                let img = self.images.get(&plan.image_id).await.map_err(image_error)?;
                match img {
                    Some(img) if img.status == "active" => {}
                    Some(mut img) => {
                        if img.status == "saving" {
                            // A crash in the middle of the upload: again.
                            self.images
                                .set_status(&img.id, "queued")
                                .await
                                .map_err(image_error)?;
                            img.status = "queued".into();
                        }
                        if plan.volumes.is_empty() {
                            let file = tokio::fs::File::open(&copy).await.map_err(|e| {
                                ComputeError::Conflict(format!(
                                    "The copy of instance {id}'s disk is gone: {e}"
                                ))
                            })?;
                            let body = axum::body::Body::from_stream(
                                tokio_util::io::ReaderStream::new(file),
                            );
                            self.renewing(saga, self.images.upload(&img, body))
                                .await
                                .map_err(|e| {
                                    ComputeError::Conflict(format!(
                                        "Storing the snapshot failed: {e}"
                                    ))
                                })?;
                        } else {
                            self.images
                                .activate_empty(&img.id)
                                .await
                                .map_err(image_error)?;
                        }
                    }
                    None => {
                        return Err(ComputeError::Conflict(format!(
                            "Image {} was deleted during the snapshot.",
                            plan.image_id
                        )))
                    }
                }
                let _ = tokio::fs::remove_file(&copy).await;
                if let Some(b) = &plan.backup {
                    self.rotate_backups(id, &plan.owner, b).await?;
                }
                if plan.shelve {
                    sqlx::query(&format!(
                        "UPDATE servers SET state_generation = state_generation + 1, shelved_image_id = $1, \
                         task_state = 'shelving', updated_at = $2 WHERE id = $3 AND task_state IN ({})",
                        task_list()
                    ))
                    .bind(&plan.image_id)
                    .bind(time::now_micros())
                    .bind(id)
                    .execute(self.pool())
                    .await?;
                    return Ok(Outcome::Next("stop"));
                }
                self.end_snapshot_task(id).await?;
                tracing::info!(server_id = %id, image_id = %plan.image_id, "snapshot uploaded");
                Ok(Outcome::Done)
            }
            // A shelve: the server stops, then leaves its host.
            "stop" => {
                let Some(srv) = self.server(id).await?.filter(|s| !s.deleting()) else {
                    return Err(ComputeError::Conflict(format!(
                        "Instance {id} was deleted while it was shelved."
                    )));
                };
                if srv.desired_power != "stopped" {
                    sqlx::query(
                        "UPDATE servers SET state_generation = state_generation + 1, desired_power = 'stopped', \
                         updated_at = $1 WHERE id = $2",
                    )
                    .bind(time::now_micros())
                    .bind(id)
                    .execute(self.pool())
                    .await?;
                    self.wake(srv.host.as_deref());
                }
                if srv.vm_state != "stopped" {
                    return Ok(Outcome::Wait(500_000));
                }
                failpoint("server-shelve.stopped");
                Ok(Outcome::Next("offload"))
            }
            "offload" => {
                let mut tx = self.pool().begin().await?;
                sqlx::query("DELETE FROM allocations WHERE consumer_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(&format!(
                    "UPDATE servers SET state_generation = state_generation + 1, host = NULL, \
                     vm_state = 'shelved_offloaded', task_state = NULL, power_state = $1, updated_at = $2 \
                     WHERE id = $3 AND task_state IN ({})",
                    task_list()
                ))
                .bind(crate::model::power::SHUTDOWN)
                .bind(time::now_micros())
                .bind(id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                // Its host, no longer asked to run it, removes the VM.
                self.wake(Some(&plan.host));
                tracing::info!(server_id = %id, host = %plan.host, "server shelved and offloaded");
                Ok(Outcome::Done)
            }
            "unwind-image" => {
                let _ = tokio::fs::remove_file(&copy).await;
                if !plan.volumes.is_empty() {
                    let api = self.volume_api()?;
                    let ctx = plan.ctx.clone().ok_or_else(|| {
                        ComputeError::Internal(format!("saga {}: no caller recorded", saga.id))
                    })?;
                    for v in &plan.volumes {
                        if !api.delete_snapshot(&ctx, &v.snapshot_id).await? {
                            return Ok(Outcome::Wait(500_000));
                        }
                    }
                }
                let img = self.images.get(&plan.image_id).await.map_err(image_error)?;
                // A shelve's image goes even when it was made: the server
                // was not shelved.
                if img.is_some_and(|i| i.status != "active" || plan.shelve) {
                    self.images
                        .remove(&plan.image_id)
                        .await
                        .map_err(image_error)?;
                }
                self.end_snapshot_task(id).await?;
                Ok(Outcome::Done)
            }
            other => Err(ComputeError::Internal(format!(
                "saga {}: unknown step {other}",
                saga.id
            ))),
        }
    }

    /// The volumes to snapshot for a server booted from a volume (none for
    /// a server with a disk of its own), their snapshot ids planned.
    async fn volume_snapshots(&self, srv: &Server) -> Result<Vec<VolumeSnapshot>> {
        if !srv.image_id.is_empty() {
            return Ok(Vec::new());
        }
        let mappings: Vec<_> = crate::volumes::mappings_of(self.pool(), &srv.id)
            .await?
            .into_iter()
            .filter(|m| m.state == "attached")
            .collect();
        let api = self.volume_api()?;
        let ids: Vec<String> = mappings.iter().map(|m| m.volume_id.clone()).collect();
        let sizes = api.sizes(&ids).await?;
        Ok(mappings
            .into_iter()
            .map(|m| VolumeSnapshot {
                size: sizes.get(&m.volume_id).copied().unwrap_or(1),
                snapshot_id: ids::uuid_id(),
                volume_id: m.volume_id,
                device: m.device,
                delete_on_termination: m.delete_on_termination != 0,
            })
            .collect())
    }

    /// Keeps the newest `rotation` backups of the server of this type
    /// (Nova's rotation; 0 keeps none, not even the new one).
    async fn rotate_backups(&self, server_id: &str, owner: &str, b: &Backup) -> Result<()> {
        let backups: Vec<Image> = self
            .images
            .owned_with(owner, "instance_uuid", server_id)
            .await
            .map_err(image_error)?
            .into_iter()
            .filter(|i| {
                let p = i.props();
                p.get("image_type").and_then(Value::as_str) == Some("backup")
                    && p.get("backup_type").and_then(Value::as_str) == Some(b.backup_type.as_str())
                    && i.status == "active"
            })
            .collect();
        for old in backups.iter().skip(b.rotation.max(0) as usize) {
            self.images.remove(&old.id).await.map_err(image_error)?;
            tracing::info!(server_id, image_id = %old.id, backup_type = %b.backup_type, "old backup rotated out");
        }
        Ok(())
    }

    async fn set_snapshot_task(&self, id: &str, task: &str) -> Result<()> {
        sqlx::query(&format!(
            "UPDATE servers SET state_generation = state_generation + 1, task_state = $1, updated_at = $2 \
             WHERE id = $3 AND task_state IN ({})",
            task_list()
        ))
        .bind(task)
        .bind(time::now_micros())
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn end_snapshot_task(&self, id: &str) -> Result<()> {
        sqlx::query(&format!(
            "UPDATE servers SET state_generation = state_generation + 1, task_state = NULL, updated_at = $1 \
             WHERE id = $2 AND task_state IN ({})",
            task_list()
        ))
        .bind(time::now_micros())
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
