//! Pools and their members. A member must be reachable from the VIP: on a
//! subnet of the VIP's network, or on a subnet a router joins to the VIP's
//! subnet (the load balancer's namespace routes through the VIP subnet's
//! gateway).

use ferro_common::{ids, time, AuthContext};
use ferro_store::flag;
use serde::Deserialize;
use serde_json::{json, Value};

use super::balancers::tags_json;
use super::listeners::check_port;
use super::{next_seq, LoadBalancerService};
use crate::error::{LbError, Result};
use crate::model::Tree;

const ALGORITHMS: &[&str] = &["ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP"];
const POOL_PROTOCOLS: &[&str] = &["HTTP", "TCP", "HTTPS"];
const PERSISTENCE: &[&str] = &["SOURCE_IP", "HTTP_COOKIE", "APP_COOKIE"];

/// Whether a listener of `listener` protocol may send to a pool of `pool`.
pub(crate) fn compatible(listener: &str, pool: &str) -> bool {
    match listener {
        "HTTP" | "TERMINATED_HTTPS" => pool == "HTTP",
        "TCP" => pool == "TCP" || pool == "HTTP" || pool == "HTTPS",
        "HTTPS" => pool == "HTTPS" || pool == "TCP",
        _ => false,
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct PoolCreate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub loadbalancer_id: Option<String>,
    pub listener_id: Option<String>,
    pub protocol: Option<String>,
    pub lb_algorithm: Option<String>,
    pub session_persistence: Option<Value>,
    pub admin_state_up: Option<bool>,
    pub tags: Option<Vec<String>>,
    pub project_id: Option<String>,
    pub tenant_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub lb_algorithm: Option<String>,
    #[serde(default, deserialize_with = "super::listeners::some_or_null")]
    pub session_persistence: Option<Option<Value>>,
    pub admin_state_up: Option<bool>,
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct MemberCreate {
    pub name: Option<String>,
    pub address: Option<String>,
    pub protocol_port: Option<i64>,
    pub weight: Option<i64>,
    pub backup: Option<bool>,
    pub subnet_id: Option<String>,
    pub monitor_address: Option<String>,
    pub monitor_port: Option<i64>,
    pub admin_state_up: Option<bool>,
    pub tags: Option<Vec<String>>,
    pub project_id: Option<String>,
    pub tenant_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberUpdate {
    pub name: Option<String>,
    pub weight: Option<i64>,
    pub backup: Option<bool>,
    pub monitor_address: Option<String>,
    pub monitor_port: Option<i64>,
    pub admin_state_up: Option<bool>,
    pub tags: Option<Vec<String>>,
}

fn check_algorithm(a: &str) -> Result<()> {
    if ALGORITHMS.contains(&a) {
        Ok(())
    } else {
        Err(LbError::invalid(
            "lb_algorithm",
            a,
            &format!("Value should be one of: {}", ALGORITHMS.join(", ")),
        ))
    }
}

/// Session persistence as stored: `{"type": …, "cookie_name": …}` or none.
fn persistence(v: Option<Value>) -> Result<Option<String>> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let kind = v.get("type").and_then(Value::as_str).unwrap_or_default();
    if !PERSISTENCE.contains(&kind) {
        return Err(LbError::invalid(
            "session_persistence/type",
            kind,
            &format!("Value should be one of: {}", PERSISTENCE.join(", ")),
        ));
    }
    let cookie = v.get("cookie_name").and_then(Value::as_str);
    match (kind, cookie) {
        ("APP_COOKIE", None) => Err(LbError::bad(
            "Validation failure: Field cookie_name must be specified when using the APP_COOKIE session persistence type.",
        )),
        ("APP_COOKIE", Some(c)) if c.is_empty() || !c.chars().all(|c| c.is_ascii_graphic() && c != ';' && c != '=') => {
            Err(LbError::invalid("session_persistence/cookie_name", c, "Value is not a valid cookie name"))
        }
        (k, Some(_)) if k != "APP_COOKIE" => Err(LbError::bad(
            "Validation failure: Field cookie_name can only be specified when using the APP_COOKIE session persistence type.",
        )),
        _ => Ok(Some(json!({"type": kind, "cookie_name": cookie}).to_string())),
    }
}

fn check_weight(w: Option<i64>) -> Result<()> {
    match w {
        Some(w) if !(0..=256).contains(&w) => Err(LbError::invalid(
            "weight",
            w,
            "Value should be greater or equal to 0 and lower or equal to 256",
        )),
        _ => Ok(()),
    }
}

fn check_address(field: &str, a: &str) -> Result<std::net::Ipv4Addr> {
    a.parse::<std::net::Ipv4Addr>()
        .map_err(|_| LbError::invalid(field, a, "Value should be IPv4 format"))
}

fn in_cidr(ip: std::net::Ipv4Addr, cidr: &str) -> bool {
    let Some((net, len)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(len)) = (net.parse::<std::net::Ipv4Addr>(), len.parse::<u32>()) else {
        return false;
    };
    if len == 0 {
        return true;
    }
    let mask = u32::MAX << (32 - len.min(32));
    u32::from(ip) & mask == u32::from(net) & mask
}

impl LoadBalancerService {
    pub async fn create_pool(&self, ctx: &AuthContext, req: PoolCreate) -> Result<(Tree, String)> {
        let protocol = req
            .protocol
            .clone()
            .ok_or_else(|| LbError::invalid("protocol", "None", "Mandatory field missing."))?;
        if !POOL_PROTOCOLS.contains(&protocol.as_str()) {
            return Err(LbError::invalid(
                "protocol",
                &protocol,
                &format!("Value should be one of: {}", POOL_PROTOCOLS.join(", ")),
            ));
        }
        let algorithm = req
            .lb_algorithm
            .clone()
            .ok_or_else(|| LbError::invalid("lb_algorithm", "None", "Mandatory field missing."))?;
        check_algorithm(&algorithm)?;
        let persistence = persistence(req.session_persistence.clone())?;
        let tree = match (&req.listener_id, &req.loadbalancer_id) {
            (None, None) => {
                return Err(LbError::bad(
                    "Validation failure: Either listener_id or loadbalancer_id must be specified.",
                ))
            }
            (Some(l), lb) => {
                let t = self.tree_of(ctx, "lb_listeners", "Listener", l).await?;
                if lb.as_ref().is_some_and(|lb| *lb != t.lb.id) {
                    return Err(LbError::bad(
                        "Validation failure: Listener must be on the same load balancer as the pool.",
                    ));
                }
                t
            }
            (None, Some(lb)) => self.tree(ctx, lb).await?,
        };
        let project = tree.lb.project_id.clone();
        self.may_write(ctx, "load-balancer:pool:post", &project)?;
        if let Some(l) = &req.listener_id {
            let listener = tree
                .listeners
                .iter()
                .find(|x| x.id == *l)
                .ok_or_else(|| LbError::not_found("Listener", l))?;
            if listener.default_pool_id.is_some() {
                return Err(LbError::Conflict(format!(
                    "Listener {l} already has a default pool."
                )));
            }
            if !compatible(&listener.protocol, &protocol) {
                return Err(LbError::bad(format!(
                    "Validation failure: The pool protocol '{protocol}' is invalid while the listener protocol is '{}'.",
                    listener.protocol
                )));
            }
        }
        self.check_quota(&project, "pool").await?;
        let (mut tx, revision) = self.begin(&tree).await?;
        let id = ids::uuid_id();
        let now = time::now_micros();
        sqlx::query(
            "INSERT INTO lb_pools (id, seq, project_id, loadbalancer_id, name, description, protocol, lb_algorithm, \
             session_persistence, admin_state_up, revision, tags, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)",
        )
        .bind(&id)
        .bind(next_seq())
        .bind(&project)
        .bind(&tree.lb.id)
        .bind(req.name.unwrap_or_default())
        .bind(req.description.unwrap_or_default())
        .bind(&protocol)
        .bind(&algorithm)
        .bind(&persistence)
        .bind(flag(req.admin_state_up.unwrap_or(true)))
        .bind(revision)
        .bind(tags_json(&req.tags))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if let Some(l) = &req.listener_id {
            sqlx::query("UPDATE lb_listeners SET default_pool_id = $1, revision = $2, updated_at = $3 WHERE id = $4")
                .bind(&id)
                .bind(revision)
                .bind(now)
                .bind(l)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        tracing::info!(pool_id = %id, loadbalancer_id = %tree.lb.id, "pool created");
        self.changed();
        Ok((self.tree(ctx, &tree.lb.id).await?, id))
    }

    pub async fn update_pool(&self, ctx: &AuthContext, id: &str, req: PoolUpdate) -> Result<Tree> {
        let tree = self.tree_of(ctx, "lb_pools", "Pool", id).await?;
        let Some(p) = tree.pools.iter().find(|p| p.id == id).cloned() else {
            return Err(LbError::not_found("Pool", id));
        };
        self.may_write(ctx, "load-balancer:pool:put", &p.project_id)?;
        if let Some(a) = &req.lb_algorithm {
            check_algorithm(a)?;
        }
        let persistence = match req.session_persistence {
            Some(v) => persistence(v)?,
            None => p.session_persistence.clone(),
        };
        let (mut tx, revision) = self.begin(&tree).await?;
        sqlx::query(
            "UPDATE lb_pools SET name = $1, description = $2, lb_algorithm = $3, session_persistence = $4, \
             admin_state_up = $5, tags = $6, revision = $7, updated_at = $8 WHERE id = $9",
        )
        .bind(req.name.unwrap_or(p.name.clone()))
        .bind(req.description.unwrap_or(p.description.clone()))
        .bind(req.lb_algorithm.unwrap_or(p.lb_algorithm.clone()))
        .bind(&persistence)
        .bind(req.admin_state_up.map(flag).unwrap_or(p.admin_state_up))
        .bind(if req.tags.is_some() { tags_json(&req.tags) } else { p.tags.clone() })
        .bind(revision)
        .bind(time::now_micros())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.changed();
        self.tree(ctx, &tree.lb.id).await
    }

    /// Removes a pool with its members and health monitor; listeners that
    /// sent to it send nowhere. One an L7 policy redirects to is refused
    /// (409) until the policy goes or points elsewhere.
    pub async fn delete_pool(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let tree = self.tree_of(ctx, "lb_pools", "Pool", id).await?;
        self.may_write(ctx, "load-balancer:pool:delete", &tree.lb.project_id)?;
        if let Some(p) = tree
            .l7policies
            .iter()
            .find(|p| p.redirect_pool_id.as_deref() == Some(id))
        {
            return Err(LbError::Conflict(format!(
                "Pool {id} is in use by L7 policy {}.",
                p.id
            )));
        }
        let (mut tx, revision) = self.begin(&tree).await?;
        sqlx::query("UPDATE lb_listeners SET default_pool_id = NULL, revision = $1 WHERE default_pool_id = $2")
            .bind(revision)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for sql in [
            "DELETE FROM lb_health WHERE id IN (SELECT id FROM lb_members WHERE pool_id = $1)",
            "DELETE FROM lb_members WHERE pool_id = $1",
            "DELETE FROM lb_healthmonitors WHERE pool_id = $1",
            "DELETE FROM lb_pools WHERE id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        tracing::info!(pool_id = %id, "pool deleted");
        self.changed();
        Ok(())
    }

    /// The subnet a member at `address` sits on, checked reachable from
    /// the load balancer's VIP subnet.
    async fn member_subnet(
        &self,
        ctx: &AuthContext,
        tree: &Tree,
        address: std::net::Ipv4Addr,
        asked: Option<&str>,
    ) -> Result<String> {
        let vip_subnet = &tree.lb.vip_subnet_id;
        let mut reachable: Vec<String> = self
            .network
            .network_subnets(&tree.lb.vip_network_id)
            .await?
            .into_iter()
            .map(|s| s.id)
            .collect();
        reachable.extend(self.network.routed_subnets(vip_subnet).await?);
        let subnet = match asked {
            Some(s) => {
                self.network.visible_subnet(ctx, s).await.map_err(|_| {
                    LbError::bad(format!("Validation failure: Subnet {s} not found."))
                })?
            }
            None => {
                let mut found = None;
                for id in &reachable {
                    if let Some(s) = self.network.subnet(id).await? {
                        if in_cidr(address, &s.cidr) {
                            found = Some(s);
                            break;
                        }
                    }
                }
                found.ok_or_else(|| {
                    LbError::bad(format!(
                        "Validation failure: Member address {address} is on no subnet load balancer {} can reach \
                         (its VIP network's subnets, or subnets a router joins to its VIP subnet).",
                        tree.lb.id
                    ))
                })?
            }
        };
        if !reachable.contains(&subnet.id) {
            return Err(LbError::bad(format!(
                "Validation failure: Subnet {} is not reachable from load balancer {}: it is not on the VIP's network \
                 and no router joins it to the VIP subnet {vip_subnet}.",
                subnet.id, tree.lb.id
            )));
        }
        if !in_cidr(address, &subnet.cidr) {
            return Err(LbError::bad(format!(
                "Validation failure: Member address {address} is not in subnet {} ({}).",
                subnet.id, subnet.cidr
            )));
        }
        Ok(subnet.id)
    }

    pub async fn create_member(
        &self,
        ctx: &AuthContext,
        pool_id: &str,
        req: MemberCreate,
    ) -> Result<(Tree, String)> {
        let tree = self.tree_of(ctx, "lb_pools", "Pool", pool_id).await?;
        let project = tree.lb.project_id.clone();
        self.may_write(ctx, "load-balancer:member:post", &project)?;
        let address = req
            .address
            .clone()
            .ok_or_else(|| LbError::invalid("address", "None", "Mandatory field missing."))?;
        let ip = check_address("address", &address)?;
        let port = req
            .protocol_port
            .ok_or_else(|| LbError::invalid("protocol_port", "None", "Mandatory field missing."))?;
        check_port("protocol_port", port)?;
        check_weight(req.weight)?;
        if let Some(p) = req.monitor_port {
            check_port("monitor_port", p)?;
        }
        if let Some(a) = &req.monitor_address {
            check_address("monitor_address", a)?;
        }
        if tree
            .members
            .iter()
            .any(|m| m.pool_id == pool_id && m.address == address && m.protocol_port == port)
        {
            return Err(LbError::Conflict(format!(
                "Another member on this pool is already using ip {address} on protocol_port {port}"
            )));
        }
        let subnet = self
            .member_subnet(ctx, &tree, ip, req.subnet_id.as_deref())
            .await?;
        self.check_quota(&project, "member").await?;
        let (mut tx, revision) = self.begin(&tree).await?;
        let id = ids::uuid_id();
        let now = time::now_micros();
        sqlx::query(
            "INSERT INTO lb_members (id, seq, project_id, pool_id, name, address, protocol_port, weight, backup, \
             subnet_id, monitor_address, monitor_port, admin_state_up, revision, tags, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)",
        )
        .bind(&id)
        .bind(next_seq())
        .bind(&project)
        .bind(pool_id)
        .bind(req.name.unwrap_or_default())
        .bind(&address)
        .bind(port)
        .bind(req.weight.unwrap_or(1))
        .bind(flag(req.backup.unwrap_or(false)))
        .bind(&subnet)
        .bind(&req.monitor_address)
        .bind(req.monitor_port)
        .bind(flag(req.admin_state_up.unwrap_or(true)))
        .bind(revision)
        .bind(tags_json(&req.tags))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(member_id = %id, pool_id, %address, port, "member created");
        self.changed();
        Ok((self.tree(ctx, &tree.lb.id).await?, id))
    }

    /// The member `member_id` of `pool_id`, with its tree.
    pub async fn member_tree(
        &self,
        ctx: &AuthContext,
        pool_id: &str,
        member_id: &str,
    ) -> Result<Tree> {
        let tree = self.tree_of(ctx, "lb_pools", "Pool", pool_id).await?;
        if !tree
            .members
            .iter()
            .any(|m| m.id == member_id && m.pool_id == pool_id)
        {
            return Err(LbError::not_found("Member", member_id));
        }
        Ok(tree)
    }

    pub async fn update_member(
        &self,
        ctx: &AuthContext,
        pool_id: &str,
        member_id: &str,
        req: MemberUpdate,
    ) -> Result<Tree> {
        let tree = self.member_tree(ctx, pool_id, member_id).await?;
        let Some(m) = tree.members.iter().find(|m| m.id == member_id).cloned() else {
            return Err(LbError::not_found("Member", member_id));
        };
        self.may_write(ctx, "load-balancer:member:put", &m.project_id)?;
        check_weight(req.weight)?;
        if let Some(p) = req.monitor_port {
            check_port("monitor_port", p)?;
        }
        if let Some(a) = &req.monitor_address {
            check_address("monitor_address", a)?;
        }
        let (mut tx, revision) = self.begin(&tree).await?;
        sqlx::query(
            "UPDATE lb_members SET name = $1, weight = $2, backup = $3, monitor_address = $4, monitor_port = $5, \
             admin_state_up = $6, tags = $7, revision = $8, updated_at = $9 WHERE id = $10",
        )
        .bind(req.name.unwrap_or(m.name.clone()))
        .bind(req.weight.unwrap_or(m.weight))
        .bind(req.backup.map(flag).unwrap_or(m.backup))
        .bind(req.monitor_address.or(m.monitor_address.clone()))
        .bind(req.monitor_port.or(m.monitor_port))
        .bind(req.admin_state_up.map(flag).unwrap_or(m.admin_state_up))
        .bind(if req.tags.is_some() { tags_json(&req.tags) } else { m.tags.clone() })
        .bind(revision)
        .bind(time::now_micros())
        .bind(member_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.changed();
        self.tree(ctx, &tree.lb.id).await
    }

    pub async fn delete_member(
        &self,
        ctx: &AuthContext,
        pool_id: &str,
        member_id: &str,
    ) -> Result<()> {
        let tree = self.member_tree(ctx, pool_id, member_id).await?;
        self.may_write(ctx, "load-balancer:member:delete", &tree.lb.project_id)?;
        let (mut tx, _) = self.begin(&tree).await?;
        for sql in [
            "DELETE FROM lb_health WHERE id = $1",
            "DELETE FROM lb_members WHERE id = $1",
        ] {
            sqlx::query(sql).bind(member_id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        tracing::info!(member_id, pool_id, "member deleted");
        self.changed();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_and_pool_protocols_pair_as_octavia_allows() {
        for (l, p, ok) in [
            ("HTTP", "HTTP", true),
            ("HTTP", "TCP", false),
            ("TCP", "HTTP", true),
            ("TCP", "TCP", true),
            ("HTTPS", "HTTPS", true),
            ("HTTPS", "HTTP", false),
            ("TERMINATED_HTTPS", "HTTP", true),
            ("TERMINATED_HTTPS", "HTTPS", false),
        ] {
            assert_eq!(compatible(l, p), ok, "{l} → {p}");
        }
    }

    #[test]
    fn addresses_fall_in_their_cidrs() {
        let ip = |s: &str| s.parse().unwrap();
        assert!(in_cidr(ip("10.0.0.5"), "10.0.0.0/24"));
        assert!(!in_cidr(ip("10.0.1.5"), "10.0.0.0/24"));
        assert!(in_cidr(ip("192.168.7.1"), "0.0.0.0/0"));
    }

    #[test]
    fn persistence_needs_a_cookie_name_only_for_app_cookies() {
        assert!(persistence(Some(json!({"type": "APP_COOKIE"}))).is_err());
        assert!(persistence(Some(json!({"type": "HTTP_COOKIE", "cookie_name": "x"}))).is_err());
        assert!(persistence(Some(json!({"type": "STICKY"}))).is_err());
        let ok = persistence(Some(json!({"type": "APP_COOKIE", "cookie_name": "sid"}))).unwrap();
        assert!(ok.unwrap().contains("\"sid\""));
        assert_eq!(persistence(Some(Value::Null)).unwrap(), None);
    }
}
