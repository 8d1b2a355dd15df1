//! The Placement API, read side: resource providers (one per compute host),
//! their inventories and usages, allocations by consumer, and allocation
//! candidates. Writes happen through the scheduler's claims.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State as St};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferro_common::auth::{token_of, SharedAuth};
use ferro_store::{sqlx, Db};
use serde_json::{json, Map, Value};

use crate::inventory::{self, HostRow};

pub struct Placement {
    pub db: Db,
    pub auth: SharedAuth,
    pub base_url: String,
}

type State = Arc<Placement>;

pub fn router(state: State) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/resource_providers", get(providers))
        .route("/resource_providers/{uuid}", get(provider))
        .route("/resource_providers/{uuid}/inventories", get(inventories))
        .route("/resource_providers/{uuid}/usages", get(usages))
        .route("/allocations/{consumer}", get(allocations))
        .route("/allocation_candidates", get(candidates))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "The resource could not be found.") })
        .with_state(state)
}

fn error(status: StatusCode, detail: &str) -> Response {
    let body = json!({"errors": [{"status": status.as_u16(), "title": status.canonical_reason().unwrap_or(""),
                                   "detail": detail, "code": "placement.undefined_code"}]});
    (status, axum::Json(body)).into_response()
}

fn internal(e: sqlx::Error) -> Response {
    tracing::error!(error = %e, "placement query failed");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "An internal error occurred.",
    )
}

/// Placement is an admin API.
async fn admin(s: &Placement, headers: &HeaderMap) -> Result<(), Response> {
    let Some(token) = token_of(headers) else {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "The request you have made requires authentication.",
        ));
    };
    match s.auth.authenticate(token).await {
        Some(c) if c.is_admin() => Ok(()),
        Some(_) => Err(error(
            StatusCode::FORBIDDEN,
            "Policy does not allow placement to be accessed.",
        )),
        None => Err(error(
            StatusCode::UNAUTHORIZED,
            "The request you have made requires authentication.",
        )),
    }
}

fn ok(v: Value) -> Response {
    let mut r = (StatusCode::OK, axum::Json(v)).into_response();
    r.headers_mut().insert(
        "openstack-api-version",
        "placement 1.0".parse().expect("static header"),
    );
    r
}

async fn root(St(s): St<State>) -> Response {
    ok(
        json!({"versions": [{"id": "v1.0", "min_version": "1.0", "max_version": "1.0", "status": "CURRENT",
        "links": [{"rel": "self", "href": format!("{}/", s.base_url)}]}]}),
    )
}

fn provider_json(h: &HostRow) -> Value {
    json!({"uuid": h.hypervisor_id, "name": h.name, "generation": h.generation,
           "parent_provider_uuid": null, "root_provider_uuid": h.hypervisor_id,
           "links": [{"rel": "self", "href": format!("/resource_providers/{}", h.hypervisor_id)}]})
}

fn inventory_json(h: &HostRow) -> Value {
    let inv = |total: i64, reserved: i64, ratio: i64| {
        json!({"total": total, "reserved": reserved, "min_unit": 1, "max_unit": total, "step_size": 1,
               "allocation_ratio": ratio as f64 / 1000.0})
    };
    json!({"VCPU": inv(h.vcpus, 0, h.cpu_ratio_milli),
           "MEMORY_MB": inv(h.memory_mb, h.reserved_ram_mb, h.ram_ratio_milli),
           "DISK_GB": inv(h.disk_gb, 0, h.disk_ratio_milli)})
}

async fn providers(St(s): St<State>, headers: HeaderMap) -> Response {
    if let Err(r) = admin(&s, &headers).await {
        return r;
    }
    match inventory::hosts(s.db.pool()).await {
        Ok(hosts) => {
            ok(json!({"resource_providers": hosts.iter().map(provider_json).collect::<Vec<_>>()}))
        }
        Err(e) => internal(e),
    }
}

async fn one(s: &Placement, headers: &HeaderMap, uuid: &str) -> Result<HostRow, Response> {
    admin(s, headers).await?;
    match inventory::host_by_provider(s.db.pool(), uuid).await {
        Ok(Some(h)) => Ok(h),
        Ok(None) => Err(error(
            StatusCode::NOT_FOUND,
            &format!("No resource provider with uuid {uuid} found"),
        )),
        Err(e) => Err(internal(e)),
    }
}

async fn provider(St(s): St<State>, headers: HeaderMap, Path(uuid): Path<String>) -> Response {
    match one(&s, &headers, &uuid).await {
        Ok(h) => ok(provider_json(&h)),
        Err(r) => r,
    }
}

async fn inventories(St(s): St<State>, headers: HeaderMap, Path(uuid): Path<String>) -> Response {
    match one(&s, &headers, &uuid).await {
        Ok(h) => ok(
            json!({"inventories": inventory_json(&h), "resource_provider_generation": h.generation}),
        ),
        Err(r) => r,
    }
}

async fn usages(St(s): St<State>, headers: HeaderMap, Path(uuid): Path<String>) -> Response {
    match one(&s, &headers, &uuid).await {
        Ok(h) => ok(
            json!({"usages": {"VCPU": h.vcpus_used, "MEMORY_MB": h.memory_used_mb, "DISK_GB": h.disk_used_gb},
                           "resource_provider_generation": h.generation}),
        ),
        Err(r) => r,
    }
}

async fn allocations(
    St(s): St<State>,
    headers: HeaderMap,
    Path(consumer): Path<String>,
) -> Response {
    if let Err(r) = admin(&s, &headers).await {
        return r;
    }
    type Row = (String, i64, i64, i64, String, String);
    let row: Result<Option<Row>, _> = sqlx::query_as(
        "SELECT h.hypervisor_id, a.vcpu, a.memory_mb, a.disk_gb, a.project_id, a.user_id FROM allocations a \
         JOIN hosts h ON h.name = a.host WHERE a.consumer_id = $1",
    )
    .bind(&consumer)
    .fetch_optional(s.db.pool())
    .await;
    match row {
        Ok(Some((rp, v, m, d, project, user))) => ok(json!({
            "allocations": {rp: {"resources": {"VCPU": v, "MEMORY_MB": m, "DISK_GB": d}}},
            "project_id": project, "user_id": user})),
        Ok(None) => ok(json!({"allocations": {}})),
        Err(e) => internal(e),
    }
}

/// `?resources=VCPU:1,MEMORY_MB:512,DISK_GB:1`
async fn candidates(St(s): St<State>, headers: HeaderMap, uri: axum::http::Uri) -> Response {
    if let Err(r) = admin(&s, &headers).await {
        return r;
    }
    let q: HashMap<String, String> = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let Some(spec) = q.get("resources") else {
        return error(
            StatusCode::BAD_REQUEST,
            "The 'resources' parameter is required.",
        );
    };
    let mut want: Map<String, Value> = Map::new();
    let mut req = crate::scheduler::Request::default();
    for part in spec.split(',') {
        let Some((class, amount)) = part.split_once(':') else {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("Badly formed resources parameter: {part}"),
            );
        };
        let Ok(n) = amount.parse::<i64>() else {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("Badly formed resources parameter: {part}"),
            );
        };
        if n < 1 {
            return error(
                StatusCode::BAD_REQUEST,
                "Resource amounts must be positive integers.",
            );
        }
        match class {
            "VCPU" => req.vcpus = n,
            "MEMORY_MB" => req.memory_mb = n,
            "DISK_GB" => req.disk_gb = n,
            other => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("Invalid resource class in resources parameter: {other}"),
                )
            }
        }
        want.insert(class.to_owned(), json!(n));
    }
    let hosts = match inventory::hosts(s.db.pool()).await {
        Ok(h) => h,
        Err(e) => return internal(e),
    };
    // Candidates are about capacity only: enabled/up are the scheduler's concern.
    let states: Vec<_> = hosts
        .iter()
        .map(|h| {
            let mut st = h.state(0, i64::MAX);
            st.enabled = true;
            st.up = true;
            st
        })
        .collect();
    let fit = crate::scheduler::schedule(&states, &req).unwrap_or_default();
    // By name, once: a scan per candidate was quadratic in the hosts.
    let by_name: HashMap<&str, &HostRow> = hosts.iter().map(|h| (h.name.as_str(), h)).collect();
    let mut requests = Vec::new();
    let mut summaries = Map::new();
    for st in fit {
        if let Some(h) = by_name.get(st.name.as_str()) {
            requests.push(json!({"allocations": {h.hypervisor_id.clone(): {"resources": want}}}));
            summaries.insert(
                h.hypervisor_id.clone(),
                json!({"resources": {
                    "VCPU": {"capacity": h.vcpus * h.cpu_ratio_milli / 1000, "used": h.vcpus_used},
                    "MEMORY_MB": {"capacity": (h.memory_mb - h.reserved_ram_mb) * h.ram_ratio_milli / 1000, "used": h.memory_used_mb},
                    "DISK_GB": {"capacity": h.disk_gb * h.disk_ratio_milli / 1000, "used": h.disk_used_gb}}}),
            );
        }
    }
    ok(json!({"allocation_requests": requests, "provider_summaries": summaries}))
}
