//! Version and extension discovery, quotas, and IP availability.

use std::collections::HashMap;

use axum::extract::{Path, State as S};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{list_reply, one, Body, Ctx, Query, State};
use crate::error::{NetworkError, Result};
use crate::service::DEFAULT_QUOTAS;

pub async fn versions(S(s): S<State>) -> Response {
    axum::Json(json!({"versions": [{"id": "v2.0", "status": "CURRENT",
        "links": [{"rel": "self", "href": format!("{}/v2.0/", s.base_url)}]}]}))
    .into_response()
}

pub async fn resources(S(s): S<State>) -> Response {
    let names = [
        ("network", "networks"),
        ("subnet", "subnets"),
        ("port", "ports"),
        ("router", "routers"),
        ("floatingip", "floatingips"),
        ("security_group", "security-groups"),
        ("security_group_rule", "security-group-rules"),
        ("quota", "quotas"),
        ("network_ip_availability", "network-ip-availabilities"),
    ];
    let list: Vec<Value> = names
        .iter()
        .map(|(name, coll)| {
            json!({"name": name, "collection": coll,
            "links": [{"rel": "self", "href": format!("{}/v2.0/{coll}", s.base_url)}]})
        })
        .collect();
    axum::Json(json!({"resources": list})).into_response()
}

/// What this service implements, by Neutron extension alias. Only what
/// works is listed: clients change behaviour on what they find here (the
/// CLI switches to `update_external_gateways` when it sees
/// `external-gateway-multihoming`, which is deliberately absent).
const EXTENSIONS: &[(&str, &str, &str)] = &[
    ("allowed-address-pairs", "Allowed Address Pairs", "Provides allowed address pairs"),
    ("binding", "Port Binding", "Expose port bindings of a virtual port to external application"),
    ("external-net", "Neutron external network", "Adds external network attribute to network resource."),
    ("ext-gw-mode", "Neutron L3 Configurable external gateway mode", "Extension of the router abstraction for specifying whether SNAT should occur on the external gateway"),
    ("extraroute", "Neutron Extra Route", "Extra routes configuration for L3 router"),
    ("net-mtu", "Network MTU", "Provides MTU attribute for a network resource."),
    ("network-ip-availability", "Network IP Availability", "Provides IP availability data for each network and subnet."),
    ("port-security", "Port Security", "Provides port security"),
    ("project-id", "project_id field enabled", "Extension that indicates that project_id field is enabled."),
    ("provider", "Provider Network", "Expose mapping of virtual networks to physical networks"),
    ("quotas", "Quota management support", "Expose functions for quotas management per project"),
    ("quota_details", "Quota details management support", "Expose functions for quotas usage statistics per project"),
    ("router", "Neutron L3 Router", "Router abstraction for basic L3 forwarding between L2 Neutron networks and access to external networks via a NAT gateway."),
    ("security-group", "security-group", "The security groups extension."),
    ("standard-attr-description", "standard-attr-description", "Extension to add descriptions to standard attributes"),
    ("standard-attr-revisions", "Resource revision numbers", "This extension will display the revision number of neutron resources."),
    ("standard-attr-timestamp", "Resource timestamps", "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes."),
    ("subnet-external-network", "Subnet External Network", "Subnets of external networks are visible to every project, as their networks are."),
];

fn extension_doc(alias: &str, name: &str, description: &str) -> Value {
    json!({"alias": alias, "name": name, "description": description, "updated": "2013-01-20T00:00:00-00:00", "links": []})
}

fn implemented() -> impl Iterator<Item = &'static (&'static str, &'static str, &'static str)> {
    EXTENSIONS.iter()
}

pub async fn extensions(_: Ctx) -> Response {
    let list: Vec<Value> = implemented()
        .map(|(a, n, d)| extension_doc(a, n, d))
        .collect();
    axum::Json(json!({"extensions": list})).into_response()
}

pub async fn extension(_: Ctx, Path(alias): Path<String>) -> Result<Response> {
    match implemented().find(|(a, _, _)| *a == alias) {
        Some((a, n, d)) => Ok(one(StatusCode::OK, "extension", extension_doc(a, n, d))),
        None => Err(NetworkError::not_found(
            "ExtensionNotFound",
            format!("Extension with alias {alias} does not exist"),
        )),
    }
}

fn may_read_quota(ctx: &ferro_common::AuthContext, project: &str) -> Result<()> {
    if ctx.is_admin() || ctx.project_id() == Some(project) {
        Ok(())
    } else {
        Err(ferro_common::Denied {
            action: "get_quota",
        }
        .into())
    }
}

fn require_admin(ctx: &ferro_common::AuthContext, action: &'static str) -> Result<()> {
    if ctx.is_admin() {
        Ok(())
    } else {
        Err(ferro_common::Denied { action }.into())
    }
}

pub async fn quotas_list(S(s): S<State>, Ctx(ctx): Ctx) -> Result<Response> {
    require_admin(&ctx, "get_quota")?;
    let rows: Vec<(String,)> = ferro_store::sqlx::query_as(
        "SELECT DISTINCT project_id FROM network_quotas ORDER BY project_id",
    )
    .fetch_all(s.pool())
    .await?;
    let mut out = Vec::new();
    for (p,) in rows {
        let mut q = json!(s.quotas(&p).await?);
        q["project_id"] = json!(p);
        q["tenant_id"] = json!(p);
        out.push(q);
    }
    Ok(axum::Json(json!({"quotas": out})).into_response())
}

pub async fn quota_show(
    S(s): S<State>,
    Ctx(ctx): Ctx,
    Path(project): Path<String>,
) -> Result<Response> {
    may_read_quota(&ctx, &project)?;
    Ok(one(
        StatusCode::OK,
        "quota",
        json!(s.quotas(&project).await?),
    ))
}

pub async fn quota_default(
    S(_s): S<State>,
    Ctx(ctx): Ctx,
    Path(project): Path<String>,
) -> Result<Response> {
    may_read_quota(&ctx, &project)?;
    let d: HashMap<&str, i64> = DEFAULT_QUOTAS.iter().copied().collect();
    Ok(one(StatusCode::OK, "quota", json!(d)))
}

pub async fn quota_details(
    S(s): S<State>,
    Ctx(ctx): Ctx,
    Path(project): Path<String>,
) -> Result<Response> {
    may_read_quota(&ctx, &project)?;
    let limits = s.quotas(&project).await?;
    let used = s.usage(&project).await?;
    let details: serde_json::Map<String, Value> = limits
        .iter()
        .map(|(k, l)| {
            (
                k.clone(),
                json!({"limit": l, "used": used.get(k).copied().unwrap_or(0), "reserved": 0}),
            )
        })
        .collect();
    Ok(one(StatusCode::OK, "quota", Value::Object(details)))
}

pub async fn quota_update(
    S(s): S<State>,
    Ctx(ctx): Ctx,
    Path(project): Path<String>,
    body: Body,
) -> Result<Response> {
    require_admin(&ctx, "update_quota")?;
    let v = body.object("quota")?;
    let mut values = HashMap::new();
    for (k, val) in v.as_object().into_iter().flatten() {
        if !DEFAULT_QUOTAS.iter().any(|(name, _)| name == k) {
            return Err(NetworkError::bad(format!(
                "Unrecognized attribute(s) '{k}'"
            )));
        }
        let n = val
            .as_i64()
            .or_else(|| val.as_str().and_then(|t| t.parse().ok()))
            .filter(|n| *n >= -1)
            .ok_or_else(|| {
                NetworkError::bad(format!(
                    "Invalid input for {k}. Reason: '{val}' is not an integer >= -1."
                ))
            })?;
        values.insert(k.clone(), n);
    }
    s.set_quotas(&project, &values).await?;
    Ok(one(
        StatusCode::OK,
        "quota",
        json!(s.quotas(&project).await?),
    ))
}

pub async fn quota_reset(
    S(s): S<State>,
    Ctx(ctx): Ctx,
    Path(project): Path<String>,
) -> Result<Response> {
    require_admin(&ctx, "delete_quota")?;
    s.reset_quotas(&project).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn availability_of(s: &State, n: &crate::model::Network) -> Result<Value> {
    let mut subnets = Vec::new();
    let (mut total, mut used) = (0u64, 0u64);
    for sub in s.network_subnets(&n.id).await? {
        let t: u64 = sub
            .pools()
            .iter()
            .filter_map(|p| {
                let a: std::net::Ipv4Addr = p.start.parse().ok()?;
                let b: std::net::Ipv4Addr = p.end.parse().ok()?;
                Some(u64::from(u32::from(b)).saturating_sub(u64::from(u32::from(a))) + 1)
            })
            .sum();
        let (u,): (i64,) =
            ferro_store::sqlx::query_as("SELECT COUNT(*) FROM ip_allocations WHERE subnet_id = $1")
                .bind(&sub.id)
                .fetch_one(s.pool())
                .await?;
        total += t;
        used += u as u64;
        subnets.push(
            json!({"subnet_id": sub.id, "subnet_name": sub.name, "cidr": sub.cidr, "ip_version": 4,
                            "total_ips": t, "used_ips": u}),
        );
    }
    Ok(
        json!({"network_id": n.id, "network_name": n.name, "project_id": n.project_id, "tenant_id": n.project_id,
              "total_ips": total, "used_ips": used, "subnet_ip_availability": subnets}),
    )
}

pub async fn availabilities(S(s): S<State>, Ctx(ctx): Ctx, q: Query) -> Result<Response> {
    require_admin(&ctx, "get_network_ip_availability")?;
    let mut items = Vec::new();
    for n in s.networks(&ctx).await? {
        items.push(availability_of(&s, &n).await?);
    }
    Ok(list_reply(&s, "network_ip_availabilities", items, &q))
}

pub async fn availability(
    S(s): S<State>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> Result<Response> {
    require_admin(&ctx, "get_network_ip_availability")?;
    let n = s.visible_network(&ctx, &id).await?;
    Ok(one(
        StatusCode::OK,
        "network_ip_availability",
        availability_of(&s, &n).await?,
    ))
}

fn agent_view(a: &crate::service::Agent) -> Value {
    let ts = |m: i64| {
        ferro_common::time::iso_seconds(m)
            .trim_end_matches('Z')
            .replace('T', " ")
    };
    json!({
        "id": a.id, "agent_type": a.agent_type, "binary": a.binary, "topic": a.topic,
        "host": a.host, "admin_state_up": true, "alive": a.alive,
        "availability_zone": a.availability_zone, "configurations": {},
        "created_at": ts(a.started_at), "started_at": ts(a.started_at),
        "heartbeat_timestamp": ts(a.heartbeat_at), "description": null,
        "resources_synced": null, "ha_state": null,
    })
}

/// `GET /v2.0/agents`: every agent for an admin; for anyone else an empty
/// list (Neutron's policy filters the items a caller may not see, so the
/// list itself is not refused).
pub async fn agents(S(s): S<State>, Ctx(ctx): Ctx, q: Query) -> Result<Response> {
    let items = if ctx.is_admin() {
        s.agents().await?.iter().map(agent_view).collect()
    } else {
        Vec::new()
    };
    Ok(list_reply(&s, "agents", items, &q))
}

pub async fn agent(S(s): S<State>, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    require_admin(&ctx, "get_agent")?;
    let a = s
        .agents()
        .await?
        .into_iter()
        .find(|a| a.id == id)
        .ok_or_else(|| {
            NetworkError::not_found("AgentNotFound", format!("Agent {id} could not be found."))
        })?;
    Ok(one(StatusCode::OK, "agent", agent_view(&a)))
}
