//! Malformed and hostile requests: each gets a 4xx in Keystone's error
//! format, nothing panics, and the database is byte-for-byte unchanged.

use ferro_test_support::{backends, snapshot, RawBody, TestCloud};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

enum B {
    Json(Value),
    Raw(&'static str),
    Big(usize),
}

#[tokio::test]
async fn malformed_requests_get_4xx_and_change_nothing() {
    for backend in backends() {
        run(backend).await;
    }
}

async fn run(backend: ferro_test_support::Backend) {
    let tc = TestCloud::start(backend).await;
    let admin = tc.admin_token().await;
    let d1 = tc
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
            Some(json!({"project": {"name": "p1", "domain_id": d1}})),
        )
        .await
        .id("project");
    let u1 = tc
        .call(
            Method::POST,
            "users",
            &admin,
            Some(json!({"user": {"name": "u1", "domain_id": d1, "password": "pw"}})),
        )
        .await
        .id("user");
    let svc = tc
        .call(Method::GET, "services?type=identity", &admin, None)
        .await
        .json["services"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let role = tc
        .call(Method::GET, "roles?name=member", &admin, None)
        .await
        .json["roles"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin_domain = tc
        .call(Method::GET, "domains?name=admin_domain", &admin, None)
        .await
        .json["domains"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let before = snapshot(&tc.cloud).await;
    assert!(
        before
            .iter()
            .any(|l| l.starts_with("domains:") && l.contains("name=Some(\"d1\")")),
        "{before:#?}"
    );
    assert!(
        before
            .iter()
            .any(|l| l.starts_with("users:") && l.contains("enabled=Some(1)")),
        "{before:#?}"
    );
    let pw = |user: Value| json!({"auth": {"identity": {"methods": ["password"], "password": {"user": user}}}});
    let good_user = json!({"name": "u1", "domain": {"name": "d1"}, "password": "pw"});
    let scoped = |scope: Value| {
        let mut b = pw(good_user.clone());
        b["auth"]["scope"] = scope;
        b
    };
    let long_unicode = "ü".repeat(300);
    let cases: Vec<(Method, String, bool, B)> = vec![
        // (method, path under /v3, send admin token, body)
        (Method::POST, "auth/tokens".into(), false, B::Raw("{")),
        (Method::POST, "auth/tokens".into(), false, B::Raw("")),
        (Method::POST, "auth/tokens".into(), false, B::Raw("[]")),
        (Method::POST, "auth/tokens".into(), false, B::Raw("null")),
        (
            Method::POST,
            "auth/tokens".into(),
            false,
            B::Raw("{\"auth\": \"x\"}"),
        ),
        (
            Method::POST,
            "auth/tokens".into(),
            false,
            B::Json(json!({"auth": {"identity": {"methods": "password"}}})),
        ),
        (
            Method::POST,
            "auth/tokens".into(),
            false,
            B::Json(json!({"auth": {"identity": {"methods": ["password"]}}})),
        ),
        (
            Method::POST,
            "auth/tokens".into(),
            false,
            B::Json(json!({"auth": {"identity": {"methods": ["kerberos"]}}})),
        ),
        (
            Method::POST,
            "auth/tokens".into(),
            false,
            B::Json(json!({"auth": {"identity": {"methods": []}}})),
        ),
        (
            Method::POST,
            "auth/tokens".into(),
            false,
            B::Json(pw(json!({"name": "u1", "password": "pw"}))),
        ),
        (
            Method::POST,
            "auth/tokens".into(),
            false,
            B::Json(pw(
                json!({"name": "u1", "domain": {"name": "d1"}, "password": 5}),
            )),
        ),
        (
            Method::POST,
            "auth/tokens".into(),
            false,
            B::Json(pw(
                json!({"name": "u1' OR '1'='1", "domain": {"name": "d1"}, "password": "x' OR '1'='1"}),
            )),
        ),
        (
            Method::POST,
            "auth/tokens".into(),
            false,
            B::Json(scoped(json!({"project": {}}))),
        ),
        (
            Method::POST,
            "auth/tokens".into(),
            false,
            B::Json(scoped(json!({"project": {"name": "p1"}}))),
        ),
        (
            Method::POST,
            "auth/tokens".into(),
            false,
            B::Json(scoped(json!({"project": {"id": "nope"}}))),
        ),
        (
            Method::POST,
            "auth/tokens".into(),
            false,
            B::Json(scoped(json!({"system": {"all": false}}))),
        ),
        (
            Method::POST,
            "auth/tokens".into(),
            false,
            B::Json(scoped(json!({"galaxy": {"id": "x"}}))),
        ),
        (
            Method::POST,
            "auth/tokens".into(),
            false,
            B::Json(scoped(json!({"project": {"id": p1}, "domain": {"id": d1}}))),
        ),
        (
            Method::POST,
            "auth/tokens".into(),
            false,
            B::Json(
                json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": {"secret": "x"}}}}),
            ),
        ),
        (
            Method::POST,
            "auth/tokens".into(),
            false,
            B::Big(2 * 1024 * 1024),
        ),
        (
            Method::POST,
            "users".into(),
            true,
            B::Json(json!({"user": "u"})),
        ),
        (
            Method::POST,
            "users".into(),
            true,
            B::Json(json!({"user": {"name": 123}})),
        ),
        (
            Method::POST,
            "users".into(),
            true,
            B::Json(json!({"user": {"name": ""}})),
        ),
        (
            Method::POST,
            "users".into(),
            true,
            B::Json(json!({"user": {"name": "   "}})),
        ),
        (
            Method::POST,
            "users".into(),
            true,
            B::Json(json!({"user": {"name": long_unicode}})),
        ),
        (
            Method::POST,
            "users".into(),
            true,
            B::Json(json!({"user": {"name": "a\u{0}b"}})),
        ),
        (
            Method::POST,
            "users".into(),
            true,
            B::Json(json!({"user": {"name": "ok", "enabled": "yes"}})),
        ),
        (
            Method::POST,
            "users".into(),
            true,
            B::Json(json!({"user": {"name": "ok", "domain_id": "nope"}})),
        ),
        (
            Method::POST,
            "users".into(),
            true,
            B::Json(json!({"user": {"name": "ok", "domain_id": d1, "password": "x".repeat(100)}})),
        ),
        (
            Method::POST,
            "users".into(),
            true,
            B::Json(json!({"user": {"name": "u1", "domain_id": d1}})),
        ),
        (
            Method::POST,
            "projects".into(),
            true,
            B::Json(json!({"project": {"name": "'; DROP TABLE projects; --", "domain_id": "no"}})),
        ),
        (
            Method::POST,
            "projects".into(),
            true,
            B::Json(json!({"project": {"name": "p1", "domain_id": d1}})),
        ),
        (
            Method::POST,
            "projects".into(),
            true,
            B::Json(json!({"project": {"name": "px", "domain_id": d1, "tags": ["a/b"]}})),
        ),
        (
            Method::POST,
            "projects".into(),
            true,
            B::Json(json!({"project": {"name": "px", "domain_id": d1, "parent_id": "missing"}})),
        ),
        (
            Method::PATCH,
            format!("projects/{p1}"),
            true,
            B::Json(json!({"project": {"domain_id": admin_domain}})),
        ),
        (
            Method::PATCH,
            format!("projects/{p1}"),
            true,
            B::Json(json!({"project": {"enabled": 1}})),
        ),
        (
            Method::POST,
            "domains".into(),
            true,
            B::Json(json!({"domain": {}})),
        ),
        (
            Method::POST,
            "domains".into(),
            true,
            B::Json(json!({"domain": {"name": "ü".repeat(65)}})),
        ),
        (
            Method::PATCH,
            format!("domains/{d1}"),
            true,
            B::Json(json!({"domain": {"enabled": "no"}})),
        ),
        (Method::DELETE, format!("domains/{d1}"), true, B::Raw("")),
        (
            Method::POST,
            "roles".into(),
            true,
            B::Json(json!({"role": {"name": null}})),
        ),
        (
            Method::POST,
            "roles".into(),
            true,
            B::Json(json!({"role": {"name": "member"}})),
        ),
        (
            Method::PUT,
            format!("roles/{role}/implies/{role}"),
            true,
            B::Raw(""),
        ),
        (
            Method::PUT,
            format!("projects/{p1}/users/nope/roles/{role}"),
            true,
            B::Raw(""),
        ),
        (
            Method::PUT,
            format!("projects/nope/users/{u1}/roles/{role}"),
            true,
            B::Raw(""),
        ),
        (
            Method::PUT,
            format!("projects/{p1}/users/{u1}/roles/nope"),
            true,
            B::Raw(""),
        ),
        (
            Method::GET,
            "users/%27%20OR%201%3D1%20--".into(),
            true,
            B::Raw(""),
        ),
        (
            Method::GET,
            "projects?enabled=maybe".into(),
            true,
            B::Raw(""),
        ),
        (
            Method::POST,
            "endpoints".into(),
            true,
            B::Json(
                json!({"endpoint": {"service_id": svc, "interface": "weird", "url": "http://x"}}),
            ),
        ),
        (
            Method::POST,
            "endpoints".into(),
            true,
            B::Json(
                json!({"endpoint": {"service_id": svc, "interface": "public", "url": "javascript:alert(1)"}}),
            ),
        ),
        (
            Method::POST,
            "endpoints".into(),
            true,
            B::Json(
                json!({"endpoint": {"service_id": svc, "interface": "public", "url": "http://x", "region_id": "r".repeat(256)}}),
            ),
        ),
        (
            Method::POST,
            "regions".into(),
            true,
            B::Json(json!({"region": {"id": "RegionOne"}})),
        ),
        (
            Method::POST,
            "services".into(),
            true,
            B::Json(json!({"service": {"name": "no type"}})),
        ),
        (
            Method::POST,
            format!("users/{u1}/password"),
            false,
            B::Json(json!({"user": {"password": "n", "original_password": "wrong"}})),
        ),
        (
            Method::POST,
            format!("users/{u1}/password"),
            false,
            B::Json(json!({"user": {"password": "n"}})),
        ),
        (
            Method::POST,
            format!("users/{u1}/application_credentials"),
            true,
            B::Json(json!({"application_credential": {"name": "x"}})),
        ),
        (Method::DELETE, "users".into(), true, B::Raw("")),
        (Method::GET, "no/such/path".into(), true, B::Raw("")),
    ];
    assert!(cases.len() >= 30);
    let mut failures = Vec::new();
    for (i, (method, path, with_token, body)) in cases.into_iter().enumerate() {
        let url = format!("{}/{}", tc.identity(), path);
        let token = if with_token {
            Some(admin.as_str())
        } else {
            None
        };
        let body = match body {
            B::Json(v) => Some(RawBody::Json(v)),
            B::Raw("") => None,
            B::Raw(s) => Some(RawBody::Bytes(s.as_bytes().to_vec(), "application/json")),
            B::Big(n) => Some(RawBody::Bytes(vec![b' '; n], "application/json")),
        };
        let r = tc.send(method.clone(), &url, token, body).await;
        let json_error = r.json["error"]["code"].as_u64() == Some(u64::from(r.status.as_u16()))
            && r.json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty());
        if !r.status.is_client_error() || !json_error {
            failures.push(format!(
                "case {i}: {method} {path}: {} {}",
                r.status, r.json
            ));
        }
    }
    // A garbage token is a 401, not a crash.
    let r = tc
        .call(Method::GET, "users", "gAAAA-not-a-token", None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(failures.is_empty(), "{backend:?}:\n{}", failures.join("\n"));
    let after = snapshot(&tc.cloud).await;
    let changed: Vec<_> = after
        .iter()
        .filter(|l| !before.contains(l))
        .chain(before.iter().filter(|l| !after.contains(l)))
        .collect();
    assert!(changed.is_empty(), "the database changed: {changed:#?}");
    tc.stop().await;
}
