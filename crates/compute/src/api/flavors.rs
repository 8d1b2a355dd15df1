//! Flavors, their extra specs and access lists.

use axum::extract::{Path, State as St};
use axum::http::StatusCode;
use axum::response::Response;
use ferro_common::{ids, time};
use ferro_store::{flag, sqlx};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{check_name, empty, render, reply, require_admin, Body, Ctx, Params, State};
use crate::error::{ComputeError, Result};
use crate::model::Flavor;
use crate::service::ComputeService;

async fn visible(s: &ComputeService, c: &Ctx, f: &Flavor) -> Result<bool> {
    if f.is_public != 0 || c.auth.is_admin() {
        return Ok(true);
    }
    let Some(p) = c.auth.project_id() else {
        return Ok(false);
    };
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT flavor_id FROM flavor_access WHERE flavor_id = $1 AND project_id = $2",
    )
    .bind(&f.id)
    .bind(p)
    .fetch_optional(s.pool())
    .await?;
    Ok(row.is_some())
}

pub async fn find(s: &ComputeService, c: &Ctx, id: &str) -> Result<Flavor> {
    let f: Option<Flavor> = sqlx::query_as("SELECT * FROM flavors WHERE id = $1")
        .bind(id)
        .fetch_optional(s.pool())
        .await?;
    match f {
        Some(f) if visible(s, c, &f).await? => Ok(f),
        _ => Err(ComputeError::NotFound(format!(
            "Flavor {id} could not be found."
        ))),
    }
}

async fn listed(s: &ComputeService, c: &Ctx, p: &Params) -> Result<Vec<Flavor>> {
    let rows: Vec<Flavor> = sqlx::query_as("SELECT * FROM flavors ORDER BY ram, id")
        .fetch_all(s.pool())
        .await?;
    let want_public = match p.get("is_public").map(str::to_ascii_lowercase).as_deref() {
        None => Some(true),
        Some("none") => None,
        Some("true" | "1" | "t" | "yes") => Some(true),
        Some("false" | "0" | "f" | "no") => Some(false),
        Some(other) => {
            return Err(ComputeError::bad(format!(
                "Invalid is_public filter [{other}]"
            )))
        }
    };
    let min_ram: i64 = p
        .get("minRam")
        .map(|v| {
            v.parse()
                .map_err(|_| ComputeError::bad("Invalid minRam filter"))
        })
        .transpose()?
        .unwrap_or(0);
    let min_disk: i64 = p
        .get("minDisk")
        .map(|v| {
            v.parse()
                .map_err(|_| ComputeError::bad("Invalid minDisk filter"))
        })
        .transpose()?
        .unwrap_or(0);
    let mut out = Vec::new();
    for f in rows {
        let public_ok = match want_public {
            None => true,
            Some(true) => f.is_public != 0 || (!c.auth.is_admin() && visible(s, c, &f).await?),
            Some(false) => f.is_public == 0,
        };
        if public_ok && visible(s, c, &f).await? && f.ram >= min_ram && f.disk >= min_disk {
            out.push(f);
        }
    }
    Ok(out)
}

/// The page of `rows` after `marker` (a flavor id), at most `limit` long
/// (and never more than `max_limit`); a full page links to the next.
fn paged(
    s: &ComputeService,
    p: &Params,
    path: &str,
    rows: Vec<Flavor>,
) -> Result<(Vec<Flavor>, Option<Value>)> {
    let limit = match p.get("limit") {
        None => s.max_limit,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| {
                ComputeError::bad(format!(
                    "Invalid input for query parameters limit. Value: {v}."
                ))
            })?
            .min(s.max_limit),
    };
    let start = match p.get("marker") {
        None => 0,
        Some(m) => {
            rows.iter()
                .position(|f| f.id == m)
                .ok_or_else(|| ComputeError::bad(format!("marker [{m}] not found")))?
                + 1
        }
    };
    let page: Vec<Flavor> = rows.into_iter().skip(start).take(limit).collect();
    let links = match page.last() {
        Some(last) if page.len() == limit => {
            let mut q = form_urlencoded::Serializer::new(String::new());
            let mut pairs: Vec<_> = p.0.iter().filter(|(k, _)| *k != "marker").collect();
            pairs.sort();
            for (k, v) in pairs {
                q.append_pair(k, v);
            }
            q.append_pair("marker", &last.id);
            Some(json!([{"rel": "next", "href": format!("{}/{path}?{}", s.base_url, q.finish())}]))
        }
        _ => None,
    };
    Ok((page, links))
}

async fn list_page(s: &ComputeService, c: &Ctx, p: &Params, detail: bool) -> Result<Response> {
    let path = if detail { "flavors/detail" } else { "flavors" };
    let (rows, links) = paged(s, p, path, listed(s, c, p).await?)?;
    let items: Vec<Value> = rows
        .iter()
        .map(|f| render::flavor(f, c.version, &s.base_url, detail))
        .collect();
    let mut body = json!({"flavors": items});
    if let Some(l) = links {
        body["flavors_links"] = l;
    }
    Ok(reply(StatusCode::OK, c.version, body))
}

pub async fn list(St(s): St<State>, c: Ctx, p: Params) -> Result<Response> {
    list_page(&s, &c, &p, false).await
}

pub async fn list_detail(St(s): St<State>, c: Ctx, p: Params) -> Result<Response> {
    list_page(&s, &c, &p, true).await
}

pub async fn show(St(s): St<State>, c: Ctx, Path(id): Path<String>) -> Result<Response> {
    let f = find(&s, &c, &id).await?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"flavor": render::flavor(&f, c.version, &s.base_url, true)}),
    ))
}

#[derive(Deserialize)]
pub struct CreateBody {
    flavor: CreateFields,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateFields {
    name: String,
    ram: Value,
    vcpus: Value,
    disk: Value,
    /// A string, an integer (Nova takes both), or null for a new UUID.
    id: Option<Value>,
    swap: Option<Value>,
    #[serde(rename = "OS-FLV-EXT-DATA:ephemeral")]
    ephemeral: Option<Value>,
    /// A boolean, or one of the strings Nova's boolean type accepts.
    #[serde(rename = "os-flavor-access:is_public")]
    is_public: Option<Value>,
    rxtx_factor: Option<Value>,
    description: Option<String>,
}

/// Nova accepts integers and integer strings.
fn int(field: &str, v: &Value, min: i64) -> Result<i64> {
    let n = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    match n {
        Some(n) if n >= min && n <= i64::from(i32::MAX) => Ok(n),
        _ => Err(ComputeError::bad(format!("Invalid input for field/attribute {field}. Value: {v}. It must be an integer >= {min}."))),
    }
}

/// Nova's boolean parameter type: JSON booleans and their usual spellings.
fn boolean(field: &str, v: &Value) -> Result<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(x) => match x.to_ascii_lowercase().as_str() {
            "true" | "1" | "on" | "yes" | "y" | "t" => Ok(true),
            "false" | "0" | "off" | "no" | "n" | "f" => Ok(false),
            _ => Err(ComputeError::bad(format!(
                "Invalid input for field/attribute {field}. Value: {v}. {v} is not of type 'boolean', 'string'"
            ))),
        },
        _ => Err(ComputeError::bad(format!(
            "Invalid input for field/attribute {field}. Value: {v}. {v} is not of type 'boolean', 'string'"
        ))),
    }
}

pub async fn create(St(s): St<State>, c: Ctx, Body(b): Body<CreateBody>) -> Result<Response> {
    require_admin(&c, "os_compute_api:os-flavor-manage:create")?;
    let f = b.flavor;
    check_name("name", &f.name)?;
    let ram = int("ram", &f.ram, 1)?;
    let vcpus = int("vcpus", &f.vcpus, 1)?;
    let disk = int("disk", &f.disk, 0)?;
    let swap = match &f.swap {
        None => 0,
        Some(Value::String(s)) if s.is_empty() => 0,
        Some(v) => int("swap", v, 0)?,
    };
    let ephemeral = f
        .ephemeral
        .as_ref()
        .map(|v| int("OS-FLV-EXT-DATA:ephemeral", v, 0))
        .transpose()?
        .unwrap_or(0);
    if let Some(r) = &f.rxtx_factor {
        if !r.as_f64().is_some_and(|x| x > 0.0) {
            return Err(ComputeError::bad(
                "Invalid input for field/attribute rxtx_factor.",
            ));
        }
    }
    if let Some(d) = &f.description {
        if d.chars().count() > 65535 {
            return Err(ComputeError::bad(
                "Invalid input for field/attribute description.",
            ));
        }
    }
    let is_public = match &f.is_public {
        None | Some(Value::Null) => true,
        Some(v) => boolean("os-flavor-access:is_public", v)?,
    };
    let id = match f.id {
        None | Some(Value::Null) => ids::uuid_id(),
        Some(Value::Number(n)) if n.as_u64().is_some() => n.to_string(),
        Some(Value::String(id))
            if !id.is_empty()
                && id.len() <= 255
                && id
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "-_. ".contains(ch))
                && id.trim() == id =>
        {
            id
        }
        Some(_) => return Err(ComputeError::bad("Invalid input for field/attribute id.")),
    };
    let dup: Option<(String,)> =
        sqlx::query_as("SELECT id FROM flavors WHERE id = $1 OR name = $2")
            .bind(&id)
            .bind(&f.name)
            .fetch_optional(s.pool())
            .await?;
    if dup.is_some() {
        return Err(ComputeError::Conflict(format!(
            "Flavor with name {} or ID {id} already exists.",
            f.name
        )));
    }
    let row = Flavor {
        id,
        name: f.name,
        vcpus,
        ram,
        disk,
        ephemeral,
        swap,
        is_public: flag(is_public),
        disabled: 0,
        description: f.description,
        extra_specs: "{}".into(),
    };
    sqlx::query(
        "INSERT INTO flavors (id, name, vcpus, ram, disk, ephemeral, swap, is_public, disabled, description, extra_specs, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, '{}', $10)",
    )
    .bind(&row.id)
    .bind(&row.name)
    .bind(row.vcpus)
    .bind(row.ram)
    .bind(row.disk)
    .bind(row.ephemeral)
    .bind(row.swap)
    .bind(row.is_public)
    .bind(row.description.clone())
    .bind(time::now_micros())
    .execute(s.pool())
    .await?;
    tracing::info!(flavor_id = %row.id, "flavor created");
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"flavor": render::flavor(&row, c.version, &s.base_url, true)}),
    ))
}

#[derive(Deserialize)]
pub struct UpdateBody {
    flavor: UpdateFields,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateFields {
    description: Option<String>,
}

pub async fn update(
    St(s): St<State>,
    c: Ctx,
    Path(id): Path<String>,
    Body(b): Body<UpdateBody>,
) -> Result<Response> {
    require_admin(&c, "os_compute_api:os-flavor-manage:update")?;
    if !c.version.at_least(55) {
        return Err(ComputeError::NotFound(
            "The resource could not be found.".into(),
        ));
    }
    let mut f = find(&s, &c, &id).await?;
    f.description = b.flavor.description;
    sqlx::query("UPDATE flavors SET description = $1 WHERE id = $2")
        .bind(f.description.clone())
        .bind(&id)
        .execute(s.pool())
        .await?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"flavor": render::flavor(&f, c.version, &s.base_url, true)}),
    ))
}

pub async fn delete(St(s): St<State>, c: Ctx, Path(id): Path<String>) -> Result<Response> {
    require_admin(&c, "os_compute_api:os-flavor-manage:delete")?;
    find(&s, &c, &id).await?;
    let mut tx = s.pool().begin().await?;
    sqlx::query("DELETE FROM flavor_access WHERE flavor_id = $1")
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM flavors WHERE id = $1")
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(empty(StatusCode::ACCEPTED, c.version))
}

async fn save_specs(s: &ComputeService, id: &str, specs: &Map<String, Value>) -> Result<()> {
    sqlx::query("UPDATE flavors SET extra_specs = $1 WHERE id = $2")
        .bind(serde_json::to_string(specs).unwrap_or_else(|_| "{}".into()))
        .bind(id)
        .execute(s.pool())
        .await?;
    Ok(())
}

fn check_spec(k: &str, v: &Value) -> Result<String> {
    if k.is_empty()
        || k.len() > 255
        || !k
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_:. ".contains(c))
    {
        return Err(ComputeError::bad(format!("Invalid extra spec key {k:?}.")));
    }
    match v {
        Value::String(s) if s.len() <= 255 => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(ComputeError::bad(format!(
            "Invalid value for extra spec {k}: a string of at most 255 characters."
        ))),
    }
}

pub async fn list_specs(St(s): St<State>, c: Ctx, Path(id): Path<String>) -> Result<Response> {
    let f = find(&s, &c, &id).await?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"extra_specs": f.specs()}),
    ))
}

#[derive(Deserialize)]
pub struct SpecsBody {
    extra_specs: Map<String, Value>,
}

pub async fn set_specs(
    St(s): St<State>,
    c: Ctx,
    Path(id): Path<String>,
    Body(b): Body<SpecsBody>,
) -> Result<Response> {
    require_admin(&c, "os_compute_api:os-flavor-extra-specs:create")?;
    let f = find(&s, &c, &id).await?;
    let mut specs = f.specs();
    for (k, v) in &b.extra_specs {
        specs.insert(k.clone(), json!(check_spec(k, v)?));
    }
    save_specs(&s, &id, &specs).await?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"extra_specs": b.extra_specs}),
    ))
}

pub async fn show_spec(
    St(s): St<State>,
    c: Ctx,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response> {
    let f = find(&s, &c, &id).await?;
    let v = f.specs().get(&key).cloned().ok_or_else(|| {
        ComputeError::NotFound(format!("Flavor {id} has no extra specs with key {key}."))
    })?;
    Ok(reply(StatusCode::OK, c.version, json!({ key: v })))
}

pub async fn put_spec(
    St(s): St<State>,
    c: Ctx,
    Path((id, key)): Path<(String, String)>,
    Body(b): Body<Map<String, Value>>,
) -> Result<Response> {
    require_admin(&c, "os_compute_api:os-flavor-extra-specs:update")?;
    let f = find(&s, &c, &id).await?;
    if b.len() != 1 || !b.contains_key(&key) {
        return Err(ComputeError::bad("Request body and URI mismatch"));
    }
    let mut specs = f.specs();
    let v = check_spec(&key, &b[&key])?;
    specs.insert(key.clone(), json!(v));
    save_specs(&s, &id, &specs).await?;
    Ok(reply(StatusCode::OK, c.version, json!({ key: v })))
}

pub async fn delete_spec(
    St(s): St<State>,
    c: Ctx,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response> {
    require_admin(&c, "os_compute_api:os-flavor-extra-specs:delete")?;
    let f = find(&s, &c, &id).await?;
    let mut specs = f.specs();
    if specs.remove(&key).is_none() {
        return Err(ComputeError::NotFound(format!(
            "Flavor {id} has no extra specs with key {key}."
        )));
    }
    save_specs(&s, &id, &specs).await?;
    Ok(empty(StatusCode::OK, c.version))
}

pub async fn list_access(St(s): St<State>, c: Ctx, Path(id): Path<String>) -> Result<Response> {
    require_admin(&c, "os_compute_api:os-flavor-access")?;
    let f = find(&s, &c, &id).await?;
    if f.is_public != 0 {
        return Err(ComputeError::NotFound(
            "Access list not available for public flavors.".into(),
        ));
    }
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT project_id FROM flavor_access WHERE flavor_id = $1 ORDER BY project_id",
    )
    .bind(&id)
    .fetch_all(s.pool())
    .await?;
    let items: Vec<Value> = rows
        .into_iter()
        .map(|(p,)| json!({"flavor_id": id, "tenant_id": p}))
        .collect();
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"flavor_access": items}),
    ))
}

pub async fn action(
    St(s): St<State>,
    c: Ctx,
    Path(id): Path<String>,
    Body(b): Body<Map<String, Value>>,
) -> Result<Response> {
    require_admin(&c, "os_compute_api:os-flavor-access:add_tenant_access")?;
    let f = find(&s, &c, &id).await?;
    if f.is_public != 0 {
        return Err(ComputeError::Conflict(
            "Can not add access to a public flavor.".into(),
        ));
    }
    let (name, arg) = b
        .iter()
        .next()
        .ok_or_else(|| ComputeError::bad("An action is required."))?;
    let tenant = arg["tenant"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ComputeError::bad("'tenant' is required."))?;
    match name.as_str() {
        "addTenantAccess" => {
            let dup: Option<(String,)> = sqlx::query_as(
                "SELECT flavor_id FROM flavor_access WHERE flavor_id = $1 AND project_id = $2",
            )
            .bind(&id)
            .bind(tenant)
            .fetch_optional(s.pool())
            .await?;
            if dup.is_some() {
                return Err(ComputeError::Conflict(format!("Flavor access already exists for flavor {id} and project {tenant} combination.")));
            }
            sqlx::query("INSERT INTO flavor_access (flavor_id, project_id) VALUES ($1, $2)")
                .bind(&id)
                .bind(tenant)
                .execute(s.pool())
                .await?;
        }
        "removeTenantAccess" => {
            let n =
                sqlx::query("DELETE FROM flavor_access WHERE flavor_id = $1 AND project_id = $2")
                    .bind(&id)
                    .bind(tenant)
                    .execute(s.pool())
                    .await?
                    .rows_affected();
            if n == 0 {
                return Err(ComputeError::NotFound(format!(
                    "Flavor access not found for {id} / {tenant} combination."
                )));
            }
        }
        other => return Err(ComputeError::bad(format!("Unknown flavor action {other}."))),
    }
    list_access(St(s), c, Path(id)).await
}
