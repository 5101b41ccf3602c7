//! The SQL text shared by the backends, one module per concern, as
//! constants with `$n` parameters.
//!
//! Everything here is portable between SQLite and PostgreSQL (`ON CONFLICT`,
//! `RETURNING`, `COALESCE`, `CASE`); statements only SQLite understands
//! (`PRAGMA`, `VACUUM INTO`) live in `sqlite/dialect.rs` instead, and the
//! schema itself in the per-backend migration lists (`migrations.rs`).

pub(crate) mod audit;
pub(crate) mod ca;
pub(crate) mod changes;
pub(crate) mod directory;
pub(crate) mod requests;
pub(crate) mod schema;
