//! The Lockbox engine: policy and operations of the certification authority.
//!
//! Front ends (CLI, HTTP) call [`Ca`], a thin facade over services that share
//! one core state; the engine reaches keys only through
//! `lockbox_crypto::KeyHandle` and data only through `lockbox_store::Store`.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub(crate) mod actor;
pub mod archival;
pub mod audit;
pub(crate) mod auditor;
pub mod authz;
pub mod backup;
pub mod ca;
pub(crate) mod category;
pub mod certbuild;
pub(crate) mod certs;
pub mod cmcresponse;
pub mod config;
pub(crate) mod core;
pub mod crl;
pub(crate) mod crl_fetch;
pub(crate) mod enroll;
pub mod error;
pub mod export;
pub mod import;
pub mod inbound;
pub(crate) mod init;
pub(crate) mod officer;
pub mod period;
pub mod principals;
pub mod recovery;
pub(crate) mod reply;
pub mod template;
pub(crate) mod templates;
pub(crate) mod tls_identity;
pub mod trust;
pub mod view;

pub use actor::{Actor, Op, Role};
pub use ca::{Ca, CrlInfo, InitOptions, InitOutcome, Outcome, SubmitOptions};
pub use category::AuditCategory;
pub use error::{codes, EngineError, EngineResult, ErrorKind};
pub use lockbox_store::{Column, Disposition, RequestRecord};
