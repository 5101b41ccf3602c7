//! Key archival: the CA exchange certificate, KRA configuration, opening the
//! client's envelope, checking the key, and re-enveloping it to the KRAs.

pub(crate) mod client_key;
pub(crate) mod envelope;
pub(crate) mod exchange;
pub(crate) mod exchange_keys;
pub(crate) mod kra;
pub(crate) mod kra_admin;
pub(crate) mod kra_events;

use std::str::FromStr;

use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use der::asn1::{Any, ObjectIdentifier};
use der::{Decode, Encode};
use lockbox_codec::oids;
use serde::{Deserialize, Serialize};
use x509_cert::certificate::Certificate;
use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage};
use x509_cert::name::Name;

use crate::certs::first_extension;
use crate::codes::CERTSRV_E_BAD_REQUEST_KEY_ARCHIVAL;
use crate::{codes, EngineError, EngineResult};

/// The status of a configured KRA certificate.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KraStatus {
    /// SHA-1 thumbprint.
    pub thumbprint: String,
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Serial number (hex).
    pub serial: String,
    /// notAfter, unix seconds.
    pub not_after: i64,
    /// `valid`, `expired`, `revoked`, `not a KRA certificate`, `untrusted issuer`, `cannot be loaded`.
    pub status: String,
}

/// What archiving produced, to store with the request.
pub struct Archived {
    /// The EnvelopedData (ContentInfo DER) to the KRAs.
    pub envelope: Vec<u8>,
    /// SHA-1 thumbprints of the KRA certificates used (comma separated).
    pub kra_hashes: String,
    /// The encrypted-key hash the client sent (echoed in the CMC response).
    pub client_hash: Vec<u8>,
    /// The request with the archived-key attribute removed.
    pub stripped_request: Vec<u8>,
}

fn archival_error() -> EngineError {
    EngineError::bad_input(
        CERTSRV_E_BAD_REQUEST_KEY_ARCHIVAL,
        "The archived private key could not be decrypted or does not belong to the request.",
    )
}

pub(crate) fn has_eku(cert: &Certificate, eku: ObjectIdentifier) -> bool {
    first_extension::<ExtendedKeyUsage>(cert).is_some_and(|k| k.0.contains(&eku))
}

fn key_usage(cert: &Certificate) -> Option<KeyUsage> {
    first_extension::<KeyUsage>(cert)
}

fn xchg_subject(ca: &Name) -> EngineResult<Name> {
    let cn = lockbox_codec::names::common_name(ca).unwrap_or_else(|| "Lockbox CA".into());
    Name::from_str(&format!("CN={}-Xchg", cn.replace(',', "\\,")))
        .map_err(|e| EngineError::Config(format!("exchange certificate subject: {e}")))
}

/// Removes the archived-key unauthenticated attribute from a CMC request
/// (MS-WCCE: the CA does not keep the client's envelope to its exchange key).
pub fn strip_archived_key(der: &[u8]) -> EngineResult<Vec<u8>> {
    let bad = |e: der::Error| {
        EngineError::bad_input(codes::CRYPT_E_ASN1_BADTAG, format!("CMC request: {e}"))
    };
    let ci = ContentInfo::from_der(der).map_err(bad)?;
    let mut sd: SignedData = ci.content.decode_as().map_err(bad)?;
    let signers: Vec<_> = sd
        .signer_infos
        .0
        .iter()
        .cloned()
        .map(|mut s| {
            if let Some(attrs) = &s.unsigned_attrs {
                let kept: Vec<_> = attrs
                    .iter()
                    .filter(|a| a.oid != oids::MS_ARCHIVED_KEY)
                    .cloned()
                    .collect();
                s.unsigned_attrs = if kept.is_empty() {
                    None
                } else {
                    der::asn1::SetOfVec::try_from(kept).ok()
                };
            }
            s
        })
        .collect();
    sd.signer_infos =
        cms::signed_data::SignerInfos(der::asn1::SetOfVec::try_from(signers).map_err(bad)?);
    let out = ContentInfo {
        content_type: ci.content_type,
        content: Any::encode_from(&sd).map_err(bad)?,
    };
    out.to_der().map_err(bad)
}
