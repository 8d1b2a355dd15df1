//! Compute logic: quotas, the boot saga, power actions as desired state,
//! and the link agents use to fetch desired state and report.
//!
//! Booting is a saga whose state lives in the server row:
//!
//! ```text
//!  building/scheduling ──claim on host H──► building/spawning ──agent: running──► active
//!        ▲       │ no host fits                      │ agent: failed
//!        │       ▼                                   ▼
//!        │     error (fault: why)        release claim, remember H
//!        └────────── retry while attempts remain ────┘  (else error with the fault)
//! ```
//!
//! Every step re-reads the row and is safe to run twice; a restarted
//! controller re-drives servers left in `scheduling`. Everything after boot
//! is desired state (power, reboot and rebuild counters) that the host's
//! agent reconciles and reports back.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use ferro_agent_api::netspec::HostNetwork;
use ferro_agent_api::spec::{LinkError, MetadataTarget, NicSpec, PasswordPost, VolumeSpec};
use ferro_agent_api::{
    ControlPlane, DesiredState, HostAgent, HostInfo, InstanceSpec, Observed, Power, Report,
};
use ferro_common::auth::SharedAuth;
use ferro_common::{ids, time, AuthContext};
use ferro_image::ImageService;
use ferro_network::NetworkService;
use ferro_placement::inventory::{self, Claim};
use ferro_store::{sqlx, Db};
use serde_json::json;

use crate::error::{ComputeError, Result};
use crate::model::{power, Server};

pub use ferro_common::host::DOWN_AFTER_MICROS;

/// Whether a compute host counts as up now.
pub fn host_is_up(heartbeat_at: i64, forced_down: i64) -> bool {
    inventory::is_up(
        heartbeat_at,
        forced_down,
        time::now_micros(),
        DOWN_AFTER_MICROS,
    )
}
/// Hosts tried before a build gives up.
pub const MAX_ATTEMPTS: usize = 3;

pub const DEFAULT_QUOTAS: &[(&str, i64)] = &[
    ("instances", 10),
    ("cores", 20),
    ("ram", 51200),
    ("key_pairs", 100),
    ("metadata_items", 128),
    ("injected_files", 5),
    ("injected_file_content_bytes", 10240),
    ("injected_file_path_bytes", 255),
    ("server_groups", 10),
    ("server_group_members", 10),
];

/// Quotas Nova showed for its network proxies until 2.36 (`floating_ips`,
/// `security_groups`, …): shown and settable at those versions, with Nova's
/// defaults; the network service enforces its own.
pub const NETWORK_PROXY_QUOTAS: &[(&str, i64)] = &[
    ("fixed_ips", -1),
    ("floating_ips", 10),
    ("security_group_rules", 20),
    ("security_groups", 10),
];

/// The quota names a microversion shows: the network proxies until 2.36,
/// the injected-file ones until 2.57.
pub fn quota_names(v: crate::microversion::Version) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = DEFAULT_QUOTAS
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| !(v.at_least(57) && k.starts_with("injected_file")))
        .collect();
    if !v.at_least(36) {
        names.extend(NETWORK_PROXY_QUOTAS.iter().map(|(k, _)| *k));
    }
    names.sort_unstable();
    names
}

pub struct ComputeService {
    pub db: Db,
    pub images: Arc<ImageService>,
    pub network: Arc<NetworkService>,
    pub auth: SharedAuth,
    /// `http://host:8774/v2.1`
    pub base_url: String,
    /// The most servers a list answers at once (Nova's `[api] max_limit`).
    pub max_limit: usize,
    agents: RwLock<HashMap<String, Arc<dyn HostAgent>>>,
    /// Held while a server group's member is scheduled and claimed.
    group_lock: tokio::sync::Mutex<()>,
    /// This controller's name on the saga leases it holds.
    pub(crate) holder: String,
    /// Sagas a task of this process is driving, and whether something
    /// asked for them again meanwhile (see `executor`).
    pub(crate) driving: std::sync::Mutex<HashMap<String, bool>>,
    /// The block storage service, once the binary wires it.
    pub(crate) volumes: std::sync::OnceLock<Arc<dyn crate::volumes::VolumeApi>>,
    pub(crate) balancers: std::sync::OnceLock<Arc<dyn crate::balancers::Balancers>>,
    /// Every instance gets a config drive (Nova's `force_config_drive`);
    /// when off, only those created with `config_drive: true`.
    force_config_drive: std::sync::atomic::AtomicBool,
    /// The image service's public URL (`Location` of a snapshot before 2.45).
    pub(crate) image_url: std::sync::OnceLock<String>,
}

impl ComputeService {
    pub fn new(
        db: Db,
        images: Arc<ImageService>,
        network: Arc<NetworkService>,
        auth: SharedAuth,
        base_url: String,
        max_limit: usize,
        holder: String,
    ) -> Arc<Self> {
        Arc::new(ComputeService {
            db,
            images,
            network,
            auth,
            base_url,
            max_limit: max_limit.max(1),
            agents: RwLock::new(HashMap::new()),
            group_lock: tokio::sync::Mutex::new(()),
            holder,
            driving: std::sync::Mutex::new(HashMap::new()),
            volumes: std::sync::OnceLock::new(),
            balancers: std::sync::OnceLock::new(),
            force_config_drive: std::sync::atomic::AtomicBool::new(true),
            image_url: std::sync::OnceLock::new(),
        })
    }

    pub fn pool(&self) -> &sqlx::AnyPool {
        self.db.pool()
    }

    /// Makes an in-process agent reachable (console logs, wake-ups).
    pub fn attach_agent(&self, host: &str, agent: Arc<dyn HostAgent>) {
        if let Ok(mut a) = self.agents.write() {
            a.insert(host.to_owned(), agent);
        }
    }

    pub fn agent(&self, host: &str) -> Option<Arc<dyn HostAgent>> {
        self.agents.read().ok().and_then(|a| a.get(host).cloned())
    }

    /// Wakes every reachable agent (a change of network state may concern
    /// any host).
    pub fn wake_all(&self) {
        let agents: Vec<_> = self
            .agents
            .read()
            .map(|a| a.values().cloned().collect())
            .unwrap_or_default();
        for a in agents {
            a.wake();
        }
    }

    pub fn wake(&self, host: Option<&str>) {
        if let Some(a) = host.and_then(|h| self.agent(h)) {
            a.wake();
        }
    }

    /// A counter shared by every controller (instance names, host ids).
    pub async fn next(&self, name: &str) -> Result<i64> {
        let mut tx = self.pool().begin().await?;
        let n = sqlx::query("UPDATE counters SET value = value + 1 WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            sqlx::query("INSERT INTO counters (name, value) VALUES ($1, 1)")
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        let (v,): (i64,) = sqlx::query_as("SELECT value FROM counters WHERE name = $1")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(v)
    }

    pub async fn server(&self, id: &str) -> Result<Option<Server>> {
        Ok(
            sqlx::query_as("SELECT * FROM servers WHERE id = $1 AND deleted = 0")
                .bind(id)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// A server the caller may see (own project, or admin); 404 otherwise.
    pub async fn visible_server(&self, ctx: &AuthContext, id: &str) -> Result<Server> {
        match self.server(id).await? {
            Some(s) if ctx.is_admin() || ctx.project_id() == Some(s.project_id.as_str()) => Ok(s),
            _ => Err(ComputeError::NotFound(format!(
                "Instance {id} could not be found."
            ))),
        }
    }

    // ---- quotas ----

    /// A quota class's limits: the built-in defaults, as the class's own
    /// rows change them (the `default` class's are every project's
    /// defaults). A class's rows are kept under `quota-class:<name>`, which
    /// no project id can be.
    pub async fn class_quotas(&self, class: &str) -> Result<HashMap<String, i64>> {
        let mut q: HashMap<String, i64> = DEFAULT_QUOTAS
            .iter()
            .chain(NETWORK_PROXY_QUOTAS)
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        q.extend(self.quota_rows(&format!("quota-class:{class}")).await?);
        Ok(q)
    }

    async fn quota_rows(&self, key: &str) -> Result<Vec<(String, i64)>> {
        Ok(
            sqlx::query_as("SELECT resource, hard_limit FROM compute_quotas WHERE project_id = $1")
                .bind(key)
                .fetch_all(self.pool())
                .await?,
        )
    }

    /// A project's limits: the `default` class's, as its own change them.
    pub async fn quotas(&self, project: &str) -> Result<HashMap<String, i64>> {
        let mut q = self.class_quotas("default").await?;
        q.extend(self.quota_rows(project).await?);
        Ok(q)
    }

    /// Sets limits of a project (or of `quota-class:<name>`), in one tx.
    pub async fn set_quotas(&self, key: &str, limits: &[(String, i64)]) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        for (k, n) in limits {
            sqlx::query("DELETE FROM compute_quotas WHERE project_id = $1 AND resource = $2")
                .bind(key)
                .bind(k)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO compute_quotas (project_id, resource, hard_limit) VALUES ($1, $2, $3)",
            )
            .bind(key)
            .bind(k)
            .bind(n)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        tracing::info!(quotas_of = %key, limits = limits.len(), "compute quotas set");
        Ok(())
    }

    /// Drops a project's own limits (it has the defaults again).
    pub async fn reset_quotas(&self, project: &str) -> Result<()> {
        sqlx::query("DELETE FROM compute_quotas WHERE project_id = $1")
            .bind(project)
            .execute(self.pool())
            .await?;
        tracing::info!(project_id = %project, "compute quotas back to the defaults");
        Ok(())
    }

    /// (instances, cores, ram) in use by a project.
    pub async fn usage(&self, project: &str) -> Result<(i64, i64, i64)> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT flavor FROM servers WHERE project_id = $1 AND deleted = 0")
                .bind(project)
                .fetch_all(self.pool())
                .await?;
        let mut usage = (0, 0, 0);
        for (f,) in rows {
            if let Ok(f) = serde_json::from_str::<crate::model::FlavorSnapshot>(&f) {
                usage.0 += 1;
                usage.1 += f.vcpus;
                usage.2 += f.ram;
            }
        }
        Ok(usage)
    }

    /// Refuses a create of `count` servers of this size beyond the quota,
    /// with Nova's message.
    pub async fn check_quota(&self, project: &str, count: i64, vcpus: i64, ram: i64) -> Result<()> {
        let q = self.quotas(project).await?;
        let (used_i, used_c, used_r) = self.usage(project).await?;
        for (res, used, want) in [
            ("instances", used_i, count),
            ("cores", used_c, count * vcpus),
            ("ram", used_r, count * ram),
        ] {
            let limit = q.get(res).copied().unwrap_or(-1);
            if limit >= 0 && used + want > limit {
                return Err(ComputeError::Forbidden(format!(
                    "Quota exceeded for {res}: Requested {want}, but already used {used} of {limit} {res}"
                )));
            }
        }
        Ok(())
    }

    // ---- instance actions ----

    pub async fn record_action(
        &self,
        server_id: &str,
        action: &str,
        ctx: &AuthContext,
        request_id: &str,
    ) -> Result<()> {
        let now = time::now_micros();
        sqlx::query(
            "INSERT INTO instance_actions (id, server_id, request_id, action, project_id, user_id, message, start_time, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $7)",
        )
        .bind(ids::uuid_id())
        .bind(server_id)
        .bind(request_id)
        .bind(action)
        .bind(ctx.project_id().unwrap_or(""))
        .bind(&ctx.user_id)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    // ---- the boot saga ----

    /// Picks a host and claims resources on it, or fails the build with the
    /// scheduler's reasons. Safe to call again for the same server.
    pub async fn schedule(self: &Arc<Self>, id: &str) -> Result<()> {
        let Some(s) = self.server(id).await? else {
            return Ok(());
        };
        // A build, or an evacuation (which keeps the server's vm_state).
        if s.task_state.as_deref() != Some("scheduling") {
            return Ok(());
        }
        let Some(flavor) = s.flavor() else {
            return self
                .fail(&s, "The server's flavor record is unreadable.")
                .await;
        };
        let hypervisor_type = self
            .images
            .get(&s.image_id)
            .await
            .ok()
            .flatten()
            .and_then(|i| {
                i.props()
                    .get("hypervisor_type")
                    .and_then(|v| v.as_str().map(str::to_owned))
            });
        // Members of a strict group are placed one at a time, so each sees
        // where the previous one's claim went.
        let in_group = !self.groups_of(&s.id).await?.is_empty();
        let _placing = if in_group {
            Some(self.group_lock.lock().await)
        } else {
            None
        };
        let group = if in_group {
            self.group_placement(&s.id).await?
        } else {
            None
        };
        let now = time::now_micros();
        let hosts = inventory::hosts(self.pool()).await?;
        let states: Vec<_> = hosts
            .iter()
            .map(|h| h.state(now, DOWN_AFTER_MICROS))
            .collect();
        // A server booted from a volume takes no root disk of its host.
        let root_disk = if s.image_id.is_empty() {
            0
        } else {
            flavor.disk
        };
        let req = ferro_placement::Request {
            vcpus: flavor.vcpus,
            memory_mb: flavor.ram,
            disk_gb: root_disk,
            availability_zone: s.availability_zone.clone(),
            hypervisor_type,
            tried: s.tried(),
            group,
        };
        let ranked = match ferro_placement::schedule(&states, &req) {
            Ok(r) => r,
            Err(no) => {
                let last = s
                    .fault
                    .as_deref()
                    .and_then(|f| serde_json::from_str::<serde_json::Value>(f).ok())
                    .and_then(|f| f["message"].as_str().map(str::to_owned));
                let msg = match last {
                    Some(l) => format!("{no}. Last build error: {l}"),
                    None => no.to_string(),
                };
                return self.fail(&s, &msg).await;
            }
        };
        // A claim made before a crash is kept: its host is tried first.
        let held: Option<(String,)> =
            sqlx::query_as("SELECT host FROM allocations WHERE consumer_id = $1")
                .bind(&s.id)
                .fetch_optional(self.pool())
                .await?;
        let mut ranked = ranked;
        if let Some((h,)) = held {
            ranked.sort_by_key(|c| c.name != h);
        }
        for candidate in ranked {
            let claim = Claim {
                consumer_id: &s.id,
                host: &candidate.name,
                vcpus: flavor.vcpus,
                memory_mb: flavor.ram,
                disk_gb: root_disk,
                project_id: &s.project_id,
                user_id: &s.user_id,
            };
            if inventory::claim(self.pool(), &claim, now).await? {
                crate::saga::failpoint("server-create.claimed");
                let moved = sqlx::query(
                    "UPDATE servers SET state_generation = state_generation + 1, host = $1, task_state = 'spawning', updated_at = $2 \
                     WHERE id = $3 AND deleted = 0 AND task_state = 'scheduling'",
                )
                .bind(&candidate.name)
                .bind(time::now_micros())
                .bind(&s.id)
                .execute(self.pool())
                .await?
                .rows_affected();
                if moved == 0 {
                    // Deleted (or re-driven) meanwhile: undo the claim.
                    inventory::release(self.pool(), &s.id).await?;
                    return Ok(());
                }
                for nic in s.nics() {
                    self.network
                        .bind_port(&nic.port_id, &s.id, &candidate.name, &s.hostname)
                        .await
                        .map_err(|e| {
                            ComputeError::Internal(format!("binding port {}: {e}", nic.port_id))
                        })?;
                }
                tracing::info!(server_id = %s.id, host = %candidate.name, "scheduled");
                self.wake(Some(&candidate.name));
                return Ok(());
            }
        }
        self.fail(
            &s,
            "No valid host was found. Every fitting host was claimed by other requests.",
        )
        .await
    }

    /// Rebuilds a server of a host that is down on another host (Nova's
    /// evacuate): its allocation is released, and it is scheduled again
    /// with its old host excluded (or onto `target` only), all in one
    /// compare-and-set, then placed like a build. The old host's agent,
    /// when it comes back, finds the server gone from its desired state and
    /// removes what is left of it there.
    pub async fn evacuate(self: &Arc<Self>, s: &Server, target: Option<&str>) -> Result<()> {
        let from = s.host.clone().unwrap_or_default();
        let mut tried = vec![from.clone()];
        if let Some(t) = target {
            tried.extend(
                inventory::hosts(self.pool())
                    .await?
                    .into_iter()
                    .map(|h| h.name)
                    .filter(|n| n != t && *n != from),
            );
        }
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM allocations WHERE consumer_id = $1")
            .bind(&s.id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query(
            "UPDATE servers SET state_generation = state_generation + 1, host = NULL, task_state = 'scheduling', \
             tried_hosts = $1, fault = NULL, rebuild_seq = rebuild_seq + 1, updated_at = $2 WHERE id = $3 AND state_generation = $4",
        )
        .bind(serde_json::to_string(&tried).unwrap_or_default())
        .bind(time::now_micros())
        .bind(&s.id)
        .bind(s.state_generation)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        stale_unless(done, &s.id)?;
        tx.commit().await?;
        tracing::warn!(server_id = %s.id, from = %from, target = ?target, "evacuating a server off a down host");
        let (me, id) = (self.clone(), s.id.clone());
        tokio::spawn(async move {
            if let Err(e) = me.schedule(&id).await {
                tracing::error!(server_id = %id, error = %e, "placing an evacuated server failed");
            }
        });
        Ok(())
    }

    /// Puts a server in ERROR with a fault.
    pub(crate) async fn fail(&self, s: &Server, message: &str) -> Result<()> {
        let fault = json!({"code": 500, "message": message, "created": time::iso_seconds(time::now_micros())});
        sqlx::query(
            "UPDATE servers SET state_generation = state_generation + 1, vm_state = 'error', task_state = NULL, power_state = $1, fault = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(power::NOSTATE)
        .bind(fault.to_string())
        .bind(time::now_micros())
        .bind(&s.id)
        .execute(self.pool())
        .await?;
        inventory::release(self.pool(), &s.id).await?;
        tracing::warn!(server_id = %s.id, %message, "server failed");
        Ok(())
    }

    /// Re-drives builds a previous controller left half-way.
    pub async fn resume_sagas(self: &Arc<Self>) -> Result<()> {
        let ids: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM servers WHERE deleted = 0 AND task_state = 'scheduling' \
             AND id NOT IN (SELECT resource_id FROM sagas)",
        )
        .fetch_all(self.pool())
        .await?;
        for (id,) in ids {
            let me = self.clone();
            tokio::spawn(async move {
                if let Err(e) = me.schedule(&id).await {
                    tracing::error!(server_id = %id, error = %e, "re-driving a build failed");
                }
            });
        }
        Ok(())
    }

    pub async fn set_desired_power(
        &self,
        s: &Server,
        task_state: &str,
        desired: &str,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE servers SET state_generation = state_generation + 1, task_state = $1, desired_power = $2, updated_at = $3 \
             WHERE id = $4 AND state_generation = $5",
        )
        .bind(task_state)
        .bind(desired)
        .bind(time::now_micros())
        .bind(&s.id)
        .bind(s.state_generation)
        .execute(self.pool())
        .await?
        .rows_affected();
        stale_unless(done, &s.id)?;
        self.wake(s.host.as_deref());
        Ok(())
    }

    // ---- agent reports ----

    /// Applies an agent's report on a fresh read of the server; the state
    /// it writes is decided on that read, so the write is compare-and-set
    /// (a report must not undo a transition made meanwhile, such as a
    /// resize's), and a report that loses the race decides again.
    async fn apply_report(self: &Arc<Self>, host: &str, r: Report) -> Result<()> {
        for _ in 0..4 {
            match self.apply_report_once(host, &r).await {
                Err(ComputeError::Stale(id)) => {
                    tracing::debug!(server_id = %id, "the server changed under a report; deciding again");
                }
                other => return other,
            }
        }
        self.apply_report_once(host, &r).await
    }

    async fn apply_report_once(self: &Arc<Self>, host: &str, r: &Report) -> Result<()> {
        let row: Option<Server> = sqlx::query_as("SELECT * FROM servers WHERE id = $1")
            .bind(&r.id)
            .fetch_optional(self.pool())
            .await?;
        let Some(s) = row else { return Ok(()) };
        if s.host.as_deref() != Some(host) {
            return Ok(());
        }
        if !matches!(r.observed, Observed::Failed(_)) {
            self.volumes_reported(&s.id, &r.volumes).await?;
        }
        let now = time::now_micros();
        let seqs_done = r.applied_reboot_seq >= s.reboot_seq
            && r.applied_rebuild_seq >= s.rebuild_seq
            && r.applied_resize_seq >= s.resize_seq;
        // A snapshot's task states belong to its saga, which clears them.
        let snapshotting = s
            .task_state
            .as_deref()
            .is_some_and(crate::server_snapshot::is_snapshot_task);
        let settle = |vm_state: &str, power_state: i64| {
            let task = if !snapshotting && seqs_done && vm_state_matches(&s.desired_power, vm_state)
            {
                None
            } else {
                s.task_state.clone()
            };
            (vm_state.to_owned(), power_state, task)
        };
        let (vm_state, power_state, task_state) = match &r.observed {
            Observed::Absent if s.deleting() => return self.stopped_for_delete(&s.id).await,
            Observed::Absent => return Ok(()),
            Observed::Failed(msg) if s.vm_state == "building" => {
                inventory::release(self.pool(), &s.id).await?;
                let mut tried = s.tried();
                tried.push(host.to_owned());
                if tried.len() < MAX_ATTEMPTS {
                    tracing::warn!(server_id = %s.id, host, error = %msg, "build failed; rescheduling");
                    let fault =
                        json!({"code": 500, "message": msg, "created": time::iso_seconds(now)});
                    sqlx::query(
                        "UPDATE servers SET state_generation = state_generation + 1, host = NULL, task_state = 'scheduling', tried_hosts = $1, fault = $2, updated_at = $3 WHERE id = $4",
                    )
                    .bind(serde_json::to_string(&tried).unwrap_or_default())
                    .bind(fault.to_string())
                    .bind(now)
                    .bind(&s.id)
                    .execute(self.pool())
                    .await?;
                    // The failed host may still hold files of the attempt.
                    self.wake(Some(host));
                    let me = self.clone();
                    let id = s.id.clone();
                    tokio::spawn(async move {
                        if let Err(e) = me.schedule(&id).await {
                            tracing::error!(server_id = %id, error = %e, "rescheduling failed");
                        }
                    });
                    return Ok(());
                }
                sqlx::query("UPDATE servers SET state_generation = state_generation + 1, tried_hosts = $1 WHERE id = $2")
                    .bind(serde_json::to_string(&tried).unwrap_or_default())
                    .bind(&s.id)
                    .execute(self.pool())
                    .await?;
                return self
                    .fail(
                        &s,
                        &format!(
                            "Build of instance {} failed on every host tried; last error: {msg}",
                            s.id
                        ),
                    )
                    .await;
            }
            Observed::Failed(msg) => {
                let fault = json!({"code": 500, "message": msg, "created": time::iso_seconds(now)});
                let written = sqlx::query("UPDATE servers SET state_generation = state_generation + 1, task_state = NULL, fault = $1, updated_at = $2 WHERE id = $3 AND state_generation = $4")
                    .bind(fault.to_string())
                    .bind(now)
                    .bind(&s.id)
                    .bind(s.state_generation)
                    .execute(self.pool())
                    .await?
                    .rows_affected();
                return stale_unless(written, &s.id);
            }
            Observed::Running => settle("active", power::RUNNING),
            Observed::Paused => settle("paused", power::PAUSED),
            Observed::Suspended => settle("suspended", power::SUSPENDED),
            Observed::Shutdown => settle("stopped", power::SHUTDOWN),
        };
        if s.deleting() {
            return Ok(());
        }
        // A resize waits in VERIFY_RESIZE (vm_state resized) for confirm or revert.
        let (vm_state, task_state) = match (s.task_state.as_deref(), s.vm_state.as_str()) {
            // Moving hosts: the source's reports only say the guest is off.
            (Some("resize_prep" | "resize_migrating"), _) if s.migration_dest.is_some() => {
                (s.vm_state.clone(), s.task_state.clone())
            }
            (Some("resize_migrating" | "resize_finish"), _) if seqs_done => {
                ("resized".to_owned(), None)
            }
            (Some("resize_finish"), _) => (s.vm_state.clone(), s.task_state.clone()),
            (Some("resize_migrating" | "resize_reverting"), _) if !seqs_done => {
                (s.vm_state.clone(), s.task_state.clone())
            }
            (None, "resized") => ("resized".to_owned(), None),
            _ => (vm_state, task_state),
        };
        let launched = if s.launched_at.is_none() && vm_state == "active" {
            Some(now)
        } else {
            s.launched_at
        };
        // A build that reached its host but is still coming up stays BUILD.
        let vm_state = if s.vm_state == "building" && task_state.is_some() {
            "building".to_owned()
        } else {
            vm_state
        };
        let written = sqlx::query(
            "UPDATE servers SET state_generation = state_generation + 1, vm_state = $1, power_state = $2, task_state = $3, launched_at = $4, \
             fault = CASE WHEN $1 = 'active' THEN NULL ELSE fault END, updated_at = $5 WHERE id = $6 AND state_generation = $7",
        )
        .bind(&vm_state)
        .bind(power_state)
        .bind(task_state.clone())
        .bind(launched)
        .bind(now)
        .bind(&s.id)
        .bind(s.state_generation)
        .execute(self.pool())
        .await?
        .rows_affected();
        stale_unless(written, &s.id)?;
        if s.task_state.as_deref() == Some("resize_finish") && task_state.is_none() {
            self.migration_finished(&s.id).await?;
        }
        if vm_state == "active" && s.vm_state != "active" {
            if let Err(e) = self.network.set_device_status(&s.id, "ACTIVE").await {
                tracing::warn!(server_id = %s.id, error = %e, "marking ports active failed");
            }
        }
        if s.vm_state != vm_state || s.task_state != task_state {
            tracing::info!(server_id = %s.id, vm_state, task_state = ?task_state, "server state changed");
        }
        if let (Some(img), "shelved_offloaded", "active") =
            (&s.shelved_image_id, s.vm_state.as_str(), vm_state.as_str())
        {
            if let Err(e) = self.unshelved(&s.id, img).await {
                tracing::warn!(server_id = %s.id, error = %e, "removing a shelved image failed");
            }
        }
        Ok(())
    }

    /// Tells compute where the image service answers (once).
    pub fn set_image_url(&self, url: &str) {
        let _ = self.image_url.set(url.trim_end_matches('/').to_owned());
    }

    /// Wires the block storage service (once).
    pub fn set_volumes(&self, api: Arc<dyn crate::volumes::VolumeApi>) {
        let _ = self.volumes.set(api);
    }

    /// Whether every instance gets a config drive (the default), or only
    /// those that ask (Nova's `force_config_drive = False`).
    pub fn set_force_config_drive(&self, on: bool) {
        self.force_config_drive
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Wires the load-balancer service (once).
    pub fn set_balancers(&self, api: Arc<dyn crate::balancers::Balancers>) {
        let _ = self.balancers.set(api);
    }

    pub(crate) fn spec_of(
        &self,
        s: &Server,
        nics: Vec<NicSpec>,
        volumes: Vec<VolumeSpec>,
    ) -> InstanceSpec {
        let flavor = s.flavor();
        InstanceSpec {
            id: s.id.clone(),
            name: s.instance_name(),
            display_name: s.name.clone(),
            hostname: s.hostname.clone(),
            project_id: s.project_id.clone(),
            // An unshelved server boots from the image of its shelved disk.
            image_id: s
                .shelved_image_id
                .clone()
                .unwrap_or_else(|| s.image_id.clone()),
            vcpus: flavor.as_ref().map(|f| f.vcpus).unwrap_or(1),
            memory_mb: flavor.as_ref().map(|f| f.ram).unwrap_or(512),
            disk_gb: flavor.as_ref().map(|f| f.disk).unwrap_or(0),
            key_name: s.key_name.clone(),
            public_key: s.key_data.clone(),
            user_data: s.user_data.clone(),
            metadata: s
                .meta()
                .into_iter()
                .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned()))
                .collect(),
            availability_zone: s.availability_zone.clone().unwrap_or_else(|| "nova".into()),
            launch_index: s.launch_index,
            reservation_id: s.reservation_id.clone(),
            // Its disk is being copied to another host: off meanwhile.
            power: if s.migration_dest.is_some() {
                Power::Stopped
            } else {
                Power::parse(&s.desired_power)
            },
            reboot_seq: s.reboot_seq,
            reboot_hard: s.reboot_hard != 0,
            rebuild_seq: s.rebuild_seq,
            resize_seq: s.resize_seq,
            deleted: s.deleting(),
            migrated: s.migration_source.is_some() && !s.image_id.is_empty(),
            config_drive: s.config_drive != 0
                || self
                    .force_config_drive
                    .load(std::sync::atomic::Ordering::Relaxed),
            nics,
            volumes,
        }
    }
}

/// Every server's interfaces, from its host's desired network, in port
/// order: one pass over the ports (a host can hold thousands).
fn nics_by_server(net: &HostNetwork) -> HashMap<&str, Vec<NicSpec>> {
    let mtu: HashMap<&str, i64> = net
        .networks
        .iter()
        .map(|n| (n.id.as_str(), n.mtu))
        .collect();
    let mut out: HashMap<&str, Vec<NicSpec>> = HashMap::new();
    for p in &net.ports {
        out.entry(p.device_id.as_str()).or_default().push(NicSpec {
            port_id: p.id.clone(),
            network_id: p.network_id.clone(),
            mac: p.mac.clone(),
            mtu: mtu.get(p.network_id.as_str()).copied().unwrap_or(1500),
        });
    }
    out
}

/// One server's interfaces in a host's desired network.
pub(crate) fn nics_of(net: &HostNetwork, server_id: &str) -> Vec<NicSpec> {
    nics_by_server(net).remove(server_id).unwrap_or_default()
}

/// The outcome of a compare-and-set on a server row: one row written, or
/// the row moved on since it was read.
pub fn stale_unless(rows_written: u64, server_id: &str) -> Result<()> {
    if rows_written == 0 {
        Err(ComputeError::Stale(server_id.to_owned()))
    } else {
        Ok(())
    }
}

/// Whether an observed vm_state is the one the desired power leads to.
fn vm_state_matches(desired: &str, vm_state: &str) -> bool {
    matches!(
        (desired, vm_state),
        ("running", "active")
            | ("stopped", "stopped")
            | ("paused", "paused")
            | ("suspended", "suspended")
    )
}

/// A host's desired-state generation: its own row plus the network row,
/// both bumped by triggers in every transaction that changes them.
pub async fn host_generation(
    pool: &ferro_store::sqlx::AnyPool,
    host: &str,
) -> std::result::Result<i64, sqlx::Error> {
    let (g,): (i64,) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(generation), 0) AS BIGINT) FROM host_generations WHERE host = $1 OR host = ''",
    )
    .bind(host)
    .fetch_one(pool)
    .await?;
    Ok(g)
}

/// Every host's desired-state generation, read in one query (the rows of
/// host `''` — changes that concern every host — count for each).
pub async fn host_generations(
    pool: &ferro_store::sqlx::AnyPool,
) -> std::result::Result<HashMap<String, i64>, sqlx::Error> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT host, CAST(COALESCE(SUM(generation), 0) AS BIGINT) FROM host_generations GROUP BY host",
    )
    .fetch_all(pool)
    .await?;
    let shared = rows
        .iter()
        .find(|(h, _)| h.is_empty())
        .map(|(_, g)| *g)
        .unwrap_or(0);
    Ok(rows
        .into_iter()
        .filter(|(h, _)| !h.is_empty())
        .map(|(h, g)| (h, g + shared))
        .chain(std::iter::once((String::new(), shared)))
        .collect())
}

/// What `ferrostack host resync` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Resync {
    /// The host was in sync; nothing changed.
    InSync,
    /// The host's generation now starts above what its agent applied.
    Done {
        from: i64,
        to: i64,
    },
    NotFound,
}

impl ComputeService {
    /// Records the generation a host's agent applied; when it is ahead of
    /// this database, marks the host out of sync (it takes no new servers,
    /// and its agent is sent nothing to apply) and returns why. A host
    /// stays out of sync until [`ComputeService::resync`].
    pub async fn check_sync(
        &self,
        host: &str,
        applied: i64,
        generation: i64,
    ) -> std::result::Result<Option<String>, sqlx::Error> {
        let row: Option<(Option<String>, i64)> =
            sqlx::query_as("SELECT out_of_sync, agent_generation FROM hosts WHERE name = $1")
                .bind(host)
                .fetch_optional(self.pool())
                .await?;
        let Some((flag, recorded)) = row else {
            return Ok(None);
        };
        if flag.is_some() {
            return Ok(flag);
        }
        if applied > generation {
            let why = format!(
                "host {host} is out of sync: it applied desired-state generation {applied}, but this controller's database is at {generation}: \
                 the database looks restored from an older backup, so the host keeps its instances and applies nothing; \
                 check them, then run `ferrostack host resync {host}`"
            );
            tracing::error!(
                host,
                applied,
                generation,
                "host is out of sync with the database"
            );
            sqlx::query("UPDATE hosts SET out_of_sync = $1, agent_generation = $2 WHERE name = $3")
                .bind(&why)
                .bind(applied)
                .bind(host)
                .execute(self.pool())
                .await?;
            return Ok(Some(why));
        }
        if applied != recorded {
            sqlx::query("UPDATE hosts SET agent_generation = $1 WHERE name = $2")
                .bind(applied)
                .bind(host)
                .execute(self.pool())
                .await?;
        }
        Ok(None)
    }
}

/// Takes this database as the truth for `host` again: its generation
/// jumps above what the host applied, so the host's agent converges to
/// this database (removing instances it doesn't know), and the host
/// takes new servers again.
pub async fn resync(
    pool: &ferro_store::sqlx::AnyPool,
    host: &str,
) -> std::result::Result<Resync, sqlx::Error> {
    let row: Option<(Option<String>, i64)> =
        sqlx::query_as("SELECT out_of_sync, agent_generation FROM hosts WHERE name = $1")
            .bind(host)
            .fetch_optional(pool)
            .await?;
    let Some((flag, applied)) = row else {
        return Ok(Resync::NotFound);
    };
    let from = host_generation(pool, host).await?;
    if flag.is_none() && applied <= from {
        return Ok(Resync::InSync);
    }
    let step = (applied - from).max(0) + 1;
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO host_generations (host, generation) VALUES ($1, $2) \
         ON CONFLICT (host) DO UPDATE SET generation = host_generations.generation + $2",
    )
    .bind(host)
    .bind(step)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE hosts SET out_of_sync = NULL WHERE name = $1")
        .bind(host)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::warn!(
        host,
        from,
        to = from + step,
        "host resynced to the database"
    );
    Ok(Resync::Done {
        from,
        to: from + step,
    })
}

/// The in-process link between an agent and this controller. The network
/// node's agent also runs routers, DHCP and metadata.
pub struct LocalLink {
    pub compute: Arc<ComputeService>,
    pub network_node: bool,
}

fn link<E: std::fmt::Display>(e: E) -> LinkError {
    LinkError(e.to_string())
}

#[async_trait::async_trait]
impl ControlPlane for LocalLink {
    async fn register(&self, h: &HostInfo) -> Result<(), LinkError> {
        let s = &self.compute;
        let now = time::now_micros();
        let exists: Option<(String,)> = sqlx::query_as("SELECT name FROM hosts WHERE name = $1")
            .bind(&h.name)
            .fetch_optional(s.pool())
            .await
            .map_err(link)?;
        if exists.is_some() {
            sqlx::query(
                "UPDATE hosts SET hypervisor_type = $1, hypervisor_version = $2, host_ip = $3, vcpus = $4, memory_mb = $5, \
                 disk_gb = $6, heartbeat_at = $7, started_at = $7 WHERE name = $8",
            )
            .bind(&h.hypervisor_type)
            .bind(h.hypervisor_version)
            .bind(&h.host_ip)
            .bind(h.vcpus)
            .bind(h.memory_mb)
            .bind(h.disk_gb)
            .bind(now)
            .bind(&h.name)
            .execute(s.pool())
            .await
            .map_err(link)?;
        } else {
            let seq = s.next("hosts").await.map_err(link)?;
            sqlx::query(
                "INSERT INTO hosts (name, seq, service_id, hypervisor_id, hypervisor_type, hypervisor_version, host_ip, vcpus, \
                 memory_mb, disk_gb, heartbeat_at, started_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
            )
            .bind(&h.name)
            .bind(seq)
            .bind(ids::uuid_id())
            .bind(ids::uuid_id())
            .bind(&h.hypervisor_type)
            .bind(h.hypervisor_version)
            .bind(&h.host_ip)
            .bind(h.vcpus)
            .bind(h.memory_mb)
            .bind(h.disk_gb)
            .bind(now)
            .execute(s.pool())
            .await
            .map_err(link)?;
        }
        let mut tx = s.pool().begin().await.map_err(link)?;
        sqlx::query(
            "UPDATE hosts SET agent_url = $1, network_node = $2, tunnel_ip = $3 WHERE name = $4",
        )
        .bind(&h.agent_url)
        .bind(ferro_store::flag(h.network_node))
        .bind(&h.tunnel_ip)
        .bind(&h.name)
        .execute(&mut *tx)
        .await
        .map_err(link)?;
        // Every host's tunnels name this one's address: they all look again.
        sqlx::query(
            "INSERT INTO host_generations (host, generation) VALUES ('', 1) \
             ON CONFLICT (host) DO UPDATE SET generation = host_generations.generation + 1",
        )
        .execute(&mut *tx)
        .await
        .map_err(link)?;
        tx.commit().await.map_err(link)?;
        tracing::info!(host = %h.name, hypervisor_type = %h.hypervisor_type, agent_url = ?h.agent_url, "compute host registered");
        Ok(())
    }

    async fn heartbeat(&self, host: &str) -> Result<(), LinkError> {
        sqlx::query("UPDATE hosts SET heartbeat_at = $1 WHERE name = $2")
            .bind(time::now_micros())
            .bind(host)
            .execute(self.compute.pool())
            .await
            .map_err(link)?;
        Ok(())
    }

    async fn desired(&self, host: &str, applied: i64) -> Result<DesiredState, LinkError> {
        let c = &self.compute;
        // Read first: state read after it is at least this new.
        let generation = host_generation(c.pool(), host).await.map_err(link)?;
        if let Some(why) = c
            .check_sync(host, applied, generation)
            .await
            .map_err(link)?
        {
            return Ok(DesiredState {
                generation,
                out_of_sync: Some(why),
                ..Default::default()
            });
        }
        // One read for the servers on the host and those it keeps for a
        // revert: read apart, a revert between the two would make its
        // server neither, and the host would remove the copy it kept.
        let all: Vec<Server> = sqlx::query_as(
            "SELECT * FROM servers WHERE (host = $1 AND (task_state IS NULL OR task_state <> 'scheduling')) \
             OR migration_source = $1 OR migration_dest = $1 ORDER BY id",
        )
        .bind(host)
        .fetch_all(c.pool())
        .await
        .map_err(link)?;
        let (rows, others): (Vec<Server>, Vec<Server>) = all
            .into_iter()
            .partition(|s| s.host.as_deref() == Some(host));
        let live =
            |s: &Server| s.task_state.as_deref() == Some("migrating") && s.migration_dest.is_some();
        // Live-migrating out of or into this host: the migration drives them.
        let hands_off: Vec<String> = rows
            .iter()
            .chain(others.iter())
            .filter(|s| live(s))
            .map(|s| s.id.clone())
            .collect();
        let kept: Vec<Server> = others
            .into_iter()
            .filter(|s| s.migration_source.as_deref() == Some(host))
            .collect();
        let mut network = c
            .network
            .host_network(host, self.network_node)
            .await
            .map_err(link)?;
        if let (true, Some(lb)) = (self.network_node, c.balancers.get()) {
            network.balancers = lb.specs().await.map_err(LinkError)?;
        }
        let mut disks = crate::volumes::wanted_on(c.pool(), host)
            .await
            .map_err(link)?;
        let api = c.volumes.get();
        let sizes = match api {
            Some(api) if !disks.is_empty() => {
                let ids: Vec<String> = disks
                    .values()
                    .flatten()
                    .map(|m| m.volume_id.clone())
                    .collect();
                api.sizes(&ids).await.map_err(link)?
            }
            _ => HashMap::new(),
        };
        let instances = {
            let mut nics = nics_by_server(&network);
            rows.iter()
                .map(|s| {
                    let n = nics.remove(s.id.as_str()).unwrap_or_default();
                    let v = match api {
                        Some(api) => disks
                            .remove(&s.id)
                            .unwrap_or_default()
                            .into_iter()
                            .map(|m| {
                                let conn = api.connection(&m.volume_id);
                                VolumeSpec {
                                    size_gb: sizes.get(&m.volume_id).copied().unwrap_or(0),
                                    volume_id: m.volume_id,
                                    device: m.device,
                                    path: conn.path,
                                    format: conn.format,
                                }
                            })
                            .collect(),
                        None => Vec::new(),
                    };
                    c.spec_of(s, n, v)
                })
                .collect()
        };
        // Servers moved away but not confirmed: the old host keeps their
        // stopped copies for a revert.
        Ok(DesiredState {
            generation,
            instances,
            network,
            retained: kept.into_iter().map(|s| s.id).collect(),
            hands_off,
            out_of_sync: None,
        })
    }

    async fn instance_at(
        &self,
        network_id: &str,
        ip: &str,
    ) -> Result<Option<MetadataTarget>, LinkError> {
        let c = &self.compute;
        let Some((device, floating_ip)) = c.network.port_at(network_id, ip).await.map_err(link)?
        else {
            return Ok(None);
        };
        let Some(s) = c.server(&device).await.map_err(link)? else {
            return Ok(None);
        };
        let host = s.host.clone().unwrap_or_default();
        let network = c.network.host_network(&host, false).await.map_err(link)?;
        let security_groups = c
            .network
            .devices(Some(std::slice::from_ref(&s.id)))
            .await
            .map_err(link)?
            .remove(&s.id)
            .map(|d| d.security_groups)
            .unwrap_or_default();
        Ok(Some(MetadataTarget {
            spec: c.spec_of(
                &s,
                nics_by_server(&network)
                    .remove(s.id.as_str())
                    .unwrap_or_default(),
                Vec::new(),
            ),
            fixed_ip: ip.to_owned(),
            floating_ip,
            flavor_name: s.flavor().map(|f| f.original_name).unwrap_or_default(),
            security_groups,
            password: c.server_password(&s.id).await.map_err(link)?,
        }))
    }

    async fn post_password(
        &self,
        network_id: &str,
        ip: &str,
        password: &str,
    ) -> Result<PasswordPost, LinkError> {
        let c = &self.compute;
        let Some((device, _)) = c.network.port_at(network_id, ip).await.map_err(link)? else {
            return Ok(PasswordPost::Unknown);
        };
        c.post_server_password(&device, password)
            .await
            .map_err(link)
    }

    async fn report_balancers(
        &self,
        host: &str,
        reports: Vec<ferro_agent_api::balancer::BalancerReport>,
    ) -> Result<(), LinkError> {
        let c = &self.compute;
        // Only the network node runs load balancers; another host's word
        // (a former network node, say) is not taken.
        if c.network.network_node().await.map_err(link)?.as_deref() != Some(host) {
            return Ok(());
        }
        match c.balancers.get() {
            Some(lb) => lb.reported(reports).await.map_err(LinkError),
            None => Ok(()),
        }
    }

    async fn report(&self, host: &str, reports: Vec<Report>) -> Result<(), LinkError> {
        for r in reports {
            self.compute.apply_report(host, r).await.map_err(link)?;
        }
        Ok(())
    }

    async fn image_file(&self, image_id: &str) -> Result<(PathBuf, String), LinkError> {
        let img = self
            .compute
            .images
            .get(image_id)
            .await
            .map_err(link)?
            .ok_or_else(|| LinkError(format!("Image {image_id} not found")))?;
        if img.status != "active" {
            return Err(LinkError(format!(
                "Image {image_id} is {}, not active",
                img.status
            )));
        }
        Ok((
            self.compute.images.store.data_path(image_id),
            img.disk_format.unwrap_or_else(|| "raw".into()),
        ))
    }

    async fn migration_disk(&self, server_id: &str) -> Result<PathBuf, LinkError> {
        let path = self.compute.migration_copy(server_id);
        if tokio::fs::metadata(&path).await.is_err() {
            return Err(LinkError(format!(
                "no disk copy of instance {server_id} is waiting for its new host"
            )));
        }
        Ok(path)
    }
}
