//! The quotes app of the seed's deployment: users register and log in
//! (argon2-hashed passwords in PostgreSQL, JWTs signed with `SECRET_KEY`) and
//! read current USD→BRL and EUR→BRL quotes from an AwesomeAPI-shaped service.
//! See apps/quotes/README.md.
#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod config;
pub mod quotes;
pub mod store;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use config::Config;

/// The app's shared state from its settings; the schema is made by [`prepare`].
pub fn state(config: &Config) -> anyhow::Result<Arc<api::AppState>> {
    Ok(Arc::new(api::AppState {
        users: store::Users::connect_lazy(&config.database_url)?,
        tokens: auth::Tokens::new(&config.secret_key, config.algorithm, config.token_lifetime),
        quotes: quotes::Quotes::new(
            &config.upstream_url,
            config.upstream_key.clone(),
            config.upstream_timeout,
            config.cache_fresh_for,
        ),
        server_name: config.server_name.clone(),
        ready: AtomicBool::new(false),
    }))
}

/// Makes the schema, retrying every two seconds until the database answers
/// (it may be a server that is still booting), then marks the app ready.
pub async fn prepare(state: Arc<api::AppState>) {
    let mut attempt = 0u32;
    loop {
        match state.users.migrate().await {
            Ok(()) => {
                state.ready.store(true, Ordering::Release);
                tracing::info!("database ready");
                return;
            }
            Err(e) => {
                attempt += 1;
                if attempt == 1 || attempt.is_multiple_of(15) {
                    tracing::warn!(attempt, error = %e, source = ?std::error::Error::source(&e).map(|s| s.to_string()), "waiting for the database");
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}
