//! Row mapping: the columns read back into model types and the binds of a new request row.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite};

use crate::model::*;
use crate::{StoreError, StoreResult};

/// The columns [`record_from_row`] reads, `has_archived_key` computed (the key itself stays in the database).
pub(super) const SELECT_COLUMNS: &str =
    "request_id, request_der, request_kind, requester, template, \
    request_subject, disposition, disposition_message, status_code, submitted_at, resolved_at, \
    cert_der, serial, subject, common_name, upn, email, key_id, thumbprint, not_before, not_after, \
    key_algorithm, key_length, revoked_at, revocation_reason, \
    (CASE WHEN archived_key IS NULL THEN 0 ELSE 1 END) AS has_archived_key";

/// A `principals` row.
pub(super) fn principal_from_row(r: &SqliteRow) -> StoreResult<Principal> {
    Ok(Principal {
        name: r.try_get("name")?,
        kind: r.try_get("kind")?,
        upn: r.try_get("upn")?,
        email: r.try_get("email")?,
        downlevel: r.try_get("downlevel")?,
        password_hash: r.try_get("password_hash")?,
        created_at: r.try_get("created_at")?,
    })
}

/// An `audit_log` row.
pub(super) fn audit_record_from_row(r: &SqliteRow) -> StoreResult<AuditRecord> {
    Ok(AuditRecord {
        seq: r.try_get("seq")?,
        entry: AuditEntry {
            at: r.try_get("at")?,
            actor: r.try_get("actor")?,
            category: r.try_get("category")?,
            action: r.try_get("action")?,
            target: r.try_get("target")?,
            outcome: r.try_get("outcome")?,
            details: r.try_get("details")?,
        },
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

/// An `audit_heads` row.
pub(super) fn audit_head_from_row(r: &SqliteRow) -> StoreResult<AuditHead> {
    Ok(AuditHead {
        seq: r.try_get("seq")?,
        hash: r.try_get("hash")?,
        signature: r.try_get("signature")?,
        at: r.try_get("at")?,
    })
}

/// A `requests` row selected with [`SELECT_COLUMNS`]; the certificate fields exist only with a certificate.
pub(super) fn record_from_row(row: &SqliteRow) -> StoreResult<RequestRecord> {
    let disposition: String = row.try_get("disposition")?;
    let disposition = Disposition::parse(&disposition)
        .ok_or_else(|| StoreError::Integrity(format!("unknown disposition '{disposition}'")))?;
    let cert_der: Option<Vec<u8>> = row.try_get("cert_der")?;
    let common_name: Option<String> = row.try_get("common_name")?;
    let upn: Option<String> = row.try_get("upn")?;
    let email: Option<String> = row.try_get("email")?;
    let cert = match cert_der {
        Some(cert_der) => Some(CertFields {
            cert_der,
            serial: row
                .try_get::<Option<String>, _>("serial")?
                .unwrap_or_default(),
            subject: row
                .try_get::<Option<String>, _>("subject")?
                .unwrap_or_default(),
            common_name: common_name.clone(),
            upn: upn.clone(),
            email: email.clone(),
            key_id: row
                .try_get::<Option<String>, _>("key_id")?
                .unwrap_or_default(),
            thumbprint: row
                .try_get::<Option<String>, _>("thumbprint")?
                .unwrap_or_default(),
            not_before: row
                .try_get::<Option<i64>, _>("not_before")?
                .unwrap_or_default(),
            not_after: row
                .try_get::<Option<i64>, _>("not_after")?
                .unwrap_or_default(),
            key_algorithm: row
                .try_get::<Option<String>, _>("key_algorithm")?
                .unwrap_or_default(),
            key_length: row
                .try_get::<Option<i64>, _>("key_length")?
                .unwrap_or_default(),
        }),
        None => None,
    };
    Ok(RequestRecord {
        request_id: row.try_get("request_id")?,
        disposition,
        disposition_message: row.try_get("disposition_message")?,
        status_code: row.try_get("status_code")?,
        requester: row.try_get("requester")?,
        template: row.try_get("template")?,
        request_kind: row.try_get("request_kind")?,
        request_subject: row.try_get("request_subject")?,
        submitted_at: row.try_get("submitted_at")?,
        resolved_at: row.try_get("resolved_at")?,
        request_der: row.try_get("request_der")?,
        common_name,
        upn,
        email,
        cert,
        revoked_at: row.try_get("revoked_at")?,
        revocation_reason: row.try_get("revocation_reason")?,
        has_archived_key: row.try_get::<i64, _>("has_archived_key")? != 0,
    })
}

/// A query with bound SQLite arguments.
pub(super) type Query<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments>;

/// Binds the twelve certificate columns in the order of the `UPDATE` in `issue_pending`.
pub(super) fn bind_cert<'q>(q: Query<'q>, c: &'q CertFields) -> Query<'q> {
    q.bind(&c.cert_der)
        .bind(&c.serial)
        .bind(&c.subject)
        .bind(&c.common_name)
        .bind(&c.upn)
        .bind(&c.email)
        .bind(&c.key_id)
        .bind(&c.thumbprint)
        .bind(c.not_before)
        .bind(c.not_after)
        .bind(&c.key_algorithm)
        .bind(c.key_length)
}

/// The INSERT of a new request row (every column it sets; the import
/// columns take their defaults for requests made here).
macro_rules! insert_request_sql {
    () => {
        "INSERT INTO requests (request_der, request_kind, requester, template, request_subject, \
         disposition, disposition_message, status_code, submitted_at, resolved_at, \
         common_name, upn, email, archived_key, kra_hashes, cert_der, serial, subject, key_id, \
         thumbprint, not_before, not_after, key_algorithm, key_length, foreign_cert, owner, import_source) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
         $19, $20, $21, $22, $23, $24, $25, $26, $27)"
    };
}
pub(super) use insert_request_sql;

/// How an imported row differs from one requested here.
#[derive(Clone, Copy, Default)]
pub(super) struct ImportMeta<'q> {
    pub(super) foreign: bool,
    pub(super) owner: Option<&'q str>,
    pub(super) source: Option<&'q str>,
}

/// Binds a new request to [`insert_request_sql`]: resolved unless pending;
/// the certificate's identities override the request's once it exists.
pub(super) fn bind_new_request<'q>(
    q: Query<'q>,
    new: &'q NewRequest,
    import: ImportMeta<'q>,
) -> Query<'q> {
    let resolved_at = match new.disposition {
        Disposition::Pending => None,
        _ => Some(new.submitted_at),
    };
    let c = new.cert.as_ref();
    q.bind(&new.request_der)
        .bind(&new.request_kind)
        .bind(&new.requester)
        .bind(&new.template)
        .bind(&new.request_subject)
        .bind(new.disposition.as_str())
        .bind(&new.disposition_message)
        .bind(new.status_code)
        .bind(new.submitted_at)
        .bind(resolved_at)
        .bind(c.map_or(&new.request_common_name, |c| &c.common_name))
        .bind(c.map_or(&new.request_upn, |c| &c.upn))
        .bind(c.map_or(&new.request_email, |c| &c.email))
        .bind(&new.archived_key)
        .bind(&new.kra_hashes)
        .bind(c.map(|c| &c.cert_der))
        .bind(c.map(|c| &c.serial))
        .bind(c.map(|c| &c.subject))
        .bind(c.map(|c| &c.key_id))
        .bind(c.map(|c| &c.thumbprint))
        .bind(c.map(|c| c.not_before))
        .bind(c.map(|c| c.not_after))
        .bind(c.map(|c| &c.key_algorithm))
        .bind(c.map(|c| c.key_length))
        .bind(i64::from(import.foreign))
        .bind(import.owner)
        .bind(import.source)
}
