//! The options accepted before or after any subcommand.

use std::path::PathBuf;

use clap::Args;

/// Options accepted before or after any subcommand.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// CA home directory (local operation).
    #[arg(long, global = true, env = "LOCKBOX_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Lockbox server URL (remote operation), e.g. https://ca.example:8443.
    #[arg(long, global = true, env = "LOCKBOX_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// CA certificate (PEM/DER) to trust for the server's TLS certificate.
    #[arg(
        long = "ca-cert",
        global = true,
        env = "LOCKBOX_CA_CERT",
        value_name = "FILE"
    )]
    pub ca_cert: Option<PathBuf>,
    /// API token for remote operation. (`principal add NAME --token`, without a
    /// value, asks for a new API token for the principal instead.)
    #[arg(
        long,
        global = true,
        env = "LOCKBOX_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true,
        num_args = 0..=1,
        default_missing_value = ""
    )]
    pub token: Option<String>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
}
