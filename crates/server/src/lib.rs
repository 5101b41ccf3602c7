//! The Lockbox HTTP(S) service: a REST API over the engine.
//!
//! Every handler is a thin translation between HTTP and a [`lockbox_engine::Ca`]
//! method; policy lives in the engine, which authorizes every caller (API
//! tokens, the administrator token, Basic passwords or mapped TLS client
//! certificates, resolved to principals and roles).

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod api;
mod auth;
mod certsrv;
mod console;
mod error;
mod est;
mod http;
mod ocsp;
mod openapi;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use lockbox_engine::Ca;

pub use auth::{CLIENT_CERT_HEADER, PEER_ADDRESS_HEADER};
pub use error::ApiError;
pub use http::MAX_BODY;
pub use tls::{
    acceptor, serve_connections, serve_tls, with_client_certificate, BodyTimeout,
    ClientCertificate, Limits,
};

/// Builds the router for a connection without a verified client certificate:
/// any client-supplied certificate header is removed.
pub fn router(ca: Arc<Ca>) -> Router {
    with_client_certificate(app(ca), None)
}

/// The application: REST, certsrv and console routes under the shared
/// layers, trusting [`CLIENT_CERT_HEADER`] (wrap with
/// [`with_client_certificate`] before serving).
pub(crate) fn app(ca: Arc<Ca>) -> Router {
    api::routes()
        .merge(certsrv::routes())
        .merge(console::routes())
        .merge(ocsp::routes())
        .merge(est::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::map_response(http::security_headers))
        .layer(axum::middleware::from_fn(http::refuse_cross_origin_writes))
        .layer(axum::middleware::map_request(http::host_from_authority))
        .layer(axum::middleware::map_request(auth::peer_address))
        .with_state(ca)
}

/// How to serve.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Plain HTTP instead of HTTPS (loopback tests only).
    pub plain_http: bool,
    /// Host names and addresses to put in the TLS certificate.
    pub hosts: Vec<String>,
    /// A second, plain-HTTP listener (any address) answering only what
    /// relying parties fetch without credentials: OCSP, CRLs, the CA
    /// certificate ([`public_app`]).
    pub public_http: Option<SocketAddr>,
}

/// The routes relying parties fetch over plain HTTP (RFC 5019 and RFC 5280
/// expect `http://` OCSP, CRL and AIA URLs): nothing that authenticates.
pub fn public_app(ca: Arc<Ca>) -> Router {
    let public = api::public_routes().merge(ocsp::routes());
    with_client_certificate(
        public
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .layer(axum::middleware::map_response(http::security_headers))
            .with_state(ca),
        None,
    )
}

/// Runs the service until SIGINT/SIGTERM, with the connection limits and
/// timeouts of the configuration's `[server.limits]`.
pub async fn serve(ca: Arc<Ca>, opts: ServeOptions) -> anyhow::Result<()> {
    let app = app(ca.clone());
    // Timeouts and the connection limit come from `[server.limits]`.
    let limits = tls::Limits::from(&ca.config().server.limits);
    let listener = tokio::net::TcpListener::bind(opts.listen).await?;
    let local = listener.local_addr()?;
    if let Some(addr) = opts.public_http {
        let public = tokio::net::TcpListener::bind(addr).await?;
        println!(
            "lockbox: OCSP, CRLs and the CA certificate on http://{}",
            public.local_addr()?
        );
        let (app, limits) = (public_app(ca.clone()), limits.clone());
        tokio::spawn(async move {
            if let Err(e) =
                tls::serve_connections(public, None, app, limits, shutdown_signal()).await
            {
                tracing::error!(error = %e, "public HTTP listener stopped");
            }
        });
    }
    if opts.plain_http {
        if !local.ip().is_loopback() {
            anyhow::bail!("--http is only allowed on a loopback address; use HTTPS elsewhere");
        }
        println!("lockbox: listening on http://{local}");
        return tls::serve_connections(listener, None, app, limits, shutdown_signal()).await;
    }
    let (chain_pem, key_pem) = ca.server_tls_identity(&opts.hosts).await?;
    let acceptor = tls::acceptor(&chain_pem, &key_pem, &ca.chain_der()?)?;
    println!("lockbox: listening on https://{local}");
    tls::serve_connections(listener, Some(acceptor), app, limits, shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
