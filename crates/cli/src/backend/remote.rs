//! The HTTP API of a running `lockbox serve` (`--server`).

use std::path::PathBuf;

use async_trait::async_trait;
use lockbox_codec::pem::{decode_all, decode_input};
use lockbox_engine::recovery::{Candidate, HistoryEntry, RecoveryBlob};
use lockbox_engine::template::Template;
use lockbox_engine::KraStatus;
use lockbox_engine::{
    codes, CrlInfo, EngineError, EngineResult, ErrorKind, Outcome, RequestRecord,
};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::Backend;

/// The HTTP API of a running `lockbox serve`.
pub struct Remote {
    base: String,
    token: Option<String>,
    client: reqwest::Client,
}

fn transport(e: impl std::fmt::Display) -> EngineError {
    EngineError::Config(format!("server unreachable or bad response: {e}"))
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `https://` anywhere; `http://` only to a loopback address (tests, local tools).
fn check_server_url(server: &str) -> EngineResult<()> {
    let bad = |m: String| EngineError::bad_input(codes::E_INVALIDARG, m);
    let Some(rest) = server.strip_prefix("http://") else {
        return if server.starts_with("https://") {
            Ok(())
        } else {
            Err(bad(format!(
                "--server must be an https:// URL, not '{server}'"
            )))
        };
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(bad(format!(
            "plain http:// is only allowed to a loopback address; use https:// for {host}"
        )))
    }
}

impl Remote {
    /// Connects to `server` (https:// or, on loopback, http://), trusting `ca_cert` for TLS.
    pub fn new(
        server: &str,
        ca_cert: Option<&PathBuf>,
        token: Option<String>,
    ) -> EngineResult<Self> {
        check_server_url(server)?;
        // No redirects: a redirect would carry the token and request bodies
        // (passphrases, requests) somewhere the operator did not name.
        let mut builder = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = ca_cert {
            let bytes = std::fs::read(path)
                .map_err(EngineError::io(format!("reading {}", path.display())))?;
            let text = String::from_utf8_lossy(&bytes);
            let mut ders = decode_all(&text, "CERTIFICATE").unwrap_or_default();
            if ders.is_empty() {
                ders.push(decode_input(&bytes)?.der);
            }
            let certs = ders
                .iter()
                .map(|d| reqwest::Certificate::from_der(d).map_err(transport))
                .collect::<EngineResult<Vec<_>>>()?;
            builder = builder.tls_certs_only(certs);
        }
        let client = builder.build().map_err(transport)?;
        Ok(Remote {
            base: server.trim_end_matches('/').to_string(),
            token: token.filter(|t| !t.is_empty()),
            client,
        })
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self
            .client
            .request(method, format!("{}{}", self.base, path));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> EngineResult<reqwest::Response> {
        let resp = rb.send().await.map_err(transport)?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let err = &body["error"];
        let message = err["message"]
            .as_str()
            .unwrap_or("request failed")
            .to_string();
        let code = err["code"]
            .as_u64()
            .map(|c| c as u32)
            .unwrap_or(codes::E_FAIL);
        Err(match err["kind"].as_str().and_then(ErrorKind::parse) {
            Some(ErrorKind::BadInput) => EngineError::BadInput { code, message },
            Some(ErrorKind::Denied) => EngineError::Denied { code, message },
            Some(ErrorKind::NotFound) => EngineError::NotFound(message),
            Some(ErrorKind::Conflict) => EngineError::Conflict(message),
            Some(ErrorKind::Forbidden) => EngineError::Forbidden(message),
            Some(ErrorKind::Unauthorized) => EngineError::Unauthenticated(message),
            Some(ErrorKind::Throttled) => EngineError::Throttled(message),
            Some(ErrorKind::Unavailable) => {
                EngineError::Store(lockbox_engine::StoreError::Unavailable(message))
            }
            _ => EngineError::Config(format!("server error ({status}): {message}")),
        })
    }

    /// Asks the service for an online backup (`POST /api/v1/backup`) and
    /// unpacks the tar stream it answers into `out` (absent or empty).
    pub async fn backup_into(
        &self,
        passphrase: &str,
        out: &std::path::Path,
    ) -> EngineResult<usize> {
        let resp = self
            .send(
                self.req(Method::POST, "/api/v1/backup")
                    .timeout(std::time::Duration::from_secs(3600))
                    .json(&serde_json::json!({ "passphrase": passphrase })),
            )
            .await?;
        // Spool to a temporary file first: the archive may be large.
        let mut spool =
            tempfile::tempfile().map_err(EngineError::io("creating a spool file".to_string()))?;
        let mut resp = resp;
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            std::io::Write::write_all(&mut spool, &chunk)
                .map_err(EngineError::io("spooling the backup".to_string()))?;
        }
        std::io::Seek::rewind(&mut spool)
            .map_err(EngineError::io("spooling the backup".to_string()))?;
        lockbox_engine::backup::unpack(std::io::BufReader::new(spool), out)
    }

    /// GET a JSON document from the API.
    pub async fn get_json(&self, path: &str) -> EngineResult<Value> {
        self.json(self.req(Method::GET, path)).await
    }

    async fn json<T: DeserializeOwned>(&self, rb: reqwest::RequestBuilder) -> EngineResult<T> {
        self.send(rb).await?.json().await.map_err(transport)
    }

    async fn bytes(&self, rb: reqwest::RequestBuilder) -> EngineResult<Vec<u8>> {
        Ok(self
            .send(rb)
            .await?
            .bytes()
            .await
            .map_err(transport)?
            .to_vec())
    }
}

#[async_trait]
impl Backend for Remote {
    async fn ca_cert(&self) -> EngineResult<Vec<u8>> {
        self.bytes(self.req(Method::GET, "/api/v1/ca/certificate?format=der"))
            .await
    }
    async fn ca_cert_of_renewal(&self, n: u32) -> EngineResult<Vec<u8>> {
        let der = self
            .bytes(self.req(
                Method::GET,
                &format!("/certsrv/certnew.cer?ReqID=CACert&Renewal={n}&Enc=bin"),
            ))
            .await?;
        Ok(decode_input(&der)?.der)
    }
    async fn cross_certs(&self) -> EngineResult<Vec<Vec<u8>>> {
        let pem = self
            .bytes(self.req(Method::GET, "/api/v1/ca/cross"))
            .await?;
        Ok(decode_all(&String::from_utf8_lossy(&pem), "CERTIFICATE")?)
    }
    async fn ca_chain(&self) -> EngineResult<Vec<Vec<u8>>> {
        let pem = self
            .bytes(self.req(Method::GET, "/api/v1/ca/chain"))
            .await?;
        Ok(decode_all(&String::from_utf8_lossy(&pem), "CERTIFICATE")?)
    }
    async fn submit(
        &self,
        req: Vec<u8>,
        template: Option<String>,
        on_behalf_of: Option<String>,
    ) -> EngineResult<Outcome> {
        let mut query = Vec::new();
        if let Some(t) = template {
            query.push(format!("template={}", enc(&t)));
        }
        if let Some(p) = on_behalf_of {
            query.push(format!("on_behalf_of={}", enc(&p)));
        }
        let mut path = "/api/v1/requests".to_string();
        if !query.is_empty() {
            path.push('?');
            path.push_str(&query.join("&"));
        }
        self.json(
            self.req(Method::POST, &path)
                .header("content-type", "application/pkcs10")
                .body(req),
        )
        .await
    }
    async fn pending(&self) -> EngineResult<Vec<RequestRecord>> {
        self.json(self.req(Method::GET, "/api/v1/requests?disposition=pending"))
            .await
    }
    async fn issue(&self, id: i64) -> EngineResult<Outcome> {
        self.json(self.req(Method::POST, &format!("/api/v1/requests/{id}/issue")))
            .await
    }
    async fn deny(&self, id: i64) -> EngineResult<Outcome> {
        self.json(self.req(Method::POST, &format!("/api/v1/requests/{id}/deny")))
            .await
    }
    async fn revoke(&self, serial: &str, reason: &str) -> EngineResult<RequestRecord> {
        self.json(
            self.req(
                Method::POST,
                &format!("/api/v1/certificates/{}/revoke", enc(serial)),
            )
            .json(&json!({ "reason": reason })),
        )
        .await
    }
    async fn unrevoke(&self, serial: &str) -> EngineResult<RequestRecord> {
        self.json(self.req(
            Method::POST,
            &format!("/api/v1/certificates/{}/unrevoke", enc(serial)),
        ))
        .await
    }
    async fn publish_delta_crl(&self) -> EngineResult<CrlInfo> {
        let v: Value = self
            .json(self.req(Method::POST, "/api/v1/crl/delta"))
            .await?;
        let mut info: CrlInfo = serde_json::from_value(v.clone()).map_err(transport)?;
        let b64 = v["der_base64"].as_str().unwrap_or_default();
        info.der = decode_input(b64.as_bytes())?.der;
        Ok(info)
    }
    async fn publish_crl_of_key(
        &self,
        delta: bool,
        key_index: Option<u32>,
    ) -> EngineResult<CrlInfo> {
        let path = match (delta, key_index) {
            (true, Some(k)) => format!("/api/v1/crl/delta?key_index={k}"),
            (true, None) => "/api/v1/crl/delta".to_string(),
            (false, Some(k)) => format!("/api/v1/crl?key_index={k}"),
            (false, None) => "/api/v1/crl".to_string(),
        };
        let v: Value = self.json(self.req(Method::POST, &path)).await?;
        let mut info: CrlInfo = serde_json::from_value(v.clone()).map_err(transport)?;
        let b64 = v["der_base64"].as_str().unwrap_or_default();
        info.der = decode_input(b64.as_bytes())?.der;
        Ok(info)
    }
    async fn publish_crl(&self) -> EngineResult<CrlInfo> {
        let v: Value = self.json(self.req(Method::POST, "/api/v1/crl")).await?;
        let mut info: CrlInfo = serde_json::from_value(v.clone()).map_err(transport)?;
        let b64 = v["der_base64"].as_str().unwrap_or_default();
        info.der = decode_input(b64.as_bytes())?.der;
        Ok(info)
    }
    async fn view(&self, restrict: &str, limit: i64) -> EngineResult<Vec<RequestRecord>> {
        self.json(self.req(
            Method::GET,
            &format!("/api/v1/view?restrict={}&limit={limit}", enc(restrict)),
        ))
        .await
    }
    async fn request(&self, id: i64) -> EngineResult<RequestRecord> {
        self.json(self.req(Method::GET, &format!("/api/v1/requests/{id}")))
            .await
    }
    async fn certificate(&self, id: i64) -> EngineResult<Vec<u8>> {
        self.bytes(self.req(
            Method::GET,
            &format!("/api/v1/requests/{id}/certificate?format=der"),
        ))
        .await
    }
    async fn templates(&self) -> EngineResult<Vec<Template>> {
        self.json(self.req(Method::GET, "/api/v1/templates")).await
    }
    async fn template(&self, name: &str) -> EngineResult<Template> {
        self.json(self.req(Method::GET, &format!("/api/v1/templates/{}", enc(name))))
            .await
    }
    async fn duplicate_template(&self, name: &str, new_name: &str) -> EngineResult<Template> {
        self.json(
            self.req(
                Method::POST,
                &format!("/api/v1/templates/{}/duplicate", enc(name)),
            )
            .json(&json!({ "new_name": new_name })),
        )
        .await
    }
    async fn set_template(&self, name: &str, key: &str, value: &str) -> EngineResult<Template> {
        self.json(
            self.req(Method::PATCH, &format!("/api/v1/templates/{}", enc(name)))
                .json(&json!({ "key": key, "value": value })),
        )
        .await
    }
    async fn ca_templates(&self) -> EngineResult<Vec<String>> {
        self.json(self.req(Method::GET, "/api/v1/ca/templates"))
            .await
    }
    async fn set_ca_template(&self, name: &str, enabled: bool) -> EngineResult<String> {
        let method = if enabled { Method::PUT } else { Method::DELETE };
        let v: Value = self
            .json(self.req(method, &format!("/api/v1/ca/templates/{}", enc(name))))
            .await?;
        Ok(v["template"].as_str().unwrap_or(name).to_string())
    }
    async fn exchange_cert(&self) -> EngineResult<Vec<u8>> {
        self.bytes(self.req(Method::GET, "/api/v1/ca/exchange?format=der"))
            .await
    }
    async fn kra_list(&self) -> EngineResult<Vec<KraStatus>> {
        self.json(self.req(Method::GET, "/api/v1/kra")).await
    }
    async fn kra_add(
        &self,
        cert_or_serial: Vec<u8>,
        chain: Option<Vec<u8>>,
        crl: Option<String>,
    ) -> EngineResult<KraStatus> {
        if chain.is_some() || crl.is_some() {
            return Err(EngineError::Config(
                "--chain and --crl work on the local CA home only".into(),
            ));
        }
        self.json(self.req(Method::POST, "/api/v1/kra").body(cert_or_serial))
            .await
    }
    async fn kra_remove(&self, id: &str, force: bool) -> EngineResult<String> {
        let v: Value = self
            .json(self.req(
                Method::DELETE,
                &format!("/api/v1/kra/{}?force={force}", enc(id)),
            ))
            .await?;
        Ok(v["removed"].as_str().unwrap_or_default().to_string())
    }
    async fn kra_required(&self, set: Option<usize>) -> EngineResult<usize> {
        let v: Value = match set {
            Some(n) => {
                self.json(
                    self.req(Method::PUT, "/api/v1/kra/required")
                        .json(&json!({ "required": n })),
                )
                .await?
            }
            None => {
                self.json(self.req(Method::GET, "/api/v1/kra/required"))
                    .await?
            }
        };
        Ok(v["required"].as_u64().unwrap_or(0) as usize)
    }
    async fn key_history(&self, token: &str) -> EngineResult<Vec<HistoryEntry>> {
        self.json(self.req(
            Method::GET,
            &format!("/api/v1/keys/history?token={}", enc(token)),
        ))
        .await
    }
    async fn find_candidates(&self, token: &str) -> EngineResult<Vec<Candidate>> {
        self.json(self.req(Method::GET, &format!("/api/v1/keys?token={}", enc(token))))
            .await
    }
    async fn get_key(&self, token: &str) -> EngineResult<RecoveryBlob> {
        self.json(self.req(
            Method::GET,
            &format!("/api/v1/keys/blob?token={}", enc(token)),
        ))
        .await
    }
    async fn get_key_by_request(&self, id: i64) -> EngineResult<RecoveryBlob> {
        self.json(self.req(Method::GET, &format!("/api/v1/keys/blob?request_id={id}")))
            .await
    }
    async fn candidates_for_message(&self, message: Vec<u8>) -> EngineResult<Vec<Candidate>> {
        self.json(self.req(Method::POST, "/api/v1/keys/p7m").body(message))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::check_server_url;

    #[test]
    fn plain_http_only_on_loopback() {
        for ok in [
            "https://ca.contoso.com:8443",
            "http://127.0.0.1:8080",
            "http://localhost:1/x",
            "http://[::1]:8080",
        ] {
            assert!(check_server_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://ca.contoso.com",
            "http://10.0.0.1:80",
            "http://127.0.0.1.evil.example",
            "ftp://x",
            "ca:8443",
        ] {
            assert!(check_server_url(bad).is_err(), "{bad}");
        }
    }
}
