//! A fake hypervisor for control-plane tests and scale benchmarks: keeps
//! instance states in memory and records every call. It proves nothing
//! about real VMs.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use crate::driver::{DriverError, Hypervisor, PowerState, Result};
use crate::spec::{Incoming, InstanceSpec, LiveStats, VolumeSpec};

#[derive(Default)]
pub struct FakeDriver {
    states: Mutex<HashMap<String, PowerState>>,
    calls: Mutex<Vec<String>>,
    /// Volumes plugged into each instance.
    plugged: Mutex<HashMap<String, Vec<String>>>,
    /// The size each volume was last seen at (GiB).
    sizes: Mutex<HashMap<String, i64>>,
    /// Volumes whose block node outlives their device for this many more
    /// unplugs (as QEMU's does for a moment after `device_del`).
    held: Mutex<HashMap<String, u32>>,
    /// Spawns of instances whose display name contains this fail.
    pub fail_spawn_matching: Option<String>,
}

impl FakeDriver {
    /// A fake whose spawns fail for servers named with `pattern`.
    pub fn failing(pattern: Option<String>) -> Self {
        FakeDriver {
            fail_spawn_matching: pattern,
            ..Default::default()
        }
    }

    /// The next `unplugs` unplugs of `volume_id` take its device away but
    /// leave its block node held.
    pub fn hold_node(&self, volume_id: &str, unplugs: u32) {
        if let Ok(mut h) = self.held.lock() {
            h.insert(volume_id.to_owned(), unplugs);
        }
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn record(&self, call: String) {
        if let Ok(mut c) = self.calls.lock() {
            c.push(call);
        }
    }

    /// A (re)started instance has the spec's volumes.
    fn boot_volumes(&self, spec: &InstanceSpec) {
        if let Ok(mut p) = self.plugged.lock() {
            p.insert(
                spec.id.clone(),
                spec.volumes.iter().map(|v| v.volume_id.clone()).collect(),
            );
        }
    }

    fn set(&self, id: &str, st: PowerState) {
        if let Ok(mut s) = self.states.lock() {
            if st == PowerState::Absent {
                s.remove(id);
            } else {
                s.insert(id.to_owned(), st);
            }
        }
    }
}

#[async_trait::async_trait]
impl Hypervisor for FakeDriver {
    fn hypervisor_type(&self) -> String {
        "fake".into()
    }

    async fn power(&self, id: &str) -> PowerState {
        self.states
            .lock()
            .ok()
            .and_then(|s| s.get(id).copied())
            .unwrap_or(PowerState::Absent)
    }

    async fn spawn(&self, spec: &InstanceSpec, _image: &Path, _format: &str) -> Result<()> {
        self.record(format!("spawn {}", spec.id));
        if let Some(m) = &self.fail_spawn_matching {
            if spec.display_name.contains(m.as_str()) {
                return Err(DriverError::Failed(format!(
                    "fake spawn failure for {}",
                    spec.display_name
                )));
            }
        }
        self.set(&spec.id, PowerState::Running);
        self.boot_volumes(spec);
        Ok(())
    }

    async fn start(&self, spec: &InstanceSpec) -> Result<()> {
        self.record(format!("start {}", spec.id));
        self.set(&spec.id, PowerState::Running);
        self.boot_volumes(spec);
        Ok(())
    }

    async fn stop(&self, id: &str, _grace: Duration) -> Result<()> {
        self.record(format!("stop {id}"));
        self.set(id, PowerState::Shutdown);
        Ok(())
    }

    async fn pause(&self, id: &str) -> Result<()> {
        self.record(format!("pause {id}"));
        self.set(id, PowerState::Paused);
        Ok(())
    }

    async fn unpause(&self, id: &str) -> Result<()> {
        self.record(format!("unpause {id}"));
        self.set(id, PowerState::Running);
        Ok(())
    }

    async fn reboot(&self, spec: &InstanceSpec, hard: bool) -> Result<()> {
        self.record(format!("reboot {} hard={hard}", spec.id));
        self.set(&spec.id, PowerState::Running);
        Ok(())
    }

    async fn rebuild(&self, spec: &InstanceSpec, _image: &Path, _format: &str) -> Result<()> {
        self.record(format!("rebuild {}", spec.id));
        self.set(&spec.id, PowerState::Running);
        Ok(())
    }

    async fn resize(&self, spec: &InstanceSpec) -> Result<()> {
        self.record(format!("resize {} to {} MB", spec.id, spec.memory_mb));
        Ok(())
    }

    async fn destroy(&self, id: &str) -> Result<()> {
        self.record(format!("destroy {id}"));
        self.set(id, PowerState::Absent);
        if let Ok(mut p) = self.plugged.lock() {
            p.remove(id);
        }
        Ok(())
    }

    async fn console_log(&self, id: &str, _lines: Option<usize>) -> Result<String> {
        Ok(format!("fake console of instance {id}\n"))
    }

    async fn instances(&self) -> Vec<String> {
        self.states
            .lock()
            .map(|s| s.keys().cloned().collect())
            .unwrap_or_default()
    }

    async fn volumes(&self, id: &str) -> Result<Vec<String>> {
        Ok(self
            .plugged
            .lock()
            .map(|p| p.get(id).cloned().unwrap_or_default())
            .unwrap_or_default())
    }

    async fn attach_volume(&self, id: &str, volume: &VolumeSpec) -> Result<()> {
        self.record(format!("attach {} to {id}", volume.volume_id));
        if let Ok(mut p) = self.plugged.lock() {
            let v = p.entry(id.to_owned()).or_default();
            if !v.contains(&volume.volume_id) {
                v.push(volume.volume_id.clone());
            }
        }
        Ok(())
    }

    async fn grow_volume(&self, id: &str, volume: &VolumeSpec) -> Result<()> {
        let mut sizes = self.sizes.lock().unwrap_or_else(|p| p.into_inner());
        let had = sizes.entry(volume.volume_id.clone()).or_insert(0);
        if volume.size_gb > *had {
            if *had > 0 {
                self.record(format!(
                    "grow {} of {id} to {}G",
                    volume.volume_id, volume.size_gb
                ));
            }
            *had = volume.size_gb;
        }
        Ok(())
    }

    async fn detach_volume(&self, id: &str, volume_id: &str) -> Result<bool> {
        self.record(format!("detach {volume_id} from {id}"));
        if let Ok(mut p) = self.plugged.lock() {
            if let Some(v) = p.get_mut(id) {
                v.retain(|x| x != volume_id);
            }
        }
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        match held.get_mut(volume_id) {
            Some(n) if *n > 0 => {
                *n -= 1;
                Ok(false)
            }
            _ => Ok(true),
        }
    }

    async fn prepare_incoming(
        &self,
        spec: &InstanceSpec,
        _image: &Path,
        _image_format: &str,
        listen_ip: &str,
    ) -> Result<Incoming> {
        self.record(format!("prepare-incoming {}", spec.id));
        self.set(&spec.id, PowerState::Paused);
        Ok(Incoming {
            ip: listen_ip.to_owned(),
            nbd_port: 10809,
            migration_port: 49152,
        })
    }

    async fn migrate_out(&self, id: &str, _to: &Incoming) -> Result<LiveStats> {
        self.record(format!("migrate-out {id}"));
        // A real guest outlives its agent; the fake's guests live in this
        // process's memory, so after a restart one being migrated (which the
        // reconciler leaves alone) is taken as still running.
        match self.power(id).await {
            PowerState::Running | PowerState::Absent => {}
            _ => return Err(DriverError::Failed(format!("instance {id} is not running"))),
        }
        self.set(id, PowerState::Shutdown);
        Ok(LiveStats {
            total_ms: 1,
            downtime_ms: 1,
            ram_bytes: 0,
        })
    }

    async fn finish_incoming(&self, id: &str) -> Result<()> {
        self.record(format!("finish-incoming {id}"));
        self.set(id, PowerState::Running);
        Ok(())
    }

    async fn cancel_migration(&self, id: &str) -> Result<()> {
        self.record(format!("cancel-migration {id}"));
        if self.power(id).await == PowerState::Shutdown {
            self.set(id, PowerState::Running);
        }
        Ok(())
    }

    async fn adopt_disk(&self, id: &str, from: &Path, _disk_gb: i64) -> Result<()> {
        self.record(format!("adopt {id}"));
        std::fs::metadata(from).map_err(|e| DriverError::Io {
            what: format!("reading {}", from.display()),
            source: e,
        })?;
        Ok(())
    }

    async fn snapshot(&self, id: &str, to: &Path) -> Result<()> {
        self.record(format!("snapshot {id}"));
        if self.power(id).await == PowerState::Absent {
            return Err(DriverError::Failed(format!("no instance {id}")));
        }
        // A qcow2 header (version 3, 1 GiB, no backing file): what the
        // image service checks an upload against.
        let mut head = vec![0u8; 512];
        head[..4].copy_from_slice(b"QFI\xfb");
        head[4..8].copy_from_slice(&3u32.to_be_bytes());
        head[20..24].copy_from_slice(&16u32.to_be_bytes());
        head[24..32].copy_from_slice(&(1u64 << 30).to_be_bytes());
        head[100..104].copy_from_slice(&104u32.to_be_bytes());
        std::fs::write(to, head).map_err(|e| DriverError::Io {
            what: format!("writing {}", to.display()),
            source: e,
        })
    }
}
