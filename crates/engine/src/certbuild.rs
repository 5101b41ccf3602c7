//! Building and signing certificates, requests and CRLs through a key handle.

use const_oid::ObjectIdentifier;
use der::asn1::{Ia5String, OctetString};
use der::{Decode, Encode};
use lockbox_codec::{ms, oids};
use lockbox_crypto::keyinfo::key_identifier;
use lockbox_crypto::x509signer::{RawSignature, X509Signer};
use lockbox_crypto::KeyHandle;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::builder::{Builder, CertificateBuilder, Profile, RequestBuilder};
use x509_cert::certificate::{Certificate, TbsCertificate};
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints,
    CertificatePolicies, CrlDistributionPoints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;

use crate::error::{EngineError, EngineResult};
use crate::period::x509_time;
use crate::template::Template;

const ID_AD_CA_ISSUERS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.2");

fn internal(what: &str) -> impl FnOnce(der::Error) -> EngineError + '_ {
    move |e| EngineError::Config(format!("encoding {what}: {e}"))
}

/// Builds an extension from any DER-encodable value.
pub fn extension<T: Encode>(
    oid: ObjectIdentifier,
    critical: bool,
    value: &T,
) -> EngineResult<Extension> {
    let der = value.to_der().map_err(internal("extension"))?;
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(der).map_err(internal("extension"))?,
    })
}

/// keyUsage from template names; EC keys get keyAgreement instead of keyEncipherment.
pub fn key_usage(names: &[String], ec_key: bool) -> EngineResult<Option<Extension>> {
    let mut flags = der::flagset::FlagSet::<KeyUsages>::default();
    for n in names {
        flags |= match n.as_str() {
            "digitalSignature" => KeyUsages::DigitalSignature,
            "nonRepudiation" => KeyUsages::NonRepudiation,
            "keyEncipherment" if ec_key => KeyUsages::KeyAgreement,
            "keyEncipherment" => KeyUsages::KeyEncipherment,
            "dataEncipherment" if ec_key => KeyUsages::KeyAgreement,
            "dataEncipherment" => KeyUsages::DataEncipherment,
            "keyAgreement" => KeyUsages::KeyAgreement,
            "keyCertSign" => KeyUsages::KeyCertSign,
            "cRLSign" => KeyUsages::CRLSign,
            other => {
                return Err(EngineError::Config(format!(
                    "unknown key usage '{other}' in template"
                )))
            }
        };
    }
    if flags.is_empty() {
        return Ok(None);
    }
    Ok(Some(extension(oids::CE_KEY_USAGE, true, &KeyUsage(flags))?))
}

fn parse_oids(list: &[String]) -> EngineResult<Vec<ObjectIdentifier>> {
    list.iter()
        .map(|s| {
            ObjectIdentifier::new(s)
                .map_err(|_| EngineError::Config(format!("'{s}' is not an OID")))
        })
        .collect()
}

/// The extensions a template contributes: template id, keyUsage, EKU, application policies, basicConstraints.
pub fn template_extensions(t: &Template, ec_key: bool) -> EngineResult<Vec<Extension>> {
    let mut out = Vec::new();
    if t.schema_version >= 2 {
        let oid = ObjectIdentifier::new(&t.oid).map_err(|_| {
            EngineError::Config(format!("template '{}' has an invalid OID", t.name))
        })?;
        let v = ms::CertificateTemplateExt {
            template_id: oid,
            major_version: Some(t.major_version),
            minor_version: Some(t.minor_version),
        };
        out.push(extension(oids::MS_CERTIFICATE_TEMPLATE, false, &v)?);
    } else {
        let der =
            ms::encode_cert_type_name(&t.name).map_err(|e| EngineError::Config(e.to_string()))?;
        out.push(Extension {
            extn_id: oids::MS_CERT_TYPE_NAME,
            critical: false,
            extn_value: OctetString::new(der).map_err(internal("type name"))?,
        });
    }
    if let Some(ku) = key_usage(&t.key_usage, ec_key)? {
        out.push(ku);
    }
    let ekus = parse_oids(&t.ekus)?;
    if !ekus.is_empty() {
        out.push(extension(
            oids::CE_EXT_KEY_USAGE,
            false,
            &ExtendedKeyUsage(ekus.clone()),
        )?);
        if t.application_policies {
            let pols = CertificatePolicies(
                ekus.iter()
                    .map(|o| PolicyInformation {
                        policy_identifier: *o,
                        policy_qualifiers: None,
                    })
                    .collect(),
            );
            out.push(extension(oids::MS_APPLICATION_POLICIES, false, &pols)?);
        }
    }
    if t.ca {
        out.push(extension(
            oids::CE_BASIC_CONSTRAINTS,
            true,
            &BasicConstraints {
                ca: true,
                path_len_constraint: Some(0),
            },
        )?);
    }
    Ok(out)
}

/// subjectKeyIdentifier for a public key.
pub fn ski(spki: &SubjectPublicKeyInfoOwned) -> EngineResult<Extension> {
    let id = OctetString::new(key_identifier(spki)).map_err(internal("SKI"))?;
    extension(
        oids::CE_SUBJECT_KEY_IDENTIFIER,
        false,
        &SubjectKeyIdentifier(id),
    )
}

/// authorityKeyIdentifier (keyIdentifier form) for an issuer key.
pub fn aki(issuer_spki: &SubjectPublicKeyInfoOwned) -> EngineResult<Extension> {
    let v = AuthorityKeyIdentifier {
        key_identifier: Some(
            OctetString::new(key_identifier(issuer_spki)).map_err(internal("AKI"))?,
        ),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    extension(
        const_oid::db::rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER,
        false,
        &v,
    )
}

fn uri(u: &str) -> EngineResult<GeneralName> {
    Ok(GeneralName::UniformResourceIdentifier(
        Ia5String::new(u).map_err(|_| EngineError::Config(format!("URL '{u}' is not ASCII")))?,
    ))
}

/// A CRL distribution points (or Freshest CRL) value naming `urls`.
fn distribution_points(urls: &[String]) -> EngineResult<CrlDistributionPoints> {
    Ok(CrlDistributionPoints(vec![DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(
            urls.iter().map(|u| uri(u)).collect::<EngineResult<_>>()?,
        )),
        reasons: None,
        crl_issuer: None,
    }]))
}

/// The Freshest CRL extension (RFC 5280 4.2.1.15) naming the delta CRL URLs,
/// if any are configured.
pub fn freshest_crl(delta_urls: &[String]) -> EngineResult<Option<Extension>> {
    if delta_urls.is_empty() {
        return Ok(None);
    }
    Ok(Some(extension(
        const_oid::db::rfc5280::ID_CE_FRESHEST_CRL,
        false,
        &distribution_points(delta_urls)?,
    )?))
}

/// CRL distribution points, Freshest CRL and AIA (caIssuers, OCSP) from the
/// configured URLs; the CRL names carry the suffix of CA key `key_index`
/// (`ca(1).crl`), whose CRLs list what it signs.
pub fn distribution_extensions(
    issuance: &crate::config::IssuanceSection,
    key_index: u32,
) -> EngineResult<Vec<Extension>> {
    let suffixed = |urls: &[String]| -> Vec<String> {
        urls.iter()
            .map(|u| crate::crl::key_suffixed(u, key_index))
            .collect()
    };
    let mut out = Vec::new();
    if !issuance.cdp_urls.is_empty() {
        out.push(extension(
            const_oid::db::rfc5280::ID_CE_CRL_DISTRIBUTION_POINTS,
            false,
            &distribution_points(&suffixed(&issuance.cdp_urls))?,
        )?);
    }
    out.extend(freshest_crl(&suffixed(&issuance.delta_cdp_urls))?);
    let access: Vec<AccessDescription> = issuance
        .ocsp_urls
        .iter()
        .map(|u| (lockbox_codec::ocsp::ID_AD_OCSP, u))
        .chain(issuance.aia_urls.iter().map(|u| (ID_AD_CA_ISSUERS, u)))
        .map(|(access_method, u)| {
            Ok(AccessDescription {
                access_method,
                access_location: uri(u)?,
            })
        })
        .collect::<EngineResult<_>>()?;
    if !access.is_empty() {
        out.push(extension(
            const_oid::db::rfc5280::ID_PE_AUTHORITY_INFO_ACCESS,
            false,
            &AuthorityInfoAccessSyntax(access),
        )?);
    }
    Ok(out)
}

/// Extensions of a CA certificate (root or subordinate request).
pub fn ca_extensions(
    spki: &SubjectPublicKeyInfoOwned,
    self_signed: bool,
) -> EngineResult<Vec<Extension>> {
    let signer = self_signed.then_some(spki);
    let name = if self_signed { "CA" } else { "SubCA" };
    ca_extensions_for(spki, signer, 0, name)
}

/// Extensions of a CA certificate for `spki`: the authority key identifier
/// of `signer` when given (a self-signed or cross-certificate), the
/// Microsoft CA version `version` ((key index << 16) | certificate index)
/// and certificate type `type_name` (`CA`, `SubCA`, `CrossCA`).
pub fn ca_extensions_for(
    spki: &SubjectPublicKeyInfoOwned,
    signer: Option<&SubjectPublicKeyInfoOwned>,
    version: u32,
    type_name: &str,
) -> EngineResult<Vec<Extension>> {
    let mut out = vec![
        extension(
            oids::CE_BASIC_CONSTRAINTS,
            true,
            &BasicConstraints {
                ca: true,
                path_len_constraint: None,
            },
        )?,
        key_usage(
            &[
                "digitalSignature".into(),
                "keyCertSign".into(),
                "cRLSign".into(),
            ],
            false,
        )?
        .ok_or_else(|| EngineError::Config("CA key usage".into()))?,
        ski(spki)?,
    ];
    if let Some(signer) = signer {
        out.push(aki(signer)?);
    }
    out.push(extension(oids::MS_CA_VERSION, false, &version)?);
    let der =
        ms::encode_cert_type_name(type_name).map_err(|e| EngineError::Config(e.to_string()))?;
    out.push(Extension {
        extn_id: oids::MS_CERT_TYPE_NAME,
        critical: false,
        extn_value: OctetString::new(der).map_err(internal("type name"))?,
    });
    Ok(out)
}

struct FixedProfile {
    issuer: Name,
    subject: Name,
    extensions: Vec<Extension>,
}

impl Profile for FixedProfile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }
    fn get_subject(&self) -> Name {
        self.subject.clone()
    }
    fn build_extensions(
        &self,
        _spk: spki::SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: spki::SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        Ok(self.extensions.clone())
    }
}

/// What goes into a certificate.
pub struct CertSpec {
    /// Issuer DN.
    pub issuer: Name,
    /// Subject DN.
    pub subject: Name,
    /// Subject public key.
    pub spki: SubjectPublicKeyInfoOwned,
    /// Serial number bytes (positive).
    pub serial: Vec<u8>,
    /// notBefore, unix seconds.
    pub not_before: i64,
    /// notAfter, unix seconds.
    pub not_after: i64,
    /// All extensions, in order.
    pub extensions: Vec<Extension>,
}

/// Builds and signs a certificate with `signer`.
pub fn sign_certificate(signer: &dyn KeyHandle, spec: CertSpec) -> EngineResult<Certificate> {
    let serial = SerialNumber::new(&spec.serial).map_err(internal("serial number"))?;
    let validity = Validity::new(x509_time(spec.not_before)?, x509_time(spec.not_after)?);
    let profile = FixedProfile {
        issuer: spec.issuer,
        subject: spec.subject,
        extensions: spec.extensions,
    };
    let builder = CertificateBuilder::new(profile, serial, validity, spec.spki)
        .map_err(|e| EngineError::Config(format!("certificate builder: {e}")))?;
    let x509_signer = X509Signer::new(signer);
    builder
        .build::<_, RawSignature>(&x509_signer)
        .map_err(|e| signing_failed(&x509_signer, "signing certificate", e))
}

/// Builds and signs a PKCS#10 request (subordinate CA setup).
pub fn sign_request(
    signer: &dyn KeyHandle,
    subject: Name,
    extensions: Vec<Extension>,
) -> EngineResult<Vec<u8>> {
    let mut builder = RequestBuilder::new(subject)
        .map_err(|e| EngineError::Config(format!("request builder: {e}")))?;
    for e in extensions {
        builder
            .add_extension(RawExtension(e))
            .map_err(|e| EngineError::Config(format!("request extension: {e}")))?;
    }
    let x509_signer = X509Signer::new(signer);
    let req = builder
        .build::<_, RawSignature>(&x509_signer)
        .map_err(|e| signing_failed(&x509_signer, "signing request", e))?;
    req.to_der().map_err(internal("request"))
}

/// A builder's signing failure: the key's own error when it left one (a
/// token that is away stays typed, for a 503), else the builder's.
fn signing_failed(signer: &X509Signer<'_>, what: &str, e: impl std::fmt::Display) -> EngineError {
    match signer.take_error() {
        Some(key_error) => EngineError::Crypto(key_error),
        None => EngineError::Config(format!("{what}: {e}")),
    }
}

struct RawExtension(Extension);

impl x509_cert::ext::ToExtension for RawExtension {
    type Error = der::Error;
    fn to_extension(
        self,
        _subject: &Name,
        _extensions: &[Extension],
    ) -> Result<Extension, der::Error> {
        Ok(self.0)
    }
}

/// Decodes a certificate, mapping errors to bad input.
pub fn decode_certificate(der: &[u8]) -> EngineResult<Certificate> {
    Certificate::from_der(der).map_err(|e| {
        EngineError::bad_input(
            crate::error::codes::CRYPT_E_ASN1_BADTAG,
            format!("malformed certificate: {e}"),
        )
    })
}
