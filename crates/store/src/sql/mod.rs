//! The SQL text shared by the backends, one module per concern, as
//! constants with `$n` parameters.
//!
//! Everything here is portable between SQLite and PostgreSQL (`ON CONFLICT`,
//! `RETURNING`, `COALESCE`, `CASE`, `COLLATE NOCASE` — PostgreSQL has a
//! collation of that name); what only one backend says (`PRAGMA`, `VACUUM
//! INTO`, advisory locks) lives in `dialect.rs`, and the schema itself in the
//! per-backend migration lists (`migrations/`).

pub(crate) mod audit;
pub(crate) mod ca;
pub(crate) mod changes;
pub(crate) mod directory;
pub(crate) mod exchange;
pub(crate) mod requests;
pub(crate) mod schema;
