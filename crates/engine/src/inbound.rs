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
    /// PKCS#7 SignedData carrying one PKCS#10, signed with a certificate's
    /// key (a Windows renewal).
    Pkcs7,
}

impl RequestKind {
    /// Column value.
    pub fn as_str(&self) -> &'static str {
        match self {
            RequestKind::Pkcs10 => "pkcs10",
            RequestKind::Cmc => "cmc",
            RequestKind::Pkcs7 => "pkcs7",
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
    /// The certificate whose key signed the CMC or PKCS#7 wrapper, when the
    /// signer is named by a certificate: a renewal when this CA issued it
    /// (`enroll::renewal` decides).
    pub signer_cert: Option<x509_cert::certificate::Certificate>,
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

/// Decodes PEM/base64/DER input, recognises PKCS#10, CMC or PKCS#7 (a
/// PKCS#10 signed with a certificate's key: a renewal), and verifies every
/// signature. A signer certificate is returned, not judged: whether it may
/// renew is for `enroll::renewal::renewal` to decide, which every
/// submission runs and which refuses any signer this CA cannot vouch for.
pub fn decode_and_verify_submission(input: &[u8]) -> EngineResult<Inbound> {
    let decoded = decode_input(input)?;
    // BER (indefinite lengths, chunked OCTET STRINGs) becomes DER; DER is unchanged.
    let der = lockbox_codec::ber::ber_to_der(&decoded.der).unwrap_or(decoded.der);
    if cmc::looks_like_content_info(&der) {
        if cmc::signed_content_type(&der) == Some(lockbox_codec::oids::ID_DATA) {
            let p7 = cmc::parse_pkcs7_request(&der)?;
            let pkcs10 = parse_pkcs10(&p7.cert_req_der)?;
            verify_pkcs10(&pkcs10)?;
            let signer = verify_pkcs7_signer(&p7)?;
            let signer_cert = renewal_signer(&pkcs10, Some(signer))?;
            return Ok(Inbound {
                kind: RequestKind::Pkcs7,
                der,
                pkcs10,
                cmc: None,
                signer_cert,
            });
        }
        let cmc = cmc::parse_cmc_request(&der)?;
        let pkcs10 = parse_pkcs10(&cmc.cert_req_der)?;
        verify_pkcs10(&pkcs10)?;
        let signer_cert = renewal_signer(&pkcs10, verify_cmc_signer(&cmc, &pkcs10)?)?;
        return Ok(Inbound {
            kind: RequestKind::Cmc,
            der,
            pkcs10,
            cmc: Some(cmc),
            signer_cert,
        });
    }
    let pkcs10 = parse_pkcs10(&der)?;
    verify_pkcs10(&pkcs10)?;
    // A bare PKCS#10 naming the certificate it renews proves possession of
    // that certificate's key only by its own signature: the same key.
    let signer_cert = renewal_signer(&pkcs10, None)?;
    Ok(Inbound {
        kind: RequestKind::Pkcs10,
        der,
        pkcs10,
        cmc: None,
        signer_cert,
    })
}

/// The certificate a signed request renews, if any: its signer
/// certificate; a renewal certificate attribute must name that one, or
/// (signed by the request key) a certificate of the request key.
fn renewal_signer(
    pkcs10: &Pkcs10,
    signer: Option<x509_cert::certificate::Certificate>,
) -> EngineResult<Option<x509_cert::certificate::Certificate>> {
    let refuse = |m: &str| {
        Err(EngineError::bad_input(
            codes::NTE_BAD_SIGNATURE,
            m.to_string(),
        ))
    };
    match (&pkcs10.renewal_certificate, signer) {
        (None, s) => Ok(s),
        (Some(named), Some(s)) if named == &s => Ok(Some(s)),
        (Some(_), Some(_)) => {
            refuse("the request names another certificate to renew than the one that signed it")
        }
        (Some(named), None)
            if named.tbs_certificate().subject_public_key_info()
                == &pkcs10.cert_req.info.public_key =>
        {
            Ok(Some(named.clone()))
        }
        (Some(_), None) => {
            refuse("a renewal with a new key must be signed with the renewed certificate's key")
        }
    }
}

/// The certificate in `sd` that `sid` names (issuer and serial, or subject
/// key identifier).
fn signer_certificate(
    sd: &cms::signed_data::SignedData,
    sid: &SignerIdentifier,
) -> Option<x509_cert::certificate::Certificate> {
    sd.certificates.as_ref()?.0.iter().find_map(|c| match c {
        CertificateChoices::Certificate(cert) => {
            let tbs = cert.tbs_certificate();
            let named = match sid {
                SignerIdentifier::IssuerAndSerialNumber(ias) => {
                    tbs.issuer() == &ias.issuer && tbs.serial_number() == &ias.serial_number
                }
                SignerIdentifier::SubjectKeyIdentifier(ski) => {
                    ski.0.as_bytes() == key_identifier(tbs.subject_public_key_info()).as_slice()
                }
            };
            named.then(|| cert.clone())
        }
        _ => None,
    })
}

/// Verifies a CMS signer's signature with `key`: over the signed attributes
/// (whose messageDigest must be the content's digest), or over the content
/// itself when there are none.
fn verify_cms_signature(
    signer: &cms::signed_data::SignerInfo,
    key: &SubjectPublicKeyInfoOwned,
    content: &[u8],
    signed_attrs: Option<(&[u8], &[u8])>,
    what: &str,
) -> EngineResult<()> {
    let oid = cms_signature_oid(&signer.digest_alg.oid, &signer.signature_algorithm.oid)
        .map_err(|e| EngineError::bad_input(codes::NTE_BAD_ALGID, format!("{what} signer: {e}")))?;
    let alg = AlgorithmIdentifierOwned {
        oid,
        parameters: None,
    };
    let signed: &[u8] = match signed_attrs {
        Some((message_digest, attrs_der)) => {
            let digest = digest_by_oid(&signer.digest_alg.oid, content).map_err(|e| {
                EngineError::bad_input(codes::NTE_BAD_ALGID, format!("{what} signer: {e}"))
            })?;
            if digest != message_digest {
                return Err(EngineError::bad_input(
                    codes::NTE_BAD_SIGNATURE,
                    format!("{what} messageDigest does not match the content"),
                ));
            }
            attrs_der
        }
        None => content,
    };
    verify_signature(key, &alg, signed, signer.signature.as_bytes()).map_err(|e| sig_error(what, e))
}

/// Checks a PKCS#7 request's signer: a certificate carried in it, whose key
/// signed; returns that certificate.
fn verify_pkcs7_signer(
    p7: &cmc::Pkcs7Request,
) -> EngineResult<x509_cert::certificate::Certificate> {
    let cert = signer_certificate(&p7.signed_data, &p7.signer.sid).ok_or_else(|| {
        EngineError::bad_input(
            codes::NTE_BAD_SIGNATURE,
            "PKCS#7 signer certificate is not in the request",
        )
    })?;
    verify_cms_signature(
        &p7.signer,
        cert.tbs_certificate().subject_public_key_info(),
        &p7.cert_req_der,
        p7.signed_attrs
            .as_ref()
            .map(|(md, attrs)| (md.as_slice(), attrs.as_slice())),
        "PKCS#7",
    )?;
    Ok(cert)
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
/// serial), and the signature over the signed attributes. Returns the
/// signer's certificate when it is named by one.
fn verify_cmc_signer(
    cmc: &CmcRequest,
    pkcs10: &Pkcs10,
) -> EngineResult<Option<x509_cert::certificate::Certificate>> {
    let signer = &cmc.signer;
    let request_key = &pkcs10.cert_req.info.public_key;
    let (signer_key, signer_cert) = match &signer.sid {
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
            (request_key.clone(), None)
        }
        SignerIdentifier::IssuerAndSerialNumber(_) => {
            let cert = signer_certificate(&cmc.signed_data, &signer.sid).ok_or_else(|| {
                EngineError::bad_input(
                    codes::NTE_BAD_SIGNATURE,
                    "CMC signer certificate (issuer and serial) is not in the request",
                )
            })?;
            // Another key than the request's is a renewal signed with the
            // old certificate (`enroll::renewal` checks it is one).
            (
                cert.tbs_certificate().subject_public_key_info().clone(),
                Some(cert),
            )
        }
    };
    verify_cms_signature(
        signer,
        &signer_key,
        &cmc.pki_data_der,
        Some((&cmc.message_digest, &cmc.signed_attrs_der)),
        "CMC",
    )?;
    Ok(signer_cert)
}
