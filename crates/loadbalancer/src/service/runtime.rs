//! The network node's side: the [`BalancerSpec`]s it runs, and what it
//! reports back (the revision its HAProxy runs, member health, counters).

use ferro_agent_api::balancer::{
    BalancerReport, BalancerSpec, L7PolicySpec, L7RuleSpec, ListenerSpec, MemberHealth, MemberSpec,
    MonitorSpec, PoolSpec,
};
use serde_json::Value;

use super::{LoadBalancerService, Scope};
use crate::error::Result;
use crate::model::Tree;

pub(crate) fn health_name(h: MemberHealth) -> &'static str {
    match h {
        MemberHealth::Up => "up",
        MemberHealth::Down => "down",
        MemberHealth::Unchecked => "unchecked",
        MemberHealth::Disabled => "disabled",
    }
}

pub(crate) fn parse_health(s: &str) -> Option<MemberHealth> {
    match s {
        "up" => Some(MemberHealth::Up),
        "down" => Some(MemberHealth::Down),
        "unchecked" => Some(MemberHealth::Unchecked),
        "disabled" => Some(MemberHealth::Disabled),
        _ => None,
    }
}

/// What the network node runs for one load balancer (pools and members
/// administratively down stay out of the rotation, not out of the spec).
fn spec_of(t: &Tree, mac: String, prefix: &str, gateway: Option<String>) -> BalancerSpec {
    let lb = &t.lb;
    let pools = t
        .pools
        .iter()
        .map(|p| {
            let persistence = p
                .session_persistence
                .as_deref()
                .and_then(|s| serde_json::from_str::<Value>(s).ok())
                .and_then(|v| {
                    let kind = v.get("type")?.as_str()?.to_owned();
                    let cookie = v
                        .get("cookie_name")
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    Some((kind, cookie))
                });
            PoolSpec {
                id: p.id.clone(),
                protocol: p.protocol.clone(),
                algorithm: p.lb_algorithm.clone(),
                persistence,
                members: t
                    .members
                    .iter()
                    .filter(|m| m.pool_id == p.id)
                    .map(|m| MemberSpec {
                        id: m.id.clone(),
                        address: m.address.clone(),
                        port: m.protocol_port as u16,
                        weight: m.weight,
                        backup: m.backup != 0,
                        disabled: m.admin_state_up == 0 || p.admin_state_up == 0,
                        monitor_address: m.monitor_address.clone(),
                        monitor_port: m.monitor_port.map(|p| p as u16),
                    })
                    .collect(),
                monitor: t
                    .pool_monitor(&p.id)
                    .filter(|h| h.admin_state_up != 0)
                    .map(|h| MonitorSpec {
                        kind: h.kind.clone(),
                        delay_s: h.delay,
                        timeout_s: h.timeout,
                        rise: h.max_retries,
                        fall: h.max_retries_down,
                        http_method: h.http_method.clone(),
                        url_path: h.url_path.clone(),
                        expected_codes: h.expected_codes.clone(),
                    }),
            }
        })
        .collect();
    BalancerSpec {
        id: lb.id.clone(),
        revision: lb.revision,
        vip_port_id: lb.vip_port_id.clone(),
        vip_network_id: lb.vip_network_id.clone(),
        vip_mac: mac,
        vip_cidr: format!("{}/{prefix}", lb.vip_address),
        gateway,
        listeners: t
            .listeners
            .iter()
            .filter(|l| l.admin_state_up != 0)
            .map(|l| ListenerSpec {
                id: l.id.clone(),
                protocol: l.protocol.clone(),
                port: l.protocol_port as u16,
                connection_limit: (l.connection_limit >= 0).then_some(l.connection_limit),
                default_pool: l.default_pool_id.clone(),
                timeout_client_ms: l.timeout_client_data,
                timeout_member_connect_ms: l.timeout_member_connect,
                timeout_member_data_ms: l.timeout_member_data,
                forwarded_for: serde_json::from_str::<Value>(&l.insert_headers)
                    .ok()
                    .and_then(|h| h.get("X-Forwarded-For").cloned())
                    .is_some_and(|v| v == Value::Bool(true) || v == "true" || v == "True"),
                allowed_cidrs: serde_json::from_str(&l.allowed_cidrs).unwrap_or_default(),
                l7policies: l7_of(t, &l.id),
                certificates: Vec::new(),
            })
            .collect(),
        pools,
    }
}

/// A listener's enabled policies with their enabled rules, in position
/// order; a policy without enabled rules never matches, so it is left out.
fn l7_of(t: &Tree, listener: &str) -> Vec<L7PolicySpec> {
    t.listener_policies(listener)
        .filter(|p| p.admin_state_up != 0)
        .map(|p| L7PolicySpec {
            id: p.id.clone(),
            action: p.action.clone(),
            redirect_pool: p.redirect_pool_id.clone(),
            redirect_url: p.redirect_url.clone(),
            redirect_prefix: p.redirect_prefix.clone(),
            redirect_code: p.redirect_http_code,
            rules: t
                .policy_rules(&p.id)
                .filter(|r| r.admin_state_up != 0)
                .map(|r| L7RuleSpec {
                    id: r.id.clone(),
                    kind: r.kind.clone(),
                    compare: r.compare_type.clone(),
                    key: r.rule_key.clone(),
                    value: r.rule_value.clone(),
                    invert: r.invert != 0,
                })
                .collect(),
        })
        .filter(|p| !p.rules.is_empty())
        .collect()
}

impl LoadBalancerService {
    /// Every load balancer the network node should run: those whose VIP
    /// port exists. One administratively down runs no listener (its
    /// HAProxy still says which revision it has).
    pub async fn specs(&self) -> Result<Vec<BalancerSpec>> {
        let mut out = Vec::new();
        for t in self.trees(Scope::All).await? {
            if t.lb.vip_address.is_empty() {
                continue;
            }
            let Some(port) = self.network.port(&t.lb.vip_port_id).await? else {
                continue;
            };
            let Some(subnet) = self.network.subnet(&t.lb.vip_subnet_id).await? else {
                continue;
            };
            let prefix = subnet.cidr.split_once('/').map(|x| x.1).unwrap_or("32");
            let mut spec = spec_of(&t, port.mac_address, prefix, subnet.gateway_ip.clone());
            if t.lb.admin_state_up == 0 {
                spec.listeners.clear();
            }
            self.add_certificates(&t, &mut spec).await;
            out.push(spec);
        }
        Ok(out)
    }

    /// Reads each TERMINATED_HTTPS listener's certificates. One whose
    /// certificate can no longer be read (its secret was deleted since) is
    /// left out, loudly, rather than served without it.
    async fn add_certificates(&self, t: &Tree, spec: &mut BalancerSpec) {
        let mut keep = Vec::new();
        for mut l in std::mem::take(&mut spec.listeners) {
            let refs = t
                .listeners
                .iter()
                .find(|x| x.id == l.id)
                .map(|x| x.tls_refs())
                .unwrap_or_default();
            let mut ok = true;
            for r in refs {
                match self.certificate(&t.lb.project_id, &r).await {
                    Ok(pem) => l.certificates.push(pem),
                    Err(e) => {
                        tracing::warn!(listener_id = %l.id, reference = %r, error = %e, "a TERMINATED_HTTPS listener's certificate can't be read: the listener is not run");
                        ok = false;
                    }
                }
            }
            if ok {
                keep.push(l);
            }
        }
        spec.listeners = keep;
    }

    /// Takes the network node's reports: the revision each load balancer
    /// runs (or why it couldn't), member health and counters. Writes only
    /// what changed.
    pub async fn reported(&self, reports: Vec<BalancerReport>) -> Result<()> {
        for r in reports {
            let row: Option<(i64, i64, Option<String>)> = sqlx::query_as(
                "SELECT revision, applied_revision, fault FROM lb_loadbalancers WHERE id = $1",
            )
            .bind(&r.id)
            .fetch_optional(self.pool())
            .await?;
            let Some((revision, applied, fault)) = row else {
                continue;
            };
            let mut tx = self.pool().begin().await?;
            // A report of a newer revision than stored can't be (the spec
            // came from here); an older one doesn't undo a newer.
            let runs = r.revision.min(revision);
            let new_fault = r.fault.clone().filter(|_| runs < revision);
            if runs > applied || new_fault != fault {
                sqlx::query(
                    "UPDATE lb_loadbalancers SET applied_revision = $1, fault = $2 WHERE id = $3 AND revision = $4",
                )
                .bind(runs.max(applied))
                .bind(&new_fault)
                .bind(&r.id)
                .bind(revision)
                .execute(&mut *tx)
                .await?;
                if let Some(f) = &new_fault {
                    tracing::warn!(loadbalancer_id = %r.id, revision, fault = %f, "the network node could not apply a load balancer");
                } else {
                    tracing::info!(loadbalancer_id = %r.id, revision = runs, "load balancer applied");
                }
            }
            let c = r.counters;
            upsert_health(
                &mut tx,
                &r.id,
                &r.id,
                "up",
                [
                    c.bytes_in,
                    c.bytes_out,
                    c.active_connections,
                    c.total_connections,
                    c.request_errors,
                ],
            )
            .await?;
            for (member, h) in &r.members {
                upsert_health(&mut tx, member, &r.id, health_name(*h), [0; 5]).await?;
            }
            tx.commit().await?;
        }
        Ok(())
    }
}

async fn upsert_health(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: &str,
    lb: &str,
    health: &str,
    c: [i64; 5],
) -> Result<()> {
    // Only for what still exists: a report that crosses a delete (of the
    // member, or of the whole load balancer) must not bring a row back.
    sqlx::query(
        "INSERT INTO lb_health (id, loadbalancer_id, health, bytes_in, bytes_out, active_connections, total_connections, request_errors) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8 \
         WHERE EXISTS (SELECT 1 FROM lb_loadbalancers WHERE id = $2) \
         AND ($1 = $2 OR EXISTS (SELECT 1 FROM lb_members m JOIN lb_pools p ON p.id = m.pool_id \
                                 WHERE m.id = $1 AND p.loadbalancer_id = $2)) \
         ON CONFLICT (id) DO UPDATE SET health = $3, bytes_in = $4, bytes_out = $5, \
         active_connections = $6, total_connections = $7, request_errors = $8",
    )
    .bind(id)
    .bind(lb)
    .bind(health)
    .bind(c[0])
    .bind(c[1])
    .bind(c[2])
    .bind(c[3])
    .bind(c[4])
    .execute(&mut **tx)
    .await?;
    Ok(())
}
