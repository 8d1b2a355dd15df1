//! The network API end to end over HTTP, with the fake hypervisor: the
//! seed's Parts 4–7 (external flat network, tenant network, router with
//! gateway, security group rules, a server on the network, a floating IP),
//! refusals with Neutron's error bodies that change nothing, and isolation
//! between projects. (The dataplane is tested by tests/cli/network.sh.)

use std::time::{Duration, Instant};

use ferro_test_support::{backends, snapshot, tiny_qcow2, Backend, Reply, TestCloud};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const V: &str = "2.79";

fn id(r: &Reply, kind: &str) -> String {
    assert!(r.status.is_success(), "{kind}: {} {}", r.status, r.json);
    r.json[kind]["id"].as_str().unwrap().to_owned()
}

fn neutron_type(r: &Reply) -> &str {
    r.json["NeutronError"]["type"].as_str().unwrap_or("")
}

/// ext_net + ext_subnet + user1_net + user1_subnet + user1_router with its
/// interface and gateway, as the seed makes them.
struct Seed {
    ext_net: String,
    user_net: String,
    user_subnet: String,
    router: String,
}

async fn seed_networks(tc: &TestCloud, admin: &str) -> Seed {
    let ext = tc
        .network(Method::POST, "networks", admin, Some(json!({"network": {"name": "ext_net", "admin_state_up": true, "shared": true,
            "router:external": true, "provider:network_type": "flat", "provider:physical_network": "physnet1"}})))
        .await;
    assert_eq!(ext.status, StatusCode::CREATED, "{}", ext.json);
    assert_eq!(ext.json["network"]["provider:network_type"], "flat");
    assert_eq!(ext.json["network"]["mtu"], 1500);
    let ext_net = id(&ext, "network");
    let sub = tc
        .network(
            Method::POST,
            "subnets",
            admin,
            Some(
                json!({"subnet": {"name": "ext_subnet", "network_id": ext_net, "ip_version": 4,
            "cidr": "172.16.7.0/20", "enable_dhcp": false, "gateway_ip": "172.16.0.1",
            "allocation_pools": [{"start": "172.16.7.0", "end": "172.16.8.255"}]}}),
            ),
        )
        .await;
    assert_eq!(sub.status, StatusCode::CREATED, "{}", sub.json);
    assert_eq!(
        sub.json["subnet"]["cidr"], "172.16.0.0/20",
        "Neutron normalises the CIDR"
    );
    assert_eq!(sub.json["subnet"]["dns_nameservers"], json!([]));
    assert_eq!(sub.json["subnet"]["host_routes"], json!([]));
    let net = tc
        .network(Method::POST, "networks", admin, Some(json!({"network": {"name": "user1_net", "admin_state_up": true, "router:external": false}})))
        .await;
    assert_eq!(net.json["network"]["provider:network_type"], "vxlan");
    assert_eq!(net.json["network"]["mtu"], 1450);
    assert!(
        net.json["network"]["provider:segmentation_id"]
            .as_i64()
            .unwrap()
            >= 1
    );
    let user_net = id(&net, "network");
    let sub = tc
        .network(Method::POST, "subnets", admin, Some(json!({"subnet": {"name": "user1_subnet", "network_id": user_net, "ip_version": 4,
            "cidr": "192.169.0.0/24", "allocation_pools": [{"start": "192.169.0.2", "end": "192.169.0.254"}]}})))
        .await;
    assert_eq!(sub.json["subnet"]["gateway_ip"], "192.169.0.1");
    assert_eq!(sub.json["subnet"]["enable_dhcp"], true);
    let user_subnet = id(&sub, "subnet");
    let router = tc
        .network(
            Method::POST,
            "routers",
            admin,
            Some(json!({"router": {"name": "user1_router", "admin_state_up": true}})),
        )
        .await;
    assert_eq!(router.json["router"]["external_gateway_info"], Value::Null);
    assert_eq!(router.json["router"]["routes"], json!([]));
    let router = id(&router, "router");
    // `external_gateway_info: {}` means no gateway, as in Neutron.
    let bare = tc
        .network(
            Method::POST,
            "routers",
            admin,
            Some(json!({"router": {"name": "bare", "external_gateway_info": {}}})),
        )
        .await;
    assert_eq!(bare.status, StatusCode::CREATED, "{}", bare.json);
    assert_eq!(bare.json["router"]["external_gateway_info"], Value::Null);
    let gone = tc
        .network(
            Method::DELETE,
            &format!("routers/{}", id(&bare, "router")),
            admin,
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let add = tc
        .network(
            Method::PUT,
            &format!("routers/{router}/add_router_interface"),
            admin,
            Some(json!({"subnet_id": user_subnet})),
        )
        .await;
    assert_eq!(add.status, StatusCode::OK, "{}", add.json);
    assert_eq!(add.json["subnet_id"], user_subnet);
    assert_eq!(add.json["network_id"], user_net);
    assert!(add.json["port_id"].is_string());
    let multihoming = tc
        .network(
            Method::GET,
            "extensions/external-gateway-multihoming",
            admin,
            None,
        )
        .await;
    assert_eq!(multihoming.status, StatusCode::NOT_FOUND);
    assert_eq!(neutron_type(&multihoming), "ExtensionNotFound");
    let exts = tc.network(Method::GET, "extensions", admin, None).await;
    assert!(exts.json["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["alias"] == "router"));
    let gw = tc
        .network(
            Method::PUT,
            &format!("routers/{router}"),
            admin,
            Some(json!({"router": {"external_gateway_info": {"network_id": ext_net}}})),
        )
        .await;
    assert_eq!(gw.status, StatusCode::OK, "{}", gw.json);
    let info = &gw.json["router"]["external_gateway_info"];
    assert_eq!(info["network_id"], ext_net.as_str());
    assert_eq!(info["enable_snat"], true);
    assert_eq!(
        info["external_fixed_ips"][0]["ip_address"], "172.16.7.0",
        "lowest address of the pool"
    );
    Seed {
        ext_net,
        user_net,
        user_subnet,
        router,
    }
}

async fn flavor_and_image(tc: &TestCloud, admin: &str) -> (String, String) {
    let image = tc.upload_image(admin, "tiny", "qcow2", tiny_qcow2()).await;
    let f = tc
        .compute(
            Method::POST,
            "flavors",
            admin,
            Some(json!({"flavor": {"name": "m1.tiny", "ram": 1024, "vcpus": 1, "disk": 20}})),
            V,
        )
        .await;
    (image, f.json["flavor"]["id"].as_str().unwrap().to_owned())
}

async fn wait_active(tc: &TestCloud, token: &str, id: &str) -> Value {
    let start = Instant::now();
    loop {
        let r = tc
            .compute(Method::GET, &format!("servers/{id}"), token, None, V)
            .await;
        if r.json["server"]["status"] == "ACTIVE" {
            return r.json["server"].clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "server {id} never became ACTIVE: {}",
            r.json
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn seed_walkthrough_on_every_backend() {
    for backend in backends() {
        walkthrough(backend).await;
    }
}

async fn walkthrough(backend: Backend) {
    let tc = TestCloud::start(backend).await;
    let admin = tc.admin_token().await;
    let seed = seed_networks(&tc, &admin).await;

    // Exactly one `default` group for the admin, though other projects have theirs.
    let (_, other) = tc.project_user(&admin, "p2", "member").await;
    let theirs = tc
        .network(Method::GET, "security-groups?name=default", &other, None)
        .await;
    assert_eq!(theirs.json["security_groups"].as_array().unwrap().len(), 1);
    let sgs = tc
        .network(Method::GET, "security-groups?name=default", &admin, None)
        .await;
    let groups = sgs.json["security_groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{}", sgs.json);
    assert_ne!(groups[0]["id"], theirs.json["security_groups"][0]["id"]);
    let default = groups[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        groups[0]["security_group_rules"].as_array().unwrap().len(),
        4,
        "Neutron's default rules"
    );
    for (proto, ports) in [("tcp", Some(22)), ("icmp", None)] {
        let mut rule = json!({"security_group_id": default, "direction": "ingress", "ethertype": "IPv4", "protocol": proto,
            "remote_ip_prefix": "0.0.0.0/0"});
        if let Some(p) = ports {
            rule["port_range_min"] = json!(p);
            rule["port_range_max"] = json!(p);
        }
        let r = tc
            .network(
                Method::POST,
                "security-group-rules",
                &admin,
                Some(json!({"security_group_rule": rule.clone()})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
        assert_eq!(r.json["security_group_rule"]["belongs_to_default_sg"], true);
        let again = tc
            .network(
                Method::POST,
                "security-group-rules",
                &admin,
                Some(json!({"security_group_rule": rule})),
            )
            .await;
        assert_eq!(again.status, StatusCode::CONFLICT);
        assert_eq!(neutron_type(&again), "SecurityGroupRuleExists");
    }

    let (image, flavor) = flavor_and_image(&tc, &admin).await;
    let srv = tc
        .compute(
            Method::POST,
            "servers",
            &admin,
            Some(
                json!({"server": {"name": "client", "imageRef": image, "flavorRef": flavor,
            "networks": [{"uuid": seed.user_net}], "security_groups": [{"name": default}]}}),
            ),
            V,
        )
        .await;
    assert_eq!(srv.status, StatusCode::ACCEPTED, "{}", srv.json);
    let server = srv.json["server"]["id"].as_str().unwrap().to_owned();
    let shown = wait_active(&tc, &admin, &server).await;
    let fixed = shown["addresses"]["user1_net"][0].clone();
    assert_eq!(fixed["OS-EXT-IPS:type"], "fixed");
    assert_eq!(
        fixed["addr"], "192.169.0.2",
        "first pool address (the router has .1)"
    );
    assert_eq!(shown["security_groups"], json!([{"name": "default"}]));

    let ports = tc
        .network(
            Method::GET,
            &format!("ports?device_id={server}"),
            &admin,
            None,
        )
        .await;
    let ports = ports.json["ports"].as_array().unwrap().clone();
    assert_eq!(ports.len(), 1);
    let port = ports[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(ports[0]["device_owner"], "compute:nova");
    assert_eq!(ports[0]["binding:host_id"], "fake-host");
    assert_eq!(ports[0]["status"], "ACTIVE");
    assert_eq!(ports[0]["security_groups"], json!([default]));

    let fip = tc
        .network(
            Method::POST,
            "floatingips",
            &admin,
            Some(json!({"floatingip": {"floating_network_id": seed.ext_net}})),
        )
        .await;
    assert_eq!(fip.status, StatusCode::CREATED, "{}", fip.json);
    assert_eq!(fip.json["floatingip"]["status"], "DOWN");
    assert_eq!(fip.json["floatingip"]["port_id"], Value::Null);
    let address = fip.json["floatingip"]["floating_ip_address"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(address, "172.16.7.1");
    let fip = fip.json["floatingip"]["id"].as_str().unwrap().to_owned();
    let assoc = tc
        .network(
            Method::PUT,
            &format!("floatingips/{fip}"),
            &admin,
            Some(json!({"floatingip": {"port_id": port}})),
        )
        .await;
    assert_eq!(assoc.status, StatusCode::OK, "{}", assoc.json);
    assert_eq!(assoc.json["floatingip"]["status"], "ACTIVE");
    assert_eq!(assoc.json["floatingip"]["fixed_ip_address"], "192.169.0.2");
    assert_eq!(assoc.json["floatingip"]["router_id"], seed.router.as_str());
    let listed = tc
        .compute(Method::GET, "servers/detail", &admin, None, V)
        .await;
    let addrs = &listed.json["servers"][0]["addresses"]["user1_net"];
    assert_eq!(addrs.as_array().unwrap().len(), 2, "{addrs}");
    assert_eq!(addrs[1]["OS-EXT-IPS:type"], "floating");
    assert_eq!(addrs[1]["addr"], address.as_str());
    // The list writes each server straight to JSON; `show` goes through a
    // value: both must say the same, addresses and groups included.
    let one = &listed.json["servers"][0];
    let shown = tc
        .compute(
            Method::GET,
            &format!("servers/{}", one["id"].as_str().unwrap()),
            &admin,
            None,
            V,
        )
        .await;
    // Nova's show (not its list) adds the server's groups from 2.71.
    let mut shown = shown.json["server"].clone();
    assert_eq!(shown["server_groups"], json!([]));
    if let Some(o) = shown.as_object_mut() {
        o.remove("server_groups");
    }
    assert_eq!(&shown, one);
    assert_eq!(one["security_groups"], json!([{"name": "default"}]));

    // The seed's Checkpoint: instance, router interface, router gateway, floating IP.
    let all = tc.network(Method::GET, "ports", &admin, None).await;
    let mut owners: Vec<String> = all.json["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["device_owner"].as_str().unwrap().to_owned())
        .collect();
    owners.sort();
    assert_eq!(
        owners,
        [
            "compute:nova",
            "network:floatingip",
            "network:router_gateway",
            "network:router_interface"
        ]
    );

    // The interface can't go while the floating IP needs it; the gateway neither.
    let rm = tc
        .network(
            Method::PUT,
            &format!("routers/{}/remove_router_interface", seed.router),
            &admin,
            Some(json!({"subnet_id": seed.user_subnet})),
        )
        .await;
    assert_eq!(rm.status, StatusCode::CONFLICT);
    assert_eq!(neutron_type(&rm), "RouterInterfaceInUseByFloatingIP");
    let clear = tc
        .network(
            Method::PUT,
            &format!("routers/{}", seed.router),
            &admin,
            Some(json!({"router": {"external_gateway_info": null}})),
        )
        .await;
    assert_eq!(clear.status, StatusCode::CONFLICT);

    let dis = tc
        .network(
            Method::PUT,
            &format!("floatingips/{fip}"),
            &admin,
            Some(json!({"floatingip": {"port_id": null}})),
        )
        .await;
    assert_eq!(dis.json["floatingip"]["status"], "DOWN");
    let del = tc
        .compute(
            Method::DELETE,
            &format!("servers/{server}"),
            &admin,
            None,
            V,
        )
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    let start = Instant::now();
    while tc
        .network(Method::GET, &format!("ports/{port}"), &admin, None)
        .await
        .status
        != StatusCode::NOT_FOUND
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the server's port outlived it"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Everything goes away in reverse order.
    for (m, path, body) in [
        (Method::DELETE, format!("floatingips/{fip}"), None),
        (
            Method::PUT,
            format!("routers/{}", seed.router),
            Some(json!({"router": {"external_gateway_info": null}})),
        ),
        (
            Method::PUT,
            format!("routers/{}/remove_router_interface", seed.router),
            Some(json!({"subnet_id": seed.user_subnet})),
        ),
        (Method::DELETE, format!("routers/{}", seed.router), None),
        (Method::DELETE, format!("networks/{}", seed.user_net), None),
        (Method::DELETE, format!("networks/{}", seed.ext_net), None),
    ] {
        let r = tc.network(m, &path, &admin, body).await;
        assert!(r.status.is_success(), "{path}: {} {}", r.status, r.json);
    }
    let left = tc.network(Method::GET, "ports", &admin, None).await;
    assert_eq!(left.json["ports"], json!([]));
    let subnets = tc.network(Method::GET, "subnets", &admin, None).await;
    assert_eq!(subnets.json["subnets"], json!([]));
    tc.stop().await;
}

#[tokio::test]
async fn refusals_use_neutron_errors_and_change_nothing() {
    for backend in backends() {
        refusals(backend).await;
    }
}

async fn refusals(backend: Backend) {
    let tc = TestCloud::start(backend).await;
    let admin = tc.admin_token().await;
    let seed = seed_networks(&tc, &admin).await;
    // A network no router reaches, with a port on it.
    let lone = id(
        &tc.network(
            Method::POST,
            "networks",
            &admin,
            Some(json!({"network": {"name": "lone"}})),
        )
        .await,
        "network",
    );
    let lone_sub = id(
        &tc.network(
            Method::POST,
            "subnets",
            &admin,
            Some(json!({"subnet": {"network_id": lone, "cidr": "10.9.0.0/24", "ip_version": 4}})),
        )
        .await,
        "subnet",
    );
    let lone_port = id(
        &tc.network(
            Method::POST,
            "ports",
            &admin,
            Some(json!({"port": {"network_id": lone}})),
        )
        .await,
        "port",
    );
    let (image, flavor) = flavor_and_image(&tc, &admin).await;
    let before = snapshot(&tc.cloud).await;

    let user_net = seed.user_net.as_str();
    type Case<'a> = (&'a str, Method, String, Option<Value>, StatusCode, &'a str);
    let cases: Vec<Case> = vec![
        (
            "overlapping subnet",
            Method::POST,
            "subnets".into(),
            Some(
                json!({"subnet": {"network_id": user_net, "cidr": "192.169.0.128/25", "ip_version": 4}}),
            ),
            StatusCode::BAD_REQUEST,
            "InvalidInput",
        ),
        (
            "not a CIDR",
            Method::POST,
            "subnets".into(),
            Some(
                json!({"subnet": {"network_id": user_net, "cidr": "192.169.300.0/24", "ip_version": 4}}),
            ),
            StatusCode::BAD_REQUEST,
            "InvalidInput",
        ),
        (
            "pool outside its CIDR",
            Method::POST,
            "subnets".into(),
            Some(
                json!({"subnet": {"network_id": lone, "cidr": "10.8.0.0/24", "ip_version": 4, "allocation_pools": [{"start": "10.8.0.10", "end": "10.8.1.10"}]}}),
            ),
            StatusCode::BAD_REQUEST,
            "HTTPBadRequest",
        ),
        (
            "floating IP on an internal network",
            Method::POST,
            "floatingips".into(),
            Some(json!({"floatingip": {"floating_network_id": user_net}})),
            StatusCode::BAD_REQUEST,
            "HTTPBadRequest",
        ),
        (
            "floating IP for a port no router reaches",
            Method::POST,
            "floatingips".into(),
            Some(
                json!({"floatingip": {"floating_network_id": seed.ext_net, "port_id": lone_port}}),
            ),
            StatusCode::NOT_FOUND,
            "ExternalGatewayForFloatingIPNotFound",
        ),
        (
            "delete a network with ports",
            Method::DELETE,
            format!("networks/{lone}"),
            None,
            StatusCode::CONFLICT,
            "NetworkInUse",
        ),
        (
            "delete a subnet with addresses",
            Method::DELETE,
            format!("subnets/{lone_sub}"),
            None,
            StatusCode::CONFLICT,
            "SubnetInUse",
        ),
        (
            "delete a router with interfaces",
            Method::DELETE,
            format!("routers/{}", seed.router),
            None,
            StatusCode::CONFLICT,
            "RouterInUse",
        ),
        (
            "delete a router's port directly",
            Method::DELETE,
            format!(
                "ports/{}",
                tc.network(
                    Method::GET,
                    &format!(
                        "ports?device_id={}&device_owner=network:router_interface",
                        seed.router
                    ),
                    &admin,
                    None
                )
                .await
                .json["ports"][0]["id"]
                    .as_str()
                    .unwrap()
            ),
            None,
            StatusCode::CONFLICT,
            "ServicePortInUse",
        ),
        (
            "second flat network on physnet1",
            Method::POST,
            "networks".into(),
            Some(
                json!({"network": {"name": "x", "provider:network_type": "flat", "provider:physical_network": "physnet1"}}),
            ),
            StatusCode::CONFLICT,
            "FlatNetworkInUse",
        ),
        (
            "unknown physical network",
            Method::POST,
            "networks".into(),
            Some(
                json!({"network": {"name": "x", "provider:network_type": "flat", "provider:physical_network": "nope"}}),
            ),
            StatusCode::BAD_REQUEST,
            "InvalidInput",
        ),
        (
            "unknown attribute",
            Method::POST,
            "networks".into(),
            Some(json!({"network": {"name": "x", "colour": "red"}})),
            StatusCode::BAD_REQUEST,
            "HTTPBadRequest",
        ),
        (
            "no envelope",
            Method::POST,
            "networks".into(),
            Some(json!({"name": "x"})),
            StatusCode::BAD_REQUEST,
            "HTTPBadRequest",
        ),
        (
            "address outside the subnet",
            Method::POST,
            "ports".into(),
            Some(
                json!({"port": {"network_id": user_net, "fixed_ips": [{"ip_address": "192.169.1.5"}]}}),
            ),
            StatusCode::BAD_REQUEST,
            "HTTPBadRequest",
        ),
        (
            "address already taken",
            Method::POST,
            "ports".into(),
            Some(
                json!({"port": {"network_id": user_net, "fixed_ips": [{"ip_address": "192.169.0.1"}]}}),
            ),
            StatusCode::CONFLICT,
            "IpAddressAlreadyAllocated",
        ),
        (
            "bad MAC",
            Method::POST,
            "ports".into(),
            Some(json!({"port": {"network_id": user_net, "mac_address": "01:00:5e:00:00:01"}})),
            StatusCode::BAD_REQUEST,
            "HTTPBadRequest",
        ),
        (
            "gateway on an internal network",
            Method::PUT,
            format!("routers/{}", seed.router),
            Some(json!({"router": {"external_gateway_info": {"network_id": user_net}}})),
            StatusCode::BAD_REQUEST,
            "HTTPBadRequest",
        ),
        (
            "second interface on a subnet",
            Method::PUT,
            format!("routers/{}/add_router_interface", seed.router),
            Some(json!({"subnet_id": seed.user_subnet})),
            StatusCode::BAD_REQUEST,
            "HTTPBadRequest",
        ),
        (
            "route to an unreachable next hop",
            Method::PUT,
            format!("routers/{}", seed.router),
            Some(
                json!({"router": {"routes": [{"destination": "10.0.0.0/8", "nexthop": "10.9.0.1"}]}}),
            ),
            StatusCode::BAD_REQUEST,
            "InvalidRoutes",
        ),
        (
            "rule with an unknown protocol",
            Method::POST,
            "security-group-rules".into(),
            Some(
                json!({"security_group_rule": {"security_group_id": "x", "direction": "ingress", "protocol": "tcpx"}}),
            ),
            StatusCode::NOT_FOUND,
            "SecurityGroupNotFound",
        ),
        (
            "missing network",
            Method::GET,
            "networks/4b5c1bd6-0000-4000-8000-000000000000".into(),
            None,
            StatusCode::NOT_FOUND,
            "NetworkNotFound",
        ),
    ];
    for (what, m, path, body, status, kind) in cases {
        let r = tc.network(m, &path, &admin, body).await;
        assert_eq!(r.status, status, "{what}: {}", r.json);
        assert_eq!(neutron_type(&r), kind, "{what}: {}", r.json);
        assert!(
            !r.json["NeutronError"]["message"]
                .as_str()
                .unwrap_or("")
                .is_empty(),
            "{what}"
        );
    }
    // Rules: protocol and port range checks on a real group.
    let default = tc
        .network(Method::GET, "security-groups?name=default", &admin, None)
        .await
        .json["security_groups"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (rule, kind) in [
        (
            json!({"protocol": "tcpx"}),
            "SecurityGroupRuleInvalidProtocol",
        ),
        (
            json!({"protocol": "tcp", "port_range_min": 30, "port_range_max": 20}),
            "SecurityGroupInvalidPortRange",
        ),
        (
            json!({"protocol": "tcp", "port_range_min": 0, "port_range_max": 20}),
            "SecurityGroupInvalidPortValue",
        ),
        (
            json!({"protocol": "gre", "port_range_min": 1, "port_range_max": 2}),
            "SecurityGroupInvalidProtocolForPortRange",
        ),
        (
            json!({"remote_ip_prefix": "10.0.0.0/8", "remote_group_id": default}),
            "SecurityGroupRemoteGroupAndRemoteIpPrefix",
        ),
    ] {
        let mut body = json!({"security_group_id": default, "direction": "ingress"});
        for (k, v) in rule.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = tc
            .network(
                Method::POST,
                "security-group-rules",
                &admin,
                Some(json!({"security_group_rule": body})),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{kind}: {}", r.json);
        assert_eq!(neutron_type(&r), kind);
    }
    let raw = tc
        .send(
            Method::POST,
            &format!("{}/v2.0/networks", tc.cloud.network_url),
            Some(&admin),
            Some(ferro_test_support::RawBody::Bytes(
                b"{not json".to_vec(),
                "application/json",
            )),
        )
        .await;
    assert_eq!(raw.status, StatusCode::BAD_REQUEST);
    assert_eq!(neutron_type(&raw), "HTTPBadRequest");
    // A boot whose second port can't be made leaves neither server nor first port.
    let boot = tc
        .compute(
            Method::POST,
            "servers",
            &admin,
            Some(
                json!({"server": {"name": "half", "imageRef": image, "flavorRef": flavor,
            "networks": [{"uuid": user_net}, {"uuid": lone, "fixed_ip": "10.9.0.2"}]}}),
            ),
            V,
        )
        .await;
    assert_eq!(boot.status, StatusCode::CONFLICT, "{}", boot.json);
    assert!(
        boot.json["conflictingRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("already allocated"),
        "{}",
        boot.json
    );
    let unknown = tc
        .compute(
            Method::POST,
            "servers",
            &admin,
            Some(
                json!({"server": {"name": "x", "imageRef": image, "flavorRef": flavor,
            "networks": [{"uuid": "4b5c1bd6-0000-4000-8000-000000000000"}]}}),
            ),
            V,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        snapshot(&tc.cloud).await,
        before,
        "a refused request changed the database"
    );
    tc.stop().await;
}

#[tokio::test]
async fn projects_see_and_change_only_their_own() {
    let tc = TestCloud::start(Backend::Sqlite).await;
    let admin = tc.admin_token().await;
    let seed = seed_networks(&tc, &admin).await;
    let (p2, member) = tc.project_user(&admin, "p2", "member").await;
    let (_, reader) = tc.project_user(&admin, "p3", "reader").await;

    let nets = tc.network(Method::GET, "networks", &member, None).await;
    let names: Vec<&str> = nets.json["networks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ext_net"], "the shared external network only");
    assert!(
        nets.json["networks"][0]
            .get("provider:network_type")
            .is_none(),
        "provider attributes are for admins"
    );
    let hidden = tc
        .network(
            Method::GET,
            &format!("networks/{}", seed.user_net),
            &member,
            None,
        )
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    let port = tc
        .network(
            Method::POST,
            "ports",
            &member,
            Some(json!({"port": {"network_id": seed.user_net}})),
        )
        .await;
    assert_eq!(port.status, StatusCode::NOT_FOUND);
    let ext = tc
        .network(
            Method::POST,
            "networks",
            &member,
            Some(json!({"network": {"name": "mine", "router:external": true}})),
        )
        .await;
    assert_eq!(ext.status, StatusCode::FORBIDDEN);
    assert_eq!(neutron_type(&ext), "PolicyNotAuthorized");
    let ro = tc
        .network(
            Method::POST,
            "networks",
            &reader,
            Some(json!({"network": {"name": "ro"}})),
        )
        .await;
    assert_eq!(ro.status, StatusCode::FORBIDDEN);

    // Their own network, router and floating IP work; the admin's port is out of reach.
    let own = id(
        &tc.network(
            Method::POST,
            "networks",
            &member,
            Some(json!({"network": {"name": "p2net"}})),
        )
        .await,
        "network",
    );
    let own_sub = tc
        .network(
            Method::POST,
            "subnets",
            &member,
            Some(json!({"subnet": {"network_id": own, "cidr": "192.169.0.0/24", "ip_version": 4}})),
        )
        .await;
    assert_eq!(
        own_sub.status,
        StatusCode::CREATED,
        "the same CIDR on another network is fine: {}",
        own_sub.json
    );
    assert_eq!(own_sub.json["subnet"]["project_id"], p2.as_str());
    let fip = tc
        .network(
            Method::POST,
            "floatingips",
            &member,
            Some(json!({"floatingip": {"floating_network_id": seed.ext_net}})),
        )
        .await;
    assert_eq!(fip.status, StatusCode::CREATED, "{}", fip.json);
    let fip = id(&fip, "floatingip");
    let admin_port = tc
        .network(
            Method::GET,
            "ports?device_owner=network:router_interface",
            &admin,
            None,
        )
        .await
        .json["ports"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let steal = tc
        .network(
            Method::PUT,
            &format!("floatingips/{fip}"),
            &member,
            Some(json!({"floatingip": {"port_id": admin_port}})),
        )
        .await;
    assert_eq!(steal.status, StatusCode::NOT_FOUND);
    assert_eq!(neutron_type(&steal), "PortNotFound");
    let ports = tc.network(Method::GET, "ports", &member, None).await;
    assert_eq!(
        ports.json["ports"],
        json!([]),
        "the floating IP's own port is the service's, not the project's"
    );
    let routers = tc.network(Method::GET, "routers", &member, None).await;
    assert_eq!(routers.json["routers"], json!([]));
    let del = tc
        .network(
            Method::DELETE,
            &format!("routers/{}", seed.router),
            &member,
            None,
        )
        .await;
    assert_eq!(del.status, StatusCode::NOT_FOUND);
    // Quotas: the member reads their own, not another project's; only admins set them.
    let q = tc
        .network(Method::GET, &format!("quotas/{p2}/details"), &member, None)
        .await;
    assert_eq!(q.json["quota"]["floatingip"]["used"], 1, "{}", q.json);
    assert_eq!(q.json["quota"]["network"]["used"], 1);
    let set = tc
        .network(
            Method::PUT,
            &format!("quotas/{p2}"),
            &member,
            Some(json!({"quota": {"network": 1}})),
        )
        .await;
    assert_eq!(set.status, StatusCode::FORBIDDEN);
    let set = tc
        .network(
            Method::PUT,
            &format!("quotas/{p2}"),
            &admin,
            Some(json!({"quota": {"network": 1}})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK);
    let over = tc
        .network(
            Method::POST,
            "networks",
            &member,
            Some(json!({"network": {"name": "two"}})),
        )
        .await;
    assert_eq!(over.status, StatusCode::CONFLICT);
    assert_eq!(neutron_type(&over), "OverQuota");
    tc.stop().await;
}

/// As in Nova, a deleted server stays visible (task_state `deleting`) until
/// its ports are gone: whoever sees the server 404 may delete its security
/// group, subnet and network at once (Tempest's scenario cleanups do).
#[tokio::test]
async fn a_deleted_server_disappears_only_after_its_ports() {
    let tc = TestCloud::start(Backend::Sqlite).await;
    let admin = tc.admin_token().await;
    let seed = seed_networks(&tc, &admin).await;
    let (image, flavor) = flavor_and_image(&tc, &admin).await;
    let boot = tc
        .compute(
            Method::POST,
            "servers",
            &admin,
            Some(
                json!({"server": {"name": "goner", "imageRef": image, "flavorRef": flavor,
                "networks": [{"uuid": seed.user_net}]}}),
            ),
            V,
        )
        .await;
    assert_eq!(boot.status, StatusCode::ACCEPTED, "{}", boot.json);
    let id = boot.json["server"]["id"].as_str().unwrap().to_owned();
    wait_active(&tc, &admin, &id).await;
    let del = tc
        .compute(Method::DELETE, &format!("servers/{id}"), &admin, None, V)
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    let start = Instant::now();
    loop {
        let srv = tc
            .compute(Method::GET, &format!("servers/{id}"), &admin, None, V)
            .await;
        let ports = tc
            .network(Method::GET, &format!("ports?device_id={id}"), &admin, None)
            .await;
        let left = ports.json["ports"].as_array().unwrap().len();
        if srv.status == StatusCode::NOT_FOUND {
            // The port list was read after the 404: it must be empty.
            assert_eq!(left, 0, "the server is gone but its port is not");
            break;
        }
        assert_eq!(srv.status, StatusCode::OK);
        assert!(start.elapsed() < Duration::from_secs(30), "never deleted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Nothing but the router holds the network now: it goes at once.
    let rm = tc
        .network(
            Method::PUT,
            &format!("routers/{}/remove_router_interface", seed.router),
            &admin,
            Some(json!({"subnet_id": seed.user_subnet})),
        )
        .await;
    assert_eq!(rm.status, StatusCode::OK, "{}", rm.json);
    let net = tc
        .network(
            Method::DELETE,
            &format!("networks/{}", seed.user_net),
            &admin,
            None,
        )
        .await;
    assert_eq!(net.status, StatusCode::NO_CONTENT, "{}", net.json);
    tc.stop().await;
}

/// `GET /v2.0/agents`: each host's agents (the all-in-one host is the
/// network node, so it runs all four), admin only, as Neutron's.
#[tokio::test]
async fn agents_are_listed_per_host_for_admins() {
    let tc = TestCloud::start(Backend::Sqlite).await;
    let admin = tc.admin_token().await;
    let start = Instant::now();
    let list = loop {
        let r = tc.network(Method::GET, "agents", &admin, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        if r.json["agents"].as_array().unwrap().len() == 4 {
            break r.json["agents"].as_array().unwrap().clone();
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{}", r.json);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut types: Vec<&str> = list
        .iter()
        .map(|a| a["agent_type"].as_str().unwrap())
        .collect();
    types.sort();
    assert_eq!(
        types,
        [
            "DHCP agent",
            "L3 agent",
            "Linux bridge agent",
            "Metadata agent"
        ]
    );
    for a in &list {
        assert_eq!(a["host"], "fake-host", "{a}");
        assert_eq!(a["alive"], true, "{a}");
        assert_eq!(a["admin_state_up"], true, "{a}");
    }
    let l3 = list.iter().find(|a| a["agent_type"] == "L3 agent").unwrap();
    assert_eq!(l3["availability_zone"], "nova");
    let id = l3["id"].as_str().unwrap();
    let one = tc
        .network(Method::GET, &format!("agents/{id}"), &admin, None)
        .await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.json["agent"]["binary"], "neutron-l3-agent");
    let filtered = tc
        .network(Method::GET, "agents?agent_type=DHCP%20agent", &admin, None)
        .await;
    assert_eq!(
        filtered.json["agents"].as_array().unwrap().len(),
        1,
        "{}",
        filtered.json
    );
    let missing = tc
        .network(
            Method::GET,
            "agents/4b5c1bd6-0000-4000-8000-000000000000",
            &admin,
            None,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json["NeutronError"]["type"], "AgentNotFound");
    // others get an empty list, not a refusal (Neutron filters by policy)
    let (_, member) = tc.project_user(&admin, "agents", "member").await;
    let theirs = tc.network(Method::GET, "agents", &member, None).await;
    assert_eq!(theirs.status, StatusCode::OK);
    assert_eq!(theirs.json["agents"], json!([]));
    let one = tc
        .network(Method::GET, &format!("agents/{id}"), &member, None)
        .await;
    assert_eq!(one.status, StatusCode::FORBIDDEN);
    tc.stop().await;
}

/// Neutron's bulk create: all the networks, subnets or ports of one request
/// are made, or (one refused) none is left.
#[tokio::test]
async fn bulk_create_makes_all_or_none() {
    for backend in backends() {
        let tc = TestCloud::start(backend).await;
        let admin = tc.admin_token().await;
        let (_, t) = tc.project_user(&admin, "bulk", "member").await;
        let count = async |what: &str| {
            tc.network(Method::GET, what, &t, None).await.json[what]
                .as_array()
                .map_or(0, Vec::len)
        };
        let two = tc
            .network(
                Method::POST,
                "networks",
                &t,
                Some(json!({"networks": [{"name": "b1"}, {"name": "b2"}]})),
            )
            .await;
        assert_eq!(two.status, StatusCode::CREATED, "{}", two.json);
        let ids: Vec<String> = two.json["networks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids.len(), 2);
        let subnets = tc
            .network(
                Method::POST,
                "subnets",
                &t,
                Some(json!({"subnets": [
                    {"network_id": ids[0], "cidr": "10.1.0.0/24", "ip_version": 4},
                    {"network_id": ids[1], "cidr": "10.2.0.0/24", "ip_version": 4}]})),
            )
            .await;
        assert_eq!(subnets.status, StatusCode::CREATED, "{}", subnets.json);
        assert_eq!(subnets.json["subnets"].as_array().unwrap().len(), 2);
        let ports = tc
            .network(
                Method::POST,
                "ports",
                &t,
                Some(json!({"ports": [{"network_id": ids[0]}, {"network_id": ids[1]}]})),
            )
            .await;
        assert_eq!(ports.status, StatusCode::CREATED, "{}", ports.json);
        assert_eq!(count("ports").await, 2);
        // the second subnet overlaps the first one's network: refused, and
        // the first (valid) one of the request is not left behind
        let before = count("subnets").await;
        let bad = tc
            .network(
                Method::POST,
                "subnets",
                &t,
                Some(json!({"subnets": [
                    {"network_id": ids[0], "cidr": "10.9.0.0/24", "ip_version": 4},
                    {"network_id": ids[0], "cidr": "10.9.0.0/25", "ip_version": 4}]})),
            )
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.json);
        assert_eq!(
            count("subnets").await,
            before,
            "nothing of a refused bulk stays"
        );
        // an item that doesn't parse refuses the whole request before anything is made
        let nets = count("networks").await;
        let unparsable = tc
            .network(
                Method::POST,
                "networks",
                &t,
                Some(json!({"networks": [{"name": "ok"}, {"name": "x", "colour": "red"}]})),
            )
            .await;
        assert_eq!(unparsable.status, StatusCode::BAD_REQUEST);
        assert_eq!(count("networks").await, nets);
        let empty = tc
            .network(Method::POST, "networks", &t, Some(json!({"networks": []})))
            .await;
        assert_eq!(empty.status, StatusCode::BAD_REQUEST);
        tc.stop().await;
    }
}
