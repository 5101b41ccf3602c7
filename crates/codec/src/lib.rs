//! Pure codecs for Lockbox.
//!
//! Everything in this crate is a function over bytes: no I/O, no clocks, no
//! global state, so every parser can be fuzzed in isolation. The crate knows
//! the ASN.1 shapes Lockbox speaks (PKCS#10, CMC Full PKI Requests, the
//! Microsoft certificate-template extensions) as typed `der` structures.
//!
//! Each public module is the namespace of one format, used by path
//! (`pem`, `cmc`, `request`, `keyblob`, `ms`/`msext`, `names`, `certsrv`,
//! `ber`, `hexfmt`, `oids`, `ocsp`); the error type is re-exported here.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod ber;
pub mod certsrv;
pub mod cmc;
mod error;
pub mod hexfmt;
pub mod keyblob;
pub mod ms;
pub mod msext;
pub mod names;
pub mod ocsp;
pub mod oids;
pub mod pem;
pub mod request;

pub use error::CodecError;

/// Largest request or certificate input the codecs accept, in bytes.
///
/// Real PKCS#10 and CMC archival requests are a few kilobytes; anything far
/// larger is refused before it is parsed.
pub const MAX_INPUT_LEN: usize = 256 * 1024;
