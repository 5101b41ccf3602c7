//! The Lockbox engine: policy and operations of the certification authority.
//!
//! Front ends (CLI, HTTP) call [`Ca`], a thin facade over services that share
//! one core state; the engine reaches keys only through
//! `lockbox_crypto::KeyHandle` and data only through `lockbox_store::Store`.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub(crate) mod actor;
pub(crate) mod archival;
pub(crate) mod audit;
pub(crate) mod auditor;
pub(crate) mod authz;
pub mod backup;
pub(crate) mod ca;
pub mod ca_renewal;
pub(crate) mod category;
pub mod certbuild;
pub(crate) mod certs;
pub(crate) mod cmcresponse;
pub mod config;
pub(crate) mod core;
pub mod crl;
pub(crate) mod crl_fetch;
pub mod database;
pub(crate) mod enroll;
pub(crate) mod error;
pub mod export;
pub mod import;
pub(crate) mod inbound;
pub(crate) mod init;
pub mod keysource;
pub mod migration;
pub(crate) mod ocsp;
pub(crate) mod officer;
pub mod period;
pub(crate) mod principals;
pub mod recovery;
pub(crate) mod reply;
pub mod template;
pub(crate) mod templates;
pub(crate) mod tls_identity;
pub mod trust;
pub mod view;

// The curated surface: the facade and what its methods take and return.
// Implementation modules stay private; the public modules above are
// namespaces for helpers the front ends use by path (period, certbuild,
// config, crl, backup, recovery, import, export, template, trust, view).
pub use actor::{Actor, Op, Role};
pub use archival::KraStatus;
pub use audit::{chain_hash, HEADS_FILE};
pub use authz::AUTHENTICATED_USERS;
pub use ca::{
    Ca, CrlInfo, InitOptions, InitOutcome, InitToken, OcspAnswer, Outcome, SubmitOptions,
};
pub use category::AuditCategory;
pub use certs::{cert_fields, load_private_key, verify_issued_by};
pub use cmcresponse::failure as cmc_failure;
pub use error::{codes, EngineError, EngineResult, ErrorKind};
pub use init::permission_findings;
pub use lockbox_store::{
    Column, CopyReport, DatabaseStatus, Disposition, RequestRecord, StoreError,
};
pub use principals::{Credential, Directory, LOGIN_FAILURES_PER_PAIR, LOGIN_WINDOW};
