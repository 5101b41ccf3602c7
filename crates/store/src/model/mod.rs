//! Row types shared by the store trait and its backends, by concern.

mod audit;
mod ca;
mod changes;
mod directory;
mod requests;

pub use audit::{AuditEntry, AuditHead, AuditRecord, EventRecord, GENESIS_HASH};
pub use ca::{CrlRecord, DatabaseStatus, KraEntry, Permission, RevokedEntry};
pub use changes::Change;
pub use directory::{CertificateMapping, Principal, TokenInfo};
pub use requests::{
    ArchivedKeyAgents, CertFields, Column, Disposition, NewRequest, Op, RequestRecord, Restriction,
    Value,
};
