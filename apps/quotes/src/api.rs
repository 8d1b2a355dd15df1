//! The HTTP API: `POST /registrar`, `POST /login`, `GET /consultar`, plus
//! `GET /health` for load balancers and `GET /` naming the endpoints.
//! Errors are FastAPI-shaped (`{"detail": …}`), as the seed's app answered;
//! every response carries `X-Served-By` with the server's name.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::auth::{self, TokenError, Tokens};
use crate::quotes::{Quotes, UpstreamError};
use crate::store::{StoreError, Users};

pub struct AppState {
    pub users: Users,
    pub tokens: Tokens,
    pub quotes: Quotes,
    pub server_name: String,
    /// Set once the schema exists; until then requests that need the database get 503.
    pub ready: AtomicBool,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("a user with this email already exists")]
    Duplicate,
    #[error("wrong email or password")]
    BadCredentials,
    #[error("Not authenticated")]
    NotAuthenticated,
    #[error("{0}")]
    Token(TokenError),
    #[error(transparent)]
    Upstream(UpstreamError),
    #[error("the database is not reachable yet; try again shortly")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate => ApiError::Duplicate,
            StoreError::Unavailable(source) => {
                tracing::warn!(error = %source, "database unavailable");
                ApiError::Unavailable
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Duplicate => StatusCode::CONFLICT,
            ApiError::BadCredentials | ApiError::Token(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotAuthenticated => StatusCode::FORBIDDEN,
            ApiError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut resp = (status, Json(json!({ "detail": self.to_string() }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// `Json` whose rejections are FastAPI-shaped too.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;
    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::Unprocessable(e.body_text())),
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    #[serde(alias = "nome")]
    pub name: String,
    pub email: String,
    #[serde(alias = "senha")]
    pub password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub email: String,
    #[serde(alias = "senha")]
    pub password: String,
}

/// The shortest password the app accepts.
pub const MIN_PASSWORD: usize = 8;

fn normalized_email(raw: &str) -> Result<String, ApiError> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(user, domain)| {
            !user.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !email.contains(char::is_whitespace)
        });
    if valid {
        Ok(email)
    } else {
        Err(ApiError::Unprocessable(format!(
            "{raw:?} is not an email address"
        )))
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    let served_by = HeaderValue::from_str(&state.server_name)
        .unwrap_or_else(|_| HeaderValue::from_static("quotes"));
    Router::new()
        .route("/", get(index))
        .route("/health", get(health))
        .route("/registrar", post(register))
        .route("/login", post(login))
        .route("/consultar", get(consult))
        .fallback(|| async { (StatusCode::NOT_FOUND, Json(json!({"detail": "Not Found"}))) })
        .with_state(state)
        .layer(axum::middleware::map_response(move |mut resp: Response| {
            let served_by = served_by.clone();
            async move {
                resp.headers_mut().insert("x-served-by", served_by);
                resp
            }
        }))
}

fn ready(state: &AppState) -> Result<(), ApiError> {
    if state.ready.load(Ordering::Acquire) {
        Ok(())
    } else {
        Err(ApiError::Unavailable)
    }
}

async fn index(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(json!({
        "service": "quotes",
        "server": state.server_name,
        "endpoints": ["POST /registrar", "POST /login", "GET /consultar", "GET /health"],
    }))
}

async fn health(State(state): State<Arc<AppState>>) -> Result<Json<serde_json::Value>, ApiError> {
    ready(&state)?;
    state.users.ping().await?;
    Ok(Json(json!({"status": "ok", "server": state.server_name})))
}

async fn register(
    State(state): State<Arc<AppState>>,
    Body(r): Body<Registration>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let name = r.name.trim().to_owned();
    if name.is_empty() || name.len() > 200 {
        return Err(ApiError::Unprocessable(
            "name must have 1 to 200 characters".into(),
        ));
    }
    let email = normalized_email(&r.email)?;
    if r.password.chars().count() < MIN_PASSWORD || r.password.len() > 1024 {
        return Err(ApiError::Unprocessable(format!(
            "password must have {MIN_PASSWORD} to 1024 characters"
        )));
    }
    ready(&state)?;
    let hash = auth::hash_password(r.password).await.map_err(|e| {
        tracing::error!(error = %e, "hashing");
        ApiError::Internal
    })?;
    let id = state.users.insert(&name, &email, &hash).await?;
    tracing::info!(user_id = id, "registered");
    let jwt = state
        .tokens
        .issue(id, &name, &email)
        .map_err(|_| ApiError::Internal)?;
    Ok((StatusCode::CREATED, Json(json!({ "jwt": jwt }))))
}

async fn login(
    State(state): State<Arc<AppState>>,
    Body(l): Body<Login>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let email = normalized_email(&l.email).map_err(|_| ApiError::BadCredentials)?;
    ready(&state)?;
    let user = state.users.by_email(&email).await?;
    let ok =
        auth::verify_password(l.password, user.as_ref().map(|u| u.password_hash.clone())).await;
    let user = user.filter(|_| ok).ok_or(ApiError::BadCredentials)?;
    let jwt = state
        .tokens
        .issue(user.id, &user.name, &user.email)
        .map_err(|_| ApiError::Internal)?;
    Ok(Json(json!({ "jwt": jwt })))
}

async fn consult(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(ApiError::NotAuthenticated)?;
    let token = match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            token.trim()
        }
        _ => return Err(ApiError::NotAuthenticated),
    };
    state.tokens.verify(token).map_err(ApiError::Token)?;
    let answer = state.quotes.current().await.map_err(|e| {
        tracing::warn!(error = %e, "quotes");
        ApiError::Upstream(e)
    })?;
    let mut resp = Json(&answer).into_response();
    resp.headers_mut()
        .insert("x-quotes-source", HeaderValue::from_static(answer.source));
    Ok(resp)
}
