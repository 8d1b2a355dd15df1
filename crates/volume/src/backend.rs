//! Where volumes' data lives, behind one trait.
//!
//! - [`LocalBackend`] (the default): a sparse qcow2 file per volume and per
//!   snapshot under the state directory of the host that serves volumes,
//!   made and changed with `qemu-img`. QEMU opens the file directly on that
//!   host; other hosts will reach it through an NBD export.
//! - [`FakeBackend`]: records calls and keeps sizes in memory, for
//!   control-plane tests.
//!
//! Every operation is idempotent (a file is written under a temporary name
//! and renamed), so a restarted service can run an interrupted one again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Where a volume's data comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Blank,
    /// An image file of the image service, in `format` (qcow2, raw).
    Image {
        path: PathBuf,
        format: String,
    },
    Volume(String),
    Snapshot(String),
}

/// How a hypervisor on the volume's host opens a volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub path: String,
    pub format: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("{what}: `{command}` exited with {status}: {stderr}")]
    Command {
        what: &'static str,
        command: String,
        status: String,
        stderr: String,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// The backend's name (`volume_backend_name`), e.g. `local`.
    fn name(&self) -> &str;
    /// Makes volume `id` of `size_gb` GiB from `source` (a copy grown to
    /// the size). Making it again replaces a partial one.
    async fn create(&self, id: &str, size_gb: i64, source: &Source) -> Result<(), BackendError>;
    /// Removes a volume's data; absent data is fine.
    async fn delete(&self, id: &str) -> Result<(), BackendError>;
    async fn extend(&self, id: &str, size_gb: i64) -> Result<(), BackendError>;
    /// Copies volume `volume_id` as it is now into snapshot `snapshot_id`.
    async fn snapshot(&self, volume_id: &str, snapshot_id: &str) -> Result<(), BackendError>;
    async fn delete_snapshot(&self, snapshot_id: &str) -> Result<(), BackendError>;
    /// Writes volume `id` as a `format` image file at `to`.
    async fn export(&self, id: &str, format: &str, to: &Path) -> Result<(), BackendError>;
    fn connection(&self, id: &str) -> Connection;
}

const QEMU_IMG: &str = "qemu-img";

async fn run(what: &'static str, args: &[String]) -> Result<(), BackendError> {
    let out = tokio::process::Command::new(QEMU_IMG)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|source| BackendError::Io {
            what: format!("{what}: starting {QEMU_IMG}"),
            source,
        })?;
    if !out.status.success() {
        return Err(BackendError::Command {
            what,
            command: format!("{QEMU_IMG} {}", args.join(" ")),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(())
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackendError {
    let what = what.into();
    move |source| BackendError::Io { what, source }
}

fn ignore_missing(r: std::io::Result<()>) -> std::io::Result<()> {
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// qcow2 files under a directory.
pub struct LocalBackend {
    dir: PathBuf,
}

impl LocalBackend {
    pub fn new(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(LocalBackend {
            dir: dir.to_owned(),
        })
    }

    fn volume_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("volume-{id}.qcow2"))
    }

    fn snapshot_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("snapshot-{id}.qcow2"))
    }

    fn tmp_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!(".{name}.tmp"))
    }

    /// `qemu-img convert` of `src` into a fresh qcow2 at `dst` (through a
    /// temporary file). `-U` reads a file a running VM holds open.
    async fn copy(
        &self,
        what: &'static str,
        src: &Path,
        format: &str,
        dst: &Path,
        size_gb: Option<i64>,
    ) -> Result<(), BackendError> {
        let name = dst
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = self.tmp_path(&name);
        let _ = tokio::fs::remove_file(&tmp).await;
        run(
            what,
            &[
                "convert".into(),
                "-U".into(),
                "-f".into(),
                format.into(),
                "-O".into(),
                "qcow2".into(),
                src.display().to_string(),
                tmp.display().to_string(),
            ],
        )
        .await?;
        if let Some(size) = size_gb {
            grow(what, &tmp, size).await?;
        }
        tokio::fs::rename(&tmp, dst)
            .await
            .map_err(io(format!("{what}: renaming {}", tmp.display())))
    }
}

/// Grows a qcow2 file to `size_gb` GiB unless it is that large already.
async fn grow(what: &'static str, path: &Path, size_gb: i64) -> Result<(), BackendError> {
    let args = [
        "resize".to_string(),
        "-f".into(),
        "qcow2".into(),
        path.display().to_string(),
        format!("{size_gb}G"),
    ];
    match run(what, &args).await {
        Ok(()) => Ok(()),
        // Shrinking is refused: the copy is already at least that large.
        Err(BackendError::Command { stderr, .. }) if stderr.contains("shrink") => Ok(()),
        Err(e) => Err(e),
    }
}

#[async_trait::async_trait]
impl Backend for LocalBackend {
    fn name(&self) -> &str {
        "local"
    }

    async fn create(&self, id: &str, size_gb: i64, source: &Source) -> Result<(), BackendError> {
        let dst = self.volume_path(id);
        match source {
            Source::Blank => {
                let tmp = self.tmp_path(&format!("volume-{id}"));
                let _ = tokio::fs::remove_file(&tmp).await;
                run(
                    "creating a volume",
                    &[
                        "create".into(),
                        "-q".into(),
                        "-f".into(),
                        "qcow2".into(),
                        tmp.display().to_string(),
                        format!("{size_gb}G"),
                    ],
                )
                .await?;
                tokio::fs::rename(&tmp, &dst)
                    .await
                    .map_err(io(format!("renaming {}", tmp.display())))
            }
            Source::Image { path, format } => {
                self.copy(
                    "copying an image to a volume",
                    path,
                    format,
                    &dst,
                    Some(size_gb),
                )
                .await
            }
            Source::Volume(src) => {
                self.copy(
                    "cloning a volume",
                    &self.volume_path(src),
                    "qcow2",
                    &dst,
                    Some(size_gb),
                )
                .await
            }
            Source::Snapshot(src) => {
                self.copy(
                    "restoring a snapshot to a volume",
                    &self.snapshot_path(src),
                    "qcow2",
                    &dst,
                    Some(size_gb),
                )
                .await
            }
        }
    }

    async fn delete(&self, id: &str) -> Result<(), BackendError> {
        let p = self.volume_path(id);
        ignore_missing(tokio::fs::remove_file(&p).await)
            .map_err(io(format!("removing {}", p.display())))?;
        let _ = tokio::fs::remove_file(self.tmp_path(&format!("volume-{id}.qcow2"))).await;
        Ok(())
    }

    async fn extend(&self, id: &str, size_gb: i64) -> Result<(), BackendError> {
        grow("extending a volume", &self.volume_path(id), size_gb).await
    }

    async fn snapshot(&self, volume_id: &str, snapshot_id: &str) -> Result<(), BackendError> {
        self.copy(
            "snapshotting a volume",
            &self.volume_path(volume_id),
            "qcow2",
            &self.snapshot_path(snapshot_id),
            None,
        )
        .await
    }

    async fn delete_snapshot(&self, snapshot_id: &str) -> Result<(), BackendError> {
        let p = self.snapshot_path(snapshot_id);
        ignore_missing(tokio::fs::remove_file(&p).await)
            .map_err(io(format!("removing {}", p.display())))
    }

    async fn export(&self, id: &str, format: &str, to: &Path) -> Result<(), BackendError> {
        run(
            "uploading a volume to an image",
            &[
                "convert".into(),
                "-U".into(),
                "-f".into(),
                "qcow2".into(),
                "-O".into(),
                format.into(),
                self.volume_path(id).display().to_string(),
                to.display().to_string(),
            ],
        )
        .await
    }

    fn connection(&self, id: &str) -> Connection {
        Connection {
            path: self.volume_path(id).display().to_string(),
            format: "qcow2".into(),
        }
    }
}

/// One call the fake backend received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Create(String, i64, Source),
    Delete(String),
    Extend(String, i64),
    Snapshot(String, String),
    DeleteSnapshot(String),
    Export(String, String),
}

/// Keeps volumes in memory and records every call.
#[derive(Default)]
pub struct FakeBackend {
    pub calls: Mutex<Vec<Call>>,
    pub volumes: Mutex<BTreeMap<String, i64>>,
}

impl FakeBackend {
    fn record(&self, c: Call) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(c);
        }
    }
}

#[async_trait::async_trait]
impl Backend for FakeBackend {
    fn name(&self) -> &str {
        "fake"
    }

    async fn create(&self, id: &str, size_gb: i64, source: &Source) -> Result<(), BackendError> {
        self.record(Call::Create(id.into(), size_gb, source.clone()));
        if let Ok(mut v) = self.volumes.lock() {
            v.insert(id.into(), size_gb);
        }
        Ok(())
    }

    async fn delete(&self, id: &str) -> Result<(), BackendError> {
        self.record(Call::Delete(id.into()));
        if let Ok(mut v) = self.volumes.lock() {
            v.remove(id);
        }
        Ok(())
    }

    async fn extend(&self, id: &str, size_gb: i64) -> Result<(), BackendError> {
        self.record(Call::Extend(id.into(), size_gb));
        if let Ok(mut v) = self.volumes.lock() {
            v.insert(id.into(), size_gb);
        }
        Ok(())
    }

    async fn snapshot(&self, volume_id: &str, snapshot_id: &str) -> Result<(), BackendError> {
        self.record(Call::Snapshot(volume_id.into(), snapshot_id.into()));
        Ok(())
    }

    async fn delete_snapshot(&self, snapshot_id: &str) -> Result<(), BackendError> {
        self.record(Call::DeleteSnapshot(snapshot_id.into()));
        Ok(())
    }

    async fn export(&self, id: &str, format: &str, to: &Path) -> Result<(), BackendError> {
        self.record(Call::Export(id.into(), format.into()));
        tokio::fs::write(to, b"fake volume data")
            .await
            .map_err(io("writing a fake export"))
    }

    fn connection(&self, id: &str) -> Connection {
        Connection {
            path: format!("/fake/volume-{id}.qcow2"),
            format: "qcow2".into(),
        }
    }
}
