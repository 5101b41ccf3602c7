//! `lockbox bench`: the benchmarks of the `lockbox-bench` crate, with their
//! flags. Throughput figures are reported against the machine's limit
//! measured in the same run (never a timed test).

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use crate::global::Global;

#[derive(Subcommand, Debug)]
pub enum BenchCmd {
    /// PKCS#10 issuance over HTTP with an RSA-2048 CA, against the RSA-2048 sign rate.
    Issuance {
        /// Requests to time.
        #[arg(long, default_value_t = 2000)]
        requests: usize,
        /// Concurrent clients.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Seconds spent measuring the RSA-2048 sign rate.
        #[arg(long, default_value_t = 3.0)]
        sign_seconds: f64,
        /// Where the CA key is: software, softhsm (a SoftHSM2 token made for
        /// the run), or both (one after the other, in this run).
        #[arg(long, default_value = "software", value_parser = ["software", "softhsm", "both"])]
        keys: String,
    },
    /// Bulk import (importkms) of PKCS#12 files with foreign P-256 keys, keys per second.
    Import {
        /// PKCS#12 files to generate and import.
        #[arg(long, default_value_t = 10_000)]
        files: usize,
    },
    /// Recovery candidate search latency per token type over a database of archived keys.
    Search {
        /// Archived-key rows to generate.
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
        /// Lookups per token type.
        #[arg(long, default_value_t = 1000)]
        lookups: usize,
        /// Reuse this CA home (generated data is kept there) instead of a temporary one.
        #[arg(long = "data-dir", value_name = "DIR")]
        data_dir: Option<std::path::PathBuf>,
    },
    /// Archival enrollments (CMC with the key encrypted to an RSA-2048 exchange key) over HTTP,
    /// against the machine's RSA-2048 decrypt + sign limit.
    Archival {
        /// Requests to time.
        #[arg(long, default_value_t = 1000)]
        requests: usize,
        /// Concurrent clients.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Seconds spent measuring each RSA-2048 rate.
        #[arg(long, default_value_t = 3.0)]
        sign_seconds: f64,
        /// A PostgreSQL server (`postgres://USER@HOST:PORT/DB`): the bench CA
        /// gets a new database there. Default: SQLite in a temporary home.
        #[arg(long, value_name = "URL")]
        database: Option<String>,
        /// Service nodes on the one database, clients spread over them.
        #[arg(long, default_value_t = 1)]
        nodes: usize,
        /// Where the CA key and exchange keys are: software, softhsm (a
        /// SoftHSM2 token made for the run), or both (one after the other).
        #[arg(long, default_value = "software", value_parser = ["software", "softhsm", "both"])]
        keys: String,
    },
    /// Mixed load over HTTP: concurrent clients doing archival enrollments, status
    /// queries and recovery-candidate searches for a fixed time; errors, throughput,
    /// p50/p99 per operation and peak RSS.
    Load {
        /// Concurrent clients.
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Seconds of load.
        #[arg(long, default_value_t = 60.0)]
        seconds: f64,
        /// Seconds spent measuring each RSA-2048 rate.
        #[arg(long, default_value_t = 2.0)]
        sign_seconds: f64,
        /// A PostgreSQL server (`postgres://USER@HOST:PORT/DB`): the bench CA
        /// gets a new database there. Default: SQLite in a temporary home.
        #[arg(long, value_name = "URL")]
        database: Option<String>,
        /// Service nodes on the one database, clients spread over them.
        #[arg(long, default_value_t = 1)]
        nodes: usize,
    },
    /// OCSP responses over HTTP (POST, a nonce each, so every response is
    /// signed), against the RSA-2048 sign rate of all cores.
    Ocsp {
        /// Requests to time.
        #[arg(long, default_value_t = 2000)]
        requests: usize,
        /// Concurrent clients.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Seconds spent measuring the RSA-2048 sign rate.
        #[arg(long, default_value_t = 3.0)]
        sign_seconds: f64,
    },
}

/// The key stores `--keys` names, in the order they run.
fn key_stores(keys: &str) -> Vec<lockbox_bench::BenchKeys> {
    use lockbox_bench::BenchKeys;
    match keys {
        "softhsm" => vec![BenchKeys::SoftHsm],
        "both" => vec![BenchKeys::Software, BenchKeys::SoftHsm],
        _ => vec![BenchKeys::Software],
    }
}

/// Runs a benchmark.
pub async fn run(g: &Global, cmd: BenchCmd) -> Result<ExitCode> {
    let json = g.json;
    match cmd {
        BenchCmd::Issuance {
            requests,
            concurrency,
            sign_seconds,
            keys,
        } => {
            let mut code = ExitCode::SUCCESS;
            for k in key_stores(&keys) {
                let c = lockbox_bench::issuance(
                    json,
                    requests.max(1),
                    concurrency.max(1),
                    sign_seconds,
                    k,
                )
                .await?;
                if c != ExitCode::SUCCESS {
                    code = c;
                }
            }
            Ok(code)
        }
        BenchCmd::Ocsp {
            requests,
            concurrency,
            sign_seconds,
        } => lockbox_bench::ocsp(json, requests.max(1), concurrency.max(1), sign_seconds).await,
        BenchCmd::Import { files } => lockbox_bench::import(json, files.max(1)).await,
        BenchCmd::Search {
            rows,
            lookups,
            data_dir,
        } => lockbox_bench::search(json, rows, lookups.max(1), data_dir).await,
        BenchCmd::Archival {
            requests,
            concurrency,
            sign_seconds,
            database,
            nodes,
            keys,
        } => {
            let mut code = ExitCode::SUCCESS;
            for k in key_stores(&keys) {
                let deployment = lockbox_bench::Deployment {
                    database: database.clone(),
                    nodes: nodes.clamp(1, 16),
                    keys: k,
                };
                let c = lockbox_bench::archival(
                    json,
                    requests.max(1),
                    concurrency.max(1),
                    sign_seconds,
                    deployment,
                )
                .await?;
                if c != ExitCode::SUCCESS {
                    code = c;
                }
            }
            Ok(code)
        }
        BenchCmd::Load {
            clients,
            seconds,
            sign_seconds,
            database,
            nodes,
        } => {
            let deployment = lockbox_bench::Deployment {
                database,
                nodes: nodes.clamp(1, 16),
                keys: Default::default(),
            };
            lockbox_bench::load(
                json,
                clients.max(1),
                seconds.clamp(1.0, 3600.0),
                sign_seconds,
                deployment,
            )
            .await
        }
    }
}
