//! Cold migration, and resize onto another host: the server-migrate saga.
//!
//! ```text
//!  accept: task → resize_prep (compare-and-set), migration row, saga; one transaction
//!    ▼
//!  claim: the (new) flavor's reservation (consumer `ID-resize`) on the destination
//!    ▼
//!  stop: task → resize_migrating, migration_dest set: the source host's spec
//!        says stopped, and its agent shuts the guest down
//!    ▼
//!  copy: once the source reports it off, its agent writes a standalone qcow2
//!        of the root disk to the controller (mutual TLS for a joined host)
//!    ▼
//!  move: ports bound to the destination; host → destination, migration_source
//!        → the old host (which keeps its stopped copy), flavor swapped (the
//!        old one kept for revert), resize_seq + 1, task → resize_finish. The
//!        destination's agent fetches the copy, boots it, and the report of it
//!        running (or stopped, as it was) makes the server VERIFY_RESIZE.
//!
//!  anything refused before `move` (no room, the source gone) unwinds:
//!  unwind-claim: reservation released, task cleared, migration `error`;
//!                the source starts the guest again if it was running
//! ```
//!
//! Confirm releases the source's allocation and lets the source remove its
//! copy; revert releases the destination's, moves the server (and its
//! ports) back, and the source starts its copy; the destination removes its
//! own. A server booted from a volume has no disk to copy.

use std::path::PathBuf;
use std::sync::Arc;

use ferro_common::{ids, time};
use ferro_placement::inventory;
use serde::{Deserialize, Serialize};

use crate::error::{ComputeError, Result};
use crate::executor::Outcome;
use crate::model::{power, Server};
use crate::saga::{self, failpoint, Saga};
use crate::server_resize::reservation;
use crate::service::{stale_unless, ComputeService};

/// How many times the source host is asked for the disk's copy.
const COPY_TRIES: i64 = 5;

/// The saga's parameters.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MigratePlan {
    pub migration_id: String,
    pub source: String,
    pub dest: String,
    /// The flavor it has on the destination, as the server row keeps it.
    pub flavor: String,
    pub flavor_name: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
    /// It has a root disk of its own (not booted from a volume).
    pub own_disk: bool,
}

/// A migration as `os-migrations` shows it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Migration {
    pub uuid: String,
    pub seq: i64,
    pub server_id: String,
    pub source_compute: String,
    pub dest_compute: String,
    pub status: String,
    pub migration_type: String,
    pub old_flavor_id: String,
    pub new_flavor_id: String,
    pub project_id: String,
    pub user_id: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What the migration is, for its row.
pub struct MigrationKind<'a> {
    /// `migration` (same flavor) or `resize`.
    pub migration_type: &'a str,
    pub old_flavor_id: &'a str,
    pub new_flavor_id: &'a str,
    pub user_id: &'a str,
}

impl ComputeService {
    /// Where a moving server's disk copy waits for its new host (next to
    /// the image store's files).
    pub fn migration_copy(&self, server_id: &str) -> PathBuf {
        self.images
            .store
            .data_path(server_id)
            .with_extension("migration")
    }

    /// Takes the server for a move, records the migration and writes the
    /// saga, in one transaction. Returns the saga's id.
    pub async fn accept_migrate(
        &self,
        srv: &Server,
        plan: &MigratePlan,
        kind: &MigrationKind<'_>,
    ) -> Result<String> {
        let params = serde_json::to_string(plan)
            .map_err(|e| ComputeError::Internal(format!("encoding a saga: {e}")))?;
        let seq = self.next("migrations").await?;
        let now = time::now_micros();
        let mut tx = self.pool().begin().await?;
        let taken = sqlx::query(
            "UPDATE servers SET state_generation = state_generation + 1, task_state = 'resize_prep', updated_at = $1 \
             WHERE id = $2 AND state_generation = $3 AND task_state IS NULL",
        )
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
            status: "pre-migrating",
            now,
        };
        insert_migration(&mut tx, srv, &row, kind).await?;
        let id = saga::insert(
            &mut tx,
            saga::Kind::ServerMigrate,
            &srv.id,
            &params,
            "claim",
            &self.holder,
        )
        .await?;
        tx.commit().await?;
        tracing::info!(server_id = %srv.id, saga_id = %id, migration_id = %plan.migration_id,
            source = %plan.source, dest = %plan.dest, "migration accepted");
        failpoint("server-migrate.accepted");
        Ok(id)
    }

    /// Sets a migration's status.
    pub async fn set_migration_status(&self, migration_id: &str, status: &str) -> Result<()> {
        sqlx::query("UPDATE migrations SET status = $1, updated_at = $2 WHERE uuid = $3")
            .bind(status)
            .bind(time::now_micros())
            .bind(migration_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The server's newest migration in one of `statuses`.
    pub async fn open_migration(
        &self,
        server_id: &str,
        statuses: &[&str],
    ) -> Result<Option<Migration>> {
        let all: Vec<Migration> =
            sqlx::query_as("SELECT * FROM migrations WHERE server_id = $1 ORDER BY seq DESC")
                .bind(server_id)
                .fetch_all(self.pool())
                .await?;
        Ok(all
            .into_iter()
            .find(|m| statuses.contains(&m.status.as_str())))
    }

    /// Every migration, newest first, as the API filters them.
    pub async fn migrations(&self) -> Result<Vec<Migration>> {
        Ok(sqlx::query_as("SELECT * FROM migrations ORDER BY seq DESC")
            .fetch_all(self.pool())
            .await?)
    }

    /// The moved server runs (or is off, as it was) on its new host: it
    /// waits in VERIFY_RESIZE, and the controller's copy of its disk goes.
    pub(crate) async fn migration_finished(&self, server_id: &str) -> Result<()> {
        if let Some(m) = self.open_migration(server_id, &["post-migrating"]).await? {
            self.set_migration_status(&m.uuid, "finished").await?;
            tracing::info!(server_id, migration_id = %m.uuid, dest = %m.dest_compute, "migration finished");
        }
        let _ = tokio::fs::remove_file(self.migration_copy(server_id)).await;
        Ok(())
    }

    /// Runs one step of a migrate saga.
    pub(crate) async fn migrate_step(self: &Arc<Self>, saga: &Saga) -> Result<Outcome> {
        let plan: MigratePlan = serde_json::from_str(&saga.params).map_err(|e| {
            ComputeError::Internal(format!("saga {}: unreadable plan: {e}", saga.id))
        })?;
        let id = saga.resource_id.as_str();
        let Some(srv) = self.server(id).await? else {
            return match saga.step.as_str() {
                "unwind-claim" => {
                    inventory::release(self.pool(), &reservation(id)).await?;
                    self.set_migration_status(&plan.migration_id, "error")
                        .await?;
                    Ok(Outcome::Done)
                }
                _ => Err(ComputeError::Conflict(format!(
                    "Instance {id} was deleted during its migration."
                ))),
            };
        };
        let task = srv.task_state.as_deref();
        match saga.step.as_str() {
            "unwind-claim" => {
                inventory::release(self.pool(), &reservation(id)).await?;
                sqlx::query(
                    "UPDATE servers SET state_generation = state_generation + 1, task_state = NULL, migration_dest = NULL \
                     WHERE id = $1 AND task_state IN ('resize_prep', 'resize_migrating')",
                )
                .bind(id)
                .execute(self.pool())
                .await?;
                self.set_migration_status(&plan.migration_id, "error")
                    .await?;
                let _ = tokio::fs::remove_file(self.migration_copy(id)).await;
                self.wake(Some(&plan.source));
                Ok(Outcome::Done)
            }
            // Already past this step (a crash after its write, before the
            // saga moved on): go on from the next.
            "stop"
                if task == Some("resize_migrating")
                    && srv.migration_dest.as_deref() == Some(plan.dest.as_str()) =>
            {
                Ok(Outcome::Next("copy"))
            }
            // Taken back by someone else (a reset): nothing left to do.
            "claim" | "stop" if task != Some("resize_prep") => Ok(Outcome::Done),
            "copy" | "move" if task != Some("resize_migrating") => Ok(Outcome::Done),
            _ if srv.deleting() => Err(ComputeError::Conflict(format!(
                "Instance {id} was deleted during its migration."
            ))),
            "claim" => {
                let consumer = reservation(id);
                let claim = inventory::Claim {
                    consumer_id: &consumer,
                    host: &plan.dest,
                    vcpus: plan.vcpus,
                    memory_mb: plan.memory_mb,
                    disk_gb: if plan.own_disk { plan.disk_gb } else { 0 },
                    project_id: &srv.project_id,
                    user_id: &srv.user_id,
                };
                if !inventory::claim(self.pool(), &claim, time::now_micros()).await? {
                    return Err(ComputeError::BadRequest(format!(
                        "No valid host was found. {} lacks room for flavor {}.",
                        plan.dest, plan.flavor_name
                    )));
                }
                failpoint("server-migrate.claimed");
                Ok(Outcome::Next("stop"))
            }
            "stop" => {
                sqlx::query(
                    "UPDATE servers SET state_generation = state_generation + 1, task_state = 'resize_migrating', \
                     migration_dest = $1, updated_at = $2 WHERE id = $3 AND task_state = 'resize_prep'",
                )
                .bind(&plan.dest)
                .bind(time::now_micros())
                .bind(id)
                .execute(self.pool())
                .await?;
                self.set_migration_status(&plan.migration_id, "migrating")
                    .await?;
                self.wake(Some(&plan.source));
                failpoint("server-migrate.stopping");
                Ok(Outcome::Next("copy"))
            }
            "copy" => {
                if !plan.own_disk {
                    return Ok(Outcome::Next("move"));
                }
                if srv.power_state != power::SHUTDOWN && srv.power_state != power::NOSTATE {
                    // The source's agent is shutting the guest down.
                    return Ok(Outcome::Wait(500_000));
                }
                let Some(agent) = self.agent(&plan.source) else {
                    return Err(ComputeError::Internal(format!(
                        "host {} is not reachable from this controller",
                        plan.source
                    )));
                };
                let copy = self.migration_copy(id);
                if let Err(e) = self.renewing(saga, agent.snapshot(id, &copy)).await {
                    let why = format!(
                        "Copying instance {id}'s disk off {} failed: {e}",
                        plan.source
                    );
                    return Err(if saga.attempts < COPY_TRIES {
                        ComputeError::Internal(why)
                    } else {
                        ComputeError::Conflict(why)
                    });
                }
                tracing::info!(server_id = %id, source = %plan.source, "disk copied for its migration");
                failpoint("server-migrate.copied");
                Ok(Outcome::Next("move"))
            }
            "move" => {
                self.network
                    .rebind_device(id, &plan.dest)
                    .await
                    .map_err(|e| ComputeError::Internal(format!("rebinding ports: {e}")))?;
                sqlx::query(
                    "UPDATE servers SET state_generation = state_generation + 1, host = $1, migration_source = $2, \
                     migration_dest = NULL, old_flavor = flavor, flavor = $3, resize_seq = resize_seq + 1, \
                     task_state = 'resize_finish', updated_at = $4 WHERE id = $5 AND task_state = 'resize_migrating'",
                )
                .bind(&plan.dest)
                .bind(&plan.source)
                .bind(&plan.flavor)
                .bind(time::now_micros())
                .bind(id)
                .execute(self.pool())
                .await?;
                self.set_migration_status(&plan.migration_id, "post-migrating")
                    .await?;
                tracing::info!(server_id = %id, source = %plan.source, dest = %plan.dest, "server moved");
                self.wake(Some(&plan.dest));
                self.wake(Some(&plan.source));
                Ok(Outcome::Done)
            }
            other => Err(ComputeError::Internal(format!(
                "saga {}: unknown step {other}",
                saga.id
            ))),
        }
    }
}

/// A new migration's id.
pub fn new_migration_id() -> String {
    ids::uuid_id()
}

/// A migrations row's own fields.
pub(crate) struct NewMigration<'a> {
    pub uuid: &'a str,
    pub seq: i64,
    pub source: &'a str,
    pub dest: &'a str,
    pub status: &'a str,
    pub now: i64,
}

/// Records a migration of `srv` in the transaction that takes the server.
pub(crate) async fn insert_migration(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    srv: &Server,
    m: &NewMigration<'_>,
    kind: &MigrationKind<'_>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO migrations (uuid, seq, server_id, source_compute, dest_compute, status, migration_type, \
         old_flavor_id, new_flavor_id, project_id, user_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
    )
    .bind(m.uuid)
    .bind(m.seq)
    .bind(&srv.id)
    .bind(m.source)
    .bind(m.dest)
    .bind(m.status)
    .bind(kind.migration_type)
    .bind(kind.old_flavor_id)
    .bind(kind.new_flavor_id)
    .bind(&srv.project_id)
    .bind(kind.user_id)
    .bind(m.now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// What a move needs of a host.
pub struct Needs<'a> {
    pub vcpus: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
    pub availability_zone: Option<&'a str>,
}

impl ComputeService {
    /// The host a server moves to: `target` if it can take it, or the
    /// scheduler's pick among the others; never the server's own host.
    /// `Err` carries the scheduler's reasons.
    pub async fn pick_destination(
        &self,
        source: &str,
        target: Option<&str>,
        needs: &Needs<'_>,
    ) -> Result<String> {
        let now = time::now_micros();
        let hosts = inventory::hosts(self.pool()).await?;
        let states: Vec<_> = hosts
            .iter()
            .map(|h| h.state(now, crate::service::DOWN_AFTER_MICROS))
            .collect();
        let tried: Vec<String> = states
            .iter()
            .map(|h| h.name.clone())
            .filter(|n| n == source || target.is_some_and(|t| t != n))
            .collect();
        let req = ferro_placement::Request {
            vcpus: needs.vcpus,
            memory_mb: needs.memory_mb,
            disk_gb: needs.disk_gb,
            availability_zone: needs.availability_zone.map(str::to_owned),
            hypervisor_type: None,
            tried,
            group: None,
        };
        match ferro_placement::schedule(&states, &req) {
            Ok(ranked) => ranked
                .first()
                .map(|h| h.name.clone())
                .ok_or_else(|| ComputeError::BadRequest("No valid host was found.".into())),
            Err(no) => Err(ComputeError::BadRequest(no.to_string())),
        }
    }

    /// Whether `host` has room for `needs` next to what it holds.
    pub async fn host_fits(&self, host: &str, needs: &Needs<'_>) -> Result<bool> {
        let now = time::now_micros();
        let hosts = inventory::hosts(self.pool()).await?;
        let states: Vec<_> = hosts
            .iter()
            .filter(|h| h.name == host)
            .map(|h| h.state(now, crate::service::DOWN_AFTER_MICROS))
            .collect();
        let req = ferro_placement::Request {
            vcpus: needs.vcpus,
            memory_mb: needs.memory_mb,
            disk_gb: needs.disk_gb,
            ..Default::default()
        };
        Ok(ferro_placement::schedule(&states, &req).is_ok())
    }
}
