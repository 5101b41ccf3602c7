//! `lockbox`: the Lockbox certification authority command.

#![forbid(unsafe_code)]

mod backend;
mod backup;
mod bench;
mod commands;
mod demo;
mod import;
mod keys;
mod output;
mod recover;
mod security;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Lockbox: a certification authority with private-key archival and recovery.
#[derive(Parser, Debug)]
#[command(name = "lockbox", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

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

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new CA (root, or a subordinate CA request).
    Init(commands::InitArgs),
    /// CA certificate, installation and issued templates.
    #[command(subcommand)]
    Ca(commands::CaCmd),
    /// Certificate templates.
    #[command(subcommand)]
    Template(commands::TemplateCmd),
    /// Submit a PKCS#10 or CMC request.
    Submit(commands::SubmitArgs),
    /// Pending requests.
    #[command(subcommand)]
    Pending(commands::PendingCmd),
    /// Issue a pending request.
    Issue(commands::IssueArgs),
    /// Deny a pending request.
    Deny(commands::IdArgs),
    /// Revoke a certificate.
    Revoke(commands::RevokeArgs),
    /// Certificate revocation lists.
    #[command(subcommand)]
    Crl(commands::CrlCmd),
    /// Query the CA database (certutil -view).
    View(commands::ViewArgs),
    /// Requests: retrieve certificates, show status.
    #[command(subcommand)]
    Request(commands::RequestCmd),
    /// Key Recovery Agent certificates of this CA.
    #[command(subcommand)]
    Kra(keys::KraCmd),
    /// Check that a private key matches a certificate.
    Verifykeys(keys::VerifyKeysArgs),
    /// Decode certificates, requests, CMC messages and CMS envelopes.
    Dump(keys::DumpArgs),
    /// Local principals (users) and their credentials.
    #[command(subcommand)]
    Principal(security::PrincipalCmd),
    /// Groups of principals.
    #[command(subcommand)]
    Group(security::GroupCmd),
    /// CA roles.
    #[command(subcommand)]
    Role(security::RoleCmd),
    /// Certificate-manager restrictions.
    #[command(subcommand)]
    Officer(security::OfficerCmd),
    /// CA settings.
    #[command(subcommand)]
    Config(security::ConfigCmd),
    /// The tamper-evident audit trail.
    #[command(subcommand)]
    Audit(security::AuditCmd),
    /// The CA event log.
    Events {
        /// At most this many (newest first).
        #[arg(long, default_value_t = 200)]
        limit: i64,
    },
    /// Find recovery candidates, or retrieve a recovery blob (certificate manager).
    Getkey(recover::GetkeyArgs),
    /// Open a recovery blob with a KRA key into a PKCS#12 (key recovery agent).
    Recoverkey(recover::RecoverArgs),
    /// Merge PKCS#12 files: mergepfx IN1.pfx,IN2.pfx OUT.pfx -p P1,P2,POUT.
    Mergepfx(recover::MergeArgs),
    /// Retrieve and recover every key of a user in one step (no role separation).
    RecoverUser(recover::RecoverUserArgs),
    /// Archive keys that were not enrolled here: PKCS#12 files and directories (manual archival, KMS migration).
    Importkms(import::ImportArgs),
    /// Export users' key histories for another server (KMS "Export Users").
    ExportKeys(import::ExportArgs),
    /// Import certificates without keys.
    Importcert(import::ImportArgs),
    /// Back up the CA (database, keys, configuration) online: backup --out DIR, or backup verify DIR.
    Backup(backup::BackupArgs),
    /// Restore a backup into an empty home (--force moves an existing one aside).
    Restore(backup::RestoreArgs),
    /// Run the HTTPS service.
    Serve(commands::ServeArgs),
    /// Demonstrate the main job in a fresh CA home.
    Demo(demo::DemoArgs),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(bench::BenchCmd),
}

/// Exit status when the reader of stdout or stderr went away (128 + SIGPIPE, as a shell reports it).
const BROKEN_PIPE_EXIT: i32 = 141;

/// `lockbox view | head -1`: when the reader of stdout (or stderr) has gone,
/// `print!` fails with EPIPE and panics; exit quietly instead, as Unix tools
/// do. Every other panic keeps the default report.
fn exit_quietly_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to std")
            && msg.to_ascii_lowercase().contains("broken pipe")
        {
            std::process::exit(BROKEN_PIPE_EXIT);
        }
        default(info);
    }));
}

/// Colour on stderr only for a terminal, and never when `NO_COLOR` is set (https://no-color.org).
fn stderr_colour() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn main() -> ExitCode {
    exit_quietly_on_broken_pipe();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOCKBOX_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(stderr_colour())
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lockbox: cannot start runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let json = cli.global.json;
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(e) => output::report_error(&e, json),
    }
}
