//! Lockbox benchmarks (`lockbox bench ...`): throughput figures reported
//! against the machine's limit measured in the same run (never a timed test).
//!
//! One module per benchmark ([`issuance`], [`archival`], [`search`],
//! [`import`], [`load`], [`ocsp`]); the machine limits they are compared with in
//! [`limits`]; percentiles and memory figures in `stats`; the bench CA and
//! the loopback HTTP service they run against in `fixture` and `http`.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod archival;
mod fixture;
mod http;
mod import;
mod issuance;
pub mod limits;
mod load;
mod ocsp;
mod search;
mod stats;

pub use archival::archival;
pub use fixture::{BenchKeys, Deployment};
pub use import::import;
pub use issuance::issuance;
pub use load::load;
pub use ocsp::ocsp;
pub use search::search;
