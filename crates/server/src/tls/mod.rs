//! TLS termination with rustls (aws-lc-rs provider), and the connection loop
//! (TLS or plain HTTP) with its timeouts and connection limits.
//!
//! `mod.rs`: the TLS identity and client certificates; `serve.rs`: the
//! accept loop and connection limits; `progress.rs`: per-connection progress
//! and body deadlines.

mod progress;
mod serve;

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

pub use progress::BodyTimeout;
pub use serve::{serve_connections, serve_tls, Limits};

pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The TLS client certificate a connection presented (verified against the CA).
#[derive(Clone, Debug)]
pub struct ClientCertificate(pub Vec<u8>);

/// Builds a TLS acceptor from a PEM chain and a PEM PKCS#8 key. Client
/// certificates issued by the CA (`client_roots`) are requested but optional;
/// mapped ones authenticate their principal.
pub fn acceptor(
    chain_pem: &str,
    key_pem: &str,
    client_roots: &[Vec<u8>],
) -> anyhow::Result<TlsAcceptor> {
    let chain: Vec<CertificateDer<'static>> =
        lockbox_codec::pem::decode_all(chain_pem, "CERTIFICATE")?
            .into_iter()
            .map(CertificateDer::from)
            .collect();
    let key_der = lockbox_codec::pem::decode_all(key_pem, "PRIVATE KEY")?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("TLS key file holds no PRIVATE KEY"))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for r in client_roots {
        roots.add(CertificateDer::from(r.clone()))?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Wraps `app` so every request carries the connection's verified client
/// certificate thumbprint in [`crate::auth::CLIENT_CERT_HEADER`], and never a
/// value the client supplied itself.
pub fn with_client_certificate(app: axum::Router, thumbprint: Option<String>) -> axum::Router {
    let inner = app.map_request(move |mut req: axum::extract::Request| {
        req.headers_mut().remove(crate::auth::CLIENT_CERT_HEADER);
        if let Some(v) = thumbprint
            .as_deref()
            .and_then(|t| axum::http::HeaderValue::from_str(t).ok())
        {
            req.headers_mut().insert(crate::auth::CLIENT_CERT_HEADER, v);
        }
        req
    });
    axum::Router::new().fallback_service(inner)
}
