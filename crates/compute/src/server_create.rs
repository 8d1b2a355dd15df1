//! The server-create saga: a boot as a durable sequence of steps.
//!
//! ```text
//!  accept: server row (BUILD, task networking) + saga, one transaction
//!    │   ids of the server and of every port it will get are made here
//!    ▼
//!  ports: make each port (by its planned id) or take the user's port;
//!    │    record them in the row, task → scheduling
//!    ▼
//!  volumes: make the volumes the block device mappings ask for (by their
//!    │      planned ids), wait for them, attach each (mapping `attached`);
//!    │      a refusal puts the server in ERROR
//!    ▼
//!  schedule: pick a host, claim, bind the ports to it (task → spawning)
//!    ▼
//!  done (the agent takes it from here)
//!
//!  a permanent error in `ports` unwinds:
//!  unwind-ports: remove the ports made, release the ports taken
//!    ▼
//!  unwind-server: the row, its actions and group membership go, as if the
//!                 request never came (a failure in `schedule` is not
//!                 undone this way: the server goes to ERROR, as Nova's do)
//! ```
//!
//! The row is written first, so the API never answers 404 for a server
//! whose ports exist; every step re-reads the row and stops if a delete
//! took the server over (the delete saga waits for this one to end, then
//! removes whatever ports exist by device id).

use std::sync::Arc;

use ferro_common::{ids, time, AuthContext};
use ferro_network::service::{FixedIpRequest, PortCreate};
use serde::{Deserialize, Serialize};

use crate::error::{ComputeError, Result};
use crate::executor::Outcome;
use crate::nics::{from_network, Nic, NicRequest};
use crate::saga::{self, failpoint, Saga};
use crate::service::ComputeService;
use crate::volumes::NewVolume;

/// One interface of the plan: a port to make (its id chosen now) or a
/// user's port to take.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlannedNic {
    pub port_id: String,
    pub network_id: Option<String>,
    pub fixed_ip: Option<String>,
    /// The user's port, taken rather than made.
    pub taken: bool,
}

/// A volume a `server create` asks for (`block_device_mapping_v2` with a
/// `volume` destination).
#[derive(Clone, Debug)]
pub struct VolumeRequest {
    /// The user's volume; `None` when one is made.
    pub existing: Option<String>,
    pub make: Option<NewVolume>,
    /// GiB (`volume_size`).
    pub size: Option<i64>,
    /// `boot_index` 0: the server boots from it.
    pub boot: bool,
    pub delete_on_termination: bool,
}

/// One volume of the plan, its ids chosen now.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlannedVolume {
    /// The block device mapping's id, and the attachment's.
    pub attachment_id: String,
    pub volume_id: String,
    /// What to make it from; `None` for the user's own volume.
    pub make: Option<NewVolume>,
    pub size: Option<i64>,
    /// `/dev/vda` for the one the server boots from.
    pub device: String,
    pub delete_on_termination: bool,
}

/// The saga's parameters.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    /// The caller, on whose behalf ports are made.
    pub ctx: AuthContext,
    pub hostname: String,
    pub nics: Vec<PlannedNic>,
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub volumes: Vec<PlannedVolume>,
}

impl Plan {
    pub fn new(
        ctx: &AuthContext,
        hostname: &str,
        wanted: &[NicRequest],
        security_groups: &[String],
        disks: &[VolumeRequest],
    ) -> Plan {
        let mut taken: Vec<String> = Vec::new();
        let mut volumes = Vec::new();
        // The boot volume first: it is /dev/vda.
        for d in disks
            .iter()
            .filter(|d| d.boot)
            .chain(disks.iter().filter(|d| !d.boot))
        {
            let device = if d.boot {
                ferro_agent_api::spec::ROOT_DEVICE.to_owned()
            } else {
                crate::volumes::next_device(&taken).unwrap_or_default()
            };
            taken.push(device.clone());
            volumes.push(PlannedVolume {
                attachment_id: ids::uuid_id(),
                volume_id: d.existing.clone().unwrap_or_else(ids::uuid_id),
                make: d.make.clone(),
                size: d.size,
                device,
                delete_on_termination: d.delete_on_termination,
            });
        }
        let nics = wanted
            .iter()
            .map(|w| match w {
                NicRequest::Network {
                    network_id,
                    fixed_ip,
                } => PlannedNic {
                    port_id: ids::uuid_id(),
                    network_id: Some(network_id.clone()),
                    fixed_ip: fixed_ip.clone(),
                    taken: false,
                },
                NicRequest::Port { port_id } => PlannedNic {
                    port_id: port_id.clone(),
                    network_id: None,
                    fixed_ip: None,
                    taken: true,
                },
            })
            .collect();
        Plan {
            ctx: ctx.clone(),
            hostname: hostname.to_owned(),
            nics,
            security_groups: security_groups.to_vec(),
            volumes,
        }
    }
}

/// Everything the server row of a create holds.
pub struct NewServer<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub project_id: &'a str,
    pub image_id: &'a str,
    pub flavor_snapshot: &'a str,
    pub key_name: Option<&'a str>,
    pub key_data: Option<&'a str>,
    pub user_data: Option<&'a str>,
    pub config_drive: bool,
    pub metadata: &'a str,
    pub availability_zone: Option<&'a str>,
    pub security_group_names: &'a str,
    pub description: Option<&'a str>,
    pub tags: &'a str,
    pub hostname: &'a str,
    pub reservation_id: &'a str,
    pub launch_index: i64,
    pub access_ipv4: Option<&'a str>,
    pub access_ipv6: Option<&'a str>,
    /// `AUTO` or `MANUAL`.
    pub disk_config: &'a str,
    pub server_group: Option<&'a str>,
    /// The one host the server may go to (`zone:host`, or `host` from 2.74).
    pub forced_host: Option<&'a str>,
    pub request_id: &'a str,
}

impl ComputeService {
    /// Writes the server row, its group membership, its `create` action and
    /// the saga that will give it ports and a host, in one transaction.
    /// Returns the saga's id.
    pub async fn accept_server(&self, n: &NewServer<'_>, plan: &Plan) -> Result<String> {
        let seq = self.next("instances").await?;
        let now = time::now_micros();
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO servers (id, seq, name, project_id, user_id, image_id, flavor, key_name, key_data, user_data, \
             config_drive, metadata, availability_zone, host, vm_state, task_state, power_state, desired_power, networks, \
             security_groups, description, tags, hostname, reservation_id, launch_index, created_at, updated_at, \
             access_ipv4, access_ipv6, disk_config) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULL, 'building', 'networking', 0, 'running', \
             '[]', $14, $15, $16, $17, $18, $19, $20, $20, $21, $22, $23)",
        )
        .bind(n.id)
        .bind(seq)
        .bind(n.name)
        .bind(n.project_id)
        .bind(&plan.ctx.user_id)
        .bind(n.image_id)
        .bind(n.flavor_snapshot)
        .bind(n.key_name)
        .bind(n.key_data)
        .bind(n.user_data)
        .bind(i64::from(n.config_drive))
        .bind(n.metadata)
        .bind(n.availability_zone)
        .bind(n.security_group_names)
        .bind(n.description)
        .bind(n.tags)
        .bind(n.hostname)
        .bind(n.reservation_id)
        .bind(n.launch_index)
        .bind(now)
        .bind(n.access_ipv4.unwrap_or(""))
        .bind(n.access_ipv6.unwrap_or(""))
        .bind(n.disk_config)
        .execute(&mut *tx)
        .await?;
        // A forced host: every other host counts as tried already (as an
        // evacuation onto one host does), so the scheduler has that one only.
        if let Some(h) = n.forced_host {
            let others: Vec<(String,)> = sqlx::query_as("SELECT name FROM hosts WHERE name <> $1")
                .bind(h)
                .fetch_all(&mut *tx)
                .await?;
            let others: Vec<String> = others.into_iter().map(|(o,)| o).collect();
            sqlx::query("UPDATE servers SET tried_hosts = $1 WHERE id = $2")
                .bind(serde_json::to_string(&others).unwrap_or_default())
                .bind(n.id)
                .execute(&mut *tx)
                .await?;
        }
        // Every volume the server will have is recorded with it from the
        // start (`pending`), so a delete or the collector finds them.
        for v in &plan.volumes {
            sqlx::query(
                "INSERT INTO block_device_mappings (id, server_id, volume_id, device, state, delete_on_termination, created_at) \
                 VALUES ($1, $2, $3, $4, 'pending', $5, $6)",
            )
            .bind(&v.attachment_id)
            .bind(n.id)
            .bind(&v.volume_id)
            .bind(&v.device)
            .bind(i64::from(v.delete_on_termination))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(g) = n.server_group {
            sqlx::query("INSERT INTO server_group_members (group_id, server_id) VALUES ($1, $2)")
                .bind(g)
                .bind(n.id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO instance_actions (id, server_id, request_id, action, project_id, user_id, message, start_time, updated_at) \
             VALUES ($1, $2, $3, 'create', $4, $5, NULL, $6, $6)",
        )
        .bind(ids::uuid_id())
        .bind(n.id)
        .bind(n.request_id)
        .bind(n.project_id)
        .bind(&plan.ctx.user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let params = serde_json::to_string(plan)
            .map_err(|e| ComputeError::Internal(format!("encoding a saga: {e}")))?;
        let saga_id = saga::insert(
            &mut tx,
            saga::Kind::ServerCreate,
            n.id,
            &params,
            "ports",
            &self.holder,
        )
        .await?;
        tx.commit().await?;
        tracing::info!(server_id = %n.id, saga_id = %saga_id, "server accepted");
        failpoint("server-create.accepted");
        Ok(saga_id)
    }

    /// Runs one step of a create saga.
    pub(crate) async fn create_step(self: &Arc<Self>, saga: &Saga) -> Result<Outcome> {
        let plan: Plan = serde_json::from_str(&saga.params).map_err(|e| {
            ComputeError::Internal(format!("saga {}: unreadable plan: {e}", saga.id))
        })?;
        let id = saga.resource_id.as_str();
        match saga.step.as_str() {
            "ports" => self.make_ports(saga, id, &plan).await,
            "volumes" => self.make_volumes(id, &plan).await,
            "schedule" => {
                self.schedule_built(id).await?;
                failpoint("server-create.scheduled");
                Ok(Outcome::Done)
            }
            "unwind-ports" => {
                self.release_planned_ports(id, &plan).await?;
                Ok(Outcome::Next("unwind-server"))
            }
            "unwind-server" => {
                self.forget_server(id).await?;
                Ok(Outcome::Done)
            }
            other => Err(ComputeError::Internal(format!(
                "saga {}: unknown step {other}",
                saga.id
            ))),
        }
    }

    /// The server's task state (`None` also when the row is gone).
    async fn task_state(&self, id: &str) -> Result<Option<String>> {
        let row: Option<(Option<String>,)> =
            sqlx::query_as("SELECT task_state FROM servers WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.and_then(|(t,)| t))
    }

    async fn make_ports(&self, saga: &Saga, id: &str, plan: &Plan) -> Result<Outcome> {
        let mut nics = Vec::new();
        for n in &plan.nics {
            match self.task_state(id).await?.as_deref() {
                Some("networking") => {}
                // Recorded before a crash that came ahead of the step's end.
                Some("scheduling") => return Ok(Outcome::Next("volumes")),
                _ => {
                    tracing::info!(server_id = %id, "the server is being deleted; the create stops");
                    return Ok(Outcome::Done);
                }
            }
            let existing = self.network.port(&n.port_id).await.map_err(from_network)?;
            if n.taken {
                let p = existing.ok_or_else(|| {
                    ComputeError::BadRequest(format!("Port {} could not be found.", n.port_id))
                })?;
                if !p.device_id.is_empty() && p.device_id != id {
                    return Err(ComputeError::Conflict(format!(
                        "Port {} is still in use.",
                        n.port_id
                    )));
                }
                self.network
                    .bind_port(&n.port_id, id, "", &plan.hostname)
                    .await
                    .map_err(from_network)?;
                nics.push(Nic {
                    port_id: n.port_id.clone(),
                    network_id: p.network_id,
                    created: false,
                });
                continue;
            }
            let network_id = n.network_id.clone().unwrap_or_default();
            if existing.is_none() {
                self.network
                    .create_port(
                        &plan.ctx,
                        PortCreate {
                            id: Some(n.port_id.clone()),
                            made_by: Some("compute".into()),
                            network_id: Some(network_id.clone()),
                            device_id: Some(id.to_owned()),
                            device_owner: Some(ferro_network::model::owner::COMPUTE.to_owned()),
                            dns_name: Some(plan.hostname.clone()),
                            fixed_ips: n.fixed_ip.as_ref().map(|ip| {
                                vec![FixedIpRequest {
                                    subnet_id: None,
                                    ip_address: Some(ip.clone()),
                                }]
                            }),
                            security_groups: (!plan.security_groups.is_empty())
                                .then(|| plan.security_groups.clone()),
                            ..Default::default()
                        },
                    )
                    .await
                    .map_err(from_network)?;
                tracing::info!(server_id = %id, port_id = %n.port_id, "port made for the server");
                failpoint("server-create.port-made");
            }
            nics.push(Nic {
                port_id: n.port_id.clone(),
                network_id,
                created: true,
            });
            saga::advance(self.pool(), &saga.id, &self.holder, "ports").await?;
        }
        let moved = sqlx::query(
            "UPDATE servers SET state_generation = state_generation + 1, networks = $1, task_state = 'scheduling', \
             updated_at = $2 WHERE id = $3 AND task_state = 'networking'",
        )
        .bind(serde_json::to_string(&nics).unwrap_or_else(|_| "[]".into()))
        .bind(time::now_micros())
        .bind(id)
        .execute(self.pool())
        .await?
        .rows_affected();
        if moved == 0 {
            return Ok(match self.task_state(id).await?.as_deref() {
                Some("scheduling") => Outcome::Next("volumes"),
                _ => Outcome::Done,
            });
        }
        failpoint("server-create.ports-recorded");
        Ok(Outcome::Next("volumes"))
    }

    /// Makes and attaches the plan's volumes, one after the other; waits
    /// while one is being made. A volume the volume service refuses or
    /// fails to make puts the server in ERROR with the reason (the API has
    /// answered already); its delete releases what was attached.
    async fn make_volumes(&self, id: &str, plan: &Plan) -> Result<Outcome> {
        if plan.volumes.is_empty() {
            return Ok(Outcome::Next("schedule"));
        }
        if self.task_state(id).await?.as_deref() != Some("scheduling") {
            tracing::info!(server_id = %id, "the server is being deleted; the create stops");
            return Ok(Outcome::Done);
        }
        let api = self.volume_api()?;
        for v in &plan.volumes {
            let Some(m) = crate::volumes::mapping(self.pool(), &v.attachment_id).await? else {
                continue;
            };
            if m.state == "attached" {
                continue;
            }
            match self.volume_ready(api.as_ref(), id, plan, v).await {
                Ok(true) => {}
                Ok(false) => return Ok(Outcome::Wait(500_000)),
                Err(reason) => return self.abort_build(id, &reason).await,
            }
            // Attached before the host starts the server: it boots with it.
            let attach = async {
                api.reserve(&plan.ctx, &v.attachment_id, &v.volume_id, id)
                    .await?;
                api.connect(&v.attachment_id, "", &v.device).await?;
                api.complete(&v.attachment_id).await
            };
            if let Err(e) = attach.await {
                return self.abort_build(id, &e.to_string()).await;
            }
            sqlx::query("UPDATE block_device_mappings SET state = 'attached' WHERE id = $1")
                .bind(&v.attachment_id)
                .execute(self.pool())
                .await?;
            tracing::info!(server_id = %id, volume_id = %v.volume_id, device = %v.device, "volume attached for the build");
            failpoint("server-create.volume-attached");
        }
        Ok(Outcome::Next("schedule"))
    }

    /// The build can't have its volumes: the server goes to ERROR saying
    /// why, and the create saga ends there.
    async fn abort_build(&self, id: &str, reason: &str) -> Result<Outcome> {
        if let Some(s) = self.server(id).await? {
            self.fail(&s, &format!("Build of instance {id} aborted: {reason}"))
                .await?;
        }
        Ok(Outcome::Done)
    }

    /// Makes the volume if the plan makes it; true once it can be attached,
    /// false while it is being made, the reason if it can't be had.
    async fn volume_ready(
        &self,
        api: &dyn crate::volumes::VolumeApi,
        id: &str,
        plan: &Plan,
        v: &PlannedVolume,
    ) -> std::result::Result<bool, String> {
        if let Some(source) = &v.make {
            let name = format!(
                "{}-{}",
                plan.hostname,
                &v.volume_id[..8.min(v.volume_id.len())]
            );
            api.create_for_server(&plan.ctx, &v.volume_id, &name, source, v.size)
                .await
                .map_err(|e| e.to_string())?;
        }
        let info = api
            .volume(&plan.ctx, &v.volume_id)
            .await
            .map_err(|e| e.to_string())?;
        match info.status.as_str() {
            "creating" | "downloading" => Ok(false),
            "available" => Ok(true),
            // Reserved or in use by this very server (a step run again).
            "reserved" | "attaching" | "in-use" => Ok(true),
            other => Err(format!(
                "volume {} of instance {id} is {other}",
                v.volume_id
            )),
        }
    }

    /// Schedules a server whose ports are made, then binds its ports to the
    /// chosen host again (a crash between the claim and the binding leaves
    /// them unbound; binding twice is harmless).
    async fn schedule_built(self: &Arc<Self>, id: &str) -> Result<()> {
        self.schedule(id).await?;
        if let Some(s) = self.server(id).await? {
            if let Some(host) = &s.host {
                for nic in s.nics() {
                    self.network
                        .bind_port(&nic.port_id, &s.id, host, &s.hostname)
                        .await
                        .map_err(from_network)?;
                }
            }
        }
        Ok(())
    }

    /// Removes the ports the plan made and releases the ones it took (only
    /// while they are still this server's).
    async fn release_planned_ports(&self, id: &str, plan: &Plan) -> Result<()> {
        for n in &plan.nics {
            let Some(p) = self.network.port(&n.port_id).await.map_err(from_network)? else {
                continue;
            };
            if p.device_id != id {
                continue;
            }
            if n.taken {
                self.network
                    .unbind_port(&n.port_id)
                    .await
                    .map_err(from_network)?;
            } else {
                self.network
                    .remove_port(&n.port_id)
                    .await
                    .map_err(from_network)?;
            }
        }
        Ok(())
    }

    /// Removes a server that never came to be: row, actions, group
    /// membership and any claim.
    async fn forget_server(&self, id: &str) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        for sql in [
            "DELETE FROM allocations WHERE consumer_id = $1",
            "DELETE FROM server_group_members WHERE server_id = $1",
            "DELETE FROM instance_actions WHERE server_id = $1",
            "DELETE FROM block_device_mappings WHERE server_id = $1",
            "DELETE FROM servers WHERE id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        tracing::info!(server_id = %id, "a refused create was undone");
        Ok(())
    }
}
