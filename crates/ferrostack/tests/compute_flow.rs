//! The compute control plane end to end with the fake hypervisor: flavors,
//! key pairs, the boot saga, power actions, microversion rendering, quotas,
//! scheduling failures, tenant isolation and bad input. (Real VMs are
//! tested by tests/cli/compute.sh.)

use std::time::{Duration, Instant};

use ferro_test_support::{backends, tiny_qcow2, Backend, TestCloud};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const V: &str = "2.79";

async fn wait_status(tc: &TestCloud, token: &str, id: &str, want: &str) -> Value {
    let start = Instant::now();
    loop {
        let r = tc
            .compute(Method::GET, &format!("servers/{id}"), token, None, V)
            .await;
        if r.json["server"]["status"] == want {
            return r.json["server"].clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "server {id} never became {want}: {}",
            r.json
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_gone(tc: &TestCloud, token: &str, id: &str) {
    let start = Instant::now();
    loop {
        let r = tc
            .compute(Method::GET, &format!("servers/{id}"), token, None, V)
            .await;
        if r.status == StatusCode::NOT_FOUND {
            return;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let sagas: Vec<(String, String, Option<String>, String, i64)> = ferro_store::sqlx::query_as(
                "SELECT kind, step, last_error, lease_holder, lease_expires FROM sagas WHERE resource_id = $1",
            )
            .bind(id)
            .fetch_all(tc.cloud.db.pool())
            .await
            .unwrap_or_default();
            panic!(
                "server {id} was never deleted: {} {}; its sagas: {sagas:?}",
                r.status, r.json
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn setup(tc: &TestCloud, admin: &str) -> (String, String) {
    let image = tc.upload_image(admin, "tiny", "qcow2", tiny_qcow2()).await;
    let f = tc
        .compute(Method::POST, "flavors", admin, Some(json!({"flavor": {"name": "m1.tiny", "ram": 1024, "vcpus": 1, "disk": 20, "id": null,
            "swap": 0, "OS-FLV-EXT-DATA:ephemeral": 0, "os-flavor-access:is_public": true}})), "2.61")
        .await;
    assert_eq!(f.status, StatusCode::OK, "{}", f.json);
    (image, f.json["flavor"]["id"].as_str().unwrap().to_owned())
}

fn boot(name: &str, image: &str, flavor: &str) -> Value {
    json!({"server": {"name": name, "imageRef": image, "flavorRef": flavor, "networks": "none", "min_count": 1, "max_count": 1}})
}

#[tokio::test]
async fn server_lifecycle_on_every_backend() {
    for backend in backends() {
        lifecycle(backend).await;
    }
}

async fn lifecycle(backend: Backend) {
    let tc = TestCloud::start(backend).await;
    let admin = tc.admin_token().await;
    let (image, flavor) = setup(&tc, &admin).await;
    let kp = tc
        .compute(Method::POST, "os-keypairs", &admin,
            Some(json!({"keypair": {"name": "user1", "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILmQGp0qQqai8eG5+LTYPRKE21GJGvfFHiPtAakL2bl+ a@b\n"}})), "2.10")
        .await;
    assert_eq!(kp.status, StatusCode::CREATED, "{}", kp.json);
    assert_eq!(kp.json["keypair"]["type"], "ssh");
    assert_eq!(
        kp.json["keypair"]["fingerprint"].as_str().unwrap().len(),
        47
    );

    let mut body = boot("vm1", &image, &flavor);
    body["server"]["key_name"] = json!("user1");
    let r = tc
        .compute(Method::POST, "servers", &admin, Some(body), V)
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    assert_eq!(r.headers["openstack-api-version"], "compute 2.79");
    let id = r.json["server"]["id"].as_str().unwrap().to_owned();
    let s = wait_status(&tc, &admin, &id, "ACTIVE").await;
    assert_eq!(s["OS-EXT-SRV-ATTR:host"], "fake-host");
    assert_eq!(s["OS-EXT-STS:power_state"], 1);
    assert_eq!(
        s["flavor"]["original_name"], "m1.tiny",
        "embedded flavor from 2.47"
    );
    assert_eq!(s["image"]["id"], json!(image));
    assert_eq!(s["key_name"], "user1");
    // The same server at 2.1: flavor by reference, no 2.x fields.
    let old = tc
        .compute(Method::GET, &format!("servers/{id}"), &admin, None, "")
        .await;
    assert_eq!(old.json["server"]["flavor"]["id"], json!(flavor));
    assert!(old.json["server"].get("locked").is_none() && old.json["server"].get("tags").is_none());
    // The list writes each server straight to JSON, `show` through a value:
    // the same server in both, at the oldest and newest microversions.
    for version in ["", "2.3", "2.47", V] {
        let list = tc
            .compute(Method::GET, "servers/detail", &admin, None, version)
            .await;
        let show = tc
            .compute(Method::GET, &format!("servers/{id}"), &admin, None, version)
            .await;
        let listed = list.json["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == json!(id))
            .expect("vm1 in the list");
        // Nova's show (not its list) adds the server's groups from 2.71.
        let mut shown = show.json["server"].clone();
        if let Some(o) = shown.as_object_mut() {
            o.remove("server_groups");
        }
        assert_eq!(listed, &shown, "at {version:?}");
    }

    for (action, body, want) in [
        ("stop", json!({"os-stop": null}), "SHUTOFF"),
        ("start", json!({"os-start": null}), "ACTIVE"),
        ("reboot", json!({"reboot": {"type": "SOFT"}}), "ACTIVE"),
        ("pause", json!({"pause": null}), "PAUSED"),
        ("unpause", json!({"unpause": null}), "ACTIVE"),
        ("suspend", json!({"suspend": null}), "SUSPENDED"),
        ("resume", json!({"resume": null}), "ACTIVE"),
        ("hard reboot", json!({"reboot": {"type": "HARD"}}), "ACTIVE"),
    ] {
        let r = tc
            .compute(
                Method::POST,
                &format!("servers/{id}/action"),
                &admin,
                Some(body),
                V,
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{action}: {}", r.json);
        wait_status(&tc, &admin, &id, want).await;
    }
    let r = tc
        .compute(
            Method::POST,
            &format!("servers/{id}/action"),
            &admin,
            Some(json!({"os-start": null})),
            V,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "starting an active server");
    let r = tc
        .compute(
            Method::POST,
            &format!("servers/{id}/action"),
            &admin,
            Some(json!({"rebuild": {"imageRef": image}})),
            V,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    wait_status(&tc, &admin, &id, "ACTIVE").await;

    // Resize to a bigger flavor and confirm; resize back and revert.
    let f2 = tc
        .compute(
            Method::POST,
            "flavors",
            &admin,
            Some(json!({"flavor": {"name": "m1.small", "ram": 2048, "vcpus": 1, "disk": 20}})),
            V,
        )
        .await;
    let f2 = f2.json["flavor"]["id"].as_str().unwrap().to_owned();
    let act = |body: Value| {
        let (tc, admin, id) = (&tc, admin.clone(), id.clone());
        async move {
            tc.compute(
                Method::POST,
                &format!("servers/{id}/action"),
                &admin,
                Some(body),
                V,
            )
            .await
            .status
        }
    };
    let ram_used = || {
        let (tc, admin) = (&tc, admin.clone());
        async move {
            tc.compute(Method::GET, "limits", &admin, None, V)
                .await
                .json["limits"]["absolute"]["totalRAMUsed"]
                .clone()
        }
    };
    assert_eq!(
        act(json!({"resize": {"flavorRef": flavor}})).await,
        StatusCode::BAD_REQUEST,
        "same flavor"
    );
    assert_eq!(
        act(json!({"resize": {"flavorRef": f2}})).await,
        StatusCode::ACCEPTED
    );
    let s = wait_status(&tc, &admin, &id, "VERIFY_RESIZE").await;
    assert_eq!(s["flavor"]["original_name"], "m1.small");
    assert_eq!(
        act(json!({"confirmResize": null})).await,
        StatusCode::NO_CONTENT
    );
    let s = wait_status(&tc, &admin, &id, "ACTIVE").await;
    assert_eq!(s["flavor"]["ram"], 2048);
    assert_eq!(ram_used().await, 2048);
    assert_eq!(
        act(json!({"resize": {"flavorRef": flavor}})).await,
        StatusCode::ACCEPTED
    );
    wait_status(&tc, &admin, &id, "VERIFY_RESIZE").await;
    assert_eq!(
        act(json!({"revertResize": null})).await,
        StatusCode::ACCEPTED
    );
    let s = wait_status(&tc, &admin, &id, "ACTIVE").await;
    assert_eq!(
        s["flavor"]["ram"], 2048,
        "revert restores the flavor before the resize"
    );
    assert_eq!(
        act(json!({"confirmResize": null})).await,
        StatusCode::CONFLICT,
        "nothing left to confirm"
    );
    let h = tc
        .compute(Method::GET, "os-hypervisors/detail", &admin, None, V)
        .await;
    assert_eq!(
        h.json["hypervisors"][0]["memory_mb_used"], 2048,
        "the claims of the reverted resize are gone"
    );

    let log = tc
        .compute(
            Method::POST,
            &format!("servers/{id}/action"),
            &admin,
            Some(json!({"os-getConsoleOutput": {"length": 10}})),
            V,
        )
        .await;
    assert!(log.json["output"].as_str().unwrap().contains(&id));
    let actions = tc
        .compute(
            Method::GET,
            &format!("servers/{id}/os-instance-actions"),
            &admin,
            None,
            V,
        )
        .await;
    let names: Vec<&str> = actions.json["instanceActions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert!(
        names.contains(&"create") && names.contains(&"stop") && names.contains(&"rebuild"),
        "{names:?}"
    );

    // Hosts as an admin sees them.
    let h = tc
        .compute(Method::GET, "os-hypervisors/detail", &admin, None, V)
        .await;
    assert_eq!(h.json["hypervisors"][0]["hypervisor_hostname"], "fake-host");
    assert_eq!(h.json["hypervisors"][0]["state"], "up");
    let svc = tc
        .compute(Method::GET, "os-services", &admin, None, "2.69")
        .await;
    assert_eq!(svc.json["services"][0]["state"], "up");

    // Survives a restart of the control plane.
    let tc = tc.restart().await;
    let admin = tc.admin_token().await;
    wait_status(&tc, &admin, &id, "ACTIVE").await;
    let r = tc
        .compute(Method::DELETE, &format!("servers/{id}"), &admin, None, V)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    wait_gone(&tc, &admin, &id).await;
    let usage = tc.compute(Method::GET, "limits", &admin, None, V).await;
    assert_eq!(usage.json["limits"]["absolute"]["totalInstancesUsed"], 0);
    tc.stop().await;
}

#[tokio::test]
async fn scheduling_failures_quotas_and_isolation() {
    let tc = TestCloud::start(Backend::Sqlite).await;
    let admin = tc.admin_token().await;
    let (image, flavor) = setup(&tc, &admin).await;

    // More RAM than the host has: ERROR with a fault that says why.
    let big = tc
        .compute(
            Method::POST,
            "flavors",
            &admin,
            Some(json!({"flavor": {"name": "huge", "ram": 99_999_999, "vcpus": 1, "disk": 1}})),
            V,
        )
        .await;
    let big = big.json["flavor"]["id"].as_str().unwrap().to_owned();
    let admin_project = tc
        .call(Method::GET, "auth/projects", &admin, None)
        .await
        .json["projects"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let q = tc
        .compute(
            Method::PUT,
            &format!("os-quota-sets/{admin_project}"),
            &admin,
            Some(json!({"quota_set": {"ram": -1}})),
            V,
        )
        .await;
    assert_eq!(q.status, StatusCode::OK, "{}", q.json);
    let r = tc
        .compute(
            Method::POST,
            "servers",
            &admin,
            Some(boot("big", &image, &big)),
            V,
        )
        .await;
    let id = r.json["server"]["id"].as_str().unwrap().to_owned();
    let s = wait_status(&tc, &admin, &id, "ERROR").await;
    let msg = s["fault"]["message"].as_str().unwrap();
    assert!(
        msg.contains("No valid host was found") && msg.contains("99999999 MB requested"),
        "{msg}"
    );

    // A boot that fails on its host is retried elsewhere, then fails with
    // the host's error once no host is left.
    let r = tc
        .compute(
            Method::POST,
            "servers",
            &admin,
            Some(boot("doomed", &image, &flavor)),
            V,
        )
        .await;
    let doomed = r.json["server"]["id"].as_str().unwrap().to_owned();
    let s = wait_status(&tc, &admin, &doomed, "ERROR").await;
    let msg = s["fault"]["message"].as_str().unwrap();
    assert!(
        msg.contains("fake-host: an earlier attempt failed here")
            && msg.contains("fake spawn failure"),
        "{msg}"
    );
    assert_eq!(
        tc.compute(
            Method::DELETE,
            &format!("servers/{doomed}"),
            &admin,
            None,
            V
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    wait_gone(&tc, &admin, &doomed).await;

    // Placement shows the host and what is allocated on it.
    let rps = tc
        .send(
            Method::GET,
            &format!("{}/resource_providers", tc.cloud.placement_url),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        rps.json["resource_providers"][0]["name"], "fake-host",
        "{}",
        rps.json
    );
    let rp = rps.json["resource_providers"][0]["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let inv = tc
        .send(
            Method::GET,
            &format!(
                "{}/resource_providers/{rp}/inventories",
                tc.cloud.placement_url
            ),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(inv.json["inventories"]["VCPU"]["allocation_ratio"], 16.0);
    let cands = tc
        .send(
            Method::GET,
            &format!(
                "{}/allocation_candidates?resources=VCPU:1,MEMORY_MB:512",
                tc.cloud.placement_url
            ),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        cands.json["allocation_requests"].as_array().unwrap().len(),
        1,
        "{}",
        cands.json
    );
    let none = tc
        .send(
            Method::GET,
            &format!(
                "{}/allocation_candidates?resources=MEMORY_MB:999999999",
                tc.cloud.placement_url
            ),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        none.json["allocation_requests"].as_array().unwrap().len(),
        0
    );
    let bad = tc
        .send(
            Method::GET,
            &format!(
                "{}/allocation_candidates?resources=GPU:1",
                tc.cloud.placement_url
            ),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // A host whose agent stopped heartbeating shows down (and gets no builds).
    ferro_store::sqlx::query("UPDATE hosts SET heartbeat_at = heartbeat_at - 60000000")
        .execute(tc.cloud.db.pool())
        .await
        .unwrap();
    let svc = tc
        .compute(Method::GET, "os-services", &admin, None, V)
        .await;
    assert_eq!(svc.json["services"][0]["state"], "down", "{}", svc.json);
    let hv = tc
        .compute(Method::GET, "os-hypervisors", &admin, None, V)
        .await;
    assert_eq!(hv.json["hypervisors"][0]["state"], "down");
    let r = tc
        .compute(
            Method::POST,
            "servers",
            &admin,
            Some(boot("while-down", &image, &flavor)),
            V,
        )
        .await;
    let down_id = r.json["server"]["id"].as_str().unwrap().to_owned();
    let s = wait_status(&tc, &admin, &down_id, "ERROR").await;
    assert!(
        s["fault"]["message"]
            .as_str()
            .unwrap()
            .contains("compute service down"),
        "{}",
        s["fault"]
    );
    tc.compute(
        Method::DELETE,
        &format!("servers/{down_id}"),
        &admin,
        None,
        V,
    )
    .await;
    // Deletes finish in the background; until then it counts against the
    // quota checked below.
    wait_gone(&tc, &admin, &down_id).await;
    ferro_store::sqlx::query("UPDATE hosts SET heartbeat_at = heartbeat_at + 60000000")
        .execute(tc.cloud.db.pool())
        .await
        .unwrap();

    // Quota: one instance allowed, the second refused like Nova refuses it.
    let q = tc
        .compute(
            Method::PUT,
            &format!("os-quota-sets/{admin_project}"),
            &admin,
            Some(json!({"quota_set": {"instances": 2}})),
            V,
        )
        .await;
    assert_eq!(q.json["quota_set"]["instances"], 2);
    let ok = tc
        .compute(
            Method::POST,
            "servers",
            &admin,
            Some(boot("a", &image, &flavor)),
            V,
        )
        .await;
    assert_eq!(ok.status, StatusCode::ACCEPTED);
    let a = ok.json["server"]["id"].as_str().unwrap().to_owned();
    let over = tc
        .compute(
            Method::POST,
            "servers",
            &admin,
            Some(boot("b", &image, &flavor)),
            V,
        )
        .await;
    assert_eq!(over.status, StatusCode::FORBIDDEN);
    assert_eq!(
        over.json["forbidden"]["message"],
        "Quota exceeded for instances: Requested 1, but already used 2 of 2 instances"
    );

    // A member of another project sees and touches nothing of admin's.
    let d = tc
        .call(
            Method::POST,
            "domains",
            &admin,
            Some(json!({"domain": {"name": "d1"}})),
        )
        .await
        .id("domain");
    let p = tc
        .call(
            Method::POST,
            "projects",
            &admin,
            Some(json!({"project": {"name": "p1", "domain_id": d}})),
        )
        .await
        .id("project");
    let u = tc
        .call(
            Method::POST,
            "users",
            &admin,
            Some(json!({"user": {"name": "u1", "domain_id": d, "password": "pw"}})),
        )
        .await
        .id("user");
    let member = tc
        .call(Method::GET, "roles?name=member", &admin, None)
        .await
        .json["roles"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    tc.call(
        Method::PUT,
        &format!("projects/{p}/users/{u}/roles/{member}"),
        &admin,
        None,
    )
    .await;
    let t = tc.token("u1", "d1", "pw", "p1", "d1").await;
    assert_eq!(
        tc.compute(Method::GET, &format!("servers/{a}"), &t, None, V)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        tc.compute(Method::DELETE, &format!("servers/{a}"), &t, None, V)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let mine = tc
        .compute(Method::GET, "servers/detail?all_tenants=1", &t, None, V)
        .await;
    assert_eq!(mine.json["servers"].as_array().unwrap().len(), 0);
    assert_eq!(
        tc.compute(Method::GET, "os-hypervisors", &t, None, V)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let fl = tc
        .compute(
            Method::POST,
            "flavors",
            &t,
            Some(json!({"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 1}})),
            V,
        )
        .await;
    assert_eq!(fl.status, StatusCode::FORBIDDEN);
    // The member can boot in its own project (public image and flavor).
    let own = tc
        .compute(
            Method::POST,
            "servers",
            &t,
            Some(boot("mine", &image, &flavor)),
            V,
        )
        .await;
    assert_eq!(own.status, StatusCode::ACCEPTED, "{}", own.json);
    let all = tc
        .compute(Method::GET, "servers/detail?all_tenants=1", &admin, None, V)
        .await;
    assert_eq!(all.json["servers"].as_array().unwrap().len(), 3);
    tc.stop().await;
}

#[tokio::test]
async fn bad_compute_requests_get_nova_errors() {
    let tc = TestCloud::start(Backend::Sqlite).await;
    let admin = tc.admin_token().await;
    let (image, flavor) = setup(&tc, &admin).await;
    let before = ferro_test_support::snapshot(&tc.cloud).await;
    let cases: Vec<(Method, &str, Option<Value>, &str, StatusCode)> = vec![
        (
            Method::POST,
            "servers",
            Some(json!({"server": {"name": "x"}})),
            V,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "servers",
            Some(json!({"server": {"imageRef": image, "flavorRef": flavor, "networks": "none"}})),
            V,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "servers",
            Some(
                json!({"server": {"name": "x", "imageRef": image, "flavorRef": "nope", "networks": "none"}}),
            ),
            V,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "servers",
            Some(
                json!({"server": {"name": "x", "imageRef": "nope", "flavorRef": flavor, "networks": "none"}}),
            ),
            V,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "servers",
            Some(json!({"server": {"name": "x", "imageRef": image, "flavorRef": flavor}})),
            V,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "servers",
            Some(
                json!({"server": {"name": "x", "imageRef": image, "flavorRef": flavor, "networks": "none", "bogus": 1}}),
            ),
            V,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "servers",
            Some(
                json!({"server": {"name": "x", "imageRef": image, "flavorRef": flavor, "networks": "none", "user_data": "%%%"}}),
            ),
            V,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "servers",
            Some(
                json!({"server": {"name": "x", "imageRef": image, "flavorRef": flavor, "networks": "none", "key_name": "nope"}}),
            ),
            V,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "servers",
            Some(
                json!({"server": {"name": "x", "imageRef": image, "flavorRef": flavor, "networks": "none", "availability_zone": "mars"}}),
            ),
            V,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "servers",
            Some(
                json!({"server": {"name": " x ", "imageRef": image, "flavorRef": flavor, "networks": "none"}}),
            ),
            V,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "servers",
            Some(
                json!({"server": {"name": "x", "imageRef": image, "flavorRef": flavor, "networks": "none", "min_count": 0}}),
            ),
            V,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "servers",
            Some(
                json!({"server": {"name": "x", "imageRef": image, "flavorRef": flavor, "networks": "none", "metadata": {"k": 5}}}),
            ),
            V,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "servers",
            Some(json!("server")),
            V,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "servers",
            Some(
                json!({"server": {"name": "x", "imageRef": image, "flavorRef": flavor, "networks": "none"}}),
            ),
            "2.999",
            StatusCode::NOT_ACCEPTABLE,
        ),
        (
            Method::POST,
            "servers",
            Some(
                json!({"server": {"name": "x", "imageRef": image, "flavorRef": flavor, "networks": "none"}}),
            ),
            "two",
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "servers/not-a-server",
            None,
            V,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            "servers/not-a-server/action",
            Some(json!({"os-stop": null})),
            V,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            "flavors",
            Some(json!({"flavor": {"name": "m1.tiny", "ram": 1, "vcpus": 1, "disk": 1}})),
            V,
            StatusCode::CONFLICT,
        ),
        (
            Method::POST,
            "flavors",
            Some(json!({"flavor": {"name": "neg", "ram": -1, "vcpus": 1, "disk": 1}})),
            V,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "flavors",
            Some(json!({"flavor": {"name": "str", "ram": "lots", "vcpus": 1, "disk": 1}})),
            V,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "flavors/detail?is_public=maybe",
            None,
            V,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "os-keypairs",
            Some(json!({"keypair": {"name": "k", "public_key": "not a key"}})),
            V,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "os-keypairs",
            Some(json!({"keypair": {"name": "bad/name", "public_key": "x"}})),
            V,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PUT,
            "os-quota-sets/x",
            Some(json!({"quota_set": {"instances": "many"}})),
            V,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PUT,
            "os-quota-sets/x",
            Some(json!({"quota_set": {"unicorns": 1}})),
            V,
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (i, (method, path, body, version, want)) in cases.into_iter().enumerate() {
        let r = tc
            .compute(method.clone(), path, &admin, body, version)
            .await;
        assert_eq!(r.status, want, "case {i}: {method} {path}: {}", r.json);
        let key = r
            .json
            .as_object()
            .and_then(|o| o.keys().next().cloned())
            .unwrap_or_default();
        assert_eq!(
            r.json[&key]["code"],
            want.as_u16(),
            "case {i}: Nova fault body: {}",
            r.json
        );
    }
    let after = ferro_test_support::snapshot(&tc.cloud).await;
    let changed: Vec<_> = after
        .iter()
        .filter(|l| !before.contains(l) && !l.starts_with("hosts:"))
        .collect();
    assert!(changed.is_empty(), "the database changed: {changed:#?}");
    tc.stop().await;
}

#[tokio::test]
async fn lists_are_paged_like_nova_on_every_backend() {
    for backend in backends() {
        paging(backend).await;
    }
}

/// The `next` link of a list page, as a path under the compute API.
fn next_of(page: &Value, key: &str) -> Option<String> {
    let href = page[format!("{key}_links")]
        .as_array()?
        .iter()
        .find(|l| l["rel"] == "next")?["href"]
        .as_str()?
        .to_owned();
    Some(
        href.split_once("/v2.1/")
            .expect("a compute URL")
            .1
            .to_owned(),
    )
}

/// Every item of a list, following `next` links as openstacksdk does.
async fn walk(tc: &TestCloud, token: &str, first: &str) -> (Vec<String>, Vec<usize>) {
    let (mut ids, mut sizes) = (Vec::new(), Vec::new());
    let mut path = Some(first.to_owned());
    while let Some(p) = path {
        assert!(sizes.len() < 20, "paging never ends at {p}");
        let r = tc.compute(Method::GET, &p, token, None, V).await;
        assert_eq!(r.status, StatusCode::OK, "{p}: {}", r.json);
        let items = r.json["servers"].as_array().unwrap();
        sizes.push(items.len());
        ids.extend(items.iter().map(|s| s["id"].as_str().unwrap().to_owned()));
        path = next_of(&r.json, "servers");
    }
    (ids, sizes)
}

async fn paging(backend: Backend) {
    let tc = TestCloud::start_with_max_limit(backend, 3).await;
    let admin = tc.admin_token().await;
    let (image, flavor) = setup(&tc, &admin).await;
    let mut body = boot("pg", &image, &flavor);
    body["server"]["min_count"] = json!(7);
    body["server"]["max_count"] = json!(7);
    let r = tc
        .compute(Method::POST, "servers", &admin, Some(body), V)
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let other = tc
        .compute(
            Method::POST,
            "servers",
            &admin,
            Some(boot("solo", &image, &flavor)),
            V,
        )
        .await;
    let solo = other.json["server"]["id"].as_str().unwrap().to_owned();

    // Without a limit a page holds max_limit servers and links the next.
    let first = tc
        .compute(Method::GET, "servers/detail", &admin, None, V)
        .await;
    let items = first.json["servers"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{}", first.json);
    assert_eq!(items[0]["id"], json!(solo), "newest first");
    let next = next_of(&first.json, "servers").expect("a next link");
    assert_eq!(
        next,
        format!("servers/detail?marker={}", items[2]["id"].as_str().unwrap())
    );
    let href = first.json["servers_links"][0]["href"].as_str().unwrap();
    assert!(href.starts_with(&tc.cloud.compute_url), "{href}");

    // Following the links reads each server once, and the last page has none.
    let (ids, sizes) = walk(&tc, &admin, "servers/detail").await;
    assert_eq!(sizes, vec![3, 3, 2]);
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 8, "{ids:?}");
    // The brief list pages the same way, and a limit above max_limit is capped.
    let (brief, sizes) = walk(&tc, &admin, "servers?limit=100").await;
    assert_eq!(brief, ids);
    assert_eq!(sizes, vec![3, 3, 2]);
    // A smaller limit is kept in the next link.
    let r = tc
        .compute(Method::GET, "servers?limit=2", &admin, None, V)
        .await;
    let next = next_of(&r.json, "servers").unwrap();
    assert!(next.starts_with("servers?limit=2&marker="), "{next}");
    // A filter read after the marker: the seven "pg" servers, in pages.
    let (pg, sizes) = walk(&tc, &admin, "servers/detail?name=pg").await;
    assert_eq!(sizes, vec![3, 3, 1]);
    assert!(!pg.contains(&solo));
    // An unknown marker, and one of another project's server, are 400s.
    let (_, member) = tc.project_user(&admin, "pager", "member").await;
    for (who, m) in [(&admin, "nope".to_owned()), (&member, solo.clone())] {
        let r = tc
            .compute(Method::GET, &format!("servers?marker={m}"), who, None, V)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
        assert_eq!(
            r.json["badRequest"]["message"],
            format!("marker [{m}] not found")
        );
    }
    tc.stop().await;
}

#[tokio::test]
async fn concurrent_actions_on_one_server_one_wins() {
    for backend in backends() {
        races(backend).await;
    }
}

/// Fires the same request `n` times at once; returns the statuses.
async fn at_once(
    tc: &TestCloud,
    token: &str,
    method: Method,
    path: &str,
    bodies: Vec<Option<Value>>,
) -> Vec<StatusCode> {
    let calls = bodies
        .into_iter()
        .map(|b| tc.compute(method.clone(), path, token, b, V));
    futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.status)
        .collect()
}

fn count_of(statuses: &[StatusCode], want: StatusCode) -> usize {
    statuses.iter().filter(|s| **s == want).count()
}

async fn races(backend: Backend) {
    let tc = TestCloud::start(backend).await;
    let admin = tc.admin_token().await;
    let (image, flavor) = setup(&tc, &admin).await;
    let r = tc
        .compute(
            Method::POST,
            "servers",
            &admin,
            Some(boot("racer", &image, &flavor)),
            V,
        )
        .await;
    let id = r.json["server"]["id"].as_str().unwrap().to_owned();
    wait_status(&tc, &admin, &id, "ACTIVE").await;
    let action = format!("servers/{id}/action");

    // Eight stops at once: one is accepted, seven get Nova's 409.
    let stops = at_once(
        &tc,
        &admin,
        Method::POST,
        &action,
        vec![Some(json!({"os-stop": null})); 8],
    )
    .await;
    assert_eq!(count_of(&stops, StatusCode::ACCEPTED), 1, "{stops:?}");
    assert_eq!(count_of(&stops, StatusCode::CONFLICT), 7, "{stops:?}");
    wait_status(&tc, &admin, &id, "SHUTOFF").await;
    let r = tc
        .compute(
            Method::POST,
            &action,
            &admin,
            Some(json!({"os-start": null})),
            V,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    wait_status(&tc, &admin, &id, "ACTIVE").await;

    // Four resizes at once, to four flavors: one wins and only its claim stays.
    let mut flavors = Vec::new();
    for i in 0..4 {
        let f = tc
            .compute(Method::POST, "flavors", &admin,
                Some(json!({"flavor": {"name": format!("race{i}"), "ram": 2048 + i * 128, "vcpus": 1, "disk": 20}})), "2.61")
            .await;
        flavors.push(f.json["flavor"]["id"].as_str().unwrap().to_owned());
    }
    let bodies = flavors
        .iter()
        .map(|f| Some(json!({"resize": {"flavorRef": f}})))
        .collect();
    let resizes = at_once(&tc, &admin, Method::POST, &action, bodies).await;
    assert_eq!(count_of(&resizes, StatusCode::ACCEPTED), 1, "{resizes:?}");
    assert_eq!(count_of(&resizes, StatusCode::CONFLICT), 3, "{resizes:?}");
    let srv = wait_status(&tc, &admin, &id, "VERIFY_RESIZE").await;
    let won = srv["flavor"]["original_name"].as_str().unwrap().to_owned();
    assert!(won.starts_with("race"), "{srv}");
    let (claims,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM allocations WHERE consumer_id = $1")
            .bind(format!("{id}-resize"))
            .fetch_one(tc.cloud.db.pool())
            .await
            .unwrap();
    assert_eq!(claims, 1);
    // Confirm and revert at once: one of them.
    let ends = at_once(
        &tc,
        &admin,
        Method::POST,
        &action,
        vec![
            Some(json!({"confirmResize": null})),
            Some(json!({"revertResize": null})),
        ],
    )
    .await;
    assert_eq!(count_of(&ends, StatusCode::CONFLICT), 1, "{ends:?}");
    assert_eq!(
        ends.len() - count_of(&ends, StatusCode::CONFLICT),
        1,
        "{ends:?}"
    );
    wait_status(&tc, &admin, &id, "ACTIVE").await;
    let (left,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM allocations WHERE consumer_id LIKE $1")
            .bind(format!("{id}%"))
            .fetch_one(tc.cloud.db.pool())
            .await
            .unwrap();
    assert_eq!(left, 1, "one allocation, for the flavor that stayed");

    // Four deletes at once: as in Nova, a delete is accepted in any task
    // state, so each gets 204 (or 404 once it is gone); one saga deletes it.
    let deletes = at_once(
        &tc,
        &admin,
        Method::DELETE,
        &format!("servers/{id}"),
        vec![None; 4],
    )
    .await;
    let accepted = count_of(&deletes, StatusCode::NO_CONTENT);
    assert!(accepted >= 1, "{deletes:?}");
    assert_eq!(
        accepted + count_of(&deletes, StatusCode::NOT_FOUND),
        4,
        "{deletes:?}"
    );
    let (sagas,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sagas WHERE resource_id = $1")
        .bind(&id)
        .fetch_one(tc.cloud.db.pool())
        .await
        .unwrap();
    assert!(sagas <= 1, "one delete saga at most, found {sagas}");
    wait_gone(&tc, &admin, &id).await;
    tc.stop().await;
}
