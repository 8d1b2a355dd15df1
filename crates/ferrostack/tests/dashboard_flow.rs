//! The dashboard's server side over HTTP, on every backend: its pages and
//! their headers, sessions (log in, who am I, switch project, log out),
//! the pass-through with the user's own token and policy, and refusals.

use ferro_test_support::{backends, TestCloud};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

struct Dash<'a> {
    t: &'a TestCloud,
    base: String,
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    json: Value,
}

impl Answer {
    /// The session token set by the answer, if any.
    fn cookie(&self) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix("ferro_token="))
            .and_then(|c| c.split(';').next())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }
}

impl Dash<'_> {
    async fn send(
        &self,
        method: Method,
        path: &str,
        cookie: Option<&str>,
        body: Option<&str>,
        header: bool,
    ) -> Answer {
        let mut rb = self.t.http.request(
            method,
            format!("{}{}", self.base, path.trim_start_matches('/')),
        );
        if header {
            rb = rb.header("X-Ferro-Dashboard", "1");
        }
        if let Some(c) = cookie {
            rb = rb.header("Cookie", format!("other=1; ferro_token={c}"));
        }
        if let Some(b) = body {
            rb = rb
                .header("Content-Type", "application/json")
                .body(b.to_owned());
        }
        let r = rb.send().await.expect("request");
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text }));
        Answer {
            status,
            headers,
            json,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        cookie: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let b = body.map(|b| b.to_string());
        self.send(method, path, cookie, b.as_deref(), true).await
    }

    async fn login(&self, domain: &str, user: &str, password: &str) -> Answer {
        self.call(
            Method::POST,
            "session",
            None,
            Some(json!({"domain": domain, "username": user, "password": password})),
        )
        .await
    }
}

#[tokio::test]
async fn pages_sessions_and_the_pass_through() {
    for backend in backends() {
        let t = TestCloud::start(backend).await;
        let d = Dash {
            t: &t,
            base: t.cloud.dashboard_url.clone(),
        };

        // The page and its scripts, with a strict policy and revalidation.
        let page = d.send(Method::GET, "", None, None, false).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let csp = page.headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        let script = d
            .send(Method::GET, "static/js/app.js", None, None, false)
            .await;
        assert_eq!(script.status, StatusCode::OK);
        assert!(script.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript"));
        let etag = script.headers["etag"].to_str().unwrap().to_owned();
        let again = t
            .http
            .get(format!("{}static/js/app.js", d.base))
            .header("If-None-Match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        let missing = d
            .send(Method::GET, "static/js/nothing.js", None, None, false)
            .await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert_eq!(missing.json["error"]["code"], 404);
        let horizon = t
            .http
            .get(format!("{}horizon", d.base))
            .send()
            .await
            .unwrap();
        assert_eq!(horizon.url().path(), "/", "/horizon leads to the dashboard");

        // Refusals: no header, bad JSON, a wrong password, no cookie.
        let no_header = d
            .send(
                Method::POST,
                "session",
                None,
                Some(r#"{"username":"admin","password":"x"}"#),
                false,
            )
            .await;
        assert_eq!(no_header.status, StatusCode::FORBIDDEN);
        assert!(no_header.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("x-ferro-dashboard"));
        let bad_json = d
            .send(Method::POST, "session", None, Some("{not json"), true)
            .await;
        assert_eq!(bad_json.status, StatusCode::BAD_REQUEST);
        assert!(bad_json.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"));
        let empty = d.login("admin_domain", "admin", "").await;
        assert_eq!(empty.status, StatusCode::BAD_REQUEST);
        let wrong = d.login("admin_domain", "admin", "wrong").await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            wrong.json["error"]["message"],
            "Invalid domain, user name or password."
        );
        assert!(wrong.cookie().is_none());
        let anonymous = d
            .call(Method::GET, "api/compute/v2.1/servers", None, None)
            .await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            d.call(Method::GET, "session", None, None).await.status,
            StatusCode::UNAUTHORIZED
        );

        // The admin logs in as the seed does.
        let admin = d
            .login("admin_domain", "admin", &t.cloud.admin_password)
            .await;
        assert_eq!(admin.status, StatusCode::CREATED, "{}", admin.json);
        let set = admin.headers["set-cookie"].to_str().unwrap().to_owned();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict"),
            "{set}"
        );
        let session = &admin.json["session"];
        assert_eq!(session["admin"], true);
        assert_eq!(session["project"]["name"], "admin");
        assert_eq!(session["user"]["name"], "admin");
        let admin_cookie = admin.cookie().expect("a session cookie");
        let me = d
            .call(Method::GET, "session", Some(&admin_cookie), None)
            .await;
        assert_eq!(me.status, StatusCode::OK);
        assert_eq!(me.json["session"]["project"]["name"], "admin");

        // The pass-through: the service's own answers, microversions included.
        let servers = d
            .call(
                Method::GET,
                "api/compute/v2.1/servers",
                Some(&admin_cookie),
                None,
            )
            .await;
        assert_eq!(servers.status, StatusCode::OK);
        assert_eq!(servers.json, json!({"servers": []}));
        let flavor = d
            .call(
                Method::POST,
                "api/compute/v2.1/flavors",
                Some(&admin_cookie),
                Some(json!({"flavor": {"name": "m1.tiny", "vcpus": 1, "ram": 1024, "disk": 20}})),
            )
            .await;
        assert_eq!(flavor.status, StatusCode::OK, "{}", flavor.json);
        let net = d
            .call(
                Method::POST,
                "api/network/v2.0/networks",
                Some(&admin_cookie),
                Some(json!({"network": {"name": "user1_net"}})),
            )
            .await;
        assert_eq!(net.status, StatusCode::CREATED);
        let bad_cidr = d
            .call(
                Method::POST,
                "api/network/v2.0/subnets?ignored=1",
                Some(&admin_cookie),
                Some(json!({"subnet": {"network_id": net.json["network"]["id"], "cidr": "10.0.0.0/33", "ip_version": 4}})),
            )
            .await;
        assert_eq!(bad_cidr.status, StatusCode::BAD_REQUEST);
        assert!(
            bad_cidr.json["NeutronError"]["message"].is_string(),
            "Neutron's own error body passes through"
        );
        // Paths reach the service as the page encoded them.
        let key = d
            .call(
                Method::POST,
                "api/compute/v2.1/os-keypairs",
                Some(&admin_cookie),
                Some(json!({"keypair": {"name": "my key"}})),
            )
            .await;
        assert_eq!(key.status, StatusCode::OK, "{}", key.json);
        assert!(key.json["keypair"]["private_key"]
            .as_str()
            .unwrap()
            .contains("PRIVATE KEY"));
        let shown = d
            .call(
                Method::GET,
                "api/compute/v2.1/os-keypairs/my%20key",
                Some(&admin_cookie),
                None,
            )
            .await;
        assert_eq!(shown.status, StatusCode::OK, "{}", shown.json);
        assert_eq!(shown.json["keypair"]["name"], "my key");
        let volumes = d
            .call(
                Method::GET,
                "api/volume/v3/volumes",
                Some(&admin_cookie),
                None,
            )
            .await;
        assert_eq!(volumes.status, StatusCode::OK, "{}", volumes.json);
        assert_eq!(volumes.json["volumes"], json!([]));
        let nowhere = d
            .call(
                Method::GET,
                "api/object-store/v1/containers",
                Some(&admin_cookie),
                None,
            )
            .await;
        assert_eq!(nowhere.status, StatusCode::NOT_FOUND);

        // A member of another project: the API's policy, whatever the page sends.
        let admin_token = t.admin_token().await;
        let (p2, _) = t.project_user(&admin_token, "p2", "member").await;
        let member = d.login("Default", "p2-user", "pw").await;
        assert_eq!(member.status, StatusCode::CREATED, "{}", member.json);
        assert_eq!(member.json["session"]["admin"], false);
        assert_eq!(member.json["session"]["project"]["id"], p2.as_str());
        let member_cookie = member.cookie().unwrap();
        let hv = t
            .http
            .get(format!("{}api/compute/v2.1/os-hypervisors", d.base))
            .header("X-Ferro-Dashboard", "1")
            .header("Cookie", format!("ferro_token={member_cookie}"))
            // A token sent by the page is not used: the cookie's is.
            .header("X-Auth-Token", &admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(hv.status(), StatusCode::FORBIDDEN);
        let nets = d
            .call(
                Method::GET,
                "api/network/v2.0/networks",
                Some(&member_cookie),
                None,
            )
            .await;
        assert_eq!(
            nets.json["networks"],
            json!([]),
            "the admin's network is not the member's"
        );

        // Switching project: only to a project the user has a role on.
        let refused = d
            .call(
                Method::PUT,
                "session/project",
                Some(&member_cookie),
                Some(json!({"project_id": "nope"})),
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        let role = t
            .call(Method::GET, "roles?name=member", &admin_token, None)
            .await
            .json["roles"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let admin_user = admin.json["session"]["user"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        t.call(
            Method::PUT,
            &format!("projects/{p2}/users/{admin_user}/roles/{role}"),
            &admin_token,
            None,
        )
        .await;
        let switched = d
            .call(
                Method::PUT,
                "session/project",
                Some(&admin_cookie),
                Some(json!({"project_id": p2})),
            )
            .await;
        assert_eq!(switched.status, StatusCode::OK, "{}", switched.json);
        assert_eq!(switched.json["session"]["project"]["name"], "p2");
        assert_eq!(
            switched.json["session"]["admin"], false,
            "member on p2, not admin"
        );
        let p2_cookie = switched.cookie().unwrap();
        assert_ne!(p2_cookie, admin_cookie);

        // Logging out revokes the token.
        let out = d
            .call(Method::DELETE, "session", Some(&p2_cookie), None)
            .await;
        assert_eq!(out.status, StatusCode::NO_CONTENT);
        assert!(out.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0"));
        let after = d
            .call(
                Method::GET,
                "api/compute/v2.1/servers",
                Some(&p2_cookie),
                None,
            )
            .await;
        assert_eq!(after.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            d.call(Method::GET, "session", Some(&p2_cookie), None)
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
        t.stop().await;
    }
}
