//! Fetching the CRLs of foreign KRA issuers, behind a small trait.
//!
//! A foreign KRA's configured CRL source is an `http://` URL or a file path
//! (`file://` or plain). [`HttpCrlFetcher`] reads URLs with a real HTTP
//! client under the same limits as always: 10 seconds for the whole
//! exchange, at most 8 MiB, status 200 only, no redirects, no proxy. Any
//! failure is `None`, which the KRA status reports as "CRL unavailable".

use std::time::Duration;

use async_trait::async_trait;

/// The whole exchange (connect, request, body) must finish in this time.
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// A CRL larger than this is not read.
pub(crate) const MAX_CRL_BYTES: usize = 8 * 1024 * 1024;

/// Reads a CRL from its configured source.
#[async_trait]
pub(crate) trait CrlFetcher: Send + Sync + std::fmt::Debug {
    /// The CRL bytes (DER or PEM), or `None` when they cannot be had.
    async fn fetch(&self, source: &str) -> Option<Vec<u8>>;
}

/// `http://` through reqwest, anything else from the file system.
#[derive(Debug, Default)]
pub(crate) struct HttpCrlFetcher {
    /// Built on first use and kept: one client for every fetch.
    client: std::sync::OnceLock<reqwest::Client>,
}

/// The client for CRL URLs: plain HTTP only, so it is built with an empty
/// TLS root store (`tls_certs_only`) and never loads the host's CA bundle or
/// platform verifier (a host without one must still read its CRLs, and a
/// fetch must not parse the system store); no idle connections are kept.
fn crl_client() -> Option<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .tls_certs_only(std::iter::empty())
        .pool_max_idle_per_host(0)
        .build()
        .ok()
}

impl HttpCrlFetcher {
    fn client(&self) -> Option<&reqwest::Client> {
        if let Some(c) = self.client.get() {
            return Some(c);
        }
        let built = crl_client()?;
        Some(self.client.get_or_init(|| built))
    }

    async fn fetch_http(&self, url: &str) -> Option<Vec<u8>> {
        let client = self.client()?;
        let mut resp = client.get(url).send().await.ok()?;
        if resp.status() != reqwest::StatusCode::OK {
            return None;
        }
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_CRL_BYTES as u64)
        {
            return None;
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.ok()? {
            if body.len() + chunk.len() > MAX_CRL_BYTES {
                return None;
            }
            body.extend_from_slice(&chunk);
        }
        Some(body)
    }
}

#[async_trait]
impl CrlFetcher for HttpCrlFetcher {
    async fn fetch(&self, source: &str) -> Option<Vec<u8>> {
        if source.starts_with("http://") {
            return self.fetch_http(source).await;
        }
        let path = source.strip_prefix("file://").unwrap_or(source);
        std::fs::read(path).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-shot HTTP server answering `response` to the first request.
    async fn serve_once(response: Vec<u8>) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(&response).await;
        });
        format!("http://{addr}/ca.crl")
    }

    #[tokio::test]
    async fn http_200_bodies_are_read_and_anything_else_is_none() {
        let f = HttpCrlFetcher::default();
        let ok = serve_once(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc".to_vec()).await;
        assert_eq!(f.fetch(&ok).await.as_deref(), Some(&b"abc"[..]));
        let missing = serve_once(b"HTTP/1.0 404 Not Found\r\n\r\n".to_vec()).await;
        assert_eq!(f.fetch(&missing).await, None);
        let moved =
            serve_once(b"HTTP/1.0 302 Found\r\nLocation: http://127.0.0.1:1/\r\n\r\n".to_vec())
                .await;
        assert_eq!(f.fetch(&moved).await, None);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ca.crl");
        std::fs::write(&p, b"crl").unwrap();
        let file_url = format!("file://{}", p.display());
        assert_eq!(f.fetch(&file_url).await.as_deref(), Some(&b"crl"[..]));
        assert_eq!(f.fetch("/nonexistent/ca.crl").await, None);
    }

    #[tokio::test]
    async fn a_host_without_a_ca_bundle_still_reads_http_crls() {
        // The platform verifier would read these and fail on an empty store;
        // the CRL client must not look at them at all.
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, b"").unwrap();
        std::env::set_var("SSL_CERT_FILE", &empty);
        std::env::set_var("SSL_CERT_DIR", dir.path().join("none"));
        let f = HttpCrlFetcher::default();
        let ok = serve_once(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc".to_vec()).await;
        let got = f.fetch(&ok).await;
        std::env::remove_var("SSL_CERT_FILE");
        std::env::remove_var("SSL_CERT_DIR");
        assert_eq!(got.as_deref(), Some(&b"abc"[..]));
    }
}
