//! `lockbox init`: create a new CA (root, or a subordinate CA request).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};
use clap::Args;
use lockbox_engine::config::PASSPHRASE_ENV;
use lockbox_engine::period::Period;
use lockbox_engine::{Ca, InitOptions, InitToken};
use serde_json::json;
use zeroize::Zeroizing;

use crate::backend::home_of;
use crate::files::{read_file, write_file};
use crate::global::Global;
use crate::output::print_json;

#[derive(Args, Debug)]
pub struct InitArgs {
    /// CA common name, e.g. "Contoso Issuing CA".
    #[arg(long)]
    pub name: String,
    /// Full subject DN (default: CN=<name>).
    #[arg(long)]
    pub subject: Option<String>,
    /// Key algorithm: rsa2048, rsa3072, rsa4096, p256, p384.
    #[arg(long, default_value = "rsa2048")]
    pub key: String,
    /// CA certificate validity (e.g. 10y, 5y, 365d).
    #[arg(long, default_value = "10y")]
    pub validity: String,
    /// Create a subordinate CA: generate the key and a request for the parent CA.
    #[arg(long)]
    pub subordinate: bool,
    /// Where to write the subordinate CA request (PEM).
    #[arg(long = "csr-out", value_name = "FILE")]
    pub csr_out: Option<PathBuf>,
    /// File holding the passphrase that protects the CA key (else LOCKBOX_CA_PASSPHRASE).
    #[arg(long = "passphrase-file", value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// CRL distribution point URL for issued certificates (repeatable).
    #[arg(long = "cdp-url", value_name = "URL")]
    pub cdp_url: Vec<String>,
    /// AIA caIssuers URL for issued certificates (repeatable).
    #[arg(long = "aia-url", value_name = "URL")]
    pub aia_url: Vec<String>,
    /// OCSP responder URL for issued certificates' AIA (repeatable), e.g.
    /// `http://pki.example.com/ocsp` (`lockbox serve` answers at `/ocsp`).
    #[arg(long = "ocsp-url", value_name = "URL")]
    pub ocsp_url: Vec<String>,
    /// Delta CRL URL (Freshest CRL) for issued certificates and base CRLs
    /// (repeatable), e.g. `http://pki.example.com/crl/ca+.crl`.
    #[arg(long = "delta-cdp-url", value_name = "URL")]
    pub delta_cdp_url: Vec<String>,
    /// The CA database: `sqlite:FILE` (default `sqlite:ca.db` in the home) or
    /// an empty PostgreSQL database, `postgres://USER@HOST:PORT/DB`; several
    /// hosts (`postgres://h1:5432,h2:5433/DB?target_session_attrs=read-write`)
    /// for failover. Passwords come from PGPASSWORD or ~/.pgpass, never the URL.
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
    /// Keep the CA key on a PKCS#11 token: the module (shared library).
    #[arg(long = "pkcs11-module", value_name = "PATH", requires = "token_label")]
    pub pkcs11_module: Option<PathBuf>,
    /// The token's label.
    #[arg(long = "token-label", value_name = "LABEL", requires = "pkcs11_module")]
    pub token_label: Option<String>,
    /// File holding the token's user PIN (mode 0600; else LOCKBOX_PKCS11_PIN).
    #[arg(long = "pin-file", value_name = "FILE", requires = "pkcs11_module")]
    pub pin_file: Option<PathBuf>,
    /// Use the existing key pair with this label on the token instead of generating one.
    #[arg(
        long = "pkcs11-key-label",
        value_name = "LABEL",
        requires = "pkcs11_module"
    )]
    pub pkcs11_key_label: Option<String>,
    /// Generate the CA exchange keys on the token too (archival.exchange_on_token).
    #[arg(long = "exchange-on-token", requires = "pkcs11_module")]
    pub exchange_on_token: bool,
}

/// The token options, with paths made absolute (the configuration records them).
fn token_for_init(args: &InitArgs) -> Result<Option<InitToken>> {
    let (Some(module), Some(label)) = (&args.pkcs11_module, &args.token_label) else {
        return Ok(None);
    };
    let absolute = |p: &PathBuf| -> Result<String> {
        Ok(std::fs::canonicalize(p)
            .map_err(|e| anyhow!("{}: {e}", p.display()))?
            .display()
            .to_string())
    };
    Ok(Some(InitToken {
        module: absolute(module)?,
        token_label: label.clone(),
        pin_file: args.pin_file.as_ref().map(absolute).transpose()?,
        key_label: args.pkcs11_key_label.clone(),
        exchange_on_token: args.exchange_on_token,
    }))
}

/// The passphrase to protect a new CA key with, and the file to record.
type InitPassphrase = (Option<Zeroizing<Vec<u8>>>, Option<String>);

fn passphrase_for_init(args: &InitArgs) -> Result<InitPassphrase> {
    if let Some(f) = &args.passphrase_file {
        let mut data = Zeroizing::new(read_file(f)?);
        while data.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            data.pop();
        }
        if data.is_empty() {
            bail!("passphrase file {} is empty", f.display());
        }
        let abs = std::fs::canonicalize(f).unwrap_or_else(|_| f.clone());
        return Ok((Some(data), Some(abs.display().to_string())));
    }
    if let Ok(p) = std::env::var(PASSPHRASE_ENV) {
        if !p.is_empty() {
            return Ok((Some(Zeroizing::new(p.into_bytes())), None));
        }
    }
    Ok((None, None))
}

/// `lockbox init`
pub async fn init(g: &Global, args: InitArgs) -> Result<ExitCode> {
    let home = home_of(g)?;
    let key = args
        .key
        .parse()
        .map_err(|e: lockbox_crypto::CryptoError| anyhow!("{e}"))?;
    let validity = Period::parse(&args.validity)?;
    let (passphrase, passphrase_file) = passphrase_for_init(&args)?;
    if args.csr_out.is_some() && !args.subordinate {
        bail!("--csr-out goes with --subordinate");
    }
    let token = token_for_init(&args)?;
    let outcome = Ca::init(InitOptions {
        home: home.clone(),
        name: args.name,
        subject: args.subject,
        key,
        validity,
        subordinate: args.subordinate,
        passphrase,
        passphrase_file,
        cdp_urls: args.cdp_url,
        aia_urls: args.aia_url,
        ocsp_urls: args.ocsp_url,
        delta_cdp_urls: args.delta_cdp_url,
        database: args.database,
        token,
    })
    .await?;
    let csr_path = match (&outcome.csr_pem, &args.csr_out) {
        (Some(csr), Some(p)) => {
            write_file(p, csr.as_bytes())?;
            Some(p.clone())
        }
        (Some(csr), None) => {
            let p = home.join("certs/ca.req");
            write_file(&p, csr.as_bytes())?;
            Some(p)
        }
        _ => None,
    };
    let token_file = home.join("admin.token");
    lockbox_engine::config::Home::new(&home).write_atomic(
        "admin.token",
        outcome.admin_token.as_bytes(),
        true,
    )?;
    if g.json {
        print_json(&json!({
            "home": outcome.home, "subject": outcome.subject, "subordinate": csr_path.is_some(),
            "csr_out": csr_path, "key_protected": outcome.key_protected,
            "admin_token_file": token_file, "ca_cert_pem": outcome.ca_cert_pem,
            "key_location": outcome.key_location,
        }))?;
    } else {
        println!("Created CA '{}' in {}", outcome.subject, home.display());
        if let Some(p) = csr_path {
            println!("Subordinate CA request written to {}", p.display());
            println!("Have the parent CA sign it, then run: lockbox ca install SIGNED.pem --chain PARENT.pem --home {}", home.display());
        }
        if let Some(lockbox_engine::keysource::KeyLocation::Token {
            token_label,
            key_label,
            key_id,
            ..
        }) = &outcome.key_location
        {
            println!(
                "CA key on token '{token_label}': label '{key_label}', CKA_ID {key_id} (it never leaves the token)"
            );
        } else if !outcome.key_protected {
            eprintln!("warning: the CA key is not passphrase-protected (file mode 0600); set {PASSPHRASE_ENV} or --passphrase-file to encrypt it");
        }
        println!(
            "Administrator API token written to {} (mode 0600)",
            token_file.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
