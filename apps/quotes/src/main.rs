//! `quotes`: serves the app on `LISTEN_ADDR` (default 0.0.0.0:8080) until
//! SIGTERM or Ctrl-C. Settings come from the environment (see config.rs).
#![forbid(unsafe_code)]

use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = quotes::Config::from_env()?;
    let state = quotes::state(&config)?;
    tokio::spawn(quotes::prepare(state.clone()));
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    tracing::info!(listen = %config.listen, server = %config.server_name, upstream = %config.upstream_url, "serving");
    axum::serve(listener, quotes::api::router(state))
        .with_graceful_shutdown(async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut term) => tokio::select! {
                    _ = term.recv() => {},
                    _ = tokio::signal::ctrl_c() => {},
                },
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        })
        .await?;
    Ok(())
}
