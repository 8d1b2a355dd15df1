//! The server-delete saga: a server goes in the order Nova's does — the VM
//! stops on its host, then its ports go, then the server leaves the API.
//!
//! ```text
//!  accept: task → deleting + saga, one transaction (the server stays
//!    │     visible, task_state "deleting", until the last step)
//!    ▼
//!  stop: wait for a create saga of the server to end; while the host is
//!    │   up, wait for its agent to report the VM gone (the report clears
//!    │   the row's host); a host that is down is not waited for
//!    ▼
//!  ports: remove the ports made for it, release the ports it took
//!    ▼
//!  purge: allocations, group membership and the row, one transaction
//! ```
//!
//! There is nothing to unwind: every step moves forward and is retried
//! until it succeeds.

use std::sync::Arc;

use ferro_common::time;

use crate::error::Result;
use crate::executor::Outcome;
use crate::model::Server;
use crate::nics::from_network;
use crate::saga::{self, failpoint, Saga};
use crate::service::{host_is_up, stale_unless, ComputeService};

/// How often a delete looks again while its host's agent removes the VM
/// (the agent's report also wakes it at once).
const STOP_RECHECK_MICROS: i64 = 5_000_000;

impl ComputeService {
    /// Starts deleting a server (idempotent: a server already being deleted
    /// is left to its saga). The server stays visible until its ports are
    /// gone.
    pub async fn delete(self: &Arc<Self>, s: &Server) -> Result<()> {
        if let Some(open) = saga::open_for(self.pool(), saga::Kind::ServerDelete, &s.id).await? {
            self.kick(open.id);
            return Ok(());
        }
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE servers SET state_generation = state_generation + 1, task_state = 'deleting', updated_at = $1 \
             WHERE id = $2 AND state_generation = $3",
        )
        .bind(time::now_micros())
        .bind(&s.id)
        .bind(s.state_generation)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        stale_unless(done, &s.id)?;
        let saga_id = saga::insert(
            &mut tx,
            saga::Kind::ServerDelete,
            &s.id,
            "{}",
            "stop",
            &self.holder,
        )
        .await?;
        tx.commit().await?;
        tracing::info!(server_id = %s.id, saga_id = %saga_id, "server deleting");
        failpoint("server-delete.accepted");
        self.wake(s.host.as_deref());
        self.kick(saga_id);
        Ok(())
    }

    /// Runs one step of a delete saga.
    pub(crate) async fn delete_step(self: &Arc<Self>, saga: &Saga) -> Result<Outcome> {
        let id = saga.resource_id.as_str();
        let Some(s) = sqlx::query_as::<_, Server>("SELECT * FROM servers WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
        else {
            return Ok(Outcome::Done);
        };
        match saga.step.as_str() {
            "stop" => {
                if saga::open_for(self.pool(), saga::Kind::ServerCreate, id)
                    .await?
                    .is_some()
                {
                    return Ok(Outcome::Wait(1_000_000));
                }
                if let Some(host) = &s.host {
                    if self.host_alive(host).await? {
                        self.wake(Some(host));
                        return Ok(Outcome::Wait(STOP_RECHECK_MICROS));
                    }
                    tracing::warn!(server_id = %id, host = %host, "deleting a server of a host that is down");
                }
                failpoint("server-delete.stopped");
                Ok(Outcome::Next("ports"))
            }
            "ports" => {
                let mut ports = self.network.device_ports(id).await.map_err(from_network)?;
                for n in s.nics() {
                    if !ports.iter().any(|p| p.id == n.port_id) {
                        if let Some(p) =
                            self.network.port(&n.port_id).await.map_err(from_network)?
                        {
                            if p.device_id == id {
                                ports.push(p);
                            }
                        }
                    }
                }
                // Ports made before `made_by` existed are known by the row.
                let made: Vec<String> = s
                    .nics()
                    .into_iter()
                    .filter(|n| n.created)
                    .map(|n| n.port_id)
                    .collect();
                for p in ports {
                    if p.made_by == "compute" || made.contains(&p.id) {
                        self.network
                            .remove_port(&p.id)
                            .await
                            .map_err(from_network)?;
                        failpoint("server-delete.port-removed");
                    } else {
                        self.network
                            .unbind_port(&p.id)
                            .await
                            .map_err(from_network)?;
                    }
                }
                Ok(Outcome::Next("purge"))
            }
            "purge" => {
                self.release_volumes(id).await?;
                // A shelved server's image of its disk goes with it, as in Nova.
                let shelved: Option<(Option<String>,)> =
                    sqlx::query_as("SELECT shelved_image_id FROM servers WHERE id = $1")
                        .bind(id)
                        .fetch_optional(self.pool())
                        .await?;
                if let Some((Some(img),)) = shelved {
                    self.images.remove(&img).await.map_err(|e| {
                        crate::error::ComputeError::Internal(format!(
                            "removing the shelved image: {e}"
                        ))
                    })?;
                }
                let mut tx = self.pool().begin().await?;
                sqlx::query("DELETE FROM allocations WHERE consumer_id = $1 OR consumer_id = $2")
                    .bind(id)
                    .bind(format!("{id}-resize"))
                    .execute(&mut *tx)
                    .await?;
                for sql in [
                    "DELETE FROM server_group_members WHERE server_id = $1",
                    "DELETE FROM servers WHERE id = $1",
                ] {
                    sqlx::query(sql).bind(id).execute(&mut *tx).await?;
                }
                saga::finish(&mut tx, &saga.id).await?;
                tx.commit().await?;
                tracing::info!(server_id = %id, "server deleted");
                Ok(Outcome::Done)
            }
            other => Err(crate::error::ComputeError::Internal(format!(
                "saga {}: unknown step {other}",
                saga.id
            ))),
        }
    }

    /// Whether `host` heartbeats (and isn't forced down).
    pub(crate) async fn host_alive(&self, host: &str) -> Result<bool> {
        let hb: Option<(i64, i64)> =
            sqlx::query_as("SELECT heartbeat_at, forced_down FROM hosts WHERE name = $1")
                .bind(host)
                .fetch_optional(self.pool())
                .await?;
        Ok(hb.is_some_and(|(t, forced)| host_is_up(t, forced)))
    }

    /// The agent of the server's host says its VM is gone: the delete may
    /// go on.
    pub(crate) async fn stopped_for_delete(self: &Arc<Self>, id: &str) -> Result<()> {
        sqlx::query(
            "UPDATE servers SET state_generation = state_generation + 1, host = NULL, updated_at = $1 \
             WHERE id = $2 AND task_state = 'deleting'",
        )
        .bind(time::now_micros())
        .bind(id)
        .execute(self.pool())
        .await?;
        tracing::info!(server_id = %id, "the host removed the server's VM");
        if let Some(open) = saga::open_for(self.pool(), saga::Kind::ServerDelete, id).await? {
            self.kick(open.id);
        }
        Ok(())
    }
}
