//! The bench CA every benchmark runs against: a fresh RSA-2048 CA with
//! templates that keep the generated names, optionally with one KRA.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{Context, Result};
use lockbox_crypto::{KeySpec, SoftwareKey};
use lockbox_engine::certbuild::sign_request;
use lockbox_engine::period::Period;
use lockbox_engine::{Ca, InitOptions};
use x509_cert::certificate::Certificate;
use x509_cert::name::Name;

/// (built-in, bench copy) templates: the copies take the request's names.
const BENCH_TEMPLATES: [(&str, &str); 2] =
    [("User", "BenchUser"), ("ExchangeUser", "BenchExchangeUser")];

/// The local administrator acting for this command.
pub(crate) fn admin() -> lockbox_engine::Actor {
    lockbox_engine::Actor::local_admin(format!(
        "LOCAL\\{}",
        std::env::var("USER").unwrap_or_else(|_| "administrator".into())
    ))
}

/// Where the bench CA keeps its private keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BenchKeys {
    /// Key files in the home, in process memory (the embedded default).
    #[default]
    Software,
    /// The CA key and the exchange keys on a SoftHSM2 token made for the run.
    SoftHsm,
}

impl BenchKeys {
    /// `software` or `softhsm2`.
    pub fn name(&self) -> &'static str {
        match self {
            BenchKeys::Software => "software",
            BenchKeys::SoftHsm => "softhsm2",
        }
    }
}

/// A SoftHSM2 token for the bench CA under `dir` (its PIN in a 0600 file
/// there), made before the module is first loaded in this process.
fn bench_token(dir: &Path) -> Result<lockbox_engine::InitToken> {
    use lockbox_crypto::pkcs11::softhsm::SoftHsm;
    const PIN: &str = "lockbox-bench-pin";
    let hsm = SoftHsm::create(&dir.join("hsm"))?
        .context("SoftHSM2 is not installed (Debian: apt-get install softhsm2)")?;
    let label = format!(
        "bench-{}",
        dir.file_name().and_then(|n| n.to_str()).unwrap_or("ca")
    );
    // Token labels have at most 32 characters.
    let label: String = label.chars().take(32).collect();
    hsm.init_token(&label, PIN)?;
    // The module reads its configuration when first loaded; a second bench
    // in this process (`--keys both`) finds its token by a rescan.
    std::env::set_var("SOFTHSM2_CONF", &hsm.conf);
    let pin = dir.join("hsm/pin");
    std::fs::write(&pin, PIN)?;
    std::fs::set_permissions(&pin, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(lockbox_engine::InitToken {
        module: hsm.module.display().to_string(),
        token_label: label,
        pin_file: Some(pin.display().to_string()),
        key_label: None,
        exchange_on_token: true,
    })
}

/// Where the bench CA's database lives and how many nodes serve it.
#[derive(Clone, Debug, Default)]
pub struct Deployment {
    /// A PostgreSQL server URL (`postgres://USER@HOST:PORT/DB`): the bench
    /// makes a new database on it. None: SQLite in the temporary home.
    pub database: Option<String>,
    /// Service nodes on the one database (each its own `Ca`, pool and HTTP
    /// listener, in this process); at least 1.
    pub nodes: usize,
    /// Where the CA key and the exchange keys are.
    pub keys: BenchKeys,
}

impl Deployment {
    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        if self.database.is_some() {
            "postgres"
        } else {
            "sqlite"
        }
    }

    /// What makes an acknowledged commit durable here.
    pub fn durability(&self) -> &'static str {
        if self.database.is_some() {
            "postgresql, synchronous_commit=on, fsync=on"
        } else {
            "sqlite WAL, synchronous=FULL"
        }
    }
}

/// Starts one HTTP service per node of `deployment` on the CA of `dir`
/// (`first` is node 1; the others open the same home and database).
pub(crate) async fn start_nodes(
    dir: &Path,
    first: Arc<Ca>,
    deployment: &Deployment,
) -> Result<Vec<crate::http::Service>> {
    let mut services = vec![crate::http::Service::start(first).await?];
    for _ in 1..deployment.nodes.max(1) {
        let ca = Arc::new(Ca::open(dir).await?);
        ca.signing_key()?;
        services.push(crate::http::Service::start(ca).await?);
    }
    Ok(services)
}

/// Creates the bench CA in `dir` (SQLite there; with a PostgreSQL server, a
/// new database on it) and opens it, its key loaded.
pub(crate) async fn bench_ca(
    dir: &Path,
    database: Option<&str>,
    keys: BenchKeys,
) -> Result<Arc<Ca>> {
    let token = match keys {
        BenchKeys::Software => None,
        BenchKeys::SoftHsm => Some(bench_token(dir)?),
    };
    let database = match database {
        Some(server) => Some(lockbox_store::create_fresh_database(server).await?),
        None => None,
    };
    let init = Ca::init(InitOptions {
        home: dir.to_path_buf(),
        name: "Lockbox Bench CA".into(),
        subject: None,
        key: KeySpec::Rsa2048,
        validity: Period::Years(5),
        subordinate: false,
        passphrase: None,
        passphrase_file: None,
        cdp_urls: vec![],
        aia_urls: vec![],
        ocsp_urls: vec![],
        delta_cdp_urls: vec![],
        database,
        token,
    })
    .await?;
    // The token is kept (as `lockbox init` does) for benchmarks that call the API.
    std::fs::write(dir.join("admin.token"), &init.admin_token)?;
    let ca = Arc::new(Ca::open(dir).await?);
    ca.signing_key()?;
    // Enrollment is authenticated (the admin token) and the generated names
    // are kept: templates whose enrollee supplies the subject.
    for (src, name) in BENCH_TEMPLATES {
        ca.duplicate_template(&admin(), src, name).await?;
        ca.set_template(&admin(), name, "enrollee_supplies_subject", "true")
            .await?;
        ca.set_ca_template(&admin(), name, true).await?;
    }
    Ok(ca)
}

/// The administrator API token the bench CA in `dir` was created with.
pub(crate) fn admin_token(dir: &Path) -> Result<String> {
    Ok(std::fs::read_to_string(dir.join("admin.token"))
        .context("reading the bench CA's admin token")?
        .trim()
        .to_string())
}

/// Issues a KRA certificate ("CN=Bench Recovery Agent", fresh RSA-2048 key) from the bench CA.
pub(crate) async fn issue_bench_kra(ca: &Ca) -> Result<lockbox_engine::Outcome> {
    ca.set_ca_template(&admin(), "KeyRecoveryAgent", true)
        .await?;
    let kra_key = SoftwareKey::generate(KeySpec::Rsa2048)?;
    let kra_csr = sign_request(&kra_key, Name::from_str("CN=Bench Recovery Agent")?, vec![])?;
    let opts = lockbox_engine::SubmitOptions {
        template: Some("KeyRecoveryAgent".into()),
        requester: "bench".into(),
        attributes: vec![],
        actor: None,
        on_behalf_of: None,
        renewing: None,
    };
    let pending = ca.submit(&kra_csr, &opts).await?;
    Ok(ca.issue(pending.request_id, &admin()).await?)
}

/// A bench CA with one KRA (required) and its current exchange certificate.
pub(crate) async fn archival_bench_ca(
    dir: &Path,
    database: Option<&str>,
    keys: BenchKeys,
) -> Result<(Arc<Ca>, Certificate)> {
    use lockbox_client::check_exchange_certificate;
    let ca = bench_ca(dir, database, keys).await?;
    let issued = issue_bench_kra(&ca).await?;
    ca.kra_add(
        &admin(),
        issued.serial.unwrap_or_default().as_bytes(),
        None,
        None,
    )
    .await?;
    ca.set_kra_required(&admin(), 1).await?;
    let xchg_der = ca.current_exchange_certificate().await?;
    let xchg = check_exchange_certificate(&xchg_der, &ca.ca_certificate_der()?)?;
    Ok((ca, xchg))
}

/// A CMC archival request for `cn` with `key`, encrypted to `xchg`.
pub(crate) fn archival_body(key: &SoftwareKey, cn: &str, xchg: &Certificate) -> Result<Vec<u8>> {
    use lockbox_client::{build_archival_request, ArchivalOptions, KeyPayload};
    let csr = sign_request(key, Name::from_str(&format!("CN={cn}"))?, vec![])?;
    let o = ArchivalOptions {
        template: Some("ExchangeUser".into()),
        cipher: lockbox_crypto::symmetric::ContentCipher::Aes256Cbc,
        transport: lockbox_crypto::keytransport::KeyTransport::RsaPkcs1v15,
        payload: KeyPayload::KeyBlob,
    };
    Ok(build_archival_request(key, &csr, xchg, &o)?)
}
