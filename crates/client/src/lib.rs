//! The client side of Lockbox, kept out of the CA engine.
//!
//! - [`request`]: what a requester does before submitting: check the CA's
//!   exchange certificate, encrypt the new private key to it and build a
//!   signed CMC Full PKI Request (`lockbox request new --archive`, tests,
//!   benchmarks).
//! - [`recover_from_blob`]: what a key recovery agent does offline with a
//!   recovery blob a certificate manager fetched: check the CA's signature,
//!   open the envelope with the agent's key and check the key against its
//!   certificate (`lockbox recoverkey`). The code is the engine's
//!   (`lockbox_engine::recovery`), because the CA's key-history export opens
//!   blobs the same way; one copy, re-exported here for the agent side.
//!
//! Errors are the engine's typed [`lockbox_engine::EngineError`] with the
//! same AD CS status codes the CA reports, so the CLI maps both sides to one
//! set of exit codes and messages; the trust rule for blob signers is the
//! engine's own ([`lockbox_engine::trust::check_ca_signer`]), one copy.

pub mod request;

pub use lockbox_engine::recovery::{recover_from_blob, Recovered};
pub use request::{
    build_archival_renewal, build_archival_request, check_exchange_certificate, pki_data, sign_cmc,
    sign_cmc_renewal, ArchivalOptions, KeyPayload,
};
