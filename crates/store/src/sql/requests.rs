//! Request rows: issue, deny, revoke, archived keys, key agents.

use crate::model::Restriction;

/// `SELECT <the request columns> FROM requests`: the columns
/// `record_from_row` reads, `has_archived_key` computed (the key itself stays
/// in the database).
macro_rules! select_requests {
    () => {
        "SELECT request_id, request_der, request_kind, requester, template, \
    request_subject, disposition, disposition_message, status_code, submitted_at, resolved_at, \
    cert_der, serial, subject, common_name, upn, email, key_id, thumbprint, not_before, not_after, \
    key_algorithm, key_length, revoked_at, revocation_reason, renewal_of, superseded_by, issuer_key_id, \
    (CASE WHEN archived_key IS NULL THEN 0 ELSE 1 END) AS has_archived_key FROM requests"
    };
}

/// One request row by ID.
pub(crate) const GET_REQUEST: &str = concat!(select_requests!(), " WHERE request_id = $1");

/// One request row by certificate serial.
pub(crate) const GET_BY_SERIAL: &str = concat!(select_requests!(), " WHERE serial = $1");

/// One request row by certificate thumbprint.
pub(crate) const GET_BY_THUMBPRINT: &str =
    concat!(select_requests!(), " WHERE thumbprint = $1 LIMIT 1");

/// Rows with an archived key whose owner has the name `$1` (the
/// `key_owner_names` index), at most `$2`.
pub(crate) const FIND_BY_OWNER_NAME: &str = concat!(
    select_requests!(),
    " WHERE request_id IN \
     (SELECT request_id FROM key_owner_names WHERE name = $1) \
     AND archived_key IS NOT NULL ORDER BY request_id LIMIT $2"
);

/// The INSERT of a new request row (every column it sets; the import
/// columns take their defaults for requests made here).
macro_rules! insert_request_sql {
    () => {
        "INSERT INTO requests (request_der, request_kind, requester, template, request_subject, \
         disposition, disposition_message, status_code, submitted_at, resolved_at, \
         common_name, upn, email, archived_key, kra_hashes, cert_der, serial, subject, key_id, \
         thumbprint, not_before, not_after, key_algorithm, key_length, foreign_cert, owner, import_source, \
         renewal_of, issuer_key_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
         $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29)"
    };
}
pub(crate) use insert_request_sql;

/// The SQL of [`crate::Store::query`]: `$1..$n` are the restriction values, `$n+1` the limit.
pub(crate) fn query_sql(restrictions: &[Restriction]) -> String {
    let mut sql = select_requests!().to_string();
    for (i, r) in restrictions.iter().enumerate() {
        sql.push_str(if i == 0 { " WHERE " } else { " AND " });
        // Column and operator come from closed enums; the value is bound.
        sql.push_str(&format!(
            "{} {} ${}{}",
            r.column.sql(),
            r.op.sql(),
            i + 1,
            r.op.collation()
        ));
    }
    sql.push_str(&format!(
        " ORDER BY request_id LIMIT ${}",
        restrictions.len() + 1
    ));
    sql
}

/// Used by `issue_pending`.
pub(crate) const ISSUE_PENDING: &str =
    "UPDATE requests SET cert_der = $1, serial = $2, subject = $3, common_name = $4, upn = $5, \
             email = $6, key_id = $7, thumbprint = $8, not_before = $9, not_after = $10, \
             key_algorithm = $11, key_length = $12, issuer_key_id = $13, disposition = 'issued', \
             disposition_message = $14, status_code = 0, resolved_at = $15 \
             WHERE request_id = $16 AND disposition = 'pending'";

/// Used by `deny_pending`.
pub(crate) const DENY_PENDING: &str =
    "UPDATE requests SET disposition = 'denied', disposition_message = $1, status_code = $2, \
             resolved_at = $3, archived_key = NULL, kra_hashes = NULL \
             WHERE request_id = $4 AND disposition = 'pending'";

/// Used by `revoke`.
/// An issued certificate, or one on hold (reason 6) given another reason.
pub(crate) const REVOKE: &str =
    "UPDATE requests SET disposition = 'revoked', revoked_at = $1, revocation_reason = $2, \
             disposition_message = 'Revoked' WHERE serial = $3 AND (disposition = 'issued' \
             OR (disposition = 'revoked' AND revocation_reason = 6 AND $2 <> 6))";

/// Used by `unrevoke`: only a certificate on hold is released.
pub(crate) const UNREVOKE: &str = "UPDATE requests SET disposition = 'issued', revoked_at = NULL, \
     revocation_reason = NULL, disposition_message = 'Issued (released from hold)' \
     WHERE serial = $1 AND disposition = 'revoked' AND revocation_reason = 6";

/// Used by `revoke`.
pub(crate) const DISPOSITION_BY_SERIAL: &str = "SELECT disposition FROM requests WHERE serial = $1";

/// Used by `revoked`.
pub(crate) const REVOKED: &str =
    "SELECT serial, revoked_at, revocation_reason, issuer_key_id FROM requests \
             WHERE disposition = 'revoked' AND foreign_cert = 0 ORDER BY revoked_at, request_id";

/// Used by `archived_key`.
pub(crate) const ARCHIVED_KEY: &str = "SELECT archived_key FROM requests WHERE request_id = $1";

/// Used by `kra_hashes`.
pub(crate) const KRA_HASHES: &str = "SELECT kra_hashes FROM requests WHERE request_id = $1";

/// Used by `keys_for_kra`.
/// `LIKE` is case-insensitive for ASCII in SQLite and case-sensitive in
/// PostgreSQL: the pattern is a lowercase hex thumbprint, so both agree.
pub(crate) const ROWS_FOR_KRA: &str = "SELECT request_id, serial, kra_hashes FROM requests \
             WHERE archived_key IS NOT NULL AND kra_hashes LIKE $1 ORDER BY request_id";

/// Used by `keys_for_kra`.
/// `LIKE` is case-insensitive for ASCII in SQLite and case-sensitive in
/// PostgreSQL: the pattern is a lowercase hex thumbprint, so both agree.
pub(crate) const UNMATCHED_FOR_KRA: &str =
    "SELECT key_id, kra_hashes FROM unmatched_keys WHERE kra_hashes LIKE $1 ORDER BY key_id";

/// Used by `unmatched_key_exists`.
pub(crate) const UNMATCHED_KEY_EXISTS: &str =
    "SELECT COUNT(*) FROM unmatched_keys WHERE key_id = $1";

/// Marks the renewed certificate's row as superseded by its issued renewal
/// (only once: a certificate is renewed by one successor).
pub(crate) const SUPERSEDE: &str =
    "UPDATE requests SET superseded_by = $1 WHERE request_id = $2 AND superseded_by IS NULL";

/// The renewal link of a row (used when a pending renewal is issued).
pub(crate) const RENEWAL_OF: &str = "SELECT renewal_of FROM requests WHERE request_id = $1";
