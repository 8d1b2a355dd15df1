//! The volume-attach and volume-detach sagas.
//!
//! ```text
//!  attach: accept (saga, one tx; the attachment id is chosen here)
//!    ▼
//!  reserve: the volume service reserves the volume     ── refused: the request's 4xx
//!    ▼
//!  plug: the volume is `attaching`; mapping `attaching` + the server's
//!    │   row touched (the host's generation moves), one tx; host woken
//!    ▼
//!  wait: the host reports the disk plugged (mapping `attached`)
//!    ▼                                    ── server gone, or no report in
//!  complete: the volume is `in-use`          5 minutes: unwind
//!
//!  unwind-plug: the mapping removed (the host unplugs whatever it plugged)
//!  unwind-reserve: the attachment released (the volume `available`)
//!
//!  detach: accept (mapping `detaching` + saga, one tx)
//!    ▼
//!  begin: the volume is `detaching`; host woken
//!    ▼
//!  wait: the host reports the disk gone (mapping `detached`), or the
//!    │   server has no host
//!    ▼
//!  release: the attachment released, the mapping removed
//! ```

use std::sync::Arc;

use ferro_common::{ids, time, AuthContext};
use serde::{Deserialize, Serialize};

use crate::error::{ComputeError, Result};
use crate::executor::{Ended, Outcome};
use crate::model::Server;
use crate::saga::{self, failpoint, Kind, Saga};
use crate::service::ComputeService;
use crate::volumes::{self, Mapping};

/// How long an attach waits for the host to plug the disk in.
const PLUG_TIMEOUT_MICROS: i64 = 300_000_000;
const RECHECK_MICROS: i64 = 2_000_000;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AttachPlan {
    pub server_id: String,
    pub volume_id: String,
    pub device: String,
    pub delete_on_termination: bool,
    /// The caller, on whose behalf the volume is reserved.
    pub ctx: AuthContext,
}

impl ComputeService {
    pub(crate) fn volume_api(&self) -> Result<Arc<dyn volumes::VolumeApi>> {
        self.volumes.get().cloned().ok_or_else(|| {
            ComputeError::Conflict("This cloud has no block storage service.".into())
        })
    }

    /// Attaches volume `volume_id` to `srv` at `device` (or the next free
    /// one): runs the saga up to the host's part and returns the mapping.
    pub async fn attach_volume(
        self: &Arc<Self>,
        ctx: &AuthContext,
        srv: &Server,
        volume_id: &str,
        device: Option<&str>,
        delete_on_termination: bool,
    ) -> Result<Mapping> {
        let api = self.volume_api()?;
        let vol = api.volume(ctx, volume_id).await.map_err(|e| match e {
            volumes::VolumeCallError::NotFound(_) => {
                ComputeError::NotFound(format!("Volume {volume_id} could not be found."))
            }
            other => other.into(),
        })?;
        let existing = volumes::mappings_of(self.pool(), &srv.id).await?;
        if existing.iter().any(|m| m.volume_id == volume_id) {
            return Err(ComputeError::BadRequest(format!(
                "Invalid volume: volume {volume_id} is already attached to the instance {}.",
                srv.id
            )));
        }
        if vol.status != "available" && !(vol.multiattach && vol.status == "in-use") {
            return Err(ComputeError::BadRequest(format!(
                "Invalid volume: volume '{volume_id}' status must be 'available'. Currently in '{}'",
                vol.status
            )));
        }
        let taken: Vec<String> = existing.iter().map(|m| m.device.clone()).collect();
        let device = match device {
            Some(d) if !d.is_empty() => {
                if !d.starts_with("/dev/vd") || d.len() != 8 || d == "/dev/vda" {
                    return Err(ComputeError::BadRequest(format!(
                        "The supplied device path ({d}) is invalid."
                    )));
                }
                if taken.iter().any(|t| t == d) {
                    return Err(ComputeError::BadRequest(format!(
                        "The supplied device path ({d}) is in use."
                    )));
                }
                d.to_owned()
            }
            _ => volumes::next_device(&taken).ok_or_else(|| {
                ComputeError::BadRequest("No free disk device names for prefix 'vd'".into())
            })?,
        };
        let plan = AttachPlan {
            server_id: srv.id.clone(),
            volume_id: volume_id.to_owned(),
            device: device.clone(),
            delete_on_termination,
            ctx: ctx.clone(),
        };
        let params = serde_json::to_string(&plan)
            .map_err(|e| ComputeError::Internal(format!("encoding a saga: {e}")))?;
        let attachment_id = ids::uuid_id();
        let mut tx = self.pool().begin().await?;
        let saga_id = saga::insert(
            &mut tx,
            Kind::VolumeAttach,
            &attachment_id,
            &params,
            "reserve",
            &self.holder,
        )
        .await?;
        tx.commit().await?;
        tracing::info!(server_id = %srv.id, volume_id, attachment_id = %attachment_id, saga_id = %saga_id, "volume attach accepted");
        failpoint("volume-attach.accepted");
        match self.drive(&saga_id, Some("wait")).await? {
            Ended::Undone(e) => return Err(e),
            Ended::Paused => self.kick(saga_id),
            _ => {}
        }
        volumes::mapping(self.pool(), &attachment_id)
            .await?
            .ok_or_else(|| ComputeError::Internal(format!("attachment {attachment_id} vanished")))
    }

    pub(crate) async fn attach_step(self: &Arc<Self>, saga: &Saga) -> Result<Outcome> {
        let plan: AttachPlan = serde_json::from_str(&saga.params).map_err(|e| {
            ComputeError::Internal(format!("saga {}: unreadable plan: {e}", saga.id))
        })?;
        let att = saga.resource_id.as_str();
        let api = self.volume_api()?;
        let srv: Option<Server> = sqlx::query_as("SELECT * FROM servers WHERE id = $1")
            .bind(&plan.server_id)
            .fetch_optional(self.pool())
            .await?;
        let gone = srv.as_ref().is_none_or(|s| s.deleting());
        match saga.step.as_str() {
            "reserve" => {
                if gone {
                    return Err(ComputeError::Conflict(format!(
                        "Instance {} is being deleted.",
                        plan.server_id
                    )));
                }
                api.reserve(&plan.ctx, att, &plan.volume_id, &plan.server_id)
                    .await?;
                failpoint("volume-attach.reserved");
                Ok(Outcome::Next("plug"))
            }
            "plug" => {
                let Some(s) = srv.filter(|s| !s.deleting()) else {
                    return Err(ComputeError::Conflict(format!(
                        "Instance {} is being deleted.",
                        plan.server_id
                    )));
                };
                api.connect(att, s.host.as_deref().unwrap_or(""), &plan.device)
                    .await?;
                let mut tx = self.pool().begin().await?;
                sqlx::query(
                    "INSERT INTO block_device_mappings (id, server_id, volume_id, device, state, delete_on_termination, created_at) \
                     VALUES ($1, $2, $3, $4, 'attaching', $5, $6) ON CONFLICT (id) DO NOTHING",
                )
                .bind(att)
                .bind(&plan.server_id)
                .bind(&plan.volume_id)
                .bind(&plan.device)
                .bind(i64::from(plan.delete_on_termination))
                .bind(time::now_micros())
                .execute(&mut *tx)
                .await?;
                volumes::touch_server(&mut tx, &plan.server_id).await?;
                tx.commit().await?;
                failpoint("volume-attach.plugged");
                self.wake(s.host.as_deref());
                Ok(Outcome::Next("wait"))
            }
            "wait" => {
                let m = volumes::mapping(self.pool(), att).await?;
                match m {
                    Some(m) if m.state == "attached" => Ok(Outcome::Next("complete")),
                    _ if gone => Err(ComputeError::Conflict(format!(
                        "Instance {} was deleted while volume {} was being attached.",
                        plan.server_id, plan.volume_id
                    ))),
                    _ if time::now_micros() - saga.created_at > PLUG_TIMEOUT_MICROS => {
                        Err(ComputeError::Conflict(format!(
                            "The host of instance {} did not plug volume {} in.",
                            plan.server_id, plan.volume_id
                        )))
                    }
                    _ => Ok(Outcome::Wait(RECHECK_MICROS)),
                }
            }
            "complete" => {
                api.complete(att).await?;
                tracing::info!(server_id = %plan.server_id, volume_id = %plan.volume_id, device = %plan.device, "volume attached");
                Ok(Outcome::Done)
            }
            "unwind-plug" => {
                let mut tx = self.pool().begin().await?;
                let n = sqlx::query("DELETE FROM block_device_mappings WHERE id = $1")
                    .bind(att)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n > 0 && !gone {
                    volumes::touch_server(&mut tx, &plan.server_id).await?;
                }
                tx.commit().await?;
                if let Some(s) = &srv {
                    self.wake(s.host.as_deref());
                }
                Ok(Outcome::Next("unwind-reserve"))
            }
            "unwind-reserve" => {
                api.release(att).await?;
                tracing::info!(server_id = %plan.server_id, volume_id = %plan.volume_id, "volume attach undone");
                Ok(Outcome::Done)
            }
            other => Err(ComputeError::Internal(format!(
                "saga {}: unknown step {other}",
                saga.id
            ))),
        }
    }

    /// Starts detaching mapping `m` of `srv`.
    pub async fn detach_volume(self: &Arc<Self>, srv: &Server, m: &Mapping) -> Result<()> {
        if saga::open_for(self.pool(), Kind::VolumeDetach, &m.id)
            .await?
            .is_some()
        {
            return Ok(());
        }
        if saga::open_for(self.pool(), Kind::VolumeAttach, &m.id)
            .await?
            .is_some()
        {
            return Err(ComputeError::Conflict(format!(
                "Volume {} is still being attached to instance {}; try again when it is in-use.",
                m.volume_id, srv.id
            )));
        }
        let mut tx = self.pool().begin().await?;
        let n = sqlx::query(
            "UPDATE block_device_mappings SET state = 'detaching' WHERE id = $1 AND state IN ('attaching', 'attached')",
        )
        .bind(&m.id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(ComputeError::Conflict(format!(
                "Volume {} is already being detached from instance {}.",
                m.volume_id, srv.id
            )));
        }
        volumes::touch_server(&mut tx, &srv.id).await?;
        let params = serde_json::json!({"server_id": srv.id, "volume_id": m.volume_id}).to_string();
        let saga_id = saga::insert(
            &mut tx,
            Kind::VolumeDetach,
            &m.id,
            &params,
            "begin",
            &self.holder,
        )
        .await?;
        tx.commit().await?;
        tracing::info!(server_id = %srv.id, volume_id = %m.volume_id, saga_id = %saga_id, "volume detach accepted");
        failpoint("volume-detach.accepted");
        self.kick(saga_id);
        Ok(())
    }

    pub(crate) async fn detach_step(self: &Arc<Self>, saga: &Saga) -> Result<Outcome> {
        let att = saga.resource_id.as_str();
        let api = self.volume_api()?;
        let Some(m) = volumes::mapping(self.pool(), att).await? else {
            api.release(att).await?;
            return Ok(Outcome::Done);
        };
        let srv: Option<Server> = sqlx::query_as("SELECT * FROM servers WHERE id = $1")
            .bind(&m.server_id)
            .fetch_optional(self.pool())
            .await?;
        let host = srv.as_ref().and_then(|s| s.host.clone());
        match saga.step.as_str() {
            "begin" => {
                api.begin_detaching(att).await?;
                self.wake(host.as_deref());
                Ok(Outcome::Next("wait"))
            }
            "wait" => {
                let host_gone = match &host {
                    None => true,
                    Some(h) => !self.host_alive(h).await?,
                };
                if m.state == "detached" || host_gone {
                    failpoint("volume-detach.unplugged");
                    Ok(Outcome::Next("release"))
                } else {
                    self.wake(host.as_deref());
                    Ok(Outcome::Wait(RECHECK_MICROS * 5))
                }
            }
            "release" => {
                api.release(att).await?;
                sqlx::query("DELETE FROM block_device_mappings WHERE id = $1")
                    .bind(att)
                    .execute(self.pool())
                    .await?;
                tracing::info!(server_id = %m.server_id, volume_id = %m.volume_id, "volume detached");
                Ok(Outcome::Done)
            }
            other => Err(ComputeError::Internal(format!(
                "saga {}: unknown step {other}",
                saga.id
            ))),
        }
    }

    /// A host's report of the volumes an instance has plugged: mappings
    /// move to `attached` / `detached` and their sagas look again.
    pub(crate) async fn volumes_reported(
        self: &Arc<Self>,
        server_id: &str,
        plugged: &[String],
    ) -> Result<()> {
        for m in volumes::mappings_of(self.pool(), server_id).await? {
            let (from, to, kind) = match m.state.as_str() {
                "attaching" if plugged.contains(&m.volume_id) => {
                    ("attaching", "attached", Kind::VolumeAttach)
                }
                "detaching" if !plugged.contains(&m.volume_id) => {
                    ("detaching", "detached", Kind::VolumeDetach)
                }
                _ => continue,
            };
            let n = sqlx::query(
                "UPDATE block_device_mappings SET state = $1 WHERE id = $2 AND state = $3",
            )
            .bind(to)
            .bind(&m.id)
            .bind(from)
            .execute(self.pool())
            .await?
            .rows_affected();
            if n > 0 {
                tracing::info!(server_id, volume_id = %m.volume_id, state = to, "the host reported a volume");
                if let Some(open) = saga::open_for(self.pool(), kind, &m.id).await? {
                    self.kick(open.id);
                }
            }
        }
        Ok(())
    }

    /// Releases every volume of a server being purged.
    pub(crate) async fn release_volumes(&self, server_id: &str) -> Result<()> {
        let maps = volumes::mappings_of(self.pool(), server_id).await?;
        if maps.is_empty() {
            return Ok(());
        }
        let api = self.volume_api()?;
        for m in maps {
            api.release(&m.id).await?;
            if m.delete_on_termination != 0 {
                api.delete_on_termination(&m.volume_id).await?;
            }
            sqlx::query("DELETE FROM block_device_mappings WHERE id = $1")
                .bind(&m.id)
                .execute(self.pool())
                .await?;
        }
        Ok(())
    }
}
