//! The client side of enrollment: `request new` builds a CMC request (with
//! --archive, the key encrypted to the CA exchange certificate) and `request
//! accept` checks the CA's response and bundles key and certificate.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::{anyhow, bail, Result};
use clap::Args;
use der::Decode;
use lockbox_client::{
    build_archival_renewal, build_archival_request, check_exchange_certificate, pki_data, sign_cmc,
    sign_cmc_renewal, ArchivalOptions, KeyPayload,
};
use lockbox_codec::cmc::{parse_cmc_request, PkiResponse};
use lockbox_codec::oids;
use lockbox_codec::pem::{decode_all, decode_input, encode_pem};
use lockbox_crypto::cms::{verify_signed_data, VerifiedSignedData};
use lockbox_crypto::digest::sha1;
use lockbox_crypto::keytransport::KeyTransport;
use lockbox_crypto::symmetric::ContentCipher;
use lockbox_crypto::{KeyHandle, KeySpec, SoftwareKey};
use lockbox_engine::certbuild::{decode_certificate, sign_request};
use lockbox_engine::codes;
use lockbox_engine::load_private_key;
use serde_json::json;

use crate::backend::Backend;
use crate::cmc_response::{attr_values, statuses};
use crate::files::{read, write_secret};
use crate::global::Global;

#[derive(Args, Debug)]
pub struct NewRequestArgs {
    /// Template name (sent in CMC regInfo).
    #[arg(long)]
    pub template: String,
    /// Subject DN, e.g. "CN=Alice Example,O=Contoso" (with --renew: the
    /// renewed certificate's, which the CA keeps anyway).
    #[arg(long, required_unless_present = "renew")]
    pub subject: Option<String>,
    /// Renew (re-key) this certificate: the request is signed with its key
    /// (--renew-key) and the CA keeps its subject and template and links the two.
    #[arg(long, value_name = "CERT", requires = "renew_key")]
    pub renew: Option<PathBuf>,
    /// The private key of the certificate being renewed (PKCS#8 PEM/DER,
    /// or a PKCS#12 with LOCKBOX_PFX_PASSWORD).
    #[arg(long = "renew-key", value_name = "FILE", requires = "renew")]
    pub renew_key: Option<PathBuf>,
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

/// The certificate being renewed and its key, which must match.
fn renewed_certificate(
    cert: &Path,
    key: &Path,
) -> Result<(x509_cert::certificate::Certificate, SoftwareKey)> {
    let cert = decode_certificate(&decode_input(&read(cert)?)?.der)?;
    let pass = std::env::var("LOCKBOX_PFX_PASSWORD").ok();
    let key = load_private_key(&read(key)?, pass.as_deref().map(str::as_bytes))?;
    if key.public_key_info() != cert.tbs_certificate().subject_public_key_info() {
        bail!("--renew-key is not the key of the --renew certificate");
    }
    Ok((cert, key))
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

/// `lockbox request new`
pub async fn request_new(g: &Global, b: Box<dyn Backend>, a: NewRequestArgs) -> Result<ExitCode> {
    let spec = KeySpec::from_str(&a.key).map_err(|e| anyhow!("{e}"))?;
    let renewing = match (&a.renew, &a.renew_key) {
        (Some(c), Some(k)) => Some(renewed_certificate(c, k)?),
        _ => None,
    };
    let subject = match (&a.subject, &renewing) {
        (Some(s), _) => {
            lockbox_codec::names::parse_dn(s).map_err(|e| anyhow!("invalid --subject: {e}"))?
        }
        (None, Some((cert, _))) => cert.tbs_certificate().subject().clone(),
        (None, None) => bail!("give --subject (or --renew)"),
    };
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
        match &renewing {
            Some((cert, old)) => build_archival_renewal(&key, &csr, &xchg, &opts, cert, old)?,
            None => build_archival_request(&key, &csr, &xchg, &opts)?,
        }
    } else {
        let pki = pki_data(&[csr], Some(&a.template))?;
        match &renewing {
            Some((cert, old)) => sign_cmc_renewal(old, cert, &pki, vec![])?,
            None => sign_cmc(&key, &pki, vec![])?,
        }
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
    let anchor_path = trust_anchor(g);
    let mut bare = false;
    let (cert_der, chain) = match verify_signed_data(&der) {
        Ok(sd) => from_cmc_response(&sd, anchor_path.as_deref(), a.request.as_deref())?,
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
        check_bare_certificate(&cert, anchor_path.as_deref())?;
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

/// The trusted CA: --ca-cert, else the CA certificate of --home.
fn trust_anchor(g: &Global) -> Option<PathBuf> {
    g.ca_cert.clone().or_else(|| {
        g.home
            .as_ref()
            .map(|h| h.join("certs/ca.pem"))
            .filter(|p| p.exists())
    })
}

/// The issued certificate and the rest of the chain from a CMC response,
/// checked in this order: it is a CMC response, signed by the trusted CA,
/// with a success status, holding the certificate its issued-certificate
/// hash names, issued by that CA, and (with `request`) echoing the request's
/// encrypted-key hash.
fn from_cmc_response(
    sd: &VerifiedSignedData,
    anchor_path: Option<&Path>,
    request: Option<&Path>,
) -> Result<(Vec<u8>, Vec<Vec<u8>>)> {
    if sd.econtent_type != oids::ID_CCT_PKI_RESPONSE {
        bail!("the SignedData is not a CMC response");
    }
    if anchor_path.is_none() {
        bail!("a CMC response is only accepted from a trusted CA: give its certificate with --ca-cert (or the CA home with --home)");
    }
    let trusted = match anchor_path {
        Some(ca_path) => Some(
            lockbox_engine::trust::check_ca_signer_in(
                "the response",
                &sd.signer_certificate,
                &decode_input(&read(ca_path)?)?.der,
                &sd.certificates,
            )
            .map_err(|e| {
                anyhow!("the response is not signed by the trusted CA (--ca-cert): {e}")
            })?,
        ),
        None => None,
    };
    let resp = PkiResponse::from_der(&sd.econtent)?;
    check_status(&resp)?;
    let hashes = attr_values(&resp, oids::MS_ISSUED_CERT_HASH);
    let cert = sd
        .certificates
        .iter()
        .find(|c| hashes.iter().any(|h| h.as_slice() == sha1(c)))
        .cloned()
        .ok_or_else(|| {
            anyhow!("the response holds no certificate matching its issued-certificate hash")
        })?;
    if let Some(ca) = &trusted {
        ca.check_issued("the response", &cert)?;
    }
    if let Some(req_path) = request {
        check_key_hash_echo(&resp, req_path)?;
    }
    let chain: Vec<Vec<u8>> = sd
        .certificates
        .iter()
        .filter(|c| **c != cert)
        .cloned()
        .collect();
    Ok((cert, chain))
}

/// Refuses a response whose CMC status is pending or a failure.
fn check_status(resp: &PkiResponse) -> Result<()> {
    for st in statuses(resp) {
        let st = st?;
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
    Ok(())
}

/// The response must echo the encrypted-key hash of the request sent (when it has one).
fn check_key_hash_echo(resp: &PkiResponse, req_path: &Path) -> Result<()> {
    let req = parse_cmc_request(&decode_input(&read(req_path)?)?.der)?;
    if let Some(sent) = req.encrypted_key_hash {
        if !attr_values(resp, oids::MS_ENCRYPTED_KEY_HASH).contains(&sent) {
            let c = codes::XENROLL_E_RESPONSE_KA_HASH_MISMATCH;
            bail!(
                "the response does not echo the request's encrypted-key hash ({} 0x{c:08x})",
                codes::name(c)
            );
        }
    }
    Ok(())
}

/// A bare certificate too must come from the trusted CA (a CMC response's
/// certificate was checked with the response's signer); without a trusted
/// CA, a warning.
fn check_bare_certificate(
    cert: &x509_cert::certificate::Certificate,
    anchor_path: Option<&Path>,
) -> Result<()> {
    match anchor_path {
        Some(ca_path) => {
            let anchor = decode_certificate(&decode_input(&read(ca_path)?)?.der)?;
            lockbox_engine::verify_issued_by(cert, &anchor).map_err(|e| {
                anyhow!("the certificate is not issued by the trusted CA (--ca-cert): {e}")
            })?;
        }
        None => eprintln!(
            "lockbox: warning: the certificate was not checked against a CA (give --ca-cert)"
        ),
    }
    Ok(())
}
