//! Rendering records as Nova renders them, for a given microversion.

use serde_json::{json, Value};
use sha2::{Digest, Sha224};

use crate::microversion::Version;
use crate::model::{Flavor, Keypair, Server};

fn links(base: &str, path: &str) -> Value {
    let bookmark = base.trim_end_matches("/v2.1");
    json!([{"rel": "self", "href": format!("{base}/{path}")}, {"rel": "bookmark", "href": format!("{bookmark}/{path}")}])
}

/// Nova's launched_at format.
fn usg(micros: i64) -> String {
    ferro_common::time::iso_micros(micros)
        .trim_end_matches('Z')
        .to_owned()
}

pub fn flavor(f: &Flavor, v: Version, base: &str, detail: bool) -> Value {
    let mut o =
        json!({"id": f.id, "name": f.name, "links": links(base, &format!("flavors/{}", f.id))});
    if v.at_least(55) {
        o["description"] = json!(f.description);
    }
    if !detail {
        return o;
    }
    o["ram"] = json!(f.ram);
    o["vcpus"] = json!(f.vcpus);
    o["disk"] = json!(f.disk);
    o["swap"] = if v.at_least(75) || f.swap != 0 {
        json!(f.swap)
    } else {
        json!("")
    };
    o["OS-FLV-EXT-DATA:ephemeral"] = json!(f.ephemeral);
    o["OS-FLV-DISABLED:disabled"] = json!(f.disabled != 0);
    o["os-flavor-access:is_public"] = json!(f.is_public != 0);
    o["rxtx_factor"] = json!(1.0);
    if v.at_least(61) {
        o["extra_specs"] = Value::Object(f.specs());
    }
    o
}

pub fn keypair(k: &Keypair, v: Version, with_details: bool) -> Value {
    let mut o = json!({"name": k.name, "public_key": k.public_key, "fingerprint": k.fingerprint});
    if v.at_least(2) {
        o["type"] = json!(k.kind);
    }
    if with_details {
        o["user_id"] = json!(k.user_id);
        o["created_at"] = json!(ferro_common::time::iso_micros(k.created_at).trim_end_matches('Z'));
        o["deleted"] = json!(false);
        o["deleted_at"] = Value::Null;
        o["updated_at"] = Value::Null;
        o["id"] = json!(0);
    }
    o
}

/// Everything `server show` and `server list --long` print.
pub struct ServerView<'a> {
    pub server: &'a Server,
    pub version: Version,
    pub admin: bool,
    pub base: &'a str,
    /// `UP`/`DOWN` of the server's host, for admins from 2.16.
    pub host_status: Option<&'a str>,
    /// The server's ports as the network service sees them.
    pub net: Option<&'a ferro_network::service::DeviceNet>,
}

/// `{"net1": [{"version": 4, "addr": …, "OS-EXT-IPS:type": "fixed", …}]}`.
fn addresses(net: Option<&ferro_network::service::DeviceNet>) -> Value {
    let mut out = serde_json::Map::new();
    for a in net.map(|n| n.addresses.as_slice()).unwrap_or(&[]) {
        let entry = json!({"version": 4, "addr": a.addr, "OS-EXT-IPS:type": a.kind, "OS-EXT-IPS-MAC:mac_addr": a.mac});
        match out.get_mut(&a.network_name) {
            Some(Value::Array(list)) => list.push(entry),
            _ => {
                out.insert(a.network_name.clone(), json!([entry]));
            }
        }
    }
    Value::Object(out)
}

pub fn server_brief(s: &Server, base: &str) -> Value {
    json!({"id": s.id, "name": s.name, "links": links(base, &format!("servers/{}", s.id))})
}

pub fn server(view: &ServerView) -> Value {
    let s = view.server;
    let v = view.version;
    let ts = ferro_common::time::iso_seconds;
    let flavor = s.flavor();
    let flavor_json = match (&flavor, v.at_least(47)) {
        (Some(f), true) => {
            json!({"vcpus": f.vcpus, "ram": f.ram, "disk": f.disk, "ephemeral": f.ephemeral,
                                 "swap": f.swap, "original_name": f.original_name, "extra_specs": f.extra_specs})
        }
        (Some(f), false) => {
            json!({"id": f.id, "links": [{"rel": "bookmark", "href": format!("{}/flavors/{}", view.base.trim_end_matches("/v2.1"), f.id)}]})
        }
        (None, _) => json!({}),
    };
    let host_id = match &s.host {
        Some(h) => hex::encode(Sha224::digest(format!("{}{}", s.project_id, h).as_bytes())),
        None => String::new(),
    };
    let mut o = json!({
        "id": s.id,
        "name": s.name,
        "status": s.status(),
        "tenant_id": s.project_id,
        "user_id": s.user_id,
        "metadata": s.meta(),
        "hostId": host_id,
        "image": {"id": s.image_id, "links": [{"rel": "bookmark", "href": format!("{}/images/{}", view.base.trim_end_matches("/v2.1"), s.image_id)}]},
        "flavor": flavor_json,
        "created": ts(s.created_at),
        "updated": ts(s.updated_at),
        "addresses": addresses(view.net),
        "accessIPv4": "",
        "accessIPv6": "",
        "links": links(view.base, &format!("servers/{}", s.id)),
        "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-AZ:availability_zone": s.availability_zone.clone().unwrap_or_else(|| "nova".into()),
        "config_drive": if s.config_drive != 0 { "True" } else { "" },
        "key_name": s.key_name,
        "OS-SRV-USG:launched_at": s.launched_at.map(usg),
        "OS-SRV-USG:terminated_at": s.terminated_at.map(usg),
        "OS-EXT-STS:task_state": s.task_state,
        "OS-EXT-STS:vm_state": s.vm_state,
        "OS-EXT-STS:power_state": s.power_state,
        "os-extended-volumes:volumes_attached": [],
    });
    if matches!(s.status(), "BUILD" | "ACTIVE") {
        o["progress"] = json!(if s.status() == "ACTIVE" { 100 } else { 0 });
    }
    // A server with ports shows its ports' groups; one without, the names it was created with.
    let sgs: Vec<String> = match view.net {
        Some(n) => n.security_groups.clone(),
        None => serde_json::from_str(&s.security_groups).unwrap_or_default(),
    };
    if !sgs.is_empty() {
        o["security_groups"] = json!(sgs.iter().map(|n| json!({"name": n})).collect::<Vec<_>>());
    }
    if let Some(f) = s
        .fault
        .as_deref()
        .and_then(|f| serde_json::from_str::<Value>(f).ok())
    {
        if matches!(s.status(), "ERROR" | "DELETED") || s.fault.is_some() {
            let mut fault = f;
            if !view.admin {
                if let Value::Object(m) = &mut fault {
                    m.remove("details");
                }
            }
            o["fault"] = fault;
        }
    }
    if view.admin {
        o["OS-EXT-SRV-ATTR:host"] = json!(s.host);
        o["OS-EXT-SRV-ATTR:hypervisor_hostname"] = json!(s.host);
        o["OS-EXT-SRV-ATTR:instance_name"] = json!(s.instance_name());
        if v.at_least(3) {
            o["OS-EXT-SRV-ATTR:reservation_id"] = json!(s.reservation_id);
            o["OS-EXT-SRV-ATTR:launch_index"] = json!(s.launch_index);
            o["OS-EXT-SRV-ATTR:hostname"] = json!(s.hostname);
            o["OS-EXT-SRV-ATTR:kernel_id"] = json!("");
            o["OS-EXT-SRV-ATTR:ramdisk_id"] = json!("");
            o["OS-EXT-SRV-ATTR:root_device_name"] = json!("/dev/vda");
            o["OS-EXT-SRV-ATTR:user_data"] = json!(s.user_data);
        }
        if v.at_least(16) {
            o["host_status"] = json!(view.host_status.unwrap_or(""));
        }
    }
    if v.at_least(9) {
        o["locked"] = json!(s.locked != 0);
    }
    if v.at_least(19) {
        o["description"] = json!(s.description);
    }
    if v.at_least(26) {
        o["tags"] = json!(s.tag_list());
    }
    if v.at_least(63) {
        o["trusted_image_certificates"] = Value::Null;
    }
    if v.at_least(71) {
        o["server_groups"] = json!([]);
    }
    if v.at_least(73) {
        o["locked_reason"] = json!(s.locked_reason);
    }
    o
}
