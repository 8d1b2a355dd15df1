//! Serving a router on a listener, in plain HTTP or TLS.
//!
//! With TLS on, each connection is sniffed: a TLS handshake is served over
//! TLS; plain HTTP is accepted only from loopback peers (local tools and
//! health checks), and refused from anywhere else. Shutdown stops accepting
//! at once and gives open connections a moment to finish.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// Serves `app` until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let acceptor = acceptor.clone();
                conns.spawn(async move {
                    let svc = TowerToHyperService::new(app);
                    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match acceptor {
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                        }
                        Some(acceptor) => {
                            let mut first = [0u8; 1];
                            let is_tls = matches!(stream.peek(&mut first).await, Ok(1) if first[0] == 0x16);
                            if is_tls {
                                if let Ok(tls) = acceptor.accept(stream).await {
                                    let _ = builder.serve_connection(TokioIo::new(tls), svc).await;
                                }
                            } else if peer.ip().is_loopback() {
                                let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                            }
                        }
                    }
                });
                // Reap finished connections so the set stays small.
                while conns.try_join_next().is_some() {}
            }
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(Duration::from_secs(2), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        conns.abort_all();
    }
}

/// The certificate a TLS client presented, if any (after rustls verified
/// it against the server's roots), as handlers of the contract see it.
/// Read once per connection: its fingerprint and common name are what the
/// contract's handlers check on every request.
#[derive(Clone, Debug, Default)]
pub struct PeerCert(pub Option<Arc<Peer>>);

/// A client certificate with what is derived from it.
#[derive(Debug)]
pub struct Peer {
    pub der: rustls::pki_types::CertificateDer<'static>,
    /// SHA-256 of the certificate, hex.
    pub fingerprint: String,
    pub common_name: Option<String>,
}

impl Peer {
    pub fn new(der: rustls::pki_types::CertificateDer<'static>) -> Peer {
        Peer {
            fingerprint: crate::contract::pki::fingerprint(&der),
            common_name: crate::contract::pki::common_name(&der),
            der,
        }
    }
}

/// Serves `app` over TLS only (the contract between controllers and
/// hosts), handing each request the client's certificate.
pub async fn serve_tls_with_peer(
    listener: TcpListener,
    app: Router,
    tls: Arc<rustls::ServerConfig>,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let acceptor = acceptor.clone();
                conns.spawn(async move {
                    let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await;
                    let Ok(Ok(tls)) = handshake else { return };
                    let cert = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|c| Arc::new(Peer::new(c.clone().into_owned())));
                    // The certificate goes into each request's extensions
                    // (cheaper than layering the router per connection).
                    let peer = PeerCert(cert);
                    let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                        req.extensions_mut().insert(peer.clone());
                        tower::ServiceExt::oneshot(app.clone(), req)
                    });
                    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let _ = builder.serve_connection(TokioIo::new(tls), svc).await;
                });
                while conns.try_join_next().is_some() {}
            }
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(Duration::from_secs(2), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        conns.abort_all();
    }
}
