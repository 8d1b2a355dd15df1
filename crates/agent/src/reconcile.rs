//! The agent's reconciler: level-triggered, idempotent, one task at a time
//! per instance.
//!
//! Every tick (or when woken) it fetches the host's desired state and, for
//! each instance not already being worked on, compares it with what the
//! driver sees and does the one or two steps that close the gap. Reboots and
//! rebuilds are counters: the agent keeps, next to each instance, the last
//! counter values it applied, so the same request is never applied twice and
//! a restarted agent doesn't reboot anything. Reports are sent only when
//! they change.
//!
//! The agent also keeps the desired-state generation it applied last
//! (`agent/generation`). It applies nothing older: a controller on an
//! older copy of its database would otherwise remove the guests created
//! since. It then keeps every instance as it is and says so in its log;
//! the controller marks the host out of sync.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};

use crate::dataplane::Dataplane;
use crate::driver::{Hypervisor, PowerState};
use crate::spec::{
    ControlPlane, HostAgent, HostInfo, Incoming, InstanceSpec, LinkError, LiveStats, Observed,
    Power, Report,
};

/// How long a graceful shutdown may take before it is forced.
const STOP_GRACE: Duration = Duration::from_secs(60);
const TICK: Duration = Duration::from_secs(2);
const HEARTBEAT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Applied {
    reboot_seq: i64,
    rebuild_seq: i64,
    #[serde(default)]
    resize_seq: i64,
}

pub struct Agent {
    pub host: HostInfo,
    cp: Arc<dyn ControlPlane>,
    driver: Arc<dyn Hypervisor>,
    dataplane: Arc<dyn Dataplane>,
    applied_dir: PathBuf,
    /// What `applied_dir` holds, read once per instance: a pass over many
    /// instances shouldn't read a file for each.
    applied: Mutex<HashMap<String, Applied>>,
    busy: Mutex<HashSet<String>>,
    reported: Mutex<HashMap<String, Report>>,
    /// What was last said of the host's load balancers.
    balancers_reported: Mutex<Vec<crate::balancer::BalancerReport>>,
    /// Per running instance, the volumes (id, GiB) it was last found to
    /// have exactly as its spec asked: while the spec asks the same, the
    /// agent doesn't ask QEMU again.
    volumes_in: Mutex<HashMap<String, Vec<(String, i64)>>>,
    /// Per running instance, volumes whose device is gone but whose block
    /// node QEMU still holds (and with it the file's lock): still plugged
    /// in as far as reports go, unplugged again at the next pass.
    unplugging: Mutex<HashMap<String, HashSet<String>>>,
    /// The desired-state generation applied last, and the refusal logged
    /// last (so a refusal is logged once, not at every tick).
    generation: Mutex<(i64, Option<String>)>,
    wake: Notify,
}

impl Agent {
    pub fn new(
        host: HostInfo,
        cp: Arc<dyn ControlPlane>,
        driver: Arc<dyn Hypervisor>,
        dataplane: Arc<dyn Dataplane>,
        state_dir: PathBuf,
    ) -> Arc<Agent> {
        let applied_dir = state_dir.join("agent");
        let _ = std::fs::create_dir_all(&applied_dir);
        let generation = std::fs::read_to_string(applied_dir.join("generation"))
            .ok()
            .and_then(|g| g.trim().parse().ok())
            .unwrap_or(0);
        Arc::new(Agent {
            host,
            cp,
            driver,
            dataplane,
            applied_dir,
            applied: Mutex::new(HashMap::new()),
            busy: Mutex::new(HashSet::new()),
            reported: Mutex::new(HashMap::new()),
            balancers_reported: Mutex::new(Vec::new()),
            volumes_in: Mutex::new(HashMap::new()),
            unplugging: Mutex::new(HashMap::new()),
            generation: Mutex::new((generation, None)),
            wake: Notify::new(),
        })
    }

    /// Registers, then reconciles and heartbeats until `shutdown`.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        for attempt in 0..100u32 {
            match self.cp.register(&self.host).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(host = %self.host.name, attempt, error = %e, "registering the host failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        let mut tick = tokio::time::interval(TICK);
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = heartbeat.tick() => {
                    if let Err(e) = self.cp.heartbeat(&self.host.name).await {
                        tracing::warn!(host = %self.host.name, error = %e, "heartbeat failed");
                    }
                }
                _ = tick.tick() => {
                    self.timed_pass().await;
                }
                _ = self.wake.notified() => {
                    // Wakes come in bursts (a port per server of a big boot
                    // request). A pass costs more as the host fills, so after
                    // one the agent rests as long as it took: wakes meanwhile
                    // fold into the next pass, and the APIs keep half the CPU.
                    let took = self.timed_pass().await;
                    tokio::select! {
                        _ = shutdown.changed() => break,
                        _ = tokio::time::sleep(took.min(TICK)) => {}
                    }
                }
            }
        }
    }

    async fn timed_pass(self: &Arc<Self>) -> Duration {
        let start = std::time::Instant::now();
        self.reconcile_once().await;
        start.elapsed()
    }

    /// The desired-state generation this host applied last.
    pub fn applied_generation(&self) -> i64 {
        self.generation.lock().map(|g| g.0).unwrap_or(0)
    }

    /// Whether to apply `desired`; records its generation when it is.
    fn accept(&self, desired: &crate::spec::DesiredState) -> bool {
        let Ok(mut g) = self.generation.lock() else {
            return false;
        };
        let refusal = match &desired.out_of_sync {
            Some(why) => Some(format!("the controller says this host is out of sync: {why}")),
            None if desired.generation < g.0 => Some(format!(
                "the controller offers desired-state generation {}, older than the {} this host applied: \
                 its database looks restored from an older backup",
                desired.generation, g.0
            )),
            None => None,
        };
        if let Some(why) = refusal {
            if g.1.as_ref() != Some(&why) {
                tracing::error!(host = %self.host.name, offered = desired.generation, applied = g.0,
                    "{why}; applying nothing and keeping every instance as it is");
                g.1 = Some(why);
            }
            return false;
        }
        g.1 = None;
        if desired.generation > g.0 {
            g.0 = desired.generation;
            let tmp = self.applied_dir.join(".generation.tmp");
            if std::fs::write(&tmp, g.0.to_string()).is_ok() {
                let _ = std::fs::rename(tmp, self.applied_dir.join("generation"));
            }
        }
        true
    }

    /// Says what runs of the host's load balancers, when it changed.
    async fn report_balancers(&self) {
        let now = self.dataplane.balancers().await;
        let same = self
            .balancers_reported
            .lock()
            .map(|r| *r == now)
            .unwrap_or(false);
        if same {
            return;
        }
        match self.cp.report_balancers(&self.host.name, now.clone()).await {
            Ok(()) => {
                if let Ok(mut r) = self.balancers_reported.lock() {
                    *r = now;
                }
            }
            Err(e) => {
                tracing::warn!(host = %self.host.name, error = %e, "reporting load balancers failed")
            }
        }
    }

    /// One pass over the desired state.
    pub async fn reconcile_once(self: &Arc<Self>) {
        let applied = self.applied_generation();
        let desired = match self.cp.desired(&self.host.name, applied).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(host = %self.host.name, error = %e, "fetching desired state failed");
                return;
            }
        };
        if !self.accept(&desired) {
            return;
        }
        let generation = desired.generation;
        // Ports before instances: a VM's tap must be on its bridge when it starts.
        if let Err(e) = self.dataplane.apply(&desired.network).await {
            tracing::debug!(host = %self.host.name, error = %e, "dataplane not converged");
        }
        self.report_balancers().await;
        let wanted: HashSet<String> = desired.instances.iter().map(|i| i.id.clone()).collect();
        let retained: HashSet<String> = desired.retained.iter().cloned().collect();
        // Being live-migrated: the migration drives them, not this loop.
        let hands_off: HashSet<String> = desired.hands_off.iter().cloned().collect();
        for spec in desired
            .instances
            .into_iter()
            .filter(|s| !hands_off.contains(&s.id))
        {
            let fresh = self
                .busy
                .lock()
                .map(|mut b| b.insert(spec.id.clone()))
                .unwrap_or(false);
            if fresh {
                let me = self.clone();
                tokio::spawn(async move {
                    let id = spec.id.clone();
                    me.converge(spec, generation).await;
                    if let Ok(mut b) = me.busy.lock() {
                        b.remove(&id);
                    }
                });
            }
        }
        // Instances on this host that the control plane no longer knows.
        for id in self.driver.instances().await {
            let idle = self.busy.lock().map(|b| !b.contains(&id)).unwrap_or(false);
            if hands_off.contains(&id) {
                continue;
            }
            if retained.contains(&id) && !wanted.contains(&id) && idle {
                // Moved away, not yet confirmed: kept, off, for a revert.
                if self.driver.power(&id).await != PowerState::Shutdown {
                    if let Err(e) = self.driver.stop(&id, STOP_GRACE).await {
                        tracing::error!(server_id = %id, error = %e, "stopping a moved instance's old copy failed");
                    }
                }
                continue;
            }
            if !wanted.contains(&id) && idle {
                tracing::warn!(server_id = %id, "removing an instance the control plane doesn't know");
                if let Err(e) = self.driver.destroy(&id).await {
                    tracing::error!(server_id = %id, error = %e, "removing an orphan failed");
                }
                self.forget(&id);
            }
        }
    }

    fn applied_path(&self, id: &str) -> PathBuf {
        self.applied_dir.join(format!("{id}.json"))
    }

    fn load_applied(&self, id: &str) -> Option<Applied> {
        if let Some(a) = self.applied.lock().ok()?.get(id) {
            return Some(*a);
        }
        let a: Applied =
            serde_json::from_slice(&std::fs::read(self.applied_path(id)).ok()?).ok()?;
        self.applied.lock().ok()?.insert(id.to_owned(), a);
        Some(a)
    }

    fn save_applied(&self, id: &str, a: Applied) {
        if let Ok(bytes) = serde_json::to_vec(&a) {
            let tmp = self.applied_dir.join(format!(".{id}.tmp"));
            if std::fs::write(&tmp, bytes).is_ok() {
                let _ = std::fs::rename(tmp, self.applied_path(id));
            }
        }
        if let Ok(mut m) = self.applied.lock() {
            m.insert(id.to_owned(), a);
        }
    }

    fn forget(&self, id: &str) {
        self.forget_volumes(id);
        let _ = std::fs::remove_file(self.applied_path(id));
        if let Ok(mut m) = self.applied.lock() {
            m.remove(id);
        }
    }

    async fn converge(&self, spec: InstanceSpec, generation: i64) {
        let applied = self.load_applied(&spec.id).unwrap_or_default();
        let (observed, applied) = match self.apply(&spec, applied).await {
            Ok(r) => r,
            Err(msg) => {
                tracing::error!(server_id = %spec.id, error = %msg, "converging failed");
                (
                    Observed::Failed(msg),
                    self.load_applied(&spec.id).unwrap_or_default(),
                )
            }
        };
        let volumes = self.converge_volumes(&spec, &observed).await;
        let report = Report {
            id: spec.id.clone(),
            generation,
            observed,
            applied_reboot_seq: applied.reboot_seq,
            applied_rebuild_seq: applied.rebuild_seq,
            applied_resize_seq: applied.resize_seq,
            volumes,
        };
        let unchanged = self
            .reported
            .lock()
            .map(|r| {
                // A newer generation alone is no news.
                r.get(&spec.id).is_some_and(|old| {
                    *old == Report {
                        generation: old.generation,
                        ..report.clone()
                    }
                })
            })
            .unwrap_or(false);
        if unchanged {
            return;
        }
        match self.cp.report(&self.host.name, vec![report.clone()]).await {
            Ok(()) => {
                if let Ok(mut r) = self.reported.lock() {
                    if report.observed == Observed::Absent {
                        r.remove(&spec.id);
                    } else {
                        r.insert(spec.id.clone(), report);
                    }
                }
            }
            Err(e) => tracing::warn!(server_id = %spec.id, error = %e, "reporting failed"),
        }
    }

    /// Plugs in and unplugs volumes of a running instance until they are
    /// those of the spec, and says which it has now. A stopped instance
    /// starts with the spec's (they are on its command line).
    async fn converge_volumes(&self, spec: &InstanceSpec, observed: &Observed) -> Vec<String> {
        let wanted: Vec<String> = spec.volumes.iter().map(|v| v.volume_id.clone()).collect();
        let sized: Vec<(String, i64)> = spec
            .volumes
            .iter()
            .map(|v| (v.volume_id.clone(), v.size_gb))
            .collect();
        match observed {
            Observed::Running | Observed::Paused | Observed::Suspended => {}
            Observed::Shutdown => {
                self.forget_volumes(&spec.id);
                return wanted;
            }
            Observed::Absent | Observed::Failed(_) => {
                self.forget_volumes(&spec.id);
                return Vec::new();
            }
        }
        // The same volumes at the same sizes as when the VM last had exactly
        // them: nothing to ask QEMU (a pass would otherwise query every
        // running VM, and every volume's size).
        let known = self
            .volumes_in
            .lock()
            .map(|k| k.get(&spec.id) == Some(&sized))
            .unwrap_or(false);
        if known {
            return wanted;
        }
        let d = &self.driver;
        let mut have = match d.volumes(&spec.id).await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(server_id = %spec.id, error = %e, "listing plugged volumes failed");
                return Vec::new();
            }
        };
        for v in &spec.volumes {
            if !have.contains(&v.volume_id) {
                match d.attach_volume(&spec.id, v).await {
                    Ok(()) => self.set_unplugging(&spec.id, &v.volume_id, false),
                    Err(e) => {
                        tracing::error!(server_id = %spec.id, volume_id = %v.volume_id, error = %e, "plugging a volume in failed")
                    }
                }
            }
        }
        for v in spec.volumes.iter().filter(|v| have.contains(&v.volume_id)) {
            if let Err(e) = d.grow_volume(&spec.id, v).await {
                tracing::error!(server_id = %spec.id, volume_id = %v.volume_id, error = %e, "growing a volume failed");
            }
        }
        for id in self.unplugging_of(&spec.id) {
            if !have.contains(&id) && !wanted.contains(&id) {
                have.push(id);
            }
        }
        for id in have.iter().filter(|h| !wanted.contains(h)) {
            let gone = match d.detach_volume(&spec.id, id).await {
                Ok(gone) => gone,
                Err(e) => {
                    tracing::error!(server_id = %spec.id, volume_id = %id, error = %e, "unplugging a volume failed");
                    false
                }
            };
            self.set_unplugging(&spec.id, id, !gone);
        }
        let mut now = d.volumes(&spec.id).await.unwrap_or(have);
        for id in self.unplugging_of(&spec.id) {
            if !now.contains(&id) {
                now.push(id);
            }
        }
        let same = {
            let (mut a, mut b) = (now.clone(), wanted.clone());
            a.sort();
            b.sort();
            a == b
        };
        if let Ok(mut k) = self.volumes_in.lock() {
            if same {
                k.insert(spec.id.clone(), sized);
            } else {
                k.remove(&spec.id);
            }
        }
        now
    }

    fn forget_volumes(&self, id: &str) {
        if let Ok(mut k) = self.volumes_in.lock() {
            k.remove(id);
        }
        if let Ok(mut u) = self.unplugging.lock() {
            u.remove(id);
        }
    }

    fn unplugging_of(&self, server_id: &str) -> Vec<String> {
        self.unplugging
            .lock()
            .ok()
            .and_then(|u| u.get(server_id).map(|s| s.iter().cloned().collect()))
            .unwrap_or_default()
    }

    fn set_unplugging(&self, server_id: &str, volume_id: &str, pending: bool) {
        if let Ok(mut u) = self.unplugging.lock() {
            if pending {
                u.entry(server_id.to_owned())
                    .or_default()
                    .insert(volume_id.to_owned());
            } else if let Some(s) = u.get_mut(server_id) {
                s.remove(volume_id);
                if s.is_empty() {
                    u.remove(server_id);
                }
            }
        }
    }

    /// The image file to boot from (none for an instance booted from a
    /// volume).
    async fn image(&self, spec: &InstanceSpec) -> Result<(PathBuf, String), String> {
        if spec.root_volume().is_some() {
            return Ok((PathBuf::new(), String::new()));
        }
        self.cp
            .image_file(&spec.image_id)
            .await
            .map_err(|LinkError(e)| e)
    }

    async fn apply(
        &self,
        spec: &InstanceSpec,
        mut applied: Applied,
    ) -> Result<(Observed, Applied), String> {
        let d = &self.driver;
        let err = |e: crate::driver::DriverError| e.to_string();
        if spec.deleted {
            d.destroy(&spec.id).await.map_err(err)?;
            self.forget(&spec.id);
            return Ok((Observed::Absent, applied));
        }
        let mut state = d.power(&spec.id).await;
        if state == PowerState::Absent {
            let (path, format) = if spec.migrated && spec.root_volume().is_none() {
                // Moved here: its disk is the copy the control plane holds.
                let copy = self
                    .cp
                    .migration_disk(&spec.id)
                    .await
                    .map_err(|LinkError(e)| e)?;
                let adopted = d.adopt_disk(&spec.id, &copy, spec.disk_gb).await;
                self.cp.done_with(&copy).await;
                adopted.map_err(err)?;
                (PathBuf::new(), String::new())
            } else {
                self.image(spec).await?
            };
            d.spawn(spec, &path, &format).await.map_err(err)?;
            applied = Applied {
                reboot_seq: spec.reboot_seq,
                rebuild_seq: spec.rebuild_seq,
                resize_seq: spec.resize_seq,
            };
            self.save_applied(&spec.id, applied);
            state = PowerState::Running;
        }
        if spec.rebuild_seq > applied.rebuild_seq {
            let (path, format) = self.image(spec).await?;
            d.rebuild(spec, &path, &format).await.map_err(err)?;
            applied = Applied {
                reboot_seq: spec.reboot_seq,
                rebuild_seq: spec.rebuild_seq,
                resize_seq: spec.resize_seq,
            };
            self.save_applied(&spec.id, applied);
            state = PowerState::Running;
        }
        if spec.resize_seq > applied.resize_seq {
            d.resize(spec).await.map_err(err)?;
            applied.resize_seq = spec.resize_seq;
            self.save_applied(&spec.id, applied);
            state = d.power(&spec.id).await;
        }
        if spec.reboot_seq > applied.reboot_seq {
            if spec.power == Power::Running {
                d.reboot(spec, spec.reboot_hard).await.map_err(err)?;
                state = PowerState::Running;
            }
            applied.reboot_seq = spec.reboot_seq;
            self.save_applied(&spec.id, applied);
        }
        match (spec.power, state) {
            (Power::Running, PowerState::Shutdown) => d.start(spec).await.map_err(err)?,
            (Power::Running, PowerState::Paused) => d.unpause(&spec.id).await.map_err(err)?,
            (Power::Stopped, PowerState::Running | PowerState::Paused) => {
                d.stop(&spec.id, STOP_GRACE).await.map_err(err)?
            }
            (Power::Paused | Power::Suspended, PowerState::Running) => {
                d.pause(&spec.id).await.map_err(err)?
            }
            (Power::Paused | Power::Suspended, PowerState::Shutdown) => {
                d.start(spec).await.map_err(err)?;
                d.pause(&spec.id).await.map_err(err)?;
            }
            _ => {}
        }
        let observed = match d.power(&spec.id).await {
            PowerState::Running => Observed::Running,
            PowerState::Paused if spec.power == Power::Suspended => Observed::Suspended,
            PowerState::Paused => Observed::Paused,
            PowerState::Shutdown => Observed::Shutdown,
            PowerState::Absent => Observed::Absent,
        };
        Ok((observed, applied))
    }
}

impl Agent {
    /// Marks an instance busy for `what` (waiting, bounded, for a pass on it
    /// to end); it is free again when the guard drops.
    async fn take<'a>(&'a self, id: &'a str, what: &str) -> Result<Release<'a>, LinkError> {
        for _ in 0..1200 {
            let taken = self
                .busy
                .lock()
                .map(|mut b| b.insert(id.to_owned()))
                .unwrap_or(false);
            if taken {
                return Ok(Release(&self.busy, id));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(LinkError(format!(
            "instance {id} stayed busy for a minute; try the {what} again"
        )))
    }
}

/// Takes an instance off the busy set when dropped (also when the task
/// holding it is cancelled).
struct Release<'a>(&'a Mutex<HashSet<String>>, &'a str);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        if let Ok(mut b) = self.0.lock() {
            b.remove(self.1);
        }
    }
}

#[async_trait::async_trait]
impl HostAgent for Agent {
    async fn console_log(&self, id: &str, lines: Option<usize>) -> Result<String, LinkError> {
        self.driver
            .console_log(id, lines)
            .await
            .map_err(|e| LinkError(e.to_string()))
    }

    async fn instances(&self) -> Result<Vec<String>, LinkError> {
        let mut ids = self.driver.instances().await;
        ids.sort();
        Ok(ids)
    }

    fn wake(&self) {
        self.wake.notify_one();
    }

    async fn snapshot(&self, id: &str, to: &Path) -> Result<(), LinkError> {
        // The reconciler leaves a busy instance alone, so it doesn't resume
        // the guest the copy paused.
        let _release = self.take(id, "snapshot").await?;
        self.driver
            .snapshot(id, to)
            .await
            .map_err(|e| LinkError(e.to_string()))
    }

    async fn prepare_incoming(
        &self,
        spec: &InstanceSpec,
        listen_ip: &str,
    ) -> Result<Incoming, LinkError> {
        let _release = self.take(&spec.id, "live migration").await?;
        // The port's tap must be on its bridge before QEMU opens it: the
        // desired state already binds it here too (`migrating_to`).
        let applied = self.applied_generation();
        let desired = self.cp.desired(&self.host.name, applied).await?;
        if self.accept(&desired) {
            if let Err(e) = self.dataplane.apply(&desired.network).await {
                tracing::debug!(host = %self.host.name, error = %e, "dataplane not converged");
            }
        }
        let (path, format) = self.image(spec).await.map_err(LinkError)?;
        let incoming = self
            .driver
            .prepare_incoming(spec, &path, &format, listen_ip)
            .await
            .map_err(|e| LinkError(e.to_string()))?;
        // What the source had applied, this copy has too.
        self.save_applied(
            &spec.id,
            Applied {
                reboot_seq: spec.reboot_seq,
                rebuild_seq: spec.rebuild_seq,
                resize_seq: spec.resize_seq,
            },
        );
        Ok(incoming)
    }

    async fn migrate_out(&self, id: &str, to: &Incoming) -> Result<LiveStats, LinkError> {
        let _release = self.take(id, "live migration").await?;
        self.driver
            .migrate_out(id, to)
            .await
            .map_err(|e| LinkError(e.to_string()))
    }

    async fn finish_incoming(&self, id: &str) -> Result<(), LinkError> {
        self.driver
            .finish_incoming(id)
            .await
            .map_err(|e| LinkError(e.to_string()))
    }

    async fn cancel_migration(&self, id: &str) -> Result<(), LinkError> {
        let _release = self.take(id, "live migration").await?;
        self.driver
            .cancel_migration(id)
            .await
            .map_err(|e| LinkError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::FakeDataplane;
    use crate::fake::FakeDriver;
    use crate::spec::{DesiredState, VolumeSpec};

    /// A control plane that wants nothing and hears everything.
    struct Silent;

    #[async_trait::async_trait]
    impl ControlPlane for Silent {
        async fn register(&self, _: &HostInfo) -> std::result::Result<(), LinkError> {
            Ok(())
        }
        async fn heartbeat(&self, _: &str) -> std::result::Result<(), LinkError> {
            Ok(())
        }
        async fn desired(&self, _: &str, _: i64) -> std::result::Result<DesiredState, LinkError> {
            Ok(DesiredState::default())
        }
        async fn report(&self, _: &str, _: Vec<Report>) -> std::result::Result<(), LinkError> {
            Ok(())
        }
        async fn report_balancers(
            &self,
            _: &str,
            _: Vec<crate::balancer::BalancerReport>,
        ) -> std::result::Result<(), LinkError> {
            Ok(())
        }
        async fn image_file(&self, _: &str) -> std::result::Result<(PathBuf, String), LinkError> {
            Err(LinkError("no images".into()))
        }
        async fn migration_disk(&self, _: &str) -> std::result::Result<PathBuf, LinkError> {
            Err(LinkError("no disks".into()))
        }
        async fn instance_at(
            &self,
            _: &str,
            _: &str,
        ) -> std::result::Result<Option<crate::spec::MetadataTarget>, LinkError> {
            Ok(None)
        }
    }

    fn spec(volumes: &[&str]) -> InstanceSpec {
        let mut s: InstanceSpec = serde_json::from_value(serde_json::json!({
            "id": "s1", "name": "instance-00000001", "display_name": "vm", "hostname": "vm",
            "project_id": "p", "image_id": "i", "vcpus": 1, "memory_mb": 64, "disk_gb": 1,
            "key_name": null, "public_key": null, "user_data": null, "metadata": {},
            "availability_zone": "nova", "launch_index": 0, "reservation_id": "r",
            "power": "running", "reboot_seq": 0, "reboot_hard": false, "rebuild_seq": 0,
            "resize_seq": 0, "deleted": false
        }))
        .unwrap();
        s.volumes = volumes
            .iter()
            .map(|v| VolumeSpec {
                volume_id: (*v).into(),
                device: "/dev/vdb".into(),
                path: format!("/v/{v}.qcow2"),
                format: "qcow2".into(),
                size_gb: 1,
            })
            .collect();
        s
    }

    /// A volume whose device went but whose block node QEMU still holds
    /// (the file still locked) is not reported unplugged until the node
    /// is gone too: another VM could not open it yet.
    #[tokio::test]
    async fn a_volume_is_unplugged_once_its_node_is_gone() {
        let fake = Arc::new(FakeDriver::default());
        let host = HostInfo {
            name: "h1".into(),
            hypervisor_type: "fake".into(),
            hypervisor_version: 1,
            host_ip: "127.0.0.1".into(),
            vcpus: 1,
            memory_mb: 1024,
            disk_gb: 10,
            agent_url: None,
            network_node: false,
            tunnel_ip: None,
        };
        let dir = std::env::temp_dir().join(format!("ferro-agent-test-{}", std::process::id()));
        let agent = Agent::new(
            host,
            Arc::new(Silent),
            fake.clone(),
            Arc::new(FakeDataplane::default()),
            dir.clone(),
        );
        let running = Observed::Running;
        assert_eq!(
            agent.converge_volumes(&spec(&["v1"]), &running).await,
            ["v1"]
        );
        fake.hold_node("v1", 2);
        let unplugged = spec(&[]);
        assert_eq!(agent.converge_volumes(&unplugged, &running).await, ["v1"]);
        assert_eq!(agent.converge_volumes(&unplugged, &running).await, ["v1"]);
        assert!(agent
            .converge_volumes(&unplugged, &running)
            .await
            .is_empty());
        let detaches = fake
            .calls()
            .iter()
            .filter(|c| *c == "detach v1 from s1")
            .count();
        assert_eq!(detaches, 3);
        // Plugged in again while its node was held: plugged, not pending.
        fake.hold_node("v1", 1);
        assert_eq!(
            agent.converge_volumes(&spec(&["v1"]), &running).await,
            ["v1"]
        );
        assert_eq!(agent.converge_volumes(&unplugged, &running).await, ["v1"]);
        assert_eq!(
            agent.converge_volumes(&spec(&["v1"]), &running).await,
            ["v1"]
        );
        assert!(agent.unplugging_of("s1").is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }
}
