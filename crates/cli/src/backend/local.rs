//! The engine in this process, acting as the local CA administrator (`--home`).

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use lockbox_engine::recovery::{Candidate, HistoryEntry, RecoveryBlob};
use lockbox_engine::template::Template;
use lockbox_engine::Actor;
use lockbox_engine::KraStatus;
use lockbox_engine::{Ca, CrlInfo, EngineResult, Outcome, RequestRecord, SubmitOptions};

use super::Backend;

/// The name local actions are recorded under: `LOCAL\$USER`.
pub fn local_who() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "administrator".into());
    format!("LOCAL\\{user}")
}

/// The engine in this process, acting as the local CA administrator.
pub struct Local {
    /// The CA.
    pub ca: Arc<Ca>,
    /// Requester/officer name recorded for local actions.
    pub who: String,
    /// The local administrator acting on the CA home.
    pub actor: Actor,
}

impl Local {
    /// Opens the CA in `home`.
    pub async fn open(home: &Path) -> EngineResult<Self> {
        let who = local_who();
        Ok(Local {
            ca: Arc::new(Ca::open(home).await?),
            actor: Actor::local_admin(&who),
            who,
        })
    }
}

#[async_trait]
impl Backend for Local {
    async fn ca_cert(&self) -> EngineResult<Vec<u8>> {
        self.ca.ca_certificate_der()
    }
    async fn ca_cert_of_renewal(&self, n: u32) -> EngineResult<Vec<u8>> {
        self.ca.ca_certificate_of_renewal(n).ok_or_else(|| {
            lockbox_engine::EngineError::NotFound(format!(
                "no CA certificate with renewal index {n}"
            ))
        })
    }
    async fn cross_certs(&self) -> EngineResult<Vec<Vec<u8>>> {
        self.ca.cross_certificates()
    }
    async fn ca_chain(&self) -> EngineResult<Vec<Vec<u8>>> {
        self.ca.chain_der()
    }
    async fn submit(
        &self,
        req: Vec<u8>,
        template: Option<String>,
        on_behalf_of: Option<String>,
    ) -> EngineResult<Outcome> {
        let opts = SubmitOptions {
            template,
            requester: self.who.clone(),
            attributes: vec![],
            actor: Some(self.actor.clone()),
            on_behalf_of,
            renewing: None,
        };
        let mut o = self.ca.submit(&req, &opts).await?;
        if o.body_part_id.is_some() {
            let resp = self.ca.cmc_response(&o).await?;
            o.cmc_response = Some(crate::output::base64(&resp));
        }
        Ok(o)
    }
    async fn pending(&self) -> EngineResult<Vec<RequestRecord>> {
        self.ca.pending(&self.actor).await
    }
    async fn issue(&self, id: i64) -> EngineResult<Outcome> {
        self.ca.issue(id, &self.actor).await
    }
    async fn deny(&self, id: i64) -> EngineResult<Outcome> {
        self.ca.deny(id, &self.actor).await
    }
    async fn revoke(&self, serial: &str, reason: &str) -> EngineResult<RequestRecord> {
        let r = lockbox_engine::crl::parse_reason(reason)?;
        self.ca.revoke(serial, r, &self.actor).await
    }
    async fn publish_crl(&self) -> EngineResult<CrlInfo> {
        self.ca.publish_crl(&self.actor).await
    }
    async fn unrevoke(&self, serial: &str) -> EngineResult<RequestRecord> {
        self.ca.unrevoke(serial, &self.actor).await
    }
    async fn publish_delta_crl(&self) -> EngineResult<CrlInfo> {
        self.ca.publish_delta_crl(&self.actor).await
    }
    async fn publish_crl_of_key(
        &self,
        delta: bool,
        key_index: Option<u32>,
    ) -> EngineResult<CrlInfo> {
        self.ca
            .publish_crl_of_key(&self.actor, delta, key_index)
            .await
    }
    async fn view(&self, restrict: &str, limit: i64) -> EngineResult<Vec<RequestRecord>> {
        self.ca.view(&self.actor, restrict, limit).await
    }
    async fn request(&self, id: i64) -> EngineResult<RequestRecord> {
        self.ca.request(id).await
    }
    async fn certificate(&self, id: i64) -> EngineResult<Vec<u8>> {
        self.ca.certificate(id).await
    }
    async fn templates(&self) -> EngineResult<Vec<Template>> {
        self.ca.templates().await
    }
    async fn template(&self, name: &str) -> EngineResult<Template> {
        self.ca.template(name).await
    }
    async fn duplicate_template(&self, name: &str, new_name: &str) -> EngineResult<Template> {
        self.ca
            .duplicate_template(&self.actor, name, new_name)
            .await
    }
    async fn set_template(&self, name: &str, key: &str, value: &str) -> EngineResult<Template> {
        self.ca.set_template(&self.actor, name, key, value).await
    }
    async fn ca_templates(&self) -> EngineResult<Vec<String>> {
        self.ca.ca_templates().await
    }
    async fn set_ca_template(&self, name: &str, enabled: bool) -> EngineResult<String> {
        self.ca.set_ca_template(&self.actor, name, enabled).await
    }
    async fn exchange_cert(&self) -> EngineResult<Vec<u8>> {
        self.ca.current_exchange_certificate().await
    }
    async fn kra_list(&self) -> EngineResult<Vec<KraStatus>> {
        self.ca.kra_list(&self.actor).await
    }
    async fn kra_add(
        &self,
        cert_or_serial: Vec<u8>,
        chain: Option<Vec<u8>>,
        crl: Option<String>,
    ) -> EngineResult<KraStatus> {
        self.ca
            .kra_add(&self.actor, &cert_or_serial, chain, crl)
            .await
    }
    async fn kra_remove(&self, id: &str, force: bool) -> EngineResult<String> {
        self.ca.kra_remove(&self.actor, id, force).await
    }
    async fn kra_required(&self, set: Option<usize>) -> EngineResult<usize> {
        if let Some(n) = set {
            self.ca.set_kra_required(&self.actor, n).await?;
        }
        self.ca.kra_required().await
    }
    async fn key_history(&self, token: &str) -> EngineResult<Vec<HistoryEntry>> {
        self.ca.key_history(&self.actor, token).await
    }
    async fn find_candidates(&self, token: &str) -> EngineResult<Vec<Candidate>> {
        self.ca.find_candidates(&self.actor, token).await
    }
    async fn get_key(&self, token: &str) -> EngineResult<RecoveryBlob> {
        self.ca.get_key(&self.actor, token).await
    }
    async fn get_key_by_request(&self, id: i64) -> EngineResult<RecoveryBlob> {
        self.ca.get_key_by_request(&self.actor, id).await
    }
    async fn candidates_for_message(&self, message: Vec<u8>) -> EngineResult<Vec<Candidate>> {
        self.ca.candidates_for_message(&self.actor, &message).await
    }
}
