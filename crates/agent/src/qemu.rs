//! The QEMU driver: one `qemu-system-x86_64` process per instance,
//! controlled over QMP.
//!
//! Per instance, under `<state>/instances/<id>/`: `disk.qcow2` (an overlay
//! on the host's cached copy of the image, grown to the flavor's disk),
//! `config.iso` (the config drive, on an IDE cdrom as Nova attaches it),
//! `console.log` (the serial console), `qmp.sock` and `qemu.pid`. QEMU
//! runs daemonized, so it outlives the agent; a restarted agent finds it by
//! its pid file and adopts it.
//!
//! KVM is used when a probe VM runs under it; some nested setups pass the
//! probe and still stop a real guest with a KVM internal error (QMP status
//! `internal-error`, seen here under a PVM host). A guest found in that
//! state makes the driver give KVM up for good — it writes
//! `<state>/kvm-unusable` so restarts skip KVM too — and the guest is
//! stopped, so the reconciler starts it again under TCG.
//!
//! ```text
//!   Absent ──spawn──► Running ◄──unpause── Paused
//!      ▲               │  ▲ └────pause──────►
//!      │            stop  start
//!   destroy            ▼  │
//!      └───────────── Shutdown
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::configdrive;
use crate::driver::{run, DriverError, Hypervisor, PowerState, Result};
use crate::qmp;
use crate::spec::{Incoming, InstanceSpec, LiveStats, VolumeSpec};

const QEMU: &str = "qemu-system-x86_64";
/// In an instance's directory instead of `disk.qcow2`: it boots from this
/// volume (the file holds its id).
const ROOT_VOLUME: &str = "root-volume";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    /// KVM with the CPU model the probe found working.
    Kvm(&'static str),
    Tcg,
}

pub struct QemuDriver {
    instances: PathBuf,
    cache: PathBuf,
    /// What the probe found; see `accel()` for what is used now.
    probed: Accel,
    /// A guest hit a KVM internal error: TCG from then on.
    kvm_unusable: AtomicBool,
    kvm_marker: PathBuf,
    image_locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DriverError {
    let what = what.into();
    move |source| DriverError::Io { what, source }
}

/// KVM counts only if a guest really runs under it with the CPU model the
/// driver will use: the device node alone proves nothing in nested setups.
/// Returns the CPU model that works, if any.
pub async fn probe_kvm() -> Option<&'static str> {
    if !Path::new("/dev/kvm").exists() {
        return None;
    }
    for cpu in ["host", "max"] {
        if probe_kvm_cpu(cpu).await {
            return Some(cpu);
        }
    }
    None
}

async fn probe_kvm_cpu(cpu: &str) -> bool {
    let child = tokio::process::Command::new(QEMU)
        .args([
            "-accel",
            "kvm",
            "-machine",
            "pc",
            "-cpu",
            cpu,
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-m",
            "16",
            "-S",
            "-qmp",
            "stdio",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let Ok(mut child) = child else { return false };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(mut stdin) = child.stdin.take() else {
        return false;
    };
    let script = "{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"cont\"}\n";
    if stdin.write_all(script.as_bytes()).await.is_err() {
        return false;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stdin
        .write_all(b"{\"execute\":\"query-status\"}\n{\"execute\":\"quit\"}\n")
        .await;
    drop(stdin);
    let mut out = String::new();
    if let Some(mut so) = child.stdout.take() {
        let _ = tokio::time::timeout(Duration::from_secs(5), so.read_to_string(&mut out)).await;
    }
    let _ = child.kill().await;
    out.contains("\"status\": \"running\"") || out.contains("\"status\":\"running\"")
}

impl QemuDriver {
    pub async fn new(state_dir: &Path) -> Result<QemuDriver> {
        let instances = state_dir.join("instances");
        let cache = state_dir.join("image-cache");
        tokio::fs::create_dir_all(&instances)
            .await
            .map_err(io("creating the instances directory"))?;
        tokio::fs::create_dir_all(&cache)
            .await
            .map_err(io("creating the image cache"))?;
        let kvm_marker = state_dir.join("kvm-unusable");
        let accel = match std::env::var("FERROSTACK_ACCEL").as_deref() {
            Ok("tcg") => Accel::Tcg,
            _ if kvm_marker.exists() => {
                tracing::warn!(marker = %kvm_marker.display(), "KVM failed a guest here before: using TCG");
                Accel::Tcg
            }
            _ => probe_kvm().await.map(Accel::Kvm).unwrap_or(Accel::Tcg),
        };
        tracing::info!(?accel, "QEMU driver ready");
        Ok(QemuDriver {
            instances,
            cache,
            probed: accel,
            kvm_unusable: AtomicBool::new(false),
            kvm_marker,
            image_locks: Mutex::new(HashMap::new()),
        })
    }

    pub fn accel(&self) -> Accel {
        if self.kvm_unusable.load(Ordering::Relaxed) {
            Accel::Tcg
        } else {
            self.probed
        }
    }

    /// A guest stopped with a KVM internal error: use TCG from now on (and
    /// after restarts), and stop the guest so it is started again under it.
    async fn give_up_kvm(&self, id: &str) {
        if !self.kvm_unusable.swap(true, Ordering::Relaxed) {
            tracing::error!(server_id = %id, "a guest stopped with a KVM internal error: KVM doesn't really work on this host, using TCG from now on");
            if let Err(e) = tokio::fs::write(
                &self.kvm_marker,
                "a guest stopped with a KVM internal error; delete this file to try KVM again\n",
            )
            .await
            {
                tracing::warn!(error = %e, "could not record that KVM is unusable");
            }
        }
        if let Err(e) = self.stop(id, Duration::ZERO).await {
            tracing::error!(server_id = %id, error = %e, "stopping a guest KVM failed");
        }
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.instances.join(id)
    }

    /// The qemu process of an instance, if it is alive.
    fn pid(&self, id: &str) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.dir(id).join("qemu.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let needle = id.as_bytes();
        cmdline
            .windows(needle.len())
            .any(|w| w == needle)
            .then_some(pid)
    }

    fn qmp_sock(&self, id: &str) -> PathBuf {
        self.dir(id).join("qmp.sock")
    }

    /// The image converted once to qcow2 in the host cache.
    async fn base_image(&self, image_id: &str, src: &Path, format: &str) -> Result<PathBuf> {
        let lock = {
            let mut locks = self.image_locks.lock().await;
            locks.entry(image_id.to_owned()).or_default().clone()
        };
        let _held = lock.lock().await;
        let base = self.cache.join(format!("{image_id}.qcow2"));
        if tokio::fs::metadata(&base).await.is_ok() {
            return Ok(base);
        }
        let tmp = self.cache.join(format!("{image_id}.qcow2.part"));
        let fmt = if format == "qcow2" { "qcow2" } else { "raw" };
        run(
            "caching the base image",
            "qemu-img",
            &[
                "convert".into(),
                "-q".into(),
                "-f".into(),
                fmt.into(),
                "-O".into(),
                "qcow2".into(),
                src.display().to_string(),
                tmp.display().to_string(),
            ],
        )
        .await?;
        tokio::fs::rename(&tmp, &base)
            .await
            .map_err(io("caching the base image"))?;
        tracing::info!(image_id, "base image cached");
        Ok(base)
    }

    async fn create_disk(&self, spec: &InstanceSpec, base: &Path) -> Result<()> {
        let disk = self.dir(&spec.id).join("disk.qcow2");
        let _ = tokio::fs::remove_file(&disk).await;
        let mut args: Vec<String> = vec![
            "create".into(),
            "-q".into(),
            "-f".into(),
            "qcow2".into(),
            "-F".into(),
            "qcow2".into(),
            "-b".into(),
            base.display().to_string(),
            disk.display().to_string(),
        ];
        // Grow to the flavor's disk, never shrink below the image.
        let virtual_size = run(
            "reading the base image",
            "qemu-img",
            &[
                "info".into(),
                "--output=json".into(),
                base.display().to_string(),
            ],
        )
        .await
        .ok()
        .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
        .and_then(|v| v["virtual-size"].as_i64())
        .unwrap_or(0);
        let want = spec.disk_gb << 30;
        if want > virtual_size {
            args.push(format!("{}G", spec.disk_gb));
        }
        run("creating the root disk", "qemu-img", &args).await?;
        Ok(())
    }

    async fn config_drive(&self, spec: &InstanceSpec) -> Result<()> {
        let dir = self.dir(&spec.id);
        if !spec.config_drive {
            let _ = tokio::fs::remove_file(dir.join("config.iso")).await;
            return Ok(());
        }
        let network_data = crate::configdrive::network_data(spec);
        configdrive::build(
            spec,
            &network_data,
            &dir.join("config-drive"),
            &dir.join("config.iso"),
        )
        .await
    }

    async fn launch(&self, spec: &InstanceSpec) -> Result<()> {
        self.launch_with(spec, None).await
    }

    /// Starts QEMU; with `incoming` (a migration URI's listening side,
    /// `defer`) it waits for a live migration's memory instead of booting.
    async fn launch_with(&self, spec: &InstanceSpec, incoming: Option<&str>) -> Result<()> {
        if self.pid(&spec.id).is_some() {
            return Ok(());
        }
        let dir = self.dir(&spec.id);
        let _ = tokio::fs::remove_file(self.qmp_sock(&spec.id)).await;
        let p = |f: &str| dir.join(f).display().to_string();
        let (accel, cpu) = match self.accel() {
            Accel::Kvm(cpu) => ("kvm", cpu),
            Accel::Tcg => ("tcg", "max"),
        };
        let mut args: Vec<String> = vec![
            "-name".into(), format!("guest={},debug-threads=on", spec.name),
            "-uuid".into(), spec.id.clone(),
            "-nodefaults".into(), "-no-user-config".into(), "-display".into(), "none".into(),
            "-machine".into(), "pc".into(), "-accel".into(), accel.into(), "-cpu".into(), cpu.into(),
            "-m".into(), spec.memory_mb.to_string(), "-smp".into(), spec.vcpus.max(1).to_string(),
            "-smbios".into(),
            format!("type=1,manufacturer=OpenStack Foundation,product=OpenStack Nova,family=Virtual Machine,uuid={0},serial={0}", spec.id),
            "-chardev".into(), format!("file,id=console,path={},append=on", p("console.log")),
            "-serial".into(), "chardev:console".into(),
            "-qmp".into(), format!("unix:{},server=on,wait=off", p("qmp.sock")),
            "-object".into(), "rng-random,filename=/dev/urandom,id=rng0".into(),
            "-device".into(), "virtio-rng-pci,rng=rng0".into(),
            "-daemonize".into(), "-pidfile".into(), p("qemu.pid"),
        ];
        if spec.config_drive {
            args.push("-drive".into());
            args.push(format!(
                "file={},if=ide,media=cdrom,readonly=on,format=raw",
                p("config.iso")
            ));
        }
        // The root disk: the instance's own, or the volume it boots from
        // (first among the volumes).
        if spec.root_volume().is_none() {
            args.push("-drive".into());
            args.push(format!(
                "file={},if=virtio,format=qcow2,discard=unmap,id={}",
                p("disk.qcow2"),
                crate::live::ROOT_DRIVE
            ));
        }
        if let Some(uri) = incoming {
            args.push("-incoming".into());
            args.push(uri.into());
        }
        args.extend(crate::hotplug::launch_args(&spec.volumes));
        // The dataplane made each tap and plugged it into its network's bridge.
        for (i, nic) in spec.nics.iter().enumerate() {
            args.push("-netdev".into());
            args.push(format!(
                "tap,id=net{i},ifname={},script=no,downscript=no",
                crate::netspec::names::tap(&nic.port_id)
            ));
            args.push("-device".into());
            args.push(format!(
                "virtio-net-pci,netdev=net{i},mac={},romfile=",
                nic.mac
            ));
        }
        run("starting qemu", QEMU, &args).await?;
        tracing::info!(server_id = %spec.id, "qemu started");
        Ok(())
    }

    async fn wait_gone(&self, id: &str, within: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < within {
            if self.pid(id).is_none() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.pid(id).is_none()
    }
}

#[async_trait::async_trait]
impl Hypervisor for QemuDriver {
    fn hypervisor_type(&self) -> String {
        match self.accel() {
            Accel::Kvm(_) => "KVM".into(),
            Accel::Tcg => "QEMU".into(),
        }
    }

    async fn power(&self, id: &str) -> PowerState {
        let dir = self.dir(id);
        if tokio::fs::metadata(dir.join("disk.qcow2")).await.is_err()
            && tokio::fs::metadata(dir.join(ROOT_VOLUME)).await.is_err()
        {
            return PowerState::Absent;
        }
        if self.pid(id).is_none() {
            return PowerState::Shutdown;
        }
        match qmp::execute(&self.qmp_sock(id), "query-status", None).await {
            Ok(v) if v["status"] == "paused" => PowerState::Paused,
            Ok(v) if v["status"] == "internal-error" => {
                self.give_up_kvm(id).await;
                PowerState::Shutdown
            }
            _ => PowerState::Running,
        }
    }

    async fn spawn(&self, spec: &InstanceSpec, image: &Path, image_format: &str) -> Result<()> {
        let dir = self.dir(&spec.id);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(io("creating the instance directory"))?;
        if let Some(root) = spec.root_volume() {
            // Booted from a volume: no disk of its own; the marker says the
            // instance exists here.
            tokio::fs::write(dir.join(ROOT_VOLUME), &root.volume_id)
                .await
                .map_err(io("recording the boot volume"))?;
        } else if tokio::fs::metadata(dir.join("disk.qcow2")).await.is_err() {
            // (A migrated instance's disk is already here: no image needed.)
            let base = self.base_image(&spec.image_id, image, image_format).await?;
            self.create_disk(spec, &base).await?;
        }
        self.config_drive(spec).await?;
        self.launch(spec).await
    }

    async fn start(&self, spec: &InstanceSpec) -> Result<()> {
        self.config_drive(spec).await?;
        self.launch(spec).await
    }

    async fn stop(&self, id: &str, grace: Duration) -> Result<()> {
        let Some(pid) = self.pid(id) else {
            return Ok(());
        };
        if !grace.is_zero()
            && qmp::execute(&self.qmp_sock(id), "system_powerdown", None)
                .await
                .is_ok()
            && self.wait_gone(id, grace).await
        {
            return Ok(());
        }
        let _ = qmp::execute(&self.qmp_sock(id), "quit", None).await;
        if self.wait_gone(id, Duration::from_secs(3)).await {
            return Ok(());
        }
        let _ = run("killing qemu", "kill", &["-KILL".into(), pid.to_string()]).await;
        if self.wait_gone(id, Duration::from_secs(3)).await {
            Ok(())
        } else {
            Err(DriverError::Failed(format!(
                "qemu {pid} of {id} did not stop"
            )))
        }
    }

    async fn pause(&self, id: &str) -> Result<()> {
        qmp::execute(&self.qmp_sock(id), "stop", None)
            .await
            .map(|_| ())
    }

    async fn unpause(&self, id: &str) -> Result<()> {
        qmp::execute(&self.qmp_sock(id), "cont", None)
            .await
            .map(|_| ())
    }

    async fn reboot(&self, spec: &InstanceSpec, hard: bool) -> Result<()> {
        if self.pid(&spec.id).is_none() {
            return self.start(spec).await;
        }
        if hard {
            qmp::execute(&self.qmp_sock(&spec.id), "system_reset", None).await?;
            let _ = qmp::execute(&self.qmp_sock(&spec.id), "cont", None).await;
            return Ok(());
        }
        self.stop(&spec.id, Duration::from_secs(30)).await?;
        self.start(spec).await
    }

    async fn rebuild(&self, spec: &InstanceSpec, image: &Path, image_format: &str) -> Result<()> {
        self.stop(&spec.id, Duration::ZERO).await?;
        let base = self.base_image(&spec.image_id, image, image_format).await?;
        self.create_disk(spec, &base).await?;
        let _ = tokio::fs::remove_file(self.dir(&spec.id).join("console.log")).await;
        self.config_drive(spec).await?;
        self.launch(spec).await
    }

    async fn resize(&self, spec: &InstanceSpec) -> Result<()> {
        let was_running = self.pid(&spec.id).is_some();
        self.stop(&spec.id, Duration::from_secs(60)).await?;
        let disk = self.dir(&spec.id).join("disk.qcow2");
        if spec.root_volume().is_some() {
            // Its disk is a volume: a resize changes CPUs and memory only.
            if was_running {
                self.start(spec).await?;
            }
            return Ok(());
        }
        let current = run(
            "reading the root disk",
            "qemu-img",
            &[
                "info".into(),
                "--output=json".into(),
                "-U".into(),
                disk.display().to_string(),
            ],
        )
        .await
        .ok()
        .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
        .and_then(|v| v["virtual-size"].as_i64())
        .unwrap_or(0);
        if (spec.disk_gb << 30) > current {
            run(
                "growing the root disk",
                "qemu-img",
                &[
                    "resize".into(),
                    "-q".into(),
                    disk.display().to_string(),
                    format!("{}G", spec.disk_gb),
                ],
            )
            .await?;
        }
        if was_running {
            self.start(spec).await?;
        }
        Ok(())
    }

    async fn destroy(&self, id: &str) -> Result<()> {
        self.stop(id, Duration::ZERO).await?;
        match tokio::fs::remove_dir_all(self.dir(id)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(DriverError::Io {
                what: "removing the instance".into(),
                source: e,
            }),
            _ => {
                tracing::info!(server_id = %id, "instance destroyed");
                Ok(())
            }
        }
    }

    async fn console_log(&self, id: &str, lines: Option<usize>) -> Result<String> {
        let bytes = tokio::fs::read(self.dir(id).join("console.log"))
            .await
            .unwrap_or_default();
        // At most the last MiB.
        let start = bytes.len().saturating_sub(1 << 20);
        let text = String::from_utf8_lossy(&bytes[start..]).replace('\r', "");
        Ok(match lines {
            Some(n) => {
                let all: Vec<&str> = text.lines().collect();
                all[all.len().saturating_sub(n)..].join("\n") + "\n"
            }
            None => text,
        })
    }

    async fn volumes(&self, id: &str) -> Result<Vec<String>> {
        crate::hotplug::plugged(&self.qmp_sock(id)).await
    }

    async fn attach_volume(&self, id: &str, volume: &VolumeSpec) -> Result<()> {
        crate::hotplug::plug(&self.qmp_sock(id), volume).await
    }

    async fn grow_volume(&self, id: &str, volume: &VolumeSpec) -> Result<()> {
        crate::hotplug::grow(&self.qmp_sock(id), volume).await
    }

    async fn detach_volume(&self, id: &str, volume_id: &str) -> Result<bool> {
        crate::hotplug::unplug(&self.qmp_sock(id), volume_id).await
    }

    async fn instances(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Ok(mut rd) = tokio::fs::read_dir(&self.instances).await {
            while let Ok(Some(e)) = rd.next_entry().await {
                if let Some(name) = e.file_name().to_str() {
                    out.push(name.to_owned());
                }
            }
        }
        out
    }

    async fn prepare_incoming(
        &self,
        spec: &InstanceSpec,
        image: &Path,
        image_format: &str,
        listen_ip: &str,
    ) -> Result<Incoming> {
        if spec.root_volume().is_some() {
            return Err(DriverError::Failed(
                "live migration of an instance booted from a volume is not supported".into(),
            ));
        }
        // A copy left by an earlier try goes first.
        if self.pid(&spec.id).is_some() {
            self.stop(&spec.id, Duration::ZERO).await?;
        }
        let dir = self.dir(&spec.id);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(io("creating the instance directory"))?;
        let base = self.base_image(&spec.image_id, image, image_format).await?;
        self.create_disk(spec, &base).await?;
        self.config_drive(spec).await?;
        self.launch_with(spec, Some("defer")).await?;
        crate::live::listen(&self.qmp_sock(&spec.id), listen_ip).await
    }

    async fn migrate_out(&self, id: &str, to: &Incoming) -> Result<LiveStats> {
        if self.pid(id).is_none() {
            return Err(DriverError::Failed(format!("instance {id} is not running")));
        }
        let stats = crate::live::migrate_out(&self.qmp_sock(id), to).await?;
        // The destination has it: this copy ends (its files go when the
        // instance is removed from this host).
        self.stop(id, Duration::ZERO).await?;
        Ok(stats)
    }

    async fn finish_incoming(&self, id: &str) -> Result<()> {
        crate::live::finish_incoming(&self.qmp_sock(id)).await
    }

    async fn cancel_migration(&self, id: &str) -> Result<()> {
        if self.pid(id).is_none() {
            return Ok(());
        }
        crate::live::cancel(&self.qmp_sock(id)).await
    }

    async fn adopt_disk(&self, id: &str, from: &Path, disk_gb: i64) -> Result<()> {
        let dir = self.dir(id);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(io("creating the instance directory"))?;
        let disk = dir.join("disk.qcow2");
        let part = dir.join("disk.qcow2.part");
        // A copy, not a move: the source stays whole until the boot worked.
        tokio::fs::copy(from, &part)
            .await
            .map_err(io("taking in a migrated disk"))?;
        let current = run(
            "reading a migrated disk",
            "qemu-img",
            &[
                "info".into(),
                "--output=json".into(),
                part.display().to_string(),
            ],
        )
        .await
        .ok()
        .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
        .and_then(|v| v["virtual-size"].as_i64())
        .unwrap_or(0);
        if (disk_gb << 30) > current {
            run(
                "growing a migrated disk",
                "qemu-img",
                &[
                    "resize".into(),
                    "-q".into(),
                    part.display().to_string(),
                    format!("{disk_gb}G"),
                ],
            )
            .await?;
        }
        tokio::fs::rename(&part, &disk)
            .await
            .map_err(io("taking in a migrated disk"))?;
        tracing::info!(server_id = %id, "migrated disk taken in");
        Ok(())
    }

    async fn snapshot(&self, id: &str, to: &Path) -> Result<()> {
        let disk = self.dir(id).join("disk.qcow2");
        if tokio::fs::metadata(&disk).await.is_err() {
            return Err(DriverError::Failed(format!(
                "instance {id} has no root disk of its own"
            )));
        }
        // Stopping the vCPUs drains and flushes every disk: the file is
        // consistent while they stand still (Nova's libvirt driver does the
        // same for a "cold" snapshot of a running guest).
        let sock = self.qmp_sock(id);
        let was_running = self.pid(id).is_some()
            && qmp::execute(&sock, "query-status", None)
                .await
                .is_ok_and(|st| st["running"].as_bool() == Some(true));
        if was_running {
            qmp::execute(&sock, "stop", None).await?;
        }
        let part = to.with_extension("part");
        let copied = run(
            "copying the root disk",
            "qemu-img",
            &[
                "convert".into(),
                "-q".into(),
                // QEMU holds the image's lock; the copy only reads.
                "-U".into(),
                "-f".into(),
                "qcow2".into(),
                "-O".into(),
                "qcow2".into(),
                disk.display().to_string(),
                part.display().to_string(),
            ],
        )
        .await;
        if was_running {
            if let Err(e) = qmp::execute(&sock, "cont", None).await {
                tracing::error!(server_id = %id, error = %e, "resuming after a snapshot failed");
            }
        }
        if let Err(e) = copied {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(e);
        }
        tokio::fs::rename(&part, to)
            .await
            .map_err(io("keeping the snapshot"))?;
        tracing::info!(server_id = %id, "root disk snapshot taken");
        Ok(())
    }
}
