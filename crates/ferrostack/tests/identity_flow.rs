//! The identity acceptance flow, on SQLite and on PostgreSQL: a domain, a
//! project, a user with the member role; tenant isolation; application
//! credentials; revocation; disabled users; and all of it after a restart.

use ferro_test_support::{backends, Backend, TestCloud};
use reqwest::{Method, StatusCode};
use serde_json::json;

struct World {
    d1: String,
    p1: String,
    u1: String,
}

async fn build_world(tc: &TestCloud, admin: &str) -> World {
    let d1 = tc
        .call(
            Method::POST,
            "domains",
            admin,
            Some(json!({"domain": {"name": "d1"}})),
        )
        .await;
    assert_eq!(d1.status, StatusCode::CREATED, "{}", d1.json);
    let d1 = d1.id("domain");
    let p1 = tc
        .call(
            Method::POST,
            "projects",
            admin,
            Some(json!({"project": {"name": "p1", "domain_id": d1}})),
        )
        .await;
    assert_eq!(p1.status, StatusCode::CREATED, "{}", p1.json);
    let p1 = p1.id("project");
    let u1 = tc
        .call(
            Method::POST,
            "users",
            admin,
            Some(json!({"user": {"name": "u1", "domain_id": d1, "password": "pw"}})),
        )
        .await;
    assert_eq!(u1.status, StatusCode::CREATED, "{}", u1.json);
    assert!(
        u1.json["user"].get("password").is_none(),
        "passwords are never returned"
    );
    let u1 = u1.id("user");
    let roles = tc.call(Method::GET, "roles?name=member", admin, None).await;
    let member = roles.json["roles"][0]["id"]
        .as_str()
        .expect("member role")
        .to_owned();
    let grant = tc
        .call(
            Method::PUT,
            &format!("projects/{p1}/users/{u1}/roles/{member}"),
            admin,
            None,
        )
        .await;
    assert_eq!(grant.status, StatusCode::NO_CONTENT);
    World { d1, p1, u1 }
}

async fn check_member_view(tc: &TestCloud, w: &World) -> String {
    let auth = tc
        .auth(
            "u1",
            "d1",
            "pw",
            Some(json!({"project": {"name": "p1", "domain": {"name": "d1"}}})),
        )
        .await;
    assert_eq!(auth.status, StatusCode::CREATED, "{}", auth.json);
    let tok = auth.json["token"].clone();
    assert_eq!(tok["project"]["id"], json!(w.p1));
    let role_names: Vec<&str> = tok["roles"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(
        role_names.contains(&"member")
            && role_names.contains(&"reader")
            && !role_names.contains(&"admin")
    );
    assert!(!tok["catalog"].as_array().unwrap().is_empty());
    let t = auth.subject_token();

    let users = tc.call(Method::GET, "users", &t, None).await;
    assert_eq!(users.status, StatusCode::FORBIDDEN);
    assert!(
        users.message().contains("identity:list_users"),
        "{}",
        users.json
    );
    let create = tc
        .call(
            Method::POST,
            "projects",
            &t,
            Some(json!({"project": {"name": "px"}})),
        )
        .await;
    assert_eq!(create.status, StatusCode::FORBIDDEN);
    let mine = tc.call(Method::GET, "auth/projects", &t, None).await;
    let ids: Vec<&str> = mine.json["projects"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert_eq!(ids, vec![w.p1.as_str()], "u1 sees only p1");
    let own = tc
        .call(Method::GET, &format!("users/{}/projects", w.u1), &t, None)
        .await;
    assert_eq!(own.json["projects"].as_array().unwrap().len(), 1);
    let admin_project = tc.call(Method::GET, "projects?name=admin", &t, None).await;
    assert_eq!(admin_project.status, StatusCode::FORBIDDEN);
    t
}

#[tokio::test]
async fn seed_identity_flow_on_every_backend() {
    for backend in backends() {
        flow(backend).await;
    }
}

async fn flow(backend: Backend) {
    let tc = TestCloud::start(backend).await;
    let admin = tc.admin_token().await;
    let w = build_world(&tc, &admin).await;
    let member_token = check_member_view(&tc, &w).await;

    // Application credential: made by u1, then used to authenticate.
    let ac = tc
        .call(
            Method::POST,
            &format!("users/{}/application_credentials", w.u1),
            &member_token,
            Some(json!({"application_credential": {"name": "ac1"}})),
        )
        .await;
    assert_eq!(ac.status, StatusCode::CREATED, "{}", ac.json);
    let ac_id = ac.id("application_credential");
    let secret = ac.json["application_credential"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({"auth": {"identity": {"methods": ["application_credential"],
        "application_credential": {"id": ac_id, "secret": secret}}}});
    let url = format!("{}/auth/tokens", tc.identity());
    let by_ac = tc
        .send(
            Method::POST,
            &url,
            None,
            Some(ferro_test_support::RawBody::Json(body.clone())),
        )
        .await;
    assert_eq!(by_ac.status, StatusCode::CREATED, "{}", by_ac.json);
    assert_eq!(by_ac.json["token"]["project"]["id"], json!(w.p1));
    assert_eq!(
        by_ac.json["token"]["application_credential"]["id"],
        json!(ac_id)
    );
    let wrong = json!({"auth": {"identity": {"methods": ["application_credential"],
        "application_credential": {"id": ac_id, "secret": "wrong"}}}});
    let refused = tc
        .send(
            Method::POST,
            &url,
            None,
            Some(ferro_test_support::RawBody::Json(wrong)),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);

    // Validation, then revocation takes effect at once.
    let v = tc
        .http
        .get(&url)
        .header("X-Auth-Token", &admin)
        .header("X-Subject-Token", &member_token)
        .send()
        .await
        .unwrap();
    assert_eq!(v.status(), StatusCode::OK);
    let r = tc
        .http
        .delete(&url)
        .header("X-Auth-Token", &admin)
        .header("X-Subject-Token", &member_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let after = tc
        .call(Method::GET, "auth/projects", &member_token, None)
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    let v = tc
        .http
        .get(&url)
        .header("X-Auth-Token", &admin)
        .header("X-Subject-Token", &member_token)
        .send()
        .await
        .unwrap();
    assert_eq!(v.status(), StatusCode::NOT_FOUND);

    // A fresh token issued before the restart stays valid after it; the
    // revoked one stays revoked.
    let kept = tc.token("u1", "d1", "pw", "p1", "d1").await;
    let tc = tc.restart().await;
    let ok = tc.call(Method::GET, "auth/projects", &kept, None).await;
    assert_eq!(
        ok.status,
        StatusCode::OK,
        "token survives a restart ({backend:?})"
    );
    let still = tc
        .call(Method::GET, "auth/projects", &member_token, None)
        .await;
    assert_eq!(
        still.status,
        StatusCode::UNAUTHORIZED,
        "revocation survives a restart"
    );
    let url = format!("{}/auth/tokens", tc.identity());
    let admin = tc.admin_token().await;
    check_member_view(&tc, &w).await;

    // Disabling a user refuses new authentication and kills live tokens.
    let dis = tc
        .call(
            Method::PATCH,
            &format!("users/{}", w.u1),
            &admin,
            Some(json!({"user": {"enabled": false}})),
        )
        .await;
    assert_eq!(dis.status, StatusCode::OK);
    let denied = tc.auth("u1", "d1", "pw", None).await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
    let dead = tc.call(Method::GET, "auth/projects", &kept, None).await;
    assert_eq!(dead.status, StatusCode::UNAUTHORIZED);
    let by_ac = tc
        .send(
            Method::POST,
            &url,
            None,
            Some(ferro_test_support::RawBody::Json(body)),
        )
        .await;
    assert_eq!(
        by_ac.status,
        StatusCode::UNAUTHORIZED,
        "a disabled user's credentials are refused too"
    );
    let _ = w.d1;
    tc.stop().await;
}

#[tokio::test]
async fn tokens_rescope_and_change_password() {
    let tc = TestCloud::start(Backend::Sqlite).await;
    let admin = tc.admin_token().await;
    let w = build_world(&tc, &admin).await;
    let unscoped = tc.auth("u1", "d1", "pw", None).await;
    assert_eq!(unscoped.status, StatusCode::CREATED);
    assert!(unscoped.json["token"].get("project").is_none());
    assert!(unscoped.json["token"].get("catalog").is_none());
    let body = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": unscoped.subject_token()}},
                               "scope": {"project": {"id": w.p1}}}});
    let url = format!("{}/auth/tokens", tc.identity());
    let rescoped = tc
        .send(
            Method::POST,
            &url,
            None,
            Some(ferro_test_support::RawBody::Json(body)),
        )
        .await;
    assert_eq!(rescoped.status, StatusCode::CREATED, "{}", rescoped.json);
    assert_eq!(
        rescoped.json["token"]["audit_ids"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        rescoped.json["token"]["expires_at"],
        unscoped.json["token"]["expires_at"]
    );

    let change = json!({"user": {"password": "pw2", "original_password": "wrong"}});
    let r = tc
        .call(
            Method::POST,
            &format!("users/{}/password", w.u1),
            "",
            Some(change),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let change = json!({"user": {"password": "pw2", "original_password": "pw"}});
    let r = tc
        .call(
            Method::POST,
            &format!("users/{}/password", w.u1),
            "",
            Some(change),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        tc.auth("u1", "d1", "pw", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        tc.auth("u1", "d1", "pw2", None).await.status,
        StatusCode::CREATED
    );
    let old = tc
        .call(
            Method::GET,
            "auth/projects",
            &rescoped.subject_token(),
            None,
        )
        .await;
    assert_eq!(
        old.status,
        StatusCode::UNAUTHORIZED,
        "a password change revokes the user's tokens"
    );

    // Domain scope and system scope for the admin.
    let pw = tc.cloud.admin_password.clone();
    let sys = tc
        .auth(
            "admin",
            "admin_domain",
            &pw,
            Some(json!({"system": {"all": true}})),
        )
        .await;
    assert_eq!(sys.status, StatusCode::CREATED);
    assert_eq!(sys.json["token"]["system"], json!({"all": true}));
    let dom = tc
        .auth(
            "admin",
            "admin_domain",
            &pw,
            Some(json!({"domain": {"name": "admin_domain"}})),
        )
        .await;
    assert_eq!(dom.status, StatusCode::CREATED);
    assert_eq!(dom.json["token"]["domain"]["name"], json!("admin_domain"));
    let no = tc
        .auth("u1", "d1", "pw2", Some(json!({"system": {"all": true}})))
        .await;
    assert_eq!(no.status, StatusCode::UNAUTHORIZED, "u1 has no system role");
    tc.stop().await;
}

#[tokio::test]
async fn effective_assignments_follow_groups_and_implied_roles() {
    let tc = TestCloud::start(Backend::Sqlite).await;
    let admin = tc.admin_token().await;
    let w = build_world(&tc, &admin).await;
    let g = tc
        .call(
            Method::POST,
            "groups",
            &admin,
            Some(json!({"group": {"name": "ops", "domain_id": w.d1}})),
        )
        .await;
    let g = g.id("group");
    // Other properties are accepted, as Keystone's schema allows.
    let extra = tc
        .call(
            Method::POST,
            "groups",
            &admin,
            Some(json!({"group": {"name": "with-extra", "domain_id": w.d1, "project_id": "p1"}})),
        )
        .await;
    assert_eq!(extra.status, StatusCode::CREATED, "{}", extra.json);
    assert_eq!(extra.json["group"]["name"], "with-extra");
    // A user or group in a domain that doesn't exist: 404, as Keystone's.
    for (kind, body) in [
        (
            "users",
            json!({"user": {"name": "lost", "domain_id": "nope"}}),
        ),
        (
            "groups",
            json!({"group": {"name": "lost", "domain_id": "nope"}}),
        ),
    ] {
        let r = tc.call(Method::POST, kind, &admin, Some(body)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{kind}: {}", r.json);
        assert_eq!(r.json["error"]["message"], "Could not find domain: nope.");
    }
    let u2 = tc
        .call(
            Method::POST,
            "users",
            &admin,
            Some(json!({"user": {"name": "u2", "domain_id": w.d1, "password": "x"}})),
        )
        .await;
    let u2 = u2.id("user");
    assert_eq!(
        tc.call(Method::PUT, &format!("groups/{g}/users/{u2}"), &admin, None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let reader = tc
        .call(Method::GET, "roles?name=reader", &admin, None)
        .await
        .json["roles"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        tc.call(
            Method::PUT,
            &format!("projects/{}/groups/{g}/roles/{reader}", w.p1),
            &admin,
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    let t = tc.token("u2", "d1", "x", "p1", "d1").await;
    let r = tc
        .call(Method::GET, &format!("projects/{}", w.p1), &t, None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "a group grant gives access");
    let eff = tc
        .call(
            Method::GET,
            &format!(
                "role_assignments?effective&include_names&scope.project.id={}",
                w.p1
            ),
            &admin,
            None,
        )
        .await;
    let rows = eff.json["role_assignments"].as_array().unwrap();
    let has = |user: &str, role: &str| {
        rows.iter()
            .any(|a| a["user"]["name"] == json!(user) && a["role"]["name"] == json!(role))
    };
    assert!(
        has("u1", "member") && has("u1", "reader"),
        "implied roles appear: {rows:?}"
    );
    assert!(
        has("u2", "reader") && !has("u2", "member"),
        "group members appear: {rows:?}"
    );
    assert!(rows.iter().all(|a| a.get("group").is_none()));
    // Removing the member from the group takes effect at once.
    assert_eq!(
        tc.call(
            Method::DELETE,
            &format!("groups/{g}/users/{u2}"),
            &admin,
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    let r = tc
        .call(Method::GET, &format!("projects/{}", w.p1), &t, None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    tc.stop().await;
}

/// Two controllers on one PostgreSQL: a token revoked through one is
/// refused by the other within a few seconds.
#[tokio::test]
async fn revocations_reach_other_controllers() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let a = TestCloud::start(Backend::Postgres).await;
    let b = a.second_controller().await;
    let admin = a.admin_token().await;
    let victim = a.admin_token().await;
    let ok = b.call(Method::GET, "auth/projects", &victim, None).await;
    assert_eq!(ok.status, StatusCode::OK, "controller B accepts A's token");
    let url = format!("{}/auth/tokens", a.identity());
    let r = a
        .http
        .delete(&url)
        .header("X-Auth-Token", &admin)
        .header("X-Subject-Token", &victim)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let start = std::time::Instant::now();
    loop {
        let r = b.call(Method::GET, "auth/projects", &victim, None).await;
        if r.status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "controller B still accepts a revoked token"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    b.stop().await;
    a.stop().await;
}
