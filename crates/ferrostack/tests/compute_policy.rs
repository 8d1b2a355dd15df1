//! Compute, image and placement endpoints with the personas allowed and
//! denied: admin; member and reader of project p1 (which owns a server and
//! a private image); `other`, a member of project p2. Denied means 403 for
//! an action the persona may never do, or 404 for another project's
//! resource (whose existence is not revealed).

use ferro_test_support::{tiny_qcow2, Backend, RawBody, TestCloud};
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

const V: &str = "2.79";
const MISSING: &str = "00000000-0000-0000-0000-000000000000";

enum Api {
    Compute,
    Image,
    Placement,
}

#[tokio::test]
async fn every_endpoint_enforces_its_policy() {
    let tc = TestCloud::start(Backend::Sqlite).await;
    let admin = tc.admin_token().await;
    let d = tc
        .call(
            Method::POST,
            "domains",
            &admin,
            Some(json!({"domain": {"name": "d1"}})),
        )
        .await
        .id("domain");
    let p1 = tc
        .call(
            Method::POST,
            "projects",
            &admin,
            Some(json!({"project": {"name": "p1", "domain_id": d}})),
        )
        .await
        .id("project");
    let p2 = tc
        .call(
            Method::POST,
            "projects",
            &admin,
            Some(json!({"project": {"name": "p2", "domain_id": d}})),
        )
        .await
        .id("project");
    let role = |n: &str| {
        let (tc, admin, n) = (&tc, admin.clone(), n.to_owned());
        async move {
            tc.call(Method::GET, &format!("roles?name={n}"), &admin, None)
                .await
                .json["roles"][0]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let (member, reader) = (role("member").await, role("reader").await);
    for (u, p, r) in [
        ("m", &p1, &member),
        ("r", &p1, &reader),
        ("o", &p2, &member),
    ] {
        let uid = tc
            .call(
                Method::POST,
                "users",
                &admin,
                Some(json!({"user": {"name": u, "domain_id": d, "password": "pw"}})),
            )
            .await
            .id("user");
        tc.call(
            Method::PUT,
            &format!("projects/{p}/users/{uid}/roles/{r}"),
            &admin,
            None,
        )
        .await;
    }
    let tm = tc.token("m", "d1", "pw", "p1", "d1").await;
    let tokens = [
        (Admin, admin.clone()),
        (Member, tm.clone()),
        (Reader, tc.token("r", "d1", "pw", "p1", "d1").await),
        (Other, tc.token("o", "d1", "pw", "p2", "d1").await),
    ];
    let public_image = tc.upload_image(&admin, "pub", "qcow2", tiny_qcow2()).await;
    let f = tc
        .compute(
            Method::POST,
            "flavors",
            &admin,
            Some(json!({"flavor": {"name": "f1", "ram": 64, "vcpus": 1, "disk": 1}})),
            V,
        )
        .await;
    let flavor = f.json["flavor"]["id"].as_str().unwrap().to_owned();
    // p1's own private image and server, made by its member.
    let img = tc
        .send(Method::POST, &format!("{}/v2/images", tc.cloud.image_url), Some(&tm),
            Some(RawBody::Json(json!({"name": "mine", "disk_format": "qcow2", "container_format": "bare", "visibility": "private"}))))
        .await;
    assert_eq!(img.status, StatusCode::CREATED, "{}", img.json);
    let img = img.json["id"].as_str().unwrap().to_owned();
    let boot = |name: &str| json!({"server": {"name": name, "imageRef": public_image, "flavorRef": flavor, "networks": "none"}});
    let srv = tc
        .compute(Method::POST, "servers", &tm, Some(boot("s1")), V)
        .await;
    assert_eq!(srv.status, StatusCode::ACCEPTED, "{}", srv.json);
    let srv = srv.json["server"]["id"].as_str().unwrap().to_owned();

    let all = &[Admin, Member, Reader, Other][..];
    let p1_all = &[Admin, Member, Reader][..];
    let p1_write = &[Admin, Member][..];
    let admin_only = &[Admin][..];
    type Case<'a> = (Api, Method, String, Option<Value>, &'a [P]);
    let cases: Vec<Case> = vec![
        (
            Api::Compute,
            Method::GET,
            "servers/detail".into(),
            None,
            all,
        ),
        (
            Api::Compute,
            Method::GET,
            format!("servers/{srv}"),
            None,
            p1_all,
        ),
        (
            Api::Compute,
            Method::GET,
            format!("servers/{srv}/os-instance-actions"),
            None,
            p1_all,
        ),
        (
            Api::Compute,
            Method::POST,
            format!("servers/{srv}/action"),
            Some(json!({"os-getConsoleOutput": {}})),
            p1_all,
        ),
        (
            Api::Compute,
            Method::POST,
            format!("servers/{srv}/action"),
            Some(json!({"lock": null})),
            p1_write,
        ),
        (
            Api::Compute,
            Method::POST,
            format!("servers/{srv}/action"),
            Some(json!({"unlock": null})),
            p1_write,
        ),
        (
            Api::Compute,
            Method::PUT,
            format!("servers/{srv}"),
            Some(json!({"server": {"name": "s1"}})),
            p1_write,
        ),
        (
            Api::Compute,
            Method::POST,
            "servers".into(),
            Some(boot("n")),
            &[Admin, Member, Other],
        ),
        (
            Api::Compute,
            Method::GET,
            "flavors/detail".into(),
            None,
            all,
        ),
        (
            Api::Compute,
            Method::POST,
            "flavors".into(),
            Some(json!({"flavor": {"name": "f2", "ram": 64, "vcpus": 1, "disk": 1}})),
            admin_only,
        ),
        (
            Api::Compute,
            Method::DELETE,
            format!("flavors/{MISSING}"),
            None,
            admin_only,
        ),
        (
            Api::Compute,
            Method::POST,
            format!("flavors/{flavor}/os-extra_specs"),
            Some(json!({"extra_specs": {"a": "b"}})),
            admin_only,
        ),
        (Api::Compute, Method::GET, "os-keypairs".into(), None, all),
        (
            Api::Compute,
            Method::GET,
            "os-hypervisors/detail".into(),
            None,
            admin_only,
        ),
        (
            Api::Compute,
            Method::GET,
            "os-services".into(),
            None,
            admin_only,
        ),
        (
            Api::Compute,
            Method::GET,
            "os-availability-zone".into(),
            None,
            all,
        ),
        (
            Api::Compute,
            Method::GET,
            "os-availability-zone/detail".into(),
            None,
            admin_only,
        ),
        (Api::Compute, Method::GET, "limits".into(), None, all),
        (
            Api::Compute,
            Method::GET,
            format!("os-quota-sets/{p1}"),
            None,
            p1_all,
        ),
        (
            Api::Compute,
            Method::PUT,
            format!("os-quota-sets/{p1}"),
            Some(json!({"quota_set": {"instances": 10}})),
            admin_only,
        ),
        (
            Api::Compute,
            Method::GET,
            format!("servers/{srv}/metadata"),
            None,
            p1_all,
        ),
        (
            Api::Compute,
            Method::POST,
            format!("servers/{srv}/metadata"),
            Some(json!({"metadata": {"k": "v"}})),
            p1_write,
        ),
        (
            Api::Compute,
            Method::GET,
            format!("servers/{srv}/ips"),
            None,
            p1_all,
        ),
        (
            Api::Compute,
            Method::GET,
            format!("servers/{srv}/os-security-groups"),
            None,
            p1_all,
        ),
        (
            Api::Compute,
            Method::GET,
            format!("servers/{srv}/os-interface"),
            None,
            p1_all,
        ),
        (
            Api::Compute,
            Method::GET,
            "os-server-groups".into(),
            None,
            all,
        ),
        (
            Api::Compute,
            Method::POST,
            "os-server-groups".into(),
            Some(json!({"server_group": {"name": "g", "policy": "affinity"}})),
            &[Admin, Member, Other],
        ),
        (
            Api::Compute,
            Method::GET,
            "os-aggregates".into(),
            None,
            admin_only,
        ),
        (
            Api::Compute,
            Method::POST,
            "os-aggregates".into(),
            Some(json!({"aggregate": {"name": "a1"}})),
            admin_only,
        ),
        (
            Api::Compute,
            Method::GET,
            "os-simple-tenant-usage".into(),
            None,
            admin_only,
        ),
        (
            Api::Compute,
            Method::GET,
            format!("os-simple-tenant-usage/{p1}"),
            None,
            p1_all,
        ),
        (
            Api::Compute,
            Method::GET,
            "os-hypervisors/statistics".into(),
            None,
            admin_only,
        ),
        (Api::Image, Method::GET, "v2/images".into(), None, all),
        (
            Api::Image,
            Method::GET,
            format!("v2/images/{img}"),
            None,
            p1_all,
        ),
        (
            Api::Image,
            Method::GET,
            format!("v2/images/{public_image}"),
            None,
            all,
        ),
        (
            Api::Image,
            Method::POST,
            "v2/images".into(),
            Some(json!({"name": "n", "disk_format": "raw", "container_format": "bare"})),
            &[Admin, Member, Other],
        ),
        (
            Api::Image,
            Method::DELETE,
            format!("v2/images/{MISSING}"),
            None,
            &[],
        ),
        (
            Api::Image,
            Method::POST,
            format!("v2/images/{public_image}/actions/deactivate"),
            None,
            admin_only,
        ),
        (
            Api::Image,
            Method::POST,
            format!("v2/images/{public_image}/actions/reactivate"),
            None,
            admin_only,
        ),
        (
            Api::Placement,
            Method::GET,
            "resource_providers".into(),
            None,
            admin_only,
        ),
        (
            Api::Placement,
            Method::GET,
            "allocation_candidates?resources=VCPU:1".into(),
            None,
            admin_only,
        ),
    ];
    let mut failures = Vec::new();
    for (api, method, path, body, allowed) in &cases {
        for (persona, token) in &tokens {
            let r = match api {
                Api::Compute => {
                    tc.compute(method.clone(), path, token, body.clone(), V)
                        .await
                }
                Api::Image | Api::Placement => {
                    let base = if matches!(api, Api::Image) {
                        &tc.cloud.image_url
                    } else {
                        &tc.cloud.placement_url
                    };
                    tc.send(
                        method.clone(),
                        &format!("{base}/{path}"),
                        Some(token),
                        body.clone().map(RawBody::Json),
                    )
                    .await
                }
            };
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
    // PATCH on p1's private image: its member yes, its reader no, others can't see it.
    for (persona, token, want) in [
        (Member, &tokens[1].1, StatusCode::OK),
        (Reader, &tokens[2].1, StatusCode::FORBIDDEN),
        (Other, &tokens[3].1, StatusCode::NOT_FOUND),
    ] {
        let r = tc
            .http
            .patch(format!("{}/v2/images/{img}", tc.cloud.image_url))
            .header("X-Auth-Token", token)
            .header(
                "Content-Type",
                "application/openstack-images-v2.1-json-patch",
            )
            .body(r#"[{"op": "replace", "path": "/name", "value": "renamed"}]"#)
            .send()
            .await
            .unwrap();
        if r.status() != want {
            failures.push(format!("PATCH image as {persona:?}: {}", r.status()));
        }
    }
    assert!(
        failures.is_empty(),
        "policy table violations:\n{}",
        failures.join("\n")
    );
    tc.stop().await;
}
