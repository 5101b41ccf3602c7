//! `lockbox dump FILE`: decode certificates, requests, CMC messages and CMS
//! envelopes; with --privatekey, open an archival request's key offline.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};
use clap::Args;
use der::Decode;
use lockbox_codec::cmc::{parse_cmc_request, CmcRequest, PkiResponse};
use lockbox_codec::oids;
use lockbox_crypto::cms::{
    envelope_recipients, open_envelope, verify_signed_data, OpeningKey, VerifiedSignedData,
};
use lockbox_crypto::digest::sha1;
use lockbox_crypto::{KeyHandle, SoftwareKey};
use lockbox_engine::certbuild::decode_certificate;
use lockbox_engine::load_private_key;
use lockbox_engine::period::rfc3339;
use serde_json::json;

use crate::cmc_response::{attr_values, statuses};
use crate::files::read;
use crate::global::Global;
use crate::output::safe_lines;

#[derive(Args, Debug)]
pub struct DumpArgs {
    /// File to decode: certificate, CSR, CMC request/response, CMS envelope, CRL.
    pub file: PathBuf,
    /// Decrypt and check an archival request's private key (needs --key).
    #[arg(long)]
    pub privatekey: bool,
    /// The CA exchange private key, for --privatekey.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
}

/// `lockbox dump FILE`
pub fn dump(g: &Global, a: DumpArgs) -> Result<ExitCode> {
    let raw = read(&a.file)?;
    // DER, PEM, base64, or a MIME smime.p7m part
    let der = lockbox_engine::recovery::message_der(&raw)?;
    let mut report = serde_json::Map::new();
    let mut lines: Vec<String> = Vec::new();
    if let Ok(cmc) = parse_cmc_request(&der) {
        report.insert("type".into(), json!("CMC request"));
        let subject = cmc.cert_req.info.subject.to_string();
        lines = cmc_request_lines(&cmc, &subject, &a)?;
        report.insert("subject".into(), json!(subject));
    } else if let Ok(sd) = verify_signed_data(&der) {
        report.insert("type".into(), json!("SignedData"));
        lines = signed_data_lines(&sd)?;
    } else if let Ok(r) = envelope_recipients(&der) {
        report.insert("type".into(), json!("EnvelopedData"));
        lines.push("CMS EnvelopedData".into());
        for (issuer, serial, alg) in r {
            lines.push(format!(
                "  Recipient Info: issuer {issuer}, serial {serial}, key transport {alg}"
            ));
        }
    } else if let Ok(cert) = decode_certificate(&der) {
        report.insert("type".into(), json!("certificate"));
        let f = lockbox_engine::cert_fields(&der)?;
        lines.push(format!("Certificate\n  subject: {}\n  issuer: {}\n  serial: {}\n  valid: {} .. {}\n  key: {} {} bits\n  sha1: {}", f.subject, cert.tbs_certificate().issuer(), f.serial, rfc3339(f.not_before), rfc3339(f.not_after), f.key_algorithm, f.key_length, f.thumbprint));
    } else if let Ok(p) = lockbox_codec::request::parse_pkcs10(&der) {
        report.insert("type".into(), json!("PKCS#10"));
        lines.push(format!(
            "PKCS#10 request\n  subject: {}\n  template: {}",
            p.cert_req.info.subject,
            p.template_name.unwrap_or_default()
        ));
    } else {
        bail!(
            "{}: not a certificate, PKCS#10, CMC request/response or CMS envelope",
            a.file.display()
        );
    }
    if g.json {
        report.insert("lines".into(), json!(lines));
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for l in lines {
            println!("{}", safe_lines(&l));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A CMC request: its PKCS#10, signer, regInfo, encrypted-key hash and
/// archived key (checked offline with --privatekey).
fn cmc_request_lines(cmc: &CmcRequest, subject: &str, a: &DumpArgs) -> Result<Vec<String>> {
    let mut lines: Vec<String> = Vec::new();
    lines.push("CMC Full PKI Request".into());
    lines.push(format!(
        "  PKCS#10 subject: {subject} (body part {})",
        cmc.body_part_id
    ));
    lines.push(format!(
        "  signer digest: {}, signature: {}",
        cmc.signer.digest_alg.oid, cmc.signer.signature_algorithm.oid
    ));
    for (k, v) in &cmc.reg_info {
        lines.push(format!("  regInfo {k} = {v}"));
    }
    if let Some(h) = &cmc.encrypted_key_hash {
        lines.push(format!(
            "  encrypted key hash (1.3.6.1.4.1.311.21.21): {}",
            hex::encode(h)
        ));
    }
    match &cmc.archived_key {
        Some(env) => {
            lines.push("  archived key (1.3.6.1.4.1.311.21.13): EnvelopedData".into());
            for (issuer, serial, alg) in envelope_recipients(env).map_err(|e| anyhow!("{e}"))? {
                lines.push(format!(
                    "    Recipient Info: issuer {issuer}, serial {serial}, key transport {alg}"
                ));
            }
            if a.privatekey {
                lines.extend(check_archived_key(cmc, env, a.key.as_deref())?);
            }
        }
        None => lines.push("  no archived key".into()),
    }
    Ok(lines)
}

/// A verified SignedData: for a CMC response its statuses and hashes, then its certificates.
fn signed_data_lines(sd: &VerifiedSignedData) -> Result<Vec<String>> {
    let mut lines: Vec<String> = Vec::new();
    lines.push(format!(
        "CMS SignedData (content {}), signature verifies",
        sd.econtent_type
    ));
    if sd.econtent_type == oids::ID_CCT_PKI_RESPONSE {
        let resp = PkiResponse::from_der(&sd.econtent)?;
        for st in statuses(&resp) {
            let st = st?;
            lines.push(format!(
                "  CMC status {} ({})",
                st.cmc_status,
                st.status_string.unwrap_or_default()
            ));
        }
        for h in attr_values(&resp, oids::MS_ISSUED_CERT_HASH) {
            lines.push(format!("  issued certificate hash: {}", hex::encode(h)));
        }
        for h in attr_values(&resp, oids::MS_ENCRYPTED_KEY_HASH) {
            lines.push(format!("  encrypted key hash: {}", hex::encode(h)));
        }
    }
    for c in &sd.certificates {
        if let Ok(cert) = decode_certificate(c) {
            lines.push(format!(
                "  certificate: {} (sha1 {})",
                cert.tbs_certificate().subject(),
                hex::encode(sha1(c))
            ));
        }
    }
    Ok(lines)
}

/// certutil -privatekey -dump: decrypt the archived key offline and check it, step by step.
fn check_archived_key(
    cmc: &CmcRequest,
    env: &[u8],
    key_path: Option<&Path>,
) -> Result<Vec<String>> {
    let path = key_path.ok_or_else(|| anyhow!("--privatekey needs --key EXCHANGE_KEY.pem"))?;
    let bytes = zeroize::Zeroizing::new(read(path)?);
    let pass = std::env::var(lockbox_engine::config::PASSPHRASE_ENV)
        .ok()
        .map(String::into_bytes);
    let key = load_private_key(&bytes, pass.as_deref())?;
    let mut out = Vec::new();
    let sha1_ok = cmc.encrypted_key_hash.as_deref() == Some(sha1(env).as_slice());
    let req_ok = lockbox_crypto::digest::digest_by_oid(&cmc.signer.digest_alg.oid, env).ok()
        == cmc.encrypted_key_hash;
    out.push(format!(
        "  [{}] encrypted key hash matches the envelope",
        if sha1_ok || req_ok { "ok" } else { "FAIL" }
    ));
    let ed = lockbox_crypto::cms::decode_envelope(env).map_err(|e| anyhow!("{e}"))?;
    let mut plain = None;
    for info in ed.recip_infos.0.iter() {
        if let cms::enveloped_data::RecipientInfo::Ktri(k) = info {
            if let cms::enveloped_data::RecipientIdentifier::IssuerAndSerialNumber(ias) = &k.rid {
                if let Ok(p) = open_envelope(
                    env,
                    &[OpeningKey {
                        issuer: &ias.issuer,
                        serial: &ias.serial_number,
                        key: &key,
                    }],
                ) {
                    plain = Some(p);
                    break;
                }
            }
        }
    }
    let Some(plain) = plain else {
        out.push("  [FAIL] the envelope does not decrypt with this key".into());
        return Ok(out);
    };
    out.push("  [ok] envelope decrypted with the exchange key".into());
    let pkcs8 = if lockbox_codec::keyblob::is_private_key_blob(&plain) {
        let blob = lockbox_codec::keyblob::parse_private_key_blob(&plain)?;
        out.push(format!(
            "  [ok] PRIVATEKEYBLOB, {} bits, {}",
            blob.bits,
            if blob.key_alg == lockbox_codec::keyblob::CALG_RSA_SIGN {
                "CALG_RSA_SIGN (signature key: would be refused)"
            } else {
                "CALG_RSA_KEYX"
            }
        ));
        zeroize::Zeroizing::new(lockbox_codec::keyblob::blob_to_pkcs8(&blob)?)
    } else {
        out.push("  [ok] PKCS#8 private key".into());
        plain
    };
    let archived = SoftwareKey::from_pkcs8_der(&pkcs8)?;
    let matches = archived.public_key_info() == &cmc.cert_req.info.public_key;
    out.push(format!(
        "  [{}] private key matches the PKCS#10 public key",
        if matches { "ok" } else { "FAIL" }
    ));
    Ok(out)
}
