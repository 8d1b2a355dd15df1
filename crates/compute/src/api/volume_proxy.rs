//! Nova's block storage proxies (`/os-volumes`, `/os-snapshots`), removed
//! at microversion 2.36 and still what older clients call: the volume
//! service's volumes and snapshots in Nova's camel-case shape, created and
//! deleted through the volume service (its checks, quotas and states). A
//! volume's attachments are this service's own block device mappings.

use axum::extract::{Path, State as St};
use axum::http::StatusCode;
use axum::response::Response;
use ferro_common::time;
use serde_json::{json, Value};

use super::{empty, gone_at, reply, Body, Ctx, Params, State};
use crate::error::{ComputeError, Result};
use crate::service::ComputeService;
use crate::volumes::{ProxySnapshot, ProxyVolume, ProxyVolumeCreate};

fn bad(m: impl Into<String>) -> ComputeError {
    ComputeError::BadRequest(m.into())
}

async fn render_volume(s: &ComputeService, v: &ProxyVolume) -> Result<Value> {
    let maps: Vec<(String, String)> = sqlx::query_as(
        "SELECT server_id, device FROM block_device_mappings WHERE volume_id = $1 ORDER BY created_at",
    )
    .bind(&v.id)
    .fetch_all(s.pool())
    .await?;
    let mut attachments: Vec<Value> = maps
        .iter()
        .map(|(server, device)| {
            json!({"id": v.id, "volumeId": v.id, "serverId": server, "device": device})
        })
        .collect();
    // (Nova's proxy shows an unattached volume's list as one empty object)
    if attachments.is_empty() {
        attachments.push(json!({}));
    }
    Ok(json!({
        "id": v.id, "status": v.status, "size": v.size,
        "availabilityZone": v.availability_zone,
        "createdAt": time::iso_seconds(v.created_at),
        "displayName": v.name, "displayDescription": v.description,
        "volumeType": v.volume_type, "snapshotId": v.snapshot_id,
        "metadata": v.metadata, "attachments": attachments,
    }))
}

fn render_snapshot(sn: &ProxySnapshot) -> Value {
    json!({
        "id": sn.id, "volumeId": sn.volume_id, "status": sn.status, "size": sn.size,
        "createdAt": time::iso_seconds(sn.created_at),
        "displayName": sn.name, "displayDescription": sn.description,
    })
}

/// `offset` and `limit` of a list (Nova's paging for these proxies).
fn page<T>(mut rows: Vec<T>, p: &Params, max: usize) -> Result<Vec<T>> {
    let num = |key: &str| -> Result<Option<usize>> {
        p.get(key)
            .map(|v| {
                v.parse::<usize>()
                    .map_err(|_| bad(format!("{key} param must be an integer")))
            })
            .transpose()
    };
    let offset = num("offset")?.unwrap_or(0);
    let limit = num("limit")?.unwrap_or(max).min(max);
    rows.drain(..offset.min(rows.len()));
    rows.truncate(limit);
    Ok(rows)
}

async fn volumes_listed(s: &ComputeService, c: &Ctx, p: &Params) -> Result<Response> {
    gone_at(c, 36)?;
    let api = s.volume_api()?;
    let rows = page(
        api.list_volumes(&c.auth)
            .await
            .map_err(ComputeError::from)?,
        p,
        s.max_limit,
    )?;
    let mut items = Vec::with_capacity(rows.len());
    for v in &rows {
        items.push(render_volume(s, v).await?);
    }
    Ok(reply(StatusCode::OK, c.version, json!({"volumes": items})))
}

pub async fn list(St(s): St<State>, c: Ctx, p: Params) -> Result<Response> {
    volumes_listed(&s, &c, &p).await
}

/// (the detail list is the same list: Nova's proxy shows every field in both)
pub async fn list_detail(St(s): St<State>, c: Ctx, p: Params) -> Result<Response> {
    volumes_listed(&s, &c, &p).await
}

pub async fn show(St(s): St<State>, c: Ctx, Path(id): Path<String>) -> Result<Response> {
    gone_at(&c, 36)?;
    let v = s
        .volume_api()?
        .show_volume(&c.auth, &id)
        .await
        .map_err(ComputeError::from)?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"volume": render_volume(&s, &v).await?}),
    ))
}

/// A size as Nova's schema takes it: a whole number of GiB, at least 1,
/// as a number or as digits.
fn size_of(v: Option<&Value>) -> Result<i64> {
    let n = match v {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(t)) if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) => {
            t.parse().ok()
        }
        _ => None,
    };
    match n {
        Some(n) if n >= 1 => Ok(n),
        _ => Err(bad(format!(
            "Invalid input for field/attribute size. Value: {}. The size is a whole number of GiB, 1 or more.",
            v.cloned().unwrap_or(Value::Null)
        ))),
    }
}

fn opt_text(b: &Value, key: &str) -> Result<Option<String>> {
    match b.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(t)) if t.chars().count() <= 255 => Ok(Some(t.clone())),
        Some(other) => Err(bad(format!(
            "Invalid input for field/attribute {key}. Value: {other}."
        ))),
    }
}

pub async fn create(St(s): St<State>, c: Ctx, Body(body): Body<Value>) -> Result<Response> {
    gone_at(&c, 36)?;
    let b = body
        .get("volume")
        .filter(|v| v.is_object())
        .ok_or_else(|| bad("'volume' is a required property."))?;
    let size = size_of(b.get("size"))?;
    let metadata = match b.get("metadata") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(
            m.iter()
                .map(|(k, v)| {
                    v.as_str()
                        .map(|t| (k.clone(), t.to_owned()))
                        .ok_or_else(|| {
                            bad(format!(
                                "Invalid metadata value of {k}: a string is required."
                            ))
                        })
                })
                .collect::<Result<_>>()?,
        ),
        Some(_) => return Err(bad("Invalid input for field/attribute metadata.")),
    };
    let req = ProxyVolumeCreate {
        size: Some(json!(size)),
        name: opt_text(b, "display_name")?,
        description: opt_text(b, "display_description")?,
        volume_type: opt_text(b, "volume_type")?,
        availability_zone: opt_text(b, "availability_zone")?,
        snapshot_id: opt_text(b, "snapshot_id")?,
        metadata,
    };
    let v = s
        .volume_api()?
        .create_volume(&c.auth, req)
        .await
        .map_err(ComputeError::from)?;
    tracing::info!(volume_id = %v.id, size, "volume created through the compute API");
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"volume": render_volume(&s, &v).await?}),
    ))
}

pub async fn delete(St(s): St<State>, c: Ctx, Path(id): Path<String>) -> Result<Response> {
    gone_at(&c, 36)?;
    s.volume_api()?
        .delete_volume(&c.auth, &id)
        .await
        .map_err(ComputeError::from)?;
    Ok(empty(StatusCode::ACCEPTED, c.version))
}

// ---- snapshots ----

async fn snapshots_listed(s: &ComputeService, c: &Ctx, p: &Params) -> Result<Response> {
    gone_at(c, 36)?;
    let rows = page(
        s.volume_api()?
            .list_snapshots(&c.auth)
            .await
            .map_err(ComputeError::from)?,
        p,
        s.max_limit,
    )?;
    let items: Vec<Value> = rows.iter().map(render_snapshot).collect();
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"snapshots": items}),
    ))
}

pub async fn list_snapshots(St(s): St<State>, c: Ctx, p: Params) -> Result<Response> {
    snapshots_listed(&s, &c, &p).await
}

pub async fn list_snapshots_detail(St(s): St<State>, c: Ctx, p: Params) -> Result<Response> {
    snapshots_listed(&s, &c, &p).await
}

pub async fn show_snapshot(St(s): St<State>, c: Ctx, Path(id): Path<String>) -> Result<Response> {
    gone_at(&c, 36)?;
    let sn = s
        .volume_api()?
        .show_snapshot(&c.auth, &id)
        .await
        .map_err(ComputeError::from)?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"snapshot": render_snapshot(&sn)}),
    ))
}

pub async fn create_snapshot(
    St(s): St<State>,
    c: Ctx,
    Body(body): Body<Value>,
) -> Result<Response> {
    gone_at(&c, 36)?;
    let b = body
        .get("snapshot")
        .filter(|v| v.is_object())
        .ok_or_else(|| bad("'snapshot' is a required property."))?;
    let volume_id = b
        .get("volume_id")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("'volume_id' is a required property."))?;
    let force = match b.get("force") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(f)) => *f,
        Some(Value::String(f)) => match f.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => return Err(bad(format!("Invalid value '{f}' for force."))),
        },
        Some(other) => return Err(bad(format!("Invalid value '{other}' for force."))),
    };
    let sn = s
        .volume_api()?
        .create_snapshot(
            &c.auth,
            volume_id,
            opt_text(b, "display_name")?,
            opt_text(b, "display_description")?,
            force,
        )
        .await
        .map_err(ComputeError::from)?;
    tracing::info!(snapshot_id = %sn.id, volume_id, "volume snapshot created through the compute API");
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"snapshot": render_snapshot(&sn)}),
    ))
}

pub async fn delete_snapshot(St(s): St<State>, c: Ctx, Path(id): Path<String>) -> Result<Response> {
    gone_at(&c, 36)?;
    s.volume_api()?
        .delete_user_snapshot(&c.auth, &id)
        .await
        .map_err(ComputeError::from)?;
    Ok(empty(StatusCode::ACCEPTED, c.version))
}

#[cfg(test)]
mod tests {
    use super::size_of;
    use serde_json::json;

    #[test]
    fn sizes_are_whole_gib_from_one() {
        assert_eq!(size_of(Some(&json!(2))).unwrap(), 2);
        assert_eq!(size_of(Some(&json!("3"))).unwrap(), 3);
        for bad in [
            json!(0),
            json!("0"),
            json!(""),
            json!("#$%"),
            json!(-1),
            json!(1.5),
        ] {
            assert!(size_of(Some(&bad)).is_err(), "{bad}");
        }
        assert!(size_of(None).is_err());
    }
}
