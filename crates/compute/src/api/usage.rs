//! `/os-simple-tenant-usage`: every project's usage over a period (admin),
//! or one project's (its readers, or admin). `start` and `end` default to
//! now; `detailed=1` adds each server's share to the list.

use axum::extract::{Path, State as St};
use axum::http::StatusCode;
use axum::response::Response;
use ferro_common::time;
use serde_json::{json, Value};

use super::{reply, require_admin, Ctx, Params, State};
use crate::error::{ComputeError, Result};
use crate::usage::TenantUsage;

fn ts(t: i64) -> String {
    time::iso_micros(t).trim_end_matches('Z').to_owned()
}

/// The period a request asks about, in µs.
fn period(p: &Params) -> Result<(i64, i64)> {
    let now = time::now_micros();
    let at = |key: &str| -> Result<i64> {
        match p.get(key) {
            None => Ok(now),
            Some(v) => super::query_time(v).ok_or_else(|| {
                ComputeError::bad(format!(
                    "Invalid {key} time. The {key} time must be ISO 8601, e.g. 2026-01-31T12:00:00."
                ))
            }),
        }
    };
    let (start, stop) = (at("start")?, at("end")?);
    if start > stop {
        return Err(ComputeError::bad(
            "Invalid start time. The start time cannot occur after the end time.",
        ));
    }
    Ok((start, stop))
}

fn render(u: &TenantUsage, start: i64, stop: i64, detailed: bool) -> Value {
    let mut o = json!({
        "tenant_id": u.tenant_id, "start": ts(start), "stop": ts(stop),
        "total_hours": u.total_hours, "total_vcpus_usage": u.total_vcpus_usage,
        "total_memory_mb_usage": u.total_memory_mb_usage, "total_local_gb_usage": u.total_local_gb_usage,
    });
    if detailed {
        o["server_usages"] = u
            .servers
            .iter()
            .map(|s| {
                json!({
                    "instance_id": s.instance_id, "name": s.name, "tenant_id": s.tenant_id,
                    "flavor": s.flavor, "vcpus": s.vcpus, "memory_mb": s.memory_mb, "local_gb": s.local_gb,
                    "hours": s.hours, "started_at": ts(s.started_at), "ended_at": s.ended_at.map(ts),
                    "state": s.state, "uptime": s.uptime,
                })
            })
            .collect();
    }
    o
}

pub async fn list(St(s): St<State>, c: Ctx, p: Params) -> Result<Response> {
    require_admin(&c, "os_compute_api:os-simple-tenant-usage:list")?;
    let (start, stop) = period(&p)?;
    let detailed = p
        .get("detailed")
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"));
    let items: Vec<Value> = s
        .tenant_usage(None, start, stop)
        .await?
        .iter()
        .map(|u| render(u, start, stop, detailed))
        .collect();
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"tenant_usages": items}),
    ))
}

pub async fn show(
    St(s): St<State>,
    c: Ctx,
    Path(project): Path<String>,
    p: Params,
) -> Result<Response> {
    if !c.auth.is_admin() && c.auth.project_id() != Some(project.as_str()) {
        return Err(ComputeError::Denied(ferro_common::Denied {
            action: "os_compute_api:os-simple-tenant-usage:show",
        }));
    }
    let (start, stop) = period(&p)?;
    let usage = s.tenant_usage(Some(&project), start, stop).await?;
    let body = match usage.first() {
        Some(u) => render(u, start, stop, true),
        None => json!({}),
    };
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"tenant_usage": body}),
    ))
}

/// The monthly audit period that ended last before `micros`:
/// (`YYYY-MM-01 00:00:00` of the month before, of its month).
fn audit_period(micros: i64) -> (String, String) {
    let iso = time::iso_seconds(micros);
    let year: i32 = iso[..4].parse().unwrap_or(1970);
    let month: u32 = iso[5..7].parse().unwrap_or(1);
    let (py, pm) = if month == 1 {
        (year - 1, 12)
    } else {
        (year, month - 1)
    };
    (
        format!("{py:04}-{pm:02}-01 00:00:00"),
        format!("{year:04}-{month:02}-01 00:00:00"),
    )
}

/// What Nova's instance usage audit says of the period before `before`.
/// This cloud runs no such audit (Nova's `instance_usage_audit`, off by
/// default): every compute host is one that has not run it.
async fn audit_log(s: &State, before: i64) -> Result<Value> {
    let hosts: Vec<String> = ferro_placement::inventory::hosts(s.pool())
        .await?
        .into_iter()
        .map(|h| h.name)
        .collect();
    let (begin, end) = audit_period(before);
    let n = hosts.len();
    Ok(json!({
        "hosts_not_run": hosts, "log": {}, "num_hosts": n, "num_hosts_done": 0,
        "num_hosts_not_run": n, "num_hosts_running": 0,
        "overall_status": format!("0 of {n} hosts done. 0 errors."),
        "period_beginning": begin, "period_ending": end,
        "total_errors": 0, "total_instances": 0,
    }))
}

pub async fn audit_logs(St(s): St<State>, c: Ctx) -> Result<Response> {
    require_admin(&c, "os_compute_api:os-instance-usage-audit-log:list")?;
    let log = audit_log(&s, time::now_micros()).await?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"instance_usage_audit_logs": log}),
    ))
}

pub async fn audit_log_before(
    St(s): St<State>,
    c: Ctx,
    Path(before): Path<String>,
) -> Result<Response> {
    require_admin(&c, "os_compute_api:os-instance-usage-audit-log:show")?;
    let at = super::query_time(&before)
        .ok_or_else(|| ComputeError::bad(format!("Invalid timestamp for date {before}")))?;
    let log = audit_log(&s, at).await?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"instance_usage_audit_log": log}),
    ))
}

#[cfg(test)]
mod tests {
    use super::audit_period;

    #[test]
    fn the_audit_period_is_the_month_before() {
        let t = ferro_common::time::parse_iso("2026-12-08T00:20:11Z").unwrap();
        assert_eq!(
            audit_period(t),
            ("2026-11-01 00:00:00".into(), "2026-12-01 00:00:00".into())
        );
        let jan = ferro_common::time::parse_iso("2027-01-31T23:59:59Z").unwrap();
        assert_eq!(audit_period(jan).0, "2026-12-01 00:00:00");
    }
}
