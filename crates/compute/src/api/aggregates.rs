//! `/os-aggregates` (admin only): list, create, show, update, delete, and
//! the `add_host`, `remove_host` and `set_metadata` actions. `uuid` is
//! shown from 2.41.

use std::collections::BTreeMap;

use axum::extract::{Path, State as St};
use axum::http::StatusCode;
use axum::response::Response;
use ferro_common::time;
use serde_json::{json, Map, Value};

use super::{check_name, empty, reply, require_admin, Body, Ctx, State};
use crate::aggregates::Aggregate;
use crate::error::{ComputeError, Result};

fn bad(m: impl Into<String>) -> ComputeError {
    ComputeError::BadRequest(m.into())
}

fn ts(t: i64) -> String {
    time::iso_micros(t).trim_end_matches('Z').to_owned()
}

/// The aggregate as Nova shows it; a create's answer has no hosts or metadata.
fn render(c: &Ctx, a: &Aggregate, full: bool) -> Value {
    let mut o = json!({
        "id": a.id, "name": a.name, "availability_zone": a.availability_zone(),
        "created_at": ts(a.created_at), "updated_at": a.updated_at.map(ts),
        "deleted": false, "deleted_at": null,
    });
    if full {
        o["hosts"] = json!(a.hosts);
        o["metadata"] = json!(a.metadata);
    }
    if c.version.at_least(41) {
        o["uuid"] = json!(a.uuid);
    }
    o
}

fn one(c: &Ctx, a: &Aggregate) -> Response {
    reply(
        StatusCode::OK,
        c.version,
        json!({"aggregate": render(c, a, true)}),
    )
}

/// An optional zone name: absent, null, or 1–255 characters.
fn zone_of(v: Option<&Value>) -> Result<Option<Option<String>>> {
    match v {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(z)) => {
            check_name("availability_zone", z)?;
            Ok(Some(Some(z.clone())))
        }
        Some(_) => Err(bad("Invalid input for field/attribute availability_zone.")),
    }
}

fn object<'a>(body: &'a Value, key: &str) -> Result<&'a Map<String, Value>> {
    body.get(key).and_then(Value::as_object).ok_or_else(|| {
        bad(format!(
            "Invalid input for field/attribute {key}. '{key}' is a required property."
        ))
    })
}

fn only(o: &Map<String, Value>, keys: &[&str]) -> Result<()> {
    match o.keys().find(|k| !keys.contains(&k.as_str())) {
        Some(k) => Err(bad(format!(
            "Additional properties are not allowed ('{k}' was unexpected)"
        ))),
        None => Ok(()),
    }
}

pub async fn list(St(s): St<State>, c: Ctx) -> Result<Response> {
    require_admin(&c, "os_compute_api:os-aggregates:index")?;
    let items: Vec<Value> = s
        .aggregates()
        .await?
        .iter()
        .map(|a| render(&c, a, true))
        .collect();
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"aggregates": items}),
    ))
}

pub async fn create(St(s): St<State>, c: Ctx, Body(body): Body<Value>) -> Result<Response> {
    require_admin(&c, "os_compute_api:os-aggregates:create")?;
    let a = object(&body, "aggregate")?;
    only(a, &["name", "availability_zone"])?;
    let name = a.get("name").and_then(Value::as_str).ok_or_else(|| {
        bad("Invalid input for field/attribute name. 'name' is a required property.")
    })?;
    check_name("name", name)?;
    let zone = zone_of(a.get("availability_zone"))?.flatten();
    let agg = s.create_aggregate(name, zone.as_deref()).await?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"aggregate": render(&c, &agg, false)}),
    ))
}

pub async fn show(St(s): St<State>, c: Ctx, Path(id): Path<String>) -> Result<Response> {
    require_admin(&c, "os_compute_api:os-aggregates:show")?;
    Ok(one(&c, &s.aggregate(&id).await?))
}

pub async fn update(
    St(s): St<State>,
    c: Ctx,
    Path(id): Path<String>,
    Body(body): Body<Value>,
) -> Result<Response> {
    require_admin(&c, "os_compute_api:os-aggregates:update")?;
    let a = object(&body, "aggregate")?;
    only(a, &["name", "availability_zone"])?;
    if a.is_empty() {
        return Err(bad(
            "Invalid input for field/attribute aggregate. {} does not have enough properties",
        ));
    }
    let name = match a.get("name") {
        None => None,
        Some(Value::String(n)) => {
            check_name("name", n)?;
            Some(n.as_str())
        }
        Some(_) => return Err(bad("Invalid input for field/attribute name.")),
    };
    let zone = zone_of(a.get("availability_zone"))?;
    let agg = s.aggregate(&id).await?;
    let agg = s
        .update_aggregate(&agg, name, zone.as_ref().map(|z| z.as_deref()))
        .await?;
    Ok(one(&c, &agg))
}

pub async fn delete(St(s): St<State>, c: Ctx, Path(id): Path<String>) -> Result<Response> {
    require_admin(&c, "os_compute_api:os-aggregates:delete")?;
    let agg = s.aggregate(&id).await?;
    s.delete_aggregate(&agg).await?;
    Ok(empty(StatusCode::OK, c.version))
}

fn host_of(arg: &Value, action: &str) -> Result<String> {
    let o = arg
        .as_object()
        .ok_or_else(|| bad(format!("Invalid input for field/attribute {action}.")))?;
    only(o, &["host"])?;
    let h = o.get("host").and_then(Value::as_str).ok_or_else(|| {
        bad("Invalid input for field/attribute host. 'host' is a required property.")
    })?;
    check_name("host", h)?;
    Ok(h.to_owned())
}

pub async fn action(
    St(s): St<State>,
    c: Ctx,
    Path(id): Path<String>,
    Body(body): Body<Map<String, Value>>,
) -> Result<Response> {
    require_admin(&c, "os_compute_api:os-aggregates:action")?;
    let [(name, arg)] = body.iter().collect::<Vec<_>>()[..] else {
        return Err(bad("Exactly one action is expected in the request body."));
    };
    let agg = s.aggregate(&id).await?;
    let agg = match name.as_str() {
        "add_host" => s.add_aggregate_host(&agg, &host_of(arg, name)?).await?,
        "remove_host" => s.remove_aggregate_host(&agg, &host_of(arg, name)?).await?,
        "set_metadata" => {
            let o = arg
                .as_object()
                .ok_or_else(|| bad("Invalid input for field/attribute set_metadata."))?;
            only(o, &["metadata"])?;
            let m = o
                .get("metadata")
                .and_then(Value::as_object)
                .ok_or_else(|| bad("Invalid input for field/attribute metadata. 'metadata' is a required property."))?;
            let mut changes = BTreeMap::new();
            for (k, v) in m {
                if k.is_empty() || k.chars().count() > 255 {
                    return Err(bad("Invalid input for field/attribute metadata. Keys must be 1 to 255 characters."));
                }
                let v = match v {
                    Value::Null => None,
                    Value::String(v) if v.chars().count() <= 255 => Some(v.clone()),
                    _ => {
                        return Err(bad(format!(
                            "Invalid input for field/attribute metadata. Value of {k} must be a string of at most 255 characters or null."
                        )))
                    }
                };
                if k == "availability_zone" {
                    if let Some(z) = &v {
                        check_name("availability_zone", z)?;
                    }
                }
                changes.insert(k.clone(), v);
            }
            s.set_aggregate_metadata(&agg, changes).await?
        }
        other => return Err(bad(format!("There is no such action: {other}"))),
    };
    Ok(one(&c, &agg))
}
