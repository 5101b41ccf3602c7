//! Every `lockbox` subcommand: the top-level enum (the clap tree) and its
//! dispatch. Each command group lives in its own file beside its arguments.

mod agent;
mod audit;
mod backup;
mod bench;
mod ca;
mod config;
mod crl;
mod db;
mod demo;
mod dump;
mod enroll;
mod export;
mod getkey;
mod group;
mod import;
mod import_report;
mod init;
mod key;
mod kra;
mod principal;
mod recover;
mod recovery_script;
mod request;
mod role;
mod serve;
mod template;
mod verifykeys;
mod view;

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use crate::backend;
use crate::global::Global;

// The `lockbox` subcommands (no doc comment: clap would read it as help text).
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new CA (root, or a subordinate CA request).
    Init(init::InitArgs),
    /// CA certificate, installation and issued templates.
    #[command(subcommand)]
    Ca(ca::CaCmd),
    /// Certificate templates.
    #[command(subcommand)]
    Template(template::TemplateCmd),
    /// Submit a PKCS#10 or CMC request.
    Submit(request::SubmitArgs),
    /// Pending requests.
    #[command(subcommand)]
    Pending(request::PendingCmd),
    /// Issue a pending request.
    Issue(request::IssueArgs),
    /// Deny a pending request.
    Deny(request::IdArgs),
    /// Revoke a certificate.
    Revoke(crl::RevokeArgs),
    /// Certificate revocation lists.
    #[command(subcommand)]
    Crl(crl::CrlCmd),
    /// Query the CA database (certutil -view).
    View(view::ViewArgs),
    /// Requests: retrieve certificates, show status.
    #[command(subcommand)]
    Request(request::RequestCmd),
    /// Key Recovery Agent certificates of this CA.
    #[command(subcommand)]
    Kra(kra::KraCmd),
    /// Check that a private key matches a certificate.
    Verifykeys(verifykeys::VerifyKeysArgs),
    /// Decode certificates, requests, CMC messages and CMS envelopes.
    Dump(dump::DumpArgs),
    /// Local principals (users) and their credentials.
    #[command(subcommand)]
    Principal(principal::PrincipalCmd),
    /// Groups of principals.
    #[command(subcommand)]
    Group(group::GroupCmd),
    /// CA roles.
    #[command(subcommand)]
    Role(role::RoleCmd),
    /// Certificate-manager restrictions.
    #[command(subcommand)]
    Officer(role::OfficerCmd),
    /// CA settings.
    #[command(subcommand)]
    Config(config::ConfigCmd),
    /// The tamper-evident audit trail.
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    /// The CA database: backend, schema version, row counts.
    #[command(subcommand)]
    Db(db::DbCmd),
    /// The CA's private keys: where they live (file or PKCS#11 token).
    #[command(subcommand)]
    Key(key::KeyCmd),
    /// The CA event log.
    Events {
        /// At most this many (newest first).
        #[arg(long, default_value_t = 200)]
        limit: i64,
    },
    /// Find recovery candidates, or retrieve a recovery blob (certificate manager).
    Getkey(getkey::GetkeyArgs),
    /// Open a recovery blob with a KRA key into a PKCS#12 (key recovery agent).
    Recoverkey(recover::RecoverArgs),
    /// Merge PKCS#12 files: mergepfx IN1.pfx,IN2.pfx OUT.pfx -p P1,P2,POUT.
    Mergepfx(recover::MergeArgs),
    /// Retrieve and recover every key of a user in one step (no role separation).
    RecoverUser(recover::RecoverUserArgs),
    /// Archive keys that were not enrolled here: PKCS#12 files and directories (manual archival, KMS migration).
    Importkms(import::ImportArgs),
    /// Export users' key histories for another server (KMS "Export Users").
    ExportKeys(export::ExportArgs),
    /// Import certificates without keys.
    Importcert(import::ImportArgs),
    /// Back up the CA (database, keys, configuration) online: backup --out DIR, or backup verify DIR.
    Backup(backup::BackupArgs),
    /// Restore a backup into an empty home (--force moves an existing one aside).
    Restore(backup::RestoreArgs),
    /// Run the HTTPS service.
    Serve(serve::ServeArgs),
    /// Demonstrate the main job in a fresh CA home.
    Demo(demo::DemoArgs),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(bench::BenchCmd),
}

/// Runs a parsed command line.
pub async fn run(g: Global, command: Command) -> Result<ExitCode> {
    let g = &g;
    match command {
        Command::Init(args) => init::init(g, args).await,
        Command::Ca(cmd) => ca::ca(g, cmd).await,
        Command::Template(cmd) => template::template(g, cmd).await,
        Command::Submit(args) => request::submit(g, args).await,
        Command::Pending(cmd) => request::pending(g, cmd).await,
        Command::Issue(args) => request::issue(g, args).await,
        Command::Deny(args) => request::deny(g, args).await,
        Command::Revoke(args) => crl::revoke(g, args).await,
        Command::Crl(cmd) => crl::crl(g, cmd).await,
        Command::View(args) => view::view(g, args).await,
        Command::Request(cmd) => request::request(g, cmd).await,
        Command::Serve(args) => serve::serve(g, args).await,
        Command::Backup(args) => backup::backup(g, args).await,
        Command::Restore(args) => backup::restore(g, args).await,
        Command::Bench(cmd) => bench::run(g, cmd).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Principal(cmd) => principal::principal(g, cmd).await,
        Command::Group(cmd) => group::group(g, cmd).await,
        Command::Role(cmd) => role::role(g, cmd).await,
        Command::Officer(cmd) => role::officer(g, cmd).await,
        Command::Config(cmd) => config::config(g, cmd).await,
        Command::Audit(cmd) => audit::audit(g, cmd).await,
        Command::Events { limit } => audit::events(g, limit).await,
        Command::Db(cmd) => db::db(g, cmd).await,
        Command::Key(cmd) => key::key(g, cmd).await,
        Command::Getkey(args) => getkey::getkey(g, backend::open(g).await?, args).await,
        Command::Recoverkey(args) => recover::recoverkey(g, args).await,
        Command::Mergepfx(args) => recover::mergepfx(g, args),
        Command::RecoverUser(args) => recover::recover_user(g, args).await,
        Command::Importkms(args) => import::run(g, args, true).await,
        Command::Importcert(args) => import::run(g, args, false).await,
        Command::ExportKeys(args) => export::export(g, args).await,
        Command::Kra(cmd) => kra::kra(g, backend::open(g).await?, cmd).await,
        Command::Verifykeys(args) => verifykeys::verifykeys(g, args),
        Command::Dump(args) => dump::dump(g, args),
    }
}
