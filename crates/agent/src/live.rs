//! Live migration with QEMU, the way libvirt does it for local disks: the
//! destination starts the guest waiting for its memory (`-incoming defer`)
//! with a new disk on the same image, exported over NBD; the source
//! mirrors its disk there (`drive-mirror`, only the image's top layer),
//! and once the mirror is in step, migrates the memory; the mirror is then
//! cancelled (its target is complete) and the source's copy stops. The
//! destination guest runs on its own when the memory has arrived.
//!
//! The streams go over the hosts' underlay between the two hosts' own
//! addresses (not yet over TLS: docs/compute.md).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::driver::{DriverError, Result};
use crate::qmp;
use crate::spec::{Incoming, LiveStats};

/// The root disk's drive id on QEMU's command line.
pub const ROOT_DRIVE: &str = "root";
/// How long a mirror or a migration may take before it is given up.
const LIMIT: Duration = Duration::from_secs(1800);
const POLL: Duration = Duration::from_millis(100);

fn failed(m: impl Into<String>) -> DriverError {
    DriverError::Failed(m.into())
}

/// A free TCP port on `ip` (bound, then let go for QEMU to take).
fn free_port(ip: &str) -> Result<u16> {
    let l = std::net::TcpListener::bind((ip, 0))
        .map_err(|e| failed(format!("no free port on {ip}: {e}")))?;
    Ok(l.local_addr().map_err(|e| failed(e.to_string()))?.port())
}

/// Destination: export the new disk and listen for the memory.
pub async fn listen(sock: &Path, ip: &str) -> Result<Incoming> {
    let nbd_port = free_port(ip)?;
    qmp::execute(
        sock,
        "nbd-server-start",
        Some(json!({"addr": {"type": "inet", "data": {"host": ip, "port": nbd_port.to_string()}}})),
    )
    .await?;
    qmp::execute(
        sock,
        "nbd-server-add",
        Some(json!({"device": ROOT_DRIVE, "writable": true})),
    )
    .await?;
    let migration_port = free_port(ip)?;
    qmp::execute(
        sock,
        "migrate-incoming",
        Some(json!({"uri": format!("tcp:{ip}:{migration_port}")})),
    )
    .await?;
    tracing::info!(ip, nbd_port, migration_port, "waiting for a live migration");
    Ok(Incoming {
        ip: ip.to_owned(),
        nbd_port,
        migration_port,
    })
}

/// The drive the guest boots from: `root`, or (for a guest started before
/// drives were named) the virtio drive whose file is its disk.
async fn root_drive(sock: &Path) -> Result<String> {
    let blocks = qmp::execute(sock, "query-block", None).await?;
    let all = blocks.as_array().cloned().unwrap_or_default();
    if all.iter().any(|b| b["device"] == ROOT_DRIVE) {
        return Ok(ROOT_DRIVE.into());
    }
    all.iter()
        .find(|b| {
            b["inserted"]["file"]
                .as_str()
                .is_some_and(|f| f.ends_with("disk.qcow2"))
        })
        .and_then(|b| b["device"].as_str().map(str::to_owned))
        .ok_or_else(|| failed("the guest has no root disk of its own to mirror"))
}

/// Source: mirror the disk, migrate the memory, cancel the mirror.
pub async fn migrate_out(sock: &Path, to: &Incoming) -> Result<LiveStats> {
    let start = Instant::now();
    let drive = root_drive(sock).await?;
    qmp::execute(
        sock,
        "drive-mirror",
        Some(json!({
            "device": drive,
            "job-id": "live-mirror",
            "target": format!("nbd://{}:{}/{ROOT_DRIVE}", to.ip, to.nbd_port),
            "format": "raw",
            "mode": "existing",
            "sync": "top",
        })),
    )
    .await?;
    // In step: every write now goes to both disks.
    loop {
        let jobs = qmp::execute(sock, "query-block-jobs", None).await?;
        let job = jobs
            .as_array()
            .and_then(|a| a.iter().find(|j| j["device"] == "live-mirror").cloned());
        match job {
            Some(j) if j["ready"] == true => break,
            Some(_) => {}
            None => return Err(failed("the disk mirror ended before it was in step")),
        }
        if start.elapsed() > LIMIT {
            let _ = cancel(sock).await;
            return Err(failed("the disk mirror did not get in step in time"));
        }
        tokio::time::sleep(POLL).await;
    }
    let mirrored = start.elapsed();
    qmp::execute(
        sock,
        "migrate",
        Some(json!({"uri": format!("tcp:{}:{}", to.ip, to.migration_port)})),
    )
    .await?;
    let info = loop {
        let info = qmp::execute(sock, "query-migrate", None).await?;
        match info["status"].as_str() {
            Some("completed") => break info,
            Some("failed" | "cancelled") => {
                let why = info["error-desc"]
                    .as_str()
                    .unwrap_or("no reason given")
                    .to_owned();
                let _ = cancel(sock).await;
                return Err(failed(format!("the migration failed: {why}")));
            }
            _ => {}
        }
        if start.elapsed() > LIMIT {
            let _ = cancel(sock).await;
            return Err(failed("the migration did not complete in time"));
        }
        tokio::time::sleep(POLL).await;
    };
    // The guest is stopped here: the mirror's target is complete.
    let _ = qmp::execute(
        sock,
        "block-job-cancel",
        Some(json!({"device": "live-mirror"})),
    )
    .await;
    let stats = LiveStats {
        total_ms: start.elapsed().as_millis() as i64,
        downtime_ms: info["downtime"].as_i64().unwrap_or(0),
        ram_bytes: info["ram"]["transferred"].as_i64().unwrap_or(0),
    };
    tracing::info!(
        mirror_ms = mirrored.as_millis() as u64,
        total_ms = stats.total_ms,
        downtime_ms = stats.downtime_ms,
        ram_bytes = stats.ram_bytes,
        "live migration completed"
    );
    Ok(stats)
}

/// Destination, once the memory arrived: the export ends.
pub async fn finish_incoming(sock: &Path) -> Result<()> {
    if let Err(e) = qmp::execute(sock, "nbd-server-stop", None).await {
        tracing::debug!(error = %e, "no NBD server to stop");
    }
    // The guest runs by itself when the migration completes; if it was
    // left stopped (a restarted agent), it runs now.
    let st = qmp::execute(sock, "query-status", None).await?;
    if st["status"] == "paused" || st["status"] == "postmigrate" {
        qmp::execute(sock, "cont", None).await?;
    }
    Ok(())
}

/// Gives a migration up on the source: memory migration and disk mirror
/// cancelled, the guest running again.
pub async fn cancel(sock: &Path) -> Result<()> {
    let _ = qmp::execute(sock, "migrate_cancel", None).await;
    let _ = qmp::execute(
        sock,
        "block-job-cancel",
        Some(json!({"device": "live-mirror", "force": true})),
    )
    .await;
    let st: Value = qmp::execute(sock, "query-status", None).await?;
    if st["running"] != true {
        qmp::execute(sock, "cont", None).await?;
    }
    Ok(())
}
