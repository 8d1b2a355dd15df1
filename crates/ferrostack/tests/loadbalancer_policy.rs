//! Who may do what with load balancers: every route of the Octavia API
//! against four personas — the cloud admin, a member of the owning project,
//! a reader of it, and a member of another project — with the exact status
//! each gets. A coverage check fails when the API grows a route this table
//! lacks.

use std::time::{Duration, Instant};

use ferro_test_support::{Backend, RawBody, TestCloud};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn call(
    tc: &TestCloud,
    m: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let url = format!("{}/v2/lbaas/{path}", tc.cloud.loadbalancer_url);
    let r = tc.send(m, &url, Some(token), body.map(RawBody::Json)).await;
    (r.status, r.json)
}

async fn settle(tc: &TestCloud, token: &str, lb: &str) {
    let start = Instant::now();
    while call(tc, Method::GET, &format!("loadbalancers/{lb}"), token, None)
        .await
        .1["loadbalancer"]["provisioning_status"]
        != "ACTIVE"
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "load balancer {lb} never settled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every route the router serves under `/v2/lbaas` (the coverage check).
const ROUTES: &[(&str, &str)] = &[
    ("GET", "loadbalancers"),
    ("POST", "loadbalancers"),
    ("GET", "loadbalancers/{lb}"),
    ("PUT", "loadbalancers/{lb}"),
    ("DELETE", "loadbalancers/{lb}"),
    ("GET", "loadbalancers/{lb}/stats"),
    ("GET", "loadbalancers/{lb}/status"),
    ("GET", "listeners"),
    ("POST", "listeners"),
    ("GET", "listeners/{listener}"),
    ("PUT", "listeners/{listener}"),
    ("DELETE", "listeners/{listener}"),
    ("GET", "pools"),
    ("POST", "pools"),
    ("GET", "pools/{pool}"),
    ("PUT", "pools/{pool}"),
    ("DELETE", "pools/{pool}"),
    ("GET", "pools/{pool}/members"),
    ("POST", "pools/{pool}/members"),
    ("GET", "pools/{pool}/members/{member}"),
    ("PUT", "pools/{pool}/members/{member}"),
    ("DELETE", "pools/{pool}/members/{member}"),
    ("GET", "healthmonitors"),
    ("POST", "healthmonitors"),
    ("GET", "healthmonitors/{hm}"),
    ("PUT", "healthmonitors/{hm}"),
    ("DELETE", "healthmonitors/{hm}"),
    ("GET", "l7policies"),
    ("POST", "l7policies"),
    ("GET", "l7policies/{l7p}"),
    ("PUT", "l7policies/{l7p}"),
    ("DELETE", "l7policies/{l7p}"),
    ("GET", "l7policies/{l7p}/rules"),
    ("POST", "l7policies/{l7p}/rules"),
    ("GET", "l7policies/{l7p}/rules/{rule}"),
    ("PUT", "l7policies/{l7p}/rules/{rule}"),
    ("DELETE", "l7policies/{l7p}/rules/{rule}"),
    ("GET", "quotas"),
    ("GET", "quotas/defaults"),
    ("GET", "quotas/{project}"),
    ("PUT", "quotas/{project}"),
    ("DELETE", "quotas/{project}"),
    ("GET", "providers"),
    ("GET", "flavors"),
    ("GET", "availabilityzones"),
];

#[tokio::test]
async fn every_route_answers_each_persona_as_octavia_does() {
    let tc = TestCloud::start(Backend::Sqlite).await;
    let admin = tc.admin_token().await;
    let (_, owner) = tc.project_user(&admin, "web", "member").await;
    let (_, other) = tc.project_user(&admin, "other", "member").await;
    let reader = {
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
        tc.token("web-reader", "Default", "pw", "web", "Default")
            .await
    };
    let n = tc
        .network(
            Method::POST,
            "networks",
            &owner,
            Some(json!({"network": {"name": "n"}})),
        )
        .await
        .id("network");
    let subnet = tc
        .network(
            Method::POST,
            "subnets",
            &owner,
            Some(json!({"subnet": {"network_id": n, "cidr": "10.9.0.0/24", "ip_version": 4}})),
        )
        .await
        .id("subnet");

    // The owner's objects, made once; writes below leave them in place.
    let (s, b) = call(
        &tc,
        Method::POST,
        "loadbalancers",
        &owner,
        Some(json!({"loadbalancer": {"vip_subnet_id": subnet}})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let lb = b["loadbalancer"]["id"].as_str().unwrap().to_owned();
    settle(&tc, &owner, &lb).await;
    let made = |b: Value, k: &str| b[k]["id"].as_str().unwrap().to_owned();
    let listener = made(call(&tc, Method::POST, "listeners", &owner, Some(json!({"listener": {"loadbalancer_id": lb, "protocol": "HTTP", "protocol_port": 80}}))).await.1, "listener");
    settle(&tc, &owner, &lb).await;
    let pool = made(call(&tc, Method::POST, "pools", &owner, Some(json!({"pool": {"listener_id": listener, "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}}))).await.1, "pool");
    settle(&tc, &owner, &lb).await;
    let member = made(
        call(
            &tc,
            Method::POST,
            &format!("pools/{pool}/members"),
            &owner,
            Some(json!({"member": {"address": "10.9.0.5", "protocol_port": 80}})),
        )
        .await
        .1,
        "member",
    );
    settle(&tc, &owner, &lb).await;
    let hm = made(call(&tc, Method::POST, "healthmonitors", &owner, Some(json!({"healthmonitor": {"pool_id": pool, "type": "TCP", "delay": 5, "timeout": 2, "max_retries": 2}}))).await.1, "healthmonitor");
    settle(&tc, &owner, &lb).await;
    let l7p = made(call(&tc, Method::POST, "l7policies", &owner, Some(json!({"l7policy": {"listener_id": listener, "action": "REDIRECT_TO_POOL", "redirect_pool_id": pool}}))).await.1, "l7policy");
    settle(&tc, &owner, &lb).await;
    let rule = made(
        call(
            &tc,
            Method::POST,
            &format!("l7policies/{l7p}/rules"),
            &owner,
            Some(json!({"rule": {"type": "PATH", "compare_type": "STARTS_WITH", "value": "/v2"}})),
        )
        .await
        .1,
        "rule",
    );
    settle(&tc, &owner, &lb).await;

    let path = |p: &str| {
        p.replace("{lb}", &lb)
            .replace("{listener}", &listener)
            .replace("{pool}", &pool)
            .replace("{member}", &member)
            .replace("{hm}", &hm)
            .replace("{l7p}", &l7p)
            .replace("{rule}", &rule)
    };
    // Bodies that would be valid for the owner. Creates for the denied
    // personas only (the allowed ones' creates are checked by
    // loadbalancer_flow.rs); updates change nothing but the name.
    let body = |m: &str, p: &str| -> Option<Value> {
        match (m, p) {
            ("POST", "loadbalancers") => Some(json!({"loadbalancer": {"vip_subnet_id": subnet}})),
            ("POST", "listeners") => Some(
                json!({"listener": {"loadbalancer_id": lb, "protocol": "TCP", "protocol_port": 81}}),
            ),
            ("POST", "pools") => Some(
                json!({"pool": {"loadbalancer_id": lb, "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN"}}),
            ),
            ("POST", "pools/{pool}/members") => {
                Some(json!({"member": {"address": "10.9.0.6", "protocol_port": 80}}))
            }
            ("POST", "healthmonitors") => Some(
                json!({"healthmonitor": {"pool_id": pool, "type": "TCP", "delay": 5, "timeout": 2, "max_retries": 2}}),
            ),
            ("POST", "l7policies") => {
                Some(json!({"l7policy": {"listener_id": listener, "action": "REJECT"}}))
            }
            ("POST", "l7policies/{l7p}/rules") => Some(
                json!({"rule": {"type": "HOST_NAME", "compare_type": "EQUAL_TO", "value": "a.example"}}),
            ),
            ("PUT", "l7policies/{l7p}") => Some(json!({"l7policy": {"name": "x"}})),
            ("PUT", "l7policies/{l7p}/rules/{rule}") => Some(json!({"rule": {"invert": false}})),
            ("PUT", "loadbalancers/{lb}") => Some(json!({"loadbalancer": {"name": "x"}})),
            ("PUT", "listeners/{listener}") => Some(json!({"listener": {"name": "x"}})),
            ("PUT", "pools/{pool}") => Some(json!({"pool": {"name": "x"}})),
            ("PUT", "pools/{pool}/members/{member}") => Some(json!({"member": {"name": "x"}})),
            ("PUT", "healthmonitors/{hm}") => Some(json!({"healthmonitor": {"name": "x"}})),
            _ => None,
        }
    };
    let ok = StatusCode::OK;
    // (route, reader, other project's member); the owner and the admin get
    // 200 on every read and update (checked below).
    for (m, p) in ROUTES {
        if p.starts_with("quotas") {
            continue; // their own table, below
        }
        let is_list = !p.contains('{') && *m == "GET";
        let on_object = p.contains('{');
        let (want_reader, want_other) = match *m {
            "GET" if is_list => (ok, ok),
            "GET" => (ok, StatusCode::NOT_FOUND),
            // The POST routes that name an object in their body or path.
            "POST" if *p == "loadbalancers" => (StatusCode::FORBIDDEN, StatusCode::BAD_REQUEST),
            "POST" => (StatusCode::FORBIDDEN, StatusCode::NOT_FOUND),
            _ => (StatusCode::FORBIDDEN, StatusCode::NOT_FOUND),
        };
        let method = Method::from_bytes(m.as_bytes()).unwrap();
        let (s, b) = call(&tc, method.clone(), &path(p), &reader, body(m, p)).await;
        assert_eq!(s, want_reader, "reader {m} {p}: {b}");
        let (s, b) = call(&tc, method.clone(), &path(p), &other, body(m, p)).await;
        assert_eq!(s, want_other, "other project {m} {p}: {b}");
        if *m == "GET" && is_list && p.starts_with("loadbalancers") {
            assert_eq!(b["loadbalancers"], json!([]), "another project lists none");
        }
        if *m == "GET" || (*m == "PUT" && on_object) {
            for (who, token) in [("owner", &owner), ("admin", &admin)] {
                let (s, b) = call(&tc, method.clone(), &path(p), token, body(m, p)).await;
                assert_eq!(s, ok, "{who} {m} {p}: {b}");
                if *m == "PUT" {
                    settle(&tc, &owner, &lb).await;
                }
            }
        }
    }
    // Quotas: every persona reads the defaults and its own project's;
    // only the admin sets or resets one.
    let project = tc
        .call(Method::GET, "projects?name=web", &admin, None)
        .await
        .json["projects"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let forbidden = StatusCode::FORBIDDEN;
    let quota_body = Some(json!({"quota": {"pool": 5}}));
    // (method, path, admin, owner, reader, other project's member)
    let table = [
        ("GET", "quotas", ok, ok, ok, ok),
        ("GET", "quotas/defaults", ok, ok, ok, ok),
        ("GET", "quotas/{project}", ok, ok, ok, forbidden),
        (
            "PUT",
            "quotas/{project}",
            StatusCode::ACCEPTED,
            forbidden,
            forbidden,
            forbidden,
        ),
        (
            "DELETE",
            "quotas/{project}",
            StatusCode::NO_CONTENT,
            forbidden,
            forbidden,
            forbidden,
        ),
    ];
    for (m, p, want_admin, want_owner, want_reader, want_other) in table {
        let method = Method::from_bytes(m.as_bytes()).unwrap();
        let path = p.replace("{project}", &project);
        let body = if m == "PUT" { quota_body.clone() } else { None };
        // The admin last, so a refused write is checked before the one that works.
        for (who, token, want) in [
            ("owner", &owner, want_owner),
            ("reader", &reader, want_reader),
            ("other project", &other, want_other),
            ("admin", &admin, want_admin),
        ] {
            let (s, b) = call(&tc, method.clone(), &path, token, body.clone()).await;
            assert_eq!(s, want, "{who} {m} {p}: {b}");
        }
    }
    assert!(
        ROUTES
            .iter()
            .filter(|(_, p)| p.starts_with("quotas"))
            .count()
            == table.len()
    );

    // The owner's deletes, children first; the admin deletes the rest.
    for (p, token) in [
        (format!("l7policies/{l7p}/rules/{rule}"), &owner),
        (format!("l7policies/{l7p}"), &admin),
        (format!("healthmonitors/{hm}"), &owner),
        (format!("pools/{pool}/members/{member}"), &owner),
        (format!("pools/{pool}"), &admin),
        (format!("listeners/{listener}"), &owner),
    ] {
        let (s, b) = call(&tc, Method::DELETE, &p, token, None).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "DELETE {p}: {b}");
        settle(&tc, &owner, &lb).await;
    }
    let (s, b) = call(
        &tc,
        Method::DELETE,
        &format!("loadbalancers/{lb}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    tc.stop().await;
}

/// The table above names every route the load-balancer router serves.
#[test]
fn the_policy_table_covers_every_route() {
    let src = include_str!("../../loadbalancer/src/api/mod.rs");
    let served: Vec<String> = src
        .split("format!(\"{p}/")
        .skip(1)
        .map(|rest| {
            rest.split('"')
                .next()
                .unwrap_or_default()
                .replace("{{", "{")
                .replace("}}", "}")
        })
        .collect();
    assert!(!served.is_empty(), "no routes found in the router");
    for r in served {
        let generic = r
            .replace("{id}/members/{member}", "{pool}/members/{member}")
            .replace("pools/{id}", "pools/{pool}")
            .replace("loadbalancers/{id}", "loadbalancers/{lb}")
            .replace("listeners/{id}", "listeners/{listener}")
            .replace("healthmonitors/{id}", "healthmonitors/{hm}")
            .replace("l7policies/{id}", "l7policies/{l7p}");
        assert!(
            ROUTES.iter().any(|(_, p)| *p == generic),
            "route {r} ({generic}) has no row in the policy table"
        );
    }
}
