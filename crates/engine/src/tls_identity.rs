//! The server's own TLS identity, issued by the CA.

use der::Encode;
use lockbox_codec::oids;
use lockbox_codec::pem::{decode_input, encode_pem};
use lockbox_crypto::random::serial_number;
use lockbox_crypto::{KeyHandle, KeySpec, PrivateKey};
use lockbox_store::{CertFields, Disposition, NewRequest};
use x509_cert::certificate::Certificate;
use x509_cert::name::Name;
use zeroize::Zeroizing;

use crate::category::{AuditAction, AuditCategory};
use crate::certbuild::{aki, sign_certificate, sign_request, ski, template_extensions, CertSpec};
use crate::certs::{cert_fields, key_pem, subject_name};
use crate::core::Core;
use crate::period::{now, unix_of, Period};
use crate::template::builtins;
use crate::{EngineError, EngineResult};

pub(crate) fn server_alt_names(
    hosts: &[String],
) -> EngineResult<x509_cert::ext::pkix::SubjectAltName> {
    use x509_cert::ext::pkix::name::GeneralName;
    let mut names = Vec::new();
    for h in hosts {
        if let Ok(ip) = h.parse::<std::net::IpAddr>() {
            let bytes = match ip {
                std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
                std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            names.push(GeneralName::IpAddress(
                der::asn1::OctetString::new(bytes)
                    .map_err(|e| EngineError::Config(e.to_string()))?,
            ));
        } else {
            names.push(GeneralName::DnsName(der::asn1::Ia5String::new(h).map_err(
                |_| EngineError::Config(format!("host '{h}' is not ASCII")),
            )?));
        }
    }
    Ok(x509_cert::ext::pkix::SubjectAltName(names))
}

/// Issues (or reuses) the TLS server certificate for `lockbox serve`.
/// Returns (certificate chain PEM, private key PEM).
pub(crate) async fn server_tls_identity(
    core: &Core,
    hosts: &[String],
) -> EngineResult<(String, Zeroizing<String>)> {
    let cert_rel = "tls/server.pem";
    let key_rel = "tls/server.key";
    if let Some(current) = current_identity(core, hosts, cert_rel, key_rel) {
        return Ok(current);
    }
    let (_, ca) = core.ca_cert()?;
    let signer = core.signing_key()?;
    let tls_key = core.keys.generate(KeySpec::P256, "tls")?;
    let cn = hosts.first().cloned().unwrap_or_else(|| "localhost".into());
    let subject = subject_name(&format!("CN={cn}"))?;
    let csr = sign_request(&*tls_key, subject.clone(), vec![])?;
    let (cert, issued_at) = sign_tls_certificate(ca, signer.as_ref(), &*tls_key, subject, hosts)?;
    let der = cert
        .to_der()
        .map_err(|e| EngineError::Config(e.to_string()))?;
    let fields = cert_fields(&der)?;
    record_tls_certificate(core, csr, fields, hosts, issued_at).await?;
    let _ = crate::audit::heads::maybe_sign_head(core).await;
    let mut chain_pem = encode_pem("CERTIFICATE", &der);
    for c in core.chain_der()? {
        chain_pem.push_str(&encode_pem("CERTIFICATE", &c));
    }
    let key_pem = key_pem(&*tls_key, None)?;
    core.home.write_atomic(key_rel, key_pem.as_bytes(), true)?;
    core.home
        .write_atomic(cert_rel, chain_pem.as_bytes(), false)?;
    core.home
        .write_atomic("tls/hosts", hosts.join(",").as_bytes(), false)?;
    Ok((chain_pem, key_pem))
}

/// The current identity when it is still good for a week and names the same hosts.
fn current_identity(
    core: &Core,
    hosts: &[String],
    cert_rel: &str,
    key_rel: &str,
) -> Option<(String, Zeroizing<String>)> {
    let (Ok(c), Ok(k)) = (core.home.read(cert_rel), core.home.read(key_rel)) else {
        return None;
    };
    let still_good = decode_input(&c)
        .ok()
        .and_then(|d| cert_fields(&d.der).ok())
        .is_some_and(|f| f.not_after > now() + 7 * 86_400);
    let marker = core.home.read("tls/hosts").unwrap_or_default();
    if still_good && marker == hosts.join(",").as_bytes() {
        return Some((
            String::from_utf8_lossy(&c).into_owned(),
            Zeroizing::new(String::from_utf8_lossy(&k).into_owned()),
        ));
    }
    None
}

/// Signs the service certificate (WebServer template, 90 days, the hosts as
/// DNS/IP names); returns it with its issue time.
fn sign_tls_certificate(
    ca: &Certificate,
    signer: &dyn KeyHandle,
    tls_key: &dyn PrivateKey,
    subject: Name,
    hosts: &[String],
) -> EngineResult<(Certificate, i64)> {
    let mut template = builtins()
        .into_iter()
        .find(|t| t.name == "WebServer")
        .ok_or_else(|| EngineError::Config("WebServer template missing".into()))?;
    template.validity = Period::Days(90);
    let mut exts = template_extensions(&template, true)?;
    exts.push(ski(tls_key.public_key_info())?);
    exts.push(aki(ca.tbs_certificate().subject_public_key_info())?);
    exts.push(crate::certbuild::extension(
        oids::CE_SUBJECT_ALT_NAME,
        false,
        &server_alt_names(hosts)?,
    )?);
    let issued_at = now();
    let cert = sign_certificate(
        signer,
        CertSpec {
            issuer: ca.tbs_certificate().subject().clone(),
            subject,
            spki: tls_key.public_key_info().clone(),
            serial: serial_number(16)?,
            not_before: issued_at - 600,
            not_after: template
                .validity
                .add_to(issued_at)?
                .min(unix_of(&ca.tbs_certificate().validity().not_after)),
            extensions: exts,
        },
    )?;
    Ok((cert, issued_at))
}

/// The issued row of the service certificate, audited like any issuance.
async fn record_tls_certificate(
    core: &Core,
    csr: Vec<u8>,
    fields: CertFields,
    hosts: &[String],
    issued_at: i64,
) -> EngineResult<()> {
    // The service's own certificate is audited like any issuance.
    let audit = crate::audit::chain::audited(
        core,
        vec![lockbox_store::AuditEntry {
            at: issued_at,
            actor: "lockbox serve".into(),
            category: AuditCategory::Requests.as_str().into(),
            action: AuditAction::TlsServerCertificateIssued.as_str().into(),
            target: "{request_id}".into(),
            outcome: "success".into(),
            details: serde_json::json!({
                "template": "WebServer",
                "serial": fields.serial,
                "hosts": hosts,
                "not_after": fields.not_after,
            })
            .to_string(),
        }],
    )
    .await;
    core.store
        .insert_request(
            &NewRequest {
                request_der: csr,
                request_kind: "pkcs10".into(),
                requester: "lockbox serve".into(),
                template: Some("WebServer".into()),
                request_subject: fields.subject.clone(),
                request_common_name: fields.common_name.clone(),
                request_upn: None,
                request_email: None,
                disposition: Disposition::Issued,
                disposition_message: "Issued (HTTPS service certificate)".into(),
                status_code: 0,
                submitted_at: issued_at,
                cert: Some(fields),
                archived_key: None,
                kra_hashes: None,
                renewal_of: None,
            },
            &audit,
        )
        .await?;
    Ok(())
}
