//! `lockbox demo`: the main job end to end on the embedded database, in a
//! fresh CA home: issuance, approval, archival, recovery, revocation. One
//! function per numbered stage of the printed walk-through.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::{bail, Result};
use clap::Args;
use lockbox_client::{
    build_archival_request, check_exchange_certificate, pki_data, sign_cmc, ArchivalOptions,
    KeyPayload,
};
use lockbox_codec::pem::encode_pem;
use lockbox_crypto::keytransport::KeyTransport;
use lockbox_crypto::symmetric::ContentCipher;
use lockbox_crypto::{KeySpec, SoftwareKey};
use lockbox_engine::certbuild::sign_request;
use lockbox_engine::period::Period;
use lockbox_engine::view::parse_columns;
use lockbox_engine::{Ca, InitOptions, Outcome, SubmitOptions};
use x509_cert::name::Name;

use crate::backend::local_who;
use crate::files::write_secret;
use crate::output::rows_table;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Where to create the demo CA (default: a new temporary directory, kept).
    #[arg(long = "dir", value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Runs the demonstration.
pub async fn run(args: DemoArgs) -> Result<ExitCode> {
    let home = demo_home(args.dir)?;
    let ca = create_ca(&home).await?;
    let alice = alice_enrolls(&ca, &home).await?;
    bob_enrolls_with_cmc(&ca).await?;
    carol_is_refused(&ca).await?;
    let (kra_key, kra_issued) = configure_kra(&ca).await?;
    let dave_key = dave_archives(&ca).await?;
    recover_dave(&ca, &home, &kra_key, &kra_issued, &dave_key).await?;
    revoke_alice(&ca, &home, alice).await?;
    show_database(&ca, &home).await?;
    Ok(ExitCode::SUCCESS)
}

/// The local administrator acting for this command.
fn lb_admin() -> lockbox_engine::Actor {
    lockbox_engine::Actor::local_admin(local_who())
}

/// A request by `requester`, for `template` (None: the request names it).
fn submitted_by(requester: &str, template: Option<&str>) -> SubmitOptions {
    SubmitOptions {
        template: template.map(Into::into),
        requester: requester.into(),
        attributes: vec![],
        actor: None,
        on_behalf_of: None,
        renewing: None,
    }
}

/// The demo's CA home: `dir`, or a new temporary directory (kept); never one holding a CA.
fn demo_home(dir: Option<PathBuf>) -> Result<PathBuf> {
    let home = match dir {
        Some(d) => d,
        None => tempfile::Builder::new()
            .prefix("lockbox-demo-")
            .tempdir()?
            .keep(),
    };
    if home.join(lockbox_engine::config::CONFIG_FILE).exists() {
        bail!(
            "{} already holds a CA; choose another --dir",
            home.display()
        );
    }
    Ok(home)
}

/// Stage 1: A root CA (RSA-2048, SQLite CA database) in `home`.
async fn create_ca(home: &Path) -> Result<Ca> {
    println!(
        "== 1. Create a root CA (RSA-2048, SQLite CA database) in {}",
        home.display()
    );
    let init = Ca::init(InitOptions {
        home: home.to_path_buf(),
        name: "Contoso Demo Root CA".into(),
        subject: Some("CN=Contoso Demo Root CA,O=Contoso".into()),
        key: KeySpec::Rsa2048,
        validity: Period::Years(10),
        subordinate: false,
        passphrase: None,
        passphrase_file: None,
        cdp_urls: vec!["http://127.0.0.1:8443/crl/ca.crl".into()],
        aia_urls: vec![],
        ocsp_urls: vec![],
        delta_cdp_urls: vec![],
        database: None,
        token: None,
    })
    .await?;
    lockbox_engine::config::Home::new(home).write_atomic(
        "admin.token",
        init.admin_token.as_bytes(),
        true,
    )?;
    let ca = Ca::open(home).await?;
    println!("   CA certificate: {}", home.join("certs/ca.pem").display());
    println!(
        "   templates issued: {}",
        ca.ca_templates().await?.join(", ")
    );
    Ok(ca)
}

/// Stage 2: Alice's PKCS#10 request for the User template is issued.
async fn alice_enrolls(ca: &Ca, home: &Path) -> Result<Outcome> {
    let requester = submitted_by("CONTOSO\\alice", Some("User"));
    println!("== 2. Alice submits a PKCS#10 request for the User template");
    let alice_key = SoftwareKey::generate(KeySpec::P256)?;
    let csr = sign_request(
        &alice_key,
        Name::from_str("CN=Alice Example,O=Contoso")?,
        vec![],
    )?;
    let o = ca.submit(&csr, &requester).await?;
    println!(
        "   RequestId {} -> {} (serial {})",
        o.request_id,
        o.disposition.as_str(),
        o.serial.clone().unwrap_or_default()
    );
    let alice_pem = home.join("demo-alice.pem");
    std::fs::write(&alice_pem, o.certificate_pem.clone().unwrap_or_default())?;
    println!("   certificate written to {}", alice_pem.display());
    Ok(o)
}

/// Stage 3: Bob's CMC request names its template (EFS) in regInfo.
async fn bob_enrolls_with_cmc(ca: &Ca) -> Result<()> {
    println!("== 3. Bob submits a CMC Full PKI Request naming the EFS template in regInfo");
    let bob_key = SoftwareKey::generate(KeySpec::Rsa2048)?;
    let bob_csr = sign_request(
        &bob_key,
        Name::from_str("CN=Bob Example,O=Contoso")?,
        vec![],
    )?;
    let cmc = sign_cmc(&bob_key, &pki_data(&[bob_csr], Some("EFS"))?, vec![])?;
    let b = ca.submit(&cmc, &submitted_by("CONTOSO\\bob", None)).await?;
    println!(
        "   RequestId {} -> {} with template {}",
        b.request_id,
        b.disposition.as_str(),
        b.template.clone().unwrap_or_default()
    );
    Ok(())
}

/// Stage 4: An archival template without the key is refused, as AD CS does.
async fn carol_is_refused(ca: &Ca) -> Result<()> {
    println!("== 4. A request for the archival template without a key is refused, as AD CS does");
    let carol_key = SoftwareKey::generate(KeySpec::P256)?;
    let carol = sign_request(&carol_key, Name::from_str("CN=Carol Example")?, vec![])?;
    let refused = ca
        .submit(
            &carol,
            &submitted_by("CONTOSO\\carol", Some("ExchangeUser")),
        )
        .await;
    if let Err(e) = refused {
        println!("   denied: {e} (0x{:08x})", e.code());
    }
    Ok(())
}

/// Stage 5: A Key Recovery Agent enrolls (approval required) and is configured;
/// returns its key and issued certificate.
async fn configure_kra(ca: &Ca) -> Result<(SoftwareKey, Outcome)> {
    println!(
        "== 5. Key archival: a Key Recovery Agent enrolls (approval required) and is configured"
    );
    ca.set_ca_template(&lb_admin(), "KeyRecoveryAgent", true)
        .await?;
    let kra_key = SoftwareKey::generate(KeySpec::Rsa2048)?;
    let kra_csr = sign_request(
        &kra_key,
        Name::from_str("CN=Contoso Recovery Agent")?,
        vec![],
    )?;
    let kra_req = ca
        .submit(
            &kra_csr,
            &submitted_by("CONTOSO\\kra", Some("KeyRecoveryAgent")),
        )
        .await?;
    println!(
        "   RequestId {} -> {}",
        kra_req.request_id,
        kra_req.disposition.as_str()
    );
    let kra_issued = ca.issue(kra_req.request_id, &lb_admin()).await?;
    let kra_status = ca
        .kra_add(
            &lb_admin(),
            kra_issued.serial.clone().unwrap_or_default().as_bytes(),
            None,
            None,
        )
        .await?;
    ca.set_kra_required(&lb_admin(), 1).await?;
    println!(
        "   KRA {} is {}; each archived key is encrypted to 1 agent",
        kra_status.subject, kra_status.status
    );
    Ok((kra_key, kra_issued))
}

/// Stage 6: Dave enrolls for ExchangeUser with his key encrypted to the CA
/// exchange certificate; returns his key.
async fn dave_archives(ca: &Ca) -> Result<SoftwareKey> {
    println!("== 6. Dave enrolls for ExchangeUser: his key travels encrypted to the CA exchange certificate");
    let xchg_der = ca.current_exchange_certificate().await?;
    let xchg = check_exchange_certificate(&xchg_der, &ca.ca_certificate_der()?)?;
    println!(
        "   exchange certificate: {}",
        xchg.tbs_certificate().subject()
    );
    let dave_key = SoftwareKey::generate(KeySpec::Rsa2048)?;
    let dave_csr = sign_request(
        &dave_key,
        Name::from_str("CN=Dave Example,O=Contoso")?,
        vec![],
    )?;
    let opts = ArchivalOptions {
        template: Some("ExchangeUser".into()),
        cipher: ContentCipher::Aes256Cbc,
        transport: KeyTransport::RsaPkcs1v15,
        payload: KeyPayload::KeyBlob,
    };
    let archival_req = build_archival_request(&dave_key, &dave_csr, &xchg, &opts)?;
    let d = ca
        .submit(&archival_req, &submitted_by("CONTOSO\\dave", None))
        .await?;
    println!(
        "   RequestId {} -> {} (key archived: {})",
        d.request_id,
        d.disposition.as_str(),
        d.archived
    );
    Ok(dave_key)
}

/// Stage 7: The certificate manager retrieves Dave's recovery blob; the agent
/// opens it offline and the key matches Dave's.
async fn recover_dave(
    ca: &Ca,
    home: &Path,
    kra_key: &SoftwareKey,
    kra_issued: &Outcome,
    dave_key: &SoftwareKey,
) -> Result<()> {
    println!(
        "== 7. Recovery: the certificate manager retrieves the blob, the agent opens it offline"
    );
    // The agent's key and certificate stay in the demo home (0600), so the
    // same recovery can be run again with the CLI.
    let kra_cert_der = ca.certificate(kra_issued.request_id).await?;
    let kra_key_path = home.join("demo-kra.key");
    let kra_cert_path = home.join("demo-kra.pem");
    write_secret(
        &kra_key_path,
        encode_pem("PRIVATE KEY", kra_key.pkcs8_der()).as_bytes(),
    )?;
    std::fs::write(&kra_cert_path, encode_pem("CERTIFICATE", &kra_cert_der))?;
    let blob = ca.get_key(&lb_admin(), "Dave Example").await?;
    let blob_path = home.join("dave.rec");
    write_secret(&blob_path, &blob.blob)?;
    println!(
        "   getkey \"Dave Example\": serial {}, blob for {} agent(s): {}",
        blob.candidate.serial,
        blob.recipients.len(),
        blob_path.display()
    );
    let recovered = lockbox_client::recover_from_blob(
        &blob.blob,
        &ca.ca_certificate_der()?,
        kra_key,
        &kra_cert_der,
    )?;
    let back = SoftwareKey::from_pkcs8_der(&recovered.pkcs8)?;
    println!(
        "   recoverkey: CA signature checked, key matches Dave's certificate: {}",
        lockbox_crypto::KeyHandle::public_key_info(&back)
            == lockbox_crypto::KeyHandle::public_key_info(dave_key)
    );
    println!(
        "   the same with the CLI: lockbox --home {h} getkey \"Dave Example\" dave.rec && lockbox recoverkey dave.rec dave.pfx --kra-key {k} --kra-cert {c} --ca-cert {h}/certs/ca.pem",
        h = home.display(),
        k = kra_key_path.display(),
        c = kra_cert_path.display(),
    );
    Ok(())
}

/// Stage 8: Alice's certificate is revoked and a CRL published.
async fn revoke_alice(ca: &Ca, home: &Path, alice: Outcome) -> Result<()> {
    println!("== 8. Revoke Alice's certificate and publish a CRL");
    let serial = alice.serial.unwrap_or_default();
    ca.revoke(&serial, 1, &lb_admin()).await?;
    let crl = ca.publish_crl(&lb_admin()).await?;
    let crl_path = home.join("demo.crl");
    std::fs::write(&crl_path, encode_pem("X509 CRL", &crl.der))?;
    println!(
        "   CRL number {} lists {} certificate(s): {}",
        crl.number,
        crl.entries,
        crl_path.display()
    );
    Ok(())
}

/// Stage 9: The CA database, and where to go next.
async fn show_database(ca: &Ca, home: &Path) -> Result<()> {
    println!("== 9. The CA database (lockbox view)");
    let rows = ca.view(&lb_admin(), "", 100).await?;
    let cols = parse_columns(Some(
        "RequestID,Disposition,RequesterName,CertificateTemplate,SerialNumber,CommonName,ArchivedKey",
    ))?;
    print!("{}", rows_table(&rows, &cols));
    println!(
        "\nExplore it: lockbox --home {} view | template list | serve",
        home.display()
    );
    println!(
        "  serve answers https://127.0.0.1:8443/certsrv/ (web enrollment) and /console/ (officers); add a principal first: lockbox --home {} principal add NAME --password-file F",
        home.display()
    );
    Ok(())
}
