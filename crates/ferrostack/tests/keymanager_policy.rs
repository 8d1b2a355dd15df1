//! Who may do what with secrets and containers: every route of the
//! key-manager API against four personas — the cloud admin, a member of
//! the owning project, a reader of it, a member of another project — with
//! the exact status each gets, as Barbican's default policy answers. A
//! coverage check fails when the API grows a route this table lacks.

use ferro_test_support::{Backend, RawBody, TestCloud};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ROUTES: &[&str] = &[
    "GET /v1/secrets",
    "POST /v1/secrets",
    "GET /v1/secrets/{id}",
    "GET /v1/secrets/{id}/payload",
    "DELETE /v1/secrets/{id}",
    "GET /v1/containers",
    "POST /v1/containers",
    "GET /v1/containers/{id}",
    "DELETE /v1/containers/{id}",
];

async fn call(
    tc: &TestCloud,
    m: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let url = format!("{}{path}", tc.cloud.keymanager_url);
    let r = tc.send(m, &url, Some(token), body.map(RawBody::Json)).await;
    (r.status, r.json)
}

#[tokio::test]
async fn every_route_answers_each_persona_as_barbican_does() {
    let tc = TestCloud::start(Backend::Sqlite).await;
    let admin = tc.admin_token().await;
    let (_, owner) = tc.project_user(&admin, "web", "member").await;
    let (_, other) = tc.project_user(&admin, "other", "member").await;
    let reader = tc.another_user(&admin, "web", "web-reader", "reader").await;
    let secret_body = json!({"payload": "s3cret", "payload_content_type": "text/plain"});
    let (s, b) = call(
        &tc,
        Method::POST,
        "/v1/secrets",
        &owner,
        Some(secret_body.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let id_of = |v: &Value, k: &str| {
        v[k].as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned()
    };
    let secret = id_of(&b, "secret_ref");
    let container_body =
        json!({"type": "generic", "secret_refs": [{"name": "a", "secret_ref": b["secret_ref"]}]});
    let (s, b) = call(
        &tc,
        Method::POST,
        "/v1/containers",
        &owner,
        Some(container_body.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let container = id_of(&b, "container_ref");

    let (ok, created, gone, forbidden) = (
        StatusCode::OK,
        StatusCode::CREATED,
        StatusCode::NO_CONTENT,
        StatusCode::FORBIDDEN,
    );
    // (route, admin, owner, reader, other project's member). Creates act in
    // the caller's own project; the deletes come last, the owner's last.
    let table = [
        ("GET /v1/secrets", ok, ok, ok, ok),
        ("POST /v1/secrets", created, created, forbidden, created),
        ("GET /v1/secrets/{id}", ok, ok, ok, forbidden),
        ("GET /v1/secrets/{id}/payload", ok, ok, forbidden, forbidden),
        ("GET /v1/containers", ok, ok, ok, ok),
        // A container holds secrets of its own project only: the owner's
        // secret is not found from the admin's project or the other one.
        (
            "POST /v1/containers",
            StatusCode::NOT_FOUND,
            created,
            forbidden,
            StatusCode::NOT_FOUND,
        ),
        ("GET /v1/containers/{id}", ok, ok, ok, forbidden),
        (
            "DELETE /v1/containers/{id}",
            gone,
            gone,
            forbidden,
            forbidden,
        ),
        ("DELETE /v1/secrets/{id}", gone, gone, forbidden, forbidden),
    ];
    for (route, want_admin, want_owner, want_reader, want_other) in table {
        let (m, p) = route.split_once(' ').unwrap();
        let method = Method::from_bytes(m.as_bytes()).unwrap();
        let body = match route {
            "POST /v1/secrets" => Some(secret_body.clone()),
            "POST /v1/containers" => Some(container_body.clone()),
            _ => None,
        };
        let id = if p.contains("containers") {
            &container
        } else {
            &secret
        };
        let path = p.replace("{id}", id);
        // The admin's delete would leave nothing for the owner's: the
        // admin deletes its own copy made just before.
        let admin_path = if m == "DELETE" {
            let kind = if p.contains("containers") {
                "containers"
            } else {
                "secrets"
            };
            let body = if kind == "secrets" {
                secret_body.clone()
            } else {
                container_body.clone()
            };
            let (s, b) = call(
                &tc,
                Method::POST,
                &format!("/v1/{kind}"),
                &owner,
                Some(body),
            )
            .await;
            assert_eq!(s, StatusCode::CREATED, "{b}");
            let key = if kind == "secrets" {
                "secret_ref"
            } else {
                "container_ref"
            };
            format!("/v1/{kind}/{}", id_of(&b, key))
        } else {
            path.clone()
        };
        for (who, token, want, path) in [
            ("reader", &reader, want_reader, &path),
            ("other project", &other, want_other, &path),
            ("admin", &admin, want_admin, &admin_path),
            ("owner", &owner, want_owner, &path),
        ] {
            let (s, b) = call(&tc, method.clone(), path, token, body.clone()).await;
            assert_eq!(s, want, "{who} {route}: {b}");
        }
    }
    assert_eq!(table.len(), ROUTES.len());
    tc.stop().await;
}

/// The table above names every route the key-manager router serves
/// (besides version discovery).
#[test]
fn the_policy_table_covers_every_route() {
    let src = include_str!("../../keymanager/src/api.rs");
    let served: Vec<&str> = src
        .split(".route(")
        .skip(1)
        .filter_map(|rest| rest.split('"').nth(1))
        .filter(|p| p.starts_with("/v1/") && *p != "/v1/")
        .map(|p| {
            if p.len() > 4 {
                p.trim_end_matches('/')
            } else {
                p
            }
        })
        .collect();
    assert!(!served.is_empty(), "no routes found in the router");
    for p in served {
        assert!(
            ROUTES.iter().any(|r| r.split_once(' ').unwrap().1 == p),
            "route {p} has no row in the policy table"
        );
    }
}
