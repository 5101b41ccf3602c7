//! Audit chain: records and signed heads.

/// Used by `chain_head`.
pub(crate) const CHAIN_HEAD: &str = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1";

/// Audit records written by one statement at most (10 parameters each:
/// far below SQLite's and PostgreSQL's parameter limits).
pub(crate) const RECORDS_PER_STATEMENT: usize = 64;

/// Used by `append_after`: one statement inserting `rows` audit records
/// (parameters numbered in record order, 10 per record).
pub(crate) fn append_records(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO audit_log (seq, at, actor, category, action, target, outcome, details, prev_hash, hash) VALUES ",
    );
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        let params: Vec<String> = (1..=10).map(|c| format!("${}", r * 10 + c)).collect();
        sql.push('(');
        sql.push_str(&params.join(", "));
        sql.push(')');
    }
    sql
}

/// Used by `seal_head`, `add_audit_head`.
pub(crate) const INSERT_HEAD: &str = "INSERT INTO audit_heads (seq, hash, signature, at) VALUES ($1, $2, $3, $4) ON CONFLICT (seq) DO NOTHING";

/// Used by `audit_records`.
pub(crate) const AUDIT_RECORDS: &str = "SELECT seq, at, actor, category, action, target, outcome, details, prev_hash, hash FROM audit_log \
             WHERE seq >= $1 ORDER BY seq LIMIT $2";

/// Used by `last_audit_record`.
pub(crate) const LAST_AUDIT_RECORD: &str = "SELECT seq, at, actor, category, action, target, outcome, details, prev_hash, hash FROM audit_log \
             ORDER BY seq DESC LIMIT 1";

/// Used by `audit_heads`.
pub(crate) const AUDIT_HEADS: &str =
    "SELECT seq, hash, signature, at FROM audit_heads ORDER BY seq";

/// Used by `last_audit_head`.
pub(crate) const LAST_AUDIT_HEAD: &str =
    "SELECT seq, hash, signature, at FROM audit_heads ORDER BY seq DESC LIMIT 1";

#[cfg(test)]
mod tests {
    #[test]
    fn several_records_number_their_parameters_in_order() {
        assert_eq!(
            super::append_records(1),
            "INSERT INTO audit_log (seq, at, actor, category, action, target, outcome, details, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        );
        let two = super::append_records(2);
        assert!(two.ends_with("($1, $2, $3, $4, $5, $6, $7, $8, $9, $10), ($11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"), "{two}");
    }
}
