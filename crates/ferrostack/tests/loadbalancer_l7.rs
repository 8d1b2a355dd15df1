//! Octavia's L7 policies and rules end to end over HTTP with the fake
//! dataplane: positions stay dense as policies are made, moved and
//! removed; rules made alone or with their policy; what the network node
//! is told to run (enabled policies with rules, in position order); bad
//! input gets Octavia's 4xx and changes nothing; a pool a policy
//! redirects to can't be deleted; a listener's delete takes its policies.
//! (HAProxy routing by path and host is tested by tests/cli/loadbalancer.sh.)

use std::time::{Duration, Instant};

use ferro_test_support::{backends, snapshot, Backend, RawBody, Reply, TestCloud};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn lb(tc: &TestCloud, method: Method, path: &str, token: &str, body: Option<Value>) -> Reply {
    let url = format!("{}/v2/lbaas/{}", tc.cloud.loadbalancer_url, path);
    tc.send(method, &url, Some(token), body.map(RawBody::Json))
        .await
}

async fn wait_active(tc: &TestCloud, token: &str, id: &str) {
    let start = Instant::now();
    loop {
        let r = lb(tc, Method::GET, &format!("loadbalancers/{id}"), token, None).await;
        if r.json["loadbalancer"]["provisioning_status"] == "ACTIVE" {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{}", r.json);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates under `path` and waits for the load balancer to apply it.
async fn make(
    tc: &TestCloud,
    token: &str,
    lb_id: &str,
    path: &str,
    key: &str,
    body: Value,
) -> Value {
    let r = lb(tc, Method::POST, path, token, Some(json!({ key: body }))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{path}: {}", r.json);
    wait_active(tc, token, lb_id).await;
    r.json[key].clone()
}

/// (name, position) of a listener's policies, by position.
async fn positions(tc: &TestCloud, token: &str, listener: &str) -> Vec<(String, i64)> {
    let r = lb(
        tc,
        Method::GET,
        &format!("l7policies?listener_id={listener}&sort=position:asc"),
        token,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    r.json["l7policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["position"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn l7_policies_and_rules_on_every_backend() {
    for backend in backends() {
        l7(backend).await;
    }
}

async fn l7(backend: Backend) {
    let tc = TestCloud::start(backend).await;
    let admin = tc.admin_token().await;
    let (_, token) = tc.project_user(&admin, "web", "member").await;
    let (_, other) = tc.project_user(&admin, "other", "member").await;
    let n = tc
        .network(
            Method::POST,
            "networks",
            &token,
            Some(json!({"network": {"name": "n"}})),
        )
        .await;
    let s = tc
        .network(
            Method::POST,
            "subnets",
            &token,
            Some(json!({"subnet": {"network_id": n.id("network"), "cidr": "10.40.0.0/24", "ip_version": 4}})),
        )
        .await;
    let subnet = s.id("subnet");
    let r = lb(
        &tc,
        Method::POST,
        "loadbalancers",
        &token,
        Some(json!({"loadbalancer": {"vip_subnet_id": subnet}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let lb_id = r.id("loadbalancer");
    wait_active(&tc, &token, &lb_id).await;
    let listener = make(
        &tc,
        &token,
        &lb_id,
        "listeners",
        "listener",
        json!({"loadbalancer_id": lb_id, "protocol": "HTTP", "protocol_port": 80}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tcp = make(
        &tc,
        &token,
        &lb_id,
        "listeners",
        "listener",
        json!({"loadbalancer_id": lb_id, "protocol": "TCP", "protocol_port": 9000}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    make(
        &tc,
        &token,
        &lb_id,
        "pools",
        "pool",
        json!({"name": "apis", "listener_id": listener, "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}),
    )
    .await;
    let v2 = make(
        &tc,
        &token,
        &lb_id,
        "pools",
        "pool",
        json!({"name": "v2", "loadbalancer_id": lb_id, "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // A policy appends; one at position 1 goes first and shifts the rest.
    let r = lb(
        &tc,
        Method::POST,
        "l7policies",
        &token,
        Some(json!({"l7policy": {"name": "to-v2", "listener_id": listener, "action": "REDIRECT_TO_POOL",
                                 "redirect_pool_id": v2, "redirect_url": "http://ignored.example/"}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let p = &r.json["l7policy"];
    assert_eq!(p["provisioning_status"], "PENDING_CREATE");
    assert_eq!(p["position"], 1);
    assert_eq!(p["redirect_pool_id"], v2.as_str());
    assert_eq!(
        p["redirect_url"],
        Value::Null,
        "only the action's own field is kept"
    );
    assert_eq!(p["redirect_http_code"], Value::Null);
    assert_eq!(p["rules"], json!([]));
    let to_v2 = r.id("l7policy");
    wait_active(&tc, &token, &lb_id).await;
    let reject = make(
        &tc,
        &token,
        &lb_id,
        "l7policies",
        "l7policy",
        json!({"name": "reject", "listener_id": listener, "action": "REJECT", "position": 1}),
    )
    .await;
    let moved = make(
        &tc,
        &token,
        &lb_id,
        "l7policies",
        "l7policy",
        json!({"name": "moved", "listener_id": listener, "action": "REDIRECT_TO_URL",
               "redirect_url": "https://new.example/", "position": 99}),
    )
    .await;
    assert_eq!(moved["redirect_http_code"], 302, "redirects default to 302");
    assert_eq!(moved["position"], 3, "a position past the end appends");
    // Octavia's single-call create: a policy with its rules.
    let prefix = make(
        &tc,
        &token,
        &lb_id,
        "l7policies",
        "l7policy",
        json!({"name": "prefix", "listener_id": listener, "action": "REDIRECT_PREFIX",
               "redirect_prefix": "https://www.example", "redirect_http_code": 301,
               "rules": [{"type": "HOST_NAME", "compare_type": "EQUAL_TO", "value": "old.example"}]}),
    )
    .await;
    assert_eq!(prefix["rules"].as_array().unwrap().len(), 1);
    assert_eq!(
        positions(&tc, &token, &listener).await,
        vec![
            ("reject".into(), 1),
            ("to-v2".into(), 2),
            ("moved".into(), 3),
            ("prefix".into(), 4)
        ]
    );

    let r = lb(
        &tc,
        Method::POST,
        &format!("l7policies/{to_v2}/rules"),
        &token,
        Some(json!({"rule": {"type": "PATH", "compare_type": "STARTS_WITH", "value": "/v2"}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["rule"]["type"], "PATH");
    assert_eq!(r.json["rule"]["key"], Value::Null);
    assert_eq!(r.json["rule"]["invert"], false);
    let path_rule = r.id("rule");
    wait_active(&tc, &token, &lb_id).await;
    let header_rule = make(
        &tc,
        &token,
        &lb_id,
        &format!("l7policies/{to_v2}/rules"),
        "rule",
        json!({"type": "HEADER", "compare_type": "EQUAL_TO", "key": "X-Canary", "value": "no", "invert": true}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let shown = lb(
        &tc,
        Method::GET,
        &format!("l7policies/{to_v2}"),
        &token,
        None,
    )
    .await;
    assert_eq!(shown.json["l7policy"]["provisioning_status"], "ACTIVE");
    assert_eq!(shown.json["l7policy"]["operating_status"], "ONLINE");
    assert_eq!(shown.json["l7policy"]["rules"].as_array().unwrap().len(), 2);
    let rules = lb(
        &tc,
        Method::GET,
        &format!("l7policies/{to_v2}/rules"),
        &token,
        None,
    )
    .await;
    assert_eq!(rules.json["rules"].as_array().unwrap().len(), 2);
    let l = lb(
        &tc,
        Method::GET,
        &format!("listeners/{listener}"),
        &token,
        None,
    )
    .await;
    assert_eq!(
        l.json["listener"]["l7policies"].as_array().unwrap().len(),
        4
    );

    // The network node runs the enabled policies that have rules, in order.
    let specs = tc.cloud.balancers.specs().await.unwrap();
    let http = specs[0]
        .listeners
        .iter()
        .find(|l| l.id == listener)
        .unwrap();
    let run: Vec<(&str, usize)> = http
        .l7policies
        .iter()
        .map(|p| (p.action.as_str(), p.rules.len()))
        .collect();
    assert_eq!(run, vec![("REDIRECT_TO_POOL", 2), ("REDIRECT_PREFIX", 1)]);
    assert_eq!(
        http.l7policies[0].redirect_pool.as_deref(),
        Some(v2.as_str())
    );
    assert!(http.l7policies[0].rules[1].invert);
    assert_eq!(http.l7policies[1].redirect_code, Some(301));

    // Moving a policy up shifts those between; a disabled one isn't run.
    let r = lb(
        &tc,
        Method::PUT,
        &format!("l7policies/{}", moved["id"].as_str().unwrap()),
        &token,
        Some(json!({"l7policy": {"position": 1}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["l7policy"]["provisioning_status"], "PENDING_UPDATE");
    wait_active(&tc, &token, &lb_id).await;
    assert_eq!(
        positions(&tc, &token, &listener).await,
        vec![
            ("moved".into(), 1),
            ("reject".into(), 2),
            ("to-v2".into(), 3),
            ("prefix".into(), 4)
        ]
    );
    let r = lb(
        &tc,
        Method::PUT,
        &format!("l7policies/{}", prefix["id"].as_str().unwrap()),
        &token,
        Some(json!({"l7policy": {"admin_state_up": false}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    wait_active(&tc, &token, &lb_id).await;
    let specs = tc.cloud.balancers.specs().await.unwrap();
    let http = specs[0]
        .listeners
        .iter()
        .find(|l| l.id == listener)
        .unwrap();
    assert_eq!(http.l7policies.len(), 1);
    // A rule changes in place.
    let r = lb(
        &tc,
        Method::PUT,
        &format!("l7policies/{to_v2}/rules/{path_rule}"),
        &token,
        Some(json!({"rule": {"compare_type": "REGEX", "value": "^/v[23]/"}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["rule"]["compare_type"], "REGEX");
    wait_active(&tc, &token, &lb_id).await;

    // Refusals change nothing.
    let before = snapshot(&tc.cloud).await;
    let policy = |extra: Value| {
        let mut b = json!({"listener_id": listener, "action": "REJECT"});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        json!({ "l7policy": b })
    };
    let rule = |b: Value| json!({ "rule": b });
    let rules_path = format!("l7policies/{to_v2}/rules");
    let cases: Vec<(&str, Method, String, Value, StatusCode, &str)> = vec![
        (
            "on a TCP listener",
            Method::POST,
            "l7policies".into(),
            policy(json!({"listener_id": tcp})),
            StatusCode::BAD_REQUEST,
            "only allowed on HTTP",
        ),
        (
            "an unknown action",
            Method::POST,
            "l7policies".into(),
            policy(json!({"action": "DROP"})),
            StatusCode::BAD_REQUEST,
            "Value should be one of",
        ),
        (
            "a pool redirect without a pool",
            Method::POST,
            "l7policies".into(),
            policy(json!({"action": "REDIRECT_TO_POOL"})),
            StatusCode::BAD_REQUEST,
            "redirect_pool_id is required",
        ),
        (
            "a pool that doesn't exist",
            Method::POST,
            "l7policies".into(),
            policy(json!({"action": "REDIRECT_TO_POOL", "redirect_pool_id": "nope"})),
            StatusCode::NOT_FOUND,
            "Pool nope not found",
        ),
        (
            "a URL that isn't one",
            Method::POST,
            "l7policies".into(),
            policy(json!({"action": "REDIRECT_TO_URL", "redirect_url": "elsewhere"})),
            StatusCode::BAD_REQUEST,
            "valid URL",
        ),
        (
            "a redirect code Octavia doesn't take",
            Method::POST,
            "l7policies".into(),
            policy(
                json!({"action": "REDIRECT_TO_URL", "redirect_url": "http://a.example/", "redirect_http_code": 300}),
            ),
            StatusCode::BAD_REQUEST,
            "301, 302, 303, 307, 308",
        ),
        (
            "position 0",
            Method::POST,
            "l7policies".into(),
            policy(json!({"position": 0})),
            StatusCode::BAD_REQUEST,
            "greater or equal to 1",
        ),
        (
            "no listener",
            Method::POST,
            "l7policies".into(),
            json!({"l7policy": {"action": "REJECT"}}),
            StatusCode::BAD_REQUEST,
            "listener_id",
        ),
        (
            "a bad rule inside a policy",
            Method::POST,
            "l7policies".into(),
            policy(
                json!({"rules": [{"type": "PATH", "compare_type": "EQUAL_TO", "value": "/a b"}]}),
            ),
            StatusCode::BAD_REQUEST,
            "without whitespace",
        ),
        (
            "an unknown rule type",
            Method::POST,
            rules_path.clone(),
            rule(json!({"type": "METHOD", "compare_type": "EQUAL_TO", "value": "GET"})),
            StatusCode::BAD_REQUEST,
            "Value should be one of",
        ),
        (
            "a header rule without a key",
            Method::POST,
            rules_path.clone(),
            rule(json!({"type": "HEADER", "compare_type": "EQUAL_TO", "value": "x"})),
            StatusCode::BAD_REQUEST,
            "require a key",
        ),
        (
            "a regex that doesn't compile",
            Method::POST,
            rules_path.clone(),
            rule(json!({"type": "PATH", "compare_type": "REGEX", "value": "^/(a"})),
            StatusCode::BAD_REQUEST,
            "not a valid regular expression",
        ),
        (
            "FILE_TYPE with CONTAINS",
            Method::POST,
            rules_path.clone(),
            rule(json!({"type": "FILE_TYPE", "compare_type": "CONTAINS", "value": "jpg"})),
            StatusCode::BAD_REQUEST,
            "EQUAL_TO or REGEX",
        ),
        (
            "a client-certificate rule",
            Method::POST,
            rules_path.clone(),
            rule(json!({"type": "SSL_CONN_HAS_CERT", "compare_type": "EQUAL_TO", "value": "True"})),
            StatusCode::BAD_REQUEST,
            "TERMINATED_HTTPS",
        ),
        (
            "an unknown field in an update",
            Method::PUT,
            format!("l7policies/{to_v2}"),
            json!({"l7policy": {"colour": "red"}}),
            StatusCode::BAD_REQUEST,
            "colour",
        ),
        (
            "a rule of another policy",
            Method::PUT,
            format!(
                "l7policies/{}/rules/{path_rule}",
                reject["id"].as_str().unwrap()
            ),
            rule(json!({"value": "/x"})),
            StatusCode::NOT_FOUND,
            "L7 Rule",
        ),
        (
            "deleting a pool a policy redirects to",
            Method::DELETE,
            format!("pools/{v2}"),
            Value::Null,
            StatusCode::CONFLICT,
            "in use by L7 policy",
        ),
    ];
    for (what, method, path, body, status, says) in cases {
        let body = (!body.is_null()).then_some(body);
        let r = lb(&tc, method, &path, &token, body).await;
        assert_eq!(r.status, status, "{what}: {}", r.json);
        let fault = r.json["faultstring"].as_str().unwrap_or_default();
        assert!(fault.contains(says), "{what}: {fault}");
    }
    // Another project sees none of it.
    let r = lb(
        &tc,
        Method::GET,
        &format!("l7policies/{to_v2}"),
        &other,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.json);
    let r = lb(&tc, Method::GET, "l7policies", &other, None).await;
    assert_eq!(r.json["l7policies"], json!([]));
    let r = lb(
        &tc,
        Method::DELETE,
        &format!("l7policies/{to_v2}/rules/{header_rule}"),
        &other,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        snapshot(&tc.cloud).await,
        before,
        "refused requests changed nothing"
    );

    // Deletes: a rule, a policy (the ones after it move up), then the
    // listener with the rest.
    let r = lb(
        &tc,
        Method::DELETE,
        &format!("l7policies/{to_v2}/rules/{header_rule}"),
        &token,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.json);
    wait_active(&tc, &token, &lb_id).await;
    let r = lb(
        &tc,
        Method::DELETE,
        &format!("l7policies/{}", reject["id"].as_str().unwrap()),
        &token,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.json);
    wait_active(&tc, &token, &lb_id).await;
    assert_eq!(
        positions(&tc, &token, &listener).await,
        vec![
            ("moved".into(), 1),
            ("to-v2".into(), 2),
            ("prefix".into(), 3)
        ]
    );
    let r = lb(
        &tc,
        Method::DELETE,
        &format!("listeners/{listener}"),
        &token,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.json);
    wait_active(&tc, &token, &lb_id).await;
    let r = lb(
        &tc,
        Method::GET,
        &format!("l7policies/{to_v2}"),
        &token,
        None,
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "the listener took its policies"
    );
    let r = lb(
        &tc,
        Method::GET,
        &format!("l7policies/{to_v2}/rules/{path_rule}"),
        &token,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = lb(&tc, Method::DELETE, &format!("pools/{v2}"), &token, None).await;
    assert_eq!(
        r.status,
        StatusCode::NO_CONTENT,
        "no policy holds the pool now: {}",
        r.json
    );
    tc.stop().await;
}
