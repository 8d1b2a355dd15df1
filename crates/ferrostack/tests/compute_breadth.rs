//! Nova APIs beyond the server lifecycle, with the fake hypervisor: server
//! metadata, a server's ips and security groups, server groups enforced by
//! the scheduler, host aggregates and their zones, hypervisor statistics,
//! tenant usage, lock ownership, create validation and the
//! `x-compute-request-id` header. Each scenario runs on every backend.

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
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A cloud with an image and a flavor; returns them with the admin token.
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
            V,
        )
        .await;
    assert_eq!(f.status, StatusCode::OK, "{}", f.json);
    let flavor = f.json["flavor"]["id"].as_str().unwrap().to_owned();
    (tc, admin, image, flavor)
}

async fn boot(tc: &TestCloud, token: &str, body: Value) -> String {
    let r = tc
        .compute(Method::POST, "servers", token, Some(body), V)
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    r.json["server"]["id"].as_str().unwrap().to_owned()
}

fn server(name: &str, image: &str, flavor: &str) -> Value {
    json!({"server": {"name": name, "imageRef": image, "flavorRef": flavor, "networks": "none"}})
}

#[tokio::test]
async fn server_metadata_like_nova() {
    for b in backends() {
        metadata(b).await;
    }
}

async fn metadata(backend: Backend) {
    let (tc, admin, image, flavor) = setup(backend).await;
    let (_, member) = tc.project_user(&admin, "p1", "member").await;
    let (_, other) = tc.project_user(&admin, "p2", "member").await;
    let mut body = server("m", &image, &flavor);
    body["server"]["metadata"] = json!({"a": "1"});
    let id = boot(&tc, &member, body).await;
    wait_status(&tc, &member, &id, "ACTIVE").await;
    let path = format!("servers/{id}/metadata");
    let call = |m: Method, p: String, b: Option<Value>, t: &str| {
        let (tc, t) = (&tc, t.to_owned());
        async move { tc.compute(m, &p, &t, b, V).await }
    };

    let r = call(
        Method::POST,
        path.clone(),
        Some(json!({"metadata": {"b": "2"}})),
        &member,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(
        r.json,
        json!({"metadata": {"a": "1", "b": "2"}}),
        "POST merges"
    );
    let r = call(
        Method::PUT,
        format!("{path}/c"),
        Some(json!({"meta": {"c": "3"}})),
        &member,
    )
    .await;
    assert_eq!(
        (r.status, r.json.clone()),
        (StatusCode::OK, json!({"meta": {"c": "3"}}))
    );
    let r = call(Method::GET, format!("{path}/b"), None, &member).await;
    assert_eq!(
        (r.status, r.json.clone()),
        (StatusCode::OK, json!({"meta": {"b": "2"}}))
    );
    let r = call(Method::DELETE, format!("{path}/b"), None, &member).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = call(Method::GET, format!("{path}/b"), None, &member).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.json["itemNotFound"]["message"],
        "Metadata item was not found"
    );
    let r = call(Method::DELETE, format!("{path}/b"), None, &member).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(
        Method::PUT,
        path.clone(),
        Some(json!({"metadata": {"x": "y"}})),
        &member,
    )
    .await;
    assert_eq!(
        (r.status, r.json.clone()),
        (StatusCode::OK, json!({"metadata": {"x": "y"}})),
        "PUT replaces"
    );
    let shown = tc
        .compute(Method::GET, &format!("servers/{id}"), &member, None, V)
        .await;
    assert_eq!(shown.json["server"]["metadata"], json!({"x": "y"}));

    // Refusals: each changes nothing.
    let refusals = [
        (
            Method::PUT,
            format!("{path}/k"),
            json!({"meta": {"other": "v"}}),
            StatusCode::BAD_REQUEST,
            "Request body and URI mismatch",
        ),
        (
            Method::PUT,
            format!("{path}/k"),
            json!({"meta": {"k": "v", "l": "w"}}),
            StatusCode::BAD_REQUEST,
            "Request body contains too many items",
        ),
        (
            Method::POST,
            path.clone(),
            json!({"metadata": {"k": 5}}),
            StatusCode::BAD_REQUEST,
            "must be a string",
        ),
        (
            Method::POST,
            path.clone(),
            json!({"metadata": {"": "v"}}),
            StatusCode::BAD_REQUEST,
            "keys are 1 to 255",
        ),
        (
            Method::POST,
            path.clone(),
            json!({"nothing": {}}),
            StatusCode::BAD_REQUEST,
            "'metadata' is a required property",
        ),
    ];
    for (m, p, b, status, text) in refusals {
        let r = call(m.clone(), p.clone(), Some(b.clone()), &member).await;
        assert_eq!(r.status, status, "{m} {p} {b}: {}", r.json);
        assert!(
            r.json["badRequest"]["message"]
                .as_str()
                .unwrap_or("")
                .contains(text),
            "{}",
            r.json
        );
    }
    // metadata_items quota: 128 by default.
    let many: serde_json::Map<String, Value> =
        (0..129).map(|i| (format!("k{i}"), json!("v"))).collect();
    let r = call(
        Method::POST,
        path.clone(),
        Some(json!({"metadata": many})),
        &member,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json);
    assert!(r.json["forbidden"]["message"]
        .as_str()
        .unwrap()
        .contains("metadata_items"));
    // Another project's member doesn't see it; the admin does.
    let r = call(Method::GET, path.clone(), None, &other).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(
        Method::POST,
        path.clone(),
        Some(json!({"metadata": {"z": "1"}})),
        &other,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(Method::GET, path.clone(), None, &admin).await;
    assert_eq!(
        (r.status, r.json.clone()),
        (StatusCode::OK, json!({"metadata": {"x": "y"}}))
    );
    // A locked server refuses its member's changes.
    let r = call(
        Method::POST,
        format!("servers/{id}/action"),
        Some(json!({"lock": null})),
        &member,
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = call(
        Method::POST,
        path.clone(),
        Some(json!({"metadata": {"z": "1"}})),
        &member,
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.json);
    let r = call(Method::GET, path, None, &member).await;
    assert_eq!(r.json, json!({"metadata": {"x": "y"}}), "nothing changed");
    tc.stop().await;
}

#[tokio::test]
async fn server_groups_are_enforced_by_the_scheduler() {
    for b in backends() {
        server_groups(b).await;
    }
}

async fn server_groups(backend: Backend) {
    let (tc, admin, image, flavor) = setup(backend).await;
    let (p1, member) = tc.project_user(&admin, "p1", "member").await;
    let (_, other) = tc.project_user(&admin, "p2", "member").await;
    let create = |body: Value, version: &'static str| {
        let (tc, t) = (&tc, member.clone());
        async move {
            tc.compute(Method::POST, "os-server-groups", &t, Some(body), version)
                .await
        }
    };
    // 2.64: policy and rules.
    let r = create(
        json!({"server_group": {"name": "anti", "policy": "anti-affinity"}}),
        "2.64",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let g = &r.json["server_group"];
    assert_eq!(
        (
            g["policy"].clone(),
            g["rules"].clone(),
            g["members"].clone()
        ),
        (json!("anti-affinity"), json!({}), json!([]))
    );
    assert!(g.get("policies").is_none() && g.get("metadata").is_none());
    let anti = g["id"].as_str().unwrap().to_owned();
    // 2.1: policies and metadata, no project or user.
    let r = create(
        json!({"server_group": {"name": "aff", "policies": ["affinity"]}}),
        "2.1",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let g = &r.json["server_group"];
    assert_eq!(
        (g["policies"].clone(), g["metadata"].clone()),
        (json!(["affinity"]), json!({}))
    );
    assert!(g.get("policy").is_none() && g.get("project_id").is_none());
    let aff = g["id"].as_str().unwrap().to_owned();
    for (body, version, text) in [
        (
            json!({"server_group": {"name": "s", "policies": ["soft-affinity"]}}),
            "2.14",
            "not one of the allowed policies",
        ),
        (
            json!({"server_group": {"name": "s", "policies": ["affinity", "anti-affinity"]}}),
            "2.1",
            "Exactly one policy",
        ),
        (
            json!({"server_group": {"name": "s", "policy": "affinity", "rules": {"max_server_per_host": 2}}}),
            "2.64",
            "Only anti-affinity",
        ),
        (
            json!({"server_group": {"name": "s", "policy": "anti-affinity", "rules": {"max_server_per_host": 0}}}),
            "2.64",
            "at least 1",
        ),
        (
            json!({"server_group": {"name": "s", "policies": ["affinity"]}}),
            "2.64",
            "Additional properties",
        ),
        (
            json!({"server_group": {"name": "", "policy": "affinity"}}),
            "2.64",
            "name",
        ),
    ] {
        let r = create(body.clone(), version).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{body} at {version}: {}",
            r.json
        );
        assert!(
            r.json["badRequest"]["message"]
                .as_str()
                .unwrap()
                .contains(text),
            "{}",
            r.json
        );
    }

    // Anti-affinity on a one-host cloud: the second member finds no host.
    let with_group = |name: &str, group: &str| {
        let mut b = server(name, &image, &flavor);
        b["os:scheduler_hints"] = json!({"group": group});
        b
    };
    let s1 = boot(&tc, &member, with_group("a1", &anti)).await;
    wait_status(&tc, &member, &s1, "ACTIVE").await;
    let s2 = boot(&tc, &member, with_group("a2", &anti)).await;
    let failed = wait_status(&tc, &member, &s2, "ERROR").await;
    let fault = failed["fault"]["message"].as_str().unwrap();
    assert!(
        fault.starts_with("No valid host was found.") && fault.contains("anti-affinity"),
        "{fault}"
    );
    // Affinity: both on the one host.
    let s3 = boot(&tc, &member, with_group("f1", &aff)).await;
    let s4 = boot(&tc, &member, with_group("f2", &aff)).await;
    wait_status(&tc, &member, &s3, "ACTIVE").await;
    wait_status(&tc, &member, &s4, "ACTIVE").await;
    let shown = tc
        .compute(
            Method::GET,
            &format!("os-server-groups/{aff}"),
            &member,
            None,
            V,
        )
        .await;
    assert_eq!(shown.json["server_group"]["members"], json!([s3, s4]));
    // A server shows its group from 2.71.
    let at71 = tc
        .compute(Method::GET, &format!("servers/{s3}"), &member, None, "2.71")
        .await;
    assert_eq!(at71.json["server"]["server_groups"], json!([aff]));
    let at70 = tc
        .compute(Method::GET, &format!("servers/{s3}"), &member, None, "2.70")
        .await;
    assert!(at70.json["server"].get("server_groups").is_none());
    // Bad hints: not a UUID, or a group that isn't the caller's.
    for g in ["not-a-uuid", "00000000-0000-0000-0000-000000000000"] {
        let r = tc
            .compute(
                Method::POST,
                "servers",
                &member,
                Some(with_group("x", g)),
                V,
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{g}: {}", r.json);
    }
    let r = tc
        .compute(
            Method::POST,
            "servers",
            &other,
            Some(with_group("x", &anti)),
            V,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "another project's group: {}",
        r.json
    );
    // Isolation and listing.
    let r = tc
        .compute(
            Method::GET,
            &format!("os-server-groups/{anti}"),
            &other,
            None,
            V,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = tc
        .compute(Method::GET, "os-server-groups", &other, None, V)
        .await;
    assert_eq!(r.json["server_groups"], json!([]));
    let r = tc
        .compute(
            Method::GET,
            "os-server-groups?all_projects=True",
            &admin,
            None,
            V,
        )
        .await;
    assert_eq!(r.json["server_groups"].as_array().unwrap().len(), 2);
    let r = tc
        .compute(
            Method::DELETE,
            &format!("os-server-groups/{anti}"),
            &other,
            None,
            V,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Deleting a member leaves the group; deleting the group leaves the server.
    let r = tc
        .compute(Method::DELETE, &format!("servers/{s4}"), &member, None, V)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let start = Instant::now();
    loop {
        let shown = tc
            .compute(
                Method::GET,
                &format!("os-server-groups/{aff}"),
                &member,
                None,
                V,
            )
            .await;
        if shown.json["server_group"]["members"] == json!([s3]) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{}", shown.json);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = tc
        .compute(
            Method::DELETE,
            &format!("os-server-groups/{aff}"),
            &member,
            None,
            V,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = tc
        .compute(Method::GET, &format!("servers/{s3}"), &member, None, "2.71")
        .await;
    assert_eq!(r.json["server"]["server_groups"], json!([]));
    // Quota: server_groups (one group left, a limit of two).
    let q = tc
        .compute(
            Method::PUT,
            &format!("os-quota-sets/{p1}"),
            &admin,
            Some(json!({"quota_set": {"server_groups": 2}})),
            V,
        )
        .await;
    assert_eq!(q.status, StatusCode::OK, "{}", q.json);
    let r = create(
        json!({"server_group": {"name": "g2", "policy": "soft-affinity"}}),
        "2.64",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let r = create(
        json!({"server_group": {"name": "g3", "policy": "soft-affinity"}}),
        "2.64",
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json);
    assert_eq!(
        r.json["forbidden"]["message"],
        "Quota exceeded, too many server groups."
    );
    tc.stop().await;
}

#[tokio::test]
async fn aggregates_set_availability_zones() {
    for b in backends() {
        aggregates(b).await;
    }
}

async fn aggregates(backend: Backend) {
    let (tc, admin, image, flavor) = setup(backend).await;
    let (_, member) = tc.project_user(&admin, "p1", "member").await;
    let host = tc
        .compute(Method::GET, "os-hypervisors", &admin, None, V)
        .await
        .json["hypervisors"][0]["hypervisor_hostname"]
        .as_str()
        .unwrap()
        .to_owned();
    let agg = |m: Method, p: &str, b: Option<Value>| {
        let (tc, t, p) = (&tc, admin.clone(), p.to_owned());
        async move { tc.compute(m, &p, &t, b, V).await }
    };
    let r = agg(
        Method::POST,
        "os-aggregates",
        Some(json!({"aggregate": {"name": "rack1", "availability_zone": "az1"}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let a = &r.json["aggregate"];
    assert!(a["id"].is_i64() && a["uuid"].is_string() && a.get("hosts").is_none());
    assert_eq!(a["availability_zone"], "az1");
    let id = a["id"].as_i64().unwrap();
    let act = |body: Value| {
        let agg = &agg;
        async move {
            agg(
                Method::POST,
                &format!("os-aggregates/{id}/action"),
                Some(body),
            )
            .await
        }
    };
    let r = act(json!({"add_host": {"host": host}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["aggregate"]["hosts"], json!([host]));
    assert_eq!(
        r.json["aggregate"]["metadata"],
        json!({"availability_zone": "az1"})
    );
    let zones = tc
        .compute(Method::GET, "os-availability-zone", &member, None, V)
        .await;
    assert_eq!(
        zones.json["availabilityZoneInfo"][0]["zoneName"], "az1",
        "{}",
        zones.json
    );
    // Boots follow the zone.
    let mut b = server("z", &image, &flavor);
    b["server"]["availability_zone"] = json!("az1");
    let s = boot(&tc, &member, b).await;
    let shown = wait_status(&tc, &member, &s, "ACTIVE").await;
    assert_eq!(shown["OS-EXT-AZ:availability_zone"], "az1");
    let mut b = server("n", &image, &flavor);
    b["server"]["availability_zone"] = json!("nova");
    let r = tc
        .compute(Method::POST, "servers", &member, Some(b), V)
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "no host is in nova any more: {}",
        r.json
    );

    let refusals = [
        (
            Method::POST,
            "os-aggregates".to_owned(),
            json!({"aggregate": {"name": "rack1"}}),
            StatusCode::CONFLICT,
        ),
        (
            Method::POST,
            format!("os-aggregates/{id}/action"),
            json!({"add_host": {"host": host}}),
            StatusCode::CONFLICT,
        ),
        (
            Method::POST,
            format!("os-aggregates/{id}/action"),
            json!({"add_host": {"host": "nowhere"}}),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            format!("os-aggregates/{id}/action"),
            json!({"remove_host": {"host": "nowhere"}}),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            format!("os-aggregates/{id}/action"),
            json!({"fly": {}}),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "os-aggregates".to_owned(),
            json!({"aggregate": {"name": "x", "color": "red"}}),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::DELETE,
            format!("os-aggregates/{id}"),
            Value::Null,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "os-aggregates/999".to_owned(),
            Value::Null,
            StatusCode::NOT_FOUND,
        ),
    ];
    for (m, p, body, want) in refusals {
        let r = agg(m.clone(), &p, (!body.is_null()).then_some(body.clone())).await;
        assert_eq!(r.status, want, "{m} {p} {body}: {}", r.json);
    }
    // A second aggregate can't put the host in another zone.
    let r = agg(
        Method::POST,
        "os-aggregates",
        Some(json!({"aggregate": {"name": "rack2", "availability_zone": "az2"}})),
    )
    .await;
    let id2 = r.json["aggregate"]["id"].as_i64().unwrap();
    let r = agg(
        Method::POST,
        &format!("os-aggregates/{id2}/action"),
        Some(json!({"add_host": {"host": host}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert!(
        r.json["badRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("az1"),
        "{}",
        r.json
    );
    // Metadata, then back to the default zone.
    let r = act(json!({"set_metadata": {"metadata": {"ssd": "true", "availability_zone": null}}}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["aggregate"]["metadata"], json!({"ssd": "true"}));
    assert_eq!(r.json["aggregate"]["availability_zone"], Value::Null);
    let zones = tc
        .compute(Method::GET, "os-availability-zone", &member, None, V)
        .await;
    assert_eq!(zones.json["availabilityZoneInfo"][0]["zoneName"], "nova");
    let r = agg(
        Method::PUT,
        &format!("os-aggregates/{id}"),
        Some(json!({"aggregate": {"name": "rack1b"}})),
    )
    .await;
    assert_eq!(
        (r.status, r.json["aggregate"]["name"].clone()),
        (StatusCode::OK, json!("rack1b"))
    );
    let r = act(json!({"remove_host": {"host": host}})).await;
    assert_eq!(
        (r.status, r.json["aggregate"]["hosts"].clone()),
        (StatusCode::OK, json!([]))
    );
    let r = agg(Method::DELETE, &format!("os-aggregates/{id}"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = agg(Method::GET, "os-aggregates", None).await;
    assert_eq!(r.json["aggregates"].as_array().unwrap().len(), 1);
    // Members get 403 on every aggregate call.
    for (m, p) in [
        (Method::GET, "os-aggregates".to_owned()),
        (Method::GET, format!("os-aggregates/{id2}")),
        (Method::DELETE, format!("os-aggregates/{id2}")),
    ] {
        let r = tc.compute(m.clone(), &p, &member, None, V).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{m} {p}");
    }
    tc.stop().await;
}

#[tokio::test]
async fn hypervisor_statistics_usage_and_server_views() {
    for b in backends() {
        statistics(b).await;
    }
}

async fn statistics(backend: Backend) {
    let (tc, admin, image, flavor) = setup(backend).await;
    let (p1, member) = tc.project_user(&admin, "p1", "member").await;
    let (p2, other) = tc.project_user(&admin, "p2", "member").await;
    let s = boot(&tc, &member, server("u", &image, &flavor)).await;
    wait_status(&tc, &member, &s, "ACTIVE").await;

    let r = tc
        .compute(
            Method::GET,
            "os-hypervisors/statistics",
            &admin,
            None,
            "2.1",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let st = &r.json["hypervisor_statistics"];
    assert_eq!(
        (
            st["count"].clone(),
            st["running_vms"].clone(),
            st["vcpus_used"].clone(),
            st["memory_mb_used"].clone()
        ),
        (json!(1), json!(1), json!(1), json!(256))
    );
    let r = tc
        .compute(
            Method::GET,
            "os-hypervisors/statistics",
            &member,
            None,
            "2.1",
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let hv = tc
        .compute(Method::GET, "os-hypervisors", &admin, None, "2.1")
        .await;
    let hid = hv.json["hypervisors"][0]["id"].clone();
    let name = hv.json["hypervisors"][0]["hypervisor_hostname"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = tc
        .compute(
            Method::GET,
            &format!("os-hypervisors/{hid}/uptime"),
            &admin,
            None,
            "2.1",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert!(r.json["hypervisor"]["uptime"]
        .as_str()
        .unwrap()
        .contains(" up "));
    let r = tc
        .compute(
            Method::GET,
            &format!("os-hypervisors/{name}/servers"),
            &admin,
            None,
            "2.1",
        )
        .await;
    assert_eq!(
        r.json["hypervisors"][0]["servers"][0]["uuid"],
        json!(s),
        "{}",
        r.json
    );
    let r = tc
        .compute(
            Method::GET,
            &format!("os-hypervisors/{name}/search"),
            &admin,
            None,
            "2.1",
        )
        .await;
    assert_eq!(r.json["hypervisors"][0]["hypervisor_hostname"], json!(name));
    let r = tc
        .compute(
            Method::GET,
            "os-hypervisors/nomatch/search",
            &admin,
            None,
            "2.1",
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = tc
        .compute(
            Method::GET,
            &format!("os-hypervisors/{name}/search"),
            &admin,
            None,
            "2.53",
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "replaced by hypervisor_hostname_pattern at 2.53"
    );

    // Usage: the server has run since launch; the period bounds it.
    let period = "start=2000-01-01T00:00:00&end=2100-01-01T00:00:00.000000";
    let r = tc
        .compute(
            Method::GET,
            &format!("os-simple-tenant-usage?{period}&detailed=1"),
            &admin,
            None,
            V,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let mine: Vec<&Value> = r.json["tenant_usages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["tenant_id"] == json!(p1))
        .collect();
    assert_eq!(mine.len(), 1, "{}", r.json);
    assert_eq!(mine[0]["server_usages"][0]["instance_id"], json!(s));
    assert_eq!(mine[0]["server_usages"][0]["memory_mb"], 256);
    assert_eq!(mine[0]["server_usages"][0]["state"], "active");
    let r = tc
        .compute(
            Method::GET,
            &format!("os-simple-tenant-usage/{p1}?{period}"),
            &member,
            None,
            V,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["tenant_usage"]["tenant_id"], json!(p1));
    assert!(r.json["tenant_usage"]["total_hours"].as_f64().unwrap() > 0.0);
    let r = tc
        .compute(
            Method::GET,
            &format!("os-simple-tenant-usage/{p2}?{period}"),
            &other,
            None,
            V,
        )
        .await;
    assert_eq!(
        (r.status, r.json.clone()),
        (StatusCode::OK, json!({"tenant_usage": {}}))
    );
    let r = tc
        .compute(
            Method::GET,
            &format!("os-simple-tenant-usage/{p1}?{period}"),
            &other,
            None,
            V,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = tc
        .compute(Method::GET, "os-simple-tenant-usage", &member, None, V)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = tc
        .compute(
            Method::GET,
            "os-simple-tenant-usage?start=2030-01-01T00:00:00&end=2020-01-01T00:00:00",
            &admin,
            None,
            V,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = tc
        .compute(
            Method::GET,
            "os-simple-tenant-usage?start=yesterday",
            &admin,
            None,
            V,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // A server without ports: no addresses, no groups.
    let r = tc
        .compute(Method::GET, &format!("servers/{s}/ips"), &member, None, V)
        .await;
    assert_eq!(
        (r.status, r.json.clone()),
        (StatusCode::OK, json!({"addresses": {}}))
    );
    let r = tc
        .compute(
            Method::GET,
            &format!("servers/{s}/ips/nonet"),
            &member,
            None,
            V,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = tc
        .compute(
            Method::GET,
            &format!("servers/{s}/os-security-groups"),
            &member,
            None,
            V,
        )
        .await;
    assert_eq!(
        (r.status, r.json.clone()),
        (StatusCode::OK, json!({"security_groups": []}))
    );
    let r = tc
        .compute(
            Method::GET,
            &format!("servers/{s}/os-security-groups"),
            &other,
            None,
            V,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Every answer carries Nova's request id header too.
    assert_eq!(
        r.headers["x-compute-request-id"],
        r.headers["x-openstack-request-id"]
    );
    tc.stop().await;
}

#[tokio::test]
async fn a_server_on_a_network_shows_its_ips_and_groups_as_nova() {
    let (tc, admin, image, flavor) = setup(Backend::Sqlite).await;
    let (_, member) = tc.project_user(&admin, "p1", "member").await;
    let net = tc
        .network(
            Method::POST,
            "networks",
            &member,
            Some(json!({"network": {"name": "n1"}})),
        )
        .await;
    assert_eq!(net.status, StatusCode::CREATED, "{}", net.json);
    let net_id = net.json["network"]["id"].as_str().unwrap().to_owned();
    let sub = tc
        .network(
            Method::POST,
            "subnets",
            &member,
            Some(json!({"subnet": {"network_id": net_id, "cidr": "10.9.0.0/24", "ip_version": 4}})),
        )
        .await;
    assert_eq!(sub.status, StatusCode::CREATED, "{}", sub.json);
    let groups = tc
        .network(Method::GET, "security-groups", &member, None)
        .await;
    let default = groups.json["security_groups"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rule = tc.network(Method::POST, "security-group-rules", &member, Some(json!({"security_group_rule": {
        "security_group_id": default, "direction": "ingress", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22,
        "remote_ip_prefix": "0.0.0.0/0", "ethertype": "IPv4"}}))).await;
    assert_eq!(rule.status, StatusCode::CREATED, "{}", rule.json);
    let icmp = tc.network(Method::POST, "security-group-rules", &member, Some(json!({"security_group_rule": {
        "security_group_id": default, "direction": "ingress", "protocol": "icmp", "ethertype": "IPv4"}}))).await;
    assert_eq!(icmp.status, StatusCode::CREATED, "{}", icmp.json);
    let mut body = server("n", &image, &flavor);
    body["server"]["networks"] = json!([{"uuid": net_id}]);
    let s = boot(&tc, &member, body).await;
    wait_status(&tc, &member, &s, "ACTIVE").await;

    let r = tc
        .compute(Method::GET, &format!("servers/{s}/ips"), &member, None, V)
        .await;
    let addr = r.json["addresses"]["n1"][0].clone();
    assert_eq!(addr["version"], 4);
    assert!(
        addr["addr"].as_str().unwrap().starts_with("10.9.0."),
        "{}",
        r.json
    );
    let r = tc
        .compute(
            Method::GET,
            &format!("servers/{s}/ips/n1"),
            &member,
            None,
            V,
        )
        .await;
    assert_eq!(r.json, json!({"n1": [addr]}));

    // Its port, as `os-interface` shows it (Tempest's basic scenario reads it).
    let r = tc
        .compute(
            Method::GET,
            &format!("servers/{s}/os-interface"),
            &member,
            None,
            V,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let att = r.json["interfaceAttachments"].as_array().unwrap();
    assert_eq!(att.len(), 1, "{}", r.json);
    assert_eq!(att[0]["net_id"], json!(net_id));
    assert_eq!(att[0]["fixed_ips"][0]["ip_address"], addr["addr"]);
    assert_eq!(
        att[0]["fixed_ips"][0]["subnet_id"],
        sub.json["subnet"]["id"]
    );
    assert!(att[0].get("tag").is_some(), "tag from 2.70");
    let port = att[0]["port_id"].as_str().unwrap().to_owned();
    let r = tc
        .compute(
            Method::GET,
            &format!("servers/{s}/os-interface/{port}"),
            &member,
            None,
            "2.1",
        )
        .await;
    assert_eq!(
        r.json["interfaceAttachment"]["mac_addr"],
        att[0]["mac_addr"]
    );
    assert!(
        r.json["interfaceAttachment"].get("tag").is_none(),
        "no tag at 2.1"
    );
    let r = tc
        .compute(
            Method::GET,
            &format!("servers/{s}/os-interface/00000000-0000-0000-0000-000000000000"),
            &member,
            None,
            V,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = tc
        .compute(
            Method::POST,
            &format!("servers/{s}/os-interface"),
            &member,
            Some(json!({"interfaceAttachment": {"net_id": net_id}})),
            V,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CONFLICT,
        "hot-plug is not built: {}",
        r.json
    );
    assert!(r.json["conflictingRequest"]["message"]
        .as_str()
        .unwrap()
        .contains("hot-plug"));
    let (_, other) = tc.project_user(&admin, "p2", "member").await;
    let r = tc
        .compute(
            Method::GET,
            &format!("servers/{s}/os-interface"),
            &other,
            None,
            V,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let r = tc
        .compute(
            Method::GET,
            &format!("servers/{s}/os-security-groups"),
            &member,
            None,
            V,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let g = &r.json["security_groups"][0];
    assert_eq!(
        (g["id"].clone(), g["name"].clone()),
        (json!(default), json!("default"))
    );
    let rules = g["rules"].as_array().unwrap();
    // Neutron's default group: ingress from itself (IPv4 and IPv6), and ours.
    let ssh = rules
        .iter()
        .find(|r| r["id"] == rule.json["security_group_rule"]["id"])
        .expect("the ssh rule");
    assert_eq!(
        *ssh,
        json!({"id": ssh["id"], "parent_group_id": default, "ip_protocol": "tcp", "from_port": 22, "to_port": 22,
                            "group": {}, "ip_range": {"cidr": "0.0.0.0/0"}})
    );
    let ping = rules
        .iter()
        .find(|r| r["id"] == icmp.json["security_group_rule"]["id"])
        .expect("the icmp rule");
    assert_eq!(
        (ping["from_port"].clone(), ping["to_port"].clone()),
        (json!(-1), json!(-1))
    );
    let from_group: Vec<&Value> = rules
        .iter()
        .filter(|r| r["group"]["name"] == "default")
        .collect();
    assert_eq!(from_group.len(), 2, "{rules:?}");
    assert_eq!(from_group[0]["ip_range"], json!({}));
    assert!(rules.iter().all(|r| r["parent_group_id"] == json!(default)));
    assert_eq!(rules.len(), 4, "egress rules are not shown: {rules:?}");
    tc.stop().await;
}

#[tokio::test]
async fn locks_remember_who_made_them_and_creates_are_checked() {
    for b in backends() {
        locks_and_creates(b).await;
    }
}

async fn locks_and_creates(backend: Backend) {
    let (tc, admin, image, flavor) = setup(backend).await;
    let (_, member) = tc.project_user(&admin, "p1", "member").await;
    let (_, outsider) = tc.project_user(&admin, "p2", "member").await;
    let s = boot(&tc, &member, server("l", &image, &flavor)).await;
    wait_status(&tc, &member, &s, "ACTIVE").await;
    let action = |t: &str, b: Value| {
        let (tc, t, s) = (&tc, t.to_owned(), s.clone());
        async move {
            tc.compute(Method::POST, &format!("servers/{s}/action"), &t, Some(b), V)
                .await
                .status
        }
    };
    assert_eq!(
        action(&member, json!({"lock": null})).await,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        action(&member, json!({"os-stop": null})).await,
        StatusCode::CONFLICT,
        "locked"
    );
    assert_eq!(
        action(&member, json!({"unlock": null})).await,
        StatusCode::ACCEPTED,
        "the owner undoes its own lock"
    );
    assert_eq!(
        action(&admin, json!({"lock": {"locked_reason": "maintenance"}})).await,
        StatusCode::ACCEPTED
    );
    let shown = tc
        .compute(Method::GET, &format!("servers/{s}"), &member, None, V)
        .await;
    assert_eq!(
        (
            shown.json["server"]["locked"].clone(),
            shown.json["server"]["locked_reason"].clone()
        ),
        (json!(true), json!("maintenance"))
    );
    assert_eq!(
        action(&member, json!({"unlock": null})).await,
        StatusCode::FORBIDDEN,
        "an admin's lock"
    );
    assert_eq!(
        action(&outsider, json!({"unlock": null})).await,
        StatusCode::NOT_FOUND,
        "another project"
    );
    assert_eq!(
        action(&admin, json!({"unlock": null})).await,
        StatusCode::ACCEPTED
    );
    let r = tc
        .compute(
            Method::POST,
            &format!("servers/{s}/action"),
            &member,
            Some(json!({"lock": {"locked_reason": "x"}})),
            "2.72",
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "locked_reason needs 2.73"
    );

    for (patch, text) in [
        (
            json!({"min_count": 3, "max_count": 2}),
            "min_count must be <= max_count",
        ),
        (json!({"accessIPv4": "not-an-ip"}), "accessIPv4"),
        (json!({"accessIPv4": "fe80::1"}), "accessIPv4"),
        (json!({"accessIPv6": "10.0.0.1"}), "accessIPv6"),
    ] {
        let mut b = server("v", &image, &flavor);
        for (k, v) in patch.as_object().unwrap() {
            b["server"][k] = v.clone();
        }
        let r = tc
            .compute(Method::POST, "servers", &member, Some(b), V)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{patch}: {}", r.json);
        assert!(
            r.json["badRequest"]["message"]
                .as_str()
                .unwrap()
                .contains(text),
            "{}",
            r.json
        );
    }
    let mut b = server("a", &image, &flavor);
    b["server"]["accessIPv4"] = json!("192.0.2.7");
    b["server"]["accessIPv6"] = json!("2001:db8::7");
    let a = boot(&tc, &member, b).await;
    let shown = tc
        .compute(Method::GET, &format!("servers/{a}"), &member, None, V)
        .await;
    assert_eq!(
        (
            shown.json["server"]["accessIPv4"].clone(),
            shown.json["server"]["accessIPv6"].clone()
        ),
        (json!("192.0.2.7"), json!("2001:db8::7"))
    );
    tc.stop().await;
}

#[tokio::test]
async fn flavors_quotas_and_limits_follow_the_microversion() {
    for b in backends() {
        flavors_quotas_limits(b).await;
    }
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

async fn flavors_quotas_limits(backend: Backend) {
    let (tc, admin, _, _) = setup(backend).await;
    let (p1, member) = tc.project_user(&admin, "p1", "member").await;
    // Nova takes an integer id and `is_public` as a string.
    let r = tc
        .compute(Method::POST, "flavors", &admin,
            Some(json!({"flavor": {"name": "int", "ram": 64, "vcpus": 1, "disk": 0, "id": 42, "os-flavor-access:is_public": "True"}})), "2.1")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(
        (
            r.json["flavor"]["id"].clone(),
            r.json["flavor"]["os-flavor-access:is_public"].clone()
        ),
        (json!("42"), json!(true))
    );
    let r = tc
        .compute(Method::POST, "flavors", &admin,
            Some(json!({"flavor": {"name": "priv", "ram": 64, "vcpus": 1, "disk": 0, "os-flavor-access:is_public": "false"}})), "2.1")
        .await;
    assert_eq!(
        r.json["flavor"]["os-flavor-access:is_public"], false,
        "{}",
        r.json
    );
    for bad in [json!("maybe"), json!(3)] {
        let r = tc
            .compute(Method::POST, "flavors", &admin,
                Some(json!({"flavor": {"name": "b", "ram": 64, "vcpus": 1, "disk": 0, "os-flavor-access:is_public": bad}})), "2.1")
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.json);
    }
    let r = tc
        .compute(
            Method::POST,
            "flavors",
            &admin,
            Some(json!({"flavor": {"name": "neg", "ram": 64, "vcpus": 1, "disk": 0, "id": -1}})),
            "2.1",
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);

    // Flavor lists page with limit and marker (public ones: m1.tiny and int).
    let all = tc.compute(Method::GET, "flavors", &admin, None, V).await;
    let ids: Vec<Value> = all.json["flavors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].clone())
        .collect();
    assert_eq!(ids.len(), 2, "{}", all.json);
    assert!(all.json.get("flavors_links").is_none());
    let first = tc
        .compute(Method::GET, "flavors/detail?limit=1", &admin, None, V)
        .await;
    assert_eq!(first.json["flavors"].as_array().unwrap().len(), 1);
    assert_eq!(first.json["flavors"][0]["id"], ids[0]);
    let next = first.json["flavors_links"][0]["href"].as_str().unwrap();
    assert!(
        next.contains("flavors/detail?")
            && next.contains("limit=1")
            && next.contains(&format!("marker={}", ids[0].as_str().unwrap())),
        "{next}"
    );
    let marker = ids[0].as_str().unwrap();
    let second = tc
        .compute(
            Method::GET,
            &format!("flavors?limit=5&marker={marker}"),
            &admin,
            None,
            V,
        )
        .await;
    assert_eq!(
        second.json["flavors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].clone())
            .collect::<Vec<_>>(),
        ids[1..].to_vec()
    );
    for q in ["flavors?marker=nope", "flavors?limit=-1", "flavors?limit=x"] {
        let r = tc.compute(Method::GET, q, &admin, None, V).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {}", r.json);
    }

    // Quota sets: network proxies until 2.36, injected files until 2.57.
    let base = [
        "cores",
        "id",
        "instances",
        "key_pairs",
        "metadata_items",
        "ram",
        "server_group_members",
        "server_groups",
    ];
    let injected = [
        "injected_file_content_bytes",
        "injected_file_path_bytes",
        "injected_files",
    ];
    let proxies = [
        "fixed_ips",
        "floating_ips",
        "security_group_rules",
        "security_groups",
    ];
    let want = |sets: &[&[&str]]| {
        let mut k: Vec<String> = sets
            .iter()
            .flat_map(|s| s.iter().map(|x| x.to_string()))
            .collect();
        k.sort();
        k
    };
    for (version, expect) in [
        ("2.1", want(&[&base, &injected, &proxies])),
        ("2.36", want(&[&base, &injected])),
        ("2.57", want(&[&base])),
    ] {
        let r = tc
            .compute(
                Method::GET,
                &format!("os-quota-sets/{p1}"),
                &member,
                None,
                version,
            )
            .await;
        assert_eq!(keys(&r.json["quota_set"]), expect, "at {version}");
    }
    let r = tc
        .compute(
            Method::GET,
            &format!("os-quota-sets/{p1}"),
            &member,
            None,
            "2.1",
        )
        .await;
    assert_eq!(
        (
            r.json["quota_set"]["floating_ips"].clone(),
            r.json["quota_set"]["security_groups"].clone()
        ),
        (json!(10), json!(10))
    );
    let r = tc
        .compute(
            Method::PUT,
            &format!("os-quota-sets/{p1}"),
            &admin,
            Some(json!({"quota_set": {"floating_ips": 5}})),
            "2.1",
        )
        .await;
    assert_eq!(
        (r.status, r.json["quota_set"]["floating_ips"].clone()),
        (StatusCode::OK, json!(5)),
        "{}",
        r.json
    );
    let r = tc
        .compute(
            Method::PUT,
            &format!("os-quota-sets/{p1}"),
            &admin,
            Some(json!({"quota_set": {"floating_ips": 5}})),
            "2.36",
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "gone at 2.36: {}",
        r.json
    );
    let r = tc
        .compute(
            Method::PUT,
            &format!("os-quota-sets/{p1}"),
            &admin,
            Some(json!({"quota_set": {"injected_files": 3}})),
            "2.57",
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "gone at 2.57: {}",
        r.json
    );

    // Limits: the same story, with Neutron's numbers for the proxies.
    let at = |v: &'static str| {
        let (tc, t) = (&tc, member.clone());
        async move {
            tc.compute(Method::GET, "limits", &t, None, v).await.json["limits"]["absolute"].clone()
        }
    };
    let g = tc
        .network(
            Method::POST,
            "security-groups",
            &member,
            Some(json!({"security_group": {"name": "web"}})),
        )
        .await;
    assert_eq!(g.status, StatusCode::CREATED, "{}", g.json);
    let groups = tc
        .network(Method::GET, "security-groups", &member, None)
        .await;
    let n_groups = groups.json["security_groups"].as_array().unwrap().len();
    let old = at("2.1").await;
    for k in [
        "maxSecurityGroups",
        "maxSecurityGroupRules",
        "maxTotalFloatingIps",
        "totalFloatingIpsUsed",
        "totalSecurityGroupsUsed",
        "maxImageMeta",
        "maxPersonality",
        "maxPersonalitySize",
    ] {
        assert!(old.get(k).is_some(), "{k} at 2.1: {old}");
    }
    assert_eq!(old["totalSecurityGroupsUsed"], json!(n_groups), "{old}");
    assert_eq!(
        old["maxTotalFloatingIps"], 50,
        "Neutron's floatingip quota: {old}"
    );
    let new = at(V).await;
    for k in [
        "maxSecurityGroups",
        "maxTotalFloatingIps",
        "maxImageMeta",
        "maxPersonality",
    ] {
        assert!(new.get(k).is_none(), "{k} at {V}: {new}");
    }
    assert_eq!(new["totalServerGroupsUsed"], 0);
    tc.stop().await;
}

#[tokio::test]
async fn keystone_default_roles_include_manager_and_service() {
    let (tc, admin, image, flavor) = setup(Backend::Sqlite).await;
    let roles = tc.call(Method::GET, "roles", &admin, None).await;
    let mut names: Vec<&str> = roles.json["roles"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["admin", "manager", "member", "reader", "service"]);
    // A project manager is a member and a reader too (Keystone's chain).
    let (_, manager) = tc.project_user(&admin, "pm", "manager").await;
    let s = boot(&tc, &manager, server("m", &image, &flavor)).await;
    wait_status(&tc, &manager, &s, "ACTIVE").await;
    let r = tc
        .compute(
            Method::POST,
            &format!("servers/{s}/metadata"),
            &manager,
            Some(json!({"metadata": {"a": "b"}})),
            V,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    // A restart (which re-checks the default roles) makes none twice.
    let restarted = tc.restart().await;
    let admin = restarted.admin_token().await;
    let roles = restarted.call(Method::GET, "roles", &admin, None).await;
    assert_eq!(
        roles.json["roles"].as_array().unwrap().len(),
        5,
        "a restart adds no second set"
    );
    restarted.stop().await;
}

#[tokio::test]
async fn admin_actions_passwords_and_brief_update_answers() {
    for b in backends() {
        admin_actions(b).await;
    }
}

async fn admin_actions(backend: Backend) {
    let (tc, admin, image, flavor) = setup(backend).await;
    let (_, member) = tc.project_user(&admin, "p1", "member").await;
    let (_, other) = tc.project_user(&admin, "p2", "member").await;
    let s = boot(&tc, &member, server("r", &image, &flavor)).await;
    wait_status(&tc, &member, &s, "ACTIVE").await;
    let act = |t: &str, b: Value| {
        let (tc, t, s) = (&tc, t.to_owned(), s.clone());
        async move {
            tc.compute(Method::POST, &format!("servers/{s}/action"), &t, Some(b), V)
                .await
        }
    };
    let r = act(&member, json!({"os-resetState": {"state": "error"}})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = act(&admin, json!({"os-resetState": {"state": "deleted"}})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    let r = act(&admin, json!({"os-resetState": {"state": "error"}})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let shown = tc
        .compute(Method::GET, &format!("servers/{s}"), &member, None, V)
        .await;
    assert_eq!(shown.json["server"]["status"], "ERROR");
    let r = act(&admin, json!({"os-resetState": {"state": "active"}})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    wait_status(&tc, &member, &s, "ACTIVE").await;
    assert_eq!(
        act(&admin, json!({"injectNetworkInfo": null})).await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        act(&member, json!({"injectNetworkInfo": null}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    for name in ["restore", "forceDelete"] {
        let r = act(&member, json!({ name: null })).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{name}: {}", r.json);
        assert!(r.json["conflictingRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("vm_state active"));
    }

    // changePassword goes through a QEMU guest agent no guest here runs:
    // Nova's 409 for such a guest, after the body is checked.
    let r = act(&member, json!({"changePassword": {}})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    let r = act(&member, json!({"changePassword": {"adminPass": "s3cret!"}})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.json);
    assert!(r.json["conflictingRequest"]["message"]
        .as_str()
        .unwrap()
        .contains("QEMU guest agent is not enabled"));

    let pw = format!("servers/{s}/os-server-password");
    let r = tc.compute(Method::GET, &pw, &member, None, V).await;
    assert_eq!(
        (r.status, r.json.clone()),
        (StatusCode::OK, json!({"password": ""}))
    );
    // The guest posts its (encrypted) password through the metadata
    // service once; the project reads it; a member clears it, and then the
    // guest may post again.
    use ferro_agent_api::spec::PasswordPost;
    use ferro_agent_api::ControlPlane;
    let compute = &tc.cloud.compute;
    assert_eq!(
        compute.post_server_password(&s, "c2VjcmV0").await.unwrap(),
        PasswordPost::Stored
    );
    assert_eq!(
        compute.post_server_password(&s, "b3RoZXI=").await.unwrap(),
        PasswordPost::AlreadySet
    );
    let r = tc.compute(Method::GET, &pw, &member, None, V).await;
    assert_eq!(
        (r.status, r.json.clone()),
        (StatusCode::OK, json!({"password": "c2VjcmV0"}))
    );
    assert_eq!(
        tc.compute(Method::GET, &pw, &other, None, V).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        tc.compute(Method::DELETE, &pw, &other, None, V)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        tc.compute(Method::DELETE, &pw, &member, None, V)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let r = tc.compute(Method::GET, &pw, &member, None, V).await;
    assert_eq!(r.json, json!({"password": ""}));
    assert_eq!(
        compute.post_server_password(&s, "b3RoZXI=").await.unwrap(),
        PasswordPost::Stored
    );
    let link = ferro_compute::LocalLink {
        compute: compute.clone(),
        network_node: true,
    };
    assert_eq!(
        link.post_password("no-such-network", "10.0.0.1", "x")
            .await
            .unwrap(),
        PasswordPost::Unknown
    );

    // update (and rebuild) answer with the brief view until 2.75.
    let upd = |v: &'static str| {
        let (tc, t, s) = (&tc, member.clone(), s.clone());
        async move {
            tc.compute(
                Method::PUT,
                &format!("servers/{s}"),
                &t,
                Some(json!({"server": {"name": "r2"}})),
                v,
            )
            .await
            .json["server"]
                .clone()
        }
    };
    let brief = upd("2.74").await;
    for k in [
        "OS-EXT-AZ:availability_zone",
        "config_drive",
        "key_name",
        "security_groups",
        "OS-EXT-STS:vm_state",
        "OS-SRV-USG:launched_at",
        "os-extended-volumes:volumes_attached",
    ] {
        assert!(
            brief.get(k).is_none(),
            "{k} in the 2.74 update answer: {brief}"
        );
    }
    assert_eq!(
        (brief["name"].clone(), brief["locked"].clone()),
        (json!("r2"), json!(false))
    );
    let full = upd("2.75").await;
    let shown = tc
        .compute(Method::GET, &format!("servers/{s}"), &member, None, "2.75")
        .await;
    let mut want = shown.json["server"].clone();
    want["updated"] = full["updated"].clone();
    assert_eq!(full, want, "from 2.75 update answers as show");
    let r = tc
        .compute(
            Method::POST,
            &format!("servers/{s}/action"),
            &member,
            Some(json!({"rebuild": {"imageRef": image}})),
            "2.1",
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    assert!(
        r.json["server"].get("OS-EXT-STS:task_state").is_none()
            && r.json["server"]["adminPass"].is_string(),
        "{}",
        r.json
    );
    tc.stop().await;
}

#[tokio::test]
async fn server_lists_filter_by_name_regex_ip_and_changes_since() {
    let (tc, admin, image, flavor) = setup(Backend::Sqlite).await;
    let (_, member) = tc.project_user(&admin, "p1", "member").await;
    let net = tc
        .network(
            Method::POST,
            "networks",
            &member,
            Some(json!({"network": {"name": "n1"}})),
        )
        .await;
    let net_id = net.json["network"]["id"].as_str().unwrap().to_owned();
    let sub = tc
        .network(
            Method::POST,
            "subnets",
            &member,
            Some(json!({"subnet": {"network_id": net_id, "cidr": "10.9.0.0/24", "ip_version": 4}})),
        )
        .await;
    assert_eq!(sub.status, StatusCode::CREATED, "{}", sub.json);
    let mut on_net = server("web-1", &image, &flavor);
    on_net["server"]["networks"] = json!([{"uuid": net_id}]);
    let w1 = boot(&tc, &member, on_net).await;
    let w2 = boot(&tc, &member, server("web-2", &image, &flavor)).await;
    let db = boot(&tc, &member, server("db", &image, &flavor)).await;
    for id in [&w1, &w2, &db] {
        wait_status(&tc, &member, id, "ACTIVE").await;
    }
    let names = |q: String, v: &'static str| {
        let (tc, t) = (&tc, member.clone());
        async move {
            let r = tc
                .compute(Method::GET, &format!("servers?{q}"), &t, None, v)
                .await;
            assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.json);
            let mut n: Vec<String> = r.json["servers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["name"].as_str().unwrap().to_owned())
                .collect();
            n.sort();
            n
        }
    };
    assert_eq!(
        names("name=%5Eweb-%5Cd%24".into(), V).await,
        ["web-1", "web-2"],
        "anchored regex"
    );
    assert_eq!(
        names("name=eb".into(), V).await,
        ["web-1", "web-2"],
        "searched anywhere"
    );
    assert_eq!(names("name=%5Edb".into(), V).await, ["db"]);
    assert_eq!(names("ip=10%5C.9%5C.0%5C.".into(), V).await, ["web-1"]);
    assert_eq!(names("ip=192%5C.".into(), V).await, Vec::<String>::new());
    assert_eq!(
        names("changes-since=2000-01-01T00:00:00Z".into(), V)
            .await
            .len(),
        3
    );
    assert_eq!(
        names("changes-since=2999-01-01T00:00:00Z".into(), V)
            .await
            .len(),
        0
    );
    assert_eq!(
        names("changes-before=2000-01-01T00:00:00Z".into(), "2.66")
            .await
            .len(),
        0
    );
    assert_eq!(
        names("changes-before=2999-01-01T00:00:00%2B00:00".into(), "2.66")
            .await
            .len(),
        3
    );
    for q in [
        "name=(",
        "changes-since=yesterday",
        "changes-since=2030-01-01T00:00:00&changes-before=2020-01-01T00:00:00",
    ] {
        let r = tc
            .compute(Method::GET, &format!("servers?{q}"), &member, None, "2.66")
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {}", r.json);
    }
    tc.stop().await;
}

#[tokio::test]
async fn add_and_remove_floating_ip_actions_until_2_44() {
    let (tc, admin, image, flavor) = setup(Backend::Sqlite).await;
    let ext = tc.network(Method::POST, "networks", &admin, Some(json!({"network": {"name": "ext_net", "shared": true,
        "router:external": true, "provider:network_type": "flat", "provider:physical_network": "physnet1"}}))).await;
    let ext_net = ext.json["network"]["id"].as_str().unwrap().to_owned();
    let r = tc
        .network(
            Method::POST,
            "subnets",
            &admin,
            Some(json!({"subnet": {"network_id": ext_net, "ip_version": 4,
        "cidr": "172.16.0.0/20", "enable_dhcp": false, "gateway_ip": "172.16.0.1"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let net = tc
        .network(
            Method::POST,
            "networks",
            &admin,
            Some(json!({"network": {"name": "n1"}})),
        )
        .await;
    let net_id = net.json["network"]["id"].as_str().unwrap().to_owned();
    let sub = tc
        .network(
            Method::POST,
            "subnets",
            &admin,
            Some(json!({"subnet": {"network_id": net_id, "ip_version": 4, "cidr": "10.9.0.0/24"}})),
        )
        .await;
    let sub_id = sub.json["subnet"]["id"].as_str().unwrap().to_owned();
    let router = tc
        .network(
            Method::POST,
            "routers",
            &admin,
            Some(
                json!({"router": {"name": "r", "external_gateway_info": {"network_id": ext_net}}}),
            ),
        )
        .await;
    assert_eq!(router.status, StatusCode::CREATED, "{}", router.json);
    let rid = router.json["router"]["id"].as_str().unwrap().to_owned();
    let r = tc
        .network(
            Method::PUT,
            &format!("routers/{rid}/add_router_interface"),
            &admin,
            Some(json!({"subnet_id": sub_id})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let fip = tc
        .network(
            Method::POST,
            "floatingips",
            &admin,
            Some(json!({"floatingip": {"floating_network_id": ext_net}})),
        )
        .await;
    assert_eq!(fip.status, StatusCode::CREATED, "{}", fip.json);
    let address = fip.json["floatingip"]["floating_ip_address"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut body = server("f", &image, &flavor);
    body["server"]["networks"] = json!([{"uuid": net_id}]);
    let s = boot(&tc, &admin, body).await;
    wait_status(&tc, &admin, &s, "ACTIVE").await;
    let bare = boot(&tc, &admin, server("bare", &image, &flavor)).await;
    wait_status(&tc, &admin, &bare, "ACTIVE").await;
    let act = |id: &str, b: Value, v: &'static str| {
        let (tc, t, id) = (&tc, admin.clone(), id.to_owned());
        async move {
            tc.compute(
                Method::POST,
                &format!("servers/{id}/action"),
                &t,
                Some(b),
                v,
            )
            .await
        }
    };
    let r = act(&s, json!({"addFloatingIp": {"address": address}}), "2.1").await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let shown = tc
        .compute(Method::GET, &format!("servers/{s}"), &admin, None, V)
        .await;
    let floating: Vec<&Value> = shown.json["server"]["addresses"]["n1"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["OS-EXT-IPS:type"] == "floating")
        .collect();
    assert_eq!(floating.len(), 1, "{}", shown.json);
    assert_eq!(floating[0]["addr"], json!(address));
    for (id, b, v, want) in [
        (
            &bare,
            json!({"addFloatingIp": {"address": address}}),
            "2.1",
            StatusCode::BAD_REQUEST,
        ),
        (
            &s,
            json!({"addFloatingIp": {"address": "203.0.113.9"}}),
            "2.1",
            StatusCode::NOT_FOUND,
        ),
        (
            &s,
            json!({"addFloatingIp": {"address": "nope"}}),
            "2.1",
            StatusCode::BAD_REQUEST,
        ),
        (
            &s,
            json!({"addFloatingIp": {"address": address, "fixed_address": "10.9.0.250"}}),
            "2.1",
            StatusCode::BAD_REQUEST,
        ),
        (
            &s,
            json!({"addFloatingIp": {"address": address}}),
            "2.44",
            StatusCode::NOT_FOUND,
        ),
        (
            &bare,
            json!({"removeFloatingIp": {"address": address}}),
            "2.1",
            StatusCode::CONFLICT,
        ),
    ] {
        let r = act(id, b.clone(), v).await;
        assert_eq!(r.status, want, "{b} at {v}: {}", r.json);
    }
    // Added to another server, it moves there (as in Nova).
    let mut body = server("g", &image, &flavor);
    body["server"]["networks"] = json!([{"uuid": net_id}]);
    let other = boot(&tc, &admin, body).await;
    wait_status(&tc, &admin, &other, "ACTIVE").await;
    let r = act(
        &other,
        json!({"addFloatingIp": {"address": address}}),
        "2.1",
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let r = act(&s, json!({"removeFloatingIp": {"address": address}}), "2.1").await;
    assert_eq!(r.status, StatusCode::CONFLICT, "it left s: {}", r.json);
    let r = act(&s, json!({"addFloatingIp": {"address": address}}), "2.1").await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let r = act(&s, json!({"removeFloatingIp": {"address": address}}), "2.1").await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let f = tc
        .network(
            Method::GET,
            &format!(
                "floatingips/{}",
                fip.json["floatingip"]["id"].as_str().unwrap()
            ),
            &admin,
            None,
        )
        .await;
    assert_eq!(f.json["floatingip"]["port_id"], Value::Null);
    let r = act(&s, json!({"removeFloatingIp": {"address": address}}), "2.1").await;
    assert_eq!(r.status, StatusCode::CONFLICT, "not associated any more");
    tc.stop().await;
}

#[tokio::test]
async fn compute_services_are_disabled_enabled_and_forced_down() {
    for backend in backends() {
        services(backend).await;
    }
}

async fn services(backend: Backend) {
    let (tc, admin, image, flavor) = setup(backend).await;
    let (_, member) = tc.project_user(&admin, "p1", "member").await;
    let list = tc
        .compute(Method::GET, "os-services", &admin, None, "2.53")
        .await;
    let svc = list.json["services"][0].clone();
    let id = svc["id"].as_str().unwrap().to_owned();
    assert_eq!(svc["status"], "enabled", "{svc}");
    let path = format!("os-services/{id}");

    // Members may not; bad bodies get Nova's 400s; unknown ids 404.
    let r = tc
        .compute(
            Method::PUT,
            &path,
            &member,
            Some(json!({"status": "disabled"})),
            "2.53",
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json);
    for (body, why) in [
        (json!({"status": "off"}), "is not one of"),
        (json!({}), "No updates were requested"),
        (
            json!({"status": "enabled", "disabled_reason": "x"}),
            "with status 'enabled'",
        ),
        (json!({"forced_down": "maybe"}), "is not of type 'boolean'"),
        (
            json!({"status": "disabled", "colour": "red"}),
            "'colour' was unexpected",
        ),
    ] {
        let r = tc
            .compute(Method::PUT, &path, &admin, Some(body.clone()), "2.53")
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.json);
        let msg = r.json["badRequest"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(why), "{body}: {msg}");
    }
    let r = tc
        .compute(
            Method::PUT,
            "os-services/00000000-0000-0000-0000-000000000000",
            &admin,
            Some(json!({"status": "disabled"})),
            "2.53",
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.json);

    // A disabled host takes no new server.
    let r = tc
        .compute(
            Method::PUT,
            &path,
            &admin,
            Some(json!({"status": "disabled", "disabled_reason": "maintenance"})),
            "2.53",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["service"]["status"], "disabled");
    assert_eq!(r.json["service"]["disabled_reason"], "maintenance");
    assert_eq!(r.json["service"]["id"], id.as_str());
    let s = boot(&tc, &admin, server("while-disabled", &image, &flavor)).await;
    let failed = wait_status(&tc, &admin, &s, "ERROR").await;
    let fault = failed["fault"]["message"].as_str().unwrap_or_default();
    assert!(fault.contains("compute service disabled"), "{failed}");

    // Enabled again, it does; the reason is cleared.
    let r = tc
        .compute(
            Method::PUT,
            &path,
            &admin,
            Some(json!({"status": "enabled"})),
            "2.53",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["service"]["disabled_reason"], Value::Null);
    let s = boot(&tc, &admin, server("enabled-again", &image, &flavor)).await;
    wait_status(&tc, &admin, &s, "ACTIVE").await;

    // Forced down, the host is down at once, in every view.
    let r = tc
        .compute(
            Method::PUT,
            &path,
            &admin,
            Some(json!({"forced_down": true})),
            "2.53",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["service"]["state"], "down");
    assert_eq!(r.json["service"]["forced_down"], true);
    let hv = tc
        .compute(Method::GET, "os-hypervisors/detail", &admin, None, "2.53")
        .await;
    assert_eq!(hv.json["hypervisors"][0]["state"], "down", "{}", hv.json);
    let r = tc
        .compute(
            Method::PUT,
            &path,
            &admin,
            Some(json!({"forced_down": false})),
            "2.53",
        )
        .await;
    assert_eq!(r.json["service"]["state"], "up", "{}", r.json);

    // Before 2.53: by host and binary, on the action's path.
    let host = svc["host"].as_str().unwrap();
    let r = tc
        .compute(
            Method::PUT,
            "os-services/disable-log-reason",
            &admin,
            Some(json!({"host": host, "binary": "nova-compute", "disabled_reason": "old style"})),
            "2.11",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(
        r.json["service"],
        json!({"host": host, "binary": "nova-compute", "status": "disabled", "disabled_reason": "old style"})
    );
    let r = tc
        .compute(
            Method::PUT,
            "os-services/enable",
            &admin,
            Some(json!({"host": host, "binary": "nova-compute"})),
            "2.11",
        )
        .await;
    assert_eq!(
        r.json["service"],
        json!({"host": host, "binary": "nova-compute", "status": "enabled"})
    );
    let r = tc
        .compute(
            Method::PUT,
            "os-services/disable",
            &admin,
            Some(json!({"host": "nowhere", "binary": "nova-compute"})),
            "2.11",
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.json);
    let r = tc
        .compute(
            Method::PUT,
            "os-services/force-down",
            &admin,
            Some(json!({"host": host, "binary": "nova-compute", "forced_down": false})),
            "2.11",
        )
        .await;
    assert_eq!(
        r.json["service"],
        json!({"host": host, "binary": "nova-compute", "forced_down": false})
    );
    let list = tc
        .compute(Method::GET, "os-services", &admin, None, "2.53")
        .await;
    assert_eq!(
        list.json["services"][0]["status"], "enabled",
        "{}",
        list.json
    );
    tc.stop().await;
}

#[tokio::test]
async fn create_image_snapshots_a_server_like_nova() {
    for b in backends() {
        create_image(b).await;
    }
}

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
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn create_image(backend: Backend) {
    let (tc, admin, image, flavor) = setup(backend).await;
    let (_, member) = tc.project_user(&admin, "p1", "member").await;
    let (_, other) = tc.project_user(&admin, "p2", "member").await;
    let id = boot(&tc, &member, server("snap-me", &image, &flavor)).await;
    wait_status(&tc, &member, &id, "ACTIVE").await;
    let action = format!("servers/{id}/action");
    let ask = |body: Value, token: &str, version: &str| {
        let (tc, action, token, version) =
            (&tc, action.clone(), token.to_owned(), version.to_owned());
        async move {
            tc.compute(Method::POST, &action, &token, Some(body), &version)
                .await
        }
    };

    // Refusals change nothing: Nova's schema, another project, a bad state.
    for bad in [
        json!({"createImage": {}}),
        json!({"createImage": {"name": ""}}),
        json!({"createImage": {"name": "x", "extra": 1}}),
        json!({"createImage": {"name": "x", "metadata": {"k": 1}}}),
    ] {
        let r = ask(bad.clone(), &member, V).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.json);
        assert!(r.json["badRequest"]["message"].is_string(), "{}", r.json);
    }
    let r = ask(json!({"createImage": {"name": "x"}}), &other, V).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.json);

    // 2.45 and later: the image id in the body.
    let r = ask(
        json!({"createImage": {"name": "snap-1", "metadata": {"purpose": "test"}}}),
        &member,
        "2.45",
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    assert!(r.headers.get("location").is_none());
    let snap = r.json["image_id"].as_str().unwrap().to_owned();
    let img = wait_image(&tc, &member, &snap).await;
    assert_eq!(img["name"], "snap-1");
    assert_eq!(img["image_type"], "snapshot");
    assert_eq!(img["instance_uuid"], json!(id));
    assert_eq!(img["base_image_ref"], json!(image));
    assert_eq!(img["purpose"], "test");
    assert_eq!(img["disk_format"], "qcow2");
    assert_eq!(img["visibility"], "private");
    assert_eq!(img["min_disk"], 1);
    assert!(img["size"].as_i64().unwrap() > 0, "{img}");
    let srv = wait_status(&tc, &member, &id, "ACTIVE").await;
    assert_eq!(srv["OS-EXT-STS:task_state"], Value::Null, "{srv}");
    let other_sees = tc
        .send(
            Method::GET,
            &format!("{}/v2/images/{snap}", tc.cloud.image_url),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(
        other_sees.status,
        StatusCode::NOT_FOUND,
        "a private snapshot"
    );

    // Before 2.45: no body, the image's URL in Location. A stopped server
    // can be snapshotted too.
    let r = ask(json!({"os-stop": null}), &member, V).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    wait_status(&tc, &member, &id, "SHUTOFF").await;
    let r = ask(json!({"createImage": {"name": "snap-2"}}), &member, "2.1").await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    assert_eq!(r.json, Value::Null);
    let location = r.headers["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&tc.cloud.image_url) && location.contains("/images/"),
        "{location}"
    );
    let snap2 = location.rsplit('/').next().unwrap().to_owned();
    wait_image(&tc, &member, &snap2).await;
    let srv = wait_status(&tc, &member, &id, "SHUTOFF").await;
    assert_eq!(srv["OS-EXT-STS:task_state"], Value::Null, "{srv}");

    // Backups: snapshots with a type, rotated (the newest `rotation` kept).
    for bad in [
        json!({"createBackup": {"name": "b", "rotation": 1}}),
        json!({"createBackup": {"name": "b", "backup_type": "daily", "rotation": -1}}),
        json!({"createBackup": {"name": "b", "backup_type": "daily"}}),
    ] {
        let r = ask(bad.clone(), &member, V).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.json);
    }
    let mut backups = Vec::new();
    for i in 0..3 {
        let r = ask(
            json!({"createBackup": {"name": format!("b{i}"), "backup_type": "daily", "rotation": "2"}}),
            &member,
            "2.45",
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
        let b = r.json["image_id"].as_str().unwrap().to_owned();
        let img = wait_image(&tc, &member, &b).await;
        assert_eq!(img["image_type"], "backup", "{img}");
        assert_eq!(img["backup_type"], "daily", "{img}");
        let start = Instant::now();
        while !wait_status(&tc, &member, &id, "SHUTOFF").await["OS-EXT-STS:task_state"].is_null() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the backup never ended"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        backups.push(b);
    }
    let listed = tc
        .send(
            Method::GET,
            &format!("{}/v2/images?image_type=backup", tc.cloud.image_url),
            Some(&member),
            None,
        )
        .await;
    let mut kept: Vec<String> = listed.json["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    kept.sort();
    let mut newest = backups[1..].to_vec();
    newest.sort();
    assert_eq!(
        kept, newest,
        "rotation 2 keeps the two newest backups (listed by property, as Glance filters)"
    );

    // A server boots from the snapshot.
    let copy = boot(&tc, &member, server("from-snap", &snap, &flavor)).await;
    let shown = wait_status(&tc, &member, &copy, "ACTIVE").await;
    assert_eq!(shown["image"]["id"], json!(snap));
    let actions = tc
        .compute(
            Method::GET,
            &format!("servers/{id}/os-instance-actions"),
            &member,
            None,
            V,
        )
        .await;
    assert!(
        actions.json["instanceActions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "createImage"),
        "{}",
        actions.json
    );
    tc.stop().await;
}

#[tokio::test]
async fn shelve_offloads_and_unshelve_boots_the_shelved_disk() {
    for b in backends() {
        shelve(b).await;
    }
}

async fn shelved_image(tc: &TestCloud, token: &str, name: &str) -> Option<Value> {
    let url = format!("{}/v2/images?name={name}", tc.cloud.image_url);
    let r = tc.send(Method::GET, &url, Some(token), None).await;
    r.json["images"].as_array().unwrap().first().cloned()
}

async fn vcpus_used(tc: &TestCloud, admin: &str) -> i64 {
    let r = tc
        .compute(Method::GET, "os-hypervisors/statistics", admin, None, "2.1")
        .await;
    r.json["hypervisor_statistics"]["vcpus_used"]
        .as_i64()
        .unwrap()
}

async fn shelve(backend: Backend) {
    let (tc, admin, image, flavor) = setup(backend).await;
    let (_, member) = tc.project_user(&admin, "p1", "member").await;
    let id = boot(&tc, &member, server("shelf", &image, &flavor)).await;
    wait_status(&tc, &member, &id, "ACTIVE").await;
    assert_eq!(vcpus_used(&tc, &admin).await, 1);
    let action = format!("servers/{id}/action");
    let act = |body: Value, version: &'static str| {
        let (tc, action, member) = (&tc, action.clone(), member.clone());
        async move {
            tc.compute(Method::POST, &action, &member, Some(body), version)
                .await
        }
    };
    let r = act(json!({"unshelve": null}), V).await;
    assert_eq!(
        r.status,
        StatusCode::CONFLICT,
        "unshelve of an active server: {}",
        r.json
    );

    let r = act(json!({"shelve": null}), V).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let srv = wait_status(&tc, &member, &id, "SHELVED_OFFLOADED").await;
    assert_eq!(srv["OS-EXT-STS:vm_state"], "shelved_offloaded", "{srv}");
    assert_eq!(srv["OS-EXT-STS:task_state"], Value::Null, "{srv}");
    let admin_view = tc
        .compute(Method::GET, &format!("servers/{id}"), &admin, None, V)
        .await;
    assert_eq!(
        admin_view.json["server"]["OS-EXT-SRV-ATTR:host"],
        Value::Null,
        "offloaded from its host"
    );
    assert_eq!(
        vcpus_used(&tc, &admin).await,
        0,
        "its allocation is released"
    );
    let img = shelved_image(&tc, &member, "shelf-shelved")
        .await
        .expect("the shelved image");
    assert_eq!(img["status"], "active", "{img}");
    assert_eq!(img["instance_uuid"], json!(id), "{img}");
    let shelved_id = img["id"].as_str().unwrap().to_owned();

    let r = act(json!({"shelve": null}), V).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "shelve twice: {}", r.json);
    let r = act(json!({"shelveOffload": null}), V).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.json);
    let r = act(json!({"unshelve": {"availability_zone": "nova"}}), "2.76").await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "a body before 2.77: {}",
        r.json
    );

    let r = act(json!({"unshelve": null}), V).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let srv = wait_status(&tc, &member, &id, "ACTIVE").await;
    assert_eq!(
        srv["image"]["id"],
        json!(image),
        "the server keeps its image"
    );
    assert_eq!(vcpus_used(&tc, &admin).await, 1);
    let start = Instant::now();
    while shelved_image(&tc, &member, "shelf-shelved").await.is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the shelved image {shelved_id} was never removed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let actions = tc
        .compute(
            Method::GET,
            &format!("servers/{id}/os-instance-actions"),
            &member,
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
        names.contains(&"shelve") && names.contains(&"unshelve"),
        "{names:?}"
    );

    // A shelved server deleted takes its shelved image with it.
    let r = act(json!({"shelve": null}), V).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    wait_status(&tc, &member, &id, "SHELVED_OFFLOADED").await;
    assert!(shelved_image(&tc, &member, "shelf-shelved").await.is_some());
    let r = tc
        .compute(Method::DELETE, &format!("servers/{id}"), &member, None, V)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.json);
    let start = Instant::now();
    while shelved_image(&tc, &member, "shelf-shelved").await.is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the shelved image stayed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tc.stop().await;
}
