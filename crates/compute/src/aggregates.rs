//! Host aggregates: named sets of compute hosts with metadata. An
//! aggregate's `availability_zone` metadata puts its hosts in that zone;
//! a host in no such aggregate is in the default zone (`nova`). The zone
//! is kept on the host row, rewritten after every change to the hosts or
//! zone of an aggregate, so the scheduler and the zone list read one column.

use std::collections::BTreeMap;

use ferro_common::{ids, time};
use ferro_store::sqlx;

use crate::error::{ComputeError, Result};
use crate::service::ComputeService;

pub const DEFAULT_ZONE: &str = "nova";

#[derive(Clone, Debug)]
pub struct Aggregate {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub metadata: BTreeMap<String, String>,
    pub hosts: Vec<String>,
    pub created_at: i64,
    pub updated_at: Option<i64>,
}

impl Aggregate {
    pub fn availability_zone(&self) -> Option<&str> {
        self.metadata.get("availability_zone").map(String::as_str)
    }
}

type Row = (i64, String, String, String, i64, Option<i64>);

fn not_found(id: &str) -> ComputeError {
    ComputeError::NotFound(format!("Aggregate {id} could not be found."))
}

fn invalid(id: i64, action: &str, reason: &str) -> ComputeError {
    ComputeError::bad(format!("Cannot {action} aggregate {id}. Reason: {reason}."))
}

impl ComputeService {
    async fn aggregate_from(&self, r: Row) -> Result<Aggregate> {
        let (id, uuid, name, metadata, created_at, updated_at) = r;
        let hosts: Vec<(String,)> = sqlx::query_as(
            "SELECT host FROM aggregate_hosts WHERE aggregate_id = $1 ORDER BY host",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        Ok(Aggregate {
            id,
            uuid,
            name,
            metadata: serde_json::from_str(&metadata).unwrap_or_default(),
            hosts: hosts.into_iter().map(|(h,)| h).collect(),
            created_at,
            updated_at,
        })
    }

    pub async fn aggregates(&self) -> Result<Vec<Aggregate>> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, uuid, name, metadata, created_at, updated_at FROM aggregates ORDER BY id",
        )
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(self.aggregate_from(r).await?);
        }
        Ok(out)
    }

    /// An aggregate by its integer id (as the API's paths carry it).
    pub async fn aggregate(&self, id: &str) -> Result<Aggregate> {
        let n: i64 = id.parse().map_err(|_| not_found(id))?;
        let row: Option<Row> = sqlx::query_as(
            "SELECT id, uuid, name, metadata, created_at, updated_at FROM aggregates WHERE id = $1",
        )
        .bind(n)
        .fetch_optional(self.pool())
        .await?;
        self.aggregate_from(row.ok_or_else(|| not_found(id))?).await
    }

    async fn name_taken(&self, name: &str, except: Option<i64>) -> Result<bool> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM aggregates WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.is_some_and(|(id,)| Some(id) != except))
    }

    pub async fn create_aggregate(&self, name: &str, zone: Option<&str>) -> Result<Aggregate> {
        if self.name_taken(name, None).await? {
            return Err(ComputeError::Conflict(format!(
                "Aggregate {name} already exists."
            )));
        }
        let id = self.next("aggregates").await?;
        let mut metadata = BTreeMap::new();
        if let Some(z) = zone {
            metadata.insert("availability_zone".to_owned(), z.to_owned());
        }
        sqlx::query(
            "INSERT INTO aggregates (id, uuid, name, metadata, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(ids::uuid_id())
        .bind(name)
        .bind(serde_json::to_string(&metadata).unwrap_or_else(|_| "{}".into()))
        .bind(time::now_micros())
        .execute(self.pool())
        .await?;
        tracing::info!(aggregate_id = id, name, "aggregate created");
        self.aggregate(&id.to_string()).await
    }

    /// Renames an aggregate and/or changes its zone (`Some(None)` removes it).
    pub async fn update_aggregate(
        &self,
        a: &Aggregate,
        name: Option<&str>,
        zone: Option<Option<&str>>,
    ) -> Result<Aggregate> {
        if let Some(n) = name {
            if self.name_taken(n, Some(a.id)).await? {
                return Err(ComputeError::Conflict(format!(
                    "Aggregate {n} already exists."
                )));
            }
        }
        let mut metadata = a.metadata.clone();
        if let Some(z) = zone {
            match z {
                Some(z) => metadata.insert("availability_zone".into(), z.into()),
                None => metadata.remove("availability_zone"),
            };
        }
        self.write_aggregate(a, name.unwrap_or(&a.name), &metadata)
            .await
    }

    /// `set_metadata`: keys with `None` are removed, the others set.
    pub async fn set_aggregate_metadata(
        &self,
        a: &Aggregate,
        changes: BTreeMap<String, Option<String>>,
    ) -> Result<Aggregate> {
        let mut metadata = a.metadata.clone();
        for (k, v) in changes {
            match v {
                Some(v) => metadata.insert(k, v),
                None => metadata.remove(&k),
            };
        }
        self.write_aggregate(a, &a.name, &metadata).await
    }

    /// Writes the aggregate, then the zone of each of its hosts; refuses a
    /// zone that a host's other aggregates contradict.
    async fn write_aggregate(
        &self,
        a: &Aggregate,
        name: &str,
        metadata: &BTreeMap<String, String>,
    ) -> Result<Aggregate> {
        let zone = metadata.get("availability_zone").map(String::as_str);
        if zone != a.availability_zone() {
            for h in &a.hosts {
                let others = self.other_zones(h, a.id).await?;
                if let Some(z) = zone {
                    if others.iter().any(|o| o != z) {
                        return Err(invalid(
                            a.id,
                            "update",
                            &format!(
                                "One or more hosts already in availability zone(s) {others:?}"
                            ),
                        ));
                    }
                }
            }
        }
        sqlx::query(
            "UPDATE aggregates SET name = $1, metadata = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(name)
        .bind(serde_json::to_string(metadata).unwrap_or_else(|_| "{}".into()))
        .bind(time::now_micros())
        .bind(a.id)
        .execute(self.pool())
        .await?;
        for h in &a.hosts {
            self.refresh_zone(h).await?;
        }
        self.aggregate(&a.id.to_string()).await
    }

    pub async fn delete_aggregate(&self, a: &Aggregate) -> Result<()> {
        if !a.hosts.is_empty() {
            return Err(invalid(a.id, "delete", "Host aggregate is not empty"));
        }
        sqlx::query("DELETE FROM aggregates WHERE id = $1")
            .bind(a.id)
            .execute(self.pool())
            .await?;
        tracing::info!(aggregate_id = a.id, "aggregate deleted");
        Ok(())
    }

    /// Zones of the other aggregates a host is in.
    async fn other_zones(&self, host: &str, except: i64) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT a.metadata FROM aggregates a JOIN aggregate_hosts h ON h.aggregate_id = a.id \
             WHERE h.host = $1 AND a.id <> $2",
        )
        .bind(host)
        .bind(except)
        .fetch_all(self.pool())
        .await?;
        let mut zones: Vec<String> = rows
            .into_iter()
            .filter_map(|(m,)| {
                serde_json::from_str::<BTreeMap<String, String>>(&m)
                    .ok()?
                    .remove("availability_zone")
            })
            .collect();
        zones.sort();
        zones.dedup();
        Ok(zones)
    }

    /// Sets a host's zone from its aggregates.
    async fn refresh_zone(&self, host: &str) -> Result<()> {
        let zone = self
            .other_zones(host, -1)
            .await?
            .into_iter()
            .next()
            .unwrap_or_else(|| DEFAULT_ZONE.to_owned());
        sqlx::query("UPDATE hosts SET availability_zone = $1 WHERE name = $2")
            .bind(&zone)
            .bind(host)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn add_aggregate_host(&self, a: &Aggregate, host: &str) -> Result<Aggregate> {
        let known: Option<(String,)> = sqlx::query_as("SELECT name FROM hosts WHERE name = $1")
            .bind(host)
            .fetch_optional(self.pool())
            .await?;
        if known.is_none() {
            return Err(ComputeError::NotFound(format!(
                "Compute host {host} could not be found."
            )));
        }
        if a.hosts.iter().any(|h| h == host) {
            return Err(ComputeError::Conflict(format!(
                "Aggregate {} already has host {host}.",
                a.id
            )));
        }
        if let Some(z) = a.availability_zone() {
            let others = self.other_zones(host, a.id).await?;
            if others.iter().any(|o| o != z) {
                return Err(invalid(
                    a.id,
                    "add host to",
                    &format!("One or more hosts already in availability zone(s) {others:?}"),
                ));
            }
        }
        sqlx::query("INSERT INTO aggregate_hosts (aggregate_id, host) VALUES ($1, $2)")
            .bind(a.id)
            .bind(host)
            .execute(self.pool())
            .await?;
        self.refresh_zone(host).await?;
        tracing::info!(aggregate_id = a.id, host, "host added to aggregate");
        self.aggregate(&a.id.to_string()).await
    }

    pub async fn remove_aggregate_host(&self, a: &Aggregate, host: &str) -> Result<Aggregate> {
        let n = sqlx::query("DELETE FROM aggregate_hosts WHERE aggregate_id = $1 AND host = $2")
            .bind(a.id)
            .bind(host)
            .execute(self.pool())
            .await?
            .rows_affected();
        if n == 0 {
            return Err(ComputeError::NotFound(format!(
                "Aggregate {} has no host {host}.",
                a.id
            )));
        }
        self.refresh_zone(host).await?;
        tracing::info!(aggregate_id = a.id, host, "host removed from aggregate");
        self.aggregate(&a.id.to_string()).await
    }
}
