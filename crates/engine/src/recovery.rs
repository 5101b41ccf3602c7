//! Key recovery: finding candidates, producing recovery blobs (certificate
//! manager), and opening them offline into a PKCS#12 (key recovery agent).

use std::collections::BTreeMap;

use lockbox_codec::hexfmt::{normalize_hex, to_hex};
use lockbox_codec::oids;
use lockbox_crypto::cms::{
    decode_envelope, open_envelope, sign_data_with_attributes, verify_signed_data, OpenError,
    OpeningKey,
};
use lockbox_crypto::digest::sha1;
use lockbox_crypto::keytransport::DecryptionKey;
use lockbox_crypto::{KeyHandle, SoftwareKey};
use lockbox_store::{Column, Op as QOp, RequestRecord, Restriction, Value};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::authz::{Actor, Op};
use crate::ca::Ca;
use crate::certbuild::decode_certificate;
use crate::error::codes::{
    CERTSRV_E_BAD_REQUEST_KEY_ARCHIVAL, CRYPT_E_NOT_FOUND, TYPE_E_AMBIGUOUSNAME,
};
use crate::error::{codes, EngineError, EngineResult};

/// A recovery candidate, as `getkey` lists it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Candidate {
    /// Request ID.
    pub request_id: i64,
    /// Serial number (hex).
    pub serial: String,
    /// Subject DN.
    pub subject: String,
    /// UPN.
    pub upn: Option<String>,
    /// notBefore (unix).
    pub not_before: i64,
    /// notAfter (unix).
    pub not_after: i64,
    /// Template.
    pub template: Option<String>,
    /// Template version (major.minor) when known.
    pub version: Option<String>,
    /// SHA-1 thumbprint.
    pub cert_hash: String,
    /// Requester.
    pub requester: String,
}

/// A KRA able to open a blob.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecipientInfo {
    /// Issuer DN.
    pub issuer: String,
    /// Serial (hex).
    pub serial: String,
    /// SHA-1 of the KRA certificate (from the CA's KRA store).
    pub sha1: String,
}

/// A retrieved recovery blob.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecoveryBlob {
    /// The candidate.
    pub candidate: Candidate,
    /// KRAs that can open it.
    pub recipients: Vec<RecipientInfo>,
    /// DER SignedData (not serialised in listings).
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "b64")]
    pub blob: Vec<u8>,
}

mod b64 {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(
            &lockbox_codec::pem::encode_pem("X", v)
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() {
            return Ok(vec![]);
        }
        lockbox_codec::pem::decode_base64_text(&s).map_err(serde::de::Error::custom)
    }
}

fn candidate(r: &RequestRecord) -> Option<Candidate> {
    let c = r.cert.as_ref()?;
    Some(Candidate {
        request_id: r.request_id,
        serial: c.serial.clone(),
        subject: c.subject.clone(),
        upn: c.upn.clone(),
        not_before: c.not_before,
        not_after: c.not_after,
        template: r.template.clone(),
        version: None,
        cert_hash: c.thumbprint.clone(),
        requester: r.requester.clone(),
    })
}

fn archived(column: Column, value: Value) -> Vec<Restriction> {
    // Names match case-insensitively, as in AD CS (`getkey bob` finds CN=Bob);
    // hex tokens are normalised to lowercase already.
    let op = match column {
        Column::CommonName | Column::Upn | Column::Email | Column::Requester => QOp::EqNoCase,
        _ => QOp::Eq,
    };
    vec![
        Restriction { column, op, value },
        Restriction {
            column: Column::ArchivedKey,
            op: QOp::Eq,
            value: Value::Int(1),
        },
    ]
}

impl Ca {
    async fn search_rows(&self, token: &str) -> EngineResult<Vec<RequestRecord>> {
        let t = token.trim();
        if t.is_empty() {
            return Err(EngineError::bad_input(
                codes::E_INVALIDARG,
                "an empty search token",
            ));
        }
        let mut queries = vec![
            archived(Column::CommonName, Value::Text(t.into())),
            archived(Column::Upn, Value::Text(t.into())),
            archived(Column::Email, Value::Text(t.into())),
            archived(Column::Requester, Value::Text(t.into())),
        ];
        if let Some(hex) = normalize_hex(t) {
            for col in [Column::SerialNumber, Column::Thumbprint, Column::KeyId] {
                queries.push(archived(col, Value::Text(hex.clone())));
            }
        }
        // A down-level name or principal: its UPN, e-mail and name too.
        if let Some(p) = self.directory.principals().await?.into_iter().find(|p| {
            p.downlevel
                .as_deref()
                .is_some_and(|d| d.eq_ignore_ascii_case(t))
                || p.name.eq_ignore_ascii_case(t)
        }) {
            for (col, v) in [
                (Column::Upn, p.upn),
                (Column::Email, p.email),
                (Column::Requester, Some(p.name.clone())),
            ] {
                if let Some(v) = v {
                    queries.push(archived(col, Value::Text(v)));
                }
            }
        }
        let mut found: BTreeMap<i64, RequestRecord> = BTreeMap::new();
        // Imported keys: the names their owner was known by on the source.
        for r in self.store.find_by_owner_name(t, 10_000).await? {
            found.insert(r.request_id, r);
        }
        for q in queries {
            for r in self.store.query(&q, 10_000).await? {
                found.insert(r.request_id, r);
            }
        }
        Ok(found.into_values().collect())
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
        self.authorize(actor, Op::SearchKeys).await?;
        let rows = self.search_rows(token).await?;
        let mut out = Vec::new();
        let templates = self.templates().await?;
        for r in rows {
            if self.decide_quietly(actor, &r).await {
                if let Some(mut c) = candidate(&r) {
                    c.version = r
                        .template
                        .as_deref()
                        .and_then(|n| templates.iter().find(|t| t.name == n))
                        .map(|t| format!("{}.{}", t.major_version, t.minor_version));
                    out.push(c);
                }
            }
        }
        Ok(out)
    }

    async fn decide_quietly(&self, actor: &Actor, r: &RequestRecord) -> bool {
        self.would_allow(
            actor,
            Op::RetrieveKey {
                requester: &r.requester,
                template: r.template.as_deref(),
            },
        )
        .await
    }

    /// Produces the recovery blob of one candidate: CMS SignedData by the CA
    /// over the archived EnvelopedData, with the user certificate and chain.
    /// Several matches are refused (0x8002802C); every retrieval is audited.
    pub async fn get_key(&self, actor: &Actor, token: &str) -> EngineResult<RecoveryBlob> {
        let candidates = self.find_candidates(actor, token).await?;
        let c = match candidates.len() {
            0 => {
                // A key outside a restricted manager's groups or templates is
                // refused as such (0x80094009, audited), not reported missing.
                if let Some(r) = self
                    .search_rows(token)
                    .await?
                    .into_iter()
                    .find(|r| candidate(r).is_some())
                {
                    self.authorize(
                        actor,
                        Op::RetrieveKey {
                            requester: &r.requester,
                            template: r.template.as_deref(),
                        },
                    )
                    .await?;
                }
                return Err(EngineError::NotFound(format!("no archived key matches '{token}'")));
            }
            1 => candidates.into_iter().next().ok_or_else(|| EngineError::NotFound(token.into()))?,
            n => {
                return Err(EngineError::denied(
                    TYPE_E_AMBIGUOUSNAME,
                    format!(
                        "Ambiguous name: {n} archived keys match '{token}' (serials {}); use a serial number or thumbprint",
                        candidates.iter().map(|c| c.serial.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                ))
            }
        };
        self.get_key_by_request(actor, c.request_id).await
    }

    /// Produces the recovery blob of a request.
    pub async fn get_key_by_request(
        &self,
        actor: &Actor,
        request_id: i64,
    ) -> EngineResult<RecoveryBlob> {
        let r = self.request(request_id).await?;
        self.authorize(
            actor,
            Op::RetrieveKey {
                requester: &r.requester,
                template: r.template.as_deref(),
            },
        )
        .await?;
        let c = candidate(&r).ok_or_else(|| {
            EngineError::NotFound(format!("request {request_id} has no certificate"))
        })?;
        let env = self.archived_key(request_id).await?;
        // Every KRA the envelope names must be in the CA's KRA store.
        let ed = decode_envelope(&env)
            .map_err(|e| EngineError::Config(format!("stored envelope: {e}")))?;
        let kras: Vec<(x509_cert::certificate::Certificate, Vec<u8>)> = self
            .store
            .kra_certificates()
            .await?
            .into_iter()
            .filter_map(|k| {
                decode_certificate(&k.cert_der)
                    .ok()
                    .map(|c| (c, k.cert_der))
            })
            .collect();
        let mut recipients = Vec::new();
        for (issuer, serial) in envelope_ids(&ed) {
            let kra = kras.iter().find(|(k, _)| {
                k.tbs_certificate().issuer() == &issuer
                    && k.tbs_certificate().serial_number() == &serial
            });
            let Some((_, der)) = kra else {
                return Err(EngineError::Denied {
                    code: CRYPT_E_NOT_FOUND,
                    message: format!(
                        "Cannot find the KRA certificate (issuer '{issuer}', serial {}) named by the archived key of request {request_id}",
                        to_hex(serial.as_bytes())
                    ),
                });
            };
            recipients.push(RecipientInfo {
                issuer: issuer.to_string(),
                serial: to_hex(serial.as_bytes()),
                sha1: to_hex(&sha1(der)),
            });
        }
        let key = self.signing_key()?;
        let (_, ca_cert) = self.ca_cert()?;
        let mut certs = vec![r
            .cert
            .as_ref()
            .map(|c| c.cert_der.clone())
            .unwrap_or_default()];
        certs.extend(self.chain_der()?);
        // The user certificate's hash is a signed attribute: the CA vouches for
        // the certificate it pairs with the key (needed for imported foreign
        // certificates, which the CA did not issue).
        let vouch = x509_cert::attr::Attribute {
            oid: oids::MS_ISSUED_CERT_HASH,
            values: der::asn1::SetOfVec::try_from(vec![der::asn1::Any::encode_from(
                &der::asn1::OctetString::new(sha1(&certs[0]))
                    .map_err(|e| EngineError::Config(e.to_string()))?,
            )
            .map_err(|e| EngineError::Config(e.to_string()))?])
            .map_err(|e| EngineError::Config(e.to_string()))?,
        };
        let blob = sign_data_with_attributes(
            key.as_ref(),
            ca_cert,
            oids::ID_DATA,
            &env,
            &certs,
            vec![vouch],
        )?;
        let audit = self
            .audited(self.audit_entry(
                actor,
                "keys",
                "retrieved an archived key",
                &request_id.to_string(),
                &serde_json::json!({ "serial": c.serial, "kra": recipients.iter().map(|r| r.sha1.clone()).collect::<Vec<_>>() }).to_string(),
            ))
            .await;
        self.store.append_audit(&audit).await?;
        let _ = self.maybe_sign_head().await;
        Ok(RecoveryBlob {
            candidate: c,
            recipients,
            blob,
        })
    }

    /// Archived keys whose certificates match any recipient of an encrypted
    /// message (issuer + serial, or subject key identifier).
    pub async fn candidates_for_message(
        &self,
        actor: &Actor,
        message: &[u8],
    ) -> EngineResult<Vec<Candidate>> {
        self.authorize(actor, Op::SearchKeys).await?;
        let der = crate::recovery::message_der(message)?;
        let ed = decode_envelope(&der).map_err(|e| {
            EngineError::bad_input(codes::CRYPT_E_ASN1_BADTAG, format!("message: {e}"))
        })?;
        let mut out: BTreeMap<i64, Candidate> = BTreeMap::new();
        for token in message_tokens(&ed) {
            for r in self.search_rows(&token).await? {
                if self.decide_quietly(actor, &r).await {
                    if let Some(c) = candidate(&r) {
                        out.insert(c.request_id, c);
                    }
                }
            }
        }
        Ok(out.into_values().collect())
    }
}

fn envelope_ids(
    ed: &cms::enveloped_data::EnvelopedData,
) -> Vec<(
    x509_cert::name::Name,
    x509_cert::serial_number::SerialNumber,
)> {
    use cms::enveloped_data::{
        KeyAgreeRecipientIdentifier, RecipientIdentifier, RecipientInfo as RI,
    };
    let mut out = Vec::new();
    for ri in ed.recip_infos.0.iter() {
        match ri {
            RI::Ktri(k) => {
                if let RecipientIdentifier::IssuerAndSerialNumber(ias) = &k.rid {
                    out.push((ias.issuer.clone(), ias.serial_number.clone()));
                }
            }
            RI::Kari(k) => {
                for rek in &k.recipient_enc_keys {
                    if let KeyAgreeRecipientIdentifier::IssuerAndSerialNumber(ias) = &rek.rid {
                        out.push((ias.issuer.clone(), ias.serial_number.clone()));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Serial numbers and key identifiers (hex) of a message's recipients.
fn message_tokens(ed: &cms::enveloped_data::EnvelopedData) -> Vec<String> {
    use cms::enveloped_data::{
        KeyAgreeRecipientIdentifier, RecipientIdentifier, RecipientInfo as RI,
    };
    let mut out: Vec<String> = envelope_ids(ed)
        .into_iter()
        .map(|(_, s)| to_hex(s.as_bytes()))
        .collect();
    for ri in ed.recip_infos.0.iter() {
        match ri {
            RI::Ktri(k) => {
                if let RecipientIdentifier::SubjectKeyIdentifier(ski) = &k.rid {
                    out.push(to_hex(ski.0.as_bytes()));
                }
            }
            RI::Kari(k) => {
                for rek in &k.recipient_enc_keys {
                    if let KeyAgreeRecipientIdentifier::RKeyId(rk) = &rek.rid {
                        out.push(to_hex(rk.subject_key_identifier.0.as_bytes()));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// DER of an encrypted message given as DER, PEM, or a MIME `smime.p7m` part.
pub fn message_der(input: &[u8]) -> EngineResult<Vec<u8>> {
    if let Ok(d) = lockbox_codec::pem::decode_input(input) {
        return Ok(d.der);
    }
    let text = String::from_utf8_lossy(input);
    let body = text
        .split_once("\r\n\r\n")
        .or_else(|| text.split_once("\n\n"))
        .map(|(_, b)| b.to_string())
        .ok_or_else(|| {
            EngineError::bad_input(codes::CRYPT_E_ASN1_BADTAG, "not DER, PEM or a MIME part")
        })?;
    let body: String = body
        .lines()
        .take_while(|l| !l.starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    Ok(lockbox_codec::pem::decode_input(body.as_bytes())?.der)
}

/// A recovered key with its certificates.
pub struct Recovered {
    /// PKCS#8 of the recovered key.
    pub pkcs8: Zeroizing<Vec<u8>>,
    /// The user's certificate (DER).
    pub certificate: Vec<u8>,
    /// The CA chain from the blob (DER).
    pub chain: Vec<Vec<u8>>,
}

/// Opens a recovery blob offline with a KRA key (the agent's side): checks the
/// CA signature against `trusted_ca`, finds the recipient matching the agent's
/// certificate, decrypts, and checks the key matches the certificate in the blob.
pub fn recover_from_blob(
    blob: &[u8],
    trusted_ca: &[u8],
    kra_key: &SoftwareKey,
    kra_cert: &[u8],
) -> EngineResult<Recovered> {
    let bad = |m: String| EngineError::bad_input(codes::NTE_BAD_SIGNATURE, m);
    let der = lockbox_codec::pem::decode_input(blob)?.der;
    let sd = verify_signed_data(&der).map_err(|e| {
        bad(format!(
            "the recovery blob's signature does not verify: {e}"
        ))
    })?;
    let ca = crate::trust::check_ca_signer(
        "the recovery blob",
        &sd.signer_certificate,
        &lockbox_codec::pem::decode_input(trusted_ca)?.der,
    )?;
    let env = if sd.econtent.first() == Some(&0x30) && decode_envelope(&sd.econtent).is_ok() {
        sd.econtent.clone()
    } else {
        return Err(EngineError::bad_input(
            codes::CRYPT_E_ASN1_BADTAG,
            "the recovery blob does not carry an EnvelopedData",
        ));
    };
    let kra = decode_certificate(kra_cert)?;
    let ed = decode_envelope(&env)
        .map_err(|e| EngineError::bad_input(codes::CRYPT_E_ASN1_BADTAG, e.to_string()))?;
    let ids = envelope_ids(&ed);
    if kra.tbs_certificate().subject_public_key_info()
        != DecryptionKey::recipient_public_key(kra_key)
    {
        return Err(EngineError::bad_input(
            codes::E_INVALIDARG,
            "the KRA private key does not match the KRA certificate",
        ));
    }
    let opening = OpeningKey {
        issuer: kra.tbs_certificate().issuer(),
        serial: kra.tbs_certificate().serial_number(),
        key: kra_key,
    };
    let pkcs8 = match open_envelope(&env, &[opening]) {
        Ok(p) => p,
        Err(OpenError::NotForUs) => {
            return Err(EngineError::Denied {
                code: CRYPT_E_NOT_FOUND,
                message: format!(
                    "This key recovery agent cannot open the blob. KRAs that can: {}",
                    ids.iter()
                        .map(|(i, s)| format!("issuer '{i}' serial {}", to_hex(s.as_bytes())))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            })
        }
        Err(e) => {
            return Err(EngineError::bad_input(
                CERTSRV_E_BAD_REQUEST_KEY_ARCHIVAL,
                format!("the archived key could not be decrypted: {e}"),
            ))
        }
    };
    let key = SoftwareKey::from_pkcs8_der(&pkcs8).map_err(|e| {
        EngineError::bad_input(
            CERTSRV_E_BAD_REQUEST_KEY_ARCHIVAL,
            format!("the recovered key does not load: {e}"),
        )
    })?;
    let mut user = None;
    let mut chain = Vec::new();
    for c in &sd.certificates {
        let cert = decode_certificate(c)?;
        if user.is_none()
            && cert.tbs_certificate().subject_public_key_info() == key.public_key_info()
        {
            user = Some(c.clone());
        } else {
            chain.push(c.clone());
        }
    }
    let certificate = user.ok_or_else(|| {
        EngineError::bad_input(
            CERTSRV_E_BAD_REQUEST_KEY_ARCHIVAL,
            "the recovered key does not match the certificate in the blob",
        )
    })?;
    // The user certificate must be one the CA issued: a blob cannot name a
    // self-made certificate as "the key of" someone.
    let vouched = sd
        .signed_attributes
        .iter()
        .filter(|a| a.oid == oids::MS_ISSUED_CERT_HASH)
        .flat_map(|a| a.values.iter())
        .filter_map(|v| v.decode_as::<der::asn1::OctetString>().ok())
        .any(|h| h.as_bytes() == sha1(&certificate).as_slice());
    if !vouched {
        ca.check_issued("the recovery blob", &certificate)?;
    }
    Ok(Recovered {
        pkcs8,
        certificate,
        chain,
    })
}
