//! The quotes app against a real PostgreSQL database (a fresh one on the
//! server named by FERRO_TEST_POSTGRES_URL) and an AwesomeAPI-shaped stand-in
//! served on loopback: register, log in, consult, and every refusal.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::Json;
use serde_json::{json, Value};
use sqlx::Connection;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

struct Upstream {
    up: AtomicBool,
    calls: AtomicUsize,
}

async fn awesome(
    State(u): State<Arc<Upstream>>,
    Query(q): Query<HashMap<String, String>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    u.calls.fetch_add(1, Ordering::SeqCst);
    if !u.up.load(Ordering::SeqCst) {
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    if q.get("token").map(String::as_str) != Some("the-key") {
        return (axum::http::StatusCode::UNAUTHORIZED, "no key").into_response();
    }
    let pair = |code: &str, bid: &str| {
        json!({"code": code, "codein": "BRL", "name": format!("{code}/BRL"), "high": bid, "low": bid,
               "bid": bid, "ask": bid, "timestamp": "1765000000", "create_date": "2026-12-07 12:00:00"})
    };
    Json(json!({"USDBRL": pair("USD", "5.4321"), "EURBRL": pair("EUR", "6.1234")})).into_response()
}

async fn serve(router: axum::Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
    format!("http://{addr}")
}

async fn fresh_database() -> Option<String> {
    let Ok(admin) = std::env::var("FERRO_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("FERRO_TEST_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "FERRO_TEST_REQUIRE_POSTGRES=1 but FERRO_TEST_POSTGRES_URL is not set"
        );
        eprintln!("skipped: FERRO_TEST_POSTGRES_URL is not set");
        return None;
    };
    let name = format!("quotes_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap();
    Some(format!("{base}/{name}"))
}

struct App {
    url: String,
    upstream: Arc<Upstream>,
    http: reqwest::Client,
}

async fn app_with(database_url: String, extra: &[(&str, &str)]) -> App {
    let reachable = !extra.contains(&("unreachable", "database"));
    let upstream = Arc::new(Upstream {
        up: AtomicBool::new(true),
        calls: AtomicUsize::new(0),
    });
    let up_url = serve(
        axum::Router::new()
            .route("/json/last/{pairs}", get(awesome))
            .with_state(upstream.clone()),
    )
    .await;
    let mut env: HashMap<String, String> = [
        ("DATABASE_URL", database_url.as_str()),
        ("SECRET_KEY", "test-secret"),
        ("ALGORITHM", "HS256"),
        ("AWESOME_API_KEY", "the-key"),
        ("AWESOME_API_URL", up_url.as_str()),
        ("SERVER_NAME", "api-test"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    let config = quotes::Config::from_map(&env).unwrap();
    let state = quotes::state(&config).unwrap();
    let prepared = tokio::spawn(quotes::prepare(state.clone()));
    let url = serve(quotes::api::router(state)).await;
    if reachable {
        tokio::time::timeout(std::time::Duration::from_secs(20), prepared)
            .await
            .unwrap()
            .unwrap();
    }
    App {
        url,
        upstream,
        http: reqwest::Client::new(),
    }
}

async fn app() -> Option<App> {
    Some(app_with(fresh_database().await?, &[]).await)
}

impl App {
    async fn post(&self, path: &str, body: Value) -> (u16, Value, reqwest::header::HeaderMap) {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, r.json().await.unwrap_or(Value::Null), headers)
    }
    async fn consult(&self, auth: Option<&str>) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = self.http.get(format!("{}/consultar", self.url));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, r.json().await.unwrap_or(Value::Null), headers)
    }
    async fn register(&self, email: &str) -> String {
        let (s, b, _) = self
            .post(
                "/registrar",
                json!({"nome": "Ana", "email": email, "senha": "correct horse"}),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        b["jwt"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn register_login_and_consult() {
    let Some(app) = app().await else { return };
    let jwt = app.register("ana@example.com").await;
    let (s, b, h) = app.consult(Some(&format!("Bearer {jwt}"))).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["quotes"]["USD-BRL"]["bid"], "5.4321");
    assert_eq!(b["quotes"]["EUR-BRL"]["bid"], "6.1234");
    assert_eq!(b["source"], "upstream");
    assert_eq!(h["x-served-by"], "api-test");
    assert_eq!(h["x-quotes-source"], "upstream");

    let (s, b, h) = app
        .post(
            "/login",
            json!({"email": "ANA@example.com", "password": "correct horse"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(h["x-served-by"], "api-test");
    let (s, _, _) = app
        .consult(Some(&format!("bearer {}", b["jwt"].as_str().unwrap())))
        .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn a_duplicate_email_is_409_and_bad_input_is_refused_without_a_trace() {
    let Some(app) = app().await else { return };
    app.register("bo@example.com").await;
    let (s, b, _) = app
        .post(
            "/registrar",
            json!({"name": "Bo 2", "email": " Bo@Example.com", "password": "another one"}),
        )
        .await;
    assert_eq!(
        (s, b["detail"].as_str().unwrap()),
        (409, "a user with this email already exists")
    );

    for (body, status, detail) in [
        (
            json!({"name": "C", "email": "c@example.com", "password": "short"}),
            422,
            "password must have 8",
        ),
        (
            json!({"name": "C", "email": "not-an-email", "password": "long enough"}),
            422,
            "is not an email address",
        ),
        (
            json!({"name": " ", "email": "c@example.com", "password": "long enough"}),
            422,
            "name must have",
        ),
        (
            json!({"email": "c@example.com", "password": "long enough"}),
            422,
            "missing field",
        ),
        (
            json!({"name": "C", "email": "c@example.com", "password": "long enough", "admin": true}),
            422,
            "unknown field",
        ),
    ] {
        let (s, b, h) = app.post("/registrar", body.clone()).await;
        assert_eq!(s, status, "{body}: {b}");
        assert!(
            b["detail"].as_str().unwrap().contains(detail),
            "{body}: {b}"
        );
        assert_eq!(h["x-served-by"], "api-test");
    }
    let r = app
        .http
        .post(format!("{}/registrar", app.url))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    // None of the refused registrations made an account.
    let (s, _, _) = app
        .post(
            "/login",
            json!({"email": "c@example.com", "password": "long enough"}),
        )
        .await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_401() {
    let Some(app) = app().await else { return };
    app.register("di@example.com").await;
    let (s1, b1, h1) = app
        .post(
            "/login",
            json!({"email": "di@example.com", "password": "wrong password"}),
        )
        .await;
    let (s2, b2, _) = app
        .post(
            "/login",
            json!({"email": "nobody@example.com", "password": "wrong password"}),
        )
        .await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(b1, b2);
    assert_eq!(b1["detail"], "wrong email or password");
    assert_eq!(h1["www-authenticate"], "Bearer");
}

#[tokio::test]
async fn consult_needs_a_valid_unexpired_token() {
    let Some(app) = app().await else { return };
    let (s, b, _) = app.consult(None).await;
    assert_eq!(
        (s, b["detail"].as_str().unwrap()),
        (403, "Not authenticated")
    );
    let (s, _, _) = app.consult(Some("Basic YTpi")).await;
    assert_eq!(s, 403);
    let (s, b, _) = app.consult(Some("Bearer garbage")).await;
    assert_eq!(
        (s, b["detail"].as_str().unwrap()),
        (401, "the token is not valid")
    );

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims =
        json!({"sub": "1", "name": "a", "email": "a@b", "iat": now - 7200, "exp": now - 3600});
    let sign = |secret: &str, claims: &Value| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let (s, b, _) = app
        .consult(Some(&format!("Bearer {}", sign("test-secret", &claims))))
        .await;
    assert_eq!(
        (s, b["detail"].as_str().unwrap()),
        (401, "the token has expired")
    );
    let fresh = json!({"sub": "1", "name": "a", "email": "a@b", "iat": now, "exp": now + 600});
    let (s, _, _) = app
        .consult(Some(&format!("Bearer {}", sign("another-secret", &fresh))))
        .await;
    assert_eq!(s, 401);
    let (s, _, _) = app
        .consult(Some(&format!("Bearer {}", sign("test-secret", &fresh))))
        .await;
    assert_eq!(
        s, 200,
        "a token the app would have signed itself is accepted"
    );
    assert_eq!(
        app.upstream.calls.load(Ordering::SeqCst),
        1,
        "refused requests never reach the upstream"
    );
}

#[tokio::test]
async fn an_unreachable_upstream_is_502_unless_a_fresh_answer_is_cached() {
    let Some(db) = fresh_database().await else {
        return;
    };
    let app = app_with(db, &[]).await;
    let auth = format!("Bearer {}", app.register("ed@example.com").await);
    app.upstream.up.store(false, Ordering::SeqCst);
    let (s, b, _) = app.consult(Some(&auth)).await;
    assert_eq!(s, 502, "{b}");
    assert!(
        b["detail"].as_str().unwrap().contains("answered 503"),
        "{b}"
    );

    app.upstream.up.store(true, Ordering::SeqCst);
    assert_eq!(app.consult(Some(&auth)).await.0, 200);
    app.upstream.up.store(false, Ordering::SeqCst);
    let (s, b, h) = app.consult(Some(&auth)).await;
    assert_eq!((s, b["source"].as_str()), (200, Some("cache")), "{b}");
    assert_eq!(h["x-quotes-source"], "cache");
    assert_eq!(b["quotes"]["USD-BRL"]["bid"], "5.4321");
}

#[tokio::test]
async fn a_stale_cache_is_not_served() {
    let Some(db) = fresh_database().await else {
        return;
    };
    let app = app_with(db, &[("QUOTES_CACHE_SECONDS", "0")]).await;
    let auth = format!("Bearer {}", app.register("fa@example.com").await);
    assert_eq!(app.consult(Some(&auth)).await.0, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    app.upstream.up.store(false, Ordering::SeqCst);
    assert_eq!(app.consult(Some(&auth)).await.0, 502);
}

#[tokio::test]
async fn no_database_is_503_with_a_clear_message() {
    // Port 1 on loopback: nothing listens there.
    let app = app_with(
        "postgresql://cloud:senha@127.0.0.1:1/cloud".into(),
        &[("unreachable", "database")],
    )
    .await;
    let (s, b, _) = app
        .post(
            "/registrar",
            json!({"name": "G", "email": "g@example.com", "password": "long enough"}),
        )
        .await;
    assert_eq!(s, 503, "{b}");
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .contains("database is not reachable"),
        "{b}"
    );
    let r = app
        .http
        .get(format!("{}/health", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(r.headers()["x-served-by"], "api-test");
}
