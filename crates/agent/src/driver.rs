//! The hypervisor driver trait. Drivers: `qemu` (real VMs) and `fake`
//! (control-plane tests and scale benchmarks).

use std::path::Path;
use std::time::Duration;

use crate::spec::{Incoming, InstanceSpec, LiveStats, VolumeSpec};

/// What a driver sees of an instance right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerState {
    /// Nothing on this host.
    Absent,
    /// Files exist, no process.
    Shutdown,
    Running,
    Paused,
}

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("{what}: `{command}` exited with {status}: {stderr}")]
    Command {
        what: &'static str,
        command: String,
        status: String,
        stderr: String,
    },
    #[error("{0}")]
    Failed(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, DriverError>;

#[async_trait::async_trait]
pub trait Hypervisor: Send + Sync + 'static {
    /// `QEMU` (TCG), `KVM`, or `fake`.
    fn hypervisor_type(&self) -> String;
    async fn power(&self, id: &str) -> PowerState;
    /// Creates the instance's disk and config drive (unless they exist) and
    /// starts it.
    async fn spawn(&self, spec: &InstanceSpec, image: &Path, image_format: &str) -> Result<()>;
    /// Starts an instance whose disk exists.
    async fn start(&self, spec: &InstanceSpec) -> Result<()>;
    /// Graceful shutdown, forced after `grace`.
    async fn stop(&self, id: &str, grace: Duration) -> Result<()>;
    async fn pause(&self, id: &str) -> Result<()>;
    async fn unpause(&self, id: &str) -> Result<()>;
    async fn reboot(&self, spec: &InstanceSpec, hard: bool) -> Result<()>;
    /// Replaces the root disk with a fresh one from `image` and starts.
    async fn rebuild(&self, spec: &InstanceSpec, image: &Path, image_format: &str) -> Result<()>;
    /// Restarts the instance with the spec's (new) size, growing its disk
    /// if the spec asks for more.
    async fn resize(&self, spec: &InstanceSpec) -> Result<()>;
    /// Stops the instance and removes everything it owns.
    async fn destroy(&self, id: &str) -> Result<()>;
    async fn console_log(&self, id: &str, lines: Option<usize>) -> Result<String>;
    /// Ids of the instances present on this host.
    async fn instances(&self) -> Vec<String>;
    /// Ids of the volumes plugged into a running instance.
    async fn volumes(&self, id: &str) -> Result<Vec<String>>;
    /// Plugs a volume into a running instance.
    async fn attach_volume(&self, id: &str, volume: &VolumeSpec) -> Result<()>;
    /// Unplugs a volume from a running instance; true once it is gone.
    async fn detach_volume(&self, id: &str, volume_id: &str) -> Result<bool>;
    /// Grows a volume plugged into a running instance to `volume.size_gb`
    /// (an attached volume extended); nothing when it is that large.
    async fn grow_volume(&self, id: &str, volume: &VolumeSpec) -> Result<()>;
    /// Writes a consistent, standalone qcow2 copy of the instance's root
    /// disk to `to` (Nova's `createImage`). A running guest is paused for
    /// the copy and resumed after it.
    async fn snapshot(&self, id: &str, to: &Path) -> Result<()>;
    /// Makes `from` (a standalone qcow2, another host's copy) the root disk
    /// of instance `id`, grown to `disk_gb` if that is larger; the next
    /// `spawn` boots it instead of making a disk from the image.
    async fn adopt_disk(&self, id: &str, from: &Path, disk_gb: i64) -> Result<()>;
    /// Live migration in: a new disk on `image`, the instance started
    /// waiting for its memory, the disk exported for the source's mirror.
    async fn prepare_incoming(
        &self,
        spec: &InstanceSpec,
        image: &Path,
        image_format: &str,
        listen_ip: &str,
    ) -> Result<Incoming>;
    /// Live migration out: disk mirrored, memory migrated, the local copy
    /// stopped (its files stay until the instance is removed here).
    async fn migrate_out(&self, id: &str, to: &Incoming) -> Result<LiveStats>;
    /// Live migration in, done: the disk export ends.
    async fn finish_incoming(&self, id: &str) -> Result<()>;
    /// A live migration given up: cancelled, and the guest running again
    /// where it was (a no-op where there is nothing to cancel).
    async fn cancel_migration(&self, id: &str) -> Result<()>;
}

/// Runs a command to completion; a failure records the command line, the
/// exit status and stderr.
pub async fn run(
    what: &'static str,
    program: &str,
    args: &[String],
) -> Result<std::process::Output> {
    let out = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|source| DriverError::Io {
            what: format!("{what}: starting {program}"),
            source,
        })?;
    if !out.status.success() {
        return Err(DriverError::Command {
            what,
            command: format!("{program} {}", args.join(" ")),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(out)
}

/// [`run`], feeding `input` on stdin (for `nft -f -`).
pub async fn run_with_input(
    what: &'static str,
    program: &str,
    args: &[String],
    input: &str,
) -> Result<std::process::Output> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|source| DriverError::Io {
            what: format!("{what}: starting {program}"),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .await
            .map_err(|source| DriverError::Io {
                what: format!("{what}: writing to {program}"),
                source,
            })?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|source| DriverError::Io {
            what: format!("{what}: waiting for {program}"),
            source,
        })?;
    if !out.status.success() {
        return Err(DriverError::Command {
            what,
            command: format!("{program} {}", args.join(" ")),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(out)
}
