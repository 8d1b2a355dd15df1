//! The load-balancer API (Octavia v2) end to end over HTTP with the fake
//! hypervisor and dataplane: a load balancer with a listener, a pool, its
//! members and a health monitor goes from PENDING_CREATE to ACTIVE as the
//! network node's agent reports the revision it runs; bad input gets
//! Octavia's 4xx and changes nothing; projects don't see each other's;
//! delete needs `cascade` while children exist and takes the VIP port
//! with it. (HAProxy itself is tested by tests/cli/loadbalancer.sh.)

use std::time::{Duration, Instant};

use ferro_test_support::{backends, snapshot, Backend, RawBody, Reply, TestCloud};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn lb(tc: &TestCloud, method: Method, path: &str, token: &str, body: Option<Value>) -> Reply {
    let url = format!(
        "{}/v2/lbaas/{}",
        tc.cloud.loadbalancer_url,
        path.trim_start_matches('/')
    );
    tc.send(method, &url, Some(token), body.map(RawBody::Json))
        .await
}

/// Waits until the load balancer and everything under it is ACTIVE.
async fn wait_active(tc: &TestCloud, token: &str, id: &str) -> Value {
    let start = Instant::now();
    loop {
        let r = lb(tc, Method::GET, &format!("loadbalancers/{id}"), token, None).await;
        if r.json["loadbalancer"]["provisioning_status"] == "ACTIVE" {
            return r.json["loadbalancer"].clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "load balancer {id} never became ACTIVE: {}",
            r.json
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A tenant network with a subnet; returns (network, subnet).
async fn net(tc: &TestCloud, token: &str, name: &str, cidr: &str) -> (String, String) {
    let n = tc
        .network(
            Method::POST,
            "networks",
            token,
            Some(json!({"network": {"name": name}})),
        )
        .await;
    assert_eq!(n.status, StatusCode::CREATED, "{}", n.json);
    let network = n.id("network");
    let s = tc
        .network(
            Method::POST,
            "subnets",
            token,
            Some(json!({"subnet": {"network_id": network, "cidr": cidr, "ip_version": 4}})),
        )
        .await;
    assert_eq!(s.status, StatusCode::CREATED, "{}", s.json);
    (network, s.id("subnet"))
}

#[tokio::test]
async fn load_balancer_lifecycle_on_every_backend() {
    for backend in backends() {
        lifecycle(backend).await;
    }
}

async fn lifecycle(backend: Backend) {
    let tc = TestCloud::start(backend).await;
    let admin = tc.admin_token().await;
    let (project, token) = tc.project_user(&admin, "web", "member").await;
    let (_, subnet) = net(&tc, &token, "web-net", "10.20.0.0/24").await;

    // Version discovery at the root, as openstacksdk reads it.
    let root = tc
        .send(
            Method::GET,
            &format!("{}/", tc.cloud.loadbalancer_url),
            None,
            None,
        )
        .await;
    assert_eq!(root.status, StatusCode::OK);
    assert_eq!(root.json["versions"][1]["status"], "CURRENT");

    let r = lb(
        &tc,
        Method::POST,
        "loadbalancers",
        &token,
        Some(json!({"loadbalancer": {"name": "web-lb", "vip_subnet_id": subnet, "vip_address": "10.20.0.100"}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let body = &r.json["loadbalancer"];
    assert_eq!(body["provisioning_status"], "PENDING_CREATE");
    assert_eq!(body["operating_status"], "OFFLINE");
    assert_eq!(body["vip_address"], "10.20.0.100");
    assert_eq!(body["project_id"], project.as_str());
    let id = body["id"].as_str().unwrap().to_owned();
    let vip_port = body["vip_port_id"].as_str().unwrap().to_owned();
    let port = tc
        .network(Method::GET, &format!("ports/{vip_port}"), &token, None)
        .await;
    assert_eq!(port.status, StatusCode::OK);
    assert_eq!(port.json["port"]["device_owner"], "Octavia");
    assert_eq!(port.json["port"]["device_id"], id.as_str());
    let got = wait_active(&tc, &token, &id).await;
    assert_eq!(got["operating_status"], "ONLINE");

    let r = lb(
        &tc,
        Method::POST,
        "listeners",
        &token,
        Some(json!({"listener": {"name": "http", "loadbalancer_id": id, "protocol": "HTTP", "protocol_port": 80}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["listener"]["provisioning_status"], "PENDING_CREATE");
    assert_eq!(r.json["listener"]["timeout_client_data"], 50000);
    let listener = r.id("listener");
    wait_active(&tc, &token, &id).await;

    let r = lb(
        &tc,
        Method::POST,
        "pools",
        &token,
        Some(json!({"pool": {"name": "apis", "listener_id": listener, "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let pool = r.id("pool");
    wait_active(&tc, &token, &id).await;
    let l = lb(
        &tc,
        Method::GET,
        &format!("listeners/{listener}"),
        &token,
        None,
    )
    .await;
    assert_eq!(l.json["listener"]["default_pool_id"], pool.as_str());

    let mut members = Vec::new();
    for (name, address) in [("api-1", "10.20.0.11"), ("api-2", "10.20.0.12")] {
        let r = lb(
            &tc,
            Method::POST,
            &format!("pools/{pool}/members"),
            &token,
            Some(json!({"member": {"name": name, "address": address, "protocol_port": 8080}})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
        assert_eq!(r.json["member"]["subnet_id"], subnet.as_str());
        members.push(r.id("member"));
        wait_active(&tc, &token, &id).await;
    }
    let m = lb(
        &tc,
        Method::GET,
        &format!("pools/{pool}/members/{}", members[0]),
        &token,
        None,
    )
    .await;
    assert_eq!(m.json["member"]["operating_status"], "NO_MONITOR");

    let r = lb(
        &tc,
        Method::POST,
        "healthmonitors",
        &token,
        Some(json!({"healthmonitor": {"pool_id": pool, "type": "HTTP", "delay": 2, "timeout": 1, "max_retries": 2, "url_path": "/health"}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["healthmonitor"]["max_retries_down"], 3);
    assert_eq!(r.json["healthmonitor"]["expected_codes"], "200");
    wait_active(&tc, &token, &id).await;
    let m = lb(
        &tc,
        Method::GET,
        &format!("pools/{pool}/members/{}", members[0]),
        &token,
        None,
    )
    .await;
    assert_eq!(m.json["member"]["operating_status"], "ONLINE");
    assert_eq!(m.json["member"]["provisioning_status"], "ACTIVE");

    // Lists filter by any attribute; osc finds objects by name or id so.
    let found = lb(&tc, Method::GET, "loadbalancers?name=web-lb", &token, None).await;
    assert_eq!(found.json["loadbalancers"].as_array().unwrap().len(), 1);
    let none = lb(&tc, Method::GET, "loadbalancers?name=other", &token, None).await;
    assert_eq!(none.json["loadbalancers"], json!([]));
    let ms = lb(
        &tc,
        Method::GET,
        &format!("pools/{pool}/members?limit=1"),
        &token,
        None,
    )
    .await;
    assert_eq!(ms.json["members"].as_array().unwrap().len(), 1);
    assert_eq!(ms.json["members_links"][0]["rel"], "next");

    // The status tree and the stats.
    let st = lb(
        &tc,
        Method::GET,
        &format!("loadbalancers/{id}/status"),
        &token,
        None,
    )
    .await;
    assert_eq!(st.status, StatusCode::OK);
    let tree = &st.json["statuses"]["loadbalancer"];
    assert_eq!(
        tree["listeners"][0]["pools"][0]["members"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        tree["listeners"][0]["pools"][0]["health_monitor"]["type"],
        "HTTP"
    );
    let stats = lb(
        &tc,
        Method::GET,
        &format!("loadbalancers/{id}/stats"),
        &token,
        None,
    )
    .await;
    assert_eq!(stats.status, StatusCode::OK);
    assert_eq!(stats.json["stats"]["request_errors"], 0);

    // The network node runs what the API says: one spec, two members.
    let specs = tc.cloud.balancers.specs().await.unwrap();
    assert_eq!(specs.len(), 1);
    assert_eq!(specs[0].vip_cidr, "10.20.0.100/24");
    assert_eq!(
        specs[0].listeners[0].default_pool.as_deref(),
        Some(pool.as_str())
    );
    assert_eq!(specs[0].pools[0].members.len(), 2);

    // An update: the member leaves the rotation administratively.
    let r = lb(
        &tc,
        Method::PUT,
        &format!("pools/{pool}/members/{}", members[1]),
        &token,
        Some(json!({"member": {"admin_state_up": false}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["member"]["provisioning_status"], "PENDING_UPDATE");
    wait_active(&tc, &token, &id).await;
    let m = lb(
        &tc,
        Method::GET,
        &format!("pools/{pool}/members/{}", members[1]),
        &token,
        None,
    )
    .await;
    assert_eq!(m.json["member"]["operating_status"], "OFFLINE");

    // Administratively down: the network node runs no listener for it,
    // and says so.
    let r = lb(
        &tc,
        Method::PUT,
        &format!("loadbalancers/{id}"),
        &token,
        Some(json!({"loadbalancer": {"admin_state_up": false}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let got = wait_active(&tc, &token, &id).await;
    assert_eq!(got["operating_status"], "OFFLINE");
    let specs = tc.cloud.balancers.specs().await.unwrap();
    assert!(specs[0].listeners.is_empty());

    // Children keep a load balancer from going without `cascade`.
    let r = lb(
        &tc,
        Method::DELETE,
        &format!("loadbalancers/{id}"),
        &token,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert!(r.json["faultstring"]
        .as_str()
        .unwrap()
        .contains("it has children"));
    let r = lb(
        &tc,
        Method::DELETE,
        &format!("loadbalancers/{id}?cascade=true"),
        &token,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.json);
    let r = lb(
        &tc,
        Method::GET,
        &format!("loadbalancers/{id}"),
        &token,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.json["faultstring"],
        format!("Load Balancer {id} not found.")
    );
    let r = lb(&tc, Method::GET, &format!("pools/{pool}"), &token, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let port = tc
        .network(Method::GET, &format!("ports/{vip_port}"), &token, None)
        .await;
    assert_eq!(
        port.status,
        StatusCode::NOT_FOUND,
        "the VIP port went with it"
    );
    assert!(tc.cloud.balancers.specs().await.unwrap().is_empty());
    tc.stop().await;
}

#[tokio::test]
async fn bad_load_balancer_requests_get_octavia_errors_on_every_backend() {
    for backend in backends() {
        bad_input(backend).await;
    }
}

async fn bad_input(backend: Backend) {
    let tc = TestCloud::start(backend).await;
    let admin = tc.admin_token().await;
    let (_, token) = tc.project_user(&admin, "web", "member").await;
    let (_, other_token) = tc.project_user(&admin, "other", "member").await;
    let (_, reader) = {
        // A reader on the first project.
        let role = tc
            .call(Method::GET, "roles?name=reader", &admin, None)
            .await
            .json["roles"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let user = tc
            .call(
                Method::POST,
                "users",
                &admin,
                Some(json!({"user": {"name": "web-reader", "domain_id": "default", "password": "pw"}})),
            )
            .await
            .id("user");
        let project = tc
            .call(Method::GET, "projects?name=web", &admin, None)
            .await
            .json["projects"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        tc.call(
            Method::PUT,
            &format!("projects/{project}/users/{user}/roles/{role}"),
            &admin,
            None,
        )
        .await;
        (
            project,
            tc.token("web-reader", "Default", "pw", "web", "Default")
                .await,
        )
    };
    let (_, subnet) = net(&tc, &token, "web-net", "10.20.0.0/24").await;
    let (_, lonely) = net(&tc, &token, "lonely-net", "10.30.0.0/24").await;
    let r = lb(
        &tc,
        Method::POST,
        "loadbalancers",
        &token,
        Some(json!({"loadbalancer": {"name": "web-lb", "vip_subnet_id": subnet}})),
    )
    .await;
    let id = r.id("loadbalancer");
    wait_active(&tc, &token, &id).await;
    let r = lb(
        &tc,
        Method::POST,
        "listeners",
        &token,
        Some(json!({"listener": {"loadbalancer_id": id, "protocol": "HTTP", "protocol_port": 80}})),
    )
    .await;
    let listener = r.id("listener");
    wait_active(&tc, &token, &id).await;
    let r = lb(
        &tc,
        Method::POST,
        "pools",
        &token,
        Some(json!({"pool": {"listener_id": listener, "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}})),
    )
    .await;
    let pool = r.id("pool");
    wait_active(&tc, &token, &id).await;

    let before = snapshot(&tc.cloud).await;
    let post = |path: &'static str, body: Value, tok: &str| {
        let tok = tok.to_owned();
        let tc = &tc;
        async move { lb(tc, Method::POST, path, &tok, Some(body)).await }
    };
    let cases: Vec<(&str, Reply, StatusCode)> = vec![
        (
            "no VIP",
            post("loadbalancers", json!({"loadbalancer": {"name": "x"}}), &token).await,
            StatusCode::BAD_REQUEST,
        ),
        (
            "a VIP subnet that doesn't exist",
            post("loadbalancers", json!({"loadbalancer": {"vip_subnet_id": "nope"}}), &token).await,
            StatusCode::BAD_REQUEST,
        ),
        (
            "an unknown provider",
            post("loadbalancers", json!({"loadbalancer": {"vip_subnet_id": subnet, "provider": "f5"}}), &token).await,
            StatusCode::BAD_REQUEST,
        ),
        (
            "a port out of range",
            post("listeners", json!({"listener": {"loadbalancer_id": id, "protocol": "HTTP", "protocol_port": 70000}}), &token).await,
            StatusCode::BAD_REQUEST,
        ),
        (
            "a protocol Octavia doesn't know",
            post("listeners", json!({"listener": {"loadbalancer_id": id, "protocol": "GOPHER", "protocol_port": 70}}), &token).await,
            StatusCode::BAD_REQUEST,
        ),
        (
            "a port another listener has",
            post("listeners", json!({"listener": {"loadbalancer_id": id, "protocol": "TCP", "protocol_port": 80}}), &token).await,
            StatusCode::CONFLICT,
        ),
        (
            "a second default pool",
            post("pools", json!({"pool": {"listener_id": listener, "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}}), &token).await,
            StatusCode::CONFLICT,
        ),
        (
            "an unknown algorithm",
            post("pools", json!({"pool": {"loadbalancer_id": id, "protocol": "HTTP", "lb_algorithm": "RANDOM"}}), &token).await,
            StatusCode::BAD_REQUEST,
        ),
        (
            "a pool on another project's listener",
            post("pools", json!({"pool": {"listener_id": listener, "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}}), &other_token).await,
            StatusCode::NOT_FOUND,
        ),
        (
            "a reader creating a listener",
            post("listeners", json!({"listener": {"loadbalancer_id": id, "protocol": "TCP", "protocol_port": 81}}), &reader).await,
            StatusCode::FORBIDDEN,
        ),
        (
            "a member on a subnet the VIP can't reach",
            lb(&tc, Method::POST, &format!("pools/{pool}/members"), &token,
               Some(json!({"member": {"address": "10.30.0.5", "protocol_port": 80, "subnet_id": lonely}}))).await,
            StatusCode::BAD_REQUEST,
        ),
        (
            "a member address on no reachable subnet",
            lb(&tc, Method::POST, &format!("pools/{pool}/members"), &token,
               Some(json!({"member": {"address": "10.30.0.5", "protocol_port": 80}}))).await,
            StatusCode::BAD_REQUEST,
        ),
        (
            "a member port of 0",
            lb(&tc, Method::POST, &format!("pools/{pool}/members"), &token,
               Some(json!({"member": {"address": "10.20.0.5", "protocol_port": 0}}))).await,
            StatusCode::BAD_REQUEST,
        ),
        (
            "a member address that is not one",
            lb(&tc, Method::POST, &format!("pools/{pool}/members"), &token,
               Some(json!({"member": {"address": "ten.twenty", "protocol_port": 80}}))).await,
            StatusCode::BAD_REQUEST,
        ),
        (
            "a monitor timeout over its delay",
            post("healthmonitors", json!({"healthmonitor": {"pool_id": pool, "type": "TCP", "delay": 1, "timeout": 5, "max_retries": 2}}), &token).await,
            StatusCode::BAD_REQUEST,
        ),
        (
            "a monitor with bad expected codes",
            post("healthmonitors", json!({"healthmonitor": {"pool_id": pool, "type": "HTTP", "delay": 5, "timeout": 2, "max_retries": 2, "expected_codes": "2xx"}}), &token).await,
            StatusCode::BAD_REQUEST,
        ),
        (
            "a body that is not JSON's object",
            post("loadbalancers", json!(["x"]), &token).await,
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (what, reply, want) in cases {
        assert_eq!(reply.status, want, "{what}: {}", reply.json);
        assert_eq!(reply.json["faultcode"], "Client", "{what}: {}", reply.json);
        assert!(
            !reply.json["faultstring"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "{what}: {}",
            reply.json
        );
    }
    // Another project sees nothing of it; a reader sees it.
    let r = lb(
        &tc,
        Method::GET,
        &format!("loadbalancers/{id}"),
        &other_token,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = lb(&tc, Method::GET, "loadbalancers", &other_token, None).await;
    assert_eq!(r.json["loadbalancers"], json!([]));
    let r = lb(
        &tc,
        Method::GET,
        &format!("loadbalancers/{id}"),
        &reader,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = lb(
        &tc,
        Method::DELETE,
        &format!("loadbalancers/{id}?cascade=true"),
        &other_token,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        snapshot(&tc.cloud).await,
        before,
        "refused requests changed nothing"
    );
    tc.stop().await;
}

#[tokio::test]
async fn quotas_limit_creates_on_every_backend() {
    for backend in backends() {
        quotas(backend).await;
    }
}

/// An admin sets a project's quota; a create past it gets Octavia's 403
/// and writes nothing; `null` and reset put the default (-1) back.
async fn quotas(backend: Backend) {
    let tc = TestCloud::start(backend).await;
    let admin = tc.admin_token().await;
    let (project, token) = tc.project_user(&admin, "web", "member").await;
    let (_, subnet) = net(&tc, &token, "n", "10.8.0.0/24").await;

    let r = lb(&tc, Method::GET, "quotas/defaults", &token, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["quota"]["load_balancer"], -1);
    assert_eq!(r.json["quota"]["l7rule"], -1);

    let q = format!("quotas/{project}");
    let r = lb(
        &tc,
        Method::PUT,
        &q,
        &admin,
        Some(json!({"quota": {"load_balancer": 1, "listener": 1}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    assert_eq!(r.json["quota"]["load_balancer"], 1);
    assert_eq!(
        r.json["quota"]["loadbalancer"], 1,
        "the deprecated spelling too"
    );
    assert_eq!(r.json["quota"]["pool"], -1);
    let r = lb(&tc, Method::GET, &q, &token, None).await;
    assert_eq!(
        (r.status, r.json["quota"]["listener"].clone()),
        (StatusCode::OK, json!(1))
    );
    let r = lb(&tc, Method::GET, "quotas", &admin, None).await;
    assert_eq!(r.json["quotas"].as_array().unwrap().len(), 1);
    assert_eq!(r.json["quotas"][0]["project_id"], project.as_str());

    for (body, says) in [
        (json!({"quota": {"load_balancer": -2}}), "between -1 and"),
        (
            json!({"quota": {"load_balancer": "many"}}),
            "should be an integer",
        ),
        (
            json!({"quota": {"volumes": 3}}),
            "Unknown attribute 'volumes'",
        ),
        (json!({"load_balancer": 3}), "Mandatory field missing"),
    ] {
        let r = lb(&tc, Method::PUT, &q, &admin, Some(body.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.json);
        assert!(
            r.json["faultstring"].as_str().unwrap().contains(says),
            "{body}: {}",
            r.json
        );
    }
    assert_eq!(
        lb(&tc, Method::GET, &q, &token, None).await.json["quota"]["load_balancer"],
        1
    );

    let create = json!({"loadbalancer": {"vip_subnet_id": subnet}});
    let r = lb(
        &tc,
        Method::POST,
        "loadbalancers",
        &token,
        Some(create.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let first = r.id("loadbalancer");
    wait_active(&tc, &token, &first).await;
    let before = snapshot(&tc.cloud).await;
    let r = lb(
        &tc,
        Method::POST,
        "loadbalancers",
        &token,
        Some(create.clone()),
    )
    .await;
    assert_eq!(
        (r.status, r.json["faultstring"].clone()),
        (
            StatusCode::FORBIDDEN,
            json!("Quota has been met for resources: Load Balancer")
        )
    );
    assert_eq!(
        snapshot(&tc.cloud).await,
        before,
        "a refused create writes nothing (no VIP port)"
    );
    let listener =
        json!({"listener": {"loadbalancer_id": first, "protocol": "HTTP", "protocol_port": 80}});
    let r = lb(&tc, Method::POST, "listeners", &token, Some(listener)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    wait_active(&tc, &token, &first).await;
    let second =
        json!({"listener": {"loadbalancer_id": first, "protocol": "TCP", "protocol_port": 81}});
    let r = lb(&tc, Method::POST, "listeners", &token, Some(second)).await;
    assert_eq!(
        (r.status, r.json["faultstring"].clone()),
        (
            StatusCode::FORBIDDEN,
            json!("Quota has been met for resources: Listener")
        )
    );

    // null puts one limit back to the default; reset puts them all back.
    let r = lb(
        &tc,
        Method::PUT,
        &q,
        &admin,
        Some(json!({"quota": {"load_balancer": null}})),
    )
    .await;
    assert_eq!(
        (
            r.json["quota"]["load_balancer"].clone(),
            r.json["quota"]["listener"].clone()
        ),
        (json!(-1), json!(1))
    );
    let r = lb(&tc, Method::POST, "loadbalancers", &token, Some(create)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let other_lb = r.id("loadbalancer");
    assert_eq!(
        lb(&tc, Method::DELETE, &q, &admin, None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        lb(&tc, Method::GET, &q, &token, None).await.json["quota"]["listener"],
        -1
    );
    assert_eq!(
        lb(&tc, Method::GET, "quotas", &admin, None).await.json["quotas"],
        json!([])
    );

    for id in [&first, &other_lb] {
        wait_active(&tc, &token, id).await;
        let r = lb(
            &tc,
            Method::DELETE,
            &format!("loadbalancers/{id}?cascade=true"),
            &token,
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.json);
    }
    tc.stop().await;
}

#[tokio::test]
async fn a_late_health_report_does_not_bring_back_a_deleted_member_on_every_backend() {
    for backend in backends() {
        late_report(backend).await;
    }
}

/// The network node's report can cross a member's delete: the member's
/// health row stays gone (and a report for a deleted load balancer writes
/// nothing either).
async fn late_report(backend: Backend) {
    use ferro_agent_api::balancer::{BalancerCounters, BalancerReport, MemberHealth};
    let tc = TestCloud::start(backend).await;
    let admin = tc.admin_token().await;
    let (_, token) = tc.project_user(&admin, "web", "member").await;
    let (_, subnet) = net(&tc, &token, "n", "10.7.0.0/24").await;
    let r = lb(
        &tc,
        Method::POST,
        "loadbalancers",
        &token,
        Some(json!({"loadbalancer": {"vip_subnet_id": subnet}})),
    )
    .await;
    let id = r.id("loadbalancer");
    wait_active(&tc, &token, &id).await;
    let r = lb(&tc, Method::POST, "pools", &token, Some(json!({"pool": {"loadbalancer_id": id, "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN"}}))).await;
    let pool = r.id("pool");
    wait_active(&tc, &token, &id).await;
    // Pools (and listeners) filter by the load balancer they show as a list.
    let r = lb(
        &tc,
        Method::GET,
        &format!("pools?loadbalancer_id={id}"),
        &token,
        None,
    )
    .await;
    assert_eq!(r.json["pools"].as_array().unwrap().len(), 1, "{}", r.json);
    let r = lb(
        &tc,
        Method::GET,
        "pools?loadbalancer_id=no-such-lb",
        &token,
        None,
    )
    .await;
    assert_eq!(r.json["pools"], json!([]));
    let r = lb(
        &tc,
        Method::POST,
        &format!("pools/{pool}/members"),
        &token,
        Some(json!({"member": {"address": "10.7.0.9", "protocol_port": 80}})),
    )
    .await;
    let member = r.id("member");
    wait_active(&tc, &token, &id).await;
    let r = lb(
        &tc,
        Method::DELETE,
        &format!("pools/{pool}/members/{member}"),
        &token,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.json);
    wait_active(&tc, &token, &id).await;

    let rows = |sql: &'static str, arg: String| {
        let pool = tc.cloud.db.pool().clone();
        async move {
            let (n,): (i64,) = ferro_store::sqlx::query_as(sql)
                .bind(arg)
                .fetch_one(&pool)
                .await
                .unwrap();
            n
        }
    };
    let report = |lb_id: &str| BalancerReport {
        id: lb_id.to_owned(),
        revision: 0,
        fault: None,
        members: vec![(member.clone(), MemberHealth::Down)],
        counters: BalancerCounters::default(),
    };
    tc.cloud
        .balancers
        .reported(vec![report(&id)])
        .await
        .unwrap();
    assert_eq!(
        rows(
            "SELECT COUNT(*) FROM lb_health WHERE id = $1",
            member.clone()
        )
        .await,
        0
    );

    let r = lb(
        &tc,
        Method::DELETE,
        &format!("loadbalancers/{id}?cascade=true"),
        &token,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.json);
    tc.cloud
        .balancers
        .reported(vec![report(&id)])
        .await
        .unwrap();
    assert_eq!(
        rows(
            "SELECT COUNT(*) FROM lb_health WHERE loadbalancer_id = $1",
            id.clone()
        )
        .await,
        0
    );
    tc.stop().await;
}
