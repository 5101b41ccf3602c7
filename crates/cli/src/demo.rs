//! `lockbox demo`: the main job end to end on the embedded database, in a
//! fresh CA home: issuance, approval, archival, recovery, revocation.

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::{bail, Result};
use clap::Args;
use lockbox_codec::pem::encode_pem;
use lockbox_crypto::keytransport::KeyTransport;
use lockbox_crypto::symmetric::ContentCipher;
use lockbox_crypto::{KeySpec, SoftwareKey};
use lockbox_engine::certbuild::sign_request;
use lockbox_engine::client::{
    build_archival_request, check_exchange_certificate, pki_data, sign_cmc, ArchivalOptions,
    KeyPayload,
};
use lockbox_engine::period::Period;
use lockbox_engine::view::parse_columns;
use lockbox_engine::{Ca, InitOptions, SubmitOptions};
use x509_cert::name::Name;

use crate::output::rows_table;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Where to create the demo CA (default: a new temporary directory, kept).
    #[arg(long = "dir", value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Runs the demonstration.
pub async fn run(args: DemoArgs) -> Result<ExitCode> {
    let home = match args.dir {
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
    println!(
        "== 1. Create a root CA (RSA-2048, SQLite CA database) in {}",
        home.display()
    );
    let init = Ca::init(InitOptions {
        home: home.clone(),
        name: "Contoso Demo Root CA".into(),
        subject: Some("CN=Contoso Demo Root CA,O=Contoso".into()),
        key: KeySpec::Rsa2048,
        validity: Period::Years(10),
        subordinate: false,
        passphrase: None,
        passphrase_file: None,
        cdp_urls: vec!["http://127.0.0.1:8443/crl/ca.crl".into()],
        aia_urls: vec![],
    })
    .await?;
    lockbox_engine::config::Home::new(&home).write_atomic(
        "admin.token",
        init.admin_token.as_bytes(),
        true,
    )?;
    let ca = Ca::open(&home).await?;
    println!("   CA certificate: {}", home.join("certs/ca.pem").display());
    println!(
        "   templates issued: {}",
        ca.ca_templates().await?.join(", ")
    );

    let requester = SubmitOptions {
        template: Some("User".into()),
        requester: "CONTOSO\\alice".into(),
        attributes: vec![],
        actor: None,
        on_behalf_of: None,
    };
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

    println!("== 3. Bob submits a CMC Full PKI Request naming the EFS template in regInfo");
    let bob_key = SoftwareKey::generate(KeySpec::Rsa2048)?;
    let bob_csr = sign_request(
        &bob_key,
        Name::from_str("CN=Bob Example,O=Contoso")?,
        vec![],
    )?;
    let cmc = sign_cmc(&bob_key, &pki_data(&[bob_csr], Some("EFS"))?, vec![])?;
    let b = ca
        .submit(
            &cmc,
            &SubmitOptions {
                template: None,
                requester: "CONTOSO\\bob".into(),
                attributes: vec![],
                actor: None,
                on_behalf_of: None,
            },
        )
        .await?;
    println!(
        "   RequestId {} -> {} with template {}",
        b.request_id,
        b.disposition.as_str(),
        b.template.clone().unwrap_or_default()
    );

    println!("== 4. A request for the archival template without a key is refused, as AD CS does");
    let carol_key = SoftwareKey::generate(KeySpec::P256)?;
    let carol = sign_request(&carol_key, Name::from_str("CN=Carol Example")?, vec![])?;
    let refused = ca
        .submit(
            &carol,
            &SubmitOptions {
                template: Some("ExchangeUser".into()),
                requester: "CONTOSO\\carol".into(),
                attributes: vec![],
                actor: None,
                on_behalf_of: None,
            },
        )
        .await;
    if let Err(e) = refused {
        println!("   denied: {e} (0x{:08x})", e.code());
    }

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
            &SubmitOptions {
                template: Some("KeyRecoveryAgent".into()),
                requester: "CONTOSO\\kra".into(),
                attributes: vec![],
                actor: None,
                on_behalf_of: None,
            },
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
        .submit(
            &archival_req,
            &SubmitOptions {
                template: None,
                requester: "CONTOSO\\dave".into(),
                attributes: vec![],
                actor: None,
                on_behalf_of: None,
            },
        )
        .await?;
    println!(
        "   RequestId {} -> {} (key archived: {})",
        d.request_id,
        d.disposition.as_str(),
        d.archived
    );

    println!(
        "== 7. Recovery: the certificate manager retrieves the blob, the agent opens it offline"
    );
    // The agent's key and certificate stay in the demo home (0600), so the
    // same recovery can be run again with the CLI.
    let kra_cert_der = ca.certificate(kra_issued.request_id).await?;
    let kra_key_path = home.join("demo-kra.key");
    let kra_cert_path = home.join("demo-kra.pem");
    crate::keys::write_secret(
        &kra_key_path,
        encode_pem("PRIVATE KEY", kra_key.pkcs8_der()).as_bytes(),
    )?;
    std::fs::write(&kra_cert_path, encode_pem("CERTIFICATE", &kra_cert_der))?;
    let blob = ca.get_key(&lb_admin(), "Dave Example").await?;
    let blob_path = home.join("dave.rec");
    std::fs::write(&blob_path, &blob.blob)?;
    println!(
        "   getkey \"Dave Example\": serial {}, blob for {} agent(s): {}",
        blob.candidate.serial,
        blob.recipients.len(),
        blob_path.display()
    );
    let recovered = lockbox_engine::recovery::recover_from_blob(
        &blob.blob,
        &ca.ca_certificate_der()?,
        &kra_key,
        &kra_cert_der,
    )?;
    let back = SoftwareKey::from_pkcs8_der(&recovered.pkcs8)?;
    println!(
        "   recoverkey: CA signature checked, key matches Dave's certificate: {}",
        lockbox_crypto::KeyHandle::public_key_info(&back)
            == lockbox_crypto::KeyHandle::public_key_info(&dave_key)
    );
    println!(
        "   the same with the CLI: lockbox --home {h} getkey \"Dave Example\" dave.rec && lockbox recoverkey dave.rec dave.pfx --kra-key {k} --kra-cert {c} --ca-cert {h}/certs/ca.pem",
        h = home.display(),
        k = kra_key_path.display(),
        c = kra_cert_path.display(),
    );

    println!("== 8. Revoke Alice's certificate and publish a CRL");
    let serial = o.serial.unwrap_or_default();
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
    Ok(ExitCode::SUCCESS)
}

/// The local administrator acting for this command.
fn lb_admin() -> lockbox_engine::Actor {
    lockbox_engine::Actor::local_admin(format!(
        "LOCAL\\{}",
        std::env::var("USER").unwrap_or_else(|_| "administrator".into())
    ))
}
