//! Every identity endpoint, with the personas allowed and denied.
//!
//! Personas: the cloud admin; `member` and `reader` on project p1; `other`,
//! a member of project p2. Mutations aim at ids that don't exist, so an
//! allowed call answers 404 (or 2xx) and a denied one 403: policy is
//! checked before anything is looked up or changed.

use ferro_test_support::{Backend, TestCloud};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const MISSING: &str = "00000000000000000000000000000000";

#[derive(Clone, Copy, Debug, PartialEq)]
enum P {
    Admin,
    Member,
    Reader,
    Other,
}
use P::*;

#[tokio::test]
async fn every_endpoint_enforces_its_policy() {
    let tc = TestCloud::start(Backend::Sqlite).await;
    let admin = tc.admin_token().await;
    let mk = |kind: &'static str, body: Value| {
        let tc = &tc;
        let admin = admin.clone();
        async move {
            let r = tc
                .call(
                    Method::POST,
                    &format!("{kind}s"),
                    &admin,
                    Some(json!({ kind: body })),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
            r.id(kind)
        }
    };
    let d1 = mk("domain", json!({"name": "d1"})).await;
    let p1 = mk("project", json!({"name": "p1", "domain_id": d1})).await;
    let p2 = mk("project", json!({"name": "p2", "domain_id": d1})).await;
    let um = mk(
        "user",
        json!({"name": "m", "domain_id": d1, "password": "pw"}),
    )
    .await;
    let ur = mk(
        "user",
        json!({"name": "r", "domain_id": d1, "password": "pw"}),
    )
    .await;
    let uo = mk(
        "user",
        json!({"name": "o", "domain_id": d1, "password": "pw"}),
    )
    .await;
    let extra_role = mk("role", json!({"name": "observer"})).await;
    let role = |name: &str| {
        let tc = &tc;
        let admin = admin.clone();
        let name = name.to_owned();
        async move {
            tc.call(Method::GET, &format!("roles?name={name}"), &admin, None)
                .await
                .json["roles"][0]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let member_role = role("member").await;
    let reader_role = role("reader").await;
    for (u, p, r) in [
        (&um, &p1, &member_role),
        (&ur, &p1, &reader_role),
        (&uo, &p2, &member_role),
    ] {
        let g = tc
            .call(
                Method::PUT,
                &format!("projects/{p}/users/{u}/roles/{r}"),
                &admin,
                None,
            )
            .await;
        assert_eq!(g.status, StatusCode::NO_CONTENT);
    }
    let admin_domain = tc
        .call(Method::GET, "domains?name=admin_domain", &admin, None)
        .await
        .json["domains"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tokens = [
        (Admin, admin.clone()),
        (Member, tc.token("m", "d1", "pw", "p1", "d1").await),
        (Reader, tc.token("r", "d1", "pw", "p1", "d1").await),
        (Other, tc.token("o", "d1", "pw", "p2", "d1").await),
    ];

    let all = &[Admin, Member, Reader, Other][..];
    let admin_only = &[Admin][..];
    let cases: Vec<(Method, String, Option<Value>, &[P])> = vec![
        (Method::GET, "users".into(), None, admin_only),
        (
            Method::POST,
            "users".into(),
            Some(json!({"user": {"name": "made", "domain_id": d1}})),
            admin_only,
        ),
        (Method::GET, format!("users/{um}"), None, &[Admin, Member]),
        (
            Method::PATCH,
            format!("users/{MISSING}"),
            Some(json!({"user": {"description": "x"}})),
            admin_only,
        ),
        (Method::DELETE, format!("users/{MISSING}"), None, admin_only),
        (
            Method::GET,
            format!("users/{um}/projects"),
            None,
            &[Admin, Member],
        ),
        (
            Method::GET,
            format!("users/{um}/groups"),
            None,
            &[Admin, Member],
        ),
        (Method::GET, "projects".into(), None, admin_only),
        (
            Method::POST,
            "projects".into(),
            Some(json!({"project": {"name": "made", "domain_id": d1}})),
            admin_only,
        ),
        (
            Method::GET,
            format!("projects/{p1}"),
            None,
            &[Admin, Member, Reader],
        ),
        (
            Method::PATCH,
            format!("projects/{MISSING}"),
            Some(json!({"project": {"description": "x"}})),
            admin_only,
        ),
        (
            Method::DELETE,
            format!("projects/{MISSING}"),
            None,
            admin_only,
        ),
        (Method::GET, "domains".into(), None, admin_only),
        (
            Method::POST,
            "domains".into(),
            Some(json!({"domain": {"name": "made"}})),
            admin_only,
        ),
        (
            Method::GET,
            format!("domains/{admin_domain}"),
            None,
            admin_only,
        ),
        (Method::GET, format!("domains/{d1}"), None, all),
        (
            Method::PATCH,
            format!("domains/{MISSING}"),
            Some(json!({"domain": {"description": "x"}})),
            admin_only,
        ),
        (
            Method::DELETE,
            format!("domains/{MISSING}"),
            None,
            admin_only,
        ),
        (Method::GET, "groups".into(), None, admin_only),
        (
            Method::POST,
            "groups".into(),
            Some(json!({"group": {"name": "made", "domain_id": d1}})),
            admin_only,
        ),
        (Method::GET, format!("groups/{MISSING}"), None, admin_only),
        (
            Method::GET,
            format!("groups/{MISSING}/users"),
            None,
            admin_only,
        ),
        (
            Method::PUT,
            format!("groups/{MISSING}/users/{um}"),
            None,
            admin_only,
        ),
        (
            Method::DELETE,
            format!("groups/{MISSING}/users/{um}"),
            None,
            admin_only,
        ),
        (Method::GET, "roles".into(), None, admin_only),
        (
            Method::POST,
            "roles".into(),
            Some(json!({"role": {"name": "made"}})),
            admin_only,
        ),
        (
            Method::PATCH,
            format!("roles/{MISSING}"),
            Some(json!({"role": {"description": "x"}})),
            admin_only,
        ),
        (Method::DELETE, format!("roles/{MISSING}"), None, admin_only),
        (
            Method::GET,
            format!("roles/{member_role}/implies"),
            None,
            admin_only,
        ),
        (
            Method::PUT,
            format!("roles/{MISSING}/implies/{member_role}"),
            None,
            admin_only,
        ),
        (Method::GET, "role_inferences".into(), None, admin_only),
        (Method::GET, "role_assignments".into(), None, admin_only),
        (
            Method::PUT,
            format!("projects/{p1}/users/{um}/roles/{extra_role}"),
            None,
            admin_only,
        ),
        (
            Method::GET,
            format!("projects/{p1}/users/{um}/roles"),
            None,
            admin_only,
        ),
        (
            Method::DELETE,
            format!("projects/{p1}/users/{MISSING}/roles/{extra_role}"),
            None,
            admin_only,
        ),
        (
            Method::PUT,
            format!("domains/{d1}/groups/{MISSING}/roles/{extra_role}"),
            None,
            admin_only,
        ),
        (
            Method::GET,
            format!("system/users/{um}/roles"),
            None,
            admin_only,
        ),
        (
            Method::PUT,
            format!("system/users/{MISSING}/roles/{extra_role}"),
            None,
            admin_only,
        ),
        (Method::GET, "regions".into(), None, all),
        (
            Method::POST,
            "regions".into(),
            Some(json!({"region": {"id": "made"}})),
            admin_only,
        ),
        (
            Method::DELETE,
            format!("regions/{MISSING}"),
            None,
            admin_only,
        ),
        (Method::GET, "services".into(), None, all),
        (
            Method::POST,
            "services".into(),
            Some(json!({"service": {"type": "made"}})),
            admin_only,
        ),
        (
            Method::DELETE,
            format!("services/{MISSING}"),
            None,
            admin_only,
        ),
        (Method::GET, "endpoints".into(), None, all),
        (
            Method::POST,
            "endpoints".into(),
            Some(
                json!({"endpoint": {"service_id": MISSING, "interface": "public", "url": "http://x"}}),
            ),
            admin_only,
        ),
        (
            Method::DELETE,
            format!("endpoints/{MISSING}"),
            None,
            admin_only,
        ),
        (Method::GET, "auth/projects".into(), None, all),
        (Method::GET, "auth/domains".into(), None, all),
        (Method::GET, "auth/catalog".into(), None, all),
        (Method::GET, "auth/system".into(), None, all),
        (
            Method::GET,
            format!("users/{um}/application_credentials"),
            None,
            &[Admin, Member],
        ),
        (
            Method::POST,
            format!("users/{um}/application_credentials"),
            Some(json!({"application_credential": {"name": "made"}})),
            &[Member],
        ),
        (
            Method::DELETE,
            format!("users/{um}/application_credentials/{MISSING}"),
            None,
            &[Admin, Member],
        ),
    ];
    let mut failures = Vec::new();
    for (method, path, body, allowed) in &cases {
        for (persona, token) in &tokens {
            let r = tc.call(method.clone(), path, token, body.clone()).await;
            let ok = if allowed.contains(persona) {
                r.status != StatusCode::FORBIDDEN
                    && r.status != StatusCode::UNAUTHORIZED
                    && !r.status.is_server_error()
            } else {
                r.status == StatusCode::FORBIDDEN
            };
            if !ok {
                failures.push(format!(
                    "{method} {path} as {persona:?}: {} {}",
                    r.status, r.json
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "policy table violations:\n{}",
        failures.join("\n")
    );
    // No token at all: 401 everywhere except the unauthenticated routes.
    for (method, path, body, _) in &cases {
        let r = tc.call(method.clone(), path, "", body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} without a token"
        );
    }
    tc.stop().await;
}
