//! Volumes plugged into a running QEMU over QMP, and on its command line
//! when it starts.
//!
//! Each volume is a block node (`blockdev-add`) under a virtio-blk device
//! whose id is `vol-<volume id>` and whose serial is the volume id (the
//! guest sees `/dev/disk/by-id/virtio-<first 20 characters>`). The devices
//! under `/machine/peripheral` whose id starts with `vol-` are what is
//! plugged in: QEMU itself is the record, so an agent restart loses nothing.
//! Unplugging asks the guest (ACPI) and waits for the device to go.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::driver::{DriverError, Result};
use crate::qmp;
use crate::spec::VolumeSpec;

const PREFIX: &str = "vol-";
/// How long a guest may take to let a disk go.
const UNPLUG_WAIT: Duration = Duration::from_secs(10);

/// The block node name of a volume (QEMU allows at most 31 characters).
pub fn node_name(volume_id: &str) -> String {
    let hex: String = volume_id.chars().filter(|c| *c != '-').take(28).collect();
    format!("vol{hex}")
}

pub fn device_id(volume_id: &str) -> String {
    format!("{PREFIX}{volume_id}")
}

fn serial(volume_id: &str) -> String {
    volume_id.chars().take(20).collect()
}

fn blockdev(v: &VolumeSpec) -> Value {
    json!({
        "driver": v.format,
        "node-name": node_name(&v.volume_id),
        "file": {"driver": "file", "filename": v.path},
    })
}

/// The command-line arguments that start a VM with its volumes.
pub fn launch_args(volumes: &[VolumeSpec]) -> Vec<String> {
    let mut args = Vec::new();
    // The boot volume first: the guest names it vda.
    let root = volumes.iter().filter(|v| v.is_root());
    for v in root.chain(volumes.iter().filter(|v| !v.is_root())) {
        args.push("-blockdev".into());
        args.push(blockdev(v).to_string());
        args.push("-device".into());
        // The boot volume is the disk the firmware boots from.
        let boot = if v.is_root() { ",bootindex=0" } else { "" };
        args.push(format!(
            "virtio-blk-pci,drive={},id={},serial={}{boot}",
            node_name(&v.volume_id),
            device_id(&v.volume_id),
            serial(&v.volume_id)
        ));
    }
    args
}

/// The volumes plugged into the VM behind `sock`.
pub async fn plugged(sock: &Path) -> Result<Vec<String>> {
    let list = qmp::execute(
        sock,
        "qom-list",
        Some(json!({"path": "/machine/peripheral"})),
    )
    .await?;
    Ok(list
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["name"].as_str())
                .filter_map(|n| n.strip_prefix(PREFIX))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default())
}

pub async fn plug(sock: &Path, v: &VolumeSpec) -> Result<()> {
    // A node left by an unplug cut short would make blockdev-add refuse.
    let _ = qmp::execute(
        sock,
        "blockdev-del",
        Some(json!({"node-name": node_name(&v.volume_id)})),
    )
    .await;
    qmp::execute(sock, "blockdev-add", Some(blockdev(v))).await?;
    let dev = json!({
        "driver": "virtio-blk-pci",
        "drive": node_name(&v.volume_id),
        "id": device_id(&v.volume_id),
        "serial": serial(&v.volume_id),
    });
    if let Err(e) = qmp::execute(sock, "device_add", Some(dev)).await {
        let _ = qmp::execute(
            sock,
            "blockdev-del",
            Some(json!({"node-name": node_name(&v.volume_id)})),
        )
        .await;
        return Err(e);
    }
    tracing::info!(volume_id = %v.volume_id, path = %v.path, "volume plugged in");
    Ok(())
}

/// Grows a plugged volume to its size in the spec (QMP `block_resize`:
/// QEMU grows the file and tells the guest); never shrinks one.
pub async fn grow(sock: &Path, v: &VolumeSpec) -> Result<()> {
    if v.size_gb <= 0 {
        return Ok(());
    }
    let want = v.size_gb << 30;
    let node = node_name(&v.volume_id);
    let nodes = qmp::execute(sock, "query-named-block-nodes", Some(json!({"flat": true}))).await?;
    let have = nodes
        .as_array()
        .and_then(|all| all.iter().find(|n| n["node-name"] == node.as_str()))
        .and_then(|n| n["image"]["virtual-size"].as_i64());
    match have {
        Some(size) if size < want => {
            qmp::execute(
                sock,
                "block_resize",
                Some(json!({"node-name": node, "size": want})),
            )
            .await?;
            tracing::info!(volume_id = %v.volume_id, size_gb = v.size_gb, "plugged volume grown");
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Asks the guest to let the volume go and waits for it; true once gone
/// (false: the guest hasn't yet, the next pass looks again).
pub async fn unplug(sock: &Path, volume_id: &str) -> Result<bool> {
    // Refused when an unplug is already under way: then just wait.
    let _ = qmp::execute(
        sock,
        "device_del",
        Some(json!({"id": device_id(volume_id)})),
    )
    .await;
    let start = Instant::now();
    loop {
        if !plugged(sock).await?.iter().any(|p| p == volume_id) {
            break;
        }
        if start.elapsed() > UNPLUG_WAIT {
            tracing::info!(volume_id, "the guest has not let the volume go yet");
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The device leaves /machine/peripheral a moment before it lets its
    // block node go: until then blockdev-del answers "in use", and a node
    // left behind keeps the file locked against any other VM.
    loop {
        match qmp::execute(
            sock,
            "blockdev-del",
            Some(json!({"node-name": node_name(volume_id)})),
        )
        .await
        {
            Ok(_) => break,
            Err(DriverError::Failed(m)) if m.contains("not found") || m.contains("Cannot find") => {
                break
            }
            Err(DriverError::Failed(m)) if m.contains("in use") || m.contains("busy") => {
                if start.elapsed() > UNPLUG_WAIT {
                    tracing::info!(volume_id, "QEMU still holds the volume's block node");
                    return Ok(false);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e),
        }
    }
    tracing::info!(volume_id, "volume unplugged");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_qemu_limits() {
        let id = "0f16981d-5423-4dce-8f70-e0deb0933094";
        assert_eq!(node_name(id), "vol0f16981d54234dce8f70e0deb093");
        assert!(node_name(id).len() <= 31);
        assert_eq!(serial(id), "0f16981d-5423-4dce-8");
        let v = VolumeSpec {
            volume_id: id.into(),
            device: "/dev/vdb".into(),
            path: "/s/volume.qcow2".into(),
            format: "qcow2".into(),
            size_gb: 1,
        };
        let args = launch_args(std::slice::from_ref(&v));
        assert_eq!(args[0], "-blockdev");
        assert!(args[1].contains("\"filename\":\"/s/volume.qcow2\""));
        assert_eq!(
            args[3],
            format!("virtio-blk-pci,drive=vol0f16981d54234dce8f70e0deb093,id=vol-{id},serial=0f16981d-5423-4dce-8")
        );
        // A boot volume comes first, and the firmware boots from it.
        let root = VolumeSpec {
            volume_id: "11111111-2222-3333-4444-555555555555".into(),
            device: "/dev/vda".into(),
            ..v.clone()
        };
        let args = launch_args(&[v, root]);
        assert!(args[3].ends_with(",bootindex=0"), "{}", args[3]);
        assert!(args[3].contains("id=vol-11111111-"), "{}", args[3]);
        assert!(!args[7].contains("bootindex"), "{}", args[7]);
    }
}
