//! Keystone's smaller APIs, on SQLite and on PostgreSQL: credentials and EC2
//! credentials (whose they are, who may see them), policies, OAuth1
//! consumers, endpoint groups, domain configuration, inherited grants,
//! project tags, regions made by id or by an endpoint.

use ferro_test_support::{backends, Backend, TestCloud};
use reqwest::{Method, StatusCode};
use serde_json::json;
use sha2::{Digest, Sha256};

#[tokio::test]
async fn identity_records_on_every_backend() {
    for backend in backends() {
        flow(backend).await;
    }
}

async fn flow(backend: Backend) {
    let tc = TestCloud::start(backend).await;
    let admin = tc.admin_token().await;
    let (p1, t1) = tc.project_user(&admin, "rec1", "member").await;
    let (_p2, t2) = tc.project_user(&admin, "rec2", "member").await;
    let u1 = tc
        .call(Method::GET, "users?name=rec1-user", &admin, None)
        .await
        .json["users"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // ---- credentials ----
    let blob = json!({"access": "AK1", "secret": "SK1"}).to_string();
    let c = tc
        .call(
            Method::POST,
            "credentials",
            &t1,
            Some(json!({"credential": {"user_id": u1, "project_id": p1, "type": "ec2", "blob": blob}})),
        )
        .await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.json);
    let cid = c.id("credential");
    assert_eq!(
        cid,
        hex::encode(Sha256::digest(b"AK1")),
        "an ec2 credential's id is the SHA-256 of its access key"
    );
    assert_eq!(c.json["credential"]["blob"], json!(blob));
    let no_project = tc
        .call(
            Method::POST,
            "credentials",
            &admin,
            Some(json!({"credential": {"user_id": u1, "type": "ec2", "blob": blob}})),
        )
        .await;
    assert_eq!(
        no_project.status,
        StatusCode::BAD_REQUEST,
        "{}",
        no_project.json
    );
    let not_json = tc
        .call(
            Method::POST,
            "credentials",
            &admin,
            Some(json!({"credential": {"user_id": u1, "project_id": p1, "type": "ec2", "blob": "{"}})),
        )
        .await;
    assert_eq!(
        not_json.status,
        StatusCode::BAD_REQUEST,
        "{}",
        not_json.json
    );
    let other = tc
        .call(Method::GET, &format!("credentials/{cid}"), &t2, None)
        .await;
    assert_eq!(
        other.status,
        StatusCode::FORBIDDEN,
        "another user's credential"
    );
    let mine = tc.call(Method::GET, "credentials", &t1, None).await;
    assert_eq!(mine.status, StatusCode::OK);
    assert_eq!(mine.json["credentials"].as_array().unwrap().len(), 1);
    let theirs = tc.call(Method::GET, "credentials", &t2, None).await;
    assert_eq!(
        theirs.json["credentials"],
        json!([]),
        "a user lists only their own"
    );
    let new_blob = json!({"access": "AK1", "secret": "SK2"}).to_string();
    let up = tc
        .call(
            Method::PATCH,
            &format!("credentials/{cid}"),
            &t1,
            Some(json!({"credential": {"blob": new_blob}})),
        )
        .await;
    assert_eq!(up.status, StatusCode::OK, "{}", up.json);
    assert_eq!(up.json["credential"]["blob"], json!(new_blob));
    let del = tc
        .call(Method::DELETE, &format!("credentials/{cid}"), &t1, None)
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    let gone = tc
        .call(Method::GET, &format!("credentials/{cid}"), &t1, None)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);

    // ---- EC2 credentials ----
    let ec2 = tc
        .call(
            Method::POST,
            &format!("users/{u1}/credentials/OS-EC2"),
            &t1,
            Some(json!({"tenant_id": p1})),
        )
        .await;
    assert_eq!(ec2.status, StatusCode::CREATED, "{}", ec2.json);
    let access = ec2.json["credential"]["access"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(ec2.json["credential"]["tenant_id"], json!(p1));
    assert!(ec2.json["credential"]["secret"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    let shown = tc
        .call(
            Method::GET,
            &format!("users/{u1}/credentials/OS-EC2/{access}"),
            &t1,
            None,
        )
        .await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(
        shown.json["credential"]["secret"],
        ec2.json["credential"]["secret"]
    );
    let as_other = tc
        .call(
            Method::GET,
            &format!("users/{u1}/credentials/OS-EC2"),
            &t2,
            None,
        )
        .await;
    assert_eq!(as_other.status, StatusCode::FORBIDDEN);
    let listed = tc
        .call(
            Method::GET,
            &format!("users/{u1}/credentials/OS-EC2"),
            &t1,
            None,
        )
        .await;
    assert_eq!(listed.json["credentials"].as_array().unwrap().len(), 1);
    // the same credential is one of the user's credentials, type ec2
    let generic = tc
        .call(Method::GET, "credentials?type=ec2", &t1, None)
        .await;
    assert_eq!(generic.json["credentials"].as_array().unwrap().len(), 1);

    // ---- policies, consumers, endpoint groups: the administrator's ----
    let pol = tc
        .call(
            Method::POST,
            "policies",
            &admin,
            Some(json!({"policy": {"blob": "{}", "type": "application/json"}})),
        )
        .await;
    assert_eq!(pol.status, StatusCode::CREATED, "{}", pol.json);
    let pid = pol.id("policy");
    let denied = tc.call(Method::GET, "policies", &t1, None).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let listed = tc.call(Method::GET, "policies", &admin, None).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.json["policies"][0]["id"], json!(pid));
    let missing = tc
        .call(
            Method::POST,
            "policies",
            &admin,
            Some(json!({"policy": {"blob": "{}"}})),
        )
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);

    let con = tc
        .call(
            Method::POST,
            "OS-OAUTH1/consumers",
            &admin,
            Some(json!({"consumer": {"description": "d"}})),
        )
        .await;
    assert_eq!(con.status, StatusCode::CREATED, "{}", con.json);
    assert!(
        con.json["consumer"]["secret"].is_string(),
        "shown when made"
    );
    let con_id = con.id("consumer");
    let again = tc
        .call(
            Method::GET,
            &format!("OS-OAUTH1/consumers/{con_id}"),
            &admin,
            None,
        )
        .await;
    assert!(
        again.json["consumer"].get("secret").is_none(),
        "and never again"
    );
    let secret_update = tc
        .call(
            Method::PATCH,
            &format!("OS-OAUTH1/consumers/{con_id}"),
            &admin,
            Some(json!({"consumer": {"secret": "x"}})),
        )
        .await;
    assert_eq!(secret_update.status, StatusCode::BAD_REQUEST);

    let bad_filter = tc
        .call(
            Method::POST,
            "OS-EP-FILTER/endpoint_groups",
            &admin,
            Some(json!({"endpoint_group": {"name": "g", "filters": {"color": "red"}}})),
        )
        .await;
    assert_eq!(
        bad_filter.status,
        StatusCode::BAD_REQUEST,
        "{}",
        bad_filter.json
    );
    let eg = tc
        .call(
            Method::POST,
            "OS-EP-FILTER/endpoint_groups",
            &admin,
            Some(json!({"endpoint_group": {"name": "g", "filters": {"interface": "public"}}})),
        )
        .await;
    assert_eq!(eg.status, StatusCode::CREATED, "{}", eg.json);
    let eg_id = eg.id("endpoint_group");
    let renamed = tc
        .call(
            Method::PATCH,
            &format!("OS-EP-FILTER/endpoint_groups/{eg_id}"),
            &admin,
            Some(json!({"endpoint_group": {"name": "g2"}})),
        )
        .await;
    assert_eq!(renamed.json["endpoint_group"]["name"], "g2");
    assert_eq!(
        renamed.json["endpoint_group"]["filters"],
        json!({"interface": "public"})
    );

    // ---- domain configuration ----
    let cfg = json!({"config": {"identity": {"driver": "ldap"}, "ldap": {"url": "ldap://x", "password": "hidden"}}});
    let put = tc
        .call(
            Method::PUT,
            "domains/default/config",
            &admin,
            Some(cfg.clone()),
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED, "{}", put.json);
    assert!(
        put.json["config"]["ldap"].get("password").is_none(),
        "the bind password is never shown"
    );
    let again = tc
        .call(Method::PUT, "domains/default/config", &admin, Some(cfg))
        .await;
    assert_eq!(again.status, StatusCode::OK);
    let opt = tc
        .call(Method::GET, "domains/default/config/ldap/url", &admin, None)
        .await;
    assert_eq!(opt.json, json!({"config": {"url": "ldap://x"}}));
    let bad_group = tc
        .call(
            Method::PATCH,
            "domains/default/config",
            &admin,
            Some(json!({"config": {"assignment": {"driver": "x"}}})),
        )
        .await;
    assert_eq!(
        bad_group.status,
        StatusCode::FORBIDDEN,
        "{}",
        bad_group.json
    );
    let as_member = tc
        .call(Method::GET, "domains/default/config", &t1, None)
        .await;
    assert_eq!(as_member.status, StatusCode::FORBIDDEN);
    let del = tc
        .call(
            Method::DELETE,
            "domains/default/config/identity/driver",
            &admin,
            None,
        )
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    let gone = tc
        .call(Method::GET, "domains/default/config/identity", &admin, None)
        .await;
    assert_eq!(
        gone.status,
        StatusCode::NOT_FOUND,
        "its only option gone, the group is gone"
    );
    let defaults = tc
        .call(Method::GET, "domains/config/identity/default", &admin, None)
        .await;
    assert_eq!(defaults.json["config"]["identity"]["driver"], "sql");
    let nowhere = tc
        .call(Method::GET, "domains/nope/config", &admin, None)
        .await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);

    // ---- inherited grants reach the projects below ----
    let reader = tc
        .call(Method::GET, "roles?name=reader", &admin, None)
        .await
        .json["roles"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let child = tc
        .call(
            Method::POST,
            "projects",
            &admin,
            Some(json!({"project": {"name": "rec1-child", "parent_id": p1}})),
        )
        .await;
    assert_eq!(child.status, StatusCode::CREATED, "{}", child.json);
    let child = child.id("project");
    let grant = format!("OS-INHERIT/projects/{p1}/users/{u1}/roles/{reader}/inherited_to_projects");
    let g = tc.call(Method::PUT, &grant, &admin, None).await;
    assert_eq!(g.status, StatusCode::NO_CONTENT, "{}", g.json);
    let check = tc.call(Method::HEAD, &grant, &admin, None).await;
    assert_eq!(check.status, StatusCode::NO_CONTENT);
    let direct = tc
        .call(
            Method::GET,
            &format!("projects/{p1}/users/{u1}/roles"),
            &admin,
            None,
        )
        .await;
    assert!(
        !direct.json["roles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == json!(reader)),
        "an inherited grant is not a direct one"
    );
    let eff = tc
        .call(
            Method::GET,
            &format!("role_assignments?effective&user.id={u1}&scope.project.id={child}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(
        eff.json["role_assignments"].as_array().unwrap().len(),
        1,
        "{}",
        eff.json
    );
    let raw = tc
        .call(
            Method::GET,
            &format!("role_assignments?user.id={u1}&role.id={reader}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(
        raw.json["role_assignments"][0]["scope"]["OS-INHERIT:inherited_to"],
        "projects"
    );
    let child_token = tc
        .token("rec1-user", "Default", "pw", "rec1-child", "Default")
        .await;
    assert!(
        !child_token.is_empty(),
        "the inherited role lets the user scope to the child"
    );
    let r = tc.call(Method::DELETE, &grant, &admin, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let eff = tc
        .call(
            Method::GET,
            &format!("role_assignments?effective&user.id={u1}&scope.project.id={child}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(eff.json["role_assignments"], json!([]));

    // ---- project tags ----
    let add = tc
        .call(
            Method::PUT,
            &format!("projects/{p1}/tags/blue"),
            &admin,
            None,
        )
        .await;
    assert_eq!(add.status, StatusCode::CREATED);
    let has = tc
        .call(Method::GET, &format!("projects/{p1}/tags/blue"), &t1, None)
        .await;
    assert_eq!(has.status, StatusCode::NO_CONTENT);
    let by_member = tc
        .call(Method::PUT, &format!("projects/{p1}/tags/red"), &t1, None)
        .await;
    assert_eq!(by_member.status, StatusCode::FORBIDDEN);
    let all = tc
        .call(
            Method::PUT,
            &format!("projects/{p1}/tags"),
            &admin,
            Some(json!({"tags": ["a", "b"]})),
        )
        .await;
    assert_eq!(all.json, json!({"tags": ["a", "b"]}));
    let bad = tc
        .call(
            Method::PUT,
            &format!("projects/{p1}/tags"),
            &admin,
            Some(json!({"tags": ["a/b"]})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    // Keystone's tags are unique: one given twice (not side by side) is refused.
    let twice = tc
        .call(
            Method::PUT,
            &format!("projects/{p1}/tags"),
            &admin,
            Some(json!({"tags": ["x", "y", "x"]})),
        )
        .await;
    assert_eq!(twice.status, StatusCode::BAD_REQUEST, "{}", twice.json);
    assert!(twice.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("twice"));
    let shown = tc
        .call(Method::GET, &format!("projects/{p1}"), &admin, None)
        .await;
    assert_eq!(shown.json["project"]["tags"], json!(["a", "b"]));
    let gone = tc
        .call(
            Method::DELETE,
            &format!("projects/{p1}/tags/blue"),
            &admin,
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);

    // ---- regions: by id, and made for an endpoint that names one ----
    let r = tc
        .call(
            Method::PUT,
            "regions/north",
            &admin,
            Some(json!({"region": {"description": "n"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["region"]["id"], "north");
    let dup = tc
        .call(
            Method::PUT,
            "regions/north",
            &admin,
            Some(json!({"region": {}})),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    let svc = tc
        .call(
            Method::POST,
            "services",
            &admin,
            Some(json!({"service": {"type": "thing", "name": "thing"}})),
        )
        .await
        .id("service");
    let ep = tc
        .call(
            Method::POST,
            "endpoints",
            &admin,
            Some(json!({"endpoint": {"service_id": svc, "interface": "public", "url": "http://x", "region": "south"}})),
        )
        .await;
    assert_eq!(ep.status, StatusCode::CREATED, "{}", ep.json);
    let south = tc.call(Method::GET, "regions/south", &admin, None).await;
    assert_eq!(
        south.status,
        StatusCode::OK,
        "the endpoint's region was made"
    );

    // ---- a deleted user's credentials go with them ----
    let del = tc
        .call(Method::DELETE, &format!("users/{u1}"), &admin, None)
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    let left = tc.call(Method::GET, "credentials", &admin, None).await;
    assert_eq!(left.json["credentials"], json!([]), "{}", left.json);
    tc.stop().await;
}
