//! Listeners: a protocol and port on the VIP, sending to a default pool.
//! A TERMINATED_HTTPS listener ends TLS with the certificate its
//! `default_tls_container_ref` names in the key manager (and those of
//! `sni_container_refs`, chosen by the name the client asks for); each
//! reference is read and checked when it is set, for the listener's
//! project.

use ferro_common::{ids, time, AuthContext};
use ferro_store::flag;
use serde::Deserialize;
use serde_json::Value;

use super::balancers::tags_json;
use super::{next_seq, LoadBalancerService};
use crate::error::{LbError, Result};
use crate::model::{Listener, Tree};

/// Protocols a listener may have here: HTTP and TERMINATED_HTTPS are
/// proxied, TCP and HTTPS (passed through, not terminated) are forwarded
/// as streams.
pub(crate) const LISTENER_PROTOCOLS: &[&str] = &["HTTP", "TCP", "HTTPS", "TERMINATED_HTTPS"];

/// Octavia's default timeouts, in milliseconds.
const TIMEOUT_CLIENT: i64 = 50_000;
const TIMEOUT_CONNECT: i64 = 5_000;
const TIMEOUT_DATA: i64 = 50_000;
const TIMEOUT_MAX: i64 = 31_536_000;

#[derive(Debug, Default, Deserialize)]
pub struct ListenerCreate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub loadbalancer_id: Option<String>,
    pub protocol: Option<String>,
    pub protocol_port: Option<i64>,
    pub connection_limit: Option<i64>,
    pub default_pool_id: Option<String>,
    pub admin_state_up: Option<bool>,
    pub timeout_client_data: Option<i64>,
    pub timeout_member_connect: Option<i64>,
    pub timeout_member_data: Option<i64>,
    pub timeout_tcp_inspect: Option<i64>,
    pub insert_headers: Option<serde_json::Map<String, Value>>,
    pub allowed_cidrs: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub project_id: Option<String>,
    pub tenant_id: Option<String>,
    pub default_tls_container_ref: Option<String>,
    pub sni_container_refs: Option<Vec<String>>,
}

/// An update: only what is given changes (`default_pool_id: null` unsets).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub connection_limit: Option<i64>,
    #[serde(default, deserialize_with = "some_or_null")]
    pub default_pool_id: Option<Option<String>>,
    pub admin_state_up: Option<bool>,
    pub timeout_client_data: Option<i64>,
    pub timeout_member_connect: Option<i64>,
    pub timeout_member_data: Option<i64>,
    pub timeout_tcp_inspect: Option<i64>,
    pub insert_headers: Option<serde_json::Map<String, Value>>,
    pub allowed_cidrs: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub default_tls_container_ref: Option<String>,
    pub sni_container_refs: Option<Vec<String>>,
}

pub(crate) fn some_or_null<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Some(Option::deserialize(d)?))
}

pub(crate) fn check_port(field: &str, port: i64) -> Result<()> {
    if !(1..=65535).contains(&port) {
        return Err(LbError::invalid(
            field,
            port,
            "Value should be greater or equal to 1 and lower or equal to 65535",
        ));
    }
    Ok(())
}

fn check_timeout(field: &str, v: Option<i64>) -> Result<()> {
    match v {
        Some(t) if !(0..=TIMEOUT_MAX).contains(&t) => Err(LbError::invalid(
            field,
            t,
            &format!("Value should be greater or equal to 0 and lower or equal to {TIMEOUT_MAX}"),
        )),
        _ => Ok(()),
    }
}

fn check_limit(v: Option<i64>) -> Result<()> {
    match v {
        Some(c) if c < -1 => Err(LbError::invalid(
            "connection_limit",
            c,
            "Value should be greater or equal to -1",
        )),
        _ => Ok(()),
    }
}

fn check_cidrs(v: &Option<Vec<String>>) -> Result<()> {
    for c in v.iter().flatten() {
        let (addr, len) = c.split_once('/').unwrap_or((c, "32"));
        let ok =
            addr.parse::<std::net::Ipv4Addr>().is_ok() && len.parse::<u8>().is_ok_and(|l| l <= 32);
        if !ok {
            return Err(LbError::invalid(
                "allowed_cidrs",
                c,
                "Value should be an IPv4 CIDR",
            ));
        }
    }
    Ok(())
}

fn check_headers(h: &Option<serde_json::Map<String, Value>>) -> Result<()> {
    for k in h.iter().flat_map(|m| m.keys()) {
        if k != "X-Forwarded-For" && k != "X-Forwarded-Port" && k != "X-Forwarded-Proto" {
            return Err(LbError::bad(format!(
                "Validation failure: {k} is not a valid option for insert_headers"
            )));
        }
    }
    Ok(())
}

/// A pool `listener` may send to: of the same load balancer, of a
/// compatible protocol, and not another listener's default already.
fn check_default_pool(
    tree: &Tree,
    listener: Option<&str>,
    protocol: &str,
    pool: &str,
) -> Result<()> {
    let Some(p) = tree.pools.iter().find(|p| p.id == pool) else {
        return Err(LbError::not_found("Pool", pool));
    };
    if !super::pools::compatible(protocol, &p.protocol) {
        return Err(LbError::bad(format!(
            "Validation failure: The pool protocol '{}' is invalid while the listener protocol is '{protocol}'.",
            p.protocol
        )));
    }
    if tree
        .listeners
        .iter()
        .any(|l| l.default_pool_id.as_deref() == Some(pool) && Some(l.id.as_str()) != listener)
    {
        return Err(LbError::Conflict(format!(
            "Pool {pool} is already in use by another listener."
        )));
    }
    Ok(())
}

impl LoadBalancerService {
    pub async fn create_listener(
        &self,
        ctx: &AuthContext,
        req: ListenerCreate,
    ) -> Result<(Tree, String)> {
        let Some(lb_id) = req.loadbalancer_id.as_deref() else {
            return Err(LbError::invalid(
                "loadbalancer_id",
                "None",
                "Mandatory field missing.",
            ));
        };
        let protocol = req
            .protocol
            .clone()
            .ok_or_else(|| LbError::invalid("protocol", "None", "Mandatory field missing."))?;
        if !LISTENER_PROTOCOLS.contains(&protocol.as_str()) {
            return Err(LbError::invalid(
                "protocol",
                &protocol,
                &format!("Value should be one of: {}", LISTENER_PROTOCOLS.join(", ")),
            ));
        }
        let port = req
            .protocol_port
            .ok_or_else(|| LbError::invalid("protocol_port", "None", "Mandatory field missing."))?;
        check_port("protocol_port", port)?;
        check_limit(req.connection_limit)?;
        check_timeout("timeout_client_data", req.timeout_client_data)?;
        check_timeout("timeout_member_connect", req.timeout_member_connect)?;
        check_timeout("timeout_member_data", req.timeout_member_data)?;
        check_timeout("timeout_tcp_inspect", req.timeout_tcp_inspect)?;
        check_cidrs(&req.allowed_cidrs)?;
        check_headers(&req.insert_headers)?;
        let tree = self.tree(ctx, lb_id).await?;
        let project = &tree.lb.project_id;
        self.may_write(ctx, "load-balancer:listener:post", project)?;
        let sni = req.sni_container_refs.clone().unwrap_or_default();
        self.check_tls(
            project,
            &protocol,
            req.default_tls_container_ref.as_deref(),
            &sni,
        )
        .await?;
        if tree.listeners.iter().any(|l| l.protocol_port == port) {
            return Err(LbError::Conflict(format!(
                "Another Listener on this Load Balancer is already using protocol_port {port}"
            )));
        }
        if let Some(pool) = &req.default_pool_id {
            check_default_pool(&tree, None, &protocol, pool)?;
        }
        self.check_quota(project, "listener").await?;
        let (mut tx, revision) = self.begin(&tree).await?;
        let id = ids::uuid_id();
        let now = time::now_micros();
        sqlx::query(
            "INSERT INTO lb_listeners (id, seq, project_id, loadbalancer_id, name, description, protocol, protocol_port, \
             connection_limit, default_pool_id, admin_state_up, revision, timeout_client_data, timeout_member_connect, \
             timeout_member_data, timeout_tcp_inspect, insert_headers, allowed_cidrs, tags, created_at, updated_at, \
             default_tls_container_ref, sni_container_refs) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $20, $21, $22)",
        )
        .bind(&id)
        .bind(next_seq())
        .bind(project)
        .bind(lb_id)
        .bind(req.name.unwrap_or_default())
        .bind(req.description.unwrap_or_default())
        .bind(&protocol)
        .bind(port)
        .bind(req.connection_limit.unwrap_or(-1))
        .bind(&req.default_pool_id)
        .bind(flag(req.admin_state_up.unwrap_or(true)))
        .bind(revision)
        .bind(req.timeout_client_data.unwrap_or(TIMEOUT_CLIENT))
        .bind(req.timeout_member_connect.unwrap_or(TIMEOUT_CONNECT))
        .bind(req.timeout_member_data.unwrap_or(TIMEOUT_DATA))
        .bind(req.timeout_tcp_inspect.unwrap_or(0))
        .bind(Value::Object(req.insert_headers.unwrap_or_default()).to_string())
        .bind(match &req.allowed_cidrs {
            Some(c) => serde_json::to_string(c).unwrap_or_else(|_| "null".into()),
            None => "null".into(),
        })
        .bind(tags_json(&req.tags))
        .bind(now)
        .bind(&req.default_tls_container_ref)
        .bind(serde_json::to_string(&sni).unwrap_or_else(|_| "[]".into()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(listener_id = %id, loadbalancer_id = %lb_id, "listener created");
        self.changed();
        Ok((self.tree(ctx, lb_id).await?, id))
    }

    pub async fn update_listener(
        &self,
        ctx: &AuthContext,
        id: &str,
        req: ListenerUpdate,
    ) -> Result<Tree> {
        let tree = self.tree_of(ctx, "lb_listeners", "Listener", id).await?;
        let Some(l) = tree.listeners.iter().find(|l| l.id == id).cloned() else {
            return Err(LbError::not_found("Listener", id));
        };
        self.may_write(ctx, "load-balancer:listener:put", &l.project_id)?;
        check_limit(req.connection_limit)?;
        check_timeout("timeout_client_data", req.timeout_client_data)?;
        check_timeout("timeout_member_connect", req.timeout_member_connect)?;
        check_timeout("timeout_member_data", req.timeout_member_data)?;
        check_timeout("timeout_tcp_inspect", req.timeout_tcp_inspect)?;
        check_cidrs(&req.allowed_cidrs)?;
        check_headers(&req.insert_headers)?;
        if let Some(Some(pool)) = &req.default_pool_id {
            check_default_pool(&tree, Some(id), &l.protocol, pool)?;
        }
        let default_tls = req
            .default_tls_container_ref
            .clone()
            .or(l.default_tls_container_ref.clone());
        let sni = match &req.sni_container_refs {
            Some(s) => s.clone(),
            None => l
                .sni_container_refs
                .as_deref()
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or_default(),
        };
        if req.default_tls_container_ref.is_some() || req.sni_container_refs.is_some() {
            self.check_tls(&l.project_id, &l.protocol, default_tls.as_deref(), &sni)
                .await?;
        }
        let (mut tx, revision) = self.begin(&tree).await?;
        let merged = Listener {
            name: req.name.unwrap_or(l.name.clone()),
            description: req.description.unwrap_or(l.description.clone()),
            connection_limit: req.connection_limit.unwrap_or(l.connection_limit),
            default_pool_id: req.default_pool_id.unwrap_or(l.default_pool_id.clone()),
            admin_state_up: req.admin_state_up.map(flag).unwrap_or(l.admin_state_up),
            timeout_client_data: req.timeout_client_data.unwrap_or(l.timeout_client_data),
            timeout_member_connect: req
                .timeout_member_connect
                .unwrap_or(l.timeout_member_connect),
            timeout_member_data: req.timeout_member_data.unwrap_or(l.timeout_member_data),
            timeout_tcp_inspect: req.timeout_tcp_inspect.unwrap_or(l.timeout_tcp_inspect),
            insert_headers: req
                .insert_headers
                .map(|h| Value::Object(h).to_string())
                .unwrap_or(l.insert_headers.clone()),
            allowed_cidrs: req
                .allowed_cidrs
                .map(|c| serde_json::to_string(&c).unwrap_or_else(|_| "null".into()))
                .unwrap_or(l.allowed_cidrs.clone()),
            tags: if req.tags.is_some() {
                tags_json(&req.tags)
            } else {
                l.tags.clone()
            },
            ..l
        };
        sqlx::query(
            "UPDATE lb_listeners SET name = $1, description = $2, connection_limit = $3, default_pool_id = $4, \
             admin_state_up = $5, timeout_client_data = $6, timeout_member_connect = $7, timeout_member_data = $8, \
             timeout_tcp_inspect = $9, insert_headers = $10, allowed_cidrs = $11, tags = $12, revision = $13, \
             updated_at = $14, default_tls_container_ref = $15, sni_container_refs = $16 WHERE id = $17",
        )
        .bind(&merged.name)
        .bind(&merged.description)
        .bind(merged.connection_limit)
        .bind(&merged.default_pool_id)
        .bind(merged.admin_state_up)
        .bind(merged.timeout_client_data)
        .bind(merged.timeout_member_connect)
        .bind(merged.timeout_member_data)
        .bind(merged.timeout_tcp_inspect)
        .bind(&merged.insert_headers)
        .bind(&merged.allowed_cidrs)
        .bind(&merged.tags)
        .bind(revision)
        .bind(time::now_micros())
        .bind(&default_tls)
        .bind(serde_json::to_string(&sni).unwrap_or_else(|_| "[]".into()))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.changed();
        self.tree(ctx, &tree.lb.id).await
    }

    /// A TERMINATED_HTTPS listener needs a default certificate; other
    /// protocols take none. Every reference must give a usable
    /// certificate of `project`.
    async fn check_tls(
        &self,
        project: &str,
        protocol: &str,
        default: Option<&str>,
        sni: &[String],
    ) -> Result<()> {
        if protocol != "TERMINATED_HTTPS" {
            if default.is_some() || !sni.is_empty() {
                return Err(LbError::bad(format!(
                    "Validation failure: Certificate container references are only allowed on TERMINATED_HTTPS listeners, not {protocol}."
                )));
            }
            return Ok(());
        }
        let Some(default) = default else {
            return Err(LbError::bad(
                "Validation failure: A TERMINATED_HTTPS listener needs a default_tls_container_ref.",
            ));
        };
        for r in std::iter::once(default).chain(sni.iter().map(String::as_str)) {
            self.certificate(project, r).await?;
        }
        Ok(())
    }

    pub async fn delete_listener(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let tree = self.tree_of(ctx, "lb_listeners", "Listener", id).await?;
        self.may_write(ctx, "load-balancer:listener:delete", &tree.lb.project_id)?;
        let (mut tx, _) = self.begin(&tree).await?;
        for sql in [
            "DELETE FROM lb_l7rules WHERE l7policy_id IN (SELECT id FROM lb_l7policies WHERE listener_id = $1)",
            "DELETE FROM lb_l7policies WHERE listener_id = $1",
            "DELETE FROM lb_listeners WHERE id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        tracing::info!(listener_id = %id, "listener deleted");
        self.changed();
        Ok(())
    }
}
