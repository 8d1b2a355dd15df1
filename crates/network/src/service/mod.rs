//! Network logic, without HTTP: who may see and change what, IPAM-backed
//! ports, routers and floating IPs, security groups, quotas.
//!
//! Every write bumps [`NetworkService::changes`], which host agents watch to
//! reconcile their dataplane at once instead of at their next tick.

mod agents;
mod devices;
mod hostview;
mod networks;
mod ports;
mod routers;
mod security;

use std::collections::HashMap;

use ferro_common::auth::SharedAuth;
use ferro_common::policy::{self, Rule, Target};
use ferro_common::AuthContext;
use ferro_store::{sqlx, Db};
use tokio::sync::watch;

use crate::error::{NetworkError, Result};
use crate::model::FixedIp;

pub use agents::Agent;
pub use devices::{DeviceAddress, DeviceNet};
pub use networks::{NetworkCreate, NetworkUpdate, SubnetCreate, SubnetUpdate};
pub use ports::{FixedIpRequest, PortCreate, PortUpdate};
pub use routers::{FloatingIpCreate, RouterCreate, RouterUpdate};
pub use security::{RuleCreate, SecurityGroupCreate};

/// Settings of the network service.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// Physical networks flat and VLAN provider networks may use (the
    /// names of the agents' bridge mappings, e.g. `physnet1`).
    pub physical_networks: Vec<String>,
    /// MTU of flat and VLAN networks; VXLAN networks get 50 bytes less.
    pub physical_mtu: i64,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            physical_networks: vec!["physnet1".into()],
            physical_mtu: 1500,
        }
    }
}

pub const DEFAULT_QUOTAS: &[(&str, i64)] = &[
    ("network", 100),
    ("subnet", 100),
    ("port", 500),
    ("router", 10),
    ("floatingip", 50),
    ("security_group", 10),
    ("security_group_rule", 100),
    ("rbac_policy", 10),
    ("subnetpool", -1),
];

pub struct NetworkService {
    pub db: Db,
    pub auth: SharedAuth,
    /// `http://host:9696`
    pub base_url: String,
    pub config: NetworkConfig,
    changes: watch::Sender<u64>,
}

impl NetworkService {
    pub fn new(db: Db, auth: SharedAuth, base_url: String, config: NetworkConfig) -> Self {
        NetworkService {
            db,
            auth,
            base_url,
            config,
            changes: watch::channel(0).0,
        }
    }

    pub fn pool(&self) -> &sqlx::AnyPool {
        self.db.pool()
    }

    /// A receiver that sees a new value after every change of network state.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    pub(crate) fn changed(&self) {
        self.changes.send_modify(|g| *g += 1);
    }

    /// Another service changed what hosts' dataplanes run (load
    /// balancers): agents reconcile now.
    pub fn notify_changed(&self) {
        self.changed();
    }

    /// The project a create acts for: the caller's, or (admins only)
    /// another named in the body.
    pub(crate) fn owner(&self, ctx: &AuthContext, asked: Option<&str>) -> Result<String> {
        match (asked.filter(|p| !p.is_empty()), ctx.project_id()) {
            (Some(p), Some(own)) if p == own => Ok(p.to_owned()),
            (Some(p), _) if ctx.is_admin() => Ok(p.to_owned()),
            (Some(_), _) => Err(NetworkError::new(
                http::StatusCode::FORBIDDEN,
                "PolicyNotAuthorized",
                "Specifying 'project_id' or 'tenant_id' other than the authenticated project in request requires admin privileges",
            )),
            (None, Some(own)) => Ok(own.to_owned()),
            (None, None) => Err(NetworkError::bad(
                "A project-scoped token (or an explicit project_id) is required to create resources.",
            )),
        }
    }

    /// Refuses changes to another project's resource.
    pub(crate) fn check_write(
        &self,
        ctx: &AuthContext,
        action: policy::Action,
        project: &str,
    ) -> Result<()> {
        policy::enforce(
            ctx,
            action,
            Rule::ProjectMember,
            Target {
                project_id: Some(project),
                user_id: None,
            },
        )?;
        Ok(())
    }

    pub(crate) fn owns(ctx: &AuthContext, project: &str) -> bool {
        ctx.is_admin() || ctx.project_id() == Some(project)
    }

    // ---- quotas ----

    pub async fn quotas(&self, project: &str) -> Result<HashMap<String, i64>> {
        let mut q: HashMap<String, i64> = DEFAULT_QUOTAS
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT resource, hard_limit FROM network_quotas WHERE project_id = $1")
                .bind(project)
                .fetch_all(self.pool())
                .await?;
        q.extend(rows);
        Ok(q)
    }

    pub async fn set_quotas(&self, project: &str, values: &HashMap<String, i64>) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        for (k, v) in values {
            sqlx::query("DELETE FROM network_quotas WHERE project_id = $1 AND resource = $2")
                .bind(project)
                .bind(k)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO network_quotas (project_id, resource, hard_limit) VALUES ($1, $2, $3)",
            )
            .bind(project)
            .bind(k)
            .bind(v)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn reset_quotas(&self, project: &str) -> Result<()> {
        sqlx::query("DELETE FROM network_quotas WHERE project_id = $1")
            .bind(project)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// How many of each resource a project holds.
    pub async fn usage(&self, project: &str) -> Result<HashMap<String, i64>> {
        let mut u = HashMap::new();
        for (res, table) in [
            ("network", "networks"),
            ("subnet", "subnets"),
            ("port", "ports"),
            ("router", "routers"),
            ("floatingip", "floatingips"),
            ("security_group", "security_groups"),
            ("security_group_rule", "security_group_rules"),
        ] {
            let (n,): (i64,) = sqlx::query_as(&format!(
                "SELECT COUNT(*) FROM {table} WHERE project_id = $1"
            ))
            .bind(project)
            .fetch_one(self.pool())
            .await?;
            u.insert(res.to_owned(), n);
        }
        Ok(u)
    }

    /// Refuses one more `resource` beyond the project's quota (Neutron's
    /// `OverQuota`).
    pub(crate) async fn check_quota(
        &self,
        project: &str,
        resource: &str,
        table: &str,
    ) -> Result<()> {
        let limit = self
            .quotas(project)
            .await?
            .get(resource)
            .copied()
            .unwrap_or(-1);
        if limit < 0 {
            return Ok(());
        }
        let (n,): (i64,) = sqlx::query_as(&format!(
            "SELECT COUNT(*) FROM {table} WHERE project_id = $1"
        ))
        .bind(project)
        .fetch_one(self.pool())
        .await?;
        if n + 1 > limit {
            return Err(NetworkError::conflict(
                "OverQuota",
                format!("Quota exceeded for resources: ['{resource}']."),
            ));
        }
        Ok(())
    }

    // ---- fixed IPs, read in bulk ----

    /// Fixed IPs of the given ports (all ports when `None`), by port id.
    pub async fn fixed_ips(
        &self,
        port_ids: Option<&[String]>,
    ) -> Result<HashMap<String, Vec<FixedIp>>> {
        let rows: Vec<(String, String, String)> =
            match port_ids {
                Some([one]) => sqlx::query_as(
                    "SELECT port_id, subnet_id, ip_address FROM ip_allocations WHERE port_id = $1",
                )
                .bind(one)
                .fetch_all(self.pool())
                .await?,
                _ => {
                    sqlx::query_as("SELECT port_id, subnet_id, ip_address FROM ip_allocations")
                        .fetch_all(self.pool())
                        .await?
                }
            };
        let mut m: HashMap<String, Vec<FixedIp>> = HashMap::new();
        for (port, subnet_id, ip_address) in rows {
            if port_ids.is_none_or(|ids| ids.contains(&port)) {
                m.entry(port).or_default().push(FixedIp {
                    subnet_id,
                    ip_address,
                });
            }
        }
        for v in m.values_mut() {
            v.sort_by(|a, b| {
                (&a.subnet_id, ip_key(&a.ip_address)).cmp(&(&b.subnet_id, ip_key(&b.ip_address)))
            });
        }
        Ok(m)
    }
}

/// Sort key of a dotted IPv4 address.
pub(crate) fn ip_key(s: &str) -> u32 {
    s.parse::<std::net::Ipv4Addr>().map(u32::from).unwrap_or(0)
}

/// A sequence value for ordering lists by creation.
pub(crate) fn seq() -> i64 {
    ferro_common::time::now_micros()
}
