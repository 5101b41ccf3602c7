//! `lockbox view`: query the CA database (certutil -view).

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use lockbox_engine::view::parse_columns;

use crate::backend;
use crate::global::Global;
use crate::output::{rows_csv, rows_json, rows_table};

#[derive(Args, Debug)]
pub struct ViewArgs {
    /// Restrictions, e.g. "CertificateTemplate=ExchangeUser,NotBefore>=2026-01-01".
    #[arg(long)]
    pub restrict: Option<String>,
    /// Columns, e.g. "RequestID,SerialNumber,CommonName,NotBefore".
    #[arg(long)]
    pub out: Option<String>,
    /// CSV output.
    #[arg(long)]
    pub csv: bool,
    /// Maximum rows.
    #[arg(long, default_value_t = 100_000)]
    pub limit: i64,
}

/// `lockbox view`
pub async fn view(g: &Global, args: ViewArgs) -> Result<ExitCode> {
    let cols = parse_columns(args.out.as_deref())?;
    let rows = backend::open(g)
        .await?
        .view(args.restrict.as_deref().unwrap_or(""), args.limit)
        .await?;
    if g.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows_json(&rows, &cols))?
        );
    } else if args.csv {
        print!("{}", rows_csv(&rows, &cols));
    } else {
        print!("{}", rows_table(&rows, &cols));
    }
    Ok(ExitCode::SUCCESS)
}
