//! The garbage collector: finds what belongs to no live resource — ports
//! compute made for a server that no longer exists, a floating IP's or a
//! router's port whose floating IP or router is gone, addresses of ports
//! that no longer exist, placement allocations of no server, volume
//! mappings and attachments of no server — removes each and logs it.
//!
//! With sagas writing the server row first and removing it last, nothing
//! should ever be found; the collector is the backstop for what a bug, an
//! operator's hand in the database or a release before the sagas left
//! behind. [`leaks`] is also the leak checker of the crash tests.

use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;
use crate::nics::from_network;
use crate::service::ComputeService;

/// One thing that belongs to nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leak {
    /// `port`, `ip_allocation`, `allocation`, `volume_mapping` or
    /// `volume_attachment`.
    pub kind: &'static str,
    pub id: String,
    /// The resource it names that does not exist.
    pub owner: String,
}

impl std::fmt::Display for Leak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} (of {}, which does not exist)",
            self.kind, self.id, self.owner
        )
    }
}

/// Everything that belongs to no live resource, read in one pass.
pub async fn leaks(pool: &sqlx::AnyPool) -> Result<Vec<Leak>> {
    let mut out = Vec::new();
    let ports: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, device_id FROM ports WHERE made_by = 'compute' \
         AND device_id NOT IN (SELECT id FROM servers) ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    out.extend(ports.into_iter().map(|(id, owner)| Leak {
        kind: "port",
        id,
        owner,
    }));
    // The network's own ports: a floating IP's address, a router's
    // gateway or interface, whose floating IP or router is gone.
    let owned: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, device_id FROM ports WHERE \
         (device_owner = 'network:floatingip' AND device_id NOT IN (SELECT id FROM floatingips)) \
         OR (device_owner = 'network:router_gateway' \
             AND id NOT IN (SELECT gw_port_id FROM routers WHERE gw_port_id IS NOT NULL)) \
         OR (device_owner = 'network:router_interface' AND device_id NOT IN (SELECT id FROM routers)) \
         ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    out.extend(owned.into_iter().map(|(id, owner)| Leak {
        kind: "port",
        id,
        owner,
    }));
    let ips: Vec<(String, String)> = sqlx::query_as(
        "SELECT ip_address, port_id FROM ip_allocations \
         WHERE port_id NOT IN (SELECT id FROM ports) ORDER BY ip_address",
    )
    .fetch_all(pool)
    .await?;
    out.extend(ips.into_iter().map(|(id, owner)| Leak {
        kind: "ip_allocation",
        id,
        owner,
    }));
    let allocations: Vec<(String,)> = sqlx::query_as(
        "SELECT consumer_id FROM allocations WHERE consumer_id NOT IN (SELECT id FROM servers) \
         AND consumer_id NOT IN (SELECT id || '-resize' FROM servers) ORDER BY consumer_id",
    )
    .fetch_all(pool)
    .await?;
    out.extend(allocations.into_iter().map(|(id,)| Leak {
        kind: "allocation",
        owner: id.trim_end_matches("-resize").to_owned(),
        id,
    }));
    let mappings: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, server_id FROM block_device_mappings \
         WHERE server_id NOT IN (SELECT id FROM servers) ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    out.extend(mappings.into_iter().map(|(id, owner)| Leak {
        kind: "volume_mapping",
        id,
        owner,
    }));
    // A volume held for a server that is gone, with no saga still at work
    // on the attachment.
    let attachments: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, server_id FROM volume_attachments WHERE server_id IS NOT NULL \
         AND server_id NOT IN (SELECT id FROM servers) \
         AND id NOT IN (SELECT resource_id FROM sagas) ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    out.extend(attachments.into_iter().map(|(id, owner)| Leak {
        kind: "volume_attachment",
        id,
        owner,
    }));
    Ok(out)
}

impl ComputeService {
    /// Removes every leak found; returns what it removed.
    pub async fn collect_garbage(&self) -> Result<Vec<Leak>> {
        let found = leaks(self.pool()).await?;
        for l in &found {
            match l.kind {
                "port" => self
                    .network
                    .remove_port(&l.id)
                    .await
                    .map_err(from_network)?,
                "ip_allocation" => {
                    sqlx::query(
                        "DELETE FROM ip_allocations WHERE port_id = $1 AND ip_address = $2",
                    )
                    .bind(&l.owner)
                    .bind(&l.id)
                    .execute(self.pool())
                    .await?;
                }
                "volume_mapping" => {
                    sqlx::query("DELETE FROM block_device_mappings WHERE id = $1")
                        .bind(&l.id)
                        .execute(self.pool())
                        .await?;
                }
                "volume_attachment" => {
                    if let Some(api) = self.volumes.get() {
                        api.release(&l.id).await?;
                    }
                }
                _ => {
                    ferro_placement::inventory::release(self.pool(), &l.id).await?;
                }
            }
            tracing::warn!(kind = l.kind, id = %l.id, owner = %l.owner, "garbage collected");
        }
        Ok(found)
    }

    /// Collects garbage shortly after start and then every minute, until
    /// the controller stops. With several controllers each collects; the
    /// removals are idempotent.
    pub async fn run_gc(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut wait = Duration::from_secs(10);
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            wait = Duration::from_secs(60);
            if let Err(e) = self.collect_garbage().await {
                tracing::warn!(error = %e, "garbage collection failed");
            }
        }
    }
}
