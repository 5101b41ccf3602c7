//! Whole-database copies between stores of either backend: `db migrate`
//! (SQLite → an empty PostgreSQL), a PostgreSQL backup (→ a new SQLite file)
//! and a restore into PostgreSQL (a backup's SQLite file → an empty
//! PostgreSQL).
//!
//! The source is read in one snapshot (SQLite: one read transaction under
//! WAL; PostgreSQL: `SERIALIZABLE READ ONLY DEFERRABLE`), the target written in
//! one transaction that takes the write lock: a copy is whole or absent. Rows
//! keep every column, IDs included; the target's ID sequences move past them.
//! The target must hold no rows; the counts are compared before the commit.

use std::collections::BTreeMap;

use futures_util::TryStreamExt;
use serde::Serialize;
use sqlx::{AssertSqlSafe, Row};

use super::SqlStore;
use crate::dialect::{self, Backend};
use crate::{StoreError, StoreResult};

/// How a column is read and bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Int,
    Text,
    Blob,
}

use Kind::{Blob, Int, Text};

/// Every table of the schema (version 8) with its columns, in copy order.
/// `table_list_matches_the_schema` fails when a migration adds a table or a
/// column that is missing here.
const TABLES: &[(&str, &[(&str, Kind)])] = &[
    (
        "requests",
        &[
            ("request_id", Int),
            ("request_der", Blob),
            ("request_kind", Text),
            ("requester", Text),
            ("template", Text),
            ("request_subject", Text),
            ("disposition", Text),
            ("disposition_message", Text),
            ("status_code", Int),
            ("submitted_at", Int),
            ("resolved_at", Int),
            ("cert_der", Blob),
            ("serial", Text),
            ("subject", Text),
            ("common_name", Text),
            ("upn", Text),
            ("email", Text),
            ("key_id", Text),
            ("thumbprint", Text),
            ("not_before", Int),
            ("not_after", Int),
            ("key_algorithm", Text),
            ("key_length", Int),
            ("revoked_at", Int),
            ("revocation_reason", Int),
            ("archived_key", Blob),
            ("kra_hashes", Text),
            ("foreign_cert", Int),
            ("owner", Text),
            ("import_source", Text),
            ("renewal_of", Int),
            ("superseded_by", Int),
            ("issuer_key_id", Text),
        ],
    ),
    ("key_owner_names", &[("request_id", Int), ("name", Text)]),
    (
        "exchange_keys",
        &[("serial", Text), ("sealed_key", Blob), ("created_at", Int)],
    ),
    (
        "unmatched_keys",
        &[
            ("key_id", Text),
            ("archived_key", Blob),
            ("kra_hashes", Text),
            ("owner", Text),
            ("import_source", Text),
            ("imported_by", Text),
            ("imported_at", Int),
        ],
    ),
    (
        "crls",
        &[
            ("crl_number", Int),
            ("this_update", Int),
            ("next_update", Int),
            ("der", Blob),
            ("delta_base", Int),
            ("key_index", Int),
        ],
    ),
    ("counters", &[("name", Text), ("value", Int)]),
    ("templates", &[("name", Text), ("definition", Text)]),
    ("ca_templates", &[("name", Text)]),
    (
        "kra_certificates",
        &[
            ("thumbprint", Text),
            ("cert_der", Blob),
            ("added_at", Int),
            ("chain_der", Blob),
            ("crl_source", Text),
        ],
    ),
    ("settings", &[("name", Text), ("value", Text)]),
    (
        "principals",
        &[
            ("name", Text),
            ("kind", Text),
            ("upn", Text),
            ("email", Text),
            ("downlevel", Text),
            ("password_hash", Text),
            ("created_at", Int),
        ],
    ),
    (
        "group_members",
        &[("group_name", Text), ("member_name", Text)],
    ),
    (
        "api_tokens",
        &[
            ("id", Text),
            ("principal", Text),
            ("secret_hash", Text),
            ("created_at", Int),
        ],
    ),
    (
        "certificate_mappings",
        &[("thumbprint", Text), ("principal", Text), ("serial", Text)],
    ),
    ("roles", &[("principal", Text), ("role", Text)]),
    (
        "template_permissions",
        &[
            ("template", Text),
            ("principal", Text),
            ("allow", Int),
            ("rights", Text),
        ],
    ),
    (
        "manager_restrictions",
        &[("manager", Text), ("kind", Text), ("value", Text)],
    ),
    (
        "audit_log",
        &[
            ("seq", Int),
            ("at", Int),
            ("actor", Text),
            ("category", Text),
            ("action", Text),
            ("target", Text),
            ("outcome", Text),
            ("details", Text),
            ("prev_hash", Text),
            ("hash", Text),
        ],
    ),
    (
        "audit_heads",
        &[
            ("seq", Int),
            ("hash", Text),
            ("signature", Text),
            ("at", Int),
        ],
    ),
    (
        "events",
        &[
            ("id", Int),
            ("at", Int),
            ("event_id", Int),
            ("level", Text),
            ("message", Text),
        ],
    ),
];

/// Tables whose rows exist in a new database (the counters' initial values):
/// the copy overwrites them instead of inserting.
const SEEDED: &[&str] = &["counters"];

/// What a copy moved: rows per table, equal in source and target.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct CopyReport {
    /// Rows per table.
    pub rows: BTreeMap<String, i64>,
}

impl CopyReport {
    /// Rows of one table.
    pub fn rows_of(&self, table: &str) -> i64 {
        self.rows.get(table).copied().unwrap_or(0)
    }
}

fn count_sql(table: &str) -> String {
    format!("SELECT COUNT(*) FROM {table}")
}

impl SqlStore {
    /// Rows per table (in one read), for comparing a copy with its source.
    pub async fn row_counts(&self) -> StoreResult<CopyReport> {
        let mut conn = self.pool().acquire().await?;
        let mut report = CopyReport::default();
        for (table, _) in TABLES {
            let n: i64 = sqlx::query_scalar(AssertSqlSafe(count_sql(table)))
                .fetch_one(&mut *conn)
                .await?;
            report.rows.insert(table.to_string(), n);
        }
        Ok(report)
    }

    /// Whether the database holds no rows (beyond a new database's counters).
    pub async fn is_empty(&self) -> StoreResult<bool> {
        let counts = self.row_counts().await?;
        Ok(counts
            .rows
            .iter()
            .all(|(t, n)| *n == 0 || SEEDED.contains(&t.as_str())))
    }

    /// Copies every row of this store into `target`, which must be empty,
    /// in one target transaction; the counts are compared before it commits.
    pub async fn copy_into(&self, target: &SqlStore) -> StoreResult<CopyReport> {
        if !target.is_empty().await? {
            return Err(StoreError::Conflict(
                "the target database is not empty: a copy goes into an empty database only".into(),
            ));
        }
        // A tracked transaction: if this future is dropped (a client that
        // hangs up on a backup), it rolls back and its connection goes back
        // to the pool outside any snapshot.
        let mut src = match self.backend {
            Backend::Sqlite => self.pool().begin().await?,
            Backend::Postgres => {
                self.pool()
                    .begin_with(dialect::postgres::BEGIN_SNAPSHOT)
                    .await?
            }
        };
        let result = async {
            let (_gate, mut tx) = target.begin_write().await?;
            let mut report = CopyReport::default();
            for (table, columns) in TABLES {
                let n = copy_table(&mut src, &mut tx, table, columns).await?;
                report.rows.insert(table.to_string(), n);
            }
            if target.backend == Backend::Postgres {
                sqlx::query(dialect::postgres::RESET_REQUEST_IDS)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(dialect::postgres::RESET_EVENT_IDS)
                    .execute(&mut *tx)
                    .await?;
            }
            for (table, _) in TABLES {
                let n: i64 = sqlx::query_scalar(AssertSqlSafe(count_sql(table)))
                    .fetch_one(&mut *tx)
                    .await?;
                if n != report.rows_of(table) {
                    return Err(StoreError::Integrity(format!(
                        "copy of {table}: {} rows read, {n} in the target",
                        report.rows_of(table)
                    )));
                }
            }
            tx.commit().await?;
            Ok(report)
        }
        .await;
        let _ = src.rollback().await;
        result
    }
}

/// Copies one table's rows, streaming from `src` into `tx`.
async fn copy_table(
    src: &mut sqlx::AnyConnection,
    tx: &mut sqlx::AnyConnection,
    table: &str,
    columns: &[(&str, Kind)],
) -> StoreResult<i64> {
    let names: Vec<&str> = columns.iter().map(|c| c.0).collect();
    let list = names.join(", ");
    let select = format!("SELECT {list} FROM {table} ORDER BY {list}");
    let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
    let mut insert = format!(
        "INSERT INTO {table} ({list}) VALUES ({})",
        placeholders.join(", ")
    );
    if SEEDED.contains(&table) {
        insert.push_str(&format!(
            " ON CONFLICT ({}) DO UPDATE SET {} = excluded.{}",
            names[0], names[1], names[1]
        ));
    }
    let mut n = 0i64;
    let mut rows = sqlx::query(AssertSqlSafe(select)).fetch(&mut *src);
    // Rows are buffered a page at a time: the stream holds the source
    // connection, the inserts the target transaction.
    let mut page = Vec::with_capacity(256);
    loop {
        let next = rows.try_next().await?;
        let done = next.is_none();
        if let Some(row) = next {
            page.push(row);
        }
        if page.len() >= 256 || (done && !page.is_empty()) {
            for row in page.drain(..) {
                let mut q = sqlx::query(AssertSqlSafe(insert.clone()));
                for (i, (_, kind)) in columns.iter().enumerate() {
                    q = match kind {
                        Int => q.bind(row.try_get::<Option<i64>, _>(i)?),
                        Text => q.bind(row.try_get::<Option<String>, _>(i)?),
                        Blob => q.bind(row.try_get::<Option<Vec<u8>>, _>(i)?),
                    };
                }
                q.execute(&mut *tx).await?;
                n += 1;
            }
        }
        if done {
            break;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every table and column of the SQLite schema is in [`TABLES`] with the
    /// right kind, and nothing else is: a copy loses no data.
    #[tokio::test]
    async fn table_list_matches_the_schema() {
        let s = SqlStore::open_in_memory(|b| format!("{}", b.len()))
            .await
            .unwrap();
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations' ORDER BY name",
        )
        .fetch_all(&s.pool())
        .await
        .unwrap();
        let mut ours: Vec<String> = TABLES.iter().map(|t| t.0.to_string()).collect();
        ours.sort();
        assert_eq!(tables, ours);
        for (table, columns) in TABLES {
            let info: Vec<(String, String)> = sqlx::query_as(AssertSqlSafe(format!(
                "SELECT name, type FROM pragma_table_info('{table}') ORDER BY cid"
            )))
            .fetch_all(&s.pool())
            .await
            .unwrap();
            let mut got: Vec<(String, Kind)> = info
                .into_iter()
                .map(|(n, t)| {
                    let k = match t.as_str() {
                        "BLOB" => Blob,
                        "TEXT" => Text,
                        _ => Int,
                    };
                    (n, k)
                })
                .collect();
            got.sort_by(|a, b| a.0.cmp(&b.0));
            let mut want: Vec<(String, Kind)> =
                columns.iter().map(|(n, k)| (n.to_string(), *k)).collect();
            want.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(got, want, "columns of {table}");
        }
    }

    /// A copy keeps every row and column, IDs and the audit chain, moves the
    /// target's ID sequence past the copied rows, and refuses a target that
    /// holds rows. With `LOCKBOX_TEST_DATABASE` set the target is PostgreSQL.
    #[tokio::test]
    async fn copy_keeps_every_row_and_refuses_a_non_empty_target() {
        use crate::model::*;
        let h: super::super::Hasher = crate::db::tests::test_hash;
        let dir = tempfile::tempdir().unwrap();
        let src = SqlStore::open(&dir.path().join("src.db"), h).await.unwrap();
        let audit = AuditEntry {
            at: 1,
            actor: "admin".into(),
            category: "config".into(),
            action: "set".into(),
            target: "t".into(),
            outcome: "success".into(),
            details: "{}".into(),
        };
        src.apply(
            &[
                Change::SetSetting {
                    name: "a".into(),
                    value: "b".into(),
                },
                Change::AddPrincipal(Principal {
                    name: "Alice".into(),
                    kind: "user".into(),
                    upn: Some("alice@example.com".into()),
                    email: None,
                    downlevel: None,
                    password_hash: Some("x".into()),
                    created_at: 5,
                }),
            ],
            &[audit.clone(), audit.clone()],
        )
        .await
        .unwrap();
        let n = crate::db::requests::tests::new_req(Disposition::Pending, None);
        let mut with_key = n.clone();
        with_key.archived_key = Some(vec![9u8; 300]);
        with_key.kra_hashes = Some("ab".into());
        let first = src
            .insert_request(&with_key, std::slice::from_ref(&audit))
            .await
            .unwrap();
        src.insert_request(&n, &[]).await.unwrap();
        src.next_crl_number().await.unwrap();
        let before = src.row_counts().await.unwrap();

        let target = crate::db::tests::test_store(h).await;
        let report = src.copy_into(&target).await.unwrap();
        assert_eq!(report, before);
        assert_eq!(target.row_counts().await.unwrap(), before);
        assert_eq!(report.rows_of("audit_log"), 3);
        assert_eq!(
            target.archived_key(first).await.unwrap(),
            Some(vec![9u8; 300])
        );
        assert_eq!(target.setting("a").await.unwrap().as_deref(), Some("b"));
        assert_eq!(
            target.principal("ALICE").await.unwrap().unwrap().name,
            "Alice",
            "names stay case-insensitive"
        );
        assert_eq!(
            target.audit_records(0, 10).await.unwrap(),
            src.audit_records(0, 10).await.unwrap()
        );
        // IDs continue after the copied ones; the CRL counter came along.
        let next = target.insert_request(&n, &[]).await.unwrap();
        assert_eq!(next, first + 2);
        assert_eq!(target.next_crl_number().await.unwrap(), 2);
        // A second copy into the same (now non-empty) target is refused.
        assert!(matches!(
            src.copy_into(&target).await,
            Err(StoreError::Conflict(_))
        ));
    }
}
