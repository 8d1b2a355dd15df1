//! Host inventories and allocations in SQL: the scheduler's input, and the
//! atomic claim that makes its decision stick.

use ferro_store::sqlx::{self, AnyPool};

use crate::scheduler::HostState;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct HostRow {
    pub name: String,
    pub hypervisor_id: String,
    pub hypervisor_type: String,
    pub availability_zone: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
    pub cpu_ratio_milli: i64,
    pub ram_ratio_milli: i64,
    pub disk_ratio_milli: i64,
    pub reserved_ram_mb: i64,
    pub disabled: i64,
    pub forced_down: i64,
    /// Why the host is out of sync with this database (it then takes no
    /// new servers), if it is.
    pub out_of_sync: Option<String>,
    pub generation: i64,
    pub heartbeat_at: i64,
    pub vcpus_used: i64,
    pub memory_used_mb: i64,
    pub disk_used_gb: i64,
}

const HOSTS_WITH_USAGE: &str = "SELECT h.name, h.hypervisor_id, h.hypervisor_type, h.availability_zone, h.vcpus, h.memory_mb, \
    h.disk_gb, h.cpu_ratio_milli, h.ram_ratio_milli, h.disk_ratio_milli, h.reserved_ram_mb, h.disabled, h.forced_down, \
    h.out_of_sync, h.generation, h.heartbeat_at, \
    CAST(COALESCE((SELECT SUM(a.vcpu) FROM allocations a WHERE a.host = h.name), 0) AS BIGINT) AS vcpus_used, \
    CAST(COALESCE((SELECT SUM(a.memory_mb) FROM allocations a WHERE a.host = h.name), 0) AS BIGINT) AS memory_used_mb, \
    CAST(COALESCE((SELECT SUM(a.disk_gb) FROM allocations a WHERE a.host = h.name), 0) AS BIGINT) AS disk_used_gb \
    FROM hosts h";

pub async fn hosts(pool: &AnyPool) -> Result<Vec<HostRow>, sqlx::Error> {
    sqlx::query_as(&format!("{HOSTS_WITH_USAGE} ORDER BY h.name"))
        .fetch_all(pool)
        .await
}

pub async fn host_by_provider(pool: &AnyPool, uuid: &str) -> Result<Option<HostRow>, sqlx::Error> {
    sqlx::query_as(&format!("{HOSTS_WITH_USAGE} WHERE h.hypervisor_id = $1"))
        .bind(uuid)
        .fetch_optional(pool)
        .await
}

/// Enables or disables a host's compute service (with the reason an
/// operator gave, cleared on enable) and forces it down or lifts that.
pub async fn set_service(
    pool: &AnyPool,
    host: &str,
    disabled: Option<bool>,
    reason: Option<String>,
    forced_down: Option<bool>,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    if let Some(d) = disabled {
        sqlx::query("UPDATE hosts SET disabled = $1, disabled_reason = $2 WHERE name = $3")
            .bind(i64::from(d))
            .bind(if d { reason } else { None })
            .bind(host)
            .execute(&mut *tx)
            .await?;
    }
    if let Some(f) = forced_down {
        sqlx::query("UPDATE hosts SET forced_down = $1 WHERE name = $2")
            .bind(i64::from(f))
            .bind(host)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// The one rule every view of a host uses (`ferro_common::host`).
pub use ferro_common::host::is_up;

impl HostRow {
    /// Whether the host takes new servers: not disabled by an operator,
    /// and not out of sync with the database.
    pub fn enabled(&self) -> bool {
        self.disabled == 0 && self.out_of_sync.is_none()
    }

    /// The reason shown for a host that takes no servers.
    pub fn disabled_reason(&self, operator_reason: Option<&str>) -> Option<String> {
        self.out_of_sync
            .clone()
            .or_else(|| operator_reason.map(str::to_owned))
    }

    /// The scheduler's view; `up` means a heartbeat within `down_after` µs.
    pub fn state(&self, now: i64, down_after: i64) -> HostState {
        HostState {
            name: self.name.clone(),
            availability_zone: self.availability_zone.clone(),
            enabled: self.enabled(),
            out_of_sync: self.out_of_sync.is_some(),
            up: is_up(self.heartbeat_at, self.forced_down, now, down_after),
            hypervisor_type: self.hypervisor_type.clone(),
            vcpus: self.vcpus,
            vcpus_used: self.vcpus_used,
            memory_mb: self.memory_mb,
            memory_used_mb: self.memory_used_mb,
            reserved_memory_mb: self.reserved_ram_mb,
            disk_gb: self.disk_gb,
            disk_used_gb: self.disk_used_gb,
            cpu_ratio_milli: self.cpu_ratio_milli,
            ram_ratio_milli: self.ram_ratio_milli,
            disk_ratio_milli: self.disk_ratio_milli,
        }
    }
}

/// What a consumer (a server) holds on a host.
#[derive(Clone, Debug)]
pub struct Claim<'a> {
    pub consumer_id: &'a str,
    pub host: &'a str,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
    pub project_id: &'a str,
    pub user_id: &'a str,
}

/// Claims resources on a host if they are still free; false if another
/// claim took them first. Idempotent for the same consumer and host.
pub async fn claim(pool: &AnyPool, c: &Claim<'_>, now: i64) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let existing: Option<(String,)> =
        sqlx::query_as("SELECT host FROM allocations WHERE consumer_id = $1")
            .bind(c.consumer_id)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some((host,)) = existing {
        tx.commit().await?;
        return Ok(host == c.host);
    }
    // Locks the host row (PostgreSQL) so concurrent claims serialise.
    sqlx::query("UPDATE hosts SET generation = generation + 1 WHERE name = $1")
        .bind(c.host)
        .execute(&mut *tx)
        .await?;
    let n = sqlx::query(
        "INSERT INTO allocations (consumer_id, host, vcpu, memory_mb, disk_gb, project_id, user_id, created_at) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8 FROM hosts h WHERE h.name = $2 \
         AND h.vcpus * h.cpu_ratio_milli / 1000 - (SELECT COALESCE(SUM(vcpu), 0) FROM allocations WHERE host = $2) >= $3 \
         AND (h.memory_mb - h.reserved_ram_mb) * h.ram_ratio_milli / 1000 \
             - (SELECT COALESCE(SUM(memory_mb), 0) FROM allocations WHERE host = $2) >= $4 \
         AND h.disk_gb * h.disk_ratio_milli / 1000 - (SELECT COALESCE(SUM(disk_gb), 0) FROM allocations WHERE host = $2) >= $5",
    )
    .bind(c.consumer_id)
    .bind(c.host)
    .bind(c.vcpus)
    .bind(c.memory_mb)
    .bind(c.disk_gb)
    .bind(c.project_id)
    .bind(c.user_id)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(n == 1)
}

/// Releases what a consumer holds; absent allocations are fine.
pub async fn release(pool: &AnyPool, consumer_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM allocations WHERE consumer_id = $1")
        .bind(consumer_id)
        .execute(pool)
        .await?;
    Ok(())
}
