//! Versioned schema migrations, per backend. Each SQLite migration runs in its
//! own transaction; PostgreSQL runs them in one, under an advisory lock. Both
//! record their versions in `schema_migrations`, and a database newer than
//! this build is refused. The two lists reach the same schema at the same
//! version: a new migration is added to both.

pub(crate) mod postgres;
pub(crate) mod sqlite;
