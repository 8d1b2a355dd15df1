//! Nova APIs older clients call, with the fake hypervisor: os-hosts (up to
//! 2.42), server tags (2.26 on), the extension list, the version list with
//! v2.0 first, and the instance usage audit log. Each scenario runs on
//! every backend.

use std::time::{Duration, Instant};

use ferro_test_support::{backends, tiny_qcow2, Backend, TestCloud};
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
