//! The key manager (Barbican v1) over HTTP, and TERMINATED_HTTPS listeners
//! that take their certificates from it: secrets stored as text or bytes
//! and read back; lists with totals and pages; certificate containers;
//! Barbican's refusals (nothing written); projects can't read each
//! other's; a listener refers to a container or a PEM-bundle secret and
//! the network node is handed the bundle; bad references get Octavia's
//! 400. (HAProxy serving TLS is tested by tests/cli/loadbalancer.sh.)

use std::time::{Duration, Instant};

use ferro_test_support::{backends, snapshot, Backend, RawBody, Reply, TestCloud};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn km(tc: &TestCloud, method: Method, path: &str, token: &str, body: Option<Value>) -> Reply {
    let url = format!("{}/v1/{path}", tc.cloud.keymanager_url);
    tc.send(method, &url, Some(token), body.map(RawBody::Json))
        .await
}

async fn lb(tc: &TestCloud, method: Method, path: &str, token: &str, body: Option<Value>) -> Reply {
    let url = format!("{}/v2/lbaas/{path}", tc.cloud.loadbalancer_url);
    tc.send(method, &url, Some(token), body.map(RawBody::Json))
        .await
}

/// (status, content type, body) of a payload read with `accept`.
async fn payload(
    tc: &TestCloud,
    reference: &str,
    token: &str,
    accept: &str,
) -> (StatusCode, String, Vec<u8>) {
    let r = tc
        .http
        .get(format!("{reference}/payload"))
        .header("X-Auth-Token", token)
        .header("Accept", accept)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, ct, r.bytes().await.unwrap().to_vec())
}

/// A self-signed certificate for `name` and its key, as PEM.
fn pair(name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

async fn store_text(tc: &TestCloud, token: &str, name: &str, text: &str) -> String {
    let r = km(
        tc,
        Method::POST,
        "secrets",
        token,
        Some(json!({"name": name, "payload": text, "payload_content_type": "text/plain"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    r.json["secret_ref"].as_str().unwrap().to_owned()
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

/// A request: method, path under `/v1/`, body.
type Request = (Method, String, Option<Value>);

#[tokio::test]
async fn secrets_containers_and_tls_listeners_on_every_backend() {
    for backend in backends() {
        flow(backend).await;
    }
}

async fn flow(backend: Backend) {
    let tc = TestCloud::start(backend).await;
    let admin = tc.admin_token().await;
    let (_, token) = tc.project_user(&admin, "web", "member").await;
    let (_, other) = tc.project_user(&admin, "other", "member").await;

    // Version discovery, as python-barbicanclient reads it.
    let root = tc
        .send(
            Method::GET,
            &format!("{}/", tc.cloud.keymanager_url),
            None,
            None,
        )
        .await;
    assert_eq!(root.status, StatusCode::MULTIPLE_CHOICES);
    assert_eq!(root.json["versions"]["values"][0]["id"], "v1");
    assert_eq!(root.json["versions"]["values"][0]["max_version"], "1.1");

    // Text and bytes, read back as stored.
    let (cert, key) = pair("www.example");
    let cert_ref = store_text(&tc, &token, "cert", &cert).await;
    let key_ref = store_text(&tc, &token, "key", &key).await;
    let r = km(&tc, Method::GET, "secrets/", &token, None).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "a trailing slash, as python-barbicanclient sends: {}",
        r.json
    );
    let r = km(
        &tc,
        Method::POST,
        "secrets",
        &token,
        Some(json!({"name": "blob", "payload": "AAEC/w==", "payload_content_type": "application/octet-stream",
                     "payload_content_encoding": "base64", "secret_type": "opaque"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let blob_ref = r.json["secret_ref"].as_str().unwrap().to_owned();
    assert_eq!(
        r.headers.get("location").and_then(|v| v.to_str().ok()),
        Some(blob_ref.as_str())
    );
    let meta = tc.send(Method::GET, &blob_ref, Some(&token), None).await;
    assert_eq!(meta.status, StatusCode::OK, "{}", meta.json);
    assert_eq!(meta.json["name"], "blob");
    assert_eq!(meta.json["status"], "ACTIVE");
    assert_eq!(
        meta.json["content_types"]["default"],
        "application/octet-stream"
    );
    assert_eq!(meta.json["secret_ref"], blob_ref.as_str());
    assert!(
        meta.json.get("payload").is_none(),
        "metadata never carries the payload"
    );
    let (s, ct, bytes) = payload(&tc, &blob_ref, &token, "application/octet-stream").await;
    assert_eq!(
        (s, ct.as_str(), bytes),
        (
            StatusCode::OK,
            "application/octet-stream",
            vec![0, 1, 2, 255]
        )
    );
    let (s, _, bytes) = payload(&tc, &cert_ref, &token, "text/plain").await;
    assert_eq!(
        (s, String::from_utf8(bytes).unwrap()),
        (StatusCode::OK, cert.clone())
    );
    let (s, _, _) = payload(&tc, &cert_ref, &token, "*/*").await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = payload(&tc, &blob_ref, &token, "text/plain").await;
    assert_eq!(
        s,
        StatusCode::NOT_ACCEPTABLE,
        "a payload is read as what it is"
    );

    // Lists: the caller's project, a page at a time, with the total.
    let r = km(&tc, Method::GET, "secrets?limit=2", &token, None).await;
    assert_eq!(r.json["total"], 3);
    assert_eq!(r.json["secrets"].as_array().unwrap().len(), 2);
    assert!(r.json["next"].as_str().unwrap().contains("offset=2"));
    let r = km(&tc, Method::GET, "secrets?limit=2&offset=2", &token, None).await;
    assert_eq!(r.json["secrets"].as_array().unwrap().len(), 1);
    assert!(r.json.get("next").is_none());
    let r = km(&tc, Method::GET, "secrets?name=key", &token, None).await;
    assert_eq!(r.json["secrets"][0]["secret_ref"], key_ref.as_str());
    let r = km(&tc, Method::GET, "secrets", &other, None).await;
    assert_eq!(
        (r.json["total"].clone(), r.json["secrets"].clone()),
        (json!(0), json!([]))
    );

    // A certificate container.
    let r = km(
        &tc,
        Method::POST,
        "containers",
        &token,
        Some(json!({"type": "certificate", "name": "www", "secret_refs": [
            {"name": "certificate", "secret_ref": cert_ref}, {"name": "private_key", "secret_ref": key_ref}]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let container_ref = r.json["container_ref"].as_str().unwrap().to_owned();
    let c = tc
        .send(Method::GET, &container_ref, Some(&token), None)
        .await;
    assert_eq!(c.json["type"], "certificate");
    assert_eq!(c.json["secret_refs"].as_array().unwrap().len(), 2);
    let r = km(&tc, Method::GET, "containers", &token, None).await;
    assert_eq!(r.json["total"], 1);

    // Refusals write nothing; another project is refused as Barbican does.
    let before = snapshot(&tc.cloud).await;
    let secret = |b: Value| (Method::POST, "secrets".to_owned(), Some(b));
    let cases: Vec<(&str, Request, StatusCode)> = vec![
        (
            "a payload without its type",
            secret(json!({"payload": "x"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            "an empty payload",
            secret(json!({"payload": "", "payload_content_type": "text/plain"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bytes that aren't base64",
            secret(
                json!({"payload": "%%%", "payload_content_type": "application/octet-stream", "payload_content_encoding": "base64"}),
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bytes without their encoding",
            secret(json!({"payload": "AAEC", "payload_content_type": "application/octet-stream"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            "a type that isn't text or bytes",
            secret(json!({"payload": "x", "payload_content_type": "image/png"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            "an unknown secret type",
            secret(
                json!({"payload": "x", "payload_content_type": "text/plain", "secret_type": "magic"}),
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            "an expiration in the past",
            secret(
                json!({"payload": "x", "payload_content_type": "text/plain", "expiration": "2001-01-01T00:00:00Z"}),
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            "a payload too large",
            secret(json!({"payload": "x".repeat(20_001), "payload_content_type": "text/plain"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            "a certificate container without a certificate",
            (
                Method::POST,
                "containers".into(),
                Some(
                    json!({"type": "certificate", "secret_refs": [{"name": "private_key", "secret_ref": key_ref}]}),
                ),
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            "a certificate container with an odd name",
            (
                Method::POST,
                "containers".into(),
                Some(
                    json!({"type": "certificate", "secret_refs": [{"name": "certificate", "secret_ref": cert_ref}, {"name": "pet", "secret_ref": key_ref}]}),
                ),
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            "a container of a secret that isn't there",
            (
                Method::POST,
                "containers".into(),
                Some(
                    json!({"type": "generic", "secret_refs": [{"name": "a", "secret_ref": "http://x/v1/secrets/nope"}]}),
                ),
            ),
            StatusCode::NOT_FOUND,
        ),
        (
            "an unknown container type",
            (
                Method::POST,
                "containers".into(),
                Some(json!({"type": "bag"})),
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            "a secret that isn't there",
            (
                Method::GET,
                "secrets/5a4e6a4e-0000-4000-8000-000000000000".into(),
                None,
            ),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (what, (m, path, body), want) in cases {
        let r = km(&tc, m, &path, &token, body).await;
        assert_eq!(r.status, want, "{what}: {}", r.json);
        assert_eq!(
            r.json["code"],
            want.as_u16(),
            "{what}: Barbican's error body: {}",
            r.json
        );
        assert!(
            r.json["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{what}"
        );
    }
    let r = tc.send(Method::GET, &cert_ref, Some(&other), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json);
    let (s, _, _) = payload(&tc, &cert_ref, &other, "text/plain").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let r = tc.send(Method::DELETE, &key_ref, Some(&other), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = tc
        .send(Method::GET, &container_ref, Some(&other), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = km(
        &tc,
        Method::POST,
        "containers",
        &other,
        Some(json!({"type": "certificate", "secret_refs": [{"name": "certificate", "secret_ref": cert_ref}]})),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "another project's secret can't be put in a container"
    );
    assert_eq!(
        snapshot(&tc.cloud).await,
        before,
        "refused requests changed nothing"
    );

    // TERMINATED_HTTPS: a listener takes its certificate from a container
    // or from one secret holding the PEM bundle.
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
            Some(json!({"subnet": {"network_id": n.id("network"), "cidr": "10.41.0.0/24", "ip_version": 4}})),
        )
        .await;
    let r = lb(
        &tc,
        Method::POST,
        "loadbalancers",
        &token,
        Some(json!({"loadbalancer": {"vip_subnet_id": s.id("subnet")}})),
    )
    .await;
    let lb_id = r.id("loadbalancer");
    wait_active(&tc, &token, &lb_id).await;
    let r = lb(
        &tc,
        Method::POST,
        "listeners",
        &token,
        Some(json!({"listener": {"loadbalancer_id": lb_id, "protocol": "TERMINATED_HTTPS", "protocol_port": 443,
                                 "default_tls_container_ref": container_ref}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(
        r.json["listener"]["default_tls_container_ref"],
        container_ref.as_str()
    );
    let https = r.id("listener");
    wait_active(&tc, &token, &lb_id).await;
    let r = lb(
        &tc,
        Method::POST,
        "pools",
        &token,
        Some(json!({"pool": {"listener_id": https, "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}})),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "an HTTP pool behind TLS: {}",
        r.json
    );
    wait_active(&tc, &token, &lb_id).await;
    let (cert2, key2) = pair("api.example");
    let bundle_ref = store_text(&tc, &token, "bundle", &format!("{cert2}{key2}")).await;
    let r = lb(
        &tc,
        Method::PUT,
        &format!("listeners/{https}"),
        &token,
        Some(json!({"listener": {"sni_container_refs": [bundle_ref]}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(
        r.json["listener"]["sni_container_refs"],
        json!([bundle_ref])
    );
    wait_active(&tc, &token, &lb_id).await;
    let specs = tc.cloud.balancers.specs().await.unwrap();
    let l = specs[0].listeners.iter().find(|l| l.id == https).unwrap();
    assert_eq!(l.certificates.len(), 2);
    assert!(
        l.certificates[0].starts_with(&cert.trim_end()[..40]),
        "the default first"
    );
    assert!(l.certificates[0].contains("PRIVATE KEY"));
    assert!(l.certificates[1].contains("PRIVATE KEY"));

    // Octavia's 400s for references that give no certificate.
    let before = snapshot(&tc.cloud).await;
    let other_cert = store_text(&tc, &other, "theirs", &format!("{cert2}{key2}")).await;
    let before_other = snapshot(&tc.cloud).await;
    assert_ne!(before, before_other);
    let listener = |port: u16, extra: Value| {
        let mut b = json!({"loadbalancer_id": lb_id, "protocol": "TERMINATED_HTTPS", "protocol_port": port});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        json!({ "listener": b })
    };
    for (what, body, says) in [
        (
            "no certificate",
            listener(8443, json!({})),
            "needs a default_tls_container_ref",
        ),
        (
            "another project's secret",
            listener(8443, json!({"default_tls_container_ref": other_cert})),
            "Could not retrieve certificate",
        ),
        (
            "a certificate without its key",
            listener(8443, json!({"default_tls_container_ref": cert_ref})),
            "no private key",
        ),
        (
            "bytes, not PEM",
            listener(8443, json!({"default_tls_container_ref": blob_ref})),
            "not PEM",
        ),
        (
            "a TCP listener with a certificate",
            json!({"listener": {"loadbalancer_id": lb_id, "protocol": "TCP", "protocol_port": 8443, "default_tls_container_ref": container_ref}}),
            "only allowed on TERMINATED_HTTPS",
        ),
    ] {
        let r = lb(&tc, Method::POST, "listeners", &token, Some(body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.json);
        assert!(
            r.json["faultstring"].as_str().unwrap().contains(says),
            "{what}: {}",
            r.json
        );
    }
    assert_eq!(
        snapshot(&tc.cloud).await,
        before_other,
        "refused listeners changed nothing"
    );

    // The secrets behind a listener deleted: the network node is no
    // longer told to run it (rather than run it without its certificate).
    let r = tc
        .send(Method::DELETE, &container_ref, Some(&token), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = tc.send(Method::GET, &key_ref, Some(&token), None).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "a container's delete leaves its secrets"
    );
    let specs = tc.cloud.balancers.specs().await.unwrap();
    assert!(specs[0].listeners.iter().all(|l| l.id != https));
    let r = tc.send(Method::DELETE, &key_ref, Some(&token), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = tc.send(Method::GET, &key_ref, Some(&token), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    tc.stop().await;
}
