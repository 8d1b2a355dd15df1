//! Nova APIs older clients call, with the fake hypervisor: os-hosts (up to
//! 2.42), server tags (2.26 on), the extension list, the version list with
//! v2.0 first, the instance usage audit log, and the image proxy (up to
//! 2.35), the security group and floating IP proxies (up to 2.35), quota
//! classes and quota deletes, and the network and volume proxies (up to
//! 2.35).
//! Each scenario runs on every backend.

use std::time::{Duration, Instant};

use ferro_test_support::{backends, tiny_qcow2, Backend, RawBody, TestCloud};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn wait_active(tc: &TestCloud, token: &str, id: &str) {
    let start = Instant::now();
    loop {
        let r = tc
            .compute(Method::GET, &format!("servers/{id}"), token, None, "2.1")
            .await;
        if r.json["server"]["status"] == "ACTIVE" {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "server {id} never became ACTIVE: {}",
            r.json
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A cloud with one ACTIVE server of a member of p1 on it.
async fn setup(backend: Backend) -> (TestCloud, String, String, String) {
    let tc = TestCloud::start(backend).await;
    let admin = tc.admin_token().await;
    let image = tc.upload_image(&admin, "tiny", "qcow2", tiny_qcow2()).await;
    let f = tc
        .compute(
            Method::POST,
            "flavors",
            &admin,
            Some(json!({"flavor": {"name": "m1.tiny", "ram": 256, "vcpus": 1, "disk": 1}})),
            "2.1",
        )
        .await;
    assert_eq!(f.status, StatusCode::OK, "{}", f.json);
    let flavor = f.json["flavor"]["id"].as_str().unwrap().to_owned();
    let (_, member) = tc.project_user(&admin, "p1", "member").await;
    let r = tc
        .compute(
            Method::POST,
            "servers",
            &member,
            Some(json!({"server": {"name": "s", "imageRef": image, "flavorRef": flavor, "networks": "none"}})),
            "2.37",
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let id = r.json["server"]["id"].as_str().unwrap().to_owned();
    wait_active(&tc, &member, &id).await;
    (tc, admin, member, id)
}

#[tokio::test]
async fn os_hosts_until_2_42() {
    for b in backends() {
        hosts(b).await;
    }
}

async fn hosts(backend: Backend) {
    let (tc, admin, member, _) = setup(backend).await;
    let v = "2.42";
    let list = tc.compute(Method::GET, "os-hosts", &admin, None, v).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.json);
    let hosts = list.json["hosts"].as_array().unwrap().clone();
    let services: Vec<&str> = hosts
        .iter()
        .map(|h| h["service"].as_str().unwrap())
        .collect();
    assert_eq!(services, ["conductor", "scheduler", "compute"], "{hosts:?}");
    assert_eq!(hosts[0]["zone"], "internal");
    let compute = hosts[2]["host_name"].as_str().unwrap().to_owned();
    let zone = hosts[2]["zone"].as_str().unwrap().to_owned();
    let by_zone = tc
        .compute(
            Method::GET,
            &format!("os-hosts?zone={zone}"),
            &admin,
            None,
            v,
        )
        .await;
    assert_eq!(by_zone.json["hosts"], json!([hosts[2]]));
    let blank = tc
        .compute(Method::GET, "os-hosts?zone=", &admin, None, v)
        .await;
    assert_eq!(blank.json["hosts"].as_array().unwrap().len(), 3);
    let none = tc
        .compute(Method::GET, "os-hosts?zone=xxx", &admin, None, v)
        .await;
    assert_eq!(none.json["hosts"], json!([]));

    // A host's resources: total, used now, used at most, then per project.
    let show = tc
        .compute(Method::GET, &format!("os-hosts/{compute}"), &admin, None, v)
        .await;
    assert_eq!(show.status, StatusCode::OK, "{}", show.json);
    let rows = show.json["host"].as_array().unwrap();
    let projects: Vec<&str> = rows
        .iter()
        .map(|r| r["resource"]["project"].as_str().unwrap())
        .collect();
    assert_eq!(&projects[..3], ["(total)", "(used_now)", "(used_max)"]);
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert_eq!(rows[2]["resource"]["memory_mb"], 256);
    assert_eq!(rows[3]["resource"]["cpu"], 1);
    assert_eq!(rows[0]["resource"]["host"], compute.as_str());

    // Not for members; gone at 2.43; unknown hosts are 404.
    for path in [
        "os-hosts".to_owned(),
        format!("os-hosts/{compute}"),
        format!("os-hosts/{compute}/reboot"),
    ] {
        let r = tc.compute(Method::GET, &path, &member, None, v).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.json);
    }
    let later = tc
        .compute(Method::GET, "os-hosts", &admin, None, "2.43")
        .await;
    assert_eq!(later.status, StatusCode::NOT_FOUND);
    for path in ["os-hosts/nope", "os-hosts/nope/startup"] {
        let r = tc.compute(Method::GET, path, &admin, None, v).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.json);
        assert_eq!(r.json["itemNotFound"]["code"], 404);
    }
    // The host's power is not this cloud's to change.
    let power = tc
        .compute(
            Method::GET,
            &format!("os-hosts/{compute}/shutdown"),
            &admin,
            None,
            v,
        )
        .await;
    assert_eq!(power.status, StatusCode::NOT_IMPLEMENTED, "{}", power.json);
    assert_eq!(power.json["notImplemented"]["code"], 501);

    // Status: enable/disable, checked before the host is looked up.
    let put = |body: Value, host: String| {
        let tc = &tc;
        let admin = &admin;
        async move {
            tc.compute(
                Method::PUT,
                &format!("os-hosts/{host}"),
                admin,
                Some(body),
                v,
            )
            .await
        }
    };
    for bad in [
        json!({}),
        json!({"status": "invalid"}),
        json!({"status": "enable", "maintenance_mode": "invalid"}),
        json!({"status": "enable", "other": 1}),
    ] {
        let r = put(bad.clone(), compute.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.json);
    }
    let r = put(json!({"status": "enable"}), "nope".into()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = put(json!({"status": "disable"}), compute.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json, json!({"host": compute, "status": "disabled"}));
    let svc = tc
        .compute(Method::GET, "os-services", &admin, None, "2.1")
        .await;
    assert_eq!(svc.json["services"][0]["status"], "disabled");
    let r = put(json!({"status": "enable"}), compute.clone()).await;
    assert_eq!(r.json["status"], "enabled");
    let r = put(json!({"maintenance_mode": "enable"}), compute.clone()).await;
    assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED);
}

#[tokio::test]
async fn server_tags_from_2_26() {
    for b in backends() {
        tags(b).await;
    }
}

async fn tags(backend: Backend) {
    let (tc, admin, member, id) = setup(backend).await;
    let v = "2.26";
    let path = format!("servers/{id}/tags");
    let call = |m: Method, p: String, b: Option<Value>| {
        let tc = &tc;
        let member = &member;
        async move { tc.compute(m, &p, member, b, v).await }
    };
    let old = tc.compute(Method::GET, &path, &member, None, "2.25").await;
    assert_eq!(old.status, StatusCode::NOT_FOUND);
    assert_eq!(
        call(Method::GET, path.clone(), None).await.json,
        json!({"tags": []})
    );
    let added = call(Method::PUT, format!("{path}/blue"), None).await;
    assert_eq!(added.status, StatusCode::CREATED);
    assert!(added.headers["location"]
        .to_str()
        .unwrap()
        .ends_with(&format!("/servers/{id}/tags/blue")));
    let again = call(Method::PUT, format!("{path}/blue"), None).await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
    assert_eq!(
        call(Method::GET, format!("{path}/blue"), None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(Method::GET, format!("{path}/red"), None).await.status,
        StatusCode::NOT_FOUND
    );
    let replaced = call(
        Method::PUT,
        path.clone(),
        Some(json!({"tags": ["a", "b", "a"]})),
    )
    .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.json);
    assert_eq!(replaced.json, json!({"tags": ["a", "b"]}));
    let shown = tc
        .compute(Method::GET, &format!("servers/{id}"), &member, None, v)
        .await;
    assert_eq!(shown.json["server"]["tags"], json!(["a", "b"]));
    for bad in [json!({"tags": ["a/b"]}), json!({"tags": "a"}), json!({})] {
        let r = call(Method::PUT, path.clone(), Some(bad.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.json);
    }
    let fifty_one: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
    let r = call(Method::PUT, path.clone(), Some(json!({"tags": fifty_one}))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let gone = call(Method::DELETE, format!("{path}/a"), None).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let missing = call(Method::DELETE, format!("{path}/a"), None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        call(Method::DELETE, path.clone(), None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(Method::GET, path.clone(), None).await.json,
        json!({"tags": []})
    );
    // Another project's member sees no such server.
    let (_, other) = tc.project_user(&admin, "p2", "member").await;
    let r = tc.compute(Method::GET, &path, &other, None, v).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn extensions_versions_and_the_usage_audit_log() {
    for b in backends() {
        extensions(b).await;
    }
}

async fn extensions(backend: Backend) {
    let (tc, admin, member, _) = setup(backend).await;
    let list = tc
        .compute(Method::GET, "extensions", &member, None, "2.1")
        .await;
    assert_eq!(list.status, StatusCode::OK);
    let names: Vec<&str> = list.json["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Hosts"), "{names:?}");
    let one = tc
        .compute(Method::GET, "extensions/os-hosts", &member, None, "2.1")
        .await;
    assert_eq!(one.json["extension"]["name"], "Hosts");
    let none = tc
        .compute(Method::GET, "extensions/os-nothing", &member, None, "2.1")
        .await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);

    // The version list: v2.0 first, each self link answering its document.
    let root = tc.cloud.compute_url.trim_end_matches("/v2.1").to_owned();
    let versions: Value = tc
        .http
        .get(format!("{root}/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["v2.0", "v2.1"]);
    for v in versions["versions"].as_array().unwrap() {
        let href = v["links"][0]["href"].as_str().unwrap();
        let doc: Value = tc
            .http
            .get(href)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(doc["version"]["id"], v["id"], "{href}");
        assert_eq!(doc["version"]["links"], v["links"]);
    }

    // No usage audit runs here: every host is one that has not run it.
    let log = tc
        .compute(
            Method::GET,
            "os-instance_usage_audit_log",
            &admin,
            None,
            "2.1",
        )
        .await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.json);
    let l = &log.json["instance_usage_audit_logs"];
    assert_eq!(l["num_hosts"], 1);
    assert_eq!(l["num_hosts_not_run"], 1);
    assert_eq!(l["overall_status"], "0 of 1 hosts done. 0 errors.");
    let before = tc
        .compute(
            Method::GET,
            "os-instance_usage_audit_log/2026-03-05%2010:00:00",
            &admin,
            None,
            "2.1",
        )
        .await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.json);
    assert_eq!(
        before.json["instance_usage_audit_log"]["period_beginning"],
        "2026-02-01 00:00:00"
    );
    let bad = tc
        .compute(
            Method::GET,
            "os-instance_usage_audit_log/invalid_time",
            &admin,
            None,
            "2.1",
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let denied = tc
        .compute(
            Method::GET,
            "os-instance_usage_audit_log",
            &member,
            None,
            "2.1",
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_image_proxy_until_2_35() {
    for b in backends() {
        image_proxy(b).await;
    }
}

async fn image_proxy(backend: Backend) {
    let (tc, admin, member, server) = setup(backend).await;
    let v = "2.35";
    // A private image of the member's project, and a snapshot of its server.
    let images = format!("{}/v2/images", tc.cloud.image_url);
    let made = tc
        .send(
            Method::POST,
            &images,
            Some(&member),
            Some(RawBody::Json(
                json!({"name": "mine", "disk_format": "qcow2", "container_format": "bare"}),
            )),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.json);
    let mine = made.json["id"].as_str().unwrap().to_owned();
    let put = tc
        .send(
            Method::PUT,
            &format!("{images}/{mine}/file"),
            Some(&member),
            Some(RawBody::Bytes(tiny_qcow2(), "application/octet-stream")),
        )
        .await;
    assert_eq!(put.status, StatusCode::NO_CONTENT);
    let snap = tc
        .compute(
            Method::POST,
            &format!("servers/{server}/action"),
            &member,
            Some(json!({"createImage": {"name": "snap", "metadata": {"k": "v"}}})),
            v,
        )
        .await;
    assert_eq!(snap.status, StatusCode::ACCEPTED, "{}", snap.json);
    let snap_id = snap.headers["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let start = Instant::now();
    loop {
        let r = tc
            .compute(Method::GET, &format!("images/{snap_id}"), &member, None, v)
            .await;
        if r.json["image"]["status"] == "ACTIVE" {
            assert_eq!(r.json["image"]["progress"], 100);
            assert_eq!(r.json["image"]["server"]["id"], server.as_str());
            assert_eq!(r.json["image"]["metadata"]["k"], "v");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{}", r.json);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ids = |r: &Value| -> Vec<String> {
        r["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let list = |q: &'static str| {
        let tc = &tc;
        let member = &member;
        async move { tc.compute(Method::GET, q, member, None, v).await }
    };
    let all = list("images").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.json);
    assert!(ids(&all.json).contains(&mine) && ids(&all.json).contains(&snap_id));
    assert_eq!(
        all.json["images"][0].as_object().unwrap().len(),
        3,
        "a brief list has id, name and links"
    );
    let detail = list("images/detail?name=mine").await;
    assert_eq!(ids(&detail.json), std::slice::from_ref(&mine));
    assert_eq!(detail.json["images"][0]["status"], "ACTIVE");
    assert_eq!(detail.json["images"][0]["minRam"], 0);
    let snaps = list("images/detail?type=snapshot").await;
    assert_eq!(ids(&snaps.json), std::slice::from_ref(&snap_id));
    let by_server = tc
        .compute(
            Method::GET,
            &format!("images?server={}/servers/{server}", tc.cloud.compute_url),
            &member,
            None,
            v,
        )
        .await;
    assert_eq!(ids(&by_server.json), std::slice::from_ref(&snap_id));
    let active = list("images?status=ACTIVE").await;
    assert!(ids(&active.json).contains(&mine));
    let one = list("images?limit=1").await;
    assert_eq!(ids(&one.json).len(), 1);
    assert!(one.json["images_links"][0]["href"]
        .as_str()
        .unwrap()
        .contains("marker="));
    let gone = tc
        .compute(Method::GET, "images", &member, None, "2.36")
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);

    // Metadata: merge, replace, one key set, shown, deleted.
    let md = format!("images/{mine}/metadata");
    let call = |m: Method, p: String, b: Option<Value>| {
        let tc = &tc;
        let member = &member;
        async move { tc.compute(m, &p, member, b, v).await }
    };
    let r = call(
        Method::POST,
        md.clone(),
        Some(json!({"metadata": {"a": "1", "b": "2"}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["metadata"]["a"], "1");
    let r = call(
        Method::PUT,
        md.clone(),
        Some(json!({"metadata": {"c": "3"}})),
    )
    .await;
    assert_eq!(r.json, json!({"metadata": {"c": "3"}}));
    let r = call(
        Method::PUT,
        format!("{md}/d"),
        Some(json!({"meta": {"d": "4"}})),
    )
    .await;
    assert_eq!(r.json, json!({"meta": {"d": "4"}}));
    let r = call(
        Method::PUT,
        format!("{md}/d"),
        Some(json!({"meta": {"e": "4"}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = call(Method::GET, format!("{md}/c"), None).await;
    assert_eq!(r.json, json!({"meta": {"c": "3"}}));
    let r = call(Method::DELETE, format!("{md}/c"), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = call(Method::GET, format!("{md}/c"), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(Method::GET, md.clone(), None).await;
    assert_eq!(r.json, json!({"metadata": {"d": "4"}}));
    let r = call(
        Method::POST,
        md.clone(),
        Some(json!({"metadata": {"name": "x"}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // The image service sees the same properties.
    let glance = tc
        .send(
            Method::GET,
            &format!("{}/v2/images/{mine}", tc.cloud.image_url),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(glance.json["d"], "4", "{}", glance.json);

    // Another project sees none of it; an image is deleted by its owner.
    let (_, other) = tc.project_user(&admin, "p2", "member").await;
    let r = tc
        .compute(Method::GET, &format!("images/{mine}"), &other, None, v)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = tc
        .compute(Method::DELETE, &format!("images/{mine}"), &other, None, v)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(Method::DELETE, format!("images/{mine}"), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = call(Method::GET, format!("images/{mine}"), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_security_group_proxy_until_2_35() {
    for b in backends() {
        security_group_proxy(b).await;
    }
}

async fn security_group_proxy(backend: Backend) {
    let (tc, admin, member, _) = setup(backend).await;
    let v = "2.35";
    let call = |m: Method, p: &'static str, b: Option<Value>| {
        let tc = &tc;
        let member = &member;
        async move { tc.compute(m, p, member, b, v).await }
    };
    let made = call(
        Method::POST,
        "os-security-groups",
        Some(json!({"security_group": {"name": "web", "description": "the web tier"}})),
    )
    .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.json);
    let g = made.json["security_group"].clone();
    assert_eq!(g["name"], "web");
    assert_eq!(g["rules"], json!([]), "egress rules are not Nova's");
    let gid = g["id"].as_str().unwrap().to_owned();
    let other_made = call(
        Method::POST,
        "os-security-groups",
        Some(json!({"security_group": {"name": "db ", "description": "db"}})),
    )
    .await;
    let other_gid = other_made.json["security_group"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for bad in [
        json!({"security_group": {"name": "", "description": "x"}}),
        json!({"security_group": {"name": "x"}}),
        json!({"security_group": {"name": 5, "description": "x"}}),
    ] {
        let r = call(Method::POST, "os-security-groups", Some(bad.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.json);
    }
    let list = call(Method::GET, "os-security-groups", None).await;
    let names: Vec<&str> = list.json["security_groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"default") && names.contains(&"web"),
        "{names:?}"
    );

    // Rules: Nova's defaults and checks.
    let rule = |body: Value| {
        let tc = &tc;
        let member = &member;
        async move {
            tc.compute(
                Method::POST,
                "os-security-group-rules",
                member,
                Some(json!({"security_group_rule": body})),
                v,
            )
            .await
        }
    };
    let r =
        rule(json!({"parent_group_id": gid, "ip_protocol": "tcp", "from_port": 22, "to_port": 22}))
            .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let ssh = r.json["security_group_rule"].clone();
    assert_eq!(ssh["ip_range"], json!({"cidr": "0.0.0.0/0"}));
    assert_eq!(ssh["from_port"], 22);
    assert_eq!(ssh["parent_group_id"], gid.as_str());
    let dup =
        rule(json!({"parent_group_id": gid, "ip_protocol": "tcp", "from_port": 22, "to_port": 22}))
            .await;
    assert_eq!(dup.status, StatusCode::BAD_REQUEST, "{}", dup.json);
    // A cidr is kept as given (Neutron's normalized_cidr is its network).
    let cidr = rule(json!({"parent_group_id": gid, "ip_protocol": "udp", "from_port": 53, "to_port": 53, "cidr": "10.2.3.124/24"})).await;
    assert_eq!(cidr.status, StatusCode::OK, "{}", cidr.json);
    assert_eq!(
        cidr.json["security_group_rule"]["ip_range"],
        json!({"cidr": "10.2.3.124/24"})
    );
    let again = rule(json!({"parent_group_id": gid, "ip_protocol": "udp", "from_port": 53, "to_port": 53, "cidr": "10.2.3.0/24"})).await;
    assert_eq!(
        again.status,
        StatusCode::BAD_REQUEST,
        "the same network is the same rule: {}",
        again.json
    );
    let cidr_id = cidr.json["security_group_rule"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = tc
        .compute(
            Method::DELETE,
            &format!("os-security-group-rules/{cidr_id}"),
            &member,
            None,
            v,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let icmp = rule(
        json!({"parent_group_id": gid, "ip_protocol": "icmp", "from_port": -1, "to_port": -1}),
    )
    .await;
    assert_eq!(icmp.status, StatusCode::OK, "{}", icmp.json);
    assert_eq!(icmp.json["security_group_rule"]["from_port"], -1);
    let by_group = rule(json!({"parent_group_id": gid, "ip_protocol": "tcp", "from_port": 5432, "to_port": 5432, "group_id": other_gid})).await;
    assert_eq!(by_group.status, StatusCode::OK, "{}", by_group.json);
    assert_eq!(
        by_group.json["security_group_rule"]["group"]["name"], "db ",
        "names are kept as given"
    );
    assert_eq!(by_group.json["security_group_rule"]["ip_range"], json!({}));
    for bad in [
        json!({"parent_group_id": gid, "ip_protocol": "999", "from_port": 22, "to_port": 22}),
        json!({"parent_group_id": gid, "ip_protocol": "tcp", "from_port": 0, "to_port": 22}),
        json!({"parent_group_id": gid, "ip_protocol": "tcp", "from_port": 22, "to_port": 65536}),
        json!({"parent_group_id": gid, "ip_protocol": "tcp", "from_port": 23, "to_port": 22}),
        json!({"parent_group_id": gid, "ip_protocol": "tcp", "from_port": "x", "to_port": 22}),
        json!({"parent_group_id": "not-a-uuid", "ip_protocol": "tcp", "from_port": 22, "to_port": 22}),
    ] {
        let r = rule(bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.json);
    }
    let unknown = rule(json!({"parent_group_id": "00000000-0000-4000-8000-000000000000", "ip_protocol": "tcp", "from_port": 22, "to_port": 22})).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.json);
    let shown = tc
        .compute(
            Method::GET,
            &format!("os-security-groups/{gid}"),
            &member,
            None,
            v,
        )
        .await;
    assert_eq!(
        shown.json["security_group"]["rules"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // The network API sees the same rule.
    let neutron = tc
        .send(
            Method::GET,
            &format!(
                "{}/v2.0/security-group-rules/{}",
                tc.cloud.network_url,
                ssh["id"].as_str().unwrap()
            ),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(neutron.json["security_group_rule"]["port_range_min"], 22);
    assert_eq!(neutron.json["security_group_rule"]["direction"], "ingress");
    let del = tc
        .compute(
            Method::DELETE,
            &format!("os-security-group-rules/{}", ssh["id"].as_str().unwrap()),
            &member,
            None,
            v,
        )
        .await;
    assert_eq!(del.status, StatusCode::ACCEPTED);

    // Update; the default group can't be deleted; 2.36 has no proxy.
    let up = tc
        .compute(
            Method::PUT,
            &format!("os-security-groups/{gid}"),
            &member,
            Some(json!({"security_group": {"name": "web2", "description": "d2"}})),
            v,
        )
        .await;
    assert_eq!(up.json["security_group"]["name"], "web2", "{}", up.json);
    let default = list.json["security_groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "default")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = tc
        .compute(
            Method::DELETE,
            &format!("os-security-groups/{default}"),
            &member,
            None,
            v,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = tc
        .compute(
            Method::DELETE,
            &format!("os-security-groups/{other_gid}"),
            &member,
            None,
            v,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    // The rule naming it went with it, as in Neutron.
    let shown = tc
        .compute(
            Method::GET,
            &format!("os-security-groups/{gid}"),
            &member,
            None,
            v,
        )
        .await;
    let rules = shown.json["security_group"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(rules[0]["ip_protocol"], "icmp");
    let r = tc
        .compute(Method::GET, "os-security-groups", &member, None, "2.36")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let (_, other) = tc.project_user(&admin, "p2", "member").await;
    let r = tc
        .compute(
            Method::GET,
            &format!("os-security-groups/{gid}"),
            &other,
            None,
            v,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // An administrator lists every project's with all_tenants.
    let ids_of = |r: &Value| -> Vec<String> {
        r["security_groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let own = tc
        .compute(Method::GET, "os-security-groups", &admin, None, v)
        .await;
    assert!(!ids_of(&own.json).contains(&gid));
    let all = tc
        .compute(
            Method::GET,
            "os-security-groups?all_tenants=1",
            &admin,
            None,
            v,
        )
        .await;
    assert!(ids_of(&all.json).contains(&gid), "{}", all.json);
    let mine = tc
        .compute(
            Method::GET,
            "os-security-groups?all_tenants=1",
            &other,
            None,
            v,
        )
        .await;
    assert!(!ids_of(&mine.json).contains(&gid), "not for members");
}

#[tokio::test]
async fn the_floating_ip_proxy_until_2_35() {
    for b in backends() {
        floating_ip_proxy(b).await;
    }
}

async fn floating_ip_proxy(backend: Backend) {
    let (tc, admin, member, _) = setup(backend).await;
    let v = "2.35";
    let call = |m: Method, p: String, b: Option<Value>| {
        let tc = &tc;
        let member = &member;
        async move { tc.compute(m, &p, member, b, v).await }
    };
    // No pool yet.
    let r = call(Method::POST, "os-floating-ips".into(), Some(json!({}))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.json);
    let ext = tc
        .network(
            Method::POST,
            "networks",
            &admin,
            Some(
                json!({"network": {"name": "public", "router:external": true,
                "provider:network_type": "flat", "provider:physical_network": "physnet1"}}),
            ),
        )
        .await;
    assert_eq!(ext.status, StatusCode::CREATED, "{}", ext.json);
    let ext_id = ext.json["network"]["id"].as_str().unwrap().to_owned();
    let sub = tc
        .network(
            Method::POST,
            "subnets",
            &admin,
            Some(json!({"subnet": {"network_id": ext_id, "ip_version": 4,
                "cidr": "172.16.0.0/24", "enable_dhcp": false}})),
        )
        .await;
    assert_eq!(sub.status, StatusCode::CREATED, "{}", sub.json);

    let pools = call(Method::GET, "os-floating-ip-pools".into(), None).await;
    assert_eq!(
        pools.json,
        json!({"floating_ip_pools": [{"name": "public"}]})
    );
    let by_name = call(
        Method::POST,
        "os-floating-ips".into(),
        Some(json!({"pool": "public"})),
    )
    .await;
    assert_eq!(by_name.status, StatusCode::OK, "{}", by_name.json);
    let f = by_name.json["floating_ip"].clone();
    assert_eq!(f["pool"], "public");
    assert_eq!(f["instance_id"], Value::Null);
    assert!(f["ip"].as_str().unwrap().starts_with("172.16.0."), "{f}");
    let by_id = call(
        Method::POST,
        "os-floating-ips".into(),
        Some(json!({"pool": ext_id})),
    )
    .await;
    assert_eq!(by_id.status, StatusCode::OK, "{}", by_id.json);
    let nope = call(
        Method::POST,
        "os-floating-ips".into(),
        Some(json!({"pool": "nope"})),
    )
    .await;
    assert_eq!(nope.status, StatusCode::NOT_FOUND);
    let id = f["id"].as_str().unwrap().to_owned();
    let shown = call(Method::GET, format!("os-floating-ips/{id}"), None).await;
    assert_eq!(shown.json["floating_ip"], f);
    let list = call(Method::GET, "os-floating-ips".into(), None).await;
    assert_eq!(list.json["floating_ips"].as_array().unwrap().len(), 2);
    assert!(list.json["floating_ips"].as_array().unwrap().contains(&f));
    // The network API has it too, in the member's project.
    let neutron = tc
        .send(
            Method::GET,
            &format!("{}/v2.0/floatingips/{id}", tc.cloud.network_url),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(neutron.json["floatingip"]["floating_ip_address"], f["ip"]);
    let (_, other) = tc.project_user(&admin, "p2", "member").await;
    let r = tc
        .compute(
            Method::GET,
            &format!("os-floating-ips/{id}"),
            &other,
            None,
            v,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = tc
        .compute(
            Method::DELETE,
            &format!("os-floating-ips/{id}"),
            &other,
            None,
            v,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let del = call(Method::DELETE, format!("os-floating-ips/{id}"), None).await;
    assert_eq!(del.status, StatusCode::ACCEPTED);
    let gone = call(Method::GET, format!("os-floating-ips/{id}"), None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let later = call(Method::GET, "os-floating-ips".into(), None).await;
    assert_eq!(later.json["floating_ips"].as_array().unwrap().len(), 1);
    let r = tc
        .compute(Method::GET, "os-floating-ips", &member, None, "2.36")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn quota_classes_set_the_defaults_and_a_delete_restores_them() {
    for b in backends() {
        quota_classes(b).await;
    }
}

async fn quota_classes(backend: Backend) {
    let (tc, admin, member, _) = setup(backend).await;
    let v = "2.1";
    let shown = tc
        .compute(Method::GET, "os-quota-class-sets/default", &admin, None, v)
        .await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.json);
    assert_eq!(shown.json["quota_class_set"]["id"], "default");
    let cores = shown.json["quota_class_set"]["cores"].as_i64().unwrap();
    let r = tc
        .compute(Method::GET, "os-quota-class-sets/default", &member, None, v)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let up = tc
        .compute(
            Method::PUT,
            "os-quota-class-sets/default",
            &admin,
            Some(json!({"quota_class_set": {"cores": cores + 100}})),
            v,
        )
        .await;
    assert_eq!(up.status, StatusCode::OK, "{}", up.json);
    assert_eq!(up.json["quota_class_set"]["cores"], cores + 100);
    assert!(up.json["quota_class_set"].get("id").is_none());
    let bad = tc
        .compute(
            Method::PUT,
            "os-quota-class-sets/default",
            &admin,
            Some(json!({"quota_class_set": {"nothing": 1}})),
            v,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    // Every project's defaults follow the default class.
    let project = tc
        .call(Method::GET, "auth/projects", &member, None)
        .await
        .json["projects"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let defaults = tc
        .compute(
            Method::GET,
            &format!("os-quota-sets/{project}/defaults"),
            &member,
            None,
            v,
        )
        .await;
    assert_eq!(defaults.json["quota_set"]["cores"], cores + 100);
    // A project's own limit, then deleted: back to the class's.
    let set = tc
        .compute(
            Method::PUT,
            &format!("os-quota-sets/{project}"),
            &admin,
            Some(json!({"quota_set": {"cores": 3}})),
            v,
        )
        .await;
    assert_eq!(set.json["quota_set"]["cores"], 3);
    let r = tc
        .compute(
            Method::DELETE,
            &format!("os-quota-sets/{project}"),
            &member,
            None,
            v,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = tc
        .compute(
            Method::DELETE,
            &format!("os-quota-sets/{project}"),
            &admin,
            None,
            v,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let q = tc
        .compute(
            Method::GET,
            &format!("os-quota-sets/{project}"),
            &member,
            None,
            v,
        )
        .await;
    assert_eq!(q.json["quota_set"]["cores"], cores + 100);
}

#[tokio::test]
async fn the_network_proxies_until_2_35() {
    for b in backends() {
        network_proxies(b).await;
    }
}

async fn network_proxies(backend: Backend) {
    let (tc, admin, member, _) = setup(backend).await;
    let v = "2.35";
    let net = tc
        .network(
            Method::POST,
            "networks",
            &member,
            Some(json!({"network": {"name": "mine"}})),
        )
        .await;
    assert_eq!(net.status, StatusCode::CREATED, "{}", net.json);
    let id = net.json["network"]["id"].as_str().unwrap().to_owned();
    let sub = tc
        .network(
            Method::POST,
            "subnets",
            &member,
            Some(json!({"subnet": {"network_id": id, "ip_version": 4, "cidr": "10.20.0.0/24"}})),
        )
        .await;
    assert_eq!(sub.status, StatusCode::CREATED, "{}", sub.json);
    let tenant = tc
        .compute(Method::GET, "os-tenant-networks", &member, None, v)
        .await;
    assert_eq!(tenant.status, StatusCode::OK, "{}", tenant.json);
    assert!(
        tenant.json["networks"]
            .as_array()
            .unwrap()
            .contains(&json!({"id": id, "label": "mine", "cidr": "10.20.0.0/24"})),
        "{}",
        tenant.json
    );
    let one = tc
        .compute(
            Method::GET,
            &format!("os-tenant-networks/{id}"),
            &member,
            None,
            v,
        )
        .await;
    assert_eq!(one.json["network"]["label"], "mine");
    let full = tc
        .compute(Method::GET, &format!("os-networks/{id}"), &member, None, v)
        .await;
    assert_eq!(full.status, StatusCode::OK, "{}", full.json);
    assert_eq!(full.json["network"]["label"], "mine");
    assert_eq!(full.json["network"]["vlan"], Value::Null);
    // Another project doesn't see it; 2.36 has no proxy.
    let (_, other) = tc.project_user(&admin, "p2", "member").await;
    let r = tc
        .compute(Method::GET, &format!("os-networks/{id}"), &other, None, v)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = tc
        .compute(Method::GET, "os-tenant-networks", &member, None, "2.36")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_volume_proxies_until_2_35() {
    for b in backends() {
        volume_proxies(b).await;
    }
}

async fn volume_proxies(backend: Backend) {
    let (tc, admin, member, _) = setup(backend).await;
    let v = "2.35";
    let call = |m: Method, p: String, b: Option<Value>| {
        let tc = &tc;
        let member = &member;
        async move { tc.compute(m, &p, member, b, v).await }
    };
    for size in [json!("#$%"), json!(""), json!("0"), json!(0)] {
        let r = call(
            Method::POST,
            "os-volumes".into(),
            Some(json!({"volume": {"size": size, "display_name": "x"}})),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{size}: {}", r.json);
    }
    let mut ids = Vec::new();
    for name in ["v1", "v2", "v3"] {
        let r = call(
            Method::POST,
            "os-volumes".into(),
            Some(json!({"volume": {"size": 1, "display_name": name, "metadata": {"k": name}}})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        let vol = &r.json["volume"];
        assert_eq!(vol["displayName"], name);
        assert_eq!(vol["size"], 1);
        assert_eq!(vol["metadata"], json!({"k": name}));
        assert_eq!(vol["attachments"], json!([{}]));
        ids.push(vol["id"].as_str().unwrap().to_owned());
    }
    let start = Instant::now();
    loop {
        let r = call(Method::GET, format!("os-volumes/{}", ids[0]), None).await;
        if r.json["volume"]["status"] == "available" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{}", r.json);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all = call(Method::GET, "os-volumes/detail".into(), None).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.json);
    assert_eq!(all.json["volumes"].as_array().unwrap().len(), 3);
    let paged = call(Method::GET, "os-volumes?limit=2&offset=2".into(), None).await;
    assert_eq!(paged.json["volumes"].as_array().unwrap().len(), 1);
    let r = call(Method::GET, "os-volumes?limit=x".into(), None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // The volume API sees the same volume.
    let cinder = tc
        .send(
            Method::GET,
            &format!("{}/volumes/{}", tc.cloud.volume_url, ids[0]),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(cinder.json["volume"]["name"], "v1", "{}", cinder.json);

    // Snapshots.
    let sn = call(
        Method::POST,
        "os-snapshots".into(),
        Some(json!({"snapshot": {"volume_id": ids[0], "display_name": "s1", "force": false}})),
    )
    .await;
    assert_eq!(sn.status, StatusCode::OK, "{}", sn.json);
    assert_eq!(sn.json["snapshot"]["volumeId"], ids[0].as_str());
    let sid = sn.json["snapshot"]["id"].as_str().unwrap().to_owned();
    let start = Instant::now();
    loop {
        let r = call(Method::GET, format!("os-snapshots/{sid}"), None).await;
        if r.json["snapshot"]["status"] == "available" {
            assert_eq!(r.json["snapshot"]["displayName"], "s1");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{}", r.json);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let list = call(Method::GET, "os-snapshots".into(), None).await;
    assert_eq!(list.json["snapshots"].as_array().unwrap().len(), 1);
    let r = call(Method::DELETE, format!("os-snapshots/{sid}"), None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);

    // Others don't see it; deletes; 2.36 has no proxy.
    let (_, other) = tc.project_user(&admin, "p2", "member").await;
    let r = tc
        .compute(
            Method::GET,
            &format!("os-volumes/{}", ids[1]),
            &other,
            None,
            v,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(Method::DELETE, format!("os-volumes/{}", ids[1]), None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let r = call(
        Method::DELETE,
        "os-volumes/00000000-0000-4000-8000-000000000000".into(),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = tc
        .compute(Method::GET, "os-volumes", &member, None, "2.36")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
