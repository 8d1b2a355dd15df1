//! The block storage API end to end over HTTP with the fake hypervisor and
//! the fake volume backend: Cinder's volume lifecycle (create, show, list,
//! update, extend, snapshots, volumes from snapshots and volumes, delete),
//! attach and detach through Nova's `os-volume_attachments` (the sagas and
//! the host's report), bad input answered with Cinder's and Nova's 4xx
//! that changes nothing, and isolation between projects. (Real disks and
//! hot-plug into a real guest are tested by tests/cli/volume.sh.)

use std::time::{Duration, Instant};

use ferro_test_support::{backends, snapshot, tiny_qcow2, Backend, RawBody, Reply, TestCloud};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const V: &str = "2.79";

async fn volume(
    tc: &TestCloud,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Reply {
    let url = format!("{}/{}", tc.cloud.volume_url, path.trim_start_matches('/'));
    tc.send(method, &url, Some(token), body.map(RawBody::Json))
        .await
}

/// A volume action at microversion `version`; returns the status.
async fn action_at(
    tc: &TestCloud,
    token: &str,
    id: &str,
    version: &str,
    body: Value,
) -> StatusCode {
    tc.http
        .post(format!("{}/volumes/{id}/action", tc.cloud.volume_url))
        .header("X-Auth-Token", token)
        .header("OpenStack-API-Version", format!("volume {version}"))
        .json(&body)
        .send()
        .await
        .expect("request")
        .status()
}

async fn wait_volume(tc: &TestCloud, token: &str, id: &str, want: &str) -> Value {
    let start = Instant::now();
    loop {
        let r = volume(tc, Method::GET, &format!("volumes/{id}"), token, None).await;
        if r.json["volume"]["status"] == want {
            return r.json["volume"].clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "volume {id} never became {want}: {}",
            r.json
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_server(tc: &TestCloud, token: &str, id: &str, want: &str) {
    let start = Instant::now();
    loop {
        let r = tc
            .compute(Method::GET, &format!("servers/{id}"), token, None, V)
            .await;
        if r.json["server"]["status"] == want {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "server {id} never became {want}: {}",
            r.json
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_server_gone(tc: &TestCloud, token: &str, id: &str) {
    let start = Instant::now();
    loop {
        let r = tc
            .compute(Method::GET, &format!("servers/{id}"), token, None, V)
            .await;
        if r.status == StatusCode::NOT_FOUND {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "server {id} never went: {}",
            r.json
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn create(tc: &TestCloud, token: &str, body: Value) -> String {
    let r = volume(
        tc,
        Method::POST,
        "volumes",
        token,
        Some(json!({ "volume": body })),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let id = r.json["volume"]["id"].as_str().unwrap().to_owned();
    wait_volume(tc, token, &id, "available").await;
    id
}

/// A server on the fake host; returns its id.
async fn server(tc: &TestCloud, admin: &str, name: &str) -> String {
    let image = tc.upload_image(admin, name, "qcow2", tiny_qcow2()).await;
    let f = tc
        .compute(
            Method::POST,
            "flavors",
            admin,
            Some(
                json!({"flavor": {"name": format!("f-{name}"), "ram": 512, "vcpus": 1, "disk": 1}}),
            ),
            V,
        )
        .await;
    assert_eq!(f.status, StatusCode::OK, "{}", f.json);
    let flavor = f.json["flavor"]["id"].as_str().unwrap().to_owned();
    let r = tc
        .compute(
            Method::POST,
            "servers",
            admin,
            Some(json!({"server": {"name": name, "imageRef": image, "flavorRef": flavor, "networks": "none"}})),
            V,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let id = r.json["server"]["id"].as_str().unwrap().to_owned();
    wait_server(tc, admin, &id, "ACTIVE").await;
    id
}

/// Waits for an image to be active; returns it.
async fn wait_image(tc: &TestCloud, token: &str, id: &str) -> Value {
    let start = Instant::now();
    loop {
        let url = format!("{}/v2/images/{id}", tc.cloud.image_url);
        let r = tc.send(Method::GET, &url, Some(token), None).await;
        if r.json["status"] == "active" {
            return r.json;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "image {id} never became active: {}",
            r.json
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn fault_message(r: &Reply, fault: &str) -> String {
    r.json[fault]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn volume_lifecycle_on_every_backend() {
    for backend in backends() {
        lifecycle(backend).await;
    }
}

async fn lifecycle(backend: Backend) {
    let tc = TestCloud::start(backend).await;
    let admin = tc.admin_token().await;

    // Version discovery and the catalog's two names for the service.
    let versions = tc
        .send(
            Method::GET,
            tc.cloud.volume_url.trim_end_matches("/v3"),
            None,
            None,
        )
        .await;
    assert!(
        versions.status == StatusCode::MULTIPLE_CHOICES || versions.status == StatusCode::OK,
        "{}",
        versions.status
    );
    let v3 = versions.json["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == "v3.0")
        .cloned()
        .expect("v3.0 listed");
    assert_eq!(v3["min_version"], "3.0");
    assert!(v3["version"].as_str().unwrap() >= "3.60", "{v3}");

    let id = create(
        &tc,
        &admin,
        json!({"size": 1, "name": "v1", "description": "first"}),
    )
    .await;
    let shown = volume(&tc, Method::GET, &format!("volumes/{id}"), &admin, None).await;
    let v = &shown.json["volume"];
    assert_eq!(v["size"], 1);
    assert_eq!(v["name"], "v1");
    assert_eq!(v["bootable"], "false");
    assert_eq!(v["attachments"], json!([]));
    assert_eq!(v["volume_type"], "__DEFAULT__");
    assert_eq!(v["availability_zone"], "nova");

    let list = volume(&tc, Method::GET, "volumes", &admin, None).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.json["volumes"][0]["id"], json!(id));
    assert!(
        list.json["volumes"][0].get("size").is_none(),
        "the short list has no size"
    );
    let detail = volume(&tc, Method::GET, "volumes/detail?name=v1", &admin, None).await;
    assert_eq!(detail.json["volumes"].as_array().unwrap().len(), 1);
    let none = volume(&tc, Method::GET, "volumes/detail?name=nope", &admin, None).await;
    assert_eq!(none.json["volumes"], json!([]));

    let upd = volume(
        &tc,
        Method::PUT,
        &format!("volumes/{id}"),
        &admin,
        Some(json!({"volume": {"name": "v1b"}})),
    )
    .await;
    assert_eq!(upd.status, StatusCode::OK, "{}", upd.json);
    assert_eq!(upd.json["volume"]["name"], "v1b");

    let ext = volume(
        &tc,
        Method::POST,
        &format!("volumes/{id}/action"),
        &admin,
        Some(json!({"os-extend": {"new_size": 2}})),
    )
    .await;
    assert_eq!(ext.status, StatusCode::ACCEPTED, "{}", ext.json);
    let v = wait_volume(&tc, &admin, &id, "available").await;
    assert_eq!(v["size"], 2);

    // A snapshot, and volumes made from it and from the volume.
    let snap = volume(
        &tc,
        Method::POST,
        "snapshots",
        &admin,
        Some(json!({"snapshot": {"volume_id": id, "name": "s1"}})),
    )
    .await;
    assert_eq!(snap.status, StatusCode::ACCEPTED, "{}", snap.json);
    let snap_id = snap.json["snapshot"]["id"].as_str().unwrap().to_owned();
    let start = Instant::now();
    loop {
        let s = volume(
            &tc,
            Method::GET,
            &format!("snapshots/{snap_id}"),
            &admin,
            None,
        )
        .await;
        if s.json["snapshot"]["status"] == "available" {
            assert_eq!(s.json["snapshot"]["size"], 2);
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{}", s.json);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let from_snap = create(
        &tc,
        &admin,
        json!({"snapshot_id": snap_id, "name": "from-snap"}),
    )
    .await;
    let v = volume(
        &tc,
        Method::GET,
        &format!("volumes/{from_snap}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(v.json["volume"]["size"], 2);
    assert_eq!(v.json["volume"]["snapshot_id"], json!(snap_id));
    let clone = create(&tc, &admin, json!({"source_volid": id, "size": 3})).await;
    let v = volume(&tc, Method::GET, &format!("volumes/{clone}"), &admin, None).await;
    assert_eq!(v.json["volume"]["source_volid"], json!(id));
    assert_eq!(v.json["volume"]["size"], 3);

    // A volume with snapshots can't go; its snapshot can, then it can.
    let refused = volume(&tc, Method::DELETE, &format!("volumes/{id}"), &admin, None).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.json);
    let del = volume(
        &tc,
        Method::DELETE,
        &format!("snapshots/{snap_id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(del.status, StatusCode::ACCEPTED, "{}", del.json);
    for v in [&id, &from_snap, &clone] {
        let start = Instant::now();
        loop {
            let d = volume(&tc, Method::DELETE, &format!("volumes/{v}"), &admin, None).await;
            if d.status == StatusCode::ACCEPTED {
                break;
            }
            // The snapshot may still be going.
            assert_eq!(d.status, StatusCode::BAD_REQUEST, "{}", d.json);
            assert!(start.elapsed() < Duration::from_secs(30), "{}", d.json);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let start = Instant::now();
    loop {
        let l = volume(&tc, Method::GET, "volumes", &admin, None).await;
        if l.json["volumes"] == json!([]) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{}", l.json);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tc.stop().await;
}

#[tokio::test]
async fn attach_and_detach_through_nova_on_every_backend() {
    for backend in backends() {
        attach_detach(backend).await;
    }
}

async fn attach_detach(backend: Backend) {
    let tc = TestCloud::start(backend).await;
    let admin = tc.admin_token().await;
    let srv = server(&tc, &admin, "vm1").await;
    let vol = create(&tc, &admin, json!({"size": 1, "name": "data"})).await;

    let path = format!("servers/{srv}/os-volume_attachments");
    let a = tc
        .compute(
            Method::POST,
            &path,
            &admin,
            Some(json!({"volumeAttachment": {"volumeId": vol}})),
            V,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    assert_eq!(a.json["volumeAttachment"]["device"], "/dev/vdb");
    assert_eq!(a.json["volumeAttachment"]["serverId"], json!(srv));
    assert_eq!(a.json["volumeAttachment"]["volumeId"], json!(vol));
    let v = wait_volume(&tc, &admin, &vol, "in-use").await;
    assert_eq!(v["attachments"][0]["server_id"], json!(srv));
    assert_eq!(v["attachments"][0]["device"], "/dev/vdb");
    let listed = tc.compute(Method::GET, &path, &admin, None, V).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(
        listed.json["volumeAttachments"].as_array().unwrap().len(),
        1
    );
    let one = tc
        .compute(Method::GET, &format!("{path}/{vol}"), &admin, None, V)
        .await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.json);
    assert_eq!(one.json["volumeAttachment"]["device"], "/dev/vdb");
    let shown = tc
        .compute(Method::GET, &format!("servers/{srv}"), &admin, None, V)
        .await;
    assert_eq!(
        shown.json["server"]["os-extended-volumes:volumes_attached"][0]["id"],
        json!(vol)
    );

    // What may not happen to an attached volume, and to a detached one.
    let twice = tc
        .compute(
            Method::POST,
            &path,
            &admin,
            Some(json!({"volumeAttachment": {"volumeId": vol}})),
            V,
        )
        .await;
    assert_eq!(twice.status, StatusCode::BAD_REQUEST, "{}", twice.json);
    let before = snapshot(&tc.cloud).await;
    let del = volume(&tc, Method::DELETE, &format!("volumes/{vol}"), &admin, None).await;
    assert_eq!(del.status, StatusCode::BAD_REQUEST, "{}", del.json);
    assert!(
        fault_message(&del, "badRequest").contains("Invalid volume"),
        "{}",
        del.json
    );
    let shrink = volume(
        &tc,
        Method::POST,
        &format!("volumes/{vol}/action"),
        &admin,
        Some(json!({"os-extend": {"new_size": 1}})),
    )
    .await;
    assert_eq!(shrink.status, StatusCode::BAD_REQUEST, "{}", shrink.json);
    let early = action_at(
        &tc,
        &admin,
        &vol,
        "3.41",
        json!({"os-extend": {"new_size": 2}}),
    )
    .await;
    assert_eq!(
        early,
        StatusCode::BAD_REQUEST,
        "an in-use volume is extended from 3.42 only"
    );
    assert_eq!(
        before,
        snapshot(&tc.cloud).await,
        "refusals changed nothing"
    );
    let grown = action_at(
        &tc,
        &admin,
        &vol,
        "3.42",
        json!({"os-extend": {"new_size": 2}}),
    )
    .await;
    assert_eq!(grown, StatusCode::ACCEPTED);
    let v = wait_volume(&tc, &admin, &vol, "in-use").await;
    assert_eq!(v["size"], 2, "{v}");
    assert_eq!(
        v["attachments"][0]["server_id"],
        json!(srv),
        "still attached"
    );

    let other = create(&tc, &admin, json!({"size": 1, "name": "other"})).await;
    let not_attached = tc
        .compute(Method::DELETE, &format!("{path}/{other}"), &admin, None, V)
        .await;
    assert_eq!(
        not_attached.status,
        StatusCode::NOT_FOUND,
        "{}",
        not_attached.json
    );
    let missing = tc
        .compute(
            Method::POST,
            &path,
            &admin,
            Some(json!({"volumeAttachment": {"volumeId": "00000000-0000-0000-0000-000000000000"}})),
            V,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.json);
    let bad_device = tc
        .compute(
            Method::POST,
            &path,
            &admin,
            Some(json!({"volumeAttachment": {"volumeId": other, "device": "/dev/sda"}})),
            V,
        )
        .await;
    assert_eq!(
        bad_device.status,
        StatusCode::BAD_REQUEST,
        "{}",
        bad_device.json
    );

    // Detach: the volume is available again and the server has none.
    let d = tc
        .compute(Method::DELETE, &format!("{path}/{vol}"), &admin, None, V)
        .await;
    assert_eq!(d.status, StatusCode::ACCEPTED, "{}", d.json);
    let v = wait_volume(&tc, &admin, &vol, "available").await;
    assert_eq!(v["attachments"], json!([]));
    let listed = tc.compute(Method::GET, &path, &admin, None, V).await;
    assert_eq!(listed.json["volumeAttachments"], json!([]));

    // Attached again, then the server deleted: the volume is kept and freed
    // (delete_on_termination is false for an attached volume).
    let a = tc
        .compute(
            Method::POST,
            &path,
            &admin,
            Some(json!({"volumeAttachment": {"volumeId": vol}})),
            V,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    wait_volume(&tc, &admin, &vol, "in-use").await;
    let gone = tc
        .compute(Method::DELETE, &format!("servers/{srv}"), &admin, None, V)
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.json);
    wait_server_gone(&tc, &admin, &srv).await;
    wait_volume(&tc, &admin, &vol, "available").await;
    let leaks = ferro_compute::gc::leaks(tc.cloud.db.pool()).await.unwrap();
    assert!(leaks.is_empty(), "{leaks:?}");
    tc.stop().await;
}

#[tokio::test]
async fn bad_volume_requests_get_cinder_errors_on_every_backend() {
    for backend in backends() {
        bad_input(backend).await;
    }
}

async fn bad_input(backend: Backend) {
    let tc = TestCloud::start(backend).await;
    let admin = tc.admin_token().await;
    let vol = create(&tc, &admin, json!({"size": 2, "name": "keep"})).await;
    let before = snapshot(&tc.cloud).await;
    for (body, status, fault) in [
        (json!({"size": 0}), StatusCode::BAD_REQUEST, "badRequest"),
        (json!({"size": -1}), StatusCode::BAD_REQUEST, "badRequest"),
        (
            json!({"size": "big"}),
            StatusCode::BAD_REQUEST,
            "badRequest",
        ),
        (json!({}), StatusCode::BAD_REQUEST, "badRequest"),
        (
            json!({"size": 100000}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "overLimit",
        ),
        (
            json!({"size": 1, "volume_type": "nosuchtype"}),
            StatusCode::NOT_FOUND,
            "itemNotFound",
        ),
        (
            json!({"size": 1, "snapshot_id": "00000000-0000-0000-0000-000000000000"}),
            StatusCode::NOT_FOUND,
            "itemNotFound",
        ),
        (
            json!({"size": 1, "availability_zone": "elsewhere"}),
            StatusCode::BAD_REQUEST,
            "badRequest",
        ),
    ] {
        let r = volume(
            &tc,
            Method::POST,
            "volumes",
            &admin,
            Some(json!({ "volume": body })),
        )
        .await;
        assert_eq!(r.status, status, "{body}: {}", r.json);
        assert_eq!(r.json[fault]["code"], status.as_u16(), "{body}: {}", r.json);
        assert!(!fault_message(&r, fault).is_empty(), "{body}: {}", r.json);
    }
    let smaller = volume(
        &tc,
        Method::POST,
        &format!("volumes/{vol}/action"),
        &admin,
        Some(json!({"os-extend": {"new_size": 1}})),
    )
    .await;
    assert_eq!(smaller.status, StatusCode::BAD_REQUEST, "{}", smaller.json);
    let unknown = volume(
        &tc,
        Method::GET,
        "volumes/00000000-0000-0000-0000-000000000000",
        &admin,
        None,
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.json);
    assert_eq!(unknown.json["itemNotFound"]["code"], 404);
    let not_json = tc
        .send(
            Method::POST,
            &format!("{}/volumes", tc.cloud.volume_url),
            Some(&admin),
            Some(RawBody::Bytes(b"{nope".to_vec(), "application/json")),
        )
        .await;
    assert_eq!(
        not_json.status,
        StatusCode::BAD_REQUEST,
        "{}",
        not_json.json
    );
    assert_eq!(
        before,
        snapshot(&tc.cloud).await,
        "refusals changed nothing"
    );

    // Another project neither sees nor touches the volume; a reader of it
    // sees it but can't change it.
    let (_, other) = tc.project_user(&admin, "other", "member").await;
    let r = volume(&tc, Method::GET, &format!("volumes/{vol}"), &other, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.json);
    let r = volume(&tc, Method::DELETE, &format!("volumes/{vol}"), &other, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.json);
    let r = volume(&tc, Method::GET, "volumes", &other, None).await;
    assert_eq!(r.json["volumes"], json!([]));
    let mine = create(&tc, &other, json!({"size": 1})).await;
    let r = volume(&tc, Method::GET, &format!("volumes/{mine}"), &admin, None).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the admin sees every project's volume"
    );
    let all = volume(&tc, Method::GET, "volumes?all_tenants=1", &admin, None).await;
    assert_eq!(
        all.json["volumes"].as_array().unwrap().len(),
        2,
        "{}",
        all.json
    );
    tc.stop().await;
}

#[tokio::test]
async fn boot_from_volume_on_every_backend() {
    for backend in backends() {
        boot_from_volume(backend).await;
    }
}

async fn boot_from_volume(backend: Backend) {
    let tc = TestCloud::start(backend).await;
    let admin = tc.admin_token().await;
    let image = tc.upload_image(&admin, "tiny", "qcow2", tiny_qcow2()).await;
    let f = tc
        .compute(
            Method::POST,
            "flavors",
            &admin,
            Some(json!({"flavor": {"name": "m1", "ram": 512, "vcpus": 1, "disk": 1}})),
            V,
        )
        .await;
    let flavor = f.json["flavor"]["id"].as_str().unwrap().to_owned();
    let boot = |name: &str, bdm: Value| {
        json!({"server": {"name": name, "flavorRef": flavor, "networks": "none", "imageRef": "",
            "block_device_mapping_v2": bdm}})
    };

    // --boot-from-volume: a volume made from the image, removed with the server.
    let r = tc
        .compute(
            Method::POST,
            "servers",
            &admin,
            Some(boot(
                "bfv",
                json!([{"boot_index": 0, "uuid": image,
            "source_type": "image", "destination_type": "volume", "volume_size": 1,
            "delete_on_termination": true}]),
            )),
            V,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let srv = r.json["server"]["id"].as_str().unwrap().to_owned();
    wait_server(&tc, &admin, &srv, "ACTIVE").await;
    let shown = tc
        .compute(Method::GET, &format!("servers/{srv}"), &admin, None, V)
        .await;
    assert_eq!(
        shown.json["server"]["image"], "",
        "a volume-backed server has no image"
    );
    let attached = shown.json["server"]["os-extended-volumes:volumes_attached"].clone();
    assert_eq!(attached.as_array().unwrap().len(), 1, "{attached}");
    assert_eq!(attached[0]["delete_on_termination"], true);
    let vol = attached[0]["id"].as_str().unwrap().to_owned();
    let v = wait_volume(&tc, &admin, &vol, "in-use").await;
    assert_eq!(v["bootable"], "true");
    assert_eq!(v["attachments"][0]["device"], "/dev/vda");
    assert_eq!(v["attachments"][0]["server_id"], json!(srv));
    assert_eq!(v["volume_image_metadata"]["image_id"], json!(image));
    let old = tc
        .compute(Method::GET, &format!("servers/{srv}"), &admin, None, "2.1")
        .await;
    assert!(
        old.json["server"]["os-extended-volumes:volumes_attached"][0]
            .get("delete_on_termination")
            .is_none(),
        "delete_on_termination only from 2.3: {}",
        old.json
    );
    let path = format!("servers/{srv}/os-volume_attachments");
    let root = tc
        .compute(Method::DELETE, &format!("{path}/{vol}"), &admin, None, V)
        .await;
    assert_eq!(root.status, StatusCode::BAD_REQUEST, "{}", root.json);
    let rebuild = tc
        .compute(
            Method::POST,
            &format!("servers/{srv}/action"),
            &admin,
            Some(json!({"rebuild": {"imageRef": image}})),
            V,
        )
        .await;
    assert_eq!(rebuild.status, StatusCode::BAD_REQUEST, "{}", rebuild.json);

    // A snapshot of a volume-backed server snapshots its volume, and the
    // image (no data) carries the mapping: a server made from it boots from
    // a new volume made from that snapshot.
    let snap = tc
        .compute(
            Method::POST,
            &format!("servers/{srv}/action"),
            &admin,
            Some(json!({"createImage": {"name": "bfv-snap", "metadata": {"k": "v"}}})),
            V,
        )
        .await;
    assert_eq!(snap.status, StatusCode::ACCEPTED, "{}", snap.json);
    let snap_image = snap.json["image_id"].as_str().unwrap().to_owned();
    let img = wait_image(&tc, &admin, &snap_image).await;
    assert_eq!(img["size"], 0, "{img}");
    assert_eq!(img["bdm_v2"], "True", "{img}");
    assert_eq!(img["root_device_name"], "/dev/vda", "{img}");
    assert_eq!(img["image_type"], "snapshot", "{img}");
    assert_eq!(img["k"], "v", "{img}");
    let mapping: Value =
        serde_json::from_str(img["block_device_mapping"].as_str().unwrap()).unwrap();
    assert_eq!(mapping[0]["source_type"], "snapshot", "{mapping}");
    assert_eq!(mapping[0]["boot_index"], 0, "{mapping}");
    let snapshot_id = mapping[0]["snapshot_id"].as_str().unwrap().to_owned();
    let vs = volume(
        &tc,
        Method::GET,
        &format!("snapshots/{snapshot_id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(vs.status, StatusCode::OK, "{}", vs.json);
    assert_eq!(vs.json["snapshot"]["volume_id"], json!(vol));
    assert_eq!(vs.json["snapshot"]["status"], "available");
    wait_server(&tc, &admin, &srv, "ACTIVE").await;
    let r = tc
        .compute(
            Method::POST,
            "servers",
            &admin,
            // As the CLI sends it: the image mapped onto the local disk too.
            Some(
                json!({"server": {"name": "from-snap", "flavorRef": flavor, "networks": "none",
                "imageRef": snap_image, "block_device_mapping_v2": [{"uuid": snap_image,
                "boot_index": 0, "source_type": "image", "destination_type": "local",
                "delete_on_termination": true}]}}),
            ),
            V,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let copy = r.json["server"]["id"].as_str().unwrap().to_owned();
    wait_server(&tc, &admin, &copy, "ACTIVE").await;
    let shown = tc
        .compute(Method::GET, &format!("servers/{copy}"), &admin, None, V)
        .await;
    let attached = shown.json["server"]["os-extended-volumes:volumes_attached"].clone();
    assert_eq!(attached.as_array().unwrap().len(), 1, "{attached}");
    let copy_vol = attached[0]["id"].as_str().unwrap().to_owned();
    assert_ne!(copy_vol, vol, "a new volume");
    let cv = wait_volume(&tc, &admin, &copy_vol, "in-use").await;
    assert_eq!(cv["snapshot_id"], json!(snapshot_id), "{cv}");
    assert_eq!(cv["attachments"][0]["device"], "/dev/vda");
    let gone = tc
        .compute(Method::DELETE, &format!("servers/{copy}"), &admin, None, V)
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    wait_server_gone(&tc, &admin, &copy).await;
    // Cinder keeps a volume that has snapshots: the snapshot goes first.
    let del = volume(
        &tc,
        Method::DELETE,
        &format!("snapshots/{snapshot_id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(del.status, StatusCode::ACCEPTED, "{}", del.json);
    let start = Instant::now();
    while volume(
        &tc,
        Method::GET,
        &format!("snapshots/{snapshot_id}"),
        &admin,
        None,
    )
    .await
    .status
        != StatusCode::NOT_FOUND
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "snapshot never went"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Shelving a server booted from a volume copies nothing: its volume
    // stays attached while it is offloaded, and it boots from it again.
    let shelve = tc
        .compute(
            Method::POST,
            &format!("servers/{srv}/action"),
            &admin,
            Some(json!({"shelve": null})),
            V,
        )
        .await;
    assert_eq!(shelve.status, StatusCode::ACCEPTED, "{}", shelve.json);
    wait_server(&tc, &admin, &srv, "SHELVED_OFFLOADED").await;
    assert_eq!(
        wait_volume(&tc, &admin, &vol, "in-use").await["id"],
        json!(vol)
    );
    let images = tc
        .send(
            Method::GET,
            &format!("{}/v2/images?name=bfv-shelved", tc.cloud.image_url),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(images.json["images"], json!([]), "no image of a volume");
    let unshelve = tc
        .compute(
            Method::POST,
            &format!("servers/{srv}/action"),
            &admin,
            Some(json!({"unshelve": null})),
            V,
        )
        .await;
    assert_eq!(unshelve.status, StatusCode::ACCEPTED, "{}", unshelve.json);
    wait_server(&tc, &admin, &srv, "ACTIVE").await;
    let shown = tc
        .compute(Method::GET, &format!("servers/{srv}"), &admin, None, V)
        .await;
    assert_eq!(
        shown.json["server"]["os-extended-volumes:volumes_attached"][0]["id"],
        json!(vol)
    );

    let gone = tc
        .compute(Method::DELETE, &format!("servers/{srv}"), &admin, None, V)
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.json);
    wait_server_gone(&tc, &admin, &srv).await;
    let start = Instant::now();
    loop {
        let r = volume(&tc, Method::GET, &format!("volumes/{vol}"), &admin, None).await;
        if r.status == StatusCode::NOT_FOUND {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "delete_on_termination: {}",
            r.json
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // --volume: the user's bootable volume, kept when the server goes.
    let bv = create(
        &tc,
        &admin,
        json!({"size": 1, "imageRef": image, "name": "bv"}),
    )
    .await;
    let r = tc
        .compute(
            Method::POST,
            "servers",
            &admin,
            Some(boot(
                "onvol",
                json!([{"boot_index": 0, "uuid": bv,
            "source_type": "volume", "destination_type": "volume"}]),
            )),
            V,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let srv = r.json["server"]["id"].as_str().unwrap().to_owned();
    wait_server(&tc, &admin, &srv, "ACTIVE").await;
    wait_volume(&tc, &admin, &bv, "in-use").await;
    let before = snapshot(&tc.cloud).await;
    for (bdm, why) in [
        (
            json!([{"boot_index": 0, "uuid": bv, "source_type": "volume", "destination_type": "volume"}]),
            "in use",
        ),
        (
            json!([{"boot_index": 0, "uuid": "00000000-0000-0000-0000-000000000000", "source_type": "volume", "destination_type": "volume"}]),
            "unknown volume",
        ),
        (
            json!([{"boot_index": 0, "source_type": "blank", "destination_type": "volume"}]),
            "blank without a size",
        ),
        (
            json!([{"boot_index": 0, "uuid": image, "source_type": "image", "destination_type": "volume", "volume_size": 0}]),
            "size 0",
        ),
        (
            json!([{"boot_index": 0, "uuid": image, "source_type": "image", "destination_type": "volume", "volume_size": 1},
                {"boot_index": 0, "uuid": image, "source_type": "image", "destination_type": "volume", "volume_size": 1}]),
            "two boot volumes",
        ),
    ] {
        let r = tc
            .compute(Method::POST, "servers", &admin, Some(boot("bad", bdm)), V)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{why}: {}", r.json);
        assert_eq!(r.json["badRequest"]["code"], 400, "{why}: {}", r.json);
    }
    assert_eq!(
        before,
        snapshot(&tc.cloud).await,
        "refusals changed nothing"
    );
    let gone = tc
        .compute(Method::DELETE, &format!("servers/{srv}"), &admin, None, V)
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.json);
    wait_server_gone(&tc, &admin, &srv).await;
    let v = wait_volume(&tc, &admin, &bv, "available").await;
    assert_eq!(v["attachments"], json!([]));
    let leaks = ferro_compute::gc::leaks(tc.cloud.db.pool()).await.unwrap();
    assert!(leaks.is_empty(), "{leaks:?}");
    tc.stop().await;
}
