//! Server fields kept as the requests give them, with the fake hypervisor:
//! `OS-DCF:diskConfig` through create, update, rebuild and resize; access
//! IPs (IPv6 in its canonical text) through create and update; a given
//! `adminPass`; a rebuild's new key pair (2.54) and user data (2.57). Each
//! scenario runs on every backend.

use std::time::{Duration, Instant};

use ferro_test_support::{backends, tiny_qcow2, Backend, TestCloud};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn wait_status(tc: &TestCloud, token: &str, id: &str, want: &str) -> Value {
    let start = Instant::now();
    loop {
        let r = tc
            .compute(Method::GET, &format!("servers/{id}"), token, None, "2.79")
            .await;
        if r.json["server"]["status"] == want {
            return r.json["server"].clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "server {id} never became {want}: {}",
            r.json
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn server_fields_are_kept_as_given() {
    for b in backends() {
        fields(b).await;
    }
}

async fn fields(backend: Backend) {
    let tc = TestCloud::start(backend).await;
    let admin = tc.admin_token().await;
    let image = tc.upload_image(&admin, "tiny", "qcow2", tiny_qcow2()).await;
    let mut flavors = Vec::new();
    for (name, ram) in [("small", 256), ("large", 512)] {
        let f = tc
            .compute(
                Method::POST,
                "flavors",
                &admin,
                Some(json!({"flavor": {"name": name, "ram": ram, "vcpus": 1, "disk": 1}})),
                "2.1",
            )
            .await;
        flavors.push(f.json["flavor"]["id"].as_str().unwrap().to_owned());
    }
    let (_, member) = tc.project_user(&admin, "p1", "member").await;
    let key = tc
        .compute(
            Method::POST,
            "os-keypairs",
            &member,
            Some(json!({"keypair": {"name": "k1"}})),
            "2.1",
        )
        .await;
    assert_eq!(key.status, StatusCode::OK, "{}", key.json);

    let bad = tc
        .compute(
            Method::POST,
            "servers",
            &member,
            Some(
                json!({"server": {"name": "s", "imageRef": image, "flavorRef": flavors[0],
                "networks": "none", "OS-DCF:diskConfig": "SOMETIMES"}}),
            ),
            "2.37",
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.json);
    let made = tc
        .compute(
            Method::POST,
            "servers",
            &member,
            Some(json!({"server": {"name": "s", "imageRef": image, "flavorRef": flavors[0],
                "networks": "none", "OS-DCF:diskConfig": "AUTO", "adminPass": "testpassword",
                "accessIPv6": "0000:0000:0000:0000:0000:babe:220.12.22.2", "accessIPv4": "1.1.1.1"}})),
            "2.37",
        )
        .await;
    assert_eq!(made.status, StatusCode::ACCEPTED, "{}", made.json);
    assert_eq!(made.json["server"]["adminPass"], "testpassword");
    assert_eq!(made.json["server"]["OS-DCF:diskConfig"], "AUTO");
    let id = made.json["server"]["id"].as_str().unwrap().to_owned();
    let srv = wait_status(&tc, &member, &id, "ACTIVE").await;
    assert_eq!(srv["OS-DCF:diskConfig"], "AUTO");
    assert_eq!(srv["accessIPv6"], "::babe:dc0c:1602");
    assert_eq!(srv["accessIPv4"], "1.1.1.1");

    // Update: access IPs and the disk config.
    let up = tc
        .compute(
            Method::PUT,
            &format!("servers/{id}"),
            &member,
            Some(json!({"server": {"accessIPv4": "4.3.2.1", "accessIPv6": "", "OS-DCF:diskConfig": "MANUAL"}})),
            "2.1",
        )
        .await;
    assert_eq!(up.status, StatusCode::OK, "{}", up.json);
    assert_eq!(up.json["server"]["accessIPv4"], "4.3.2.1");
    assert_eq!(up.json["server"]["accessIPv6"], "");
    assert_eq!(up.json["server"]["OS-DCF:diskConfig"], "MANUAL");
    let up = tc
        .compute(
            Method::PUT,
            &format!("servers/{id}"),
            &member,
            Some(json!({"server": {"accessIPv4": "not-an-ip"}})),
            "2.1",
        )
        .await;
    assert_eq!(up.status, StatusCode::BAD_REQUEST);

    // Rebuild: disk config, a given password, a new key pair and user data.
    let rebuilt = tc
        .compute(
            Method::POST,
            &format!("servers/{id}/action"),
            &member,
            Some(
                json!({"rebuild": {"imageRef": image, "OS-DCF:diskConfig": "AUTO",
                "adminPass": "again", "key_name": "k1", "user_data": "aGVsbG8="}}),
            ),
            "2.57",
        )
        .await;
    assert_eq!(rebuilt.status, StatusCode::ACCEPTED, "{}", rebuilt.json);
    let b = &rebuilt.json["server"];
    assert_eq!(b["adminPass"], "again");
    assert_eq!(b["key_name"], "k1");
    assert_eq!(b["user_data"], "aGVsbG8=");
    assert_eq!(b["OS-DCF:diskConfig"], "AUTO");
    let srv = wait_status(&tc, &member, &id, "ACTIVE").await;
    assert_eq!(srv["key_name"], "k1");
    // Before 2.54 a rebuild keeps the key pair.
    let r = tc
        .compute(
            Method::POST,
            &format!("servers/{id}/action"),
            &member,
            Some(json!({"rebuild": {"imageRef": image, "OS-DCF:diskConfig": "MANUAL"}})),
            "2.53",
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let srv = wait_status(&tc, &member, &id, "ACTIVE").await;
    assert_eq!(srv["key_name"], "k1");
    assert_eq!(srv["OS-DCF:diskConfig"], "MANUAL");

    // Resize to AUTO.
    let r = tc
        .compute(
            Method::POST,
            &format!("servers/{id}/action"),
            &member,
            Some(json!({"resize": {"flavorRef": flavors[1], "OS-DCF:diskConfig": "AUTO"}})),
            "2.1",
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let srv = wait_status(&tc, &member, &id, "VERIFY_RESIZE").await;
    assert_eq!(srv["OS-DCF:diskConfig"], "AUTO");
}
