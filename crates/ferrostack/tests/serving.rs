//! Serving: discovery documents, TLS with the generated CA (and plain HTTP
//! on loopback next to it), request ids, metrics, and the binary's own
//! start/stop behaviour.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferro_test_support::{Backend, TestCloud};
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn discovery_documents_point_at_the_public_url() {
    let tc = TestCloud::start(Backend::Sqlite).await;
    let v3 = tc.send(Method::GET, tc.identity(), None, None).await;
    assert_eq!(v3.status, StatusCode::OK);
    assert_eq!(
        v3.json["version"]["links"][0]["href"],
        format!("{}/", tc.identity())
    );
    assert_eq!(v3.json["version"]["status"], "stable");
    let root = tc.identity().trim_end_matches("/v3").to_owned() + "/";
    let r = tc.send(Method::GET, &root, None, None).await;
    assert_eq!(r.status, StatusCode::MULTIPLE_CHOICES);
    assert_eq!(r.json["versions"]["values"][0]["id"], "v3.14");
    tc.stop().await;
}

#[tokio::test]
async fn tls_serves_https_with_the_generated_ca_and_plain_http_on_loopback() {
    let tc = TestCloud::start_with(Backend::Sqlite, true).await;
    assert!(tc.identity().starts_with("https://"), "{}", tc.identity());
    let ca = tc.cloud.ca_cert.clone().expect("a CA");
    let openrc = std::fs::read_to_string(&tc.cloud.openrc).unwrap();
    assert!(openrc.contains(&format!("export OS_CACERT={}", ca.display())));
    assert!(openrc.contains("export OS_AUTH_PROTOCOL=https"));
    // The client trusts only the generated CA: this succeeding proves the chain.
    let admin = tc.admin_token().await;
    let r = tc.call(Method::GET, "users", &admin, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let catalog = tc.call(Method::GET, "auth/catalog", &admin, None).await;
    let url = catalog.json["catalog"][0]["endpoints"][0]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(url.starts_with("https://"), "catalog URLs use https: {url}");
    // Plain HTTP on the same port, from loopback.
    let plain = tc.identity().replacen("https://", "http://", 1);
    let r = reqwest::get(&plain).await.expect("plain http on loopback");
    assert_eq!(r.status(), StatusCode::OK);
    // A client that doesn't trust the CA is refused.
    let untrusting = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    assert!(untrusting.get(tc.identity()).send().await.is_err());
    tc.stop().await;
}

#[tokio::test]
async fn responses_carry_request_ids_and_metrics_count_them() {
    let tc = TestCloud::start(Backend::Sqlite).await;
    let admin = tc.admin_token().await;
    let r = tc.call(Method::GET, "users", &admin, None).await;
    let id = r
        .headers
        .get("x-openstack-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap()
        .to_owned();
    assert!(id.starts_with("req-") && id.len() == 40, "{id}");
    let bad = tc.call(Method::GET, "users/nope", &admin, None).await;
    assert!(bad.headers.contains_key("x-openstack-request-id"));
    let base = tc.identity().trim_end_matches("/v3").to_owned();
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"ferrostack_http_requests_total{service="identity",method="GET",route="/v3/users",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"route="/v3/users/{id}",status="404"} 1"#),
        "{text}"
    );
    assert!(text.contains("ferrostack_http_request_duration_seconds_bucket"));
    tc.stop().await;
}

/// The real binary: `up` writes openrc once the API answers, keeps the
/// admin password across restarts, and exits cleanly on SIGTERM.
#[test]
fn binary_starts_writes_openrc_and_stops_on_sigterm() {
    let bin = env!("CARGO_BIN_EXE_ferrostack");
    let dir = std::env::temp_dir().join(format!("ferro-bin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut passwords = Vec::new();
    for _ in 0..2 {
        let mut child = Command::new(bin)
            .args([
                "up",
                "--state-dir",
                dir.to_str().unwrap(),
                "--ephemeral-ports",
                "--bcrypt-cost",
                "4",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let openrc = dir.join("openrc");
        let start = Instant::now();
        while !openrc.exists() && start.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let text = std::fs::read_to_string(&openrc).expect("openrc written");
        let pw = text
            .lines()
            .find_map(|l| l.strip_prefix("export OS_PASSWORD="))
            .unwrap()
            .to_owned();
        passwords.push(pw);
        let _ = std::fs::remove_file(&openrc);
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "ferrostack did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "clean exit: {status:?}");
    }
    assert_eq!(
        passwords[0], passwords[1],
        "the admin password survives a restart"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
