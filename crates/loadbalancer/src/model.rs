//! Rows of the load-balancer tables and their Octavia JSON shapes.
//!
//! Provisioning status is derived, not stored: an object changed at
//! revision `r` of its load balancer is ACTIVE once the network node runs
//! revision `r` or later, PENDING_CREATE or PENDING_UPDATE before, ERROR
//! when the network node could not apply it. Operating status comes from
//! the member health the network node reports.
//!
//! ```text
//!   create ──> PENDING_CREATE ──(network node runs it)──> ACTIVE
//!                                                          │  ▲
//!                                                 change   ▼  │ runs it
//!                                                     PENDING_UPDATE
//!   (any PENDING, the network node failed to apply) ──> ERROR
//! ```

use ferro_agent_api::balancer::MemberHealth;
use ferro_common::time::iso_seconds;
use serde_json::{json, Value};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LoadBalancer {
    pub id: String,
    pub seq: i64,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub vip_port_id: String,
    pub vip_address: String,
    pub vip_network_id: String,
    pub vip_subnet_id: String,
    pub admin_state_up: i64,
    pub revision: i64,
    pub applied_revision: i64,
    pub fault: Option<String>,
    pub tags: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Listener {
    pub id: String,
    pub seq: i64,
    pub project_id: String,
    pub loadbalancer_id: String,
    pub name: String,
    pub description: String,
    pub protocol: String,
    pub protocol_port: i64,
    pub connection_limit: i64,
    pub default_pool_id: Option<String>,
    pub admin_state_up: i64,
    pub revision: i64,
    pub timeout_client_data: i64,
    pub timeout_member_connect: i64,
    pub timeout_member_data: i64,
    pub timeout_tcp_inspect: i64,
    pub insert_headers: String,
    pub allowed_cidrs: String,
    pub tags: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// A key-manager secret or container URL (TERMINATED_HTTPS).
    pub default_tls_container_ref: Option<String>,
    /// A JSON list of such URLs, served by SNI.
    pub sni_container_refs: Option<String>,
}

impl Listener {
    /// Its certificate references: the default first, then SNI's.
    pub fn tls_refs(&self) -> Vec<String> {
        let sni: Vec<String> = self
            .sni_container_refs
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        self.default_tls_container_ref
            .iter()
            .cloned()
            .chain(sni)
            .collect()
    }
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Pool {
    pub id: String,
    pub seq: i64,
    pub project_id: String,
    pub loadbalancer_id: String,
    pub name: String,
    pub description: String,
    pub protocol: String,
    pub lb_algorithm: String,
    pub session_persistence: Option<String>,
    pub admin_state_up: i64,
    pub revision: i64,
    pub tags: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Member {
    pub id: String,
    pub seq: i64,
    pub project_id: String,
    pub pool_id: String,
    pub name: String,
    pub address: String,
    pub protocol_port: i64,
    pub weight: i64,
    pub backup: i64,
    pub subnet_id: Option<String>,
    pub monitor_address: Option<String>,
    pub monitor_port: Option<i64>,
    pub admin_state_up: i64,
    pub revision: i64,
    pub tags: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Monitor {
    pub id: String,
    pub seq: i64,
    pub project_id: String,
    pub pool_id: String,
    pub name: String,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub delay: i64,
    pub timeout: i64,
    pub max_retries: i64,
    pub max_retries_down: i64,
    pub http_method: String,
    pub url_path: String,
    pub expected_codes: String,
    pub admin_state_up: i64,
    pub revision: i64,
    pub tags: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct L7Policy {
    pub id: String,
    pub seq: i64,
    pub project_id: String,
    pub listener_id: String,
    pub name: String,
    pub description: String,
    pub action: String,
    pub position: i64,
    pub redirect_pool_id: Option<String>,
    pub redirect_url: Option<String>,
    pub redirect_prefix: Option<String>,
    pub redirect_http_code: Option<i64>,
    pub admin_state_up: i64,
    pub revision: i64,
    pub tags: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct L7Rule {
    pub id: String,
    pub seq: i64,
    pub project_id: String,
    pub l7policy_id: String,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub compare_type: String,
    pub rule_key: Option<String>,
    pub rule_value: String,
    pub invert: i64,
    pub admin_state_up: i64,
    pub revision: i64,
    pub tags: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One load balancer with everything under it, and what the network node
/// last said of it: what rendering and status need.
#[derive(Clone, Debug)]
pub struct Tree {
    pub lb: LoadBalancer,
    pub listeners: Vec<Listener>,
    pub pools: Vec<Pool>,
    pub members: Vec<Member>,
    pub monitors: Vec<Monitor>,
    /// In listener, then position order.
    pub l7policies: Vec<L7Policy>,
    pub l7rules: Vec<L7Rule>,
    /// (member id, health) as last reported.
    pub health: Vec<(String, MemberHealth)>,
}

fn ids<'a>(it: impl Iterator<Item = &'a String>) -> Value {
    Value::Array(it.map(|id| json!({ "id": id })).collect())
}

fn tags(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| json!([]))
}

impl Tree {
    /// The provisioning status of an object changed at `revision`, created
    /// when `created_at == updated_at`.
    pub fn provisioning(&self, revision: i64, created_at: i64, updated_at: i64) -> &'static str {
        if self.lb.applied_revision >= revision {
            "ACTIVE"
        } else if self.lb.fault.is_some() {
            "ERROR"
        } else if created_at == updated_at {
            "PENDING_CREATE"
        } else {
            "PENDING_UPDATE"
        }
    }

    /// The load balancer's own: PENDING_UPDATE while a change of anything
    /// under it waits for the network node.
    pub fn lb_provisioning(&self) -> &'static str {
        let lb = &self.lb;
        match (lb.applied_revision, &lb.fault) {
            (a, _) if a >= lb.revision => "ACTIVE",
            (_, Some(_)) => "ERROR",
            (0, None) => "PENDING_CREATE",
            _ => "PENDING_UPDATE",
        }
    }

    /// Whether a change may be made under it now (Octavia refuses changes
    /// while one is pending).
    pub fn mutable(&self) -> bool {
        self.lb.applied_revision >= self.lb.revision || self.lb.fault.is_some()
    }

    /// The network node runs this load balancer (some revision of it).
    pub fn running(&self) -> bool {
        self.lb.applied_revision > 0 && self.lb.admin_state_up != 0
    }

    pub fn pool_monitor(&self, pool_id: &str) -> Option<&Monitor> {
        self.monitors.iter().find(|m| m.pool_id == pool_id)
    }

    pub fn member_status(&self, m: &Member) -> &'static str {
        if m.admin_state_up == 0 {
            return "OFFLINE";
        }
        match self.health.iter().find(|(id, _)| *id == m.id).map(|h| h.1) {
            Some(MemberHealth::Up) => "ONLINE",
            Some(MemberHealth::Down) => "ERROR",
            Some(MemberHealth::Disabled) => "OFFLINE",
            Some(MemberHealth::Unchecked) => "NO_MONITOR",
            None if self.pool_monitor(&m.pool_id).is_none() => "NO_MONITOR",
            None => "OFFLINE",
        }
    }

    pub fn pool_status(&self, p: &Pool) -> &'static str {
        if p.admin_state_up == 0 || !self.running() {
            return "OFFLINE";
        }
        let states: Vec<&str> = self
            .members
            .iter()
            .filter(|m| m.pool_id == p.id && m.admin_state_up != 0)
            .map(|m| self.member_status(m))
            .collect();
        let down = states.iter().filter(|s| **s == "ERROR").count();
        match down {
            0 => "ONLINE",
            d if d == states.len() => "ERROR",
            _ => "DEGRADED",
        }
    }

    pub fn listener_status(&self, l: &Listener) -> &'static str {
        if l.admin_state_up == 0 || !self.running() {
            return "OFFLINE";
        }
        match l
            .default_pool_id
            .as_ref()
            .and_then(|id| self.pools.iter().find(|p| &p.id == id))
        {
            Some(p) => match self.pool_status(p) {
                "ERROR" => "ERROR",
                "DEGRADED" => "DEGRADED",
                _ => "ONLINE",
            },
            None => "ONLINE",
        }
    }

    pub fn lb_status(&self) -> &'static str {
        if !self.running() {
            return "OFFLINE";
        }
        let degraded = self
            .listeners
            .iter()
            .any(|l| matches!(self.listener_status(l), "ERROR" | "DEGRADED"));
        if degraded {
            "DEGRADED"
        } else {
            "ONLINE"
        }
    }

    pub fn render_lb(&self) -> Value {
        let lb = &self.lb;
        json!({
            "id": lb.id, "name": lb.name, "description": lb.description,
            "project_id": lb.project_id, "tenant_id": lb.project_id,
            "admin_state_up": lb.admin_state_up != 0,
            "provisioning_status": self.lb_provisioning(),
            "operating_status": self.lb_status(),
            "vip_address": lb.vip_address, "vip_port_id": lb.vip_port_id,
            "vip_subnet_id": lb.vip_subnet_id, "vip_network_id": lb.vip_network_id,
            "vip_qos_policy_id": null, "vip_vnic_type": "normal", "vip_sg_ids": null,
            "additional_vips": [],
            "listeners": ids(self.listeners.iter().map(|l| &l.id)),
            "pools": ids(self.pools.iter().map(|p| &p.id)),
            "provider": "amphora", "flavor_id": null, "availability_zone": null,
            "tags": tags(&lb.tags),
            "created_at": iso_seconds(lb.created_at), "updated_at": iso_seconds(lb.updated_at),
        })
    }

    pub fn render_listener(&self, l: &Listener) -> Value {
        let headers: Value = serde_json::from_str(&l.insert_headers).unwrap_or_else(|_| json!({}));
        let cidrs: Value = serde_json::from_str(&l.allowed_cidrs).unwrap_or(Value::Null);
        json!({
            "id": l.id, "name": l.name, "description": l.description,
            "project_id": l.project_id, "tenant_id": l.project_id,
            "admin_state_up": l.admin_state_up != 0,
            "provisioning_status": self.provisioning(l.revision, l.created_at, l.updated_at),
            "operating_status": self.listener_status(l),
            "protocol": l.protocol, "protocol_port": l.protocol_port,
            "connection_limit": l.connection_limit,
            "default_pool_id": l.default_pool_id,
            "default_tls_container_ref": l.default_tls_container_ref,
            "sni_container_refs": serde_json::from_str::<Value>(l.sni_container_refs.as_deref().unwrap_or("[]")).unwrap_or_else(|_| json!([])),
            "client_ca_tls_container_ref": null, "client_authentication": "NONE",
            "client_crl_container_ref": null,
            "l7policies": ids(self.listener_policies(&l.id).map(|p| &p.id)),
            "insert_headers": headers,
            "loadbalancers": [{"id": l.loadbalancer_id}],
            "timeout_client_data": l.timeout_client_data,
            "timeout_member_connect": l.timeout_member_connect,
            "timeout_member_data": l.timeout_member_data,
            "timeout_tcp_inspect": l.timeout_tcp_inspect,
            "allowed_cidrs": cidrs, "tls_ciphers": null, "tls_versions": null,
            "alpn_protocols": null, "hsts_max_age": null, "hsts_include_subdomains": false,
            "hsts_preload": false,
            "tags": tags(&l.tags),
            "created_at": iso_seconds(l.created_at), "updated_at": iso_seconds(l.updated_at),
        })
    }

    pub fn render_pool(&self, p: &Pool) -> Value {
        let persistence: Value = p
            .session_persistence
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or(Value::Null);
        json!({
            "id": p.id, "name": p.name, "description": p.description,
            "project_id": p.project_id, "tenant_id": p.project_id,
            "admin_state_up": p.admin_state_up != 0,
            "provisioning_status": self.provisioning(p.revision, p.created_at, p.updated_at),
            "operating_status": self.pool_status(p),
            "protocol": p.protocol, "lb_algorithm": p.lb_algorithm,
            "session_persistence": persistence,
            "loadbalancers": [{"id": p.loadbalancer_id}],
            "listeners": ids(self.listeners.iter().filter(|l| l.default_pool_id.as_deref() == Some(p.id.as_str())).map(|l| &l.id)),
            "members": ids(self.members.iter().filter(|m| m.pool_id == p.id).map(|m| &m.id)),
            "healthmonitor_id": self.pool_monitor(&p.id).map(|m| m.id.clone()),
            "tls_enabled": false, "tls_container_ref": null, "ca_tls_container_ref": null,
            "crl_container_ref": null, "tls_ciphers": null, "tls_versions": null,
            "alpn_protocols": null,
            "tags": tags(&p.tags),
            "created_at": iso_seconds(p.created_at), "updated_at": iso_seconds(p.updated_at),
        })
    }

    pub fn render_member(&self, m: &Member) -> Value {
        json!({
            "id": m.id, "name": m.name,
            "project_id": m.project_id, "tenant_id": m.project_id,
            "admin_state_up": m.admin_state_up != 0,
            "provisioning_status": self.provisioning(m.revision, m.created_at, m.updated_at),
            "operating_status": self.member_status(m),
            "address": m.address, "protocol_port": m.protocol_port,
            "weight": m.weight, "backup": m.backup != 0,
            "subnet_id": m.subnet_id,
            "monitor_address": m.monitor_address, "monitor_port": m.monitor_port,
            "vnic_type": "normal",
            "tags": tags(&m.tags),
            "created_at": iso_seconds(m.created_at), "updated_at": iso_seconds(m.updated_at),
        })
    }

    pub fn render_monitor(&self, h: &Monitor) -> Value {
        let http = h.kind == "HTTP" || h.kind == "HTTPS";
        json!({
            "id": h.id, "name": h.name,
            "project_id": h.project_id, "tenant_id": h.project_id,
            "admin_state_up": h.admin_state_up != 0,
            "provisioning_status": self.provisioning(h.revision, h.created_at, h.updated_at),
            "operating_status": if self.running() && h.admin_state_up != 0 { "ONLINE" } else { "OFFLINE" },
            "type": h.kind, "delay": h.delay, "timeout": h.timeout,
            "max_retries": h.max_retries, "max_retries_down": h.max_retries_down,
            "http_method": if http { json!(h.http_method) } else { Value::Null },
            "url_path": if http { json!(h.url_path) } else { Value::Null },
            "expected_codes": if http { json!(h.expected_codes) } else { Value::Null },
            "http_version": null, "domain_name": null,
            "pools": [{"id": h.pool_id}],
            "tags": tags(&h.tags),
            "created_at": iso_seconds(h.created_at), "updated_at": iso_seconds(h.updated_at),
        })
    }

    /// The L7 policies of a listener, in position order.
    pub fn listener_policies<'a>(
        &'a self,
        listener: &'a str,
    ) -> impl Iterator<Item = &'a L7Policy> {
        self.l7policies
            .iter()
            .filter(move |p| p.listener_id == listener)
    }

    pub fn policy_rules<'a>(&'a self, policy: &'a str) -> impl Iterator<Item = &'a L7Rule> {
        self.l7rules.iter().filter(move |r| r.l7policy_id == policy)
    }

    fn l7_status(&self, admin_state_up: i64) -> &'static str {
        if self.running() && admin_state_up != 0 {
            "ONLINE"
        } else {
            "OFFLINE"
        }
    }

    pub fn render_l7policy(&self, p: &L7Policy) -> Value {
        json!({
            "id": p.id, "name": p.name, "description": p.description,
            "project_id": p.project_id, "tenant_id": p.project_id,
            "admin_state_up": p.admin_state_up != 0,
            "provisioning_status": self.provisioning(p.revision, p.created_at, p.updated_at),
            "operating_status": self.l7_status(p.admin_state_up),
            "listener_id": p.listener_id, "action": p.action, "position": p.position,
            "redirect_pool_id": p.redirect_pool_id, "redirect_url": p.redirect_url,
            "redirect_prefix": p.redirect_prefix, "redirect_http_code": p.redirect_http_code,
            "rules": ids(self.policy_rules(&p.id).map(|r| &r.id)),
            "tags": tags(&p.tags),
            "created_at": iso_seconds(p.created_at), "updated_at": iso_seconds(p.updated_at),
        })
    }

    pub fn render_l7rule(&self, r: &L7Rule) -> Value {
        json!({
            "id": r.id,
            "project_id": r.project_id, "tenant_id": r.project_id,
            "admin_state_up": r.admin_state_up != 0,
            "provisioning_status": self.provisioning(r.revision, r.created_at, r.updated_at),
            "operating_status": self.l7_status(r.admin_state_up),
            "type": r.kind, "compare_type": r.compare_type,
            "key": r.rule_key, "value": r.rule_value, "invert": r.invert != 0,
            "tags": tags(&r.tags),
            "created_at": iso_seconds(r.created_at), "updated_at": iso_seconds(r.updated_at),
        })
    }

    /// `GET /loadbalancers/{id}/status`: the tree with operating and
    /// provisioning status only.
    pub fn render_status(&self) -> Value {
        let lb = &self.lb;
        let pool = |p: &Pool| {
            let mut v = json!({
                "id": p.id, "name": p.name,
                "provisioning_status": self.provisioning(p.revision, p.created_at, p.updated_at),
                "operating_status": self.pool_status(p),
                "members": self.members.iter().filter(|m| m.pool_id == p.id).map(|m| json!({
                    "id": m.id, "name": m.name, "address": m.address, "protocol_port": m.protocol_port,
                    "provisioning_status": self.provisioning(m.revision, m.created_at, m.updated_at),
                    "operating_status": self.member_status(m),
                })).collect::<Vec<_>>(),
            });
            if let Some(h) = self.pool_monitor(&p.id) {
                v["health_monitor"] = json!({
                    "id": h.id, "name": h.name, "type": h.kind,
                    "provisioning_status": self.provisioning(h.revision, h.created_at, h.updated_at),
                    "operating_status": if self.running() { "ONLINE" } else { "OFFLINE" },
                });
            }
            v
        };
        json!({"statuses": {"loadbalancer": {
            "id": lb.id, "name": lb.name,
            "provisioning_status": self.lb_provisioning(),
            "operating_status": self.lb_status(),
            "listeners": self.listeners.iter().map(|l| json!({
                "id": l.id, "name": l.name,
                "provisioning_status": self.provisioning(l.revision, l.created_at, l.updated_at),
                "operating_status": self.listener_status(l),
                "pools": self.pools.iter().filter(|p| l.default_pool_id.as_deref() == Some(p.id.as_str())).map(pool).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "pools": self.pools.iter().map(pool).collect::<Vec<_>>(),
        }}})
    }
}
