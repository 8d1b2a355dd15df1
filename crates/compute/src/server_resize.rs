//! The server-resize saga (on the server's host; moving hosts is the next
//! issue's cold migration).
//!
//! ```text
//!  accept: task → resize_prep (compare-and-set) + saga, one transaction
//!    ▼
//!  claim: the new flavor's reservation (consumer `ID-resize`) on the host
//!    ▼
//!  apply: flavor swapped (the old one kept for revert), resize_seq + 1,
//!         task → resize_migrating; the agent resizes, then VERIFY_RESIZE
//!
//!  no room on the host (the request's 400) unwinds:
//!  unwind-claim: the reservation released, task_state cleared
//! ```

use std::sync::Arc;

use ferro_common::time;
use ferro_placement::inventory;
use serde::{Deserialize, Serialize};

use crate::error::{ComputeError, Result};
use crate::executor::Outcome;
use crate::model::Server;
use crate::saga::{self, failpoint, Saga};
use crate::service::{stale_unless, ComputeService};

/// The saga's parameters: where and to what.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ResizePlan {
    pub host: String,
    /// The new flavor as the server row keeps it (JSON).
    pub flavor: String,
    pub flavor_name: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
}

/// The consumer of a resize's reservation.
pub fn reservation(server_id: &str) -> String {
    format!("{server_id}-resize")
}

impl ComputeService {
    /// Takes the server for a resize and writes its saga, in one
    /// transaction. Returns the saga's id.
    pub async fn accept_resize(&self, srv: &Server, plan: &ResizePlan) -> Result<String> {
        let params = serde_json::to_string(plan)
            .map_err(|e| ComputeError::Internal(format!("encoding a saga: {e}")))?;
        let mut tx = self.pool().begin().await?;
        let taken = sqlx::query(
            "UPDATE servers SET state_generation = state_generation + 1, task_state = 'resize_prep', updated_at = $1 \
             WHERE id = $2 AND state_generation = $3 AND task_state IS NULL",
        )
        .bind(time::now_micros())
        .bind(&srv.id)
        .bind(srv.state_generation)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        stale_unless(taken, &srv.id)?;
        let id = saga::insert(
            &mut tx,
            saga::Kind::ServerResize,
            &srv.id,
            &params,
            "claim",
            &self.holder,
        )
        .await?;
        tx.commit().await?;
        tracing::info!(server_id = %srv.id, saga_id = %id, flavor = %plan.flavor_name, "resize accepted");
        failpoint("server-resize.accepted");
        Ok(id)
    }

    /// Runs one step of a resize saga.
    pub(crate) async fn resize_step(self: &Arc<Self>, saga: &Saga) -> Result<Outcome> {
        let plan: ResizePlan = serde_json::from_str(&saga.params).map_err(|e| {
            ComputeError::Internal(format!("saga {}: unreadable plan: {e}", saga.id))
        })?;
        let id = saga.resource_id.as_str();
        let Some(srv) = sqlx::query_as::<_, Server>("SELECT * FROM servers WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
        else {
            return Ok(Outcome::Done);
        };
        let preparing = srv.task_state.as_deref() == Some("resize_prep");
        match saga.step.as_str() {
            // Already applied (a crash after the write): nothing left.
            "claim" | "apply" if !preparing => Ok(Outcome::Done),
            "claim" => {
                let consumer = reservation(id);
                let claim = inventory::Claim {
                    consumer_id: &consumer,
                    host: &plan.host,
                    vcpus: plan.vcpus,
                    memory_mb: plan.memory_mb,
                    disk_gb: plan.disk_gb,
                    project_id: &srv.project_id,
                    user_id: &srv.user_id,
                };
                if !inventory::claim(self.pool(), &claim, time::now_micros()).await? {
                    return Err(ComputeError::BadRequest(format!(
                        "No valid host was found for the resize: {} lacks room for flavor {}.",
                        plan.host, plan.flavor_name
                    )));
                }
                failpoint("server-resize.claimed");
                Ok(Outcome::Next("apply"))
            }
            "apply" => {
                sqlx::query(
                    "UPDATE servers SET state_generation = state_generation + 1, old_flavor = flavor, flavor = $1, \
                     resize_seq = resize_seq + 1, task_state = 'resize_migrating', updated_at = $2 \
                     WHERE id = $3 AND task_state = 'resize_prep'",
                )
                .bind(&plan.flavor)
                .bind(time::now_micros())
                .bind(id)
                .execute(self.pool())
                .await?;
                tracing::info!(server_id = %id, flavor = %plan.flavor_name, "resizing");
                self.wake(Some(&plan.host));
                Ok(Outcome::Done)
            }
            "unwind-claim" => {
                inventory::release(self.pool(), &reservation(id)).await?;
                sqlx::query(
                    "UPDATE servers SET state_generation = state_generation + 1, task_state = NULL \
                     WHERE id = $1 AND task_state = 'resize_prep'",
                )
                .bind(id)
                .execute(self.pool())
                .await?;
                Ok(Outcome::Done)
            }
            other => Err(ComputeError::Internal(format!(
                "saga {}: unknown step {other}",
                saga.id
            ))),
        }
    }
}
