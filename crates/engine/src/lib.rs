//! The Lockbox engine: policy and operations of the certification authority.
//!
//! Front ends (CLI, HTTP) call [`Ca`]; the engine reaches keys only through
//! `lockbox_crypto::KeyHandle` and data only through `lockbox_store::Store`.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod archival;
pub mod audit;
pub mod authz;
pub mod backup;
pub mod ca;
pub mod certbuild;
pub mod client;
pub mod cmcresponse;
pub mod config;
pub mod crl;
pub mod error;
pub mod export;
pub mod import;
pub mod inbound;
pub mod period;
pub mod principals;
pub mod recovery;
pub mod template;
pub mod trust;
pub mod view;

pub use authz::{Actor, Role};
pub use ca::{Ca, CrlInfo, InitOptions, InitOutcome, Outcome, SubmitOptions};
pub use error::{codes, EngineError, EngineResult, ErrorKind};
pub use lockbox_store::{Column, Disposition, RequestRecord};
