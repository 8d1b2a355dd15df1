//! The durable log of compute's multi-step operations (sagas) and the
//! leases that decide which controller drives each.
//!
//! A saga row is written in the same transaction as its operation's first
//! change and deleted in the same transaction as its last, so an open row
//! always means work to finish or to undo:
//!
//! ```text
//!   accept (row + saga, one tx) ──▶ step … ──▶ step … ──▶ finish (saga deleted)
//!                                    │ permanent error
//!                                    ▼
//!                                 unwinding: undo steps (retried until done) ──▶ finish
//! ```
//!
//! Each step re-reads state and is safe to run twice; `step` names the next
//! one. A controller drives a saga only while it holds its lease
//! (`lease_holder` until `lease_expires`); a crashed controller's leases
//! run out and whichever controller scans next takes them over
//! ([`take`]). The steps themselves live with their operation
//! (`server_create`, `server_delete`).

use ferro_common::time;
use sqlx::{Any, Transaction};

use crate::error::Result;

/// How long a lease lasts without renewal. Steps are short (database
/// writes and calls to the network service); each renews it.
pub const LEASE_MICROS: i64 = 30_000_000;

/// Every failpoint of compute's sagas, in the order an operation reaches
/// them. The kill-at-every-failpoint test walks this list.
pub const FAILPOINTS: &[&str] = &[
    "server-create.accepted",
    "server-create.port-made",
    "server-create.ports-recorded",
    "server-create.volume-attached",
    "server-create.claimed",
    "server-create.scheduled",
    "server-delete.accepted",
    "server-delete.stopped",
    "server-delete.port-removed",
    "server-resize.accepted",
    "server-resize.claimed",
    "server-migrate.accepted",
    "server-migrate.claimed",
    "server-migrate.stopping",
    "server-migrate.copied",
    "server-live-migrate.accepted",
    "server-live-migrate.claimed",
    "server-live-migrate.migrated",
    "server-snapshot.accepted",
    "server-snapshot.image-made",
    "server-snapshot.captured",
    "server-shelve.accepted",
    "server-shelve.stopped",
    "volume-attach.accepted",
    "volume-attach.reserved",
    "volume-attach.plugged",
    "volume-detach.accepted",
    "volume-detach.unplugged",
];

/// Dies here if the test armed `name` (see `ferro_common::failpoint`).
pub fn failpoint(name: &'static str) {
    debug_assert!(FAILPOINTS.contains(&name), "unlisted failpoint {name}");
    ferro_common::failpoint::hit(name);
}

/// What a saga does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    ServerCreate,
    ServerDelete,
    ServerResize,
    ServerMigrate,
    ServerLiveMigrate,
    ServerSnapshot,
    ServerShelve,
    VolumeAttach,
    VolumeDetach,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ServerCreate => "server-create",
            Kind::ServerDelete => "server-delete",
            Kind::ServerResize => "server-resize",
            Kind::ServerMigrate => "server-migrate",
            Kind::ServerLiveMigrate => "server-live-migrate",
            Kind::ServerSnapshot => "server-snapshot",
            Kind::ServerShelve => "server-shelve",
            Kind::VolumeAttach => "volume-attach",
            Kind::VolumeDetach => "volume-detach",
        }
    }

    /// The first undo step of a saga of this kind refused for good, if it
    /// undoes at all (a delete only moves forward).
    pub fn undo_from(self) -> Option<&'static str> {
        match self {
            Kind::ServerCreate => Some("unwind-ports"),
            Kind::ServerResize | Kind::ServerMigrate | Kind::ServerLiveMigrate => {
                Some("unwind-claim")
            }
            Kind::ServerSnapshot | Kind::ServerShelve => Some("unwind-image"),
            Kind::VolumeAttach => Some("unwind-plug"),
            Kind::ServerDelete | Kind::VolumeDetach => None,
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "server-create" => Some(Kind::ServerCreate),
            "server-delete" => Some(Kind::ServerDelete),
            "server-resize" => Some(Kind::ServerResize),
            "server-migrate" => Some(Kind::ServerMigrate),
            "server-live-migrate" => Some(Kind::ServerLiveMigrate),
            "server-snapshot" => Some(Kind::ServerSnapshot),
            "server-shelve" => Some(Kind::ServerShelve),
            "volume-attach" => Some(Kind::VolumeAttach),
            "volume-detach" => Some(Kind::VolumeDetach),
            _ => None,
        }
    }
}

/// One open saga.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Saga {
    pub id: String,
    pub kind: String,
    pub resource_id: String,
    pub params: String,
    pub step: String,
    pub unwinding: i64,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub lease_holder: String,
    pub lease_expires: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Saga {
    pub fn kind(&self) -> Option<Kind> {
        Kind::parse(&self.kind)
    }
}

/// Writes a new saga, leased to `holder`, inside the transaction of the
/// operation's first change.
pub async fn insert(
    tx: &mut Transaction<'_, Any>,
    kind: Kind,
    resource_id: &str,
    params: &str,
    first_step: &str,
    holder: &str,
) -> Result<String> {
    let id = ferro_common::ids::uuid_id();
    let now = time::now_micros();
    sqlx::query(
        "INSERT INTO sagas (id, kind, resource_id, params, step, lease_holder, lease_expires, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
    )
    .bind(&id)
    .bind(kind.as_str())
    .bind(resource_id)
    .bind(params)
    .bind(first_step)
    .bind(holder)
    .bind(now + LEASE_MICROS)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

/// Takes (or renews) the lease of saga `id` for `holder`: it succeeds when
/// the lease is free (a waiting saga's is: its retry time only tells the
/// scan when to look again), expired or already `holder`'s. `None`:
/// another controller drives it, or it is finished.
pub async fn take(pool: &sqlx::AnyPool, id: &str, holder: &str) -> Result<Option<Saga>> {
    let now = time::now_micros();
    let n = sqlx::query(
        "UPDATE sagas SET lease_holder = $1, lease_expires = $2 \
         WHERE id = $3 AND (lease_holder = $1 OR lease_holder = '' OR lease_expires < $4)",
    )
    .bind(holder)
    .bind(now + LEASE_MICROS)
    .bind(id)
    .bind(now)
    .execute(pool)
    .await?
    .rows_affected();
    if n == 0 {
        return Ok(None);
    }
    Ok(sqlx::query_as("SELECT * FROM sagas WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?)
}

/// Records that the saga's next step is `step` (renewing the lease).
/// `false`: the lease was lost to another controller, which now drives it.
pub async fn advance(pool: &sqlx::AnyPool, id: &str, holder: &str, step: &str) -> Result<bool> {
    let now = time::now_micros();
    let n = sqlx::query(
        "UPDATE sagas SET step = $1, lease_expires = $2, updated_at = $3 WHERE id = $4 AND lease_holder = $5",
    )
    .bind(step)
    .bind(now + LEASE_MICROS)
    .bind(now)
    .bind(id)
    .bind(holder)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Turns the saga round: from now on it undoes, starting at `step`.
pub async fn unwind(
    pool: &sqlx::AnyPool,
    id: &str,
    holder: &str,
    step: &str,
    why: &str,
) -> Result<bool> {
    let now = time::now_micros();
    let n = sqlx::query(
        "UPDATE sagas SET unwinding = 1, step = $1, last_error = $2, lease_expires = $3, updated_at = $4 \
         WHERE id = $5 AND lease_holder = $6",
    )
    .bind(step)
    .bind(why)
    .bind(now + LEASE_MICROS)
    .bind(now)
    .bind(id)
    .bind(holder)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Gives the lease up: the saga waits (for a host's report, for another
/// saga) or failed for a passing reason, and is tried again by the next
/// scan after `retry_in` microseconds.
pub async fn release(
    pool: &sqlx::AnyPool,
    id: &str,
    holder: &str,
    error: Option<&str>,
    retry_in: i64,
) -> Result<()> {
    let now = time::now_micros();
    sqlx::query(
        "UPDATE sagas SET lease_holder = '', lease_expires = $1, attempts = attempts + $2, \
         last_error = COALESCE($3, last_error), updated_at = $4 WHERE id = $5 AND lease_holder = $6",
    )
    .bind(now + retry_in)
    .bind(i64::from(error.is_some()))
    .bind(error)
    .bind(now)
    .bind(id)
    .bind(holder)
    .execute(pool)
    .await?;
    Ok(())
}

/// Ends a saga inside the transaction of its last change.
pub async fn finish(tx: &mut Transaction<'_, Any>, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM sagas WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The open saga of `kind` on a resource, if any.
pub async fn open_for(pool: &sqlx::AnyPool, kind: Kind, resource_id: &str) -> Result<Option<Saga>> {
    Ok(
        sqlx::query_as("SELECT * FROM sagas WHERE resource_id = $1 AND kind = $2")
            .bind(resource_id)
            .bind(kind.as_str())
            .fetch_optional(pool)
            .await?,
    )
}

/// Frees the leases `holder` held before it restarted: its earlier
/// incarnation is dead (one process per controller identity), so its sagas
/// go on at once instead of after their leases expire.
pub async fn reclaim(pool: &sqlx::AnyPool, holder: &str) -> Result<u64> {
    Ok(
        sqlx::query(
            "UPDATE sagas SET lease_holder = '', lease_expires = 0 WHERE lease_holder = $1",
        )
        .bind(holder)
        .execute(pool)
        .await?
        .rows_affected(),
    )
}

/// Sagas no controller holds a live lease on: a crashed controller's, and
/// those waiting whose retry time came.
pub async fn due(pool: &sqlx::AnyPool, limit: i64) -> Result<Vec<Saga>> {
    Ok(sqlx::query_as(
        "SELECT * FROM sagas WHERE lease_expires < $1 ORDER BY created_at, id LIMIT $2",
    )
    .bind(time::now_micros())
    .bind(limit)
    .fetch_all(pool)
    .await?)
}
