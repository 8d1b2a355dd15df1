//! Nova's security group proxy (`/os-security-groups`,
//! `/os-security-group-rules`), removed at microversion 2.36 and still what
//! older clients call: the network service's groups in Nova's shape, with
//! Nova's checks (names and descriptions are non-empty strings; a rule is
//! TCP, UDP or ICMP with ports that fit it) and Nova's answers (deletes
//! are 202; what Neutron refuses as a conflict is 400 here).

use axum::extract::{Path, State as St};
use axum::http::StatusCode;
use axum::response::Response;
use ferro_network::service::{RuleCreate, SecurityGroupCreate};
use serde_json::{json, Value};

use super::server_network::{nova_group, nova_rule, remote_group_names};
use super::{empty, gone_at, network_error, reply, Body, Ctx, Params, State};
use crate::error::{ComputeError, Result};
use crate::service::ComputeService;

fn bad(m: impl Into<String>) -> ComputeError {
    ComputeError::BadRequest(m.into())
}

/// A group's id as Nova takes it: a UUID.
fn check_id(id: &str) -> Result<()> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(bad(format!("Security group id should be uuid: {id}")));
    }
    Ok(())
}

/// A group's `name` or `description`: a string, not blank, at most 255.
fn property(body: &Value, key: &str) -> Result<String> {
    let Some(v) = body.get(key) else {
        return Err(bad(format!("Security group {key} is required.")));
    };
    let Some(text) = v.as_str() else {
        return Err(bad(format!(
            "Security group {key} is not a string or unicode"
        )));
    };
    if text.trim().is_empty() {
        return Err(bad(format!("Security group {key} cannot be empty.")));
    }
    if text.trim().chars().count() > 255 {
        return Err(bad(format!(
            "Security group {key} should not be greater than 255 characters."
        )));
    }
    // (checked trimmed, kept as given: Nova's proxy does the same)
    Ok(text.to_owned())
}

async fn render_groups(
    s: &ComputeService,
    groups: &[ferro_network::model::SecurityGroup],
) -> Result<Vec<Value>> {
    let ids: Vec<String> = groups.iter().map(|g| g.id.clone()).collect();
    let rules = s
        .network
        .rules_of(Some(&ids))
        .await
        .map_err(network_error)?;
    let names = remote_group_names(s, &rules).await?;
    Ok(groups
        .iter()
        .map(|g| {
            let mine: Vec<_> = rules
                .iter()
                .filter(|r| r.security_group_id == g.id)
                .cloned()
                .collect();
            nova_group(g, &mine, &names)
        })
        .collect())
}

async fn one(s: &ComputeService, c: &Ctx, id: &str) -> Result<Value> {
    let g = s
        .network
        .visible_group(&c.auth, id)
        .await
        .map_err(network_error)?;
    Ok(render_groups(s, std::slice::from_ref(&g))
        .await?
        .pop()
        .unwrap_or_default())
}

pub async fn list(St(s): St<State>, c: Ctx, p: Params) -> Result<Response> {
    gone_at(&c, 36)?;
    let all_tenants = p.get("all_tenants").is_some_and(|v| {
        !matches!(
            v.to_ascii_lowercase().as_str(),
            "0" | "false" | "no" | "off"
        )
    });
    let groups = if all_tenants && c.auth.is_admin() {
        s.network.all_groups(&c.auth).await
    } else {
        s.network.groups(&c.auth, p.get("tenant_id")).await
    }
    .map_err(network_error)?;
    let items = render_groups(&s, &groups).await?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"security_groups": items}),
    ))
}

pub async fn show(St(s): St<State>, c: Ctx, Path(id): Path<String>) -> Result<Response> {
    gone_at(&c, 36)?;
    check_id(&id)?;
    let g = one(&s, &c, &id).await?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"security_group": g}),
    ))
}

fn group_body(body: &Value) -> Result<&Value> {
    body.get("security_group")
        .filter(|g| g.is_object())
        .ok_or_else(|| bad("The request body must have 'security_group'."))
}

pub async fn create(St(s): St<State>, c: Ctx, Body(body): Body<Value>) -> Result<Response> {
    gone_at(&c, 36)?;
    let b = group_body(&body)?;
    let req = SecurityGroupCreate {
        name: Some(property(b, "name")?),
        description: Some(property(b, "description")?),
        ..Default::default()
    };
    let g = s
        .network
        .create_group(&c.auth, req)
        .await
        .map_err(network_error)?;
    let shown = one(&s, &c, &g.id).await?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"security_group": shown}),
    ))
}

pub async fn update(
    St(s): St<State>,
    c: Ctx,
    Path(id): Path<String>,
    Body(body): Body<Value>,
) -> Result<Response> {
    gone_at(&c, 36)?;
    check_id(&id)?;
    let b = group_body(&body)?;
    let (name, description) = (property(b, "name")?, property(b, "description")?);
    s.network
        .update_group(&c.auth, &id, Some(name), Some(description))
        .await
        .map_err(network_error)?;
    let shown = one(&s, &c, &id).await?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"security_group": shown}),
    ))
}

pub async fn delete(St(s): St<State>, c: Ctx, Path(id): Path<String>) -> Result<Response> {
    gone_at(&c, 36)?;
    check_id(&id)?;
    let g = s
        .network
        .visible_group(&c.auth, &id)
        .await
        .map_err(network_error)?;
    if g.is_default != 0 {
        return Err(bad("Removing default security group not allowed."));
    }
    s.network
        .delete_group(&c.auth, &id)
        .await
        .map_err(network_error)?;
    Ok(empty(StatusCode::ACCEPTED, c.version))
}

/// A port of a rule: absent, or an integer (given as a number or text).
fn port(v: Option<&Value>, key: &str) -> Result<Option<i64>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| bad(format!("Invalid port {key}: {n}. Port must be an integer."))),
        Some(Value::String(t)) => t
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| bad(format!("Invalid port {key}: {t}. Port must be an integer."))),
        Some(other) => Err(bad(format!(
            "Invalid port {key}: {other}. Port must be an integer."
        ))),
    }
}

/// Nova's rule checks; the Neutron ports of a valid rule.
fn rule_ports(
    protocol: &str,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<(Option<i64>, Option<i64>)> {
    let proto = protocol.to_ascii_uppercase();
    if !["TCP", "UDP", "ICMP"].contains(&proto.as_str()) {
        return Err(bad(format!(
            "Invalid IP protocol {protocol}. The protocol must be tcp, udp or icmp."
        )));
    }
    let (from, to) = match (from, to) {
        (None, None) if proto == "ICMP" => (-1, -1),
        (None, None) => (1, 65535),
        (Some(f), Some(t)) => (f, t),
        _ => {
            return Err(bad(
                "Invalid input: a rule needs both from_port and to_port, or neither.",
            ))
        }
    };
    if proto == "ICMP" {
        if !(-1..=255).contains(&from) || !(-1..=255).contains(&to) {
            return Err(bad(format!(
                "Invalid port range {from}:{to}. For ICMP, the type and code must be -1 to 255."
            )));
        }
        return Ok(((from != -1).then_some(from), (to != -1).then_some(to)));
    }
    if from > to {
        return Err(bad(format!(
            "Invalid port range {from}:{to}. Former value cannot be greater than the later."
        )));
    }
    if from < 1 || to > 65535 {
        return Err(bad(format!(
            "Invalid port range {from}:{to}. Valid TCP ports should be between 1-65535."
        )));
    }
    Ok((Some(from), Some(to)))
}

pub async fn create_rule(St(s): St<State>, c: Ctx, Body(body): Body<Value>) -> Result<Response> {
    gone_at(&c, 36)?;
    let b = body
        .get("security_group_rule")
        .filter(|r| r.is_object())
        .ok_or_else(|| bad("The request body must have 'security_group_rule'."))?;
    let parent = match b.get("parent_group_id") {
        Some(Value::String(p)) => p.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(bad("Invalid input: parent_group_id is required.")),
    };
    check_id(&parent)?;
    let group_id = match b.get("group_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(g)) => {
            check_id(g)?;
            Some(g.clone())
        }
        Some(_) => return Err(bad("Invalid input: group_id must be a security group id.")),
    };
    let protocol = match b.get("ip_protocol") {
        Some(Value::String(p)) => p.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(bad("Invalid input: ip_protocol is required.")),
    };
    let (from, to) = rule_ports(
        &protocol,
        port(b.get("from_port"), "from_port")?,
        port(b.get("to_port"), "to_port")?,
    )?;
    let cidr = match b.get("cidr") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) if !c.is_empty() => Some(c.clone()),
        Some(other) => return Err(bad(format!("Invalid cidr {other}."))),
    };
    if cidr.is_some() && group_id.is_some() {
        return Err(bad("Invalid input: give a cidr or a group_id, not both."));
    }
    // (the parent first: an unknown one is 404, as in Nova)
    s.network
        .visible_group(&c.auth, &parent)
        .await
        .map_err(network_error)?;
    let req = RuleCreate {
        security_group_id: Some(parent),
        direction: Some("ingress".into()),
        ethertype: Some(if cidr.as_deref().is_some_and(|c| c.contains(':')) {
            "IPv6".into()
        } else {
            "IPv4".into()
        }),
        protocol: Some(json!(protocol.to_ascii_lowercase())),
        port_range_min: from,
        port_range_max: to,
        remote_ip_prefix: match (&cidr, &group_id) {
            (None, None) => Some("0.0.0.0/0".into()),
            (c, _) => c.clone(),
        },
        remote_group_id: group_id,
        ..Default::default()
    };
    let rule = s
        .network
        .create_rule(&c.auth, req)
        .await
        .map_err(network_error)?;
    let names = remote_group_names(&s, std::slice::from_ref(&rule)).await?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"security_group_rule": nova_rule(&rule, &names)}),
    ))
}

pub async fn delete_rule(St(s): St<State>, c: Ctx, Path(id): Path<String>) -> Result<Response> {
    gone_at(&c, 36)?;
    if uuid::Uuid::parse_str(&id).is_err() {
        return Err(bad(format!("Security group rule id should be uuid: {id}")));
    }
    s.network
        .delete_rule(&c.auth, &id)
        .await
        .map_err(network_error)?;
    Ok(empty(StatusCode::ACCEPTED, c.version))
}
