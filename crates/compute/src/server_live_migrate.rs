//! Live migration: the server-live-migrate saga.
//!
//! ```text
//!  accept: task → migrating, migration_dest set (compare-and-set), migration
//!          row (queued), saga; one transaction. Both hosts' agents leave the
//!          instance to the saga from here (`hands_off`).
//!    ▼
//!  claim: the flavor's reservation (consumer `ID-resize`) on the destination
//!    ▼
//!  migrate: the ports plugged in on the destination too (`migrating_to`);
//!           the destination starts the guest waiting for its memory, with
//!           a new disk exported over NBD; the source mirrors its disk and
//!           migrates its memory (running); post-migrating once it is there
//!    ▼
//!  switch: ports bound to the destination (every host's tunnels follow),
//!          host → destination, the old claim released and the reservation
//!          made the claim, task cleared, migration completed; one
//!          transaction after the ports
//!    ▼
//!  resume: the destination's export ends (the guest already runs there)
//!
//!  a refusal or failure before `switch` unwinds:
//!  unwind-claim: the source's guest runs on (mirror and migration
//!                cancelled), the ports unplugged from the destination, the
//!                reservation released, task cleared, migration error; the
//!                destination removes its copy (no longer hands-off)
//! ```

use std::sync::Arc;

use ferro_common::time;
use ferro_placement::inventory;
use serde::{Deserialize, Serialize};

use ferro_agent_api::InstanceSpec;

use crate::error::{ComputeError, Result};
use crate::executor::Outcome;
use crate::model::Server;
use crate::saga::{self, failpoint, Saga};
use crate::server_migrate::{insert_migration, MigrationKind, NewMigration};
use crate::server_resize::reservation;
use crate::service::{stale_unless, ComputeService};

/// The saga's parameters.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LivePlan {
    pub migration_id: String,
    pub source: String,
    pub dest: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
}

fn unreachable_host(h: &str) -> ComputeError {
    ComputeError::Internal(format!("host {h} is not reachable from this controller"))
}

impl ComputeService {
    /// Takes the server for a live migration, records it and writes the
    /// saga, in one transaction. Returns the saga's id.
    pub async fn accept_live_migrate(
        &self,
        srv: &Server,
        plan: &LivePlan,
        kind: &MigrationKind<'_>,
    ) -> Result<String> {
        let params = serde_json::to_string(plan)
            .map_err(|e| ComputeError::Internal(format!("encoding a saga: {e}")))?;
        let seq = self.next("migrations").await?;
        let now = time::now_micros();
        let mut tx = self.pool().begin().await?;
        let taken = sqlx::query(
            "UPDATE servers SET state_generation = state_generation + 1, task_state = 'migrating', \
             migration_dest = $1, updated_at = $2 \
             WHERE id = $3 AND state_generation = $4 AND task_state IS NULL",
        )
        .bind(&plan.dest)
        .bind(now)
        .bind(&srv.id)
        .bind(srv.state_generation)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        stale_unless(taken, &srv.id)?;
        let row = NewMigration {
            uuid: &plan.migration_id,
            seq,
            source: &plan.source,
            dest: &plan.dest,
            status: "queued",
            now,
        };
        insert_migration(&mut tx, srv, &row, kind).await?;
        let id = saga::insert(
            &mut tx,
            saga::Kind::ServerLiveMigrate,
            &srv.id,
            &params,
            "claim",
            &self.holder,
        )
        .await?;
        tx.commit().await?;
        tracing::info!(server_id = %srv.id, saga_id = %id, migration_id = %plan.migration_id,
            source = %plan.source, dest = %plan.dest, "live migration accepted");
        failpoint("server-live-migrate.accepted");
        Ok(id)
    }

    /// A host's underlay address: where a live migration's streams go.
    async fn underlay_ip(&self, host: &str) -> Result<String> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT COALESCE(tunnel_ip, host_ip) FROM hosts WHERE name = $1")
                .bind(host)
                .fetch_optional(self.pool())
                .await?;
        row.map(|(ip,)| ip)
            .ok_or_else(|| ComputeError::Internal(format!("host {host} is not known")))
    }

    /// Runs one step of a live-migrate saga.
    pub(crate) async fn live_migrate_step(self: &Arc<Self>, saga: &Saga) -> Result<Outcome> {
        let plan: LivePlan = serde_json::from_str(&saga.params).map_err(|e| {
            ComputeError::Internal(format!("saga {}: unreadable plan: {e}", saga.id))
        })?;
        let id = saga.resource_id.as_str();
        let srv = self.server(id).await?;
        let migrating = srv.as_ref().is_some_and(|s| {
            s.task_state.as_deref() == Some("migrating")
                && s.migration_dest.as_deref() == Some(plan.dest.as_str())
        });
        match saga.step.as_str() {
            "unwind-claim" => {
                if let Some(a) = self.agent(&plan.source) {
                    if let Err(e) = a.cancel_migration(id).await {
                        tracing::warn!(server_id = %id, error = %e, "cancelling a live migration on its source failed");
                    }
                }
                self.network
                    .set_migrating_to(id, None)
                    .await
                    .map_err(|e| ComputeError::Internal(format!("unplugging ports: {e}")))?;
                inventory::release(self.pool(), &reservation(id)).await?;
                sqlx::query(
                    "UPDATE servers SET state_generation = state_generation + 1, task_state = NULL, migration_dest = NULL \
                     WHERE id = $1 AND task_state = 'migrating'",
                )
                .bind(id)
                .execute(self.pool())
                .await?;
                self.set_migration_status(&plan.migration_id, "error")
                    .await?;
                self.wake(Some(&plan.source));
                self.wake(Some(&plan.dest));
                Ok(Outcome::Done)
            }
            // Finished already (a crash after the switch): only the resume.
            "claim" | "migrate" | "switch" if !migrating => match saga.step.as_str() {
                "switch" => Ok(Outcome::Next("resume")),
                _ => Ok(Outcome::Done),
            },
            "resume" => {
                if let Some(dest) = self.agent(&plan.dest) {
                    if let Err(e) = dest.finish_incoming(id).await {
                        tracing::warn!(server_id = %id, error = %e, "ending a live migration's export failed");
                    }
                }
                Ok(Outcome::Done)
            }
            _ if srv.as_ref().is_none_or(Server::deleting) => Err(ComputeError::Conflict(format!(
                "Instance {id} was deleted during its live migration."
            ))),
            "claim" => {
                let srv = srv.as_ref().ok_or_else(|| unreachable_host(&plan.dest))?;
                let consumer = reservation(id);
                let claim = inventory::Claim {
                    consumer_id: &consumer,
                    host: &plan.dest,
                    vcpus: plan.vcpus,
                    memory_mb: plan.memory_mb,
                    disk_gb: plan.disk_gb,
                    project_id: &srv.project_id,
                    user_id: &srv.user_id,
                };
                if !inventory::claim(self.pool(), &claim, time::now_micros()).await? {
                    return Err(ComputeError::BadRequest(format!(
                        "No valid host was found. {} lacks room for the server.",
                        plan.dest
                    )));
                }
                failpoint("server-live-migrate.claimed");
                Ok(Outcome::Next("migrate"))
            }
            "migrate" => {
                let Some(m) = self
                    .open_migration(id, &["queued", "preparing", "running", "post-migrating"])
                    .await?
                else {
                    return Err(ComputeError::Conflict(format!(
                        "Instance {id} has no migration in progress."
                    )));
                };
                if m.status == "post-migrating" {
                    // The memory arrived before a crash: on to the switch.
                    return Ok(Outcome::Next("switch"));
                }
                let srv = srv.ok_or_else(|| unreachable_host(&plan.dest))?;
                let dest = self
                    .agent(&plan.dest)
                    .ok_or_else(|| unreachable_host(&plan.dest))?;
                let source = self
                    .agent(&plan.source)
                    .ok_or_else(|| unreachable_host(&plan.source))?;
                self.set_migration_status(&plan.migration_id, "preparing")
                    .await?;
                self.network
                    .set_migrating_to(id, Some(&plan.dest))
                    .await
                    .map_err(|e| ComputeError::Internal(format!("plugging ports in: {e}")))?;
                let spec = self.spec_for_migration(&srv, &plan.dest).await?;
                let ip = self.underlay_ip(&plan.dest).await?;
                let incoming = self
                    .renewing(saga, dest.prepare_incoming(&spec, &ip))
                    .await
                    .map_err(|e| {
                        ComputeError::Conflict(format!(
                            "Host {} could not take instance {id}: {e}",
                            plan.dest
                        ))
                    })?;
                self.set_migration_status(&plan.migration_id, "running")
                    .await?;
                let stats = self
                    .renewing(saga, source.migrate_out(id, &incoming))
                    .await
                    .map_err(|e| {
                        ComputeError::Conflict(format!(
                            "Live migration of instance {id} failed: {e}"
                        ))
                    })?;
                self.set_migration_status(&plan.migration_id, "post-migrating")
                    .await?;
                tracing::info!(server_id = %id, source = %plan.source, dest = %plan.dest,
                    total_ms = stats.total_ms, downtime_ms = stats.downtime_ms, ram_bytes = stats.ram_bytes,
                    "live migration: memory and disk moved");
                failpoint("server-live-migrate.migrated");
                Ok(Outcome::Next("switch"))
            }
            "switch" => {
                self.network
                    .rebind_device(id, &plan.dest)
                    .await
                    .map_err(|e| ComputeError::Internal(format!("rebinding ports: {e}")))?;
                self.network
                    .set_migrating_to(id, None)
                    .await
                    .map_err(|e| ComputeError::Internal(format!("rebinding ports: {e}")))?;
                let mut tx = self.pool().begin().await?;
                sqlx::query("DELETE FROM allocations WHERE consumer_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE allocations SET consumer_id = $1 WHERE consumer_id = $2")
                    .bind(id)
                    .bind(reservation(id))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "UPDATE servers SET state_generation = state_generation + 1, host = $1, migration_dest = NULL, \
                     task_state = NULL, updated_at = $2 WHERE id = $3 AND task_state = 'migrating'",
                )
                .bind(&plan.dest)
                .bind(time::now_micros())
                .bind(id)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE migrations SET status = 'completed', updated_at = $1 WHERE uuid = $2",
                )
                .bind(time::now_micros())
                .bind(&plan.migration_id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                tracing::info!(server_id = %id, host = %plan.dest, "live migration switched hosts");
                // Every host's tunnels follow the port at once.
                self.wake_all();
                Ok(Outcome::Next("resume"))
            }
            other => Err(ComputeError::Internal(format!(
                "saga {}: unknown step {other}",
                saga.id
            ))),
        }
    }

    /// The instance as its new host should start it (its ports as they
    /// are plugged in there).
    async fn spec_for_migration(&self, srv: &Server, dest: &str) -> Result<InstanceSpec> {
        let network = self
            .network
            .host_network(dest, false)
            .await
            .map_err(|e| ComputeError::Internal(format!("the destination's network: {e}")))?;
        let nics = crate::service::nics_of(&network, &srv.id);
        Ok(self.spec_of(srv, nics, Vec::new()))
    }
}
