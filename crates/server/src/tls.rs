//! TLS termination with rustls (aws-lc-rs provider).

use std::future::Future;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

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
/// certificate thumbprint in [`crate::api::CLIENT_CERT_HEADER`], and never a
/// value the client supplied itself.
pub fn with_client_certificate(app: axum::Router, thumbprint: Option<String>) -> axum::Router {
    use tower::ServiceExt;
    let inner = app.map_request(move |mut req: axum::extract::Request| {
        req.headers_mut().remove(crate::api::CLIENT_CERT_HEADER);
        if let Some(v) = thumbprint
            .as_deref()
            .and_then(|t| axum::http::HeaderValue::from_str(t).ok())
        {
            req.headers_mut().insert(crate::api::CLIENT_CERT_HEADER, v);
        }
        req
    });
    axum::Router::new().fallback_service(inner)
}

/// Accepts TLS connections and serves `app` on each until `shutdown` completes.
pub async fn serve_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: axum::Router,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(
                std::time::Duration::from_secs(10),
                acceptor.accept(tcp),
            )
            .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let client_cert = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| ClientCertificate(c.as_ref().to_vec()));
            tracing::debug!(
                client_certificate = client_cert.is_some(),
                "TLS connection accepted"
            );
            let thumb = client_cert.map(|c| hex::encode(lockbox_crypto::digest::sha1(&c.0)));
            let service = TowerToHyperService::new(
                with_client_certificate(app, thumb)
                    .layer(axum::Extension(axum::extract::ConnectInfo(peer))),
            );
            if let Err(e) = Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}
