//! The config drive, in OpenStack's layout (what cloud-init's ConfigDrive
//! datasource and the tiny image read): an ISO 9660 volume labelled
//! `config-2` holding `openstack/<version>/meta_data.json`,
//! `network_data.json`, `user_data` and vendor data.

use std::path::Path;

use base64::Engine;
use serde_json::{json, Value};

use crate::driver::{DriverError, Result};
use crate::spec::InstanceSpec;

/// Versions written: `latest`, and the newest one cloud-init knows.
const VERSIONS: &[&str] = &["latest", "2018-08-27"];

/// `meta_data.json` of an instance (also what the metadata service serves).
pub fn meta_data(spec: &InstanceSpec) -> Value {
    let mut keys = serde_json::Map::new();
    let mut key_list = Vec::new();
    if let (Some(name), Some(key)) = (&spec.key_name, &spec.public_key) {
        keys.insert(name.clone(), json!(key));
        key_list.push(json!({"name": name, "type": "ssh", "data": key}));
    }
    json!({
        "uuid": spec.id,
        "name": spec.display_name,
        "hostname": spec.hostname,
        "launch_index": spec.launch_index,
        "availability_zone": spec.availability_zone,
        "project_id": spec.project_id,
        "public_keys": keys,
        "keys": key_list,
        "meta": spec.metadata,
        "devices": [],
        "files": [],
        "random_seed": base64::engine::general_purpose::STANDARD.encode(spec.id.as_bytes()),
    })
}

/// `network_data.json`: one link per NIC, configured by DHCP (what
/// cloud-init's OpenStack datasources understand).
pub fn network_data(spec: &InstanceSpec) -> Value {
    let links: Vec<Value> = spec
        .nics
        .iter()
        .map(|n| json!({"id": crate::netspec::names::tap(&n.port_id), "type": "phy", "ethernet_mac_address": n.mac, "mtu": n.mtu, "vif_id": n.port_id}))
        .collect();
    let networks: Vec<Value> = spec
        .nics
        .iter()
        .enumerate()
        .map(|(i, n)| json!({"id": format!("network{i}"), "type": "ipv4_dhcp", "link": crate::netspec::names::tap(&n.port_id), "network_id": n.network_id}))
        .collect();
    json!({"links": links, "networks": networks, "services": []})
}

/// The decoded user data, if any.
pub fn user_data(spec: &InstanceSpec) -> Option<Vec<u8>> {
    spec.user_data.as_ref().and_then(|u| {
        base64::engine::general_purpose::STANDARD
            .decode(u.trim())
            .ok()
    })
}

/// Writes the drive's tree under `dir` and packs it into `iso`.
pub async fn build(
    spec: &InstanceSpec,
    network_data: &Value,
    dir: &Path,
    iso: &Path,
) -> Result<()> {
    let io = |what: &str| {
        let what = what.to_owned();
        move |source| DriverError::Io { what, source }
    };
    let _ = tokio::fs::remove_dir_all(dir).await;
    let md = serde_json::to_vec(&meta_data(spec)).unwrap_or_default();
    let nd = serde_json::to_vec(network_data).unwrap_or_default();
    let ud = user_data(spec);
    for v in VERSIONS {
        let d = dir.join("openstack").join(v);
        tokio::fs::create_dir_all(&d)
            .await
            .map_err(io("config drive dir"))?;
        tokio::fs::write(d.join("meta_data.json"), &md)
            .await
            .map_err(io("meta_data.json"))?;
        tokio::fs::write(d.join("network_data.json"), &nd)
            .await
            .map_err(io("network_data.json"))?;
        tokio::fs::write(d.join("vendor_data.json"), b"{}")
            .await
            .map_err(io("vendor_data.json"))?;
        tokio::fs::write(d.join("vendor_data2.json"), b"{}")
            .await
            .map_err(io("vendor_data2.json"))?;
        if let Some(u) = &ud {
            tokio::fs::write(d.join("user_data"), u)
                .await
                .map_err(io("user_data"))?;
        }
    }
    let out = tokio::process::Command::new("genisoimage")
        .args(["-o"])
        .arg(iso)
        .args([
            "-ldots",
            "-allow-lowercase",
            "-allow-multidot",
            "-l",
            "-publisher",
            "ferrostack",
            "-quiet",
            "-J",
            "-r",
            "-V",
            "config-2",
        ])
        .arg(dir)
        .output()
        .await
        .map_err(io("running genisoimage"))?;
    if !out.status.success() {
        return Err(DriverError::Command {
            what: "config drive",
            command: "genisoimage".into(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    let _ = tokio::fs::remove_dir_all(dir).await;
    Ok(())
}
