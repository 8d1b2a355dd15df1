//! Rendering records as Nova renders them, for a given microversion.

use serde_json::{json, Value};

use crate::microversion::Version;
use crate::model::{Flavor, Keypair, Server};

fn links(base: &str, path: &str) -> Value {
    json!(super::server_body::links(base, path))
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

pub fn server_brief(s: &Server, base: &str) -> Value {
    json!({"id": s.id, "name": s.name, "links": links(base, &format!("servers/{}", s.id))})
}
