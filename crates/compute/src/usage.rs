//! Tenant usage (`os-simple-tenant-usage`): how many hours each server ran
//! inside a period, and the per-project totals of hours × vCPUs, RAM and
//! disk, counted as Nova counts them (from launch, or the period's start,
//! to termination, or the period's end).

use std::collections::BTreeMap;

use ferro_store::sqlx;

use crate::error::Result;
use crate::model::FlavorSnapshot;
use crate::service::ComputeService;

/// One server's share of a period.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerUsage {
    pub instance_id: String,
    pub name: String,
    pub tenant_id: String,
    pub flavor: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub local_gb: i64,
    pub hours: f64,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub state: String,
    /// Seconds from start to now (or to its termination).
    pub uptime: i64,
}

/// A project's usage over a period.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TenantUsage {
    pub tenant_id: String,
    pub total_hours: f64,
    pub total_vcpus_usage: f64,
    pub total_memory_mb_usage: f64,
    pub total_local_gb_usage: f64,
    pub servers: Vec<ServerUsage>,
}

/// Hours of `[launched, terminated)` inside `[start, stop]`, in µs inputs.
pub fn hours_in(launched: Option<i64>, terminated: Option<i64>, start: i64, stop: i64) -> f64 {
    let Some(launched) = launched else {
        return 0.0;
    };
    if terminated.is_some_and(|t| t < start) || launched > stop {
        return 0.0;
    }
    let from = launched.max(start);
    let to = terminated.map_or(stop, |t| t.min(stop));
    ((to - from).max(0)) as f64 / 3_600_000_000.0
}

type Row = (
    String,
    String,
    String,
    String,
    String,
    Option<i64>,
    Option<i64>,
    i64,
);

impl ComputeService {
    /// Usage per project over `[start, stop]` (µs), of one project or all.
    pub async fn tenant_usage(
        &self,
        project: Option<&str>,
        start: i64,
        stop: i64,
    ) -> Result<Vec<TenantUsage>> {
        let sql = "SELECT id, name, project_id, flavor, vm_state, launched_at, terminated_at, created_at FROM servers";
        let rows: Vec<Row> = match project {
            Some(p) => {
                sqlx::query_as(&format!(
                    "{sql} WHERE project_id = $1 ORDER BY created_at, id"
                ))
                .bind(p)
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query_as(&format!("{sql} ORDER BY created_at, id"))
                    .fetch_all(self.pool())
                    .await?
            }
        };
        let mut by_project: BTreeMap<String, TenantUsage> = BTreeMap::new();
        for (id, name, tenant, flavor, state, launched, terminated, created) in rows {
            // A server that never launched (still building, or failed) has
            // no usage; Nova counts from launch.
            let hours = hours_in(launched, terminated, start, stop);
            let began = launched.unwrap_or(created);
            if terminated.is_some_and(|t| t < start) || began > stop {
                continue;
            }
            let f: Option<FlavorSnapshot> = serde_json::from_str(&flavor).ok();
            let (vcpus, memory_mb, local_gb, flavor) = f
                .map(|f| (f.vcpus, f.ram, f.disk + f.ephemeral, f.original_name))
                .unwrap_or_default();
            let t = by_project
                .entry(tenant.clone())
                .or_insert_with(|| TenantUsage {
                    tenant_id: tenant.clone(),
                    ..Default::default()
                });
            t.total_hours += hours;
            t.total_vcpus_usage += hours * vcpus as f64;
            t.total_memory_mb_usage += hours * memory_mb as f64;
            t.total_local_gb_usage += hours * local_gb as f64;
            // Uptime is up to now (or termination), whatever the period.
            let end = terminated.unwrap_or_else(ferro_common::time::now_micros);
            t.servers.push(ServerUsage {
                instance_id: id,
                name,
                tenant_id: tenant,
                flavor,
                vcpus,
                memory_mb,
                local_gb,
                hours,
                started_at: began,
                ended_at: terminated,
                state: if terminated.is_some() {
                    "terminated".into()
                } else {
                    state
                },
                uptime: ((end - began).max(0)) / 1_000_000,
            });
        }
        Ok(by_project.into_values().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::hours_in;

    const H: i64 = 3_600_000_000;

    #[test]
    fn hours_are_clipped_to_the_period() {
        let cases = [
            // (launched, terminated, start, stop, hours)
            (Some(0), None, 0, 2 * H, 2.0),
            (Some(H), None, 0, 3 * H, 2.0),
            (Some(0), Some(H), 0, 3 * H, 1.0),
            (Some(0), Some(5 * H), 2 * H, 3 * H, 1.0),
            (Some(0), Some(H), 2 * H, 3 * H, 0.0),
            (Some(4 * H), None, 0, 3 * H, 0.0),
            (None, None, 0, 3 * H, 0.0),
        ];
        for (i, (l, t, a, b, want)) in cases.into_iter().enumerate() {
            assert_eq!(hours_in(l, t, a, b), want, "case {i}");
        }
    }
}
