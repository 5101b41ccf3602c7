//! Object identifiers used across Lockbox (see REFERENCE.md).

use const_oid::ObjectIdentifier as Oid;

/// id-data.
pub const ID_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.1");
/// id-signedData.
pub const ID_SIGNED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.2");
/// id-envelopedData.
pub const ID_ENVELOPED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.3");
/// id-cct-PKIData (CMC request content).
pub const ID_CCT_PKI_DATA: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.12.2");
/// id-cct-PKIResponse (CMC response content).
pub const ID_CCT_PKI_RESPONSE: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.12.3");
/// id-cmc-statusInfo.
pub const ID_CMC_STATUS_INFO: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.7.1");
/// id-cmc-addExtensions.
pub const ID_CMC_ADD_EXTENSIONS: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.7.8");
/// id-cmc-regInfo (Windows: `CertificateTemplate=NAME&` pairs).
pub const ID_CMC_REG_INFO: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.7.18");
/// Microsoft CMC add-attributes control.
pub const MS_CMC_ADD_ATTRIBUTES: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.10.10.1");
/// Archived (encrypted) private key, unauthenticated attribute.
pub const MS_ARCHIVED_KEY: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.21.13");
/// Hash of the archived key envelope.
pub const MS_ENCRYPTED_KEY_HASH: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.21.21");
/// Hash of the issued certificate (CMC response).
pub const MS_ISSUED_CERT_HASH: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.21.17");
/// Request client info.
pub const MS_REQUEST_CLIENT_INFO: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.21.20");
/// The certificate being renewed (PKCS#10 attribute, szOID_RENEWAL_CERTIFICATE).
pub const MS_RENEWAL_CERTIFICATE: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.13.1");
/// Enrollment name/value pair (PKCS#10 attribute).
pub const MS_ENROLLMENT_NAME_VALUE_PAIR: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.13.2.1");
/// CA exchange EKU.
pub const MS_KP_CA_EXCHANGE: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.21.5");
/// Key Recovery Agent EKU.
pub const MS_KP_KEY_RECOVERY_AGENT: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.21.6");
/// Certificate template (v2+) extension.
pub const MS_CERTIFICATE_TEMPLATE: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.21.7");
/// Certificate type name (v1 templates) extension.
pub const MS_CERT_TYPE_NAME: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.20.2");
/// Application policies extension.
pub const MS_APPLICATION_POLICIES: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.21.10");
/// CA version extension.
pub const MS_CA_VERSION: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.21.1");
/// EFS EKU.
pub const MS_KP_EFS: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.10.3.4");
/// User principal name (SAN otherName).
pub const MS_UPN: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.20.2.3");
/// E-mail protection EKU.
pub const KP_EMAIL_PROTECTION: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.4");
/// Client authentication EKU.
pub const KP_CLIENT_AUTH: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.2");
/// Server authentication EKU.
pub const KP_SERVER_AUTH: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.1");
/// PKCS#9 extensionRequest.
pub const PKCS9_EXTENSION_REQUEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.14");
/// PKCS#9 contentType signed attribute.
pub const PKCS9_CONTENT_TYPE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.3");
/// PKCS#9 messageDigest signed attribute.
pub const PKCS9_MESSAGE_DIGEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.4");
/// PKCS#9 emailAddress (deprecated in names, still common).
pub const PKCS9_EMAIL_ADDRESS: Oid = Oid::new_unwrap("1.2.840.113549.1.9.1");
/// rsaEncryption.
pub const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
/// sha1WithRSAEncryption.
pub const SHA1_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.5");
/// sha256WithRSAEncryption.
pub const SHA256_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
/// sha384WithRSAEncryption.
pub const SHA384_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
/// sha512WithRSAEncryption.
pub const SHA512_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
/// id-ecPublicKey.
pub const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
/// ecdsa-with-SHA1.
pub const ECDSA_WITH_SHA1: Oid = Oid::new_unwrap("1.2.840.10045.4.1");
/// ecdsa-with-SHA256.
pub const ECDSA_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
/// ecdsa-with-SHA384.
pub const ECDSA_WITH_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
/// ecdsa-with-SHA512.
pub const ECDSA_WITH_SHA512: Oid = Oid::new_unwrap("1.2.840.10045.4.3.4");
/// NIST P-256.
pub const SECP256R1: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
/// NIST P-384.
pub const SECP384R1: Oid = Oid::new_unwrap("1.3.132.0.34");
/// NIST P-521.
pub const SECP521R1: Oid = Oid::new_unwrap("1.3.132.0.35");
/// SHA-1.
pub const SHA1: Oid = Oid::new_unwrap("1.3.14.3.2.26");
/// SHA-256.
pub const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
/// SHA-384.
pub const SHA384: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.2");
/// SHA-512.
pub const SHA512: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.3");
/// id-ce-subjectKeyIdentifier.
pub const CE_SUBJECT_KEY_IDENTIFIER: Oid = Oid::new_unwrap("2.5.29.14");
/// id-ce-keyUsage.
pub const CE_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.15");
/// id-ce-subjectAltName.
pub const CE_SUBJECT_ALT_NAME: Oid = Oid::new_unwrap("2.5.29.17");
/// id-ce-basicConstraints.
pub const CE_BASIC_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.19");
/// id-ce-extKeyUsage.
pub const CE_EXT_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37");
/// id-at-commonName.
pub const AT_COMMON_NAME: Oid = Oid::new_unwrap("2.5.4.3");
