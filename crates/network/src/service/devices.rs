//! Ports seen from compute: a server's addresses (fixed and floating, by
//! network name) and security groups, and group changes on all its ports.

use std::collections::HashMap;

use ferro_common::{time, AuthContext};
use ferro_store::sqlx;

use super::NetworkService;
use crate::error::{NetworkError, Result};
use crate::model::{Network, SecurityGroup};

/// One address of a server as Nova shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceAddress {
    pub network_name: String,
    pub addr: String,
    /// `fixed` or `floating`.
    pub kind: &'static str,
    pub mac: String,
}

/// What compute shows of a server's networking.
#[derive(Clone, Debug, Default)]
pub struct DeviceNet {
    pub addresses: Vec<DeviceAddress>,
    /// Names of the groups on any of its ports.
    pub security_groups: Vec<String>,
}

impl NetworkService {
    /// Networking of the given devices (every device when `None`).
    pub async fn devices(
        &self,
        device_ids: Option<&[String]>,
    ) -> Result<HashMap<String, DeviceNet>> {
        type Row = (String, String, String, String, String, String);
        let base = "SELECT p.device_id, p.id, p.mac_address, p.security_groups, n.name, a.ip_address \
                    FROM ports p JOIN networks n ON n.id = p.network_id JOIN ip_allocations a ON a.port_id = p.id \
                    WHERE p.device_owner LIKE 'compute:%'";
        let mut rows: Vec<Row> = Vec::new();
        match device_ids {
            None => {
                rows = sqlx::query_as(&format!("{base} ORDER BY p.seq, a.ip_address"))
                    .fetch_all(self.pool())
                    .await?
            }
            // A page of servers: their ports only, a few hundred ids per
            // query (well under every backend's limit on bound values).
            Some(ids) => {
                for chunk in ids.chunks(500) {
                    let sql = format!(
                        "{base} AND p.device_id IN ({}) ORDER BY p.seq, a.ip_address",
                        ferro_store::marks(1, chunk.len())
                    );
                    let mut q = sqlx::query_as::<_, Row>(&sql);
                    for id in chunk {
                        q = q.bind(id);
                    }
                    rows.extend(q.fetch_all(self.pool()).await?);
                }
            }
        }
        if rows.is_empty() {
            return Ok(HashMap::new());
        }
        let mut fips: HashMap<(String, String), Vec<String>> = HashMap::new();
        let fip_rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT port_id, fixed_ip_address, floating_ip_address FROM floatingips WHERE port_id IS NOT NULL")
                .fetch_all(self.pool())
                .await?;
        for (port, fixed, floating) in fip_rows {
            fips.entry((port, fixed)).or_default().push(floating);
        }
        let groups: HashMap<String, String> =
            sqlx::query_as::<_, (String, String)>("SELECT id, name FROM security_groups")
                .fetch_all(self.pool())
                .await?
                .into_iter()
                .collect();
        let mut out: HashMap<String, DeviceNet> = HashMap::new();
        for (device, port, mac, sgs, net_name, ip) in rows {
            let d = out.entry(device).or_default();
            let floating = fips.remove(&(port, ip.clone())).unwrap_or_default();
            d.addresses.push(DeviceAddress {
                network_name: net_name.clone(),
                addr: ip,
                kind: "fixed",
                mac: mac.clone(),
            });
            for addr in floating {
                d.addresses.push(DeviceAddress {
                    network_name: net_name.clone(),
                    addr,
                    kind: "floating",
                    mac: mac.clone(),
                });
            }
            for g in serde_json::from_str::<Vec<String>>(&sgs).unwrap_or_default() {
                if let Some(name) = groups.get(&g) {
                    if !d.security_groups.contains(name) {
                        d.security_groups.push(name.clone());
                    }
                }
            }
        }
        Ok(out)
    }

    /// The network `auto` boots on: the only one the project may use that
    /// isn't external; `None` when there is none.
    pub async fn auto_network(&self, ctx: &AuthContext) -> Result<Option<Network>> {
        let usable: Vec<Network> = self
            .networks(ctx)
            .await?
            .into_iter()
            .filter(|n| {
                n.external == 0
                    && (ctx.project_id() == Some(n.project_id.as_str()) || n.shared != 0)
            })
            .collect();
        match usable.len() {
            0 => Ok(None),
            1 => Ok(usable.into_iter().next()),
            _ => Err(NetworkError::conflict(
                "NetworkAmbiguous",
                "Multiple possible networks found, use a Network ID to be more specific.",
            )),
        }
    }

    /// A group of `project` by id or by name (`default` is made if needed).
    pub async fn resolve_group(&self, project: &str, name_or_id: &str) -> Result<SecurityGroup> {
        if let Some(g) = self
            .group(name_or_id)
            .await?
            .filter(|g| g.project_id == project)
        {
            return Ok(g);
        }
        if name_or_id == "default" {
            return self.default_group(project).await;
        }
        let found: Vec<SecurityGroup> =
            sqlx::query_as("SELECT * FROM security_groups WHERE project_id = $1 AND name = $2")
                .bind(project)
                .bind(name_or_id)
                .fetch_all(self.pool())
                .await?;
        match found.len() {
            1 => Ok(found
                .into_iter()
                .next()
                .ok_or_else(|| NetworkError::internal("vanished"))?),
            0 => Err(NetworkError::not_found(
                "SecurityGroupNotFound",
                format!("Security group {name_or_id} not found for project {project}."),
            )),
            _ => Err(NetworkError::conflict(
                "DuplicateSecurityGroup",
                format!("Multiple security groups named {name_or_id} found; use an id."),
            )),
        }
    }

    /// Adds (`add`) or removes a group on every port of a device. Returns
    /// false when nothing changed (already there, or not there).
    pub async fn set_device_group(
        &self,
        device_id: &str,
        group_id: &str,
        add: bool,
    ) -> Result<bool> {
        let ports: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT id, security_groups, port_security FROM ports WHERE device_id = $1 AND device_owner LIKE 'compute:%'")
                .bind(device_id)
                .fetch_all(self.pool())
                .await?;
        let mut changed = false;
        let mut tx = self.pool().begin().await?;
        for (id, groups, port_security) in ports {
            let mut g: Vec<String> = serde_json::from_str(&groups).unwrap_or_default();
            let had = g.iter().any(|x| x == group_id);
            if add && !had && port_security != 0 {
                g.push(group_id.to_owned());
            } else if !add && had {
                g.retain(|x| x != group_id);
            } else {
                continue;
            }
            changed = true;
            sqlx::query("UPDATE ports SET security_groups = $1, revision = revision + 1, updated_at = $2 WHERE id = $3")
                .bind(serde_json::to_string(&g).unwrap_or_else(|_| "[]".into()))
                .bind(time::now_micros())
                .bind(&id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if changed {
            self.changed();
        }
        Ok(changed)
    }
}

impl NetworkService {
    /// The security groups on any port of a device, with their rules, in
    /// the order the ports first name them.
    pub async fn device_groups(
        &self,
        device_id: &str,
    ) -> Result<Vec<(SecurityGroup, Vec<crate::model::Rule>)>> {
        let lists: Vec<(String,)> = sqlx::query_as(
            "SELECT security_groups FROM ports WHERE device_id = $1 AND device_owner LIKE 'compute:%' ORDER BY seq",
        )
        .bind(device_id)
        .fetch_all(self.pool())
        .await?;
        let mut ids: Vec<String> = Vec::new();
        for (l,) in lists {
            for g in serde_json::from_str::<Vec<String>>(&l).unwrap_or_default() {
                if !ids.contains(&g) {
                    ids.push(g);
                }
            }
        }
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rules = self.rules_of(Some(&ids)).await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in &ids {
            if let Some(g) = self.group(id).await? {
                let mine = rules
                    .iter()
                    .filter(|r| r.security_group_id == *id)
                    .cloned()
                    .collect();
                out.push((g, mine));
            }
        }
        Ok(out)
    }
}
