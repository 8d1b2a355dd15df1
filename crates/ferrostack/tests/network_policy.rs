//! Network endpoints with the personas allowed and denied: admin; member
//! and reader of project p1 (which owns a network, subnet, ports, router,
//! floating IP and security group); `other`, a member of p2. Denied means
//! 403 for an action the persona may never do, or 404 for another
//! project's resource (whose existence is not revealed).

use ferro_test_support::{Backend, Reply, TestCloud};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq)]
enum P {
    Admin,
    Member,
    Reader,
    Other,
}
use P::*;

fn id(r: &Reply, kind: &str) -> String {
    assert!(r.status.is_success(), "{kind}: {} {}", r.status, r.json);
    r.json[kind]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_network_endpoint_enforces_its_policy() {
    let tc = TestCloud::start(Backend::Sqlite).await;
    let admin = tc.admin_token().await;
    let (p1, member) = tc.project_user(&admin, "p1", "member").await;
    // A reader of p1: a user made with its own project, then given reader on p1.
    tc.project_user(&admin, "p1r", "reader").await;
    let reader_user = tc
        .call(Method::GET, "users?name=p1r-user", &admin, None)
        .await
        .json["users"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let reader_role = tc
        .call(Method::GET, "roles?name=reader", &admin, None)
        .await
        .json["roles"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    tc.call(
        Method::PUT,
        &format!("projects/{p1}/users/{reader_user}/roles/{reader_role}"),
        &admin,
        None,
    )
    .await;
    let reader = tc.token("p1r-user", "Default", "pw", "p1", "Default").await;
    let (_, other) = tc.project_user(&admin, "p2", "member").await;
    let tokens = [
        (Admin, admin.clone()),
        (Member, member.clone()),
        (Reader, reader),
        (Other, other),
    ];

    let ext = id(
        &tc.network(
            Method::POST,
            "networks",
            &admin,
            Some(
                json!({"network": {"name": "ext", "router:external": true, "shared": true,
        "provider:network_type": "flat", "provider:physical_network": "physnet1"}}),
            ),
        )
        .await,
        "network",
    );
    tc.network(
        Method::POST,
        "subnets",
        &admin,
        Some(json!({"subnet": {"network_id": ext, "cidr": "172.16.0.0/20", "enable_dhcp": false}})),
    )
    .await;
    let net = id(
        &tc.network(
            Method::POST,
            "networks",
            &member,
            Some(json!({"network": {"name": "n1"}})),
        )
        .await,
        "network",
    );
    let sub = id(
        &tc.network(
            Method::POST,
            "subnets",
            &member,
            Some(json!({"subnet": {"network_id": net, "cidr": "10.1.0.0/24"}})),
        )
        .await,
        "subnet",
    );
    let port = id(
        &tc.network(
            Method::POST,
            "ports",
            &member,
            Some(json!({"port": {"network_id": net}})),
        )
        .await,
        "port",
    );
    let doomed = id(
        &tc.network(
            Method::POST,
            "ports",
            &member,
            Some(json!({"port": {"network_id": net}})),
        )
        .await,
        "port",
    );
    let router = id(
        &tc.network(
            Method::POST,
            "routers",
            &member,
            Some(json!({"router": {"name": "r1",
        "external_gateway_info": {"network_id": ext}}})),
        )
        .await,
        "router",
    );
    tc.network(
        Method::PUT,
        &format!("routers/{router}/add_router_interface"),
        &member,
        Some(json!({"subnet_id": sub})),
    )
    .await;
    let fip = id(
        &tc.network(
            Method::POST,
            "floatingips",
            &member,
            Some(json!({"floatingip": {"floating_network_id": ext, "port_id": port}})),
        )
        .await,
        "floatingip",
    );
    let sg = id(
        &tc.network(
            Method::POST,
            "security-groups",
            &member,
            Some(json!({"security_group": {"name": "web"}})),
        )
        .await,
        "security_group",
    );

    let all = &[Admin, Member, Reader, Other][..];
    let p1_read = &[Admin, Member, Reader][..];
    let p1_write = &[Admin, Member][..];
    let creators = &[Admin, Member, Other][..];
    let admin_only = &[Admin][..];
    let name = |k: &str, v: &str| Some(json!({ k: {"name": v} }));
    type Case<'a> = (Method, String, Option<Value>, &'a [P]);
    let cases: Vec<Case> = vec![
        (Method::GET, "extensions".into(), None, all),
        (Method::GET, "networks".into(), None, all),
        (Method::GET, format!("networks/{ext}"), None, all),
        (
            Method::PUT,
            format!("networks/{ext}"),
            name("network", "ext"),
            admin_only,
        ),
        (Method::GET, format!("networks/{net}"), None, p1_read),
        (
            Method::PUT,
            format!("networks/{net}"),
            name("network", "n1"),
            p1_write,
        ),
        (
            Method::POST,
            "networks".into(),
            name("network", "x"),
            creators,
        ),
        (
            Method::POST,
            "networks".into(),
            Some(json!({"network": {"name": "y", "router:external": true}})),
            admin_only,
        ),
        (Method::GET, "subnets".into(), None, all),
        (Method::GET, format!("subnets/{sub}"), None, p1_read),
        (
            Method::PUT,
            format!("subnets/{sub}"),
            name("subnet", "s1"),
            p1_write,
        ),
        (
            Method::POST,
            "subnets".into(),
            Some(json!({"subnet": {"network_id": net, "cidr": "10.2.0.0/24"}})),
            p1_write,
        ),
        (Method::GET, "ports".into(), None, all),
        (Method::GET, format!("ports/{port}"), None, p1_read),
        (
            Method::PUT,
            format!("ports/{port}"),
            name("port", "p"),
            p1_write,
        ),
        (
            Method::POST,
            "ports".into(),
            Some(json!({"port": {"network_id": net}})),
            p1_write,
        ),
        (
            Method::POST,
            "ports".into(),
            Some(json!({"port": {"network_id": ext, "binding:host_id": "h"}})),
            admin_only,
        ),
        (Method::GET, "routers".into(), None, all),
        (Method::GET, format!("routers/{router}"), None, p1_read),
        (
            Method::PUT,
            format!("routers/{router}"),
            name("router", "r1"),
            p1_write,
        ),
        (
            Method::POST,
            "routers".into(),
            name("router", "r2"),
            creators,
        ),
        (Method::GET, "floatingips".into(), None, all),
        (Method::GET, format!("floatingips/{fip}"), None, p1_read),
        (
            Method::PUT,
            format!("floatingips/{fip}"),
            Some(json!({"floatingip": {"description": "d"}})),
            p1_write,
        ),
        (
            Method::POST,
            "floatingips".into(),
            Some(json!({"floatingip": {"floating_network_id": ext}})),
            creators,
        ),
        (Method::GET, "security-groups".into(), None, all),
        (Method::GET, format!("security-groups/{sg}"), None, p1_read),
        (
            Method::PUT,
            format!("security-groups/{sg}"),
            Some(json!({"security_group": {"description": "d"}})),
            p1_write,
        ),
        (
            Method::POST,
            "security-group-rules".into(),
            Some(
                json!({"security_group_rule": {"security_group_id": sg, "direction": "ingress",
            "protocol": "tcp", "port_range_min": 80, "port_range_max": 80}}),
            ),
            p1_write,
        ),
        (Method::GET, format!("quotas/{p1}"), None, p1_read),
        (
            Method::PUT,
            format!("quotas/{p1}"),
            Some(json!({"quota": {"port": 100}})),
            admin_only,
        ),
        (
            Method::GET,
            "network-ip-availabilities".into(),
            None,
            admin_only,
        ),
        (
            Method::GET,
            "agents/4b5c1bd6-0000-4000-8000-000000000000".into(),
            None,
            admin_only,
        ),
        (Method::DELETE, format!("ports/{doomed}"), None, p1_write),
    ];
    let mut failures = Vec::new();
    for (method, path, body, allowed) in &cases {
        for (persona, token) in &tokens {
            let r = tc.network(method.clone(), path, token, body.clone()).await;
            let ok = if allowed.contains(persona) {
                !matches!(r.status, StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED)
                    && !r.status.is_server_error()
            } else {
                matches!(r.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND)
            };
            if !ok {
                failures.push(format!(
                    "{method} {path} as {persona:?}: {} {}",
                    r.status, r.json
                ));
            }
        }
    }
    // Without a token: 401 in Neutron's body.
    let anon = tc
        .send(
            Method::GET,
            &format!("{}/v2.0/networks", tc.cloud.network_url),
            None,
            None,
        )
        .await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anon.json["NeutronError"]["type"], "HTTPUnauthorized");
    assert!(
        failures.is_empty(),
        "policy table violations:\n{}",
        failures.join("\n")
    );
    tc.stop().await;
}
