//! Regions, services and endpoints: the catalog that tells clients where
//! each API lives.

use axum::extract::{Path, State as St};
use axum::response::Response;
use ferro_common::{ids, time};
use ferro_store::{flag, sqlx};
use serde::Deserialize;
use serde_json::json;

use super::{
    check_name, check_text, created, list_body, no_content, ok, Body, Caller, Params, State,
};
use crate::error::{IdentityError, Result};
use crate::model::{Endpoint, Region, Service};
use crate::policy::{self, authorize};
use crate::service::Identity;
use crate::store::{self, Filter};

// ---- regions ----

#[derive(Deserialize)]
pub struct RegionBody {
    region: RegionFields,
}

#[derive(Deserialize)]
pub struct RegionFields {
    id: Option<String>,
    description: Option<String>,
    parent_region_id: Option<String>,
}

async fn region_or_404(s: &Identity, id: &str) -> Result<Region> {
    store::get(s.pool(), "regions", id)
        .await?
        .ok_or_else(|| IdentityError::not_found("region", id))
}

pub async fn list_regions(St(s): St<State>, Caller(c): Caller, p: Params) -> Result<Response> {
    authorize(&c.ctx, policy::READ_CATALOG, Default::default())?;
    let f = Filter::default().text("parent_region_id", p.get("parent_region_id"));
    let base = s.base_url();
    let items = store::list::<Region>(s.pool(), "regions", f, "id").await?;
    Ok(ok(list_body(
        "regions",
        items.iter().map(|r| r.render(&base)).collect(),
        format!("{base}/regions"),
    )))
}

pub async fn create_region(
    St(s): St<State>,
    Caller(c): Caller,
    Body(b): Body<RegionBody>,
) -> Result<Response> {
    let id = b.region.id.clone().unwrap_or_else(ids::hex_id);
    make_region(&s, &c, id, b.region).await
}

/// `PUT /v3/regions/{id}`: a region with the id chosen by the caller.
pub async fn put_region(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
    Body(b): Body<RegionBody>,
) -> Result<Response> {
    if b.region.id.as_ref().is_some_and(|given| *given != id) {
        return Err(IdentityError::bad(
            "The region id in the body must match the one in the URL.",
        ));
    }
    make_region(&s, &c, id, b.region).await
}

async fn make_region(
    s: &Identity,
    c: &super::Resolved,
    id: String,
    f: RegionFields,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_CATALOG, Default::default())?;
    check_name("id", &id, 255)?;
    let description = f.description.unwrap_or_default();
    check_text("description", &description)?;
    if let Some(p) = &f.parent_region_id {
        region_or_404(s, p)
            .await
            .map_err(|_| IdentityError::bad(format!("Could not find parent region: {p}.")))?;
    }
    if store::get::<Region>(s.pool(), "regions", &id)
        .await?
        .is_some()
    {
        return Err(IdentityError::Conflict {
            kind: "region",
            detail: format!("Duplicate ID, {id}"),
        });
    }
    let row = Region {
        id,
        description,
        parent_region_id: f.parent_region_id,
    };
    insert_region(s, &row).await?;
    Ok(created(json!({"region": row.render(&s.base_url())})))
}

pub(crate) async fn insert_region(s: &Identity, row: &Region) -> Result<()> {
    sqlx::query("INSERT INTO regions (id, description, parent_region_id, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&row.id)
        .bind(&row.description)
        .bind(row.parent_region_id.clone())
        .bind(time::now_micros())
        .execute(s.pool())
        .await?;
    Ok(())
}

pub async fn get_region(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    authorize(&c.ctx, policy::READ_CATALOG, Default::default())?;
    Ok(ok(
        json!({"region": region_or_404(&s, &id).await?.render(&s.base_url())}),
    ))
}

pub async fn update_region(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
    Body(b): Body<RegionBody>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_CATALOG, Default::default())?;
    let mut row = region_or_404(&s, &id).await?;
    if let Some(d) = b.region.description {
        check_text("description", &d)?;
        row.description = d;
    }
    if let Some(p) = b.region.parent_region_id {
        if p == id {
            return Err(IdentityError::bad("A region cannot be its own parent."));
        }
        region_or_404(&s, &p)
            .await
            .map_err(|_| IdentityError::bad(format!("Could not find parent region: {p}.")))?;
        row.parent_region_id = Some(p);
    }
    sqlx::query("UPDATE regions SET description = $1, parent_region_id = $2 WHERE id = $3")
        .bind(&row.description)
        .bind(row.parent_region_id.clone())
        .bind(&row.id)
        .execute(s.pool())
        .await?;
    Ok(ok(json!({"region": row.render(&s.base_url())})))
}

pub async fn delete_region(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_CATALOG, Default::default())?;
    region_or_404(&s, &id).await?;
    let used: Vec<Endpoint> = store::list(
        s.pool(),
        "endpoints",
        Filter::default().text("region_id", Some(&id)),
        "id",
    )
    .await?;
    let children: Vec<Region> = store::list(
        s.pool(),
        "regions",
        Filter::default().text("parent_region_id", Some(&id)),
        "id",
    )
    .await?;
    if !used.is_empty() || !children.is_empty() {
        return Err(IdentityError::ForbiddenWith(
            "Cannot delete a region that has endpoints or child regions.".into(),
        ));
    }
    store::delete(s.pool(), "regions", &id).await?;
    Ok(no_content())
}

// ---- services ----

#[derive(Deserialize)]
pub struct ServiceBody {
    service: ServiceFields,
}

#[derive(Deserialize)]
pub struct ServiceFields {
    #[serde(rename = "type")]
    kind: Option<String>,
    name: Option<String>,
    description: Option<String>,
    enabled: Option<bool>,
}

async fn service_or_404(s: &Identity, id: &str) -> Result<Service> {
    store::get(s.pool(), "services", id)
        .await?
        .ok_or_else(|| IdentityError::not_found("service", id))
}

pub async fn list_services(St(s): St<State>, Caller(c): Caller, p: Params) -> Result<Response> {
    authorize(&c.ctx, policy::READ_CATALOG, Default::default())?;
    let f = Filter::default()
        .text("type", p.get("type"))
        .text("name", p.get("name"));
    let base = s.base_url();
    let items = store::list::<Service>(s.pool(), "services", f, "type").await?;
    Ok(ok(list_body(
        "services",
        items.iter().map(|x| x.render(&base)).collect(),
        format!("{base}/services"),
    )))
}

pub async fn create_service(
    St(s): St<State>,
    Caller(c): Caller,
    Body(b): Body<ServiceBody>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_CATALOG, Default::default())?;
    let f = b.service;
    let kind = f.kind.ok_or_else(|| {
        IdentityError::bad("Invalid input for field 'type': 'type' is a required property.")
    })?;
    check_name("type", &kind, 255)?;
    let name = f.name.unwrap_or_default();
    if !name.is_empty() {
        check_name("name", &name, 255)?;
    }
    let description = f.description.unwrap_or_default();
    check_text("description", &description)?;
    let row = Service {
        id: ids::hex_id(),
        kind,
        name,
        description,
        enabled: flag(f.enabled.unwrap_or(true)),
    };
    sqlx::query(
        "INSERT INTO services (id, type, name, description, enabled, managed, created_at) VALUES ($1, $2, $3, $4, $5, 0, $6)",
    )
    .bind(&row.id)
    .bind(&row.kind)
    .bind(&row.name)
    .bind(&row.description)
    .bind(row.enabled)
    .bind(time::now_micros())
    .execute(s.pool())
    .await?;
    s.invalidate();
    Ok(created(json!({"service": row.render(&s.base_url())})))
}

pub async fn get_service(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    authorize(&c.ctx, policy::READ_CATALOG, Default::default())?;
    Ok(ok(
        json!({"service": service_or_404(&s, &id).await?.render(&s.base_url())}),
    ))
}

pub async fn update_service(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
    Body(b): Body<ServiceBody>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_CATALOG, Default::default())?;
    let mut row = service_or_404(&s, &id).await?;
    let f = b.service;
    if let Some(k) = f.kind {
        check_name("type", &k, 255)?;
        row.kind = k;
    }
    if let Some(n) = f.name {
        check_name("name", &n, 255)?;
        row.name = n;
    }
    if let Some(d) = f.description {
        check_text("description", &d)?;
        row.description = d;
    }
    if let Some(e) = f.enabled {
        row.enabled = flag(e);
    }
    sqlx::query(
        "UPDATE services SET type = $1, name = $2, description = $3, enabled = $4 WHERE id = $5",
    )
    .bind(&row.kind)
    .bind(&row.name)
    .bind(&row.description)
    .bind(row.enabled)
    .bind(&row.id)
    .execute(s.pool())
    .await?;
    s.invalidate();
    Ok(ok(json!({"service": row.render(&s.base_url())})))
}

pub async fn delete_service(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_CATALOG, Default::default())?;
    service_or_404(&s, &id).await?;
    let mut tx = s.pool().begin().await?;
    sqlx::query("DELETE FROM endpoints WHERE service_id = $1")
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM services WHERE id = $1")
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    s.invalidate();
    Ok(no_content())
}

// ---- endpoints ----

#[derive(Deserialize)]
pub struct EndpointBody {
    endpoint: EndpointFields,
}

#[derive(Deserialize)]
pub struct EndpointFields {
    service_id: Option<String>,
    interface: Option<String>,
    url: Option<String>,
    region_id: Option<String>,
    region: Option<String>,
    enabled: Option<bool>,
}

fn check_interface(i: &str) -> Result<()> {
    if matches!(i, "public" | "internal" | "admin") {
        Ok(())
    } else {
        Err(IdentityError::bad(format!(
            "Invalid interface {i:?}: use public, internal or admin."
        )))
    }
}

fn check_url(u: &str) -> Result<()> {
    if (u.starts_with("http://") || u.starts_with("https://"))
        && u.len() <= 2048
        && !u.chars().any(char::is_whitespace)
    {
        Ok(())
    } else {
        Err(IdentityError::bad(format!("Invalid endpoint URL {u:?}.")))
    }
}

/// The region an endpoint names, made when missing (Keystone makes it, so
/// an endpoint can be created before its region).
async fn ensure_region(s: &Identity, id: &str) -> Result<()> {
    check_name("region_id", id, 255)?;
    if store::get::<Region>(s.pool(), "regions", id)
        .await?
        .is_none()
    {
        let row = Region {
            id: id.to_owned(),
            description: String::new(),
            parent_region_id: None,
        };
        insert_region(s, &row).await?;
        tracing::info!(region = %id, "region created for an endpoint");
    }
    Ok(())
}

async fn endpoint_or_404(s: &Identity, id: &str) -> Result<Endpoint> {
    store::get(s.pool(), "endpoints", id)
        .await?
        .ok_or_else(|| IdentityError::not_found("endpoint", id))
}

pub async fn list_endpoints(St(s): St<State>, Caller(c): Caller, p: Params) -> Result<Response> {
    authorize(&c.ctx, policy::READ_CATALOG, Default::default())?;
    let f = Filter::default()
        .text("interface", p.get("interface"))
        .text("service_id", p.get("service_id"))
        .text("region_id", p.get("region_id"));
    let base = s.base_url();
    let items = store::list::<Endpoint>(s.pool(), "endpoints", f, "service_id, interface").await?;
    Ok(ok(list_body(
        "endpoints",
        items.iter().map(|x| x.render(&base)).collect(),
        format!("{base}/endpoints"),
    )))
}

pub async fn create_endpoint(
    St(s): St<State>,
    Caller(c): Caller,
    Body(b): Body<EndpointBody>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_CATALOG, Default::default())?;
    let f = b.endpoint;
    let service_id = f
        .service_id
        .ok_or_else(|| IdentityError::bad("'service_id' is a required property."))?;
    let interface = f
        .interface
        .ok_or_else(|| IdentityError::bad("'interface' is a required property."))?;
    let url = f
        .url
        .ok_or_else(|| IdentityError::bad("'url' is a required property."))?;
    check_interface(&interface)?;
    check_url(&url)?;
    service_or_404(&s, &service_id)
        .await
        .map_err(|_| IdentityError::bad(format!("Could not find service: {service_id}.")))?;
    let region_id = f.region_id.or(f.region);
    if let Some(r) = &region_id {
        ensure_region(&s, r).await?;
    }
    let row = Endpoint {
        id: ids::hex_id(),
        service_id,
        interface,
        region_id,
        url,
        enabled: flag(f.enabled.unwrap_or(true)),
    };
    sqlx::query(
        "INSERT INTO endpoints (id, service_id, interface, region_id, url, enabled, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&row.id)
    .bind(&row.service_id)
    .bind(&row.interface)
    .bind(row.region_id.clone())
    .bind(&row.url)
    .bind(row.enabled)
    .bind(time::now_micros())
    .execute(s.pool())
    .await?;
    s.invalidate();
    Ok(created(json!({"endpoint": row.render(&s.base_url())})))
}

pub async fn get_endpoint(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    authorize(&c.ctx, policy::READ_CATALOG, Default::default())?;
    Ok(ok(
        json!({"endpoint": endpoint_or_404(&s, &id).await?.render(&s.base_url())}),
    ))
}

pub async fn update_endpoint(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
    Body(b): Body<EndpointBody>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_CATALOG, Default::default())?;
    let mut row = endpoint_or_404(&s, &id).await?;
    let f = b.endpoint;
    if let Some(i) = f.interface {
        check_interface(&i)?;
        row.interface = i;
    }
    if let Some(u) = f.url {
        check_url(&u)?;
        row.url = u;
    }
    if let Some(sid) = f.service_id {
        service_or_404(&s, &sid)
            .await
            .map_err(|_| IdentityError::bad(format!("Could not find service: {sid}.")))?;
        row.service_id = sid;
    }
    if let Some(r) = f.region_id.or(f.region) {
        ensure_region(&s, &r).await?;
        row.region_id = Some(r);
    }
    if let Some(e) = f.enabled {
        row.enabled = flag(e);
    }
    sqlx::query("UPDATE endpoints SET service_id = $1, interface = $2, region_id = $3, url = $4, enabled = $5 WHERE id = $6")
        .bind(&row.service_id)
        .bind(&row.interface)
        .bind(row.region_id.clone())
        .bind(&row.url)
        .bind(row.enabled)
        .bind(&row.id)
        .execute(s.pool())
        .await?;
    s.invalidate();
    Ok(ok(json!({"endpoint": row.render(&s.base_url())})))
}

pub async fn delete_endpoint(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_CATALOG, Default::default())?;
    endpoint_or_404(&s, &id).await?;
    store::delete(s.pool(), "endpoints", &id).await?;
    s.invalidate();
    Ok(no_content())
}
