//! The facade over archival, KRAs, recovery, import, export and backup.

use std::path::Path;

use lockbox_crypto::PrivateKey;

use crate::actor::Actor;
use crate::archival::KraStatus;
use crate::backup::{BackupOptions, Manifest};
use crate::error::EngineResult;
use crate::export::{Export, Selection};
use crate::import::{ImportItem, ImportOptions};
use crate::recovery::{Candidate, RecoveryBlob};

use super::Ca;

impl Ca {
    /// Exchange certificates still valid whose private key this CA holds
    /// (newest first), as DER. A home restored from a backup without exchange
    /// keys has the old certificates but not their keys: they are skipped, and
    /// a new exchange certificate is made when one is next needed.
    pub async fn exchange_certificates(&self) -> EngineResult<Vec<Vec<u8>>> {
        crate::archival::exchange::exchange_certificates(&self.core).await
    }

    /// The exchange certificate clients should encrypt to, creating one when
    /// none is valid or the newest is inside its overlap window.
    pub async fn current_exchange_certificate(&self) -> EngineResult<Vec<u8>> {
        crate::archival::exchange::current_exchange_certificate(&self.core).await
    }

    /// The private key of the current exchange certificate (or of the one
    /// with `serial`) as PEM, for offline diagnosis; the local administrator
    /// only, audited.
    pub async fn export_exchange_key(
        &self,
        actor: &Actor,
        serial: Option<&str>,
    ) -> EngineResult<zeroize::Zeroizing<String>> {
        crate::archival::exchange_keys::export(&self.core, actor, serial).await
    }

    /// The configured KRA certificates with their status.
    pub async fn kra_list(&self, actor: &Actor) -> EngineResult<Vec<KraStatus>> {
        crate::archival::kra::kra_list(&self.core, actor).await
    }

    /// Validates the KRA configuration and records the seed's events: 84/85
    /// per unusable certificate, 82 when fewer than configured verify, 98 when
    /// fewer than required (archival stops), 127 when a certificate expires soon.
    /// Runs when the service starts and whenever the KRA configuration changes.
    pub async fn validate_kras(&self) -> EngineResult<(usize, usize)> {
        crate::archival::kra::validate_kras(&self.core).await
    }

    /// Adds a KRA certificate, given as PEM/DER or as the serial number of a
    /// certificate this CA issued. Certificates of other CAs need their chain
    /// (PEM, up to the root) and a CRL source (file path or http URL).
    pub async fn kra_add(
        &self,
        actor: &Actor,
        cert_or_serial: &[u8],
        chain_pem: Option<Vec<u8>>,
        crl_source: Option<String>,
    ) -> EngineResult<KraStatus> {
        crate::archival::kra_admin::kra_add(
            &self.core,
            actor,
            cert_or_serial,
            chain_pem,
            crl_source,
        )
        .await
    }

    /// Removes a KRA certificate by thumbprint or serial number. Refused
    /// (0x8007139F, listing them) when it is the last configured agent able to
    /// open some archived keys, unless `force`.
    pub async fn kra_remove(&self, actor: &Actor, id: &str, force: bool) -> EngineResult<String> {
        crate::archival::kra_admin::kra_remove(&self.core, actor, id, force).await
    }

    /// How many KRAs each archived key is encrypted to (0 = archival off).
    pub async fn kra_required(&self) -> EngineResult<usize> {
        crate::archival::kra::kra_required(&self.core).await
    }

    /// Sets how many KRAs each key is encrypted to; cannot exceed the configured count.
    pub async fn set_kra_required(&self, actor: &Actor, n: usize) -> EngineResult<()> {
        crate::archival::kra_admin::set_kra_required(&self.core, actor, n).await
    }

    /// Sets how many days before a KRA certificate expires the CA warns
    /// (event 127; `kra_expiry_warning_days`, default 30).
    pub async fn set_kra_expiry_warning_days(&self, actor: &Actor, days: u32) -> EngineResult<()> {
        crate::archival::kra_admin::set_kra_expiry_warning_days(&self.core, actor, days).await
    }

    /// The archived-key envelope stored with a request.
    pub async fn archived_key(&self, request_id: i64) -> EngineResult<Vec<u8>> {
        crate::archival::envelope::archived_key(&self.core, request_id).await
    }

    /// SHA-1 thumbprints of the KRA certificates a request's key is encrypted to.
    pub async fn kra_hashes(&self, request_id: i64) -> EngineResult<Vec<String>> {
        crate::archival::envelope::kra_hashes(&self.core, request_id).await
    }

    /// Takes an online, consistent backup into `out` (absent or empty),
    /// without the CA exchange keys.
    pub async fn backup(
        &self,
        actor: &Actor,
        out: &Path,
        backup_passphrase: &[u8],
    ) -> EngineResult<Manifest> {
        crate::backup::backup(&self.core, actor, out, backup_passphrase).await
    }

    /// [`Ca::backup`] with options.
    pub async fn backup_with(
        &self,
        actor: &Actor,
        out: &Path,
        backup_passphrase: &[u8],
        options: BackupOptions,
    ) -> EngineResult<Manifest> {
        crate::backup::backup_with(&self.core, actor, out, backup_passphrase, options).await
    }

    /// Whether the CA accepts foreign certificates.
    pub async fn foreign_enabled(&self) -> EngineResult<bool> {
        crate::import::foreign_enabled(&self.core).await
    }

    /// Turns KRAF_ENABLEFOREIGN on or off.
    pub async fn set_foreign_enabled(&self, actor: &Actor, on: bool) -> EngineResult<()> {
        crate::import::set_foreign_enabled(&self.core, actor, on).await
    }

    /// Imports one PKCS#12 file (its key and certificates).
    pub async fn import_pkcs12(
        &self,
        actor: &Actor,
        data: &[u8],
        password: &str,
        source: &str,
        opts: &ImportOptions,
    ) -> EngineResult<Vec<ImportItem>> {
        crate::import::pkcs12::import_pkcs12(&self.core, actor, data, password, source, opts).await
    }

    /// Imports one certificate without a key (`importcert`).
    pub async fn import_certificate(
        &self,
        actor: &Actor,
        der: &[u8],
        source: &str,
        opts: &ImportOptions,
    ) -> EngineResult<ImportItem> {
        crate::import::pkcs12::import_certificate(&self.core, actor, der, source, opts).await
    }

    /// Imports many PKCS#12 files with one transaction (one durable commit)
    /// per call; if the batch cannot be written as a whole, each file is
    /// imported on its own so one bad file never stops the others.
    pub async fn import_pkcs12_many(
        &self,
        actor: &Actor,
        files: &[(String, Vec<u8>)],
        password: &str,
        opts: &ImportOptions,
    ) -> EngineResult<Vec<(String, EngineResult<Vec<ImportItem>>)>> {
        crate::import::pkcs12::import_pkcs12_many(&self.core, actor, files, password, opts).await
    }

    /// The key history of a token: every certificate the recovery search
    /// finds for it and every certificate linked to those by renewal, oldest
    /// first (certificate managers; restricted ones see their rows only).
    pub async fn key_history(
        &self,
        actor: &Actor,
        token: &str,
    ) -> EngineResult<Vec<crate::recovery::HistoryEntry>> {
        crate::recovery::search::key_history(&self.core, actor, token).await
    }

    /// Recovery candidates for a token (CN, UPN, DOMAIN\user, e-mail, requester,
    /// serial, SHA-1 thumbprint or key ID). Only rows holding an archived key;
    /// expired certificates included. Certificate managers only; a restricted
    /// manager sees only the rows it may act on.
    pub async fn find_candidates(
        &self,
        actor: &Actor,
        token: &str,
    ) -> EngineResult<Vec<Candidate>> {
        crate::recovery::search::find_candidates(&self.core, actor, token).await
    }

    /// Produces the recovery blob of one candidate: CMS SignedData by the CA
    /// over the archived EnvelopedData, with the user certificate and chain.
    /// Several matches are refused (0x8002802C); every retrieval is audited.
    pub async fn get_key(&self, actor: &Actor, token: &str) -> EngineResult<RecoveryBlob> {
        crate::recovery::blob::get_key(&self.core, actor, token).await
    }

    /// Produces the recovery blob of a request.
    pub async fn get_key_by_request(
        &self,
        actor: &Actor,
        request_id: i64,
    ) -> EngineResult<RecoveryBlob> {
        crate::recovery::blob::get_key_by_request(&self.core, actor, request_id).await
    }

    /// Archived keys whose certificates match any recipient of an encrypted
    /// message (issuer + serial, or subject key identifier).
    pub async fn candidates_for_message(
        &self,
        actor: &Actor,
        message: &[u8],
    ) -> EngineResult<Vec<Candidate>> {
        crate::recovery::search::candidates_for_message(&self.core, actor, message).await
    }

    /// Builds a key-history export: retrieves each selected blob (audited, as a
    /// certificate manager), opens it with the agent's key, groups keys per
    /// user, locks the document to `dest_cert` and signs it with this CA.
    pub async fn export_keys(
        &self,
        actor: &Actor,
        selection: &Selection,
        dest_cert: &[u8],
        kra_key: &dyn PrivateKey,
        kra_cert: &[u8],
    ) -> EngineResult<Export> {
        crate::export::export_keys(&self.core, actor, selection, dest_cert, kra_key, kra_cert).await
    }

    /// Deletes exported archived keys from this CA (after the export file was written and verified).
    pub async fn remove_exported_keys(
        &self,
        actor: &Actor,
        request_ids: &[i64],
    ) -> EngineResult<()> {
        crate::export::remove_exported_keys(&self.core, actor, request_ids).await
    }

    /// Imports a key-history export: the signature must verify against
    /// `trusted_source`, the lock box must open with `dest_key`/`dest_cert`;
    /// nothing is written otherwise. Returns (source CA, users, items).
    #[allow(clippy::too_many_arguments)]
    pub async fn import_key_history(
        &self,
        actor: &Actor,
        file: &[u8],
        trusted_source: &[u8],
        dest_key: &dyn PrivateKey,
        dest_cert: &[u8],
        source: &str,
        opts: &ImportOptions,
    ) -> EngineResult<(String, usize, Vec<ImportItem>)> {
        crate::export::import_key_history(
            &self.core,
            actor,
            file,
            trusted_source,
            dest_key,
            dest_cert,
            source,
            opts,
        )
        .await
    }
}
