//! Archival client and key tools: `kra`, `request new|accept`, `verifykeys`, `dump`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use der::Decode;
use lockbox_codec::cmc::{parse_cmc_request, CmcAddAttributes, CmcStatusInfo, PkiResponse};
use lockbox_codec::oids;
use lockbox_codec::pem::{decode_all, decode_input, encode_pem};
use lockbox_crypto::cms::{envelope_recipients, open_envelope, verify_signed_data, OpeningKey};
use lockbox_crypto::digest::sha1;
use lockbox_crypto::keytransport::KeyTransport;
use lockbox_crypto::symmetric::ContentCipher;
use lockbox_crypto::{KeyHandle, KeySpec, SoftwareKey};
use lockbox_engine::ca::load_private_key;
use lockbox_engine::certbuild::{decode_certificate, sign_request};
use lockbox_engine::client::{
    build_archival_request, check_exchange_certificate, pki_data, sign_cmc, ArchivalOptions,
    KeyPayload,
};
use lockbox_engine::codes;
use lockbox_engine::period::rfc3339;
use serde_json::json;

use crate::backend::Backend;
use crate::output::{safe, safe_lines};
use crate::Global;

#[derive(Subcommand, Debug)]
pub enum KraCmd {
    /// Add a KRA certificate: a certificate file, or the serial number of a certificate this CA issued.
    Add {
        /// CERTFILE or SERIAL.
        cert: String,
        /// For a KRA certificate of another CA: its chain up to the root (PEM).
        #[arg(long, value_name = "FILE")]
        chain: Option<PathBuf>,
        /// For a KRA certificate of another CA: its issuer's CRL (file path or http:// URL).
        #[arg(long, value_name = "FILE|URL")]
        crl: Option<String>,
    },
    /// Remove a KRA certificate (thumbprint or serial). Refused when it is the
    /// last configured agent able to open some archived keys (they are listed).
    Remove {
        id: String,
        /// Remove it even though some archived keys then have no configured agent.
        #[arg(long)]
        force: bool,
    },
    /// List the configured KRA certificates and their status.
    List,
    /// Set how many KRAs each archived key is encrypted to.
    Required { n: usize },
}

#[derive(Args, Debug)]
pub struct NewRequestArgs {
    /// Template name (sent in CMC regInfo).
    #[arg(long)]
    pub template: String,
    /// Subject DN, e.g. "CN=Alice Example,O=Contoso".
    #[arg(long)]
    pub subject: String,
    /// Encrypt the private key to the CA exchange certificate for archival.
    #[arg(long)]
    pub archive: bool,
    /// Key algorithm: rsa2048, rsa3072, rsa4096, p256, p384.
    #[arg(long, default_value = "rsa2048")]
    pub key: String,
    /// Write the request here (DER CMC).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Write the new private key here (PKCS#8 PEM, mode 0600).
    #[arg(long = "key-out", value_name = "FILE")]
    pub key_out: PathBuf,
    /// 3DES content encryption, for old CAs (default AES-256).
    #[arg(long = "3des")]
    pub des3: bool,
    /// Send an RSA key as a Microsoft PRIVATEKEYBLOB, as Windows does (default PKCS#8).
    #[arg(long)]
    pub keyblob: bool,
    /// Key transport to the exchange key: pkcs1 (default), oaep, oaep-sha256.
    #[arg(long, default_value = "pkcs1")]
    pub transport: String,
}

#[derive(Args, Debug)]
pub struct AcceptArgs {
    /// The CMC response (or a certificate) from the CA.
    pub response: PathBuf,
    /// The private key written by `request new`.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// Where to write the PKCS#12.
    #[arg(long = "pfx-out", value_name = "FILE")]
    pub pfx_out: PathBuf,
    /// PKCS#12 password (or LOCKBOX_PFX_PASSWORD).
    #[arg(
        short = 'p',
        long,
        env = "LOCKBOX_PFX_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
    /// The request sent, to check the response echoes its encrypted-key hash.
    #[arg(long, value_name = "FILE")]
    pub request: Option<PathBuf>,
    /// 3DES/SHA-1 PKCS#12 for old Windows.
    #[arg(long)]
    pub legacy: bool,
}

#[derive(Args, Debug)]
pub struct VerifyKeysArgs {
    /// Private key (PKCS#8 PEM/DER).
    pub key: PathBuf,
    /// Certificate.
    pub cert: PathBuf,
}

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

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Writes a file only its owner can read (keys, PKCS#12 files, recovery blobs).
pub(crate) fn write_secret(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    // An existing file keeps its mode on open: restrict it before writing.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = f.metadata().map(|m| m.permissions().mode()).unwrap_or(0);
        if mode & 0o077 != 0 {
            f.set_permissions(std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("restricting {}", path.display()))?;
        }
    }
    f.write_all(data)
        .with_context(|| format!("writing {}", path.display()))
}

/// `lockbox kra ...`
pub async fn kra(g: &Global, b: Box<dyn Backend>, cmd: KraCmd) -> Result<ExitCode> {
    match cmd {
        KraCmd::Add { cert, chain, crl } => {
            let chain = chain.map(|p| read(&p)).transpose()?;
            let bytes = match std::fs::read(&cert) {
                Ok(b) => b,
                Err(_) if lockbox_codec::hexfmt::normalize_hex(&cert).is_some() => {
                    cert.into_bytes()
                }
                Err(e) => bail!("reading {cert}: {e}"),
            };
            let k = b.kra_add(bytes, chain, crl).await?;
            if g.json {
                println!("{}", serde_json::to_string_pretty(&k)?);
            } else {
                println!(
                    "Added KRA certificate {} ({}): {}",
                    k.thumbprint,
                    safe(&k.subject),
                    k.status
                );
            }
        }
        KraCmd::Remove { id, force } => {
            let t = b.kra_remove(&id, force).await?;
            if g.json {
                println!("{}", json!({ "removed": t }))
            } else {
                println!("Removed KRA certificate {t}")
            }
        }
        KraCmd::List => {
            let list = b.kra_list().await?;
            let required = b.kra_required(None).await?;
            if g.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &json!({ "required": required, "certificates": list })
                    )?
                );
            } else {
                println!("Key recovery agents required per key: {required}");
                for k in &list {
                    println!(
                        "{}  {:<28} serial {}  expires {}  {}",
                        k.thumbprint,
                        k.status,
                        k.serial,
                        rfc3339(k.not_after),
                        safe(&k.subject)
                    );
                }
                println!(
                    "{} KRA certificate(s), {} valid",
                    list.len(),
                    list.iter().filter(|k| k.status == "valid").count()
                );
            }
        }
        KraCmd::Required { n } => {
            let v = b.kra_required(Some(n)).await?;
            if g.json {
                println!("{}", json!({ "required": v }))
            } else {
                println!("Each archived key is encrypted to {v} KRA(s)")
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `lockbox request new`
pub async fn request_new(g: &Global, b: Box<dyn Backend>, a: NewRequestArgs) -> Result<ExitCode> {
    let spec = KeySpec::from_str(&a.key).map_err(|e| anyhow!("{e}"))?;
    let subject = lockbox_codec::names::parse_dn(&a.subject)
        .map_err(|e| anyhow!("invalid --subject: {e}"))?;
    let key = SoftwareKey::generate(spec)?;
    let csr = sign_request(&key, subject, vec![])?;
    let request = if a.archive {
        let ca_der = b.ca_cert().await?;
        let xchg_der = b.exchange_cert().await?;
        let xchg = check_exchange_certificate(&xchg_der, &ca_der)?;
        let payload = if a.keyblob {
            if !key.is_rsa() {
                bail!("--keyblob needs an RSA key");
            }
            KeyPayload::KeyBlob
        } else {
            KeyPayload::Pkcs8
        };
        let opts = ArchivalOptions {
            template: Some(a.template.clone()),
            cipher: if a.des3 {
                ContentCipher::DesEde3Cbc
            } else {
                ContentCipher::Aes256Cbc
            },
            transport: KeyTransport::parse(&a.transport)?,
            payload,
        };
        build_archival_request(&key, &csr, &xchg, &opts)?
    } else {
        sign_cmc(&key, &pki_data(&[csr], Some(&a.template))?, vec![])?
    };
    write_secret(
        &a.key_out,
        encode_pem("PRIVATE KEY", key.pkcs8_der()).as_bytes(),
    )?;
    // An archival request carries the private key (encrypted to the CA): owner-only like the key.
    write_secret(&a.out, &request)?;
    if g.json {
        println!(
            "{}",
            json!({ "request": a.out, "key": a.key_out, "archive": a.archive, "template": a.template })
        );
    } else {
        println!(
            "CMC request written to {} (key {}{})",
            a.out.display(),
            a.key_out.display(),
            if a.archive {
                ", encrypted to the CA exchange certificate"
            } else {
                ""
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn attr_values(resp: &PkiResponse, oid: der::asn1::ObjectIdentifier) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for c in resp
        .control_sequence
        .iter()
        .filter(|c| c.attr_type == oids::MS_CMC_ADD_ATTRIBUTES)
    {
        for v in c.attr_values.iter() {
            if let Ok(add) = v.decode_as::<CmcAddAttributes>() {
                for a in add.attributes.iter().filter(|a| a.oid == oid) {
                    for val in a.values.iter() {
                        if let Ok(os) = val.decode_as::<der::asn1::OctetString>() {
                            out.push(os.as_bytes().to_vec());
                        }
                    }
                }
            }
        }
    }
    out
}

/// `lockbox request accept`
pub async fn request_accept(g: &Global, a: AcceptArgs) -> Result<ExitCode> {
    let password = a
        .password
        .clone()
        .ok_or_else(|| anyhow!("give the PKCS#12 password with -p or LOCKBOX_PFX_PASSWORD"))?;
    let key_bytes = zeroize::Zeroizing::new(read(&a.key)?);
    let key = load_private_key(&key_bytes, None)?;
    let raw = read(&a.response)?;
    let der = decode_input(&raw)?.der;
    // The trusted CA: --ca-cert, else the CA certificate of --home.
    let anchor_path = g.ca_cert.clone().or_else(|| {
        g.home
            .as_ref()
            .map(|h| h.join("certs/ca.pem"))
            .filter(|p| p.exists())
    });
    let mut bare = false;
    let (cert_der, chain) = match verify_signed_data(&der) {
        Ok(sd) => {
            if sd.econtent_type != oids::ID_CCT_PKI_RESPONSE {
                bail!("the SignedData is not a CMC response");
            }
            if anchor_path.is_none() {
                bail!("a CMC response is only accepted from a trusted CA: give its certificate with --ca-cert (or the CA home with --home)");
            }
            let trusted = match &anchor_path {
                Some(ca_path) => Some(
                    lockbox_engine::trust::check_ca_signer(
                        "the response",
                        &sd.signer_certificate,
                        &decode_input(&read(ca_path)?)?.der,
                    )
                    .map_err(|e| {
                        anyhow!("the response is not signed by the trusted CA (--ca-cert): {e}")
                    })?,
                ),
                None => None,
            };
            let resp = PkiResponse::from_der(&sd.econtent)?;
            for c in resp
                .control_sequence
                .iter()
                .filter(|c| c.attr_type == oids::ID_CMC_STATUS_INFO)
            {
                for v in c.attr_values.iter() {
                    let st: CmcStatusInfo = v.decode_as()?;
                    match st.cmc_status {
                        0 => {}
                        3 => bail!(
                            "the request is pending: {}",
                            st.status_string.unwrap_or_default()
                        ),
                        _ => bail!(
                            "the CA refused the request: {}",
                            st.status_string.unwrap_or_default()
                        ),
                    }
                }
            }
            let hashes = attr_values(&resp, oids::MS_ISSUED_CERT_HASH);
            let cert = sd
                .certificates
                .iter()
                .find(|c| hashes.iter().any(|h| h.as_slice() == sha1(c)))
                .cloned()
                .ok_or_else(|| {
                    anyhow!(
                        "the response holds no certificate matching its issued-certificate hash"
                    )
                })?;
            if let Some(ca) = &trusted {
                ca.check_issued("the response", &cert)?;
            }
            if let Some(req_path) = &a.request {
                let req = parse_cmc_request(&decode_input(&read(req_path)?)?.der)?;
                if let Some(sent) = req.encrypted_key_hash {
                    if !attr_values(&resp, oids::MS_ENCRYPTED_KEY_HASH).contains(&sent) {
                        let c = codes::XENROLL_E_RESPONSE_KA_HASH_MISMATCH;
                        bail!(
                            "the response does not echo the request's encrypted-key hash ({} 0x{c:08x})",
                            codes::name(c)
                        );
                    }
                }
            }
            let chain: Vec<Vec<u8>> = sd
                .certificates
                .iter()
                .filter(|c| **c != cert)
                .cloned()
                .collect();
            (cert, chain)
        }
        Err(_) => (
            {
                bare = true;
                der
            },
            decode_all(&String::from_utf8_lossy(&raw), "CERTIFICATE")
                .unwrap_or_default()
                .into_iter()
                .skip(1)
                .collect(),
        ),
    };
    let cert = decode_certificate(&cert_der)?;
    if bare {
        // A bare certificate too must come from the trusted CA (a CMC
        // response's certificate was checked with the response's signer).
        match &anchor_path {
            Some(ca_path) => {
                let anchor = decode_certificate(&decode_input(&read(ca_path)?)?.der)?;
                lockbox_engine::ca::verify_issued_by(&cert, &anchor).map_err(|e| {
                    anyhow!("the certificate is not issued by the trusted CA (--ca-cert): {e}")
                })?;
            }
            None => eprintln!(
                "lockbox: warning: the certificate was not checked against a CA (give --ca-cert)"
            ),
        }
    }
    if cert.tbs_certificate().subject_public_key_info() != key.public_key_info() {
        bail!("the certificate is not for this private key");
    }
    let mut all = vec![cert_der];
    all.extend(chain);
    let pfx = lockbox_crypto::pkcs12::write_pfx(key.pkcs8_der(), &all, &password, a.legacy)?;
    write_secret(&a.pfx_out, &pfx)?;
    if g.json {
        println!("{}", json!({ "pfx": a.pfx_out, "certificates": all.len() }));
    } else {
        println!(
            "PKCS#12 with the key and {} certificate(s) written to {}",
            all.len(),
            a.pfx_out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `lockbox verifykeys KEY CERT`
pub fn verifykeys(g: &Global, a: VerifyKeysArgs) -> Result<ExitCode> {
    let key_bytes = zeroize::Zeroizing::new(read(&a.key)?);
    let key = load_private_key(&key_bytes, None)?;
    let cert = decode_certificate(&decode_input(&read(&a.cert)?)?.der)?;
    let probe = lockbox_crypto::random::random_bytes(32)?;
    let sig = key.sign(&probe)?;
    let ok = cert.tbs_certificate().subject_public_key_info() == key.public_key_info()
        && lockbox_crypto::verify::verify_signature(
            cert.tbs_certificate().subject_public_key_info(),
            &key.signature_algorithm(),
            &probe,
            &sig,
        )
        .is_ok();
    if g.json {
        println!("{}", json!({ "match": ok }));
    } else if ok {
        println!("The private key matches the certificate's public key.");
    } else {
        println!("The private key does NOT match the certificate.");
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
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
        lines.push("CMC Full PKI Request".into());
        let subject = cmc.cert_req.info.subject.to_string();
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
                    lines.extend(check_archived_key(&cmc, env, a.key.as_deref())?);
                }
            }
            None => lines.push("  no archived key".into()),
        }
        report.insert("subject".into(), json!(subject));
    } else if let Ok(sd) = verify_signed_data(&der) {
        report.insert("type".into(), json!("SignedData"));
        lines.push(format!(
            "CMS SignedData (content {}), signature verifies",
            sd.econtent_type
        ));
        if sd.econtent_type == oids::ID_CCT_PKI_RESPONSE {
            let resp = PkiResponse::from_der(&sd.econtent)?;
            for c in resp
                .control_sequence
                .iter()
                .filter(|c| c.attr_type == oids::ID_CMC_STATUS_INFO)
            {
                for v in c.attr_values.iter() {
                    let st: CmcStatusInfo = v.decode_as()?;
                    lines.push(format!(
                        "  CMC status {} ({})",
                        st.cmc_status,
                        st.status_string.unwrap_or_default()
                    ));
                }
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
        let f = lockbox_engine::ca::cert_fields(&der)?;
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

/// certutil -privatekey -dump: decrypt the archived key offline and check it, step by step.
fn check_archived_key(
    cmc: &lockbox_codec::cmc::CmcRequest,
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
