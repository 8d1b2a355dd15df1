//! Load balancers themselves: create (a VIP port first made by the network
//! service), update, delete (with `cascade`), stats.
//!
//! Crash safety without a saga log: the row is written before the VIP
//! port is made (a crash between leaves a PENDING_CREATE load balancer
//! with no port, which delete removes), and delete removes the port
//! before the rows (a crash between leaves a load balancer whose port is
//! gone, which delete removes again). No order leaves a port nobody owns.

use ferro_agent_api::balancer::BalancerCounters;
use ferro_common::{ids, time, AuthContext};
use ferro_network::model::owner;
use ferro_network::service::{FixedIpRequest, PortCreate};
use ferro_store::flag;
use serde::Deserialize;

use super::{next_seq, LoadBalancerService};
use crate::error::{LbError, Result};
use crate::model::Tree;

#[derive(Debug, Default, Deserialize)]
pub struct BalancerCreate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub vip_subnet_id: Option<String>,
    pub vip_network_id: Option<String>,
    pub vip_port_id: Option<String>,
    pub vip_address: Option<String>,
    pub admin_state_up: Option<bool>,
    pub project_id: Option<String>,
    pub tenant_id: Option<String>,
    pub provider: Option<String>,
    pub flavor_id: Option<String>,
    pub tags: Option<Vec<String>>,
    pub listeners: Option<serde_json::Value>,
    pub pools: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalancerUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub admin_state_up: Option<bool>,
    pub tags: Option<Vec<String>>,
    pub vip_qos_policy_id: Option<serde_json::Value>,
}

pub(crate) fn tags_json(tags: &Option<Vec<String>>) -> String {
    serde_json::to_string(tags.as_deref().unwrap_or(&[])).unwrap_or_else(|_| "[]".into())
}

impl LoadBalancerService {
    pub async fn create_balancer(&self, ctx: &AuthContext, req: BalancerCreate) -> Result<Tree> {
        let project = self.owner(ctx, req.project_id.as_deref().or(req.tenant_id.as_deref()))?;
        self.may_write(ctx, "load-balancer:loadbalancer:post", &project)?;
        if let Some(p) = req.provider.as_deref() {
            if p != "amphora" && p != "octavia" {
                return Err(LbError::bad(format!("Provider '{p}' is not enabled.")));
            }
        }
        if req.flavor_id.is_some() {
            return Err(LbError::bad(
                "Validation failure: flavors are not offered here; leave flavor_id out.",
            ));
        }
        if req.listeners.is_some() || req.pools.is_some() {
            return Err(LbError::bad(
                "Validation failure: create the listeners and pools after the load balancer (single-call create is not offered).",
            ));
        }
        if req.vip_port_id.is_some() {
            return Err(LbError::bad(
                "Validation failure: a VIP on an existing port is not offered; give vip_subnet_id or vip_network_id.",
            ));
        }
        let subnet = match (&req.vip_subnet_id, &req.vip_network_id) {
            (None, None) => {
                return Err(LbError::bad(
                    "Validation failure: VIP must contain one of: vip_port_id, vip_network_id, vip_subnet_id.",
                ))
            }
            (Some(s), net) => {
                let s = self
                    .network
                    .visible_subnet(ctx, s)
                    .await
                    .map_err(|_| LbError::bad(format!("Validation failure: Subnet {s} not found.")))?;
                if net.as_ref().is_some_and(|n| *n != s.network_id) {
                    return Err(LbError::bad(format!(
                        "Validation failure: Subnet {} is not on network {}.",
                        s.id,
                        net.as_deref().unwrap_or_default()
                    )));
                }
                s
            }
            (None, Some(n)) => {
                self.network
                    .visible_network(ctx, n)
                    .await
                    .map_err(|_| LbError::bad(format!("Validation failure: Network {n} not found.")))?;
                self.network
                    .network_subnets(n)
                    .await?
                    .into_iter()
                    .find(|s| !s.cidr.contains(':'))
                    .ok_or_else(|| {
                        LbError::bad(format!(
                            "Validation failure: Supplied network {n} does not contain an IPv4 subnet."
                        ))
                    })?
            }
        };
        self.check_quota(&project, "load_balancer").await?;
        let id = ids::uuid_id();
        let port_id = ids::uuid_id();
        let now = time::now_micros();
        sqlx::query(
            "INSERT INTO lb_loadbalancers (id, seq, project_id, name, description, vip_port_id, vip_address, \
             vip_network_id, vip_subnet_id, admin_state_up, revision, applied_revision, fault, tags, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, '', $7, $8, $9, 1, 0, NULL, $10, $11, $11)",
        )
        .bind(&id)
        .bind(next_seq())
        .bind(&project)
        .bind(req.name.clone().unwrap_or_default())
        .bind(req.description.clone().unwrap_or_default())
        .bind(&port_id)
        .bind(&subnet.network_id)
        .bind(&subnet.id)
        .bind(flag(req.admin_state_up.unwrap_or(true)))
        .bind(tags_json(&req.tags))
        .bind(now)
        .execute(self.pool())
        .await?;
        let port = PortCreate {
            network_id: Some(subnet.network_id.clone()),
            name: Some(format!("octavia-lb-{id}")),
            fixed_ips: Some(vec![FixedIpRequest {
                subnet_id: Some(subnet.id.clone()),
                ip_address: req.vip_address.clone(),
            }]),
            device_id: Some(id.clone()),
            device_owner: Some(owner::LOADBALANCER.to_owned()),
            port_security_enabled: Some(false),
            security_groups: Some(Vec::new()),
            project_id: Some(project.clone()),
            id: Some(port_id.clone()),
            made_by: Some("loadbalancer".to_owned()),
            ..Default::default()
        };
        let made = self.network.create_port(ctx, port).await;
        let address = match made {
            Ok((_, ips)) => ips
                .into_iter()
                .next()
                .map(|i| i.ip_address)
                .unwrap_or_default(),
            Err(e) => {
                sqlx::query("DELETE FROM lb_loadbalancers WHERE id = $1")
                    .bind(&id)
                    .execute(self.pool())
                    .await?;
                return Err(e.into());
            }
        };
        sqlx::query("UPDATE lb_loadbalancers SET vip_address = $1 WHERE id = $2")
            .bind(&address)
            .bind(&id)
            .execute(self.pool())
            .await?;
        tracing::info!(loadbalancer_id = %id, vip = %address, "load balancer created");
        self.changed();
        self.tree(ctx, &id).await
    }

    pub async fn update_balancer(
        &self,
        ctx: &AuthContext,
        id: &str,
        req: BalancerUpdate,
    ) -> Result<Tree> {
        let tree = self.tree(ctx, id).await?;
        self.may_write(ctx, "load-balancer:loadbalancer:put", &tree.lb.project_id)?;
        let (mut tx, _) = self.begin(&tree).await?;
        let lb = &tree.lb;
        sqlx::query(
            "UPDATE lb_loadbalancers SET name = $1, description = $2, admin_state_up = $3, tags = $4 WHERE id = $5",
        )
        .bind(req.name.unwrap_or_else(|| lb.name.clone()))
        .bind(req.description.unwrap_or_else(|| lb.description.clone()))
        .bind(req.admin_state_up.map(flag).unwrap_or(lb.admin_state_up))
        .bind(if req.tags.is_some() { tags_json(&req.tags) } else { lb.tags.clone() })
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.changed();
        self.tree(ctx, id).await
    }

    /// Removes the load balancer; with `cascade`, everything under it too
    /// (without, one that has listeners or pools is refused).
    pub async fn delete_balancer(&self, ctx: &AuthContext, id: &str, cascade: bool) -> Result<()> {
        let tree = self.tree(ctx, id).await?;
        self.may_write(
            ctx,
            "load-balancer:loadbalancer:delete",
            &tree.lb.project_id,
        )?;
        if !cascade && (!tree.listeners.is_empty() || !tree.pools.is_empty()) {
            return Err(LbError::bad(format!(
                "Cannot delete Load Balancer {id} - it has children"
            )));
        }
        if self.network.port(&tree.lb.vip_port_id).await?.is_some() {
            self.network.remove_port(&tree.lb.vip_port_id).await?;
        }
        let mut tx = self.pool().begin().await?;
        for sql in [
            "DELETE FROM lb_l7rules WHERE l7policy_id IN (SELECT p.id FROM lb_l7policies p \
             JOIN lb_listeners l ON l.id = p.listener_id WHERE l.loadbalancer_id = $1)",
            "DELETE FROM lb_l7policies WHERE listener_id IN (SELECT id FROM lb_listeners WHERE loadbalancer_id = $1)",
            "DELETE FROM lb_members WHERE pool_id IN (SELECT id FROM lb_pools WHERE loadbalancer_id = $1)",
            "DELETE FROM lb_healthmonitors WHERE pool_id IN (SELECT id FROM lb_pools WHERE loadbalancer_id = $1)",
            "DELETE FROM lb_pools WHERE loadbalancer_id = $1",
            "DELETE FROM lb_listeners WHERE loadbalancer_id = $1",
            "DELETE FROM lb_health WHERE loadbalancer_id = $1",
            "DELETE FROM lb_loadbalancers WHERE id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        tracing::info!(loadbalancer_id = %id, cascade, "load balancer deleted");
        self.changed();
        Ok(())
    }

    /// Traffic counters, as the network node last reported them.
    pub async fn stats(&self, ctx: &AuthContext, id: &str) -> Result<BalancerCounters> {
        let tree = self.tree(ctx, id).await?;
        let row: Option<(i64, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT bytes_in, bytes_out, active_connections, total_connections, request_errors FROM lb_health WHERE id = $1",
        )
        .bind(&tree.lb.id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row
            .map(
                |(bytes_in, bytes_out, active_connections, total_connections, request_errors)| {
                    BalancerCounters {
                        bytes_in,
                        bytes_out,
                        active_connections,
                        total_connections,
                        request_errors,
                    }
                },
            )
            .unwrap_or_default())
    }
}
