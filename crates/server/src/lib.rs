//! The Lockbox HTTP(S) service: a REST API over the engine.
//!
//! Every handler is a thin translation between HTTP and a [`lockbox_engine::Ca`]
//! method; policy lives in the engine. Officer operations require the
//! administrator token (`Authorization: Bearer ...`) until principals and roles
//! arrive.

pub mod api;
pub mod certsrv;
pub mod console;
mod openapi;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use lockbox_engine::Ca;

pub use api::router;

/// How to serve.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Plain HTTP instead of HTTPS (loopback tests only).
    pub plain_http: bool,
    /// Host names and addresses to put in the TLS certificate.
    pub hosts: Vec<String>,
}

/// Runs the service until SIGINT/SIGTERM.
pub async fn serve(ca: Arc<Ca>, opts: ServeOptions) -> anyhow::Result<()> {
    let app = api::routes(ca.clone());
    let listener = tokio::net::TcpListener::bind(opts.listen).await?;
    let local = listener.local_addr()?;
    if opts.plain_http {
        if !local.ip().is_loopback() {
            anyhow::bail!("--http is only allowed on a loopback address; use HTTPS elsewhere");
        }
        println!("lockbox: listening on http://{local}");
        // Plain HTTP carries no client certificate: strip any such header a client sends.
        let app = tls::with_client_certificate(app, None);
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown_signal())
        .await?;
        return Ok(());
    }
    let (chain_pem, key_pem) = ca.server_tls_identity(&opts.hosts).await?;
    let acceptor = tls::acceptor(&chain_pem, &key_pem, &ca.chain_der()?)?;
    println!("lockbox: listening on https://{local}");
    tls::serve_tls(listener, acceptor, app, shutdown_signal()).await
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
