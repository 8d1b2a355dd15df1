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
