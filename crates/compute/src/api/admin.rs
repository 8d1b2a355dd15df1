//! Hosts as Nova shows them (hypervisors, compute services, availability
//! zones) and limits and quotas.

use axum::extract::{Path, State as St};
use axum::http::StatusCode;
use axum::response::Response;
use ferro_common::time;
use ferro_placement::inventory::{self, HostRow};
use ferro_store::sqlx;
use serde_json::{json, Map, Value};

use super::{gone_at, reply, require_admin, Body, Ctx, Params, State};
use crate::error::{ComputeError, Result};
use crate::microversion::Version;
use crate::service::{host_is_up, quota_names, ComputeService};

#[derive(sqlx::FromRow)]
struct HostMeta {
    name: String,
    seq: i64,
    service_id: String,
    hypervisor_version: i64,
    host_ip: String,
    disabled_reason: Option<String>,
    started_at: i64,
}

async fn meta(s: &ComputeService) -> Result<Vec<HostMeta>> {
    Ok(sqlx::query_as("SELECT name, seq, service_id, hypervisor_version, host_ip, disabled_reason, started_at FROM hosts ORDER BY name")
        .fetch_all(s.pool())
        .await?)
}

fn up(h: &HostRow) -> bool {
    host_is_up(h.heartbeat_at, h.forced_down)
}

async fn running_vms(s: &ComputeService, host: &str) -> Result<Vec<(String, String)>> {
    Ok(
        sqlx::query_as(
            "SELECT id, name FROM servers WHERE host = $1 AND deleted = 0 ORDER BY name",
        )
        .bind(host)
        .fetch_all(s.pool())
        .await?,
    )
}

async fn hypervisor_json(
    s: &ComputeService,
    c: &Ctx,
    h: &HostRow,
    m: &HostMeta,
    detail: bool,
    with_servers: bool,
) -> Result<Value> {
    let uuid_ids = c.version.at_least(53);
    let mut o = json!({
        "id": if uuid_ids { json!(h.hypervisor_id) } else { json!(m.seq) },
        "hypervisor_hostname": h.name,
        "state": if up(h) { "up" } else { "down" },
        "status": if h.enabled() { "enabled" } else { "disabled" },
    });
    if detail {
        o["hypervisor_type"] = json!(h.hypervisor_type);
        o["hypervisor_version"] = json!(m.hypervisor_version);
        o["host_ip"] = json!(m.host_ip);
        o["service"] = json!({"host": h.name, "id": if uuid_ids { json!(m.service_id) } else { json!(m.seq) },
                              "disabled_reason": h.disabled_reason(m.disabled_reason.as_deref())});
        if c.version.at_least(88) {
            o["uptime"] = json!(format!(
                "up {} s",
                (time::now_micros() - m.started_at) / 1_000_000
            ));
        } else {
            let vms = running_vms(s, &h.name).await?.len();
            o["vcpus"] = json!(h.vcpus);
            o["memory_mb"] = json!(h.memory_mb);
            o["local_gb"] = json!(h.disk_gb);
            o["vcpus_used"] = json!(h.vcpus_used);
            o["memory_mb_used"] = json!(h.memory_used_mb);
            o["local_gb_used"] = json!(h.disk_used_gb);
            o["free_ram_mb"] = json!(h.memory_mb - h.memory_used_mb);
            o["free_disk_gb"] = json!(h.disk_gb - h.disk_used_gb);
            o["current_workload"] = json!(0);
            o["running_vms"] = json!(vms);
            o["disk_available_least"] = json!(h.disk_gb - h.disk_used_gb);
            // A JSON string before 2.28, an object from it.
            o["cpu_info"] = if c.version.at_least(28) {
                json!({})
            } else {
                json!("{}")
            };
        }
    }
    if with_servers {
        let vms = running_vms(s, &h.name).await?;
        o["servers"] = json!(vms
            .iter()
            .map(|(id, name)| json!({"uuid": id, "name": name}))
            .collect::<Vec<_>>());
    }
    Ok(o)
}

async fn hypervisor_list(s: &State, c: &Ctx, p: &Params, detail: bool) -> Result<Response> {
    require_admin(c, "os_compute_api:os-hypervisors:list")?;
    let hosts = inventory::hosts(s.pool()).await?;
    let metas = meta(s).await?;
    let with_servers = p
        .get("with_servers")
        .is_some_and(|v| v == "true" || v == "1");
    let mut items = Vec::new();
    for h in &hosts {
        if let Some(pat) = p.get("hypervisor_hostname_pattern") {
            if !h.name.contains(pat) {
                continue;
            }
        }
        if let Some(m) = metas.iter().find(|m| m.name == h.name) {
            items.push(hypervisor_json(s, c, h, m, detail, with_servers).await?);
        }
    }
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"hypervisors": items}),
    ))
}

pub async fn hypervisors(St(s): St<State>, c: Ctx, p: Params) -> Result<Response> {
    hypervisor_list(&s, &c, &p, false).await
}

pub async fn hypervisors_detail(St(s): St<State>, c: Ctx, p: Params) -> Result<Response> {
    hypervisor_list(&s, &c, &p, true).await
}

pub async fn hypervisor(
    St(s): St<State>,
    c: Ctx,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response> {
    require_admin(&c, "os_compute_api:os-hypervisors:show")?;
    let hosts = inventory::hosts(s.pool()).await?;
    let metas = meta(&s).await?;
    for h in &hosts {
        if let Some(m) = metas.iter().find(|m| m.name == h.name) {
            if h.hypervisor_id == id || m.seq.to_string() == id {
                let with_servers = p
                    .get("with_servers")
                    .is_some_and(|v| v == "true" || v == "1");
                let body = hypervisor_json(&s, &c, h, m, true, with_servers).await?;
                return Ok(reply(
                    StatusCode::OK,
                    c.version,
                    json!({"hypervisor": body}),
                ));
            }
        }
    }
    Err(ComputeError::NotFound(format!(
        "Hypervisor with ID '{id}' could not be found."
    )))
}

pub async fn services(St(s): St<State>, c: Ctx, p: Params) -> Result<Response> {
    require_admin(&c, "os_compute_api:os-services:list")?;
    let hosts = inventory::hosts(s.pool()).await?;
    let metas = meta(&s).await?;
    let mut items = Vec::new();
    for h in &hosts {
        if p.get("host").is_some_and(|x| x != h.name)
            || p.get("binary").is_some_and(|b| b != "nova-compute")
        {
            continue;
        }
        let Some(m) = metas.iter().find(|m| m.name == h.name) else {
            continue;
        };
        items.push(service_json(&c, h, m));
    }
    Ok(reply(StatusCode::OK, c.version, json!({"services": items})))
}

fn service_json(c: &Ctx, h: &HostRow, m: &HostMeta) -> Value {
    let mut o = json!({
        "id": if c.version.at_least(53) { json!(m.service_id) } else { json!(m.seq) },
        "binary": "nova-compute", "host": h.name, "zone": h.availability_zone,
        "status": if h.enabled() { "enabled" } else { "disabled" },
        "state": if up(h) { "up" } else { "down" },
        "updated_at": time::iso_micros(h.heartbeat_at).trim_end_matches('Z'),
        "disabled_reason": h.disabled_reason(m.disabled_reason.as_deref()),
    });
    if c.version.at_least(11) {
        o["forced_down"] = json!(h.forced_down != 0);
    }
    o
}

fn service_field<'a>(body: &'a Value, key: &str) -> Result<Option<&'a Value>> {
    let obj = body
        .as_object()
        .ok_or_else(|| ComputeError::BadRequest("The request body must be an object.".into()))?;
    Ok(obj.get(key))
}

fn opt_bool(body: &Value, key: &str) -> Result<Option<bool>> {
    match service_field(body, key)? {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(v)) => match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Some(true)),
            "false" | "0" | "no" | "off" => Ok(Some(false)),
            _ => Err(ComputeError::BadRequest(format!(
                "Invalid input for field/attribute {key}. Value: {v}. {v:?} is not of type 'boolean'"
            ))),
        },
        Some(v) => Err(ComputeError::BadRequest(format!(
            "Invalid input for field/attribute {key}. Value: {v}. {v} is not of type 'boolean'"
        ))),
    }
}

fn opt_reason(body: &Value) -> Result<Option<String>> {
    match service_field(body, "disabled_reason")? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(r)) if !r.trim().is_empty() && r.chars().count() <= 255 => {
            Ok(Some(r.clone()))
        }
        Some(v) => Err(ComputeError::BadRequest(format!(
            "Invalid input for field/attribute disabled_reason. Value: {v}. It must be a string of 1 to 255 characters"
        ))),
    }
}

/// `PUT /os-services/{id}`: by the service's UUID from 2.53 on; before
/// that, the actions `enable`, `disable`, `disable-log-reason` and
/// `force-down` with `host` and `binary` in the body.
pub async fn update_service(
    St(s): St<State>,
    c: Ctx,
    Path(id): Path<String>,
    Body(body): Body<Value>,
) -> Result<Response> {
    require_admin(&c, "os_compute_api:os-services:update")?;
    let hosts = inventory::hosts(s.pool()).await?;
    let metas = meta(&s).await?;
    let not_found = || ComputeError::NotFound("Service not found.".into());
    if c.version.at_least(53) {
        let m = metas
            .iter()
            .find(|m| m.service_id == id)
            .ok_or_else(not_found)?;
        let status = match service_field(&body, "status")? {
            None => None,
            Some(Value::String(v)) if v == "enabled" => Some(false),
            Some(Value::String(v)) if v == "disabled" => Some(true),
            Some(v) => {
                return Err(ComputeError::BadRequest(format!(
                    "Invalid input for field/attribute status. Value: {v}. {v} is not one of ['enabled', 'disabled']"
                )))
            }
        };
        let reason = opt_reason(&body)?;
        let forced_down = opt_bool(&body, "forced_down")?;
        if let Some(k) = body.as_object().and_then(|o| {
            o.keys()
                .find(|k| !["status", "disabled_reason", "forced_down"].contains(&k.as_str()))
        }) {
            return Err(ComputeError::BadRequest(format!(
                "Additional properties are not allowed ('{k}' was unexpected)"
            )));
        }
        if status.is_none() && forced_down.is_none() {
            return Err(ComputeError::BadRequest(
                "No updates were requested. Fields 'status' or 'forced_down' should be specified."
                    .into(),
            ));
        }
        if reason.is_some() && status != Some(true) {
            return Err(ComputeError::BadRequest(
                "Specifying 'disabled_reason' with status 'enabled' is invalid.".into(),
            ));
        }
        inventory::set_service(s.pool(), &m.name, status, reason, forced_down).await?;
        tracing::info!(host = %m.name, ?status, ?forced_down, "compute service updated");
        let hosts = inventory::hosts(s.pool()).await?;
        let metas = meta(&s).await?;
        let (h, m) = hosts
            .iter()
            .find(|h| h.name == m.name)
            .zip(metas.iter().find(|x| x.name == m.name))
            .ok_or_else(not_found)?;
        return Ok(reply(
            StatusCode::OK,
            c.version,
            json!({"service": service_json(&c, h, m)}),
        ));
    }
    let field = |k: &str| -> Result<String> {
        match service_field(&body, k)? {
            Some(Value::String(v)) if !v.is_empty() => Ok(v.clone()),
            _ => Err(ComputeError::BadRequest(format!(
                "Invalid input for field/attribute {k}: a string is required."
            ))),
        }
    };
    let (status, reason, forced_down) = match id.as_str() {
        "enable" => (Some(false), None, None),
        "disable" => (Some(true), None, None),
        "disable-log-reason" => match opt_reason(&body)? {
            Some(r) => (Some(true), Some(r), None),
            None => {
                return Err(ComputeError::BadRequest(
                    "Missing disabled reason field".into(),
                ))
            }
        },
        "force-down" if c.version.at_least(11) => match opt_bool(&body, "forced_down")? {
            Some(f) => (None, None, Some(f)),
            None => {
                return Err(ComputeError::BadRequest(
                    "Invalid input for field/attribute forced_down: a boolean is required.".into(),
                ))
            }
        },
        _ => return Err(ComputeError::NotFound("Unknown action".into())),
    };
    let host = field("host")?;
    let binary = field("binary")?;
    if binary != "nova-compute" || !hosts.iter().any(|h| h.name == host) {
        return Err(ComputeError::NotFound(format!(
            "Compute service of {host} could not be found."
        )));
    }
    inventory::set_service(s.pool(), &host, status, reason.clone(), forced_down).await?;
    tracing::info!(host = %host, ?status, ?forced_down, "compute service updated");
    let mut o = json!({"host": host, "binary": binary});
    if let Some(d) = status {
        o["status"] = json!(if d { "disabled" } else { "enabled" });
    }
    if let Some(r) = reason {
        o["disabled_reason"] = json!(r);
    }
    if let Some(f) = forced_down {
        o["forced_down"] = json!(f);
    }
    Ok(reply(StatusCode::OK, c.version, json!({"service": o})))
}

async fn zones(s: &State, c: &Ctx, detail: bool) -> Result<Response> {
    let hosts = inventory::hosts(s.pool()).await?;
    let mut names: Vec<String> = hosts.iter().map(|h| h.availability_zone.clone()).collect();
    names.sort();
    names.dedup();
    let items: Vec<Value> = names
        .iter()
        .map(|z| {
            let members: Vec<&HostRow> =
                hosts.iter().filter(|h| h.availability_zone == *z).collect();
            let available = members.iter().any(|h| up(h) && h.enabled());
            let hosts_json = if detail {
                let mut m = Map::new();
                for h in members {
                    m.insert(
                        h.name.clone(),
                        json!({"nova-compute": {"available": up(h), "active": h.enabled(),
                        "updated_at": time::iso_micros(h.heartbeat_at).trim_end_matches('Z')}}),
                    );
                }
                Value::Object(m)
            } else {
                Value::Null
            };
            json!({"zoneName": z, "zoneState": {"available": available}, "hosts": hosts_json})
        })
        .collect();
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"availabilityZoneInfo": items}),
    ))
}

pub async fn availability_zones(St(s): St<State>, c: Ctx) -> Result<Response> {
    zones(&s, &c, false).await
}

pub async fn availability_zones_detail(St(s): St<State>, c: Ctx) -> Result<Response> {
    require_admin(&c, "os_compute_api:os-availability-zone:detail")?;
    zones(&s, &c, true).await
}

pub async fn limits(St(s): St<State>, c: Ctx, p: Params) -> Result<Response> {
    let project = match p.get("tenant_id") {
        Some(t) if c.auth.is_admin() => t.to_owned(),
        _ => c.auth.project_id().unwrap_or("").to_owned(),
    };
    let q = s.quotas(&project).await?;
    let (i, cores, ram) = s.usage(&project).await?;
    let g = |k: &str| q.get(k).copied().unwrap_or(-1);
    let (groups,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM server_groups WHERE project_id = $1")
            .bind(&project)
            .fetch_one(s.pool())
            .await?;
    let mut absolute = json!({
        "maxTotalInstances": g("instances"), "maxTotalCores": g("cores"), "maxTotalRAMSize": g("ram"),
        "maxTotalKeypairs": g("key_pairs"), "maxServerMeta": g("metadata_items"),
        "maxServerGroups": g("server_groups"), "maxServerGroupMembers": g("server_group_members"),
        "totalInstancesUsed": i, "totalCoresUsed": cores, "totalRAMUsed": ram, "totalServerGroupsUsed": groups,
    });
    // What older microversions still show: the network proxies until 2.36
    // (Neutron's quotas and usage, as Nova proxies them), image metadata
    // until 2.39, personality (injected files) until 2.57.
    if !c.version.at_least(36) {
        let nq = s
            .network
            .quotas(&project)
            .await
            .map_err(crate::nics::from_network)?;
        let used = s
            .network
            .usage(&project)
            .await
            .map_err(crate::nics::from_network)?;
        let n =
            |m: &std::collections::HashMap<String, i64>, k: &str| m.get(k).copied().unwrap_or(-1);
        absolute["maxSecurityGroups"] = json!(n(&nq, "security_group"));
        absolute["maxSecurityGroupRules"] = json!(n(&nq, "security_group_rule"));
        absolute["maxTotalFloatingIps"] = json!(n(&nq, "floatingip"));
        absolute["totalFloatingIpsUsed"] = json!(used.get("floatingip").copied().unwrap_or(0));
        absolute["totalSecurityGroupsUsed"] =
            json!(used.get("security_group").copied().unwrap_or(0));
    }
    if !c.version.at_least(39) {
        absolute["maxImageMeta"] = json!(g("metadata_items"));
    }
    if !c.version.at_least(57) {
        absolute["maxPersonality"] = json!(g("injected_files"));
        absolute["maxPersonalitySize"] = json!(g("injected_file_content_bytes"));
    }
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"limits": {"rate": [], "absolute": absolute}}),
    ))
}

/// The limits of a `quota_set` or `quota_class_set` body, checked.
pub(super) fn parse_limits(set: &Map<String, Value>, v: Version) -> Result<Vec<(String, i64)>> {
    let mut updates = Vec::new();
    for (k, val) in set {
        if k == "force" {
            continue;
        }
        if !quota_names(v).contains(&k.as_str()) {
            return Err(ComputeError::bad(format!("Bad key(s) {k} in quota_set")));
        }
        let n = match val {
            Value::Number(n) => n.as_i64(),
            Value::String(x) => x.parse().ok(),
            _ => None,
        }
        .filter(|n| *n >= -1 && *n <= i64::from(i32::MAX))
        .ok_or_else(|| {
            ComputeError::bad(format!(
                "Invalid input for field/attribute {k}. Value: {val}."
            ))
        })?;
        updates.push((k.clone(), n));
    }
    Ok(updates)
}

/// `DELETE /os-quota-sets/{project}`: the project's limits back to the
/// defaults.
pub async fn quota_delete(
    St(s): St<State>,
    c: Ctx,
    Path(project): Path<String>,
) -> Result<Response> {
    require_admin(&c, "os_compute_api:os-quota-sets:delete")?;
    s.reset_quotas(&project).await?;
    Ok(super::empty(StatusCode::ACCEPTED, c.version))
}

pub(super) fn quota_body(
    project: &str,
    q: &std::collections::HashMap<String, i64>,
    v: Version,
) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(project));
    for k in quota_names(v) {
        m.insert(k.to_owned(), json!(q.get(k).copied().unwrap_or(-1)));
    }
    Value::Object(m)
}

fn may_see_quota(c: &Ctx, project: &str) -> Result<()> {
    if c.auth.is_admin() || c.auth.project_id() == Some(project) {
        Ok(())
    } else {
        Err(ComputeError::Denied(ferro_common::Denied {
            action: "os_compute_api:os-quota-sets:show",
        }))
    }
}

pub async fn quota_show(St(s): St<State>, c: Ctx, Path(project): Path<String>) -> Result<Response> {
    may_see_quota(&c, &project)?;
    let q = s.quotas(&project).await?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"quota_set": quota_body(&project, &q, c.version)}),
    ))
}

pub async fn quota_defaults(
    St(s): St<State>,
    c: Ctx,
    Path(project): Path<String>,
) -> Result<Response> {
    let q = s.class_quotas("default").await?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"quota_set": quota_body(&project, &q, c.version)}),
    ))
}

pub async fn quota_detail(
    St(s): St<State>,
    c: Ctx,
    Path(project): Path<String>,
) -> Result<Response> {
    may_see_quota(&c, &project)?;
    let q = s.quotas(&project).await?;
    let (i, cores, ram) = s.usage(&project).await?;
    let (kp,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM keypairs WHERE user_id = $1")
        .bind(&c.auth.user_id)
        .fetch_one(s.pool())
        .await?;
    let mut m = Map::new();
    m.insert("id".into(), json!(project));
    for k in quota_names(c.version) {
        let used = match k {
            "instances" => i,
            "cores" => cores,
            "ram" => ram,
            "key_pairs" => kp,
            _ => 0,
        };
        m.insert(
            k.to_owned(),
            json!({"limit": q.get(k).copied().unwrap_or(-1), "in_use": used, "reserved": 0}),
        );
    }
    Ok(reply(StatusCode::OK, c.version, json!({"quota_set": m})))
}

pub async fn quota_update(
    St(s): St<State>,
    c: Ctx,
    Path(project): Path<String>,
    Body(b): Body<Value>,
) -> Result<Response> {
    require_admin(&c, "os_compute_api:os-quota-sets:update")?;
    let set = b
        .get("quota_set")
        .and_then(Value::as_object)
        .ok_or_else(|| ComputeError::bad("'quota_set' is a required property."))?;
    let updates = parse_limits(set, c.version)?;
    s.set_quotas(&project, &updates).await?;
    let q = s.quotas(&project).await?;
    let mut body = quota_body(&project, &q, c.version);
    if let Value::Object(m) = &mut body {
        m.remove("id");
    }
    Ok(reply(StatusCode::OK, c.version, json!({"quota_set": body})))
}

/// `GET /os-hypervisors/statistics` (until 2.88): totals over every host.
pub async fn hypervisor_statistics(St(s): St<State>, c: Ctx) -> Result<Response> {
    gone_at(&c, 88)?;
    require_admin(&c, "os_compute_api:os-hypervisors:statistics")?;
    let hosts = inventory::hosts(s.pool()).await?;
    let (servers,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM servers WHERE host IS NOT NULL AND deleted = 0")
            .fetch_one(s.pool())
            .await?;
    let sum = |f: fn(&HostRow) -> i64| hosts.iter().map(f).sum::<i64>();
    let stats = json!({
        "count": hosts.len(),
        "vcpus": sum(|h| h.vcpus), "vcpus_used": sum(|h| h.vcpus_used),
        "memory_mb": sum(|h| h.memory_mb), "memory_mb_used": sum(|h| h.memory_used_mb),
        "local_gb": sum(|h| h.disk_gb), "local_gb_used": sum(|h| h.disk_used_gb),
        "free_ram_mb": sum(|h| h.memory_mb - h.memory_used_mb),
        "free_disk_gb": sum(|h| h.disk_gb - h.disk_used_gb),
        "disk_available_least": sum(|h| h.disk_gb - h.disk_used_gb),
        "current_workload": 0,
        "running_vms": servers,
    });
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"hypervisor_statistics": stats}),
    ))
}

/// `GET /os-hypervisors/{id}/uptime` (until 2.88; later in the hypervisor).
pub async fn hypervisor_uptime(
    St(s): St<State>,
    c: Ctx,
    Path(id): Path<String>,
) -> Result<Response> {
    gone_at(&c, 88)?;
    require_admin(&c, "os_compute_api:os-hypervisors:uptime")?;
    let hosts = inventory::hosts(s.pool()).await?;
    let metas = meta(&s).await?;
    for h in &hosts {
        let Some(m) = metas.iter().find(|m| m.name == h.name) else {
            continue;
        };
        if h.hypervisor_id == id || m.seq.to_string() == id {
            let secs = (time::now_micros() - m.started_at).max(0) / 1_000_000;
            let body = json!({
                "id": if c.version.at_least(53) { json!(h.hypervisor_id) } else { json!(m.seq) },
                "hypervisor_hostname": h.name,
                "state": if up(h) { "up" } else { "down" },
                "status": if h.enabled() { "enabled" } else { "disabled" },
                // As `uptime` prints it (time of day, then how long the
                // host's agent has run); no user count or load is known here.
                "uptime": format!(
                    "{} up {} days, {:02}:{:02}",
                    &time::iso_seconds(time::now_micros())[11..19],
                    secs / 86400,
                    secs % 86400 / 3600,
                    secs % 3600 / 60
                ),
            });
            return Ok(reply(
                StatusCode::OK,
                c.version,
                json!({"hypervisor": body}),
            ));
        }
    }
    Err(ComputeError::NotFound(format!(
        "Hypervisor with ID '{id}' could not be found."
    )))
}

/// `GET /os-hypervisors/{pattern}/search` and `/{pattern}/servers` (until
/// 2.53, when `hypervisor_hostname_pattern` and `with_servers` took over).
async fn by_pattern(s: &State, c: &Ctx, pattern: &str, with_servers: bool) -> Result<Response> {
    gone_at(c, 53)?;
    require_admin(c, "os_compute_api:os-hypervisors:search")?;
    let hosts = inventory::hosts(s.pool()).await?;
    let metas = meta(s).await?;
    let mut items = Vec::new();
    for h in hosts.iter().filter(|h| h.name.contains(pattern)) {
        if let Some(m) = metas.iter().find(|m| m.name == h.name) {
            items.push(hypervisor_json(s, c, h, m, false, with_servers).await?);
        }
    }
    if items.is_empty() {
        return Err(ComputeError::NotFound(format!(
            "No hypervisor matching '{pattern}' could be found."
        )));
    }
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"hypervisors": items}),
    ))
}

pub async fn hypervisor_search(
    St(s): St<State>,
    c: Ctx,
    Path(pattern): Path<String>,
) -> Result<Response> {
    by_pattern(&s, &c, &pattern, false).await
}

pub async fn hypervisor_servers(
    St(s): St<State>,
    c: Ctx,
    Path(pattern): Path<String>,
) -> Result<Response> {
    by_pattern(&s, &c, &pattern, true).await
}
