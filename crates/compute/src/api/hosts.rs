//! Nova's os-hosts API (removed at microversion 2.43, still what older
//! clients and Tempest call): the cloud's services by host, a compute
//! host's resources and who uses them, its status.
//!
//! The controller answering stands for Nova's conductor and scheduler (zone
//! `internal`); each compute host is a `compute` service in its zone. A
//! host's power and maintenance mode are not this cloud's to change: 501,
//! as Nova's libvirt driver answers.

use std::collections::BTreeMap;

use axum::extract::{Path, State as St};
use axum::http::StatusCode;
use axum::response::Response;
use ferro_placement::inventory::{self, HostRow};
use serde_json::{json, Value};

use super::{gone_at, reply, require_admin, Body, Ctx, Params, State};
use crate::error::{ComputeError, Result};
use crate::model::Server;

async fn host_or_404(s: &State, name: &str) -> Result<HostRow> {
    inventory::hosts(s.pool())
        .await?
        .into_iter()
        .find(|h| h.name == name)
        .ok_or_else(|| ComputeError::NotFound(format!("Compute host {name} could not be found.")))
}

pub async fn list(St(s): St<State>, c: Ctx, p: Params) -> Result<Response> {
    gone_at(&c, 43)?;
    require_admin(&c, "os_compute_api:os-hosts:list")?;
    let mut items: Vec<Value> = ["conductor", "scheduler"]
        .iter()
        .map(|svc| json!({"host_name": s.holder, "service": svc, "zone": "internal"}))
        .collect();
    for h in inventory::hosts(s.pool()).await? {
        items.push(json!({"host_name": h.name, "service": "compute", "zone": h.availability_zone}));
    }
    // (a blank zone is no filter)
    if let Some(zone) = p.get("zone").filter(|z| !z.is_empty()) {
        items.retain(|i| i["zone"] == zone);
    }
    Ok(reply(StatusCode::OK, c.version, json!({"hosts": items})))
}

fn resource(host: &str, project: &str, cpu: i64, memory_mb: i64, disk_gb: i64) -> Value {
    json!({"resource": {"host": host, "project": project, "cpu": cpu, "memory_mb": memory_mb, "disk_gb": disk_gb}})
}

pub async fn show(St(s): St<State>, c: Ctx, Path(name): Path<String>) -> Result<Response> {
    gone_at(&c, 43)?;
    require_admin(&c, "os_compute_api:os-hosts:show")?;
    let h = host_or_404(&s, &name).await?;
    let servers: Vec<Server> =
        sqlx::query_as("SELECT * FROM servers WHERE host = $1 AND deleted = 0")
            .bind(&name)
            .fetch_all(s.pool())
            .await?;
    let mut by_project: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
    for srv in &servers {
        if let Some(f) = srv.flavor() {
            let u = by_project.entry(srv.project_id.clone()).or_default();
            u.0 += f.vcpus;
            u.1 += f.ram;
            u.2 += f.disk + f.ephemeral;
        }
    }
    let max = by_project
        .values()
        .fold((0, 0, 0), |a, u| (a.0 + u.0, a.1 + u.1, a.2 + u.2));
    let mut rows = vec![
        resource(&name, "(total)", h.vcpus, h.memory_mb, h.disk_gb),
        resource(
            &name,
            "(used_now)",
            h.vcpus_used,
            h.memory_used_mb,
            h.disk_used_gb,
        ),
        resource(&name, "(used_max)", max.0, max.1, max.2),
    ];
    for (project, u) in by_project {
        rows.push(resource(&name, &project, u.0, u.1, u.2));
    }
    Ok(reply(StatusCode::OK, c.version, json!({"host": rows})))
}

/// `enable` / `disable`, or the field's 400.
fn toggle(body: &Value, key: &str) -> Result<Option<bool>> {
    match body.get(key) {
        None => Ok(None),
        Some(Value::String(v)) if v == "enable" => Ok(Some(true)),
        Some(Value::String(v)) if v == "disable" => Ok(Some(false)),
        Some(v) => Err(ComputeError::bad(format!(
            "Invalid input for field/attribute {key}. Value: {v}. {v} is not one of ['enable', 'disable']"
        ))),
    }
}

pub async fn update(
    St(s): St<State>,
    c: Ctx,
    Path(name): Path<String>,
    Body(body): Body<Value>,
) -> Result<Response> {
    gone_at(&c, 43)?;
    require_admin(&c, "os_compute_api:os-hosts:update")?;
    let obj = body
        .as_object()
        .ok_or_else(|| ComputeError::bad("The request body must be an object."))?;
    if let Some(k) = obj
        .keys()
        .find(|k| !["status", "maintenance_mode"].contains(&k.as_str()))
    {
        return Err(ComputeError::bad(format!(
            "Invalid input for field/attribute {k}. Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    let status = toggle(&body, "status")?;
    let maintenance = toggle(&body, "maintenance_mode")?;
    if status.is_none() && maintenance.is_none() {
        return Err(ComputeError::bad(
            "'status' or 'maintenance_mode' needed for host update",
        ));
    }
    host_or_404(&s, &name).await?;
    if maintenance.is_some() {
        return Err(ComputeError::NotImplemented(
            "Virt driver does not implement host maintenance mode.".into(),
        ));
    }
    let enabled = status == Some(true);
    inventory::set_service(s.pool(), &name, Some(!enabled), None, None).await?;
    tracing::info!(host = %name, enabled, "host status set (os-hosts)");
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"host": name, "status": if enabled { "enabled" } else { "disabled" }}),
    ))
}

/// `GET /os-hosts/{host}/startup|shutdown|reboot`.
pub async fn power(
    St(s): St<State>,
    c: Ctx,
    Path((name, action)): Path<(String, String)>,
) -> Result<Response> {
    gone_at(&c, 43)?;
    if !["startup", "shutdown", "reboot"].contains(&action.as_str()) {
        return Err(ComputeError::NotFound(
            "The resource could not be found.".into(),
        ));
    }
    require_admin(&c, "os_compute_api:os-hosts:power")?;
    host_or_404(&s, &name).await?;
    Err(ComputeError::NotImplemented(format!(
        "Virt driver does not implement host power management ({action})."
    )))
}
