//! `lockbox serve`: run the HTTPS service on the local CA home.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use clap::Args;
use lockbox_engine::Ca;

use crate::backend::home_of;
use crate::global::Global;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: String,
    /// Plain HTTP (loopback only, for tests).
    #[arg(long)]
    pub http: bool,
    /// Extra host names for the TLS certificate (repeatable).
    #[arg(long = "host", value_name = "NAME")]
    pub hosts: Vec<String>,
    /// Also answer OCSP, CRL and CA certificate requests over plain HTTP on
    /// this address (any address: nothing there takes credentials).
    #[arg(long = "public-http", value_name = "ADDR")]
    pub public_http: Option<String>,
}

/// `lockbox serve`
pub async fn serve(g: &Global, args: ServeArgs) -> Result<ExitCode> {
    // Everything the service creates (database journals, TLS key, backups) is
    // private to its owner, whatever umask it was started with.
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let home = home_of(g)?;
    // Taken before the database is opened and held until the process ends:
    // `db migrate` and `restore --force` refuse while it is held.
    let _service_lock = lockbox_engine::config::Home::new(&home).lock_service()?;
    let ca = Arc::new(Ca::open(&home).await?);
    for finding in lockbox_engine::permission_findings(ca.home(), ca.config()) {
        eprintln!("lockbox: WARNING: {finding}");
    }
    // Load the key now so a wrong passphrase fails at start, not at the first
    // request. A key on a token that is away (or refuses the PIN) does not
    // stop the service: what needs no key keeps answering, key operations get
    // 503 until the token is back.
    if let Err(e) = ca.signing_key() {
        if e.kind() != lockbox_engine::ErrorKind::Unavailable {
            return Err(anyhow!(e));
        }
        eprintln!("lockbox: WARNING: the CA key is unavailable, serving without it: {e}");
    }
    // KRAs are validated when the service starts (and on every KRA change).
    let (valid, total) = ca.validate_kras().await?;
    if total > 0 {
        eprintln!("lockbox: {valid} of {total} KRA certificates valid");
    }
    if ca.config().ca.state == lockbox_engine::config::CaState::Active {
        tokio::spawn(crl_schedule(ca.clone()));
    }
    let public_http = args
        .public_http
        .as_deref()
        .map(|a| {
            a.parse::<std::net::SocketAddr>()
                .with_context(|| format!("bad --public-http address '{a}'"))
        })
        .transpose()?;
    let listen: std::net::SocketAddr = args
        .listen
        .parse()
        .with_context(|| format!("bad --listen address '{}'", args.listen))?;
    let mut hosts = vec!["localhost".to_string(), listen.ip().to_string()];
    if listen.ip().is_unspecified() {
        hosts.push("127.0.0.1".into());
    }
    hosts.extend(args.hosts);
    hosts.dedup();
    lockbox_server::serve(
        ca,
        lockbox_server::ServeOptions {
            listen,
            plain_http: args.http,
            hosts,
            public_http,
        },
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// Publishes the base and delta CRLs the `[crl]` schedule says are due, at
/// start and then every minute, for as long as the service runs.
async fn crl_schedule(ca: Arc<Ca>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match ca.publish_due_crls().await {
            Ok(published) => {
                for c in published {
                    tracing::info!(number = c.number, delta_base = ?c.delta_base, "CRL published on schedule");
                }
            }
            Err(e) => tracing::warn!(error = %e, "scheduled CRL publication failed"),
        }
    }
}
