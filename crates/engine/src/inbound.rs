//! Decoding and authenticating an incoming request (PKCS#10 or CMC).

use cms::cert::CertificateChoices;
use cms::signed_data::SignerIdentifier;
use der::Encode;
use lockbox_codec::cmc::{self, CmcRequest};
use lockbox_codec::pem::decode_input;
use lockbox_codec::request::{parse_pkcs10, Pkcs10};
use lockbox_crypto::digest::{digest_by_oid, sha1};
use lockbox_crypto::keyinfo::key_identifier;
use lockbox_crypto::verify::{cms_signature_oid, verify_signature};
use lockbox_crypto::CryptoError;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::error::{codes, EngineError, EngineResult};

/// The request format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    /// Bare PKCS#10.
    Pkcs10,
    /// CMC Full PKI Request carrying one PKCS#10.
    Cmc,
}

impl RequestKind {
    /// Column value.
    pub fn as_str(&self) -> &'static str {
        match self {
            RequestKind::Pkcs10 => "pkcs10",
            RequestKind::Cmc => "cmc",
        }
    }
}

/// A decoded request whose signatures verified.
#[derive(Debug)]
pub struct Inbound {
    /// Format.
    pub kind: RequestKind,
    /// The request as received (DER).
    pub der: Vec<u8>,
    /// The PKCS#10 (inside the CMC for CMC requests).
    pub pkcs10: Pkcs10,
    /// The CMC wrapper, for CMC requests.
    pub cmc: Option<CmcRequest>,
}

fn sig_error(what: &str, e: CryptoError) -> EngineError {
    match e {
        CryptoError::BadSignature => EngineError::bad_input(
            codes::NTE_BAD_SIGNATURE,
            format!("{what} signature does not verify"),
        ),
        other => EngineError::bad_input(
            codes::NTE_BAD_SIGNATURE,
            format!("{what} signature cannot be checked: {other}"),
        ),
    }
}

/// Decodes PEM/base64/DER input, recognises PKCS#10 or CMC, and verifies every signature.
pub fn decode_and_verify(input: &[u8]) -> EngineResult<Inbound> {
    let decoded = decode_input(input)?;
    // BER (indefinite lengths, chunked OCTET STRINGs) becomes DER; DER is unchanged.
    let der = lockbox_codec::ber::ber_to_der(&decoded.der).unwrap_or(decoded.der);
    if cmc::looks_like_content_info(&der) {
        let cmc = cmc::parse_cmc_request(&der)?;
        let pkcs10 = parse_pkcs10(&cmc.cert_req_der)?;
        verify_pkcs10(&pkcs10)?;
        verify_cmc_signer(&cmc, &pkcs10)?;
        return Ok(Inbound {
            kind: RequestKind::Cmc,
            der,
            pkcs10,
            cmc: Some(cmc),
        });
    }
    let pkcs10 = parse_pkcs10(&der)?;
    verify_pkcs10(&pkcs10)?;
    Ok(Inbound {
        kind: RequestKind::Pkcs10,
        der,
        pkcs10,
        cmc: None,
    })
}

fn verify_pkcs10(p: &Pkcs10) -> EngineResult<()> {
    verify_signature(
        &p.cert_req.info.public_key,
        p.signature_algorithm(),
        &p.signed_bytes,
        p.signature(),
    )
    .map_err(|e| sig_error("PKCS#10", e))
}

/// Checks the CMC signer: the eContent digest, the signer's identity (the
/// request key by SKI, or a certificate in the SignedData by issuer and
/// serial), and the signature over the signed attributes.
fn verify_cmc_signer(cmc: &CmcRequest, pkcs10: &Pkcs10) -> EngineResult<()> {
    let signer = &cmc.signer;
    let digest = digest_by_oid(&signer.digest_alg.oid, &cmc.pki_data_der)
        .map_err(|e| EngineError::bad_input(codes::NTE_BAD_ALGID, format!("CMC signer: {e}")))?;
    if digest != cmc.message_digest {
        return Err(EngineError::bad_input(
            codes::NTE_BAD_SIGNATURE,
            "CMC messageDigest does not match the PKIData content",
        ));
    }
    let request_key = &pkcs10.cert_req.info.public_key;
    let signer_key: SubjectPublicKeyInfoOwned = match &signer.sid {
        SignerIdentifier::SubjectKeyIdentifier(ski) => {
            let ski = ski.0.as_bytes();
            let spki_der = request_key.to_der().map_err(|e| {
                EngineError::bad_input(
                    codes::CRYPT_E_ASN1_BADTAG,
                    format!("request public key: {e}"),
                )
            })?;
            if ski != key_identifier(request_key).as_slice() && ski != sha1(&spki_der).as_slice() {
                return Err(EngineError::bad_input(
                    codes::NTE_BAD_SIGNATURE,
                    "CMC signer is not the request key (subject key identifier does not match the PKCS#10 public key)",
                ));
            }
            request_key.clone()
        }
        SignerIdentifier::IssuerAndSerialNumber(ias) => {
            let found = cmc
                .signed_data
                .certificates
                .as_ref()
                .and_then(|set| {
                    set.0.iter().find_map(|c| match c {
                        CertificateChoices::Certificate(cert)
                            if cert.tbs_certificate().issuer() == &ias.issuer
                                && cert.tbs_certificate().serial_number() == &ias.serial_number =>
                        {
                            Some(cert.tbs_certificate().subject_public_key_info().clone())
                        }
                        _ => None,
                    })
                })
                .ok_or_else(|| {
                    EngineError::bad_input(
                        codes::NTE_BAD_SIGNATURE,
                        "CMC signer certificate (issuer and serial) is not in the request",
                    )
                })?;
            if &found != request_key {
                return Err(EngineError::bad_input(
                    codes::NTE_BAD_SIGNATURE,
                    "CMC signer certificate key does not match the PKCS#10 public key",
                ));
            }
            found
        }
    };
    let oid = cms_signature_oid(&signer.digest_alg.oid, &signer.signature_algorithm.oid)
        .map_err(|e| EngineError::bad_input(codes::NTE_BAD_ALGID, format!("CMC signer: {e}")))?;
    let alg = AlgorithmIdentifierOwned {
        oid,
        parameters: None,
    };
    verify_signature(
        &signer_key,
        &alg,
        &cmc.signed_attrs_der,
        signer.signature.as_bytes(),
    )
    .map_err(|e| sig_error("CMC", e))
}
