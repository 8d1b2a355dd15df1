//! Shelving (Nova's `shelve`, `unshelve`): a shelve is the snapshot saga
//! of `server_snapshot` with two more steps — the server is stopped, then
//! offloaded from its host (allocation released, host cleared: the host's
//! agent removes the VM) — as Nova does with its default
//! `shelved_offload_time = 0`. The image of the disk (none for a server
//! booted from a volume, whose volumes stay) is kept in
//! `shelved_image_id`. Unshelve schedules the server again, like a build;
//! its host boots it from that image, which is deleted once the server
//! runs.
//!
//! ```text
//!  shelve:   accept (task shelving) → image → capture → upload → stop →
//!            offload (SHELVED_OFFLOADED)
//!  unshelve: task scheduling (compare-and-set) → schedule → spawning →
//!            ACTIVE, the shelved image removed
//! ```

use std::sync::Arc;

use ferro_common::{time, AuthContext};
use serde_json::Map;

use crate::error::{ComputeError, Result};
use crate::model::Server;
use crate::saga::{self, failpoint};
use crate::service::{stale_unless, ComputeService};

impl ComputeService {
    /// `shelve`: a snapshot of the disk (none for a server booted from a
    /// volume), then the server is stopped and offloaded from its host
    /// (Nova's default `shelved_offload_time = 0`): SHELVED_OFFLOADED.
    pub async fn shelve(self: &Arc<Self>, ctx: &AuthContext, srv: &Server) -> Result<()> {
        let mut plan = self
            .plan_image(ctx, srv, &format!("{}-shelved", srv.name), Map::new(), None)
            .await?;
        plan.shelve = true;
        let first = if plan.volumes.is_empty() {
            "image"
        } else {
            // Its disks are volumes, which stay: nothing to copy.
            plan.image_id.clear();
            plan.volumes.clear();
            plan.ctx = None;
            "stop"
        };
        let saga_id = self
            .accept_snapshot(srv, &plan, saga::Kind::ServerShelve, "shelving", first)
            .await?;
        failpoint("server-shelve.accepted");
        self.kick(saga_id);
        Ok(())
    }

    /// `unshelve` of a SHELVED_OFFLOADED server: scheduled again (into
    /// `availability_zone` if given), as a build is.
    pub async fn unshelve(
        self: &Arc<Self>,
        srv: &Server,
        availability_zone: Option<&str>,
    ) -> Result<()> {
        if srv.vm_state != "shelved_offloaded" || srv.task_state.is_some() {
            return Err(ComputeError::Conflict(format!(
                "Cannot 'unshelve' instance {} while it is in vm_state {}",
                srv.id, srv.vm_state
            )));
        }
        let done = sqlx::query(
            "UPDATE servers SET state_generation = state_generation + 1, task_state = 'scheduling', \
             desired_power = 'running', tried_hosts = '[]', fault = NULL, \
             availability_zone = COALESCE($1, availability_zone), updated_at = $2 \
             WHERE id = $3 AND state_generation = $4",
        )
        .bind(availability_zone)
        .bind(time::now_micros())
        .bind(&srv.id)
        .bind(srv.state_generation)
        .execute(self.pool())
        .await?
        .rows_affected();
        stale_unless(done, &srv.id)?;
        tracing::info!(server_id = %srv.id, "unshelving");
        let (me, id) = (self.clone(), srv.id.clone());
        tokio::spawn(async move {
            if let Err(e) = me.schedule(&id).await {
                tracing::error!(server_id = %id, error = %e, "placing an unshelved server failed");
            }
        });
        Ok(())
    }

    /// An unshelved server runs: the image of its shelved disk goes.
    pub(crate) async fn unshelved(&self, id: &str, image_id: &str) -> Result<()> {
        sqlx::query(
            "UPDATE servers SET state_generation = state_generation + 1, shelved_image_id = NULL, \
             updated_at = $1 WHERE id = $2 AND shelved_image_id = $3",
        )
        .bind(time::now_micros())
        .bind(id)
        .bind(image_id)
        .execute(self.pool())
        .await?;
        self.images
            .remove(image_id)
            .await
            .map_err(|e| ComputeError::Internal(format!("removing the shelved image: {e}")))?;
        tracing::info!(server_id = %id, image_id, "unshelved; its shelved image removed");
        Ok(())
    }
}
