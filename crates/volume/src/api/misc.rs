//! Version discovery, services, availability zones, limits, quota sets
//! and the extensions list.

use std::collections::BTreeMap;

use axum::extract::State as S;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferro_common::policy::Rule;
use serde_json::{json, Value};

use super::{one, Body, Ctx, Query, State, P};
use crate::error::{Result, VolumeError};
use crate::model::{cinder_time, MAX_VERSION, MIN_VERSION};
use crate::service::{QuotaSet, DEFAULT_QUOTAS, ZONE};

fn version_doc(s: &State) -> Value {
    json!({
        "id": "v3.0",
        "status": "CURRENT",
        "version": format!("{}.{}", MAX_VERSION.0, MAX_VERSION.1),
        "min_version": format!("{}.{}", MIN_VERSION.0, MIN_VERSION.1),
        "updated": "2023-08-31T00:00:00Z",
        "links": [
            {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
            {"rel": "self", "href": format!("{}/v3/", s.base_url)},
        ],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}],
    })
}

pub async fn versions_root(S(s): S<State>) -> Response {
    (
        StatusCode::MULTIPLE_CHOICES,
        axum::Json(json!({"versions": [version_doc(&s)]})),
    )
        .into_response()
}

pub async fn versions(S(s): S<State>) -> Response {
    (
        StatusCode::OK,
        axum::Json(json!({"versions": [version_doc(&s)]})),
    )
        .into_response()
}

pub async fn services(S(s): S<State>, ctx: Ctx, q: Query) -> Result<Response> {
    s.enforce(&ctx.0, "volume_extension:services:index", Rule::Admin, None)?;
    let updated = cinder_time(ferro_common::time::now_micros());
    let mut items = Vec::new();
    for (binary, host) in [
        ("cinder-scheduler", s.host_name.clone()),
        (
            "cinder-volume",
            format!("{}@{}", s.host_name, s.backend.name()),
        ),
    ] {
        let mut v = json!({
            "binary": binary, "host": host, "zone": ZONE, "status": "enabled", "state": "up",
            "updated_at": updated, "disabled_reason": null,
        });
        if ctx.1.at_least(7) {
            v["cluster"] = Value::Null;
        }
        if binary == "cinder-volume" {
            v["replication_status"] = json!("disabled");
            v["active_backend_id"] = Value::Null;
            v["frozen"] = json!(false);
            if ctx.1.at_least(49) {
                v["backend_state"] = json!("up");
            }
        }
        items.push(v);
    }
    let items: Vec<Value> = items
        .into_iter()
        .filter(|v| q.get("binary").is_none_or(|b| v["binary"] == b))
        .filter(|v| q.get("host").is_none_or(|h| v["host"] == h))
        .collect();
    Ok(one(StatusCode::OK, "services", Value::Array(items)))
}

pub async fn zones(_ctx: Ctx) -> Result<Response> {
    Ok(one(
        StatusCode::OK,
        "availabilityZoneInfo",
        json!([{"zoneName": ZONE, "zoneState": {"available": true}}]),
    ))
}

pub async fn limits(S(s): S<State>, ctx: Ctx) -> Result<Response> {
    let project = s.project_of(&ctx.0)?.to_owned();
    let set = s.show_quotas(&ctx.0, &project).await?;
    let l = |k: &str| set.limits.get(k).copied().unwrap_or(-1);
    let u = |k: &str| set.in_use.get(k).copied().unwrap_or(0);
    Ok(one(
        StatusCode::OK,
        "limits",
        json!({
            "rate": [],
            "absolute": {
                "maxTotalVolumes": l("volumes"),
                "maxTotalSnapshots": l("snapshots"),
                "maxTotalVolumeGigabytes": l("gigabytes"),
                "maxTotalBackups": l("backups"),
                "maxTotalBackupGigabytes": l("backup_gigabytes"),
                "totalVolumesUsed": u("volumes"),
                "totalSnapshotsUsed": u("snapshots"),
                "totalGigabytesUsed": u("gigabytes"),
                "totalBackupsUsed": 0,
                "totalBackupGigabytesUsed": 0,
            }
        }),
    ))
}

fn render_quotas(project: &str, set: &QuotaSet, usage: bool) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("id".into(), json!(project));
    for (k, limit) in &set.limits {
        let v = if usage {
            json!({"limit": limit, "in_use": set.in_use.get(k).copied().unwrap_or(0), "reserved": 0, "allocated": 0})
        } else {
            json!(limit)
        };
        m.insert(k.clone(), v);
    }
    Value::Object(m)
}

pub async fn quota_show(S(s): S<State>, ctx: Ctx, p: P, q: Query) -> Result<Response> {
    let project = p.get("project");
    let set = s.show_quotas(&ctx.0, project).await?;
    Ok(one(
        StatusCode::OK,
        "quota_set",
        render_quotas(project, &set, q.flag("usage")),
    ))
}

pub async fn quota_defaults(S(s): S<State>, ctx: Ctx, p: P) -> Result<Response> {
    let project = p.get("project");
    s.show_quotas(&ctx.0, project).await?;
    let set = QuotaSet {
        limits: DEFAULT_QUOTAS
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect(),
        in_use: BTreeMap::new(),
    };
    Ok(one(
        StatusCode::OK,
        "quota_set",
        render_quotas(project, &set, false),
    ))
}

pub async fn quota_update(S(s): S<State>, ctx: Ctx, p: P, body: Body) -> Result<Response> {
    let project = p.get("project");
    let Value::Object(m) = body.object("quota_set")? else {
        return Err(VolumeError::bad("Malformed request body.".to_owned()));
    };
    let mut changes = BTreeMap::new();
    for (k, v) in m {
        if k == "tenant_id" || k == "id" {
            continue;
        }
        let n = match &v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
        .ok_or_else(|| {
            VolumeError::bad(format!("Quota limit for {k} must be an integer, not {v}."))
        })?;
        changes.insert(k, n);
    }
    let set = s.update_quotas(&ctx.0, project, changes).await?;
    let mut body = render_quotas(project, &set, false);
    if let Value::Object(m) = &mut body {
        m.remove("id");
    }
    Ok(one(StatusCode::OK, "quota_set", body))
}

pub async fn quota_reset(S(s): S<State>, ctx: Ctx, p: P) -> Result<Response> {
    s.reset_quotas(&ctx.0, p.get("project")).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn extensions(_ctx: Ctx) -> Result<Response> {
    let ext = |alias: &str, name: &str| json!({"alias": alias, "name": name, "description": name, "links": [], "updated": "2023-08-31T00:00:00+00:00"});
    Ok(one(
        StatusCode::OK,
        "extensions",
        json!([
            ext("os-availability-zone", "AvailabilityZones"),
            ext(
                "os-extended-snapshot-attributes",
                "ExtendedSnapshotAttributes"
            ),
            ext("os-quota-sets", "Quotas"),
            ext("os-services", "Services"),
            ext("os-vol-host-attr", "VolumeHostAttribute"),
            ext("os-vol-tenant-attr", "VolumeTenantAttribute"),
            ext("os-vol-image-meta", "VolumeImageMetadata"),
            ext("os-volume-actions", "VolumeActions"),
            ext("os-admin-actions", "AdminActions"),
            ext("os-types-manage", "TypesManage"),
            ext("os-types-extra-specs", "TypesExtraSpecs"),
        ]),
    ))
}
