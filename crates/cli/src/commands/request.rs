//! Requests on the CA: `submit`, `pending`, `issue`, `deny`, and `request
//! retrieve|status` (the client side, `request new|accept`, is in `enroll`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use lockbox_codec::pem::encode_pem;
use lockbox_engine::period::rfc3339;
use lockbox_engine::view::parse_columns;
use lockbox_engine::{Disposition, Outcome};
use serde_json::json;

use super::enroll;
use crate::backend;
use crate::files::{read_file, write_file};
use crate::global::Global;
use crate::output::{print_json, rows_json, rows_table, safe};

#[derive(Args, Debug)]
pub struct SubmitArgs {
    /// Request file (PKCS#10 or CMC; PEM, base64 or DER).
    pub request: PathBuf,
    /// Template (overrides the request's template attribute).
    #[arg(long)]
    pub template: Option<String>,
    /// Write the issued certificate here (PEM).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// For CMC requests, write the CMC Full PKI Response here (DER).
    #[arg(long = "response-out", value_name = "FILE")]
    pub response_out: Option<PathBuf>,
    /// Enroll for this principal (name, UPN or DOMAIN\name): it becomes the
    /// requester and the certificate names come from its record. For the
    /// local administrator (--home) and holders of the EnrollmentAgent role.
    #[arg(long = "on-behalf-of", value_name = "PRINCIPAL")]
    pub on_behalf_of: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum PendingCmd {
    /// List pending requests.
    List,
}

#[derive(Args, Debug)]
pub struct IssueArgs {
    /// Request ID.
    pub id: i64,
    /// Write the issued certificate here (PEM).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct IdArgs {
    /// Request ID.
    pub id: i64,
}

#[derive(Subcommand, Debug)]
pub enum RequestCmd {
    /// Fetch the certificate of an issued request (certreq -retrieve).
    Retrieve {
        /// Request ID.
        id: i64,
        /// Output file (PEM; DER if it ends in .cer/.der/.crt... no: .der only).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Build a CMC request (with --archive: the key encrypted to the CA exchange certificate).
    New(enroll::NewRequestArgs),
    /// Verify a CA response and bundle the key and certificate into a PKCS#12.
    Accept(enroll::AcceptArgs),
    /// Show a request's status.
    Status {
        /// Request ID.
        id: i64,
    },
}

fn print_outcome(o: &Outcome, json: bool, out: Option<&Path>) -> Result<()> {
    if let (Some(path), Some(pem)) = (out, &o.certificate_pem) {
        write_file(path, pem.as_bytes())?;
    }
    if json {
        return print_json(o);
    }
    println!("RequestId: {}", o.request_id);
    match o.disposition {
        Disposition::Issued => {
            println!("Disposition: issued ({})", o.message);
            if let Some(s) = &o.serial {
                println!("SerialNumber: {s}");
            }
            match out {
                Some(p) => println!("Certificate written to {}", p.display()),
                None if o.certificate_pem.is_some() => {
                    print!("{}", o.certificate_pem.as_deref().unwrap_or(""))
                }
                None => {}
            }
        }
        Disposition::Pending => println!(
            "Disposition: pending ({}) - a certificate manager must issue it",
            o.message
        ),
        d => println!("Disposition: {} ({})", d.as_str(), o.message),
    }
    Ok(())
}

/// `lockbox submit`
pub async fn submit(g: &Global, args: SubmitArgs) -> Result<ExitCode> {
    let req = read_file(&args.request)?;
    let o = backend::open(g)
        .await?
        .submit(req, args.template, args.on_behalf_of)
        .await?;
    if let (Some(path), Some(b64)) = (&args.response_out, &o.cmc_response) {
        write_file(path, &lockbox_codec::pem::decode_input(b64.as_bytes())?.der)?;
    }
    print_outcome(&o, g.json, args.out.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

/// `lockbox pending list`
pub async fn pending(g: &Global, cmd: PendingCmd) -> Result<ExitCode> {
    let PendingCmd::List = cmd;
    let rows = backend::open(g).await?.pending().await?;
    let cols = parse_columns(Some(
        "RequestID,RequesterName,CertificateTemplate,Subject,SubmittedWhen",
    ))?;
    if g.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows_json(&rows, &cols))?
        );
    } else {
        print!("{}", rows_table(&rows, &cols));
    }
    Ok(ExitCode::SUCCESS)
}

/// `lockbox issue ID`
pub async fn issue(g: &Global, args: IssueArgs) -> Result<ExitCode> {
    let o = backend::open(g).await?.issue(args.id).await?;
    print_outcome(&o, g.json, args.out.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

/// `lockbox deny ID`
pub async fn deny(g: &Global, args: IdArgs) -> Result<ExitCode> {
    let o = backend::open(g).await?.deny(args.id).await?;
    print_outcome(&o, g.json, None)?;
    Ok(ExitCode::SUCCESS)
}

/// `lockbox request ...`
pub async fn request(g: &Global, cmd: RequestCmd) -> Result<ExitCode> {
    match cmd {
        RequestCmd::Retrieve { id, out } => retrieve(g, id, out).await,
        RequestCmd::Status { id } => status(g, id).await,
        RequestCmd::New(args) => enroll::request_new(g, backend::open(g).await?, args).await,
        RequestCmd::Accept(args) => enroll::request_accept(g, args).await,
    }
}

/// `lockbox request retrieve ID`
async fn retrieve(g: &Global, id: i64, out: Option<PathBuf>) -> Result<ExitCode> {
    let der = backend::open(g).await?.certificate(id).await?;
    let pem = encode_pem("CERTIFICATE", &der);
    match &out {
        Some(p) if p.extension().is_some_and(|e| e == "der") => write_file(p, &der)?,
        Some(p) => write_file(p, pem.as_bytes())?,
        None => print!("{pem}"),
    }
    if g.json {
        print_json(&json!({ "request_id": id, "out": out, "certificate_pem": pem }))?;
    } else if let Some(p) = out {
        println!("Certificate of request {id} written to {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `lockbox request status ID`
async fn status(g: &Global, id: i64) -> Result<ExitCode> {
    let r = backend::open(g).await?.request(id).await?;
    if g.json {
        print_json(&r)?;
    } else {
        println!("RequestId: {}\nDisposition: {}\nMessage: {}\nRequester: {}\nTemplate: {}\nSubmitted: {}",
            r.request_id, r.disposition.as_str(), safe(&r.disposition_message), safe(&r.requester),
            safe(r.template.as_deref().unwrap_or("")), rfc3339(r.submitted_at));
        if let Some(c) = &r.cert {
            println!(
                "SerialNumber: {}\nNotAfter: {}",
                c.serial,
                rfc3339(c.not_after)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
